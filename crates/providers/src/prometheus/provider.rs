//! Asking Prometheus: `/-/ready`, instant queries and range queries.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use serde::Deserialize;

use super::Error;
use super::config::{Auth, Config};
use firedrill_core::diagnostic::echo;
use firedrill_core::redact::scrub;

/// The most characters of an answer an error quotes.
const BODY_LIMIT: usize = 300;

/// Prometheus refuses a range query of more points than this per series.
const MAX_POINTS: f64 = 11_000.0;

/// One series' value at one instant.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    /// Its labels.
    pub labels: BTreeMap<String, String>,
    /// The instant, Unix seconds.
    pub at: f64,
    /// The value (NaN and infinities as Prometheus gives them).
    pub value: f64,
}

/// One series over a range.
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    /// Its labels.
    pub labels: BTreeMap<String, String>,
    /// `(Unix seconds, value)`, oldest first.
    pub points: Vec<(f64, f64)>,
}

/// A series' labels as PromQL writes a selector: `name{a="b"}`, `{}` for none.
#[must_use]
pub fn selector(labels: &BTreeMap<String, String>) -> String {
    let name = labels.get("__name__").cloned().unwrap_or_default();
    let rest: Vec<String> = labels
        .iter()
        .filter(|(k, _)| k.as_str() != "__name__")
        .map(|(k, v)| format!("{k}=\"{v}\""))
        .collect();
    if rest.is_empty() && !name.is_empty() {
        name
    } else {
        format!("{name}{{{}}}", rest.join(","))
    }
}

impl Sample {
    /// Its labels as a selector.
    #[must_use]
    pub fn selector(&self) -> String {
        selector(&self.labels)
    }
}

impl Series {
    /// Its labels as a selector.
    #[must_use]
    pub fn selector(&self) -> String {
        selector(&self.labels)
    }
}

/// A client of one Prometheus.
#[derive(Clone, Debug)]
pub struct Client {
    config: Config,
    http: reqwest::Client,
}

#[derive(Deserialize)]
struct Answer {
    status: String,
    #[serde(default)]
    data: Option<Data>,
    #[serde(default, rename = "errorType")]
    error_type: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

#[derive(Deserialize)]
#[serde(tag = "resultType", content = "result", rename_all = "lowercase")]
enum Data {
    Vector(Vec<VectorItem>),
    Matrix(Vec<MatrixItem>),
    Scalar((f64, String)),
    String(serde::de::IgnoredAny),
}

#[derive(Deserialize)]
struct VectorItem {
    #[serde(default)]
    metric: BTreeMap<String, String>,
    value: (f64, String),
}

#[derive(Deserialize)]
struct MatrixItem {
    #[serde(default)]
    metric: BTreeMap<String, String>,
    values: Vec<(f64, String)>,
}

fn number(text: &str) -> f64 {
    text.parse().unwrap_or(f64::NAN)
}

fn unix(at: SystemTime) -> f64 {
    at.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or_default()
}

impl Client {
    /// A client for `config`.
    ///
    /// # Errors
    ///
    /// [`Error::Client`] when the TLS backend cannot initialise.
    pub fn new(config: Config) -> Result<Self, Error> {
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(config.timeout)
            .build()
            .map_err(|e| Error::Client(e.to_string()))?;
        Ok(Self { config, http })
    }

    /// The platform's Prometheus.
    ///
    /// # Errors
    ///
    /// [`Error::NotConfigured`], [`Error::Secret`] or [`Error::Client`].
    pub fn from_platform(platform: &firedrill_platform::Platform) -> Result<Self, Error> {
        Self::new(Config::from_platform(platform)?)
    }

    /// Its base URL (safe to print).
    #[must_use]
    pub fn url(&self) -> &str {
        &self.config.url
    }

    fn get(&self, path: &str) -> reqwest::RequestBuilder {
        let request = self.http.get(format!("{}{path}", self.config.url));
        match &self.config.auth {
            Auth::None => request,
            Auth::Bearer(token) => request.bearer_auth(token.expose()),
            Auth::Basic { user, password } => request.basic_auth(user, Some(password.expose())),
        }
    }

    fn scrub(&self, text: &str) -> String {
        scrub(text, &self.config.secrets(), BODY_LIMIT)
    }

    fn unreachable(&self, e: &reqwest::Error) -> Error {
        // reqwest's own text can carry the URL; the URL carries no credentials, but say it
        // plainly anyway.
        let reason = if e.is_connect() {
            "connection refused or unreachable".to_owned()
        } else if e.is_timeout() {
            format!(
                "no answer within {}",
                firedrill_core::clock::format_duration(self.config.timeout)
            )
        } else {
            self.scrub(&e.to_string())
        };
        Error::Unreachable {
            url: self.config.url.clone(),
            reason,
        }
    }

    /// `GET /-/ready`: Prometheus is up and serving queries.
    ///
    /// # Errors
    ///
    /// [`Error::Unreachable`], [`Error::Refused`] or [`Error::NotReady`].
    pub async fn ready(&self) -> Result<(), Error> {
        let answer = self
            .get("/-/ready")
            .send()
            .await
            .map_err(|e| self.unreachable(&e))?;
        let status = answer.status().as_u16();
        if answer.status().is_success() {
            return Ok(());
        }
        let body = self.scrub(&answer.text().await.unwrap_or_default());
        let url = self.config.url.clone();
        Err(if matches!(status, 401 | 403) {
            Error::Refused { url, status, body }
        } else {
            Error::NotReady { url, status, body }
        })
    }

