//! Why a store operation failed, and which failures leave the store usable.

use std::io;
use std::path::{Path, PathBuf};

use redovault::crypto::envelope::EnvelopeError;
use redovault::wire::{StreamId, StreamPos};

use crate::segment::{ScanError, WriteError};

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StreamStoreError {
    /// A file operation at open or while reading failed.
    #[error("{op} {}: {source}", path.display())]
    Io {
        /// What was being done.
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        source: io::Error,
    },
    /// Another process has the store open.
    #[error("store {} is in use by another process (lock {} held)", dir.display(), dir.join("LOCK").display())]
    Locked {
        /// The store directory.
        dir: PathBuf,
    },
    /// The directory holds something other than a store of this format.
    #[error("{}: not a redovault collector store of format 2 or 1 (found {found:?})", file.display())]
    Format {
        /// The FORMAT file.
        file: PathBuf,
        /// Its first line.
        found: String,
    },
    /// Options out of range.
    #[error("store options: {0}")]
    Options(String),
    /// Stored data is damaged (not a torn tail): named by file and offset.
    #[error("{} corrupt at offset {offset}: {reason}", file.display())]
    Corrupt {
        /// The segment file.
        file: PathBuf,
        /// Byte offset.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// A segment cannot be read with this key ring or build (unknown key, format).
    #[error("{}: {source}", file.display())]
    Unreadable {
        /// The segment file.
        file: PathBuf,
        source: EnvelopeError,
    },
    /// Refused: the append does not continue the stream.
    #[error("stream {stream}: append at {pos} refused, the stream continues at {}",
            expected.map_or("offset 0 of a log (new stream)".to_string(), |p| p.to_string()))]
    Discontinuity {
        stream: StreamId,
        /// Where the append started.
        pos: StreamPos,
        /// Where it must start (`None`: a new stream, at offset 0 of any log).
        expected: Option<StreamPos>,
    },
    /// Refused: the append runs past the end of a held log or ends it before held bytes.
    #[error("stream {stream}: append at {pos} refused: {reason}")]
    Overlap {
        stream: StreamId,
        /// Where the append started.
        pos: StreamPos,
        /// What differs.
        reason: String,
    },
    /// Refused: the append's bytes differ from the held redo at `at` (first differing byte):
    /// different bytes at a position already stored, the alarm of a divergent copy.
    #[error(
        "stream {stream}: append at {pos} refused: the bytes differ from the stored redo at {at}"
    )]
    Divergent {
        stream: StreamId,
        /// Where the append started.
        pos: StreamPos,
        /// The first differing byte.
        at: StreamPos,
    },
    /// A range asked of [`read_range`](super::read_range) is not held (not durable, retired,
    /// never stored) or too long to read at once.
    #[error("stream {stream}: redo {pos}..+{len} cannot be read back: {reason}")]
    NotHeld {
        stream: StreamId,
        /// Start of the range.
        pos: StreamPos,
        /// Its length.
        len: u64,
        reason: String,
    },
    /// Refused: the append is malformed (commit marks outside its bytes, too long...).
    #[error("stream {stream}: append at {pos} refused: {reason}")]
    InvalidAppend {
        stream: StreamId,
        /// Where the append started.
        pos: StreamPos,
        /// What is wrong.
        reason: String,
    },
    /// A write or sync failed: the store is now failed (see [`StreamStoreError::Failed`]).
    #[error("store failed: {0}")]
    WriteFailed(#[source] WriteError),
    /// The disk is full (`ENOSPC` or `EDQUOT` on a write or fsync). Unlike
    /// [`StreamStoreError::WriteFailed`] the store is not failed: every write of the batch that
    /// was not yet durable was cut off again (files truncated to their synced length, the
    /// streams re-read from disk), so the store holds exactly what was acknowledged and
    /// may be written again once space frees. Nothing of the batch may be acknowledged.
    #[error("disk full: {0}; nothing more is acknowledged until space frees")]
    NoSpace(String),
    /// Refused because an earlier write or sync failed; restart to recover from disk.
    #[error(
        "store is failed since an earlier I/O error ({reason}); nothing more is acknowledged until restart"
    )]
    Failed {
        /// The first failure.
        reason: String,
    },
}

impl StreamStoreError {
    /// The request was refused (the session's fault); the store itself is fine.
    pub fn is_refusal(&self) -> bool {
        matches!(
            self,
            StreamStoreError::Discontinuity { .. }
                | StreamStoreError::Overlap { .. }
                | StreamStoreError::Divergent { .. }
                | StreamStoreError::InvalidAppend { .. }
        )
    }

    /// The disk is full: retry later (see [`StreamStoreError::NoSpace`]).
    pub fn is_no_space(&self) -> bool {
        matches!(self, StreamStoreError::NoSpace(_))
    }

    /// The store is failed (by this error or an earlier one).
    pub fn is_failure(&self) -> bool {
        matches!(
            self,
            StreamStoreError::WriteFailed(_) | StreamStoreError::Failed { .. }
        )
    }
}

impl From<ScanError> for StreamStoreError {
    fn from(e: ScanError) -> StreamStoreError {
        match e {
            ScanError::Io { path, source } => StreamStoreError::Io {
                op: "read",
                path,
                source,
            },
            ScanError::Corrupt {
                path,
                offset,
                reason,
            } => StreamStoreError::Corrupt {
                file: path,
                offset,
                reason,
            },
            ScanError::Unreadable { path, source } => {
                StreamStoreError::Unreadable { file: path, source }
            }
        }
    }
}

pub(super) fn io_err(op: &'static str, path: &Path) -> impl FnOnce(io::Error) -> StreamStoreError {
    let path = path.to_path_buf();
    move |source| StreamStoreError::Io { op, path, source }
}

/// `ENOSPC` or `EDQUOT`: the disk (or the quota) is full.
pub(super) fn is_no_space(e: &WriteError) -> bool {
    match e {
        WriteError::Io { source, .. } => {
            source.kind() == io::ErrorKind::StorageFull
                || matches!(source.raw_os_error(), Some(28 | 122))
        }
        _ => false,
    }
}
