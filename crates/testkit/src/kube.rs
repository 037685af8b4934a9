//! In-process Kubernetes clusters (the embedded API server) as tests use them: a spec over
//! three zones, a client, and what a test reads back from the server's ground truth.

use std::path::Path;

use firedrill_core::clock::Clock;
use firedrill_sim::kube::{Cluster, ClusterSpec};
use serde_json::Value;

/// The taint a zone outage puts on each node of the zone.
pub const ZONE_OUTAGE_TAINT: &str = "firedrill.dev/zone-outage";

/// A cluster of `region` over the zones `{region}-a`, `-b` and `-c`, each with `pools` (node
/// pool, nodes), its time `scale` times real time and its draws seeded by `seed`.
///
/// # Panics
///
/// When `scale` is not a valid time scale.
#[must_use]
pub fn three_zones(region: &str, scale: f64, seed: u64, pools: &[(&str, usize)]) -> ClusterSpec {
    let clock = Clock::scaled(scale).expect("a valid time scale");
    let mut spec = ClusterSpec::new(region, clock).seed(seed);
    for zone in ["a", "b", "c"] {
        spec = spec.zone(format!("{region}-{zone}"), pools);
    }
    spec
}

/// A kube-rs client straight at `cluster`'s URL.
///
/// # Panics
///
/// When the client cannot be built.
#[must_use]
pub fn client(cluster: &Cluster) -> kube::Client {
    let url = cluster.url().parse().expect("the cluster's URL");
    kube::Client::try_from(kube::Config::new(url)).expect("a kube client")
}

/// A kube-rs client for `context` of the kubeconfig at `path`, as a user's client reaches a
/// cluster.
///
/// # Panics
///
/// When the kubeconfig cannot be read or has no such context.
pub async fn client_from_kubeconfig(path: &Path, context: &str) -> kube::Client {
    let kubeconfig = kube::config::Kubeconfig::read_from(path)
        .unwrap_or_else(|e| panic!("read the kubeconfig {}: {e}", path.display()));
    let options = kube::config::KubeConfigOptions {
        context: Some(context.to_owned()),
        ..Default::default()
    };
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &options)
        .await
        .unwrap_or_else(|e| panic!("context {context} of {}: {e}", path.display()));
    kube::Client::try_from(config).expect("a kube client")
}

/// Whether a pod (as the server holds it) is Ready.
#[must_use]
pub fn is_ready(pod: &Value) -> bool {
    pod["status"]["conditions"].as_array().is_some_and(|cs| {
        cs.iter()
            .any(|c| c["type"] == "Ready" && c["status"] == "True")
    })
}

/// The Ready pods of `namespace` (every namespace for `None`) that are not being deleted.
#[must_use]
pub fn ready_pods(cluster: &Cluster, namespace: Option<&str>) -> Vec<Value> {
    cluster
        .objects("pods", namespace)
        .into_iter()
        .filter(|p| p["metadata"]["deletionTimestamp"].is_null() && is_ready(p))
        .collect()
}

/// How many nodes carry a zone outage's taint.
#[must_use]
pub fn zone_taints(cluster: &Cluster) -> usize {
    cluster
        .objects("nodes", None)
        .iter()
        .filter(|n| {
            n["spec"]["taints"]
                .as_array()
                .is_some_and(|t| t.iter().any(|t| t["key"] == ZONE_OUTAGE_TAINT))
        })
        .count()
}

/// The names of the nodes in `zone`.
#[must_use]
pub fn nodes_of(cluster: &Cluster, zone: &str) -> Vec<String> {
    cluster
        .objects("nodes", None)
        .iter()
        .filter(|n| n["metadata"]["labels"]["topology.kubernetes.io/zone"] == zone)
        .filter_map(|n| n["metadata"]["name"].as_str().map(str::to_owned))
        .collect()
}
