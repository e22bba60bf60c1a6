//! Per-object checks of archived logs in WORM.
//!
//! - [`fast_check`]: no download. HEAD of the key's latest version (a version newer than the
//!   one the manifest recorded means someone wrote over the key: `object_replaced`), then HEAD
//!   of the recorded version: size, SHA-256 (the server's checksum or the metadata the
//!   watcher wrote with the version, immutable under the lock), lock mode and retain-until
//!   against the policy.
//! - [`deep_check`]: downloads the recorded version (streamed) and re-hashes it; when the
//!   collector holds the streamed redo of the same sequence, or WORM pieces of it were opened
//!   in this run, compares them block by block.
//!
//! Both work on an [`ObjectRef`] (what a chain entry recorded of an object), so the pieces of
//! the collector's streams (`crate::stream_chain`) are checked by the same code as archived
//! logs; [`fast_check`] and [`deep_check`] take a manifest entry.

use std::time::Duration;

use redovault::compress::FrameDecoder;
use redovault::manifest::{ManifestEntry, Sha256Digest};
use redovault::store::{ArchiveStore, LockMode, ObjectInfo, StoreError};
use redovault::wire::StreamId;
use sha2::{Digest, Sha256};
use tokio::io::AsyncReadExt;

use crate::finding::{FileStatus, Finding, FindingKind, LogRef};
use crate::units::{Difference, PieceUnits, SeqDigests, UNIT, unit_digest};

/// Slack between the writer's clock (`shipped_at`, `uploaded_at`) and the S3 server's (retain-until
/// is computed from the server's `Date`): a retain-until this much short of the policy still
/// passes.
pub const CLOCK_TOLERANCE: Duration = Duration::from_secs(600);

/// What every archived object must have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// The lock mode required (None: no lock required, e.g. the local NOT-WORM store).
    pub lock_mode: Option<LockMode>,
    /// Retain-until must be at least this long after the entry's `shipped_at` (a piece's
    /// `uploaded_at`).
    pub min_retention: Duration,
}

/// The result of checking one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectResult {
    /// How far it got and what it found.
    pub status: FileStatus,
    pub findings: Vec<Finding>,
    /// Bytes downloaded and hashed.
    pub bytes_rehashed: u64,
    /// Whether it was compared with the streamed redo.
    pub cross_checked: bool,
    /// WORM pieces compared with this archived log (deep check only).
    pub pieces: Vec<PieceComparison>,
}

impl ObjectResult {
    fn new(status: FileStatus, findings: Vec<Finding>) -> ObjectResult {
        ObjectResult {
            status,
            findings,
            bytes_rehashed: 0,
            cross_checked: false,
            pieces: Vec::new(),
        }
    }
}

/// The outcome of comparing one WORM piece's redo of a sequence with its archived log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PieceComparison {
    /// The piece's stream.
    pub stream: StreamId,
    /// Its index in the stream's chain.
    pub index: u64,
    /// Its object key.
    pub key: String,
    /// The sequence compared.
    pub seq: u32,
    /// The first difference, if any.
    pub diff: Option<Difference>,
    /// 512-byte units compared.
    pub compared: u64,
}

/// What a chain entry recorded of one object: the manifest's entry of an archived log, or a
/// stream's entry of a piece.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectRef {
    /// Object key.
    pub key: String,
    /// The version recorded (None: the only one, local store).
    pub version_id: Option<String>,
    /// Size recorded (of the original when the object is an encoding of it).
    pub size: u64,
    /// SHA-256 recorded (of the original when the object is an encoding of it).
    pub sha256: Sha256Digest,
    /// The object's own form when it is a compressed log: what HEAD and the download are
    /// compared with before decoding.
    pub stored: Option<Encoded>,
    /// When it was put (RFC 3339): retain-until is measured from it.
    pub put_at: String,
    /// Who recorded it, for details: "the manifest", "its chain entry".
    pub recorded_in: &'static str,
    /// What findings are about ("thread 1 sequence 42 (arch_1_42.arc)").
    pub subject: String,
    /// The manifest entry (archived logs only).
    pub entry: Option<u64>,
    /// The log concerned.
    pub log: Option<LogRef>,
}

