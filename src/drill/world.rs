//! The cucumber world: one per scenario, holding the run's shared context and the scenario's
//! timeline, faults and probes.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::watch;

use crate::drill::clock::{Clock, PlatformTime};
use crate::drill::events::{Bus, Event};
use crate::drill::ledger::{Entry, Ledger, LedgerError, Undo, wall_now};
use crate::drill::timeline::{Milestone, Timeline};
use crate::drill::undo;
use crate::platform::Platform;
use crate::providers::http::{self, Running};

tokio::task_local! {
    /// The context of the run the current task belongs to (worlds are created inside it).
    pub static RUN: Arc<RunContext>;
}

/// What every scenario of a run shares.
pub struct RunContext {
    /// The run's id (ledger and reports).
    pub run_id: String,
    /// The platform, validated.
    pub platform: Arc<Platform>,
    /// The one clock.
    pub clock: Clock,
    /// The ledger (safety rules 2–4).
    pub ledger: Mutex<Ledger>,
    /// Events to the console, reports and metrics.
    pub events: Bus,
    /// HTTP client for probes.
    pub http: reqwest::Client,
    /// Set when an undo failed: faults may remain (exit code 4).
    pub undo_failed: AtomicBool,
    /// How the changes of a @gameday scenario are approved.
    pub approval: Approval,
    /// What the embedded platform really did, recorded into each scenario's timeline as
    /// `ground truth: …` milestones when it ends; `None` on a real platform.
    pub ground_truth: Option<crate::sim::truth::Source>,
    /// Run before each scenario to bring the embedded platform back to its steady state.
    pub settle: Option<crate::sim::Settle>,
    next_fault: AtomicU64,
}

/// How the changes of a @gameday scenario are approved before they act.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Approval {
    /// A person answers a prompt on the terminal for each change (the default).
    Prompt,
    /// Every change is approved without asking (`--auto-approve`, for CI).
    Automatic,
}

impl fmt::Debug for RunContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RunContext")
            .field("run_id", &self.run_id)
            .field("platform", &self.platform.name)
            .finish_non_exhaustive()
    }
}

impl RunContext {
    /// A context for one run.
    #[must_use]
    pub fn new(
        run_id: String,
        platform: Arc<Platform>,
        clock: Clock,
        ledger: Ledger,
        events: Bus,
        http: reqwest::Client,
    ) -> Self {
        Self {
            run_id,
            platform,
            clock,
            ledger: Mutex::new(ledger),
            events,
            http,
            undo_failed: AtomicBool::new(false),
            approval: Approval::Prompt,
            ground_truth: None,
            settle: None,
            next_fault: AtomicU64::new(1),
        }
    }

    /// Appends to the ledger (flushed to disk before returning).
    ///
    /// # Errors
    ///
    /// [`LedgerError`]; the caller must not go on to inject.
    pub fn append(&self, entry: &Entry) -> Result<(), LedgerError> {
        let mut ledger = match self.ledger.lock() {
            Ok(l) => l,
            Err(poisoned) => poisoned.into_inner(),
        };
        ledger.append(entry)
    }

    fn next_fault_id(&self) -> String {
        format!(
            "{}/{}",
            self.run_id,
            self.next_fault.fetch_add(1, Ordering::SeqCst)
        )
    }

    /// Applies the undo of `fault` and records the outcome in the ledger and the event stream.
    /// Returns whether the fault is gone.
    pub async fn undo(&self, fault: &InjectedFault) -> bool {
        let outcome = undo::apply(&fault.undo, &self.platform, &self.clock).await;
        let error = match outcome {
            Ok(()) => match self.append(&Entry::Undone {
                id: fault.id.clone(),
                at: wall_now(),
                note: None,
            }) {
                Ok(()) => None,
                Err(e) => Some(format!("undone, but the ledger could not record it: {e}")),
            },
            Err(e) => Some(e.to_string()),
        };
        let ok = error.is_none();
        if !ok {
            self.undo_failed.store(true, Ordering::SeqCst);
        }
        self.events.emit(&Event::FaultUndone {
            id: fault.id.clone(),
            fault: fault.fault.clone(),
            at: self.clock.now(),
            error,
        });
        ok
    }
}

