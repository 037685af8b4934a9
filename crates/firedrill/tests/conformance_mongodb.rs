//! The MongoDB conformance suite: real clients run their cases (`conformance/<client>/`) against
//! `firedrill sim up --only mongo`, the built binary, reached through the env file it writes.
//! Each client is one test; a failing case fails it with the client's own output.
//!
//! The clients are installed by scripts/test: pymongo and motor (pip), mongosh and the Node.js
//! `mongodb` driver (npm, into `conformance/<client>/node_modules`).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::AsyncBufReadExt as _;

/// How long `sim up` may take to write its env file.
const SIM_START: Duration = Duration::from_secs(60);
/// How long one client may take for all its cases.
const CLIENT_RUN: Duration = Duration::from_secs(120);

fn root() -> PathBuf {
    let root = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."));
    root.canonicalize().unwrap_or(root)
}

/// A running `firedrill sim up --only mongo` and the environment its env file holds.
struct Sim {
    _child: tokio::process::Child,
    env: Vec<(String, String)>,
    _dir: tempfile::TempDir,
}

/// Starts the embedded replica sets in real time and waits until the env file is written (the
/// command prints its path once it is).
async fn sim_up() -> Sim {
    let dir = tempfile::tempdir().expect("temp dir");
    let env_file = dir.path().join("sim.env");
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_firedrill"))
        .args(["sim", "up", "--only", "mongo", "--env-file"])
        .arg(&env_file)
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("firedrill sim up");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    let written = tokio::time::timeout(SIM_START, async {
        while let Ok(Some(line)) = lines.next_line().await {
            if line.trim_start().starts_with("env file:") {
                return true;
            }
        }
        false
    })
    .await
    .unwrap_or(false);
    assert!(
        written,
        "`firedrill sim up --only mongo` wrote no env file within {SIM_START:?}"
    );
    // Keep reading, so the server never writes into a closed pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    let text = std::fs::read_to_string(&env_file).expect("env file");
    Sim {
        _child: child,
        env: parse_env(&text),
        _dir: dir,
    }
}

/// `NAME='value'` lines, as `sim up` writes them.
fn parse_env(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|line| line.split_once('='))
        .map(|(k, v)| {
            let v = v
                .strip_prefix('\'')
                .and_then(|v| v.strip_suffix('\''))
                .unwrap_or(v);
            (k.to_owned(), v.replace(r"'\''", "'"))
        })
        .collect()
}

/// Runs one client's cases with the sim's environment (an argument `$NAME` is replaced by the
/// value of NAME there); fails with the client's output.
async fn run_client(sim: &Sim, client: &str, program: &Path, args: &[&str]) {
    let args: Vec<String> = args
        .iter()
        .map(|a| match a.strip_prefix('$') {
            Some(name) => sim
                .env
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
                .unwrap_or_else(|| panic!("the env file has no {name}")),
            None => (*a).to_owned(),
        })
        .collect();
    let mut command = tokio::process::Command::new(program);
    command
        .args(&args)
        .current_dir(root().join("conformance").join(client))
        .envs(sim.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(Stdio::null())
        .kill_on_drop(true);
    let output = tokio::time::timeout(CLIENT_RUN, command.output())
        .await
        .unwrap_or_else(|_| panic!("the {client} cases did not finish within {CLIENT_RUN:?}"))
        .unwrap_or_else(|e| panic!("cannot run {} for {client}: {e}", program.display()));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "{client} cases failed ({}):\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        output.status
    );
}

/// Fails with how to install `what` when `probe` does not succeed.
fn require(what: &str, probe: &mut std::process::Command) {
    let ok = probe
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "{what} is missing (hint: scripts/test installs it; run it once, as root on Debian)"
    );
}

fn python_module(module: &str) -> std::process::Command {
    let mut c = std::process::Command::new("python3");
    c.args(["-c", &format!("import {module}")]);
    c
}

/// The npm-installed entry point of a client, or a failure naming how to install it.
fn npm_installed(client: &str, relative: &str) -> PathBuf {
    let path = root().join("conformance").join(client).join(relative);
    assert!(
        path.exists(),
        "{} is missing (hint: scripts/test runs `npm ci` in conformance/{client})",
        path.display()
    );
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pymongo() {
    require("pymongo", &mut python_module("pymongo"));
    let sim = sim_up().await;
    run_client(&sim, "pymongo", Path::new("python3"), &["cases.py"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn motor() {
    require("motor", &mut python_module("motor"));
    let sim = sim_up().await;
    run_client(&sim, "motor", Path::new("python3"), &["cases.py"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mongosh() {
    let mongosh = npm_installed("mongosh", "node_modules/.bin/mongosh");
    let sim = sim_up().await;
    run_client(
        &sim,
        "mongosh",
        &mongosh,
        &[
            "$FIREDRILL_MONGO_URI_PROD_1",
            "--quiet",
            "--norc",
            "--file",
            "cases.js",
        ],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_mongodb() {
    npm_installed("node-mongodb", "node_modules/mongodb/package.json");
    require("node", std::process::Command::new("node").arg("--version"));
    let sim = sim_up().await;
    run_client(
        &sim,
        "node-mongodb",
        Path::new("node"),
        &["--test", "cases.test.mjs"],
    )
    .await;
}
