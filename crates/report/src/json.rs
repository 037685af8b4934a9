//! firedrill's own JSON drill report (`--json FILE`), versioned by `schema_version`.
//!
//! Per scenario: the timeline of milestones, phases with durations, targets and verdicts,
//! faults injected and undone, commands run, probe results and step outcomes. Times are
//! platform-time seconds since the run started; `started_at` gives the wall-clock origin.

use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use firedrill_core::clock::PlatformTime;
use firedrill_core::guard::GuardTrip;
use firedrill_core::observed::Finished;
use firedrill_core::observed::{Observation, QueryJudged};
use firedrill_core::timeline::{Milestone, Phase};
use firedrill_engine::events::{BlackoutOverride, Event, Sink, StepOutcome};

/// The version of this format; bumped on any incompatible change.
pub const SCHEMA_VERSION: u32 = 1;

/// A whole run.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Report {
    /// [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// The run id.
    pub run: String,
    /// The platform's name.
    pub platform: String,
    /// Platform seconds per wall second.
    pub time_scale: f64,
    /// Wall-clock start, RFC 3339.
    pub started_at: String,
    /// `passed`, `failed`, `aborted` or `undo-incomplete`.
    pub verdict: String,
    /// What stopped the run, when something did: a signal (`SIGHUP`) or a stop condition
    /// (`guard "bystanders"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aborted_by: Option<String>,
    /// The blackout window this run was let into by `--override-blackout`, and why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blackout_override: Option<BlackoutOverride>,
    /// Scenarios in the order they ran.
    pub scenarios: Vec<ScenarioReport>,
}

/// One scenario.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ScenarioReport {
    /// Feature name.
    pub feature: String,
    /// Scenario name.
    pub scenario: String,
    /// Tags without `@`.
    pub tags: Vec<String>,
    /// Whether every step passed.
    pub passed: bool,
    /// Start (platform time).
    pub started: PlatformTime,
    /// End (platform time).
    pub finished: Option<PlatformTime>,
    /// Steps with outcomes.
    pub steps: Vec<StepReport>,
    /// Milestones in time order.
    pub milestones: Vec<Milestone>,
    /// Phases measured against targets.
    pub phases: Vec<Phase>,
    /// Faults injected and their undo.
    pub faults: Vec<FaultReport>,
    /// Commands run, with their output.
    pub commands: Vec<Finished>,
    /// Probes, with every observation.
    pub probes: Vec<ProbeReport>,
    /// Write checkers' results.
    #[serde(default)]
    pub writes: Vec<WritesReport>,
    /// What stopped the run while this scenario ran (`guard "bystanders"`, `SIGTERM`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aborted: Option<String>,
    /// Guards that tripped, with the value seen.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub guard_trips: Vec<GuardTrip>,
    /// SLO assertions over Prometheus, with the series they judged.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub queries: Vec<QueryJudged>,
}

/// One write checker's result.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct WritesReport {
    /// The namespace whose database was written.
    pub namespace: String,
    /// Acknowledged writes.
    pub acknowledged: u64,
    /// Acknowledged writes that could not be read back.
    pub lost: u64,
}

/// One step.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StepReport {
    /// `Given`, `When`…
    pub keyword: String,
    /// Its text.
    pub text: String,
    /// What happened.
    #[serde(flatten)]
    pub outcome: StepOutcome,
}

/// One fault.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FaultReport {
    /// Ledger id.
    pub id: String,
    /// What it was.
    pub fault: String,
    /// How it is undone.
    pub undo: String,
    /// When it was injected.
    pub injected_at: PlatformTime,
    /// When it was undone.
    pub undone_at: Option<PlatformTime>,
    /// Why the undo failed, if it did.
    pub undo_error: Option<String>,
}

/// One probe.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ProbeReport {
    /// Its name.
    pub name: String,
    /// Good answers.
    pub good: u64,
    /// Bad answers.
    pub bad: u64,
    /// Every observation, oldest first.
    pub observations: Vec<Observation>,
}

/// A report file that cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file cannot be read.
    #[error("cannot read the report {path}: {source}")]
    Read {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Not (complete) JSON, or not a drill report.
    #[error("{path}:{line}:{column}: not a firedrill drill report: {message} (hint: {hint})")]
    Parse {
        /// The file.
        path: std::path::PathBuf,
        /// Line from 1.
        line: usize,
        /// Column from 1.
        column: usize,
        /// The parser's complaint.
        message: String,
        /// What to do.
        hint: &'static str,
    },
    /// Written by a firedrill with another format.
    #[error(
        "{path}: schema_version {found}, but this firedrill reads schema_version {SCHEMA_VERSION} (hint: render it with the firedrill version that wrote it)"
    )]
    Version {
        /// The file.
        path: std::path::PathBuf,
        /// What it says.
        found: String,
    },
}

