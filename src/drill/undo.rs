//! Applying undos, whoever asks: the end of a scenario, a signal, or `firedrill recover`.

use crate::drill::clock::Clock;
use crate::drill::ledger::Undo;
use crate::platform::Platform;
use crate::providers::command::{self, CommandError, Settle};
use crate::providers::http;

/// An undo that did not complete; the fault may still be in place.
#[derive(Debug, thiserror::Error)]
pub enum UndoError {
    /// The command that undoes it failed.
    #[error(transparent)]
    Command(#[from] CommandError),
    /// Toxiproxy did not take the change back.
    #[error(transparent)]
    Toxiproxy(#[from] crate::providers::toxiproxy::Error),
    /// The Kubernetes undo failed.
    #[error(transparent)]
    Kube(#[from] crate::providers::kube::KubeError),
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
    Mongo(#[from] crate::providers::mongo::MongoError),
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
        use crate::providers::kube::KubeError;
        use crate::providers::mongo::MongoError;
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
        within: crate::drill::clock::format_duration(within),
        last,
    })
}
