//! Dotted paths, each the way one part of the server walks them: the query matcher (through
//! arrays of documents, numeric parts as indexes, leaf arrays expanded), aggregation field paths
//! (`$a.b` maps over arrays), and update targets (exact positions, created on the way, refused
//! where a value is in the way).

use bson::{Bson, Document};

use super::value::shell;
use crate::mongo::error::CommandError;

/// One value a query path reaches, or a place where it found nothing.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Candidate<'a> {
    /// The value, `None` where the path is missing.
    pub value: Option<&'a Bson>,
    /// The position in the first array the path went through (the positional `$`).
    pub index: Option<usize>,
}

/// Every value the query path `path` reaches in `doc`. Arrays on the way are walked element by
/// element (their documents' fields, or an element by a numeric part); with `expand_leaf`, an
/// array at the end also yields each of its elements.
pub(crate) fn candidates<'a>(
    doc: &'a Document,
    path: &str,
    expand_leaf: bool,
) -> Vec<Candidate<'a>> {
    let parts: Vec<&str> = path.split('.').collect();
    let mut out = Vec::new();
    from_doc(doc, &parts, None, expand_leaf, &mut out);
    out
}

fn from_doc<'a>(
    d: &'a Document,
    parts: &[&str],
    index: Option<usize>,
    expand: bool,
    out: &mut Vec<Candidate<'a>>,
) {
    let Some((head, rest)) = parts.split_first() else {
        return;
    };
    match d.get(*head) {
        None => out.push(Candidate { value: None, index }),
        Some(v) => from_value(v, rest, index, expand, out),
    }
}

fn from_value<'a>(
    v: &'a Bson,
    rest: &[&str],
    index: Option<usize>,
    expand: bool,
    out: &mut Vec<Candidate<'a>>,
) {
    if rest.is_empty() {
        out.push(Candidate {
            value: Some(v),
            index,
        });
        if expand && let Bson::Array(items) = v {
            for (i, e) in items.iter().enumerate() {
                out.push(Candidate {
                    value: Some(e),
                    index: index.or(Some(i)),
                });
            }
        }
        return;
    }
    match v {
        Bson::Document(d) => from_doc(d, rest, index, expand, out),
        Bson::Array(items) => {
            let before = out.len();
            if let Ok(i) = rest[0].parse::<usize>()
                && let Some(e) = items.get(i)
            {
                from_value(e, &rest[1..], index.or(Some(i)), expand, out);
            }
            for (i, e) in items.iter().enumerate() {
                if let Bson::Document(d) = e {
                    from_doc(d, rest, index.or(Some(i)), expand, out);
                }
            }
            if out.len() == before {
                out.push(Candidate { value: None, index });
            }
        }
        _ => out.push(Candidate { value: None, index }),
    }
}

/// An aggregation field path (`$a.b` without the `$`): documents by field, arrays mapped
/// element by element (keeping only what the rest of the path finds); `None` when missing.
pub(crate) fn field_path(doc: &Document, path: &str) -> Option<Bson> {
    let parts: Vec<&str> = path.split('.').collect();
    let (head, rest) = parts.split_first()?;
    walk_field(doc.get(*head)?, rest)
}

fn walk_field(v: &Bson, rest: &[&str]) -> Option<Bson> {
    let Some((head, tail)) = rest.split_first() else {
        return Some(v.clone());
    };
    match v {
        Bson::Document(d) => walk_field(d.get(*head)?, tail),
        Bson::Array(items) => Some(Bson::Array(
            items
                .iter()
                .filter_map(|e| match e {
                    Bson::Document(_) | Bson::Array(_) => walk_field(e, rest),
                    _ => None,
                })
                .collect(),
        )),
        _ => None,
    }
}

/// The value at an exact path (numeric parts index arrays), as an update sees it.
pub(crate) fn get<'a>(doc: &'a Document, path: &str) -> Option<&'a Bson> {
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

fn not_viable(part: &str, field: &str, blocking: &Bson) -> CommandError {
    CommandError::new(
        28,
        "PathNotViable",
        format!(
            "Cannot create field '{part}' in element {{{field}: {}}}",
            shell(blocking)
        ),
    )
}

/// Sets `path` to `value`, creating documents on the way and padding arrays with nulls.
///
/// # Errors
///
/// `PathNotViable` when a scalar is in the way, or a non-numeric part meets an array.
pub(crate) fn set(doc: &mut Document, path: &str, value: Bson) -> Result<(), CommandError> {
    let parts: Vec<&str> = path.split('.').collect();
    set_in_doc(doc, &parts, value)
}

