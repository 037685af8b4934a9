//! Reviews, created and answered, never stored: `SelfSubjectAccessReview` (`kubectl auth
//! can-i`), `SelfSubjectRulesReview` (`kubectl auth can-i --list`) and `SelfSubjectReview`
//! (`kubectl auth whoami`), all answered from the role hook ([`authz`]).

use axum::body::Bytes;
use axum::http::Method;
use serde_json::{Value, json};

use super::super::error::ApiError;
use super::super::resources::{RESOURCES, REVIEWS};
use super::{Answer, Shared, authz, parse_body};

const VERBS: [&str; 8] = [
    "get",
    "list",
    "watch",
    "create",
    "update",
    "patch",
    "delete",
    "deletecollection",
];

/// Answers a review of kind `REVIEWS[kind]`.
///
/// # Errors
///
/// `405` for anything but POST, `400` for a body that does not parse.
pub fn review(
    shared: &Shared,
    kind: usize,
    method: &Method,
    path: &str,
    body: &Bytes,
) -> Result<Answer, ApiError> {
    if method != Method::POST {
        return Err(ApiError::method_not_allowed(method.as_str(), path));
    }
    let (group, _, kind_name, _) = REVIEWS[kind];
    let mut review = parse_body(body)?;
    if !review.is_object() {
        return Err(ApiError::bad_request(format!(
            "the body of a {kind_name} must be a JSON object"
        )));
    }
    review["status"] = match kind_name {
        "SelfSubjectAccessReview" => access(shared, &review),
        "SelfSubjectRulesReview" => rules(shared, review["spec"]["namespace"].as_str()),
        _ => json!({"userInfo": {"username": shared.user, "groups": ["system:authenticated"]}}),
    };
    review["apiVersion"] = json!(format!("{group}/v1"));
    review["kind"] = json!(kind_name);
    if !review["metadata"].is_object() {
        review["metadata"] = json!({});
    }
    if let Some(meta) = review["metadata"].as_object_mut() {
        meta.retain(|_, v| !v.is_null());
    }
    Ok(Answer::Json(201, review))
}

fn access(shared: &Shared, review: &Value) -> Value {
    let attrs = &review["spec"]["resourceAttributes"];
    super::super::audit::access_review(&shared.region, attrs);
    let verb = attrs["verb"].as_str().unwrap_or_default().to_owned();
    let mut resource = attrs["resource"].as_str().unwrap_or_default().to_owned();
    if let Some(sub) = attrs["subresource"].as_str().filter(|s| !s.is_empty()) {
        resource = format!("{resource}/{sub}");
    }
    let namespace = attrs["namespace"].as_str().filter(|n| !n.is_empty());
    let denied = authz::denied(shared, &verb, &resource, namespace);
    // RBAC answers a refusal with allowed=false and no reason; kubectl prints a plain "no".
    json!({"allowed": !denied})
}

/// The rules the user has in `namespace`: everything when the role hook refuses nothing, else
/// one rule per served resource (and subresource) with the verbs it still allows.
fn rules(shared: &Shared, namespace: Option<&str>) -> Value {
    let non_resource = json!([{"verbs": ["*"], "nonResourceURLs": ["*"]}]);
    if authz::refuses_nothing(shared) {
        return json!({
            "resourceRules": [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}],
            "nonResourceRules": non_resource,
            "incomplete": false,
        });
    }
    let mut rules = Vec::new();
    for rt in RESOURCES {
        let mut names = vec![rt.plural.to_owned()];
        if rt.has_status {
            names.push(format!("{}/status", rt.plural));
        }
        if rt.has_scale {
            names.push(format!("{}/scale", rt.plural));
        }
        if rt.plural == "pods" {
            names.push("pods/eviction".to_owned());
        }
        for name in names {
            let ns = rt.namespaced.then_some(namespace).flatten();
            let verbs: Vec<&str> = VERBS
                .iter()
                .copied()
                .filter(|v| !authz::denied(shared, v, &name, ns))
                .collect();
            if !verbs.is_empty() {
                rules.push(json!({"verbs": verbs, "apiGroups": [rt.group], "resources": [name]}));
            }
        }
    }
    for (group, plural, _, _) in REVIEWS {
        rules.push(json!({"verbs": ["create"], "apiGroups": [group], "resources": [plural]}));
    }
    json!({"resourceRules": rules, "nonResourceRules": non_resource, "incomplete": false})
}
