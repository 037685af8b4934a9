//! `firedrill recover` against the embedded Kubernetes API server: it says "recovered" only once
//! a scale undo's pods are Ready again (the same wait a drill's own undo does), and when they are
//! not by the deadline it says what is still settling, exits 4, and keeps the undo outstanding.

use std::path::Path;
use std::time::Duration;

use firedrill_core::clock::Clock;
use firedrill_engine::ledger::{Entry, wall_now};
use firedrill_providers::Undo;

type Ledger = firedrill_engine::ledger::Ledger<Undo>;
use firedrill_providers::kube::{KubeUndo, Replicas};
use firedrill_sim::kube::{Cluster, ClusterSpec, write_kubeconfig};
use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;

/// A platform whose clock runs `scale` times real time: the undo's deadline (10 platform
/// minutes) is `600 / scale` wall seconds.
fn platform(scale: u32) -> String {
    format!(
        r"
name: test
time-scale: {scale}
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
      storefront: {{ failover-replicas: 3 }}
safety:
  allow:
    kube-contexts: [us-west1]
    namespaces: [prod-1]
"
    )
}

/// A cluster whose storefront is at 0 replicas, as a region-dark fault leaves it.
async fn dark_cluster(scale: f64) -> Cluster {
    let clock = Clock::scaled(scale).expect("scale");
    let mut spec = ClusterSpec::new("us-west1", clock).seed(5);
    for z in ["a", "b", "c"] {
        spec = spec.zone(format!("us-west1-{z}"), &[("prod-1", 1)]);
    }
    let spec = spec
        .namespace("prod-1")
        .deployment("prod-1", "storefront", 0, Some("prod-1"));
    Cluster::start(spec).await.expect("cluster")
}

/// A folder with the platform file, a kubeconfig for `cluster`, and a ledger left by a crashed
/// run whose only outstanding undo scales the storefront back to 3.
fn crashed_run(cluster: &Cluster, scale: u32) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    write_kubeconfig(
        &dir.path().join("kubeconfig"),
        &[("us-west1", &cluster.url())],
    )
    .expect("kubeconfig");
    std::fs::write(dir.path().join("p.yaml"), platform(scale)).expect("platform");
    let mut ledger = Ledger::open(&dir.path().join("l.jsonl")).expect("ledger");
    ledger
        .append(&Entry::Begin {
            run: "crashed".into(),
            platform: dir.path().join("p.yaml"),
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
async fn recover(dir: &Path) -> (i32, String) {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_firedrill"))
        .args(["recover", "--ledger", "l.jsonl"])
        .current_dir(dir)
        .env("FIREDRILL_KUBECONFIG", dir.join("kubeconfig"))
        .env_remove("FIREDRILL_PLATFORM")
        .env_remove("FIREDRILL_LEDGER")
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(120), out)
        .await
        .expect("recover finishes within 120 s")
        .expect("recover runs");
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// Pods of prod-1 that are Ready and not being deleted, as the API server holds them now.
fn ready_pods(cluster: &Cluster) -> usize {
    cluster
        .objects("pods", Some("prod-1"))
        .iter()
        .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
        .filter(|p| {
            p["status"]["conditions"].as_array().is_some_and(|c| {
                c.iter()
                    .any(|c| c["type"] == "Ready" && c["status"] == "True")
            })
        })
        .count()
}

async fn set_unschedulable(cluster: &Cluster, on: bool) {
    let client = kube::Client::try_from(kube::Config::new(
        cluster.url().parse().expect("cluster URL"),
    ))
    .expect("client");
    let nodes: Api<Node> = Api::all(client);
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
    let (code, out) = recover(dir.path()).await;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("recovered"), "{out}");
    assert_eq!(
        ready_pods(&cluster),
        3,
        "recover returned before the scaled-back pods were Ready:\n{out}"
    );
    assert!(
        Ledger::outstanding(&dir.path().join("l.jsonl"))
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
    let (code, out) = recover(dir.path()).await;
    assert_eq!(code, 4, "{out}");
    assert!(
        out.contains("still settling") && out.contains("prod-1/storefront 0/3 Ready"),
        "{out}"
    );
    assert!(!out.contains("recovered"), "{out}");
    let ledger = dir.path().join("l.jsonl");
    assert_eq!(Ledger::outstanding(&ledger).expect("ledger").len(), 1);
    // Once the pods can start, the next recover sees them Ready and closes the undo.
    set_unschedulable(&cluster, false).await;
    let (code, out) = recover(dir.path()).await;
    assert_eq!(code, 0, "{out}");
    assert_eq!(ready_pods(&cluster), 3, "{out}");
    assert!(Ledger::outstanding(&ledger).expect("ledger").is_empty());
}
