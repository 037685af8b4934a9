//! What a namespace looked like at scenario start (pods by uid with their restart counts,
//! deployments' replicas), and what changed since: the proof that a drill left it alone.

use std::collections::BTreeMap;

use ::kube::api::{Api, ListParams};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;

use super::{Conn, KubeError};

/// One pod as the snapshot records it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PodState {
    /// `metadata.uid`: a replacement pod with the same name has another.
    pub uid: String,
    /// Sum of the containers' restart counts.
    pub restarts: i32,
    /// Whether it is being deleted.
    pub deleting: bool,
}

/// One namespace of one cluster at an instant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NamespaceSnapshot {
    /// The kube context.
    pub context: String,
    /// The namespace.
    pub namespace: String,
    /// Pods by name.
    pub pods: BTreeMap<String, PodState>,
    /// Deployments' `spec.replicas` by name.
    pub deployments: BTreeMap<String, i32>,
}

impl NamespaceSnapshot {
    /// What changed from `self` (the earlier snapshot) to `now`, one line per change: pods
    /// created, deleted (evicted, killed), replaced, restarted or being deleted, and
    /// deployments scaled, created or deleted. Empty when the namespace was left alone.
    #[must_use]
    pub fn changes(&self, now: &NamespaceSnapshot) -> Vec<String> {
        let ns = &self.namespace;
        let mut out = Vec::new();
        for (name, before) in &self.pods {
            match now.pods.get(name) {
                None => out.push(format!("pod {ns}/{name} was deleted")),
                Some(after) if after.uid != before.uid => {
                    out.push(format!("pod {ns}/{name} was replaced (new uid)"));
                }
                Some(after) => {
                    if after.restarts > before.restarts {
                        out.push(format!(
                            "pod {ns}/{name} restarted {} times",
                            after.restarts - before.restarts
                        ));
                    }
                    if after.deleting && !before.deleting {
                        out.push(format!("pod {ns}/{name} is being deleted"));
                    }
                }
            }
        }
        for name in now.pods.keys().filter(|n| !self.pods.contains_key(*n)) {
            out.push(format!("pod {ns}/{name} was created"));
        }
        for (name, before) in &self.deployments {
            match now.deployments.get(name) {
                None => out.push(format!("deployment {ns}/{name} was deleted")),
                Some(after) if after != before => out.push(format!(
                    "deployment {ns}/{name} was scaled from {before} to {after} replicas"
                )),
                Some(_) => {}
            }
        }
        for name in now
            .deployments
            .keys()
            .filter(|n| !self.deployments.contains_key(*n))
        {
            out.push(format!("deployment {ns}/{name} was created"));
        }
        out
    }
}

impl Conn {
    /// The pods and deployments of `namespace` now.
    ///
    /// # Errors
    ///
    /// [`KubeError`] for a list.
    pub async fn snapshot(&self, namespace: &str) -> Result<NamespaceSnapshot, KubeError> {
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), namespace);
        let deployments: Api<Deployment> = Api::namespaced(self.client.clone(), namespace);
        let params = ListParams::default();
        let pod_list = self
            .call_api(self.call(namespace, "pods", "", "list"), || {
                pods.list(&params)
            })
            .await?;
        let deployment_list = self
            .call_api(self.call(namespace, "deployments", "", "list"), || {
                deployments.list(&params)
            })
            .await?;
        Ok(NamespaceSnapshot {
            context: self.context.clone(),
            namespace: namespace.to_owned(),
            pods: pod_list
                .items
                .into_iter()
                .filter_map(|p| {
                    let restarts = p
                        .status
                        .as_ref()
                        .and_then(|s| s.container_statuses.as_ref())
                        .map_or(0, |c| c.iter().map(|c| c.restart_count).sum());
                    Some((
                        p.metadata.name?,
                        PodState {
                            uid: p.metadata.uid.unwrap_or_default(),
                            restarts,
                            deleting: p.metadata.deletion_timestamp.is_some(),
                        },
                    ))
                })
                .collect(),
            deployments: deployment_list
                .items
                .into_iter()
                .filter_map(|d| {
                    Some((
                        d.metadata.name?,
                        d.spec.and_then(|s| s.replicas).unwrap_or(1),
                    ))
                })
                .collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(pods: &[(&str, &str, i32)], deployments: &[(&str, i32)]) -> NamespaceSnapshot {
        NamespaceSnapshot {
            context: "c".into(),
            namespace: "prod-2".into(),
            pods: pods
                .iter()
                .map(|(n, uid, r)| {
                    (
                        (*n).to_owned(),
                        PodState {
                            uid: (*uid).to_owned(),
                            restarts: *r,
                            deleting: false,
                        },
                    )
                })
                .collect(),
            deployments: deployments
                .iter()
                .map(|(n, r)| ((*n).to_owned(), *r))
                .collect(),
        }
    }

    #[test]
    fn an_untouched_namespace_has_no_changes_and_every_kind_of_touch_is_named() {
        let before = snap(
            &[("a", "1", 0), ("b", "2", 1), ("c", "3", 0)],
            &[("web", 3)],
        );
        assert!(before.changes(&before.clone()).is_empty());
        let after = snap(
            &[("a", "9", 0), ("b", "2", 3), ("d", "4", 0)],
            &[("web", 2)],
        );
        assert_eq!(
            before.changes(&after),
            [
                "pod prod-2/a was replaced (new uid)",
                "pod prod-2/b restarted 2 times",
                "pod prod-2/c was deleted",
                "pod prod-2/d was created",
                "deployment prod-2/web was scaled from 3 to 2 replicas",
            ]
        );
    }
}
