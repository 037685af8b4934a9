//! The `command` provider: runs a process (a Terraform apply that switches traffic, a script
//! that breaks something) with a deadline, its output captured for the report, a milestone at
//! exit. Commands come from the platform file and are run without a shell.
//!
//! | file | what |
//! | --- | --- |
//! | `config.rs` | [`CommandRef`]: which platform command, resolved; the [`argv`] it runs with |
//! | `run.rs` | [`run`]: the process, its deadline and its output |
//! | `undo.rs` | [`CommandUndo`] and its [`Settle`] check |
//! | `preflight.rs` | [`preflight`]: the programs can be found |
//! | `error.rs` | [`CommandError`] |

mod config;
mod error;
mod preflight;
mod run;
mod undo;

pub use config::{CommandRef, Substitutions, argv};
pub use error::CommandError;
pub use firedrill_core::observed::Finished;
pub use preflight::{locate_program, preflight};
pub use run::run;
pub use undo::{CommandUndo, Settle};
