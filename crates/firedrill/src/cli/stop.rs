//! The stop conditions a run meets before it starts and the commands that set them:
//! `firedrill halt` / `firedrill resume` (the emergency halt's marker, with who and why) and
//! the platform's blackout windows (refused unless `--override-blackout "reason"`).

use std::path::PathBuf;

use firedrill_core::diagnostic::{Problem, Problems};
use firedrill_core::halt::{HALTED, Halt, RESUMED, Record};
use firedrill_engine::events::BlackoutOverride;
use firedrill_platform::Platform;
use firedrill_providers::halt::{self, Location};

use super::{Exit, render};

/// Arguments of `halt` and `resume`.
#[derive(Debug, clap::Args)]
pub struct HaltArgs {
    /// The platform file naming the estate's halt marker (`safety.halt`).
    #[arg(long, short = 'p', env = "FIREDRILL_PLATFORM")]
    pub platform: PathBuf,
    /// Why (recorded in the marker with who and when).
    #[arg(long)]
    pub reason: String,
    /// Who, as recorded (default: FIREDRILL_OPERATOR, else user@host).
    #[arg(long, env = "FIREDRILL_OPERATOR")]
    pub by: Option<String>,
}

/// Who is acting: `--by`, else the login name at this host.
pub fn operator(by: Option<&str>) -> String {
    if let Some(by) = by.map(str::trim).filter(|b| !b.is_empty()) {
        return by.to_owned();
    }
    let user = ["USER", "LOGNAME"]
        .iter()
        .find_map(|v| std::env::var(v).ok().filter(|u| !u.is_empty()))
        .unwrap_or_else(|| "unknown user".to_owned());
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty());
    match host {
        Some(host) => format!("{user}@{host}"),
        None => user,
    }
}

fn wall_now() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}

fn refuse(message: String, hint: &str) -> Exit {
    render::problems(&Problems(vec![Problem {
        location: None,
        message,
        hint: Some(hint.to_owned()),
    }]));
    Exit::Usage
}

async fn marker_of(path: &std::path::Path) -> Result<(Platform, Location), Exit> {
    let platform = firedrill_platform::load(path).map_err(|problems| {
        render::problems_found(&problems);
        Exit::Usage
    })?;
    let location = Location::of(&platform).await.map_err(|e| {
        errln!("error: {e}");
        Exit::Usage
    })?;
    Ok((platform, location))
}

/// `firedrill halt`: every drill against the estate stops within one halt interval and
/// undoes; new runs refuse to start until `firedrill resume`.
pub async fn halt(args: HaltArgs) -> Exit {
    let (platform, location, before) = match read_marker(&args).await {
        Ok(found) => found,
        Err(exit) => return exit,
    };
    let record = match write_record(&location, HALTED, args).await {
        Ok(record) => record,
        Err(exit) => return exit,
    };
    if let Some(before) = before {
        outln!("(it was already halted: {before})");
    }
    outln!(
        "estate \"{}\" HALTED by {}: \"{}\" ({}). Running drills stop within {} (platform time) and undo; new runs refuse to start until `firedrill resume --reason …`.",
        platform.name,
        record.by,
        record.reason,
        location.describe(),
        humantime::format_duration(platform.halt_interval())
    );
    Exit::Passed
}

/// The platform, its marker, and the halt in force.
async fn read_marker(args: &HaltArgs) -> Result<(Platform, Location, Option<Halt>), Exit> {
    let (platform, location) = marker_of(&args.platform).await?;
    let halt = location.halt().await.map_err(|e| {
        errln!("error: {e}");
        Exit::Usage
    })?;
    Ok((platform, location, halt))
}

/// Records `state` with the arguments' reason and operator, now.
async fn write_record(location: &Location, state: &str, args: HaltArgs) -> Result<Record, Exit> {
    let record = Record {
        state: state.to_owned(),
        reason: args.reason,
        by: operator(args.by.as_deref()),
        at: wall_now(),
    };
    location.record(&record).await.map_err(|e| {
        errln!("error: {e}");
        Exit::Usage
    })?;
    Ok(record)
}

/// `firedrill resume`: drills may run again; who and why are recorded beside the halt.
pub async fn resume(args: HaltArgs) -> Exit {
    let (platform, location, halt) = match read_marker(&args).await {
        Ok(found) => found,
        Err(exit) => return exit,
    };
    let Some(halt) = halt else {
        outln!(
            "estate \"{}\" is not halted ({}); nothing to resume",
            platform.name,
            location.describe()
        );
        return Exit::Passed;
    };
    let record = match write_record(&location, RESUMED, args).await {
        Ok(record) => record,
        Err(exit) => return exit,
    };
    outln!(
        "estate \"{}\" RESUMED by {}: \"{}\" (it was halted: {halt}). Drills may run again.",
        platform.name,
        record.by,
        record.reason
    );
    Exit::Passed
}

/// What a run may start with, once its stop conditions were met.
#[derive(Debug, Default)]
pub struct Cleared {
    /// The halt marker the run watches while it runs.
    pub watch: Option<firedrill_engine::halt::Watch>,
    /// The blackout this run was allowed into, recorded in its report.
    pub overridden: Option<BlackoutOverride>,
}

/// Before anything is touched: a halted estate refuses the run, as does a blackout unless
/// `override_reason` overrides it. An unreadable marker refuses too: the run cannot tell.
///
/// # Errors
///
/// [`Exit::Usage`], the problem printed.
pub async fn clear_for_run(
    platform: &Platform,
    override_reason: Option<&str>,
) -> Result<Cleared, Exit> {
    let mut cleared = Cleared::default();
    if platform.safety.halt.is_some() {
        let location = Location::of(platform).await.map_err(|e| {
            refuse(
                format!(
                    "cannot tell whether estate \"{}\" is halted: {e}",
                    platform.name
                ),
                "the run starts only when the halt marker can be read",
            )
        })?;
        match location.halt().await {
            Ok(None) => {}
            Ok(Some(halt)) => {
                return Err(refuse(
                    format!(
                        "estate \"{}\" is halted: {halt} ({})",
                        platform.name,
                        location.describe()
                    ),
                    "no drill runs until someone runs `firedrill resume --reason \"…\"` when it is safe again",
                ));
            }
            Err(e) => {
                return Err(refuse(
                    format!(
                        "cannot tell whether estate \"{}\" is halted: {e}",
                        platform.name
                    ),
                    "the run starts only when the halt marker can be read",
                ));
            }
        }
        cleared.watch = Some(halt::watch(location, platform));
    }
    let in_effect = platform
        .safety
        .blackout
        .as_ref()
        .and_then(|b| b.in_effect(jiff::Timestamp::now()));
    match (in_effect, override_reason.map(str::trim)) {
        (Some(blackout), Some(reason)) if !reason.is_empty() => {
            let by = operator(None);
            errln!(
                "warning: blackout overridden by {by}: {blackout}; reason: \"{reason}\" (recorded in the report)"
            );
            cleared.overridden = Some(BlackoutOverride {
                window: blackout.window,
                window_reason: blackout.reason,
                until: blackout.until,
                reason: reason.to_owned(),
                by,
            });
        }
        (Some(blackout), _) => {
            return Err(refuse(
                format!(
                    "platform \"{}\" is in a blackout: {blackout}",
                    platform.name
                ),
                "run after it ends, or pass --override-blackout \"why this cannot wait\" (recorded in the report)",
            ));
        }
        (None, Some(_)) => {
            outln!("note: no blackout is in effect; --override-blackout changes nothing");
        }
        (None, None) => {}
    }
    Ok(cleared)
}
