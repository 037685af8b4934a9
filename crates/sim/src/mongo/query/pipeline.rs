//! Aggregation pipelines: parsed stage by stage (a stage, expression or accumulator this server
//! does not implement is refused before any document is read), then run over the documents of
//! one collection, with other collections of the database reachable for `$lookup`.

use bson::{Bson, Document};

use super::expr::{self, Env, Expr, fold_numbers};
use super::matcher::{Filter, Sort};
use super::projection::{self, Projection};
use super::value::{add, as_i64, compare, equal, is_number};
use crate::mongo::error::CommandError;
use crate::mongo::refuse::Unsupported;

/// The stages the server runs.
pub(crate) const STAGES: &[&str] = &[
    "$match",
    "$sort",
    "$skip",
    "$limit",
    "$project",
    "$addFields",
    "$set",
    "$unset",
    "$count",
    "$group",
    "$unwind",
    "$lookup",
    "$replaceRoot",
    "$replaceWith",
    "$sortByCount",
    "$collStats",
];

/// The `$group` accumulators the server computes.
pub(crate) const ACCUMULATORS: &[&str] = &[
    "$sum",
    "$avg",
    "$min",
    "$max",
    "$push",
    "$addToSet",
    "$first",
    "$last",
    "$count",
    "$mergeObjects",
];

/// Reads another collection of the same database (for `$lookup`).
pub(crate) type Collections<'a> = &'a dyn Fn(&str) -> Result<Vec<Document>, CommandError>;

#[derive(Debug, Clone)]
enum Stage {
    Match(Filter),
    Sort(Sort),
    Skip(usize),
    Limit(usize),
    Project(Projection),
    AddFields(Vec<(String, Expr)>),
    Count(String),
    Group(Group),
    Unwind {
        path: String,
        index: Option<String>,
        preserve: bool,
    },
    Lookup(Box<Lookup>),
    ReplaceRoot(Expr),
    SortByCount(Expr),
    CollStats(Document),
}

#[derive(Debug, Clone)]
struct Group {
    id: Expr,
    fields: Vec<(String, &'static str, Expr)>,
}

#[derive(Debug, Clone)]
struct Lookup {
    from: String,
    as_field: String,
    local: Option<(String, String)>,
    vars: Vec<(String, Expr)>,
    pipeline: Option<Pipeline>,
}

/// A parsed pipeline.
#[derive(Debug, Clone, Default)]
pub(crate) struct Pipeline {
    stages: Vec<Stage>,
}

fn bad(code: i32, msg: impl Into<String>) -> CommandError {
    CommandError::location(code, msg.into())
}

impl Pipeline {
    /// Parses an `aggregate` pipeline.
    ///
    /// # Errors
    ///
    /// [`Unsupported::Stage`] (and expression and accumulator refusals) for what this server
    /// does not run; the server's errors for malformed stages.
    pub(crate) fn parse(stages: &[Bson]) -> Result<Self, CommandError> {
        let mut out = Vec::new();
        for (i, stage) in stages.iter().enumerate() {
            let Bson::Document(stage) = stage else {
                return Err(CommandError::type_mismatch(
                    "Each element of the 'pipeline' array must be an object",
                ));
            };
            if stage.len() != 1 {
                return Err(bad(
                    40323,
                    "A pipeline stage specification object must contain exactly one field.",
                ));
            }
            let Some((name, arg)) = stage.iter().next() else {
                return Err(bad(
                    40323,
                    "A pipeline stage specification object must contain exactly one field.",
                ));
            };
            if name == "$collStats" && i != 0 {
                return Err(bad(
                    40602,
                    "$collStats is only valid as the first stage in a pipeline",
                ));
            }
            out.push(parse_stage(name, arg)?);
        }
        Ok(Self { stages: out })
    }

