//! The console: what an SRE watching a drill sees.
//!
//! Plain lines everywhere; on a TTY also a live line with the current wait, its elapsed
//! platform time and its deadline (a drill can take 25 minutes). `--log-format json` prints
//! every event as one JSON line instead, for machines.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use firedrill_core::clock::{Clock, PlatformTime, format_duration};
use firedrill_engine::events::{Event, Sink, StepOutcome};

/// Output style.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Lines for people.
    Text,
    /// One JSON object per event.
    Json,
}

/// Writes events to standard output.
pub struct Console {
    format: LogFormat,
    live: Option<ProgressBar>,
    wait: Arc<Mutex<Option<(String, PlatformTime, PlatformTime)>>>,
}

impl Console {
    /// A console; `live` adds the refreshing wait line (use it on a TTY only).
    #[must_use]
    pub fn new(format: LogFormat, live: bool, clock: Clock) -> Self {
        let wait: Arc<Mutex<Option<(String, PlatformTime, PlatformTime)>>> =
            Arc::new(Mutex::new(None));
        let live = (live && format == LogFormat::Text).then(|| {
            // On stdout, where the lines go: indicatif's default (stderr) hides every line
            // when only stderr is redirected.
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stdout());
            bar.set_style(
                ProgressStyle::with_template("  {spinner} {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            bar.enable_steady_tick(Duration::from_millis(120));
            let shown = bar.clone();
            let wait = Arc::clone(&wait);
            // Elapsed is platform time, which indicatif cannot know: refresh it ourselves.
            std::thread::spawn(move || {
                while !shown.is_finished() {
                    let current = wait.lock().ok().and_then(|w| w.clone());
                    if let Some((what, since, deadline)) = current {
                        let now = clock.now();
                        shown.set_message(format!(
                            "waiting for {what}: {} of {}",
                            format_duration(now.saturating_since(since)),
                            format_duration(deadline.saturating_since(since))
                        ));
                    }
                    std::thread::sleep(Duration::from_millis(200));
                }
            });
            bar
        });
        Self { format, live, wait }
    }

    fn line(&self, text: &str) {
        match &self.live {
            Some(bar) => bar.println(text),
            None => {
                let mut out = std::io::stdout().lock();
                let _ = writeln!(out, "{text}");
            }
        }
    }
}

impl Drop for Console {
    fn drop(&mut self) {
        if let Some(bar) = &self.live {
            bar.finish_and_clear();
        }
    }
}

impl Sink for Console {
    fn handle(&mut self, event: &Event) {
        if self.format == LogFormat::Json {
            if let Ok(json) = serde_json::to_string(event) {
                self.line(&json);
            }
            return;
        }
        let text = match event {
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
                format!("firedrill run {run} on platform \"{platform}\"{scale}")
            }
            Event::ScenarioStarted {
                feature, scenario, ..
            } => format!("\n{feature}\n  Scenario: {scenario}"),
            Event::StepStarted { .. } => return,
            Event::StepFinished {
                keyword,
                text,
                outcome,
            } => match outcome {
                StepOutcome::Passed => format!("    ✔ {keyword} {text}"),
                StepOutcome::Skipped => format!("    - {keyword} {text} (skipped)"),
                StepOutcome::Failed(why) => format!("    ✘ {keyword} {text}\n        {why}"),
            },
            Event::Milestone(m) => format!("      ◆ {} {}", m.at, m.name),
            Event::Waiting {
                what,
                since,
                deadline,
            } => {
                if let Ok(mut w) = self.wait.lock() {
                    *w = Some((what.clone(), *since, *deadline));
                }
                return;
            }
            Event::FaultInjected { fault, at, .. } => format!("      ⚡ {at} injected: {fault}"),
            Event::FaultUndone {
                fault, at, error, ..
            } => match error {
                None => format!("      ↺ {at} undone: {fault}"),
                Some(e) => format!(
                    "      ‼ {at} UNDO FAILED: {fault}: {e}\n        run `firedrill recover` once the cause is fixed"
                ),
            },
            Event::CommandFinished(f) => format!(
                "      $ {} (exit {}, {})",
                f.argv.join(" "),
                f.exit_code.map_or("signal".into(), |c| c.to_string()),
                format_duration(f.finished.saturating_since(f.started))
            ),
            Event::PhaseMeasured(p) => match &p.verdict {
                Some(v) => format!("      ⏱ {}: {v}", p.name),
                None => format!("      ⏱ {}: never ended", p.name),
            },
            Event::ProbeStopped { probe, state } => {
                let latency = state
                    .latency_summary(None)
                    .map(|s| format!("; {s}"))
                    .unwrap_or_default();
                format!(
                    "      probe \"{probe}\": {} good, {} bad answers{latency}",
                    state.good, state.bad
                )
            }
            Event::Measured(text) => format!("      ≈ {text}"),
            Event::WritesChecked {
                namespace,
                acknowledged,
                lost,
            } => {
                format!(
                    "      ✎ writes to \"{namespace}\": {acknowledged} acknowledged, {lost} lost"
                )
            }
            Event::QueryJudged(judged) => format!(
                "      ≈ {} {}: {}",
                judged.name.as_ref().map_or_else(
                    || format!("query `{}`", judged.query),
                    |n| format!("query \"{n}\"")
                ),
                judged.assertion,
                judged
                    .failure
                    .as_deref()
                    .unwrap_or(if judged.passed { "held" } else { "failed" })
            ),
            Event::GuardTripped(trip) => format!("      ⛔ {} {trip}", trip.at),
            Event::Aborted { reason, at, .. } => {
                if let Ok(mut w) = self.wait.lock() {
                    *w = None;
                }
                format!(
                    "  ABORTED by {reason} at {at}: undoing every fault of this run (a signal does not stop the undo)"
                )
            }
            Event::BlackoutOverridden(o) => format!(
                "  ⚠ blackout overridden by {}: {} (until {}); reason: \"{}\"",
                o.by, o.window, o.until, o.reason
            ),
            Event::ScenarioFinished { passed, .. } => {
                if let Ok(mut w) = self.wait.lock() {
                    *w = None;
                }
                format!("  {}", if *passed { "PASSED" } else { "FAILED" })
            }
        };
        self.line(&text);
    }
}
