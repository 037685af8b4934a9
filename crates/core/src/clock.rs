//! The one clock of a run.
//!
//! Every duration firedrill reports is *platform time*: for a real estate that is wall time, for
//! the embedded platform it is wall time multiplied by the time scale (a regional failover of
//! 22 platform minutes runs in seconds). Nothing else in firedrill reads the system clock: the
//! engine, the providers and the embedded platform all take a [`Clock`] and ask it.

use std::fmt;
use std::future::Future;
use std::time::{Duration, Instant, SystemTime};

/// An instant on the platform timeline: the platform time elapsed since the clock's origin.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PlatformTime(Duration);

impl PlatformTime {
    /// The origin of the timeline.
    pub const ZERO: PlatformTime = PlatformTime(Duration::ZERO);

    /// The instant `offset` after the origin.
    #[must_use]
    pub const fn from_offset(offset: Duration) -> Self {
        Self(offset)
    }

    /// Platform time elapsed since the clock's origin.
    #[must_use]
    pub const fn offset(self) -> Duration {
        self.0
    }

    /// `self - earlier`, or zero if `earlier` is later.
    #[must_use]
    pub fn saturating_since(self, earlier: PlatformTime) -> Duration {
        self.0.saturating_sub(earlier.0)
    }

    /// The instant `d` after `self`.
    #[must_use]
    pub fn plus(self, d: Duration) -> Self {
        Self(self.0.saturating_add(d))
    }
}

/// Serialised as seconds (with millisecond precision) since the clock's origin.
impl serde::Serialize for PlatformTime {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_f64((self.0.as_millis() as f64) / 1_000.0)
    }
}

impl<'de> serde::Deserialize<'de> for PlatformTime {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let secs = f64::deserialize(deserializer)?;
        Duration::try_from_secs_f64(secs)
            .map(PlatformTime)
            .map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for PlatformTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "T+{}", crate::clock::format_duration(self.0))
    }
}

/// A time scale that is not a finite number greater than zero.
#[derive(Debug, thiserror::Error, PartialEq)]
#[error(
    "time scale {0} is not a finite number greater than zero (hint: 1 is real time, 60 runs a platform minute per second)"
)]
pub struct InvalidScale(pub f64);

/// The clock of one run: a monotonic origin, the wall-clock time of that origin (for reports
/// only) and the time scale. Cheap to copy; every copy reads the same timeline.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    origin: Instant,
    wall_origin: SystemTime,
    scale: f64,
}

impl Clock {
    /// A clock running in real time, starting now.
    #[must_use]
    pub fn real() -> Self {
        Self {
            origin: Instant::now(),
            wall_origin: SystemTime::now(),
            scale: 1.0,
        }
    }

    /// A clock running `scale` times faster than wall time, starting now.
    ///
    /// # Errors
    ///
    /// [`InvalidScale`] unless `scale` is finite and greater than zero.
    pub fn scaled(scale: f64) -> Result<Self, InvalidScale> {
        if !scale.is_finite() || scale <= 0.0 {
            return Err(InvalidScale(scale));
        }
        Ok(Self {
            scale,
            ..Self::real()
        })
    }

    /// How many platform seconds pass per wall second.
    #[must_use]
    pub fn scale(&self) -> f64 {
        self.scale
    }

    /// The current instant on the platform timeline.
    #[must_use]
    pub fn now(&self) -> PlatformTime {
        PlatformTime(self.to_platform(self.origin.elapsed()))
    }

    /// Converts a platform-time instant back to the monotonic instant it happened at.
    #[must_use]
    pub fn instant_of(&self, t: PlatformTime) -> Instant {
        self.origin + self.to_wall(t.0)
    }

    /// The platform instant of a monotonic instant (an observation's timestamp).
    #[must_use]
    pub fn at(&self, instant: Instant) -> PlatformTime {
        PlatformTime(self.to_platform(instant.saturating_duration_since(self.origin)))
    }

    /// The wall-clock time of a platform instant, for reports. In compressed time this is the
    /// wall time the instant *would* have had on a real platform started at the same moment.
    #[must_use]
    pub fn wall(&self, t: PlatformTime) -> SystemTime {
        self.wall_origin + t.0
    }

    /// The wall-clock time a platform instant really happened at: in compressed time, the
    /// origin plus its wall duration. What systems outside the platform's clock stamp their
    /// samples with (Prometheus), unlike [`Clock::wall`], which is for reports.
    #[must_use]
    pub fn happened_at(&self, t: PlatformTime) -> SystemTime {
        self.wall_origin + self.to_wall(t.0)
    }

    /// The wall-clock time the clock started.
    #[must_use]
    pub fn wall_origin(&self) -> SystemTime {
        self.wall_origin
    }

    /// The wall duration that a platform duration takes on this clock.
    #[must_use]
    pub fn to_wall(&self, platform: Duration) -> Duration {
        if self.scale == 1.0 {
            platform
        } else {
            platform.div_f64(self.scale)
        }
    }

