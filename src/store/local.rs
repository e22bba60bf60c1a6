//! Local-directory backend: the embedded default of the quickstart, and a conformance target.
//!
//! Files are written to a temporary name, fsynced, made read-only, then hard-linked to their
//! final name (which fails if the name exists: create-only without a race), and the directory
//! is fsynced. **This is not WORM**: anyone with root on this host can delete the files. Use
//! S3 with Object Lock for archives that must survive the host.

use crate::store::Sha256Digest;
use std::ops::Range;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncSeekExt, AsyncWriteExt};

use super::hashing::for_each_chunk;
use super::{
    ArchiveStore, ByteStream, FileSource, ObjectInfo, ObjectSummary, PutOutcome, Readiness,
    StoreError, VersionSummary, validate_key,
};

/// A directory of immutable files.
#[derive(Debug, Clone)]
pub struct LocalStore {
    root: PathBuf,
}

impl LocalStore {
    /// Uses (and creates) `root`.
    pub fn new(root: impl Into<PathBuf>) -> Result<LocalStore, StoreError> {
        let root = root.into();
        std::fs::create_dir_all(&root)
            .map_err(|e| StoreError::io(format!("create store directory {}", root.display()), e))?;
        Ok(LocalStore { root })
    }

    /// The directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn path(&self, key: &str) -> Result<PathBuf, StoreError> {
        validate_key(key)?;
        if key.split('/').any(|s| s.starts_with('.')) {
            return Err(StoreError::InvalidKey {
                key: key.to_string(),
                why: "a segment starts with '.' (reserved for temporary files)",
            });
        }
        Ok(self.root.join(key))
    }

    /// Copies `src` to a temporary file (hashing it), then links it to `key` unless
    /// `expected` (size, SHA-256, source path) says the bytes are not the ones announced.
    async fn put_checked<R>(
        &self,
        key: &str,
        mut src: R,
        expected: Option<&FileSource>,
    ) -> Result<PutOutcome, StoreError>
    where
        R: AsyncRead + Unpin + Send,
    {
        let path = self.path(key)?;
        let dir = path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| self.root.clone());
        tokio::fs::create_dir_all(&dir)
            .await
            .map_err(|e| StoreError::io(format!("create {}", dir.display()), e))?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let tmp = dir.join(format!(".{name}.tmp-{}", rand::random::<u64>()));
        let mut f = tokio::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .await
            .map_err(|e| StoreError::io(format!("create {}", tmp.display()), e))?;
        let mut h = Sha256::new();
        let mut size = 0u64;
        let mut buf = vec![0u8; 1 << 20];
        let copy: Result<(), StoreError> = async {
            loop {
                let n = src
                    .read(&mut buf)
                    .await
                    .map_err(|e| StoreError::io(format!("read source for {key}"), e))?;
                if n == 0 {
                    break;
                }
                h.update(&buf[..n]);
                size += n as u64;
                f.write_all(&buf[..n])
                    .await
                    .map_err(|e| StoreError::io(format!("write {}", tmp.display()), e))?;
            }
            f.sync_all()
                .await
                .map_err(|e| StoreError::io(format!("fsync {}", tmp.display()), e))
        }
        .await;
        drop(f);
        let sha256: [u8; 32] = h.finalize().into();
        let changed = expected.and_then(|x| {
            (x.size != size || x.sha256 != Sha256Digest(sha256)).then(|| {
                StoreError::SourceChanged {
                    path: x.path.display().to_string(),
                    detail: format!(
                        "read {size} bytes with sha256 {}, expected {} bytes with sha256 {}",
                        hex::encode(sha256),
                        x.size,
                        hex::encode(x.sha256)
                    ),
                }
            })
        });
        let outcome = match (copy, changed) {
            (Err(e), _) => Err(e),
            (Ok(()), Some(e)) => Err(e),
            (Ok(()), None) => {
                let mut perm = std::fs::metadata(&tmp)
                    .map_err(|e| StoreError::io(format!("stat {}", tmp.display()), e))?
                    .permissions();
                perm.set_readonly(true);
                std::fs::set_permissions(&tmp, perm)
                    .map_err(|e| StoreError::io(format!("chmod {}", tmp.display()), e))?;
                match std::fs::hard_link(&tmp, &path) {
                    Ok(()) => {
                        sync_dir(&dir)?;
                        Ok(PutOutcome {
                            key: key.to_string(),
                            version_id: None,
                            size,
                            sha256: Sha256Digest(sha256),
                            already_present: false,
                            lock: None,
                        })
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                        let (stored, stored_size) = Self::hash_file(&path).await?;
                        if stored == sha256 && stored_size == size {
                            Ok(PutOutcome {
                                key: key.to_string(),
                                version_id: None,
                                size,
                                sha256: Sha256Digest(sha256),
                                already_present: true,
                                lock: None,
                            })
                        } else {
                            Err(StoreError::AlreadyExistsDifferent {
                                key: key.to_string(),
                                stored: hex::encode(stored),
                                new: hex::encode(sha256),
                            })
                        }
                    }
                    Err(e) => Err(StoreError::io(format!("link {}", path.display()), e)),
                }
            }
        };
        // The temporary name is ours alone; the archive is the hard link.
        let _ = std::fs::remove_file(&tmp);
        outcome
    }

    async fn hash_file(path: &Path) -> Result<([u8; 32], u64), StoreError> {
        let mut f = tokio::fs::File::open(path)
            .await
            .map_err(|e| StoreError::io(format!("open {}", path.display()), e))?;
        let mut h = Sha256::new();
        let size = for_each_chunk(&mut f, |c| h.update(c))
            .await
            .map_err(|e| StoreError::io(format!("read {}", path.display()), e))?;
        Ok((h.finalize().into(), size))
    }
}

fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| StoreError::io(format!("fsync directory {}", dir.display()), e))
}

impl ArchiveStore for LocalStore {
    async fn check(&self) -> Result<Readiness, StoreError> {
        let probe = self.root.join(".redovault-write-probe");
        std::fs::write(&probe, b"probe")
            .map_err(|e| StoreError::io(format!("write to {}", self.root.display()), e))?;
        // Our own probe file, not an archive.
        let _ = std::fs::remove_file(&probe);
        Ok(Readiness {
            worm: false,
            default_retention: None,
            description: format!(
                "local directory {}: NOT WORM (files are read-only, but root on this host can \
                 delete them)",
                self.root.display()
            ),
        })
    }

    async fn put_immutable<R>(&self, key: &str, src: R) -> Result<PutOutcome, StoreError>
    where
        R: AsyncRead + Unpin + Send + 'static,
    {
        self.put_checked(key, src, None).await
    }

    async fn put_file(&self, key: &str, src: &FileSource) -> Result<PutOutcome, StoreError> {
        let f = tokio::fs::File::open(&src.path)
            .await
            .map_err(|e| StoreError::io(format!("open {}", src.path.display()), e))?;
        // One byte more than announced, so that a file that grew is seen as changed.
        self.put_checked(key, f.take(src.size.saturating_add(1)), Some(src))
            .await
    }

    async fn get(
        &self,
        key: &str,
        range: Option<Range<u64>>,
        version_id: Option<&str>,
    ) -> Result<ByteStream, StoreError> {
        let path = self.path(key)?;
        if version_id.is_some() {
            return Err(StoreError::Config(
                "the local store keeps no versions".to_string(),
            ));
        }
        let mut f = match tokio::fs::File::open(&path).await {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(StoreError::NotFound {
                    key: key.to_string(),
                });
            }
            Err(e) => return Err(StoreError::io(format!("open {}", path.display()), e)),
        };
        match range {
            None => Ok(Box::pin(f)),
            Some(r) => {
                f.seek(std::io::SeekFrom::Start(r.start))
                    .await
                    .map_err(|e| StoreError::io(format!("seek {}", path.display()), e))?;
                Ok(Box::pin(f.take(r.end.saturating_sub(r.start))))
            }
        }
    }

    async fn head(
        &self,
        key: &str,
        version_id: Option<&str>,
    ) -> Result<Option<ObjectInfo>, StoreError> {
        let path = self.path(key)?;
        if version_id.is_some() {
            return Ok(None);
        }
        match tokio::fs::metadata(&path).await {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(StoreError::io(format!("stat {}", path.display()), e)),
            Ok(_) => {
                let (sha, size) = Self::hash_file(&path).await?;
                Ok(Some(ObjectInfo {
                    key: key.to_string(),
                    version_id: None,
                    size,
                    etag: None,
                    sha256: Some(Sha256Digest(sha)),
                    lock: None,
                    legal_hold: None,
                    part_size: None,
                }))
            }
        }
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ObjectSummary>, StoreError> {
        let mut out = Vec::new();
        let mut stack = vec![self.root.clone()];
        while let Some(dir) = stack.pop() {
            let rd = std::fs::read_dir(&dir)
                .map_err(|e| StoreError::io(format!("list {}", dir.display()), e))?;
            for entry in rd {
                let entry =
                    entry.map_err(|e| StoreError::io(format!("list {}", dir.display()), e))?;
                let name = entry.file_name().to_string_lossy().into_owned();
                if name.starts_with('.') {
                    continue;
                }
                let ft = entry
                    .file_type()
                    .map_err(|e| StoreError::io(format!("stat {}", entry.path().display()), e))?;
                if ft.is_dir() {
                    stack.push(entry.path());
                } else if ft.is_file() {
                    let p = entry.path();
                    let rel = p.strip_prefix(&self.root).unwrap_or(&p);
                    let key = rel
                        .components()
                        .map(|c| c.as_os_str().to_string_lossy().into_owned())
                        .collect::<Vec<_>>()
                        .join("/");
                    if key.starts_with(prefix) {
                        let size = entry.metadata().map(|m| m.len()).unwrap_or(0);
                        out.push(ObjectSummary { key, size });
                    }
                }
            }
        }
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    /// A local store keeps one version per key (files are create-only and read-only).
    async fn versions(&self, key: &str) -> Result<Vec<String>, StoreError> {
        validate_key(key)?;
        Ok(Vec::new())
    }

    /// The listing with each file's identity (`stat`, no read): a rewritten or replaced
    /// file changes its inode, mtime or ctime, so the verifier re-checks it.
    async fn list_versions(&self, prefix: &str) -> Result<Vec<VersionSummary>, StoreError> {
        use std::os::unix::fs::MetadataExt as _;
        let listed = self.list(prefix).await?;
        let mut out = Vec::with_capacity(listed.len());
        for o in listed {
            let path = self.root.join(&o.key);
            let m = match std::fs::symlink_metadata(&path) {
                Ok(m) => m,
                // Gone between the walk and the stat: not listed.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(StoreError::io(format!("stat {}", path.display()), e)),
            };
            out.push(VersionSummary {
                key: o.key,
                version_id: None,
                is_latest: true,
                delete_marker: false,
                size: m.len(),
                etag: None,
                stamp: Some(format!(
                    "{}:{}.{:09}:{}.{:09}",
                    m.ino(),
                    m.mtime(),
                    m.mtime_nsec(),
                    m.ctime(),
                    m.ctime_nsec()
                )),
            });
        }
        Ok(out)
    }
}
