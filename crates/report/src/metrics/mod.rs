//! Every drill metric, defined in one place, fed from the event stream.
//!
//! Names follow Prometheus conventions (base units, `_seconds`, `_total`). Labels come only
//! from bounded sets — drill (feature), scenario, phase, milestone, probe, platform, outcome —
//! never ids or error messages. [`Metrics`] is an event [`Sink`]; [`serve`] exposes it live
//! and [`push`] sends one drill's series to a Pushgateway.

mod push;
mod server;

pub use push::{PushConfig, PushError, Pusher};
pub use server::{ServeError, serve};

use prometheus::{Encoder as _, GaugeVec, IntCounterVec, IntGaugeVec, Opts, Registry, TextEncoder};

use firedrill_core::target::Target;
use firedrill_engine::events::{Event, Sink};

/// Phases whose measurement is the recovery time (RTO) of a drill.
const RECOVERY_PHASES: [&str; 2] = ["failover", "recovery"];

/// The metric families. Cheap to clone (they share the registry).
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    platform: String,
    runs: IntCounterVec,
    recovery: GaugeVec,
    recovery_target_lower: GaugeVec,
    recovery_target_upper: GaugeVec,
    phase: GaugeVec,
    phase_target_upper: GaugeVec,
    phase_met: IntGaugeVec,
    milestone: GaugeVec,
    faults_active: IntGaugeVec,
    probe_requests: IntCounterVec,
    writes_acknowledged: IntCounterVec,
    writes_lost: IntCounterVec,
    last_success: GaugeVec,
    in_progress: IntGaugeVec,
    aborts: IntCounterVec,
    guard_trips: IntCounterVec,
    current: Option<(String, String)>,
    /// Whether the current scenario started and has not finished.
    running: bool,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics")
            .field("platform", &self.platform)
            .finish_non_exhaustive()
    }
}

/// Metric names, for docs, alert rules and dashboard tests.
pub const NAMES: &[&str] = &[
    "firedrill_drill_runs_total",
    "firedrill_recovery_seconds",
    "firedrill_recovery_target_lower_seconds",
    "firedrill_recovery_target_upper_seconds",
    "firedrill_phase_duration_seconds",
    "firedrill_phase_target_upper_seconds",
    "firedrill_phase_target_met",
    "firedrill_milestone_seconds",
    "firedrill_faults_active",
    "firedrill_probe_requests_total",
    "firedrill_writes_acknowledged_total",
    "firedrill_writes_lost_total",
    "firedrill_last_success_timestamp_seconds",
    "firedrill_drill_in_progress",
    "firedrill_drill_aborts_total",
    "firedrill_guard_trips_total",
];

/// Registers a freshly built family; the registry refuses a duplicate name.
fn register<M: prometheus::core::Collector + Clone + 'static>(
    registry: &Registry,
    built: Result<M, prometheus::Error>,
) -> Result<M, prometheus::Error> {
    let family = built?;
    registry.register(Box::new(family.clone()))?;
    Ok(family)
}

