//! Every provider's undo, as the ledger stores it, and applying them whoever asks: the end of a
//! scenario, a signal, or `firedrill recover`.

use firedrill_core::clock::Clock;
use firedrill_platform::Platform;
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};

use crate::command::{CommandError, CommandUndo};
use crate::toxiproxy::ToxiproxyUndo;

/// How to take one fault back. Each variant belongs to the provider that injects it; the
/// ledger stores it as JSON tagged by `provider` (a format `recover` of later releases reads).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "provider", rename_all = "kebab-case")]
pub enum Undo {
    /// Run a command from the platform file (a fault's undo, a traffic switch back).
    Command(CommandUndo),
    /// A MongoDB action (unfreeze, restart, restore the saved priorities).
    Mongo(crate::mongo::MongoUndo),
    /// Remove a toxic or re-enable a proxy on the platform's Toxiproxy.
    Toxiproxy(ToxiproxyUndo),
    /// Take a Kubernetes fault back (untaint, uncordon, scale back), by object reference.
    Kube(crate::kube::KubeUndo),
    /// End an Atlas outage simulation, restore Atlas region priorities, or wait out a test
    /// failover.
    Atlas(crate::atlas::AtlasUndo),
}

impl Undo {
    /// One line for plans, logs and reports.
    #[must_use]
    pub fn describe(&self) -> String {
        match self {
            Undo::Command(undo) => undo.describe(),
            Undo::Mongo(undo) => undo.describe(),
            Undo::Toxiproxy(undo) => undo.describe(),
            Undo::Kube(undo) => undo.describe(),
            Undo::Atlas(undo) => undo.describe(),
        }
    }
}

impl firedrill_engine::undo::Undo for Undo {
    fn describe(&self) -> String {
        Undo::describe(self)
    }

    fn apply<'a>(
        &'a self,
        platform: &'a Platform,
        clock: &'a Clock,
    ) -> BoxFuture<'a, Result<(), firedrill_engine::undo::UndoError>> {
        Box::pin(async move { apply(self, platform, clock).await.map_err(Into::into) })
    }
}

/// An undo that did not complete; the fault may still be in place.
#[derive(Debug, thiserror::Error)]
pub enum UndoError {
    /// The command that undoes it failed, or its effect was not seen.
    #[error(transparent)]
    Command(#[from] CommandError),
    /// Toxiproxy did not take the change back.
    #[error(transparent)]
    Toxiproxy(#[from] crate::toxiproxy::Error),
    /// The Kubernetes undo failed.
    #[error(transparent)]
    Kube(#[from] crate::kube::KubeError),
    /// The Atlas undo failed or did not settle.
    #[error(transparent)]
    Atlas(#[from] crate::atlas::undo::UndoFailure),
    /// A MongoDB undo failed.
    #[error(transparent)]
    Mongo(#[from] crate::mongo::MongoError),
}

impl UndoError {
    /// Whether the undo acted but its observable effect was not seen by its deadline (pods not
    /// Ready again, traffic not back, the primary not home): the fault may be on its way out,
    /// and the undo stays outstanding until a later attempt sees the effect.
    #[must_use]
    pub fn is_settling(&self) -> bool {
        use crate::kube::KubeError;
        use crate::mongo::MongoError;
        matches!(
            self,
            UndoError::Command(CommandError::NotSettled { .. })
                | UndoError::Kube(
                    KubeError::NotReplaced { .. }
                        | KubeError::NotReady { .. }
                        | KubeError::NotRolledOut { .. }
                )
                | UndoError::Mongo(MongoError::NotMoved { .. } | MongoError::NotBack { .. })
        ) || matches!(self, UndoError::Atlas(e) if e.is_settling())
    }
}

/// Applies one undo against `platform` and waits, with a deadline, until its effect is seen
/// (a drill's own undo and `firedrill recover` both come here, so both mean the same by
/// "undone"). Undos are idempotent: running one twice is harmless. Each provider's `undo.rs`
/// says how.
///
/// # Errors
///
/// [`UndoError`] naming the object that may still be faulted.
pub async fn apply(undo: &Undo, platform: &Platform, clock: &Clock) -> Result<(), UndoError> {
    match undo {
        Undo::Mongo(undo) => Ok(undo.apply(platform, clock).await?),
        Undo::Toxiproxy(undo) => Ok(undo.apply(platform).await?),
        Undo::Kube(undo) => Ok(undo.apply(platform).await?),
        Undo::Atlas(undo) => Ok(undo.apply(platform, clock).await?),
        Undo::Command(undo) => Ok(undo.apply(platform, clock).await?),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_undo_whose_effect_was_not_seen_is_settling_and_a_failed_one_is_not() {
        let not_settled = UndoError::from(CommandError::NotSettled {
            what: "the traffic switch to \"us-west1\"".into(),
            expected: "traffic served from \"us-west1\"".into(),
            within: "5m".into(),
            last: "503 from us-west2".into(),
        });
        assert!(not_settled.is_settling(), "{not_settled}");
        let unknown = UndoError::from(CommandError::Unknown {
            what: "command \"switch\"".into(),
        });
        assert!(!unknown.is_settling(), "{unknown}");
    }
}
