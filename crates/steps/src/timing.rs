//! Timing assertions: waits with deadlines, phases against targets.

use std::time::Duration;

use cucumber::{then, when};

use super::{Analysis, Args, Failure, StepDoc, milestone_ref};
use crate::world::Drill;
use firedrill_core::clock::{PlatformTime, format_duration};
use firedrill_core::target::{Target, parse_duration};
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
        analyze: analyze_detected,
    },
    StepDoc {
        keyword: "Then",
        pattern: "the outage is detected within {duration}",
        example: "the outage is detected within 2m",
        doc: "Waits until a running probe gets its first bad answer after `fault injected`, at most {duration} after it; records `outage detected` at that answer.",
        domain: "timing",
        analyze: analyze_detected,
    },
    StepDoc {
        keyword: "Then",
        pattern: "the service answers from \"{region}\" within {duration} of the fault|the switch|\"{milestone}\"",
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
        analyze: analyze_phase_target,
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
        pattern: "\"{milestone}\" is reached within {duration} of \"{milestone}\"",
        example: "\"traffic switched to us-west2\" is reached within 20m of \"fault injected\"",
        doc: "Waits for a milestone, at most {duration} after another, and judges the interval.",
        domain: "timing",
        analyze: analyze_between,
    },
];

fn analyze_detected(args: &Args, _: &Platform) -> Analysis {
    let mut a = Analysis::default();
    a.duration("duration", args.get("duration"));
    a
}

fn analyze_answers(args: &Args, platform: &Platform) -> Analysis {
    let mut a = Analysis::default();
    a.region("region", args.get("region"), platform);
    a.duration("duration", args.get("duration"));
    a.traffic("region", platform);
    a
}

fn analyze_phase(a: &mut Analysis, phase: &str) {
    if !PHASES.iter().any(|(p, _)| *p == phase) {
        let known: Vec<&str> = PHASES.iter().map(|(p, _)| *p).collect();
        a.problem(
            "phase",
            format!("\"{phase}\" is not a phase firedrill measures"),
            format!(
                "known phases: {}",
                firedrill_core::diagnostic::one_of(&known)
            ),
        );
    }
}

fn analyze_phase_target(args: &Args, _: &Platform) -> Analysis {
    let mut a = Analysis::default();
    analyze_phase(&mut a, args.get("phase"));
    a.target("target", args.get("target"));
    a
}

fn analyze_phase_platform_target(args: &Args, platform: &Platform) -> Analysis {
    let mut a = Analysis::default();
    let phase = args.get("phase");
    analyze_phase(&mut a, phase);
    if !platform.targets.contains_key(phase) {
        a.problem(
            "phase",
            format!("the platform has no target for \"{phase}\""),
            format!("add it under `targets:`, e.g. {phase}: 20m..25m"),
        );
    }
    a
}

fn analyze_between(args: &Args, _: &Platform) -> Analysis {
    let mut a = Analysis::default();
    a.duration("duration", args.get("duration"));
    a
}

fn duration(text: &str) -> Result<Duration, Failure> {
    parse_duration(text).map_err(Failure::from)
}

fn reference(timeline: &Timeline, name: &str) -> Result<Milestone, Failure> {
    timeline.first(name).cloned().ok_or_else(|| {
        Failure(format!("milestone \"{name}\" was never reached, so nothing can be timed from it (reached so far: {})", firedrill_core::diagnostic::one_of(&timeline.names())))
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
        Some(v) => Err(Failure(format!("{name}: {v}"))),
        None => Err(Failure(format!("{name}: never ended, target {target}"))),
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

#[when(
    regex = r"^(?P<duration>\d[^\s]*(?: (?:ms|milliseconds?|seconds?|secs?|minutes?|mins?|hours?))?) pass$"
)]
async fn time_passes(world: &mut Drill, text: String) -> Result<(), Failure> {
    let wait = duration(&text)?;
    world.clock().sleep(wait).await;
    let at = world.clock().now();
    world.milestone(format!("{text} passed"), at, "engine");
    Ok(())
}

#[then(
    regex = r"^the outage is detected within (?P<duration>\d[^\s]*(?: (?:ms|milliseconds?|seconds?|secs?|minutes?|mins?|hours?))?)$"
)]
async fn outage_detected(world: &mut Drill, within: String) -> Result<(), Failure> {
    let within = duration(&within)?;
    let fault = reference(&world.timeline(), "fault injected")?;
    let deadline = fault.at.plus(within);
    world.run.events.emit(&Event::Waiting {
        what: "outage detected".into(),
        since: fault.at,
        deadline,
    });
    let bad = world
        .wait_for(deadline, |t| {
            t.first_since("first bad answer", fault.at).cloned()
        })
        .await;
    if let Some(bad) = &bad {
        world.milestone("outage detected", bad.at, &bad.source);
    }
    let detected = world.timeline().first("outage detected").cloned();
    if detected.is_none() {
        return Err(Failure(format!(
            "the outage was not detected within {} of the fault ({})",
            format_duration(within),
            last_seen(world)
        )));
    }
    measure(
        world,
        "detection",
        &fault,
        detected.as_ref(),
        Target::Within { limit: within },
    )
}

