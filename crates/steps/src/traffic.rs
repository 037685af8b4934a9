//! Traffic: which region serves, and switching it.

use cucumber::{given, then, when};

use super::{Analysis, Args, Effect, Failure, Need, ResultExt, StepDoc, StepError, param};
use crate::world::Drill;
use firedrill_core::names::MilestoneName;
use firedrill_engine::scenario::Change;
use firedrill_platform::Platform;
use firedrill_providers::Undo;
use firedrill_providers::command::{self, CommandRef, CommandUndo, Settle};
use firedrill_providers::{http, poll};
use std::time::Duration;

/// The traffic steps.
pub const DOCS: &[StepDoc] = &[
    StepDoc {
        keyword: "Given",
        pattern: "the platform is healthy",
        example: "the platform is healthy",
        doc: "Every probe of the platform gives a good answer, retrying at its interval for up to 2m (a platform may still be settling from the previous drill). Fails the scenario before any fault otherwise.",
        domain: "traffic",
        analyze: analyze_healthy,
    },
    StepDoc {
        keyword: "Then",
        pattern: "the platform is healthy",
        example: "the platform is healthy",
        doc: "The steady-state check after an action: every probe of the platform gives a good answer now (one request each, no retry). After an undo or a restore the platform usually needs a moment; say how long it may take with the `within` form.",
        domain: "traffic",
        analyze: analyze_healthy,
    },
    StepDoc {
        keyword: "Then",
        pattern: "the platform is healthy within {duration}",
        example: "the platform is healthy within 2m",
        doc: "Waits, asking every probe at its interval, until each has given a good answer, at most {duration} after the end of the step before it; fails naming each probe still bad and its last error.",
        domain: "traffic",
        analyze: analyze_healthy,
    },
    StepDoc {
        keyword: "Given",
        pattern: "traffic is served from region {region}",
        example: "traffic is served from region \"us-west1\"",
        doc: "The traffic probe gets a good answer whose region header names {region}.",
        domain: "traffic",
        analyze: analyze_served_from,
    },
    StepDoc {
        keyword: "Then",
        pattern: "traffic is served from region {region}",
        example: "traffic is served from region \"us-west2\"",
        doc: "The traffic probe's answer now (one request) is a good one from {region}.",
        domain: "traffic",
        analyze: analyze_served_from,
    },
    StepDoc {
        keyword: "Then",
        pattern: "traffic is served from region {region} within {duration}",
        example: "traffic is served from region \"us-west2\" within 5m",
        doc: "Waits, asking at the traffic probe's interval, until its answer is a good one from {region}, at most {duration} after the end of the step before it; fails with the last answer seen.",
        domain: "traffic",
        analyze: analyze_served_from,
    },
    StepDoc {
        keyword: "Then",
        pattern: "traffic is still served from region {region}",
        example: "traffic is still served from region \"us-west1\"",
        doc: "No failover happened: since the scenario started the traffic probe got no good answer from another region, and its answer now is a good one from {region}.",
        domain: "traffic",
        analyze: analyze_served_from,
    },
    StepDoc {
        keyword: "Then",
        pattern: "traffic is still served from region {region} within {duration}",
        example: "traffic is still served from region \"us-west1\" within 1m",
        doc: "As `traffic is still served from region`, waiting (at the probe's interval) for the good answer from {region}, at most {duration} after the end of the step before it, e.g. after a restored link; a good answer from another region during the scenario fails it at once.",
        domain: "traffic",
        analyze: analyze_served_from,
    },
    StepDoc {
        keyword: "When",
        pattern: "traffic is switched to region {region}",
        example: "traffic is switched to region \"us-west2\"",
        doc: "Runs the platform's traffic switch (e.g. a Terraform apply) with {region}; milestones `traffic switch started` and `traffic switched to {region}` (command exit). Undo: the switch back to the region that served before.",
        domain: "traffic",
        analyze: analyze_switch,
    },
    StepDoc {
        keyword: "When",
        pattern: "traffic is switched to {region}",
        example: "traffic is switched to \"us-west2\"",
        doc: "The earlier wording of `When traffic is switched to region \"{region}\"`, the same step; kept so drills written with it run unchanged.",
        domain: "traffic",
        analyze: analyze_switch,
    },
];

fn analyze_healthy(_: &Args, platform: &Platform) -> Analysis {
    let mut a = Analysis::default();
    if platform.probes.is_empty() {
        a.problem(
            "",
            "the platform defines no probes, so health cannot be checked",
            "add a probe under `probes:`",
        );
    }
    a.needs
        .extend(platform.probes.keys().map(|p| Need::Probe(p.clone())));
    a
}

fn analyze_served_from(args: &Args, platform: &Platform) -> Analysis {
    let mut a = Analysis::default();
    a.region("region", args.get("region"), platform);
    a.traffic("region", platform);
    a
}

