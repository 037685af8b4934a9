//! An embedded MongoDB Atlas Administration API (v2) over the embedded replica sets: the
//! same HTTP resources, media types, error bodies and authentication as Atlas, for the
//! requests a drill makes.
//!
//! - `GET/PATCH /api/atlas/v2/groups/{groupId}/clusters/{clusterName}` (`2024-08-05`): the
//!   cluster with `stateName` and `replicationSpecs[].regionConfigs[]`; a PATCH of the region
//!   priorities answers `UPDATING`, and after a modelled time reconfigures the replica set's
//!   member priorities to the regions' (a priority takeover follows), then `IDLE`.
//! - `GET/POST/DELETE …/outageSimulation` (`2023-01-01`): a simulation walks `START_REQUESTED`
//!   → `STARTING` → `SIMULATING` (the regions' members are cut off the network: their ports
//!   close and the other members lose them) → on DELETE `RECOVERY_REQUESTED` → `RECOVERING`
//!   (they are back) → `COMPLETE`, each step after a modelled time; it is gone (404) a while
//!   after. A second simulation while one runs is a 409; one that would leave no electable node
//!   is a 400.
//! - `POST …/restartPrimaries` (`2023-02-01`): the primary steps down, an election follows, and
//!   the cluster is `UPDATING` for a modelled time while "the old primary restarts".
//! - `GET /api/atlas/v2/groups/{groupId}/apiKeys`, `…/serviceAccounts/{clientId}`: who has which
//!   project role (only a Project Owner may read them).
//! - `POST /api/oauth/token`: service-account tokens (client credentials).
//!
//! Every request but the token's is authenticated by HTTP digest (an API key) or a bearer token
//! (a service account); actions check the role Atlas documents for them (Project Owner for an
//! outage simulation, Project Cluster Manager for a failover or a PATCH). Requests carry the
//! versioned media type (`Accept: application/vnd.atlas.YYYY-MM-DD+json`); another version is a
//! 406. Each project has a token bucket (429 with `RATE_LIMITED_TOKEN_BUCKET` and `Retry-After`
//! once it is empty). Errors are Atlas's body: `{"detail", "error", "errorCode", "parameters",
//! "reason"}`; the error codes of cases Atlas's documentation does not name are this API's own.
//!
//! Time: modelled durations are platform time on the estate's clock; timestamps in answers
//! (`createDate`, `startRequestDate`) are wall-clock time, as the embedded Kubernetes API's are
//! (see `kube::store::wall_now`): clients compare them with their own clocks.

mod api;
pub mod auth;
mod cluster;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use firedrill_core::clock::Clock;

pub use auth::{ApiKey, ServiceAccount};

use crate::mongo::ReplicaSet;

/// One region of an embedded cluster.
#[derive(Clone, Debug)]
pub struct RegionSpec {
    /// Atlas's name of the region (`WESTERN_US`).
    pub atlas: String,
    /// The members' `region` tag in the replica set (`us-west1`).
    pub tag: String,
    /// Its election priority (7 for the highest).
    pub priority: i64,
}

/// One embedded Atlas cluster: a replica set and its regions.
#[derive(Clone)]
pub struct ClusterSpec {
    /// The cluster's name (`prod-1`).
    pub name: String,
    /// The replica set it is.
    pub set: Arc<ReplicaSet>,
    /// The cloud provider of every region (`GCP`).
    pub provider: String,
    /// Its regions, highest priority first; each member is in the region of its tag.
    pub regions: Vec<RegionSpec>,
}

impl std::fmt::Debug for ClusterSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterSpec")
            .field("name", &self.name)
            .field("regions", &self.regions)
            .finish_non_exhaustive()
    }
}

