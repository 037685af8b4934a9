//! The HTTP API, route for route and status for status like Toxiproxy 2.x's `api.go`.

use super::model::{Chains, Direction, ToxicDef, ToxicJson, ToxicKind, json_kind, lookup};
use super::proxy::{Proxy, Shared};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Serialize;
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::sync::Arc;
use tokio::sync::Mutex;

/// The version `GET /version` reports: the Toxiproxy release whose API this server follows.
pub const VERSION: &str = "2.12.0";

/// All proxies of one server. Handlers hold the lock for the whole request, which serialises
/// API calls the way Toxiproxy's collection and proxy locks do.
pub struct Registry {
    /// By name; a `BTreeMap` because Go marshals map keys sorted.
    pub proxies: BTreeMap<String, Proxy>,
    /// Clock and seed for new proxies.
    pub shared: Shared,
    /// Last toxic revision handed out.
    pub revision: u64,
}

/// The registry as the handlers share it.
pub type Shared_ = Arc<Mutex<Registry>>;

/// The API routes.
pub fn router(registry: Shared_) -> Router {
    Router::new()
        .route("/reset", post(reset))
        .route("/proxies", get(proxy_index).post(proxy_create))
        .route("/populate", post(populate))
        .route(
            "/proxies/{proxy}",
            get(proxy_show)
                .post(proxy_update)
                .patch(proxy_update)
                .delete(proxy_delete),
        )
        .route(
            "/proxies/{proxy}/toxics",
            get(toxic_index).post(toxic_create),
        )
        .route(
            "/proxies/{proxy}/toxics/{toxic}",
            get(toxic_show)
                .post(toxic_update)
                .patch(toxic_update)
                .delete(toxic_delete),
        )
        .route("/version", get(version))
        .fallback(not_found)
        .layer(middleware::from_fn(stop_browsers))
        .with_state(registry)
}

/// An API error answer; Toxiproxy's `ApiError` with its status.
pub struct ApiError {
    status: StatusCode,
    message: String,
}

/// Handlers answer either a response or a Toxiproxy error.
type Answer = Result<Response, ApiError>;

fn api_error(status: StatusCode, message: impl Into<String>) -> ApiError {
    ApiError {
        status,
        message: message.into(),
    }
}

impl IntoResponse for ApiError {
    /// Go's `http.Error` writes the JSON as text/plain with a trailing newline.
    fn into_response(self) -> Response {
        #[derive(Serialize)]
        struct Body {
            error: String,
            status: u16,
        }
        let body = serde_json::to_string(&Body {
            error: self.message,
            status: self.status.as_u16(),
        })
        .unwrap_or_default();
        text(self.status, format!("{}\n", go_escape(body)))
    }
}

fn text(status: StatusCode, body: String) -> Response {
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

/// Go's encoder escapes `<`, `>`, `&`, U+2028 and U+2029 in strings; outside strings these
/// characters cannot occur in JSON, so replacing them everywhere is exact.
fn go_escape(json: String) -> String {
    if !json.contains(['<', '>', '&', '\u{2028}', '\u{2029}']) {
        return json;
    }
    json.replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
        .replace('\u{2028}', "\\u2028")
        .replace('\u{2029}', "\\u2029")
}

fn json<T: Serialize>(status: StatusCode, value: &T) -> Answer {
    let body = serde_json::to_string(value)
        .map_err(|e| api_error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    let mut response = (status, go_escape(body)).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(response)
}

fn no_content() -> Answer {
    Ok(StatusCode::NO_CONTENT.into_response())
}

fn proxy_not_found() -> ApiError {
    api_error(StatusCode::NOT_FOUND, "proxy not found")
}

fn toxic_not_found() -> ApiError {
    api_error(StatusCode::NOT_FOUND, "toxic not found")
}

fn bad_body(detail: impl std::fmt::Display) -> ApiError {
    api_error(
        StatusCode::BAD_REQUEST,
        format!("bad request body: {detail}"),
    )
}

/// Decodes the first JSON value of a body like Go's `json.Decoder` (trailing data ignored).
fn decode(body: &[u8]) -> Result<Value, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(bad_body("EOF"));
    }
    match serde_json::Deserializer::from_slice(body)
        .into_iter::<Value>()
        .next()
    {
        Some(Ok(v)) => Ok(v),
        Some(Err(e)) => Err(bad_body(e)),
        None => Err(bad_body("EOF")),
    }
}

