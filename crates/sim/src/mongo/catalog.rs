//! A member's data: collections (created explicitly or by a first write), their documents in
//! natural order, their indexes, and the changes that replicate through the oplog. Collections
//! are shared copy-on-write, so a transaction's snapshot is a cheap copy of the map.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use bson::{Bson, Document, doc};

use super::error::CommandError;
use super::query::path::candidates;
use super::query::value::{compare, shell_doc};

/// Every collection of a member, by namespace (`db.coll`).
pub(crate) type Catalog = HashMap<String, Arc<Collection>>;

/// A canonical byte key of an `_id` value.
pub(crate) fn id_key(id: &Bson) -> Vec<u8> {
    let mut d = Document::new();
    d.insert("", id.clone());
    bson::to_vec(&d).unwrap_or_default()
}

/// One secondary index (the `_id` index is implicit and always first).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Index {
    pub name: String,
    pub key: Document,
    pub unique: bool,
    pub sparse: bool,
}

impl Index {
    /// The specification `listIndexes` shows.
    pub(crate) fn spec(&self) -> Document {
        let mut d = doc! {"v": 2, "key": self.key.clone(), "name": &self.name};
        if self.unique {
            d.insert("unique", true);
        }
        if self.sparse {
            d.insert("sparse", true);
        }
        d
    }

    /// The `_id` index.
    pub(crate) fn id() -> Document {
        doc! {"v": 2, "key": {"_id": 1}, "name": "_id_"}
    }
}

/// The documents of one collection in natural (insertion) order, and its indexes.
#[derive(Debug, Clone, Default)]
pub(crate) struct Collection {
    docs: BTreeMap<u64, Document>,
    by_id: HashMap<Vec<u8>, u64>,
    next: u64,
    /// The oplog sequence number of the last write to each `_id` (kept after a delete), so a
    /// transaction can tell a document changed after its snapshot.
    versions: HashMap<Vec<u8>, u64>,
    /// Secondary indexes, in creation order.
    pub indexes: Vec<Index>,
}

impl Collection {
    pub(crate) fn get(&self, id: &Bson) -> Option<&Document> {
        self.by_id
            .get(&id_key(id))
            .and_then(|slot| self.docs.get(slot))
    }

    pub(crate) fn iter(&self) -> impl DoubleEndedIterator<Item = &Document> {
        self.docs.values()
    }

    pub(crate) fn len(&self) -> usize {
        self.docs.len()
    }

    /// The sequence number of the last write to `id`, if any.
    pub(crate) fn version(&self, id: &Bson) -> Option<u64> {
        self.versions.get(&id_key(id)).copied()
    }

    /// The BSON size of every document.
    pub(crate) fn data_size(&self) -> i64 {
        self.docs
            .values()
            .map(|d| bson::to_vec(d).map_or(0, |b| b.len() as i64))
            .sum()
    }

    fn upsert(&mut self, id: &Bson, doc: Document, seq: u64) {
        let key = id_key(id);
        if let Some(slot) = self.by_id.get(&key) {
            self.docs.insert(*slot, doc);
        } else {
            let slot = self.next;
            self.next += 1;
            self.by_id.insert(key.clone(), slot);
            self.docs.insert(slot, doc);
        }
        self.versions.insert(key, seq);
    }

    fn remove(&mut self, id: &Bson, seq: u64) {
        let key = id_key(id);
        if let Some(slot) = self.by_id.remove(&key) {
            self.docs.remove(&slot);
        }
        self.versions.insert(key, seq);
    }

    /// The index named `name`.
    pub(crate) fn index(&self, name: &str) -> Option<&Index> {
        self.indexes.iter().find(|i| i.name == name)
    }
}

/// One change to the data, as the oplog carries it.
#[derive(Debug, Clone)]
pub(crate) enum Op {
    Insert { ns: String, doc: Document },
    Update { ns: String, id: Bson, doc: Document },
    Delete { ns: String, id: Bson },
    CreateCollection { ns: String },
    DropCollection { ns: String },
    CreateIndexes { ns: String, indexes: Vec<Index> },
    DropIndexes { ns: String, names: Vec<String> },
    RenameCollection { from: String, to: String },
    DropDatabase { db: String },
}

impl Op {
    /// How `local.oplog.rs` shows it: the op letter, the namespace and the `o` document.
    pub(crate) fn oplog_fields(&self) -> (&'static str, String, Document) {
        let cmd = |ns: &str, o: Document| ("c", format!("{}.$cmd", split_ns(ns).0), o);
        match self {
            Self::Insert { ns, doc } => ("i", ns.clone(), doc.clone()),
            Self::Update { ns, doc, .. } => ("u", ns.clone(), doc.clone()),
            Self::Delete { ns, id } => ("d", ns.clone(), doc! {"_id": id.clone()}),
            Self::CreateCollection { ns } => cmd(ns, doc! {"create": split_ns(ns).1}),
            Self::DropCollection { ns } => cmd(ns, doc! {"drop": split_ns(ns).1}),
            Self::CreateIndexes { ns, indexes } => cmd(
                ns,
                doc! {"createIndexes": split_ns(ns).1, "indexes": indexes.iter().map(Index::spec).collect::<Vec<_>>()},
            ),
            Self::DropIndexes { ns, names } => cmd(
                ns,
                doc! {"dropIndexes": split_ns(ns).1, "index": names.clone()},
            ),
            Self::RenameCollection { from, to } => {
                cmd(from, doc! {"renameCollection": from, "to": to})
            }
            Self::DropDatabase { db } => ("c", format!("{db}.$cmd"), doc! {"dropDatabase": 1}),
        }
    }

