//! Errors: [`ApiError`] is what the API server answers (a real `Status` object), [`SimError`] is
//! what the Rust control API returns to its caller.

use std::path::PathBuf;

use serde_json::{Value, json};

use super::resources::ResourceType;

/// A refusal of the API server, rendered as a `Status` object with the real reason and code.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{code} {reason}: {message}")]
pub struct ApiError {
    /// HTTP status code (404, 409, 422 ...).
    pub code: u16,
    /// `Status.reason` (`NotFound`, `AlreadyExists`, `Conflict` ...).
    pub reason: &'static str,
    /// Human message, shaped like the real server's.
    pub message: String,
    /// `Status.details`, when the refusal is about one object.
    pub details: Option<Value>,
}

impl ApiError {
    fn about(
        code: u16,
        reason: &'static str,
        message: String,
        rt: &ResourceType,
        name: &str,
    ) -> Self {
        let mut details = json!({ "name": name, "kind": rt.plural });
        if !rt.group.is_empty() {
            details["group"] = json!(rt.group);
        }
        Self {
            code,
            reason,
            message,
            details: Some(details),
        }
    }

    /// 404: `pods "x" not found`.
    #[must_use]
    pub fn not_found(rt: &ResourceType, name: &str) -> Self {
        let message = format!("{} \"{name}\" not found", rt.qualified());
        Self::about(404, "NotFound", message, rt, name)
    }

    /// 409: `pods "x" already exists`.
    #[must_use]
    pub fn already_exists(rt: &ResourceType, name: &str) -> Self {
        let message = format!("{} \"{name}\" already exists", rt.qualified());
        Self::about(409, "AlreadyExists", message, rt, name)
    }

    /// 409: a stale resourceVersion or a failed precondition.
    #[must_use]
    pub fn conflict(rt: &ResourceType, name: &str, why: &str) -> Self {
        let message = format!(
            "Operation cannot be fulfilled on {} \"{name}\": {why}",
            rt.qualified()
        );
        Self::about(409, "Conflict", message, rt, name)
    }

    /// 409 on a stale resourceVersion, with the real server's wording.
    #[must_use]
    pub fn modified(rt: &ResourceType, name: &str) -> Self {
        Self::conflict(
            rt,
            name,
            "the object has been modified; please apply your changes to the latest version and try again",
        )
    }

    /// 422: `Deployment.apps "x" is invalid: spec.replicas: Invalid value: -1: must be ...`.
    #[must_use]
    pub fn invalid(rt: &ResourceType, name: &str, field: &str, value: &Value, why: &str) -> Self {
        let message = format!(
            "{} \"{name}\" is invalid: {field}: Invalid value: {value}: {why}",
            rt.qualified_kind()
        );
        let mut err = Self::about(422, "Invalid", message, rt, name);
        if let Some(details) = err.details.as_mut() {
            details["kind"] = json!(rt.kind);
            details["causes"] = json!([{
                "reason": "FieldValueInvalid",
                "message": format!("Invalid value: {value}: {why}"),
                "field": field,
            }]);
        }
        err
    }

    /// 403 with the real RBAC message shape.
    #[must_use]
    pub fn forbidden(
        rt: &ResourceType,
        subresource: Option<&str>,
        name: &str,
        namespace: Option<&str>,
        user: &str,
        verb: &str,
    ) -> Self {
        let resource = match subresource {
            Some(sub) => format!("{}/{sub}", rt.plural),
            None => rt.plural.to_owned(),
        };
        let subject = if name.is_empty() {
            rt.qualified()
        } else {
            format!("{} \"{name}\"", rt.qualified())
        };
        let scope = match namespace {
            Some(ns) => format!("in the namespace \"{ns}\""),
            None => "at the cluster scope".to_owned(),
        };
        let message = format!(
            "{subject} is forbidden: User \"{user}\" cannot {verb} resource \"{resource}\" in API group \"{}\" {scope}",
            rt.group
        );
        Self::about(403, "Forbidden", message, rt, name)
    }

