//! Rebuilds the online redo log of a stream up to its last durable commit.
//!
//! ```text
//! segments ──authenticated chunks of one sequence──► temporary file beside the target
//!   (default: the sequence of the last durable commit, cut at that commit's `end`;
//!    another sequence: cut at its last commit; pad_to_log_size: zeros to the log's size)
//!   ──fsync──► hard link to <target> (fails if it exists) ──fsync dir──► report
//!   report: sequence, last commit SCN, XID and time, SHA-256
//! ```
//!
//! Invariants:
//! - The output is the source log's bytes from offset 0 (file header, redo header, redo
//!   blocks) to the cut, byte-identical to the source there: the collector stores exactly
//!   the bytes the extractor read, authenticated chunk by chunk.
//! - The only place the collector writes redo unsealed (Oracle must read it), and only where
//!   the operator asks; create-only and durable: an existing file, maybe a live online log,
//!   is never overwritten.
//! - The report's last commit is the recovery point: every transaction committed at or
//!   before that SCN is in the file.
//!
//! How a DBA uses it, after losing the database host: restore the datafiles and apply the
//! archived logs from WORM up to the sequence before the one rebuilt here; rebuild each redo
//! thread's stream (`RebuildOptions { pad_to_log_size: true, .. }` gives what an online log
//! member looks like past its write point), check the report, then e.g.
//! `RECOVER DATABASE UNTIL CANCEL` (or `... USING BACKUP CONTROLFILE`) and give the file's
//! path when Oracle asks for that sequence; recovery applies it to the last commit and stops
//! at the end of the written redo. Then `ALTER DATABASE OPEN RESETLOGS`.

use redovault::digest::Sha256Digest;
use std::fs::OpenOptions;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use redovault::crypto::keys::KeyRing;
use redovault::wire::{CommitMark, StreamId, StreamPos};
use redovault_redo::position::{LogSeq, Scn, ThreadId, Xid};
use sha2::{Digest, Sha256};

use crate::segment::{self, ScanMode, StoredChunk};
use crate::store::{Store, StreamSnapshot, StreamStoreError};

/// What to rebuild.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RebuildOptions {
    /// The log sequence; `None`: the sequence of the stream's last durable commit.
    pub sequence: Option<LogSeq>,
    /// Pad the file with zeros to the online log's size (from its file header), so that it
    /// has the shape of an online log member. The SHA-256 in the report is still that of
    /// the redo bytes up to the cut.
    pub pad_to_log_size: bool,
}

/// What the parser sees in the rebuilt log (a self-check).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParserView {
    /// Redo records decoded.
    pub records: u64,
    /// Commits (not rollbacks) found.
    pub commits: usize,
    /// The last commit found: xid and SCN.
    pub last_commit: Option<(Xid, Scn)>,
    /// No bad block and no record error before the cut (past it the log is not there).
    pub clean: bool,
}

/// The outcome of a rebuild.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RebuildReport {
    pub stream: StreamId,
    pub thread: ThreadId,
    /// The log sequence rebuilt.
    pub sequence: LogSeq,
    /// The file written.
    pub path: PathBuf,
    /// Redo bytes written from the source (the cut offset).
    pub size: u64,
    /// Length of the file (larger than `size` when padded).
    pub file_size: u64,
    /// SHA-256 of the `size` redo bytes: equal to the SHA-256 of the source's first
    /// `size` bytes.
    pub sha256: Sha256Digest,
    /// The last commit in the rebuilt log: the recovery point.
    pub last_commit: CommitMark,
    /// Durable commits in this sequence up to the cut.
    pub commits: usize,
    /// The stream's durable end when the rebuild started (redo past the cut is not written:
    /// it holds no further commit).
    pub durable_end: StreamPos,
    /// The rebuilt log as the redo parser reads it.
    pub parser: Option<ParserView>,
}

impl RebuildReport {
    /// The SHA-256 in hex.
    pub fn sha256_hex(&self) -> String {
        hex::encode(self.sha256)
    }
}

