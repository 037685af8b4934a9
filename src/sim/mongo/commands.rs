//! The commands a member answers, shaped like the real server's replies.

use std::collections::VecDeque;
use std::time::Duration;

use bson::oid::ObjectId;
use bson::{Bson, DateTime, Document, doc};

use super::engine::{MemberConfig, Op, OpTime, SetState, StmtResult, TxnStmt};
use super::error::CommandError;
use super::query;
use super::server::{Cursor, Shared};
use super::wire::{MAX_MESSAGE_SIZE, RequestKind};
use crate::drill::clock::PlatformTime;

/// What the connection does after a command.
pub(crate) enum Outcome {
    /// Send this reply.
    Reply(Document),
    /// Close the connection without replying (shutdown).
    Close,
}

/// The wire version of MongoDB 6.0.
const MAX_WIRE_VERSION: i32 = 17;
const MAX_BSON_OBJECT_SIZE: i32 = 16 * 1024 * 1024;
const MAX_WRITE_BATCH_SIZE: i32 = 100_000;
const DEFAULT_BATCH_SIZE: usize = 101;
/// The longest any write-concern or step-down wait may last (platform time), so no request
/// waits forever when a client asked for no timeout.
const MAX_WAIT: Duration = Duration::from_secs(600);

/// Runs one command on member `m` and shapes the reply.
pub(crate) async fn run(
    shared: &Shared,
    m: usize,
    connection_id: i64,
    command: Document,
    kind: RequestKind,
) -> Outcome {
    let name = command.keys().next().cloned().unwrap_or_default();
    let result = dispatch(shared, m, connection_id, &name, &command, kind).await;
    match result {
        Ok(Some(reply)) => Outcome::Reply(reply),
        Ok(None) => Outcome::Close,
        Err(e) => {
            tracing::debug!(member = m, command = %name, error = %e, "command failed");
            Outcome::Reply(e.to_reply())
        }
    }
}

async fn dispatch(
    shared: &Shared,
    m: usize,
    connection_id: i64,
    name: &str,
    cmd: &Document,
    kind: RequestKind,
) -> Result<Option<Document>, CommandError> {
    let admin_only = name.starts_with("replSet") || name == "shutdown";
    if admin_only && cmd.get_str("$db").unwrap_or("admin") != "admin" {
        return Err(CommandError::new(
            13,
            "Unauthorized",
            format!("{name} may only be run against the admin database."),
        ));
    }
    let reply = match name {
        "hello" | "isMaster" | "ismaster" => hello(shared, m, connection_id, name, cmd).await,
        "ping" => doc! {"ok": 1.0},
        "buildInfo" | "buildinfo" => doc! {
            "version": "6.0.0-firedrill",
            "gitVersion": "firedrill-embedded",
            "versionArray": [6, 0, 0, 0],
            "bits": 64,
            "maxBsonObjectSize": MAX_BSON_OBJECT_SIZE,
            "storageEngines": ["firedrill-memory"],
            "ok": 1.0,
        },
        "serverStatus" => server_status(shared, m),
        "connectionStatus" => doc! {
            "authInfo": {"authenticatedUsers": [], "authenticatedUserRoles": []},
            "ok": 1.0,
        },
        "getParameter" => doc! {"featureCompatibilityVersion": {"version": "6.0"}, "ok": 1.0},
        "endSessions" | "createIndexes" | "create" | "getLastError" | "saslStart" | "logout" => {
            doc! {"ok": 1.0}
        }
        "insert" => write(shared, m, cmd, WriteKind::Insert).await?,
        "update" => write(shared, m, cmd, WriteKind::Update).await?,
        "delete" => write(shared, m, cmd, WriteKind::Delete).await?,
        "drop" => write(shared, m, cmd, WriteKind::Drop).await?,
        "find" => find(shared, m, cmd, kind)?,
        "aggregate" => aggregate(shared, m, cmd, kind)?,
        "count" => count(shared, m, cmd, kind)?,
        "getMore" => get_more(shared, cmd)?,
        "killCursors" => kill_cursors(shared, cmd),
        "listCollections" => list_collections(shared, m, cmd),
        "listDatabases" => list_databases(shared, m),
        "replSetGetStatus" => repl_set_get_status(shared, m),
        "replSetGetConfig" => repl_set_get_config(shared),
        "replSetStepDown" => repl_set_step_down(shared, m, cmd).await?,
        "replSetFreeze" => repl_set_freeze(shared, m, cmd)?,
        "replSetReconfig" => repl_set_reconfig(shared, m, cmd)?,
        "shutdown" => return shutdown(shared, m, cmd).await.map(|()| None),
        other => {
            return Err(CommandError::new(
                59,
                "CommandNotFound",
                format!("no such command: '{other}'"),
            ));
        }
    };
    Ok(Some(reply))
}

fn number(v: Option<&Bson>) -> Option<f64> {
    match v? {
        Bson::Int32(i) => Some(f64::from(*i)),
        Bson::Int64(i) => Some(*i as f64),
        Bson::Double(d) => Some(*d),
        Bson::Boolean(b) => Some(if *b { 1.0 } else { 0.0 }),
        _ => None,
    }
}

fn secs(v: Option<&Bson>, default: f64) -> Duration {
    Duration::from_secs_f64(number(v).unwrap_or(default).max(0.0))
}

