//! Guards: stop conditions from the platform file, armed by a step, a tag (`@guard:{name}`)
//! or the platform (`armed: always`). The engine checks each before the scenario's first
//! change and watches it from then on; here is what one evaluation reads — a PromQL query over
//! the platform's Prometheus, or the error rate of the platform's own probes over a window.

use std::sync::Arc;
use std::time::Duration;

use cucumber::given;
use futures::future::BoxFuture;
use tokio::sync::watch;

use super::{Analysis, Args, Failure, Need, StepDoc, StepError};
use crate::world::Drill;
use firedrill_core::clock::{Clock, PlatformTime};
use firedrill_core::diagnostic::one_of;
use firedrill_core::guard::{GuardTrip, Judgement, Reading, Tracker};
use firedrill_core::observed::ProbeState;
use firedrill_core::threshold::Threshold;
use firedrill_platform::{GUARD_TAG_PREFIX, GuardSource, NoData, Platform};
use firedrill_providers::prometheus;

/// The guard steps.
pub const DOCS: &[StepDoc] = &[StepDoc {
    keyword: "Given",
    pattern: "the guard {guard} is armed",
    example: "the guard \"bystanders\" is armed",
    doc: "Arms a guard of the platform file (`guards.<name>`) for the rest of the scenario: it is evaluated once before the scenario's first change (a breach fails the scenario with nothing injected), then every `interval`; `for` breaches in a row trip it: a `guard tripped: {guard}` milestone with the value seen, every change of the run undone newest first, the run aborted with exit code 5. The tag `@guard:{guard}` arms it for every scenario it covers, `armed: always` for every scenario on the platform.",
    domain: "guards",
    analyze: analyze_guard,
}];

fn analyze_guard(args: &Args, platform: &Platform) -> Analysis {
    let mut a = Analysis::default();
    match guard_needs(args.get("guard"), platform) {
        Ok(needs) => a.needs = needs,
        Err((message, hint)) => a.problem("guard", message, hint),
    }
    a
}

/// What arming guard `name` needs at preflight, or why it cannot be armed.
fn guard_needs(name: &str, platform: &Platform) -> Result<Vec<Need>, (String, String)> {
    let Some(guard) = platform.guards.get(name) else {
        return Err((
            format!("guard \"{name}\" is not defined in the platform"),
            format!(
                "define it under `guards:` (known: {})",
                one_of(&platform.guards.keys().collect::<Vec<_>>())
            ),
        ));
    };
    Ok(match guard.source() {
        Some(GuardSource::Query(_)) => vec![Need::Prometheus, Need::Guard(name.to_owned())],
        Some(GuardSource::Probes { probes, .. }) => {
            probes.iter().map(|p| Need::Probe(p.clone())).collect()
        }
        None => Vec::new(),
    })
}

/// The guards a scenario with `tags` has armed from its start: the platform's `armed: always`
/// ones, then those its `@guard:{name}` tags name.
#[must_use]
pub fn armed_at_start(tags: &[String], platform: &Platform) -> Vec<String> {
    let mut names: Vec<String> = platform.always_armed().map(str::to_owned).collect();
    for tag in tags {
        if let Some(name) = tag.strip_prefix(GUARD_TAG_PREFIX)
            && !names.iter().any(|n| n == name)
        {
            names.push(name.to_owned());
        }
    }
    names
}

/// The static check of the guards a scenario arms from its start: what they need, and the
/// `(message, hint)` of every tag naming no guard.
#[must_use]
pub fn analyze_start(tags: &[String], platform: &Platform) -> (Vec<Need>, Vec<(String, String)>) {
    let mut needs = Vec::new();
    let mut problems = Vec::new();
    for name in armed_at_start(tags, platform) {
        match guard_needs(&name, platform) {
            Ok(more) => needs.extend(more),
            Err((message, hint)) => {
                problems.push((format!("tag @{GUARD_TAG_PREFIX}{name}: {message}"), hint))
            }
        }
    }
    (needs, problems)
}

#[given(expr = "the guard {guard} is armed")]
async fn guard_is_armed(world: &mut Drill, guard: crate::param::Guard) -> Result<(), Failure> {
    arm(world, &guard).map(|_| ())
}

