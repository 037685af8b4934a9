//! A probe running on a timer: [`spawn`] observes every `interval`, feeds a [`Tracker`] and
//! passes each milestone on as it is seen.

use std::sync::Arc;

use tokio::sync::watch;

use super::{ProbeMilestone, Tracker, observe};
use firedrill_core::clock::Clock;
use firedrill_core::observed::{Observation, ProbeState};
use firedrill_platform::Probe;

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
