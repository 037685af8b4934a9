//! One folder per real system firedrill drives or observes.

pub mod command;
pub mod http;
pub mod kube;
pub mod mongo;
pub mod toxiproxy;
