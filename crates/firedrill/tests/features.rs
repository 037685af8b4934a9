//! firedrill's own acceptance specs (features/*.feature), run by `cargo test`.
//!
//! Each scenario gets a fresh folder; the steps write platform files and drills into it, run
//! the real `firedrill` binary there, and assert on exit codes, output, files the drills'
//! commands touch, the ledger and the JSON report.

#![allow(clippy::disallowed_macros)] // measurements and diagnostics printed for `--nocapture`

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use cucumber::{World, gherkin::Step, given, then, when};
use firedrill_testkit::{Binary, Started, Wait};

const BIN: Binary = firedrill_testkit::firedrill!();
/// How long a started firedrill may take to show something or to exit.
const BACKGROUND_DEADLINE: Duration = Duration::from_secs(60);

#[derive(Debug, World)]
#[world(init = Self::new)]
struct Harness {
    dir: tempfile::TempDir,
    exit: Option<i32>,
    stdout: String,
    stderr: String,
    background: Option<Started>,
    sim: Option<KillOnDrop>,
    /// Extra environment for every firedrill this scenario runs.
    env: Vec<(String, String)>,
    /// A Toxiproxy running inside the test process (it outlives a SIGKILLed firedrill).
    toxiproxy: Option<EmbeddedToxiproxy>,
    /// The real Prometheus scraping the background embedded platform.
    prometheus: Option<KillOnDrop>,
}

struct EmbeddedToxiproxy(firedrill_sim::toxiproxy::ToxiproxyServer);

impl std::fmt::Debug for EmbeddedToxiproxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "EmbeddedToxiproxy({})", self.0.url())
    }
}

