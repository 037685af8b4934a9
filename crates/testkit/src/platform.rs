//! Platform files for tests: a folder of the test's own holding the platform file, its drills
//! and ledger, and — for a test against in-process clusters — the kubeconfig the platform file
//! names with `kubeconfig:`, so nothing reaches the clusters through the environment and tests
//! run side by side.

use std::path::{Path, PathBuf};

use firedrill_platform::Platform;
use firedrill_sim::kube::{Cluster, write_kubeconfig};

/// The kubeconfig's file name inside a [`Folder`].
pub const KUBECONFIG: &str = "kubeconfig";

/// A test's own folder, with a kubeconfig for its clusters when it has some.
#[derive(Debug)]
pub struct Folder {
    dir: tempfile::TempDir,
    kubeconfig: bool,
}

impl Folder {
    /// An empty folder.
    ///
    /// # Panics
    ///
    /// When no temp folder can be made.
    #[must_use]
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("a temp folder"),
            kubeconfig: false,
        }
    }

    /// A folder with `kubeconfig` naming each `(context, cluster)`; the platform files written
    /// by [`Folder::write_platform`] point at it.
    ///
    /// # Panics
    ///
    /// When the kubeconfig cannot be written.
    #[must_use]
    pub fn with_kubeconfig(clusters: &[(&str, &Cluster)]) -> Self {
        let folder = Self {
            kubeconfig: true,
            ..Self::new()
        };
        let urls: Vec<(&str, String)> = clusters.iter().map(|(c, cl)| (*c, cl.url())).collect();
        let pairs: Vec<(&str, &str)> = urls.iter().map(|(c, u)| (*c, u.as_str())).collect();
        write_kubeconfig(&folder.kubeconfig(), &pairs).expect("kubeconfig written");
        folder
    }

    /// Its path.
    #[must_use]
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The path of `name` in it.
    #[must_use]
    pub fn join(&self, name: impl AsRef<Path>) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Its kubeconfig's path (written by [`Folder::with_kubeconfig`]).
    #[must_use]
    pub fn kubeconfig(&self) -> PathBuf {
        self.join(KUBECONFIG)
    }

    /// Writes `text` to `name` (its folders made) and returns the path.
    ///
    /// # Panics
    ///
    /// When it cannot be written.
    pub fn write(&self, name: impl AsRef<Path>, text: &str) -> PathBuf {
        let path = self.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("create the folder");
        }
        std::fs::write(&path, text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        path
    }

    /// Writes the platform file `name`, with `kubeconfig:` naming the folder's first when it
    /// has one, and returns the path.
    ///
    /// # Panics
    ///
    /// When it cannot be written.
    pub fn write_platform(&self, name: impl AsRef<Path>, text: &str) -> PathBuf {
        if self.kubeconfig {
            self.write(name, &with_kubeconfig(text, &self.kubeconfig()))
        } else {
            self.write(name, text)
        }
    }

    /// [`Folder::write_platform`], then loads it as firedrill does.
    ///
    /// # Panics
    ///
    /// When the platform is invalid, with its problems.
    #[must_use]
    pub fn platform(&self, name: impl AsRef<Path>, text: &str) -> Platform {
        let path = self.write_platform(name, text);
        firedrill_platform::load(&path)
            .unwrap_or_else(|p| panic!("test platform {} invalid:\n{p}", path.display()))
    }
}

impl Default for Folder {
    fn default() -> Self {
        Self::new()
    }
}

/// `text` with `kubeconfig: <path>` as its first key.
#[must_use]
pub fn with_kubeconfig(text: &str, kubeconfig: &Path) -> String {
    let quoted = serde_json::Value::from(kubeconfig.to_string_lossy()).to_string();
    format!("kubeconfig: {quoted}\n{}", text.trim_start_matches('\n'))
}

/// Loads platform `text` in memory (as the file `test.yaml`, no `${ENV}` set).
///
/// # Panics
///
/// When it is invalid, with its problems.
#[must_use]
pub fn load_str(text: &str) -> Platform {
    firedrill_platform::load_str(Path::new("test.yaml"), text, &|_| None)
        .unwrap_or_else(|p| panic!("test platform invalid:\n{p}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TWO_REGIONS: &str = "\nname: t\nregions:\n  a: { role: primary, kube-context: a }\n  b: { role: failover }\nsafety:\n  allow:\n    kube-contexts: [a]\n";

    #[test]
    fn a_platform_in_the_folder_names_the_folders_kubeconfig_wherever_it_is() {
        let folder = Folder {
            kubeconfig: true,
            ..Folder::new()
        };
        let platform = folder.platform("nested/p.yaml", TWO_REGIONS);
        let named = platform.kubeconfig.as_deref().expect("kubeconfig: set");
        assert_eq!(platform.base_dir().join(named), folder.kubeconfig());
        let plain = Folder::new().platform("p.yaml", TWO_REGIONS);
        assert_eq!(plain.kubeconfig, None);
    }
}
