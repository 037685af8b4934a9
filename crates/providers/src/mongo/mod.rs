//! MongoDB replica sets through the `mongodb` driver: connecting from the platform file (the
//! URI is a [`Secret`](firedrill_platform::Secret) and never printed), preflight, the actions
//! drills take (step-down, freeze, kill, a priority flip to another region) with their undos,
//! the topology [`observer`] and the [`checker`] that measures lost writes.
//!
//! Every error that could carry the connection string goes through [`Redactor`], so neither the
//! URI nor its password reaches a log, a report or the terminal.
//!
//! | file | what |
//! | --- | --- |
//! | `config.rs` | [`Target`]: the database a step names, resolved from the platform, its URI read from its secret |
//! | `client.rs` | driver clients, admin commands with a deadline, `hello`, the replica set config |
//! | `actions.rs` | step-down, freeze, shutdown, the priority flip and the wait for the primary to move |
//! | [`kill`] | killing a member and bringing it back, the way the platform reaches it |
//! | `undo.rs` | [`MongoUndo`] and its `apply` |
//! | `preflight.rs` | [`preflight`] and [`preflight_kill`] |
//! | `error.rs` | [`MongoError`], and [`describe`] for a driver error |
//! | `redact.rs` | [`Redactor`] |
//! | [`observer`], [`checker`] | seeing elections happen, and proving no acknowledged write was lost |

mod actions;
pub mod checker;
mod client;
mod config;
mod error;
pub mod kill;
pub mod observer;
mod preflight;
mod redact;
mod undo;

pub use actions::SavedConfig;
pub use client::{Hello, Member};
pub use config::{Target, database_of};
pub use error::{MongoError, describe};
pub use preflight::{preflight, preflight_kill};
pub use redact::Redactor;
pub use undo::MongoUndo;
