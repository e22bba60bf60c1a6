//! `put_immutable` for S3: one read pass over the source, bounded memory, create-only,
//! server-verified checksums, Object Lock, and a HEAD that proves the result.
//!
//! Small objects (below the multipart threshold) go up as one PUT carrying Content-MD5,
//! x-amz-checksum-sha256 and a signed payload hash, so every server we know verifies the
//! bytes one way or another. Larger ones go up as a multipart upload with `concurrency` parts
//! in flight, each with its own MD5 and SHA-256; memory is bounded by
//! `max(threshold, (concurrency + 1) * part_size)`.

use crate::manifest::Sha256Digest;
use std::collections::VecDeque;
use std::sync::Arc;

use base64::Engine as _;
use bytes::Bytes;
use md5::Md5;
use reqwest::{Method, StatusCode};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tracing::{debug, info, warn};

use super::http::{Req, chrono_dur, format_iso};
use super::{Inner, META_PART_SIZE, META_SHA256, S3Store, xml};
use crate::store::hashing::{FingerprintHasher, for_each_chunk, multipart_etag};
use crate::store::{LockState, ObjectInfo, PutOutcome, Retention, StoreError};

pub(super) fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// What we expect to find after the put.
pub(super) struct Expected {
    pub(super) size: u64,
    pub(super) sha256: Sha256Digest,
    /// ETag: MD5 (single PUT) or MD5 of part MD5s with `-N`.
    pub(super) etag: String,
    /// The lock we asked for (None: none asked, e.g. bucket default or non-WORM bucket).
    pub(super) lock: Option<LockState>,
}

pub(crate) async fn put_immutable<R>(
    store: &S3Store,
    key: &str,
    mut src: R,
) -> Result<PutOutcome, StoreError>
where
    R: AsyncRead + Unpin + Send + 'static,
{
    if let Some(existing) = store.head_raw(key, None).await? {
        debug!(key, "key exists: comparing instead of uploading");
        return compare_existing(store, key, existing, src).await;
    }
    let inner = &store.inner;
    let threshold = inner.config.multipart_threshold;
    let mut first = Vec::with_capacity(threshold.min(64 << 20) as usize);
    (&mut src)
        .take(threshold)
        .read_to_end(&mut first)
        .await
        .map_err(|e| StoreError::io(format!("read source for {key}"), e))?;
    let held = Held::new(&store.inner, first.len() as u64);
    if (first.len() as u64) < threshold {
        single_put(store, key, first, held).await
    } else {
        multipart_put(store, key, first, held, src).await
    }
}

/// Headers to add to a request.
pub(super) type Headers = Vec<(String, String)>;

/// Lock headers for a new object and the lock they ask for.
pub(super) fn lock_headers(store: &S3Store) -> Result<(Headers, Option<LockState>), StoreError> {
    let inner = &store.inner;
    let worm = inner.readiness.get().is_some_and(|r| r.worm);
    if !worm {
        return Ok((Vec::new(), None));
    }
    match inner.config.retention {
        Retention::BucketDefault => Ok((Vec::new(), None)),
        Retention::Explicit { mode, period } => {
            // The server's clock, never ours: a wrong local clock must not shorten retention.
            let now = inner
                .server_clock
                .now()
                .ok_or_else(|| StoreError::Protocol {
                    op: "put",
                    target: inner.config.bucket.clone(),
                    detail: "the server sent no Date header: cannot compute retain-until"
                        .to_string(),
                })?;
            let until = now + chrono_dur(period);
            Ok((
                vec![
                    (
                        "x-amz-object-lock-mode".to_string(),
                        mode.as_str().to_string(),
                    ),
                    (
                        "x-amz-object-lock-retain-until-date".to_string(),
                        format_iso(until),
                    ),
                ],
                Some(LockState {
                    mode,
                    retain_until: until,
                }),
            ))
        }
    }
}

/// Source bytes held in memory, counted in the store's buffered-bytes gauge until dropped
/// (also when a task holding them is aborted).
struct Held {
    inner: Arc<Inner>,
    n: u64,
}

impl Held {
    fn new(inner: &Arc<Inner>, n: u64) -> Held {
        inner.add_buffered(n);
        Held {
            inner: Arc::clone(inner),
            n,
        }
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        self.inner.sub_buffered(self.n);
    }
}

