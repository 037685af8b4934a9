//! MongoDB Atlas through its Administration API (v2): the regional outage simulation, the test
//! failover (`restartPrimaries`) and region priorities (a PATCH of the cluster's
//! `replicationSpecs[].regionConfigs[].priority`), each with its undo, and the preflight of a
//! cluster. Atlas refuses `replSetStepDown`, `replSetFreeze` and `replSetReconfig`, so on an
//! Atlas-managed database these are how a drill makes things happen; how it *sees* them
//! happen stays the Mongo provider's [`observer`](crate::mongo::observer).
//!
//! Layout: [`config`] resolves the platform's `databases.<db>.atlas` (credentials as
//! [`Secret`](firedrill_platform::Secret)s), [`client`] speaks HTTP (digest or OAuth,
//! versioned media types, retries), [`actions`] are the requests and waits, [`undo`] takes
//! them back, [`preflight`] checks a cluster before anything is injected, [`error`] says what
//! went wrong and on which cluster. Messages never carry a credential.

pub mod actions;
pub mod client;
pub mod config;
pub mod error;
pub mod preflight;
pub mod undo;

pub use client::{Client, Role};
pub use config::Settings;
pub use error::AtlasError;
pub use preflight::Requirement;
pub use undo::AtlasUndo;

/// Milestone prefix of the states Atlas reports for an outage simulation:
/// `atlas outage simulation SIMULATING: prod-1`.
pub const SIMULATION_STATE: &str = "atlas outage simulation ";

/// Milestone prefix of a cluster's `stateName` changes: `atlas cluster UPDATING: prod-1`.
pub const CLUSTER_STATE: &str = "atlas cluster ";

/// The milestone of an outage simulation state of `database`.
#[must_use]
pub fn simulation_milestone(state: &str, database: &str) -> String {
    format!("{SIMULATION_STATE}{state}: {database}")
}

/// The milestone of a cluster state of `database`.
#[must_use]
pub fn cluster_milestone(state: &str, database: &str) -> String {
    format!("{CLUSTER_STATE}{state}: {database}")
}
