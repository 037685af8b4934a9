//! Updates: replacement documents, update operators (with `$each`, the positional `$` and
//! `$[]`), and pipeline-style updates; with the server's checks on conflicting paths, the
//! immutable `_id` and values of the wrong type.

use bson::{Bson, Document};

use super::expr::Env;
use super::matcher::Filter;
use super::path;
use super::pipeline::Pipeline;
use super::value::{add, as_i64, compare, equal, is_number, multiply, shell, type_name};
use crate::mongo::error::CommandError;
use crate::mongo::refuse::Unsupported;

/// The update operators the server applies.
pub(crate) const MODIFIERS: &[&str] = &[
    "$set",
    "$setOnInsert",
    "$unset",
    "$inc",
    "$mul",
    "$min",
    "$max",
    "$rename",
    "$currentDate",
    "$push",
    "$addToSet",
    "$pop",
    "$pull",
    "$pullAll",
];

/// A parsed update.
#[derive(Debug, Clone)]
pub(crate) enum Update {
    Replacement(Document),
    Operators(Vec<(String, Document)>),
    Pipeline(Pipeline),
}

/// What an update needs besides the document.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Context {
    /// The update is building an upserted document (`$setOnInsert` applies).
    pub inserting: bool,
    /// The array position the query matched, for `$`.
    pub pos: Option<usize>,
    /// `$currentDate` as a date.
    pub now: bson::DateTime,
    /// `$currentDate` as a timestamp.
    pub ts: bson::Timestamp,
}

impl Update {
    /// Parses `u` of an update statement (or `update` of findAndModify).
    ///
    /// # Errors
    ///
    /// [`Unsupported::UpdateModifier`] for an operator this server does not apply, and the
    /// server's `FailedToParse` for malformed ones.
    pub(crate) fn parse(u: &Bson) -> Result<Self, CommandError> {
        match u {
            Bson::Array(stages) => Ok(Self::Pipeline(Pipeline::parse_update(stages)?)),
            Bson::Document(d) if d.keys().next().is_some_and(|k| k.starts_with('$')) => {
                let mut ops = Vec::new();
                for (op, fields) in d {
                    if !MODIFIERS.contains(&op.as_str()) {
                        return Err(Unsupported::UpdateModifier(op).error());
                    }
                    let Bson::Document(fields) = fields else {
                        return Err(CommandError::failed_to_parse(format!(
                            "Modifiers operate on fields but we found type {} instead. For example: {{$mod: {{<field>: ...}}}} not {{{op}: {}}}",
                            type_name(fields),
                            shell(fields)
                        )));
                    };
                    ops.push((op.clone(), fields.clone()));
                }
                Ok(Self::Operators(ops))
            }
            Bson::Document(d) => {
                if let Some(k) = d.keys().find(|k| k.starts_with('$')) {
                    return Err(Unsupported::UpdateModifier(k).error());
                }
                Ok(Self::Replacement(d.clone()))
            }
            other => Err(CommandError::failed_to_parse(format!(
                "Update argument must be either an object or an array, found {}",
                type_name(other)
            ))),
        }
    }

    /// Whether this is a replacement document.
    pub(crate) fn is_replacement(&self) -> bool {
        matches!(self, Self::Replacement(_))
    }

    /// Applies the update to `doc`.
    ///
    /// # Errors
    ///
    /// The server's errors: 40 for conflicting paths, 66 for a changed `_id`, 28 for a path a
    /// value is in the way of, 14 for arithmetic on a non-number, 2 for `$` without a match.
    pub(crate) fn apply(&self, doc: &Document, ctx: Context) -> Result<Document, CommandError> {
        let out = match self {
            Self::Replacement(r) => {
                let mut out = Document::new();
                if let Some(id) = doc.get("_id") {
                    out.insert("_id", id.clone());
                } else if let Some(id) = r.get("_id") {
                    out.insert("_id", id.clone());
                }
                for (k, v) in r {
                    if k != "_id" {
                        out.insert(k.clone(), v.clone());
                    }
                }
                if let (Some(old), Some(new)) = (doc.get("_id"), r.get("_id"))
                    && !equal(old, new)
                {
                    return Err(immutable_id(doc, new));
                }
                out
            }
            Self::Operators(ops) => apply_operators(doc, ops, ctx)?,
            Self::Pipeline(p) => {
                let mut docs = p.run_update(doc.clone(), &Env::new(Some(ctx.now)))?;
                docs.pop().unwrap_or_default()
            }
        };
        if let Some(old) = doc.get("_id")
            && !ctx.inserting
        {
            match out.get("_id") {
                Some(new) if equal(old, new) => {}
                Some(new) => return Err(immutable_id(doc, new)),
                None => return Err(immutable_id(doc, &Bson::Null)),
            }
        }
        Ok(out)
    }
}

