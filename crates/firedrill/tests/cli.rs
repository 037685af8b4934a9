//! The binary's command-line surface: help, exit codes, the step catalog and its generated docs.

use std::path::Path;

use firedrill_testkit::{Binary, root};

const BIN: Binary = firedrill_testkit::firedrill!();

/// `firedrill ARGS` in `dir`: its exit code (-1 for a signal), stdout and stderr.
fn firedrill_in(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let out = BIN.run(dir, args);
    (out.code().unwrap_or(-1), out.stdout, out.stderr)
}

/// `firedrill ARGS` where the test runs.
fn firedrill(args: &[&str]) -> (i32, String, String) {
    firedrill_in(Path::new("."), args)
}

#[test]
fn docs_steps_md_is_the_generated_catalog() {
    let (code, generated, _) = firedrill(&["steps", "--format", "md"]);
    assert_eq!(code, 0);
    let committed = std::fs::read_to_string(root().join("docs/STEPS.md")).expect("docs/STEPS.md");
    assert!(
        generated == committed,
        "docs/STEPS.md drifted from the step definitions: run `cargo run -- steps --format md > docs/STEPS.md`"
    );
}

#[test]
fn the_json_catalog_lists_every_step_with_an_example() {
    let (code, json, _) = firedrill(&["steps", "--format", "json"]);
    assert_eq!(code, 0);
    let steps: Vec<serde_json::Value> = serde_json::from_str(&json).expect("json");
    assert!(steps.len() >= 10, "{steps:?}");
    for step in &steps {
        let keyword = step["keyword"].as_str().expect("keyword");
        assert!(
            step["example"]
                .as_str()
                .is_some_and(|e| e.starts_with(keyword)),
            "{step}"
        );
        assert!(step["doc"].as_str().is_some_and(|d| d.len() > 20), "{step}");
    }
}

#[test]
fn help_documents_every_command_and_the_exit_codes() {
    let (code, help, _) = firedrill(&["--help"]);
    assert_eq!(code, 0);
    for needle in [
        "run",
        "validate",
        "plan",
        "steps",
        "recover",
        "sim",
        "4  undo incomplete",
    ] {
        assert!(help.contains(needle), "--help lacks {needle}:\n{help}");
    }
    for command in [
        "run", "validate", "plan", "steps", "recover", "report", "sim",
    ] {
        let (code, _, _) = firedrill(&[command, "--help"]);
        assert_eq!(code, 0, "{command} --help");
    }
}

#[test]
fn a_usage_error_exits_2() {
    let (code, _, stderr) = firedrill(&["run", "--no-such-flag"]);
    assert_eq!(code, 2, "{stderr}");
}

#[test]
fn the_annotated_production_example_validates() {
    let example = root().join("fixtures/platforms/production.example.yaml");
    let dir = tempfile::tempdir().expect("tempdir");
    let example = example.to_str().expect("a UTF-8 path");
    let (code, _, stderr) = firedrill_in(dir.path(), &["validate", "--platform", example]);
    assert_eq!(code, 0, "{stderr}");
}

#[test]
fn json_log_format_prints_one_event_per_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir(dir.path().join("drills")).expect("mkdir");
    std::fs::copy(
        root().join("drills/traffic-switch.feature"),
        dir.path().join("drills/t.feature"),
    )
    .expect("copy");
    let (code, stdout, stderr) = firedrill_in(dir.path(), &["run", "--log-format", "json"]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    let events: Vec<serde_json::Value> = stdout
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    let kinds: Vec<&str> = events.iter().filter_map(|e| e["event"].as_str()).collect();
    for kind in [
        "run-started",
        "scenario-started",
        "milestone",
        "fault-injected",
        "fault-undone",
        "phase-measured",
        "scenario-finished",
    ] {
        assert!(kinds.contains(&kind), "no {kind} event in {kinds:?}");
    }
    // A scenario's end is its last event: no step of it after it.
    let mut open = false;
    for kind in &kinds {
        match *kind {
            "scenario-started" => open = true,
            "scenario-finished" => open = false,
            "step-started" | "step-finished" => {
                assert!(open, "a step outside its scenario: {kinds:?}")
            }
            _ => {}
        }
    }
}

