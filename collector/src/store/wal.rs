//! The collector-wide write-ahead file: one fdatasync per group commit, however many streams
//! the batch wrote (issue 19).
//!
//! A sync over two or more dirty segments copies each one's unsynced records, byte for byte
//! (already sealed), into framed records of `<dir>/wal/wal-<n>` and fdatasyncs that one file;
//! the segment files were written as usual (page cache) and are fdatasynced later, at a
//! checkpoint. Frame layout (integers little-endian):
//!
//! ```text
//! 0   4  magic "RVWF"
//! 4   4  stream: database id        8   4  stream: resetlogs id
//! 12  2  stream: thread             14  2  reserved (0)
//! 16  8  segment number             24  8  offset of the bytes in the segment
//! 32  8  length n of the bytes      40  8  bytes of this file durable when the frame was
//!                                          written (its synced length then)
//! 48  n  the bytes (whole sealed segment records)
//! 48+n 4 CRC-32 of bytes 0..48+n
//! ```
//!
//! A damaged frame is a torn tail (the unacknowledged end of the last group commit, cut
//! short by a crash) unless an intact frame after it says the damaged one was already
//! durable when it was written: then it is corruption, like a segment's durable count.

use std::collections::BTreeSet;
use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use redovault::wire::StreamId;
use redovault_redo::position::{DbId, ResetlogsId, ThreadId};

use super::append::sync_all;
use super::*;
use crate::fs::SegmentFile;
use crate::segment::{self, WriteError};

/// The directory of the write-ahead files, in the store directory.
pub const WAL_DIR: &str = "wal";
/// A group commit that finds the write-ahead file this long first checkpoints it: 64 MiB,
/// about six seconds of 10 MB/s of redo, so at most that much is replayed at open and the
/// checkpoint's segment fdatasyncs come every few seconds, not every batch.
pub const WAL_CHECKPOINT_SIZE: u64 = 64 << 20;

const FRAME_MAGIC: [u8; 4] = *b"RVWF";
const FRAME_HEADER_LEN: usize = 48;
const FRAME_CRC_LEN: usize = 4;

/// File name of write-ahead file `n`.
pub fn wal_file_name(n: u64) -> String {
    format!("wal-{n:020}")
}

fn parse_wal_file_name(name: &str) -> Option<u64> {
    let digits = name.strip_prefix("wal-")?;
    (digits.len() == 20 && digits.bytes().all(|b| b.is_ascii_digit()))
        .then(|| digits.parse().ok())
        .flatten()
}

/// What open found in the write-ahead files and wrote back into the segments.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WalRecovery {
    /// Write-ahead files replayed (and removed).
    pub files: usize,
    /// Intact frames replayed.
    pub frames: u64,
    /// Segment bytes that were missing or differed and were written back from the frames.
    pub restored_bytes: u64,
    /// The torn tail of the last write-ahead file (never acknowledged): file, offset, why.
    pub torn: Option<(PathBuf, u64, String)>,
}

/// The write-ahead file being appended to.
#[derive(Debug)]
pub(super) struct Wal {
    path: PathBuf,
    file: Box<dyn SegmentFile>,
    len: u64,
    synced_len: u64,
}

/// A write-ahead file read: its bytes, its intact frames, and a torn tail (offset, why).
struct Frames {
    bytes: Vec<u8>,
    frames: Vec<Frame>,
    torn: Option<(u64, String)>,
}

#[derive(Debug)]
struct Frame {
    at: u64,
    stream: StreamId,
    segment: u64,
    offset: u64,
    bytes: std::ops::Range<usize>,
}