impl std::fmt::Display for RebuildReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let c = &self.last_commit;
        writeln!(f, "rebuilt    {}", self.path.display())?;
        writeln!(
            f,
            "stream     {} (thread {}), sequence {}",
            self.stream, self.thread, self.sequence
        )?;
        writeln!(
            f,
            "redo       {} bytes (file {} bytes), sha256 {}",
            self.size,
            self.file_size,
            self.sha256_hex()
        )?;
        let time = c
            .time
            .and_then(|t| u64::try_from(t).ok())
            .map_or("unknown".to_string(), redovault_redo::time::unix_to_iso8601);
        writeln!(
            f,
            "last commit scn {} xid {} time {} ({} commits in this log)",
            c.scn, c.xid, time, self.commits
        )?;
        match &self.parser {
            Some(p) => write!(
                f,
                "parser     {} records, {} commits, last {}, {}",
                p.records,
                p.commits,
                p.last_commit
                    .map_or("none".into(), |(x, s)| format!("scn {s} xid {x}")),
                if p.clean {
                    "clean up to the cut"
                } else {
                    "NOT CLEAN before the cut"
                }
            ),
            None => write!(f, "parser     could not read the log"),
        }
    }
}

/// Why a rebuild failed.
#[derive(Debug, thiserror::Error)]
pub enum RebuildError {
    /// The stream holds no durable commit (in the asked sequence).
    #[error("stream {stream}: no durable commit{}", seq.map_or(String::new(), |s| format!(" in log sequence {s}")))]
    NoCommit {
        stream: StreamId,
        /// The sequence asked for.
        seq: Option<LogSeq>,
    },
    /// The store does not hold the stream.
    #[error("stream {0} is not in the store")]
    NoStream(StreamId),
    /// The stored redo of the sequence does not start at offset 0 or has a gap.
    #[error("stream {stream} log {seq}: stored redo incomplete: {reason}")]
    Incomplete {
        stream: StreamId,
        seq: LogSeq,
        /// What is missing.
        reason: String,
    },
    /// The target exists: never overwritten.
    #[error("{} exists: a rebuild never overwrites a file", .0.display())]
    Exists(PathBuf),
    /// Reading the segments failed.
    #[error(transparent)]
    Store(#[from] StreamStoreError),
    /// Writing the output failed.
    #[error("{op} {}: {source}", path.display())]
    Io {
        /// What was being done.
        op: &'static str,
        path: PathBuf,
        source: io::Error,
    },
}

impl From<crate::segment::ScanError> for RebuildError {
    fn from(e: crate::segment::ScanError) -> RebuildError {
        RebuildError::Store(e.into())
    }
}

fn io_err(op: &'static str, path: &Path) -> impl FnOnce(io::Error) -> RebuildError {
    let path = path.to_path_buf();
    move |source| RebuildError::Io { op, path, source }
}

impl Store {
    /// Rebuilds a log of `stream` to `out` (see [`crate::rebuild`]).
    pub fn rebuild(
        &self,
        stream: StreamId,
        out: &Path,
        opts: &RebuildOptions,
    ) -> Result<RebuildReport, RebuildError> {
        let snap = self
            .snapshot(stream)
            .ok_or(RebuildError::NoStream(stream))?;
        rebuild(&snap, self.keys(), out, opts)
    }
}

/// Rebuilds a log of the stream in `snap` to `out` (see the module docs).
pub fn rebuild(
    snap: &StreamSnapshot,
    keys: &KeyRing,
    out: &Path,
    opts: &RebuildOptions,
) -> Result<RebuildReport, RebuildError> {
    let stream = snap.stream;
    let seq = match opts.sequence {
        Some(s) => s,
        None => {
            snap.durable
                .last_commit
                .ok_or(RebuildError::NoCommit { stream, seq: None })?
                .end
                .seq
        }
    };
    let (last_commit, commits) = *snap.seq_commits.get(&seq).ok_or(RebuildError::NoCommit {
        stream,
        seq: Some(seq),
    })?;
    let target = Target {
        stream,
        seq,
        last_commit,
        commits,
        durable_end: snap.durable.end,
    };
    write_log(&target, out, opts, |w| {
        let lo = StreamPos { seq, offset: 0 };
        let hi = StreamPos { seq, offset: w.cut };
        for s in &snap.segments {
            let (Some(first), Some(last_end)) = (s.first, s.last_end) else {
                continue;
            };
            if first >= hi || last_end <= lo || w.done() {
                continue;
            }
            segment::scan::<RebuildError>(
                &s.path,
                keys,
                ScanMode::Strict,
                Some(s.durable_len),
                |_, c| w.push(&c),
            )?;
        }
        Ok(())
    })
}

/// What to rebuild from chunks held elsewhere (the pieces in WORM): the stream, the
/// sequence, its last commit (the cut) and how many commits it holds, and the stream's end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target {
    pub stream: StreamId,
    pub seq: LogSeq,
    /// The last commit to keep: the file ends at its `end`.
    pub last_commit: CommitMark,
    /// Commits of the sequence up to it.
    pub commits: usize,
    /// The end of what the source holds of the stream.
    pub durable_end: StreamPos,
}