fn optime_doc(ts: bson::Timestamp, term: i64) -> Document {
    doc! {"ts": ts, "t": term}
}

/// The electionId of a term, as the server builds it (OID with max timestamp, then the term).
fn election_id(term: i64) -> ObjectId {
    let mut bytes = [0u8; 12];
    bytes[..4].copy_from_slice(&0x7fff_ffff_u32.to_be_bytes());
    bytes[4..].copy_from_slice(&term.to_be_bytes());
    ObjectId::from_bytes(bytes)
}

fn date(shared: &Shared, t: PlatformTime) -> DateTime {
    DateTime::from_system_time(shared.clock.wall(t))
}

// ---------------------------------------------------------------------------------------------
// hello

async fn hello(
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

fn server_status(shared: &Shared, m: usize) -> Document {
    let now = shared.clock.now();
    let st = shared.lock();
    let mem = &st.members[m];
    let mut repl = doc! {
        "setName": &st.name,
        "setVersion": st.config.version,
        "isWritablePrimary": mem.primary,
        "secondary": !mem.primary,
        "me": st.host(m),
    };
    if let Some(p) = st.primary_for(m) {
        repl.insert("primary", st.host(p));
    }
    doc! {
        "host": st.host(m),
        "version": "6.0.0-firedrill",
        "process": "mongod",
        "uptime": now.saturating_since(mem.started).as_secs_f64(),
        "localTime": date(shared, now),
        "repl": repl,
        "ok": 1.0,
    }
}

// ---------------------------------------------------------------------------------------------
// reads

fn namespace(cmd: &Document, name: &str) -> Result<String, CommandError> {
    let db = cmd.get_str("$db").unwrap_or("test");
    match cmd.get(name) {
        Some(Bson::String(c)) => Ok(format!("{db}.{c}")),
        _ => Err(CommandError::new(
            73,
            "InvalidNamespace",
            format!("collection name for '{name}' must be a string"),
        )),
    }
}

/// Reads go to the primary unless the client's read preference allows a secondary.
fn check_readable(
    st: &SetState,
    m: usize,
    cmd: &Document,
    kind: RequestKind,
) -> Result<(), CommandError> {
    if st.members[m].primary || kind == RequestKind::Query {
        return Ok(());
    }
    let mode = cmd
        .get_document("$readPreference")
        .ok()
        .and_then(|rp| rp.get_str("mode").ok())
        .unwrap_or("primary");
    if mode == "primary" {
        Err(CommandError::not_primary_no_secondary_ok())
    } else {
        Ok(())
    }
}

fn filtered(
    st: &SetState,
    m: usize,
    ns: &str,
    filter: &Document,
) -> Result<Vec<Document>, CommandError> {
    let Some(coll) = st.members[m].store.collections.get(ns) else {
        return Ok(Vec::new());
    };
    // Equality on _id alone (updates and deletes by key) is a lookup, not a scan.
    if filter.len() == 1
        && let Some(id) = filter.get("_id")
        && !matches!(id, Bson::Document(d) if d.keys().any(|k| k.starts_with('$')))
    {
        return Ok(coll.get(id).cloned().into_iter().collect());
    }
    let mut out = Vec::new();
    for d in coll.iter() {
        if query::matches(d, filter)? {
            out.push(d.clone());
        }
    }
    Ok(out)
}

fn cursor_reply(
    shared: &Shared,
    m: usize,
    ns: String,
    mut docs: VecDeque<Document>,
    batch: usize,
    single: bool,
) -> Document {
    let first: Vec<Document> = docs.drain(..batch.min(docs.len())).collect();
    let id = if docs.is_empty() || single {
        0
    } else {
        shared.open_cursor(Cursor {
            member: m,
            ns: ns.clone(),
            docs,
        })
    };
    doc! {"cursor": {"firstBatch": first, "id": id, "ns": ns}, "ok": 1.0}
}

fn find(
    shared: &Shared,
    m: usize,
    cmd: &Document,
    kind: RequestKind,
) -> Result<Document, CommandError> {
    let ns = namespace(cmd, "find")?;
    let filter = cmd.get_document("filter").cloned().unwrap_or_default();
    let mut docs = {
        let st = shared.lock();
        check_readable(&st, m, cmd, kind)?;
        filtered(&st, m, &ns, &filter)?
    };
    if let Ok(s) = cmd.get_document("sort") {
        query::sort(&mut docs, s);
    }
    let skip = number(cmd.get("skip")).unwrap_or(0.0).max(0.0) as usize;
    let limit = number(cmd.get("limit")).unwrap_or(0.0);
    let mut single = cmd.get_bool("singleBatch").unwrap_or(false);
    if limit < 0.0 {
        single = true;
    }
    let limit = if limit == 0.0 {
        usize::MAX
    } else {
        limit.abs() as usize
    };
    let projection = cmd.get_document("projection").cloned().unwrap_or_default();
    let docs: VecDeque<Document> = docs
        .into_iter()
        .skip(skip)
        .take(limit)
        .map(|d| query::project(&d, &projection))
        .collect();
    let batch = number(cmd.get("batchSize")).map_or(DEFAULT_BATCH_SIZE, |b| b.max(0.0) as usize);
    Ok(cursor_reply(shared, m, ns, docs, batch, single))
}

fn aggregate(
    shared: &Shared,
    m: usize,
    cmd: &Document,
    kind: RequestKind,
) -> Result<Document, CommandError> {
    let ns = namespace(cmd, "aggregate")?;
    let pipeline = cmd.get_array("pipeline").cloned().unwrap_or_default();
    let docs = {
        let st = shared.lock();
        check_readable(&st, m, cmd, kind)?;
        filtered(&st, m, &ns, &Document::new())?
    };
    let out = query::aggregate(docs, &pipeline)?;
    let batch = cmd
        .get_document("cursor")
        .ok()
        .and_then(|c| number(c.get("batchSize")))
        .map_or(DEFAULT_BATCH_SIZE, |b| b.max(0.0) as usize);
    Ok(cursor_reply(shared, m, ns, out.into(), batch, false))
}

fn count(
    shared: &Shared,
    m: usize,
    cmd: &Document,
    kind: RequestKind,
) -> Result<Document, CommandError> {
    let ns = namespace(cmd, "count")?;
    let filter = cmd.get_document("query").cloned().unwrap_or_default();
    let st = shared.lock();
    check_readable(&st, m, cmd, kind)?;
    let n = filtered(&st, m, &ns, &filter)?.len();
    let skip = number(cmd.get("skip")).unwrap_or(0.0).max(0.0) as usize;
    let limit = number(cmd.get("limit")).unwrap_or(0.0).abs() as usize;
    let mut n = n.saturating_sub(skip);
    if limit > 0 {
        n = n.min(limit);
    }
    Ok(doc! {"n": i64::try_from(n).unwrap_or(i64::MAX), "ok": 1.0})
}

fn get_more(shared: &Shared, cmd: &Document) -> Result<Document, CommandError> {
    let id = match cmd.get("getMore") {
        Some(Bson::Int64(i)) => *i,
        Some(Bson::Int32(i)) => i64::from(*i),
        _ => {
            return Err(CommandError::type_mismatch(
                "getMore cursor id must be a long".to_owned(),
            ));
        }
    };
    let batch = number(cmd.get("batchSize")).map_or(usize::MAX, |b| {
        if b <= 0.0 { usize::MAX } else { b as usize }
    });
    let (ns, docs, exhausted) = shared.take_from_cursor(id, batch).ok_or_else(|| {
        CommandError::new(43, "CursorNotFound", format!("cursor id {id} not found"))
    })?;
    Ok(
        doc! {"cursor": {"nextBatch": docs, "id": if exhausted { 0_i64 } else { id }, "ns": ns}, "ok": 1.0},
    )
}

fn kill_cursors(shared: &Shared, cmd: &Document) -> Document {
    let ids: Vec<i64> = cmd
        .get_array("cursors")
        .map(|a| {
            a.iter()
                .filter_map(|b| number(Some(b)).map(|n| n as i64))
                .collect()
        })
        .unwrap_or_default();
    let (killed, missing): (Vec<i64>, Vec<i64>) =
        ids.into_iter().partition(|id| shared.close_cursor(*id));
    doc! {"cursorsKilled": killed, "cursorsNotFound": missing, "cursorsAlive": [], "cursorsUnknown": [], "ok": 1.0}
}

fn list_collections(shared: &Shared, m: usize, cmd: &Document) -> Document {
    let db = cmd.get_str("$db").unwrap_or("test").to_owned();
    let prefix = format!("{db}.");
    let st = shared.lock();
    let mut names: Vec<String> = st.members[m]
        .store
        .collections
        .keys()
        .filter_map(|ns| ns.strip_prefix(&prefix).map(str::to_owned))
        .collect();
    names.sort();
    let batch: Vec<Document> = names
        .into_iter()
        .map(|name| doc! {"name": name, "type": "collection", "options": {}, "info": {"readOnly": false}})
        .collect();
    doc! {"cursor": {"firstBatch": batch, "id": 0_i64, "ns": format!("{db}.$cmd.listCollections")}, "ok": 1.0}
}

fn list_databases(shared: &Shared, m: usize) -> Document {
    let st = shared.lock();
    let mut dbs: Vec<String> = st.members[m]
        .store
        .collections
        .keys()
        .filter_map(|ns| ns.split('.').next().map(str::to_owned))
        .collect();
    dbs.sort();
    dbs.dedup();
    let list: Vec<Document> = dbs
        .into_iter()
        .map(|name| doc! {"name": name, "sizeOnDisk": 0_i64, "empty": false})
        .collect();
    doc! {"databases": list, "totalSize": 0_i64, "ok": 1.0}
}

// ---------------------------------------------------------------------------------------------
// writes

#[derive(Clone, Copy, PartialEq, Eq)]
enum WriteKind {
    Insert,
    Update,
    Delete,
    Drop,
}

enum WriteConcern {
    Unacknowledged,
    Nodes(usize),
    Majority,
}

fn write_concern(cmd: &Document) -> (WriteConcern, Option<Duration>, Document) {
    let wc = cmd
        .get_document("writeConcern")
        .cloned()
        .unwrap_or_default();
    let w = match wc.get("w") {
        Some(Bson::String(s)) if s == "majority" => WriteConcern::Majority,
        Some(v) => match number(Some(v)) {
            Some(n) if n <= 0.0 => WriteConcern::Unacknowledged,
            Some(n) => WriteConcern::Nodes(n as usize),
            None => WriteConcern::Majority,
        },
        // MongoDB 5.0+ defaults to w:majority.
        None => WriteConcern::Majority,
    };
    let timeout = number(wc.get("wtimeout"))
        .filter(|t| *t > 0.0)
        .map(|t| Duration::from_millis(t as u64));
    (w, timeout, wc)
}

struct Session {
    lsid: Vec<u8>,
    txn_number: i64,
}

fn session(cmd: &Document) -> Option<Session> {
    let lsid = cmd.get_document("lsid").ok()?;
    let txn_number = match cmd.get("txnNumber")? {
        Bson::Int64(i) => *i,
        Bson::Int32(i) => i64::from(*i),
        _ => return None,
    };
    Some(Session {
        lsid: bson::to_vec(lsid).unwrap_or_default(),
        txn_number,
    })
}

#[derive(Default)]
struct WriteOutcome {
    n: i64,
    n_modified: i64,
    upserted: Vec<Document>,
    write_errors: Vec<Document>,
    last: Option<OpTime>,
}

async fn write(
    shared: &Shared,
    m: usize,
    cmd: &Document,
    kind: WriteKind,
) -> Result<Document, CommandError> {
    let name = match kind {
        WriteKind::Insert => "insert",
        WriteKind::Update => "update",
        WriteKind::Delete => "delete",
        WriteKind::Drop => "drop",
    };
    let ns = namespace(cmd, name)?;
    let session = session(cmd);
    // Writes are held while the member steps down, then fail over like the real server's.
    let deadline = shared.clock.now().plus(MAX_WAIT);
    shared
        .wait_for(deadline, |st, _| {
            (!st.members[m].stepping_down).then_some(())
        })
        .await;

    let outcome: WriteOutcome = {
        let now = shared.clock.now();
        let mut st = shared.lock();
        if !st.members[m].primary || st.members[m].stepping_down {
            let e = CommandError::not_writable_primary();
            return Err(if session.is_some() {
                e.with_label("RetryableWriteError")
            } else {
                e
            });
        }
        match kind {
            WriteKind::Insert => insert(&mut st, m, now, &ns, cmd, session.as_ref())?,
            WriteKind::Update => update(&mut st, m, now, &ns, cmd, session.as_ref())?,
            WriteKind::Delete => delete(&mut st, m, now, &ns, cmd, session.as_ref())?,
            WriteKind::Drop => {
                let optime = st.append(m, now, vec![Op::DropCollection { ns: ns.clone() }], None);
                WriteOutcome {
                    last: Some(optime),
                    ..WriteOutcome::default()
                }
            }
        }
    };
    shared.notify();

    let mut reply = match kind {
        WriteKind::Drop => doc! {"ns": &ns, "nIndexesWas": 1},
        _ => doc! {"n": i32::try_from(outcome.n).unwrap_or(i32::MAX)},
    };
    if kind == WriteKind::Update {
        reply.insert(
            "nModified",
            i32::try_from(outcome.n_modified).unwrap_or(i32::MAX),
        );
        if !outcome.upserted.is_empty() {
            reply.insert("upserted", outcome.upserted);
        }
    }
    if !outcome.write_errors.is_empty() {
        reply.insert("writeErrors", outcome.write_errors);
    }
    // A retried statement waits for the member's latest write, like the real server does.
    let target = outcome.last.or_else(|| {
        let st = shared.lock();
        Some(st.members[m].last_optime())
    });
    if let Some(target) = target
        && let Some((wce, labels)) = wait_for_write_concern(shared, m, target, cmd).await
    {
        reply.insert("writeConcernError", wce);
        if !labels.is_empty() {
            reply.insert("errorLabels", labels);
        }
    }
    reply.insert("ok", 1.0);
    Ok(reply)
}

async fn wait_for_write_concern(
    shared: &Shared,
    m: usize,
    target: OpTime,
    cmd: &Document,
) -> Option<(Document, Vec<&'static str>)> {
    let (w, timeout, wc) = write_concern(cmd);
    let needed = match w {
        WriteConcern::Unacknowledged | WriteConcern::Nodes(0 | 1) => return None,
        WriteConcern::Nodes(n) => Some(n),
        WriteConcern::Majority => None,
    };
    let deadline = shared
        .clock
        .now()
        .plus(timeout.unwrap_or(MAX_WAIT).min(MAX_WAIT));
    let result = shared
        .wait_for(deadline, |st, _| match needed {
            None => match st.is_committed(m, target) {
                Ok(true) => Some(Ok(())),
                Ok(false) => None,
                Err(e) => Some(Err(e)),
            },
            Some(n) => {
                let have = (0..st.members.len())
                    .filter(|&o| st.connected(m, o) && st.members[o].has(target))
                    .count();
                (have >= n).then_some(Ok(()))
            }
        })
        .await;
    match result {
        Some(Ok(())) => None,
        Some(Err(e)) => Some((
            doc! {"code": e.code, "codeName": e.code_name, "errmsg": e.errmsg},
            e.labels,
        )),
        None => Some((
            doc! {
                "code": 64,
                "codeName": "WriteConcernFailed",
                "errmsg": "waiting for replication timed out",
                "errInfo": {"wtimeout": true, "writeConcern": wc},
            },
            Vec::new(),
        )),
    }
}

/// A previously executed statement of the same retryable write, if any.
fn retried(
    st: &mut SetState,
    m: usize,
    session: Option<&Session>,
    stmt: i32,
) -> Result<Option<StmtResult>, CommandError> {
    let Some(s) = session else { return Ok(None) };
    let Some(rec) = st.members[m].store.txns.get(&s.lsid) else {
        return Ok(None);
    };
    if rec.txn_number > s.txn_number {
        return Err(CommandError::new(
            225,
            "TransactionTooOld",
            format!(
                "Retryable write with txnNumber {} is prohibited on session because a newer retryable write with txnNumber {} has already started on this session.",
                s.txn_number, rec.txn_number
            ),
        ));
    }
    if rec.txn_number == s.txn_number
        && let Some(r) = rec.stmts.get(&stmt)
    {
        let r = r.clone();
        st.deduplicated += 1;
        return Ok(Some(r));
    }
    Ok(None)
}

fn txn_tag(session: Option<&Session>, stmt: i32, result: StmtResult) -> Option<TxnStmt> {
    session.map(|s| TxnStmt {
        lsid: s.lsid.clone(),
        txn_number: s.txn_number,
        stmt,
        result,
    })
}

fn write_error(index: usize, e: &CommandError) -> Document {
    doc! {"index": i32::try_from(index).unwrap_or(i32::MAX), "code": e.code, "codeName": e.code_name, "errmsg": &e.errmsg}
}

fn statements<'a>(cmd: &'a Document, field: &str) -> Vec<&'a Document> {
    cmd.get_array(field)
        .map(|a| a.iter().filter_map(Bson::as_document).collect())
        .unwrap_or_default()
}

