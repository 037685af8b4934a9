//! `firedrill run`.

use std::collections::BTreeSet;
use std::io::IsTerminal as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::outputs::{Outputs, Paths};
use super::{Drills, Exit, load, render};
use firedrill_core::clock::Clock;
use firedrill_core::diagnostic::{Problem, Problems};
use firedrill_engine::drills::GAMEDAY_TAG;
use firedrill_engine::events::{Bus, Event};
use firedrill_engine::ledger::Ledger;
use firedrill_engine::runner;
use firedrill_engine::scenario::{Approval, RunContext};
use firedrill_providers::Undo;
use firedrill_report::console::{Console, LogFormat};
use firedrill_report::json::Builder;

/// Time scale of the embedded platform under `firedrill run` unless `--time-scale` says otherwise.
pub const DEFAULT_EMBEDDED_SCALE: f64 = 200.0;

/// Arguments of `run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// What to run.
    #[command(flatten)]
    pub drills: Drills,
    /// Write a JUnit XML report.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Write firedrill's JSON drill report (timeline, phases, verdicts, faults).
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Write the self-contained HTML report (timeline, verdicts, probes, faults, commands).
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
    /// Write a Cucumber JSON report.
    #[arg(long, value_name = "FILE")]
    pub cucumber_json: Option<PathBuf>,
    /// Check, preflight and print the plan; inject nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Do not ask before injecting faults into a platform that is not the embedded one.
    #[arg(long)]
    pub yes: bool,
    /// Approve every change of a @gameday scenario without asking (for CI); otherwise a person
    /// approves each one at a prompt on the terminal.
    #[arg(long)]
    pub auto_approve: bool,
    /// The ledger file (undo journal).
    #[arg(
        long,
        env = "FIREDRILL_LEDGER",
        default_value = ".firedrill/ledger.jsonl"
    )]
    pub ledger: PathBuf,
    /// Time scale of the embedded platform (platform seconds per wall second).
    #[arg(long, default_value_t = DEFAULT_EMBEDDED_SCALE)]
    pub time_scale: f64,
    /// Seed of the embedded platform's timing model.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Serve live Prometheus metrics here during the run (`/metrics`, `/healthz`).
    #[arg(long, value_name = "ADDR")]
    pub metrics_addr: Option<SocketAddr>,
    /// Push each drill's metrics to this Pushgateway when it ends (credentials from
    /// FIREDRILL_PUSHGATEWAY_USER/_PASSWORD or FIREDRILL_PUSHGATEWAY_TOKEN, else the URL's
    /// user:password@, which is never printed).
    #[arg(long, value_name = "URL")]
    pub pushgateway: Option<String>,
    /// Fail the run (exit 1) when a push to the Pushgateway fails; otherwise it is a warning.
    #[arg(long, requires = "pushgateway")]
    pub require_push: bool,
    /// Run inside a blackout window of the platform (`safety.blackout`); the reason, who and
    /// the window are recorded in the report.
    #[arg(long, value_name = "REASON")]
    pub override_blackout: Option<String>,
}