/// Rebuilds `target` from `chunks` (any order of the stream's chunks that holds the
/// sequence's chunks in order; others are skipped).
pub fn rebuild_from_chunks<'a>(
    target: &Target,
    chunks: impl IntoIterator<Item = &'a StoredChunk>,
    out: &Path,
    opts: &RebuildOptions,
) -> Result<RebuildReport, RebuildError> {
    write_log(target, out, opts, |w| {
        for c in chunks {
            if w.done() {
                break;
            }
            w.push(c)?;
        }
        Ok(())
    })
}

/// The log being written: the source's bytes of one sequence from offset 0 to the cut.
struct LogWriter {
    stream: StreamId,
    seq: LogSeq,
    cut: u64,
    tmp: PathBuf,
    file: std::fs::File,
    hasher: Sha256,
    head: Vec<u8>,
    analyzer: Option<redovault_redo::Analyzer>,
    next: u64,
}

impl LogWriter {
    fn done(&self) -> bool {
        self.next >= self.cut
    }

    fn incomplete(&self, reason: String) -> RebuildError {
        RebuildError::Incomplete {
            stream: self.stream,
            seq: self.seq,
            reason,
        }
    }

    /// Writes the part of `c` that continues the log (chunks of other sequences, or
    /// already written, are skipped; a gap is an error).
    fn push(&mut self, c: &StoredChunk) -> Result<(), RebuildError> {
        if c.start.seq != self.seq || self.done() {
            return Ok(());
        }
        let c_end = c.start.offset + c.data.len() as u64;
        if c_end <= self.next {
            return Ok(());
        }
        if c.start.offset > self.next {
            return Err(self.incomplete(format!("bytes {}..{} missing", self.next, c.start.offset)));
        }
        let a = (self.next - c.start.offset) as usize;
        let b = (c_end.min(self.cut) - c.start.offset) as usize;
        let piece = &c.data[a..b];
        self.file
            .write_all(piece)
            .map_err(io_err("write", &self.tmp))?;
        self.hasher.update(piece);
        if self.head.len() < 512 {
            let n = piece.len().min(512 - self.head.len());
            self.head.extend_from_slice(&piece[..n]);
        }
        if let Some(an) = self.analyzer.as_mut()
            && an.feed(piece).is_err()
        {
            self.analyzer = None;
        }
        self.next += piece.len() as u64;
        Ok(())
    }