/// Modelled durations (platform time), each drawn from its range with the estate's seed.
#[derive(Clone, Debug)]
pub struct Timing {
    /// A priority change: how long the cluster is UPDATING before the set is reconfigured.
    pub update: (Duration, Duration),
    /// A test failover: how long the cluster is UPDATING after the step-down.
    pub restart: (Duration, Duration),
    /// START_REQUESTED until STARTING.
    pub start_requested: (Duration, Duration),
    /// STARTING until SIMULATING (the cut).
    pub starting: (Duration, Duration),
    /// RECOVERY_REQUESTED until RECOVERING (the regions are back).
    pub recovery_requested: (Duration, Duration),
    /// RECOVERING until COMPLETE.
    pub recovering: (Duration, Duration),
    /// How long a COMPLETE simulation is still shown before it is gone (404).
    pub complete_shown: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        let s = Duration::from_secs;
        Self {
            update: (s(180), s(300)),
            restart: (s(60), s(120)),
            start_requested: (s(10), s(30)),
            starting: (s(60), s(120)),
            recovery_requested: (s(10), s(30)),
            recovering: (s(60), s(120)),
            complete_shown: s(120),
        }
    }
}

/// The project's request budget: a token bucket (Atlas's rate limiting).
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Requests that may be sent at once.
    pub capacity: u32,
    /// Tokens added back per `refill_every`.
    pub refill: u32,
    /// The refill interval (platform time).
    pub refill_every: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            capacity: 100,
            refill: 100,
            refill_every: Duration::from_secs(60),
        }
    }
}

/// What the embedded API serves.
#[derive(Clone)]
pub struct AtlasSpec {
    /// The project (group) id, 24 hexadecimal digits.
    pub project: String,
    /// Its clusters.
    pub clusters: Vec<ClusterSpec>,
    /// API keys.
    pub keys: Vec<ApiKey>,
    /// Service accounts.
    pub accounts: Vec<ServiceAccount>,
    /// Modelled durations.
    pub timing: Timing,
    /// The request budget.
    pub limits: Limits,
    /// Seed of the modelled durations.
    pub seed: u64,
}

/// A running embedded Atlas Administration API; stops when dropped.
pub struct AtlasApi {
    /// Its base URL, `http://127.0.0.1:PORT`.
    pub url: String,
    /// The project it serves.
    pub project: String,
    state: Arc<api::State>,
    task: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for AtlasApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AtlasApi")
            .field("url", &self.url)
            .field("project", &self.project)
            .finish_non_exhaustive()
    }
}

impl Drop for AtlasApi {
    fn drop(&mut self) {
        self.task.abort();
        self.state.stop();
    }
}

/// What an embedded cluster is doing, as ground truth.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterStatus {
    /// `stateName`.
    pub state: String,
    /// The outage simulation's state, if one is shown.
    pub simulation: Option<String>,
    /// Atlas region → priority.
    pub priorities: Vec<(String, i64)>,
}

impl AtlasApi {
    /// Serves `spec` on `listen` (a loopback port of its own for port 0).
    ///
    /// # Errors
    ///
    /// When it cannot listen.
    pub async fn start(spec: AtlasSpec, clock: Clock, listen: SocketAddr) -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind(listen).await?;
        let url = format!("http://{}", listener.local_addr()?);
        let project = spec.project.clone();
        let state = Arc::new(api::State::new(spec, clock));
        let router = api::router(Arc::clone(&state));
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Ok(Self {
            url,
            project,
            state,
            task,
        })
    }

    /// Ground truth about cluster `name`.
    #[must_use]
    pub fn status(&self, name: &str) -> Option<ClusterStatus> {
        self.state.status(name)
    }
}

/// A 24-hexadecimal-digit id derived from `seed` and `salt` (project, cluster, spec ids).
#[must_use]
pub fn object_id(seed: u64, salt: u64) -> String {
    let a = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ salt.wrapping_mul(0xC2B2_AE3D_27D4_EB4F);
    let b = a.rotate_left(17) ^ 0x5f1d_7a3c;
    format!("{:016x}{:08x}", a, (b & 0xffff_ffff) as u32)
}
