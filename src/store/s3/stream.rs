//! `put_file` for S3: a file whose size and SHA-256 are already known goes up streamed from
//! disk, never held in memory.
//!
//! ```text
//! size ≤ stream_threshold: file ──CHUNK pieces──► one PUT, signed payload hash and
//!                          x-amz-checksum-sha256 = the known SHA-256 ──► server hashes
//!                          (last piece held back until the file's identity is re-checked)
//! size > stream_threshold: one pass hashes every stream_part_size part (and the whole file,
//!                          which must match) ──► each part streamed from the file with its
//!                          own signed hash ──► multipart complete
//! then, as for put_immutable (upload.rs): create-only, HEAD verification
//! ```
//!
//! Invariants:
//! - **The server** refuses bytes other than the known SHA-256 (SigV4 signs the payload hash;
//!   Ceph answers `XAmzContentSHA256Mismatch`, AWS `BadDigest`): reported as
//!   [`StoreError::SourceChanged`].
//! - In a single PUT the reader checks that the file keeps its identity (inode, size,
//!   modification and change times) from open to the end, and holds the last piece back
//!   until that holds, so a file rewritten in place is not completed on the server even
//!   before the server's own check.
//! - Memory per upload: a few [`CHUNK`]s in flight, whatever the file size.
//!
//! Why no second hash in the single PUT: the caller's pass already did it, and on a host that
//! ships gigabytes per minute a second SHA-256 is a third of the client's CPU.

use crate::manifest::Sha256Digest;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use md5::Md5;
use reqwest::{Method, StatusCode};
use sha2::{Digest, Sha256};
use tokio::io::AsyncReadExt;
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinSet;
use tracing::{debug, info, warn};

use super::http::{Progress, Req};
use super::upload::{Expected, PartDone, b64, compare_existing, complete, lock_headers, verify};
use super::{META_PART_SIZE, META_SHA256, S3Store, xml};
use crate::store::hashing::multipart_etag;
use crate::store::{FileIdent, FileSource, PutOutcome, StoreError};

/// Bytes read from the file per body piece.
pub(crate) const CHUNK: usize = 512 << 10;

/// Body pieces queued between the reading thread and the connection (bounds memory to about
/// `(QUEUE + 2) * CHUNK` per upload).
const QUEUE: usize = 4;

pub(crate) async fn put_file(
    store: &S3Store,
    key: &str,
    src: &FileSource,
) -> Result<PutOutcome, StoreError> {
    if let Some(existing) = store.head_raw(key, None).await? {
        debug!(key, "key exists: comparing instead of uploading");
        if existing.sha256.is_some() {
            let expected = Expected {
                size: src.size,
                sha256: src.sha256,
                etag: String::new(),
                lock: None,
            };
            return verify(store, key, existing.version_id.clone(), &expected, true).await;
        }
        let f = tokio::fs::File::open(&src.path)
            .await
            .map_err(|e| StoreError::io(format!("open {}", src.path.display()), e))?;
        return compare_existing(store, key, existing, f.take(src.size)).await;
    }
    if src.size <= store.inner.config.stream_threshold {
        single_streamed_put(store, key, src).await
    } else {
        multipart_from_file(store, key, src).await
    }
}

/// Streams `len` bytes of `path` from `offset`, checking that the file keeps its identity
/// while it is read (and, with `whole_file`, that it ends there); the last piece is sent only
/// once that holds. The bytes themselves are checked by the server against the signed hash.
fn file_body(
    path: &Path,
    offset: u64,
    len: u64,
    whole_file: bool,
) -> (reqwest::Body, Arc<Progress>) {
    let (tx, rx) = mpsc::channel::<std::io::Result<Bytes>>(QUEUE);
    let progress = Progress::new(path.display().to_string());
    let reader_progress = Arc::clone(&progress);
    let path = path.to_path_buf();
    tokio::task::spawn_blocking(move || {
        read_checked(&path, offset, len, whole_file, &tx, &reader_progress);
    });
    let stream = futures::stream::unfold(
        (rx, Arc::clone(&progress), 0u64),
        move |(mut rx, progress, sent)| async move {
            let item = rx.recv().await?;
            progress.touch();
            let sent = sent + item.as_ref().map_or(0, |b| b.len() as u64);
            if sent >= len {
                progress.body_done();
            }
            Some((item, (rx, progress, sent)))
        },
    );
    (reqwest::Body::wrap_stream(stream), progress)
}

