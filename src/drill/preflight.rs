//! Preflight: every provider the selected scenarios need is reachable and allowed, before
//! anything is injected (safety rule 1).

use std::collections::BTreeSet;
use std::time::Duration;

use crate::diagnostic::{Problem, Problems};
use crate::drill::clock::Clock;
use crate::platform::Platform;
use crate::providers::command::locate_program;
use crate::steps::Need;

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
            Need::Kube(context, requirement) => {
                for e in crate::providers::kube::preflight(platform, context, requirement).await {
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
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    }
}
