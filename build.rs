//! Build script of the root crate: records which commit the programs are built from.
//!
//! Sets `REDOVAULT_COMMIT` for the library (`redovault::build_info`), which all four programs
//! print in `--version`: a DBA and a support engineer must be able to tell exactly which build
//! runs on a host. One build script for the whole workspace: every program links this
//! library, so the commit is found once and cannot differ between them.
//!
//! The commit is, in order:
//! 1. the short hash of `HEAD` of the git checkout this crate is the top of, with `-dirty`
//!    when tracked files differ from it;
//! 2. the `REDOVAULT_COMMIT` environment variable (a build from a source archive, where the
//!    packager knows the commit);
//! 3. `unknown`.
//!
//! Cargo runs this script again when HEAD or the branch it names moves (checkout, commit,
//! reset). It does not watch every file of the tree for the `-dirty` mark: that would rebuild
//! every crate of the workspace after each edit. So a debug build edited after its last commit
//! may lack `-dirty`; `deploy/release.sh` sets `REDOVAULT_TREE_STATE` to a digest of the
//! uncommitted changes, which makes the mark exact for release builds.

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let manifest_dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-env-changed=REDOVAULT_COMMIT");
    println!("cargo::rerun-if-env-changed=REDOVAULT_TREE_STATE");
    let commit = match git_commit(&manifest_dir) {
        Some(c) => c,
        None => std::env::var("REDOVAULT_COMMIT")
            .ok()
            .map(|c| c.trim().to_owned())
            .filter(|c| !c.is_empty() && c.chars().all(|ch| ch.is_ascii_graphic()))
            .unwrap_or_else(|| "unknown".to_owned()),
    };
    println!("cargo::rustc-env=REDOVAULT_COMMIT={commit}");
}

/// The short hash of HEAD (with `-dirty`), or `None` when `dir` is not the top of a git
/// checkout (a source archive, or a copy inside someone else's repository) or git is missing.
/// Also tells cargo to run this script again when HEAD moves, wherever the worktree keeps it.
fn git_commit(dir: &Path) -> Option<String> {
    let top = git(dir, &["rev-parse", "--show-toplevel"])?;
    if Path::new(&top).canonicalize().ok()? != dir.canonicalize().ok()? {
        return None;
    }
    for file in ["HEAD", "packed-refs"] {
        watch(dir, file);
    }
    if let Some(head_ref) = git(dir, &["symbolic-ref", "-q", "HEAD"]) {
        watch(dir, &head_ref);
    }
    let hash = git(dir, &["rev-parse", "--short", "HEAD"])?;
    // `--no-optional-locks`: a build never rewrites the index.
    let changes = git(
        dir,
        &[
            "--no-optional-locks",
            "status",
            "--porcelain",
            "--untracked-files=no",
        ],
    );
    Some(match changes {
        Some(c) if !c.is_empty() => format!("{hash}-dirty"),
        _ => hash,
    })
}

/// Asks cargo to rerun this script when the git file `name` (e.g. `HEAD`,
/// `refs/heads/main`) changes; `--git-path` finds it in a linked worktree too. Only a file
/// that exists: cargo reruns a script on every build while a watched file is missing (a branch
/// may live in `packed-refs` only).
fn watch(dir: &Path, name: &str) {
    if let Some(path) = git(dir, &["rev-parse", "--git-path", name]) {
        let path = dir.join(path);
        if path.is_file() {
            println!("cargo::rerun-if-changed={}", path.display());
        }
    }
}

/// Runs git in `dir`; its trimmed standard output when it succeeds.
fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    Some(String::from_utf8(out.stdout).ok()?.trim().to_owned())
}
