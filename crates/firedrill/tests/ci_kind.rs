//! The kind CI path end to end, with the embedded platform standing in for the two kind
//! clusters: `firedrill sim up` serves its API servers under the kind context names
//! (`kind-primary`, `kind-failover`); the exact platform file and tag expression the
//! workflow uses (ci/platform.kind.yaml, CI_TAGS of ci/scripts/lib.sh) are validated and
//! preflighted against it, and ci/scripts/run-drills.sh runs the drills, reading the endpoints
//! from the env file as on kind; ci/scripts/summary.sh renders the job summary of its report.

mod ci_support;

use std::collections::BTreeSet;
use std::process::Command;

use ci_support::{BIN, SimUp, ci_tags, root, run, sim_up, text};

/// The embedded platform's failover target: its failover cluster scales from 0 nodes.
const EMBEDDED_FAILOVER: &str = "20m..25m";

/// `firedrill` with the sim's endpoints, as ci/scripts/run-drills.sh runs it with kind's.
fn firedrill(sim: &SimUp, dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    let mut command = Command::new(BIN.path());
    command
        .args(args)
        .current_dir(root())
        .env_remove("FIREDRILL_PLATFORM")
        .env("FIREDRILL_LEDGER", dir.join("ledger.jsonl"))
        // The stand-in's failover cluster starts cold (0 nodes), unlike kind's.
        .env("FIREDRILL_FAILOVER_TARGET", EMBEDDED_FAILOVER);
    for (name, value) in sim.env() {
        if name != "FIREDRILL_PLATFORM" {
            command.env(name, value);
        }
    }
    run(&mut command)
}

