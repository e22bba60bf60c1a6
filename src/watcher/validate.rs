//! Is an archived log complete? One read pass that also computes its SHA-256.
//!
//! ```text
//! identity ─► block 0 ─► shorter than declared? ─► report at once (ARCn writing, truncated)
//!   ─► CHUNK pieces round two threads: read + judge blocks ─► SHA-256 ─► back to read
//!      (BUFFERS pieces in memory; the pass takes about as long as SHA-256)
//!   ─► identity again: changed? Completeness::Changed (the caller tries again later)
//! ```
//!
//! Invariants: a log ships only when complete: its size is the header's `(block count + 1) ×
//! block size`, every block is valid (right number, right sequence, checksum good, as judged
//! by [`Decoder::blocks_only`]), it is not a CURRENT online log, and nothing trails it.
//! Memory: `BUFFERS` (4) × [`CHUNK`] (1 MiB), whatever the file size. Blocking.
//!
//! Why blocks only: shipping is decided on blocks, the evidence that matters for recovery,
//! and the record walk would add about 40 % to the [`Decoder`]'s CPU on every byte shipped
//! (14.5 vs 8.4 ms per 64 MiB, `redo/decoder_*` in BENCHMARKS.md). Records are decoded
//! later, off the database host, by the verifier's deep check and by restore.

use crate::manifest::Sha256Digest;
use std::io::Read;
use std::path::Path;
use std::sync::mpsc;

use redovault_redo::position::{DbId, LogSeq, ResetlogsId, Scn, ThreadId};
use redovault_redo::{BlockState, Decoder, Event, FileHeader, LogState, RedoTime};
use sha2::{Digest, Sha256};

use super::scan::FileIdent;
use crate::manifest::LogIdentity;

/// Bytes read per piece.
pub const CHUNK: usize = 1 << 20;

/// Buffers of [`CHUNK`] bytes circulating between the reading, hashing and decoding threads
/// (the memory of one validation).
const BUFFERS: usize = 4;

/// The last pass's buffers, kept for the next one: a fresh zeroed megabyte costs its page
/// faults and clearing on every pass (about 2 % of the CPU of a `push` in a perf profile).
static SPARE: std::sync::Mutex<Vec<Vec<u8>>> = std::sync::Mutex::new(Vec::new());

/// What the headers of a log say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogInfo {
    pub db_id: DbId,
    pub db_name: String,
    pub resetlogs_id: ResetlogsId,
    pub thread: ThreadId,
    pub sequence: LogSeq,
    pub first_scn: Scn,
    /// Next SCN (None for a CURRENT online log).
    pub next_scn: Option<Scn>,
    /// Time of the first SCN.
    pub first_time: RedoTime,
    /// Time of the next SCN.
    pub next_time: RedoTime,
    pub block_size: u32,
    /// Blocks after block 0, as block 0 declares.
    pub block_count: u32,
}

impl LogInfo {
    pub fn identity(&self) -> LogIdentity {
        LogIdentity {
            db_id: self.db_id,
            resetlogs_id: self.resetlogs_id,
            thread: self.thread,
            sequence: self.sequence,
        }
    }
}

/// The judgement on one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Completeness {
    /// Complete and valid: it may ship.
    Complete {
        /// Its headers.
        info: LogInfo,
    },
    /// Not (yet) complete, or damaged: names the first block concerned when known.
    Incomplete {
        /// Headers, when block 1 could be read.
        info: Option<LogInfo>,
        /// The first block that is missing or bad.
        block: Option<u32>,
        /// Why, in one line.
        reason: String,
        /// True when the file is shorter than its header declares (possibly still being
        /// written), false for damage that waiting cannot fix by itself.
        short: bool,
    },
    /// Not a redo log at all (a datafile copy or any other file the include patterns
    /// match): reported and left alone, neither shipped nor quarantined. Only a block 0 that
    /// is whole, not zeroed, and not a redo file header gets this verdict; a redo log whose
    /// block 0 was wiped or torn stays [`Completeness::Incomplete`] (damage kept as evidence).
    NotRedo {
        /// Byte offset of the field that is not a redo log's.
        offset: u64,
        /// What was found there, in one line.
        reason: String,
    },
    /// The file changed while it was read: look again later.
    Changed,
}

