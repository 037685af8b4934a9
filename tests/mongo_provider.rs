//! The MongoDB provider against the embedded replica set: the observer's milestones against the
//! sim's ground truth, the write checker's lost writes against the sim's rollbacks, the flip,
//! and the redaction of credentials.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use firedrill::drill::clock::{Clock, PlatformTime};
use firedrill::providers::mongo::checker::{Checker, Concern};
use firedrill::providers::mongo::observer::{NEW_PRIMARY, OnMilestone, Observer, PRIMARY_LOST};
use firedrill::providers::mongo::{MongoError, Target};
use firedrill::sim::mongo::{MemberSpec, ReplicaSet, ReplicaSetSpec, Timing};

const WALL_DEADLINE: Duration = Duration::from_secs(20);
const PROBE: Duration = Duration::from_secs(1);

type Seen = Arc<Mutex<Vec<(String, PlatformTime)>>>;

fn collect() -> (Seen, OnMilestone) {
    let seen: Seen = Arc::default();
    let sink = Arc::clone(&seen);
    let on: OnMilestone = Arc::new(move |name: &str, at: PlatformTime, _: &str| {
        sink.lock().expect("lock").push((name.to_owned(), at));
    });
    (seen, on)
}

async fn start(name: &str, scale: f64, seed: u64) -> ReplicaSet {
    let spec = ReplicaSetSpec {
        name: name.to_owned(),
        members: vec![
            MemberSpec::new("us-west1", 2.0),
            MemberSpec::new("us-west1", 1.0),
            MemberSpec::new("us-west2", 0.5),
        ],
        seed,
        timing: Timing::default(),
    };
    ReplicaSet::start(spec, Clock::scaled(scale).expect("scale"))
        .await
        .expect("replica set starts")
}

fn target(set: &ReplicaSet) -> Target {
    Target::new("prod-1", set.name(), &set.connection_string(), BTreeMap::new())
}

async fn wait_seen(seen: &Seen, name: &str) -> PlatformTime {
    let found = tokio::time::timeout(WALL_DEADLINE, async {
        loop {
            if let Some((_, at)) = seen
                .lock()
                .expect("lock")
                .iter()
                .find(|(n, _)| n.starts_with(name))
            {
                return *at;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    found.unwrap_or_else(|_| panic!("{name} never observed: {:?}", seen.lock().expect("lock")))
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
    let observer = Observer::spawn(&t, &members, PROBE, set.clock(), on)
        .await
        .expect("observer");
    let old = t.step_down(60, 10).await.expect("step down");
    assert_eq!(old, set.hosts()[0]);
    let lost = wait_seen(&seen, PRIMARY_LOST).await;
    let elected = wait_seen(&seen, NEW_PRIMARY).await;
    let truth = set.elections().last().cloned().expect("an election");
    assert_ne!(truth.host, old);
    let observed = observer.elections();
    assert_eq!(observed.last().map(|o| o.host.clone()), Some(truth.host.clone()));
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
}
