//! MongoDB replica sets: step-down, kill, freeze and a region flip of a namespace's database,
//! the topology observer's election milestones, and the write checker's lost-write verdict.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use cucumber::{given, then, when};

use super::{
    Analysis, Args, Effect, Failure, Need, Redacted, ResultExt, StepDoc, StepError, param,
};
use crate::world::Drill;
use firedrill_core::clock::{PlatformTime, format_duration};
use firedrill_core::names::MilestoneName;
use firedrill_engine::events::Event;
use firedrill_engine::scenario::{Change, InjectError};
use firedrill_platform::{Management, Platform};
use firedrill_providers::Undo;
use firedrill_providers::mongo::checker::{Checker, WriteReport, collection_for};
use firedrill_providers::mongo::kill::{self, Way};
use firedrill_providers::mongo::observer::{Observer, OnMilestone};
use firedrill_providers::mongo::{Member, MongoUndo, Target, database_of};
use firedrill_providers::toxiproxy::{Action, ToxiproxyUndo};

/// How often the observer asks every member `hello`, in platform time.
pub const OBSERVE_EVERY: Duration = Duration::from_secs(1);

/// `replSetStepDown`'s `stepDownSecs`: how long the old primary stays ineligible.
const STEP_DOWN_SECS: u64 = 60;
/// `replSetStepDown`'s `secondaryCatchUpPeriodSecs`.
const CATCH_UP_SECS: u64 = 10;
/// How long a flip may take to move the primary (platform time).
const FLIP_WITHIN: Duration = Duration::from_secs(120);

/// The MongoDB steps.
pub const DOCS: &[StepDoc] = &[
    StepDoc {
        keyword: "When",
        pattern: "the primary of {namespace} is stepped down",
        example: "the primary of \"prod-1\" is stepped down",
        doc: "Self-managed: runs `replSetStepDown` (stepDownSecs 60, secondaryCatchUpPeriodSecs 10) on the primary of the namespace's database, after writing its undo (`replSetFreeze 0` on the old primary, which ends its ineligibility) to the ledger. Atlas-managed (`databases.<db>.atlas`, where Atlas refuses `replSetStepDown`): Atlas's test failover instead, exactly as `When Atlas fails over the primary of \"{namespace}\"`, so one drill runs on either kind of database. Starts the topology observer: milestones `primary lost` and `new primary elected in {region}`; this step is `mongo fault: {namespace}`.",
        domain: "mongo",
        analyze: analyze_step_down,
    },
    StepDoc {
        keyword: "When",
        pattern: "the primary of {namespace} is killed",
        example: "the primary of \"prod-2\" is killed",
        doc: "Kills the primary the way the platform's `databases.<db>.kill` says for that member: cuts its Toxiproxy link (`links`, a `timeout` toxic; undo removes exactly that toxic), deletes its pod (`pods`; undo waits until the StatefulSet has it Ready again), or sends `shutdown` (force) with `restart` as the undo (a platform command, `{host}` = the member). The embedded platform run in this process restarts its own members. Refused at preflight when a member would have no way back. Milestones as for a step-down.",
        domain: "mongo",
        analyze: analyze_kill,
    },
    StepDoc {
        keyword: "When",
        pattern: "the Mongo primary of {namespace} is stepped down",
        example: "the Mongo primary of \"prod-1\" is stepped down",
        doc: "The earlier wording of `When the primary of \"{namespace}\" is stepped down`, the same step; kept so drills written with it run unchanged.",
        domain: "mongo",
        analyze: analyze_step_down,
    },
    StepDoc {
        keyword: "When",
        pattern: "the Mongo primary of {namespace} is killed",
        example: "the Mongo primary of \"prod-2\" is killed",
        doc: "The earlier wording of `When the primary of \"{namespace}\" is killed`, the same step; kept so drills written with it run unchanged.",
        domain: "mongo",
        analyze: analyze_kill,
    },
    StepDoc {
        keyword: "When",
        pattern: "a Mongo member of {namespace} in {region} is frozen for {duration}",
        example: "a Mongo member of \"prod-3\" in \"us-west2\" is frozen for 30s",
        doc: "Runs `replSetFreeze` for {duration} on a secondary in {region}, so it cannot be elected; undo `replSetFreeze 0`.",
        domain: "mongo",
        analyze: analyze_freeze,
    },
    StepDoc {
        keyword: "When",
        pattern: "the database of {namespace} flips to {region}",
        example: "the database of \"prod-1\" flips to \"us-west2\"",
        doc: "Self-managed: reconfigures the replica set (`replSetReconfig`) raising the priorities of {region}'s members above the others' and lowering the rest; the ledger keeps the original priorities and version, so the undo (or `firedrill recover`) restores them at a new version. Atlas-managed (`databases.<db>.atlas`): PATCHes the cluster, swapping {region}'s priority with the highest region's in `replicationSpecs[].regionConfigs[]`, after saving the original replication specs in the ledger (the undo PATCHes those priorities back); waits (the database's `update-within`) for `stateName` IDLE, milestones `atlas cluster {state}: {database}`. Then waits (2m) until the observer sees the primary in {region}. Milestones `database flip started: {namespace}` and `new primary elected in {region}`.",
        domain: "mongo",
        analyze: analyze_flip,
    },
    StepDoc {
        keyword: "When",
        pattern: "the database of {namespace} flips back",
        example: "the database of \"prod-1\" flips back",
        doc: "Undoes this scenario's last flip of the database now (restores the original priorities: a `replSetReconfig`, or on Atlas a PATCH of the saved region priorities and a wait for IDLE) and waits (2m) until the primary is back in the region it was in before the flip.",
        domain: "mongo",
        analyze: analyze_flip_back,
    },
    StepDoc {
        keyword: "When",
        pattern: "the database of {namespace} flips back to {region}",
        example: "the database of \"prod-1\" flips back to \"us-west1\"",
        doc: "As `flips back`, naming where the primary returns: fails before undoing anything when the primary was not in {region} before this scenario's flip (a flip back restores the saved priorities, it cannot choose a region; to move the primary elsewhere, `flips to` it), then waits (2m) until the primary is in {region}.",
        domain: "mongo",
        analyze: analyze_flip_back_to,
    },
    StepDoc {
        keyword: "Then",
        pattern: "a new primary is elected within {duration}",
        example: "a new primary is elected within 12s",
        doc: "Waits until the observer sees a member become primary, at most {duration} after the last Mongo fault of the scenario; fails with what it saw otherwise.",
        domain: "mongo",
        analyze: analyze_nothing,
    },
    StepDoc {
        keyword: "Then",
        pattern: "the primary of {namespace} is in {region}",
        example: "the primary of \"prod-1\" is in \"us-west2\"",
        doc: "Asks the members (`hello`) which is primary and checks its region (platform `members:` map, else the member's `tags.region`).",
        domain: "mongo",
        analyze: analyze_region,
    },
    StepDoc {
        keyword: "Then",
        pattern: "the primary of {namespace} is in {region} within {duration}",
        example: "the primary of \"prod-1\" is in \"us-west1\" within 2m",
        doc: "Asks the members (`hello`) every 500ms which is primary until it is a member of {region}, at most {duration} after the end of the step before it (e.g. after an Atlas command or Terraform apply that moves the primary on its own time); fails naming the last primary and its region.",
        domain: "mongo",
        analyze: analyze_region,
    },
    StepDoc {
        keyword: "Given",
        pattern: "a write checker runs against the {namespace} database at {rate} writes per second{concern}",
        example: "a write checker runs against the \"prod-1\" database at 50 writes per second",
        doc: "Inserts sequence numbers into `firedrill.writecheck_<run>` at {rate} per platform second (at most 100 per wall second on a compressed clock), up to 64 writes in flight, with w:majority (or w:1), recording every acknowledged one. An unavailability window opens at the first failed write and closes at the first success of a write sent after that failure; milestone `writes available again` then.",
        domain: "mongo",
        analyze: analyze_checker,
    },
    StepDoc {
        keyword: "Then",
        pattern: "no acknowledged write was lost",
        example: "no acknowledged write was lost",
        doc: "Stops the scenario's write checkers, reads every document back (majority read) and fails listing the acknowledged sequence numbers that are missing; reports acknowledged and lost writes (metrics `firedrill_writes_*`).",
        domain: "mongo",
        analyze: analyze_nothing,
    },
    StepDoc {
        keyword: "Then",
        pattern: "writes were unavailable for at most {duration}",
        example: "writes were unavailable for at most 15s",
        doc: "Stops the write checkers (if still running) and checks the longest window from the first failed write to the next acknowledged one.",
        domain: "mongo",
        analyze: analyze_nothing,
    },
];