impl Metrics {
    /// Registers every family for `platform`.
    ///
    /// # Errors
    ///
    /// Only if two families share a name (a bug, caught by tests).
    pub fn new(platform: &str) -> Result<Self, prometheus::Error> {
        let r = Registry::new();
        let ds = ["drill", "scenario", "platform"];
        Ok(Self {
            runs: register(
                &r,
                IntCounterVec::new(
                    Opts::new(
                        "firedrill_drill_runs_total",
                        "Drill scenarios run, by result (passed, failed, aborted).",
                    ),
                    &["drill", "scenario", "platform", "result"],
                ),
            )?,
            recovery: register(
                &r,
                GaugeVec::new(
                    Opts::new(
                        "firedrill_recovery_seconds",
                        "Recovery time (RTO) of the last run: from the fault to the service answering again, platform time.",
                    ),
                    &ds,
                ),
            )?,
            recovery_target_lower: register(
                &r,
                GaugeVec::new(
                    Opts::new(
                        "firedrill_recovery_target_lower_seconds",
                        "Lower bound of the recovery target band (0 for a plain budget).",
                    ),
                    &ds,
                ),
            )?,
            recovery_target_upper: register(
                &r,
                GaugeVec::new(
                    Opts::new(
                        "firedrill_recovery_target_upper_seconds",
                        "Upper bound of the recovery target.",
                    ),
                    &ds,
                ),
            )?,
            phase: register(
                &r,
                GaugeVec::new(
                    Opts::new(
                        "firedrill_phase_duration_seconds",
                        "Duration of each measured phase of the last run, platform time.",
                    ),
                    &["drill", "scenario", "platform", "phase"],
                ),
            )?,
            phase_target_upper: register(
                &r,
                GaugeVec::new(
                    Opts::new(
                        "firedrill_phase_target_upper_seconds",
                        "Upper bound of each phase's target.",
                    ),
                    &["drill", "scenario", "platform", "phase"],
                ),
            )?,
            phase_met: register(
                &r,
                IntGaugeVec::new(
                    Opts::new(
                        "firedrill_phase_target_met",
                        "1 when the phase met its target in the last run, 0 when it missed.",
                    ),
                    &["drill", "scenario", "platform", "phase"],
                ),
            )?,
            milestone: register(
                &r,
                GaugeVec::new(
                    Opts::new(
                        "firedrill_milestone_seconds",
                        "When each milestone was reached, seconds of platform time since the scenario started.",
                    ),
                    &["drill", "scenario", "platform", "milestone"],
                ),
            )?,
            faults_active: register(
                &r,
                IntGaugeVec::new(
                    Opts::new(
                        "firedrill_faults_active",
                        "Faults injected and not yet undone; above 0 after a drill ended means a fault was left behind.",
                    ),
                    &ds,
                ),
            )?,
            probe_requests: register(
                &r,
                IntCounterVec::new(
                    Opts::new(
                        "firedrill_probe_requests_total",
                        "Probe requests by outcome (good, bad).",
                    ),
                    &["drill", "scenario", "platform", "probe", "outcome"],
                ),
            )?,
            writes_acknowledged: register(
                &r,
                IntCounterVec::new(
                    Opts::new(
                        "firedrill_writes_acknowledged_total",
                        "Writes acknowledged to the write checker.",
                    ),
                    &["drill", "scenario", "platform", "namespace"],
                ),
            )?,
            writes_lost: register(
                &r,
                IntCounterVec::new(
                    Opts::new(
                        "firedrill_writes_lost_total",
                        "Acknowledged writes that could not be read back (RPO).",
                    ),
                    &["drill", "scenario", "platform", "namespace"],
                ),
            )?,
            last_success: register(
                &r,
                GaugeVec::new(
                    Opts::new(
                        "firedrill_last_success_timestamp_seconds",
                        "Unix time of the last run in which every step passed.",
                    ),
                    &["drill", "scenario", "platform"],
                ),
            )?,
            in_progress: register(
                &r,
                IntGaugeVec::new(
                    Opts::new("firedrill_drill_in_progress", "1 while the scenario runs."),
                    &ds,
                ),
            )?,
            aborts: register(
                &r,
                IntCounterVec::new(
                    Opts::new(
                        "firedrill_drill_aborts_total",
                        "Drill scenarios stopped before their end, by what stopped them (signal, guard); everything they injected is undone unless firedrill_faults_active says otherwise.",
                    ),
                    &["drill", "scenario", "platform", "reason"],
                ),
            )?,
            guard_trips: register(
                &r,
                IntCounterVec::new(
                    Opts::new(
                        "firedrill_guard_trips_total",
                        "Guards that tripped and stopped a drill, by guard (a name from the platform file).",
                    ),
                    &["drill", "scenario", "platform", "guard"],
                ),
            )?,
            registry: r,
            platform: platform.to_owned(),
            current: None,
            running: false,
        })
    }

    /// The registry, for serving and pushing.
    #[must_use]
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The text exposition of every series.
    #[must_use]
    pub fn encode(&self) -> String {
        encode(&self.families())
    }

