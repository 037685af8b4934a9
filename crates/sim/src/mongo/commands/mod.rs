//! The commands a member answers, shaped like the real server's replies.
//!
//! [`COMMANDS`] is the one list of what the server implements: dispatch, `listCommands`, the
//! admin-only and in-transaction rules and the fields each command understands come from it.
//! Anything else is refused through [`super::refuse`].

mod admin;
mod catalog;
mod hello;
mod read;
mod txn;
mod write;

/// Steps the primary `m` down as `replSetStepDown` does: writes held until an electable
/// secondary has caught up (at most `catch_up`, then `force` decides), the old primary
/// ineligible for `freeze`. The control API's way to a step-down, for the embedded Atlas API.
pub(crate) async fn step_down(
    shared: &Shared,
    m: usize,
    catch_up: std::time::Duration,
    freeze: std::time::Duration,
    force: bool,
) -> Result<(), CommandError> {
    admin::step_down_and_hand_off(shared, m, catch_up, freeze, force).await
}

use std::collections::VecDeque;
use std::time::Duration;

use bson::oid::ObjectId;
use bson::{Bson, DateTime, Document, doc};

use super::catalog::Catalog;
use super::engine::{MemberConfig, Op, OpTime, SetState, StmtResult, TxnStmt};
use super::error::CommandError;
use super::query;
use super::refuse::{Unsupported, check_fields};
use super::server::{Counters, Cursor, Shared};
use super::wire::{MAX_MESSAGE_SIZE, Request, RequestKind};
use firedrill_core::clock::PlatformTime;

/// What the connection does after a command.
pub(crate) enum Outcome {
    /// Send this reply.
    Reply(Document),
    /// Close the connection without replying (shutdown).
    Close,
}

/// The wire version of MongoDB 6.0.
const MAX_WIRE_VERSION: i32 = 17;
const MAX_BSON_OBJECT_SIZE: i32 = 16 * 1024 * 1024;
const MAX_WRITE_BATCH_SIZE: i32 = 100_000;
const DEFAULT_BATCH_SIZE: usize = 101;
/// The longest any write-concern, step-down or causal wait may last (platform time), so no
/// request waits forever when a client asked for no timeout.
const MAX_WAIT: Duration = Duration::from_secs(600);

/// One command of the server.
pub(crate) struct Spec {
    pub name: &'static str,
    pub aliases: &'static [&'static str],
    /// The fields it understands besides the generic ones; `None` for commands whose answer
    /// no field changes (handshakes, diagnostics, the replica-set administration).
    pub fields: Option<&'static [&'static str]>,
    pub admin_only: bool,
    /// May run inside a multi-document transaction.
    pub in_txn: bool,
    pub help: &'static str,
}

const fn spec(
    name: &'static str,
    fields: Option<&'static [&'static str]>,
    help: &'static str,
) -> Spec {
    Spec {
        name,
        aliases: &[],
        fields,
        admin_only: false,
        in_txn: false,
        help,
    }
}

const fn admin(mut s: Spec) -> Spec {
    s.admin_only = true;
    s
}

const fn txn_ok(mut s: Spec) -> Spec {
    s.in_txn = true;
    s
}

const fn aka(mut s: Spec, aliases: &'static [&'static str]) -> Spec {
    s.aliases = aliases;
    s
}

