//! Where a request goes: [`route`] parses a Kubernetes path into a [`Route`], and [`HANDLERS`],
//! the routing table, names the handler of each verb and subresource on a resource. A new verb
//! or subresource is one row here and one handler in the file of its kind of change.

use axum::http::Method;

use super::super::error::ApiError;
use super::super::resources::{GROUPS, RESOURCES, REVIEWS, ResourceId, ResourceType, lookup};
use super::{Answer, Request, eviction, patch, read, scale, watch, write};

/// A parsed request path.
#[derive(Debug, PartialEq)]
pub enum Route {
    /// `/version`.
    Version,
    /// `/healthz`, `/readyz`, `/livez`.
    Health,
    /// `/api`.
    ApiVersions,
    /// `/apis`.
    GroupList,
    /// `/apis/<group>`.
    Group(String),
    /// `/api/v1`, `/apis/<group>/<version>`: (group, version).
    ResourceList(String, String),
    /// A served resource.
    Resource(Target),
    /// `/openapi/v2`.
    OpenApiV2,
    /// `/openapi/v3`.
    OpenApiV3Index,
    /// `/openapi/v3/api/v1`, `/openapi/v3/apis/<group>/<version>`: (group, version).
    OpenApiV3(String, String),
    /// A review kind (`selfsubjectaccessreviews` ...): its index in [`REVIEWS`].
    Review(usize),
    /// A path of a group the server does not serve (`/apis/batch/...`): a real server's last
    /// handler answers it with Go's plain-text `404 page not found`.
    NotServed,
    /// Anything else (a served group's unknown resource, ...): `404` with a `Status`.
    NotFound,
}

/// The resource a path names.
#[derive(Debug, PartialEq)]
pub struct Target {
    /// The kind.
    pub res: ResourceId,
    /// The namespace in the path.
    pub namespace: Option<String>,
    /// The object's name.
    pub name: Option<String>,
    /// The subresource (`status`, `scale`, `eviction`).
    pub sub: Option<String>,
    /// Whether the path is the legacy `/watch/` form.
    pub watch_path: bool,
}

/// Parses a request path.
#[must_use]
pub fn route(path: &str) -> Route {
    let segs: Vec<&str> = path
        .trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    if let ["apis", g, ..] = segs.as_slice()
        && !GROUPS.contains(g)
    {
        return Route::NotServed;
    }
    match segs.as_slice() {
        ["openapi", "v2"] => return Route::OpenApiV2,
        ["openapi", "v3"] => return Route::OpenApiV3Index,
        ["openapi", "v3", "api", v] => return Route::OpenApiV3(String::new(), (*v).to_owned()),
        ["openapi", "v3", "apis", g, v] => {
            return Route::OpenApiV3((*g).to_owned(), (*v).to_owned());
        }
        _ => {}
    }
    match segs.as_slice() {
        ["version"] => return Route::Version,
        ["healthz"] | ["readyz"] | ["livez"] => return Route::Health,
        ["api"] => return Route::ApiVersions,
        ["apis"] => return Route::GroupList,
        ["apis", g] => return Route::Group((*g).to_owned()),
        ["api", v] => return Route::ResourceList(String::new(), (*v).to_owned()),
        ["apis", g, v] => return Route::ResourceList((*g).to_owned(), (*v).to_owned()),
        ["apis", g, "v1", plural] => {
            if let Some(i) = REVIEWS.iter().position(|r| r.0 == *g && r.1 == *plural) {
                return Route::Review(i);
            }
        }
        _ => {}
    }
    let (group, version, rest) = match segs.as_slice() {
        ["api", v, rest @ ..] => ("", *v, rest),
        ["apis", g, v, rest @ ..] => (*g, *v, rest),
        _ => return Route::NotFound,
    };
    let (watch_path, rest) = match rest {
        ["watch", rest @ ..] => (true, rest),
        _ => (false, rest),
    };
    let (namespace, rest) = match rest {
        ["namespaces", ns, tail @ ..]
            if !(tail.is_empty()
                || group.is_empty()
                    && tail.len() == 1
                    && matches!(tail[0], "status" | "finalize")) =>
        {
            (Some((*ns).to_owned()), tail)
        }
        _ => (None, rest),
    };
    let (plural, name, sub) = match rest {
        [p] => (*p, None, None),
        [p, n] => (*p, Some((*n).to_owned()), None),
        [p, n, s] => (*p, Some((*n).to_owned()), Some((*s).to_owned())),
        _ => return Route::NotFound,
    };
    match lookup(group, version, plural) {
        Some(res) if RESOURCES[res].namespaced || namespace.is_none() => Route::Resource(Target {
            res,
            namespace,
            name,
            sub,
            watch_path,
        }),
        _ => Route::NotFound,
    }
}