fn set_in_doc(d: &mut Document, parts: &[&str], value: Bson) -> Result<(), CommandError> {
    let Some((head, rest)) = parts.split_first() else {
        return Ok(());
    };
    if rest.is_empty() {
        d.insert(*head, value);
        return Ok(());
    }
    if !d.contains_key(*head) {
        d.insert(*head, Document::new());
    }
    match d.get_mut(*head) {
        Some(v) => set_in_value(v, head, rest, value),
        None => Ok(()),
    }
}

fn set_in_value(v: &mut Bson, field: &str, rest: &[&str], value: Bson) -> Result<(), CommandError> {
    match v {
        Bson::Document(d) => set_in_doc(d, rest, value),
        Bson::Array(items) => {
            let Ok(i) = rest[0].parse::<usize>() else {
                return Err(not_viable(rest[0], field, &Bson::Array(items.clone())));
            };
            while items.len() <= i {
                items.push(Bson::Null);
            }
            if rest.len() == 1 {
                items[i] = value;
                return Ok(());
            }
            if matches!(items[i], Bson::Null) {
                items[i] = Bson::Document(Document::new());
            }
            set_in_value(&mut items[i], rest[0], &rest[1..], value)
        }
        other => Err(not_viable(rest[0], field, other)),
    }
}

/// Removes `path` (an array element becomes null, as `$unset` leaves it); a missing path is a
/// no-op.
pub(crate) fn unset(doc: &mut Document, path: &str) {
    let parts: Vec<&str> = path.split('.').collect();
    unset_in_doc(doc, &parts);
}

fn unset_in_doc(d: &mut Document, parts: &[&str]) {
    let Some((head, rest)) = parts.split_first() else {
        return;
    };
    if rest.is_empty() {
        d.remove(*head);
        return;
    }
    if let Some(v) = d.get_mut(*head) {
        unset_in_value(v, rest);
    }
}

fn unset_in_value(v: &mut Bson, rest: &[&str]) {
    match v {
        Bson::Document(d) => unset_in_doc(d, rest),
        Bson::Array(items) => {
            if let Ok(i) = rest[0].parse::<usize>()
                && let Some(e) = items.get_mut(i)
            {
                if rest.len() == 1 {
                    *e = Bson::Null;
                } else {
                    unset_in_value(e, &rest[1..]);
                }
            }
        }
        _ => {}
    }
}

/// Whether one path is the other or lies inside it (`a` and `a.b`), component by component.
pub(crate) fn overlaps(a: &str, b: &str) -> bool {
    let (short, long) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    long == short || long.strip_prefix(short).is_some_and(|r| r.starts_with('.'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::doc;

    #[test]
    fn query_paths_walk_arrays_of_documents_and_record_the_position() {
        let d = doc! {"items": [{"k": "p"}, {"k": "q"}], "n": [1, 2]};
        let ks: Vec<_> = candidates(&d, "items.k", true)
            .into_iter()
            .map(|c| (c.value.cloned(), c.index))
            .collect();
        assert_eq!(
            ks,
            vec![
                (Some(Bson::from("p")), Some(0)),
                (Some(Bson::from("q")), Some(1))
            ]
        );
        let n: Vec<_> = candidates(&d, "n", true)
            .into_iter()
            .map(|c| c.index)
            .collect();
        assert_eq!(n, vec![None, Some(0), Some(1)]);
        assert!(
            candidates(&d, "items.1.k", true)
                .iter()
                .any(|c| c.value == Some(&Bson::from("q")))
        );
        assert!(candidates(&d, "missing.x", true)[0].value.is_none());
    }

    #[test]
    fn field_paths_map_over_arrays() {
        let d = doc! {"a": [{"b": 1}, {"b": 2}, {"c": 3}], "x": {"y": 5}};
        assert_eq!(
            field_path(&d, "a.b"),
            Some(Bson::Array(vec![1.into(), 2.into()]))
        );
        assert_eq!(field_path(&d, "x.y"), Some(Bson::Int32(5)));
        assert_eq!(field_path(&d, "x.z"), None);
    }

    #[test]
    fn updates_create_paths_and_refuse_where_a_value_is_in_the_way() {
        let mut d = doc! {"a": {"b": 1}, "arr": [1]};
        set(&mut d, "c.d", Bson::Int32(2)).expect("created");
        set(&mut d, "arr.2", Bson::Int32(3)).expect("padded");
        assert_eq!(d, doc! {"a": {"b": 1}, "arr": [1, null, 3], "c": {"d": 2}});
        let e = set(&mut d, "a.b.c", Bson::Int32(1)).expect_err("b is a number");
        assert_eq!(
            (e.code, e.errmsg.as_str()),
            (28, "Cannot create field 'c' in element {b: 1}")
        );
        unset(&mut d, "arr.0");
        assert_eq!(get(&d, "arr.0"), Some(&Bson::Null));
        assert!(overlaps("a", "a.b") && overlaps("a.b", "a.b") && !overlaps("a", "ab"));
    }
}
