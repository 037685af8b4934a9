//! Item 2 of issue 13: a signal mid-drill undoes every fault of the run and exits 3, whichever
//! catchable signal it is; a second one never cuts the undo short; a hung-up terminal panics
//! nothing.

use std::path::Path;
use std::process::Command;

use crate::support::{
    ALONE, DEADLINE, FAULTS_IN, Sim, Started, Terminal, drill, ended, firedrill, send, wait_exit,
};

/// Sends `signal` once every fault of the drill is in, from another process, and checks the
/// platform through its own APIs afterwards.
async fn mid_drill(signal: i32, name: &str) {
    let _alone = ALONE.lock().await;
    let sim = Sim::up().await;
    let before = sim.settled().await;
    let drill = sim.drill_file("faults.feature", &drill("2h"));
    let mut run = Started::spawn(&mut sim.run(&drill, "ledger.jsonl", "report.json"));
    run.wait_for(FAULTS_IN, DEADLINE).await;
    sim.assert_faults_in().await;
    assert_eq!(sim.outstanding("ledger.jsonl"), 4, "{}", run.output());

    run.signal(signal);
    let (status, output) = ended(run).await;

    assert_eq!(status.code(), Some(3), "{name}: {status}\n{output}");
    assert!(
        output.contains(&format!("ABORTED by {name}")),
        "the console does not name {name}:\n{output}"
    );
    assert!(
        output.contains(&format!(
            "aborted by {name}; every fault of this run was undone"
        )),
        "{output}"
    );
    sim.assert_as_before(&before, name).await;
    assert_eq!(sim.outstanding("ledger.jsonl"), 0, "{output}");
    let report = sim.report("report.json");
    assert_eq!(report["verdict"], "aborted", "{report:#}");
    assert_eq!(report["aborted_by"], name, "{report:#}");
    let faults = report["scenarios"][0]["faults"].as_array().expect("faults");
    assert_eq!(faults.len(), 4, "{report:#}");
    assert!(
        faults
            .iter()
            .all(|f| f["undone_at"].is_number() && f["undo_error"].is_null()),
        "{report:#}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_mid_drill_undoes_every_fault_and_exits_3() {
    mid_drill(libc::SIGTERM, "SIGTERM").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigint_mid_drill_undoes_every_fault_and_exits_3() {
    mid_drill(libc::SIGINT, "SIGINT").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_mid_drill_undoes_every_fault_and_exits_3() {
    mid_drill(libc::SIGHUP, "SIGHUP").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigquit_mid_drill_undoes_every_fault_and_exits_3() {
    mid_drill(libc::SIGQUIT, "SIGQUIT").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigusr1_mid_drill_undoes_every_fault_and_exits_3() {
    mid_drill(libc::SIGUSR1, "SIGUSR1").await;
}

/// An SSH disconnect: the drill runs on a terminal that goes away once the faults are in. The
/// kernel sends SIGHUP and every later write fails with EIO — the console's lines, the live
/// line, the debug log (FIREDRILL_LOG=debug, so there is plenty) and the final lines.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_terminal_hung_up_mid_drill_undoes_every_fault_and_nothing_panics() {
    let _alone = ALONE.lock().await;
    let sim = Sim::up().await;
    let before = sim.settled().await;
    let drill = sim.drill_file("faults.feature", &drill("2h"));
    let mut cmd = sim.run(&drill, "ledger.jsonl", "report.json");
    cmd.env("FIREDRILL_LOG", "debug");
    let mut terminal = Terminal::spawn(cmd);
    terminal.wait_for(FAULTS_IN).await;
    sim.assert_faults_in().await;

    terminal.hang_up();
    let (status, output) = terminal.exit().await;

    // A panic anywhere on the way out would be exit 101 (or 4 from the last line of defence).
    assert_eq!(status.code(), Some(3), "{status}\n{output}");
    sim.assert_as_before(&before, "a hung-up terminal").await;
    assert_eq!(sim.outstanding("ledger.jsonl"), 0);
    let report = sim.report("report.json");
    assert_eq!(report["verdict"], "aborted", "{report:#}");
    assert_eq!(report["aborted_by"], "SIGHUP", "{report:#}");
}

/// A platform whose fault is a marker file; `slow` undoes only once the test says so.
const MARKER_PLATFORM: &str = r#"name: local
regions:
  here: { role: primary }
  there: { role: failover }
faults:
  quick:
    description: a marker file stands for a fault
    inject: { run: [sh, -c, "touch faulted"] }
    undo: { run: [sh, -c, "rm -f faulted"] }
  slow:
    description: a marker file whose undo waits for the test
    inject: { run: [sh, -c, "touch faulted"] }
    undo:
      run: [sh, -c, "touch undo-started; while [ ! -f let-undo-finish ]; do sleep 0.02; done; rm -f faulted"]
      timeout: 5m
commands:
  wait-long: { run: [sleep, "60"] }
  wait-for-go: { run: [sh, -c, "while [ ! -f go-on ]; do sleep 0.02; done"] }
"#;

fn marker_drill(dir: &Path, fault: &str, command: &str) -> Command {
    std::fs::write(dir.join("platform.yaml"), MARKER_PLATFORM).expect("platform");
    std::fs::create_dir_all(dir.join("drills")).expect("drills/");
    std::fs::write(
        dir.join("drills/marker.feature"),
        format!(
            "Feature: marker\n  Scenario: a fault, then a wait\n    When the fault \"{fault}\" is injected\n    And the command \"{command}\" is run\n"
        ),
    )
    .expect("drill");
    let mut cmd = firedrill(dir);
    cmd.args([
        "run",
        "drills",
        "--platform",
        "platform.yaml",
        "--yes",
        "--ledger",
        "ledger.jsonl",
    ]);
    cmd
}

fn outstanding(dir: &Path) -> usize {
    firedrill_engine::ledger::Ledger::<firedrill_providers::Undo>::outstanding(
        &dir.join("ledger.jsonl"),
    )
    .expect("ledger")
    .len()
}

async fn until_file(path: &Path) {
    firedrill_testkit::until(format!("{} written", path.display()), DEADLINE, || {
        path.exists()
    })
    .await;
}

/// Ctrl-C, then an impatient second Ctrl-C on the terminal and SIGTERM, SIGHUP and SIGQUIT
/// from elsewhere while the undo runs: the undo (a command, which the terminal's Ctrl-C would
/// reach were it in firedrill's process group) finishes, and stderr says why nothing stops.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signals_during_the_undo_are_answered_and_never_cut_it_short() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut terminal = Terminal::spawn(marker_drill(dir.path(), "slow", "wait-long"));
    terminal.wait_for("$ sh -c touch faulted").await;
    assert!(dir.path().join("faulted").exists());

    terminal.type_in("\u{3}");
    until_file(&dir.path().join("undo-started")).await;
    terminal.type_in("\u{3}");
    for signal in [libc::SIGTERM, libc::SIGHUP, libc::SIGQUIT] {
        send(terminal.child.id(), signal);
    }
    terminal.wait_for("undo in progress").await;
    terminal
        .wait_for("SIGKILL would leave the rest for `firedrill recover --ledger ledger.jsonl`")
        .await;
    std::fs::write(dir.path().join("let-undo-finish"), "").expect("let the undo finish");
    let (status, output) = terminal.exit().await;

    assert_eq!(status.code(), Some(3), "{status}\n{output}");
    assert!(output.contains("aborted by SIGINT"), "{output}");
    assert!(!dir.path().join("faulted").exists(), "{output}");
    assert_eq!(outstanding(dir.path()), 0, "{output}");
}

/// Every other signal whose default action would end the process stops the run the same way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_other_signal_that_would_end_the_process_aborts_with_the_undo() {
    let mut signals = vec![
        (libc::SIGUSR2, "SIGUSR2".to_owned()),
        (libc::SIGALRM, "SIGALRM".to_owned()),
        (libc::SIGVTALRM, "SIGVTALRM".to_owned()),
        (libc::SIGPROF, "SIGPROF".to_owned()),
        (libc::SIGXCPU, "SIGXCPU".to_owned()),
        (libc::SIGABRT, "SIGABRT".to_owned()),
    ];
    #[cfg(target_os = "linux")]
    signals.extend([
        (libc::SIGIO, "SIGIO".to_owned()),
        (libc::SIGPWR, "SIGPWR".to_owned()),
        (libc::SIGSTKFLT, "SIGSTKFLT".to_owned()),
        (libc::SIGRTMIN() + 1, "SIGRTMIN+1".to_owned()),
        (libc::SIGRTMAX(), "SIGRTMAX".to_owned()),
    ]);
    for (signal, name) in signals {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut run = Started::spawn(&mut marker_drill(dir.path(), "quick", "wait-long"));
        run.wait_for("$ sh -c touch faulted", DEADLINE).await;
        run.signal(signal);
        let (status, output) = ended(run).await;
        assert_eq!(status.code(), Some(3), "{name}: {status}\n{output}");
        assert!(
            output.contains(&format!("aborted by {name};")),
            "{name}: {output}"
        );
        assert!(!dir.path().join("faulted").exists(), "{name}: {output}");
        assert_eq!(outstanding(dir.path()), 0, "{name}: {output}");
    }
}

/// SIGXFSZ means a write went past the file-size limit; that write fails with EFBIG where it
/// happened. The signal itself stops nothing (its default would end the run unundone).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigxfsz_is_noted_and_the_drill_goes_on() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut run = Started::spawn(&mut marker_drill(dir.path(), "quick", "wait-for-go"));
    run.wait_for("$ sh -c touch faulted", DEADLINE).await;
    run.signal(libc::SIGXFSZ);
    run.wait_for("SIGXFSZ received and ignored", DEADLINE).await;
    std::fs::write(dir.path().join("go-on"), "").expect("go on");
    let (status, output) = ended(run).await;
    assert_eq!(status.code(), Some(0), "{status}\n{output}");
    assert!(!dir.path().join("faulted").exists(), "{output}");
    assert_eq!(outstanding(dir.path()), 0, "{output}");
}

/// Ctrl-C at a GameDay prompt: the prompt's blocking read of the terminal must not keep the
/// process from exiting once the approved change is undone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_at_a_gameday_prompt_undoes_the_approved_change_and_exits() {
    let _alone = ALONE.lock().await;
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(dir.path().join("drills")).expect("drills/");
    std::fs::copy(
        Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../..")).join("drills/gameday.feature"),
        dir.path().join("drills/gameday.feature"),
    )
    .expect("copy the GameDay drill");
    let mut cmd = firedrill(dir.path());
    cmd.args([
        "run",
        "drills/gameday.feature",
        "--tags",
        "@gameday",
        "--ledger",
        "ledger.jsonl",
        "--json",
        "report.json",
    ]);
    let mut terminal = Terminal::spawn(cmd);
    terminal
        .wait_for("GameDay: approve \"region-dark us-west1")
        .await;
    terminal.type_in("y\n");
    terminal
        .wait_for("GameDay: approve \"failover-scale-up")
        .await;

    terminal.type_in("\u{3}");
    let status = wait_exit(&mut terminal.child).await;
    let output = terminal.output();

    assert_eq!(status.code(), Some(3), "{status}\n{output}");
    let report: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("report.json")).expect("report"),
    )
    .expect("JSON");
    assert_eq!(report["aborted_by"], "SIGINT", "{report:#}");
    let faults = report["scenarios"][0]["faults"].as_array().expect("faults");
    assert_eq!(faults.len(), 1, "{report:#}");
    assert!(faults[0]["undone_at"].is_number(), "{report:#}");
    assert_eq!(outstanding(dir.path()), 0, "{output}");
}

/// An SSH disconnect during `recover`: it ignores the hangup, as under `nohup`, and finishes
/// the undo it was running (a command, which keeps running too).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recover_finishes_its_undo_when_its_terminal_hangs_up() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut run = Started::spawn(&mut marker_drill(dir.path(), "slow", "wait-long"));
    run.wait_for("$ sh -c touch faulted", DEADLINE).await;
    run.signal(libc::SIGKILL);
    let (status, _) = ended(run).await;
    assert_eq!(status.code(), None, "SIGKILL ends it: {status}");
    assert_eq!(outstanding(dir.path()), 1);

    let mut recover = firedrill(dir.path());
    recover.args(["recover", "--ledger", "ledger.jsonl"]);
    let mut terminal = Terminal::spawn(recover);
    until_file(&dir.path().join("undo-started")).await;
    terminal.hang_up();
    std::fs::write(dir.path().join("let-undo-finish"), "").expect("let the undo finish");
    let (status, _) = terminal.exit().await;

    assert_eq!(status.code(), Some(0), "recover after a hangup: {status}");
    assert!(!dir.path().join("faulted").exists());
    assert_eq!(outstanding(dir.path()), 0);
}
