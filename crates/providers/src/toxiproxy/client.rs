//! The Toxiproxy client. Reads and the proxy-level switches go through `toxiproxy_rust`
//! (blocking reqwest behind a mutex, so always on `spawn_blocking`); what it cannot do —
//! choosing toxic names, reset_peer, updating or removing one toxic, creating one proxy, and
//! learning why a request failed — goes through async reqwest against the same HTTP API.
//!
//! `toxiproxy_rust` reports HTTP errors as success, so every change is read back and a change
//! that did not take effect is an [`Error::NotApplied`], never silence.

use super::error::Error;
use super::spec::ToxicSpec;
use crate::error_chain::error_chain;
use reqwest::{Method, StatusCode, Url};
use serde_json::Value;
use std::collections::BTreeMap;
use std::net::ToSocketAddrs;
use std::time::Duration;

/// Deadline of one HTTP request to Toxiproxy.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// A toxic as read back from Toxiproxy.
#[derive(Clone, Debug, PartialEq)]
pub struct Toxic {
    /// Unique on its proxy.
    pub name: String,
    /// Type name (`latency`, …).
    pub toxic_type: String,
    /// `upstream` or `downstream`.
    pub stream: String,
    /// Probability of applying per connection.
    pub toxicity: f32,
    /// Attributes by wire name.
    pub attributes: BTreeMap<String, Value>,
}

/// A proxy as read back from Toxiproxy.
#[derive(Clone, Debug, PartialEq)]
pub struct ProxyState {
    /// Name.
    pub name: String,
    /// Listen address (resolved).
    pub listen: String,
    /// Upstream address.
    pub upstream: String,
    /// False when the proxy is down.
    pub enabled: bool,
    /// Its toxics, upstream first.
    pub toxics: Vec<Toxic>,
}

impl ProxyState {
    /// The toxic called `name`.
    #[must_use]
    pub fn toxic(&self, name: &str) -> Option<&Toxic> {
        self.toxics.iter().find(|t| t.name == name)
    }
}

fn from_pack(pack: toxiproxy_rust::proxy::ProxyPack) -> ProxyState {
    ProxyState {
        name: pack.name,
        listen: pack.listen,
        upstream: pack.upstream,
        enabled: pack.enabled,
        toxics: pack
            .toxics
            .into_iter()
            .map(|t| Toxic {
                name: t.name,
                toxic_type: t.r#type,
                stream: t.stream,
                toxicity: t.toxicity,
                attributes: t
                    .attributes
                    .into_iter()
                    .map(|(k, v)| (k, Value::from(v)))
                    .collect(),
            })
            .collect(),
    }
}

fn parse_toxic(v: &Value) -> Option<Toxic> {
    Some(Toxic {
        name: v.get("name")?.as_str()?.to_owned(),
        toxic_type: v.get("type")?.as_str()?.to_owned(),
        stream: v.get("stream")?.as_str()?.to_owned(),
        #[allow(clippy::cast_possible_truncation)]
        toxicity: v.get("toxicity")?.as_f64()? as f32,
        attributes: v
            .get("attributes")
            .and_then(Value::as_object)
            .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default(),
    })
}

fn parse_proxy(v: &Value) -> Option<ProxyState> {
    Some(ProxyState {
        name: v.get("name")?.as_str()?.to_owned(),
        listen: v.get("listen")?.as_str()?.to_owned(),
        upstream: v.get("upstream")?.as_str()?.to_owned(),
        enabled: v.get("enabled")?.as_bool()?,
        toxics: match v.get("toxics") {
            Some(Value::Array(list)) => list.iter().map(parse_toxic).collect::<Option<Vec<_>>>()?,
            _ => Vec::new(),
        },
    })
}

/// A client for one Toxiproxy server.
#[derive(Clone, Debug)]
pub struct ToxiproxyClient {
    base: Url,
    url: String,
    /// `host:port`, the form `toxiproxy_rust` wants.
    authority: String,
    http: reqwest::Client,
}

