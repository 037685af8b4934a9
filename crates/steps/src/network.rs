//! Network faults on the platform's Toxiproxy links: latency, a cut, dropped or reset
//! connections, limited bandwidth — and what the probes see of them.
//!
//! Each toxic gets a name unique to the drill (`firedrill-<run>-<n>-<type>-<stream>`), so its
//! undo removes exactly that toxic and never someone else's; a cut disables the proxy and its
//! undo enables it again. `analyze` checks the link and every attribute (through
//! [`ToxicSpec::validate`]) before anything runs.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use cucumber::{then, when};

use super::{Analysis, Args, Effect, Failure, Need, ResultExt, StepDoc, StepError, param};
use crate::world::Drill;
use firedrill_core::clock::format_duration;
use firedrill_core::names::FAULT_INJECTED;
use firedrill_core::names::MilestoneName;
use firedrill_engine::scenario::Change;
use firedrill_platform::Platform;
use firedrill_providers::Undo;
use firedrill_providers::toxiproxy::{
    Action, Error as ToxiproxyError, Stream, ToxicKind, ToxicSpec, ToxiproxyClient, ToxiproxyUndo,
};

/// The network steps.
pub const DOCS: &[StepDoc] = &[
    StepDoc {
        keyword: "When",
        pattern: "the link {link} has {latency} latency{jitter}{stream}",
        example: "the link \"app-to-mongo\" has 300ms latency (±50ms)",
        doc: "Adds a latency toxic to the link's Toxiproxy proxy: every chunk is delayed by {latency} ± {jitter} (jitter and the stream are optional; the stream defaults to downstream, the answers). Milestone `link {link} faulted: {what}`; the first fault of a scenario is also `fault injected`. Undo: remove exactly that toxic.",
        domain: "network",
        analyze: analyze_latency,
    },
    StepDoc {
        keyword: "When",
        pattern: "the link {link} is cut",
        example: "the link \"app-to-mongo\" is cut",
        doc: "Disables the link's proxy: its listener closes and open connections are cut, so clients get connection refused. Fails without touching anything when the proxy is already disabled. Undo: enable the proxy again.",
        domain: "network",
        analyze: analyze_cut,
    },
    StepDoc {
        keyword: "When",
        pattern: "the link {link} drops connections after {duration}{stream}",
        example: "the link \"app-to-mongo\" drops connections after 5s",
        doc: "Adds a timeout toxic: no data gets through, and each connection is closed {duration} after it opened (0s: held open forever). Undo: remove exactly that toxic.",
        domain: "network",
        analyze: analyze_timeout,
    },
    StepDoc {
        keyword: "When",
        pattern: "the link {link} resets connections{stream}",
        example: "the link \"app-to-mongo\" resets connections",
        doc: "Adds a reset_peer toxic: connections are reset (TCP RST) as soon as data arrives. Undo: remove exactly that toxic.",
        domain: "network",
        analyze: analyze_reset,
    },
    StepDoc {
        keyword: "When",
        pattern: "the link {link} is limited to {bandwidth} KB\\/s{stream}",
        example: "the link \"app-to-mongo\" is limited to 100 KB/s",
        doc: "Adds a bandwidth toxic: at most {bandwidth} KB/s (1 KB = 1000 bytes) get through. Undo: remove exactly that toxic.",
        domain: "network",
        analyze: analyze_bandwidth,
    },
    StepDoc {
        keyword: "When",
        pattern: "the link {link} is restored",
        example: "the link \"app-to-mongo\" is restored",
        doc: "Undoes every fault this scenario put on the link now (newest first) instead of at the end of the scenario; milestone `link {link} restored`, stamped when the removal was asked for, once they are gone.",
        domain: "network",
        analyze: analyze_restored,
    },
    StepDoc {
        keyword: "Then",
        pattern: "the {probe} probe gets {count} good answer(s) slower than {latency} within {duration}",
        example: "the \"storefront\" probe gets 3 good answers slower than 250ms within 2m",
        doc: "Waits until the running probe has {count} good answers that took longer than {latency} since `fault injected` (since the scenario started when there is no fault), at most {duration}: a slow link is visible to users, yet they are served.",
        domain: "network",
        analyze: analyze_slow_answers,
    },
];

/// Numbers the toxics of this process; with the run id, a name no one else uses.
static NEXT_TOXIC: AtomicU64 = AtomicU64::new(1);

