//! Loading and checking drills and the platform: shared by run, validate and plan.

use std::path::{Path, PathBuf};

use cucumber::gherkin;

use super::Drills;
use firedrill_core::diagnostic::{Problem, Problems, echo};
use firedrill_engine::drills::{self as features, Selection};
use firedrill_platform::Platform;
use firedrill_steps::Catalog;
use firedrill_steps::Checked;

/// Drills checked against a platform.
pub struct Loaded {
    /// The platform.
    pub platform: Platform,
    /// Parsed features.
    pub features: Vec<gherkin::Feature>,
    /// Selected scenarios, checked.
    pub checked: Vec<Checked>,
    /// The selection.
    pub selection: Selection,
}

/// The selection from `--tags` and `--name`.
///
/// # Errors
///
/// A tag expression or regex that does not parse.
pub fn selection(args: &Drills) -> Result<Selection, Problems> {
    let mut problems = Problems::default();
    let tags = match &args.tags {
        Some(expr) => match expr.parse::<gherkin::tagexpr::TagOperation>() {
            Ok(op) => Some(op),
            Err(e) => {
                problems.push(Problem {
                    location: None,
                    message: format!("--tags \"{}\" is not a tag expression: {e}", echo(expr)),
                    hint: Some("e.g. --tags \"@quarterly and not @gameday\"".into()),
                });
                None
            }
        },
        None => None,
    };
    let name = match &args.name {
        Some(re) => match regex::Regex::new(re) {
            Ok(re) => Some(re),
            Err(e) => {
                problems.push(Problem {
                    location: None,
                    message: format!("--name \"{}\" is not a regex: {e}", echo(re)),
                    hint: Some("e.g. --name \"failover\"".into()),
                });
                None
            }
        },
        None => None,
    };
    if problems.is_empty() {
        Ok(Selection {
            tags,
            name,
            skip_gameday: false,
        })
    } else {
        Err(problems)
    }
}

/// The feature paths, defaulting to drills/.
#[must_use]
pub fn paths(args: &Drills) -> Vec<PathBuf> {
    if args.paths.is_empty() {
        vec![PathBuf::from("drills")]
    } else {
        args.paths.clone()
    }
}

/// Parses and checks the drills against `platform`; every problem at once.
///
/// # Errors
///
/// Every problem found in the drills, the selection or the platform.
pub fn check(args: &Drills, platform: Result<Platform, Problems>) -> Result<Loaded, Problems> {
    check_selected(args, platform, false)
}

/// As [`check`], for a run: @gameday scenarios are left out unless `--tags` names @gameday.
///
/// # Errors
///
/// Every problem found in the drills, the selection or the platform.
pub fn check_for_run(
    args: &Drills,
    platform: Result<Platform, Problems>,
) -> Result<Loaded, Problems> {
    let named = args
        .tags
        .as_deref()
        .is_some_and(|t| t.contains(&format!("@{}", features::GAMEDAY_TAG)));
    check_selected(args, platform, !named)
}

fn check_selected(
    args: &Drills,
    platform: Result<Platform, Problems>,
    skip_gameday: bool,
) -> Result<Loaded, Problems> {
    let mut problems = Problems::default();
    let selection = selection(args)
        .map(|s| Selection { skip_gameday, ..s })
        .map_err(|p| problems.0.extend(p.0))
        .ok();
    let features = features::discover(&paths(args))
        .and_then(|files| features::parse(&files))
        .map_err(|p| problems.0.extend(p.0))
        .ok();
    if args.paths.is_empty() && !Path::new("drills").exists() && selection.is_some() {
        // `validate --platform x.yaml` with no drills around checks the platform alone.
        return match platform {
            Ok(platform) => Ok(Loaded {
                platform,
                features: Vec::new(),
                checked: Vec::new(),
                selection: selection.unwrap_or_default(),
            }),
            Err(p) => Err(p),
        };
    }
    let platform = platform.map_err(|p| problems.0.extend(p.0)).ok();
    let catalog = Catalog::build()
        .map_err(|e| {
            problems.push(Problem {
                location: None,
                message: e.to_string(),
                hint: None,
            })
        })
        .ok();
    let (Some(selection), Some(features), Some(platform), Some(catalog)) =
        (selection, features, platform, catalog)
    else {
        problems.sort();
        return Err(problems);
    };
    let checked = firedrill_steps::check(&features, &selection, &catalog, &platform)?;
    if features.is_empty() {
        return Err(Problems(vec![Problem {
            location: None,
            message: format!(
                "no .feature files in {}",
                paths(args)
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            hint: Some("give .feature files or folders holding them".into()),
        }]));
    }
    if checked.is_empty() {
        return Err(Problems(vec![Problem {
            location: None,
            message: "no scenario matches the selection".into(),
            hint: Some("check --tags and --name (a @gameday scenario runs only when --tags names @gameday), and that the paths hold .feature files".into()),
        }]));
    }
    Ok(Loaded {
        platform,
        features,
        checked,
        selection,
    })
}

/// Drills checked against `--platform` or the embedded platform, for commands that touch
/// nothing; problems are printed and become [`Exit::Usage`](super::Exit::Usage).
///
/// # Errors
///
/// The exit code after printing the problems.
pub fn checked(args: &Drills) -> Result<Loaded, super::Exit> {
    check(args, platform_for_checks(args.platform.as_deref())).map_err(|problems| {
        super::render::problems(&problems);
        super::Exit::Usage
    })
}

/// The platform from `--platform`, or the embedded one (with placeholder endpoints).
///
/// # Errors
///
/// The platform file's problems.
pub fn platform_for_checks(path: Option<&Path>) -> Result<Platform, Problems> {
    match path {
        Some(path) => firedrill_platform::load(path),
        None => super::embedded::platform_for_checks(),
    }
}
