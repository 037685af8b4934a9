//! Preflight: every provider the selected scenarios need is reachable and allowed, before
//! anything is injected (safety rule 1).

use std::collections::BTreeSet;
use std::time::Duration;

use crate::command::locate_program;
use crate::toxiproxy::{Error as ToxiproxyError, ToxiproxyClient};
use firedrill_core::clock::Clock;
use firedrill_core::diagnostic::{Problem, Problems};
use firedrill_platform::Link;
use firedrill_platform::Platform;

/// What a provider must offer for a step to run; checked at preflight.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Need {
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
    for need in needs {
        match need {
            Need::Program(program) => {
                if locate_program(program, &platform.base_dir()).is_none() {
                    problems.push(
                        Problem::at(
                            platform.locate("commands"),
                            format!("program `{program}` is not installed or not on PATH"),
                        )
                        .hint("install it, or give its absolute path in the platform file"),
                    );
                }
            }
            Need::Mongo(database) => {
                crate::mongo::preflight(database, platform, &mut problems).await;
            }
            Need::MongoKill(database) => {
                crate::mongo::preflight_kill(database, platform, &mut problems).await;
            }
            Need::Kube(context, requirement) => {
                for e in crate::kube::preflight(platform, context, requirement).await {
                    problems.push(Problem::at(
                        platform.locate("safety.allow.kube-contexts"),
                        e.to_string(),
                    ));
                }
            }
            Need::Probe(name) => {
                let Some(probe) = platform.probes.get(name) else {
                    continue;
                };
                // Any HTTP answer proves the endpoint is reachable; whether it is *healthy* is
                // a step of the drill ("the platform is healthy").
                // Reachability is a wall-clock question: at least 2 s, whatever the time scale.
                let deadline = clock.to_wall(probe.timeout).max(Duration::from_secs(2));
                let attempt = tokio::time::timeout(deadline, http.get(&probe.url).send()).await;
                let error = match attempt {
                    Ok(Ok(_)) => None,
                    Ok(Err(e)) if e.is_connect() => {
                        Some("connection refused or unreachable".to_owned())
                    }
                    Ok(Err(e)) => Some(e.to_string()),
                    Err(_) => Some("no answer before the probe's timeout".to_owned()),
                };
                if let Some(error) = error {
                    problems.push(
                        Problem::at(
                            platform.locate(&format!("probes.{name}.url")),
                            format!("probe \"{name}\" cannot reach {}: {error}", probe.url),
                        )
                        .hint("is the service up and the URL right? Nothing was injected"),
                    );
                }
            }
            Need::Toxiproxy => match toxiproxy_version(platform).await {
                Ok(_) => toxiproxy_ok = true,
                Err(e) => {
                    let text = e.to_string();
                    let (message, hint) = split_hint(&text);
                    problems.push(Problem::at(platform.locate("toxiproxy.url"), message).hint(
                        format!(
                            "{}; nothing was injected",
                            hint.unwrap_or("start Toxiproxy or fix toxiproxy.url")
                        ),
                    ));
                }
            },
            Need::ToxiproxyLink(name) => {
                if !toxiproxy_ok {
                    continue;
                }
                let Some((client, link)) = link(platform, name) else {
                    continue;
                };
                match client.proxy(&link.proxy).await {
                    Ok(_) => {}
                    Err(ToxiproxyError::ProxyNotFound { .. }) if link.create => {}
                    Err(e) => {
                        let text = e.to_string();
                        let (message, _) = split_hint(&text);
                        problems.push(
                            Problem::at(
                                platform.locate(&format!("toxiproxy.links.{name}.proxy")),
                                format!("link \"{name}\": {message}"),
                            )
                            .hint(
                                "create the proxy, or give the link listen, upstream and `create: true`; nothing was injected",
                            ),
                        );
                    }
                }
            }
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    }
}

/// Asks the platform's Toxiproxy for its version: proof it is there and speaks the API.
async fn toxiproxy_version(platform: &Platform) -> Result<String, ToxiproxyError> {
    let toxiproxy = platform
        .toxiproxy
        .as_ref()
        .ok_or_else(|| ToxiproxyError::NotConfigured {
            link: "*".to_owned(),
        })?;
    ToxiproxyClient::new(&toxiproxy.url)?.version().await
}

/// The client and definition of link `name`, when the platform has both.
fn link<'p>(platform: &'p Platform, name: &str) -> Option<(ToxiproxyClient, &'p Link)> {
    let toxiproxy = platform.toxiproxy.as_ref()?;
    let link = toxiproxy.links.get(name)?;
    Some((ToxiproxyClient::new(&toxiproxy.url).ok()?, link))
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
        let Need::ToxiproxyLink(name) = need else {
            continue;
        };
        let Some((client, link)) = link(platform, name) else {
            continue;
        };
        let (true, Some(listen), Some(upstream)) = (link.create, &link.listen, &link.upstream)
        else {
            continue;
        };
        let outcome = match client.proxy(&link.proxy).await {
            Ok(_) => continue,
            Err(ToxiproxyError::ProxyNotFound { .. }) => {
                client.create_proxy(&link.proxy, listen, upstream).await
            }
            Err(e) => Err(e),
        };
        match outcome {
            Ok(_) => created.push(link.proxy.clone()),
            // Someone created it meanwhile: it is there, which is all setup wants.
            Err(ToxiproxyError::ProxyAlreadyExists { .. }) => {}
            Err(e) => problems.push(
                Problem::at(
                    platform.locate(&format!("toxiproxy.links.{name}")),
                    format!("link \"{name}\": cannot create its proxy: {e}"),
                )
                .hint("check listen and upstream; nothing was injected"),
            ),
        }
    }
    if problems.is_empty() {
        Ok(created)
    } else {
        Err(problems)
    }
}

/// A provider message and its trailing `(hint: …)`, apart, so a problem shows one hint.
fn split_hint(text: &str) -> (&str, Option<&str>) {
    match text.rsplit_once(" (hint: ") {
        Some((message, hint)) => (message, Some(hint.strip_suffix(')').unwrap_or(hint))),
        None => (text, None),
    }
}