#[test]
fn the_console_prints_each_scenario_from_its_own_start_with_nothing_after_its_verdict() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir(dir.path().join("drills")).expect("mkdir");
    std::fs::copy(
        root().join("drills/network.feature"),
        dir.path().join("drills/n.feature"),
    )
    .expect("copy");
    let (_, stdout, stderr) = firedrill_in(dir.path(), &["run"]);
    let lines: Vec<&str> = stdout.lines().collect();
    let scenarios: Vec<usize> = lines
        .iter()
        .enumerate()
        .filter(|(_, l)| l.starts_with("  Scenario: "))
        .map(|(i, _)| i)
        .collect();
    assert_eq!(scenarios.len(), 2, "{stdout}{stderr}");
    for (n, &start) in scenarios.iter().enumerate() {
        assert!(
            lines[start].ends_with("(T+ is platform time since the scenario started)"),
            "{}",
            lines[start]
        );
        let end = scenarios.get(n + 1).map_or(lines.len(), |next| next - 2);
        let body = &lines[start + 1..end];
        let verdict = body
            .iter()
            .position(|l| *l == "  PASSED" || *l == "  FAILED")
            .unwrap_or_else(|| panic!("no verdict:\n{stdout}"));
        let after: Vec<&&str> = body[verdict + 1..]
            .iter()
            .filter(|l| !l.is_empty())
            .collect();
        let summary = n + 1 == scenarios.len();
        assert!(
            after.is_empty() || (summary && after.len() == 1 && after[0].ends_with(" failed")),
            "lines after the verdict: {after:?}\n{stdout}"
        );
        // Counted from this scenario's start, not the run's: its first fault is within a minute.
        let fault = body
            .iter()
            .find(|l| l.contains("⚡ T+"))
            .unwrap_or_else(|| panic!("no fault:\n{stdout}"));
        let stamp = fault
            .split("⚡ T+")
            .nth(1)
            .and_then(|rest| rest.split(" injected").next())
            .unwrap_or_default();
        assert!(
            !stamp.is_empty() && (!stamp.contains('m') || stamp.ends_with("ms")),
            "{fault}"
        );
    }
}

#[test]
fn the_readme_lists_every_step_of_the_catalog() {
    let readme = std::fs::read_to_string(root().join("README.md")).expect("README.md");
    let (_, json, _) = firedrill(&["steps", "--format", "json"]);
    let steps: Vec<serde_json::Value> = serde_json::from_str(&json).expect("json");
    for step in steps {
        let line = format!(
            "`{} {}`",
            step["keyword"].as_str().unwrap_or_default(),
            step["pattern"]
                .as_str()
                .unwrap_or_default()
                .replace('|', "\\|")
        );
        assert!(readme.contains(&line), "README's step catalog lacks {line}");
    }
}

#[test]
fn preflight_without_a_platform_file_is_a_usage_error_with_a_hint() {
    let (code, _, stderr) = firedrill(&["validate", "--preflight"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("--preflight needs --platform") && stderr.contains("run --dry-run"),
        "{stderr}"
    );
}

/// A loopback HTTP server answering every request `200 ok`, for as long as the test runs;
/// its base URL.
fn serve_ok() -> String {
    use std::io::{Read as _, Write as _};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    let url = format!(
        "http://{}",
        listener.local_addr().expect("the bound address")
    );
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let mut request = [0u8; 4096];
            let _ = stream.read(&mut request);
            let _ = stream.write_all(
                b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok",
            );
        }
    });
    url
}

/// A "worker" the minimal platform's fault pauses: a shell appending a timestamp to `beats`
/// five times a second, its pid in `worker.pid`. Killed when dropped.
struct Worker {
    child: std::process::Child,
    beats: std::path::PathBuf,
}

impl Worker {
    fn start(dir: &Path) -> Self {
        let beats = dir.join("beats");
        let child = std::process::Command::new("sh")
            .arg("-c")
            .arg("while :; do date +%s.%N >> \"$1\"; sleep 0.2; done")
            .arg("worker")
            .arg(&beats)
            .spawn()
            .expect("start the worker");
        std::fs::write(dir.join("worker.pid"), child.id().to_string()).expect("pid file");
        Self { child, beats }
    }

