//! An embedded MongoDB replica set speaking the wire protocol (OP_MSG with kind-1 document
//! sequences, and the legacy OP_QUERY handshake) on loopback ports, so the real `mongodb`
//! driver and pymongo run against it unchanged.
//!
//! Layout: `wire` frames messages; `commands` answers them (hello with topologyVersion
//! streaming, CRUD, `replSet*`, `shutdown`); `engine` is the pure replica-set model (per-member
//! oplogs and data, replication with seeded lag, the majority commit rule, elections by
//! timeout, priority takeover and step-down handoff, rollback); `server` runs one listener per
//! member plus a supervisor task that advances the model, and is the control API
//! ([`ReplicaSet`]).
//!
//! Time: every modelled delay (election timeout and jitter, election round, replication lag,
//! takeover delay, `stepDownSecs`, `secondaryCatchUpPeriodSecs`, `wtimeout`) is platform time
//! on the run's [`Clock`](firedrill_core::clock::Clock), so a scaled clock compresses a 10 s
//! election into milliseconds. `maxAwaitTimeMS` of a streaming hello is the driver's real-time
//! heartbeat budget and is honoured in wall time.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use firedrill_core::clock::Clock;
//! use firedrill_sim::mongo::{MemberSpec, ReplicaSet, ReplicaSetSpec, Timing};
//! let spec = ReplicaSetSpec {
//!     name: "rs-prod-1".into(),
//!     members: vec![
//!         MemberSpec::new("us-west1", 2.0),
//!         MemberSpec::new("us-west1", 1.0),
//!         MemberSpec::new("us-west2", 0.5),
//!     ],
//!     seed: 42,
//!     timing: Timing::default(),
//! };
//! let set = ReplicaSet::start(spec, Clock::scaled(100.0)?).await?;
//! let uri = set.connection_string(); // mongodb://127.0.0.1:p1,.../?replicaSet=rs-prod-1
//! # let _ = uri; Ok(()) }
//! ```

mod catalog;
mod commands;
mod engine;
mod error;
mod heartbeat;
mod query;
mod refuse;
mod server;
mod spec;
mod txn;
mod wire;

pub use engine::{Election, ElectionReason, MemberState, Rollback};
pub use error::Error;
pub use server::{Bound, MemberStatus, ReplicaSet, SetStatus};
pub use spec::{MemberSpec, ReplicaSetSpec, Timing};
