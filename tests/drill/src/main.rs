//! The `redovault-drill` binary: `drill` and `simulate`, run by `redovault drill ...` and
//! `redovault simulate ...` (never installed on the database host).

use std::process::ExitCode;

use clap::Parser;

mod cli;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    redovault::telemetry::init_tracing(
        redovault::telemetry::LogFormat::Text,
        redovault::telemetry::verbosity_level(cli.verbose),
    );
    match cli::run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("redovault-drill: {e:#}");
            ExitCode::from(1)
        }
    }
}
