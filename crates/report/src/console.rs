//! The console: what an SRE watching a drill sees.
//!
//! Plain lines everywhere; on a TTY also a live line with the current wait, its elapsed
//! platform time and its deadline (a drill can take 25 minutes). `--log-format json` prints
//! every event as one JSON line instead, for machines.
//!
//! The lines of a scenario read in platform-time order, each step's line after what it caused.
//! Events do not arrive in that order: cucumber delivers a step's own events after what the
//! step's code emitted meanwhile, and a milestone is dated when a probe observed it, which may
//! be before it is recorded (a streak of good answers is dated from its first). So the console
//! holds a scenario's lines; when a step's end arrives (dated by cucumber), it prints the held
//! lines emitted before that end, sorted by their own time, then the step's line. While a long
//! step runs, its lines print once settled (see [`SETTLE`]). What the scenario's end emitted (its undo, its probes' final counts, the platform's ground truth) is
//! printed the same way before the verdict. Times are `T+` since the scenario started, as in
//! the HTML report.

use std::io::Write;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use firedrill_core::clock::{Clock, PlatformTime, format_duration};
use firedrill_core::timeline::Phase;
use firedrill_engine::events::{Event, Sink, StepOutcome};

/// Output style.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Lines for people.
    Text,
    /// One JSON object per event.
    Json,
}

/// The current platform instant, as the console reads it (the run's clock; a test's own).
pub type Now = Box<dyn Fn() -> PlatformTime + Send>;

/// How long, at least, a held line waits for lines dated before it (two probes' answers
/// recorded out of order, a streak dated from its first answer) before it is printed while its
/// step still runs: platform time. A line dated further back than the window prints after
/// later ones.
pub const SETTLE: Duration = Duration::from_secs(5);

/// The window's floor in wall time: what firedrill's own work takes (a restored link is
/// stamped when asked for, and recorded once its undo is read back) is wall time, which
/// compressed time multiplies.
pub const SETTLE_WALL: Duration = Duration::from_secs(1);

/// Writes events to standard output (or, for tests, any writer).
pub struct Console {
    format: LogFormat,
    output: Arc<Mutex<Output>>,
    live: Option<Live>,
    now: Now,
    /// Where `T+` counts from: the start of the scenario running (or that ran last).
    origin: PlatformTime,
    /// Stops the thread that prints settled lines while a long step runs.
    ticking: Option<Arc<std::sync::atomic::AtomicBool>>,
}

/// Where lines go, and the lines held for their place: shared with the thread that prints
/// settled lines during a long step.
struct Output {
    out: Box<dyn Write + Send>,
    /// How long a line is held for earlier ones while its step runs (platform time).
    settle: Duration,
    live: Option<Arc<Mutex<LiveState>>>,
    /// The running scenario's lines not printed yet.
    held: Option<Held>,
}

impl Output {
    fn print(&mut self, text: &str) {
        let bar = self
            .live
            .as_ref()
            .and_then(|l| l.lock().unwrap_or_else(PoisonError::into_inner).bar.clone());
        match bar {
            Some(bar) => bar.println(text),
            None => {
                let _ = writeln!(self.out, "{text}");
                let _ = self.out.flush();
            }
        }
    }

    /// Prints the held lines emitted up to a step's end `until` (all without it).
    fn flush(&mut self, until: Option<PlatformTime>) {
        let lines = self
            .held
            .as_mut()
            .map(|h| h.take(until))
            .unwrap_or_default();
        for line in lines {
            self.print(&line);
        }
    }

    /// Prints the lines of the running step that have settled by `now`.
    fn release(&mut self, now: PlatformTime) {
        let lines = self
            .held
            .as_mut()
            .map(|h| h.settled(now, self.settle))
            .unwrap_or_default();
        for line in lines {
            self.print(&line);
        }
    }
}

/// A scenario's lines waiting for their place in time, and what it printed already.
#[derive(Default)]
struct Held {
    lines: Vec<Line>,
    next: u64,
    /// The start of the step running now, once cucumber delivered it (so the step before has
    /// printed its line): its lines may print before it ends, once settled.
    step: Option<PlatformTime>,
    /// Phases printed: name, start, end and the targets they were judged against.
    phases: Vec<(String, PlatformTime, Option<PlatformTime>, Vec<String>)>,
}

