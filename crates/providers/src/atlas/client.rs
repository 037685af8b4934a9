//! The Atlas Administration API over HTTP: versioned media types
//! (`application/vnd.atlas.YYYY-MM-DD+json`), HTTP digest for programmatic API keys, OAuth 2.0
//! client credentials for service accounts, Atlas's error bodies (`error`, `errorCode`,
//! `detail`, `reason`) turned into [`AtlasError`]s, and transient answers (429, 5xx, no answer)
//! retried with backoff until a deadline in platform time.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode, header};
use serde_json::Value;

use firedrill_core::clock::{Clock, format_duration};

use super::config::{Credentials, Settings};
use super::error::AtlasError;

/// How long one call retries transient answers (platform time).
pub const RETRY_WITHIN: Duration = Duration::from_secs(5 * 60);
/// The first pause after a transient answer (platform time); it doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
/// The longest pause between two attempts (platform time).
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// How long one attempt may take (wall time): the API answers or it counts as unreachable.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(30);
/// A bearer token is renewed this long (wall time) before Atlas says it expires.
const TOKEN_MARGIN: Duration = Duration::from_secs(60);

/// The Atlas role an action needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// Reading the cluster.
    ReadOnly,
    /// Test failover and cluster changes (Project Cluster Manager, or Project Owner).
    ClusterManager,
    /// Outage simulation (Project Owner).
    Owner,
}

impl Role {
    /// The role's name in Atlas's UI and documentation.
    #[must_use]
    pub fn title(self) -> &'static str {
        match self {
            Role::ReadOnly => "Project Read Only",
            Role::ClusterManager => "Project Cluster Manager",
            Role::Owner => "Project Owner",
        }
    }

    /// Whether an Atlas role name (`GROUP_OWNER`, …) grants this role.
    #[must_use]
    pub fn granted_by(self, atlas_role: &str) -> bool {
        match self {
            Role::Owner => atlas_role == "GROUP_OWNER",
            Role::ClusterManager => matches!(atlas_role, "GROUP_OWNER" | "GROUP_CLUSTER_MANAGER"),
            Role::ReadOnly => atlas_role.starts_with("GROUP_"),
        }
    }
}

/// One request to the API.
#[derive(Clone, Debug)]
pub struct Call<'a> {
    /// The method.
    pub method: Method,
    /// The path below the base URL (`/api/atlas/v2/groups/…`).
    pub path: String,
    /// The resource version (`2023-01-01`) of the media type.
    pub version: &'static str,
    /// A JSON body.
    pub body: Option<&'a Value>,
    /// What it does, for messages (`start the outage simulation`).
    pub what: &'a str,
    /// The role it needs, for a 403's message.
    pub role: Role,
    /// What to do when Atlas answers 409.
    pub on_conflict: &'a str,
}

/// An answer the caller decides about: a success body, or a 404.
#[derive(Clone, Debug, PartialEq)]
pub enum Answer {
    /// 2xx with its body (`Null` when empty).
    Ok(Value),
    /// 404 with Atlas's `errorCode`.
    NotFound(String),
}

/// Atlas's error body.
#[derive(Clone, Debug, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct ApiErrorBody {
    #[serde(default)]
    detail: Option<String>,
    #[serde(default)]
    error_code: Option<String>,
    #[serde(default)]
    reason: Option<String>,
}

/// A client of one Atlas-managed database's project and cluster.
pub struct Client {
    settings: Settings,
    http: reqwest::Client,
    clock: Clock,
    /// The last digest challenge, answered again with a higher nonce count until Atlas sends a
    /// new one.
    challenge: Mutex<Option<digest_auth::WwwAuthenticateHeader>>,
    /// The service account's bearer token and when (wall time) to renew it.
    token: Mutex<Option<(String, Instant)>>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("database", &self.settings.database)
            .field("cluster", &self.settings.cluster)
            .field("credentials", &self.settings.credentials)
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// What one attempt gave: an answer to judge, or a transport failure to retry.
enum Attempt {
    Answer {
        status: StatusCode,
        headers: header::HeaderMap,
        body: Vec<u8>,
    },
    Transport(String),
}

impl Client {
    /// A client for `settings` on `clock`.
    ///
    /// # Errors
    ///
    /// [`AtlasError::Unreachable`] when the HTTP client cannot be built.
    pub fn new(settings: Settings, clock: Clock) -> Result<Self, AtlasError> {
        let http = reqwest::Client::builder()
            .no_proxy()
            .pool_max_idle_per_host(2)
            .build()
            .map_err(|e| AtlasError::Unreachable {
                on: settings.on(),
                url: settings.url.clone(),
                what: "(building the HTTP client)".into(),
                message: e.to_string(),
            })?;
        Ok(Self {
            settings,
            http,
            clock,
            challenge: Mutex::new(None),
            token: Mutex::new(None),
        })
    }

