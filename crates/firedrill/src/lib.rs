//! firedrill: chaos and disaster-recovery drills as Gherkin scenarios. This crate is the binary's
//! command line: it parses arguments into settings, wires the crates below it together for each
//! command, and turns outcomes into exit codes. `docs/ARCHITECTURE.md` draws the crates.

pub mod cli;
