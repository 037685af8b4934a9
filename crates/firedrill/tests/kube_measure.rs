//! Measurements of the embedded Kubernetes API server, not tests: run them explicitly with
//! `cargo test --release --test kube_measure -- --ignored --nocapture --test-threads 1`.
//!
//! Measured on 2 shared cores (2026-11-26): the zone drain through firedrill's provider takes
//! 0.96–1.07 s (cordon 22 ms, one pod list 0.7–0.86 s, 2,000 evictions 0.19–0.24 s); the raw
//! kube-rs drain with a list per node 1.7–2.0 s (evictions 0.28–0.55 s, were 7.1–8.3 s before
//! the controller left the lock free between passes); pod Ready → watch event p50 2–5 ms.

#![allow(clippy::disallowed_macros)] // measurements and diagnostics printed for `--nocapture`

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use firedrill_core::clock::Clock;
use firedrill_sim::kube::{Cluster, ClusterSpec, TimingModel};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, EvictParams, ListParams};
use kube::runtime::watcher;

fn ready_count(cluster: &Cluster) -> usize {
    cluster
        .objects("pods", None)
        .iter()
        .filter(|p| {
            p["status"]["conditions"].as_array().is_some_and(|cs| {
                cs.iter()
                    .any(|c| c["type"] == "Ready" && c["status"] == "True")
            })
        })
        .count()
}

