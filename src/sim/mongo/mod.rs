//! An embedded MongoDB replica set speaking the wire protocol (OP_MSG, legacy OP_QUERY
//! handshakes) on loopback ports, so the real `mongodb` driver and pymongo run against it.
//!
//! Each member listens on its own `127.0.0.1` port. The model ([`engine`]) keeps a per-member
//! oplog, replicates to reachable secondaries with seeded lag, computes the majority commit
//! point, holds elections after `electionTimeoutMillis` honouring priorities (takeover and
//! step-down handoff too) and rolls back unreplicated writes when an old primary rejoins.
//! Every modelled delay runs on the run's [`Clock`](crate::drill::clock::Clock), so a scaled
//! clock compresses a 10 s election into milliseconds.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use firedrill::drill::clock::Clock;
//! use firedrill::sim::mongo::{MemberSpec, ReplicaSet, ReplicaSetSpec, Timing};
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

mod commands;
mod engine;
mod error;
mod query;
mod server;
mod spec;
mod wire;

pub use engine::{Election, ElectionReason, MemberState, Rollback};
pub use error::Error;
pub use server::{MemberStatus, ReplicaSet, SetStatus};
pub use spec::{MemberSpec, ReplicaSetSpec, Timing};
