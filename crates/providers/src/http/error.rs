//! [`HttpError`]: a probe's endpoint that cannot be reached, named with its URL, with a hint.

/// A probe that cannot do its job.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// No HTTP answer at all from the probe's URL (any answer, even a 503, would do).
    #[error(
        "probe \"{probe}\" cannot reach {url}: {message} (hint: is the service up and the URL right? Nothing was injected)"
    )]
    Unreachable {
        /// The probe's name in the platform file.
        probe: String,
        /// Its URL.
        url: String,
        /// Why: refused, timed out, a TLS failure.
        message: String,
    },
}