/// Runs drills; see [`Exit`] for the outcome.
pub async fn run(args: RunArgs, log_format: LogFormat) -> Exit {
    // Arguments that would fail the run at its end are checked before anything starts.
    let outputs = match check_arguments(&args) {
        Ok(outputs) => outputs,
        Err(problems) => {
            render::problems(&problems);
            return Exit::Usage;
        }
    };
    // The embedded platform, when no platform file is given, lives as long as this function.
    let (embedded, loaded, platform_path, clock) = match &args.drills.platform {
        Some(path) => {
            let platform = firedrill_platform::load(path);
            let scale = platform.as_ref().map_or(1.0, |p| p.time_scale);
            let clock = match Clock::scaled(scale) {
                Ok(c) => c,
                Err(e) => return usage(&e.to_string()),
            };
            let loaded = match load::check_for_run(&args.drills, platform) {
                Ok(loaded) => loaded,
                Err(problems) => {
                    render::problems(&problems);
                    return Exit::Usage;
                }
            };
            (None, loaded, absolute(path), clock)
        }
        None => {
            // The drills are checked against the embedded platform's file before the estate
            // boots: a typo costs no boot.
            if let Err(problems) =
                load::check_for_run(&args.drills, super::embedded::platform_for_checks())
            {
                render::problems(&problems);
                return Exit::Usage;
            }
            let clock = match Clock::scaled(args.time_scale) {
                Ok(c) => c,
                Err(e) => return usage(&e.to_string()),
            };
            let started = match super::embedded::start(clock, args.seed).await {
                Ok(started) => started,
                Err(e) => return usage(&e.to_string()),
            };
            // From here on the embedded estate is an estate like any other: its platform file
            // is loaded and checked as a user's would be.
            let platform = firedrill_platform::load(&started.platform_file);
            let loaded = match load::check_for_run(&args.drills, platform) {
                Ok(loaded) => loaded,
                Err(problems) => {
                    render::problems(&problems);
                    return Exit::Usage;
                }
            };
            let path = started.platform_file.clone();
            (Some(started), loaded, path, clock)
        }
    };

    if loaded.checked.is_empty() {
        return usage(
            "no drills to run: there is no drills/ folder here (hint: give .feature files or folders)",
        );
    }
    // A halted estate and a blackout window refuse the run before anything is touched.
    let cleared =
        match super::stop::clear_for_run(&loaded.platform, args.override_blackout.as_deref()).await
        {
            Ok(cleared) => cleared,
            Err(exit) => return exit,
        };
    let http = match firedrill_providers::http::client() {
        Ok(c) => c,
        Err(e) => return usage(&format!("cannot build the HTTP client: {e}")),
    };
    let needs: BTreeSet<_> = loaded
        .checked
        .iter()
        .flat_map(|c| c.needs.iter().cloned())
        .collect();
    if let Err(problems) =
        firedrill_providers::preflight::check(&needs, &loaded.platform, &http, &clock).await
    {
        render::problems(&problems);
        return Exit::Usage;
    }

    let gameday = loaded
        .checked
        .iter()
        .find(|c| c.tags.iter().any(|t| t == GAMEDAY_TAG));
    if let Some(scenario) = gameday
        && !args.auto_approve
        && !args.dry_run
        && !std::io::stdin().is_terminal()
    {
        render::problems(&Problems(vec![Problem {
            location: Some(scenario.location.clone()),
            message: format!(
                "scenario \"{}\" is a @gameday drill: a person approves each of its changes at a prompt, and there is no terminal",
                scenario.scenario
            ),
            hint: Some("run it in a terminal, or pass --auto-approve (in CI)".into()),
        }]));
        return Exit::Usage;
    }

    let faults: usize = loaded.checked.iter().map(|c| c.effects.len()).sum();
    if args.dry_run {
        outln!(
            "dry run: {} scenario(s) checked and preflight passed; {faults} change(s) would be made. Nothing was injected.",
            loaded.checked.len()
        );
        return Exit::Passed;
    }
    if faults > 0 && embedded.is_none() && !args.yes && !confirm(&loaded.platform.name, faults) {
        render::problems(&Problems(vec![Problem {
            location: None,
            message: format!(
                "refusing to inject {faults} change(s) into platform \"{}\" without confirmation",
                loaded.platform.name
            ),
            hint: Some(
                "pass --yes (required when not on a TTY), or answer `yes` at the prompt".into(),
            ),
        }]));
        return Exit::Usage;
    }

    // The ledger before anything is touched: its lock keeps a second run off this
    // estate, and a run does not start over another run's undos (safety rule 8).
    let ledger = match open_ledger(&args.ledger) {
        Ok(l) => l,
        Err(exit) => return exit,
    };

    // Links with `create: true` get their proxy now, once the run is confirmed.
    match firedrill_providers::preflight::setup(&needs, &loaded.platform).await {
        Ok(created) => {
            for proxy in created {
                outln!("created Toxiproxy proxy \"{proxy}\"");
            }
        }
        Err(problems) => {
            render::problems(&problems);
            return Exit::Usage;
        }
    }

    let bus = Bus::default();
    let report = Builder::new();
    bus.subscribe(Box::new(report.clone()));
    bus.subscribe(Box::new(Console::new(
        log_format,
        std::io::stdout().is_terminal(),
        clock,
    )));
    let platform_name = loaded.platform.name.clone();
    let telemetry = match Telemetry::start(&args, &platform_name, &bus).await {
        Ok(t) => t,
        Err(message) => return usage(&message),
    };
    let run_id = run_id();
    let mut context = RunContext::new(
        run_id.clone(),
        Arc::new(loaded.platform),
        clock,
        ledger,
        bus.clone(),
    );
    context.hooks = embedded.as_ref().map(super::embedded::Started::hooks);
    context.halt = cleared.watch;
    context.approval = if args.auto_approve {
        Approval::Automatic
    } else {
        Approval::Prompt
    };
    let context = Arc::new(context);
    bus.emit(&Event::RunStarted {
        run: run_id,
        platform: platform_name,
        time_scale: clock.scale(),
        wall_start: humantime::format_rfc3339_millis(clock.wall_origin()).to_string(),
    });
    if let Some(overridden) = cleared.overridden {
        bus.emit(&Event::BlackoutOverridden(overridden));
    }
    let outcome = match runner::execute::<firedrill_steps::Drill>(
        Arc::clone(&context),
        loaded.features,
        loaded.selection,
        &outputs.cucumber,
        platform_path,
        embedded.is_some(),
    )
    .await
    {
        Ok(outcome) => outcome,
        Err(e) => return usage(&format!("cannot start the run: {e}")),
    };
    drop(embedded);
    let push_failed = telemetry.finish().await;

    let (exit, verdict) = if !outcome.undo_complete {
        (Exit::UndoIncomplete, "undo-incomplete")
    } else if outcome
        .aborted
        .as_ref()
        .is_some_and(runner::Abort::is_stop_condition)
    {
        (Exit::Stopped, "aborted")
    } else if outcome.aborted.is_some() {
        (Exit::Aborted, "aborted")
    } else if outcome.failed > 0
        || outcome.passed == 0
        || outcome.undo_errors
        || (push_failed && args.require_push)
    {
        (Exit::Failed, "failed")
    } else {
        (Exit::Passed, "passed")
    };
    let report = report.finish(verdict);
    // A report that cannot be written fails a run that passed; the undo already happened.
    let written = outputs.write(&report);
    let exit = if !written && exit == Exit::Passed {
        Exit::Failed
    } else {
        exit
    };
    // Best-effort like every line: after SIGHUP the terminal is gone and these fail with EIO.
    match (exit, &outcome.aborted) {
        (Exit::UndoIncomplete, aborted) => errln!(
            "\n{}UNDO INCOMPLETE: faults may remain. Fix the cause shown above, then run `firedrill recover --ledger {}`.",
            aborted
                .as_ref()
                .map(|a| format!("aborted by {a}; "))
                .unwrap_or_default(),
            args.ledger.display()
        ),
        (Exit::Aborted | Exit::Stopped, Some(abort)) => {
            errln!("\naborted by {abort}; every fault of this run was undone")
        }
        _ => outln!("\n{} passed, {} failed", outcome.passed, outcome.failed),
    }
    exit
}

