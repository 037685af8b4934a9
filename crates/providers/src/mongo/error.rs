//! What can go wrong talking to a replica set, and a driver error as an operator reads it.
//! Every message names the database and, where there is one, the member; none carries the
//! connection string (callers pass driver text through [`Target::clean`](super::Target::clean)).

use firedrill_platform::SecretError;

/// A failure talking to a replica set. Messages never contain the URI or its password.
#[derive(Debug, thiserror::Error)]
pub enum MongoError {
    /// The namespace or database is not in the platform.
    #[error(
        "\"{name}\" is neither a namespace with a database nor a database of the platform (hint: set namespaces.{name}.database or define databases.{name})"
    )]
    UnknownDatabase {
        /// What the step named.
        name: String,
    },
    /// The URI secret cannot be read.
    #[error("database \"{database}\": {source}")]
    Secret {
        /// The database.
        database: String,
        /// Why.
        source: SecretError,
    },
    /// The URI does not parse (its text is not shown: it may hold a password).
    #[error(
        "database \"{database}\": the connection string is not valid: {message} (hint: check the value of the secret; it is not printed because it may hold a password)"
    )]
    Uri {
        /// The database.
        database: String,
        /// The driver's complaint, redacted.
        message: String,
    },
    /// A member did not answer.
    #[error(
        "database \"{database}\": member {host} is unreachable: {message} (hint: is it up and reachable from here? Nothing was changed)"
    )]
    Unreachable {
        /// The database.
        database: String,
        /// The member.
        host: String,
        /// The driver's error, redacted.
        message: String,
    },
    /// The member belongs to another replica set.
    #[error(
        "database \"{database}\": member {host} belongs to replica set \"{found}\", but the platform says \"{expected}\" (hint: fix databases.{database}.replica-set or the URI)"
    )]
    WrongSet {
        /// The database.
        database: String,
        /// The member.
        host: String,
        /// The platform's replica-set.
        expected: String,
        /// What the member reports.
        found: String,
    },
    /// No member reports itself primary.
    #[error(
        "database \"{database}\": no member is primary (hint: wait for the election, or check the replica set)"
    )]
    NoPrimary {
        /// The database.
        database: String,
    },
    /// A command was refused.
    #[error(
        "database \"{database}\": {command} on {host} failed: {message} (hint: the server's answer says why; a managed service such as Atlas refuses replSet* commands: drive it with a command step)"
    )]
    Command {
        /// The database.
        database: String,
        /// The command.
        command: &'static str,
        /// Where it ran.
        host: String,
        /// The server's answer, redacted.
        message: String,
    },
    /// No member in the region.
    #[error(
        "database \"{database}\": no member of replica set is in region \"{region}\" (members: {members}) (hint: tag the members with `region` or map them under databases.{database}.members)"
    )]
    NoMemberInRegion {
        /// The database.
        database: String,
        /// The region.
        region: String,
        /// Every member with its region.
        members: String,
    },
    /// The primary did not move in time.
    #[error(
        "database \"{database}\": the primary did not move to \"{region}\" within {within} (last primary: {last}) (hint: check the members' priorities and replication lag)"
    )]
    NotMoved {
        /// The database.
        database: String,
        /// The target region.
        region: String,
        /// The deadline.
        within: String,
        /// The last primary seen.
        last: String,
    },
    /// A kill of this member would have no way back.
    #[error(
        "database \"{database}\": member {host} cannot be killed, there is no way to bring it back; nothing was injected (hint: set databases.{database}.kill: `links` (its Toxiproxy link), `pods` (its StatefulSet pod) or `restart` (a command that starts it again))"
    )]
    NoWayBack {
        /// The database.
        database: String,
        /// The member.
        host: String,
    },
    /// The member's Toxiproxy link could not be cut.
    #[error(
        "database \"{database}\": cutting the link of member {host} (proxy \"{proxy}\"): {source}"
    )]
    Toxiproxy {
        /// The database.
        database: String,
        /// The member.
        host: String,
        /// The proxy.
        proxy: String,
        /// Why (boxed: the Toxiproxy error is large and this one is rare).
        source: Box<crate::toxiproxy::Error>,
    },
    /// The member's pod could not be read or deleted.
    #[error(
        "database \"{database}\": pod {pod} in context \"{context}\": {message} (hint: check databases.{database}.kill.pods and that the context may delete pods there)"
    )]
    Pod {
        /// The database.
        database: String,
        /// `namespace/pod`.
        pod: String,
        /// The kube context.
        context: String,
        /// The API's answer.
        message: String,
    },
    /// The restart command failed.
    #[error(
        "database \"{database}\": restarting member {host} with command \"{command}\" failed: {message} (hint: the member may still be down: define or fix commands.{command}, run it by hand, then `firedrill recover`)"
    )]
    Restart {
        /// The database.
        database: String,
        /// The member.
        host: String,
        /// The command (a key of `commands`).
        command: String,
        /// Why.
        message: String,
    },
    /// The platform maps a member the replica set does not have.
    #[error(
        "database \"{database}\": member {host} of the platform is not in the replica set's config (members: {members}) (hint: fix databases.{database}.members; nothing was changed)"
    )]
    NotInConfig {
        /// The database.
        database: String,
        /// The member the platform names.
        host: String,
        /// The members the set reports.
        members: String,
    },
    /// A killed member did not come back.
    #[error(
        "database \"{database}\": member {host} was not back within {within} (last seen: {last}) (hint: bring it back by hand, then run `firedrill recover` again)"
    )]
    NotBack {
        /// The database.
        database: String,
        /// The member.
        host: String,
        /// The deadline.
        within: String,
        /// The last state seen.
        last: String,
    },
}

