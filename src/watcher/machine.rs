//! The watcher's decisions: a pure state machine over the archived logs it tracks.
//!
//! ```text
//!  scan listing ─┐                           ┌─► Validate / Upload / Quarantine / Follow
//!  job outcomes ─┼─► Machine::on(event) ─────┼─► Record (manifest entry), Seal, MarkSealed
//!  tick (time) ──┘    files, queues, tally   └─► Raise (alarm), Error, WriteStatus, CloseSegment
//! ```
//!
//! No tokio, no store, no clock: time comes in with the events, what the manifest knows is
//! asked through [`Shipments`], and every effect goes out as an [`Action`] that the async shell
//! (`watcher::run`) carries out and answers with the next event. Per file:
//!
//! ```text
//!  queued ─► validating ─► validated (queued, ready) ─► uploading ─► recorded ─► shipped
//!    ▲  │         │  └─► incomplete ─(grace)─► damaged ─► quarantined   ▲
//!    │  │         ├─► not redo                                          │
//!    │  │         └─► replaced (other bytes than a shipped log)         │
//!    │  └─(transient error)─► retry after backoff ──────────────────────┘
//!    └──── a file changed under the same name (identity) ───────────────
//! ```
//!
//! Invariants: every change of a file's state goes through [`Machine::update`], which keeps the
//! aggregates (backlog, per-state counts) and the queues (due times, oldest first) in step, so no
//! event walks every tracked file; nothing becomes `Shipped` before the manifest entry was
//! written ([`Event::Recorded`]); at most `parallel_uploads` uploads and quarantine copies and
//! [`Limits::validations`] validations run at once.

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use super::gaps::{Gaps, SeqRange, ThreadKey};
use super::ledger::IndexEntry;
use super::outcomes::{JobError, RecordError, Shipped, UploadError};
use super::scan::{FileIdent, Seen};
use super::status;
use super::validate::{Completeness, LogInfo, Validation};
use crate::manifest::{
    LogIdentity, ManifestDir, ManifestEntry, ManifestError, Recorded, SegmentInfo, Sha256Digest,
};
use crate::store::StoreError;

mod messages;
mod tally;
#[cfg(test)]
mod tests;

pub use messages::{Action, Event, FileKey, JobOf, Raise, ValidLog};
pub use tally::Tally;
use tally::{Lane, Rank, Share};

/// Upload slots per validation pass. The passes run beside the uploads rather than in their
/// slots, ahead of them (at most `parallel_uploads` validated logs waiting), so that an upload
/// slot never idles while the next log is read and hashed. One pass outruns one upload on a
/// free core, but not several with small logs on a busy machine: the peer bench with 16 MiB
/// logs and 4 slots found one pass the limit (all 4 slots busy 6.6 s of 38 s). One pass per
/// two slots, at least one.
pub const UPLOADS_PER_VALIDATION: usize = 2;

/// Validations of followed files kept for their renamed log (beyond this, the oldest go).
const FOLLOWED_KEPT: usize = 64;

/// The (device, inode) of a file identity.
pub fn key_of(i: &FileIdent) -> FileKey {
    (i.dev, i.ino)
}

/// What the manifest knows, as the machine asks it (the manifest directory, or a map in tests).
pub trait Shipments {
    /// The entry recording this log, if any.
    fn by_identity(&self, id: &LogIdentity) -> Option<Recorded>;
    /// The entry recording a log under this file name, if any.
    fn by_file_name(&self, name: &str) -> Option<Recorded>;
    /// The index of the entry with these bytes, if any.
    fn by_sha256(&self, sha: &Sha256Digest) -> Option<u64>;
    /// Entries in the open (unsealed, not closed) segment.
    fn open_len(&self) -> usize;
}

impl Shipments for ManifestDir {
    fn by_identity(&self, id: &LogIdentity) -> Option<Recorded> {
        ManifestDir::by_identity(self, id)
    }
    fn by_file_name(&self, name: &str) -> Option<Recorded> {
        ManifestDir::by_file_name(self, name)
    }
    fn by_sha256(&self, sha: &Sha256Digest) -> Option<u64> {
        ManifestDir::by_sha256(self, sha)
    }
    fn open_len(&self) -> usize {
        ManifestDir::open_len(self)
    }
}

/// The settings the decisions depend on (from `[watch]`, `[state]`).
#[derive(Debug, Clone)]
pub struct Limits {
    /// Uploads and quarantine copies at once.
    pub parallel_uploads: usize,
    /// How long a file may stay incomplete (or a gap open) before its alarm.
    pub grace_period: Duration,
    /// The longest wait between two attempts on one file.
    pub retry_max_backoff: Duration,
    /// The age of the oldest unshipped log that raises `backlog`.
    pub backlog_alarm_age: Duration,
    /// How often the status file is written.
    pub status_interval: Duration,
    /// How often the open manifest segment is closed and sealed.
    pub seal_interval: Duration,
    /// Entries that close the open segment at once.
    pub segment_max_entries: usize,
}

