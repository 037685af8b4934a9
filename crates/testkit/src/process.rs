//! The `firedrill` binary run as a user runs it: in a folder, with nothing inherited from the
//! test's environment that would pick its platform, ledger, kubeconfig or log level, and its
//! output captured as it comes.

use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::wait::Wait;

/// How long a firedrill run by [`Binary::run`] may take before the test fails.
pub const RUN_DEADLINE: Duration = Duration::from_secs(120);

/// Variables firedrill reads that a developer's shell may set; a test sets what it means.
const SCRUBBED: [&str; 5] = [
    "FIREDRILL_PLATFORM",
    "FIREDRILL_LEDGER",
    "FIREDRILL_LOG",
    "FIREDRILL_KUBECONFIG",
    "KUBECONFIG",
];

/// The `firedrill` binary (see [`crate::firedrill!`]).
#[derive(Clone, Copy, Debug)]
pub struct Binary(&'static str);

impl Binary {
    /// The binary at `path`; [`crate::firedrill!`] gives the one cargo built.
    #[must_use]
    pub const fn new(path: &'static str) -> Self {
        Self(path)
    }

    /// Its path.
    #[must_use]
    pub fn path(&self) -> &'static Path {
        Path::new(self.0)
    }

    /// `firedrill ARGS` in `dir`: stdin closed, stdout and stderr piped, and none of
    /// FIREDRILL_PLATFORM, FIREDRILL_LEDGER, FIREDRILL_LOG, FIREDRILL_KUBECONFIG or KUBECONFIG
    /// inherited.
    #[must_use]
    pub fn command(&self, dir: &Path, args: &[&str]) -> Command {
        let mut cmd = Command::new(self.0);
        cmd.args(args)
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for name in SCRUBBED {
            cmd.env_remove(name);
        }
        cmd
    }

    /// Runs `firedrill ARGS` in `dir` to its end, blocking this thread.
    ///
    /// # Panics
    ///
    /// When it cannot start or runs past [`RUN_DEADLINE`].
    #[must_use]
    pub fn run(&self, dir: &Path, args: &[&str]) -> Output {
        Started::spawn(&mut self.command(dir, args)).exit_blocking(RUN_DEADLINE)
    }

    /// Runs `firedrill ARGS` in `dir` to its end, awaited: for a test whose servers answer on
    /// its own runtime, which a blocked thread would starve.
    ///
    /// # Panics
    ///
    /// When it cannot start or runs past [`RUN_DEADLINE`].
    pub async fn run_async(&self, dir: &Path, args: &[&str]) -> Output {
        Started::spawn(&mut self.command(dir, args))
            .exit(RUN_DEADLINE)
            .await
    }

    /// Starts `firedrill ARGS` in `dir` in the background, its output collected.
    ///
    /// # Panics
    ///
    /// When it cannot start.
    #[must_use]
    pub fn start(&self, dir: &Path, args: &[&str]) -> Started {
        Started::spawn(&mut self.command(dir, args))
    }
}

/// How a program ended and what it printed.
#[derive(Clone, Debug)]
pub struct Output {
    /// Its exit status.
    pub status: ExitStatus,
    /// Everything it wrote to stdout.
    pub stdout: String,
    /// Everything it wrote to stderr.
    pub stderr: String,
}

impl Output {
    /// Its exit code; `None` when a signal ended it.
    #[must_use]
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }

    /// Stdout then stderr, for assertions and their messages.
    #[must_use]
    pub fn text(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }
}

/// A started program whose output is collected as it comes; killed when dropped while it
/// still runs.
#[derive(Debug)]
pub struct Started {
    child: Child,
    stdout: Arc<Mutex<String>>,
    stderr: Arc<Mutex<String>>,
    readers: Vec<JoinHandle<()>>,
}

impl Started {
    /// Spawns `cmd`, collecting whichever of stdout and stderr it pipes.
    ///
    /// # Panics
    ///
    /// When it cannot start.
    pub fn spawn(cmd: &mut Command) -> Self {
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
        let stdout = Arc::default();
        let stderr = Arc::default();
        let mut readers = Vec::new();
        if let Some(pipe) = child.stdout.take() {
            readers.push(collect(pipe, Arc::clone(&stdout)));
        }
        if let Some(pipe) = child.stderr.take() {
            readers.push(collect(pipe, Arc::clone(&stderr)));
        }
        Self {
            child,
            stdout,
            stderr,
            readers,
        }
    }

    /// Its process id.
    #[must_use]
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// The child itself (to kill it, or to ask whether it still runs).
    pub fn child(&mut self) -> &mut Child {
        &mut self.child
    }

