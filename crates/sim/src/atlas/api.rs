//! The HTTP side of the embedded Atlas API: routes, authentication and roles, media-type
//! versions, the token bucket, Atlas-shaped errors, and the state changes each request
//! starts (run as tasks that wait their modelled time).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, State as Extract};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use rand::{Rng as _, SeedableRng as _};
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};

use super::auth::{Auth, Identity, Refusal};
use super::cluster::{Cluster, Simulation};
use super::{AtlasSpec, ClusterStatus, Limits, Timing};
use crate::kube::wall_now;
use firedrill_core::clock::{Clock, PlatformTime};

/// The shared state of the API.
pub(super) struct State {
    project: String,
    clusters: Vec<Mutex<Cluster>>,
    auth: Auth,
    timing: Timing,
    limits: Limits,
    clock: Clock,
    rng: Mutex<ChaCha8Rng>,
    bucket: Mutex<(f64, PlatformTime)>,
    tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

/// A refusal, boxed: an answer is large and the success path is the common one.
type Refused = Box<Response>;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// An Atlas error body.
fn error(status: StatusCode, code: &str, detail: impl Into<String>, parameters: Value) -> Response {
    let detail = detail.into();
    let body = json!({
        "detail": detail,
        "error": status.as_u16(),
        "errorCode": code,
        "parameters": parameters,
        "reason": status.canonical_reason().unwrap_or(""),
    });
    (status, axum::Json(body)).into_response()
}

fn ok(body: Value, version: &str) -> Response {
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            format!("application/vnd.atlas.{version}+json"),
        )],
        body.to_string(),
    )
        .into_response()
}

/// Which roles may do what.
#[derive(Clone, Copy)]
enum Needs {
    AnyRole,
    ClusterManager,
    Owner,
}

impl Needs {
    fn allows(self, roles: &[String]) -> bool {
        roles.iter().any(|r| match self {
            Needs::AnyRole => r.starts_with("GROUP_"),
            Needs::ClusterManager => r == "GROUP_OWNER" || r == "GROUP_CLUSTER_MANAGER",
            Needs::Owner => r == "GROUP_OWNER",
        })
    }
}

impl State {
    pub(super) fn new(spec: AtlasSpec, clock: Clock) -> Self {
        let clusters = spec
            .clusters
            .into_iter()
            .enumerate()
            .map(|(i, c)| Mutex::new(Cluster::new(c, spec.seed, i as u64 + 1, &clock)))
            .collect();
        Self {
            project: spec.project,
            clusters,
            auth: Auth::new(spec.keys, spec.accounts),
            timing: spec.timing,
            limits: spec.limits,
            clock,
            rng: Mutex::new(ChaCha8Rng::seed_from_u64(spec.seed ^ 0xA71A5)),
            bucket: Mutex::new((f64::from(spec.limits.capacity), clock.now())),
            tasks: Mutex::new(Vec::new()),
        }
    }

    pub(super) fn stop(&self) {
        for task in lock(&self.tasks).drain(..) {
            task.abort();
        }
    }

    pub(super) fn status(&self, name: &str) -> Option<ClusterStatus> {
        let cluster = self.cluster(name)?;
        let c = lock(cluster);
        Some(ClusterStatus {
            state: c.state.to_owned(),
            simulation: c.simulation.as_ref().map(|s| s.state.to_owned()),
            priorities: c
                .spec
                .regions
                .iter()
                .zip(&c.priorities)
                .map(|(r, p)| (r.atlas.clone(), *p))
                .collect(),
        })
    }

    fn cluster(&self, name: &str) -> Option<&Mutex<Cluster>> {
        self.position(name).map(|i| &self.clusters[i])
    }

    fn position(&self, name: &str) -> Option<usize> {
        self.clusters.iter().position(|c| lock(c).spec.name == name)
    }

    fn draw(&self, (low, high): (Duration, Duration)) -> Duration {
        if high <= low {
            return low;
        }
        let span = (high - low).as_millis() as u64;
        low + Duration::from_millis(lock(&self.rng).random_range(0..=span))
    }