    /// The settings it was built from.
    #[must_use]
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The clock its deadlines run on.
    #[must_use]
    pub fn clock(&self) -> Clock {
        self.clock
    }

    /// `text` with every credential (and a bearer token) replaced by `<redacted>`.
    #[must_use]
    pub fn clean(&self, text: &str) -> String {
        let mut needles: Vec<String> = self
            .settings
            .credentials
            .parts()
            .iter()
            .map(|s| s.expose().to_owned())
            .collect();
        if let Some((token, _)) = lock(&self.token).as_ref() {
            needles.push(token.clone());
        }
        needles.retain(|n| !n.is_empty());
        needles.sort_by_key(|n| std::cmp::Reverse(n.len()));
        needles
            .iter()
            .fold(text.to_owned(), |t, n| t.replace(n.as_str(), "<redacted>"))
    }

    /// `/api/atlas/v2/groups/{project}/clusters/{cluster}{rest}`.
    #[must_use]
    pub fn cluster_path(&self, rest: &str) -> String {
        format!(
            "/api/atlas/v2/groups/{}/clusters/{}{rest}",
            self.settings.project, self.settings.cluster
        )
    }

    /// `/api/atlas/v2/groups/{project}{rest}`.
    #[must_use]
    pub fn project_path(&self, rest: &str) -> String {
        format!("/api/atlas/v2/groups/{}{rest}", self.settings.project)
    }