/// Every command the embedded server implements.
pub(crate) const COMMANDS: &[Spec] = &[
    aka(
        spec("hello", None, "the topology of the replica set"),
        &["isMaster", "ismaster"],
    ),
    spec("ping", None, "a no-op"),
    aka(
        spec("buildInfo", None, "the server's version"),
        &["buildinfo"],
    ),
    spec(
        "serverStatus",
        None,
        "connections, operation counters, memory, replication",
    ),
    spec(
        "connectionStatus",
        None,
        "authentication of the connection (none)",
    ),
    spec("getParameter", None, "the feature compatibility version"),
    spec("endSessions", None, "ends sessions"),
    spec("getLastError", None, "a no-op"),
    spec("logout", None, "a no-op"),
    spec("listCommands", None, "this list"),
    txn_ok(spec(
        "insert",
        Some(&["documents", "ordered", "bypassDocumentValidation"]),
        "inserts documents",
    )),
    txn_ok(spec(
        "update",
        Some(&["updates", "ordered", "bypassDocumentValidation"]),
        "updates documents",
    )),
    txn_ok(spec(
        "delete",
        Some(&["deletes", "ordered"]),
        "deletes documents",
    )),
    txn_ok(aka(
        spec(
            "findAndModify",
            Some(&[
                "query",
                "sort",
                "remove",
                "update",
                "new",
                "fields",
                "upsert",
                "bypassDocumentValidation",
                "hint",
            ]),
            "updates or removes one document and returns it",
        ),
        &["findandmodify"],
    )),
    txn_ok(spec(
        "find",
        Some(&[
            "filter",
            "sort",
            "projection",
            "hint",
            "skip",
            "limit",
            "batchSize",
            "singleBatch",
            "noCursorTimeout",
            "allowPartialResults",
            "allowDiskUse",
        ]),
        "queries a collection",
    )),
    txn_ok(spec(
        "aggregate",
        Some(&[
            "pipeline",
            "cursor",
            "allowDiskUse",
            "bypassDocumentValidation",
            "hint",
        ]),
        "runs an aggregation pipeline",
    )),
    spec(
        "count",
        Some(&["query", "limit", "skip", "hint"]),
        "counts documents",
    ),
    txn_ok(spec(
        "distinct",
        Some(&["key", "query", "hint"]),
        "the distinct values of a field",
    )),
    txn_ok(spec(
        "getMore",
        Some(&["collection", "batchSize"]),
        "the next batch of a cursor",
    )),
    txn_ok(spec("killCursors", Some(&["cursors"]), "closes cursors")),
    spec("create", Some(&[]), "creates a collection"),
    spec("drop", Some(&[]), "drops a collection"),
    spec(
        "listCollections",
        Some(&["filter", "nameOnly", "authorizedCollections", "cursor"]),
        "the collections of a database",
    ),
    spec(
        "listDatabases",
        Some(&["filter", "nameOnly", "authorizedDatabases"]),
        "the databases",
    ),
    spec(
        "createIndexes",
        Some(&["indexes", "commitQuorum"]),
        "creates indexes (unique and sparse are enforced)",
    ),
    spec(
        "listIndexes",
        Some(&["cursor"]),
        "the indexes of a collection",
    ),
    spec("dropIndexes", Some(&["index"]), "drops indexes"),
    admin(spec(
        "renameCollection",
        Some(&["to", "dropTarget", "stayTemp"]),
        "renames a collection",
    )),
    spec("dropDatabase", Some(&[]), "drops a database"),
    spec(
        "dbStats",
        Some(&["scale", "freeStorage"]),
        "statistics of a database",
    ),
    spec("collStats", Some(&["scale"]), "statistics of a collection"),
    admin(txn_ok(spec(
        "commitTransaction",
        Some(&["recoveryToken"]),
        "commits a transaction",
    ))),
    admin(txn_ok(spec(
        "abortTransaction",
        Some(&["recoveryToken"]),
        "aborts a transaction",
    ))),
    admin(spec("replSetGetStatus", None, "the replica set's status")),
    admin(spec(
        "replSetGetConfig",
        None,
        "the replica set's configuration",
    )),
    admin(spec("replSetStepDown", None, "steps the primary down")),
    admin(spec(
        "replSetFreeze",
        None,
        "keeps a secondary from standing for election",
    )),
    admin(spec(
        "replSetReconfig",
        None,
        "changes priorities, votes and tags",
    )),
    admin(spec("shutdown", None, "shuts the member down")),
    spec(
        "saslStart",
        None,
        "refused: the embedded server runs without authentication",
    ),
    spec(
        "saslContinue",
        None,
        "refused: the embedded server runs without authentication",
    ),
    spec(
        "authenticate",
        None,
        "refused: the embedded server runs without authentication",
    ),
];

/// The command named `name` (or one of its aliases).
pub(crate) fn lookup(name: &str) -> Option<&'static Spec> {
    COMMANDS
        .iter()
        .find(|s| s.name == name || s.aliases.contains(&name))
}

