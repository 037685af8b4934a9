//! The deployment controller: each deployment's replicas become a replica set per template and
//! its pods (a template change rolls pods over as the new ones turn Ready), and deployments and
//! replica sets get their status, with the Progressing condition's deadline.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use super::super::resources::{DEPLOYMENTS, PODS, REPLICASETS};
use super::super::store::{Store, name_of, namespace_of, suffix};
use super::{Controller, fnv, pod_ready, template_hash};
use firedrill_core::clock::PlatformTime;
impl Controller {
    fn hash_of(&mut self, d: &Value) -> String {
        let key = (
            d["metadata"]["uid"].as_str().unwrap_or_default().to_owned(),
            d["metadata"]["generation"].as_i64().unwrap_or(0),
        );
        self.hashes
            .entry(key)
            .or_insert_with(|| template_hash(&d["spec"]["template"]))
            .clone()
    }

    /// Replica sets and pods follow each deployment's replicas. A template change makes a new
    /// replica set; the old one's pods go as the new one's turn Ready (a rolling update).
    pub(super) fn sync_deployments(&mut self, store: &mut Store, now: PlatformTime) {
        let index = OwnerIndex::build(store);
        let deployments: Vec<Arc<Value>> = store.list(DEPLOYMENTS, None).cloned().collect();
        for d in deployments {
            let ns = namespace_of(&d).to_owned();
            let desired = usize::try_from(d["spec"]["replicas"].as_i64().unwrap_or(1)).unwrap_or(0);
            let hash = self.hash_of(&d);
            let rs_name = format!("{}-{hash}", name_of(&d));
            let rs_uid = self.ensure_replica_set(store, &d, &rs_name, &hash, desired);
            let mut current = index.pods(&ns, &rs_name);
            let new_ready = current.iter().filter(|p| pod_ready(p)).count();
            let mut doomed: Vec<Arc<Value>> = Vec::new();
            if current.len() > desired {
                // Delete the least useful first: unscheduled, then not ready, then the newest.
                current.sort_by_key(|p| {
                    (
                        p["spec"]["nodeName"].is_string(),
                        pod_ready(p),
                        std::cmp::Reverse(
                            p["metadata"]["creationTimestamp"]
                                .as_str()
                                .unwrap_or_default()
                                .to_owned(),
                        ),
                        std::cmp::Reverse(name_of(p).to_owned()),
                    )
                });
                doomed.extend(current.iter().take(current.len() - desired).cloned());
            }
            for (old_rs, old_pods) in index.old_replica_sets(store, &d, &rs_name) {
                let keep = desired.saturating_sub(new_ready).min(old_pods.len());
                let mut old_pods = old_pods;
                old_pods.sort_by_key(|p| (pod_ready(p), name_of(p).to_owned()));
                doomed.extend(old_pods.iter().take(old_pods.len() - keep).cloned());
                let _ = store.modify(REPLICASETS, &ns, &old_rs, |rs| {
                    rs["spec"]["replicas"] = json!(keep);
                    Ok(())
                });
            }
            for p in &doomed {
                let _ = store.delete(PODS, &ns, name_of(p), None);
            }
            if !doomed.is_empty() {
                self.forget_deleted(store, now);
            }
            for _ in current.len()..desired {
                self.create_pod(store, &d, &rs_name, &rs_uid, &hash, now);
            }
        }
    }

