//! In-process Kubernetes clusters (the embedded API server) as tests use them: a spec over
//! three zones, a client, and what a test reads back from the server's ground truth.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use firedrill_core::clock::Clock;
use firedrill_sim::kube::{Cluster, ClusterSpec};
use serde_json::Value;

/// The taint a zone outage puts on each node of the zone.
pub const ZONE_OUTAGE_TAINT: &str = "firedrill.dev/zone-outage";

/// A cluster of `region` on `clock` over the zones `{region}-a`, `-b` and `-c`, each with
/// `pools` (node pool, nodes), its draws seeded by `seed`.
#[must_use]
pub fn three_zones(region: &str, clock: Clock, seed: u64, pools: &[(&str, usize)]) -> ClusterSpec {
    let mut spec = ClusterSpec::new(region, clock).seed(seed);
    for zone in ["a", "b", "c"] {
        spec = spec.zone(format!("{region}-{zone}"), pools);
    }
    spec
}

/// A platform over `us-west1` (three zones, its kube context of the same name) and a failover
/// region without a cluster; `storefront` in `prod-1` and `prod-2`; the commands `wait-for-go`
/// (waits for a file `go` in its folder) and `wait-long` (30 s); compressed like the embedded
/// platform so backoff and replacement waits take milliseconds. The cluster for it is
/// [`storefronts`].
pub const STOREFRONTS_PLATFORM: &str = r"
name: test
time-scale: 1000
regions:
  us-west1:
    role: primary
    kube-context: us-west1
    zones: [us-west1-a, us-west1-b, us-west1-c]
  us-west2:
    role: failover
namespaces:
  prod-1:
    services:
      storefront: { failover-replicas: 3 }
  prod-2:
    services:
      storefront: { failover-replicas: 3 }
commands:
  wait-for-go:
    run: [sh, -c, 'i=0; while [ ! -e go ] && [ $i -lt 600 ]; do sleep 0.05; i=$((i+1)); done']
    timeout: 100000m
  wait-long:
    run: [sleep, '30']
    timeout: 100000m
safety:
  allow:
    kube-contexts: [us-west1]
    namespaces: [prod-1, prod-2]
";

/// A cluster of `region` on `clock` over three zones with a node of pool `prod-1` and one of
/// `prod-2` in each, and a deployment `storefront` of `replicas` pods in each of the namespaces
/// `prod-1` and `prod-2` (on its own pool).
#[must_use]
pub fn storefronts(region: &str, clock: Clock, seed: u64, replicas: u32) -> ClusterSpec {
    three_zones(region, clock, seed, &[("prod-1", 1), ("prod-2", 1)])
        .namespace("prod-1")
        .namespace("prod-2")
        .deployment("prod-1", "storefront", replicas, Some("prod-1"))
        .deployment("prod-2", "storefront", replicas, Some("prod-2"))
}

/// Starts [`storefronts`] in `us-west1` at 1000× real time, seeded by `seed`, and waits until
/// its `2 × replicas` pods are Ready.
///
/// # Panics
///
/// As [`start_ready`].
pub async fn start_storefronts(seed: u64, replicas: u32) -> Cluster {
    let clock = Clock::scaled(1_000.0).expect("a valid time scale");
    start_ready(
        storefronts("us-west1", clock, seed, replicas),
        2 * replicas as usize,
    )
    .await
}

/// Starts `spec` and waits until `pods` pods are Ready.
///
/// # Panics
///
/// When the cluster does not start, or its pods are not Ready within 20 s.
pub async fn start_ready(spec: ClusterSpec, pods: usize) -> Cluster {
    let cluster = Cluster::start(spec).await.expect("the cluster starts");
    crate::until(
        format!("{pods} pods Ready"),
        Duration::from_secs(20),
        || {
            let ready = ready_pods(&cluster, None).len();
            if ready == pods {
                Ok(())
            } else {
                Err(format!("{ready} Ready"))
            }
        },
    )
    .await;
    cluster
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

/// The uids of the live pods of `namespace`, from the server's ground truth.
#[must_use]
pub fn live_uids(cluster: &Cluster, namespace: &str) -> BTreeSet<String> {
    cluster
        .pod_records()
        .iter()
        .filter(|r| r.namespace == namespace && r.deleted.is_none())
        .map(|r| r.uid.clone())
        .collect()
}

/// The uids of the live, Ready pods of `namespace`, from the server's ground truth.
#[must_use]
pub fn ready_uids(cluster: &Cluster, namespace: &str) -> BTreeSet<String> {
    cluster
        .pod_records()
        .iter()
        .filter(|r| r.namespace == namespace && r.deleted.is_none() && r.ready.is_some())
        .map(|r| r.uid.clone())
        .collect()
}

/// How large a measured cluster is: three zones of `nodes` nodes each (pool `prod-1`), and
/// `deployments` deployments `svc-NN` of `replicas` pods in namespace `prod-1`.
#[derive(Clone, Copy, Debug)]
pub struct Fleet {
    /// Nodes per zone.
    pub nodes: usize,
    /// Deployments in `prod-1`.
    pub deployments: usize,
    /// Pods per deployment.
    pub replicas: u32,
}

impl Fleet {
    /// The measured fleet of a zone drain: 300 nodes and 6,000 pods (40 deployments of 150,
    /// 2,000 a zone) at full size; 6 nodes and 12 pods when quick.
    #[must_use]
    pub fn zone_drain(size: crate::bench::Size) -> Self {
        size.pick(
            Self {
                nodes: 100,
                deployments: 40,
                replicas: 150,
            },
            Self {
                nodes: 2,
                deployments: 2,
                replicas: 6,
            },
        )
    }

    /// Every pod of the fleet.
    #[must_use]
    pub fn pods(&self) -> usize {
        self.deployments * self.replicas as usize
    }

    /// Starts the fleet at 1000× real time and waits (at most 300 s) until every pod is Ready.
    ///
    /// # Panics
    ///
    /// When it does not start, or its pods are not Ready in time.
    pub async fn start(&self, seed: u64) -> Cluster {
        let clock = Clock::scaled(1_000.0).expect("a valid time scale");
        let mut spec =
            three_zones("us-west1", clock, seed, &[("prod-1", self.nodes)]).namespace("prod-1");
        for i in 0..self.deployments {
            spec = spec.deployment(
                "prod-1",
                &format!("svc-{i:02}"),
                self.replicas,
                Some("prod-1"),
            );
        }
        let cluster = Cluster::start(spec).await.expect("the cluster starts");
        self.wait_ready(&cluster, "every pod Ready").await;
        cluster
    }

    /// Waits (at most 300 s) until every pod of the fleet is Ready on `cluster`.
    ///
    /// # Panics
    ///
    /// When they are not in time.
    pub async fn wait_ready(&self, cluster: &Cluster, what: &str) {
        let pods = self.pods();
        crate::wait::Wait::new(format!("{what} ({pods} pods)"), Duration::from_secs(300))
            .every(Duration::from_millis(20))
            .until(|| {
                let ready = ready_pods(cluster, None).len();
                if ready == pods {
                    Ok(())
                } else {
                    Err(format!("{ready} Ready"))
                }
            })
            .await;
    }
}