    /// 400 with a message.
    #[must_use]
    pub fn bad_request(message: String) -> Self {
        Self {
            code: 400,
            reason: "BadRequest",
            message,
            details: None,
        }
    }

    /// 404 for a path of a served group that names nothing served (an unknown resource or
    /// subresource): go-restful's refusal, which the real server renders with
    /// `NewGenericServerResponse` (no path in the message; kubectl appends its own).
    #[must_use]
    pub fn no_route(_path: &str) -> Self {
        Self {
            code: 404,
            reason: "NotFound",
            message: "the server could not find the requested resource".to_owned(),
            details: Some(json!({})),
        }
    }

    /// 405 for a verb the path does not take, in the real server's words.
    #[must_use]
    pub fn method_not_allowed(_method: &str, _path: &str) -> Self {
        Self {
            code: 405,
            reason: "MethodNotAllowed",
            message: "the server does not allow this method on the requested resource".to_owned(),
            details: Some(json!({})),
        }
    }

    /// 415 for a patch type the server does not know.
    #[must_use]
    pub fn unsupported_media_type(content_type: &str) -> Self {
        Self {
            code: 415,
            reason: "UnsupportedMediaType",
            message: format!(
                "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json (got {content_type:?})"
            ),
            details: None,
        }
    }

    /// 406 for a response type the server does not produce.
    #[must_use]
    pub fn not_acceptable(message: &str) -> Self {
        Self {
            code: 406,
            reason: "NotAcceptable",
            message: message.to_owned(),
            details: None,
        }
    }

    /// 410 for a resourceVersion older than the server's history.
    #[must_use]
    pub fn expired(requested: u64, oldest: u64) -> Self {
        Self {
            code: 410,
            reason: "Expired",
            message: format!("too old resource version: {requested} ({oldest})"),
            details: None,
        }
    }

    /// 429: an eviction that would violate a PodDisruptionBudget.
    #[must_use]
    pub fn disruption_budget(pdb: &str, rt: &ResourceType, pod: &str) -> Self {
        let mut err = Self::about(
            429,
            "TooManyRequests",
            "Cannot evict pod as it would violate the pod's disruption budget.".to_owned(),
            rt,
            pod,
        );
        if let Some(details) = err.details.as_mut() {
            details["causes"] = json!([{
                "reason": "DisruptionBudget",
                "message": format!("The disruption budget {pdb} needs more healthy pods to allow the eviction"),
            }]);
        }
        err
    }

    /// The `Status` object the server answers with.
    #[must_use]
    pub fn status(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        if let Some(details) = &self.details {
            status["details"] = details.clone();
        }
        status
    }
}

/// What the control API of the embedded cluster can fail with.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// The listener could not be bound.
    #[error(
        "cannot bind the Kubernetes API server of region {region} on 127.0.0.1: {source} (hint: is the loopback interface up?)"
    )]
    Bind {
        /// Region of the cluster.
        region: String,
        /// The bind error.
        #[source]
        source: std::io::Error,
    },
    /// The kubeconfig file could not be written.
    #[error(
        "cannot write kubeconfig {path}: {source} (hint: does the directory exist and is it writable?)"
    )]
    WriteKubeconfig {
        /// Where it was written.
        path: PathBuf,
        /// The write error.
        #[source]
        source: std::io::Error,
    },
    /// The kubeconfig could not be rendered.
    #[error("cannot render kubeconfig {path}: {source}")]
    RenderKubeconfig {
        /// Where it was to be written.
        path: PathBuf,
        /// The serialisation error.
        #[source]
        source: serde_yaml::Error,
    },
    /// The cluster spec is inconsistent.
    #[error("invalid cluster spec for region {region}: {problem} (hint: {hint})")]
    InvalidSpec {
        /// Region of the cluster.
        region: String,
        /// What is wrong.
        problem: String,
        /// How to fix it.
        hint: &'static str,
    },
    /// A control call was refused by the store (an object is missing, ...).
    #[error("control call on region {region} refused: {source}")]
    Api {
        /// Region of the cluster.
        region: String,
        /// The refusal.
        #[source]
        source: Box<ApiError>,
    },
}
