//! The write checker: a continuous writer of sequence numbers into a firedrill-owned
//! collection, recording every acknowledged one; at the end it reads everything back and
//! reports the acknowledged writes that were lost (RPO), the write-unavailability windows and
//! the errors.
//!
//! Writes are paced on the platform clock and up to [`MAX_IN_FLIGHT`] are outstanding at once,
//! so a slow write (replication lag under w:majority, a driver waiting for a new primary) does
//! not slow the rate down; each write carries its own sequence number, taken when it is sent.
//! With writes in flight, a success may belong to a write sent *before* the outage began (it
//! was answered by the old primary), so only a write sent after the first failure can close an
//! unavailability window ([`Availability`]).

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bson::{Document, doc};
use futures::TryStreamExt as _;
use mongodb::options::{Acknowledgment, ReadConcern, WriteConcern};
use tokio::sync::{Semaphore, watch};
use tokio::task::{JoinHandle, JoinSet};

use super::observer::OnMilestone;
use super::{MongoError, Target};
use firedrill_core::clock::{Clock, PlatformTime};

/// Milestone: the first acknowledged write after an outage.
pub const WRITES_AVAILABLE: &str = firedrill_core::names::WRITES_AVAILABLE_AGAIN;

/// The database firedrill's check collections live in.
pub const DATABASE: &str = "firedrill";

/// Most writes a checker keeps outstanding. Enough to hide a w:majority round trip at 1,000
/// writes per second; bounded so an outage queues at most this many writes in the driver.
pub const MAX_IN_FLIGHT: usize = 64;

/// Most writes per *wall* second on a compressed clock: 50 platform writes per second would be
/// 10,000 per wall second at a time scale of 200, more than the embedded replica set can take
/// while the rest of the platform (and its topology observer, whose milestones a drill times)
/// shares two cores with it; at 200 the shipped drills' elections were already observed late.
/// The platform rate is lowered to fit. On the real clock the asked rate is the rate.
pub const MAX_COMPRESSED_WALL_RATE: f64 = 100.0;

/// How far (wall time) the writer may fall behind its schedule and still catch up.
const CATCH_UP: Duration = Duration::from_millis(100);

/// A write slower than this (platform time) counts as an outage from its start (the driver
/// blocks a write while it looks for a new primary rather than failing it). On a compressed
/// clock at least [`SLOW_WRITE_WALL`] of wall time, so driver latency is not an outage.
const SLOW_WRITE: Duration = Duration::from_secs(1);
/// See [`SLOW_WRITE`].
const SLOW_WRITE_WALL: Duration = Duration::from_millis(25);

/// The write concern the checker asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Concern {
    /// `w: "majority"`: an acknowledged write must survive any failover.
    Majority,
    /// `w: 1`: acknowledged by the primary alone; a rollback may lose it.
    One,
}

/// What the checker saw.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct WriteReport {
    /// Writes sent.
    pub sent: u64,
    /// Writes the database acknowledged.
    pub acknowledged: u64,
    /// Acknowledged sequence numbers that could not be read back.
    pub lost: Vec<i64>,
    /// Writes that failed (errors, timeouts).
    pub errors: u64,
    /// The sequence numbers of the failed writes (the server may still have applied them).
    pub failed: Vec<i64>,
    /// Every unavailability window, merged where they overlap: first failed (or slow) write →
    /// the first success of a write sent after that failure.
    pub windows: Vec<(PlatformTime, PlatformTime)>,
    /// The platform rate the checker paced itself at (the asked rate, lowered to
    /// [`MAX_COMPRESSED_WALL_RATE`] per wall second on a compressed clock).
    pub rate: f64,
}

impl WriteReport {
    /// The longest window of write unavailability.
    #[must_use]
    pub fn longest_unavailable(&self) -> Duration {
        self.windows
            .iter()
            .map(|(a, b)| b.saturating_since(*a))
            .max()
            .unwrap_or_default()
    }
}

/// The write-unavailability bookkeeping, pure so its rules are unit-tested.
///
/// A window opens at the send instant of the first failed write (moved earlier when a write
/// sent earlier fails later). It closes only at the acknowledgement of a write *sent after the
/// first failure was seen*: with writes in flight, an older write may still be acknowledged by
/// the old primary after the outage began, which proves nothing about availability now.
/// A successful write slower than the slow-write threshold is a window of its own (the driver
/// holds writes while it selects a new primary instead of failing them). Overlapping windows
/// are merged.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Availability {
    /// The open window: (its start, the instant its first failure was seen).
    open: Option<(PlatformTime, PlatformTime)>,
    closed: Vec<(PlatformTime, PlatformTime)>,
}

