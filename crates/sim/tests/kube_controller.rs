//! The embedded cluster's controllers: scheduling around taints and zones, evictions, seeded
//! pod start delays, node outages, the role hook and disruption budgets.

use std::collections::BTreeMap;
use std::time::Duration;

use firedrill_core::clock::Clock;
use firedrill_sim::kube::{Cluster, ClusterSpec, TimingModel};
use firedrill_testkit::kube::{client, is_ready};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, DeleteParams, EvictParams, ListParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

fn spec(seed: u64) -> ClusterSpec {
    ClusterSpec::new("us-west1", Clock::scaled(1_000.0).expect("valid scale"))
        .zone("us-west1-a", &[("prod-1", 2), ("prod-2", 1)])
        .zone("us-west1-b", &[("prod-1", 2), ("prod-2", 1)])
        .zone("us-west1-c", &[("prod-1", 2), ("prod-2", 1)])
        .namespace("prod-1")
        .deployment("prod-1", "web", 6, Some("prod-1"))
        .seed(seed)
}

fn zone_of(cluster: &Cluster, node: &str) -> String {
    cluster.object("nodes", "", node).expect("node exists")["metadata"]["labels"]["topology.kubernetes.io/zone"]
        .as_str()
        .expect("zone label")
        .to_owned()
}

/// (pod name → zone) of the Ready pods of `app`.
fn ready_by_zone(cluster: &Cluster, app: &str) -> BTreeMap<String, String> {
    cluster
        .objects("pods", Some("prod-1"))
        .into_iter()
        .filter(|p| p["metadata"]["labels"]["app"] == app && is_ready(p))
        .map(|p| {
            let node = p["spec"]["nodeName"].as_str().expect("bound").to_owned();
            (
                p["metadata"]["name"].as_str().expect("name").to_owned(),
                zone_of(cluster, &node),
            )
        })
        .collect()
}

async fn wait_until(what: &str, check: impl FnMut() -> bool) {
    firedrill_testkit::until(what, Duration::from_secs(20), check).await;
}

async fn taint_zone(nodes: &Api<Node>, cluster: &Cluster, zone: &str, taints: Value) {
    for n in cluster.objects("nodes", None) {
        if n["metadata"]["labels"]["topology.kubernetes.io/zone"] == zone {
            let name = n["metadata"]["name"].as_str().expect("name");
            nodes
                .patch(
                    name,
                    &PatchParams::default(),
                    &Patch::Merge(json!({"spec": {"taints": taints}})),
                )
                .await
                .expect("taint patch");
        }
    }
}

#[tokio::test]
async fn no_execute_taint_on_a_zone_evicts_exactly_its_pods_and_they_reschedule_elsewhere() {
    let cluster = Cluster::start(spec(1)).await.expect("cluster starts");
    let nodes: Api<Node> = Api::all(client(&cluster));
    wait_until("6 web pods Ready", || {
        ready_by_zone(&cluster, "web").len() == 6
    })
    .await;
    let before = ready_by_zone(&cluster, "web");
    let zone_counts =
        |m: &BTreeMap<String, String>, z: &str| m.values().filter(|v| *v == z).count();
    assert_eq!(
        zone_counts(&before, "us-west1-a"),
        2,
        "pods spread over zones: {before:?}"
    );
    let in_a: Vec<&String> = before
        .iter()
        .filter(|(_, z)| *z == "us-west1-a")
        .map(|(n, _)| n)
        .collect();

    taint_zone(
        &nodes,
        &cluster,
        "us-west1-a",
        json!([{"key": "firedrill.io/zone-outage", "value": "us-west1-a", "effect": "NoExecute"}]),
    )
    .await;
    wait_until("6 web pods Ready outside us-west1-a", || {
        let now = ready_by_zone(&cluster, "web");
        now.len() == 6 && zone_counts(&now, "us-west1-a") == 0
    })
    .await;
    let after = ready_by_zone(&cluster, "web");
    for (name, zone) in &before {
        let evicted = cluster.object("pods", "prod-1", name).is_none();
        assert_eq!(
            evicted,
            zone == "us-west1-a",
            "pod {name} in {zone}: evicted={evicted}"
        );
    }
    assert!(in_a.iter().all(|n| !after.contains_key(*n)));
    // The zone's nodes are tainted one request at a time, so a replacement may briefly land on a
    // not-yet-tainted node of the zone and be evicted too; nothing outside the zone ever is.
    let records = cluster.pod_records();
    for r in records.iter().filter(|r| r.deleted.is_some()) {
        assert_eq!(
            r.zone.as_deref(),
            Some("us-west1-a"),
            "pod {} evicted from outside the tainted zone",
            r.name
        );
    }
    assert!(
        records
            .iter()
            .filter(|r| r.deleted.is_none())
            .all(|r| r.zone.as_deref() != Some("us-west1-a"))
    );
    let events = cluster.objects("events", Some("prod-1"));
    for name in &in_a {
        assert!(
            events.iter().any(|e| e["reason"] == "TaintManagerEviction"
                && e["involvedObject"]["name"] == name.as_str()),
            "no TaintManagerEviction event for {name}"
        );
    }

    // Removing the taint makes the zone schedulable again: the next pods spread back into it.
    taint_zone(&nodes, &cluster, "us-west1-a", Value::Null).await;
    let deployments: Api<Deployment> = Api::namespaced(client(&cluster), "prod-1");
    deployments
        .patch_scale(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 8}})),
        )
        .await
        .expect("scale");
    wait_until("8 web pods Ready, 2 of them in us-west1-a", || {
        let now = ready_by_zone(&cluster, "web");
        now.len() == 8 && zone_counts(&now, "us-west1-a") == 2
    })
    .await;
}

