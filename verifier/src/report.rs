//! The audit report: what a verification run found, in one model rendered three ways.
//!
//! - [`AuditReport::to_text`]: a human summary for a terminal or a log.
//! - JSON: the model itself (`serde`), for machines (`verify --json`).
//! - [`crate::html::render`]: a self-contained HTML page for auditors.
//!
//! The exit code follows [`Verdict`]: 0 clean, 1 findings, 2 could not run.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

/// The outcome of a run, as an exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Everything checked is as recorded (acknowledged gaps do not count as findings).
    Clean,
    /// At least one finding of severity error.
    Findings,
    /// The run could not complete (store unreachable, manifest unreadable...).
    CouldNotRun,
}

impl Verdict {
    /// The process exit code: 0, 1 or 2.
    pub fn exit_code(self) -> i32 {
        match self {
            Verdict::Clean => 0,
            Verdict::Findings => 1,
            Verdict::CouldNotRun => 2,
        }
    }
}

/// How serious a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Kept visible, does not fail the run (an acknowledged gap).
    Info,
    /// Fails the run.
    Error,
}

/// What kind of problem a finding is; stable names for JSON, metrics and alerts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingKind {
    /// A manifest entry's content no longer matches the hash the next entry recorded.
    ManifestEntryEdited,
    /// A manifest entry is missing (the chain jumps over an index).
    ManifestEntryRemoved,
    /// Manifest entries are out of order (index or chain order broken).
    ManifestEntryReordered,
    /// The local manifest and the segments sealed in WORM disagree.
    ManifestSealMismatch,
    /// The manifest cannot be parsed at some line.
    ManifestUnreadable,
    /// The object a manifest entry names does not exist.
    ObjectMissing,
    /// The object's size differs from the manifest's.
    ObjectSizeMismatch,
    /// The object's checksum (server-side or re-hashed) differs from the manifest's SHA-256.
    ObjectChecksumMismatch,
    /// A newer version exists under the object's key (someone wrote over it).
    ObjectReplaced,
    /// The object has no Object Lock, or not the expected mode.
    LockMissing,
    /// The object's retain-until is earlier than the policy requires.
    RetentionTooShort,
    /// A log sequence is missing in a thread.
    SequenceGap,
    /// A known, acknowledged gap (kept visible, not failing the run).
    AcknowledgedGap,
    /// Next SCN of one log differs from the first SCN of the next.
    ScnDiscontinuity,
    /// A collector segment chunk failed authentication or cannot be read.
    SegmentChunkCorrupt,
    /// The collector's stream has a hole or overlap.
    StreamGap,
    /// An archived log differs from the streamed redo of the same sequence.
    ArchiveDiffersFromStream,
}

impl FindingKind {
    /// The stable snake_case name (as in JSON and metric labels).
    pub fn as_str(self) -> &'static str {
        match self {
            FindingKind::ManifestEntryEdited => "manifest_entry_edited",
            FindingKind::ManifestEntryRemoved => "manifest_entry_removed",
            FindingKind::ManifestEntryReordered => "manifest_entry_reordered",
            FindingKind::ManifestSealMismatch => "manifest_seal_mismatch",
            FindingKind::ManifestUnreadable => "manifest_unreadable",
            FindingKind::ObjectMissing => "object_missing",
            FindingKind::ObjectSizeMismatch => "object_size_mismatch",
            FindingKind::ObjectChecksumMismatch => "object_checksum_mismatch",
            FindingKind::ObjectReplaced => "object_replaced",
            FindingKind::LockMissing => "lock_missing",
            FindingKind::RetentionTooShort => "retention_too_short",
            FindingKind::SequenceGap => "sequence_gap",
            FindingKind::AcknowledgedGap => "acknowledged_gap",
            FindingKind::ScnDiscontinuity => "scn_discontinuity",
            FindingKind::SegmentChunkCorrupt => "segment_chunk_corrupt",
            FindingKind::StreamGap => "stream_gap",
            FindingKind::ArchiveDiffersFromStream => "archive_differs_from_stream",
        }
    }

    /// Whether this kind means someone altered data (as opposed to something missing).
    pub fn is_tampering(self) -> bool {
        matches!(
            self,
            FindingKind::ManifestEntryEdited
                | FindingKind::ManifestEntryReordered
                | FindingKind::ManifestSealMismatch
                | FindingKind::ObjectSizeMismatch
                | FindingKind::ObjectChecksumMismatch
                | FindingKind::ObjectReplaced
                | FindingKind::SegmentChunkCorrupt
                | FindingKind::ArchiveDiffersFromStream
        )
    }
}

