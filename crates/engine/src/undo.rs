//! What the engine asks of an undo: to say what it does, and to do it.
//!
//! The engine never knows which system a fault was injected into. Whoever injects (a provider,
//! through a step) hands the engine a value of its own undo type: the ledger writes it as JSON
//! before the fault acts and reads it back for `recover`, and the run loop applies it however the
//! run ends.

use std::fmt;

use firedrill_core::clock::Clock;
use firedrill_platform::Platform;
use futures::future::BoxFuture;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Why an undo did not complete; the fault may still be in place. Its message names the object.
pub type UndoError = Box<dyn std::error::Error + Send + Sync>;

/// How to take one fault back.
pub trait Undo: Clone + fmt::Debug + Serialize + DeserializeOwned + Send + Sync + 'static {
    /// One line for plans, logs and reports.
    fn describe(&self) -> String;

    /// Takes the fault back on `platform`, and waits (with a deadline, in `clock`'s platform
    /// time) until that is seen. Undos are idempotent: applying one twice is harmless.
    ///
    /// # Errors
    ///
    /// [`UndoError`] naming the object that may still be faulted.
    fn apply<'a>(
        &'a self,
        platform: &'a Platform,
        clock: &'a Clock,
    ) -> BoxFuture<'a, Result<(), UndoError>>;
}

/// An undo for the engine's own tests: it records nothing and always succeeds, unless its
/// fault's name starts with `fail`.
#[cfg(test)]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub(crate) struct Marker {
    /// The fault it undoes.
    pub fault: String,
}

#[cfg(test)]
impl Undo for Marker {
    fn describe(&self) -> String {
        format!("remove marker {}", self.fault)
    }

    fn apply<'a>(&'a self, _: &'a Platform, _: &'a Clock) -> BoxFuture<'a, Result<(), UndoError>> {
        Box::pin(async move {
            if self.fault.starts_with("fail") {
                Err(format!("marker {} stays", self.fault).into())
            } else {
                Ok(())
            }
        })
    }
}