/// The object's bytes when they encode the log (zstd): their size, and their SHA-256 when
/// something recorded it (the manifest always does; an unsealed log has only what the
/// server says).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encoded {
    /// Size of the object.
    pub size: u64,
    /// SHA-256 of the object, when recorded.
    pub sha256: Option<Sha256Digest>,
}

impl ObjectRef {
    /// Size and SHA-256 (when recorded) the object itself must have.
    pub fn object_digest(&self) -> (u64, Option<Sha256Digest>) {
        self.stored
            .as_ref()
            .map_or((self.size, Some(self.sha256)), |s| (s.size, s.sha256))
    }

    /// `key@version`: how the state between runs names it.
    pub fn id(&self) -> String {
        format!("{}@{}", self.key, self.version_id.as_deref().unwrap_or("-"))
    }

    /// An error finding about it.
    pub fn finding(&self, kind: FindingKind, detail: String) -> Finding {
        let mut f = Finding::error(kind, self.subject.clone(), detail);
        f.entry = self.entry;
        f.log = self.log;
        f
    }
}

impl From<&ManifestEntry> for ObjectRef {
    fn from(e: &ManifestEntry) -> ObjectRef {
        ObjectRef {
            key: e.object_key.clone(),
            version_id: e.version_id.clone(),
            size: e.size,
            sha256: e.sha256,
            stored: e.stored.as_ref().map(|s| Encoded {
                size: s.size,
                sha256: Some(s.sha256),
            }),
            put_at: e.shipped_at.clone(),
            recorded_in: "the manifest",
            subject: format!(
                "thread {} sequence {} ({})",
                e.thread.0, e.sequence.0, e.file_name
            ),
            entry: Some(e.index),
            log: Some(LogRef {
                resetlogs_id: e.resetlogs_id,
                thread: e.thread.0,
                sequence: e.sequence.0,
            }),
        }
    }
}

fn check_info(e: &ObjectRef, info: &ObjectInfo, policy: &Policy, out: &mut Vec<Finding>) -> bool {
    let mut hash_checked = false;
    let (size, recorded_sha) = e.object_digest();
    if info.size != size {
        out.push(e.finding(
            FindingKind::ObjectSizeMismatch,
            format!(
                "object {} is {} bytes, {} says {size}",
                e.key, info.size, e.recorded_in
            ),
        ));
    }
    if let (Some(sha), Some(want)) = (info.sha256, recorded_sha) {
        hash_checked = true;
        if sha != Sha256Digest(want.0) {
            out.push(e.finding(
                FindingKind::ObjectChecksumMismatch,
                format!(
                    "object {} has SHA-256 {}, {} says {want}",
                    e.key,
                    hex::encode(sha),
                    e.recorded_in,
                ),
            ));
        }
    }
    if let Some(mode) = policy.lock_mode {
        match &info.lock {
            None => out.push(e.finding(
                FindingKind::LockMissing,
                format!("object {} has no Object Lock retention", e.key),
            )),
            Some(l) => {
                if l.mode != mode {
                    out.push(e.finding(
                        FindingKind::LockMissing,
                        format!(
                            "object {} is locked in {:?} mode, the policy requires {mode:?}",
                            e.key, l.mode
                        ),
                    ));
                }
                let shipped = chrono::DateTime::parse_from_rfc3339(&e.put_at)
                    .map(|d| d.with_timezone(&chrono::Utc))
                    .ok();
                if let Some(shipped) = shipped {
                    let min = chrono::Duration::from_std(
                        policy.min_retention.saturating_sub(CLOCK_TOLERANCE),
                    )
                    .unwrap_or(chrono::Duration::MAX);
                    if let Some(need) = shipped.checked_add_signed(min)
                        && l.retain_until < need
                    {
                        out.push(e.finding(
                            FindingKind::RetentionTooShort,
                            format!(
                                "object {} is retained until {}, the policy requires {} ({} after it was put)",
                                e.key,
                                l.retain_until.to_rfc3339(),
                                need.to_rfc3339(),
                                humantime(policy.min_retention)
                            ),
                        ));
                    }
                }
            }
        }
    }
    hash_checked
}

