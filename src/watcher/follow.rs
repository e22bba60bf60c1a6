//! Following a log while it is written: hash and judge its bytes as they arrive, so that the
//! validation is done when the writer finishes.
//!
//! ```text
//! ARCn (as the simulator models it): writes <temporary name> ─► rename to the final name
//!                                    (a rename keeps inode, size and modification time)
//! follow job, from the moment a temporary (or short wanted) file appears:
//!   keep it open ─► each new byte range ─► SHA-256 + redo parser
//!   ─► size = what block 0 declares ─► Validation + the file's identity then
//! final name with that same identity ─► ships without being read again (upload starts
//!   within milliseconds of the rename, whatever the log's size)
//! writer stops short, shrinks the file or writes its headers last ─► follow ends, the
//!   normal validation takes over
//! ```
//!
//! Invariants (why this is safe):
//! - The result is used only for a file whose identity (device, inode, size, modification
//!   time) is exactly the one seen when the pass ended.
//! - The upload signs the SHA-256 computed here as its payload hash, so the S3 server
//!   refuses bytes that are not the ones hashed here (a writer that rewrote a range already
//!   read): the upload fails with `SourceChanged` and the file is validated again from
//!   scratch.

use std::io::{Read as _, Seek as _, SeekFrom};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use redovault_redo::FileHeader;
use sha2::{Digest, Sha256};

use super::scan::FileIdent;
use super::validate::{Judge, Validation};

/// How often the file's size is looked at while it grows.
const POLL: Duration = Duration::from_millis(5);

/// Bytes read at a time (a follower runs beside uploads: kept smaller than a validation's).
const PIECE: usize = 256 << 10;

/// A follow ends when the file has not grown for this long.
pub const IDLE: Duration = Duration::from_secs(10);

/// Follows the file at `path` (see the module documentation) until it reaches its declared
/// size (`Some`), or stops growing for `idle`, shrinks, is not redo, or `stop` is set (`None`).
/// Blocking; the file is followed through its open descriptor, across renames.
pub fn follow(path: &Path, idle: Duration, stop: &AtomicBool) -> Option<Validation> {
    let mut f = std::fs::File::open(path).ok()?;
    let mut sha = Sha256::new();
    let mut judge = Judge::default();
    let mut head: Vec<u8> = Vec::with_capacity(512);
    let mut file: Option<FileHeader> = None;
    let mut offset = 0u64;
    let mut last_growth = Instant::now();
    let mut buf = vec![0u8; PIECE];
    loop {
        if stop.load(Ordering::Relaxed) {
            return None;
        }
        let size = f.metadata().ok()?.len();
        if size < offset {
            return None;
        }
        while offset < size {
            let want = usize::try_from(size - offset).unwrap_or(PIECE).min(PIECE);
            f.seek(SeekFrom::Start(offset)).ok()?;
            let n = f.read(&mut buf[..want]).ok()?;
            if n == 0 {
                break;
            }
            let piece = &buf[..n];
            sha.update(piece);
            judge.feed(piece);
            if head.len() < 512 {
                let take = (512 - head.len()).min(n);
                head.extend_from_slice(&piece[..take]);
            }
            offset += n as u64;
            last_growth = Instant::now();
        }
        if file.is_none() && head.len() == 512 {
            file = Some(FileHeader::parse(&head).ok()?);
        }
        if let Some(fh) = &file {
            let expected = (u64::from(fh.block_count) + 1) * u64::from(fh.block_size);
            if offset > expected {
                // Trailing bytes: the full validation judges and reports them.
                return None;
            }
            if offset == expected {
                let ident = FileIdent::of(&f.metadata().ok()?);
                if ident.size != expected {
                    return None;
                }
                return Some(Validation {
                    ident,
                    sha256: Some(sha.finalize().into()),
                    verdict: judge.finish(fh),
                });
            }
        }
        if last_growth.elapsed() >= idle {
            return None;
        }
        std::thread::sleep(POLL);
    }
}

/// A stop flag shared by every follow job of a watcher.
pub type StopFlag = Arc<AtomicBool>;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simulate::{SimConfig, run};
    use crate::watcher::validate::{Completeness, validate};
    use std::io::Write as _;

    #[test]
    fn following_a_growing_file_gives_the_validation_of_the_whole_file() {
        let d = tempfile::tempdir().unwrap();
        let mut cfg = SimConfig::new(d.path());
        cfg.log_size = 256 * 1024;
        cfg.switches = Some(1);
        let log = run(cfg).unwrap().archived.remove(0);
        let bytes = std::fs::read(&log).unwrap();
        let tmp = d.path().join("x.dbf.tmp");
        let mut w = std::fs::File::create(&tmp).unwrap();
        let stop = AtomicBool::new(false);
        let (result, _) = std::thread::scope(|s| {
            let follower = s.spawn(|| follow(&tmp, Duration::from_secs(5), &stop));
            // Written in uneven pieces, with pauses, as a writer would.
            for piece in bytes.chunks(7777) {
                w.write_all(piece).unwrap();
                std::thread::sleep(Duration::from_micros(300));
            }
            w.sync_all().unwrap();
            (follower.join().unwrap(), ())
        });
        let followed = result.expect("followed to the end");
        let final_name = d.path().join("x.dbf");
        std::fs::rename(&tmp, &final_name).unwrap();
        let full = validate(&final_name).unwrap();
        assert_eq!(followed, full, "same result as reading the finished file");
        assert!(matches!(full.verdict, Completeness::Complete { .. }));
    }

    #[test]
    fn a_writer_that_stops_short_ends_the_follow() {
        let d = tempfile::tempdir().unwrap();
        let mut cfg = SimConfig::new(d.path());
        cfg.log_size = 128 * 1024;
        cfg.switches = Some(1);
        let log = run(cfg).unwrap().archived.remove(0);
        let bytes = std::fs::read(&log).unwrap();
        let tmp = d.path().join("y.tmp");
        std::fs::write(&tmp, &bytes[..bytes.len() / 2]).unwrap();
        let stop = AtomicBool::new(false);
        let t0 = Instant::now();
        assert!(follow(&tmp, Duration::from_millis(100), &stop).is_none());
        assert!(t0.elapsed() < Duration::from_secs(5));
        std::fs::write(&tmp, vec![9u8; 4096]).unwrap();
        assert!(
            follow(&tmp, Duration::from_millis(100), &stop).is_none(),
            "not redo"
        );
    }
}