    fn spawn(&self, task: impl std::future::Future<Output = ()> + Send + 'static) {
        let mut tasks = lock(&self.tasks);
        tasks.retain(|t| !t.is_finished());
        tasks.push(tokio::spawn(task));
    }

    /// Takes a token from the project's bucket; the seconds to wait when it is empty.
    fn take_token(&self) -> Result<(), u64> {
        let now = self.clock.now();
        let mut bucket = lock(&self.bucket);
        let elapsed = now.saturating_since(bucket.1).as_secs_f64();
        let per_second =
            f64::from(self.limits.refill) / self.limits.refill_every.as_secs_f64().max(0.001);
        bucket.0 = (bucket.0 + elapsed * per_second).min(f64::from(self.limits.capacity));
        bucket.1 = now;
        if bucket.0 >= 1.0 {
            bucket.0 -= 1.0;
            Ok(())
        } else {
            Err(((1.0 - bucket.0) / per_second).ceil().max(1.0) as u64)
        }
    }

    /// Authenticates, checks the role, the media type and the budget; the identity or the
    /// refusal to send.
    fn admit(
        &self,
        method: &Method,
        uri: &axum::http::Uri,
        headers: &HeaderMap,
        versions: &[&str],
        needs: Needs,
        path: &str,
    ) -> Result<Identity, Refused> {
        let target = uri.path_and_query().map_or(uri.path(), |p| p.as_str());
        let authorization = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        let identity = match self.auth.identify(authorization, method.as_str(), target) {
            Ok(identity) => identity,
            Err(refusal) => {
                let stale = matches!(refusal, Refusal::Challenge { stale: true });
                let mut response = error(
                    StatusCode::UNAUTHORIZED,
                    "UNAUTHORIZED",
                    "You are not authorized for this resource.",
                    json!([]),
                );
                if let Ok(v) = self.auth.challenge(stale).parse() {
                    response.headers_mut().insert(header::WWW_AUTHENTICATE, v);
                }
                return Err(Box::new(response));
            }
        };
        if let Err(seconds) = self.take_token() {
            let mut response = error(
                StatusCode::TOO_MANY_REQUESTS,
                "RATE_LIMITED_TOKEN_BUCKET",
                format!(
                    "Rate limit exceeded for {path}. Please retry after {seconds} seconds. Request capacity: {}. Refill rate: {} per {} seconds.",
                    self.limits.capacity,
                    self.limits.refill,
                    self.limits.refill_every.as_secs()
                ),
                json!([
                    path,
                    seconds,
                    self.limits.capacity,
                    self.limits.refill,
                    self.limits.refill_every.as_secs()
                ]),
            );
            if let Ok(v) = seconds.to_string().parse() {
                response.headers_mut().insert(header::RETRY_AFTER, v);
            }
            return Err(Box::new(response));
        }
        let accept = headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let version = accept.split(',').map(str::trim).find_map(|m| {
            m.strip_prefix("application/vnd.atlas.")?
                .strip_suffix("+json")
        });
        if !version.is_some_and(|v| versions.contains(&v)) {
            return Err(Box::new(error(
                StatusCode::NOT_ACCEPTABLE,
                "INVALID_VERSION_DATE",
                format!(
                    "The Accept header \"{accept}\" names no version this resource has; use application/vnd.atlas.{}+json.",
                    versions.first().copied().unwrap_or_default()
                ),
                json!([accept]),
            )));
        }
        if !needs.allows(&identity.roles) {
            return Err(Box::new(error(
                StatusCode::FORBIDDEN,
                "USER_UNAUTHORIZED",
                format!(
                    "The current user does not have the role needed for {method} {path} in project {}.",
                    self.project
                ),
                json!([]),
            )));
        }
        Ok(identity)
    }

    fn project_ok(&self, group: &str) -> Result<(), Refused> {
        if group == self.project {
            Ok(())
        } else {
            Err(Box::new(error(
                StatusCode::NOT_FOUND,
                "GROUP_NOT_FOUND",
                format!("No group with ID {group} exists."),
                json!([group]),
            )))
        }
    }