impl Harness {
    fn new() -> Result<Self, std::io::Error> {
        Ok(Self {
            dir: tempfile::tempdir()?,
            exit: None,
            stdout: String::new(),
            stderr: String::new(),
            background: None,
            sim: None,
            env: Vec::new(),
            toxiproxy: None,
            prometheus: None,
        })
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn output(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }

    fn command(&self, args: &str) -> Command {
        let args = split(args);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut cmd = BIN.command(self.dir.path(), &args);
        cmd.envs(self.env.iter().map(|(k, v)| (k, v)));
        cmd
    }
}

/// Splits arguments on spaces, keeping "quoted parts" together.
fn split(args: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    for c in args.chars() {
        match c {
            '\'' => quoted = !quoted,
            ' ' if !quoted => {
                if !current.is_empty() {
                    out.push(std::mem::take(&mut current));
                }
            }
            c => current.push(c),
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

fn docstring(step: &Step) -> String {
    step.docstring
        .clone()
        .unwrap_or_default()
        .trim_start_matches('\n')
        .to_owned()
}

#[given(regex = r#"^the file "([^"]+)":$"#)]
fn file(world: &mut Harness, name: String, step: &Step) {
    let path = world.path(&name);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).expect("create folder");
    }
    std::fs::write(path, docstring(step)).expect("write file");
}

#[given(regex = r#"^the shipped drills and platform$"#)]
fn shipped(world: &mut Harness) {
    let root = firedrill_testkit::root();
    std::fs::create_dir_all(world.path("drills")).expect("mkdir");
    for entry in std::fs::read_dir(root.join("drills")).expect("drills/") {
        let entry = entry.expect("entry");
        std::fs::copy(entry.path(), world.path("drills").join(entry.file_name()))
            .expect("copy drill");
    }
}

#[when(regex = r#"^I run `firedrill ([^`]*)`$"#)]
fn run(world: &mut Harness, args: String) {
    let output = world.command(&args).output().expect("run firedrill");
    world.exit = output.status.code();
    world.stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    world.stderr = String::from_utf8_lossy(&output.stderr).into_owned();
}

#[when(regex = r#"^I start `firedrill ([^`]*)`$"#)]
fn start(world: &mut Harness, args: String) {
    world.background = Some(Started::spawn(&mut world.command(&args)));
}

#[when(regex = r#"^its output shows "([^"]+)"$"#)]
async fn output_shows(world: &mut Harness, text: String) {
    let bg = world.background.as_mut().expect("a started firedrill");
    bg.wait_for(&text, BACKGROUND_DEADLINE).await;
}

#[when(regex = r"^I send it (SIGINT|SIGTERM|SIGKILL)$")]
fn send_signal(world: &mut Harness, signal: String) {
    let bg = world.background.as_ref().expect("a started firedrill");
    let status = Command::new("kill")
        .arg(format!("-{}", signal.trim_start_matches("SIG")))
        .arg(bg.id().to_string())
        .status()
        .expect("kill");
    assert!(status.success(), "kill failed");
}

#[when("it exits")]
async fn it_exits(world: &mut Harness) {
    let bg = world.background.take().expect("a started firedrill");
    // Its output ends with its pipes, not at a guessed moment after the exit.
    let out = bg.exit(BACKGROUND_DEADLINE).await;
    world.exit = out.code();
    world.stdout = out.stdout;
    world.stderr = out.stderr;
}

#[then(regex = r"^the exit code is (\d+)$")]
fn exit_code(world: &mut Harness, code: i32) {
    assert_eq!(
        world.exit,
        Some(code),
        "stdout:\n{}\nstderr:\n{}",
        world.stdout,
        world.stderr
    );
}

#[then(regex = r#"^the output contains "((?:[^"\\]|\\.)*)"$"#)]
fn output_contains(world: &mut Harness, text: String) {
    let text = text.replace("\\\"", "\"");
    assert!(
        world.output().contains(&text),
        "\"{text}\" not in output:\n{}",
        world.output()
    );
}

#[then(regex = r#"^the output does not contain "((?:[^"\\]|\\.)*)"$"#)]
fn output_lacks(world: &mut Harness, text: String) {
    let text = text.replace("\\\"", "\"");
    assert!(
        !world.output().contains(&text),
        "\"{text}\" unexpectedly in output:\n{}",
        world.output()
    );
}

#[then(regex = r#"^the file "([^"]+)" (exists|does not exist)$"#)]
fn file_exists(world: &mut Harness, name: String, state: String) {
    assert_eq!(
        world.path(&name).exists(),
        state == "exists",
        "{name} {state}? output:\n{}",
        world.output()
    );
}

#[then(regex = r#"^the ledger "([^"]+)" has (\d+) outstanding faults?$"#)]
fn ledger_outstanding(world: &mut Harness, name: String, n: usize) {
    let outstanding = firedrill_engine::ledger::Ledger::<firedrill_providers::Undo>::outstanding(
        &world.path(&name),
    )
    .expect("read ledger");
    assert_eq!(
        outstanding.len(),
        n,
        "{outstanding:#?}\nledger:\n{}\noutput:\n{}",
        std::fs::read_to_string(world.path(&name)).unwrap_or_default(),
        world.output()
    );
}

#[then(regex = r#"^the file "([^"]+)" holds (\d+) test cases?$"#)]
fn junit_cases(world: &mut Harness, name: String, n: usize) {
    let xml = std::fs::read_to_string(world.path(&name)).expect("junit file");
    assert_eq!(xml.matches("<testcase").count(), n, "{xml}");
    assert!(!xml.contains("<failure"), "{xml}");
}

#[then(regex = r#"^the file "([^"]+)" holds (\d+) Cucumber scenarios?$"#)]
fn cucumber_scenarios(world: &mut Harness, name: String, n: usize) {
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(world.path(&name)).expect("cucumber json"))
            .expect("JSON");
    let scenarios = json
        .as_array()
        .expect("features")
        .iter()
        .flat_map(|f| f["elements"].as_array().cloned().unwrap_or_default())
        .filter(|e| e["type"] == "scenario")
        .count();
    assert_eq!(scenarios, n, "{json:#}");
}

fn report(world: &Harness, name: &str) -> serde_json::Value {
    let text = std::fs::read_to_string(world.path(name))
        .unwrap_or_else(|e| panic!("{name}: {e}\n{}", world.output()));
    serde_json::from_str(&text).expect("report is JSON")
}

#[then(
    regex = r#"^the report "([^"]+)" has phase "([^"]+)" (passed|failed) in scenario "([^"]+)"$"#
)]
fn report_phase(
    world: &mut Harness,
    name: String,
    phase: String,
    verdict: String,
    scenario: String,
) {
    let report = report(world, &name);
    assert_eq!(report["schema_version"], 1);
    let scenarios = report["scenarios"].as_array().expect("scenarios");
    let s = scenarios
        .iter()
        .find(|s| s["scenario"] == scenario.as_str())
        .unwrap_or_else(|| panic!("no scenario {scenario} in {report:#}"));
    let p = s["phases"]
        .as_array()
        .expect("phases")
        .iter()
        .find(|p| p["name"] == phase.as_str())
        .unwrap_or_else(|| panic!("no phase {phase} in {s:#}"));
    assert_eq!(p["verdict"]["passed"], verdict == "passed", "{p:#}");
}

