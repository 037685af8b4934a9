//! pymongo against the embedded replica set: it discovers the set through the legacy
//! OP_QUERY handshake, then inserts and reads over OP_MSG.
//!
//! Needs python3 with pymongo: `pip install pymongo`.

use std::time::Duration;

use firedrill_core::clock::Clock;
use firedrill_sim::mongo::{MemberSpec, ReplicaSet, ReplicaSetSpec, Timing};

const SCRIPT: &str = r#"
import json, os, sys
from pymongo import MongoClient, WriteConcern

uri = os.environ["FIREDRILL_MONGO_URI"]
client = MongoClient(uri, serverSelectionTimeoutMS=10000, connectTimeoutMS=5000)
coll = client.get_database("app").get_collection("py", write_concern=WriteConcern(w="majority"))
coll.insert_one({"_id": 1, "seq": 1})
coll.insert_many([{"_id": i, "seq": i} for i in range(2, 6)])
coll.update_one({"_id": 3}, {"$set": {"seen": True}})
docs = list(coll.find({"seq": {"$gt": 1}}).sort("seq", -1).limit(3))
status = client.admin.command("replSetGetStatus")
out = {
    "primary": "%s:%d" % client.primary,
    "secondaries": sorted("%s:%d" % s for s in client.secondaries),
    "set": status["set"],
    "seqs": [d["seq"] for d in docs],
    "count": coll.count_documents({}),
    "seen": coll.find_one({"_id": 3}).get("seen"),
}
print(json.dumps(out))
client.close()
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pymongo_discovers_the_set_inserts_and_reads() {
    let probe = tokio::process::Command::new("python3")
        .args(["-c", "import pymongo; print(pymongo.version)"])
        .output()
        .await
        .expect("python3 must be installed to run this test (hint: apt-get install python3)");
    assert!(
        probe.status.success(),
        "pymongo is missing (hint: pip install pymongo): {}",
        String::from_utf8_lossy(&probe.stderr)
    );

    let spec = ReplicaSetSpec {
        name: "rs-py".into(),
        members: vec![
            MemberSpec::new("us-west1", 2.0),
            MemberSpec::new("us-west1", 1.0),
            MemberSpec::new("us-west2", 1.0),
        ],
        seed: 11,
        timing: Timing::default(),
    };
    let set = ReplicaSet::start(spec, Clock::scaled(100.0).expect("scale"))
        .await
        .expect("replica set starts");
    let hosts = set.hosts();
    let mut child = tokio::process::Command::new("python3");
    child
        .args(["-c", SCRIPT])
        .env("FIREDRILL_MONGO_URI", set.connection_string())
        .kill_on_drop(true);
    let output = tokio::time::timeout(Duration::from_secs(60), child.output())
        .await
        .expect("the pymongo script finishes within 60 s")
        .expect("python3 runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "pymongo script failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let result: serde_json::Value =
        serde_json::from_str(stdout.trim()).expect("the script prints JSON");
    assert_eq!(result["primary"], hosts[0]);
    let mut secondaries = vec![hosts[1].clone(), hosts[2].clone()];
    secondaries.sort();
    assert_eq!(result["secondaries"], serde_json::json!(secondaries));
    assert_eq!(result["set"], "rs-py");
    assert_eq!(result["seqs"], serde_json::json!([5, 4, 3]));
    assert_eq!(result["count"], 5);
    assert_eq!(result["seen"], true);
}
