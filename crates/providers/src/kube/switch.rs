//! The traffic switch done inside a cluster (the kind setup's way): point a Service's selector,
//! an Ingress's backends or a ConfigMap key the front door reads at the other region. The old
//! values are read first and kept as a merge patch, so the undo puts back exactly what was
//! there (a key that did not exist is removed again).

use std::collections::BTreeMap;

use ::kube::api::{Api, Patch, PatchParams};
use k8s_openapi::api::core::v1::{ConfigMap, Service};
use k8s_openapi::api::networking::v1::Ingress;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{Conn, KubeError};

/// What a switch changes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum SwitchKind {
    /// Set these labels in a Service's selector (other selector labels stay).
    ServiceSelector {
        /// Label → value.
        labels: BTreeMap<String, String>,
    },
    /// Send every backend of an Ingress (each rule's paths and the default backend) to this
    /// Service (ports stay).
    IngressBackend {
        /// The Service name.
        service: String,
    },
    /// Set one key of a ConfigMap's data.
    ConfigMapKey {
        /// The key.
        key: String,
        /// The new value.
        value: String,
    },
}

/// One in-cluster traffic switch: an object and what to change in it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Switch {
    /// The namespace.
    pub namespace: String,
    /// The object's name.
    pub name: String,
    /// What changes.
    pub change: SwitchKind,
}

impl Switch {
    /// The Kubernetes kind of the object.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self.change {
            SwitchKind::ServiceSelector { .. } => "Service",
            SwitchKind::IngressBackend { .. } => "Ingress",
            SwitchKind::ConfigMapKey { .. } => "ConfigMap",
        }
    }

    /// The RBAC resource of the object.
    #[must_use]
    pub fn resource(&self) -> &'static str {
        match self.change {
            SwitchKind::ServiceSelector { .. } => "services",
            SwitchKind::IngressBackend { .. } => "ingresses",
            SwitchKind::ConfigMapKey { .. } => "configmaps",
        }
    }

    /// One line for plans and reports.
    #[must_use]
    pub fn describe(&self) -> String {
        let (ns, name) = (&self.namespace, &self.name);
        match &self.change {
            SwitchKind::ServiceSelector { labels } => format!(
                "the selector of Service {ns}/{name} ({})",
                labels
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(",")
            ),
            SwitchKind::IngressBackend { service } => {
                format!("the backends of Ingress {ns}/{name} (to Service {service})")
            }
            SwitchKind::ConfigMapKey { key, value } => {
                format!("key {key} of ConfigMap {ns}/{name} (= {value})")
            }
        }
    }

    /// The forward and restoring merge patches for an object that looks like `current`.
    ///
    /// # Errors
    ///
    /// `(problem, hint)` when the object has nothing to switch (an Ingress without backends).
    pub fn patches(&self, current: &Value) -> Result<(Value, Value), (String, &'static str)> {
        match &self.change {
            SwitchKind::ServiceSelector { labels } => {
                let old = &current["spec"]["selector"];
                let restore: serde_json::Map<String, Value> = labels
                    .keys()
                    .map(|k| (k.clone(), old.get(k).cloned().unwrap_or(Value::Null)))
                    .collect();
                Ok((
                    json!({"spec": {"selector": labels}}),
                    json!({"spec": {"selector": restore}}),
                ))
            }
            SwitchKind::IngressBackend { service } => {
                let spec = &current["spec"];
                let mut rules = spec["rules"].clone();
                let mut default = spec["defaultBackend"].clone();
                let mut found = 0;
                let mut point = |backend: &mut Value| {
                    if let Some(svc) = backend.get_mut("service") {
                        svc["name"] = json!(service);
                        found += 1;
                    }
                };
                if let Some(rules) = rules.as_array_mut() {
                    for rule in rules {
                        if let Some(paths) = rule["http"]["paths"].as_array_mut() {
                            for path in paths {
                                point(&mut path["backend"]);
                            }
                        }
                    }
                }
                if default.is_object() {
                    point(&mut default);
                }
                if found == 0 {
                    return Err((
                        "it has no backend that names a Service".to_owned(),
                        "give the Ingress a rule or defaultBackend with service.name",
                    ));
                }
                let mut forward = json!({"spec": {}});
                let mut restore = json!({"spec": {}});
                if rules.is_array() {
                    forward["spec"]["rules"] = rules;
                    restore["spec"]["rules"] = spec["rules"].clone();
                }
                if default.is_object() {
                    forward["spec"]["defaultBackend"] = default;
                    restore["spec"]["defaultBackend"] = spec["defaultBackend"].clone();
                }
                Ok((forward, restore))
            }
            SwitchKind::ConfigMapKey { key, value } => {
                let old = current["data"].get(key).cloned().unwrap_or(Value::Null);
                Ok((json!({"data": {key: value}}), json!({"data": {key: old}})))
            }
        }
    }
}