#[then(regex = r#"^the report "([^"]+)" has verdict "([^"]+)" and every fault undone$"#)]
fn report_verdict(world: &mut Harness, name: String, verdict: String) {
    let report = report(world, &name);
    assert_eq!(report["verdict"], verdict.as_str(), "{report:#}");
    for s in report["scenarios"].as_array().expect("scenarios") {
        for f in s["faults"].as_array().expect("faults") {
            assert!(
                f["undone_at"].is_number() && f["undo_error"].is_null(),
                "fault not undone: {f:#}"
            );
        }
    }
}

#[then(regex = r#"^the report "([^"]+)" records the blackout override "([^"]+)" of "([^"]+)"$"#)]
fn report_blackout_override(world: &mut Harness, name: String, reason: String, window: String) {
    let report = report(world, &name);
    let o = &report["blackout_override"];
    assert_eq!(o["reason"], reason.as_str(), "{report:#}");
    assert_eq!(o["window"], window.as_str(), "{report:#}");
    assert!(
        o["by"].as_str().is_some_and(|by| !by.is_empty()) && o["until"].is_string(),
        "{o:#}"
    );
}

/// What the background firedrill is doing, for failure messages.
fn background_status(world: &mut Harness) -> String {
    match &mut world.background {
        Some(bg) => format!(
            "background firedrill: {:?}\nstdout:\n{}\nstderr:\n{}",
            bg.child().try_wait(),
            bg.stdout(),
            bg.stderr()
        ),
        None => "no background firedrill".to_owned(),
    }
}

/// Reads a proxy from the scenario's Toxiproxy; a failure shows the background firedrill.
async fn read_proxy(
    world: &mut Harness,
    proxy: &str,
) -> firedrill_providers::toxiproxy::ProxyState {
    match toxiproxy(world).proxy(proxy).await {
        Ok(state) => state,
        Err(e) => panic!("read proxy {proxy}: {e}\n{}", background_status(world)),
    }
}

/// The Toxiproxy API this scenario's firedrill talks to.
fn toxiproxy(world: &Harness) -> firedrill_providers::toxiproxy::ToxiproxyClient {
    let url = world
        .env
        .iter()
        .find(|(k, _)| k == "FIREDRILL_TOXIPROXY_URL")
        .map(|(_, v)| v.clone())
        .expect("a Toxiproxy: start one first");
    firedrill_providers::toxiproxy::ToxiproxyClient::new(&url).expect("Toxiproxy URL")
}

