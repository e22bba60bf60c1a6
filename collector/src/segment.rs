//! Segment files: a stream's redo on disk, sealed chunk by chunk.
//!
//! ```text
//! <stream dir>/seg-<number, 20 digits>.rvs     numbered from 1 in write order
//! segment header      versioned, authenticated (see redovault::crypto::envelope): magic,
//!                     format version, algorithm, nonce scheme, key id, nonce prefix, stream,
//!                     segment number; written and fsynced (with the directory) at creation
//! record 0, 1, 2...   one sealed chunk each:
//!   0   4  magic "RVCK"
//!   4   4  chunk index (u32 LE): 0, 1, 2... in file order; also the GCM nonce counter
//!   8   4  durable count (u32 LE): how many chunks of this segment were known durable
//!          (fdatasync returned) when this one was written
//!   12  4  plaintext length n (u32 LE)
//!   16  n  ciphertext (AES-256-GCM), AAD = stream, segment, index, n, bytes 0..16
//!   16+n 16 tag
//! chunk plaintext (never on disk unsealed):
//!   0   1  version (1 or 2)       1  1  flags: bit 0 = log end (the sequence is complete),
//!                                            bit 1 = zstd (version 2 only)
//!   2   2  reserved (0)           4  4  sequence          8  8  offset of the first byte
//!   16  4  redo length            20 4  commit count c
//!   24  40·c commits: usn u16, slot u16, sqn u32, scn u64, has time u8, 3 reserved,
//!            end sequence u32, time i64, end offset u64
//!   ..  redo bytes; with the zstd flag, one zstd frame that decompresses to exactly
//!       `redo length` bytes (at most MAX_CHUNK_DATA)
//! ```
//!
//! Invariants:
//! - A segment is created once (create-only), appended to only by the process that created
//!   it, closed at the rotation size, never rewritten; the one exception is recovery cutting
//!   a torn tail (never acknowledged) off a stream's last segment. Segments other than the
//!   last are fsynced before the next is created, so any damage in them is corruption.
//! - Every record authenticates on its own: any chunk can be checked (and read) given its
//!   offset, without the rest of the segment.
//! - Redo length, positions and commit marks always count the original redo bytes. Version 2
//!   (issue 19) is version 1 plus the zstd flag, written only when the store's `compress`
//!   asks and the chunk shrinks; a raw chunk is version 1, byte for byte what older
//!   collectors wrote and read.
//! - Torn tail or corruption: a crash can leave the last records incomplete, or (page
//!   write-back out of order) a damaged record followed by intact ones; neither was
//!   acknowledged, since Acks follow the `fdatasync` of the segment or of the write-ahead
//!   file holding a copy (`store/wal.rs`, replayed into the segments before the scan, so
//!   either counts as durable). If any intact later record's durable count says the damaged
//!   one was already durable, it is corruption ([`ScanError::Corrupt`]), which stops
//!   recovery; otherwise a torn tail, cut off and reported.
//!
//! The limit: damage to the last synced batch itself (nothing written after it) looks like a
//! torn tail; it is reported, never silent.

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};

use redovault::compress::{self, DecompressError, Level};
use redovault::crypto::envelope::{
    EnvelopeError, HEADER_FIXED_LEN, MAX_HEADER_LEN, Opener, Sealer, TAG_LEN,
};
use redovault::crypto::keys::KeyRing;
use redovault::crypto::keys::MAX_KEY_ID_LEN;
use redovault::wire::{CommitMark, StreamId, StreamPos};
use redovault_redo::position::{LogSeq, Scn, Xid};

use crate::fs::{Fs, SegmentFile};

/// Magic at the start of every record.
pub const RECORD_MAGIC: [u8; 4] = *b"RVCK";
/// Length of the cleartext record header.
pub const RECORD_HEADER_LEN: usize = 16;
/// Bytes a record adds to its plaintext: header and tag.
pub const RECORD_OVERHEAD: usize = RECORD_HEADER_LEN + TAG_LEN;
/// Chunk plaintext format version of raw chunks (as every chunk before issue 19).
pub const CHUNK_VERSION: u8 = 1;
/// Chunk plaintext format version that may carry the zstd flag.
pub const CHUNK_VERSION_ZSTD: u8 = 2;
/// Fixed part of a chunk plaintext.
pub const CHUNK_FIXED_LEN: usize = 24;
/// Encoded length of one commit mark.
pub const COMMIT_LEN: usize = 40;
/// Most redo bytes in one chunk (longer appends are split by the store).
pub const MAX_CHUNK_DATA: usize = 4 << 20;
/// Most commits in one chunk: a commit record takes well over 16 bytes, so 64 Ki commits
/// cannot end inside 1 MiB of redo; larger counts are garbage.
pub const MAX_CHUNK_COMMITS: usize = 1 << 16;
/// Longest chunk plaintext a reader accepts; a longer declared length is damage.
pub const MAX_PLAINTEXT: usize = CHUNK_FIXED_LEN + MAX_CHUNK_COMMITS * COMMIT_LEN + MAX_CHUNK_DATA;

const FLAG_LOG_END: u8 = 1;
const FLAG_ZSTD: u8 = 2;

/// File name of segment `n`.
pub fn segment_file_name(n: u64) -> String {
    format!("seg-{n:020}.rvs")
}

/// The number of a segment file name, if it is one.
pub fn parse_segment_file_name(name: &str) -> Option<u64> {
    let digits = name.strip_prefix("seg-")?.strip_suffix(".rvs")?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// One chunk: a run of a stream's redo, the commits that end in it, and whether the log
/// (sequence) ends with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredChunk {
    /// Where the redo bytes start.
    pub start: StreamPos,
    /// Redo bytes, exactly as the source log holds them.
    pub data: Vec<u8>,
    /// Commits whose `end` lies in `(start, end]`, in stream order.
    pub commits: Vec<CommitMark>,
    /// The sequence is complete after this chunk: the next chunk starts at `(seq + 1, 0)`.
    pub log_end: bool,
}

