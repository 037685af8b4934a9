//! The command line: clap definitions and one module per command.

#[macro_use]
mod out;

mod embedded;
mod init;
mod load;
mod lsp;
mod outputs;
mod recover;
mod render;
mod report;
mod run;
mod sim;
mod steps;
mod stop;
mod validate;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use firedrill_report::console::LogFormat;

/// Exit codes, as documented in `firedrill --help` and the README.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Exit {
    /// Every drill passed.
    Passed = 0,
    /// A drill failed or missed its target, or a report could not be written.
    Failed = 1,
    /// Usage, platform or drill error; nothing was injected.
    Usage = 2,
    /// Aborted by a signal; everything was undone.
    Aborted = 3,
    /// An undo did not complete: faults may remain; run `firedrill recover`.
    UndoIncomplete = 4,
    /// Aborted by a stop condition (a guard tripped, an emergency halt); everything was undone.
    Stopped = 5,
}

const EXIT_CODES: &str = "Exit codes:
  0  every drill passed
  1  a drill failed or missed its target, or a report could not be written
  2  usage, platform or drill error (nothing was injected)
  3  aborted by a signal (SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, or any other
     catchable signal that would end the process), everything undone; a second
     signal does not stop the undo (only SIGKILL does: then run `firedrill recover`)
  4  undo incomplete: faults may remain, run `firedrill recover`
  5  aborted by a stop condition (a guard tripped: production breached while the
     drill ran; or an emergency halt: `firedrill halt`), everything undone; the
     report and metrics name the reason (for a halt: who and why)
A halted estate or a blackout window refuses a run with 2 before anything is touched.";

/// Chaos and disaster-recovery drills as Gherkin scenarios.
#[derive(Debug, Parser)]
#[command(name = "firedrill", version, about, after_help = EXIT_CODES)]
pub struct Cli {
    /// Output format of the run log.
    #[arg(long, global = true, value_enum, default_value = "text")]
    pub log_format: LogFormat,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run drills (default: drills/ on the embedded platform).
    #[command(after_help = EXIT_CODES)]
    Run(run::RunArgs),
    /// Check drills and the platform file without touching anything.
    #[command(after_help = EXIT_CODES)]
    Validate(validate::ValidateArgs),
    /// Show what each scenario would inject, where, and how it would be undone.
    Plan(validate::PlanArgs),
    /// List every step: pattern, example and what it does.
    Steps(steps::StepsArgs),
    /// Render JSON drill reports as one self-contained HTML page, with the trend across runs.
    Report(report::ReportArgs),
    /// Apply every undo a crashed run left in the ledger.
    #[command(after_help = EXIT_CODES)]
    Recover(recover::RecoverArgs),
    /// Emergency halt: every drill against the estate stops and undoes within one probe
    /// interval, and new runs refuse to start (exit 2) until `firedrill resume`.
    Halt(stop::HaltArgs),
    /// Lift an emergency halt: drills may run again.
    Resume(stop::HaltArgs),
    /// The embedded platform.
    #[command(subcommand)]
    Sim(sim::SimCommand),
    /// Write a commented platform file from what the kube contexts show (reads only).
    #[command(after_help = EXIT_CODES)]
    Init(init::InitArgs),
    /// A language server for .feature files (diagnostics, completion, hover) on stdin/stdout.
    Lsp(lsp::LspArgs),
}

/// Paths and platform, shared by run, validate and plan.
#[derive(Debug, clap::Args)]
pub struct Drills {
    /// Feature files or folders (default: drills/).
    pub paths: Vec<PathBuf>,
    /// The platform file (default: the embedded platform).
    #[arg(long, short = 'p', env = "FIREDRILL_PLATFORM")]
    pub platform: Option<PathBuf>,
    /// Only scenarios matching this tag expression, e.g. "@quarterly and not @gameday".
    #[arg(long, short = 't')]
    pub tags: Option<String>,
    /// Only scenarios whose name matches this regex.
    #[arg(long, short = 'n')]
    pub name: Option<String>,
}

/// Runs the parsed command line; returns the process exit code.
pub async fn main(cli: Cli) -> Exit {
    match cli.command {
        Command::Run(args) => run::run(args, cli.log_format).await,
        Command::Validate(args) => validate::validate(args).await,
        Command::Plan(args) => validate::plan(args),
        Command::Steps(args) => steps::steps(&args),
        Command::Recover(args) => recover::recover(args).await,
        Command::Halt(args) => stop::halt(args).await,
        Command::Resume(args) => stop::resume(args).await,
        Command::Report(args) => report::report(&args),
        Command::Sim(command) => sim::sim(command).await,
        Command::Init(args) => init::init(args).await,
        Command::Lsp(args) => lsp::lsp(args).await,
    }
}