/// The body as a JSON object; `null` decodes to nothing, like Go decoding into a struct.
fn decode_object(body: &[u8], go_type: &str) -> Result<Map<String, Value>, ApiError> {
    match decode(body)? {
        Value::Object(map) => Ok(map),
        Value::Null => Ok(Map::new()),
        other => Err(bad_body(format!(
            "json: cannot unmarshal {} into Go value of type {go_type}",
            json_kind(&other)
        ))),
    }
}

/// A field of a request body, read as Go's decoder would: absent or null is `None`, a value of
/// another JSON type is Go's unmarshal error naming the struct field and its type.
fn field<T>(
    obj: &Map<String, Value>,
    name: &str,
    go_struct: &str,
    go_type: &str,
    read: impl Fn(&Value) -> Option<T>,
) -> Result<Option<T>, ApiError> {
    match lookup(obj, name) {
        None | Some(Value::Null) => Ok(None),
        Some(value) => read(value).map(Some).ok_or_else(|| {
            bad_body(format!(
                "json: cannot unmarshal {} into Go struct field {go_struct}.{name} of type {go_type}",
                json_kind(value)
            ))
        }),
    }
}

fn string_field(
    obj: &Map<String, Value>,
    name: &str,
    go_struct: &str,
) -> Result<Option<String>, ApiError> {
    field(obj, name, go_struct, "string", |v| {
        v.as_str().map(str::to_owned)
    })
}

fn bool_field(
    obj: &Map<String, Value>,
    name: &str,
    go_struct: &str,
) -> Result<Option<bool>, ApiError> {
    field(obj, name, go_struct, "bool", Value::as_bool)
}

#[allow(clippy::cast_possible_truncation)]
fn float_field(
    obj: &Map<String, Value>,
    name: &str,
    go_struct: &str,
) -> Result<Option<f32>, ApiError> {
    field(obj, name, go_struct, "float32", |v| {
        v.as_f64().map(|f| f as f32)
    })
}

async fn stop_browsers(request: Request, next: Next) -> Response {
    let browser = request
        .headers()
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ua| ua.starts_with("Mozilla/"));
    if browser {
        return text(StatusCode::FORBIDDEN, "User agent not allowed\n".to_owned());
    }
    next.run(request).await
}

async fn not_found() -> Response {
    text(StatusCode::NOT_FOUND, "404 page not found\n".to_owned())
}

async fn version() -> Response {
    let mut response =
        (StatusCode::OK, format!("{{\"version\": \"{VERSION}\"}}\n")).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json;charset=utf-8"),
    );
    response
}

async fn reset(State(registry): State<Shared_>) -> Answer {
    let mut registry = registry.lock().await;
    for proxy in registry.proxies.values_mut() {
        if let Err(e) = proxy.start() {
            return Err(api_error(StatusCode::INTERNAL_SERVER_ERROR, e));
        }
        proxy.set_toxics(Chains::default());
    }
    no_content()
}

async fn proxy_index(State(registry): State<Shared_>) -> Answer {
    let registry = registry.lock().await;
    let chains: Vec<_> = registry.proxies.values().map(Proxy::toxics).collect();
    let map: BTreeMap<&str, _> = registry
        .proxies
        .values()
        .zip(&chains)
        .map(|(p, c)| (p.name.as_str(), proxy_json(p, c)))
        .collect();
    json(StatusCode::OK, &map)
}

fn proxy_json<'a>(p: &'a Proxy, chains: &'a Chains) -> super::model::ProxyJson<'a> {
    super::model::ProxyJson {
        name: &p.name,
        listen: &p.listen,
        upstream: &p.upstream,
        enabled: p.enabled,
        toxics: chains.iter().map(|t| ToxicJson::from(t.as_ref())).collect(),
    }
}