/// The link's proxy, recording the needs; a problem when the platform lacks it.
fn link(a: &mut Analysis, args: &Args, platform: &Platform) -> Option<String> {
    let name = args.get("link");
    let Some(toxiproxy) = &platform.toxiproxy else {
        a.problem(
            "link",
            format!(
                "link \"{name}\" needs a Toxiproxy, but the platform has no `toxiproxy` section"
            ),
            "add toxiproxy.url and the link under toxiproxy.links",
        );
        return None;
    };
    match toxiproxy.links.get(name) {
        Some(link) => {
            a.needs.push(Need::Toxiproxy);
            a.needs.push(Need::ToxiproxyLink(name.to_owned()));
            Some(link.proxy.clone())
        }
        None => {
            a.problem(
                "link",
                format!("link \"{name}\" is not in the platform"),
                format!(
                    "known links: {}",
                    firedrill_core::diagnostic::one_of(&toxiproxy.links.keys().collect::<Vec<_>>())
                ),
            );
            None
        }
    }
}

/// Checks the toxic's attributes the way the client will before sending it; records the effect.
fn toxic(
    a: &mut Analysis,
    args: &Args,
    proxy: Option<String>,
    kind: &ToxicKind,
    what: &str,
    arg_of: fn(&str) -> &'static str,
) {
    let spec = ToxicSpec::new("firedrill-check", Stream::Downstream, kind.clone());
    if let Err(ToxiproxyError::InvalidToxic {
        attribute, hint, ..
    }) = spec.validate()
    {
        let arg = arg_of(attribute);
        // The message names what the value is to Toxiproxy, not the parameter it was read by.
        let word = match arg {
            "bandwidth" => "rate",
            "duration" => "timeout",
            other => other,
        };
        a.problem(
            arg,
            format!("{word} {} is out of range", args.get(arg)),
            hint.trim_start_matches("hint: ").to_owned(),
        );
        return;
    }
    if let Some(proxy) = proxy {
        for stream in args
            .value::<param::Streams>()
            .map(|s| s.0)
            .unwrap_or_default()
        {
            a.effects.push(Effect {
                what: format!(
                    "link \"{}\" (proxy \"{proxy}\"): {what} {stream}",
                    args.get("link")
                ),
                undo: format!(
                    "remove the toxic this drill added (firedrill-<run>-<n>-{}-{stream}) from proxy \"{proxy}\"",
                    kind.type_name()
                ),
            });
        }
    }
}

fn latency_text(latency: Duration, jitter: Duration) -> String {
    if jitter.is_zero() {
        format!("{} latency", format_duration(latency))
    } else {
        format!(
            "{} ±{} latency",
            format_duration(latency),
            format_duration(jitter)
        )
    }
}

fn analyze_latency(args: &Args, platform: &Platform) -> Analysis {
    let mut a = Analysis::default();
    let proxy = link(&mut a, args, platform);
    if let (Some(param::Latency(latency)), Some(param::Jitter(jitter))) =
        (args.value(), args.value())
    {
        let what = latency_text(latency, jitter);
        toxic(
            &mut a,
            args,
            proxy,
            &ToxicKind::latency(latency, jitter),
            &what,
            |attribute| {
                if attribute == "jitter" {
                    "jitter"
                } else {
                    "latency"
                }
            },
        );
    }
    a
}

fn analyze_cut(args: &Args, platform: &Platform) -> Analysis {
    let mut a = Analysis::default();
    if let Some(proxy) = link(&mut a, args, platform) {
        a.effects.push(Effect {
            what: format!(
                "cut link \"{}\": disable proxy \"{proxy}\"",
                args.get("link")
            ),
            undo: format!("enable proxy \"{proxy}\" again"),
        });
    }
    a
}

fn analyze_timeout(args: &Args, platform: &Platform) -> Analysis {
    let mut a = Analysis::default();
    let proxy = link(&mut a, args, platform);
    if let Some(param::Duration { value: timeout, .. }) = args.value() {
        let what = format!("connections dropped after {}", format_duration(timeout));
        toxic(
            &mut a,
            args,
            proxy,
            &ToxicKind::timeout(timeout),
            &what,
            |_| "duration",
        );
    }
    a
}

fn analyze_reset(args: &Args, platform: &Platform) -> Analysis {
    let mut a = Analysis::default();
    let proxy = link(&mut a, args, platform);
    toxic(
        &mut a,
        args,
        proxy,
        &ToxicKind::reset_peer(Duration::ZERO),
        "connections reset",
        |_| "link",
    );
    a
}

