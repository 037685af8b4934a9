//! The Kubernetes provider's newer faults and safety nets against the embedded API server:
//! pod kill by count and percentage, a drain forced past a disruption budget, the in-cluster
//! traffic switch and its exact undo, RBAC asked per namespace, an API server lost mid-drill
//! (backoff, abort, undo reported, `recover` later), SIGINT, and the untouched snapshot.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use firedrill_core::clock::Clock;
use firedrill_platform::Platform;
use firedrill_providers::kube::{
    Conn, Kill, KubeError, KubeUndo, ReadyPods, Requirement, Switch, SwitchKind,
};
use firedrill_sim::kube::{Cluster, ClusterSpec, write_kubeconfig};
use kube::api::{Api, PostParams};
use serde_json::json;

/// The provider reads `FIREDRILL_KUBECONFIG`, a process-wide setting: tests that point it at
/// their own clusters run one at a time.
static ENV: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const PLATFORM: &str = r"
name: test
# Compressed like the embedded platform, so backoff and replacement waits take milliseconds.
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

fn load(text: &str) -> Platform {
    firedrill_platform::load_str(Path::new("test.yaml"), text, &|_| None)
        .unwrap_or_else(|p| panic!("test platform invalid:\n{p}"))
}

fn spec(replicas: u32) -> ClusterSpec {
    let clock = Clock::scaled(1_000.0).expect("scale");
    let mut spec = ClusterSpec::new("us-west1", clock).seed(11);
    for z in ["a", "b", "c"] {
        spec = spec.zone(format!("us-west1-{z}"), &[("prod-1", 1), ("prod-2", 1)]);
    }
    spec.namespace("prod-1")
        .namespace("prod-2")
        .deployment("prod-1", "storefront", replicas, Some("prod-1"))
        .deployment("prod-2", "storefront", replicas, Some("prod-2"))
}

async fn started(replicas: u32) -> Cluster {
    let cluster = Cluster::start(spec(replicas)).await.expect("cluster");
    until("every pod Ready", || {
        ready(&cluster, "prod-1").len() == replicas as usize
            && ready(&cluster, "prod-2").len() == replicas as usize
    })
    .await;
    cluster
}

/// Points `FIREDRILL_KUBECONFIG` at `cluster` (caller holds [`ENV`]).
fn point_at(dir: &tempfile::TempDir, cluster: &Cluster) -> std::path::PathBuf {
    let path = dir.path().join("kubeconfig");
    write_kubeconfig(&path, &[("us-west1", &cluster.url())]).expect("kubeconfig written");
    // SAFETY: every test that reads or writes the environment holds ENV.
    unsafe { std::env::set_var("FIREDRILL_KUBECONFIG", &path) };
    path
}

/// Waits (bounded) until `cond` holds on the server's ground truth.
async fn until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !cond() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: not within 20 s"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Uids of the live, Ready pods of a namespace.
fn ready(cluster: &Cluster, ns: &str) -> BTreeSet<String> {
    cluster
        .pod_records()
        .iter()
        .filter(|r| r.namespace == ns && r.deleted.is_none() && r.ready.is_some())
        .map(|r| r.uid.clone())
        .collect()
}

fn live(cluster: &Cluster, ns: &str) -> BTreeSet<String> {
    cluster
        .pod_records()
        .iter()
        .filter(|r| r.namespace == ns && r.deleted.is_none())
        .map(|r| r.uid.clone())
        .collect()
}

fn zone_taints(cluster: &Cluster) -> usize {
    cluster
        .objects("nodes", None)
        .iter()
        .filter(|n| {
            n["spec"]["taints"]
                .as_array()
                .is_some_and(|t| t.iter().any(|t| t["key"] == "firedrill.dev/zone-outage"))
        })
        .count()
}