    fn cluster_index(&self, name: &str) -> Result<usize, Refused> {
        self.position(name).ok_or_else(|| {
            Box::new(error(
                StatusCode::NOT_FOUND,
                "CLUSTER_NOT_FOUND",
                format!("No cluster named {name} exists in group {}.", self.project),
                json!([name, self.project]),
            ))
        })
    }
}

type Shared = Arc<State>;

pub(super) fn router(state: Shared) -> Router {
    Router::new()
        .route("/api/oauth/token", post(token))
        .route("/api/atlas/v2/groups/{group}/clusters", get(list_clusters))
        .route(
            "/api/atlas/v2/groups/{group}/clusters/{cluster}",
            get(get_cluster).patch(patch_cluster),
        )
        .route(
            "/api/atlas/v2/groups/{group}/clusters/{cluster}/outageSimulation",
            get(get_simulation)
                .post(start_simulation)
                .delete(end_simulation),
        )
        .route(
            "/api/atlas/v2/groups/{group}/clusters/{cluster}/restartPrimaries",
            post(restart_primaries),
        )
        .route("/api/atlas/v2/groups/{group}/apiKeys", get(api_keys))
        .route(
            "/api/atlas/v2/groups/{group}/serviceAccounts/{client}",
            get(service_account),
        )
        .fallback(|uri: Uri| async move {
            error(
                StatusCode::NOT_FOUND,
                "RESOURCE_NOT_FOUND",
                format!("Cannot find resource {}.", uri.path()),
                json!([uri.path()]),
            )
        })
        .with_state(state)
}

/// What a route asks of a call before its handler runs: the media-type versions it serves
/// and the role it needs.
trait Rule {
    const VERSIONS: &'static [&'static str];
    const NEEDS: Needs;
}

macro_rules! rules {
    ($($(#[$doc:meta])* $name:ident: $versions:expr, $needs:expr;)*) => {$(
        $(#[$doc])*
        struct $name;
        impl Rule for $name {
            const VERSIONS: &'static [&'static str] = $versions;
            const NEEDS: Needs = $needs;
        }
    )*};
}

rules! {
    /// Reading clusters.
    ReadClusters: &["2024-08-05", "2024-10-23"], Needs::AnyRole;
    /// Changing a cluster's configuration.
    ManageClusters: &["2024-08-05", "2024-10-23"], Needs::ClusterManager;
    /// Reading an outage simulation.
    ReadOutage: &["2023-01-01"], Needs::AnyRole;
    /// Starting or ending an outage simulation.
    RunOutage: &["2023-01-01"], Needs::Owner;
    /// A test failover.
    TestFailover: &["2023-02-01"], Needs::ClusterManager;
    /// Reading the project's API keys and service accounts.
    ReadAccess: &["2023-01-01"], Needs::Owner;
}

/// A call admitted to the project under rule `R`: authenticated, within the request budget,
/// asking for a version the route serves, with the role it needs, and addressed to this
/// project. The path's other parameters, by name.
struct Admitted<R> {
    params: std::collections::HashMap<String, String>,
    rule: std::marker::PhantomData<R>,
}

impl<R: Rule> FromRequestParts<Shared> for Admitted<R> {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &Shared) -> Result<Self, Response> {
        let (method, uri) = (&parts.method, &parts.uri);
        state
            .admit(
                method,
                uri,
                &parts.headers,
                R::VERSIONS,
                R::NEEDS,
                uri.path(),
            )
            .map_err(|refused| *refused)?;
        let Path(params) =
            Path::<std::collections::HashMap<String, String>>::from_request_parts(parts, state)
                .await
                .map_err(IntoResponse::into_response)?;
        state
            .project_ok(params.get("group").map_or("", String::as_str))
            .map_err(|refused| *refused)?;
        Ok(Self {
            params,
            rule: std::marker::PhantomData,
        })
    }
}

impl<R> Admitted<R> {
    fn param(&self, name: &str) -> &str {
        self.params.get(name).map_or("", String::as_str)
    }
}

/// An [`Admitted`] call whose path names a cluster of the project.
struct OnCluster<R> {
    name: String,
    index: usize,
    rule: std::marker::PhantomData<R>,
}

