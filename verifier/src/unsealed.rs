//! Archived logs in WORM that no sealed manifest lists yet, and every other object under the
//! prefix that nothing references.
//!
//! ```text
//! list <prefix> ─► classify_key (pure: the watcher's key layout)
//!   <prefix>/archive/sha256/<hex> not in a sealed manifest
//!     ─► ranged read of the first blocks ─► identify (pure: db id, resetlogs id, thread,
//!        sequence, first/next SCN from Oracle's headers)
//!     ─► SHA-256 against the key (server checksum by HEAD, or full download when deep)
//!     ─► gaps (pure): missing sequences between the last sealed log and the unsealed ones
//!   anything no manifest, stream chain (crate::stream_chain) or quarantine accounts for
//!     ─► reported (the threat model's unreferenced-object check)
//! ```
//!
//! Invariant: an unsealed log is checked and restorable without the manifest: its key is its
//! SHA-256 (checked) and its first two blocks, Oracle's own headers, say which log it is;
//! each candidate costs one bounded ranged read unless deep.
//!
//! Why: the watcher seals its manifest every `seal_interval` (10 minutes by default) but
//! ships each archived log as soon as it is complete; after a wipe, the logs shipped since
//! the last seal are safe in WORM yet in no sealed manifest. Entry points: [`classify_key`],
//! [`identify`], [`scan`], [`gaps`].

use std::collections::{BTreeMap, BTreeSet, HashSet};

use futures::StreamExt;
use redovault::compress::FrameDecoder;
use redovault::manifest::{Encoding, ManifestEntry, Sha256Digest, StoredForm};
use redovault::store::{ArchiveStore, LockMode, ObjectInfo, StoreError};
use redovault_redo::checksum::block_checksum_ok;
use redovault_redo::header::FILE_HEADER_PREFIX;
use redovault_redo::position::{DbId, LogSeq, ResetlogsId, Scn, ThreadId};
use redovault_redo::{FileHeader, LogState, RedoHeader};
use serde::{Deserialize, Serialize};
use tokio::io::AsyncReadExt;

use crate::finding::{Finding, FindingKind, LogRef};
use crate::objects::{self, ObjectRef};

/// Bytes read from the start of a candidate: blocks 0 and 1 at the largest block size (4096).
pub const HEADER_READ: u64 = 8192;

/// Bytes read from the start of a compressed candidate: zstd's first block (at most 128 KiB
/// of log) with room to spare, which holds the log's blocks 0 and 1.
pub const HEADER_READ_ZSTD: u64 = 256 << 10;

/// What a key under the prefix is, by the watcher's and the collector's key layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyKind {
    /// `<prefix>/archive/sha256/<hex>`: an archived log, named by its SHA-256.
    Archive(Sha256Digest),
    /// `<prefix>/archive/sha256/<hex>.zstd-<level>`: an archived log shipped as one zstd
    /// frame, named by the SHA-256 of the log (not of the object).
    ArchiveZstd(Sha256Digest),
    /// `<prefix>/quarantine/sha256/<hex>`: a file the watcher judged incomplete or damaged.
    Quarantine,
    /// `<prefix>/manifest/…`: the manifest's sealed segments (audited by `crate::chain`).
    Manifest,
    /// `<worm prefix>/streams/…`: the collector's pieces and chains (audited by
    /// `crate::stream_chain`).
    Stream,
    /// Anything else: no writer of redovault puts it there.
    Other,
}

/// What `key` is, given the archive's `prefix` and the streams' `worm_prefix`.
pub fn classify_key(prefix: &str, worm_prefix: &str, key: &str) -> KeyKind {
    if let Some(rest) = strip(worm_prefix, key)
        && rest.starts_with("streams/")
    {
        return KeyKind::Stream;
    }
    let Some(rest) = strip(prefix, key) else {
        return KeyKind::Other;
    };
    if let Some(name) = rest.strip_prefix("archive/sha256/") {
        let (hex, zstd) = match name.split_once(".zstd-") {
            Some((hex, level)) if is_level(level) => (hex, true),
            Some(_) => return KeyKind::Other,
            None => (name, false),
        };
        return match Sha256Digest::from_hex(hex) {
            Some(d) if hex.len() == 64 && zstd => KeyKind::ArchiveZstd(d),
            Some(d) if hex.len() == 64 => KeyKind::Archive(d),
            _ => KeyKind::Other,
        };
    }
    if rest.starts_with("quarantine/sha256/") {
        return KeyKind::Quarantine;
    }
    if rest.starts_with("manifest/") {
        return KeyKind::Manifest;
    }
    KeyKind::Other
}

/// A zstd level as the watcher writes it in a key (`1` to `19`, no sign, no leading zero).
fn is_level(s: &str) -> bool {
    !s.starts_with('0')
        && s.parse::<i32>()
            .is_ok_and(|l| redovault::compress::Level::new(l).is_some() && l.to_string() == s)
}

