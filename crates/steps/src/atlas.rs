//! MongoDB Atlas: a regional outage simulation and a test failover of an Atlas-managed
//! database, through the Atlas Administration API. What Atlas *says* (the simulation's states,
//! the cluster's `stateName`) and what the driver *sees* (the replica-set observer's `primary
//! lost` and `new primary elected in …`) are separate milestones on the timeline. The database
//! flip of an Atlas database is the Mongo domain's flip step (it patches the region priorities).

use std::sync::Arc;

use cucumber::when;

use super::{Analysis, Args, Effect, Failure, Need, ResultExt, StepDoc, StepError, param};
use crate::world::Drill;
use firedrill_core::clock::PlatformTime;
use firedrill_engine::scenario::{Change, Recorder};
use firedrill_platform::{Management, Platform};
use firedrill_providers::Undo;
use firedrill_providers::atlas::actions::{POLL_EVERY, SIMULATING};
use firedrill_providers::atlas::{
    AtlasUndo, Client, Requirement, Role, Settings, simulation_milestone,
};
use firedrill_providers::mongo::observer::PRIMARY_LOST;

/// The Atlas steps.
pub const DOCS: &[StepDoc] = &[
    StepDoc {
        keyword: "When",
        pattern: "Atlas simulates an outage of region {region} for {namespace}",
        example: "Atlas simulates an outage of region \"us-west1\" for \"prod-1\"",
        doc: "Starts an Atlas regional outage simulation (`POST …/clusters/{cluster}/outageSimulation`, the region by its Atlas name from `databases.<db>.atlas.regions`), after writing its undo (end the simulation, wait for COMPLETE and for the primary back in its highest-priority region) to the ledger, then waits (the database's `simulation-within`, 20m by default) until Atlas says SIMULATING. Milestones `atlas outage simulation {state}: {database}` for every state Atlas reports (START_REQUESTED, STARTING, SIMULATING, RECOVERY_REQUESTED, RECOVERING, COMPLETE) and, from the replica-set observer, `primary lost` and `new primary elected in {region}`; `a new primary is elected within …` counts from when the cut was first seen. Needs the Project Owner role; taking out a majority of the electable nodes leaves no primary.",
        domain: "atlas",
        analyze: analyze_outage,
    },
    StepDoc {
        keyword: "When",
        pattern: "the Atlas outage simulation of {namespace} ends",
        example: "the Atlas outage simulation of \"prod-1\" ends",
        doc: "Runs this scenario's outage simulation's undo now: ends the simulation (`DELETE …/outageSimulation`), waits until Atlas says COMPLETE and the cluster is IDLE, then until the primary is back in the cluster's highest-priority region.",
        domain: "atlas",
        analyze: analyze_end,
    },
    StepDoc {
        keyword: "When",
        pattern: "Atlas fails over the primary of {namespace}",
        example: "Atlas fails over the primary of \"prod-1\"",
        doc: "Atlas's test failover (`POST …/clusters/{cluster}/restartPrimaries`): Atlas shuts the primary down and an election follows. Its undo (written first) waits until the cluster is IDLE again and the primary is home. Atlas refuses it while a change is pending, a member is unhealthy or lagging. Milestones `mongo fault: {namespace}`, then the observer's `primary lost` and `new primary elected in {region}`. Needs the Project Cluster Manager role.",
        domain: "atlas",
        analyze: analyze_failover,
    },
];

/// The database of `namespace` when it is Atlas-managed (else a problem).
fn atlas_checks(a: &mut Analysis, namespace: &str, platform: &Platform) -> Option<String> {
    let db = crate::mongo::database_checks(a, namespace, platform)?;
    if platform.databases.get(&db)?.management() != Management::Atlas {
        a.problem(
            "namespace",
            format!("database \"{db}\" is self-managed, not an Atlas cluster"),
            format!(
                "describe its cluster under databases.{db}.atlas, or use the replica-set steps (stepped down, killed, flips to)"
            ),
        );
        return None;
    }
    Some(db)
}

/// Checks that `region` is mapped to an Atlas name for `db`.
fn mapped_region(a: &mut Analysis, db: &str, region: &str, platform: &Platform) -> bool {
    a.region("region", region, platform);
    let mapped = platform
        .databases
        .get(db)
        .and_then(|d| d.atlas.as_ref())
        .is_some_and(|atlas| atlas.regions.contains_key(region));
    if !mapped && platform.regions.contains_key(region) {
        a.problem(
            "region",
            format!("region \"{region}\" has no Atlas name for database \"{db}\""),
            format!("map it under databases.{db}.atlas.regions, e.g. {region}: WESTERN_US"),
        );
    }
    mapped
}

