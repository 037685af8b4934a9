//! Timing assertions: waits with deadlines, phases against targets.

use std::time::Duration;

use cucumber::{then, when};

use super::{Analysis, Args, Failure, Need, StepDoc, StepError, param};
use crate::world::Drill;
use firedrill_core::clock::{PlatformTime, format_duration};
use firedrill_core::names::{Bounds, FIRST_BAD_ANSWER, MilestoneName, OUTAGE_DETECTED, PhaseName};
use firedrill_core::target::Target;
use firedrill_core::timeline::{Milestone, Phase, Timeline};
use firedrill_engine::events::Event;
use firedrill_platform::{Platform, Role};

/// Phases firedrill knows by name, with how they are measured (defined with the timeline, so
/// the platform's `targets:` are checked against the same list).
pub use firedrill_core::timeline::PHASES;

/// The timing steps.
pub const DOCS: &[StepDoc] = &[
    StepDoc {
        keyword: "When",
        pattern: "{duration} pass",
        example: "5m pass",
        doc: "Lets the platform run for {duration} of platform time while the probes, watches and write checkers keep observing, e.g. to hold a zone outage before judging the error rate. Milestone `{duration} passed`.",
        domain: "timing",
        analyze: analyze_nothing_more,
    },
    StepDoc {
        keyword: "Then",
        pattern: "the outage is detected within {duration}",
        example: "the outage is detected within 2m",
        doc: "Waits until a running probe gets its first bad answer after `fault injected`, at most {duration} after it; records `outage detected` at that answer.",
        domain: "timing",
        analyze: analyze_nothing_more,
    },
    StepDoc {
        keyword: "Then",
        pattern: "the service answers from {region}",
        example: "the service answers from \"us-west2\"",
        doc: "The traffic probe's latest answers are stable-after consecutive good ones from {region} (its milestone `service answers from {region}` holds now). No waiting: the `within` forms wait.",
        domain: "timing",
        analyze: analyze_answers,
    },
    StepDoc {
        keyword: "Then",
        pattern: "the service answers from {region} within {duration}",
        example: "the service answers from \"us-west1\" within 2m",
        doc: "Waits until the traffic probe's latest answers are stable-after consecutive good ones from {region}, the first of them at most {duration} after the end of the step before it (an answer streak that began earlier and still holds passes at once). `… within {duration} of the fault` and the other anchors time from a milestone instead.",
        domain: "timing",
        analyze: analyze_answers,
    },
    StepDoc {
        keyword: "Then",
        pattern: "the service answers from {region} within {duration} of {reference}",
        example: "the service answers from \"us-west2\" within 25m of the fault",
        doc: "Waits until the traffic probe's answers come from {region} for stable-after consecutive probes, and checks the first of them came within {duration} of the reference milestone. The milestone is `service answers from {region}`.",
        domain: "timing",
        analyze: analyze_answers,
    },
    StepDoc {
        keyword: "Then",
        pattern: "the {phase} time is within the {target} target",
        example: "the failover time is within the 20m..25m target",
        doc: "Measures a named phase (failover, recovery, detection, switch) and judges it against a target: `25m` or a band `20m..25m`. The verdict shows measured, target and margin.",
        domain: "timing",
        analyze: analyze_phase,
    },
    StepDoc {
        keyword: "Then",
        pattern: "the {phase} time is within its target",
        example: "the failover time is within its target",
        doc: "As above, with the target from the platform's `targets:` section.",
        domain: "timing",
        analyze: analyze_phase_platform_target,
    },
    StepDoc {
        keyword: "Then",
        pattern: "{milestone} is reached within {duration} of {milestone}",
        example: "\"traffic switched to us-west2\" is reached within 20m of \"fault injected\"",
        doc: "Waits for a milestone, at most {duration} after another, and judges the interval.",
        domain: "timing",
        analyze: analyze_nothing_more,
    },
];

fn analyze_nothing_more(_: &Args, _: &Platform) -> Analysis {
    Analysis::default()
}

fn analyze_answers(args: &Args, platform: &Platform) -> Analysis {
    let mut a = Analysis::default();
    a.region("region", args.get("region"), platform);
    a.traffic("region", platform);
    a
}