fn analyze_switch(args: &Args, platform: &Platform) -> Analysis {
    let mut a = Analysis::default();
    let region = args.get("region");
    a.region("region", region, platform);
    a.traffic("region", platform);
    if let Some(traffic) = &platform.traffic {
        let argv = command::argv(&traffic.switch, &[("region".into(), region.into())]);
        if let Some(program) = argv.first() {
            a.needs.push(Need::Program(program.clone()));
        }
        let back = platform
            .primary_region()
            .unwrap_or("the region serving before");
        a.effects.push(Effect {
            what: format!("switch traffic to \"{region}\": {}", argv.join(" ")),
            undo: format!(
                "switch traffic back to the region serving before the switch (normally \"{back}\")"
            ),
        });
    }
    a
}

/// How long "the platform is healthy" waits for every probe's good answer (platform time): a
/// platform may still be settling from the previous drill's undo (a driver reconnecting to a
/// primary that moved back, a load balancer that just followed a failback).
pub const HEALTHY_WITHIN: Duration = Duration::from_secs(120);

#[given("the platform is healthy")]
async fn platform_is_healthy(world: &mut Drill) -> Result<(), Failure> {
    probes_good_within(world, HEALTHY_WITHIN)
        .await
        .map_err(|bad| {
            StepError::unmet(
                "the platform to be healthy before the drill",
                format!(
                    "the platform is not healthy, so no fault was injected: {}",
                    bad.join("; ")
                ),
                "find out why the probes fail, or run the drill when they answer well",
            )
        })
}

#[then("the platform is healthy")]
async fn platform_is_healthy_now(world: &mut Drill) -> Result<(), Failure> {
    probes_good_within(world, Duration::ZERO)
        .await
        .map_err(|bad| {
            StepError::unmet(
                "the platform to be healthy",
                bad.join("; "),
                "right after an undo or a restore the platform may still be settling; give it time with `Then the platform is healthy within 2m`",
            )
        })
}

#[then(expr = "the platform is healthy within {duration}")]
async fn platform_is_healthy_within(
    world: &mut Drill,
    within: param::Duration,
) -> Result<(), Failure> {
    probes_good_within(world, within.value)
        .await
        .map_err(|bad| StepError::Timeout {
            awaited: "the platform to be healthy".into(),
            within: format!("{within} of the end of the step before"),
            seen: bad.join("; "),
            hint: "each probe's last answer is above; raise the deadline if it is only slow".into(),
        })
}

/// Asks every probe of the platform at its interval until it gives a good answer, all of them
/// by `within` after now (the end of the step before: steps run one after another); at least
/// once each, so `within` zero is one look.
///
/// # Errors
///
/// One line per probe still bad at the deadline: its name, URL and last error.
async fn probes_good_within(world: &Drill, within: Duration) -> Result<(), Vec<String>> {
    let clock = world.clock();
    let deadline = clock.now().plus(within);
    let mut bad = Vec::new();
    for (name, probe) in &world.platform().probes {
        let left = deadline.saturating_since(clock.now());
        let answered = poll::until(&clock, probe.interval, left, || async {
            let obs = http::observe(&world.http, probe, &clock).await;
            if obs.good {
                Ok(())
            } else {
                Err(Some(obs.error.unwrap_or_else(|| "a bad answer".to_owned())))
            }
        })
        .await;
        if let Err(last) = answered {
            bad.push(format!(
                "probe \"{name}\" ({}): {}",
                probe.url,
                last.unwrap_or_default()
            ));
        }
    }
    if bad.is_empty() { Ok(()) } else { Err(bad) }
}

#[given(expr = "traffic is served from region {region}")]
async fn traffic_is_served_from(world: &mut Drill, region: param::Region) -> Result<(), Failure> {
    served_from_within(world, &region, Duration::ZERO).await
}

#[then(expr = "traffic is served from region {region}")]
async fn traffic_is_served_from_now(
    world: &mut Drill,
    region: param::Region,
) -> Result<(), Failure> {
    served_from_within(world, &region, Duration::ZERO).await
}

#[then(expr = "traffic is served from region {region} within {duration}")]
async fn traffic_is_served_from_within(
    world: &mut Drill,
    region: param::Region,
    within: param::Duration,
) -> Result<(), Failure> {
    served_from_within(world, &region, within.value)
        .await
        .map_err(|e| e.within(format!("{within} of the end of the step before")))
}

/// Asks the traffic probe at its interval until a good answer comes from `region`, by
/// `within` after now (the end of the step before); at least once, so `within` zero is one
/// look.
async fn served_from_within(world: &Drill, region: &str, within: Duration) -> Result<(), Failure> {
    let (name, probe) = traffic_probe(world)?;
    let clock = world.clock();
    poll::until(&clock, probe.interval, within, || async {
        let obs = http::observe(&world.http, &probe, &clock).await;
        match (&obs.region, obs.good) {
            (Some(served), true) if served == region => Ok(()),
            (served, good) => Err(Some(format!(
                "{} from {}",
                if good {
                    "a good answer"
                } else {
                    "a bad answer"
                },
                served.as_deref().map_or(
                    "an unnamed region (no region header)".to_owned(),
                    |s| format!("\"{s}\"")
                )
            ))),
        }
    })
    .await
    .map_err(|last| {
        StepError::unmet(
            format!("traffic to be served from \"{region}\""),
            format!(
                "probe \"{name}\" got {}",
                last.unwrap_or_else(|| "no answer".to_owned())
            ),
            "was traffic switched? The report's timeline shows where answers came from",
        )
    })
}