/// Opens the ledger for this run: takes its lock for the run's whole life (a second run on it
/// is refused), closes the undos of in-process runs that ended (their platform ended with them)
/// and refuses to start over any other outstanding undo or over a line it cannot read.
fn open_ledger(path: &Path) -> Result<Ledger<Undo>, Exit> {
    let mut ledger = Ledger::open(path).map_err(|e| usage(&e.to_string()))?;
    let moot = ledger.clear_for_run().map_err(|e| usage(&e.to_string()))?;
    for fault in moot {
        outln!(
            "ledger: {fault} needs no undo: {}",
            firedrill_engine::ledger::IN_PROCESS_NOTE
        );
    }
    Ok(ledger)
}

/// Every output path can be written, no two name one file, and `--pushgateway` is a URL.
fn check_arguments(args: &RunArgs) -> Result<Outputs, Problems> {
    let outputs = Outputs::check(Paths {
        junit: args.junit.as_deref(),
        json: args.json.as_deref(),
        html: args.html.as_deref(),
        cucumber_json: args.cucumber_json.as_deref(),
        ledger: &args.ledger,
    });
    let push = args
        .pushgateway
        .as_deref()
        .map(firedrill_report::metrics::PushConfig::from_env)
        .transpose()
        .map_err(|e| Problem {
            location: None,
            message: e.to_string(),
            hint: None,
        });
    match (outputs, push) {
        (Ok(outputs), Ok(_)) => Ok(outputs),
        (outputs, push) => {
            let mut problems = outputs.err().unwrap_or_default();
            problems.0.extend(push.err());
            Err(problems)
        }
    }
}