async fn proxy_create(State(registry): State<Shared_>, body: Bytes) -> Answer {
    let obj = decode_object(&body, "toxiproxy.Proxy")?;
    let fields = (|| {
        Ok::<_, ApiError>((
            string_field(&obj, "name", "Proxy")?.unwrap_or_default(),
            string_field(&obj, "listen", "Proxy")?.unwrap_or_default(),
            string_field(&obj, "upstream", "Proxy")?.unwrap_or_default(),
            bool_field(&obj, "enabled", "Proxy")?.unwrap_or(true),
        ))
    })();
    let (name, listen, upstream, enabled) = fields?;
    if name.is_empty() {
        return Err(api_error(
            StatusCode::BAD_REQUEST,
            "missing required field: name",
        ));
    }
    if upstream.is_empty() {
        return Err(api_error(
            StatusCode::BAD_REQUEST,
            "missing required field: upstream",
        ));
    }
    let mut registry = registry.lock().await;
    if registry.proxies.contains_key(&name) {
        return Err(api_error(StatusCode::CONFLICT, "proxy already exists"));
    }
    let mut proxy = Proxy::new(name.clone(), listen, upstream, registry.shared.clone());
    if enabled && let Err(e) = proxy.start() {
        return Err(api_error(StatusCode::INTERNAL_SERVER_ERROR, e));
    }
    let response = proxy.with_json(|j| json(StatusCode::CREATED, &j));
    registry.proxies.insert(name, proxy);
    response
}

async fn populate(State(registry): State<Shared_>, body: Bytes) -> Answer {
    #[derive(Serialize)]
    struct Populated<'a> {
        #[serde(skip_serializing_if = "Option::is_none")]
        error: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        status: Option<u16>,
        proxies: Option<Vec<super::model::ProxyJson<'a>>>,
    }
    let failed = |status: StatusCode, error: String| {
        json(
            status,
            &Populated {
                error: Some(error),
                status: Some(status.as_u16()),
                proxies: None,
            },
        )
    };
    let input = match decode(&body) {
        Ok(Value::Array(items)) => items,
        Ok(Value::Null) => Vec::new(),
        Ok(other) => {
            return failed(
                StatusCode::BAD_REQUEST,
                format!(
                    "bad request body: json: cannot unmarshal {} into Go value of type []struct {{ toxiproxy.Proxy; Enabled *bool \"json:\\\"enabled\\\"\" }}",
                    json_kind(&other)
                ),
            );
        }
        Err(_) => {
            let detail = serde_json::from_slice::<Value>(&body)
                .err()
                .map_or_else(|| "EOF".to_owned(), |e| e.to_string());
            return failed(
                StatusCode::BAD_REQUEST,
                format!("bad request body: {detail}"),
            );
        }
    };
    // Validate everything before changing anything, like Toxiproxy.
    let mut wanted = Vec::with_capacity(input.len());
    for (i, item) in input.iter().enumerate() {
        let Value::Object(obj) = item else {
            return failed(
                StatusCode::BAD_REQUEST,
                format!(
                    "bad request body: json: cannot unmarshal {} into Go value of type toxiproxy.Proxy",
                    json_kind(item)
                ),
            );
        };
        let fields = (|| {
            Ok::<_, ApiError>((
                string_field(obj, "name", "Proxy")?.unwrap_or_default(),
                string_field(obj, "listen", "Proxy")?.unwrap_or_default(),
                string_field(obj, "upstream", "Proxy")?.unwrap_or_default(),
                bool_field(obj, "enabled", "Proxy")?.unwrap_or(true),
            ))
        })();
        let Ok((name, listen, upstream, enabled)) = fields else {
            return failed(
                StatusCode::BAD_REQUEST,
                "bad request body: wrong field type".to_owned(),
            );
        };
        if name.is_empty() {
            return failed(
                StatusCode::BAD_REQUEST,
                format!("missing required field: name at proxy {}", i + 1),
            );
        }
        if upstream.is_empty() {
            return failed(
                StatusCode::BAD_REQUEST,
                format!("missing required field: upstream at proxy {}", i + 1),
            );
        }
        wanted.push((name, listen, upstream, enabled));
    }
    let mut registry = registry.lock().await;
    let mut names = Vec::new();
    let mut error = None;
    for (name, listen, upstream, enabled) in wanted {
        // AddOrReplace: an identical proxy is kept (with its toxics); a different one replaced.
        if let Some(existing) = registry.proxies.get(&name)
            && existing.listen == listen
            && existing.upstream == upstream
        {
            names.push(name);
            continue;
        }
        if let Some(mut old) = registry.proxies.remove(&name) {
            old.stop().await;
        }
        let mut proxy = Proxy::new(name.clone(), listen, upstream, registry.shared.clone());
        if enabled && let Err(e) = proxy.start() {
            error = Some(e);
            break;
        }
        registry.proxies.insert(name.clone(), proxy);
        names.push(name);
    }
    let chains: Vec<_> = names
        .iter()
        .filter_map(|n| registry.proxies.get(n))
        .map(Proxy::toxics)
        .collect();
    let proxies: Vec<_> = names
        .iter()
        .filter_map(|n| registry.proxies.get(n))
        .zip(&chains)
        .map(|(p, c)| proxy_json(p, c))
        .collect();
    // Go marshals an empty result slice as null.
    let proxies = if proxies.is_empty() {
        None
    } else {
        Some(proxies)
    };
    match error {
        None => json(
            StatusCode::CREATED,
            &Populated {
                error: None,
                status: None,
                proxies,
            },
        ),
        Some(e) => json(
            StatusCode::INTERNAL_SERVER_ERROR,
            &Populated {
                error: Some(e),
                status: Some(500),
                proxies,
            },
        ),
    }
}

