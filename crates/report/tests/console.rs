//! The console's lines for a fixed event sequence, against a golden file.
//!
//! The sequence is delivered the way a run delivers it, out of order: cucumber's step events
//! after what the steps' code emitted meanwhile, milestones dated before they were recorded,
//! two probes stamping the same milestone, a phase judged by two steps, the undos of the
//! scenario's end before its last step's line. Times are the sequence's own (no clock), so the
//! file needs no normalising.

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use firedrill_core::clock::PlatformTime;
use firedrill_core::observed::{Finished, Observation, ProbeState};
use firedrill_core::target::Target;
use firedrill_core::timeline::{Milestone, Phase};
use firedrill_engine::events::{Event, Sink, StepOutcome};
use firedrill_report::console::{Console, LogFormat};

#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Buffer {
    /// What was written so far.
    fn text(&self) -> String {
        let bytes = self.0.lock().map(|b| b.clone()).unwrap_or_default();
        String::from_utf8(bytes).expect("utf-8")
    }
}

impl Write for Buffer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .map_err(|_| std::io::Error::other("poisoned"))?
            .extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn at(ms: u64) -> PlatformTime {
    PlatformTime::from_offset(Duration::from_millis(ms))
}

/// The scenario starts 12 minutes into the run: every `T+` counts from there.
const START: u64 = 720_000;

fn t(ms: u64) -> PlatformTime {
    at(START + ms)
}

fn step(keyword: &str, text: &str, ms: u64) -> Event {
    Event::StepFinished {
        keyword: keyword.into(),
        text: text.into(),
        outcome: StepOutcome::Passed,
        at: t(ms),
    }
}

fn started(keyword: &str, text: &str, ms: u64) -> Event {
    Event::StepStarted {
        keyword: keyword.into(),
        text: text.into(),
        at: t(ms),
    }
}

fn milestone(name: &str, ms: u64, source: &str) -> Event {
    Event::Milestone(Milestone {
        name: name.into(),
        at: t(ms),
        source: source.into(),
    })
}

fn phase(name: &str, from: (&str, u64), to: (&str, u64), target: &str) -> Event {
    let target: Target = target.parse().expect("target");
    Event::PhaseMeasured(Phase {
        name: name.into(),
        from: from.0.into(),
        to: to.0.into(),
        start: t(from.1),
        end: Some(t(to.1)),
        verdict: Some(target.judge(Duration::from_millis(to.1 - from.1))),
    })
}

fn answers(good: &[(u64, &str)], bad: &[u64]) -> Box<ProbeState> {
    let mut history: Vec<Observation> = good
        .iter()
        .map(|(ms, region)| Observation {
            at: t(*ms),
            good: true,
            status: Some(200),
            region: Some((*region).into()),
            latency: Duration::from_millis(120),
            error: None,
        })
        .chain(bad.iter().map(|ms| Observation {
            at: t(*ms),
            good: false,
            status: None,
            region: None,
            latency: Duration::from_secs(2),
            error: Some("connection refused".into()),
        }))
        .collect();
    history.sort_by_key(|o| o.at);
    Box::new(ProbeState {
        good: good.len() as u64,
        bad: bad.len() as u64,
        last: history.last().cloned(),
        streak: None,
        history,
    })
}