#[tokio::test]
async fn a_pod_kill_takes_the_count_or_the_percentage_and_its_undo_waits_for_replacements() {
    let _env = ENV.lock().await;
    let cluster = started(6).await;
    let dir = tempfile::tempdir().expect("tempdir");
    point_at(&dir, &cluster);
    let platform = load(PLATFORM);
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
    let _env = ENV.lock().await;
    let cluster = started(3).await;
    let dir = tempfile::tempdir().expect("tempdir");
    point_at(&dir, &cluster);
    let platform = load(PLATFORM);
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
    let _env = ENV.lock().await;
    let cluster = started(1).await;
    let dir = tempfile::tempdir().expect("tempdir");
    point_at(&dir, &cluster);
    let platform = load(PLATFORM);
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
    let _env = ENV.lock().await;
    let cluster = started(1).await;
    let dir = tempfile::tempdir().expect("tempdir");
    point_at(&dir, &cluster);
    let platform = load(PLATFORM);
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

/// Runs `firedrill` with `args` in `dir` (awaited, since the cluster answers on this runtime).
async fn firedrill(dir: &Path, kubeconfig: &Path, args: &[&str]) -> (i32, String) {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_firedrill"))
        .args(args)
        .current_dir(dir)
        .env("FIREDRILL_KUBECONFIG", kubeconfig)
        .env_remove("FIREDRILL_PLATFORM")
        .env_remove("FIREDRILL_LEDGER")
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(60), out)
        .await
        .expect("firedrill finishes within 60 s")
        .expect("firedrill runs");
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

fn setup(cluster: &Cluster, drill: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let kubeconfig = dir.path().join("kubeconfig");
    write_kubeconfig(&kubeconfig, &[("us-west1", &cluster.url())]).expect("kubeconfig");
    std::fs::write(dir.path().join("p.yaml"), PLATFORM).expect("platform");
    std::fs::write(dir.path().join("d.feature"), drill).expect("drill");
    (dir, kubeconfig)
}

const RUN: &[&str] = &[
    "run",
    "d.feature",
    "--platform",
    "p.yaml",
    "--yes",
    "--ledger",
    "l.jsonl",
];

/// `firedrill run` of the setup's drill, in the background, its output captured.
fn spawn_run(dir: &std::path::Path, kubeconfig: &std::path::Path) -> tokio::process::Child {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_firedrill"))
        .args(RUN)
        .current_dir(dir)
        .env("FIREDRILL_KUBECONFIG", kubeconfig)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("firedrill starts")
}

#[tokio::test]
async fn an_api_server_lost_mid_drill_fails_the_step_after_backoff_and_recover_undoes_later() {
    let cluster = started(1).await;
    let (dir, kubeconfig) = setup(
        &cluster,
        "Feature: f\n  Scenario: s\n    When zone \"us-west1-a\" goes down\n    And the command \"wait-for-go\" is run\n    And zone \"us-west1-b\" goes down\n",
    );
    let child = spawn_run(dir.path(), &kubeconfig);
    until("zone a tainted", || zone_taints(&cluster) == 2).await;
    cluster.set_down(true);
    std::fs::write(dir.path().join("go"), "").expect("go");
    // Normally about a second; the bound allows one request caught mid-flight by the outage
    // to wait out the client's 30 s read timeout on a busy machine (seen once in a full run).
    let out = tokio::time::timeout(Duration::from_secs(150), child.wait_with_output())
        .await
        .expect("firedrill gives up within 150 s")
        .expect("firedrill runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_ne!(out.status.code(), Some(0), "{text}");
    // The second zone's step failed after retrying, naming the call and what to do.
    assert!(
        text.contains("[us-west1] the API server is unreachable: list nodes")
            && text.contains("failed 6 times over"),
        "{text}"
    );
    assert!(text.contains("firedrill recover"), "{text}");
    // Its undo could not run either, and says so.
    assert!(
        text.contains("UNDO FAILED: zone-outage us-west1-a")
            && text.contains("the API server is unreachable: get nodes"),
        "{text}"
    );
    assert_eq!(
        zone_taints(&cluster),
        2,
        "the server was down: the taint is still there"
    );
    cluster.set_down(false);
    let (code, out) = firedrill(dir.path(), &kubeconfig, &["recover", "--ledger", "l.jsonl"]).await;
    assert_eq!(code, 0, "{out}");
    assert_eq!(zone_taints(&cluster), 0, "recover removed the taint: {out}");
}

#[tokio::test]
async fn sigint_mid_drill_undoes_the_zone_outage() {
    let cluster = started(1).await;
    let (dir, kubeconfig) = setup(
        &cluster,
        "Feature: f\n  Scenario: s\n    When zone \"us-west1-a\" goes down\n    And the command \"wait-long\" is run\n",
    );
    let child = spawn_run(dir.path(), &kubeconfig);
    until("zone a tainted", || zone_taints(&cluster) == 2).await;
    let pid = child.id().expect("pid").to_string();
    let status = tokio::process::Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .await
        .expect("kill runs");
    assert!(status.success());
    let out = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
        .await
        .expect("firedrill stops within 30 s of SIGINT")
        .expect("firedrill runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_ne!(out.status.code(), Some(0), "{text}");
    assert_eq!(zone_taints(&cluster), 0, "SIGINT left a taint: {text}");
    let (code, out) = firedrill(dir.path(), &kubeconfig, &["recover", "--ledger", "l.jsonl"]).await;
    assert_eq!(code, 0, "nothing left to recover: {out}");
}

#[tokio::test]
async fn a_pod_kill_passes_when_other_namespaces_stay_untouched_and_fails_when_they_do_not() {
    let cluster = started(3).await;
    let (dir, kubeconfig) = setup(
        &cluster,
        "Feature: f\n  Scenario: prod-1 loses two pods\n    When 2 pods of \"app=storefront\" in \"prod-1\" are killed\n    Then namespace \"prod-2\" was never touched\n\n  Scenario: prod-2 loses a third of its pods\n    When 34% of the pods of \"app=storefront\" in \"prod-2\" of region \"us-west1\" are killed\n    Then namespaces \"prod-1\" and \"prod-2\" were never touched\n",
    );
    let prod2 = live(&cluster, "prod-2");
    let (code, out) = firedrill(dir.path(), &kubeconfig, RUN).await;
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("injected: pod-kill 2 of \"app=storefront\" in prod-1"),
        "{out}"
    );
    assert!(out.contains("1 passed, 1 failed"), "{out}");
    assert!(
        out.contains("injected: pod-kill 2 of \"app=storefront\" in prod-2"),
        "34% of 3 rounds up to 2: {out}"
    );
    // The second scenario's snapshot was taken at its own start, after the first one's undo
    // (prod-1 back to 3 Ready pods): only prod-2 is named.
    assert!(
        out.contains("[us-west1] pod prod-2/storefront-") && out.contains("was deleted"),
        "{out}"
    );
    assert!(!out.contains("pod prod-1/"), "{out}");
    assert!(out.contains("undone: pod-kill 2 of"), "{out}");
    assert_eq!(ready(&cluster, "prod-1").len(), 3);
    assert_eq!(
        ready(&cluster, "prod-2").len(),
        3,
        "the undo waited for replacements"
    );
    assert_eq!(prod2.intersection(&live(&cluster, "prod-2")).count(), 1);
}

#[tokio::test]
async fn every_zone_of_a_region_goes_down_and_a_zones_pods_are_deleted_each_undone() {
    let cluster = started(3).await;
    let (dir, kubeconfig) = setup(
        &cluster,
        "Feature: f\n  Scenario: zone pods\n    When the pods of zone \"us-west1-b\" are deleted\n\n  Scenario: every zone\n    When every zone of region \"us-west1\" goes down\n    And the command \"wait-for-go\" is run\n",
    );
    let in_b = cluster
        .pod_records()
        .iter()
        .filter(|r| r.deleted.is_none() && r.zone.as_deref() == Some("us-west1-b"))
        .count();
    assert!(in_b > 0, "zone b runs pods");
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_firedrill"))
        .args(RUN)
        .current_dir(dir.path())
        .env("FIREDRILL_KUBECONFIG", &kubeconfig)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("firedrill starts");
    until("every node tainted", || zone_taints(&cluster) == 6).await;
    until("every pod evicted", || {
        cluster
            .pod_records()
            .iter()
            .all(|r| r.deleted.is_some() || r.zone.is_none())
    })
    .await;
    std::fs::write(dir.path().join("go"), "").expect("go");
    let out = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .expect("firedrill finishes within 60 s")
        .expect("firedrill runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    for zone in ["a", "b", "c"] {
        assert!(
            text.contains(&format!("undone: zone-outage us-west1-{zone}")),
            "{text}"
        );
        assert!(
            text.contains(&format!("zone drained: us-west1-{zone}")),
            "the watch saw zone {zone} empty: {text}"
        );
    }
    assert!(
        text.contains(&format!(
            "injected: zone-pods-deleted us-west1-b: delete {in_b} pods"
        )),
        "{text}"
    );
    assert!(
        text.contains("undone: zone-pods-deleted us-west1-b"),
        "{text}"
    );
    assert_eq!(zone_taints(&cluster), 0);
    until("every pod Ready again", || {
        ready(&cluster, "prod-1").len() == 3 && ready(&cluster, "prod-2").len() == 3
    })
    .await;
}
