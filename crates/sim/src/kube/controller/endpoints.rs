//! The endpoints and endpoint-slice controllers: every service with a selector gets an
//! `Endpoints` object of its name and `EndpointSlice`s (`discovery.k8s.io/v1`) listing the IPs
//! of the pods it selects, Ready ones as addresses, the others as not-ready addresses, with each
//! service port resolved to the pod's container port (by number, or by the port's name).
//! Services without a selector keep the endpoints their owner writes.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use serde_json::{Value, json};

use super::super::ZONE_LABEL;
use super::super::resources::{ENDPOINTS, ENDPOINTSLICES, NODES, PODS, SERVICES};
use super::super::selector::LabelSelector;
use super::super::store::{Store, labels_of, name_of, namespace_of, suffix};
use super::{Controller, fnv, pod_ready};

/// The label that names an endpoint slice's service.
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";
/// The label of the slices this controller manages.
pub const MANAGED_BY_LABEL: &str = "endpointslice.kubernetes.io/managed-by";
/// The value of [`MANAGED_BY_LABEL`] on the slices this controller manages.
pub const MANAGED_BY: &str = "endpointslice-controller.k8s.io";

/// A service port resolved on one pod: (name, port, protocol).
type Port = (String, i64, String);

/// The container port a service port targets on `pod`, or None when the pod has no port of
/// that name.
fn resolve(service_port: &Value, pod: &Value) -> Option<Port> {
    let name = service_port["name"].as_str().unwrap_or_default().to_owned();
    let protocol = service_port["protocol"]
        .as_str()
        .unwrap_or("TCP")
        .to_owned();
    let port = match &service_port["targetPort"] {
        Value::Number(n) => n.as_i64()?,
        Value::String(target) => pod["spec"]["containers"]
            .as_array()?
            .iter()
            .flat_map(|c| c["ports"].as_array().cloned().unwrap_or_default())
            .find(|p| p["name"] == target.as_str())?["containerPort"]
            .as_i64()?,
        _ => service_port["port"].as_i64()?,
    };
    Some((name, port, protocol))
}

