//! The emergency halt as the run loop sees it: a marker read at an interval. The engine knows
//! no marker (a ConfigMap, a file): whoever builds the run hands it a [`Marker`] reader, and
//! the run loop's `select!` waits on [`halted`] beside the signals; a halt ends the run through
//! the same undo of everything it injected.

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;

use firedrill_core::clock::Clock;
use firedrill_core::halt::Halt;

/// Reads an estate's halt marker.
pub trait Marker: Send + Sync {
    /// Where it is, for messages (`ConfigMap firedrill/firedrill-halt in us-west1`).
    fn describe(&self) -> String;

    /// The halt in force now, if any. `Err` says why the marker could not be read.
    fn read(&self) -> BoxFuture<'_, Result<Option<Halt>, String>>;
}

/// A marker and how often a running drill reads it.
#[derive(Clone)]
pub struct Watch {
    /// The marker.
    pub marker: Arc<dyn Marker>,
    /// Time between two reads (platform time): the platform's probe interval.
    pub every: Duration,
}

impl std::fmt::Debug for Watch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watch")
            .field("marker", &self.marker.describe())
            .field("every", &self.every)
            .finish()
    }
}

/// Resolves with the halt once `watch`'s marker says halted, reading it every interval on
/// `clock`; never resolves without a watch. A marker that cannot be read is warned about (once
/// per outage) and read again: a drill is not stopped by the marker's own outage, only by a halt.
pub async fn halted(watch: Option<&Watch>, clock: Clock) -> Halt {
    let Some(watch) = watch else {
        return futures::future::pending().await;
    };
    let mut unreadable = false;
    loop {
        clock.sleep(watch.every).await;
        match watch.marker.read().await {
            Ok(Some(halt)) => return halt,
            Ok(None) => unreadable = false,
            Err(e) => {
                if !unreadable {
                    tracing::warn!(
                        "cannot read the halt marker ({}): {e}; the drill goes on and reads it again every {}",
                        watch.marker.describe(),
                        humantime::format_duration(watch.every)
                    );
                }
                unreadable = true;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// A marker whose answers the test scripts, one per read, the last one repeated.
    struct Scripted(Mutex<Vec<Result<Option<Halt>, String>>>, Mutex<usize>);

    impl Marker for Scripted {
        fn describe(&self) -> String {
            "scripted".into()
        }
        fn read(&self) -> BoxFuture<'_, Result<Option<Halt>, String>> {
            let mut answers = self.0.lock().expect("answers");
            *self.1.lock().expect("reads") += 1;
            let answer = if answers.len() > 1 {
                answers.remove(0)
            } else {
                answers[0].clone()
            };
            Box::pin(async move { answer })
        }
    }

    fn halt() -> Halt {
        Halt {
            reason: "incident 4711".into(),
            by: "alice".into(),
            at: String::new(),
        }
    }

    #[tokio::test]
    async fn a_halt_is_seen_past_an_unreadable_marker_at_the_next_read() {
        let marker = Arc::new(Scripted(
            Mutex::new(vec![
                Ok(None),
                Err("connection refused".into()),
                Ok(Some(halt())),
            ]),
            Mutex::new(0),
        ));
        let watch = Watch {
            marker: marker.clone(),
            every: Duration::from_secs(5),
        };
        let clock = Clock::scaled(1000.0).expect("clock");
        let seen = tokio::time::timeout(Duration::from_secs(10), halted(Some(&watch), clock))
            .await
            .expect("the halt is seen");
        assert_eq!(seen, halt());
        assert_eq!(
            *marker.1.lock().expect("reads"),
            3,
            "one read per interval, no more"
        );
    }

    #[tokio::test]
    async fn without_a_marker_nothing_halts() {
        let clock = Clock::scaled(1000.0).expect("clock");
        let waited = tokio::time::timeout(Duration::from_millis(50), halted(None, clock)).await;
        assert!(waited.is_err());
    }
}
