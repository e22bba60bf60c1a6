//! The WORM store: the only module that talks to S3.
//!
//! ```text
//! watcher / collector ──put_immutable, put_file──► ArchiveStore
//!   ├─ s3::S3Store: create-only PUT, server-verified SHA-256 (+ MD5, one read pass),
//!   │    COMPLIANCE (or GOVERNANCE) lock until retain-until by the SERVER's clock
//!   │    ──► HEAD: size, lock mode, retain-until as asked? ──► success
//!   └─ local::LocalStore: create-only, read-only files (quickstart, tests; NOT WORM:
//!        root can delete them)
//! ```
//!
//! Invariants ([`s3::S3Store`], [`local::LocalStore`]; see ARCHITECTURE.md):
//! - no code path here overwrites or deletes an object (the calls that try to, in order to
//!   prove the server refuses, are in the drill crate, `redovault-drill`, built on
//!   [`s3::SignedRequest`], and never linked into the programs of the database host);
//! - a put returns success only after the object is confirmed by a HEAD: size, lock mode and
//!   retain-until all as requested;
//! - same key and same bytes is an idempotent success; same key and other bytes is
//!   [`StoreError::AlreadyExistsDifferent`], which callers must raise as an alarm.

use crate::manifest::Sha256Digest;
use std::fmt;
use std::future::Future;
use std::ops::Range;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::io::AsyncRead;

pub mod clock;
pub mod hashing;
pub mod local;
mod retry;
pub mod s3;

pub use clock::{Clock, SkewedClock, SystemClock};
pub use hashing::{Fingerprint, FingerprintHasher};
pub use retry::RetryPolicy;

/// Object Lock retention mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum LockMode {
    /// Nobody, not even the bucket owner or root account, can delete the version or shorten
    /// its retention before it expires. The default.
    Compliance,
    /// Users with `s3:BypassGovernanceRetention` can delete early. For test buckets.
    Governance,
}

impl LockMode {
    /// The header value S3 uses.
    pub fn as_str(self) -> &'static str {
        match self {
            LockMode::Compliance => "COMPLIANCE",
            LockMode::Governance => "GOVERNANCE",
        }
    }

    /// Parses the header value S3 returns.
    pub fn parse(s: &str) -> Option<LockMode> {
        match s.trim() {
            "COMPLIANCE" => Some(LockMode::Compliance),
            "GOVERNANCE" => Some(LockMode::Governance),
            _ => None,
        }
    }
}

impl fmt::Display for LockMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How each object is locked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retention {
    /// Send lock headers on every put: `mode` until server time + `period`.
    Explicit {
        /// COMPLIANCE or GOVERNANCE.
        mode: LockMode,
        /// How long from the server's "now".
        period: Duration,
    },
    /// Send no lock headers and rely on the bucket's default retention; the HEAD after each
    /// put still checks that a lock is in force.
    BucketDefault,
}

/// What a successful put reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PutOutcome {
    /// The key written.
    pub key: String,
    /// Version id given by the server (None for the local backend).
    pub version_id: Option<String>,
    /// Size in bytes.
    pub size: u64,
    /// SHA-256 of the bytes, computed in the same pass that uploaded them.
    pub sha256: Sha256Digest,
    /// True when the same bytes were already stored under this key (idempotent success).
    pub already_present: bool,
    /// The lock confirmed by HEAD (None for the local backend).
    pub lock: Option<LockState>,
}

/// A lock as read back from the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockState {
    /// Retention mode.
    pub mode: LockMode,
    pub retain_until: DateTime<Utc>,
}

/// What HEAD reports of one object version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    pub key: String,
    /// Version id (None for the local backend or an unversioned bucket).
    pub version_id: Option<String>,
    /// Size in bytes.
    pub size: u64,
    /// ETag as the server returns it, without quotes.
    pub etag: Option<String>,
    /// SHA-256 of the whole object when known: from the server's checksum for a single-part
    /// upload or from our metadata, or computed (local backend).
    pub sha256: Option<Sha256Digest>,
    /// Object Lock retention in force, if any.
    pub lock: Option<LockState>,
    /// Legal hold on (true), off (false) or not reported (None).
    pub legal_hold: Option<bool>,
    /// The part size used for a multipart upload (from our metadata), to recompute its ETag.
    pub part_size: Option<u64>,
}

