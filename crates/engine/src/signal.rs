//! Which signals stop a run, and how: the rule is that no signal a process can catch ends a
//! run without its undo.
//!
//! | signals | during a run |
//! | --- | --- |
//! | SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGALRM, SIGVTALRM, SIGPROF, SIGXCPU, SIGABRT sent by another process, SIGIO, SIGPWR, SIGSTKFLT, the real-time signals | abort: undo everything this run injected, exit 3 |
//! | SIGPIPE | ignored (Rust ignores it at start): a write to a closed pipe fails with EPIPE, and output is best-effort |
//! | SIGXFSZ | caught and noted: the write past the file-size limit fails with EFBIG where it happened (the ledger then refuses to inject) |
//! | SIGTSTP, SIGTTIN, SIGTTOU, SIGSTOP | stop the process with its faults in place until SIGCONT (`fg`) |
//! | SIGKILL; SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGTRAP, SIGSYS | end the process (uncatchable, or a crash of firedrill itself): faults stay in the ledger for `firedrill recover` |
//!
//! Should tokio refuse to watch one of them (none on Linux), it is ignored for the whole process
//! instead, so it cannot end the run either. Once the undo runs, further signals are answered
//! on stderr and never obeyed: only SIGKILL cuts an undo short.

use std::fmt;
use std::pin::Pin;

use futures::Stream;
use futures::StreamExt as _;

/// A signal, by number, named as `kill -l` names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Signal(i32);

impl Signal {
    /// The signal with this number.
    #[must_use]
    pub const fn from_raw(number: i32) -> Self {
        Self(number)
    }

    /// Its number.
    #[must_use]
    pub const fn number(self) -> i32 {
        self.0
    }

    /// Its name (`SIGHUP`, `SIGRTMIN+3`), or `signal N` for one this table does not know.
    #[must_use]
    pub fn name(self) -> String {
        #[cfg(unix)]
        {
            if let Some((_, name)) = NAMES.iter().find(|(n, _)| *n == self.0) {
                return (*name).to_owned();
            }
            #[cfg(target_os = "linux")]
            {
                let (min, max) = (libc::SIGRTMIN(), libc::SIGRTMAX());
                if self.0 == min {
                    return "SIGRTMIN".to_owned();
                }
                if self.0 == max {
                    return "SIGRTMAX".to_owned();
                }
                if (min..max).contains(&self.0) {
                    return format!("SIGRTMIN+{}", self.0 - min);
                }
            }
        }
        format!("signal {}", self.0)
    }
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

/// What a run does when a signal arrives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Stop: undo everything this run injected, exit 3.
    Abort,
    /// Note it on stderr and go on (the operation it concerns fails by itself).
    Note,
}

#[cfg(unix)]
const NAMES: &[(i32, &str)] = &[
    (libc::SIGINT, "SIGINT"),
    (libc::SIGTERM, "SIGTERM"),
    (libc::SIGHUP, "SIGHUP"),
    (libc::SIGQUIT, "SIGQUIT"),
    (libc::SIGUSR1, "SIGUSR1"),
    (libc::SIGUSR2, "SIGUSR2"),
    (libc::SIGALRM, "SIGALRM"),
    (libc::SIGVTALRM, "SIGVTALRM"),
    (libc::SIGPROF, "SIGPROF"),
    (libc::SIGXCPU, "SIGXCPU"),
    (libc::SIGXFSZ, "SIGXFSZ"),
    (libc::SIGABRT, "SIGABRT"),
    (libc::SIGPIPE, "SIGPIPE"),
    (libc::SIGKILL, "SIGKILL"),
    #[cfg(target_os = "linux")]
    (libc::SIGIO, "SIGIO"),
    #[cfg(target_os = "linux")]
    (libc::SIGPWR, "SIGPWR"),
    #[cfg(target_os = "linux")]
    (libc::SIGSTKFLT, "SIGSTKFLT"),
];

/// The signals whose default action ends the process and that a run stops on.
#[cfg(unix)]
const ABORT: &[i32] = &[
    libc::SIGINT,
    libc::SIGTERM,
    libc::SIGHUP,
    libc::SIGQUIT,
    libc::SIGUSR1,
    libc::SIGUSR2,
    libc::SIGALRM,
    libc::SIGVTALRM,
    libc::SIGPROF,
    libc::SIGXCPU,
    // abort() inside firedrill ends the process after the handler anyway (a crash: `recover`);
    // a SIGABRT sent by someone else is a request to stop, and gets the undo.
    libc::SIGABRT,
    #[cfg(target_os = "linux")]
    libc::SIGIO,
    #[cfg(target_os = "linux")]
    libc::SIGPWR,
    #[cfg(target_os = "linux")]
    libc::SIGSTKFLT,
];