fn analyze_step_down(args: &Args, platform: &Platform) -> Analysis {
    if atlas_database(args.get("namespace"), platform).is_some() {
        return crate::atlas::analyze_failover(args, platform);
    }
    let mut a = Analysis::default();
    database_checks(&mut a, args.get("namespace"), platform);
    a.effects.push(Effect {
        what: format!(
            "replSetStepDown of the primary of \"{}\" (stepDownSecs {STEP_DOWN_SECS}, secondaryCatchUpPeriodSecs {CATCH_UP_SECS})",
            args.get("namespace")
        ),
        undo: "replSetFreeze 0 on the old primary".into(),
    });
    a
}

/// The database of `namespace`, when Atlas manages it.
fn atlas_database<'p>(namespace: &str, platform: &'p Platform) -> Option<&'p str> {
    database_of(platform, namespace).filter(|db| {
        platform
            .databases
            .get(*db)
            .is_some_and(|d| d.management() == Management::Atlas)
    })
}

fn analyze_flip_back(args: &Args, platform: &Platform) -> Analysis {
    let mut a = Analysis::default();
    database_checks(&mut a, args.get("namespace"), platform);
    if let Some(db) = atlas_database(args.get("namespace"), platform) {
        crate::atlas::analyze_flip(&mut a, db, None, platform);
    }
    a.effects.push(Effect {
        what: format!(
            "restore the priorities of \"{}\" saved before its flip (the flip's undo, run now)",
            args.get("namespace")
        ),
        undo: "none (it is the undo)".into(),
    });
    a
}

fn analyze_flip_back_to(args: &Args, platform: &Platform) -> Analysis {
    let mut a = analyze_flip_back(args, platform);
    a.region("region", args.get("region"), platform);
    a
}

/// A replica-set step (freeze, kill) on an Atlas database: Atlas refuses the commands it
/// needs, and offers no way to do the same.
fn self_managed_only(
    a: &mut Analysis,
    namespace: &str,
    platform: &Platform,
    what: &str,
    instead: &str,
) {
    let atlas = database_of(platform, namespace)
        .and_then(|db| platform.databases.get_key_value(db))
        .filter(|(_, d)| d.management() == Management::Atlas);
    if let Some((db, _)) = atlas {
        a.problem(
            "namespace",
            format!("database \"{db}\" is an Atlas cluster: Atlas refuses {what}"),
            format!("on Atlas, use `{instead}`"),
        );
    }
}

