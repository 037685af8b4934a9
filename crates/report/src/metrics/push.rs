//! Pushing a drill's series to a Prometheus Pushgateway after it ends.
//!
//! Grouping key: job `firedrill`, `drill` (the feature), `platform`. A `PUT` replaces the
//! group, so the Pushgateway always holds the latest run of each drill.

use std::time::Duration;

use base64::Engine as _;

use super::{Metrics, encode};
use firedrill_core::diagnostic::{echo, redact_userinfo};
use firedrill_core::redact::{credential_forms, scrub};

/// The most characters of a refusing Pushgateway's answer an error quotes.
const BODY_LIMIT: usize = 300;

/// Where and how to push.
///
/// Credentials come from the environment (`FIREDRILL_PUSHGATEWAY_USER`/`_PASSWORD` or
/// `FIREDRILL_PUSHGATEWAY_TOKEN`); a URL's own `user:password@` is used for basic auth when the
/// environment gives none, and is never kept in [`PushConfig::url`], which is what errors print.
#[derive(Clone)]
pub struct PushConfig {
    /// The Pushgateway's base URL, without credentials: safe to print.
    pub url: String,
    /// `user:password` for basic auth.
    pub basic: Option<(String, String)>,
    /// A bearer token.
    pub bearer: Option<String>,
    /// Whether the URL given carried `user:password@` (a command line others can read in `ps`).
    pub credentials_in_url: bool,
}

impl std::fmt::Debug for PushConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PushConfig")
            .field("url", &self.url)
            .field(
                "basic",
                &self.basic.as_ref().map(|(user, _)| (user, "<redacted>")),
            )
            .field("bearer", &self.bearer.as_ref().map(|_| "<redacted>"))
            .field("credentials_in_url", &self.credentials_in_url)
            .finish()
    }
}

impl PushConfig {
    /// `url` with credentials from the environment.
    ///
    /// # Errors
    ///
    /// [`PushError::Url`] when `url` is not an http(s) URL.
    pub fn from_env(url: &str) -> Result<Self, PushError> {
        Self::new(url, &|name| std::env::var(name).ok())
    }

    /// `url` with credentials from `env` (a function, for tests).
    ///
    /// # Errors
    ///
    /// [`PushError::Url`] when `url` is not an http(s) URL.
    pub fn new(url: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<Self, PushError> {
        let bad = |reason: &str| PushError::Url {
            url: echo(&redact_userinfo(url)).into_owned(),
            reason: reason.to_owned(),
        };
        let mut parsed = reqwest::Url::parse(url).map_err(|e| bad(&e.to_string()))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(bad("only http and https are supported"));
        }
        let credentials_in_url = !parsed.username().is_empty() || parsed.password().is_some();
        let from_url = credentials_in_url.then(|| {
            (
                percent_decoded(parsed.username()),
                percent_decoded(parsed.password().unwrap_or_default()),
            )
        });
        // Credentials live in the fields above only; the URL kept is safe to print.
        let _ = parsed.set_username("");
        let _ = parsed.set_password(None);
        let var = |name: &str| env(name).filter(|v| !v.is_empty());
        let basic = var("FIREDRILL_PUSHGATEWAY_USER")
            .map(|u| (u, var("FIREDRILL_PUSHGATEWAY_PASSWORD").unwrap_or_default()));
        let bearer = var("FIREDRILL_PUSHGATEWAY_TOKEN");
        let basic = match (basic, &bearer) {
            (Some(basic), _) => Some(basic),
            (None, Some(_)) => None,
            (None, None) => from_url,
        };
        Ok(Self {
            url: parsed.as_str().trim_end_matches('/').to_owned(),
            basic,
            bearer,
            credentials_in_url,
        })
    }

    /// `text` (an answer from the Pushgateway, or a proxy in front of it) with every credential
    /// this config holds, `Authorization`-like header values, bearer and basic tokens and URL
    /// userinfo hidden, on one line, cut short: safe to print in a warning.
    #[must_use]
    pub fn scrub(&self, text: &str) -> String {
        let basic = self.basic.as_ref().map(|(u, p)| (u.as_str(), p.as_str()));
        let secrets = credential_forms(basic, self.bearer.as_deref());
        scrub(text, &secrets, BODY_LIMIT)
    }
}

