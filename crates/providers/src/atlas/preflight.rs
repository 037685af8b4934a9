//! Preflight of an Atlas-managed database, before anything is injected: the API answers, the
//! credentials work and carry the role the drill's steps need, the cluster exists, is IDLE and
//! multi-region in the regions the steps name, and no outage simulation is running.

use std::collections::BTreeSet;

use firedrill_core::clock::Clock;
use firedrill_core::diagnostic::{Problem, Problems};
use firedrill_platform::Platform;

use super::client::{Client, Role};
use super::config::Settings;
use super::error::AtlasError;

/// What the steps of the selected drills ask of one Atlas cluster.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Requirement {
    /// The strongest role a step needs.
    pub role: Option<Role>,
    /// Platform regions that must hold electable nodes of the cluster.
    pub regions: BTreeSet<String>,
    /// Whether a step starts an outage simulation (none may be running then).
    pub simulation: bool,
}

/// Checks `database` against `requirement`; every problem is located at
/// `databases.<database>.atlas`.
pub async fn preflight(
    database: &str,
    requirement: &Requirement,
    platform: &Platform,
    clock: &Clock,
    problems: &mut Problems,
) {
    let at = platform.locate(&format!("databases.{database}.atlas"));
    let mut report = |e: AtlasError, client: Option<&Client>| {
        let text = e.to_string();
        let text = client.map_or(text.clone(), |c| c.clean(&text));
        problems.push(Problem::at(
            at.clone(),
            format!("{text}; nothing was injected"),
        ));
    };
    let settings = match Settings::resolve(platform, database) {
        Ok(s) => s,
        Err(e) => return report(e, None),
    };
    let client = match Client::new(settings.clone(), *clock) {
        Ok(c) => c,
        Err(e) => return report(e, None),
    };
    let cluster = match client.cluster().await {
        Ok(c) => c,
        Err(e) => return report(e, Some(&client)),
    };
    let unfit = |problem: String, hint: &str| AtlasError::Unfit {
        on: settings.on(),
        problem,
        hint: hint.to_owned(),
    };
    if let Some(role) = requirement.role {
        match client.roles().await {
            Ok(Some(roles)) if !roles.iter().any(|r| role.granted_by(r)) => report(
                AtlasError::Forbidden {
                    on: settings.on(),
                    project: settings.project.clone(),
                    what: "the drill".into(),
                    role: role.title(),
                    kind: settings.credentials.kind(),
                    detail: format!(
                        "its roles in the project: {}",
                        if roles.is_empty() {
                            "none".to_owned()
                        } else {
                            roles.join(", ")
                        }
                    ),
                },
                Some(&client),
            ),
            // Only a Project Owner (or a user admin) may read the project's access: one
            // that may not is no owner.
            Ok(None) if role == Role::Owner => report(
                AtlasError::Forbidden {
                    on: settings.on(),
                    project: settings.project.clone(),
                    what: "an outage simulation".into(),
                    role: role.title(),
                    kind: settings.credentials.kind(),
                    detail: "it may not even read the project's access".into(),
                },
                Some(&client),
            ),
            Ok(_) => {}
            Err(e) => report(e, Some(&client)),
        }
    }
    if cluster.paused {
        report(
            unfit("the cluster is paused".into(), "resume it in Atlas"),
            Some(&client),
        );
    }
    if cluster.state != super::actions::IDLE {
        report(
            unfit(
                format!(
                    "the cluster is {}, not IDLE (a change is pending)",
                    cluster.state
                ),
                "wait until its change finishes",
            ),
            Some(&client),
        );
    }
    let electable = cluster.electable();
    let has = || {
        electable
            .iter()
            .map(|r| {
                format!(
                    "{} (priority {}, {} electable)",
                    r.region, r.priority, r.electable
                )
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    if electable.len() < 2 && (requirement.simulation || !requirement.regions.is_empty()) {
        report(
            unfit(
                format!(
                    "the cluster is not multi-region: electable nodes in {}",
                    has()
                ),
                "a regional drill needs electable nodes in two regions or more",
            ),
            Some(&client),
        );
    }
    for region in &requirement.regions {
        let Ok(name) = settings.atlas_region(region) else {
            report(
                AtlasError::UnmappedRegion {
                    database: database.to_owned(),
                    region: region.clone(),
                },
                None,
            );
            continue;
        };
        if !electable
            .iter()
            .any(|r| r.region == name && r.provider == settings.provider)
        {
            report(
                unfit(
                    format!(
                        "region \"{region}\" ({} {name}) holds no electable node of the cluster; it has {}",
                        settings.provider,
                        has()
                    ),
                    &format!(
                        "check databases.{database}.atlas.regions.{region} against the cluster's regions"
                    ),
                ),
                Some(&client),
            );
        }
    }
    if requirement.simulation {
        match client.outage().await {
            Ok(Some(outage)) if !outage.over() => report(
                unfit(
                    format!(
                        "an outage simulation of {} is {}",
                        outage.regions.join(", "),
                        outage.state
                    ),
                    "end it (firedrill recover, or Test Resilience in the Atlas UI) and wait five minutes",
                ),
                Some(&client),
            ),
            Ok(_) => {}
            Err(e) => report(e, Some(&client)),
        }
    }
}
