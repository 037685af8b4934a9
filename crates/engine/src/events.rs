//! The typed event stream in the middle of a run. Console output, the JSON report and (later)
//! metrics are independent consumers of it.

use std::sync::{Arc, Mutex};

use serde::Serialize;

use firedrill_core::clock::PlatformTime;
use firedrill_core::guard::GuardTrip;
use firedrill_core::observed::{Finished, ProbeState, QueryJudged};
use firedrill_core::timeline::{Milestone, Phase};

/// Something that happened during a run.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum Event {
    /// The run began.
    RunStarted {
        /// Its id.
        run: String,
        /// The platform's name.
        platform: String,
        /// Platform seconds per wall second.
        time_scale: f64,
        /// Wall-clock start, RFC 3339.
        wall_start: String,
    },
    /// A scenario began.
    ScenarioStarted {
        /// Its feature's name.
        feature: String,
        /// Its name.
        scenario: String,
        /// Its tags (feature's and its own), without `@`.
        tags: Vec<String>,
        /// When (platform time).
        at: PlatformTime,
    },
    /// A step began.
    StepStarted {
        /// `Given`, `When`, `Then`, `And`.
        keyword: String,
        /// The step text.
        text: String,
        /// When (platform time). Step events reach the bus through cucumber's writer, after
        /// what the step's own code emitted; this instant places them on the timeline.
        at: PlatformTime,
    },
    /// A step ended.
    StepFinished {
        /// `Given`, `When`, `Then`, `And`.
        keyword: String,
        /// The step text.
        text: String,
        /// Passed, failed (with why) or skipped.
        outcome: StepOutcome,
        /// When (platform time); see [`Event::StepStarted`].
        at: PlatformTime,
    },
    /// A milestone was observed.
    Milestone(Milestone),
    /// The drill is waiting for something with a deadline.
    Waiting {
        /// What it waits for.
        what: String,
        /// Since when the wait's clock runs (platform time).
        since: PlatformTime,
        /// The deadline (platform time).
        deadline: PlatformTime,
    },
    /// A fault's undo was written to the ledger and the fault is being applied.
    FaultInjected {
        /// Ledger id.
        id: String,
        /// What the fault is.
        fault: String,
        /// How it will be undone.
        undo: String,
        /// When (platform time).
        at: PlatformTime,
    },
    /// A fault's undo ran.
    FaultUndone {
        /// Ledger id.
        id: String,
        /// What the fault was.
        fault: String,
        /// When (platform time).
        at: PlatformTime,
        /// Why the undo failed, when it did (the fault may remain).
        error: Option<String>,
    },
    /// A command exited.
    CommandFinished(Finished),
    /// A phase was measured against its target.
    PhaseMeasured(Phase),
    /// A continuous probe stopped; its final counts.
    ProbeStopped {
        /// The probe's name.
        probe: String,
        /// Everything it saw.
        state: Box<ProbeState>,
    },
    /// A measurement a step judged, in words (a latency budget's quantiles).
    Measured(String),
    /// A write checker finished reading back (emitted by the MongoDB write checker).
    WritesChecked {
        /// The namespace whose database was written.
        namespace: String,
        /// Writes the database acknowledged.
        acknowledged: u64,
        /// Acknowledged writes that could not be read back.
        lost: u64,
    },
    /// An SLO assertion over Prometheus was judged, with the series it judged.
    QueryJudged(Box<QueryJudged>),
    /// An armed guard tripped; the run stops next.
    GuardTripped(GuardTrip),
    /// A signal or a stop condition stopped the run; what it injected is undone next.
    Aborted {
        /// What stopped it: the signal as `kill -l` names it (`SIGHUP`), or `guard "{name}"`.
        reason: String,
        /// Its kind, a bounded set for metrics: `signal`, `guard`.
        kind: String,
        /// When (platform time).
        at: PlatformTime,
    },
    /// The run started inside a blackout window: `--override-blackout` said why.
    BlackoutOverridden(BlackoutOverride),
    /// A scenario ended: the last event of the scenario, after every step event and every
    /// undo of its end.
    ScenarioFinished {
        /// Its feature's name.
        feature: String,
        /// Its name.
        scenario: String,
        /// Whether every step passed.
        passed: bool,
        /// When (platform time).
        at: PlatformTime,
    },
}

/// A blackout window a run was let into, and who said why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct BlackoutOverride {
    /// The window or freeze, as the platform writes it.
    pub window: String,
    /// The window's own reason, when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window_reason: Option<String>,
    /// When it ends (RFC 3339 with its time zone).
    pub until: String,
    /// Why the run could not wait (`--override-blackout`).
    pub reason: String,
    /// Who ran it.
    pub by: String,
}

/// How a step ended.
#[derive(Clone, Debug, PartialEq, Serialize, serde::Deserialize)]
#[serde(tag = "outcome", content = "message", rename_all = "kebab-case")]
pub enum StepOutcome {
    /// It passed.
    Passed,
    /// It failed, with the message.
    Failed(String),
    /// It did not run.
    Skipped,
}

/// A consumer of events. Called synchronously, in order; keep it quick.
pub trait Sink: Send {
    /// Handles one event.
    fn handle(&mut self, event: &Event);
}

/// Delivers every event to every sink, in order.
#[derive(Clone, Default)]
pub struct Bus {
    sinks: Arc<Mutex<Vec<Box<dyn Sink>>>>,
}

impl std::fmt::Debug for Bus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Bus")
    }
}

impl Bus {
    /// Adds a sink.
    pub fn subscribe(&self, sink: Box<dyn Sink>) {
        if let Ok(mut sinks) = self.sinks.lock() {
            sinks.push(sink);
        }
    }

    /// Sends an event to every sink.
    pub fn emit(&self, event: &Event) {
        // A sink that panicked poisons the lock; the drill must go on (undo matters more than
        // output), so a poisoned bus keeps delivering.
        let mut sinks = match self.sinks.lock() {
            Ok(sinks) => sinks,
            Err(poisoned) => poisoned.into_inner(),
        };
        for sink in sinks.iter_mut() {
            sink.handle(event);
        }
    }
}

/// A sink that forwards to a closure (for tests and small consumers).
pub struct FnSink<F: FnMut(&Event) + Send>(pub F);

impl<F: FnMut(&Event) + Send> Sink for FnSink<F> {
    fn handle(&mut self, event: &Event) {
        (self.0)(event);
    }
}
