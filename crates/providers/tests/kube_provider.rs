//! The Kubernetes provider (src/providers/kube) against the embedded API server: zone outages
//! (taint, cordon and evict), region scale-to-zero, the failover scale-up's readiness watch,
//! undo by reference, and the preflight checks that refuse bad input before any fault.

use std::collections::BTreeSet;
use std::sync::Mutex;
use std::time::Duration;

use firedrill_core::clock::Clock;
use firedrill_providers::kube::{self as provider, KubeError, KubeUndo, Replicas, Requirement};
use firedrill_sim::kube::Cluster;
use firedrill_testkit::kube::{nodes_of, storefronts};
use firedrill_testkit::platform::Folder;
use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;

const PLATFORM: &str = r"
name: test
regions:
  us-west1:
    role: primary
    kube-context: us-west1
    zones: [us-west1-a, us-west1-b, us-west1-c]
  us-west2:
    role: failover
    kube-context: us-west2
    zones: [us-west2-a, us-west2-b, us-west2-c]
namespaces:
  prod-1:
    services:
      storefront: { failover-replicas: 3 }
  prod-2:
    services:
      storefront: { failover-replicas: 2 }
safety:
  allow:
    kube-contexts: [us-west1, us-west2]
    namespaces: [prod-1, prod-2]
";

/// Waits (bounded) until `cond` holds on the server's ground truth.
async fn until(what: &str, cond: impl FnMut() -> bool) {
    firedrill_testkit::until(what, Duration::from_secs(20), cond).await;
}

fn live_pods_in_zone(cluster: &Cluster, zone: &str) -> usize {
    cluster
        .pod_records()
        .iter()
        .filter(|r| r.deleted.is_none() && r.zone.as_deref() == Some(zone))
        .count()
}

fn taints(cluster: &Cluster, node: &str) -> Vec<String> {
    cluster
        .object("nodes", "", node)
        .and_then(|n| n["spec"]["taints"].as_array().cloned())
        .unwrap_or_default()
        .iter()
        .map(|t| {
            format!(
                "{}:{}",
                t["key"].as_str().unwrap_or(""),
                t["effect"].as_str().unwrap_or("")
            )
        })
        .collect()
}

