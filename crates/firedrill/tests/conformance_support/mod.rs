//! Shared by the conformance tests: start `firedrill sim up` (the built binary) with an env
//! file, read the endpoints it writes, and run one client's script against them, failing with
//! the client's own output.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};

/// A running `firedrill sim up`; killed when dropped.
pub struct SimUp {
    _child: Child,
    _dir: tempfile::TempDir,
    /// The variables of its env file.
    pub env: BTreeMap<String, String>,
}

/// The repository root (scripts live under `conformance/`).
pub fn root() -> PathBuf {
    let root = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."));
    root.canonicalize().unwrap_or(root)
}

fn parse_env(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| {
            let v = v.trim();
            let v = v
                .strip_prefix('\'')
                .and_then(|v| v.strip_suffix('\''))
                .unwrap_or(v)
                .replace(r"'\''", "'");
            (k.to_owned(), v)
        })
        .collect()
}

/// Starts `firedrill sim up` with `args` and waits (at most 60 s) for its env file.
pub async fn sim_up(args: &[&str]) -> SimUp {
    let dir = tempfile::tempdir().expect("tempdir");
    let env_file = dir.path().join("sim.env");
    let child = Command::new(env!("CARGO_BIN_EXE_firedrill"))
        .args(["sim", "up"])
        .args(args)
        .arg("--env-file")
        .arg(&env_file)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("firedrill sim up starts");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let text = loop {
        if let Ok(text) = std::fs::read_to_string(&env_file) {
            break text;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "sim up {args:?} wrote no env file within 60 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    SimUp {
        _child: child,
        _dir: dir,
        env: parse_env(&text),
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