impl MongoError {
    /// Whether this error is about `host` (so a second one about it is not reported).
    #[must_use]
    pub fn names_host(&self, host: &str) -> bool {
        match self {
            MongoError::Unreachable { host: h, .. }
            | MongoError::WrongSet { host: h, .. }
            | MongoError::Command { host: h, .. }
            | MongoError::NoWayBack { host: h, .. }
            | MongoError::Toxiproxy { host: h, .. }
            | MongoError::Restart { host: h, .. }
            | MongoError::NotInConfig { host: h, .. }
            | MongoError::NotBack { host: h, .. } => h == host,
            _ => false,
        }
    }
}

/// A driver error as an operator reads it.
///
/// The driver's own `Display` is close to its `Debug` form (`Kind: …, labels: {}, source: None,
/// server response: None`, a refused write as a Rust struct); this says what the server said,
/// with its code name, and the error labels that matter (`RetryableWriteError`).
#[must_use]
pub fn describe(error: &mongodb::error::Error) -> String {
    use mongodb::error::{ErrorKind, WriteFailure};
    let mut text = match &*error.kind {
        ErrorKind::Command(e) => server_error(&e.code_name, e.code, &e.message),
        ErrorKind::Write(WriteFailure::WriteError(e)) => format!(
            "write refused: {}",
            server_error(
                e.code_name.as_deref().unwrap_or_default(),
                e.code,
                &e.message
            )
        ),
        ErrorKind::Write(WriteFailure::WriteConcernError(e)) => format!(
            "write concern not satisfied: {}",
            server_error(&e.code_name, e.code, &e.message)
        ),
        ErrorKind::InsertMany(e) => {
            let mut parts: Vec<String> = e
                .write_errors
                .iter()
                .flatten()
                .map(|w| {
                    format!(
                        "document {}: {}",
                        w.index,
                        server_error(
                            w.code_name.as_deref().unwrap_or_default(),
                            w.code,
                            &w.message
                        )
                    )
                })
                .collect();
            if let Some(w) = &e.write_concern_error {
                parts.push(format!(
                    "write concern not satisfied: {}",
                    server_error(&w.code_name, w.code, &w.message)
                ));
            }
            format!("insert refused: {}", parts.join("; "))
        }
        other => tidy(&other.to_string()),
    };
    let mut labels: Vec<&str> = error.labels().iter().map(String::as_str).collect();
    if !labels.is_empty() {
        labels.sort_unstable();
        text.push_str(&format!(" (labels: {})", labels.join(", ")));
    }
    text
}

fn server_error(code_name: &str, code: i32, message: &str) -> String {
    match (code_name.is_empty(), message.is_empty()) {
        (false, false) => format!("{message} ({code_name}, code {code})"),
        (false, true) => format!("{code_name} (code {code})"),
        (true, false) => format!("{message} (code {code})"),
        (true, true) => format!("error code {code}"),
    }
}

/// Drops the `Debug`-flavoured parts the driver nests into its messages (a server selection
/// error lists each server's last error in the driver's full form).
fn tidy(text: &str) -> String {
    let mut out = match &*NESTED_LABELS {
        Some(labels) => labels.replace_all(text, "").into_owned(),
        None => text.to_owned(),
    };
    for noise in [", source: None", ", server response: None", "Kind: "] {
        out = out.replace(noise, "");
    }
    out
}

/// `, labels: {"RetryableError", …}` of an error nested in a driver message (a `HashSet`'s
/// `Debug`, in no stable order).
static NESTED_LABELS: std::sync::LazyLock<Option<regex::Regex>> =
    std::sync::LazyLock::new(|| regex::Regex::new(r", labels: \{[^{}]*\}").ok());

#[cfg(test)]
mod tests {
    use super::*;
    use bson::doc;

    #[test]
    fn driver_errors_read_as_what_the_server_said_not_as_rust_structs() {
        use mongodb::error::{CommandError, Error, ErrorKind, WriteError, WriteFailure};
        let command: CommandError = bson::from_document(doc! {
            "code": 10107, "codeName": "NotWritablePrimary", "errmsg": "not primary"
        })
        .expect("command error");
        let e = Error::from(ErrorKind::Command(command));
        assert_eq!(describe(&e), "not primary (NotWritablePrimary, code 10107)");

        let write: WriteError = bson::from_document(doc! {
            "code": 11000, "codeName": "DuplicateKey", "errmsg": "E11000 duplicate key"
        })
        .expect("write error");
        let e = Error::from(ErrorKind::Write(WriteFailure::WriteError(write)));
        let text = describe(&e);
        assert_eq!(
            text,
            "write refused: E11000 duplicate key (DuplicateKey, code 11000)"
        );

        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "connection refused");
        let e = Error::from(ErrorKind::Io(std::sync::Arc::new(io)));
        let text = describe(&e);
        assert_eq!(text, "I/O error: connection refused");
        // What the driver's Display gives, for comparison: the Debug-flavoured form.
        assert!(e.to_string().contains("labels: {}"), "{e}");

        let nested = "Server selection timeout: No available servers. Topology: { Type: ReplicaSetNoPrimary, Servers: [ { Address: h:1, Type: Unknown, Error: Kind: I/O error: Connection refused (os error 111), labels: {\"RetryableError\", \"SystemOverloadedError\"}, source: None, server response: None } ] }";
        let tidied = tidy(nested);
        for debug in ["Kind:", "labels:", "source: None", "server response"] {
            assert!(!tidied.contains(debug), "{tidied}");
        }
        assert!(
            tidied.contains("Error: I/O error: Connection refused (os error 111) }"),
            "{tidied}"
        );
    }
}