/// Why an object under `archive/` is not a complete archived redo log (or not the start of a
/// zstd frame the watcher writes), naming the byte offset where the redo headers are at fault.
#[derive(Debug, thiserror::Error)]
pub enum NotArchivedLog {
    /// A zstd frame without the content size the watcher always declares.
    #[error("its zstd frame does not declare the log's size")]
    NoDeclaredSize,
    /// The frame header is not one of a zstd frame.
    #[error("{0}")]
    Frame(redovault::compress::DecompressError),
    /// The declared size cannot be decoded into.
    #[error("{0}")]
    Decoder(std::io::Error),
    /// The frame's blocks do not decode.
    #[error("its zstd frame: {0}")]
    Decode(redovault::compress::DecompressError),
    /// Block 0 or block 1 is not an Oracle redo header.
    #[error("{0}")]
    NotRedo(redovault_redo::NotRedo),
    /// The object is not as long as its redo header declares.
    #[error(
        "the object is {size} bytes, its redo header (offset 24) declares {declared} ({blocks} blocks of {block_size} after block 0): truncated or padded"
    )]
    SizeMismatch {
        /// The object's size.
        size: u64,
        /// The size block 0 declares.
        declared: u64,
        /// Blocks after block 0, as declared.
        blocks: u32,
        block_size: usize,
    },
    /// The object (or what was read of it) ends before block 1 does.
    #[error("the object ends inside block 1 (the redo log header, offset {block_size})")]
    EndsInHeader {
        /// Block size (the offset of block 1).
        block_size: usize,
    },
    /// A header block fails its checksum.
    #[error("block {block} (offset {offset}) fails its checksum")]
    Checksum {
        /// Block 0 or 1.
        block: u32,
        offset: usize,
    },
    /// Block 1 is the header of an online log still being written.
    #[error(
        "block 1 (offset {block_size}) is the header of a CURRENT online log, not of an archived log"
    )]
    Current {
        /// Block size (the offset of block 1).
        block_size: usize,
    },
    /// Block 1 lacks the SCN range of a complete log.
    #[error(
        "block 1 (offset {block_size}) has no first or next SCN (offsets {} and {})",
        block_size + 180,
        block_size + 192
    )]
    NoScnRange {
        /// Block size (the offset of block 1).
        block_size: usize,
    },
}

/// The content size a zstd frame's header declares and the log's first bytes decoded from
/// `head`, the start of the frame (at most [`HEADER_READ`] bytes of log); or why `head` is
/// not the start of a frame the watcher writes. Never panics on any input.
pub fn decode_head(head: &[u8]) -> Result<(u64, Vec<u8>), NotArchivedLog> {
    let size = match redovault::compress::frame_content_size(head) {
        Ok(Some(n)) => n,
        Ok(None) => return Err(NotArchivedLog::NoDeclaredSize),
        Err(e) => return Err(NotArchivedLog::Frame(e)),
    };
    let mut dec = FrameDecoder::new(size).map_err(NotArchivedLog::Decoder)?;
    let mut out = Vec::new();
    let mut rest = head;
    while (out.len() as u64) < HEADER_READ {
        let step = dec.feed(rest).map_err(NotArchivedLog::Decode)?;
        let want = (HEADER_READ as usize - out.len()).min(step.bytes.len());
        out.extend_from_slice(&step.bytes[..want]);
        let (consumed, more) = (step.consumed, step.more);
        rest = &rest[consumed..];
        if rest.is_empty() && !more {
            break;
        }
    }
    Ok((size, out))
}

/// `key` without `prefix/` (an empty prefix strips nothing); None when it is not under it.
fn strip<'a>(prefix: &str, key: &'a str) -> Option<&'a str> {
    if prefix.is_empty() {
        Some(key)
    } else {
        key.strip_prefix(prefix)?.strip_prefix('/')
    }
}

/// The listing prefix of the archive (`<prefix>/`, or everything).
pub fn list_prefix(prefix: &str) -> String {
    if prefix.is_empty() {
        String::new()
    } else {
        format!("{prefix}/")
    }
}

/// Which archived log an object is, as its Oracle headers (blocks 0 and 1) say.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogHeader {
    pub db_id: DbId,
    pub db_name: String,
    /// Resetlogs id of the incarnation.
    pub resetlogs_id: ResetlogsId,
    pub thread: u16,
    pub sequence: u32,
    pub first_scn: u64,
    /// Next SCN (the first of the next log).
    pub next_scn: u64,
    /// Time of the first SCN (ISO 8601, the database's clock).
    pub first_time: String,
    /// Time of the next SCN.
    pub next_time: String,
    pub block_size: u32,
}

