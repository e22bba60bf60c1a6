//! What the watcher's decisions look like from outside: alarms worded, rate-limited and sent,
//! errors counted and remembered, gauges set, the status file built. The machine decides
//! ([`super::machine::Raise`], [`super::machine::Action::Error`]); this module only says it.

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime};

use tracing::warn;

use super::gaps::{SeqRange, ThreadKey};
use super::machine::{Machine, Raise};
use super::metrics::WatcherMetrics;
use super::status;
use crate::alert::{Alarm, AlarmKind, Alerter, Severity, now_rfc3339};
use crate::manifest::ManifestDir;

/// Keeps at most this many alarms in the status file.
const RECENT_ALARMS: usize = 20;

/// The watcher's voice: alarms, errors, gauges, status.
pub struct Effects {
    pub metrics: std::sync::Arc<WatcherMetrics>,
    alerter: Alerter,
    repeat_after: Duration,
    grace: Duration,
    backlog_alarm_age: Duration,
    alarm_last: HashMap<(AlarmKind, String), Instant>,
    recent_alarms: Vec<status::AlarmBrief>,
    last_error: Option<status::LastError>,
    /// When the last log was shipped.
    pub last_success_at: Option<String>,
    /// Logs shipped since start.
    pub shipped_files: u64,
    pub shipped_bytes: u64,
    started_at: String,
    /// The store, as its start-up check described it.
    pub store_desc: String,
    metrics_addr: Option<String>,
    status_interval: Duration,
}

impl Effects {
    /// Effects through `alerter` and `metrics`, with the `[alert]` and `[watch]` settings.
    pub fn new(
        cfg: &super::Config,
        metrics: std::sync::Arc<WatcherMetrics>,
        alerter: Alerter,
        store_desc: String,
        metrics_addr: Option<String>,
    ) -> Effects {
        Effects {
            metrics,
            alerter,
            repeat_after: cfg.alert.repeat_after,
            grace: cfg.watch.grace_period,
            backlog_alarm_age: cfg.watch.backlog_alarm_age,
            alarm_last: HashMap::new(),
            recent_alarms: Vec::new(),
            last_error: None,
            last_success_at: None,
            shipped_files: 0,
            shipped_bytes: 0,
            started_at: now_rfc3339(),
            store_desc,
            metrics_addr,
            status_interval: cfg.state.status_interval,
        }
    }

    /// Remembers the error for the status file.
    pub fn record_error(&mut self, kind: &str, message: String) {
        self.last_error = Some(status::LastError {
            at: now_rfc3339(),
            kind: kind.to_string(),
            message,
        });
    }

    /// Counts, logs and remembers an error.
    pub fn error(&mut self, kind: &'static str, message: String) {
        self.metrics.errors.inc(kind);
        warn!(kind, error = %message, "watcher error");
        self.record_error(kind, message);
    }

    /// Raises `alarm` unless the same kind and subject was raised less than `repeat_after` ago.
    pub fn alarm(&mut self, subject: String, alarm: Alarm) {
        let now = Instant::now();
        let key = (alarm.kind, subject);
        if self
            .alarm_last
            .get(&key)
            .is_some_and(|t| now.duration_since(*t) < self.repeat_after)
        {
            return;
        }
        self.alarm_last.insert(key, now);
        self.recent_alarms.push(status::AlarmBrief {
            at: alarm.at.clone(),
            kind: alarm.kind.as_str().to_string(),
            message: alarm.message.clone(),
        });
        if self.recent_alarms.len() > RECENT_ALARMS {
            self.recent_alarms.remove(0);
        }
        self.alerter.raise(alarm);
    }

    /// Words and raises what the machine decided.
    pub fn raise(&mut self, r: Raise) {
        let (subject, alarm) = self.word(r);
        self.alarm(subject, alarm);
    }

