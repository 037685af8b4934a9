//! Typed toxic specifications, validated before anything is sent to Toxiproxy.

use super::error::Error;
use serde_json::{Map, Value};
use std::fmt;
use std::time::Duration;

/// Longest delay a toxic may ask for; anything longer is a typo, not a drill.
const MAX_MS: i64 = 3_600_000;
/// Largest bandwidth worth limiting to (10 GB/s).
const MAX_RATE_KB: i64 = 10_000_000;
/// Largest slicer piece; Toxiproxy reads at most 32 KiB at a time anyway.
const MAX_SLICE: i64 = 1 << 20;
/// Longest slicer delay between pieces (one minute, in µs).
const MAX_SLICER_DELAY_US: i64 = 60_000_000;
/// Largest limit_data (1 TiB).
const MAX_LIMIT_BYTES: i64 = 1 << 40;

/// The stream a toxic acts on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Stream {
    /// Client → server.
    Upstream,
    /// Server → client (Toxiproxy's default).
    Downstream,
}

impl Stream {
    /// The wire name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Upstream => "upstream",
            Self::Downstream => "downstream",
        }
    }
}

impl fmt::Display for Stream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A toxic type with its attributes in the units of the Toxiproxy API. Values are signed like
/// the API's so that a negative value coming from a drill is reported, not wrapped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ToxicKind {
    /// Adds `latency_ms` ± `jitter_ms` to every chunk.
    Latency {
        /// Milliseconds.
        latency_ms: i64,
        /// Milliseconds, at most `latency_ms`.
        jitter_ms: i64,
    },
    /// Limits throughput.
    Bandwidth {
        /// KB/s (1 KB = 1000 bytes), at least 1.
        rate_kb_per_s: i64,
    },
    /// Delays the close of the connection.
    SlowClose {
        /// Milliseconds.
        delay_ms: i64,
    },
    /// Drops all data; closes the connection after the timeout (never when 0).
    Timeout {
        /// Milliseconds.
        timeout_ms: i64,
    },
    /// Resets the connection (TCP RST) after the timeout once data arrives.
    ResetPeer {
        /// Milliseconds.
        timeout_ms: i64,
    },
    /// Slices data into small pieces with a delay between them.
    Slicer {
        /// Bytes.
        average_size: i64,
        /// Bytes, less than `average_size`.
        size_variation: i64,
        /// Microseconds.
        delay_us: i64,
    },
    /// Closes the connection after this many bytes.
    LimitData {
        /// Bytes.
        bytes: i64,
    },
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl ToxicKind {
    /// A latency toxic from durations.
    #[must_use]
    pub fn latency(latency: Duration, jitter: Duration) -> Self {
        Self::Latency {
            latency_ms: millis(latency),
            jitter_ms: millis(jitter),
        }
    }

    /// A timeout toxic from a duration (zero: never close).
    #[must_use]
    pub fn timeout(timeout: Duration) -> Self {
        Self::Timeout {
            timeout_ms: millis(timeout),
        }
    }

    /// A reset_peer toxic from a duration.
    #[must_use]
    pub fn reset_peer(after: Duration) -> Self {
        Self::ResetPeer {
            timeout_ms: millis(after),
        }
    }

    /// The Toxiproxy type name.
    #[must_use]
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::Latency { .. } => "latency",
            Self::Bandwidth { .. } => "bandwidth",
            Self::SlowClose { .. } => "slow_close",
            Self::Timeout { .. } => "timeout",
            Self::ResetPeer { .. } => "reset_peer",
            Self::Slicer { .. } => "slicer",
            Self::LimitData { .. } => "limit_data",
        }
    }

    /// The attributes under their wire names.
    #[must_use]
    pub fn attributes(&self) -> Vec<(&'static str, i64)> {
        match *self {
            Self::Latency {
                latency_ms,
                jitter_ms,
            } => vec![("latency", latency_ms), ("jitter", jitter_ms)],
            Self::Bandwidth { rate_kb_per_s } => vec![("rate", rate_kb_per_s)],
            Self::SlowClose { delay_ms } => vec![("delay", delay_ms)],
            Self::Timeout { timeout_ms } | Self::ResetPeer { timeout_ms } => {
                vec![("timeout", timeout_ms)]
            }
            Self::Slicer {
                average_size,
                size_variation,
                delay_us,
            } => vec![
                ("average_size", average_size),
                ("size_variation", size_variation),
                ("delay", delay_us),
            ],
            Self::LimitData { bytes } => vec![("bytes", bytes)],
        }
    }

    /// The attributes as a JSON object.
    #[must_use]
    pub fn attributes_json(&self) -> Map<String, Value> {
        self.attributes()
            .into_iter()
            .map(|(k, v)| (k.to_owned(), Value::from(v)))
            .collect()
    }
}

