//! `redovault-verifier recover`: the whole recovery as one ordered, resumable workflow.
//!
//! ```text
//!   verify ──> restore archive ──> restore online ──> restore script ──> report
//!     │              │                   │                  │
//!     └──────────────┴───── DEST/recover-state.json ────────┘  (after every step, durably)
//! ```
//!
//! Each step is the verifier's own command, run as a child process of the same binary, so a
//! step behaves exactly as when a DBA runs it by hand (the runbook's commands) and its output
//! becomes the step's detail in the report. The state file records each finished step with
//! its time; a run that finds it skips what is done, so an interrupted recovery (a killed
//! shell, a lost network, `--stop-after`) is re-run with the same command and goes on where
//! it stopped, and the RTO it reports counts every run's step time, not only the last.
//!
//! Invariants: a step is recorded done only after it exited 0 (or 1 for `verify`: findings
//! are reported, the restore re-checks every object's SHA-256 itself); the state file is
//! written atomically after every step; nothing already restored is removed.

pub mod report;
pub mod run;

use std::path::Path;

use serde::{Deserialize, Serialize};

/// The state file's name in DEST.
pub const STATE_FILE: &str = "recover-state.json";

/// One step of the workflow, in the order they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Step {
    /// Audit WORM, the manifest chains and the collectors.
    Verify,
    /// Archived logs from WORM, verified.
    RestoreArchive,
    /// The online log of each thread, rebuilt to the last commit.
    RestoreOnline,
    /// The RMAN and SQL*Plus scripts.
    RestoreScript,
}

impl Step {
    /// Every step, in order.
    pub const ALL: [Step; 4] = [
        Step::Verify,
        Step::RestoreArchive,
        Step::RestoreOnline,
        Step::RestoreScript,
    ];

    /// As printed and as given to `--stop-after`.
    pub fn name(self) -> &'static str {
        match self {
            Step::Verify => "verify",
            Step::RestoreArchive => "restore-archive",
            Step::RestoreOnline => "restore-online",
            Step::RestoreScript => "restore-script",
        }
    }

    /// The step named `s`.
    pub fn parse(s: &str) -> Option<Step> {
        Step::ALL.into_iter().find(|st| st.name() == s)
    }
}

impl std::fmt::Display for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// How a step ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// Exited 0.
    Done,
    /// `verify` found something (exit 1): recorded, and the recovery goes on.
    DoneWithFindings,
    /// Exited otherwise: the recovery stops here; a re-run retries the step.
    Failed,
}

impl Outcome {
    /// Whether a re-run skips the step.
    pub fn is_done(self) -> bool {
        matches!(self, Outcome::Done | Outcome::DoneWithFindings)
    }
}

/// One step as a run left it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepRecord {
    pub step: Step,
    /// How it ended.
    pub outcome: Outcome,
    /// Its wall time in seconds (of the run that ended it).
    pub seconds: f64,
    /// When it ended (RFC 3339).
    pub finished_at: String,
    /// Which run (1 = the first) ended it.
    pub run: u32,
    /// The step's own summary (its output's last lines, or its error).
    pub detail: String,
    /// The audit's verdict (`clean`, `findings`, ...), for `verify`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verdict: Option<String>,
}

/// What DEST/recover-state.json holds: every step that ended, across runs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RecoverState {
    /// When the first run started (RFC 3339).
    pub started_at: String,
    /// Runs so far (this one included, once it starts).
    pub runs: u32,
    /// Time spent in steps that failed, in earlier runs (part of the RTO).
    #[serde(default)]
    pub failed_seconds: f64,
    /// The last record of each step (at most one per step).
    pub steps: Vec<StepRecord>,
}

/// A state file that cannot be read or written.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// Reading or writing failed.
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    /// It is not a state file of this program.
    #[error("{path}: not a recover state file ({source}); move it away to start over")]
    Format {
        path: String,
        source: serde_json::Error,
    },
}

