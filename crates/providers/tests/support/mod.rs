//! What the providers' Mongo tests share: the milestones an observer reports, collected, and a
//! wait (with a deadline) for one of them.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use firedrill_core::clock::PlatformTime;
use firedrill_providers::mongo::observer::OnMilestone;

/// Milestones as `(name, when)`, in the order they were reported.
pub type Seen = Arc<Mutex<Vec<(String, PlatformTime)>>>;

/// A sink for milestones and what it collected.
pub fn collect() -> (Seen, OnMilestone) {
    let seen: Seen = Arc::default();
    let sink = Arc::clone(&seen);
    let on: OnMilestone = Arc::new(move |name: &str, at: PlatformTime, _: &str| {
        sink.lock().expect("lock").push((name.to_owned(), at));
    });
    (seen, on)
}

/// Waits (at most 30 s, looking every 5 ms) until `check` holds.
#[allow(dead_code)] // each test binary uses a different part of this module
pub async fn until(what: &str, check: impl FnMut() -> bool) {
    firedrill_testkit::Wait::new(what, Duration::from_secs(30))
        .every(Duration::from_millis(5))
        .until(check)
        .await;
}

/// When the first milestone named `name…` at or after `after` was seen (within `within`).
pub async fn wait_seen(
    seen: &Seen,
    name: &str,
    after: PlatformTime,
    within: Duration,
) -> PlatformTime {
    firedrill_testkit::Wait::new(format!("{name} observed"), within)
        .every(Duration::from_millis(5))
        .until(|| {
            let seen = seen.lock().expect("lock");
            seen.iter()
                .find(|(n, at)| n.starts_with(name) && *at >= after)
                .map(|(_, at)| *at)
                .ok_or_else(|| format!("{seen:?}"))
        })
        .await
}
