//! `firedrill sim up` in another process, as an SRE starts the embedded platform in one
//! terminal and drills against it from another: the test reads its endpoints from the env
//! file it writes.

use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::Duration;

use crate::process::Binary;
use crate::wait::Wait;

/// How long `sim up` may take to write its env file.
pub const START_DEADLINE: Duration = Duration::from_secs(60);

/// A running `firedrill sim up`; killed when dropped.
#[derive(Debug)]
pub struct SimUp {
    child: Child,
    env_file: PathBuf,
    log: PathBuf,
    env: Vec<(String, String)>,
    dir: PathBuf,
    _owned: Option<tempfile::TempDir>,
}

impl SimUp {
    /// Starts `firedrill sim up ARGS --env-file DIR/sim.env` in a folder of its own (its log
    /// in DIR/sim.log) and waits, blocking this thread, until the env file is written — which
    /// `sim up` does once every component answers.
    ///
    /// # Panics
    ///
    /// When it exits first or writes no env file within [`START_DEADLINE`].
    #[must_use]
    pub fn start(bin: Binary, args: &[&str]) -> Self {
        let mut sim = Self::spawn_owned(bin, args);
        sim.ready_blocking();
        sim
    }

    /// [`SimUp::start`], awaited.
    ///
    /// # Panics
    ///
    /// As [`SimUp::start`].
    pub async fn start_async(bin: Binary, args: &[&str]) -> Self {
        let mut sim = Self::spawn_owned(bin, args);
        sim.ready().await;
        sim
    }

    /// Starts `firedrill sim up ARGS --env-file ENV_FILE` in `dir` (its log next to the env
    /// file, with the extension `log`) and waits until the env file is written.
    ///
    /// # Panics
    ///
    /// As [`SimUp::start`].
    pub async fn start_in(bin: Binary, dir: &Path, env_file: &str, args: &[&str]) -> Self {
        let mut sim = Self::spawn(bin, dir, Path::new(env_file), args, None);
        sim.ready().await;
        sim
    }

    /// Starts `firedrill sim up ARGS --env-file DIR/sim.env` in `dir` (its log in DIR/sim.log)
    /// and waits, blocking this thread, until the env file is written.
    ///
    /// # Panics
    ///
    /// As [`SimUp::start`].
    #[must_use]
    pub fn start_in_blocking(bin: Binary, dir: &Path, args: &[&str]) -> Self {
        let mut sim = Self::spawn(bin, dir, Path::new("sim.env"), args, None);
        sim.ready_blocking();
        sim
    }

    fn spawn_owned(bin: Binary, args: &[&str]) -> Self {
        let owned = tempfile::tempdir().expect("a temp folder for sim up");
        let dir = owned.path().to_owned();
        Self::spawn(bin, &dir, Path::new("sim.env"), args, Some(owned))
    }

    fn spawn(
        bin: Binary,
        dir: &Path,
        env_file: &Path,
        args: &[&str],
        owned: Option<tempfile::TempDir>,
    ) -> Self {
        let env_file = dir.join(env_file);
        let log = env_file.with_extension("log");
        let log_file = std::fs::File::create(&log)
            .unwrap_or_else(|e| panic!("create the sim log {}: {e}", log.display()));
        let mut cmd = bin.command(dir, &["sim", "up"]);
        cmd.args(args)
            .arg("--env-file")
            .arg(&env_file)
            .stdout(log_file.try_clone().expect("clone the sim log"))
            .stderr(Stdio::from(log_file));
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start firedrill sim up: {e}"));
        Self {
            child,
            env_file,
            log,
            env: Vec::new(),
            dir: dir.to_owned(),
            _owned: owned,
        }
    }

    fn ready_blocking(&mut self) {
        Wait::new("sim up writes its env file", START_DEADLINE)
            .every(Duration::from_millis(20))
            .blocking(|| self.written());
        self.read_env();
    }

    async fn ready(&mut self) {
        Wait::new("sim up writes its env file", START_DEADLINE)
            .every(Duration::from_millis(20))
            .until(|| self.written())
            .await;
        self.read_env();
    }

    /// Whether the env file is there (written atomically); fails at once when `sim up` exited.
    fn written(&mut self) -> bool {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!(
                "sim up exited {status} before writing its env file:\n{}",
                self.log()
            );
        }
        self.env_file.exists()
    }

    fn read_env(&mut self) {
        let text = std::fs::read_to_string(&self.env_file)
            .unwrap_or_else(|e| panic!("read {}: {e}", self.env_file.display()));
        self.env = parse_env(&text);
    }

    /// The folder it runs in (the test's own, or one it made).
    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The env file it wrote.
    #[must_use]
    pub fn env_file(&self) -> &Path {
        &self.env_file
    }

    /// The env file's assignments, in file order.
    #[must_use]
    pub fn env(&self) -> &[(String, String)] {
        &self.env
    }

    /// The value of `name` in the env file.
    ///
    /// # Panics
    ///
    /// When the env file does not set it.
    #[must_use]
    pub fn var(&self, name: &str) -> &str {
        self.env
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or_else(|| panic!("{name} is not in the env file: {:?}", self.env))
    }

    /// What it printed so far.
    #[must_use]
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for SimUp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `NAME='value'` lines as `sim up --env-file` writes them (single quotes, `'\''` for a quote
/// inside), in file order.
#[must_use]
pub fn parse_env(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|line| line.split_once('='))
        .map(|(k, v)| {
            let v = v.trim();
            let v = v
                .strip_prefix('\'')
                .and_then(|v| v.strip_suffix('\''))
                .unwrap_or(v);
            (k.to_owned(), v.replace(r"'\''", "'"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_lines_unquote_as_a_shell_reads_them() {
        assert_eq!(
            parse_env("A='x'\nB='it'\\''s'\nC=bare\nnot a line\n"),
            [("A", "x"), ("B", "it's"), ("C", "bare")].map(|(k, v)| (k.to_owned(), v.to_owned()))
        );
    }
}
