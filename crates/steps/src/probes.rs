//! Continuous probes and what they saw.

use cucumber::{given, then};

use super::{Analysis, Args, Failure, Need, StepDoc, StepError, param};
use crate::world::Drill;
use std::time::Duration;

use firedrill_core::clock::{PlatformTime, format_duration};
use firedrill_core::names::FAULT_INJECTED;
use firedrill_core::observed::Observation;
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
    StepDoc {
        keyword: "Then",
        pattern: "the {percentile} latency of the {probe} probe stayed below {latency} since {reference}",
        example: "the p95 latency of the \"prod-1-orders\" probe stayed below 2s since the fault",
        doc: "A latency percentile over a window: of the running probe's answers since the reference milestone, the {percentile} (nearest rank) took less than {latency}. A bad answer counts as slower than any bound, so more than 5% bad answers fail a p95. The verdict names the percentile, the answers and the bad ones.",
        domain: "probes",
        analyze: analyze_probe,
    },
    StepDoc {
        keyword: "Then",
        pattern: "the {percentile} latency of the {probe} probe stayed below {latency} over the last {duration}",
        example: "the p99 latency of the \"storefront\" probe stayed below 1s over the last 5m",
        doc: "As `… since the fault`, over the running probe's answers of the last {duration} (up to the end of the step before it).",
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
    world.start_probe(&probe).map(|_| ())
}

#[then(expr = "the {probe} probe's error rate is within its SLO")]
async fn error_rate_within_slo(world: &mut Drill, probe: param::Probe) -> Result<(), Failure> {
    let probe = probe.0;
    let slo = world
        .platform()
        .probes
        .get(&probe)
        .and_then(firedrill_platform::Probe::slo_percent)
        .ok_or_else(|| {
            StepError::platform(
                format!("probe \"{probe}\" has no slo in the platform"),
                format!("add e.g. `slo: 99%` under probes.{probe}"),
            )
        })?;
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
    world.probes.get(probe).ok_or_else(|| {
        StepError::precondition(
            format!("probe \"{probe}\" is not running"),
            format!("add `Given the \"{probe}\" probe is running` before the fault"),
        )
    })
}

fn error_rate_at_most(world: &Drill, budget: f64, probe: &str) -> Result<(), Failure> {
    // 100 − 99.9 is 0.0999…: show the budget as it was written.
    let budget = (budget * 1000.0).round() / 1000.0;
    let running = running_probe(world, probe)?;
    let state = running.state();
    let total = state.good + state.bad;
    if total == 0 {
        return Err(StepError::unmet(
            format!("answers of probe \"{probe}\" to judge its error rate"),
            "it has not answered yet",
            "start the probe in the Given steps, before the fault",
        ));
    }
    let rate = 100.0 * state.bad as f64 / total as f64;
    if rate <= budget {
        Ok(())
    } else {
        Err(StepError::unmet(
            format!("at most {budget}% of the answers of probe \"{probe}\" bad"),
            format!(
                "probe \"{probe}\": {:.2}% of {total} answers were bad ({} bad), budget {budget}%",
                rate, state.bad
            ),
            "the report's timeline shows when the bad answers came",
        ))
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
        return Err(StepError::unmet(
            format!("answers of probe \"{probe}\" to judge its latency"),
            "it has not answered yet",
            "start the probe in the Given steps, before the fault",
        ));
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
        Err(StepError::unmet(
            format!(
                "at most {budget}% of the answers of probe \"{probe}\" bad or slower than {}",
                format_duration(limit)
            ),
            verdict,
            "the report's timeline shows when the slow answers came",
        ))
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
            StepError::precondition(
                "no fault was injected, so there is no before and after to compare",
                "inject a fault before this step",
            )
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
        return Err(StepError::unmet(
            format!("good answers of probe \"{probe}\" both before and after `fault injected`"),
            format!(
                "it has {} before and {} after",
                if median(false).is_some() {
                    "some"
                } else {
                    "none"
                },
                if median(true).is_some() {
                    "some"
                } else {
                    "none"
                }
            ),
            "start it in the Given steps",
        ));
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
        Err(StepError::unmet(
            format!(
                "the median latency of probe \"{probe}\" to rise by at most {}",
                format_duration(limit)
            ),
            verdict,
            "the report's timeline shows when the answers slowed",
        ))
    }
}

#[then(
    expr = "the {percentile} latency of the {probe} probe stayed below {latency} since {reference}"
)]
async fn percentile_since(
    world: &mut Drill,
    percentile: param::Percentile,
    probe: param::Probe,
    latency: param::Latency,
    since: param::Reference,
) -> Result<(), Failure> {
    let from = crate::timing::reference(&world.timeline(), &since.0)?;
    let window = format!("since \"{}\"", from.name);
    percentile_below(world, percentile, &probe, latency.0, from.at, &window)
}

