//! The drill engine: the ledger (generic over the undo type of whoever injects), the typed
//! event stream, a scenario's timeline and faults, the drills' loading and selection, and the run
//! loop that undoes on every way out — a signal or a stop condition (a tripped guard) alike.
//!
//! It knows no provider and no step: providers implement [`Undo`], steps build a cucumber world
//! around a [`Scenario`], and what an embedded platform adds (settling between scenarios, ground
//! truth) comes in through [`Hooks`].

pub mod drills;
pub mod events;
pub mod halt;
pub mod ledger;
pub mod runner;
pub mod scenario;
pub mod signal;
pub mod stop;
pub mod syntax;
pub mod undo;
