//! Writes: `create`, `update` (of an object or its `status`), `delete` and `deletecollection`,
//! each on the real store or, for `dryRun=All`, on a scratch copy.

use serde_json::{Value, json};

use super::super::error::ApiError;
use super::super::managed;
use super::super::resources::RESOURCES;
use super::super::store::{labels_of, name_of, namespace_of};
use super::{Answer, Request, Tx, body_dry_run, parse_body};

/// `POST` of a new object.
///
/// # Errors
///
/// `400` for a body that does not parse, then whatever the store refuses.
pub fn create(req: &Request<'_>) -> Result<Answer, ApiError> {
    let mut obj = parse_body(req.body)?;
    req.check_fields(&mut obj)?;
    let mut tx = Tx::begin(req.shared, req.dry_run);
    let now = tx.store().now_rfc3339();
    let rt = &RESOURCES[req.target.res];
    managed::record_update(rt, None, &mut obj, &req.manager(), None, &now);
    let created = tx.store().create(req.target.res, &req.ns, obj)?;
    tx.commit(req.shared, req.target.res);
    Ok(Answer::Json(201, (*created).clone()))
}

/// `PUT` of an object (or of its `status`).
///
/// # Errors
///
/// `400` for a body that does not parse, then whatever the store refuses.
pub fn update(req: &Request<'_>) -> Result<Answer, ApiError> {
    let mut obj = parse_body(req.body)?;
    req.check_fields(&mut obj)?;
    let mut tx = Tx::begin(req.shared, req.dry_run);
    let now = tx.store().now_rfc3339();
    let rt = &RESOURCES[req.target.res];
    let old = tx.store().get(req.target.res, &req.ns, req.name()).cloned();
    managed::record_update(
        rt,
        old.as_deref(),
        &mut obj,
        &req.manager(),
        req.sub(),
        &now,
    );
    let updated = tx
        .store()
        .update(req.target.res, &req.ns, req.name(), obj, req.sub())?;
    tx.commit(req.shared, req.target.res);
    Ok(Answer::Json(200, (*updated).clone()))
}

/// `DELETE` of one object, with the DeleteOptions' uid precondition and dry run.
///
/// # Errors
///
/// `404`, `409` on a failed precondition.
pub fn delete(req: &Request<'_>) -> Result<Answer, ApiError> {
    let options = if req.body.is_empty() {
        Value::Null
    } else {
        parse_body(req.body)?
    };
    let uid = options["preconditions"]["uid"].as_str();
    let mut tx = Tx::begin(req.shared, req.dry_run || body_dry_run(&options));
    let gone = tx
        .store()
        .delete(req.target.res, &req.ns, req.name(), uid)?;
    tx.commit(req.shared, req.target.res);
    Ok(Answer::Json(200, (*gone).clone()))
}

/// `DELETE` of every object of a kind the selectors match.
///
/// # Errors
///
/// Whatever the store refuses.
pub fn delete_collection(req: &Request<'_>) -> Result<Answer, ApiError> {
    let t = &req.target;
    let rt = &RESOURCES[t.res];
    let mut tx = Tx::begin(req.shared, req.dry_run);
    let names: Vec<(String, String)> = tx
        .store()
        .list(t.res, t.namespace.as_deref())
        .filter(|o| req.labels.matches(labels_of(o)) && req.fields.matches(o))
        .map(|o| (namespace_of(o).to_owned(), name_of(o).to_owned()))
        .collect();
    let mut items = Vec::new();
    for (ons, name) in names {
        items.push((*tx.store().delete(t.res, &ons, &name, None)?).clone());
    }
    let rv = tx.store().resource_version();
    tx.commit(req.shared, t.res);
    Ok(Answer::Json(
        200,
        json!({
            "kind": format!("{}List", rt.kind),
            "apiVersion": rt.api_version(),
            "metadata": {"resourceVersion": rv.to_string()},
            "items": items,
        }),
    ))
}