/// The result of a validation pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Validation {
    /// The file's identity before the pass.
    pub ident: FileIdent,
    /// SHA-256 of the bytes read, when the whole file was read.
    pub sha256: Option<Sha256Digest>,
    /// The judgement.
    pub verdict: Completeness,
}

/// What the decoding thread found.
#[derive(Debug, Default)]
struct Decoded {
    file: Option<FileHeader>,
    info: Option<LogInfo>,
    state: Option<LogState>,
    first_bad: Option<(u32, BlockState)>,
    bad_blocks: u64,
    first_structural: Option<(u32, String)>,
    not_redo: Option<(u64, String)>,
}

pub(crate) fn info_of(file: &FileHeader, h: &redovault_redo::RedoHeader) -> LogInfo {
    LogInfo {
        db_id: h.db_id,
        db_name: h.db_name.clone(),
        resetlogs_id: h.resetlogs_id,
        thread: h.thread,
        sequence: h.sequence,
        first_scn: h.first_scn.unwrap_or_default(),
        next_scn: h.next_scn,
        first_time: h.first_time,
        next_time: h.next_time,
        block_size: file.block_size,
        block_count: file.block_count,
    }
}

fn drain(dec: &mut Decoder, out: &mut Decoded) -> bool {
    loop {
        match dec.poll() {
            Ok(None) => return true,
            Ok(Some(ev)) => match ev {
                Event::FileHeader(f) => out.file = Some(f),
                Event::RedoHeader(h) => {
                    if let Some(f) = &out.file {
                        out.info = Some(info_of(f, &h));
                    }
                    out.state = Some(h.log_state());
                }
                Event::Block(b) => {
                    if b.bad.is_some() {
                        out.bad_blocks += 1;
                        out.first_bad.get_or_insert((b.block, b.state));
                    }
                }
                // A blocks-only decoder yields no record and only structural errors.
                Event::Record(_) => {}
                Event::Error(e) => {
                    out.first_structural.get_or_insert((e.block, e.to_string()));
                }
                Event::End => return false,
            },
            Err(e) => {
                out.not_redo = Some((e.offset, e.detail.clone()));
                return false;
            }
        }
    }
}

/// The block-level judgement of a redo file fed in pieces, in order (the redo parser's
/// [`Decoder::blocks_only`] plus what matters for shipping). Memory: the decoder's, bounded by
/// the piece size.
pub(crate) struct Judge {
    dec: Decoder,
    out: Decoded,
    stopped: bool,
}

impl Default for Judge {
    fn default() -> Judge {
        Judge {
            dec: Decoder::blocks_only(),
            out: Decoded::default(),
            stopped: false,
        }
    }
}

impl Judge {
    /// Feeds the next bytes.
    pub(crate) fn feed(&mut self, b: &[u8]) {
        if !self.stopped {
            self.dec.feed(b);
            self.stopped = !drain(&mut self.dec, &mut self.out);
        }
    }

    /// Ends the input and judges it against its block 0.
    pub(crate) fn finish(mut self, file: &FileHeader) -> Completeness {
        if !self.stopped {
            self.dec.finish();
            drain(&mut self.dec, &mut self.out);
        }
        judge(self.out, file)
    }
}

/// Reads up to `n` bytes from the start of `f` (fewer at end of file).
pub(crate) fn read_head(f: &mut std::fs::File, n: usize) -> std::io::Result<Vec<u8>> {
    let mut head = Vec::with_capacity(n);
    f.by_ref().take(n as u64).read_to_end(&mut head)?;
    Ok(head)
}

/// A buffer and how many of its bytes are data.
type Piece = (Vec<u8>, usize);

