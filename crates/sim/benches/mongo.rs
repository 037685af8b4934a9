//! Throughput of the embedded replica set: sustained w:majority inserts through the `mongodb`
//! driver, with replication compressed 100× and on the real clock, 1 and 16 in flight:
//!
//! `cargo bench -p firedrill-sim --bench mongo` (3 s a case); under `cargo test --benches`
//! it runs once, 300 ms a case.

#![allow(clippy::disallowed_macros)] // the figures are printed for the terminal that ran it

use std::time::{Duration, Instant};

use firedrill_core::clock::Clock;
use firedrill_sim::mongo::{MemberSpec, ReplicaSet, ReplicaSetSpec, Timing};
use firedrill_testkit::bench::Size;
use mongodb::Client;
use mongodb::bson::{Document, doc};
use mongodb::options::WriteConcern;

async fn measure(label: &str, window: Duration, scale: f64, concurrency: i64) {
    let spec = ReplicaSetSpec {
        name: "rs-bench".into(),
        members: vec![
            MemberSpec::new("us-west1", 2.0),
            MemberSpec::new("us-west1", 1.0),
            MemberSpec::new("us-west2", 1.0),
        ],
        seed: 1,
        timing: Timing::default(),
    };
    let set = ReplicaSet::start(spec, Clock::scaled(scale).expect("scale"))
        .await
        .expect("set starts");
    let client = Client::with_uri_str(set.connection_string())
        .await
        .expect("client");
    let coll = client.database("bench").collection::<Document>("w");
    coll.insert_one(doc! {"warm": true}).await.expect("warm-up");
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

/// Sustained w:majority inserts with replication lag compressed 100× (what the server itself
/// sustains) and on the real clock (each write waits for the modelled replication lag).
async fn sustained_majority_inserts_per_second(size: Size) {
    let window = size.pick(Duration::from_secs(3), Duration::from_millis(300));
    for (clock, scale) in [("scale 100", 100.0), ("real time", 1.0)] {
        for concurrency in [1, 16] {
            let label = format!("default timing, {clock}, {concurrency} in flight");
            measure(&label, window, scale, concurrency).await;
        }
    }
}

firedrill_testkit::bench_main!(sustained_majority_inserts_per_second);