fn encode_frame(
    out: &mut Vec<u8>,
    stream: StreamId,
    segment: u64,
    offset: u64,
    bytes: &[u8],
    synced: u64,
) {
    let start = out.len();
    out.extend_from_slice(&FRAME_MAGIC);
    out.extend_from_slice(&stream.db_id.0.to_le_bytes());
    out.extend_from_slice(&stream.resetlogs_id.0.to_le_bytes());
    out.extend_from_slice(&stream.thread.0.to_le_bytes());
    out.extend_from_slice(&[0; 2]);
    out.extend_from_slice(&segment.to_le_bytes());
    out.extend_from_slice(&offset.to_le_bytes());
    out.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
    out.extend_from_slice(&synced.to_le_bytes());
    out.extend_from_slice(bytes);
    let crc = crc32fast::hash(&out[start..]);
    out.extend_from_slice(&crc.to_le_bytes());
}

/// The frame at `at`: `Ok((frame, synced when written, next offset))` or why it is damaged.
fn decode_frame(b: &[u8], at: usize) -> Result<(Frame, u64, usize), String> {
    let rest = b.get(at..).unwrap_or(&[]);
    let Some(h) = rest.get(..FRAME_HEADER_LEN) else {
        return Err("incomplete frame header".into());
    };
    if h[..4] != FRAME_MAGIC {
        return Err("no frame magic".into());
    }
    let u32_at = |i: usize| u32::from_le_bytes([h[i], h[i + 1], h[i + 2], h[i + 3]]);
    let u64_at = |i: usize| {
        let mut w = [0u8; 8];
        w.copy_from_slice(&h[i..i + 8]);
        u64::from_le_bytes(w)
    };
    let n = u64_at(32);
    let total = usize::try_from(n)
        .ok()
        .and_then(|n| n.checked_add(FRAME_HEADER_LEN + FRAME_CRC_LEN))
        .filter(|&t| t <= rest.len())
        .ok_or_else(|| {
            format!(
                "incomplete frame: {n} bytes declared, {} left",
                rest.len().saturating_sub(FRAME_HEADER_LEN + FRAME_CRC_LEN)
            )
        })?;
    let body_end = total - FRAME_CRC_LEN;
    let mut crc = [0u8; 4];
    crc.copy_from_slice(&rest[body_end..total]);
    if crc32fast::hash(&rest[..body_end]) != u32::from_le_bytes(crc) {
        return Err("frame checksum mismatch".into());
    }
    let frame = Frame {
        at: at as u64,
        stream: StreamId {
            db_id: DbId(u32_at(4)),
            resetlogs_id: ResetlogsId(u32_at(8)),
            thread: ThreadId(u16::from_le_bytes([h[12], h[13]])),
        },
        segment: u64_at(16),
        offset: u64_at(24),
        bytes: at + FRAME_HEADER_LEN..at + body_end,
    };
    Ok((frame, u64_at(40), at + total))
}

/// Reads every intact frame of `path` up to `limit` bytes. A damaged frame ends the scan: a
/// torn tail (returned with its offset and reason) if `torn_allowed` and no intact frame
/// after it proves it was durable; an error naming the file and offset otherwise.
fn read_frames(
    path: &Path,
    limit: Option<u64>,
    torn_allowed: bool,
) -> Result<Frames, StreamStoreError> {
    let mut b = Vec::new();
    File::open(path)
        .and_then(|f| f.take(limit.unwrap_or(u64::MAX)).read_to_end(&mut b))
        .map_err(io_err("read", path))?;
    let mut frames = Vec::new();
    let mut at = 0;
    while at < b.len() {
        match decode_frame(&b, at) {
            Ok((f, _, next)) => {
                frames.push(f);
                at = next;
            }
            Err(reason) => {
                let corrupt = |reason: String| StreamStoreError::Corrupt {
                    file: path.to_path_buf(),
                    offset: at as u64,
                    reason,
                };
                if !torn_allowed {
                    return Err(corrupt(format!(
                        "{reason} (not the last write-ahead file: every frame was synced)"
                    )));
                }
                // An intact later frame written when this one was already durable?
                let witness = (at + 1..b.len())
                    .filter(|&i| b[i..].starts_with(&FRAME_MAGIC))
                    .find(|&i| {
                        matches!(decode_frame(&b, i), Ok((_, synced, _)) if synced > at as u64)
                    });
                if let Some(i) = witness {
                    return Err(corrupt(format!(
                        "{reason}; the frame at offset {i} was written after this one was \
                         durable, so this is damage to acknowledged data, not a torn write"
                    )));
                }
                return Ok(Frames {
                    bytes: b,
                    frames,
                    torn: Some((at as u64, reason)),
                });
            }
        }
    }
    Ok(Frames {
        bytes: b,
        frames,
        torn: None,
    })
}