async fn single_put(
    store: &S3Store,
    key: &str,
    data: Vec<u8>,
    held: Held,
) -> Result<PutOutcome, StoreError> {
    let inner = &store.inner;
    let len = data.len() as u64;
    let body = Bytes::from(data);
    let hashed = body.clone();
    let (sha, md5) = hash_part(hashed, inner.config.content_md5).await?;
    let (lock_hdrs, lock) = lock_headers(store)?;
    let mut req = Req::new(Method::PUT, Some(key))
        .header("content-type", "application/octet-stream")
        .header("x-amz-checksum-sha256", b64(&sha))
        .header(META_SHA256, hex::encode(sha))
        .body(body, Some(hex::encode(sha)));
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
        size: len,
        sha256: Sha256Digest(sha),
        // Verified by the SHA-256 kept in our metadata; the ETag is a fallback.
        etag: md5.map(hex::encode).unwrap_or_default(),
        lock,
    };
    let r = put_once_or_find(store, key, &req, &expected).await;
    drop(req);
    drop(held);
    let r = match r? {
        PutTry::Answered(r) => r,
        PutTry::FoundAfterRetry(outcome) => return Ok(outcome),
    };
    let (code, _) = r.error_code();
    match r.status {
        s if s.is_success() => {
            let version = r.header("x-amz-version-id").map(str::to_string);
            verify(store, key, version, &expected, false).await
        }
        StatusCode::PRECONDITION_FAILED | StatusCode::CONFLICT => {
            // Created meanwhile, perhaps by our own earlier attempt whose answer was lost.
            info!(key, "create-only put refused: the key exists; comparing");
            verify(store, key, None, &expected, true).await
        }
        StatusCode::BAD_REQUEST if code == "BadDigest" || code == "InvalidDigest" => {
            Err(StoreError::BadDigest {
                key: key.to_string(),
                code,
            })
        }
        _ => Err(r.permanent("put", store.target(key))),
    }
}

enum PutTry {
    /// The server answered (any status).
    Answered(super::http::Resp),
    /// An earlier attempt whose answer was lost had stored the object.
    FoundAfterRetry(PutOutcome),
}

/// Sends the PUT with retries, but looks with HEAD before each retry: an attempt whose answer
/// was lost may have stored the object, and some servers (Ceph radosgw) ignore
/// `If-None-Match` in versioned buckets, so a blind retry could add a second version.
async fn put_once_or_find(
    store: &S3Store,
    key: &str,
    req: &Req,
    expected: &Expected,
) -> Result<PutTry, StoreError> {
    let inner = &store.inner;
    let policy = inner.config.retry;
    let mut last = None;
    for attempt in 1..=policy.max_attempts {
        if attempt > 1 {
            tokio::time::sleep(policy.backoff(attempt - 1)).await;
            if store.head_raw(key, None).await?.is_some() {
                info!(
                    key,
                    attempt, "the object appeared after a failed attempt; comparing"
                );
                return verify(store, key, None, expected, true)
                    .await
                    .map(PutTry::FoundAfterRetry);
            }
        }
        match inner.execute_attempts("put", req, 1).await {
            Ok(r) => return Ok(PutTry::Answered(r)),
            Err(e @ (StoreError::RetriesExhausted { .. } | StoreError::Unreachable { .. })) => {
                debug!(key, attempt, error = %e, "put attempt failed");
                last = Some(e);
            }
            Err(e) => return Err(e),
        }
    }
    Err(match last {
        Some(StoreError::RetriesExhausted {
            op, target, last, ..
        }) => StoreError::RetriesExhausted {
            op,
            target,
            attempts: policy.max_attempts,
            last,
        },
        Some(e) => e,
        None => StoreError::Protocol {
            op: "put",
            target: store.target(key),
            detail: "no attempt made".to_string(),
        },
    })
}

/// One uploaded part.
pub(super) struct PartDone {
    pub(super) number: u32,
    pub(super) etag: String,
    pub(super) sha256_b64: String,
    /// MD5 of the part: ours, or (without Content-MD5) the part ETag the server computed.
    pub(super) md5: [u8; 16],
}