/// Reads a JSON drill report, checking its schema version first.
///
/// # Errors
///
/// [`LoadError`] naming the file, and the line and column of a parse error.
pub fn load(path: &std::path::Path) -> Result<Report, LoadError> {
    let text = std::fs::read_to_string(path).map_err(|source| LoadError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let parse_error = |e: serde_json::Error, hint| LoadError::Parse {
        path: path.to_path_buf(),
        line: e.line(),
        column: e.column(),
        message: e
            .to_string()
            .split(" at line ")
            .next()
            .unwrap_or_default()
            .to_owned(),
        hint,
    };
    let value: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
        let hint = if e.is_eof() {
            "the file ends early: was the run killed while writing it?"
        } else {
            "the file is not JSON"
        };
        parse_error(e, hint)
    })?;
    match value
        .get("schema_version")
        .and_then(serde_json::Value::as_u64)
    {
        Some(v) if v == u64::from(SCHEMA_VERSION) => {}
        other => {
            return Err(LoadError::Version {
                path: path.to_path_buf(),
                found: other.map_or_else(|| "missing".to_owned(), |v| v.to_string()),
            });
        }
    }
    serde_json::from_str(&text)
        .map_err(|e| parse_error(e, "a field has the wrong shape for this schema version"))
}

/// Builds a [`Report`] from events.
#[derive(Clone, Debug, Default)]
pub struct Builder {
    report: Arc<Mutex<Report>>,
}

impl Builder {
    /// A builder; subscribe a clone to the bus and call [`Builder::finish`] after the run.
    #[must_use]
    pub fn new() -> Self {
        Self {
            report: Arc::new(Mutex::new(Report {
                schema_version: SCHEMA_VERSION,
                ..Report::default()
            })),
        }
    }

    /// The report so far, with its verdict set.
    #[must_use]
    pub fn finish(&self, verdict: &str) -> Report {
        let mut report = match self.report.lock() {
            Ok(r) => r.clone(),
            Err(p) => p.into_inner().clone(),
        };
        report.verdict = verdict.to_owned();
        for scenario in &mut report.scenarios {
            scenario.milestones.sort_by_key(|m| m.at);
        }
        report
    }
}

