//! What the Kubernetes provider reads from the platform file, resolved: the kubeconfig, the kube
//! context of a region, the region of a zone, and the allow-list every connection is checked
//! against.

use std::path::PathBuf;

use firedrill_platform::Platform;

use super::KubeError;

/// The kubeconfig `platform` is reached with: its `kubeconfig:` (relative to the platform file),
/// else `FIREDRILL_KUBECONFIG`, else `KUBECONFIG`, else `~/.kube/config`.
#[must_use]
pub fn kubeconfig_path(platform: &Platform) -> PathBuf {
    if let Some(path) = &platform.kubeconfig {
        return platform.base_dir().join(path);
    }
    default_kubeconfig()
}

/// The kubeconfig without a platform file naming one: `FIREDRILL_KUBECONFIG`, else
/// `KUBECONFIG`, else `~/.kube/config`.
#[must_use]
pub fn default_kubeconfig() -> PathBuf {
    std::env::var_os("FIREDRILL_KUBECONFIG")
        .or_else(|| std::env::var_os("KUBECONFIG"))
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".kube/config")
        })
}

/// The kube context of `region`.
///
/// # Errors
///
/// [`KubeError::NoContext`].
pub fn region_context<'a>(platform: &'a Platform, region: &str) -> Result<&'a str, KubeError> {
    platform
        .regions
        .get(region)
        .and_then(|r| r.kube_context.as_deref())
        .ok_or_else(|| KubeError::NoContext {
            region: region.to_owned(),
        })
}

/// The region a zone belongs to.
#[must_use]
pub fn zone_region<'a>(platform: &'a Platform, zone: &str) -> Option<&'a str> {
    platform
        .regions
        .iter()
        .find(|(_, r)| r.zones.iter().any(|z| z == zone))
        .map(|(name, _)| name.as_str())
}

/// Refuses a context not in `safety.allow.kube-contexts`.
///
/// # Errors
///
/// [`KubeError::NotAllowed`].
pub fn check_allowed(platform: &Platform, context: &str) -> Result<(), KubeError> {
    let allowed = &platform.safety.allow.kube_contexts;
    if allowed.iter().any(|c| c == context) {
        Ok(())
    } else {
        Err(KubeError::NotAllowed {
            context: context.to_owned(),
            allowed: if allowed.is_empty() {
                "none".to_owned()
            } else {
                allowed.join(", ")
            },
        })
    }
}
