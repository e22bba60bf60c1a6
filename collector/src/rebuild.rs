//! Rebuilds the online redo log of a stream up to its last durable commit.
//!
//! The output is the source log file's bytes from offset 0 (file header, redo header, redo
//! blocks) up to the `end` of the chosen commit: byte-identical to the source up to there,
//! because the collector stores exactly the bytes the extractor read, authenticated chunk by
//! chunk. By default the sequence is the one holding the stream's last durable commit, and
//! the cut is that commit; another sequence can be asked for (cut at its last commit).
//!
//! The file is written create-only and durably: to a temporary name beside the target,
//! fsynced, then hard-linked to the target (which fails if it exists: an existing file, maybe
//! a live online log, is never overwritten), then the directory is fsynced.
//!
//! # How a DBA uses it
//!
//! After losing the database host: restore the datafiles and apply the archived logs from
//! WORM as usual, up to the sequence before the one rebuilt here. Rebuild the stream of each
//! redo thread (`RebuildOptions { pad_to_log_size: true, .. }` gives a file of the online
//! log's full size, zeros after the cut, which is what an online log member looks like past
//! its write point), check the report (sequence, last commit SCN, XID and time, SHA-256),
//! and hand the file to recovery as the log of that sequence, e.g.
//! `RECOVER DATABASE UNTIL CANCEL` (or `... USING BACKUP CONTROLFILE`) and give the file's
//! path when Oracle asks for that sequence; recovery applies it to the last commit and stops
//! at the end of the written redo. Then `ALTER DATABASE OPEN RESETLOGS`. The report's last
//! commit is the recovery point: every transaction committed at or before that SCN is
//! there.

use std::fs::OpenOptions;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use redovault::crypto::keys::KeyRing;
use redovault::wire::{CommitMark, StreamId, StreamPos};
use redovault_redo::position::{LogSeq, Scn, ThreadId, Xid};
use sha2::{Digest, Sha256};

use crate::segment::{self, ScanMode};
use crate::store::{StoreError, StreamSnapshot};

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
    /// No bad block and no record error.
    pub clean: bool,
}

/// The outcome of a rebuild.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RebuildReport {
    /// The stream.
    pub stream: StreamId,
    /// Its redo thread.
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
    pub sha256: [u8; 32],
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
            .map_or("unknown".to_string(), redovault::simulate::journal::iso8601);
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
                if p.clean { "clean" } else { "NOT CLEAN" }
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
        /// The stream.
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
        /// The stream.
        stream: StreamId,
        /// The sequence.
        seq: LogSeq,
        /// What is missing.
        reason: String,
    },
    /// The target exists: never overwritten.
    #[error("{} exists: a rebuild never overwrites a file", .0.display())]
    Exists(PathBuf),
    /// Reading the segments failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Writing the output failed.
    #[error("{op} {}: {source}", path.display())]
    Io {
        /// What was being done.
        op: &'static str,
        /// The file.
        path: PathBuf,
        /// The error.
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
    let cut = last_commit.end.offset;
    let incomplete = |reason: String| RebuildError::Incomplete {
        stream,
        seq,
        reason,
    };
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
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .map_err(io_err("create", &tmp))?;
        let mut hasher = Sha256::new();
        let mut analyzer = Some(redovault_redo::Analyzer::new());
        let mut head = Vec::new();
        let mut next: u64 = 0;
        let lo = StreamPos { seq, offset: 0 };
        let hi = StreamPos { seq, offset: cut };
        for s in &snap.segments {
            let (Some(first), Some(last_end)) = (s.first, s.last_end) else {
                continue;
            };
            if first >= hi || last_end <= lo || next >= cut {
                continue;
            }
            segment::scan::<RebuildError>(
                &s.path,
                keys,
                ScanMode::Strict,
                Some(s.durable_len),
                |_, c| {
                    if c.start.seq != seq || next >= cut {
                        return Ok(());
                    }
                    let c_end = c.start.offset + c.data.len() as u64;
                    if c_end <= next {
                        return Ok(());
                    }
                    if c.start.offset > next {
                        return Err(incomplete(format!(
                            "bytes {next}..{} missing",
                            c.start.offset
                        )));
                    }
                    let a = (next - c.start.offset) as usize;
                    let b = (c_end.min(cut) - c.start.offset) as usize;
                    let piece = &c.data[a..b];
                    file.write_all(piece).map_err(io_err("write", &tmp))?;
                    hasher.update(piece);
                    if head.len() < 512 {
                        head.extend_from_slice(&piece[..piece.len().min(512 - head.len())]);
                    }
                    if let Some(an) = analyzer.as_mut()
                        && an.feed(piece).is_err()
                    {
                        analyzer = None;
                    }
                    next += piece.len() as u64;
                    Ok(())
                },
            )?;
        }
        if next != cut {
            return Err(incomplete(format!(
                "held up to offset {next}, the commit ends at {cut}"
            )));
        }
        let mut file_size = cut;
        if opts.pad_to_log_size {
            let fh = redovault_redo::FileHeader::parse(&head)
                .map_err(|e| incomplete(format!("no redo file header to size the log: {e}")))?;
            let full = (u64::from(fh.block_count) + 1) * u64::from(fh.block_size);
            let zeros = vec![0u8; 1 << 20];
            while file_size < full {
                let n = (full - file_size).min(zeros.len() as u64) as usize;
                file.write_all(&zeros[..n]).map_err(io_err("write", &tmp))?;
                file_size += n as u64;
            }
        }
        file.sync_all().map_err(io_err("fsync", &tmp))?;
        drop(file);
        let parser = analyzer.and_then(|a| a.finish().ok()).map(|r| ParserView {
            records: r.records,
            commits: r.commits.iter().filter(|c| !c.rollback).count(),
            last_commit: r.last_commit.map(|c| (c.xid, c.scn)),
            clean: r.is_clean(),
        });
        Ok((hasher.finalize().into(), file_size, parser))
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
        sha256,
        last_commit,
        commits,
        durable_end: snap.durable.end,
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
