//! `redovault extract | collect | verify | restore ...`: git-style dispatch to the role
//! binaries `redovault-extractor`, `redovault-collector` and `redovault-verifier`, looked for in the directory of
//! the running `redovault` executable (they are separate binaries: linking them into this
//! one would make a dependency cycle, see ARCHITECTURE.md). Every argument after the
//! subcommand goes to the role binary unchanged, `--help` included; the process is replaced
//! (exec), so signals, exit status and output are the role binary's own.

use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, ExitCode};

use anyhow::{Context, bail};

/// Arguments handed to a role binary.
#[derive(Debug, clap::Args)]
#[command(disable_help_flag = true)]
pub struct ExternalArgs {
    /// Arguments of the role binary (`--config FILE`, subcommands; see its `--help`).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, num_args = 0..)]
    pub args: Vec<OsString>,
}

/// The path of role binary `name` next to the running executable.
pub fn sibling(name: &str) -> anyhow::Result<PathBuf> {
    let me = std::env::current_exe().context("find the running executable")?;
    let dir = me
        .parent()
        .with_context(|| format!("{} has no directory", me.display()))?;
    let path = dir.join(name);
    if !path.is_file() {
        bail!(
            "{name} not found next to {} (install it in {})",
            me.display(),
            dir.display()
        );
    }
    Ok(path)
}

/// Replaces this process with role binary `name`, given `prefix` (a subcommand, for
/// `redovault verify` → `redovault-verifier verify`) then `args`; returns only on failure.
pub fn run(name: &str, prefix: &[&str], args: &ExternalArgs) -> anyhow::Result<ExitCode> {
    let path = sibling(name)?;
    let err = Command::new(&path).args(prefix).args(&args.args).exec();
    Err(err).with_context(|| format!("run {}", path.display()))
}
