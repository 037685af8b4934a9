//! What every scenario of a run shares ([`RunContext`]), and one scenario's engine state
//! ([`Scenario`]): its timeline, the faults it injected, and injecting and undoing them through
//! the ledger. A cucumber world (the steps' `Drill`) is built around a [`Scenario`].

use std::any::Any;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use firedrill_core::clock::{Clock, PlatformTime};
use firedrill_core::names::{FAULT_INJECTED, MilestoneName};
use firedrill_core::timeline::{Milestone, Timeline};
use firedrill_platform::Platform;
use futures::future::BoxFuture;
use tokio::sync::watch;

use crate::events::{Bus, Event};
use crate::ledger::{Entry, Ledger, LedgerError, wall_now};
use crate::runner::Abort;
use crate::stop::{Guard, StopLine};
use crate::undo::Undo;

tokio::task_local! {
    /// The context of the run the current task belongs to (worlds are created inside it). Its
    /// undo type is the steps', which the engine does not know: see [`current`].
    static RUN: Arc<dyn Any + Send + Sync>;
}

/// The run the current task belongs to, when its undo type is `U`.
#[must_use]
pub fn current<U: Undo>() -> Option<Arc<RunContext<U>>> {
    RUN.try_with(Arc::clone)
        .ok()
        .and_then(|run| run.downcast::<RunContext<U>>().ok())
}

/// Runs `future` as part of `run`: [`current`] finds it there.
pub async fn scope<U: Undo, F: std::future::Future>(
    run: Arc<RunContext<U>>,
    future: F,
) -> F::Output {
    RUN.scope(run, future).await
}

/// What an embedded platform adds to a run. A real estate has none: the months between two
/// drills settle it, and nobody records what it "really" did.
pub trait Hooks: Send + Sync {
    /// Brings the estate back to its steady state before a scenario, so a scenario's timing does
    /// not depend on the one before it.
    fn settle(&self) -> BoxFuture<'static, ()>;

    /// What the platform's own records say happened since `since`: `(name, instant)` pairs,
    /// recorded on the scenario's timeline as `ground truth: {name}` milestones.
    fn ground_truth(&self, since: PlatformTime) -> Vec<(String, PlatformTime)>;
}

/// What every scenario of a run shares.
pub struct RunContext<U> {
    /// The run's id (ledger and reports).
    pub run_id: String,
    /// The platform, validated.
    pub platform: Arc<Platform>,
    /// The one clock.
    pub clock: Clock,
    /// The ledger (safety rules 2–4).
    pub ledger: Mutex<Ledger<U>>,
    /// Events to the console, reports and metrics.
    pub events: Bus,
    /// Set when an undo failed: faults may remain (exit code 4).
    pub undo_failed: AtomicBool,
    /// How the changes of a @gameday scenario are approved.
    pub approval: Approval,
    /// Asks a person under [`Approval::Prompt`]: the question in, the answer line out (`None`
    /// when nobody can answer). The terminal ([`ask`]) unless a test answers.
    pub prompt: Prompt,
    /// What the embedded platform adds; `None` on a real estate.
    pub hooks: Option<Arc<dyn Hooks>>,
    /// The estate's halt marker, read at its interval: a halt aborts the run and undoes it.
    pub halt: Option<crate::halt::Watch>,
    /// Pulled by a stop condition (a tripped guard): the run loop stops and undoes everything.
    pub stop: StopLine,
    next_fault: AtomicU64,
}

/// Asks a question and returns the answer line, or `None` when nobody can answer.
pub type Prompt = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// How the changes of a @gameday scenario are approved before they act.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Approval {
    /// A person answers a prompt on the terminal for each change (the default).
    Prompt,
    /// Every change is approved without asking (`--auto-approve`, for CI).
    Automatic,
}

impl<U> fmt::Debug for RunContext<U> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RunContext")
            .field("run_id", &self.run_id)
            .field("platform", &self.platform.name)
            .finish_non_exhaustive()
    }
}

