//! The Kubernetes provider's zone drain against the embedded API server: 300 nodes, 6,000
//! pods, zone a's 2,000 evicted. Full size with `cargo bench -p firedrill-providers --bench
//! kube` (the same drain through kube-rs and kubectl: `cargo bench -p firedrill-sim --bench
//! kube`); under `cargo test --benches` it runs once on a cluster of a few nodes.
//!
//! Measured on 2 shared cores (2026-11-26): 0.96–1.07 s (cordon 22 ms, one pod list
//! 0.7–0.86 s, 2,000 evictions 0.19–0.24 s).

#![allow(clippy::disallowed_macros)] // the figures are printed for the terminal that ran it

use std::time::Instant;

use firedrill_testkit::bench::Size;
use firedrill_testkit::kube::Fleet;
use firedrill_testkit::platform::Folder;

/// The zone drain done by firedrill's own provider (`Conn`): cordon the zone's nodes, list
/// the platform namespace's pods once, evict the zone's pods (its own concurrency).
async fn zone_drain_via_the_provider(size: Size) {
    let fleet = Fleet::zone_drain(size);
    let in_zone = fleet.pods() / 3;
    let cluster = fleet.start(1).await;
    let dir = Folder::with_kubeconfig(&[("us-west1", &cluster)]);
    let platform = dir.platform(
        "m.yaml",
        "name: m\ntime-scale: 1000\nregions:\n  us-west1: {role: primary, kube-context: us-west1, zones: [us-west1-a]}\n  us-west2: {role: failover}\nsafety:\n  allow:\n    kube-contexts: [us-west1]\n    namespaces: [prod-1]\n",
    );
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
    assert_eq!(pods.len(), in_zone, "{in_zone} pods in zone a");
    let drained = conn.evict(&pods, false).await.expect("evictions");
    let t_evict = t0.elapsed();
    assert_eq!(drained.evicted.len(), in_zone);
    println!(
        "drain zone a ({} nodes, {in_zone} pods) via firedrill's provider: cordon {t_cordon:?}, list {:?}, evict {in_zone} {:?}, total drain {t_evict:?} wall",
        fleet.nodes,
        t_list - t_cordon,
        t_evict - t_list
    );
}

firedrill_testkit::bench_main!(zone_drain_via_the_provider);