/// Writes the frames of the write-ahead file `path` (up to `limit` bytes) back into their
/// segments in the store `dir` and fdatasyncs them. Every frame is written, also where the
/// file already reads the same: after a failed fdatasync (a checkpoint's, in this process or
/// in one that died without a reboot) the page cache may hold bytes that never reached the
/// disk and compare equal, and an fdatasync of pages not written again would call them
/// durable; writing them again makes the fdatasync cover them. The comparison only counts
/// the bytes that were missing or differed ([`WalRecovery::restored_bytes`]). A frame for a
/// missing segment, or one that would leave a hole, is an error naming the write-ahead file
/// and the frame's offset.
fn replay(
    dir: &Path,
    path: &Path,
    limit: Option<u64>,
    last: bool,
    report: &mut WalRecovery,
) -> Result<(), StreamStoreError> {
    let Frames {
        bytes: b,
        frames,
        torn,
    } = read_frames(path, limit, last)?;
    let mut touched: BTreeSet<PathBuf> = BTreeSet::new();
    for f in &frames {
        let corrupt = |reason: String| StreamStoreError::Corrupt {
            file: path.to_path_buf(),
            offset: f.at,
            reason,
        };
        let seg = dir
            .join("streams")
            .join(stream_dir_name(f.stream))
            .join(segment::segment_file_name(f.segment));
        let file = match OpenOptions::new().read(true).write(true).open(&seg) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(corrupt(format!(
                    "frame for {}, which does not exist",
                    seg.display()
                )));
            }
            Err(e) => return Err(io_err("open", &seg)(e)),
        };
        let on_disk = file.metadata().map_err(io_err("stat", &seg))?.len();
        if f.offset > on_disk {
            return Err(corrupt(format!(
                "frame for {} at offset {}, but the file holds {on_disk} bytes: a hole",
                seg.display(),
                f.offset
            )));
        }
        let bytes = &b[f.bytes.clone()];
        let mut held = vec![0u8; bytes.len().min((on_disk - f.offset) as usize)];
        file.read_exact_at(&mut held, f.offset)
            .map_err(io_err("read", &seg))?;
        let same = held.iter().zip(bytes).filter(|(a, b)| a == b).count();
        report.restored_bytes += (bytes.len() - same) as u64;
        file.write_all_at(bytes, f.offset)
            .map_err(io_err("write", &seg))?;
        touched.insert(seg);
        report.frames += 1;
    }
    for seg in &touched {
        File::open(seg)
            .and_then(|f| f.sync_data())
            .map_err(io_err("fdatasync", seg))?;
    }
    if let Some((offset, reason)) = torn {
        tracing::warn!(
            file = %path.display(),
            offset,
            reason = %reason,
            "write-ahead file: torn tail ignored (never acknowledged)"
        );
        report.torn = Some((path.to_path_buf(), offset, reason));
    }
    Ok(())
}

/// One intact frame of a write-ahead file: where its bytes belong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WalFrame {
    pub stream: StreamId,
    /// Segment number.
    pub segment: u64,
    /// Offset of the bytes in the segment.
    pub offset: u64,
    /// Their length.
    pub len: u64,
}