/// Which archived log the first bytes (`head`, at least blocks 0 and 1 when the object has
/// them) of an object of `size` bytes are; or why they are not a complete archived redo log,
/// naming the byte offset. Never panics on any input.
pub fn identify(head: &[u8], size: u64) -> Result<LogHeader, NotArchivedLog> {
    let file = FileHeader::parse(head).map_err(NotArchivedLog::NotRedo)?;
    let bs = file.bs();
    let declared = (u64::from(file.block_count) + 1) * u64::from(file.block_size);
    if size != declared {
        return Err(NotArchivedLog::SizeMismatch {
            size,
            declared,
            blocks: file.block_count,
            block_size: bs,
        });
    }
    let (Some(b0), Some(b1)) = (head.get(..bs), head.get(bs..2 * bs)) else {
        return Err(NotArchivedLog::EndsInHeader { block_size: bs });
    };
    if !block_checksum_ok(b0) {
        return Err(NotArchivedLog::Checksum {
            block: 0,
            offset: 0,
        });
    }
    if !block_checksum_ok(b1) {
        return Err(NotArchivedLog::Checksum {
            block: 1,
            offset: bs,
        });
    }
    let h = RedoHeader::parse(b1, file.endian, bs as u64).map_err(NotArchivedLog::NotRedo)?;
    if h.log_state() == LogState::Current {
        return Err(NotArchivedLog::Current { block_size: bs });
    }
    let (Some(first), Some(next)) = (h.first_scn, h.next_scn) else {
        return Err(NotArchivedLog::NoScnRange { block_size: bs });
    };
    Ok(LogHeader {
        db_id: h.db_id,
        db_name: h.db_name,
        resetlogs_id: h.resetlogs_id,
        thread: h.thread.0,
        sequence: h.sequence.0,
        first_scn: first.0,
        next_scn: next.0,
        first_time: h.first_time.to_iso8601(),
        next_time: h.next_time.to_iso8601(),
        block_size: file.block_size,
    })
}

/// How far an unsealed log's SHA-256 was checked against its key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HashCheck {
    /// The server's stored SHA-256 (HEAD) equals the key.
    Server,
    /// Downloaded whole and re-hashed: equals the key.
    Rehashed,
    /// Neither: the server keeps no SHA-256 of it and the run was not deep (restore checks
    /// it while downloading).
    NotChecked,
}

/// An archived log in WORM that no sealed manifest lists yet: shipped but not yet sealed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnsealedLog {
    /// Object key.
    pub key: String,
    /// The version read (None: an unversioned store).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version_id: Option<String>,
    /// Size in bytes (of the log, whatever form the object has).
    pub size: u64,
    /// SHA-256 (hex), from the key.
    pub sha256: String,
    /// The object's form when it is a compressed log (its size and the SHA-256 the server
    /// records of it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stored: Option<StoredForm>,
    /// What its headers say.
    pub header: LogHeader,
    /// How its SHA-256 was checked.
    pub hash_check: HashCheck,
    /// The file name a restore gives it (`<thread>_<sequence>_<resetlogs id>.arc`, Oracle's
    /// `%t_%s_%r`): the original name is only in the manifest.
    pub file_name: String,
}

impl UnsealedLog {
    pub fn log(&self) -> LogRef {
        LogRef {
            resetlogs_id: self.header.resetlogs_id,
            thread: self.header.thread,
            sequence: self.header.sequence,
        }
    }

    /// What findings about it are about.
    pub fn subject(&self) -> String {
        format!(
            "thread {} sequence {} ({})",
            self.header.thread, self.header.sequence, self.key
        )
    }

    /// It as a manifest entry would record it, so that restore's selection by sequence, SCN
    /// and time and its ordering apply unchanged. `index` is 0 and `prev` zero: it is in no
    /// chain.
    pub fn as_entry(&self) -> ManifestEntry {
        let h = &self.header;
        ManifestEntry {
            index: 0,
            db_id: h.db_id,
            db_name: h.db_name.clone(),
            resetlogs_id: h.resetlogs_id,
            thread: ThreadId(h.thread),
            sequence: LogSeq(h.sequence),
            first_scn: Scn(h.first_scn),
            next_scn: Scn(h.next_scn),
            first_time: h.first_time.clone(),
            next_time: h.next_time.clone(),
            size: self.size,
            sha256: Sha256Digest::from_hex(&self.sha256).unwrap_or(Sha256Digest::ZERO),
            object_key: self.key.clone(),
            version_id: self.version_id.clone(),
            retain_until: None,
            shipped_at: String::new(),
            file_name: self.file_name.clone(),
            stored: self.stored.clone(),
            prev: Sha256Digest::ZERO,
        }
    }
}

/// The restore file name of an unsealed log: Oracle's `%t_%s_%r` with `.arc`.
pub fn file_name(h: &LogHeader) -> String {
    format!("{}_{}_{}.arc", h.thread, h.sequence, h.resetlogs_id)
}

/// What the listing found beyond the manifest's entries.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scan {
    /// Archived logs shipped but not yet sealed, intact, in (db id, resetlogs id, thread,
    /// sequence) order.
    pub logs: Vec<UnsealedLog>,
    /// Findings: each unsealed log (info), quarantined objects (info), unreferenced or
    /// damaged objects (error).
    pub findings: Vec<Finding>,
    /// Objects under the prefix listed.
    pub listed: u64,
    /// Objects nothing references that are not intact archived logs.
    pub unreferenced: u64,
    /// Quarantined objects.
    pub quarantined: u64,
    /// Bytes downloaded to re-hash.
    pub bytes_rehashed: u64,
}

/// How [`scan`] works.
#[derive(Debug, Clone)]
pub struct ScanOptions {
    /// The archive's key prefix.
    pub prefix: String,
    /// Where the collector's streams are (their keys are `crate::stream_chain`'s business).
    pub worm_prefix: String,
    /// Where the other collectors' streams are (the same).
    pub worm_copies: Vec<String>,
    /// Download each unsealed log whole and re-hash it.
    pub deep: bool,
    /// The lock mode every object must have (None: no lock required).
    pub lock_mode: Option<LockMode>,
    /// Candidates checked at once.
    pub parallel: usize,
}