impl<U: Undo> RunContext<U> {
    /// A context for one run.
    #[must_use]
    pub fn new(
        run_id: String,
        platform: Arc<Platform>,
        clock: Clock,
        ledger: Ledger<U>,
        events: Bus,
    ) -> Self {
        Self {
            run_id,
            platform,
            clock,
            ledger: Mutex::new(ledger),
            events,
            undo_failed: AtomicBool::new(false),
            approval: Approval::Prompt,
            prompt: Arc::new(ask),
            hooks: None,
            halt: None,
            stop: StopLine::default(),
            next_fault: AtomicU64::new(1),
        }
    }

    /// Appends to the ledger (flushed to disk before returning).
    ///
    /// # Errors
    ///
    /// [`LedgerError`]; the caller must not go on to inject.
    pub fn append(&self, entry: &Entry<U>) -> Result<(), LedgerError> {
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
    pub async fn undo(&self, fault: &InjectedFault<U>) -> bool {
        let outcome = fault.undo.apply(&self.platform, &self.clock).await;
        // Undone when the undo has acted, not after the ledger's fsync: in compressed time a
        // slow flush is seconds of platform time, and the timeline must show the fault gone
        // before the answers that came back because of it.
        let at = self.clock.now();
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
            at,
            error,
        });
        ok
    }
}

/// A fault this scenario injected.
#[derive(Clone, Debug)]
pub struct InjectedFault<U> {
    /// Ledger id.
    pub id: String,
    /// What it is.
    pub fault: String,
    /// How to undo it.
    pub undo: U,
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
    /// An armed guard breached at its check before the scenario's first change.
    #[error(
        "\"{fault}\" was NOT injected: guard \"{guard}\" is breached before the first change ({seen}); production is already hurting, so the drill stops here with nothing injected (hint: find out why, or run the drill when the guard holds)"
    )]
    GuardBreached {
        /// The change.
        fault: String,
        /// The guard.
        guard: String,
        /// What it saw.
        seen: String,
    },
    /// The person at the GameDay prompt did not approve the change.
    #[error("\"{fault}\" was NOT injected: not approved at the GameDay prompt (answer: {}); the drill stops here and undoes what it did (hint: answer y to let a change act; unattended, a @gameday drill needs --auto-approve)", answer.as_deref().map_or("none, stdin closed".to_owned(), |a| format!("\"{a}\"")))]
    NotApproved {
        /// The change.
        fault: String,
        /// What was typed, if anything.
        answer: Option<String>,
    },
    /// A step asked to undo a change this scenario did not make (a firedrill bug).
    #[error(
        "no change {id} in this scenario, so there is nothing to undo (hint: this is a firedrill bug; please report the drill)"
    )]
    NoSuchChange {
        /// The ledger id asked for.
        id: String,
    },
    /// The undo a step ran now failed; it stays scheduled.
    #[error(
        "the undo of \"{fault}\" failed; it will be retried at the end of the scenario (hint: the run's output names why; `firedrill recover` applies it if the run cannot)"
    )]
    UndoFailed {
        /// The change.
        fault: String,
    },
}

