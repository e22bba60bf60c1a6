//! `restore archive`: archived logs back from WORM onto a rebuilt host, fast and verified.
//!
//! - Parallel: up to `parallel` objects are downloaded at once (streamed, never buffered
//!   whole), but files appear under their final names **in manifest order**, so the
//!   destination always holds a prefix of the requested range that RMAN can catalog.
//! - Verified while downloading: each object is hashed as it is written to `.<name>.part`;
//!   only a file whose size and SHA-256 equal the manifest's is fsynced and renamed to its
//!   original name (`log_archive_format`). A mismatch never appears under the final name.
//! - Resumable: a final file that already exists with the right size and SHA-256 is kept and
//!   not downloaded again; a file with the right name and wrong content is an error (it is not
//!   ours to overwrite: the DBA decides).
//! - Progress: a callback gets every finished file (the CLI draws a bar on a terminal).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures::StreamExt;
use redovault::store::{ArchiveStore, StoreError};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Read size of the download loop.
const CHUNK: usize = 1 << 20;

/// One archived log to restore.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestoreItem {
    /// Object key in the store.
    pub key: String,
    /// The version recorded in the manifest (a newer version under the same key is ignored).
    pub version_id: Option<String>,
    /// SHA-256 recorded in the manifest.
    pub sha256: [u8; 32],
    /// Size recorded in the manifest.
    pub size: u64,
    /// Original file name, as the database wrote it.
    pub file_name: String,
    /// The object's form when it is the log compressed: checked as downloaded, then decoded
    /// (`sha256` and `size` above are the log's, which the restored file must have).
    pub stored: Option<redovault::manifest::StoredForm>,
}

impl From<&redovault::manifest::ManifestEntry> for RestoreItem {
    /// The log a manifest entry records: its key, recorded version, SHA-256, size and name.
    fn from(e: &redovault::manifest::ManifestEntry) -> RestoreItem {
        RestoreItem {
            key: e.object_key.clone(),
            version_id: e.version_id.clone(),
            sha256: e.sha256.0,
            size: e.size,
            file_name: e.file_name.clone(),
            stored: e.stored.clone(),
        }
    }
}

/// What happened to one item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ItemOutcome {
    /// Downloaded, verified, written.
    Restored,
    /// Already present with the right content (resumed run).
    AlreadyPresent,
}

/// Progress of a restore, reported after each file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Files finished so far (restored or already present).
    pub files_done: usize,
    /// Files requested.
    pub files_total: usize,
    /// Bytes finished so far.
    pub bytes_done: u64,
    /// Bytes requested.
    pub bytes_total: u64,
}

/// The result of a restore.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestoreSummary {
    /// Files downloaded in this run.
    pub restored: usize,
    /// Files that were already there and verified.
    pub already_present: usize,
    /// Bytes downloaded in this run.
    pub bytes_downloaded: u64,
    /// The final paths, in order.
    pub files: Vec<PathBuf>,
}

/// Why a restore stopped. Files already renamed into place stay (they are verified).
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    /// The store failed.
    #[error("restore of {file}: {source}")]
    Store {
        /// File being restored.
        file: String,
        /// The store's error.
        #[source]
        source: Box<StoreError>,
    },
    /// The downloaded bytes are not what the manifest recorded: nothing was written under the
    /// final name.
    #[error(
        "restore of {file}: object {key} does not match the manifest (size {got_size} vs {want_size}, sha256 {got_sha} vs {want_sha}); not written"
    )]
    Mismatch {
        /// File name.
        file: String,
        /// Object key.
        key: String,
        /// Bytes received.
        got_size: u64,
        /// Bytes expected.
        want_size: u64,
        /// SHA-256 received (hex).
        got_sha: String,
        /// SHA-256 expected (hex).
        want_sha: String,
    },
    /// The object is not the compressed log the manifest recorded: it does not decode to it.
    #[error(
        "restore of {file}: object {key} does not decompress to the recorded log: {detail}; not written"
    )]
    Undecodable {
        /// File name.
        file: String,
        /// Object key.
        key: String,
        /// zstd's or the decoder's reason.
        detail: String,
    },
    /// A file with the final name exists with other content.
    #[error(
        "restore of {file}: {path} already exists with different content; move it away to restore"
    )]
    ExistsDifferent {
        /// File name.
        file: String,
        path: PathBuf,
    },
    /// A file name from the manifest is not a plain file name.
    #[error("restore: file name {0:?} from the manifest is not a plain file name")]
    BadFileName(String),
    /// Local I/O failed.
    #[error("restore: {context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        #[source]
        source: std::io::Error,
    },
}