/// Lists the prefix and accounts for every object: the keys of `referenced` (manifest
/// entries) are skipped; archive objects no manifest lists are identified by their headers
/// and checked against their key. Fails only when the store cannot list; a store error on one
/// object is returned too (the run cannot vouch for it).
pub async fn scan<S: ArchiveStore, K: std::borrow::Borrow<str> + std::hash::Hash + Eq>(
    store: &S,
    opts: &ScanOptions,
    referenced: &HashSet<K>,
    sealed_logs: &BTreeMap<(DbId, ResetlogsId, u16, u32), Sha256Digest>,
) -> Result<Scan, StoreError> {
    let listing = store.list(&list_prefix(&opts.prefix)).await?;
    let mut out = Scan {
        listed: listing.len() as u64,
        ..Scan::default()
    };
    let mut candidates = Vec::new();
    for obj in listing {
        if referenced.contains(obj.key.as_str()) {
            continue;
        }
        let kind = match classify_key(&opts.prefix, &opts.worm_prefix, &obj.key) {
            KeyKind::Other
                if opts
                    .worm_copies
                    .iter()
                    .any(|p| classify_key(&opts.prefix, p, &obj.key) == KeyKind::Stream) =>
            {
                KeyKind::Stream
            }
            k => k,
        };
        match kind {
            KeyKind::Manifest | KeyKind::Stream => {}
            KeyKind::Quarantine => {
                out.quarantined += 1;
                out.findings.push(Finding::info(
                    FindingKind::QuarantinedObject,
                    obj.key.clone(),
                    format!(
                        "{} bytes the watcher judged incomplete or damaged and kept in WORM as evidence (never in the manifest, never restored)",
                        obj.size
                    ),
                ));
            }
            KeyKind::Other => {
                out.unreferenced += 1;
                out.findings.push(Finding::error(
                    FindingKind::UnreferencedObject,
                    obj.key.clone(),
                    format!(
                        "{} bytes that no manifest entry, stream chain or quarantine accounts for (not a key redovault writes)",
                        obj.size
                    ),
                ));
            }
            KeyKind::Archive(sha) => candidates.push((obj.key, sha, false)),
            KeyKind::ArchiveZstd(sha) => candidates.push((obj.key, sha, true)),
        }
    }
    let checked: Vec<Result<Scan, StoreError>> =
        futures::stream::iter(candidates.into_iter().map(|(key, sha, zstd)| async move {
            let mut one = Scan::default();
            check_candidate(store, opts, &key, sha, zstd, sealed_logs, &mut one).await?;
            Ok(one)
        }))
        .buffered(opts.parallel.max(1))
        .collect()
        .await;
    for one in checked {
        let one = one?;
        out.logs.extend(one.logs);
        out.findings.extend(one.findings);
        out.unreferenced += one.unreferenced;
        out.bytes_rehashed += one.bytes_rehashed;
    }
    out.logs.sort_by_key(|l| {
        (
            l.header.db_id,
            l.header.resetlogs_id,
            l.header.thread,
            l.header.sequence,
        )
    });
    Ok(out)
}

