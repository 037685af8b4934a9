//! The catalog: collections (`create`, `drop`, `listCollections`, `renameCollection`),
//! databases (`listDatabases`, `dropDatabase`), indexes (`createIndexes`, `listIndexes`,
//! `dropIndexes`) and statistics (`dbStats`, `collStats`, the `$collStats` stage).

use super::read::namespace;
use super::*;
use crate::mongo::catalog::{Index, check_index_build, split_ns};
use crate::mongo::query::Filter;
use crate::mongo::query::value::{as_f64, is_number, shell_doc};
use crate::mongo::refuse::Unsupported;

fn db_of(cmd: &Document) -> String {
    cmd.get_str("$db").unwrap_or("test").to_owned()
}

fn ns_not_found(msg: String) -> CommandError {
    CommandError::new(26, "NamespaceNotFound", msg)
}

fn ok_with(wce: Option<Document>, mut reply: Document) -> Document {
    if let Some(wce) = wce {
        reply.insert("writeConcernError", wce);
    }
    reply.insert("ok", 1.0);
    reply
}

pub(super) async fn create(ctx: &Ctx<'_>) -> Result<Document, CommandError> {
    let ns = namespace(ctx.cmd, "create")?;
    if ctx.shared.lock().members[ctx.m]
        .store
        .collections
        .contains_key(&ns)
    {
        return Err(CommandError::new(
            48,
            "NamespaceExists",
            format!("Collection {ns} already exists."),
        ));
    }
    let wce = write::catalog_write(ctx, vec![Op::CreateCollection { ns }]).await?;
    Ok(ok_with(wce, doc! {}))
}

pub(super) async fn drop(ctx: &Ctx<'_>) -> Result<Document, CommandError> {
    let ns = namespace(ctx.cmd, "drop")?;
    let indexes = ctx.shared.lock().members[ctx.m]
        .store
        .collections
        .get(&ns)
        .map(|c| c.indexes.len() + 1);
    let Some(indexes) = indexes else {
        return Err(ns_not_found("ns not found".into()));
    };
    let wce = write::catalog_write(ctx, vec![Op::DropCollection { ns: ns.clone() }]).await?;
    Ok(ok_with(
        wce,
        doc! {"ns": ns, "nIndexesWas": i32::try_from(indexes).unwrap_or(i32::MAX)},
    ))
}

/// The collections of `db` as `listCollections` describes them, the replica set's own
/// collections included for `local`.
fn collection_infos(st: &SetState, m: usize, db: &str) -> Vec<Document> {
    let prefix = format!("{db}.");
    let mut names: Vec<String> = st.members[m]
        .store
        .collections
        .keys()
        .filter_map(|ns| ns.strip_prefix(&prefix).map(str::to_owned))
        .collect();
    if db == "local" {
        names.extend(["system.replset".to_owned(), "oplog.rs".to_owned()]);
    }
    names.sort();
    names.dedup();
    names
        .into_iter()
        .map(|name| {
            let options = if name == "oplog.rs" {
                doc! {"capped": true, "size": 1_038_090_240_i64}
            } else {
                doc! {}
            };
            doc! {
                "name": name,
                "type": "collection",
                "options": options,
                "info": {"readOnly": false},
                "idIndex": Index::id(),
            }
        })
        .collect()
}

pub(super) fn list_collections(ctx: &Ctx<'_>) -> Result<Document, CommandError> {
    let db = db_of(ctx.cmd);
    let filter = Filter::parse(&ctx.cmd.get_document("filter").cloned().unwrap_or_default())?;
    let name_only = ctx.cmd.get_bool("nameOnly").unwrap_or(false);
    let infos = collection_infos(&ctx.shared.lock(), ctx.m, &db);
    let mut batch = Vec::new();
    for info in infos {
        if !filter.matches(&info)? {
            continue;
        }
        batch.push(if name_only {
            doc! {"name": info.get_str("name").unwrap_or_default(), "type": "collection"}
        } else {
            info
        });
    }
    Ok(
        doc! {"cursor": {"firstBatch": batch, "id": 0_i64, "ns": format!("{db}.$cmd.listCollections")}, "ok": 1.0},
    )
}