fn insert(
    st: &mut SetState,
    m: usize,
    now: PlatformTime,
    ns: &str,
    cmd: &Document,
    session: Option<&Session>,
) -> Result<WriteOutcome, CommandError> {
    let ordered = cmd.get_bool("ordered").unwrap_or(true);
    let mut out = WriteOutcome::default();
    for (i, doc) in statements(cmd, "documents").into_iter().enumerate() {
        let stmt = i32::try_from(i).unwrap_or(i32::MAX);
        if let Some(prev) = retried(st, m, session, stmt)? {
            out.n += prev.n;
            continue;
        }
        let mut doc = doc.clone();
        if !doc.contains_key("_id") {
            let mut with_id = doc! {"_id": ObjectId::new()};
            with_id.extend(doc);
            doc = with_id;
        }
        let id = doc.get("_id").cloned().unwrap_or(Bson::Null);
        let exists = st.members[m]
            .store
            .collections
            .get(ns)
            .and_then(|c| c.get(&id))
            .is_some();
        if exists {
            let e = CommandError::new(
                11000,
                "DuplicateKey",
                format!(
                    "E11000 duplicate key error collection: {ns} index: _id_ dup key: {{ _id: {id} }}"
                ),
            );
            out.write_errors.push(write_error(i, &e));
            if ordered {
                break;
            }
            continue;
        }
        let result = StmtResult {
            n: 1,
            ..StmtResult::default()
        };
        let optime = st.append(
            m,
            now,
            vec![Op::Insert {
                ns: ns.to_owned(),
                doc,
            }],
            txn_tag(session, stmt, result),
        );
        out.last = Some(optime);
        out.n += 1;
    }
    Ok(out)
}