#[given(regex = r#"^a Toxiproxy with the proxy "([^"]+)"$"#)]
async fn toxiproxy_with_proxy(world: &mut Harness, proxy: String) {
    let server = firedrill_sim::toxiproxy::start(
        std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
        firedrill_core::clock::Clock::real(),
    )
    .await
    .expect("start the embedded Toxiproxy");
    server
        .create_proxy(&proxy, "127.0.0.1:0", "127.0.0.1:9")
        .await
        .expect("create proxy");
    world
        .env
        .push(("FIREDRILL_TOXIPROXY_URL".to_owned(), server.url()));
    world.toxiproxy = Some(EmbeddedToxiproxy(server));
}

#[given(regex = r#"^the toxic "([^"]+)" was added to the proxy "([^"]+)" by someone else$"#)]
async fn toxic_by_someone_else(world: &mut Harness, toxic: String, proxy: String) {
    use firedrill_providers::toxiproxy::{Stream, ToxicKind, ToxicSpec};
    toxiproxy(world)
        .add_toxic(
            &proxy,
            &ToxicSpec::new(
                toxic,
                Stream::Upstream,
                ToxicKind::latency(Duration::from_millis(10), Duration::ZERO),
            ),
        )
        .await
        .expect("add toxic");
}

#[given(regex = r#"^the environment in "([^"]+)"$"#)]
fn environment_in(world: &mut Harness, name: String) {
    let text = std::fs::read_to_string(world.path(&name)).expect("env file");
    for line in text.lines() {
        if let Some((key, value)) = line.split_once('=') {
            world
                .env
                .push((key.to_owned(), value.trim_matches('\'').to_owned()));
        }
    }
}

/// The value of `name` in the environment a step loaded (a secret to look for).
fn loaded_value(world: &Harness, name: &str) -> String {
    let value = world
        .env
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.clone())
        .unwrap_or_else(|| panic!("{name} is not in the loaded environment"));
    assert!(value.len() >= 8, "{name} is too short to look for");
    value
}

#[then(regex = r#"^the output does not contain the value of "([^"]+)"$"#)]
fn output_lacks_value(world: &mut Harness, name: String) {
    let value = loaded_value(world, &name);
    assert!(
        !world.output().contains(&value),
        "the output shows the value of {name}"
    );
}

#[then(regex = r#"^the file "([^"]+)" does not contain the value of "([^"]+)"$"#)]
fn file_lacks_value(world: &mut Harness, file: String, name: String) {
    let value = loaded_value(world, &name);
    let content = std::fs::read_to_string(world.path(&file)).expect("read the file");
    assert!(!content.is_empty(), "{file} is empty");
    assert!(
        !content.contains(&value),
        "{file} holds the value of {name}"
    );
}

#[then(regex = r#"^the proxy "([^"]+)" has (\d+) toxics?$"#)]
async fn proxy_toxic_count(world: &mut Harness, proxy: String, n: usize) {
    let state = read_proxy(world, &proxy).await;
    assert_eq!(
        state.toxics.len(),
        n,
        "{state:#?}\noutput:\n{}",
        world.output()
    );
}

#[then(regex = r#"^the proxy "([^"]+)" has the toxic "([^"]+)"$"#)]
async fn proxy_has_toxic(world: &mut Harness, proxy: String, toxic: String) {
    let state = read_proxy(world, &proxy).await;
    assert!(state.toxic(&toxic).is_some(), "{state:#?}");
}

#[then(regex = r#"^the proxy "([^"]+)" is (enabled|disabled)$"#)]
async fn proxy_enabled(world: &mut Harness, proxy: String, state: String) {
    let read = read_proxy(world, &proxy).await;
    assert_eq!(
        read.enabled,
        state == "enabled",
        "{read:#?}\noutput:\n{}",
        world.output()
    );
}

#[when(regex = r#"^the proxy "([^"]+)" becomes (enabled|disabled)$"#)]
async fn proxy_becomes(world: &mut Harness, proxy: String, state: String) {
    let wait = Wait::new(format!("proxy {proxy} {state}"), BACKGROUND_DEADLINE);
    let client = toxiproxy(world);
    let want = state == "enabled";
    wait.until_async(|| async {
        match client.proxy(&proxy).await {
            Ok(read) if read.enabled == want => Ok(()),
            read => Err(read),
        }
    })
    .await;
}

