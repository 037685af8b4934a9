//! The embedded replica set against the real `mongodb` driver (and a raw OP_MSG client where
//! exact reply shapes matter), on loopback ports.

#![allow(clippy::disallowed_macros)] // measurements and diagnostics printed for `--nocapture`

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use firedrill_core::clock::Clock;
use firedrill_sim::mongo::{
    ElectionReason, MemberSpec, MemberState, ReplicaSet, ReplicaSetSpec, SetStatus, Timing,
};
use futures::TryStreamExt;
use mongodb::Client;
use mongodb::bson::{Bson, Document, doc};
use mongodb::event::EventHandler;
use mongodb::event::command::CommandEvent;
use mongodb::event::sdam::SdamEvent;
use mongodb::options::{ClientOptions, WriteConcern};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const WALL_DEADLINE: Duration = Duration::from_secs(20);

fn spec(name: &str, members: &[(&str, f64)], seed: u64) -> ReplicaSetSpec {
    ReplicaSetSpec {
        name: name.to_owned(),
        members: members
            .iter()
            .map(|(r, p)| MemberSpec::new(*r, *p))
            .collect(),
        seed,
        timing: Timing::default(),
    }
}

async fn start(spec: ReplicaSetSpec, scale: f64) -> ReplicaSet {
    let clock = Clock::scaled(scale).expect("valid scale");
    ReplicaSet::start(spec, clock)
        .await
        .expect("replica set starts and elects a primary")
}

/// A set `name` of two us-west1 members and one us-west2 member with these priorities, at
/// 100× time.
async fn start3(name: &str, [p0, p1, p2]: [f64; 3], seed: u64) -> ReplicaSet {
    let members = [("us-west1", p0), ("us-west1", p1), ("us-west2", p2)];
    start(spec(name, &members, seed), 100.0).await
}

/// Driver options for `uri`, with a server selection timeout that outlasts an election.
async fn options(uri: &str) -> ClientOptions {
    let mut options = ClientOptions::parse(uri).await.expect("valid uri");
    options.server_selection_timeout = Some(Duration::from_secs(15));
    options
}

async fn client(uri: &str) -> Client {
    Client::with_options(options(uri).await).expect("client")
}

/// Waits (wall deadline) until `check` holds on the set's status, failing with `what`.
async fn status_until<T>(
    set: &ReplicaSet,
    what: &str,
    check: impl FnMut(&SetStatus) -> Option<T>,
) -> T {
    tokio::time::timeout(WALL_DEADLINE, set.wait_until(check))
        .await
        .unwrap_or_else(|_| panic!("{what}; status {:?}", set.status()))
}

/// A primary other than `old`, once the set has one.
async fn new_primary(set: &ReplicaSet, old: &str) -> String {
    status_until(set, "a new primary", |s| {
        s.primary.clone().filter(|p| p != old)
    })
    .await
}

/// Every document of `coll`, sorted by `sort`.
async fn all(coll: &mongodb::Collection<Document>, sort: Document) -> Vec<Document> {
    coll.find(doc! {})
        .sort(sort)
        .await
        .expect("find")
        .try_collect()
        .await
        .expect("read back")
}

fn assert_ok(reply: &Document) {
    assert_eq!(reply.get_f64("ok").expect("ok"), 1.0, "{reply}");
}

/// `command` as an OP_MSG (opcode 2013) with one body section.
fn op_msg(command: &Document) -> Vec<u8> {
    let mut body = vec![0u8, 0, 0, 0, 0];
    command.to_writer(&mut body).expect("encode command");
    let mut msg = Vec::new();
    msg.extend_from_slice(&((16 + body.len()) as i32).to_le_bytes());
    msg.extend_from_slice(&1i32.to_le_bytes());
    msg.extend_from_slice(&0i32.to_le_bytes());
    msg.extend_from_slice(&2013i32.to_le_bytes());
    msg.extend_from_slice(&body);
    msg
}

/// Sends one OP_MSG command to `host` and returns the reply document.
async fn raw_command(host: &str, command: Document) -> Document {
    let mut stream = TcpStream::connect(host).await.expect("connect to member");
    stream.write_all(&op_msg(&command)).await.expect("send");
    let mut header = [0u8; 16];
    stream.read_exact(&mut header).await.expect("reply header");
    let len = i32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
    let mut reply = vec![0u8; len - 16];
    stream.read_exact(&mut reply).await.expect("reply body");
    Document::from_reader(&reply[5..]).expect("reply document")
}

async fn wait_for_primary(set: &ReplicaSet, host: &str) {
    status_until(set, &format!("{host} never became primary"), |s| {
        (s.primary.as_deref() == Some(host)).then_some(())
    })
    .await;
}

