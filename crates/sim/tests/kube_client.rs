//! The embedded Kubernetes API server against the kube-rs 5 client and runtime, on loopback.

use std::time::Duration;

use firedrill_core::clock::Clock;
use firedrill_sim::kube::{Cluster, ClusterSpec, write_kubeconfig};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::wait::{await_condition, conditions};
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::json;

/// Platform time runs 1000x faster: a 20–90 s pod start takes 20–90 ms.
fn clock() -> Clock {
    Clock::scaled(1_000.0).expect("valid scale")
}

fn spec() -> ClusterSpec {
    ClusterSpec::new("us-west1", clock())
        .zone("us-west1-a", &[("prod-1", 2)])
        .zone("us-west1-b", &[("prod-1", 2)])
        .zone("us-west1-c", &[("prod-1", 2)])
        .namespace("prod-1")
        .deployment("prod-1", "web", 3, Some("prod-1"))
        .seed(42)
}

/// The cluster of [`spec`] and a kube-rs client of it.
async fn start() -> (Cluster, kube::Client) {
    let cluster = Cluster::start(spec()).await.expect("cluster starts");
    let client = firedrill_testkit::kube::client(&cluster);
    (cluster, client)
}

async fn client_from_kubeconfig(cluster: &Cluster, dir: &tempfile::TempDir) -> kube::Client {
    let path = dir.path().join("kubeconfig");
    write_kubeconfig(&path, &[("us-west1", &cluster.url())]).expect("kubeconfig written");
    firedrill_testkit::kube::client_from_kubeconfig(&path, "us-west1").await
}

async fn wait_ready_pods(pods: &Api<Pod>, selector: &str, want: usize) -> Vec<Pod> {
    let wait = firedrill_testkit::Wait::new(format!("{want} pods Ready"), Duration::from_secs(20))
        .every(Duration::from_millis(20));
    wait.until_async(|| async {
        let list = pods
            .list(&ListParams::default().labels(selector))
            .await
            .expect("pods list");
        let ready: Vec<Pod> = list
            .items
            .into_iter()
            .filter(|p| {
                p.status
                    .as_ref()
                    .and_then(|s| s.conditions.as_ref())
                    .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
            })
            .collect();
        if ready.len() == want {
            Ok(ready)
        } else {
            Err(format!("{} Ready", ready.len()))
        }
    })
    .await
}

#[tokio::test]
async fn lists_gets_and_patches_nodes_and_pods() {
    let cluster = Cluster::start(spec()).await.expect("cluster starts");
    let dir = tempfile::tempdir().expect("tempdir");
    let client = client_from_kubeconfig(&cluster, &dir).await;
    let nodes: Api<Node> = Api::all(client.clone());
    let zone_a = nodes
        .list(&ListParams::default().labels("topology.kubernetes.io/zone=us-west1-a"))
        .await
        .expect("nodes list");
    assert_eq!(zone_a.items.len(), 2);
    assert!(
        zone_a
            .metadata
            .resource_version
            .as_deref()
            .is_some_and(|v| !v.is_empty()),
        "list carries a resourceVersion"
    );
    let not_a = nodes
        .list(&ListParams::default().labels("topology.kubernetes.io/zone notin (us-west1-a)"))
        .await
        .expect("nodes list");
    assert_eq!(not_a.items.len(), 4);

    let node = nodes.get("us-west1-a-prod-1-0").await.expect("node get");
    assert_eq!(
        node.metadata
            .labels
            .as_ref()
            .and_then(|l| l.get("topology.kubernetes.io/region"))
            .map(String::as_str),
        Some("us-west1")
    );
    let cordoned = nodes
        .patch(
            "us-west1-a-prod-1-0",
            &PatchParams::default(),
            &Patch::Strategic(json!({"spec": {"unschedulable": true}})),
        )
        .await
        .expect("node patch");
    assert_eq!(
        cordoned.spec.as_ref().and_then(|s| s.unschedulable),
        Some(true)
    );
    let unschedulable = nodes
        .list(&ListParams::default().fields("spec.unschedulable=true"))
        .await
        .expect("field selector");
    assert_eq!(unschedulable.items.len(), 1);

    let pods: Api<Pod> = Api::namespaced(client.clone(), "prod-1");
    let ready = wait_ready_pods(&pods, "app=web", 3).await;
    let name = ready[0].metadata.name.clone().expect("pod has a name");
    assert!(
        name.starts_with("web-"),
        "pod name {name} is <deploy>-<hash>-<rand>"
    );
    assert_eq!(
        name.split('-').count(),
        3,
        "pod name {name} is <deploy>-<hash>-<rand>"
    );
    let labelled = pods
        .patch(
            &name,
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"drill": "yes"}}})),
        )
        .await
        .expect("pod merge patch");
    assert_eq!(
        labelled
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get("drill"))
            .map(String::as_str),
        Some("yes")
    );
    let json_patched = pods
        .patch(
            &name,
            &PatchParams::default(),
            &Patch::<()>::Json(
                serde_json::from_value(json!([{"op": "remove", "path": "/metadata/labels/drill"}]))
                    .expect("json patch"),
            ),
        )
        .await
        .expect("pod json patch");
    assert!(
        json_patched
            .metadata
            .labels
            .as_ref()
            .is_some_and(|l| !l.contains_key("drill"))
    );

    let missing = pods.get("nope").await.expect_err("missing pod");
    match missing {
        kube::Error::Api(s) => {
            assert_eq!(s.code, 404);
            assert_eq!(s.reason, "NotFound");
            assert_eq!(s.message, "pods \"nope\" not found");
        }
        other => panic!("expected a 404 Status, got {other:?}"),
    }
    let on_node = pods
        .list(&ListParams::default().fields(&format!(
                "spec.nodeName={}",
                ready[0]
                    .spec
                    .as_ref()
                    .and_then(|s| s.node_name.clone())
                    .expect("bound")
            )))
        .await
        .expect("field selector");
    assert!(
        on_node
            .items
            .iter()
            .any(|p| p.metadata.name.as_deref() == Some(name.as_str()))
    );
}

