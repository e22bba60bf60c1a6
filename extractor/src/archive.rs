//! Archived copies of online logs, found in the archive destinations by their headers.
//!
//! When the tailer has fallen behind and LGWR has reused the group of the log it was
//! reading, the rest of that log exists only as ARCn's archived copy. [`ArchiveDirs::find`]
//! scans the configured directories (whatever the file names: `log_archive_format` varies)
//! and matches files by header: db id, resetlogs id, thread and sequence, in the complete
//! (archived) state. A matching file is validated completely before use: its size is exactly
//! nab blocks and every block from 1 to nab − 1 is valid (checksum, block number, sequence).
//! A file still being written by ARCn, or damaged, is rejected with its reason; it is looked
//! at again once its size or modification time changes.
//!
//! Headers and verdicts are cached by (size, modification time), so a directory of many
//! archives costs one `stat` per file per scan once it has been seen.

use std::collections::HashMap;
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use redovault::wire::StreamId;
use redovault_redo::block::classify;
use redovault_redo::{BlockState, LogSeq, LogState};
use tracing::{debug, warn};

use crate::online::{LogHeader, read_full_at};

/// Bytes read at once while validating an archived log.
const VALIDATE_READ: usize = 1 << 20;

/// A validated archived log, with its file kept open.
#[derive(Debug)]
pub struct ArchivedLog {
    /// Where it was found.
    pub path: PathBuf,
    pub header: LogHeader,
    file: File,
}

impl ArchivedLog {
    /// The open file.
    pub fn file(&self) -> &File {
        &self.file
    }

    /// Its nab: the number of blocks, block 0 included.
    pub fn end_block(&self) -> u32 {
        self.header.redo.nab
    }
}

/// The result of a search.
#[derive(Debug)]
pub enum Lookup {
    /// A complete, valid copy.
    Found(Box<ArchivedLog>),
    /// No valid copy; the files whose header matched but which failed validation, with why.
    Missing {
        /// Rejected candidates.
        rejected: Vec<(PathBuf, String)>,
    },
}

#[derive(Debug, Clone)]
struct Seen {
    len: u64,
    modified: Option<SystemTime>,
    /// The complete log the header names, if it is one.
    id: Option<(StreamId, LogSeq)>,
    /// Validation result once validated.
    verdict: Option<Result<(), String>>,
}

/// The archive destinations.
#[derive(Debug, Default)]
pub struct ArchiveDirs {
    dirs: Vec<PathBuf>,
    seen: HashMap<PathBuf, Seen>,
}

impl ArchiveDirs {
    /// The destinations to search.
    pub fn new(dirs: Vec<PathBuf>) -> ArchiveDirs {
        ArchiveDirs {
            dirs,
            seen: HashMap::new(),
        }
    }

    /// The directories.
    pub fn dirs(&self) -> &[PathBuf] {
        &self.dirs
    }

    /// Searches every destination for a complete, valid archived copy of `seq` of `stream`.
    pub fn find(&mut self, stream: StreamId, seq: LogSeq) -> Lookup {
        let mut rejected = Vec::new();
        for dir in self.dirs.clone() {
            let mut entries: Vec<PathBuf> = match fs::read_dir(&dir) {
                Ok(rd) => rd.filter_map(|e| e.ok().map(|e| e.path())).collect(),
                Err(e) => {
                    warn!(dir = %dir.display(), error = %e, "cannot list archive destination");
                    continue;
                }
            };
            entries.sort();
            for path in entries {
                let Ok(meta) = fs::metadata(&path) else {
                    continue;
                };
                if !meta.is_file() {
                    continue;
                }
                let (len, modified) = (meta.len(), meta.modified().ok());
                let cached = self
                    .seen
                    .get(&path)
                    .filter(|s| s.len == len && s.modified == modified)
                    .cloned();
                let mut seen = match cached {
                    Some(s) => s,
                    None => Seen {
                        len,
                        modified,
                        id: identify(&path),
                        verdict: None,
                    },
                };
                if seen.id != Some((stream, seq)) {
                    self.seen.insert(path, seen);
                    continue;
                }
                let found = match &seen.verdict {
                    Some(Err(reason)) => Err(reason.clone()),
                    Some(Ok(())) | None => validate(&path, seq, len),
                };
                match found {
                    Ok(log) => {
                        seen.verdict = Some(Ok(()));
                        self.seen.insert(path, seen);
                        debug!(path = %log.path.display(), seq = seq.0, "archived log found");
                        return Lookup::Found(Box::new(log));
                    }
                    Err(reason) => {
                        if seen.verdict.is_none() {
                            warn!(path = %path.display(), seq = seq.0, %reason,
                                "archived log rejected");
                        }
                        seen.verdict = Some(Err(reason.clone()));
                        rejected.push((path.clone(), reason));
                        self.seen.insert(path, seen);
                    }
                }
            }
        }
        Lookup::Missing { rejected }
    }
}