fn immutable_id(doc: &Document, new: &Bson) -> CommandError {
    let _ = (doc, new);
    CommandError::immutable_id()
}

fn type_mismatch(msg: String) -> CommandError {
    CommandError::type_mismatch(msg)
}

/// Resolves `$` and `$[]` in `p` against `doc`.
fn resolve(doc: &Document, p: &str, pos: Option<usize>) -> Result<Vec<String>, CommandError> {
    let parts: Vec<&str> = p.split('.').collect();
    let mut paths = vec![String::new()];
    for part in parts {
        let mut next = Vec::new();
        for prefix in &paths {
            let join = |s: &str| {
                if prefix.is_empty() {
                    s.to_owned()
                } else {
                    format!("{prefix}.{s}")
                }
            };
            match part {
                "$" => match pos {
                    Some(i) => next.push(join(&i.to_string())),
                    None => {
                        return Err(CommandError::bad_value(
                            "The positional operator did not find the match needed from the query.",
                        ));
                    }
                },
                "$[]" => match path::get(doc, prefix) {
                    Some(Bson::Array(items)) => {
                        next.extend((0..items.len()).map(|i| join(&i.to_string())));
                    }
                    _ => {
                        return Err(CommandError::bad_value(format!(
                            "The path '{prefix}' must exist in the document in order to apply array updates."
                        )));
                    }
                },
                s if s.starts_with("$[") => {
                    let ident = &s[2..s.len().saturating_sub(1)];
                    return Err(CommandError::bad_value(format!(
                        "No array filter found for identifier '{ident}' in path '{p}'"
                    )));
                }
                s => next.push(join(s)),
            }
        }
        paths = next;
    }
    Ok(paths)
}

fn apply_operators(
    doc: &Document,
    ops: &[(String, Document)],
    ctx: Context,
) -> Result<Document, CommandError> {
    // Resolve every target first: conflicting paths are refused before anything changes.
    let mut targets: Vec<(String, String, Bson)> = Vec::new();
    for (op, fields) in ops {
        for (p, arg) in fields {
            if op == "$setOnInsert" && !ctx.inserting {
                continue;
            }
            for resolved in resolve(doc, p, ctx.pos)? {
                targets.push((op.clone(), resolved, arg.clone()));
            }
        }
    }
    let mut touched: Vec<String> = Vec::new();
    for (op, p, arg) in &targets {
        let mut mine = vec![p.clone()];
        if op == "$rename" {
            let Bson::String(to) = arg else {
                return Err(CommandError::bad_value(format!(
                    "The 'to' field for $rename must be a string: {p}: {}",
                    shell(arg)
                )));
            };
            if to == p {
                return Err(CommandError::bad_value(format!(
                    "The source and target field for $rename must differ: {p}: {}",
                    shell(arg)
                )));
            }
            mine.push(to.clone());
        }
        for m in mine {
            if let Some(other) = touched.iter().find(|t| path::overlaps(t, &m)) {
                let at = if other.len() <= m.len() {
                    other.clone()
                } else {
                    m.clone()
                };
                return Err(CommandError::new(
                    40,
                    "ConflictingUpdateOperators",
                    format!("Updating the path '{m}' would create a conflict at '{at}'"),
                ));
            }
            touched.push(m);
        }
    }
    let mut out = doc.clone();
    for (op, p, arg) in targets {
        apply_one(&mut out, doc, &op, &p, &arg, ctx)?;
    }
    Ok(out)
}

