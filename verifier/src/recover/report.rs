//! The recovery's report: `recover-report.json` and a self-contained, printable
//! `recover-report.html` in DEST (and in the history directory, where the DR console and
//! auditors find every recovery run beside the drills).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{RecoverState, StepRecord};
use crate::html::escape;
use crate::online_record::OnlineRecords;

/// The report's file name in DEST (the HTML twin ends in `.html`).
pub const REPORT_FILE: &str = "recover-report.json";

/// One thread's recovery point: what the rebuilt online log ends with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ThreadPoint {
    /// The stream, `db<dbid>-rl<resetlogs id>-t<thread>`, when recorded.
    pub stream: Option<String>,
    pub thread: u16,
    /// The online log's sequence.
    pub sequence: u32,
    /// SCN of the thread's last commit.
    pub last_commit_scn: u64,
    pub last_commit_xid: String,
    /// Its time (UTC), when the redo carries it.
    pub last_commit_time: Option<String>,
    /// `collector` or `worm`.
    pub source: String,
    /// The rebuilt online log.
    pub path: PathBuf,
}

/// What one recovery achieved, step by step, against its targets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecoverReport {
    /// `recover` (drill reports say `drill`).
    pub kind: String,
    /// Every step done.
    pub complete: bool,
    /// Complete, and within the RTO target when one is set.
    pub pass: bool,
    /// The configuration used.
    pub config: PathBuf,
    /// Where everything was restored.
    pub dest: PathBuf,
    /// When the first run started and this one ended (RFC 3339).
    pub started_at: String,
    /// When this run ended.
    pub finished_at: String,
    /// Runs it took (more than one: it was interrupted and resumed).
    pub runs: u32,
    /// Each step, with its time and summary.
    pub steps: Vec<StepRecord>,
    /// The recovery time: every step's time in every run.
    pub rto_seconds: f64,
    /// The target, when given.
    pub rto_target_seconds: Option<f64>,
    /// Whether the RTO met it.
    pub rto_met: Option<bool>,
    /// Archived logs restored.
    pub archived_logs: usize,
    /// Their bytes (with the `restore-archive` step's time: the measured restore throughput
    /// the DR console's RTO estimate uses).
    #[serde(default)]
    pub archive_bytes: u64,
    /// The database, when `--db-id` named it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub db_id: Option<u32>,
    /// The step running when this entry was written (a progress entry of the history);
    /// None once the run ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub running: Option<super::Step>,
    /// When that step started (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub running_since: Option<String>,
    /// The audit's verdict (`clean`, `findings`, ...), when verify ran.
    pub verify_verdict: Option<String>,
    /// Each thread's recovery point.
    pub threads: Vec<ThreadPoint>,
    /// What to run next, on the database host, in order.
    pub oracle_commands: Vec<String>,
}

/// What the report is built from besides the state.
pub struct Inputs<'a> {
    /// The configuration used.
    pub config: &'a Path,
    pub dest: &'a Path,
    pub rto_target_seconds: Option<f64>,
    /// Archived logs in DEST's restore-archive.json.
    pub archived_logs: usize,
    pub archive_bytes: u64,
    /// The database, when named.
    pub db_id: Option<u32>,
    /// The audit's verdict.
    pub verify_verdict: Option<String>,
    /// DEST's restore-online.json.
    pub online: Option<OnlineRecords>,
    /// Whether recover.sql was written (recover.rman alone opens the database otherwise).
    pub sqlplus_script: bool,
}