impl<R: Rule> FromRequestParts<Shared> for OnCluster<R> {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &Shared) -> Result<Self, Response> {
        let admitted = Admitted::<R>::from_request_parts(parts, state).await?;
        let name = admitted.param("cluster").to_owned();
        let index = state.cluster_index(&name).map_err(|refused| *refused)?;
        Ok(Self {
            name,
            index,
            rule: std::marker::PhantomData,
        })
    }
}

impl<R> OnCluster<R> {
    fn cluster<'s>(&self, state: &'s State) -> &'s Mutex<Cluster> {
        &state.clusters[self.index]
    }
}

/// A JSON request body, refused as Atlas refuses one that is not.
struct JsonBody(Value);

impl<S: Send + Sync> FromRequest<S> for JsonBody {
    type Rejection = Response;

    async fn from_request(request: axum::extract::Request, state: &S) -> Result<Self, Response> {
        let body = Bytes::from_request(request, state)
            .await
            .map_err(IntoResponse::into_response)?;
        serde_json::from_slice(&body).map(JsonBody).map_err(|_| {
            error(
                StatusCode::BAD_REQUEST,
                "INVALID_JSON",
                "The request body is not JSON.",
                json!([]),
            )
        })
    }
}

async fn token(Extract(state): Extract<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    match state
        .auth
        .issue_token(authorization, &String::from_utf8_lossy(&body))
    {
        Ok((token, lifetime)) => axum::Json(json!({
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": lifetime.as_secs(),
        }))
        .into_response(),
        Err(_) => error(
            StatusCode::UNAUTHORIZED,
            "INVALID_CLIENT",
            "The client id or secret is not valid, or the grant type is not client_credentials.",
            json!([]),
        ),
    }
}

async fn list_clusters(Extract(state): Extract<Shared>, _call: Admitted<ReadClusters>) -> Response {
    let results: Vec<Value> = state
        .clusters
        .iter()
        .map(|c| lock(c).to_json(&state.project))
        .collect();
    let count = results.len();
    ok(
        json!({"results": results, "totalCount": count}),
        "2024-08-05",
    )
}

async fn get_cluster(Extract(state): Extract<Shared>, call: OnCluster<ReadClusters>) -> Response {
    let cluster = call.cluster(&state);
    let body = lock(cluster).to_json(&state.project);
    ok(body, "2024-08-05")
}

/// The region priorities a PATCH asks for, validated as Atlas does: the same regions and node
/// counts (this API cannot add members), every electable region's priority distinct, the
/// highest 7 and each one less than another's, listed in descending order.
fn requested_priorities(cluster: &Cluster, body: &Value) -> Result<Option<Vec<i64>>, String> {
    let Some(specs) = body.get("replicationSpecs") else {
        return Ok(None);
    };
    let current = cluster.replication_specs();
    let specs = specs
        .as_array()
        .filter(|s| s.len() == 1)
        .ok_or("replicationSpecs must hold the cluster's one replication spec")?;
    let configs = specs[0]["regionConfigs"]
        .as_array()
        .ok_or("replicationSpecs[0].regionConfigs is missing")?;
    let mut out = cluster.priorities.clone();
    let mut seen = Vec::new();
    let mut last = i64::MAX;
    for (i, c) in configs.iter().enumerate() {
        let region = c["regionName"].as_str().unwrap_or_default();
        let index = cluster
            .spec
            .regions
            .iter()
            .position(|r| r.atlas == region && c["providerName"] == cluster.spec.provider.as_str())
            .ok_or_else(|| format!("regionConfigs[{i}]: region {region} is not one of this cluster's (this API cannot add regions)"))?;
        let now = current[0]["regionConfigs"]
            .as_array()
            .and_then(|cs| cs.iter().find(|x| x["regionName"] == region))
            .map(|x| x["electableSpecs"]["nodeCount"].clone())
            .unwrap_or(Value::Null);
        if c["electableSpecs"]["nodeCount"] != now {
            return Err(format!(
                "regionConfigs[{i}]: this API cannot change the node count of {region}"
            ));
        }
        let priority = c["priority"]
            .as_i64()
            .ok_or_else(|| format!("regionConfigs[{i}].priority is missing"))?;
        if priority > last {
            return Err("regionConfigs must be in descending order of priority".into());
        }
        last = priority;
        seen.push(priority);
        out[index] = priority;
    }
    if seen.len() != cluster.spec.regions.len() {
        return Err(
            "regionConfigs must list every region of the cluster (this API cannot remove regions)"
                .into(),
        );
    }
    let mut sorted = seen.clone();
    sorted.sort_unstable_by(|a, b| b.cmp(a));
    let expected: Vec<i64> = (0..sorted.len() as i64).map(|k| 7 - k).collect();
    if sorted != expected {
        return Err(format!(
            "electable regions need the priorities {expected:?} (7 for the highest, each one less than another), not {seen:?}"
        ));
    }
    Ok(Some(out))
}

