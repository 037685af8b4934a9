//! The `http` probe: one-shot and continuous observations of a service over HTTP.
//!
//! A probe answer is *good* when its status is expected and its body contains the expected
//! text; the region that served it comes from a response header. The [`Tracker`] turns the
//! stream of observations into milestones (pure, unit-tested); [`spawn`] runs it on a timer.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use firedrill_core::clock::{Clock, PlatformTime};
pub use firedrill_core::observed::{Observation, ProbeState, Streak};
use firedrill_platform::Probe;

/// The shortest wall-clock time a probe request is given, whatever the time scale.
const MIN_WALL_TIMEOUT: Duration = Duration::from_millis(500);

/// Most observations kept per probe for the report (25 minutes at one per second fits).
const HISTORY_LIMIT: usize = 20_000;

/// Builds the HTTP client probes use (no proxy from the environment: probes must reach the
/// service directly, and tests only talk to loopback).
///
/// # Errors
///
/// When the TLS backend cannot initialise.
pub fn client() -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(4)
        .build()
}

/// Sends one request now and judges the answer.
pub async fn observe(client: &reqwest::Client, probe: &Probe, clock: &Clock) -> Observation {
    let at = clock.now();
    let request = async {
        let response = client.get(&probe.url).send().await?;
        let status = response.status().as_u16();
        let region = probe
            .region_header
            .as_ref()
            .and_then(|h| response.headers().get(h))
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = response.text().await?;
        Ok::<_, reqwest::Error>((status, region, body))
    };
    // In compressed time a probe's timeout is a few wall milliseconds, less than a loaded
    // machine may take to schedule a loopback request; a floor of wall time keeps scheduling
    // noise from counting as an outage (the latency is still reported in platform time).
    let deadline = clock.to_wall(probe.timeout).max(MIN_WALL_TIMEOUT);
    let outcome = tokio::time::timeout(deadline, request).await;
    let latency = clock.now().saturating_since(at);
    match outcome {
        Ok(Ok((status, region, body))) => {
            let status_ok = probe.expect_status.contains(&status);
            let body_ok = probe
                .body_contains
                .as_ref()
                .is_none_or(|needle| body.contains(needle));
            let error = match (status_ok, body_ok) {
                (false, _) => Some(format!(
                    "status {status}, expected {:?}",
                    probe.expect_status
                )),
                (true, false) => Some("body lacks the expected text".to_owned()),
                (true, true) => None,
            };
            Observation {
                at,
                good: error.is_none(),
                status: Some(status),
                region,
                latency,
                error,
            }
        }
        Ok(Err(e)) => Observation {
            at,
            good: false,
            status: None,
            region: None,
            latency,
            error: Some(describe(&e)),
        },
        Err(_) => Observation {
            at,
            good: false,
            status: None,
            region: None,
            latency,
            error: Some("timed out".to_owned()),
        },
    }
}

fn describe(e: &reqwest::Error) -> String {
    if e.is_connect() {
        "connection refused or unreachable".to_owned()
    } else if e.is_timeout() {
        "timed out".to_owned()
    } else {
        let mut text = e.to_string();
        let mut source = std::error::Error::source(e);
        while let Some(s) = source {
            text = format!("{text}: {s}");
            source = s.source();
        }
        text
    }
}

/// A milestone a probe observed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProbeMilestone {
    /// `first bad answer`, `first good answer from us-west2`, `service answers from us-west2`.
    pub name: String,
    /// When the observation behind it was made.
    pub at: PlatformTime,
}

/// Turns observations into state and milestones. Pure.
#[derive(Debug)]
pub struct Tracker {
    stable_after: u32,
    state: ProbeState,
    was_good: Option<bool>,
}

impl Tracker {
    /// A tracker declaring a region answering after `stable_after` consecutive good answers.
    #[must_use]
    pub fn new(stable_after: u32) -> Self {
        Self {
            stable_after: stable_after.max(1),
            state: ProbeState::default(),
            was_good: None,
        }
    }

    /// The state so far.
    #[must_use]
    pub fn state(&self) -> &ProbeState {
        &self.state
    }

    /// Records one observation; returns the milestones it completes.
    pub fn observe(&mut self, obs: Observation) -> Vec<ProbeMilestone> {
        let mut milestones = Vec::new();
        let region = obs.region.clone().unwrap_or_default();
        if obs.good {
            self.state.good += 1;
            let streak = match self.state.streak.take() {
                Some(s) if s.region == region => Streak {
                    length: s.length + 1,
                    ..s
                },
                _ => {
                    milestones.push(ProbeMilestone {
                        name: named("first good answer", &region),
                        at: obs.at,
                    });
                    Streak {
                        region: region.clone(),
                        length: 1,
                        since: obs.at,
                    }
                }
            };
            if streak.length == self.stable_after {
                milestones.push(ProbeMilestone {
                    name: named("service answers", &region),
                    at: streak.since,
                });
            }
            self.state.streak = Some(streak);
        } else {
            self.state.bad += 1;
            self.state.streak = None;
            if self.was_good != Some(false) {
                // An answer is known to be bad when it arrives (or the request times out): a
                // request sent just before a fault acted comes back bad after it.
                milestones.push(ProbeMilestone {
                    name: "first bad answer".to_owned(),
                    at: obs.at.plus(obs.latency),
                });
            }
        }
        self.was_good = Some(obs.good);
        if self.state.history.len() == HISTORY_LIMIT {
            self.state.history.remove(0);
        }
        self.state.history.push(obs.clone());
        self.state.last = Some(obs);
        milestones
    }
}