#[tokio::test]
async fn a_zone_outage_taints_exactly_that_zone_evicts_its_pods_and_undo_restores_every_node() {
    let clock = Clock::scaled(1_000.0).expect("scale");
    let cluster = Cluster::start(storefronts("us-west1", clock, 7, 6))
        .await
        .expect("cluster");
    let folder = Folder::with_kubeconfig(&[("us-west1", &cluster)]);
    let kubeconfig = folder.kubeconfig();
    let platform = folder.platform("p.yaml", PLATFORM);
    until("12 pods Ready", || {
        cluster
            .pod_records()
            .iter()
            .filter(|r| r.ready.is_some())
            .count()
            == 12
    })
    .await;
    let zone_a = nodes_of(&cluster, "us-west1-a");
    // Someone else's taint on a zone-a node must survive the drill's undo.
    let client = provider::Conn::connect(&platform, "us-west1")
        .await
        .expect("client");
    let nodes: Api<Node> = Api::all(client.client().clone());
    nodes
        .patch(
            &zone_a[0],
            &PatchParams::default(),
            &Patch::Merge(
                json!({"spec": {"taints": [{"key": "team/keep", "effect": "NoSchedule"}]}}),
            ),
        )
        .await
        .expect("foreign taint");
    let before_other: usize = ["us-west1-b", "us-west1-c"]
        .iter()
        .map(|z| live_pods_in_zone(&cluster, z))
        .sum();
    let uids_other: BTreeSet<String> = cluster
        .pod_records()
        .iter()
        .filter(|r| r.deleted.is_none() && r.zone.as_deref() != Some("us-west1-a"))
        .map(|r| r.uid.clone())
        .collect();

    let tainted = client.zone_nodes("us-west1-a").await.expect("zone nodes");
    assert_eq!(
        tainted.iter().collect::<BTreeSet<_>>(),
        zone_a.iter().collect()
    );
    client.set_taint(&tainted, true).await.expect("taint");
    for zone in ["us-west1-a", "us-west1-b", "us-west1-c"] {
        for node in nodes_of(&cluster, zone) {
            let has =
                taints(&cluster, &node).contains(&"firedrill.dev/zone-outage:NoExecute".to_owned());
            assert_eq!(has, zone == "us-west1-a", "{node} in {zone}");
        }
    }
    // kubectl, as an operator would, sees the fault.
    let out = tokio::process::Command::new("kubectl")
        .args(["--kubeconfig"])
        .arg(&kubeconfig)
        .args([
            "--context",
            "us-west1",
            "get",
            "nodes",
            "-o",
            "jsonpath={range .items[*]}{.metadata.name}={.spec.taints[*].key};{end}",
        ])
        .kill_on_drop(true)
        .output();
    // The server runs on this test's runtime: kubectl must be awaited, not blocked on.
    let out = tokio::time::timeout(Duration::from_secs(30), out)
        .await
        .expect("kubectl answers within 30 s")
        .expect("kubectl must be installed (pip install kubectl, or apt-get install kubectl)");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "kubectl: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    for node in &zone_a {
        assert!(
            text.split(';')
                .any(|e| e.starts_with(&format!("{node}="))
                    && e.contains("firedrill.dev/zone-outage")),
            "kubectl does not show the taint on {node}: {text}"
        );
    }
    until("zone a emptied", || {
        live_pods_in_zone(&cluster, "us-west1-a") == 0
    })
    .await;
    let still: BTreeSet<String> = cluster
        .pod_records()
        .iter()
        .filter(|r| r.deleted.is_none() && uids_other.contains(&r.uid))
        .map(|r| r.uid.clone())
        .collect();
    assert_eq!(still, uids_other, "a pod outside zone a was evicted");
    assert!(before_other > 0);

    let undo = KubeUndo::Untaint {
        context: "us-west1".into(),
        zone: "us-west1-a".into(),
        nodes: tainted.clone(),
    };
    undo.apply(&platform).await.expect("undo");
    undo.apply(&platform).await.expect("undo twice is harmless");
    for node in &zone_a {
        let t = taints(&cluster, node);
        assert!(
            !t.iter().any(|t| t.starts_with("firedrill.dev/")),
            "{node}: {t:?}"
        );
    }
    assert_eq!(taints(&cluster, &zone_a[0]), ["team/keep:NoSchedule"]);
    // A second drill starts clean: the same fault applies again.
    client.set_taint(&tainted, true).await.expect("taint again");
    undo.apply(&platform).await.expect("undo again");
    assert!(zone_a.iter().all(|n| {
        !taints(&cluster, n)
            .iter()
            .any(|t| t.starts_with("firedrill.dev/"))
    }));
}