impl ToxiproxyClient {
    /// A client for the Toxiproxy API at `base_url` (`http://127.0.0.1:8474`; a bare
    /// `host:port` is taken as http). No request is made.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidUrl`] when the URL does not parse or is not plain http with a host.
    pub fn new(base_url: &str) -> Result<Self, Error> {
        let invalid = |reason: &str| Error::InvalidUrl {
            url: base_url.to_owned(),
            reason: reason.to_owned(),
        };
        let text = if base_url.contains("://") {
            base_url.to_owned()
        } else {
            format!("http://{base_url}")
        };
        let base = Url::parse(&text).map_err(|e| invalid(&e.to_string()))?;
        if base.scheme() != "http" {
            return Err(invalid("Toxiproxy's API is plain http"));
        }
        let host = base.host_str().ok_or_else(|| invalid("no host"))?;
        let port = base
            .port_or_known_default()
            .ok_or_else(|| invalid("no port"))?;
        let authority = format!("{host}:{port}");
        let http = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .build()
            .map_err(|e| invalid(&e.to_string()))?;
        let url = base.as_str().trim_end_matches('/').to_owned();
        Ok(Self {
            base,
            url,
            authority,
            http,
        })
    }

    /// The base URL, as errors name it.
    #[must_use]
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Runs a `toxiproxy_rust` call on the blocking pool with a fresh library client (its
    /// blocking reqwest client must be neither created nor dropped on a runtime worker).
    async fn blocking<T, F>(&self, action: &str, f: F) -> Result<T, Error>
    where
        T: Send + 'static,
        F: FnOnce(&toxiproxy_rust::client::Client) -> Result<T, String> + Send + 'static,
    {
        let authority = self.authority.clone();
        let joined = tokio::task::spawn_blocking(move || {
            let addr = authority
                .to_socket_addrs()
                .map_err(|e| format!("cannot resolve {authority}: {e}"))?
                .next()
                .ok_or_else(|| format!("{authority} resolves to no address"))?;
            let client = toxiproxy_rust::client::Client::new(addr);
            f(&client).map_err(|e| format!("toxiproxy_rust: {e}"))
        })
        .await;
        match joined {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(detail)) if detail.contains(" error: ") || detail.contains("resolve") => {
                Err(Error::Unreachable {
                    url: self.url.clone(),
                    action: action.to_owned(),
                    detail,
                })
            }
            Ok(Err(detail)) => Err(Error::UnexpectedResponse {
                url: self.url.clone(),
                action: action.to_owned(),
                detail,
            }),
            Err(e) => Err(Error::UnexpectedResponse {
                url: self.url.clone(),
                action: action.to_owned(),
                detail: format!("toxiproxy_rust panicked: {e}"),
            }),
        }
    }

    fn endpoint(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        url
    }

    /// One HTTP request with reqwest; answers the status and the parsed JSON body (Null when
    /// the body is empty or not JSON, with the text kept for error messages).
    async fn request(
        &self,
        method: Method,
        segments: &[&str],
        body: Option<&Value>,
        action: &str,
    ) -> Result<(StatusCode, Value, String), Error> {
        let mut request = self.http.request(method, self.endpoint(segments));
        if let Some(body) = body {
            request = request.json(body);
        }
        let unreachable = |e: reqwest::Error| Error::Unreachable {
            url: self.url.clone(),
            action: action.to_owned(),
            detail: error_chain(&e),
        };
        let response = request.send().await.map_err(unreachable)?;
        let status = response.status();
        let text = response.text().await.map_err(unreachable)?;
        let json = serde_json::from_str(&text).unwrap_or(Value::Null);
        Ok((status, json, text))
    }

    /// Turns an error answer into the matching error variant.
    fn failure(
        &self,
        status: StatusCode,
        json: &Value,
        text: &str,
        action: &str,
        proxy: &str,
        toxic: Option<&str>,
    ) -> Error {
        let message = json
            .get("error")
            .and_then(Value::as_str)
            .unwrap_or(text.trim())
            .to_owned();
        let url = self.url.clone();
        let proxy = proxy.to_owned();
        match (status, message.as_str(), toxic) {
            (StatusCode::NOT_FOUND, "proxy not found", _) => Error::ProxyNotFound { url, proxy },
            (StatusCode::NOT_FOUND, "toxic not found", Some(t)) => Error::ToxicNotFound {
                url,
                proxy,
                toxic: t.to_owned(),
            },
            (StatusCode::CONFLICT, _, Some(t)) => Error::ToxicAlreadyExists {
                url,
                proxy,
                toxic: t.to_owned(),
            },
            (StatusCode::CONFLICT, _, None) => Error::ProxyAlreadyExists { url, proxy },
            _ => Error::Rejected {
                url,
                action: action.to_owned(),
                status: status.as_u16(),
                message,
            },
        }
    }

