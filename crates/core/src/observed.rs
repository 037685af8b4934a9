//! What was observed during a drill: probe answers and what a probe has seen, and commands that
//! ran. Plain records, carried by the event stream to every report; the providers produce them.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::clock::PlatformTime;

/// One probe request and what came back.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Observation {
    /// When the request was sent (platform time).
    pub at: PlatformTime,
    /// Whether the answer counts as good.
    pub good: bool,
    /// HTTP status, absent when no answer came.
    pub status: Option<u16>,
    /// The serving region from the region header.
    pub region: Option<String>,
    /// Time to the answer (platform time).
    #[serde(with = "humantime_serde")]
    pub latency: Duration,
    /// Why it failed, when it did (connection refused, timeout, unexpected status…).
    pub error: Option<String>,
}

/// What a probe has seen so far.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ProbeState {
    /// Good answers.
    pub good: u64,
    /// Bad answers (errors, timeouts, unexpected answers).
    pub bad: u64,
    /// The latest observation.
    pub last: Option<Observation>,
    /// The current run of consecutive good answers from one region: region, length, start.
    pub streak: Option<Streak>,
    /// Observations, oldest first (capped).
    pub history: Vec<Observation>,
}

impl ProbeState {
    /// The `q` quantile (0–1, nearest rank) of the good answers' latency since `since`.
    #[must_use]
    pub fn latency_quantile(&self, q: f64, since: Option<PlatformTime>) -> Option<Duration> {
        let mut latencies: Vec<Duration> = self
            .history
            .iter()
            .filter(|o| o.good && since.is_none_or(|s| o.at >= s))
            .map(|o| o.latency)
            .collect();
        if latencies.is_empty() {
            return None;
        }
        latencies.sort_unstable();
        let rank = ((q.clamp(0.0, 1.0) * latencies.len() as f64).ceil() as usize).max(1);
        latencies.get(rank - 1).copied()
    }

    /// `good answers took 1.2s (p50), 2.4s (p95)` since `since`, or `None` without a good one.
    #[must_use]
    pub fn latency_summary(&self, since: Option<PlatformTime>) -> Option<String> {
        let p50 = self.latency_quantile(0.5, since)?;
        let p95 = self.latency_quantile(0.95, since)?;
        Some(format!(
            "good answers took {} (p50), {} (p95)",
            crate::clock::format_duration(p50),
            crate::clock::format_duration(p95)
        ))
    }
}

/// Consecutive good answers from one region.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Streak {
    /// The serving region (empty when the probe has no region header).
    pub region: String,
    /// How many in a row.
    pub length: u32,
    /// When the first of them was observed.
    pub since: PlatformTime,
}

/// A finished command.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Finished {
    /// Program and arguments as run.
    pub argv: Vec<String>,
    /// Exit code; absent when killed by a signal.
    pub exit_code: Option<i32>,
    /// The end of standard output.
    pub stdout: String,
    /// The end of standard error.
    pub stderr: String,
    /// When it started (platform time).
    pub started: PlatformTime,
    /// When it exited (platform time).
    pub finished: PlatformTime,
}

impl Finished {
    /// Whether it exited with 0.
    #[must_use]
    pub fn succeeded(&self) -> bool {
        self.exit_code == Some(0)
    }
}

/// An SLO assertion judged over Prometheus: the query, what was asserted, and every series
/// it judged, with their points on the platform timeline.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct QueryJudged {
    /// The query's name in the platform file, when the step named one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The PromQL.
    pub query: String,
    /// What was asserted: `stayed below 0.05 throughout`, `below 0.05 within 5m`.
    pub assertion: String,
    /// The number every point had to stay below.
    pub limit: f64,
    /// Whether it held.
    pub passed: bool,
    /// The start of the range judged (platform time).
    pub from: PlatformTime,
    /// Its end.
    pub to: PlatformTime,
    /// The series judged.
    pub series: Vec<JudgedSeries>,
    /// Why it failed, in words, when it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
}

/// One series of a [`QueryJudged`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JudgedSeries {
    /// Its labels as a PromQL selector (`{namespace="prod-2"}`).
    pub labels: String,
    /// `(platform time, value)`, oldest first; NaN values are left out.
    pub points: Vec<(PlatformTime, f64)>,
}
