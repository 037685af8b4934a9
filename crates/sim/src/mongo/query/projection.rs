//! Projections: `find`'s (with `$slice`, `$elemMatch` and the positional `arr.$`) and the
//! aggregation `$project` (inclusion, exclusion, computed fields), with the server's rules on
//! mixing inclusion and exclusion and on colliding paths.

use bson::{Bson, Document};

use super::expr::{self, Env, Expr};
use super::matcher::Filter;
use super::value::{as_i64, is_number, truthy};
use crate::mongo::error::CommandError;
use crate::mongo::refuse::Unsupported;

#[derive(Debug, Clone)]
enum Spec {
    Include,
    Exclude,
    Computed(Expr),
    Sub(Node),
    Slice(i64, Option<i64>),
    ElemMatch(Filter),
    Positional,
}

#[derive(Debug, Clone, Default)]
struct Node {
    fields: Vec<(String, Spec)>,
}

impl Node {
    fn get(&self, name: &str) -> Option<&Spec> {
        self.fields.iter().find(|(k, _)| k == name).map(|(_, s)| s)
    }

    fn has_computed(&self) -> bool {
        self.fields.iter().any(|(_, s)| match s {
            Spec::Computed(_) => true,
            Spec::Sub(n) => n.has_computed(),
            _ => false,
        })
    }
}

/// A parsed projection.
#[derive(Debug, Clone)]
pub(crate) struct Projection {
    root: Node,
    inclusion: bool,
    id: bool,
    empty: bool,
}

fn collision(path: &str) -> CommandError {
    CommandError::new(31250, "Location31250", format!("Path collision at {path}"))
}

impl Projection {
    /// Parses a projection; `find` selects the find command's dialect (`$slice: n`,
    /// `$elemMatch`, `arr.$`) over `$project`'s.
    ///
    /// # Errors
    ///
    /// 31254/31253 for mixed inclusion and exclusion, 31250 for colliding paths,
    /// [`Unsupported`] for `$meta` and expression operators this server does not evaluate.
    pub(crate) fn parse(spec: &Document, find: bool) -> Result<Self, CommandError> {
        let mut p = Self {
            root: Node::default(),
            inclusion: false,
            id: true,
            empty: spec.is_empty(),
        };
        let mut mode: Option<bool> = None;
        let mut id_explicit: Option<bool> = None;
        p.add_all(spec, "", find, &mut mode, &mut id_explicit)?;
        p.inclusion = match mode {
            Some(m) => m,
            None => id_explicit == Some(true),
        };
        if id_explicit == Some(false) {
            p.id = false;
        }
        Ok(p)
    }

    fn add_all(
        &mut self,
        spec: &Document,
        prefix: &str,
        find: bool,
        mode: &mut Option<bool>,
        id_explicit: &mut Option<bool>,
    ) -> Result<(), CommandError> {
        for (key, value) in spec {
            let path = if prefix.is_empty() {
                key.clone()
            } else {
                format!("{prefix}.{key}")
            };
            let (path, spec) = if find && path.ends_with(".$") {
                (path[..path.len() - 2].to_owned(), Spec::Positional)
            } else {
                match value {
                    Bson::Document(d) if d.keys().next().is_some_and(|k| k.starts_with('$')) => {
                        let op = d.keys().next().map(String::as_str).unwrap_or_default();
                        match (op, d.get(op)) {
                            ("$meta", _) => return Err(Unsupported::Expression("$meta").error()),
                            ("$slice", Some(arg)) if find => (path, parse_slice(arg)?),
                            ("$elemMatch", Some(Bson::Document(f))) if find => {
                                (path, Spec::ElemMatch(Filter::parse(f)?))
                            }
                            _ => (path, Spec::Computed(expr::parse(value)?)),
                        }
                    }
                    Bson::Document(d) => {
                        if d.is_empty() {
                            return Err(CommandError::new(
                                51270,
                                "Location51270",
                                "An empty sub-projection is not a valid value. Found empty object at path",
                            ));
                        }
                        self.add_all(d, &path, find, mode, id_explicit)?;
                        continue;
                    }
                    Bson::Boolean(_) => (
                        path,
                        if truthy(Some(value)) {
                            Spec::Include
                        } else {
                            Spec::Exclude
                        },
                    ),
                    n if is_number(n) => (
                        path,
                        if truthy(Some(value)) {
                            Spec::Include
                        } else {
                            Spec::Exclude
                        },
                    ),
                    other => (path, Spec::Computed(expr::parse(other)?)),
                }
            };
            if path == "_id" {
                match spec {
                    Spec::Include => *id_explicit = Some(true),
                    Spec::Exclude => *id_explicit = Some(false),
                    _ => {}
                }
            } else {
                let wants = match &spec {
                    // `$elemMatch` includes only what it names, like `arr.$`; `$slice` alone
                    // keeps every other field.
                    Spec::Include | Spec::Computed(_) | Spec::Positional | Spec::ElemMatch(_) => {
                        Some(true)
                    }
                    Spec::Exclude => Some(false),
                    _ => None,
                };
                if let Some(w) = wants {
                    match *mode {
                        Some(true) if !w => {
                            return Err(CommandError::new(
                                31254,
                                "Location31254",
                                format!(
                                    "Cannot do exclusion on field {path} in inclusion projection"
                                ),
                            ));
                        }
                        Some(false) if w => {
                            return Err(CommandError::new(
                                31253,
                                "Location31253",
                                format!(
                                    "Cannot do inclusion on field {path} in exclusion projection"
                                ),
                            ));
                        }
                        _ => *mode = Some(w),
                    }
                }
            }
            insert(&mut self.root, &path, &path, spec)?;
        }
        Ok(())
    }