async fn patch_cluster(
    Extract(state): Extract<Shared>,
    call: OnCluster<ManageClusters>,
    JsonBody(request): JsonBody,
) -> Response {
    let (name, cluster) = (call.name.clone(), call.cluster(&state));
    let priorities = {
        let mut c = lock(cluster);
        if c.state != "IDLE" {
            return error(
                StatusCode::CONFLICT,
                "CLUSTER_UPDATE_IN_PROGRESS",
                format!("Cluster {name} is {}; wait until it is IDLE.", c.state),
                json!([name]),
            );
        }
        let priorities = match requested_priorities(&c, &request) {
            Ok(Some(p)) => p,
            Ok(None) => return ok(c.to_json(&state.project), "2024-08-05"),
            Err(detail) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "INVALID_REGION_PRIORITY",
                    detail,
                    json!([name]),
                );
            }
        };
        c.priorities = priorities;
        c.state = "UPDATING";
        c.member_priorities()
    };
    let updating = state.draw(state.timing.update);
    let task_state = Arc::clone(&state);
    state.spawn(async move {
        task_state.clock.sleep(updating).await;
        let Some(cluster) = task_state.cluster(&name) else {
            return;
        };
        let set = lock(cluster).spec.set.clone();
        if let Err(e) = set.set_priorities(&priorities) {
            tracing::warn!(cluster = %name, error = %e, "embedded Atlas could not reconfigure");
        }
        lock(cluster).state = "IDLE";
    });
    let body = lock(cluster).to_json(&state.project);
    ok(body, "2024-08-05")
}

async fn get_simulation(Extract(state): Extract<Shared>, call: OnCluster<ReadOutage>) -> Response {
    let (name, cluster) = (call.name.clone(), call.cluster(&state));
    let shown = lock(cluster).simulation_json(&state.project);
    match shown {
        Some(body) => ok(body, "2023-01-01"),
        None => error(
            StatusCode::NOT_FOUND,
            "CLUSTER_OUTAGE_SIMULATION_NOT_FOUND",
            format!("No outage simulation found for cluster {name}."),
            json!([name]),
        ),
    }
}

