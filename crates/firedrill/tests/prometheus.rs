//! Drill metrics with the real Prometheus, Pushgateway and promtool (Debian packages
//! `prometheus` and `prometheus-pushgateway`, installed by scripts/test).

use std::io::Write as _;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use firedrill_core::clock::PlatformTime;
use firedrill_core::target::Target;
use firedrill_core::timeline::{Milestone, Phase};
use firedrill_engine::events::{Event, Sink as _};
use firedrill_report::metrics::{Metrics, NAMES};
use firedrill_testkit::Wait;

const BIN: &str = env!("CARGO_BIN_EXE_firedrill");
const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");

fn require(program: &str) {
    let found = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {program}"))
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        found,
        "{program} is not installed: run scripts/test (it installs the Debian packages prometheus and prometheus-pushgateway)"
    );
}

/// A background program, killed when dropped.
struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn wait_ready(url: &str) {
    Wait::new(format!("{url} ready"), Duration::from_secs(30))
        .every(Duration::from_millis(100))
        .blocking(|| reqwest::blocking::get(url).is_ok_and(|r| r.status().is_success()));
}

fn at(s: u64) -> PlatformTime {
    PlatformTime::from_offset(Duration::from_secs(s))
}

#[test]
fn promtool_accepts_the_exposition_of_a_whole_drill() {
    require("promtool");
    let mut metrics = Metrics::new("embedded").expect("metrics");
    metrics.handle(&Event::ScenarioStarted {
        feature: "region".into(),
        scenario: "failover".into(),
        tags: vec![],
        at: at(0),
    });
    metrics.handle(&Event::Milestone(Milestone {
        name: "fault injected".into(),
        at: at(1),
        source: "engine".into(),
    }));
    metrics.handle(&Event::FaultInjected {
        id: "r/1".into(),
        fault: "dark".into(),
        undo: "light".into(),
        at: at(1),
    });
    let target = Target::Band {
        low: Duration::from_secs(1200),
        high: Duration::from_secs(1500),
    };
    metrics.handle(&Event::PhaseMeasured(Phase {
        name: "failover".into(),
        from: "a".into(),
        to: "b".into(),
        start: at(1),
        end: Some(at(1300)),
        verdict: Some(target.judge(Duration::from_secs(1299))),
    }));
    metrics.handle(&Event::WritesChecked {
        namespace: "prod-1".into(),
        acknowledged: 5000,
        lost: 0,
    });
    metrics.handle(&Event::FaultUndone {
        id: "r/1".into(),
        fault: "dark".into(),
        at: at(1400),
        error: None,
    });
    metrics.handle(&Event::ScenarioFinished {
        feature: "region".into(),
        scenario: "failover".into(),
        passed: true,
        at: at(1401),
    });
    let exposition = metrics.encode();
    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool");
    promtool
        .stdin
        .take()
        .expect("stdin")
        .write_all(exposition.as_bytes())
        .expect("write");
    let out = promtool.wait_with_output().expect("promtool");
    assert!(
        out.status.success(),
        "promtool check metrics:\n{}{}\n{exposition}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn alert_rules_check_and_pass_their_unit_tests() {
    require("promtool");
    let dir = Path::new(ROOT).join("deploy/prometheus");
    for args in [
        ["check", "rules", "firedrill-rules.yaml"],
        ["test", "rules", "firedrill-rules.test.yaml"],
    ] {
        let out = Command::new("promtool")
            .args(args)
            .current_dir(&dir)
            .output()
            .expect("promtool");
        assert!(
            out.status.success(),
            "promtool {args:?}:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn rules_and_dashboard_use_only_metrics_firedrill_exports() {
    let re = regex::Regex::new(r"firedrill_[a-z_]+").expect("regex");
    for file in [
        "deploy/prometheus/firedrill-rules.yaml",
        "deploy/grafana/firedrill-dashboard.json",
    ] {
        let text = std::fs::read_to_string(Path::new(ROOT).join(file)).expect("read");
        let used: Vec<&str> = re
            .find_iter(&text)
            .map(|m| m.as_str())
            .filter(|m| !m.starts_with("firedrill_rules") && *m != "firedrill_")
            .collect();
        assert!(!used.is_empty(), "{file} queries nothing");
        for name in used {
            assert!(
                NAMES.contains(&name),
                "{file} uses {name}, which firedrill does not export"
            );
        }
    }
    let dashboard: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(Path::new(ROOT).join("deploy/grafana/firedrill-dashboard.json"))
            .expect("read"),
    )
    .expect("dashboard is JSON");
    assert!(dashboard["panels"].as_array().is_some_and(|p| p.len() >= 4));
}

fn query(prometheus: &str, promql: &str) -> Vec<serde_json::Value> {
    let answer: serde_json::Value = reqwest::blocking::Client::new()
        .get(format!("{prometheus}/api/v1/query"))
        .query(&[("query", promql)])
        .send()
        .and_then(|r| r.json())
        .expect("query");
    answer["data"]["result"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// Queries until `n` series answer (scrapes land every second), at most 30 s.
fn wait_for_result(prometheus: &str, promql: &str, n: usize) -> Vec<serde_json::Value> {
    Wait::new(format!("{n} series for {promql}"), Duration::from_secs(30))
        .every(Duration::from_millis(250))
        .blocking(|| {
            let result = query(prometheus, promql);
            if result.len() >= n {
                Ok(result)
            } else {
                Err(result)
            }
        })
}

fn value(sample: &serde_json::Value) -> f64 {
    sample["value"][1]
        .as_str()
        .and_then(|v| v.parse().ok())
        .expect("a numeric sample")
}

fn drills_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir(dir.path().join("drills")).expect("mkdir");
    for entry in std::fs::read_dir(Path::new(ROOT).join("drills")).expect("drills") {
        let entry = entry.expect("entry");
        std::fs::copy(
            entry.path(),
            dir.path().join("drills").join(entry.file_name()),
        )
        .expect("copy");
    }
    dir
}

#[test]
fn prometheus_scrapes_a_live_drill_and_sees_its_push_with_the_grouping_labels() {
    require("prometheus");
    require("prometheus-pushgateway");
    let work = drills_dir();
    let (pg_port, prom_port, live_port) = (free_port(), free_port(), free_port());
    let _pushgateway = Daemon(
        Command::new("prometheus-pushgateway")
            .arg(format!("--web.listen-address=127.0.0.1:{pg_port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("pushgateway"),
    );
    let config = format!(
        "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: live\n    static_configs: [{{ targets: ['127.0.0.1:{live_port}'] }}]\n  - job_name: pushgateway\n    honor_labels: true\n    static_configs: [{{ targets: ['127.0.0.1:{pg_port}'] }}]\n"
    );
    std::fs::write(work.path().join("prometheus.yml"), config).expect("config");
    let _prometheus = Daemon(
        Command::new("prometheus")
            .args([
                format!(
                    "--config.file={}",
                    work.path().join("prometheus.yml").display()
                ),
                format!("--storage.tsdb.path={}", work.path().join("tsdb").display()),
                format!("--web.listen-address=127.0.0.1:{prom_port}"),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("prometheus"),
    );
    let prometheus = format!("http://127.0.0.1:{prom_port}");
    wait_ready(&format!("http://127.0.0.1:{pg_port}/-/ready"));
    wait_ready(&format!("{prometheus}/-/ready"));

    // Slower than the default scale so Prometheus scrapes several times after the failover.
    let out = Command::new(BIN)
        .args([
            "run",
            "--time-scale",
            "100",
            "--json",
            "report.json",
            "--metrics-addr",
            &format!("127.0.0.1:{live_port}"),
            "--pushgateway",
            &format!("http://127.0.0.1:{pg_port}"),
        ])
        .current_dir(work.path())
        .output()
        .expect("firedrill run");
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    let report: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(work.path().join("report.json")).expect("report"),
    )
    .expect("JSON");
    let scenario = "us-west1 goes dark and the application fails over to us-west2";
    let failover = report["scenarios"]
        .as_array()
        .expect("scenarios")
        .iter()
        .find(|s| s["scenario"] == scenario)
        .and_then(|s| {
            s["phases"]
                .as_array()
                .and_then(|p| p.iter().find(|p| p["name"] == "failover"))
                .cloned()
        })
        .expect("a failover phase");
    let measured = failover["verdict"]["measured"]
        .as_f64()
        .expect("measured seconds");

    let live = wait_for_result(
        &prometheus,
        &format!(
            "last_over_time(firedrill_recovery_seconds{{job=\"live\",scenario=\"{scenario}\"}}[10m])"
        ),
        1,
    );
    assert_eq!(
        live.len(),
        1,
        "Prometheus never scraped the recovery time live: {live:?}"
    );
    assert!(
        (value(&live[0]) - measured).abs() < 1e-6,
        "live {} vs report {measured}",
        value(&live[0])
    );

    let pushed = wait_for_result(
        &prometheus,
        "firedrill_recovery_seconds{job=\"firedrill\",drill=\"Quarterly regional failover from us-west1 to us-west2\",platform=\"embedded\"}",
        1,
    );
    assert_eq!(
        pushed.len(),
        1,
        "the pushed recovery time is not in Prometheus: {pushed:?}"
    );
    assert!((value(&pushed[0]) - measured).abs() < 1e-6);
    // One series per scenario of the run: every drill pushed its group.
    let scenarios = report["scenarios"].as_array().map_or(0, Vec::len);
    let runs = wait_for_result(
        &prometheus,
        "firedrill_drill_runs_total{job=\"firedrill\",result=\"passed\"}",
        scenarios,
    );
    assert_eq!(
        runs.len(),
        scenarios,
        "every drill pushed its run: {runs:?}"
    );
}

#[test]
fn a_pushgateway_that_is_down_is_a_warning_unless_the_push_is_required() {
    let work = drills_dir();
    let down = format!("http://127.0.0.1:{}", free_port());
    let run = |extra: &[&str]| {
        let mut args = vec!["run", "--name", "traffic moves", "--pushgateway", &down];
        args.extend_from_slice(extra);
        Command::new(BIN)
            .args(&args)
            .current_dir(work.path())
            .output()
            .expect("firedrill run")
    };
    let out = run(&[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("warning: cannot reach the Pushgateway"),
        "{stderr}"
    );
    let out = run(&["--require-push"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn pushes_carry_the_grouping_key_and_the_token_from_the_environment() {
    use std::sync::{Arc, Mutex};
    let seen: Arc<Mutex<Vec<(String, String, String)>>> = Arc::new(Mutex::new(Vec::new()));
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let port = free_port();
    let recorder = Arc::clone(&seen);
    runtime.spawn(async move {
        let app = axum::Router::new().fallback(
            move |method: axum::http::Method,
                  uri: axum::http::Uri,
                  headers: axum::http::HeaderMap| {
                let recorder = Arc::clone(&recorder);
                async move {
                    let auth = headers
                        .get("authorization")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_owned();
                    recorder.lock().expect("lock").push((
                        method.to_string(),
                        uri.path().to_owned(),
                        auth,
                    ));
                    axum::http::StatusCode::OK
                }
            },
        );
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .expect("bind");
        let _ = axum::serve(listener, app).await;
    });
    let work = drills_dir();
    let out = Command::new(BIN)
        .args([
            "run",
            "--name",
            "traffic moves",
            "--pushgateway",
            &format!("http://127.0.0.1:{port}"),
            "--require-push",
        ])
        .env("FIREDRILL_PUSHGATEWAY_TOKEN", "s3cret-token")
        .current_dir(work.path())
        .output()
        .expect("firedrill run");
    let output = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(0), "{output}");
    assert!(!output.contains("s3cret-token"), "the token was printed");
    let seen = seen.lock().expect("lock").clone();
    assert_eq!(seen.len(), 1, "{seen:?}");
    let (method, path, auth) = &seen[0];
    assert_eq!(method, "PUT");
    // drill@base64 "Traffic switch between regions", platform@base64 "embedded"
    assert_eq!(
        path,
        "/metrics/job/firedrill/drill@base64/VHJhZmZpYyBzd2l0Y2ggYmV0d2VlbiByZWdpb25z/platform@base64/ZW1iZWRkZWQ"
    );
    assert_eq!(auth, "Bearer s3cret-token");
}
