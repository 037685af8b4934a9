//! The write checker: a continuous writer of sequence numbers into a firedrill-owned
//! collection, recording every acknowledged one; at the end it reads everything back and
//! reports the acknowledged writes that were lost (RPO), the write-unavailability windows and
//! the errors.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bson::{Document, doc};
use futures::TryStreamExt as _;
use mongodb::options::{Acknowledgment, ReadConcern, WriteConcern};
use tokio::task::JoinHandle;

use super::observer::OnMilestone;
use super::{MongoError, Target};
use crate::drill::clock::{Clock, PlatformTime};

/// Milestone: the first acknowledged write after an outage.
pub const WRITES_AVAILABLE: &str = "writes available again";

/// The database firedrill's check collections live in.
pub const DATABASE: &str = "firedrill";

/// The fewest wall milliseconds between two writes: at a compressed clock, 50 platform writes
/// per second would be thousands per wall second; the checker writes at most 100 per wall
/// second, which at a time scale of 200 is one write per 2 platform seconds.
const WALL_FLOOR: Duration = Duration::from_millis(10);

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
    /// Writes the database acknowledged.
    pub acknowledged: u64,
    /// Acknowledged sequence numbers that could not be read back.
    pub lost: Vec<i64>,
    /// Writes that failed (errors, timeouts).
    pub errors: u64,
    /// Every unavailability window: first failed (or slow) write → next success.
    pub windows: Vec<(PlatformTime, PlatformTime)>,
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

#[derive(Debug, Default)]
struct State {
    acked: BTreeSet<i64>,
    errors: u64,
    outage_since: Option<PlatformTime>,
    windows: Vec<(PlatformTime, PlatformTime)>,
}

/// A running write checker.
#[derive(Debug)]
pub struct Checker {
    target: Target,
    collection: String,
    clock: Clock,
    stop: Arc<AtomicBool>,
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
    /// Starts writing `rate` writes per platform second into `firedrill.<collection>`.
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
        let client = target.client().await?;
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
        let stop = Arc::new(AtomicBool::new(false));
        let period = Duration::from_secs_f64(1.0 / rate.max(0.001));
        let wall_period = clock.to_wall(period).max(WALL_FLOOR);
        let attempt_limit = clock
            .to_wall(Duration::from_secs(30))
            .max(Duration::from_secs(2));
        let slow_write = SLOW_WRITE.max(clock.to_platform(SLOW_WRITE_WALL));
        let source = format!("write checker {}", target.database);
        let task = {
            let state = Arc::clone(&state);
            let stop = Arc::clone(&stop);
            tokio::spawn(async move {
                // Wall-time ticks: see WALL_FLOOR; the period is the platform rate otherwise.
                let mut ticks = tokio::time::interval(wall_period);
                ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
                let mut seq: i64 = 0;
                while !stop.load(Ordering::SeqCst) {
                    ticks.tick().await;
                    seq += 1;
                    let started = clock.now();
                    let result = tokio::time::timeout(
                        attempt_limit,
                        coll.insert_one(doc! {"_id": seq}).write_concern(wc.clone()),
                    )
                    .await;
                    let at = clock.now();
                    let ok = matches!(result, Ok(Ok(_)));
                    let mut recovered = None;
                    {
                        let mut s = lock(&state);
                        if ok {
                            s.acked.insert(seq);
                            let slow = at.saturating_since(started) > slow_write;
                            let since = s.outage_since.take().or(slow.then_some(started));
                            if let Some(since) = since {
                                s.windows.push((since, at));
                                recovered = Some(at);
                            }
                        } else {
                            s.errors += 1;
                            if s.outage_since.is_none() {
                                s.outage_since = Some(started);
                            }
                        }
                    }
                    if let Some(at) = recovered {
                        on_milestone(WRITES_AVAILABLE, at, &source);
                    }
                }
            })
        };
        Ok(Self {
            target: target.clone(),
            collection: collection.to_owned(),
            clock,
            stop,
            task: Some(task),
            state,
        })
    }

    /// Acknowledged writes so far.
    #[must_use]
    pub fn acknowledged(&self) -> u64 {
        lock(&self.state).acked.len() as u64
    }

    /// Stops writing, reads every document back (majority read from the primary) and reports;
    /// then drops the collection, which firedrill owns.
    ///
    /// # Errors
    ///
    /// [`MongoError`] when the read-back fails.
    pub async fn finish(mut self) -> Result<WriteReport, MongoError> {
        self.stop.store(true, Ordering::SeqCst);
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
            message: self.target.clean(&e.to_string()),
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
            let mut windows = s.windows.clone();
            if let Some(since) = s.outage_since {
                // Still failing at the end: the window is open until now.
                windows.push((since, self.clock.now()));
            }
            WriteReport {
                acknowledged: s.acked.len() as u64,
                lost: s.acked.difference(&present).copied().collect(),
                errors: s.errors,
                windows,
            }
        };
        // Best effort: a leftover check collection is harmless and named after the run.
        let _ = coll.drop().await;
        Ok(report)
    }
}