fn percent_decoded(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'%')
            .then(|| bytes.get(i + 1..i + 3))
            .flatten()
            .and_then(|hex| std::str::from_utf8(hex).ok())
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match escaped {
            Some(b) => {
                out.push(b);
                i += 3;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A push that did not land.
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    /// `--pushgateway` is not a URL.
    #[error(
        "--pushgateway \"{url}\" is not a Pushgateway URL: {reason} (hint: write it like http://pushgateway:9091; credentials go in FIREDRILL_PUSHGATEWAY_USER/_PASSWORD or FIREDRILL_PUSHGATEWAY_TOKEN)"
    )]
    Url {
        /// The URL given, its userinfo hidden.
        url: String,
        /// Why.
        reason: String,
    },
    /// No answer.
    #[error(
        "cannot reach the Pushgateway at {url}: {reason} (hint: check --pushgateway and that it is up)"
    )]
    Unreachable {
        /// Where, without credentials.
        url: String,
        /// Why, without credentials.
        reason: String,
    },
    /// It answered with an error.
    #[error(
        "the Pushgateway at {url} refused the push of drill \"{drill}\": HTTP {status}: {body} (hint: check the credentials in FIREDRILL_PUSHGATEWAY_USER/_PASSWORD or FIREDRILL_PUSHGATEWAY_TOKEN, and that the URL is the Pushgateway's)"
    )]
    Refused {
        /// Where, without credentials.
        url: String,
        /// Which drill.
        drill: String,
        /// Status code.
        status: u16,
        /// Its answer, scrubbed of credentials and cut short.
        body: String,
    },
}

/// Pushes drills' series.
#[derive(Clone, Debug)]
pub struct Pusher {
    config: PushConfig,
    client: reqwest::Client,
}

impl Pusher {
    /// A pusher.
    ///
    /// # Errors
    ///
    /// When the HTTP client cannot be built.
    pub fn new(config: PushConfig) -> Result<Self, reqwest::Error> {
        Ok(Self {
            config,
            client: reqwest::Client::builder()
                .no_proxy()
                .timeout(Duration::from_secs(10))
                .build()?,
        })
    }

    /// Pushes every series of `drill` on `platform`, replacing the group.
    ///
    /// # Errors
    ///
    /// [`PushError`]; the caller decides whether it fails the run.
    pub async fn push(
        &self,
        metrics: &Metrics,
        drill: &str,
        platform: &str,
    ) -> Result<(), PushError> {
        let families: Vec<_> = metrics
            .families()
            .into_iter()
            .filter_map(|mut family| {
                let kept: Vec<_> = family
                    .take_metric()
                    .into_iter()
                    .filter(|m| {
                        m.get_label()
                            .iter()
                            .any(|l| l.name() == "drill" && l.value() == drill)
                    })
                    .collect();
                if kept.is_empty() {
                    return None;
                }
                family.set_metric(kept);
                Some(family)
            })
            .map(|mut family| {
                // The grouping key carries drill and platform; the Pushgateway refuses series
                // whose labels repeat it with other values, so drop them from each series.
                for m in family.mut_metric() {
                    let labels: Vec<_> = m
                        .take_label()
                        .into_iter()
                        .filter(|l| l.name() != "drill" && l.name() != "platform")
                        .collect();
                    m.set_label(labels);
                }
                family
            })
            .collect();
        let url = format!(
            "{}/metrics/job/firedrill/drill@base64/{}/platform@base64/{}",
            self.config.url,
            b64(drill),
            b64(platform)
        );
        let mut request = self
            .client
            .put(&url)
            .header("content-type", "text/plain; version=0.0.4")
            .body(encode(&families));
        if let Some((user, password)) = &self.config.basic {
            request = request.basic_auth(user, Some(password));
        } else if let Some(token) = &self.config.bearer {
            request = request.bearer_auth(token);
        }
        let answer = request.send().await.map_err(|e| PushError::Unreachable {
            url: self.config.url.clone(),
            reason: if e.is_connect() {
                "connection refused".to_owned()
            } else if e.is_timeout() {
                "timed out".to_owned()
            } else {
                "request failed".to_owned()
            },
        })?;
        let status = answer.status();
        if status.is_success() {
            return Ok(());
        }
        let body = answer.text().await.unwrap_or_default();
        Err(PushError::Refused {
            url: self.config.url.clone(),
            drill: echo(drill).into_owned(),
            status: status.as_u16(),
            body: self.config.scrub(&body),
        })
    }
}

