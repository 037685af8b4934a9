//! The applications of each region and the front door that routes to the active one.
//!
//! Each region's application answers HTTP with the region that served it (header
//! `x-served-by`). The front door is a real reverse proxy: it forwards each request over HTTP to
//! the active region's application and relays the answer, or answers 502 when that region is
//! dark. Its admin API (`/_firedrill/…`) is what the Terraform stand-in and the fault commands
//! call; a switch takes effect after a modelled load-balancer propagation delay. Both serve
//! `/metrics` (see [`crate::metrics`]): every answer by namespace, region and status code.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use crate::metrics::{self, Traffic};
use crate::model::Model;
use firedrill_core::clock::{Clock, PlatformTime};

/// The header naming the region that served a request.
pub const REGION_HEADER: &str = "x-served-by";

/// Errors starting the embedded applications.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// A listener could not bind.
    #[error("cannot listen on {addr}: {source} (hint: is the port free?)")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The HTTP client could not be built.
    #[error("cannot build the front door's HTTP client: {0}")]
    Client(#[from] reqwest::Error),
    /// The embedded Toxiproxy or one of its proxies could not start.
    #[error(transparent)]
    Toxiproxy(#[from] crate::toxiproxy::Error),
    /// A database client could not be built.
    #[error(
        "cannot build the application's database client: {source} (hint: check the MongoDB URI)"
    )]
    Database {
        /// Why.
        source: Box<mongodb::error::Error>,
    },
    /// The traffic metrics could not be registered.
    #[error(
        "cannot register the {service} traffic metrics: {source} (hint: a firedrill bug; report it)"
    )]
    Metrics {
        /// The service (`front-door`, `storefront`).
        service: &'static str,
        /// Why.
        source: prometheus::Error,
    },
    /// The active region has no backend.
    #[error("region {region} has no backend (known: {known:?}) (hint: add --backend {region}=URL)")]
    UnknownRegion {
        /// The region asked for.
        region: String,
        /// The regions with a backend.
        known: Vec<String>,
    },
}

/// How long the front door waits for a region's answer before it gives up with 504, like a
/// load balancer's backend timeout (platform time).
pub const BACKEND_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// The Toxiproxy proxy (and platform link) between the front door and `region`'s application.
#[must_use]
pub fn link_name(region: &str) -> String {
    format!("front-door-to-{region}")
}

/// Whether a region's application can serve a namespace (`None`: every namespace it serves).
///
/// In the embedded platform this reads the region's embedded cluster: the application answers
/// only while a `storefront` pod of the namespace is Ready there, so a region scaled to 0 goes
/// dark and a failover cluster answers once its pods are up. Standalone (`sim app`, the kind
/// setup) the application is its own pod, and Kubernetes keeps it out of the Service when it
/// is not Ready, so it is always healthy.
pub type Health = Arc<dyn Fn(Option<&str>) -> bool + Send + Sync>;

/// A [`Health`] that is always healthy.
#[must_use]
pub fn always_healthy() -> Health {
    Arc::new(|_| true)
}

#[derive(Debug)]
struct Routing {
    active: String,
    dark: BTreeMap<String, bool>,
    /// Ground truth: when the front door started sending traffic to each region.
    switched_at: Vec<(String, PlatformTime)>,
}

#[derive(Clone)]
struct Shared {
    routing: Arc<Mutex<Routing>>,
    apps: Arc<BTreeMap<String, String>>,
    client: reqwest::Client,
    clock: Clock,
    model: Arc<Mutex<Model>>,
    /// The namespaces a request's first path segment may name, for the metrics' labels.
    namespaces: Arc<Vec<String>>,
    traffic: Traffic,
}

/// The databases a region's application reads and writes, by namespace.
pub type Databases = BTreeMap<String, mongodb::Client>;

/// A driver client for one namespace's database at `uri` that gives up quickly, as an
/// application with a latency budget does.
///
/// # Errors
///
/// When the URI does not parse.
pub async fn database_client(uri: &str) -> Result<mongodb::Client, AppError> {
    let mut options = mongodb::options::ClientOptions::parse(uri)
        .await
        .map_err(|source| AppError::Database {
            source: Box::new(source),
        })?;
    options.server_selection_timeout = Some(std::time::Duration::from_secs(2));
    options.connect_timeout = Some(std::time::Duration::from_secs(2));
    mongodb::Client::with_options(options).map_err(|source| AppError::Database {
        source: Box::new(source),
    })
}

