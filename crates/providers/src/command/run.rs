//! Running a platform command: no shell, a deadline in platform time, the tail of its output
//! kept for the report, and its own process group so the signal that asks for an undo does
//! not kill the undo.

use std::path::Path;
use std::process::Stdio;

use tokio::io::AsyncReadExt;

use super::config::substitute;
use super::{CommandError, Finished, argv};
use firedrill_core::clock::{Clock, format_duration};
use firedrill_platform::Command;

/// Output kept per stream; Terraform can print a lot, the report needs the end of it.
const OUTPUT_LIMIT: usize = 64 * 1024;

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
    }
}
