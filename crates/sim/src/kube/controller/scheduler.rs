//! The scheduler: every unscheduled pod is bound to a Ready, uncordoned node whose taints it
//! tolerates and whose labels match its node selector and required node affinity, spreading each
//! owner's pods over zones, within each node's pod capacity.

use std::collections::{BTreeMap, HashMap};

use serde_json::{Value, json};

use super::super::POOL_LABEL;
use super::super::resources::{NODES, PODS};
use super::super::store::{Store, labels_of, name_of, namespace_of};
use super::taint_eviction::tolerates;
use super::{Controller, condition_true};
use firedrill_core::clock::PlatformTime;
fn expression_matches(expr: &Value, labels: Option<&serde_json::Map<String, Value>>) -> bool {
    let key = expr["key"].as_str().unwrap_or_default();
    let got = labels.and_then(|l| l.get(key)).and_then(Value::as_str);
    let values: Vec<&str> = expr["values"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    let num = |s: &str| s.parse::<i64>().ok();
    match expr["operator"].as_str().unwrap_or_default() {
        "In" => got.is_some_and(|g| values.contains(&g)),
        "NotIn" => got.is_none_or(|g| !values.contains(&g)),
        "Exists" => got.is_some(),
        "DoesNotExist" => got.is_none(),
        "Gt" => got
            .and_then(num)
            .zip(values.first().and_then(|v| num(v)))
            .is_some_and(|(g, v)| g > v),
        "Lt" => got
            .and_then(num)
            .zip(values.first().and_then(|v| num(v)))
            .is_some_and(|(g, v)| g < v),
        _ => false,
    }
}

struct NodeView {
    name: String,
    zone: String,
    ready: bool,
    schedulable: bool,
    labels: serde_json::Map<String, Value>,
    taints: Vec<Value>,
    ip: String,
    capacity: usize,
}

impl NodeView {
    fn of(node: &Value) -> Self {
        Self {
            name: name_of(node).to_owned(),
            zone: node["metadata"]["labels"]["topology.kubernetes.io/zone"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            ready: condition_true(node, "Ready"),
            schedulable: node["spec"]["unschedulable"].as_bool() != Some(true),
            labels: labels_of(node).cloned().unwrap_or_default(),
            taints: node["spec"]["taints"]
                .as_array()
                .cloned()
                .unwrap_or_default(),
            ip: node["status"]["addresses"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|a| a["type"] == "InternalIP")
                .and_then(|a| a["address"].as_str())
                .unwrap_or_default()
                .to_owned(),
            capacity: node["status"]["allocatable"]["pods"]
                .as_str()
                .and_then(|p| p.parse().ok())
                .unwrap_or(110),
        }
    }

    /// Whether a pod (its spec) may be placed here (capacity aside).
    fn fits(&self, spec: &Value) -> bool {
        if !self.ready || !self.schedulable {
            return false;
        }
        let tolerations = spec["tolerations"].as_array().cloned().unwrap_or_default();
        let tainted = self.taints.iter().any(|t| {
            matches!(t["effect"].as_str(), Some("NoSchedule" | "NoExecute"))
                && tolerates(&tolerations, t).is_none()
        });
        if tainted {
            return false;
        }
        let selector_ok = spec["nodeSelector"]
            .as_object()
            .into_iter()
            .flatten()
            .all(|(k, v)| self.labels.get(k) == Some(v));
        if !selector_ok {
            return false;
        }
        let terms = spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"].as_array();
        match terms {
            Some(terms) if !terms.is_empty() => terms.iter().any(|term| {
                term["matchExpressions"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .all(|e| expression_matches(e, Some(&self.labels)))
            }),
            _ => true,
        }
    }
}

impl Controller {
    /// Binds every unscheduled pod to a node, spreading each owner's pods over zones.
    /// Returns how many pods of each node pool found no node.
    pub(super) fn schedule(
        &mut self,
        store: &mut Store,
        now: PlatformTime,
    ) -> BTreeMap<String, usize> {
        let mut unschedulable: BTreeMap<String, usize> = BTreeMap::new();
        let nodes: Vec<NodeView> = store.list(NODES, None).map(|n| NodeView::of(n)).collect();
        let mut per_node: HashMap<String, usize> = HashMap::new();
        let mut per_owner_zone: HashMap<(String, String, String), usize> = HashMap::new();
        let zone_of: HashMap<&str, &str> = nodes
            .iter()
            .map(|n| (n.name.as_str(), n.zone.as_str()))
            .collect();
        let owner = |p: &Value| -> (String, String) {
            let o = p["metadata"]["ownerReferences"][0]["name"]
                .as_str()
                .unwrap_or_else(|| name_of(p));
            (namespace_of(p).to_owned(), o.to_owned())
        };
        let mut pending = Vec::new();
        let mut started = Vec::new();
        for p in store.list(PODS, None) {
            if p["spec"]["nodeName"].is_null() {
                pending.push(p.clone());
            }
        }
        for p in store.list(PODS, None) {
            if let Some(node) = p["spec"]["nodeName"].as_str() {
                if !pending.is_empty() {
                    *per_node.entry(node.to_owned()).or_default() += 1;
                    let (ns, o) = owner(p);
                    let zone = zone_of.get(node).copied().unwrap_or_default().to_owned();
                    *per_owner_zone.entry((ns, o, zone)).or_default() += 1;
                }
                let uid = p["metadata"]["uid"].as_str().unwrap_or_default();
                if self.records.get(uid).is_none_or(|r| r.scheduled.is_none()) {
                    started.push(p.clone());
                }
            }
        }
        // Pods created with a node already set (not by the scheduler) start on that node.
        for p in started {
            let node = p["spec"]["nodeName"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            let zone = zone_of.get(node.as_str()).map(|z| (*z).to_owned());
            self.start(&p, node, zone, now);
        }
        let mut fit_cache: HashMap<String, Vec<usize>> = HashMap::new();
        for p in pending {
            let spec = &p["spec"];
            let key =
                json!([spec["tolerations"], spec["nodeSelector"], spec["affinity"]]).to_string();
            let fits = fit_cache
                .entry(key)
                .or_insert_with(|| (0..nodes.len()).filter(|&i| nodes[i].fits(spec)).collect());
            let (ns, o) = owner(&p);
            let name = name_of(&p).to_owned();
            let best = fits
                .iter()
                .copied()
                .filter(|&i| per_node.get(&nodes[i].name).copied().unwrap_or(0) < nodes[i].capacity)
                .min_by_key(|&i| {
                    let n = &nodes[i];
                    (
                        per_owner_zone
                            .get(&(ns.clone(), o.clone(), n.zone.clone()))
                            .copied()
                            .unwrap_or(0),
                        per_node.get(&n.name).copied().unwrap_or(0),
                        n.name.clone(),
                    )
                });
            let stamp = store.now_rfc3339();
            let Some(i) = best else {
                if let Some(pool) = spec["nodeSelector"][POOL_LABEL].as_str() {
                    *unschedulable.entry(pool.to_owned()).or_default() += 1;
                }
                let message = format!(
                    "0/{} nodes are available: no node is Ready, schedulable, untainted for this pod and matching its node selector.",
                    nodes.len()
                );
                let already = p["status"]["conditions"].as_array().is_some_and(|c| {
                    c.iter().any(|c| {
                        c["type"] == "PodScheduled"
                            && c["reason"] == "Unschedulable"
                            && c["message"] == message.as_str()
                    })
                });
                if !already {
                    let cond = json!({"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": message, "lastProbeTime": null, "lastTransitionTime": stamp});
                    let _ = store.modify(PODS, &ns, &name, |pod| {
                        pod["status"]["conditions"] = json!([cond]);
                        Ok(())
                    });
                    self.emit(
                        store,
                        &p,
                        "Warning",
                        "FailedScheduling",
                        message,
                        "default-scheduler",
                    );
                }
                continue;
            };
            let node = &nodes[i];
            *per_node.entry(node.name.clone()).or_default() += 1;
            *per_owner_zone
                .entry((ns.clone(), o.clone(), node.zone.clone()))
                .or_default() += 1;
            self.ip_counter = self.ip_counter.wrapping_add(1);
            let ip = format!(
                "10.{}.{}.{}",
                64 + ((self.ip_counter >> 16) & 0x3f),
                (self.ip_counter >> 8) & 0xff,
                self.ip_counter & 0xff
            );
            let bound = store.modify(PODS, &ns, &name, |pod| {
                pod["spec"]["nodeName"] = json!(node.name);
                let containers = pod["spec"]["containers"].as_array().cloned().unwrap_or_default();
                pod["status"] = json!({
                    "phase": "Pending",
                    "hostIP": node.ip,
                    "podIP": ip,
                    "podIPs": [{"ip": ip}],
                    "startTime": stamp,
                    "qosClass": "BestEffort",
                    "conditions": [
                        {"type": "PodReadyToStartContainers", "status": "False", "lastProbeTime": null, "lastTransitionTime": stamp},
                        {"type": "Initialized", "status": "True", "lastProbeTime": null, "lastTransitionTime": stamp},
                        {"type": "Ready", "status": "False", "reason": "ContainersNotReady", "message": "containers with unready status", "lastProbeTime": null, "lastTransitionTime": stamp},
                        {"type": "ContainersReady", "status": "False", "reason": "ContainersNotReady", "message": "containers with unready status", "lastProbeTime": null, "lastTransitionTime": stamp},
                        {"type": "PodScheduled", "status": "True", "lastProbeTime": null, "lastTransitionTime": stamp},
                    ],
                    "containerStatuses": containers.iter().map(|c| json!({
                        "name": c["name"], "image": c["image"], "imageID": "", "ready": false, "restartCount": 0, "started": false,
                        "state": {"waiting": {"reason": "ContainerCreating"}},
                    })).collect::<Vec<_>>(),
                });
                Ok(())
            });
            if let Ok(bound) = bound {
                self.start(&bound, node.name.clone(), Some(node.zone.clone()), now);
            }
        }
        unschedulable
    }
}
