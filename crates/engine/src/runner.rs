//! Running selected scenarios through cucumber, with undo on every way out.
//!
//! One `tokio::select!` owns the run: the cucumber future, every signal that would end the
//! process (see [`crate::signal`]), the estate's halt marker (see [`crate::halt`]) and the run's
//! stop line (see [`crate::stop`]: a guard that tripped). When a signal or a stop condition
//! wins, the cucumber future is dropped
//! (its probes stop, a running command is killed) and every fault of this run still outstanding
//! in the ledger is undone, newest first. A signal during that undo is answered on stderr and
//! never obeyed; a panic in one undo does not stop the others.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use cucumber::codegen::WorldInventory;
use cucumber::gherkin;
use cucumber::{WriterExt as _, event, parser, writer};
use firedrill_core::names::MilestoneName;
use futures::FutureExt as _;
use futures::future::LocalBoxFuture;

use crate::drills::{GAMEDAY_TAG, Selection, effective_tags};
use crate::events::{Event, StepOutcome};
use crate::ledger::{Entry, Ledger, outstanding_in, undo_order, wall_now};
use crate::scenario::{InjectedFault, RunContext, Scenario};
use crate::signal::{self, Action, Signal};
use crate::undo::Undo;
use firedrill_core::guard::GuardTrip;
use firedrill_core::halt::Halt;

/// What the run loop asks of the steps' cucumber world: its engine state, and what its domains
/// do when a scenario starts and ends.
pub trait DrillWorld: cucumber::World + WorldInventory + std::fmt::Debug + 'static {
    /// The undo type of every change the world's steps make.
    type Undo: Undo;

    /// The world's engine state.
    fn scenario(&mut self) -> &mut Scenario<Self::Undo>;

    /// After the engine started the scenario (its name, start time and tags are set): what the
    /// steps' domains do at every scenario's start. `steps` are the scenario's step texts,
    /// backgrounds first.
    fn started<'a>(&'a mut self, steps: &'a [String]) -> LocalBoxFuture<'a, ()>;

    /// After every change of the scenario was undone: what the domains do at its end.
    fn finished(&mut self) -> LocalBoxFuture<'_, ()>;
}

/// Why a run ended early.
#[derive(Clone, Debug, PartialEq)]
pub enum Abort {
    /// A signal asked it to stop (SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, …).
    Signal(Signal),
    /// The estate was halted (`firedrill halt`): every drill against it stops.
    Halt(Halt),
    /// An armed guard tripped: production breached while the drill ran.
    Guard(GuardTrip),
}

impl Abort {
    /// Whether a stop condition (not a signal) ended the run: its own exit code.
    #[must_use]
    pub fn is_stop_condition(&self) -> bool {
        !matches!(self, Self::Signal(_))
    }

    /// Its kind, as metrics label it: `signal`, `halt`, `guard`.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Signal(_) => "signal",
            Self::Halt(_) => "halt",
            Self::Guard(_) => "guard",
        }
    }
}

impl std::fmt::Display for Abort {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Signal(signal) => write!(f, "{signal}"),
            Self::Halt(halt) => write!(f, "{halt}"),
            Self::Guard(trip) => write!(f, "guard \"{}\"", trip.guard),
        }
    }
}

/// How a run ended.
#[derive(Clone, Debug, PartialEq)]
pub struct Outcome {
    /// Scenarios that passed.
    pub passed: usize,
    /// Scenarios that failed.
    pub failed: usize,
    /// Set when a signal or a stop condition stopped the run.
    pub aborted: Option<Abort>,
    /// Whether every fault was undone by the end of the run.
    pub undo_complete: bool,
    /// Whether some undo failed along the way (even if a later retry succeeded).
    pub undo_errors: bool,
}

/// Where cucumber's own reports go: into memory, for the caller to write to their files once
/// the run ends (so an existing report is not truncated before the run, and a full disk is an
/// error the caller reports, not a panic inside cucumber's writer).
#[derive(Clone, Debug, Default)]
pub struct CucumberReports {
    /// JUnit XML.
    pub junit: Option<ReportBuffer>,
    /// Cucumber JSON.
    pub json: Option<ReportBuffer>,
}

/// A report in memory, shared between the writer that fills it and whoever writes it out.
#[derive(Clone, Debug, Default)]
pub struct ReportBuffer(Arc<std::sync::Mutex<Vec<u8>>>);