/// The intact frames of the write-ahead file `path`, in order, up to a torn tail (for tools
/// and tests: the crash test cuts each segment back to its first frame, a power loss).
pub fn wal_frames(path: &Path) -> Result<Vec<WalFrame>, StreamStoreError> {
    Ok(read_frames(path, None, true)?
        .frames
        .iter()
        .map(|f| WalFrame {
            stream: f.stream,
            segment: f.segment,
            offset: f.offset,
            len: f.bytes.len() as u64,
        })
        .collect())
}

impl Store {
    /// At open, before the segments are read: replays every write-ahead file in order, then
    /// removes them. Returns what was replayed and the number of the next file.
    pub(super) fn recover_wal(dir: &Path) -> Result<(WalRecovery, u64), StreamStoreError> {
        let wal_dir = dir.join(WAL_DIR);
        let mut numbers = Vec::new();
        for e in std::fs::read_dir(&wal_dir).map_err(io_err("list", &wal_dir))? {
            let e = e.map_err(io_err("list", &wal_dir))?;
            match parse_wal_file_name(&e.file_name().to_string_lossy()) {
                Some(n) => numbers.push(n),
                None => {
                    tracing::warn!(path = %e.path().display(), "not a write-ahead file; ignored");
                }
            }
        }
        numbers.sort_unstable();
        let mut report = WalRecovery::default();
        for (i, n) in numbers.iter().enumerate() {
            let path = wal_dir.join(wal_file_name(*n));
            replay(dir, &path, None, i + 1 == numbers.len(), &mut report)?;
            report.files += 1;
        }
        for n in &numbers {
            let path = wal_dir.join(wal_file_name(*n));
            std::fs::remove_file(&path).map_err(io_err("remove", &path))?;
        }
        if !numbers.is_empty() {
            redovault::durable::sync_dir(&wal_dir).map_err(io_err("fsync directory", &wal_dir))?;
            tracing::info!(
                files = report.files,
                frames = report.frames,
                restored_bytes = report.restored_bytes,
                "write-ahead files replayed into the segments and removed"
            );
        }
        Ok((report, numbers.last().map_or(1, |n| n.saturating_add(1))))
    }

    /// Makes the unsynced bytes of `ids`' writers durable with one write-ahead frame each
    /// and one fdatasync of the write-ahead file (created first if there is none).
    pub(super) fn wal_sync(&mut self, ids: &[StreamId]) -> Result<(), WriteError> {
        if self.wal.is_none() {
            let wal_dir = self.dir.join(WAL_DIR);
            let path = wal_dir.join(wal_file_name(self.wal_next));
            let io = |op, p: &Path| {
                let path = p.to_path_buf();
                move |source| WriteError::Io { op, path, source }
            };
            let file = self.fs.create_new(&path).map_err(io("create", &path))?;
            self.fs
                .sync_dir(&wal_dir)
                .map_err(io("fsync directory", &wal_dir))?;
            self.wal_next = self.wal_next.saturating_add(1);
            self.wal = Some(Wal {
                path,
                file,
                len: 0,
                synced_len: 0,
            });
        }
        let Some(wal) = self.wal.as_mut() else {
            return Ok(());
        };
        let mut frames = Vec::new();
        for id in ids {
            if let Some(w) = self.streams.get(id).and_then(|s| s.writer.as_ref()) {
                let (offset, bytes) = w.unsynced();
                if !bytes.is_empty() {
                    encode_frame(&mut frames, *id, w.number(), offset, bytes, wal.synced_len);
                }
            }
        }
        let err = |op, source| WriteError::Io {
            op,
            path: wal.path.clone(),
            source,
        };
        wal.file.write_all(&frames).map_err(|e| err("write", e))?;
        wal.len += frames.len() as u64;
        wal.file.sync_data().map_err(|e| err("fdatasync", e))?;
        wal.synced_len = wal.len;
        self.wal_bytes += frames.len() as u64;
        for id in ids {
            if let Some(w) = self.streams.get_mut(id).and_then(|s| s.writer.as_mut()) {
                w.synced_elsewhere();
            }
        }
        Ok(())
    }

