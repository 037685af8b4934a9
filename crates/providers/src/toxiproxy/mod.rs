//! The Toxiproxy provider: a client for a real Toxiproxy 2.x server (or the embedded one) that
//! verifies every change by reading it back.

mod client;
mod error;
mod spec;
mod undo;

pub use client::{ProxyState, Toxic, ToxiproxyClient};
pub use error::Error;
pub use spec::{Stream, ToxicKind, ToxicSpec};
pub use undo::{Action, ToxiproxyUndo};