#[then(regex = r#"^the report "([^"]+)" has a "([^"]+)" probe answer slower than (\d+)ms$"#)]
fn report_slow_answer(world: &mut Harness, name: String, probe: String, millis: u64) {
    let report = report(world, &name);
    let text = report.to_string();
    let slowest = report["scenarios"]
        .as_array()
        .expect("scenarios")
        .iter()
        .flat_map(|s| s["probes"].as_array().cloned().unwrap_or_default())
        .filter(|p| p["name"] == probe.as_str())
        .flat_map(|p| p["observations"].as_array().cloned().unwrap_or_default())
        .filter_map(|o| {
            o["latency"]
                .as_str()
                .and_then(|l| humantime::parse_duration(l).ok())
        })
        .max();
    assert!(
        slowest.is_some_and(|d| d > Duration::from_millis(millis)),
        "slowest answer {slowest:?} in {text}"
    );
}

/// A background `firedrill sim up`, stopped with the scenario.
#[derive(Debug)]
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[given(regex = r#"^the embedded platform runs in the background with --env-file "([^"]+)"$"#)]
async fn sim_in_background(world: &mut Harness, env_file: String) {
    sim_up(
        world,
        &format!("--time-scale 50 --env-file {env_file}"),
        &env_file,
    )
    .await;
}

/// Starts `firedrill sim up ARGS` for the scenario and waits until it wrote `env_file`.
async fn sim_up(world: &mut Harness, args: &str, env_file: &str) {
    let child = world
        .command(&format!("sim up {args}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start firedrill sim up");
    world.sim = Some(KillOnDrop(child));
    let written = world.path(env_file);
    firedrill_testkit::until(
        format!("sim up writes {env_file}"),
        Duration::from_secs(30),
        || written.exists(),
    )
    .await;
}

#[then(regex = r#"^the file "([^"]+)" contains "([^"]+)"$"#)]
async fn file_contains(world: &mut Harness, name: String, text: String) {
    // The file may be written by a background process: wait for it with a deadline.
    let path = world.path(&name);
    firedrill_testkit::until(
        format!("{name} contains \"{text}\""),
        Duration::from_secs(30),
        || {
            let content = std::fs::read_to_string(&path).unwrap_or_default();
            if content.contains(&text) {
                Ok(())
            } else {
                Err(format!("it holds:\n{content}"))
            }
        },
    )
    .await;
}

/// The specs to run: `features/`, or the one file or folder `FIREDRILL_FEATURES` names (relative
/// to the repository), so a change can run only the specs it touches.
fn features() -> PathBuf {
    let root = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."));
    std::env::var_os("FIREDRILL_FEATURES").map_or_else(|| root.join("features"), |f| root.join(f))
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let writer = runtime.block_on(
        Harness::cucumber()
            .max_concurrent_scenarios(2)
            .fail_on_skipped()
            .with_default_cli()
            .run(features()),
    );
    use cucumber::writer::Stats as _;
    let failed = writer.failed_steps() + writer.parsing_errors() + writer.hook_errors();
    println!("{} passed, {} failed", writer.passed_steps(), failed);
    if writer.execution_has_failed() {
        std::process::exit(1);
    }
}

// --- ledger (s13) ---

/// The docstring's lines, each ended by a newline (`torn`: all but the last).
fn write_lines(world: &Harness, name: &str, step: &Step, torn: bool) {
    let path = world.path(name);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).expect("create folder");
    }
    let lines: Vec<String> = docstring(step)
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect();
    let mut text = lines.join("\n");
    if !torn {
        text.push('\n');
    }
    std::fs::write(path, text).expect("write file");
}

#[given(regex = r#"^the file "([^"]+)" holds these lines:$"#)]
fn file_lines(world: &mut Harness, name: String, step: &Step) {
    write_lines(world, &name, step, false);
}

#[given(regex = r#"^the file "([^"]+)" holds these lines, the last one torn:$"#)]
fn file_lines_torn(world: &mut Harness, name: String, step: &Step) {
    write_lines(world, &name, step, true);
}

#[then(regex = r#"^the file "([^"]+)" has (\d+) lines?$"#)]
fn file_line_count(world: &mut Harness, name: String, n: usize) {
    let text = std::fs::read_to_string(world.path(&name)).expect("read file");
    assert_eq!(text.lines().count(), n, "{name}:\n{text}");
}

#[then(regex = r#"^the ledger "([^"]+)" has no unreadable lines$"#)]
fn ledger_readable(world: &mut Harness, name: String) {
    let scan =
        firedrill_engine::ledger::Ledger::<firedrill_providers::Undo>::scan(&world.path(&name))
            .expect("read ledger");
    assert!(
        scan.unreadable.is_empty(),
        "{:#?}\n{}",
        scan.unreadable,
        std::fs::read_to_string(world.path(&name)).unwrap_or_default()
    );
}

/// Runs firedrill where no file may grow (`ulimit -f 0`, SIGXFSZ ignored so a write fails
/// with EFBIG instead of killing it): a disk that is full for the ledger, portably.
#[when(regex = r"^I run `firedrill ([^`]*)` where no file may grow$")]
fn run_no_file_may_grow(world: &mut Harness, args: String) {
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg("trap '' XFSZ; ulimit -f 0 && exec \"$0\" \"$@\"")
        .arg(BIN.path())
        .args(split(&args))
        .current_dir(world.dir.path())
        .stdin(Stdio::null())
        .env_remove("FIREDRILL_PLATFORM")
        .env_remove("FIREDRILL_LEDGER")
        .envs(world.env.iter().map(|(k, v)| (k, v)));
    let output = cmd.output().expect("run firedrill");
    world.exit = output.status.code();
    world.stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    world.stderr = String::from_utf8_lossy(&output.stderr).into_owned();
}

// --- input (s13) ---

#[given(regex = r#"^the file "([^"]+)" has a step line of (\d+) MB$"#)]
fn file_with_a_huge_step(world: &mut Harness, name: String, megabytes: usize) {
    let path = world.path(&name);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).expect("create folder");
    }
    let fault = "x".repeat(megabytes * 1_000_000);
    let text = format!(
        "Feature: huge\n  Scenario: a pasted log\n    When the fault \"{fault}\" is injected\n    And traffic is swiched to \"{fault}\"\n"
    );
    std::fs::write(path, text).expect("write file");
}