impl RecoverReport {
    /// The report of the state as it stands.
    pub fn new(state: &RecoverState, finished_at: String, inp: Inputs<'_>) -> RecoverReport {
        let complete = state.complete();
        let rto = state.rto_seconds();
        let rto_met = inp.rto_target_seconds.map(|t| rto <= t);
        let threads = inp
            .online
            .map(|o| {
                o.threads
                    .into_iter()
                    .map(|r| ThreadPoint {
                        stream: r.stream,
                        thread: r.thread,
                        sequence: r.sequence,
                        last_commit_scn: r.last_commit_scn,
                        last_commit_xid: r.last_commit_xid,
                        last_commit_time: r.last_commit_time,
                        source: r.source,
                        path: r.path,
                    })
                    .collect()
            })
            .unwrap_or_default();
        let mut oracle_commands = Vec::new();
        if complete {
            let d = inp.dest.display();
            oracle_commands.push(format!(
                "rman target / cmdfile={d}/recover.rman log={d}/recover.rman.log"
            ));
            if inp.sqlplus_script {
                oracle_commands.push(format!(
                    "sqlplus / as sysdba @{d}/recover.sql > {d}/recover.sql.log 2>&1"
                ));
            }
        }
        RecoverReport {
            kind: "recover".into(),
            complete,
            pass: complete && rto_met != Some(false),
            config: inp.config.to_path_buf(),
            dest: inp.dest.to_path_buf(),
            started_at: state.started_at.clone(),
            finished_at,
            runs: state.runs,
            steps: state.steps.clone(),
            rto_seconds: rto,
            rto_target_seconds: inp.rto_target_seconds,
            rto_met,
            archived_logs: inp.archived_logs,
            archive_bytes: inp.archive_bytes,
            db_id: inp.db_id,
            running: None,
            running_since: None,
            verify_verdict: inp.verify_verdict,
            threads,
            oracle_commands,
        }
    }

    /// The one-line verdict printed last.
    pub fn verdict_line(&self) -> String {
        let target = match (self.rto_target_seconds, self.rto_met) {
            (Some(t), Some(true)) => format!(" (target {}: met)", seconds(t)),
            (Some(t), _) => format!(" (target {}: EXCEEDED)", seconds(t)),
            _ => String::new(),
        };
        format!(
            "verdict: {}   RTO = {}{target}   {} archived log(s), {} thread(s) to the last commit, {} run(s)",
            if self.pass {
                "PASS"
            } else if self.complete {
                "FAIL"
            } else {
                "INCOMPLETE"
            },
            seconds(self.rto_seconds),
            self.archived_logs,
            self.threads.len(),
            self.runs
        )
    }

    /// A self-contained page (no script, no external asset), printable.
    pub fn html(&self) -> String {
        let mut h = String::new();
        h.push_str("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">");
        h.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">");
        h.push_str("<title>redovault recovery report</title><style>");
        h.push_str(STYLE);
        h.push_str("</style></head><body>");
        h.push_str(&format!(
            "<h1>Recovery report <span class=\"{}\">{}</span></h1>",
            if self.pass { "ok" } else { "bad" },
            escape(&self.verdict_line())
        ));
        h.push_str("<table>");
        for (k, v) in [
            ("configuration", self.config.display().to_string()),
            ("destination", self.dest.display().to_string()),
            ("started", self.started_at.clone()),
            ("finished", self.finished_at.clone()),
            ("runs", self.runs.to_string()),
            (
                "audit verdict",
                self.verify_verdict.clone().unwrap_or_else(|| "-".into()),
            ),
        ] {
            h.push_str(&format!(
                "<tr><th>{}</th><td>{}</td></tr>",
                escape(k),
                escape(&v)
            ));
        }
        h.push_str("</table><h2>Steps</h2><table><tr><th>step</th><th>outcome</th><th>time</th><th>run</th><th>detail</th></tr>");
        for s in &self.steps {
            h.push_str(&format!(
                "<tr><td>{}</td><td>{:?}</td><td>{}</td><td>{}</td><td><pre>{}</pre></td></tr>",
                escape(s.step.name()),
                s.outcome,
                escape(&seconds(s.seconds)),
                s.run,
                escape(&s.detail)
            ));
        }
        h.push_str("</table><h2>Recovery point per thread</h2><table><tr><th>thread</th><th>sequence</th><th>last commit SCN</th><th>XID</th><th>time (UTC)</th><th>from</th><th>online log</th></tr>");
        for t in &self.threads {
            h.push_str(&format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                t.thread,
                t.sequence,
                t.last_commit_scn,
                escape(&t.last_commit_xid),
                escape(t.last_commit_time.as_deref().unwrap_or("-")),
                escape(&t.source),
                escape(&t.path.display().to_string())
            ));
        }
        h.push_str("</table><h2>Next, on the database host</h2><pre>");
        for c in &self.oracle_commands {
            h.push_str(&escape(c));
            h.push('\n');
        }
        h.push_str("</pre></body></html>\n");
        h
    }
}