/// What identifies a file's content without reading it: its [`FileIdent`] (a write in place
/// changes the size or mtime, a replacement the inode) and its change time (which a write
/// moves even when the mtime is set back).
fn identity(f: &std::fs::File) -> std::io::Result<(FileIdent, (i64, i64))> {
    use std::os::unix::fs::MetadataExt;
    let m = f.metadata()?;
    Ok((FileIdent::of(&m), (m.ctime(), m.ctime_nsec())))
}

/// The reading side of [`file_body`] (blocking).
fn read_checked(
    path: &PathBuf,
    offset: u64,
    len: u64,
    whole_file: bool,
    tx: &mpsc::Sender<std::io::Result<Bytes>>,
    progress: &Progress,
) {
    let fail = |why: String| {
        progress.set_changed(why.clone());
        let _ = tx.blocking_send(Err(std::io::Error::other(why)));
    };
    let mut f = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) => return fail(format!("cannot open it: {e}")),
    };
    let before = match identity(&f) {
        Ok(i) => i,
        Err(e) => return fail(format!("cannot stat it: {e}")),
    };
    if let Err(e) = f.seek(SeekFrom::Start(offset)) {
        return fail(format!("cannot seek to {offset}: {e}"));
    }
    let mut left = len;
    let mut pending: Option<Bytes> = None;
    let pool = Arc::new(Mutex::new(Vec::<Vec<u8>>::new()));
    while left > 0 {
        let n = (CHUNK as u64).min(left) as usize;
        let mut buf = pool
            .lock()
            .ok()
            .and_then(|mut p| p.pop())
            .unwrap_or_else(|| vec![0u8; CHUNK]);
        if let Err(e) = f.read_exact(&mut buf[..n]) {
            return fail(format!(
                "read failed {} bytes before the announced end: {e}",
                left
            ));
        }
        left -= n as u64;
        let piece = Bytes::from_owner(Pooled {
            buf,
            len: n,
            pool: Arc::clone(&pool),
        });
        if let Some(p) = pending.replace(piece)
            && tx.blocking_send(Ok(p)).is_err()
        {
            // The request was dropped: nobody is listening any more.
            return;
        }
    }
    if whole_file {
        let mut one = [0u8; 1];
        match f.read(&mut one) {
            Ok(0) => {}
            Ok(_) => return fail(format!("it is now longer than {len} bytes")),
            Err(e) => return fail(format!("read failed at its end: {e}")),
        }
    }
    match identity(&f) {
        Ok(after) if after == before => {}
        Ok((after, _)) => {
            return fail(format!(
                "it was modified while it was read (size {} -> {}, mtime {} -> {} ns)",
                before.0.size, after.size, before.0.mtime_ns, after.mtime_ns
            ));
        }
        Err(e) => return fail(format!("cannot stat it: {e}")),
    }
    if let Some(p) = pending {
        let _ = tx.blocking_send(Ok(p));
    }
}

/// A body piece whose buffer goes back to its upload's pool once the connection is done with
/// it (no fresh allocation, and no page faults, per piece).
struct Pooled {
    buf: Vec<u8>,
    len: usize,
    pool: Arc<Mutex<Vec<Vec<u8>>>>,
}

