//! The embedded Atlas Administration API as tests start it: one project, one cluster over an
//! embedded replica set.

use std::sync::Arc;

use firedrill_core::clock::Clock;
use firedrill_sim::atlas::{AtlasApi, AtlasSpec, ClusterSpec, Limits, RegionSpec, Timing};
use firedrill_sim::mongo::ReplicaSet;

/// The project id of [`one_cluster`].
pub const PROJECT: &str = "5f1d7a3c2b4e6f8091a2b3c4";

/// Project [`PROJECT`] with one GCP cluster `prod-1` over `set`, in `regions` (Atlas name,
/// region tag, priority); no API keys or service accounts yet, default timing and limits.
#[must_use]
pub fn one_cluster(set: &Arc<ReplicaSet>, regions: &[(&str, &str, i64)]) -> AtlasSpec {
    AtlasSpec {
        project: PROJECT.into(),
        clusters: vec![ClusterSpec {
            name: "prod-1".into(),
            set: Arc::clone(set),
            provider: "GCP".into(),
            regions: regions
                .iter()
                .map(|(atlas, tag, priority)| RegionSpec {
                    atlas: (*atlas).into(),
                    tag: (*tag).into(),
                    priority: *priority,
                })
                .collect(),
        }],
        keys: vec![],
        accounts: vec![],
        timing: Timing::default(),
        limits: Limits::default(),
        seed: 3,
    }
}

/// Starts `spec` on a loopback port.
///
/// # Panics
///
/// When the API cannot start.
pub async fn start(spec: AtlasSpec, clock: Clock) -> AtlasApi {
    AtlasApi::start(spec, clock, "127.0.0.1:0".parse().expect("an address"))
        .await
        .expect("the embedded Atlas API starts")
}
