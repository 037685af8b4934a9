//! The MongoDB conformance suite: real clients run their cases (`conformance/<client>/`) against
//! `firedrill sim up --only mongo`, the built binary, reached through the env file it writes.
//! Each client is one test; a failing case fails it with the client's own output.
//!
//! The clients are installed by scripts/test: pymongo and motor (pip), mongosh and the Node.js
//! `mongodb` driver (npm, into `conformance/<client>/node_modules`).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use firedrill_testkit::{SimUp, firedrill, root};

/// How long one client may take for all its cases.
const CLIENT_RUN: Duration = Duration::from_secs(120);

/// The embedded replica sets in real time, once the env file is written.
async fn sim_up() -> SimUp {
    SimUp::start_async(firedrill!(), &["--only", "mongo"]).await
}

/// Runs one client's cases with the sim's environment (an argument `$NAME` is replaced by the
/// value of NAME there); fails with the client's output.
async fn run_client(sim: &SimUp, client: &str, program: &Path, args: &[&str]) {
    let args: Vec<String> = args
        .iter()
        .map(|a| match a.strip_prefix('$') {
            Some(name) => sim.var(name).to_owned(),
            None => (*a).to_owned(),
        })
        .collect();
    let mut command = tokio::process::Command::new(program);
    command
        .args(&args)
        .current_dir(root().join("conformance").join(client))
        .envs(sim.env().iter().map(|(k, v)| (k.as_str(), v.as_str())))
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
            "$FIREDRILL_MONGO_URI_PROD_2",
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
