//! Killing a primary outside the firedrill process: every member is reached through its own
//! proxy on the embedded Toxiproxy (the replica set config names the proxies, so clients and
//! the other members' heartbeats go through them). Cutting the primary's link must lose the
//! primary and elect another; removing exactly the kill's toxic must bring the member back.
//! Also: a kill with no way back is refused at preflight, naming the database.

#![allow(clippy::disallowed_macros)] // measurements and diagnostics printed for `--nocapture`

mod support;

use support::until;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use firedrill_core::clock::Clock;
use firedrill_providers::mongo::checker::{Checker, Concern};
use firedrill_providers::mongo::kill::{self, Way};
use firedrill_providers::mongo::observer::{NEW_PRIMARY, Observer, PRIMARY_LOST};
use firedrill_providers::mongo::{MongoError, Target};
use firedrill_providers::toxiproxy::{Action, ToxiproxyClient, ToxiproxyUndo};
use firedrill_sim::mongo::{MemberState, ReplicaSet};
use firedrill_sim::toxiproxy::ToxiproxyServer;
use firedrill_testkit::mongo::{behind_proxies, linked_platform, three_members};
use support::{collect, wait_seen};

const WALL_DEADLINE: Duration = Duration::from_secs(30);
const SCALE: f64 = 20.0;

