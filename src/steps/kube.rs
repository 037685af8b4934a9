//! Kubernetes steps: zone and region outages, the failover scale-up and its readiness, and
//! namespaces a drill must leave alone.

use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use cucumber::{then, when};
use tokio::sync::watch;

use super::{Analysis, Args, Effect, Failure, Need, StepDoc};
use crate::drill::clock::{PlatformTime, format_duration};
use crate::drill::events::{Bus, Event};
use crate::drill::ledger::Undo;
use crate::drill::target::parse_duration;
use crate::drill::timeline::{Milestone, Timeline};
use crate::drill::world::{Change, Drill};
use crate::platform::Platform;
use crate::providers::kube::{self as provider, KubeUndo, Requirement, ZONE_OUTAGE_TAINT};

/// The Kubernetes steps.
pub const DOCS: &[StepDoc] = &[
    StepDoc {
        keyword: "When",
        pattern: "zone \"{zone}\" goes down",
        example: "zone \"us-west1-a\" goes down",
        doc: "Puts the NoExecute taint `firedrill.dev/zone-outage` on every node of the zone (label `topology.kubernetes.io/zone`) in its region's cluster, so its pods are evicted and none schedule there; the undo, written to the ledger first, removes exactly that taint from exactly those nodes. Milestone `fault injected`.",
        domain: "kube",
        analyze: analyze_zone_down,
    },
    StepDoc {
        keyword: "When",
        pattern: "zone \"{zone}\" is drained",
        example: "zone \"us-west1-b\" is drained",
        doc: "Cordons every node of the zone, then evicts their pods through the Eviction API (PodDisruptionBudgets apply; a blocked eviction fails the step and names the pods). The undo uncordons exactly the nodes this drill cordoned.",
        domain: "kube",
        analyze: analyze_zone_drained,
    },
    StepDoc {
        keyword: "When",
        pattern: "region \"{region}\" goes dark",
        example: "region \"us-west1\" goes dark",
        doc: "Scales every platform service of every platform namespace in the region's cluster to 0, recording each replica count in the ledger first; the undo scales them back.",
        domain: "kube",
        analyze: analyze_region_dark,
    },
    StepDoc {
        keyword: "When",
        pattern: "the failover cluster in \"{region}\" is scaled up",
        example: "the failover cluster in \"us-west2\" is scaled up",
        doc: "Scales every platform service in the region's cluster to its `failover-replicas` (a remediation: undone after the faults, back to the recorded counts) and watches the pods; milestones `first failover pod ready` and `failover pods ready` are stamped when the API's watch event arrives.",
        domain: "kube",
        analyze: analyze_scale_up,
    },
    StepDoc {
        keyword: "Then",
        pattern: "the failover pods in \"{region}\" are ready within {duration}",
        example: "the failover pods in \"us-west2\" are ready within 10m",
        doc: "Waits (on the watch, no polling) until the milestone `failover pods ready` of the scale-up, at most `duration` after the scale-up started.",
        domain: "kube",
        analyze: analyze_ready_within,
    },
    StepDoc {
        keyword: "Then",
        pattern: "namespaces \"{namespace}\" and \"{namespace}\" were never touched",
        example: "namespaces \"prod-2\" and \"prod-3\" were never touched",
        doc: "Fails if this scenario scaled a deployment of these namespaces, or if, in any region's cluster, a pod of theirs was created (a replacement) or restarted since the scenario's first fault (second precision: that second counts), or is being deleted. Also `namespace \"prod-2\" was never touched`, or a comma list.",
        domain: "kube",
        analyze: analyze_untouched,
    },
];

fn verbs(pairs: &[(&str, &str)]) -> std::collections::BTreeSet<(String, String)> {
    pairs
        .iter()
        .map(|(v, r)| ((*v).to_owned(), (*r).to_owned()))
        .collect()
}