async fn start_simulation(
    Extract(state): Extract<Shared>,
    call: OnCluster<RunOutage>,
    JsonBody(request): JsonBody,
) -> Response {
    let (name, cluster) = (call.name.clone(), call.cluster(&state));
    let bad = |detail: String| {
        error(
            StatusCode::BAD_REQUEST,
            "INVALID_OUTAGE_FILTERS",
            detail,
            json!([name]),
        )
    };
    let (id, cut) = {
        let mut c = lock(cluster);
        if let Some(s) = &c.simulation
            && s.state != "COMPLETE"
        {
            return error(
                StatusCode::CONFLICT,
                "CLUSTER_OUTAGE_SIMULATION_ALREADY_RUNNING",
                format!(
                    "An outage simulation of cluster {name} is already {}.",
                    s.state
                ),
                json!([name]),
            );
        }
        if c.state != "IDLE" {
            return error(
                StatusCode::CONFLICT,
                "CLUSTER_UPDATE_IN_PROGRESS",
                format!("Cluster {name} is {}; wait until it is IDLE.", c.state),
                json!([name]),
            );
        }
        let mut regions = Vec::new();
        for (i, f) in request["outageFilters"]
            .as_array()
            .into_iter()
            .flatten()
            .enumerate()
        {
            if f["type"] != "REGION" {
                return bad(format!("outageFilters[{i}].type must be REGION"));
            }
            if f["cloudProvider"] != c.spec.provider.as_str() {
                return bad(format!(
                    "outageFilters[{i}].cloudProvider must be {}",
                    c.spec.provider
                ));
            }
            let region = f["regionName"].as_str().unwrap_or_default().to_owned();
            if !c.spec.regions.iter().any(|r| r.atlas == region) {
                return bad(format!(
                    "outageFilters[{i}]: cluster {name} has no nodes in region {region}"
                ));
            }
            if !regions.contains(&region) {
                regions.push(region);
            }
        }
        if regions.is_empty() {
            return bad("outageFilters must name at least one region".into());
        }
        if c.spec.regions.iter().all(|r| regions.contains(&r.atlas)) {
            return bad(format!(
                "An outage simulation must keep at least one electable node of cluster {name}: it cannot take out every region."
            ));
        }
        c.simulations += 1;
        let now = wall_now(&state.clock);
        let id = super::object_id(c.simulations, c.id.len() as u64 + 77);
        c.simulation = Some(Simulation {
            id: id.clone(),
            regions: regions.clone(),
            state: "START_REQUESTED",
            requested: now,
            expires: now + Duration::from_secs(3 * 24 * 3600),
        });
        (id, c.hosts_in(&regions))
    };
    let (requested, starting) = (
        state.draw(state.timing.start_requested),
        state.draw(state.timing.starting),
    );
    let task_state = Arc::clone(&state);
    state.spawn(async move {
        let step = |to: &'static str| {
            let cluster = task_state.cluster(&name)?;
            let mut c = lock(cluster);
            match c.simulation.as_mut() {
                Some(s) if s.id == id => {
                    s.state = to;
                    Some(c.spec.set.clone())
                }
                _ => None,
            }
        };
        task_state.clock.sleep(requested).await;
        if step("STARTING").is_none() {
            return;
        }
        task_state.clock.sleep(starting).await;
        // The nodes are cut off first: SIMULATING says they are.
        let Some(set) = step("STARTING") else {
            return;
        };
        for host in &cut {
            if let Err(e) = set.isolate(host).await {
                tracing::warn!(member = %host, error = %e, "embedded Atlas could not cut a member");
            }
        }
        let _ = step("SIMULATING");
    });
    let body = lock(cluster)
        .simulation_json(&state.project)
        .unwrap_or(Value::Null);
    ok(body, "2023-01-01")
}

async fn end_simulation(Extract(state): Extract<Shared>, call: OnCluster<RunOutage>) -> Response {
    let (name, cluster) = (call.name.clone(), call.cluster(&state));
    let (id, back) = {
        let mut c = lock(cluster);
        let regions = match c.simulation.as_mut() {
            None => {
                return error(
                    StatusCode::NOT_FOUND,
                    "CLUSTER_OUTAGE_SIMULATION_NOT_FOUND",
                    format!("No outage simulation found for cluster {name}."),
                    json!([name]),
                );
            }
            Some(s) if s.state != "SIMULATING" => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "CLUSTER_OUTAGE_SIMULATION_INVALID_STATE",
                    format!(
                        "The outage simulation of cluster {name} is {}; it can end once it is SIMULATING.",
                        s.state
                    ),
                    json!([name, s.state]),
                );
            }
            Some(s) => {
                s.state = "RECOVERY_REQUESTED";
                (s.id.clone(), s.regions.clone())
            }
        };
        let (id, regions) = regions;
        (id, c.hosts_in(&regions))
    };
    let (requested, recovering, shown) = (
        state.draw(state.timing.recovery_requested),
        state.draw(state.timing.recovering),
        state.timing.complete_shown,
    );
    let task_state = Arc::clone(&state);
    state.spawn(async move {
        let step = |to: Option<&'static str>| {
            let cluster = task_state.cluster(&name)?;
            let mut c = lock(cluster);
            if c.simulation.as_ref().is_none_or(|s| s.id != id) {
                return None;
            }
            match to {
                Some(to) => {
                    if let Some(s) = c.simulation.as_mut() {
                        s.state = to;
                    }
                }
                None => c.simulation = None,
            }
            Some(c.spec.set.clone())
        };
        task_state.clock.sleep(requested).await;
        let Some(set) = step(Some("RECOVERING")) else { return };
        for host in &back {
            if let Err(e) = set.reconnect(host).await {
                tracing::warn!(member = %host, error = %e, "embedded Atlas could not restore a member");
            }
        }
        task_state.clock.sleep(recovering).await;
        if step(Some("COMPLETE")).is_none() {
            return;
        }
        task_state.clock.sleep(shown).await;
        let _ = step(None);
    });
    let body = lock(cluster)
        .simulation_json(&state.project)
        .unwrap_or(Value::Null);
    ok(body, "2023-01-01")
}

