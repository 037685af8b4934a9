//! `PATCH`: JSON merge, strategic merge and JSON patch of an object (or its `status`), and
//! server-side apply, which creates a missing object.

use serde_json::Value;

use super::super::error::ApiError;
use super::super::managed;
use super::super::patch;
use super::super::resources::RESOURCES;
use super::{Answer, Request, Tx, flag, parse_body};

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
            // Server-side apply of a subresource (scale) is its merge: the Scale has one field.
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
    if req.content_type().starts_with("application/apply-patch") {
        return server_side_apply(req);
    }
    let apply = applier(req)?;
    let mut tx = Tx::begin(req.shared, req.dry_run);
    let current = match tx.store().get(t.res, &req.ns, req.name()).cloned() {
        Some(c) => c,
        None => return Err(ApiError::not_found(rt, req.name())),
    };
    let mut patched = apply(&current)?;
    req.check_fields(&mut patched)?;
    let now = tx.store().now_rfc3339();
    managed::record_update(
        rt,
        Some(&current),
        &mut patched,
        &req.manager(),
        req.sub(),
        &now,
    );
    let updated = tx
        .store()
        .update(t.res, &req.ns, req.name(), patched, req.sub())?;
    tx.commit(req.shared, t.res);
    Ok(Answer::Json(200, (*updated).clone()))
}

/// Server-side apply (`application/apply-patch+yaml`): see [`managed::apply`]. Creates the
/// object when it is missing.
///
/// # Errors
///
/// `422` without a `fieldManager`, `409` on a conflict, whatever the store refuses.
fn server_side_apply(req: &Request<'_>) -> Result<Answer, ApiError> {
    let t = &req.target;
    let rt = &RESOURCES[t.res];
    let Some(manager) = req.query.get("fieldManager").filter(|m| !m.is_empty()) else {
        return Err(ApiError {
            code: 422,
            reason: "Invalid",
            message: "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch".to_owned(),
            details: None,
        });
    };
    let force = flag(req.query, "force");
    let mut applied = parse_body(req.body)?;
    req.check_fields(&mut applied)?;
    let mut tx = Tx::begin(req.shared, req.dry_run);
    let now = tx.store().now_rfc3339();
    let current = tx.store().get(t.res, &req.ns, req.name()).cloned();
    let result = managed::apply(rt, current.as_deref(), &applied, manager, force, &now)?;
    let (code, written) = match current {
        None => (201, tx.store().create(t.res, &req.ns, result)?),
        Some(_) => (
            200,
            tx.store()
                .update(t.res, &req.ns, req.name(), result, req.sub())?,
        ),
    };
    tx.commit(req.shared, t.res);
    Ok(Answer::Json(code, (*written).clone()))
}