impl AsRef<[u8]> for Pooled {
    fn as_ref(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

impl Drop for Pooled {
    fn drop(&mut self) {
        if let Ok(mut p) = self.pool.lock()
            && p.len() < QUEUE + 2
        {
            p.push(std::mem::take(&mut self.buf));
        }
    }
}

/// MD5 (and SHA-256) of `len` bytes of `path` from `offset` (blocking).
fn hash_range(path: &Path, offset: u64, len: u64) -> std::io::Result<([u8; 32], [u8; 16])> {
    let mut f = std::fs::File::open(path)?;
    f.seek(SeekFrom::Start(offset))?;
    let mut sha = Sha256::new();
    let mut md5 = Md5::new();
    let mut buf = vec![0u8; CHUNK];
    let mut left = len;
    while left > 0 {
        let n = (CHUNK as u64).min(left) as usize;
        let b = &mut buf[..n];
        f.read_exact(b)?;
        sha.update(&*b);
        md5.update(&*b);
        left -= n as u64;
    }
    Ok((sha.finalize().into(), md5.finalize().into()))
}

/// The server refused the body because it does not hash to the SHA-256 that was announced,
/// which was computed from the file: the file's bytes changed after they were hashed.
fn server_hashed_other_bytes(path: &Path, code: &str) -> StoreError {
    StoreError::SourceChanged {
        path: path.display().to_string(),
        detail: format!(
            "the server hashed the bytes sent and refused them ({code}): they are not the bytes \
             hashed before"
        ),
    }
}

fn changed(src: &FileSource, detail: String) -> StoreError {
    StoreError::SourceChanged {
        path: src.path.display().to_string(),
        detail,
    }
}

async fn single_streamed_put(
    store: &S3Store,
    key: &str,
    src: &FileSource,
) -> Result<PutOutcome, StoreError> {
    let inner = &store.inner;
    let md5 = if inner.config.content_md5 {
        let path = src.path.clone();
        let size = src.size;
        let (sha, md5) = tokio::task::spawn_blocking(move || hash_range(&path, 0, size))
            .await
            .map_err(|e| StoreError::io("hash", std::io::Error::other(e)))?
            .map_err(|e| changed(src, format!("cannot read it: {e}")))?;
        if sha != src.sha256.0 {
            return Err(changed(src, "its SHA-256 is not the announced one".into()));
        }
        Some(md5)
    } else {
        None
    };
    let (lock_hdrs, lock) = lock_headers(store)?;
    let sha_hex = hex::encode(src.sha256);
    let mut req = Req::new(Method::PUT, Some(key))
        .header("content-type", "application/octet-stream")
        .header("x-amz-checksum-sha256", b64(&src.sha256.0))
        .header(META_SHA256, sha_hex.clone());
    if let Some(md5) = md5 {
        req = req.header("content-md5", b64(&md5));
    }
    if inner.config.conditional_put {
        req = req.header("if-none-match", "*");
    }
    for (k, v) in lock_hdrs {
        req = req.header(&k, v);
    }
    let expected = Expected {
        size: src.size,
        sha256: src.sha256,
        etag: md5.map(hex::encode).unwrap_or_default(),
        lock,
    };
    let policy = inner.config.retry;
    let mut last = None;
    for attempt in 1..=policy.max_attempts {
        if attempt > 1 {
            tokio::time::sleep(policy.backoff(attempt - 1)).await;
            // An attempt whose answer was lost may have stored the object; a blind retry
            // could add a second version where If-None-Match is ignored (Ceph).
            if store.head_raw(key, None).await?.is_some() {
                info!(
                    key,
                    attempt, "the object appeared after a failed attempt; comparing"
                );
                return verify(store, key, None, &expected, true).await;
            }
        }
        let mut make = || file_body(&src.path, 0, src.size, true);
        match inner
            .execute_streamed("put", &req, &sha_hex, src.size, &mut make)
            .await
        {
            Ok(r) => {
                let (code, _) = r.error_code();
                return match r.status {
                    s if s.is_success() => {
                        let version = r.header("x-amz-version-id").map(str::to_string);
                        verify(store, key, version, &expected, false).await
                    }
                    StatusCode::PRECONDITION_FAILED | StatusCode::CONFLICT => {
                        info!(key, "create-only put refused: the key exists; comparing");
                        verify(store, key, None, &expected, true).await
                    }
                    StatusCode::BAD_REQUEST
                        if matches!(
                            code.as_str(),
                            "BadDigest" | "InvalidDigest" | "XAmzContentSHA256Mismatch"
                        ) =>
                    {
                        Err(server_hashed_other_bytes(&src.path, &code))
                    }
                    _ => Err(r.permanent("put", store.target(key))),
                };
            }
            Err(e @ (StoreError::RetriesExhausted { .. } | StoreError::Unreachable { .. })) => {
                debug!(key, attempt, error = %e, "streamed put attempt failed");
                last = Some(e);
            }
            Err(e) => return Err(e),
        }
    }
    Err(exhausted(store, key, "put", last, policy.max_attempts))
}

fn exhausted(
    store: &S3Store,
    key: &str,
    op: &'static str,
    last: Option<StoreError>,
    attempts: u32,
) -> StoreError {
    match last {
        Some(StoreError::RetriesExhausted {
            op, target, last, ..
        }) => StoreError::RetriesExhausted {
            op,
            target,
            attempts,
            last,
        },
        Some(e) => e,
        None => StoreError::Protocol {
            op,
            target: store.target(key),
            detail: "no attempt made".to_string(),
        },
    }
}

/// SHA-256 and MD5 of one part.
type PartHashes = ([u8; 32], [u8; 16]);

/// SHA-256 and MD5 of every part, checking the whole file against `src` (blocking).
fn hash_parts(src: &FileSource, part_size: u64) -> Result<Vec<PartHashes>, String> {
    let mut f = std::fs::File::open(&src.path).map_err(|e| format!("cannot open it: {e}"))?;
    let mut whole = Sha256::new();
    let mut parts = Vec::new();
    let mut buf = vec![0u8; CHUNK];
    let mut left = src.size;
    while left > 0 {
        let mut in_part = part_size.min(left);
        left -= in_part;
        let mut sha = Sha256::new();
        let mut md5 = Md5::new();
        while in_part > 0 {
            let n = (CHUNK as u64).min(in_part) as usize;
            let b = &mut buf[..n];
            f.read_exact(b)
                .map_err(|e| format!("read failed before the announced end: {e}"))?;
            whole.update(&*b);
            sha.update(&*b);
            md5.update(&*b);
            in_part -= n as u64;
        }
        parts.push((sha.finalize().into(), md5.finalize().into()));
    }
    let got: [u8; 32] = whole.finalize().into();
    if got != src.sha256.0 {
        return Err(format!(
            "it now hashes to {} instead of {}",
            hex::encode(got),
            hex::encode(src.sha256)
        ));
    }
    Ok(parts)
}

async fn multipart_from_file(
    store: &S3Store,
    key: &str,
    src: &FileSource,
) -> Result<PutOutcome, StoreError> {
    let inner = &store.inner;
    let part_size = inner.config.stream_part_size.max(1);
    if src.size.div_ceil(part_size) > 10_000 {
        return Err(StoreError::Config(format!(
            "{key}: more than 10000 parts of {part_size} bytes: raise the part size"
        )));
    }
    let hashed = {
        let src = src.clone();
        tokio::task::spawn_blocking(move || hash_parts(&src, part_size))
            .await
            .map_err(|e| StoreError::io("hash", std::io::Error::other(e)))?
    };
    let part_hashes = hashed.map_err(|d| changed(src, d))?;
    let (lock_hdrs, lock) = lock_headers(store)?;
    let mut create = Req::new(Method::POST, Some(key))
        .query("uploads", "")
        .header("content-type", "application/octet-stream")
        .header("x-amz-checksum-algorithm", "SHA256")
        .header(META_PART_SIZE, part_size.to_string())
        .header(META_SHA256, hex::encode(src.sha256));
    for (k, v) in &lock_hdrs {
        create = create.header(k, v.clone());
    }
    let r = inner.execute("create-multipart", &create).await?;
    let upload_id = if r.status.is_success() {
        xml::first_text(&r.text(), "UploadId")
    } else {
        None
    };
    let Some(upload_id) = upload_id else {
        return Err(r.permanent("create-multipart", store.target(key)));
    };
    let result = async {
        let sem = Arc::new(Semaphore::new(inner.config.concurrency.max(1)));
        let mut tasks: JoinSet<Result<PartDone, StoreError>> = JoinSet::new();
        let mut done: Vec<PartDone> = Vec::with_capacity(part_hashes.len());
        let join = |j: Result<Result<PartDone, StoreError>, tokio::task::JoinError>| {
            j.map_err(|e| StoreError::io("part task", std::io::Error::other(e)))?
        };
        for (i, (sha, md5)) in part_hashes.iter().enumerate() {
            let permit = Arc::clone(&sem)
                .acquire_owned()
                .await
                .map_err(|e| StoreError::io("part permit", std::io::Error::other(e)))?;
            // Surface a failed part early instead of starting the rest.
            while let Some(j) = tasks.try_join_next() {
                done.push(join(j)?);
            }
            let number = u32::try_from(i + 1).unwrap_or(u32::MAX);
            let offset = i as u64 * part_size;
            let part = PartSpec {
                number,
                offset,
                len: part_size.min(src.size - offset),
                sha256: Sha256Digest(*sha),
                md5: *md5,
            };
            let (store2, key2, id2, path) = (
                store.clone(),
                key.to_string(),
                upload_id.clone(),
                src.path.clone(),
            );
            tasks.spawn(async move {
                let r = upload_part_from_file(&store2, &key2, &id2, &path, &part).await;
                drop(permit);
                r
            });
        }
        while let Some(j) = tasks.join_next().await {
            done.push(join(j)?);
        }
        done.sort_by_key(|p| p.number);
        let md5s: Vec<[u8; 16]> = done.iter().map(|p| p.md5).collect();
        let expected = Expected {
            size: src.size,
            sha256: src.sha256,
            etag: multipart_etag(&md5s),
            lock,
        };
        complete(store, key, &upload_id, &done, &expected).await
    }
    .await;
    if let Err(e) = &result {
        warn!(key, %upload_id, error = %e, "multipart upload from file failed; aborting it");
        let abort = Req::new(Method::DELETE, Some(key)).query("uploadId", &upload_id);
        if let Err(e2) = inner.execute("abort-multipart", &abort).await {
            warn!(key, error = %e2, "could not abort the multipart upload");
        }
    }
    result
}

/// One part of a multipart upload from a file.
struct PartSpec {
    number: u32,
    offset: u64,
    len: u64,
    sha256: Sha256Digest,
    md5: [u8; 16],
}

/// Uploads one part streamed from the file, retrying transient failures (a part can be sent
/// again: the last upload of a part number wins, and only the completed upload is an object).
async fn upload_part_from_file(
    store: &S3Store,
    key: &str,
    upload_id: &str,
    path: &Path,
    part: &PartSpec,
) -> Result<PartDone, StoreError> {
    let inner = &store.inner;
    let mut req = Req::new(Method::PUT, Some(key))
        .query("partNumber", &part.number.to_string())
        .query("uploadId", upload_id)
        .header("x-amz-checksum-sha256", b64(&part.sha256.0));
    if inner.config.content_md5 {
        req = req.header("content-md5", b64(&part.md5));
    }
    let sha_hex = hex::encode(part.sha256);
    let policy = inner.config.retry;
    let mut last = None;
    let target = format!("{} part {}", store.target(key), part.number);
    for attempt in 1..=policy.max_attempts {
        if attempt > 1 {
            tokio::time::sleep(policy.backoff(attempt - 1)).await;
        }
        let mut make = || file_body(path, part.offset, part.len, false);
        let r = match inner
            .execute_streamed("upload-part", &req, &sha_hex, part.len, &mut make)
            .await
        {
            Ok(r) => r,
            Err(e @ (StoreError::RetriesExhausted { .. } | StoreError::Unreachable { .. })) => {
                debug!(key, part = part.number, attempt, error = %e, "part attempt failed");
                last = Some(e);
                continue;
            }
            Err(e) => return Err(e),
        };
        let (code, _) = r.error_code();
        if r.status == StatusCode::BAD_REQUEST
            && matches!(
                code.as_str(),
                "BadDigest" | "InvalidDigest" | "XAmzContentSHA256Mismatch"
            )
        {
            return Err(server_hashed_other_bytes(path, &code));
        }
        if !r.status.is_success() {
            return Err(r.permanent("upload-part", target));
        }
        let etag = r
            .header("etag")
            .map(|e| e.trim_matches('"').to_string())
            .ok_or_else(|| StoreError::Protocol {
                op: "upload-part",
                target: target.clone(),
                detail: "no ETag".to_string(),
            })?;
        let etag_md5: Option<[u8; 16]> = hex::decode(&etag).ok().and_then(|v| v.try_into().ok());
        if etag_md5 != Some(part.md5) {
            return Err(StoreError::Protocol {
                op: "upload-part",
                target,
                detail: format!("ETag {etag} is not the MD5 of the part"),
            });
        }
        return Ok(PartDone {
            number: part.number,
            etag,
            sha256_b64: b64(&part.sha256.0),
            md5: part.md5,
        });
    }
    Err(exhausted(
        store,
        key,
        "upload-part",
        last,
        policy.max_attempts,
    ))
}
