//! Kubernetes steps: zone, region and pod faults, the failover scale-up and its readiness, the
//! in-cluster traffic switch, and namespaces a drill must leave alone.

use std::collections::BTreeSet;
use std::time::Duration;

use cucumber::{then, when};

use super::{Analysis, Args, Effect, Failure, Need, ResultExt, StepDoc, StepError, param};
use crate::world::Drill;
use firedrill_core::clock::{PlatformTime, format_duration};
use firedrill_core::names::{FAILOVER_PODS_READY, MilestoneName};
use firedrill_engine::events::Event;
use firedrill_engine::scenario::Change;
use firedrill_platform::{Platform, Role};
use firedrill_providers::Undo;
use firedrill_providers::kube::{
    self as provider, Conn, Kill, KubeUndo, NamespaceSnapshot, ReadyPods, Requirement, Switch,
    SwitchKind, ZONE_OUTAGE_TAINT,
};

/// The Kubernetes steps.
pub const DOCS: &[StepDoc] = &[
    StepDoc {
        keyword: "When",
        pattern: "zone {zone} goes down",
        example: "zone \"us-west1-a\" goes down",
        doc: "Puts the NoExecute taint `firedrill.dev/zone-outage` on every node of the zone (label `topology.kubernetes.io/zone`) in its region's cluster, so its pods are evicted and none schedule there; the undo, written to the ledger first, removes exactly that taint from exactly those nodes. Milestones `fault injected`, and `zone drained: {zone}` when the watch sees the last pod of the platform's namespaces leave the zone.",
        domain: "kube",
        analyze: analyze_zone_down,
    },
    StepDoc {
        keyword: "When",
        pattern: "zone {zone} is drained{force}",
        example: "zone \"us-west1-b\" is drained",
        doc: "Cordons every node of the zone, then evicts their pods of the platform's namespaces through the Eviction API (PodDisruptionBudgets apply; a blocked eviction fails the step and names the pods). With `, forcing past disruption budgets` a pod a budget protects is deleted instead, and the step names it. The undo uncordons exactly the nodes this drill cordoned. Milestone `zone drained: {zone}` as for `goes down`.",
        domain: "kube",
        analyze: analyze_zone_drained,
    },
    StepDoc {
        keyword: "When",
        pattern: "the pods of zone {zone} are deleted",
        example: "the pods of zone \"us-west1-c\" are deleted",
        doc: "Deletes every pod of the platform's namespaces on the zone's nodes (no budget applies; the nodes stay schedulable, so replacements may land there again). The undo waits until each namespace has as many Ready pods as before.",
        domain: "kube",
        analyze: analyze_zone_pods_deleted,
    },
    StepDoc {
        keyword: "When",
        pattern: "every zone of region {region} goes down",
        example: "every zone of region \"us-west1\" goes down",
        doc: "A region outage by its zones: `zone \"{zone}\" goes down` for every zone the platform lists for the region (one fault, one undo per zone).",
        domain: "kube",
        analyze: analyze_region_zones_down,
    },
    StepDoc {
        keyword: "When",
        pattern: "region {region} goes dark",
        example: "region \"us-west1\" goes dark",
        doc: "Scales every platform service of every platform namespace in the region's cluster to 0, recording each replica count in the ledger first; the undo scales them back and waits (at most 10m) until each deployment runs that many pods, Ready.",
        domain: "kube",
        analyze: analyze_region_dark,
    },
    StepDoc {
        keyword: "When",
        pattern: "{pods} of {selector} in {namespace}{of-region} is/are killed",
        example: "2 pods of \"app=storefront\" in \"prod-1\" are killed",
        doc: "Deletes that many pods matching the label selector (not already being deleted) (or `{percent}% of the pods of \"{selector}\" in \"{namespace}\"`, rounded up), chosen by a seeded generator, in the cluster of the region (default: the primary region). The undo waits until as many pods are Ready as before.",
        domain: "kube",
        analyze: analyze_pod_kill,
    },
    StepDoc {
        keyword: "When",
        pattern: "the failover cluster in {region} is scaled up",
        example: "the failover cluster in \"us-west2\" is scaled up",
        doc: "Scales every platform service in the region's cluster to its `failover-replicas` (a remediation: undone after the faults, back to the recorded counts, waiting at most 10m until the deployments run them) and watches the pods; milestones `first failover pod ready` and `failover pods ready` are stamped when the API's watch event arrives.",
        domain: "kube",
        analyze: analyze_scale_up,
    },
    StepDoc {
        keyword: "Then",
        pattern: "the failover pods in {region} are ready within {duration}",
        example: "the failover pods in \"us-west2\" are ready within 10m",
        doc: "Waits (on the watch, no polling) until the milestone `failover pods ready` of the scale-up, at most `duration` after the scale-up started.",
        domain: "kube",
        analyze: analyze_ready_within,
    },
    StepDoc {
        keyword: "Then",
        pattern: UNTOUCHED,
        example: "namespaces \"prod-2\" and \"prod-3\" were never touched",
        doc: "Compares these namespaces, in every region's cluster, with a snapshot taken when the scenario started (pods by uid with their restart counts, deployments' replicas): a pod created, deleted, replaced, restarted or being deleted, or a deployment scaled, fails the step and is named. Also `namespace \"prod-2\" was never touched`, or a comma list.",
        domain: "kube",
        analyze: analyze_untouched,
    },
    StepDoc {
        keyword: "When",
        pattern: "the selector of service {service} in {namespace} of region {region} is set to {labels}",
        example: "the selector of service \"front\" in \"prod-1\" of region \"us-west1\" is set to \"region=us-west2\"",
        doc: "An in-cluster traffic switch: sets these labels (`k=v,k2=v2`) in the Service's selector (other selector labels stay). The old values go to the ledger first; the undo puts them back (a label that was not there is removed). Milestone `traffic switched: …`.",
        domain: "kube",
        analyze: analyze_switch_service,
    },
    StepDoc {
        keyword: "When",
        pattern: "ingress {ingress} in {namespace} of region {region} is pointed at service {service}",
        example: "ingress \"front\" in \"prod-1\" of region \"us-west1\" is pointed at service \"storefront-us-west2\"",
        doc: "An in-cluster traffic switch: every backend of the Ingress (each rule's paths and the default backend) now names this Service (ports stay). The undo puts the old rules and default backend back. Milestone `traffic switched: …`.",
        domain: "kube",
        analyze: analyze_switch_ingress,
    },
    StepDoc {
        keyword: "When",
        pattern: "key {key} of configmap {configmap} in {namespace} of region {region} is set to {value}",
        example: "key \"active-region\" of configmap \"front-door\" in \"prod-1\" of region \"us-west1\" is set to \"us-west2\"",
        doc: "An in-cluster traffic switch: sets one key of a ConfigMap the front door reads. The undo puts the old value back (or removes a key that was not there). Milestone `traffic switched: …`.",
        domain: "kube",
        analyze: analyze_switch_configmap,
    },
];