impl Limits {
    /// Validation passes at once: one per [`UPLOADS_PER_VALIDATION`] upload slots.
    pub fn validations(&self) -> usize {
        (self.parallel_uploads / UPLOADS_PER_VALIDATION).max(1)
    }
}

/// Where one file stands.
#[derive(Debug, Clone)]
pub enum FileState {
    /// To validate (or, with `ready`, to upload) once `due`.
    Queued {
        /// Not before.
        due: Instant,
        /// Its headers and SHA-256 once validated.
        ready: Option<Box<(LogInfo, Sha256Digest)>>,
    },
    /// A validation pass runs on it.
    Validating,
    /// Its upload, or its quarantine copy, runs.
    Uploading,
    /// In the store, waiting for its manifest entry.
    Recording,
    /// Not complete (yet), or damaged.
    Incomplete {
        /// Headers, when readable.
        info: Option<LogInfo>,
        /// The first missing or bad block.
        block: Option<u32>,
        reason: String,
        /// Past the grace period: `damaged_log` raised, reported as damaged.
        alarmed: bool,
        /// Its copy to the quarantine prefix.
        quarantine: Quarantine,
    },
    /// Not a redo log (block 0 says so): reported once, left alone until it changes.
    NotRedo {
        /// Offset of the field that is not a redo log's.
        offset: u64,
        /// What is there.
        reason: String,
    },
    /// Shipped (or found in the manifest with the same bytes).
    Shipped,
    /// Other bytes than the shipped log it names: never shipped.
    Replaced {
        /// The shipped bytes.
        shipped: Sha256Digest,
        /// These bytes, when read whole.
        found: Option<Sha256Digest>,
        /// The manifest entry of the shipped log.
        index: u64,
    },
}

impl FileState {
    /// A job runs on the file.
    fn busy(&self) -> bool {
        matches!(
            self,
            FileState::Validating | FileState::Uploading | FileState::Recording
        )
    }
}

/// The quarantine copy of a damaged file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Quarantine {
    /// Not damaged yet (within the grace period).
    NotYet,
    /// To copy once due.
    Due(Instant),
    /// Copying.
    Running,
    /// Stored under this key.
    Stored(String),
}

/// One tracked file.
#[derive(Debug, Clone)]
pub struct Tracked {
    ident: FileIdent,
    mtime: SystemTime,
    first_seen: SystemTime,
    /// When this version (identity) of the file was first seen.
    detected: Instant,
    attempts: u32,
    failing: bool,
    /// Gone from the directory while a job was running on it: dropped when the job ends.
    gone: bool,
    state: FileState,
    /// What it adds to the aggregates and queues now (taken out exactly so on a change).
    filed: Option<Share>,
}

/// The watcher's state and decisions.
#[derive(Debug)]
pub struct Machine {
    limits: Limits,
    files: HashMap<PathBuf, Tracked>,
    tally: Tally,
    /// Not due yet: (due, path).
    timers: BTreeSet<(Instant, PathBuf)>,
    /// Due uploads and quarantine copies: (lane, rank, path).
    due_slots: BTreeSet<(Lane, Rank, PathBuf)>,
    /// Due validations: (rank, path).
    due_checks: BTreeSet<(Rank, PathBuf)>,
    /// (since, path) of the backlog, oldest first.
    oldest: BTreeSet<(SystemTime, PathBuf)>,
    /// (end of grace, path) of incomplete files not alarmed yet.
    graces: BTreeSet<(Instant, PathBuf)>,
    /// Paths by (device, inode).
    by_key: BTreeSet<(FileKey, PathBuf)>,
    /// The latest time seen.
    clock: Instant,
    uploads: usize,
    validations: usize,
    ids_in_flight: HashSet<LogIdentity>,
    following: HashSet<FileKey>,
    followed: HashMap<FileIdent, Validation>,
    followed_order: VecDeque<FileIdent>,
    gaps: Gaps,
    gap_seen: HashMap<(ThreadKey, u32, u32), Instant>,
    index: HashMap<PathBuf, IndexEntry>,
    index_dirty: bool,
    seals_in_flight: HashSet<u64>,
    next_status: Instant,
    next_seal: Instant,
    stopping: bool,
}

/// 1 s, 2 s, 4 s... up to `max`.
pub fn backoff(attempts: u32, max: Duration) -> Duration {
    let exp = Duration::from_secs(1).saturating_mul(1u32 << attempts.saturating_sub(1).min(16));
    exp.min(max)
}

/// The file name of a path, as the manifest records it.
pub fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

