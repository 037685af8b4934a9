//! The `command` provider: runs a process (a Terraform apply that switches traffic, a script
//! that breaks something) with a deadline, its output captured for the report, a milestone at
//! exit. Commands come from the platform file and are run without a shell.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use serde::{Deserialize, Serialize};
use tokio::io::AsyncReadExt;

use firedrill_core::clock::{Clock, format_duration};
use firedrill_platform::{Command, Platform};

/// Output kept per stream; Terraform can print a lot, the report needs the end of it.
const OUTPUT_LIMIT: usize = 64 * 1024;

/// `{placeholder}` → value pairs for a command's arguments.
pub type Substitutions = Vec<(String, String)>;

/// Which platform command an undo runs. Stored by reference, not by value: the environment of
/// a command may hold secrets, so `recover` resolves it again from the platform file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum CommandRef {
    /// `faults.<fault>.inject`.
    FaultInject {
        /// The fault's name.
        fault: String,
    },
    /// `faults.<fault>.undo`.
    FaultUndo {
        /// The fault's name.
        fault: String,
    },
    /// `traffic.switch` with `{region}` = `region`.
    TrafficSwitch {
        /// The region traffic goes to.
        region: String,
    },
    /// `commands.<name>`.
    Named {
        /// The command's name.
        name: String,
    },
}

impl CommandRef {
    /// The command and its `{placeholder}` substitutions.
    ///
    /// # Errors
    ///
    /// [`CommandError::Unknown`] when the platform does not define it.
    pub fn resolve<'p>(
        &self,
        platform: &'p Platform,
    ) -> Result<(&'p Command, Substitutions), CommandError> {
        let unknown = || CommandError::Unknown {
            what: self.describe(),
        };
        match self {
            CommandRef::FaultInject { fault } => platform
                .faults
                .get(fault)
                .map(|f| (&f.inject, vec![]))
                .ok_or_else(unknown),
            CommandRef::FaultUndo { fault } => platform
                .faults
                .get(fault)
                .map(|f| (&f.undo, vec![]))
                .ok_or_else(unknown),
            CommandRef::TrafficSwitch { region } => platform
                .traffic
                .as_ref()
                .map(|t| (&t.switch, vec![("region".to_owned(), region.clone())]))
                .ok_or_else(unknown),
            CommandRef::Named { name } => platform
                .commands
                .get(name)
                .map(|c| (c, vec![]))
                .ok_or_else(unknown),
        }
    }

    /// `the undo command of fault "x"` and the like.
    #[must_use]
    pub fn describe(&self) -> String {
        match self {
            CommandRef::FaultInject { fault } => format!("the inject command of fault \"{fault}\""),
            CommandRef::FaultUndo { fault } => format!("the undo command of fault \"{fault}\""),
            CommandRef::TrafficSwitch { region } => format!("the traffic switch to \"{region}\""),
            CommandRef::Named { name } => format!("command \"{name}\""),
        }
    }
}

/// The ledger's record of an undo that runs a command.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandUndo {
    /// Which command.
    pub command: CommandRef,
    /// Its arguments as they were when the fault was injected (for people reading the ledger).
    pub run: Vec<String>,
    /// What must be observed before the undo counts as done (a command returning is not
    /// enough when the system converges after it, like a load balancer after a Terraform apply).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settle: Option<Settle>,
}

/// An observation that confirms an undo took effect.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Settle {
    /// The traffic probe gets a good answer from this region.
    TrafficServedFrom {
        /// The region.
        region: String,
    },
}

impl CommandUndo {
    /// One line for plans and reports.
    #[must_use]
    pub fn describe(&self) -> String {
        let settle = match &self.settle {
            Some(Settle::TrafficServedFrom { region }) => {
                format!(", then wait until traffic is served from \"{region}\"")
            }
            None => String::new(),
        };
        format!(
            "run {} ({}){settle}",
            self.command.describe(),
            self.run.join(" ")
        )
    }
}

pub use firedrill_core::observed::Finished;

