//! The HTTP front of the API server. [`handle`] is the one entry: it reads the request, routes
//! the path ([`route`]), checks the role hook ([`authz`]) and calls the handler the routing
//! table names for the verb and subresource. Handlers live by kind of change: [`read`] (get,
//! list), [`write`] (create, update, delete), [`patch`], [`scale`], [`eviction`], [`watch`] and
//! [`review`] (access reviews).

mod authz;
mod eviction;
mod patch;
mod read;
mod review;
mod route;
mod scale;
mod watch;
mod write;

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::{Duration, SystemTime};

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tokio::sync::Notify;

use super::controller::Controller;
use super::discovery;
use super::error::ApiError;
use super::openapi;
use super::protobuf;
use super::resources::{DEPLOYMENTS, NAMESPACES, ResourceId};
use super::selector::{FieldSelector, LabelSelector};
use super::store::Store;
use firedrill_core::clock::Clock;
use route::{Route, Target};

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

fn json_response(code: u16, body: &Value) -> Response {
    let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// A plain-text answer, as Go's `http.NotFound` writes it.
fn text_response(code: u16, text: &'static str) -> Response {
    (
        StatusCode::from_u16(code).unwrap_or(StatusCode::NOT_FOUND),
        [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        text,
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

/// Wall-clock seconds now: tables print ages as kubectl does, against the wall clock.
fn now_secs(clock: &Clock) -> u64 {
    super::store::wall_now(clock)
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The one handler behind every path.
pub async fn handle(State(shared): State<Arc<Shared>>, req: axum::extract::Request) -> Response {
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
    // Bodies are JSON or YAML, or the protobuf client-go's typed clients send (decoded to
    // JSON here, or refused with 415 when the server cannot decode it: see `protobuf`). CBOR
    // gets 415, on which client-go retries in JSON.
    let content_type = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    // A group the server does not serve is refused before its body is read, as the real
    // server's last handler refuses it.
    if route::route(uri.path()) == Route::NotServed {
        return text_response(404, "404 page not found\n");
    }
    let body = if body.is_empty() {
        body
    } else if content_type.starts_with(protobuf::MEDIA_TYPE) || body.starts_with(protobuf::MAGIC) {
        match protobuf::decode(&body) {
            Ok(v) => Bytes::from(v.to_string()),
            Err(e) => return error_response(&e),
        }
    } else if content_type.starts_with("application/cbor")
        || content_type.starts_with("application/apply-patch+cbor")
    {
        return error_response(&ApiError::unsupported_media_type(content_type));
    } else {
        body
    };
    match dispatch(&shared, &parts.method, &uri, &parts.headers, &query, &body) {
        Ok(Answer::Json(code, v)) => json_response(code, &v),
        Ok(Answer::Watch(w)) => watch::serve(shared, w),
        Ok(Answer::Text(code, text)) => text_response(code, text),
        Err(e) => error_response(&e),
    }
}

/// What a handler answers: a JSON body with its code, or a watch to stream.
pub enum Answer {
    /// A JSON body.
    Json(u16, Value),
    /// A watch.
    Watch(watch::WatchRequest),
    /// A plain-text body (what Go's `http.NotFound` writes).
    Text(u16, &'static str),
}

/// A request on a resource, as its handler sees it.
pub struct Request<'a> {
    shared: &'a Arc<Shared>,
    headers: &'a HeaderMap,
    query: &'a HashMap<String, String>,
    body: &'a Bytes,
    target: Target,
    /// The namespace ("" for cluster-scoped kinds and all-namespace lists).
    ns: String,
    dry_run: bool,
    labels: LabelSelector,
    fields: FieldSelector,
}

impl Request<'_> {
    /// The field manager of this write (`fieldManager`, else the User-Agent's program).
    fn manager(&self) -> String {
        super::managed::manager_of(
            self.query.get("fieldManager").map(String::as_str),
            self.headers
                .get(header::USER_AGENT)
                .and_then(|v| v.to_str().ok()),
        )
    }

    /// Checks a written object's fields against its schema (`fieldValidation`).
    fn check_fields(&self, obj: &mut Value) -> Result<(), ApiError> {
        let mode =
            openapi::FieldValidation::parse(self.query.get("fieldValidation").map(String::as_str))?;
        openapi::check_fields(self.target.res, obj, mode)
    }

    fn name(&self) -> &str {
        self.target.name.as_deref().unwrap_or_default()
    }

    fn sub(&self) -> Option<&str> {
        self.target.sub.as_deref()
    }

    fn content_type(&self) -> &str {
        self.headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
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
    let t = match route::route(path) {
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
        Route::Review(kind) => return review::review(shared, kind, method, path, body),
        Route::OpenApiV3Index => return get_only(Some(openapi::v3_index())),
        Route::OpenApiV3(g, v) => return get_only(openapi::v3_document(&g, &v)),
        Route::OpenApiV2 => {
            let accept = headers
                .get(header::ACCEPT)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            if !(accept.is_empty() || accept.contains("json") || accept.contains("*/*")) {
                return Err(ApiError::not_acceptable(
                    "only application/json is served for /openapi/v2: the embedded API server does not encode OpenAPI in protobuf (use /openapi/v3)",
                ));
            }
            return get_only(Some(openapi::v2_document()));
        }
        Route::NotServed => return Ok(Answer::Text(404, "404 page not found\n")),
        Route::NotFound => return Err(ApiError::no_route(path)),
        Route::Resource(t) => t,
    };
    let rt = &super::resources::RESOURCES[t.res];
    let watch = t.watch_path || flag(query, "watch");
    let verb = route::verb_of(method, &t, watch);
    let (ns, name, sub) = (t.namespace.as_deref(), t.name.as_deref(), t.sub.as_deref());
    super::audit::resource(&shared.region, verb, rt, ns, name, sub);
    authz::check_role(shared, verb, &t)?;
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
    let run = route::handler(verb, &t, method, path)?;
    let req = Request {
        shared,
        headers,
        query,
        body,
        ns: t.namespace.clone().unwrap_or_default(),
        target: t,
        dry_run,
        labels,
        fields,
    };
    run(&req)
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
