//! The `redovault-extractor` binary: `check` and the dry-run `tail` on a simulated database.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

use redovault_drill::simulate::{SimConfig, Simulator};

fn setup(dir: &Path) -> std::path::PathBuf {
    let mut c = SimConfig::new(dir);
    c.log_size = 64 * 1024;
    let mut sim = Simulator::start(c).unwrap();
    for _ in 0..40 {
        sim.step().unwrap();
    }
    sim.switch_logfile().unwrap();
    for _ in 0..40 {
        sim.step().unwrap();
    }
    sim.finish().unwrap();
    let groups: String = (1..=3)
        .map(|g| {
            format!(
                "[[online.group]]\nmembers = [\"{}\"]\n",
                dir.join(format!("online/redo_t1_g{g}.log")).display()
            )
        })
        .collect();
    let cfg = format!(
        "[online]\n{groups}\n[archive]\ndirs = [\"{}\"]\n[state]\ndir = \"{}\"\n",
        dir.join("archive").display(),
        dir.join("state").display()
    );
    let p = dir.join("extractor.toml");
    std::fs::write(&p, cfg).unwrap();
    p
}

#[test]
fn check_shows_the_current_log() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = setup(tmp.path());
    let out = Command::new(env!("CARGO_BIN_EXE_redovault-extractor"))
        .args(["check", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("sequence 2 in group 2 (current)"), "{text}");
    assert!(text.contains("redo_t1_g3.log: never used"), "{text}");
    // A bad configuration: one line naming the file and the key.
    std::fs::write(&cfg, "[online]\nbogus = 1\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_redovault-extractor"))
        .args(["check", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        err.contains("extractor.toml") && err.contains("bogus"),
        "{err}"
    );
}

#[test]
fn tail_prints_chunks_as_json_lines() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = setup(tmp.path());
    let mut child = Command::new(env!("CARGO_BIN_EXE_redovault-extractor"))
        .args(["tail", "--config"])
        .arg(&cfg)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first: serde_json::Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(first["pos"], "2:0");
    assert!(first["bytes"].as_u64().unwrap() >= 1024);
    assert!(first["stream"].as_str().unwrap().ends_with("-t1"));
    assert!(!first["commits"].as_array().unwrap().is_empty());
    // Nothing was acknowledged: no checkpoint written.
    let state = tmp.path().join("state");
    assert_eq!(std::fs::read_dir(state).unwrap().count(), 0);
}
