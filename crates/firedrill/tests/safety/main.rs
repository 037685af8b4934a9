//! Safety rule 8 against the real binary (issue 13): however a run ends — any catchable
//! signal, a closed pipe or terminal, SIGKILL at any instant followed by `recover` — nothing it
//! injected stays.
//!
//! The platform tests start `firedrill sim up --time-scale 200` in another process and run a
//! drill against its platform file from a third, as an SRE would; afterwards they look at the
//! platform through its own APIs: the Toxiproxy HTTP API (no toxics, every proxy enabled) and
//! the Kubernetes API (replica counts and node taints as before the drill).

#![allow(clippy::disallowed_macros)] // the kill test prints its seed for --nocapture

mod kill;
mod pipes;
mod signals;
mod support;
