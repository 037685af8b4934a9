//! The query language subset the embedded server understands: equality and comparison
//! filters, one- or multi-field sorts, update operators and a small aggregation pipeline —
//! enough for drivers' CRUD helpers and a write checker reading back sequence numbers.

use std::cmp::Ordering;

use bson::{Bson, Document};

use super::error::CommandError;

/// Canonical type order of BSON values for cross-type comparisons (the server's order).
fn type_rank(v: &Bson) -> u8 {
    match v {
        Bson::MinKey => 0,
        Bson::Null | Bson::Undefined => 1,
        Bson::Int32(_) | Bson::Int64(_) | Bson::Double(_) | Bson::Decimal128(_) => 2,
        Bson::String(_) | Bson::Symbol(_) => 3,
        Bson::Document(_) => 4,
        Bson::Array(_) => 5,
        Bson::Binary(_) => 6,
        Bson::ObjectId(_) => 7,
        Bson::Boolean(_) => 8,
        Bson::DateTime(_) => 9,
        Bson::Timestamp(_) => 10,
        Bson::RegularExpression(_) => 11,
        Bson::MaxKey => 255,
        _ => 12,
    }
}

fn as_f64(v: &Bson) -> Option<f64> {
    match v {
        Bson::Int32(i) => Some(f64::from(*i)),
        Bson::Int64(i) => Some(*i as f64),
        Bson::Double(d) => Some(*d),
        _ => None,
    }
}

/// Total order over BSON values, numbers compared by value across their types.
pub(crate) fn compare(a: &Bson, b: &Bson) -> Ordering {
    let (ra, rb) = (type_rank(a), type_rank(b));
    if ra != rb {
        return ra.cmp(&rb);
    }
    match (a, b) {
        (Bson::Int64(x), Bson::Int64(y)) => x.cmp(y),
        (Bson::Int32(x), Bson::Int32(y)) => x.cmp(y),
        _ if ra == 2 => {
            let (x, y) = (as_f64(a).unwrap_or(0.0), as_f64(b).unwrap_or(0.0));
            x.partial_cmp(&y).unwrap_or(Ordering::Equal)
        }
        (Bson::String(x), Bson::String(y)) => x.cmp(y),
        (Bson::ObjectId(x), Bson::ObjectId(y)) => x.bytes().cmp(&y.bytes()),
        (Bson::Boolean(x), Bson::Boolean(y)) => x.cmp(y),
        (Bson::DateTime(x), Bson::DateTime(y)) => x.cmp(y),
        (Bson::Timestamp(x), Bson::Timestamp(y)) => {
            (x.time, x.increment).cmp(&(y.time, y.increment))
        }
        (Bson::Document(x), Bson::Document(y)) => {
            for ((ka, va), (kb, vb)) in x.iter().zip(y.iter()) {
                let o = ka.cmp(kb).then_with(|| compare(va, vb));
                if o != Ordering::Equal {
                    return o;
                }
            }
            x.len().cmp(&y.len())
        }
        (Bson::Array(x), Bson::Array(y)) => {
            for (va, vb) in x.iter().zip(y.iter()) {
                let o = compare(va, vb);
                if o != Ordering::Equal {
                    return o;
                }
            }
            x.len().cmp(&y.len())
        }
        (Bson::Binary(x), Bson::Binary(y)) => x.bytes.cmp(&y.bytes),
        _ => Ordering::Equal,
    }
}

fn equal(a: &Bson, b: &Bson) -> bool {
    compare(a, b) == Ordering::Equal
}

