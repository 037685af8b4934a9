//! Time budgets (targets) and the verdicts that compare a measured duration with them.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use crate::clock::format_duration;

/// A duration as drills and platform files write it: `90s`, `5m`, `25 minutes`, `1h 30m`.
///
/// # Errors
///
/// [`TargetError::Duration`] naming the text and the accepted forms.
pub fn parse_duration(text: &str) -> Result<Duration, TargetError> {
    humantime::parse_duration(text.trim())
        .map_err(|_| TargetError::Duration(text.trim().to_owned()))
}

/// What is wrong with a written target or duration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    /// Not a duration.
    #[error("\"{0}\" is not a duration (hint: write it like 90s, 5m, 25m or 25 minutes)")]
    Duration(String),
    /// A band whose lower bound exceeds its upper bound.
    #[error(
        "the band {low}..{high} has its lower bound above its upper bound (hint: write the shorter duration first, e.g. 20m..25m)"
    )]
    InvertedBand {
        /// The lower bound as written.
        low: String,
        /// The upper bound as written.
        high: String,
    },
    /// A zero budget can never be met.
    #[error("a target of zero can never be met (hint: give a positive duration, e.g. within 2m)")]
    Zero,
}

impl TargetError {
    /// The message without its hint, and the hint, for diagnostics that show them apart.
    #[must_use]
    pub fn parts(&self) -> (String, &'static str) {
        match self {
            TargetError::Duration(text) => (
                format!("\"{text}\" is not a duration"),
                "write it like 90s, 5m, 25m or 25 minutes",
            ),
            TargetError::InvertedBand { low, high } => (
                format!("the band {low}..{high} has its lower bound above its upper bound"),
                "write the shorter duration first, e.g. 20m..25m",
            ),
            TargetError::Zero => (
                "a target of zero can never be met".to_owned(),
                "give a positive duration, e.g. within 2m",
            ),
        }
    }
}

/// A time budget for a phase.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// At most this long.
    Within {
        /// The budget.
        limit: Duration,
    },
    /// Expected to land inside this band (both ends inclusive).
    Band {
        /// The shortest expected duration.
        low: Duration,
        /// The longest acceptable duration.
        high: Duration,
    },
}

impl Target {
    /// Compares a measured duration with the target.
    #[must_use]
    pub fn judge(&self, measured: Duration) -> Verdict {
        let (passed, margin_ms) = match *self {
            Target::Within { limit } => (measured <= limit, signed_ms(limit) - signed_ms(measured)),
            Target::Band { low, high } => {
                let above_low = signed_ms(measured) - signed_ms(low);
                let below_high = signed_ms(high) - signed_ms(measured);
                (
                    measured >= low && measured <= high,
                    above_low.min(below_high),
                )
            }
        };
        Verdict {
            measured,
            target: *self,
            passed,
            margin_ms,
        }
    }

    /// The upper bound: the longest a phase may take before it has certainly missed the target.
    #[must_use]
    pub fn upper(&self) -> Duration {
        match *self {
            Target::Within { limit } => limit,
            Target::Band { high, .. } => high,
        }
    }

    /// The lower bound (zero for `within`).
    #[must_use]
    pub fn lower(&self) -> Duration {
        match *self {
            Target::Within { .. } => Duration::ZERO,
            Target::Band { low, .. } => low,
        }
    }
}

fn signed_ms(d: Duration) -> i128 {
    i128::try_from(d.as_millis()).unwrap_or(i128::MAX)
}

impl FromStr for Target {
    type Err = TargetError;

    /// `25m`, `within 25m`, or a band `20m..25m`.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        let text = text.strip_prefix("within ").unwrap_or(text);
        if let Some((low_text, high_text)) = text.split_once("..") {
            let low = parse_duration(low_text)?;
            let high = parse_duration(high_text)?;
            if low > high {
                return Err(TargetError::InvertedBand {
                    low: low_text.trim().to_owned(),
                    high: high_text.trim().to_owned(),
                });
            }
            if high.is_zero() {
                return Err(TargetError::Zero);
            }
            return Ok(Target::Band { low, high });
        }
        let limit = parse_duration(text)?;
        if limit.is_zero() {
            return Err(TargetError::Zero);
        }
        Ok(Target::Within { limit })
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Within { limit } => write!(f, "within {}", format_duration(*limit)),
            Target::Band { low, high } => {
                write!(f, "{}..{}", format_duration(*low), format_duration(*high))
            }
        }
    }
}