fn apply_one(
    out: &mut Document,
    original: &Document,
    op: &str,
    p: &str,
    arg: &Bson,
    ctx: Context,
) -> Result<(), CommandError> {
    let current = path::get(out, p).cloned();
    let id_doc = || {
        original
            .get("_id")
            .map_or_else(|| "{}".to_owned(), |id| format!("{{_id: {}}}", shell(id)))
    };
    match op {
        "$set" | "$setOnInsert" => path::set(out, p, arg.clone())?,
        "$unset" => path::unset(out, p),
        "$inc" | "$mul" => {
            if !is_number(arg) {
                return Err(type_mismatch(format!(
                    "Cannot {} with non-numeric argument: {{{p}: {}}}",
                    if op == "$inc" {
                        "increment"
                    } else {
                        "multiply"
                    },
                    shell(arg)
                )));
            }
            let next = match &current {
                None if op == "$inc" => arg.clone(),
                None => multiply(arg, &Bson::Int32(0)).unwrap_or(Bson::Int32(0)),
                Some(c) if is_number(c) => if op == "$inc" {
                    add(c, arg)
                } else {
                    multiply(c, arg)
                }
                .unwrap_or(Bson::Null),
                Some(c) => {
                    return Err(type_mismatch(format!(
                        "Cannot apply {op} to a value of non-numeric type. {} has the field '{}' of non-numeric type {}",
                        id_doc(),
                        p.rsplit('.').next().unwrap_or(p),
                        type_name(c)
                    )));
                }
            };
            path::set(out, p, next)?;
        }
        "$min" | "$max" => {
            let replace = match &current {
                None => true,
                Some(c) => {
                    let o = compare(arg, c);
                    if op == "$max" { o.is_gt() } else { o.is_lt() }
                }
            };
            if replace {
                path::set(out, p, arg.clone())?;
            }
        }
        "$rename" => {
            if let (Some(v), Bson::String(to)) = (current, arg) {
                path::unset(out, p);
                path::set(out, to, v)?;
            }
        }
        "$currentDate" => {
            let v = match arg {
                Bson::Boolean(true) => Bson::DateTime(ctx.now),
                Bson::Document(d) => match d.get_str("$type") {
                    Ok("date") => Bson::DateTime(ctx.now),
                    Ok("timestamp") => Bson::Timestamp(ctx.ts),
                    _ => {
                        return Err(CommandError::bad_value(
                            "The '$type' string field is required to be 'date' or 'timestamp': {$currentDate: {field : {$type: 'date'}}}",
                        ));
                    }
                },
                other => {
                    return Err(CommandError::bad_value(format!(
                        "{} is not valid type for $currentDate. Please use a boolean ('true') or a $type expression ({{$type: 'timestamp/date'}}).",
                        type_name(other)
                    )));
                }
            };
            path::set(out, p, v)?;
        }
        "$push" | "$addToSet" | "$pop" | "$pull" | "$pullAll" => {
            let mut items = match &current {
                None if matches!(op, "$pop" | "$pull" | "$pullAll") => return Ok(()),
                None => Vec::new(),
                Some(Bson::Array(a)) => a.clone(),
                Some(c) if matches!(op, "$push" | "$addToSet") => {
                    return Err(CommandError::bad_value(format!(
                        "The field '{p}' must be an array but is of type {} in document {}",
                        type_name(c),
                        id_doc()
                    )));
                }
                Some(c) => {
                    return Err(type_mismatch(format!(
                        "Path '{p}' contains an element of non-array type '{}'",
                        type_name(c)
                    )));
                }
            };
            match op {
                "$push" => push(&mut items, arg)?,
                "$addToSet" => {
                    let adds = match arg {
                        Bson::Document(d) if d.contains_key("$each") => match d.get("$each") {
                            Some(Bson::Array(a)) => a.clone(),
                            _ => {
                                return Err(CommandError::bad_value(
                                    "The argument to $each in $addToSet must be an array",
                                ));
                            }
                        },
                        v => vec![v.clone()],
                    };
                    for a in adds {
                        if !items.iter().any(|i| equal(i, &a)) {
                            items.push(a);
                        }
                    }
                }
                "$pop" => {
                    let first = match as_i64(arg) {
                        Some(1) => false,
                        Some(-1) => true,
                        _ => {
                            return Err(CommandError::failed_to_parse(format!(
                                "Expected a number in: {p}: {}",
                                shell(arg)
                            )));
                        }
                    };
                    if !items.is_empty() {
                        if first {
                            items.remove(0);
                        } else {
                            items.pop();
                        }
                    }
                }
                "$pull" => {
                    let test = pull_test(arg)?;
                    let mut kept = Vec::new();
                    for i in items {
                        if !test(&i)? {
                            kept.push(i);
                        }
                    }
                    items = kept;
                }
                _ => {
                    let Bson::Array(values) = arg else {
                        return Err(CommandError::bad_value(format!(
                            "$pullAll requires an array argument but was given a {}",
                            type_name(arg)
                        )));
                    };
                    items.retain(|i| !values.iter().any(|v| equal(i, v)));
                }
            }
            path::set(out, p, Bson::Array(items))?;
        }
        other => return Err(Unsupported::UpdateModifier(other).error()),
    }
    Ok(())
}