/// The database of `namespace`, checked: it exists and its replica set is allowed.
pub(crate) fn database_checks(
    a: &mut Analysis,
    namespace: &str,
    platform: &Platform,
) -> Option<String> {
    let Some(db) = database_of(platform, namespace) else {
        a.problem(
            "namespace",
            format!("\"{namespace}\" has no database in the platform"),
            format!(
                "set namespaces.{namespace}.database, or name one of the databases: {}",
                firedrill_core::diagnostic::one_of(&platform.databases.keys().collect::<Vec<_>>())
            ),
        );
        return None;
    };
    if let Some(d) = platform.databases.get(db)
        && !platform.safety.allow.replica_sets.contains(&d.replica_set)
    {
        a.problem(
            "namespace",
            format!(
                "replica set \"{}\" of database \"{db}\" is not allowed",
                d.replica_set
            ),
            "add it to safety.allow.replica-sets to let drills touch it",
        );
    }
    a.needs.push(Need::Mongo(db.to_owned()));
    Some(db.to_owned())
}

fn analyze_kill(args: &Args, platform: &Platform) -> Analysis {
    let mut a = Analysis::default();
    let namespace = args.get("namespace");
    database_checks(&mut a, namespace, platform);
    let Some(db) = database_of(platform, namespace) else {
        return a;
    };
    if platform
        .databases
        .get(db)
        .is_some_and(|d| d.management() == Management::Atlas)
    {
        self_managed_only(
            &mut a,
            namespace,
            platform,
            "shutdown and offers no way to kill a member",
            &format!(
                "When Atlas fails over the primary of \"{namespace}\"` or `When Atlas simulates an outage of region \"…\" for \"{namespace}\""
            ),
        );
        return a;
    }
    let kill = platform.databases.get(db).and_then(|d| d.kill.as_ref());
    let mut ways = Vec::new();
    if let Some(kill) = kill {
        if !kill.links.is_empty() {
            ways.push("remove the toxic the kill added to the member's Toxiproxy link");
            for link in kill.links.values() {
                let need = Need::ToxiproxyLink(link.clone());
                if !a.needs.contains(&need) {
                    a.needs.push(need);
                }
            }
        }
        if let Some(pods) = &kill.pods {
            ways.push("wait until the StatefulSet has the deleted pod Ready again");
            // The cluster answers, the namespace exists, and the pods may be read and deleted.
            let verbs = [("get", "pods"), ("delete", "pods")];
            a.needs.push(Need::Kube(
                pods.context.clone(),
                firedrill_providers::kube::Requirement {
                    namespaces: std::iter::once(pods.namespace.clone()).collect(),
                    zones: Default::default(),
                    verbs: verbs
                        .iter()
                        .map(|(v, r)| ((*v).to_owned(), (*r).to_owned()))
                        .collect(),
                },
            ));
        }
        if let Some(restart) = &kill.restart {
            ways.push(if platform.commands.contains_key(restart) {
                "run the platform's restart command, wait until the member answers"
            } else {
                "none: the restart command is not defined"
            });
        }
    } else {
        a.problem(
            "namespace",
            format!(
                "database \"{db}\" has no way to bring a killed member back, so its primary cannot be killed"
            ),
            format!(
                "set databases.{db}.kill: `links` (each member's Toxiproxy link), `pods` (their StatefulSet pods) or `restart` (a command that starts a member again)"
            ),
        );
    }
    a.needs.push(Need::MongoKill(db.to_owned()));
    a.effects.push(Effect {
        what: format!("kill of the primary of \"{namespace}\""),
        undo: if ways.is_empty() {
            "none".into()
        } else {
            ways.join("; or ")
        },
    });
    a
}

fn analyze_freeze(args: &Args, platform: &Platform) -> Analysis {
    let mut a = Analysis::default();
    database_checks(&mut a, args.get("namespace"), platform);
    self_managed_only(
        &mut a,
        args.get("namespace"),
        platform,
        "replSetFreeze",
        "When the database of \"…\" flips to \"…\"",
    );
    a.region("region", args.get("region"), platform);
    a.effects.push(Effect {
        what: format!(
            "replSetFreeze {} on a member of \"{}\" in {}",
            args.get("duration"),
            args.get("namespace"),
            args.get("region")
        ),
        undo: "replSetFreeze 0".into(),
    });
    a
}

fn analyze_flip(args: &Args, platform: &Platform) -> Analysis {
    let mut a = Analysis::default();
    database_checks(&mut a, args.get("namespace"), platform);
    if let Some(db) = atlas_database(args.get("namespace"), platform) {
        crate::atlas::analyze_flip(&mut a, db, Some(args.get("region")), platform);
        a.effects.push(Effect {
            what: format!(
                "Atlas PATCH of the cluster of \"{}\": swap the region priorities so {} is highest",
                args.get("namespace"),
                args.get("region")
            ),
            undo: "PATCH the saved region priorities back, wait for IDLE and the primary home"
                .into(),
        });
        return a;
    }
    a.region("region", args.get("region"), platform);
    a.effects.push(Effect {
        what: format!(
            "replSetReconfig of \"{}\": raise the priorities of {}",
            args.get("namespace"),
            args.get("region")
        ),
        undo: "replSetReconfig back to the saved priorities".into(),
    });
    a
}

fn analyze_region(args: &Args, platform: &Platform) -> Analysis {
    let mut a = Analysis::default();
    database_checks(&mut a, args.get("namespace"), platform);
    a.region("region", args.get("region"), platform);
    a
}

fn analyze_checker(args: &Args, platform: &Platform) -> Analysis {
    let mut a = Analysis::default();
    database_checks(&mut a, args.get("namespace"), platform);
    a
}