#[then(regex = r"^the standard error holds at most (\d+) KB$")]
fn stderr_at_most(world: &mut Harness, kilobytes: usize) {
    assert!(
        world.stderr.len() <= kilobytes * 1_000,
        "{} bytes of standard error; it starts:\n{}",
        world.stderr.len(),
        world.stderr.chars().take(2_000).collect::<String>()
    );
}

#[then(regex = r#"^the Toxiproxy has no proxy "([^"]+)"$"#)]
async fn toxiproxy_lacks_proxy(world: &mut Harness, proxy: String) {
    let proxies = toxiproxy(world).proxies().await.expect("list proxies");
    assert!(
        !proxies.contains_key(&proxy),
        "{proxy} exists: {proxies:#?}\noutput:\n{}",
        world.output()
    );
}

/// A Pushgateway stand-in refusing every push with 401, its answer the request's headers (as a
/// proxy in front of a Pushgateway may echo them); the Authorization headers it got go to the
/// file `pushgateway.log` in the scenario's folder.
#[given(regex = r#"^a Pushgateway that echoes the request headers into a 401 answer$"#)]
async fn echoing_pushgateway(world: &mut Harness) {
    let log = world.path("pushgateway.log");
    let app = axum::Router::new().fallback(move |headers: axum::http::HeaderMap| {
        let log = log.clone();
        async move {
            let mut body = String::from("unauthorized; you sent:\n");
            for (name, value) in &headers {
                let value = value.to_str().unwrap_or_default();
                if name == "authorization" {
                    use std::io::Write as _;
                    let mut file = std::fs::OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(&log)
                        .expect("pushgateway.log");
                    writeln!(file, "{value}").expect("log header");
                }
                body.push_str(&format!("{name}: {value}\n"));
            }
            (axum::http::StatusCode::UNAUTHORIZED, body)
        }
    });
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    world
        .env
        .push(("S13_PUSHGATEWAY".to_owned(), addr.to_string()));
}

