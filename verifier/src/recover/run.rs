//! Runs the plan: each step as a child process of this binary, the state written after each.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use super::report::{Inputs, REPORT_FILE, RecoverReport, seconds};
use super::{Outcome, RecoverState, StateError, Step, StepRecord};
use crate::online_record::OnlineRecords;

/// What `recover` was asked to do.
#[derive(Debug, Clone)]
pub struct RecoverOptions {
    /// The verifier configuration (store, collectors, WORM prefixes).
    pub config: PathBuf,
    /// Where to restore.
    pub dest: PathBuf,
    /// The offline recovery key: the online log may come from WORM.
    pub recovery_key: Option<PathBuf>,
    /// Stop after this step (the rest in a later run).
    pub stop_after: Option<Step>,
    pub rto_target_seconds: Option<f64>,
    /// Also keep the report here (`recover-<time>.json` and `.html`): the history.
    pub history: Option<PathBuf>,
    /// The database to recover, when the sources hold several.
    pub db_id: Option<u32>,
}

/// Why a recovery could not go on.
#[derive(Debug, thiserror::Error)]
pub enum RecoverError {
    /// The state file.
    #[error(transparent)]
    State(#[from] StateError),
    /// DEST or the history directory.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A step could not be started.
    #[error("step {step}: cannot run {program}: {source}")]
    Spawn {
        step: Step,
        program: String,
        source: std::io::Error,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> RecoverError + '_ {
    move |source| RecoverError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Runs what is left of the recovery; returns the report and the exit code (0 every step
/// done, 1 a step failed, 3 stopped on request).
pub fn recover(opts: &RecoverOptions) -> Result<(RecoverReport, i32), RecoverError> {
    std::fs::create_dir_all(&opts.dest).map_err(io(&opts.dest))?;
    let mut state = match RecoverState::read(&opts.dest)? {
        Some(s) => s,
        None => RecoverState {
            started_at: redovault::alert::now_rfc3339(),
            ..Default::default()
        },
    };
    state.runs += 1;
    let run = state.runs;
    state.write(&opts.dest)?;
    progress(&state, opts, None);
    let plan = state.plan(opts.stop_after);
    let total = Step::ALL.len();
    for st in Step::ALL {
        if let Some(r) = state.record(st).filter(|r| r.outcome.is_done()) {
            eprintln!(
                "[{}/{total}] {st}: done in run {} ({}), skipped",
                index(st),
                r.run,
                seconds(r.seconds)
            );
        }
    }
    let mut code = 0;
    for st in plan {
        eprintln!("[{}/{total}] {st} ...", index(st));
        progress(&state, opts, Some(st));
        let rec = run_step(st, opts, run)?;
        let failed = rec.outcome == Outcome::Failed;
        eprintln!(
            "[{}/{total}] {st}: {} in {}; RTO so far {}{}",
            index(st),
            match rec.outcome {
                Outcome::Done => "done",
                Outcome::DoneWithFindings => "done, with findings (see the audit report)",
                Outcome::Failed => "FAILED",
            },
            seconds(rec.seconds),
            seconds(state.rto_seconds() + rec.seconds),
            target_note(state.rto_seconds() + rec.seconds, opts.rto_target_seconds)
        );
        if failed {
            eprintln!("{}", indent(&rec.detail));
        }
        state.end(rec);
        state.write(&opts.dest)?;
        progress(&state, opts, None);
        if failed {
            eprintln!("fix the cause and run the same command again: it resumes at {st}");
            code = 1;
            break;
        }
    }
    if code == 0 && !state.complete() {
        code = 3;
        eprintln!(
            "stopped after {} as asked; run again without --stop-after to finish",
            { opts.stop_after.map(Step::name).unwrap_or("-") }
        );
    }
    let report = build_report(&state, opts)?;
    write_report(&report, &opts.dest)?;
    if let Some(h) = &opts.history {
        keep_in_history(&report, h)?;
    }
    Ok((report, code))
}

/// The history's entry of this recovery, as it stands (`running`: the step starting now),
/// so that the DR console shows the recovery live. Only with `--history`; a failure to
/// write it is a warning: the recovery goes on (its last entry is written at the end, and
/// that one must succeed).
fn progress(state: &RecoverState, opts: &RecoverOptions, running: Option<Step>) {
    let Some(h) = &opts.history else { return };
    let written = build_report(state, opts).and_then(|mut r| {
        r.running = running;
        r.running_since = running.map(|_| redovault::alert::now_rfc3339());
        keep_in_history(&r, h)
    });
    if let Err(e) = written {
        eprintln!("warning: the progress entry in the history was not written: {e}");
    }
}

/// 1-based position of a step.
fn index(st: Step) -> usize {
    Step::ALL.iter().position(|s| *s == st).unwrap_or(0) + 1
}

fn target_note(rto: f64, target: Option<f64>) -> String {
    match target {
        Some(t) if rto <= t => format!(" of the {} target", seconds(t)),
        Some(t) => format!(", PAST the {} target", seconds(t)),
        None => String::new(),
    }
}

fn indent(s: &str) -> String {
    s.lines()
        .map(|l| format!("    {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The verifier's own command line for a step.
fn step_args(st: Step, opts: &RecoverOptions) -> Vec<String> {
    let cfg = opts.config.display().to_string();
    let dest = opts.dest.display().to_string();
    let key = opts
        .recovery_key
        .iter()
        .flat_map(|k| ["--recovery-key".to_string(), k.display().to_string()]);
    let db = opts
        .db_id
        .iter()
        .flat_map(|d| ["--db-id".to_string(), d.to_string()]);
    match st {
        Step::Verify => {
            let html = opts.dest.join("audit.html").display().to_string();
            let mut a: Vec<String> = ["verify", "--config", &cfg, "--json", "--html", &html]
                .map(String::from)
                .to_vec();
            a.extend(key);
            a
        }
        Step::RestoreArchive => {
            let mut a: Vec<String> = ["restore", "archive", "--config", &cfg, "--dest", &dest]
                .map(String::from)
                .to_vec();
            a.extend(db);
            a
        }
        Step::RestoreOnline => {
            let mut a: Vec<String> = ["restore", "online", "--config", &cfg, "--dest", &dest]
                .map(String::from)
                .to_vec();
            a.extend(key);
            a.extend(db);
            a
        }
        Step::RestoreScript => ["restore", "script", "--dest", &dest]
            .map(String::from)
            .to_vec(),
    }
}

/// Runs one step; its progress (stderr) goes to the operator as it happens, its output
/// (stdout) becomes the step's detail.
fn run_step(st: Step, opts: &RecoverOptions, run: u32) -> Result<StepRecord, RecoverError> {
    if st == Step::RestoreOnline
        && let Some(n) = online_already_restored(&opts.dest)
    {
        // Rebuilt by a run that was stopped before it could record the step: the files
        // are never overwritten, so the step is done, not redone.
        return Ok(StepRecord {
            step: st,
            outcome: Outcome::Done,
            seconds: 0.0,
            finished_at: redovault::alert::now_rfc3339(),
            run,
            detail: format!(
                "found done by an earlier run: {n} online log(s) in restore-online.json"
            ),
            verdict: None,
        });
    }
    let program = std::env::current_exe().map_err(|source| RecoverError::Spawn {
        step: st,
        program: "the verifier itself".into(),
        source,
    })?;
    let spawn_err = |source| RecoverError::Spawn {
        step: st,
        program: program.display().to_string(),
        source,
    };
    let t0 = Instant::now();
    let mut child = Command::new(&program)
        .args(step_args(st, opts))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(spawn_err)?;
    // The step's stderr (progress, warnings, its error) reaches the operator as it comes,
    // and is kept for the report.
    let err_pipe = child.stderr.take();
    let echo = std::thread::spawn(move || {
        let mut kept = Vec::new();
        if let Some(mut pipe) = err_pipe {
            let mut buf = [0u8; 8192];
            loop {
                match pipe.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        let _ = std::io::stderr().write_all(&buf[..n]);
                        kept.extend_from_slice(&buf[..n]);
                    }
                }
            }
        }
        kept
    });
    let mut out_bytes = Vec::new();
    if let Some(mut pipe) = child.stdout.take() {
        pipe.read_to_end(&mut out_bytes).map_err(spawn_err)?;
    }
    let status = child.wait().map_err(spawn_err)?;
    let err_bytes = echo.join().unwrap_or_default();
    let secs = t0.elapsed().as_secs_f64();
    let stdout = String::from_utf8_lossy(&out_bytes);
    let stderr = String::from_utf8_lossy(&err_bytes);
    let code = status.code();
    let outcome = match (st, code) {
        (_, Some(0)) => Outcome::Done,
        (Step::Verify, Some(1)) => Outcome::DoneWithFindings,
        _ => Outcome::Failed,
    };
    let verdict = (st == Step::Verify && outcome != Outcome::Failed)
        .then(|| verify_verdict(&stdout))
        .flatten();
    let detail = match (st, outcome) {
        (Step::Verify, Outcome::Done | Outcome::DoneWithFindings) => verify_summary(&stdout),
        (_, Outcome::Failed) => format!(
            "exit {}: {}",
            code.map_or("by a signal".to_string(), |c| c.to_string()),
            last_lines(&format!("{stdout}{stderr}"), 8)
        ),
        _ => last_lines(&stdout, 8),
    };
    Ok(StepRecord {
        step: st,
        outcome,
        seconds: secs,
        finished_at: redovault::alert::now_rfc3339(),
        run,
        detail,
        verdict,
    })
}

/// The audit's verdict, from `verify --json`.
fn verify_verdict(json: &str) -> Option<String> {
    serde_json::from_str::<serde_json::Value>(json)
        .ok()?
        .get("verdict")?
        .as_str()
        .map(str::to_string)
}

/// The audit's verdict and counts, from `verify --json`.
fn verify_summary(json: &str) -> String {
    match serde_json::from_str::<serde_json::Value>(json) {
        Ok(v) => {
            let findings = v["findings"].as_array().map_or(0, Vec::len);
            format!(
                "verdict {}, {findings} finding(s), {} file(s); audit.html in the destination",
                v["verdict"].as_str().unwrap_or("?"),
                v["files"].as_array().map_or(0, Vec::len)
            )
        }
        Err(_) => last_lines(json, 8),
    }
}

fn last_lines(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Online logs a stopped run rebuilt, all present, when it recorded them.
fn online_already_restored(dest: &Path) -> Option<usize> {
    let records = OnlineRecords::read(dest).ok().flatten()?;
    (!records.threads.is_empty() && records.threads.iter().all(|r| r.path.exists()))
        .then_some(records.threads.len())
}

fn build_report(
    state: &RecoverState,
    opts: &RecoverOptions,
) -> Result<RecoverReport, RecoverError> {
    let (archived_logs, archive_bytes) = restored_archive(&opts.dest);
    let verify_verdict = state.record(Step::Verify).and_then(|r| r.verdict.clone());
    Ok(RecoverReport::new(
        state,
        redovault::alert::now_rfc3339(),
        Inputs {
            config: &opts.config,
            dest: &opts.dest,
            rto_target_seconds: opts.rto_target_seconds,
            archived_logs,
            archive_bytes,
            db_id: opts.db_id,
            verify_verdict,
            online: OnlineRecords::read(&opts.dest).ok().flatten(),
            sqlplus_script: opts.dest.join("recover.sql").exists(),
        },
    ))
}

/// The archived logs DEST's restore-archive.json lists: how many, and their bytes on disk
/// (0 and 0 before the step ran).
fn restored_archive(dest: &Path) -> (usize, u64) {
    let Some(v) = std::fs::read(dest.join("restore-archive.json"))
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
    else {
        return (0, 0);
    };
    let files = v["files"].as_array().map_or(&[][..], Vec::as_slice);
    let bytes = files
        .iter()
        .filter_map(|f| std::fs::metadata(f["path"].as_str()?).ok())
        .map(|m| m.len())
        .sum();
    (files.len(), bytes)
}

fn write_report(r: &RecoverReport, dir: &Path) -> Result<(), RecoverError> {
    write_report_as(r, &dir.join(REPORT_FILE))
}

/// The report at `json`, and its page beside it (`.html`).
fn write_report_as(r: &RecoverReport, json: &Path) -> Result<(), RecoverError> {
    let bytes = serde_json::to_vec_pretty(r).expect("the report serializes");
    redovault::durable::write_atomic(json, &bytes).map_err(io(json))?;
    let html = json.with_extension("html");
    redovault::durable::write_atomic(&html, r.html().as_bytes()).map_err(io(&html))
}

/// A copy named after the recovery's first start (`recover-<started>.json`): a resumed
/// recovery updates its own entry, and never replaces another recovery's.
fn keep_in_history(r: &RecoverReport, dir: &Path) -> Result<(), RecoverError> {
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let stamp: String = r
        .started_at
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    write_report_as(r, &dir.join(format!("recover-{stamp}.json")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(key: bool) -> RecoverOptions {
        RecoverOptions {
            config: "/etc/v.toml".into(),
            dest: "/restore".into(),
            recovery_key: key.then(|| "/root/r.key".into()),
            stop_after: None,
            rto_target_seconds: None,
            history: None,
            db_id: key.then_some(7),
        }
    }

    #[test]
    fn each_step_is_the_runbook_command() {
        assert_eq!(
            step_args(Step::RestoreArchive, &opts(true)).join(" "),
            "restore archive --config /etc/v.toml --dest /restore --db-id 7"
        );
        assert_eq!(
            step_args(Step::RestoreOnline, &opts(true)).join(" "),
            "restore online --config /etc/v.toml --dest /restore --recovery-key /root/r.key --db-id 7"
        );
        assert_eq!(
            step_args(Step::RestoreOnline, &opts(false)).join(" "),
            "restore online --config /etc/v.toml --dest /restore"
        );
        assert_eq!(
            step_args(Step::Verify, &opts(false)).join(" "),
            "verify --config /etc/v.toml --json --html /restore/audit.html"
        );
        assert_eq!(
            step_args(Step::RestoreScript, &opts(false)).join(" "),
            "restore script --dest /restore"
        );
    }

    #[test]
    fn the_history_entry_says_which_step_runs_then_that_none_does() {
        let d = tempfile::tempdir().unwrap();
        let o = RecoverOptions {
            dest: d.path().join("dest"),
            history: Some(d.path().join("history")),
            ..opts(true)
        };
        std::fs::create_dir_all(&o.dest).unwrap();
        let mut state = RecoverState {
            started_at: "2026-12-06T18:00:00Z".into(),
            runs: 1,
            ..Default::default()
        };
        let entry = || {
            let p = d.path().join("history/recover-2026-12-06T18-00-00Z.json");
            serde_json::from_slice::<RecoverReport>(&std::fs::read(p).unwrap()).unwrap()
        };
        progress(&state, &o, Some(Step::Verify));
        let e = entry();
        assert_eq!(e.running, Some(Step::Verify));
        assert!(e.running_since.is_some());
        assert!(!e.complete && e.steps.is_empty());
        assert_eq!(e.db_id, Some(7));
        state.end(StepRecord {
            step: Step::Verify,
            outcome: Outcome::Done,
            seconds: 2.0,
            finished_at: "t".into(),
            run: 1,
            detail: String::new(),
            verdict: None,
        });
        progress(&state, &o, None);
        let e = entry();
        assert_eq!((e.running, e.running_since), (None, None));
        assert_eq!(e.steps.len(), 1);
        assert_eq!(e.rto_seconds, 2.0);
        // Without --history nothing is written.
        let quiet = RecoverOptions {
            history: None,
            dest: d.path().join("other"),
            ..opts(true)
        };
        progress(&state, &quiet, Some(Step::RestoreArchive));
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 2);
    }

    #[test]
    fn the_restored_archive_is_counted_and_measured_on_disk() {
        let d = tempfile::tempdir().unwrap();
        assert_eq!(restored_archive(d.path()), (0, 0));
        let (a, b) = (d.path().join("1_1.arc"), d.path().join("1_2.arc"));
        std::fs::write(&a, vec![0u8; 1000]).unwrap();
        std::fs::write(&b, vec![0u8; 24]).unwrap();
        std::fs::write(
            d.path().join("restore-archive.json"),
            serde_json::json!({"restored_at": "t", "files": [{"path": a}, {"path": b}]})
                .to_string(),
        )
        .unwrap();
        assert_eq!(restored_archive(d.path()), (2, 1024));
    }

    #[test]
    fn verify_summary_reads_the_audit() {
        let s = verify_summary(r#"{"verdict":"clean","findings":[],"files":[1,2]}"#);
        assert_eq!(
            s,
            "verdict clean, 0 finding(s), 2 file(s); audit.html in the destination"
        );
        assert_eq!(verify_summary("not json\nlast"), "not json\nlast");
    }
}