/// Arms the platform's guard `name` in `world`'s scenario.
///
/// # Errors
///
/// When the platform has no such guard, or what it reads cannot be reached.
pub fn arm(world: &mut Drill, name: &str) -> Result<bool, Failure> {
    let definition = world.platform().guards.get(name).cloned().ok_or_else(|| {
        StepError::platform(
            format!("guard \"{name}\" is not defined in the platform"),
            format!("define guards.{name} with its abort-if in the platform file"),
        )
    })?;
    let threshold = definition.threshold().ok_or_else(|| {
        StepError::platform(
            format!("guard \"{name}\": abort-if does not parse"),
            "`firedrill validate` names what is wrong with it",
        )
    })?;
    let source = match definition.source() {
        Some(GuardSource::Query(query)) => Source::Query {
            client: world.prometheus()?,
            query: query.to_owned(),
        },
        Some(GuardSource::Probes { probes, window }) => {
            let mut states = Vec::new();
            for probe in probes {
                let running = world.start_probe(probe)?;
                states.push((probe.clone(), running.subscribe()));
            }
            Source::Probes { states, window }
        }
        None => {
            return Err(StepError::platform(
                format!(
                    "guard \"{name}\" is malformed: it reads neither one query nor probes over a window"
                ),
                format!(
                    "give guards.{name} either a query or probes with a window in the platform file"
                ),
            ));
        }
    };
    let guard = PlatformGuard {
        name: name.to_owned(),
        threshold,
        consecutive: definition.consecutive,
        interval: definition.interval,
        no_data_breaches: definition.no_data == NoData::Fail,
        clock: world.clock(),
        source: Arc::new(source),
    };
    Ok(world.arm(Arc::new(guard)))
}

/// Arms the guards a scenario has from its start (see [`armed_at_start`]). One that cannot be
/// armed still guards: its check refuses the first change, so the drill never runs unguarded.
pub fn arm_at_start(world: &mut Drill) {
    let names = armed_at_start(&world.tags, world.platform());
    for name in names {
        if let Err(e) = arm(world, &name) {
            let why = e.to_string();
            tracing::error!("guard \"{name}\" cannot be armed: {why}");
            world.arm(Arc::new(Unarmable { name, why }));
        }
    }
}

/// A guard that could not be armed: it refuses the scenario's first change.
struct Unarmable {
    name: String,
    why: String,
}

impl firedrill_engine::stop::Guard for Unarmable {
    fn name(&self) -> &str {
        &self.name
    }

    fn check(&self) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async move { Err(format!("it cannot be armed: {}", self.why)) })
    }

    fn watch(&self) -> BoxFuture<'static, GuardTrip> {
        Box::pin(futures::future::pending())
    }
}

/// What a guard reads.
enum Source {
    /// A PromQL query: every series, the worst one judged.
    Query {
        client: prometheus::Client,
        query: String,
    },
    /// Probes: each one's percentage of bad answers within the window, the worst judged.
    Probes {
        states: Vec<(String, watch::Receiver<ProbeState>)>,
        window: Duration,
    },
}

/// A guard of the platform file, armed.
struct PlatformGuard {
    name: String,
    threshold: Threshold,
    consecutive: u32,
    interval: Duration,
    no_data_breaches: bool,
    clock: Clock,
    source: Arc<Source>,
}

impl Source {
    async fn read(&self, threshold: &Threshold, now: PlatformTime) -> Reading {
        match self {
            Self::Query { client, query } => match client.query(query, None).await {
                Ok(samples) => Reading::worst(
                    samples
                        .iter()
                        .filter(|s| !s.value.is_nan())
                        .map(|s| (s.value, s.selector()))
                        .collect(),
                    threshold,
                )
                .unwrap_or_else(|| {
                    Reading::NoData(format!(
                        "the query returned no series{}",
                        if samples.is_empty() {
                            ""
                        } else {
                            " with a value"
                        }
                    ))
                }),
                Err(e) => Reading::NoData(e.to_string()),
            },
            Self::Probes { states, window } => {
                let since = PlatformTime::from_offset(now.offset().saturating_sub(*window));
                let rates = states
                    .iter()
                    .filter_map(|(name, state)| {
                        error_rate(&state.borrow(), since).map(|rate| (rate, name.clone()))
                    })
                    .collect();
                Reading::worst(rates, threshold).unwrap_or_else(|| {
                    let names: Vec<&str> = states.iter().map(|(n, _)| n.as_str()).collect();
                    Reading::NoData(format!(
                        "no answer from probe {} within the last {}",
                        names.join(", "),
                        firedrill_core::clock::format_duration(*window)
                    ))
                })
            }
        }
    }
}

