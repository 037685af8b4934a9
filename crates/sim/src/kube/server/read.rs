//! Reads: `get` of one object (or its `status`) and `list` of a kind, in JSON or as the `Table`
//! kubectl asks for.

use std::sync::Arc;

use serde_json::{Value, json};

use super::super::error::ApiError;
use super::super::resources::RESOURCES;
use super::super::store::{labels_of, rv_of};
use super::super::table;
use super::{Answer, Request, now_secs, wants_table};

/// `GET` of a kind (one namespace or all).
///
/// # Errors
///
/// None today; the signature is the routing table's.
pub fn list(req: &Request<'_>) -> Result<Answer, ApiError> {
    let t = &req.target;
    let rt = &RESOURCES[t.res];
    let w = req.shared.lock();
    let items: Vec<Arc<Value>> = w
        .store
        .list(t.res, t.namespace.as_deref())
        .filter(|o| req.labels.matches(labels_of(o)) && req.fields.matches(o))
        .cloned()
        .collect();
    let rv = w.store.resource_version();
    drop(w);
    if wants_table(req.headers) {
        return Ok(Answer::Json(
            200,
            table::table(t.res, &items, rv, now_secs(&req.shared.clock)),
        ));
    }
    Ok(Answer::Json(
        200,
        json!({
            "kind": format!("{}List", rt.kind),
            "apiVersion": rt.api_version(),
            "metadata": {"resourceVersion": rv.to_string()},
            "items": items.iter().map(|o| (**o).clone()).collect::<Vec<_>>(),
        }),
    ))
}

/// `GET` of one object (or its `status` subresource).
///
/// # Errors
///
/// `404` when it does not exist.
pub fn get(req: &Request<'_>) -> Result<Answer, ApiError> {
    let t = &req.target;
    let rt = &RESOURCES[t.res];
    let w = req.shared.lock();
    let obj = w
        .store
        .get(t.res, &req.ns, req.name())
        .cloned()
        .ok_or_else(|| ApiError::not_found(rt, req.name()))?;
    drop(w);
    if req.sub().is_none() && wants_table(req.headers) {
        let rv = rv_of(&obj).unwrap_or(0);
        return Ok(Answer::Json(
            200,
            table::table(t.res, &[obj], rv, now_secs(&req.shared.clock)),
        ));
    }
    Ok(Answer::Json(200, (*obj).clone()))
}