fn analyze_nothing(_: &Args, _: &Platform) -> Analysis {
    Analysis::default()
}

/// What the Mongo steps of one scenario keep: observers, write checkers and their reports.
#[derive(Debug, Default)]
pub struct Scenario {
    observers: Vec<(String, Observer)>,
    checkers: Vec<(String, Checker)>,
    reports: Vec<(String, WriteReport)>,
    last_fault: Option<PlatformTime>,
}

impl Scenario {
    /// Sets the instant elections are timed from (`a new primary is elected within …`).
    pub(crate) fn set_last_fault(&mut self, at: PlatformTime) {
        self.last_fault = Some(at);
    }
}

fn recorder(world: &Drill) -> OnMilestone {
    let recorder = world.recorder();
    Arc::new(move |name: &str, at: PlatformTime, source: &str| {
        recorder.mark(name, at, source);
    })
}

/// The replica set of `namespace` (a namespace with a database, or a database).
pub(crate) fn target(world: &Drill, namespace: &str) -> Result<Target, Failure> {
    Target::resolve(world.platform(), namespace)
        .acting(|| format!("find the database of \"{namespace}\""))
}

/// The members of `t`'s replica set, as its config names them.
async fn members_of(t: &Target) -> Result<Vec<Member>, Failure> {
    t.members()
        .await
        .acting(|| format!("read the members of {}", t.database))
}

/// Waits (at most [`FLIP_WITHIN`]) until the primary of `t` is in `region`, as a flip or its
/// undo moves it.
async fn primary_reaches(
    world: &Drill,
    t: &Target,
    members: &[Member],
    region: &str,
) -> Result<(), Failure> {
    t.wait_primary_in(members, region, FLIP_WITHIN, &world.clock())
        .await
        .acting(|| format!("wait for the primary of {} in \"{region}\"", t.database))?;
    Ok(())
}

/// Starts the observer of `target` unless one runs.
pub(crate) async fn observe(world: &mut Drill, target: &Target) -> Result<(), Failure> {
    if world
        .mongo
        .observers
        .iter()
        .any(|(db, _)| db == &target.database)
    {
        return Ok(());
    }
    let members = members_of(target).await?;
    let observer = Observer::spawn(
        target,
        &members,
        OBSERVE_EVERY,
        world.clock(),
        recorder(world),
    )
    .await
    .acting(|| format!("observe the replica set of {}", target.database))?;
    world
        .mongo
        .observers
        .push((target.database.clone(), observer));
    Ok(())
}

/// The milestone of a step-down or kill of `namespace`'s primary, stamped by the engine once
/// the undo is on disk.
pub(crate) fn mongo_fault(namespace: &str) -> [MilestoneName; 1] {
    [MilestoneName::MongoFault(namespace.to_owned())]
}

#[when(expr = "the Mongo primary of {namespace} is stepped down")]
async fn mongo_primary_stepped_down(
    world: &mut Drill,
    namespace: param::Namespace,
) -> Result<(), Failure> {
    stepped_down(world, namespace).await
}

#[when(expr = "the primary of {namespace} is stepped down")]
async fn stepped_down(world: &mut Drill, namespace: param::Namespace) -> Result<(), Failure> {
    let namespace = namespace.0;
    if atlas_database(&namespace, world.platform()).is_some() {
        return crate::atlas::fails_over(world, namespace).await;
    }
    let t = target(world, &namespace)?;
    observe(world, &t).await?;
    let primary = t
        .primary()
        .await
        .acting(|| format!("find the primary of {}", t.database))?;
    let undo = Undo::Mongo(MongoUndo::Unfreeze {
        database: t.database.clone(),
        host: primary.clone(),
    });
    world
        .inject(
            Change::Fault,
            &format!("step-down of the primary {primary} of {}", t.database),
            undo,
            &mongo_fault(&namespace),
            t.step_down(&primary, STEP_DOWN_SECS, CATCH_UP_SECS),
        )
        .await
        .acting_redacted(
            || format!("step down the primary {primary} of {}", t.database),
            |e| t.clean(e),
        )?;
    // Elections are timed from the moment the fault acted (its undo on disk), not from
    // before the ledger's flush.
    world.mongo.last_fault = world.last_injected_at();
    Ok(())
}

/// Numbers the kill toxics of this process, so each name is unique to the drill.
static NEXT_KILL: AtomicU64 = AtomicU64::new(1);

#[when(expr = "the Mongo primary of {namespace} is killed")]
async fn mongo_primary_killed(
    world: &mut Drill,
    namespace: param::Namespace,
) -> Result<(), Failure> {
    killed(world, namespace).await
}

