//! [`CommandUndo`]: the ledger's record of an undo that runs a platform command, the
//! observation that confirms it took effect ([`Settle`]), and applying it.

use serde::{Deserialize, Serialize};

use super::{CommandError, CommandRef, run};
use crate::http;
use firedrill_core::clock::{Clock, format_duration};
use firedrill_platform::Platform;

/// The ledger's record of an undo that runs a command.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandUndo {
    /// Which command.
    pub command: CommandRef,
    /// Its arguments as they were when the fault was injected (for people reading the ledger).
    pub run: Vec<String>,
    /// What must be observed before the undo counts as done (a command returning is not
    /// enough when the system converges after it, like a load balancer after a Terraform apply).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settle: Option<Settle>,
}

/// An observation that confirms an undo took effect.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Settle {
    /// The traffic probe gets a good answer from this region.
    TrafficServedFrom {
        /// The region.
        region: String,
    },
}

impl CommandUndo {
    /// One line for plans and reports.
    #[must_use]
    pub fn describe(&self) -> String {
        let settle = match &self.settle {
            Some(Settle::TrafficServedFrom { region }) => {
                format!(", then wait until traffic is served from \"{region}\"")
            }
            None => String::new(),
        };
        format!(
            "run {} ({}){settle}",
            self.command.describe(),
            self.run.join(" ")
        )
    }

    /// Runs the undo command, then waits (within the command's timeout, platform time) until
    /// its [`Settle`] observation is seen: a command returning is not enough when the system
    /// converges after it.
    ///
    /// # Errors
    ///
    /// [`CommandError`]: the command is unknown or failed; [`CommandError::NotSettled`] or
    /// [`CommandError::NoProbe`] when its effect was not seen.
    pub async fn apply(&self, platform: &Platform, clock: &Clock) -> Result<(), CommandError> {
        let what = self.command.describe();
        let (cmd, substitutions) = self.command.resolve(platform)?;
        run(&what, cmd, &substitutions, &platform.base_dir(), clock).await?;
        match &self.settle {
            None => Ok(()),
            Some(Settle::TrafficServedFrom { region }) => {
                let no_probe = || CommandError::NoProbe { what: what.clone() };
                let probe = http::traffic_probe(platform).ok_or_else(no_probe)?;
                let client = http::client().map_err(|_| no_probe())?;
                http::await_region(&client, probe, region, cmd.timeout, clock)
                    .await
                    .map_err(|last| CommandError::NotSettled {
                        what: what.clone(),
                        expected: format!("traffic served from \"{region}\""),
                        within: format_duration(cmd.timeout),
                        last,
                    })
            }
        }
    }
}
