//! The emergency halt's marker as a ConfigMap (crates/providers/src/halt.rs through the
//! Kubernetes provider) against the embedded API server: halt and resume record who and why,
//! a ConfigMap someone created by hand halts, and a running watch sees a halt within one
//! interval.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use firedrill_core::clock::Clock;
use firedrill_core::halt::{HALTED, RESUMED, Record};
use firedrill_platform::Platform;
use firedrill_providers::halt::{self, Location};
use firedrill_providers::kube::Conn;
use firedrill_sim::kube::{Cluster, ClusterSpec, write_kubeconfig};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ObjectMeta, PostParams};

fn record(state: &str, by: &str, reason: &str) -> Record {
    Record {
        state: state.into(),
        reason: reason.into(),
        by: by.into(),
        at: "2026-12-03T17:30:00Z".into(),
    }
}

/// A cluster with firedrill's namespace, and a platform whose halt marker lives there (the
/// kubeconfig named by the platform file: no process-wide setting).
async fn estate(dir: &Path, interval: &str) -> (Cluster, Platform) {
    let clock = Clock::real();
    let cluster = Cluster::start(ClusterSpec::new("us-west1", clock).namespace("firedrill"))
        .await
        .expect("the API server starts");
    let kubeconfig = dir.join("kubeconfig");
    write_kubeconfig(&kubeconfig, &[("us-west1", &cluster.url())]).expect("kubeconfig");
    let text = format!(
        "name: halted
kubeconfig: {}
regions:
  us-west1: {{ role: primary, kube-context: us-west1 }}
  us-west2: {{ role: failover }}
safety:
  allow:
    kube-contexts: [us-west1]
  halt:
    config-map: {{ kube-context: us-west1, namespace: firedrill }}
    interval: {interval}
",
        kubeconfig.display()
    );
    let platform = firedrill_platform::load_str(&dir.join("platform.yaml"), &text, &|_| None)
        .unwrap_or_else(|p| panic!("platform invalid:\n{p}"));
    (cluster, platform)
}

/// A client of the marker's cluster, apart from the marker's own.
async fn client(platform: &Platform) -> kube::Client {
    Conn::connect(platform, "us-west1")
        .await
        .expect("connect")
        .client()
        .clone()
}

async fn config_map(platform: &Platform) -> Option<BTreeMap<String, String>> {
    let api: Api<ConfigMap> = Api::namespaced(client(platform).await, "firedrill");
    api.get_opt("firedrill-halt")
        .await
        .expect("get")
        .map(|cm| cm.data.unwrap_or_default())
}

#[tokio::test]
async fn halt_and_resume_record_who_and_why_in_the_config_map() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (_cluster, platform) = estate(dir.path(), "5s").await;
    let marker = Location::of(&platform).await.expect("the marker's cluster");
    assert_eq!(
        marker.describe(),
        "ConfigMap firedrill/firedrill-halt in us-west1"
    );
    assert_eq!(
        marker.halt().await.expect("read"),
        None,
        "no ConfigMap: not halted"
    );

    marker
        .record(&record(HALTED, "alice", "incident 4711"))
        .await
        .expect("halt creates the ConfigMap");
    let data = config_map(&platform).await.expect("the ConfigMap exists");
    assert_eq!(data["state"], "halted");
    assert_eq!(data["by"], "alice");
    assert_eq!(data["reason"], "incident 4711");
    let halt = marker.halt().await.expect("read").expect("halted");
    assert_eq!(
        (halt.by.as_str(), halt.reason.as_str()),
        ("alice", "incident 4711")
    );

    marker
        .record(&record(RESUMED, "bob", "incident closed"))
        .await
        .expect("resume updates it");
    assert_eq!(marker.halt().await.expect("read"), None);
    let data = config_map(&platform)
        .await
        .expect("the ConfigMap stays, with its history");
    assert_eq!(
        (data["state"].as_str(), data["by"].as_str()),
        ("resumed", "bob")
    );
    let history: Vec<Record> = serde_json::from_str(&data["history"]).expect("JSON history");
    assert_eq!(history, vec![record(HALTED, "alice", "incident 4711")]);
}

#[tokio::test]
async fn a_config_map_created_by_hand_halts() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (_cluster, platform) = estate(dir.path(), "5s").await;
    // `kubectl create configmap firedrill-halt -n firedrill`, in a hurry: no data at all.
    let api: Api<ConfigMap> = Api::namespaced(client(&platform).await, "firedrill");
    let cm = ConfigMap {
        metadata: ObjectMeta {
            name: Some("firedrill-halt".into()),
            ..ObjectMeta::default()
        },
        ..ConfigMap::default()
    };
    api.create(&PostParams::default(), &cm)
        .await
        .expect("create");
    let marker = Location::of(&platform).await.expect("the marker's cluster");
    let halt = marker.halt().await.expect("read").expect("halted");
    assert_eq!(halt.reason, "no reason given");
}

#[tokio::test]
async fn a_running_watch_sees_a_halt_within_one_interval() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (_cluster, platform) = estate(dir.path(), "300ms").await;
    let clock = Clock::real();
    let writer = Location::of(&platform).await.expect("the marker's cluster");
    let watch = halt::watch(
        Location::of(&platform).await.expect("the marker's cluster"),
        &platform,
    );
    assert_eq!(watch.every, Duration::from_millis(300));
    let watching = tokio::spawn(async move {
        let halt = firedrill_engine::halt::halted(Some(&watch), clock).await;
        (halt, clock.now())
    });
    writer
        .record(&record(HALTED, "alice", "incident 4711"))
        .await
        .expect("halt");
    let halted_at = clock.now();
    let (halt, seen_at) = tokio::time::timeout(Duration::from_secs(10), watching)
        .await
        .expect("the watch sees the halt")
        .expect("join");
    assert_eq!(halt.by, "alice");
    // One interval, plus what one read of the API server takes on a loaded machine.
    let took = seen_at.saturating_since(halted_at);
    assert!(
        took <= Duration::from_millis(300) + Duration::from_secs(1),
        "the halt was seen {took:?} after it was written"
    );
}