    /// Projects `doc`; `pos` is the array position the query matched (for `arr.$`).
    ///
    /// # Errors
    ///
    /// A computed field that fails to evaluate; a positional projection without a match.
    pub(crate) fn apply(
        &self,
        doc: &Document,
        pos: Option<usize>,
        env: &Env,
    ) -> Result<Document, CommandError> {
        if self.empty {
            return Ok(doc.clone());
        }
        if self.inclusion {
            let mut out = Document::new();
            if self.id
                && self.root.get("_id").is_none()
                && let Some(id) = doc.get("_id")
            {
                out.insert("_id", id.clone());
            }
            include(doc, doc, &self.root, &mut out, pos, env, true)?;
            Ok(out)
        } else {
            let mut out = doc.clone();
            if !self.id {
                out.remove("_id");
            }
            exclude(&mut out, &self.root)?;
            Ok(out)
        }
    }
}

fn parse_slice(arg: &Bson) -> Result<Spec, CommandError> {
    let bad = || CommandError::bad_value("$slice only supports numbers and [skip, limit] arrays");
    match arg {
        Bson::Array(items) if items.len() == 2 => {
            let (Some(skip), Some(limit)) = (as_i64(&items[0]), as_i64(&items[1])) else {
                return Err(bad());
            };
            if limit <= 0 {
                return Err(CommandError::bad_value("$slice limit must be positive"));
            }
            Ok(Spec::Slice(skip, Some(limit)))
        }
        n => as_i64(n).map(|n| Spec::Slice(n, None)).ok_or_else(bad),
    }
}

fn insert(node: &mut Node, path: &str, full: &str, spec: Spec) -> Result<(), CommandError> {
    match path.split_once('.') {
        None => {
            if node.get(path).is_some() {
                return Err(collision(full));
            }
            node.fields.push((path.to_owned(), spec));
            Ok(())
        }
        Some((head, rest)) => {
            let idx = match node.fields.iter().position(|(k, _)| k == head) {
                Some(i) => i,
                None => {
                    node.fields
                        .push((head.to_owned(), Spec::Sub(Node::default())));
                    node.fields.len() - 1
                }
            };
            match &mut node.fields[idx].1 {
                Spec::Sub(child) => insert(child, rest, full, spec),
                _ => Err(collision(full)),
            }
        }
    }
}

