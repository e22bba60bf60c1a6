//! The audit report: what a verification run found, in one model rendered three ways.
//!
//! - [`AuditReport::to_text`]: a human summary for a terminal or a log.
//! - JSON: the model itself (`serde`), for machines (`verify --json`).
//! - [`crate::html::render`]: a self-contained HTML page for auditors.
//!
//! The exit code follows [`Verdict`]: 0 clean, 1 findings, 2 could not run.

use redovault_redo::position::ResetlogsId;
use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

pub use crate::finding::{FileStatus, Finding, FindingKind, LogRef, Severity};
use crate::unsealed::UnsealedLog;

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
    pub sequence: u32,
    pub state: CellState,
}

/// The timeline of one thread of one incarnation: every sequence from the first to the last
/// seen, in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ThreadTimeline {
    /// Resetlogs id of the incarnation.
    pub resetlogs_id: ResetlogsId,
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
    /// The collector's streams found in WORM (`<prefix>/streams/`).
    #[serde(default)]
    pub worm_streams: u64,
    /// Entries of their sealed chains.
    #[serde(default)]
    pub stream_chain_entries: u64,
    /// Pieces checked by HEAD.
    #[serde(default)]
    pub pieces_checked: u64,
    /// Pieces downloaded and re-hashed.
    #[serde(default)]
    pub pieces_deep_verified: u64,
    /// Bytes of pieces re-hashed.
    #[serde(default)]
    pub piece_bytes_rehashed: u64,
    /// Pieces in WORM no sealed chain entry records.
    #[serde(default)]
    pub pieces_unreferenced: u64,
    /// Pieces opened with the recovery key whose redo was compared with the archived logs.
    #[serde(default)]
    pub pieces_cross_checked: u64,
    /// Pieces re-hashed whose cross-check waits: no recovery key, or a sequence not archived
    /// (or not re-hashed) yet.
    #[serde(default)]
    pub pieces_cross_check_pending: u64,
    /// Entries of the manifest as sealed in WORM (the local copy's unsealed ones not
    /// counted): what a restore after a wipe of the database host can list.
    #[serde(default)]
    pub sealed_entries: u64,
    /// `shipped_at` (watcher clock, RFC 3339) of the newest entry sealed in WORM.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub newest_sealed_shipped_at: Option<String>,
    /// Archived logs in WORM no sealed manifest lists yet (shipped but not yet sealed).
    #[serde(default)]
    pub unsealed_logs: u64,
    /// Objects under the prefix nothing references (and damaged or foreign objects under
    /// `archive/`).
    #[serde(default)]
    pub unreferenced_objects: u64,
    /// The watcher's quarantined objects.
    #[serde(default)]
    pub quarantined_objects: u64,
    /// Wall time of the checks of WORM (the stream pieces, the archived logs, what else is
    /// under the prefix: the HEADs and the re-hashes), milliseconds: the deep-verify
    /// throughput is the bytes re-hashed over it (0 in reports written before it was
    /// recorded).
    #[serde(default)]
    pub check_millis: u64,
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
    /// The collector's streams in WORM, one line each (none: no stream there).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub streams: Vec<WormStreamResult>,
    /// Archived logs in WORM that no sealed manifest lists yet, identified by their headers
    /// (`restore archive` restores them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unsealed: Vec<UnsealedLog>,
    /// Per stream, its copies (several collectors, WORM prefixes) and how they stand (none:
    /// fewer than two copies audited).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub copies: Vec<crate::copy_audit::StreamCopies>,
    /// Which kind of run it was (full or incremental), from which anchor, how much it read,
    /// and why an incremental run that was asked for fell back to a full one. An incremental
    /// run's `files` and `threads` list the entries it looked at (the new ones and the
    /// objects re-checked), its summary counts the whole sealed manifest.
    #[serde(default)]
    pub run: RunKind,
}