async fn wait_until(what: &str, limit: Duration, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !check() {
        assert!(
            Instant::now() < deadline,
            "{what}: not reached within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Three zones of 100 nodes, 6,000 pods (40 deployments of 150, 2,000 pods per zone); drains zone a through the API the
/// way firedrill's kube provider would (cordon each node, evict each pod, 64 in flight).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measurement: run explicitly with --ignored --nocapture"]
async fn measure_zone_drain_100_nodes_2000_pods() {
    let clock = Clock::scaled(1_000.0).expect("scale");
    let mut spec = ClusterSpec::new("us-west1", clock)
        .zone("us-west1-a", &[("prod-1", 100)])
        .zone("us-west1-b", &[("prod-1", 100)])
        .zone("us-west1-c", &[("prod-1", 100)])
        .namespace("prod-1")
        .seed(1);
    for i in 0..40 {
        spec = spec.deployment("prod-1", &format!("svc-{i:02}"), 150, Some("prod-1"));
    }
    let started = Instant::now();
    let cluster = Cluster::start(spec).await.expect("cluster starts");
    wait_until("6000 pods Ready", Duration::from_secs(300), || {
        ready_count(&cluster) == 6_000
    })
    .await;
    println!(
        "start: 300 nodes, 6000 pods Ready after {:?} wall",
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
    assert_eq!(victims.len(), 2_000, "2000 pods in zone a");
    futures::stream::iter(victims.iter().map(|(ns, name)| {
        let api: Api<Pod> = Api::namespaced(client.clone(), ns);
        async move { api.evict(name, &EvictParams::default()).await }
    }))
    .buffer_unordered(64)
    .try_collect::<Vec<_>>()
    .await
    .expect("evictions");
    let t_evict = t0.elapsed();
    wait_until(
        "6000 pods Ready outside zone a",
        Duration::from_secs(300),
        || ready_count(&cluster) == 6_000,
    )
    .await;
    let t_ready = t0.elapsed();
    println!(
        "drain zone a (100 nodes, 2000 pods) via kube-rs: cordon {t_cordon:?}, list pods per node {:?}, evict 2000 (64 in flight) {:?}, total drain {t_evict:?} wall",
        t_list - t_cordon,
        t_evict - t_list
    );
    println!(
        "  all 6000 pods Ready again {t_ready:?} wall after the drain started ({:?} after the last eviction)",
        t_ready - t_evict
    );
}

/// The same zone drain done by firedrill's own provider (`Conn`): cordon the zone's nodes, list
/// the platform namespace's pods once, evict the zone's 2,000 (its own concurrency).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measurement: run explicitly with --ignored --nocapture"]
async fn measure_provider_zone_drain_100_nodes_2000_pods() {
    let clock = Clock::scaled(1_000.0).expect("scale");
    let mut spec = ClusterSpec::new("us-west1", clock)
        .zone("us-west1-a", &[("prod-1", 100)])
        .zone("us-west1-b", &[("prod-1", 100)])
        .zone("us-west1-c", &[("prod-1", 100)])
        .namespace("prod-1")
        .seed(1);
    for i in 0..40 {
        spec = spec.deployment("prod-1", &format!("svc-{i:02}"), 150, Some("prod-1"));
    }
    let cluster = Cluster::start(spec).await.expect("cluster starts");
    wait_until("6000 pods Ready", Duration::from_secs(300), || {
        ready_count(&cluster) == 6_000
    })
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let kubeconfig = dir.path().join("kubeconfig");
    firedrill_sim::kube::write_kubeconfig(&kubeconfig, &[("us-west1", &cluster.url())])
        .expect("kubeconfig");
    let platform = firedrill_platform::load_str(
        &dir.path().join("m.yaml"),
        "name: m\nkubeconfig: kubeconfig\ntime-scale: 1000\nregions:\n  us-west1: {role: primary, kube-context: us-west1, zones: [us-west1-a]}\n  us-west2: {role: failover}\nsafety:\n  allow:\n    kube-contexts: [us-west1]\n    namespaces: [prod-1]\n",
        &|_| None,
    )
    .expect("platform");
    let conn = firedrill_providers::kube::Conn::connect(&platform, "us-west1")
        .await
        .expect("conn");
    let t0 = Instant::now();
    let nodes = conn.zone_nodes("us-west1-a").await.expect("nodes");
    conn.set_cordon(&nodes, true).await.expect("cordon");
    let t_cordon = t0.elapsed();
    let pods = conn
        .pods_on(&["prod-1".to_owned()], &nodes)
        .await
        .expect("pods");
    let t_list = t0.elapsed();
    assert_eq!(pods.len(), 2_000, "2000 pods in zone a");
    let drained = conn.evict(&pods, false).await.expect("evictions");
    let t_evict = t0.elapsed();
    assert_eq!(drained.evicted.len(), 2_000);
    println!(
        "drain zone a (100 nodes, 2000 pods) via firedrill's provider: cordon {t_cordon:?}, list {:?}, evict 2000 {:?}, total drain {t_evict:?} wall",
        t_list - t_cordon,
        t_evict - t_list
    );
}

/// From the instant the controller marks a pod Ready to the instant a kube-rs watcher sees it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measurement: run explicitly with --ignored --nocapture"]
async fn measure_ready_to_watch_event_latency() {
    let clock = Clock::real();
    let timing = TimingModel {
        image_pull: (Duration::from_millis(20), Duration::from_millis(400)),
        container_start: (Duration::from_millis(10), Duration::from_millis(100)),
        readiness: (Duration::from_millis(5), Duration::from_millis(50)),
        ..TimingModel::default()
    };
    let spec = ClusterSpec::new("us-west1", clock)
        .zone("us-west1-a", &[("prod-1", 10)])
        .zone("us-west1-b", &[("prod-1", 10)])
        .namespace("prod-1")
        .deployment("prod-1", "web", 300, Some("prod-1"))
        .seed(9)
        .timing(timing);
    let cluster = Cluster::start(spec).await.expect("cluster starts");
    let client = kube::Client::try_from(kube::Config::new(
        cluster.url().parse().expect("cluster URL"),
    ))
    .expect("client");
    let pods: Api<Pod> = Api::namespaced(client, "prod-1");
    let mut seen: BTreeMap<String, Instant> = BTreeMap::new();
    let mut stream = watcher(pods, watcher::Config::default()).boxed();
    let deadline = Instant::now() + Duration::from_secs(30);
    while seen.len() < 300 {
        assert!(Instant::now() < deadline, "300 pods Ready within 30 s");
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
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measurement: run explicitly with --ignored --nocapture"]
async fn measure_kubectl_zone_drain_100_nodes_2000_pods() {
    let clock = Clock::scaled(1_000.0).expect("scale");
    let mut spec = ClusterSpec::new("us-west1", clock)
        .zone("us-west1-a", &[("prod-1", 100)])
        .zone("us-west1-b", &[("prod-1", 100)])
        .zone("us-west1-c", &[("prod-1", 100)])
        .namespace("prod-1")
        .seed(1);
    for i in 0..40 {
        spec = spec.deployment("prod-1", &format!("svc-{i:02}"), 150, Some("prod-1"));
    }
    let cluster = Cluster::start(spec).await.expect("cluster starts");
    wait_until("6000 pods Ready", Duration::from_secs(300), || {
        ready_count(&cluster) == 6_000
    })
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let kubeconfig = dir.path().join("kubeconfig");
    firedrill_sim::kube::write_kubeconfig(&kubeconfig, &[("us-west1", &cluster.url())])
        .expect("kubeconfig");
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
    println!("kubectl drain of zone a (100 nodes): {evicted} pods evicted in {took:?} wall");
    wait_until(
        "6000 pods Ready outside zone a",
        Duration::from_secs(300),
        || ready_count(&cluster) == 6_000,
    )
    .await;
    println!(
        "  all 6000 pods Ready again {:?} wall after the drain started",
        t0.elapsed()
    );
}