    /// Its stdout so far.
    #[must_use]
    pub fn stdout(&self) -> String {
        self.stdout.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Its stderr so far.
    #[must_use]
    pub fn stderr(&self) -> String {
        self.stderr.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Stdout then stderr so far.
    #[must_use]
    pub fn output(&self) -> String {
        format!("{}{}", self.stdout(), self.stderr())
    }

    /// Waits until its output shows `text` (also when it printed it just before exiting).
    ///
    /// # Panics
    ///
    /// When it exits without showing it, or does not show it within `within`.
    pub async fn wait_for(&mut self, text: &str, within: Duration) {
        let wait = Wait::new(format!("\"{text}\" in the output"), within);
        let exited = wait
            .until(|| {
                if self.output().contains(text) {
                    return Ok(None);
                }
                match self.child.try_wait() {
                    Ok(Some(status)) => Ok(Some(status)),
                    _ => Err(format!("output so far:\n{}", self.output())),
                }
            })
            .await;
        if let Some(status) = exited {
            self.read_to_end(within).await;
            let seen = self.output();
            assert!(
                seen.contains(text),
                "it exited {status} before \"{text}\" appeared:\n{seen}"
            );
        }
    }

    /// Sends it `signal` (`libc::SIGINT`, …).
    ///
    /// # Panics
    ///
    /// When kill(2) fails.
    #[cfg(unix)]
    pub fn signal(&self, signal: i32) {
        send(self.child.id(), signal);
    }

    /// Waits (at most `within`) for it to exit and its output to end.
    ///
    /// # Panics
    ///
    /// When it does not exit within `within`, or a process it started keeps its output open.
    pub async fn exit(mut self, within: Duration) -> Output {
        let status = Wait::new("the program to exit", within)
            .until(|| self.status())
            .await;
        self.read_to_end(within).await;
        self.finished(status)
    }

    /// [`Started::exit`], blocking this thread.
    ///
    /// # Panics
    ///
    /// As [`Started::exit`].
    pub fn exit_blocking(mut self, within: Duration) -> Output {
        let status = Wait::new("the program to exit", within).blocking(|| self.status());
        Wait::new("its output to end", within).blocking(|| self.output_ended());
        self.finished(status)
    }

    fn status(&mut self) -> Result<ExitStatus, String> {
        match self.child.try_wait() {
            Ok(Some(status)) => Ok(status),
            Ok(None) => Err(format!("still running; output so far:\n{}", self.output())),
            Err(e) => panic!("cannot wait for {}: {e}", self.child.id()),
        }
    }

    async fn read_to_end(&mut self, within: Duration) {
        Wait::new("its output to end", within)
            .until(|| self.output_ended())
            .await;
    }

    /// Whether both pipes reached their end (a process it started may hold them open).
    fn output_ended(&self) -> Result<(), &'static str> {
        if self.readers.iter().all(JoinHandle::is_finished) {
            Ok(())
        } else {
            Err("a process it started still holds its stdout or stderr open")
        }
    }

    fn finished(mut self, status: ExitStatus) -> Output {
        for reader in self.readers.drain(..) {
            let _ = reader.join();
        }
        Output {
            status,
            stdout: self.stdout(),
            stderr: self.stderr(),
        }
    }
}

impl Drop for Started {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn collect(
    mut pipe: impl std::io::Read + Send + 'static,
    sink: Arc<Mutex<String>>,
) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = pipe.read(&mut buf) {
            if n == 0 {
                break;
            }
            if let Ok(mut s) = sink.lock() {
                s.push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        }
    })
}

/// Sends `signal` to process `pid` (or to process group `-pid`).
///
/// # Panics
///
/// When the pid is out of range or kill(2) fails.
#[cfg(unix)]
pub fn send(pid: impl TryInto<i32>, signal: i32) {
    let pid: i32 = pid
        .try_into()
        .unwrap_or_else(|_| panic!("pid out of range"));
    // SAFETY: kill(2) has no memory effects.
    let sent = unsafe { libc::kill(pid, signal) };
    assert_eq!(sent, 0, "kill({pid}, {signal}) failed");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn collects_both_streams_and_the_exit_code() {
        let out = Started::spawn(
            Command::new("sh")
                .args(["-c", "echo out; echo err >&2; exit 3"])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped()),
        )
        .exit(Duration::from_secs(10))
        .await;
        assert_eq!(
            (out.code(), out.stdout.as_str(), out.stderr.as_str()),
            (Some(3), "out\n", "err\n")
        );
    }

    #[tokio::test]
    async fn wait_for_sees_text_printed_just_before_the_exit() {
        let mut started = Started::spawn(
            Command::new("sh")
                .args(["-c", "echo ready"])
                .stdout(Stdio::piped()),
        );
        started.wait_for("ready", Duration::from_secs(10)).await;
        assert_eq!(started.exit(Duration::from_secs(10)).await.code(), Some(0));
    }

    #[test]
    fn the_environment_that_picks_a_platform_is_not_inherited() {
        let cmd = Binary::new("/bin/true").command(Path::new("/"), &[]);
        let removed: Vec<_> = cmd
            .get_envs()
            .filter(|(_, v)| v.is_none())
            .map(|(k, _)| k.to_string_lossy().into_owned())
            .collect();
        for name in SCRUBBED {
            assert!(removed.iter().any(|r| r == name), "{name} inherited");
        }
    }
}