/// One archive object no manifest lists: HEAD, its first blocks, its SHA-256.
async fn check_candidate<S: ArchiveStore>(
    store: &S,
    opts: &ScanOptions,
    key: &str,
    sha: Sha256Digest,
    zstd: bool,
    sealed_logs: &BTreeMap<(DbId, ResetlogsId, u16, u32), Sha256Digest>,
    out: &mut Scan,
) -> Result<(), StoreError> {
    let unreferenced = |out: &mut Scan, kind: FindingKind, detail: String| {
        out.unreferenced += 1;
        out.findings
            .push(Finding::error(kind, key.to_string(), detail));
    };
    let Some(info) = original_version(store, key, sha, out).await? else {
        // Listed, then gone: only a delete does that, which WORM refuses for locked objects.
        unreferenced(
            out,
            FindingKind::ObjectMissing,
            "listed under the archive, but HEAD finds no such object".into(),
        );
        return Ok(());
    };
    let version = info.version_id.clone();
    let read = if zstd { HEADER_READ_ZSTD } else { HEADER_READ };
    let head = read_head(store, key, version.as_deref(), info.size, read).await?;
    let identified = if zstd {
        decode_head(&head).and_then(|(size, head)| Ok((size, identify(&head, size)?)))
    } else {
        identify(&head, info.size).map(|h| (info.size, h))
    };
    let (size, header) = match identified {
        Ok(h) => h,
        Err(why) => {
            unreferenced(
                out,
                FindingKind::UnreferencedObject,
                format!(
                    "an object under archive/ that no manifest lists and that is not a complete archived redo log ({} bytes): {why}; not restored",
                    info.size
                ),
            );
            return Ok(());
        }
    };
    // A compressed log's key names the log's SHA-256; the object's own is the server's.
    let stored = match (zstd, info.sha256) {
        (false, _) => None,
        (true, Some(object_sha)) => Some(StoredForm {
            encoding: Encoding::Zstd,
            size: info.size,
            sha256: Sha256Digest(object_sha.0),
        }),
        (true, None) => {
            unreferenced(
                out,
                FindingKind::UnreferencedObject,
                format!(
                    "a compressed archived log ({} bytes) whose own SHA-256 the server does not record (the watcher always sends it): not restored",
                    info.size
                ),
            );
            return Ok(());
        }
    };
    let mut hash_check = HashCheck::NotChecked;
    if let (false, Some(server)) = (zstd, info.sha256) {
        if server != Sha256Digest(sha.0) {
            unreferenced(
                out,
                FindingKind::ObjectChecksumMismatch,
                format!(
                    "the server's SHA-256 is {}, its key says {sha}; not restored",
                    hex::encode(server)
                ),
            );
            return Ok(());
        }
        hash_check = HashCheck::Server;
    }
    if opts.deep {
        // The archive's own deep path, with the key as the record: its size and SHA-256
        // (decoded first when compressed).
        let recorded = ObjectRef {
            key: key.to_string(),
            version_id: version.clone(),
            size,
            sha256: sha,
            stored: stored.as_ref().map(|s| objects::Encoded {
                size: s.size,
                sha256: Some(s.sha256),
            }),
            put_at: String::new(),
            recorded_in: "its key",
            subject: key.to_string(),
            entry: None,
            log: None,
        };
        let r = objects::deep_check_object(store, &recorded, None, &[]).await?;
        out.bytes_rehashed += r.bytes_rehashed;
        if let Some(f) = r.findings.into_iter().next() {
            unreferenced(out, f.kind, format!("{}; not restored", f.detail));
            return Ok(());
        }
        hash_check = HashCheck::Rehashed;
    }
    let log = UnsealedLog {
        key: key.to_string(),
        version_id: version,
        size,
        sha256: sha.hex(),
        stored,
        file_name: file_name(&header),
        header,
        hash_check,
    };
    let id = (
        log.header.db_id,
        log.header.resetlogs_id,
        log.header.thread,
        log.header.sequence,
    );
    if let Some(other) = sealed_logs.get(&id) {
        unreferenced(
            out,
            FindingKind::UnreferencedObject,
            format!(
                "its headers say thread {} sequence {}, which the sealed manifest records with other content (SHA-256 {other}): a second, different copy of a shipped log; not restored",
                log.header.thread, log.header.sequence
            ),
        );
        return Ok(());
    }
    let mut f = Finding::info(
        FindingKind::ShippedNotSealed,
        log.subject(),
        format!(
            "archived log of database {} ({}) resetlogs id {}, SCN {}..{}, {} bytes, in WORM but in no sealed manifest yet (the watcher seals every seal_interval); SHA-256 {}; restore archive restores it",
            log.header.db_id,
            log.header.db_name,
            log.header.resetlogs_id,
            log.header.first_scn,
            log.header.next_scn,
            log.size,
            match log.hash_check {
                HashCheck::Server => "matches its key (server checksum)",
                HashCheck::Rehashed => "matches its key (re-hashed)",
                HashCheck::NotChecked => "checked while restoring",
            }
        ),
    )
    .with_log(log.log());
    if let Some(mode) = opts.lock_mode {
        match info.lock {
            Some(l) if l.mode == mode => {}
            other => {
                f = Finding::error(
                    FindingKind::LockMissing,
                    log.subject(),
                    format!(
                        "shipped but not yet sealed, and not locked in {mode:?} mode (lock: {})",
                        other.map_or("none".to_string(), |l| format!("{:?}", l.mode))
                    ),
                )
                .with_log(log.log());
            }
        }
    }
    out.findings.push(f);
    out.logs.push(log);
    Ok(())
}

/// The version of a content-addressed key to trust: the oldest whose stored SHA-256 is the
/// key's (else the oldest). A key holding several versions had something written over the
/// watcher's create-only put: that is evidence (`object_replaced`), and no manifest recorded
/// the version, so the content decides which one is the archived log.
async fn original_version<S: ArchiveStore>(
    store: &S,
    key: &str,
    sha: Sha256Digest,
    out: &mut Scan,
) -> Result<Option<ObjectInfo>, StoreError> {
    let versions = store.versions(key).await?;
    if versions.len() <= 1 {
        return store.head(key, None).await;
    }
    out.findings.push(Finding::error(
        FindingKind::ObjectReplaced,
        key.to_string(),
        format!(
            "{} versions under a key the watcher writes once (create-only): something was written over it; the version whose content is the key's SHA-256 is the archived log",
            versions.len()
        ),
    ));
    let mut oldest = None;
    for v in versions.iter().rev() {
        let Some(info) = store.head(key, Some(v)).await? else {
            continue;
        };
        if info.sha256 == Some(Sha256Digest(sha.0)) {
            return Ok(Some(info));
        }
        oldest.get_or_insert(info);
    }
    Ok(oldest)
}