    /// The server's version (`{"version":…}` since 2.7, plain text before).
    ///
    /// # Errors
    ///
    /// [`Error::Unreachable`] when no server answers; [`Error::UnexpectedResponse`] for an empty answer.
    pub async fn version(&self) -> Result<String, Error> {
        let action = "read the version";
        let body = self.blocking(action, |c| c.version()).await?;
        let version = match serde_json::from_str::<Value>(&body) {
            Ok(v) => v.get("version").and_then(Value::as_str).map(str::to_owned),
            Err(_) => Some(body.trim().to_owned()),
        };
        version
            .filter(|v| !v.is_empty())
            .ok_or_else(|| Error::UnexpectedResponse {
                url: self.url.clone(),
                action: action.to_owned(),
                detail: format!("no version in {body:?}"),
            })
    }

    /// Every proxy with its toxics.
    ///
    /// # Errors
    ///
    /// [`Error::Unreachable`], or [`Error::UnexpectedResponse`] for an answer of another shape.
    pub async fn proxies(&self) -> Result<BTreeMap<String, ProxyState>, Error> {
        let action = "list proxies";
        match self.blocking(action, |c| c.all()).await {
            Ok(all) => Ok(all
                .into_iter()
                .map(|(name, p)| (name, from_pack(p.proxy_pack)))
                .collect()),
            Err(Error::UnexpectedResponse { .. }) => {
                // toxiproxy_rust cannot read attributes other than u32s (another tool's toxics):
                // read the documented shape directly.
                let (status, json, text) = self
                    .request(Method::GET, &["proxies"], None, action)
                    .await?;
                if !status.is_success() {
                    return Err(self.failure(status, &json, &text, action, "*", None));
                }
                json.as_object()
                    .and_then(|m| {
                        m.iter()
                            .map(|(k, v)| parse_proxy(v).map(|p| (k.clone(), p)))
                            .collect()
                    })
                    .ok_or_else(|| self.unexpected(action, &text))
            }
            Err(e) => Err(e),
        }
    }

    fn unexpected(&self, action: &str, text: &str) -> Error {
        Error::UnexpectedResponse {
            url: self.url.clone(),
            action: action.to_owned(),
            detail: format!("cannot read {text:?} as Toxiproxy JSON"),
        }
    }

    /// One proxy with its toxics.
    ///
    /// # Errors
    ///
    /// [`Error::ProxyNotFound`], [`Error::Unreachable`], [`Error::UnexpectedResponse`].
    pub async fn proxy(&self, name: &str) -> Result<ProxyState, Error> {
        let action = format!("read proxy {name:?}");
        let owned = name.to_owned();
        match self.blocking(&action, move |c| c.find_proxy(&owned)).await {
            Ok(p) => Ok(from_pack(p.proxy_pack)),
            Err(Error::UnexpectedResponse { .. }) => {
                // An error body (404) does not parse as a proxy in toxiproxy_rust, and it cannot
                // tell why: ask again with reqwest to get the status.
                let (status, json, text) = self
                    .request(Method::GET, &["proxies", name], None, &action)
                    .await?;
                if !status.is_success() {
                    return Err(self.failure(status, &json, &text, &action, name, None));
                }
                parse_proxy(&json).ok_or_else(|| self.unexpected(&action, &text))
            }
            Err(e) => Err(e),
        }
    }