/// When the driver's topology watch ([`primary_watch`]) first saw `host` as primary.
async fn driver_saw_primary(seen: &Mutex<Vec<(String, Instant)>>, host: &str) -> Instant {
    let wait =
        firedrill_testkit::Wait::new(format!("the driver sees {host} as primary"), WALL_DEADLINE)
            .every(Duration::from_millis(5));
    wait.until(|| {
        let seen = seen.lock().expect("watch");
        seen.iter()
            .find(|(h, _)| h == host)
            .map(|(_, at)| *at)
            .ok_or_else(|| format!("{seen:?}"))
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn driver_runs_crud_and_admin_commands() {
    let set = start3("rs-crud", [2.0, 1.0, 1.0], 1).await;
    let hosts = set.hosts();
    assert_eq!(
        set.primary().as_deref(),
        Some(hosts[0].as_str()),
        "highest priority is elected first"
    );
    assert_eq!(
        set.connection_string(),
        format!("mongodb://{}/?replicaSet=rs-crud", hosts.join(","))
    );

    let client = client(&set.connection_string()).await;
    let db = client.database("app");
    let majority = db.collection::<Document>("seq");
    let w1 = db.collection_with_options::<Document>(
        "seq",
        mongodb::options::CollectionOptions::builder()
            .write_concern(WriteConcern::nodes(1))
            .build(),
    );
    majority
        .insert_one(doc! {"_id": 1, "seq": 1_i64, "kind": "majority"})
        .write_concern(WriteConcern::majority())
        .await
        .expect("w:majority insert");
    w1.insert_many((2..=5).map(|i| doc! {"_id": i, "seq": i64::from(i), "kind": "w1"}))
        .await
        .expect("w:1 insert_many (a kind-1 document sequence)");

    let found: Vec<Document> = majority
        .find(doc! {"seq": {"$gte": 2, "$lt": 5}})
        .sort(doc! {"seq": -1})
        .batch_size(1)
        .await
        .expect("find")
        .try_collect()
        .await
        .expect("getMore through the cursor");
    let seqs: Vec<i64> = found
        .iter()
        .map(|d| d.get_i64("seq").expect("seq"))
        .collect();
    assert_eq!(seqs, vec![4, 3, 2]);

    let updated = majority
        .update_one(doc! {"_id": 3}, doc! {"$set": {"kind": "updated"}})
        .await
        .expect("update");
    assert_eq!((updated.matched_count, updated.modified_count), (1, 1));
    let upserted = majority
        .update_one(doc! {"_id": 9}, doc! {"$set": {"seq": 9_i64}})
        .upsert(true)
        .await
        .expect("upsert");
    assert_eq!(upserted.upserted_id, Some(Bson::Int32(9)));
    let deleted = majority.delete_one(doc! {"_id": 2}).await.expect("delete");
    assert_eq!(deleted.deleted_count, 1);
    assert_eq!(
        majority
            .count_documents(doc! {})
            .await
            .expect("count_documents"),
        5
    );
    assert_eq!(
        majority
            .count_documents(doc! {"seq": {"$in": [1_i64, 9_i64]}})
            .await
            .expect("count"),
        2
    );
    assert_eq!(
        majority
            .estimated_document_count()
            .await
            .expect("count command"),
        5
    );
    let doc3 = majority
        .find_one(doc! {"_id": 3})
        .await
        .expect("find_one")
        .expect("doc 3 exists");
    assert_eq!(doc3.get_str("kind").expect("kind"), "updated");
    let dup = majority
        .insert_one(doc! {"_id": 1})
        .await
        .expect_err("duplicate _id is rejected");
    assert!(dup.to_string().contains("E11000"), "{dup}");

    let before = majority
        .find_one_and_update(doc! {"_id": 4}, doc! {"$inc": {"seq": 100_i64}})
        .await
        .expect("findAndModify")
        .expect("doc 4 exists");
    assert_eq!(
        before.get_i64("seq").expect("seq"),
        4,
        "the pre-image by default"
    );
    let after = majority
        .find_one_and_update(doc! {"_id": 4}, doc! {"$inc": {"seq": 1_i64}})
        .return_document(mongodb::options::ReturnDocument::After)
        .await
        .expect("findAndModify")
        .expect("doc 4 exists");
    assert_eq!(after.get_i64("seq").expect("seq"), 105);
    let removed = majority
        .find_one_and_delete(doc! {"_id": 4})
        .await
        .expect("findAndModify remove")
        .expect("doc 4 existed");
    assert_eq!(removed.get_i64("seq").expect("seq"), 105);
    assert_eq!(
        majority
            .find_one_and_delete(doc! {"_id": 4})
            .await
            .expect("findAndModify remove"),
        None
    );
    majority
        .insert_one(doc! {"_id": 4, "seq": 4_i64, "kind": "w1"})
        .await
        .expect("re-insert");

    let admin = client.database("admin");
    let status = admin
        .run_command(doc! {"replSetGetStatus": 1})
        .await
        .expect("replSetGetStatus");
    assert_eq!(status.get_str("set").expect("set"), "rs-crud");
    let members = status.get_array("members").expect("members");
    assert_eq!(members.len(), 3);
    let states: Vec<&str> = members
        .iter()
        .map(|m| {
            m.as_document()
                .expect("doc")
                .get_str("stateStr")
                .expect("state")
        })
        .collect();
    assert_eq!(states, vec!["PRIMARY", "SECONDARY", "SECONDARY"]);
    let config = admin
        .run_command(doc! {"replSetGetConfig": 1})
        .await
        .expect("replSetGetConfig");
    let config = config.get_document("config").expect("config");
    assert_eq!(config.get_i32("version").expect("version"), 1);
    let regions: Vec<&str> = config
        .get_array("members")
        .expect("members")
        .iter()
        .map(|m| {
            m.as_document()
                .expect("doc")
                .get_document("tags")
                .expect("tags")
                .get_str("region")
                .expect("region")
        })
        .collect();
    assert_eq!(regions, vec!["us-west1", "us-west1", "us-west2"]);

    // Every member ends up with the same data: replication reached both secondaries.
    status_until(&set, "secondaries catch up", |s| {
        s.members
            .iter()
            .all(|m| m.oplog_len == s.members[0].oplog_len)
            .then_some(())
    })
    .await;
    let hello = raw_command(&hosts[2], doc! {"hello": 1, "$db": "admin"}).await;
    assert!(hello.get_bool("secondary").expect("secondary"));
    assert_eq!(hello.get_str("primary").expect("primary"), hosts[0]);
    assert_eq!(
        hello.get_document("tags").expect("tags"),
        &doc! {"region": "us-west2"}
    );
    assert!(hello.get_i32("maxWireVersion").expect("maxWireVersion") >= 9);
}

/// Records when the driver's topology first shows each host as primary.
fn primary_watch(options: &mut ClientOptions) -> Arc<Mutex<Vec<(String, Instant)>>> {
    let seen: Arc<Mutex<Vec<(String, Instant)>>> = Arc::default();
    let sink = seen.clone();
    options.sdam_event_handler = Some(EventHandler::callback(move |event: SdamEvent| {
        if let SdamEvent::TopologyDescriptionChanged(change) = event {
            for (address, server) in change.new_description.servers() {
                if server.server_type() == mongodb::ServerType::RsPrimary {
                    let host = address.to_string();
                    let mut seen = sink.lock().expect("watch lock");
                    if seen.last().map(|(h, _)| h != &host).unwrap_or(true) {
                        seen.push((host, Instant::now()));
                    }
                }
            }
        }
    }));
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn step_down_hands_off_to_the_next_priority_and_loses_no_majority_write() {
    let set = start3("rs-stepdown", [3.0, 1.0, 2.0], 2).await;
    let hosts = set.hosts();
    let mut options = options(&set.connection_string()).await;
    let seen = primary_watch(&mut options);
    let client = Client::with_options(options).expect("client");
    let coll = client.database("app").collection::<Document>("checker");

    // A write checker: sequential w:majority inserts, every acknowledged _id recorded.
    let writer = {
        let coll = coll.clone();
        tokio::spawn(async move {
            let mut acked = Vec::new();
            let started = Instant::now();
            for seq in 0..300_i64 {
                if started.elapsed() > WALL_DEADLINE {
                    break;
                }
                coll.insert_one(doc! {"_id": seq, "seq": seq})
                    .write_concern(WriteConcern::majority())
                    .await
                    .unwrap_or_else(|e| {
                        panic!("insert {seq} failed instead of being retried: {e}")
                    });
                acked.push(seq);
            }
            acked
        })
    };
    tokio::time::timeout(WALL_DEADLINE, async {
        while coll.count_documents(doc! {}).await.expect("count") < 50 {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("writer makes progress");

    let asked = Instant::now();
    let reply = client
        .database("admin")
        .run_command(doc! {"replSetStepDown": 60, "secondaryCatchUpPeriodSecs": 10})
        .await
        .expect("replSetStepDown");
    assert_ok(&reply);
    // The handoff goes to the first caught-up secondary at once; when that is the
    // same-region member, the us-west2 member (priority 2.0, the highest of the rest) takes
    // over as soon as it has caught up, as on a real replica set.
    wait_for_primary(&set, &hosts[2]).await;
    let elections = set.elections();
    assert_eq!(elections[1].reason, ElectionReason::StepDownHandoff);
    let election = elections.last().cloned().expect("an election");
    assert_eq!(
        election.host, hosts[2],
        "the highest priority of the rest (us-west2, 2.0) ends up primary"
    );
    assert_eq!(election.region, "us-west2");
    assert!(
        elections.len() == 2
            || (elections.len() == 3 && election.reason == ElectionReason::PriorityTakeover),
        "{elections:?}"
    );

    let driver_saw = driver_saw_primary(&seen, &hosts[2]).await;
    let elected_at = set.clock().instant_of(election.at);
    let lag = driver_saw.saturating_duration_since(elected_at);
    println!(
        "driver saw the new primary {lag:?} (wall) after the election; step-down to seen: {:?}",
        driver_saw - asked
    );
    assert!(
        driver_saw - asked < Duration::from_secs(3),
        "the driver saw the new primary {:?} after replSetStepDown",
        driver_saw - asked
    );

    let acked = writer.await.expect("writer task");
    assert_eq!(
        acked.len(),
        300,
        "every write was acknowledged (retried across the step-down)"
    );
    let stored_ids: Vec<i64> = all(&coll, doc! {"seq": 1})
        .await
        .iter()
        .map(|d| d.get_i64("_id").expect("_id"))
        .collect();
    assert_eq!(
        stored_ids, acked,
        "every acknowledged w:majority write is readable, none duplicated"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retried_writes_are_deduplicated_and_non_primary_writes_are_retryable() {
    let set = start3("rs-retry", [2.0, 1.0, 1.0], 3).await;
    let hosts = set.hosts();
    let lsid = doc! {"id": Bson::Binary(mongodb::bson::Binary { subtype: mongodb::bson::spec::BinarySubtype::Uuid, bytes: vec![7; 16] })};
    let insert = doc! {
        "insert": "retry", "$db": "app", "lsid": lsid.clone(), "txnNumber": 1_i64,
        "documents": [{"_id": "a"}, {"_id": "b"}], "writeConcern": {"w": "majority"},
    };
    let first = raw_command(&hosts[0], insert.clone()).await;
    assert_eq!(first.get_i32("n").expect("n"), 2, "{first}");

    // The same statements retried on another member after a step-down answer the same and
    // write nothing twice.
    let step = raw_command(&hosts[0], doc! {"replSetStepDown": 30, "$db": "admin"}).await;
    assert_ok(&step);
    let new_primary = new_primary(&set, &hosts[0]).await;
    let retried = raw_command(&new_primary, insert.clone()).await;
    assert_eq!(retried.get_i32("n").expect("n"), 2, "{retried}");
    assert!(
        retried.get("writeErrors").is_none(),
        "no duplicate key error on a retry: {retried}"
    );
    assert_eq!(set.retries_deduplicated(), 2);
    let count = raw_command(&new_primary, doc! {"count": "retry", "$db": "app"}).await;
    assert_eq!(count.get_i32("n").expect("n"), 2);

    // A write to the old primary: NotWritablePrimary, labelled retryable.
    let refused = raw_command(&hosts[0], insert).await;
    assert_eq!(refused.get_f64("ok").expect("ok"), 0.0);
    assert_eq!(refused.get_i32("code").expect("code"), 10107);
    assert_eq!(
        refused.get_str("codeName").expect("codeName"),
        "NotWritablePrimary"
    );
    let labels = refused.get_array("errorLabels").expect("labels");
    assert_eq!(labels, &vec![Bson::String("RetryableWriteError".into())]);
    // A secondary refuses primary reads unless the read preference allows it.
    let read = raw_command(&hosts[0], doc! {"find": "retry", "$db": "app"}).await;
    assert_eq!(read.get_i32("code").expect("code"), 13435);
    let read = raw_command(
        &hosts[0],
        doc! {"find": "retry", "$db": "app", "$readPreference": {"mode": "secondaryPreferred"}},
    )
    .await;
    assert_eq!(
        read.get_document("cursor")
            .expect("cursor")
            .get_array("firstBatch")
            .expect("batch")
            .len(),
        2
    );
    // Freeze is refused on a primary, accepted on a secondary.
    let freeze = raw_command(&new_primary, doc! {"replSetFreeze": 10, "$db": "admin"}).await;
    assert_eq!(freeze.get_i32("code").expect("code"), 95);
    let freeze = raw_command(&hosts[0], doc! {"replSetFreeze": 0, "$db": "admin"}).await;
    assert_ok(&freeze);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreplicated_w1_writes_on_a_partitioned_primary_are_rolled_back() {
    // Slower scale: the isolated primary keeps accepting w:1 writes for one election timeout
    // (10 platform s = 1 wall s here) before it notices it lost the majority.
    let set = start(
        spec(
            "rs-rollback",
            &[("us-west1", 2.0), ("us-west1", 1.0), ("us-west2", 1.0)],
            4,
        ),
        10.0,
    )
    .await;
    let hosts = set.hosts();
    let old = hosts[0].clone();
    let set_client = client(&set.connection_string()).await;
    let coll = set_client.database("app").collection::<Document>("ledger");
    for seq in 0..5_i64 {
        coll.insert_one(doc! {"_id": seq})
            .write_concern(WriteConcern::majority())
            .await
            .expect("committed write");
    }
    let direct = client(&set.direct_connection_string(&old)).await;
    let direct_coll = direct.database("app").collection::<Document>("ledger");
    direct_coll
        .find_one(doc! {})
        .await
        .expect("direct connection warmed up");

    set.partition(&old).expect("partition");
    let mut lost = BTreeSet::new();
    for seq in 100..110_i64 {
        direct_coll
            .insert_one(doc! {"_id": seq})
            .write_concern(WriteConcern::nodes(1))
            .await
            .expect("the isolated primary still acknowledges w:1");
        lost.insert(seq);
    }
    let new_primary = new_primary(&set, &old).await;
    let election = set.elections().last().cloned().expect("election");
    assert_eq!(election.reason, ElectionReason::Timeout);
    coll.insert_one(doc! {"_id": 200_i64})
        .write_concern(WriteConcern::majority())
        .await
        .expect("write on the new primary");

    set.heal(&old).expect("heal");
    let rollback = status_until(&set, "the old primary rolls back", |_| {
        set.rollbacks().first().cloned()
    })
    .await;
    assert_eq!(rollback.host, old);
    let rolled: BTreeSet<i64> = rollback
        .inserted
        .iter()
        .map(|(ns, d)| {
            assert_eq!(ns, "app.ledger");
            d.get_i64("_id").expect("_id")
        })
        .collect();
    assert_eq!(
        rolled, lost,
        "exactly the unreplicated w:1 writes are rolled back"
    );

    let ids: BTreeSet<i64> = all(&coll, doc! {"_id": 1})
        .await
        .iter()
        .map(|d| d.get_i64("_id").expect("_id"))
        .collect();
    let expected: BTreeSet<i64> = (0..5).chain([200]).collect();
    assert_eq!(
        ids, expected,
        "committed writes survive, the rolled-back ones disappear"
    );
    status_until(
        &set,
        "the old primary rejoins as a secondary in sync",
        |s| {
            let m = &s.members[0];
            (m.state == MemberState::Secondary && m.oplog_len == s.members[1].oplog_len)
                .then_some(())
        },
    )
    .await;
    let on_old = raw_command(
        &old,
        doc! {"count": "ledger", "$db": "app", "$readPreference": {"mode": "secondary"}},
    )
    .await;
    assert_eq!(
        on_old.get_i32("n").expect("n"),
        6,
        "the old primary no longer has the lost writes"
    );
    assert_ne!(new_primary, old);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconfig_moves_the_primary_to_us_west2_and_invalid_reconfigs_change_nothing() {
    let set = start(
        spec(
            "rs-flip",
            &[
                ("us-west1", 2.0),
                ("us-west1", 2.0),
                ("us-west2", 1.0),
                ("us-west2", 1.0),
                ("us-west1", 0.0),
            ],
            5,
        ),
        100.0,
    )
    .await;
    let hosts = set.hosts();
    let client = client(&set.connection_string()).await;
    let admin = client.database("admin");
    let current = admin
        .run_command(doc! {"replSetGetConfig": 1})
        .await
        .expect("config");
    let mut config = current.get_document("config").expect("config").clone();

    // Version not increasing: rejected, nothing changes.
    let err = admin
        .run_command(doc! {"replSetReconfig": config.clone()})
        .await
        .expect_err("same version rejected");
    assert_eq!(command_code(&err), Some(103), "{err}");
    // Unknown member host: rejected.
    let mut bad = config.clone();
    bad.insert("version", 2);
    let mut members = bad.get_array("members").expect("members").clone();
    if let Some(Bson::Document(m)) = members.get_mut(4) {
        m.insert("host", "127.0.0.1:1");
    }
    bad.insert("members", members);
    let err = admin
        .run_command(doc! {"replSetReconfig": bad})
        .await
        .expect_err("unknown host rejected");
    assert_eq!(command_code(&err), Some(74), "{err}");
    assert_eq!(set.status().config_version, 1);
    assert_eq!(set.primary().as_deref(), Some(hosts[0].as_str()));

    // Raise the us-west2 priorities: a priority takeover moves the primary there.
    config.insert("version", 2);
    let members: Vec<Bson> = config
        .get_array("members")
        .expect("members")
        .iter()
        .map(|m| {
            let mut m = m.as_document().expect("member").clone();
            let region = m
                .get_document("tags")
                .expect("tags")
                .get_str("region")
                .expect("region")
                .to_owned();
            let host = m.get_str("host").expect("host").to_owned();
            let priority = if host == hosts[2] {
                5.0
            } else if region == "us-west2" {
                4.0
            } else if host == hosts[4] {
                0.0
            } else {
                1.0
            };
            m.insert("priority", priority);
            Bson::Document(m)
        })
        .collect();
    config.insert("members", members);
    let started = set.clock().now();
    admin
        .run_command(doc! {"replSetReconfig": config})
        .await
        .expect("valid reconfig");
    wait_for_primary(&set, &hosts[2]).await;
    let election = set.elections().last().cloned().expect("election");
    assert_eq!(election.reason, ElectionReason::PriorityTakeover);
    assert_eq!(election.region, "us-west2");
    println!(
        "primary moved to us-west2 {} of platform time after the reconfig",
        firedrill_core::clock::format_duration(election.at.saturating_since(started))
    );
    let hello = raw_command(&hosts[2], doc! {"hello": 1, "$db": "admin"}).await;
    assert!(
        hello
            .get_bool("isWritablePrimary")
            .expect("isWritablePrimary")
    );
    assert_eq!(hello.get_i32("setVersion").expect("setVersion"), 2);
    assert_eq!(
        hello
            .get_array("passives")
            .expect("priority-0 members are passives"),
        &vec![Bson::String(hosts[4].clone())]
    );
    // The driver follows: a write lands on the new primary.
    client
        .database("app")
        .collection::<Document>("c")
        .insert_one(doc! {"x": 1})
        .await
        .expect("write after the flip");
}

fn command_code(err: &mongodb::error::Error) -> Option<i32> {
    match *err.kind {
        mongodb::error::ErrorKind::Command(ref c) => Some(c.code),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_closes_the_port_and_restart_brings_the_member_back() {
    let set = start3("rs-shutdown", [2.0, 1.0, 1.0], 6).await;
    let hosts = set.hosts();
    // shutdown on the primary steps down (handing off), then closes the port.
    let mut stream = TcpStream::connect(&hosts[0]).await.expect("connect");
    stream
        .write_all(&op_msg(&doc! {"shutdown": 1, "$db": "admin"}))
        .await
        .expect("send shutdown");
    let mut buf = [0u8; 16];
    let read = tokio::time::timeout(WALL_DEADLINE, stream.read(&mut buf))
        .await
        .expect("connection closes");
    assert!(
        matches!(read, Ok(0) | Err(_)),
        "shutdown closes the connection without a reply"
    );
    assert_eq!(set.status().members[0].state, MemberState::Down);
    assert!(
        TcpStream::connect(&hosts[0]).await.is_err(),
        "the port is closed"
    );
    wait_for_primary(&set, &hosts[1]).await;

    set.restart(&hosts[0]).await.expect("restart");
    let hello = raw_command(&hosts[0], doc! {"hello": 1, "$db": "admin"}).await;
    assert!(!hello.get_bool("isWritablePrimary").expect("flag"));
    // Frozen for 60 s by the step-down, then priority 2 takes over again.
    wait_for_primary(&set, &hosts[0]).await;
    assert!(set.kill(&hosts[1]).await.is_ok());
    assert!(
        set.kill(&hosts[1]).await.is_err(),
        "killing a member twice is an error"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hello_streams_only_when_the_topology_changes() {
    let set = start3("rs-stream", [2.0, 1.0, 1.0], 7).await;
    let hosts = set.hosts();
    let first = raw_command(&hosts[1], doc! {"hello": 1, "$db": "admin"}).await;
    let tv = first
        .get_document("topologyVersion")
        .expect("topologyVersion")
        .clone();
    // Unchanged topology: held for maxAwaitTimeMS (real time), then answered.
    let started = Instant::now();
    let held = raw_command(
        &hosts[1],
        doc! {"hello": 1, "$db": "admin", "topologyVersion": tv.clone(), "maxAwaitTimeMS": 300_i64},
    )
    .await;
    assert!(
        started.elapsed() >= Duration::from_millis(290),
        "held only {:?}",
        started.elapsed()
    );
    assert_eq!(held.get_document("topologyVersion").expect("tv"), &tv);
    // A change answers at once: stepping the primary down changes every member's view.
    let waiting = tokio::spawn({
        let host = hosts[1].clone();
        let tv = tv.clone();
        async move {
            let started = Instant::now();
            let reply = raw_command(&host, doc! {"hello": 1, "$db": "admin", "topologyVersion": tv, "maxAwaitTimeMS": 10_000_i64}).await;
            (reply, started.elapsed())
        }
    });
    // Held: the member counts it, as serverStatus does on a real one.
    let awaiting = firedrill_testkit::Wait::new("the hello to be held", WALL_DEADLINE);
    awaiting
        .until_async(|| async {
            let status = raw_command(&hosts[1], doc! {"serverStatus": 1, "$db": "admin"}).await;
            let held = status
                .get_document("connections")
                .and_then(|c| c.get_i64("awaitingTopologyChanges"))
                .expect("connections.awaitingTopologyChanges");
            (held == 1).then_some(()).ok_or(held)
        })
        .await;
    raw_command(&hosts[0], doc! {"replSetStepDown": 60, "$db": "admin"}).await;
    let (reply, waited) = tokio::time::timeout(WALL_DEADLINE, waiting)
        .await
        .expect("answered")
        .expect("task");
    assert!(waited < Duration::from_secs(5), "answered after {waited:?}");
    let status = raw_command(&hosts[1], doc! {"serverStatus": 1, "$db": "admin"}).await;
    assert_eq!(
        status
            .get_document("connections")
            .and_then(|c| c.get_i64("awaitingTopologyChanges")),
        Ok(0),
        "the answered hello is no longer counted"
    );
    let counter = reply
        .get_document("topologyVersion")
        .expect("tv")
        .get_i64("counter")
        .expect("counter");
    assert!(counter > tv.get_i64("counter").expect("counter"));
}

/// Counts insert commands the driver saw fail with `code`.
fn failed_inserts(options: &mut ClientOptions, code: i32) -> Arc<Mutex<usize>> {
    let count: Arc<Mutex<usize>> = Arc::default();
    let sink = count.clone();
    options.command_event_handler = Some(EventHandler::callback(move |event: CommandEvent| {
        if let CommandEvent::Failed(failed) = event
            && failed.command_name == "insert"
            && command_code(&failed.failure) == Some(code)
        {
            *sink.lock().expect("count lock") += 1;
        }
    }));
    count
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_held_by_a_step_down_is_retried_on_the_new_primary() {
    let set = start3("rs-held", [3.0, 2.0, 1.0], 8).await;
    let hosts = set.hosts();
    let mut options = options(&set.connection_string()).await;
    let refused = failed_inserts(&mut options, 10107);
    let client = Client::with_options(options).expect("client");
    let coll = client.database("app").collection::<Document>("held");
    coll.insert_one(doc! {"_id": "before"})
        .await
        .expect("write before");

    // Frozen secondaries keep the step-down waiting for an electable one: writes are held.
    for host in &hosts[1..] {
        assert_ok(&raw_command(host, doc! {"replSetFreeze": 20, "$db": "admin"}).await);
    }
    let step_down = tokio::spawn({
        let host = hosts[0].clone();
        async move {
            raw_command(
                &host,
                doc! {"replSetStepDown": 60, "secondaryCatchUpPeriodSecs": 30, "$db": "admin"},
            )
            .await
        }
    });
    status_until(&set, "the primary holds writes while stepping down", |s| {
        s.members[0].writes_held.then_some(())
    })
    .await;
    coll.insert_one(doc! {"_id": "during"})
        .write_concern(WriteConcern::majority())
        .await
        .expect("the held write is retried on the new primary");
    let reply = step_down.await.expect("step-down task");
    assert_ok(&reply);
    assert_eq!(set.primary().as_deref(), Some(hosts[1].as_str()));
    assert!(
        *refused.lock().expect("count") >= 1,
        "the driver saw NotWritablePrimary and retried"
    );
    assert_eq!(
        all(&coll, doc! {"_id": 1}).await,
        vec![doc! {"_id": "before"}, doc! {"_id": "during"}]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_interrupted_by_a_forced_step_down_is_deduplicated_on_retry() {
    let mut slow = spec(
        "rs-forced",
        &[("us-west1", 2.0), ("us-west1", 1.0), ("us-west2", 1.0)],
        9,
    );
    // Replication slow enough that the write still waits for the majority at the step-down.
    slow.timing.replication_lag = Duration::from_secs(3);
    slow.timing.replication_jitter = Duration::ZERO;
    slow.timing.cross_region_lag = Duration::ZERO;
    let set = start(slow, 100.0).await;
    let hosts = set.hosts();
    let client = client(&set.connection_string()).await;
    let coll = client.database("app").collection::<Document>("forced");
    coll.find_one(doc! {}).await.expect("client connected");

    let write = tokio::spawn({
        let coll = coll.clone();
        async move {
            coll.insert_one(doc! {"_id": "x"})
                .write_concern(WriteConcern::majority())
                .await
        }
    });
    status_until(&set, "the write reaches the primary", |s| {
        (s.members[0].oplog_len >= 1).then_some(())
    })
    .await;
    let forced = raw_command(
        &hosts[0],
        doc! {"replSetStepDown": 60, "secondaryCatchUpPeriodSecs": 0, "force": true, "$db": "admin"},
    )
    .await;
    assert_ok(&forced);
    tokio::time::timeout(WALL_DEADLINE, write)
        .await
        .expect("the write completes")
        .expect("write task")
        .expect("PrimarySteppedDown is retried on the new primary");
    assert_ne!(set.primary().as_deref(), Some(hosts[0].as_str()));
    assert_eq!(
        set.retries_deduplicated(),
        1,
        "the retry found the replicated statement"
    );
    assert_eq!(
        coll.count_documents(doc! {"_id": "x"})
            .await
            .expect("count"),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legacy_op_query_ismaster_gets_an_op_reply() {
    let set = start3("rs-legacy", [1.0, 1.0, 0.0], 10).await;
    let primary = set.primary().expect("primary");
    let mut stream = TcpStream::connect(&primary).await.expect("connect");
    let mut body = 0i32.to_le_bytes().to_vec();
    body.extend_from_slice(b"admin.$cmd\0");
    body.extend_from_slice(&0i32.to_le_bytes());
    body.extend_from_slice(&(-1i32).to_le_bytes());
    doc! {"isMaster": 1, "helloOk": true, "client": {"driver": {"name": "raw", "version": "0"}}}
        .to_writer(&mut body)
        .expect("encode");
    let mut msg = ((16 + body.len()) as i32).to_le_bytes().to_vec();
    msg.extend_from_slice(&42i32.to_le_bytes());
    msg.extend_from_slice(&0i32.to_le_bytes());
    msg.extend_from_slice(&2004i32.to_le_bytes());
    msg.extend_from_slice(&body);
    stream.write_all(&msg).await.expect("send");
    let mut header = [0u8; 16];
    stream.read_exact(&mut header).await.expect("header");
    let field = |at: usize| {
        i32::from_le_bytes([header[at], header[at + 1], header[at + 2], header[at + 3]])
    };
    assert_eq!(field(8), 42, "responseTo");
    assert_eq!(field(12), 1, "OP_REPLY");
    let mut rest = vec![0u8; field(0) as usize - 16];
    stream.read_exact(&mut rest).await.expect("body");
    assert_eq!(
        i32::from_le_bytes([rest[16], rest[17], rest[18], rest[19]]),
        1,
        "numberReturned"
    );
    let reply = Document::from_reader(&rest[20..]).expect("reply document");
    assert!(reply.get_bool("ismaster").expect("legacy field name"));
    assert!(reply.get_bool("helloOk").expect("helloOk"));
    assert_eq!(reply.get_str("setName").expect("setName"), "rs-legacy");
    assert_eq!(
        reply.get_array("hosts").expect("hosts").len(),
        2,
        "priority-0 members are passives"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_primary_elects_a_new_one_after_the_election_timeout() {
    let set = start3("rs-kill", [3.0, 2.0, 1.0], 12).await;
    let hosts = set.hosts();
    let mut options = options(&set.connection_string()).await;
    let seen = primary_watch(&mut options);
    let client = Client::with_options(options).expect("client");
    let coll = client.database("app").collection::<Document>("k");
    coll.insert_one(doc! {"_id": 1})
        .await
        .expect("write before");

    let killed_at = set.clock().now();
    set.kill(&hosts[0]).await.expect("kill the primary");
    assert!(
        TcpStream::connect(&hosts[0]).await.is_err(),
        "the killed member's port is closed"
    );
    wait_for_primary(&set, &hosts[1]).await;
    let election = set.elections().last().cloned().expect("election");
    assert_eq!(election.reason, ElectionReason::Timeout);
    let took = election.at.saturating_since(killed_at);
    // electionTimeoutMillis (10 s) + seeded jitter (<= 1.5 s) + one election round (0.3 s).
    assert!(
        took >= Duration::from_secs(10) && took <= Duration::from_millis(11_900),
        "election took {took:?} of platform time"
    );
    let driver_saw = driver_saw_primary(&seen, &hosts[1]).await;
    let lag = driver_saw.saturating_duration_since(set.clock().instant_of(election.at));
    println!(
        "timeout election: the driver saw the new primary {lag:?} (wall) after it was elected"
    );
    assert!(lag < Duration::from_secs(2), "driver lag {lag:?}");
    coll.insert_one(doc! {"_id": 2})
        .await
        .expect("write after the failover");
    assert_eq!(coll.count_documents(doc! {}).await.expect("count"), 2);

    // The status of the survivors reports the killed member as unreachable.
    let status = client
        .database("admin")
        .run_command(doc! {"replSetGetStatus": 1})
        .await
        .expect("status");
    let first = status.get_array("members").expect("members")[0]
        .as_document()
        .expect("member")
        .clone();
    assert_eq!(first.get_f64("health").expect("health"), 0.0);
    assert_eq!(
        first.get_str("stateStr").expect("state"),
        "(not reachable/healthy)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn majority_writes_time_out_with_a_write_concern_error_when_secondaries_are_cut_off() {
    let set = start3("rs-wtimeout", [2.0, 1.0, 1.0], 13).await;
    let hosts = set.hosts();
    set.partition(&hosts[1]).expect("partition");
    set.partition(&hosts[2]).expect("partition");
    let reply = raw_command(
        &hosts[0],
        doc! {"insert": "c", "$db": "app", "documents": [{"_id": 1}], "writeConcern": {"w": "majority", "wtimeout": 2000}},
    )
    .await;
    assert_ok(&reply);
    assert_eq!(
        reply.get_i32("n").expect("n"),
        1,
        "the write is applied locally"
    );
    let wce = reply
        .get_document("writeConcernError")
        .expect("writeConcernError");
    assert_eq!(wce.get_i32("code").expect("code"), 64);
    assert_eq!(
        wce.get_str("codeName").expect("codeName"),
        "WriteConcernFailed"
    );
    assert!(
        wce.get_document("errInfo")
            .expect("errInfo")
            .get_bool("wtimeout")
            .expect("wtimeout")
    );
    // w:1 does not wait.
    let w1 = raw_command(
        &hosts[0],
        doc! {"insert": "c", "$db": "app", "documents": [{"_id": 2}], "writeConcern": {"w": 1}},
    )
    .await;
    assert!(w1.get("writeConcernError").is_none(), "{w1}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ordered_writes_stop_at_the_first_error_and_unordered_ones_report_every_error() {
    let set = start(spec("rs-ordered", &[("us-west1", 1.0)], 31), 50.0).await;
    let primary = set.primary().expect("primary");
    let run = |command: Document| raw_command(&primary, command);
    let error_indexes = |reply: &Document| -> Vec<i32> {
        reply
            .get_array("writeErrors")
            .map(|es| {
                es.iter()
                    .filter_map(Bson::as_document)
                    .filter_map(|e| e.get_i32("index").ok())
                    .collect()
            })
            .unwrap_or_default()
    };
    // insert: a duplicate _id at statement 1.
    let reply =
        run(doc! {"insert": "c", "$db": "d", "documents": [{"_id": 1}, {"_id": 1}, {"_id": 2}]})
            .await;
    assert_eq!(
        (reply.get_i32("n").ok(), error_indexes(&reply)),
        (Some(1), vec![1]),
        "{reply}"
    );
    let reply = run(doc! {"insert": "c", "$db": "d", "ordered": false, "documents": [{"_id": 3}, {"_id": 3}, {"_id": 4}, {"_id": 1}]}).await;
    assert_eq!(
        (reply.get_i32("n").ok(), error_indexes(&reply)),
        (Some(2), vec![1, 3]),
        "{reply}"
    );
    // update: an update operator the server does not implement ($bit) at statement 1.
    let bad = doc! {"q": {"_id": 3}, "u": {"$bit": {"a": {"and": 1}}}};
    let reply = run(doc! {"update": "c", "$db": "d", "updates": [{"q": {"_id": 1}, "u": {"$set": {"a": 1}}}, bad.clone(), {"q": {"_id": 4}, "u": {"$set": {"a": 1}}}]}).await;
    assert_eq!(
        (reply.get_i32("n").ok(), error_indexes(&reply)),
        (Some(1), vec![1]),
        "{reply}"
    );
    assert_eq!(reply.get_i32("nModified").ok(), Some(1), "{reply}");
    let reply = run(doc! {"update": "c", "$db": "d", "ordered": false, "updates": [bad, {"q": {"_id": 4}, "u": {"$set": {"a": 1}}}, {"q": {"_id": 9}, "u": {"$set": {"a": 1}}, "upsert": true}]}).await;
    assert_eq!(
        (reply.get_i32("n").ok(), error_indexes(&reply)),
        (Some(2), vec![0]),
        "{reply}"
    );
    let upserted = reply.get_array("upserted").expect("upserted");
    assert_eq!(upserted.len(), 1, "{reply}");
    assert_eq!(
        upserted[0]
            .as_document()
            .and_then(|u| u.get_i32("index").ok()),
        Some(2)
    );
    // delete: no errors; limit 1 removes one document, limit 0 every match.
    let reply = run(doc! {"delete": "c", "$db": "d", "deletes": [{"q": {"_id": 1}, "limit": 1}, {"q": {"_id": 404}, "limit": 1}, {"q": {"a": 1}, "limit": 0}]}).await;
    assert_eq!(
        (reply.get_i32("n").ok(), error_indexes(&reply)),
        (Some(3), vec![]),
        "{reply}"
    );
    let reply = run(doc! {"count": "c", "$db": "d"}).await;
    assert_eq!(
        reply.get_i32("n").ok(),
        Some(1),
        "left: _id 3 (2 was never inserted: the ordered insert stopped before it): {reply}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn majority_reads_see_only_what_a_majority_holds() {
    // Real time: the cut-off primary keeps its role for the 10 s election timeout, long enough
    // to read from it.
    let set = start(
        spec(
            "rs-majority-read",
            &[("us-west1", 2.0), ("us-west1", 1.0), ("us-west2", 1.0)],
            17,
        ),
        1.0,
    )
    .await;
    let hosts = set.hosts();
    let primary = &hosts[0];
    let insert = |id: i32| {
        raw_command(
            primary,
            doc! {"insert": "c", "$db": "app", "documents": [{"_id": id}], "writeConcern": {"w": "majority"}},
        )
    };
    assert_eq!(insert(1).await.get_i32("n").ok(), Some(1));
    set.partition(&hosts[1]).expect("partition");
    set.partition(&hosts[2]).expect("partition");
    let reply = raw_command(
        primary,
        doc! {"insert": "c", "$db": "app", "documents": [{"_id": 2}], "writeConcern": {"w": 1}},
    )
    .await;
    assert_eq!(reply.get_i32("n").ok(), Some(1), "{reply}");
    let ids = |reply: Document| -> Vec<i32> {
        reply
            .get_document("cursor")
            .and_then(|c| c.get_array("firstBatch"))
            .map(|b| {
                b.iter()
                    .filter_map(|d| d.as_document()?.get_i32("_id").ok())
                    .collect()
            })
            .unwrap_or_default()
    };
    let read = |level: &'static str| {
        raw_command(
            primary,
            doc! {"find": "c", "$db": "app", "readConcern": {"level": level}},
        )
    };
    assert_eq!(ids(read("local").await), vec![1, 2]);
    assert_eq!(
        ids(read("majority").await),
        vec![1],
        "the w:1 write is on the primary only"
    );
    let count = raw_command(
        primary,
        doc! {"count": "c", "$db": "app", "readConcern": {"level": "majority"}},
    )
    .await;
    assert_eq!(count.get_i32("n").ok(), Some(1), "{count}");
    set.heal(&hosts[1]).expect("heal");
    set.heal(&hosts[2]).expect("heal");
}
