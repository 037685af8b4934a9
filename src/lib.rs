//! firedrill: chaos and disaster-recovery drills as Gherkin scenarios.

pub mod drill;
pub mod providers;
pub mod sim;