#[when(regex = r#"^I run `firedrill ([^`]*)` pushing to it as "([^"]+)"$"#)]
fn run_pushing(world: &mut Harness, args: String, userinfo: String) {
    let addr = world
        .env
        .iter()
        .find(|(k, _)| k == "S13_PUSHGATEWAY")
        .map(|(_, v)| v.clone())
        .expect("a Pushgateway: start one first");
    run(
        world,
        format!("{args} --pushgateway http://{userinfo}@{addr}/"),
    );
}

// --- stop conditions (s16) ---

/// The embedded platform in the background with the real Prometheus (Debian package
/// `prometheus`, installed by scripts/test) scraping it: `sim up --prometheus` writes the
/// platform file naming it and the scrape configuration; the step waits until Prometheus has
/// the bystanders' traffic to judge.
#[given(
    regex = r#"^the embedded platform runs in the background at time scale (\d+), scraped by Prometheus, with --env-file "([^"]+)"$"#
)]
async fn sim_with_prometheus(world: &mut Harness, scale: u32, env_file: String) {
    let found = Command::new("sh")
        .args(["-c", "command -v prometheus"])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        found,
        "prometheus is not installed: run scripts/test (it installs the Debian package)"
    );
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port");
    let url = format!("http://127.0.0.1:{port}");
    sim_up(
        world,
        &format!("--time-scale {scale} --env-file {env_file} --prometheus {url}"),
        &env_file,
    )
    .await;
    let config = world.path(&format!("{env_file}.prometheus.yaml"));
    let prometheus = Command::new("prometheus")
        .arg(format!("--config.file={}", config.display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg(format!(
            "--storage.tsdb.path={}",
            world.path("prometheus-data").display()
        ))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start prometheus");
    world.prometheus = Some(KillOnDrop(prometheus));
    // Ready, and both bystanders' checkouts scraped often enough to rate.
    let query = r#"sum by (namespace) (rate(http_requests_total{service="front-door",namespace=~"prod-2|prod-3",code="200"}[1m])) > 0"#;
    wait_for_series(&url, query, |series| series.len() == 2).await;
}

/// Asks the Prometheus at `url` for `query` until its series satisfy `done`, for at most a
/// minute; returns the last answer's series.
async fn wait_for_series(
    url: &str,
    query: &str,
    done: impl Fn(&[serde_json::Value]) -> bool,
) -> Vec<serde_json::Value> {
    let client = reqwest::Client::new();
    let wait = firedrill_testkit::Wait::new(
        format!("Prometheus at {url} to answer `{query}` as expected"),
        Duration::from_secs(60),
    )
    .every(Duration::from_millis(100));
    wait.until_async(|| async {
        let answer = client
            .get(format!("{url}/api/v1/query"))
            .query(&[("query", query)])
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let value = answer
            .json::<serde_json::Value>()
            .await
            .map_err(|e| e.to_string())?;
        let series = value["data"]["result"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if done(&series) {
            Ok(series)
        } else {
            Err(format!("{series:#?}"))
        }
    })
    .await
}

#[then(
    regex = r#"^the report "([^"]+)" shows the guard "([^"]+)" tripped and every fault undone within (\S+) of it$"#
)]
fn report_guard_tripped(world: &mut Harness, name: String, guard: String, within: String) {
    let within = humantime::parse_duration(&within).expect("a duration");
    let report = report(world, &name);
    assert_eq!(report["verdict"], "aborted", "{report:#}");
    let reason = format!("guard \"{guard}\"");
    assert_eq!(report["aborted_by"], reason.as_str(), "{report:#}");
    let scenario = report["scenarios"]
        .as_array()
        .expect("scenarios")
        .iter()
        .find(|s| !s["guard_trips"].is_null())
        .unwrap_or_else(|| panic!("no scenario with a guard trip in {report:#}"));
    assert_eq!(scenario["aborted"], reason.as_str(), "{scenario:#}");
    let trip = &scenario["guard_trips"][0];
    assert_eq!(trip["guard"], guard.as_str(), "{trip:#}");
    assert!(
        trip["value"].is_number() && trip["evaluations"].as_u64() >= Some(1),
        "the trip names no value seen: {trip:#}"
    );
    let tripped = trip["at"].as_f64().expect("the trip's time");
    let faults = scenario["faults"].as_array().expect("faults");
    assert!(!faults.is_empty(), "nothing was injected: {scenario:#}");
    for f in faults {
        let undone = f["undone_at"]
            .as_f64()
            .unwrap_or_else(|| panic!("fault not undone: {f:#}"));
        assert!(f["undo_error"].is_null(), "undo failed: {f:#}");
        assert!(
            undone >= tripped && undone - tripped <= within.as_secs_f64(),
            "undone at {undone}s, the guard tripped at {tripped}s: not within {within:?}\n{f:#}"
        );
    }
}

