//! Errors of the Toxiproxy provider. Every variant names the Toxiproxy URL and the proxy or
//! toxic involved, and most end with a hint for the operator.

/// What can go wrong talking to Toxiproxy.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The platform has no `toxiproxy` section, so a link cannot be resolved.
    #[error(
        "link \"{link}\" needs a Toxiproxy, but the platform has no `toxiproxy` section (hint: add toxiproxy.url and the link under toxiproxy.links)"
    )]
    NotConfigured {
        /// The link.
        link: String,
    },
    /// The base URL does not parse.
    #[error("invalid Toxiproxy URL {url:?}: {reason} (hint: write it like http://127.0.0.1:8474)")]
    InvalidUrl {
        /// The URL as given.
        url: String,
        /// Why it is invalid.
        reason: String,
    },
    /// No answer at all: connection refused, timeout, name resolution.
    #[error(
        "Toxiproxy at {url} is unreachable while trying to {action}: {detail} (hint: is toxiproxy-server running there, and is the address in the platform file right?)"
    )]
    Unreachable {
        /// The Toxiproxy base URL.
        url: String,
        /// What the client was doing.
        action: String,
        /// The transport error.
        detail: String,
    },
    /// The proxy does not exist.
    #[error(
        "proxy {proxy:?} does not exist on Toxiproxy at {url} (hint: check the proxy name in the platform file against GET {url}/proxies)"
    )]
    ProxyNotFound {
        /// The Toxiproxy base URL.
        url: String,
        /// The proxy name.
        proxy: String,
    },
    /// Creating a proxy whose name is taken (HTTP 409).
    #[error(
        "proxy {proxy:?} already exists on Toxiproxy at {url} (hint: use another name, or use the existing proxy)"
    )]
    ProxyAlreadyExists {
        /// The Toxiproxy base URL.
        url: String,
        /// The proxy name.
        proxy: String,
    },
    /// Adding a toxic whose name is taken on that proxy (HTTP 409).
    #[error(
        "toxic {toxic:?} already exists on proxy {proxy:?} at {url} (hint: toxic names are unique per proxy; a leftover from an interrupted drill is removed by `firedrill recover`)"
    )]
    ToxicAlreadyExists {
        /// The Toxiproxy base URL.
        url: String,
        /// The proxy name.
        proxy: String,
        /// The toxic name.
        toxic: String,
    },
    /// Updating a toxic that does not exist.
    #[error(
        "toxic {toxic:?} does not exist on proxy {proxy:?} at {url} (hint: list them with GET {url}/proxies/{proxy}/toxics)"
    )]
    ToxicNotFound {
        /// The Toxiproxy base URL.
        url: String,
        /// The proxy name.
        proxy: String,
        /// The toxic name.
        toxic: String,
    },
    /// Toxiproxy answered with an error status (400, 500, …).
    #[error(
        "Toxiproxy at {url} refused to {action}: HTTP {status}: {message} (hint: its message says why; compare the proxy and toxic with GET {url}/proxies)"
    )]
    Rejected {
        /// The Toxiproxy base URL.
        url: String,
        /// What the client asked for.
        action: String,
        /// The HTTP status.
        status: u16,
        /// Toxiproxy's `error` text (or the body).
        message: String,
    },
    /// A toxic specification failed validation; nothing was sent.
    #[error("invalid toxic {toxic:?}: {attribute} = {value} ({hint})")]
    InvalidToxic {
        /// The toxic name.
        toxic: String,
        /// The offending attribute.
        attribute: &'static str,
        /// Its value.
        value: String,
        /// What would be acceptable.
        hint: String,
    },
    /// Reading the state back after a change showed the change did not take effect.
    #[error(
        "Toxiproxy at {url} did not apply {change} on proxy {proxy:?}: read back {observed} (hint: another client may be changing this proxy, or the server rejected the change silently)"
    )]
    NotApplied {
        /// The Toxiproxy base URL.
        url: String,
        /// The proxy name.
        proxy: String,
        /// The change, e.g. `toxic "latency-1" added`.
        change: String,
        /// What was read back instead.
        observed: String,
    },
    /// An answer that is not what the Toxiproxy API documents.
    #[error(
        "unexpected answer from Toxiproxy at {url} to {action}: {detail} (hint: is this a Toxiproxy 2.x server?)"
    )]
    UnexpectedResponse {
        /// The Toxiproxy base URL.
        url: String,
        /// What the client asked for.
        action: String,
        /// What was wrong with the answer.
        detail: String,
    },
}