/// Runs one request on member `m` and shapes the reply.
pub(crate) async fn run(
    shared: &Shared,
    m: usize,
    connection_id: i64,
    request: &Request,
) -> Outcome {
    let command = &request.command;
    let name = command.keys().next().cloned().unwrap_or_default();
    let result = match request.oversized {
        Some(size) => Err(CommandError::new(
            10334,
            "BSONObjectTooLarge",
            format!(
                "BSONObj size: {size} (0x{size:X}) is invalid. Size must be between 0 and 16793600(16MB)"
            ),
        )),
        None => dispatch(shared, m, connection_id, &name, command, request.kind).await,
    };
    let mut reply = match result {
        Ok(Some(reply)) => reply,
        Ok(None) => return Outcome::Close,
        Err(e) => {
            tracing::debug!(member = m, command = %name, error = %e, "command failed");
            e.to_reply()
        }
    };
    stamp_times(shared, m, &mut reply);
    Outcome::Reply(reply)
}

/// Adds `operationTime` and `$clusterTime`, as every reply of a replica-set member carries, so
/// causally consistent sessions can ask for reads after their writes.
fn stamp_times(shared: &Shared, m: usize, reply: &mut Document) {
    let st = shared.lock();
    let operation = st.members[m].last_ts();
    let cluster = (0..st.members.len())
        .filter(|&o| st.connected(m, o))
        .map(|o| st.members[o].last_ts())
        .max_by_key(|t| (t.time, t.increment))
        .unwrap_or(operation);
    drop(st);
    reply.insert("operationTime", operation);
    reply.insert(
        "$clusterTime",
        doc! {
            "clusterTime": cluster,
            "signature": {
                "hash": bson::Binary { subtype: bson::spec::BinarySubtype::Generic, bytes: vec![0; 20] },
                "keyId": 0_i64,
            },
        },
    );
}

fn count(shared: &Shared, m: usize, name: &str, cmd: &Document) {
    let Some(c) = shared.counters.get(m) else {
        return;
    };
    let statements = |field: &str| cmd.get_array(field).map_or(0, |a| a.len() as i64);
    match name {
        "insert" => Counters::add(&c.insert, statements("documents")),
        "update" => Counters::add(&c.update, statements("updates")),
        "delete" => Counters::add(&c.delete, statements("deletes")),
        "find" => Counters::add(&c.query, 1),
        "getMore" => Counters::add(&c.getmore, 1),
        _ => Counters::add(&c.command, 1),
    }
}

async fn dispatch(
    shared: &Shared,
    m: usize,
    connection_id: i64,
    name: &str,
    cmd: &Document,
    kind: RequestKind,
) -> Result<Option<Document>, CommandError> {
    let Some(spec) = lookup(name) else {
        return Err(Unsupported::Command(name).error());
    };
    count(shared, m, spec.name, cmd);
    if spec.admin_only && cmd.get_str("$db").unwrap_or("admin") != "admin" {
        return Err(CommandError::new(
            13,
            "Unauthorized",
            format!("{name} may only be run against the admin database."),
        ));
    }
    if let Some(fields) = spec.fields {
        check_fields(cmd, spec.name, fields, true, true)?;
    }
    let session = txn::Session::of(cmd);
    let in_txn = cmd.contains_key("autocommit");
    if in_txn && !spec.in_txn {
        return Err(CommandError::new(
            263,
            "OperationNotSupportedInTransaction",
            format!("Cannot run '{name}' in a multi-document transaction."),
        ));
    }
    let txn = if in_txn && !matches!(spec.name, "commitTransaction" | "abortTransaction") {
        Some(txn::join(shared, m, cmd, session.as_ref())?)
    } else {
        None
    };
    let ctx = Ctx {
        shared,
        m,
        cmd,
        kind,
        session,
        txn,
    };
    let result = run_spec(&ctx, spec, connection_id, name).await;
    if let (Err(_), Some(t)) = (&result, &ctx.txn) {
        // Any error inside a transaction aborts it, as on the server.
        txn::abort_on_error(shared, m, t);
    }
    result
}

