//! Measurements of the embedded Kubernetes API server: a zone drain through kube-rs and
//! through kubectl on a 300-node, 6,000-pod cluster, and the lag from a pod turning Ready to a
//! kube-rs watcher's event. Full size with
//! `cargo bench -p firedrill-sim --bench kube` (the provider's own drain:
//! `cargo bench -p firedrill-providers --bench kube`); under `cargo test --benches` each runs
//! once on a cluster of a few nodes.
//!
//! Measured on 2 shared cores (2026-11-26): the zone drain through firedrill's provider takes
//! 0.96–1.07 s (cordon 22 ms, one pod list 0.7–0.86 s, 2,000 evictions 0.19–0.24 s); the raw
//! kube-rs drain with a list per node 1.7–2.0 s (evictions 0.28–0.55 s, were 7.1–8.3 s before
//! the controller left the lock free between passes); pod Ready → watch event p50 2–5 ms.

#![allow(clippy::disallowed_macros)] // the figures are printed for the terminal that ran it

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use firedrill_core::clock::Clock;
use firedrill_sim::kube::{Cluster, ClusterSpec, TimingModel};
use firedrill_testkit::bench::Size;
use firedrill_testkit::kube::Fleet;
use firedrill_testkit::platform::Folder;
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, EvictParams, ListParams};
use kube::runtime::watcher;

/// Zone a of [`Fleet::zone_drain`] drained through the API the way firedrill's kube provider would
/// (cordon each node, evict each pod, 64 in flight).
async fn zone_drain_via_kube_rs(size: Size) {
    let fleet = Fleet::zone_drain(size);
    let (total, in_zone) = (fleet.pods(), fleet.pods() / 3);
    let started = Instant::now();
    let cluster = fleet.start(1).await;
    println!(
        "start: {} nodes, {total} pods Ready after {:?} wall",
        3 * fleet.nodes,
        started.elapsed()
    );

    let mut config = kube::Config::new(cluster.url().parse().expect("cluster URL"));
    config.default_retry = false;
    let client = kube::Client::try_from(config).expect("client");
    let nodes: Api<Node> = Api::all(client.clone());
    let pods: Api<Pod> = Api::all(client.clone());
    let t0 = Instant::now();
    let zone = nodes
        .list(&ListParams::default().labels("topology.kubernetes.io/zone=us-west1-a"))
        .await
        .expect("nodes");
    futures::stream::iter(
        zone.items
            .iter()
            .map(|n| nodes.cordon(n.metadata.name.as_deref().expect("name"))),
    )
    .buffer_unordered(16)
    .try_collect::<Vec<_>>()
    .await
    .expect("cordon");
    let t_cordon = t0.elapsed();
    let mut victims = Vec::new();
    for n in &zone.items {
        let on = pods
            .list(&ListParams::default().fields(&format!(
                "spec.nodeName={}",
                n.metadata.name.as_deref().expect("name")
            )))
            .await
            .expect("pods on node");
        victims.extend(on.items.into_iter().map(|p| {
            (
                p.metadata.namespace.expect("ns"),
                p.metadata.name.expect("name"),
            )
        }));
    }
    let t_list = t0.elapsed();
    assert_eq!(victims.len(), in_zone, "{in_zone} pods in zone a");
    futures::stream::iter(victims.iter().map(|(ns, name)| {
        let api: Api<Pod> = Api::namespaced(client.clone(), ns);
        async move { api.evict(name, &EvictParams::default()).await }
    }))
    .buffer_unordered(64)
    .try_collect::<Vec<_>>()
    .await
    .expect("evictions");
    let t_evict = t0.elapsed();
    fleet.wait_ready(&cluster, "Ready outside zone a").await;
    let t_ready = t0.elapsed();
    println!(
        "drain zone a ({} nodes, {in_zone} pods) via kube-rs: cordon {t_cordon:?}, list pods per node {:?}, evict {in_zone} (64 in flight) {:?}, total drain {t_evict:?} wall",
        fleet.nodes,
        t_list - t_cordon,
        t_evict - t_list
    );
    println!(
        "  all {total} pods Ready again {t_ready:?} wall after the drain started ({:?} after the last eviction)",
        t_ready - t_evict
    );
}

