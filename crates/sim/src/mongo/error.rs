//! Errors: [`Error`] for the Rust control API, [`CommandError`] for the wire replies that the
//! real server would send (`{ok: 0, errmsg, code, codeName, errorLabels}`).

use std::net::SocketAddr;
use std::time::Duration;

use bson::{Document, doc};

/// A failure of the control API of an embedded replica set.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The spec lists no members.
    #[error(
        "replica set {set} has no members (hint: list at least one member, three for elections)"
    )]
    NoMembers {
        /// The replica set's name.
        set: String,
    },
    /// More voting members than MongoDB allows.
    #[error(
        "replica set {set} has {count} members; MongoDB allows at most 7 voting members (hint: use 3 or 5)"
    )]
    TooManyMembers {
        /// The replica set's name.
        set: String,
        /// How many members the spec lists.
        count: usize,
    },
    /// A priority outside MongoDB's range 0..=1000.
    #[error("member {index} of replica set {set} has priority {priority}, outside 0..=1000")]
    InvalidPriority {
        /// The replica set's name.
        set: String,
        /// Index of the member in the spec.
        index: usize,
        /// The offending priority.
        priority: f64,
    },
    /// No member could ever become primary.
    #[error(
        "replica set {set} has no member with priority > 0, so no primary can be elected (hint: give at least one member priority 1)"
    )]
    NoElectableMember {
        /// The replica set's name.
        set: String,
    },
    /// A member's port could not be bound.
    #[error(
        "cannot listen for member {member} of replica set {set} on {addr}: {source} (hint: on restart, another process may have taken the port)"
    )]
    Bind {
        /// The replica set's name.
        set: String,
        /// The member's index.
        member: usize,
        /// The address asked for.
        addr: SocketAddr,
        /// The socket error.
        #[source]
        source: std::io::Error,
    },
    /// A host that is not a member of the set.
    #[error("{host} is not a member of replica set {set} (hint: members are {members})")]
    UnknownMember {
        /// The replica set's name.
        set: String,
        /// The host asked for.
        host: String,
        /// The set's hosts, comma separated.
        members: String,
    },
    /// Restart of a member that is running, or kill of one that is down.
    #[error("member {host} of replica set {set} is already {state}")]
    MemberState {
        /// The replica set's name.
        set: String,
        /// The member.
        host: String,
        /// "up" or "down".
        state: &'static str,
    },
    /// The set refused a change asked through the control API (a step-down with no primary).
    #[error("replica set {set}: {action} was refused: {message}")]
    Refused {
        /// The replica set's name.
        set: String,
        /// What was asked.
        action: &'static str,
        /// The server's answer.
        message: String,
    },
    /// No primary was elected in time after start.
    #[error(
        "replica set {set} elected no primary within {waited:?} of platform time (hint: check that a majority of members is up and not partitioned)"
    )]
    NoPrimary {
        /// The replica set's name.
        set: String,
        /// Platform time waited.
        waited: Duration,
    },
}

/// An error reply as the real server shapes it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{code_name} ({code}): {errmsg}")]
pub(crate) struct CommandError {
    pub code: i32,
    pub code_name: std::borrow::Cow<'static, str>,
    pub errmsg: String,
    pub labels: Vec<&'static str>,
    /// Fields the real server adds to this error (`keyPattern`, `keyValue`, `errInfo`).
    pub extra: Option<Box<Document>>,
}

impl CommandError {
    pub(crate) fn new(
        code: i32,
        code_name: impl Into<std::borrow::Cow<'static, str>>,
        errmsg: impl Into<String>,
    ) -> Self {
        Self {
            code,
            code_name: code_name.into(),
            errmsg: errmsg.into(),
            labels: Vec::new(),
            extra: None,
        }
    }

    /// An error of one of the server's numbered assertions (codeName `Location<code>`).
    pub(crate) fn location(code: i32, errmsg: impl Into<String>) -> Self {
        Self::new(code, format!("Location{code}"), errmsg)
    }

    pub(crate) fn with_extra(mut self, key: &str, value: impl Into<bson::Bson>) -> Self {
        self.extra
            .get_or_insert_with(Box::default)
            .insert(key, value.into());
        self
    }

    pub(crate) fn with_label(mut self, label: &'static str) -> Self {
        self.labels.push(label);
        self
    }

    pub(crate) fn bad_value(errmsg: impl Into<String>) -> Self {
        Self::new(2, "BadValue", errmsg)
    }

    pub(crate) fn failed_to_parse(errmsg: impl Into<String>) -> Self {
        Self::new(9, "FailedToParse", errmsg)
    }

    pub(crate) fn type_mismatch(errmsg: impl Into<String>) -> Self {
        Self::new(14, "TypeMismatch", errmsg)
    }

    pub(crate) fn immutable_id() -> Self {
        Self::new(
            66,
            "ImmutableField",
            "Performing an update on the path '_id' would modify the immutable field '_id'",
        )
    }

    pub(crate) fn not_writable_primary() -> Self {
        Self::new(10107, "NotWritablePrimary", "not primary")
    }

    pub(crate) fn not_primary_no_secondary_ok() -> Self {
        Self::new(
            13435,
            "NotPrimaryNoSecondaryOk",
            "not primary and secondaryOk=false",
        )
    }

    /// The reply document.
    pub(crate) fn to_reply(&self) -> Document {
        let mut d = doc! {
            "ok": 0.0,
            "errmsg": &self.errmsg,
            "code": self.code,
            "codeName": self.code_name.as_ref(),
        };
        if let Some(extra) = &self.extra {
            d.extend(extra.as_ref().clone());
        }
        if !self.labels.is_empty() {
            d.insert("errorLabels", self.labels.clone());
        }
        d
    }
}