impl ReportBuffer {
    /// What was written so far (the buffer is left empty).
    #[must_use]
    pub fn take(&self) -> Vec<u8> {
        std::mem::take(
            &mut *self
                .0
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
    }
}

impl Write for ReportBuffer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Feeds already-parsed (and checked) features to cucumber.
struct Preparsed;

impl cucumber::Parser<Vec<gherkin::Feature>> for Preparsed {
    type Cli = cucumber::cli::Empty;
    type Output = futures::stream::Iter<std::vec::IntoIter<parser::Result<gherkin::Feature>>>;

    fn parse(self, input: Vec<gherkin::Feature>, _: Self::Cli) -> Self::Output {
        futures::stream::iter(input.into_iter().map(Ok).collect::<Vec<_>>())
    }
}

/// Forwards cucumber's step events to the event bus, and ends each scenario there.
///
/// Cucumber hands its events to the writer through a queue, so they reach the bus after what
/// the steps' own code emitted meanwhile (a step's milestones, the undos of the scenario's end).
/// Each step event therefore carries the platform instant cucumber stamped it with, and the
/// scenario's end ([`Event::ScenarioFinished`], prepared by the after hook) goes out when
/// cucumber's own `Finished` comes through the queue: after every step event of the scenario.
struct BusWriter {
    events: crate::events::Bus,
    clock: firedrill_core::clock::Clock,
    finished: FinishedSlot,
}

/// The end of the scenario running now, filled by the after hook, emitted by [`BusWriter`].
type FinishedSlot = Arc<std::sync::Mutex<Option<Event>>>;

impl BusWriter {
    /// The platform instant of a cucumber event's timestamp.
    fn platform_time(&self, at: std::time::SystemTime) -> firedrill_core::clock::PlatformTime {
        let since_origin = at
            .duration_since(self.clock.wall_origin())
            .unwrap_or_default();
        firedrill_core::clock::PlatformTime::from_offset(self.clock.to_platform(since_origin))
    }
}

impl<W: DrillWorld> cucumber::Writer<W> for BusWriter {
    type Cli = cucumber::cli::Empty;