/// How long an order may take before the application answers 503 (platform time).
pub const DATABASE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// One region's application: what it serves and how it knows it is healthy.
#[derive(Clone)]
struct App {
    region: String,
    /// Each namespace's database, for `/{namespace}/orders`.
    databases: Arc<Databases>,
    clock: Clock,
    /// Namespaces it serves; a request whose first path segment is one of them is that
    /// namespace's, any other request needs every namespace.
    namespaces: Arc<Vec<String>>,
    health: Health,
    routing: Option<Arc<Mutex<Routing>>>,
    traffic: Traffic,
}

/// The namespace of `namespaces` a request for `path` belongs to: its first path segment.
fn namespace_of<'a>(namespaces: &[String], path: &'a str) -> Option<&'a str> {
    let first = path.trim_start_matches('/').split('/').next()?;
    namespaces.iter().any(|n| n == first).then_some(first)
}

fn traffic(service: &'static str) -> Result<Traffic, AppError> {
    Traffic::new(service).map_err(|source| AppError::Metrics { service, source })
}

impl App {
    fn namespace_of<'a>(&self, path: &'a str) -> Option<&'a str> {
        namespace_of(&self.namespaces, path)
    }

    fn dark(&self) -> bool {
        self.routing.as_ref().is_some_and(|r| {
            r.lock()
                .map(|r| r.dark.get(&self.region).copied().unwrap_or(false))
                .unwrap_or(false)
        })
    }
}

/// Serves one region's application on `listener` until the task is aborted.
fn spawn_app(listener: tokio::net::TcpListener, app: App) -> tokio::task::JoinHandle<()> {
    let router = Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route(
            "/metrics",
            get(|State(app): State<App>| async move { metrics::exposition(&app.traffic) }),
        )
        .fallback(get(app_answer))
        .with_state(app);
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    })
}

async fn bind(addr: SocketAddr) -> Result<(tokio::net::TcpListener, SocketAddr), AppError> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| AppError::Bind { addr, source })?;
    let bound = listener
        .local_addr()
        .map_err(|source| AppError::Bind { addr, source })?;
    Ok((listener, bound))
}