/// Why a chunk is not well formed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChunkError {
    /// More redo than a chunk may hold.
    #[error("chunk of {0} redo bytes is longer than {MAX_CHUNK_DATA}")]
    TooLong(usize),
    /// More commits than a chunk may hold.
    #[error("{0} commits in one chunk (at most {MAX_CHUNK_COMMITS})")]
    TooManyCommits(usize),
    /// A commit mark outside the chunk's range, or out of order.
    #[error("commit {xid} ends at {end}, outside {start}..={chunk_end} or before the previous one")]
    CommitOutside {
        /// The commit.
        xid: Xid,
        end: StreamPos,
        /// Chunk start.
        start: StreamPos,
        chunk_end: StreamPos,
    },
    /// The offset range overflows.
    #[error("chunk at {0} overflows the offset range")]
    Overflow(StreamPos),
    /// A plaintext that does not decode.
    #[error("chunk plaintext malformed: {0}")]
    Malformed(&'static str),
    /// A compressed chunk whose redo does not decompress to its declared length.
    #[error("chunk redo: {0}")]
    Decompress(DecompressError),
}

impl StoredChunk {
    /// The position just after the chunk's redo.
    pub fn end(&self) -> StreamPos {
        StreamPos {
            seq: self.start.seq,
            offset: self.start.offset.saturating_add(self.data.len() as u64),
        }
    }

    /// Where the next chunk of the stream starts: [`StoredChunk::end`], or `(seq + 1, 0)` after a
    /// log end.
    pub fn next_start(&self) -> StreamPos {
        self.start.after(self.data.len() as u64, self.log_end)
    }

    /// Checks size limits, the offset range and that every commit ends in `(start, end]`,
    /// in order.
    pub fn check(&self) -> Result<(), ChunkError> {
        if self.data.len() > MAX_CHUNK_DATA {
            return Err(ChunkError::TooLong(self.data.len()));
        }
        if self.commits.len() > MAX_CHUNK_COMMITS {
            return Err(ChunkError::TooManyCommits(self.commits.len()));
        }
        if self
            .start
            .offset
            .checked_add(self.data.len() as u64)
            .is_none()
        {
            return Err(ChunkError::Overflow(self.start));
        }
        let end = self.end();
        let mut prev = self.start;
        for c in &self.commits {
            if c.end.seq != self.start.seq || c.end <= self.start || c.end > end || c.end < prev {
                return Err(ChunkError::CommitOutside {
                    xid: c.xid,
                    end: c.end,
                    start: self.start,
                    chunk_end: end,
                });
            }
            prev = c.end;
        }
        Ok(())
    }

    /// Length of the encoded plaintext.
    pub fn encoded_len(&self) -> usize {
        CHUNK_FIXED_LEN + self.commits.len() * COMMIT_LEN + self.data.len()
    }

    /// Encodes the plaintext (after [`StoredChunk::check`]), raw (version 1).
    pub fn encode(&self) -> Result<Vec<u8>, ChunkError> {
        self.encode_with(None)
    }

    /// Encodes the plaintext (after [`StoredChunk::check`]), its redo compressed at `compress`
    /// when that shrinks it (version 2), else raw (version 1).
    pub fn encode_with(&self, compress: Option<Level>) -> Result<Vec<u8>, ChunkError> {
        self.check()?;
        let mut b = Vec::with_capacity(self.encoded_len());
        self.encode_into(&mut b, compress);
        Ok(b)
    }

    /// Appends the encoding to `b`; the chunk must have passed [`StoredChunk::check`] (lengths
    /// fit their fields). Returns the length appended.
    fn encode_into(&self, b: &mut Vec<u8>, compress: Option<Level>) -> usize {
        let start = b.len();
        let packed = compress.and_then(|level| compress::compress(&self.data, level));
        let (version, zstd) = match packed {
            Some(_) => (CHUNK_VERSION_ZSTD, FLAG_ZSTD),
            None => (CHUNK_VERSION, 0),
        };
        b.push(version);
        b.push(if self.log_end { FLAG_LOG_END } else { 0 } | zstd);
        b.extend_from_slice(&[0, 0]);
        b.extend_from_slice(&self.start.seq.0.to_le_bytes());
        b.extend_from_slice(&self.start.offset.to_le_bytes());
        b.extend_from_slice(&(self.data.len() as u32).to_le_bytes());
        b.extend_from_slice(&(self.commits.len() as u32).to_le_bytes());
        for c in &self.commits {
            b.extend_from_slice(&c.xid.usn.to_le_bytes());
            b.extend_from_slice(&c.xid.slot.to_le_bytes());
            b.extend_from_slice(&c.xid.sqn.to_le_bytes());
            b.extend_from_slice(&c.scn.0.to_le_bytes());
            b.push(u8::from(c.time.is_some()));
            b.extend_from_slice(&[0, 0, 0]);
            b.extend_from_slice(&c.end.seq.0.to_le_bytes());
            b.extend_from_slice(&c.time.unwrap_or(0).to_le_bytes());
            b.extend_from_slice(&c.end.offset.to_le_bytes());
        }
        b.extend_from_slice(packed.as_deref().unwrap_or(&self.data));
        b.len() - start
    }

    /// Decodes and checks a plaintext.
    pub fn decode(b: &[u8]) -> Result<StoredChunk, ChunkError> {
        let mut r = Reader { b, at: 0 };
        let known = match r.u8()? {
            CHUNK_VERSION => FLAG_LOG_END,
            CHUNK_VERSION_ZSTD => FLAG_LOG_END | FLAG_ZSTD,
            _ => return Err(ChunkError::Malformed("unknown chunk version")),
        };
        let flags = r.u8()?;
        if flags & !known != 0 || r.u16()? != 0 {
            return Err(ChunkError::Malformed("unknown flags or reserved bits set"));
        }
        let zstd = flags & FLAG_ZSTD != 0;
        let start = StreamPos {
            seq: LogSeq(r.u32()?),
            offset: r.u64()?,
        };
        let data_len = r.u32()? as usize;
        let ncommits = r.u32()? as usize;
        if data_len > MAX_CHUNK_DATA {
            return Err(ChunkError::TooLong(data_len));
        }
        if ncommits > MAX_CHUNK_COMMITS {
            return Err(ChunkError::TooManyCommits(ncommits));
        }
        let before_data = CHUNK_FIXED_LEN + ncommits * COMMIT_LEN;
        let adds_up = if zstd {
            // A frame shorter than the redo it holds (the writer keeps it raw otherwise).
            b.len() > before_data && b.len() - before_data < data_len
        } else {
            b.len() == before_data + data_len
        };
        if !adds_up {
            return Err(ChunkError::Malformed("lengths do not add up"));
        }
        let mut commits = Vec::with_capacity(ncommits);
        for _ in 0..ncommits {
            let xid = Xid {
                usn: r.u16()?,
                slot: r.u16()?,
                sqn: r.u32()?,
            };
            let scn = Scn(r.u64()?);
            let has_time = r.u8()?;
            let reserved = [r.u8()?, r.u8()?, r.u8()?];
            if has_time > 1 || reserved != [0, 0, 0] {
                return Err(ChunkError::Malformed("bad commit time flag"));
            }
            let end_seq = LogSeq(r.u32()?);
            let time = r.u64()? as i64;
            let end_offset = r.u64()?;
            commits.push(CommitMark {
                xid,
                scn,
                time: (has_time == 1).then_some(time),
                end: StreamPos {
                    seq: end_seq,
                    offset: end_offset,
                },
            });
        }
        let data = if zstd {
            compress::decompress(r.rest(), data_len, MAX_CHUNK_DATA)
                .map_err(ChunkError::Decompress)?
        } else {
            r.rest().to_vec()
        };
        let chunk = StoredChunk {
            start,
            data,
            commits,
            log_end: flags & FLAG_LOG_END != 0,
        };
        chunk.check()?;
        Ok(chunk)
    }
}