#[then(
    regex = r#"^the service answers from "(?P<region>[^"]+)" within (?P<duration>\d[^\s]*(?: (?:ms|milliseconds?|seconds?|secs?|minutes?|mins?|hours?))?) of (?P<reference>the fault|the switch|"[^"]+")$"#
)]
async fn service_answers_from(
    world: &mut Drill,
    region: String,
    within: String,
    reference_text: String,
) -> Result<(), Failure> {
    let within = duration(&within)?;
    let from = reference(&world.timeline(), &milestone_ref(&reference_text))?;
    let name = format!("service answers from {region}");
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
        return Err(Failure(format!(
            "the service did not answer from \"{region}\" within {} of \"{}\" ({})",
            format_duration(within),
            from.name,
            last_seen(world)
        )));
    }
    measure(
        world,
        &format!("{} → {name}", from.name),
        &from,
        found.as_ref(),
        Target::Within { limit: within },
    )
}

/// The end milestone of a named phase, if reached.
fn phase_bounds(world: &Drill, phase: &str) -> Result<(Milestone, Option<Milestone>), Failure> {
    let timeline = world.timeline();
    let platform = world.platform();
    let failover_regions: Vec<String> = platform
        .regions
        .iter()
        .filter(|(_, r)| r.role == Role::Failover)
        .map(|(n, _)| format!("service answers from {n}"))
        .collect();
    match phase {
        "failover" => {
            let from = reference(&timeline, "fault injected")?;
            let to = timeline
                .first_matching_since(from.at, |n| failover_regions.iter().any(|f| f == n))
                .cloned();
            Ok((from, to))
        }
        "recovery" => {
            let from = reference(&timeline, "fault injected")?;
            let to = timeline
                .first_matching_since(from.at, |n| n.starts_with("service answers from "))
                .cloned();
            Ok((from, to))
        }
        "detection" => {
            let from = reference(&timeline, "fault injected")?;
            Ok((
                from.clone(),
                timeline.first_since("outage detected", from.at).cloned(),
            ))
        }
        "switch" => {
            let from = reference(&timeline, "traffic switch started")?;
            let to = timeline
                .first_matching_since(from.at, |n| n.starts_with("traffic switched to "))
                .cloned();
            Ok((from, to))
        }
        other => Err(Failure(format!(
            "\"{other}\" is not a phase firedrill measures"
        ))),
    }
}

fn judge_phase(world: &Drill, phase: &str, target: Target) -> Result<(), Failure> {
    let (from, to) = phase_bounds(world, phase)?;
    measure(world, phase, &from, to.as_ref(), target)
}

#[then(regex = r"^the (?P<phase>[a-z-]+) time is within the (?P<target>\S+) target$")]
async fn phase_within_target(
    world: &mut Drill,
    phase: String,
    target: String,
) -> Result<(), Failure> {
    let target: Target = target.parse()?;
    judge_phase(world, &phase, target)
}

#[then(regex = r"^the (?P<phase>[a-z-]+) time is within its target$")]
async fn phase_within_platform_target(world: &mut Drill, phase: String) -> Result<(), Failure> {
    let target = *world
        .platform()
        .targets
        .get(&phase)
        .ok_or_else(|| Failure(format!("the platform has no target for \"{phase}\"")))?;
    judge_phase(world, &phase, target)
}

#[then(
    regex = r#"^"(?P<milestone>[^"]+)" is reached within (?P<duration>\d[^\s]*(?: (?:ms|milliseconds?|seconds?|secs?|minutes?|mins?|hours?))?) of "(?P<since>[^"]+)"$"#
)]
async fn milestone_within(
    world: &mut Drill,
    milestone: String,
    within: String,
    since: String,
) -> Result<(), Failure> {
    let within = duration(&within)?;
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
        return Err(Failure(format!(
            "\"{milestone}\" was not reached within {} of \"{since}\" ({})",
            format_duration(within),
            last_seen(world)
        )));
    }
    measure(
        world,
        &format!("{since} → {milestone}"),
        &from,
        found.as_ref(),
        Target::Within { limit: within },
    )
}
