//! The garbage collector: replica sets whose deployment is gone, then pods whose replica set is
//! gone, are deleted (background propagation, the default for deployments).

use super::super::resources::{DEPLOYMENTS, PODS, REPLICASETS};
use super::super::store::{Store, name_of, namespace_of};
use super::Controller;
use firedrill_core::clock::PlatformTime;
impl Controller {
    /// The garbage collector: replica sets whose deployment is gone, then pods whose replica
    /// set is gone, are deleted (background propagation, the default for deployments).
    pub(super) fn collect_garbage(&mut self, store: &mut Store, now: PlatformTime) {
        let orphans = |store: &Store, res, owner_res, owner_kind: &str| -> Vec<(String, String)> {
            let owners: std::collections::HashSet<&str> = store
                .list(owner_res, None)
                .filter_map(|o| o["metadata"]["uid"].as_str())
                .collect();
            store
                .list(res, None)
                .filter(|o| {
                    let owner = &o["metadata"]["ownerReferences"][0];
                    owner["kind"] == owner_kind
                        && owner["controller"] == true
                        && owner["uid"].as_str().is_some_and(|u| !owners.contains(u))
                })
                .map(|o| (namespace_of(o).to_owned(), name_of(o).to_owned()))
                .collect()
        };
        for (ns, name) in orphans(store, REPLICASETS, DEPLOYMENTS, "Deployment") {
            let _ = store.delete(REPLICASETS, &ns, &name, None);
        }
        let pods = orphans(store, PODS, REPLICASETS, "ReplicaSet");
        for (ns, name) in &pods {
            let _ = store.delete(PODS, ns, name, None);
        }
        if !pods.is_empty() {
            self.forget_deleted(store, now);
        }
    }
}