struct Reader<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take<const N: usize>(&mut self) -> Result<[u8; N], ChunkError> {
        let s = self
            .b
            .get(self.at..self.at + N)
            .ok_or(ChunkError::Malformed("truncated"))?;
        self.at += N;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }
    fn u8(&mut self) -> Result<u8, ChunkError> {
        Ok(self.take::<1>()?[0])
    }
    fn u16(&mut self) -> Result<u16, ChunkError> {
        Ok(u16::from_le_bytes(self.take()?))
    }
    fn u32(&mut self) -> Result<u32, ChunkError> {
        Ok(u32::from_le_bytes(self.take()?))
    }
    fn u64(&mut self) -> Result<u64, ChunkError> {
        Ok(u64::from_le_bytes(self.take()?))
    }
    fn rest(&self) -> &'a [u8] {
        self.b.get(self.at..).unwrap_or(&[])
    }
}

/// Why a segment could not be written.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// A file operation failed.
    #[error("{op} {}: {source}", path.display())]
    Io {
        /// What was being done.
        op: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    /// Sealing failed (OS randomness, a full segment).
    #[error("seal {}: {source}", path.display())]
    Seal {
        path: PathBuf,
        source: EnvelopeError,
    },
    /// The chunk is not well formed.
    #[error(transparent)]
    StoredChunk(#[from] ChunkError),
}

/// The segment being written: created by this process, appended to, fsynced on demand.
#[derive(Debug)]
pub struct SegmentWriter {
    path: PathBuf,
    number: u64,
    file: Box<dyn SegmentFile>,
    sealer: Sealer,
    len: u64,
    /// Bytes durable: fdatasynced here, or copied into a synced write-ahead frame.
    synced_len: u64,
    /// Bytes durable in this file itself (fdatasynced).
    fsynced_len: u64,
    durable_count: u32,
    /// The records written since `synced_len`, byte for byte (what a write-ahead frame
    /// carries).
    unsynced: Vec<u8>,
    compress: Option<Level>,
}

impl SegmentWriter {
    /// Creates segment `number` of `stream` in `dir` (create-only), writes its header, and
    /// makes file and directory entry durable before returning.
    pub fn create(
        fs: &dyn Fs,
        dir: &Path,
        keys: &KeyRing,
        stream: StreamId,
        number: u64,
        created_unix: i64,
    ) -> Result<SegmentWriter, WriteError> {
        let path = dir.join(segment_file_name(number));
        let sealer =
            Sealer::new(keys, stream, number, created_unix).map_err(|source| WriteError::Seal {
                path: path.clone(),
                source,
            })?;
        let io = |op, path: &Path| {
            let path = path.to_path_buf();
            move |source| WriteError::Io { op, path, source }
        };
        let mut file = fs.create_new(&path).map_err(io("create", &path))?;
        let header = sealer.header_bytes();
        file.write_all(header).map_err(io("write", &path))?;
        file.sync_data().map_err(io("fdatasync", &path))?;
        fs.sync_dir(dir).map_err(io("fsync directory", dir))?;
        let len = header.len() as u64;
        Ok(SegmentWriter {
            path,
            number,
            file,
            sealer,
            len,
            synced_len: len,
            fsynced_len: len,
            durable_count: 0,
            unsynced: Vec::new(),
            compress: None,
        })
    }

    /// Compresses the redo of the chunks appended from now on at `level` (each chunk that
    /// shrinks is written as version 2); `None`: raw, version 1.
    pub fn with_compression(mut self, level: Option<Level>) -> SegmentWriter {
        self.compress = level;
        self
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Segment number.
    pub fn number(&self) -> u64 {
        self.number
    }

    /// Bytes written (header included).
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Bytes known durable (fdatasynced, or in a synced write-ahead frame).
    pub fn synced_len(&self) -> u64 {
        self.synced_len
    }

    /// The bytes written and not yet durable, and the file offset they start at.
    pub fn unsynced(&self) -> (u64, &[u8]) {
        (self.synced_len, &self.unsynced)
    }

    /// True when some durable bytes are durable only through the write-ahead file: the
    /// segment must be fdatasynced before that file is removed.
    pub fn needs_checkpoint(&self) -> bool {
        self.fsynced_len != self.synced_len
    }

    /// Records that the bytes returned by [`SegmentWriter::unsynced`] are now durable in a
    /// synced write-ahead frame: the next records carry them in their durable count.
    pub fn synced_elsewhere(&mut self) {
        self.synced_len = self.len;
        self.durable_count = self.sealer.next_index();
        self.unsynced.clear();
    }

    /// True when nothing but the header was written.
    pub fn is_empty(&self) -> bool {
        self.sealer.next_index() == 0
    }

    /// True when bytes were written since the last sync.
    pub fn is_dirty(&self) -> bool {
        self.len != self.synced_len
    }

    /// Chunks written.
    pub fn chunks(&self) -> u32 {
        self.sealer.next_index()
    }

    /// Bytes a chunk takes on disk at most (raw; compressed it takes less).
    pub fn record_len(chunk: &StoredChunk) -> u64 {
        (chunk.encoded_len() + RECORD_OVERHEAD) as u64
    }

    /// Seals `chunk` as the next record and writes it (not yet durable). Returns the
    /// record's file offset.
    pub fn append(&mut self, chunk: &StoredChunk) -> Result<u64, WriteError> {
        chunk.check()?;
        let index = self.sealer.next_index();
        let mut rec = Vec::with_capacity(chunk.encoded_len() + RECORD_OVERHEAD);
        rec.extend_from_slice(&RECORD_MAGIC);
        rec.extend_from_slice(&index.to_le_bytes());
        rec.extend_from_slice(&self.durable_count.to_le_bytes());
        rec.extend_from_slice(&[0; 4]);
        let plain_len = chunk.encode_into(&mut rec, self.compress);
        // check() bounds the plaintext far below u32::MAX.
        rec[12..16].copy_from_slice(&(plain_len as u32).to_le_bytes());
        let (head, body) = rec.split_at_mut(RECORD_HEADER_LEN);
        let tag = self
            .sealer
            .seal(index, head, body)
            .map_err(|source| WriteError::Seal {
                path: self.path.clone(),
                source,
            })?;
        rec.extend_from_slice(&tag);
        let offset = self.len;
        self.file.write_all(&rec).map_err(|source| WriteError::Io {
            op: "write",
            path: self.path.clone(),
            source,
        })?;
        self.len += rec.len() as u64;
        self.unsynced.extend_from_slice(&rec);
        Ok(offset)
    }

    /// `fdatasync`: every record written so far is durable in this file when this returns
    /// `Ok` (nothing to do when it already is).
    pub fn sync(&mut self) -> Result<(), WriteError> {
        if self.fsynced_len == self.len {
            return Ok(());
        }
        self.file.sync_data().map_err(|source| WriteError::Io {
            op: "fdatasync",
            path: self.path.clone(),
            source,
        })?;
        self.fsynced_len = self.len;
        self.synced_elsewhere();
        Ok(())
    }
}

/// Why a segment could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    /// Reading failed.
    #[error("read {}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    /// Damage that is not a torn tail: a stored chunk is lost or altered.
    #[error("segment {} corrupt at offset {offset}: {reason}", path.display())]
    Corrupt {
        path: PathBuf,
        /// Byte offset of the damaged header or record.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// The header names a key the key ring lacks, or an unsupported format.
    #[error("segment {}: {source}", path.display())]
    Unreadable {
        path: PathBuf,
        source: EnvelopeError,
    },
}

/// How a scan treats damage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScanMode {
    /// Any damage is [`ScanError::Corrupt`].
    Strict,
    /// The last segment of a stream: damage that is provably unacknowledged is reported as
    /// a torn tail instead.
    LastSegment,
}

/// A torn tail found by a [`ScanMode::LastSegment`] scan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Torn {
    /// Offset of the first damaged byte: the file should be cut here.
    pub offset: u64,
    /// Why the record there is damaged.
    pub reason: String,
    /// The file is shorter than a complete header: it never held a chunk.
    pub header: bool,
}