/// `(when the console reads the clock, the event)`, in the order a run delivers them.
fn sequence() -> Vec<(u64, Event)> {
    let region = "region-dark us-west1: scale 3 services to 0";
    let link = "link \"front-door-to-us-west1\": cut (proxy \"front-door-to-us-west1\" disabled)";
    vec![
        (
            0,
            Event::RunStarted {
                run: "r-1".into(),
                platform: "embedded".into(),
                time_scale: 200.0,
                wall_start: "2026-12-04T21:50:00Z".into(),
            },
        ),
        (
            0,
            Event::ScenarioStarted {
                feature: "Quarterly regional failover".into(),
                scenario: "us-west1 goes dark".into(),
                tags: vec!["quarterly".into()],
                at: t(0),
            },
        ),
        // The traffic probe starts with the scenario; its first answers come before the
        // first step's line.
        (
            300,
            milestone("first good answer from us-west1", 250, "front-door"),
        ),
        (400, started("Given", "the platform is healthy", 100)),
        // The next step's code runs before cucumber delivers this step's end.
        (
            2_000,
            Event::FaultInjected {
                id: "r-1/1".into(),
                fault: region.into(),
                undo: "scale back".into(),
                at: t(2_000),
            },
        ),
        (2_000, milestone("fault injected", 2_000, "engine")),
        (2_001, step("Given", "the platform is healthy", 1_500)),
        (
            2_002,
            started("When", "region \"us-west1\" goes dark", 1_600),
        ),
        // Recorded by this step, dated from the first answer of the streak it judged.
        (
            2_040,
            milestone("service answers from us-west1", 250, "front-door"),
        ),
        (2_100, step("When", "region \"us-west1\" goes dark", 2_050)),
        (
            2_200,
            started("Then", "the outage is detected within 2m", 2_150),
        ),
        (
            2_300,
            Event::Waiting {
                what: "the outage to be detected".into(),
                since: t(2_000),
                deadline: t(122_000),
            },
        ),
        // Two probes stamp the same milestone; the later observation is recorded first.
        (
            15_000,
            milestone("first bad answer", 14_900, "prod-1-orders"),
        ),
        (15_001, milestone("first bad answer", 14_200, "front-door")),
        (15_002, milestone("outage detected", 14_200, "front-door")),
        (
            15_003,
            phase(
                "detection",
                ("fault injected", 2_000),
                ("outage detected", 14_200),
                "within 2m",
            ),
        ),
        (
            15_100,
            step("Then", "the outage is detected within 2m", 15_050),
        ),
        // The link's undo is logged when it acted, the milestone (stamped when the removal
        // was asked for) only once the step saw it done.
        (
            20_000,
            Event::FaultInjected {
                id: "r-1/2".into(),
                fault: link.into(),
                undo: "enable the proxy".into(),
                at: t(20_000),
            },
        ),
        (
            20_001,
            step("When", "the link \"front-door-to-us-west1\" is cut", 20_000),
        ),
        (
            30_500,
            Event::FaultUndone {
                id: "r-1/2".into(),
                fault: link.into(),
                at: t(30_400),
                error: None,
            },
        ),
        (
            30_600,
            milestone("first good answer from us-west1", 30_550, "prod-1-orders"),
        ),
        (
            30_700,
            milestone("link front-door-to-us-west1 restored", 30_100, "toxiproxy"),
        ),
        (
            30_800,
            step(
                "When",
                "the link \"front-door-to-us-west1\" is restored",
                30_750,
            ),
        ),
        // One phase judged by two steps against two targets, then again against the first.
        (
            31_000,
            phase(
                "detection",
                ("fault injected", 2_000),
                ("outage detected", 14_200),
                "within 1m",
            ),
        ),
        (
            31_001,
            step("Then", "the detection time is within its target", 31_000),
        ),
        (
            31_100,
            phase(
                "detection",
                ("fault injected", 2_000),
                ("outage detected", 14_200),
                "within 2m",
            ),
        ),
        (
            31_101,
            step("And", "the detection time is within 2m", 31_100),
        ),
        (
            32_000,
            Event::CommandFinished(Finished {
                argv: vec!["terraform".into(), "apply".into()],
                exit_code: Some(0),
                stdout: String::new(),
                stderr: String::new(),
                started: t(31_200),
                finished: t(31_900),
            }),
        ),
        // The scenario's end: its undo, its probes and the platform's ground truth come
        // before cucumber delivers its last step.
        (
            40_000,
            Event::FaultUndone {
                id: "r-1/1".into(),
                fault: region.into(),
                at: t(39_900),
                error: None,
            },
        ),
        (
            40_100,
            Event::ProbeStopped {
                probe: "front-door".into(),
                state: answers(&[(250, "us-west1"), (30_550, "us-west1")], &[14_200]),
            },
        ),
        (
            40_101,
            Event::ProbeStopped {
                probe: "prod-1-orders".into(),
                state: answers(&[], &[]),
            },
        ),
        (
            40_200,
            milestone("ground truth: us-west1 down", 2_100, "embedded platform"),
        ),
        (
            40_300,
            step("When", "traffic is switched to \"us-west2\"", 32_100),
        ),
        (
            40_400,
            Event::ScenarioFinished {
                feature: "Quarterly regional failover".into(),
                scenario: "us-west1 goes dark".into(),
                passed: true,
                at: t(40_300),
            },
        ),
    ]
}

