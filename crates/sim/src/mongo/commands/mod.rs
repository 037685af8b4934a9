//! The commands a member answers, shaped like the real server's replies.

mod admin;
mod hello;
mod read;
mod write;

use admin::{
    repl_set_freeze, repl_set_get_config, repl_set_get_status, repl_set_reconfig,
    repl_set_step_down, shutdown,
};
use hello::{hello, server_status};
use read::{aggregate, count, find, get_more, kill_cursors, list_collections, list_databases};
use write::{WriteKind, find_and_modify, write};

use std::collections::VecDeque;
use std::time::Duration;

use bson::oid::ObjectId;
use bson::{Bson, DateTime, Document, doc};

use super::engine::{MemberConfig, Op, OpTime, SetState, StmtResult, TxnStmt};
use super::error::CommandError;
use super::query;
use super::server::{Cursor, Shared};
use super::wire::{MAX_MESSAGE_SIZE, RequestKind};
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
/// The longest any write-concern or step-down wait may last (platform time), so no request
/// waits forever when a client asked for no timeout.
const MAX_WAIT: Duration = Duration::from_secs(600);

/// Runs one command on member `m` and shapes the reply.
pub(crate) async fn run(
    shared: &Shared,
    m: usize,
    connection_id: i64,
    command: Document,
    kind: RequestKind,
) -> Outcome {
    let name = command.keys().next().cloned().unwrap_or_default();
    let result = dispatch(shared, m, connection_id, &name, &command, kind).await;
    match result {
        Ok(Some(reply)) => Outcome::Reply(reply),
        Ok(None) => Outcome::Close,
        Err(e) => {
            tracing::debug!(member = m, command = %name, error = %e, "command failed");
            Outcome::Reply(e.to_reply())
        }
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
    let admin_only = name.starts_with("replSet") || name == "shutdown";
    if admin_only && cmd.get_str("$db").unwrap_or("admin") != "admin" {
        return Err(CommandError::new(
            13,
            "Unauthorized",
            format!("{name} may only be run against the admin database."),
        ));
    }
    let reply = match name {
        "hello" | "isMaster" | "ismaster" => hello(shared, m, connection_id, name, cmd).await,
        "ping" => doc! {"ok": 1.0},
        "buildInfo" | "buildinfo" => doc! {
            "version": "6.0.0-firedrill",
            "gitVersion": "firedrill-embedded",
            "versionArray": [6, 0, 0, 0],
            "bits": 64,
            "maxBsonObjectSize": MAX_BSON_OBJECT_SIZE,
            "storageEngines": ["firedrill-memory"],
            "ok": 1.0,
        },
        "serverStatus" => server_status(shared, m),
        "connectionStatus" => doc! {
            "authInfo": {"authenticatedUsers": [], "authenticatedUserRoles": []},
            "ok": 1.0,
        },
        "getParameter" => doc! {"featureCompatibilityVersion": {"version": "6.0"}, "ok": 1.0},
        "saslStart" | "saslContinue" | "authenticate" => {
            return Err(CommandError::new(
                18,
                "AuthenticationFailed",
                "the embedded replica set runs without authentication (hint: drop the credentials from the connection string)",
            ));
        }
        "endSessions" | "createIndexes" | "create" | "getLastError" | "logout" => {
            doc! {"ok": 1.0}
        }
        "insert" => write(shared, m, cmd, WriteKind::Insert).await?,
        "update" => write(shared, m, cmd, WriteKind::Update).await?,
        "delete" => write(shared, m, cmd, WriteKind::Delete).await?,
        "drop" => write(shared, m, cmd, WriteKind::Drop).await?,
        "findAndModify" | "findandmodify" => find_and_modify(shared, m, cmd).await?,
        "find" => find(shared, m, cmd, kind)?,
        "aggregate" => aggregate(shared, m, cmd, kind)?,
        "count" => count(shared, m, cmd, kind)?,
        "getMore" => get_more(shared, cmd)?,
        "killCursors" => kill_cursors(shared, cmd),
        "listCollections" => list_collections(shared, m, cmd),
        "listDatabases" => list_databases(shared, m),
        "replSetGetStatus" => repl_set_get_status(shared, m),
        "replSetGetConfig" => repl_set_get_config(shared),
        "replSetStepDown" => repl_set_step_down(shared, m, cmd).await?,
        "replSetFreeze" => repl_set_freeze(shared, m, cmd)?,
        "replSetReconfig" => repl_set_reconfig(shared, m, cmd)?,
        "shutdown" => return shutdown(shared, m, cmd).await.map(|()| None),
        other => {
            return Err(CommandError::new(
                59,
                "CommandNotFound",
                format!("no such command: '{other}'"),
            ));
        }
    };
    Ok(Some(reply))
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

#[cfg(test)]
mod tests {
    use super::super::engine::id_key;
    use super::write::{WriteConcern, write_concern};
    use super::*;

    #[test]
    fn election_ids_grow_with_the_term() {
        assert!(election_id(2).bytes() > election_id(1).bytes());
        assert_eq!(election_id(1).to_hex(), "7fffffff0000000000000001");
    }

    #[test]
    fn write_concern_defaults_to_majority() {
        assert!(matches!(write_concern(&doc! {}).0, WriteConcern::Majority));
        assert!(matches!(
            write_concern(&doc! {"writeConcern": {"w": 1}}).0,
            WriteConcern::Nodes(1)
        ));
        let (_, timeout, _) =
            write_concern(&doc! {"writeConcern": {"w": "majority", "wtimeout": 500}});
        assert_eq!(timeout, Some(Duration::from_millis(500)));
    }

    #[test]
    fn id_keys_distinguish_values() {
        assert_ne!(id_key(&Bson::Int32(1)), id_key(&Bson::Int32(2)));
    }
}
