//! What the watcher's jobs report to the machine: a log confirmed in the store, and why a job
//! failed, each error classifying itself for the metrics and alarms (`kind()`,
//! `is_tampering()`).

use crate::manifest::Sha256Digest;
use std::path::PathBuf;

use crate::manifest::{ManifestError, StoredForm};
use crate::store::{ErrorKind, PutOutcome, StoreError};

/// A log in the store: the store's answer for the object, and the object's form when it is
/// not the file's bytes.
#[derive(Debug, Clone)]
pub struct Shipped {
    /// The store's answer (size and SHA-256 of the object).
    pub put: PutOutcome,
    /// The compressed form, when the object is one.
    pub stored: Option<StoredForm>,
}

impl Shipped {
    /// True when the store confirmed exactly the object this log was to be stored as.
    pub fn confirms(&self, size: u64, sha256: &Sha256Digest) -> bool {
        let (want_size, want_sha) = self
            .stored
            .as_ref()
            .map_or((size, *sha256), |s| (s.size, Sha256Digest(s.sha256.0)));
        self.put.size == want_size && self.put.sha256 == want_sha
    }
}

/// Why a quarantine copy failed.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// The file cannot be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The file changed since it was judged.
    #[error("{} changed", path.display())]
    Changed { path: PathBuf },
    /// The store refused it.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A log in WORM whose manifest entry could not be written: the next attempt finds the object
/// (same key, same bytes) and appends.
#[derive(Debug, thiserror::Error)]
#[error("{} is in WORM as {key} but the manifest entry could not be written: {source}", path.display())]
pub struct RecordError {
    pub path: PathBuf,
    /// Its object.
    pub key: String,
    #[source]
    pub source: ManifestError,
}

/// A failed upload of a log, classified for the watcher's metrics and alarms.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct UploadError(pub StoreError);

impl UploadError {
    /// The error-metric label: the store's [`ErrorKind`] (classified once, by the store).
    pub fn kind(&self) -> &'static str {
        match self.0.kind() {
            ErrorKind::Transient => "upload_transient",
            ErrorKind::Config => "upload_config",
            ErrorKind::Tls => "upload_tls",
            ErrorKind::Auth => "upload_auth",
            ErrorKind::Permission => "upload_permission",
            ErrorKind::Missing => "upload_missing",
            ErrorKind::Conflict => "upload_conflict",
            ErrorKind::Integrity => "upload_integrity",
            ErrorKind::Refused => "upload_refused",
        }
    }

    /// The file changed since its validation: validate it again, no alarm.
    pub fn source_changed(&self) -> bool {
        matches!(self.0, StoreError::SourceChanged { .. })
    }

    /// The content key holds other bytes, or locks do not take: tampering or a broken store,
    /// never a passing outage.
    pub fn is_tampering(&self) -> bool {
        self.0.is_conflict() || matches!(self.0, StoreError::LockNotApplied { .. })
    }
}