#[when(expr = "the primary of {namespace} is killed")]
async fn killed(world: &mut Drill, namespace: param::Namespace) -> Result<(), Failure> {
    let namespace = namespace.0;
    let t = target(world, &namespace)?;
    observe(world, &t).await?;
    let primary = t
        .primary()
        .await
        .acting(|| format!("find the primary of {}", t.database))?;
    let way = kill::way(world.platform(), &t.database, &primary)
        .acting(|| format!("find how to kill the primary {primary} of {}", t.database))?;
    let fault = format!(
        "kill of the primary {primary} of {}: {}",
        t.database,
        way.describe()
    );
    let injected = match way {
        Way::Link { link, proxy, url } => {
            let n = NEXT_KILL.fetch_add(1, Ordering::SeqCst);
            let toxic = format!("firedrill-{}-{n}-kill-upstream", world.run.run_id);
            let undo = Undo::Toxiproxy(ToxiproxyUndo {
                link,
                proxy: proxy.clone(),
                action: Action::RemoveToxic {
                    toxic: toxic.clone(),
                },
            });
            world
                .inject(
                    Change::Fault,
                    &fault,
                    undo,
                    &mongo_fault(&namespace),
                    kill::cut_link(&t.database, &primary, &url, &proxy, &toxic),
                )
                .await
        }
        Way::Pod {
            context,
            namespace: pod_namespace,
            pod,
        } => {
            let platform = world.platform().clone();
            let deleted_uid = kill::pod_uid(&platform, &t.database, &context, &pod_namespace, &pod)
                .await
                .acting(|| format!("find the pod {pod_namespace}/{pod} of {primary}"))?;
            let undo = Undo::Mongo(MongoUndo::PodBack {
                database: t.database.clone(),
                host: primary.clone(),
                context: context.clone(),
                namespace: pod_namespace.clone(),
                pod: pod.clone(),
                deleted_uid,
            });
            world
                .inject(
                    Change::Fault,
                    &fault,
                    undo,
                    &mongo_fault(&namespace),
                    kill::delete_pod(&platform, &t.database, &context, &pod_namespace, &pod),
                )
                .await
        }
        Way::ShutdownAndCommand { command } => {
            let undo = Undo::Mongo(MongoUndo::RestartByCommand {
                database: t.database.clone(),
                host: primary.clone(),
                command,
            });
            world
                .inject(
                    Change::Fault,
                    &fault,
                    undo,
                    &mongo_fault(&namespace),
                    t.shutdown(&primary),
                )
                .await
        }
    };
    injected.acting_redacted(
        || format!("kill the primary {primary} of {}", t.database),
        |e| t.clean(e),
    )?;
    // Elections are timed from the moment the fault acted (its undo on disk), not from
    // before the ledger's flush.
    world.mongo.last_fault = world.last_injected_at();
    Ok(())
}

