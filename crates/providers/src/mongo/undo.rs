//! How a MongoDB action is taken back, as the ledger stores it: by database name, so
//! `firedrill recover` reads the connection string from the platform again.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{MongoError, SavedConfig, Target, kill};
use firedrill_core::clock::Clock;
use firedrill_platform::Platform;

/// How to take back a MongoDB action; stored in the ledger by database name, so `recover`
/// reads the URI from the platform again.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "kebab-case")]
pub enum MongoUndo {
    /// `replSetFreeze 0` on a member (a freeze, or the step-down's ineligibility period).
    Unfreeze {
        /// The database.
        database: String,
        /// The member.
        host: String,
    },
    /// Run the platform's restart command for a member killed with `shutdown`, then wait until
    /// it answers.
    RestartByCommand {
        /// The database.
        database: String,
        /// The member.
        host: String,
        /// The command (a key of `commands`).
        command: String,
    },
    /// Wait until the StatefulSet has re-created the deleted pod of a member and it is Ready.
    PodBack {
        /// The database.
        database: String,
        /// The member.
        host: String,
        /// The kube context.
        context: String,
        /// The pod's namespace.
        namespace: String,
        /// The pod.
        pod: String,
        /// The uid of the deleted pod, to tell the re-created one from it.
        deleted_uid: String,
    },
    /// Put the saved priorities back (at a new config version).
    RestoreConfig {
        /// The database.
        database: String,
        /// The config before the flip.
        saved: SavedConfig,
    },
}

impl Eq for MongoUndo {}

impl MongoUndo {
    /// One line for plans and reports.
    #[must_use]
    pub fn describe(&self) -> String {
        match self {
            MongoUndo::Unfreeze { database, host } => {
                format!("replSetFreeze 0 on {host} of database {database}")
            }
            MongoUndo::RestartByCommand {
                database,
                host,
                command,
            } => format!(
                "run command \"{command}\" to restart member {host} of database {database}, then wait until it answers"
            ),
            MongoUndo::PodBack {
                database,
                host,
                context,
                namespace,
                pod,
                ..
            } => format!(
                "wait until pod {namespace}/{pod} (member {host} of database {database}, context \"{context}\") is re-created and Ready"
            ),
            MongoUndo::RestoreConfig { database, saved } => format!(
                "restore the priorities of database {database} as of config version {} ({})",
                saved.version,
                saved
                    .priorities
                    .iter()
                    .map(|(h, p)| format!("{h}={p}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }

    /// Applies the undo. Idempotent. Restoring a config waits (2m platform) until the primary
    /// is back in the region of the member with the highest saved priority.
    ///
    /// # Errors
    ///
    /// [`MongoError`] naming the database and member.
    pub async fn apply(&self, platform: &Platform, clock: &Clock) -> Result<(), MongoError> {
        match self {
            MongoUndo::Unfreeze { database, host } => {
                let target = Target::resolve(platform, database)?;
                match target.freeze(host, 0).await {
                    // A primary cannot be frozen or unfrozen; nothing to undo then.
                    Ok(()) | Err(MongoError::Command { .. }) => Ok(()),
                    Err(e) => Err(e),
                }
            }
            MongoUndo::RestartByCommand {
                database,
                host,
                command,
            } => kill::restart_by_command(platform, database, host, command, clock).await,
            MongoUndo::PodBack {
                database,
                host,
                context,
                namespace,
                pod,
                deleted_uid,
            } => {
                kill::wait_pod_back(
                    platform,
                    database,
                    host,
                    (context, namespace, pod),
                    deleted_uid,
                    clock,
                )
                .await
            }
            MongoUndo::RestoreConfig { database, saved } => {
                let target = Target::resolve(platform, database)?;
                let current = target.priorities().await?;
                let wanted: BTreeMap<String, f64> = saved.priorities.iter().cloned().collect();
                let same = current
                    .priorities
                    .iter()
                    .all(|(h, p)| wanted.get(h).is_none_or(|w| (w - p).abs() < f64::EPSILON));
                if !same {
                    target.set_priorities(&wanted).await?;
                }
                let members = target.members().await?;
                let home = saved
                    .priorities
                    .iter()
                    .max_by(|a, b| a.1.total_cmp(&b.1))
                    .and_then(|(h, _)| target.region_in(&members, h));
                if let Some(home) = home {
                    target
                        .wait_primary_in(&members, &home, Duration::from_secs(120), clock)
                        .await?;
                }
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn undos_round_trip_through_json() {
        let undo = MongoUndo::RestoreConfig {
            database: "prod-1".into(),
            saved: SavedConfig {
                version: 3,
                priorities: vec![("h:1".into(), 2.0), ("h:2".into(), 0.5)],
            },
        };
        let json = serde_json::to_string(&undo).expect("json");
        assert_eq!(
            serde_json::from_str::<MongoUndo>(&json).expect("back"),
            undo
        );
    }
}
