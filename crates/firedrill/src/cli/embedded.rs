//! Wiring the embedded platform into a run: it is started by this process, hands over its
//! platform file like any estate, and that file is then loaded and checked like any other.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use firedrill_core::diagnostic::Problems;
use std::sync::Arc;

use firedrill_core::clock::{Clock, PlatformTime};
use firedrill_engine::scenario::Hooks;
use firedrill_platform::Platform;
use firedrill_sim::Embedded;
use futures::future::BoxFuture;

/// The embedded platform's file with placeholder endpoints, for checks that touch nothing
/// (`validate`, `plan`, and `run` before it boots the estate).
///
/// # Errors
///
/// When the shipped platform file does not validate (a firedrill bug, caught by tests).
pub fn platform_for_checks() -> Result<Platform, Problems> {
    firedrill_platform::load_str(
        Path::new(firedrill_sim::PLATFORM_PATH),
        firedrill_sim::PLATFORM_YAML,
        &|name| match name {
            "FIREDRILL_BIN" => Some("firedrill".to_owned()),
            "FIREDRILL_FRONT_DOOR_URL"
            | "FIREDRILL_TOXIPROXY_URL"
            | "FIREDRILL_SIM_CONTROL_URL"
            | "FIREDRILL_ATLAS_URL" => Some("http://127.0.0.1:9".to_owned()),
            "FIREDRILL_ATLAS_PROJECT_ID" => Some("000000000000000000000000".to_owned()),
            _ => std::env::var(name).ok(),
        },
    )
}

/// An embedded estate this process started, with the files it handed over.
pub struct Started {
    /// The estate.
    pub sim: Embedded,
    /// Its platform file.
    pub platform_file: PathBuf,
    dir: PathBuf,
}

impl Started {
    /// What the estate adds to a run: settling between scenarios, and its own records as ground
    /// truth.
    #[must_use]
    pub fn hooks(&self) -> Arc<dyn Hooks> {
        Arc::new(EmbeddedHooks {
            settle: self.sim.settle(),
            truth: self.sim.ground_truth(),
        })
    }
}

/// The embedded estate's [`Hooks`], from its settle and ground-truth sources.
struct EmbeddedHooks {
    settle: firedrill_sim::Settle,
    truth: firedrill_sim::truth::Source,
}

impl Hooks for EmbeddedHooks {
    fn settle(&self) -> BoxFuture<'static, ()> {
        (self.settle)()
    }

    fn ground_truth(&self, since: PlatformTime) -> Vec<(String, PlatformTime)> {
        (self.truth)(since)
    }
}

impl Drop for Started {
    fn drop(&mut self) {
        // Best effort: the folder holds connection strings of an estate that ends with us.
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Why the embedded estate is not there.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A component did not start.
    #[error("cannot start the embedded platform: {0}")]
    Start(#[from] firedrill_sim::EmbeddedError),
    /// Its files could not be written.
    #[error(
        "cannot write the embedded platform's files in {dir}: {source} (hint: check that the temp folder is writable, or set TMPDIR)"
    )]
    Files {
        /// The folder.
        dir: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// Starts the embedded estate and writes its platform file (and the files it names) into a
/// private folder of the temp folder, removed when the estate is dropped.
///
/// # Errors
///
/// [`StartError`].
pub async fn start(clock: Clock, seed: u64) -> Result<Started, StartError> {
    let sim = Embedded::start(clock, seed, SocketAddr::from(([127, 0, 0, 1], 0))).await?;
    let dir = private_dir();
    let files = |source| StartError::Files {
        dir: dir.clone(),
        source,
    };
    create_private_dir(&dir).map_err(files)?;
    let platform_file = sim.write_platform(&dir.join("embedded")).map_err(files)?;
    Ok(Started {
        sim,
        platform_file,
        dir,
    })
}

fn private_dir() -> PathBuf {
    static STARTS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = STARTS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    std::env::temp_dir().join(format!("firedrill-embedded-{}-{n}", std::process::id()))
}

fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt as _;
        builder.mode(0o700);
    }
    builder.recursive(true).create(dir)
}