async fn proxy_show(State(registry): State<Shared_>, Path(name): Path<String>) -> Answer {
    let registry = registry.lock().await;
    match registry.proxies.get(&name) {
        Some(p) => p.with_json(|j| json(StatusCode::OK, &j)),
        None => Err(proxy_not_found()),
    }
}

async fn proxy_update(
    State(registry): State<Shared_>,
    Path(name): Path<String>,
    body: Bytes,
) -> Answer {
    let mut registry = registry.lock().await;
    let Some(proxy) = registry.proxies.get_mut(&name) else {
        return Err(proxy_not_found());
    };
    let obj = decode_object(&body, "toxiproxy.Proxy")?;
    let fields = (|| {
        Ok::<_, ApiError>((
            string_field(&obj, "listen", "Proxy")?.unwrap_or_else(|| proxy.listen.clone()),
            string_field(&obj, "upstream", "Proxy")?.unwrap_or_else(|| proxy.upstream.clone()),
            bool_field(&obj, "enabled", "Proxy")?.unwrap_or(proxy.enabled),
        ))
    })();
    let (listen, upstream, enabled) = fields?;
    if listen != proxy.listen || upstream != proxy.upstream {
        proxy.stop().await;
        proxy.listen = listen;
        proxy.upstream = upstream;
    }
    if enabled != proxy.enabled {
        if enabled {
            if let Err(e) = proxy.start() {
                return Err(api_error(StatusCode::INTERNAL_SERVER_ERROR, e));
            }
        } else {
            proxy.stop().await;
        }
    }
    proxy.with_json(|j| json(StatusCode::OK, &j))
}

async fn proxy_delete(State(registry): State<Shared_>, Path(name): Path<String>) -> Answer {
    let mut registry = registry.lock().await;
    let Some(mut proxy) = registry.proxies.remove(&name) else {
        return Err(proxy_not_found());
    };
    proxy.stop().await;
    no_content()
}

async fn toxic_index(State(registry): State<Shared_>, Path(name): Path<String>) -> Answer {
    let registry = registry.lock().await;
    let Some(proxy) = registry.proxies.get(&name) else {
        return Err(proxy_not_found());
    };
    let chains = proxy.toxics();
    let list: Vec<_> = chains.iter().map(|t| ToxicJson::from(t.as_ref())).collect();
    json(StatusCode::OK, &list)
}

