//! The platform's stop conditions: the Prometheus guards and SLO assertions query, and the
//! guards that abort a drill (and undo it) when production breaches. Their checks need no I/O.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use super::{Platform, SecretRef};
use firedrill_core::diagnostic::{Problem, Problems, echo, one_of};
use firedrill_core::threshold::Threshold;

/// The Prometheus drills read: guards and SLO assertions query it over its HTTP API.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Prometheus {
    /// Its base URL, e.g. `https://prometheus.example.com` (the API is under `/api/v1`).
    /// Credentials never go here: see `auth`.
    pub url: String,
    /// How firedrill authenticates: a bearer token or basic auth, from the environment or a file.
    #[serde(default)]
    pub auth: Option<PrometheusAuth>,
    /// The step of range queries and the pace of polling assertions (platform time).
    #[serde(default = "default_interval", with = "humantime_serde")]
    pub interval: Duration,
    /// Per-request deadline, in wall-clock time: Prometheus is outside the platform's clock.
    #[serde(default = "default_timeout", with = "humantime_serde")]
    pub timeout: Duration,
    /// Named PromQL queries for the SLO steps (`Then the "{name}" query stayed below …`).
    #[serde(default)]
    pub queries: BTreeMap<String, String>,
}

fn default_interval() -> Duration {
    Duration::from_secs(15)
}

fn default_timeout() -> Duration {
    Duration::from_secs(5)
}

/// Exactly one way to authenticate.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct PrometheusAuth {
    /// `Authorization: Bearer …` with this token.
    #[serde(default)]
    pub bearer: Option<SecretRef>,
    /// Basic auth.
    #[serde(default)]
    pub basic: Option<BasicAuth>,
}

/// Basic auth: a user name (not a secret) and a password (one).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct BasicAuth {
    /// The user name.
    pub user: String,
    /// Where the password comes from.
    pub password: SecretRef,
}

/// A stop condition: evaluated before a scenario's first fault and then every `interval`;
/// `for` consecutive breaches abort the run and undo everything.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Guard {
    /// What it protects, for plans and reports.
    #[serde(default)]
    pub description: Option<String>,
    /// A PromQL query (needs `prometheus`): every series it returns is compared with `abort-if`.
    #[serde(default)]
    pub query: Option<String>,
    /// Probes (keys of `probes`) whose answers' error rate, in percent of the answers within
    /// `window`, is compared with `abort-if`. A guard for estates without Prometheus.
    #[serde(default)]
    pub probes: Vec<String>,
    /// How far back a probe guard looks (platform time).
    #[serde(default, with = "humantime_serde::option")]
    pub window: Option<Duration>,
    /// When the value breaches: `> 14.4`, `>= 5`, `< 0.99`.
    pub abort_if: String,
    /// Consecutive breached evaluations that trip it.
    #[serde(default = "default_for", rename = "for")]
    pub consecutive: u32,
    /// Time between evaluations (platform time).
    #[serde(default = "default_interval", with = "humantime_serde")]
    pub interval: Duration,
    /// What an evaluation without a value counts as (no series, no probe answer in the window,
    /// Prometheus unreachable): `fail` counts as a breach, `ignore` as holding.
    #[serde(default)]
    pub no_data: NoData,
    /// `always`: armed in every scenario run against this platform; `on-request` (default):
    /// armed by the step `Given the guard "{guard}" is armed` or the tag `@guard:{guard}`.
    #[serde(default)]
    pub armed: Armed,
}

fn default_for() -> u32 {
    1
}

/// What an evaluation without a value counts as.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum NoData {
    /// A breach: a guard that cannot see must stop the drill.
    #[default]
    Fail,
    /// Holding.
    Ignore,
}

/// When a guard is armed.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Armed {
    /// By a step or a tag.
    #[default]
    OnRequest,
    /// In every scenario.
    Always,
}

/// What a guard measures.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum GuardSource<'a> {
    /// A PromQL query.
    Query(&'a str),
    /// The error rate of probes' answers within a window.
    Probes {
        /// The probes.
        probes: &'a [String],
        /// The window.
        window: Duration,
    },
}