/// Fills `buf` from `f` (fewer bytes only at the end of the file).
fn read_full(f: &mut std::fs::File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// One pass over the rest of the file (after `head`), on two threads so that the costs
/// overlap: this thread reads each piece into one of [`BUFFERS`] reusable buffers and judges
/// it, a second one hashes it and hands the buffer back. SHA-256 is the slowest stage (about
/// 29 ms per 50 MiB with SHA-NI, against about 16 ms for reading and judging), so the pass
/// takes about as long as the hash alone (31 ms per 50 MiB measured), with one thread fewer
/// than a stage per thread and nothing competing with the hasher's core.
fn read_hash_decode(f: &mut std::fs::File, head: Vec<u8>) -> std::io::Result<([u8; 32], Judge)> {
    let (free_tx, free_rx) = mpsc::sync_channel::<Vec<u8>>(BUFFERS);
    let mut spare = SPARE
        .lock()
        .map(|mut s| std::mem::take(&mut *s))
        .unwrap_or_default();
    for _ in 0..BUFFERS {
        let buf = spare.pop().unwrap_or_else(|| vec![0u8; CHUNK]);
        // The channel holds all of them: cannot fail or block.
        let _ = free_tx.send(buf);
    }
    let (sha_tx, sha_rx) = mpsc::sync_channel::<Piece>(BUFFERS);
    std::thread::scope(|s| {
        let hasher = s.spawn(move || {
            let mut h = Sha256::new();
            for (buf, n) in sha_rx {
                h.update(&buf[..n]);
                if buf.len() == CHUNK {
                    // Never blocks: the pool holds at most as many buffers as exist.
                    let _ = free_tx.send(buf);
                }
            }
            <[u8; 32]>::from(h.finalize())
        });
        let mut judge = Judge::default();
        judge.feed(&head);
        let head_len = head.len();
        let mut result = sha_tx.send((head, head_len)).map_err(|_| ());
        let mut read_err = None;
        while result.is_ok() {
            let Ok(mut buf) = free_rx.recv() else { break };
            match read_full(f, &mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    judge.feed(&buf[..n]);
                    result = sha_tx.send((buf, n)).map_err(|_| ());
                }
                Err(e) => {
                    read_err = Some(e);
                    break;
                }
            }
        }
        drop(sha_tx);
        let sha = hasher
            .join()
            .map_err(|_| std::io::Error::other("the hashing thread panicked"))?;
        // Every buffer is back in the pool now: keep them for the next pass.
        if let Ok(mut s) = SPARE.lock() {
            s.extend(free_rx.try_iter().take(BUFFERS));
        }
        match read_err {
            Some(e) => Err(e),
            None => Ok((sha, judge)),
        }
    })
}

/// Validates the file at `path` (see the module documentation). I/O errors (cannot open or
/// read) are returned as such; everything about the content is a [`Completeness`].
pub fn validate(path: &Path) -> std::io::Result<Validation> {
    let mut f = std::fs::File::open(path)?;
    let ident = FileIdent::of(&f.metadata()?);
    let head = read_head(&mut f, 512)?;
    let file = match FileHeader::parse(&head) {
        Ok(fh) => fh,
        Err(e) => {
            return Ok(Validation {
                ident,
                sha256: None,
                verdict: unparsable_block0(&head, &e),
            });
        }
    };
    let bs = u64::from(file.block_size);
    let expected = (u64::from(file.block_count) + 1) * bs;
    if ident.size < expected {
        return Ok(Validation {
            ident,
            sha256: None,
            verdict: Completeness::Incomplete {
                info: None,
                block: u32::try_from(ident.size / bs).ok(),
                reason: format!(
                    "file ends inside block {}: {} bytes of the {expected} its header declares \
                     ({} blocks of {bs} bytes after block 0)",
                    ident.size / bs,
                    ident.size,
                    file.block_count
                ),
                short: true,
            },
        });
    }
    let (sha, decoded) = read_hash_decode(&mut f, head)?;
    let after = FileIdent::stat(path)?;
    if after != ident {
        return Ok(Validation {
            ident,
            sha256: None,
            verdict: Completeness::Changed,
        });
    }
    Ok(Validation {
        ident,
        sha256: Some(Sha256Digest(sha)),
        verdict: decoded.finish(&file),
    })
}