fn update(
    st: &mut SetState,
    m: usize,
    now: PlatformTime,
    ns: &str,
    cmd: &Document,
    session: Option<&Session>,
) -> Result<WriteOutcome, CommandError> {
    let ordered = cmd.get_bool("ordered").unwrap_or(true);
    let mut out = WriteOutcome::default();
    for (i, spec) in statements(cmd, "updates").into_iter().enumerate() {
        let stmt = i32::try_from(i).unwrap_or(i32::MAX);
        let result = match retried(st, m, session, stmt)? {
            Some(prev) => Ok(prev),
            None => update_one(st, m, now, ns, spec, session, stmt),
        };
        match result {
            Ok(r) => {
                out.n += r.n;
                out.n_modified += r.n_modified;
                if let Some(id) = r.upserted {
                    out.upserted.push(doc! {"index": stmt, "_id": id});
                }
                out.last = Some(st.members[m].last_optime());
            }
            Err(e) => {
                out.write_errors.push(write_error(i, &e));
                if ordered {
                    break;
                }
            }
        }
    }
    Ok(out)
}

fn update_one(
    st: &mut SetState,
    m: usize,
    now: PlatformTime,
    ns: &str,
    spec: &Document,
    session: Option<&Session>,
    stmt: i32,
) -> Result<StmtResult, CommandError> {
    let filter = spec.get_document("q").cloned().unwrap_or_default();
    let u = match spec.get("u") {
        Some(Bson::Document(u)) => u.clone(),
        Some(Bson::Array(_)) => {
            return Err(CommandError::bad_value("pipeline-style updates are not implemented by the embedded server (hint: use update operators)".to_owned()));
        }
        _ => {
            return Err(CommandError::failed_to_parse(
                "update statement needs 'u'".to_owned(),
            ));
        }
    };
    let multi = spec.get_bool("multi").unwrap_or(false);
    let upsert = spec.get_bool("upsert").unwrap_or(false);
    if multi && !query::is_operator_update(&u) {
        return Err(CommandError::failed_to_parse(
            "multi update is not supported for replacement-style update".to_owned(),
        ));
    }
    let mut matched = filtered(st, m, ns, &filter)?;
    if !multi {
        matched.truncate(1);
    }
    let mut ops = Vec::new();
    let mut result = StmtResult {
        n: i64::try_from(matched.len()).unwrap_or(i64::MAX),
        ..StmtResult::default()
    };
    for old in &matched {
        let new = query::apply_update(old, &u, false)?;
        if &new != old {
            let id = old.get("_id").cloned().unwrap_or(Bson::Null);
            ops.push(Op::Update {
                ns: ns.to_owned(),
                id,
                doc: new,
            });
            result.n_modified += 1;
        }
    }
    if matched.is_empty() && upsert {
        let mut doc = query::upsert_seed(&filter, &u)?;
        if !doc.contains_key("_id") {
            let mut with_id = doc! {"_id": ObjectId::new()};
            with_id.extend(doc);
            doc = with_id;
        }
        let id = doc.get("_id").cloned().unwrap_or(Bson::Null);
        result.n = 1;
        result.upserted = Some(id);
        ops.push(Op::Insert {
            ns: ns.to_owned(),
            doc,
        });
    }
    if !ops.is_empty() || session.is_some() {
        st.append(m, now, ops, txn_tag(session, stmt, result.clone()));
    }
    Ok(result)
}

