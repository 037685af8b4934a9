//! The last line of defence (issue 13): a panic while the runner undoes after a signal — here
//! an event sink that panics on the first undo it hears of — does not stop the other undos.
//!
//! A test binary of its own: it sends itself SIGUSR1, and a run's signals stay caught for the
//! rest of the process.

use std::sync::Arc;
use std::time::Duration;

use cucumber::gherkin::{self, GherkinEnv};
use firedrill_core::clock::Clock;
use firedrill_engine::drills::Selection;
use firedrill_engine::events::{Bus, Event, Sink};
use firedrill_engine::ledger::Ledger;
use firedrill_engine::runner::{self, Abort, CucumberReports};
use firedrill_engine::scenario::RunContext;
use firedrill_engine::signal::Signal;

/// Panics on the first `FaultUndone`, after the undo acted and the ledger recorded it.
struct PanicsOnFirstUndo(bool);

impl Sink for PanicsOnFirstUndo {
    fn handle(&mut self, event: &Event) {
        if matches!(event, Event::FaultUndone { .. }) && !self.0 {
            self.0 = true;
            panic!("an event sink panicked in the middle of the undo");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_in_one_undo_after_a_signal_does_not_stop_the_others() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    let platform_file = dir.path().join("platform.yaml");
    std::fs::write(
        &platform_file,
        format!(
            "name: undo-panic\nregions:\n  here: {{ role: primary }}\n  there: {{ role: failover }}\nfaults:\n  a:\n    description: marker a\n    inject: {{ run: [touch, \"{a}\"] }}\n    undo: {{ run: [rm, -f, \"{a}\"] }}\n  b:\n    description: marker b\n    inject: {{ run: [touch, \"{b}\"] }}\n    undo: {{ run: [rm, -f, \"{b}\"] }}\ncommands:\n  wait-long: {{ run: [sleep, \"60\"] }}\n",
            a = a.display(),
            b = b.display()
        ),
    )
    .expect("platform");
    let platform = firedrill_platform::load(&platform_file).unwrap_or_else(|p| panic!("{p}"));
    let feature = gherkin::Feature::parse(
        "Feature: undo panic\n  Scenario: two faults, then a long wait\n    When the fault \"a\" is injected\n    And the fault \"b\" is injected\n    And the command \"wait-long\" is run\n",
        GherkinEnv::default(),
    )
    .expect("feature");
    let ledger_path = dir.path().join("ledger.jsonl");
    let bus = Bus::default();
    bus.subscribe(Box::new(PanicsOnFirstUndo(false)));
    let run = Arc::new(RunContext::new(
        "undo-panic".into(),
        Arc::new(platform),
        Clock::real(),
        Ledger::<firedrill_providers::Undo>::open(&ledger_path).expect("ledger"),
        bus,
    ));
    let reports = CucumberReports::default();
    let running = runner::execute::<firedrill_steps::Drill>(
        run,
        vec![feature],
        Selection::default(),
        &reports,
        platform_file,
        false,
    );
    let signal_once_both_are_in = async {
        firedrill_testkit::until("both faults in", Duration::from_secs(30), || {
            a.exists() && b.exists()
        })
        .await;
        // SAFETY: kill(2) on this process; the runner catches SIGUSR1 from its start.
        assert_eq!(unsafe { libc::kill(libc::getpid(), libc::SIGUSR1) }, 0);
    };
    let (outcome, ()) = tokio::join!(
        tokio::time::timeout(Duration::from_secs(60), running),
        signal_once_both_are_in
    );
    let outcome = outcome
        .expect("the run ends after the signal")
        .expect("runs");

    assert_eq!(
        outcome.aborted,
        Some(Abort::Signal(Signal::from_raw(libc::SIGUSR1)))
    );
    assert!(!b.exists(), "the undo whose event panicked did not act");
    assert!(!a.exists(), "the undo after the panicking one did not run");
    assert!(
        Ledger::<firedrill_providers::Undo>::outstanding(&ledger_path)
            .expect("ledger")
            .is_empty(),
        "the ledger still lists a fault"
    );
}
