//! The embedded platform: a complete two-region estate run inside firedrill, speaking the real
//! protocols (Kubernetes API, MongoDB wire protocol, Toxiproxy HTTP API, HTTP applications).
//!
//! Today it holds the applications, the front door and the Terraform stand-in that switches
//! traffic; the Kubernetes, MongoDB and Toxiproxy servers plug in beside them.

pub mod app;
pub mod kube;
pub mod model;
pub mod mongo;
pub mod toxiproxy;

use std::net::SocketAddr;
use std::path::Path;

use crate::diagnostic::Problems;
use crate::drill::clock::Clock;
use crate::platform::Platform;

/// The embedded platform's platform file, shipped inside the binary.
pub const PLATFORM_YAML: &str = include_str!("../../fixtures/platforms/embedded.yaml");

/// The name the embedded platform file is reported under.
pub const PLATFORM_PATH: &str = "fixtures/platforms/embedded.yaml";

/// Regions of the embedded estate, primary first.
pub const REGIONS: [&str; 2] = ["us-west1", "us-west2"];

/// The embedded platform's Kubernetes side: one API server per region and the kubeconfig
/// naming them (contexts `<prefix><region>`).
#[derive(Debug)]
pub struct KubeEstate {
    /// The clusters, in [`REGIONS`] order.
    pub clusters: Vec<kube::Cluster>,
    /// The kubeconfig written for them (removed when the estate is dropped).
    pub kubeconfig: std::path::PathBuf,
}

/// The namespaces of the embedded estate, each with a `storefront` deployment on its own pool.
pub const NAMESPACES: [&str; 3] = ["prod-1", "prod-2", "prod-3"];

impl KubeEstate {
    /// Starts us-west1 (three zones, one node per namespace pool per zone, 3 storefront
    /// replicas per namespace) and us-west2 (the same nodes, storefront at 0 replicas), and
    /// writes `kubeconfig` with contexts `<prefix>us-west1` and `<prefix>us-west2`.
    ///
    /// # Errors
    ///
    /// [`kube::SimError`] when a server cannot start or the kubeconfig cannot be written.
    pub async fn start(
        clock: Clock,
        seed: u64,
        prefix: &str,
        kubeconfig: std::path::PathBuf,
    ) -> Result<Self, kube::SimError> {
        let mut clusters = Vec::new();
        for (i, region) in REGIONS.iter().enumerate() {
            let pools: Vec<(&str, usize)> = NAMESPACES.iter().map(|ns| (*ns, 1)).collect();
            let mut spec = kube::ClusterSpec::new(*region, clock).seed(seed.wrapping_add(i as u64));
            for zone in ["a", "b", "c"] {
                spec = spec.zone(format!("{region}-{zone}"), &pools);
            }
            for ns in NAMESPACES {
                let replicas = if i == 0 { 3 } else { 0 };
                spec = spec
                    .namespace(ns)
                    .deployment(ns, "storefront", replicas, Some(ns));
            }
            clusters.push(kube::Cluster::start(spec).await?);
        }
        let names: Vec<(String, String)> = clusters
            .iter()
            .map(|c| (format!("{prefix}{}", c.region()), c.url()))
            .collect();
        let pairs: Vec<(&str, &str)> = names
            .iter()
            .map(|(n, u)| (n.as_str(), u.as_str()))
            .collect();
        kube::write_kubeconfig(&kubeconfig, &pairs)?;
        Ok(Self {
            clusters,
            kubeconfig,
        })
    }

    /// The cluster of `region`.
    #[must_use]
    pub fn cluster(&self, region: &str) -> Option<&kube::Cluster> {
        self.clusters.iter().find(|c| c.region() == region)
    }
}

impl Drop for KubeEstate {
    fn drop(&mut self) {
        // Best effort: a leftover kubeconfig in the temp folder names dead ports only.
        let _ = std::fs::remove_file(&self.kubeconfig);
    }
}