fn include(
    root: &Document,
    src: &Document,
    node: &Node,
    out: &mut Document,
    pos: Option<usize>,
    env: &Env,
    top: bool,
) -> Result<(), CommandError> {
    for (k, v) in src {
        if top && k == "_id" && node.get("_id").is_none() {
            continue;
        }
        let Some(spec) = node.get(k) else { continue };
        match spec {
            Spec::Include => {
                out.insert(k.clone(), v.clone());
            }
            Spec::Sub(child) => match v {
                Bson::Document(d) => {
                    let mut nested = Document::new();
                    include(root, d, child, &mut nested, pos, env, false)?;
                    out.insert(k.clone(), nested);
                }
                Bson::Array(items) => {
                    let mut projected = Vec::new();
                    for e in items {
                        if let Bson::Document(d) = e {
                            let mut nested = Document::new();
                            include(root, d, child, &mut nested, pos, env, false)?;
                            projected.push(Bson::Document(nested));
                        }
                    }
                    out.insert(k.clone(), projected);
                }
                _ if child.has_computed() => {
                    let mut nested = Document::new();
                    include(root, &Document::new(), child, &mut nested, pos, env, false)?;
                    out.insert(k.clone(), nested);
                }
                _ => {}
            },
            Spec::Slice(a, b) => {
                out.insert(k.clone(), sliced(v, *a, *b));
            }
            Spec::ElemMatch(f) => {
                if let Some(hit) = elem_match(v, f)? {
                    out.insert(k.clone(), vec![hit]);
                }
            }
            Spec::Positional => {
                out.insert(k.clone(), positional(v, pos)?);
            }
            Spec::Exclude | Spec::Computed(_) => {}
        }
    }
    for (k, spec) in &node.fields {
        match spec {
            Spec::Computed(e) => {
                if let Some(v) = expr::eval(e, root, env)? {
                    out.insert(k.clone(), v);
                }
            }
            Spec::Sub(child) if !src.contains_key(k) && child.has_computed() => {
                let mut nested = Document::new();
                include(root, &Document::new(), child, &mut nested, pos, env, false)?;
                out.insert(k.clone(), nested);
            }
            _ => {}
        }
    }
    Ok(())
}

fn exclude(out: &mut Document, node: &Node) -> Result<(), CommandError> {
    for (k, spec) in &node.fields {
        match spec {
            Spec::Exclude => {
                out.remove(k);
            }
            Spec::Sub(child) => match out.get_mut(k) {
                Some(Bson::Document(d)) => exclude(d, child)?,
                Some(Bson::Array(items)) => {
                    for e in items.iter_mut() {
                        if let Bson::Document(d) = e {
                            exclude(d, child)?;
                        }
                    }
                }
                _ => {}
            },
            Spec::Slice(a, b) => {
                if let Some(v) = out.get(k) {
                    let s = sliced(v, *a, *b);
                    out.insert(k.clone(), s);
                }
            }
            Spec::ElemMatch(f) => {
                if let Some(v) = out.get(k).cloned() {
                    match elem_match(&v, f)? {
                        Some(hit) => {
                            out.insert(k.clone(), vec![hit]);
                        }
                        None => {
                            out.remove(k);
                        }
                    }
                }
            }
            Spec::Include | Spec::Computed(_) | Spec::Positional => {}
        }
    }
    Ok(())
}

fn sliced(v: &Bson, a: i64, b: Option<i64>) -> Bson {
    match v {
        Bson::Array(items) => Bson::Array(expr::slice(items, a, b)),
        other => other.clone(),
    }
}

fn elem_match(v: &Bson, f: &Filter) -> Result<Option<Bson>, CommandError> {
    let Bson::Array(items) = v else {
        return Ok(None);
    };
    for e in items {
        if let Bson::Document(d) = e
            && f.matches(d)?
        {
            return Ok(Some(e.clone()));
        }
    }
    Ok(None)
}

fn positional(v: &Bson, pos: Option<usize>) -> Result<Bson, CommandError> {
    let mismatch = || {
        CommandError::new(
            51246,
            "Location51246",
            "Executor error during find command :: caused by :: positional operator '.$' couldn't find a matching element in the array",
        )
    };
    match (v, pos) {
        (Bson::Array(items), Some(i)) => items
            .get(i)
            .map(|e| Bson::Array(vec![e.clone()]))
            .ok_or_else(mismatch),
        _ => Err(mismatch()),
    }
}

/// `$addFields` / `$set`: every field of `spec` is an expression, set at its (dotted) path.
///
/// # Errors
///
/// [`Unsupported::Expression`] for operators this server does not evaluate.
pub(crate) fn parse_add_fields(spec: &Document) -> Result<Vec<(String, Expr)>, CommandError> {
    let mut out = Vec::new();
    flatten_add_fields(spec, "", &mut out)?;
    Ok(out)
}

fn flatten_add_fields(
    spec: &Document,
    prefix: &str,
    out: &mut Vec<(String, Expr)>,
) -> Result<(), CommandError> {
    for (k, v) in spec {
        let path = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        match v {
            Bson::Document(d)
                if !d.is_empty() && !d.keys().next().is_some_and(|f| f.starts_with('$')) =>
            {
                flatten_add_fields(d, &path, out)?;
            }
            other => out.push((path, expr::parse(other)?)),
        }
    }
    Ok(())
}