#[tokio::test]
async fn scale_subresource_and_await_condition_complete_after_scale_up() {
    let (_cluster, client) = start().await;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "prod-1");
    let done = await_condition(
        deployments.clone(),
        "web",
        conditions::is_deployment_completed(),
    );
    tokio::time::timeout(Duration::from_secs(20), done)
        .await
        .expect("initial rollout completes")
        .expect("watch ok");

    let scale = deployments.get_scale("web").await.expect("get scale");
    assert_eq!(scale.spec.and_then(|s| s.replicas), Some(3));
    deployments
        .patch_scale(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 9}})),
        )
        .await
        .expect("patch scale");
    let done = await_condition(
        deployments.clone(),
        "web",
        conditions::is_deployment_completed(),
    );
    let deployment = tokio::time::timeout(Duration::from_secs(20), done)
        .await
        .expect("scale-up completes within 20 s")
        .expect("watch ok")
        .expect("deployment exists");
    let status = deployment.status.expect("status");
    assert_eq!(status.ready_replicas, Some(9));
    assert_eq!(status.available_replicas, Some(9));
    assert_eq!(status.observed_generation, deployment.metadata.generation);
    let pods: Api<Pod> = Api::namespaced(client, "prod-1");
    assert_eq!(wait_ready_pods(&pods, "app=web", 9).await.len(), 9);

    let err = deployments
        .patch_scale(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": -1}})),
        )
        .await
        .expect_err("negative replicas refused");
    assert!(
        matches!(&err, kube::Error::Api(s) if s.code == 422 && s.reason == "Invalid"),
        "got {err:?}"
    );
    let dup = deployments
        .create(
            &PostParams::default(),
            &deployments.get("web").await.expect("get"),
        )
        .await
        .expect_err("duplicate");
    assert!(
        matches!(&dup, kube::Error::Api(s) if s.code == 409 && s.reason == "AlreadyExists"),
        "got {dup:?}"
    );
}

#[tokio::test]
async fn watcher_sees_pods_turn_ready() {
    let (cluster, client) = start().await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "prod-1");
    let mut ready_seen = std::collections::BTreeSet::new();
    let mut stream = watcher(pods, watcher::Config::default().labels("app=web"))
        .applied_objects()
        .boxed();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while ready_seen.len() < 3 {
        let next = tokio::time::timeout_at(deadline, stream.try_next())
            .await
            .expect("3 pods Ready within 20 s");
        let pod = next.expect("watch ok").expect("stream open");
        let ready = pod
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
        if ready {
            ready_seen.insert(pod.metadata.name.clone().expect("name"));
        }
    }
    for name in &ready_seen {
        assert!(
            cluster.pod_ready_at("prod-1", name).is_some(),
            "ground truth knows when {name} became Ready"
        );
    }
}