    /// Pads, syncs and judges what was written.
    fn finish(self, pad: bool) -> Result<([u8; 32], u64, Option<ParserView>), RebuildError> {
        let cut = self.cut;
        if self.next != cut {
            return Err(self.incomplete(format!(
                "held up to offset {}, the commit ends at {cut}",
                self.next
            )));
        }
        let mut file_size = cut;
        if pad {
            let fh = redovault_redo::FileHeader::parse(&self.head).map_err(|e| {
                self.incomplete(format!("no redo file header to size the log: {e}"))
            })?;
            let full = (u64::from(fh.block_count) + 1) * u64::from(fh.block_size);
            if full > file_size {
                // Extending the length gives zeros without writing them (a sparse tail where
                // the file system allows): a large online log is padded in no time, which
                // matters to the RTO, and reads as the zeros Oracle expects past the write point.
                self.file
                    .set_len(full)
                    .map_err(io_err("extend", &self.tmp))?;
                file_size = full;
            }
        }
        self.file.sync_all().map_err(io_err("fsync", &self.tmp))?;
        // The log ends at the cut: blocks past it are missing (or zeros), which the parser
        // rightly calls bad; the self-check judges the blocks before the cut.
        let parser = self.analyzer.and_then(|a| a.finish().ok()).map(|r| {
            let bs = u64::from(r.file.block_size).max(1);
            let cut_block = u32::try_from(cut.div_ceil(bs)).unwrap_or(u32::MAX);
            ParserView {
                records: r.records,
                commits: r.commits.iter().filter(|c| !c.rollback).count(),
                last_commit: r.last_commit.map(|c| (c.xid, c.scn)),
                clean: r.bad_blocks.iter().all(|b| b.block >= cut_block)
                    && r.errors.iter().all(|e| e.block >= cut_block),
            }
        });
        Ok((self.hasher.finalize().into(), file_size, parser))
    }
}

/// Writes `target`'s log to `out` create-only and durably, `feed` pushing its chunks.
fn write_log(
    target: &Target,
    out: &Path,
    opts: &RebuildOptions,
    feed: impl FnOnce(&mut LogWriter) -> Result<(), RebuildError>,
) -> Result<RebuildReport, RebuildError> {
    let Target {
        stream,
        seq,
        last_commit,
        commits,
        durable_end,
    } = *target;
    let cut = last_commit.end.offset;
    let name = out
        .file_name()
        .ok_or_else(|| io_err("name", out)(io::ErrorKind::InvalidInput.into()))?;
    let parent = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if out.exists() {
        return Err(RebuildError::Exists(out.to_path_buf()));
    }
    let tmp = parent.join(format!(
        ".{}.rv-partial-{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    let result = (|| {
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .map_err(io_err("create", &tmp))?;
        let mut w = LogWriter {
            stream,
            seq,
            cut,
            tmp: tmp.clone(),
            file,
            hasher: Sha256::new(),
            head: Vec::new(),
            analyzer: Some(redovault_redo::Analyzer::new()),
            next: 0,
        };
        feed(&mut w)?;
        w.finish(opts.pad_to_log_size)
    })();
    let (sha256, file_size, parser) = match result {
        Ok(v) => v,
        Err(e) => {
            // Ours, incomplete, never reported: remove it.
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
    };
    let linked = std::fs::hard_link(&tmp, out);
    let _ = std::fs::remove_file(&tmp);
    match linked {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            return Err(RebuildError::Exists(out.to_path_buf()));
        }
        Err(e) => return Err(io_err("link", out)(e)),
    }
    redovault::durable::sync_dir(&parent).map_err(io_err("fsync directory", &parent))?;
    let report = RebuildReport {
        stream,
        thread: stream.thread,
        sequence: seq,
        path: out.to_path_buf(),
        size: cut,
        file_size,
        sha256: Sha256Digest(sha256),
        last_commit,
        commits,
        durable_end,
        parser,
    };
    tracing::info!(
        stream = %stream,
        sequence = seq.0,
        path = %out.display(),
        size = cut,
        sha256 = %report.sha256_hex(),
        last_commit_scn = last_commit.scn.0,
        last_commit_xid = %last_commit.xid,
        "online log rebuilt"
    );
    Ok(report)
}

#[cfg(test)]
mod tests {
    use redovault_redo::position::ResetlogsId;
    use std::sync::Arc;

    use rand::{Rng, SeedableRng};
    use redovault::crypto::keys::KeyId;
    use redovault_drill::simulate::journal::parse_journal;
    use redovault_drill::simulate::{SimConfig, Summary};
    use redovault_redo::analyze;

    use super::*;
    use crate::store::{Store, StoreOptions};

    fn keys() -> KeyRing {
        let id = KeyId::parse("k1").unwrap();
        KeyRing::from_keys(id.clone(), [(id, [3; 32])]).unwrap()
    }

    /// A simulated database: several log switches, a current log half written.
    fn simulate(dir: &Path) -> Summary {
        let mut cfg = SimConfig::new(dir);
        cfg.log_size = 128 * 1024;
        cfg.transactions = Some(700);
        cfg.seed = 11;
        redovault_drill::simulate::run(cfg).unwrap()
    }