pub(super) fn list_databases(ctx: &Ctx<'_>) -> Result<Document, CommandError> {
    let filter = Filter::parse(&ctx.cmd.get_document("filter").cloned().unwrap_or_default())?;
    let name_only = ctx.cmd.get_bool("nameOnly").unwrap_or(false);
    let st = ctx.shared.lock();
    let mut sizes: Vec<(String, i64)> = Vec::new();
    for (ns, c) in &st.members[ctx.m].store.collections {
        let (db, _) = split_ns(ns);
        match sizes.iter_mut().find(|(d, _)| d == db) {
            Some((_, s)) => *s += c.data_size(),
            None => sizes.push((db.to_owned(), c.data_size())),
        }
    }
    if !sizes.iter().any(|(d, _)| d == "local") {
        sizes.push(("local".to_owned(), 0));
    }
    sizes.sort();
    let mut list = Vec::new();
    let mut total = 0;
    for (name, size) in sizes {
        let d = doc! {"name": &name, "sizeOnDisk": size, "empty": false};
        if !filter.matches(&d)? {
            continue;
        }
        total += size;
        list.push(if name_only {
            doc! {"name": name}
        } else {
            d
        });
    }
    let mut reply = doc! {"databases": list};
    if !name_only {
        reply.insert("totalSize", total);
        reply.insert("totalSizeMb", total / (1024 * 1024));
    }
    reply.insert("ok", 1.0);
    Ok(reply)
}

/// The default name of an index: its fields and directions joined (`a_1_b_-1`).
fn default_name(key: &Document) -> String {
    key.iter()
        .map(|(k, v)| {
            format!(
                "{k}_{}",
                match v {
                    Bson::Int32(i) => i.to_string(),
                    Bson::Int64(i) => i.to_string(),
                    Bson::Double(d) => d.to_string(),
                    Bson::String(s) => s.clone(),
                    other => other.to_string(),
                }
            )
        })
        .collect::<Vec<_>>()
        .join("_")
}

/// Parses one index specification, refusing what this server would not enforce.
fn parse_index(spec: &Document) -> Result<Index, CommandError> {
    let printed = shell_doc(spec);
    for k in spec.keys() {
        if !matches!(
            k.as_str(),
            "key" | "name" | "unique" | "sparse" | "v" | "background" | "ns"
        ) {
            return Err(Unsupported::IndexOption(k, &printed).error());
        }
    }
    let Ok(key) = spec.get_document("key") else {
        return Err(CommandError::failed_to_parse(format!(
            "The 'key' field is a required property of an index specification: {printed}"
        )));
    };
    if key.is_empty() {
        return Err(CommandError::new(
            67,
            "CannotCreateIndex",
            "Index keys cannot be empty.",
        ));
    }
    for (field, dir) in key {
        match dir {
            Bson::String(plugin) => return Err(Unsupported::IndexType(plugin).error()),
            n if is_number(n) && as_f64(n) != Some(0.0) => {}
            other => {
                return Err(CommandError::new(
                    67,
                    "CannotCreateIndex",
                    format!(
                        "Values in v:2 index key pattern cannot be of type {} (field {field})",
                        query::value::type_name(other)
                    ),
                ));
            }
        }
    }
    Ok(Index {
        name: spec
            .get_str("name")
            .map_or_else(|_| default_name(key), str::to_owned),
        key: key.clone(),
        unique: spec.get_bool("unique").unwrap_or(false),
        sparse: spec.get_bool("sparse").unwrap_or(false),
    })
}