    /// The platform duration that a wall duration represents on this clock.
    #[must_use]
    pub fn to_platform(&self, wall: Duration) -> Duration {
        if self.scale == 1.0 {
            wall
        } else {
            wall.mul_f64(self.scale)
        }
    }

    /// Sleeps for a platform duration.
    pub async fn sleep(&self, platform: Duration) {
        tokio::time::sleep(self.to_wall(platform)).await;
    }

    /// Sleeps until a platform instant (returns at once if it has passed).
    pub async fn sleep_until(&self, t: PlatformTime) {
        tokio::time::sleep_until(self.instant_of(t).into()).await;
    }

    /// Runs `fut` with a deadline of `platform` platform time.
    ///
    /// # Errors
    ///
    /// [`tokio::time::error::Elapsed`] when the deadline passes first.
    pub async fn timeout<F: Future>(
        &self,
        platform: Duration,
        fut: F,
    ) -> Result<F::Output, tokio::time::error::Elapsed> {
        tokio::time::timeout(self.to_wall(platform), fut).await
    }

    /// Runs `fut` until the platform instant `deadline`.
    ///
    /// # Errors
    ///
    /// [`tokio::time::error::Elapsed`] when the deadline passes first.
    pub async fn timeout_at<F: Future>(
        &self,
        deadline: PlatformTime,
        fut: F,
    ) -> Result<F::Output, tokio::time::error::Elapsed> {
        tokio::time::timeout_at(self.instant_of(deadline).into(), fut).await
    }

    /// A ticker firing every `period` of platform time; missed ticks are skipped, not bunched.
    #[must_use]
    pub fn interval(&self, period: Duration) -> tokio::time::Interval {
        let wall = self.to_wall(period).max(Duration::from_micros(100));
        let mut interval = tokio::time::interval(wall);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        interval
    }
}

/// Formats a duration the way drills write them: `22m 13.5s`, `850ms`, `1h 2m 3s`.
#[must_use]
pub fn format_duration(d: Duration) -> String {
    let total_ms = d.as_millis();
    if total_ms < 1_000 {
        return format!("{total_ms}ms");
    }
    let hours = total_ms / 3_600_000;
    let minutes = (total_ms / 60_000) % 60;
    let millis = total_ms % 60_000;
    let mut parts = Vec::new();
    if hours > 0 {
        parts.push(format!("{hours}h"));
    }
    if minutes > 0 {
        parts.push(format!("{minutes}m"));
    }
    if !millis.is_multiple_of(1_000) {
        parts.push(format!("{:.1}s", millis as f64 / 1_000.0));
    } else if millis > 0 {
        parts.push(format!("{}s", millis / 1_000));
    }
    parts.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_scales_that_are_not_positive_and_finite() {
        for bad in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            assert!(Clock::scaled(bad).is_err(), "{bad} accepted");
        }
        assert!(Clock::scaled(120.0).is_ok());
    }

    #[test]
    fn a_platform_instant_happened_at_its_wall_duration_after_the_origin() {
        let clock = Clock::scaled(20.0).expect("scale");
        let t = PlatformTime::from_offset(Duration::from_secs(60));
        let origin = clock.wall_origin();
        // Prometheus stamps what it scraped 3 s of wall time after the start...
        assert_eq!(clock.happened_at(t), origin + Duration::from_secs(3));
        // ...while reports show the instant as a real platform would have lived it.
        assert_eq!(clock.wall(t), origin + Duration::from_secs(60));
    }

    #[test]
    fn converts_between_wall_and_platform_time() {
        let clock = Clock::scaled(60.0).expect("valid scale");
        assert_eq!(
            clock.to_wall(Duration::from_secs(60)),
            Duration::from_secs(1)
        );
        assert_eq!(
            clock.to_platform(Duration::from_millis(500)),
            Duration::from_secs(30)
        );
        let t = PlatformTime::from_offset(Duration::from_secs(120));
        assert_eq!(clock.at(clock.instant_of(t)), t);
    }

    #[tokio::test]
    async fn sleep_takes_the_scaled_wall_time() {
        let clock = Clock::scaled(1_000.0).expect("valid scale");
        let before = clock.now();
        clock.sleep(Duration::from_secs(30)).await;
        let slept = clock.now().saturating_since(before);
        assert!(
            slept >= Duration::from_secs(30),
            "slept only {slept:?} platform time"
        );
    }

    #[test]
    fn formats_durations_like_drills_write_them() {
        assert_eq!(format_duration(Duration::from_millis(850)), "850ms");
        assert_eq!(format_duration(Duration::from_secs(90)), "1m 30s");
        assert_eq!(
            format_duration(Duration::from_millis(22 * 60_000 + 13_500)),
            "22m 13.5s"
        );
        assert_eq!(format_duration(Duration::from_secs(3723)), "1h 2m 3s");
        assert_eq!(format_duration(Duration::from_secs(3600)), "1h");
        assert_eq!(format_duration(Duration::from_secs(3605)), "1h 5s");
    }
}