/// A component of the embedded platform that did not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The applications or the front door.
    #[error(transparent)]
    App(#[from] app::AppError),
    /// A Kubernetes API server or its kubeconfig.
    #[error(transparent)]
    Kube(#[from] kube::SimError),
}

/// A kubeconfig path in the temp folder unique to this process and start.
#[must_use]
pub fn temp_kubeconfig() -> std::path::PathBuf {
    static STARTS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = STARTS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    std::env::temp_dir().join(format!("firedrill-kubeconfig-{}-{n}", std::process::id()))
}

/// A running embedded platform.
#[derive(Debug)]
pub struct Embedded {
    /// The applications and front door.
    pub front_door: app::FrontDoor,
    /// The Kubernetes API servers.
    pub kube: KubeEstate,
    /// The clock it runs on.
    pub clock: Clock,
    /// The seed of its timing model.
    pub seed: u64,
}

impl Embedded {
    /// Starts every component on loopback ports of its own.
    ///
    /// # Errors
    ///
    /// When a component cannot start.
    pub async fn start(clock: Clock, seed: u64, listen: SocketAddr) -> Result<Self, StartError> {
        let model = model::Model::new(seed, model::Ranges::default());
        let front_door = app::FrontDoor::start(&REGIONS, REGIONS[0], listen, clock, model).await?;
        let kube = KubeEstate::start(clock, seed, "", temp_kubeconfig()).await?;
        // The Kubernetes provider reads this kubeconfig in this process (steps and undos).
        crate::providers::kube::use_kubeconfig(&kube.kubeconfig);
        Ok(Self {
            front_door,
            kube,
            clock,
            seed,
        })
    }

    /// The endpoints, as the environment variables the platform file interpolates.
    #[must_use]
    pub fn env(&self) -> Vec<(String, String)> {
        let bin = std::env::current_exe()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|_| "firedrill".to_owned());
        vec![
            ("FIREDRILL_BIN".to_owned(), bin),
            (
                "FIREDRILL_FRONT_DOOR_URL".to_owned(),
                self.front_door.url.clone(),
            ),
            ("FIREDRILL_SEED".to_owned(), self.seed.to_string()),
            (
                "FIREDRILL_KUBECONFIG".to_owned(),
                self.kube.kubeconfig.display().to_string(),
            ),
            (
                "FIREDRILL_TIME_SCALE".to_owned(),
                self.clock.scale().to_string(),
            ),
        ]
    }

    /// The platform file for this running platform.
    ///
    /// # Errors
    ///
    /// When the shipped platform file does not validate (a firedrill bug, caught by tests).
    pub fn platform(&self) -> Result<Platform, Problems> {
        let env = self.env();
        crate::platform::load_str(Path::new(PLATFORM_PATH), PLATFORM_YAML, &|name| {
            env.iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
                .or_else(|| std::env::var(name).ok())
        })
    }

    /// The platform file's text with every endpoint filled in, for `sim up --env-file`.
    #[must_use]
    pub fn platform_text(&self) -> String {
        self.env()
            .iter()
            .fold(PLATFORM_YAML.to_owned(), |text, (name, value)| {
                text.replace(&format!("${{{name}}}"), value)
                    .replace(&format!("${{{name}:-1}}"), value)
            })
    }
}

/// The embedded platform file with placeholder endpoints, for `validate` and `plan` (no I/O).
///
/// # Errors
///
/// When the shipped platform file does not validate.
pub fn platform_for_checks() -> Result<Platform, Problems> {
    crate::platform::load_str(
        Path::new(PLATFORM_PATH),
        PLATFORM_YAML,
        &|name| match name {
            "FIREDRILL_BIN" => Some("firedrill".to_owned()),
            "FIREDRILL_FRONT_DOOR_URL" => Some("http://127.0.0.1:9".to_owned()),
            _ => std::env::var(name).ok(),
        },
    )
}
