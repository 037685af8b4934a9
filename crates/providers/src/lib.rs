//! One folder per real system firedrill drives or observes (command, http, toxiproxy, mongo,
//! kube, prometheus) — its configuration as the platform
//! file gives it, what it does, how each of its faults is undone, and what preflight asks of it —
//! plus the [`Undo`] of every provider as the ledger stores it, and [`preflight`] over all of
//! them. No provider knows the embedded platform: against it they run the code a real estate
//! runs.

pub mod atlas;
pub mod command;
mod error_chain;
pub mod halt;
#[cfg(test)]
mod hints;
pub mod http;
pub mod kube;
pub mod mongo;
pub mod poll;
pub mod preflight;
pub mod prometheus;
pub mod toxiproxy;
pub mod undo;

pub use undo::{Undo, UndoError};