/// The verdict on a file whose first 512 bytes are not a redo file header: not a redo log
/// when they are all there and not all zero, else an incomplete (still written, or wiped) log.
fn unparsable_block0(head: &[u8], e: &redovault_redo::NotRedo) -> Completeness {
    let whole = head.len() >= 512;
    if whole && head.iter().any(|&b| b != 0) {
        return Completeness::NotRedo {
            offset: e.offset,
            reason: format!("not a redo log: {} (at byte offset {})", e.detail, e.offset),
        };
    }
    let reason = if whole {
        "block 0 is all zeros: a redo log whose header was wiped, or a file not written yet"
            .to_string()
    } else {
        format!("not a redo log: {} (at byte offset {})", e.detail, e.offset)
    };
    Completeness::Incomplete {
        info: None,
        block: Some(0),
        reason,
        short: !whole,
    }
}

fn judge(d: Decoded, file: &FileHeader) -> Completeness {
    if let Some((offset, detail)) = d.not_redo {
        return Completeness::Incomplete {
            info: d.info,
            block: u32::try_from(offset / u64::from(file.block_size)).ok(),
            reason: format!("not a redo log: {detail} (at byte offset {offset})"),
            short: false,
        };
    }
    if let Some((block, state)) = d.first_bad {
        let more = if d.bad_blocks > 1 {
            format!(" ({} bad blocks in all)", d.bad_blocks)
        } else {
            String::new()
        };
        return Completeness::Incomplete {
            info: d.info,
            block: Some(block),
            reason: format!("block {block} is bad: {state}{more}"),
            short: matches!(state, BlockState::Truncated { .. }),
        };
    }
    if let Some((block, what)) = d.first_structural {
        return Completeness::Incomplete {
            info: d.info,
            block: Some(block),
            reason: what,
            short: false,
        };
    }
    let Some(info) = d.info else {
        return Completeness::Incomplete {
            info: None,
            block: Some(1),
            reason: "no redo log header (block 1) was read".to_string(),
            short: true,
        };
    };
    if d.state == Some(LogState::Current) || info.next_scn.is_none() {
        return Completeness::Incomplete {
            info: Some(info),
            block: Some(1),
            reason: "an online log still being written (next SCN not set in block 1), not an \
                     archived log"
                .to_string(),
            short: false,
        };
    }
    Completeness::Complete { info }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simulate::{SimConfig, run};

    mod oracle_real {
        include!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/support/oracle_real.rs"
        ));
    }

    fn sim_logs(dir: &Path, n: u64) -> Vec<std::path::PathBuf> {
        let mut cfg = SimConfig::new(dir);
        cfg.log_size = 256 * 1024;
        cfg.switches = Some(n);
        run(cfg).unwrap().archived
    }

    #[test]
    fn complete_log_is_complete_and_hashed() {
        let d = tempfile::tempdir().unwrap();
        let logs = sim_logs(d.path(), 2);
        let v = validate(&logs[1]).unwrap();
        let bytes = std::fs::read(&logs[1]).unwrap();
        assert_eq!(v.sha256, Some(Sha256::digest(&bytes).into()));
        match v.verdict {
            Completeness::Complete { info } => {
                assert_eq!(info.sequence, LogSeq(2));
                assert_eq!(info.thread, ThreadId(1));
                assert!(info.next_scn.unwrap() > info.first_scn);
                assert_eq!(
                    (u64::from(info.block_count) + 1) * u64::from(info.block_size),
                    bytes.len() as u64
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn real_oracle_logs_are_complete() {
        let Some(dir) = oracle_real::free23() else {
            return;
        };
        for f in ["arch1_15_1224959854.dbf", "arch1_16_1224959854.dbf"] {
            let p = dir.join(f);
            let v = validate(&p).unwrap();
            assert!(
                matches!(v.verdict, Completeness::Complete { .. }),
                "{f}: {:?}",
                v.verdict
            );
        }
    }

    #[test]
    fn flipped_bit_names_the_block() {
        let d = tempfile::tempdir().unwrap();
        let logs = sim_logs(d.path(), 1);
        let mut bytes = std::fs::read(&logs[0]).unwrap();
        bytes[37 * 512 + 100] ^= 0x04;
        let p = d.path().join("flipped.dbf");
        std::fs::write(&p, &bytes).unwrap();
        let v = validate(&p).unwrap();
        assert!(v.sha256.is_some());
        match v.verdict {
            Completeness::Incomplete {
                block,
                reason,
                short,
                info,
            } => {
                assert_eq!(block, Some(37));
                assert!(
                    reason.contains("block 37") && reason.contains("checksum"),
                    "{reason}"
                );
                assert!(!short);
                assert_eq!(info.unwrap().sequence, LogSeq(1));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn truncated_and_growing_files_are_short() {
        let d = tempfile::tempdir().unwrap();
        let logs = sim_logs(d.path(), 1);
        let bytes = std::fs::read(&logs[0]).unwrap();
        for cut in [10usize, 512 * 9 + 7, bytes.len() - 512] {
            let p = d.path().join(format!("cut{cut}.dbf"));
            std::fs::write(&p, &bytes[..cut]).unwrap();
            let v = validate(&p).unwrap();
            match v.verdict {
                Completeness::Incomplete {
                    block,
                    short,
                    reason,
                    ..
                } => {
                    assert!(short, "{cut}: {reason}");
                    if cut >= 512 {
                        assert_eq!(block, Some((cut / 512) as u32), "{reason}");
                        assert!(reason.contains("file ends inside block"), "{reason}");
                    }
                }
                other => panic!("{cut}: {other:?}"),
            }
        }
        // Trailing bytes: damage, not a short file.
        let p = d.path().join("long.dbf");
        let mut long = bytes.clone();
        long.extend_from_slice(&[0u8; 512]);
        std::fs::write(&p, &long).unwrap();
        match validate(&p).unwrap().verdict {
            Completeness::Incomplete { short, reason, .. } => {
                assert!(!short, "{reason}");
                assert!(reason.contains("trailing"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
        // Not redo at all: left alone, not damage.
        let p = d.path().join("junk.dbf");
        std::fs::write(&p, vec![7u8; 4096]).unwrap();
        match validate(&p).unwrap().verdict {
            Completeness::NotRedo { offset, reason } => {
                assert_eq!(offset, 0, "{reason}");
                assert!(reason.contains("not a redo log"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
    }

    /// A datafile copy (`*.dbf` like an archived log): Oracle's block 0 has the same layout
    /// for every file type, with an 8 KiB block size and the data-file format byte 0xA2.
    #[test]
    fn datafile_copy_is_not_redo_but_a_wiped_header_is_damage() {
        let d = tempfile::tempdir().unwrap();
        let file = crate::simulate::datafile_copy(4);
        let p = d.path().join("users01.dbf");
        std::fs::write(&p, &file).unwrap();
        match validate(&p).unwrap().verdict {
            Completeness::NotRedo { offset, reason } => {
                assert_eq!(offset, 20, "{reason}");
                assert!(reason.contains("block size 8192"), "{reason}");
            }
            other => panic!("{other:?}"),
        }

        // A redo log whose first block was zeroed (dd): damaged, kept as evidence.
        let sim = d.path().join("sim");
        std::fs::create_dir(&sim).unwrap();
        let logs = sim_logs(&sim, 1);
        let mut bytes = std::fs::read(&logs[0]).unwrap();
        bytes[..512].fill(0);
        let p = d.path().join("wiped.arc");
        std::fs::write(&p, &bytes).unwrap();
        match validate(&p).unwrap().verdict {
            Completeness::Incomplete {
                block,
                reason,
                short,
                ..
            } => {
                assert_eq!(block, Some(0));
                assert!(!short, "{reason}");
                assert!(reason.contains("all zeros"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
        // Shorter than a block 0 (still being created): incomplete, waited for.
        let p = d.path().join("new.arc");
        std::fs::write(&p, [1u8; 100]).unwrap();
        assert!(matches!(
            validate(&p).unwrap().verdict,
            Completeness::Incomplete { short: true, .. }
        ));
    }

    #[test]
    fn current_online_log_is_not_shipped() {
        let d = tempfile::tempdir().unwrap();
        let mut cfg = SimConfig::new(d.path());
        cfg.log_size = 256 * 1024;
        cfg.transactions = Some(20);
        let s = run(cfg).unwrap();
        let (_, _, online) = &s.current[0];
        match validate(online).unwrap().verdict {
            Completeness::Incomplete { reason, .. } => {
                assert!(reason.contains("online log"), "{reason}")
            }
            other => panic!("{other:?}"),
        }
    }
}