    /// What the extractor would ship of a log: the written part, its commit marks.
    fn shippable(bytes: &[u8], seq: LogSeq) -> (Vec<u8>, Vec<CommitMark>) {
        let r = analyze(bytes).unwrap();
        let bs = u64::from(r.file.block_size);
        let len = r
            .write_point
            .map_or(bytes.len(), |wp| (u64::from(wp) * bs) as usize);
        let prefix = bytes[..len].to_vec();
        let commits = analyze(&prefix)
            .unwrap()
            .commits
            .iter()
            .filter(|c| !c.rollback)
            .map(|c| CommitMark {
                xid: c.xid,
                scn: c.scn,
                time: c.unix_time.map(i64::from),
                end: StreamPos {
                    seq,
                    offset: (u64::from(c.end_block) + 1) * bs,
                },
            })
            .collect();
        (prefix, commits)
    }

    /// Appends a log as the extractor does: whole blocks, a few at a time, synced now and
    /// then.
    fn ship(
        st: &mut Store,
        s: StreamId,
        seq: LogSeq,
        bytes: &[u8],
        commits: &[CommitMark],
        log_end: bool,
        rng: &mut impl Rng,
    ) {
        let mut off = 0usize;
        while off < bytes.len() {
            let n = (rng.gen_range(1..40) * 512).min(bytes.len() - off);
            let pos = StreamPos {
                seq,
                offset: off as u64,
            };
            let end = StreamPos {
                seq,
                offset: (off + n) as u64,
            };
            let marks: Vec<_> = commits
                .iter()
                .filter(|c| c.end > pos && c.end <= end)
                .copied()
                .collect();
            let last = off + n == bytes.len();
            st.append(s, pos, &bytes[off..off + n], &marks, log_end && last)
                .unwrap();
            if rng.gen_bool(0.3) {
                st.sync().unwrap();
            }
            off += n;
        }
        st.sync().unwrap();
    }

    struct Fixture {
        _sim: tempfile::TempDir,
        store_dir: tempfile::TempDir,
        out: tempfile::TempDir,
        stream: StreamId,
        /// Shipped bytes and commit marks of each sequence.
        logs: Vec<(LogSeq, Vec<u8>, Vec<CommitMark>)>,
        journal: Vec<redovault_drill::simulate::journal::JournalEntry>,
    }

    fn fixture() -> Fixture {
        let sim = tempfile::tempdir().unwrap();
        let summary = simulate(sim.path());
        assert!(summary.archived.len() >= 3, "{summary:?}");
        let journal =
            parse_journal(&std::fs::read_to_string(sim.path().join("journal.jsonl")).unwrap())
                .unwrap();
        let cfg = SimConfig::new(sim.path());
        let stream = StreamId {
            db_id: cfg.db_id,
            resetlogs_id: ResetlogsId(cfg.resetlogs_id()),
            thread: ThreadId(1),
        };
        let store_dir = tempfile::tempdir().unwrap();
        let opts = StoreOptions {
            segment_size: 256 * 1024,
            chunk_size: 16 * 1024,
            compress: None,
        };
        let mut st =
            Store::open_with(store_dir.path(), keys(), opts, Arc::new(crate::fs::RealFs)).unwrap();
        let mut rng = rand::rngs::StdRng::seed_from_u64(5);
        let mut logs = Vec::new();
        for (i, path) in summary.archived.iter().enumerate() {
            let seq = LogSeq(i as u32 + 1);
            let (bytes, commits) = shippable(&std::fs::read(path).unwrap(), seq);
            ship(&mut st, stream, seq, &bytes, &commits, true, &mut rng);
            logs.push((seq, bytes, commits));
        }
        let (_, cur_seq, cur_path) = summary.current[0].clone();
        let seq = LogSeq(cur_seq);
        assert_eq!(seq.0 as usize, summary.archived.len() + 1);
        let (bytes, commits) = shippable(&std::fs::read(cur_path).unwrap(), seq);
        assert!(!commits.is_empty(), "the current log holds commits");
        ship(&mut st, stream, seq, &bytes, &commits, false, &mut rng);
        logs.push((seq, bytes, commits));
        Fixture {
            _sim: sim,
            store_dir,
            out: tempfile::tempdir().unwrap(),
            stream,
            logs,
            journal,
        }
    }