/// Checks the region has an allowed context; returns it.
fn context(
    a: &mut Analysis,
    arg: &'static str,
    region: &str,
    platform: &Platform,
) -> Option<String> {
    match provider::region_context(platform, region) {
        Ok(context) => match provider::check_allowed(platform, context) {
            Ok(()) => Some(context.to_owned()),
            Err(e) => {
                a.problem(
                    arg,
                    format!("kube context \"{context}\" of region \"{region}\" is not allowed"),
                    format!("{e}"),
                );
                None
            }
        },
        Err(_) => {
            a.problem(
                arg,
                format!("region \"{region}\" has no kube-context"),
                format!("set regions.{region}.kube-context in the platform file"),
            );
            None
        }
    }
}

fn zone(a: &mut Analysis, args: &Args, platform: &Platform, drain: bool) {
    let zone = args.get("zone");
    let Some(region) = provider::zone_region(platform, zone) else {
        let known: Vec<&String> = platform.regions.values().flat_map(|r| &r.zones).collect();
        a.problem(
            "zone",
            format!("zone \"{zone}\" is not in any region of the platform"),
            format!("known zones: {}", crate::diagnostic::one_of(&known)),
        );
        return;
    };
    let Some(ctx) = context(a, "zone", region, platform) else {
        return;
    };
    let mut need = Requirement::default();
    need.zones.insert(zone.to_owned());
    if drain {
        need.verbs = verbs(&[
            ("list", "nodes"),
            ("patch", "nodes"),
            ("list", "pods"),
            ("create", "pods/eviction"),
        ]);
        a.effects.push(Effect {
            what: format!("[{ctx}] cordon the nodes of zone {zone} and evict their pods"),
            undo: format!("[{ctx}] uncordon the nodes this drill cordoned"),
        });
    } else {
        need.verbs = verbs(&[("list", "nodes"), ("get", "nodes"), ("patch", "nodes")]);
        a.effects.push(Effect {
            what: format!("[{ctx}] taint the nodes of zone {zone} {ZONE_OUTAGE_TAINT}:NoExecute"),
            undo: format!("[{ctx}] remove that taint from those nodes"),
        });
    }
    a.needs.push(Need::Kube(ctx, need));
}

fn analyze_zone_down(args: &Args, platform: &Platform) -> Analysis {
    let mut a = Analysis::default();
    zone(&mut a, args, platform, false);
    a
}

fn analyze_zone_drained(args: &Args, platform: &Platform) -> Analysis {
    let mut a = Analysis::default();
    zone(&mut a, args, platform, true);
    a
}

/// Region, context and namespaces for a scaling step.
fn scaling(a: &mut Analysis, args: &Args, platform: &Platform, watch: bool) -> Option<String> {
    let region = args.get("region");
    a.region("region", region, platform);
    if !platform.regions.contains_key(region) {
        return None;
    }
    let ctx = context(a, "region", region, platform)?;
    if platform.namespaces.values().all(|n| n.services.is_empty()) {
        a.problem(
            "region",
            "the platform names no services to scale",
            "list services under namespaces.<ns>.services in the platform file",
        );
    }
    for ns in platform.namespaces.keys() {
        if !platform.safety.allow.namespaces.contains(ns) {
            a.problem(
                "region",
                format!("namespace \"{ns}\" is not in safety.allow.namespaces"),
                "add it to safety.allow.namespaces, or remove it from the platform file",
            );
        }
    }
    let mut need = Requirement {
        namespaces: platform.namespaces.keys().cloned().collect(),
        ..Requirement::default()
    };
    need.verbs = verbs(&[("get", "deployments/scale"), ("patch", "deployments/scale")]);
    if watch {
        need.verbs
            .extend(verbs(&[("list", "pods"), ("watch", "pods")]));
    }
    a.needs.push(Need::Kube(ctx.clone(), need));
    Some(ctx)
}

fn analyze_region_dark(args: &Args, platform: &Platform) -> Analysis {
    let mut a = Analysis::default();
    if let Some(ctx) = scaling(&mut a, args, platform, false) {
        a.effects.push(Effect {
            what: format!("[{ctx}] scale every platform service to 0"),
            undo: format!("[{ctx}] scale each back to its recorded replica count"),
        });
    }
    a
}