pub(super) async fn create_indexes(ctx: &Ctx<'_>) -> Result<Document, CommandError> {
    let ns = namespace(ctx.cmd, "createIndexes")?;
    let Ok(specs) = ctx.cmd.get_array("indexes") else {
        return Err(CommandError::new(
            40414,
            "Location40414",
            "BSON field 'createIndexes.indexes' is missing but a required field",
        ));
    };
    let mut wanted = Vec::new();
    for s in specs {
        let Bson::Document(d) = s else {
            return Err(CommandError::type_mismatch(
                "each index specification must be an object",
            ));
        };
        wanted.push(parse_index(d)?);
    }
    let (before, created_collection, new) = {
        let st = ctx.shared.lock();
        let coll = st.members[ctx.m].store.collections.get(&ns);
        let existing: Vec<Index> = coll.map(|c| c.indexes.clone()).unwrap_or_default();
        let mut new: Vec<Index> = Vec::new();
        for w in wanted {
            if w.name == "_id_" || w.key == doc! {"_id": 1} {
                continue;
            }
            if let Some(e) = existing.iter().chain(&new).find(|e| e.name == w.name) {
                if e.key != w.key {
                    return Err(CommandError::new(
                        86,
                        "IndexKeySpecsConflict",
                        format!(
                            "An existing index has the same name as the requested index. When index names are not specified, they are auto generated and can cause conflicts. Please refer to our documentation. Requested index: {}, existing index: {}",
                            shell_doc(&w.spec()),
                            shell_doc(&e.spec())
                        ),
                    ));
                }
                if e.unique != w.unique || e.sparse != w.sparse {
                    return Err(CommandError::new(
                        85,
                        "IndexOptionsConflict",
                        format!(
                            "An equivalent index already exists with the same name but different options. Requested index: {}, existing index: {}",
                            shell_doc(&w.spec()),
                            shell_doc(&e.spec())
                        ),
                    ));
                }
                continue;
            }
            if let Some(e) = existing.iter().chain(&new).find(|e| e.key == w.key) {
                return Err(CommandError::new(
                    85,
                    "IndexOptionsConflict",
                    format!("Index already exists with a different name: {}", e.name),
                ));
            }
            if let Some(c) = coll {
                check_index_build(c, &ns, &w)?;
            }
            new.push(w);
        }
        (existing.len() + 1, coll.is_none(), new)
    };
    let after = before + new.len();
    let note = new.is_empty();
    let wce = if note && !created_collection {
        None
    } else {
        let mut ops = Vec::new();
        if created_collection {
            ops.push(Op::CreateCollection { ns: ns.clone() });
        }
        ops.push(Op::CreateIndexes { ns, indexes: new });
        write::catalog_write(ctx, ops).await?
    };
    let mut reply = doc! {
        "numIndexesBefore": i32::try_from(before).unwrap_or(i32::MAX),
        "numIndexesAfter": i32::try_from(after).unwrap_or(i32::MAX),
        "createdCollectionAutomatically": created_collection,
    };
    if note {
        reply.insert("note", "all indexes already exist");
    } else {
        reply.insert("commitQuorum", "votingMembers");
    }
    Ok(ok_with(wce, reply))
}

pub(super) fn list_indexes(ctx: &Ctx<'_>) -> Result<Document, CommandError> {
    let ns = namespace(ctx.cmd, "listIndexes")?;
    let st = ctx.shared.lock();
    let Some(coll) = st.members[ctx.m].store.collections.get(&ns) else {
        return Err(ns_not_found(format!("ns does not exist: {ns}")));
    };
    let mut batch = vec![Index::id()];
    batch.extend(coll.indexes.iter().map(Index::spec));
    Ok(
        doc! {"cursor": {"firstBatch": batch, "id": 0_i64, "ns": format!("{ns}.$cmd.listIndexes")}, "ok": 1.0},
    )
}