/// One problem found, with what it concerns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    /// What kind of problem.
    pub kind: FindingKind,
    /// Error (fails the run) or info.
    pub severity: Severity,
    /// What it concerns, in words a DBA searches for: "thread 1 sequence 42",
    /// "manifest entry 17", an object key, a segment file and offset.
    pub subject: String,
    /// The evidence: expected versus found.
    pub detail: String,
    /// The manifest entry index, when the finding concerns one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entry: Option<u64>,
    /// The (resetlogs id, thread, sequence) concerned, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log: Option<LogRef>,
}

impl Finding {
    /// An error finding.
    pub fn error(kind: FindingKind, subject: impl Into<String>, detail: impl Into<String>) -> Self {
        Finding {
            kind,
            severity: Severity::Error,
            subject: subject.into(),
            detail: detail.into(),
            entry: None,
            log: None,
        }
    }

    /// An informational finding (kept visible, not failing the run).
    pub fn info(kind: FindingKind, subject: impl Into<String>, detail: impl Into<String>) -> Self {
        Finding {
            severity: Severity::Info,
            ..Finding::error(kind, subject, detail)
        }
    }

    /// The same finding, tied to a manifest entry.
    pub fn with_entry(mut self, entry: u64) -> Self {
        self.entry = Some(entry);
        self
    }

    /// The same finding, tied to a log.
    pub fn with_log(mut self, log: LogRef) -> Self {
        self.log = Some(log);
        self
    }
}

/// One log of one thread of one incarnation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct LogRef {
    /// Resetlogs id of the incarnation.
    pub resetlogs_id: u32,
    /// Redo thread.
    pub thread: u16,
    /// Log sequence.
    pub sequence: u32,
}

/// How far one archived log was checked in this run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FileStatus {
    /// In the manifest; not checked in this run (outside the rolling share).
    Shipped,
    /// Object present with the expected size, lock and server-side checksum.
    Verified,
    /// Downloaded and re-hashed: SHA-256 equals the manifest's.
    DeepVerified,
    /// Present but different from what the manifest recorded.
    Tampered,
    /// The manifest names it; the store does not have it.
    Missing,
}

/// The result for one archived log (one manifest entry).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileResult {
    /// Manifest entry index.
    pub entry: u64,
    /// Which log.
    pub log: LogRef,
    /// Original file name (log_archive_format).
    pub file_name: String,
    /// Object key in WORM.
    pub key: String,
    /// Size in bytes.
    pub size: u64,
    /// SHA-256 (hex) from the manifest.
    pub sha256: String,
    /// How far it was checked, and with what result.
    pub status: FileStatus,
    /// When it was last deep-verified (RFC 3339), in this run or an earlier one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_deep_verified: Option<String>,
    /// Whether the streamed redo of the same sequence was compared with it, block by block.
    pub cross_checked: bool,
}

/// The state of one sequence in a thread's timeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CellState {
    /// In the manifest, not checked in this run.
    Shipped,
    /// Checked (fast or deep) and as recorded.
    Verified,
    /// Missing from the manifest (a hole in the sequence).
    Gap,
    /// A known gap acknowledged by an operator.
    AcknowledgedGap,
    /// Altered or missing in the store.
    Tampered,
}

/// One cell of a thread's timeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimelineCell {
    /// Log sequence.
    pub sequence: u32,
    /// Its state.
    pub state: CellState,
}

/// The timeline of one thread of one incarnation: every sequence from the first to the last
/// seen, in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ThreadTimeline {
    /// Resetlogs id of the incarnation.
    pub resetlogs_id: u32,
    /// Redo thread.
    pub thread: u16,
    /// One cell per sequence, ascending, without holes (gaps are cells too).
    pub cells: Vec<TimelineCell>,
}

/// Counts shown at the top of every rendering.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    /// Manifest entries read.
    pub manifest_entries: u64,
    /// Objects checked by HEAD (fast path).
    pub objects_checked: u64,
    /// Objects downloaded and re-hashed.
    pub objects_deep_verified: u64,
    /// Bytes re-hashed.
    pub bytes_rehashed: u64,
    /// Collector chunks authenticated.
    pub segment_chunks_checked: u64,
    /// Logs compared with the streamed redo.
    pub logs_cross_checked: u64,
    /// Findings of severity error.
    pub errors: u64,
    /// Findings of severity info (acknowledged gaps).
    pub infos: u64,
}