impl Machine {
    /// A machine that knows the shipped logs (`gaps`, from the manifest) and the file index.
    pub fn new(
        limits: Limits,
        gaps: Gaps,
        index: HashMap<PathBuf, IndexEntry>,
        now: Instant,
    ) -> Machine {
        Machine {
            next_seal: now + limits.seal_interval,
            limits,
            files: HashMap::new(),
            tally: Tally::default(),
            timers: BTreeSet::new(),
            due_slots: BTreeSet::new(),
            due_checks: BTreeSet::new(),
            oldest: BTreeSet::new(),
            graces: BTreeSet::new(),
            by_key: BTreeSet::new(),
            clock: now,
            uploads: 0,
            validations: 0,
            ids_in_flight: HashSet::new(),
            following: HashSet::new(),
            followed: HashMap::new(),
            followed_order: VecDeque::new(),
            gaps,
            gap_seen: HashMap::new(),
            index,
            index_dirty: false,
            seals_in_flight: HashSet::new(),
            next_status: now,
            stopping: false,
        }
    }

    /// Feeds one event; returns what to do, in order.
    pub fn on(&mut self, event: Event, m: &impl Shipments) -> Vec<Action> {
        let mut out = Vec::new();
        match event {
            Event::Listed {
                seen,
                errors,
                now,
                wall,
            } => {
                self.advance(now);
                let complete = errors.is_empty();
                if !complete {
                    for e in &errors {
                        out.push(Action::Error {
                            kind: "scan",
                            message: e.clone(),
                        });
                    }
                    out.push(Action::Raise(Raise::ScanFailing { errors }));
                }
                self.on_listing(seen, complete, now, wall, m, &mut out);
            }
            Event::Validated { path, result, now } => {
                self.advance(now);
                self.validations = self.validations.saturating_sub(1);
                self.on_validated(&path, result, now, m, &mut out);
                self.forget_if_gone(path, &mut out);
            }
            Event::Followed { key, result, now } => {
                self.advance(now);
                self.on_followed(key, result);
            }
            Event::Uploaded {
                log,
                result,
                started,
                now,
            } => {
                self.advance(now);
                self.uploads = self.uploads.saturating_sub(1);
                let path = log.path.clone();
                self.on_uploaded(log, result, started, now, &mut out);
                self.forget_if_gone(path, &mut out);
            }
            Event::Recorded { log, result, now } => {
                self.advance(now);
                self.ids_in_flight.remove(&log.info.identity());
                let path = log.path.clone();
                self.on_recorded(log, result, now, &mut out);
                self.forget_if_gone(path, &mut out);
                if m.open_len() >= self.limits.segment_max_entries && !self.stopping {
                    // A full segment is sealed at once.
                    self.next_seal = now + self.limits.seal_interval;
                    out.push(Action::CloseSegment { close: true });
                }
            }
            Event::Quarantined {
                path,
                ident,
                result,
                now,
            } => {
                self.advance(now);
                self.uploads = self.uploads.saturating_sub(1);
                self.on_quarantined(&path, ident, result, now, &mut out);
                self.forget_if_gone(path, &mut out);
            }
            Event::Lost { job, now } => {
                self.advance(now);
                self.on_lost(job, now, &mut out);
            }
            Event::Unsealed { result } => self.on_unsealed(result, &mut out),
            Event::Sealed { seg, key, result } => {
                self.seals_in_flight.remove(&seg.first);
                match result {
                    Ok(put) => out.push(Action::MarkSealed { seg, key, put }),
                    Err(e) => {
                        out.push(Action::Error {
                            kind: "seal",
                            message: e.to_string(),
                        });
                        out.push(Action::Raise(Raise::SealFailing {
                            seg,
                            message: e.to_string(),
                        }));
                    }
                }
            }
            Event::Tick { now, wall } => {
                self.advance(now);
                self.on_tick(now, wall, m, &mut out);
            }
            Event::Stopping => self.stopping = true,
        }
        self.pump(m, &mut out);
        out
    }

    /// The aggregates.
    pub fn tally(&self) -> Tally {
        self.tally
    }

    /// Jobs holding an upload slot, and validations running.
    pub fn in_flight(&self) -> usize {
        self.uploads + self.validations
    }

    /// The missing and unshipped sequences.
    pub fn gaps(&self) -> &Gaps {
        &self.gaps
    }

    /// Files tracked.
    pub fn tracked(&self) -> usize {
        self.files.len()
    }

    /// Where `path` stands.
    pub fn state_of(&self, path: &Path) -> Option<&FileState> {
        self.files.get(path).map(|t| &t.state)
    }

    /// When this version of `path` was first seen (for the latency metrics).
    pub fn detected(&self, path: &Path, ident: FileIdent) -> Option<Instant> {
        self.files
            .get(path)
            .filter(|t| t.ident == ident)
            .map(|t| t.detected)
    }

    /// The file index to write, when it changed since the last call.
    pub fn take_index(&mut self) -> Option<HashMap<PathBuf, IndexEntry>> {
        std::mem::take(&mut self.index_dirty).then(|| self.index.clone())
    }

