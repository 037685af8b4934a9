//! `firedrill recover` against the embedded Kubernetes API server: it says "recovered" only once
//! a scale undo's pods are Ready again (the same wait a drill's own undo does), and when they are
//! not by the deadline it says what is still settling, exits 4, and keeps the undo outstanding.

use firedrill_core::clock::Clock;
use firedrill_engine::ledger::{Entry, wall_now};
use firedrill_providers::Undo;

type Ledger = firedrill_engine::ledger::Ledger<Undo>;
use firedrill_providers::kube::{KubeUndo, Replicas};
use firedrill_sim::kube::Cluster;
use firedrill_testkit::firedrill;
use firedrill_testkit::kube::{STOREFRONTS_PLATFORM, three_zones};
use firedrill_testkit::platform::Folder;
use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;

/// The storefronts platform with its clock at `scale` times real time: the undo's deadline
/// (10 platform minutes) is `600 / scale` wall seconds.
fn platform(scale: u32) -> String {
    STOREFRONTS_PLATFORM.replace("time-scale: 1000\n", &format!("time-scale: {scale}\n"))
}

/// A cluster whose storefront is at 0 replicas, as a region-dark fault leaves it.
async fn dark_cluster(scale: f64) -> Cluster {
    let clock = Clock::scaled(scale).expect("scale");
    let spec = three_zones("us-west1", clock, 5, &[("prod-1", 1)])
        .namespace("prod-1")
        .deployment("prod-1", "storefront", 0, Some("prod-1"));
    Cluster::start(spec).await.expect("cluster")
}

/// A folder with the platform file naming a kubeconfig for `cluster`, and a ledger left by a
/// crashed run whose only outstanding undo scales the storefront back to 3.
fn crashed_run(cluster: &Cluster, scale: u32) -> Folder {
    let dir = Folder::with_kubeconfig(&[("us-west1", cluster)]);
    dir.write_platform("p.yaml", &platform(scale));
    let mut ledger = Ledger::open(&dir.join("l.jsonl")).expect("ledger");
    ledger
        .append(&Entry::Begin {
            run: "crashed".into(),
            platform: dir.join("p.yaml"),
            in_process: false,
            pid: None,
            at: wall_now(),
        })
        .expect("begin");
    ledger
        .append(&Entry::Inject {
            id: "crashed/1".into(),
            run: "crashed".into(),
            scenario: "us-west1 goes dark".into(),
            fault: "region-dark us-west1: scale 1 services to 0".into(),
            undo: Undo::Kube(KubeUndo::Scale {
                context: "us-west1".into(),
                replicas: vec![Replicas {
                    namespace: "prod-1".into(),
                    name: "storefront".into(),
                    replicas: 3,
                }],
            }),
            remediation: false,
            at: wall_now(),
        })
        .expect("inject");
    dir
}

/// `firedrill recover` in `dir`, awaited (the cluster answers on this test's runtime).
async fn recover(dir: &Folder) -> (Option<i32>, String) {
    let out = firedrill!()
        .run_async(dir.path(), &["recover", "--ledger", "l.jsonl"])
        .await;
    (out.code(), out.text())
}

/// Pods of prod-1 that are Ready and not being deleted, as the API server holds them now.
fn ready_pods(cluster: &Cluster) -> usize {
    firedrill_testkit::kube::ready_pods(cluster, Some("prod-1")).len()
}

async fn set_unschedulable(cluster: &Cluster, on: bool) {
    let nodes: Api<Node> = Api::all(firedrill_testkit::kube::client(cluster));
    for node in cluster.objects("nodes", None) {
        let name = node["metadata"]["name"].as_str().expect("node name");
        nodes
            .patch(
                name,
                &PatchParams::default(),
                &Patch::Merge(json!({"spec": {"unschedulable": on}})),
            )
            .await
            .expect("cordon");
    }
}

#[tokio::test]
async fn recover_says_recovered_only_once_the_scaled_back_pods_are_ready() {
    // Pods take 21–95 platform seconds to be Ready: 1–5 wall seconds at this scale, far longer
    // than a recover that returns once the scale is patched.
    let cluster = dark_cluster(20.0).await;
    let dir = crashed_run(&cluster, 20);
    assert_eq!(ready_pods(&cluster), 0);
    let (code, out) = recover(&dir).await;
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("recovered"), "{out}");
    assert_eq!(
        ready_pods(&cluster),
        3,
        "recover returned before the scaled-back pods were Ready:\n{out}"
    );
    assert!(
        Ledger::outstanding(&dir.join("l.jsonl"))
            .expect("ledger")
            .is_empty()
    );
}

#[tokio::test]
async fn recover_says_what_is_still_settling_at_the_deadline_exits_4_and_checks_again_later() {
    let cluster = dark_cluster(1_000.0).await;
    // Nothing can be scheduled: the scaled-back pods stay Pending.
    set_unschedulable(&cluster, true).await;
    // The deadline (10 platform minutes) is one wall second here.
    let dir = crashed_run(&cluster, 600);
    let (code, out) = recover(&dir).await;
    assert_eq!(code, Some(4), "{out}");
    assert!(
        out.contains("still settling") && out.contains("prod-1/storefront 0/3 Ready"),
        "{out}"
    );
    assert!(!out.contains("recovered"), "{out}");
    let ledger = dir.join("l.jsonl");
    assert_eq!(Ledger::outstanding(&ledger).expect("ledger").len(), 1);
    // Once the pods can start, the next recover sees them Ready and closes the undo.
    set_unschedulable(&cluster, false).await;
    let (code, out) = recover(&dir).await;
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(ready_pods(&cluster), 3, "{out}");
    assert!(Ledger::outstanding(&ledger).expect("ledger").is_empty());
}