fn analyze_outage(args: &Args, platform: &Platform) -> Analysis {
    let mut a = Analysis::default();
    let (namespace, region) = (args.get("namespace"), args.get("region"));
    if let Some(db) = atlas_checks(&mut a, namespace, platform) {
        mapped_region(&mut a, &db, region, platform);
        a.needs.push(Need::Atlas(
            db.clone(),
            Requirement {
                role: Some(Role::Owner),
                regions: std::iter::once(region.to_owned()).collect(),
                simulation: true,
            },
        ));
    }
    a.effects.push(Effect {
        what: format!("Atlas outage simulation of region {region} on the cluster of \"{namespace}\" (its members there lose the network)"),
        undo: "end the outage simulation, wait for COMPLETE and the primary back home".into(),
    });
    a
}

fn analyze_end(args: &Args, platform: &Platform) -> Analysis {
    let mut a = Analysis::default();
    let namespace = args.get("namespace");
    atlas_checks(&mut a, namespace, platform);
    a.effects.push(Effect {
        what: format!(
            "end the Atlas outage simulation of \"{namespace}\" (the simulation's undo, run now)"
        ),
        undo: "none (it is the undo)".into(),
    });
    a
}

pub(crate) fn analyze_failover(args: &Args, platform: &Platform) -> Analysis {
    let mut a = Analysis::default();
    let namespace = args.get("namespace");
    if let Some(db) = atlas_checks(&mut a, namespace, platform) {
        a.needs.push(Need::Atlas(
            db,
            Requirement {
                role: Some(Role::ClusterManager),
                regions: Default::default(),
                simulation: false,
            },
        ));
    }
    a.effects.push(Effect {
        what: format!("Atlas test failover (restartPrimaries) of the cluster of \"{namespace}\""),
        undo: "wait until the cluster is IDLE with its primary home".into(),
    });
    a
}

/// The analysis of the Mongo flip steps on an Atlas database: a priority PATCH.
pub(crate) fn analyze_flip(a: &mut Analysis, db: &str, region: Option<&str>, platform: &Platform) {
    let regions = match region {
        Some(region) if mapped_region(a, db, region, platform) => {
            std::iter::once(region.to_owned()).collect()
        }
        _ => Default::default(),
    };
    a.needs.push(Need::Atlas(
        db.to_owned(),
        Requirement {
            role: Some(Role::ClusterManager),
            regions,
            simulation: false,
        },
    ));
}

/// What the Atlas steps of one scenario keep: the tasks that record Atlas's states.
#[derive(Debug, Default)]
pub struct Scenario {
    watchers: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for Scenario {
    fn drop(&mut self) {
        for w in &self.watchers {
            w.abort();
        }
    }
}

/// The end of a scenario (after its undo): the watchers stop.
pub fn scenario_finished(world: &mut Drill) {
    for w in std::mem::take(&mut world.atlas.watchers) {
        w.abort();
    }
}

/// Records every state Atlas reports for the cluster's outage simulation until it is gone.
fn watch_simulation(
    client: Arc<Client>,
    recorder: Recorder,
    database: String,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let clock = client.clock();
        let mut ticks = clock.interval(POLL_EVERY);
        let mut last: Option<String> = None;
        let source = format!("atlas {}", client.settings().cluster);
        loop {
            ticks.tick().await;
            let state = match client.outage().await {
                Ok(Some(outage)) => outage.state,
                Ok(None) if last.is_some() => return,
                Ok(None) => continue,
                Err(e) => {
                    tracing::warn!("watching the Atlas outage simulation: {e}");
                    continue;
                }
            };
            if last.as_deref() != Some(state.as_str()) {
                recorder.mark(
                    simulation_milestone(&state, &database),
                    clock.now(),
                    &source,
                );
                last = Some(state);
            }
        }
    })
}

fn settings(world: &Drill, namespace: &str) -> Result<Settings, Failure> {
    Settings::resolve(world.platform(), namespace)
        .acting(|| format!("resolve the Atlas settings of \"{namespace}\""))
}