/// The first `read` bytes of a version (fewer when it is shorter), by a ranged GET.
async fn read_head<S: ArchiveStore>(
    store: &S,
    key: &str,
    version: Option<&str>,
    size: u64,
    read: u64,
) -> Result<Vec<u8>, StoreError> {
    let want = size.min(read);
    if want < FILE_HEADER_PREFIX as u64 {
        return Ok(Vec::new());
    }
    let body = store.get(key, Some(0..want), version).await?;
    let mut buf = Vec::with_capacity(want as usize);
    body.take(want)
        .read_to_end(&mut buf)
        .await
        .map_err(|source| StoreError::Io {
            context: format!("read the first {want} bytes of {key}"),
            source,
        })?;
    Ok(buf)
}

/// Missing sequences that involve an unsealed log, per (resetlogs id, thread): a hole between
/// the last sealed log and the first unsealed one, or between unsealed ones. Holes between two
/// sealed logs are the manifest's continuity check's.
pub fn gaps(sealed: &[LogRef], unsealed: &[LogRef]) -> Vec<Finding> {
    let mut by_thread: BTreeMap<(u32, u16), BTreeMap<u32, bool>> = BTreeMap::new();
    for l in sealed {
        by_thread
            .entry((l.resetlogs_id.0, l.thread))
            .or_default()
            .insert(l.sequence, false);
    }
    for l in unsealed {
        by_thread
            .entry((l.resetlogs_id.0, l.thread))
            .or_default()
            .entry(l.sequence)
            .or_insert(true);
    }
    let mut out = Vec::new();
    for ((rl, th), seqs) in by_thread {
        let mut prev: Option<(u32, bool)> = None;
        for (&seq, &is_unsealed) in &seqs {
            if let Some((p, p_unsealed)) = prev
                && seq > p + 1
                && (is_unsealed || p_unsealed)
            {
                let (from, to) = (p + 1, seq - 1);
                let subject = if from == to {
                    format!("thread {th} sequence {from}")
                } else {
                    format!("thread {th} sequences {from} to {to}")
                };
                out.push(
                    Finding::error(
                        FindingKind::SequenceGap,
                        subject,
                        format!(
                            "missing between {} sequence {p} and {} sequence {seq} (resetlogs id {rl}): in neither a sealed manifest nor WORM's archive",
                            if p_unsealed { "unsealed" } else { "sealed" },
                            if is_unsealed { "unsealed" } else { "sealed" },
                        ),
                    )
                    .with_log(LogRef {
                        resetlogs_id: ResetlogsId(rl),
                        thread: th,
                        sequence: from,
                    }),
                );
            }
            prev = Some((seq, is_unsealed));
        }
    }
    out
}

/// The database ids among `sealed` and `unsealed` logs.
pub fn db_ids<'a>(
    sealed: impl Iterator<Item = &'a ManifestEntry>,
    unsealed: &[UnsealedLog],
) -> BTreeSet<u32> {
    sealed
        .map(|e| e.db_id.0)
        .chain(unsealed.iter().map(|l| l.header.db_id.0))
        .collect()
}

/// Which database `restore archive` restores: the one asked for, else the only one there is.
pub fn choose_db(
    asked: Option<u32>,
    present: &BTreeSet<u32>,
) -> Result<Option<u32>, ChooseDbError> {
    match asked {
        Some(id) if present.contains(&id) || present.is_empty() => Ok(Some(id)),
        Some(id) => Err(ChooseDbError::Absent {
            asked: id,
            present: present.clone(),
        }),
        None if present.len() <= 1 => Ok(present.iter().next().copied()),
        None => Err(ChooseDbError::Several(present.clone())),
    }
}

/// Why `restore archive` cannot tell which database to restore: the operator must say (or
/// correct) `--db-id`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChooseDbError {
    /// The database asked for has nothing in WORM.
    #[error("database id {asked} has no archived log in WORM (present: {present:?})")]
    Absent {
        /// The `--db-id` given.
        asked: u32,
        /// The databases WORM holds logs of.
        present: BTreeSet<u32>,
    },
    /// No `--db-id`, and WORM holds logs of more than one database.
    #[error("WORM holds archived logs of several databases {0:?}: choose one with --db-id")]
    Several(BTreeSet<u32>),
}

/// What `restore archive` may restore of database `db` (None: every database): the sealed
/// manifest's entries and the unsealed logs as entries ([`UnsealedLog::as_entry`]), an
/// unsealed log dropped when a sealed entry records the same log. Returns them with the keys
/// of the unsealed ones.
pub fn restore_candidates(
    sealed: Vec<ManifestEntry>,
    unsealed: &[UnsealedLog],
    db: Option<u32>,
) -> (Vec<ManifestEntry>, HashSet<String>) {
    let mine = |id: u32| db.is_none_or(|d| d == id);
    let mut out: Vec<ManifestEntry> = sealed.into_iter().filter(|e| mine(e.db_id.0)).collect();
    let known: HashSet<(DbId, ResetlogsId, u16, u32)> = out
        .iter()
        .map(|e| (e.db_id, e.resetlogs_id, e.thread.0, e.sequence.0))
        .collect();
    let mut keys = HashSet::new();
    for l in unsealed {
        let h = &l.header;
        if mine(h.db_id.0)
            && !known.contains(&(
                DbId(h.db_id.0),
                ResetlogsId(h.resetlogs_id.0),
                h.thread,
                h.sequence,
            ))
        {
            keys.insert(l.key.clone());
            out.push(l.as_entry());
        }
    }
    (out, keys)
}

