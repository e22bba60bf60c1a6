//! The `redovault` binary: parses the command line and hands over to the library.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = redovault::cli::Cli::parse();
    if !cli.configures_logging() {
        redovault::cli::init_tracing(cli.verbose);
    }
    match redovault::cli::run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("redovault: {e:#}");
            ExitCode::from(1)
        }
    }
}