async fn multipart_put<R>(
    store: &S3Store,
    key: &str,
    first: Vec<u8>,
    held: Held,
    mut src: R,
) -> Result<PutOutcome, StoreError>
where
    R: AsyncRead + Unpin + Send + 'static,
{
    let inner = &store.inner;
    let part_size = inner.config.part_size;
    let (lock_hdrs, lock) = lock_headers(store)?;
    let mut create = Req::new(Method::POST, Some(key))
        .query("uploads", "")
        .header("content-type", "application/octet-stream")
        .header("x-amz-checksum-algorithm", "SHA256")
        .header(META_PART_SIZE, part_size.to_string());
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
    let result = upload_parts(store, key, &upload_id, first, held, &mut src, lock).await;
    if let Err(e) = &result {
        warn!(key, %upload_id, error = %e, "multipart upload failed; aborting it");
        let abort = Req::new(Method::DELETE, Some(key)).query("uploadId", &upload_id);
        if let Err(e2) = inner.execute("abort-multipart", &abort).await {
            warn!(key, error = %e2, "could not abort the multipart upload");
        }
    }
    result
}

async fn upload_parts<R>(
    store: &S3Store,
    key: &str,
    upload_id: &str,
    first: Vec<u8>,
    first_held: Held,
    src: &mut R,
    lock: Option<LockState>,
) -> Result<PutOutcome, StoreError>
where
    R: AsyncRead + Unpin + Send + 'static,
{
    let inner = &store.inner;
    let part_size = inner.config.part_size;
    let sem = Arc::new(Semaphore::new(inner.config.concurrency.max(1)));
    let mut tasks: JoinSet<Result<PartDone, StoreError>> = JoinSet::new();
    let mut full = Sha256::new();
    let mut size: u64 = 0;
    let mut number: u32 = 0;
    let mut done: Vec<PartDone> = Vec::new();

    // Parts of the first buffer, then parts read one by one: a permit is taken *before* a
    // part is read, so at most `concurrency` parts are in memory besides the first buffer.
    // The first buffer's slices share one allocation, freed (and uncounted) with the last.
    let first = Bytes::from(first);
    let first_held = Arc::new(first_held);
    let mut first_parts: VecDeque<(Bytes, Arc<Held>)> = (0..first.len())
        .step_by(part_size as usize)
        .map(|o| {
            let end = (o + part_size as usize).min(first.len());
            (first.slice(o..end), Arc::clone(&first_held))
        })
        .collect();
    drop((first, first_held));
    loop {
        let permit = Arc::clone(&sem)
            .acquire_owned()
            .await
            .map_err(|e| StoreError::io("semaphore", std::io::Error::other(e)))?;
        // Fail fast on a part that already failed.
        while let Some(j) = tasks.try_join_next() {
            done.push(join_part(j)??);
        }
        let (chunk, held) = match first_parts.pop_front() {
            Some(part) => part,
            None => {
                let mut v = Vec::with_capacity(part_size as usize);
                (&mut *src)
                    .take(part_size)
                    .read_to_end(&mut v)
                    .await
                    .map_err(|e| StoreError::io(format!("read source for {key}"), e))?;
                let held = Arc::new(Held::new(inner, v.len() as u64));
                (Bytes::from(v), held)
            }
        };
        if chunk.is_empty() {
            drop(permit);
            break;
        }
        full.update(&chunk);
        size += chunk.len() as u64;
        number += 1;
        if number > 10_000 {
            return Err(StoreError::Config(format!(
                "{key}: more than 10000 parts: raise the part size"
            )));
        }
        let store2 = store.clone();
        let key2 = key.to_string();
        let upload_id2 = upload_id.to_string();
        tasks.spawn(async move {
            let r = upload_part(&store2, &key2, &upload_id2, number, chunk).await;
            drop((held, permit));
            r
        });
    }
    while let Some(j) = tasks.join_next().await {
        done.push(join_part(j)??);
    }
    done.sort_by_key(|p| p.number);
    let sha256: [u8; 32] = full.finalize().into();
    let md5s: Vec<[u8; 16]> = done.iter().map(|p| p.md5).collect();
    let expected = Expected {
        size,
        sha256: Sha256Digest(sha256),
        etag: multipart_etag(&md5s),
        lock,
    };
    complete(store, key, upload_id, &done, &expected).await
}

fn join_part(
    j: Result<Result<PartDone, StoreError>, tokio::task::JoinError>,
) -> Result<Result<PartDone, StoreError>, StoreError> {
    j.map_err(|e| StoreError::io("part upload task", std::io::Error::other(e)))
}