    fn xid_scn(c: &CommitMark) -> (Xid, Scn) {
        (c.xid, c.scn)
    }

    #[test]
    fn rebuilt_online_log_equals_the_source_up_to_the_last_commit() {
        let f = fixture();
        let st = Store::open(f.store_dir.path(), keys()).unwrap();
        let (seq, src, commits) = f.logs.last().unwrap();
        let last = *commits.last().unwrap();
        let out = f.out.path().join("redo_t1_current.log");
        let report = st
            .rebuild(f.stream, &out, &RebuildOptions::default())
            .unwrap();
        let cut = last.end.offset as usize;
        assert_eq!(report.sequence, *seq);
        assert_eq!(report.thread, ThreadId(1));
        assert_eq!(report.size as usize, cut);
        assert_eq!(report.file_size as usize, cut);
        assert_eq!(report.last_commit, last);
        assert_eq!(report.commits, commits.len());
        assert!(report.durable_end.offset as usize >= cut);
        let p = report.parser.clone().expect("the parser's view");
        assert!(p.clean, "clean up to the cut: {p:?}");
        assert_eq!(p.last_commit, Some((last.xid, last.scn)));
        assert!(report.to_string().contains("clean up to the cut"));
        let rebuilt = std::fs::read(&out).unwrap();
        assert_eq!(rebuilt, src[..cut], "byte-identical to the source prefix");
        let want: [u8; 32] = Sha256::digest(&src[..cut]).into();
        assert_eq!(report.sha256, Sha256Digest(want));
        // The parser reads exactly the commits up to the cut...
        let r = analyze(&rebuilt).unwrap();
        let parsed: Vec<_> = r
            .commits
            .iter()
            .filter(|c| !c.rollback)
            .map(|c| (c.xid, c.scn))
            .collect();
        assert_eq!(parsed, commits.iter().map(xid_scn).collect::<Vec<_>>());
        assert_eq!(r.last_commit.map(|c| (c.xid, c.scn)), Some(xid_scn(&last)));
        let pv = report.parser.clone().unwrap();
        assert_eq!(
            (pv.commits, pv.last_commit),
            (commits.len(), Some(xid_scn(&last)))
        );
        // ...which are the simulator's journal for that log.
        let journal: Vec<_> = f
            .journal
            .iter()
            .filter(|j| j.sequence == seq.0 && !j.rollback)
            .map(|j| {
                (
                    Xid {
                        usn: j.usn,
                        slot: j.slot,
                        sqn: j.sqn,
                    },
                    Scn(j.scn),
                )
            })
            .collect();
        assert_eq!(parsed, journal);
        let text = report.to_string();
        assert!(
            text.contains(&report.sha256_hex()) && text.contains("sequence"),
            "{text}"
        );
        assert!(
            text.contains(&format!("scn {} xid {} time 2026-", last.scn, last.xid)),
            "{text}"
        );
        // Never overwrites.
        assert!(matches!(
            st.rebuild(f.stream, &out, &RebuildOptions::default()),
            Err(RebuildError::Exists(_))
        ));
        let leftovers = std::fs::read_dir(f.out.path()).unwrap().count();
        assert_eq!(leftovers, 1, "no temporary file left");
    }