#[tokio::test]
async fn pods_respect_the_pool_selector_and_cordons() {
    let cluster = Cluster::start(spec(2)).await.expect("cluster starts");
    wait_until("6 web pods Ready", || {
        ready_by_zone(&cluster, "web").len() == 6
    })
    .await;
    for p in cluster.objects("pods", Some("prod-1")) {
        let node = p["spec"]["nodeName"].as_str().expect("bound");
        assert!(
            node.contains("-prod-1-"),
            "pod pinned to pool prod-1 landed on {node}"
        );
    }
    // With every prod-1 node cordoned, a new pod stays Pending and says why.
    let nodes: Api<Node> = Api::all(client(&cluster));
    for n in cluster.objects("nodes", None) {
        let name = n["metadata"]["name"].as_str().expect("name");
        nodes.cordon(name).await.expect("cordon");
    }
    let deployments: Api<Deployment> = Api::namespaced(client(&cluster), "prod-1");
    deployments
        .patch_scale(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 7}})),
        )
        .await
        .expect("scale");
    wait_until("a pending, unschedulable pod", || {
        cluster.objects("pods", Some("prod-1")).iter().any(|p| {
            p["spec"]["nodeName"].is_null()
                && p["status"]["conditions"]
                    .as_array()
                    .is_some_and(|c| c.iter().any(|c| c["reason"] == "Unschedulable"))
        })
    })
    .await;
    nodes
        .uncordon("us-west1-c-prod-1-0")
        .await
        .expect("uncordon");
    wait_until("7 web pods Ready", || {
        ready_by_zone(&cluster, "web").len() == 7
    })
    .await;
}

async fn scale_zero_to(seed: u64, n: i32) -> BTreeMap<String, Duration> {
    let cluster = Cluster::start(spec(seed)).await.expect("cluster starts");
    let deployments: Api<Deployment> = Api::namespaced(client(&cluster), "prod-1");
    deployments
        .patch_scale(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 0}})),
        )
        .await
        .expect("scale to 0");
    wait_until("no web pods", || {
        cluster.objects("pods", Some("prod-1")).is_empty()
    })
    .await;
    let first_new = cluster.pod_records().len();
    deployments
        .patch_scale(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": n}})),
        )
        .await
        .expect("scale up");
    wait_until("all pods Ready", || {
        ready_by_zone(&cluster, "web").len() == n as usize
    })
    .await;
    let model = TimingModel::default();
    let records = cluster.pod_records();
    let new: Vec<_> = records[first_new..].to_vec();
    assert_eq!(new.len(), n as usize);
    for r in &new {
        let delay = r.start_delay.expect("start delay drawn");
        let lo = model.image_pull.0 + model.container_start.0;
        let hi = model.image_pull.1 + model.container_start.1;
        assert!(
            delay >= lo && delay <= hi,
            "{}: start delay {delay:?} outside {lo:?}..{hi:?}",
            r.name
        );
        let (scheduled, running, ready) = (
            r.scheduled.expect("scheduled"),
            r.running.expect("running"),
            r.ready.expect("ready"),
        );
        assert!(
            running.saturating_since(scheduled) >= delay,
            "{} ran before its start delay",
            r.name
        );
        assert!(ready >= running);
        assert_eq!(cluster.pod_ready_at("prod-1", &r.name), Some(ready));
    }
    new.into_iter()
        .map(|r| (r.name, r.start_delay.expect("delay")))
        .collect()
}