fn analyze_scale_up(args: &Args, platform: &Platform) -> Analysis {
    let mut a = Analysis::default();
    if let Some(ctx) = scaling(&mut a, args, platform, true) {
        a.effects.push(Effect {
            what: format!("[{ctx}] scale every platform service to its failover-replicas"),
            undo: format!("[{ctx}] scale each back to its recorded replica count (normally 0)"),
        });
    }
    a
}

fn analyze_ready_within(args: &Args, platform: &Platform) -> Analysis {
    let mut a = Analysis::default();
    a.region("region", args.get("region"), platform);
    a.duration("duration", args.get("duration"));
    a
}

/// The quoted names of a `"a", "b" and "c"` list.
fn names(list: &str) -> Vec<String> {
    list.split('"')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect()
}

fn analyze_untouched(args: &Args, platform: &Platform) -> Analysis {
    let mut a = Analysis::default();
    let namespaces = names(args.get("namespaces"));
    for ns in &namespaces {
        if !platform.namespaces.contains_key(ns) {
            a.problem(
                "namespaces",
                format!("namespace \"{ns}\" is not in the platform"),
                format!(
                    "known namespaces: {}",
                    crate::diagnostic::one_of(&platform.namespaces.keys().collect::<Vec<_>>())
                ),
            );
        }
    }
    for region in platform.regions.values() {
        if let Some(ctx) = &region.kube_context
            && provider::check_allowed(platform, ctx).is_ok()
        {
            a.needs.push(Need::Kube(
                ctx.clone(),
                Requirement {
                    namespaces: namespaces.iter().cloned().collect(),
                    verbs: verbs(&[("list", "pods")]),
                    ..Requirement::default()
                },
            ));
        }
    }
    a
}

fn failure(e: impl std::fmt::Display) -> Failure {
    Failure(e.to_string())
}

fn mark_fault(world: &Drill, name: &str) {
    let at = world.clock().now();
    world.milestone(format!("fault injected: {name}"), at, "engine");
}

async fn zone_fault(world: &mut Drill, zone: String, drain: bool) -> Result<(), Failure> {
    let platform = world.run.platform.clone();
    let region = provider::zone_region(&platform, &zone).ok_or_else(|| {
        Failure(format!(
            "zone \"{zone}\" is not in any region of the platform"
        ))
    })?;
    let ctx = provider::region_context(&platform, region).map_err(failure)?;
    let client = provider::client(&platform, ctx).await.map_err(failure)?;
    let nodes = provider::zone_nodes(&client, ctx, &zone)
        .await
        .map_err(failure)?;
    let name = if drain {
        format!("zone-drained {zone}")
    } else {
        format!("zone-outage {zone}")
    };
    mark_fault(world, &name);
    if drain {
        // Only the nodes not already cordoned are ours to uncordon.
        let ours = provider::uncordoned(&client, ctx, &nodes)
            .await
            .map_err(failure)?;
        let undo = Undo::Kube(KubeUndo::Uncordon {
            context: ctx.to_owned(),
            zone: zone.clone(),
            nodes: ours.clone(),
        });
        let evicted = world
            .inject(
                Change::Fault,
                &format!("{name}: cordon {} nodes and evict their pods", ours.len()),
                undo,
                async {
                    provider::set_cordon(&client, ctx, &ours, true).await?;
                    provider::evict_from(&client, ctx, &nodes).await
                },
            )
            .await
            .map_err(failure)?;
        tracing::info!(context = ctx, zone = %zone, evicted = evicted.len(), "zone drained");
    } else {
        let undo = Undo::Kube(KubeUndo::Untaint {
            context: ctx.to_owned(),
            zone: zone.clone(),
            nodes: nodes.clone(),
        });
        world
            .inject(
                Change::Fault,
                &format!(
                    "{name}: taint {} nodes {ZONE_OUTAGE_TAINT}:NoExecute",
                    nodes.len()
                ),
                undo,
                provider::set_taint(&client, ctx, &nodes, true),
            )
            .await
            .map_err(failure)?;
    }
    Ok(())
}