async fn toxic_create(
    State(registry): State<Shared_>,
    Path(name): Path<String>,
    body: Bytes,
) -> Answer {
    let mut registry = registry.lock().await;
    registry.revision += 1;
    let revision = registry.revision;
    let Some(proxy) = registry.proxies.get(&name) else {
        return Err(proxy_not_found());
    };
    let obj = decode_object(&body, "toxics.ToxicWrapper")?;
    let fields = (|| {
        Ok::<_, ApiError>((
            string_field(&obj, "name", "ToxicWrapper")?.unwrap_or_default(),
            string_field(&obj, "type", "ToxicWrapper")?.unwrap_or_default(),
            string_field(&obj, "stream", "ToxicWrapper")?
                .unwrap_or_else(|| "downstream".to_owned()),
            float_field(&obj, "toxicity", "ToxicWrapper")?.unwrap_or(1.0),
        ))
    })();
    let (mut toxic_name, type_name, stream, toxicity) = fields?;
    let Some(direction) = Direction::parse(&stream) else {
        return Err(api_error(
            StatusCode::BAD_REQUEST,
            "stream was invalid, can be either upstream or downstream",
        ));
    };
    if toxic_name.is_empty() {
        toxic_name = format!("{type_name}_{stream}");
    }
    let Some(mut kind) = ToxicKind::new(&type_name) else {
        return Err(api_error(StatusCode::BAD_REQUEST, "invalid toxic type"));
    };
    let mut chains = Chains::clone(&proxy.toxics());
    if chains.find(&toxic_name).is_some() {
        return Err(api_error(StatusCode::CONFLICT, "toxic already exists"));
    }
    if let Err(e) = kind.apply_attributes(lookup(&obj, "attributes").unwrap_or(&Value::Null)) {
        return Err(bad_body(e));
    }
    let def = Arc::new(ToxicDef {
        name: toxic_name,
        type_name,
        stream,
        direction,
        toxicity,
        kind,
        revision,
    });
    chains.of_mut(direction).push(def.clone());
    proxy.set_toxics(chains);
    json(StatusCode::OK, &ToxicJson::from(def.as_ref()))
}

async fn toxic_show(
    State(registry): State<Shared_>,
    Path((name, toxic)): Path<(String, String)>,
) -> Answer {
    let registry = registry.lock().await;
    let Some(proxy) = registry.proxies.get(&name) else {
        return Err(proxy_not_found());
    };
    let chains = proxy.toxics();
    match chains.find(&toxic) {
        Some(t) => json(StatusCode::OK, &ToxicJson::from(t.as_ref())),
        None => Err(toxic_not_found()),
    }
}

async fn toxic_update(
    State(registry): State<Shared_>,
    Path((name, toxic)): Path<(String, String)>,
    body: Bytes,
) -> Answer {
    let mut registry = registry.lock().await;
    registry.revision += 1;
    let revision = registry.revision;
    let Some(proxy) = registry.proxies.get(&name) else {
        return Err(proxy_not_found());
    };
    let mut chains = Chains::clone(&proxy.toxics());
    let Some(current) = chains.find(&toxic).cloned() else {
        return Err(toxic_not_found());
    };
    let obj = decode_object(
        &body,
        "struct { Attributes interface {}; Toxicity float32 }",
    )?;
    // Only attributes and toxicity can change; Go decodes them onto a copy of the toxic.
    let mut updated = ToxicDef::clone(&current);
    if let Some(t) = float_field(&obj, "toxicity", "")? {
        updated.toxicity = t;
    }
    if let Err(e) = updated
        .kind
        .apply_attributes(lookup(&obj, "attributes").unwrap_or(&Value::Null))
    {
        return Err(bad_body(e));
    }
    updated.revision = revision;
    let updated = Arc::new(updated);
    if let Some(slot) = chains
        .of_mut(current.direction)
        .iter_mut()
        .find(|t| t.name == toxic)
    {
        *slot = updated.clone();
    }
    proxy.set_toxics(chains);
    json(StatusCode::OK, &ToxicJson::from(updated.as_ref()))
}

async fn toxic_delete(
    State(registry): State<Shared_>,
    Path((name, toxic)): Path<(String, String)>,
) -> Answer {
    let registry = registry.lock().await;
    let Some(proxy) = registry.proxies.get(&name) else {
        return Err(proxy_not_found());
    };
    let mut chains = Chains::clone(&proxy.toxics());
    let Some(current) = chains.find(&toxic).cloned() else {
        return Err(toxic_not_found());
    };
    chains.of_mut(current.direction).retain(|t| t.name != toxic);
    proxy.set_toxics(chains);
    no_content()
}
