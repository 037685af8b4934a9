//! The Mongo provider against the embedded replica set on the real clock: the write checker's
//! sustained w:majority rate (goal 1,000/s on one core) and the topology observer's lag after
//! an election (goal 100 ms plus one probe interval). The goals are asserted at full size:
//!
//! `cargo bench -p firedrill-providers --bench mongo` (`FIREDRILL_CHECKER_RATE` sets the
//! checker's asked rate, 1000 by default); under `cargo test --benches` each runs once, briefly.

#![allow(clippy::disallowed_macros)] // the figures are printed for the terminal that ran it

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use firedrill_core::clock::{Clock, PlatformTime};
use firedrill_providers::mongo::Target;
use firedrill_providers::mongo::checker::{Checker, Concern};
use firedrill_providers::mongo::observer::{Observer, OnMilestone};
use firedrill_sim::mongo::{MemberSpec, ReplicaSet, ReplicaSetSpec, Timing};
use firedrill_testkit::bench::Size;

/// The write checker (issue goal: 1,000 w:majority writes/s on one core): the checker and the
/// replica set share one runtime thread, on the real clock with the default timing model, so
/// every write waits for the modelled replication lag of the majority. The asked rate is
/// `FIREDRILL_CHECKER_RATE` (default 1000), to look for the ceiling.
async fn write_checker_majority_writes_per_second_on_one_core(size: Size) {
    // One runtime thread for the checker and the replica set, as the goal says.
    let one_core = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a one-thread runtime");
    std::thread::spawn(move || one_core.block_on(write_checker(size)))
        .join()
        .expect("the checker bench");
}

async fn write_checker(size: Size) {
    let spec = firedrill_testkit::mongo::three_members("rs-checker-bench", 7);
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
    let window = size.pick(Duration::from_secs(5), Duration::from_millis(500));
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
        !size.is_full() || acked as f64 / secs >= 950.0,
        "sustained {:.0}/s, under the 1,000/s goal",
        acked as f64 / secs
    );
}

/// The topology observer (issue goal: a primary change seen within 100 ms plus one probe
/// interval of the embedded server's election): ten step-downs on the real clock, each lag
/// taken from the replica set's own record of the election to the observer's milestone.
async fn observer_lag_after_an_election(size: Size) {
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
    for round in 0..size.pick(10, 2) {
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
        !size.is_full() || lags[lags.len() - 1] <= PROBE + Duration::from_millis(100),
        "lags {lags:?}"
    );
}

firedrill_testkit::bench_main!(
    write_checker_majority_writes_per_second_on_one_core,
    observer_lag_after_an_election
);
