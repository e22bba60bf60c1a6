//! The console's events per database: the stream stopped and resumed (with how long it was
//! down), state changes with their reasons (findings and alarms). Decided by a pure tracker
//! ([`Tracker::observe`]: the previous rows and the new ones in, events out); kept in memory
//! and appended to `events.jsonl` in the console's state directory, so a restart of the
//! console keeps the history.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::console::assess::State;
use crate::console::overview::Row;

/// Events kept in memory (the file keeps every one).
pub const KEPT: usize = 2000;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// When (Unix seconds).
    pub at: f64,
    pub database: String,
    pub thread: u16,
    /// `stream_stopped`, `stream_resumed`, `state`.
    pub kind: String,
    /// What happened, in words.
    pub text: String,
    /// For `stream_resumed`: how long the stream was down (seconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
}

/// The alarm for the alert hook of an event: a state change to Warning (warning) or Alert
/// (critical); None for anything else (a return to Protected, the stream's stops and
/// resumes, which the state change already says).
pub fn alarm_of(e: &Event) -> Option<redovault::alert::Alarm> {
    use redovault::alert::{Alarm, AlarmKind, Severity};
    let severity = match (e.kind.as_str(), e.state.as_deref()) {
        ("state", Some("Alert")) => Severity::Critical,
        ("state", Some("Warning")) => Severity::Warning,
        _ => return None,
    };
    let mut a = Alarm::new(
        AlarmKind::DrState,
        severity,
        format!("{}: {}", e.database, e.text),
    )
    .details(serde_json::json!({
        "database": e.database,
        "thread": e.thread,
        "state": e.state,
    }));
    a.component = "console";
    Some(a)
}

#[derive(Debug, Clone)]
struct Seen {
    state: State,
    up: Option<bool>,
    down_since: Option<f64>,
}

/// What the tracker remembers of each row between polls.
#[derive(Debug, Default)]
pub struct Tracker {
    rows: BTreeMap<(String, u16), Seen>,
}

impl Tracker {
    /// The events between the last rows seen and `rows` (the first sight of a row says its
    /// state once).
    pub fn observe(&mut self, now: f64, rows: &[Row]) -> Vec<Event> {
        let mut out = Vec::new();
        for r in rows {
            let key = (r.database.clone(), r.thread);
            let ev = |kind: &str, text: String| Event {
                at: now,
                database: r.database.clone(),
                thread: r.thread,
                kind: kind.to_string(),
                text,
                duration: None,
                state: None,
            };
            let prev = self.rows.get(&key).cloned();
            let mut next = Seen {
                state: r.assessment.state,
                up: r.stream_up,
                down_since: prev.as_ref().and_then(|p| p.down_since),
            };
            match (prev.as_ref().and_then(|p| p.up), r.stream_up) {
                (Some(true), Some(false)) => {
                    next.down_since = Some(now);
                    out.push(ev(
                        "stream_stopped",
                        format!("thread {}: the redo stream stopped", r.thread),
                    ));
                }
                (Some(false), Some(true)) => {
                    let d = next.down_since.map(|s| now - s);
                    let mut e = ev(
                        "stream_resumed",
                        match d {
                            Some(d) => format!(
                                "thread {}: the redo stream resumed after {}",
                                r.thread,
                                crate::console::assess::human_secs(d)
                            ),
                            None => format!("thread {}: the redo stream resumed", r.thread),
                        },
                    );
                    e.duration = d;
                    out.push(e);
                    next.down_since = None;
                }
                _ => {}
            }
            if prev.as_ref().is_none_or(|p| p.state != r.assessment.state) {
                let reasons: Vec<&str> = r
                    .assessment
                    .reasons
                    .iter()
                    .filter(|x| x.level == r.assessment.state && x.level != State::Protected)
                    .map(|x| x.text.as_str())
                    .collect();
                let mut text = match &prev {
                    Some(p) => format!(
                        "thread {}: {} → {}",
                        r.thread,
                        p.state.label(),
                        r.assessment.state.label()
                    ),
                    None => format!("thread {}: {}", r.thread, r.assessment.state.label()),
                };
                if !reasons.is_empty() {
                    text.push_str(": ");
                    text.push_str(&reasons.join("; "));
                }
                let mut e = ev("state", text);
                e.state = Some(r.assessment.state.label().to_string());
                out.push(e);
            }
            self.rows.insert(key, next);
        }
        out
    }
}

/// The events file and the ones kept in memory.
#[derive(Debug)]
pub struct EventLog {
    path: PathBuf,
    /// Oldest first.
    pub events: Vec<Event>,
    /// Why the file could not be read or written, when it could not (shown on the page).
    pub problem: Option<String>,
}