/// The signals a run watches, with what each does: every signal whose default action ends
/// the process and that can be caught, except SIGPIPE, which Rust ignores (see the module
/// docs). SIGXFSZ is only noted: the write it concerns fails with EFBIG by itself.
#[must_use]
pub fn watched() -> Vec<(Signal, Action)> {
    #[cfg(unix)]
    {
        let mut watched: Vec<(Signal, Action)> =
            ABORT.iter().map(|n| (Signal(*n), Action::Abort)).collect();
        watched.push((Signal(libc::SIGXFSZ), Action::Note));
        #[cfg(target_os = "linux")]
        watched.extend((libc::SIGRTMIN()..=libc::SIGRTMAX()).map(|n| (Signal(n), Action::Abort)));
        watched
    }
    #[cfg(not(unix))]
    {
        Vec::new()
    }
}

/// The signals delivered to this process from the moment it was created: every signal of
/// [`watched`] is caught from then on (for the rest of the process: a caught signal's default
/// action never comes back), so none can end the process behind the undo's back.
pub struct Listener {
    signals: Pin<Box<dyn Stream<Item = (Signal, Action)> + Send>>,
}

impl fmt::Debug for Listener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("signal::Listener")
    }
}

impl Listener {
    /// Catches every watched signal. Must run inside a tokio runtime with signals enabled.
    #[must_use]
    pub fn new() -> Self {
        Self {
            signals: catch_all(),
        }
    }

    /// The next signal that arrives, with what a run does with it; never returns when no
    /// signal could be watched.
    pub async fn next(&mut self) -> (Signal, Action) {
        match self.signals.next().await {
            Some(signal) => signal,
            None => std::future::pending().await,
        }
    }
}

impl Default for Listener {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(unix)]
fn catch_all() -> Pin<Box<dyn Stream<Item = (Signal, Action)> + Send>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut streams = Vec::new();
    for (sig, action) in watched() {
        match signal(SignalKind::from_raw(sig.number())) {
            Ok(stream) => streams.push(
                futures::stream::unfold(stream, move |mut stream| async move {
                    stream.recv().await.map(|()| ((sig, action), stream))
                })
                .boxed(),
            ),
            Err(e) => {
                // Ignored rather than left at its default, which would end the run unundone.
                // SAFETY: setting a signal's disposition to SIG_IGN installs no handler code.
                let ignored = unsafe { libc::signal(sig.number(), libc::SIG_IGN) };
                tracing::debug!(
                    "cannot watch {sig} ({e}); it is ignored instead: {}",
                    if ignored == libc::SIG_ERR {
                        "failed"
                    } else {
                        "ok"
                    }
                );
            }
        }
    }
    futures::stream::select_all(streams).boxed()
}

#[cfg(not(unix))]
fn catch_all() -> Pin<Box<dyn Stream<Item = (Signal, Action)> + Send>> {
    futures::stream::unfold((), |()| async {
        tokio::signal::ctrl_c()
            .await
            .ok()
            .map(|()| ((Signal(2), Action::Abort), ()))
    })
    .boxed()
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[test]
    fn signals_are_named_as_kill_names_them() {
        assert_eq!(Signal::from_raw(libc::SIGHUP).to_string(), "SIGHUP");
        assert_eq!(Signal::from_raw(libc::SIGQUIT).to_string(), "SIGQUIT");
        assert_eq!(Signal::from_raw(libc::SIGUSR1).to_string(), "SIGUSR1");
        #[cfg(target_os = "linux")]
        {
            assert_eq!(Signal::from_raw(libc::SIGRTMIN()).to_string(), "SIGRTMIN");
            assert_eq!(
                Signal::from_raw(libc::SIGRTMIN() + 2).to_string(),
                "SIGRTMIN+2"
            );
            assert_eq!(Signal::from_raw(libc::SIGRTMAX()).to_string(), "SIGRTMAX");
        }
        assert_eq!(Signal::from_raw(0).to_string(), "signal 0");
    }

    #[test]
    fn every_catchable_signal_that_would_end_the_process_is_watched_and_only_sigxfsz_is_noted() {
        let watched = watched();
        let action = |n: i32| {
            watched
                .iter()
                .find(|(s, _)| s.number() == n)
                .map(|(_, a)| *a)
        };
        for n in [
            libc::SIGINT,
            libc::SIGTERM,
            libc::SIGHUP,
            libc::SIGQUIT,
            libc::SIGUSR1,
            libc::SIGUSR2,
            libc::SIGALRM,
            libc::SIGVTALRM,
            libc::SIGPROF,
            libc::SIGXCPU,
            libc::SIGABRT,
        ] {
            assert_eq!(action(n), Some(Action::Abort), "{}", Signal(n));
        }
        assert_eq!(action(libc::SIGXFSZ), Some(Action::Note));
        #[cfg(target_os = "linux")]
        for n in [
            libc::SIGIO,
            libc::SIGPWR,
            libc::SIGSTKFLT,
            libc::SIGRTMIN() + 1,
        ] {
            assert_eq!(action(n), Some(Action::Abort), "{}", Signal(n));
        }
        // Rust ignores SIGPIPE; the crash signals and SIGKILL are not a request to stop.
        for n in [libc::SIGPIPE, libc::SIGKILL, libc::SIGSEGV, libc::SIGBUS] {
            assert_eq!(action(n), None, "{}", Signal(n));
        }
    }
}