impl Availability {
    /// A write sent at `sent` failed at `at`.
    pub fn failed(&mut self, sent: PlatformTime, at: PlatformTime) {
        self.open = Some(match self.open {
            None => (sent, at),
            Some((start, seen)) => (start.min(sent), seen),
        });
    }

    /// A write sent at `sent` was acknowledged at `at`; `slow` is the slow-write threshold.
    /// Returns the instant writes became available again when this closes a window.
    pub fn succeeded(
        &mut self,
        sent: PlatformTime,
        at: PlatformTime,
        slow: Duration,
    ) -> Option<PlatformTime> {
        match self.open {
            Some((start, seen)) if sent >= seen => {
                self.open = None;
                self.closed.push((start, at));
                Some(at)
            }
            Some(_) => None,
            None if at.saturating_since(sent) > slow => match self.closed.last_mut() {
                // Writes in flight are slow together: one window, one "available again".
                Some(last) if sent <= last.1 => {
                    last.1 = last.1.max(at);
                    None
                }
                _ => {
                    self.closed.push((sent, at));
                    Some(at)
                }
            },
            None => None,
        }
    }

    /// Whether a window is open.
    #[must_use]
    pub fn is_open(&self) -> bool {
        self.open.is_some()
    }

    /// Every window, merged, an open one ending at `now`.
    #[must_use]
    pub fn windows(&self, now: PlatformTime) -> Vec<(PlatformTime, PlatformTime)> {
        let mut all = self.closed.clone();
        if let Some((start, _)) = self.open {
            all.push((start, now.max(start)));
        }
        all.sort();
        let mut merged: Vec<(PlatformTime, PlatformTime)> = Vec::with_capacity(all.len());
        for (a, b) in all {
            match merged.last_mut() {
                Some(last) if a <= last.1 => last.1 = last.1.max(b),
                _ => merged.push((a, b)),
            }
        }
        merged
    }
}

#[derive(Debug, Default)]
struct State {
    sent: u64,
    acked: BTreeSet<i64>,
    failed: Vec<i64>,
    availability: Availability,
}

/// A running write checker.
#[derive(Debug)]
pub struct Checker {
    target: Target,
    collection: String,
    clock: Clock,
    rate: f64,
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
    state: Arc<Mutex<State>>,
}

impl Drop for Checker {
    fn drop(&mut self) {
        if let Some(t) = &self.task {
            t.abort();
        }
    }
}

fn lock(state: &Mutex<State>) -> std::sync::MutexGuard<'_, State> {
    match state.lock() {
        Ok(s) => s,
        Err(poisoned) => poisoned.into_inner(),
    }
}

/// The platform period between two writes: `1 / rate`, lengthened on a compressed clock so
/// the wall rate stays at most [`MAX_COMPRESSED_WALL_RATE`].
#[must_use]
pub fn pace(rate: f64, clock: &Clock) -> Duration {
    let asked = Duration::from_secs_f64(1.0 / rate.clamp(0.001, 1e6));
    if clock.scale() > 1.0 {
        asked.max(clock.to_platform(Duration::from_secs_f64(1.0 / MAX_COMPRESSED_WALL_RATE)))
    } else {
        asked
    }
}

/// A collection name safe for MongoDB from a run id.
#[must_use]
pub fn collection_for(run: &str) -> String {
    let clean: String = run
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    format!("writecheck_{clean}")
}

impl Checker {
    /// Starts writing `rate` writes per platform second into `firedrill.<collection>` (see
    /// [`pace`] for the wall-rate cap on a compressed clock), with at most [`MAX_IN_FLIGHT`] writes outstanding.
    ///
    /// # Errors
    ///
    /// [`MongoError::Uri`] when the client cannot be built.
    pub async fn start(
        target: &Target,
        collection: &str,
        rate: f64,
        concern: Concern,
        clock: Clock,
        on_milestone: OnMilestone,
    ) -> Result<Self, MongoError> {
        let mut options = target.options().await?;
        // One connection per outstanding write, so the driver's pool does not queue them.
        options.max_pool_size = Some(MAX_IN_FLIGHT as u32);
        let client = mongodb::Client::with_options(options).map_err(|e| MongoError::Uri {
            database: target.database.clone(),
            message: target.clean(&super::describe(&e)),
        })?;
        let w = match concern {
            Concern::Majority => Acknowledgment::Majority,
            Concern::One => Acknowledgment::Nodes(1),
        };
        let wc = WriteConcern::builder()
            .w(w)
            .w_timeout(Duration::from_secs(10))
            .build();
        let coll = client.database(DATABASE).collection::<Document>(collection);
        let state = Arc::new(Mutex::new(State::default()));
        let (stop, stopped) = watch::channel(false);
        let period = pace(rate, &clock);
        let writer = Writer {
            coll,
            wc,
            clock,
            attempt_limit: clock
                .to_wall(Duration::from_secs(30))
                .max(Duration::from_secs(2)),
            slow_write: SLOW_WRITE.max(clock.to_platform(SLOW_WRITE_WALL)),
            source: Arc::from(format!("write checker {}", target.database)),
            state: Arc::clone(&state),
            on_milestone,
        };
        let task = tokio::spawn(writer.run(period, stopped));
        Ok(Self {
            target: target.clone(),
            collection: collection.to_owned(),
            clock,
            rate: 1.0 / period.as_secs_f64(),
            stop,
            task: Some(task),
            state,
        })
    }