type PullTest = Box<dyn Fn(&Bson) -> Result<bool, CommandError>>;

fn pull_test(arg: &Bson) -> Result<PullTest, CommandError> {
    Ok(match arg {
        Bson::Document(d) if d.keys().next().is_some_and(|k| k.starts_with('$')) => {
            let f = Filter::parse(&bson::doc! {"v": arg.clone()})?;
            Box::new(move |e| f.matches(&bson::doc! {"v": e.clone()}))
        }
        Bson::Document(d) => {
            let f = Filter::parse(d)?;
            Box::new(move |e| match e {
                Bson::Document(ed) => f.matches(ed),
                _ => Ok(false),
            })
        }
        Bson::RegularExpression(_) => {
            let f = Filter::parse(&bson::doc! {"v": arg.clone()})?;
            Box::new(move |e| f.matches(&bson::doc! {"v": e.clone()}))
        }
        v => {
            let v = v.clone();
            Box::new(move |e| Ok(equal(e, &v)))
        }
    })
}

fn push(items: &mut Vec<Bson>, arg: &Bson) -> Result<(), CommandError> {
    let Bson::Document(d) = arg else {
        items.push(arg.clone());
        return Ok(());
    };
    if !d.contains_key("$each") {
        if let Some(k) = d.keys().find(|k| k.starts_with('$')) {
            return Err(CommandError::bad_value(format!(
                "Unrecognized clause in $push: {k}"
            )));
        }
        items.push(arg.clone());
        return Ok(());
    }
    let Some(Bson::Array(each)) = d.get("$each") else {
        return Err(CommandError::bad_value(format!(
            "The argument to $each in $push must be an array but it was of type: {}",
            d.get("$each").map_or("missing", type_name)
        )));
    };
    for k in d.keys() {
        if !matches!(k.as_str(), "$each" | "$slice" | "$sort" | "$position") {
            return Err(CommandError::bad_value(format!(
                "Unrecognized clause in $push: {k}"
            )));
        }
    }
    let len = i64::try_from(items.len()).unwrap_or(i64::MAX);
    let at = match d.get("$position").map(as_i64) {
        None => len,
        Some(Some(p)) if p < 0 => (len + p).max(0),
        Some(Some(p)) => p.min(len),
        Some(None) => {
            return Err(CommandError::bad_value(
                "The value for $position must be an integer value",
            ));
        }
    };
    let at = usize::try_from(at).unwrap_or(items.len());
    for (i, e) in each.iter().enumerate() {
        items.insert(at + i, e.clone());
    }
    if let Some(spec) = d.get("$sort") {
        match spec {
            n if is_number(n) => {
                let asc = as_i64(n) == Some(1);
                if !asc && as_i64(n) != Some(-1) {
                    return Err(CommandError::bad_value(
                        "The $sort element value must be either 1 or -1",
                    ));
                }
                items.sort_by(|a, b| if asc { compare(a, b) } else { compare(b, a) });
            }
            Bson::Document(s) => {
                let sort = super::matcher::Sort::parse(s)?;
                let mut docs: Vec<Document> = items
                    .iter()
                    .map(|i| match i {
                        Bson::Document(d) => d.clone(),
                        other => bson::doc! {"": other.clone()},
                    })
                    .collect();
                sort.apply(&mut docs);
                *items = docs.into_iter().map(Bson::Document).collect();
            }
            other => {
                return Err(CommandError::bad_value(format!(
                    "The $sort is invalid: use 1/-1 to sort the whole element, or {{field:1/-1}} to sort embedded fields; found {}",
                    shell(other)
                )));
            }
        }
    }
    if let Some(n) = d.get("$slice") {
        let Some(n) = as_i64(n) else {
            return Err(CommandError::bad_value(
                "The value for $slice must be an integer value",
            ));
        };
        *items = super::expr::slice(items, n, None);
    }
    Ok(())
}