/// The failover phase ends at an answer from a failover region: it needs one in the platform.
fn analyze_phase(args: &Args, _: &Platform) -> Analysis {
    let mut a = Analysis::default();
    if args
        .value::<param::Phase>()
        .is_some_and(|p| p.0 == PhaseName::Failover)
    {
        a.needs.push(Need::Region(Role::Failover));
    }
    a
}

fn analyze_phase_platform_target(args: &Args, platform: &Platform) -> Analysis {
    let mut a = analyze_phase(args, platform);
    let phase = args.get("phase");
    if !platform.targets.contains_key(phase) {
        a.problem(
            "phase",
            format!("the platform has no target for \"{phase}\""),
            format!("add it under `targets:`, e.g. {phase}: 20m..25m"),
        );
    }
    a
}

pub(crate) fn reference(timeline: &Timeline, name: &MilestoneName) -> Result<Milestone, Failure> {
    timeline.first(&name.to_string()).cloned().ok_or_else(|| {
        StepError::precondition(
            format!(
                "milestone \"{name}\" was never reached, so nothing can be timed from it (reached so far: {})",
                firedrill_core::diagnostic::one_of(&timeline.names())
            ),
            "time from a milestone an earlier step reaches, e.g. \"fault injected\"",
        )
    })
}

/// What the traffic probe saw last, for timeout messages.
fn last_seen(world: &Drill) -> String {
    world
        .probes
        .values()
        .next()
        .and_then(|p| p.state().last)
        .map_or("no probe answer yet".to_owned(), |o| {
            format!(
                "last probe answer at {}: {} from {}",
                o.at,
                o.status
                    .map_or_else(|| o.error.clone().unwrap_or_default(), |s| s.to_string()),
                o.region.unwrap_or_else(|| "no region".into())
            )
        })
}

fn measure(
    world: &Drill,
    name: &str,
    from: &Milestone,
    to: Option<&Milestone>,
    target: Target,
) -> Result<(), Failure> {
    let verdict = to.map(|to| target.judge(to.at.saturating_since(from.at)));
    world.run.events.emit(&Event::PhaseMeasured(Phase {
        name: name.to_owned(),
        from: from.name.clone(),
        to: to.map_or_else(String::new, |t| t.name.clone()),
        start: from.at,
        end: to.map(|t| t.at),
        verdict,
    }));
    match verdict {
        Some(v) if v.passed => Ok(()),
        Some(v) => Err(StepError::unmet(
            format!("{name} to meet its target {target}"),
            format!("{name}: {v}"),
            "the report's timeline shows each milestone of the phase",
        )),
        None => Err(StepError::unmet(
            format!("{name} to meet its target {target}"),
            format!("{name}: never ended"),
            "the report's timeline shows which milestone was never reached",
        )),
    }
}

fn grace(world: &Drill) -> Duration {
    // A stable answer is confirmed only after stable-after probes; wait that long past the
    // deadline so an answer that started in time is not judged late.
    world
        .platform()
        .traffic
        .as_ref()
        .and_then(|t| world.platform().probes.get(&t.probe))
        .map_or(Duration::ZERO, |p| p.interval * p.stable_after + p.timeout)
}

#[when(expr = "{duration} pass")]
async fn time_passes(world: &mut Drill, wait: param::Duration) -> Result<(), Failure> {
    world.clock().sleep(wait.value).await;
    let at = world.clock().now();
    world.milestone(MilestoneName::Passed(wait.text), at, "engine");
    Ok(())
}

#[then(expr = "the outage is detected within {duration}")]
async fn outage_detected(world: &mut Drill, within: param::Duration) -> Result<(), Failure> {
    let within = within.value;
    let fault = reference(&world.timeline(), &MilestoneName::FaultInjected)?;
    let deadline = fault.at.plus(within);
    world.run.events.emit(&Event::Waiting {
        what: MilestoneName::OutageDetected.to_string(),
        since: fault.at,
        deadline,
    });
    let bad = world
        .wait_for(deadline, |t| {
            t.first_since(FIRST_BAD_ANSWER, fault.at).cloned()
        })
        .await;
    if let Some(bad) = &bad {
        world.milestone(MilestoneName::OutageDetected, bad.at, &bad.source);
    }
    let detected = world.timeline().first(OUTAGE_DETECTED).cloned();
    if detected.is_none() {
        return Err(StepError::Timeout {
            awaited: "the outage to be detected".into(),
            within: format!("{} of the fault", format_duration(within)),
            seen: format!("it was not ({})", last_seen(world)),
            hint: "is the fault on the path the traffic probe takes?".into(),
        });
    }
    measure(
        world,
        PhaseName::Detection.as_str(),
        &fault,
        detected.as_ref(),
        Target::Within { limit: within },
    )
}

