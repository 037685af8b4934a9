//! What can go wrong asking Prometheus.

use firedrill_platform::SecretError;

/// A query or check that did not get an answer to judge.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The platform names no Prometheus.
    #[error(
        "the platform has no `prometheus` section (hint: add prometheus: {{ url: … }} to the platform file)"
    )]
    NotConfigured,
    /// The credentials cannot be read.
    #[error("cannot read the Prometheus credentials: {source}")]
    Secret {
        /// Why (its message ends with a hint).
        #[from]
        source: SecretError,
    },
    /// The HTTP client cannot be built.
    #[error("cannot build the Prometheus client: {0} (hint: a firedrill bug; report it)")]
    Client(String),
    /// No answer at all.
    #[error(
        "cannot reach Prometheus at {url}: {reason} (hint: check prometheus.url and that it is up)"
    )]
    Unreachable {
        /// Its base URL (never with credentials).
        url: String,
        /// Why, without credentials.
        reason: String,
    },
    /// `/-/ready` answered, but not ready.
    #[error(
        "Prometheus at {url} is not ready: HTTP {status}: {body} (hint: it may still be replaying its WAL; wait and retry)"
    )]
    NotReady {
        /// Its base URL.
        url: String,
        /// The status.
        status: u16,
        /// Its answer, scrubbed of credentials and cut short.
        body: String,
    },
    /// Authentication or authorization refused.
    #[error(
        "Prometheus at {url} refused firedrill: HTTP {status}: {body} (hint: check the credentials prometheus.auth names)"
    )]
    Refused {
        /// Its base URL.
        url: String,
        /// 401 or 403.
        status: u16,
        /// Its answer, scrubbed of credentials and cut short.
        body: String,
    },
    /// Prometheus answered the query with an error (a syntax error is `bad_data`).
    #[error(
        "Prometheus at {url} refused the query `{query}`: {error_type}: {error} (hint: try the query in the Prometheus UI; a parse error names the column)"
    )]
    Query {
        /// Its base URL.
        url: String,
        /// The query, clipped.
        query: String,
        /// `bad_data`, `timeout`, `execution`…
        error_type: String,
        /// Its message, scrubbed and cut short.
        error: String,
    },
    /// The answer is not what the API documents.
    #[error(
        "Prometheus at {url} answered the query `{query}` with something that is not an API answer: {reason} (hint: is prometheus.url the server's base URL, not a path under it?)"
    )]
    Answer {
        /// Its base URL.
        url: String,
        /// The query, clipped.
        query: String,
        /// What was wrong.
        reason: String,
    },
}