#[when(expr = "a Mongo member of {namespace} in {region} is frozen for {duration}")]
async fn frozen(
    world: &mut Drill,
    namespace: param::Namespace,
    region: param::Region,
    duration: param::Duration,
) -> Result<(), Failure> {
    let (namespace, region) = (namespace.0, region.0);
    let secs = duration.value.as_secs().max(1);
    let t = target(world, &namespace)?;
    let members = members_of(&t).await?;
    let primary = t
        .primary()
        .await
        .acting(|| format!("find the primary of {}", t.database))?;
    let host = members
        .iter()
        .find(|m| m.region.as_deref() == Some(region.as_str()) && m.host != primary)
        .map(|m| m.host.clone())
        .ok_or_else(|| {
            StepError::unmet(
                format!(
                    "a secondary of database \"{}\" in \"{region}\" to freeze",
                    t.database
                ),
                format!(
                    "it has none there (members: {})",
                    members
                        .iter()
                        .map(|m| format!("{} in {}", m.host, m.region.as_deref().unwrap_or("?")))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                "check the region tags of its members, or freeze a member of another region",
            )
        })?;
    let undo = Undo::Mongo(MongoUndo::Unfreeze {
        database: t.database.clone(),
        host: host.clone(),
    });
    world
        .inject(
            Change::Fault,
            &format!("freeze of {host} of {} for {secs}s", t.database),
            undo,
            &[MilestoneName::MongoMemberFrozen(namespace)],
            t.freeze(&host, secs),
        )
        .await
        .acting_redacted(
            || format!("freeze {host} of {} for {secs}s", t.database),
            |e| t.clean(e),
        )?;
    Ok(())
}

#[when(expr = "the database of {namespace} flips to {region}")]
async fn flips(
    world: &mut Drill,
    namespace: param::Namespace,
    region: param::Region,
) -> Result<(), Failure> {
    let (namespace, region) = (namespace.0, region.0);
    if atlas_database(&namespace, world.platform()).is_some() {
        return flips_on_atlas(world, namespace, region).await;
    }
    let t = target(world, &namespace)?;
    observe(world, &t).await?;
    let members = members_of(&t).await?;
    let saved = t
        .priorities()
        .await
        .acting(|| format!("read the member priorities of {}", t.database))?;
    let wanted = t
        .flip_priorities(&members, &saved, &region)
        .acting(|| format!("plan the flip of {} to \"{region}\"", t.database))?;
    let undo = Undo::Mongo(MongoUndo::RestoreConfig {
        database: t.database.clone(),
        saved,
    });
    inject_flip(
        world,
        &namespace,
        &t.database,
        &region,
        undo,
        t.set_priorities(&wanted),
    )
    .await
    .map_err(|e| {
        StepError::action(
            format!("flip {} to \"{region}\"", t.database),
            Redacted(t.clean(&e)),
        )
    })?;
    primary_reaches(world, &t, &members, &region).await?;
    Ok(())
}

/// Injects `change` as a remediation whose undo is in the ledger first; the engine stamps the
/// flip's start (elections are timed from it) once the undo is on disk. The error is its
/// message, to be cleaned of secrets by the caller.
async fn inject_flip<T, E>(
    world: &mut Drill,
    namespace: &str,
    database: &str,
    region: &str,
    undo: Undo,
    change: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T, String>
where
    E: std::error::Error + Send + Sync + 'static,
{
    let flipped = world
        .inject(
            Change::Remediation,
            &format!("flip of {database} to {region}"),
            undo,
            &[MilestoneName::DatabaseFlipStarted(namespace.to_owned())],
            change,
        )
        .await;
    // The flip's election is timed from its reconfiguration, once its undo is on disk (also
    // when the reconfiguration failed halfway: it may have acted).
    if !matches!(flipped, Err(InjectError::NotInjected(_))) {
        world.mongo.last_fault = world.last_injected_at();
    }
    flipped.map_err(|e| e.to_string())
}

/// The flip of an Atlas database: a PATCH swapping the region priorities (the specs as they
/// were saved in the ledger first), then IDLE, then the primary in `region` as the driver sees.
async fn flips_on_atlas(
    world: &mut Drill,
    namespace: String,
    region: String,
) -> Result<(), Failure> {
    use firedrill_providers::atlas::actions::flip_specs;
    use firedrill_providers::atlas::{AtlasUndo, Client, Settings, cluster_milestone};
    let settings = Settings::resolve(world.platform(), &namespace)
        .acting(|| format!("resolve the Atlas settings of \"{namespace}\""))?;
    let atlas_region = settings
        .atlas_region(&region)
        .acting(|| format!("find the Atlas region of \"{region}\""))?
        .to_owned();
    let t = target(world, &namespace)?;
    observe(world, &t).await?;
    let members = members_of(&t).await?;
    let client = Client::new(settings.clone(), world.clock())
        .acting(|| format!("connect to the Atlas API for \"{namespace}\""))?;
    let cluster = client.cluster().await.acting_redacted(
        || format!("read Atlas cluster \"{}\"", settings.cluster),
        |e| client.clean(e),
    )?;
    let wanted = flip_specs(&cluster.replication_specs, &atlas_region).map_err(|problem| {
        StepError::unmet(
            format!(
                "Atlas cluster \"{}\" to be able to flip to {region}",
                settings.cluster
            ),
            format!("it cannot: {problem}"),
            "look at the cluster's regions in Atlas; the flip moves priorities between them",
        )
    })?;
    let undo = Undo::Atlas(AtlasUndo::RestorePriorities {
        database: t.database.clone(),
        replication_specs: cluster.replication_specs.clone(),
    });
    inject_flip(
        world,
        &namespace,
        &t.database,
        &region,
        undo,
        client.set_replication_specs(&wanted),
    )
    .await
    .map_err(|e| {
        StepError::action(
            format!(
                "flip Atlas cluster \"{}\" to \"{region}\"",
                settings.cluster
            ),
            Redacted(client.clean(&e)),
        )
    })?;
    let recorder = world.recorder();
    let (database, source) = (t.database.clone(), format!("atlas {}", settings.cluster));
    client
        .wait_idle(settings.update_within, |state, at| {
            recorder.mark(cluster_milestone(state, &database), at, &source);
        })
        .await
        .acting_redacted(
            || format!("wait for Atlas cluster \"{}\" to be IDLE", settings.cluster),
            |e| client.clean(e),
        )?;
    primary_reaches(world, &t, &members, &region).await?;
    Ok(())
}

#[when(expr = "the database of {namespace} flips back")]
async fn flips_back(world: &mut Drill, namespace: param::Namespace) -> Result<(), Failure> {
    flip_back(world, &namespace, None).await
}

#[when(expr = "the database of {namespace} flips back to {region}")]
async fn flips_back_to(
    world: &mut Drill,
    namespace: param::Namespace,
    region: param::Region,
) -> Result<(), Failure> {
    flip_back(world, &namespace, Some(&region)).await
}

/// Undoes this scenario's last flip of `namespace`'s database and waits until the primary is
/// home again; with `expected`, first checks that home is that region (before undoing).
async fn flip_back(
    world: &mut Drill,
    namespace: &str,
    expected: Option<&str>,
) -> Result<(), Failure> {
    let t = target(world, namespace)?;
    let prefix = format!("flip of {} to ", t.database);
    let id = world.outstanding(&prefix).ok_or_else(|| {
            StepError::precondition(
                format!(
                    "the database of \"{namespace}\" was not flipped in this scenario, so there is nothing to flip back"
                ),
                format!("add `When the database of \"{namespace}\" flips to \"<region>\"` before this step"),
            )
        })?;
    let members = members_of(&t).await?;
    let saved = world
        .faults
        .iter()
        .find(|f| f.id == id)
        .map(|f| f.undo.clone());
    // The region that held the primary before: the highest saved priority's member, or the
    // highest-priority Atlas region.
    let home = match saved {
        Some(Undo::Mongo(MongoUndo::RestoreConfig { saved, .. })) => saved
            .priorities
            .iter()
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .and_then(|(h, _)| t.region_in(&members, h)),
        Some(Undo::Atlas(firedrill_providers::atlas::AtlasUndo::RestorePriorities {
            replication_specs,
            ..
        })) => {
            firedrill_providers::atlas::actions::top_region(&replication_specs).and_then(|atlas| {
                firedrill_providers::atlas::Settings::resolve(world.platform(), namespace)
                    .ok()
                    .and_then(|s| s.platform_region(&atlas).map(str::to_owned))
            })
        }
        _ => None,
    };
    if let Some(expected) = expected
        && home.as_deref() != Some(expected)
    {
        return Err(StepError::Precondition {
            what: format!(
                "the database of \"{namespace}\" cannot flip back to \"{expected}\": before this scenario's flip its primary was in {}, and flipping back restores the priorities saved then",
                home.as_deref()
                    .map_or_else(|| "an unknown region".to_owned(), |h| format!("\"{h}\""))
            ),
            hint: format!(
                "write `flips back to {}`, or move the primary with `When the database of \"{namespace}\" flips to \"{expected}\"`",
                home.as_deref()
                    .map_or_else(|| "\"…\"".to_owned(), |h| format!("\"{h}\""))
            ),
        });
    }
    let now = world.clock().now();
    world.mongo.last_fault = Some(now);
    world
        .undo_now(&id)
        .await
        .acting(|| format!("flip {} back", t.database))?;
    if let Some(home) = home {
        primary_reaches(world, &t, &members, &home).await?;
    }
    Ok(())
}

#[then(expr = "a new primary is elected within {duration}")]
async fn elected_within(world: &mut Drill, duration: param::Duration) -> Result<(), Failure> {
    let within = duration.value;
    let from = world.mongo.last_fault.ok_or_else(|| {
        StepError::precondition(
            "no Mongo fault was injected in this scenario, so no election is expected",
            "add a Mongo fault before this step, e.g. `When the primary of \"<namespace>\" is stepped down`",
        )
    })?;
    let found = world
        .wait_for(from.plus(within), |t| {
            t.milestones()
                .iter()
                .find(|m| {
                    matches!(
                        MilestoneName::parse(&m.name),
                        MilestoneName::NewPrimaryElectedIn(_)
                    ) && m.at >= from
                })
                .cloned()
        })
        .await;
    match found {
        Some(m) if m.at.saturating_since(from) <= within => Ok(()),
        Some(m) => Err(StepError::Timeout {
            awaited: "a new primary to be elected".into(),
            within: format!("{duration} of the fault"),
            seen: format!(
                "\"{}\" came {} after the fault",
                m.name,
                format_duration(m.at.saturating_since(from))
            ),
            hint: "the report's timeline shows the election; raise the deadline if it is only slow"
                .into(),
        }),
        None => Err(StepError::Timeout {
            awaited: "a new primary to be elected".into(),
            within: format!("{duration} of the fault"),
            seen: format!(
                "none was observed (reached: {})",
                firedrill_core::diagnostic::one_of(&world.timeline().names())
            ),
            hint: "`rs.status()` on a member says whether the replica set can elect one".into(),
        }),
    }
}

#[then(expr = "the primary of {namespace} is in {region}")]
async fn primary_in(
    world: &mut Drill,
    namespace: param::Namespace,
    region: param::Region,
) -> Result<(), Failure> {
    primary_in_within(world, &namespace, &region, Duration::ZERO).await
}

#[then(expr = "the primary of {namespace} is in {region} within {duration}")]
async fn primary_in_region_within(
    world: &mut Drill,
    namespace: param::Namespace,
    region: param::Region,
    within: param::Duration,
) -> Result<(), Failure> {
    primary_in_within(world, &namespace, &region, within.value)
        .await
        .map_err(|e| e.within(format!("{within} of the end of the step before")))
}

/// How often `the primary of … is in … within …` asks the members (platform time).
const PRIMARY_EVERY: Duration = Duration::from_millis(500);

/// Asks the members which is primary until it is in `region`, by `within` after now (the
/// end of the step before); at least once, so `within` zero is one look.
async fn primary_in_within(
    world: &Drill,
    namespace: &str,
    region: &str,
    within: Duration,
) -> Result<(), Failure> {
    let t = target(world, namespace)?;
    let members = members_of(&t).await?;
    let clock = world.clock();
    let found = firedrill_providers::poll::until(&clock, PRIMARY_EVERY, within, || async {
        match t.primary().await {
            Ok(primary) => match t.region_in(&members, &primary) {
                Some(r) if r == region => Ok(()),
                other => Err(Some(format!(
                    "{primary} in {}",
                    other.map_or_else(|| "an unknown region".to_owned(), |r| format!("\"{r}\""))
                ))),
            },
            Err(e) => Err(Some(format!("no primary ({})", t.clean(&e.to_string())))),
        }
    })
    .await;
    found.map_err(|last| {
        StepError::unmet(
            format!("the primary of \"{namespace}\" in \"{region}\""),
            format!("it is {}", last.unwrap_or_else(|| "unknown".to_owned())),
            "to wait for it, write `within` and how long it may take",
        )
    })
}

#[given(
    expr = "a write checker runs against the {namespace} database at {rate} writes per second{concern}"
)]
async fn checker_runs(
    world: &mut Drill,
    namespace: param::Namespace,
    rate: param::Rate,
    concern: param::WriteConcern,
) -> Result<(), Failure> {
    let (namespace, rate, concern) = (namespace.0, rate.0, concern.0);
    let t = target(world, &namespace)?;
    observe(world, &t).await?;
    let collection = collection_for(&format!("{}_{}", world.run.run_id, t.database));
    let checker = Checker::start(
        &t,
        &collection,
        rate,
        concern,
        world.clock(),
        recorder(world),
    )
    .await
    .acting(|| format!("start a write checker against {}", t.database))?;
    world.mongo.checkers.push((namespace, checker));
    Ok(())
}