fn named(what: &str, region: &str) -> String {
    if region.is_empty() {
        what.to_owned()
    } else {
        format!("{what} from {region}")
    }
}

/// Called with the probe's name, each milestone it observes and the observation behind it.
pub type OnMilestone = Arc<dyn Fn(&str, ProbeMilestone, &Observation) + Send + Sync>;

/// A probe running on a timer until dropped or stopped.
#[derive(Debug)]
pub struct Running {
    /// Its name in the platform file.
    pub name: String,
    state: watch::Receiver<ProbeState>,
    task: tokio::task::JoinHandle<()>,
}

impl Running {
    /// The latest state.
    #[must_use]
    pub fn state(&self) -> ProbeState {
        self.state.borrow().clone()
    }

    /// A receiver that wakes on every observation.
    #[must_use]
    pub fn subscribe(&self) -> watch::Receiver<ProbeState> {
        self.state.clone()
    }

    /// Stops probing and returns the final state.
    pub fn stop(self) -> ProbeState {
        self.task.abort();
        self.state()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts probing every `probe.interval`; each milestone is passed to `on_milestone` as it is
/// observed.
#[must_use]
pub fn spawn(
    name: &str,
    probe: Probe,
    client: reqwest::Client,
    clock: Clock,
    on_milestone: OnMilestone,
) -> Running {
    let (tx, rx) = watch::channel(ProbeState::default());
    let probe_name = name.to_owned();
    let task = tokio::spawn(async move {
        let mut tracker = Tracker::new(probe.stable_after);
        let mut ticks = clock.interval(probe.interval);
        loop {
            ticks.tick().await;
            let obs = observe(&client, &probe, &clock).await;
            for milestone in tracker.observe(obs.clone()) {
                on_milestone(&probe_name, milestone, &obs);
            }
            if tx.send(tracker.state().clone()).is_err() {
                break;
            }
        }
    });
    Running {
        name: name.to_owned(),
        state: rx,
        task,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obs(secs: u64, good: bool, region: &str) -> Observation {
        Observation {
            at: PlatformTime::from_offset(Duration::from_secs(secs)),
            good,
            status: Some(if good { 200 } else { 503 }),
            region: Some(region.to_owned()),
            latency: Duration::from_millis(5),
            error: None,
        }
    }

    fn names(ms: &[ProbeMilestone]) -> Vec<(&str, u64)> {
        ms.iter()
            .map(|m| (m.name.as_str(), m.at.offset().as_secs()))
            .collect()
    }

    #[test]
    fn a_bad_answer_is_stamped_when_it_arrives_not_when_it_was_asked() {
        let mut tracker = Tracker::new(3);
        tracker.observe(obs(0, true, "us-west1"));
        let slow = Observation {
            latency: Duration::from_secs(4),
            ..obs(10, false, "us-west1")
        };
        let milestones = tracker.observe(slow);
        assert_eq!(names(&milestones), vec![("first bad answer", 14)]);
    }

    #[test]
    fn tracks_outage_and_stable_recovery_in_the_new_region() {
        let mut tracker = Tracker::new(3);
        assert_eq!(
            names(&tracker.observe(obs(0, true, "us-west1"))),
            [("first good answer from us-west1", 0)]
        );
        tracker.observe(obs(5, true, "us-west1"));
        assert_eq!(
            names(&tracker.observe(obs(10, true, "us-west1"))),
            [("service answers from us-west1", 0)]
        );
        assert_eq!(
            names(&tracker.observe(obs(15, false, ""))),
            [("first bad answer", 15)]
        );
        assert!(
            tracker.observe(obs(20, false, "")).is_empty(),
            "only the first bad answer of an outage"
        );
        assert_eq!(
            names(&tracker.observe(obs(25, true, "us-west2"))),
            [("first good answer from us-west2", 25)]
        );
        // A blip restarts the streak: stability is counted from the answer after it.
        tracker.observe(obs(30, false, ""));
        tracker.observe(obs(35, true, "us-west2"));
        tracker.observe(obs(40, true, "us-west2"));
        // The milestone carries the time of the first answer of the stable streak.
        assert_eq!(
            names(&tracker.observe(obs(45, true, "us-west2"))),
            [("service answers from us-west2", 35)]
        );
        assert_eq!((tracker.state().good, tracker.state().bad), (7, 3));
    }

    #[test]
    fn a_region_change_without_outage_restarts_the_streak() {
        let mut tracker = Tracker::new(2);
        tracker.observe(obs(0, true, "us-west1"));
        tracker.observe(obs(1, true, "us-west1"));
        let ms = tracker.observe(obs(2, true, "us-west2"));
        assert_eq!(names(&ms), [("first good answer from us-west2", 2)]);
        assert_eq!(tracker.state().streak.as_ref().map(|s| s.length), Some(1));
    }
}