/// Why [`Scenario::inject`] did not end well.
#[derive(Debug, thiserror::Error)]
pub enum InjectError<E> {
    /// Nothing was injected: not approved, or the ledger could not record the undo.
    #[error(transparent)]
    NotInjected(#[from] DrillError),
    /// The change itself failed; it may have partly acted, and its undo stays scheduled.
    #[error(transparent)]
    Failed(E),
}

/// One scenario's engine state: its timeline, and the changes it made with their undos.
pub struct Scenario<U> {
    /// The run.
    pub run: Arc<RunContext<U>>,
    /// The scenario's name.
    pub name: String,
    /// Milestones observed so far (probes record into it from their own tasks).
    recorder: Recorder,
    /// Faults injected, oldest first.
    pub faults: Vec<InjectedFault<U>>,
    /// Faults already undone by a step (not undone again at the end).
    pub undone: Vec<String>,
    /// Whether the scenario is a @gameday drill: a person approves each change first.
    pub gameday: bool,
    /// When the scenario started.
    pub started: PlatformTime,
    /// Its tags with its feature's and rule's, without `@`.
    pub tags: Vec<String>,
    /// Guards armed in this scenario, in the order they were armed.
    guards: Vec<Arc<dyn Guard>>,
    /// The tasks watching the armed guards (from the first change on), stopped with the
    /// scenario.
    watching: Vec<tokio::task::AbortHandle>,
}

impl<U> Drop for Scenario<U> {
    fn drop(&mut self) {
        for task in &self.watching {
            task.abort();
        }
    }
}

impl<U> fmt::Debug for Scenario<U> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scenario")
            .field("name", &self.name)
            .field("faults", &self.faults.len())
            .finish_non_exhaustive()
    }
}

/// Records milestones on one scenario's timeline, from any task (a probe's, a watch's): each
/// lands on the timeline, wakes every [`Scenario::wait_for`], and goes out as an event.
#[derive(Clone)]
pub struct Recorder {
    timeline: Arc<Mutex<Timeline>>,
    changed: Arc<watch::Sender<u64>>,
    events: Bus,
}

impl fmt::Debug for Recorder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Recorder")
    }
}

impl Recorder {
    /// Records `milestone`.
    pub fn record(&self, milestone: Milestone) {
        match self.timeline.lock() {
            Ok(mut t) => t.record(milestone.clone()),
            Err(poisoned) => poisoned.into_inner().record(milestone.clone()),
        }
        // Out before the waiters wake: a step waiting for it records what it concludes (`outage
        // detected` from a `first bad answer`), and ends, after the milestone that caused it.
        self.events.emit(&Event::Milestone(milestone));
        self.changed.send_modify(|v| *v += 1);
    }

    /// Records the milestone `name`, observed at `at` by `source`.
    pub fn mark(&self, name: impl Into<String>, at: PlatformTime, source: &str) {
        self.record(Milestone {
            name: name.into(),
            at,
            source: source.to_owned(),
        });
    }

    /// A copy of the timeline.
    #[must_use]
    pub fn timeline(&self) -> Timeline {
        match self.timeline.lock() {
            Ok(t) => t.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }
}

impl<U: Undo> Scenario<U> {
    /// A scenario of `run`, not started yet.
    #[must_use]
    pub fn new(run: Arc<RunContext<U>>) -> Self {
        let recorder = Recorder {
            timeline: Arc::new(Mutex::new(Timeline::default())),
            changed: Arc::new(watch::channel(0).0),
            events: run.events.clone(),
        };
        Self {
            run,
            name: String::new(),
            recorder,
            faults: Vec::new(),
            undone: Vec::new(),
            gameday: false,
            started: PlatformTime::ZERO,
            tags: Vec::new(),
            guards: Vec::new(),
            watching: Vec::new(),
        }
    }

    /// Arms `guard` for the rest of the scenario (once per name). Before the scenario's first
    /// change it is only remembered: that change checks it first; after it, it is watched at
    /// once. Returns whether it was newly armed.
    pub fn arm(&mut self, guard: Arc<dyn Guard>) -> bool {
        if self.guards.iter().any(|g| g.name() == guard.name()) {
            return false;
        }
        if !self.faults.is_empty() {
            self.watch(Arc::clone(&guard));
        }
        self.guards.push(guard);
        true
    }

    /// The names of the armed guards.
    #[must_use]
    pub fn armed(&self) -> Vec<String> {
        self.guards.iter().map(|g| g.name().to_owned()).collect()
    }

