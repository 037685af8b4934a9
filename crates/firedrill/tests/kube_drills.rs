//! Kubernetes drills run by the `firedrill` binary against in-test clusters (the embedded API
//! server on this test's runtime, so every run is awaited, never blocked on): bad input refused
//! at preflight, SIGKILL then `recover`, a failed drill undoing every fault, an API server lost
//! mid-drill, SIGINT, the untouched-namespaces snapshot, every zone of a region. Each test's
//! platform names its own kubeconfig.

use std::time::Duration;

use firedrill_core::clock::Clock;
use firedrill_sim::kube::Cluster;
use firedrill_testkit::kube::{
    STOREFRONTS_PLATFORM, live_uids, nodes_of, ready_uids, start_storefronts, storefronts,
    zone_taints,
};
use firedrill_testkit::platform::Folder;
use firedrill_testkit::{Output, firedrill};

/// How long a drill against an in-test cluster may take.
const DRILL: Duration = Duration::from_secs(60);

/// Waits (bounded) until `cond` holds on the server's ground truth.
async fn until(what: &str, cond: impl FnMut() -> bool) {
    firedrill_testkit::until(what, Duration::from_secs(30), cond).await;
}

/// `firedrill ARGS` in `folder`, awaited.
async fn firedrill(folder: &Folder, args: &[&str]) -> Output {
    firedrill!().start(folder.path(), args).exit(DRILL).await
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
const RECOVER: &[&str] = &["recover", "--ledger", "l.jsonl"];

const CLI_PLATFORM: &str = r"
name: kube-test
regions:
  us-west1:
    role: primary
    kube-context: us-west1
    zones: [us-west1-a, us-west1-b, us-west1-c, us-west1-z]
  us-west2:
    role: failover
    kube-context: us-west2
    zones: [us-west2-a]
namespaces:
  prod-1:
    services:
      storefront: { failover-replicas: 3 }
commands:
  wait-long: { run: [sleep, '30'] }
  fail: { run: [sh, -c, 'exit 7'] }
safety:
  allow:
    kube-contexts: [us-west1, us-west2]
    namespaces: [prod-1]
";

/// [`CLI_PLATFORM`] without a kube context for the failover region.
fn primary_only() -> String {
    CLI_PLATFORM.replace(
        "  us-west2:\n    role: failover\n    kube-context: us-west2\n",
        "  us-west2:\n    role: failover\n",
    )
}

async fn cluster(replicas: u32) -> Cluster {
    let clock = Clock::scaled(1_000.0).expect("scale");
    Cluster::start(storefronts("us-west1", clock, 7, replicas))
        .await
        .expect("cluster")
}

/// A folder for `cluster` with [`STOREFRONTS_PLATFORM`] as `p.yaml` and `drill` as `d.feature`.
fn setup(cluster: &Cluster, drill: &str) -> Folder {
    let folder = Folder::with_kubeconfig(&[("us-west1", cluster)]);
    folder.write_platform("p.yaml", STOREFRONTS_PLATFORM);
    folder.write("d.feature", drill);
    folder
}

#[tokio::test]
async fn bad_input_exits_2_at_preflight_with_nothing_injected() {
    let cluster = cluster(3).await;
    // us-west2 is named by the platform but absent from the kubeconfig.
    let folder = Folder::with_kubeconfig(&[("us-west1", &cluster)]);
    folder.write_platform("p.yaml", CLI_PLATFORM);
    cluster.forbid("patch", "nodes");
    let cases = [
        (
            "zone \"us-west1-a\" goes down",
            "forbidden: cannot patch nodes",
        ),
        (
            "zone \"us-west1-z\" goes down",
            "zone \"us-west1-z\" has no nodes",
        ),
        (
            "the failover cluster in \"us-west2\" is scaled up",
            "kube context \"us-west2\" cannot be used",
        ),
    ];
    for (step, expected) in cases {
        folder.write(
            "d.feature",
            &format!("Feature: f\n  Scenario: s\n    When {step}\n"),
        );
        let out = firedrill(&folder, RUN).await;
        let text = out.text();
        assert_eq!(out.code(), Some(2), "{step}: {text}");
        assert!(
            text.contains(expected),
            "{step}: expected {expected:?} in {text}"
        );
        assert!(!text.contains("injected:"), "{step}: {text}");
    }
    assert_eq!(zone_taints(&cluster), 0);
    // A namespace the cluster lacks.
    folder.write_platform("p.yaml", &CLI_PLATFORM.replace("prod-1", "prod-9"));
    folder.write(
        "d.feature",
        "Feature: f\n  Scenario: s\n    When region \"us-west1\" goes dark\n",
    );
    let out = firedrill(&folder, RUN).await;
    assert_eq!(out.code(), Some(2), "{}", out.text());
    assert!(
        out.text().contains("namespaces \"prod-9\""),
        "{}",
        out.text()
    );
    let replicas = cluster
        .object("deployments", "prod-1", "storefront")
        .expect("deployment");
    assert_eq!(replicas["spec"]["replicas"], 3);
}

#[tokio::test]
async fn after_sigkill_recover_removes_the_zone_taint_and_a_second_recover_is_a_no_op() {
    let cluster = cluster(3).await;
    let folder = Folder::with_kubeconfig(&[("us-west1", &cluster)]);
    folder.write_platform("p.yaml", &primary_only());
    folder.write(
        "d.feature",
        "Feature: f\n  Scenario: s\n    When zone \"us-west1-a\" goes down\n    And the command \"wait-long\" is run\n",
    );
    let mut run = firedrill!().start(folder.path(), RUN);
    let zone_a = nodes_of(&cluster, "us-west1-a").len();
    assert_eq!(zone_a, 2);
    until("zone a tainted", || zone_taints(&cluster) == zone_a).await;
    run.child().kill().expect("SIGKILL");
    run.child().wait().expect("the killed run is reaped");
    assert_eq!(
        zone_taints(&cluster),
        zone_a,
        "a killed run leaves its fault"
    );
    let out = firedrill(&folder, RECOVER).await;
    assert_eq!(out.code(), Some(0), "{}", out.text());
    assert_eq!(
        zone_taints(&cluster),
        0,
        "recover left a taint: {}",
        out.text()
    );
    let out = firedrill(&folder, RECOVER).await;
    assert_eq!(out.code(), Some(0), "{}", out.text());
}

#[tokio::test]
async fn a_failed_drill_restores_every_node_and_deployment_it_faulted() {
    let cluster = cluster(3).await;
    let folder = Folder::with_kubeconfig(&[("us-west1", &cluster)]);
    folder.write_platform("p.yaml", &primary_only());
    folder.write(
        "d.feature",
        "Feature: f\n  Scenario: s\n    When zone \"us-west1-a\" is drained\n    And zone \"us-west1-b\" goes down\n    And region \"us-west1\" goes dark\n    And the command \"fail\" is run\n",
    );
    let out = firedrill(&folder, RUN).await;
    let text = out.text();
    assert_eq!(out.code(), Some(1), "{text}");
    for fault in [
        "undone: zone-drained us-west1-a",
        "undone: zone-outage us-west1-b",
        "undone: region-dark us-west1",
    ] {
        assert!(text.contains(fault), "{fault} missing from: {text}");
    }
    assert_eq!(zone_taints(&cluster), 0);
    let cordoned = cluster
        .objects("nodes", None)
        .iter()
        .filter(|n| n["spec"]["unschedulable"] == true)
        .count();
    assert_eq!(cordoned, 0);
    for ns in ["prod-1", "prod-2"] {
        let d = cluster
            .object("deployments", ns, "storefront")
            .expect("deployment");
        // Only prod-1 is a platform service; prod-2 was never scaled.
        assert_eq!(d["spec"]["replicas"], 3, "{ns}");
    }
}

#[tokio::test]
async fn an_api_server_lost_mid_drill_fails_the_step_after_backoff_and_recover_undoes_later() {
    let cluster = start_storefronts(11, 1).await;
    let folder = setup(
        &cluster,
        "Feature: f\n  Scenario: s\n    When zone \"us-west1-a\" goes down\n    And the command \"wait-for-go\" is run\n    And zone \"us-west1-b\" goes down\n",
    );
    let run = firedrill!().start(folder.path(), RUN);
    until("zone a tainted", || zone_taints(&cluster) == 2).await;
    cluster.set_down(true);
    folder.write("go", "");
    // Normally about a second; the bound allows one request caught mid-flight by the outage
    // to wait out the client's 30 s read timeout on a busy machine (seen once in a full run).
    let out = run.exit(Duration::from_secs(150)).await;
    let text = out.text();
    assert_ne!(out.code(), Some(0), "{text}");
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
    let out = firedrill(&folder, RECOVER).await;
    assert_eq!(out.code(), Some(0), "{}", out.text());
    assert_eq!(
        zone_taints(&cluster),
        0,
        "recover removed the taint: {}",
        out.text()
    );
}

#[tokio::test]
async fn sigint_mid_drill_undoes_the_zone_outage() {
    let cluster = start_storefronts(11, 1).await;
    let folder = setup(
        &cluster,
        "Feature: f\n  Scenario: s\n    When zone \"us-west1-a\" goes down\n    And the command \"wait-long\" is run\n",
    );
    let run = firedrill!().start(folder.path(), RUN);
    until("zone a tainted", || zone_taints(&cluster) == 2).await;
    run.signal(libc::SIGINT);
    let out = run.exit(Duration::from_secs(30)).await;
    assert_ne!(out.code(), Some(0), "{}", out.text());
    assert_eq!(
        zone_taints(&cluster),
        0,
        "SIGINT left a taint: {}",
        out.text()
    );
    let out = firedrill(&folder, RECOVER).await;
    assert_eq!(
        out.code(),
        Some(0),
        "nothing left to recover: {}",
        out.text()
    );
}

#[tokio::test]
async fn a_pod_kill_passes_when_other_namespaces_stay_untouched_and_fails_when_they_do_not() {
    let cluster = start_storefronts(11, 3).await;
    let folder = setup(
        &cluster,
        "Feature: f\n  Scenario: prod-1 loses two pods\n    When 2 pods of \"app=storefront\" in \"prod-1\" are killed\n    Then namespace \"prod-2\" was never touched\n\n  Scenario: prod-2 loses a third of its pods\n    When 34% of the pods of \"app=storefront\" in \"prod-2\" of region \"us-west1\" are killed\n    Then namespaces \"prod-1\" and \"prod-2\" were never touched\n",
    );
    let prod2 = live_uids(&cluster, "prod-2");
    let out = firedrill(&folder, RUN).await;
    let code = out.code();
    let out = out.text();
    assert_eq!(code, Some(1), "{out}");
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
    assert_eq!(ready_uids(&cluster, "prod-1").len(), 3);
    assert_eq!(
        ready_uids(&cluster, "prod-2").len(),
        3,
        "the undo waited for replacements"
    );
    assert_eq!(
        prod2.intersection(&live_uids(&cluster, "prod-2")).count(),
        1
    );
}

#[tokio::test]
async fn every_zone_of_a_region_goes_down_and_a_zones_pods_are_deleted_each_undone() {
    let cluster = start_storefronts(11, 3).await;
    let folder = setup(
        &cluster,
        "Feature: f\n  Scenario: zone pods\n    When the pods of zone \"us-west1-b\" are deleted\n\n  Scenario: every zone\n    When every zone of region \"us-west1\" goes down\n    And the command \"wait-for-go\" is run\n",
    );
    let in_b = cluster
        .pod_records()
        .iter()
        .filter(|r| r.deleted.is_none() && r.zone.as_deref() == Some("us-west1-b"))
        .count();
    assert!(in_b > 0, "zone b runs pods");
    let run = firedrill!().start(folder.path(), RUN);
    until("every node tainted", || zone_taints(&cluster) == 6).await;
    until("every pod evicted", || {
        cluster
            .pod_records()
            .iter()
            .all(|r| r.deleted.is_some() || r.zone.is_none())
    })
    .await;
    folder.write("go", "");
    let out = run.exit(DRILL).await;
    let text = &out.stdout;
    assert_eq!(out.code(), Some(0), "{}", out.text());
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
        ready_uids(&cluster, "prod-1").len() == 3 && ready_uids(&cluster, "prod-2").len() == 3
    })
    .await;
}