fn verbs(pairs: &[(&str, &str)]) -> BTreeSet<(String, String)> {
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

/// The platform's namespaces a fault may touch (safety rule 6): the ones it lists and allows.
fn fault_namespaces(platform: &Platform) -> Vec<String> {
    platform
        .namespaces
        .keys()
        .filter(|ns| platform.safety.allow.namespaces.contains(*ns))
        .cloned()
        .collect()
}

/// How a zone fault acts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ZoneMode {
    /// NoExecute taint on every node.
    Taint,
    /// Cordon, then evict (optionally forcing past budgets).
    Drain { force: bool },
    /// Delete the zone's pods.
    DeletePods,
}

fn zone(a: &mut Analysis, zone: &str, platform: &Platform, mode: ZoneMode) {
    let Some(region) = provider::zone_region(platform, zone) else {
        let known: Vec<&String> = platform.regions.values().flat_map(|r| &r.zones).collect();
        a.problem(
            "zone",
            format!("zone \"{zone}\" is not in any region of the platform"),
            format!(
                "known zones: {}",
                firedrill_core::diagnostic::one_of(&known)
            ),
        );
        return;
    };
    let Some(ctx) = context(a, "zone", region, platform) else {
        return;
    };
    let mut need = Requirement::default();
    need.zones.insert(zone.to_owned());
    match mode {
        ZoneMode::Drain { force } => {
            need.namespaces = fault_namespaces(platform).into_iter().collect();
            need.verbs = verbs(&[
                ("list", "nodes"),
                ("patch", "nodes"),
                ("list", "pods"),
                ("watch", "pods"),
                ("create", "pods/eviction"),
            ]);
            if force {
                need.verbs.extend(verbs(&[("delete", "pods")]));
            }
            a.effects.push(Effect {
                what: format!(
                    "[{ctx}] cordon the nodes of zone {zone} and evict their pods{}",
                    if force {
                        ", deleting those a disruption budget protects"
                    } else {
                        ""
                    }
                ),
                undo: format!("[{ctx}] uncordon the nodes this drill cordoned"),
            });
        }
        ZoneMode::DeletePods => {
            need.namespaces = fault_namespaces(platform).into_iter().collect();
            need.verbs = verbs(&[
                ("list", "nodes"),
                ("list", "pods"),
                ("watch", "pods"),
                ("delete", "pods"),
            ]);
            a.effects.push(Effect {
                what: format!("[{ctx}] delete the pods on the nodes of zone {zone}"),
                undo: format!("[{ctx}] wait until they are replaced"),
            });
        }
        ZoneMode::Taint => {
            // Pods are listed and watched for the `zone drained` milestone.
            need.namespaces = fault_namespaces(platform).into_iter().collect();
            need.verbs = verbs(&[
                ("list", "nodes"),
                ("get", "nodes"),
                ("patch", "nodes"),
                ("list", "pods"),
                ("watch", "pods"),
            ]);
            a.effects.push(Effect {
                what: format!(
                    "[{ctx}] taint the nodes of zone {zone} {ZONE_OUTAGE_TAINT}:NoExecute"
                ),
                undo: format!("[{ctx}] remove that taint from those nodes"),
            });
        }
    }
    a.needs.push(Need::Kube(ctx, need));
}

