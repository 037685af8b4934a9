//! The role hook: the (verb, resource) pairs [`super::super::Cluster::forbid`] refuses, checked on
//! every request and answered as RBAC answers.

use std::sync::PoisonError;

use super::super::error::ApiError;
use super::super::resources::RESOURCES;
use super::Shared;
use super::route::Target;

/// `403 Forbidden` when the role hook refuses `verb` on the target.
///
/// # Errors
///
/// [`ApiError::forbidden`].
pub fn check_role(shared: &Shared, verb: &str, t: &Target) -> Result<(), ApiError> {
    let rt = &RESOURCES[t.res];
    let resource = match &t.sub {
        Some(sub) => format!("{}/{sub}", rt.plural),
        None => rt.plural.to_owned(),
    };
    if denied(shared, verb, &resource, t.namespace.as_deref()) {
        return Err(ApiError::forbidden(
            rt,
            t.sub.as_deref(),
            t.name.as_deref().unwrap_or_default(),
            t.namespace.as_deref(),
            &shared.user,
            verb,
        ));
    }
    Ok(())
}

/// Whether the role hook refuses `verb` on `resource` in `namespace`: a rule's resource is
/// `pods` (everywhere), `*`, or `pods@prod-2` (only in that namespace, as a RoleBinding would).
pub fn denied(shared: &Shared, verb: &str, resource: &str, namespace: Option<&str>) -> bool {
    let forbidden = shared
        .forbidden
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    forbidden.iter().any(|(v, r)| {
        (v == verb || v == "*")
            && match r.split_once('@') {
                Some((r, ns)) => r == resource && namespace == Some(ns),
                None => r == resource || r == "*",
            }
    })
}

/// Whether the role hook refuses nothing at all (the user is cluster-admin).
pub fn refuses_nothing(shared: &Shared) -> bool {
    shared
        .forbidden
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .is_empty()
}
