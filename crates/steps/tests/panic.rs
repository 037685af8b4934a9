//! Safety rule 3 on panic: a step that panics after a fault was injected still gets the fault
//! undone, and the ledger ends with nothing outstanding.
//!
//! The panicking step exists only in this test binary: it registers with the same world as the
//! shipped steps (cucumber collects step definitions across crates), so the real runner runs it.

use std::sync::Arc;

use cucumber::gherkin::{self, GherkinEnv};
use firedrill_core::clock::Clock;
use firedrill_engine::drills::Selection;
use firedrill_engine::events::Bus;
use firedrill_engine::ledger::Ledger;
use firedrill_engine::runner::{self, CucumberReports};
use firedrill_engine::scenario::RunContext;
use firedrill_steps::Drill;

#[cucumber::when(regex = "^the test step panics$")]
async fn the_step_panics(_: &mut Drill) {
    panic!("a step panicked mid-drill");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_step_still_undoes_the_fault() {
    let dir = tempfile::tempdir().expect("tempdir");
    let marker = dir.path().join("faulted");
    let platform_file = dir.path().join("platform.yaml");
    let platform_text = format!(
        "name: panic\nregions:\n  here: {{ role: primary }}\n  there: {{ role: failover }}\nfaults:\n  marker:\n    description: a marker file stands for a fault\n    inject: {{ run: [touch, \"{m}\"] }}\n    undo: {{ run: [rm, -f, \"{m}\"] }}\n",
        m = marker.display()
    );
    std::fs::write(&platform_file, &platform_text).expect("platform");
    let platform = firedrill_platform::load(&platform_file).unwrap_or_else(|p| panic!("{p}"));
    let feature = gherkin::Feature::parse(
        "Feature: panic\n  Scenario: a fault, then a panic\n    When the fault \"marker\" is injected\n    And the test step panics\n",
        GherkinEnv::default(),
    )
    .expect("feature");
    let ledger_path = dir.path().join("ledger.jsonl");
    let ledger = Ledger::<firedrill_providers::Undo>::open(&ledger_path).expect("ledger");
    let run = Arc::new(RunContext::new(
        "panic-run".into(),
        Arc::new(platform),
        Clock::real(),
        ledger,
        Bus::default(),
    ));

    let outcome = runner::execute::<firedrill_steps::Drill>(
        run,
        vec![feature],
        Selection::default(),
        &CucumberReports::default(),
        platform_file.clone(),
        false,
    )
    .await
    .expect("runs");

    assert_eq!(
        (outcome.passed, outcome.failed),
        (0, 1),
        "the panicking scenario fails"
    );
    assert!(outcome.undo_complete && !outcome.undo_errors, "{outcome:?}");
    assert!(!marker.exists(), "the fault was left behind after a panic");
    let entries = Ledger::<firedrill_providers::Undo>::read(&ledger_path).expect("read ledger");
    assert!(
        entries
            .iter()
            .any(|e| matches!(e, firedrill_engine::ledger::Entry::Inject { .. })),
        "the fault was injected at all"
    );
    assert!(
        Ledger::<firedrill_providers::Undo>::outstanding(&ledger_path)
            .expect("ledger")
            .is_empty(),
        "the ledger still lists the fault"
    );
}