#[then(expr = "traffic is still served from region {region}")]
async fn traffic_is_still_served_from(
    world: &mut Drill,
    region: param::Region,
) -> Result<(), Failure> {
    still_served_from(world, &region, Duration::ZERO).await
}

#[then(expr = "traffic is still served from region {region} within {duration}")]
async fn traffic_is_still_served_from_within(
    world: &mut Drill,
    region: param::Region,
    within: param::Duration,
) -> Result<(), Failure> {
    still_served_from(world, &region, within.value)
        .await
        .map_err(|e| e.within(format!("{within} of the end of the step before")))
}

/// No good answer from another region on the timeline, and a good answer from `region` by
/// `within` after now.
async fn still_served_from(world: &Drill, region: &str, within: Duration) -> Result<(), Failure> {
    let elsewhere: Vec<String> = world
        .timeline()
        .milestones()
        .iter()
        .filter_map(|m| match MilestoneName::parse(&m.name) {
            MilestoneName::FirstGoodAnswerFrom(r) if r != region => Some(r),
            _ => None,
        })
        .collect();
    if let Some(other) = elsewhere.first() {
        return Err(StepError::unmet(
            format!("traffic to stay in \"{region}\""),
            format!(
                "traffic moved: the \"{}\" probe got good answers from \"{other}\" during the scenario",
                traffic_probe(world)?.0
            ),
            "the report's timeline shows when the answers moved",
        ));
    }
    served_from_within(world, region, within).await
}

#[when(expr = "traffic is switched to {region}")]
async fn traffic_is_switched_to(world: &mut Drill, region: param::Region) -> Result<(), Failure> {
    traffic_is_switched(world, region).await
}

#[when(expr = "traffic is switched to region {region}")]
async fn traffic_is_switched(world: &mut Drill, region: param::Region) -> Result<(), Failure> {
    let region = region.0;
    let (_, probe) = traffic_probe(world)?;
    // Undo goes back to whoever served before; ask the service, not the plan.
    let before = http::observe(&world.http, &probe, &world.clock())
        .await
        .region;
    let back = before
        .or_else(|| world.platform().primary_region().map(str::to_owned))
        .unwrap_or_default();
    let traffic = world.platform().traffic.clone().ok_or_else(|| {
        StepError::platform(
            "the platform has no traffic section",
            "define traffic.switch and traffic.probe",
        )
    })?;
    let forward = CommandRef::TrafficSwitch {
        region: region.clone(),
    };
    let undo_ref = CommandRef::TrafficSwitch {
        region: back.clone(),
    };
    let undo = Undo::Command(CommandUndo {
        run: command::argv(&traffic.switch, &[("region".into(), back.clone())]),
        command: undo_ref,
        settle: Some(Settle::TrafficServedFrom {
            region: back.clone(),
        }),
    });
    let clock = world.clock();
    let base = world.platform().base_dir();
    let substitutions = vec![("region".to_owned(), region.clone())];
    let finished = world
        .inject(
            Change::Remediation,
            &format!("traffic switched from \"{back}\" to \"{region}\""),
            undo,
            &[MilestoneName::TrafficSwitchStarted],
            command::run(
                &forward.describe(),
                &traffic.switch,
                &substitutions,
                &base,
                &clock,
            ),
        )
        .await
        .acting(|| format!("switch traffic from \"{back}\" to \"{region}\""))?;
    world.milestone(
        MilestoneName::TrafficSwitchedTo(region),
        finished.finished,
        "command",
    );
    world
        .run
        .events
        .emit(&firedrill_engine::events::Event::CommandFinished(finished));
    Ok(())
}

/// The traffic probe's name and definition, or what the platform file lacks.
pub(crate) fn traffic_probe(world: &Drill) -> Result<(String, firedrill_platform::Probe), Failure> {
    let platform = world.platform();
    let name = platform
        .traffic
        .as_ref()
        .map(|t| t.probe.clone())
        .ok_or_else(|| {
            StepError::platform(
                "the platform has no traffic section",
                "define traffic.switch and traffic.probe",
            )
        })?;
    let probe = platform.probes.get(&name).cloned().ok_or_else(|| {
        StepError::platform(
            format!("the traffic probe \"{name}\" is not defined"),
            format!("define probes.{name} in the platform file"),
        )
    })?;
    Ok((name, probe))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::fault_milestone_follows_the_ledger;

    #[tokio::test]
    async fn a_switch_starts_once_its_way_back_is_on_disk_and_never_otherwise() {
        fault_milestone_follows_the_ledger("traffic switch started", |w| {
            Box::pin(traffic_is_switched(w, param::Region("b".into())))
        })
        .await;
    }
}