    /// Sends `call`, retrying transient answers until [`RETRY_WITHIN`] of platform time has
    /// passed; a 404 is an [`Answer`], every other refusal an error.
    ///
    /// # Errors
    ///
    /// The [`AtlasError`] of the last answer.
    pub async fn send(&self, call: &Call<'_>) -> Result<Answer, AtlasError> {
        let started = self.clock.now();
        let deadline = started.plus(RETRY_WITHIN);
        let mut backoff = FIRST_BACKOFF;
        loop {
            let attempt = self.attempt(call).await;
            let retry_after = match &attempt {
                Attempt::Answer {
                    status, headers, ..
                } if *status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() => {
                    Some(retry_after(headers).unwrap_or(backoff))
                }
                Attempt::Transport(_) => Some(backoff),
                Attempt::Answer { .. } => None,
            };
            let out_of_time = self.clock.now().plus(retry_after.unwrap_or_default()) > deadline;
            if retry_after.is_none() || out_of_time {
                return self.judge(call, attempt, started);
            }
            if let Attempt::Answer { status, .. } = &attempt {
                tracing::warn!(
                    cluster = %self.settings.cluster,
                    status = status.as_u16(),
                    "Atlas answered {} to {}; retrying",
                    status.as_u16(),
                    call.what
                );
            }
            self.clock.sleep(retry_after.unwrap_or(backoff)).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }

    /// Sends `call` and wants a success.
    ///
    /// # Errors
    ///
    /// As [`Client::send`]; a 404 is [`AtlasError::NotFound`].
    pub async fn expect(&self, call: &Call<'_>) -> Result<Value, AtlasError> {
        match self.send(call).await? {
            Answer::Ok(body) => Ok(body),
            Answer::NotFound(code) => Err(AtlasError::NotFound {
                on: self.settings.on(),
                project: self.settings.project.clone(),
                error_code: code,
                detail: format!("{} found nothing", call.what),
            }),
        }
    }

    fn judge(
        &self,
        call: &Call<'_>,
        attempt: Attempt,
        started: firedrill_core::clock::PlatformTime,
    ) -> Result<Answer, AtlasError> {
        let s = &self.settings;
        let (status, body) = match attempt {
            Attempt::Transport(message) => {
                return Err(AtlasError::Unreachable {
                    on: s.on(),
                    url: s.url.clone(),
                    what: format!("{} {}", call.method, call.path),
                    message: self.clean(&message),
                });
            }
            Attempt::Answer { status, body, .. } => (status, body),
        };
        if status.is_success() {
            if body.iter().all(u8::is_ascii_whitespace) {
                return Ok(Answer::Ok(Value::Null));
            }
            return serde_json::from_slice(&body)
                .map(Answer::Ok)
                .map_err(|e| AtlasError::Body {
                    on: s.on(),
                    what: call.what.to_owned(),
                    message: e.to_string(),
                });
        }
        let error: ApiErrorBody = serde_json::from_slice(&body).unwrap_or_default();
        let code = error.error_code.unwrap_or_else(|| "-".to_owned());
        let detail = self.clean(&firedrill_core::diagnostic::clip(
            &error
                .detail
                .or(error.reason)
                .unwrap_or_else(|| String::from_utf8_lossy(&body).into_owned()),
            300,
        ));
        Err(match status {
            StatusCode::NOT_FOUND => return Ok(Answer::NotFound(code)),
            StatusCode::UNAUTHORIZED => AtlasError::Unauthorized {
                on: s.on(),
                kind: s.credentials.kind(),
                error_code: code,
                detail,
            },
            StatusCode::FORBIDDEN => AtlasError::Forbidden {
                on: s.on(),
                project: s.project.clone(),
                what: call.what.to_owned(),
                role: call.role.title(),
                kind: s.credentials.kind(),
                detail: format!("403 {code}: {detail}"),
            },
            StatusCode::CONFLICT => AtlasError::Conflict {
                on: s.on(),
                what: call.what.to_owned(),
                error_code: code,
                detail,
                hint: call.on_conflict.to_owned(),
            },
            StatusCode::TOO_MANY_REQUESTS => AtlasError::RateLimited {
                on: s.on(),
                what: call.what.to_owned(),
                waited: format_duration(self.clock.now().saturating_since(started)),
                error_code: code,
                detail,
            },
            other => AtlasError::Api {
                on: s.on(),
                what: call.what.to_owned(),
                status: other.as_u16(),
                error_code: code,
                detail,
                hint: if other.is_server_error() {
                    format!(
                        "Atlas kept failing for {}; check status.mongodb.com and run again",
                        format_duration(self.clock.now().saturating_since(started))
                    )
                } else {
                    "this request is firedrill's; report it with the answer above".to_owned()
                },
            },
        })
    }

    /// One attempt, authenticated: answers a digest challenge, or renews a refused token, once.
    async fn attempt(&self, call: &Call<'_>) -> Attempt {
        let mut answered_challenge = false;
        loop {
            let authorization = match self.authorization(call).await {
                Ok(a) => a,
                Err(message) => return Attempt::Transport(message),
            };
            let attempt = self.raw(call, authorization).await;
            let Attempt::Answer {
                status, headers, ..
            } = &attempt
            else {
                return attempt;
            };
            if *status != StatusCode::UNAUTHORIZED || answered_challenge {
                return attempt;
            }
            answered_challenge = true;
            match &self.settings.credentials {
                Credentials::ApiKey { .. } => {
                    let challenge = headers
                        .get_all(header::WWW_AUTHENTICATE)
                        .iter()
                        .filter_map(|v| v.to_str().ok())
                        .find(|v| v.trim_start().starts_with("Digest"))
                        .and_then(|v| digest_auth::parse(v).ok());
                    match challenge {
                        Some(c) => *lock(&self.challenge) = Some(c),
                        None => return attempt,
                    }
                }
                Credentials::ServiceAccount { .. } => *lock(&self.token) = None,
            }
        }
    }

    /// The `Authorization` header for `call`, if any is known yet.
    async fn authorization(&self, call: &Call<'_>) -> Result<Option<String>, String> {
        match &self.settings.credentials {
            Credentials::ApiKey { public, private } => {
                let mut challenge = lock(&self.challenge);
                let Some(challenge) = challenge.as_mut() else {
                    return Ok(None);
                };
                let body = call.body.map(|b| b.to_string().into_bytes());
                let context = digest_auth::AuthContext::new_with_method(
                    public.expose(),
                    private.expose(),
                    call.path.as_str(),
                    body.as_deref(),
                    digest_auth::HttpMethod::from(call.method.as_str().to_owned()),
                );
                challenge
                    .respond(&context)
                    .map(|h| Some(h.to_header_string()))
                    .map_err(|e| format!("cannot answer the digest challenge: {e}"))
            }
            Credentials::ServiceAccount { .. } => {
                let cached = lock(&self.token)
                    .as_ref()
                    .filter(|(_, renew)| Instant::now() < *renew)
                    .map(|(t, _)| t.clone());
                let token = match cached {
                    Some(t) => t,
                    None => self.fetch_token().await?,
                };
                Ok(Some(format!("Bearer {token}")))
            }
        }
    }

    /// Exchanges the service account's client credentials for a bearer token.
    async fn fetch_token(&self) -> Result<String, String> {
        let Credentials::ServiceAccount { id, secret } = &self.settings.credentials else {
            return Err("no service account".into());
        };
        let response = self
            .http
            .post(format!("{}/api/oauth/token", self.settings.url))
            .basic_auth(id.expose(), Some(secret.expose()))
            .header(header::ACCEPT, "application/json")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body("grant_type=client_credentials")
            .timeout(self.attempt_timeout())
            .send()
            .await
            .map_err(|e| format!("the token endpoint did not answer: {e}"))?;
        let status = response.status();
        let body: Value = response
            .json()
            .await
            .map_err(|e| format!("the token endpoint answered {status} unreadably: {e}"))?;
        let token = body["access_token"].as_str().map(str::to_owned);
        match token {
            Some(token) if status.is_success() => {
                let lifetime = Duration::from_secs(body["expires_in"].as_u64().unwrap_or(3600));
                let renew = Instant::now() + lifetime.saturating_sub(TOKEN_MARGIN);
                *lock(&self.token) = Some((token.clone(), renew));
                Ok(token)
            }
            // A refused exchange is sent on without a token: the API's 401 names it.
            _ => Ok(String::new()),
        }
    }

    fn attempt_timeout(&self) -> Duration {
        self.clock
            .to_wall(ATTEMPT_TIMEOUT)
            .max(Duration::from_secs(2))
    }

    async fn raw(&self, call: &Call<'_>, authorization: Option<String>) -> Attempt {
        let media = format!("application/vnd.atlas.{}+json", call.version);
        let mut request = self
            .http
            .request(
                call.method.clone(),
                format!("{}{}", self.settings.url, call.path),
            )
            .header(header::ACCEPT, &media)
            .timeout(self.attempt_timeout());
        if let Some(body) = call.body {
            request = request
                .header(header::CONTENT_TYPE, &media)
                .body(body.to_string());
        }
        if let Some(authorization) = authorization {
            request = request.header(header::AUTHORIZATION, authorization);
        }
        match request.send().await {
            Ok(response) => {
                let status = response.status();
                let headers = response.headers().clone();
                match response.bytes().await {
                    Ok(body) => Attempt::Answer {
                        status,
                        headers,
                        body: body.to_vec(),
                    },
                    Err(e) => Attempt::Transport(e.to_string()),
                }
            }
            Err(e) => Attempt::Transport(e.to_string()),
        }
    }
}

/// `Retry-After` in seconds, as a platform duration.
fn retry_after(headers: &header::HeaderMap) -> Option<Duration> {
    headers
        .get(header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_are_granted_by_the_atlas_roles_that_include_them() {
        assert!(Role::Owner.granted_by("GROUP_OWNER"));
        assert!(!Role::Owner.granted_by("GROUP_CLUSTER_MANAGER"));
        assert!(Role::ClusterManager.granted_by("GROUP_CLUSTER_MANAGER"));
        assert!(Role::ClusterManager.granted_by("GROUP_OWNER"));
        assert!(!Role::ClusterManager.granted_by("GROUP_READ_ONLY"));
        assert!(Role::ReadOnly.granted_by("GROUP_READ_ONLY"));
    }

    #[test]
    fn retry_after_is_read_in_seconds() {
        let mut headers = header::HeaderMap::new();
        assert_eq!(retry_after(&headers), None);
        headers.insert(header::RETRY_AFTER, header::HeaderValue::from_static("7"));
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(7)));
    }
}