    async fn handle_event(
        &mut self,
        ev: parser::Result<event::Event<event::Cucumber<W>>>,
        _: &Self::Cli,
    ) {
        let Ok(ev) = ev else { return };
        let at = self.platform_time(ev.at);
        let event::Cucumber::Feature(_, event::Feature::Scenario(_, scenario)) = ev.value else {
            return;
        };
        let (step, ev) = match scenario.event {
            event::Scenario::Step(step, ev) | event::Scenario::Background(step, ev) => (step, ev),
            event::Scenario::Finished => {
                let finished = self
                    .finished
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .take();
                if let Some(finished) = finished {
                    self.events.emit(&finished);
                }
                return;
            }
            _ => return,
        };
        let keyword = step.keyword.trim().to_owned();
        let text = step.value.clone();
        let event = match ev {
            event::Step::Started => Event::StepStarted { keyword, text, at },
            event::Step::Passed(..) => Event::StepFinished {
                keyword,
                text,
                outcome: StepOutcome::Passed,
                at,
            },
            event::Step::Skipped => Event::StepFinished {
                keyword,
                text,
                outcome: StepOutcome::Skipped,
                at,
            },
            event::Step::Failed(_, _, _, error) => Event::StepFinished {
                keyword,
                text,
                outcome: StepOutcome::Failed(failure_text(&error)),
                at,
            },
        };
        self.events.emit(&event);
    }
}

impl writer::NonTransforming for BusWriter {}

impl<W: DrillWorld> cucumber::writer::Arbitrary<W, String> for BusWriter {
    async fn write(&mut self, _: String) {}
}

fn failure_text(error: &event::StepError) -> String {
    match error {
        event::StepError::Panic(payload) => payload
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
            .unwrap_or_else(|| "the step panicked".to_owned()),
        event::StepError::NotFound => {
            "undefined step (hint: `firedrill validate` lists the closest known steps)".to_owned()
        }
        other => other.to_string(),
    }
}

fn output(buffer: Option<&ReportBuffer>) -> Box<dyn Write> {
    match buffer {
        Some(buffer) => Box::new(buffer.clone()),
        None => Box::new(std::io::sink()),
    }
}

/// Runs the selected scenarios of `features` on `run`'s platform. Reports are written by the
/// event sinks the caller subscribed; cucumber's JUnit and JSON go where `reports` says.
///
/// # Errors
///
/// When the run's start cannot be written to the ledger (before anything runs).
pub async fn execute<W: DrillWorld>(
    run: Arc<RunContext<W::Undo>>,
    features: Vec<gherkin::Feature>,
    selection: Selection,
    reports: &CucumberReports,
    platform_path: PathBuf,
    in_process: bool,
) -> std::io::Result<Outcome> {
    // Caught from here on: from the first ledger line, no signal may end the process unundone.
    let mut signals = signal::Listener::new();
    let junit = output(reports.junit.as_ref());
    let json = output(reports.json.as_ref());
    run.append(&Entry::Begin {
        run: run.run_id.clone(),
        platform: platform_path,
        in_process,
        pid: Some(std::process::id()),
        at: wall_now(),
    })
    .map_err(std::io::Error::other)?;

    let scenario_results = Arc::new(std::sync::Mutex::new((0usize, 0usize)));
    let results = Arc::clone(&scenario_results);
    let finished_slot = FinishedSlot::default();
    let scenario_end = Arc::clone(&finished_slot);
    let writer = BusWriter {
        events: run.events.clone(),
        clock: run.clock,
        finished: finished_slot,
    }
    .tee::<W, _>(writer::JUnit::for_tee(junit, 0))
    .tee::<W, _>(writer::Json::for_tee(json))
    .normalized::<W>();
    let cucumber = W::cucumber::<&str>()
        .with_parser(Preparsed)
        .with_writer(writer)
        .fail_on_skipped()
        .max_concurrent_scenarios(1)
        .before(|feature, rule, scenario, world| {
            Box::pin(async move {
                let tags = effective_tags(feature, rule, scenario);
                {
                    let engine = world.scenario();
                    engine.name.clone_from(&scenario.name);
                    if let Some(hooks) = engine.run.hooks.clone() {
                        hooks.settle().await;
                    }
                    engine.started = engine.clock().now();
                    engine.gameday = tags.iter().any(|t| t == GAMEDAY_TAG);
                    engine.tags.clone_from(&tags);
                    engine.run.events.emit(&Event::ScenarioStarted {
                        feature: feature.name.clone(),
                        scenario: scenario.name.clone(),
                        tags,
                        at: engine.clock().now(),
                    });
                }
                let steps: Vec<String> = feature
                    .background
                    .iter()
                    .flat_map(|b| &b.steps)
                    .chain(
                        rule.iter()
                            .flat_map(|r| r.background.iter().flat_map(|b| &b.steps)),
                    )
                    .chain(&scenario.steps)
                    .map(|s| s.value.clone())
                    .collect();
                world.started(&steps).await;
            })
        })
        .after(move |feature, _, scenario, finished, world| {
            let results = Arc::clone(&results);
            let scenario_end = Arc::clone(&scenario_end);
            Box::pin(async move {
                let passed = matches!(finished, event::ScenarioFinished::StepPassed);
                if let Some(world) = world {
                    world.scenario().undo_all().await;
                    world.finished().await;
                    let engine = world.scenario();
                    if let Some(hooks) = engine.run.hooks.clone() {
                        for (name, at) in hooks.ground_truth(engine.started) {
                            engine.milestone(
                                MilestoneName::GroundTruth(name),
                                at,
                                "embedded platform",
                            );
                        }
                    }
                    // Emitted by the writer once cucumber's queue delivered every step event.
                    *scenario_end
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner) =
                        Some(Event::ScenarioFinished {
                            feature: feature.name.clone(),
                            scenario: scenario.name.clone(),
                            passed,
                            at: engine.clock().now(),
                        });
                }
                if let Ok(mut r) = results.lock() {
                    if passed { r.0 += 1 } else { r.1 += 1 }
                }
            })
        })
        .with_cli(cucumber::cli::Opts::<_, _, _, cucumber::cli::Empty>::default());

    let drills = crate::scenario::scope(Arc::clone(&run), async move {
        let selection = selection;
        std::panic::AssertUnwindSafe(
            cucumber.filter_run(features, move |f, r, s| selection.selects(f, r, s)),
        )
        .catch_unwind()
        .await
    });