/// A fault this scenario injected.
#[derive(Clone, Debug)]
pub struct InjectedFault {
    /// Ledger id.
    pub id: String,
    /// What it is.
    pub fault: String,
    /// How to undo it.
    pub undo: Undo,
    /// A remediation (failover) rather than a fault; undone after the faults.
    pub remediation: bool,
    /// When it was injected.
    pub at: PlatformTime,
}

/// What a change made by a step is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    /// A fault: undone first, newest first.
    Fault,
    /// A remediation such as a traffic switch: undone after every fault (failback happens once
    /// the broken part is whole again).
    Remediation,
}

/// Errors of the drill engine itself, as steps see them.
#[derive(Debug, thiserror::Error)]
pub enum DrillError {
    /// The ledger could not record the undo, so the fault was not injected.
    #[error("fault \"{fault}\" was NOT injected: {source}")]
    Ledger {
        /// The fault.
        fault: String,
        /// Why.
        source: LedgerError,
    },
    /// A step ran outside a run.
    #[error("no run context: steps only run under `firedrill run`")]
    NoRun,
    /// The person at the GameDay prompt did not approve the change.
    #[error("\"{fault}\" was NOT injected: not approved at the GameDay prompt (answer: {}); the drill stops here and undoes what it did", answer.as_deref().map_or("none, stdin closed".to_owned(), |a| format!("\"{a}\"")))]
    NotApproved {
        /// The change.
        fault: String,
        /// What was typed, if anything.
        answer: Option<String>,
    },
}

/// The world of one scenario.
#[derive(cucumber::World)]
#[world(init = Self::new)]
pub struct Drill {
    /// The run.
    pub run: Arc<RunContext>,
    /// The scenario's name.
    pub scenario: String,
    /// Milestones observed so far (probes record into it from their own tasks).
    pub timeline: Arc<Mutex<Timeline>>,
    /// Bumped on every milestone, so waits wake on change instead of polling.
    pub timeline_changed: Arc<watch::Sender<u64>>,
    /// Faults injected, oldest first.
    pub faults: Vec<InjectedFault>,
    /// Faults already undone by a step (not undone again at the end).
    pub undone: Vec<String>,
    /// Continuous probes by name.
    pub probes: BTreeMap<String, Running>,
    /// The MongoDB steps' observers, write checkers and reports.
    pub mongo: crate::steps::mongo::Scenario,
    /// Whether the scenario is a @gameday drill: a person approves each change first.
    pub gameday: bool,
    /// When the scenario started.
    pub started: PlatformTime,
    /// The Kubernetes steps' snapshots from the scenario's start.
    pub kube: crate::steps::kube::Scenario,
}

impl fmt::Debug for Drill {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Drill")
            .field("scenario", &self.scenario)
            .field("faults", &self.faults.len())
            .finish_non_exhaustive()
    }
}

impl Drill {
    async fn new() -> Result<Self, DrillError> {
        let run = RUN.try_with(Arc::clone).map_err(|_| DrillError::NoRun)?;
        Ok(Self {
            run,
            scenario: String::new(),
            timeline: Arc::new(Mutex::new(Timeline::default())),
            timeline_changed: Arc::new(watch::channel(0).0),
            faults: Vec::new(),
            undone: Vec::new(),
            probes: BTreeMap::new(),
            mongo: crate::steps::mongo::Scenario::default(),
            gameday: false,
            started: PlatformTime::ZERO,
            kube: crate::steps::kube::Scenario::default(),
        })
    }

    /// The clock.
    #[must_use]
    pub fn clock(&self) -> Clock {
        self.run.clock
    }

    /// The platform.
    #[must_use]
    pub fn platform(&self) -> &Platform {
        &self.run.platform
    }

    /// Records a milestone observed at `at`.
    pub fn milestone(&self, name: impl Into<String>, at: PlatformTime, source: &str) {
        record(
            &self.timeline,
            &self.timeline_changed,
            &self.run.events,
            Milestone {
                name: name.into(),
                at,
                source: source.to_owned(),
            },
        );
    }