#[tokio::test]
async fn scale_from_zero_gives_seeded_start_delays() {
    let a = scale_zero_to(99, 5).await;
    let b = scale_zero_to(99, 5).await;
    let c = scale_zero_to(100, 5).await;
    assert_eq!(a, b, "same seed, same pod names and delays");
    assert_ne!(a, c, "another seed draws other names and delays");
    let distinct: std::collections::BTreeSet<_> = a.values().collect();
    assert!(distinct.len() > 1, "delays vary between pods: {a:?}");
}

#[tokio::test]
async fn a_zone_going_not_ready_evicts_its_pods_after_the_default_toleration() {
    let spec = spec(3);
    let clock = spec.clock;
    let cluster = Cluster::start(spec).await.expect("cluster starts");
    wait_until("6 web pods Ready", || {
        ready_by_zone(&cluster, "web").len() == 6
    })
    .await;
    let down = clock.now();
    let changed = cluster
        .set_zone_ready("us-west1-b", false)
        .expect("zone down");
    assert_eq!(changed, 3);
    let node = cluster
        .object("nodes", "", "us-west1-b-prod-1-0")
        .expect("node");
    let taints = node["spec"]["taints"].as_array().expect("tainted");
    assert!(
        taints
            .iter()
            .any(|t| t["key"] == "node.kubernetes.io/unreachable" && t["effect"] == "NoExecute"),
        "{taints:?}"
    );
    wait_until("6 web pods Ready outside us-west1-b", || {
        let now = ready_by_zone(&cluster, "web");
        now.len() == 6 && now.values().all(|z| z != "us-west1-b")
    })
    .await;
    let records = cluster.pod_records();
    let evicted: Vec<_> = records.iter().filter(|r| r.deleted.is_some()).collect();
    assert_eq!(evicted.len(), 2);
    for r in &evicted {
        let after = r.deleted.expect("deleted").saturating_since(down);
        assert!(
            after >= Duration::from_secs(300),
            "{} evicted {after:?} after the zone went down, before the 300 s toleration",
            r.name
        );
        assert!(
            after < Duration::from_secs(400),
            "{} evicted only {after:?} after the zone went down",
            r.name
        );
    }
    cluster.set_zone_ready("us-west1-b", true).expect("zone up");
    let node = cluster
        .object("nodes", "", "us-west1-b-prod-1-0")
        .expect("node");
    assert!(
        node["spec"].get("taints").is_none(),
        "taints lifted: {node}"
    );
}

#[tokio::test]
async fn the_role_hook_answers_403_with_the_rbac_message() {
    let cluster = Cluster::start(spec(4)).await.expect("cluster starts");
    cluster.forbid("delete", "pods");
    cluster.forbid("list", "nodes");
    let pods: Api<Pod> = Api::namespaced(client(&cluster), "prod-1");
    let err = pods
        .delete("x", &DeleteParams::default())
        .await
        .expect_err("forbidden");
    match err {
        kube::Error::Api(s) => {
            assert_eq!((s.code, s.reason.as_str()), (403, "Forbidden"));
            assert_eq!(
                s.message,
                "pods \"x\" is forbidden: User \"firedrill\" cannot delete resource \"pods\" in API group \"\" in the namespace \"prod-1\""
            );
        }
        other => panic!("expected 403, got {other:?}"),
    }
    let nodes: Api<Node> = Api::all(client(&cluster));
    let err = nodes
        .list(&ListParams::default())
        .await
        .expect_err("forbidden");
    assert!(
        matches!(&err, kube::Error::Api(s) if s.message == "nodes is forbidden: User \"firedrill\" cannot list resource \"nodes\" in API group \"\" at the cluster scope"),
        "{err:?}"
    );
    cluster.allow("list", "nodes");
    assert_eq!(
        nodes
            .list(&ListParams::default())
            .await
            .expect("allowed again")
            .items
            .len(),
        9
    );
}