#[tokio::test]
async fn too_old_resource_version_gives_410_and_the_watcher_relists() {
    let (cluster, client) = start().await;
    let cms: Api<k8s_openapi::api::core::v1::ConfigMap> = Api::namespaced(client.clone(), "prod-1");
    let cm = |name: &str| {
        serde_json::from_value(json!({"metadata": {"name": name}, "data": {"k": "v"}}))
            .expect("configmap")
    };
    cms.create(&PostParams::default(), &cm("one"))
        .await
        .expect("create");
    let listed = cms.list(&ListParams::default()).await.expect("list");
    let old_rv = listed.metadata.resource_version.expect("list rv");

    // A raw watch from an old version after compaction answers an ERROR event with 410.
    cluster.compact();
    let mut raw = cms
        .watch(&kube::api::WatchParams::default(), &old_rv)
        .await
        .expect("watch opens")
        .boxed();
    let first = tokio::time::timeout(Duration::from_secs(5), raw.next())
        .await
        .expect("an event")
        .expect("stream item");
    match first {
        Err(kube::Error::Api(s)) => assert_eq!((s.code, s.reason.as_str()), (410, "Expired")),
        Ok(kube::core::WatchEvent::Error(s)) => assert_eq!(s.code, 410),
        other => panic!("expected a 410 ERROR event, got {other:?}"),
    }

    // A watcher that was watching re-lists after the history is gone and still sees new objects.
    let mut events = watcher(cms.clone(), watcher::Config::default()).boxed();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let mut init_done = 0;
    let mut saw_two = false;
    let mut stage = 0;
    while !(saw_two && init_done >= 2) {
        let ev = tokio::time::timeout_at(deadline, events.next())
            .await
            .expect("watcher progresses within 10 s")
            .expect("stream open");
        match ev {
            Ok(watcher::Event::InitDone) => {
                init_done += 1;
                if stage == 0 {
                    stage = 1;
                    cms.create(&PostParams::default(), &cm("filler"))
                        .await
                        .expect("create");
                    cluster.compact();
                    cms.create(&PostParams::default(), &cm("two"))
                        .await
                        .expect("create");
                }
            }
            Ok(watcher::Event::Apply(c) | watcher::Event::InitApply(c)) => {
                if c.metadata.name.as_deref() == Some("two") {
                    saw_two = true;
                }
            }
            Ok(_) => {}
            Err(e) => assert!(
                e.to_string().contains("410") || e.to_string().contains("too old"),
                "unexpected watcher error {e}"
            ),
        }
    }
    assert!(init_done >= 2, "the watcher re-listed after 410");
    assert!(
        cluster
            .request_log()
            .iter()
            .filter(
                |r| r.starts_with("GET /api/v1/namespaces/prod-1/configmaps?")
                    && !r.contains("watch=true")
            )
            .count()
            >= 2
    );
}

#[tokio::test]
async fn stale_updates_conflict_and_collections_delete_by_selector() {
    let (cluster, client) = start().await;
    let cms: Api<k8s_openapi::api::core::v1::ConfigMap> = Api::namespaced(client.clone(), "prod-1");
    let cm = |name: &str, tier: &str| {
        serde_json::from_value::<k8s_openapi::api::core::v1::ConfigMap>(
            json!({"metadata": {"name": name, "labels": {"tier": tier}}, "data": {"k": "v"}}),
        )
        .expect("configmap")
    };
    let first = cms
        .create(&PostParams::default(), &cm("a", "web"))
        .await
        .expect("create");
    cms.create(&PostParams::default(), &cm("b", "web"))
        .await
        .expect("create");
    cms.create(&PostParams::default(), &cm("c", "db"))
        .await
        .expect("create");
    let mut changed = first.clone();
    changed.data = Some([("k".to_owned(), "w".to_owned())].into());
    cms.replace("a", &PostParams::default(), &changed)
        .await
        .expect("first replace");
    let err = cms
        .replace("a", &PostParams::default(), &changed)
        .await
        .expect_err("stale resourceVersion");
    match err {
        kube::Error::Api(s) => {
            assert_eq!((s.code, s.reason.as_str()), (409, "Conflict"));
            assert!(
                s.message
                    .starts_with("Operation cannot be fulfilled on configmaps \"a\""),
                "{}",
                s.message
            );
        }
        other => panic!("expected 409, got {other:?}"),
    }
    let gone = cms
        .delete_collection(
            &kube::api::DeleteParams::default(),
            &ListParams::default().labels("tier=web"),
        )
        .await
        .expect("delete collection");
    let names: Vec<String> = gone
        .left()
        .expect("a list of deleted objects")
        .items
        .into_iter()
        .filter_map(|c| c.metadata.name)
        .collect();
    assert_eq!(names, ["a", "b"]);
    assert!(cluster.object("configmaps", "prod-1", "c").is_some());

    let elsewhere: Api<k8s_openapi::api::core::v1::ConfigMap> = Api::namespaced(client, "nowhere");
    let err = elsewhere
        .create(&PostParams::default(), &cm("x", "web"))
        .await
        .expect_err("missing namespace");
    assert!(
        matches!(&err, kube::Error::Api(s) if s.code == 404 && s.message == "namespaces \"nowhere\" not found"),
        "{err:?}"
    );
}