impl Conn {
    /// Reads the switch's object and returns the forward and the restoring merge patch (the
    /// restoring one goes to the ledger before the forward one is applied).
    ///
    /// # Errors
    ///
    /// [`KubeError`] for the get, [`KubeError::Switch`] when there is nothing to switch.
    pub async fn prepare_switch(&self, switch: &Switch) -> Result<(Value, Value), KubeError> {
        let (ns, name) = (switch.namespace.as_str(), switch.name.as_str());
        let call = self.call(ns, switch.resource(), name, "get");
        let current = match switch.change {
            SwitchKind::ServiceSelector { .. } => {
                let api: Api<Service> = Api::namespaced(self.client.clone(), ns);
                serde_json::to_value(self.call_api(call, || api.get(name)).await?)
            }
            SwitchKind::IngressBackend { .. } => {
                let api: Api<Ingress> = Api::namespaced(self.client.clone(), ns);
                serde_json::to_value(self.call_api(call, || api.get(name)).await?)
            }
            SwitchKind::ConfigMapKey { .. } => {
                let api: Api<ConfigMap> = Api::namespaced(self.client.clone(), ns);
                serde_json::to_value(self.call_api(call, || api.get(name)).await?)
            }
        }
        .unwrap_or(Value::Null);
        switch
            .patches(&current)
            .map_err(|(problem, hint)| KubeError::Switch {
                call: Box::new(self.call(ns, switch.kind(), name, "patch").owned()),
                problem,
                hint,
            })
    }

    /// Applies a merge patch to the switch's object: the forward patch of
    /// [`Conn::prepare_switch`], or the restoring one as the undo.
    ///
    /// # Errors
    ///
    /// [`KubeError`] naming the object.
    pub async fn restore(&self, switch: &Switch, patch: &Value) -> Result<(), KubeError> {
        let (ns, name) = (switch.namespace.as_str(), switch.name.as_str());
        let call = self.call(ns, switch.resource(), name, "patch");
        let params = PatchParams::default();
        let patch = Patch::Merge(patch);
        match switch.change {
            SwitchKind::ServiceSelector { .. } => {
                let api: Api<Service> = Api::namespaced(self.client.clone(), ns);
                self.call_api(call, || api.patch(name, &params, &patch))
                    .await
                    .map(|_| ())
            }
            SwitchKind::IngressBackend { .. } => {
                let api: Api<Ingress> = Api::namespaced(self.client.clone(), ns);
                self.call_api(call, || api.patch(name, &params, &patch))
                    .await
                    .map(|_| ())
            }
            SwitchKind::ConfigMapKey { .. } => {
                let api: Api<ConfigMap> = Api::namespaced(self.client.clone(), ns);
                self.call_api(call, || api.patch(name, &params, &patch))
                    .await
                    .map(|_| ())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_selector_switch_restores_old_values_and_removes_added_keys() {
        let s = Switch {
            namespace: "prod-1".into(),
            name: "front".into(),
            change: SwitchKind::ServiceSelector {
                labels: [
                    ("region".into(), "us-west2".into()),
                    ("track".into(), "b".into()),
                ]
                .into(),
            },
        };
        let (fwd, back) = s
            .patches(&json!({"spec": {"selector": {"app": "web", "region": "us-west1"}}}))
            .expect("patches");
        assert_eq!(
            fwd,
            json!({"spec": {"selector": {"region": "us-west2", "track": "b"}}})
        );
        assert_eq!(
            back,
            json!({"spec": {"selector": {"region": "us-west1", "track": null}}})
        );
    }

    #[test]
    fn an_ingress_switch_points_every_backend_and_refuses_an_ingress_without_one() {
        let s = Switch {
            namespace: "prod-1".into(),
            name: "front".into(),
            change: SwitchKind::IngressBackend {
                service: "web-west2".into(),
            },
        };
        let ing = json!({"spec": {"rules": [{"http": {"paths": [
            {"path": "/", "backend": {"service": {"name": "web-west1", "port": {"number": 80}}}}
        ]}}]}});
        let (fwd, back) = s.patches(&ing).expect("patches");
        assert_eq!(
            fwd["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"],
            json!({"name": "web-west2", "port": {"number": 80}})
        );
        assert_eq!(back["spec"]["rules"], ing["spec"]["rules"]);
        assert!(s.patches(&json!({"spec": {}})).is_err());
    }
}
