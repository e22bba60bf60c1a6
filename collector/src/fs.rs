//! The file operations the store writes through, so that faults can be injected in tests.
//!
//! [`RealFs`] is what production uses: create-only files, `write_all`, `fdatasync`, and
//! directory `fsync` through [`redovault::durable`]. `FaultyFs` (tests and the `test-util`
//! feature) wraps the real files and fails chosen operations the way a full or failing disk
//! does: a write that stores only part of its bytes then reports `ENOSPC`, an `fdatasync`
//! that reports `EIO`. Reads (recovery, rebuild) use `std::fs` directly: the faults that
//! matter for "never acknowledge what is not durable" are on the write side.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;

/// A segment file open for appending.
pub trait SegmentFile: Send + fmt::Debug {
    /// Appends all of `buf` (or fails, possibly after writing a prefix of it).
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()>;
    /// `fdatasync`: everything written so far is durable when this returns `Ok`.
    fn sync_data(&mut self) -> io::Result<()>;
}

/// The directory and file operations of the store's write path.
pub trait Fs: Send + Sync + fmt::Debug {
    /// Creates a directory (its parent must exist); `AlreadyExists` if it does.
    fn create_dir(&self, path: &Path) -> io::Result<()>;
    /// Creates a file that must not exist yet, open for appending.
    fn create_new(&self, path: &Path) -> io::Result<Box<dyn SegmentFile>>;
    /// `fsync` of a directory, making entries created in it durable.
    fn sync_dir(&self, path: &Path) -> io::Result<()>;
}

/// The real file system.
#[derive(Debug, Default, Clone, Copy)]
pub struct RealFs;

#[derive(Debug)]
struct RealFile(File);

impl SegmentFile for RealFile {
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.0.write_all(buf)
    }

    fn sync_data(&mut self) -> io::Result<()> {
        self.0.sync_data()
    }
}

impl Fs for RealFs {
    fn create_dir(&self, path: &Path) -> io::Result<()> {
        std::fs::create_dir(path)
    }

    fn create_new(&self, path: &Path) -> io::Result<Box<dyn SegmentFile>> {
        let f = OpenOptions::new()
            .append(true)
            .create_new(true)
            .open(path)?;
        Ok(Box::new(RealFile(f)))
    }

    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        redovault::durable::sync_dir(path)
    }
}

#[cfg(any(test, feature = "test-util"))]
pub use faulty::{FaultPlan, FaultyFs};

#[cfg(any(test, feature = "test-util"))]
mod faulty {
    use std::path::PathBuf;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::{Arc, Condvar, Mutex};

    use super::*;

    /// Which operations fail. Counts are over the whole [`FaultyFs`] (every file).
    #[derive(Debug, Clone, Default)]
    pub struct FaultPlan {
        /// The `n`-th `fdatasync` (1-based, file syncs only) and every later one fail with
        /// `EIO`.
        pub fail_sync_from: Option<u64>,
        /// Once this many bytes have been written in total, a write stores only the bytes
        /// up to that limit and fails with `ENOSPC`, as does every later write.
        pub space: Option<u64>,
        /// Directory syncs fail with `EIO`.
        pub fail_dir_sync: bool,
        /// The syncs failed by `fail_sync_from` report `ENOSPC` instead of `EIO` (a file
        /// system that allocates at writeback, or a thin volume, runs out at fsync).
        pub sync_no_space: bool,
    }

    /// A file system that fails as told by its [`FaultPlan`] and otherwise writes real files.
    #[derive(Debug, Clone, Default)]
    pub struct FaultyFs {
        inner: Arc<Inner>,
    }

    #[derive(Debug, Default)]
    struct Inner {
        plan: Mutex<FaultPlan>,
        written: AtomicU64,
        syncs: AtomicU64,
        /// `fdatasync` calls entered and not returned yet.
        in_flight: AtomicU64,
        dir_syncs: AtomicU64,
        /// The file of every `fdatasync` call, in call order.
        synced: Mutex<Vec<PathBuf>>,
        /// While true, `fdatasync` calls wait (a slow disk, held by the test).
        hold: Mutex<bool>,
        released: Condvar,
    }

    impl FaultyFs {
        /// A file system that fails as `plan` says.
        pub fn new(plan: FaultPlan) -> FaultyFs {
            FaultyFs {
                inner: Arc::new(Inner {
                    plan: Mutex::new(plan),
                    ..Inner::default()
                }),
            }
        }

        /// Changes the plan (counters are kept).
        pub fn set_plan(&self, plan: FaultPlan) {
            if let Ok(mut p) = self.inner.plan.lock() {
                *p = plan;
            }
        }

        /// Makes every `fdatasync` wait until [`FaultyFs::release_syncs`]: a disk that
        /// takes its time, so that tests can see what happens before a sync returns.
        pub fn hold_syncs(&self) {
            if let Ok(mut h) = self.inner.hold.lock() {
                *h = true;
            }
        }

        /// Lets held and later `fdatasync` calls proceed.
        pub fn release_syncs(&self) {
            if let Ok(mut h) = self.inner.hold.lock() {
                *h = false;
            }
            self.inner.released.notify_all();
        }