/// Why a command did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// The platform defines no such command.
    #[error(
        "{what} is not defined in the platform file (hint: add it to the platform file; `firedrill validate` lists what is missing)"
    )]
    Unknown {
        /// Which command.
        what: String,
    },
    /// The program could not be started.
    #[error("cannot start `{program}` for {what}: {source} (hint: is it installed and on PATH?)")]
    Spawn {
        /// Which command.
        what: String,
        /// The program.
        program: String,
        /// Why.
        source: std::io::Error,
    },
    /// It ran past its deadline and was killed.
    #[error(
        "{what} (`{argv}`) did not finish within {timeout}; it was killed (hint: raise its `timeout` in the platform file if it is just slow)"
    )]
    Timeout {
        /// Which command.
        what: String,
        /// What ran.
        argv: String,
        /// The deadline, formatted.
        timeout: String,
    },
    /// It exited with a failure.
    #[error("{what} (`{argv}`) exited with {code}: {stderr_tail}")]
    Failed {
        /// Which command.
        what: String,
        /// What ran.
        argv: String,
        /// Exit status as text.
        code: String,
        /// Last lines of standard error.
        stderr_tail: String,
        /// The whole record, for the report.
        finished: Box<Finished>,
    },
}

/// Replaces `{name}` placeholders.
fn substitute(text: &str, substitutions: &[(String, String)]) -> String {
    substitutions
        .iter()
        .fold(text.to_owned(), |acc, (name, value)| {
            acc.replace(&format!("{{{name}}}"), value)
        })
}

/// The argv a command will run with.
#[must_use]
pub fn argv(command: &Command, substitutions: &[(String, String)]) -> Vec<String> {
    command
        .run
        .iter()
        .map(|a| substitute(a, substitutions))
        .collect()
}

/// Runs a platform command to completion within its deadline (platform time).
///
/// The child gets `FIREDRILL_TIME_SCALE` so firedrill's own simulated commands (the embedded
/// platform's Terraform stand-in) run on the same clock.
///
/// # Errors
///
/// [`CommandError`]: not startable, timed out (the child is killed), or a non-zero exit.
pub async fn run(
    what: &str,
    command: &Command,
    substitutions: &[(String, String)],
    base_dir: &Path,
    clock: &Clock,
) -> Result<Finished, CommandError> {
    let argv = argv(command, substitutions);
    let Some((program, args)) = argv.split_first() else {
        return Err(CommandError::Unknown {
            what: what.to_owned(),
        });
    };
    let mut child = tokio::process::Command::new(program);
    child
        .args(args)
        .envs(
            command
                .env
                .iter()
                .map(|(k, v)| (k, substitute(v, substitutions))),
        )
        .env("FIREDRILL_TIME_SCALE", clock.scale().to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    // In a process group of its own, so a Ctrl-C or hangup sent to the terminal's foreground
    // group reaches firedrill alone: an undo command must not die of the signal that asked
    // for the undo, nor of a second one while it runs. firedrill stops commands itself.
    #[cfg(unix)]
    child.process_group(0);
    if let Some(cwd) = &command.cwd {
        child.current_dir(base_dir.join(cwd));
    }
    let started = clock.now();
    let mut child = child.spawn().map_err(|source| CommandError::Spawn {
        what: what.to_owned(),
        program: program.clone(),
        source,
    })?;
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let collect = async {
        let (out, err, status) = tokio::join!(read_tail(stdout), read_tail(stderr), child.wait());
        (out, err, status)
    };
    let (stdout, stderr, status) = match clock.timeout(command.timeout, collect).await {
        Ok(done) => done,
        Err(_) => {
            return Err(CommandError::Timeout {
                what: what.to_owned(),
                argv: argv.join(" "),
                timeout: format_duration(command.timeout),
            });
        }
    };
    let finished = Finished {
        exit_code: status
            .as_ref()
            .ok()
            .and_then(std::process::ExitStatus::code),
        argv,
        stdout,
        stderr,
        started,
        finished: clock.now(),
    };
    if finished.succeeded() {
        return Ok(finished);
    }
    Err(CommandError::Failed {
        what: what.to_owned(),
        argv: finished.argv.join(" "),
        code: match (&status, finished.exit_code) {
            (Err(e), _) => format!("an error waiting for it ({e})"),
            (_, Some(code)) => format!("code {code}"),
            (_, None) => "a signal".to_owned(),
        },
        stderr_tail: tail_lines(&finished.stderr, 5),
        finished: Box::new(finished),
    })
}

async fn read_tail<R: tokio::io::AsyncRead + Unpin>(stream: Option<R>) -> String {
    let Some(mut stream) = stream else {
        return String::new();
    };
    let mut kept: Vec<u8> = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                kept.extend_from_slice(&buf[..n]);
                if kept.len() > 2 * OUTPUT_LIMIT {
                    kept.drain(..kept.len() - OUTPUT_LIMIT);
                }
            }
        }
    }
    if kept.len() > OUTPUT_LIMIT {
        kept.drain(..kept.len() - OUTPUT_LIMIT);
    }
    String::from_utf8_lossy(&kept).into_owned()
}