/// The verb of a request on a resource, as RBAC names it.
#[must_use]
pub fn verb_of(method: &Method, t: &Target, watch: bool) -> &'static str {
    match (method.as_str(), t.name.is_some()) {
        ("GET", _) if watch => "watch",
        ("GET", true) => "get",
        ("GET", false) => "list",
        ("POST", _) => "create",
        ("PUT", _) => "update",
        ("PATCH", _) => "patch",
        ("DELETE", true) => "delete",
        ("DELETE", false) => "deletecollection",
        _ => "unknown",
    }
}

/// A handler of one verb on a resource.
pub type Run = fn(&Request<'_>) -> Result<Answer, ApiError>;

/// One row of the routing table.
pub struct Handler {
    /// The RBAC verb (`get`, `list`, `watch`, `create`, `update`, `patch`, `delete`,
    /// `deletecollection`).
    pub verb: &'static str,
    /// The subresource, if any.
    pub sub: Option<&'static str>,
    /// Whether the path names one object (`None`: either).
    pub named: Option<bool>,
    /// Which kinds have it.
    pub serves: fn(&ResourceType) -> bool,
    /// The handler.
    pub run: Run,
}

fn every(_: &ResourceType) -> bool {
    true
}

fn scalable(rt: &ResourceType) -> bool {
    rt.has_scale
}

fn pods(rt: &ResourceType) -> bool {
    rt.plural == "pods" && rt.group.is_empty()
}

const fn row(
    verb: &'static str,
    sub: Option<&'static str>,
    named: Option<bool>,
    serves: fn(&ResourceType) -> bool,
    run: Run,
) -> Handler {
    Handler {
        verb,
        sub,
        named,
        serves,
        run,
    }
}

/// The routing table: verb, subresource, whether the path names an object, which kinds, handler.
pub static HANDLERS: &[Handler] = &[
    row("watch", None, None, every, watch::start),
    row("list", None, Some(false), every, read::list),
    row("get", None, Some(true), every, read::get),
    row("get", Some("status"), Some(true), every, read::get),
    row("get", Some("scale"), Some(true), scalable, scale::get),
    row("create", None, Some(false), every, write::create),
    row(
        "create",
        Some("eviction"),
        Some(true),
        pods,
        eviction::create,
    ),
    row("update", None, Some(true), every, write::update),
    row("update", Some("status"), Some(true), every, write::update),
    row("update", Some("scale"), Some(true), scalable, scale::update),
    row("patch", None, Some(true), every, patch::patch),
    row("patch", Some("status"), Some(true), every, patch::patch),
    row("patch", Some("scale"), Some(true), scalable, scale::patch),
    row("delete", None, Some(true), every, write::delete),
    row(
        "deletecollection",
        None,
        Some(false),
        every,
        write::delete_collection,
    ),
];

/// The handler of `verb` on `t`, or the refusal a real server gives: `404` for a subresource
/// the kind does not have, `405` for a verb the path does not take.
///
/// # Errors
///
/// [`ApiError::no_route`] or [`ApiError::method_not_allowed`].
pub fn handler(verb: &str, t: &Target, method: &Method, path: &str) -> Result<Run, ApiError> {
    let rt = &RESOURCES[t.res];
    let found = HANDLERS.iter().find(|h| {
        h.verb == verb
            && h.sub == t.sub.as_deref()
            && h.named.is_none_or(|n| n == t.name.is_some())
            && (h.serves)(rt)
    });
    match (found, t.sub.as_deref()) {
        (Some(h), _) => Ok(h.run),
        (None, Some(other)) if t.name.is_some() && matches!(verb, "get" | "update" | "patch") => {
            Err(ApiError::no_route(&format!("{path} (subresource {other})")))
        }
        (None, _) => Err(ApiError::method_not_allowed(method.as_str(), path)),
    }
}

#[cfg(test)]
mod tests {
    use super::super::super::resources::{DEPLOYMENTS, NAMESPACES, PODS};
    use super::*;

    #[test]
    fn routes_kubernetes_paths() {
        let r = |p: &str| route(p);
        assert_eq!(
            r("/api/v1/namespaces/prod-1/pods"),
            Route::Resource(Target {
                res: PODS,
                namespace: Some("prod-1".into()),
                name: None,
                sub: None,
                watch_path: false
            })
        );
        assert_eq!(
            r("/api/v1/namespaces/prod-1"),
            Route::Resource(Target {
                res: NAMESPACES,
                namespace: None,
                name: Some("prod-1".into()),
                sub: None,
                watch_path: false
            })
        );
        assert_eq!(
            r("/api/v1/namespaces/prod-1/status"),
            Route::Resource(Target {
                res: NAMESPACES,
                namespace: None,
                name: Some("prod-1".into()),
                sub: Some("status".into()),
                watch_path: false
            })
        );
        assert_eq!(
            r("/apis/apps/v1/watch/namespaces/a/deployments/web"),
            Route::Resource(Target {
                res: DEPLOYMENTS,
                namespace: Some("a".into()),
                name: Some("web".into()),
                sub: None,
                watch_path: true
            })
        );
        assert_eq!(
            r("/apis/apps/v1/namespaces/a/deployments/web/scale"),
            Route::Resource(Target {
                res: DEPLOYMENTS,
                namespace: Some("a".into()),
                name: Some("web".into()),
                sub: Some("scale".into()),
                watch_path: false
            })
        );
        assert_eq!(
            r("/api/v1/pods"),
            Route::Resource(Target {
                res: PODS,
                namespace: None,
                name: None,
                sub: None,
                watch_path: false
            })
        );
        assert_eq!(r("/api/v1/namespaces/a/nodes"), Route::NotFound);
        assert_eq!(r("/api/v1/namespaces/a/widgets"), Route::NotFound);
        assert_eq!(r("/apis/batch/v1/namespaces/a/jobs"), Route::NotServed);
        assert_eq!(
            r("/apis/apiextensions.k8s.io/v1/customresourcedefinitions"),
            Route::NotServed
        );
        assert_eq!(r("/apis/autoscaling/v2"), Route::NotServed);
        assert_eq!(
            r("/apis/authentication.k8s.io/v1/selfsubjectreviews"),
            Route::Review(2)
        );
        assert_eq!(
            r("/apis/apps/v1"),
            Route::ResourceList("apps".into(), "v1".into())
        );
    }

    #[test]
    fn the_table_routes_subresources_to_the_kinds_that_have_them() {
        let t = |res, name: Option<&str>, sub: Option<&str>| Target {
            res,
            namespace: Some("a".into()),
            name: name.map(str::to_owned),
            sub: sub.map(str::to_owned),
            watch_path: false,
        };
        let path = "/p";
        assert!(
            handler(
                "get",
                &t(DEPLOYMENTS, Some("web"), Some("scale")),
                &Method::GET,
                path
            )
            .is_ok()
        );
        let err = handler(
            "get",
            &t(PODS, Some("web"), Some("scale")),
            &Method::GET,
            path,
        )
        .expect_err("pods have no scale");
        assert_eq!((err.code, err.reason), (404, "NotFound"));
        let err = handler("create", &t(PODS, Some("web"), None), &Method::POST, path)
            .expect_err("no create on a named path");
        assert_eq!((err.code, err.reason), (405, "MethodNotAllowed"));
        assert!(
            handler(
                "create",
                &t(PODS, Some("web"), Some("eviction")),
                &Method::POST,
                path
            )
            .is_ok()
        );
        assert!(
            handler(
                "create",
                &t(DEPLOYMENTS, Some("web"), Some("eviction")),
                &Method::POST,
                path
            )
            .is_err()
        );
    }
}