/// Serialised as drills write it (`within 25m`, `20m..25m`), so reports read back.
impl serde::Serialize for Target {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let text = match self {
            Target::Within { limit } => format!("within {}", humantime::format_duration(*limit)),
            Target::Band { low, high } => format!(
                "{}..{}",
                humantime::format_duration(*low),
                humantime::format_duration(*high)
            ),
        };
        serializer.serialize_str(&text)
    }
}

impl<'de> serde::Deserialize<'de> for Target {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// The outcome of comparing a measurement with its target.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Verdict {
    /// What was measured (platform time), serialised as seconds.
    #[serde(serialize_with = "seconds", deserialize_with = "from_seconds")]
    pub measured: Duration,
    /// What it was compared with.
    pub target: Target,
    /// Whether the target was met.
    pub passed: bool,
    /// Distance to the nearest bound in milliseconds: positive inside the target, negative outside.
    pub margin_ms: i128,
}

fn seconds<S: serde::Serializer>(d: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_f64(d.as_secs_f64())
}

fn from_seconds<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
    let secs = <f64 as serde::Deserialize>::deserialize(deserializer)?;
    Duration::try_from_secs_f64(secs).map_err(serde::de::Error::custom)
}

impl Verdict {
    /// The margin as text: `3m 12s to spare` or `1m 5s over`.
    #[must_use]
    pub fn margin(&self) -> String {
        let abs =
            Duration::from_millis(u64::try_from(self.margin_ms.unsigned_abs()).unwrap_or(u64::MAX));
        match (self.passed, self.target) {
            (true, _) => format!("{} to spare", format_duration(abs)),
            (false, Target::Band { low, .. }) if self.measured < low => {
                format!("{} under the band", format_duration(abs))
            }
            (false, _) => format!("{} over", format_duration(abs)),
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} measured {} against target {} ({})",
            if self.passed { "met:" } else { "MISSED:" },
            format_duration(self.measured),
            self.target,
            self.margin()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn min(m: u64) -> Duration {
        Duration::from_secs(m * 60)
    }

    #[test]
    fn parses_within_bare_and_band_targets() {
        assert_eq!("within 25m".parse(), Ok(Target::Within { limit: min(25) }));
        assert_eq!("2m".parse(), Ok(Target::Within { limit: min(2) }));
        assert_eq!(
            "20m..25m".parse(),
            Ok(Target::Band {
                low: min(20),
                high: min(25)
            })
        );
        assert_eq!("25 minutes".parse(), Ok(Target::Within { limit: min(25) }));
    }

    #[test]
    fn rejects_inverted_bands_bad_durations_and_zero() {
        assert_eq!(
            "25m..20m".parse::<Target>(),
            Err(TargetError::InvertedBand {
                low: "25m".into(),
                high: "20m".into()
            })
        );
        assert_eq!(
            "soon".parse::<Target>(),
            Err(TargetError::Duration("soon".into()))
        );
        assert_eq!("0s".parse::<Target>(), Err(TargetError::Zero));
        let message = "25m..20m"
            .parse::<Target>()
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(message.contains("hint:"), "{message}");
    }

    #[test]
    fn within_passes_at_the_limit_and_fails_past_it_with_margin() {
        let target = Target::Within { limit: min(25) };
        let ok = target.judge(min(22));
        assert!(ok.passed);
        assert_eq!(ok.margin(), "3m to spare");
        assert!(target.judge(min(25)).passed);
        let missed = target.judge(min(26) + Duration::from_secs(5));
        assert!(!missed.passed);
        assert_eq!(missed.margin(), "1m 5s over");
        assert_eq!(
            missed.to_string(),
            "MISSED: measured 26m 5s against target within 25m (1m 5s over)"
        );
    }

    #[test]
    fn targets_serialise_as_written_and_read_back() {
        for text in ["20m..25m", "within 2m 30s"] {
            let target: Target = text.parse().expect("parses");
            let json = serde_json::to_string(&target).expect("serialises");
            assert_eq!(json, format!("\"{text}\""));
            assert_eq!(
                serde_json::from_str::<Target>(&json).expect("reads back"),
                target
            );
        }
    }

    #[test]
    fn band_fails_on_both_sides_and_names_the_side() {
        let band = Target::Band {
            low: min(20),
            high: min(25),
        };
        let inside = band.judge(min(21));
        assert!(inside.passed);
        assert_eq!(inside.margin_ms, 60_000);
        let early = band.judge(min(19));
        assert!(!early.passed);
        assert_eq!(early.margin(), "1m under the band");
        let late = band.judge(min(27));
        assert!(!late.passed);
        assert_eq!(late.margin(), "2m over");
    }
}
