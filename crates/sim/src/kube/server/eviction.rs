//! The `eviction` subresource of pods (`kubectl drain`): a delete that PodDisruptionBudgets
//! may refuse with `429`.

use std::sync::Arc;

use axum::body::Bytes;
use serde_json::{Value, json};

use super::super::controller;
use super::super::error::ApiError;
use super::super::resources::{PDBS, PODS, RESOURCES};
use super::super::selector::LabelSelector;
use super::super::store::{labels_of, name_of};
use super::{Answer, Request, Shared, Tx, body_dry_run, parse_body};

/// `POST …/pods/<name>/eviction`.
///
/// # Errors
///
/// `404` for a missing pod, `429` when a budget refuses, `409` on a failed uid precondition.
pub fn create(req: &Request<'_>) -> Result<Answer, ApiError> {
    evict(req.shared, req.dry_run, &req.ns, req.name(), req.body)
}

fn evict(
    shared: &Shared,
    dry_run: bool,
    ns: &str,
    name: &str,
    body: &Bytes,
) -> Result<Answer, ApiError> {
    let rt = &RESOURCES[PODS];
    let eviction = if body.is_empty() {
        Value::Null
    } else {
        parse_body(body)?
    };
    let options = &eviction["deleteOptions"];
    let uid = options["preconditions"]["uid"].as_str().map(str::to_owned);
    let mut tx = Tx::begin(shared, dry_run || body_dry_run(options));
    let pod = tx
        .store()
        .get(PODS, ns, name)
        .cloned()
        .ok_or_else(|| ApiError::not_found(rt, name))?;
    if controller::pod_ready(&pod) {
        let store = tx.store();
        for pdb in store.list(PDBS, Some(ns)) {
            let sel = LabelSelector::from_object(&pdb["spec"]["selector"]);
            if sel.is_empty() || !sel.matches(labels_of(&pod)) {
                continue;
            }
            let matching: Vec<&Arc<Value>> = store.pods_matching(ns, &sel).collect();
            let expected = matching.len() as i64;
            let healthy = matching.iter().filter(|p| controller::pod_ready(p)).count() as i64;
            let count = |v: &Value, round_up: bool| -> i64 {
                match v {
                    Value::Number(n) => n.as_i64().unwrap_or(0),
                    Value::String(s) => {
                        let pct = s.trim_end_matches('%').parse::<i64>().unwrap_or(0);
                        if round_up {
                            (pct * expected + 99) / 100
                        } else {
                            pct * expected / 100
                        }
                    }
                    _ => 0,
                }
            };
            let allowed = if let Some(min) = pdb["spec"].get("minAvailable") {
                healthy - count(min, true)
            } else if let Some(max) = pdb["spec"].get("maxUnavailable") {
                count(max, false) - (expected - healthy)
            } else {
                i64::MAX
            };
            if allowed < 1 {
                return Err(ApiError::disruption_budget(name_of(pdb), rt, name));
            }
        }
    }
    tx.store().delete(PODS, ns, name, uid.as_deref())?;
    tx.commit(shared, PODS);
    Ok(Answer::Json(
        201,
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}),
    ))
}