/// Finishes every running checker of the scenario and emits `WritesChecked`.
async fn finish_checkers(world: &mut Drill) -> Result<(), Failure> {
    let checkers = std::mem::take(&mut world.mongo.checkers);
    if checkers.is_empty() && world.mongo.reports.is_empty() {
        return Err(StepError::precondition(
            "no write checker ran in this scenario",
            "add `Given a write checker runs against the \"<namespace>\" database at 50 writes per second`",
        ));
    }
    for (namespace, checker) in checkers {
        let report = checker
            .finish()
            .await
            .acting(|| format!("read back the writes of the checker of \"{namespace}\""))?;
        world.run.events.emit(&Event::WritesChecked {
            namespace: namespace.clone(),
            acknowledged: report.acknowledged,
            lost: report.lost.len() as u64,
        });
        world.mongo.reports.push((namespace, report));
    }
    Ok(())
}

/// The end of a scenario: write checkers no Then step read back are read back and reported
/// now (`WritesChecked`, a console line; the scenario's verdict is already decided), and the
/// observers stop.
pub async fn scenario_finished(world: &mut Drill) {
    if !world.mongo.checkers.is_empty()
        && let Err(e) = finish_checkers(world).await
    {
        tracing::warn!("write checker read-back at the end of the scenario failed: {e}");
    }
    world.mongo.observers.clear();
}

