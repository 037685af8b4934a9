//! The `scale` subresource of deployments and replica sets (`kubectl scale`, HPA-style clients):
//! an `autoscaling/v1` Scale read from and written to `spec.replicas`.

use serde_json::{Value, json};

use super::super::error::ApiError;
use super::super::resources::{RESOURCES, ResourceId};
use super::super::selector::LabelSelector;
use super::{Answer, Request, Shared, Tx, parse_body};

/// `GET …/scale`.
///
/// # Errors
///
/// `404` when the object does not exist.
pub fn get(req: &Request<'_>) -> Result<Answer, ApiError> {
    let rt = &RESOURCES[req.target.res];
    let w = req.shared.lock();
    let obj = w
        .store
        .get(req.target.res, &req.ns, req.name())
        .cloned()
        .ok_or_else(|| ApiError::not_found(rt, req.name()))?;
    drop(w);
    Ok(Answer::Json(200, scale_of(&obj)))
}

/// `PUT …/scale`.
///
/// # Errors
///
/// `400` for a body that does not parse, then whatever [`write_scale`] refuses.
pub fn update(req: &Request<'_>) -> Result<Answer, ApiError> {
    let obj = parse_body(req.body)?;
    write_scale(
        req.shared,
        req.dry_run,
        req.target.res,
        &req.ns,
        req.name(),
        |_| Ok(obj),
    )
}

/// `PATCH …/scale`.
///
/// # Errors
///
/// `400`/`415`/`422` for a patch that does not apply, then whatever [`write_scale`] refuses.
pub fn patch(req: &Request<'_>) -> Result<Answer, ApiError> {
    let apply = super::patch::applier(req)?;
    write_scale(
        req.shared,
        req.dry_run,
        req.target.res,
        &req.ns,
        req.name(),
        |scale| apply(scale),
    )
}

/// The `autoscaling/v1` Scale of a deployment (or replica set).
pub fn scale_of(obj: &Value) -> Value {
    let m = &obj["metadata"];
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": m["name"], "namespace": m["namespace"], "uid": m["uid"],
            "resourceVersion": m["resourceVersion"], "creationTimestamp": m["creationTimestamp"],
        },
        "spec": {"replicas": obj["spec"]["replicas"].as_i64().unwrap_or(0)},
        "status": {
            "replicas": obj["status"]["replicas"].as_i64().unwrap_or(0),
            "selector": LabelSelector::from_object(&obj["spec"]["selector"]).render(),
        },
    })
}

fn write_scale(
    shared: &Shared,
    dry_run: bool,
    res: ResourceId,
    ns: &str,
    name: &str,
    f: impl FnOnce(&Value) -> Result<Value, ApiError>,
) -> Result<Answer, ApiError> {
    let rt = &RESOURCES[res];
    let mut tx = Tx::begin(shared, dry_run);
    let current = tx
        .store()
        .get(res, ns, name)
        .cloned()
        .ok_or_else(|| ApiError::not_found(rt, name))?;
    let scale = scale_of(&current);
    let new_scale = f(&scale)?;
    if let Some(want) = new_scale["metadata"]["resourceVersion"].as_str()
        && !want.is_empty()
        && Some(want) != current["metadata"]["resourceVersion"].as_str()
    {
        return Err(ApiError::modified(rt, name));
    }
    let replicas = &new_scale["spec"]["replicas"];
    let n = replicas.as_i64().filter(|n| *n >= 0).ok_or_else(|| {
        let mut e = ApiError::invalid(
            rt,
            name,
            "spec.replicas",
            replicas,
            "must be greater than or equal to 0",
        );
        e.message = e
            .message
            .replacen(&rt.qualified_kind(), "Scale.autoscaling", 1);
        e
    })?;
    let updated = tx.store().modify(res, ns, name, |d| {
        d["spec"]["replicas"] = json!(n);
        Ok(())
    })?;
    tx.commit(shared, res);
    Ok(Answer::Json(200, scale_of(&updated)))
}