    /// A copy of the timeline.
    #[must_use]
    pub fn timeline(&self) -> Timeline {
        match self.timeline.lock() {
            Ok(t) => t.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Writes the undo to the ledger (flushed), then runs `inject` (a fault, or any change a drill
    /// makes that must be taken back, like a traffic switch). The change is tracked for
    /// undo even when `inject` fails halfway: it may have partly taken effect.
    ///
    /// # Errors
    ///
    /// The ledger error (nothing injected) or `inject`'s error (undo still scheduled).
    pub async fn inject<F, T, E>(
        &mut self,
        change: Change,
        fault: &str,
        undo: Undo,
        inject: F,
    ) -> Result<T, Box<dyn std::error::Error + Send + Sync>>
    where
        F: std::future::Future<Output = Result<T, E>>,
        E: std::error::Error + Send + Sync + 'static,
    {
        if self.gameday {
            self.approve(fault, &undo).await?;
        }
        let id = self.run.next_fault_id();
        let entry = Entry::Inject {
            id: id.clone(),
            run: self.run.run_id.clone(),
            scenario: self.scenario.clone(),
            fault: fault.to_owned(),
            undo: undo.clone(),
            remediation: change == Change::Remediation,
            at: wall_now(),
        };
        self.run
            .append(&entry)
            .map_err(|source| DrillError::Ledger {
                fault: fault.to_owned(),
                source,
            })?;
        let at = self.clock().now();
        let description = undo.describe();
        self.faults.push(InjectedFault {
            id: id.clone(),
            fault: fault.to_owned(),
            undo,
            remediation: change == Change::Remediation,
            at,
        });
        self.run.events.emit(&Event::FaultInjected {
            id,
            fault: fault.to_owned(),
            undo: description,
            at,
        });
        // A fault's clock starts once its undo is on disk and it is about to act, not before
        // the ledger's fsync: in compressed time a slow flush is seconds of platform time.
        if change == Change::Fault && self.timeline().first("fault injected").is_none() {
            self.milestone("fault injected", at, "engine");
        }
        Ok(inject.await?)
    }

    /// In a @gameday scenario, waits for a person to approve `fault` (or approves it at once
    /// under `--auto-approve`), and records the milestone `approved: {fault}`. Nothing is
    /// written to the ledger or injected before that.
    async fn approve(&mut self, fault: &str, undo: &Undo) -> Result<(), DrillError> {
        let source = match self.run.approval {
            Approval::Automatic => "--auto-approve",
            Approval::Prompt => {
                let question = format!(
                    "\n  ? GameDay: approve \"{fault}\" (undo: {})? [y/N] ",
                    undo.describe()
                );
                let answer = tokio::task::spawn_blocking(move || ask(&question))
                    .await
                    .ok()
                    .flatten();
                let yes = answer
                    .as_deref()
                    .is_some_and(|a| matches!(a.trim(), "y" | "Y" | "yes" | "YES" | "Yes"));
                if !yes {
                    return Err(DrillError::NotApproved {
                        fault: fault.to_owned(),
                        answer: answer.map(|a| a.trim().to_owned()),
                    });
                }
                "operator"
            }
        };
        let at = self.clock().now();
        self.milestone(format!("approved: {fault}"), at, source);
        Ok(())
    }

    /// The newest change of this scenario described as `prefix…` that is not undone yet.
    #[must_use]
    pub fn outstanding(&self, prefix: &str) -> Option<String> {
        self.faults
            .iter()
            .rev()
            .find(|f| f.fault.starts_with(prefix) && !self.undone.contains(&f.id))
            .map(|f| f.id.clone())
    }

    /// When the newest change was injected (after its undo reached the ledger).
    #[must_use]
    pub fn last_injected_at(&self) -> Option<PlatformTime> {
        self.faults.last().map(|f| f.at)
    }

    /// Undoes one fault now (a step restoring it before the scenario ends).
    ///
    /// # Errors
    ///
    /// When its undo failed (it stays scheduled for the end of the scenario).
    pub async fn undo_now(&mut self, id: &str) -> Result<(), String> {
        let Some(fault) = self.faults.iter().find(|f| f.id == id).cloned() else {
            return Err(format!("no fault {id} in this scenario"));
        };
        if self.run.undo(&fault).await {
            self.undone.push(fault.id);
            Ok(())
        } else {
            Err(format!(
                "the undo of \"{}\" failed; it will be retried at the end of the scenario",
                fault.fault
            ))
        }
    }

    /// Undoes every change still in place (safety rule 3): faults newest first, then
    /// remediations newest first. Returns whether all are gone.
    pub async fn undo_all(&mut self) -> bool {
        let mut all = true;
        let mut pending: Vec<InjectedFault> = self
            .faults
            .iter()
            .rev()
            .filter(|f| !self.undone.contains(&f.id))
            .cloned()
            .collect();
        pending.sort_by_key(|f| f.remediation);
        for fault in pending {
            if self.run.undo(&fault).await {
                self.undone.push(fault.id.clone());
            } else {
                all = false;
            }
        }
        all
    }

    /// Starts (or returns) the continuous probe `name` from the platform.
    ///
    /// # Errors
    ///
    /// When the platform has no such probe.
    pub fn start_probe(&mut self, name: &str) -> Result<&Running, String> {
        if !self.probes.contains_key(name) {
            let probe = self
                .platform()
                .probes
                .get(name)
                .cloned()
                .ok_or_else(|| format!("probe \"{name}\" is not defined in the platform"))?;
            let timeline = Arc::clone(&self.timeline);
            let changed = Arc::clone(&self.timeline_changed);
            let events = self.run.events.clone();
            let on_milestone = Arc::new(
                move |probe: &str, m: http::ProbeMilestone, _: &http::Observation| {
                    record(
                        &timeline,
                        &changed,
                        &events,
                        Milestone {
                            name: m.name,
                            at: m.at,
                            source: probe.to_owned(),
                        },
                    );
                },
            );
            let running = http::spawn(
                name,
                probe,
                self.run.http.clone(),
                self.clock(),
                on_milestone,
            );
            self.probes.insert(name.to_owned(), running);
        }
        self.probes
            .get(name)
            .ok_or_else(|| format!("probe \"{name}\" did not start"))
    }

    /// Waits until `find` returns something from the timeline, or the platform instant
    /// `deadline` passes (then `None`). Wakes on every new milestone; never polls.
    pub async fn wait_for<T>(
        &self,
        deadline: PlatformTime,
        find: impl Fn(&Timeline) -> Option<T>,
    ) -> Option<T> {
        let mut changed = self.timeline_changed.subscribe();
        let clock = self.clock();
        loop {
            changed.borrow_and_update();
            if let Some(found) = find(&self.timeline()) {
                return Some(found);
            }
            match clock.timeout_at(deadline, changed.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) | Err(_) => return find(&self.timeline()),
            }
        }
    }

    /// Stops every probe and reports their final state.
    pub fn stop_probes(&mut self) {
        for (name, running) in std::mem::take(&mut self.probes) {
            let state = running.stop();
            self.run.events.emit(&Event::ProbeStopped {
                probe: name,
                state: Box::new(state),
            });
        }
    }
}

fn record(
    timeline: &Mutex<Timeline>,
    changed: &watch::Sender<u64>,
    events: &Bus,
    milestone: Milestone,
) {
    match timeline.lock() {
        Ok(mut t) => t.record(milestone.clone()),
        Err(poisoned) => poisoned.into_inner().record(milestone.clone()),
    }
    changed.send_modify(|v| *v += 1);
    events.emit(&Event::Milestone(milestone));
}
/// Asks `question` on the terminal; the answer line, or `None` when stdin is closed.
pub fn ask(question: &str) -> Option<String> {
    use std::io::{BufRead as _, Write as _};
    {
        // Not held while waiting for the answer: a run stopped by a signal at the prompt
        // prints its last lines to stderr while this read still blocks.
        let mut err = std::io::stderr().lock();
        let _ = err.write_all(question.as_bytes());
        let _ = err.flush();
    }
    let mut line = String::new();
    match std::io::stdin().lock().read_line(&mut line) {
        Ok(0) | Err(_) => None,
        Ok(_) => Some(line),
    }
}