/// One of the collector's streams as its sealed chain in WORM records it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WormStreamResult {
    /// `db<dbid>-rl<resetlogs id>-t<thread>`.
    pub stream: String,
    /// Sealed chain segments read.
    pub sealed_segments: u64,
    /// Chain entries read (one per piece).
    pub entries: u64,
    /// Where the first recorded piece starts (`seq:offset`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first: Option<String>,
    /// Where the stream continues after the last recorded piece.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
    /// The last commit the sealed chain records: SCN.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_commit_scn: Option<u64>,
    /// Its time (RFC 3339, the database's clock).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_commit_time: Option<String>,
    /// Pieces in WORM no sealed entry records.
    pub unreferenced: u64,
    /// Error findings about this stream.
    pub errors: u64,
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
            streams: Vec::new(),
            unsealed: Vec::new(),
            copies: Vec::new(),
            run: RunKind {
                kind: "full".into(),
                ..Default::default()
            },
        }
    }

    /// The same report with what kind of run it was.
    pub fn with_run_kind(mut self, run: RunKind) -> AuditReport {
        self.run = run;
        self
    }

    /// The same report with the copies of each stream.
    pub fn with_copies(mut self, copies: Vec<crate::copy_audit::StreamCopies>) -> AuditReport {
        self.copies = copies;
        self
    }

    /// The same report with the archived logs shipped but not yet sealed.
    pub fn with_unsealed(mut self, unsealed: Vec<UnsealedLog>) -> AuditReport {
        self.unsealed = unsealed;
        self
    }

    /// The same report with its streams in WORM.
    pub fn with_streams(mut self, streams: Vec<WormStreamResult>) -> AuditReport {
        self.streams = streams;
        self
    }

    /// A report for a run that could not complete: exit code 2, with the reason, and
    /// whatever was found before the failure.
    pub fn could_not_run(mut self, reason: impl Into<String>) -> AuditReport {
        self.verdict = Verdict::CouldNotRun;
        self.error = Some(reason.into());
        self
    }

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
        let _ = writeln!(s, "kind:     {}", self.run.describe());
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
        if m.worm_streams > 0 {
            let _ = writeln!(
                s,
                "streams:  {} in WORM, {} chain entries, {} pieces (HEAD), {} re-hashed ({} bytes), {} unreferenced, {} cross-checked with archived logs, {} pending",
                m.worm_streams,
                m.stream_chain_entries,
                m.pieces_checked,
                m.pieces_deep_verified,
                m.piece_bytes_rehashed,
                m.pieces_unreferenced,
                m.pieces_cross_checked,
                m.pieces_cross_check_pending
            );
        }
        if m.unsealed_logs + m.unreferenced_objects + m.quarantined_objects > 0 {
            let _ = writeln!(
                s,
                "unsealed: {} archived log(s) shipped but not yet sealed (restore archive restores them), {} unreferenced object(s), {} quarantined",
                m.unsealed_logs, m.unreferenced_objects, m.quarantined_objects
            );
        }
        for u in &self.unsealed {
            let _ = writeln!(
                s,
                "unsealed: db {} resetlogs {} thread {} sequence {} SCN {}..{} {} bytes {}",
                u.header.db_id,
                u.header.resetlogs_id,
                u.header.thread,
                u.header.sequence,
                u.header.first_scn,
                u.header.next_scn,
                u.size,
                u.key
            );
        }
        for c in &self.copies {
            for r in &c.copies {
                let _ = writeln!(
                    s,
                    "copy:     {} {} ({} {}): ends at {}, last commit SCN {}: {}",
                    c.stream,
                    r.name,
                    r.kind,
                    r.place,
                    r.end.as_deref().unwrap_or("-"),
                    r.last_commit_scn.map_or("-".to_string(), |s| s.to_string()),
                    match &r.diverges_at {
                        Some(p) => format!("diverges at {p}"),
                        None => r.status.clone(),
                    }
                );
            }
        }
        for w in &self.streams {
            let _ = writeln!(
                s,
                "stream:   {}: {} pieces in {} sealed segment(s), {} .. {}, last commit SCN {}, {} unreferenced, {} error(s)",
                w.stream,
                w.entries,
                w.sealed_segments,
                w.first.as_deref().unwrap_or("-"),
                w.next.as_deref().unwrap_or("-"),
                w.last_commit_scn.map_or("-".to_string(), |s| s.to_string()),
                w.unreferenced,
                w.errors
            );
        }
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
            resetlogs_id: ResetlogsId(1_190_000_000),
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
                resetlogs_id: ResetlogsId(1_190_000_000),
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
    fn streams_are_shown_only_when_there_are_some() {
        let r = sample();
        let t = r.to_text();
        assert!(!t.contains("streams:"), "{t}");
        let j = serde_json::to_string(&r).unwrap();
        assert!(!j.contains("\"streams\""), "{j}");
        let mut summary = r.summary.clone();
        summary.worm_streams = 1;
        summary.pieces_checked = 4;
        let r = AuditReport::new(
            RunInfo::default(),
            summary,
            vec![Finding::info(
                FindingKind::PieceUnreferenced,
                "stream db1-rl2-t1 piece k",
                "not sealed yet",
            )],
            vec![],
            vec![],
        )
        .with_streams(vec![WormStreamResult {
            stream: "db1-rl2-t1".into(),
            entries: 4,
            sealed_segments: 1,
            first: Some("5:0".into()),
            next: Some("5:4096".into()),
            unreferenced: 1,
            ..WormStreamResult::default()
        }]);
        let t = r.to_text();
        assert!(t.contains("streams:  1 in WORM"), "{t}");
        assert!(
            t.contains("stream:   db1-rl2-t1: 4 pieces in 1 sealed segment(s), 5:0 .. 5:4096"),
            "{t}"
        );
        assert!(t.contains("piece_unreferenced"), "{t}");
        let back: AuditReport = serde_json::from_str(&serde_json::to_string(&r).unwrap()).unwrap();
        assert_eq!(back, r);
        // A report from before the streams reads back.
        let mut old = serde_json::to_value(sample()).unwrap();
        for k in ["worm_streams", "pieces_checked", "pieces_cross_checked"] {
            old["summary"].as_object_mut().unwrap().remove(k);
        }
        assert_eq!(
            serde_json::from_value::<AuditReport>(old).unwrap(),
            sample()
        );
    }

    #[test]
    fn tampering_kinds() {
        assert!(FindingKind::ObjectReplaced.is_tampering());
        assert!(!FindingKind::SequenceGap.is_tampering());
        assert_eq!(sample().counts_by_kind()[&FindingKind::SequenceGap], 1);
    }
}