    /// The platform rate this checker paces itself at.
    #[must_use]
    pub fn rate(&self) -> f64 {
        self.rate
    }

    /// Writes sent so far.
    #[must_use]
    pub fn sent(&self) -> u64 {
        lock(&self.state).sent
    }

    /// Acknowledged writes so far.
    #[must_use]
    pub fn acknowledged(&self) -> u64 {
        lock(&self.state).acked.len() as u64
    }

    /// Stops writing, waits for the writes in flight, reads every document back (majority read from the primary) and reports;
    /// then drops the collection, which firedrill owns.
    ///
    /// # Errors
    ///
    /// [`MongoError`] when the read-back fails.
    pub async fn finish(mut self) -> Result<WriteReport, MongoError> {
        // The writer stops sending and waits for its outstanding writes (each bounded by its
        // attempt limit), so every acknowledgement is recorded before the read-back.
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
        let client = self.target.client().await?;
        let coll = client
            .database(DATABASE)
            .collection::<Document>(&self.collection);
        let read_err = |e: mongodb::error::Error| MongoError::Command {
            database: self.target.database.clone(),
            command: "find",
            host: "the primary".into(),
            message: self.target.clean(&super::describe(&e)),
        };
        let cursor = coll
            .find(doc! {})
            .projection(doc! {"_id": 1})
            .read_concern(ReadConcern::majority())
            .await
            .map_err(read_err)?;
        let docs: Vec<Document> = cursor.try_collect().await.map_err(read_err)?;
        let present: BTreeSet<i64> = docs.iter().filter_map(|d| d.get_i64("_id").ok()).collect();
        let report = {
            let s = lock(&self.state);
            WriteReport {
                sent: s.sent,
                acknowledged: s.acked.len() as u64,
                lost: s.acked.difference(&present).copied().collect(),
                errors: s.failed.len() as u64,
                failed: s.failed.clone(),
                // Still failing at the end: the window is open until now.
                windows: s.availability.windows(self.clock.now()),
                rate: self.rate,
            }
        };
        // Best effort: a leftover check collection is harmless and named after the run.
        let _ = coll.drop().await;
        Ok(report)
    }
}

/// The sending side of a checker: paces sends on the platform clock, one task per write.
struct Writer {
    coll: mongodb::Collection<Document>,
    wc: WriteConcern,
    clock: Clock,
    /// Wall time one write may take before it counts as failed.
    attempt_limit: Duration,
    slow_write: Duration,
    source: Arc<str>,
    state: Arc<Mutex<State>>,
    on_milestone: OnMilestone,
}

impl Writer {
    /// Sends one write every `period` of platform time until `stopped` turns true, then waits
    /// for the writes in flight.
    async fn run(self, period: Duration, mut stopped: watch::Receiver<bool>) {
        let this = Arc::new(self);
        let slots = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
        let mut writes = JoinSet::new();
        let mut seq: i64 = 0;
        let mut next = this.clock.now();
        // A writer this far behind its schedule (slots full during an outage) starts the
        // schedule again from now instead of sending the backlog in a burst; less than that
        // (a coarse timer, a busy runtime) is caught up, so the rate holds on average.
        let slack = (period * 8).max(this.clock.to_platform(CATCH_UP));
        loop {
            tokio::select! {
                biased;
                _ = stopped.wait_for(|s| *s) => break,
                () = this.clock.sleep_until(next) => {}
            }
            let slot = tokio::select! {
                biased;
                _ = stopped.wait_for(|s| *s) => break,
                slot = Arc::clone(&slots).acquire_owned() => match slot {
                    Ok(slot) => slot,
                    Err(_) => break,
                },
            };
            while writes.try_join_next().is_some() {}
            seq += 1;
            let sent = this.clock.now();
            next = if sent.saturating_since(next) > slack {
                sent.plus(period)
            } else {
                next.plus(period)
            };
            lock(&this.state).sent += 1;
            let this = Arc::clone(&this);
            writes.spawn(async move {
                let _slot = slot;
                this.write(seq, sent).await;
            });
        }
        while writes.join_next().await.is_some() {}
    }

