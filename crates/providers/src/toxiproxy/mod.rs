//! The Toxiproxy provider: a client for a real Toxiproxy 2.x server (or the embedded one) that
//! verifies every change by reading it back.
//!
//! | file | what |
//! | --- | --- |
//! | `config.rs` | the platform's server ([`client_for`]) and its [`link`]s, resolved at use |
//! | `client.rs` | [`ToxiproxyClient`]: proxies and toxics, each change read back |
//! | `spec.rs` | [`ToxicSpec`]: the toxics a drill can add, validated |
//! | `undo.rs` | [`ToxiproxyUndo`] and its `apply` |
//! | `preflight.rs` | the server answers, the links' proxies exist; [`setup_link`] |
//! | `error.rs` | [`Error`] |

mod client;
mod config;
mod error;
mod preflight;
mod spec;
mod undo;

pub use client::{ProxyState, Toxic, ToxiproxyClient};
pub use config::{client_for, link};
pub use error::Error;
pub use preflight::{preflight_link, preflight_server, setup_link};
pub use spec::{Stream, ToxicKind, ToxicSpec};
pub use undo::{Action, ToxiproxyUndo};