    let mut drills = Box::pin(drills);
    let aborted = loop {
        tokio::select! {
            result = &mut drills => {
                if result.is_err() {
                    tracing::error!("the drill engine panicked; undoing every fault of this run");
                }
                break None;
            }
            (signal, action) = signals.next() => match action {
                Action::Abort => break Some(Abort::Signal(signal)),
                Action::Note => note(signal),
            },
            halt = crate::halt::halted(run.halt.as_ref(), run.clock) => break Some(Abort::Halt(halt)),
            reason = run.stop.pulled() => break Some(reason),
        }
    };
    // Dropping the cucumber future stops its probes and kills a running command; a panic in
    // that drop must not skip the undo.
    if std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || drop(drills))).is_err() {
        tracing::error!("stopping the drill engine panicked; undoing every fault of this run");
    }
    if let Some(abort) = &aborted {
        run.events.emit(&Event::Aborted {
            reason: abort.to_string(),
            kind: abort.kind().to_owned(),
            at: run.clock.now(),
        });
    }
    // Whatever ended the run, nothing this run injected may stay (safety rule 3), and no
    // signal cuts this short: only SIGKILL can, and then the ledger keeps what is left.
    let ledger = ledger_path(&run);
    let undo = undo_outstanding(&run);
    tokio::pin!(undo);
    let outstanding_ok = loop {
        tokio::select! {
            ok = &mut undo => break ok,
            (signal, action) = signals.next() => match action {
                Action::Abort => undo_goes_on(signal, &ledger),
                Action::Note => note(signal),
            },
        }
    };
    let (passed, failed) = scenario_results.lock().map(|r| *r).unwrap_or_default();
    Ok(Outcome {
        passed,
        failed,
        aborted,
        undo_complete: outstanding_ok,
        undo_errors: run.undo_failed.load(Ordering::SeqCst),
    })
}

/// Says on stderr (best-effort: after SIGHUP nobody may read it) why a signal is not obeyed.
fn undo_goes_on(signal: Signal, ledger: &Path) {
    let _ = writeln!(
        std::io::stderr().lock(),
        "firedrill: {signal} received while undoing: undo in progress, not stopping until every fault of this run is undone (SIGKILL would leave the rest for `firedrill recover --ledger {}`)",
        ledger.display()
    );
}

/// A signal that stops nothing (SIGXFSZ: the write it concerns fails by itself).
fn note(signal: Signal) {
    tracing::warn!("{signal} received and ignored: the write that caused it fails on its own");
}

fn ledger_path<U: Undo>(run: &RunContext<U>) -> PathBuf {
    match run.ledger.lock() {
        Ok(l) => l.path().to_path_buf(),
        Err(p) => p.into_inner().path().to_path_buf(),
    }
}