    /// The rate-limit subject and the alarm of a decision.
    fn word(&self, r: Raise) -> (String, Alarm) {
        match r {
            Raise::Damaged {
                path,
                block,
                reason,
                size,
            } => (
                format!("damaged {}", path.display()),
                Alarm::new(
                    AlarmKind::DamagedLog,
                    Severity::Critical,
                    format!(
                        "{} is still incomplete or damaged after {:?}: {reason}; it is not \
                         shipped, its bytes go to the quarantine prefix as evidence",
                        path.display(),
                        self.grace
                    ),
                )
                .file(path.display().to_string())
                .block(block)
                .details(serde_json::json!({ "size": size })),
            ),
            Raise::Backlog { file, age } => (
                "backlog".into(),
                Alarm::new(
                    AlarmKind::Backlog,
                    Severity::Critical,
                    format!(
                        "the oldest unshipped archived log ({file}) is {age:.0} s old (alarm at \
                         {:?})",
                        self.backlog_alarm_age
                    ),
                )
                .file(file),
            ),
            Raise::Gap { key, range } => (
                format!(
                    "gap {} {} {} {}",
                    key.resetlogs_id, key.thread, range.first, range.last
                ),
                gap_alarm(&key, &range),
            ),
            Raise::Vanished { path } => (
                format!("vanished {}", path.display()),
                Alarm::new(
                    AlarmKind::VanishedUnshipped,
                    Severity::Critical,
                    format!(
                        "{} disappeared before it was shipped: its redo is not in WORM",
                        path.display()
                    ),
                )
                .file(path.display().to_string()),
            ),
            Raise::NotRedo {
                path,
                reason,
                size,
                offset,
            } => (
                format!("not redo {}", path.display()),
                Alarm::new(
                    AlarmKind::NotRedoLog,
                    Severity::Warning,
                    format!(
                        "{} matches the include patterns but is {reason}; it is left alone (not \
                         shipped, not quarantined): narrow [watch] include/exclude or move it out \
                         of the archive destination",
                        path.display()
                    ),
                )
                .file(path.display().to_string())
                .details(serde_json::json!({ "size": size, "offset": offset })),
            ),
            Raise::Replaced {
                path,
                shipped,
                found,
                index,
                what,
            } => {
                let found_s = found.map_or("(not read whole)".to_string(), |f| f.hex());
                (
                    format!("replaced {} {}", path.display(), found_s),
                    Alarm::new(
                        AlarmKind::ReplacedLog,
                        Severity::Critical,
                        format!(
                            "{} has other bytes (sha256 {found_s}) than the log shipped under \
                             {what} (manifest entry {index}, sha256 {shipped}); the WORM copy and \
                             the manifest entry stay as they are, the new bytes are not shipped",
                            path.display()
                        ),
                    )
                    .file(path.display().to_string())
                    .details(serde_json::json!({
                        "manifest_index": index,
                        "shipped_sha256": shipped.hex(),
                        "found_sha256": found.map(|f| f.hex()),
                    })),
                )
            }
            Raise::UploadFailing {
                path,
                kind,
                critical,
                message,
            } => (
                format!("upload {kind}"),
                Alarm::new(
                    AlarmKind::UploadFailing,
                    if critical {
                        Severity::Critical
                    } else {
                        Severity::Warning
                    },
                    format!("uploads are failing ({kind}): {message}"),
                )
                .file(path.display().to_string()),
            ),
            Raise::ScanFailing { errors } => (
                "scan".into(),
                Alarm::new(
                    AlarmKind::ScanFailing,
                    Severity::Critical,
                    format!(
                        "archive directories cannot be scanned: {}",
                        errors.join("; ")
                    ),
                ),
            ),
            Raise::Manifest { subject, message } => (
                subject.into(),
                Alarm::new(AlarmKind::Manifest, Severity::Critical, message),
            ),
            Raise::SealFailing { seg, message } => (
                "seal".into(),
                Alarm::new(
                    AlarmKind::Manifest,
                    Severity::Warning,
                    format!(
                        "manifest segment {}..{} cannot be sealed into WORM yet: {message}",
                        seg.first, seg.last
                    ),
                ),
            ),
        }
    }

    /// Sets the gauges from the machine's aggregates (no walk over the files).
    pub fn gauges(&self, machine: &Machine) {
        let t = machine.tally();
        let m = &self.metrics;
        m.backlog_files.set(t.backlog_files as f64);
        m.backlog_bytes.set(t.backlog_bytes as f64);
        m.oldest_unshipped_age
            .set(machine.oldest(SystemTime::now()).map_or(0.0, |(a, _)| a));
        m.damaged_files.set(t.damaged as f64);
        m.not_redo_files.set(t.not_redo as f64);
        m.gap_sequences.set(machine.gaps().total_missing() as f64);
        m.live_gap_sequences
            .set(machine.gaps().live_missing() as f64);
        m.in_flight.set(machine.in_flight() as f64);
    }

    /// The status file's content.
    pub fn status(
        &self,
        running: bool,
        machine: &Machine,
        manifest: Option<&ManifestDir>,
    ) -> status::Status {
        let files = machine.status(SystemTime::now());
        let threads = machine.gaps().status();
        let unshipped = threads
            .iter()
            .flat_map(|t| {
                t.unshipped.iter().map(|s| status::Unshipped {
                    db_id: t.db_id,
                    resetlogs_id: t.resetlogs_id,
                    thread: t.thread,
                    sequence: *s,
                })
            })
            .collect();
        let manifest = manifest.map_or_else(status::ManifestStatus::default, |m| {
            status::ManifestStatus {
                entries: m.len(),
                last_hash: m.state().prev.hex(),
                sealed_through: m.sealed_through(),
                unsealed_entries: m.len() - m.sealed_through().unwrap_or(0),
            }
        });
        status::Status {
            version: status::VERSION,
            pid: std::process::id(),
            started_at: self.started_at.clone(),
            written_at: now_rfc3339(),
            written_at_unix_ms: u64::try_from(chrono::Utc::now().timestamp_millis()).unwrap_or(0),
            status_interval_ms: u64::try_from(self.status_interval.as_millis()).unwrap_or(u64::MAX),
            running,
            store: self.store_desc.clone(),
            metrics_addr: self.metrics_addr.clone(),
            gap_sequences: machine.gaps().total_missing(),
            threads,
            unshipped,
            backlog: files.backlog,
            damaged: files.damaged,
            replaced: files.replaced,
            not_redo: files.not_redo,
            last_error: self.last_error.clone(),
            last_success_at: self.last_success_at.clone(),
            shipped_files: self.shipped_files,
            shipped_bytes: self.shipped_bytes,
            manifest,
            recent_alarms: self.recent_alarms.clone(),
        }
    }
}

fn gap_alarm(k: &ThreadKey, r: &SeqRange) -> Alarm {
    Alarm::new(
        AlarmKind::Gap,
        Severity::Critical,
        format!(
            "thread {} (db id {}, resetlogs id {}): sequence{} {} missing while a later one \
             exists",
            k.thread,
            k.db_id,
            k.resetlogs_id,
            if r.first == r.last { "" } else { "s" },
            if r.first == r.last {
                r.first.to_string()
            } else {
                format!("{}-{}", r.first, r.last)
            }
        ),
    )
    .details(serde_json::json!({
        "db_id": k.db_id, "resetlogs_id": k.resetlogs_id, "thread": k.thread.0,
        "first": r.first, "last": r.last,
    }))
}
