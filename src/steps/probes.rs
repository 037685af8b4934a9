//! Continuous probes and what they saw.

use cucumber::{given, then};

use super::{Analysis, Args, Failure, Need, StepDoc};
use crate::drill::world::Drill;
use crate::platform::Platform;

/// The probe steps.
pub const DOCS: &[StepDoc] = &[
    StepDoc {
        keyword: "Given",
        pattern: "the \"{probe}\" probe is running",
        example: "the \"storefront\" probe is running",
        doc: "Starts probing continuously at the probe's interval (the traffic probe always runs). Its answers produce the milestones `first bad answer`, `first good answer from {region}` and `service answers from {region}` (stable-after consecutive good answers; stamped at the first of them).",
        domain: "probes",
        analyze: analyze_probe,
    },
    StepDoc {
        keyword: "Then",
        pattern: "at most {percent}% of the \"{probe}\" probe's answers were bad",
        example: "at most 1% of the \"storefront\" probe's answers were bad",
        doc: "The error rate seen by a running probe since the scenario started is within the budget (e.g. the platform's SLO during a zone outage).",
        domain: "probes",
        analyze: analyze_error_rate,
    },
];

fn analyze_probe(args: &Args, platform: &Platform) -> Analysis {
    let mut a = Analysis::default();
    let probe = args.get("probe");
    if platform.probes.contains_key(probe) {
        a.needs.push(Need::Probe(probe.to_owned()));
    } else {
        a.problem(
            "probe",
            format!("probe \"{probe}\" is not defined in the platform"),
            format!(
                "known probes: {}",
                crate::diagnostic::one_of(&platform.probes.keys().collect::<Vec<_>>())
            ),
        );
    }
    a
}

fn analyze_error_rate(args: &Args, platform: &Platform) -> Analysis {
    let mut a = analyze_probe(args, platform);
    match args.get("percent").parse::<f64>() {
        Ok(p) if (0.0..=100.0).contains(&p) => {}
        _ => a.problem(
            "percent",
            format!(
                "\"{}\" is not a percentage between 0 and 100",
                args.get("percent")
            ),
            "write e.g. 1 or 0.5",
        ),
    }
    a
}

#[given(regex = r#"^the "(?P<probe>[^"]+)" probe is running$"#)]
async fn probe_is_running(world: &mut Drill, probe: String) -> Result<(), Failure> {
    world.start_probe(&probe).map(|_| ()).map_err(Failure)
}

#[then(
    regex = r#"^at most (?P<percent>[0-9.]+)% of the "(?P<probe>[^"]+)" probe's answers were bad$"#
)]
async fn error_rate_within(
    world: &mut Drill,
    percent: String,
    probe: String,
) -> Result<(), Failure> {
    let budget: f64 = percent
        .parse()
        .map_err(|_| Failure(format!("\"{percent}\" is not a percentage")))?;
    let running = world.probes.get(&probe).ok_or_else(|| Failure(format!("probe \"{probe}\" is not running (hint: add `Given the \"{probe}\" probe is running` before the fault)")))?;
    let state = running.state();
    let total = state.good + state.bad;
    if total == 0 {
        return Err(Failure(format!(
            "probe \"{probe}\" has not answered yet, so its error rate is unknown"
        )));
    }
    let rate = 100.0 * state.bad as f64 / total as f64;
    if rate <= budget {
        Ok(())
    } else {
        Err(Failure(format!(
            "probe \"{probe}\": {:.2}% of {total} answers were bad ({} bad), budget {budget}%",
            rate, state.bad
        )))
    }
}
