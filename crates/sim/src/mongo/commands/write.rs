//! Writes: `insert`, `update`, `delete`, `findAndModify`; with write concerns (numbers,
//! `majority`, tags), retryable-write deduplication on (lsid, txnNumber, statement), unique
//! indexes, the 16 MiB document limit, and transactions (buffered in the transaction, or held
//! back while another session's transaction holds the document).

use super::read::{matching, namespace};
use super::txn::{Session, TxnRef};
use super::*;
use crate::mongo::catalog::{check_unique, duplicate_key};
use crate::mongo::query::update::{Context, upsert_seed};
use crate::mongo::query::{Filter, Sort, Update};
use crate::mongo::txn::write_conflict;

/// The largest document a user may store.
const MAX_USER_DOCUMENT: usize = 16 * 1024 * 1024;

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum WriteKind {
    Insert,
    Update,
    Delete,
}

pub(super) enum WriteConcern {
    Unacknowledged,
    Nodes(usize),
    Majority,
    Tag(String),
}

pub(super) fn write_concern(cmd: &Document) -> (WriteConcern, Option<Duration>, Document) {
    let wc = cmd
        .get_document("writeConcern")
        .cloned()
        .unwrap_or_default();
    let w = match wc.get("w") {
        Some(Bson::String(s)) if s == "majority" => WriteConcern::Majority,
        Some(Bson::String(tag)) => WriteConcern::Tag(tag.clone()),
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

/// Why a statement did not apply.
enum StmtError {
    /// Another session's open transaction holds this document: wait until it ends.
    Blocked(Box<(String, Bson)>),
    Failed(CommandError),
}

impl From<CommandError> for StmtError {
    fn from(e: CommandError) -> Self {
        Self::Failed(e)
    }
}

/// Where a statement's changes go: the oplog, or the transaction it runs in.
#[derive(Clone, Copy)]
enum Target<'a> {
    Oplog,
    Txn(&'a TxnRef),
}

/// Applies `ops` of one statement to `target`.
fn commit_ops(
    st: &mut SetState,
    m: usize,
    now: PlatformTime,
    target: Target<'_>,
    ops: Vec<Op>,
    stmt: Option<TxnStmt>,
) -> Result<Option<OpTime>, StmtError> {
    match target {
        Target::Oplog => {
            for op in &ops {
                if let Some((ns, id)) = op.document()
                    && st.members[m].transactions.values().any(|t| t.holds(ns, id))
                {
                    return Err(StmtError::Blocked(Box::new((ns.to_owned(), id.clone()))));
                }
            }
            if ops.is_empty() && stmt.is_none() {
                return Ok(None);
            }
            Ok(Some(st.append(m, now, ops, stmt)))
        }
        Target::Txn(t) => {
            let mem = &mut st.members[m];
            let Some(mut txn) = mem.transactions.remove(&t.lsid) else {
                return Err(StmtError::Failed(write_conflict()));
            };
            let others = &mem.transactions;
            let result = txn.write(ops, &mem.store.collections, |ns, id| {
                others.values().any(|o| o.holds(ns, id))
            });
            mem.transactions.insert(t.lsid.clone(), txn);
            result.map(|()| None).map_err(StmtError::Failed)
        }
    }
}

/// Whether another session's transaction still holds the document.
fn held(st: &SetState, m: usize, ns: &str, id: &Bson) -> bool {
    st.members[m].transactions.values().any(|t| t.holds(ns, id))
}

/// Refuses `doc` as the real server refuses a document it will not store.
fn check_document(doc: &Document, inserting: bool) -> Result<(), CommandError> {
    let size = bson::to_vec(doc).map_or(0, |b| b.len());
    if size > MAX_USER_DOCUMENT {
        return Err(if inserting {
            CommandError::bad_value(format!(
                "object to insert too large. size in bytes: {size}, max size: {MAX_USER_DOCUMENT}"
            ))
        } else {
            CommandError::location(
                17419,
                format!("Resulting document after update is larger than {MAX_USER_DOCUMENT}"),
            )
        });
    }
    if inserting {
        if let Some(k) = doc.keys().find(|k| k.starts_with('$')) {
            return Err(CommandError::bad_value(format!(
                "Document can't have $ prefixed field names: {k}"
            )));
        }
        match doc.get("_id") {
            Some(Bson::Array(_)) => {
                return Err(CommandError::bad_value("can't use an array for _id"));
            }
            Some(Bson::RegularExpression(_)) => {
                return Err(CommandError::bad_value("can't use a regex for _id"));
            }
            Some(Bson::Undefined) => {
                return Err(CommandError::bad_value("can't use a undefined for _id"));
            }
            _ => {}
        }
    }
    Ok(())
}

fn with_id(doc: Document) -> Document {
    if doc.contains_key("_id") {
        return doc;
    }
    let mut out = doc! {"_id": ObjectId::new()};
    out.extend(doc);
    out
}

/// Refuses an insert of `doc` into `ns` that collides on `_id` or a unique index.
fn check_insert(catalog: &Catalog, ns: &str, doc: &Document) -> Result<(), CommandError> {
    let coll = catalog.get(ns).map(std::convert::AsRef::as_ref);
    let id = doc.get("_id").cloned().unwrap_or(Bson::Null);
    if coll.and_then(|c| c.get(&id)).is_some() {
        return Err(duplicate_key(
            ns,
            "_id_",
            &doc! {"_id": 1},
            doc! {"_id": id},
        ));
    }
    check_unique(coll, ns, doc)
}

#[derive(Default)]
struct WriteOutcome {
    n: i64,
    n_modified: i64,
    upserted: Vec<Document>,
    write_errors: Vec<Document>,
    last: Option<OpTime>,
}

/// A previously executed statement of the same retryable write, if any.
fn retried(
    st: &mut SetState,
    m: usize,
    session: Option<&Session>,
    stmt: i32,
) -> Result<Option<StmtResult>, CommandError> {
    let Some(s) = session else { return Ok(None) };
    let Some(number) = s.txn_number else {
        return Ok(None);
    };
    let Some(rec) = st.members[m].store.txns.get(&s.lsid) else {
        return Ok(None);
    };
    if rec.txn_number > number {
        return Err(CommandError::new(
            225,
            "TransactionTooOld",
            format!(
                "Retryable write with txnNumber {number} is prohibited on session because a newer retryable write with txnNumber {} has already started on this session.",
                rec.txn_number
            ),
        ));
    }
    if rec.txn_number == number
        && let Some(r) = rec.stmts.get(&stmt)
    {
        let r = r.clone();
        st.deduplicated += 1;
        return Ok(Some(r));
    }
    Ok(None)
}

fn txn_tag(session: Option<&Session>, stmt: i32, result: StmtResult) -> Option<TxnStmt> {
    let s = session?;
    Some(TxnStmt {
        lsid: s.lsid.clone(),
        txn_number: s.txn_number?,
        stmt,
        result,
    })
}

fn write_error(index: usize, e: &CommandError) -> Document {
    let mut d = doc! {"index": i32::try_from(index).unwrap_or(i32::MAX), "code": e.code, "codeName": e.code_name.as_ref(), "errmsg": &e.errmsg};
    if let Some(extra) = &e.extra {
        d.extend(extra.as_ref().clone());
    }
    d
}

/// Waits until the primary holds writes no more (a step-down in progress), then checks it is
/// still primary.
async fn writable(ctx: &Ctx<'_>) -> Result<(), CommandError> {
    let (shared, m) = (ctx.shared, ctx.m);
    let deadline = shared.clock.now().plus(MAX_WAIT);
    shared
        .wait_for(deadline, |st, _| {
            (!st.members[m].stepping_down).then_some(())
        })
        .await;
    still_primary(ctx, &shared.lock())
}

/// Refuses a write on a member that is not (or no longer) a writable primary, with the labels
/// that make drivers retry it elsewhere. Checked under the same lock as each statement, since
/// a step-down can land between two statements of a batch.
fn still_primary(ctx: &Ctx<'_>, st: &SetState) -> Result<(), CommandError> {
    let mem = &st.members[ctx.m];
    if mem.primary && !mem.stepping_down {
        return Ok(());
    }
    let e = CommandError::not_writable_primary();
    Err(if ctx.txn.is_some() {
        e.with_label("TransientTransactionError")
    } else if ctx.session.as_ref().is_some_and(|s| s.txn_number.is_some()) {
        e.with_label("RetryableWriteError")
    } else {
        e
    })
}

/// Runs one statement until it applies or fails, waiting while another session's transaction
/// holds a document it writes.
async fn run_statement(
    ctx: &Ctx<'_>,
    stmt: i32,
    mut run: impl FnMut(
        &mut SetState,
        PlatformTime,
        Target<'_>,
    ) -> Result<(StmtResult, Option<OpTime>), StmtError>,
) -> Result<(StmtResult, Option<OpTime>), CommandError> {
    let (shared, m) = (ctx.shared, ctx.m);
    let deadline = shared.clock.now().plus(MAX_WAIT);
    let target = ctx.txn.as_ref().map_or(Target::Oplog, Target::Txn);
    loop {
        let blocked = {
            let now = shared.clock.now();
            let mut st = shared.lock();
            still_primary(ctx, &st)?;
            if ctx.txn.is_none()
                && let Some(prev) = retried(&mut st, m, ctx.session.as_ref(), stmt)?
            {
                return Ok((prev, None));
            }
            match run(&mut st, now, target) {
                Ok(done) => return Ok(done),
                Err(StmtError::Failed(e)) => return Err(e),
                Err(StmtError::Blocked(held)) => *held,
            }
        };
        let (ns, id) = blocked;
        let released = shared
            .wait_for(deadline, |st, _| (!held(st, m, &ns, &id)).then_some(()))
            .await;
        if released.is_none() {
            return Err(CommandError::new(
                50,
                "MaxTimeMSExpired",
                "operation exceeded time limit",
            ));
        }
    }
}

pub(super) async fn write(ctx: &Ctx<'_>, kind: WriteKind) -> Result<Document, CommandError> {
    let (shared, m, cmd) = (ctx.shared, ctx.m, ctx.cmd);
    let (name, field, stmt_fields): (&str, &str, &[&str]) = match kind {
        WriteKind::Insert => ("insert", "documents", &[]),
        WriteKind::Update => (
            "update",
            "updates",
            &["q", "u", "multi", "upsert", "hint", "upsertSupplied"],
        ),
        WriteKind::Delete => ("delete", "deletes", &["q", "limit", "hint"]),
    };
    let ns = namespace(cmd, name)?;
    let statements: Vec<Document> = cmd
        .get_array(field)
        .map(|a| a.iter().filter_map(Bson::as_document).cloned().collect())
        .unwrap_or_default();
    if kind != WriteKind::Insert {
        for s in &statements {
            check_fields(s, &format!("{name}.{field}"), stmt_fields, false, false)?;
        }
    }
    writable(ctx).await?;
    let ordered = cmd.get_bool("ordered").unwrap_or(true);
    let mut outcome = WriteOutcome::default();
    for (i, spec) in statements.iter().enumerate() {
        let stmt = i32::try_from(i).unwrap_or(i32::MAX);
        let done = match kind {
            WriteKind::Insert => {
                let doc = with_id(spec.clone());
                run_statement(ctx, stmt, |st, now, target| {
                    insert_one(st, m, now, &ns, &doc, ctx.session.as_ref(), stmt, target)
                })
                .await
            }
            WriteKind::Update => match UpdateStmt::parse(spec) {
                Ok(u) => {
                    run_statement(ctx, stmt, |st, now, target| {
                        update_one(
                            st,
                            m,
                            now,
                            date(shared, now),
                            &ns,
                            &u,
                            ctx.session.as_ref(),
                            stmt,
                            target,
                        )
                    })
                    .await
                }
                Err(e) => Err(e),
            },
            WriteKind::Delete => match DeleteStmt::parse(spec) {
                Ok(d) => {
                    run_statement(ctx, stmt, |st, now, target| {
                        delete_one(st, m, now, &ns, &d, ctx.session.as_ref(), stmt, target)
                    })
                    .await
                }
                Err(e) => Err(e),
            },
        };
        match done {
            Ok((r, appended)) => {
                outcome.n += r.n;
                outcome.n_modified += r.n_modified;
                if let Some(id) = r.upserted {
                    outcome.upserted.push(doc! {"index": stmt, "_id": id});
                }
                outcome.last = appended.or(outcome.last);
            }
            // In a transaction an error fails the whole command (and aborts the transaction);
            // so does losing the primary role half-way, which a driver retries as a whole (the
            // statements already applied are answered from the session's record).
            Err(e) if ctx.txn.is_some() || e.code == 10107 => return Err(e),
            Err(e) => {
                outcome.write_errors.push(write_error(i, &e));
                if ordered {
                    break;
                }
            }
        }
    }
    shared.notify();

    let mut reply = doc! {"n": i32::try_from(outcome.n).unwrap_or(i32::MAX)};
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
    if ctx.txn.is_none() {
        // A retried statement waits for the member's latest write, like the real server does.
        let target = outcome
            .last
            .unwrap_or_else(|| shared.lock().members[m].last_optime());
        if let Some((wce, labels)) = wait_for_write_concern(shared, m, target, cmd).await {
            reply.insert("writeConcernError", wce);
            if !labels.is_empty() {
                reply.insert("errorLabels", labels);
            }
        }
    }
    reply.insert("ok", 1.0);
    Ok(reply)
}

/// Waits until the write at `target` satisfies the command's write concern.
pub(super) async fn wait_for_write_concern(
    shared: &Shared,
    m: usize,
    target: OpTime,
    cmd: &Document,
) -> Option<(Document, Vec<&'static str>)> {
    let (w, timeout, wc) = write_concern(cmd);
    let needed = match w {
        WriteConcern::Unacknowledged | WriteConcern::Nodes(0 | 1) => return None,
        WriteConcern::Tag(tag) => {
            return Some((
                doc! {
                    "code": 79,
                    "codeName": "UnknownReplWriteConcern",
                    "errmsg": format!("No write concern mode named '{tag}' found in replica set configuration"),
                    "errInfo": {"writeConcern": wc},
                },
                Vec::new(),
            ));
        }
        WriteConcern::Nodes(n) => {
            let members = shared.lock().members.len();
            if n > members {
                return Some((
                    doc! {
                        "code": 100,
                        "codeName": "UnsatisfiableWriteConcern",
                        "errmsg": "Not enough data-bearing nodes",
                        "errInfo": {"writeConcern": wc},
                    },
                    Vec::new(),
                ));
            }
            Some(n)
        }
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
            doc! {"code": e.code, "codeName": e.code_name.as_ref(), "errmsg": e.errmsg},
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

#[allow(clippy::too_many_arguments)]
fn insert_one(
    st: &mut SetState,
    m: usize,
    now: PlatformTime,
    ns: &str,
    doc: &Document,
    session: Option<&Session>,
    stmt: i32,
    target: Target<'_>,
) -> Result<(StmtResult, Option<OpTime>), StmtError> {
    check_document(doc, true)?;
    let txn = match target {
        Target::Txn(t) => Some(t),
        Target::Oplog => None,
    };
    check_insert(catalog_of(st, m, txn), ns, doc)?;
    let result = StmtResult {
        n: 1,
        ..StmtResult::default()
    };
    let tag = if txn.is_some() {
        None
    } else {
        txn_tag(session, stmt, result.clone())
    };
    let ops = vec![Op::Insert {
        ns: ns.to_owned(),
        doc: doc.clone(),
    }];
    let appended = commit_ops(st, m, now, target, ops, tag)?;
    Ok((result, appended))
}

/// One parsed update statement.
struct UpdateStmt {
    raw: Document,
    filter: Filter,
    update: Update,
    multi: bool,
    upsert: bool,
}

impl UpdateStmt {
    fn parse(spec: &Document) -> Result<Self, CommandError> {
        let raw = spec.get_document("q").cloned().unwrap_or_default();
        let Some(u) = spec.get("u") else {
            return Err(CommandError::new(
                40414,
                "Location40414",
                "BSON field 'update.updates.u' is missing but a required field",
            ));
        };
        let update = Update::parse(u)?;
        let multi = spec.get_bool("multi").unwrap_or(false);
        if multi && update.is_replacement() {
            return Err(CommandError::failed_to_parse(
                "multi update is not supported for replacement-style update".to_owned(),
            ));
        }
        Ok(Self {
            filter: Filter::parse(&raw)?,
            raw,
            update,
            multi,
            upsert: spec.get_bool("upsert").unwrap_or(false),
        })
    }
}

/// What an update needs at `now`: `$currentDate`'s date (`date`) and timestamp (the next one
/// the oplog will hand out).
fn update_context(
    st: &SetState,
    date: bson::DateTime,
    now: PlatformTime,
    inserting: bool,
    pos: Option<usize>,
) -> Context {
    Context {
        inserting,
        pos,
        now: date,
        ts: st.timestamp(
            now,
            st.members
                .iter()
                .map(|m| m.last_optime().seq)
                .max()
                .unwrap_or(0)
                + 1,
        ),
    }
}

/// Computes the new document of an update (and checks it may be stored).
fn updated(
    catalog: &Catalog,
    ns: &str,
    old: &Document,
    update: &Update,
    ctx: Context,
) -> Result<Document, CommandError> {
    let new = update.apply(old, ctx)?;
    check_document(&new, false)?;
    if &new != old {
        check_unique(catalog.get(ns).map(std::convert::AsRef::as_ref), ns, &new)?;
    }
    Ok(new)
}

/// The document an upsert inserts.
fn upserted(
    catalog: &Catalog,
    ns: &str,
    raw: &Document,
    update: &Update,
    ctx: Context,
) -> Result<Document, CommandError> {
    let seed = upsert_seed(raw)?;
    let doc = match update {
        Update::Replacement(r) => {
            let mut d = Document::new();
            if let Some(id) = r.get("_id").or_else(|| seed.get("_id")) {
                d.insert("_id", id.clone());
            }
            for (k, v) in r {
                if k != "_id" {
                    d.insert(k.clone(), v.clone());
                }
            }
            d
        }
        other => other.apply(
            &seed,
            Context {
                inserting: true,
                ..ctx
            },
        )?,
    };
    let doc = with_id(doc);
    check_document(&doc, true)?;
    check_insert(catalog, ns, &doc)?;
    Ok(doc)
}

#[allow(clippy::too_many_arguments)]
fn update_one(
    st: &mut SetState,
    m: usize,
    now: PlatformTime,
    date: bson::DateTime,
    ns: &str,
    u: &UpdateStmt,
    session: Option<&Session>,
    stmt: i32,
    target: Target<'_>,
) -> Result<(StmtResult, Option<OpTime>), StmtError> {
    let txn = match target {
        Target::Txn(t) => Some(t),
        Target::Oplog => None,
    };
    let (ops, result) = {
        let catalog = catalog_of(st, m, txn);
        let mut matched = matching(st, m, catalog, ns, &u.raw, &u.filter)?;
        if !u.multi {
            matched.truncate(1);
        }
        let mut ops = Vec::new();
        let mut result = StmtResult {
            n: i64::try_from(matched.len()).unwrap_or(i64::MAX),
            ..StmtResult::default()
        };
        for (old, pos) in &matched {
            let new = updated(
                catalog,
                ns,
                old,
                &u.update,
                update_context(st, date, now, false, *pos),
            )?;
            if &new != old {
                ops.push(Op::Update {
                    ns: ns.to_owned(),
                    id: old.get("_id").cloned().unwrap_or(Bson::Null),
                    doc: new,
                });
                result.n_modified += 1;
            }
        }
        if matched.is_empty() && u.upsert {
            let doc = upserted(
                catalog,
                ns,
                &u.raw,
                &u.update,
                update_context(st, date, now, true, None),
            )?;
            result.n = 1;
            result.upserted = doc.get("_id").cloned();
            ops.push(Op::Insert {
                ns: ns.to_owned(),
                doc,
            });
        }
        (ops, result)
    };
    let tag = if txn.is_some() {
        None
    } else {
        txn_tag(session, stmt, result.clone())
    };
    let record = tag.is_some();
    let appended = if ops.is_empty() && !record {
        None
    } else {
        commit_ops(st, m, now, target, ops, tag)?
    };
    Ok((
        result,
        appended.or_else(|| Some(st.members[m].last_optime())),
    ))
}

/// One parsed delete statement.
struct DeleteStmt {
    raw: Document,
    filter: Filter,
    one: bool,
}

impl DeleteStmt {
    fn parse(spec: &Document) -> Result<Self, CommandError> {
        let raw = spec.get_document("q").cloned().unwrap_or_default();
        let limit = number(spec.get("limit")).unwrap_or(0.0);
        Ok(Self {
            filter: Filter::parse(&raw)?,
            raw,
            one: limit >= 1.0,
        })
    }
}

#[allow(clippy::too_many_arguments)]
fn delete_one(
    st: &mut SetState,
    m: usize,
    now: PlatformTime,
    ns: &str,
    d: &DeleteStmt,
    session: Option<&Session>,
    stmt: i32,
    target: Target<'_>,
) -> Result<(StmtResult, Option<OpTime>), StmtError> {
    let txn = match target {
        Target::Txn(t) => Some(t),
        Target::Oplog => None,
    };
    let mut matched = matching(st, m, catalog_of(st, m, txn), ns, &d.raw, &d.filter)?;
    if d.one {
        matched.truncate(1);
    }
    let ops: Vec<Op> = matched
        .iter()
        .map(|(doc, _)| Op::Delete {
            ns: ns.to_owned(),
            id: doc.get("_id").cloned().unwrap_or(Bson::Null),
        })
        .collect();
    let result = StmtResult {
        n: i64::try_from(ops.len()).unwrap_or(i64::MAX),
        ..StmtResult::default()
    };
    let tag = if txn.is_some() {
        None
    } else {
        txn_tag(session, stmt, result.clone())
    };
    let appended = if ops.is_empty() && tag.is_none() {
        None
    } else {
        commit_ops(st, m, now, target, ops, tag)?
    };
    Ok((result, appended))
}

/// `findAndModify`: one document found, updated or removed atomically, the real server's
/// `{lastErrorObject, value}` reply; retried statements answer with the recorded document.
pub(super) async fn find_and_modify(ctx: &Ctx<'_>) -> Result<Document, CommandError> {
    let (shared, m, cmd) = (ctx.shared, ctx.m, ctx.cmd);
    let ns = namespace(cmd, "findAndModify")?;
    let raw = cmd.get_document("query").cloned().unwrap_or_default();
    let filter = Filter::parse(&raw)?;
    let sort = Sort::parse(&cmd.get_document("sort").cloned().unwrap_or_default())?;
    let projection = query::Projection::parse(
        &cmd.get_document("fields").cloned().unwrap_or_default(),
        true,
    )?;
    let remove = cmd.get_bool("remove").unwrap_or(false);
    let update = match cmd.get("update") {
        Some(u) => Some(Update::parse(u)?),
        None => None,
    };
    if remove == update.is_some() {
        return Err(CommandError::failed_to_parse(
            "Either an update or remove=true must be specified".to_owned(),
        ));
    }
    let return_new = cmd.get_bool("new").unwrap_or(false);
    let upsert = cmd.get_bool("upsert").unwrap_or(false);
    writable(ctx).await?;
    let env = query::expr::Env::default();
    let (result, appended) = run_statement(ctx, 0, |st, now, target| {
        let txn = match target {
            Target::Txn(t) => Some(t),
            Target::Oplog => None,
        };
        let date = date(shared, now);
        let (ops, result) = {
            let catalog = catalog_of(st, m, txn);
            let mut found = matching(st, m, catalog, &ns, &raw, &filter)?;
            found.sort_by(|a, b| sort.order(&a.0, &b.0));
            let mut result = StmtResult::default();
            let mut ops = Vec::new();
            match (found.into_iter().next(), &update) {
                (Some((old, _)), None) => {
                    ops.push(Op::Delete {
                        ns: ns.clone(),
                        id: old.get("_id").cloned().unwrap_or(Bson::Null),
                    });
                    result.n = 1;
                    result.value = Some(projection.apply(&old, None, &env)?);
                }
                (Some((old, pos)), Some(u)) => {
                    let new = updated(
                        catalog,
                        &ns,
                        &old,
                        u,
                        update_context(st, date, now, false, pos),
                    )?;
                    if new != old {
                        ops.push(Op::Update {
                            ns: ns.clone(),
                            id: old.get("_id").cloned().unwrap_or(Bson::Null),
                            doc: new.clone(),
                        });
                        result.n_modified = 1;
                    }
                    result.n = 1;
                    let shown = if return_new { new } else { old };
                    result.value = Some(projection.apply(&shown, None, &env)?);
                }
                (None, Some(u)) if upsert => {
                    let doc = upserted(
                        catalog,
                        &ns,
                        &raw,
                        u,
                        update_context(st, date, now, true, None),
                    )?;
                    result.n = 1;
                    result.upserted = doc.get("_id").cloned();
                    if return_new {
                        result.value = Some(projection.apply(&doc, None, &env)?);
                    }
                    ops.push(Op::Insert {
                        ns: ns.clone(),
                        doc,
                    });
                }
                (None, _) => {}
            }
            (ops, result)
        };
        let tag = if txn.is_some() {
            None
        } else {
            txn_tag(ctx.session.as_ref(), 0, result.clone())
        };
        let appended = if ops.is_empty() && tag.is_none() {
            None
        } else {
            commit_ops(st, m, now, target, ops, tag)?
        };
        Ok((
            result,
            appended.or_else(|| Some(st.members[m].last_optime())),
        ))
    })
    .await?;
    shared.notify();
    let mut last_error = doc! {"n": i32::try_from(result.n).unwrap_or(i32::MAX)};
    if !remove {
        last_error.insert("updatedExisting", result.n > 0 && result.upserted.is_none());
        if let Some(id) = &result.upserted {
            last_error.insert("upserted", id.clone());
        }
    }
    let mut reply = doc! {
        "lastErrorObject": last_error,
        "value": result.value.map_or(Bson::Null, Bson::Document),
    };
    if ctx.txn.is_none() {
        let target = appended.unwrap_or_else(|| shared.lock().members[m].last_optime());
        if let Some((wce, labels)) = wait_for_write_concern(shared, m, target, cmd).await {
            reply.insert("writeConcernError", wce);
            if !labels.is_empty() {
                reply.insert("errorLabels", labels);
            }
        }
    }
    reply.insert("ok", 1.0);
    Ok(reply)
}

/// Applies catalog changes (`create`, `createIndexes`, …) through the oplog and waits for the
/// write concern.
pub(super) async fn catalog_write(
    ctx: &Ctx<'_>,
    ops: Vec<Op>,
) -> Result<Option<Document>, CommandError> {
    let (shared, m) = (ctx.shared, ctx.m);
    writable(ctx).await?;
    let target = {
        let now = shared.clock.now();
        let mut st = shared.lock();
        still_primary(ctx, &st)?;
        st.append(m, now, ops, None)
    };
    shared.notify();
    Ok(wait_for_write_concern(shared, m, target, ctx.cmd)
        .await
        .map(|(wce, _)| wce))
}
