//! Retrying a call while the API server is unreachable: a bounded exponential backoff slept on
//! the platform clock, so a compressed-time drill waits compressed time.

use std::future::Future;
use std::time::Duration;

use super::{Call, Conn, KubeError};
use firedrill_core::clock::{Clock, PlatformTime, format_duration};

/// How often and how long a call is retried while the API server is unreachable (transport
/// errors, 500/502/503/504). Other errors (403, 404, 409, a budget's 429) are not retried.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    /// Tries in all, the first included (at least 1).
    pub attempts: u32,
    /// The first pause (platform time); each next pause doubles.
    pub first: Duration,
    /// The longest pause (platform time).
    pub max: Duration,
}

impl Default for Backoff {
    /// 6 tries over 1 + 2 + 4 + 8 + 16 = 31 s of platform time: long enough to ride out an API
    /// server restart, short enough that a lost region aborts the drill quickly.
    fn default() -> Self {
        Self {
            attempts: 6,
            first: Duration::from_secs(1),
            max: Duration::from_secs(16),
        }
    }
}

impl Backoff {
    /// The pause after `pause`: twice as long, at most [`Backoff::max`].
    #[must_use]
    pub fn after(&self, pause: Duration) -> Duration {
        (pause * 2).min(self.max)
    }
}

/// Whether an error means the API server did not answer (worth retrying).
#[must_use]
pub fn transient(e: &::kube::Error) -> bool {
    match e {
        ::kube::Error::Api(status) => matches!(status.code, 500 | 502 | 503 | 504),
        ::kube::Error::HyperError(_) | ::kube::Error::Service(_) | ::kube::Error::ReadEvents(_) => {
            true
        }
        _ => false,
    }
}

impl Conn {
    /// Runs `f` until it answers, retrying transient failures per the [`Backoff`]. The outer
    /// error is [`KubeError::Unreachable`]; the inner one is the API's own answer, for the
    /// caller to classify (a 404 may be fine, a 429 is a budget).
    pub(crate) async fn try_call<T, F, Fut>(
        &self,
        call: Call<'_>,
        mut f: F,
    ) -> Result<Result<T, ::kube::Error>, KubeError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, ::kube::Error>>,
    {
        let began = self.clock.now();
        let attempts = self.backoff.attempts.max(1);
        let mut pause = self.backoff.first;
        let mut attempt = 1;
        loop {
            match f().await {
                Err(e) if transient(&e) => {
                    if attempt >= attempts {
                        return Err(KubeError::Unreachable {
                            call: Box::new(call.owned()),
                            attempts,
                            waited: format_duration(self.clock.now().saturating_since(began)),
                            message: e.to_string(),
                        });
                    }
                    tracing::warn!(
                        context = call.context,
                        verb = call.verb,
                        kind = call.kind,
                        object = call.object,
                        attempt,
                        error = %e,
                        "Kubernetes API call failed; retrying after {}",
                        format_duration(pause)
                    );
                    self.clock.sleep(pause).await;
                    pause = self.backoff.after(pause);
                    attempt += 1;
                }
                other => return Ok(other),
            }
        }
    }

    /// [`Conn::try_call`] for a call on an object that may be gone: a 404 is `Ok(None)` when
    /// `gone_is_fine` (a node without a taint left to remove, a pod already deleted); every
    /// other API error is a [`KubeError`] naming the call.
    pub(crate) async fn call_unless_gone<T, F, Fut>(
        &self,
        call: Call<'_>,
        gone_is_fine: bool,
        f: F,
    ) -> Result<Option<T>, KubeError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, ::kube::Error>>,
    {
        match self.try_call(call, f).await? {
            Ok(found) => Ok(Some(found)),
            Err(::kube::Error::Api(s)) if s.code == 404 && gone_is_fine => Ok(None),
            Err(e) => Err(call.error(&e)),
        }
    }

    /// [`Conn::try_call`] with every API error turned into a [`KubeError`] naming the call.
    pub(crate) async fn call_api<T, F, Fut>(&self, call: Call<'_>, f: F) -> Result<T, KubeError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, ::kube::Error>>,
    {
        self.try_call(call, f).await?.map_err(|e| call.error(&e))
    }
}

/// The [`Backoff`] of a watch: a watch stream does not fail once and return, it yields an error
/// and re-lists on its next poll. Errors in a row are counted (a good event starts the count
/// again), each is followed by a pause in platform time, and after [`Backoff::attempts`] the
/// watch gives up with [`KubeError::Unreachable`].
pub(super) struct WatchRetry<'c> {
    conn: &'c Conn,
    clock: &'c Clock,
    began: PlatformTime,
    errors: u32,
    pause: Duration,
}

impl<'c> WatchRetry<'c> {
    /// The retry state of a watch on `conn` starting now.
    pub(super) fn new(conn: &'c Conn, clock: &'c Clock) -> Self {
        Self {
            conn,
            clock,
            began: clock.now(),
            errors: 0,
            pause: conn.backoff.first,
        }
    }

    /// A watch error on the pods of `namespace`: pauses before the watcher's next poll.
    ///
    /// # Errors
    ///
    /// [`KubeError::Unreachable`] naming the watch, once errors in a row reach the attempts.
    pub(super) async fn failed(
        &mut self,
        namespace: &str,
        e: &::kube::runtime::watcher::Error,
    ) -> Result<(), KubeError> {
        self.errors += 1;
        if self.errors >= self.conn.backoff.attempts.max(1) {
            return Err(KubeError::Unreachable {
                call: Box::new(self.conn.call(namespace, "pods", "", "watch").owned()),
                attempts: self.errors,
                waited: format_duration(self.clock.now().saturating_since(self.began)),
                message: e.to_string(),
            });
        }
        self.clock.sleep(self.pause).await;
        self.pause = self.conn.backoff.after(self.pause);
        Ok(())
    }

    /// A good event: the next error is the first of a new run.
    pub(super) fn succeeded(&mut self) {
        self.errors = 0;
        self.pause = self.conn.backoff.first;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_pause_doubles_up_to_the_longest() {
        let backoff = Backoff {
            attempts: 6,
            first: Duration::from_secs(1),
            max: Duration::from_secs(5),
        };
        let pauses: Vec<u64> =
            std::iter::successors(Some(backoff.first), |p| Some(backoff.after(*p)))
                .take(5)
                .map(|p| p.as_secs())
                .collect();
        assert_eq!(pauses, [1, 2, 4, 5, 5]);
    }
}
