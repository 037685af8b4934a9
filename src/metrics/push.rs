//! Pushing a drill's series to a Prometheus Pushgateway after it ends.
//!
//! Grouping key: job `firedrill`, `drill` (the feature), `platform`. A `PUT` replaces the
//! group, so the Pushgateway always holds the latest run of each drill.

use std::time::Duration;

use base64::Engine as _;

use super::{Metrics, encode};

/// Where and how to push.
#[derive(Clone, Debug)]
pub struct PushConfig {
    /// The Pushgateway's base URL.
    pub url: String,
    /// `user:password` for basic auth (from FIREDRILL_PUSHGATEWAY_USER / _PASSWORD).
    pub basic: Option<(String, String)>,
    /// A bearer token (from FIREDRILL_PUSHGATEWAY_TOKEN).
    pub bearer: Option<String>,
}

impl PushConfig {
    /// `url` with credentials from the environment.
    #[must_use]
    pub fn from_env(url: &str) -> Self {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        Self {
            url: url.trim_end_matches('/').to_owned(),
            basic: var("FIREDRILL_PUSHGATEWAY_USER")
                .map(|u| (u, var("FIREDRILL_PUSHGATEWAY_PASSWORD").unwrap_or_default())),
            bearer: var("FIREDRILL_PUSHGATEWAY_TOKEN"),
        }
    }
}

/// A push that did not land.
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    /// No answer.
    #[error(
        "cannot reach the Pushgateway at {url}: {reason} (hint: check --pushgateway and that it is up)"
    )]
    Unreachable {
        /// Where.
        url: String,
        /// Why, without credentials.
        reason: String,
    },
    /// It answered with an error.
    #[error(
        "the Pushgateway at {url} refused the push of drill \"{drill}\": HTTP {status}: {body}"
    )]
    Refused {
        /// Where.
        url: String,
        /// Which drill.
        drill: String,
        /// Status code.
        status: u16,
        /// Its message.
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
        Err(PushError::Refused {
            url: self.config.url.clone(),
            drill: drill.to_owned(),
            status: status.as_u16(),
            body: answer
                .text()
                .await
                .unwrap_or_default()
                .chars()
                .take(300)
                .collect(),
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