/// One entry of a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectSummary {
    pub key: String,
    /// Size in bytes.
    pub size: u64,
}

/// One version (or delete marker) of a listing of versions ([`ArchiveStore::list_versions`]):
/// what the server says of every version under a prefix without a HEAD per object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionSummary {
    pub key: String,
    /// Version id (None for the local backend or an unversioned bucket).
    pub version_id: Option<String>,
    /// Whether it is the key's newest version (or delete marker).
    pub is_latest: bool,
    /// A delete marker, not a version: the key looks deleted while it is the newest.
    pub delete_marker: bool,
    /// Size in bytes (0 for a delete marker).
    pub size: u64,
    /// ETag without quotes (None for a delete marker and the local backend).
    pub etag: Option<String>,
    /// What else identifies this version's bytes where there are no version ids: the local
    /// backend's file identity (`<inode>:<mtime ns>:<ctime ns>`, any rewrite or
    /// replacement of the file changes it); None on S3, where the version id and ETag do.
    pub stamp: Option<String>,
}

/// A streaming body returned by [`ArchiveStore::get`].
pub type ByteStream = Pin<Box<dyn AsyncRead + Send>>;

/// What the start-up check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Readiness {
    /// True when the backend really is WORM (S3 bucket with Object Lock enabled).
    pub worm: bool,
    /// The bucket's default retention, if any.
    pub default_retention: Option<(LockMode, Duration)>,
    /// A one-line description for logs and `redovault store check`.
    pub description: String,
}

/// Errors of the store. Each says whether it is permanent or was retried.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The key already holds different bytes. Nothing was written. Raise an alarm: either the
    /// source file changed after it was archived, or someone is tampering.
    #[error(
        "{key}: already stored with different bytes (stored sha256 {stored}, new sha256 {new}); \
         nothing was overwritten"
    )]
    AlreadyExistsDifferent {
        key: String,
        /// What the store holds (hex SHA-256 or ETag).
        stored: String,
        /// What we tried to put (hex SHA-256 or ETag).
        new: String,
    },
    /// The server accepted the object but HEAD shows the lock (or size) did not take.
    #[error("{key}: server accepted the upload but did not apply it as asked: {detail}")]
    LockNotApplied {
        key: String,
        /// What differed.
        detail: String,
    },
    /// The server rejected the bytes' checksum: they were corrupted on the way.
    #[error("{key}: the server found the checksum wrong ({code}): bytes corrupted in transit")]
    BadDigest {
        key: String,
        /// The S3 error code.
        code: String,
    },
    /// A permanent error: not retried.
    #[error(
        "{op} {target}: {status} {code}: {message} (permanent, not retried){}",
        permanent_hint(*.status, .code)
    )]
    Permanent {
        /// The operation.
        op: &'static str,
        /// Bucket/key.
        target: String,
        /// HTTP status.
        status: u16,
        /// S3 error code.
        code: String,
        /// S3 error message.
        message: String,
    },
    /// A transient error that did not clear within the retry budget.
    #[error("{op} {target}: gave up after {attempts} attempts: {last}")]
    RetriesExhausted {
        /// The operation.
        op: &'static str,
        /// Bucket/key.
        target: String,
        /// Attempts made.
        attempts: u32,
        /// The last error.
        last: String,
    },
    /// The bucket does not exist.
    #[error("bucket {bucket} does not exist at {endpoint}")]
    NoSuchBucket { bucket: String, endpoint: String },
    /// The bucket has no Object Lock.
    #[error("bucket {bucket} has no Object Lock: archives would be deletable")]
    NoObjectLock { bucket: String },
    /// The user is known but not allowed this bucket (403 AccessDenied): a policy matter.
    #[error(
        "access to bucket {bucket} at {endpoint} denied ({code}{}): grant this user the \
         bucket's policy (deploy/s3/policies) or fix store.bucket",
        colon(.message)
    )]
    AccessDenied {
        bucket: String,
        endpoint: String,
        /// The S3 error code.
        code: String,
        /// The S3 message.
        message: String,
    },
    /// The server does not accept the credentials (SignatureDoesNotMatch, InvalidAccessKeyId,
    /// an expired or invalid session token): retrying cannot help.
    #[error(
        "credentials from {origin} refused by {endpoint} ({code}{}): fix the access key / \
         secret key there (see store.credentials and store.profile)",
        colon(.message)
    )]
    Auth {
        /// Where the credentials came from (environment, profile, web identity...).
        origin: String,
        endpoint: String,
        /// The S3 error code.
        code: String,
        /// The S3 message.
        message: String,
    },
    /// The TLS handshake failed (unknown CA, name mismatch, expired certificate): retrying
    /// cannot help.
    #[error(
        "TLS to {endpoint} failed: {detail}: set store.ca_file (--ca-file, REDOVAULT_S3_CA_FILE) \
         to the CA that signed the server's certificate, and name the server in store.endpoint \
         as its certificate does"
    )]
    Tls {
        endpoint: String,
        /// What the TLS library said.
        detail: String,
    },
    /// Credentials could not be obtained from the configured source.
    #[error("no S3 credentials from {origin}: {detail}")]
    Credentials {
        /// The source tried (environment, profile, web identity, instance metadata).
        origin: String,
        /// Why, and what to change.
        detail: String,
    },
    /// The endpoint could not be reached at all.
    #[error("cannot reach {endpoint}: {detail}")]
    Unreachable {
        endpoint: String,
        /// Why.
        detail: String,
    },
    /// The configuration is wrong (bad URL, unreadable CA file, missing credentials...).
    #[error("{0}")]
    Config(String),
    /// The object does not exist.
    #[error("{key}: no such object")]
    NotFound { key: String },
    /// The key is not acceptable (empty, absolute, `..`).
    #[error("invalid key {key:?}: {why}")]
    InvalidKey { key: String, why: &'static str },
    /// Reading the source or a local file failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        #[source]
        source: std::io::Error,
    },
    /// The source file changed while it was being uploaded (its bytes no longer have the
    /// size or SHA-256 it was put with). Nothing was stored under the key.
    #[error("{path}: changed during the upload ({detail}); nothing was stored")]
    SourceChanged {
        path: String,
        /// What differed.
        detail: String,
    },
    /// The server sent something we cannot use.
    #[error("{op} {target}: unexpected response: {detail}")]
    Protocol {
        /// The operation.
        op: &'static str,
        /// Bucket/key.
        target: String,
        /// What was wrong.
        detail: String,
    },
}

