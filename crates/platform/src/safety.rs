//! The safety section's stop conditions that are not about what a drill touches but whether it
//! may run at all: the emergency halt's marker (`safety.halt`) and blackout windows
//! (`safety.blackout`). Pure: a window is judged at an instant the caller gives.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use jiff::civil::{Date, DateTime, Time, Weekday};
use jiff::tz::TimeZone;
use jiff::{Timestamp, Zoned};
use serde::Deserialize;

/// Where the emergency halt's marker lives: exactly one of a ConfigMap or a file.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct HaltMarker {
    /// A ConfigMap every runner against the estate can read (the scheduled CronJob's way).
    #[serde(default)]
    pub config_map: Option<HaltConfigMap>,
    /// A file (relative to the platform file) every runner on this host can read.
    #[serde(default)]
    pub file: Option<PathBuf>,
    /// How often a running drill looks at the marker (platform time). Default: the shortest
    /// probe interval of the platform, else 5s.
    #[serde(default, with = "humantime_serde::option")]
    pub interval: Option<Duration>,
}

/// The ConfigMap holding the halt marker.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct HaltConfigMap {
    /// The kube context of the cluster it lives in (must be in `safety.allow.kube-contexts`).
    pub kube_context: String,
    /// Its namespace: firedrill's own (the CronJob's), not one a drill touches.
    pub namespace: String,
    /// Its name.
    #[serde(default = "default_halt_name")]
    pub name: String,
}

/// The halt ConfigMap's name unless the platform names another.
pub const DEFAULT_HALT_NAME: &str = "firedrill-halt";

fn default_halt_name() -> String {
    DEFAULT_HALT_NAME.to_owned()
}

/// When drills may not start: weekly windows and dated freezes, in a time zone.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Blackout {
    /// The IANA time zone the windows and freezes are written in (`Europe/Berlin`).
    #[serde(default = "default_time_zone")]
    pub time_zone: Zone,
    /// Windows that come back every week.
    #[serde(default)]
    pub weekly: Vec<Weekly>,
    /// Dated freezes (a holiday change freeze).
    #[serde(default)]
    pub freezes: Vec<Freeze>,
}

fn default_time_zone() -> Zone {
    Zone {
        name: "UTC".to_owned(),
        tz: TimeZone::UTC,
    }
}

/// A window every week: on `days`, from `from` to `to` (local time; a `to` at or before `from`
/// ends the next day, `24:00` is midnight at the day's end).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Weekly {
    /// The days it starts on: `mon`…`sun` (or full names), ranges like `mon-fri`.
    pub days: Days,
    /// Its start, `HH:MM`.
    pub from: TimeOfDay,
    /// Its end, `HH:MM` (`24:00` allowed).
    pub to: TimeOfDay,
    /// Why (shown when a run is refused).
    #[serde(default)]
    pub reason: Option<String>,
    /// Its own time zone, when not the section's.
    #[serde(default)]
    pub time_zone: Option<Zone>,
}

/// A dated freeze: from `from` to `to`, both included when they are dates.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Freeze {
    /// Its start: a date (`2026-12-18`, from midnight) or a local time (`2026-12-18T17:00`).
    pub from: Bound,
    /// Its end: a date (the whole day included) or a local time (excluded).
    pub to: Bound,
    /// Why (shown when a run is refused).
    #[serde(default)]
    pub reason: Option<String>,
    /// Its own time zone, when not the section's.
    #[serde(default)]
    pub time_zone: Option<Zone>,
}

/// An IANA time zone, checked when the platform is read.
#[derive(Clone, Debug)]
pub struct Zone {
    /// Its name as written.
    pub name: String,
    tz: TimeZone,
}

impl<'de> Deserialize<'de> for Zone {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        let tz = TimeZone::get(&name).map_err(|e| {
            serde::de::Error::custom(format!(
                "unknown time zone \"{name}\": {e} (hint: an IANA name like \"Europe/Berlin\", \"America/Los_Angeles\" or \"UTC\")"
            ))
        })?;
        Ok(Self { name, tz })
    }
}

/// A time of day in minutes after midnight, `00:00` to `24:00`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct TimeOfDay(u16);

impl TimeOfDay {
    /// From `HH:MM`.
    ///
    /// # Errors
    ///
    /// What is wrong with the text, with a hint.
    pub fn parse(text: &str) -> Result<Self, String> {
        let bad = || format!("\"{text}\" is not a time of day (hint: HH:MM, 00:00 to 24:00)");
        let (h, m) = text.trim().split_once(':').ok_or_else(bad)?;
        let (h, m): (u16, u16) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
        if m >= 60 || h > 24 || (h == 24 && m != 0) {
            return Err(bad());
        }
        Ok(Self(h * 60 + m))
    }

