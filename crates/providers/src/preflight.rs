//! Preflight: every provider the selected scenarios need is reachable and allowed, before
//! anything is injected (safety rule 1). What each [`Need`] asks is the provider's own
//! `preflight.rs`; this module only dispatches and gathers the problems.

use std::collections::BTreeSet;

use crate::{command, http, kube, mongo, toxiproxy};
use firedrill_core::clock::Clock;
use firedrill_core::diagnostic::Problems;
use firedrill_platform::Platform;

/// What a provider (or the platform file) must offer for a step to run; checked at preflight.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Need {
    /// The platform file names a region with this role. Static: validation refuses the drill
    /// before preflight when it does not ([`Platform::unmet`]), so preflight has nothing to ask.
    Region(firedrill_platform::Role),
    /// The probe answers HTTP at all.
    Probe(String),
    /// The program can be found.
    Program(String),
    /// Every member of the database's replica set answers and is in the right set.
    Mongo(String),
    /// Every member of the database's replica set can be killed *and brought back*
    /// (`databases.<db>.kill`, or the embedded platform in this process).
    MongoKill(String),
    /// The platform's Toxiproxy answers `GET /version`.
    Toxiproxy,
    /// The proxy of this link (a key of `toxiproxy.links`) exists, or can be created at setup.
    ToxiproxyLink(String),
    /// The kube context answers, allows the verbs, and has the namespaces and zones.
    Kube(String, crate::kube::Requirement),
    /// The platform's Prometheus answers `/-/ready` and a test query (sorted before the
    /// queries, which are only asked once it does).
    Prometheus,
    /// Prometheus accepts this query (an SLO step's).
    PrometheusQuery(String),
    /// The query of this guard (a key of `guards`) is accepted, when it has one.
    Guard(String),
    /// The database's Atlas cluster answers, the credentials carry the role, and the cluster
    /// has the regions and is IDLE.
    Atlas(String, crate::atlas::Requirement),
}

/// Checks every need; all problems at once.
///
/// # Errors
///
/// Every unreachable or missing provider, located in the platform file.
pub async fn check(
    needs: &BTreeSet<Need>,
    platform: &Platform,
    http: &reqwest::Client,
    clock: &Clock,
) -> Result<(), Problems> {
    let mut problems = Problems::default();
    // The links are only asked about once the server answers (one problem, not one per link).
    let mut toxiproxy_ok = false;
    let mut prometheus_ok = false;
    for need in needs {
        match need {
            Need::Program(program) => command::preflight(program, platform, &mut problems),
            Need::Mongo(database) => mongo::preflight(database, platform, &mut problems).await,
            Need::Atlas(database, requirement) => {
                crate::atlas::preflight::preflight(
                    database,
                    requirement,
                    platform,
                    clock,
                    &mut problems,
                )
                .await;
            }
            Need::MongoKill(database) => {
                mongo::preflight_kill(database, platform, &mut problems).await;
            }
            Need::Kube(context, requirement) => {
                kube::preflight_into(platform, context, requirement, &mut problems).await;
            }
            Need::Probe(name) => {
                http::preflight(name, platform, http, clock, &mut problems).await;
            }
            Need::Prometheus => {
                prometheus_ok = crate::prometheus::preflight(platform, &mut problems).await;
            }
            Need::PrometheusQuery(query) if prometheus_ok => {
                crate::prometheus::preflight_query(platform, query, "prometheus", &mut problems)
                    .await;
            }
            Need::Guard(name) if prometheus_ok => {
                if let Some(query) = platform.guards.get(name).and_then(|g| g.query.as_deref()) {
                    let at = format!("guards.{name}.query");
                    crate::prometheus::preflight_query(platform, query, &at, &mut problems).await;
                }
            }
            Need::PrometheusQuery(_) | Need::Guard(_) => {}
            Need::Toxiproxy => {
                toxiproxy_ok = toxiproxy::preflight_server(platform, &mut problems).await;
            }
            Need::ToxiproxyLink(name) if toxiproxy_ok => {
                toxiproxy::preflight_link(name, platform, &mut problems).await;
            }
            Need::ToxiproxyLink(_) | Need::Region(_) => {}
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    }
}

/// Setup before the first scenario, after preflight passed: creates the proxy of every needed
/// link with `create: true` that is missing. Created proxies stay (they are the estate's
/// plumbing, not a fault); returns their names.
///
/// # Errors
///
/// Every link whose proxy could not be created, located in the platform file.
pub async fn setup(needs: &BTreeSet<Need>, platform: &Platform) -> Result<Vec<String>, Problems> {
    let mut problems = Problems::default();
    let mut created = Vec::new();
    for need in needs {
        if let Need::ToxiproxyLink(name) = need {
            created.extend(toxiproxy::setup_link(name, platform, &mut problems).await);
        }
    }
    if problems.is_empty() {
        Ok(created)
    } else {
        Err(problems)
    }
}

/// A provider message and its trailing `(hint: …)`, apart, so a problem shows one hint.
pub(crate) fn split_hint(text: &str) -> (&str, Option<&str>) {
    match text.rsplit_once(" (hint: ") {
        Some((message, hint)) => (message, Some(hint.strip_suffix(')').unwrap_or(hint))),
        None => (text, None),
    }
}

#[cfg(test)]
mod tests {
    use super::split_hint;

    #[test]
    fn a_message_and_its_last_hint_come_apart() {
        assert_eq!(
            split_hint("proxy \"p\" is gone (hint: create it (or not))"),
            ("proxy \"p\" is gone", Some("create it (or not)"))
        );
        assert_eq!(split_hint("no hint here"), ("no hint here", None));
    }
}