/// What the report says of the kind of run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunKind {
    /// "full" or "incremental".
    pub kind: String,
    /// Whether an incremental run was asked for (`--incremental`, `[verify] incremental`).
    pub incremental_requested: bool,
    /// Why an incremental run that was asked for is a full one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback: Option<String>,
    /// The incremental run's anchor: the last segment verified before, and its last entry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anchor_segment: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anchor_index: Option<u64>,
    /// Sealed segments read and audited in this run.
    pub segments_read: u64,
    /// Sealed segments anchored by an earlier run and only compared with the listing.
    pub segments_anchored: u64,
    /// Objects compared with the listing of versions (incremental runs).
    pub objects_listed: u64,
    /// Objects looked at with a HEAD.
    pub objects_headed: u64,
}

impl RunKind {
    /// One line for the text report.
    pub fn describe(&self) -> String {
        let mut s = match (&self.anchor_segment, self.anchor_index) {
            (Some(seg), Some(i)) => format!(
                "incremental from entry {i} (end of {seg}): {} new sealed segment(s) read, {} anchored; {} object(s) compared with the listing of versions, {} HEAD",
                self.segments_read,
                self.segments_anchored,
                self.objects_listed,
                self.objects_headed
            ),
            _ => format!(
                "{}: {} sealed segment(s) read, {} object(s) HEAD",
                if self.kind.is_empty() {
                    "full"
                } else {
                    &self.kind
                },
                self.segments_read,
                self.objects_headed
            ),
        };
        if let Some(f) = &self.fallback {
            s.push_str(&format!(" (incremental asked for; full because {f})"));
        }
        s
    }
}
