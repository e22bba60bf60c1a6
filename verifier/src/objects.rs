//! Per-object checks of archived logs in WORM.
//!
//! - [`fast_check`]: no download. HEAD of the key's latest version (a version newer than the
//!   one the manifest recorded means someone wrote over the key: `object_replaced`), then HEAD
//!   of the recorded version: size, SHA-256 (the server's checksum or the metadata the
//!   watcher wrote with the version, immutable under the lock), lock mode and retain-until
//!   against the policy.
//! - [`deep_check`]: downloads the recorded version (streamed) and re-hashes it; when the
//!   collector holds the streamed redo of the same sequence, compares them block by block.

use std::time::Duration;

use redovault::manifest::ManifestEntry;
use redovault::store::{ArchiveStore, LockMode, ObjectInfo, StoreError};
use sha2::{Digest, Sha256};
use tokio::io::AsyncReadExt;

use crate::report::{FileStatus, Finding, FindingKind, LogRef};
use crate::stream::{SeqDigests, UNIT, unit_digest};

/// Slack between the watcher host's clock (`shipped_at`) and the S3 server's (retain-until
/// is computed from the server's `Date`): a retain-until this much short of the policy still
/// passes.
pub const CLOCK_TOLERANCE: Duration = Duration::from_secs(600);

/// What every archived object must have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// The lock mode required (None: no lock required, e.g. the local NOT-WORM store).
    pub lock_mode: Option<LockMode>,
    /// Retain-until must be at least this long after the entry's `shipped_at`.
    pub min_retention: Duration,
}

/// The result of checking one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectResult {
    /// How far it got and what it found.
    pub status: FileStatus,
    /// Problems.
    pub findings: Vec<Finding>,
    /// Bytes downloaded and hashed.
    pub bytes_rehashed: u64,
    /// Whether it was compared with the streamed redo.
    pub cross_checked: bool,
}

fn log_of(e: &ManifestEntry) -> LogRef {
    LogRef {
        resetlogs_id: e.resetlogs_id,
        thread: e.thread.0,
        sequence: e.sequence.0,
    }
}

fn subject(e: &ManifestEntry) -> String {
    format!(
        "thread {} sequence {} ({})",
        e.thread.0, e.sequence.0, e.file_name
    )
}

fn finding(e: &ManifestEntry, kind: FindingKind, detail: String) -> Finding {
    Finding::error(kind, subject(e), detail)
        .with_entry(e.index)
        .with_log(log_of(e))
}

