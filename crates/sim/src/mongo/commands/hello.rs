//! `hello` / `isMaster` (with topologyVersion streaming) and `serverStatus`.

use super::*;
use std::sync::atomic::AtomicI64;

/// One held hello in a member's count, for as long as it is held (also when its connection
/// goes away mid-wait and the request is dropped).
struct Awaiting<'a>(&'a AtomicI64);

impl<'a> Awaiting<'a> {
    fn count(counter: &'a AtomicI64) -> Self {
        Counters::add(counter, 1);
        Self(counter)
    }
}

impl Drop for Awaiting<'_> {
    fn drop(&mut self) {
        Counters::add(self.0, -1);
    }
}

pub(super) async fn hello(
    shared: &Shared,
    m: usize,
    connection_id: i64,
    name: &str,
    cmd: &Document,
) -> Document {
    // Streaming: hold the reply until the topology changes or maxAwaitTimeMS passes.
    if let (Ok(tv), Some(max_await)) = (
        cmd.get_document("topologyVersion"),
        number(cmd.get("maxAwaitTimeMS")),
    ) {
        let process_id = tv.get_object_id("processId").ok();
        let counter = number(tv.get("counter")).map(|c| c as i64);
        // maxAwaitTimeMS is the client's real-time budget, not a modelled delay: convert it so
        // the wait lasts that long in wall time whatever the time scale.
        let wait = shared
            .clock
            .to_platform(Duration::from_millis(max_await.max(0.0) as u64));
        let deadline = shared.clock.now().plus(wait);
        let _awaiting = Awaiting::count(&shared.counters[m].awaiting_topology);
        shared
            .wait_for(deadline, |st, _| {
                let mem = &st.members[m];
                (Some(mem.process_id) != process_id || Some(mem.topology_counter) != counter)
                    .then_some(())
            })
            .await;
    }
    let now = shared.clock.now();
    let st = shared.lock();
    let mem = &st.members[m];
    let legacy = name != "hello";
    let mut d = Document::new();
    d.insert(
        if legacy {
            "ismaster"
        } else {
            "isWritablePrimary"
        },
        mem.primary,
    );
    d.insert(
        "topologyVersion",
        doc! {"processId": mem.process_id, "counter": mem.topology_counter},
    );
    let hosts: Vec<String> = st
        .config
        .members
        .iter()
        .filter(|c| c.priority > 0.0)
        .map(|c| c.host.clone())
        .collect();
    let passives: Vec<String> = st
        .config
        .members
        .iter()
        .filter(|c| c.priority <= 0.0)
        .map(|c| c.host.clone())
        .collect();
    d.insert("hosts", hosts);
    if !passives.is_empty() {
        d.insert("passives", passives);
    }
    d.insert("setName", st.name.clone());
    d.insert("setVersion", st.config.version);
    d.insert("secondary", !mem.primary);
    if let Some(p) = st.primary_for(m) {
        d.insert("primary", st.host(p));
    }
    if st.config.members[m].priority <= 0.0 {
        d.insert("passive", true);
    }
    d.insert("me", st.host(m));
    if mem.primary {
        d.insert("electionId", election_id(mem.term));
    }
    let (committed, committed_ts, committed_wall) = st.commit_point(m);
    d.insert(
        "lastWrite",
        doc! {
            "opTime": optime_doc(mem.last_ts(), mem.last_optime().term),
            "lastWriteDate": date(shared, mem.last_wall()),
            "majorityOpTime": optime_doc(committed_ts, committed.term),
            "majorityWriteDate": date(shared, committed_wall),
        },
    );
    d.insert("tags", st.config.members[m].tags.clone());
    d.insert("maxBsonObjectSize", MAX_BSON_OBJECT_SIZE);
    d.insert("maxMessageSizeBytes", MAX_MESSAGE_SIZE);
    d.insert("maxWriteBatchSize", MAX_WRITE_BATCH_SIZE);
    d.insert("localTime", date(shared, now));
    d.insert("logicalSessionTimeoutMinutes", 30);
    d.insert("connectionId", connection_id);
    d.insert("minWireVersion", 0);
    d.insert("maxWireVersion", MAX_WIRE_VERSION);
    d.insert("readOnly", false);
    if cmd.get_bool("helloOk").unwrap_or(false) {
        d.insert("helloOk", true);
    }
    d.insert("ok", 1.0);
    d
}

pub(super) fn server_status(shared: &Shared, m: usize) -> Document {
    let now = shared.clock.now();
    let st = shared.lock();
    let mem = &st.members[m];
    let mut repl = doc! {
        "setName": &st.name,
        "setVersion": st.config.version,
        "isWritablePrimary": mem.primary,
        "secondary": !mem.primary,
        "hosts": st.config.members.iter().map(|c| c.host.clone()).collect::<Vec<_>>(),
        "me": st.host(m),
    };
    if let Some(p) = st.primary_for(m) {
        repl.insert("primary", st.host(p));
    }
    let c = &shared.counters[m];
    let current = Counters::get(&c.current);
    let (resident, virtual_mb) = process_memory_mb();
    doc! {
        "host": st.host(m),
        "version": "6.0.0-firedrill",
        "process": "mongod",
        "pid": i64::from(std::process::id()),
        "uptime": now.saturating_since(mem.started).as_secs_f64(),
        "localTime": date(shared, now),
        "connections": {
            "current": i32::try_from(current).unwrap_or(i32::MAX),
            "available": i32::try_from(MAX_CONNECTIONS - current).unwrap_or(0),
            "totalCreated": Counters::get(&c.total_created),
            "active": i32::try_from(current).unwrap_or(i32::MAX),
            "awaitingTopologyChanges": Counters::get(&c.awaiting_topology),
        },
        "opcounters": {
            "insert": Counters::get(&c.insert),
            "query": Counters::get(&c.query),
            "update": Counters::get(&c.update),
            "delete": Counters::get(&c.delete),
            "getmore": Counters::get(&c.getmore),
            "command": Counters::get(&c.command),
        },
        "opcountersRepl": {"insert": 0_i64, "query": 0_i64, "update": 0_i64, "delete": 0_i64, "getmore": 0_i64, "command": 0_i64},
        "mem": {"bits": 64, "resident": resident, "virtual": virtual_mb, "supported": true},
        "repl": repl,
        "ok": 1.0,
    }
}

/// How many connections a member accepts (`maxIncomingConnections`' usual figure).
const MAX_CONNECTIONS: i64 = 51_200;

/// This process's resident and virtual memory in MiB, from /proc (0 where there is none): the
/// members live in firedrill's process, so that is what they use.
fn process_memory_mb() -> (i32, i32) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| -> i32 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|kb| kb.parse::<i64>().ok())
            .map_or(0, |kb| i32::try_from(kb / 1024).unwrap_or(i32::MAX))
    };
    (field("VmRSS:"), field("VmSize:"))
}
