//! Query filters (`find`, `$match`, update and delete selectors): parsed into a tree first, so
//! an operator the server does not implement is refused even on an empty collection, then
//! matched with the server's array semantics, remembering which array element matched for the
//! positional `$`.

use std::cmp::Ordering;

use bson::{Bson, Document};

use super::expr::{self, Env, Expr};
use super::path::{Candidate, candidates};
use super::regex::Regex;
use super::value::{
    alias_numbers, as_f64, as_i64, compare, equal, is_number, truthy, type_number, type_rank,
};
use crate::mongo::error::CommandError;
use crate::mongo::refuse::Unsupported;

/// A parsed filter: every clause must hold.
#[derive(Debug, Clone, Default)]
pub(crate) struct Filter {
    clauses: Vec<Node>,
}

#[derive(Debug, Clone)]
enum Node {
    And(Vec<Filter>),
    Or(Vec<Filter>),
    Nor(Vec<Filter>),
    Expr(Expr),
    Field(String, Vec<Pred>),
}

#[derive(Debug, Clone)]
enum Pred {
    Eq(Bson),
    Ne(Bson),
    Cmp(CmpOp, Bson),
    In(Vec<InItem>),
    Nin(Vec<InItem>),
    Exists(bool),
    Type(Vec<i32>),
    Regex(Regex),
    Not(Vec<Pred>),
    All(Vec<Pred>),
    Size(i64),
    ElemMatchDoc(Filter),
    ElemMatchValue(Vec<Pred>),
    Mod(i64, i64),
}

#[derive(Debug, Clone, Copy)]
enum CmpOp {
    Gt,
    Gte,
    Lt,
    Lte,
}

#[derive(Debug, Clone)]
enum InItem {
    Value(Bson),
    Regex(Regex),
}

/// The query operators the matcher implements (the docs list them).
#[cfg(test)]
pub(crate) const QUERY_OPERATORS: &[&str] = &[
    "$eq",
    "$ne",
    "$gt",
    "$gte",
    "$lt",
    "$lte",
    "$in",
    "$nin",
    "$exists",
    "$type",
    "$regex",
    "$options",
    "$not",
    "$all",
    "$size",
    "$elemMatch",
    "$mod",
];

/// The top-level operators the matcher implements (the docs list them).
#[cfg(test)]
pub(crate) const TOP_LEVEL_OPERATORS: &[&str] = &["$and", "$or", "$nor", "$expr", "$comment"];

fn bad_value(msg: impl Into<String>) -> CommandError {
    CommandError::bad_value(msg.into())
}

impl Filter {
    /// Parses a filter document.
    ///
    /// # Errors
    ///
    /// [`Unsupported`] for operators this server does not implement; the server's `BadValue`
    /// errors for malformed ones.
    pub(crate) fn parse(filter: &Document) -> Result<Self, CommandError> {
        let mut clauses = Vec::new();
        for (key, cond) in filter {
            match key.as_str() {
                "$and" | "$or" | "$nor" => {
                    let Bson::Array(items) = cond else {
                        return Err(bad_value(format!("{key} must be an array")));
                    };
                    if items.is_empty() {
                        return Err(bad_value("$and/$or/$nor must be a nonempty array"));
                    }
                    let mut subs = Vec::new();
                    for i in items {
                        let Bson::Document(d) = i else {
                            return Err(bad_value("$or/$and/$nor entries need to be full objects"));
                        };
                        subs.push(Filter::parse(d)?);
                    }
                    clauses.push(match key.as_str() {
                        "$and" => Node::And(subs),
                        "$or" => Node::Or(subs),
                        _ => Node::Nor(subs),
                    });
                }
                "$expr" => clauses.push(Node::Expr(expr::parse(cond)?)),
                "$comment" => {}
                k if k.starts_with('$') => return Err(Unsupported::TopLevelOperator(k).error()),
                path => clauses.push(Node::Field(path.to_owned(), parse_condition(cond)?)),
            }
        }
        Ok(Self { clauses })
    }