    /// Creates one proxy (never replaces an existing one, unlike `/populate`).
    ///
    /// # Errors
    ///
    /// [`Error::ProxyAlreadyExists`] (409), [`Error::Rejected`] (e.g. listen address in use),
    /// [`Error::NotApplied`] when the read-back differs.
    pub async fn create_proxy(
        &self,
        name: &str,
        listen: &str,
        upstream: &str,
    ) -> Result<ProxyState, Error> {
        let action = format!("create proxy {name:?}");
        let body = serde_json::json!({"name": name, "listen": listen, "upstream": upstream, "enabled": true});
        let (status, json, text) = self
            .request(Method::POST, &["proxies"], Some(&body), &action)
            .await?;
        if !status.is_success() {
            return Err(self.failure(status, &json, &text, &action, name, None));
        }
        let created = parse_proxy(&json).ok_or_else(|| self.unexpected(&action, &text))?;
        let state = self.proxy(name).await?;
        if state.upstream != upstream || !state.enabled || state.listen != created.listen {
            return Err(self.not_applied(
                name,
                format!(
                    "proxy created listening on {} to {upstream}",
                    created.listen
                ),
                &state,
            ));
        }
        Ok(state)
    }

    /// Deletes a proxy; `Ok(false)` when it did not exist.
    ///
    /// # Errors
    ///
    /// [`Error::Unreachable`], [`Error::Rejected`], [`Error::NotApplied`].
    pub async fn delete_proxy(&self, name: &str) -> Result<bool, Error> {
        let action = format!("delete proxy {name:?}");
        let (status, json, text) = self
            .request(Method::DELETE, &["proxies", name], None, &action)
            .await?;
        let existed = match status {
            s if s.is_success() => true,
            StatusCode::NOT_FOUND => false,
            s => return Err(self.failure(s, &json, &text, &action, name, None)),
        };
        if self.proxies().await?.contains_key(name) {
            return Err(Error::NotApplied {
                url: self.url.clone(),
                proxy: name.to_owned(),
                change: "proxy deleted".to_owned(),
                observed: "the proxy still listed".to_owned(),
            });
        }
        Ok(existed)
    }

    fn not_applied(&self, proxy: &str, change: String, state: &ProxyState) -> Error {
        Error::NotApplied {
            url: self.url.clone(),
            proxy: proxy.to_owned(),
            change,
            observed: format!("{state:?}"),
        }
    }

    /// Brings a proxy up or down ("down" is `enabled: false`: the listener closes and existing
    /// connections are cut).
    ///
    /// # Errors
    ///
    /// [`Error::ProxyNotFound`], [`Error::Unreachable`], [`Error::NotApplied`] (e.g. the listen
    /// address was taken while the proxy was down).
    pub async fn set_enabled(&self, proxy: &str, enabled: bool) -> Result<ProxyState, Error> {
        let verb = if enabled { "enable" } else { "disable" };
        let action = format!("{verb} proxy {proxy:?}");
        let owned = proxy.to_owned();
        let attempt = self
            .blocking(&action, move |c| {
                let p = c.find_proxy(&owned)?;
                if enabled { p.enable() } else { p.disable() }
            })
            .await;
        if let Err(e @ Error::Unreachable { .. }) = attempt {
            return Err(e);
        }
        // The read-back decides: it also names a missing proxy properly.
        let state = self.proxy(proxy).await?;
        if state.enabled != enabled {
            return Err(self.not_applied(proxy, format!("{verb}d"), &state));
        }
        Ok(state)
    }

    /// Adds a toxic; the spec is validated first (nothing is sent if it is invalid).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidToxic`], [`Error::ToxicAlreadyExists`] (409), [`Error::ProxyNotFound`],
    /// [`Error::Rejected`], [`Error::NotApplied`] when the read-back differs.
    pub async fn add_toxic(&self, proxy: &str, spec: &ToxicSpec) -> Result<Toxic, Error> {
        spec.validate()?;
        let action = format!("add toxic {:?} to proxy {proxy:?}", spec.name);
        let body = spec.to_json();
        let (status, json, text) = self
            .request(
                Method::POST,
                &["proxies", proxy, "toxics"],
                Some(&body),
                &action,
            )
            .await?;
        if !status.is_success() {
            return Err(self.failure(status, &json, &text, &action, proxy, Some(&spec.name)));
        }
        self.verify_toxic(proxy, spec, "added").await
    }