#[then(
    expr = "the {percentile} latency of the {probe} probe stayed below {latency} over the last {duration}"
)]
async fn percentile_over_the_last(
    world: &mut Drill,
    percentile: param::Percentile,
    probe: param::Probe,
    latency: param::Latency,
    last: param::Duration,
) -> Result<(), Failure> {
    let now = world.clock().now();
    let from = PlatformTime::from_offset(now.offset().saturating_sub(last.value));
    let window = format!("over the last {last}");
    percentile_below(world, percentile, &probe, latency.0, from, &window)
}

/// Judges the `percentile` latency of the running probe's answers since `from` against `limit`.
fn percentile_below(
    world: &Drill,
    percentile: param::Percentile,
    probe: &str,
    limit: Duration,
    from: PlatformTime,
    window: &str,
) -> Result<(), Failure> {
    let running = running_probe(world, probe)?;
    let state = running.state();
    let Some(seen) = Window::of(&state.history, from, percentile.quantile()) else {
        return Err(StepError::unmet(
            format!("answers of probe \"{probe}\" {window} to judge its {percentile} latency"),
            format!("it gave no answer {window}"),
            "start the probe in the Given steps, before the window",
        ));
    };
    let (passed, took) = match seen.value {
        Some(took) => (took < limit, format_duration(took)),
        None => (false, "a bad answer (slower than any bound)".to_owned()),
    };
    let verdict = format!(
        "probe \"{probe}\": {percentile} latency {window} was {took} over {} answers ({} bad), {} {}",
        seen.answers,
        seen.bad,
        if passed { "below" } else { "NOT below" },
        format_duration(limit)
    );
    world
        .run
        .events
        .emit(&firedrill_engine::events::Event::Measured(verdict.clone()));
    if passed {
        Ok(())
    } else {
        Err(StepError::unmet(
            format!(
                "the {percentile} latency of probe \"{probe}\" {window} below {}",
                format_duration(limit)
            ),
            verdict,
            "the report's timeline shows when the answers slowed",
        ))
    }
}

/// A probe's answers in a window, and one percentile of their latency.
#[derive(Debug, PartialEq, Eq)]
struct Window {
    /// Answers in the window.
    answers: usize,
    /// Bad ones among them.
    bad: usize,
    /// The percentile (nearest rank), counting a bad answer as slower than any good one:
    /// `None` when the rank falls on a bad answer.
    value: Option<Duration>,
}

impl Window {
    /// The answers of `history` sent at or after `from`, and their `q` quantile (0–1); `None`
    /// when there are none.
    fn of(history: &[Observation], from: PlatformTime, q: f64) -> Option<Self> {
        let mut latencies: Vec<Option<Duration>> = history
            .iter()
            .filter(|o| o.at >= from)
            .map(|o| o.good.then_some(o.latency))
            .collect();
        if latencies.is_empty() {
            return None;
        }
        // Good answers by latency, then the bad ones.
        latencies.sort_unstable_by_key(|l| (l.is_none(), *l));
        let rank = ((q.clamp(0.0, 1.0) * latencies.len() as f64).ceil() as usize).max(1);
        Some(Self {
            answers: latencies.len(),
            bad: latencies.iter().filter(|l| l.is_none()).count(),
            value: latencies.get(rank - 1).copied().flatten(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(at_s: u64, latency_ms: u64, good: bool) -> Observation {
        Observation {
            at: PlatformTime::from_offset(Duration::from_secs(at_s)),
            good,
            status: Some(if good { 200 } else { 503 }),
            region: Some("us-west1".into()),
            latency: Duration::from_millis(latency_ms),
            error: None,
        }
    }

    #[test]
    fn a_percentile_is_the_nearest_rank_of_the_answers_in_the_window() {
        // 100 answers from 1s: latencies 1ms..=100ms; one before the window at 10s of latency.
        let mut history = vec![answer(0, 10_000, true)];
        history.extend((1..=100).map(|i| answer(i, i, true)));
        let from = PlatformTime::from_offset(Duration::from_secs(1));
        let p95 = Window::of(&history, from, 0.95).expect("answers");
        assert_eq!(
            p95,
            Window {
                answers: 100,
                bad: 0,
                value: Some(Duration::from_millis(95))
            }
        );
        assert_eq!(
            Window::of(&history, from, 0.5).and_then(|w| w.value),
            Some(Duration::from_millis(50))
        );
        assert_eq!(
            Window::of(
                &history,
                PlatformTime::from_offset(Duration::from_secs(101)),
                0.5
            ),
            None
        );
    }

    #[test]
    fn a_bad_answer_is_slower_than_any_bound() {
        // 94 good, 6 bad: the p95 falls on a bad answer, the p50 on a good one.
        let history: Vec<Observation> = (0..100).map(|i| answer(i, 5, i >= 6)).collect();
        let p95 = Window::of(&history, PlatformTime::ZERO, 0.95).expect("answers");
        assert_eq!((p95.bad, p95.value), (6, None));
        assert_eq!(
            Window::of(&history, PlatformTime::ZERO, 0.5).and_then(|w| w.value),
            Some(Duration::from_millis(5))
        );
    }
}