    /// Marks the file index as to be written again (it could not be).
    pub fn index_unwritten(&mut self) {
        self.index_dirty = true;
    }

    /// The age and name of the oldest unshipped file at `wall`.
    pub fn oldest(&self, wall: SystemTime) -> Option<(f64, String)> {
        self.oldest.first().map(|(since, p)| {
            let age = wall.duration_since(*since).unwrap_or_default();
            (age.as_secs_f64(), p.display().to_string())
        })
    }

    /// The backlog part of the status file at `wall`, and its damaged, replaced and not-redo
    /// files (this walks the files: it runs once per status interval, not per event).
    pub fn status(&self, wall: SystemTime) -> FilesStatus {
        let oldest = self.oldest(wall);
        let mut s = FilesStatus {
            backlog: status::Backlog {
                files: self.tally.backlog_files,
                bytes: self.tally.backlog_bytes,
                oldest_age_seconds: oldest.as_ref().map(|(a, _)| *a),
                oldest_file: oldest.map(|(_, f)| f),
                failing: self.tally.failing,
                incomplete: self.tally.incomplete,
            },
            ..FilesStatus::default()
        };
        for (p, t) in &self.files {
            let path = p.display().to_string();
            match &t.state {
                FileState::Incomplete {
                    alarmed: true,
                    block,
                    reason,
                    quarantine,
                    ..
                } => s.damaged.push(status::DamagedFile {
                    path,
                    block: *block,
                    reason: reason.clone(),
                    quarantine_key: match quarantine {
                        Quarantine::Stored(k) => Some(k.clone()),
                        _ => None,
                    },
                }),
                FileState::NotRedo { offset, reason } => s.not_redo.push(status::NotRedoFile {
                    path,
                    offset: *offset,
                    reason: reason.clone(),
                }),
                FileState::Replaced {
                    shipped,
                    found,
                    index,
                } => s.replaced.push(status::ReplacedFile {
                    path,
                    shipped_sha256: shipped.hex(),
                    found_sha256: found.map(|f| f.hex()),
                    manifest_index: *index,
                }),
                _ => {}
            }
        }
        s.damaged.sort_by(|a, b| a.path.cmp(&b.path));
        s.replaced.sort_by(|a, b| a.path.cmp(&b.path));
        s.not_redo.sort_by(|a, b| a.path.cmp(&b.path));
        s
    }

    // ----------------------------------------------------------------------------------------
    // Scanning

    fn on_listing(
        &mut self,
        seen: Vec<Seen>,
        complete: bool,
        now: Instant,
        wall: SystemTime,
        m: &impl Shipments,
        out: &mut Vec<Action>,
    ) {
        let mut present: HashSet<PathBuf> = HashSet::with_capacity(seen.len());
        for s in seen {
            if s.temp {
                self.start_follow(&s.path, s.ident, out);
                continue;
            }
            present.insert(s.path.clone());
            match self.files.get(&s.path) {
                None => {
                    let shipped = self
                        .index
                        .get(&s.path)
                        .is_some_and(|ix| ix.ident == s.ident && m.by_sha256(&ix.sha256).is_some());
                    let t = Tracked {
                        ident: s.ident,
                        mtime: s.mtime,
                        first_seen: wall,
                        detected: now,
                        attempts: 0,
                        failing: false,
                        gone: false,
                        filed: None,
                        // Shipped before, unchanged since: no need to read it again.
                        state: if shipped {
                            FileState::Shipped
                        } else {
                            FileState::Queued {
                                due: now,
                                ready: None,
                            }
                        },
                    };
                    self.insert(s.path, t);
                }
                Some(t) if t.gone || t.ident != s.ident => {
                    let was_shipped = matches!(t.state, FileState::Shipped);
                    self.update(&s.path, |t| {
                        t.gone = false;
                        t.ident = s.ident;
                        t.mtime = s.mtime;
                        t.detected = now;
                        t.attempts = 0;
                        if !t.state.busy() {
                            t.state = FileState::Queued {
                                due: now,
                                ready: None,
                            };
                        }
                    });
                    if was_shipped {
                        self.index.remove(&s.path);
                        self.index_dirty = true;
                    }
                }
                Some(_) => {}
            }
        }
        if !complete {
            // A directory that cannot be listed says nothing about its files: none is gone.
            return;
        }
        if present.len() == self.files.len() {
            return;
        }
        let gone: Vec<PathBuf> = self
            .files
            .keys()
            .filter(|p| !present.contains(*p))
            .cloned()
            .collect();
        for p in gone {
            self.forget(p, out);
        }
    }

