//! firedrill: chaos and disaster-recovery drills as Gherkin scenarios.

pub mod drill;
pub mod sim;
pub mod diagnostic;
pub mod platform;
pub mod providers;
pub mod steps;
