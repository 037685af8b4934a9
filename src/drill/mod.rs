//! The drill engine: clock, timeline, targets, ledger, events and the cucumber world.

pub use firedrill_core::clock;
pub mod events;
pub mod features;
pub mod ledger;
pub mod preflight;
pub mod runner;
pub mod signal;
pub mod syntax;
pub mod target;
pub mod timeline;
pub mod undo;
pub mod world;
