//! The one way the embedded server says "not implemented": it answers as a real MongoDB answers
//! for a feature it does not have — the same code, codeName and message opening — so a client
//! takes its error path instead of reading a wrong answer. Every parser of the server (commands
//! and their fields, query and update operators, pipeline stages, expressions, accumulators,
//! index options) ends its list of what it knows in [`Unsupported`]; nothing is ignored.
//!
//! The message is the real server's, then a hint naming the embedded server, so a person
//! reading the error knows it is this server's limit and not their query.

use super::error::CommandError;

/// A feature the embedded server does not implement, by the kind of name a real server looks up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unsupported<'a> {
    /// A command (`mapReduce`).
    Command(&'a str),
    /// A field of a command or of one of its statements (`find.collation`,
    /// `update.updates.arrayFilters`), as the IDL parser names it.
    Field(&'a str),
    /// A query operator on a field (`{a: {$bitsAllSet: 1}}`).
    QueryOperator(&'a str),
    /// A query operator at the top level of a filter (`$where`, `$text`).
    TopLevelOperator(&'a str),
    /// An aggregation stage (`$bucketAuto`).
    Stage(&'a str),
    /// An aggregation expression operator (`$sqrt`).
    Expression(&'a str),
    /// A `$group` accumulator (`$stdDevPop`).
    Accumulator(&'a str),
    /// An update operator (`$bit`).
    UpdateModifier(&'a str),
    /// A field of an index specification (`expireAfterSeconds`), with the spec as printed.
    IndexOption(&'a str, &'a str),
    /// An index type (`"text"`, `"2dsphere"`, `"hashed"`).
    IndexType(&'a str),
}

/// Appended to every refusal: whose limit it is.
const HINT: &str = "(hint: the embedded MongoDB of firedrill does not implement it; see docs/conformance/mongodb.md)";

impl Unsupported<'_> {
    /// The error a real server gives for it.
    pub(crate) fn error(self) -> CommandError {
        let (code, code_name, message) = match self {
            Self::Command(name) => (59, "CommandNotFound", format!("no such command: '{name}'")),
            Self::Field(path) => (
                40415,
                "Location40415",
                format!("BSON field '{path}' is an unknown field."),
            ),
            Self::QueryOperator(op) => (2, "BadValue", format!("unknown operator: {op}")),
            Self::TopLevelOperator(op) => (
                2,
                "BadValue",
                format!(
                    "unknown top level operator: {op}. If you have a field name that starts with a '$' symbol, consider using $getField or $setField."
                ),
            ),
            Self::Stage(name) => (
                40324,
                "Location40324",
                format!("Unrecognized pipeline stage name: '{name}'"),
            ),
            Self::Expression(op) => (
                168,
                "InvalidPipelineOperator",
                format!("Unrecognized expression '{op}'"),
            ),
            Self::Accumulator(op) => (
                15952,
                "Location15952",
                format!("unknown group operator '{op}'"),
            ),
            Self::UpdateModifier(op) => (
                9,
                "FailedToParse",
                format!(
                    "Unknown modifier: {op}. Expected a valid update modifier or pipeline-style update specified as an array"
                ),
            ),
            Self::IndexOption(field, spec) => (
                197,
                "InvalidIndexSpecificationOption",
                format!(
                    "The field '{field}' is not valid for an index specification. Specification: {spec}"
                ),
            ),
            Self::IndexType(name) => (
                67,
                "CannotCreateIndex",
                format!("Unknown index plugin '{name}'"),
            ),
        };
        CommandError::new(code, code_name, format!("{message} {HINT}"))
    }
}

impl From<Unsupported<'_>> for CommandError {
    fn from(u: Unsupported<'_>) -> Self {
        u.error()
    }
}

/// Fields every command accepts (the real server's generic arguments) that this server either
/// honours or that cannot change an answer.
pub(crate) const GENERIC_FIELDS: &[&str] = &[
    "$db",
    "$readPreference",
    "$clusterTime",
    "$client",
    "lsid",
    "txnNumber",
    "autocommit",
    "startTransaction",
    "readConcern",
    "writeConcern",
    "maxTimeMS",
    "comment",
    "apiVersion",
    "apiStrict",
    "apiDeprecationErrors",
];

/// Refuses the first field of `doc` (after its first, the command name, when `skip_first`) that
/// is neither generic nor in `known`, naming it `{prefix}.{field}`.
///
/// # Errors
///
/// [`Unsupported::Field`] for that field.
pub(crate) fn check_fields(
    doc: &bson::Document,
    prefix: &str,
    known: &[&str],
    skip_first: bool,
    generic: bool,
) -> Result<(), CommandError> {
    for key in doc.keys().skip(usize::from(skip_first)) {
        let allowed =
            known.contains(&key.as_str()) || (generic && GENERIC_FIELDS.contains(&key.as_str()));
        if !allowed {
            return Err(Unsupported::Field(&format!("{prefix}.{key}")).error());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::doc;

    #[test]
    fn each_refusal_is_the_real_servers_error_for_that_kind_of_name() {
        let cases = [
            (
                Unsupported::Command("mapReduce"),
                59,
                "CommandNotFound",
                "no such command: 'mapReduce'",
            ),
            (
                Unsupported::Field("find.collation"),
                40415,
                "Location40415",
                "BSON field 'find.collation' is an unknown field.",
            ),
            (
                Unsupported::QueryOperator("$near"),
                2,
                "BadValue",
                "unknown operator: $near",
            ),
            (
                Unsupported::TopLevelOperator("$where"),
                2,
                "BadValue",
                "unknown top level operator: $where.",
            ),
            (
                Unsupported::Stage("$facet"),
                40324,
                "Location40324",
                "Unrecognized pipeline stage name: '$facet'",
            ),
            (
                Unsupported::Expression("$sqrt"),
                168,
                "InvalidPipelineOperator",
                "Unrecognized expression '$sqrt'",
            ),
            (
                Unsupported::Accumulator("$top"),
                15952,
                "Location15952",
                "unknown group operator '$top'",
            ),
            (
                Unsupported::UpdateModifier("$bit"),
                9,
                "FailedToParse",
                "Unknown modifier: $bit. Expected a valid update modifier",
            ),
            (
                Unsupported::IndexOption("expireAfterSeconds", "{}"),
                197,
                "InvalidIndexSpecificationOption",
                "The field 'expireAfterSeconds' is not valid for an index specification.",
            ),
            (
                Unsupported::IndexType("text"),
                67,
                "CannotCreateIndex",
                "Unknown index plugin 'text'",
            ),
        ];
        for (what, code, name, opening) in cases {
            let e = what.error();
            assert_eq!((e.code, e.code_name.as_ref()), (code, name), "{what:?}");
            assert!(e.errmsg.starts_with(opening), "{what:?}: {}", e.errmsg);
            assert!(e.errmsg.ends_with(HINT), "{what:?} names whose limit it is");
        }
    }

    #[test]
    fn unknown_fields_are_refused_and_generic_ones_accepted() {
        let cmd = doc! {"find": "c", "filter": {}, "lsid": {}, "$db": "d"};
        assert!(check_fields(&cmd, "find", &["filter"], true, true).is_ok());
        let cmd = doc! {"find": "c", "collation": {"locale": "fr"}};
        let e = check_fields(&cmd, "find", &["filter"], true, true).expect_err("refused");
        assert!(
            e.errmsg
                .starts_with("BSON field 'find.collation' is an unknown field.")
        );
        let stmt = doc! {"q": {}, "u": {}, "arrayFilters": []};
        let e =
            check_fields(&stmt, "update.updates", &["q", "u"], false, false).expect_err("refused");
        assert!(e.errmsg.contains("'update.updates.arrayFilters'"));
    }
}