/// From the instant the controller marks a pod Ready to the instant a kube-rs watcher sees it.
async fn ready_to_watch_event_latency(size: Size) {
    let (nodes, pods) = size.pick((10, 300), (2, 12));
    let clock = Clock::real();
    let timing = TimingModel {
        image_pull: (Duration::from_millis(20), Duration::from_millis(400)),
        container_start: (Duration::from_millis(10), Duration::from_millis(100)),
        readiness: (Duration::from_millis(5), Duration::from_millis(50)),
        ..TimingModel::default()
    };
    let spec = ClusterSpec::new("us-west1", clock)
        .zone("us-west1-a", &[("prod-1", nodes)])
        .zone("us-west1-b", &[("prod-1", nodes)])
        .namespace("prod-1")
        .deployment("prod-1", "web", pods as u32, Some("prod-1"))
        .seed(9)
        .timing(timing);
    let cluster = Cluster::start(spec).await.expect("cluster starts");
    let api: Api<Pod> = Api::namespaced(firedrill_testkit::kube::client(&cluster), "prod-1");
    let mut seen: BTreeMap<String, Instant> = BTreeMap::new();
    let mut stream = watcher(api, watcher::Config::default()).boxed();
    let deadline = Instant::now() + Duration::from_secs(30);
    while seen.len() < pods {
        assert!(Instant::now() < deadline, "{pods} pods Ready within 30 s");
        let ev = stream.try_next().await.expect("watch ok").expect("open");
        let arrived = Instant::now();
        if let watcher::Event::Apply(p) | watcher::Event::InitApply(p) = ev {
            let ready = p
                .status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
            if ready {
                seen.entry(p.metadata.name.expect("name"))
                    .or_insert(arrived);
            }
        }
    }
    let mut latencies: Vec<Duration> = seen
        .iter()
        .filter_map(|(name, arrived)| {
            cluster
                .pod_ready_at("prod-1", name)
                .map(|t| arrived.saturating_duration_since(clock.instant_of(t)))
        })
        .collect();
    latencies.sort();
    let pct = |p: usize| latencies[(latencies.len() - 1) * p / 100];
    println!(
        "pod Ready → kube-rs watcher event over {} pods: p50 {:?}, p90 {:?}, p99 {:?}, max {:?}",
        latencies.len(),
        pct(50),
        pct(90),
        pct(99),
        latencies[latencies.len() - 1]
    );
}

/// The same zone drain done by kubectl: `kubectl drain -l topology.kubernetes.io/zone=…`.
async fn zone_drain_via_kubectl(size: Size) {
    let fleet = Fleet::zone_drain(size);
    let cluster = fleet.start(1).await;
    let dir = Folder::with_kubeconfig(&[("us-west1", &cluster)]);
    let kubeconfig = dir.kubeconfig();
    let t0 = Instant::now();
    let out = tokio::process::Command::new(
        std::env::var("KUBECTL").unwrap_or_else(|_| "kubectl".to_owned()),
    )
    .arg("--kubeconfig")
    .arg(&kubeconfig)
    .args([
        "drain",
        "-l",
        "topology.kubernetes.io/zone=us-west1-a",
        "--ignore-daemonsets",
        "--delete-emptydir-data",
        "--timeout=600s",
    ])
    .env("HOME", dir.path())
    .output()
    .await
    .expect("kubectl runs");
    let took = t0.elapsed();
    assert!(
        out.status.success(),
        "kubectl drain failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let evicted = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.ends_with(" evicted"))
        .count();
    println!(
        "kubectl drain of zone a ({} nodes): {evicted} pods evicted in {took:?} wall",
        fleet.nodes
    );
    fleet.wait_ready(&cluster, "Ready outside zone a").await;
    println!(
        "  all {} pods Ready again {:?} wall after the drain started",
        fleet.pods(),
        t0.elapsed()
    );
}

firedrill_testkit::bench_main!(
    zone_drain_via_kube_rs,
    zone_drain_via_kubectl,
    ready_to_watch_event_latency
);
