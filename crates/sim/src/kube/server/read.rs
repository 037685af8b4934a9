//! Reads: `get` of one object (or its `status`) and `list` of a kind, in JSON or as the `Table`
//! kubectl asks for.

use std::sync::Arc;

use serde_json::{Value, json};

use super::super::error::ApiError;
use super::super::resources::RESOURCES;
use base64::Engine as _;

use super::super::store::{labels_of, name_of, namespace_of, rv_of};
use super::super::table;
use super::{Answer, Request, now_secs, wants_table};

/// The continue token of a page: the real server's format (base64url of
/// `{"v":"meta.k8s.io/v1","rv":…,"start":"<key>\u0000"}`), `rv` -1 meaning "the latest".
fn encode_continue(rv: i64, last_key: &str) -> String {
    let token = json!({"v": "meta.k8s.io/v1", "rv": rv, "start": format!("{last_key}\u{0}")});
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(token.to_string())
}

fn decode_continue(token: &str) -> Result<(i64, String), ApiError> {
    let invalid = |why: &str| ApiError::bad_request(format!("continue key is not valid: {why}"));
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token.trim_end_matches('='))
        .map_err(|_| invalid("not base64"))?;
    let v: Value = serde_json::from_slice(&raw).map_err(|_| invalid("not JSON"))?;
    if v["v"] != "meta.k8s.io/v1" {
        return Err(invalid("server does not recognize this encoded version"));
    }
    let rv = v["rv"].as_i64().filter(|rv| *rv != 0).ok_or_else(|| {
        invalid("incorrect encoded start resourceVersion (version meta.k8s.io/v1)")
    })?;
    let start = v["start"]
        .as_str()
        .filter(|s| !s.is_empty())
        .ok_or_else(|| invalid("encoded start key empty (version meta.k8s.io/v1)"))?;
    Ok((rv, start.to_owned()))
}

fn key_of(o: &Value) -> String {
    match namespace_of(o) {
        "" => name_of(o).to_owned(),
        ns => format!("{ns}/{}", name_of(o)),
    }
}

/// The message of a `410` for a continue token the history no longer covers.
const CONTINUE_EXPIRED: &str = "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.";

/// `GET` of a kind (one namespace or all), paged with `limit` and `continue` (each page is
/// served at the version of the first, from the watch history, as etcd serves it) and read at
/// an exact version with `resourceVersionMatch=Exact`.
///
/// # Errors
///
/// `400` for a bad `limit`, `continue` or version combination; `410 Expired` for a version or
/// continue token older than the history (with a token to go on inconsistently, as the real
/// server gives).
pub fn list(req: &Request<'_>) -> Result<Answer, ApiError> {
    let t = &req.target;
    let rt = &RESOURCES[t.res];
    let q = req.query;
    let limit = match q.get("limit").map(String::as_str) {
        None | Some("") => 0,
        Some(v) => v
            .parse::<usize>()
            .map_err(|_| ApiError::bad_request(format!("invalid limit {v:?}")))?,
    };
    let continue_token = q
        .get("continue")
        .map(String::as_str)
        .filter(|c| !c.is_empty());
    let rv_param = q
        .get("resourceVersion")
        .map(String::as_str)
        .filter(|v| !v.is_empty());
    let rv_match = q
        .get("resourceVersionMatch")
        .map(String::as_str)
        .filter(|v| !v.is_empty());
    if continue_token.is_some() && rv_param.is_some_and(|v| v != "0") {
        return Err(ApiError::bad_request(
            "specifying resource version is not allowed when using continue".to_owned(),
        ));
    }
    if rv_match.is_some() && rv_param.is_none() {
        return Err(ApiError::bad_request(
            "resourceVersionMatch is forbidden unless resourceVersion is provided".to_owned(),
        ));
    }
    let (at, start) = match (continue_token, rv_match) {
        (Some(token), _) => {
            let (rv, start) = decode_continue(token)?;
            (u64::try_from(rv).ok(), Some(start))
        }
        (None, Some("Exact")) => {
            let rv = rv_param.unwrap_or_default();
            let rv = rv
                .parse::<u64>()
                .map_err(|_| ApiError::bad_request(format!("invalid resourceVersion {rv:?}")))?;
            (Some(rv), None)
        }
        (None, None | Some("NotOlderThan")) => (None, None),
        (None, Some(other)) => {
            return Err(ApiError::bad_request(format!(
                "unsupported resourceVersionMatch {other:?} (supported: Exact, NotOlderThan)"
            )));
        }
    };
    let paged = limit > 0 || start.is_some() || at.is_some();
    let w = req.shared.lock();
    let current = w.store.resource_version();
    if let Some(rv) = at.filter(|rv| *rv > current) {
        return Ok(Answer::Json(
            504,
            json!({
                "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": format!("Too large resource version: {rv}, current: {current}"),
                "reason": "Timeout",
                "details": {"causes": [{"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}], "retryAfterSeconds": 1},
                "code": 504,
            }),
        ));
    }
    let (all, list_rv): (Vec<Arc<Value>>, u64) = if paged {
        let snapshot = match at {
            Some(rv) => match w.store.list_at(t.res, t.namespace.as_deref(), rv) {
                Ok(v) => v,
                Err(e) => {
                    let mut status = e.status();
                    match &start {
                        Some(start) => {
                            // As the real server: expired, with a token that goes on from the
                            // same key at the latest version (an inconsistent continuation).
                            status["message"] = json!(CONTINUE_EXPIRED);
                            let last = start.trim_end_matches('\u{0}');
                            status["metadata"] = json!({"continue": encode_continue(-1, last)});
                        }
                        None => {
                            status["message"] =
                                json!("The resourceVersion for the provided list is too old.");
                        }
                    }
                    return Ok(Answer::Json(410, status));
                }
            },
            None => {
                let mut v: Vec<Arc<Value>> = w
                    .store
                    .list(t.res, t.namespace.as_deref())
                    .cloned()
                    .collect();
                v.sort_by_key(|o| key_of(o));
                v
            }
        };
        (snapshot, at.unwrap_or(current))
    } else {
        (
            w.store
                .list(t.res, t.namespace.as_deref())
                .cloned()
                .collect(),
            current,
        )
    };
    drop(w);
    let filtered = !req.labels.is_empty() || !req.fields.is_empty();
    let mut items: Vec<Arc<Value>> = all
        .into_iter()
        .filter(|o| start.as_deref().is_none_or(|s| key_of(o).as_str() >= s))
        .filter(|o| req.labels.matches(labels_of(o)) && req.fields.matches(o))
        .collect();
    let mut meta = json!({"resourceVersion": list_rv.to_string()});
    if limit > 0 && items.len() > limit {
        let remaining = items.len() - limit;
        items.truncate(limit);
        let last = items.last().map(|o| key_of(o)).unwrap_or_default();
        meta["continue"] = json!(encode_continue(i64::try_from(list_rv).unwrap_or(-1), &last));
        if !filtered {
            meta["remainingItemCount"] = json!(remaining);
        }
    }
    if wants_table(req.headers) {
        let mut table = table::table(t.res, &items, list_rv, now_secs(&req.shared.clock));
        table["metadata"] = meta;
        return Ok(Answer::Json(200, table));
    }
    Ok(Answer::Json(
        200,
        json!({
            "kind": format!("{}List", rt.kind),
            "apiVersion": rt.api_version(),
            "metadata": meta,
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
