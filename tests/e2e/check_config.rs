//! `check-config` is the same in every program (issue 18): `check-config FILE` and
//! `check-config --config FILE` both work and print the same verdict, with the same words:
//! `FILE: OK` and indented details, or one `FILE: problem` line each and
//! `FILE: FAILED, N problem(s)`, exit status 1.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::netkit::{World, bins};

/// Runs `program check-config` on `file` in both forms; asserts they agree and returns the
/// exit code and standard output.
fn both_forms(program: &Path, file: &Path) -> (Option<i32>, String) {
    let run = |args: &[&str]| {
        let out = Command::new(program)
            .arg("check-config")
            .args(args)
            .arg(file)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let plain = run(&[]);
    let flag = run(&["--config"]);
    assert_eq!(plain, flag, "{}: the two forms differ", program.display());
    plain
}

fn assert_ok(program: &Path, file: &Path) {
    let (code, out) = both_forms(program, file);
    assert_eq!(code, Some(0), "{}: {out}", program.display());
    let mut lines = out.lines();
    assert_eq!(
        lines.next(),
        Some(format!("{}: OK", file.display()).as_str())
    );
    assert!(lines.all(|l| l.starts_with("  ")), "{out}");
}

fn assert_failed(program: &Path, file: &Path) {
    let (code, out) = both_forms(program, file);
    assert_eq!(code, Some(1), "{}: {out}", program.display());
    let prefix = format!("{}: ", file.display());
    assert!(out.lines().all(|l| l.starts_with(&prefix)), "{out}");
    let last = out.lines().last().unwrap_or_default();
    let n = out.lines().count() - 1;
    assert_eq!(last, format!("{prefix}FAILED, {n} problem(s)"), "{out}");
}

#[test]
fn every_program_takes_both_forms_and_prints_the_same_verdict() {
    let b = bins();
    let w = World::new(2);
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/config");
    let ok: [(&PathBuf, PathBuf); 4] = [
        (&b.redovault, examples.join("watcher.example.toml")),
        (&b.verifier, examples.join("verifier.example.toml")),
        (&b.collector, w.collector_config("")),
        (&b.extractor, w.extractor_config(w.port, "")),
    ];
    let bad = w.path("bad.toml");
    std::fs::write(&bad, "[nosuchsection]\nkey = 1\n").unwrap();
    let missing = w.path("missing.toml");
    for (program, good) in &ok {
        assert_ok(program, good);
        assert_failed(program, &bad);
        assert_failed(program, &missing);
    }
}