    /// `days` days after `date`, at this time (24:00 is the next day's midnight).
    fn on(self, date: Date, days: i64) -> DateTime {
        let minutes = i64::from(self.0);
        let date = date
            .checked_add(jiff::Span::new().days(days + minutes / (24 * 60)))
            .unwrap_or(date);
        let rest = minutes % (24 * 60);
        date.to_datetime(Time::constant(
            i8::try_from(rest / 60).unwrap_or(0),
            i8::try_from(rest % 60).unwrap_or(0),
            0,
            0,
        ))
    }

    fn minutes(self) -> u16 {
        self.0
    }
}

impl fmt::Display for TimeOfDay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02}:{:02}", self.0 / 60, self.0 % 60)
    }
}

impl<'de> Deserialize<'de> for TimeOfDay {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Self::parse(&String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

/// Days of the week a window starts on, as written and as a set.
#[derive(Clone, Debug)]
pub struct Days {
    written: String,
    days: Vec<Weekday>,
}

fn weekday(name: &str) -> Option<Weekday> {
    let name = name.trim().to_ascii_lowercase();
    let days = [
        ("mon", Weekday::Monday),
        ("tue", Weekday::Tuesday),
        ("wed", Weekday::Wednesday),
        ("thu", Weekday::Thursday),
        ("fri", Weekday::Friday),
        ("sat", Weekday::Saturday),
        ("sun", Weekday::Sunday),
    ];
    days.iter()
        .find(|(short, day)| name == *short || name == format!("{day:?}").to_ascii_lowercase())
        .map(|(_, day)| *day)
}

impl Days {
    /// From day names and ranges (`mon-fri`, `sat`, `sunday`).
    ///
    /// # Errors
    ///
    /// The name that is not a day, with a hint.
    pub fn parse(items: &[String]) -> Result<Self, String> {
        let mut days = Vec::new();
        for item in items {
            let bad = || {
                format!(
                    "\"{item}\" is not a day or a range of days (hint: mon, tue, … sun, or a range like mon-fri)"
                )
            };
            match item.split_once('-') {
                Some((first, last)) => {
                    let (mut day, last) = (
                        weekday(first).ok_or_else(bad)?,
                        weekday(last).ok_or_else(bad)?,
                    );
                    days.push(day);
                    while day != last {
                        day = day.next();
                        days.push(day);
                    }
                }
                None => days.push(weekday(item).ok_or_else(bad)?),
            }
        }
        if days.is_empty() {
            return Err("a weekly window needs at least one day (hint: days: [mon-fri])".into());
        }
        Ok(Self {
            written: items.join(", "),
            days,
        })
    }

    fn contains(&self, day: Weekday) -> bool {
        self.days.contains(&day)
    }
}

impl<'de> Deserialize<'de> for Days {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum OneOrMany {
            One(String),
            Many(Vec<String>),
        }
        let items = match OneOrMany::deserialize(d)? {
            OneOrMany::One(s) => vec![s],
            OneOrMany::Many(v) => v,
        };
        Self::parse(&items).map_err(serde::de::Error::custom)
    }
}

/// A freeze's start or end: a whole date or a local time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bound {
    /// A date: from its midnight, or through its end.
    Date(Date),
    /// A local date and time.
    At(DateTime),
}

impl Bound {
    /// From `YYYY-MM-DD` or `YYYY-MM-DDTHH:MM[:SS]`.
    ///
    /// # Errors
    ///
    /// What is wrong with the text, with a hint.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if text.contains('T') || text.contains(' ') {
            text.replace(' ', "T")
                .parse::<DateTime>()
                .map(Self::At)
                .map_err(|e| {
                    format!("\"{text}\" is not a local date and time: {e} (hint: 2026-12-18T17:00)")
                })
        } else {
            text.parse::<Date>()
                .map(Self::Date)
                .map_err(|e| format!("\"{text}\" is not a date: {e} (hint: 2026-12-18)"))
        }
    }

    fn start(self) -> DateTime {
        match self {
            Self::Date(d) => d.to_datetime(Time::midnight()),
            Self::At(t) => t,
        }
    }

    fn end(self) -> DateTime {
        match self {
            Self::Date(d) => d.tomorrow().unwrap_or(d).to_datetime(Time::midnight()),
            Self::At(t) => t,
        }
    }
}

impl fmt::Display for Bound {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Date(d) => write!(f, "{d}"),
            Self::At(t) => write!(f, "{}", t.strftime("%Y-%m-%dT%H:%M")),
        }
    }
}

