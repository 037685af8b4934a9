//! Throughput measurement of the embedded replica set, not a timed test: ignored by default.
//! Run it in a release build:
//!
//! `cargo test --release --test mongo_throughput -- --ignored --nocapture`

#![allow(clippy::disallowed_macros)] // measurements and diagnostics printed for `--nocapture`

use std::time::{Duration, Instant};

use firedrill_core::clock::Clock;
use firedrill_sim::mongo::{MemberSpec, ReplicaSet, ReplicaSetSpec, Timing};
use mongodb::Client;
use mongodb::bson::{Document, doc};
use mongodb::options::WriteConcern;

async fn measure(label: &str, timing: Timing, scale: f64, concurrency: i64) {
    let spec = ReplicaSetSpec {
        name: "rs-bench".into(),
        members: vec![
            MemberSpec::new("us-west1", 2.0),
            MemberSpec::new("us-west1", 1.0),
            MemberSpec::new("us-west2", 1.0),
        ],
        seed: 1,
        timing,
    };
    let set = ReplicaSet::start(spec, Clock::scaled(scale).expect("scale"))
        .await
        .expect("set starts");
    let client = Client::with_uri_str(set.connection_string())
        .await
        .expect("client");
    let coll = client.database("bench").collection::<Document>("w");
    coll.insert_one(doc! {"warm": true}).await.expect("warm-up");
    let window = Duration::from_secs(3);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for worker in 0..concurrency {
        let coll = coll.clone();
        tasks.push(tokio::spawn(async move {
            let mut n = 0_i64;
            // Bounded in count and time.
            while n < 1_000_000 && started.elapsed() < window {
                coll.insert_one(doc! {"worker": worker, "seq": n})
                    .write_concern(WriteConcern::majority())
                    .await
                    .expect("w:majority insert");
                n += 1;
            }
            n
        }));
    }
    let mut total = 0;
    for t in tasks {
        total += t.await.expect("worker");
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{label}: {total} w:majority inserts in {secs:.2} s = {:.0}/s",
        total as f64 / secs
    );
    assert!(total > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement, run explicitly in release"]
async fn sustained_majority_inserts_per_second() {
    // Replication lag compressed 100x: what the server itself sustains.
    measure(
        "default timing, scale 100, 1 in flight",
        Timing::default(),
        100.0,
        1,
    )
    .await;
    measure(
        "default timing, scale 100, 16 in flight",
        Timing::default(),
        100.0,
        16,
    )
    .await;
    // Default timing model in real time: each write waits for the modelled replication lag.
    measure(
        "default timing, real time, 1 in flight",
        Timing::default(),
        1.0,
        1,
    )
    .await;
    measure(
        "default timing, real time, 16 in flight",
        Timing::default(),
        1.0,
        16,
    )
    .await;
}

/// The write checker (issue goal: 1,000 w:majority writes/s on one core): the checker and the
/// replica set share one runtime thread, on the real clock with the default timing model, so
/// every write waits for the modelled replication lag of the majority. The asked rate is
/// `FIREDRILL_CHECKER_RATE` (default 1000), to look for the ceiling.
#[tokio::test(flavor = "current_thread")]
#[ignore = "a measurement, run explicitly in release"]
async fn the_write_checker_sustains_1000_majority_writes_per_second_on_one_core() {
    use firedrill_providers::mongo::Target;
    use firedrill_providers::mongo::checker::{Checker, Concern};
    use std::collections::BTreeMap;
    use std::sync::Arc;

    let spec = ReplicaSetSpec {
        name: "rs-checker-bench".into(),
        members: vec![
            MemberSpec::new("us-west1", 2.0),
            MemberSpec::new("us-west1", 1.0),
            MemberSpec::new("us-west2", 0.5),
        ],
        seed: 7,
        timing: Timing::default(),
    };
    let clock = Clock::real();
    let set = ReplicaSet::start(spec, clock).await.expect("set starts");
    let target = Target::new(
        "bench",
        set.name(),
        &set.connection_string(),
        BTreeMap::new(),
    );
    let asked: f64 = std::env::var("FIREDRILL_CHECKER_RATE")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(1_000.0);
    let checker = Checker::start(
        &target,
        "writecheck_bench",
        asked,
        Concern::Majority,
        clock,
        Arc::new(|_: &str, _, _: &str| {}),
    )
    .await
    .expect("checker");
    // Warm up (connections, pool) before the measured window.
    let warm = Instant::now();
    while checker.acknowledged() < 200 && warm.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let window = Duration::from_secs(5);
    let (acked_before, started) = (checker.acknowledged(), Instant::now());
    tokio::time::sleep(window).await;
    let acked = checker.acknowledged() - acked_before;
    let secs = started.elapsed().as_secs_f64();
    let report = checker.finish().await.expect("read back");
    println!(
        "write checker, w:majority, 1 thread, real clock, asked {asked}/s: {acked} acknowledged in {secs:.2} s = {:.0}/s; overall {} sent, {} acknowledged, {} errors, {} lost, longest unavailable {:?}",
        acked as f64 / secs,
        report.sent,
        report.acknowledged,
        report.errors,
        report.lost.len(),
        report.longest_unavailable()
    );
    assert!(report.lost.is_empty(), "lost {:?}", report.lost);
    assert_eq!(report.errors, 0);
    assert!(
        acked as f64 / secs >= 950.0,
        "sustained {:.0}/s, under the 1,000/s goal",
        acked as f64 / secs
    );
}

/// The topology observer (issue goal: a primary change seen within 100 ms plus one probe
/// interval of the embedded server's election): ten step-downs on the real clock, each lag
/// taken from the replica set's own record of the election to the observer's milestone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement, run explicitly in release"]
async fn a_primary_change_is_seen_within_100ms_plus_one_probe_interval() {
    use firedrill_core::clock::PlatformTime;
    use firedrill_providers::mongo::Target;
    use firedrill_providers::mongo::observer::{Observer, OnMilestone};
    use std::collections::BTreeMap;
    use std::sync::Arc;

    const PROBE: Duration = Duration::from_millis(100);
    let spec = ReplicaSetSpec {
        name: "rs-observer-bench".into(),
        // Equal priorities: a step-down hands off and nobody takes the primary back.
        members: vec![
            MemberSpec::new("us-west1", 1.0),
            MemberSpec::new("us-west1", 1.0),
            MemberSpec::new("us-west2", 1.0),
        ],
        seed: 9,
        timing: Timing::default(),
    };
    let clock = Clock::real();
    let set = ReplicaSet::start(spec, clock).await.expect("set starts");
    let target = Target::new(
        "bench",
        set.name(),
        &set.connection_string(),
        BTreeMap::new(),
    );
    let members = target.members().await.expect("members");
    let on: OnMilestone = Arc::new(|_: &str, _: PlatformTime, _: &str| {});
    let observer = Observer::spawn(&target, &members, PROBE, clock, on)
        .await
        .expect("observer");
    let mut lags = Vec::new();
    // Each step-down at a seeded random phase of the probe interval: the bench would otherwise
    // step down right after a poll (it waits on the observer) and always measure one interval.
    let mut rng = <rand_chacha::ChaCha8Rng as rand::SeedableRng>::seed_from_u64(17);
    for round in 0..10 {
        let offset = rand::Rng::random_range(&mut rng, 0..PROBE.as_millis() as u64);
        tokio::time::sleep(Duration::from_millis(offset)).await;
        let old = set.primary().expect("a primary");
        let seen_before = observer.elections().len();
        target.step_down(&old, 1, 1).await.expect("step down");
        let seen = tokio::time::timeout(Duration::from_secs(20), async {
            loop {
                let elections = observer.elections();
                if elections.len() > seen_before
                    && let Some(o) = elections.last().filter(|o| o.host != old)
                {
                    return o.clone();
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        })
        .await
        .unwrap_or_else(|_| panic!("round {round}: no election observed"));
        let truth = set
            .elections()
            .into_iter()
            .rev()
            .find(|e| e.host == seen.host)
            .expect("the set elected it");
        lags.push(seen.at.saturating_since(truth.at));
    }
    lags.sort();
    println!(
        "observer, probe every {PROBE:?}, real clock: lag after the election min {:?}, median {:?}, max {:?} over {} elections",
        lags[0],
        lags[lags.len() / 2],
        lags[lags.len() - 1],
        lags.len()
    );
    assert!(
        lags[lags.len() - 1] <= PROBE + Duration::from_millis(100),
        "lags {lags:?}"
    );
}