fn analyze_bandwidth(args: &Args, platform: &Platform) -> Analysis {
    let mut a = Analysis::default();
    let proxy = link(&mut a, args, platform);
    if let Some(param::Bandwidth(rate)) = args.value() {
        toxic(
            &mut a,
            args,
            proxy,
            &ToxicKind::Bandwidth {
                rate_kb_per_s: rate,
            },
            &format!("bandwidth limited to {rate} KB/s"),
            |_| "bandwidth",
        );
    }
    a
}

fn analyze_restored(args: &Args, platform: &Platform) -> Analysis {
    let mut a = Analysis::default();
    link(&mut a, args, platform);
    a
}

fn analyze_slow_answers(args: &Args, platform: &Platform) -> Analysis {
    let mut a = Analysis::default();
    let probe = args.get("probe");
    if platform.probes.contains_key(probe) {
        a.needs.push(Need::Probe(probe.to_owned()));
    } else {
        a.problem(
            "probe",
            format!("probe \"{probe}\" is not defined in the platform"),
            format!(
                "known probes: {}",
                firedrill_core::diagnostic::one_of(&platform.probes.keys().collect::<Vec<_>>())
            ),
        );
    }
    a
}

/// The Toxiproxy URL and the proxy of `link`, from the platform.
fn resolve(world: &Drill, link: &str) -> Result<(String, String), Failure> {
    let toxiproxy = world.platform().toxiproxy.as_ref().ok_or_else(|| {
        StepError::platform(
            format!(
                "link \"{link}\" needs a Toxiproxy, but the platform has no `toxiproxy` section"
            ),
            format!(
                "add toxiproxy: {{ url: <its API>, links: {{ {link}: {{ proxy: <proxy name> }} }} }} to the platform file"
            ),
        )
    })?;
    let proxy = toxiproxy
        .links
        .get(link)
        .map(|l| l.proxy.clone())
        .ok_or_else(|| {
            StepError::platform(
                format!("link \"{link}\" is not in the platform"),
                format!(
                    "known links: {}",
                    firedrill_core::diagnostic::one_of(
                        &toxiproxy.links.keys().cloned().collect::<Vec<_>>()
                    )
                ),
            )
        })?;
    Ok((toxiproxy.url.clone(), proxy))
}

/// The link's fault milestone, which the engine stamps once the first undo is on disk.
fn faulted(link: &str, what: &str) -> MilestoneName {
    MilestoneName::LinkFaulted {
        link: link.to_owned(),
        what: what.to_owned(),
    }
}

/// Adds one toxic per stream, each with its own undo in the ledger first.
async fn add_toxics(
    world: &mut Drill,
    link: &str,
    streams: Vec<Stream>,
    kind: ToxicKind,
    what: &str,
) -> Result<(), Failure> {
    let (url, proxy) = resolve(world, link)?;
    let client = ToxiproxyClient::new(&url).acting(|| format!("connect to Toxiproxy at {url}"))?;
    let specs: Vec<ToxicSpec> = streams
        .into_iter()
        .map(|stream| {
            let n = NEXT_TOXIC.fetch_add(1, Ordering::SeqCst);
            let name = format!(
                "firedrill-{}-{n}-{}-{stream}",
                world.run.run_id,
                kind.type_name()
            );
            ToxicSpec::new(name, stream, kind.clone())
        })
        .collect();
    // Every spec is checked before the first is applied: all or nothing.
    for spec in &specs {
        spec.validate()
            .acting(|| format!("add the toxic {} to link \"{link}\"", spec.name))?;
    }
    let mut milestones = vec![faulted(link, what)];
    for spec in specs {
        let undo = Undo::Toxiproxy(ToxiproxyUndo {
            link: link.to_owned(),
            proxy: proxy.clone(),
            action: Action::RemoveToxic {
                toxic: spec.name.clone(),
            },
        });
        world
            .inject(
                Change::Fault,
                &format!("link \"{link}\": {what} {}", spec.stream),
                undo,
                // Stamped with the first stream's toxic: the link is faulted from then on.
                &std::mem::take(&mut milestones),
                client.add_toxic(&proxy, &spec),
            )
            .await
            .acting(|| format!("add {what} to link \"{link}\""))?;
    }
    Ok(())
}

#[when(expr = "the link {link} has {latency} latency{jitter}{stream}")]
async fn link_has_latency(
    world: &mut Drill,
    link: param::Link,
    latency: param::Latency,
    jitter: param::Jitter,
    stream: param::Streams,
) -> Result<(), Failure> {
    let (latency, jitter) = (latency.0, jitter.0);
    let what = latency_text(latency, jitter);
    add_toxics(
        world,
        &link,
        stream.0,
        ToxicKind::latency(latency, jitter),
        &what,
    )
    .await
}

