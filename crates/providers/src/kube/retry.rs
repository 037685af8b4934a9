//! Retrying a call while the API server is unreachable: a bounded exponential backoff slept on
//! the platform clock, so a compressed-time drill waits compressed time.

use std::future::Future;
use std::time::Duration;

use super::{Call, Conn, KubeError};
use firedrill_core::clock::format_duration;

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
                    pause = (pause * 2).min(self.backoff.max);
                    attempt += 1;
                }
                other => return Ok(other),
            }
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