fn tail_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let tail = lines[lines.len().saturating_sub(n)..].join(" | ");
    if tail.is_empty() {
        "(no output on stderr)".to_owned()
    } else {
        tail
    }
}

/// Where `program` would be found, for preflight (absolute or relative paths as given, else PATH).
#[must_use]
pub fn locate_program(program: &str, base_dir: &Path) -> Option<PathBuf> {
    let is_executable = |p: &Path| {
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            p.metadata()
                .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
                .unwrap_or(false)
        }
        #[cfg(not(unix))]
        {
            p.is_file()
        }
    };
    if program.contains('/') {
        let path = base_dir.join(program);
        return is_executable(&path).then_some(path);
    }
    std::env::var_os("PATH")
        .map(|paths| {
            std::env::split_paths(&paths)
                .map(|dir| dir.join(program))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default()
        .into_iter()
        .find(|p| is_executable(p))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use std::time::Duration;

    fn command(run: &[&str], timeout: Duration) -> Command {
        Command {
            run: run.iter().map(|s| (*s).to_owned()).collect(),
            env: BTreeMap::new(),
            cwd: None,
            timeout,
        }
    }

    #[tokio::test]
    async fn captures_output_and_substitutes_placeholders() {
        let clock = Clock::real();
        let cmd = command(
            &["sh", "-c", "echo switching to {region}; echo warn >&2"],
            Duration::from_secs(10),
        );
        let done = run(
            "switch",
            &cmd,
            &[("region".into(), "us-west2".into())],
            Path::new("."),
            &clock,
        )
        .await
        .expect("runs");
        assert_eq!(done.stdout, "switching to us-west2\n");
        assert_eq!(done.stderr, "warn\n");
        assert!(done.finished >= done.started);
    }

    #[tokio::test]
    async fn a_failing_command_reports_code_and_stderr() {
        let clock = Clock::real();
        let cmd = command(
            &["sh", "-c", "echo boom >&2; exit 3"],
            Duration::from_secs(10),
        );
        let err = run("apply", &cmd, &[], Path::new("."), &clock)
            .await
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("exited with code 3: boom"), "{err}");
    }

    #[tokio::test]
    async fn a_command_past_its_deadline_is_killed_in_platform_time() {
        // 60 platform seconds at scale 600 is 100 ms of wall time.
        let clock = Clock::scaled(600.0).expect("scale");
        let cmd = command(&["sleep", "30"], Duration::from_secs(60));
        let started = std::time::Instant::now();
        let err = run("slow", &cmd, &[], Path::new("."), &clock)
            .await
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("did not finish within 1m"), "{err}");
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "not killed at its deadline"
        );
    }

    #[tokio::test]
    async fn a_missing_program_says_so() {
        let cmd = command(&["no-such-program-firedrill"], Duration::from_secs(5));
        let err = run("x", &cmd, &[], Path::new("."), &Clock::real())
            .await
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            err.contains("cannot start `no-such-program-firedrill`"),
            "{err}"
        );
        assert!(locate_program("no-such-program-firedrill", Path::new(".")).is_none());
        assert!(locate_program("sh", Path::new(".")).is_some());
    }
}