    fn ensure_replica_set(
        &mut self,
        store: &mut Store,
        d: &Value,
        rs_name: &str,
        hash: &str,
        desired: usize,
    ) -> String {
        let ns = namespace_of(d);
        if let Some(rs) = store.get(REPLICASETS, ns, rs_name) {
            let uid = rs["metadata"]["uid"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            let before = rs["spec"]["replicas"].as_u64().unwrap_or(0);
            let _ = store.modify(REPLICASETS, ns, rs_name, |rs| {
                rs["spec"]["replicas"] = json!(desired);
                Ok(())
            });
            if before != desired as u64 {
                let way = if (desired as u64) > before {
                    "up"
                } else {
                    "down"
                };
                let message =
                    format!("Scaled {way} replica set {rs_name} from {before} to {desired}");
                self.emit(
                    store,
                    d,
                    "Normal",
                    "ScalingReplicaSet",
                    message,
                    "deployment-controller",
                );
            }
            return uid;
        }
        let revision = 1 + store
            .list(REPLICASETS, Some(ns))
            .filter(|rs| rs["metadata"]["ownerReferences"][0]["uid"] == d["metadata"]["uid"])
            .count();
        let _ = store.modify(DEPLOYMENTS, ns, name_of(d), |dep| {
            dep["metadata"]["annotations"]["deployment.kubernetes.io/revision"] =
                json!(revision.to_string());
            Ok(())
        });
        let mut template = d["spec"]["template"].clone();
        template["metadata"]["labels"]["pod-template-hash"] = json!(hash);
        let mut selector = d["spec"]["selector"].clone();
        selector["matchLabels"]["pod-template-hash"] = json!(hash);
        let mut labels = template["metadata"]["labels"].clone();
        labels["pod-template-hash"] = json!(hash);
        let rs = json!({
            "metadata": {
                "name": rs_name,
                "namespace": ns,
                "labels": labels,
                "annotations": {"deployment.kubernetes.io/revision": revision.to_string()},
                "ownerReferences": [{
                    "apiVersion": "apps/v1", "kind": "Deployment", "name": name_of(d),
                    "uid": d["metadata"]["uid"], "controller": true, "blockOwnerDeletion": true,
                }],
            },
            "spec": {"replicas": desired, "selector": selector, "template": template},
        });
        let uid = store
            .create(REPLICASETS, ns, rs)
            .map(|rs| {
                rs["metadata"]["uid"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned()
            })
            .unwrap_or_default();
        if desired > 0 && !uid.is_empty() {
            // The real deployment controller reports the new replica set's first scale-up too.
            let message = format!("Scaled up replica set {rs_name} from 0 to {desired}");
            self.emit(
                store,
                d,
                "Normal",
                "ScalingReplicaSet",
                message,
                "deployment-controller",
            );
        }
        uid
    }

    fn create_pod(
        &mut self,
        store: &mut Store,
        d: &Value,
        rs_name: &str,
        rs_uid: &str,
        hash: &str,
        now: PlatformTime,
    ) {
        let (ns, deploy) = (namespace_of(d).to_owned(), name_of(d).to_owned());
        let counter = self
            .name_counters
            .entry((ns.clone(), deploy.clone()))
            .or_insert(0);
        let name = loop {
            *counter += 1;
            let h = fnv(format!("{}/{ns}/{deploy}/{counter}", self.seed).as_bytes());
            let candidate = format!("{rs_name}-{}", suffix(h));
            if store.get(PODS, &ns, &candidate).is_none() {
                break candidate;
            }
        };
        let template = &d["spec"]["template"];
        let mut labels = template["metadata"]["labels"].clone();
        labels["pod-template-hash"] = json!(hash);
        let mut pod = json!({
            "metadata": {
                "name": name,
                "generateName": format!("{rs_name}-"),
                "namespace": ns,
                "labels": labels,
                "ownerReferences": [{
                    "apiVersion": "apps/v1", "kind": "ReplicaSet", "name": rs_name,
                    "uid": rs_uid, "controller": true, "blockOwnerDeletion": true,
                }],
            },
            "spec": template["spec"].clone(),
        });
        if let Some(annotations) = template["metadata"].get("annotations") {
            pod["metadata"]["annotations"] = annotations.clone();
        }
        if let Ok(created) = store.create(PODS, &ns, pod) {
            self.track(&created, Some(deploy), now);
        }
    }

    /// runs out.
    pub(super) fn update_deployment_status(
        &mut self,
        store: &mut Store,
        now: PlatformTime,
    ) -> Option<PlatformTime> {
        let stamp = store.now_rfc3339();
        let deployments: Vec<Arc<Value>> = store.list(DEPLOYMENTS, None).cloned().collect();
        let mut next: Option<PlatformTime> = None;
        let index = OwnerIndex::build(store);
        for d in deployments {
            let (ns, name) = (namespace_of(&d).to_owned(), name_of(&d).to_owned());
            let hash = self.hash_of(&d);
            let rs_name = format!("{name}-{hash}");
            let current = index.pods(&ns, &rs_name);
            let old_pods: Vec<Arc<Value>> = index
                .old_replica_sets(store, &d, &rs_name)
                .into_iter()
                .flat_map(|(_, p)| p)
                .collect();
            let updated = current.len() as i64;
            let replicas = updated + old_pods.len() as i64;
            let ready = current
                .iter()
                .chain(old_pods.iter())
                .filter(|p| pod_ready(p))
                .count() as i64;
            let desired = d["spec"]["replicas"].as_i64().unwrap_or(1);
            let max_unavailable = match &d["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] {
                Value::Number(n) => n.as_i64().unwrap_or(0),
                Value::String(s) => {
                    s.trim_end_matches('%').parse::<i64>().unwrap_or(25) * desired / 100
                }
                _ => desired / 4,
            };
            let complete = replicas == desired && updated == desired && ready == desired;
            let deadline = Duration::from_secs(
                u64::try_from(d["spec"]["progressDeadlineSeconds"].as_i64().unwrap_or(600))
                    .unwrap_or(600),
            );
            let old = &d["status"];
            let old_cond = |ty: &str| {
                old["conditions"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find(|c| c["type"] == ty)
                    .cloned()
            };
            let old_progress = old_cond("Progressing");
            let progressed = old["availableReplicas"].as_i64().unwrap_or(0) != ready
                || old["replicas"].as_i64().unwrap_or(0) != replicas
                || old["observedGeneration"] != d["metadata"]["generation"];
            let (p_status, p_reason, p_message) = if complete {
                (
                    "True",
                    "NewReplicaSetAvailable",
                    format!("ReplicaSet \"{rs_name}\" has successfully progressed."),
                )
            } else {
                // The last progress, in platform time (lastUpdateTime is a wall-clock stamp).
                let uid = d["metadata"]["uid"].as_str().unwrap_or_default().to_owned();
                let stalled = !progressed
                    && old_progress
                        .as_ref()
                        .is_some_and(|c| c["reason"] != "NewReplicaSetAvailable");
                let since = match self.progress_since.get(&uid) {
                    Some(t) if stalled => *t,
                    _ => {
                        self.progress_since.insert(uid, now);
                        now
                    }
                };
                let due = since.plus(deadline);
                if due <= now {
                    (
                        "False",
                        "ProgressDeadlineExceeded",
                        format!("ReplicaSet \"{rs_name}\" has timed out progressing."),
                    )
                } else {
                    next = Some(next.map_or(due, |n| n.min(due)));
                    (
                        "True",
                        "ReplicaSetUpdated",
                        format!("ReplicaSet \"{rs_name}\" is progressing."),
                    )
                }
            };
            let available = ready >= desired - max_unavailable;
            let (a_status, a_reason, a_message) = if available {
                (
                    "True",
                    "MinimumReplicasAvailable",
                    "Deployment has minimum availability.",
                )
            } else {
                (
                    "False",
                    "MinimumReplicasUnavailable",
                    "Deployment does not have minimum availability.",
                )
            };
            let cond = |ty: &str, status: &str, reason: &str, message: &str, touch: bool| {
                let prev = old_cond(ty);
                let same = prev
                    .as_ref()
                    .is_some_and(|c| c["status"] == status && c["reason"] == reason);
                let transition = prev
                    .as_ref()
                    .filter(|c| c["status"] == status)
                    .map_or(json!(stamp), |c| c["lastTransitionTime"].clone());
                let update = if same && !touch {
                    prev.as_ref()
                        .map_or(json!(stamp), |c| c["lastUpdateTime"].clone())
                } else {
                    json!(stamp)
                };
                json!({"type": ty, "status": status, "lastUpdateTime": update, "lastTransitionTime": transition, "reason": reason, "message": message})
            };
            let mut status = json!({
                "observedGeneration": d["metadata"]["generation"],
                "replicas": replicas,
                "updatedReplicas": updated,
                "readyReplicas": ready,
                "availableReplicas": ready,
                "conditions": [
                    cond("Available", a_status, a_reason, a_message, false),
                    cond("Progressing", p_status, p_reason, &p_message, progressed && !complete),
                ],
            });
            if desired - ready > 0 {
                status["unavailableReplicas"] = json!(desired - ready);
            }
            if ready == 0
                && let Some(s) = status.as_object_mut()
            {
                s.remove("readyReplicas");
                s.remove("availableReplicas");
            }
            let _ = store.modify(DEPLOYMENTS, &ns, &name, |dep| {
                dep["status"] = status;
                Ok(())
            });
            let mut sets = index.old_replica_sets(store, &d, &rs_name);
            sets.push((rs_name, current));
            for (rs_name, pods) in sets {
                let count = pods.len();
                let ready = pods.iter().filter(|p| pod_ready(p)).count();
                let _ = store.modify(REPLICASETS, &ns, &rs_name, |rs| {
                    let generation = rs["metadata"]["generation"].clone();
                    rs["status"] = json!({"replicas": count, "fullyLabeledReplicas": count, "readyReplicas": ready, "availableReplicas": ready, "observedGeneration": generation});
                    Ok(())
                });
            }
        }
        next
    }
}

/// The pods of each replica set, from one scan of the pods (so a pass costs O(pods), not
/// O(deployments × pods)).
struct OwnerIndex {
    by_rs: HashMap<(String, String), Vec<Arc<Value>>>,
}

impl OwnerIndex {
    fn build(store: &Store) -> Self {
        let mut by_rs: HashMap<(String, String), Vec<Arc<Value>>> = HashMap::new();
        for p in store.list(PODS, None) {
            let owner = &p["metadata"]["ownerReferences"][0];
            if owner["kind"] == "ReplicaSet"
                && let Some(rs) = owner["name"].as_str()
            {
                by_rs
                    .entry((namespace_of(p).to_owned(), rs.to_owned()))
                    .or_default()
                    .push(p.clone());
            }
        }
        Self { by_rs }
    }

    fn pods(&self, ns: &str, rs: &str) -> Vec<Arc<Value>> {
        self.by_rs
            .get(&(ns.to_owned(), rs.to_owned()))
            .cloned()
            .unwrap_or_default()
    }

    /// The deployment's other replica sets (older templates) and their pods.
    fn old_replica_sets(
        &self,
        store: &Store,
        d: &Value,
        current: &str,
    ) -> Vec<(String, Vec<Arc<Value>>)> {
        let ns = namespace_of(d);
        store
            .list(REPLICASETS, Some(ns))
            .filter(|rs| {
                name_of(rs) != current
                    && rs["metadata"]["ownerReferences"][0]["uid"] == d["metadata"]["uid"]
            })
            .map(|rs| (name_of(rs).to_owned(), self.pods(ns, name_of(rs))))
            .collect()
    }
}
