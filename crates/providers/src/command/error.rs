//! [`CommandError`]: why a command did not run, did not finish, did not succeed, or its undo
//! did not settle; each message names the command and ends with a hint.

use super::Finished;

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
    #[error(
        "{what} (`{argv}`) exited with {code}: {stderr_tail} (hint: the report holds its whole output)"
    )]
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
    /// The undo command ran but the system did not settle back.
    #[error(
        "{what} ran, but {expected} was not observed within {within} (last: {last}) (hint: check the system by hand, then run `firedrill recover`)"
    )]
    NotSettled {
        /// The undo.
        what: String,
        /// What was expected.
        expected: String,
        /// The deadline, formatted.
        within: String,
        /// The last observation.
        last: String,
    },
    /// The settle check cannot run on this platform.
    #[error(
        "{what}: the platform has no traffic probe to confirm the undo (hint: define traffic.probe)"
    )]
    NoProbe {
        /// The undo.
        what: String,
    },
}
