//! Stop conditions: what ends a run early besides a signal. Whoever watches one (a scenario's
//! armed [`Guard`]s) pulls the run's [`StopLine`] with an [`Abort`] reason; the run loop's
//! `select!` waits on the line as it waits on signals, and both end in the same undo of
//! everything the run injected.

use futures::future::BoxFuture;
use tokio::sync::watch;

use crate::runner::Abort;
use firedrill_core::guard::GuardTrip;

/// The run's stop line. The first reason pulled is the run's; later pulls change nothing.
#[derive(Debug)]
pub struct StopLine {
    reason: watch::Sender<Option<Abort>>,
}

impl Default for StopLine {
    fn default() -> Self {
        Self {
            reason: watch::channel(None).0,
        }
    }
}

impl StopLine {
    /// Stops the run for `reason`. Returns whether it was the first reason pulled.
    pub fn pull(&self, reason: Abort) -> bool {
        self.reason.send_if_modified(|current| {
            if current.is_some() {
                return false;
            }
            *current = Some(reason);
            true
        })
    }

    /// The reason pulled, if any.
    #[must_use]
    pub fn reason(&self) -> Option<Abort> {
        self.reason.borrow().clone()
    }

    /// Resolves once the line is pulled, with the reason.
    pub async fn pulled(&self) -> Abort {
        let mut reason = self.reason.subscribe();
        loop {
            if let Some(reason) = reason.borrow_and_update().clone() {
                return reason;
            }
            // The sender lives as long as `self`: `changed` only fails when nobody can pull.
            if reason.changed().await.is_err() {
                futures::future::pending::<()>().await;
            }
        }
    }
}

/// A stop condition a scenario is guarded by: evaluated once before the scenario's first
/// change (a breach refuses it: nothing is injected), then watched until the scenario's
/// changes are undone. Implemented by the steps over a provider (Prometheus) or the
/// platform's probes; the engine knows neither.
pub trait Guard: Send + Sync {
    /// Its name in the platform file.
    fn name(&self) -> &str;

    /// One evaluation now: `Err` says what breached (`31.2 (prod-2-orders), abort-if > 5`).
    fn check(&self) -> BoxFuture<'_, Result<(), String>>;

    /// Evaluates it at its interval from now on; resolves only when it trips.
    fn watch(&self) -> BoxFuture<'static, GuardTrip>;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signal::Signal;

    #[tokio::test]
    async fn the_first_reason_pulled_is_the_runs() {
        let line = StopLine::default();
        assert_eq!(line.reason(), None);
        let trip = GuardTrip {
            guard: "bystanders".into(),
            value: Some(31.0),
            seen: "prod-2-orders".into(),
            abort_if: "> 5".into(),
            evaluations: 2,
            at: firedrill_core::clock::PlatformTime::ZERO,
        };
        let waiting = tokio::spawn({
            let line = std::sync::Arc::new(line);
            let waiter = std::sync::Arc::clone(&line);
            let trip = trip.clone();
            async move {
                let pulled = tokio::spawn(async move { waiter.pulled().await });
                assert!(line.pull(Abort::Guard(trip)));
                assert!(!line.pull(Abort::Signal(Signal::from_raw(15))));
                pulled.await.expect("join")
            }
        });
        let reason = tokio::time::timeout(std::time::Duration::from_secs(10), waiting)
            .await
            .expect("the waiter wakes")
            .expect("join");
        assert_eq!(reason, Abort::Guard(trip));
    }
}
