//! Aggregation expressions (`$add`, `"$a.b"`, `$$var`, `$cond`, `$map`, …): parsed once, so an
//! operator the server does not implement is refused before any document is read, then
//! evaluated per document. A missing value is `None`, distinct from null, as on the server.

use std::cmp::Ordering;

use bson::{Bson, Document};

use super::path::field_path;
use super::regex::Regex;
use super::value::{add, as_f64, as_i64, compare, equal, is_number, multiply, truthy, type_name};
use crate::mongo::error::CommandError;
use crate::mongo::refuse::Unsupported;

/// A parsed expression.
#[derive(Debug, Clone)]
pub(crate) enum Expr {
    Literal(Bson),
    /// `"$a.b"`: a path from the current document.
    Field(String),
    /// `"$$name"` or `"$$name.path"`.
    Var(String, Option<String>),
    Array(Vec<Expr>),
    Object(Vec<(String, Expr)>),
    /// An operator and its arguments (one argument unless given as an array).
    Op(&'static str, Vec<Expr>),
    /// Operators with named arguments.
    Named(&'static str, Vec<(String, Expr)>),
}

/// Operators whose arguments are a list (or one value).
const LIST_OPERATORS: &[&str] = &[
    "$add",
    "$subtract",
    "$multiply",
    "$divide",
    "$mod",
    "$abs",
    "$ceil",
    "$floor",
    "$round",
    "$trunc",
    "$eq",
    "$ne",
    "$gt",
    "$gte",
    "$lt",
    "$lte",
    "$cmp",
    "$and",
    "$or",
    "$not",
    "$cond",
    "$ifNull",
    "$in",
    "$size",
    "$arrayElemAt",
    "$first",
    "$last",
    "$concatArrays",
    "$isArray",
    "$slice",
    "$reverseArray",
    "$concat",
    "$toUpper",
    "$toLower",
    "$substrCP",
    "$substr",
    "$substrBytes",
    "$strLenCP",
    "$split",
    "$type",
    "$toString",
    "$toInt",
    "$toLong",
    "$toDouble",
    "$toBool",
    "$mergeObjects",
    "$objectToArray",
    "$arrayToObject",
    "$sum",
    "$avg",
    "$min",
    "$max",
];

/// Operators whose argument is a document of named arguments.
const NAMED_OPERATORS: &[&str] = &[
    "$map",
    "$filter",
    "$reduce",
    "$let",
    "$switch",
    "$regexMatch",
];

/// Every expression operator the embedded server evaluates (the docs list them).
#[cfg(test)]
pub(crate) fn operators() -> impl Iterator<Item = &'static str> {
    LIST_OPERATORS
        .iter()
        .chain(NAMED_OPERATORS)
        .chain(&["$literal"])
        .copied()
}

fn fail(code: i32, code_name: &'static str, msg: String) -> CommandError {
    CommandError::new(code, code_name, msg)
}

/// Parses an expression.
///
/// # Errors
///
/// [`Unsupported::Expression`] for an operator this server does not evaluate, and the server's
/// parse errors for malformed ones.
pub(crate) fn parse(v: &Bson) -> Result<Expr, CommandError> {
    match v {
        Bson::String(s) if s.starts_with("$$") => {
            let rest = &s[2..];
            let (name, path) = match rest.split_once('.') {
                Some((n, p)) => (n, Some(p.to_owned())),
                None => (rest, None),
            };
            Ok(Expr::Var(name.to_owned(), path))
        }
        Bson::String(s) if s.starts_with('$') => {
            if s.len() == 1 {
                return Err(fail(
                    16872,
                    "Location16872",
                    "'$' by itself is not a valid FieldPath".into(),
                ));
            }
            Ok(Expr::Field(s[1..].to_owned()))
        }
        Bson::Array(items) => Ok(Expr::Array(
            items.iter().map(parse).collect::<Result<_, _>>()?,
        )),
        Bson::Document(d) => parse_doc(d),
        other => Ok(Expr::Literal(other.clone())),
    }
}

fn parse_doc(d: &Document) -> Result<Expr, CommandError> {
    let Some(first) = d.keys().next() else {
        return Ok(Expr::Object(Vec::new()));
    };
    if first.starts_with('$') {
        if d.len() > 1 {
            return Err(fail(
                15983,
                "Location15983",
                format!(
                    "an expression specification must contain exactly one field, the name of the expression. Found {} fields in {}",
                    d.len(),
                    super::value::shell_doc(d)
                ),
            ));
        }
        let arg = d.get(first).unwrap_or(&Bson::Null);
        return parse_operator(first, arg);
    }
    let mut fields = Vec::new();
    for (k, v) in d {
        if k.starts_with('$') {
            return Err(fail(
                16410,
                "Location16410",
                "FieldPath field names may not start with '$'. Consider using $getField or $setField.".to_owned(),
            ));
        }
        fields.push((k.clone(), parse(v)?));
    }
    Ok(Expr::Object(fields))
}

fn parse_operator(name: &str, arg: &Bson) -> Result<Expr, CommandError> {
    if name == "$literal" {
        return Ok(Expr::Literal(arg.clone()));
    }
    if let Some(op) = LIST_OPERATORS.iter().find(|o| **o == name) {
        let args = match arg {
            Bson::Array(items) => items.iter().map(parse).collect::<Result<_, _>>()?,
            one => vec![parse(one)?],
        };
        return Ok(Expr::Op(op, args));
    }
    if let Some(op) = NAMED_OPERATORS.iter().find(|o| **o == name) {
        let Bson::Document(d) = arg else {
            return Err(fail(
                16878,
                "Location16878",
                format!("{name} only supports an object as its argument"),
            ));
        };
        let mut named = Vec::new();
        for (k, v) in d {
            let parsed = if k == "vars" || k == "branches" {
                // Documents of sub-expressions, kept as parsed objects/arrays.
                parse_raw_container(v)?
            } else {
                parse(v)?
            };
            named.push((k.clone(), parsed));
        }
        return Ok(Expr::Named(op, named));
    }
    Err(Unsupported::Expression(name).error())
}

/// `vars` of `$let` (a document of expressions) and `branches` of `$switch` (an array of
/// `{case, then}` documents): containers whose members are expressions.
fn parse_raw_container(v: &Bson) -> Result<Expr, CommandError> {
    match v {
        Bson::Document(d) => Ok(Expr::Object(
            d.iter()
                .map(|(k, v)| Ok((k.clone(), parse(v)?)))
                .collect::<Result<_, CommandError>>()?,
        )),
        Bson::Array(items) => Ok(Expr::Array(
            items
                .iter()
                .map(parse_raw_container)
                .collect::<Result<_, _>>()?,
        )),
        other => parse(other),
    }
}

/// Variables in scope: `ROOT` and `CURRENT` are the document; user variables shadow by name.
#[derive(Debug, Clone, Default)]
pub(crate) struct Env {
    vars: Vec<(String, Bson)>,
    /// `$$NOW`.
    pub now: Option<bson::DateTime>,
}

impl Env {
    pub(crate) fn new(now: Option<bson::DateTime>) -> Self {
        Self {
            vars: Vec::new(),
            now,
        }
    }