fn usage(message: &str) -> Exit {
    errln!("error: {message}");
    Exit::Usage
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

fn run_id() -> String {
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or_default();
    format!("{millis:x}-{}", std::process::id())
}

/// Asks on the terminal before touching a real platform; false when there is no terminal.
fn confirm(platform: &str, changes: usize) -> bool {
    if !std::io::stdin().is_terminal() {
        return false;
    }
    firedrill_engine::scenario::ask(&format!(
        "About to make {changes} change(s) to platform \"{platform}\". Type `yes` to go on: "
    ))
    .is_some_and(|answer| answer.trim() == "yes")
}

/// Live metrics and Pushgateway pushes for one run.
struct Telemetry {
    server: Option<tokio::task::JoinHandle<()>>,
    pushes: Option<(
        tokio::sync::mpsc::UnboundedSender<Option<String>>,
        tokio::task::JoinHandle<bool>,
    )>,
    /// The drill whose scenario the run stopped, pushed at the end.
    stopped: Arc<std::sync::Mutex<Option<String>>>,
}

/// Asks for a push of a drill's group when its scenario ends (`None` ends the pusher: the bus
/// keeps its sinks alive, so the channel never closes by itself). A scenario the run stopped
/// never ends: its drill is pushed once the run's undo is done (see [`Telemetry::finish`]),
/// so the push shows what the undo left.
struct PushOnFinish {
    pushes: tokio::sync::mpsc::UnboundedSender<Option<String>>,
    running: Option<String>,
    stopped: Arc<std::sync::Mutex<Option<String>>>,
}

impl firedrill_engine::events::Sink for PushOnFinish {
    fn handle(&mut self, event: &Event) {
        match event {
            Event::ScenarioStarted { feature, .. } => self.running = Some(feature.clone()),
            Event::ScenarioFinished { feature, .. } => {
                self.running = None;
                let _ = self.pushes.send(Some(feature.clone()));
            }
            Event::Aborted { .. } => {
                if let (Some(feature), Ok(mut stopped)) = (self.running.take(), self.stopped.lock())
                {
                    *stopped = Some(feature);
                }
            }
            _ => {}
        }
    }
}

impl Telemetry {
    async fn start(args: &RunArgs, platform: &str, bus: &Bus) -> Result<Self, String> {
        if args.metrics_addr.is_none() && args.pushgateway.is_none() {
            return Ok(Self {
                server: None,
                pushes: None,
                stopped: Arc::default(),
            });
        }
        let metrics = firedrill_report::metrics::Metrics::new(platform)
            .map_err(|e| format!("cannot register metrics: {e}"))?;
        bus.subscribe(Box::new(metrics.clone()));
        let server = match args.metrics_addr {
            Some(addr) => {
                let (bound, task) = firedrill_report::metrics::serve(metrics.clone(), addr)
                    .await
                    .map_err(|e| e.to_string())?;
                errln!("metrics: http://{bound}/metrics");
                Some(task)
            }
            None => None,
        };
        let stopped = Arc::default();
        let pushes = match &args.pushgateway {
            Some(url) => {
                let config = firedrill_report::metrics::PushConfig::from_env(url)
                    .map_err(|e| e.to_string())?;
                if config.credentials_in_url {
                    errln!(
                        "warning: --pushgateway carries credentials; they are used for basic auth, but a command line is visible to other users (ps, shell history): prefer FIREDRILL_PUSHGATEWAY_USER/_PASSWORD"
                    );
                }
                let pusher =
                    firedrill_report::metrics::Pusher::new(config).map_err(|e| e.to_string())?;
                let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Option<String>>();
                bus.subscribe(Box::new(PushOnFinish {
                    pushes: tx.clone(),
                    running: None,
                    stopped: Arc::clone(&stopped),
                }));
                let platform = platform.to_owned();
                let task = tokio::spawn(async move {
                    let mut failed = false;
                    while let Some(Some(drill)) = rx.recv().await {
                        if let Err(e) = pusher.push(&metrics, &drill, &platform).await {
                            errln!("warning: {e}");
                            failed = true;
                        }
                    }
                    failed
                });
                Some((tx, task))
            }
            None => None,
        };
        Ok(Self {
            server,
            pushes,
            stopped,
        })
    }

    /// Waits for the last pushes; returns whether any push failed.
    async fn finish(self) -> bool {
        if let Some(server) = self.server {
            server.abort();
        }
        match self.pushes {
            Some((tx, task)) => {
                if let Some(drill) = self.stopped.lock().ok().and_then(|mut s| s.take()) {
                    let _ = tx.send(Some(drill));
                }
                let _ = tx.send(None);
                task.await.unwrap_or(true)
            }
            None => false,
        }
    }
}
