//! The `redovault` binary: the command line (the only place that uses `anyhow`), over the
//! library.

use std::process::ExitCode;

use clap::Parser;

mod cli;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    if !cli.configures_logging() {
        cli::init_tracing(cli.verbose);
    }
    match cli::run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("redovault: {e:#}");
            ExitCode::from(1)
        }
    }
}
