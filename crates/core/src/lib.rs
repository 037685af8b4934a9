//! firedrill's pure core: what every other crate of firedrill shares, and nothing in it does
//! I/O — the one clock, targets and verdicts, the timeline's milestones and phases with their
//! typed names, and the problems found in user input.

pub mod clock;
pub mod diagnostic;
pub mod names;
pub mod halt;
pub mod observed;
pub mod target;
pub mod timeline;