    /// A copy with `name` bound to `value`.
    pub(crate) fn with(&self, name: &str, value: Bson) -> Self {
        let mut e = self.clone();
        e.vars.push((name.to_owned(), value));
        e
    }

    fn get(&self, name: &str) -> Option<&Bson> {
        self.vars
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v)
    }
}

type Value = Option<Bson>;

/// Evaluates `e` against `doc`.
///
/// # Errors
///
/// The server's errors for arguments of the wrong type (`$size` of a string, `$divide` by zero).
pub(crate) fn eval(e: &Expr, doc: &Document, env: &Env) -> Result<Value, CommandError> {
    match e {
        Expr::Literal(v) => Ok(Some(v.clone())),
        Expr::Field(path) => Ok(field_path(doc, path)),
        Expr::Var(name, path) => {
            let base = match name.as_str() {
                "ROOT" | "CURRENT" => Bson::Document(doc.clone()),
                "REMOVE" => return Ok(None),
                "NOW" => match env.now {
                    Some(now) => Bson::DateTime(now),
                    None => return Err(undefined_var(name)),
                },
                other => env
                    .get(other)
                    .cloned()
                    .ok_or_else(|| undefined_var(other))?,
            };
            Ok(match path {
                None => Some(base),
                Some(p) => match &base {
                    Bson::Document(d) => field_path(d, p),
                    Bson::Array(_) => {
                        let wrapped = bson::doc! {"v": base.clone()};
                        field_path(&wrapped, &format!("v.{p}"))
                    }
                    _ => None,
                },
            })
        }
        Expr::Array(items) => {
            let mut out = Vec::with_capacity(items.len());
            for i in items {
                // A missing element becomes null inside an array literal.
                out.push(eval(i, doc, env)?.unwrap_or(Bson::Null));
            }
            Ok(Some(Bson::Array(out)))
        }
        Expr::Object(fields) => {
            let mut out = Document::new();
            for (k, v) in fields {
                if let Some(value) = eval(v, doc, env)? {
                    out.insert(k.clone(), value);
                }
            }
            Ok(Some(Bson::Document(out)))
        }
        Expr::Op(op, args) => eval_op(op, args, doc, env),
        Expr::Named(op, args) => eval_named(op, args, doc, env),
    }
}

fn undefined_var(name: &str) -> CommandError {
    fail(
        17276,
        "Location17276",
        format!("Use of undefined variable: {name}"),
    )
}

fn arity(op: &str, args: &[Expr], n: usize) -> Result<(), CommandError> {
    if args.len() == n {
        Ok(())
    } else {
        Err(fail(
            16020,
            "Location16020",
            format!(
                "Expression {op} takes exactly {n} arguments. {} were passed in.",
                args.len()
            ),
        ))
    }
}

fn nullish(v: &Value) -> bool {
    matches!(v, None | Some(Bson::Null | Bson::Undefined))
}

/// Missing sorts below null in aggregation comparisons.
fn compare_values(a: &Value, b: &Value) -> Ordering {
    match (a, b) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Less,
        (Some(_), None) => Ordering::Greater,
        (Some(x), Some(y)) => compare(x, y),
    }
}