/// Undoes every fault of this run the ledger still lists, newest first. A panic in one undo
/// (a provider, an event sink) counts as a failed undo and the others still run.
async fn undo_outstanding<U: Undo>(run: &RunContext<U>) -> bool {
    let path = ledger_path(run);
    let entries = match Ledger::<U>::read(&path) {
        Ok(entries) => entries,
        Err(e) => {
            tracing::error!("cannot read the ledger to undo: {e}");
            return false;
        }
    };
    let mut ok = true;
    let mine: Vec<_> = outstanding_in(&entries)
        .into_iter()
        .filter(|o| o.run == run.run_id)
        .collect();
    for outstanding in undo_order(mine) {
        let fault = InjectedFault {
            id: outstanding.id,
            fault: outstanding.fault,
            undo: outstanding.undo,
            remediation: outstanding.remediation,
            at: run.clock.now(),
        };
        let undone = std::panic::AssertUnwindSafe(run.undo(&fault))
            .catch_unwind()
            .await;
        ok &= undone.unwrap_or_else(|_| {
            run.undo_failed.store(true, Ordering::SeqCst);
            tracing::error!(
                "the undo of \"{}\" ({}) panicked; it stays in the ledger for `firedrill recover`",
                fault.fault,
                fault.id
            );
            false
        });
    }
    ok
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::time::Duration;

    use cucumber::{given, when};
    use futures::future::LocalBoxFuture;

    use super::*;
    use crate::events::FnSink;
    use crate::scenario::Change;
    use crate::undo::Marker;
    use firedrill_core::clock::{Clock, PlatformTime};

    /// A world whose steps stamp a milestone and inject a fault, nothing else.
    #[derive(Debug, cucumber::World)]
    #[world(init = Self::new)]
    struct Ordered {
        engine: Scenario<Marker>,
    }

    impl Ordered {
        async fn new() -> Result<Self, std::io::Error> {
            crate::scenario::current::<Marker>()
                .map(|run| Self {
                    engine: Scenario::new(run),
                })
                .ok_or_else(|| std::io::Error::other("no run"))
        }
    }

    impl DrillWorld for Ordered {
        type Undo = Marker;

        fn scenario(&mut self) -> &mut Scenario<Marker> {
            &mut self.engine
        }

        fn started<'a>(&'a mut self, _: &'a [String]) -> LocalBoxFuture<'a, ()> {
            Box::pin(async {})
        }

        fn finished(&mut self) -> LocalBoxFuture<'_, ()> {
            Box::pin(async {})
        }
    }

    #[given(expr = "milestone {word} is stamped")]
    async fn stamped(world: &mut Ordered, name: String) {
        world.engine.clock().sleep(Duration::from_millis(20)).await;
        let now = world.engine.clock().now();
        world.engine.milestone(name, now, "engine");
        world.engine.clock().sleep(Duration::from_millis(20)).await;
    }

    #[when(expr = "fault {word} is injected")]
    async fn injected(world: &mut Ordered, fault: String) {
        let marker = Marker {
            fault: fault.clone(),
        };
        let acted = std::future::ready(Ok::<(), std::io::Error>(()));
        world
            .engine
            .inject(Change::Fault, &fault, marker, &[], acted)
            .await
            .expect("injected");
    }

    #[tokio::test]
    async fn a_scenario_ends_after_its_step_events_and_each_step_is_stamped_after_what_it_caused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ledger = Ledger::open(&dir.path().join("ledger.jsonl")).expect("ledger");
        let platform = firedrill_platform::load_str(
            Path::new("t.yaml"),
            "name: t\nregions:\n  a: { role: primary }\n  b: { role: failover }\n",
            &|_| None,
        )
        .unwrap_or_else(|p| panic!("platform: {p}"));
        let events = crate::events::Bus::default();
        let seen: Arc<Mutex<Vec<Event>>> = Arc::default();
        let sink = Arc::clone(&seen);
        events.subscribe(Box::new(FnSink(move |e: &Event| {
            if let Ok(mut seen) = sink.lock() {
                seen.push(e.clone());
            }
        })));
        let run = Arc::new(RunContext::new(
            "r".into(),
            Arc::new(platform),
            Clock::real(),
            ledger,
            events,
        ));
        let feature = gherkin::Feature::parse(
            "Feature: f\n  Scenario: s\n    Given milestone one is stamped\n    When fault f1 is injected\n    Given milestone two is stamped\n",
            gherkin::GherkinEnv::default(),
        )
        .expect("feature");
        let selection = Selection {
            tags: None,
            name: None,
            skip_gameday: false,
        };
        let outcome = execute::<Ordered>(
            run,
            vec![feature],
            selection,
            &CucumberReports::default(),
            dir.path().join("t.yaml"),
            true,
        )
        .await
        .expect("run");
        assert_eq!((outcome.passed, outcome.failed), (1, 0));
        let seen = seen.lock().map(|s| s.clone()).unwrap_or_default();
        let kinds: Vec<&str> = seen
            .iter()
            .map(|e| match e {
                Event::ScenarioStarted { .. } => "scenario-started",
                Event::StepStarted { .. } => "step-started",
                Event::StepFinished { .. } => "step-finished",
                Event::Milestone(_) => "milestone",
                Event::FaultInjected { .. } => "fault-injected",
                Event::FaultUndone { .. } => "fault-undone",
                Event::ScenarioFinished { .. } => "scenario-finished",
                _ => "other",
            })
            .collect();
        assert_eq!(kinds.last(), Some(&"scenario-finished"), "{kinds:?}");
        assert_eq!(
            kinds.iter().filter(|k| **k == "step-finished").count(),
            3,
            "{kinds:?}"
        );
        // Each step's stamps bracket what it caused, whatever order the bus delivered them in.
        let steps: Vec<(PlatformTime, PlatformTime)> = seen
            .iter()
            .filter_map(|e| match e {
                Event::StepStarted { at, .. } => Some(*at),
                _ => None,
            })
            .zip(seen.iter().filter_map(|e| match e {
                Event::StepFinished { at, .. } => Some(*at),
                _ => None,
            }))
            .collect();
        let milestone = |name: &str| {
            seen.iter().find_map(|e| match e {
                Event::Milestone(m) if m.name == name => Some(m.at),
                _ => None,
            })
        };
        let one = milestone("one").expect("one");
        let two = milestone("two").expect("two");
        assert!(steps[0].0 <= one && one <= steps[0].1, "{steps:?} {one:?}");
        assert!(steps[2].0 <= two && two <= steps[2].1, "{steps:?} {two:?}");
        assert!(
            steps[0].1 <= steps[1].0 && steps[1].1 <= steps[2].0,
            "{steps:?}"
        );
        let undone = seen
            .iter()
            .find_map(|e| match e {
                Event::FaultUndone { at, .. } => Some(*at),
                _ => None,
            })
            .expect("undone at the scenario's end");
        assert!(steps[2].1 <= undone, "{steps:?} {undone:?}");
    }
}