/// The value at a dotted path, if present.
pub(crate) fn lookup<'a>(doc: &'a Document, path: &str) -> Option<&'a Bson> {
    let mut parts = path.split('.');
    let mut current = doc.get(parts.next()?)?;
    for part in parts {
        current = match current {
            Bson::Document(d) => d.get(part)?,
            Bson::Array(a) => a.get(part.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(current)
}

/// Whether `doc` matches `filter`.
///
/// # Errors
///
/// `BadValue` for an operator this server does not implement, so a caller never gets a
/// silently wrong answer.
pub(crate) fn matches(doc: &Document, filter: &Document) -> Result<bool, CommandError> {
    for (key, cond) in filter {
        let ok = match key.as_str() {
            "$and" => each_clause(cond)?.iter().try_fold(true, |acc, c| {
                Ok::<_, CommandError>(acc && matches(doc, c)?)
            })?,
            "$or" => {
                let mut any = false;
                for c in each_clause(cond)? {
                    if matches(doc, c)? {
                        any = true;
                        break;
                    }
                }
                any
            }
            "$nor" => {
                let mut any = false;
                for c in each_clause(cond)? {
                    any |= matches(doc, c)?;
                }
                !any
            }
            k if k.starts_with('$') => {
                return Err(CommandError::bad_value(format!(
                    "unknown top level operator: {k}"
                )));
            }
            path => field_matches(lookup(doc, path), cond)?,
        };
        if !ok {
            return Ok(false);
        }
    }
    Ok(true)
}

fn each_clause(cond: &Bson) -> Result<Vec<&Document>, CommandError> {
    let Bson::Array(items) = cond else {
        return Err(CommandError::bad_value(
            "$and/$or/$nor must be an array".to_owned(),
        ));
    };
    items
        .iter()
        .map(|i| match i {
            Bson::Document(d) => Ok(d),
            _ => Err(CommandError::bad_value(
                "$or/$and/$nor entries must be objects".to_owned(),
            )),
        })
        .collect()
}

fn is_operator_doc(cond: &Bson) -> Option<&Document> {
    match cond {
        Bson::Document(d) if d.keys().next().is_some_and(|k| k.starts_with('$')) => Some(d),
        _ => None,
    }
}

/// Equality the server's way: an array field matches when any element matches.
fn value_equals(value: Option<&Bson>, target: &Bson) -> bool {
    match value {
        None => matches!(target, Bson::Null),
        Some(v) => {
            equal(v, target)
                || matches!(v, Bson::Array(items) if items.iter().any(|i| equal(i, target)))
        }
    }
}

fn value_compares(value: Option<&Bson>, target: &Bson, want: fn(Ordering) -> bool) -> bool {
    let test = |v: &Bson| type_rank(v) == type_rank(target) && want(compare(v, target));
    match value {
        None => false,
        Some(Bson::Array(items)) => items.iter().any(test),
        Some(v) => test(v),
    }
}

fn field_matches(value: Option<&Bson>, cond: &Bson) -> Result<bool, CommandError> {
    let Some(ops) = is_operator_doc(cond) else {
        return Ok(value_equals(value, cond));
    };
    for (op, arg) in ops {
        let ok = match op.as_str() {
            "$eq" => value_equals(value, arg),
            "$ne" => !value_equals(value, arg),
            "$gt" => value_compares(value, arg, Ordering::is_gt),
            "$gte" => value_compares(value, arg, Ordering::is_ge),
            "$lt" => value_compares(value, arg, Ordering::is_lt),
            "$lte" => value_compares(value, arg, Ordering::is_le),
            "$in" | "$nin" => {
                let Bson::Array(items) = arg else {
                    return Err(CommandError::bad_value(format!("{op} needs an array")));
                };
                let found = items.iter().any(|t| value_equals(value, t));
                if op == "$in" { found } else { !found }
            }
            "$exists" => value.is_some() == arg.as_bool().unwrap_or(true),
            other => {
                return Err(CommandError::bad_value(format!(
                    "unknown operator: {other}"
                )));
            }
        };
        if !ok {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Sorts `docs` by a sort specification `{field: 1 | -1, ...}`.
pub(crate) fn sort(docs: &mut [Document], spec: &Document) {
    let keys: Vec<(String, bool)> = spec
        .iter()
        .map(|(k, v)| (k.clone(), as_f64(v).unwrap_or(1.0) >= 0.0))
        .collect();
    docs.sort_by(|a, b| {
        for (key, ascending) in &keys {
            let (va, vb) = (
                lookup(a, key).unwrap_or(&Bson::Null),
                lookup(b, key).unwrap_or(&Bson::Null),
            );
            let o = compare(va, vb);
            if o != Ordering::Equal {
                return if *ascending { o } else { o.reverse() };
            }
        }
        Ordering::Equal
    });
}

/// Applies a simple inclusion or exclusion projection of top-level fields.
pub(crate) fn project(doc: &Document, projection: &Document) -> Document {
    if projection.is_empty() {
        return doc.clone();
    }
    let include = projection.iter().any(|(k, v)| {
        k != "_id" && (as_f64(v).is_some_and(|x| x != 0.0) || v.as_bool() == Some(true))
    });
    let id_excluded = projection
        .get("_id")
        .is_some_and(|v| as_f64(v) == Some(0.0) || v.as_bool() == Some(false));
    let mut out = Document::new();
    for (k, v) in doc {
        let listed = projection.contains_key(k);
        let keep = if k == "_id" {
            !id_excluded
        } else if include {
            listed
        } else {
            !listed
        };
        if keep {
            out.insert(k.clone(), v.clone());
        }
    }
    out
}

/// Whether an update specification is an operator update (`$set`, ...) or a replacement.
pub(crate) fn is_operator_update(update: &Document) -> bool {
    update.keys().next().is_some_and(|k| k.starts_with('$'))
}

/// Applies `update` to `doc` (operators or replacement, keeping `_id`). `inserting` enables
/// `$setOnInsert`.
///
/// # Errors
///
/// `BadValue` / `FailedToParse` for an operator this server does not implement, or a
/// replacement that changes `_id`.
pub(crate) fn apply_update(
    doc: &Document,
    update: &Document,
    inserting: bool,
) -> Result<Document, CommandError> {
    if !is_operator_update(update) {
        let mut out = Document::new();
        if let Some(id) = doc.get("_id") {
            if let Some(new_id) = update.get("_id")
                && !equal(id, new_id)
            {
                return Err(CommandError::immutable_id());
            }
            out.insert("_id", id.clone());
        }
        for (k, v) in update {
            if k != "_id" {
                out.insert(k.clone(), v.clone());
            }
        }
        return Ok(out);
    }
    let mut out = doc.clone();
    for (op, fields) in update {
        let Bson::Document(fields) = fields else {
            return Err(CommandError::failed_to_parse(format!(
                "Modifiers operate on fields but we found type {fields:?} instead"
            )));
        };
        for (path, value) in fields {
            if path == "_id" && op != "$setOnInsert" && !inserting {
                if let Some(id) = out.get("_id")
                    && op == "$set"
                    && equal(id, value)
                {
                    continue;
                }
                return Err(CommandError::immutable_id());
            }
            match op.as_str() {
                "$set" => set_path(&mut out, path, Some(value.clone())),
                "$setOnInsert" => {
                    if inserting {
                        set_path(&mut out, path, Some(value.clone()));
                    }
                }
                "$unset" => set_path(&mut out, path, None),
                "$inc" => {
                    let current = lookup(&out, path).cloned().unwrap_or(Bson::Int32(0));
                    let sum = add(&current, value).ok_or_else(|| {
                        CommandError::type_mismatch(format!(
                            "Cannot apply $inc to a value of non-numeric type: {path}"
                        ))
                    })?;
                    set_path(&mut out, path, Some(sum));
                }
                "$max" | "$min" => {
                    let current = lookup(&out, path).cloned();
                    let replace = match &current {
                        None => true,
                        Some(c) => {
                            let o = compare(value, c);
                            if op == "$max" { o.is_gt() } else { o.is_lt() }
                        }
                    };
                    if replace {
                        set_path(&mut out, path, Some(value.clone()));
                    }
                }
                "$push" => {
                    let mut items = match lookup(&out, path) {
                        Some(Bson::Array(a)) => a.clone(),
                        None => Vec::new(),
                        Some(_) => {
                            return Err(CommandError::bad_value(format!(
                                "The field '{path}' must be an array"
                            )));
                        }
                    };
                    items.push(value.clone());
                    set_path(&mut out, path, Some(Bson::Array(items)));
                }
                other => {
                    return Err(CommandError::failed_to_parse(format!(
                        "Unknown modifier: {other}"
                    )));
                }
            }
        }
    }
    Ok(out)
}

fn add(a: &Bson, b: &Bson) -> Option<Bson> {
    Some(match (a, b) {
        (Bson::Int32(x), Bson::Int32(y)) => match x.checked_add(*y) {
            Some(s) => Bson::Int32(s),
            None => Bson::Int64(i64::from(*x) + i64::from(*y)),
        },
        (Bson::Int64(x), Bson::Int32(y)) => Bson::Int64(x.wrapping_add(i64::from(*y))),
        (Bson::Int32(x), Bson::Int64(y)) => Bson::Int64(i64::from(*x).wrapping_add(*y)),
        (Bson::Int64(x), Bson::Int64(y)) => Bson::Int64(x.wrapping_add(*y)),
        _ => Bson::Double(as_f64(a)? + as_f64(b)?),
    })
}

fn set_path(doc: &mut Document, path: &str, value: Option<Bson>) {
    match path.split_once('.') {
        None => match value {
            Some(v) => {
                doc.insert(path, v);
            }
            None => {
                doc.remove(path);
            }
        },
        Some((head, rest)) => {
            if !matches!(doc.get(head), Some(Bson::Document(_))) {
                if value.is_none() {
                    return;
                }
                doc.insert(head, Document::new());
            }
            if let Some(Bson::Document(inner)) = doc.get_mut(head) {
                set_path(inner, rest, value);
            }
        }
    }
}

/// Builds the document an upsert inserts: the equality fields of the filter, then the update.
///
/// # Errors
///
/// As [`apply_update`].
pub(crate) fn upsert_seed(filter: &Document, update: &Document) -> Result<Document, CommandError> {
    let mut seed = Document::new();
    if is_operator_update(update) {
        for (k, v) in filter {
            if !k.starts_with('$') && is_operator_doc(v).is_none() {
                set_path(&mut seed, k, Some(v.clone()));
            }
        }
    }
    apply_update(&seed, update, true)
}

/// Runs an aggregation pipeline of `$match`, `$sort`, `$skip`, `$limit`, `$project`,
/// `$count` and `$group` (with `$sum`, `$min`, `$max`) over `docs`.
///
/// # Errors
///
/// `BadValue` naming a stage or accumulator this server does not implement.
pub(crate) fn aggregate(
    mut docs: Vec<Document>,
    pipeline: &[Bson],
) -> Result<Vec<Document>, CommandError> {
    for stage in pipeline {
        let Bson::Document(stage) = stage else {
            return Err(CommandError::bad_value(
                "each pipeline stage must be an object".to_owned(),
            ));
        };
        let Some((name, arg)) = stage.iter().next() else {
            return Err(CommandError::bad_value("empty pipeline stage".to_owned()));
        };
        docs = match (name.as_str(), arg) {
            ("$match", Bson::Document(f)) => {
                let mut kept = Vec::new();
                for d in docs {
                    if matches(&d, f)? {
                        kept.push(d);
                    }
                }
                kept
            }
            ("$sort", Bson::Document(s)) => {
                sort(&mut docs, s);
                docs
            }
            ("$skip", n) => docs
                .into_iter()
                .skip(as_f64(n).unwrap_or(0.0) as usize)
                .collect(),
            ("$limit", n) => docs
                .into_iter()
                .take(as_f64(n).unwrap_or(0.0) as usize)
                .collect(),
            ("$project", Bson::Document(p)) => docs.iter().map(|d| project(d, p)).collect(),
            ("$count", Bson::String(field)) => {
                if docs.is_empty() {
                    Vec::new()
                } else {
                    vec![bson::doc! { field.clone(): docs.len() as i32 }]
                }
            }
            ("$group", Bson::Document(g)) => group(&docs, g)?,
            (other, _) => {
                return Err(CommandError::bad_value(format!(
                    "Unrecognized pipeline stage name: '{other}' (hint: the embedded server implements $match, $sort, $skip, $limit, $project, $count, $group)"
                )));
            }
        };
    }
    Ok(docs)
}

fn eval(doc: &Document, expr: &Bson) -> Bson {
    match expr {
        Bson::String(s) if s.starts_with('$') => {
            lookup(doc, &s[1..]).cloned().unwrap_or(Bson::Null)
        }
        other => other.clone(),
    }
}

fn group(docs: &[Document], spec: &Document) -> Result<Vec<Document>, CommandError> {
    let id_expr = spec.get("_id").cloned().unwrap_or(Bson::Null);
    let mut groups: Vec<(Bson, Document)> = Vec::new();
    for d in docs {
        let key = eval(d, &id_expr);
        let idx = match groups.iter().position(|(k, _)| equal(k, &key)) {
            Some(i) => i,
            None => {
                groups.push((key.clone(), bson::doc! {"_id": key}));
                groups.len() - 1
            }
        };
        for (field, acc) in spec {
            if field == "_id" {
                continue;
            }
            let Some((op, arg)) = acc.as_document().and_then(|a| a.iter().next()) else {
                return Err(CommandError::bad_value(format!(
                    "accumulator for '{field}' must be an object"
                )));
            };
            let value = eval(d, arg);
            let out = &mut groups[idx].1;
            let next = match (op.as_str(), out.get(field)) {
                ("$sum", None) => add(&Bson::Int32(0), &value).unwrap_or(Bson::Int32(0)),
                ("$sum", Some(cur)) => add(cur, &value).unwrap_or_else(|| cur.clone()),
                ("$min", Some(cur)) if compare(cur, &value).is_le() => cur.clone(),
                ("$max", Some(cur)) if compare(cur, &value).is_ge() => cur.clone(),
                ("$min" | "$max", _) => value,
                (other, _) => {
                    return Err(CommandError::bad_value(format!(
                        "unknown group operator '{other}'"
                    )));
                }
            };
            out.insert(field.clone(), next);
        }
    }
    Ok(groups.into_iter().map(|(_, d)| d).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::doc;

    #[test]
    fn filters_with_comparisons_and_in() {
        let d = doc! {"seq": 5_i64, "tag": "a", "list": [1, 2]};
        assert!(matches(&d, &doc! {"seq": 5}).expect("valid"));
        assert!(matches(&d, &doc! {"seq": {"$gt": 4, "$lte": 5.0}}).expect("valid"));
        assert!(!matches(&d, &doc! {"seq": {"$lt": 5}}).expect("valid"));
        assert!(matches(&d, &doc! {"tag": {"$in": ["b", "a"]}}).expect("valid"));
        assert!(matches(&d, &doc! {"list": 2}).expect("valid"));
        assert!(!matches(&d, &doc! {"missing": {"$gt": 1}}).expect("valid"));
        assert!(matches(&d, &doc! {"$or": [{"tag": "x"}, {"seq": 5}]}).expect("valid"));
        assert!(matches(&d, &doc! {"seq": {"$regex": "x"}}).is_err());
    }

    #[test]
    fn sorts_descending_across_numeric_types() {
        let mut docs = vec![doc! {"n": 1}, doc! {"n": 3_i64}, doc! {"n": 2.5}];
        sort(&mut docs, &doc! {"n": -1});
        let order: Vec<f64> = docs
            .iter()
            .map(|d| as_f64(d.get("n").expect("n")).expect("num"))
            .collect();
        assert_eq!(order, vec![3.0, 2.5, 1.0]);
    }

    #[test]
    fn applies_operator_and_replacement_updates() {
        let d = doc! {"_id": 1, "a": 1, "b": {"c": 1}};
        let u = apply_update(
            &d,
            &doc! {"$set": {"b.c": 2}, "$inc": {"a": 2}, "$unset": {"x": ""}},
            false,
        )
        .expect("valid");
        assert_eq!(u, doc! {"_id": 1, "a": 3, "b": {"c": 2}});
        let r = apply_update(&d, &doc! {"z": 1}, false).expect("valid");
        assert_eq!(r, doc! {"_id": 1, "z": 1});
        assert!(apply_update(&d, &doc! {"_id": 2, "z": 1}, false).is_err());
        let seeded = upsert_seed(&doc! {"k": "v", "n": {"$gt": 1}}, &doc! {"$set": {"x": 1}})
            .expect("valid");
        assert_eq!(seeded, doc! {"k": "v", "x": 1});
    }

    #[test]
    fn counts_like_the_drivers_count_documents_pipeline() {
        let docs = vec![doc! {"a": 1}, doc! {"a": 2}, doc! {"a": 3}];
        let out = aggregate(
            docs,
            &[
                Bson::Document(doc! {"$match": {"a": {"$gte": 2}}}),
                Bson::Document(doc! {"$group": {"_id": 1, "n": {"$sum": 1}}}),
            ],
        )
        .expect("valid");
        assert_eq!(out, vec![doc! {"_id": 1, "n": 2}]);
    }
}