    /// Watches `guard` until the scenario ends: when it trips, the trip is recorded (a
    /// `guard tripped: {name}` milestone, an event) and the run's stop line is pulled.
    fn watch(&mut self, guard: Arc<dyn Guard>) {
        let recorder = self.recorder();
        let run = Arc::clone(&self.run);
        let tripped = guard.watch();
        let task = tokio::spawn(async move {
            let trip = tripped.await;
            recorder.mark(
                trip.milestone(),
                trip.at,
                &format!("{}, abort-if {}", trip.observed(), trip.abort_if),
            );
            run.events.emit(&Event::GuardTripped(trip.clone()));
            run.stop.pull(Abort::Guard(trip));
        });
        self.watching.push(task.abort_handle());
    }

    /// Before the scenario's first change: every armed guard is evaluated once, and watched
    /// from then on when all hold.
    async fn check_guards(&mut self, fault: &str) -> Result<(), DrillError> {
        for guard in self.guards.clone() {
            if let Err(seen) = guard.check().await {
                return Err(DrillError::GuardBreached {
                    fault: fault.to_owned(),
                    guard: guard.name().to_owned(),
                    seen,
                });
            }
        }
        for guard in self.guards.clone() {
            self.watch(guard);
        }
        Ok(())
    }

    /// The scenario's milestone recorder, for tasks that observe.
    #[must_use]
    pub fn recorder(&self) -> Recorder {
        self.recorder.clone()
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
        self.recorder.record(Milestone {
            name: name.into(),
            at,
            source: source.to_owned(),
        });
    }

    /// A copy of the timeline.
    #[must_use]
    pub fn timeline(&self) -> Timeline {
        self.recorder.timeline()
    }