fn type_of(v: &Value) -> &'static str {
    v.as_ref().map_or("missing", type_name)
}

#[allow(clippy::too_many_lines)]
fn eval_op(op: &str, args: &[Expr], doc: &Document, env: &Env) -> Result<Value, CommandError> {
    let all =
        || -> Result<Vec<Value>, CommandError> { args.iter().map(|a| eval(a, doc, env)).collect() };
    let one = || -> Result<Value, CommandError> {
        arity(op, args, 1)?;
        eval(&args[0], doc, env)
    };
    let two = || -> Result<(Value, Value), CommandError> {
        arity(op, args, 2)?;
        Ok((eval(&args[0], doc, env)?, eval(&args[1], doc, env)?))
    };
    Ok(match op {
        "$add" => {
            let vals = all()?;
            if vals.iter().any(nullish) {
                return Ok(Some(Bson::Null));
            }
            let mut date: Option<i64> = None;
            let mut sum = Bson::Int32(0);
            for v in vals.into_iter().flatten() {
                match v {
                    Bson::DateTime(d) => {
                        if date.replace(d.timestamp_millis()).is_some() {
                            return Err(fail(
                                16612,
                                "Location16612",
                                "only one date allowed in an $add expression".into(),
                            ));
                        }
                    }
                    n if is_number(&n) => sum = add(&sum, &n).unwrap_or(Bson::Null),
                    other => {
                        return Err(fail(
                            14,
                            "TypeMismatch",
                            format!(
                                "$add only supports numeric or date types, not {}",
                                type_name(&other)
                            ),
                        ));
                    }
                }
            }
            match date {
                Some(ms) => Some(Bson::DateTime(bson::DateTime::from_millis(
                    ms + as_f64(&sum).unwrap_or(0.0).round() as i64,
                ))),
                None => Some(sum),
            }
        }
        "$multiply" => {
            let vals = all()?;
            if vals.iter().any(nullish) {
                return Ok(Some(Bson::Null));
            }
            let mut product = Bson::Int32(1);
            for v in vals.into_iter().flatten() {
                product = multiply(&product, &v).ok_or_else(|| {
                    fail(
                        14,
                        "TypeMismatch",
                        format!(
                            "$multiply only supports numeric types, not {}",
                            type_name(&v)
                        ),
                    )
                })?;
            }
            Some(product)
        }
        "$subtract" => {
            let (a, b) = two()?;
            if nullish(&a) || nullish(&b) {
                return Ok(Some(Bson::Null));
            }
            match (a.unwrap_or(Bson::Null), b.unwrap_or(Bson::Null)) {
                (Bson::DateTime(x), Bson::DateTime(y)) => {
                    Some(Bson::Int64(x.timestamp_millis() - y.timestamp_millis()))
                }
                (Bson::DateTime(x), n) if is_number(&n) => {
                    Some(Bson::DateTime(bson::DateTime::from_millis(
                        x.timestamp_millis() - as_f64(&n).unwrap_or(0.0).round() as i64,
                    )))
                }
                (x, y) if is_number(&x) && is_number(&y) => {
                    let negated = multiply(&y, &Bson::Int32(-1)).unwrap_or(Bson::Null);
                    add(&x, &negated)
                }
                (x, y) => {
                    return Err(fail(
                        16556,
                        "Location16556",
                        format!(
                            "cant $subtract a {} from a {}",
                            type_name(&y),
                            type_name(&x)
                        ),
                    ));
                }
            }
        }
        "$divide" => {
            let (a, b) = two()?;
            if nullish(&a) || nullish(&b) {
                return Ok(Some(Bson::Null));
            }
            let (x, y) = (a.unwrap_or(Bson::Null), b.unwrap_or(Bson::Null));
            let (Some(x), Some(y)) = (as_f64(&x), as_f64(&y)) else {
                return Err(fail(
                    16609,
                    "Location16609",
                    format!(
                        "$divide only supports numeric types, not {} and {}",
                        type_name(&x),
                        type_name(&y)
                    ),
                ));
            };
            if y == 0.0 {
                return Err(fail(2, "BadValue", "can't $divide by zero".into()));
            }
            Some(Bson::Double(x / y))
        }
        "$mod" => {
            let (a, b) = two()?;
            if nullish(&a) || nullish(&b) {
                return Ok(Some(Bson::Null));
            }
            let (x, y) = (a.unwrap_or(Bson::Null), b.unwrap_or(Bson::Null));
            match (as_i64(&x), as_i64(&y), &x, &y) {
                (_, Some(0), _, _) => {
                    return Err(fail(16610, "Location16610", "can't $mod by zero".into()));
                }
                (Some(i), Some(j), Bson::Int32(_), Bson::Int32(_)) => {
                    Some(Bson::Int32(i32::try_from(i % j).unwrap_or(0)))
                }
                (
                    Some(i),
                    Some(j),
                    Bson::Int32(_) | Bson::Int64(_),
                    Bson::Int32(_) | Bson::Int64(_),
                ) => Some(Bson::Int64(i % j)),
                _ => match (as_f64(&x), as_f64(&y)) {
                    (Some(i), Some(j)) => Some(Bson::Double(i % j)),
                    _ => {
                        return Err(fail(
                            16611,
                            "Location16611",
                            format!(
                                "$mod only supports numeric types, not {} and {}",
                                type_name(&x),
                                type_name(&y)
                            ),
                        ));
                    }
                },
            }
        }
        "$abs" | "$ceil" | "$floor" | "$trunc" | "$round" => {
            let (v, places) = if matches!(op, "$round" | "$trunc") && args.len() == 2 {
                let (v, p) = two()?;
                (v, p.as_ref().and_then(as_i64).unwrap_or(0))
            } else {
                (one()?, 0)
            };
            if nullish(&v) {
                return Ok(Some(Bson::Null));
            }
            let v = v.unwrap_or(Bson::Null);
            if !is_number(&v) {
                return Err(fail(
                    28765,
                    "Location28765",
                    format!("{op} only supports numeric types, not {}", type_name(&v)),
                ));
            }
            match (op, &v) {
                ("$abs", Bson::Int32(i)) => Some(
                    i.checked_abs()
                        .map_or(Bson::Int64(i64::from(*i).abs()), Bson::Int32),
                ),
                ("$abs", Bson::Int64(i)) => Some(Bson::Int64(i.abs())),
                (_, Bson::Int32(_) | Bson::Int64(_)) if op != "$abs" && places >= 0 => Some(v),
                _ => {
                    let x = as_f64(&v).unwrap_or(0.0);
                    let scale = 10f64.powi(i32::try_from(places).unwrap_or(0));
                    Some(Bson::Double(match op {
                        "$abs" => x.abs(),
                        "$ceil" => x.ceil(),
                        "$floor" => x.floor(),
                        "$trunc" => (x * scale).trunc() / scale,
                        _ => round_half_even(x * scale) / scale,
                    }))
                }
            }
        }
        "$eq" | "$ne" | "$gt" | "$gte" | "$lt" | "$lte" | "$cmp" => {
            let (a, b) = two()?;
            let o = compare_values(&a, &b);
            Some(match op {
                "$eq" => Bson::Boolean(o.is_eq()),
                "$ne" => Bson::Boolean(o.is_ne()),
                "$gt" => Bson::Boolean(o.is_gt()),
                "$gte" => Bson::Boolean(o.is_ge()),
                "$lt" => Bson::Boolean(o.is_lt()),
                "$lte" => Bson::Boolean(o.is_le()),
                _ => Bson::Int32(match o {
                    Ordering::Less => -1,
                    Ordering::Equal => 0,
                    Ordering::Greater => 1,
                }),
            })
        }
        "$and" => {
            for a in args {
                if !truthy(eval(a, doc, env)?.as_ref()) {
                    return Ok(Some(Bson::Boolean(false)));
                }
            }
            Some(Bson::Boolean(true))
        }
        "$or" => {
            for a in args {
                if truthy(eval(a, doc, env)?.as_ref()) {
                    return Ok(Some(Bson::Boolean(true)));
                }
            }
            Some(Bson::Boolean(false))
        }
        "$not" => Some(Bson::Boolean(!truthy(one()?.as_ref()))),
        "$cond" => {
            arity(op, args, 3)?;
            if truthy(eval(&args[0], doc, env)?.as_ref()) {
                eval(&args[1], doc, env)?
            } else {
                eval(&args[2], doc, env)?
            }
        }
        "$ifNull" => {
            if args.len() < 2 {
                return Err(fail(
                    1257300,
                    "Location1257300",
                    "$ifNull needs at least two arguments".into(),
                ));
            }
            for a in &args[..args.len() - 1] {
                let v = eval(a, doc, env)?;
                if !nullish(&v) {
                    return Ok(v);
                }
            }
            eval(&args[args.len() - 1], doc, env)?
        }
        "$in" => {
            let (v, list) = two()?;
            let Some(Bson::Array(items)) = list else {
                return Err(fail(
                    40081,
                    "Location40081",
                    format!(
                        "$in requires an array as a second argument, found: {}",
                        type_of(&list)
                    ),
                ));
            };
            let v = v.unwrap_or(Bson::Undefined);
            Some(Bson::Boolean(items.iter().any(|i| equal(i, &v))))
        }
        "$size" => match one()? {
            Some(Bson::Array(a)) => Some(Bson::Int32(i32::try_from(a.len()).unwrap_or(i32::MAX))),
            other => {
                return Err(fail(
                    17124,
                    "Location17124",
                    format!(
                        "The argument to $size must be an array. Type of argument is {}",
                        type_of(&other)
                    ),
                ));
            }
        },
        "$isArray" => Some(Bson::Boolean(matches!(one()?, Some(Bson::Array(_))))),
        "$arrayElemAt" => {
            let (a, i) = two()?;
            if nullish(&a) || nullish(&i) {
                return Ok(Some(Bson::Null));
            }
            let Some(Bson::Array(items)) = a else {
                return Err(fail(
                    28689,
                    "Location28689",
                    format!(
                        "$arrayElemAt's first argument must be an array, but is {}",
                        type_of(&a)
                    ),
                ));
            };
            let Some(i) = i.as_ref().and_then(as_i64) else {
                return Err(fail(
                    28690,
                    "Location28690",
                    format!(
                        "$arrayElemAt's second argument must be a numeric value, but is {}",
                        type_of(&i)
                    ),
                ));
            };
            let len = i64::try_from(items.len()).unwrap_or(i64::MAX);
            let at = if i < 0 { len + i } else { i };
            usize::try_from(at)
                .ok()
                .and_then(|at| items.get(at).cloned())
        }
        "$first" | "$last" => match one()? {
            v if nullish(&v) => Some(Bson::Null),
            Some(Bson::Array(items)) => {
                if op == "$first" {
                    items.first().cloned()
                } else {
                    items.last().cloned()
                }
            }
            other => {
                return Err(fail(
                    28689,
                    "Location28689",
                    format!(
                        "{op}'s argument must be an array, but is {}",
                        type_of(&other)
                    ),
                ));
            }
        },
        "$concatArrays" => {
            let mut out = Vec::new();
            for v in all()? {
                match v {
                    v if nullish(&v) => return Ok(Some(Bson::Null)),
                    Some(Bson::Array(items)) => out.extend(items),
                    other => {
                        return Err(fail(
                            28664,
                            "Location28664",
                            format!(
                                "$concatArrays only supports arrays, not {}",
                                type_of(&other)
                            ),
                        ));
                    }
                }
            }
            Some(Bson::Array(out))
        }
        "$reverseArray" => match one()? {
            v if nullish(&v) => Some(Bson::Null),
            Some(Bson::Array(mut items)) => {
                items.reverse();
                Some(Bson::Array(items))
            }
            other => {
                return Err(fail(
                    34435,
                    "Location34435",
                    format!(
                        "The argument to $reverseArray must be an array, but was of type: {}",
                        type_of(&other)
                    ),
                ));
            }
        },
        "$slice" => {
            if !(2..=3).contains(&args.len()) {
                return Err(fail(
                    28667,
                    "Location28667",
                    format!(
                        "Expression $slice takes at least 2 arguments, and at most 3, but {} were passed in.",
                        args.len()
                    ),
                ));
            }
            let vals = all()?;
            if vals.iter().any(nullish) {
                return Ok(Some(Bson::Null));
            }
            let Some(Bson::Array(items)) = &vals[0] else {
                return Err(fail(
                    28724,
                    "Location28724",
                    format!(
                        "First argument to $slice must be an array, but is of type: {}",
                        type_of(&vals[0])
                    ),
                ));
            };
            let nums: Vec<i64> = vals[1..]
                .iter()
                .filter_map(|v| v.as_ref().and_then(as_i64))
                .collect();
            Some(Bson::Array(slice(
                items,
                nums.first().copied().unwrap_or(0),
                nums.get(1).copied(),
            )))
        }
        "$concat" => {
            let mut out = String::new();
            for v in all()? {
                match v {
                    v if nullish(&v) => return Ok(Some(Bson::Null)),
                    Some(Bson::String(s)) => out.push_str(&s),
                    other => {
                        return Err(fail(
                            16702,
                            "Location16702",
                            format!("$concat only supports strings, not {}", type_of(&other)),
                        ));
                    }
                }
            }
            Some(Bson::String(out))
        }
        "$toUpper" | "$toLower" => {
            let v = one()?;
            let s = if nullish(&v) {
                String::new()
            } else {
                to_string(v.as_ref().unwrap_or(&Bson::Null))
            };
            Some(Bson::String(if op == "$toUpper" {
                s.to_uppercase()
            } else {
                s.to_lowercase()
            }))
        }
        "$strLenCP" => match one()? {
            Some(Bson::String(s)) => Some(Bson::Int32(
                i32::try_from(s.chars().count()).unwrap_or(i32::MAX),
            )),
            other => {
                return Err(fail(
                    34471,
                    "Location34471",
                    format!(
                        "$strLenCP requires a string argument, found: {}",
                        type_of(&other)
                    ),
                ));
            }
        },
        "$substrCP" | "$substr" | "$substrBytes" => {
            arity(op, args, 3)?;
            let vals = all()?;
            let s = match &vals[0] {
                v if nullish(v) => String::new(),
                Some(v) => to_string(v),
                None => String::new(),
            };
            let start = vals[1].as_ref().and_then(as_i64).unwrap_or(0).max(0) as usize;
            let count = vals[2].as_ref().and_then(as_i64).unwrap_or(-1);
            let out: String = if op == "$substrCP" {
                let it = s.chars().skip(start);
                if count < 0 {
                    it.collect()
                } else {
                    it.take(count as usize).collect()
                }
            } else {
                let bytes = s.as_bytes();
                let from = start.min(bytes.len());
                let to = if count < 0 {
                    bytes.len()
                } else {
                    (from + count as usize).min(bytes.len())
                };
                String::from_utf8_lossy(&bytes[from..to]).into_owned()
            };
            Some(Bson::String(out))
        }
        "$split" => {
            let (s, d) = two()?;
            if nullish(&s) {
                return Ok(Some(Bson::Null));
            }
            match (s, d) {
                (Some(Bson::String(s)), Some(Bson::String(d))) if !d.is_empty() => {
                    Some(Bson::Array(s.split(d.as_str()).map(Bson::from).collect()))
                }
                (s, d) => {
                    return Err(fail(
                        40085,
                        "Location40085",
                        format!(
                            "$split requires an expression that evaluates to a string as a first argument and a non-empty delimiter, found: {} and {}",
                            type_of(&s),
                            type_of(&d)
                        ),
                    ));
                }
            }
        }
        "$type" => Some(Bson::String(type_of(&one()?).to_owned())),
        "$toString" => match one()? {
            v if nullish(&v) => Some(Bson::Null),
            Some(v) => Some(Bson::String(to_string(&v))),
            None => None,
        },
        "$toInt" | "$toLong" | "$toDouble" | "$toBool" => {
            let v = one()?;
            if nullish(&v) {
                return Ok(Some(Bson::Null));
            }
            Some(convert(op, v.unwrap_or(Bson::Null))?)
        }
        "$mergeObjects" => {
            let mut out = Document::new();
            for v in all()? {
                match v {
                    v if nullish(&v) => {}
                    Some(Bson::Document(d)) => out.extend(d),
                    other => {
                        return Err(fail(
                            40400,
                            "Location40400",
                            format!(
                                "$mergeObjects requires object inputs, but input {} is of type {}",
                                other.as_ref().map(super::value::shell).unwrap_or_default(),
                                type_of(&other)
                            ),
                        ));
                    }
                }
            }
            Some(Bson::Document(out))
        }
        "$objectToArray" => match one()? {
            v if nullish(&v) => Some(Bson::Null),
            Some(Bson::Document(d)) => Some(Bson::Array(
                d.into_iter()
                    .map(|(k, v)| Bson::Document(bson::doc! {"k": k, "v": v}))
                    .collect(),
            )),
            other => {
                return Err(fail(
                    40390,
                    "Location40390",
                    format!(
                        "$objectToArray requires a document input, found: {}",
                        type_of(&other)
                    ),
                ));
            }
        },
        "$arrayToObject" => match one()? {
            v if nullish(&v) => Some(Bson::Null),
            Some(Bson::Array(items)) => {
                let mut out = Document::new();
                for i in items {
                    match i {
                        Bson::Document(d) => {
                            if let (Ok(k), Some(v)) = (d.get_str("k"), d.get("v")) {
                                out.insert(k, v.clone());
                            }
                        }
                        Bson::Array(pair) if pair.len() == 2 => {
                            if let Bson::String(k) = &pair[0] {
                                out.insert(k.clone(), pair[1].clone());
                            }
                        }
                        _ => {
                            return Err(fail(
                                40398,
                                "Location40398",
                                "Unrecognised input type format for $arrayToObject".into(),
                            ));
                        }
                    }
                }
                Some(Bson::Document(out))
            }
            other => {
                return Err(fail(
                    40386,
                    "Location40386",
                    format!(
                        "$arrayToObject requires an array input, found: {}",
                        type_of(&other)
                    ),
                ));
            }
        },
        "$sum" | "$avg" | "$min" | "$max" => {
            let vals = all()?;
            let items: Vec<Bson> = if vals.len() == 1 {
                match vals.into_iter().next().flatten() {
                    Some(Bson::Array(a)) => a,
                    Some(v) => vec![v],
                    None => Vec::new(),
                }
            } else {
                vals.into_iter().flatten().collect()
            };
            fold_numbers(op, &items)
        }
        other => return Err(Unsupported::Expression(other).error()),
    })
}