/// The document an upsert starts from: the filter's equality fields (an `_id` first).
///
/// # Errors
///
/// `PathNotViable` when two equality paths collide.
pub(crate) fn upsert_seed(filter: &Document) -> Result<Document, CommandError> {
    let mut seed = Document::new();
    let eqs = Filter::equalities(filter);
    if let Some((_, id)) = eqs.iter().find(|(k, _)| k == "_id") {
        seed.insert("_id", id.clone());
    }
    for (k, v) in eqs {
        if k != "_id" {
            path::set(&mut seed, &k, v)?;
        }
    }
    Ok(seed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::doc;

    fn ctx() -> Context {
        Context {
            inserting: false,
            pos: None,
            now: bson::DateTime::from_millis(0),
            ts: bson::Timestamp {
                time: 1,
                increment: 1,
            },
        }
    }

    fn up(d: &Document, u: Document) -> Result<Document, CommandError> {
        Update::parse(&Bson::Document(u))?.apply(d, ctx())
    }

    #[test]
    fn operators_apply_like_the_servers() {
        let d = doc! {"_id": 1, "a": 1, "b": {"c": 1}, "t": ["a"], "s": [1, 2]};
        assert_eq!(
            up(
                &d,
                doc! {"$set": {"b.c": 2}, "$inc": {"a": 2}, "$unset": {"x": ""}}
            )
            .expect("valid"),
            doc! {"_id": 1, "a": 3, "b": {"c": 2}, "t": ["a"], "s": [1, 2]}
        );
        let r = up(
            &d,
            doc! {"$push": {"t": {"$each": ["b", "c"]}}, "$addToSet": {"s": {"$each": [2, 3]}}},
        )
        .expect("valid");
        assert_eq!(r.get_array("t").expect("t").len(), 3);
        assert_eq!(r.get_array("s").expect("s").len(), 3);
        assert_eq!(
            up(&d, doc! {"z": 1}).expect("replacement"),
            doc! {"_id": 1, "z": 1}
        );
        assert_eq!(up(&d, doc! {"_id": 2, "z": 1}).expect_err("id").code, 66);
        assert_eq!(up(&d, doc! {"$set": {"_id": 2}}).expect_err("id").code, 66);
    }

    #[test]
    fn refusals_and_conflicts() {
        let d = doc! {"_id": 1, "a": {"b": 1}};
        assert_eq!(
            up(&d, doc! {"$bit": {"a": {"and": 1}}})
                .expect_err("refused")
                .code,
            9
        );
        assert_eq!(
            up(&d, doc! {"$set": {"a.b": 1}, "$unset": {"a": 1}})
                .expect_err("conflict")
                .code,
            40
        );
        assert_eq!(
            up(&d, doc! {"$inc": {"a": 1}})
                .expect_err("not a number")
                .code,
            14
        );
        assert_eq!(
            up(&d, doc! {"$set": {"x.$": 1}})
                .expect_err("no match")
                .code,
            2
        );
    }

    #[test]
    fn positional_and_all_positional() {
        let d = doc! {"_id": 1, "g": [1, 2, 3]};
        let mut c = ctx();
        c.pos = Some(1);
        let u = Update::parse(&Bson::Document(doc! {"$set": {"g.$": 9}})).expect("parses");
        assert_eq!(
            u.apply(&d, c).expect("applies"),
            doc! {"_id": 1, "g": [1, 9, 3]}
        );
        assert_eq!(
            up(&d, doc! {"$inc": {"g.$[]": 10}}).expect("applies"),
            doc! {"_id": 1, "g": [11, 12, 13]}
        );
    }

    #[test]
    fn upserts_start_from_the_filters_equalities() {
        let seed =
            upsert_seed(&doc! {"k": "v", "n": {"$gt": 1}, "a.b": 2, "_id": 7}).expect("valid");
        assert_eq!(seed, doc! {"_id": 7, "k": "v", "a": {"b": 2}});
    }
}