/// A text console writing to a buffer, its clock set by the events fed to it.
struct Screen {
    buffer: Buffer,
    clock: Arc<AtomicU64>,
    console: Console,
}

impl Screen {
    fn new() -> Self {
        let buffer = Buffer::default();
        let clock = Arc::new(AtomicU64::new(0));
        let now = Arc::clone(&clock);
        let console = Console::with_output(
            LogFormat::Text,
            Box::new(buffer.clone()),
            Box::new(move || t(now.load(Ordering::SeqCst))),
        );
        Self {
            buffer,
            clock,
            console,
        }
    }

    /// Hands each event to the console with the clock at its millisecond.
    fn feed(&mut self, events: impl IntoIterator<Item = (u64, Event)>) {
        for (ms, event) in events {
            self.clock.store(ms, Ordering::SeqCst);
            self.console.handle(&event);
        }
    }

    fn printed(&self) -> String {
        self.buffer.text()
    }

    /// What the console printed once dropped (its last lines flushed).
    fn finish(self) -> String {
        let Self {
            buffer, console, ..
        } = self;
        drop(console);
        buffer.text()
    }
}

fn render() -> String {
    let mut screen = Screen::new();
    screen.feed(sequence());
    screen.finish()
}

#[test]
fn the_console_of_a_fixed_event_sequence_matches_the_golden_file() {
    let text = render();
    let golden = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/console.txt");
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(golden.parent().expect("parent")).expect("golden dir");
        std::fs::write(&golden, &text).expect("write golden");
    }
    let expected = std::fs::read_to_string(&golden)
        .expect("tests/golden/console.txt (UPDATE_GOLDEN=1 writes it)");
    assert!(
        text == expected,
        "the console changed; review it and run with UPDATE_GOLDEN=1 to accept:\n{text}"
    );
}

/// `T+` of a detail line, in milliseconds (`T+1m 2.5s`, `T+120ms`).
fn stamp(line: &str) -> Option<u64> {
    let rest = line.trim_start().split_once("T+")?.1;
    let mut total = 0.0;
    let mut any = false;
    for word in rest.split(' ') {
        let (number, unit) = match word.find(|c: char| !c.is_ascii_digit() && c != '.') {
            Some(i) => word.split_at(i),
            None => break,
        };
        let Ok(value) = number.parse::<f64>() else {
            break;
        };
        total += value
            * match unit {
                "ms" => 1.0,
                "s" => 1_000.0,
                "m" => 60_000.0,
                "h" => 3_600_000.0,
                _ => break,
            };
        any = true;
    }
    any.then_some(total.round() as u64)
}