/// `$sum`, `$avg`, `$min`, `$max` over values (non-numbers ignored by `$sum` and `$avg`,
/// nulls by `$min` and `$max`).
pub(crate) fn fold_numbers(op: &str, items: &[Bson]) -> Value {
    match op {
        "$sum" => Some(
            items
                .iter()
                .filter(|v| is_number(v))
                .fold(Bson::Int32(0), |acc, v| add(&acc, v).unwrap_or(acc)),
        ),
        "$avg" => {
            let nums: Vec<f64> = items.iter().filter_map(as_f64).collect();
            if nums.is_empty() {
                Some(Bson::Null)
            } else {
                Some(Bson::Double(nums.iter().sum::<f64>() / nums.len() as f64))
            }
        }
        _ => {
            let present = items
                .iter()
                .filter(|v| !matches!(v, Bson::Null | Bson::Undefined));
            let best = if op == "$min" {
                present.min_by(|a, b| compare(a, b))
            } else {
                present.max_by(|a, b| compare(a, b))
            };
            Some(best.cloned().unwrap_or(Bson::Null))
        }
    }
}

fn eval_named(
    op: &str,
    args: &[(String, Expr)],
    doc: &Document,
    env: &Env,
) -> Result<Value, CommandError> {
    let arg = |name: &str| args.iter().find(|(k, _)| k == name).map(|(_, e)| e);
    let need = |name: &str| {
        arg(name).ok_or_else(|| {
            fail(
                28648,
                "Location28648",
                format!("Missing '{name}' parameter to {op}"),
            )
        })
    };
    Ok(match op {
        "$let" => {
            let Some(Expr::Object(vars)) = arg("vars") else {
                return Err(fail(
                    16876,
                    "Location16876",
                    "Missing 'vars' parameter to $let".into(),
                ));
            };
            let mut scope = env.clone();
            for (name, e) in vars {
                let v = eval(e, doc, env)?.unwrap_or(Bson::Null);
                scope = scope.with(name, v);
            }
            eval(need("in")?, doc, &scope)?
        }
        "$map" | "$filter" => {
            let input = eval(need("input")?, doc, env)?;
            if nullish(&input) {
                return Ok(Some(Bson::Null));
            }
            let Some(Bson::Array(items)) = input else {
                return Err(fail(
                    16883,
                    "Location16883",
                    format!("input to {op} must be an array not {}", type_of(&input)),
                ));
            };
            let name = match arg("as") {
                Some(Expr::Literal(Bson::String(s))) => s.clone(),
                _ => "this".to_owned(),
            };
            let limit = match arg("limit") {
                Some(e) => eval(e, doc, env)?.as_ref().and_then(as_i64),
                None => None,
            };
            let mut out = Vec::new();
            for item in items {
                let scope = env.with(&name, item.clone());
                if op == "$map" {
                    out.push(eval(need("in")?, doc, &scope)?.unwrap_or(Bson::Null));
                } else if truthy(eval(need("cond")?, doc, &scope)?.as_ref()) {
                    out.push(item);
                    if limit.is_some_and(|l| out.len() as i64 >= l) {
                        break;
                    }
                }
            }
            Some(Bson::Array(out))
        }
        "$reduce" => {
            let input = eval(need("input")?, doc, env)?;
            if nullish(&input) {
                return Ok(Some(Bson::Null));
            }
            let Some(Bson::Array(items)) = input else {
                return Err(fail(
                    40080,
                    "Location40080",
                    format!(
                        "$reduce requires that 'input' be an array, found: {}",
                        type_of(&input)
                    ),
                ));
            };
            let mut acc = eval(need("initialValue")?, doc, env)?.unwrap_or(Bson::Null);
            for item in items {
                let scope = env.with("value", acc.clone()).with("this", item);
                acc = eval(need("in")?, doc, &scope)?.unwrap_or(Bson::Null);
            }
            Some(acc)
        }
        "$switch" => {
            let Some(Expr::Array(branches)) = arg("branches") else {
                return Err(fail(
                    40061,
                    "Location40061",
                    "$switch requires at least one branch".into(),
                ));
            };
            for b in branches {
                let Expr::Object(fields) = b else { continue };
                let get = |n: &str| fields.iter().find(|(k, _)| k == n).map(|(_, e)| e);
                if let (Some(case), Some(then)) = (get("case"), get("then"))
                    && truthy(eval(case, doc, env)?.as_ref())
                {
                    return eval(then, doc, env);
                }
            }
            match arg("default") {
                Some(d) => eval(d, doc, env)?,
                None => {
                    return Err(fail(40066, "Location40066", "$switch could not find a matching branch for an input, and no default was specified.".into()));
                }
            }
        }
        "$regexMatch" => {
            let input = eval(need("input")?, doc, env)?;
            let options = match arg("options") {
                Some(e) => eval(e, doc, env)?,
                None => None,
            };
            let (pattern, mut flags) = match eval(need("regex")?, doc, env)? {
                Some(Bson::String(p)) => (p, String::new()),
                Some(Bson::RegularExpression(r)) => (r.pattern, r.options),
                other => {
                    return Err(fail(
                        51105,
                        "Location51105",
                        format!(
                            "$regexMatch needs 'regex' to be of type string or regex, found: {}",
                            type_of(&other)
                        ),
                    ));
                }
            };
            if let Some(Bson::String(o)) = options {
                flags.push_str(&o);
            }
            match input {
                v if nullish(&v) => Some(Bson::Boolean(false)),
                Some(Bson::String(s)) => {
                    Some(Bson::Boolean(Regex::new(&pattern, &flags)?.is_match(&s)))
                }
                other => {
                    return Err(fail(
                        51104,
                        "Location51104",
                        format!(
                            "$regexMatch needs 'input' to be of type string, found: {}",
                            type_of(&other)
                        ),
                    ));
                }
            }
        }
        other => return Err(Unsupported::Expression(other).error()),
    })
}