#[when(regex = r#"^zone "(?P<zone>[^"]+)" goes down$"#)]
async fn zone_goes_down(world: &mut Drill, zone: String) -> Result<(), Failure> {
    zone_fault(world, zone, false).await
}

#[when(regex = r#"^zone "(?P<zone>[^"]+)" is drained$"#)]
async fn zone_is_drained(world: &mut Drill, zone: String) -> Result<(), Failure> {
    zone_fault(world, zone, true).await
}

#[when(regex = r#"^region "(?P<region>[^"]+)" goes dark$"#)]
async fn region_goes_dark(world: &mut Drill, region: String) -> Result<(), Failure> {
    let platform = world.run.platform.clone();
    let ctx = provider::region_context(&platform, &region).map_err(failure)?;
    let client = provider::client(&platform, ctx).await.map_err(failure)?;
    let services = provider::services(&platform);
    let before = provider::current_replicas(&client, ctx, &services)
        .await
        .map_err(failure)?;
    let zero: Vec<provider::Replicas> = before
        .iter()
        .map(|r| provider::Replicas {
            replicas: 0,
            ..r.clone()
        })
        .collect();
    let name = format!("region-dark {region}");
    mark_fault(world, &name);
    let undo = Undo::Kube(KubeUndo::Scale {
        context: ctx.to_owned(),
        replicas: before,
    });
    world
        .inject(
            Change::Fault,
            &format!("{name}: scale {} services to 0", zero.len()),
            undo,
            provider::scale(&client, ctx, &zero),
        )
        .await
        .map_err(failure)?;
    Ok(())
}

/// Records milestones from a background task, as long as the scenario's world lives.
#[derive(Clone)]
struct Recorder {
    timeline: Weak<Mutex<Timeline>>,
    changed: Arc<watch::Sender<u64>>,
    events: Bus,
}

impl Recorder {
    fn record(&self, name: &str, at: PlatformTime, source: &str) {
        let Some(timeline) = self.timeline.upgrade() else {
            return;
        };
        let milestone = Milestone {
            name: name.to_owned(),
            at,
            source: source.to_owned(),
        };
        match timeline.lock() {
            Ok(mut t) => t.record(milestone.clone()),
            Err(poisoned) => poisoned.into_inner().record(milestone.clone()),
        }
        self.changed.send_modify(|v| *v += 1);
        self.events.emit(&Event::Milestone(milestone));
    }
}

/// How long the background readiness watch may run (platform time) if no step waits on it.
const WATCH_LIMIT: Duration = Duration::from_secs(3600);

#[when(regex = r#"^the failover cluster in "(?P<region>[^"]+)" is scaled up$"#)]
async fn failover_scaled_up(world: &mut Drill, region: String) -> Result<(), Failure> {
    let platform = world.run.platform.clone();
    let ctx = provider::region_context(&platform, &region)
        .map_err(failure)?
        .to_owned();
    let client = provider::client(&platform, &ctx).await.map_err(failure)?;
    let want = provider::services(&platform);
    let before = provider::current_replicas(&client, &ctx, &want)
        .await
        .map_err(failure)?;
    let clock = world.clock();
    let started = clock.now();
    world.milestone(
        format!("failover scale-up started: {region}"),
        started,
        "engine",
    );
    // The watch starts before the scale, so no Ready event can slip past it.
    let recorder = Recorder {
        timeline: Arc::downgrade(&world.timeline),
        changed: Arc::clone(&world.timeline_changed),
        events: world.run.events.clone(),
    };
    let (watch_client, watch_ctx, watch_want) = (client.clone(), ctx.clone(), want.clone());
    tokio::spawn(async move {
        let first = recorder.clone();
        let all = recorder.clone();
        let outcome = provider::watch_ready(
            &watch_client,
            &watch_ctx,
            &watch_want,
            &clock,
            started.plus(WATCH_LIMIT),
            |at, reported| {
                first.record("first failover pod ready", at, "kube-watch");
                // The API's own Ready transition time (second precision), for comparison.
                if let Ok(offset) = reported.duration_since(clock.wall_origin()) {
                    first.record(
                        "first failover pod ready (API transition time)",
                        PlatformTime::from_offset(offset),
                        "kube-api",
                    );
                }
            },
            |at| all.record("failover pods ready", at, "kube-watch"),
        )
        .await;
        if let Err(e) = outcome {
            tracing::warn!(error = %e, "failover readiness watch ended");
        }
    });
    let undo = Undo::Kube(KubeUndo::Scale {
        context: ctx.clone(),
        replicas: before,
    });
    world
        .inject(
            Change::Remediation,
            &format!(
                "failover-scale-up {region}: scale {} services to their failover replicas",
                want.len()
            ),
            undo,
            provider::scale(&client, &ctx, &want),
        )
        .await
        .map_err(failure)?;
    Ok(())
}