fn io_err(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> RestoreError {
    move |source| RestoreError::Io {
        context: context.into(),
        source,
    }
}

fn plain_name(name: &str) -> Result<&str, RestoreError> {
    let ok = !name.is_empty()
        && name != "."
        && name != ".."
        && !name.contains('/')
        && !name.contains('\\')
        && !name.contains('\0')
        && !name.starts_with('.');
    if ok {
        Ok(name)
    } else {
        Err(RestoreError::BadFileName(name.to_string()))
    }
}

async fn hash_file(path: &Path) -> std::io::Result<Option<([u8; 32], u64)>> {
    let mut f = match tokio::fs::File::open(path).await {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut h = Sha256::new();
    let mut buf = vec![0u8; CHUNK];
    let mut n_total = 0u64;
    loop {
        let n = f.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        n_total += n as u64;
    }
    Ok(Some((h.finalize().into(), n_total)))
}

/// Downloads one item to its `.part` file and verifies it. Returns the part path, or None when
/// the final file is already there and verified.
async fn fetch<S: ArchiveStore>(
    store: &S,
    dest: &Path,
    item: &RestoreItem,
) -> Result<(Option<PathBuf>, u64), RestoreError> {
    let name = plain_name(&item.file_name)?;
    let final_path = dest.join(name);
    if let Some((sha, size)) = hash_file(&final_path)
        .await
        .map_err(io_err(format!("reading {}", final_path.display())))?
    {
        if sha == item.sha256 && size == item.size {
            return Ok((None, 0));
        }
        return Err(RestoreError::ExistsDifferent {
            file: item.file_name.clone(),
            path: final_path,
        });
    }
    let part = dest.join(format!(".{name}.part"));
    let mut body = store
        .get(&item.key, None, item.version_id.as_deref())
        .await
        .map_err(|source| RestoreError::Store {
            file: item.file_name.clone(),
            source: Box::new(source),
        })?;
    let mut out = tokio::fs::File::create(&part)
        .await
        .map_err(io_err(format!("creating {}", part.display())))?;
    let written = match &item.stored {
        None => copy_verified(&mut body, &mut out, &item.key, item.size, &part).await,
        Some(stored) => copy_decoded(&mut body, &mut out, item, stored, &part).await,
    };
    let mismatch = match written {
        Ok((sha, got)) if sha == item.sha256 && got == item.size => None,
        Ok((sha, got)) => Some(RestoreError::Mismatch {
            file: item.file_name.clone(),
            key: item.key.clone(),
            got_size: got,
            want_size: item.size,
            got_sha: hex::encode(sha),
            want_sha: hex::encode(item.sha256),
        }),
        Err(e) => Some(e),
    };
    if let Some(e) = mismatch {
        drop(out);
        let _ = tokio::fs::remove_file(&part).await;
        return Err(e);
    }
    let got = item.stored.as_ref().map_or(item.size, |s| s.size);
    out.sync_all()
        .await
        .map_err(io_err(format!("fsync {}", part.display())))?;
    Ok((Some(part), got))
}

/// Copies `body` to `out`, at most one byte past `limit`: the SHA-256 and length of what came.
async fn copy_verified(
    body: &mut (impl tokio::io::AsyncRead + Unpin),
    out: &mut tokio::fs::File,
    key: &str,
    limit: u64,
    part: &Path,
) -> Result<([u8; 32], u64), RestoreError> {
    let mut h = Sha256::new();
    let mut buf = vec![0u8; CHUNK];
    let mut got = 0u64;
    loop {
        let n = body
            .read(&mut buf)
            .await
            .map_err(io_err(format!("downloading {key}")))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        got += n as u64;
        if got > limit {
            break;
        }
        out.write_all(&buf[..n])
            .await
            .map_err(io_err(format!("writing {}", part.display())))?;
    }
    Ok((h.finalize().into(), got))
}

/// Downloads a compressed log, checking the object against its stored form as it comes and
/// writing what it decodes to: the SHA-256 and length of the decoded log, or why the object
/// is not the one recorded.
async fn copy_decoded(
    body: &mut (impl tokio::io::AsyncRead + Unpin),
    out: &mut tokio::fs::File,
    item: &RestoreItem,
    stored: &redovault::manifest::StoredForm,
    part: &Path,
) -> Result<([u8; 32], u64), RestoreError> {
    let undecodable = |detail: String| RestoreError::Undecodable {
        file: item.file_name.clone(),
        key: item.key.clone(),
        detail,
    };
    let mut dec = redovault::compress::FrameDecoder::new(item.size)
        .map_err(io_err(format!("decoder for {}", item.key)))?;
    let (mut h_stored, mut h_log) = (Sha256::new(), Sha256::new());
    let (mut got_stored, mut got_log) = (0u64, 0u64);
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = body
            .read(&mut buf)
            .await
            .map_err(io_err(format!("downloading {}", item.key)))?;
        if n == 0 {
            break;
        }
        got_stored += n as u64;
        if got_stored > stored.size {
            return Err(undecodable(format!(
                "more than the {} bytes recorded",
                stored.size
            )));
        }
        h_stored.update(&buf[..n]);
        let mut rest = &buf[..n];
        loop {
            let step = dec.feed(rest).map_err(|e| undecodable(e.to_string()))?;
            h_log.update(step.bytes);
            got_log += step.bytes.len() as u64;
            out.write_all(step.bytes)
                .await
                .map_err(io_err(format!("writing {}", part.display())))?;
            let (consumed, more) = (step.consumed, step.more);
            rest = &rest[consumed..];
            if rest.is_empty() && !more {
                break;
            }
        }
    }
    let sha: [u8; 32] = h_stored.finalize().into();
    if sha != stored.sha256.0 || got_stored != stored.size {
        return Err(undecodable(format!(
            "the object is {got_stored} bytes with SHA-256 {}, the manifest recorded {} bytes with {}",
            hex::encode(sha),
            stored.size,
            stored.sha256
        )));
    }
    dec.finish().map_err(|e| undecodable(e.to_string()))?;
    Ok((h_log.finalize().into(), got_log))
}

/// Restores `items` into `dest`, `parallel` downloads at a time, final names in order.
///
/// `progress` is called after each file is in place. On error, the files before the failing
/// one are in place and verified; a rerun resumes after them.
pub async fn restore_archive<S: ArchiveStore + 'static>(
    store: Arc<S>,
    items: &[RestoreItem],
    dest: &Path,
    parallel: usize,
    mut progress: impl FnMut(Progress),
) -> Result<RestoreSummary, RestoreError> {
    tokio::fs::create_dir_all(dest)
        .await
        .map_err(io_err(format!("creating {}", dest.display())))?;
    let bytes_total = items.iter().map(|i| i.size).sum();
    let dest_buf = dest.to_path_buf();
    let mut downloads = futures::stream::iter(items.iter().cloned().map(|item| {
        let store = Arc::clone(&store);
        let dest = dest_buf.clone();
        async move {
            let r = fetch(store.as_ref(), &dest, &item).await;
            (item, r)
        }
    }))
    .buffered(parallel.max(1));
    let mut summary = RestoreSummary {
        restored: 0,
        already_present: 0,
        bytes_downloaded: 0,
        files: Vec::with_capacity(items.len()),
    };
    let mut p = Progress {
        files_done: 0,
        files_total: items.len(),
        bytes_done: 0,
        bytes_total,
    };
    let mut first_error = None;
    while let Some((item, r)) = downloads.next().await {
        if first_error.is_some() {
            // Keep draining so that no download is cut half way; their parts are removed.
            if let Ok((Some(part), _)) = r {
                let _ = tokio::fs::remove_file(part).await;
            }
            continue;
        }
        let final_path = dest.join(&item.file_name);
        match r {
            Ok((None, _)) => {
                summary.already_present += 1;
            }
            Ok((Some(part), n)) => {
                tokio::fs::rename(&part, &final_path)
                    .await
                    .map_err(io_err(format!("renaming {}", part.display())))?;
                redovault::durable::sync_dir(dest)
                    .map_err(io_err(format!("fsync {}", dest.display())))?;
                summary.restored += 1;
                summary.bytes_downloaded += n;
            }
            Err(e) => {
                first_error = Some(e);
                continue;
            }
        }
        summary.files.push(final_path);
        p.files_done += 1;
        p.bytes_done += item.size;
        progress(p);
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(summary),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use redovault::store::local::LocalStore;

    async fn put(store: &LocalStore, name: &str, bytes: &[u8]) -> RestoreItem {
        let sha: [u8; 32] = Sha256::digest(bytes).into();
        let key = format!("archive/sha256/{}", hex::encode(sha));
        store
            .put_immutable(&key, std::io::Cursor::new(bytes.to_vec()))
            .await
            .unwrap();
        RestoreItem {
            key,
            version_id: None,
            sha256: sha,
            size: bytes.len() as u64,
            file_name: name.to_string(),
            stored: None,
        }
    }

    /// `bytes` stored as one zstd frame under the watcher's compressed key.
    async fn put_zstd(store: &LocalStore, name: &str, bytes: &[u8], frame: &[u8]) -> RestoreItem {
        let sha: [u8; 32] = Sha256::digest(bytes).into();
        let key = format!("archive/sha256/{}.zstd-3", hex::encode(sha));
        store
            .put_immutable(&key, std::io::Cursor::new(frame.to_vec()))
            .await
            .unwrap();
        RestoreItem {
            key,
            version_id: None,
            sha256: sha,
            size: bytes.len() as u64,
            file_name: name.to_string(),
            stored: Some(redovault::manifest::StoredForm {
                encoding: redovault::manifest::Encoding::Zstd,
                size: frame.len() as u64,
                sha256: redovault::manifest::Sha256Digest::of(frame),
            }),
        }
    }

    #[tokio::test]
    async fn a_compressed_log_comes_back_as_the_original_bytes_or_not_at_all() {
        let root = tempfile::tempdir().unwrap();
        let store = Arc::new(LocalStore::new(root.path().join("store")).unwrap());
        let log: Vec<u8> = (0..3_000_000u32).map(|b| (b / 9 % 23) as u8).collect();
        let frame = zstd::bulk::compress(&log, 3).unwrap();
        let good = put_zstd(&store, "arch_1_1_1.arc", &log, &frame).await;
        // The same log's frame with one byte changed (the manifest records the good one).
        let mut bad = good.clone();
        bad.file_name = "arch_1_2_1.arc".into();
        bad.key = format!("{}-x", good.key);
        let mut other = frame.clone();
        let mid = other.len() / 2;
        other[mid] ^= 1;
        store
            .put_immutable(&bad.key, std::io::Cursor::new(other))
            .await
            .unwrap();
        let dest = root.path().join("dest");
        let s = restore_archive(
            Arc::clone(&store),
            std::slice::from_ref(&good),
            &dest,
            2,
            |_| {},
        )
        .await
        .unwrap();
        assert_eq!(s.restored, 1);
        assert_eq!(s.bytes_downloaded, frame.len() as u64);
        assert_eq!(std::fs::read(dest.join("arch_1_1_1.arc")).unwrap(), log);
        let err = restore_archive(Arc::clone(&store), &[bad], &dest, 2, |_| {})
            .await
            .unwrap_err();
        assert!(matches!(err, RestoreError::Undecodable { .. }), "{err}");
        assert!(!dest.join("arch_1_2_1.arc").exists());
        assert!(!dest.join(".arch_1_2_1.arc.part").exists());
    }

    #[tokio::test]
    async fn restores_in_order_and_resumes() {
        let root = tempfile::tempdir().unwrap();
        let store = Arc::new(LocalStore::new(root.path().join("store")).unwrap());
        let mut items = Vec::new();
        for i in 0..12u32 {
            let bytes: Vec<u8> = (0..(10_000 + i * 977)).map(|b| (b ^ i) as u8).collect();
            items.push(put(&store, &format!("arch_1_{i}_1.arc"), &bytes).await);
        }
        let dest = root.path().join("dest");
        let mut seen = Vec::new();
        let s = restore_archive(Arc::clone(&store), &items, &dest, 4, |p| {
            seen.push(p.files_done)
        })
        .await
        .unwrap();
        assert_eq!(s.restored, 12);
        assert_eq!(seen, (1..=12).collect::<Vec<_>>());
        for it in &items {
            let (sha, size) = hash_file(&dest.join(&it.file_name)).await.unwrap().unwrap();
            assert_eq!((sha, size), (it.sha256, it.size));
        }
        // Resume: remove two files, rerun; the others are not downloaded again.
        std::fs::remove_file(dest.join(&items[3].file_name)).unwrap();
        std::fs::remove_file(dest.join(&items[11].file_name)).unwrap();
        let s = restore_archive(Arc::clone(&store), &items, &dest, 4, |_| {})
            .await
            .unwrap();
        assert_eq!((s.restored, s.already_present), (2, 10));
        let leftovers: Vec<_> = std::fs::read_dir(&dest)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.ends_with(".part"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }

    #[tokio::test]
    async fn a_mismatch_is_never_written_under_its_final_name() {
        let root = tempfile::tempdir().unwrap();
        let store = Arc::new(LocalStore::new(root.path().join("store")).unwrap());
        let good = put(&store, "arch_1_1_1.arc", b"first log").await;
        let mut bad = put(&store, "arch_1_2_1.arc", b"second log").await;
        bad.sha256[0] ^= 1; // the manifest says otherwise
        let third = put(&store, "arch_1_3_1.arc", b"third log").await;
        let dest = root.path().join("dest");
        let err = restore_archive(store, &[good, bad, third], &dest, 3, |_| {})
            .await
            .unwrap_err();
        assert!(matches!(err, RestoreError::Mismatch { .. }), "{err}");
        assert!(err.to_string().contains("arch_1_2_1.arc"), "{err}");
        assert!(dest.join("arch_1_1_1.arc").exists(), "earlier files stay");
        assert!(!dest.join("arch_1_2_1.arc").exists());
        assert!(
            !dest.join("arch_1_3_1.arc").exists(),
            "nothing after the failure"
        );
        assert!(!dest.join(".arch_1_2_1.arc.part").exists());
        assert!(!dest.join(".arch_1_3_1.arc.part").exists());
    }

    #[tokio::test]
    async fn refuses_to_overwrite_a_different_file_and_odd_names() {
        let root = tempfile::tempdir().unwrap();
        let store = Arc::new(LocalStore::new(root.path().join("store")).unwrap());
        let it = put(&store, "arch_1_1_1.arc", b"log bytes").await;
        let dest = root.path().join("dest");
        std::fs::create_dir_all(&dest).unwrap();
        std::fs::write(dest.join("arch_1_1_1.arc"), b"something else").unwrap();
        let err = restore_archive(
            Arc::clone(&store),
            std::slice::from_ref(&it),
            &dest,
            1,
            |_| {},
        )
        .await
        .unwrap_err();
        assert!(matches!(err, RestoreError::ExistsDifferent { .. }), "{err}");
        assert_eq!(
            std::fs::read(dest.join("arch_1_1_1.arc")).unwrap(),
            b"something else"
        );
        let mut evil = it.clone();
        evil.file_name = "../../etc/passwd".into();
        let err = restore_archive(store, &[evil], &dest, 1, |_| {})
            .await
            .unwrap_err();
        assert!(matches!(err, RestoreError::BadFileName(_)), "{err}");
    }
}