    /// Parses the pipeline of a pipeline-style update (`$set`, `$unset`, `$project`,
    /// `$replaceRoot` and their aliases only).
    ///
    /// # Errors
    ///
    /// As [`Pipeline::parse`]; other stages are not allowed in an update.
    pub(crate) fn parse_update(stages: &[Bson]) -> Result<Self, CommandError> {
        for s in stages {
            if let Bson::Document(d) = s
                && let Some(name) = d.keys().next()
                && !matches!(
                    name.as_str(),
                    "$addFields" | "$set" | "$project" | "$unset" | "$replaceRoot" | "$replaceWith"
                )
            {
                if !STAGES.contains(&name.as_str()) {
                    return Err(Unsupported::Stage(name).error());
                }
                return Err(CommandError::new(
                    72,
                    "InvalidOptions",
                    format!("{name} is not allowed to be used within an update"),
                ));
            }
        }
        Self::parse(stages)
    }

    /// The `$collStats` specification, when the pipeline starts with one.
    pub(crate) fn coll_stats(&self) -> Option<&Document> {
        match self.stages.first() {
            Some(Stage::CollStats(spec)) => Some(spec),
            _ => None,
        }
    }

    /// Runs a pipeline-style update over one document.
    ///
    /// # Errors
    ///
    /// A stage that fails; a result that is not one document.
    pub(crate) fn run_update(
        &self,
        doc: Document,
        env: &Env,
    ) -> Result<Vec<Document>, CommandError> {
        let none = |_: &str| Ok(Vec::new());
        self.run(vec![doc], env, &none)
    }

