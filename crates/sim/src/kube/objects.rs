//! Per-kind defaults and validation, as the real API server's defaulting and admission apply
//! them to the fields the drills and kubectl rely on.

use serde_json::{Value, json};

use super::error::ApiError;
use base64::Engine as _;

use super::resources::{
    CONFIGMAPS, DEPLOYMENTS, NAMESPACES, PODS, PVCS, REPLICASETS, RESOURCES, ResourceId, SECRETS,
};
use super::selector::LabelSelector;
use super::store::labels_of;

/// The tolerations the DefaultTolerationSeconds admission plugin adds to every pod: a pod stays
/// on a NotReady or unreachable node for 300 s before it is evicted.
#[must_use]
pub fn default_tolerations() -> Value {
    json!([
        {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
        {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
    ])
}

fn default_pod_spec(spec: &mut Value) {
    if !spec.is_object() {
        *spec = json!({});
    }
    for (k, v) in [
        ("restartPolicy", json!("Always")),
        ("terminationGracePeriodSeconds", json!(30)),
        ("dnsPolicy", json!("ClusterFirst")),
        ("schedulerName", json!("default-scheduler")),
        ("securityContext", json!({})),
    ] {
        if spec.get(k).is_none() {
            spec[k] = v;
        }
    }
}

/// Fills the defaults of a freshly created object.
pub fn default_object(res: ResourceId, obj: &mut Value, now: &str) {
    match res {
        NAMESPACES => {
            let name = obj["metadata"]["name"].clone();
            if !obj["metadata"].get("labels").is_some_and(Value::is_object) {
                obj["metadata"]["labels"] = json!({});
            }
            obj["metadata"]["labels"]["kubernetes.io/metadata.name"] = name;
            obj["spec"] = json!({"finalizers": ["kubernetes"]});
            obj["status"] = json!({"phase": "Active"});
        }
        PODS => {
            default_pod_spec(&mut obj["spec"]);
            let mut tolerations = obj["spec"]
                .get("tolerations")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            for t in default_tolerations().as_array().into_iter().flatten() {
                if !tolerations
                    .iter()
                    .any(|x| x.get("key") == t.get("key") && x.get("effect") == t.get("effect"))
                {
                    tolerations.push(t.clone());
                }
            }
            obj["spec"]["tolerations"] = Value::Array(tolerations);
            if obj.get("status").is_none_or(|s| s.get("phase").is_none()) {
                obj["status"] = json!({"phase": "Pending", "qosClass": "BestEffort"});
            }
        }
        DEPLOYMENTS | REPLICASETS => {
            if obj["spec"].get("replicas").is_none() {
                obj["spec"]["replicas"] = json!(1);
            }
            if res == DEPLOYMENTS {
                for (k, v) in [
                    (
                        "strategy",
                        json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}}),
                    ),
                    ("revisionHistoryLimit", json!(10)),
                    ("progressDeadlineSeconds", json!(600)),
                ] {
                    if obj["spec"].get(k).is_none() {
                        obj["spec"][k] = v;
                    }
                }
            }
            default_pod_spec(&mut obj["spec"]["template"]["spec"]);
            if obj["spec"]["template"]["metadata"]
                .get("creationTimestamp")
                .is_none()
            {
                obj["spec"]["template"]["metadata"]["creationTimestamp"] = Value::Null;
            }
            obj["status"] = json!({});
        }
        _ => {}
    }
    if res == PVCS {
        if obj["spec"].get("volumeMode").is_none() {
            obj["spec"]["volumeMode"] = json!("Filesystem");
        }
        // No provisioner runs here: a claim stays Pending, as on a cluster without one.
        obj["status"] = json!({"phase": "Pending"});
    }
    if RESOURCES[res].plural == "events" && obj.get("firstTimestamp").is_none() {
        obj["firstTimestamp"] = json!(now);
        obj["lastTimestamp"] = json!(now);
    }
}

/// What the API server's decoding does to a written object before it is stored: a Secret's
/// `stringData` is merged into `data` (base64) and dropped, its `data` must be base64, its `type`
/// defaults to `Opaque`; a ConfigMap's `binaryData` must be base64.
///
/// # Errors
///
/// `400 BadRequest` for a value that is not base64, in the real server's words.
pub fn normalize(res: ResourceId, name: &str, obj: &mut Value) -> Result<(), ApiError> {
    let rt = &RESOURCES[res];
    let undecodable = |key: &str, e: base64::DecodeError| {
        let at = match e {
            base64::DecodeError::InvalidByte(at, _)
            | base64::DecodeError::InvalidLastSymbol { offset: at, .. } => at,
            base64::DecodeError::InvalidLength(len) => len,
            _ => 0,
        };
        ApiError::bad_request(format!(
            "{kind} in version \"{version}\" cannot be handled as a {kind}: illegal base64 data at input byte {at} (key {key:?} of {kind} {name:?})",
            kind = rt.kind,
            version = rt.version
        ))
    };
    let field = match res {
        SECRETS => "data",
        CONFIGMAPS => "binaryData",
        _ => return Ok(()),
    };
    for (key, v) in obj[field].as_object().into_iter().flatten() {
        let text = v.as_str().unwrap_or_default();
        base64::engine::general_purpose::STANDARD
            .decode(text)
            .map_err(|e| undecodable(key, e))?;
    }
    if res != SECRETS {
        return Ok(());
    }
    if let Some(Value::Object(plain)) = obj.as_object_mut().and_then(|o| o.remove("stringData")) {
        if !obj["data"].is_object() {
            obj["data"] = json!({});
        }
        for (key, v) in plain {
            let text = v.as_str().unwrap_or_default();
            obj["data"][&key] = json!(base64::engine::general_purpose::STANDARD.encode(text));
        }
    }
    if obj.get("type").is_none_or(|t| t.is_null() || t == "") {
        obj["type"] = json!("Opaque");
    }
    Ok(())
}

/// Validates the fields whose invalid values the drills must see refused.
///
/// # Errors
///
/// `422 Invalid` naming the field.
pub fn validate(res: ResourceId, name: &str, obj: &Value) -> Result<(), ApiError> {
    let rt = &RESOURCES[res];
    if res == DEPLOYMENTS || res == REPLICASETS {
        let replicas = &obj["spec"]["replicas"];
        if !replicas.is_null() && replicas.as_i64().is_none_or(|r| r < 0) {
            return Err(ApiError::invalid(
                rt,
                name,
                "spec.replicas",
                replicas,
                "must be greater than or equal to 0",
            ));
        }
        let selector = &obj["spec"]["selector"];
        if !selector.is_object() {
            return Err(ApiError::invalid(
                rt,
                name,
                "spec.selector",
                &Value::Null,
                "field is required",
            ));
        }
        let sel = LabelSelector::from_object(selector);
        if sel.is_empty() {
            return Err(ApiError::invalid(
                rt,
                name,
                "spec.selector",
                selector,
                "empty selector is invalid for deployment",
            ));
        }
        let template_labels = obj["spec"]["template"]["metadata"]["labels"].as_object();
        if !sel.matches(template_labels) {
            return Err(ApiError::invalid(
                rt,
                name,
                "spec.template.metadata.labels",
                &obj["spec"]["template"]["metadata"]["labels"],
                "`selector` does not match template `labels`",
            ));
        }
    }
    if let Some(labels) = labels_of(obj) {
        for (k, v) in labels {
            if !v.is_string() {
                return Err(ApiError::invalid(
                    rt,
                    name,
                    &format!("metadata.labels.{k}"),
                    v,
                    "label values must be strings",
                ));
            }
        }
    }
    Ok(())
}