/// A toxic to add: the caller picks a name unique on the proxy (the undo removes it by name).
#[derive(Clone, Debug, PartialEq)]
pub struct ToxicSpec {
    /// Unique on the proxy; letters, digits, `-`, `_` and `.`.
    pub name: String,
    /// The stream it acts on.
    pub stream: Stream,
    /// Probability (0..=1) that the toxic applies to a connection.
    pub toxicity: f32,
    /// Type and attributes.
    pub kind: ToxicKind,
}

impl ToxicSpec {
    /// A toxic that applies to every connection.
    #[must_use]
    pub fn new(name: impl Into<String>, stream: Stream, kind: ToxicKind) -> Self {
        Self {
            name: name.into(),
            stream,
            toxicity: 1.0,
            kind,
        }
    }

    /// The same toxic with another toxicity.
    #[must_use]
    pub fn with_toxicity(mut self, toxicity: f32) -> Self {
        self.toxicity = toxicity;
        self
    }

    /// The JSON body of `POST /proxies/{proxy}/toxics`.
    #[must_use]
    pub fn to_json(&self) -> Value {
        serde_json::json!({
            "name": self.name,
            "type": self.kind.type_name(),
            "stream": self.stream.as_str(),
            "toxicity": self.toxicity,
            "attributes": self.kind.attributes_json(),
        })
    }