    /// The namespace a document change applies to.
    pub(crate) fn document(&self) -> Option<(&str, &Bson)> {
        match self {
            Self::Insert { ns, doc } => doc.get("_id").map(|id| (ns.as_str(), id)),
            Self::Update { ns, id, .. } | Self::Delete { ns, id } => Some((ns.as_str(), id)),
            _ => None,
        }
    }
}

/// Applies one change; `seq` is the oplog entry it belongs to.
pub(crate) fn apply(catalog: &mut Catalog, op: &Op, seq: u64) {
    fn coll<'a>(catalog: &'a mut Catalog, ns: &str) -> &'a mut Collection {
        Arc::make_mut(catalog.entry(ns.to_owned()).or_default())
    }
    match op {
        Op::Insert { ns, doc } => {
            let id = doc.get("_id").cloned().unwrap_or(Bson::Null);
            coll(catalog, ns).upsert(&id, doc.clone(), seq);
        }
        Op::Update { ns, id, doc } => coll(catalog, ns).upsert(id, doc.clone(), seq),
        Op::Delete { ns, id } => {
            if let Some(c) = catalog.get_mut(ns) {
                Arc::make_mut(c).remove(id, seq);
            }
        }
        Op::CreateCollection { ns } => {
            coll(catalog, ns);
        }
        Op::DropCollection { ns } => {
            catalog.remove(ns);
        }
        Op::CreateIndexes { ns, indexes } => {
            let c = coll(catalog, ns);
            for i in indexes {
                if c.index(&i.name).is_none() {
                    c.indexes.push(i.clone());
                }
            }
        }
        Op::DropIndexes { ns, names } => {
            if let Some(c) = catalog.get_mut(ns) {
                Arc::make_mut(c)
                    .indexes
                    .retain(|i| !names.contains(&i.name));
            }
        }
        Op::RenameCollection { from, to } => {
            if let Some(c) = catalog.remove(from) {
                catalog.insert(to.clone(), c);
            }
        }
        Op::DropDatabase { db } => {
            let prefix = format!("{db}.");
            catalog.retain(|ns, _| !ns.starts_with(&prefix));
        }
    }
}

/// The database and collection of a namespace.
pub(crate) fn split_ns(ns: &str) -> (&str, &str) {
    ns.split_once('.').unwrap_or((ns, ""))
}

/// The duplicate-key error the server gives, with `keyPattern` and `keyValue`.
pub(crate) fn duplicate_key(
    ns: &str,
    index: &str,
    pattern: &Document,
    value: Document,
) -> CommandError {
    CommandError::new(
        11000,
        "DuplicateKey",
        format!(
            "E11000 duplicate key error collection: {ns} index: {index} dup key: {}",
            shell_doc(&value)
        ),
    )
    .with_extra("keyPattern", pattern.clone())
    .with_extra("keyValue", value)
}

/// The keys `doc` has in an index with `pattern`: one per combination of array elements.
///
/// # Errors
///
/// 171 when two fields of a compound key are arrays.
pub(crate) fn index_keys(
    doc: &Document,
    pattern: &Document,
) -> Result<Option<Vec<Vec<Bson>>>, CommandError> {
    let mut per_field: Vec<Vec<Bson>> = Vec::new();
    let mut arrays: Vec<&str> = Vec::new();
    let mut present = false;
    for field in pattern.keys() {
        let mut values = Vec::new();
        let mut multikey = false;
        for c in candidates(doc, field, false) {
            match c.value {
                None => values.push(Bson::Null),
                Some(Bson::Array(items)) if items.is_empty() => {
                    present = true;
                    multikey = true;
                    values.push(Bson::Undefined);
                }
                Some(Bson::Array(items)) => {
                    present = true;
                    multikey = true;
                    values.extend(items.iter().cloned());
                }
                Some(v) => {
                    present = true;
                    values.push(v.clone());
                }
            }
        }
        if values.len() > 1 {
            multikey = true;
        }
        if multikey {
            arrays.push(field);
        }
        per_field.push(values);
    }
    if arrays.len() > 1 {
        return Err(CommandError::new(
            171,
            "CannotIndexParallelArrays",
            format!(
                "cannot index parallel arrays [{}] [{}]",
                arrays[1], arrays[0]
            ),
        ));
    }
    if !present {
        return Ok(None);
    }
    let mut keys: Vec<Vec<Bson>> = vec![Vec::new()];
    for values in per_field {
        let mut next = Vec::new();
        for k in &keys {
            for v in &values {
                let mut k = k.clone();
                k.push(v.clone());
                next.push(k);
            }
        }
        keys = next;
    }
    Ok(Some(keys))
}