/// `12.3 s`, `4 min 05 s`, `2 h 00 min`.
pub fn seconds(s: f64) -> String {
    if s < 60.0 {
        format!("{s:.1} s")
    } else if s < 3600.0 {
        format!("{} min {:02} s", (s / 60.0) as u64, (s % 60.0) as u64)
    } else {
        format!(
            "{} h {:02} min",
            (s / 3600.0) as u64,
            ((s % 3600.0) / 60.0) as u64
        )
    }
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:24px;color:#212529}\
table{border-collapse:collapse;margin:8px 0 20px}th,td{text-align:left;padding:4px 10px;\
border-bottom:1px solid #dee2e6;vertical-align:top}pre{margin:0;white-space:pre-wrap}\
.ok{color:#2b8a3e}.bad{color:#c92a2a}h1 span{font-size:60%;display:block}\
@media print{body{margin:0}}";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recover::{Outcome, Step};

    fn state(done: &[Step], secs: f64) -> RecoverState {
        let mut s = RecoverState {
            started_at: "2026-12-06T00:00:00Z".into(),
            runs: 2,
            ..Default::default()
        };
        for st in done {
            s.end(StepRecord {
                step: *st,
                outcome: Outcome::Done,
                seconds: secs,
                finished_at: "2026-12-06T00:00:01Z".into(),
                run: 1,
                detail: "<done>".into(),
                verdict: None,
            });
        }
        s
    }

    fn inputs(target: Option<f64>) -> Inputs<'static> {
        Inputs {
            config: Path::new("/etc/v.toml"),
            dest: Path::new("/restore"),
            rto_target_seconds: target,
            archived_logs: 3,
            archive_bytes: 3 << 20,
            db_id: None,
            verify_verdict: Some("clean".into()),
            online: None,
            sqlplus_script: true,
        }
    }

    #[test]
    fn complete_within_target_passes_with_the_oracle_commands() {
        let r = RecoverReport::new(&state(&Step::ALL, 10.0), "t".into(), inputs(Some(60.0)));
        assert!(r.complete && r.pass);
        assert_eq!(r.rto_met, Some(true));
        assert_eq!(r.oracle_commands.len(), 2);
        assert!(r.oracle_commands[0].starts_with("rman target / cmdfile=/restore/recover.rman"));
        assert!(r.verdict_line().contains("PASS"), "{}", r.verdict_line());
        assert!(r.verdict_line().contains("met"));
    }

    #[test]
    fn over_the_target_is_exceeded_and_fails() {
        let r = RecoverReport::new(&state(&Step::ALL, 30.0), "t".into(), inputs(Some(60.0)));
        assert!(r.complete && !r.pass);
        assert_eq!(r.rto_met, Some(false));
        assert!(
            r.verdict_line().contains("EXCEEDED"),
            "{}",
            r.verdict_line()
        );
    }

    #[test]
    fn incomplete_names_no_oracle_command() {
        let r = RecoverReport::new(
            &state(&[Step::Verify, Step::RestoreArchive], 1.0),
            "t".into(),
            inputs(None),
        );
        assert!(!r.complete && !r.pass);
        assert!(r.oracle_commands.is_empty());
        assert!(r.verdict_line().starts_with("verdict: INCOMPLETE"));
    }

    #[test]
    fn the_page_escapes_what_it_shows() {
        let r = RecoverReport::new(&state(&Step::ALL, 1.0), "t".into(), inputs(None));
        let h = r.html();
        assert!(h.contains("&lt;done&gt;") && !h.contains("<done>"));
        assert!(!h.contains("<script"));
    }

    #[test]
    fn durations_read_as_people_say_them() {
        assert_eq!(seconds(12.34), "12.3 s");
        assert_eq!(seconds(245.0), "4 min 05 s");
        assert_eq!(seconds(7200.0), "2 h 00 min");
    }
}
