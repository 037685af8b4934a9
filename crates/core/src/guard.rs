//! A guard's judgement, pure: each evaluation gives a [`Reading`], a [`Tracker`] counts
//! consecutive breaches, and the `for`-th one is a [`GuardTrip`]. Where readings come from
//! (Prometheus, the platform's probes) is the providers' and steps' business.

use serde::{Deserialize, Serialize};

use crate::clock::PlatformTime;
use crate::threshold::{Comparison, Threshold};

/// What one evaluation saw.
#[derive(Clone, Debug, PartialEq)]
pub enum Reading {
    /// A value, and the series it belongs to (`{namespace="prod-2"}`, or the probes'
    /// names), the worst of several.
    Value {
        /// The value.
        value: f64,
        /// Which series, in words.
        series: String,
    },
    /// No value: no series, no probe answer in the window, or the source could not be asked.
    NoData(String),
}

impl Reading {
    /// The worst of several series' values for `threshold`: one that breaches if any does,
    /// else the one closest to breaching. `None` when there is none.
    #[must_use]
    pub fn worst(values: Vec<(f64, String)>, threshold: &Threshold) -> Option<Self> {
        let breaching = values
            .iter()
            .find(|(v, _)| threshold.holds_for(*v))
            .cloned();
        let closest = || {
            let by = |a: &(f64, String), b: &(f64, String)| a.0.total_cmp(&b.0);
            match threshold.comparison {
                Comparison::Above | Comparison::AtLeast => values.iter().max_by(|a, b| by(a, b)),
                Comparison::Below | Comparison::AtMost => values.iter().min_by(|a, b| by(a, b)),
                Comparison::Equal | Comparison::NotEqual => values.first(),
            }
            .cloned()
        };
        breaching
            .or_else(closest)
            .map(|(value, series)| Self::Value { value, series })
    }

    /// One line: `0.31 ({namespace="prod-2"})`, or why there was none.
    #[must_use]
    pub fn describe(&self) -> String {
        match self {
            Self::Value { value, series } if series.is_empty() => format_value(*value),
            Self::Value { value, series } => format!("{} ({series})", format_value(*value)),
            Self::NoData(why) => format!("no data: {why}"),
        }
    }
}

/// A value as reports print it: up to four decimals, no trailing zeros.
#[must_use]
pub fn format_value(value: f64) -> String {
    let text = format!("{value:.4}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    if text.is_empty() || text == "-" {
        "0".to_owned()
    } else {
        text.to_owned()
    }
}

/// Whether one evaluation breached, and after how many in a row the guard trips.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Judgement {
    /// The guard holds; the count of consecutive breaches starts over.
    Holds,
    /// Breached, `count` times in a row, not yet `for` times.
    Breached {
        /// Consecutive breaches so far.
        count: u32,
    },
    /// Breached `for` times in a row: the drill must stop.
    Tripped,
}

/// Counts one guard's consecutive breaches.
#[derive(Clone, Debug)]
pub struct Tracker {
    threshold: Threshold,
    consecutive: u32,
    no_data_breaches: bool,
    breaches: u32,
}

impl Tracker {
    /// A tracker tripping after `consecutive` breaches of `threshold` in a row; an evaluation
    /// without data counts as a breach when `no_data_breaches`.
    #[must_use]
    pub fn new(threshold: Threshold, consecutive: u32, no_data_breaches: bool) -> Self {
        Self {
            threshold,
            consecutive: consecutive.max(1),
            no_data_breaches,
            breaches: 0,
        }
    }

    /// Whether `reading` alone breaches.
    #[must_use]
    pub fn breaches(&self, reading: &Reading) -> bool {
        match reading {
            Reading::Value { value, .. } => self.threshold.holds_for(*value),
            Reading::NoData(_) => self.no_data_breaches,
        }
    }

    /// Records one evaluation.
    pub fn observe(&mut self, reading: &Reading) -> Judgement {
        if !self.breaches(reading) {
            self.breaches = 0;
            return Judgement::Holds;
        }
        self.breaches += 1;
        if self.breaches >= self.consecutive {
            Judgement::Tripped
        } else {
            Judgement::Breached {
                count: self.breaches,
            }
        }
    }
}

/// A guard that tripped: what the run's abort, its reports and its metrics carry.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GuardTrip {
    /// The guard's name in the platform file.
    pub guard: String,
    /// The value of the evaluation that tripped it; `None` when it had no data.
    pub value: Option<f64>,
    /// Which series the value belongs to, or why there was no data.
    pub seen: String,
    /// Its `abort-if`, as written (`> 14.4`).
    pub abort_if: String,
    /// Consecutive breached evaluations that tripped it (its `for`).
    pub evaluations: u32,
    /// When (platform time).
    pub at: PlatformTime,
}

