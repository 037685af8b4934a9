//! Applying undos, whoever asks: the end of a scenario, a signal, or `firedrill recover`.

use crate::drill::clock::Clock;
use crate::drill::ledger::Undo;
use crate::platform::Platform;
use crate::providers::command::{self, CommandError};

/// An undo that did not complete; the fault may still be in place.
#[derive(Debug, thiserror::Error)]
pub enum UndoError {
    /// The command that undoes it failed.
    #[error(transparent)]
    Command(#[from] CommandError),
}

/// Applies one undo against `platform`. Undos are idempotent: running one twice is harmless.
///
/// # Errors
///
/// [`UndoError`] naming the object that may still be faulted.
pub async fn apply(undo: &Undo, platform: &Platform, clock: &Clock) -> Result<(), UndoError> {
    match undo {
        Undo::Command(undo) => {
            let (cmd, substitutions) = undo.command.resolve(platform)?;
            command::run(&undo.command.describe(), cmd, &substitutions, &platform.base_dir(), clock).await?;
            Ok(())
        }
    }
}