fn humantime(d: Duration) -> String {
    let s = d.as_secs();
    if s.is_multiple_of(86_400) {
        format!("{}d", s / 86_400)
    } else {
        format!("{s}s")
    }
}

/// The fast path of an archived log: HEAD only.
pub async fn fast_check<S: ArchiveStore>(
    store: &S,
    e: &ManifestEntry,
    policy: &Policy,
) -> Result<ObjectResult, StoreError> {
    fast_check_object(store, &ObjectRef::from(e), policy).await
}

/// The fast path: HEAD only.
pub async fn fast_check_object<S: ArchiveStore>(
    store: &S,
    e: &ObjectRef,
    policy: &Policy,
) -> Result<ObjectResult, StoreError> {
    let mut findings = Vec::new();
    let latest = store.head(&e.key, None).await?;
    let Some(latest) = latest else {
        findings.push(e.finding(
            FindingKind::ObjectMissing,
            format!("object {} does not exist", e.key),
        ));
        return Ok(ObjectResult::new(FileStatus::Missing, findings));
    };
    let recorded = match (&e.version_id, &latest.version_id) {
        (Some(want), Some(got)) if want != got => {
            findings.push(e.finding(
                FindingKind::ObjectReplaced,
                format!(
                    "object {} has a newer version {got} over the recorded version {want}",
                    e.key
                ),
            ));
            match store.head(&e.key, Some(want)).await? {
                Some(i) => i,
                None => {
                    findings.push(e.finding(
                        FindingKind::ObjectMissing,
                        format!("version {want} of {} does not exist", e.key),
                    ));
                    return Ok(ObjectResult::new(FileStatus::Missing, findings));
                }
            }
        }
        _ => latest,
    };
    let hash_checked = check_info(e, &recorded, policy, &mut findings);
    let status = if findings
        .iter()
        .any(|f| f.kind != FindingKind::LockMissing && f.kind != FindingKind::RetentionTooShort)
    {
        FileStatus::Tampered
    } else if hash_checked {
        FileStatus::Verified
    } else {
        FileStatus::Shipped
    };
    Ok(ObjectResult::new(status, findings))
}

/// The deep path of an archived log: download the recorded version, re-hash it, and compare
/// it with the streamed copy when there is one.
pub async fn deep_check<S: ArchiveStore>(
    store: &S,
    e: &ManifestEntry,
    streamed: Option<&SeqDigests>,
) -> Result<ObjectResult, StoreError> {
    deep_check_object(store, &ObjectRef::from(e), streamed, &[]).await
}