    /// A file is no longer in its directory: dropped (once no job runs on it), with
    /// `vanished_unshipped` if it was never shipped nor reported.
    fn forget(&mut self, p: PathBuf, out: &mut Vec<Action>) {
        if self.files.get(&p).is_some_and(|t| t.state.busy()) {
            // Its job decides: an upload that completes still counts (the bytes were read).
            self.update(&p, |t| t.gone = true);
            return;
        }
        let Some(t) = self.remove(&p) else { return };
        if self.index.remove(&p).is_some() {
            self.index_dirty = true;
        }
        let known = match &t.state {
            FileState::Incomplete { info: Some(i), .. } => Some(i.identity()),
            FileState::Queued { ready: Some(r), .. } => Some(r.0.identity()),
            _ => None,
        };
        if let Some(id) = known {
            self.gaps.forget_unshipped(&id);
        }
        let unreported = match &t.state {
            FileState::Incomplete { alarmed, .. } => !alarmed,
            s => matches!(s, FileState::Queued { .. }) || s.busy(),
        };
        if unreported {
            out.push(Action::Raise(Raise::Vanished { path: p }));
        }
    }

    fn forget_if_gone(&mut self, path: PathBuf, out: &mut Vec<Action>) {
        if self
            .files
            .get(&path)
            .is_some_and(|t| t.gone && !t.state.busy())
        {
            self.forget(path, out);
        }
    }

    // ----------------------------------------------------------------------------------------
    // Dispatch

    /// Starts jobs while slots are free: due uploads and quarantine copies (uploads first,
    /// oldest detection first) in the upload slots, and due validations beside them, ahead of
    /// the uploads by at most `parallel_uploads` validated logs.
    fn pump(&mut self, m: &impl Shipments, out: &mut Vec<Action>) {
        if self.stopping {
            return;
        }
        let parallel = self.limits.parallel_uploads;
        loop {
            let mut started = false;
            if self.uploads < parallel
                && let Some((lane, _, path)) = self.due_slots.pop_first()
            {
                match lane {
                    Lane::Upload => self.start_upload(path, m, out),
                    _ => self.start_quarantine(path, out),
                }
                started = true;
            }
            if (self.tally.ready as usize) < parallel
                && let Some((rank, path)) = self.due_checks.first().cloned()
            {
                // Logs read while they were written need no pass of their own: they go first
                // and take no validation slot.
                let read = !rank.0;
                if read || self.validations < self.limits.validations() {
                    self.due_checks.remove(&(rank, path.clone()));
                    self.start_validation(path, m, out);
                    started = true;
                }
            }
            if !started {
                break;
            }
        }
    }

    fn start_validation(&mut self, path: PathBuf, m: &impl Shipments, out: &mut Vec<Action>) {
        let Some(ident) = self.files.get(&path).map(|t| t.ident) else {
            return;
        };
        if let Some(v) = self.followed.remove(&ident) {
            // Already read while it was written: no second pass.
            out.push(Action::ValidatedWhileWritten { path: path.clone() });
            self.set_state(&path, FileState::Validating);
            let now = self.clock;
            self.on_validated(&path, Ok(v), now, m, out);
            return;
        }
        self.set_state(&path, FileState::Validating);
        self.validations += 1;
        out.push(Action::Validate { path });
    }

    /// Starts the upload of a validated log, deciding again first: the manifest or another
    /// copy in flight may have changed the answer since it was queued.
    fn start_upload(&mut self, path: PathBuf, m: &impl Shipments, out: &mut Vec<Action>) {
        let Some(t) = self.files.get(&path) else {
            return;
        };
        let FileState::Queued {
            ready: Some(ready), ..
        } = &t.state
        else {
            return;
        };
        let (info, sha) = (**ready).clone();
        let ident = t.ident;
        let now = self.clock;
        if !self.decide(&path, &info, sha, now, m, out) {
            return;
        }
        self.set_state(&path, FileState::Uploading);
        self.uploads += 1;
        self.ids_in_flight.insert(info.identity());
        out.push(Action::Upload(ValidLog {
            path,
            ident,
            info,
            sha256: sha,
        }));
    }

    fn start_quarantine(&mut self, path: PathBuf, out: &mut Vec<Action>) {
        let Some(ident) = self.update(&path, |t| {
            if let FileState::Incomplete { quarantine, .. } = &mut t.state {
                *quarantine = Quarantine::Running;
            }
            t.ident
        }) else {
            return;
        };
        self.uploads += 1;
        out.push(Action::Quarantine { path, ident });
    }

    /// Follows a file being written (a temporary name, or a log still short), at most
    /// `parallel_uploads` at once.
    fn start_follow(&mut self, path: &Path, ident: FileIdent, out: &mut Vec<Action>) {
        let key = key_of(&ident);
        if self.stopping
            || self.following.contains(&key)
            || self.following.len() >= self.limits.parallel_uploads
            || self.followed.contains_key(&ident)
        {
            return;
        }
        self.following.insert(key);
        self.refile(key);
        out.push(Action::Follow {
            path: path.to_path_buf(),
            key,
        });
    }

