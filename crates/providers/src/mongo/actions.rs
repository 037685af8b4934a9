//! What drills do to a replica set (step-down, freeze, shutdown, a priority flip that moves
//! the primary to another region) and the wait that sees the primary arrive. "How to make it
//! happen" only: the [`observer`](super::observer) sees it happen.

use std::collections::BTreeMap;
use std::time::Duration;

use bson::{Bson, doc};
use serde::{Deserialize, Serialize};

use super::client::{config_members, config_version};
use super::{Member, MongoError, Target};
use firedrill_core::clock::Clock;

impl Target {
    /// `replSetStepDown` on `primary` (from [`Target::primary`]).
    ///
    /// # Errors
    ///
    /// [`MongoError`] when it is not primary any more or refuses.
    pub async fn step_down(
        &self,
        primary: &str,
        step_down_secs: u64,
        catch_up_secs: u64,
    ) -> Result<(), MongoError> {
        match self
            .command(
                primary,
                "replSetStepDown",
                doc! {"replSetStepDown": step_down_secs as i64, "secondaryCatchUpPeriodSecs": catch_up_secs as i64},
            )
            .await
        {
            // A member may close connections as it steps down; that is success.
            Ok(_) | Err(MongoError::Unreachable { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// `replSetFreeze` on `host` (0 unfreezes).
    ///
    /// # Errors
    ///
    /// [`MongoError`] when it refuses (a primary cannot be frozen) or is unreachable.
    pub async fn freeze(&self, host: &str, secs: u64) -> Result<(), MongoError> {
        self.command(host, "replSetFreeze", doc! {"replSetFreeze": secs as i64})
            .await
            .map(|_| ())
    }

    /// `shutdown` (forced) on `host`; the closed connection is the expected answer.
    ///
    /// # Errors
    ///
    /// [`MongoError::Command`] when the member refuses.
    pub async fn shutdown(&self, host: &str) -> Result<(), MongoError> {
        match self
            .command(host, "shutdown", doc! {"shutdown": 1, "force": true})
            .await
        {
            Ok(_) | Err(MongoError::Unreachable { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// The members' priorities and the config version, for the ledger before a flip.
    ///
    /// # Errors
    ///
    /// As [`Target::config`].
    pub async fn priorities(&self) -> Result<SavedConfig, MongoError> {
        let config = self.config().await?;
        Ok(SavedConfig {
            version: config_version(&config),
            priorities: config_members(&config)
                .into_iter()
                .map(|(host, priority, _)| (host, priority))
                .collect(),
        })
    }

    /// Reconfigures with new priorities (`host` → priority; others unchanged) at the current
    /// version + 1.
    ///
    /// # Errors
    ///
    /// [`MongoError::Command`] when the reconfig is rejected (nothing changes then).
    pub async fn set_priorities(
        &self,
        priorities: &BTreeMap<String, f64>,
    ) -> Result<(), MongoError> {
        let primary = self.primary().await?;
        let reply = self
            .command(&primary, "replSetGetConfig", doc! {"replSetGetConfig": 1})
            .await?;
        let mut config = reply.get_document("config").cloned().unwrap_or_default();
        let version = config_version(&config);
        let members: Vec<Bson> = config
            .get_array("members")
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .map(|m| match m {
                Bson::Document(mut m) => {
                    let host = m.get_str("host").unwrap_or_default().to_owned();
                    if let Some(p) = priorities.get(&host) {
                        m.insert("priority", *p);
                    }
                    Bson::Document(m)
                }
                other => other,
            })
            .collect();
        config.insert("members", members);
        config.insert("version", version + 1);
        self.command(
            &primary,
            "replSetReconfig",
            doc! {"replSetReconfig": config},
        )
        .await
        .map(|_| ())
    }

    /// The priorities that move the primary to `region`: its members above every other.
    ///
    /// # Errors
    ///
    /// [`MongoError::NoMemberInRegion`].
    pub fn flip_priorities(
        &self,
        members: &[Member],
        saved: &SavedConfig,
        region: &str,
    ) -> Result<BTreeMap<String, f64>, MongoError> {
        let top = saved
            .priorities
            .iter()
            .map(|(_, p)| *p)
            .fold(1.0_f64, f64::max);
        let mut out = BTreeMap::new();
        let mut any = false;
        for (host, priority) in &saved.priorities {
            let in_region = self.region_in(members, host).as_deref() == Some(region);
            if *priority <= 0.0 {
                continue; // non-electable members stay so
            }
            if in_region {
                any = true;
                out.insert(host.clone(), (top + 1.0).min(1000.0));
            } else {
                // Lowered but still electable, so losing the region elects someone.
                out.insert(host.clone(), (priority / 2.0).max(0.5));
            }
        }
        if !any {
            return Err(MongoError::NoMemberInRegion {
                database: self.database.clone(),
                region: region.to_owned(),
                members: members
                    .iter()
                    .map(|m| {
                        format!(
                            "{} in {}",
                            m.host,
                            m.region.as_deref().unwrap_or("no region")
                        )
                    })
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
        Ok(out)
    }

    /// Waits until the primary is a member of `region`, within `within` platform time.
    ///
    /// # Errors
    ///
    /// [`MongoError::NotMoved`].
    pub async fn wait_primary_in(
        &self,
        members: &[Member],
        region: &str,
        within: Duration,
        clock: &Clock,
    ) -> Result<String, MongoError> {
        crate::poll::until(clock, Duration::from_millis(500), within, || async {
            match self.primary().await {
                Ok(p) if self.region_in(members, &p).as_deref() == Some(region) => Ok(p),
                Ok(p) => Err(Some(p)),
                Err(_) => Err(None),
            }
        })
        .await
        .map_err(|last| MongoError::NotMoved {
            database: self.database.clone(),
            region: region.to_owned(),
            within: firedrill_core::clock::format_duration(within),
            last: last.unwrap_or_else(|| "none".to_owned()),
        })
    }
}

/// The members' priorities and config version saved before a flip.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SavedConfig {
    /// The config version before the change.
    pub version: i64,
    /// `host:port` → priority before the change.
    pub priorities: Vec<(String, f64)>,
}