/// What a handler gets: the member, the command, its session and its transaction.
pub(crate) struct Ctx<'a> {
    pub shared: &'a Shared,
    pub m: usize,
    pub cmd: &'a Document,
    pub kind: RequestKind,
    pub session: Option<txn::Session>,
    /// The transaction the command runs in.
    pub txn: Option<txn::TxnRef>,
}

async fn run_spec(
    ctx: &Ctx<'_>,
    spec: &Spec,
    connection_id: i64,
    name: &str,
) -> Result<Option<Document>, CommandError> {
    let (shared, m, cmd) = (ctx.shared, ctx.m, ctx.cmd);
    let reply = match spec.name {
        "hello" => hello::hello(shared, m, connection_id, name, cmd).await,
        "ping" | "endSessions" | "getLastError" | "logout" => doc! {"ok": 1.0},
        "buildInfo" => doc! {
            "version": "6.0.0-firedrill",
            "gitVersion": "firedrill-embedded",
            "versionArray": [6, 0, 0, 0],
            "bits": 64,
            "maxBsonObjectSize": MAX_BSON_OBJECT_SIZE,
            "storageEngines": ["firedrill-memory"],
            "ok": 1.0,
        },
        "serverStatus" => hello::server_status(shared, m),
        "connectionStatus" => doc! {
            "authInfo": {"authenticatedUsers": [], "authenticatedUserRoles": []},
            "ok": 1.0,
        },
        "getParameter" => doc! {"featureCompatibilityVersion": {"version": "6.0"}, "ok": 1.0},
        "listCommands" => list_commands(),
        "saslStart" | "saslContinue" | "authenticate" => {
            return Err(CommandError::new(
                18,
                "AuthenticationFailed",
                "the embedded replica set runs without authentication (hint: drop the credentials from the connection string)",
            ));
        }
        "insert" => write::write(ctx, write::WriteKind::Insert).await?,
        "update" => write::write(ctx, write::WriteKind::Update).await?,
        "delete" => write::write(ctx, write::WriteKind::Delete).await?,
        "findAndModify" => write::find_and_modify(ctx).await?,
        "find" => read::find(ctx).await?,
        "aggregate" => read::aggregate(ctx).await?,
        "count" => read::count(ctx).await?,
        "distinct" => read::distinct(ctx).await?,
        "getMore" => read::get_more(shared, cmd)?,
        "killCursors" => read::kill_cursors(shared, cmd),
        "create" => catalog::create(ctx).await?,
        "drop" => catalog::drop(ctx).await?,
        "listCollections" => catalog::list_collections(ctx)?,
        "listDatabases" => catalog::list_databases(ctx)?,
        "createIndexes" => catalog::create_indexes(ctx).await?,
        "listIndexes" => catalog::list_indexes(ctx)?,
        "dropIndexes" => catalog::drop_indexes(ctx).await?,
        "renameCollection" => catalog::rename_collection(ctx).await?,
        "dropDatabase" => catalog::drop_database(ctx).await?,
        "dbStats" => catalog::db_stats(ctx),
        "collStats" => catalog::coll_stats_command(ctx)?,
        "commitTransaction" => txn::commit(ctx).await?,
        "abortTransaction" => txn::abort(ctx)?,
        "replSetGetStatus" => admin::repl_set_get_status(shared, m),
        "replSetGetConfig" => admin::repl_set_get_config(shared),
        "replSetStepDown" => admin::repl_set_step_down(shared, m, cmd).await?,
        "replSetFreeze" => admin::repl_set_freeze(shared, m, cmd)?,
        "replSetReconfig" => admin::repl_set_reconfig(shared, m, cmd)?,
        "shutdown" => return admin::shutdown(shared, m, cmd).await.map(|()| None),
        other => return Err(Unsupported::Command(other).error()),
    };
    Ok(Some(reply))
}