#[tokio::test]
async fn a_drain_uncordons_only_the_nodes_it_cordoned_and_reports_a_budget_that_blocks() {
    let clock = Clock::scaled(1_000.0).expect("scale");
    let cluster = Cluster::start(storefronts("us-west1", clock, 7, 3))
        .await
        .expect("cluster");
    let folder = Folder::with_kubeconfig(&[("us-west1", &cluster)]);
    let platform = folder.platform("p.yaml", PLATFORM);
    until("6 pods Ready", || {
        cluster
            .pod_records()
            .iter()
            .filter(|r| r.ready.is_some())
            .count()
            == 6
    })
    .await;
    let client = provider::Conn::connect(&platform, "us-west1")
        .await
        .expect("client");
    let zone_b = client.zone_nodes("us-west1-b").await.expect("nodes");
    // One node was cordoned before the drill: it stays cordoned after.
    client
        .set_cordon(&zone_b[..1], true)
        .await
        .expect("pre-cordon");
    let ours = client.uncordoned(&zone_b).await.expect("uncordoned");
    assert_eq!(ours, zone_b[1..]);
    // A budget that allows no disruption of prod-2's storefront.
    let pdbs: Api<k8s_openapi::api::policy::v1::PodDisruptionBudget> =
        Api::namespaced(client.client().clone(), "prod-2");
    let pdb = serde_json::from_value(json!({"metadata": {"name": "storefront"}, "spec": {"minAvailable": 3, "selector": {"matchLabels": {"app": "storefront"}}}})).expect("pdb");
    pdbs.create(&PostParams::default(), &pdb)
        .await
        .expect("pdb");
    client.set_cordon(&ours, true).await.expect("cordon");
    let err = client
        .evict(
            &client
                .pods_on(&["prod-1".to_owned(), "prod-2".to_owned()], &zone_b)
                .await
                .expect("pods"),
            false,
        )
        .await
        .expect_err("the budget blocks prod-2's pod");
    let msg = err.to_string();
    assert!(matches!(err, KubeError::EvictionBlocked { .. }), "{msg}");
    assert!(msg.contains("prod-2/storefront-"), "{msg}");
    until("prod-1 pod in zone b evicted", || {
        !cluster.pod_records().iter().any(|r| {
            r.deleted.is_none()
                && r.namespace == "prod-1"
                && r.zone.as_deref() == Some("us-west1-b")
        })
    })
    .await;
    KubeUndo::Uncordon {
        context: "us-west1".into(),
        zone: "us-west1-b".into(),
        nodes: ours.clone(),
    }
    .apply(&platform)
    .await
    .expect("undo");
    let cordoned = |n: &str| {
        cluster
            .object("nodes", "", n)
            .is_some_and(|o| o["spec"]["unschedulable"] == true)
    };
    assert!(
        cordoned(&zone_b[0]),
        "the node cordoned before the drill was uncordoned"
    );
    assert!(ours.iter().all(|n| !cordoned(n)));
}

#[tokio::test]
async fn region_dark_scales_to_zero_and_failover_milestones_match_the_servers_ground_truth() {
    let clock = Clock::scaled(100.0).expect("scale");
    let west1 = Cluster::start(storefronts("us-west1", clock, 7, 2))
        .await
        .expect("west1");
    let west2 = Cluster::start(storefronts("us-west2", clock, 7, 0))
        .await
        .expect("west2");
    let folder = Folder::with_kubeconfig(&[("us-west1", &west1), ("us-west2", &west2)]);
    let platform = folder.platform("p.yaml", PLATFORM);
    let services = provider::services(&platform);

    let c1 = provider::Conn::connect(&platform, "us-west1")
        .await
        .expect("client 1");
    let before = c1.current_replicas(&services).await.expect("replicas");
    assert!(before.iter().all(|r| r.replicas == 2), "{before:?}");
    let zero: Vec<Replicas> = before
        .iter()
        .map(|r| Replicas {
            replicas: 0,
            ..r.clone()
        })
        .collect();
    c1.scale(&zero).await.expect("dark");
    until("us-west1 has no pods", || {
        west1.pod_records().iter().all(|r| r.deleted.is_some())
    })
    .await;
    KubeUndo::Scale {
        context: "us-west1".into(),
        replicas: before.clone(),
    }
    .apply(&platform)
    .await
    .expect("undo");
    let after = c1.current_replicas(&services).await.expect("replicas");
    assert_eq!(after, before);

    let c2 = provider::Conn::connect(&platform, "us-west2")
        .await
        .expect("client 2");
    let started = clock.now();
    let firsts = std::sync::Arc::new(Mutex::new(Vec::new()));
    let recorded = firsts.clone();
    let watch = tokio::spawn({
        let (c2, services) = (c2.clone(), services.clone());
        async move {
            c2.watch_ready(
                &services,
                &clock,
                started.plus(Duration::from_secs(600)),
                move |at, _| recorded.lock().expect("lock").push(at),
                |_| {},
            )
            .await
        }
    });
    c2.scale(&services).await.expect("scale up");
    let seen = watch.await.expect("join").expect("all Ready within 10m");
    let ready: Vec<_> = west2.pod_records().iter().filter_map(|r| r.ready).collect();
    assert_eq!(ready.len(), 5, "3 + 2 failover pods");
    let truth_first = ready.iter().min().copied().expect("first");
    let truth_all = ready.iter().max().copied().expect("all");
    let first = seen.first_ready.expect("first milestone");
    let all = seen.all_ready.expect("all milestone");
    // Observed after the fact, by at most a few wall milliseconds (here: platform seconds).
    for (name, observed, truth) in [("first", first, truth_first), ("all", all, truth_all)] {
        assert!(observed >= truth, "{name}: observed before it happened");
        let late = observed.saturating_since(truth);
        assert!(
            late <= Duration::from_secs(5),
            "{name} Ready observed {late:?} late"
        );
    }
    assert_eq!(firsts.lock().expect("lock").len(), 1);
}