impl<'de> Deserialize<'de> for Bound {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Self::parse(&String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

/// A blackout in effect at an instant: which one, why, and until when.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InEffect {
    /// The window as the platform writes it (`weekly window mon-fri 09:00–17:00 Europe/Berlin`).
    pub window: String,
    /// Its reason, when it has one.
    pub reason: Option<String>,
    /// When it ends, in its time zone, RFC 3339 with the zone (`2026-12-04T17:00:00+01:00[Europe/Berlin]`).
    pub until: String,
}

impl fmt::Display for InEffect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.window)?;
        if let Some(reason) = &self.reason {
            write!(f, " (\"{reason}\")")?;
        }
        write!(f, ", until {}", self.until)
    }
}

fn zoned(at: DateTime, tz: &TimeZone) -> Option<Zoned> {
    at.to_zoned(tz.clone()).ok()
}

impl Blackout {
    /// The first window or freeze in effect at `now`, if any. Local times are read in the
    /// window's time zone, across daylight-saving changes (a time skipped by the clock change
    /// counts as the instant after the gap).
    #[must_use]
    pub fn in_effect(&self, now: Timestamp) -> Option<InEffect> {
        for window in &self.weekly {
            let zone = window.time_zone.as_ref().unwrap_or(&self.time_zone);
            let local = now.to_zoned(zone.tz.clone());
            let today = local.date();
            let wrapped = window.to.minutes() <= window.from.minutes();
            // A window starting today, or (when it wraps midnight) one that started yesterday.
            let starts: &[i64] = if wrapped { &[0, -1] } else { &[0] };
            for &day in starts {
                let Some(start_date) = today.checked_add(jiff::Span::new().days(day)).ok() else {
                    continue;
                };
                if !window.days.contains(start_date.weekday()) {
                    continue;
                }
                let start = zoned(window.from.on(start_date, 0), &zone.tz);
                let end = zoned(window.to.on(start_date, i64::from(wrapped)), &zone.tz);
                if let (Some(start), Some(end)) = (start, end)
                    && start.timestamp() <= now
                    && now < end.timestamp()
                {
                    return Some(InEffect {
                        window: format!(
                            "weekly window {} {}–{} {}",
                            window.days.written, window.from, window.to, zone.name
                        ),
                        reason: window.reason.clone(),
                        until: end.to_string(),
                    });
                }
            }
        }
        for freeze in &self.freezes {
            let zone = freeze.time_zone.as_ref().unwrap_or(&self.time_zone);
            let start = zoned(freeze.from.start(), &zone.tz);
            let end = zoned(freeze.to.end(), &zone.tz);
            if let (Some(start), Some(end)) = (start, end)
                && start.timestamp() <= now
                && now < end.timestamp()
            {
                return Some(InEffect {
                    window: format!("freeze {} to {} {}", freeze.from, freeze.to, zone.name),
                    reason: freeze.reason.clone(),
                    until: end.to_string(),
                });
            }
        }
        None
    }

