//! The Kubernetes provider's newer faults and safety nets against the embedded API server:
//! pod kill by count and percentage, a drain forced past a disruption budget, the in-cluster
//! traffic switch and its exact undo, RBAC asked per namespace, an API server lost mid-drill
//! (backoff, abort, undo reported, `recover` later), SIGINT, and the untouched snapshot.

use std::collections::BTreeSet;
use std::time::Duration;

use firedrill_providers::kube::{
    Conn, Kill, KubeError, KubeUndo, ReadyPods, Requirement, Switch, SwitchKind,
};
use firedrill_testkit::kube::{
    STOREFRONTS_PLATFORM as PLATFORM, live_uids as live, ready_uids as ready, start_storefronts,
};
use firedrill_testkit::platform::Folder;
use kube::api::{Api, PostParams};
use serde_json::json;

/// Waits (bounded) until `cond` holds on the server's ground truth.
async fn until(what: &str, cond: impl FnMut() -> bool) {
    firedrill_testkit::until(what, Duration::from_secs(20), cond).await;
}

#[tokio::test]
async fn a_pod_kill_takes_the_count_or_the_percentage_and_its_undo_waits_for_replacements() {
    let cluster = start_storefronts(11, 6).await;
    let folder = Folder::with_kubeconfig(&[("us-west1", &cluster)]);
    let platform = folder.platform("p.yaml", PLATFORM);
    let conn = Conn::connect(&platform, "us-west1").await.expect("conn");
    let other = live(&cluster, "prod-2");

    let victims = conn
        .pick_victims("prod-1", "app=storefront", Kill::Count(2), 7)
        .await
        .expect("victims");
    assert_eq!(victims.len(), 2);
    assert_eq!(
        victims,
        conn.pick_victims("prod-1", "app=storefront", Kill::Count(2), 7)
            .await
            .expect("victims again"),
        "the same seed picks the same pods"
    );
    let before = live(&cluster, "prod-1");
    let pods: Vec<(String, String)> = victims
        .iter()
        .map(|v| ("prod-1".to_owned(), v.clone()))
        .collect();
    conn.delete_pods(&pods, false).await.expect("kill");
    // The controller notes deletions on its next pass.
    until("the victims recorded as deleted", || {
        cluster
            .pod_records()
            .iter()
            .filter(|r| r.deleted.is_some() && victims.contains(&r.name))
            .count()
            == 2
    })
    .await;
    let killed: BTreeSet<String> = cluster
        .pod_records()
        .iter()
        .filter(|r| r.deleted.is_some() && victims.contains(&r.name))
        .map(|r| r.uid.clone())
        .collect();
    assert_eq!(killed.len(), 2, "exactly the two victims are gone");
    assert!(killed.is_subset(&before));
    // The undo waits (on a watch) until six are Ready again.
    KubeUndo::Replaced {
        context: "us-west1".into(),
        pods: vec![ReadyPods {
            namespace: "prod-1".into(),
            selector: "app=storefront".into(),
            ready: 6,
        }],
        within: Duration::from_secs(600),
    }
    .apply(&platform)
    .await
    .expect("replaced");
    assert_eq!(ready(&cluster, "prod-1").len(), 6);
    assert_eq!(live(&cluster, "prod-2"), other, "prod-2 was not touched");

    let half = conn
        .pick_victims("prod-1", "app=storefront", Kill::Percent(50), 1)
        .await
        .expect("victims");
    assert_eq!(half.len(), 3, "50% of 6");
    let err = conn
        .pick_victims("prod-1", "app=nothing", Kill::Count(1), 1)
        .await
        .expect_err("no pod matches");
    assert!(matches!(err, KubeError::NoPods { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("kubectl get pods -n prod-1 -l app=nothing")
    );
}

#[tokio::test]
async fn a_forced_drain_deletes_the_pods_a_budget_protects_and_names_them() {
    let cluster = start_storefronts(11, 3).await;
    let folder = Folder::with_kubeconfig(&[("us-west1", &cluster)]);
    let platform = folder.platform("p.yaml", PLATFORM);
    let conn = Conn::connect(&platform, "us-west1").await.expect("conn");
    let pdbs: Api<k8s_openapi::api::policy::v1::PodDisruptionBudget> =
        Api::namespaced(conn.client().clone(), "prod-2");
    let pdb = serde_json::from_value(json!({"metadata": {"name": "storefront"}, "spec": {"minAvailable": 3, "selector": {"matchLabels": {"app": "storefront"}}}})).expect("pdb");
    pdbs.create(&PostParams::default(), &pdb)
        .await
        .expect("pdb");
    let nodes = conn.zone_nodes("us-west1-c").await.expect("nodes");
    conn.set_cordon(&nodes, true).await.expect("cordon");
    let pods = conn
        .pods_on(&["prod-1".to_owned(), "prod-2".to_owned()], &nodes)
        .await
        .expect("pods");
    assert_eq!(
        pods.len(),
        2,
        "one pod of each namespace in zone c: {pods:?}"
    );
    let drained = conn.evict(&pods, true).await.expect("forced drain");
    assert_eq!(drained.evicted.len(), 1, "{drained:?}");
    assert!(drained.evicted[0].starts_with("prod-1/"), "{drained:?}");
    assert_eq!(drained.forced.len(), 1, "{drained:?}");
    assert!(drained.forced[0].starts_with("prod-2/"), "{drained:?}");
    until("zone c empty", || {
        cluster
            .pod_records()
            .iter()
            .all(|r| r.deleted.is_some() || r.zone.as_deref() != Some("us-west1-c"))
    })
    .await;
    conn.set_cordon(&nodes, false).await.expect("uncordon");
}

#[tokio::test]
async fn traffic_switches_patch_the_object_and_their_undo_puts_back_exactly_what_was_there() {
    let cluster = start_storefronts(11, 1).await;
    let folder = Folder::with_kubeconfig(&[("us-west1", &cluster)]);
    let platform = folder.platform("p.yaml", PLATFORM);
    let conn = Conn::connect(&platform, "us-west1").await.expect("conn");
    let client = conn.client().clone();
    let services: Api<k8s_openapi::api::core::v1::Service> =
        Api::namespaced(client.clone(), "prod-1");
    services
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "front"}, "spec": {"selector": {"app": "web", "region": "us-west1"}, "ports": [{"port": 80}]}})).expect("svc"),
        )
        .await
        .expect("service");
    let ingresses: Api<k8s_openapi::api::networking::v1::Ingress> =
        Api::namespaced(client.clone(), "prod-1");
    let rules = json!([{"host": "shop", "http": {"paths": [{"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "web-us-west1", "port": {"number": 80}}}}]}}]);
    ingresses
        .create(
            &PostParams::default(),
            &serde_json::from_value(
                json!({"metadata": {"name": "front"}, "spec": {"rules": rules}}),
            )
            .expect("ing"),
        )
        .await
        .expect("ingress");
    let maps: Api<k8s_openapi::api::core::v1::ConfigMap> =
        Api::namespaced(client.clone(), "prod-1");
    maps.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": "front-door"}, "data": {"keep": "1"}}))
            .expect("cm"),
    )
    .await
    .expect("configmap");

    let switches = [
        Switch {
            namespace: "prod-1".into(),
            name: "front".into(),
            change: SwitchKind::ServiceSelector {
                labels: [("region".to_owned(), "us-west2".to_owned())].into(),
            },
        },
        Switch {
            namespace: "prod-1".into(),
            name: "front".into(),
            change: SwitchKind::IngressBackend {
                service: "web-us-west2".into(),
            },
        },
        Switch {
            namespace: "prod-1".into(),
            name: "front-door".into(),
            change: SwitchKind::ConfigMapKey {
                key: "active-region".into(),
                value: "us-west2".into(),
            },
        },
    ];
    let mut undos = Vec::new();
    for s in &switches {
        let (forward, restore) = conn.prepare_switch(s).await.expect("prepare");
        conn.restore(s, &forward).await.expect("switch");
        undos.push(KubeUndo::Restore {
            context: "us-west1".into(),
            switch: Box::new(s.clone()),
            patch: restore,
        });
    }
    let svc = cluster.object("services", "prod-1", "front").expect("svc");
    assert_eq!(
        svc["spec"]["selector"],
        json!({"app": "web", "region": "us-west2"})
    );
    let ing = cluster.object("ingresses", "prod-1", "front").expect("ing");
    assert_eq!(
        ing["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["name"],
        "web-us-west2"
    );
    let cm = cluster
        .object("configmaps", "prod-1", "front-door")
        .expect("cm");
    assert_eq!(
        cm["data"],
        json!({"keep": "1", "active-region": "us-west2"})
    );
    // The undos go through the ledger as JSON: round-trip them as recover would read them.
    for undo in undos.iter().rev() {
        let text = serde_json::to_string(undo).expect("serialise");
        let back: KubeUndo = serde_json::from_str(&text).expect("deserialise");
        back.apply(&platform).await.expect("undo");
    }
    let svc = cluster.object("services", "prod-1", "front").expect("svc");
    assert_eq!(
        svc["spec"]["selector"],
        json!({"app": "web", "region": "us-west1"})
    );
    let ing = cluster.object("ingresses", "prod-1", "front").expect("ing");
    assert_eq!(ing["spec"]["rules"], rules);
    let cm = cluster
        .object("configmaps", "prod-1", "front-door")
        .expect("cm");
    assert_eq!(
        cm["data"],
        json!({"keep": "1"}),
        "the added key is removed again"
    );

    let empty = Switch {
        namespace: "prod-1".into(),
        name: "bare".into(),
        change: SwitchKind::IngressBackend {
            service: "x".into(),
        },
    };
    ingresses
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "bare"}, "spec": {}}))
                .expect("ing"),
        )
        .await
        .expect("bare ingress");
    let err = conn
        .prepare_switch(&empty)
        .await
        .expect_err("nothing to switch");
    assert!(
        err.to_string()
            .contains("Ingress \"prod-1/bare\" cannot be switched"),
        "{err}"
    );
}

