//! The node lifecycle controller: a node whose Ready condition is not True gets the NoSchedule and
//! NoExecute taints `node.kubernetes.io/not-ready` (False) or `unreachable` (Unknown); a Ready
//! node loses them.

use serde_json::{Value, json};

use super::super::resources::NODES;
use super::super::store::{Store, name_of};
use super::Controller;
impl Controller {
    /// `node.kubernetes.io/unreachable` or `not-ready`; Ready nodes lose them.
    pub(super) fn node_lifecycle(&mut self, store: &mut Store) {
        let stamp = store.now_rfc3339();
        let nodes: Vec<(String, Option<&'static str>, bool)> = store
            .list(NODES, None)
            .map(|n| {
                let status = n["status"]["conditions"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find(|c| c["type"] == "Ready")
                    .and_then(|c| c["status"].as_str())
                    .unwrap_or("Unknown");
                let key = match status {
                    "True" => None,
                    "False" => Some("node.kubernetes.io/not-ready"),
                    _ => Some("node.kubernetes.io/unreachable"),
                };
                let lifecycle_taints: Vec<(&str, &str)> = n["spec"]["taints"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|t| Some((t["key"].as_str()?, t["effect"].as_str()?)))
                    .filter(|(k, _)| {
                        *k == "node.kubernetes.io/not-ready"
                            || *k == "node.kubernetes.io/unreachable"
                    })
                    .collect();
                let settled = match key {
                    None => lifecycle_taints.is_empty(),
                    Some(k) => {
                        lifecycle_taints.iter().all(|(tk, _)| *tk == k)
                            && ["NoSchedule", "NoExecute"]
                                .iter()
                                .all(|e| lifecycle_taints.contains(&(k, *e)))
                    }
                };
                (name_of(n).to_owned(), key, settled)
            })
            .collect();
        // Most passes change no node: decide read-only, copy only the nodes that change.
        for (name, want, _) in nodes.into_iter().filter(|(_, _, settled)| !settled) {
            if let Some(node) = store.get(NODES, "", &name).cloned() {
                let (reason, message) = match want {
                    Some(_) => (
                        "NodeNotReady",
                        format!("Node {name} status is now: NodeNotReady"),
                    ),
                    None => ("NodeReady", format!("Node {name} status is now: NodeReady")),
                };
                self.emit(store, &node, "Normal", reason, message, "node-controller");
            }
            let _ = store.modify(NODES, "", &name, |node| {
                let mut taints = node["spec"]["taints"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
                let before = taints.len();
                taints.retain(|t| {
                    let k = t["key"].as_str().unwrap_or_default();
                    !(k == "node.kubernetes.io/not-ready" || k == "node.kubernetes.io/unreachable")
                        || Some(k) == want
                });
                let mut changed = taints.len() != before;
                if let Some(key) = want {
                    for effect in ["NoSchedule", "NoExecute"] {
                        if !taints
                            .iter()
                            .any(|t| t["key"] == key && t["effect"] == effect)
                        {
                            let mut t = json!({"key": key, "effect": effect});
                            if effect == "NoExecute" {
                                t["timeAdded"] = json!(stamp);
                            }
                            taints.push(t);
                            changed = true;
                        }
                    }
                }
                if changed {
                    if taints.is_empty() {
                        if let Some(spec) = node["spec"].as_object_mut() {
                            spec.remove("taints");
                        }
                    } else {
                        node["spec"]["taints"] = Value::Array(taints);
                    }
                }
                Ok(())
            });
        }
    }
}