    /// Changes the toxicity and attributes of an existing toxic (its type and stream stay).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidToxic`], [`Error::ToxicNotFound`], [`Error::ProxyNotFound`],
    /// [`Error::Rejected`], [`Error::NotApplied`].
    pub async fn update_toxic(&self, proxy: &str, spec: &ToxicSpec) -> Result<Toxic, Error> {
        spec.validate()?;
        let action = format!("update toxic {:?} on proxy {proxy:?}", spec.name);
        let body = serde_json::json!({"toxicity": spec.toxicity, "attributes": spec.kind.attributes_json()});
        let (status, json, text) = self
            .request(
                Method::PATCH,
                &["proxies", proxy, "toxics", &spec.name],
                Some(&body),
                &action,
            )
            .await?;
        if !status.is_success() {
            return Err(self.failure(status, &json, &text, &action, proxy, Some(&spec.name)));
        }
        self.verify_toxic(proxy, spec, "updated").await
    }

    async fn verify_toxic(
        &self,
        proxy: &str,
        spec: &ToxicSpec,
        verb: &str,
    ) -> Result<Toxic, Error> {
        let state = self.proxy(proxy).await?;
        let change = format!(
            "toxic {:?} {verb} ({} {} {:?})",
            spec.name,
            spec.kind.type_name(),
            spec.stream,
            spec.kind.attributes()
        );
        let Some(toxic) = state.toxic(&spec.name) else {
            return Err(self.not_applied(proxy, change, &state));
        };
        let matches = toxic.toxic_type == spec.kind.type_name()
            && toxic.stream.eq_ignore_ascii_case(spec.stream.as_str())
            && (toxic.toxicity - spec.toxicity).abs() < 1e-6
            && spec
                .kind
                .attributes()
                .iter()
                .all(|(k, v)| toxic.attributes.get(*k).and_then(Value::as_i64) == Some(*v));
        if !matches {
            return Err(Error::NotApplied {
                url: self.url.clone(),
                proxy: proxy.to_owned(),
                change,
                observed: format!("{toxic:?}"),
            });
        }
        Ok(toxic.clone())
    }

    /// Removes one toxic by name. Idempotent: `Ok(false)` when it was already absent, so an
    /// undo can run twice. A missing proxy is still an error.
    ///
    /// # Errors
    ///
    /// [`Error::ProxyNotFound`], [`Error::Unreachable`], [`Error::Rejected`], [`Error::NotApplied`].
    pub async fn remove_toxic(&self, proxy: &str, name: &str) -> Result<bool, Error> {
        let action = format!("remove toxic {name:?} from proxy {proxy:?}");
        let (status, json, text) = self
            .request(
                Method::DELETE,
                &["proxies", proxy, "toxics", name],
                None,
                &action,
            )
            .await?;
        let removed = if status.is_success() {
            true
        } else {
            match self.failure(status, &json, &text, &action, proxy, Some(name)) {
                Error::ToxicNotFound { .. } => false,
                e => return Err(e),
            }
        };
        let state = self.proxy(proxy).await?;
        if state.toxic(name).is_some() {
            return Err(self.not_applied(proxy, format!("toxic {name:?} removed"), &state));
        }
        Ok(removed)
    }

    /// DANGEROUS: `POST /reset` re-enables every proxy and removes every toxic on the server,
    /// including those of other drills and other people. firedrill's undo never calls it; it
    /// exists for tearing down a private test server.
    ///
    /// # Errors
    ///
    /// [`Error::Unreachable`], [`Error::NotApplied`] when a proxy is still down or has toxics.
    pub async fn reset_all(&self) -> Result<(), Error> {
        self.blocking("reset every proxy", toxiproxy_rust::client::Client::reset)
            .await?;
        for (name, state) in self.proxies().await? {
            if !state.enabled || !state.toxics.is_empty() {
                return Err(self.not_applied(
                    &name,
                    "reset (enabled, no toxics)".to_owned(),
                    &state,
                ));
            }
        }
        Ok(())
    }
}
