//! How each Atlas action is taken back. The ledger keeps the database's name (never a
//! credential: `recover` reads them from the platform again) and, for a priority change, the
//! replication specs as they were.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use firedrill_core::clock::Clock;
use firedrill_platform::Platform;

use super::actions::{COMPLETE, restore_priorities, same_priorities, top_region};
use super::client::Client;
use super::config::Settings;
use super::error::AtlasError;
use crate::mongo::Target;

/// How long an undo waits, once Atlas says the cluster is whole, for the primary to be back in
/// its highest-priority region (platform time): an election, then a priority takeover.
pub const PRIMARY_HOME_WITHIN: Duration = Duration::from_secs(3 * 60);

/// An Atlas action's undo.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "kebab-case")]
pub enum AtlasUndo {
    /// End the outage simulation, wait until Atlas says COMPLETE, then until the primary is back
    /// in the cluster's highest-priority region.
    EndOutageSimulation {
        /// The database.
        database: String,
        /// The Atlas regions it cut.
        regions: Vec<String>,
    },
    /// Put the region priorities back as they were (on the cluster's current specs), wait until
    /// the cluster is IDLE and the primary is home.
    RestorePriorities {
        /// The database.
        database: String,
        /// `replicationSpecs` before the change.
        replication_specs: Value,
    },
    /// After a test failover: wait until the cluster is IDLE again (Atlas brings the old primary
    /// back as a secondary) and the primary is home.
    AwaitRecovered {
        /// The database.
        database: String,
    },
}

impl AtlasUndo {
    /// One line for plans and reports.
    #[must_use]
    pub fn describe(&self) -> String {
        match self {
            AtlasUndo::EndOutageSimulation { database, regions } => format!(
                "end the Atlas outage simulation of {} on database {database} and wait for COMPLETE and the primary back home",
                regions.join(", ")
            ),
            AtlasUndo::RestorePriorities {
                database,
                replication_specs,
            } => format!(
                "restore the Atlas region priorities of database {database} (primary region {}) and wait for IDLE",
                top_region(replication_specs).unwrap_or_else(|| "unknown".into())
            ),
            AtlasUndo::AwaitRecovered { database } => format!(
                "wait until the Atlas cluster of database {database} is IDLE with its primary home after the test failover"
            ),
        }
    }

    /// The database it belongs to.
    #[must_use]
    pub fn database(&self) -> &str {
        match self {
            AtlasUndo::EndOutageSimulation { database, .. }
            | AtlasUndo::RestorePriorities { database, .. }
            | AtlasUndo::AwaitRecovered { database } => database,
        }
    }

    /// Applies the undo and waits, with deadlines, for its effect. Idempotent.
    ///
    /// # Errors
    ///
    /// [`AtlasError`]; [`AtlasError::NotSettled`] (and the Mongo provider's `NotMoved`, as
    /// `Mongo`) when the effect was not seen in time.
    pub async fn apply(&self, platform: &Platform, clock: &Clock) -> Result<(), UndoFailure> {
        let settings = Settings::resolve(platform, self.database())?;
        let client = Client::new(settings.clone(), *clock)?;
        match self {
            AtlasUndo::EndOutageSimulation { .. } => {
                client.end_outage(settings.simulation_within).await?;
                client
                    .wait_outage(
                        "outage simulation COMPLETE",
                        settings.simulation_within,
                        |o| o.is_none_or(|o| o.state == COMPLETE),
                        |_, _| {},
                    )
                    .await?;
            }
            AtlasUndo::RestorePriorities {
                replication_specs, ..
            } => {
                let current = client.cluster().await?;
                if !same_priorities(&current.replication_specs, replication_specs) {
                    let restored =
                        restore_priorities(&current.replication_specs, replication_specs);
                    client.set_replication_specs(&restored).await?;
                }
            }
            AtlasUndo::AwaitRecovered { .. } => {}
        }
        let cluster = client.wait_idle(settings.update_within, |_, _| {}).await?;
        // The primary home, as the driver sees it: the undo is done when the clients are.
        let home = top_region(&cluster.replication_specs)
            .and_then(|atlas| settings.platform_region(&atlas).map(str::to_owned));
        if let Some(home) = home {
            let target = Target::resolve(platform, self.database())?;
            let members = target.members().await?;
            target
                .wait_primary_in(&members, &home, PRIMARY_HOME_WITHIN, clock)
                .await?;
        }
        Ok(())
    }
}

/// Why an Atlas undo did not complete.
#[derive(Debug, thiserror::Error)]
pub enum UndoFailure {
    /// Atlas refused or did not settle.
    #[error(transparent)]
    Atlas(#[from] AtlasError),
    /// The replica set did not show the primary home.
    #[error(transparent)]
    Mongo(#[from] crate::mongo::MongoError),
}

impl UndoFailure {
    /// Whether the undo acted but its effect was not seen by its deadline.
    #[must_use]
    pub fn is_settling(&self) -> bool {
        match self {
            UndoFailure::Atlas(e) => e.is_settling(),
            UndoFailure::Mongo(e) => matches!(e, crate::mongo::MongoError::NotMoved { .. }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn undos_round_trip_through_json_and_name_what_they_restore() {
        let undo = AtlasUndo::RestorePriorities {
            database: "prod-1".into(),
            replication_specs: serde_json::json!([{ "regionConfigs": [
                { "providerName": "GCP", "regionName": "WESTERN_US", "priority": 7, "electableSpecs": { "nodeCount": 2 } }
            ]}]),
        };
        let json = serde_json::to_string(&undo).expect("json");
        assert!(json.contains("\"action\":\"restore-priorities\""), "{json}");
        assert_eq!(
            serde_json::from_str::<AtlasUndo>(&json).expect("back"),
            undo
        );
        assert!(
            undo.describe().contains("primary region WESTERN_US"),
            "{}",
            undo.describe()
        );
    }
}
