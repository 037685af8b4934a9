//! What firedrill's tests share, in one place instead of a copy per test file: the repository
//! root, the `firedrill` binary run with its output captured ([`process`]), waiting for an
//! observed condition with a deadline ([`wait`]), `firedrill sim up` in another process with
//! its env file ([`sim_up`]), in-process clusters with their kubeconfig ([`kube`]), replica
//! sets behind Toxiproxy links ([`mongo`]), the embedded Atlas API ([`atlas`]), and platform
//! files that name their own kubeconfig ([`platform`]); and the harness of the benches too
//! large for criterion ([`bench`]).
//!
//! A dev-dependency only: it panics with what it saw instead of returning errors, as a test
//! wants.

pub mod atlas;
pub mod bench;
pub mod kube;
pub mod mongo;
pub mod platform;
pub mod process;
pub mod sim_up;
pub mod wait;

use std::path::PathBuf;

pub use process::{Binary, Output, Started};
pub use sim_up::SimUp;
pub use wait::{Wait, until, until_async};

/// The repository root (drills/, features/, fixtures/, conformance/ …).
#[must_use]
pub fn root() -> PathBuf {
    let root = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."));
    root.canonicalize().unwrap_or(root)
}

/// The `firedrill` binary cargo built for the calling test or bench, as a [`Binary`]. Only the
/// `firedrill` crate's own tests and benches have it (cargo sets `CARGO_BIN_EXE_firedrill` for
/// them alone).
#[macro_export]
macro_rules! firedrill {
    () => {
        $crate::Binary::new(env!("CARGO_BIN_EXE_firedrill"))
    };
}