#[when(regex = r#"^the proxy "([^"]+)" is disabled by someone else$"#)]
async fn proxy_disabled_by_someone_else(world: &mut Harness, proxy: String) {
    let state = toxiproxy(world)
        .set_enabled(&proxy, false)
        .await
        .expect("disable the proxy");
    assert!(!state.enabled, "{state:#?}");
}

/// Runs firedrill once the platform file's named query, on its Prometheus, is above `limit`
/// for some series (so a guard over it sees the breach), waiting at most a minute.
#[when(
    regex = r#"^I run `firedrill ([^`]*)` once the "([^"]+)" query of "([^"]+)" is above (\d+)$"#
)]
async fn run_once_query_above(
    world: &mut Harness,
    args: String,
    name: String,
    platform: String,
    limit: f64,
) {
    let text = std::fs::read_to_string(world.path(&platform)).expect("platform file");
    let yaml: serde_yaml::Value = serde_yaml::from_str(&text).expect("platform YAML");
    let url = yaml["prometheus"]["url"].as_str().expect("prometheus.url");
    let query = yaml["prometheus"]["queries"][name.as_str()]
        .as_str()
        .unwrap_or_else(|| panic!("no query {name} in {platform}"));
    wait_for_series(url, query, |series| {
        series.iter().any(|s| {
            s["value"][1]
                .as_str()
                .and_then(|v| v.parse::<f64>().ok())
                .is_some_and(|v| v > limit)
        })
    })
    .await;
    run(world, args);
}

#[then(
    regex = r#"^the report "([^"]+)" has the "([^"]+)" query passed, judged over at least (\d+) points?$"#
)]
fn report_query_passed(world: &mut Harness, name: String, query: String, points: usize) {
    let report = report(world, &name);
    let judged: Vec<&serde_json::Value> = report["scenarios"]
        .as_array()
        .expect("scenarios")
        .iter()
        .filter_map(|s| s["queries"].as_array())
        .flatten()
        .filter(|q| q["name"] == query.as_str())
        .collect();
    assert!(!judged.is_empty(), "no query {query} judged in {report:#}");
    for q in judged {
        assert_eq!(q["passed"], true, "{q:#}");
        let seen: usize = q["series"]
            .as_array()
            .expect("series")
            .iter()
            .filter_map(|s| s["points"].as_array().map(Vec::len))
            .sum();
        assert!(seen >= points, "{seen} points judged, not {points}: {q:#}");
    }
}