fn check_info(
    e: &ManifestEntry,
    info: &ObjectInfo,
    policy: &Policy,
    out: &mut Vec<Finding>,
) -> bool {
    let mut hash_checked = false;
    if info.size != e.size {
        out.push(finding(
            e,
            FindingKind::ObjectSizeMismatch,
            format!(
                "object {} is {} bytes, the manifest says {}",
                e.object_key, info.size, e.size
            ),
        ));
    }
    if let Some(sha) = info.sha256 {
        hash_checked = true;
        if sha != e.sha256.0 {
            out.push(finding(
                e,
                FindingKind::ObjectChecksumMismatch,
                format!(
                    "object {} has SHA-256 {}, the manifest says {}",
                    e.object_key,
                    hex::encode(sha),
                    e.sha256
                ),
            ));
        }
    }
    if let Some(mode) = policy.lock_mode {
        match &info.lock {
            None => out.push(finding(
                e,
                FindingKind::LockMissing,
                format!("object {} has no Object Lock retention", e.object_key),
            )),
            Some(l) => {
                if l.mode != mode {
                    out.push(finding(
                        e,
                        FindingKind::LockMissing,
                        format!(
                            "object {} is locked in {:?} mode, the policy requires {mode:?}",
                            e.object_key, l.mode
                        ),
                    ));
                }
                let shipped = chrono::DateTime::parse_from_rfc3339(&e.shipped_at)
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
                        out.push(finding(
                            e,
                            FindingKind::RetentionTooShort,
                            format!(
                                "object {} is retained until {}, the policy requires {} ({} after shipping)",
                                e.object_key,
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

/// The fast path: HEAD only.
pub async fn fast_check<S: ArchiveStore>(
    store: &S,
    e: &ManifestEntry,
    policy: &Policy,
) -> Result<ObjectResult, StoreError> {
    let mut findings = Vec::new();
    let latest = store.head(&e.object_key, None).await?;
    let Some(latest) = latest else {
        findings.push(finding(
            e,
            FindingKind::ObjectMissing,
            format!("object {} does not exist", e.object_key),
        ));
        return Ok(ObjectResult {
            status: FileStatus::Missing,
            findings,
            bytes_rehashed: 0,
            cross_checked: false,
        });
    };
    let recorded = match (&e.version_id, &latest.version_id) {
        (Some(want), Some(got)) if want != got => {
            findings.push(finding(
                e,
                FindingKind::ObjectReplaced,
                format!(
                    "object {} has a newer version {got} over the recorded version {want}",
                    e.object_key
                ),
            ));
            match store.head(&e.object_key, Some(want)).await? {
                Some(i) => i,
                None => {
                    findings.push(finding(
                        e,
                        FindingKind::ObjectMissing,
                        format!("version {want} of {} does not exist", e.object_key),
                    ));
                    return Ok(ObjectResult {
                        status: FileStatus::Missing,
                        findings,
                        bytes_rehashed: 0,
                        cross_checked: false,
                    });
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
    Ok(ObjectResult {
        status,
        findings,
        bytes_rehashed: 0,
        cross_checked: false,
    })
}

/// The deep path: download the recorded version, re-hash it, and compare it with the
/// streamed copy when there is one.
pub async fn deep_check<S: ArchiveStore>(
    store: &S,
    e: &ManifestEntry,
    streamed: Option<&SeqDigests>,
) -> Result<ObjectResult, StoreError> {
    let mut body = store
        .get(&e.object_key, None, e.version_id.as_deref())
        .await?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut carry: Vec<u8> = Vec::with_capacity(UNIT);
    let mut units: Vec<u64> = Vec::new();
    let mut first_block: Vec<u8> = Vec::new();
    let mut n_total = 0u64;
    loop {
        let n = body.read(&mut buf).await.map_err(|source| StoreError::Io {
            context: format!("download {}", e.object_key),
            source,
        })?;
        if n == 0 {
            break;
        }
        let data = &buf[..n];
        h.update(data);
        n_total += n as u64;
        if first_block.len() < UNIT {
            let take = (UNIT - first_block.len()).min(data.len());
            first_block.extend_from_slice(&data[..take]);
        }
        if streamed.is_some() {
            let mut rest = data;
            if !carry.is_empty() {
                let take = (UNIT - carry.len()).min(rest.len());
                carry.extend_from_slice(&rest[..take]);
                rest = &rest[take..];
                if carry.len() == UNIT {
                    units.push(unit_digest(&carry));
                    carry.clear();
                }
            }
            let mut it = rest.chunks_exact(UNIT);
            for u in &mut it {
                units.push(unit_digest(u));
            }
            carry.extend_from_slice(it.remainder());
        }
    }
    let sha: [u8; 32] = h.finalize().into();
    let mut findings = Vec::new();
    if n_total != e.size {
        findings.push(finding(
            e,
            FindingKind::ObjectSizeMismatch,
            format!(
                "downloaded {n_total} bytes of {}, the manifest says {}",
                e.object_key, e.size
            ),
        ));
    }
    if sha != e.sha256.0 {
        findings.push(finding(
            e,
            FindingKind::ObjectChecksumMismatch,
            format!(
                "re-hashed {} to {}, the manifest says {}",
                e.object_key,
                hex::encode(sha),
                e.sha256
            ),
        ));
    }
    let mut cross_checked = false;
    if let Some(s) = streamed {
        let block_size = redovault_redo::header::FileHeader::parse(&first_block)
            .map(|h| h.block_size)
            .unwrap_or(UNIT as u32);
        let (diff, compared) = s.compare(&units, block_size);
        cross_checked = compared > 0;
        if let Some(d) = diff {
            findings.push(finding(
                e,
                FindingKind::ArchiveDiffersFromStream,
                format!(
                    "block {} (offset {}) of the archived log differs from the redo the collector received for thread {} sequence {}",
                    d.block, d.offset, e.thread.0, e.sequence.0
                ),
            ));
        }
    }
    Ok(ObjectResult {
        status: if findings.is_empty() {
            FileStatus::DeepVerified
        } else {
            FileStatus::Tampered
        },
        findings,
        bytes_rehashed: n_total,
        cross_checked,
    })
}