#[tokio::test]
async fn preflight_asks_rbac_per_namespace_for_pods_and_cluster_wide_for_nodes() {
    let cluster = start_storefronts(11, 1).await;
    let folder = Folder::with_kubeconfig(&[("us-west1", &cluster)]);
    let platform = folder.platform("p.yaml", PLATFORM);
    let need = Requirement {
        namespaces: ["prod-1".to_owned(), "prod-2".to_owned()].into(),
        zones: BTreeSet::new(),
        verbs: [
            ("list".to_owned(), "pods".to_owned()),
            ("patch".to_owned(), "nodes".to_owned()),
        ]
        .into(),
    };
    assert!(
        firedrill_providers::kube::preflight(&platform, "us-west1", &need)
            .await
            .is_empty()
    );
    cluster.forbid_in("list", "pods", "prod-2");
    let problems: Vec<String> = firedrill_providers::kube::preflight(&platform, "us-west1", &need)
        .await
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(problems.len(), 1, "{problems:#?}");
    assert!(
        problems[0].contains("[us-west1] forbidden: cannot list pods")
            && problems[0].contains("in namespace \"prod-2\""),
        "{}",
        problems[0]
    );
    cluster.forbid("patch", "nodes");
    let problems: Vec<String> = firedrill_providers::kube::preflight(&platform, "us-west1", &need)
        .await
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(problems.len(), 2, "{problems:#?}");
    assert!(
        problems[1].contains("cannot patch nodes") && problems[1].contains("namespace \"\""),
        "nodes are asked about cluster-wide: {}",
        problems[1]
    );
}