/// What kind of failure a [`StoreError`] is: the one place errors are classified (retry
/// loops, the watcher's queueing and its error metrics all ask this).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// May clear by itself (server down, slow, throttling, local I/O): retried, queued.
    Transient,
    /// The configuration cannot work (bad endpoint, addressing, CA file, missing credentials).
    Config,
    /// The TLS handshake failed (CA, host name, expiry).
    Tls,
    /// The server refused the credentials (wrong key or secret, bad or expired token).
    Auth,
    /// The server refused the operation for this user or bucket (AccessDenied).
    Permission,
    /// The bucket or object does not exist, or the bucket is not WORM.
    Missing,
    /// The key holds other bytes: the alarm case.
    Conflict,
    /// What was stored or read is not what was asked (lock, checksum, source changed).
    Integrity,
    /// Any other refusal by the server or a response we cannot use.
    Refused,
}

impl ErrorKind {
    /// A stable lower-case name, for metrics labels and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Transient => "transient",
            ErrorKind::Config => "config",
            ErrorKind::Tls => "tls",
            ErrorKind::Auth => "auth",
            ErrorKind::Permission => "permission",
            ErrorKind::Missing => "missing",
            ErrorKind::Conflict => "conflict",
            ErrorKind::Integrity => "integrity",
            ErrorKind::Refused => "refused",
        }
    }
}

/// `": message"`, or nothing for an empty message (HEAD answers and Ceph's 403s have none).
fn colon(message: &str) -> String {
    if message.is_empty() {
        String::new()
    } else {
        format!(": {message}")
    }
}

/// What to change after a permanent refusal, when the code says (empty otherwise).
fn permanent_hint(status: u16, code: &str) -> &'static str {
    if is_auth_code(code) {
        ": fix the access key / secret key (see store.credentials and store.profile)"
    } else if status == 403 {
        ": grant this user the operation in the bucket's policy (deploy/s3/policies)"
    } else {
        ""
    }
}