#[tokio::test]
async fn dry_runs_change_nothing_and_deleting_a_deployment_collects_its_pods() {
    let (cluster, client) = start().await;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "prod-1");
    let pods: Api<Pod> = Api::namespaced(client.clone(), "prod-1");
    wait_ready_pods(&pods, "app=web", 3).await;
    let rv = cluster.resource_version();
    let answered = deployments
        .patch_scale(
            "web",
            &PatchParams::default().dry_run(),
            &Patch::Merge(json!({"spec": {"replicas": 5}})),
        )
        .await
        .expect("dry-run scale");
    assert_eq!(
        answered.spec.and_then(|s| s.replicas),
        Some(5),
        "a dry run answers like the real write"
    );
    let pod = pods.list(&ListParams::default()).await.expect("list").items[0]
        .metadata
        .name
        .clone()
        .expect("name");
    pods.delete(&pod, &kube::api::DeleteParams::default().dry_run())
        .await
        .expect("dry-run delete");
    assert_eq!(
        cluster.resource_version(),
        rv,
        "dry runs moved the resourceVersion"
    );
    assert_eq!(
        cluster
            .object("deployments", "prod-1", "web")
            .expect("deployment")["spec"]["replicas"],
        3
    );
    assert!(cluster.object("pods", "prod-1", &pod).is_some());

    deployments
        .delete("web", &kube::api::DeleteParams::default())
        .await
        .expect("delete deployment");
    firedrill_testkit::until(
        "the replica set and pods collected",
        Duration::from_secs(20),
        || {
            cluster.objects("pods", Some("prod-1")).is_empty()
                && cluster.objects("replicasets", Some("prod-1")).is_empty()
        },
    )
    .await;
}

#[tokio::test]
async fn watches_that_allow_bookmarks_get_them() {
    let mut spec = spec();
    spec.bookmark_every = Duration::from_millis(50);
    let cluster = Cluster::start(spec).await.expect("cluster starts");
    let client = firedrill_testkit::kube::client(&cluster);
    let nodes: Api<Node> = Api::all(client);
    let list = nodes.list(&ListParams::default()).await.expect("list");
    let rv = list.metadata.resource_version.expect("rv");
    let mut events = nodes
        .watch(&kube::api::WatchParams::default(), &rv)
        .await
        .expect("watch")
        .boxed();
    let first = tokio::time::timeout(Duration::from_secs(5), events.next())
        .await
        .expect("an event within 5 s")
        .expect("open")
        .expect("ok");
    match first {
        kube::core::WatchEvent::Bookmark(b) => assert!(
            b.metadata.resource_version.parse::<u64>().expect("numeric")
                >= rv.parse::<u64>().expect("numeric")
        ),
        other => panic!("expected a BOOKMARK on a quiet watch, got {other:?}"),
    }
}

#[tokio::test]
async fn a_dark_region_hangs_requests_until_it_is_lit_again() {
    let (cluster, client) = start().await;
    let nodes: Api<Node> = Api::all(client);
    cluster.set_dark(true);
    let hung = tokio::time::timeout(
        Duration::from_millis(300),
        nodes.list(&ListParams::default()),
    )
    .await;
    assert!(hung.is_err(), "a dark region answered: {hung:?}");
    cluster.set_dark(false);
    let list = tokio::time::timeout(Duration::from_secs(5), nodes.list(&ListParams::default()))
        .await
        .expect("answers once lit")
        .expect("list");
    assert_eq!(list.items.len(), 6);
}