impl RecoverState {
    /// The state in `dest`, or `None` on a first run.
    pub fn read(dest: &Path) -> Result<Option<RecoverState>, StateError> {
        let path = dest.join(STATE_FILE);
        match std::fs::read(&path) {
            Ok(b) => serde_json::from_slice(&b)
                .map(Some)
                .map_err(|source| StateError::Format {
                    path: path.display().to_string(),
                    source,
                }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(StateError::Io {
                path: path.display().to_string(),
                source,
            }),
        }
    }

    /// Writes it atomically and durably.
    pub fn write(&self, dest: &Path) -> Result<(), StateError> {
        let path = dest.join(STATE_FILE);
        let bytes = serde_json::to_vec_pretty(self).expect("the state serializes");
        redovault::durable::write_atomic(&path, &bytes).map_err(|source| StateError::Io {
            path: path.display().to_string(),
            source,
        })
    }

    /// The steps this run has to do, in order: those not done, up to `stop_after`.
    pub fn plan(&self, stop_after: Option<Step>) -> Vec<Step> {
        Step::ALL
            .into_iter()
            .filter(|s| stop_after.is_none_or(|last| *s <= last))
            .filter(|s| !self.record(*s).is_some_and(|r| r.outcome.is_done()))
            .collect()
    }

    /// The last record of `step`.
    pub fn record(&self, step: Step) -> Option<&StepRecord> {
        self.steps.iter().find(|r| r.step == step)
    }

    /// Records how `step` ended (replacing an earlier failure of it).
    pub fn end(&mut self, rec: StepRecord) {
        if let Some(old) = self.steps.iter_mut().find(|r| r.step == rec.step) {
            if old.outcome == Outcome::Failed {
                self.failed_seconds += old.seconds;
            }
            *old = rec;
        } else {
            self.steps.push(rec);
        }
        self.steps.sort_by_key(|r| r.step);
    }

    /// Whether every step is done.
    pub fn complete(&self) -> bool {
        Step::ALL
            .into_iter()
            .all(|s| self.record(s).is_some_and(|r| r.outcome.is_done()))
    }

    /// The recovery time so far: every step's time in every run, failures included.
    pub fn rto_seconds(&self) -> f64 {
        self.failed_seconds + self.steps.iter().map(|r| r.seconds).sum::<f64>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(step: Step, outcome: Outcome, seconds: f64, run: u32) -> StepRecord {
        StepRecord {
            step,
            outcome,
            seconds,
            finished_at: "2026-12-06T00:00:00Z".into(),
            run,
            detail: String::new(),
            verdict: None,
        }
    }

    #[test]
    fn a_first_run_plans_every_step_in_order() {
        let s = RecoverState::default();
        assert_eq!(s.plan(None), Step::ALL.to_vec());
        assert_eq!(
            s.plan(Some(Step::RestoreArchive)),
            vec![Step::Verify, Step::RestoreArchive]
        );
        assert!(!s.complete());
    }

    #[test]
    fn a_rerun_skips_what_is_done_and_retries_a_failure() {
        let mut s = RecoverState::default();
        s.end(rec(Step::Verify, Outcome::DoneWithFindings, 2.0, 1));
        s.end(rec(Step::RestoreArchive, Outcome::Failed, 5.0, 1));
        assert_eq!(
            s.plan(None),
            vec![
                Step::RestoreArchive,
                Step::RestoreOnline,
                Step::RestoreScript
            ]
        );
        s.end(rec(Step::RestoreArchive, Outcome::Done, 3.0, 2));
        assert_eq!(s.plan(None), vec![Step::RestoreOnline, Step::RestoreScript]);
        assert_eq!(s.plan(Some(Step::RestoreArchive)), Vec::<Step>::new());
        // The failed attempt's time stays in the RTO.
        assert!((s.rto_seconds() - 10.0).abs() < 1e-9);
        assert_eq!(s.steps.len(), 2);
    }

    #[test]
    fn complete_only_when_every_step_is_done() {
        let mut s = RecoverState::default();
        for (i, st) in Step::ALL.into_iter().enumerate() {
            assert!(!s.complete());
            s.end(rec(st, Outcome::Done, 1.0, i as u32 + 1));
        }
        assert!(s.complete());
        assert!(s.plan(None).is_empty());
    }

    #[test]
    fn steps_round_trip_by_name() {
        for st in Step::ALL {
            assert_eq!(Step::parse(st.name()), Some(st));
        }
        assert_eq!(Step::parse("restore"), None);
    }

    #[test]
    fn state_round_trips_and_a_foreign_file_is_refused() {
        let d = tempfile::tempdir().unwrap();
        assert_eq!(RecoverState::read(d.path()).unwrap(), None);
        let mut s = RecoverState {
            started_at: "t".into(),
            runs: 1,
            ..Default::default()
        };
        s.end(rec(Step::Verify, Outcome::Done, 1.5, 1));
        s.write(d.path()).unwrap();
        assert_eq!(RecoverState::read(d.path()).unwrap(), Some(s));
        std::fs::write(d.path().join(STATE_FILE), b"{\"x\":1}").unwrap();
        let e = RecoverState::read(d.path()).unwrap_err().to_string();
        assert!(e.contains("not a recover state file"), "{e}");
    }
}
