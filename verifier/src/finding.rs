//! One problem found, what it concerns and how serious it is: what every check produces and
//! the report collects.

use redovault_redo::position::ResetlogsId;
use serde::{Deserialize, Serialize};

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
    /// An archived log differs from the streamed redo of the same sequence (the collector's
    /// segments, or a WORM piece opened with the recovery key).
    ArchiveDiffersFromStream,
    /// A piece a stream's sealed chain records is not in WORM.
    PieceMissing,
    /// A piece in WORM that no sealed chain entry records (info: its chain segment is not
    /// sealed yet, or a crash left it between its upload and its record).
    PieceUnreferenced,
    /// A stream's chain does not run on: an entry does not start where the previous one
    /// ended, or does not name the previous piece.
    StreamChainGap,
    /// A piece's clear header, or its key, does not match its chain entry.
    PieceHeaderMismatch,
    /// A piece does not open with the recovery key, or its content does not match its
    /// header.
    PieceUnreadable,
    /// Info: pieces were re-hashed but their redo not compared with the archived logs (no
    /// recovery key configured).
    PieceCrossCheckNotDone,
    /// Info: an archived log in WORM (its key its SHA-256, its headers naming the log) that no
    /// sealed manifest lists yet: shipped since the watcher's last seal. `restore archive`
    /// restores it.
    ShippedNotSealed,
    /// An object under the prefix that no manifest entry, stream chain or quarantine accounts
    /// for, or an object under `archive/` that is not an intact archived redo log: not
    /// restored.
    UnreferencedObject,
    /// Info: a file the watcher judged incomplete or damaged, kept under `quarantine/` as
    /// evidence (expected, not tampering; never restored).
    QuarantinedObject,
    /// Info: a copy of a stream (a collector's, or a WORM prefix's) ends before the copy the
    /// others agree with, and is equal to it where both hold redo (its collector was down or
    /// cut off, or has not sealed yet).
    CopyBehind,
    /// Two copies of a stream hold different redo at the same position: at most one holds
    /// what the database wrote.
    CopiesDiverge,
    /// Info: the collector directory holds a write-ahead file (`wal/`), the copy of its last
    /// multi-stream group commits: after a machine crash, acknowledged redo may be only there
    /// until the collector opens the store again (which replays it). Normal while a collector
    /// runs; after a crash, start the collector (or its `commits` command) before a restore.
    CollectorWalPending,
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
            FindingKind::PieceMissing => "piece_missing",
            FindingKind::PieceUnreferenced => "piece_unreferenced",
            FindingKind::StreamChainGap => "stream_chain_gap",
            FindingKind::PieceHeaderMismatch => "piece_header_mismatch",
            FindingKind::PieceUnreadable => "piece_unreadable",
            FindingKind::PieceCrossCheckNotDone => "piece_cross_check_not_done",
            FindingKind::ShippedNotSealed => "shipped_not_sealed",
            FindingKind::UnreferencedObject => "unreferenced_object",
            FindingKind::QuarantinedObject => "quarantined_object",
            FindingKind::CopyBehind => "copy_behind",
            FindingKind::CopiesDiverge => "copies_diverge",
            FindingKind::CollectorWalPending => "collector_wal_pending",
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
                | FindingKind::PieceHeaderMismatch
                | FindingKind::CopiesDiverge
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
    pub resetlogs_id: ResetlogsId,
    pub thread: u16,
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