    /// True when the write-ahead file has grown past [`WAL_CHECKPOINT_SIZE`].
    pub(super) fn wal_full(&self) -> bool {
        self.wal.as_ref().is_some_and(|w| w.len >= self.wal_limit)
    }

    /// Checkpoint: fdatasyncs every segment holding bytes durable only in the write-ahead
    /// file (all at once, see `sync_all`), then removes the write-ahead file and fsyncs its
    /// directory; the next multi-stream sync starts a new one.
    pub(super) fn checkpoint(&mut self) -> Result<(), WriteError> {
        let Some(wal) = self.wal.as_ref() else {
            return Ok(());
        };
        let path = wal.path.clone();
        let writers: Vec<&mut SegmentWriter> = self
            .streams
            .values_mut()
            .filter_map(|s| s.writer.as_mut())
            .filter(|w| w.needs_checkpoint())
            .collect();
        sync_all(writers)?;
        for s in self.streams.values_mut() {
            if let Some(w) = s.writer.as_ref()
                && let Some(info) = s.segments.last_mut()
            {
                info.durable_len = w.synced_len();
            }
        }
        self.wal = None;
        std::fs::remove_file(&path).map_err(|source| WriteError::Io {
            op: "remove",
            path: path.clone(),
            source,
        })?;
        let wal_dir = self.dir.join(WAL_DIR);
        self.fs
            .sync_dir(&wal_dir)
            .map_err(|source| WriteError::Io {
                op: "fsync directory",
                path: wal_dir,
                source,
            })?;
        self.wal_checkpoints += 1;
        Ok(())
    }

    /// After a full disk, with the segments cut back to their durable length: writes the
    /// synced frames of the write-ahead file back into the segments (see `replay`: a failed
    /// fsync may have left the page cache holding bytes the disk lacks), fdatasyncs them and
    /// removes the file, so that its unsynced tail can never be replayed later.
    pub(super) fn wal_reset(&mut self) -> Result<(), StreamStoreError> {
        let Some(wal) = self.wal.take() else {
            return Ok(());
        };
        let mut report = WalRecovery::default();
        replay(
            &self.dir,
            &wal.path,
            Some(wal.synced_len),
            true,
            &mut report,
        )?;
        drop(wal.file);
        std::fs::remove_file(&wal.path).map_err(io_err("remove", &wal.path))?;
        let wal_dir = self.dir.join(WAL_DIR);
        redovault::durable::sync_dir(&wal_dir).map_err(io_err("fsync directory", &wal_dir))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sid() -> StreamId {
        StreamId {
            db_id: DbId(7),
            resetlogs_id: ResetlogsId(9),
            thread: ThreadId(2),
        }
    }

    #[test]
    fn frames_round_trip_and_a_torn_one_is_named() {
        let mut b = Vec::new();
        encode_frame(&mut b, sid(), 3, 100, b"abc", 0);
        let first = b.len();
        encode_frame(&mut b, sid(), 4, 200, b"defgh", 0);
        let (f, synced, next) = decode_frame(&b, 0).unwrap();
        assert_eq!(
            (f.stream, f.segment, f.offset, synced, next),
            (sid(), 3, 100, 0, first)
        );
        assert_eq!(&b[f.bytes], b"abc");
        let (f, _, next) = decode_frame(&b, first).unwrap();
        assert_eq!((f.segment, f.offset, next), (4, 200, b.len()));
        assert!(
            decode_frame(&b[..b.len() - 1], first)
                .unwrap_err()
                .contains("incomplete")
        );
        let mut bad = b.clone();
        bad[first + FRAME_HEADER_LEN] ^= 1;
        assert!(decode_frame(&bad, first).unwrap_err().contains("checksum"));
        assert_eq!(parse_wal_file_name(&wal_file_name(42)), Some(42));
        assert_eq!(parse_wal_file_name("wal-1"), None);
    }
}