#[cfg(test)]
mod tests {
    use super::*;
    use redovault_redo::writer::{BlockSize, Compat, Endian, LogConfig, LogWriter, ScnForm};

    fn log(seq: u32) -> LogRef {
        LogRef {
            resetlogs_id: ResetlogsId(7),
            thread: 1,
            sequence: seq,
        }
    }

    #[test]
    fn keys_are_classified_by_the_watchers_layout() {
        let sha = "ab".repeat(32);
        assert_eq!(
            classify_key("rv", "rv", &format!("rv/archive/sha256/{sha}")),
            KeyKind::Archive(Sha256Digest::from_hex(&sha).unwrap())
        );
        assert_eq!(
            classify_key("", "", &format!("archive/sha256/{sha}")),
            KeyKind::Archive(Sha256Digest::from_hex(&sha).unwrap())
        );
        assert_eq!(
            classify_key("rv", "rv", "rv/archive/sha256/abc"),
            KeyKind::Other
        );
        assert_eq!(
            classify_key("rv", "rv", &format!("rv/quarantine/sha256/{sha}")),
            KeyKind::Quarantine
        );
        assert_eq!(
            classify_key("rv", "rv", "rv/manifest/000000000001-000000000002-x.jsonl"),
            KeyKind::Manifest
        );
        assert_eq!(
            classify_key("rv", "rv", "rv/streams/db1-rl2-t1/pieces/x"),
            KeyKind::Stream
        );
        assert_eq!(
            classify_key("rv", "rv/c", "rv/c/streams/db1-rl2-t1/x"),
            KeyKind::Stream
        );
        assert_eq!(classify_key("rv", "rv", "rv/notes.txt"), KeyKind::Other);
        // A compressed log: the key names the log's SHA-256 and the level.
        assert_eq!(
            classify_key("rv", "rv", &format!("rv/archive/sha256/{sha}.zstd-3")),
            KeyKind::ArchiveZstd(Sha256Digest::from_hex(&sha).unwrap())
        );
        for bad in [
            ".zstd-0", ".zstd-20", ".zstd-03", ".zstd-", ".zstd-+3", ".gz",
        ] {
            assert_eq!(
                classify_key("rv", "rv", &format!("rv/archive/sha256/{sha}{bad}")),
                KeyKind::Other,
                "{bad}"
            );
        }
        assert_eq!(classify_key("rv", "rv", "rvx/archive"), KeyKind::Other);
    }

    /// A real-format archived log (block size 4096: blocks 0 and 1 fill [`HEADER_READ`]).
    fn archived(seq: u32) -> Vec<u8> {
        let w = LogWriter::new(LogConfig {
            block_size: BlockSize::B4096,
            endian: Endian::Little,
            compat: Compat::V19_0,
            scn_form: ScnForm::Big,
            db_id: DbId(4242),
            db_name: "PROD".into(),
            thread: ThreadId(1),
            sequence: LogSeq(seq),
            resetlogs_id: ResetlogsId(7),
            resetlogs_scn: Scn(500),
            activation_id: 1,
            first_scn: Scn(1000),
            first_time: 1_772_847_880,
            log_blocks: 100,
            con_uid: 1,
            file_number: 1,
            control_seq: 1,
        })
        .unwrap();
        let mut bytes = w.archive_file_header();
        bytes.extend(w.switched_header(Scn(2000), 1_772_847_900).unwrap());
        bytes
    }

    #[test]
    fn a_compressed_log_is_identified_from_the_start_of_its_frame() {
        let log = archived(42);
        let frame = zstd::bulk::compress(&log, 3).unwrap();
        let (size, head) =
            decode_head(&frame[..frame.len().min(HEADER_READ_ZSTD as usize)]).unwrap();
        assert_eq!(size, log.len() as u64);
        assert_eq!(head, log[..log.len().min(HEADER_READ as usize)]);
        assert_eq!(identify(&head, size).unwrap().sequence, 42);
        // Not a frame, a frame without its size, junk: errors, never panics.
        assert!(decode_head(&log).is_err());
        assert!(decode_head(&[]).is_err());
        let mut no_size = zstd::stream::write::Encoder::new(Vec::new(), 3).unwrap();
        std::io::Write::write_all(&mut no_size, &log).unwrap();
        let no_size = no_size.finish().unwrap();
        assert!(
            decode_head(&no_size)
                .unwrap_err()
                .to_string()
                .contains("size")
        );
        for cut in [1, 5, 17, 100] {
            let _ = decode_head(&frame[..cut.min(frame.len())]);
        }
    }

    #[test]
    fn an_archived_log_is_identified_by_its_headers() {
        let bytes = archived(42);
        let h = identify(&bytes[..HEADER_READ as usize], bytes.len() as u64).unwrap();
        assert_eq!(
            (h.db_id, h.resetlogs_id, h.thread, h.sequence),
            (DbId(4242), ResetlogsId(7), 1, 42)
        );
        assert_eq!((h.first_scn, h.next_scn), (1000, 2000));
        assert_eq!(h.db_name, "PROD");
        assert_eq!(file_name(&h), "1_42_7.arc");
    }