    /// Freezes whose end is not after their start, by index (for validation).
    pub(crate) fn empty_freezes(&self) -> Vec<usize> {
        self.freezes
            .iter()
            .enumerate()
            .filter(|(_, f)| f.to.end() <= f.from.start())
            .map(|(i, _)| i)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blackout(yaml: &str) -> Blackout {
        serde_yaml::from_str(yaml).expect("a blackout section")
    }

    fn at(text: &str) -> Timestamp {
        text.parse().expect("an instant")
    }

    #[test]
    fn a_weekly_window_holds_on_its_days_between_its_times_in_its_zone() {
        let b = blackout(
            "time-zone: Europe/Berlin\nweekly:\n  - { days: [mon-fri], from: \"09:00\", to: \"17:00\", reason: business hours }\n",
        );
        // Thursday 2026-12-03, 09:30 in Berlin is 08:30 UTC (CET, +01:00).
        let inside = b
            .in_effect(at("2026-12-03T08:30:00Z"))
            .expect("in the window");
        assert_eq!(inside.reason.as_deref(), Some("business hours"));
        assert_eq!(inside.until, "2026-12-03T17:00:00+01:00[Europe/Berlin]");
        assert_eq!(
            inside.window,
            "weekly window mon-fri 09:00–17:00 Europe/Berlin"
        );
        // 08:30 in Berlin (07:30 UTC): before it; 17:00 sharp: its end is excluded.
        assert_eq!(b.in_effect(at("2026-12-03T07:30:00Z")), None);
        assert_eq!(b.in_effect(at("2026-12-03T16:00:00Z")), None);
        // Saturday: not one of its days.
        assert_eq!(b.in_effect(at("2026-12-05T10:00:00Z")), None);
    }

    #[test]
    fn a_window_that_wraps_midnight_holds_into_the_next_day_only_from_its_start_day() {
        let b = blackout("weekly:\n  - { days: fri, from: \"22:00\", to: \"06:00\" }\n");
        // UTC by default. Friday 23:00 and Saturday 05:59 are inside, Saturday 22:00 is not.
        assert!(b.in_effect(at("2026-12-04T23:00:00Z")).is_some());
        let early = b
            .in_effect(at("2026-12-05T05:59:00Z"))
            .expect("still friday's window");
        assert_eq!(early.until, "2026-12-05T06:00:00+00:00[UTC]");
        assert_eq!(b.in_effect(at("2026-12-05T22:00:00Z")), None);
        // Friday 05:00 belongs to Thursday's night, which is not a window.
        assert_eq!(b.in_effect(at("2026-12-04T05:00:00Z")), None);
    }

    #[test]
    fn local_times_follow_daylight_saving_time() {
        let b = blackout(
            "time-zone: America/Los_Angeles\nweekly:\n  - { days: [sun], from: \"01:00\", to: \"04:00\" }\n",
        );
        // 2026-03-08 (Sunday) the clocks jump 02:00 → 03:00 PST→PDT: 01:30 PST is 09:30 UTC,
        // 03:30 PDT is 10:30 UTC: both inside; 04:00 PDT is 11:00 UTC: outside.
        assert!(b.in_effect(at("2026-03-08T09:30:00Z")).is_some());
        assert!(b.in_effect(at("2026-03-08T10:30:00Z")).is_some());
        assert_eq!(b.in_effect(at("2026-03-08T11:00:00Z")), None);
        // A week later, 01:30 PDT is 08:30 UTC: inside; 09:30 UTC is 02:30 PDT: inside.
        assert!(b.in_effect(at("2026-03-15T08:30:00Z")).is_some());
        // In winter 01:30 PST is 09:30 UTC and 08:30 UTC is 00:30 PST: outside.
        assert_eq!(b.in_effect(at("2026-12-06T08:30:00Z")), None);
    }

    #[test]
    fn a_freeze_of_dates_includes_both_days_in_its_zone() {
        let b = blackout(
            "time-zone: Asia/Tokyo\nfreezes:\n  - { from: 2026-12-24, to: 2026-12-26, reason: holiday freeze }\n",
        );
        // 2026-12-24 00:00 in Tokyo is 2026-12-23T15:00Z; the 26th ends at 2026-12-26T15:00Z.
        assert_eq!(b.in_effect(at("2026-12-23T14:59:00Z")), None);
        let first = b
            .in_effect(at("2026-12-23T15:00:00Z"))
            .expect("the freeze began");
        assert_eq!(first.window, "freeze 2026-12-24 to 2026-12-26 Asia/Tokyo");
        assert_eq!(first.until, "2026-12-27T00:00:00+09:00[Asia/Tokyo]");
        assert!(b.in_effect(at("2026-12-26T14:59:00Z")).is_some());
        assert_eq!(b.in_effect(at("2026-12-26T15:00:00Z")), None);
        let timed = blackout(
            "freezes:\n  - { from: \"2026-12-18T17:00\", to: \"2026-12-19T09:00\", time-zone: Europe/London }\n",
        );
        assert_eq!(timed.in_effect(at("2026-12-18T16:59:00Z")), None);
        assert!(timed.in_effect(at("2026-12-18T17:00:00Z")).is_some());
        assert_eq!(timed.in_effect(at("2026-12-19T09:00:00Z")), None);
    }

    #[test]
    fn what_is_not_a_zone_a_day_or_a_time_is_refused_with_a_hint() {
        let e = serde_yaml::from_str::<Blackout>("time-zone: Mars/Olympus\n")
            .expect_err("not a zone")
            .to_string();
        assert!(
            e.contains("unknown time zone \"Mars/Olympus\"") && e.contains("hint"),
            "{e}"
        );
        let e = serde_yaml::from_str::<Blackout>(
            "weekly:\n  - { days: [mon-fryday], from: \"09:00\", to: \"17:00\" }\n",
        )
        .expect_err("not a day")
        .to_string();
        assert!(e.contains("\"mon-fryday\" is not a day"), "{e}");
        for bad in ["9", "25:00", "24:30", "12:60", "noon"] {
            assert!(TimeOfDay::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(
            TimeOfDay::parse("24:00").map(|t| t.to_string()),
            Ok("24:00".into())
        );
        assert!(Bound::parse("2026-13-01").is_err());
    }

    #[test]
    fn a_range_of_days_may_wrap_the_week() {
        let days = Days::parse(&["fri-mon".into()]).expect("days");
        assert!(days.contains(Weekday::Sunday) && days.contains(Weekday::Monday));
        assert!(!days.contains(Weekday::Wednesday));
    }
}