/// SHA-256 (always) and MD5 (when Content-MD5 is sent) of one body, off the async threads.
async fn hash_part(
    data: Bytes,
    with_md5: bool,
) -> Result<([u8; 32], Option<[u8; 16]>), StoreError> {
    tokio::task::spawn_blocking(move || {
        let sha: [u8; 32] = Sha256::digest(&data).into();
        let md5 = with_md5.then(|| <[u8; 16]>::from(Md5::digest(&data)));
        (sha, md5)
    })
    .await
    .map_err(|e| StoreError::io("hash", std::io::Error::other(e)))
}

async fn upload_part(
    store: &S3Store,
    key: &str,
    upload_id: &str,
    number: u32,
    chunk: Bytes,
) -> Result<PartDone, StoreError> {
    let hashed = chunk.clone();
    let (sha, md5) = hash_part(hashed, store.inner.config.content_md5).await?;
    let mut req = Req::new(Method::PUT, Some(key))
        .query("partNumber", &number.to_string())
        .query("uploadId", upload_id)
        .header("x-amz-checksum-sha256", b64(&sha))
        .body(chunk, Some(hex::encode(sha)));
    if let Some(md5) = md5 {
        req = req.header("content-md5", b64(&md5));
    }
    let r = store.inner.execute("upload-part", &req).await?;
    let (code, _) = r.error_code();
    if r.status == StatusCode::BAD_REQUEST && (code == "BadDigest" || code == "InvalidDigest") {
        return Err(StoreError::BadDigest {
            key: key.to_string(),
            code,
        });
    }
    if !r.status.is_success() {
        return Err(r.permanent(
            "upload-part",
            format!("{} part {number}", store.target(key)),
        ));
    }
    let etag = r
        .header("etag")
        .map(|e| e.trim_matches('"').to_string())
        .ok_or_else(|| StoreError::Protocol {
            op: "upload-part",
            target: store.target(key),
            detail: format!("part {number}: no ETag"),
        })?;
    let etag_md5: Option<[u8; 16]> = hex::decode(&etag).ok().and_then(|v| v.try_into().ok());
    let md5 = match (md5, etag_md5) {
        (Some(ours), Some(theirs)) if ours == theirs => ours,
        (None, Some(theirs)) => theirs,
        _ => {
            return Err(StoreError::Protocol {
                op: "upload-part",
                target: store.target(key),
                detail: format!("part {number}: ETag {etag} is not the MD5 of the part"),
            });
        }
    };
    Ok(PartDone {
        number,
        etag,
        sha256_b64: b64(&sha),
        md5,
    })
}

pub(super) async fn complete(
    store: &S3Store,
    key: &str,
    upload_id: &str,
    parts: &[PartDone],
    expected: &Expected,
) -> Result<PutOutcome, StoreError> {
    let inner = &store.inner;
    let mut body = String::from("<CompleteMultipartUpload>");
    for p in parts {
        body.push_str(&format!(
            "<Part><PartNumber>{}</PartNumber><ETag>\"{}\"</ETag><ChecksumSHA256>{}</ChecksumSHA256></Part>",
            p.number,
            xml::escape(&p.etag),
            p.sha256_b64
        ));
    }
    body.push_str("</CompleteMultipartUpload>");
    let mut conditional = inner.config.conditional_put;
    for _ in 0..2 {
        let mut req = Req::new(Method::POST, Some(key))
            .query("uploadId", upload_id)
            .header("content-type", "application/xml")
            .body(Bytes::from(body.clone()), None);
        if conditional {
            req = req.header("if-none-match", "*");
        }
        let r = inner.execute("complete-multipart", &req).await?;
        let (code, _) = r.error_code();
        match r.status {
            s if s.is_success() => {
                let version = r.header("x-amz-version-id").map(str::to_string);
                return verify(store, key, version, expected, false).await;
            }
            StatusCode::PRECONDITION_FAILED | StatusCode::CONFLICT => {
                return verify(store, key, None, expected, true).await;
            }
            // Our earlier attempt completed but its answer was lost.
            StatusCode::NOT_FOUND if code == "NoSuchUpload" => {
                return verify(store, key, None, expected, true).await;
            }
            StatusCode::NOT_IMPLEMENTED if conditional => {
                warn!(
                    key,
                    "server does not support If-None-Match on multipart completion"
                );
                if store.head_raw(key, None).await?.is_some() {
                    return verify(store, key, None, expected, true).await;
                }
                conditional = false;
            }
            _ => return Err(r.permanent("complete-multipart", store.target(key))),
        }
    }
    Err(StoreError::Protocol {
        op: "complete-multipart",
        target: store.target(key),
        detail: "no usable answer".to_string(),
    })
}

