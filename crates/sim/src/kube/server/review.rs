//! Access reviews: `SelfSubjectAccessReview` (`kubectl auth can-i`), answered from the role
//! hook, in JSON or in the protobuf kubectl sends.

use axum::body::Bytes;
use axum::http::Method;
use serde_json::{Value, json};

use super::super::error::ApiError;
use super::{Answer, Shared, authz, parse_body};

/// Answers a `SelfSubjectAccessReview`.
///
/// # Errors
///
/// `405` for anything but POST, `400` for a body that does not decode.
pub fn access_review(shared: &Shared, method: &Method, body: &Bytes) -> Result<Answer, ApiError> {
    if method != Method::POST {
        return Err(ApiError::method_not_allowed(
            method.as_str(),
            "selfsubjectaccessreviews",
        ));
    }
    let mut review = if body.starts_with(PROTOBUF_MAGIC) {
        access_review_from_protobuf(body)?
    } else {
        parse_body(body)?
    };
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
    review["status"] = json!({"allowed": !denied});
    review["apiVersion"] = json!("authorization.k8s.io/v1");
    review["kind"] = json!("SelfSubjectAccessReview");
    Ok(Answer::Json(201, review))
}

/// The prefix of a Kubernetes protobuf body (`k8s\0`, then a `runtime.Unknown`).
pub const PROTOBUF_MAGIC: &[u8] = b"k8s\0";

/// The length-delimited fields of a protobuf message (other wire types are skipped).
fn protobuf_fields(mut buf: &[u8]) -> Option<Vec<(u64, &[u8])>> {
    fn varint(buf: &mut &[u8]) -> Option<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let (&b, rest) = buf.split_first()?;
            *buf = rest;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Some(v);
            }
        }
        None
    }
    let mut fields = Vec::new();
    while !buf.is_empty() {
        let key = varint(&mut buf)?;
        match key & 7 {
            0 => {
                varint(&mut buf)?;
            }
            1 => buf = buf.get(8..)?,
            5 => buf = buf.get(4..)?,
            2 => {
                let len = usize::try_from(varint(&mut buf)?).ok()?;
                fields.push((key >> 3, buf.get(..len)?));
                buf = buf.get(len..)?;
            }
            _ => return None,
        }
    }
    Some(fields)
}

/// kubectl sends SelfSubjectAccessReviews (`kubectl auth can-i`) as protobuf: decode the
/// resource attributes into the JSON shape the rest of the server uses.
fn access_review_from_protobuf(body: &[u8]) -> Result<Value, ApiError> {
    let bad =
        || ApiError::bad_request("cannot decode the protobuf SelfSubjectAccessReview".to_owned());
    let field = |buf: &[u8], n: u64| -> Result<Option<Vec<u8>>, ApiError> {
        Ok(protobuf_fields(buf)
            .ok_or_else(bad)?
            .into_iter()
            .find(|(f, _)| *f == n)
            .map(|(_, v)| v.to_vec()))
    };
    let unknown = body.get(PROTOBUF_MAGIC.len()..).ok_or_else(bad)?;
    let raw = field(unknown, 2)?.ok_or_else(bad)?;
    let spec = field(&raw, 2)?.unwrap_or_default();
    let attrs = field(&spec, 1)?.unwrap_or_default();
    let mut out = serde_json::Map::new();
    for (n, key) in [
        (1, "namespace"),
        (2, "verb"),
        (3, "group"),
        (4, "version"),
        (5, "resource"),
        (6, "subresource"),
        (7, "name"),
    ] {
        if let Some(v) = field(&attrs, n)? {
            out.insert(key.to_owned(), json!(String::from_utf8_lossy(&v)));
        }
    }
    Ok(json!({"metadata": {}, "spec": {"resourceAttributes": out}}))
}