impl GuardTrip {
    /// The trip of `guard` by `reading` at `at`.
    #[must_use]
    pub fn new(
        guard: &str,
        reading: &Reading,
        threshold: &Threshold,
        evaluations: u32,
        at: PlatformTime,
    ) -> Self {
        let (value, seen) = match reading {
            Reading::Value { value, series } => (Some(*value), series.clone()),
            Reading::NoData(why) => (None, format!("no data: {why}")),
        };
        Self {
            guard: guard.to_owned(),
            value,
            seen,
            abort_if: threshold.to_string(),
            evaluations,
            at,
        }
    }

    /// The milestone it records: `guard tripped: {guard}`.
    #[must_use]
    pub fn milestone(&self) -> String {
        format!("{GUARD_TRIPPED}{}", self.guard)
    }
}

/// The prefix of the milestone a tripped guard records.
pub const GUARD_TRIPPED: &str = "guard tripped: ";

impl GuardTrip {
    /// What it saw: `31.25 (prod-2-orders)`, or `no data: …`.
    #[must_use]
    pub fn observed(&self) -> String {
        match self.value {
            Some(value) if self.seen.is_empty() => format_value(value),
            Some(value) => format!("{} ({})", format_value(value), self.seen),
            None => self.seen.clone(),
        }
    }
}

impl std::fmt::Display for GuardTrip {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "guard \"{}\" tripped: {}, abort-if {}, {} evaluation(s) in a row",
            self.guard,
            self.observed(),
            self.abort_if,
            self.evaluations
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(v: f64) -> Reading {
        Reading::Value {
            value: v,
            series: String::new(),
        }
    }

    fn above(than: f64) -> Threshold {
        format!("> {than}").parse().expect("threshold")
    }

    #[test]
    fn it_trips_only_after_for_consecutive_breaches() {
        let mut tracker = Tracker::new(above(14.4), 3, true);
        assert_eq!(
            tracker.observe(&value(20.0)),
            Judgement::Breached { count: 1 }
        );
        assert_eq!(
            tracker.observe(&value(20.0)),
            Judgement::Breached { count: 2 }
        );
        // One good evaluation starts the count over.
        assert_eq!(tracker.observe(&value(1.0)), Judgement::Holds);
        assert_eq!(
            tracker.observe(&value(15.0)),
            Judgement::Breached { count: 1 }
        );
        assert_eq!(
            tracker.observe(&value(15.0)),
            Judgement::Breached { count: 2 }
        );
        assert_eq!(tracker.observe(&value(15.0)), Judgement::Tripped);
    }

    #[test]
    fn no_data_breaches_or_holds_as_the_guard_says() {
        let none = Reading::NoData("no series".into());
        let mut failing = Tracker::new(above(1.0), 1, true);
        assert_eq!(failing.observe(&none), Judgement::Tripped);
        let mut ignoring = Tracker::new(above(1.0), 1, false);
        assert_eq!(ignoring.observe(&none), Judgement::Holds);
    }

    #[test]
    fn the_worst_series_is_the_breaching_one_else_the_closest() {
        let series = |vals: &[(f64, &str)]| {
            vals.iter()
                .map(|(v, s)| (*v, (*s).to_owned()))
                .collect::<Vec<_>>()
        };
        let worst = Reading::worst(series(&[(0.1, "a"), (0.5, "b"), (0.3, "c")]), &above(0.4));
        assert_eq!(worst.map(|r| r.describe()), Some("0.5 (b)".to_owned()));
        let worst = Reading::worst(series(&[(0.1, "a"), (0.3, "c")]), &above(0.4));
        assert_eq!(worst.map(|r| r.describe()), Some("0.3 (c)".to_owned()));
        let below: Threshold = "< 0.99".parse().expect("threshold");
        let worst = Reading::worst(series(&[(0.999, "a"), (0.995, "b")]), &below);
        assert_eq!(worst.map(|r| r.describe()), Some("0.995 (b)".to_owned()));
        assert_eq!(Reading::worst(Vec::new(), &below), None);
    }

    #[test]
    fn a_trip_says_what_was_seen_against_what() {
        let trip = GuardTrip::new(
            "bystanders",
            &Reading::Value {
                value: 31.25,
                series: "prod-2-orders".into(),
            },
            &above(5.0),
            2,
            PlatformTime::ZERO,
        );
        assert_eq!(
            trip.to_string(),
            "guard \"bystanders\" tripped: 31.25 (prod-2-orders), abort-if > 5, 2 evaluation(s) in a row"
        );
        assert_eq!(trip.milestone(), "guard tripped: bystanders");
        assert_eq!(format_value(0.0), "0");
        assert_eq!(format_value(1.0 / 3.0), "0.3333");
    }
}
