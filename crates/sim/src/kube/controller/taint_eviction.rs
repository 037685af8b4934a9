//! The taint eviction controller: pods on a node that is gone, or that carries a NoExecute taint
//! the pod does not tolerate (or tolerates only for tolerationSeconds, which have passed), are
//! evicted.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use serde_json::Value;

use super::super::resources::{NODES, PODS};
use super::super::store::{Store, name_of, namespace_of};
use super::{Controller, TaintKey};
use firedrill_core::clock::PlatformTime;
/// Whether `tolerations` tolerate `taint`: `None` if not, `Some(None)` forever, `Some(Some(s))`
/// for `s` seconds.
pub(super) fn tolerates(tolerations: &[Value], taint: &Value) -> Option<Option<i64>> {
    tolerations.iter().find_map(|t| {
        let key = t["key"].as_str().unwrap_or_default();
        let op = t["operator"].as_str().unwrap_or("Equal");
        let effect = t["effect"].as_str().unwrap_or_default();
        let key_ok =
            (key.is_empty() && op == "Exists") || key == taint["key"].as_str().unwrap_or_default();
        let value_ok = op == "Exists"
            || t["value"].as_str().unwrap_or_default()
                == taint["value"].as_str().unwrap_or_default();
        let effect_ok = effect.is_empty() || effect == taint["effect"].as_str().unwrap_or_default();
        (key_ok && value_ok && effect_ok).then(|| t["tolerationSeconds"].as_i64())
    })
}

fn taint_key(node: &str, taint: &Value) -> TaintKey {
    let field = |k: &str| taint[k].as_str().unwrap_or_default().to_owned();
    (node.to_owned(), field("key"), field("effect"))
}

impl Controller {
    /// Evicts pods from nodes that are gone or carry a NoExecute taint the pod does not
    /// tolerate (or tolerates only for tolerationSeconds, which have passed). Returns when the
    /// next toleration runs out.
    pub(super) fn evict_from_tainted_nodes(
        &mut self,
        store: &mut Store,
        now: PlatformTime,
    ) -> Option<PlatformTime> {
        let nodes: HashMap<String, Vec<Value>> = store
            .list(NODES, None)
            .map(|n| {
                let taints = n["spec"]["taints"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|t| t["effect"] == "NoExecute")
                    .cloned()
                    .collect();
                (name_of(n).to_owned(), taints)
            })
            .collect();
        let current: HashSet<TaintKey> = nodes
            .iter()
            .flat_map(|(node, taints)| taints.iter().map(|t| taint_key(node, t)))
            .collect();
        self.taints_seen.retain(|k, _| current.contains(k));
        for k in current {
            self.taints_seen.entry(k).or_insert(now);
        }
        let mut next: Option<PlatformTime> = None;
        let mut evict = Vec::new();
        for pod in store.list(PODS, None) {
            let Some(node) = pod["spec"]["nodeName"].as_str() else {
                continue;
            };
            let Some(taints) = nodes.get(node) else {
                evict.push((namespace_of(pod).to_owned(), name_of(pod).to_owned()));
                continue;
            };
            if taints.is_empty() {
                continue;
            }
            let tolerations = pod["spec"]["tolerations"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            for taint in taints {
                let due = match tolerates(&tolerations, taint) {
                    None => Some(now),
                    Some(None) => None,
                    Some(Some(secs)) => {
                        // When this controller first saw the taint, in platform time (timeAdded
                        // is a wall-clock stamp of second precision: useless under compression).
                        let added = self
                            .taints_seen
                            .get(&taint_key(node, taint))
                            .copied()
                            .unwrap_or(now);
                        Some(added.plus(Duration::from_secs(u64::try_from(secs).unwrap_or(0))))
                    }
                };
                match due {
                    Some(t) if t <= now => {
                        evict.push((namespace_of(pod).to_owned(), name_of(pod).to_owned()));
                        break;
                    }
                    Some(t) => next = Some(next.map_or(t, |n| n.min(t))),
                    None => {}
                }
            }
        }
        for (ns, name) in evict {
            if let Some(pod) = store.get(PODS, &ns, &name).cloned() {
                let message = format!("Marking for deletion Pod {ns}/{name}");
                self.emit(
                    store,
                    &pod,
                    "Normal",
                    "TaintManagerEviction",
                    message,
                    "taint-eviction-controller",
                );
            }
            let _ = store.delete(PODS, &ns, &name, None);
        }
        self.forget_deleted(store, now);
        next
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tolerations_match_like_the_scheduler() {
        let taint = json!({"key": "zone-outage", "value": "a", "effect": "NoExecute"});
        assert_eq!(
            tolerates(&[json!({"operator": "Exists"})], &taint),
            Some(None)
        );
        assert_eq!(
            tolerates(
                &[json!({"key": "zone-outage", "operator": "Equal", "value": "b"})],
                &taint
            ),
            None
        );
        assert_eq!(
            tolerates(
                &[
                    json!({"key": "zone-outage", "value": "a", "effect": "NoExecute", "tolerationSeconds": 5})
                ],
                &taint
            ),
            Some(Some(5))
        );
        assert_eq!(
            tolerates(
                &[json!({"key": "zone-outage", "operator": "Exists", "effect": "NoSchedule"})],
                &taint
            ),
            None
        );
    }
}
