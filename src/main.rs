//! The `firedrill` binary: parse arguments, run the command, exit with its documented code.

use std::io::Write as _;

use clap::Parser as _;

fn main() -> std::process::ExitCode {
    let cli = firedrill::cli::Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_env("FIREDRILL_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if cli.log_format == firedrill::report::console::LogFormat::Json {
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
    let exit = runtime.block_on(firedrill::cli::main(cli));
    std::process::ExitCode::from(exit as u8)
}
