//! `redovault inspect [--json] FILE`: a DBA's view of one redo log file.
//!
//! Exit status: 0 for a clean file (a CURRENT online log whose tail is not written yet is
//! clean), 2 for a damaged file (the report is still printed), 1 when the file cannot be read
//! or is not a redo log (one line on stderr naming the file and the byte offset).

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context;

use redovault::inspect::{InspectReport, inspect_file, render_text};

/// Arguments of `redovault inspect`.
#[derive(Debug, clap::Args)]
pub struct InspectArgs {
    /// Print one JSON object instead of the human summary.
    #[arg(long)]
    pub json: bool,
    /// The redo file (online or archived).
    pub file: std::path::PathBuf,
}

/// Runs `redovault inspect`.
pub fn run(args: &InspectArgs) -> anyhow::Result<ExitCode> {
    let report = inspect_file(&args.file).context("inspect")?;
    let mut out = std::io::stdout().lock();
    if args.json {
        let json = serde_json::to_string_pretty(&InspectReport::from_report(&report))
            .context("encode the report as JSON")?;
        writeln!(out, "{json}").context("write the report")?;
    } else {
        write!(out, "{}", render_text(&args.file, &report)).context("write the report")?;
    }
    out.flush().context("write the report")?;
    Ok(if report.is_clean() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    })
}