    #[test]
    fn an_older_sequence_and_a_padded_log() {
        let f = fixture();
        let st = Store::open(f.store_dir.path(), keys()).unwrap();
        let (seq, src, commits) = &f.logs[1];
        let out = f.out.path().join("seq2.log");
        let opts = RebuildOptions {
            sequence: Some(*seq),
            pad_to_log_size: true,
        };
        let report = st.rebuild(f.stream, &out, &opts).unwrap();
        let cut = commits.last().unwrap().end.offset as usize;
        let file = std::fs::read(&out).unwrap();
        assert_eq!(report.size as usize, cut);
        assert_eq!(file[..cut], src[..cut]);
        let fh = redovault_redo::FileHeader::parse(&src[..512]).unwrap();
        assert_eq!(
            file.len() as u64,
            (u64::from(fh.block_count) + 1) * u64::from(fh.block_size)
        );
        assert_eq!(report.file_size, file.len() as u64);
        assert!(file[cut..].iter().all(|&b| b == 0));
        let r = analyze(&file).unwrap();
        assert_eq!(
            r.commits.iter().filter(|c| !c.rollback).count(),
            commits.len()
        );
        // A sequence the stream never had.
        assert!(matches!(
            st.rebuild(
                f.stream,
                &f.out.path().join("x"),
                &RebuildOptions {
                    sequence: Some(LogSeq(99)),
                    pad_to_log_size: false
                }
            ),
            Err(RebuildError::NoCommit { .. })
        ));
        let other = StreamId {
            thread: ThreadId(2),
            ..f.stream
        };
        assert!(matches!(
            st.rebuild(other, &f.out.path().join("y"), &RebuildOptions::default()),
            Err(RebuildError::NoStream(_))
        ));
    }

    /// Rebuilds every sequence of `f` from `seq_from` on and checks it is byte-identical to
    /// the source up to its last commit.
    fn every_retained_sequence_rebuilds(st: &Store, f: &Fixture, seq_from: u32, tag: &str) {
        for (seq, src, commits) in f.logs.iter().filter(|l| l.0.0 >= seq_from) {
            let out = f.out.path().join(format!("{tag}-{}.log", seq.0));
            let opts = RebuildOptions {
                sequence: Some(*seq),
                pad_to_log_size: false,
            };
            let report = st.rebuild(f.stream, &out, &opts).unwrap();
            let cut = commits.last().unwrap().end.offset as usize;
            assert_eq!(std::fs::read(&out).unwrap(), src[..cut], "sequence {seq}");
            assert_eq!(report.commits, commits.len());
        }
    }

    #[test]
    fn retained_sequences_still_rebuild_after_retention_removed_older_ones() {
        let f = fixture();
        let mut st = Store::open(f.store_dir.path(), keys()).unwrap();
        // The last segment holding sequence 2 (a log switch starts a new segment).
        let through = st
            .segments(f.stream)
            .iter()
            .filter(|g| g.last_end.is_some_and(|e| e.seq == LogSeq(2)))
            .map(|g| g.number)
            .max()
            .unwrap();
        st.retire(f.stream, through).unwrap();
        assert_eq!(
            st.segments(f.stream)[0].first.map(|p| (p.seq, p.offset)),
            Some((LogSeq(3), 0))
        );
        every_retained_sequence_rebuilds(&st, &f, 3, "live");
        assert!(matches!(
            st.rebuild(
                f.stream,
                &f.out.path().join("gone"),
                &RebuildOptions {
                    sequence: Some(LogSeq(1)),
                    pad_to_log_size: false
                }
            ),
            Err(RebuildError::NoCommit { .. })
        ));
        drop(st);
        let st = Store::open(f.store_dir.path(), keys()).unwrap();
        every_retained_sequence_rebuilds(&st, &f, 3, "reopened");
    }

