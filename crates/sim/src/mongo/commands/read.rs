//! Reads: `find`, `aggregate`, `count`, `distinct`, cursors; the read preference, causal
//! reads (`afterClusterTime`), a transaction's snapshot, and the replica set's own `local`
//! collections (`system.replset`, `oplog.rs`).

use super::*;
use crate::mongo::catalog::split_ns;
use crate::mongo::query::expr::Env;
use crate::mongo::query::{Filter, Pipeline, Projection, Sort};

pub(super) fn namespace(cmd: &Document, name: &str) -> Result<String, CommandError> {
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

/// Waits until member `m` has applied the `afterClusterTime` of the read concern, so a causally
/// consistent session reads its own writes on a secondary.
pub(super) async fn wait_for_read_concern(ctx: &Ctx<'_>) -> Result<(), CommandError> {
    let Ok(rc) = ctx.cmd.get_document("readConcern") else {
        return Ok(());
    };
    // `atClusterTime` (a read at a past time) would need history the server does not keep.
    check_fields(
        rc,
        "readConcern",
        &["level", "afterClusterTime", "atClusterTime", "provenance"],
        false,
        false,
    )?;
    if let Ok(level) = rc.get_str("level")
        && !matches!(
            level,
            "local" | "majority" | "available" | "snapshot" | "linearizable"
        )
    {
        return Err(CommandError::bad_value(format!(
            "Enumeration value '{level}' for field 'readConcern.level' is not a valid value."
        )));
    }
    if let Ok(at) = rc.get_timestamp("atClusterTime") {
        if rc.get_str("level") != Ok("snapshot") || ctx.txn.is_some() {
            return Err(CommandError::new(
                72,
                "InvalidOptions",
                "atClusterTime is only allowed with readConcern level snapshot outside transactions",
            ));
        }
        // A snapshot at a time a majority does not hold yet: wait until it does.
        let m = ctx.m;
        let deadline = ctx.shared.clock.now().plus(MAX_WAIT);
        let reached = ctx
            .shared
            .wait_for(deadline, |st, _| {
                let c = st.committed_ts(m);
                ((c.time, c.increment) >= (at.time, at.increment)).then_some(())
            })
            .await;
        if reached.is_none() {
            return Err(CommandError::new(
                246,
                "SnapshotUnavailable",
                "the read concern's atClusterTime is ahead of the majority commit point",
            ));
        }
    }
    let Ok(after) = rc.get_timestamp("afterClusterTime") else {
        return Ok(());
    };
    let wait = number(ctx.cmd.get("maxTimeMS")).map_or(MAX_WAIT, |ms| {
        Duration::from_millis(ms.max(0.0) as u64).min(MAX_WAIT)
    });
    let deadline = ctx.shared.clock.now().plus(wait);
    let m = ctx.m;
    let reached = ctx
        .shared
        .wait_for(deadline, |st, _| {
            let ts = st.members[m].last_ts();
            ((ts.time, ts.increment) >= (after.time, after.increment)).then_some(())
        })
        .await;
    reached
        .ok_or_else(|| CommandError::new(50, "MaxTimeMSExpired", "operation exceeded time limit"))
}

/// The documents of `ns` the command sees, in natural order: the replica set's `local`
/// collections, the transaction's snapshot, or the member's data.
pub(super) fn scan(st: &SetState, m: usize, catalog: &Catalog, ns: &str) -> Vec<Document> {
    match ns {
        "local.system.replset" => vec![admin::config_document(st)],
        "local.oplog.rs" => oplog_documents(st, m),
        _ => catalog
            .get(ns)
            .map(|c| c.iter().cloned().collect())
            .unwrap_or_default(),
    }
}

/// Member `m`'s oplog as `local.oplog.rs` shows it.
fn oplog_documents(st: &SetState, m: usize) -> Vec<Document> {
    st.members[m]
        .oplog
        .iter()
        .flat_map(|e| {
            let (ts, t) = (e.ts, e.optime.term);
            e.ops.iter().map(move |op| {
                let (code, ns, o) = op.oplog_fields();
                doc! {"ts": ts, "t": t, "v": 2_i64, "op": code, "ns": ns, "o": o}
            })
        })
        .collect()
}

/// The documents of `ns` matching `filter`, each with the array position the filter matched.
pub(super) fn matching(
    st: &SetState,
    m: usize,
    catalog: &Catalog,
    ns: &str,
    raw: &Document,
    filter: &Filter,
) -> Result<Vec<(Document, Option<usize>)>, CommandError> {
    // Equality on _id alone (updates and deletes by key) is a lookup, not a scan.
    if raw.len() == 1
        && let Some(id) = raw.get("_id")
        && !matches!(id, Bson::Document(d) if d.keys().any(|k| k.starts_with('$')))
        && !matches!(id, Bson::RegularExpression(_) | Bson::Array(_))
        && !ns.starts_with("local.")
    {
        return Ok(catalog
            .get(ns)
            .and_then(|c| c.get(id))
            .map(|d| (d.clone(), None))
            .into_iter()
            .collect());
    }
    let mut out = Vec::new();
    for d in scan(st, m, catalog, ns) {
        let mut pos = None;
        if filter.matches_at(&d, &mut pos)? {
            out.push((d, pos));
        }
    }
    Ok(out)
}

/// Names the cluster time a snapshot read read at, so the session reads there again.
fn with_snapshot_time(mut reply: Document, at: Option<bson::Timestamp>) -> Document {
    if let (Some(at), Ok(cursor)) = (at, reply.get_document_mut("cursor")) {
        cursor.insert("atClusterTime", at);
    }
    reply
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

fn env(shared: &Shared) -> Env {
    Env::new(Some(date(shared, shared.clock.now())))
}

pub(super) async fn find(ctx: &Ctx<'_>) -> Result<Document, CommandError> {
    let (shared, m, cmd) = (ctx.shared, ctx.m, ctx.cmd);
    let ns = namespace(cmd, "find")?;
    let raw = cmd.get_document("filter").cloned().unwrap_or_default();
    let filter = Filter::parse(&raw)?;
    let sort = Sort::parse(&cmd.get_document("sort").cloned().unwrap_or_default())?;
    let projection = Projection::parse(
        &cmd.get_document("projection").cloned().unwrap_or_default(),
        true,
    )?;
    wait_for_read_concern(ctx).await?;
    let (mut docs, at) = {
        let st = shared.lock();
        check_readable(&st, m, cmd, ctx.kind)?;
        let docs = matching(&st, m, &read_view(&st, m, ctx), &ns, &raw, &filter)?;
        (docs, snapshot_time(&st, m, ctx))
    };
    let natural_hint = cmd
        .get_document("hint")
        .ok()
        .and_then(|h| h.get("$natural"))
        .and_then(|v| number(Some(v)));
    if sort.natural_reversed() || natural_hint.is_some_and(|n| n < 0.0) {
        docs.reverse();
    }
    docs.sort_by(|a, b| sort.order(&a.0, &b.0));
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
    let scope = env(shared);
    let mut out = VecDeque::new();
    for (d, pos) in docs.into_iter().skip(skip).take(limit) {
        out.push_back(projection.apply(&d, pos, &scope)?);
    }
    let batch = number(cmd.get("batchSize")).map_or(DEFAULT_BATCH_SIZE, |b| b.max(0.0) as usize);
    Ok(with_snapshot_time(
        cursor_reply(shared, m, ns, out, batch, single),
        at,
    ))
}

pub(super) async fn aggregate(ctx: &Ctx<'_>) -> Result<Document, CommandError> {
    let (shared, m, cmd) = (ctx.shared, ctx.m, ctx.cmd);
    let ns = namespace(cmd, "aggregate")?;
    let stages = cmd.get_array("pipeline").cloned().unwrap_or_default();
    let pipeline = Pipeline::parse(&stages)?;
    if !cmd.contains_key("cursor") {
        return Err(CommandError::failed_to_parse(
            "The 'cursor' option is required, except for aggregate with the explain argument",
        ));
    }
    wait_for_read_concern(ctx).await?;
    let (db, _) = split_ns(&ns);
    let (docs, snapshot, local, at) = {
        let st = shared.lock();
        check_readable(&st, m, cmd, ctx.kind)?;
        let view = read_view(&st, m, ctx);
        let catalog: &Catalog = &view;
        let docs = match pipeline.coll_stats() {
            Some(spec) => vec![catalog::coll_stats_document(
                shared, &st, m, catalog, &ns, spec,
            )],
            None => scan(&st, m, catalog, &ns),
        };
        // The replica set's own collections, for a `$lookup` inside `local` only.
        let local = (db == "local").then(|| (admin::config_document(&st), oplog_documents(&st, m)));
        (docs, catalog.clone(), local, snapshot_time(&st, m, ctx))
    };
    let collections = |name: &str| -> Result<Vec<Document>, CommandError> {
        let foreign = format!("{db}.{name}");
        Ok(match foreign.as_str() {
            "local.system.replset" => local
                .as_ref()
                .map(|l| vec![l.0.clone()])
                .unwrap_or_default(),
            "local.oplog.rs" => local.as_ref().map(|l| l.1.clone()).unwrap_or_default(),
            _ => snapshot
                .get(&foreign)
                .map(|c| c.iter().cloned().collect())
                .unwrap_or_default(),
        })
    };
    let out = pipeline.run(docs, &env(shared), &collections)?;
    let batch = cmd
        .get_document("cursor")
        .ok()
        .and_then(|c| number(c.get("batchSize")))
        .map_or(DEFAULT_BATCH_SIZE, |b| b.max(0.0) as usize);
    Ok(with_snapshot_time(
        cursor_reply(shared, m, ns, out.into(), batch, false),
        at,
    ))
}

pub(super) async fn count(ctx: &Ctx<'_>) -> Result<Document, CommandError> {
    let (shared, m, cmd) = (ctx.shared, ctx.m, ctx.cmd);
    let ns = namespace(cmd, "count")?;
    let raw = cmd.get_document("query").cloned().unwrap_or_default();
    let filter = Filter::parse(&raw)?;
    wait_for_read_concern(ctx).await?;
    let st = shared.lock();
    check_readable(&st, m, cmd, ctx.kind)?;
    let n = matching(&st, m, &read_view(&st, m, ctx), &ns, &raw, &filter)?.len();
    let skip = number(cmd.get("skip")).unwrap_or(0.0).max(0.0) as usize;
    let limit = number(cmd.get("limit")).unwrap_or(0.0).abs() as usize;
    let mut n = n.saturating_sub(skip);
    if limit > 0 {
        n = n.min(limit);
    }
    Ok(doc! {"n": i32::try_from(n).unwrap_or(i32::MAX), "ok": 1.0})
}

pub(super) async fn distinct(ctx: &Ctx<'_>) -> Result<Document, CommandError> {
    let (shared, m, cmd) = (ctx.shared, ctx.m, ctx.cmd);
    let ns = namespace(cmd, "distinct")?;
    let Ok(key) = cmd.get_str("key") else {
        return Err(CommandError::new(
            40414,
            "Location40414",
            "BSON field 'distinct.key' is missing but a required field",
        ));
    };
    let raw = cmd.get_document("query").cloned().unwrap_or_default();
    let filter = Filter::parse(&raw)?;
    wait_for_read_concern(ctx).await?;
    let (docs, at) = {
        let st = shared.lock();
        check_readable(&st, m, cmd, ctx.kind)?;
        let docs = matching(&st, m, &read_view(&st, m, ctx), &ns, &raw, &filter)?;
        (docs, snapshot_time(&st, m, ctx))
    };
    let mut values: Vec<Bson> = Vec::new();
    for (d, _) in &docs {
        for c in crate::mongo::query::path::candidates(d, key, false) {
            let found: Vec<Bson> = match c.value {
                Some(Bson::Array(items)) => items.clone(),
                Some(v) => vec![v.clone()],
                None => Vec::new(),
            };
            for v in found {
                if !values.iter().any(|x| query::value::equal(x, &v)) {
                    values.push(v);
                }
            }
        }
    }
    let mut reply = doc! {"values": values};
    if let Some(at) = at {
        reply.insert("atClusterTime", at);
    }
    reply.insert("ok", 1.0);
    Ok(reply)
}

pub(super) fn get_more(shared: &Shared, cmd: &Document) -> Result<Document, CommandError> {
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

pub(super) fn kill_cursors(shared: &Shared, cmd: &Document) -> Document {
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