async fn restart_primaries(
    Extract(state): Extract<Shared>,
    call: OnCluster<TestFailover>,
) -> Response {
    let (name, cluster) = (call.name.clone(), call.cluster(&state));
    let set = {
        let mut c = lock(cluster);
        let refuse = |detail: String| {
            error(
                StatusCode::BAD_REQUEST,
                "CLUSTER_RESTART_INVALID",
                detail,
                json!([name]),
            )
        };
        if c.state != "IDLE" {
            return refuse(format!(
                "Cluster {name} is {}: a test failover needs no pending changes.",
                c.state
            ));
        }
        if c.simulation.as_ref().is_some_and(|s| s.state != "COMPLETE") {
            return refuse(format!(
                "Cluster {name} is under an outage simulation: a test failover needs every member healthy."
            ));
        }
        let status = c.spec.set.status();
        if status.primary.is_none()
            || status
                .members
                .iter()
                .any(|m| m.partitioned || m.state == crate::mongo::MemberState::Down)
        {
            return refuse(format!(
                "Cluster {name} has a member that is not healthy: a test failover needs every member healthy."
            ));
        }
        c.state = "UPDATING";
        c.spec.set.clone()
    };
    let restart = state.draw(state.timing.restart);
    let task_state = Arc::clone(&state);
    state.spawn(async move {
        if let Err(e) = set.step_down_primary(Duration::from_secs(10), Duration::from_secs(60)).await {
            tracing::warn!(cluster = %name, error = %e, "embedded Atlas test failover found no primary");
        }
        task_state.clock.sleep(restart).await;
        if let Some(cluster) = task_state.cluster(&name) {
            lock(cluster).state = "IDLE";
        }
    });
    ok(json!({}), "2023-02-01")
}

async fn api_keys(Extract(state): Extract<Shared>, _call: Admitted<ReadAccess>) -> Response {
    let results: Vec<Value> = state
        .auth
        .keys()
        .iter()
        .enumerate()
        .map(|(i, k)| {
            let tail: String = k.private.chars().rev().take(4).collect::<Vec<_>>().into_iter().rev().collect();
            json!({
                "id": super::object_id(i as u64 + 1, 4242),
                "desc": format!("firedrill embedded key {}", i + 1),
                "publicKey": k.public,
                "privateKey": format!("********-****-****-{tail}"),
                "roles": k.roles.iter().map(|r| json!({"groupId": state.project, "roleName": r})).collect::<Vec<_>>(),
            })
        })
        .collect();
    let count = results.len();
    ok(
        json!({"results": results, "totalCount": count}),
        "2023-01-01",
    )
}

async fn service_account(Extract(state): Extract<Shared>, call: Admitted<ReadAccess>) -> Response {
    let client = call.param("client");
    match state.auth.accounts().iter().find(|a| a.client_id == client) {
        Some(a) => ok(
            json!({"clientId": a.client_id, "name": "firedrill", "roles": a.roles}),
            "2023-01-01",
        ),
        None => error(
            StatusCode::NOT_FOUND,
            "SERVICE_ACCOUNT_NOT_FOUND",
            format!("No service account {client} in group {}.", state.project),
            json!([client]),
        ),
    }
}