pub(super) async fn drop_indexes(ctx: &Ctx<'_>) -> Result<Document, CommandError> {
    let ns = namespace(ctx.cmd, "dropIndexes")?;
    let (was, names) = {
        let st = ctx.shared.lock();
        let Some(coll) = st.members[ctx.m].store.collections.get(&ns) else {
            return Err(ns_not_found(format!("ns not found {ns}")));
        };
        let not_found = |what: String| CommandError::new(27, "IndexNotFound", what);
        let cannot_drop_id = || CommandError::new(72, "InvalidOptions", "cannot drop _id index");
        let names: Vec<String> = match ctx.cmd.get("index") {
            Some(Bson::String(s)) if s == "*" => {
                coll.indexes.iter().map(|i| i.name.clone()).collect()
            }
            Some(Bson::String(s)) if s == "_id_" => return Err(cannot_drop_id()),
            Some(Bson::String(s)) => match coll.index(s) {
                Some(i) => vec![i.name.clone()],
                None => return Err(not_found(format!("index not found with name [{s}]"))),
            },
            Some(Bson::Array(items)) => {
                let mut out = Vec::new();
                for i in items {
                    let Some(name) = i.as_str() else {
                        return Err(CommandError::type_mismatch("index names must be strings"));
                    };
                    if name == "_id_" {
                        return Err(cannot_drop_id());
                    }
                    if coll.index(name).is_none() {
                        return Err(not_found(format!("index not found with name [{name}]")));
                    }
                    out.push(name.to_owned());
                }
                out
            }
            Some(Bson::Document(key)) => {
                if key == &doc! {"_id": 1} {
                    return Err(cannot_drop_id());
                }
                match coll.indexes.iter().find(|i| &i.key == key) {
                    Some(i) => vec![i.name.clone()],
                    None => {
                        return Err(not_found(format!(
                            "can't find index with key: {}",
                            shell_doc(key)
                        )));
                    }
                }
            }
            _ => {
                return Err(CommandError::new(
                    40414,
                    "Location40414",
                    "BSON field 'dropIndexes.index' is missing but a required field",
                ));
            }
        };
        (coll.indexes.len() + 1, names)
    };
    let wce = write::catalog_write(ctx, vec![Op::DropIndexes { ns, names }]).await?;
    Ok(ok_with(
        wce,
        doc! {"nIndexesWas": i32::try_from(was).unwrap_or(i32::MAX)},
    ))
}

pub(super) async fn rename_collection(ctx: &Ctx<'_>) -> Result<Document, CommandError> {
    let (Ok(from), Ok(to)) = (ctx.cmd.get_str("renameCollection"), ctx.cmd.get_str("to")) else {
        return Err(CommandError::type_mismatch(
            "renameCollection needs the source and target namespaces as strings",
        ));
    };
    if from == to {
        return Err(CommandError::new(
            20,
            "IllegalOperation",
            "Can't rename a collection to itself",
        ));
    }
    let drop_target = ctx.cmd.get_bool("dropTarget").unwrap_or(false);
    let (from_exists, to_exists) = {
        let st = ctx.shared.lock();
        let c = &st.members[ctx.m].store.collections;
        (c.contains_key(from), c.contains_key(to))
    };
    if !from_exists {
        return Err(ns_not_found(format!(
            "Source collection {from} does not exist"
        )));
    }
    if to_exists && !drop_target {
        return Err(CommandError::new(
            48,
            "NamespaceExists",
            "target namespace exists",
        ));
    }
    let mut ops = Vec::new();
    if to_exists {
        ops.push(Op::DropCollection { ns: to.to_owned() });
    }
    ops.push(Op::RenameCollection {
        from: from.to_owned(),
        to: to.to_owned(),
    });
    let wce = write::catalog_write(ctx, ops).await?;
    Ok(ok_with(wce, doc! {}))
}

pub(super) async fn drop_database(ctx: &Ctx<'_>) -> Result<Document, CommandError> {
    let db = db_of(ctx.cmd);
    let wce = write::catalog_write(ctx, vec![Op::DropDatabase { db: db.clone() }]).await?;
    Ok(ok_with(wce, doc! {"dropped": db}))
}