fn platform(
    dir: &std::path::Path,
    set: &ReplicaSet,
    toxiproxy_url: &str,
) -> firedrill_platform::Platform {
    let path = linked_platform(dir, set, toxiproxy_url, "");
    firedrill_platform::load(&path).unwrap_or_else(|p| panic!("platform: {p}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cutting_the_primarys_toxiproxy_link_elects_another_and_removing_the_toxic_brings_it_back()
{
    let clock = Clock::scaled(SCALE).expect("scale");
    let toxiproxy = ToxiproxyServer::start(SocketAddr::from(([127, 0, 0, 1], 0)), clock, 3)
        .await
        .expect("toxiproxy");
    let set = behind_proxies(&toxiproxy, three_members("rs-linked", 21), clock).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let platform = platform(dir.path(), &set, &toxiproxy.url());
    let t = Target::resolve(&platform, "prod-1").expect("target");
    assert_eq!(
        t.seeds().await.expect("seeds"),
        set.hosts(),
        "clients reach the proxies"
    );

    let members = t.members().await.expect("members");
    let (seen, on) = collect();
    let observer = Observer::spawn(&t, &members, Duration::from_secs(1), clock, Arc::clone(&on))
        .await
        .expect("observer");
    let checker = Checker::start(&t, "writecheck_kill", 100.0, Concern::Majority, clock, on)
        .await
        .expect("checker");
    until("writes before the kill", || checker.acknowledged() >= 10).await;

    let old = t.primary().await.expect("primary");
    assert_eq!(old, set.hosts()[0]);
    let way = kill::way(&platform, "prod-1", &old).expect("a way to kill it");
    let Way::Link { link, proxy, url } = way else {
        panic!("the member's link is the way: {way:?}")
    };
    assert_eq!((link.as_str(), proxy.as_str()), ("mongo-0", "mongo-0"));
    // Somebody else's toxic on the same proxy must survive the undo.
    let client = ToxiproxyClient::new(&url).expect("client");
    let theirs = firedrill_providers::toxiproxy::ToxicSpec::new(
        "someone-elses-latency",
        firedrill_providers::toxiproxy::Stream::Downstream,
        firedrill_providers::toxiproxy::ToxicKind::latency(
            Duration::from_millis(1),
            Duration::ZERO,
        ),
    );
    client
        .add_toxic(&proxy, &theirs)
        .await
        .expect("their toxic");

    let cut_at = clock.now();
    kill::cut_link("prod-1", &old, &url, &proxy, "firedrill-test-kill-upstream")
        .await
        .expect("cut");
    let lost = wait_seen(&seen, PRIMARY_LOST, cut_at, WALL_DEADLINE).await;
    let elected = wait_seen(&seen, NEW_PRIMARY, cut_at, WALL_DEADLINE).await;
    let truth = set.elections().last().cloned().expect("an election");
    assert_ne!(truth.host, old, "another member was elected");
    assert!(truth.at >= cut_at, "the election followed the cut");
    assert_eq!(
        observer.elections().last().map(|o| o.host.clone()),
        Some(truth.host.clone())
    );
    assert!(set.status().members[0].link_down, "{:?}", set.status());
    // Cut off from the majority, the old primary steps down once it notices (its own
    // heartbeats), which may come just after the others' election.
    until("the cut-off member steps down", || {
        set.status().members[0].state != MemberState::Primary
    })
    .await;
    println!(
        "cut at {cut_at}, primary lost seen at {lost}, election at {} (truth), seen at {elected}",
        truth.at
    );

    // The undo as the ledger holds it: remove exactly the kill's toxic.
    let undo = ToxiproxyUndo {
        link,
        proxy: proxy.clone(),
        action: Action::RemoveToxic {
            toxic: "firedrill-test-kill-upstream".into(),
        },
    };
    undo.apply(&platform).await.expect("undo");
    let state = client.proxy(&proxy).await.expect("proxy");
    assert!(state.toxic("firedrill-test-kill-upstream").is_none());
    assert!(
        state.toxic("someone-elses-latency").is_some(),
        "only the kill's toxic is removed"
    );
    clock
        .timeout(
            Duration::from_secs(120),
            set.wait_until(|s| {
                let m = &s.members[0];
                (!m.link_down && m.state != MemberState::Down).then_some(())
            }),
        )
        .await
        .expect("the member's link is back");
    // Back for clients too: it answers through its proxy and knows the new primary. Having
    // the highest priority, it takes the primary back (priority takeover).
    firedrill_testkit::until_async(
        "the member answers through its proxy again",
        WALL_DEADLINE,
        || async {
            t.hello(&old)
                .await
                .is_ok_and(|h| h.set_name.as_deref() == Some(set.name()))
        },
    )
    .await;

    let after = checker.acknowledged();
    until("writes after the kill", || {
        checker.acknowledged() >= after + 10
    })
    .await;
    let report = checker.finish().await.expect("read back");
    println!(
        "{} sent, {} acknowledged, {} failed, longest unavailable {:?}",
        report.sent,
        report.acknowledged,
        report.errors,
        report.longest_unavailable()
    );
    assert_eq!(report.lost, Vec::<i64>::new(), "w:majority: none lost");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_with_no_way_back_is_refused_naming_the_database() {
    let clock = Clock::scaled(SCALE).expect("scale");
    let set = ReplicaSet::start(three_members("rs-no-way-back", 21), clock)
        .await
        .expect("set");
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("uri"), set.connection_string()).expect("uri file");
    // The set runs in this process but is not registered as the embedded platform's, and the
    // platform names no link, pod or restart command.
    let yaml = format!(
        "name: t\nregions:\n  us-west1: {{ role: primary }}\n  us-west2: {{ role: failover }}\ndatabases:\n  prod-1:\n    replica-set: {}\n    uri: {{ file: uri }}\nsafety:\n  allow:\n    replica-sets: [{}]\n",
        set.name(),
        set.name()
    );
    std::fs::write(dir.path().join("platform.yaml"), yaml).expect("platform");
    let platform = firedrill_platform::load(&dir.path().join("platform.yaml"))
        .unwrap_or_else(|p| panic!("platform: {p}"));
    let err = kill::way(&platform, "prod-1", &set.hosts()[0]).expect_err("no way back");
    assert!(matches!(err, MongoError::NoWayBack { .. }), "{err}");
    let text = err.to_string();
    assert!(text.contains("database \"prod-1\""), "{text}");
    assert!(text.contains("hint: set databases.prod-1.kill"), "{text}");
    let mut problems = firedrill_core::diagnostic::Problems::default();
    firedrill_providers::mongo::preflight_kill("prod-1", &platform, &mut problems).await;
    let rendered = format!("{problems}");
    assert!(rendered.contains("member 127.0.0.1:"), "{rendered}");
    assert!(rendered.contains("no way to bring it back"), "{rendered}");
    assert_eq!(
        set.status()
            .members
            .iter()
            .filter(|m| m.state == MemberState::Down)
            .count(),
        0
    );
}

/// Creates a pod as the StatefulSet controller would (re-)create it; the cluster's scheduler
/// and kubelet model make it Ready after the modelled start delay.
async fn create_pod(api: &kube::Api<k8s_openapi::api::core::v1::Pod>, name: &str) {
    let pod = serde_json::from_value(serde_json::json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "mongo-db"},
        "spec": {"containers": [{"name": "mongod", "image": "mongo:7"}]}
    }))
    .expect("pod");
    api.create(&kube::api::PostParams::default(), &pod)
        .await
        .expect("pod created");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pod_kill_deletes_the_pod_and_its_undo_waits_for_the_re_created_one_to_be_ready() {
    use firedrill_sim::kube::{Cluster, ClusterSpec, write_kubeconfig};
    use k8s_openapi::api::core::v1::Pod;
    use kube::api::Api;

    // Pod start takes tens of platform seconds in the cluster's timing model.
    let clock = Clock::scaled(100.0).expect("scale");
    let cluster = Cluster::start(
        ClusterSpec::new("us-west1", clock)
            .zone("us-west1-a", &[("mongo-db", 1)])
            .namespace("mongo-db"),
    )
    .await
    .expect("cluster");
    let dir = tempfile::tempdir().expect("tempdir");
    let kubeconfig = dir.path().join("kubeconfig");
    write_kubeconfig(&kubeconfig, &[("db-cluster", &cluster.url())]).expect("kubeconfig");
    std::fs::write(dir.path().join("uri"), "mongodb://127.0.0.1:9/").expect("uri");
    let yaml = "name: pods\nkubeconfig: kubeconfig\nregions:\n  us-west1: { role: primary }\n  us-west2: { role: failover }\ndatabases:\n  prod-1:\n    replica-set: rs\n    uri: { file: uri }\n    kill:\n      pods:\n        context: db-cluster\n        namespace: mongo-db\n        ready-within: 2m\n        members:\n          mongo-0.mongo:27017: mongo-0\nsafety:\n  allow:\n    kube-contexts: [db-cluster]\n";
    std::fs::write(dir.path().join("platform.yaml"), yaml).expect("platform");
    let platform = firedrill_platform::load(&dir.path().join("platform.yaml"))
        .unwrap_or_else(|p| panic!("platform: {p}"));
    let api: Api<Pod> = Api::namespaced(firedrill_testkit::kube::client(&cluster), "mongo-db");
    create_pod(&api, "mongo-0").await;

    let way = kill::way(&platform, "prod-1", "mongo-0.mongo:27017").expect("way");
    assert_eq!(
        way,
        Way::Pod {
            context: "db-cluster".into(),
            namespace: "mongo-db".into(),
            pod: "mongo-0".into()
        }
    );
    let uid = kill::pod_uid(&platform, "prod-1", "db-cluster", "mongo-db", "mongo-0")
        .await
        .expect("uid");
    assert!(!uid.is_empty());
    kill::delete_pod(&platform, "prod-1", "db-cluster", "mongo-db", "mongo-0")
        .await
        .expect("deleted");
    assert!(
        cluster.object("pods", "mongo-db", "mongo-0").is_none(),
        "the pod is gone"
    );

    // The undo as the ledger holds it waits for the StatefulSet; here the test is the
    // StatefulSet and re-creates the pod while the undo waits.
    let undo = firedrill_providers::mongo::MongoUndo::PodBack {
        database: "prod-1".into(),
        host: "mongo-0.mongo:27017".into(),
        context: "db-cluster".into(),
        namespace: "mongo-db".into(),
        pod: "mongo-0".into(),
        deleted_uid: uid.clone(),
    };
    let asked = cluster.request_log().len();
    let waiting = {
        let platform = platform.clone();
        let undo = undo.clone();
        tokio::spawn(async move { undo.apply(&platform, &clock).await })
    };
    // The undo is waiting once it has asked the server about the pod.
    until("the undo asks for the pod", || {
        cluster.request_log().len() > asked
    })
    .await;
    assert!(
        !waiting.is_finished(),
        "the undo waits while there is no pod"
    );
    create_pod(&api, "mongo-0").await;
    tokio::time::timeout(WALL_DEADLINE, waiting)
        .await
        .expect("the undo returns")
        .expect("task")
        .expect("the re-created pod is Ready");

    // A pod nobody brings back: the undo says so, naming the pod, within its deadline.
    kill::delete_pod(&platform, "prod-1", "db-cluster", "mongo-db", "mongo-0")
        .await
        .expect("deleted again");
    let err = tokio::time::timeout(WALL_DEADLINE, undo.apply(&platform, &clock))
        .await
        .expect("the undo gives up within its deadline")
        .expect_err("not back");
    let text = err.to_string();
    assert!(
        text.contains("member mongo-0.mongo:27017 was not back within 2m"),
        "{text}"
    );
    assert!(text.contains("no pod of that name"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shutdown_kill_is_undone_by_the_platforms_restart_command_naming_the_member() {
    let clock = Clock::scaled(SCALE).expect("scale");
    let set = ReplicaSet::start(three_members("rs-restart", 21), clock)
        .await
        .expect("set");
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("uri"), set.connection_string()).expect("uri file");
    // The restart command stands for systemd or Ansible: it leaves a note naming the member,
    // and this test, the operator, starts that member.
    let yaml = format!(
        "name: t\nregions:\n  us-west1: {{ role: primary }}\n  us-west2: {{ role: failover }}\ncommands:\n  start-member: {{ run: [touch, \"{dir}/restart-{{host}}\"] }}\n  broken: {{ run: [false] }}\ndatabases:\n  prod-1:\n    replica-set: {set}\n    uri: {{ file: uri }}\n    kill: {{ restart: start-member }}\n  prod-2:\n    replica-set: {set}\n    uri: {{ file: uri }}\n    kill: {{ restart: broken }}\nsafety:\n  allow:\n    replica-sets: [{set}]\n",
        dir = dir.path().display(),
        set = set.name(),
    );
    std::fs::write(dir.path().join("platform.yaml"), yaml).expect("platform");
    let platform = firedrill_platform::load(&dir.path().join("platform.yaml"))
        .unwrap_or_else(|p| panic!("platform: {p}"));
    let t = Target::resolve(&platform, "prod-1").expect("target");
    let old = t.primary().await.expect("primary");
    assert_eq!(
        kill::way(&platform, "prod-1", &old).expect("way"),
        Way::ShutdownAndCommand {
            command: "start-member".into()
        }
    );
    t.shutdown(&old).await.expect("shutdown");
    assert_eq!(set.status().members[0].state, MemberState::Down);

    let note = dir.path().join(format!("restart-{old}"));
    let operator = async {
        until("the restart command ran for the killed member", || {
            note.exists()
        })
        .await;
        set.restart(&old).await.expect("restart");
    };
    let undo = firedrill_providers::mongo::MongoUndo::RestartByCommand {
        database: "prod-1".into(),
        host: old.clone(),
        command: "start-member".into(),
    };
    let (undone, ()) = tokio::join!(undo.apply(&platform, &clock), operator);
    undone.expect("the undo runs the command and sees the member answer");
    assert_ne!(set.status().members[0].state, MemberState::Down);
    assert!(t.hello(&old).await.is_ok(), "the member answers again");

    // A restart command that fails: the undo says which member and which command.
    let broken = firedrill_providers::mongo::MongoUndo::RestartByCommand {
        database: "prod-2".into(),
        host: old.clone(),
        command: "broken".into(),
    };
    let err = broken
        .apply(&platform, &clock)
        .await
        .expect_err("the command fails");
    let text = err.to_string();
    assert!(
        text.contains(&format!(
            "restarting member {old} with command \"broken\" failed"
        )),
        "{text}"
    );
}
