//! Every provider's undo, as the ledger stores it, and applying them whoever asks: the end of a
//! scenario, a signal, or `firedrill recover`.

use firedrill_core::clock::Clock;
use firedrill_platform::Platform;
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};

use crate::command::{self, CommandError, CommandUndo, Settle};
use crate::http;
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
    /// The command that undoes it failed.
    #[error(transparent)]
    Command(#[from] CommandError),
    /// Toxiproxy did not take the change back.
    #[error(transparent)]
    Toxiproxy(#[from] crate::toxiproxy::Error),
    /// The Kubernetes undo failed.
    #[error(transparent)]
    Kube(#[from] crate::kube::KubeError),
    /// The command ran but the system did not settle back.
    #[error(
        "{what} ran, but {expected} was not observed within {within} (last: {last}) (hint: check the system by hand, then run `firedrill recover`)"
    )]
    NotSettled {
        /// The undo.
        what: String,
        /// What was expected.
        expected: String,
        /// The deadline, formatted.
        within: String,
        /// The last observation.
        last: String,
    },
    /// A MongoDB undo failed.
    #[error(transparent)]
    Mongo(#[from] crate::mongo::MongoError),
    /// The settle check cannot run on this platform.
    #[error(
        "{what}: the platform has no traffic probe to confirm the undo (hint: define traffic.probe)"
    )]
    NoProbe {
        /// The undo.
        what: String,
    },
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
            UndoError::NotSettled { .. }
                | UndoError::Kube(
                    KubeError::NotReplaced { .. }
                        | KubeError::NotReady { .. }
                        | KubeError::NotRolledOut { .. }
                )
                | UndoError::Mongo(MongoError::NotMoved { .. } | MongoError::NotBack { .. })
        )
    }
}

/// Applies one undo against `platform` and waits, with a deadline, until its effect is seen
/// (a drill's own undo and `firedrill recover` both come here, so both mean the same by
/// "undone"). Undos are idempotent: running one twice is harmless.
///
/// # Errors
///
/// [`UndoError`] naming the object that may still be faulted.
pub async fn apply(undo: &Undo, platform: &Platform, clock: &Clock) -> Result<(), UndoError> {
    match undo {
        Undo::Mongo(undo) => Ok(undo.apply(platform, clock).await?),
        Undo::Toxiproxy(undo) => Ok(undo.apply(platform).await?),
        Undo::Kube(undo) => Ok(undo.apply(platform).await?),
        Undo::Command(undo) => {
            let (cmd, substitutions) = undo.command.resolve(platform)?;
            command::run(
                &undo.command.describe(),
                cmd,
                &substitutions,
                &platform.base_dir(),
                clock,
            )
            .await?;
            match &undo.settle {
                None => Ok(()),
                Some(Settle::TrafficServedFrom { region }) => {
                    traffic_served_from(
                        &undo.command.describe(),
                        region,
                        cmd.timeout,
                        platform,
                        clock,
                    )
                    .await
                }
            }
        }
    }
}

/// Probes until the traffic probe answers from `region`, at the probe's interval, within
/// `within` (platform time).
async fn traffic_served_from(
    what: &str,
    region: &str,
    within: std::time::Duration,
    platform: &Platform,
    clock: &Clock,
) -> Result<(), UndoError> {
    let probe = platform
        .traffic
        .as_ref()
        .and_then(|t| platform.probes.get(&t.probe))
        .ok_or_else(|| UndoError::NoProbe {
            what: what.to_owned(),
        })?;
    let client = http::client().map_err(|_| UndoError::NoProbe {
        what: what.to_owned(),
    })?;
    let deadline = clock.now().plus(within);
    let mut ticks = clock.interval(probe.interval);
    let mut last = String::from("no answer yet");
    while clock.now() < deadline {
        ticks.tick().await;
        let obs = http::observe(&client, probe, clock).await;
        if obs.good && obs.region.as_deref() == Some(region) {
            return Ok(());
        }
        last = format!(
            "{} from {}",
            obs.status
                .map_or_else(|| obs.error.unwrap_or_default(), |s| s.to_string()),
            obs.region.unwrap_or_else(|| "no region".into())
        );
    }
    Err(UndoError::NotSettled {
        what: what.to_owned(),
        expected: format!("traffic served from \"{region}\""),
        within: firedrill_core::clock::format_duration(within),
        last,
    })
}