#[test]
fn each_step_prints_after_what_it_caused_and_before_the_verdict_in_time_order() {
    let text = render();
    let lines: Vec<&str> = text.lines().collect();
    let verdict = lines
        .iter()
        .position(|l| *l == "  PASSED")
        .expect("verdict");
    assert_eq!(
        verdict,
        lines.len() - 1,
        "nothing after the verdict:\n{text}"
    );
    let scenario = lines
        .iter()
        .position(|l| l.starts_with("  Scenario: "))
        .expect("scenario");
    assert!(
        lines[scenario].contains("T+ is platform time since the scenario started"),
        "{text}"
    );
    // Between two step lines (and before the verdict), the timed lines read in time order;
    // every one before a step's line is no later than that step's end.
    let mut block: Vec<u64> = Vec::new();
    for line in &lines[scenario + 1..] {
        if line.starts_with("    ✔") || *line == "  PASSED" {
            assert!(block.windows(2).all(|w| w[0] <= w[1]), "{block:?}\n{text}");
            block.clear();
        } else if let Some(ms) = stamp(line) {
            block.push(ms);
        }
    }
    let position = |needle: &str| {
        lines
            .iter()
            .position(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no line with {needle}:\n{text}"))
    };
    assert!(position("✔ Given the platform is healthy") < position("injected: region-dark"));
    assert!(
        position("✔ Given the platform is healthy") < position("service answers from us-west1")
    );
    assert!(position("service answers from us-west1") < position("injected: region-dark"));
    assert!(position("restored — toxiproxy") < position("undone: link"));
    assert!(
        position("undone: link")
            < position("✔ When the link \"front-door-to-us-west1\" is restored")
    );
    assert!(position("✔ When traffic is switched") < position("undone: region-dark"));
    assert!(position("✔ When traffic is switched") < position("ground truth: us-west1 down"));
    assert!(
        position("T+2s fault injected") > 0,
        "scenario time:\n{text}"
    );
    // Two probes, one milestone: each line names its probe.
    assert!(
        position("T+14.2s first bad answer — front-door")
            < position("T+14.9s first bad answer — prod-1-orders")
    );
    assert_eq!(text.matches("⏱ detection: met").count(), 1, "{text}");
    assert_eq!(text.matches("⏱ detection (the same").count(), 1, "{text}");
    assert!(!text.contains("0 good, 0 bad"), "{text}");
}

#[test]
fn a_long_step_prints_what_it_sees_once_settled_in_time_order_before_it_ends() {
    let mut screen = Screen::new();
    let wait = "the failover pods in \"us-west2\" are ready within 15m";
    let events = [
        (
            0,
            Event::ScenarioStarted {
                feature: "f".into(),
                scenario: "s".into(),
                tags: vec![],
                at: t(0),
            },
        ),
        (10, started("Then", wait, 10)),
        (
            10_100,
            milestone("first failover pod ready", 10_000, "kube-watch"),
        ),
        (
            10_200,
            milestone(
                "first failover pod ready (API transition time)",
                9_500,
                "kube-api",
            ),
        ),
        (
            16_000,
            milestone("writes available again", 16_000, "write checker prod-1"),
        ),
    ];
    screen.feed(events);
    let during = screen.printed();
    assert!(!during.contains("✔"), "{during}");
    let api = during
        .find("T+9.5s first failover pod ready (API")
        .expect(&during);
    let watch = during
        .find("T+10s first failover pod ready — kube")
        .expect(&during);
    assert!(api < watch, "settled lines print sorted:\n{during}");
    assert!(
        !during.contains("writes available"),
        "not settled yet:\n{during}"
    );
    screen.feed([
        (
            16_100,
            milestone("failover pods ready", 12_000, "kube-watch"),
        ),
        (20_000, step("Then", wait, 20_000)),
    ]);
    let after = screen.printed();
    let lines: Vec<&str> = after.lines().collect();
    let tail: Vec<&str> = lines[lines.len() - 3..].to_vec();
    assert_eq!(
        tail,
        [
            "      ◆ T+12s failover pods ready — kube-watch",
            "      ◆ T+16s writes available again — write checker prod-1",
            &format!("    ✔ Then {wait}"),
        ],
        "{after}"
    );
}