#[tokio::test]
async fn preflight_names_a_forbidden_verb_an_empty_zone_a_missing_namespace_and_a_refused_context()
{
    let clock = Clock::scaled(1_000.0).expect("scale");
    let cluster = Cluster::start(storefronts("us-west1", clock, 7, 0))
        .await
        .expect("cluster");
    let folder = Folder::with_kubeconfig(&[("us-west1", &cluster)]);
    let platform = folder.platform("p.yaml", PLATFORM);
    let good = Requirement {
        namespaces: ["prod-1".to_owned()].into(),
        zones: ["us-west1-a".to_owned()].into(),
        verbs: [("patch".to_owned(), "nodes".to_owned())].into(),
    };
    assert!(
        provider::preflight(&platform, "us-west1", &good)
            .await
            .is_empty()
    );

    cluster.forbid("patch", "nodes");
    let bad = Requirement {
        namespaces: ["prod-1".to_owned(), "prod-9".to_owned()].into(),
        zones: ["us-west1-z".to_owned()].into(),
        verbs: [("patch".to_owned(), "nodes".to_owned())].into(),
    };
    let problems: Vec<String> = provider::preflight(&platform, "us-west1", &bad)
        .await
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(problems.len(), 3, "{problems:#?}");
    assert!(
        problems[0].contains("namespaces \"prod-9\"") && problems[0].contains("[us-west1]"),
        "{}",
        problems[0]
    );
    assert!(
        problems[1].contains("zone \"us-west1-z\" has no nodes"),
        "{}",
        problems[1]
    );
    assert!(
        problems[2].contains("forbidden: cannot patch nodes"),
        "{}",
        problems[2]
    );

    // A refused call names context, kind, object and verb.
    let client = provider::Conn::connect(&platform, "us-west1")
        .await
        .expect("client");
    let nodes = client.zone_nodes("us-west1-a").await.expect("nodes");
    let err = client.set_taint(&nodes, true).await.expect_err("forbidden");
    let msg = err.to_string();
    assert!(
        msg.contains("[us-west1] forbidden: cannot patch nodes") && msg.contains(&nodes[0]),
        "{msg}"
    );

    let refused = provider::preflight(&platform, "gke_prod_elsewhere", &good).await;
    assert!(
        matches!(refused.as_slice(), [KubeError::NotAllowed { .. }]),
        "{refused:?}"
    );
    let missing = provider::preflight(&platform, "us-west2", &good).await;
    assert!(
        missing.len() == 1
            && missing[0]
                .to_string()
                .contains("kube context \"us-west2\" cannot be used"),
        "{missing:?}"
    );
}