/// What a scan found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scanned {
    /// Segment number from the header (`None` if the header itself is torn).
    pub header: Option<redovault::crypto::envelope::SegmentHeader>,
    /// Chunks read and authenticated.
    pub chunks: u32,
    /// End of the last good record (the header's end if there is none).
    pub good_len: u64,
    /// File length (or the scan limit).
    pub len: u64,
    /// A torn tail (only in [`ScanMode::LastSegment`]).
    pub torn: Option<Torn>,
}

/// Reads the segment at `path` up to `limit` bytes (or its whole length), authenticating
/// every record and calling `visit(offset, chunk)` for each in order. `visit` may stop the
/// scan with an error of its own.
pub fn scan<E>(
    path: &Path,
    keys: &KeyRing,
    mode: ScanMode,
    limit: Option<u64>,
    mut visit: impl FnMut(u64, StoredChunk) -> Result<(), E>,
) -> Result<Scanned, E>
where
    E: From<ScanError>,
{
    let io = |source| ScanError::Io {
        path: path.to_path_buf(),
        source,
    };
    let corrupt = |offset: u64, reason: String| ScanError::Corrupt {
        path: path.to_path_buf(),
        offset,
        reason,
    };
    let file = File::open(path).map_err(io)?;
    let file_len = file.metadata().map_err(io)?.len();
    let len = limit.map_or(file_len, |l| l.min(file_len));
    let mut r = BufReader::with_capacity(1 << 20, file.take(len));
    let mut head = vec![0u8; MAX_HEADER_LEN.min(len as usize)];
    r.read_exact(&mut head).map_err(io)?;
    let opener = match Opener::new(keys, &head) {
        Ok(o) => o,
        Err(EnvelopeError::UnknownKey(k)) => {
            return Err(ScanError::Unreadable {
                path: path.to_path_buf(),
                source: EnvelopeError::UnknownKey(k),
            }
            .into());
        }
        Err(e) => {
            // The header is written and fsynced before any record: a file shorter than the
            // header it starts is a creation cut short, never data.
            let declared = head
                .get(14)
                .filter(|&&n| usize::from(n) <= MAX_KEY_ID_LEN)
                .map(|&n| (HEADER_FIXED_LEN + usize::from(n) + TAG_LEN) as u64);
            let short = len < HEADER_FIXED_LEN as u64 || declared.is_some_and(|d| len < d);
            if mode == ScanMode::LastSegment && short {
                return Ok(Scanned {
                    header: None,
                    chunks: 0,
                    good_len: 0,
                    len,
                    torn: Some(Torn {
                        offset: 0,
                        reason: format!("incomplete segment header: {e}"),
                        header: true,
                    }),
                });
            }
            return Err(corrupt(0, format!("segment header: {e}")).into());
        }
    };
    let header_len = opener.header_len() as u64;
    // Give back the bytes read past the header.
    let mut pending: Vec<u8> = head.split_off(opener.header_len());
    let mut offset = header_len;
    let mut index: u32 = 0;
    let mut damage: Option<(u64, String)> = None;
    while offset < len {
        let mut rec_head = [0u8; RECORD_HEADER_LEN];
        if len - offset < RECORD_HEADER_LEN as u64 {
            damage = Some((offset, "incomplete record header".into()));
            break;
        }
        fill(&mut pending, &mut r, &mut rec_head).map_err(io)?;
        let h = match RecordHeader::parse(&rec_head, index) {
            Ok(h) => h,
            Err(why) => {
                damage = Some((offset, why));
                break;
            }
        };
        let rec_len = (h.plain_len + RECORD_OVERHEAD) as u64;
        if len - offset < rec_len {
            damage = Some((
                offset,
                format!(
                    "incomplete record: {rec_len} bytes declared, {} left",
                    len - offset
                ),
            ));
            break;
        }
        let mut body = vec![0u8; h.plain_len + TAG_LEN];
        fill(&mut pending, &mut r, &mut body).map_err(io)?;
        let Some(plain) = open_record(&opener, &rec_head, h.index, body) else {
            damage = Some((offset, format!("chunk {index} failed authentication")));
            break;
        };
        let chunk = StoredChunk::decode(&plain)
            .map_err(|e| corrupt(offset, format!("authenticated chunk {index}: {e}")))?;
        visit(offset, chunk)?;
        offset += rec_len;
        index = index.saturating_add(1);
    }
    let mut scanned = Scanned {
        header: Some(opener.header().clone()),
        chunks: index,
        good_len: offset,
        len,
        torn: None,
    };
    let Some((at, reason)) = damage else {
        return Ok(scanned);
    };
    if mode == ScanMode::Strict {
        return Err(corrupt(at, reason).into());
    }
    // Is any intact record after the damage proof that the damaged one was durable?
    drop(r);
    let rest = read_range(path, at, len).map_err(io)?;
    if let Some((later_at, later)) = durable_witness(&opener, &rest, index) {
        return Err(corrupt(
            at,
            format!(
                "{reason}; chunk {later} at offset {} was written after it had been made \
                 durable, so this is damage to acknowledged data, not a torn write",
                at + later_at as u64
            ),
        )
        .into());
    }
    scanned.torn = Some(Torn {
        offset: at,
        reason,
        header: false,
    });
    Ok(scanned)
}