/// URL-safe base64 without padding, as the Pushgateway accepts for `label@base64` values.
fn b64(value: &str) -> String {
    if value.is_empty() {
        // An empty value must be a single `=` in the base64 form.
        return "=".to_owned();
    }
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(value)
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    const PASSWORD: &str = "hunter2-pw";
    const TOKEN: &str = "s3cret-token";

    fn b64_standard(value: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(value)
    }

    fn no_env(_: &str) -> Option<String> {
        None
    }

    /// A Pushgateway stand-in that refuses every push with 401, its body the request's headers
    /// (as a misconfigured proxy in front of a Pushgateway does), then `tail`; it records the
    /// Authorization header it got.
    async fn echoing_gateway(tail: String) -> (String, Arc<Mutex<Vec<String>>>) {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let recorder = Arc::clone(&seen);
        let app = axum::Router::new().fallback(move |headers: axum::http::HeaderMap| {
            let recorder = Arc::clone(&recorder);
            let tail = tail.clone();
            async move {
                let mut body = String::from("unauthorized; you sent:\n");
                for (name, value) in &headers {
                    let value = value.to_str().unwrap_or_default();
                    if name == "authorization" {
                        recorder.lock().expect("lock").push(value.to_owned());
                    }
                    body.push_str(&format!("{name}: {value}\n"));
                }
                body.push_str(&tail);
                (axum::http::StatusCode::UNAUTHORIZED, body)
            }
        });
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        (format!("127.0.0.1:{}", addr.port()), seen)
    }

    async fn refused(config: PushConfig) -> String {
        let metrics = Metrics::new("p").expect("metrics");
        let pusher = Pusher::new(config).expect("pusher");
        let error = pusher.push(&metrics, "d", "p").await.expect_err("refused");
        assert!(
            matches!(error, PushError::Refused { status: 401, .. }),
            "{error}"
        );
        error.to_string()
    }

    #[tokio::test]
    async fn credentials_in_the_url_are_used_for_basic_auth_and_never_printed() {
        let (addr, seen) = echoing_gateway(format!(
            "also seen at http://drill-bot:{PASSWORD}@{{host}}/"
        ))
        .await;
        let config = PushConfig::new(&format!("http://drill-bot:{PASSWORD}@{addr}/"), &no_env)
            .expect("config");
        assert!(config.credentials_in_url);
        assert_eq!(config.url, format!("http://{addr}"));
        assert!(!format!("{config:?}").contains(PASSWORD), "{config:?}");
        let text = refused(config).await;
        let basic = b64_standard(&format!("drill-bot:{PASSWORD}"));
        assert_eq!(
            seen.lock().expect("lock").as_slice(),
            [format!("Basic {basic}")]
        );
        assert!(!text.contains(PASSWORD), "{text}");
        assert!(!text.contains(&basic), "{text}");
        assert!(text.contains("authorization: <redacted>"), "{text}");
        assert!(text.contains("HTTP 401: unauthorized; you sent:"), "{text}");
    }

    #[tokio::test]
    async fn a_bearer_token_echoed_back_is_scrubbed_and_the_body_capped() {
        let (addr, seen) = echoing_gateway(format!(
            "{{\"token\": \"{TOKEN}\"}} Bearer {TOKEN} {}",
            "padding ".repeat(5_000)
        ))
        .await;
        let env = |name: &str| (name == "FIREDRILL_PUSHGATEWAY_TOKEN").then(|| TOKEN.to_owned());
        let config = PushConfig::new(&format!("http://{addr}"), &env).expect("config");
        let text = refused(config).await;
        assert_eq!(
            seen.lock().expect("lock").as_slice(),
            [format!("Bearer {TOKEN}")]
        );
        assert!(!text.contains(TOKEN), "{text}");
        assert!(text.len() < 1_000, "{} characters: {text}", text.len());
        assert!(text.contains("more characters)"), "{text}");
    }

    #[test]
    fn the_environment_wins_over_the_url_and_a_bad_url_is_not_echoed_with_its_password() {
        let env = |name: &str| match name {
            "FIREDRILL_PUSHGATEWAY_USER" => Some("env-user".to_owned()),
            "FIREDRILL_PUSHGATEWAY_PASSWORD" => Some("env-pw".to_owned()),
            _ => None,
        };
        let config =
            PushConfig::new(&format!("https://u:{PASSWORD}@pg:9091"), &env).expect("config");
        assert_eq!(config.basic, Some(("env-user".into(), "env-pw".into())));
        assert_eq!(config.url, "https://pg:9091");

        let error = PushConfig::new(&format!("pushgateway://u:{PASSWORD}@pg"), &no_env)
            .expect_err("not http");
        assert!(!error.to_string().contains(PASSWORD), "{error}");
        assert!(error.to_string().contains("only http and https"), "{error}");
        let error =
            PushConfig::new(&format!("http://u:{PASSWORD}@[::1"), &no_env).expect_err("not a URL");
        assert!(!error.to_string().contains(PASSWORD), "{error}");
    }

    #[tokio::test]
    async fn an_unreachable_gateway_is_named_without_its_credentials() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        drop(listener);
        let config = PushConfig::new(
            &format!("http://drill-bot:{PASSWORD}@127.0.0.1:{port}"),
            &no_env,
        )
        .expect("config");
        let metrics = Metrics::new("p").expect("metrics");
        let error = Pusher::new(config)
            .expect("pusher")
            .push(&metrics, "d", "p")
            .await
            .expect_err("unreachable");
        let text = error.to_string();
        assert!(text.contains(&format!("http://127.0.0.1:{port}")), "{text}");
        assert!(
            !text.contains(PASSWORD) && !text.contains("drill-bot"),
            "{text}"
        );
    }
}