    #[test]
    fn a_full_disk_loses_nothing_and_the_rebuilt_logs_are_byte_identical() {
        let f = fixture();
        let dir = tempfile::tempdir().unwrap();
        let fs = crate::fs::FaultyFs::new(crate::fs::FaultPlan::default());
        let opts = StoreOptions {
            segment_size: 256 * 1024,
            chunk_size: 16 * 1024,
            compress: None,
        };
        let mut st = Store::open_with(dir.path(), keys(), opts, Arc::new(fs.clone())).unwrap();
        let (mut full, mut appends) = (0, 0u64);
        for (seq, bytes, commits) in &f.logs {
            let log_end = seq.0 < f.logs.len() as u32;
            let mut off = 0usize;
            while off < bytes.len() {
                let n = (13 * 512).min(bytes.len() - off);
                let pos = StreamPos {
                    seq: *seq,
                    offset: off as u64,
                };
                let end = StreamPos {
                    seq: *seq,
                    offset: (off + n) as u64,
                };
                let marks: Vec<_> = commits
                    .iter()
                    .filter(|c| c.end > pos && c.end <= end)
                    .copied()
                    .collect();
                let last = off + n == bytes.len();
                // Every 40th append meets a full disk half-way through its record.
                appends += 1;
                if appends % 40 == 39 {
                    fs.set_plan(crate::fs::FaultPlan {
                        space: Some(fs.written() + 1000),
                        ..crate::fs::FaultPlan::default()
                    });
                }
                match st
                    .append(f.stream, pos, &bytes[off..off + n], &marks, log_end && last)
                    .and_then(|_| st.sync())
                {
                    Ok(_) => off += n,
                    Err(e) => {
                        assert!(e.is_no_space(), "{e}");
                        full += 1;
                        // Nothing of it is durable; the extractor resends from the
                        // durable end once space frees.
                        let d = st.durable(f.stream).map(|d| d.resume_pos());
                        assert!(d.is_none_or(|d| d <= pos), "{d:?} past {pos}");
                        fs.set_plan(crate::fs::FaultPlan::default());
                        if let Some(d) = d.filter(|d| d.seq == *seq) {
                            off = d.offset as usize;
                        }
                    }
                }
            }
        }
        assert!(full >= 3, "the disk was full {full} times");
        drop(st);
        let st = Store::open(dir.path(), keys()).unwrap();
        assert!(st.recovery().torn.is_empty(), "{:?}", st.recovery().torn);
        every_retained_sequence_rebuilds(&st, &f, 1, "after-full");
        let all: usize = f.logs.iter().map(|l| l.2.len()).sum();
        assert_eq!(
            st.commits(f.stream, &crate::index::CommitQuery::All, usize::MAX)
                .len(),
            all,
            "every commit, once"
        );
    }

    #[test]
    fn no_plaintext_of_the_simulated_redo_on_disk() {
        let f = fixture();
        let mut segments = Vec::new();
        let dir = f
            .store_dir
            .path()
            .join("streams")
            .join(f.stream.to_string());
        for e in std::fs::read_dir(dir).unwrap() {
            segments.push(std::fs::read(e.unwrap().path()).unwrap());
        }
        // Every 24-byte window of every segment.
        let windows: std::collections::HashSet<&[u8]> =
            segments.iter().flat_map(|s| s.windows(24)).collect();
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let mut probes = 0;
        for (_, src, _) in &f.logs {
            for _ in 0..50 {
                // 24 bytes from inside a redo block body (past the 16-byte block header),
                // skipping runs that are all zero.
                let block = rng.gen_range(2..src.len() / 512);
                let at = block * 512 + rng.gen_range(16..512 - 24);
                let probe = &src[at..at + 24];
                if probe.iter().filter(|&&b| b == 0).count() > 12 {
                    continue;
                }
                probes += 1;
                assert!(
                    !windows.contains(probe),
                    "plaintext redo at source offset {at} found in a segment"
                );
            }
            // The file header's database name.
            assert!(segments.iter().all(|s| !s.windows(4).any(|w| w == b"FREE")));
        }
        assert!(probes > 50, "{probes} probes");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn rebuild_through_the_writer_while_appends_go_on() {
        let f = fixture();
        let store = Store::open(f.store_dir.path(), keys()).unwrap();
        let (w, _task) = crate::writer::spawn(
            store,
            crate::writer::WriterConfig::default(),
            tokio_util::sync::CancellationToken::new(),
        );
        let (seq, src, commits) = f.logs.last().unwrap();
        let d = w.durable(f.stream).unwrap();
        // More redo after the last commit (no commit in it): the cut stays.
        let more = w.append(crate::writer::AppendRequest {
            stream: f.stream,
            pos: d.end,
            bytes: vec![0u8; 512],
            commits: vec![],
            log_end: false,
        });
        let out = f.out.path().join("via-writer.log");
        let (ack, report) =
            tokio::join!(more, w.rebuild(f.stream, &out, RebuildOptions::default()));
        ack.unwrap();
        let report = report.unwrap();
        assert_eq!(report.sequence, *seq);
        let cut = commits.last().unwrap().end.offset as usize;
        assert_eq!(std::fs::read(&out).unwrap(), src[..cut]);
    }
}