impl Controller {
    /// Writes the endpoints and slices of every service with a selector; deletes the ones of
    /// services that are gone or lost their selector.
    pub(super) fn sync_endpoints(&mut self, store: &mut Store) {
        let services: Vec<Arc<Value>> = store.list(SERVICES, None).cloned().collect();
        let zones: HashMap<String, String> = store
            .list(NODES, None)
            .map(|n| {
                let zone = n["metadata"]["labels"][ZONE_LABEL]
                    .as_str()
                    .unwrap_or_default();
                (name_of(n).to_owned(), zone.to_owned())
            })
            .collect();
        let mut managed: HashSet<(String, String)> = HashSet::new();
        for svc in &services {
            let selector = svc["spec"]["selector"]
                .as_object()
                .filter(|s| !s.is_empty());
            let Some(selector) = selector else { continue };
            if svc["spec"]["type"] == "ExternalName" {
                continue;
            }
            let (ns, name) = (namespace_of(svc).to_owned(), name_of(svc).to_owned());
            let sel = LabelSelector::from_object(&json!({"matchLabels": selector}));
            let publish_not_ready = svc["spec"]["publishNotReadyAddresses"] == true;
            let ports = svc["spec"]["ports"].as_array().cloned().unwrap_or_default();
            // Pods grouped by their resolved port set (a named target port may differ by pod).
            let mut groups: BTreeMap<Vec<Port>, Vec<Arc<Value>>> = BTreeMap::new();
            for pod in store.list(PODS, Some(&ns)) {
                if !sel.matches(labels_of(pod)) || pod["status"]["podIP"].as_str().is_none() {
                    continue;
                }
                let resolved: Option<Vec<Port>> = ports.iter().map(|p| resolve(p, pod)).collect();
                if let Some(resolved) = resolved {
                    groups.entry(resolved).or_default().push(pod.clone());
                }
            }
            let address = |pod: &Value| {
                json!({
                    "ip": pod["status"]["podIP"],
                    "nodeName": pod["spec"]["nodeName"],
                    "targetRef": {"kind": "Pod", "namespace": namespace_of(pod), "name": name_of(pod), "uid": pod["metadata"]["uid"]},
                })
            };
            let port_json = |ports: &[Port]| -> Vec<Value> {
                ports
                    .iter()
                    .map(|(n, p, proto)| {
                        let mut v = json!({"port": p, "protocol": proto});
                        if !n.is_empty() {
                            v["name"] = json!(n);
                        }
                        v
                    })
                    .collect()
            };
            let subsets: Vec<Value> = groups
                .iter()
                .map(|(ports, pods)| {
                    let (ready, not_ready): (Vec<&Arc<Value>>, Vec<&Arc<Value>>) =
                        pods.iter().partition(|p| publish_not_ready || pod_ready(p));
                    let mut subset = json!({"ports": port_json(ports)});
                    if !ready.is_empty() {
                        subset["addresses"] =
                            json!(ready.iter().map(|p| address(p)).collect::<Vec<_>>());
                    }
                    if !not_ready.is_empty() {
                        subset["notReadyAddresses"] =
                            json!(not_ready.iter().map(|p| address(p)).collect::<Vec<_>>());
                    }
                    subset
                })
                .collect();
            let labels = svc["metadata"]["labels"].clone();
            let mut endpoints = json!({"metadata": {"name": name, "namespace": ns}});
            if labels.is_object() {
                endpoints["metadata"]["labels"] = labels.clone();
            }
            if !subsets.is_empty() {
                endpoints["subsets"] = json!(subsets);
            }
            upsert(
                store,
                ENDPOINTS,
                &ns,
                &name,
                endpoints,
                &["subsets", "metadata.labels"],
            );
            self.endpoints_managed.insert((ns.clone(), name.clone()));
            let uid = svc["metadata"]["uid"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            let slice_groups: Vec<(Vec<Port>, Vec<Arc<Value>>)> = if groups.is_empty() {
                vec![(Vec::new(), Vec::new())]
            } else {
                groups.into_iter().collect()
            };
            for (i, (ports, pods)) in slice_groups.into_iter().enumerate() {
                let slice_name = format!("{name}-{}", suffix(fnv(format!("{uid}/{i}").as_bytes())));
                let mut slice_labels = labels.as_object().cloned().unwrap_or_default();
                slice_labels.insert(SERVICE_NAME_LABEL.to_owned(), json!(name));
                slice_labels.insert(MANAGED_BY_LABEL.to_owned(), json!(MANAGED_BY));
                let endpoints: Vec<Value> = pods
                    .iter()
                    .map(|pod| {
                        let ready = pod_ready(pod);
                        let node = pod["spec"]["nodeName"].as_str().unwrap_or_default();
                        let mut e = json!({
                            "addresses": [pod["status"]["podIP"]],
                            "conditions": {"ready": ready || publish_not_ready, "serving": ready, "terminating": false},
                            "nodeName": node,
                            "targetRef": {"kind": "Pod", "namespace": namespace_of(pod), "name": name_of(pod), "uid": pod["metadata"]["uid"]},
                        });
                        if let Some(zone) = zones.get(node).filter(|z| !z.is_empty()) {
                            e["zone"] = json!(zone);
                        }
                        e
                    })
                    .collect();
                let slice = json!({
                    "metadata": {
                        "name": slice_name,
                        "namespace": ns,
                        "generateName": format!("{name}-"),
                        "labels": slice_labels,
                        "ownerReferences": [{"apiVersion": "v1", "kind": "Service", "name": name, "uid": uid, "controller": true, "blockOwnerDeletion": true}],
                    },
                    "addressType": "IPv4",
                    "endpoints": endpoints,
                    "ports": port_json(&ports),
                });
                upsert(
                    store,
                    ENDPOINTSLICES,
                    &ns,
                    &slice_name,
                    slice,
                    &["endpoints", "ports", "metadata.labels"],
                );
                managed.insert((ns.clone(), slice_name));
            }
        }
        // Slices this controller wrote whose group is gone, and endpoints of gone services.
        let stale: Vec<(String, String)> = store
            .list(ENDPOINTSLICES, None)
            .filter(|s| s["metadata"]["labels"][MANAGED_BY_LABEL] == MANAGED_BY)
            .filter(|s| !managed.contains(&(namespace_of(s).to_owned(), name_of(s).to_owned())))
            .map(|s| (namespace_of(s).to_owned(), name_of(s).to_owned()))
            .collect();
        for (ns, name) in stale {
            let _ = store.delete(ENDPOINTSLICES, &ns, &name, None);
        }
        let wanted: HashSet<(String, String)> = services
            .iter()
            .filter(|s| {
                s["spec"]["selector"]
                    .as_object()
                    .is_some_and(|m| !m.is_empty())
            })
            .map(|s| (namespace_of(s).to_owned(), name_of(s).to_owned()))
            .collect();
        let gone: Vec<(String, String)> = self
            .endpoints_managed
            .iter()
            .filter(|k| !wanted.contains(*k))
            .cloned()
            .collect();
        for (ns, name) in gone {
            self.endpoints_managed.remove(&(ns.clone(), name.clone()));
            let _ = store.delete(ENDPOINTS, &ns, &name, None);
        }
    }
}

/// Creates `want`, or copies its `fields` (dotted paths) onto the stored object.
fn upsert(store: &mut Store, res: usize, ns: &str, name: &str, want: Value, fields: &[&str]) {
    if store.get(res, ns, name).is_none() {
        let _ = store.create(res, ns, want);
        return;
    }
    let _ = store.modify(res, ns, name, |obj| {
        for field in fields {
            let (parent, key) = match field.split_once('.') {
                Some((a, b)) => (Some(a), b),
                None => (None, *field),
            };
            let source = parent.map_or(&want, |p| &want[p]).get(key).cloned();
            let target = match parent {
                Some(p) => &mut obj[p],
                None => &mut *obj,
            };
            match (source, target.as_object_mut()) {
                (Some(v), _) => target[key] = v,
                (None, Some(o)) => {
                    o.remove(key);
                }
                (None, None) => {}
            }
        }
        Ok(())
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn named_target_ports_resolve_on_the_pod() {
        let pod =
            json!({"spec": {"containers": [{"ports": [{"name": "http", "containerPort": 8080}]}]}});
        assert_eq!(
            resolve(
                &json!({"port": 80, "targetPort": "http", "protocol": "TCP"}),
                &pod
            ),
            Some((String::new(), 8080, "TCP".to_owned()))
        );
        assert_eq!(
            resolve(&json!({"port": 80, "targetPort": "grpc"}), &pod),
            None
        );
        assert_eq!(
            resolve(
                &json!({"name": "web", "port": 80, "targetPort": 9000}),
                &pod
            ),
            Some(("web".to_owned(), 9000, "TCP".to_owned()))
        );
    }
}