#[then(expr = "the service answers from {region} within {duration} of {reference}")]
async fn service_answers_from(
    world: &mut Drill,
    region: param::Region,
    within: param::Duration,
    since: param::Reference,
) -> Result<(), Failure> {
    let (region, within) = (region.0, within.value);
    let from = reference(&world.timeline(), &since.0)?;
    let name = MilestoneName::ServiceAnswersFrom(region.clone()).to_string();
    let deadline = from.at.plus(within);
    world.run.events.emit(&Event::Waiting {
        what: name.clone(),
        since: from.at,
        deadline,
    });
    let wait_until = deadline.plus(grace(world));
    let found = world
        .wait_for(wait_until, |t| t.first_since(&name, from.at).cloned())
        .await;
    if found.is_none() {
        return Err(StepError::Timeout {
            awaited: format!("the service to answer from \"{region}\""),
            within: format!("{} of \"{}\"", format_duration(within), from.name),
            seen: format!("it did not ({})", last_seen(world)),
            hint: "the report's timeline shows where the traffic probe's answers came from".into(),
        });
    }
    measure(
        world,
        &format!("{} → {name}", from.name),
        &from,
        found.as_ref(),
        Target::Within { limit: within },
    )
}

#[then(expr = "the service answers from {region}")]
async fn service_answers_from_now(world: &mut Drill, region: param::Region) -> Result<(), Failure> {
    let (name, probe, stable_after) = traffic_probe(world)?;
    match stable_streak(world, &name, &region, stable_after) {
        Some(_) => Ok(()),
        None => Err(StepError::unmet(
            format!("the service to answer from \"{region}\""),
            format!(
                "the \"{name}\" probe's latest answers are not {stable_after} good ones from it in a row ({})",
                last_seen(world)
            ),
            format!(
                "to wait for it, write `within` and how long it may take, e.g. `Then the service answers from \"{region}\" within {}`",
                format_duration(probe.interval * stable_after * 4)
            ),
        )),
    }
}

#[then(expr = "the service answers from {region} within {duration}")]
async fn service_answers_from_within(
    world: &mut Drill,
    region: param::Region,
    within: param::Duration,
) -> Result<(), Failure> {
    let (name, _, stable_after) = traffic_probe(world)?;
    // The end of the step before: steps run one after another.
    let anchor = world.clock().now();
    let deadline = anchor.plus(within.value);
    let what = MilestoneName::ServiceAnswersFrom(region.0.clone()).to_string();
    world.run.events.emit(&Event::Waiting {
        what: what.clone(),
        since: anchor,
        deadline,
    });
    let mut changed = world
        .probes
        .get(&name)
        .map(firedrill_providers::http::Running::subscribe)
        .ok_or_else(|| {
            StepError::precondition(
                format!("the traffic probe \"{name}\" is not running"),
                format!("add `Given the \"{name}\" probe is running` to the scenario"),
            )
        })?;
    // A streak that starts by the deadline is confirmed only stable-after answers later.
    let clock = world.clock();
    let wait_until = deadline.plus(grace(world));
    let found = loop {
        changed.borrow_and_update();
        if let Some(since) = stable_streak(world, &name, &region, stable_after) {
            break Some(since);
        }
        match clock.timeout_at(wait_until, changed.changed()).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) | Err(_) => break stable_streak(world, &name, &region, stable_after),
        }
    };
    match found {
        Some(since) if since <= deadline => Ok(()),
        Some(since) => Err(StepError::Timeout {
            awaited: format!("the service to answer from \"{region}\""),
            within: format!("{within} of the end of the step before"),
            seen: format!(
                "it answered from there {} after it",
                format_duration(since.saturating_since(anchor))
            ),
            hint: "raise the deadline if the switch is only slow".into(),
        }),
        None => Err(StepError::Timeout {
            awaited: format!("the service to answer from \"{region}\""),
            within: format!("{within} of the end of the step before"),
            seen: format!("it did not ({})", last_seen(world)),
            hint: "the report's timeline shows where the traffic probe's answers came from".into(),
        }),
    }
}

