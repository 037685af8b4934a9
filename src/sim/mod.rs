//! The embedded platform: a complete two-region estate run inside firedrill, speaking the real
//! protocols (Kubernetes API, MongoDB wire protocol, Toxiproxy HTTP API, HTTP applications).
//!
//! Today it holds the applications, the front door, the Terraform stand-in that switches
//! traffic and a Toxiproxy between the front door and each region's application (links
//! `front-door-to-us-west1` and `front-door-to-us-west2`); the Kubernetes and MongoDB servers
//! plug in beside them.

pub mod app;
pub mod model;
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

/// A running embedded platform.
pub struct Embedded {
    /// The applications and front door.
    pub front_door: app::FrontDoor,
    /// The Toxiproxy the front door reaches the regions through.
    pub toxiproxy: toxiproxy::ToxiproxyServer,
    /// The clock it runs on.
    pub clock: Clock,
    /// The seed of its timing model.
    pub seed: u64,
}

impl std::fmt::Debug for Embedded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Embedded")
            .field("front_door", &self.front_door)
            .field("toxiproxy", &self.toxiproxy.url())
            .field("seed", &self.seed)
            .finish_non_exhaustive()
    }
}

impl Embedded {
    /// Starts every component on loopback ports of its own.
    ///
    /// # Errors
    ///
    /// When a component cannot start.
    pub async fn start(clock: Clock, seed: u64, listen: SocketAddr) -> Result<Self, app::AppError> {
        let model = model::Model::new(seed, model::Ranges::default());
        let toxiproxy =
            toxiproxy::ToxiproxyServer::start(SocketAddr::from(([127, 0, 0, 1], 0)), clock, seed)
                .await?;
        let front_door =
            app::FrontDoor::start_via(&REGIONS, REGIONS[0], listen, clock, model, Some(&toxiproxy))
                .await?;
        Ok(Self {
            front_door,
            toxiproxy,
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
            ("FIREDRILL_TOXIPROXY_URL".to_owned(), self.toxiproxy.url()),
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
            "FIREDRILL_FRONT_DOOR_URL" | "FIREDRILL_TOXIPROXY_URL" => {
                Some("http://127.0.0.1:9".to_owned())
            }
            _ => std::env::var(name).ok(),
        },
    )
}