fn delete(
    st: &mut SetState,
    m: usize,
    now: PlatformTime,
    ns: &str,
    cmd: &Document,
    session: Option<&Session>,
) -> Result<WriteOutcome, CommandError> {
    let ordered = cmd.get_bool("ordered").unwrap_or(true);
    let mut out = WriteOutcome::default();
    for (i, spec) in statements(cmd, "deletes").into_iter().enumerate() {
        let stmt = i32::try_from(i).unwrap_or(i32::MAX);
        if let Some(prev) = retried(st, m, session, stmt)? {
            out.n += prev.n;
            continue;
        }
        let filter = spec.get_document("q").cloned().unwrap_or_default();
        let limit = number(spec.get("limit")).unwrap_or(0.0);
        let mut matched = match filtered(st, m, ns, &filter) {
            Ok(d) => d,
            Err(e) => {
                out.write_errors.push(write_error(i, &e));
                if ordered {
                    break;
                }
                continue;
            }
        };
        if limit >= 1.0 {
            matched.truncate(1);
        }
        let ops: Vec<Op> = matched
            .iter()
            .map(|d| Op::Delete {
                ns: ns.to_owned(),
                id: d.get("_id").cloned().unwrap_or(Bson::Null),
            })
            .collect();
        let result = StmtResult {
            n: i64::try_from(ops.len()).unwrap_or(i64::MAX),
            ..StmtResult::default()
        };
        out.n += result.n;
        if !ops.is_empty() || session.is_some() {
            out.last = Some(st.append(m, now, ops, txn_tag(session, stmt, result)));
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// replica-set administration

fn repl_set_get_status(shared: &Shared, m: usize) -> Document {
    let now = shared.clock.now();
    let st = shared.lock();
    let me = &st.members[m];
    let (committed, committed_ts, committed_wall) = st.commit_point(m);
    let primary = st.primary_for(m);
    let members: Vec<Document> = (0..st.members.len())
        .map(|o| {
            let mem = &st.members[o];
            let cfg = &st.config.members[o];
            let mut d = doc! {"_id": cfg.id, "name": &cfg.host};
            if st.connected(m, o) {
                let state = mem.state();
                d.insert("health", 1.0);
                d.insert("state", state.code());
                d.insert("stateStr", state.name());
                d.insert(
                    "uptime",
                    i64::try_from(now.saturating_since(mem.started).as_secs()).unwrap_or(0),
                );
                d.insert("optime", optime_doc(mem.last_ts(), mem.last_optime().term));
                d.insert("optimeDate", date(shared, mem.last_wall()));
                d.insert("lastAppliedWallTime", date(shared, mem.last_wall()));
                let sync = if mem.primary {
                    None
                } else {
                    primary.map(|p| st.host(p).to_owned())
                };
                d.insert("syncSourceHost", sync.unwrap_or_default());
                if let (true, Some((at, ts))) = (mem.primary, mem.election_time) {
                    d.insert("electionTime", ts);
                    d.insert("electionDate", date(shared, at));
                }
            } else {
                d.insert("health", 0.0);
                d.insert("state", 8);
                d.insert("stateStr", "(not reachable/healthy)");
                d.insert("uptime", 0);
                d.insert(
                    "optime",
                    doc! {"ts": bson::Timestamp { time: 0, increment: 0 }, "t": -1_i64},
                );
                d.insert(
                    "lastHeartbeatMessage",
                    "Error connecting: Connection refused",
                );
            }
            d.insert("configVersion", st.config.version);
            d.insert("configTerm", me.term);
            if o == m {
                d.insert("self", true);
            }
            d
        })
        .collect();
    let voters = i32::try_from(st.voters()).unwrap_or(0);
    let majority = i32::try_from(st.majority()).unwrap_or(0);
    doc! {
        "set": &st.name,
        "date": date(shared, now),
        "myState": me.state().code(),
        "term": me.term,
        "syncSourceHost": if me.primary { String::new() } else { primary.map(|p| st.host(p).to_owned()).unwrap_or_default() },
        "heartbeatIntervalMillis": 2000_i64,
        "majorityVoteCount": majority,
        "writeMajorityCount": majority,
        "votingMembersCount": voters,
        "writableVotingMembersCount": voters,
        "optimes": {
            "lastCommittedOpTime": optime_doc(committed_ts, committed.term),
            "lastCommittedWallTime": date(shared, committed_wall),
            "appliedOpTime": optime_doc(me.last_ts(), me.last_optime().term),
            "durableOpTime": optime_doc(me.last_ts(), me.last_optime().term),
            "lastAppliedWallTime": date(shared, me.last_wall()),
        },
        "members": members,
        "ok": 1.0,
    }
}

fn repl_set_get_config(shared: &Shared) -> Document {
    let st = shared.lock();
    let term = st.members.iter().map(|m| m.term).max().unwrap_or(0);
    let members: Vec<Document> = st
        .config
        .members
        .iter()
        .map(|c| {
            doc! {
                "_id": c.id,
                "host": &c.host,
                "arbiterOnly": false,
                "buildIndexes": true,
                "hidden": false,
                "priority": c.priority,
                "tags": c.tags.clone(),
                "secondaryDelaySecs": 0_i64,
                "votes": c.votes,
            }
        })
        .collect();
    let timeout_ms = i64::try_from(st.timing.election_timeout.as_millis()).unwrap_or(i64::MAX);
    doc! {
        "config": {
            "_id": &st.name,
            "version": st.config.version,
            "term": term,
            "protocolVersion": 1_i64,
            "writeConcernMajorityJournalDefault": true,
            "members": members,
            "settings": {
                "chainingAllowed": true,
                "heartbeatIntervalMillis": 2000,
                "heartbeatTimeoutSecs": 10,
                "electionTimeoutMillis": timeout_ms,
                "catchUpTimeoutMillis": -1,
                "catchUpTakeoverDelayMillis": 30000,
                "getLastErrorModes": {},
                "getLastErrorDefaults": {"w": 1, "wtimeout": 0},
                "replicaSetId": st.config.replica_set_id,
            },
        },
        "ok": 1.0,
    }
}

/// Holds writes, waits for a caught-up electable secondary, then steps down and hands off.
async fn step_down_and_hand_off(
    shared: &Shared,
    m: usize,
    catch_up: Duration,
    freeze: Duration,
    force: bool,
) -> Result<(), CommandError> {
    {
        let mut st = shared.lock();
        if !st.members[m].primary {
            return Err(CommandError::new(
                10107,
                "NotWritablePrimary",
                "not primary so can't step down",
            ));
        }
        st.members[m].stepping_down = true;
    }
    shared.notify();
    let deadline = shared.clock.now().plus(catch_up);
    let found = shared
        .wait_for(deadline, |st, now| {
            st.caught_up_secondary(m, now).map(|_| ())
        })
        .await;
    let now = shared.clock.now();
    let result = {
        let mut st = shared.lock();
        if !st.members[m].primary {
            st.members[m].stepping_down = false;
            Err(CommandError::new(
                10107,
                "NotWritablePrimary",
                "not primary so can't step down",
            ))
        } else if found.is_some() || force {
            st.step_down(m, now, freeze);
            st.hand_off(m, now);
            Ok(())
        } else {
            st.members[m].stepping_down = false;
            Err(CommandError::new(
                50,
                "ExceededTimeLimit",
                format!(
                    "No electable secondaries caught up as of {}. Please use the replSetStepDown command with the argument {{force: true}} to force node to step down.",
                    date(shared, now)
                        .try_to_rfc3339_string()
                        .unwrap_or_default()
                ),
            ))
        }
    };
    shared.notify();
    result
}

async fn repl_set_step_down(
    shared: &Shared,
    m: usize,
    cmd: &Document,
) -> Result<Document, CommandError> {
    let step_down = secs(cmd.get("replSetStepDown"), 60.0);
    let catch_up = secs(cmd.get("secondaryCatchUpPeriodSecs"), 10.0);
    if step_down < catch_up {
        return Err(CommandError::bad_value(
            "stepdown period must be longer than secondaryCatchUpPeriodSecs".to_owned(),
        ));
    }
    let force = cmd.get_bool("force").unwrap_or(false);
    step_down_and_hand_off(shared, m, catch_up, step_down, force).await?;
    Ok(doc! {"ok": 1.0})
}

fn repl_set_freeze(shared: &Shared, m: usize, cmd: &Document) -> Result<Document, CommandError> {
    let duration = secs(cmd.get("replSetFreeze"), 0.0);
    let now = shared.clock.now();
    let mut st = shared.lock();
    if st.members[m].primary {
        return Err(CommandError::new(
            95,
            "NotSecondary",
            "cannot freeze node when primary or running for election. state: Primary",
        ));
    }
    st.members[m].frozen_until = now.plus(duration);
    drop(st);
    shared.notify();
    Ok(if duration.is_zero() {
        doc! {"info": "unfreezing", "ok": 1.0}
    } else {
        doc! {"ok": 1.0}
    })
}

fn invalid_config(msg: String) -> CommandError {
    CommandError::new(93, "InvalidReplicaSetConfig", msg)
}

fn repl_set_reconfig(shared: &Shared, m: usize, cmd: &Document) -> Result<Document, CommandError> {
    let config = cmd.get_document("replSetReconfig").map_err(|_| {
        CommandError::type_mismatch("replSetReconfig needs a configuration document".to_owned())
    })?;
    let mut st = shared.lock();
    if !st.members[m].primary && !cmd.get_bool("force").unwrap_or(false) {
        let state = st.members[m].state().name();
        return Err(CommandError::new(
            10107,
            "NotWritablePrimary",
            format!(
                "replSetReconfig should only be run on a writable PRIMARY. Current state {state};"
            ),
        ));
    }
    let name = config.get_str("_id").unwrap_or_default();
    if name != st.name {
        return Err(invalid_config(format!(
            "Attempting to reconfigure a replica set with name {name}, but command line reports {}; rejecting",
            st.name
        )));
    }
    let version = number(config.get("version")).map(|v| v as i64).unwrap_or(0);
    if version <= i64::from(st.config.version) {
        return Err(CommandError::new(
            103,
            "NewReplicaSetConfigurationIncompatible",
            format!(
                "New replica set configuration version must be greater than old, but {version} is not greater than {} for replica set {}",
                st.config.version, st.name
            ),
        ));
    }
    let given = config
        .get_array("members")
        .map_err(|_| invalid_config("members field must be an array".to_owned()))?;
    let mut next: Vec<MemberConfig> = Vec::new();
    for raw in given {
        let Some(d) = raw.as_document() else {
            return Err(invalid_config("each member must be an object".to_owned()));
        };
        let host = d
            .get_str("host")
            .map_err(|_| invalid_config("member needs a host".to_owned()))?;
        let Some(index) = st.config.members.iter().position(|c| c.host == host) else {
            return Err(CommandError::new(
                74,
                "NodeNotFound",
                format!(
                    "Quorum check failed because not enough voting nodes responded; the following nodes did not respond affirmatively: {host} failed with Error connecting to {host} :: caused by :: Connection refused"
                ),
            ));
        };
        let current = &st.config.members[index];
        let id = number(d.get("_id")).map_or(-1, |v| v as i32);
        if id != current.id {
            return Err(CommandError::new(
                103,
                "NewReplicaSetConfigurationIncompatible",
                format!(
                    "New and old configurations both have members with host of {host} but in the new configuration the _id field is {id} and in the old configuration it is {} for replica set {}",
                    current.id, st.name
                ),
            ));
        }
        if next.iter().any(|c| c.host == host) {
            return Err(invalid_config(format!(
                "Found two member configurations with same host field, members.{index}.host == {host}"
            )));
        }
        let priority = number(d.get("priority")).unwrap_or(1.0);
        if !(0.0..=1000.0).contains(&priority) {
            return Err(invalid_config(format!(
                "priority field value of {priority} is out of range"
            )));
        }
        let votes = number(d.get("votes")).map_or(1, |v| v as i32);
        if !(0..=1).contains(&votes) {
            return Err(invalid_config(format!(
                "votes field value is {votes} but must be 0 or 1 for member {host}"
            )));
        }
        if votes == 0 && priority > 0.0 {
            return Err(invalid_config(format!(
                "priority must be 0 when non-voting (votes:0) for member {host}"
            )));
        }
        let tags = d
            .get_document("tags")
            .cloned()
            .unwrap_or_else(|_| current.tags.clone());
        next.push(MemberConfig {
            id,
            host: host.to_owned(),
            priority,
            votes,
            tags,
        });
    }
    if next.len() != st.config.members.len() {
        return Err(CommandError::new(
            103,
            "NewReplicaSetConfigurationIncompatible",
            format!(
                "the embedded replica set {} cannot add or remove members (hint: list every current member)",
                st.name
            ),
        ));
    }
    if next.iter().all(|c| c.priority <= 0.0 || c.votes == 0) {
        return Err(invalid_config(
            "This config has no electable members (hint: give a voting member priority > 0)"
                .to_owned(),
        ));
    }
    next.sort_by_key(|c| c.id);
    st.reconfigure(i32::try_from(version).unwrap_or(i32::MAX), next);
    drop(st);
    shared.notify();
    Ok(doc! {"ok": 1.0})
}

async fn shutdown(shared: &Shared, m: usize, cmd: &Document) -> Result<(), CommandError> {
    let force = cmd.get_bool("force").unwrap_or(false);
    let primary = shared.lock().members[m].primary;
    if primary {
        let timeout = secs(cmd.get("timeoutSecs"), 15.0);
        step_down_and_hand_off(shared, m, timeout, Duration::from_secs(60), force).await?;
    }
    if let Some(listener) = shared.shut_down_member(m) {
        // This connection belongs to the aborted listener task: awaiting it ends only when the
        // runtime cancels this connection, after the listening socket has been dropped, so the
        // client sees the connection close only once the port is closed.
        let _ = listener.await;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::engine::id_key;
    use super::*;

    #[test]
    fn election_ids_grow_with_the_term() {
        assert!(election_id(2).bytes() > election_id(1).bytes());
        assert_eq!(election_id(1).to_hex(), "7fffffff0000000000000001");
    }

    #[test]
    fn write_concern_defaults_to_majority() {
        assert!(matches!(write_concern(&doc! {}).0, WriteConcern::Majority));
        assert!(matches!(
            write_concern(&doc! {"writeConcern": {"w": 1}}).0,
            WriteConcern::Nodes(1)
        ));
        let (_, timeout, _) =
            write_concern(&doc! {"writeConcern": {"w": "majority", "wtimeout": 500}});
        assert_eq!(timeout, Some(Duration::from_millis(500)));
    }

    #[test]
    fn id_keys_distinguish_values() {
        assert_ne!(id_key(&Bson::Int32(1)), id_key(&Bson::Int32(2)));
    }
}