fn analyze_zone_down(args: &Args, platform: &Platform) -> Analysis {
    let mut a = Analysis::default();
    zone(&mut a, args.get("zone"), platform, ZoneMode::Taint);
    a
}

fn analyze_zone_drained(args: &Args, platform: &Platform) -> Analysis {
    let mut a = Analysis::default();
    let force = args.value::<param::Force>().is_some_and(|f| f.0);
    zone(
        &mut a,
        args.get("zone"),
        platform,
        ZoneMode::Drain { force },
    );
    a
}

fn analyze_zone_pods_deleted(args: &Args, platform: &Platform) -> Analysis {
    let mut a = Analysis::default();
    zone(&mut a, args.get("zone"), platform, ZoneMode::DeletePods);
    a
}

fn analyze_region_zones_down(args: &Args, platform: &Platform) -> Analysis {
    let mut a = Analysis::default();
    let region = args.get("region");
    a.region("region", region, platform);
    let Some(r) = platform.regions.get(region) else {
        return a;
    };
    if r.zones.is_empty() {
        a.problem(
            "region",
            format!("region \"{region}\" lists no zones"),
            format!("list them under regions.{region}.zones in the platform file"),
        );
    }
    for z in &r.zones {
        zone(&mut a, z, platform, ZoneMode::Taint);
    }
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
    // The undo scales back and watches each deployment until it is rolled out again.
    need.verbs = verbs(&[
        ("get", "deployments/scale"),
        ("patch", "deployments/scale"),
        ("list", "deployments"),
        ("watch", "deployments"),
    ]);
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

/// The region a step names, else the platform's primary region.
fn region_or_primary<'a>(args: &'a Args, platform: &'a Platform) -> Option<&'a str> {
    if args.get("of-region").is_empty() {
        platform.primary_region()
    } else {
        Some(args.get("of-region"))
    }
}

/// Checks a namespace a step changes: in the platform and allowed.
fn allowed_namespace(a: &mut Analysis, ns: &str, platform: &Platform) {
    if !platform.safety.allow.namespaces.iter().any(|n| n == ns) {
        a.problem(
            "namespace",
            format!("namespace \"{ns}\" is not in safety.allow.namespaces"),
            format!(
                "allowed: {}; add it to safety.allow.namespaces if drills may touch it",
                firedrill_core::diagnostic::one_of(&platform.safety.allow.namespaces)
            ),
        );
    }
}

fn analyze_pod_kill(args: &Args, platform: &Platform) -> Analysis {
    let mut a = Analysis::default();
    let ns = args.get("namespace");
    allowed_namespace(&mut a, ns, platform);
    if args.get("of-region").is_empty() {
        // Without `of region "…"` the pods are killed in the primary region.
        a.needs.push(Need::Region(Role::Primary));
    }
    let Some(region) = region_or_primary(args, platform) else {
        return a;
    };
    a.region("of-region", region, platform);
    if !platform.regions.contains_key(region) {
        return a;
    }
    if let Some(ctx) = context(&mut a, "of-region", region, platform) {
        a.effects.push(Effect {
            what: format!(
                "[{ctx}] delete {} of the Ready pods \"{}\" in {ns}",
                match args.value::<param::Pods>().map(|p| p.0) {
                    Some(Kill::Percent(p)) => format!("{p}%"),
                    Some(Kill::Count(n)) => n.to_string(),
                    None => args.get("pods").to_owned(),
                },
                args.get("selector")
            ),
            undo: format!("[{ctx}] wait until as many are Ready as before"),
        });
        a.needs.push(Need::Kube(
            ctx,
            Requirement {
                namespaces: [ns.to_owned()].into(),
                verbs: verbs(&[("list", "pods"), ("watch", "pods"), ("delete", "pods")]),
                ..Requirement::default()
            },
        ));
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
    a
}

fn analyze_untouched(args: &Args, platform: &Platform) -> Analysis {
    let mut a = Analysis::default();
    let namespaces = args
        .value::<param::Namespaces>()
        .map(|n| n.0)
        .unwrap_or_default();
    for ns in &namespaces {
        if !platform.namespaces.contains_key(ns) {
            a.problem(
                "namespaces",
                format!("namespace \"{ns}\" is not in the platform"),
                format!(
                    "known namespaces: {}",
                    firedrill_core::diagnostic::one_of(
                        &platform.namespaces.keys().collect::<Vec<_>>()
                    )
                ),
            );
        }
    }
    for (ctx, _) in untouched_contexts(platform) {
        a.needs.push(Need::Kube(
            ctx,
            Requirement {
                namespaces: namespaces.iter().cloned().collect(),
                verbs: verbs(&[("list", "pods"), ("list", "deployments")]),
                ..Requirement::default()
            },
        ));
    }
    a
}

/// Every region's allowed kube context, with its region: where untouched namespaces are checked.
fn untouched_contexts(platform: &Platform) -> Vec<(String, String)> {
    platform
        .regions
        .iter()
        .filter_map(|(name, r)| {
            r.kube_context
                .as_ref()
                .filter(|ctx| provider::check_allowed(platform, ctx).is_ok())
                .map(|ctx| (ctx.clone(), name.clone()))
        })
        .collect()
}

/// An in-cluster switch step's checks: namespace allowed, region with an allowed context.
fn analyze_switch(args: &Args, platform: &Platform, resource: &str, what: String) -> Analysis {
    let mut a = Analysis::default();
    let ns = args.get("namespace");
    allowed_namespace(&mut a, ns, platform);
    let region = args.get("region");
    a.region("region", region, platform);
    if !platform.regions.contains_key(region) {
        return a;
    }
    if let Some(ctx) = context(&mut a, "region", region, platform) {
        a.effects.push(Effect {
            what: format!("[{ctx}] {what}"),
            undo: format!("[{ctx}] put the old values back"),
        });
        a.needs.push(Need::Kube(
            ctx,
            Requirement {
                namespaces: [ns.to_owned()].into(),
                verbs: verbs(&[("get", resource), ("patch", resource)]),
                ..Requirement::default()
            },
        ));
    }
    a
}

fn analyze_switch_service(args: &Args, platform: &Platform) -> Analysis {
    analyze_switch(
        args,
        platform,
        "services",
        format!(
            "set {} in the selector of Service {}/{}",
            args.get("labels"),
            args.get("namespace"),
            args.get("service")
        ),
    )
}

fn analyze_switch_ingress(args: &Args, platform: &Platform) -> Analysis {
    analyze_switch(
        args,
        platform,
        "ingresses",
        format!(
            "point every backend of Ingress {}/{} at Service {}",
            args.get("namespace"),
            args.get("ingress"),
            args.get("service")
        ),
    )
}

fn analyze_switch_configmap(args: &Args, platform: &Platform) -> Analysis {
    analyze_switch(
        args,
        platform,
        "configmaps",
        format!(
            "set key {} of ConfigMap {}/{} to {}",
            args.get("key"),
            args.get("namespace"),
            args.get("configmap"),
            args.get("value")
        ),
    )
}

/// The fault's own milestone, which the engine stamps once its undo is on disk.
fn fault_milestone(name: &str) -> [MilestoneName; 1] {
    [MilestoneName::FaultInjectedAs(name.to_owned())]
}

/// A connection to `ctx` whose retries sleep on the run's clock.
async fn connect(world: &Drill, ctx: &str) -> Result<Conn, Failure> {
    Ok(Conn::connect(world.platform(), ctx)
        .await
        .acting(|| format!("connect to kube context \"{ctx}\""))?
        .with_clock(world.clock()))
}

/// How long the undo of a pod delete waits for replacements (platform time).
const REPLACED_WITHIN: Duration = Duration::from_secs(10 * 60);

async fn zone_fault(world: &mut Drill, zone: String, mode: ZoneMode) -> Result<(), Failure> {
    let platform = world.run.platform.clone();
    let region = provider::zone_region(&platform, &zone).ok_or_else(|| {
        StepError::platform(
            format!("zone \"{zone}\" is not in any region of the platform"),
            format!("add it to the zones of its region in the platform file: regions.<region>.zones: [{zone}]"),
        )
    })?;
    let ctx = provider::region_context(&platform, region)
        .acting(|| format!("find the kube context of region \"{region}\""))?;
    let conn = connect(world, ctx).await?;
    let nodes = conn
        .zone_nodes(&zone)
        .await
        .acting(|| format!("list the nodes of zone \"{zone}\""))?;
    let namespaces = fault_namespaces(&platform);
    match mode {
        ZoneMode::Drain { force } => {
            let name = format!("zone-drained {zone}");
            // Only the nodes not already cordoned are ours to uncordon.
            let ours = conn
                .uncordoned(&nodes)
                .await
                .acting(|| format!("read which nodes of zone \"{zone}\" are cordoned"))?;
            let undo = Undo::Kube(KubeUndo::Uncordon {
                context: ctx.to_owned(),
                zone: zone.clone(),
                nodes: ours.clone(),
            });
            let drained = world
                .inject(
                    Change::Fault,
                    &format!("{name}: cordon {} nodes and evict their pods", ours.len()),
                    undo,
                    &fault_milestone(&name),
                    async {
                        conn.set_cordon(&ours, true).await?;
                        let pods = conn.pods_on(&namespaces, &nodes).await?;
                        conn.evict(&pods, force).await
                    },
                )
                .await
                .acting(|| format!("drain zone \"{zone}\""))?;
            if !drained.forced.is_empty() {
                tracing::warn!(
                    context = ctx,
                    zone = %zone,
                    "deleted {} pods a disruption budget protected: {}",
                    drained.forced.len(),
                    drained.forced.join(", ")
                );
                let at = world.clock().now();
                world.milestone(
                    MilestoneName::DisruptionBudgetsForced {
                        zone: zone.clone(),
                        pods: drained.forced.join(", "),
                    },
                    at,
                    "kube",
                );
            }
            tracing::info!(context = ctx, zone = %zone, evicted = drained.evicted.len(), "zone drained");
            watch_drained(world, &conn, &zone, namespaces, nodes);
        }
        ZoneMode::DeletePods => {
            let name = format!("zone-pods-deleted {zone}");
            let pods = conn
                .pods_on(&namespaces, &nodes)
                .await
                .acting(|| format!("list the pods on the nodes of zone \"{zone}\""))?;
            let mut before = Vec::new();
            for ns in &namespaces {
                before.push(ReadyPods {
                    namespace: ns.clone(),
                    selector: String::new(),
                    ready: conn
                        .ready_pods(ns, "")
                        .await
                        .acting(|| format!("count the Ready pods in namespace \"{ns}\""))?
                        .len(),
                });
            }
            let undo = Undo::Kube(KubeUndo::Replaced {
                context: ctx.to_owned(),
                pods: before,
                within: REPLACED_WITHIN,
            });
            world
                .inject(
                    Change::Fault,
                    &format!("{name}: delete {} pods", pods.len()),
                    undo,
                    &fault_milestone(&name),
                    conn.delete_pods(&pods, false),
                )
                .await
                .acting(|| format!("delete the pods of zone \"{zone}\""))?;
        }
        ZoneMode::Taint => {
            let name = format!("zone-outage {zone}");
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
                    &fault_milestone(&name),
                    conn.set_taint(&nodes, true),
                )
                .await
                .acting(|| format!("taint the nodes of zone \"{zone}\""))?;
            watch_drained(world, &conn, &zone, namespaces, nodes);
        }
    }
    Ok(())
}

/// Records the milestone `zone drained: {zone}` when the watch sees the last pod of the
/// platform's namespaces leave the zone's nodes (in the background: the step does not wait).
fn watch_drained(
    world: &Drill,
    conn: &Conn,
    zone: &str,
    namespaces: Vec<String>,
    nodes: Vec<String>,
) {
    let recorder = world.recorder();
    let clock = world.clock();
    let deadline = clock.now().plus(WATCH_LIMIT);
    let (conn, zone) = (conn.clone(), zone.to_owned());
    tokio::spawn(async move {
        match conn
            .watch_drained(&namespaces, &nodes, &clock, deadline)
            .await
        {
            Ok(at) => recorder.mark(MilestoneName::ZoneDrained(zone), at, "kube-watch"),
            Err(e) => tracing::warn!(error = %e, zone = %zone, "zone drain watch ended"),
        }
    });
}

#[when(expr = "zone {zone} goes down")]
async fn zone_goes_down(world: &mut Drill, zone: param::Zone) -> Result<(), Failure> {
    zone_fault(world, zone.0, ZoneMode::Taint).await
}

#[when(expr = "zone {zone} is drained{force}")]
async fn zone_is_drained(
    world: &mut Drill,
    zone: param::Zone,
    force: param::Force,
) -> Result<(), Failure> {
    zone_fault(world, zone.0, ZoneMode::Drain { force: force.0 }).await
}

#[when(expr = "the pods of zone {zone} are deleted")]
async fn zone_pods_deleted(world: &mut Drill, zone: param::Zone) -> Result<(), Failure> {
    zone_fault(world, zone.0, ZoneMode::DeletePods).await
}

#[when(expr = "every zone of region {region} goes down")]
async fn region_zones_down(world: &mut Drill, region: param::Region) -> Result<(), Failure> {
    let region = region.0;
    let zones = world
        .platform()
        .regions
        .get(&region)
        .map(|r| r.zones.clone())
        .ok_or_else(|| {
            StepError::platform(
                format!("region \"{region}\" is not in the platform"),
                format!("add regions.{region} with its zones to the platform file"),
            )
        })?;
    for zone in zones {
        zone_fault(world, zone, ZoneMode::Taint).await?;
    }
    Ok(())
}

#[when(expr = "region {region} goes dark")]
async fn region_goes_dark(world: &mut Drill, region: param::Region) -> Result<(), Failure> {
    let platform = world.run.platform.clone();
    let ctx = provider::region_context(&platform, &region)
        .acting(|| format!("find the kube context of region \"{region}\""))?;
    let conn = connect(world, ctx).await?;
    let services = provider::services(&platform);
    let before = conn
        .current_replicas(&services)
        .await
        .acting(|| format!("read the replicas of the services in region \"{region}\""))?;
    let zero: Vec<provider::Replicas> = before
        .iter()
        .map(|r| provider::Replicas {
            replicas: 0,
            ..r.clone()
        })
        .collect();
    let name = format!("region-dark {region}");
    let undo = Undo::Kube(KubeUndo::Scale {
        context: ctx.to_owned(),
        replicas: before,
    });
    world
        .inject(
            Change::Fault,
            &format!("{name}: scale {} services to 0", zero.len()),
            undo,
            &fault_milestone(&name),
            conn.scale(&zero),
        )
        .await
        .acting(|| format!("scale the services of region \"{region}\" to 0"))?;
    Ok(())
}

/// FNV-1a: a stable seed from text (the run and scenario pick the pods a kill takes).
fn seed_of(parts: &[&str]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in parts.iter().flat_map(|p| p.bytes().chain([0])) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

#[when(expr = "{pods} of {selector} in {namespace}{of-region} is/are killed")]
async fn pods_are_killed(
    world: &mut Drill,
    pods: param::Pods,
    selector: param::Selector,
    namespace: param::Namespace,
    region: param::OfRegion,
) -> Result<(), Failure> {
    let platform = world.run.platform.clone();
    let (kill, selector, namespace) = (pods.0, selector.0, namespace.0);
    let region = match region.0 {
        Some(region) => region,
        None => platform
            .primary_region()
            .ok_or_else(|| {
                StepError::platform(
                    "the platform has no primary region",
                    "give one region `role: primary` in the platform file, or name the region: `… in \"<namespace>\" of region \"<region>\"`",
                )
            })?
            .to_owned(),
    };
    let ctx = provider::region_context(&platform, &region)
        .acting(|| format!("find the kube context of region \"{region}\""))?;
    let conn = connect(world, ctx).await?;
    let ready = conn
        .ready_pods(&namespace, &selector)
        .await
        .acting(|| format!("count the Ready pods \"{selector}\" in namespace \"{namespace}\""))?
        .len();
    let seed = seed_of(&[&world.run.run_id, &world.name, &selector, &namespace]);
    let victims = conn
        .pick_victims(&namespace, &selector, kill, seed)
        .await
        .acting(|| format!("pick the pods \"{selector}\" to kill in namespace \"{namespace}\""))?;
    let name = format!(
        "pod-kill {} of \"{selector}\" in {namespace}",
        victims.len()
    );
    let undo = Undo::Kube(KubeUndo::Replaced {
        context: ctx.to_owned(),
        pods: vec![ReadyPods {
            namespace: namespace.clone(),
            selector: selector.clone(),
            ready,
        }],
        within: REPLACED_WITHIN,
    });
    let pods: Vec<(String, String)> = victims
        .iter()
        .map(|v| (namespace.clone(), v.clone()))
        .collect();
    world
        .inject(
            Change::Fault,
            &format!("{name}: {}", victims.join(", ")),
            undo,
            &fault_milestone(&name),
            conn.delete_pods(&pods, false),
        )
        .await
        .acting(|| format!("kill pods \"{selector}\" in namespace \"{namespace}\""))?;
    Ok(())
}

/// How long the background readiness watch may run (platform time) if no step waits on it.
const WATCH_LIMIT: Duration = Duration::from_secs(3600);

#[when(expr = "the failover cluster in {region} is scaled up")]
async fn failover_scaled_up(world: &mut Drill, region: param::Region) -> Result<(), Failure> {
    let region = region.0;
    let platform = world.run.platform.clone();
    let ctx = provider::region_context(&platform, &region)
        .acting(|| format!("find the kube context of region \"{region}\""))?
        .to_owned();
    let conn = connect(world, &ctx).await?;
    let want = provider::services(&platform);
    let before = conn
        .current_replicas(&want)
        .await
        .acting(|| format!("read the replicas of the services in region \"{region}\""))?;
    let clock = world.clock();
    let started = clock.now();
    // The watch starts before the scale, so no Ready event can slip past it.
    let recorder = world.recorder();
    let (watch_conn, watch_want) = (conn.clone(), want.clone());
    tokio::spawn(async move {
        let first = recorder.clone();
        let all = recorder.clone();
        let outcome = watch_conn
            .watch_ready(
                &watch_want,
                &clock,
                started.plus(WATCH_LIMIT),
                |at, reported| {
                    first.mark(MilestoneName::FirstFailoverPodReady, at, "kube-watch");
                    // The API's own Ready transition time (second precision), for comparison.
                    // Timestamps are wall-clock time, also on a compressed platform.
                    if let Ok(offset) = reported.duration_since(clock.wall_origin()) {
                        first.mark(
                            MilestoneName::FirstFailoverPodReadyReported,
                            PlatformTime::from_offset(clock.to_platform(offset)),
                            "kube-api",
                        );
                    }
                },
                |at| all.mark(MilestoneName::FailoverPodsReady, at, "kube-watch"),
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
            &[MilestoneName::FailoverScaleUpStarted(region.clone())],
            conn.scale(&want),
        )
        .await
        .acting(|| format!("scale the failover cluster in \"{region}\" up"))?;
    Ok(())
}

#[then(expr = "the failover pods in {region} are ready within {duration}")]
async fn failover_ready_within(
    world: &mut Drill,
    region: param::Region,
    within: param::Duration,
) -> Result<(), Failure> {
    let (region, within) = (region.0, within.value);
    let started_name = MilestoneName::FailoverScaleUpStarted(region.clone()).to_string();
    let started = world
        .timeline()
        .first(&started_name)
        .cloned()
        .ok_or_else(|| {
            StepError::precondition(
                format!("the failover cluster in \"{region}\" was not scaled up in this scenario"),
                format!(
                    "add `When the failover cluster in \"{region}\" is scaled up` before this step"
                ),
            )
        })?;
    let deadline = started.at.plus(within);
    world.run.events.emit(&Event::Waiting {
        what: MilestoneName::FailoverPodsReady.to_string(),
        since: started.at,
        deadline,
    });
    let ready = world
        .wait_for(deadline, |t| {
            t.first_since(FAILOVER_PODS_READY, started.at).cloned()
        })
        .await;
    match ready {
        Some(m) if m.at <= deadline => Ok(()),
        _ => Err(StepError::Timeout {
            awaited: format!("the failover pods in \"{region}\" to be all Ready"),
            within: format!("{} of the scale-up", format_duration(within)),
            seen: format!(
                "they were not (reached: {})",
                firedrill_core::diagnostic::one_of(&world.timeline().names())
            ),
            hint: "`kubectl describe pods` in the failover cluster says why; raise the deadline if they are only slow".into(),
        }),
    }
}

/// The untouched step (also scanned at scenario start, to know what to snapshot).
const UNTOUCHED: &str = "namespace(s) {namespaces} was/were never touched";

/// What the Kubernetes steps keep for one scenario.
#[derive(Debug, Default)]
pub struct Scenario {
    /// Namespaces as they were when the scenario started, per context.
    snapshots: Vec<NamespaceSnapshot>,
    /// Snapshots that could not be taken, for the untouched step to report.
    problems: Vec<String>,
}

/// At scenario start, before any step: snapshots every namespace an untouched step of the
/// scenario names (`steps` are the texts of its steps, background included), in every
/// region's cluster.
pub async fn scenario_started(world: &mut Drill, steps: &[String]) {
    world.kube = Scenario::default();
    let Some(untouched) = DOCS.iter().find(|d| d.pattern == UNTOUCHED) else {
        return;
    };
    let Ok(regex) = untouched.regex() else {
        return;
    };
    let namespaces: BTreeSet<String> = steps
        .iter()
        .filter(|s| regex.is_match(s))
        .filter_map(|s| untouched.read(s))
        .filter_map(|args| args.value::<param::Namespaces>())
        .flat_map(|n| n.0)
        .collect();
    if namespaces.is_empty() {
        return;
    }
    let platform = world.run.platform.clone();
    for (ctx, region) in untouched_contexts(&platform) {
        let conn = match connect(world, &ctx).await {
            Ok(c) => c,
            Err(e) => {
                world.kube.problems.push(format!("[{region}] {e}"));
                continue;
            }
        };
        for ns in &namespaces {
            match conn.snapshot(ns).await {
                Ok(s) => world.kube.snapshots.push(s),
                Err(e) => world.kube.problems.push(format!("[{region}] {e}")),
            }
        }
    }
}

#[then(expr = "namespace(s) {namespaces} was/were never touched")]
async fn never_touched(world: &mut Drill, wanted: param::Namespaces) -> Result<(), Failure> {
    let platform = world.run.platform.clone();
    let wanted = wanted.0;
    let quoted: Vec<String> = wanted.iter().map(|n| format!("\"{n}\"")).collect();
    // As the step wrote them: `"a", "b" and "c"`.
    let namespaces = match quoted.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} and {last}", rest.join(", ")),
        _ => quoted.join(""),
    };
    if !world.kube.problems.is_empty() {
        return Err(StepError::precondition(
            format!(
                "namespaces {namespaces} cannot be checked: the snapshot at scenario start failed: {}",
                world.kube.problems.join("; ")
            ),
            "make the clusters reachable from the scenario's start; the untouched step compares with that snapshot",
        ));
    }
    let mut touched = Vec::new();
    for (ctx, region) in untouched_contexts(&platform) {
        let conn = connect(world, &ctx).await?;
        for ns in &wanted {
            let Some(before) = world
                .kube
                .snapshots
                .iter()
                .find(|s| s.context == ctx && s.namespace == *ns)
            else {
                return Err(StepError::precondition(
                    format!(
                        "[{region}] namespace \"{ns}\" has no snapshot from the scenario's start"
                    ),
                    "the untouched step must be part of the scenario that runs the faults",
                ));
            };
            let now = conn
                .snapshot(ns)
                .await
                .acting(|| format!("snapshot namespace \"{ns}\" in region \"{region}\""))?;
            touched.extend(
                before
                    .changes(&now)
                    .into_iter()
                    .map(|c| format!("[{region}] {c}")),
            );
        }
    }
    if touched.is_empty() {
        Ok(())
    } else {
        Err(StepError::unmet(
            format!("namespaces {namespaces} never touched"),
            format!(
                "namespaces {namespaces} were touched since the scenario started: {}",
                touched.join("; ")
            ),
            "the changes above name each object; a fault reached further than it should have",
        ))
    }
}

/// An in-cluster traffic switch: old values to the ledger, then the patch; a remediation, so
/// it is undone after the faults.
async fn switch(world: &mut Drill, region: &str, switch: Switch) -> Result<(), Failure> {
    let platform = world.run.platform.clone();
    let ctx = provider::region_context(&platform, region)
        .acting(|| format!("find the kube context of region \"{region}\""))?;
    let conn = connect(world, ctx).await?;
    let (forward, restore) = conn
        .prepare_switch(&switch)
        .await
        .acting(|| format!("read what the traffic switch {} changes", switch.describe()))?;
    let what = switch.describe();
    let undo = Undo::Kube(KubeUndo::Restore {
        context: ctx.to_owned(),
        switch: Box::new(switch.clone()),
        patch: restore,
    });
    world
        .inject(
            Change::Remediation,
            &format!("traffic-switch [{ctx}] {what}"),
            undo,
            &[MilestoneName::TrafficSwitchStarted],
            conn.restore(&switch, &forward),
        )
        .await
        .acting(|| format!("switch traffic in region \"{region}\": {what}"))?;
    let at = world.clock().now();
    world.milestone(MilestoneName::TrafficSwitched(what), at, "kube");
    Ok(())
}

#[when(
    expr = "the selector of service {service} in {namespace} of region {region} is set to {labels}"
)]
async fn switch_service(
    world: &mut Drill,
    service: param::Service,
    namespace: param::Namespace,
    region: param::Region,
    labels: param::Labels,
) -> Result<(), Failure> {
    let labels = labels.0;
    switch(
        world,
        &region,
        Switch {
            namespace: namespace.0,
            name: service.0,
            change: SwitchKind::ServiceSelector { labels },
        },
    )
    .await
}

