//! The emergency halt's marker where the platform puts it (`safety.halt`): a ConfigMap, through
//! the Kubernetes provider, or a file. `firedrill halt` and `resume` record who and why in it;
//! every run reads it before it starts and at the halt interval while it runs.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures::future::BoxFuture;

use crate::kube::{Conn, KubeError};
use firedrill_core::halt::{Halt, Marker, Record};
use firedrill_platform::Platform;

/// The marker could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum HaltError {
    /// The platform names no marker.
    #[error(
        "platform \"{platform}\" names no halt marker (hint: add safety.halt with a `config-map:` every runner can read, or a `file:`)"
    )]
    NoMarker {
        /// The platform's name.
        platform: String,
    },
    /// The ConfigMap could not be read or written.
    #[error("halt marker: {0}")]
    Kube(#[from] KubeError),
    /// The file could not be read or written.
    #[error(
        "cannot {action} the halt marker file {path}: {source} (hint: check the path and its permissions; every runner against this estate must be able to read it)"
    )]
    File {
        /// `read` or `write`.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// Where the marker is.
#[derive(Clone, Debug)]
pub enum Location {
    /// A ConfigMap, through a connection to its cluster.
    ConfigMap {
        /// The connection (an allowed context).
        conn: Box<Conn>,
        /// Its namespace.
        namespace: String,
        /// Its name.
        name: String,
    },
    /// A file.
    File(PathBuf),
}

impl Location {
    /// The marker `platform` names, connected.
    ///
    /// # Errors
    ///
    /// [`HaltError::NoMarker`], or the kube context cannot be used.
    pub async fn of(platform: &Platform) -> Result<Self, HaltError> {
        let Some(halt) = &platform.safety.halt else {
            return Err(HaltError::NoMarker {
                platform: platform.name.clone(),
            });
        };
        match (&halt.config_map, &halt.file) {
            (Some(cm), _) => Ok(Self::ConfigMap {
                conn: Box::new(Conn::connect(platform, &cm.kube_context).await?),
                namespace: cm.namespace.clone(),
                name: cm.name.clone(),
            }),
            (None, Some(file)) => Ok(Self::File(platform.base_dir().join(file))),
            (None, None) => Err(HaltError::NoMarker {
                platform: platform.name.clone(),
            }),
        }
    }

    /// Where it is, in words.
    #[must_use]
    pub fn describe(&self) -> String {
        match self {
            Self::ConfigMap {
                conn,
                namespace,
                name,
            } => format!("ConfigMap {namespace}/{name} in {}", conn.context()),
            Self::File(path) => format!("file {}", path.display()),
        }
    }

    /// The marker's content; `None` when there is no marker (never halted).
    ///
    /// # Errors
    ///
    /// [`HaltError`] when it cannot be read.
    pub async fn marker(&self) -> Result<Option<Marker>, HaltError> {
        match self {
            Self::ConfigMap {
                conn,
                namespace,
                name,
            } => Ok(conn.halt_marker(namespace, name).await?),
            Self::File(path) => read_file(path),
        }
    }

    /// The halt in force, if any.
    ///
    /// # Errors
    ///
    /// [`HaltError`] when the marker cannot be read.
    pub async fn halt(&self) -> Result<Option<Halt>, HaltError> {
        Ok(self.marker().await?.and_then(|m| m.halt()))
    }

    /// Records a halt or a resume; returns the marker as written.
    ///
    /// # Errors
    ///
    /// [`HaltError`] when it cannot be read or written.
    pub async fn record(&self, record: &Record) -> Result<Marker, HaltError> {
        match self {
            Self::ConfigMap {
                conn,
                namespace,
                name,
            } => Ok(conn.record_halt(namespace, name, record).await?),
            Self::File(path) => {
                let marker = read_file(path)?.unwrap_or_default().then(record.clone());
                write_file(path, &marker)?;
                Ok(marker)
            }
        }
    }
}

/// A marker file that cannot be parsed is a halt someone wrote by hand (fail closed).
fn read_file(path: &Path) -> Result<Option<Marker>, HaltError> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(serde_json::from_str(&text).unwrap_or_else(|_| {
            Marker {
                reason: text.trim().chars().take(500).collect(),
                ..Marker::default()
            }
        }))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(HaltError::File {
            action: "read",
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Written whole to a file beside it, then renamed over it: a reader never sees half a marker.
fn write_file(path: &Path, marker: &Marker) -> Result<(), HaltError> {
    let error = |source| HaltError::File {
        action: "write",
        path: path.to_path_buf(),
        source,
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(error)?;
    }
    let text = serde_json::to_string_pretty(marker)
        .map_err(std::io::Error::other)
        .map_err(error)?;
    let mut temp = path.as_os_str().to_owned();
    temp.push(".tmp");
    std::fs::write(&temp, text + "\n").map_err(error)?;
    std::fs::rename(&temp, path).map_err(error)
}

/// The run loop's reader of a marker.
#[derive(Debug)]
pub struct Reader(pub Location);

impl firedrill_engine::halt::Marker for Reader {
    fn describe(&self) -> String {
        self.0.describe()
    }

    fn read(&self) -> BoxFuture<'_, Result<Option<Halt>, String>> {
        Box::pin(async move { self.0.halt().await.map_err(|e| e.to_string()) })
    }
}

/// The run loop's watch of `platform`'s marker at its halt interval.
#[must_use]
pub fn watch(location: Location, platform: &Platform) -> firedrill_engine::halt::Watch {
    firedrill_engine::halt::Watch {
        marker: Arc::new(Reader(location)),
        every: platform.halt_interval(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use firedrill_core::halt::{HALTED, RESUMED};

    fn record(state: &str, by: &str, reason: &str) -> Record {
        Record {
            state: state.into(),
            reason: reason.into(),
            by: by.into(),
            at: "2026-12-03T17:30:00Z".into(),
        }
    }

    #[tokio::test]
    async fn a_file_marker_halts_until_resumed_and_keeps_who_and_why() {
        let dir = tempfile::tempdir().expect("temp dir");
        let marker = Location::File(dir.path().join("state/halt.json"));
        assert_eq!(
            marker.halt().await.expect("read"),
            None,
            "no file: not halted"
        );
        marker
            .record(&record(HALTED, "alice", "incident 4711"))
            .await
            .expect("halt");
        let halt = marker.halt().await.expect("read").expect("halted");
        assert_eq!(
            (halt.by.as_str(), halt.reason.as_str()),
            ("alice", "incident 4711")
        );
        let resumed = marker
            .record(&record(RESUMED, "bob", "incident closed"))
            .await
            .expect("resume");
        assert_eq!(marker.halt().await.expect("read"), None);
        assert_eq!(resumed.history.len(), 1);
        assert_eq!(resumed.history[0].by, "alice");
        assert_eq!(resumed.by, "bob");
    }

    #[tokio::test]
    async fn a_marker_file_written_by_hand_halts() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("halt");
        std::fs::write(&path, "STOP: payments incident\n").expect("write");
        let halt = Location::File(path)
            .halt()
            .await
            .expect("read")
            .expect("halted");
        assert_eq!(halt.reason, "STOP: payments incident");
    }
}