#[test]
fn the_ci_drills_pass_on_the_embedded_platform_under_the_kind_context_names() {
    let dir = tempfile::tempdir().expect("temp dir");
    let sim = sim_up(
        dir.path(),
        &[
            "--context",
            "us-west1=kind-primary",
            "--context",
            "us-west2=kind-failover",
            "--time-scale",
            "200",
        ],
    );

    // The kubeconfig the sim hands out names its clusters the way kind does.
    let kubeconfig: serde_yaml::Value = serde_yaml::from_str(
        &std::fs::read_to_string(sim.var("FIREDRILL_KUBECONFIG")).expect("read the kubeconfig"),
    )
    .expect("the kubeconfig is YAML");
    let server_of = |name: &str| {
        kubeconfig["clusters"]
            .as_sequence()
            .expect("clusters")
            .iter()
            .find(|c| c["name"].as_str() == Some(name))
            .and_then(|c| c["cluster"]["server"].as_str())
            .unwrap_or_else(|| panic!("no cluster {name} in the kubeconfig"))
            .to_owned()
    };
    assert_eq!(server_of("kind-primary"), server_of("us-west1"));
    assert_eq!(server_of("kind-failover"), server_of("us-west2"));
    assert_ne!(server_of("kind-primary"), server_of("kind-failover"));

    let tags = ci_tags();
    let validated = firedrill(
        &sim,
        dir.path(),
        &[
            "validate",
            "--platform",
            "ci/platform.kind.yaml",
            "--tags",
            &tags,
            "--preflight",
        ],
    );
    assert!(
        validated.status.success(),
        "validate --preflight failed:\n{}\nsim:\n{}",
        text(&validated),
        sim.log()
    );
    let validated_text = text(&validated);
    let selected: usize = regex::Regex::new(r"ok: (\d+) scenario")
        .expect("regex")
        .captures(&validated_text)
        .and_then(|c| c[1].parse().ok())
        .unwrap_or_else(|| panic!("validate names no scenario count:\n{validated_text}"));
    assert!(selected > 0, "the tags {tags:?} select no scenario");

    // The run itself goes through ci/scripts/run-drills.sh, with the endpoints in the env
    // file ci/scripts/expose.sh writes on kind (same shape: NAME='value' lines).
    let out_dir = dir.path().join("out");
    std::fs::create_dir_all(&out_dir).expect("create the CI out folder");
    let quote = |v: &str| format!("'{}'", v.replace('\'', r"'\''"));
    let mut kind_env: String = sim
        .env()
        .iter()
        .filter(|(k, _)| k != "FIREDRILL_PLATFORM")
        .map(|(k, v)| format!("{k}={}\n", quote(v)))
        .collect();
    kind_env.push_str(&format!(
        "FIREDRILL_FAILOVER_TARGET='{EMBEDDED_FAILOVER}'\n"
    ));
    std::fs::write(out_dir.join("kind.env"), kind_env).expect("write kind.env");
    let ran = run(Command::new(root().join("ci/scripts/run-drills.sh"))
        .current_dir(root())
        .env("FIREDRILL_CI_OUT", &out_dir)
        .env_remove("FIREDRILL_PLATFORM")
        .env_remove("FIREDRILL_CI_TAGS"));
    let ran_text = text(&ran);
    assert_eq!(
        ran.status.code(),
        Some(0),
        "ci/scripts/run-drills.sh: the CI drills did not all pass:\n{ran_text}\nsim:\n{}",
        sim.log()
    );
    let reports = out_dir.join("reports");
    let report = reports.join("firedrill.json");
    let junit = reports.join("junit.xml");
    let html = reports.join("firedrill.html");

    let report_path = report;
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report_path).expect("read the JSON report"))
            .expect("the JSON report parses");
    assert_eq!(report["platform"], "kind");
    assert_eq!(report["verdict"], "passed");
    let scenarios = report["scenarios"].as_array().expect("scenarios");
    assert_eq!(
        scenarios.len(),
        selected,
        "the run reported another set of scenarios than validate selected"
    );
    let mut failed = BTreeSet::new();
    for s in scenarios {
        let name = format!("{} / {}", s["feature"], s["scenario"]);
        let tags: Vec<&str> = s["tags"]
            .as_array()
            .expect("tags")
            .iter()
            .filter_map(|t| t.as_str())
            .collect();
        assert!(tags.contains(&"ci"), "{name} is not tagged @ci: {tags:?}");
        assert!(
            !tags.contains(&"member-kill"),
            "{name} kills a Mongo member, which kind has no way back from"
        );
        if s["passed"] != true {
            failed.insert(name);
        }
    }
    assert!(
        failed.is_empty(),
        "failed scenarios: {failed:?}\n{ran_text}"
    );
    // Every fault was undone: nothing is left outstanding for `firedrill recover`.
    for s in scenarios {
        for fault in s["faults"].as_array().into_iter().flatten() {
            assert!(
                !fault["undone_at"].is_null() && fault["undo_error"].is_null(),
                "fault {} of {} was not undone: {}",
                fault["fault"],
                s["scenario"],
                fault["undo_error"]
            );
        }
    }
    let junit = std::fs::read_to_string(&junit).expect("read the JUnit report");
    assert!(
        junit.contains("<testsuites") && !junit.contains("<failure"),
        "{junit}"
    );
    let html = std::fs::read_to_string(&html).expect("read the HTML report");
    assert!(html.starts_with("<!DOCTYPE html>") || html.starts_with("<!doctype html>"));

    // The job summary the workflow writes: one row per scenario, each passed.
    ci_support::tool("jq", "apt-get install jq");
    let summary = run(Command::new(root().join("ci/scripts/summary.sh")).arg(&report_path));
    let summary_text = String::from_utf8_lossy(&summary.stdout);
    assert!(summary.status.success(), "summary.sh:\n{}", text(&summary));
    assert!(
        summary_text.starts_with("**passed** on platform `kind`"),
        "{summary_text}"
    );
    let rows = summary_text
        .lines()
        .filter(|l| l.ends_with("| passed |"))
        .count();
    assert_eq!(rows, selected, "{summary_text}");
    assert!(
        !summary_text.contains("**failed**") && !summary_text.contains("**missed**"),
        "{summary_text}"
    );
}