impl EventLog {
    /// Opens `dir/events.jsonl` (created on the first event); lines that do not parse are
    /// skipped and counted in `problem`.
    pub fn open(dir: &Path) -> EventLog {
        let path = dir.join("events.jsonl");
        let mut log = EventLog {
            path,
            events: Vec::new(),
            problem: None,
        };
        match std::fs::read_to_string(&log.path) {
            Ok(text) => {
                let mut bad = 0;
                for line in text.lines().filter(|l| !l.trim().is_empty()) {
                    match serde_json::from_str::<Event>(line) {
                        Ok(e) => log.events.push(e),
                        Err(_) => bad += 1,
                    }
                }
                if bad > 0 {
                    log.problem = Some(format!(
                        "{}: {bad} line(s) not understood, skipped",
                        log.path.display()
                    ));
                }
                log.trim();
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => log.problem = Some(format!("{}: {e}", log.path.display())),
        }
        log
    }

    fn trim(&mut self) {
        if self.events.len() > KEPT {
            let cut = self.events.len() - KEPT;
            self.events.drain(..cut);
        }
    }

    /// Appends `new` to the file (fsynced) and to memory.
    pub fn append(&mut self, new: Vec<Event>) {
        if new.is_empty() {
            return;
        }
        let r = (|| -> std::io::Result<()> {
            if let Some(d) = self.path.parent() {
                std::fs::create_dir_all(d)?;
            }
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.path)?;
            let mut buf = Vec::new();
            for e in &new {
                serde_json::to_writer(&mut buf, e)?;
                buf.push(b'\n');
            }
            f.write_all(&buf)?;
            f.sync_data()
        })();
        if let Err(e) = r {
            tracing::warn!(path = %self.path.display(), error = %e, "console: events not written");
            self.problem = Some(format!("{}: {e}", self.path.display()));
        }
        self.events.extend(new);
        self.trim();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::console::assess::{Assessment, Reason};
    use redovault_redo::position::DbId;

    fn row(state: State, up: Option<bool>, reason: &str) -> Row {
        Row {
            database: "PROD".into(),
            db_id: DbId(7),
            thread: 1,
            stream: Some("db7-rl1-t1".into()),
            assessment: Assessment {
                state,
                reasons: vec![Reason {
                    level: state,
                    text: reason.into(),
                }],
                exposure_collector: Some(1.0),
                exposure_worm: Some(2.0),
            },
            stream_up: up,
            last_commit: None,
            last_archived: None,
            gaps: Vec::new(),
            lag_bytes: None,
            worm_behind: None,
            verification: None,
            estimated_rto: None,
            rto_estimate: None,
            rto_target: 7200.0,
            rpo_target: 5.0,
        }
    }

    #[test]
    fn an_outage_is_a_stop_then_a_resume_with_its_duration_and_the_state_changes() {
        let mut t = Tracker::default();
        let first = t.observe(100.0, &[row(State::Protected, Some(true), "")]);
        assert_eq!(first.len(), 1);
        assert_eq!(first[0].kind, "state");
        assert!(
            t.observe(102.0, &[row(State::Protected, Some(true), "")])
                .is_empty()
        );
        let stop = t.observe(
            104.0,
            &[row(State::Alert, Some(false), "extractor x unreachable")],
        );
        assert_eq!(stop[0].kind, "stream_stopped");
        assert_eq!(stop[1].kind, "state");
        assert!(
            stop[1]
                .text
                .contains("Protected → Alert: extractor x unreachable")
        );
        assert!(
            t.observe(110.0, &[row(State::Alert, Some(false), "x")])
                .is_empty()
        );
        let back = t.observe(116.5, &[row(State::Protected, Some(true), "")]);
        assert_eq!(back[0].kind, "stream_resumed");
        assert_eq!(back[0].duration, Some(12.5));
        assert!(
            back[0].text.contains("resumed after 12 s"),
            "{}",
            back[0].text
        );
        assert_eq!(back[1].state.as_deref(), Some("Protected"));
    }

    #[test]
    fn state_changes_to_warning_or_alert_are_alarms_nothing_else() {
        use redovault::alert::Severity;
        let mut t = Tracker::default();
        let first = t.observe(1.0, &[row(State::Protected, Some(true), "")]);
        assert!(first.iter().all(|e| alarm_of(e).is_none()));
        let down = t.observe(2.0, &[row(State::Alert, Some(false), "extractor gone")]);
        let alarms: Vec<_> = down.iter().filter_map(alarm_of).collect();
        assert_eq!(alarms.len(), 1, "the state change only, not the stop too");
        assert_eq!(alarms[0].severity, Severity::Critical);
        assert_eq!(alarms[0].component, "console");
        assert!(
            alarms[0]
                .message
                .contains("PROD: thread 1: Protected → Alert: extractor gone")
        );
        let warn = t.observe(3.0, &[row(State::Warning, Some(true), "slow")]);
        let alarms: Vec<_> = warn.iter().filter_map(alarm_of).collect();
        assert_eq!(alarms[0].severity, Severity::Warning);
        let back = t.observe(4.0, &[row(State::Protected, Some(true), "")]);
        assert!(back.iter().all(|e| alarm_of(e).is_none()));
    }

    #[test]
    fn the_file_keeps_events_across_restarts_and_skips_garbage() {
        let d = tempfile::tempdir().unwrap();
        let mut log = EventLog::open(d.path());
        let mut t = Tracker::default();
        log.append(t.observe(1.0, &[row(State::Warning, None, "why")]));
        std::fs::OpenOptions::new()
            .append(true)
            .open(d.path().join("events.jsonl"))
            .unwrap()
            .write_all(b"{not json\n")
            .unwrap();
        let again = EventLog::open(d.path());
        assert_eq!(again.events, log.events);
        assert!(again.problem.unwrap().contains("1 line(s) not understood"));
    }
}
