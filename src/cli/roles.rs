//! `redovault extract | collect | verify | restore ...`: the roles that live in their own
//! crates (a dependency cycle keeps them out of this binary, see ARCHITECTURE.md) are run as
//! sibling programs, git-style: `redovault verify ARGS` executes (exec, in place of this
//! process) `redovault-verifier verify ARGS` found next to this executable, or on `PATH`.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

/// Everything after the subcommand, passed on untouched.
#[derive(Debug, clap::Args)]
pub struct RoleArgs {
    /// Arguments for the role's program (see its `--help`).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub args: Vec<OsString>,
}

/// The program of a role, next to the current executable, else on `PATH`.
fn program(name: &str) -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(|d| d.join(name)))
        .filter(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from(name))
}

/// Replaces this process with `program` given `first` (if any) then `args`, so that signals
/// (SIGTERM from systemd or a test) and the exit code are the role program's own. Returns
/// only when the program cannot be started.
pub fn run(program_name: &str, first: Option<&str>, args: &RoleArgs) -> anyhow::Result<ExitCode> {
    use std::os::unix::process::CommandExt;
    let prog = program(program_name);
    let mut cmd = std::process::Command::new(&prog);
    if let Some(f) = first {
        cmd.arg(f);
    }
    cmd.args(&args.args);
    let err = cmd.exec();
    Err(err).with_context(|| {
        format!(
            "cannot run {} (install it next to redovault or on PATH)",
            prog.display()
        )
    })
}