    fn on_followed(&mut self, key: FileKey, result: Option<Validation>) {
        self.following.remove(&key);
        if let Some(v) = result {
            self.followed_order.push_back(v.ident);
            self.followed.insert(v.ident, v);
            while self.followed_order.len() > FOLLOWED_KEPT {
                if let Some(old) = self.followed_order.pop_front() {
                    self.followed.remove(&old);
                    self.refile(key_of(&old));
                }
            }
        }
        self.refile(key);
    }

    // ----------------------------------------------------------------------------------------
    // Outcomes

    fn on_validated(
        &mut self,
        path: &Path,
        result: std::io::Result<Validation>,
        now: Instant,
        m: &impl Shipments,
        out: &mut Vec<Action>,
    ) {
        let max = self.limits.retry_max_backoff;
        let Some(ident) = self.files.get(path).map(|t| t.ident) else {
            return;
        };
        let v = match result {
            Ok(v) => v,
            Err(e) => {
                self.update(path, |t| {
                    t.attempts += 1;
                    t.state = FileState::Queued {
                        due: now + backoff(t.attempts, max),
                        ready: None,
                    };
                });
                if e.kind() != std::io::ErrorKind::NotFound {
                    out.push(Action::Error {
                        kind: "validate_io",
                        message: format!("cannot read {}: {e}", path.display()),
                    });
                }
                return;
            }
        };
        if v.ident != ident {
            self.set_state(
                path,
                FileState::Queued {
                    due: now,
                    ready: None,
                },
            );
            return;
        }
        match v.verdict {
            Completeness::Changed => self.set_state(
                path,
                FileState::Queued {
                    due: now + Duration::from_millis(200),
                    ready: None,
                },
            ),
            Completeness::Incomplete {
                info,
                block,
                reason,
                short,
            } => {
                if short {
                    // Still being written, perhaps: follow it to its end.
                    self.start_follow(path, ident, out);
                }
                if let Some(i) = &info {
                    self.gaps.seen_unshipped(&i.identity(), &i.db_name);
                }
                self.update(path, |t| {
                    let (alarmed, quarantine) = match &t.state {
                        FileState::Incomplete {
                            alarmed,
                            quarantine,
                            ..
                        } => (*alarmed, quarantine.clone()),
                        _ => (false, Quarantine::NotYet),
                    };
                    t.state = FileState::Incomplete {
                        info,
                        block,
                        reason,
                        alarmed,
                        quarantine,
                    };
                });
                if let Some(r) = m.by_file_name(&file_name(path)) {
                    let found = v.sha256;
                    self.replaced(path, r, found, "its name".into(), out);
                }
            }
            Completeness::NotRedo { offset, reason } => {
                let size = ident.size;
                self.set_state(
                    path,
                    FileState::NotRedo {
                        offset,
                        reason: reason.clone(),
                    },
                );
                // Not a redo log: left where it is (it may be a datafile copy the patterns
                // match), reported once; under the name of a shipped log, that log was
                // replaced.
                if let Some(r) = m.by_file_name(&file_name(path)) {
                    self.replaced(path, r, None, "its name".into(), out);
                } else {
                    out.push(Action::Raise(Raise::NotRedo {
                        path: path.to_path_buf(),
                        reason,
                        size,
                        offset,
                    }));
                }
            }
            Completeness::Complete { info } => {
                let Some(sha) = v.sha256 else { return };
                if self.decide(path, &info, sha, now, m, out) {
                    self.gaps.seen_unshipped(&info.identity(), &info.db_name);
                    self.set_state(
                        path,
                        FileState::Queued {
                            due: now,
                            ready: Some(Box::new((info, sha))),
                        },
                    );
                }
            }
        }
    }

    /// A complete log: recognised as shipped, refused as a replacement, put back while another
    /// copy is in flight (all false), or to ship (true).
    fn decide(
        &mut self,
        path: &Path,
        info: &LogInfo,
        sha: Sha256Digest,
        now: Instant,
        m: &impl Shipments,
        out: &mut Vec<Action>,
    ) -> bool {
        let id = info.identity();
        let digest = Sha256Digest(sha.0);
        if let Some(r) = m.by_identity(&id) {
            if r.sha256 == digest {
                self.mark_shipped(path, sha);
            } else {
                let what = format!("thread {} sequence {}", id.thread, id.sequence);
                self.replaced(path, r, Some(digest), what, out);
            }
            return false;
        }
        if let Some(r) = m.by_file_name(&file_name(path))
            && r.sha256 != digest
        {
            self.replaced(path, r, Some(digest), "its name".into(), out);
            return false;
        }
        if self.stopping || self.ids_in_flight.contains(&id) {
            // Another copy of the same log is being uploaded: look again afterwards.
            self.set_state(
                path,
                FileState::Queued {
                    due: now + Duration::from_millis(500),
                    ready: Some(Box::new((info.clone(), sha))),
                },
            );
            return false;
        }
        true
    }