        /// `fdatasync` calls so far, failed ones included.
        pub fn syncs(&self) -> u64 {
            self.inner.syncs.load(Ordering::SeqCst)
        }

        /// `fdatasync` calls in progress now (held ones included): how many a batch has in
        /// flight at once.
        pub fn syncs_in_flight(&self) -> u64 {
            self.inner.in_flight.load(Ordering::SeqCst)
        }

        /// The file of every `fdatasync` call so far, in call order.
        pub fn synced_files(&self) -> Vec<PathBuf> {
            self.inner
                .synced
                .lock()
                .map(|v| v.clone())
                .unwrap_or_default()
        }

        /// Directory syncs so far.
        pub fn dir_syncs(&self) -> u64 {
            self.inner.dir_syncs.load(Ordering::SeqCst)
        }

        /// Bytes written so far.
        pub fn written(&self) -> u64 {
            self.inner.written.load(Ordering::SeqCst)
        }

        fn plan(&self) -> FaultPlan {
            self.inner
                .plan
                .lock()
                .map(|p| p.clone())
                .unwrap_or_default()
        }
    }

    #[derive(Debug)]
    struct FaultyFile {
        file: File,
        path: PathBuf,
        fs: FaultyFs,
    }

    impl SegmentFile for FaultyFile {
        fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
            let before = self.fs.inner.written.load(Ordering::SeqCst);
            if let Some(space) = self.fs.plan().space {
                let room = space.saturating_sub(before);
                if (buf.len() as u64) > room {
                    let n = usize::try_from(room).unwrap_or(usize::MAX).min(buf.len());
                    self.file.write_all(&buf[..n])?;
                    self.fs.inner.written.fetch_add(n as u64, Ordering::SeqCst);
                    return Err(io::Error::from_raw_os_error(28)); // ENOSPC
                }
            }
            self.file.write_all(buf)?;
            self.fs
                .inner
                .written
                .fetch_add(buf.len() as u64, Ordering::SeqCst);
            Ok(())
        }

        fn sync_data(&mut self) -> io::Result<()> {
            self.fs.inner.in_flight.fetch_add(1, Ordering::SeqCst);
            let r = self.sync_data_inner();
            self.fs.inner.in_flight.fetch_sub(1, Ordering::SeqCst);
            r
        }
    }

    impl FaultyFile {
        fn sync_data_inner(&mut self) -> io::Result<()> {
            let n = self.fs.inner.syncs.fetch_add(1, Ordering::SeqCst) + 1;
            if let Ok(mut v) = self.fs.inner.synced.lock() {
                v.push(self.path.clone());
            }
            if let Ok(mut held) = self.fs.inner.hold.lock() {
                while *held {
                    match self.fs.inner.released.wait(held) {
                        Ok(h) => held = h,
                        Err(_) => break,
                    }
                }
            }
            let plan = self.fs.plan();
            if plan.fail_sync_from.is_some_and(|k| n >= k) {
                // ENOSPC or EIO
                return Err(io::Error::from_raw_os_error(if plan.sync_no_space {
                    28
                } else {
                    5
                }));
            }
            self.file.sync_data()
        }
    }

    impl Fs for FaultyFs {
        fn create_dir(&self, path: &Path) -> io::Result<()> {
            RealFs.create_dir(path)
        }

        fn create_new(&self, path: &Path) -> io::Result<Box<dyn SegmentFile>> {
            let file = OpenOptions::new()
                .append(true)
                .create_new(true)
                .open(path)?;
            Ok(Box::new(FaultyFile {
                file,
                path: path.to_path_buf(),
                fs: self.clone(),
            }))
        }

        fn sync_dir(&self, path: &Path) -> io::Result<()> {
            self.inner.dir_syncs.fetch_add(1, Ordering::SeqCst);
            if self.plan().fail_dir_sync {
                return Err(io::Error::from_raw_os_error(5));
            }
            RealFs.sync_dir(path)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn real_fs_is_create_only_and_appends() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        let mut f = RealFs.create_new(&p).unwrap();
        f.write_all(b"ab").unwrap();
        f.write_all(b"cd").unwrap();
        f.sync_data().unwrap();
        RealFs.sync_dir(dir.path()).unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"abcd");
        assert_eq!(
            RealFs.create_new(&p).unwrap_err().kind(),
            io::ErrorKind::AlreadyExists
        );
    }

    #[test]
    fn faulty_fs_writes_a_prefix_then_fails() {
        let dir = tempfile::tempdir().unwrap();
        let fs = FaultyFs::new(FaultPlan {
            space: Some(5),
            fail_sync_from: Some(2),
            ..FaultPlan::default()
        });
        let p = dir.path().join("f");
        let mut f = fs.create_new(&p).unwrap();
        f.write_all(b"abc").unwrap();
        f.sync_data().unwrap();
        let e = f.write_all(b"defg").unwrap_err();
        assert_eq!(e.raw_os_error(), Some(28));
        assert_eq!(std::fs::read(&p).unwrap(), b"abcde");
        assert_eq!(f.sync_data().unwrap_err().raw_os_error(), Some(5));
        assert_eq!(fs.syncs(), 2);
    }
}