/// A region's application served alone (`firedrill sim app`, the kind setup).
#[derive(Debug)]
pub struct RegionApp {
    /// Its base URL.
    pub url: String,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for RegionApp {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl RegionApp {
    /// Serves `region`'s application for `namespaces` on `listen`; `/{namespace}/orders`
    /// writes and reads back an order in that namespace's database when `databases` has it.
    ///
    /// # Errors
    ///
    /// [`AppError::Bind`] when the address cannot be bound.
    pub async fn start(
        region: &str,
        namespaces: &[String],
        listen: SocketAddr,
        health: Health,
        databases: Databases,
        clock: Clock,
    ) -> Result<Self, AppError> {
        let (listener, bound) = bind(listen).await?;
        let task = spawn_app(
            listener,
            App {
                region: region.to_owned(),
                databases: Arc::new(databases),
                clock,
                namespaces: Arc::new(namespaces.to_vec()),
                health,
                routing: None,
                traffic: traffic("storefront")?,
            },
        );
        Ok(Self {
            url: format!("http://{bound}"),
            task,
        })
    }
}

/// The running applications and front door.
#[derive(Debug)]
pub struct FrontDoor {
    /// The front door's base URL (`http://127.0.0.1:PORT`).
    pub url: String,
    routing: Arc<Mutex<Routing>>,
    /// The base URLs of the applications started with it, by region, reached directly (not
    /// through their links): where their `/metrics` is scraped.
    applications: BTreeMap<String, String>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for FrontDoor {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// How the front door is built: its regions' applications, where it listens, its model.
pub struct FrontDoorSpec<'a> {
    /// The regions, each one's health (see [`Health`]) and its application's databases.
    pub regions: Vec<(String, Health, Databases)>,
    /// The namespaces the applications serve.
    pub namespaces: Vec<String>,
    /// The region traffic starts in.
    pub active: String,
    /// The front door's address.
    pub listen: SocketAddr,
    /// The platform clock.
    pub clock: Clock,
    /// The load balancer's propagation model.
    pub model: Model,
    /// When given, the front door reaches each region's application through a proxy
    /// [`link_name`] created on it, so network faults on that link are what users see.
    pub toxiproxy: Option<&'a crate::toxiproxy::ToxiproxyServer>,
}

impl FrontDoor {
    /// Starts one application per region and the front door, all on 127.0.0.1 ports of their
    /// own (the front door on `spec.listen`).
    ///
    /// # Errors
    ///
    /// [`AppError`] when a listener or a proxy cannot start.
    pub async fn start(spec: FrontDoorSpec<'_>) -> Result<Self, AppError> {
        let routing = new_routing(
            spec.regions.iter().map(|(r, _, _)| r.as_str()),
            &spec.active,
            spec.clock,
        );
        let namespaces = Arc::new(spec.namespaces);
        let mut apps = BTreeMap::new();
        let mut applications = BTreeMap::new();
        let mut tasks = Vec::new();
        for (region, health, databases) in spec.regions {
            let (listener, bound) = bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
            let backend = match spec.toxiproxy {
                Some(server) => {
                    server
                        .create_proxy(&link_name(&region), "127.0.0.1:0", &bound.to_string())
                        .await?
                }
                None => bound,
            };
            apps.insert(region.clone(), format!("http://{backend}"));
            applications.insert(region.clone(), format!("http://{bound}"));
            tasks.push(spawn_app(
                listener,
                App {
                    region,
                    databases: Arc::new(databases),
                    clock: spec.clock,
                    namespaces: Arc::clone(&namespaces),
                    health,
                    routing: Some(Arc::clone(&routing)),
                    traffic: traffic("storefront")?,
                },
            ));
        }
        let mut front = Self::front(
            apps,
            routing,
            namespaces,
            (spec.listen, spec.clock, spec.model),
            tasks,
        )
        .await?;
        front.applications = applications;
        Ok(front)
    }

    /// A front door alone, forwarding to applications served elsewhere (`firedrill sim
    /// front-door`, the kind setup): `backends` maps each region to its application's URL.
    ///
    /// # Errors
    ///
    /// [`AppError`] when the listener cannot bind or `active` is not a backend.
    pub async fn forward_to(
        backends: BTreeMap<String, String>,
        active: &str,
        listen: SocketAddr,
        clock: Clock,
        model: Model,
    ) -> Result<Self, AppError> {
        if !backends.contains_key(active) {
            return Err(AppError::UnknownRegion {
                region: active.to_owned(),
                known: backends.keys().cloned().collect(),
            });
        }
        let routing = new_routing(backends.keys().map(String::as_str), active, clock);
        let namespaces = Arc::new(crate::NAMESPACES.map(str::to_owned).to_vec());
        Self::front(
            backends,
            routing,
            namespaces,
            (listen, clock, model),
            Vec::new(),
        )
        .await
    }

    async fn front(
        apps: BTreeMap<String, String>,
        routing: Arc<Mutex<Routing>>,
        namespaces: Arc<Vec<String>>,
        (listen, clock, model): (SocketAddr, Clock, Model),
        mut tasks: Vec<tokio::task::JoinHandle<()>>,
    ) -> Result<Self, AppError> {
        let shared = Shared {
            routing: Arc::clone(&routing),
            apps: Arc::new(apps),
            client: reqwest::Client::builder().no_proxy().build()?,
            clock,
            model: Arc::new(Mutex::new(model)),
            namespaces,
            traffic: traffic("front-door")?,
        };
        // Open the front door's pooled connection to every region now (through its proxy when
        // there is one), so the first probe does not pay for connection setup: in compressed
        // time a few milliseconds of it are seconds of platform time.
        for base in shared.apps.values() {
            let _ = clock
                .timeout(BACKEND_TIMEOUT, shared.client.get(base.as_str()).send())
                .await;
        }
        let front =
            Router::new()
                .route("/_firedrill/state", get(state))
                .route("/_firedrill/switch", post(switch))
                .route("/_firedrill/region", post(region_health))
                .route(
                    "/metrics",
                    get(|State(shared): State<Shared>| async move {
                        metrics::exposition(&shared.traffic)
                    }),
                )
                .fallback(forward)
                .with_state(shared);
        let (listener, bound) = bind(listen).await?;
        tasks.push(tokio::spawn(async move {
            let _ = axum::serve(listener, front).await;
        }));
        Ok(Self {
            url: format!("http://{bound}"),
            routing,
            applications: BTreeMap::new(),
            tasks,
        })
    }

    /// The applications started with it (none for [`FrontDoor::forward_to`]): each region's
    /// base URL, reached directly, where Prometheus scrapes its `/metrics`.
    #[must_use]
    pub fn applications(&self) -> &BTreeMap<String, String> {
        &self.applications
    }

    /// Ground truth: when traffic started flowing to each region (platform time).
    #[must_use]
    pub fn switches(&self) -> Vec<(String, PlatformTime)> {
        (self.switch_log())()
    }

    /// [`FrontDoor::switches`] as a function that outlives `self`'s borrow.
    pub fn switch_log(&self) -> impl Fn() -> Vec<(String, PlatformTime)> + Send + Sync + 'static {
        let routing = Arc::clone(&self.routing);
        move || {
            routing
                .lock()
                .map(|r| r.switched_at.clone())
                .unwrap_or_default()
        }
    }
}

fn new_routing<'a>(
    regions: impl Iterator<Item = &'a str>,
    active: &str,
    clock: Clock,
) -> Arc<Mutex<Routing>> {
    Arc::new(Mutex::new(Routing {
        active: active.to_owned(),
        dark: regions.map(|r| (r.to_owned(), false)).collect(),
        switched_at: vec![(active.to_owned(), clock.now())],
    }))
}

async fn app_answer(State(app): State<App>, uri: axum::http::Uri) -> Response {
    let started = app.clock.now();
    let answer = app_answer_to(&app, &uri).await;
    app.traffic.observe(
        app.namespace_of(uri.path()),
        &app.region,
        answer.status().as_u16(),
        app.clock.now().saturating_since(started),
    );
    answer
}

async fn app_answer_to(app: &App, uri: &axum::http::Uri) -> Response {
    let namespace = app.namespace_of(uri.path());
    if app.dark() || !(app.health)(namespace) {
        let what = namespace.unwrap_or("the storefront");
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("{what} has no ready pods in {}", app.region),
        )
            .into_response();
    }
    let order = match namespace {
        Some(ns) if uri.path().trim_end_matches('/').ends_with("/orders") => {
            match order(app, ns).await {
                Ok(order) => Some(order),
                Err(why) => {
                    return (
                        StatusCode::SERVICE_UNAVAILABLE,
                        [(REGION_HEADER, app.region.clone())],
                        format!(
                            "the {ns} database is unavailable from {}: {why}",
                            app.region
                        ),
                    )
                        .into_response();
                }
            }
        }
        _ => None,
    };
    (
        [(REGION_HEADER, app.region.clone())],
        Json(serde_json::json!({
            "region": app.region, "namespace": namespace, "order": order, "ok": true,
        })),
    )
        .into_response()
}