fn key_doc(pattern: &Document, key: &[Bson]) -> Document {
    pattern
        .keys()
        .zip(key)
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

fn same_key(a: &[Bson], b: &[Bson]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| compare(x, y).is_eq())
}

/// Refuses `doc` when a unique index of `coll` already holds one of its keys for another
/// document (`doc`'s own `_id` is not a collision).
///
/// # Errors
///
/// The duplicate-key error, or 171 for parallel arrays.
pub(crate) fn check_unique(
    coll: Option<&Collection>,
    ns: &str,
    doc: &Document,
) -> Result<(), CommandError> {
    let Some(coll) = coll else { return Ok(()) };
    let own = doc.get("_id").cloned().unwrap_or(Bson::Null);
    for index in &coll.indexes {
        let keys = match index_keys(doc, &index.key)? {
            Some(k) => k,
            None if index.sparse => continue,
            None => vec![index.key.keys().map(|_| Bson::Null).collect()],
        };
        if !index.unique {
            continue;
        }
        for other in coll.iter() {
            if other.get("_id").is_some_and(|id| compare(id, &own).is_eq()) {
                continue;
            }
            let theirs = match index_keys(other, &index.key)? {
                Some(k) => k,
                None if index.sparse => continue,
                None => vec![index.key.keys().map(|_| Bson::Null).collect()],
            };
            if let Some(k) = keys.iter().find(|k| theirs.iter().any(|t| same_key(k, t))) {
                return Err(duplicate_key(
                    ns,
                    &index.name,
                    &index.key,
                    key_doc(&index.key, k),
                ));
            }
        }
    }
    Ok(())
}

/// Refuses a new unique index over documents that already collide.
///
/// # Errors
///
/// The duplicate-key error the index build fails with.
pub(crate) fn check_index_build(
    coll: &Collection,
    ns: &str,
    index: &Index,
) -> Result<(), CommandError> {
    if !index.unique {
        return Ok(());
    }
    let mut seen: Vec<Vec<Bson>> = Vec::new();
    for d in coll.iter() {
        let keys = match index_keys(d, &index.key)? {
            Some(k) => k,
            None if index.sparse => continue,
            None => vec![index.key.keys().map(|_| Bson::Null).collect()],
        };
        for k in keys {
            if seen.iter().any(|s| same_key(s, &k)) {
                let e = duplicate_key(ns, &index.name, &index.key, key_doc(&index.key, &k));
                return Err(CommandError {
                    errmsg: format!("Index build failed: {ns}: {}", e.errmsg),
                    ..e
                });
            }
            seen.push(k);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn coll_with(docs: &[Document], index: Index) -> Collection {
        let mut c = Collection::default();
        for (i, d) in docs.iter().enumerate() {
            c.upsert(d.get("_id").unwrap_or(&Bson::Null), d.clone(), i as u64);
        }
        c.indexes.push(index);
        c
    }

    fn unique(field: &str, sparse: bool) -> Index {
        Index {
            name: format!("{field}_1"),
            key: doc! {field: 1},
            unique: true,
            sparse,
        }
    }

    #[test]
    fn unique_indexes_refuse_duplicates_with_the_servers_error() {
        let c = coll_with(&[doc! {"_id": 1, "email": "a@x"}], unique("email", false));
        let e =
            check_unique(Some(&c), "db.users", &doc! {"_id": 2, "email": "a@x"}).expect_err("dup");
        assert_eq!(e.code, 11000);
        assert_eq!(
            e.errmsg,
            r#"E11000 duplicate key error collection: db.users index: email_1 dup key: { email: "a@x" }"#
        );
        assert_eq!(
            e.extra
                .as_ref()
                .and_then(|x| x.get_document("keyValue").ok())
                .expect("keyValue"),
            &doc! {"email": "a@x"}
        );
        assert!(
            check_unique(Some(&c), "db.users", &doc! {"_id": 1, "email": "a@x"}).is_ok(),
            "itself"
        );
        assert!(check_unique(Some(&c), "db.users", &doc! {"_id": 3, "email": "b@x"}).is_ok());
    }

    #[test]
    fn missing_fields_collide_unless_sparse_and_arrays_are_multikey() {
        let c = coll_with(&[doc! {"_id": 1}], unique("k", false));
        assert!(
            check_unique(Some(&c), "db.c", &doc! {"_id": 2}).is_err(),
            "two nulls"
        );
        let c = coll_with(&[doc! {"_id": 1}], unique("k", true));
        assert!(
            check_unique(Some(&c), "db.c", &doc! {"_id": 2}).is_ok(),
            "sparse"
        );
        let c = coll_with(&[doc! {"_id": 1, "k": [1, 2]}], unique("k", false));
        assert!(
            check_unique(Some(&c), "db.c", &doc! {"_id": 2, "k": 2}).is_err(),
            "multikey"
        );
        let build = coll_with(
            &[doc! {"_id": 1, "k": 1}, doc! {"_id": 2, "k": 1}],
            unique("x", false),
        );
        assert!(check_index_build(&build, "db.c", &unique("k", false)).is_err());
    }
}