/// `$slice` of an array: `n` from the start (negative: from the end), or `count` from `pos`.
pub(crate) fn slice(items: &[Bson], first: i64, second: Option<i64>) -> Vec<Bson> {
    let len = i64::try_from(items.len()).unwrap_or(i64::MAX);
    let (from, count) = match second {
        None if first >= 0 => (0, first),
        None => ((len + first).max(0), -first),
        Some(count) => {
            let pos = if first < 0 {
                (len + first).max(0)
            } else {
                first.min(len)
            };
            (pos, count.max(0))
        }
    };
    items
        .iter()
        .skip(usize::try_from(from).unwrap_or(0))
        .take(usize::try_from(count).unwrap_or(0))
        .cloned()
        .collect()
}

fn round_half_even(x: f64) -> f64 {
    let r = x.round();
    if (x - x.trunc()).abs() == 0.5 && r % 2.0 != 0.0 {
        r - x.signum()
    } else {
        r
    }
}

/// `$toString` of a value.
pub(crate) fn to_string(v: &Bson) -> String {
    match v {
        Bson::String(s) => s.clone(),
        Bson::ObjectId(o) => o.to_hex(),
        Bson::DateTime(d) => d.try_to_rfc3339_string().unwrap_or_default(),
        Bson::Double(d) => d.to_string(),
        Bson::Int32(i) => i.to_string(),
        Bson::Int64(i) => i.to_string(),
        Bson::Boolean(b) => b.to_string(),
        Bson::Null | Bson::Undefined => String::new(),
        other => other.to_string(),
    }
}