#[when(expr = "the link {link} is cut")]
async fn link_is_cut(world: &mut Drill, link: param::Link) -> Result<(), Failure> {
    let link = link.0;
    let (url, proxy) = resolve(world, &link)?;
    let client = ToxiproxyClient::new(&url).acting(|| format!("connect to Toxiproxy at {url}"))?;
    // Enabling a proxy someone else disabled would be undoing their change, not ours.
    let current = client
        .proxy(&proxy)
        .await
        .acting(|| format!("read proxy \"{proxy}\" of link \"{link}\""))?;
    if !current.enabled {
        return Err(StepError::unmet(
            format!("proxy \"{proxy}\" of link \"{link}\" to be enabled before the cut"),
            "it is already disabled by someone else, so this drill leaves it alone",
            "enable it, or find out who cut it",
        ));
    }
    let undo = Undo::Toxiproxy(ToxiproxyUndo {
        link: link.clone(),
        proxy: proxy.clone(),
        action: Action::Enable,
    });
    world
        .inject(
            Change::Fault,
            &format!("link \"{link}\": cut (proxy \"{proxy}\" disabled)"),
            undo,
            &[faulted(&link, "cut")],
            client.set_enabled(&proxy, false),
        )
        .await
        .acting(|| format!("cut link \"{link}\""))?;
    Ok(())
}

#[when(expr = "the link {link} drops connections after {duration}{stream}")]
async fn link_drops_connections(
    world: &mut Drill,
    link: param::Link,
    timeout: param::Duration,
    stream: param::Streams,
) -> Result<(), Failure> {
    let timeout = timeout.value;
    let what = format!("connections dropped after {}", format_duration(timeout));
    add_toxics(world, &link, stream.0, ToxicKind::timeout(timeout), &what).await
}

#[when(expr = "the link {link} resets connections{stream}")]
async fn link_resets_connections(
    world: &mut Drill,
    link: param::Link,
    stream: param::Streams,
) -> Result<(), Failure> {
    add_toxics(
        world,
        &link,
        stream.0,
        ToxicKind::reset_peer(Duration::ZERO),
        "connections reset",
    )
    .await
}

#[when(expr = "the link {link} is limited to {bandwidth} KB\\/s{stream}")]
async fn link_is_limited(
    world: &mut Drill,
    link: param::Link,
    rate: param::Bandwidth,
    stream: param::Streams,
) -> Result<(), Failure> {
    let rate = rate.0;
    let what = format!("bandwidth limited to {rate} KB/s");
    add_toxics(
        world,
        &link,
        stream.0,
        ToxicKind::Bandwidth {
            rate_kb_per_s: rate,
        },
        &what,
    )
    .await
}

#[when(expr = "the link {link} is restored")]
async fn link_is_restored(world: &mut Drill, link: param::Link) -> Result<(), Failure> {
    let link = link.0;
    let ids: Vec<String> = world
        .faults
        .iter()
        .rev()
        .filter(|f| !world.undone.contains(&f.id))
        .filter(|f| matches!(&f.undo, Undo::Toxiproxy(u) if u.link == link))
        .map(|f| f.id.clone())
        .collect();
    if ids.is_empty() {
        return Err(StepError::precondition(
            format!(
                "link \"{link}\" has no fault from this scenario, so there is nothing to restore"
            ),
            format!(
                "add a fault of the link before this step, e.g. `When the link \"{link}\" is cut`"
            ),
        ));
    }
    // Stamped when the removal is asked for: the server applies it at once, the read-back
    // that confirms it comes after, and probes may see the link whole before that.
    let at = world.clock().now();
    for id in ids {
        world
            .undo_now(&id)
            .await
            .acting(|| format!("restore link \"{link}\""))?;
    }
    world.milestone(MilestoneName::LinkRestored(link), at, "toxiproxy");
    Ok(())
}