    /// Runs the pipeline over `docs`.
    ///
    /// # Errors
    ///
    /// Expressions that fail to evaluate, and reads of other collections that fail.
    pub(crate) fn run(
        &self,
        mut docs: Vec<Document>,
        env: &Env,
        collections: Collections<'_>,
    ) -> Result<Vec<Document>, CommandError> {
        for stage in &self.stages {
            docs = run_stage(stage, docs, env, collections)?;
        }
        Ok(docs)
    }
}

fn positive(arg: &Bson, what: &str, code: i32) -> Result<usize, CommandError> {
    match as_i64(arg) {
        Some(n) if n > 0 || (what == "skip" && n >= 0) => {
            Ok(usize::try_from(n).unwrap_or(usize::MAX))
        }
        _ => Err(bad(
            code,
            format!(
                "the {what} must be {}",
                if what == "skip" {
                    "non-negative"
                } else {
                    "positive"
                }
            ),
        )),
    }
}

fn parse_stage(name: &str, arg: &Bson) -> Result<Stage, CommandError> {
    let doc_arg = || match arg {
        Bson::Document(d) => Ok(d),
        _ => Err(bad(
            15955,
            format!("{name} specification must be an object"),
        )),
    };
    Ok(match name {
        "$match" => Stage::Match(Filter::parse(doc_arg()?)?),
        "$sort" => Stage::Sort(Sort::parse(doc_arg()?)?),
        "$skip" => Stage::Skip(positive(arg, "skip", 15956)?),
        "$limit" => Stage::Limit(positive(arg, "limit", 15958)?),
        "$project" => {
            let spec = doc_arg()?;
            if spec.is_empty() {
                return Err(bad(
                    51272,
                    "$project specification must have at least one field",
                ));
            }
            Stage::Project(Projection::parse(spec, false)?)
        }
        "$addFields" | "$set" => Stage::AddFields(projection::parse_add_fields(doc_arg()?)?),
        "$unset" => {
            let fields: Vec<String> = match arg {
                Bson::String(s) => vec![s.clone()],
                Bson::Array(items) => items
                    .iter()
                    .filter_map(|i| i.as_str().map(str::to_owned))
                    .collect(),
                _ => {
                    return Err(bad(
                        31002,
                        "$unset specification must be a string or an array",
                    ));
                }
            };
            let mut spec = Document::new();
            for f in fields {
                spec.insert(f, 0);
            }
            Stage::Project(Projection::parse(&spec, false)?)
        }
        "$count" => {
            let Bson::String(field) = arg else {
                return Err(bad(40156, "the count field must be a non-empty string"));
            };
            if field.is_empty() {
                return Err(bad(40157, "the count field must be a non-empty string"));
            }
            if field.starts_with('$') || field.contains('.') {
                return Err(bad(
                    40160,
                    "the count field cannot be a $-prefixed path or contain a '.'",
                ));
            }
            Stage::Count(field.clone())
        }
        "$group" => Stage::Group(parse_group(doc_arg()?)?),
        "$unwind" => match arg {
            Bson::String(p) => Stage::Unwind {
                path: field_of(p)?,
                index: None,
                preserve: false,
            },
            Bson::Document(d) => {
                for k in d.keys() {
                    if !matches!(
                        k.as_str(),
                        "path" | "includeArrayIndex" | "preserveNullAndEmptyArrays"
                    ) {
                        return Err(bad(
                            28811,
                            format!("unrecognized option to $unwind stage: {k}"),
                        ));
                    }
                }
                let Ok(p) = d.get_str("path") else {
                    return Err(bad(28812, "no path specified to $unwind stage"));
                };
                Stage::Unwind {
                    path: field_of(p)?,
                    index: d.get_str("includeArrayIndex").ok().map(str::to_owned),
                    preserve: d.get_bool("preserveNullAndEmptyArrays").unwrap_or(false),
                }
            }
            _ => {
                return Err(bad(
                    15981,
                    "expected either a string or an object as specification for $unwind stage",
                ));
            }
        },
        "$lookup" => Stage::Lookup(Box::new(parse_lookup(doc_arg()?)?)),
        "$replaceRoot" => {
            let d = doc_arg()?;
            let Some(root) = d.get("newRoot") else {
                return Err(bad(
                    40231,
                    "no newRoot specified for the $replaceRoot stage",
                ));
            };
            Stage::ReplaceRoot(expr::parse(root)?)
        }
        "$replaceWith" => Stage::ReplaceRoot(expr::parse(arg)?),
        "$sortByCount" => Stage::SortByCount(expr::parse(arg)?),
        "$collStats" => {
            let d = doc_arg()?;
            for k in d.keys() {
                if !matches!(k.as_str(), "storageStats" | "count") {
                    return Err(Unsupported::Field(&format!("$collStats.{k}")).error());
                }
            }
            Stage::CollStats(d.clone())
        }
        other => return Err(Unsupported::Stage(other).error()),
    })
}

fn field_of(p: &str) -> Result<String, CommandError> {
    p.strip_prefix('$')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .ok_or_else(|| {
            bad(
                28818,
                format!("path option to $unwind stage should be prefixed with a '$': {p}"),
            )
        })
}

fn parse_group(spec: &Document) -> Result<Group, CommandError> {
    let Some(id) = spec.get("_id") else {
        return Err(bad(15955, "a group specification must include an _id"));
    };
    let id = expr::parse(id)?;
    let mut fields = Vec::new();
    for (field, acc) in spec {
        if field == "_id" {
            continue;
        }
        let Bson::Document(acc) = acc else {
            return Err(bad(
                40234,
                format!("The field '{field}' must be an accumulator object"),
            ));
        };
        if acc.len() != 1 {
            return Err(bad(
                40238,
                format!("The field '{field}' must specify one accumulator"),
            ));
        }
        let Some((op, arg)) = acc.iter().next() else {
            return Err(bad(
                40238,
                format!("The field '{field}' must specify one accumulator"),
            ));
        };
        let Some(op) = ACCUMULATORS.iter().find(|a| **a == op) else {
            return Err(Unsupported::Accumulator(op).error());
        };
        if *op == "$count" && !matches!(arg, Bson::Document(d) if d.is_empty()) {
            return Err(bad(5787902, "$count takes no arguments, i.e. $count:{}"));
        }
        fields.push((field.clone(), *op, expr::parse(arg)?));
    }
    Ok(Group { id, fields })
}

fn parse_lookup(d: &Document) -> Result<Lookup, CommandError> {
    for k in d.keys() {
        if !matches!(
            k.as_str(),
            "from" | "as" | "localField" | "foreignField" | "let" | "pipeline"
        ) {
            return Err(CommandError::failed_to_parse(format!(
                "unknown argument to $lookup: {k}"
            )));
        }
    }
    let Ok(from) = d.get_str("from") else {
        return Err(CommandError::failed_to_parse(
            "$lookup 'from' field must be a string (a collection of another database is not implemented)",
        ));
    };
    let Ok(as_field) = d.get_str("as") else {
        return Err(CommandError::failed_to_parse(
            "must specify 'as' field for a $lookup",
        ));
    };
    let local = match (d.get_str("localField"), d.get_str("foreignField")) {
        (Ok(l), Ok(f)) => Some((l.to_owned(), f.to_owned())),
        (Err(_), Err(_)) => None,
        _ => {
            return Err(CommandError::failed_to_parse(
                "$lookup requires both or neither of 'localField' and 'foreignField' to be specified",
            ));
        }
    };
    let pipeline = match d.get("pipeline") {
        Some(Bson::Array(stages)) => Some(Pipeline::parse(stages)?),
        Some(_) => {
            return Err(CommandError::failed_to_parse(
                "'pipeline' option must be specified as an array",
            ));
        }
        None => None,
    };
    if local.is_none() && pipeline.is_none() {
        return Err(CommandError::failed_to_parse(
            "must specify 'pipeline' when 'localField' and 'foreignField' are not specified",
        ));
    }
    let vars = match d.get_document("let") {
        Ok(v) => v
            .iter()
            .map(|(k, e)| Ok((k.clone(), expr::parse(e)?)))
            .collect::<Result<_, CommandError>>()?,
        Err(_) => Vec::new(),
    };
    Ok(Lookup {
        from: from.to_owned(),
        as_field: as_field.to_owned(),
        local,
        vars,
        pipeline,
    })
}

fn run_stage(
    stage: &Stage,
    docs: Vec<Document>,
    env: &Env,
    collections: Collections<'_>,
) -> Result<Vec<Document>, CommandError> {
    Ok(match stage {
        Stage::Match(f) => {
            let mut kept = Vec::new();
            for d in docs {
                if f.matches_with(&d, env)? {
                    kept.push(d);
                }
            }
            kept
        }
        Stage::Sort(s) => {
            let mut docs = docs;
            s.apply(&mut docs);
            docs
        }
        Stage::Skip(n) => docs.into_iter().skip(*n).collect(),
        Stage::Limit(n) => docs.into_iter().take(*n).collect(),
        Stage::Project(p) => docs
            .iter()
            .map(|d| p.apply(d, None, env))
            .collect::<Result<_, _>>()?,
        Stage::AddFields(f) => docs
            .iter()
            .map(|d| projection::add_fields(d, f, env))
            .collect::<Result<_, _>>()?,
        Stage::Count(field) => {
            if docs.is_empty() {
                Vec::new()
            } else {
                vec![bson::doc! { field.clone(): i32::try_from(docs.len()).unwrap_or(i32::MAX) }]
            }
        }
        Stage::Group(g) => group(g, &docs, env)?,
        Stage::SortByCount(e) => {
            let g = Group {
                id: e.clone(),
                fields: vec![("count".to_owned(), "$sum", Expr::Literal(Bson::Int32(1)))],
            };
            let mut out = group(&g, &docs, env)?;
            out.sort_by(|a, b| {
                compare(
                    b.get("count").unwrap_or(&Bson::Null),
                    a.get("count").unwrap_or(&Bson::Null),
                )
            });
            out
        }
        Stage::Unwind {
            path,
            index,
            preserve,
        } => unwind(docs, path, index.as_deref(), *preserve),
        Stage::Lookup(l) => lookup(l, docs, env, collections)?,
        Stage::ReplaceRoot(e) => {
            let mut out = Vec::new();
            for d in &docs {
                match expr::eval(e, d, env)? {
                    Some(Bson::Document(root)) => out.push(root),
                    other => {
                        return Err(bad(
                            40228,
                            format!(
                                "'newRoot' expression must evaluate to an object, but resulting value was: {}. Type of resulting value: '{}'.",
                                other
                                    .as_ref()
                                    .map_or_else(|| "MISSING".to_owned(), super::value::shell),
                                other.as_ref().map_or("missing", super::value::type_name)
                            ),
                        ));
                    }
                }
            }
            out
        }
        Stage::CollStats(_) => docs,
    })
}

fn group(g: &Group, docs: &[Document], env: &Env) -> Result<Vec<Document>, CommandError> {
    struct Acc {
        key: Bson,
        values: Vec<Vec<Bson>>,
        seen: Vec<bool>,
    }
    let mut groups: Vec<Acc> = Vec::new();
    for d in docs {
        let key = expr::eval(&g.id, d, env)?.unwrap_or(Bson::Null);
        let idx = match groups.iter().position(|a| equal(&a.key, &key)) {
            Some(i) => i,
            None => {
                groups.push(Acc {
                    key,
                    values: vec![Vec::new(); g.fields.len()],
                    seen: vec![false; g.fields.len()],
                });
                groups.len() - 1
            }
        };
        for (i, (_, op, e)) in g.fields.iter().enumerate() {
            let v = expr::eval(e, d, env)?;
            let acc = &mut groups[idx];
            match *op {
                "$first" if acc.seen[i] => {}
                "$first" | "$last" => acc.values[i] = vec![v.unwrap_or(Bson::Null)],
                "$count" => acc.values[i].push(Bson::Int32(1)),
                _ => {
                    if let Some(v) = v {
                        acc.values[i].push(v);
                    }
                }
            }
            acc.seen[i] = true;
        }
    }
    let mut out = Vec::new();
    for acc in groups {
        let mut d = bson::doc! {"_id": acc.key};
        for ((field, op, _), values) in g.fields.iter().zip(acc.values) {
            let v = match *op {
                "$sum" | "$count" => Some(
                    values
                        .iter()
                        .filter(|v| is_number(v))
                        .fold(Bson::Int32(0), |s, v| add(&s, v).unwrap_or(s)),
                ),
                "$avg" | "$min" | "$max" => fold_numbers(op, &values),
                "$push" => Some(Bson::Array(values)),
                "$addToSet" => {
                    let mut set: Vec<Bson> = Vec::new();
                    for v in values {
                        if !set.iter().any(|s| equal(s, &v)) {
                            set.push(v);
                        }
                    }
                    Some(Bson::Array(set))
                }
                "$mergeObjects" => {
                    let mut merged = Document::new();
                    for v in values {
                        if let Bson::Document(m) = v {
                            merged.extend(m);
                        }
                    }
                    Some(Bson::Document(merged))
                }
                _ => values.into_iter().next(),
            };
            d.insert(field.clone(), v.unwrap_or(Bson::Null));
        }
        out.push(d);
    }
    Ok(out)
}

fn unwind(docs: Vec<Document>, path: &str, index: Option<&str>, preserve: bool) -> Vec<Document> {
    let mut out = Vec::new();
    for d in docs {
        let value = super::path::get(&d, path).cloned();
        match value {
            Some(Bson::Array(items)) if !items.is_empty() => {
                for (i, item) in items.into_iter().enumerate() {
                    let mut copy = d.clone();
                    let _ = super::path::set(&mut copy, path, item);
                    if let Some(f) = index {
                        copy.insert(f, i64::try_from(i).unwrap_or(i64::MAX));
                    }
                    out.push(copy);
                }
            }
            Some(Bson::Array(_)) | None | Some(Bson::Null) if preserve => {
                let mut copy = d.clone();
                if matches!(value, Some(Bson::Array(_))) {
                    super::path::unset(&mut copy, path);
                }
                if let Some(f) = index {
                    copy.insert(f, Bson::Null);
                }
                out.push(copy);
            }
            Some(Bson::Array(_)) | None | Some(Bson::Null) => {}
            Some(_) => {
                let mut copy = d;
                if let Some(f) = index {
                    copy.insert(f, Bson::Null);
                }
                out.push(copy);
            }
        }
    }
    out
}

fn lookup(
    l: &Lookup,
    docs: Vec<Document>,
    env: &Env,
    collections: Collections<'_>,
) -> Result<Vec<Document>, CommandError> {
    let foreign = collections(&l.from)?;
    let mut out = Vec::with_capacity(docs.len());
    for mut d in docs {
        let mut matched: Vec<Document> = match &l.local {
            Some((local, foreign_field)) => {
                let v = super::path::field_path(&d, local).unwrap_or(Bson::Null);
                let cond = match v {
                    Bson::Array(items) => bson::doc! {"$in": items},
                    other => bson::doc! {"$eq": other},
                };
                let f = Filter::parse(&bson::doc! { foreign_field.clone(): cond })?;
                let mut hits = Vec::new();
                for fd in &foreign {
                    if f.matches(fd)? {
                        hits.push(fd.clone());
                    }
                }
                hits
            }
            None => foreign.clone(),
        };
        if let Some(p) = &l.pipeline {
            let mut scope = env.clone();
            for (name, e) in &l.vars {
                let v = expr::eval(e, &d, env)?.unwrap_or(Bson::Null);
                scope = scope.with(name, v);
            }
            matched = p.run(matched, &scope, collections)?;
        }
        let _ = super::path::set(
            &mut d,
            &l.as_field,
            Bson::Array(matched.into_iter().map(Bson::Document).collect()),
        );
        out.push(d);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::doc;

    fn run(docs: Vec<Document>, stages: Vec<Document>) -> Vec<Document> {
        let stages: Vec<Bson> = stages.into_iter().map(Bson::Document).collect();
        let none = |_: &str| Ok(Vec::new());
        Pipeline::parse(&stages)
            .expect("parses")
            .run(docs, &Env::default(), &none)
            .expect("runs")
    }

    #[test]
    fn counts_like_the_drivers_count_documents_pipeline() {
        let docs = vec![doc! {"a": 1}, doc! {"a": 2}, doc! {"a": 3}];
        let out = run(
            docs,
            vec![
                doc! {"$match": {"a": {"$gte": 2}}},
                doc! {"$group": {"_id": 1, "n": {"$sum": 1}}},
            ],
        );
        assert_eq!(out, vec![doc! {"_id": 1, "n": 2}]);
    }

    #[test]
    fn group_accumulators_unwind_and_add_fields() {
        let docs = vec![
            doc! {"c": "a", "n": 1, "t": [1, 2]},
            doc! {"c": "a", "n": 3, "t": []},
            doc! {"c": "b", "n": 4},
        ];
        let out = run(
            docs.clone(),
            vec![
                doc! {"$group": {"_id": "$c", "avg": {"$avg": "$n"}, "all": {"$push": "$n"}, "first": {"$first": "$n"}, "k": {"$count": {}}}},
            ],
        );
        assert_eq!(
            out[0],
            doc! {"_id": "a", "avg": 2.0, "all": [1, 3], "first": 1, "k": 2}
        );
        let out = run(
            docs.clone(),
            vec![
                doc! {"$unwind": "$t"},
                doc! {"$project": {"_id": 0, "t": 1}},
            ],
        );
        assert_eq!(out, vec![doc! {"t": 1}, doc! {"t": 2}]);
        let out = run(
            docs,
            vec![
                doc! {"$limit": 1},
                doc! {"$addFields": {"d": {"$multiply": ["$n", 2]}}},
                doc! {"$project": {"d": 1, "_id": 0}},
            ],
        );
        assert_eq!(out, vec![doc! {"d": 2}]);
    }

    #[test]
    fn lookup_reads_the_other_collection() {
        let cats = vec![doc! {"_id": "a", "label": "A"}];
        let from = move |name: &str| {
            assert_eq!(name, "cats");
            Ok(cats.clone())
        };
        let stages = vec![Bson::Document(
            doc! {"$lookup": {"from": "cats", "localField": "c", "foreignField": "_id", "as": "cat"}},
        )];
        let out = Pipeline::parse(&stages)
            .expect("parses")
            .run(vec![doc! {"c": "a"}], &Env::default(), &from)
            .expect("runs");
        assert_eq!(
            out,
            vec![doc! {"c": "a", "cat": [{"_id": "a", "label": "A"}]}]
        );
    }

    #[test]
    fn refuses_what_it_does_not_run() {
        let e = Pipeline::parse(&[Bson::Document(doc! {"$facet": {}})]).expect_err("stage");
        assert_eq!(e.code, 40324);
        let e = Pipeline::parse(&[Bson::Document(
            doc! {"$group": {"_id": 1, "x": {"$stdDevPop": "$a"}}},
        )])
        .expect_err("accumulator");
        assert_eq!(e.code, 15952);
    }
}
