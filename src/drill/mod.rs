//! The drill engine: clock, timeline, targets, ledger and the cucumber world.

pub mod clock;
pub mod ledger;
pub mod target;