/// The deep path: download the recorded version and re-hash it; when the object is an
/// archived log, compare it with the collector's streamed copy (`streamed`) and with the
/// WORM pieces opened of its sequence (`pieces`, see [`ObjectResult::pieces`]), from block 2
/// on.
pub async fn deep_check_object<S: ArchiveStore>(
    store: &S,
    e: &ObjectRef,
    streamed: Option<&SeqDigests>,
    pieces: &[PieceUnits],
) -> Result<ObjectResult, StoreError> {
    let mut body = store.get(&e.key, None, e.version_id.as_deref()).await?;
    let mut plain = Plain::new(streamed.is_some() || !pieces.is_empty());
    // A compressed log: the object's own bytes are hashed as they arrive, and decoded into
    // `plain`; otherwise they are the log's.
    let mut decoding = match &e.stored {
        Some(_) => Some((
            Sha256::new(),
            0u64,
            FrameDecoder::new(e.size).map_err(|source| StoreError::Io {
                context: format!("decoder for {}", e.key),
                source,
            })?,
            None,
        )),
        None => None,
    };
    // Sized to the object (8 KiB to 1 MiB): a 1 MiB buffer for each small object is a fresh
    // mmap of zeroed pages per object, which at 10,000 objects cost more system time than the
    // hashing (the read loop runs until the end however large the body is).
    let mut buf = vec![
        0u8;
        usize::try_from(e.size)
            .unwrap_or(usize::MAX)
            .clamp(8 << 10, 1 << 20)
    ];
    loop {
        let n = body.read(&mut buf).await.map_err(|source| StoreError::Io {
            context: format!("download {}", e.key),
            source,
        })?;
        if n == 0 {
            break;
        }
        let data = &buf[..n];
        match &mut decoding {
            None => plain.take(data),
            Some((h, count, dec, failed)) => {
                h.update(data);
                *count += n as u64;
                if failed.is_none()
                    && let Err(err) = dec.feed_all(data, |b| plain.take(b))
                {
                    *failed = Some(err);
                }
            }
        }
    }
    let mut findings = Vec::new();
    let mut decoded_ok = true;
    if let Some((h, count, dec, failed)) = decoding {
        let (size, recorded_sha) = e.object_digest();
        let sha: [u8; 32] = h.finalize().into();
        check_download(e, size, recorded_sha, count, sha, &mut findings);
        if let Some(err) = failed
            .map(Err)
            .unwrap_or_else(|| dec.finish().map(|_| ()))
            .err()
        {
            decoded_ok = false;
            findings.push(e.finding(
                FindingKind::ObjectChecksumMismatch,
                format!("{} does not decompress to the recorded log: {err}", e.key),
            ));
        }
    }
    let Plain {
        h,
        n_total,
        first_block,
        units,
        ..
    } = plain;
    let sha: [u8; 32] = h.finalize().into();
    let bytes_rehashed = n_total;
    if decoded_ok {
        check_download(e, e.size, Some(e.sha256), n_total, sha, &mut findings);
    }
    let block_size = redovault_redo::header::FileHeader::parse(&first_block)
        .map(|h| h.block_size)
        .unwrap_or(UNIT as u32);
    let mut cross_checked = false;
    if let Some(s) = streamed {
        let (diff, compared) = s.compare(&units, block_size);
        cross_checked = compared > 0;
        if let Some(d) = diff {
            let (thread, seq) = e.log.map_or((0, 0), |l| (l.thread, l.sequence));
            findings.push(e.finding(
                FindingKind::ArchiveDiffersFromStream,
                format!(
                    "block {} (offset {}) of the archived log differs from the redo the collector received for thread {thread} sequence {seq}",
                    d.block, d.offset
                ),
            ));
        }
    }
    // Piece comparisons are only meaningful against the bytes that were recorded.
    let intact = findings.is_empty();
    let pieces = pieces
        .iter()
        .filter(|_| intact)
        .map(|p| {
            let (diff, compared) = p.compare(&units, block_size);
            PieceComparison {
                stream: p.stream,
                index: p.index,
                key: p.key.clone(),
                seq: p.seq,
                diff,
                compared,
            }
        })
        .collect();
    Ok(ObjectResult {
        status: if findings.is_empty() {
            FileStatus::DeepVerified
        } else {
            FileStatus::Tampered
        },
        findings,
        bytes_rehashed,
        cross_checked,
        pieces,
    })
}

/// The original bytes of a download, as they come: hashed, counted, their first block kept,
/// and their 512-byte units digested when a comparison needs them.
struct Plain {
    h: Sha256,
    n_total: u64,
    first_block: Vec<u8>,
    digest_units: bool,
    carry: Vec<u8>,
    units: Vec<u64>,
}

