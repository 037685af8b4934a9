//! The HTTP front of the API server: one handler that routes Kubernetes paths, checks the role
//! hook, and answers lists, gets, writes, patches, subresources and watches in JSON.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::{Duration, SystemTime};

use axum::body::{Body, Bytes};
use axum::extract::{Query, Request, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tokio::sync::{Notify, broadcast, mpsc};

use super::controller::{self, Controller};
use super::discovery;
use super::error::ApiError;
use super::patch;
use super::resources::{DEPLOYMENTS, NAMESPACES, PDBS, PODS, RESOURCES, ResourceId, lookup};
use super::selector::{FieldSelector, LabelSelector};
use super::store::{Change, ChangeKind, Store, labels_of, name_of, rv_of};
use super::table;
use firedrill_core::clock::Clock;

/// Everything one server and its controller share; one mutex guards the store and the
/// controller's ground truth so a write and its reconcile are atomic.
pub struct World {
    /// The objects.
    pub store: Store,
    /// The controller's state and ground truth.
    pub ctl: Controller,
}

/// State shared by the HTTP handler, the watches, the controller task and the control API.
pub struct Shared {
    /// Region name (for messages).
    pub region: String,
    /// Store + controller.
    pub world: Mutex<World>,
    /// Wakes the controller task after a write.
    pub wake: Notify,
    /// The platform clock.
    pub clock: Clock,
    /// Forbidden (verb, resource) pairs: the role check hook.
    pub forbidden: Mutex<BTreeSet<(String, String)>>,
    /// The user named in 403 messages.
    pub user: String,
    /// Bumped to end every open watch (cluster stop, or a simulated API server restart).
    pub watch_epoch: tokio::sync::watch::Sender<u64>,
    /// The bound address.
    pub addr: OnceLock<SocketAddr>,
    /// The last requests (`METHOD path?query`), for diagnosing clients.
    pub requests: Mutex<VecDeque<String>>,
    /// How often watches that asked for bookmarks get one (wall time).
    pub bookmark_every: Duration,
    /// True while the region is dark: requests hang (clients see timeouts, as with a region
    /// whose control plane is unreachable) until it is lit again.
    pub dark: tokio::sync::watch::Sender<bool>,
}

impl Shared {
    /// Locks the world (a poisoned lock is recovered: the store stays consistent per write).
    pub fn lock(&self) -> MutexGuard<'_, World> {
        self.world.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A parsed request path.
#[derive(Debug, PartialEq)]
enum Route {
    Version,
    Health,
    ApiVersions,
    GroupList,
    Group(String),
    ResourceList(String, String),
    Resource(Target),
    AccessReview,
    NotFound,
}

#[derive(Debug, PartialEq)]
struct Target {
    res: ResourceId,
    namespace: Option<String>,
    name: Option<String>,
    sub: Option<String>,
    watch_path: bool,
}

fn route(path: &str) -> Route {
    let segs: Vec<&str> = path
        .trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    match segs.as_slice() {
        ["version"] => return Route::Version,
        ["healthz"] | ["readyz"] | ["livez"] => return Route::Health,
        ["api"] => return Route::ApiVersions,
        ["apis"] => return Route::GroupList,
        ["apis", g] => return Route::Group((*g).to_owned()),
        ["api", v] => return Route::ResourceList(String::new(), (*v).to_owned()),
        ["apis", g, v] => return Route::ResourceList((*g).to_owned(), (*v).to_owned()),
        [
            "apis",
            "authorization.k8s.io",
            "v1",
            "selfsubjectaccessreviews",
        ] => return Route::AccessReview,
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

fn json_response(code: u16, body: &Value) -> Response {
    let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn error_response(err: &ApiError) -> Response {
    json_response(err.code, &err.status())
}

fn wants_table(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("as=Table"))
}

fn now_secs(clock: &Clock) -> u64 {
    clock
        .wall(clock.now())
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The one handler behind every path.
pub async fn handle(State(shared): State<Arc<Shared>>, req: Request) -> Response {
    let mut dark = shared.dark.subscribe();
    // An error only means the cluster is gone; the connection is dropped with it.
    let _ = dark.wait_for(|d| !d).await;
    let (parts, body) = req.into_parts();
    let uri = parts.uri.clone();
    {
        let mut log = shared
            .requests
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if log.len() >= 2_000 {
            log.pop_front();
        }
        log.push_back(format!("{} {}", parts.method, uri));
    }
    let query: HashMap<String, String> = Query::try_from_uri(&uri)
        .map(|q: Query<HashMap<String, String>>| q.0)
        .unwrap_or_default();
    let body = match axum::body::to_bytes(body, 64 * 1024 * 1024).await {
        Ok(b) => b,
        Err(e) => {
            return error_response(&ApiError::bad_request(format!(
                "cannot read the request body: {e}"
            )));
        }
    };
    // Bodies are JSON (or YAML) only: a protobuf or CBOR body gets 415, on which client-go
    // retries the request in JSON.
    let content_type = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if !body.is_empty()
        && !body.starts_with(PROTOBUF_MAGIC)
        && (content_type.starts_with("application/vnd.kubernetes.protobuf")
            || content_type.starts_with("application/cbor"))
    {
        return error_response(&ApiError::unsupported_media_type(content_type));
    }
    match dispatch(&shared, &parts.method, &uri, &parts.headers, &query, &body) {
        Ok(Answer::Json(code, v)) => json_response(code, &v),
        Ok(Answer::Watch(w)) => watch(shared, w),
        Err(e) => error_response(&e),
    }
}

enum Answer {
    Json(u16, Value),
    Watch(WatchRequest),
}

struct WatchRequest {
    res: ResourceId,
    namespace: Option<String>,
    labels: LabelSelector,
    fields: FieldSelector,
    since: Option<u64>,
    bookmarks: bool,
    send_initial_events: bool,
    timeout: Duration,
    table: bool,
}

fn verb_of(method: &Method, t: &Target, watch: bool) -> &'static str {
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

fn parse_body(body: &Bytes) -> Result<Value, ApiError> {
    serde_json::from_slice(body).or_else(|json_err| {
        serde_yaml::from_slice::<Value>(body).map_err(|_| {
            ApiError::bad_request(format!("the request body is not valid JSON: {json_err}"))
        })
    })
}

fn flag(query: &HashMap<String, String>, key: &str) -> bool {
    query.get(key).is_some_and(|v| v == "true" || v == "1")
}

fn dispatch(
    shared: &Arc<Shared>,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    query: &HashMap<String, String>,
    body: &Bytes,
) -> Result<Answer, ApiError> {
    let path = uri.path();
    let get_only = |v: Option<Value>| match (method, v) {
        (&Method::GET, Some(v)) => Ok(Answer::Json(200, v)),
        (&Method::GET, None) => Err(ApiError::no_route(path)),
        _ => Err(ApiError::method_not_allowed(method.as_str(), path)),
    };
    let t = match route(path) {
        Route::Version => return get_only(Some(discovery::version())),
        Route::Health => return Ok(Answer::Json(200, json!("ok"))),
        Route::ApiVersions => {
            let addr = shared
                .addr
                .get()
                .copied()
                .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0)));
            return get_only(Some(discovery::api_versions(addr)));
        }
        Route::GroupList => return get_only(Some(discovery::group_list())),
        Route::Group(g) => return get_only(discovery::api_group(&g)),
        Route::ResourceList(g, v) => return get_only(discovery::resource_list(&g, &v)),
        Route::AccessReview => return access_review(shared, method, body),
        Route::NotFound => return Err(ApiError::no_route(path)),
        Route::Resource(t) => t,
    };
    let rt = &RESOURCES[t.res];
    let watch = t.watch_path || flag(query, "watch");
    let verb = verb_of(method, &t, watch);
    let (ns, name, sub) = (t.namespace.as_deref(), t.name.as_deref(), t.sub.as_deref());
    super::audit::resource(&shared.region, verb, rt, ns, name, sub);
    check_role(shared, verb, &t)?;
    let ns = t.namespace.clone().unwrap_or_default();
    let dry_run = query.get("dryRun").is_some_and(|v| v == "All");
    let labels = LabelSelector::parse(
        query
            .get("labelSelector")
            .map(String::as_str)
            .unwrap_or_default(),
    )
    .map_err(ApiError::bad_request)?;
    let fields = FieldSelector::parse(
        query
            .get("fieldSelector")
            .map(String::as_str)
            .unwrap_or_default(),
    )
    .map_err(ApiError::bad_request)?;
    match (verb, t.name.as_deref(), t.sub.as_deref()) {
        ("watch", name, None) => {
            let mut fields = fields;
            if let Some(name) = name {
                fields = FieldSelector::parse(&format!("metadata.name={name}"))
                    .map_err(ApiError::bad_request)?;
            }
            let since = match query.get("resourceVersion").map(String::as_str) {
                None | Some("") | Some("0") => None,
                Some(v) => Some(v.parse::<u64>().map_err(|_| {
                    ApiError::bad_request(format!("invalid resourceVersion {v:?}"))
                })?),
            };
            let timeout = query
                .get("timeoutSeconds")
                .and_then(|s| s.parse::<u64>().ok())
                .map_or(Duration::from_secs(1_800), Duration::from_secs);
            Ok(Answer::Watch(WatchRequest {
                res: t.res,
                namespace: t.namespace.clone(),
                labels,
                fields,
                since,
                bookmarks: flag(query, "allowWatchBookmarks"),
                send_initial_events: flag(query, "sendInitialEvents"),
                timeout,
                table: wants_table(headers),
            }))
        }
        ("list", None, None) => {
            let w = shared.lock();
            let items: Vec<Arc<Value>> = w
                .store
                .list(t.res, t.namespace.as_deref())
                .filter(|o| labels.matches(labels_of(o)) && fields.matches(o))
                .cloned()
                .collect();
            let rv = w.store.resource_version();
            drop(w);
            if wants_table(headers) {
                return Ok(Answer::Json(
                    200,
                    table::table(t.res, &items, rv, now_secs(&shared.clock)),
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
        ("get", Some(name), sub) => {
            let w = shared.lock();
            let obj = w
                .store
                .get(t.res, &ns, name)
                .cloned()
                .ok_or_else(|| ApiError::not_found(rt, name))?;
            drop(w);
            match sub {
                Some("scale") if rt.has_scale => Ok(Answer::Json(200, scale_of(&obj))),
                Some("status") | None => {
                    if sub.is_none() && wants_table(headers) {
                        let rv = rv_of(&obj).unwrap_or(0);
                        return Ok(Answer::Json(
                            200,
                            table::table(t.res, &[obj], rv, now_secs(&shared.clock)),
                        ));
                    }
                    Ok(Answer::Json(200, (*obj).clone()))
                }
                Some(other) => Err(ApiError::no_route(&format!("{path} (subresource {other})"))),
            }
        }
        ("create", None, None) => {
            let obj = parse_body(body)?;
            let mut tx = Tx::begin(shared, dry_run);
            let created = tx.store().create(t.res, &ns, obj)?;
            tx.commit(shared, t.res);
            Ok(Answer::Json(201, (*created).clone()))
        }
        ("create", Some(name), Some("eviction")) if t.res == PODS => {
            evict(shared, dry_run, &ns, name, body)
        }
        ("update", Some(name), sub) => {
            let obj = parse_body(body)?;
            match sub {
                Some("scale") if rt.has_scale => {
                    write_scale(shared, dry_run, t.res, &ns, name, |_| Ok(obj))
                }
                None | Some("status") => {
                    let mut tx = Tx::begin(shared, dry_run);
                    let updated = tx.store().update(t.res, &ns, name, obj, sub)?;
                    tx.commit(shared, t.res);
                    Ok(Answer::Json(200, (*updated).clone()))
                }
                Some(other) => Err(ApiError::no_route(&format!("{path} (subresource {other})"))),
            }
        }
        ("patch", Some(name), sub) => {
            let content_type = headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned();
            let patch_body = parse_body(body)?;
            let apply = |current: &Value| -> Result<Value, ApiError> {
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
            };
            match sub {
                Some("scale") if rt.has_scale => {
                    write_scale(shared, dry_run, t.res, &ns, name, |scale| apply(scale))
                }
                None | Some("status") => {
                    let mut tx = Tx::begin(shared, dry_run);
                    let current = match tx.store().get(t.res, &ns, name).cloned() {
                        Some(c) => c,
                        None if content_type.starts_with("application/apply-patch") => {
                            let created = tx.store().create(t.res, &ns, patch_body.clone())?;
                            tx.commit(shared, t.res);
                            return Ok(Answer::Json(201, (*created).clone()));
                        }
                        None => return Err(ApiError::not_found(rt, name)),
                    };
                    let patched = apply(&current)?;
                    let updated = tx.store().update(t.res, &ns, name, patched, sub)?;
                    tx.commit(shared, t.res);
                    Ok(Answer::Json(200, (*updated).clone()))
                }
                Some(other) => Err(ApiError::no_route(&format!("{path} (subresource {other})"))),
            }
        }
        ("delete", Some(name), None) => {
            let options = if body.is_empty() {
                Value::Null
            } else {
                parse_body(body)?
            };
            let uid = options["preconditions"]["uid"].as_str();
            let mut tx = Tx::begin(shared, dry_run || body_dry_run(&options));
            let gone = tx.store().delete(t.res, &ns, name, uid)?;
            tx.commit(shared, t.res);
            Ok(Answer::Json(200, (*gone).clone()))
        }
        ("deletecollection", None, None) => {
            let mut tx = Tx::begin(shared, dry_run);
            let names: Vec<(String, String)> = tx
                .store()
                .list(t.res, t.namespace.as_deref())
                .filter(|o| labels.matches(labels_of(o)) && fields.matches(o))
                .map(|o| {
                    (
                        super::store::namespace_of(o).to_owned(),
                        name_of(o).to_owned(),
                    )
                })
                .collect();
            let mut items = Vec::new();
            for (ons, name) in names {
                items.push((*tx.store().delete(t.res, &ons, &name, None)?).clone());
            }
            let rv = tx.store().resource_version();
            tx.commit(shared, t.res);
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
        _ => Err(ApiError::method_not_allowed(method.as_str(), path)),
    }
}

/// Whether DeleteOptions ask for a dry run (`"dryRun": ["All"]`, as kube-rs and client-go send
/// it in the body of deletes and evictions).
fn body_dry_run(options: &Value) -> bool {
    options["dryRun"]
        .as_array()
        .is_some_and(|d| d.iter().any(|v| v == "All"))
}

/// A write: on the real store, or (for `dryRun=All`) on a scratch copy that is thrown away,
/// so a dry run validates, defaults and answers exactly like the real write but changes nothing.
struct Tx<'a> {
    guard: MutexGuard<'a, World>,
    scratch: Option<Store>,
}

impl<'a> Tx<'a> {
    fn begin(shared: &'a Shared, dry_run: bool) -> Self {
        let guard = shared.lock();
        let scratch = dry_run.then(|| guard.store.scratch_copy());
        Self { guard, scratch }
    }

    fn store(&mut self) -> &mut Store {
        match &mut self.scratch {
            Some(s) => s,
            None => &mut self.guard.store,
        }
    }

    fn commit(mut self, shared: &Shared, res: ResourceId) {
        if self.scratch.is_none() {
            after_write(shared, &mut self.guard, res);
        }
    }
}

/// After a write: a deployment change is reconciled at once (so its status never claims a
/// completed rollout for a spec the controller has not seen); anything else wakes the controller.
fn after_write(shared: &Shared, w: &mut World, res: ResourceId) {
    if res == DEPLOYMENTS {
        let World { store, ctl } = w;
        ctl.reconcile(store);
    }
    shared.wake.notify_one();
}

fn check_role(shared: &Shared, verb: &str, t: &Target) -> Result<(), ApiError> {
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
fn denied(shared: &Shared, verb: &str, resource: &str, namespace: Option<&str>) -> bool {
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

fn access_review(shared: &Shared, method: &Method, body: &Bytes) -> Result<Answer, ApiError> {
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
    super::audit::access_review(&shared.region, attrs);
    let verb = attrs["verb"].as_str().unwrap_or_default().to_owned();
    let mut resource = attrs["resource"].as_str().unwrap_or_default().to_owned();
    if let Some(sub) = attrs["subresource"].as_str().filter(|s| !s.is_empty()) {
        resource = format!("{resource}/{sub}");
    }
    let namespace = attrs["namespace"].as_str().filter(|n| !n.is_empty());
    let denied = denied(shared, &verb, &resource, namespace);
    // RBAC answers a refusal with allowed=false and no reason; kubectl prints a plain "no".
    review["status"] = json!({"allowed": !denied});
    review["apiVersion"] = json!("authorization.k8s.io/v1");
    review["kind"] = json!("SelfSubjectAccessReview");
    Ok(Answer::Json(201, review))
}

/// The prefix of a Kubernetes protobuf body (`k8s\0`, then a `runtime.Unknown`).
const PROTOBUF_MAGIC: &[u8] = b"k8s\0";

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

/// The `autoscaling/v1` Scale of a deployment (or replica set).
fn scale_of(obj: &Value) -> Value {
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

fn event_line(kind: &str, object: &Value) -> Bytes {
    let mut line = json!({"type": kind, "object": object}).to_string();
    line.push('\n');
    Bytes::from(line)
}

struct Filter {
    res: ResourceId,
    namespace: Option<String>,
    labels: LabelSelector,
    fields: FieldSelector,
    table: bool,
}

impl Filter {
    fn matches(&self, obj: &Value) -> bool {
        self.namespace
            .as_deref()
            .is_none_or(|ns| super::store::namespace_of(obj) == ns)
            && self.labels.matches(labels_of(obj))
            && self.fields.matches(obj)
    }

    fn render(&self, obj: &Value, clock: &Clock) -> Value {
        if self.table {
            let rv = rv_of(obj).unwrap_or(0);
            table::table(self.res, &[Arc::new(obj.clone())], rv, now_secs(clock))
        } else {
            obj.clone()
        }
    }

    /// The event a watch with this filter sees for a change, if any: a change that moves an
    /// object into the filter is ADDED, out of it DELETED.
    fn event(&self, c: &Change, clock: &Clock) -> Option<Bytes> {
        if c.resource != self.res {
            return None;
        }
        let now = self.matches(&c.object);
        let before = c.previous.as_ref().is_some_and(|p| self.matches(p));
        let kind = match (c.kind, before, now) {
            (ChangeKind::Added, _, true) => "ADDED",
            (ChangeKind::Modified, true, true) => "MODIFIED",
            (ChangeKind::Modified, false, true) => "ADDED",
            (ChangeKind::Modified, true, false) => "DELETED",
            (ChangeKind::Deleted, _, true) => "DELETED",
            _ => return None,
        };
        Some(event_line(kind, &self.render(&c.object, clock)))
    }
}

fn bookmark(res: ResourceId, rv: u64, initial_end: bool) -> Bytes {
    let rt = &RESOURCES[res];
    let mut meta = json!({"resourceVersion": rv.to_string()});
    if initial_end {
        meta["annotations"] = json!({"k8s.io/initial-events-end": "true"});
    }
    event_line(
        "BOOKMARK",
        &json!({"kind": rt.kind, "apiVersion": rt.api_version(), "metadata": meta}),
    )
}

fn watch(shared: Arc<Shared>, req: WatchRequest) -> Response {
    let filter = Filter {
        res: req.res,
        namespace: req.namespace.clone(),
        labels: req.labels.clone(),
        fields: req.fields.clone(),
        table: req.table,
    };
    let (tx, rx) = mpsc::channel::<Bytes>(1_024);
    let mut initial: Vec<Bytes> = Vec::new();
    let (sub, start_rv) = {
        let w = shared.lock();
        let rv = w.store.resource_version();
        match req.since {
            None => {
                for obj in w
                    .store
                    .list(req.res, req.namespace.as_deref())
                    .filter(|o| filter.matches(o))
                {
                    initial.push(event_line("ADDED", &filter.render(obj, &shared.clock)));
                }
                if req.send_initial_events && req.bookmarks {
                    initial.push(bookmark(req.res, rv, true));
                }
                (Some(w.store.subscribe()), rv)
            }
            Some(since) => match w.store.changes_since(since) {
                Ok(changes) => {
                    initial.extend(
                        changes
                            .iter()
                            .filter_map(|c| filter.event(c, &shared.clock)),
                    );
                    (Some(w.store.subscribe()), rv)
                }
                Err(e) => {
                    initial.push(event_line("ERROR", &e.status()));
                    (None, rv)
                }
            },
        }
    };
    let mut closed = shared.watch_epoch.subscribe();
    let clock = shared.clock;
    let bookmark_every = shared.bookmark_every;
    tokio::spawn(async move {
        for line in initial {
            if tx.send(line).await.is_err() {
                return;
            }
        }
        let Some(mut sub) = sub else { return };
        let mut last_rv = start_rv;
        let deadline = tokio::time::sleep(req.timeout);
        tokio::pin!(deadline);
        let mut ticker = tokio::time::interval(bookmark_every);
        ticker.tick().await;
        loop {
            tokio::select! {
                () = tx.closed() => return,
                _ = closed.changed() => return,
                () = &mut deadline => return,
                _ = ticker.tick(), if req.bookmarks => {
                    if tx.send(bookmark(req.res, last_rv, false)).await.is_err() {
                        return;
                    }
                }
                msg = sub.recv() => match msg {
                    Ok(change) => {
                        if change.rv <= last_rv {
                            continue;
                        }
                        last_rv = change.rv;
                        if let Some(line) = filter.event(&change, &clock)
                            && tx.send(line).await.is_err()
                        {
                            return;
                        }
                    }
                    // A watcher that fell behind is closed; the client resumes from its last
                    // version, which the history still covers.
                    Err(broadcast::error::RecvError::Lagged(_) | broadcast::error::RecvError::Closed) => return,
                },
            }
        }
    });
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|b| (Ok::<Bytes, Infallible>(b), rx))
    });
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from_stream(stream))
        .unwrap_or_else(|_| {
            error_response(&ApiError::bad_request(
                "cannot build the watch response".to_owned(),
            ))
        })
}

/// Creates a namespace if it is missing (the control API's helper).
///
/// # Errors
///
/// Whatever the store refuses.
pub fn ensure_namespace(store: &mut Store, name: &str) -> Result<(), ApiError> {
    if store.get(NAMESPACES, "", name).is_none() {
        store.create(NAMESPACES, "", json!({"metadata": {"name": name}}))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
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
        assert_eq!(
            r("/apis/apps/v1"),
            Route::ResourceList("apps".into(), "v1".into())
        );
    }
}
