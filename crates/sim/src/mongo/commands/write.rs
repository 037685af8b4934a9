//! Writes: `insert`, `update`, `delete`, `drop`, with write concerns and retryable-write
//! deduplication on (lsid, txnNumber, statement).

use super::read::{filtered, namespace};
use super::*;

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum WriteKind {
    Insert,
    Update,
    Delete,
    Drop,
}

pub(super) enum WriteConcern {
    Unacknowledged,
    Nodes(usize),
    Majority,
}

pub(super) fn write_concern(cmd: &Document) -> (WriteConcern, Option<Duration>, Document) {
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

pub(super) async fn write(
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

/// What one statement of a write did, and the oplog entry it appended (none when it was
/// answered from the session's record, or changed nothing).
type Statement = Result<(StmtResult, Option<OpTime>), CommandError>;

/// Runs the statements under `field` of a write command, with the prologue insert, update and
/// delete share: the statement index, a retried statement answered from the session's record
/// instead of running again, and `ordered` (the first error stops the batch; unordered writes
/// go on and report every error).
fn each_statement(
    st: &mut SetState,
    m: usize,
    cmd: &Document,
    field: &str,
    session: Option<&Session>,
    mut run: impl FnMut(&mut SetState, i32, &Document) -> Statement,
) -> Result<WriteOutcome, CommandError> {
    let ordered = cmd.get_bool("ordered").unwrap_or(true);
    let mut out = WriteOutcome::default();
    for (i, spec) in statements(cmd, field).into_iter().enumerate() {
        let stmt = i32::try_from(i).unwrap_or(i32::MAX);
        let done = match retried(st, m, session, stmt)? {
            Some(prev) => Ok((prev, None)),
            None => run(st, stmt, spec),
        };
        match done {
            Ok((r, appended)) => {
                out.n += r.n;
                out.n_modified += r.n_modified;
                if let Some(id) = r.upserted {
                    out.upserted.push(doc! {"index": stmt, "_id": id});
                }
                out.last = appended.or(out.last);
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

fn insert(
    st: &mut SetState,
    m: usize,
    now: PlatformTime,
    ns: &str,
    cmd: &Document,
    session: Option<&Session>,
) -> Result<WriteOutcome, CommandError> {
    each_statement(st, m, cmd, "documents", session, |st, stmt, doc| {
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
            return Err(CommandError::new(
                11000,
                "DuplicateKey",
                format!(
                    "E11000 duplicate key error collection: {ns} index: _id_ dup key: {{ _id: {id} }}"
                ),
            ));
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
            txn_tag(session, stmt, result.clone()),
        );
        Ok((result, Some(optime)))
    })
}

fn update(
    st: &mut SetState,
    m: usize,
    now: PlatformTime,
    ns: &str,
    cmd: &Document,
    session: Option<&Session>,
) -> Result<WriteOutcome, CommandError> {
    each_statement(st, m, cmd, "updates", session, |st, stmt, spec| {
        let result = update_one(st, m, now, ns, spec, session, stmt)?;
        Ok((result, Some(st.members[m].last_optime())))
    })
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
    each_statement(st, m, cmd, "deletes", session, |st, stmt, spec| {
        let filter = spec.get_document("q").cloned().unwrap_or_default();
        let limit = number(spec.get("limit")).unwrap_or(0.0);
        let mut matched = filtered(st, m, ns, &filter)?;
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
        let appended = (!ops.is_empty() || session.is_some())
            .then(|| st.append(m, now, ops, txn_tag(session, stmt, result.clone())));
        Ok((result, appended))
    })
}

/// `findAndModify`: one document found, updated or removed atomically, the real server's
/// `{lastErrorObject, value}` reply; retried statements answer with the recorded document.
pub(super) async fn find_and_modify(
    shared: &Shared,
    m: usize,
    cmd: &Document,
) -> Result<Document, CommandError> {
    let ns = namespace(cmd, "findAndModify")?;
    let session = session(cmd);
    let deadline = shared.clock.now().plus(MAX_WAIT);
    shared
        .wait_for(deadline, |st, _| {
            (!st.members[m].stepping_down).then_some(())
        })
        .await;
    let (result, target) = {
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
        let result = match retried(&mut st, m, session.as_ref(), 0)? {
            Some(prev) => prev,
            None => modify_one(&mut st, m, now, &ns, cmd, session.as_ref())?,
        };
        (result, st.members[m].last_optime())
    };
    shared.notify();
    let mut last_error = doc! {"n": i32::try_from(result.n).unwrap_or(i32::MAX)};
    if !cmd.get_bool("remove").unwrap_or(false) {
        last_error.insert("updatedExisting", result.n > 0 && result.upserted.is_none());
        if let Some(id) = &result.upserted {
            last_error.insert("upserted", id.clone());
        }
    }
    let mut reply = doc! {
        "lastErrorObject": last_error,
        "value": result.value.map_or(Bson::Null, Bson::Document),
    };
    if let Some((wce, labels)) = wait_for_write_concern(shared, m, target, cmd).await {
        reply.insert("writeConcernError", wce);
        if !labels.is_empty() {
            reply.insert("errorLabels", labels);
        }
    }
    reply.insert("ok", 1.0);
    Ok(reply)
}

fn modify_one(
    st: &mut SetState,
    m: usize,
    now: PlatformTime,
    ns: &str,
    cmd: &Document,
    session: Option<&Session>,
) -> Result<StmtResult, CommandError> {
    let filter = cmd.get_document("query").cloned().unwrap_or_default();
    let remove = cmd.get_bool("remove").unwrap_or(false);
    let return_new = cmd.get_bool("new").unwrap_or(false);
    let upsert = cmd.get_bool("upsert").unwrap_or(false);
    let projection = cmd.get_document("fields").cloned().unwrap_or_default();
    let update = match cmd.get("update") {
        Some(Bson::Document(u)) => Some(u.clone()),
        None => None,
        Some(_) => {
            return Err(CommandError::bad_value(
                "pipeline-style updates are not implemented by the embedded server (hint: use update operators)".to_owned(),
            ));
        }
    };
    if remove == update.is_some() {
        return Err(CommandError::failed_to_parse(
            "Either an update or remove=true must be specified".to_owned(),
        ));
    }
    let mut matched = filtered(st, m, ns, &filter)?;
    if let Ok(sort) = cmd.get_document("sort") {
        query::sort(&mut matched, sort);
    }
    let found = matched.into_iter().next();
    let mut result = StmtResult::default();
    let mut ops = Vec::new();
    match (found, update) {
        (Some(old), None) => {
            let id = old.get("_id").cloned().unwrap_or(Bson::Null);
            ops.push(Op::Delete {
                ns: ns.to_owned(),
                id,
            });
            result.n = 1;
            result.value = Some(query::project(&old, &projection));
        }
        (Some(old), Some(u)) => {
            let new = query::apply_update(&old, &u, false)?;
            if new != old {
                let id = old.get("_id").cloned().unwrap_or(Bson::Null);
                ops.push(Op::Update {
                    ns: ns.to_owned(),
                    id,
                    doc: new.clone(),
                });
                result.n_modified = 1;
            }
            result.n = 1;
            let shown = if return_new { new } else { old };
            result.value = Some(query::project(&shown, &projection));
        }
        (None, Some(u)) if upsert => {
            let mut doc = query::upsert_seed(&filter, &u)?;
            if !doc.contains_key("_id") {
                let mut with_id = doc! {"_id": ObjectId::new()};
                with_id.extend(doc);
                doc = with_id;
            }
            result.n = 1;
            result.upserted = doc.get("_id").cloned();
            if return_new {
                result.value = Some(query::project(&doc, &projection));
            }
            ops.push(Op::Insert {
                ns: ns.to_owned(),
                doc,
            });
        }
        (None, _) => {}
    }
    if !ops.is_empty() || session.is_some() {
        st.append(m, now, ops, txn_tag(session, 0, result.clone()));
    }
    Ok(result)
}