impl Sink for Builder {
    fn handle(&mut self, event: &Event) {
        let mut report = match self.report.lock() {
            Ok(r) => r,
            Err(p) => p.into_inner(),
        };
        if let Event::RunStarted {
            run,
            platform,
            time_scale,
            wall_start,
        } = event
        {
            report.run.clone_from(run);
            report.platform.clone_from(platform);
            report.time_scale = *time_scale;
            report.started_at.clone_from(wall_start);
            return;
        }
        if let Event::Aborted { reason, .. } = event {
            report.aborted_by = Some(reason.clone());
            // The scenario that was running when the run stopped never finishes.
            if let Some(current) = report.scenarios.last_mut()
                && current.finished.is_none()
            {
                current.aborted = Some(reason.clone());
            }
            return;
        }
        if let Event::BlackoutOverridden(o) = event {
            report.blackout_override = Some(o.clone());
            return;
        }
        if let Event::ScenarioStarted {
            feature,
            scenario,
            tags,
            at,
        } = event
        {
            report.scenarios.push(ScenarioReport {
                feature: feature.clone(),
                scenario: scenario.clone(),
                tags: tags.clone(),
                started: *at,
                ..ScenarioReport::default()
            });
            return;
        }
        let Some(current) = report.scenarios.last_mut() else {
            return;
        };
        match event {
            Event::StepFinished {
                keyword,
                text,
                outcome,
                ..
            } => current.steps.push(StepReport {
                keyword: keyword.clone(),
                text: text.clone(),
                outcome: outcome.clone(),
            }),
            Event::Milestone(m) => current.milestones.push(m.clone()),
            Event::PhaseMeasured(p) => current.phases.push(p.clone()),
            Event::FaultInjected {
                id,
                fault,
                undo,
                at,
            } => current.faults.push(FaultReport {
                id: id.clone(),
                fault: fault.clone(),
                undo: undo.clone(),
                injected_at: *at,
                undone_at: None,
                undo_error: None,
            }),
            Event::FaultUndone { id, at, error, .. } => {
                if let Some(f) = current.faults.iter_mut().find(|f| &f.id == id) {
                    f.undone_at = Some(*at);
                    f.undo_error.clone_from(error);
                }
            }
            Event::CommandFinished(finished) => current.commands.push(finished.clone()),
            Event::GuardTripped(trip) => current.guard_trips.push(trip.clone()),
            Event::QueryJudged(judged) => current.queries.push((**judged).clone()),
            Event::WritesChecked {
                namespace,
                acknowledged,
                lost,
            } => current.writes.push(WritesReport {
                namespace: namespace.clone(),
                acknowledged: *acknowledged,
                lost: *lost,
            }),
            Event::ProbeStopped { probe, state } => current.probes.push(ProbeReport {
                name: probe.clone(),
                good: state.good,
                bad: state.bad,
                observations: state.history.clone(),
            }),
            Event::ScenarioFinished { passed, at, .. } => {
                current.passed = *passed;
                current.finished = Some(*at);
            }
            _ => {}
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::time::Duration;

    use super::*;
    use firedrill_core::observed::JudgedSeries;

    fn at(s: u64) -> PlatformTime {
        PlatformTime::from_offset(Duration::from_secs(s))
    }

    /// A scenario a guard stopped, with an SLO assertion before it, as events deliver it.
    pub(crate) fn guarded_run() -> Report {
        let mut builder = Builder::new();
        let events = [
            Event::ScenarioStarted {
                feature: "guarded".into(),
                scenario: "a bystander breaks".into(),
                tags: vec!["guard:bystanders".into()],
                at: at(0),
            },
            Event::QueryJudged(Box::new(QueryJudged {
                name: Some("errors".into()),
                query: "sum(rate(x[1m]))".into(),
                assertion: "stayed below 0.05 throughout".into(),
                limit: 0.05,
                passed: true,
                from: at(10),
                to: at(70),
                series: vec![JudgedSeries {
                    labels: "{namespace=\"prod-2\"}".into(),
                    points: vec![(at(10), 0.0), (at(40), 0.01), (at(70), 0.02)],
                }],
                failure: None,
            })),
            Event::GuardTripped(GuardTrip {
                guard: "bystanders".into(),
                value: Some(40.0),
                seen: "prod-2-orders".into(),
                abort_if: "> 5".into(),
                evaluations: 2,
                at: at(80),
            }),
            Event::Aborted {
                reason: "guard \"bystanders\"".into(),
                kind: "guard".into(),
                at: at(80),
            },
        ];
        for event in &events {
            builder.handle(event);
        }
        builder.finish("aborted")
    }

    #[test]
    fn a_guard_trip_marks_the_running_scenario_and_the_run_aborted_by_it() {
        let report = guarded_run();
        assert_eq!(report.aborted_by.as_deref(), Some("guard \"bystanders\""));
        let scenario = &report.scenarios[0];
        assert_eq!(scenario.aborted.as_deref(), Some("guard \"bystanders\""));
        assert_eq!(scenario.guard_trips[0].value, Some(40.0));
        assert_eq!(scenario.queries[0].series[0].points.len(), 3);
        let json = serde_json::to_value(&report).expect("json");
        assert_eq!(
            json["scenarios"][0]["guard_trips"][0]["guard"],
            "bystanders"
        );
        assert_eq!(
            json["scenarios"][0]["queries"][0]["series"][0]["points"][1][1],
            0.01
        );
        // A report written by this version reads back.
        let back: Report = serde_json::from_value(json).expect("reads back");
        assert_eq!(back.scenarios[0].guard_trips, scenario.guard_trips);
    }

    #[test]
    fn a_signal_after_the_last_scenario_finished_marks_only_the_run() {
        let mut builder = Builder::new();
        builder.handle(&Event::ScenarioStarted {
            feature: "f".into(),
            scenario: "s".into(),
            tags: vec![],
            at: at(0),
        });
        builder.handle(&Event::ScenarioFinished {
            feature: "f".into(),
            scenario: "s".into(),
            passed: true,
            at: at(5),
        });
        builder.handle(&Event::Aborted {
            reason: "SIGTERM".into(),
            kind: "signal".into(),
            at: at(6),
        });
        let report = builder.finish("aborted");
        assert_eq!(report.aborted_by.as_deref(), Some("SIGTERM"));
        assert_eq!(report.scenarios[0].aborted, None);
        let json = serde_json::to_value(&report).expect("json");
        assert!(json["scenarios"][0].get("guard_trips").is_none(), "{json}");
    }
}