    /// Whether `doc` matches.
    ///
    /// # Errors
    ///
    /// An `$expr` that fails to evaluate.
    pub(crate) fn matches(&self, doc: &Document) -> Result<bool, CommandError> {
        let mut pos = None;
        self.matches_at(doc, &mut pos)
    }

    /// Whether `doc` matches, and the position of the array element that matched (for `$`).
    ///
    /// # Errors
    ///
    /// As [`Filter::matches`].
    pub(crate) fn matches_at(
        &self,
        doc: &Document,
        pos: &mut Option<usize>,
    ) -> Result<bool, CommandError> {
        self.eval_at(doc, pos, &Env::default())
    }

    /// Whether `doc` matches, with `$expr` seeing the variables of `env` (`$lookup`'s `let`).
    ///
    /// # Errors
    ///
    /// As [`Filter::matches`].
    pub(crate) fn matches_with(&self, doc: &Document, env: &Env) -> Result<bool, CommandError> {
        let mut pos = None;
        self.eval_at(doc, &mut pos, env)
    }

    fn eval_at(
        &self,
        doc: &Document,
        pos: &mut Option<usize>,
        env: &Env,
    ) -> Result<bool, CommandError> {
        for c in &self.clauses {
            let ok = match c {
                Node::And(subs) => {
                    let mut all = true;
                    for s in subs {
                        if !s.eval_at(doc, pos, env)? {
                            all = false;
                            break;
                        }
                    }
                    all
                }
                Node::Or(subs) => {
                    let mut any = false;
                    for s in subs {
                        if s.eval_at(doc, pos, env)? {
                            any = true;
                            break;
                        }
                    }
                    any
                }
                Node::Nor(subs) => {
                    let mut any = false;
                    for s in subs {
                        let mut ignored = None;
                        any |= s.eval_at(doc, &mut ignored, env)?;
                    }
                    !any
                }
                Node::Expr(e) => truthy(expr::eval(e, doc, env)?.as_ref()),
                Node::Field(path, preds) => field_matches(doc, path, preds, pos),
            };
            if !ok {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// The equality fields of the filter, which an upsert copies into the new document.
    pub(crate) fn equalities(filter: &Document) -> Vec<(String, Bson)> {
        let mut out = Vec::new();
        for (k, v) in filter {
            if k == "$and"
                && let Bson::Array(items) = v
            {
                for i in items {
                    if let Bson::Document(d) = i {
                        out.extend(Self::equalities(d));
                    }
                }
                continue;
            }
            if k.starts_with('$') {
                continue;
            }
            match v {
                Bson::Document(d) if d.keys().next().is_some_and(|f| f.starts_with('$')) => {
                    if let Some(eq) = d.get("$eq")
                        && d.len() == 1
                    {
                        out.push((k.clone(), eq.clone()));
                    }
                }
                Bson::RegularExpression(_) => {}
                other => out.push((k.clone(), other.clone())),
            }
        }
        out
    }
}

fn parse_condition(cond: &Bson) -> Result<Vec<Pred>, CommandError> {
    match cond {
        Bson::RegularExpression(r) => Ok(vec![Pred::Regex(Regex::new(&r.pattern, &r.options)?)]),
        Bson::Document(d) if d.keys().next().is_some_and(|k| k.starts_with('$')) => {
            parse_operators(d)
        }
        other => Ok(vec![Pred::Eq(other.clone())]),
    }
}

fn parse_operators(d: &Document) -> Result<Vec<Pred>, CommandError> {
    let mut preds = Vec::new();
    for (op, arg) in d {
        let pred = match op.as_str() {
            "$eq" => Pred::Eq(arg.clone()),
            "$ne" => Pred::Ne(arg.clone()),
            "$gt" => Pred::Cmp(CmpOp::Gt, arg.clone()),
            "$gte" => Pred::Cmp(CmpOp::Gte, arg.clone()),
            "$lt" => Pred::Cmp(CmpOp::Lt, arg.clone()),
            "$lte" => Pred::Cmp(CmpOp::Lte, arg.clone()),
            "$in" | "$nin" => {
                let Bson::Array(items) = arg else {
                    return Err(bad_value(format!("{op} needs an array")));
                };
                let mut list = Vec::new();
                for i in items {
                    list.push(match i {
                        Bson::RegularExpression(r) => {
                            InItem::Regex(Regex::new(&r.pattern, &r.options)?)
                        }
                        Bson::Document(d)
                            if d.keys().next().is_some_and(|k| k.starts_with('$')) =>
                        {
                            return Err(bad_value("cannot nest $ under $in"));
                        }
                        v => InItem::Value(v.clone()),
                    });
                }
                if op == "$in" {
                    Pred::In(list)
                } else {
                    Pred::Nin(list)
                }
            }
            "$exists" => Pred::Exists(truthy(Some(arg))),
            "$type" => Pred::Type(type_list(arg)?),
            "$regex" => {
                let options = d.get_str("$options").unwrap_or("");
                match arg {
                    Bson::String(p) => Pred::Regex(Regex::new(p, options)?),
                    Bson::RegularExpression(r) => {
                        if !options.is_empty() && !r.options.is_empty() {
                            return Err(bad_value("options set in both $regex and $options"));
                        }
                        let flags = if options.is_empty() {
                            r.options.as_str()
                        } else {
                            options
                        };
                        Pred::Regex(Regex::new(&r.pattern, flags)?)
                    }
                    _ => return Err(bad_value("$regex has to be a string")),
                }
            }
            "$options" => {
                if !d.contains_key("$regex") {
                    return Err(bad_value("$options needs a $regex"));
                }
                continue;
            }
            "$not" => match arg {
                Bson::RegularExpression(r) => {
                    Pred::Not(vec![Pred::Regex(Regex::new(&r.pattern, &r.options)?)])
                }
                Bson::Document(inner)
                    if !inner.is_empty() && inner.keys().all(|k| k.starts_with('$')) =>
                {
                    Pred::Not(parse_operators(inner)?)
                }
                Bson::Document(inner) if inner.is_empty() => {
                    return Err(bad_value("$not cannot be empty"));
                }
                _ => return Err(bad_value("$not needs a regex or a document")),
            },
            "$all" => {
                let Bson::Array(items) = arg else {
                    return Err(bad_value("$all needs an array"));
                };
                let mut all = Vec::new();
                for i in items {
                    all.push(match i {
                        Bson::RegularExpression(r) => {
                            Pred::Regex(Regex::new(&r.pattern, &r.options)?)
                        }
                        Bson::Document(em)
                            if em.keys().next().map(String::as_str) == Some("$elemMatch") =>
                        {
                            parse_operators(em)?
                                .into_iter()
                                .next()
                                .unwrap_or(Pred::All(Vec::new()))
                        }
                        v => Pred::Eq(v.clone()),
                    });
                }
                Pred::All(all)
            }
            "$size" => match as_i64(arg) {
                Some(n) if n >= 0 => Pred::Size(n),
                Some(_) => return Err(bad_value("$size may not be negative")),
                None => return Err(bad_value("$size needs a number")),
            },
            "$elemMatch" => {
                let Bson::Document(inner) = arg else {
                    return Err(bad_value("$elemMatch needs an Object"));
                };
                let value_form = inner.keys().next().is_some_and(|k| {
                    k.starts_with('$') && !matches!(k.as_str(), "$and" | "$or" | "$nor" | "$expr")
                });
                if value_form {
                    Pred::ElemMatchValue(parse_operators(inner)?)
                } else {
                    Pred::ElemMatchDoc(Filter::parse(inner)?)
                }
            }
            "$mod" => {
                let Bson::Array(items) = arg else {
                    return Err(bad_value("malformed mod, needs to be an array"));
                };
                if items.len() != 2 {
                    return Err(bad_value(if items.len() < 2 {
                        "malformed mod, not enough elements"
                    } else {
                        "malformed mod, too many elements"
                    }));
                }
                let (Some(div), Some(rem)) = (as_f64(&items[0]), as_f64(&items[1])) else {
                    return Err(bad_value(
                        "malformed mod, divisor and remainder not numbers",
                    ));
                };
                if div.trunc() == 0.0 {
                    return Err(bad_value("divisor cannot be 0"));
                }
                Pred::Mod(div.trunc() as i64, rem.trunc() as i64)
            }
            other => return Err(Unsupported::QueryOperator(other).error()),
        };
        preds.push(pred);
    }
    Ok(preds)
}

fn type_list(arg: &Bson) -> Result<Vec<i32>, CommandError> {
    let one = |v: &Bson| -> Result<Vec<i32>, CommandError> {
        match v {
            Bson::String(alias) => alias_numbers(alias)
                .ok_or_else(|| bad_value(format!("Unknown type name alias: {alias}"))),
            n if is_number(n) => {
                let code = as_i64(n)
                    .and_then(|c| i32::try_from(c).ok())
                    .ok_or_else(|| bad_value("Invalid numerical type code"))?;
                if (1..=19).contains(&code) || code == -1 || code == 127 {
                    Ok(vec![code])
                } else {
                    Err(bad_value(format!("Invalid numerical type code: {code}")))
                }
            }
            _ => Err(bad_value(
                "type must be represented as a number or a string",
            )),
        }
    };
    match arg {
        Bson::Array(items) => {
            let mut out = Vec::new();
            for i in items {
                out.extend(one(i)?);
            }
            Ok(out)
        }
        v => one(v),
    }
}

fn field_matches(doc: &Document, path: &str, preds: &[Pred], pos: &mut Option<usize>) -> bool {
    preds.iter().all(|p| pred_matches(doc, path, p, pos))
}

/// Equality the server's way: null also matches a missing field.
fn value_equals(value: Option<&Bson>, target: &Bson) -> bool {
    match value {
        None => matches!(target, Bson::Null),
        Some(v) => equal(v, target),
    }
}

fn first_match<'a>(
    cands: &[Candidate<'a>],
    pos: &mut Option<usize>,
    test: impl Fn(&Candidate<'a>) -> bool,
) -> bool {
    match cands.iter().find(|c| test(c)) {
        Some(c) => {
            if pos.is_none() {
                *pos = c.index;
            }
            true
        }
        None => false,
    }
}

fn cmp_matches(op: CmpOp, value: Option<&Bson>, target: &Bson) -> bool {
    let want = |o: Ordering| match op {
        CmpOp::Gt => o.is_gt(),
        CmpOp::Gte => o.is_ge(),
        CmpOp::Lt => o.is_lt(),
        CmpOp::Lte => o.is_le(),
    };
    match value {
        None => matches!(target, Bson::Null) && matches!(op, CmpOp::Gte | CmpOp::Lte),
        Some(v) => {
            let comparable =
                type_rank(v) == type_rank(target) || matches!(target, Bson::MinKey | Bson::MaxKey);
            comparable && want(compare(v, target))
        }
    }
}

fn in_matches(items: &[InItem], value: Option<&Bson>) -> bool {
    items.iter().any(|i| match i {
        InItem::Value(t) => value_equals(value, t),
        InItem::Regex(r) => value.is_some_and(|v| r.matches_value(v)),
    })
}

fn pred_matches(doc: &Document, path: &str, pred: &Pred, pos: &mut Option<usize>) -> bool {
    match pred {
        Pred::Eq(t) => first_match(&candidates(doc, path, true), pos, |c| {
            value_equals(c.value, t)
        }),
        Pred::Ne(t) => !candidates(doc, path, true)
            .iter()
            .any(|c| value_equals(c.value, t)),
        Pred::Cmp(op, t) => first_match(&candidates(doc, path, true), pos, |c| {
            cmp_matches(*op, c.value, t)
        }),
        Pred::In(items) => first_match(&candidates(doc, path, true), pos, |c| {
            in_matches(items, c.value)
        }),
        Pred::Nin(items) => !candidates(doc, path, true)
            .iter()
            .any(|c| in_matches(items, c.value)),
        Pred::Exists(want) => {
            candidates(doc, path, false)
                .iter()
                .any(|c| c.value.is_some())
                == *want
        }
        Pred::Type(types) => first_match(&candidates(doc, path, true), pos, |c| {
            c.value.is_some_and(|v| types.contains(&type_number(v)))
        }),
        Pred::Regex(r) => first_match(&candidates(doc, path, true), pos, |c| {
            c.value.is_some_and(|v| r.matches_value(v))
        }),
        Pred::Not(preds) => {
            let mut ignored = None;
            !field_matches(doc, path, preds, &mut ignored)
        }
        Pred::All(items) => {
            !items.is_empty() && items.iter().all(|p| pred_matches(doc, path, p, pos))
        }
        Pred::Size(n) => candidates(doc, path, false)
            .iter()
            .any(|c| matches!(c.value, Some(Bson::Array(a)) if a.len() as i64 == *n)),
        Pred::ElemMatchDoc(filter) => candidates(doc, path, false).iter().any(|c| {
            let Some(Bson::Array(items)) = c.value else {
                return false;
            };
            items.iter().enumerate().any(|(i, e)| {
                let hit = match e {
                    Bson::Document(d) => filter.matches(d).unwrap_or(false),
                    _ => false,
                };
                if hit && pos.is_none() {
                    *pos = c.index.or(Some(i));
                }
                hit
            })
        }),
        Pred::ElemMatchValue(preds) => candidates(doc, path, false).iter().any(|c| {
            let Some(Bson::Array(items)) = c.value else {
                return false;
            };
            items.iter().enumerate().any(|(i, e)| {
                let wrapped = bson::doc! {"v": e.clone()};
                let mut ignored = None;
                let hit = field_matches(&wrapped, "v", preds, &mut ignored);
                if hit && pos.is_none() {
                    *pos = c.index.or(Some(i));
                }
                hit
            })
        }),
        Pred::Mod(div, rem) => first_match(&candidates(doc, path, true), pos, |c| {
            c.value
                .filter(|v| is_number(v))
                .and_then(as_f64)
                .is_some_and(|x| (x.trunc() as i64) % div == *rem)
        }),
    }
}

/// A parsed sort specification.
#[derive(Debug, Clone, Default)]
pub(crate) struct Sort {
    keys: Vec<(String, bool)>,
}

impl Sort {
    /// Parses `{field: 1 | -1, ...}`.
    ///
    /// # Errors
    ///
    /// 15975 for another ordering, [`Unsupported::Expression`] for `{$meta: ...}`.
    pub(crate) fn parse(spec: &Document) -> Result<Self, CommandError> {
        let mut keys = Vec::new();
        for (k, v) in spec {
            let ascending = match v {
                Bson::Document(d) if d.contains_key("$meta") => {
                    return Err(Unsupported::Expression("$meta").error());
                }
                n if is_number(n) && (as_f64(n) == Some(1.0) || as_f64(n) == Some(-1.0)) => {
                    as_f64(n) == Some(1.0)
                }
                _ => {
                    return Err(CommandError::new(
                        15975,
                        "Location15975",
                        "$sort key ordering must be 1 (for ascending) or -1 (for descending)",
                    ));
                }
            };
            keys.push((k.clone(), ascending));
        }
        Ok(Self { keys })
    }

    /// Sorts `docs` stably: an array sorts by its smallest element ascending, its largest
    /// descending; missing sorts as null.
    pub(crate) fn apply(&self, docs: &mut [Document]) {
        if self.keys.is_empty() {
            return;
        }
        docs.sort_by(|a, b| self.order(a, b));
    }

    /// How two documents compare under this sort.
    pub(crate) fn order(&self, a: &Document, b: &Document) -> Ordering {
        for (key, ascending) in &self.keys {
            if key == "$natural" {
                continue;
            }
            let (ka, kb) = (sort_key(a, key, *ascending), sort_key(b, key, *ascending));
            let o = compare(&ka, &kb);
            if o != Ordering::Equal {
                return if *ascending { o } else { o.reverse() };
            }
        }
        Ordering::Equal
    }

    /// Whether the sort is `$natural` descending (a reversed scan).
    pub(crate) fn natural_reversed(&self) -> bool {
        self.keys
            .first()
            .is_some_and(|(k, asc)| k == "$natural" && !asc)
    }
}

fn sort_key(doc: &Document, path: &str, ascending: bool) -> Bson {
    let cands = candidates(doc, path, true);
    let values: Vec<&Bson> = cands
        .iter()
        .filter_map(|c| c.value)
        .filter(|v| !matches!(v, Bson::Array(a) if !a.is_empty()))
        .collect();
    let best = if ascending {
        values.into_iter().min_by(|x, y| compare(x, y))
    } else {
        values.into_iter().max_by(|x, y| compare(x, y))
    };
    best.cloned().unwrap_or(Bson::Null)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::doc;

    fn m(d: &Document, f: Document) -> bool {
        Filter::parse(&f)
            .expect("parses")
            .matches(d)
            .expect("matches")
    }

    #[test]
    fn comparisons_arrays_and_logic() {
        let d = doc! {"seq": 5_i64, "tag": "a", "list": [1, 2], "items": [{"k": "p", "n": 1}, {"k": "q", "n": 9}]};
        assert!(m(&d, doc! {"seq": 5}));
        assert!(m(&d, doc! {"seq": {"$gt": 4, "$lte": 5.0}}));
        assert!(!m(&d, doc! {"seq": {"$lt": 5}}));
        assert!(m(&d, doc! {"tag": {"$in": ["b", "a"]}}));
        assert!(m(&d, doc! {"list": 2}));
        assert!(m(&d, doc! {"list": [1, 2]}));
        assert!(!m(&d, doc! {"missing": {"$gt": 1}}));
        assert!(m(&d, doc! {"missing": null}));
        assert!(m(&d, doc! {"$or": [{"tag": "x"}, {"seq": 5}]}));
        assert!(m(&d, doc! {"items.n": 9, "items.k": "p"}));
        assert!(!m(&d, doc! {"items": {"$elemMatch": {"k": "p", "n": 9}}}));
        assert!(m(&d, doc! {"list": {"$elemMatch": {"$gt": 1, "$lt": 3}}}));
        assert!(m(
            &d,
            doc! {"list": {"$size": 2}, "tag": {"$type": "string"}}
        ));
        assert!(m(&d, doc! {"seq": {"$not": {"$gt": 6}}}));
        assert!(m(&d, doc! {"$expr": {"$gt": ["$seq", 4]}}));
        assert!(m(&d, doc! {"seq": {"$mod": [2, 1]}}));
        assert!(m(&d, doc! {"tag": {"$regex": "^A", "$options": "i"}}));
        assert!(m(&d, doc! {"list": {"$all": [2, 1]}}));
    }

    #[test]
    fn the_matched_array_position_is_remembered() {
        let d = doc! {"grades": [80, 85, 90], "items": [{"sku": "a"}, {"sku": "b"}]};
        let mut pos = None;
        assert!(
            Filter::parse(&doc! {"grades": 85})
                .expect("parses")
                .matches_at(&d, &mut pos)
                .expect("ok")
        );
        assert_eq!(pos, Some(1));
        let mut pos = None;
        assert!(
            Filter::parse(&doc! {"items.sku": "b"})
                .expect("parses")
                .matches_at(&d, &mut pos)
                .expect("ok")
        );
        assert_eq!(pos, Some(1));
    }

    #[test]
    fn operators_it_does_not_implement_are_refused_at_parse() {
        let e = Filter::parse(&doc! {"a": {"$near": [0, 0]}}).expect_err("refused");
        assert_eq!(
            (e.code, e.errmsg.starts_with("unknown operator: $near")),
            (2, true)
        );
        let e = Filter::parse(&doc! {"$where": "true"}).expect_err("refused");
        assert!(e.errmsg.starts_with("unknown top level operator: $where"));
    }

    #[test]
    fn sorts_arrays_by_their_extreme_element() {
        let mut docs = vec![doc! {"n": [5, 1]}, doc! {"n": 3}, doc! {"n": 2.5}];
        Sort::parse(&doc! {"n": 1})
            .expect("parses")
            .apply(&mut docs);
        assert_eq!(docs[0], doc! {"n": [5, 1]});
        Sort::parse(&doc! {"n": -1})
            .expect("parses")
            .apply(&mut docs);
        assert_eq!(docs[0], doc! {"n": [5, 1]});
        assert_eq!(docs[2], doc! {"n": 2.5});
    }
}