    fn replaced(
        &mut self,
        path: &Path,
        r: Recorded,
        found: Option<Sha256Digest>,
        what: String,
        out: &mut Vec<Action>,
    ) {
        self.update(path, |t| {
            if !matches!(t.state, FileState::Incomplete { .. }) {
                t.state = FileState::Replaced {
                    shipped: r.sha256,
                    found,
                    index: r.index,
                };
            }
        });
        out.push(Action::Raise(Raise::Replaced {
            path: path.to_path_buf(),
            shipped: r.sha256,
            found,
            index: r.index,
            what,
        }));
    }

    fn on_uploaded(
        &mut self,
        log: ValidLog,
        result: Result<Shipped, StoreError>,
        started: Instant,
        now: Instant,
        out: &mut Vec<Action>,
    ) {
        let e = match result {
            Ok(shipped) if shipped.confirms(log.ident.size, &log.sha256) => {
                // In flight until its entry is written: a copy of it waits.
                self.set_state(&log.path, FileState::Recording);
                out.push(Action::Record {
                    log,
                    shipped,
                    started,
                });
                return;
            }
            Ok(Shipped { put, .. }) => {
                // The store contract makes this impossible; never record it as shipped.
                self.ids_in_flight.remove(&log.info.identity());
                out.push(Action::Error {
                    kind: "upload_other",
                    message: format!(
                        "{}: the store confirmed {} bytes with sha256 {} instead of the object \
                         of the {}-byte log with {}",
                        log.path.display(),
                        put.size,
                        hex::encode(put.sha256),
                        log.ident.size,
                        hex::encode(log.sha256)
                    ),
                });
                self.retry_upload(log, false, now);
                return;
            }
            Err(e) => UploadError(e),
        };
        self.ids_in_flight.remove(&log.info.identity());
        let kind = e.kind();
        out.push(Action::Error {
            kind,
            message: format!("{}: {e}", log.path.display()),
        });
        if e.source_changed() {
            // Changed since its validation: the new bytes are validated again.
            self.set_state(
                &log.path,
                FileState::Queued {
                    due: now,
                    ready: None,
                },
            );
            return;
        }
        out.push(Action::Raise(Raise::UploadFailing {
            path: log.path.clone(),
            kind,
            critical: e.is_tampering(),
            message: e.to_string(),
        }));
        self.retry_upload(log, true, now);
    }

    fn on_recorded(
        &mut self,
        log: ValidLog,
        result: Result<Option<ManifestEntry>, RecordError>,
        now: Instant,
        out: &mut Vec<Action>,
    ) {
        match result {
            Ok(entry) => {
                if let Some(e) = &entry {
                    self.gaps.shipped(e);
                }
                if self
                    .files
                    .get(&log.path)
                    .is_some_and(|t| t.ident != log.ident)
                {
                    // Changed after it was read: the new version is looked at on its own.
                    self.set_state(
                        &log.path,
                        FileState::Queued {
                            due: now,
                            ready: None,
                        },
                    );
                } else {
                    self.mark_shipped(&log.path, log.sha256);
                }
            }
            Err(e) => {
                let message = e.to_string();
                out.push(Action::Error {
                    kind: "manifest_write",
                    message: message.clone(),
                });
                out.push(Action::Raise(Raise::Manifest {
                    subject: "manifest write",
                    message,
                }));
                // The next attempt finds the object (same key, same bytes) and appends.
                self.retry_upload(log, false, now);
            }
        }
    }

    fn mark_shipped(&mut self, path: &Path, sha: Sha256Digest) {
        let Some(ident) = self.update(path, |t| {
            t.state = FileState::Shipped;
            t.failing = false;
            t.ident
        }) else {
            return;
        };
        self.index.insert(
            path.to_path_buf(),
            IndexEntry {
                path: path.to_path_buf(),
                ident,
                sha256: Sha256Digest(sha.0),
            },
        );
        self.index_dirty = true;
    }

    /// Queues a validated log again after its backoff.
    fn retry_upload(&mut self, log: ValidLog, failed: bool, now: Instant) {
        let max = self.limits.retry_max_backoff;
        let ValidLog {
            path, info, sha256, ..
        } = log;
        self.update(&path, |t| {
            t.attempts += 1;
            t.failing |= failed;
            t.state = FileState::Queued {
                due: now + backoff(t.attempts, max),
                ready: Some(Box::new((info, sha256))),
            };
        });
    }

    fn on_quarantined(
        &mut self,
        path: &Path,
        ident: FileIdent,
        result: Result<(String, Sha256Digest), JobError>,
        now: Instant,
        out: &mut Vec<Action>,
    ) {
        let due = now + backoff(2, self.limits.retry_max_backoff);
        let error = self.update(path, |t| {
            let FileState::Incomplete { quarantine, .. } = &mut t.state else {
                return None;
            };
            match result {
                Ok((key, _)) => {
                    *quarantine = Quarantine::Stored(key);
                    None
                }
                Err(e) => {
                    *quarantine = if t.ident == ident {
                        Quarantine::Due(due)
                    } else {
                        Quarantine::NotYet
                    };
                    Some(e)
                }
            }
        });
        if let Some(Some(e)) = error {
            out.push(Action::Error {
                kind: "quarantine",
                message: e.to_string(),
            });
        }
    }

