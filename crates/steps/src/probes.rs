//! Continuous probes and what they saw.

use cucumber::{given, then};

use super::{Analysis, Args, Failure, Need, StepDoc, param};
use crate::world::Drill;
use firedrill_core::clock::format_duration;
use firedrill_core::names::FAULT_INJECTED;
use firedrill_platform::Platform;

/// The probe steps.
pub const DOCS: &[StepDoc] = &[
    StepDoc {
        keyword: "Given",
        pattern: "the {probe} probe is running",
        example: "the \"storefront\" probe is running",
        doc: "Starts probing continuously at the probe's interval (the traffic probe always runs). Its answers produce the milestones `first bad answer`, `first good answer from {region}` and `service answers from {region}` (stable-after consecutive good answers; stamped at the first of them).",
        domain: "probes",
        analyze: analyze_probe,
    },
    StepDoc {
        keyword: "Then",
        pattern: "at most {percent}% of the {probe} probe's answers were bad",
        example: "at most 1% of the \"storefront\" probe's answers were bad",
        doc: "The error rate seen by a running probe since the scenario started is within the budget (e.g. the platform's SLO during a zone outage).",
        domain: "probes",
        analyze: analyze_probe,
    },
    StepDoc {
        keyword: "Then",
        pattern: "the {probe} probe's error rate is within its SLO",
        example: "the \"storefront\" probe's error rate is within its SLO",
        doc: "As `at most {percent}% …were bad`, with the error budget the platform gives the probe: 100% minus its `slo` (e.g. `slo: 99%` allows 1% bad answers).",
        domain: "probes",
        analyze: analyze_slo,
    },
    StepDoc {
        keyword: "Then",
        pattern: "at most {percent}% of the {probe} probe's answers were slower than {latency}",
        example: "at most 5% of the \"prod-1-orders\" probe's answers were slower than 2s",
        doc: "A latency budget: of the running probe's answers since `fault injected` (since the scenario started when there is no fault), at most {percent}% were bad or took longer than {latency}. The verdict names the p50 and p95 of the good answers.",
        domain: "probes",
        analyze: analyze_probe,
    },
    StepDoc {
        keyword: "Then",
        pattern: "the {probe} probe's median latency rose by at most {latency}",
        example: "the \"prod-1-orders\" probe's median latency rose by at most 2s",
        doc: "A degradation budget: the median latency of the running probe's good answers after `fault injected` exceeds its median before the fault by at most {latency}. Relative to the same platform's own baseline, so it holds in compressed time too, where every answer also carries the embedded platform's wall-clock cost.",
        domain: "probes",
        analyze: analyze_probe,
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
                firedrill_core::diagnostic::one_of(&platform.probes.keys().collect::<Vec<_>>())
            ),
        );
    }
    a
}

fn analyze_slo(args: &Args, platform: &Platform) -> Analysis {
    let mut a = analyze_probe(args, platform);
    let probe = args.get("probe");
    if let Some(p) = platform.probes.get(probe)
        && p.slo_percent().is_none()
    {
        a.problem(
            "probe",
            format!("probe \"{probe}\" has no slo in the platform"),
            format!("add e.g. `slo: 99%` under probes.{probe}"),
        );
    }
    a
}

#[given(expr = "the {probe} probe is running")]
async fn probe_is_running(world: &mut Drill, probe: param::Probe) -> Result<(), Failure> {
    world.start_probe(&probe).map(|_| ()).map_err(Failure)
}

#[then(expr = "the {probe} probe's error rate is within its SLO")]
async fn error_rate_within_slo(world: &mut Drill, probe: param::Probe) -> Result<(), Failure> {
    let probe = probe.0;
    let slo = world
        .platform()
        .probes
        .get(&probe)
        .and_then(firedrill_platform::Probe::slo_percent)
        .ok_or_else(|| Failure(format!("probe \"{probe}\" has no slo in the platform")))?;
    error_rate_at_most(world, 100.0 - slo, &probe)
}

