//! Item 1 of issue 13: what a command does must not depend on anyone reading what it prints.
//! A closed stdout or stderr (`| head -1`, a reader gone, a full device) changes no exit code
//! and leaves no fault.

use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

use crate::support::{
    ALONE, DEADLINE, FAULTS_IN, Sim, Started, closed_pipe, drill, ended, firedrill, run_to_end,
    wait_exit,
};

/// Runs `cmd` with stdout piped, reads its first line and closes the pipe, as `| head -1`
/// does; stderr is collected. Its exit status, the line and stderr.
async fn head_1(cmd: &mut Command) -> (std::process::ExitStatus, String, String) {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start firedrill");
    let stdout = child.stdout.take().expect("stdout");
    let stderr = child.stderr.take().expect("stderr");
    let first = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        line // the reader, and with it the pipe, is dropped here
    })
    .await
    .expect("read the first line");
    let errors = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = std::io::Read::read_to_string(&mut BufReader::new(stderr), &mut text);
        text
    });
    let status = wait_exit(&mut child).await;
    (status, first, errors.join().unwrap_or_default())
}

/// Starts the drill, SIGKILLs it once all four faults are in: the ledger keeps four undos.
async fn four_faults_left_behind(sim: &Sim, ledger: &str) {
    let drill = sim.drill_file("faults.feature", &drill("2h"));
    let mut run = Started::spawn(&mut sim.run(&drill, ledger, "killed.json"));
    run.wait_for(FAULTS_IN, DEADLINE).await;
    sim.assert_faults_in().await;
    run.signal(libc::SIGKILL);
    let (status, _) = ended(run).await;
    assert_eq!(status.code(), None, "SIGKILL ends it: {status}");
    assert_eq!(sim.outstanding(ledger), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recover_with_its_output_closed_or_cut_by_head_undoes_every_fault_and_exits_0() {
    let _alone = ALONE.lock().await;
    let sim = Sim::up().await;
    let before = sim.settled().await;

    four_faults_left_behind(&sim, "closed.jsonl").await;
    let (status, _) = run_to_end(
        sim.recover("closed.jsonl")
            .stdout(closed_pipe())
            .stderr(closed_pipe()),
    )
    .await;
    assert_eq!(
        status.code(),
        Some(0),
        "recover with stdout and stderr closed: {status}"
    );
    sim.assert_as_before(&before, "recover with its output closed")
        .await;
    assert_eq!(sim.outstanding("closed.jsonl"), 0);

    four_faults_left_behind(&sim, "head.jsonl").await;
    let (status, first, stderr) = head_1(&mut sim.recover("head.jsonl")).await;
    assert_eq!(
        status.code(),
        Some(0),
        "recover | head -1: {status}\n{first}{stderr}"
    );
    assert!(first.contains("4 fault(s) outstanding"), "{first}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    sim.assert_as_before(&before, "recover | head -1").await;
    assert_eq!(sim.outstanding("head.jsonl"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validate_plan_and_steps_exit_with_their_normal_code_when_stdout_is_closed() {
    let root = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."));
    for args in [
        &["validate"][..],
        &["validate", "drills/no-such.feature"],
        &["plan"],
        &["steps"],
        &["steps", "--format", "md"],
        &["steps", "--format", "json"],
    ] {
        let (normal, output) = run_to_end(firedrill(root).args(args)).await;
        assert_ne!(normal.code(), Some(101), "{args:?}: {output}");
        for (what, stdout, stderr) in [
            ("stdout closed", closed_pipe(), Stdio::piped()),
            ("stdout and stderr closed", closed_pipe(), closed_pipe()),
            ("stdout on a full device", full_device(), Stdio::piped()),
        ] {
            let (status, errors) =
                run_to_end(firedrill(root).args(args).stdout(stdout).stderr(stderr)).await;
            assert_eq!(
                status.code(),
                normal.code(),
                "{args:?} with {what}: {status}\n{errors}"
            );
            assert!(
                !errors.contains("panicked"),
                "{args:?} with {what}: {errors}"
            );
        }
    }
}

fn full_device() -> Stdio {
    Stdio::from(
        std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .expect("/dev/full"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_whose_output_is_closed_still_undoes_and_exits_with_its_code() {
    let _alone = ALONE.lock().await;
    let sim = Sim::up().await;
    let before = sim.settled().await;
    let short = sim.drill_file("short.feature", &drill("1m"));

    // stdout closed from the start.
    let mut cmd = sim.run(&short, "closed.jsonl", "closed.json");
    let (status, output) = run_to_end(cmd.stdout(closed_pipe())).await;
    assert_eq!(status.code(), Some(0), "stdout closed: {status}\n{output}");
    sim.assert_as_before(&before, "run with stdout closed")
        .await;
    assert_eq!(sim.outstanding("closed.jsonl"), 0);
    assert_eq!(sim.report("closed.json")["verdict"], "passed");

    // `firedrill run … | head -1`
    let (status, first, stderr) = head_1(&mut sim.run(&short, "head.jsonl", "head.json")).await;
    assert_eq!(
        status.code(),
        Some(0),
        "run | head -1: {status}\n{first}{stderr}"
    );
    assert!(first.starts_with("firedrill run "), "{first}");
    sim.assert_as_before(&before, "run | head -1").await;
    assert_eq!(sim.outstanding("head.jsonl"), 0);

    // stderr closed, with the debug log on: every log line is a failed write.
    let mut cmd = sim.run(&short, "stderr.jsonl", "stderr.json");
    cmd.env("FIREDRILL_LOG", "debug");
    let (status, output) = run_to_end(cmd.stderr(closed_pipe())).await;
    assert_eq!(status.code(), Some(0), "stderr closed: {status}\n{output}");
    sim.assert_as_before(&before, "run with stderr closed")
        .await;
    assert_eq!(sim.outstanding("stderr.jsonl"), 0);

    // stdout on a full device (ENOSPC on every write).
    let mut cmd = sim.run(&short, "full.jsonl", "full.json");
    let (status, output) = run_to_end(cmd.stdout(full_device())).await;
    assert_eq!(status.code(), Some(0), "stdout full: {status}\n{output}");
    sim.assert_as_before(&before, "run with stdout on /dev/full")
        .await;
    assert_eq!(sim.outstanding("full.jsonl"), 0);

    // stdout and stderr closed, then SIGTERM once the faults are in (seen on the platform:
    // there is no output to wait on).
    let long = sim.drill_file("long.feature", &drill("2h"));
    let mut cmd = sim.run(&long, "signal.jsonl", "signal.json");
    let run = Started::spawn(cmd.stdout(closed_pipe()).stderr(closed_pipe()));
    sim.wait_faults_in().await;
    run.signal(libc::SIGTERM);
    let (status, _) = ended(run).await;
    assert_eq!(
        status.code(),
        Some(3),
        "SIGTERM with the output closed: {status}"
    );
    sim.assert_as_before(&before, "SIGTERM with the output closed")
        .await;
    assert_eq!(sim.outstanding("signal.jsonl"), 0);
    assert_eq!(sim.report("signal.json")["aborted_by"], "SIGTERM");
}