#[then(
    expr = "the {probe} probe gets {count} good answer(s) slower than {latency} within {duration}"
)]
async fn slow_answers_within(
    world: &mut Drill,
    probe: param::Probe,
    count: param::Count,
    latency: param::Latency,
    within: param::Duration,
) -> Result<(), Failure> {
    let (probe, count, slower, within) = (probe.0, count.0, latency.0, within.value);
    let since = world.timeline().first(FAULT_INJECTED).map(|m| m.at);
    let mut answers = world.start_probe(&probe)?.subscribe();
    let clock = world.clock();
    let deadline = clock.now().plus(within);
    loop {
        let (seen, last) = {
            let state = answers.borrow_and_update();
            let seen = state
                .history
                .iter()
                .filter(|o| o.good && o.latency > slower && since.is_none_or(|s| o.at >= s))
                .count();
            (seen, state.last.clone())
        };
        if seen >= count {
            return Ok(());
        }
        match clock.timeout_at(deadline, answers.changed()).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) | Err(_) => {
                return Err(StepError::Timeout {
                    awaited: format!(
                        "probe \"{probe}\" to get {count} good answer(s) slower than {}",
                        format_duration(slower)
                    ),
                    within: format_duration(within),
                    seen: format!(
                        "it got {seen}; last: {}",
                        last.map_or_else(
                            || "no answer".to_owned(),
                            |o| format!(
                                "{} after {}",
                                o.status
                                    .map_or_else(|| o.error.unwrap_or_default(), |s| s.to_string()),
                                format_duration(o.latency)
                            )
                        )
                    ),
                    hint: "is the fault on the link this probe goes through?".into(),
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Catalog, Matched, step};
    use super::*;
    use crate::testing::fault_milestone_follows_the_ledger;

    #[tokio::test]
    async fn a_link_is_faulted_once_the_toxics_undo_is_on_disk_and_never_otherwise() {
        for name in ["link l faulted: 300ms latency", "fault injected"] {
            fault_milestone_follows_the_ledger(name, |w| {
                Box::pin(link_has_latency(
                    w,
                    param::Link("l".into()),
                    param::Latency(Duration::from_millis(300)),
                    param::Jitter(Duration::ZERO),
                    param::Streams(vec![Stream::Downstream]),
                ))
            })
            .await;
        }
    }

    fn analyze(text: &str) -> Analysis {
        let platform = firedrill_platform::load_str(
            std::path::Path::new("t.yaml"),
            "name: t\nregions:\n  a: { role: primary }\n  b: { role: failover }\ntoxiproxy:\n  url: http://127.0.0.1:8474\n  links:\n    l: { proxy: p }\n    m: { proxy: q }\n",
            &|_| None,
        )
        .unwrap_or_else(|p| panic!("platform: {p}"));
        let catalog = Catalog::build().expect("catalog");
        match catalog.matched(&step("When", text)) {
            Matched::One { doc, args } => doc.analysis(&args, &platform),
            other => panic!("{text}: {other:?}"),
        }
    }

    #[test]
    fn both_streams_are_two_toxics_each_with_its_undo_and_the_link_is_needed() {
        let a = analyze("the link \"l\" has 300ms latency (±50ms) both");
        assert!(a.problems.is_empty(), "{:?}", a.problems);
        assert_eq!(
            a.effects
                .iter()
                .map(|e| e.what.as_str())
                .collect::<Vec<_>>(),
            [
                "link \"l\" (proxy \"p\"): 300ms ±50ms latency upstream",
                "link \"l\" (proxy \"p\"): 300ms ±50ms latency downstream"
            ]
        );
        assert_eq!(a.needs, [Need::Toxiproxy, Need::ToxiproxyLink("l".into())]);
    }

    #[test]
    fn unknown_links_and_absurd_values_are_problems_at_their_argument() {
        let problem = |text: &str| {
            let a = analyze(text);
            assert_eq!(a.problems.len(), 1, "{text}: {:?}", a.problems);
            assert!(a.effects.is_empty(), "{text}: {:?}", a.effects);
            (
                a.problems[0].arg,
                a.problems[0].message.clone(),
                a.problems[0].hint.clone(),
            )
        };
        let (arg, message, hint) = problem("the link \"x\" is cut");
        assert_eq!(arg, "link");
        assert!(
            message.contains("\"x\" is not in the platform"),
            "{message}"
        );
        assert_eq!(hint, "known links: \"l\" or \"m\"");
        assert_eq!(problem("the link \"l\" has 61m latency").0, "latency");
        assert_eq!(problem("the link \"l\" has -1s latency").0, "latency");
        assert_eq!(problem("the link \"l\" has 1s latency (±2s)").0, "jitter");
        let (arg, message, _) = problem("the link \"l\" is limited to 0 KB/s");
        assert_eq!(
            (arg, message.as_str()),
            ("bandwidth", "rate 0 is out of range")
        );
        assert_eq!(
            problem("the link \"l\" is limited to -5 KB/s upstream").0,
            "bandwidth"
        );
        assert_eq!(
            problem("the link \"l\" drops connections after 2h").0,
            "duration"
        );
    }
}
