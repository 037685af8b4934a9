//! The embedded platform: a complete two-region estate run inside firedrill, speaking the real
//! protocols (Kubernetes API, MongoDB wire protocol, Toxiproxy HTTP API, HTTP applications).
pub mod kube;