    /// Whether the kernel has it stopped (SIGSTOP), from /proc/PID/stat.
    fn is_stopped(&self) -> bool {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id()))
            .expect("the worker's /proc stat");
        // pid (comm) STATE …: the state follows the closing parenthesis.
        let state = stat.rsplit_once(") ").map(|(_, rest)| rest.chars().next());
        state == Some(Some('T'))
    }

    /// The longest pause between two beats, in seconds.
    fn longest_pause(&self) -> f64 {
        let text = std::fs::read_to_string(&self.beats).unwrap_or_default();
        let beats: Vec<f64> = text.lines().filter_map(|l| l.parse().ok()).collect();
        beats.windows(2).map(|w| w[1] - w[0]).fold(0.0, f64::max)
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `firedrill ARGS` in `dir` against fixtures/platforms/minimal.yaml, its probe at `site` and
/// its fault on the worker of `dir`.
fn against_minimal(dir: &Path, site: &str, args: &[&str]) -> firedrill_testkit::Output {
    let platform = root().join("fixtures/platforms/minimal.yaml");
    let platform = platform.to_str().expect("a UTF-8 path");
    let mut all = args.to_vec();
    all.extend(["--platform", platform]);
    let mut command = BIN.command(dir, &all);
    command
        .env("SITE_URL", format!("{site}/health"))
        .env("WORKER_PIDFILE", dir.join("worker.pid"));
    firedrill_testkit::Started::spawn(&mut command)
        .exit_blocking(firedrill_testkit::process::RUN_DEADLINE)
}

#[test]
fn a_minimal_platform_of_one_probe_and_one_command_fault_validates_plans_and_runs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let site = serve_ok();
    let worker = Worker::start(dir.path());
    let drill = root().join("fixtures/drills/minimal.feature");
    let drill = drill.to_str().expect("a UTF-8 path");

    let validate = against_minimal(dir.path(), &site, &["validate", drill]);
    assert_eq!(validate.code(), Some(0), "{}", validate.text());
    assert!(
        validate.stdout.contains(
            "ok: 1 scenario(s) in 1 file(s), 8 step(s), valid against platform \"minimal\""
        ),
        "{}",
        validate.text()
    );
    let preflight = against_minimal(dir.path(), &site, &["validate", "--preflight", drill]);
    assert_eq!(preflight.code(), Some(0), "{}", preflight.text());
    let plan = against_minimal(dir.path(), &site, &["plan", drill]);
    assert_eq!(plan.code(), Some(0), "{}", plan.text());
    assert!(plan.stdout.contains("undo: "), "{}", plan.text());

    let run = against_minimal(
        dir.path(),
        &site,
        &["run", drill, "--yes", "--json", "report.json"],
    );
    assert_eq!(run.code(), Some(0), "{}", run.text());
    let report: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("report.json")).expect("report.json"),
    )
    .expect("a JSON report");
    assert_eq!(report["verdict"], "passed", "{report:#}");
    let faults = report["scenarios"][0]["faults"].as_array().expect("faults");
    assert_eq!(faults.len(), 1, "{report:#}");
    assert!(
        faults[0]["undone_at"].is_number() && faults[0]["undo_error"].is_null(),
        "{report:#}"
    );
    // The fault really paused the worker (for the 3s the drill holds it), and its undo
    // resumed it.
    assert!(
        worker.longest_pause() >= 2.5,
        "the worker never paused: {}s",
        worker.longest_pause()
    );
    assert!(!worker.is_stopped(), "the worker is still paused");
}

#[test]
fn a_drill_needing_a_failover_region_is_refused_against_the_minimal_platform_and_nothing_is_injected()
 {
    let dir = tempfile::tempdir().expect("tempdir");
    let site = serve_ok();
    let worker = Worker::start(dir.path());
    let drill = dir.path().join("failover.feature");
    std::fs::write(
        &drill,
        "Feature: failover against a platform without regions\n\n  Scenario: a fault, then the failover time\n    When the fault \"worker-down\" is injected\n    Then the failover time is within the 20m..25m target\n",
    )
    .expect("write the drill");
    let drill = drill.to_str().expect("a UTF-8 path");
    let platform = root().join("fixtures/platforms/minimal.yaml");
    let expected = format!(
        "error: {drill}:5:10: Then the failover time is within the 20m..25m target: needs a failover region, and platform file {} has no `regions:` (hint: add to the platform file: regions: {{ us-west2: {{ role: failover }} }})",
        platform.display()
    );

    for command in [&["validate"][..], &["plan"], &["run", "--yes"]] {
        let mut args = command.to_vec();
        args.push(drill);
        let out = against_minimal(dir.path(), &site, &args);
        assert_eq!(out.code(), Some(2), "{command:?}: {}", out.text());
        assert!(
            out.stderr.contains(&expected),
            "{command:?}: no\n{expected}\nin\n{}",
            out.text()
        );
        assert!(
            out.stderr.contains("1 problem found; nothing was injected"),
            "{command:?}: {}",
            out.text()
        );
    }
    // Nothing was injected: the worker never paused, and no undo was ever written.
    assert!(!worker.is_stopped(), "the worker was paused");
    assert!(
        worker.longest_pause() < 1.5,
        "the worker paused for {}s",
        worker.longest_pause()
    );
    let ledger =
        std::fs::read_to_string(dir.path().join(".firedrill/ledger.jsonl")).unwrap_or_default();
    assert!(!ledger.contains("worker-down"), "{ledger}");
}