/// Reads a segment's records one at a time from the start, as they are written: for a
/// reader that follows a live stream behind its durable end (the WORM uploader), without
/// decrypting the segment again from the start for every piece. The caller asks only for
/// records it knows are durable; any damage is therefore corruption, never a torn tail.
pub struct RecordReader {
    path: PathBuf,
    file: File,
    opener: Opener,
    offset: u64,
    index: u32,
}

impl std::fmt::Debug for RecordReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordReader")
            .field("path", &self.path)
            .field("offset", &self.offset)
            .field("index", &self.index)
            .finish()
    }
}

impl RecordReader {
    /// Opens a segment and authenticates its header.
    pub fn open(path: &Path, keys: &KeyRing) -> Result<RecordReader, ScanError> {
        use std::os::unix::fs::FileExt as _;
        let io = |source| ScanError::Io {
            path: path.to_path_buf(),
            source,
        };
        let file = File::open(path).map_err(io)?;
        let len = file.metadata().map_err(io)?.len();
        let mut head = vec![0u8; MAX_HEADER_LEN.min(len as usize)];
        file.read_exact_at(&mut head, 0).map_err(io)?;
        let opener = Opener::new(keys, &head).map_err(|source| match source {
            EnvelopeError::UnknownKey(_) => ScanError::Unreadable {
                path: path.to_path_buf(),
                source,
            },
            e => ScanError::Corrupt {
                path: path.to_path_buf(),
                offset: 0,
                reason: format!("segment header: {e}"),
            },
        })?;
        Ok(RecordReader {
            path: path.to_path_buf(),
            offset: opener.header_len() as u64,
            file,
            opener,
            index: 0,
        })
    }

    /// The segment file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The next record's chunk, or `None` when the file ends before its header (nothing more
    /// written yet, or the segment is complete).
    pub fn next_chunk(&mut self) -> Result<Option<StoredChunk>, ScanError> {
        use std::os::unix::fs::FileExt as _;
        let corrupt = |offset: u64, reason: String| ScanError::Corrupt {
            path: self.path.clone(),
            offset,
            reason,
        };
        let io = |source| ScanError::Io {
            path: self.path.clone(),
            source,
        };
        let mut rec_head = [0u8; RECORD_HEADER_LEN];
        match self.file.read_exact_at(&mut rec_head, self.offset) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
            Err(e) => return Err(io(e)),
        }
        let h = RecordHeader::parse(&rec_head, self.index).map_err(|r| corrupt(self.offset, r))?;
        let mut body = vec![0u8; h.plain_len + TAG_LEN];
        self.file
            .read_exact_at(&mut body, self.offset + RECORD_HEADER_LEN as u64)
            .map_err(|e| {
                corrupt(
                    self.offset,
                    format!("record {} cut short ({e}) although durable", self.index),
                )
            })?;
        let plain = open_record(&self.opener, &rec_head, h.index, body).ok_or_else(|| {
            corrupt(
                self.offset,
                format!("chunk {} failed authentication", self.index),
            )
        })?;
        let chunk = StoredChunk::decode(&plain).map_err(|e| {
            corrupt(
                self.offset,
                format!("authenticated chunk {}: {e}", self.index),
            )
        })?;
        self.offset += (h.plain_len + RECORD_OVERHEAD) as u64;
        self.index = self.index.saturating_add(1);
        Ok(Some(chunk))
    }
}

/// Bytes `from..to` of the file.
fn read_range(path: &Path, from: u64, to: u64) -> io::Result<Vec<u8>> {
    use std::io::{Seek, SeekFrom};
    let mut f = File::open(path)?;
    f.seek(SeekFrom::Start(from))?;
    let mut out = Vec::new();
    f.take(to.saturating_sub(from)).read_to_end(&mut out)?;
    Ok(out)
}

/// Fills `out` from `pending` (bytes already read) and then from `r`.
fn fill(pending: &mut Vec<u8>, r: &mut impl Read, out: &mut [u8]) -> io::Result<()> {
    let n = pending.len().min(out.len());
    out[..n].copy_from_slice(&pending[..n]);
    pending.drain(..n);
    r.read_exact(&mut out[n..])
}