impl Plain {
    fn new(digest_units: bool) -> Plain {
        Plain {
            h: Sha256::new(),
            n_total: 0,
            first_block: Vec::new(),
            digest_units,
            carry: Vec::with_capacity(UNIT),
            units: Vec::new(),
        }
    }

    fn take(&mut self, data: &[u8]) {
        self.h.update(data);
        self.n_total += data.len() as u64;
        if self.first_block.len() < UNIT {
            let take = (UNIT - self.first_block.len()).min(data.len());
            self.first_block.extend_from_slice(&data[..take]);
        }
        if self.digest_units {
            let mut rest = data;
            if !self.carry.is_empty() {
                let take = (UNIT - self.carry.len()).min(rest.len());
                self.carry.extend_from_slice(&rest[..take]);
                rest = &rest[take..];
                if self.carry.len() == UNIT {
                    self.units.push(unit_digest(&self.carry));
                    self.carry.clear();
                }
            }
            let mut it = rest.chunks_exact(UNIT);
            for u in &mut it {
                self.units.push(unit_digest(u));
            }
            self.carry.extend_from_slice(it.remainder());
        }
    }
}

/// Findings when a download (`got` bytes hashing to `sha`) is not the `size` bytes with
/// `want` (when recorded) that `e` records.
fn check_download(
    e: &ObjectRef,
    size: u64,
    want: Option<Sha256Digest>,
    got: u64,
    sha: [u8; 32],
    findings: &mut Vec<Finding>,
) {
    if got != size {
        findings.push(e.finding(
            FindingKind::ObjectSizeMismatch,
            format!(
                "downloaded {got} bytes of {}, {} says {size}",
                e.key, e.recorded_in
            ),
        ));
    }
    if let Some(want) = want
        && sha != want.0
    {
        findings.push(e.finding(
            FindingKind::ObjectChecksumMismatch,
            format!(
                "re-hashed {} to {}, {} says {want}",
                e.key,
                hex::encode(sha),
                e.recorded_in,
            ),
        ));
    }
}

/// The deep path for a small object whose content is used afterwards (a piece): downloads
/// the recorded version whole, reading at most one byte more than recorded (a longer object
/// is wrong already), and re-hashes it. Returns the result and the bytes.
pub async fn deep_check_bytes<S: ArchiveStore>(
    store: &S,
    e: &ObjectRef,
) -> Result<(ObjectResult, Vec<u8>), StoreError> {
    let body = store.get(&e.key, None, e.version_id.as_deref()).await?;
    let mut bytes = Vec::with_capacity(usize::try_from(e.size).unwrap_or(0).min(256 << 20));
    body.take(e.size.saturating_add(1))
        .read_to_end(&mut bytes)
        .await
        .map_err(|source| StoreError::Io {
            context: format!("download {}", e.key),
            source,
        })?;
    let n = bytes.len() as u64;
    let mut findings = Vec::new();
    if n != e.size {
        let got = if n > e.size {
            format!("more than {} bytes", e.size)
        } else {
            format!("{n} bytes")
        };
        findings.push(e.finding(
            FindingKind::ObjectSizeMismatch,
            format!(
                "downloaded {got} of {}, {} says {}",
                e.key, e.recorded_in, e.size
            ),
        ));
    }
    let sha = Sha256Digest::of(&bytes);
    if sha != e.sha256 {
        findings.push(e.finding(
            FindingKind::ObjectChecksumMismatch,
            format!(
                "re-hashed {} to {sha}, {} says {}",
                e.key, e.recorded_in, e.sha256
            ),
        ));
    }
    let status = if findings.is_empty() {
        FileStatus::DeepVerified
    } else {
        FileStatus::Tampered
    };
    let mut r = ObjectResult::new(status, findings);
    r.bytes_rehashed = n;
    Ok((r, bytes))
}
