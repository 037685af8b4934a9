//! `PATCH`: JSON merge, strategic merge and JSON patch of an object (or its `status`), and
//! server-side apply, which creates a missing object.

use serde_json::Value;

use super::super::error::ApiError;
use super::super::patch;
use super::super::resources::RESOURCES;
use super::{Answer, Request, Tx, parse_body};

/// The patch of a request as a function from the current document to the patched one.
///
/// # Errors
///
/// `400` for a body that does not parse; the function returns `422` for a patch that does not
/// apply and `415` for an unknown patch type.
pub fn applier(
    req: &Request<'_>,
) -> Result<impl Fn(&Value) -> Result<Value, ApiError> + use<>, ApiError> {
    let content_type = req.content_type().to_owned();
    let patch_body = parse_body(req.body)?;
    Ok(move |current: &Value| -> Result<Value, ApiError> {
        let mut doc = current.clone();
        let bad = |e: patch::PatchError| ApiError {
            code: 422,
            reason: "Invalid",
            message: e.0,
            details: None,
        };
        match content_type.split(';').next().unwrap_or_default().trim() {
            "application/merge-patch+json" => patch::merge(&mut doc, &patch_body),
            "application/strategic-merge-patch+json" => {
                patch::strategic(&mut doc, &patch_body).map_err(bad)?
            }
            "application/json-patch+json" => {
                patch::json_patch(&mut doc, &patch_body).map_err(bad)?
            }
            // Server-side apply is approximated by a merge of the applied configuration.
            "application/apply-patch+yaml" => patch::merge(&mut doc, &patch_body),
            other => return Err(ApiError::unsupported_media_type(other)),
        }
        Ok(doc)
    })
}

/// `PATCH` of an object or its `status`.
///
/// # Errors
///
/// `404` for a missing object (but an apply creates it), then whatever the patch or the store
/// refuses.
pub fn patch(req: &Request<'_>) -> Result<Answer, ApiError> {
    let t = &req.target;
    let rt = &RESOURCES[t.res];
    let apply = applier(req)?;
    let mut tx = Tx::begin(req.shared, req.dry_run);
    let current = match tx.store().get(t.res, &req.ns, req.name()).cloned() {
        Some(c) => c,
        None if req.content_type().starts_with("application/apply-patch") => {
            let created = tx.store().create(t.res, &req.ns, parse_body(req.body)?)?;
            tx.commit(req.shared, t.res);
            return Ok(Answer::Json(201, (*created).clone()));
        }
        None => return Err(ApiError::not_found(rt, req.name())),
    };
    let patched = apply(&current)?;
    let updated = tx
        .store()
        .update(t.res, &req.ns, req.name(), patched, req.sub())?;
    tx.commit(req.shared, t.res);
    Ok(Answer::Json(200, (*updated).clone()))
}