/// S3 error codes that mean "the credentials are wrong" rather than "not allowed".
pub(crate) fn is_auth_code(code: &str) -> bool {
    matches!(
        code,
        "SignatureDoesNotMatch"
            | "InvalidAccessKeyId"
            | "InvalidToken"
            | "ExpiredToken"
            | "InvalidClientTokenId"
            | "AuthorizationHeaderMalformed"
            | "MissingSecurityHeader"
    )
}

impl StoreError {
    /// The kind of this error (see [`ErrorKind`]).
    pub fn kind(&self) -> ErrorKind {
        match self {
            StoreError::Unreachable { .. }
            | StoreError::RetriesExhausted { .. }
            | StoreError::Io { .. } => ErrorKind::Transient,
            StoreError::Config(_)
            | StoreError::InvalidKey { .. }
            | StoreError::Credentials { .. } => ErrorKind::Config,
            StoreError::Tls { .. } => ErrorKind::Tls,
            StoreError::Auth { .. } => ErrorKind::Auth,
            StoreError::AccessDenied { .. } => ErrorKind::Permission,
            StoreError::Permanent { code, .. } if is_auth_code(code) => ErrorKind::Auth,
            StoreError::Permanent { status: 403, .. } => ErrorKind::Permission,
            StoreError::NoSuchBucket { .. }
            | StoreError::NoObjectLock { .. }
            | StoreError::NotFound { .. } => ErrorKind::Missing,
            StoreError::AlreadyExistsDifferent { .. } => ErrorKind::Conflict,
            StoreError::LockNotApplied { .. }
            | StoreError::BadDigest { .. }
            | StoreError::SourceChanged { .. } => ErrorKind::Integrity,
            StoreError::Permanent { .. } | StoreError::Protocol { .. } => ErrorKind::Refused,
        }
    }

    /// True for errors that may clear by themselves: the only ones worth retrying later.
    pub fn is_transient(&self) -> bool {
        self.kind() == ErrorKind::Transient
    }

    /// True for [`StoreError::AlreadyExistsDifferent`]: the alarm case.
    pub fn is_conflict(&self) -> bool {
        matches!(self, StoreError::AlreadyExistsDifferent { .. })
    }

    /// An I/O error on the local side (`context`: what was being done to which file).
    pub fn io(context: impl Into<String>, source: std::io::Error) -> StoreError {
        StoreError::Io {
            context: context.into(),
            source,
        }
    }
}

/// What identifies one version of a file without reading it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct FileIdent {
    /// Size in bytes.
    pub size: u64,
    /// Modification time, nanoseconds since the Unix epoch.
    pub mtime_ns: i128,
    /// Inode number.
    pub ino: u64,
    /// Device.
    pub dev: u64,
}

impl FileIdent {
    /// The identity in `meta`.
    pub fn of(meta: &std::fs::Metadata) -> FileIdent {
        FileIdent {
            size: meta.len(),
            mtime_ns: i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec()),
            ino: meta.ino(),
            dev: meta.dev(),
        }
    }

    /// The identity of the file at `path` now.
    pub fn stat(path: &Path) -> std::io::Result<FileIdent> {
        std::fs::metadata(path).map(|m| FileIdent::of(&m))
    }
}

/// A file to put whose size and SHA-256 are already known (computed by the caller in an
/// earlier read pass, e.g. the watcher's validation pass).
///
/// [`ArchiveStore::put_file`] streams the file without holding it in memory and fails with
/// [`StoreError::SourceChanged`] (storing nothing) when the bytes sent are not these: the S3
/// backend has the server check the signed SHA-256, the local backend hashes as it copies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileSource {
    pub path: PathBuf,
    /// Its size in bytes.
    pub size: u64,
    /// The SHA-256 of its bytes.
    pub sha256: Sha256Digest,
}

/// The store trait. Both backends pass the same conformance suite (`tests/e2e/store.rs`).
pub trait ArchiveStore: Send + Sync {
    /// Checks at start-up that the store is usable and WORM, or says plainly why not.
    fn check(&self) -> impl Future<Output = Result<Readiness, StoreError>> + Send;

    /// Streams `src` into `key`, create-only, locked, hashed in the same pass; confirms with HEAD.
    fn put_immutable<R>(
        &self,
        key: &str,
        src: R,
    ) -> impl Future<Output = Result<PutOutcome, StoreError>> + Send
    where
        R: AsyncRead + Unpin + Send + 'static;