/// Applies parsed `$addFields` to `doc` (a missing result removes the field, as `$$REMOVE`).
///
/// # Errors
///
/// A field that fails to evaluate.
pub(crate) fn add_fields(
    doc: &Document,
    fields: &[(String, Expr)],
    env: &Env,
) -> Result<Document, CommandError> {
    let mut out = doc.clone();
    for (path, e) in fields {
        match expr::eval(e, doc, env)? {
            Some(v) => set_creating(&mut out, path, v),
            None => super::path::unset(&mut out, path),
        }
    }
    Ok(out)
}

/// Sets a dotted path, replacing whatever non-document is in the way (as `$addFields` does).
fn set_creating(doc: &mut Document, path: &str, value: Bson) {
    match path.split_once('.') {
        None => {
            doc.insert(path, value);
        }
        Some((head, rest)) => match doc.get_mut(head) {
            Some(Bson::Document(inner)) => set_creating(inner, rest, value),
            Some(Bson::Array(items)) => {
                for e in items.iter_mut() {
                    if let Bson::Document(inner) = e {
                        set_creating(inner, rest, value.clone());
                    }
                }
            }
            _ => {
                let mut inner = Document::new();
                set_creating(&mut inner, rest, value);
                doc.insert(head, inner);
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::doc;

    fn project(spec: Document, d: &Document) -> Document {
        Projection::parse(&spec, true)
            .expect("parses")
            .apply(d, None, &Env::default())
            .expect("applies")
    }

    #[test]
    fn inclusion_exclusion_and_id() {
        let d = doc! {"_id": 1, "a": {"b": 1, "c": 2}, "d": 3, "arr": [{"x": 1, "y": 2}, 5]};
        assert_eq!(project(doc! {"_id": 1}, &d), doc! {"_id": 1});
        assert_eq!(project(doc! {"a.b": 1}, &d), doc! {"_id": 1, "a": {"b": 1}});
        assert_eq!(
            project(doc! {"a": {"c": 1}, "_id": 0}, &d),
            doc! {"a": {"c": 2}}
        );
        assert_eq!(
            project(doc! {"arr.x": 1, "_id": 0}, &d),
            doc! {"arr": [{"x": 1}]}
        );
        assert_eq!(
            project(doc! {"a.b": 0, "arr": 0}, &d),
            doc! {"_id": 1, "a": {"c": 2}, "d": 3}
        );
        assert_eq!(
            project(doc! {"d": {"$add": ["$d", 1]}, "_id": 0}, &d),
            doc! {"d": 4}
        );
        assert_eq!(project(doc! {}, &d), d);
    }

    #[test]
    fn mixing_and_collisions_are_refused() {
        let e = Projection::parse(&doc! {"a": 1, "b": 0}, true).expect_err("mixed");
        assert_eq!(e.code, 31254);
        let e = Projection::parse(&doc! {"a": 0, "b": 1}, true).expect_err("mixed");
        assert_eq!(e.code, 31253);
        let e = Projection::parse(&doc! {"a": 1, "a.b": 1}, true).expect_err("collision");
        assert_eq!(e.code, 31250);
    }

    #[test]
    fn slice_elem_match_and_positional() {
        let d = doc! {"_id": 1, "arr": [1, 2, 3, 4], "docs": [{"k": 1}, {"k": 2}]};
        assert_eq!(
            project(doc! {"arr": {"$slice": -2}}, &d)["arr"],
            Bson::from(vec![3, 4])
        );
        assert_eq!(
            project(doc! {"docs": {"$elemMatch": {"k": 2}}, "_id": 0}, &d),
            doc! {"docs": [{"k": 2}]}
        );
        let p = Projection::parse(&doc! {"arr.$": 1}, true).expect("parses");
        assert_eq!(
            p.apply(&d, Some(2), &Env::default()).expect("applies"),
            doc! {"_id": 1, "arr": [3]}
        );
    }

    #[test]
    fn add_fields_sets_nested_paths() {
        let d = doc! {"_id": 1, "a": {"b": 1}};
        let f =
            parse_add_fields(&doc! {"a.c": {"$add": ["$a.b", 1]}, "z": "$a.b"}).expect("parses");
        assert_eq!(
            add_fields(&d, &f, &Env::default()).expect("applies"),
            doc! {"_id": 1, "a": {"b": 1, "c": 2}, "z": 1}
        );
    }
}