/// A line: when it was emitted (which step's doing it is), its place on the timeline, and
/// `seq` for the arrival order of equal instants.
struct Line {
    emitted: PlatformTime,
    at: PlatformTime,
    seq: u64,
    text: String,
}

impl Held {
    fn push(&mut self, emitted: PlatformTime, at: PlatformTime, text: String) {
        self.lines.push(Line {
            emitted,
            at,
            seq: self.next,
            text,
        });
        self.next += 1;
    }

    /// The held lines emitted by a step that ended at `until` (all without it), in time
    /// order.
    fn take(&mut self, until: Option<PlatformTime>) -> Vec<String> {
        let (mut due, kept): (Vec<Line>, Vec<Line>) = std::mem::take(&mut self.lines)
            .into_iter()
            .partition(|l| until.is_none_or(|u| l.emitted <= u));
        self.lines = kept;
        due.sort_by_key(|l| (l.at, l.seq));
        due.into_iter().map(|l| l.text).collect()
    }

    /// The held lines the running step emitted that are dated `settle` or more before
    /// `now`, in time order.
    fn settled(&mut self, now: PlatformTime, settle: Duration) -> Vec<String> {
        let Some(step) = self.step else {
            return Vec::new();
        };
        let (mut due, kept): (Vec<Line>, Vec<Line>) = std::mem::take(&mut self.lines)
            .into_iter()
            .partition(|l| l.emitted >= step && l.at.plus(settle) <= now);
        self.lines = kept;
        due.sort_by_key(|l| (l.at, l.seq));
        due.into_iter().map(|l| l.text).collect()
    }

    /// The line of a measured phase, or `None` when the same judgement was printed already. A
    /// phase a second step judges against another target prints only that judgement.
    fn phase_line(&mut self, p: &Phase, rel: impl Fn(PlatformTime) -> String) -> Option<String> {
        let target = p.verdict.map(|v| v.target.to_string()).unwrap_or_default();
        let seen = self
            .phases
            .iter_mut()
            .find(|(name, start, end, _)| *name == p.name && *start == p.start && *end == p.end);
        let text = match (seen, &p.verdict) {
            (Some((.., targets)), _) if targets.contains(&target) => return None,
            (Some((.., targets)), Some(v)) => {
                targets.push(target);
                format!(
                    "      ⏱ {} (the same {}) against target {}: {} ({})",
                    p.name,
                    format_duration(v.measured),
                    v.target,
                    if v.passed { "met" } else { "MISSED" },
                    v.margin()
                )
            }
            (seen, verdict) => {
                if seen.is_none() {
                    self.phases
                        .push((p.name.clone(), p.start, p.end, vec![target]));
                }
                match verdict {
                    Some(v) => format!("      ⏱ {}: {v}", p.name),
                    None => format!(
                        "      ⏱ {}: never ended (started {} at {})",
                        p.name,
                        p.from,
                        rel(p.start)
                    ),
                }
            }
        };
        Some(text)
    }
}

/// What the live line shows: the wait in progress.
#[derive(Clone, Debug, PartialEq)]
struct Wait {
    what: String,
    since: PlatformTime,
    deadline: PlatformTime,
    /// When the console heard of it: a step that ended before this did not start it.
    announced: PlatformTime,
}

/// The live line's text at `now`: `None` once the deadline passed (the step is failing, not
/// waiting; its line says so next).
fn live_text(wait: &Wait, now: PlatformTime) -> Option<String> {
    (now < wait.deadline).then(|| {
        format!(
            "waiting for {}: {} of {}",
            wait.what,
            format_duration(now.saturating_since(wait.since)),
            format_duration(wait.deadline.saturating_since(wait.since))
        )
    })
}

/// The refreshing line under the printed ones: shown only while a wait is in progress, and
/// gone (not left behind) once it ends, its step or scenario ends, or its deadline passes.
struct Live {
    state: Arc<Mutex<LiveState>>,
}

struct LiveState {
    wait: Option<Wait>,
    bar: Option<ProgressBar>,
    target: fn() -> ProgressDrawTarget,
    ended: bool,
}

impl LiveState {
    fn clear(&mut self) {
        self.wait = None;
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }

    /// Shows the wait as of `now`, or clears the line.
    fn refresh(&mut self, now: PlatformTime) {
        match self.wait.as_ref().and_then(|w| live_text(w, now)) {
            Some(text) => {
                let target = self.target;
                let bar = self.bar.get_or_insert_with(|| {
                    let bar = ProgressBar::with_draw_target(None, target());
                    bar.set_style(
                        ProgressStyle::with_template("  {spinner} {msg}")
                            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                    );
                    bar.enable_steady_tick(Duration::from_millis(120));
                    bar
                });
                bar.set_message(text);
            }
            None => self.clear(),
        }
    }
}

impl Live {
    fn start(clock: Clock, target: fn() -> ProgressDrawTarget) -> Self {
        let state = Arc::new(Mutex::new(LiveState {
            wait: None,
            bar: None,
            target,
            ended: false,
        }));
        let shared = Arc::clone(&state);
        // Elapsed is platform time, which indicatif cannot know: refresh it ourselves.
        std::thread::spawn(move || {
            loop {
                {
                    let mut state = shared.lock().unwrap_or_else(PoisonError::into_inner);
                    if state.ended {
                        break;
                    }
                    state.refresh(clock.now());
                }
                std::thread::sleep(Duration::from_millis(200));
            }
        });
        Self { state }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LiveState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Console {
    /// A console on standard output; `live` adds the refreshing wait line (use it on a TTY
    /// only).
    #[must_use]
    pub fn new(format: LogFormat, live: bool, clock: Clock) -> Self {
        let mut console = Self::with_output(
            format,
            Box::new(std::io::stdout()),
            Box::new(move || clock.now()),
        );
        // On stdout, where the lines go: indicatif's default (stderr) hides every line when
        // only stderr is redirected.
        console.lock().settle = SETTLE.max(clock.to_platform(SETTLE_WALL));
        if live && format == LogFormat::Text {
            let live = Live::start(clock, ProgressDrawTarget::stdout);
            console.lock().live = Some(Arc::clone(&live.state));
            console.live = Some(live);
        }
        if format == LogFormat::Text {
            // A step can wait 25 minutes: what it sees meanwhile prints once settled.
            let ticking = Arc::new(std::sync::atomic::AtomicBool::new(true));
            let (running, output) = (Arc::clone(&ticking), Arc::clone(&console.output));
            std::thread::spawn(move || {
                while running.load(std::sync::atomic::Ordering::SeqCst) {
                    output
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .release(clock.now());
                    std::thread::sleep(Duration::from_millis(100));
                }
            });
            console.ticking = Some(ticking);
        }
        console
    }

    /// A console writing to `out`, without a live line; `now` dates the events that carry no
    /// time of their own (a phase's verdict, a probe's final counts), and settles the held
    /// lines of a running step after [`SETTLE`] (at each event: no thread).
    #[must_use]
    pub fn with_output(format: LogFormat, out: Box<dyn Write + Send>, now: Now) -> Self {
        Self {
            format,
            output: Arc::new(Mutex::new(Output {
                out,
                settle: SETTLE,
                live: None,
                held: None,
            })),
            live: None,
            now,
            origin: PlatformTime::ZERO,
            ticking: None,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Output> {
        self.output.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn rel(&self, t: PlatformTime) -> String {
        rel(t, self.origin)
    }

    fn print(&mut self, text: &str) {
        self.lock().print(text);
    }

    /// Prints the held lines up to `until` (all without it).
    fn flush(&mut self, until: Option<PlatformTime>) {
        self.lock().flush(until);
    }

    /// Holds `text`, emitted now and dated `at`, in the running scenario, or prints it when
    /// none runs.
    fn at(&mut self, at: PlatformTime, text: String) {
        let now = (self.now)();
        let mut output = self.lock();
        match output.held.as_mut() {
            Some(held) => held.push(now, at, text),
            None => output.print(&text),
        }
    }

    fn clear_wait(&self, step_ended: Option<PlatformTime>) {
        if let Some(live) = &self.live {
            let mut state = live.lock();
            let started_by_it = match (&state.wait, step_ended) {
                (Some(w), Some(end)) => w.announced <= end,
                _ => true,
            };
            if started_by_it {
                state.clear();
            }
        }
    }

    fn text(&mut self, event: &Event) {
        let now = (self.now)();
        match event {
            Event::RunStarted {
                run,
                platform,
                time_scale,
                ..
            } => {
                let scale = if *time_scale == 1.0 {
                    String::new()
                } else {
                    format!(", time compressed {time_scale}x (durations are platform time)")
                };
                self.print(&format!(
                    "firedrill run {run} on platform \"{platform}\"{scale}"
                ));
            }
            Event::ScenarioStarted {
                feature,
                scenario,
                at,
                ..
            } => {
                self.flush(None);
                self.origin = *at;
                self.lock().held = Some(Held::default());
                self.print(&format!(
                    "\n{feature}\n  Scenario: {scenario}  (T+ is platform time since the scenario started)"
                ));
            }
            Event::StepStarted { at, .. } => {
                if let Some(held) = self.lock().held.as_mut() {
                    held.step = Some(*at);
                }
            }
            Event::StepFinished {
                keyword,
                text,
                outcome,
                at,
            } => {
                self.clear_wait(Some(*at));
                self.flush(Some(*at));
                if let Some(held) = self.lock().held.as_mut() {
                    held.step = None;
                }
                let line = match outcome {
                    StepOutcome::Passed => format!("    ✔ {keyword} {text}"),
                    StepOutcome::Skipped => format!("    - {keyword} {text} (skipped)"),
                    StepOutcome::Failed(why) => format!("    ✘ {keyword} {text}\n        {why}"),
                };
                self.print(&line);
            }
            Event::Milestone(m) => {
                let by = if m.source == "engine" {
                    String::new()
                } else {
                    format!(" — {}", m.source)
                };
                let line = format!("      ◆ {} {}{by}", self.rel(m.at), m.name);
                self.at(m.at, line);
            }
            Event::Waiting {
                what,
                since,
                deadline,
            } => {
                if let Some(live) = &self.live {
                    let mut state = live.lock();
                    state.wait = Some(Wait {
                        what: what.clone(),
                        since: *since,
                        deadline: *deadline,
                        announced: now,
                    });
                    state.refresh(now);
                }
            }
            Event::FaultInjected { fault, at, .. } => {
                let line = format!("      ⚡ {} injected: {fault}", self.rel(*at));
                self.at(*at, line);
            }
            Event::FaultUndone {
                fault, at, error, ..
            } => {
                let line = match error {
                    None => format!("      ↺ {} undone: {fault}", self.rel(*at)),
                    Some(e) => format!(
                        "      ‼ {} UNDO FAILED: {fault}: {e}\n        run `firedrill recover` once the cause is fixed",
                        self.rel(*at)
                    ),
                };
                self.at(*at, line);
            }
            Event::CommandFinished(f) => {
                let line = format!(
                    "      $ {} (exit {}, {})",
                    f.argv.join(" "),
                    f.exit_code.map_or("signal".into(), |c| c.to_string()),
                    format_duration(f.finished.saturating_since(f.started))
                );
                self.at(f.finished, line);
            }
            Event::PhaseMeasured(p) => {
                let origin = self.origin;
                let line = match self.lock().held.as_mut() {
                    Some(held) => held.phase_line(p, |t| rel(t, origin)),
                    None => Held::default().phase_line(p, |t| rel(t, origin)),
                };
                if let Some(line) = line {
                    self.at(now, line);
                }
            }
            Event::ProbeStopped { probe, state } => {
                let line = if state.good + state.bad == 0 {
                    format!("      probe \"{probe}\": stopped before its first answer")
                } else {
                    let latency = state
                        .latency_summary(None)
                        .map(|s| format!("; {s}"))
                        .unwrap_or_default();
                    format!(
                        "      probe \"{probe}\": {} good, {} bad answers{latency}",
                        state.good, state.bad
                    )
                };
                self.at(now, line);
            }
            Event::Measured(text) => self.at(now, format!("      ≈ {text}")),
            Event::WritesChecked {
                namespace,
                acknowledged,
                lost,
            } => self.at(
                now,
                format!(
                    "      ✎ writes to \"{namespace}\": {acknowledged} acknowledged, {lost} lost"
                ),
            ),
            Event::QueryJudged(judged) => {
                let line = format!(
                    "      ≈ {} {}: {}",
                    judged.name.as_ref().map_or_else(
                        || format!("query `{}`", judged.query),
                        |n| format!("query \"{n}\"")
                    ),
                    judged.assertion,
                    judged.failure.as_deref().unwrap_or(if judged.passed {
                        "held"
                    } else {
                        "failed"
                    })
                );
                self.at(now, line);
            }
            Event::GuardTripped(trip) => {
                let line = format!("      ⛔ {} {trip}", self.rel(trip.at));
                self.at(trip.at, line);
            }
            Event::Aborted { reason, at, .. } => {
                self.clear_wait(None);
                self.flush(None);
                self.lock().held = None;
                let line = format!(
                    "  ABORTED by {reason} at {}: undoing every fault of this run (a signal does not stop the undo)",
                    self.rel(*at)
                );
                self.print(&line);
            }
            Event::BlackoutOverridden(o) => self.print(&format!(
                "  ⚠ blackout overridden by {}: {} (until {}); reason: \"{}\"",
                o.by, o.window, o.until, o.reason
            )),
            Event::ScenarioFinished { passed, .. } => {
                self.clear_wait(None);
                self.flush(None);
                self.lock().held = None;
                self.print(&format!("  {}", if *passed { "PASSED" } else { "FAILED" }));
            }
        }
    }
}

fn rel(t: PlatformTime, origin: PlatformTime) -> String {
    format!("T+{}", format_duration(t.saturating_since(origin)))
}

impl Drop for Console {
    fn drop(&mut self) {
        if let Some(ticking) = &self.ticking {
            ticking.store(false, std::sync::atomic::Ordering::SeqCst);
        }
        self.flush(None);
        if let Some(live) = &self.live {
            let mut state = live.lock();
            state.clear();
            state.ended = true;
        }
    }
}

impl Sink for Console {
    fn handle(&mut self, event: &Event) {
        if self.format == LogFormat::Json {
            if let Ok(json) = serde_json::to_string(event) {
                self.print(&json);
            }
            return;
        }
        self.text(event);
        let now = (self.now)();
        self.lock().release(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: u64) -> PlatformTime {
        PlatformTime::from_offset(Duration::from_millis(ms))
    }

    fn wait(deadline: u64) -> Wait {
        Wait {
            what: "service answers from us-west2".into(),
            since: at(0),
            deadline: at(deadline),
            announced: at(0),
        }
    }

    #[test]
    fn the_live_line_never_shows_a_wait_past_its_deadline() {
        let w = wait(1_500_000);
        assert_eq!(
            live_text(&w, at(60_000)).as_deref(),
            Some("waiting for service answers from us-west2: 1m of 25m")
        );
        assert_eq!(live_text(&w, at(1_500_000)), None);
        assert_eq!(live_text(&w, at(1_880_000)), None);
    }

    fn live_console() -> Console {
        let mut console = Console::with_output(
            LogFormat::Text,
            Box::new(std::io::sink()),
            Box::new(|| at(5)),
        );
        console.live = Some(Live::start(Clock::real(), ProgressDrawTarget::hidden));
        console
    }

    fn shown(console: &Console) -> (bool, bool) {
        let state = console.live.as_ref().map(Live::lock);
        state.map_or((false, false), |s| (s.wait.is_some(), s.bar.is_some()))
    }

    #[test]
    fn the_live_line_goes_when_its_step_or_scenario_ends_and_stays_for_a_later_step() {
        let mut console = live_console();
        let waiting = Event::Waiting {
            what: "failover pods ready".into(),
            since: at(0),
            deadline: PlatformTime::from_offset(Duration::from_secs(3_600_000)),
        };
        console.handle(&waiting);
        assert_eq!(shown(&console), (true, true));
        // The previous step's end, delivered late: it did not start this wait.
        console.handle(&Event::StepFinished {
            keyword: "When".into(),
            text: "before".into(),
            outcome: StepOutcome::Passed,
            at: at(4),
        });
        assert_eq!(shown(&console), (true, true));
        console.handle(&Event::StepFinished {
            keyword: "Then".into(),
            text: "the wait".into(),
            outcome: StepOutcome::Passed,
            at: at(6),
        });
        assert_eq!(
            shown(&console),
            (false, false),
            "left behind after its step"
        );
        console.handle(&waiting);
        console.handle(&Event::ScenarioFinished {
            feature: "f".into(),
            scenario: "s".into(),
            passed: true,
            at: at(7),
        });
        assert_eq!(
            shown(&console),
            (false, false),
            "left behind after its scenario"
        );
    }
}