    #[test]
    fn anything_else_is_named_with_its_offset_and_never_panics() {
        let bytes = archived(42);
        let size = bytes.len() as u64;
        // Not redo at all.
        let e = identify(b"%PDF-1.7 not a redo log at all, no", 34)
            .unwrap_err()
            .to_string();
        assert!(e.contains("offset 0"), "{e}");
        assert!(identify(&[], 0).is_err());
        // Truncated: size differs from what block 0 declares.
        let e = identify(&bytes[..HEADER_READ as usize], size - 512)
            .unwrap_err()
            .to_string();
        assert!(e.contains("truncated"), "{e}");
        // A damaged header block.
        let mut bad = bytes[..HEADER_READ as usize].to_vec();
        let bs = FileHeader::parse(&bad).unwrap().bs();
        bad[bs + 30] ^= 0xFF;
        let e = identify(&bad, size).unwrap_err().to_string();
        assert!(e.contains("block 1"), "{e}");
        // Every prefix of a real log: an error or an identity, never a panic.
        for n in (0..HEADER_READ as usize).step_by(97) {
            let _ = identify(&bytes[..n], size);
        }
        for flip in 0..64 {
            let mut b = bytes[..HEADER_READ as usize].to_vec();
            let at = flip * 61 % b.len();
            b[at] ^= 0x5A;
            let _ = identify(&b, size);
        }
    }

    #[test]
    fn gaps_name_holes_next_to_unsealed_logs_only() {
        let sealed = [log(1), log(2), log(4), log(5)];
        let unsealed = [log(8), log(9), log(11)];
        let f = gaps(&sealed, &unsealed);
        let subjects: Vec<&str> = f.iter().map(|f| f.subject.as_str()).collect();
        assert_eq!(
            subjects,
            vec!["thread 1 sequences 6 to 7", "thread 1 sequence 10"],
            "the hole at 3 is between sealed logs: the manifest's continuity reports it"
        );
        assert!(f.iter().all(|f| f.kind == FindingKind::SequenceGap));
        assert!(gaps(&sealed[..2], &[log(3), log(4)]).is_empty());
        assert!(gaps(&[], &[log(3), log(4)]).is_empty());
    }

    fn unsealed(db: u32, seq: u32) -> UnsealedLog {
        let header = LogHeader {
            db_id: DbId(db),
            db_name: "PROD".into(),
            resetlogs_id: ResetlogsId(7),
            thread: 1,
            sequence: seq,
            first_scn: u64::from(seq) * 100,
            next_scn: u64::from(seq + 1) * 100,
            first_time: format!("2026-12-06T09:{seq:02}:00Z"),
            next_time: format!("2026-12-06T09:{:02}:00Z", seq + 1),
            block_size: 512,
        };
        UnsealedLog {
            key: format!(
                "rv/archive/sha256/{:064x}",
                u64::from(db) << 32 | u64::from(seq)
            ),
            version_id: Some("v1".into()),
            size: 1024,
            sha256: format!("{:064x}", u64::from(db) << 32 | u64::from(seq)),
            file_name: file_name(&header),
            stored: None,
            header,
            hash_check: HashCheck::Server,
        }
    }

    #[test]
    fn restore_takes_the_unsealed_logs_of_the_chosen_database_after_the_sealed_ones() {
        let sealed: Vec<ManifestEntry> = [1u32, 2]
            .iter()
            .map(|s| {
                let mut e = unsealed(5, *s).as_entry();
                e.index = u64::from(*s);
                e.file_name = format!("arch1_{s}_7.dbf");
                e
            })
            .collect();
        let logs = [
            unsealed(5, 2), // the sealed manifest has it already
            unsealed(5, 3),
            unsealed(5, 4),
            unsealed(6, 9), // another database
        ];
        let (all, keys) = restore_candidates(sealed.clone(), &logs, Some(5));
        let seqs: Vec<u32> = all.iter().map(|e| e.sequence.0).collect();
        assert_eq!(seqs, vec![1, 2, 3, 4]);
        assert_eq!(keys.len(), 2);
        assert!(keys.contains(&logs[1].key) && keys.contains(&logs[2].key));
        let e3 = &all[2];
        assert_eq!(e3.file_name, "1_3_7.arc");
        assert_eq!((e3.first_scn.0, e3.next_scn.0), (300, 400));
        assert_eq!(e3.sha256.hex(), logs[1].sha256);
        assert_eq!(e3.version_id.as_deref(), Some("v1"));
        let (all, keys) = restore_candidates(sealed, &logs, None);
        assert_eq!((all.len(), keys.len()), (5, 3));
    }

    #[test]
    fn the_database_is_the_one_asked_or_the_only_one() {
        let one: BTreeSet<u32> = [5].into();
        let two: BTreeSet<u32> = [5, 6].into();
        assert_eq!(choose_db(None, &one), Ok(Some(5)));
        assert_eq!(choose_db(None, &BTreeSet::new()), Ok(None));
        assert!(
            choose_db(None, &two)
                .unwrap_err()
                .to_string()
                .contains("--db-id")
        );
        assert_eq!(choose_db(Some(6), &two), Ok(Some(6)));
        assert!(choose_db(Some(7), &two).is_err());
    }
}