/// The storage statistics of one collection, as `collStats` and `$collStats` give them.
fn storage_stats(catalog: &Catalog, ns: &str, scale: i64) -> Document {
    let scale = scale.max(1);
    let (count, size, indexes) = catalog.get(ns).map_or((0, 0, Vec::new()), |c| {
        let mut names = vec!["_id_".to_owned()];
        names.extend(c.indexes.iter().map(|i| i.name.clone()));
        (c.len() as i64, c.data_size(), names)
    });
    let per_index = 4096_i64;
    let mut index_sizes = Document::new();
    for n in &indexes {
        index_sizes.insert(n.clone(), per_index / scale);
    }
    let total_index = per_index * indexes.len() as i64;
    let mut d = doc! {
        "ns": ns,
        "size": size / scale,
        "count": count,
        "storageSize": size / scale,
        "freeStorageSize": 0_i64,
        "capped": ns == "local.oplog.rs",
        "nindexes": i32::try_from(indexes.len()).unwrap_or(i32::MAX),
        "indexBuilds": [],
        "totalIndexSize": total_index / scale,
        "totalSize": (size + total_index) / scale,
        "indexSizes": index_sizes,
        "scaleFactor": scale,
    };
    if count > 0 {
        d.insert("avgObjSize", size / count);
    }
    if ns == "local.oplog.rs" {
        d.insert("maxSize", 1_038_090_240_i64 / scale);
    }
    d
}

pub(super) fn coll_stats_command(ctx: &Ctx<'_>) -> Result<Document, CommandError> {
    let ns = namespace(ctx.cmd, "collStats")?;
    let scale = number(ctx.cmd.get("scale")).map_or(1, |s| s as i64);
    let st = ctx.shared.lock();
    let mut d = storage_stats(&st.members[ctx.m].store.collections, &ns, scale);
    d.insert("ok", 1.0);
    Ok(d)
}

/// The one document a `$collStats` stage starts from.
pub(super) fn coll_stats_document(
    shared: &Shared,
    st: &SetState,
    m: usize,
    catalog: &Catalog,
    ns: &str,
    spec: &Document,
) -> Document {
    let mut d = doc! {
        "ns": ns,
        "host": st.host(m),
        "localTime": date(shared, shared.clock.now()),
    };
    if let Ok(storage) = spec.get_document("storageStats") {
        let scale = number(storage.get("scale")).map_or(1, |s| s as i64);
        d.insert("storageStats", storage_stats(catalog, ns, scale));
    }
    if spec.contains_key("count") {
        let n = catalog.get(ns).map_or(0, |c| c.len() as i64);
        d.insert("count", n);
    }
    d
}

pub(super) fn db_stats(ctx: &Ctx<'_>) -> Document {
    let db = db_of(ctx.cmd);
    let scale = number(ctx.cmd.get("scale")).map_or(1, |s| (s as i64).max(1));
    let prefix = format!("{db}.");
    let st = ctx.shared.lock();
    let (mut collections, mut objects, mut data, mut indexes) = (0_i64, 0_i64, 0_i64, 0_i64);
    for (ns, c) in &st.members[ctx.m].store.collections {
        if ns.starts_with(&prefix) {
            collections += 1;
            objects += c.len() as i64;
            data += c.data_size();
            indexes += c.indexes.len() as i64 + 1;
        }
    }
    let index_size = indexes * 4096;
    doc! {
        "db": &db,
        "collections": collections,
        "views": 0_i64,
        "objects": objects,
        "avgObjSize": if objects > 0 { data as f64 / objects as f64 } else { 0.0 },
        "dataSize": data as f64 / scale as f64,
        "storageSize": data as f64 / scale as f64,
        "indexes": indexes,
        "indexSize": index_size as f64 / scale as f64,
        "totalSize": (data + index_size) as f64 / scale as f64,
        "scaleFactor": scale,
        "fsUsedSize": 0.0,
        "fsTotalSize": 0.0,
        "ok": 1.0,
    }
}