impl Guard {
    /// `abort-if` parsed (validation refuses a platform where it does not parse).
    #[must_use]
    pub fn threshold(&self) -> Option<Threshold> {
        self.abort_if.parse().ok()
    }

    /// What it measures, when it is well formed (validation refuses it otherwise).
    #[must_use]
    pub fn source(&self) -> Option<GuardSource<'_>> {
        match (&self.query, self.probes.is_empty(), self.window) {
            (Some(query), true, None) => Some(GuardSource::Query(query)),
            (None, false, Some(window)) => Some(GuardSource::Probes {
                probes: &self.probes,
                window,
            }),
            _ => None,
        }
    }
}

/// The tag that arms guard `name` for the scenarios it covers: `@guard:{name}`.
pub const GUARD_TAG_PREFIX: &str = "guard:";

/// Whether `name` can be written in a tag (`@guard:{name}`) and a step.
fn tag_safe(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

impl Platform {
    /// The guards armed in every scenario (`armed: always`), by name.
    pub fn always_armed(&self) -> impl Iterator<Item = &str> {
        self.guards
            .iter()
            .filter(|(_, g)| g.armed == Armed::Always)
            .map(|(name, _)| name.as_str())
    }

    /// Checks of `prometheus` and `guards`.
    pub(crate) fn validate_stop_conditions(&self, problems: &mut Problems) {
        let mut problem = |path: &str, message: String, hint: &str| {
            problems.push(Problem::at(self.locate(path), message).hint(hint));
        };
        if let Some(prometheus) = &self.prometheus {
            match url::Url::parse(&prometheus.url) {
                Err(_) => problem(
                    "prometheus.url",
                    format!(
                        "prometheus url \"{}\" is not a URL",
                        echo(&firedrill_core::diagnostic::redact_userinfo(&prometheus.url))
                    ),
                    "write it like https://prometheus.example.com",
                ),
                Ok(url) if !matches!(url.scheme(), "http" | "https") => problem(
                    "prometheus.url",
                    format!("prometheus url scheme \"{}\" is not http or https", url.scheme()),
                    "write it like https://prometheus.example.com",
                ),
                Ok(url) if !url.username().is_empty() || url.password().is_some() => problem(
                    "prometheus.url",
                    "prometheus url carries credentials, which would be printed wherever the URL is".into(),
                    "remove user:password@ and give them under prometheus.auth.basic, from the environment or a file",
                ),
                Ok(_) => {}
            }
            if let Some(auth) = &prometheus.auth {
                let secrets: Vec<(&str, &SecretRef)> = match (&auth.bearer, &auth.basic) {
                    (Some(token), None) => vec![("prometheus.auth.bearer", token)],
                    (None, Some(basic)) => {
                        vec![("prometheus.auth.basic.password", &basic.password)]
                    }
                    _ => {
                        problem(
                            "prometheus.auth",
                            "prometheus.auth needs exactly one of `bearer:` or `basic:`".into(),
                            "bearer: { env: PROMETHEUS_TOKEN }, or basic: { user: firedrill, password: { file: /run/secrets/prometheus } }",
                        );
                        Vec::new()
                    }
                };
                for (path, secret) in secrets {
                    if secret.env.is_some() == secret.file.is_some() {
                        problem(
                            path,
                            format!("`{path}` needs exactly one of `env:` or `file:`"),
                            "secrets come from the environment or a file, never inline: { env: PROMETHEUS_TOKEN }",
                        );
                    }
                }
            }
            if prometheus.interval.is_zero() {
                problem(
                    "prometheus.interval",
                    "prometheus interval is zero".into(),
                    "use e.g. 15s",
                );
            }
            if prometheus.timeout.is_zero() {
                problem(
                    "prometheus.timeout",
                    "prometheus timeout is zero".into(),
                    "use e.g. 5s",
                );
            }
            for (name, query) in &prometheus.queries {
                if query.trim().is_empty() {
                    problem(
                        &format!("prometheus.queries.{name}"),
                        format!("query \"{name}\" is empty"),
                        "write the PromQL, e.g. sum(rate(http_requests_total{code=~\"5..\"}[5m]))",
                    );
                }
            }
        }

        let probes: Vec<&String> = self.probes.keys().collect();
        for (name, guard) in &self.guards {
            let at = format!("guards.{name}");
            if !tag_safe(name) {
                problem(
                    &at,
                    format!("guard name \"{}\" cannot be written in a tag", echo(name)),
                    "use letters, digits, `-`, `_` and `.` only: it is armed by the tag @guard:<name>",
                );
            }
            if let Err(e) = guard.abort_if.parse::<Threshold>() {
                let (message, hint) = e.parts();
                problem(
                    &format!("{at}.abort-if"),
                    format!("guard \"{name}\": {message}"),
                    hint,
                );
            }
            if guard.consecutive == 0 {
                problem(
                    &format!("{at}.for"),
                    format!("guard \"{name}\": `for` must be at least 1"),
                    "give the consecutive breached evaluations that trip it, e.g. for: 2",
                );
            }
            if guard.interval.is_zero() {
                problem(
                    &format!("{at}.interval"),
                    format!("guard \"{name}\" has a zero interval"),
                    "use e.g. 15s",
                );
            }
            match (&guard.query, guard.probes.is_empty()) {
                (Some(_), false) | (None, true) => problem(
                    &at,
                    format!("guard \"{name}\" needs exactly one of `query:` or `probes:`"),
                    "query: a PromQL expression over the platform's Prometheus; probes: [names] with a window, for an error rate of the platform's own probes",
                ),
                (Some(query), true) => {
                    if query.trim().is_empty() {
                        problem(
                            &format!("{at}.query"),
                            format!("guard \"{name}\": the query is empty"),
                            "write the PromQL whose value is compared with abort-if",
                        );
                    }
                    if self.prometheus.is_none() {
                        problem(
                            &format!("{at}.query"),
                            format!(
                                "guard \"{name}\" queries Prometheus, but the platform has no `prometheus` section"
                            ),
                            "add prometheus: { url: … }, or guard with probes: and a window",
                        );
                    }
                    if guard.window.is_some() {
                        problem(
                            &format!("{at}.window"),
                            format!("guard \"{name}\": `window` is for probe guards"),
                            "a query carries its own range, e.g. rate(…[5m])",
                        );
                    }
                }
                (None, false) => {
                    for (i, probe) in guard.probes.iter().enumerate() {
                        if !self.probes.contains_key(probe) {
                            problem(
                                &format!("{at}.probes.{i}"),
                                format!(
                                    "guard \"{name}\" watches probe \"{}\", which is not defined",
                                    echo(probe)
                                ),
                                &format!("known probes: {}", one_of(&probes)),
                            );
                        }
                    }
                    match guard.window {
                        None => problem(
                            &at,
                            format!("guard \"{name}\" watches probes but has no `window`"),
                            "give how far back the error rate is counted, e.g. window: 2m",
                        ),
                        Some(w) if w.is_zero() => problem(
                            &format!("{at}.window"),
                            format!("guard \"{name}\" has a zero window"),
                            "use e.g. 2m",
                        ),
                        Some(_) => {}
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use firedrill_core::diagnostic::Problems;

    const HEAD: &str = "name: t\nregions:\n  us-west1: { role: primary }\n  us-west2: { role: failover }\nprobes:\n  prod-2: { url: http://127.0.0.1:9/prod-2 }\n";

    fn load(yaml: &str) -> Result<super::Platform, Problems> {
        crate::load_str(Path::new("p.yaml"), yaml, &|_| None)
    }

    fn messages(yaml: &str) -> Vec<(usize, String)> {
        let problems = load(yaml).expect_err("invalid").0;
        problems
            .iter()
            .map(|p| (p.location.as_ref().map_or(0, |l| l.line), p.message.clone()))
            .collect()
    }

    #[test]
    fn a_prometheus_with_auth_and_guards_of_both_kinds_loads() {
        let yaml = format!(
            "{HEAD}prometheus:\n  url: https://prom.example.com\n  auth:\n    basic: {{ user: bot, password: {{ env: PROM_PW }} }}\n  queries:\n    errors: sum(rate(x[5m]))\nguards:\n  burn:\n    query: sum(rate(x[5m]))\n    abort-if: \"> 14.4\"\n    for: 2\n    interval: 30s\n    armed: always\n  bystanders:\n    probes: [prod-2]\n    window: 2m\n    abort-if: \">= 5\"\n    no-data: ignore\n"
        );
        let platform = load(&yaml).unwrap_or_else(|p| panic!("{p}"));
        let prometheus = platform.prometheus.as_ref().expect("prometheus");
        assert_eq!(prometheus.interval.as_secs(), 15);
        assert_eq!(
            prometheus
                .auth
                .as_ref()
                .and_then(|a| a.basic.as_ref())
                .map(|b| b.user.as_str()),
            Some("bot")
        );
        let burn = &platform.guards["burn"];
        assert_eq!(burn.consecutive, 2);
        assert_eq!(
            burn.source(),
            Some(super::GuardSource::Query("sum(rate(x[5m]))"))
        );
        assert_eq!(
            burn.threshold().map(|t| t.to_string()).as_deref(),
            Some("> 14.4")
        );
        let bystanders = &platform.guards["bystanders"];
        assert_eq!(bystanders.no_data, super::NoData::Ignore);
        assert_eq!(bystanders.consecutive, 1);
        assert!(matches!(
            bystanders.source(),
            Some(super::GuardSource::Probes { .. })
        ));
        assert_eq!(platform.always_armed().collect::<Vec<_>>(), ["burn"]);
    }

    #[test]
    fn a_malformed_guard_is_located_and_explained() {
        let yaml = format!(
            "{HEAD}guards:\n  burn:\n    query: up\n    abort-if: \"14.4\"\n    for: 0\n  probe-less:\n    probes: [nowhere]\n    abort-if: \"> 1\"\n  both:\n    query: up\n    probes: [prod-2]\n    abort-if: \"> 1\"\n  \"bad name\":\n    probes: [prod-2]\n    window: 1m\n    abort-if: \"> 1\"\n"
        );
        let found = messages(&yaml);
        let expect = [
            (
                9,
                "guard \"burn\" queries Prometheus, but the platform has no `prometheus` section",
            ),
            (
                10,
                "guard \"burn\": \"14.4\" is not a comparison with a number",
            ),
            (11, "guard \"burn\": `for` must be at least 1"),
            (
                12,
                "guard \"probe-less\" watches probes but has no `window`",
            ),
            (
                13,
                "guard \"probe-less\" watches probe \"nowhere\", which is not defined",
            ),
            (
                15,
                "guard \"both\" needs exactly one of `query:` or `probes:`",
            ),
            (19, "guard name \"bad name\" cannot be written in a tag"),
        ];
        for (line, message) in expect {
            assert!(
                found.iter().any(|(l, m)| *l == line && m == message),
                "missing {line}: {message} in {found:#?}"
            );
        }
        assert_eq!(found.len(), expect.len(), "{found:#?}");
    }

    #[test]
    fn credentials_in_the_url_or_inline_secrets_are_refused() {
        let found = messages(&format!(
            "{HEAD}prometheus:\n  url: https://bot:hunter2@prom.example.com\n  auth:\n    bearer: {{ env: A, file: b }}\n"
        ));
        let text = format!("{found:?}");
        assert!(
            text.contains("prometheus url carries credentials"),
            "{text}"
        );
        assert!(
            text.contains("`prometheus.auth.bearer` needs exactly one of"),
            "{text}"
        );
        assert!(!text.contains("hunter2"), "{text}");
        let found = messages(&format!(
            "{HEAD}prometheus:\n  url: https://prom.example.com\n  auth: {{}}\n"
        ));
        assert!(format!("{found:?}").contains("needs exactly one of `bearer:` or `basic:`"));
        let problems = load(&format!(
            "{HEAD}prometheus:\n  url: https://prom.example.com\n  auth:\n    bearer: s3cret\n"
        ))
        .expect_err("an inline token is refused");
        assert!(!problems.to_string().contains("s3cret"), "{problems}");
    }
}
