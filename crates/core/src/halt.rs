//! The emergency halt: one marker per estate that says "no drill runs here now", with who set
//! it and why. Pure: the marker's content and how it reads; where it lives (a ConfigMap, a
//! file) is the providers' business.
//!
//! A marker that exists is a halt unless it says `state: resumed`: a person in a hurry can halt
//! every drill with `kubectl create configmap firedrill-halt -n firedrill`, with no reason
//! written, and firedrill obeys.

use serde::{Deserialize, Serialize};

/// The state a marker says an estate is in.
pub const HALTED: &str = "halted";
/// The state a marker says after `firedrill resume`.
pub const RESUMED: &str = "resumed";
/// How many records a marker's history keeps (the newest).
pub const HISTORY: usize = 50;

/// One halt or resume: who, why, when.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// [`HALTED`] or [`RESUMED`].
    pub state: String,
    /// Why, as given with `--reason`.
    pub reason: String,
    /// Who (`--by`, else `user@host`).
    pub by: String,
    /// When, wall clock, RFC 3339.
    pub at: String,
}

/// A halt in force: what stops a running drill and refuses a new one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Halt {
    /// Why.
    pub reason: String,
    /// Who.
    pub by: String,
    /// When, wall clock, RFC 3339 (empty when the marker did not say).
    pub at: String,
}

impl std::fmt::Display for Halt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "emergency halt by {}", self.by)?;
        if !self.at.is_empty() {
            write!(f, " at {}", self.at)?;
        }
        write!(f, ": \"{}\"", self.reason)
    }
}

/// A marker's content: its current state and the records that led there, oldest first.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Marker {
    /// The current state; anything but [`RESUMED`] is a halt.
    #[serde(default)]
    pub state: String,
    /// Why the current state was set.
    #[serde(default)]
    pub reason: String,
    /// Who set it.
    #[serde(default)]
    pub by: String,
    /// When.
    #[serde(default)]
    pub at: String,
    /// Earlier halts and resumes, oldest first, at most [`HISTORY`].
    #[serde(default)]
    pub history: Vec<Record>,
}

impl Marker {
    /// The halt this marker puts in force, if any: every state but [`RESUMED`] is one (fail
    /// closed: a marker someone wrote by hand halts).
    #[must_use]
    pub fn halt(&self) -> Option<Halt> {
        if self.state == RESUMED {
            return None;
        }
        let or = |s: &str, default: &str| {
            if s.trim().is_empty() {
                default.to_owned()
            } else {
                s.to_owned()
            }
        };
        Some(Halt {
            reason: or(&self.reason, "no reason given"),
            by: or(&self.by, "someone (the marker does not say)"),
            at: self.at.clone(),
        })
    }

    /// This marker after `record` (a halt or a resume): the record becomes the current state,
    /// the one before it goes to the history.
    #[must_use]
    pub fn then(mut self, record: Record) -> Self {
        if !self.state.is_empty() {
            self.history.push(Record {
                state: std::mem::take(&mut self.state),
                reason: std::mem::take(&mut self.reason),
                by: std::mem::take(&mut self.by),
                at: std::mem::take(&mut self.at),
            });
        }
        let excess = self.history.len().saturating_sub(HISTORY);
        self.history.drain(..excess);
        Self {
            state: record.state,
            reason: record.reason,
            by: record.by,
            at: record.at,
            history: self.history,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(state: &str, by: &str) -> Record {
        Record {
            state: state.into(),
            reason: format!("{state} by {by}"),
            by: by.into(),
            at: "2026-12-03T17:00:00Z".into(),
        }
    }

    #[test]
    fn only_a_resumed_marker_lets_drills_run() {
        assert_eq!(
            Marker::default().halt().map(|h| h.reason),
            Some("no reason given".into())
        );
        let halted = Marker::default().then(record(HALTED, "alice"));
        assert_eq!(
            halted.halt(),
            Some(Halt {
                reason: "halted by alice".into(),
                by: "alice".into(),
                at: "2026-12-03T17:00:00Z".into()
            })
        );
        let resumed = halted.then(record(RESUMED, "bob"));
        assert_eq!(resumed.halt(), None);
        let garbled = Marker {
            state: "HALT NOW".into(),
            ..Marker::default()
        };
        assert!(garbled.halt().is_some(), "an unknown state is a halt");
    }

    #[test]
    fn the_history_keeps_who_and_why_newest_last_and_bounded() {
        let mut marker = Marker::default();
        for i in 0..(HISTORY + 10) {
            let state = if i % 2 == 0 { HALTED } else { RESUMED };
            marker = marker.then(record(state, &format!("op{i}")));
        }
        assert_eq!(marker.history.len(), HISTORY);
        assert_eq!(marker.by, format!("op{}", HISTORY + 9));
        assert_eq!(
            marker.history.last().map(|r| r.by.clone()),
            Some(format!("op{}", HISTORY + 8))
        );
        assert_eq!(marker.state, RESUMED);
    }
}
