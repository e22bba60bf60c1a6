//! What goes in and out of the [`Machine`](super::Machine): events from the shell, actions for
//! it, the alarms it decides on.

use std::path::PathBuf;
use std::time::{Instant, SystemTime};

use crate::manifest::{ManifestEntry, ManifestError, SegmentInfo, Sha256Digest};
use crate::store::{PutOutcome, StoreError};
use crate::watcher::gaps::{SeqRange, ThreadKey};
use crate::watcher::outcomes::{JobError, RecordError, Shipped};
use crate::watcher::scan::{FileIdent, Seen};
use crate::watcher::validate::{LogInfo, Validation};

/// A file regardless of its name: (device, inode).
pub type FileKey = (u64, u64);

/// An alarm the machine decides to raise (the shell words it, sends it and rate-limits it).
#[derive(Debug, Clone)]
pub enum Raise {
    /// Incomplete or damaged past the grace period.
    Damaged {
        path: PathBuf,
        /// Its first bad block.
        block: Option<u32>,
        reason: String,
        size: u64,
    },
    /// The oldest unshipped log is too old.
    Backlog {
        /// Its name.
        file: String,
        /// Its age in seconds.
        age: f64,
    },
    /// Sequences missing below a later one, past the grace period.
    Gap {
        key: ThreadKey,
        /// The missing sequences.
        range: SeqRange,
    },
    /// A file vanished before it was shipped.
    Vanished { path: PathBuf },
    /// A file the patterns match is not a redo log.
    NotRedo {
        path: PathBuf,
        /// What is there.
        reason: String,
        size: u64,
        /// Where.
        offset: u64,
    },
    /// Other bytes under the identity or name of a shipped log.
    Replaced {
        path: PathBuf,
        /// The shipped bytes.
        shipped: Sha256Digest,
        /// These bytes, when read whole.
        found: Option<Sha256Digest>,
        /// The shipped log's manifest entry.
        index: u64,
        /// What it is shipped under ("its name", "thread 1 sequence 9").
        what: String,
    },
    /// Uploads fail.
    UploadFailing {
        path: PathBuf,
        /// The error-metric label.
        kind: &'static str,
        /// Tampering or a broken store rather than an outage.
        critical: bool,
        /// The error.
        message: String,
    },
    /// The archive directories cannot be listed.
    ScanFailing {
        /// One line per directory.
        errors: Vec<String>,
    },
    /// The manifest cannot be written.
    Manifest {
        /// What failed ("manifest write", "manifest close").
        subject: &'static str,
        /// The whole line.
        message: String,
    },
    /// A manifest segment cannot be sealed into WORM yet.
    SealFailing {
        seg: SegmentInfo,
        /// Why.
        message: String,
    },
}

/// A validated log on its way to WORM.
#[derive(Debug, Clone)]
pub struct ValidLog {
    pub path: PathBuf,
    /// Its identity when validated.
    pub ident: FileIdent,
    /// Its headers.
    pub info: LogInfo,
    /// Its SHA-256.
    pub sha256: Sha256Digest,
}

/// What the shell does next.
#[derive(Debug)]
pub enum Action {
    /// Start a validation pass.
    Validate { path: PathBuf },
    /// A validation made while the file was written was used (no pass of its own).
    ValidatedWhileWritten { path: PathBuf },
    /// Follow a file being written.
    Follow {
        path: PathBuf,
        /// Its (device, inode).
        key: FileKey,
    },
    /// Upload a validated log.
    Upload(ValidLog),
    /// Copy a damaged file to the quarantine prefix.
    Quarantine {
        path: PathBuf,
        /// Its identity.
        ident: FileIdent,
    },
    /// Append the manifest entry of a log the store confirmed (durably), then answer
    /// [`Event::Recorded`].
    Record {
        log: ValidLog,
        /// The store's answer.
        shipped: Shipped,
        /// When the upload started.
        started: Instant,
    },
    /// Close the open manifest segment (with `close`) and answer [`Event::Unsealed`].
    CloseSegment {
        /// Close the open segment first.
        close: bool,
    },
    /// Put a closed segment into WORM.
    Seal { seg: SegmentInfo },
    /// Record the seal of a segment in the manifest.
    MarkSealed {
        seg: SegmentInfo,
        key: String,
        /// The store's answer.
        put: PutOutcome,
    },
    /// Raise an alarm.
    Raise(Raise),
    /// Count and remember an error (status `last_error`, `errors` metric).
    Error {
        /// The metric label.
        kind: &'static str,
        /// The line.
        message: String,
    },
    /// Write the status file (and the file index when it changed).
    WriteStatus,
    /// Sequences found missing below a later one (alarmed after the grace period).
    GapOpened {
        key: ThreadKey,
        /// The missing sequences.
        range: SeqRange,
    },
    GapClosed {
        key: ThreadKey,
        /// The sequences that were missing.
        range: SeqRange,
    },
}

/// A job kind, to free its slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobOf {
    /// An upload or a quarantine copy (an upload slot).
    File(PathBuf),
    /// A validation pass.
    Validate(PathBuf),
    /// A segment seal.
    Seal(u64),
    Follow(FileKey),
}

/// What happens to the watcher.
#[derive(Debug)]
pub enum Event {
    /// A rescan listed these files (`complete`: every directory could be listed).
    Listed {
        /// The files.
        seen: Vec<Seen>,
        /// Directories that could not be listed.
        errors: Vec<String>,
        /// When the scan started.
        now: Instant,
        /// The wall clock then.
        wall: SystemTime,
    },
    /// A validation pass ended.
    Validated {
        path: PathBuf,
        result: std::io::Result<Validation>,
        now: Instant,
    },
    /// A follow ended.
    Followed {
        /// (device, inode).
        key: FileKey,
        /// The validation of the whole file, if the follow reached its end.
        result: Option<Validation>,
        now: Instant,
    },
    /// An upload ended.
    Uploaded {
        log: ValidLog,
        /// The store's answer.
        result: Result<Shipped, StoreError>,
        /// When the upload started (for the latency metrics).
        started: Instant,
        now: Instant,
    },
    /// The manifest entry of an uploaded log was appended (`Some`), was already there
    /// (`None`), or could not be written (the error line).
    Recorded {
        log: ValidLog,
        /// What the manifest says.
        result: Result<Option<ManifestEntry>, RecordError>,
        now: Instant,
    },
    /// A quarantine copy ended.
    Quarantined {
        path: PathBuf,
        /// Its identity when read.
        ident: FileIdent,
        /// The key and SHA-256 stored, or why not.
        result: Result<(String, Sha256Digest), JobError>,
        now: Instant,
    },
    /// A job ended without an outcome (it panicked).
    Lost {
        /// What it was.
        job: JobOf,
        now: Instant,
    },
    /// The segments not sealed yet (after [`Action::CloseSegment`]), or why they are unknown.
    Unsealed {
        result: Result<Vec<SegmentInfo>, ManifestError>,
    },
    /// A seal ended.
    Sealed {
        seg: SegmentInfo,
        key: String,
        /// The store's answer.
        result: Result<PutOutcome, StoreError>,
    },
    /// Time passed.
    Tick {
        now: Instant,
        /// The wall clock now.
        wall: SystemTime,
    },
    /// Shutting down: start nothing new.
    Stopping,
}