    /// Checks the name, the toxicity and every attribute; no I/O.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidToxic`] naming the attribute, its value and what would be acceptable.
    pub fn validate(&self) -> Result<(), Error> {
        let invalid = |attribute: &'static str, value: String, hint: &str| Error::InvalidToxic {
            toxic: self.name.clone(),
            attribute,
            value,
            hint: format!("hint: {hint}"),
        };
        let name_ok = !self.name.is_empty()
            && self.name.len() <= 200
            && self
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if !name_ok {
            return Err(invalid(
                "name",
                format!("{:?}", self.name),
                "1 to 200 letters, digits, '-', '_' or '.', unique on the proxy",
            ));
        }
        if !self.toxicity.is_finite() || !(0.0..=1.0).contains(&self.toxicity) {
            return Err(invalid(
                "toxicity",
                self.toxicity.to_string(),
                "a probability between 0 and 1; 1 applies the toxic to every connection",
            ));
        }
        let range = |attribute: &'static str, value: i64, min: i64, max: i64, hint: &str| {
            if (min..=max).contains(&value) {
                Ok(())
            } else {
                Err(invalid(attribute, value.to_string(), hint))
            }
        };
        match self.kind {
            ToxicKind::Latency {
                latency_ms,
                jitter_ms,
            } => {
                range(
                    "latency",
                    latency_ms,
                    0,
                    MAX_MS,
                    "milliseconds between 0 and 3600000 (1 hour)",
                )?;
                range(
                    "jitter",
                    jitter_ms,
                    0,
                    latency_ms,
                    "milliseconds between 0 and the latency; the delay is latency ± jitter",
                )?;
            }
            ToxicKind::Bandwidth { rate_kb_per_s } => range(
                "rate",
                rate_kb_per_s,
                1,
                MAX_RATE_KB,
                "KB/s between 1 and 10000000; Toxiproxy treats 0 as unlimited, use a timeout toxic with timeout 0 to stop data",
            )?,
            ToxicKind::SlowClose { delay_ms } => {
                range(
                    "delay",
                    delay_ms,
                    0,
                    MAX_MS,
                    "milliseconds between 0 and 3600000 (1 hour)",
                )?;
            }
            ToxicKind::Timeout { timeout_ms } => range(
                "timeout",
                timeout_ms,
                0,
                MAX_MS,
                "milliseconds between 0 (drop data, never close) and 3600000 (1 hour)",
            )?,
            ToxicKind::ResetPeer { timeout_ms } => range(
                "timeout",
                timeout_ms,
                0,
                MAX_MS,
                "milliseconds between 0 (reset at once) and 3600000 (1 hour)",
            )?,
            ToxicKind::Slicer {
                average_size,
                size_variation,
                delay_us,
            } => {
                range(
                    "average_size",
                    average_size,
                    1,
                    MAX_SLICE,
                    "bytes between 1 and 1048576",
                )?;
                range(
                    "size_variation",
                    size_variation,
                    0,
                    average_size - 1,
                    "bytes, at least 0 and less than average_size",
                )?;
                range(
                    "delay",
                    delay_us,
                    0,
                    MAX_SLICER_DELAY_US,
                    "microseconds between 0 and 60000000 (1 minute)",
                )?;
            }
            ToxicKind::LimitData { bytes } => {
                range(
                    "bytes",
                    bytes,
                    0,
                    MAX_LIMIT_BYTES,
                    "bytes between 0 and 1099511627776 (1 TiB)",
                )?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rejected(spec: &ToxicSpec) -> (&'static str, String) {
        match spec.validate() {
            Err(Error::InvalidToxic {
                attribute, hint, ..
            }) => (attribute, hint),
            other => panic!("expected InvalidToxic for {spec:?}, got {other:?}"),
        }
    }

    #[test]
    fn accepts_ordinary_toxics() {
        for kind in [
            ToxicKind::latency(Duration::from_millis(300), Duration::from_millis(20)),
            ToxicKind::Bandwidth { rate_kb_per_s: 100 },
            ToxicKind::SlowClose { delay_ms: 1000 },
            ToxicKind::timeout(Duration::ZERO),
            ToxicKind::reset_peer(Duration::from_millis(10)),
            ToxicKind::Slicer {
                average_size: 100,
                size_variation: 10,
                delay_us: 50,
            },
            ToxicKind::LimitData { bytes: 0 },
        ] {
            let spec = ToxicSpec::new("drill-1", Stream::Downstream, kind);
            assert!(spec.validate().is_ok(), "{spec:?} rejected");
        }
    }

    #[test]
    fn rejects_negative_and_absurd_values_naming_the_attribute() {
        let latency = |l, j| {
            ToxicSpec::new(
                "t",
                Stream::Upstream,
                ToxicKind::Latency {
                    latency_ms: l,
                    jitter_ms: j,
                },
            )
        };
        assert_eq!(rejected(&latency(-1, 0)).0, "latency");
        assert_eq!(rejected(&latency(MAX_MS + 1, 0)).0, "latency");
        assert_eq!(rejected(&latency(100, 200)).0, "jitter");
        assert_eq!(rejected(&latency(100, 0).with_toxicity(1.5)).0, "toxicity");
        assert_eq!(
            rejected(&latency(100, 0).with_toxicity(f32::NAN)).0,
            "toxicity"
        );
        let (attribute, hint) = rejected(&ToxicSpec::new(
            "t",
            Stream::Upstream,
            ToxicKind::Bandwidth { rate_kb_per_s: 0 },
        ));
        assert_eq!(attribute, "rate");
        assert!(hint.contains("hint:"), "no hint in {hint:?}");
        let slicer = ToxicSpec::new(
            "t",
            Stream::Upstream,
            ToxicKind::Slicer {
                average_size: 10,
                size_variation: 10,
                delay_us: 0,
            },
        );
        assert_eq!(rejected(&slicer).0, "size_variation");
        assert_eq!(
            rejected(&ToxicSpec::new(
                "a/b",
                Stream::Upstream,
                ToxicKind::LimitData { bytes: 1 }
            ))
            .0,
            "name"
        );
        assert_eq!(
            rejected(&ToxicSpec::new(
                "t",
                Stream::Upstream,
                ToxicKind::LimitData { bytes: -5 }
            ))
            .0,
            "bytes"
        );
    }
}