    /// Writes the undo to the ledger (flushed), then runs `inject` (a fault, or any change a drill
    /// makes that must be taken back, like a traffic switch). The change is tracked for
    /// undo even when `inject` fails halfway: it may have partly taken effect.
    ///
    /// The change's clock starts here, not in the step: once it is approved (in a @gameday
    /// scenario) and its undo is on disk, the engine stamps `milestones` (the step's own, such
    /// as `fault injected: {what}`), and for the scenario's first [`Change::Fault`] also
    /// `fault injected` — all at that instant, before `inject` acts. Nothing is stamped when
    /// the change is not approved or the ledger write fails.
    ///
    /// # Errors
    ///
    /// [`InjectError::NotInjected`] (nothing injected, nothing stamped), or
    /// [`InjectError::Failed`] with `inject`'s error (undo still scheduled).
    pub async fn inject<F, T, E>(
        &mut self,
        change: Change,
        fault: &str,
        undo: U,
        milestones: &[MilestoneName],
        inject: F,
    ) -> Result<T, InjectError<E>>
    where
        F: std::future::Future<Output = Result<T, E>>,
    {
        if self.faults.is_empty() {
            self.check_guards(fault).await?;
        }
        if self.gameday {
            self.approve(fault, &undo).await?;
        }
        let id = self.run.next_fault_id();
        let entry = Entry::Inject {
            id: id.clone(),
            run: self.run.run_id.clone(),
            scenario: self.name.clone(),
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
        if change == Change::Fault && self.timeline().first(FAULT_INJECTED).is_none() {
            self.milestone(MilestoneName::FaultInjected, at, "engine");
        }
        for name in milestones {
            self.milestone(name.clone(), at, "engine");
        }
        inject.await.map_err(InjectError::Failed)
    }

    /// In a @gameday scenario, waits for a person to approve `fault` (or approves it at once
    /// under `--auto-approve`), and records the milestone `approved: {fault}`. Nothing is
    /// written to the ledger or injected before that.
    async fn approve(&mut self, fault: &str, undo: &U) -> Result<(), DrillError> {
        let source = match self.run.approval {
            Approval::Automatic => "--auto-approve",
            Approval::Prompt => {
                let question = format!(
                    "\n  ? GameDay: approve \"{fault}\" (undo: {})? [y/N] ",
                    undo.describe()
                );
                let prompt = Arc::clone(&self.run.prompt);
                let answer = tokio::task::spawn_blocking(move || prompt(&question))
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
        self.milestone(MilestoneName::Approved(fault.to_owned()), at, source);
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
    /// [`DrillError::UndoFailed`] when its undo failed (it stays scheduled for the end of the
    /// scenario); [`DrillError::NoSuchChange`] when this scenario made no change `id`.
    pub async fn undo_now(&mut self, id: &str) -> Result<(), DrillError> {
        let Some(fault) = self.faults.iter().find(|f| f.id == id).cloned() else {
            return Err(DrillError::NoSuchChange { id: id.to_owned() });
        };
        if self.run.undo(&fault).await {
            self.undone.push(fault.id);
            Ok(())
        } else {
            Err(DrillError::UndoFailed { fault: fault.fault })
        }
    }

    /// Undoes every change still in place (safety rule 3): faults newest first, then
    /// remediations newest first. Returns whether all are gone.
    pub async fn undo_all(&mut self) -> bool {
        let mut all = true;
        let mut pending: Vec<InjectedFault<U>> = self
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

    /// Waits until `find` returns something from the timeline, or the platform instant
    /// `deadline` passes (then `None`). Wakes on every new milestone; never polls.
    pub async fn wait_for<T>(
        &self,
        deadline: PlatformTime,
        find: impl Fn(&Timeline) -> Option<T>,
    ) -> Option<T> {
        let mut changed = self.recorder.changed.subscribe();
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::FnSink;
    use crate::undo::Marker;
    use std::path::{Path, PathBuf};

    /// What a sink saw when the milestone `name` went out: whether the ledger file held the
    /// inject line of `fault` at that moment.
    type Seen = Arc<Mutex<Vec<(String, bool)>>>;

    fn run(ledger: Ledger<Marker>, path: PathBuf, seen: &Seen) -> RunContext<Marker> {
        let platform = firedrill_platform::load_str(
            Path::new("t.yaml"),
            "name: t\nregions:\n  a: { role: primary }\n  b: { role: failover }\n",
            &|_| None,
        )
        .unwrap_or_else(|p| panic!("platform: {p}"));
        let events = Bus::default();
        let seen = Arc::clone(seen);
        events.subscribe(Box::new(FnSink(move |event: &Event| {
            if let Event::Milestone(m) = event {
                let on_disk = std::fs::read_to_string(&path)
                    .is_ok_and(|text| text.contains("\"op\":\"inject\""));
                if let Ok(mut seen) = seen.lock() {
                    seen.push((m.name.clone(), on_disk));
                }
            }
        })));
        RunContext::new(
            "r".into(),
            Arc::new(platform),
            Clock::real(),
            ledger,
            events,
        )
    }

    fn marker(fault: &str) -> Marker {
        Marker {
            fault: fault.to_owned(),
        }
    }

    fn acted() -> std::future::Ready<Result<(), std::io::Error>> {
        std::future::ready(Ok(()))
    }

    #[tokio::test]
    async fn fault_milestones_are_stamped_once_the_undo_is_on_disk() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("ledger.jsonl");
        let seen = Seen::default();
        let ledger = Ledger::open(&path).expect("ledger");
        let mut scenario = Scenario::new(Arc::new(run(ledger, path, &seen)));
        let own = MilestoneName::FaultInjectedAs("m".into());
        scenario
            .inject(
                Change::Fault,
                "m",
                marker("m"),
                std::slice::from_ref(&own),
                acted(),
            )
            .await
            .expect("injected");
        let seen = seen.lock().map(|s| s.clone()).unwrap_or_default();
        assert_eq!(
            seen,
            [
                ("fault injected".to_owned(), true),
                ("fault injected: m".to_owned(), true)
            ]
        );
        let timeline = scenario.timeline();
        assert_eq!(
            timeline.first(FAULT_INJECTED).map(|m| m.at),
            timeline.first(&own.to_string()).map(|m| m.at),
            "stamped at one instant"
        );
    }

    #[tokio::test]
    async fn a_milestone_goes_out_before_the_steps_waiting_for_it_wake() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("ledger.jsonl");
        let ledger = Ledger::open(&path).expect("ledger");
        let context = run(ledger, path, &Seen::default());
        let scenario = Scenario::new(Arc::new(context));
        let woken = Arc::new(Mutex::new(scenario.recorder.changed.subscribe()));
        let seen_woken = Arc::new(Mutex::new(Vec::new()));
        let (w, s) = (Arc::clone(&woken), Arc::clone(&seen_woken));
        scenario
            .run
            .events
            .subscribe(Box::new(FnSink(move |event: &Event| {
                if let (Event::Milestone(_), Ok(rx), Ok(mut seen)) = (event, w.lock(), s.lock()) {
                    seen.push(rx.has_changed().unwrap_or(true));
                }
            })));
        let now = scenario.clock().now();
        scenario.milestone("first bad answer", now, "probe");
        assert_eq!(
            seen_woken.lock().map(|s| s.clone()).unwrap_or_default(),
            [false],
            "a waiter was woken before the milestone went out"
        );
        assert!(
            woken
                .lock()
                .is_ok_and(|rx| rx.has_changed().unwrap_or(false))
        );
    }

    #[tokio::test]
    async fn nothing_is_stamped_when_the_ledger_cannot_record_the_undo() {
        let path = Path::new("/dev/full");
        if !path.exists() {
            return;
        }
        let seen = Seen::default();
        // Tests run in parallel, and each opens /dev/full: none may wait for the lock.
        let ledger = Ledger::open_ignoring_lock(path).expect("ledger");
        let mut scenario = Scenario::new(Arc::new(run(ledger, path.to_path_buf(), &seen)));
        let err = scenario
            .inject(
                Change::Fault,
                "m",
                marker("m"),
                &[MilestoneName::FaultInjectedAs("m".into())],
                acted(),
            )
            .await
            .expect_err("the ledger is full");
        assert!(
            matches!(err, InjectError::NotInjected(DrillError::Ledger { .. })),
            "{err}"
        );
        assert_eq!(scenario.timeline().milestones(), []);
        assert!(scenario.faults.is_empty());
    }

    #[tokio::test]
    async fn nothing_is_stamped_or_written_when_the_gameday_prompt_declines() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("ledger.jsonl");
        let seen = Seen::default();
        let ledger = Ledger::open(&path).expect("ledger");
        let mut context = run(ledger, path.clone(), &seen);
        let asked = Arc::new(Mutex::new(Vec::new()));
        let questions = Arc::clone(&asked);
        context.prompt = Arc::new(move |q: &str| {
            if let Ok(mut q_seen) = questions.lock() {
                q_seen.push(q.to_owned());
            }
            Some("n\n".to_owned())
        });
        let mut scenario = Scenario::new(Arc::new(context));
        scenario.gameday = true;
        let err = scenario
            .inject(
                Change::Fault,
                "m",
                marker("m"),
                &[MilestoneName::FaultInjectedAs("m".into())],
                acted(),
            )
            .await
            .expect_err("declined");
        assert!(
            matches!(&err, InjectError::NotInjected(DrillError::NotApproved { answer: Some(a), .. }) if a == "n"),
            "{err}"
        );
        assert!(err.to_string().ends_with(")"), "{err}");
        assert_eq!(asked.lock().map(|a| a.len()).unwrap_or_default(), 1);
        assert_eq!(scenario.timeline().milestones(), []);
        assert!(
            !std::fs::read_to_string(&path)
                .unwrap_or_default()
                .contains("\"op\":\"inject\""),
            "a declined change reached the ledger"
        );
    }
}
