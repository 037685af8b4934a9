//! Milestones (named instants) and phases (timed intervals between two milestones).

use serde::{Deserialize, Serialize};

use crate::clock::PlatformTime;
use crate::target::Verdict;

/// The phases firedrill measures live with the milestone names they are measured between.
pub use crate::names::{PHASES, phase_names};

/// A named instant on the drill timeline, stamped when it was *observed*.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Milestone {
    /// `fault injected`, `outage detected`, `service answers from us-west2` …
    pub name: String,
    /// When it happened (platform time).
    pub at: PlatformTime,
    /// Who observed it: a probe's name, `command`, `engine`.
    pub source: String,
}

/// A measured interval with its target's verdict.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Phase {
    /// `failover`, `detection`, or `"a" → "b"`.
    pub name: String,
    /// The milestone it starts at.
    pub from: String,
    /// The milestone it ends at.
    pub to: String,
    /// Start (platform time).
    pub start: PlatformTime,
    /// End (platform time), absent when it never ended.
    pub end: Option<PlatformTime>,
    /// The verdict against its target.
    pub verdict: Option<Verdict>,
}

/// The milestones of one scenario, in the order they were observed.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Timeline {
    milestones: Vec<Milestone>,
}

impl Timeline {
    /// Records a milestone.
    pub fn record(&mut self, milestone: Milestone) {
        self.milestones.push(milestone);
    }

    /// All milestones, in observation order.
    #[must_use]
    pub fn milestones(&self) -> &[Milestone] {
        &self.milestones
    }

    /// The earliest milestone called `name`.
    #[must_use]
    pub fn first(&self, name: &str) -> Option<&Milestone> {
        self.milestones
            .iter()
            .filter(|m| m.name == name)
            .min_by_key(|m| m.at)
    }

    /// The earliest milestone called `name` at or after `t`.
    #[must_use]
    pub fn first_since(&self, name: &str, t: PlatformTime) -> Option<&Milestone> {
        self.milestones
            .iter()
            .filter(|m| m.name == name && m.at >= t)
            .min_by_key(|m| m.at)
    }

    /// The earliest milestone at or after `t` whose name satisfies `pred`.
    #[must_use]
    pub fn first_matching_since(
        &self,
        t: PlatformTime,
        pred: impl Fn(&str) -> bool,
    ) -> Option<&Milestone> {
        self.milestones
            .iter()
            .filter(|m| m.at >= t && pred(&m.name))
            .min_by_key(|m| m.at)
    }

    /// Names of every milestone recorded, deduplicated, for hints.
    #[must_use]
    pub fn names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.milestones.iter().map(|m| m.name.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        names
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn at(s: u64) -> PlatformTime {
        PlatformTime::from_offset(Duration::from_secs(s))
    }

    #[test]
    fn finds_the_earliest_occurrence_even_when_recorded_late() {
        let mut t = Timeline::default();
        t.record(Milestone {
            name: "x".into(),
            at: at(10),
            source: "probe".into(),
        });
        // A probe milestone is stamped with its observation time, which can precede
        // milestones recorded before it.
        t.record(Milestone {
            name: "x".into(),
            at: at(4),
            source: "probe".into(),
        });
        t.record(Milestone {
            name: "y".into(),
            at: at(7),
            source: "engine".into(),
        });
        assert_eq!(t.first("x").map(|m| m.at), Some(at(4)));
        assert_eq!(t.first_since("x", at(5)).map(|m| m.at), Some(at(10)));
        assert!(t.first_since("y", at(8)).is_none());
        assert_eq!(
            t.first_matching_since(at(5), |n| n.starts_with('y'))
                .map(|m| m.at),
            Some(at(7))
        );
        assert_eq!(t.names(), ["x", "y"]);
    }
}
