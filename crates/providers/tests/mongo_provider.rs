//! The MongoDB provider against the embedded replica set: the observer's milestones against the
//! sim's ground truth, the write checker's lost writes against the sim's rollbacks, the flip,
//! and the redaction of credentials.

#![allow(clippy::disallowed_macros)] // measurements and diagnostics printed for `--nocapture`

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use firedrill_core::clock::{Clock, PlatformTime};
use firedrill_providers::mongo::checker::{Checker, Concern};
use firedrill_providers::mongo::observer::{NEW_PRIMARY, Observer, PRIMARY_LOST};
use firedrill_providers::mongo::{MongoError, Target};
use firedrill_sim::mongo::ReplicaSet;
use firedrill_testkit::mongo::three_members;
use support::{collect, wait_seen};

const WALL_DEADLINE: Duration = Duration::from_secs(20);
const PROBE: Duration = Duration::from_secs(1);

async fn start(name: &str, scale: f64, seed: u64) -> ReplicaSet {
    ReplicaSet::start(
        three_members(name, seed),
        Clock::scaled(scale).expect("scale"),
    )
    .await
    .expect("replica set starts")
}

fn target(set: &ReplicaSet) -> Target {
    Target::new(
        "prod-1",
        set.name(),
        &set.connection_string(),
        BTreeMap::new(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_step_down_is_observed_within_one_probe_interval_of_the_election() {
    let set = start("rs-observe", 20.0, 11).await;
    let t = target(&set);
    let members = t.members().await.expect("members");
    assert_eq!(
        members
            .iter()
            .map(|m| m.region.clone().unwrap_or_default())
            .collect::<Vec<_>>(),
        ["us-west1", "us-west1", "us-west2"],
        "regions come from the members' tags"
    );
    let (seen, on) = collect();
    let observer = Observer::spawn(&t, &members, PROBE, set.clock(), Arc::clone(&on))
        .await
        .expect("observer");
    // w:majority writes at 200 platform writes per second throughout the step-down.
    let checker = Checker::start(
        &t,
        "writecheck_stepdown",
        200.0,
        Concern::Majority,
        set.clock(),
        on,
    )
    .await
    .expect("checker");
    wait_until("ten acknowledged writes", || checker.acknowledged() >= 10).await;
    let old = t.primary().await.expect("primary");
    assert_eq!(old, set.hosts()[0]);
    t.step_down(&old, 60, 10).await.expect("step down");
    let lost = wait_seen(&seen, PRIMARY_LOST, PlatformTime::ZERO, WALL_DEADLINE).await;
    let elected = wait_seen(&seen, NEW_PRIMARY, PlatformTime::ZERO, WALL_DEADLINE).await;
    let truth = set.elections().last().cloned().expect("an election");
    assert_ne!(truth.host, old);
    let observed = observer.elections();
    assert_eq!(
        observed.last().map(|o| o.host.clone()),
        Some(truth.host.clone())
    );
    let lag = elected.saturating_since(truth.at);
    println!(
        "election at {} (ground truth), observed at {} (lag {lag:?}), primary lost observed at {lost}",
        truth.at, elected
    );
    assert!(elected >= truth.at, "observed before it happened");
    // One probe interval, plus the wall-time cost of a hello round trip at this scale.
    assert!(
        lag <= PROBE + set.clock().to_platform(Duration::from_millis(60)),
        "observed {lag:?} after the election"
    );
    assert!(
        seen.lock()
            .expect("lock")
            .iter()
            .any(|(n, _)| n == &format!("{NEW_PRIMARY}us-west1")),
        "the region is named"
    );
    let after = checker.acknowledged();
    wait_until("writes on the new primary", || {
        checker.acknowledged() >= after + 10
    })
    .await;
    let report = checker.finish().await.expect("read back");
    println!(
        "{} sent, {} acknowledged, {} failed, windows {:?}",
        report.sent, report.acknowledged, report.errors, report.windows
    );
    assert!(report.acknowledged >= 20, "{report:?}");
    assert_eq!(report.lost, Vec::<i64>::new(), "w:majority: none lost");
    // The writes the old primary held or refused while stepping down make one window, closed
    // by a write sent after it, within the election's time.
    let longest = report.longest_unavailable();
    assert!(
        longest <= Duration::from_secs(15),
        "unavailable for {longest:?}: {report:?}"
    );
}

async fn wait_until(what: &str, check: impl FnMut() -> bool) {
    firedrill_testkit::Wait::new(what, WALL_DEADLINE)
        .every(Duration::from_millis(5))
        .until(check)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_w1_the_checker_reports_exactly_the_writes_a_rollback_removed() {
    // Slow scale: the isolated primary keeps accepting w:1 writes for one election timeout
    // (10 platform s = 1 wall s) before it notices it lost the majority.
    let set = start("rs-negative", 10.0, 4).await;
    let t = target(&set);
    let (_seen, on) = collect();
    let checker = Checker::start(
        &t,
        "writecheck_negative",
        1000.0,
        Concern::One,
        set.clock(),
        on,
    )
    .await
    .expect("checker");
    wait_until("five acknowledged writes", || checker.acknowledged() >= 5).await;
    let old = set.primary().expect("a primary");
    set.partition(&old).expect("partition");
    tokio::time::timeout(
        WALL_DEADLINE,
        set.wait_until(|s| s.primary.clone().filter(|p| p != &old)),
    )
    .await
    .expect("the majority side elects a new primary");
    set.heal(&old).expect("heal");
    let rollback = tokio::time::timeout(
        WALL_DEADLINE,
        set.wait_until(|_| set.rollbacks().first().cloned()),
    )
    .await
    .expect("the old primary rolls back");
    let after = checker.acknowledged();
    wait_until("writes on the new primary", || {
        checker.acknowledged() >= after + 5
    })
    .await;
    let report = checker.finish().await.expect("read back");
    let rolled: BTreeSet<i64> = rollback
        .inserted
        .iter()
        .filter(|(ns, _)| ns == "firedrill.writecheck_negative")
        .filter_map(|(_, d)| d.get_i64("_id").ok())
        .collect();
    let lost: BTreeSet<i64> = report.lost.iter().copied().collect();
    println!(
        "{} acknowledged, {} rolled back, {} reported lost, {} errors",
        report.acknowledged,
        rolled.len(),
        lost.len(),
        report.errors
    );
    assert!(!rolled.is_empty(), "the isolated primary took writes");
    assert!(
        lost.is_subset(&rolled),
        "only rolled-back writes are lost: lost {lost:?}, rolled {rolled:?}"
    );
    assert!(
        !lost.is_empty(),
        "the checker found the loss: rolled {rolled:?}"
    );
    // Exactly: every rolled-back write the checker saw acknowledged is reported lost, and the
    // only rolled-back writes not reported are those whose acknowledgement never came (in
    // flight when the old primary stepped down: the checker counted them failed).
    let failed: BTreeSet<i64> = report.failed.iter().copied().collect();
    let unreported: BTreeSet<i64> = rolled.difference(&lost).copied().collect();
    assert!(
        unreported.is_subset(&failed),
        "rolled back and neither reported lost nor failed: {:?}",
        unreported.difference(&failed).collect::<Vec<_>>()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flip_moves_the_primary_and_the_ledger_undo_restores_the_original_config() {
    let set = start("rs-flip-undo", 50.0, 5).await;
    let t = target(&set);
    let clock = set.clock();
    let members = t.members().await.expect("members");
    let saved = t.priorities().await.expect("priorities");
    assert_eq!(saved.version, 1);
    let wanted = t
        .flip_priorities(&members, &saved, "us-west2")
        .expect("us-west2 has a member");
    t.set_priorities(&wanted).await.expect("reconfig");
    let primary = t
        .wait_primary_in(&members, "us-west2", Duration::from_secs(120), &clock)
        .await
        .expect("primary moves");
    assert_eq!(primary, set.hosts()[2]);
    assert_eq!(
        set.primary().as_deref(),
        Some(primary.as_str()),
        "ground truth agrees"
    );

    // The undo as `recover` runs it: from the platform file, the URI read again.
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("uri"), set.connection_string()).expect("uri file");
    let yaml = format!(
        "name: t\nregions:\n  us-west1: {{ role: primary }}\n  us-west2: {{ role: failover }}\ndatabases:\n  prod-1:\n    replica-set: {}\n    uri: {{ file: uri }}\n",
        set.name()
    );
    std::fs::write(dir.path().join("platform.yaml"), yaml).expect("platform");
    let platform = firedrill_platform::load(&dir.path().join("platform.yaml"))
        .unwrap_or_else(|p| panic!("platform: {p}"));
    let undo = firedrill_providers::mongo::MongoUndo::RestoreConfig {
        database: "prod-1".into(),
        saved: saved.clone(),
    };
    undo.apply(&platform, &clock).await.expect("restore");
    assert_eq!(set.primary().as_deref(), Some(set.hosts()[0].as_str()));
    let restored = t.priorities().await.expect("priorities");
    assert_eq!(restored.priorities, saved.priorities);
    assert_eq!(restored.version, 3, "restored at a new version");
    // Idempotent: a second recover changes nothing.
    undo.apply(&platform, &clock).await.expect("restore again");
    assert_eq!(t.priorities().await.expect("priorities").version, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_a_clear_error_and_changes_nothing() {
    let set = start("rs-bad", 50.0, 6).await;
    // Wrong replica set name: every member says which set it is in.
    let wrong = Target::new(
        "prod-1",
        "rs-other",
        &set.connection_string(),
        BTreeMap::new(),
    );
    let errors = wrong.preflight().await.expect_err("wrong set name");
    assert_eq!(errors.len(), 3, "{errors:?}");
    let text = errors[0].to_string();
    assert!(
        text.contains("belongs to replica set \"rs-bad\", but the platform says \"rs-other\""),
        "{text}"
    );
    // A member the platform maps that is not reachable.
    let mapped = BTreeMap::from([("127.0.0.1:9".to_owned(), "us-west2".to_owned())]);
    let t = Target::new("prod-1", "rs-bad", &set.connection_string(), mapped);
    let errors = t.preflight().await.expect_err("unreachable member");
    assert!(
        matches!(&errors[..], [MongoError::Unreachable { host, .. }] if host == "127.0.0.1:9"),
        "{errors:?}"
    );
    // A member the platform maps that answers but is not in the set's config (it belongs to
    // another set here, like a stale entry pointing at a reused address).
    let other = start("rs-bad-other", 50.0, 7).await;
    let stray = other.hosts()[1].clone();
    let mapped = BTreeMap::from([(stray.clone(), "us-west2".to_owned())]);
    let t = Target::new("prod-1", "rs-bad", &set.connection_string(), mapped);
    let errors = t.preflight().await.expect_err("member not in the config");
    assert!(
        errors
            .iter()
            .any(|e| matches!(e, MongoError::WrongSet { host, .. } if host == &stray)),
        "{errors:?}"
    );
    // A host the platform maps that the set does not list (a typo of a member's port).
    let typo = set.hosts()[2].replace("127.0.0.1", "localhost");
    let mapped = BTreeMap::from([(typo.clone(), "us-west2".to_owned())]);
    let t = Target::new("prod-1", "rs-bad", &set.connection_string(), mapped);
    let errors = t.preflight().await.expect_err("member not in the config");
    let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
    assert!(
        matches!(&errors[..], [MongoError::NotInConfig { host, .. }] if host == &typo),
        "{text:?}"
    );
    assert!(
        text[0].contains("is not in the replica set's config"),
        "{text:?}"
    );
    let t = target(&set);
    // A region with no member.
    let members = t.members().await.expect("members");
    let saved = t.priorities().await.expect("priorities");
    let err = t
        .flip_priorities(&members, &saved, "eu-west1")
        .expect_err("no member in eu-west1");
    assert!(
        err.to_string()
            .contains("no member of replica set is in region \"eu-west1\""),
        "{err}"
    );
    // A reconfig the server rejects changes nothing.
    let too_high = BTreeMap::from([(set.hosts()[2].clone(), 5000.0)]);
    let err = t.set_priorities(&too_high).await.expect_err("rejected");
    assert!(err.to_string().contains("out of range"), "{err}");
    assert_eq!(set.status().config_version, 1);
    // Freezing the primary is refused.
    let err = t.freeze(&set.hosts()[0], 30).await.expect_err("primary");
    assert!(matches!(err, MongoError::Command { .. }), "{err}");
    assert_eq!(set.primary().as_deref(), Some(set.hosts()[0].as_str()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_error_ever_contains_the_password() {
    let uri = "mongodb://drill-admin:hunter2-s3cret@127.0.0.1:9,127.0.0.1:10/?replicaSet=rs0&serverSelectionTimeoutMS=100";
    let t = Target::new("prod-1", "rs0", uri, BTreeMap::new());
    assert!(!format!("{t:?}").contains("hunter2"), "{t:?}");
    let errors = t.preflight().await.expect_err("unreachable");
    assert_eq!(errors.len(), 2, "{errors:?}");
    for e in &errors {
        for text in [e.to_string(), format!("{e:?}")] {
            assert!(!text.contains("hunter2-s3cret"), "{text}");
            assert!(!text.contains("drill-admin:"), "{text}");
        }
    }
    let bad = Target::new(
        "prod-1",
        "rs0",
        "mongodb://u:hunter2-s3cret@[bad",
        BTreeMap::new(),
    );
    let err = bad.client().await.expect_err("invalid uri");
    assert!(!err.to_string().contains("hunter2"), "{err}");
}