/// The complete log a file's header names, if it is one.
fn identify(path: &Path) -> Option<(StreamId, LogSeq)> {
    let f = File::open(path).ok()?;
    let h = LogHeader::read(&f).ok()?;
    (h.state == LogState::Archived).then_some((h.stream, h.seq()))
}

/// Opens and validates a whole archived log.
fn validate(path: &Path, seq: LogSeq, len: u64) -> Result<ArchivedLog, String> {
    let file = File::open(path).map_err(|e| format!("cannot open: {e}"))?;
    let header = LogHeader::read(&file).map_err(|e| e.to_string())?;
    if header.seq() != seq || header.state != LogState::Archived {
        return Err(format!(
            "header now names sequence {} ({})",
            header.seq(),
            header.state.as_str()
        ));
    }
    let bs = u64::from(header.block_size());
    let nab = header.redo.nab;
    if nab < 2 || len != u64::from(nab) * bs {
        return Err(format!(
            "size {len} is not nab {nab} × {bs} bytes (incomplete or damaged copy)"
        ));
    }
    let mut buf = vec![0u8; VALIDATE_READ - VALIDATE_READ % bs as usize];
    let mut block = 1u32;
    let e = header.file.endian;
    while block < nab {
        let at = u64::from(block) * bs;
        let n = read_full_at(&file, &mut buf, at).map_err(|e| format!("read at {at}: {e}"))?;
        if n < bs as usize {
            return Err(format!("file ends at block {block}"));
        }
        for b in buf[..n - n % bs as usize].chunks_exact(bs as usize) {
            if block >= nab {
                break;
            }
            let state = classify(b, e, header.block_size(), block, seq);
            if state != BlockState::Valid {
                return Err(format!("block {block} is {state}"));
            }
            block += 1;
        }
    }
    Ok(ArchivedLog {
        path: path.to_path_buf(),
        header,
        file,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use redovault_drill::simulate::{SimConfig, run};
    use redovault_redo::ThreadId;
    use redovault_redo::position::{DbId, ResetlogsId};

    mod oracle_real {
        include!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../tests/support/oracle_real.rs"
        ));
    }

    fn fixture_stream() -> StreamId {
        StreamId {
            db_id: DbId(1_497_016_494),
            resetlogs_id: ResetlogsId(1_224_959_854),
            thread: ThreadId(1),
        }
    }

    #[test]
    fn finds_real_archives_by_header_among_other_files() {
        let Some(dir) = oracle_real::free23() else {
            return;
        };
        let mut a = ArchiveDirs::new(vec![dir]);
        for seq in [15, 16] {
            match a.find(fixture_stream(), LogSeq(seq)) {
                Lookup::Found(l) => assert_eq!(l.header.seq(), LogSeq(seq)),
                other => panic!("{other:?}"),
            }
        }
        assert!(matches!(
            a.find(fixture_stream(), LogSeq(17)),
            Lookup::Missing { rejected } if rejected.is_empty()
        ));
        let mut other = fixture_stream();
        other.resetlogs_id.0 += 1;
        assert!(matches!(a.find(other, LogSeq(15)), Lookup::Missing { .. }));
    }

    #[test]
    fn damaged_and_partial_copies_are_rejected_then_a_good_one_is_used() {
        let tmp = tempfile::tempdir().unwrap();
        let mut c = SimConfig::new(tmp.path().join("sim"));
        c.log_size = 64 * 1024;
        c.switches = Some(2);
        let s = run(c).unwrap();
        let good = fs::read(&s.archived[0]).unwrap();
        let h = LogHeader::parse(&good).unwrap();
        let (d1, d2) = (tmp.path().join("d1"), tmp.path().join("d2"));
        fs::create_dir_all(&d1).unwrap();
        fs::create_dir_all(&d2).unwrap();
        let mut bad = good.clone();
        bad[512 * 5 + 77] ^= 1;
        fs::write(d1.join("a.dbf"), &bad).unwrap();
        fs::write(d1.join("b.dbf.tmp"), &good[..good.len() - 512]).unwrap();
        let mut a = ArchiveDirs::new(vec![d1.clone(), d2.clone()]);
        let Lookup::Missing { rejected } = a.find(h.stream, LogSeq(1)) else {
            panic!("no valid copy yet");
        };
        assert_eq!(rejected.len(), 2, "{rejected:?}");
        assert!(
            rejected[0].1.contains("block 5 is checksum"),
            "{rejected:?}"
        );
        assert!(rejected[1].1.contains("size"), "{rejected:?}");
        // ARCn finishes its copy in the second destination.
        fs::write(d2.join("arch1_1.dbf"), &good).unwrap();
        match a.find(h.stream, LogSeq(1)) {
            Lookup::Found(l) => {
                assert_eq!(l.path, d2.join("arch1_1.dbf"));
                assert_eq!(u64::from(l.end_block()) * 512, good.len() as u64);
            }
            other => panic!("{other:?}"),
        }
    }
}