#[then(expr = "no acknowledged write was lost")]
async fn none_lost(world: &mut Drill) -> Result<(), Failure> {
    finish_checkers(world).await?;
    let lost: Vec<String> = world
        .mongo
        .reports
        .iter()
        .filter(|(_, r)| !r.lost.is_empty())
        .map(|(ns, r)| {
            format!(
                "{ns}: {} of {} acknowledged writes lost (seq {})",
                r.lost.len(),
                r.acknowledged,
                r.lost
                    .iter()
                    .take(20)
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })
        .collect();
    if lost.is_empty() {
        Ok(())
    } else {
        Err(StepError::unmet(
            "no acknowledged write lost",
            lost.join("; "),
            "a write acknowledged and then lost was rolled back after an election; write with concern majority",
        ))
    }
}

#[then(expr = "writes were unavailable for at most {duration}")]
async fn unavailable_at_most(world: &mut Drill, duration: param::Duration) -> Result<(), Failure> {
    let limit = duration.value;
    finish_checkers(world).await?;
    let worst = world
        .mongo
        .reports
        .iter()
        .map(|(ns, r)| (ns.clone(), r.longest_unavailable(), r.errors))
        .max_by_key(|(_, d, _)| *d);
    match worst {
        Some((ns, d, errors)) if d > limit => Err(StepError::unmet(
            format!("writes to be unavailable for at most {duration}"),
            format!(
                "writes to {ns} were unavailable for {} ({errors} failed writes)",
                format_duration(d)
            ),
            "the report's timeline shows the election the writes waited for",
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Catalog, Matched, step};
    use super::*;

    fn reference() -> Platform {
        firedrill_platform::load(std::path::Path::new(concat!(
            concat!(env!("CARGO_MANIFEST_DIR"), "/../.."),
            "/fixtures/platforms/production.example.yaml"
        )))
        .unwrap_or_else(|p| panic!("platform: {p}"))
    }

    fn analyze(text: &str, platform: &Platform) -> Analysis {
        let catalog = Catalog::build().expect("catalog");
        match catalog.matched(&step("When", text)) {
            Matched::One { doc, args } => (doc.analyze)(&args, platform),
            other => panic!("{text}: {other:?}"),
        }
    }

    #[test]
    fn a_kill_needs_what_its_way_back_needs() {
        let platform = reference();
        let links = analyze("the primary of \"prod-3\" is killed", &platform);
        assert!(links.problems.is_empty(), "{:?}", links.problems);
        for link in ["prod-3-member-a", "prod-3-member-b"] {
            assert!(
                links.needs.contains(&Need::ToxiproxyLink(link.into())),
                "{link}: {:?}",
                links.needs
            );
        }
        assert!(links.needs.contains(&Need::MongoKill("prod-3".into())));
        // prod-3's third member has no link: it is shut down and restarted by a command.
        assert!(
            links.effects[0].undo.contains("restart command"),
            "{:?}",
            links.effects
        );

        let pods = analyze("the primary of \"prod-2\" is killed", &platform);
        let kube = pods.needs.iter().find_map(|n| match n {
            Need::Kube(context, r) => Some((context.clone(), r.clone())),
            _ => None,
        });
        let (context, requirement) = kube.expect("the pods' cluster is needed");
        assert_eq!(context, "gke_shop_us-west1_primary");
        assert!(requirement.namespaces.contains("mongo-prod-2"));
        assert!(
            requirement
                .verbs
                .contains(&("delete".to_owned(), "pods".to_owned()))
        );
        assert!(
            pods.effects[0].undo.contains("StatefulSet"),
            "{:?}",
            pods.effects
        );

        // Atlas offers no way to kill a member: the Atlas steps instead.
        let atlas = analyze("the Mongo primary of \"prod-1\" is killed", &platform);
        assert!(
            atlas.problems[0]
                .message
                .contains("database \"prod-1\" is an Atlas cluster"),
            "{:?}",
            atlas.problems
        );
        assert!(
            atlas.problems[0]
                .hint
                .contains("When Atlas fails over the primary of"),
            "{:?}",
            atlas.problems
        );
    }

    #[test]
    fn a_kill_with_no_way_back_is_a_problem_naming_the_database_and_what_to_set() {
        let platform = firedrill_platform::load_str(
            std::path::Path::new("t.yaml"),
            "name: t\nregions:\n  a: { role: primary }\n  b: { role: failover }\nnamespaces:\n  prod-1: { database: prod-1 }\ndatabases:\n  prod-1:\n    replica-set: rs\n    uri: { env: U }\nsafety:\n  allow:\n    replica-sets: [rs]\n",
            &|_| None,
        )
        .unwrap_or_else(|p| panic!("platform: {p}"));
        let a = analyze("the primary of \"prod-1\" is killed", &platform);
        assert_eq!(a.problems.len(), 1, "{:?}", a.problems);
        assert!(
            a.problems[0]
                .message
                .contains("database \"prod-1\" has no way to bring a killed member back"),
            "{:?}",
            a.problems
        );
        assert!(
            a.problems[0].hint.contains("set databases.prod-1.kill"),
            "{:?}",
            a.problems
        );
    }
}