/// HEAD the object and check it is what we asked for. `existed`: the key was found already
/// there (precondition failed): then a mismatch of bytes is the alarm case.
pub(super) async fn verify(
    store: &S3Store,
    key: &str,
    version: Option<String>,
    expected: &Expected,
    existed: bool,
) -> Result<PutOutcome, StoreError> {
    let info = store
        .head_raw(key, version.as_deref())
        .await?
        .ok_or_else(|| StoreError::LockNotApplied {
            key: key.to_string(),
            detail: "HEAD after the put finds no object".to_string(),
        })?;
    // A multipart upload is also checked by its ETag (from the server's part ETags), even
    // when our own metadata names its SHA-256.
    let multipart_etag_ok =
        !expected.etag.contains('-') || info.etag.as_deref().is_none_or(|e| e == expected.etag);
    let same_bytes = info.size == expected.size
        && multipart_etag_ok
        && match (info.sha256, &info.etag) {
            (Some(sha), _) => sha == expected.sha256,
            (None, Some(etag)) => *etag == expected.etag,
            (None, None) => false,
        };
    if !same_bytes {
        let stored = info
            .sha256
            .map(hex::encode)
            .or(info.etag.clone())
            .unwrap_or_else(|| format!("size {}", info.size));
        if existed {
            return Err(StoreError::AlreadyExistsDifferent {
                key: key.to_string(),
                stored,
                new: hex::encode(expected.sha256),
            });
        }
        return Err(StoreError::LockNotApplied {
            key: key.to_string(),
            detail: format!(
                "stored object ({} bytes, {stored}) is not what was sent ({} bytes, sha256 {})",
                info.size,
                expected.size,
                hex::encode(expected.sha256)
            ),
        });
    }
    let lock = check_lock(store, key, &info, expected.lock)?;
    Ok(PutOutcome {
        key: key.to_string(),
        version_id: info.version_id.clone(),
        size: info.size,
        sha256: expected.sha256,
        already_present: existed,
        lock,
    })
}

/// The lock HEAD reports must be in force and, for a lock we just asked for, as asked.
fn check_lock(
    store: &S3Store,
    key: &str,
    info: &ObjectInfo,
    asked: Option<LockState>,
) -> Result<Option<LockState>, StoreError> {
    let inner = &store.inner;
    if !inner.readiness.get().is_some_and(|r| r.worm) {
        return Ok(info.lock);
    }
    let fail = |detail: String| {
        Err(StoreError::LockNotApplied {
            key: key.to_string(),
            detail,
        })
    };
    let Some(got) = info.lock else {
        return fail(format!(
            "HEAD shows no Object Lock on version {} (the server dropped the lock headers)",
            info.version_id.as_deref().unwrap_or("?")
        ));
    };
    let now = inner
        .server_clock
        .now()
        .unwrap_or_else(|| inner.config.clock.now());
    if got.retain_until <= now {
        return fail(format!(
            "retain-until {} is not in the future",
            got.retain_until
        ));
    }
    if let Retention::Explicit { mode, .. } = inner.config.retention
        && got.mode != mode
    {
        return fail(format!("lock mode {} instead of {mode}", got.mode));
    }
    if let Some(asked) = asked {
        // Servers may round to the second.
        if got.retain_until + chrono::Duration::seconds(1) < asked.retain_until {
            return fail(format!(
                "retain-until {} is earlier than asked ({})",
                got.retain_until, asked.retain_until
            ));
        }
    }
    Ok(Some(got))
}

/// The key exists: read the whole source (no upload), compare, and check the stored lock.
pub(super) async fn compare_existing<R>(
    store: &S3Store,
    key: &str,
    existing: ObjectInfo,
    mut src: R,
) -> Result<PutOutcome, StoreError>
where
    R: AsyncRead + Unpin + Send + 'static,
{
    let part_size = if existing.etag.as_deref().is_some_and(|e| e.contains('-')) {
        existing.part_size.or(Some(store.inner.config.part_size))
    } else {
        None
    };
    let mut h = FingerprintHasher::new(part_size);
    for_each_chunk(&mut src, |c| h.update(c))
        .await
        .map_err(|e| StoreError::io(format!("read source for {key}"), e))?;
    let fp = h.finish();
    let expected = Expected {
        size: fp.size,
        sha256: fp.sha256,
        etag: fp.etag,
        lock: None,
    };
    verify(store, key, existing.version_id.clone(), &expected, true).await
}