fn list_commands() -> Document {
    let mut commands = Document::new();
    for s in COMMANDS {
        let entry = doc! {
            "help": s.help,
            "requiresAuth": false,
            "secondaryOk": !matches!(s.name, "insert" | "update" | "delete" | "findAndModify" | "create" | "drop" | "createIndexes" | "dropIndexes" | "renameCollection" | "dropDatabase"),
            "adminOnly": s.admin_only,
            "apiVersions": [],
            "deprecatedApiVersions": [],
        };
        commands.insert(s.name, entry.clone());
        for a in s.aliases {
            commands.insert(*a, entry.clone());
        }
    }
    doc! {"commands": commands, "ok": 1.0}
}

fn number(v: Option<&Bson>) -> Option<f64> {
    match v? {
        Bson::Int32(i) => Some(f64::from(*i)),
        Bson::Int64(i) => Some(*i as f64),
        Bson::Double(d) => Some(*d),
        Bson::Boolean(b) => Some(if *b { 1.0 } else { 0.0 }),
        _ => None,
    }
}

fn secs(v: Option<&Bson>, default: f64) -> Duration {
    Duration::from_secs_f64(number(v).unwrap_or(default).max(0.0))
}

fn optime_doc(ts: bson::Timestamp, term: i64) -> Document {
    doc! {"ts": ts, "t": term}
}

/// The electionId of a term, as the server builds it (OID with max timestamp, then the term).
fn election_id(term: i64) -> ObjectId {
    let mut bytes = [0u8; 12];
    bytes[..4].copy_from_slice(&0x7fff_ffff_u32.to_be_bytes());
    bytes[4..].copy_from_slice(&term.to_be_bytes());
    ObjectId::from_bytes(bytes)
}

fn date(shared: &Shared, t: PlatformTime) -> DateTime {
    DateTime::from_system_time(shared.clock.wall(t))
}

/// The data a command sees on member `m`: its transaction's snapshot, or the member's data.
fn catalog_of<'a>(st: &'a SetState, m: usize, txn: Option<&txn::TxnRef>) -> &'a Catalog {
    txn.and_then(|t| st.members[m].transactions.get(&t.lsid))
        .map_or(&st.members[m].store.collections, |t| &t.data)
}

/// The read concern level of the command.
fn read_level(cmd: &Document) -> Option<&str> {
    cmd.get_document("readConcern")
        .ok()
        .and_then(|rc| rc.get_str("level").ok())
}

/// Whether the command reads majority-committed data (`readConcern` majority, snapshot and
/// linearizable all read a majority snapshot).
fn reads_majority(cmd: &Document) -> bool {
    read_level(cmd).is_some_and(|l| matches!(l, "majority" | "snapshot" | "linearizable"))
}

/// The cluster time a snapshot read outside a transaction reads at: its `atClusterTime`, or
/// the member's majority commit point (which the reply names, so a snapshot session reads
/// every later statement at the same time).
fn snapshot_time(st: &SetState, m: usize, ctx: &Ctx<'_>) -> Option<bson::Timestamp> {
    if ctx.txn.is_some() || read_level(ctx.cmd) != Some("snapshot") {
        return None;
    }
    let at = ctx
        .cmd
        .get_document("readConcern")
        .ok()
        .and_then(|rc| rc.get_timestamp("atClusterTime").ok());
    Some(at.unwrap_or_else(|| st.committed_ts(m)))
}

/// The data a read sees: in a transaction its snapshot; a snapshot read the data at its
/// cluster time; with a majority read concern the member's data as of its majority commit
/// point; else the member's data.
fn read_view<'a>(st: &'a SetState, m: usize, ctx: &Ctx<'_>) -> std::borrow::Cow<'a, Catalog> {
    if let Some(at) = snapshot_time(st, m, ctx) {
        return match st.catalog_at(m, at) {
            Some(view) => std::borrow::Cow::Owned(view),
            None => std::borrow::Cow::Borrowed(&st.members[m].store.collections),
        };
    }
    if ctx.txn.is_none()
        && reads_majority(ctx.cmd)
        && let Some((committed, _)) = st.committed_catalog(m)
    {
        return std::borrow::Cow::Owned(committed);
    }
    std::borrow::Cow::Borrowed(catalog_of(st, m, ctx.txn.as_ref()))
}