#[when(
    expr = "ingress {ingress} in {namespace} of region {region} is pointed at service {service}"
)]
async fn switch_ingress(
    world: &mut Drill,
    ingress: param::Ingress,
    namespace: param::Namespace,
    region: param::Region,
    service: param::Service,
) -> Result<(), Failure> {
    switch(
        world,
        &region,
        Switch {
            namespace: namespace.0,
            name: ingress.0,
            change: SwitchKind::IngressBackend { service: service.0 },
        },
    )
    .await
}

#[when(
    expr = "key {key} of configmap {configmap} in {namespace} of region {region} is set to {value}"
)]
async fn switch_configmap(
    world: &mut Drill,
    key: param::Key,
    configmap: param::ConfigMap,
    namespace: param::Namespace,
    region: param::Region,
    value: param::Value,
) -> Result<(), Failure> {
    switch(
        world,
        &region,
        Switch {
            namespace: namespace.0,
            name: configmap.0,
            change: SwitchKind::ConfigMapKey {
                key: key.0,
                value: value.0,
            },
        },
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_untouched_step_finds_every_quoted_namespace() {
        let untouched = DOCS
            .iter()
            .find(|d| d.pattern == UNTOUCHED)
            .expect("the untouched step's doc");
        let read = |text: &str| {
            untouched
                .read(text)
                .and_then(|args| args.value::<param::Namespaces>())
                .map(|n| n.0)
        };
        assert_eq!(
            read("namespaces \"prod-1\", \"prod-2\" and \"prod-3\" were never touched"),
            Some(vec!["prod-1".into(), "prod-2".into(), "prod-3".into()])
        );
        assert_eq!(
            read("namespace \"prod-2\" was never touched"),
            Some(vec!["prod-2".into()])
        );
        assert_eq!(read("region \"us-west1\" goes dark"), None);
    }
}
