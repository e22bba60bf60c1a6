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
    /// A file with the final name exists with other content.
    #[error(
        "restore of {file}: {path} already exists with different content; move it away to restore"
    )]
    ExistsDifferent {
        /// File name.
        file: String,
        /// Its path.
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
        /// The error.
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
    let mut h = Sha256::new();
    let mut buf = vec![0u8; CHUNK];
    let mut got = 0u64;
    loop {
        let n = body
            .read(&mut buf)
            .await
            .map_err(io_err(format!("downloading {}", item.key)))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        got += n as u64;
        if got > item.size {
            break;
        }
        out.write_all(&buf[..n])
            .await
            .map_err(io_err(format!("writing {}", part.display())))?;
    }
    let sha: [u8; 32] = h.finalize().into();
    if sha != item.sha256 || got != item.size {
        drop(out);
        let _ = tokio::fs::remove_file(&part).await;
        return Err(RestoreError::Mismatch {
            file: item.file_name.clone(),
            key: item.key.clone(),
            got_size: got,
            want_size: item.size,
            got_sha: hex::encode(sha),
            want_sha: hex::encode(item.sha256),
        });
    }
    out.sync_all()
        .await
        .map_err(io_err(format!("fsync {}", part.display())))?;
    Ok((Some(part), got))
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
        }
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