struct RecordHeader {
    index: u32,
    durable_count: u32,
    plain_len: usize,
}

impl RecordHeader {
    fn parse(b: &[u8; RECORD_HEADER_LEN], expected: u32) -> Result<RecordHeader, String> {
        let word = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        if b[..4] != RECORD_MAGIC {
            return Err("no record magic".into());
        }
        let h = RecordHeader {
            index: word(4),
            durable_count: word(8),
            plain_len: word(12) as usize,
        };
        if h.index != expected {
            return Err(format!("chunk index {} where {expected} belongs", h.index));
        }
        if h.plain_len > MAX_PLAINTEXT {
            return Err(format!("record length {} out of range", h.plain_len));
        }
        if h.durable_count > h.index {
            return Err("durable count beyond the chunk index".into());
        }
        Ok(h)
    }
}

fn open_record(opener: &Opener, head: &[u8], index: u32, mut body: Vec<u8>) -> Option<Vec<u8>> {
    let tag_at = body.len().checked_sub(TAG_LEN)?;
    let mut tag = [0u8; TAG_LEN];
    tag.copy_from_slice(&body[tag_at..]);
    body.truncate(tag_at);
    opener.open(index, head, &mut body, &tag).ok()?;
    Some(body)
}

/// Searches `rest` (the bytes after a damaged record whose index is `damaged`) for an
/// intact record whose durable count covers the damaged one; returns its offset in `rest`
/// and its index.
fn durable_witness(opener: &Opener, rest: &[u8], damaged: u32) -> Option<(usize, u32)> {
    let mut from = 0;
    while let Some(p) = find(&rest[from..], &RECORD_MAGIC).map(|p| p + from) {
        from = p + 1;
        let Some(head) = rest.get(p..p + RECORD_HEADER_LEN) else {
            break;
        };
        let mut h = [0u8; RECORD_HEADER_LEN];
        h.copy_from_slice(head);
        let index = u32::from_le_bytes([h[4], h[5], h[6], h[7]]);
        if index <= damaged {
            continue;
        }
        let Ok(rh) = RecordHeader::parse(&h, index) else {
            continue;
        };
        let end = p + RECORD_HEADER_LEN + rh.plain_len + TAG_LEN;
        let Some(body) = rest.get(p + RECORD_HEADER_LEN..end) else {
            continue;
        };
        if open_record(opener, &h, index, body.to_vec()).is_some() && rh.durable_count > damaged {
            return Some((p, index));
        }
    }
    None
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::RealFs;
    use redovault::crypto::keys::KeyId;
    use redovault_redo::position::ThreadId;
    use redovault_redo::position::{DbId, ResetlogsId};

    pub(crate) fn keys() -> KeyRing {
        let id = KeyId::parse("k1").unwrap();
        KeyRing::from_keys(id.clone(), [(id, [0x5a; 32])]).unwrap()
    }

    fn stream() -> StreamId {
        StreamId {
            db_id: DbId(42),
            resetlogs_id: ResetlogsId(7),
            thread: ThreadId(1),
        }
    }

    fn commit(sqn: u32, seq: u32, end: u64) -> CommitMark {
        CommitMark {
            xid: Xid {
                usn: 3,
                slot: 4,
                sqn,
            },
            scn: Scn(1000 + u64::from(sqn)),
            time: sqn
                .is_multiple_of(2)
                .then_some(1_772_841_600 + i64::from(sqn)),
            end: StreamPos {
                seq: LogSeq(seq),
                offset: end,
            },
        }
    }

    fn chunk(seq: u32, offset: u64, len: usize) -> StoredChunk {
        StoredChunk {
            start: StreamPos {
                seq: LogSeq(seq),
                offset,
            },
            data: (0..len).map(|i| (i as u64 + offset) as u8).collect(),
            commits: vec![
                commit(1, seq, offset + 1),
                commit(2, seq, offset + len as u64),
            ],
            log_end: false,
        }
    }

    #[test]
    fn chunk_plaintext_round_trips_and_checks() {
        let mut c = chunk(5, 1024, 512);
        c.log_end = true;
        let b = c.encode().unwrap();
        assert_eq!(b.len(), c.encoded_len());
        assert_eq!(StoredChunk::decode(&b).unwrap(), c);
        for n in 0..b.len() {
            assert!(StoredChunk::decode(&b[..n]).is_err(), "prefix {n}");
        }
        let mut bad = c.clone();
        bad.commits[1].end.offset += 1;
        assert!(matches!(bad.check(), Err(ChunkError::CommitOutside { .. })));
        let mut bad = c.clone();
        bad.commits.swap(0, 1);
        assert!(bad.check().is_err());
        let mut bad = c.clone();
        bad.commits[0].end = bad.start;
        assert!(bad.check().is_err());
        let mut bad = c.clone();
        bad.commits[0].end.seq = LogSeq(6);
        assert!(bad.check().is_err());
        let mut bad = c;
        bad.start.offset = u64::MAX - 10;
        assert!(matches!(bad.check(), Err(ChunkError::Overflow(_))));
    }

    fn redo_like(seq: u32, offset: u64, len: usize) -> StoredChunk {
        let mut c = chunk(seq, offset, len);
        c.data = (0..len).map(|i| ((i / 9) % 23) as u8).collect();
        c
    }

    #[test]
    fn compressed_chunks_round_trip_and_raw_ones_stay_version_1() {
        let level = Level::new(3);
        let c = redo_like(5, 1024, 64 << 10);
        let z = c.encode_with(level).unwrap();
        assert_eq!(z[0], CHUNK_VERSION_ZSTD);
        assert!(z.len() < c.encoded_len() / 4, "{} bytes", z.len());
        assert_eq!(StoredChunk::decode(&z).unwrap(), c);
        // Redo that does not shrink is written raw: version 1, the bytes of `encode`.
        let mut noise = c.clone();
        noise.data = {
            use rand::{RngCore as _, SeedableRng as _};
            let mut b = vec![0u8; 4096];
            rand::rngs::StdRng::seed_from_u64(7).fill_bytes(&mut b);
            b
        };
        noise.commits.clear();
        assert_eq!(noise.encode_with(level).unwrap(), noise.encode().unwrap());
        assert_eq!(noise.encode().unwrap()[0], CHUNK_VERSION);
        // Every truncation of a compressed chunk is an error, never a shorter chunk.
        for n in 0..z.len() {
            assert!(StoredChunk::decode(&z[..n]).is_err(), "prefix {n}");
        }
        // Version 1 does not know the zstd flag.
        let mut v1 = z.clone();
        v1[0] = CHUNK_VERSION;
        assert!(StoredChunk::decode(&v1).is_err());
    }

    #[test]
    fn compressed_chunk_decompression_is_bounded() {
        let mut c = redo_like(5, 0, 1 << 20);
        c.commits.clear();
        let z = c.encode_with(Level::new(1)).unwrap();
        // Declared redo length smaller than the frame holds: refused, not grown.
        let mut less = z.clone();
        less[16..20].copy_from_slice(&(512u32 << 10).to_le_bytes());
        assert!(matches!(
            StoredChunk::decode(&less),
            Err(ChunkError::Decompress(_))
        ));
        // Above the chunk maximum: refused before anything is allocated.
        let mut more = z.clone();
        more[16..20].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(
            StoredChunk::decode(&more),
            Err(ChunkError::TooLong(_))
        ));
        // A frame damaged inside: an error, not a panic.
        let mut bad = z;
        let mid = bad.len() / 2;
        bad[mid] ^= 0xff;
        assert!(StoredChunk::decode(&bad).is_err());
    }

    /// A segment written by the collector before compression (chunk version 1): three
    /// chunks of log 5, each with one commit, the last ending the log; key `k1` = 0x5a × 32.
    /// Made by the previous version's `SegmentWriter`; it must stay readable.
    const OLD_SEGMENT: &[u8] = include_bytes!("../testdata/seg-v1-db42-rl7-t1.rvs");

    #[test]
    fn a_segment_written_before_compression_stays_readable() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(segment_file_name(1));
        std::fs::write(&p, OLD_SEGMENT).unwrap();
        let (s, got) = read_all(&p, ScanMode::Strict).unwrap();
        assert_eq!((s.chunks, got.len()), (3, 3));
        for (i, c) in got.iter().enumerate() {
            let i = i as u64;
            assert_eq!(
                c.start,
                StreamPos {
                    seq: LogSeq(5),
                    offset: i * 512
                }
            );
            let want: Vec<u8> = (0..512u64).map(|j| ((j * 7 + i) % 13) as u8).collect();
            assert_eq!(c.data, want);
            assert_eq!(c.commits.len(), 1);
            assert_eq!(c.commits[0].scn, Scn(1000 + i));
            assert_eq!(c.log_end, i == 2);
        }
        // And its chunks are byte for byte what this version writes raw.
        let mut r = RecordReader::open(&p, &keys()).unwrap();
        let first = r.next_chunk().unwrap().unwrap();
        let mut w =
            SegmentWriter::create(&RealFs, &dir.path().join("new"), &keys(), stream(), 1, 0);
        assert!(w.is_err(), "no such directory");
        std::fs::create_dir(dir.path().join("new")).unwrap();
        w = SegmentWriter::create(&RealFs, &dir.path().join("new"), &keys(), stream(), 1, 0);
        let mut w = w.unwrap();
        w.append(&first).unwrap();
        w.sync().unwrap();
        let new = std::fs::read(w.path()).unwrap();
        let old_rec =
            &OLD_SEGMENT[OLD_SEGMENT.len() - 3 * SegmentWriter::record_len(&first) as usize..];
        let new_rec = &new[new.len() - SegmentWriter::record_len(&first) as usize..];
        // Same record header (magic, index 0, durable count 0, length) and length.
        assert_eq!(old_rec[..RECORD_HEADER_LEN], new_rec[..RECORD_HEADER_LEN]);
    }

    #[test]
    fn a_torn_tail_of_compressed_chunks_is_cut_and_the_rest_reads() {
        let dir = tempfile::tempdir().unwrap();
        let chunks: Vec<_> = (0..4).map(|i| redo_like(1, i * 8192, 8192)).collect();
        let mut w = SegmentWriter::create(&RealFs, dir.path(), &keys(), stream(), 1, 0)
            .unwrap()
            .with_compression(Level::new(3));
        let mut ends = Vec::new();
        for c in &chunks {
            w.append(c).unwrap();
            ends.push(w.len());
        }
        w.sync().unwrap();
        let p = w.path().to_path_buf();
        let full = std::fs::read(&p).unwrap();
        assert!(
            (full.len() as u64) < chunks.iter().map(SegmentWriter::record_len).sum::<u64>() / 4,
            "compressed on disk: {} bytes",
            full.len()
        );
        let (_, got) = read_all(&p, ScanMode::Strict).unwrap();
        assert_eq!(got, chunks);
        // Cut inside the last record: a torn tail at its start, three chunks intact.
        for cut in [1, 16, 30] {
            std::fs::write(&p, &full[..full.len() - cut]).unwrap();
            let (s, got) = read_all(&p, ScanMode::LastSegment).unwrap();
            assert_eq!(got, chunks[..3]);
            assert_eq!(s.torn.unwrap().offset, ends[2]);
        }
    }

    #[test]
    fn file_names() {
        assert_eq!(segment_file_name(12), "seg-00000000000000000012.rvs");
        assert_eq!(parse_segment_file_name(&segment_file_name(12)), Some(12));
        assert_eq!(parse_segment_file_name("seg-12.rvs"), None);
        assert_eq!(
            parse_segment_file_name("seg-0000000000000000001x.rvs"),
            None
        );
    }

    fn write_segment(dir: &Path, chunks: &[StoredChunk], sync_after: &[usize]) -> PathBuf {
        let mut w = SegmentWriter::create(&RealFs, dir, &keys(), stream(), 1, 0).unwrap();
        for (i, c) in chunks.iter().enumerate() {
            w.append(c).unwrap();
            if sync_after.contains(&i) {
                w.sync().unwrap();
            }
        }
        w.sync().unwrap();
        w.path().to_path_buf()
    }

    fn read_all(path: &Path, mode: ScanMode) -> Result<(Scanned, Vec<StoredChunk>), ScanError> {
        let mut got = Vec::new();
        let s = scan::<ScanError>(path, &keys(), mode, None, |_, c| {
            got.push(c);
            Ok(())
        })?;
        Ok((s, got))
    }

    #[test]
    fn write_then_scan_every_chunk() {
        let dir = tempfile::tempdir().unwrap();
        let chunks: Vec<_> = (0..5).map(|i| chunk(1, i * 512, 512)).collect();
        let p = write_segment(dir.path(), &chunks, &[1]);
        let (s, got) = read_all(&p, ScanMode::Strict).unwrap();
        assert_eq!(got, chunks);
        assert_eq!(s.chunks, 5);
        assert_eq!(s.good_len, std::fs::metadata(&p).unwrap().len());
        assert!(s.torn.is_none());
        assert_eq!(s.header.unwrap().segment, 1);
    }

    #[test]
    fn incomplete_tail_is_torn_in_the_last_segment_only() {
        let dir = tempfile::tempdir().unwrap();
        let chunks: Vec<_> = (0..4).map(|i| chunk(1, i * 512, 512)).collect();
        let p = write_segment(dir.path(), &chunks, &[]);
        let full = std::fs::read(&p).unwrap();
        let rec = SegmentWriter::record_len(&chunks[0]) as usize;
        let header_len = full.len() - 4 * rec;
        for cut in [1, 15, 16, 17, rec - 1] {
            let at = full.len() - cut;
            std::fs::write(&p, &full[..at]).unwrap();
            let (s, got) = read_all(&p, ScanMode::LastSegment).unwrap();
            assert_eq!(got.len(), 3, "cut {cut}");
            let torn = s.torn.unwrap();
            assert_eq!(torn.offset as usize, header_len + 3 * rec);
            assert!(matches!(
                read_all(&p, ScanMode::Strict),
                Err(ScanError::Corrupt { offset, .. }) if offset as usize == header_len + 3 * rec
            ));
        }
        // Zeros after the last record (a length extended but never written).
        let mut z = full.clone();
        z.extend_from_slice(&[0u8; 4096]);
        std::fs::write(&p, &z).unwrap();
        let (s, got) = read_all(&p, ScanMode::LastSegment).unwrap();
        assert_eq!(
            (got.len(), s.torn.unwrap().offset as usize),
            (4, full.len())
        );
        // A file shorter than its header: a creation cut short.
        std::fs::write(&p, &full[..header_len - 1]).unwrap();
        let (s, got) = read_all(&p, ScanMode::LastSegment).unwrap();
        assert!(got.is_empty() && s.torn.unwrap().header);
        assert!(read_all(&p, ScanMode::Strict).is_err());
    }

    #[test]
    fn damage_before_a_durable_witness_is_corruption() {
        let dir = tempfile::tempdir().unwrap();
        let chunks: Vec<_> = (0..4).map(|i| chunk(1, i * 512, 512)).collect();
        // Synced after chunk 1: chunks 2 and 3 carry durable count 2.
        let p = write_segment(dir.path(), &chunks, &[1]);
        let full = std::fs::read(&p).unwrap();
        let rec = SegmentWriter::record_len(&chunks[0]) as usize;
        let header_len = full.len() - 4 * rec;
        // Damage in chunk 1 (durable when chunk 2 was written): corruption, named by offset.
        let mut bad = full.clone();
        bad[header_len + rec + 100] ^= 0x10;
        std::fs::write(&p, &bad).unwrap();
        match read_all(&p, ScanMode::LastSegment) {
            Err(ScanError::Corrupt { offset, reason, .. }) => {
                assert_eq!(offset as usize, header_len + rec);
                assert!(reason.contains("acknowledged"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
        // Damage in chunk 2 (not durable when chunk 3 was written): a torn tail, even though
        // chunk 3 is intact (out-of-order write-back before a crash).
        let mut bad = full.clone();
        bad[header_len + 2 * rec + 100] ^= 0x10;
        std::fs::write(&p, &bad).unwrap();
        let (s, got) = read_all(&p, ScanMode::LastSegment).unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(s.torn.unwrap().offset as usize, header_len + 2 * rec);
        // Damage in the record header's length field of chunk 0: still found by the witness.
        let mut bad = full;
        bad[header_len + 13] ^= 0x01;
        std::fs::write(&p, &bad).unwrap();
        assert!(matches!(
            read_all(&p, ScanMode::LastSegment),
            Err(ScanError::Corrupt { offset, .. }) if offset as usize == header_len
        ));
    }

    #[test]
    fn a_damaged_header_before_a_record_is_corruption_even_in_a_tiny_file() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = chunk(1, 0, 1);
        c.commits.clear();
        let p = write_segment(dir.path(), &[c], &[]);
        let full = std::fs::read(&p).unwrap();
        assert!(full.len() <= MAX_HEADER_LEN, "{} bytes", full.len());
        for i in 0..70 {
            let mut bad = full.clone();
            bad[i] ^= 0x04;
            std::fs::write(&p, &bad).unwrap();
            match read_all(&p, ScanMode::LastSegment) {
                Err(ScanError::Corrupt { offset: 0, .. } | ScanError::Unreadable { .. }) => {}
                other => panic!("byte {i}: {other:?}"),
            }
        }
    }

    #[test]
    fn unknown_key_is_named_not_torn() {
        let dir = tempfile::tempdir().unwrap();
        let p = write_segment(dir.path(), &[chunk(1, 0, 10)], &[]);
        let other = KeyId::parse("k2").unwrap();
        let ring = KeyRing::from_keys(other.clone(), [(other, [1; 32])]).unwrap();
        let err =
            scan::<ScanError>(&p, &ring, ScanMode::LastSegment, None, |_, _| Ok(())).unwrap_err();
        assert!(
            matches!(err, ScanError::Unreadable { .. }) && err.to_string().contains("\"k1\""),
            "{err}"
        );
    }

    #[test]
    fn scan_limit_reads_a_prefix() {
        let dir = tempfile::tempdir().unwrap();
        let chunks: Vec<_> = (0..3).map(|i| chunk(1, i * 100, 100)).collect();
        let p = write_segment(dir.path(), &chunks, &[]);
        let len = std::fs::metadata(&p).unwrap().len();
        let rec = SegmentWriter::record_len(&chunks[0]);
        let mut n = 0;
        scan::<ScanError>(&p, &keys(), ScanMode::Strict, Some(len - rec), |_, _| {
            n += 1;
            Ok(())
        })
        .unwrap();
        assert_eq!(n, 2);
    }
}