#[when(expr = "Atlas simulates an outage of region {region} for {namespace}")]
async fn simulates_outage(
    world: &mut Drill,
    region: param::Region,
    namespace: param::Namespace,
) -> Result<(), Failure> {
    let (region, namespace) = (region.0, namespace.0);
    let settings = settings(world, &namespace)?;
    let atlas_region = settings
        .atlas_region(&region)
        .acting(|| format!("find the Atlas region of \"{region}\""))?
        .to_owned();
    let target = crate::mongo::target(world, &namespace)?;
    crate::mongo::observe(world, &target).await?;
    let client = Arc::new(
        Client::new(settings.clone(), world.clock())
            .acting(|| format!("connect to the Atlas API for \"{namespace}\""))?,
    );
    let database = settings.database.clone();
    let undo = Undo::Atlas(AtlasUndo::EndOutageSimulation {
        database: database.clone(),
        regions: vec![atlas_region.clone()],
    });
    let requested = world.clock().now();
    world
        .inject(
            Change::Fault,
            &format!("Atlas outage simulation of {region} ({atlas_region}) for {database}"),
            undo,
            &crate::mongo::mongo_fault(&namespace),
            client.start_outage(std::slice::from_ref(&atlas_region)),
        )
        .await
        .acting_redacted(
            || format!("start an Atlas outage simulation of {region} for {database}"),
            |e| client.clean(e),
        )?;
    let watcher = watch_simulation(Arc::clone(&client), world.recorder(), database.clone());
    world.atlas.watchers.push(watcher);
    let simulating = simulation_milestone(SIMULATING, &database);
    let deadline = requested.plus(settings.simulation_within);
    let found = world
        .wait_for(deadline, |t| {
            t.first_since(&simulating, requested).map(|m| m.at)
        })
        .await;
    let Some(simulating_at) = found else {
        return Err(StepError::Timeout {
            awaited: format!(
                "Atlas to say SIMULATING for the outage simulation of {region} on cluster \"{}\"",
                settings.cluster
            ),
            within: format!(
                "{} of the request",
                firedrill_core::clock::format_duration(settings.simulation_within)
            ),
            seen: format!(
                "it did not (reached: {})",
                firedrill_core::diagnostic::one_of(&world.timeline().names())
            ),
            hint: "look at the cluster's Test Resilience page in Atlas".into(),
        });
    };
    // Elections are timed from the cut as first seen: Atlas's word, or the driver losing the
    // primary if it noticed between two of Atlas's answers.
    let lost: Option<PlatformTime> = world
        .timeline()
        .first_since(PRIMARY_LOST, requested)
        .map(|m| m.at);
    world
        .mongo
        .set_last_fault(lost.map_or(simulating_at, |l| l.min(simulating_at)));
    Ok(())
}

#[when(expr = "the Atlas outage simulation of {namespace} ends")]
async fn simulation_ends(world: &mut Drill, namespace: param::Namespace) -> Result<(), Failure> {
    let namespace = namespace.0;
    let settings = settings(world, &namespace)?;
    let prefix = "Atlas outage simulation of ";
    let suffix = format!(" for {}", settings.database);
    let id = world
        .faults
        .iter()
        .rev()
        .find(|f| {
            f.fault.starts_with(prefix)
                && f.fault.ends_with(&suffix)
                && !world.undone.contains(&f.id)
        })
        .map(|f| f.id.clone())
        .ok_or_else(|| {
            StepError::precondition(
                format!(
                    "no Atlas outage simulation of \"{namespace}\" is running in this scenario, so none can end"
                ),
                format!(
                    "add `When Atlas simulates an outage of region \"<region>\" for \"{namespace}\"` before this step"
                ),
            )
        })?;
    let now = world.clock().now();
    world.mongo.set_last_fault(now);
    world
        .undo_now(&id)
        .await
        .acting(|| format!("end the Atlas outage simulation of \"{namespace}\""))
}

#[when(expr = "Atlas fails over the primary of {namespace}")]
async fn fails_over_step(world: &mut Drill, namespace: param::Namespace) -> Result<(), Failure> {
    fails_over(world, namespace.0).await
}

/// Atlas's test failover of `namespace`'s primary (also the step-down of an Atlas database).
pub(crate) async fn fails_over(world: &mut Drill, namespace: String) -> Result<(), Failure> {
    let settings = settings(world, &namespace)?;
    let target = crate::mongo::target(world, &namespace)?;
    crate::mongo::observe(world, &target).await?;
    let primary = target.primary().await.acting_redacted(
        || format!("find the primary of {}", target.database),
        |e| target.clean(e),
    )?;
    let client = Client::new(settings.clone(), world.clock())
        .acting(|| format!("connect to the Atlas API for \"{namespace}\""))?;
    let undo = Undo::Atlas(AtlasUndo::AwaitRecovered {
        database: settings.database.clone(),
    });
    world
        .inject(
            Change::Fault,
            &format!(
                "Atlas test failover of {} (primary {primary})",
                settings.database
            ),
            undo,
            &crate::mongo::mongo_fault(&namespace),
            client.restart_primaries(),
        )
        .await
        .acting_redacted(
            || format!("run an Atlas test failover of {}", settings.database),
            |e| client.clean(e),
        )?;
    let at = world.last_injected_at();
    if let Some(at) = at {
        world.mongo.set_last_fault(at);
    }
    Ok(())
}