#[cfg(test)]
mod tests {
    use super::write::{WriteConcern, write_concern};
    use super::*;
    use crate::mongo::catalog::id_key;

    #[test]
    fn election_ids_grow_with_the_term() {
        assert!(election_id(2).bytes() > election_id(1).bytes());
        assert_eq!(election_id(1).to_hex(), "7fffffff0000000000000001");
    }

    #[test]
    fn write_concern_defaults_to_majority_and_keeps_tags() {
        assert!(matches!(write_concern(&doc! {}).0, WriteConcern::Majority));
        assert!(matches!(
            write_concern(&doc! {"writeConcern": {"w": 1}}).0,
            WriteConcern::Nodes(1)
        ));
        assert!(matches!(
            write_concern(&doc! {"writeConcern": {"w": "dc"}}).0,
            WriteConcern::Tag(t) if t == "dc"
        ));
        let (_, timeout, _) =
            write_concern(&doc! {"writeConcern": {"w": "majority", "wtimeout": 500}});
        assert_eq!(timeout, Some(Duration::from_millis(500)));
    }

    #[test]
    fn id_keys_distinguish_values() {
        assert_ne!(id_key(&Bson::Int32(1)), id_key(&Bson::Int32(2)));
    }

    /// Whether `docs` names `name` as a word (`$in` is not found in `$inc`).
    fn mentions(docs: &str, name: &str) -> bool {
        docs.match_indices(name).any(|(at, _)| {
            let next = docs[at + name.len()..].chars().next();
            !next.is_some_and(|c| c.is_ascii_alphanumeric())
        })
    }

    #[test]
    fn the_docs_table_names_everything_the_server_implements() {
        let docs = include_str!("../../../../../docs/conformance/mongodb.md");
        let missing: Vec<&str> = COMMANDS
            .iter()
            .flat_map(|s| std::iter::once(s.name).chain(s.aliases.iter().copied()))
            .chain(query::matcher::QUERY_OPERATORS.iter().copied())
            .chain(query::matcher::TOP_LEVEL_OPERATORS.iter().copied())
            .chain(query::update::MODIFIERS.iter().copied())
            .chain(query::pipeline::STAGES.iter().copied())
            .chain(query::pipeline::ACCUMULATORS.iter().copied())
            .chain(query::expr::operators())
            .filter(|n| !mentions(docs, n))
            .collect();
        assert!(
            missing.is_empty(),
            "docs/conformance/mongodb.md does not name {missing:?}"
        );
    }

    #[test]
    fn every_listed_query_operator_parses() {
        for op in query::matcher::QUERY_OPERATORS {
            let arg: Bson = match *op {
                "$in" | "$nin" | "$all" => Bson::from(vec![1]),
                "$mod" => Bson::from(vec![2, 1]),
                "$elemMatch" => Bson::from(doc! {"b": 1}),
                "$not" => Bson::from(doc! {"$gt": 1}),
                "$regex" | "$type" => Bson::from("string"),
                _ => Bson::Int32(1),
            };
            let filter = if *op == "$options" {
                doc! {"a": {"$regex": "x", "$options": "i"}}
            } else {
                doc! {"a": {*op: arg}}
            };
            assert!(query::Filter::parse(&filter).is_ok(), "{op}");
        }
        for op in query::matcher::TOP_LEVEL_OPERATORS {
            let arg = match *op {
                "$expr" => Bson::Boolean(true),
                "$comment" => Bson::from("why"),
                _ => Bson::from(vec![Bson::from(doc! {"a": 1})]),
            };
            assert!(query::Filter::parse(&doc! {*op: arg}).is_ok(), "{op}");
        }
    }

    #[test]
    fn every_listed_command_is_dispatched_and_others_are_refused() {
        for s in COMMANDS {
            assert!(lookup(s.name).is_some());
            for a in s.aliases {
                assert_eq!(lookup(a).map(|l| l.name), Some(s.name));
            }
        }
        assert!(lookup("mapReduce").is_none());
        let listed = list_commands();
        let names = listed.get_document("commands").expect("commands");
        assert!(names.contains_key("commitTransaction") && names.contains_key("isMaster"));
    }
}