    /// One insert of `seq`, sent at `sent`, and its outcome recorded.
    async fn write(&self, seq: i64, sent: PlatformTime) {
        let result = tokio::time::timeout(
            self.attempt_limit,
            self.coll
                .insert_one(doc! {"_id": seq})
                .write_concern(self.wc.clone()),
        )
        .await;
        let at = self.clock.now();
        let recovered = {
            let mut s = lock(&self.state);
            if matches!(result, Ok(Ok(_))) {
                s.acked.insert(seq);
                s.availability.succeeded(sent, at, self.slow_write)
            } else {
                s.failed.push(seq);
                s.availability.failed(sent, at);
                None
            }
        };
        if let Some(at) = recovered {
            (self.on_milestone)(WRITES_AVAILABLE, at, &self.source);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(ms: u64) -> PlatformTime {
        PlatformTime::from_offset(Duration::from_millis(ms))
    }

    const SLOW: Duration = Duration::from_secs(1);

    #[test]
    fn a_success_of_a_write_sent_before_the_first_failure_does_not_close_the_window() {
        let mut a = Availability::default();
        // Write 1 sent at 100 fails at 300; write 0, sent at 90, is acknowledged at 310 by the
        // old primary: writes are not available again.
        a.failed(t(100), t(300));
        assert_eq!(a.succeeded(t(90), t(310), SLOW), None);
        assert!(a.is_open());
        // Write 2 was sent at 250, before the failure was seen: it proves nothing either.
        assert_eq!(a.succeeded(t(250), t(320), SLOW), None);
        // Write 3, sent at 400 after the failure, is acknowledged at 450: the window closes.
        assert_eq!(a.succeeded(t(400), t(450), SLOW), Some(t(450)));
        assert_eq!(a.windows(t(1000)), vec![(t(100), t(450))]);
    }

    #[test]
    fn the_window_starts_at_the_earliest_failed_write() {
        let mut a = Availability::default();
        a.failed(t(200), t(300));
        a.failed(t(150), t(320));
        assert_eq!(a.succeeded(t(330), t(400), SLOW), Some(t(400)));
        assert_eq!(a.windows(t(500)), vec![(t(150), t(400))]);
    }

    #[test]
    fn an_open_window_ends_now_and_overlapping_windows_merge() {
        let mut a = Availability::default();
        // A slow write (the driver held it while selecting a new primary) is a window.
        assert_eq!(a.succeeded(t(0), t(1_500), SLOW), Some(t(1_500)));
        // Another slow one in flight with it extends that window, without a second milestone.
        assert_eq!(a.succeeded(t(400), t(1_550), SLOW), None);
        // A fast one is not.
        assert_eq!(a.succeeded(t(1_000), t(1_100), SLOW), None);
        a.failed(t(1_200), t(1_600));
        // Open: it ends now, and overlaps the slow write's window.
        assert_eq!(a.windows(t(2_000)), vec![(t(0), t(2_000))]);
        assert_eq!(a.succeeded(t(1_700), t(1_800), SLOW), Some(t(1_800)));
        a.failed(t(3_000), t(3_100));
        assert_eq!(a.succeeded(t(3_200), t(3_300), SLOW), Some(t(3_300)));
        assert_eq!(
            a.windows(t(4_000)),
            vec![(t(0), t(1_800)), (t(3_000), t(3_300))]
        );
    }

    #[test]
    fn the_pace_keeps_the_wall_rate_under_the_cap() {
        let real = Clock::real();
        assert_eq!(pace(50.0, &real), Duration::from_millis(20));
        assert_eq!(pace(5_000.0, &real), Duration::from_micros(200));
        let fast = Clock::scaled(200.0).expect("scale");
        // 50 platform writes per second would be 10,000 per wall second: lowered to one per
        // 2 platform seconds, 100 per wall second.
        assert_eq!(pace(50.0, &fast), Duration::from_secs(2));
        assert_eq!(pace(0.25, &fast), Duration::from_secs(4));
    }
}
