//! firedrill's pure core: what every other crate of firedrill shares, and nothing in it does
//! I/O — the one clock, targets and verdicts, the timeline's milestones and phases with their
//! typed names, thresholds, the halt marker's meaning, hiding credentials in text, and the
//! problems found in user input.

pub mod clock;
pub mod diagnostic;
pub mod guard;
pub mod halt;
pub mod names;
pub mod observed;
pub mod redact;
pub mod target;
pub mod threshold;
pub mod timeline;