/// Writes an order to `ns`'s database (w:majority) and reads it back, as a storefront's
/// checkout does; its latency is the application's database latency.
async fn order(app: &App, ns: &str) -> Result<String, String> {
    use mongodb::bson::{Document, doc, oid::ObjectId};
    let client = app
        .databases
        .get(ns)
        .ok_or_else(|| format!("no database configured for {ns}"))?;
    let orders = client.database(ns).collection::<Document>("orders");
    let id = ObjectId::new();
    let work = async {
        orders
            .insert_one(doc! { "_id": id, "region": &app.region })
            .write_concern(mongodb::options::WriteConcern::nodes(1))
            .await
            .map_err(|e| e.to_string())?;
        orders
            .find_one(doc! { "_id": id })
            .await
            .map_err(|e| e.to_string())?
            .ok_or_else(|| "the order just written is not there".to_owned())
    };
    match app.clock.timeout(DATABASE_TIMEOUT, work).await {
        Ok(Ok(_)) => Ok(id.to_hex()),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(format!(
            "no answer within {}",
            firedrill_core::clock::format_duration(DATABASE_TIMEOUT)
        )),
    }
}

async fn forward(State(shared): State<Shared>, uri: axum::http::Uri) -> Response {
    let started = shared.clock.now();
    let active = shared
        .routing
        .lock()
        .map(|r| r.active.clone())
        .unwrap_or_default();
    let answer = forward_to(&shared, &active, &uri).await;
    shared.traffic.observe(
        namespace_of(&shared.namespaces, uri.path()),
        &active,
        answer.status().as_u16(),
        shared.clock.now().saturating_since(started),
    );
    answer
}