    /// An instant query at `at` (now when `None`): one sample per series; a scalar is one
    /// sample without labels.
    ///
    /// # Errors
    ///
    /// [`Error`] naming the query; never the credentials.
    pub async fn query(&self, query: &str, at: Option<SystemTime>) -> Result<Vec<Sample>, Error> {
        let mut params = vec![("query", query.to_owned())];
        if let Some(at) = at {
            params.push(("time", format!("{:.3}", unix(at))));
        }
        match self.ask("/api/v1/query", query, &params).await? {
            Data::Vector(items) => Ok(items
                .into_iter()
                .map(|i| Sample {
                    labels: i.metric,
                    at: i.value.0,
                    value: number(&i.value.1),
                })
                .collect()),
            Data::Scalar((at, value)) => Ok(vec![Sample {
                labels: BTreeMap::new(),
                at,
                value: number(&value),
            }]),
            Data::Matrix(_) => Err(self.shape(
                query,
                "a range vector: an instant query's value must be a number per series (hint: wrap it in rate(), avg_over_time() or max_over_time())",
            )),
            Data::String(_) => Err(self.shape(query, "a string, not a number")),
        }
    }

    /// A range query from `start` to `end` every `step` (raised so Prometheus's limit of
    /// 11,000 points per series holds).
    ///
    /// # Errors
    ///
    /// [`Error`] naming the query; never the credentials.
    pub async fn query_range(
        &self,
        query: &str,
        start: SystemTime,
        end: SystemTime,
        step: Duration,
    ) -> Result<Vec<Series>, Error> {
        let (start, end) = (unix(start), unix(end).max(unix(start)));
        let step = step
            .as_secs_f64()
            .max((end - start) / MAX_POINTS)
            .max(0.001);
        let params = [
            ("query", query.to_owned()),
            ("start", format!("{start:.3}")),
            ("end", format!("{end:.3}")),
            ("step", format!("{step:.3}")),
        ];
        match self.ask("/api/v1/query_range", query, &params).await? {
            Data::Matrix(items) => Ok(items
                .into_iter()
                .map(|i| Series {
                    labels: i.metric,
                    points: i.values.iter().map(|(t, v)| (*t, number(v))).collect(),
                })
                .collect()),
            _ => Err(self.shape(query, "a range query answered something but a matrix")),
        }
    }

    fn shape(&self, query: &str, reason: &str) -> Error {
        Error::Answer {
            url: self.config.url.clone(),
            query: echo(query).into_owned(),
            reason: reason.to_owned(),
        }
    }

    async fn ask(&self, path: &str, query: &str, params: &[(&str, String)]) -> Result<Data, Error> {
        let answer = self
            .get(path)
            .query(params)
            .send()
            .await
            .map_err(|e| self.unreachable(&e))?;
        let status = answer.status().as_u16();
        let text = answer.text().await.map_err(|e| self.unreachable(&e))?;
        if matches!(status, 401 | 403) {
            return Err(Error::Refused {
                url: self.config.url.clone(),
                status,
                body: self.scrub(&text),
            });
        }
        let parsed: Answer = serde_json::from_str(&text)
            .map_err(|_| self.shape(query, &format!("HTTP {status}: {}", self.scrub(&text))))?;
        match (parsed.status.as_str(), parsed.data) {
            ("success", Some(data)) => Ok(data),
            _ => Err(Error::Query {
                url: self.config.url.clone(),
                query: echo(query).into_owned(),
                error_type: parsed
                    .error_type
                    .unwrap_or_else(|| format!("HTTP {status}")),
                error: self.scrub(&parsed.error.unwrap_or_default()),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_selector_reads_as_promql_writes_it() {
        let labels = |pairs: &[(&str, &str)]| {
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect::<BTreeMap<_, _>>()
        };
        assert_eq!(selector(&labels(&[])), "{}");
        assert_eq!(selector(&labels(&[("__name__", "up")])), "up");
        assert_eq!(
            selector(&labels(&[
                ("__name__", "up"),
                ("job", "a"),
                ("code", "500")
            ])),
            "up{code=\"500\",job=\"a\"}"
        );
        assert_eq!(
            selector(&labels(&[("namespace", "prod-2")])),
            "{namespace=\"prod-2\"}"
        );
    }

    #[test]
    fn every_result_type_of_the_api_is_read() {
        let vector: Answer = serde_json::from_str(
            r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{"a":"b"},"value":[1.5,"NaN"]}]}}"#,
        )
        .expect("vector");
        assert!(
            matches!(vector.data, Some(Data::Vector(ref v)) if v.len() == 1 && number(&v[0].value.1).is_nan())
        );
        let scalar: Answer = serde_json::from_str(
            r#"{"status":"success","data":{"resultType":"scalar","result":[1.5,"+Inf"]}}"#,
        )
        .expect("scalar");
        assert!(matches!(scalar.data, Some(Data::Scalar((_, ref v))) if number(v).is_infinite()));
        let matrix: Answer = serde_json::from_str(
            r#"{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},"values":[[1,"1"],[2,"2"]]}]}}"#,
        )
        .expect("matrix");
        assert!(matches!(matrix.data, Some(Data::Matrix(ref m)) if m[0].values.len() == 2));
        let error: Answer = serde_json::from_str(
            r#"{"status":"error","errorType":"bad_data","error":"1:5: parse error"}"#,
        )
        .expect("error");
        assert_eq!(error.error_type.as_deref(), Some("bad_data"));
    }
}
