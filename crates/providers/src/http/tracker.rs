//! [`Tracker`]: a probe's observations turned into its state and its milestones (first bad
//! answer, first good answer from a region, the service answering from it). Pure.

use firedrill_core::clock::PlatformTime;
use firedrill_core::names::{FIRST_BAD_ANSWER, MilestoneName};
use firedrill_core::observed::{Observation, ProbeState, Streak};

/// Most observations kept per probe for the report (25 minutes at one per second fits).
const HISTORY_LIMIT: usize = 20_000;

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
                        name: named(MilestoneName::FirstGoodAnswerFrom, &region),
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
                    name: named(MilestoneName::ServiceAnswersFrom, &region),
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
                    name: FIRST_BAD_ANSWER.to_owned(),
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

/// The milestone `name` of `region`; without a region (no region header) the name without
/// its ` from {region}`.
fn named(name: fn(String) -> MilestoneName, region: &str) -> String {
    let named = name(region.to_owned()).to_string();
    if region.is_empty() {
        named.trim_end_matches(" from ").to_owned()
    } else {
        named
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

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
