//! Shared by the conformance tests: start `firedrill sim up` (the built binary) with an env
//! file, read the endpoints it writes, and run one client's script against them, failing with
//! the client's own output.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

pub use firedrill_testkit::root;
use firedrill_testkit::{SimUp, firedrill};
use tokio::process::Command;

/// A running `firedrill sim up` and the variables of its env file.
pub struct Sim {
    _sim: SimUp,
    /// The variables of its env file.
    pub env: BTreeMap<String, String>,
}

/// Starts `firedrill sim up` with `args` and waits for its env file.
pub async fn sim_up(args: &[&str]) -> Sim {
    let sim = SimUp::start_async(firedrill!(), args).await;
    Sim {
        env: sim.env().iter().cloned().collect(),
        _sim: sim,
    }
}

/// Runs `program script` in the repository with `env`, at most `limit`; panics with the
/// client's output (and `hint` when the program is missing) unless it exits 0.
pub async fn run_client(
    name: &str,
    program: &str,
    script: &Path,
    env: &BTreeMap<String, String>,
    limit: Duration,
    hint: &str,
) {
    let out = tokio::time::timeout(
        limit,
        Command::new(program)
            .arg(script)
            .envs(env)
            .current_dir(root())
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .unwrap_or_else(|_| panic!("{name}: did not finish within {limit:?}"))
    .unwrap_or_else(|e| panic!("{name}: cannot run {program}: {e} (hint: {hint})"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{name} failed ({}):\n{stdout}\n{stderr}\n(hint: {hint})",
        out.status
    );
    assert!(
        stdout.lines().any(|l| l.ends_with(" passed, 0 failed")),
        "{name} printed no summary:\n{stdout}\n{stderr}"
    );
}
