//! A probe running on a timer: [`spawn`] observes every `interval`, feeds a [`Tracker`] and
//! passes each milestone on as it is seen.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

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
    /// Set once stopped. The task holds it while it records an observation (its state, then
    /// its milestones), so a stop waits for a recording in flight and nothing is recorded
    /// after it: the final counts include every answer whose milestone went out, and no
    /// milestone of this probe follows its final counts.
    stopped: Arc<Mutex<bool>>,
}

fn lock(stopped: &Mutex<bool>) -> MutexGuard<'_, bool> {
    stopped.lock().unwrap_or_else(PoisonError::into_inner)
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
        *lock(&self.stopped) = true;
        self.task.abort();
        self.state()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        *lock(&self.stopped) = true;
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
    let stopped = Arc::new(Mutex::new(false));
    let gate = Arc::clone(&stopped);
    let task = tokio::spawn(async move {
        let mut tracker = Tracker::new(probe.stable_after);
        let mut ticks = clock.interval(probe.interval);
        loop {
            ticks.tick().await;
            let obs = observe(&client, &probe, &clock).await;
            // Held until the observation is recorded; no await below.
            let stopped = lock(&gate);
            if *stopped {
                break;
            }
            // The milestones before the state: a step waiting on the state records what it
            // concludes (`outage detected`) after the milestone that caused it.
            for milestone in tracker.observe(obs.clone()) {
                on_milestone(&probe_name, milestone, &obs);
            }
            if tx.send(tracker.state().clone()).is_err() {
                break;
            }
            drop(stopped);
        }
    });
    Running {
        name: name.to_owned(),
        state: rx,
        task,
        stopped,
    }
}
