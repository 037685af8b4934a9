//! Reads: `find`, `aggregate`, `count`, cursors and catalog listings.

use super::*;

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

pub(super) fn filtered(
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

pub(super) fn find(
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

pub(super) fn aggregate(
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

pub(super) fn count(
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
    Ok(doc! {"n": i32::try_from(n).unwrap_or(i32::MAX), "ok": 1.0})
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

pub(super) fn list_collections(shared: &Shared, m: usize, cmd: &Document) -> Document {
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

pub(super) fn list_databases(shared: &Shared, m: usize) -> Document {
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