/// Everything a verification run found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditReport {
    /// Report format version.
    pub version: u32,
    /// What was verified (bucket and prefix, collector directory).
    pub target: String,
    /// Mode of the run: "fast", "deep", or "deep 1/30".
    pub mode: String,
    /// Start of the run (RFC 3339, UTC).
    pub started_at: String,
    /// End of the run (RFC 3339, UTC).
    pub finished_at: String,
    /// The verdict (and exit code).
    pub verdict: Verdict,
    /// Why the run could not complete, when it could not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Counts.
    pub summary: Summary,
    /// Every finding, errors first.
    pub findings: Vec<Finding>,
    /// One result per manifest entry, in manifest order.
    pub files: Vec<FileResult>,
    /// One timeline per (resetlogs id, thread).
    pub threads: Vec<ThreadTimeline>,
}

/// What was run, when: the report's heading.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunInfo {
    /// What was verified (bucket and prefix, collector directory).
    pub target: String,
    /// "fast", "deep", or "deep 1/30".
    pub mode: String,
    /// Start (RFC 3339, UTC).
    pub started_at: String,
    /// End (RFC 3339, UTC).
    pub finished_at: String,
}

/// The current report format version.
pub const REPORT_VERSION: u32 = 1;

impl AuditReport {
    /// A report from its parts: sorts findings (errors first), fills the summary's error and
    /// info counts, and derives the verdict.
    pub fn new(
        run: RunInfo,
        mut summary: Summary,
        mut findings: Vec<Finding>,
        files: Vec<FileResult>,
        threads: Vec<ThreadTimeline>,
    ) -> AuditReport {
        findings.sort_by(|a, b| {
            b.severity
                .cmp(&a.severity)
                .then(a.log.cmp(&b.log))
                .then(a.entry.cmp(&b.entry))
                .then(a.kind.cmp(&b.kind))
        });
        summary.errors = count(&findings, Severity::Error);
        summary.infos = count(&findings, Severity::Info);
        let verdict = if summary.errors > 0 {
            Verdict::Findings
        } else {
            Verdict::Clean
        };
        AuditReport {
            version: REPORT_VERSION,
            target: run.target,
            mode: run.mode,
            started_at: run.started_at,
            finished_at: run.finished_at,
            verdict,
            error: None,
            summary,
            findings,
            files,
            threads,
        }
    }

    /// A report for a run that could not complete: exit code 2, with the reason, and
    /// whatever was found before the failure.
    pub fn could_not_run(mut self, reason: impl Into<String>) -> AuditReport {
        self.verdict = Verdict::CouldNotRun;
        self.error = Some(reason.into());
        self
    }

    /// Findings of one kind.
    pub fn of_kind(&self, kind: FindingKind) -> impl Iterator<Item = &Finding> {
        self.findings.iter().filter(move |f| f.kind == kind)
    }

    /// Count of error findings per kind (for metrics).
    pub fn counts_by_kind(&self) -> BTreeMap<FindingKind, u64> {
        let mut m = BTreeMap::new();
        for f in self
            .findings
            .iter()
            .filter(|f| f.severity == Severity::Error)
        {
            *m.entry(f.kind).or_insert(0) += 1;
        }
        m
    }

    /// The human summary: verdict, counts, then one line per finding.
    pub fn to_text(&self) -> String {
        let mut s = String::new();
        let verdict = match self.verdict {
            Verdict::Clean => "CLEAN",
            Verdict::Findings => "FINDINGS",
            Verdict::CouldNotRun => "COULD NOT RUN",
        };
        let _ = writeln!(s, "redovault verify: {verdict} ({} mode)", self.mode);
        let _ = writeln!(s, "target:   {}", self.target);
        let _ = writeln!(s, "run:      {} .. {}", self.started_at, self.finished_at);
        if let Some(e) = &self.error {
            let _ = writeln!(s, "error:    {e}");
        }
        let m = &self.summary;
        let _ = writeln!(
            s,
            "checked:  {} manifest entries, {} objects (HEAD), {} re-hashed ({} bytes), {} collector chunks, {} logs cross-checked",
            m.manifest_entries,
            m.objects_checked,
            m.objects_deep_verified,
            m.bytes_rehashed,
            m.segment_chunks_checked,
            m.logs_cross_checked
        );
        for t in &self.threads {
            let (first, last) = match (t.cells.first(), t.cells.last()) {
                (Some(a), Some(b)) => (a.sequence, b.sequence),
                _ => continue,
            };
            let gaps = t.cells.iter().filter(|c| c.state == CellState::Gap).count();
            let _ = writeln!(
                s,
                "thread:   resetlogs {} thread {}: sequences {first}..={last}, {gaps} gap(s)",
                t.resetlogs_id, t.thread
            );
        }
        let _ = writeln!(s, "findings: {} error(s), {} info", m.errors, m.infos);
        for f in &self.findings {
            let sev = match f.severity {
                Severity::Error => "ERROR",
                Severity::Info => "info ",
            };
            let _ = writeln!(
                s,
                "  {sev} {:<28} {}: {}",
                f.kind.as_str(),
                f.subject,
                f.detail
            );
        }
        s
    }
}