    /// Every family with its series, collected straight from the vectors.
    ///
    /// `Registry::gather` also sorts every family's series and re-checks them for duplicates;
    /// with 10,000 series that is most of a scrape's cost. The registry already refused
    /// duplicate names at registration, and the exposition format needs no order among series,
    /// so a scrape collects directly (families in name order, as `gather` gives them).
    #[must_use]
    pub fn families(&self) -> Vec<prometheus::proto::MetricFamily> {
        let collectors: [&dyn prometheus::core::Collector; 16] = [
            &self.runs,
            &self.recovery,
            &self.recovery_target_lower,
            &self.recovery_target_upper,
            &self.phase,
            &self.phase_target_upper,
            &self.phase_met,
            &self.milestone,
            &self.faults_active,
            &self.probe_requests,
            &self.writes_acknowledged,
            &self.writes_lost,
            &self.last_success,
            &self.in_progress,
            &self.aborts,
            &self.guard_trips,
        ];
        let mut families: Vec<_> = collectors
            .iter()
            .flat_map(|c| c.collect())
            .filter(|f| !f.get_metric().is_empty())
            .collect();
        families.sort_by(|a, b| a.name().cmp(b.name()));
        families
    }

    fn labels<'a>(&'a self, extra: &[&'a str]) -> Option<Vec<&'a str>> {
        let (drill, scenario) = self.current.as_ref()?;
        let mut labels = vec![drill.as_str(), scenario.as_str(), self.platform.as_str()];
        labels.extend_from_slice(extra);
        Some(labels)
    }
}

/// Text exposition of metric families.
#[must_use]
pub fn encode(families: &[prometheus::proto::MetricFamily]) -> String {
    let mut buffer = Vec::new();
    // Encoding into a Vec cannot fail for well-formed families.
    let _ = TextEncoder::new().encode(families, &mut buffer);
    String::from_utf8(buffer).unwrap_or_default()
}

impl Sink for Metrics {
    fn handle(&mut self, event: &Event) {
        match event {
            Event::ScenarioStarted {
                feature, scenario, ..
            } => {
                self.current = Some((feature.clone(), scenario.clone()));
                self.running = true;
                if let Some(l) = self.labels(&[]) {
                    self.in_progress.with_label_values(&l).set(1);
                    self.faults_active.with_label_values(&l).set(0);
                }
            }
            Event::Milestone(m) => {
                if let Some(l) = self.labels(&[m.name.as_str()]) {
                    self.milestone
                        .with_label_values(&l)
                        .set(m.at.offset().as_secs_f64());
                }
            }
            Event::FaultInjected { .. } => {
                if let Some(l) = self.labels(&[]) {
                    self.faults_active.with_label_values(&l).inc();
                }
            }
            Event::FaultUndone { error: None, .. } => {
                if let Some(l) = self.labels(&[]) {
                    self.faults_active.with_label_values(&l).dec();
                }
            }
            Event::PhaseMeasured(phase) => {
                let Some(verdict) = phase.verdict else { return };
                if let Some(l) = self.labels(&[phase.name.as_str()]) {
                    self.phase
                        .with_label_values(&l)
                        .set(verdict.measured.as_secs_f64());
                    self.phase_target_upper
                        .with_label_values(&l)
                        .set(verdict.target.upper().as_secs_f64());
                    self.phase_met
                        .with_label_values(&l)
                        .set(i64::from(verdict.passed));
                }
                if RECOVERY_PHASES.contains(&phase.name.as_str())
                    && let Some(l) = self.labels(&[])
                {
                    self.recovery
                        .with_label_values(&l)
                        .set(verdict.measured.as_secs_f64());
                    let lower = match verdict.target {
                        Target::Band { low, .. } => low.as_secs_f64(),
                        Target::Within { .. } => 0.0,
                    };
                    self.recovery_target_lower.with_label_values(&l).set(lower);
                    self.recovery_target_upper
                        .with_label_values(&l)
                        .set(verdict.target.upper().as_secs_f64());
                }
            }
            Event::ProbeStopped { probe, state } => {
                for (outcome, n) in [("good", state.good), ("bad", state.bad)] {
                    if let Some(l) = self.labels(&[probe.as_str(), outcome]) {
                        self.probe_requests.with_label_values(&l).inc_by(n);
                    }
                }
            }
            Event::WritesChecked {
                namespace,
                acknowledged,
                lost,
            } => {
                if let Some(l) = self.labels(&[namespace.as_str()]) {
                    self.writes_acknowledged
                        .with_label_values(&l)
                        .inc_by(*acknowledged);
                    self.writes_lost.with_label_values(&l).inc_by(*lost);
                }
            }
            Event::GuardTripped(trip) => {
                if let Some(l) = self.labels(&[trip.guard.as_str()]) {
                    self.guard_trips.with_label_values(&l).inc();
                }
            }
            // The scenario running when the run stopped never finishes: it counts as a run
            // with the result `aborted`, and is no longer in progress.
            Event::Aborted { kind, .. } if self.running => {
                self.running = false;
                if let Some(l) = self.labels(&[kind.as_str()]) {
                    self.aborts.with_label_values(&l).inc();
                }
                if let Some(l) = self.labels(&["aborted"]) {
                    self.runs.with_label_values(&l).inc();
                }
                if let Some(l) = self.labels(&[]) {
                    self.in_progress.with_label_values(&l).set(0);
                }
            }
            Event::ScenarioFinished { passed, .. } => {
                self.running = false;
                if let Some(l) = self.labels(&[if *passed { "passed" } else { "failed" }]) {
                    self.runs.with_label_values(&l).inc();
                }
                if let Some(l) = self.labels(&[]) {
                    self.in_progress.with_label_values(&l).set(0);
                    if *passed {
                        let now = std::time::SystemTime::now()
                            .duration_since(std::time::UNIX_EPOCH)
                            .map(|d| d.as_secs_f64())
                            .unwrap_or_default();
                        self.last_success.with_label_values(&l).set(now);
                    }
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use firedrill_core::clock::PlatformTime;
    use firedrill_core::target::Target;
    use firedrill_core::timeline::Phase;
    use std::time::Duration;

    fn at(s: u64) -> PlatformTime {
        PlatformTime::from_offset(Duration::from_secs(s))
    }

    /// Metrics for `platform` with scenario `scenario` of drill `feature` started.
    fn started(platform: &str, feature: &str, scenario: &str) -> Metrics {
        let mut m = Metrics::new(platform).expect("metrics");
        m.handle(&Event::ScenarioStarted {
            feature: feature.into(),
            scenario: scenario.into(),
            tags: vec![],
            at: at(0),
        });
        m
    }

    #[test]
    fn a_drill_run_sets_recovery_target_faults_and_result() {
        let mut m = started("embedded", "region", "us-west1 lost");
        m.handle(&Event::FaultInjected {
            id: "r/1".into(),
            fault: "dark".into(),
            undo: "light".into(),
            at: at(1),
        });
        let target = Target::Band {
            low: Duration::from_secs(1200),
            high: Duration::from_secs(1500),
        };
        m.handle(&Event::PhaseMeasured(Phase {
            name: "failover".into(),
            from: "a".into(),
            to: "b".into(),
            start: at(1),
            end: Some(at(1321)),
            verdict: Some(target.judge(Duration::from_secs(1320))),
        }));
        let text = m.encode();
        assert!(text.contains(r#"firedrill_recovery_seconds{drill="region",platform="embedded",scenario="us-west1 lost"} 1320"#), "{text}");
        assert!(text.contains(r#"firedrill_recovery_target_lower_seconds{drill="region",platform="embedded",scenario="us-west1 lost"} 1200"#), "{text}");
        assert!(text.contains(r#"firedrill_faults_active{drill="region",platform="embedded",scenario="us-west1 lost"} 1"#), "{text}");
        m.handle(&Event::FaultUndone {
            id: "r/1".into(),
            fault: "dark".into(),
            at: at(1400),
            error: None,
        });
        m.handle(&Event::ScenarioFinished {
            feature: "region".into(),
            scenario: "us-west1 lost".into(),
            passed: true,
            at: at(1401),
        });
        let text = m.encode();
        assert!(text.contains(r#"firedrill_faults_active{drill="region",platform="embedded",scenario="us-west1 lost"} 0"#), "{text}");
        assert!(text.contains(r#"firedrill_drill_runs_total{drill="region",platform="embedded",result="passed",scenario="us-west1 lost"} 1"#), "{text}");
        assert!(
            text.contains("firedrill_last_success_timestamp_seconds{"),
            "{text}"
        );
    }

    #[test]
    fn a_guard_that_trips_counts_the_scenario_aborted_by_it() {
        let mut m = started("p", "f", "s");
        m.handle(&Event::GuardTripped(firedrill_core::guard::GuardTrip {
            guard: "bystanders".into(),
            value: Some(40.0),
            seen: "prod-2-orders".into(),
            abort_if: "> 5".into(),
            evaluations: 2,
            at: at(30),
        }));
        let aborted = Event::Aborted {
            reason: "guard \"bystanders\"".into(),
            kind: "guard".into(),
            at: at(30),
        };
        m.handle(&aborted);
        // A second stop after the scenario stopped counts nothing more.
        m.handle(&aborted);
        let text = m.encode();
        for line in [
            r#"firedrill_guard_trips_total{drill="f",guard="bystanders",platform="p",scenario="s"} 1"#,
            r#"firedrill_drill_aborts_total{drill="f",platform="p",reason="guard",scenario="s"} 1"#,
            r#"firedrill_drill_runs_total{drill="f",platform="p",result="aborted",scenario="s"} 1"#,
            r#"firedrill_drill_in_progress{drill="f",platform="p",scenario="s"} 0"#,
        ] {
            assert!(text.contains(line), "{line} not in\n{text}");
        }
    }

    #[test]
    fn a_failed_undo_leaves_the_fault_counted_as_active() {
        let mut m = started("p", "f", "s");
        m.handle(&Event::FaultInjected {
            id: "r/1".into(),
            fault: "x".into(),
            undo: "y".into(),
            at: at(1),
        });
        m.handle(&Event::FaultUndone {
            id: "r/1".into(),
            fault: "x".into(),
            at: at(2),
            error: Some("refused".into()),
        });
        assert!(
            m.encode()
                .contains(r#"firedrill_faults_active{drill="f",platform="p",scenario="s"} 1"#)
        );
    }

    #[test]
    fn names_lists_exactly_the_registered_families() {
        let m = Metrics::new("p").expect("metrics");
        let four = ["a", "b", "c", "d"];
        let five = ["a", "b", "c", "d", "e"];
        m.runs.with_label_values(&four).inc();
        for g in [
            &m.recovery,
            &m.recovery_target_lower,
            &m.recovery_target_upper,
            &m.last_success,
        ] {
            g.with_label_values(&four[..3]).set(1.0);
        }
        for g in [&m.phase, &m.phase_target_upper, &m.milestone] {
            g.with_label_values(&four).set(1.0);
        }
        m.phase_met.with_label_values(&four).set(1);
        m.faults_active.with_label_values(&four[..3]).set(1);
        m.in_progress.with_label_values(&four[..3]).set(1);
        m.aborts.with_label_values(&four).inc();
        m.guard_trips.with_label_values(&four).inc();
        m.probe_requests.with_label_values(&five).inc();
        m.writes_acknowledged.with_label_values(&four).inc();
        m.writes_lost.with_label_values(&four).inc();
        let mut registered: Vec<String> = m
            .registry()
            .gather()
            .iter()
            .map(|f| f.name().to_owned())
            .collect();
        registered.sort();
        let mut names: Vec<&str> = NAMES.to_vec();
        names.sort_unstable();
        assert_eq!(registered, names);
    }

    #[test]
    fn a_scrape_holds_exactly_the_registry_series() {
        let mut m = Metrics::new("p").expect("metrics");
        for scenario in ["a", "b"] {
            m.handle(&Event::ScenarioStarted {
                feature: "f".into(),
                scenario: scenario.into(),
                tags: vec![],
                at: at(0),
            });
            m.handle(&Event::FaultInjected {
                id: "r/1".into(),
                fault: "x".into(),
                undo: "y".into(),
                at: at(1),
            });
            m.handle(&Event::ScenarioFinished {
                feature: "f".into(),
                scenario: scenario.into(),
                passed: true,
                at: at(2),
            });
        }
        let lines = |text: String| {
            let mut lines: Vec<String> = text
                .lines()
                .filter(|l| !l.contains("last_success"))
                .map(str::to_owned)
                .collect();
            lines.sort();
            lines
        };
        assert_eq!(lines(m.encode()), lines(encode(&m.registry().gather())));
    }
}
