//! The `firedrill` binary: parse arguments, run the command, exit with its documented code.

use std::io::Write as _;
use std::time::Duration;

use clap::Parser as _;

/// How long the blocking threads (a GameDay prompt waiting on stdin, a blocking Toxiproxy
/// call) get once the command is done, so a signal during a prompt does not hang the exit.
const BLOCKING_GRACE: Duration = Duration::from_secs(2);

fn main() -> std::process::ExitCode {
    let cli = firedrill::cli::Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_env("FIREDRILL_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    // A log line that cannot be written is dropped: tracing's default reports it with
    // eprintln!, which panics on the same closed stderr (`2>&1 | head`, a terminal gone after
    // SIGHUP), wherever the line was logged, the undo included.
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .log_internal_errors(false);
    if cli.log_format == firedrill_report::console::LogFormat::Json {
        subscriber.json().init();
    } else {
        subscriber.init();
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            let _ = writeln!(
                std::io::stderr(),
                "error: cannot start the async runtime: {e}"
            );
            return std::process::ExitCode::from(2);
        }
    };
    if matches!(cli.command, firedrill::cli::Command::Recover(_)) {
        ignore_hangups();
    }
    let changes_things = matches!(
        cli.command,
        firedrill::cli::Command::Run(_) | firedrill::cli::Command::Recover(_)
    );
    // The last line of defence: the runner undoes after a panic in a step, in an undo or in
    // dropping the drill; a panic that still gets here must not pass for an ordinary crash.
    let exit = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        runtime.block_on(firedrill::cli::main(cli))
    }));
    runtime.shutdown_timeout(BLOCKING_GRACE);
    match exit {
        Ok(exit) => std::process::ExitCode::from(exit as u8),
        Err(_) if changes_things => {
            let _ = writeln!(
                std::io::stderr(),
                "\nfiredrill panicked (see above): faults may remain. Run `firedrill recover` (a no-op when nothing is outstanding)."
            );
            std::process::ExitCode::from(firedrill::cli::Exit::UndoIncomplete as u8)
        }
        Err(_) => std::process::ExitCode::from(101),
    }
}

/// `recover` finishes its job when its terminal goes away (an SSH disconnect): SIGHUP is
/// ignored, as under `nohup`, by it and the undo commands it starts. SIGINT and SIGTERM still
/// stop it; what it has not undone stays in the ledger for the next `recover`.
fn ignore_hangups() {
    #[cfg(unix)]
    // SAFETY: setting a disposition to SIG_IGN installs no handler code.
    unsafe {
        libc::signal(libc::SIGHUP, libc::SIG_IGN);
    }
}
