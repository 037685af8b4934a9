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
