//! The `http` probe: one-shot and continuous observations of a service over HTTP.
//!
//! A probe answer is *good* when its status is expected and its body contains the expected
//! text; the region that served it comes from a response header. The [`Tracker`] turns the
//! stream of observations into milestones (pure, unit-tested); [`spawn`] runs it on a timer.
//! A probe only looks: it injects no fault, so this provider has no undo of its own (the
//! command undo of a traffic switch waits on [`await_region`]).
//!
//! | file | what |
//! | --- | --- |
//! | `config.rs` | [`traffic_probe`]: the probe the platform's traffic switch is seen through |
//! | `probe.rs` | [`client`], [`observe`] one answer, [`await_region`] |
//! | `tracker.rs` | [`Tracker`]: observations to milestones, pure |
//! | `running.rs` | [`spawn`]: a probe on a timer |
//! | `preflight.rs` | [`preflight`]: the probe's endpoint answers at all |
//! | `error.rs` | [`HttpError`] |

mod config;
mod error;
mod preflight;
mod probe;
mod running;
mod tracker;

pub use config::traffic_probe;
pub use error::HttpError;
pub use firedrill_core::observed::{Observation, ProbeState, Streak};
pub use preflight::preflight;
pub(crate) use probe::describe;
pub use probe::{await_region, client, observe};
pub use running::{OnMilestone, Running, spawn};
pub use tracker::{ProbeMilestone, Tracker};
