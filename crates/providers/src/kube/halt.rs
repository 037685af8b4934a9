//! The emergency halt's marker as a ConfigMap: `state`, `reason`, `by`, `at` as its data keys
//! (readable with `kubectl get configmap -o yaml`), the earlier halts and resumes as JSON in
//! `history`. A running drill only ever `get`s it (by name: the Role grants exactly that);
//! `firedrill halt` and `resume` read it, then create it or replace it at the version read.

use std::collections::BTreeMap;

use ::kube::api::{Api, ObjectMeta, PostParams};
use k8s_openapi::api::core::v1::ConfigMap;

use super::{Conn, KubeError};
use firedrill_core::halt::{Marker, Record};

/// How often `halt` / `resume` try again when someone else changed the ConfigMap between its
/// read and its write (409 Conflict).
const CONFLICT_RETRIES: u32 = 5;

fn marker_of(cm: &ConfigMap) -> Marker {
    let data = cm.data.clone().unwrap_or_default();
    let key = |k: &str| data.get(k).cloned().unwrap_or_default();
    Marker {
        state: key("state"),
        reason: key("reason"),
        by: key("by"),
        at: key("at"),
        // A history someone garbled is not a reason to lose the current state.
        history: serde_json::from_str(&key("history")).unwrap_or_default(),
    }
}

fn data_of(marker: &Marker) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("state".to_owned(), marker.state.clone()),
        ("reason".to_owned(), marker.reason.clone()),
        ("by".to_owned(), marker.by.clone()),
        ("at".to_owned(), marker.at.clone()),
        (
            "history".to_owned(),
            serde_json::to_string(&marker.history).unwrap_or_else(|_| "[]".to_owned()),
        ),
    ])
}

impl Conn {
    /// The marker in ConfigMap `namespace/name`; `None` when there is none.
    ///
    /// # Errors
    ///
    /// [`KubeError`] naming the ConfigMap (forbidden, unreachable).
    pub async fn halt_marker(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<Marker>, KubeError> {
        let api: Api<ConfigMap> = Api::namespaced(self.client.clone(), namespace);
        let found = self
            .call_api(self.call(namespace, "configmaps", name, "get"), || {
                api.get_opt(name)
            })
            .await?;
        Ok(found.as_ref().map(marker_of))
    }

    /// Records `record` (a halt or a resume) in ConfigMap `namespace/name`, creating it when
    /// there is none, keeping its history. Returns the marker as written.
    ///
    /// # Errors
    ///
    /// [`KubeError`] naming the ConfigMap and the verb refused or failed.
    pub async fn record_halt(
        &self,
        namespace: &str,
        name: &str,
        record: &Record,
    ) -> Result<Marker, KubeError> {
        let api: Api<ConfigMap> = Api::namespaced(self.client.clone(), namespace);
        let params = PostParams::default();
        let mut attempt = 0;
        loop {
            attempt += 1;
            let found = self
                .call_api(self.call(namespace, "configmaps", name, "get"), || {
                    api.get_opt(name)
                })
                .await?;
            let exists = found.is_some();
            let marker = found
                .as_ref()
                .map(marker_of)
                .unwrap_or_default()
                .then(record.clone());
            let written = match found {
                Some(mut cm) => {
                    cm.data = Some(data_of(&marker));
                    self.try_call(self.call(namespace, "configmaps", name, "update"), || {
                        api.replace(name, &params, &cm)
                    })
                    .await?
                }
                None => {
                    let cm = ConfigMap {
                        metadata: ObjectMeta {
                            name: Some(name.to_owned()),
                            namespace: Some(namespace.to_owned()),
                            labels: Some(BTreeMap::from([(
                                "app.kubernetes.io/name".to_owned(),
                                "firedrill".to_owned(),
                            )])),
                            ..ObjectMeta::default()
                        },
                        data: Some(data_of(&marker)),
                        ..ConfigMap::default()
                    };
                    self.try_call(self.call(namespace, "configmaps", name, "create"), || {
                        api.create(&params, &cm)
                    })
                    .await?
                }
            };
            match written {
                Ok(_) => return Ok(marker),
                // Someone else wrote it between the read and the write: read it again.
                Err(::kube::Error::Api(status))
                    if status.code == 409 && attempt < CONFLICT_RETRIES => {}
                Err(e) => {
                    let verb = if exists { "update" } else { "create" };
                    return Err(self.call(namespace, "configmaps", name, verb).error(&e));
                }
            }
        }
    }
}