#[then(expr = "at most {percent}% of the {probe} probe's answers were bad")]
async fn error_rate_within(
    world: &mut Drill,
    percent: param::Percent,
    probe: param::Probe,
) -> Result<(), Failure> {
    error_rate_at_most(world, percent.0, &probe)
}

/// The running probe `probe`, or a failure that says how to start it.
fn running_probe<'a>(
    world: &'a Drill,
    probe: &str,
) -> Result<&'a firedrill_providers::http::Running, Failure> {
    world.probes.get(probe).ok_or_else(|| Failure(format!("probe \"{probe}\" is not running (hint: add `Given the \"{probe}\" probe is running` before the fault)")))
}

fn error_rate_at_most(world: &Drill, budget: f64, probe: &str) -> Result<(), Failure> {
    // 100 − 99.9 is 0.0999…: show the budget as it was written.
    let budget = (budget * 1000.0).round() / 1000.0;
    let running = running_probe(world, probe)?;
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

#[then(expr = "at most {percent}% of the {probe} probe's answers were slower than {latency}")]
async fn latency_within(
    world: &mut Drill,
    percent: param::Percent,
    probe: param::Probe,
    latency: param::Latency,
) -> Result<(), Failure> {
    let (budget, probe, limit) = (percent.0, probe.0, latency.0);
    let since = world.timeline().first(FAULT_INJECTED).map(|m| m.at);
    let running = running_probe(world, &probe)?;
    let state = running.state();
    let seen: Vec<_> = state
        .history
        .iter()
        .filter(|o| since.is_none_or(|s| o.at >= s))
        .collect();
    if seen.is_empty() {
        return Err(Failure(format!(
            "probe \"{probe}\" has not answered yet, so its latency is unknown"
        )));
    }
    let over = seen.iter().filter(|o| !o.good || o.latency > limit).count();
    let rate = 100.0 * over as f64 / seen.len() as f64;
    let quantiles = state
        .latency_summary(since)
        .unwrap_or_else(|| "no good answer".to_owned());
    let verdict = format!(
        "probe \"{probe}\": {over} of {} answers ({rate:.1}%) were bad or slower than {}, budget {budget}%; {quantiles}",
        seen.len(),
        format_duration(limit)
    );
    world
        .run
        .events
        .emit(&firedrill_engine::events::Event::Measured(verdict.clone()));
    if rate <= budget {
        Ok(())
    } else {
        Err(Failure(verdict))
    }
}

#[then(expr = "the {probe} probe's median latency rose by at most {latency}")]
async fn latency_rise_within(
    world: &mut Drill,
    probe: param::Probe,
    latency: param::Latency,
) -> Result<(), Failure> {
    let (probe, limit) = (probe.0, latency.0);
    let fault = world
        .timeline()
        .first(FAULT_INJECTED)
        .map(|m| m.at)
        .ok_or_else(|| {
            Failure("no fault was injected, so there is no before and after to compare".into())
        })?;
    let running = running_probe(world, &probe)?;
    let state = running.state();
    let median = |after: bool| {
        let mut good: Vec<_> = state
            .history
            .iter()
            .filter(|o| o.good && (o.at >= fault) == after)
            .map(|o| o.latency)
            .collect();
        good.sort_unstable();
        good.get(good.len().saturating_sub(1) / 2).copied()
    };
    let (Some(before), Some(after)) = (median(false), median(true)) else {
        return Err(Failure(format!(
            "probe \"{probe}\" needs good answers both before and after `fault injected` (hint: start it in the Given steps)"
        )));
    };
    let rise = after.saturating_sub(before);
    let verdict = format!(
        "probe \"{probe}\": median latency {} before the fault, {} after: rose by {}, budget {}",
        format_duration(before),
        format_duration(after),
        format_duration(rise),
        format_duration(limit)
    );
    world
        .run
        .events
        .emit(&firedrill_engine::events::Event::Measured(verdict.clone()));
    if rise <= limit {
        Ok(())
    } else {
        Err(Failure(verdict))
    }
}