/// The percentage of a probe's answers since `since` that were bad; `None` without answers.
fn error_rate(state: &ProbeState, since: PlatformTime) -> Option<f64> {
    let recent: Vec<_> = state.history.iter().filter(|o| o.at >= since).collect();
    if recent.is_empty() {
        return None;
    }
    let bad = recent.iter().filter(|o| !o.good).count();
    Some(100.0 * bad as f64 / recent.len() as f64)
}

impl firedrill_engine::stop::Guard for PlatformGuard {
    fn name(&self) -> &str {
        &self.name
    }

    fn check(&self) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async move {
            let reading = self.source.read(&self.threshold, self.clock.now()).await;
            let tracker = Tracker::new(self.threshold, 1, self.no_data_breaches);
            if tracker.breaches(&reading) {
                Err(format!(
                    "{}, abort-if {}",
                    reading.describe(),
                    self.threshold
                ))
            } else {
                Ok(())
            }
        })
    }

    fn watch(&self) -> BoxFuture<'static, GuardTrip> {
        let name = self.name.clone();
        let threshold = self.threshold;
        let consecutive = self.consecutive;
        let mut tracker = Tracker::new(threshold, consecutive, self.no_data_breaches);
        let source = Arc::clone(&self.source);
        let clock = self.clock;
        let interval = self.interval;
        Box::pin(async move {
            let mut ticks = clock.interval(interval);
            // The first tick is now: the check before the first change just evaluated it.
            ticks.tick().await;
            loop {
                ticks.tick().await;
                let reading = source.read(&threshold, clock.now()).await;
                if tracker.observe(&reading) == Judgement::Tripped {
                    return GuardTrip::new(&name, &reading, &threshold, consecutive, clock.now());
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use firedrill_core::observed::Observation;

    fn obs(secs: u64, good: bool) -> Observation {
        Observation {
            at: PlatformTime::from_offset(Duration::from_secs(secs)),
            good,
            status: Some(if good { 200 } else { 502 }),
            region: None,
            latency: Duration::from_millis(5),
            error: None,
        }
    }

    #[test]
    fn a_probe_error_rate_counts_only_the_window() {
        let state = ProbeState {
            history: vec![obs(0, false), obs(5, false), obs(10, true), obs(15, false)],
            ..ProbeState::default()
        };
        let at = |s| PlatformTime::from_offset(Duration::from_secs(s));
        assert_eq!(error_rate(&state, at(0)), Some(75.0));
        assert_eq!(error_rate(&state, at(10)), Some(50.0));
        assert_eq!(error_rate(&state, at(20)), None);
    }

    #[test]
    fn tags_and_the_platform_default_arm_guards_from_the_start() {
        let platform = firedrill_platform::load_str(
            std::path::Path::new("p.yaml"),
            "name: t\nregions:\n  a: { role: primary }\n  b: { role: failover }\nprobes:\n  p: { url: http://127.0.0.1:9/ }\nguards:\n  always-on: { probes: [p], window: 1m, abort-if: \"> 5\", armed: always }\n  tagged: { probes: [p], window: 1m, abort-if: \"> 5\" }\n",
            &|_| None,
        )
        .unwrap_or_else(|p| panic!("{p}"));
        let tags = vec![
            "ci".to_owned(),
            "guard:tagged".to_owned(),
            "guard:always-on".to_owned(),
        ];
        assert_eq!(armed_at_start(&tags, &platform), ["always-on", "tagged"]);
        let (needs, problems) = analyze_start(&["guard:missing".to_owned()], &platform);
        assert_eq!(needs, [Need::Probe("p".into())]);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0]
                .0
                .starts_with("tag @guard:missing: guard \"missing\" is not defined")
        );
    }
}
