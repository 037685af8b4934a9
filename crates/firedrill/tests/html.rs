//! The HTML report: a golden file, a real browser render, and bad input.

use std::path::Path;
use std::process::Command;

use firedrill_report::{html, json};

const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
const BIN: &str = env!("CARGO_BIN_EXE_firedrill");

fn fixture(name: &str) -> json::Report {
    json::load(&Path::new(ROOT).join("fixtures/reports").join(name))
        .unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn the_html_of_a_fixed_report_matches_the_golden_file() {
    let page = html::render(&[fixture("embedded-run.json")]).expect("renders");
    let golden = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/report.html");
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&golden, &page).expect("write golden");
    }
    let expected = std::fs::read_to_string(&golden)
        .expect("tests/golden/report.html (UPDATE_GOLDEN=1 writes it)");
    assert!(
        page == expected,
        "the HTML changed; review it and run with UPDATE_GOLDEN=1 to accept"
    );
}

#[test]
fn the_page_is_self_contained() {
    let page = html::render(&[
        fixture("embedded-run.json"),
        fixture("previous-quarter.json"),
    ])
    .expect("renders");
    assert!(page.contains("Content-Security-Policy\" content=\"default-src 'none'"));
    for needle in ["<script", " src=", "href=", "@import", "url("] {
        assert!(
            !page.contains(needle),
            "the page references something external: {needle}"
        );
    }
    let external: Vec<&str> = page
        .match_indices("http://")
        .chain(page.match_indices("https://"))
        .map(|(i, _)| &page[i..(i + 30).min(page.len())])
        .filter(|s| {
            !s.starts_with("http://www.w3.org/2000/svg") && !s.starts_with("http://127.0.0.1:41625")
        })
        .collect();
    assert!(external.is_empty(), "{external:?}");
}

#[test]
fn several_reports_draw_the_recovery_trend_with_one_mark_per_run() {
    let page = html::render(&[
        fixture("previous-quarter.json"),
        fixture("embedded-run.json"),
    ])
    .expect("renders");
    assert!(page.contains("Trend: recovery time against the target band"));
    assert_eq!(
        page.matches("<circle class=\"run ").count(),
        2,
        "one mark per run of the failover scenario"
    );
}

#[test]
fn chromium_renders_the_timeline_with_one_mark_per_milestone_and_no_network() {
    let chromium = ["chromium", "chromium-browser"].into_iter().find(|c| {
        Command::new("sh")
            .arg("-c")
            .arg(format!("command -v {c}"))
            .output()
            .is_ok_and(|o| o.status.success())
    });
    let chromium = chromium
        .expect("chromium is not installed: run scripts/test (it installs Debian's chromium)");
    let report = fixture("embedded-run.json");
    let dir = tempfile::tempdir().expect("tempdir");
    let page = dir.path().join("report.html");
    std::fs::write(
        &page,
        html::render(std::slice::from_ref(&report)).expect("renders"),
    )
    .expect("write");
    let flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--proxy-server=127.0.0.1:9",
    ];
    let profile = format!("--user-data-dir={}", dir.path().join("profile").display());
    let url = format!("file://{}", page.display());
    let dom = Command::new(chromium)
        .args(flags)
        .arg(&profile)
        .args(["--dump-dom", &url])
        .output()
        .expect("chromium");
    let dom = String::from_utf8_lossy(&dom.stdout);
    let milestones: usize = report.scenarios.iter().map(|s| s.milestones.len()).sum();
    assert!(milestones > 0);
    assert_eq!(
        dom.matches("<circle class=\"milestone\"").count(),
        milestones,
        "one mark per milestone in the rendered DOM"
    );
    assert_eq!(
        dom.matches("<text class=\"mark\"").count(),
        milestones,
        "one number per milestone mark, named in the legend under the timeline"
    );
    assert_eq!(
        dom.matches("<table class=\"marks\">").count(),
        report.scenarios.len()
    );
    assert_eq!(
        dom.matches("<svg class=\"timeline\"").count(),
        report.scenarios.len()
    );
    let shot = Path::new(ROOT).join("target/html-report.png");
    let _ = std::fs::remove_file(&shot);
    let status = Command::new(chromium)
        .args(flags)
        .arg(&profile)
        .args([
            "--window-size=1100,2400",
            &format!("--screenshot={}", shot.display()),
            &url,
        ])
        .output()
        .expect("chromium");
    assert!(
        shot.metadata().is_ok_and(|m| m.len() > 10_000),
        "no screenshot: {}",
        String::from_utf8_lossy(&status.stderr)
    );
}

#[test]
fn bad_reports_are_clear_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let text = std::fs::read_to_string(Path::new(ROOT).join("fixtures/reports/embedded-run.json"))
        .expect("fixture");
    std::fs::write(dir.path().join("truncated.json"), &text[..text.len() / 2]).expect("write");
    std::fs::write(
        dir.path().join("future.json"),
        text.replacen("\"schema_version\": 1", "\"schema_version\": 7", 1),
    )
    .expect("write");
    let out = Command::new(BIN)
        .args([
            "report",
            "truncated.json",
            "future.json",
            "--html",
            "out.html",
        ])
        .current_dir(dir.path())
        .output()
        .expect("run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("truncated.json:") && stderr.contains("the file ends early"),
        "{stderr}"
    );
    assert!(
        stderr.contains("future.json: schema_version 7, but this firedrill reads schema_version 1"),
        "{stderr}"
    );
    assert!(!dir.path().join("out.html").exists());
}
