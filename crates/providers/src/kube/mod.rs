//! The Kubernetes provider: one connection per region's kube context, the zone, region and pod
//! faults (taint, cordon and evict, delete, scale to zero, pod kill), the failover scale-up and
//! its readiness watch, the in-cluster traffic switch, the snapshot that proves a namespace
//! was left alone, and the checks preflight runs before anything is injected.
//!
//! Every connection is built from the kubeconfig the platform names (else `FIREDRILL_KUBECONFIG`,
//! `KUBECONFIG`, `~/.kube/config`; see [`kubeconfig_path`]) and only for a context listed in
//! `safety.allow.kube-contexts`. Every call is retried with a bounded backoff in platform time
//! while the API server is unreachable ([`Backoff`]); then it fails with
//! [`KubeError::Unreachable`] and the drill aborts and undoes. Undos are stored by reference
//! (context, object names, what to restore), so `firedrill recover` can take a fault back from
//! another process.
//!
//! | file | what |
//! | --- | --- |
//! | `config.rs` | the kubeconfig, a region's context, a zone's region, the allow-list |
//! | `conn.rs` | [`Conn`]: a connection to one allowed context |
//! | `faults.rs` | taint, cordon and evict, delete, scale, pod kill, the failover scale-up |
//! | `watch.rs`, `switch.rs`, `snapshot.rs` | readiness watches, the traffic switch, namespace snapshots |
//! | `retry.rs` | [`Backoff`]: every call retried in platform time while the API server is away |
//! | `undo.rs` | [`KubeUndo`] and its `apply` |
//! | `preflight.rs` | [`preflight`]: the context answers, allows the verbs, has the namespaces and zones |
//! | `error.rs` | [`KubeError`] |
//! | `discover.rs` | [`discover::discover`]: what a context runs, read before there is a platform file |

mod config;
mod conn;
pub mod discover;
mod error;
mod faults;
mod halt;
mod preflight;
mod retry;
mod snapshot;
mod switch;
mod undo;
mod watch;

use std::time::Duration;

pub use config::{check_allowed, default_kubeconfig, kubeconfig_path, region_context, zone_region};
pub use conn::Conn;
pub use error::{Call, KubeError, ObjectCall};
pub use faults::{Kill, services};
pub use preflight::{Requirement, preflight, preflight_into};
pub use retry::Backoff;
pub use snapshot::{NamespaceSnapshot, PodState};
pub use switch::{Switch, SwitchKind};
pub use undo::{KubeUndo, ReadyPods, Replicas};
pub use watch::Readiness;

/// The NoExecute taint a zone outage puts on every node of the zone.
pub const ZONE_OUTAGE_TAINT: &str = "firedrill.dev/zone-outage";
/// How long the undo of a scale waits (platform time) for the deployments to run their
/// restored counts, Ready: Kubernetes' own default `progressDeadlineSeconds`.
pub const SCALED_BACK_WITHIN: Duration = Duration::from_secs(600);
/// The node label naming a node's zone.
pub const ZONE_LABEL: &str = "topology.kubernetes.io/zone";