#[then(
    regex = r#"^the failover pods in "(?P<region>[^"]+)" are ready within (?P<duration>\d[^\s]*(?: (?:ms|milliseconds?|seconds?|secs?|minutes?|mins?|hours?))?)$"#
)]
async fn failover_ready_within(
    world: &mut Drill,
    region: String,
    within: String,
) -> Result<(), Failure> {
    let within = parse_duration(&within).map_err(|e| Failure(e.parts().0))?;
    let started_name = format!("failover scale-up started: {region}");
    let started = world.timeline().first(&started_name).cloned().ok_or_else(|| {
        Failure(format!(
            "the failover cluster in \"{region}\" was not scaled up in this scenario (hint: add `When the failover cluster in \"{region}\" is scaled up` before this step)"
        ))
    })?;
    let deadline = started.at.plus(within);
    world.run.events.emit(&Event::Waiting {
        what: "failover pods ready".into(),
        since: started.at,
        deadline,
    });
    let ready = world
        .wait_for(deadline, |t| {
            t.first_since("failover pods ready", started.at).cloned()
        })
        .await;
    match ready {
        Some(m) if m.at <= deadline => Ok(()),
        _ => Err(Failure(format!(
            "the failover pods in \"{region}\" were not all Ready within {} of the scale-up",
            format_duration(within)
        ))),
    }
}

#[then(
    regex = r#"^namespaces? (?P<namespaces>"[^"]+"(?:(?:, | and |, and )"[^"]+")*) (?:was|were) never touched$"#
)]
async fn never_touched(world: &mut Drill, namespaces: String) -> Result<(), Failure> {
    let platform = world.run.platform.clone();
    let clock = world.clock();
    let since = world
        .faults
        .first()
        .map(|f| f.at)
        .or_else(|| world.timeline().milestones().first().map(|m| m.at))
        .ok_or_else(|| {
            Failure("nothing happened in this scenario yet, so there is nothing to compare".into())
        })?;
    let since = clock.wall(since);
    let wanted = names(&namespaces);
    let mut touched = Vec::new();
    // A scale-down removes pods without creating any: the drill's own ledger says it did.
    for fault in &world.faults {
        if let Undo::Kube(KubeUndo::Scale { context, replicas }) = &fault.undo {
            for r in replicas.iter().filter(|r| wanted.contains(&r.namespace)) {
                touched.push(format!(
                    "[{context}] {}/{} was scaled by \"{}\"",
                    r.namespace, r.name, fault.fault
                ));
            }
        }
    }
    for (name, region) in &platform.regions {
        let Some(ctx) = &region.kube_context else {
            continue;
        };
        let client = provider::client(&platform, ctx).await.map_err(failure)?;
        for ns in &wanted {
            for t in provider::touched_since(&client, ctx, ns, since)
                .await
                .map_err(failure)?
            {
                touched.push(format!("[{name}] {t}"));
            }
        }
    }
    if touched.is_empty() {
        Ok(())
    } else {
        Err(Failure(format!(
            "namespaces {namespaces} were touched: {}",
            touched.join("; ")
        )))
    }
}