fn convert(op: &str, v: Bson) -> Result<Bson, CommandError> {
    let failed = |v: &Bson| {
        fail(
            241,
            "ConversionFailure",
            format!(
                "Unsupported conversion from {} to {} in $convert with no onError value",
                type_name(v),
                &op[3..].to_lowercase()
            ),
        )
    };
    Ok(match op {
        "$toBool" => Bson::Boolean(truthy(Some(&v))),
        "$toDouble" => match &v {
            Bson::String(s) => Bson::Double(s.trim().parse().map_err(|_| failed(&v))?),
            Bson::Boolean(b) => Bson::Double(if *b { 1.0 } else { 0.0 }),
            Bson::DateTime(d) => Bson::Double(d.timestamp_millis() as f64),
            n => Bson::Double(as_f64(n).ok_or_else(|| failed(n))?),
        },
        _ => {
            let i: i64 = match &v {
                Bson::String(s) => s.trim().parse().map_err(|_| failed(&v))?,
                Bson::Boolean(b) => i64::from(*b),
                Bson::Double(d) => d.trunc() as i64,
                Bson::DateTime(d) if op == "$toLong" => d.timestamp_millis(),
                n => as_i64(n).ok_or_else(|| failed(n))?,
            };
            if op == "$toInt" {
                Bson::Int32(i32::try_from(i).map_err(|_| failed(&v))?)
            } else {
                Bson::Int64(i)
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::doc;

    fn run(expr: Bson, d: &Document) -> Value {
        eval(&parse(&expr).expect("parses"), d, &Env::default()).expect("evaluates")
    }

    #[test]
    fn arithmetic_paths_and_conditions() {
        let d = doc! {"a": {"b": 2, "c": 3}, "n": [1, 2, 3], "s": "Ab"};
        assert_eq!(
            run(Bson::from(doc! {"$add": ["$a.b", "$a.c", 1]}), &d),
            Some(Bson::Int32(6))
        );
        assert_eq!(
            run(Bson::from(doc! {"$divide": ["$a.c", 2]}), &d),
            Some(Bson::Double(1.5))
        );
        assert_eq!(
            run(Bson::from(doc! {"$size": "$n"}), &d),
            Some(Bson::Int32(3))
        );
        assert_eq!(
            run(
                Bson::from(doc! {"$cond": [{"$gt": ["$a.b", 1]}, "big", "small"]}),
                &d
            ),
            Some(Bson::from("big"))
        );
        assert_eq!(
            run(Bson::from(doc! {"$toUpper": "$s"}), &d),
            Some(Bson::from("AB"))
        );
        assert_eq!(
            run(Bson::from(doc! {"$add": ["$missing", 1]}), &d),
            Some(Bson::Null)
        );
        assert_eq!(run(Bson::from("$missing"), &d), None);
        assert_eq!(
            run(
                Bson::from(
                    doc! {"$map": {"input": "$n", "as": "x", "in": {"$multiply": ["$$x", 10]}}}
                ),
                &d
            ),
            Some(Bson::Array(vec![10.into(), 20.into(), 30.into()]))
        );
        assert_eq!(
            run(
                Bson::from(doc! {"$let": {"vars": {"t": 4}, "in": {"$subtract": ["$$t", "$a.b"]}}}),
                &d
            ),
            Some(Bson::Int32(2))
        );
        assert_eq!(
            run(Bson::from(doc! {"$eq": ["$missing", null]}), &d),
            Some(Bson::Boolean(false))
        );
    }

    #[test]
    fn unknown_operators_are_refused_when_parsed() {
        let e = parse(&Bson::from(doc! {"$sqrt": 4})).expect_err("not implemented");
        assert_eq!(
            (e.code, e.code_name.as_ref()),
            (168, "InvalidPipelineOperator")
        );
        let e = parse(&Bson::from(doc! {"$add": [1, {"$nope": 1}]})).expect_err("nested");
        assert_eq!(e.code, 168);
    }

    #[test]
    fn type_errors_are_the_servers() {
        let d = doc! {"s": "x"};
        let e = eval(
            &parse(&Bson::from(doc! {"$size": "$s"})).expect("parses"),
            &d,
            &Env::default(),
        )
        .expect_err("a string has no size");
        assert_eq!(e.code, 17124);
        let e = eval(
            &parse(&Bson::from(doc! {"$divide": [1, 0]})).expect("parses"),
            &d,
            &Env::default(),
        )
        .expect_err("zero");
        assert_eq!(e.errmsg, "can't $divide by zero");
    }
}