fn count(findings: &[Finding], sev: Severity) -> u64 {
    u64::try_from(findings.iter().filter(|f| f.severity == sev).count()).unwrap_or(u64::MAX)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A report with a bit of everything, shared by the renderers' tests.
    pub(crate) fn sample() -> AuditReport {
        let log = |s| LogRef {
            resetlogs_id: 1_190_000_000,
            thread: 1,
            sequence: s,
        };
        let files: Vec<FileResult> = (10..16)
            .filter(|s| *s != 13)
            .enumerate()
            .map(|(i, s)| FileResult {
                entry: i as u64,
                log: log(s),
                file_name: format!("arch_1_{s}_1190000000.arc"),
                key: format!("rv/archive/sha256/{s:064x}"),
                size: 1 << 20,
                sha256: format!("{s:064x}"),
                status: if s == 15 {
                    FileStatus::Tampered
                } else {
                    FileStatus::DeepVerified
                },
                last_deep_verified: Some("2026-11-21T04:00:00Z".into()),
                cross_checked: s == 14,
            })
            .collect();
        let cells = (10..16)
            .map(|s| TimelineCell {
                sequence: s,
                state: match s {
                    13 => CellState::Gap,
                    15 => CellState::Tampered,
                    _ => CellState::Verified,
                },
            })
            .collect();
        AuditReport::new(
            RunInfo {
                target: "s3://rv-lock/rv <script>alert(1)</script>".into(),
                mode: "deep".into(),
                started_at: "2026-11-21T04:00:00Z".into(),
                finished_at: "2026-11-21T04:00:05Z".into(),
            },
            Summary {
                manifest_entries: 5,
                objects_checked: 5,
                objects_deep_verified: 5,
                bytes_rehashed: 5 << 20,
                ..Summary::default()
            },
            vec![
                Finding::info(
                    FindingKind::AcknowledgedGap,
                    "thread 1 sequence 9",
                    "ack by dba",
                )
                .with_log(log(9)),
                Finding::error(
                    FindingKind::SequenceGap,
                    "thread 1 sequence 13",
                    "sequence 13 missing between 12 and 14",
                )
                .with_log(log(13)),
                Finding::error(
                    FindingKind::ObjectChecksumMismatch,
                    "thread 1 sequence 15",
                    "sha256 expected 0f.. found ab..",
                )
                .with_log(log(15))
                .with_entry(4),
            ],
            files,
            vec![ThreadTimeline {
                resetlogs_id: 1_190_000_000,
                thread: 1,
                cells,
            }],
        )
    }

    #[test]
    fn verdict_follows_error_findings_only() {
        let r = sample();
        assert_eq!(r.verdict, Verdict::Findings);
        assert_eq!(r.verdict.exit_code(), 1);
        assert_eq!((r.summary.errors, r.summary.infos), (2, 1));
        assert_eq!(r.findings[0].severity, Severity::Error, "errors first");
        let clean = AuditReport::new(
            RunInfo::default(),
            Summary::default(),
            vec![Finding::info(FindingKind::AcknowledgedGap, "s", "d")],
            vec![],
            vec![],
        );
        assert_eq!(
            clean.verdict.exit_code(),
            0,
            "an acknowledged gap does not fail"
        );
        assert_eq!(clean.could_not_run("store down").verdict.exit_code(), 2);
    }

    #[test]
    fn text_names_every_finding() {
        let t = sample().to_text();
        assert!(t.starts_with("redovault verify: FINDINGS"), "{t}");
        assert!(t.contains("sequence_gap"), "{t}");
        assert!(
            t.contains("object_checksum_mismatch     thread 1 sequence 15"),
            "{t}"
        );
        assert!(t.contains("sequences 10..=15, 1 gap(s)"), "{t}");
    }

    #[test]
    fn json_round_trips_with_stable_names() {
        let r = sample();
        let j = serde_json::to_string(&r).unwrap();
        assert!(j.contains("\"kind\":\"object_checksum_mismatch\""), "{j}");
        assert!(j.contains("\"verdict\":\"findings\""), "{j}");
        let back: AuditReport = serde_json::from_str(&j).unwrap();
        assert_eq!(back, r);
    }

    #[test]
    fn tampering_kinds() {
        assert!(FindingKind::ObjectReplaced.is_tampering());
        assert!(!FindingKind::SequenceGap.is_tampering());
        assert_eq!(sample().counts_by_kind()[&FindingKind::SequenceGap], 1);
    }
}