#[tokio::test]
async fn a_disruption_budget_blocks_evictions_with_429() {
    let cluster = Cluster::start(spec(5)).await.expect("cluster starts");
    wait_until("6 web pods Ready", || {
        ready_by_zone(&cluster, "web").len() == 6
    })
    .await;
    // kube 5 retries 429 answers up to 15 times with exponential backoff by default; a drill
    // wants to see the refusal at once.
    let mut config = kube::Config::new(cluster.url().parse().expect("cluster URL"));
    config.default_retry = false;
    let client = kube::Client::try_from(config).expect("client");
    let pdbs: Api<k8s_openapi::api::policy::v1::PodDisruptionBudget> =
        Api::namespaced(client.clone(), "prod-1");
    let pdb = serde_json::from_value(json!({"metadata": {"name": "web"}, "spec": {"minAvailable": 6, "selector": {"matchLabels": {"app": "web"}}}})).expect("pdb");
    pdbs.create(&PostParams::default(), &pdb)
        .await
        .expect("pdb created");
    let pods: Api<Pod> = Api::namespaced(client, "prod-1");
    let name = ready_by_zone(&cluster, "web")
        .into_keys()
        .next()
        .expect("a pod");
    let err = pods
        .evict(&name, &EvictParams::default())
        .await
        .expect_err("blocked");
    assert!(
        matches!(&err, kube::Error::Api(s) if s.code == 429 && s.reason == "TooManyRequests"),
        "{err:?}"
    );
    assert!(cluster.object("pods", "prod-1", &name).is_some());
    pdbs.patch(
        "web",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"minAvailable": 5}})),
    )
    .await
    .expect("pdb relaxed");
    pods.evict(&name, &EvictParams::default())
        .await
        .expect("eviction allowed");
    assert!(cluster.object("pods", "prod-1", &name).is_none());
}

#[tokio::test]
async fn the_autoscaler_adds_nodes_for_unschedulable_pods_after_the_provisioning_delay() {
    let spec = ClusterSpec::new("us-west2", Clock::scaled(1_000.0).expect("valid scale"))
        .zone("us-west2-a", &[("prod-1", 0)])
        .zone("us-west2-b", &[("prod-1", 0)])
        .zone("us-west2-c", &[("prod-1", 0)])
        .namespace("prod-1")
        .deployment("prod-1", "web", 0, Some("prod-1"))
        .autoscale("prod-1", 2)
        .pods_per_node(4)
        .seed(6);
    let cluster = Cluster::start(spec).await.expect("cluster starts");
    assert!(
        cluster.objects("nodes", None).is_empty(),
        "the failover region starts without nodes"
    );
    let deployments: Api<Deployment> = Api::namespaced(client(&cluster), "prod-1");
    deployments
        .patch_scale(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 10}})),
        )
        .await
        .expect("scale up");
    wait_until("10 web pods Ready on provisioned nodes", || {
        cluster
            .objects("pods", Some("prod-1"))
            .iter()
            .filter(|p| is_ready(p))
            .count()
            == 10
    })
    .await;
    let nodes = cluster.node_records();
    assert_eq!(nodes.len(), 3, "ceil(10 / 4) nodes: {nodes:?}");
    let zones: std::collections::BTreeSet<&str> = nodes.iter().map(|n| n.zone.as_str()).collect();
    assert_eq!(zones.len(), 3, "one node per zone: {nodes:?}");
    let model = TimingModel::default();
    for n in &nodes {
        assert!(
            n.delay >= model.node_provisioning.0 && n.delay <= model.node_provisioning.1,
            "{n:?}"
        );
        let ready = n.ready.expect("node joined");
        assert!(
            ready.saturating_since(n.requested) >= n.delay,
            "{} joined before its provisioning delay",
            n.name
        );
    }
    for r in cluster.pod_records() {
        let node = nodes
            .iter()
            .find(|n| Some(&n.name) == r.node.as_ref())
            .expect("pod on a provisioned node");
        assert!(
            r.scheduled.expect("scheduled") >= node.ready.expect("ready"),
            "{} scheduled before {} joined",
            r.name,
            node.name
        );
    }
    let per_node = |name: &str| {
        cluster
            .objects("pods", Some("prod-1"))
            .iter()
            .filter(|p| p["spec"]["nodeName"] == name)
            .count()
    };
    assert!(
        nodes.iter().all(|n| per_node(&n.name) <= 4),
        "no node holds more than 4 pods"
    );
}