/// The traffic probe's name, definition and stable-after count.
fn traffic_probe(world: &Drill) -> Result<(String, firedrill_platform::Probe, u32), Failure> {
    let (name, probe) = crate::traffic::traffic_probe(world)?;
    let stable_after = probe.stable_after.max(1);
    Ok((name, probe, stable_after))
}

/// When the running probe `name`'s current streak of good answers from `region` began, if it
/// is at least `stable_after` long.
fn stable_streak(
    world: &Drill,
    name: &str,
    region: &str,
    stable_after: u32,
) -> Option<PlatformTime> {
    let state = world.probes.get(name)?.state();
    state
        .streak
        .filter(|s| s.region == region && s.length >= stable_after)
        .map(|s| s.since)
}

/// A phase's bounds on the timeline: its start, and its end if reached.
fn phase_bounds(world: &Drill, phase: PhaseName) -> Result<Bounds, Failure> {
    let platform = world.platform();
    let failover_regions: Vec<&str> = platform
        .regions
        .iter()
        .filter(|(_, r)| r.role == Role::Failover)
        .map(|(n, _)| n.as_str())
        .collect();
    let timeline = world.timeline();
    phase
        .bounds(&timeline, &failover_regions)
        .map_err(|start| match reference(&timeline, &start) {
            Err(never) => never,
            Ok(_) => StepError::precondition(
                format!("milestone \"{start}\" was never reached"),
                "the report's timeline shows which milestones were",
            ),
        })
}

fn judge_phase(world: &Drill, phase: PhaseName, target: Target) -> Result<(), Failure> {
    let (from, to) = phase_bounds(world, phase)?;
    measure(world, phase.as_str(), &from, to.as_ref(), target)
}

#[then(expr = "the {phase} time is within the {target} target")]
async fn phase_within_target(
    world: &mut Drill,
    phase: param::Phase,
    target: param::Target,
) -> Result<(), Failure> {
    judge_phase(world, phase.0, target.0)
}

#[then(expr = "the {phase} time is within its target")]
async fn phase_within_platform_target(
    world: &mut Drill,
    phase: param::Phase,
) -> Result<(), Failure> {
    let phase = phase.0;
    let target = *world
        .platform()
        .targets
        .get(phase.as_str())
        .ok_or_else(|| {
            StepError::platform(
                format!("the platform has no target for \"{phase}\""),
                format!("add it under `targets:`, e.g. {phase}: 20m..25m"),
            )
        })?;
    judge_phase(world, phase, target)
}

#[then(expr = "{milestone} is reached within {duration} of {milestone}")]
async fn milestone_within(
    world: &mut Drill,
    milestone: param::Milestone,
    within: param::Duration,
    since: param::Milestone,
) -> Result<(), Failure> {
    let (milestone, within, since) = (milestone.0.to_string(), within.value, since.0);
    let from = reference(&world.timeline(), &since)?;
    let deadline: PlatformTime = from.at.plus(within);
    world.run.events.emit(&Event::Waiting {
        what: milestone.clone(),
        since: from.at,
        deadline,
    });
    let found = world
        .wait_for(deadline, |t| t.first_since(&milestone, from.at).cloned())
        .await;
    if found.is_none() {
        return Err(StepError::Timeout {
            awaited: format!("\"{milestone}\" to be reached"),
            within: format!("{} of \"{since}\"", format_duration(within)),
            seen: format!("it was not ({})", last_seen(world)),
            hint: "the report's timeline shows the milestones that were".into(),
        });
    }
    measure(
        world,
        &format!("{since} → {milestone}"),
        &from,
        found.as_ref(),
        Target::Within { limit: within },
    )
}