    /// Puts a file whose size and SHA-256 are known, create-only and locked, confirmed with
    /// HEAD like [`ArchiveStore::put_immutable`]; the bytes are streamed from the file (never
    /// buffered whole) and checked on the way (by the S3 server against the signed hash, by
    /// the local backend as it copies): if they are not `src.size` bytes with `src.sha256`,
    /// nothing is stored and [`StoreError::SourceChanged`] is returned.
    fn put_file(
        &self,
        key: &str,
        src: &FileSource,
    ) -> impl Future<Output = Result<PutOutcome, StoreError>> + Send;

    /// Streams the object (a byte range of it, a given version of it).
    fn get(
        &self,
        key: &str,
        range: Option<Range<u64>>,
        version_id: Option<&str>,
    ) -> impl Future<Output = Result<ByteStream, StoreError>> + Send;

    /// Metadata of the object (a given version of it); `Ok(None)` when it does not exist.
    fn head(
        &self,
        key: &str,
        version_id: Option<&str>,
    ) -> impl Future<Output = Result<Option<ObjectInfo>, StoreError>> + Send;

    /// All keys under `prefix`, in key order.
    fn list(
        &self,
        prefix: &str,
    ) -> impl Future<Output = Result<Vec<ObjectSummary>, StoreError>> + Send;

    /// The version ids of `key`, newest first (empty when the store keeps no versions): a
    /// reader that finds a newer version stacked over a locked object can still reach the
    /// original.
    fn versions(&self, key: &str) -> impl Future<Output = Result<Vec<String>, StoreError>> + Send;

    /// Every version and delete marker under `prefix`, in key order, each key's newest first
    /// (S3 `ListObjectVersions`, 1,000 a request; the local backend: a `stat` walk, one
    /// "version" per file): the verifier's incremental run compares it with what its last
    /// clean run recorded instead of a HEAD per object.
    fn list_versions(
        &self,
        prefix: &str,
    ) -> impl Future<Output = Result<Vec<VersionSummary>, StoreError>> + Send;
}

/// The whole content of one version of `key` (the newest with `None`), refusing more than
/// `max` bytes: what a store returns is untrusted, and memory stays bounded by the caller's
/// idea of the object's size.
pub async fn read_object<S: ArchiveStore + ?Sized>(
    store: &S,
    key: &str,
    version: Option<&str>,
    max: u64,
) -> Result<Vec<u8>, StoreError> {
    use tokio::io::AsyncReadExt as _;
    let body = store.get(key, None, version).await?;
    let mut bytes = Vec::new();
    body.take(max.saturating_add(1))
        .read_to_end(&mut bytes)
        .await
        .map_err(|e| StoreError::io(format!("read {key}"), e))?;
    if bytes.len() as u64 > max {
        return Err(StoreError::io(
            format!("read {key}"),
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("larger than the {max} bytes such an object may have"),
            ),
        ));
    }
    Ok(bytes)
}

/// Checks that a key is a relative, normalised path of printable characters.
pub fn validate_key(key: &str) -> Result<(), StoreError> {
    let bad = |why| {
        Err(StoreError::InvalidKey {
            key: key.to_string(),
            why,
        })
    };
    if key.is_empty() {
        return bad("empty");
    }
    if key.len() > 1024 {
        return bad("longer than 1024 bytes");
    }
    if key.starts_with('/') {
        return bad("starts with '/'");
    }
    if key
        .split('/')
        .any(|seg| seg.is_empty() || seg == "." || seg == "..")
    {
        return bad("has an empty, '.' or '..' segment");
    }
    if key.chars().any(|c| c.is_control()) {
        return bad("has a control character");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys() {
        assert!(validate_key("db/1/15.dbf").is_ok());
        for k in ["", "/a", "a//b", "a/../b", "a/./b", "a\nb", "a/"] {
            assert!(validate_key(k).is_err(), "{k:?}");
        }
    }

    #[test]
    fn lock_mode_round_trip() {
        for m in [LockMode::Compliance, LockMode::Governance] {
            assert_eq!(LockMode::parse(m.as_str()), Some(m));
        }
        assert_eq!(LockMode::parse("NONE"), None);
    }
}
