//! firedrill: chaos and disaster-recovery drills as Gherkin scenarios.

pub mod cli;
pub mod diagnostic;
pub mod drill;
pub mod metrics;
pub mod platform;
pub mod providers;
pub mod report;
pub use firedrill_sim as sim;
pub mod steps;
