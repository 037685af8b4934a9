//! What can go wrong talking to Atlas, each naming the database and cluster, and ending with
//! what to do. No message carries a credential: every text from the wire is cleaned of the
//! secrets first ([`super::client::Client::clean`]).

use firedrill_platform::SecretError;

/// Which cluster an error is about, and the platform's database it belongs to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct On {
    /// The database (a key of `databases`).
    pub database: String,
    /// The Atlas cluster's name.
    pub cluster: String,
}

impl std::fmt::Display for On {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Atlas cluster \"{}\" (database \"{}\")",
            self.cluster, self.database
        )
    }
}

/// A failure of the Atlas provider.
#[derive(Debug, thiserror::Error)]
pub enum AtlasError {
    /// The step names a database that is not Atlas-managed.
    #[error(
        "database \"{database}\" is not managed by Atlas (hint: add databases.{database}.atlas, or use the replica-set steps for a self-managed database)"
    )]
    NotAtlas {
        /// The database.
        database: String,
    },
    /// A credential cannot be read.
    #[error("database \"{database}\": Atlas {what}: {source}")]
    Secret {
        /// The database.
        database: String,
        /// `api-key.private-key`, …
        what: &'static str,
        /// Why.
        source: SecretError,
    },
    /// The platform region has no Atlas name.
    #[error(
        "database \"{database}\": region \"{region}\" has no Atlas name (hint: map it under databases.{database}.atlas.regions, e.g. {region}: WESTERN_US)"
    )]
    UnmappedRegion {
        /// The database.
        database: String,
        /// The platform region.
        region: String,
    },
    /// Nothing answered (connection refused, timeouts), also after retrying.
    #[error(
        "{on}: {url} did not answer {what}: {message} (hint: check databases.{}.atlas.url and the network path to it; nothing was changed by this call)", .on.database
    )]
    Unreachable {
        /// The cluster and its database.
        on: Box<On>,
        /// The API's base URL.
        url: String,
        /// The request (`GET …/outageSimulation`).
        what: String,
        /// The transport error, cleaned.
        message: String,
    },
    /// 401: the credentials were refused.
    #[error(
        "{on}: the credentials were refused (401 {error_code}: {detail}) (hint: check the {kind} in databases.{}.atlas, and that this machine's address is on the key's access list)", .on.database
    )]
    Unauthorized {
        /// The cluster and its database.
        on: Box<On>,
        /// `API key` or `service account`.
        kind: &'static str,
        /// Atlas's `errorCode`.
        error_code: String,
        /// Atlas's `detail`, cleaned.
        detail: String,
    },
    /// 403, or a role check that found the role missing.
    #[error(
        "{on}: {what} needs the {role} role, which the {kind} lacks ({detail}) (hint: grant it {role} on project {project})"
    )]
    Forbidden {
        /// The cluster and its database.
        on: Box<On>,
        /// The project id.
        project: String,
        /// What was refused.
        what: String,
        /// The role it needs (`Project Owner`, …).
        role: &'static str,
        /// `API key` or `service account`.
        kind: &'static str,
        /// What Atlas or the role check said.
        detail: String,
    },
    /// 404 for the cluster or project.
    #[error(
        "{on}: not found in project {project} ({error_code}: {detail}) (hint: check databases.{}.atlas.project-id and .cluster)", .on.database
    )]
    NotFound {
        /// The cluster and its database.
        on: Box<On>,
        /// The project id.
        project: String,
        /// Atlas's `errorCode`.
        error_code: String,
        /// Atlas's `detail`, cleaned.
        detail: String,
    },
    /// 409: another change or simulation is in the way.
    #[error(
        "{on}: {what} was refused, something is already in progress (409 {error_code}: {detail}) (hint: {hint})"
    )]
    Conflict {
        /// The cluster and its database.
        on: Box<On>,
        /// The request.
        what: String,
        /// Atlas's `errorCode`.
        error_code: String,
        /// Atlas's `detail`, cleaned.
        detail: String,
        /// What to do about it.
        hint: String,
    },
    /// 429 past the retry deadline.
    #[error(
        "{on}: {what} was rate limited for {waited} (429 {error_code}: {detail}) (hint: another client is using this project's request budget; run again later)"
    )]
    RateLimited {
        /// The cluster and its database.
        on: Box<On>,
        /// The request.
        what: String,
        /// How long it retried, formatted (platform time).
        waited: String,
        /// Atlas's `errorCode`.
        error_code: String,
        /// Atlas's `detail`, cleaned.
        detail: String,
    },
    /// Any other refusal.
    #[error("{on}: {what} failed with {status} {error_code}: {detail} (hint: {hint})")]
    Api {
        /// The cluster and its database.
        on: Box<On>,
        /// The request.
        what: String,
        /// The HTTP status.
        status: u16,
        /// Atlas's `errorCode`.
        error_code: String,
        /// Atlas's `detail`, cleaned.
        detail: String,
        /// What to do.
        hint: String,
    },
    /// An answer that is not what the API documents.
    #[error(
        "{on}: {what} answered something unreadable: {message} (hint: is databases.{}.atlas.url the Atlas Administration API?)", .on.database
    )]
    Body {
        /// The cluster and its database.
        on: Box<On>,
        /// The request.
        what: String,
        /// Why it could not be read.
        message: String,
    },
    /// The cluster cannot take the drill (shape or state).
    #[error("{on}: {problem} (hint: {hint}; nothing was changed)")]
    Unfit {
        /// The cluster and its database.
        on: Box<On>,
        /// What is wrong.
        problem: String,
        /// What to do.
        hint: String,
    },
    /// A wait ended at its deadline.
    #[error("{on}: {expected} was not reached within {within} (last: {last}) (hint: {hint})")]
    NotSettled {
        /// The cluster and its database.
        on: Box<On>,
        /// What was waited for.
        expected: String,
        /// The deadline, formatted.
        within: String,
        /// The last state seen.
        last: String,
        /// What to do.
        hint: String,
    },
}

impl AtlasError {
    /// Whether the action may be on its way but its effect was not seen by the deadline: the undo
    /// stays outstanding for a later attempt.
    #[must_use]
    pub fn is_settling(&self) -> bool {
        matches!(self, AtlasError::NotSettled { .. })
    }
}
