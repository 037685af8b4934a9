//! The `prometheus` provider: instant and range queries over the HTTP API of the Prometheus
//! the platform names, for guards and SLO assertions. It observes and never changes anything,
//! so it has no undo.
//!
//! Credentials (a bearer token, or basic auth's password) come from the environment or a file
//! and are only ever in the request's `Authorization` header: every error scrubs them (and
//! anything that looks like one) from what Prometheus or a proxy answered before showing it.

mod config;
mod error;
mod preflight;
mod provider;

pub use config::Config;
pub use error::Error;
pub use preflight::{preflight, preflight_query};
pub use provider::{Client, Sample, Series};