async fn forward_to(shared: &Shared, active: &str, uri: &axum::http::Uri) -> Response {
    let Some(base) = shared.apps.get(active) else {
        return (StatusCode::BAD_GATEWAY, "no backend").into_response();
    };
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let answer = shared
        .clock
        .timeout(
            BACKEND_TIMEOUT,
            shared.client.get(format!("{base}{path}")).send(),
        )
        .await;
    match answer {
        Err(_) => (StatusCode::GATEWAY_TIMEOUT, "backend timed out").into_response(),
        Ok(Ok(answer)) => {
            let status =
                StatusCode::from_u16(answer.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
            let mut headers = HeaderMap::new();
            for name in [REGION_HEADER, "content-type"] {
                if let Some(value) = answer.headers().get(name) {
                    headers.insert(name, value.clone());
                }
            }
            let body = answer.bytes().await.unwrap_or_default();
            let status = if status == StatusCode::SERVICE_UNAVAILABLE {
                StatusCode::BAD_GATEWAY
            } else {
                status
            };
            (status, headers, body).into_response()
        }
        Ok(Err(_)) => (StatusCode::BAD_GATEWAY, "backend unreachable").into_response(),
    }
}

/// The front door's state as its admin API reports it.
#[derive(Debug, Serialize, Deserialize)]
pub struct RoutingState {
    /// The region receiving traffic.
    pub active: String,
    /// Regions currently dark.
    pub dark: Vec<String>,
}

async fn state(State(shared): State<Shared>) -> Json<RoutingState> {
    let (active, dark) = shared
        .routing
        .lock()
        .map(|r| {
            (
                r.active.clone(),
                r.dark
                    .iter()
                    .filter(|(_, d)| **d)
                    .map(|(n, _)| n.clone())
                    .collect(),
            )
        })
        .unwrap_or_default();
    Json(RoutingState { active, dark })
}

/// Body of `POST /_firedrill/switch`.
#[derive(Debug, Serialize, Deserialize)]
pub struct SwitchRequest {
    /// The region to send traffic to.
    pub to: String,
}

async fn switch(State(shared): State<Shared>, Json(request): Json<SwitchRequest>) -> Response {
    if !shared.apps.contains_key(&request.to) {
        return (
            StatusCode::NOT_FOUND,
            format!("unknown region {}", request.to),
        )
            .into_response();
    }
    let delay = shared
        .model
        .lock()
        .map(|mut m| m.lb_propagation())
        .unwrap_or_default();
    let routing = Arc::clone(&shared.routing);
    let clock = shared.clock;
    tokio::spawn(async move {
        clock.sleep(delay).await;
        if let Ok(mut r) = routing.lock()
            && r.active != request.to
        {
            r.active.clone_from(&request.to);
            r.switched_at.push((request.to, clock.now()));
        }
    });
    (
        StatusCode::ACCEPTED,
        Json(serde_json::json!({ "propagation_ms": delay.as_millis() as u64 })),
    )
        .into_response()
}

/// Body of `POST /_firedrill/region`.
#[derive(Debug, Serialize, Deserialize)]
pub struct RegionHealth {
    /// The region.
    pub region: String,
    /// Whether it is dark.
    pub dark: bool,
}

async fn region_health(
    State(shared): State<Shared>,
    Json(request): Json<RegionHealth>,
) -> Response {
    let Ok(mut routing) = shared.routing.lock() else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    match routing.dark.get_mut(&request.region) {
        Some(dark) => {
            *dark = request.dark;
            StatusCode::NO_CONTENT.into_response()
        }
        None => (
            StatusCode::NOT_FOUND,
            format!("unknown region {}", request.region),
        )
            .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_front_door_and_the_applications_count_every_answer_on_metrics() {
        let clock = Clock::real();
        let prod_2_down: Health = Arc::new(|ns| ns != Some("prod-2"));
        let front = FrontDoor::start(FrontDoorSpec {
            regions: vec![
                ("us-west1".into(), prod_2_down, Databases::new()),
                ("us-west2".into(), always_healthy(), Databases::new()),
            ],
            namespaces: vec!["prod-1".into(), "prod-2".into()],
            active: "us-west1".into(),
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            clock,
            model: Model::new(1, crate::model::Ranges::default()),
            toxiproxy: None,
        })
        .await
        .expect("front door");
        let client = reqwest::Client::builder()
            .no_proxy()
            .build()
            .expect("client");
        for path in ["/prod-1/", "/prod-2/", "/prod-2/", "/"] {
            client
                .get(format!("{}{path}", front.url))
                .send()
                .await
                .expect("answer");
        }
        let metrics = async |base: &str| {
            client
                .get(format!("{base}/metrics"))
                .send()
                .await
                .expect("metrics")
                .text()
                .await
                .expect("body")
        };
        let text = metrics(&front.url).await;
        for line in [
            r#"http_requests_total{code="200",namespace="prod-1",region="us-west1",service="front-door"} 1"#,
            r#"http_requests_total{code="502",namespace="prod-2",region="us-west1",service="front-door"} 2"#,
            r#"http_requests_total{code="200",namespace="none",region="us-west1",service="front-door"} 1"#,
            r#"http_request_duration_seconds_count{namespace="prod-2",region="us-west1",service="front-door"} 2"#,
        ] {
            assert!(text.contains(line), "no {line} in\n{text}");
        }
        // The application behind it counted its own answers: 503 for the namespace it cannot
        // serve, which the front door relayed as 502.
        let text = metrics(&front.applications()["us-west1"]).await;
        let line = r#"http_requests_total{code="503",namespace="prod-2",region="us-west1",service="storefront"} 2"#;
        assert!(text.contains(line), "no {line} in\n{text}");
    }
}