    fn on_lost(&mut self, job: JobOf, now: Instant, out: &mut Vec<Action>) {
        match &job {
            JobOf::File(_) => self.uploads = self.uploads.saturating_sub(1),
            JobOf::Validate(_) => self.validations = self.validations.saturating_sub(1),
            _ => {}
        }
        match job {
            JobOf::File(path) | JobOf::Validate(path) => {
                let due = now + backoff(1, self.limits.retry_max_backoff);
                self.set_state(&path, FileState::Queued { due, ready: None });
                self.forget_if_gone(path, out);
            }
            JobOf::Seal(first) => {
                self.seals_in_flight.remove(&first);
            }
            JobOf::Follow(key) => {
                self.following.remove(&key);
                self.refile(key);
            }
        }
    }

    fn on_unsealed(
        &mut self,
        result: Result<Vec<SegmentInfo>, ManifestError>,
        out: &mut Vec<Action>,
    ) {
        match result {
            Ok(segs) => {
                for seg in segs {
                    if self.seals_in_flight.insert(seg.first) {
                        out.push(Action::Seal { seg });
                    }
                }
            }
            Err(e) => {
                out.push(Action::Error {
                    kind: "manifest_write",
                    message: e.to_string(),
                });
                out.push(Action::Raise(Raise::Manifest {
                    subject: "manifest close",
                    message: format!("cannot close the manifest segment: {e}"),
                }));
            }
        }
    }

    // ----------------------------------------------------------------------------------------
    // Time

    fn on_tick(
        &mut self,
        now: Instant,
        wall: SystemTime,
        m: &impl Shipments,
        out: &mut Vec<Action>,
    ) {
        // Incomplete or damaged past the grace period (unchanged since detected).
        while let Some((ends, path)) = self.graces.first().cloned() {
            if ends > now {
                break;
            }
            self.graces.remove(&(ends, path.clone()));
            let raised = self.update(&path, |t| match &mut t.state {
                FileState::Incomplete {
                    alarmed: alarmed @ false,
                    quarantine,
                    block,
                    reason,
                    ..
                } => {
                    *alarmed = true;
                    *quarantine = Quarantine::Due(now);
                    Some(Raise::Damaged {
                        path: path.clone(),
                        block: *block,
                        reason: reason.clone(),
                        size: t.ident.size,
                    })
                }
                _ => None,
            });
            if let Some(Some(r)) = raised {
                out.push(Action::Raise(r));
            }
        }
        if let Some((age, file)) = self.oldest(wall)
            && age > self.limits.backlog_alarm_age.as_secs_f64()
        {
            out.push(Action::Raise(Raise::Backlog { file, age }));
        }
        self.check_gaps(now, out);
        if now >= self.next_status {
            self.next_status = now + self.limits.status_interval;
            out.push(Action::WriteStatus);
        }
        let full = m.open_len() >= self.limits.segment_max_entries;
        if (now >= self.next_seal || full) && !self.stopping {
            self.next_seal = now + self.limits.seal_interval;
            out.push(Action::CloseSegment { close: true });
        }
    }

    /// Gaps: reported at once in status and metrics, alarmed once they outlast the grace.
    fn check_gaps(&mut self, now: Instant, out: &mut Vec<Action>) {
        let missing = self.gaps.all_missing();
        let current: HashSet<(ThreadKey, u32, u32)> =
            missing.iter().map(|(k, r)| (*k, r.first, r.last)).collect();
        let closed: Vec<_> = self
            .gap_seen
            .keys()
            .filter(|g| !current.contains(g))
            .copied()
            .collect();
        for g in closed {
            self.gap_seen.remove(&g);
            out.push(Action::GapClosed {
                key: g.0,
                range: SeqRange {
                    first: g.1,
                    last: g.2,
                },
            });
        }
        for (key, range) in missing {
            let first_seen = *self
                .gap_seen
                .entry((key, range.first, range.last))
                .or_insert_with(|| {
                    out.push(Action::GapOpened { key, range });
                    now
                });
            if now.duration_since(first_seen) >= self.limits.grace_period {
                out.push(Action::Raise(Raise::Gap { key, range }));
            }
        }
    }
}

/// The files part of the status file.
#[derive(Debug, Default)]
pub struct FilesStatus {
    pub backlog: status::Backlog,
    pub damaged: Vec<status::DamagedFile>,
    pub replaced: Vec<status::ReplacedFile>,
    /// Not redo logs.
    pub not_redo: Vec<status::NotRedoFile>,
}
