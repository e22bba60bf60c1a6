//! zstd compression of redo, one chunk at a time (issue 19): on the link (a Data message's
//! bytes), in the collector's segments and in its WORM pieces (a chunk's redo).
//!
//! ```text
//! chunk ─► compress (Level 1..=19) ─► shrank? zstd frame + flag : raw ─► then encrypt
//! untrusted frame + declared original length ─► decompress (≤ maximum, ≤ declared) ─► chunk
//! archived log ([watch] compress) ─► compress_file: one frame to a local spool file, both
//!   sides hashed in the same pass ─► WORM ─► download ─► FrameDecoder (streaming) ─► log
//! ```
//!
//! Invariants:
//! - Always before encryption (ciphertext does not compress) and of one chunk alone: each
//!   chunk still opens by itself, given its offset.
//! - Positions, lengths in positions, commit marks, acknowledged offsets and SHA-256
//!   digests refer to the ORIGINAL bytes; compression changes only how many bytes travel or
//!   lie on disk.
//! - Decompression of untrusted input (a peer's frame, a segment or a piece) is bounded:
//!   [`decompress`] refuses a declared length above a maximum and produces at most that many
//!   bytes, so a frame claiming (or holding) more is an error, never an allocation bomb.

use crate::manifest::Sha256Digest;
use std::cell::RefCell;
use std::fmt;
use std::io::{self, Read as _, Write as _};
use std::path::Path;

use sha2::{Digest as _, Sha256};

use zstd::bulk::Compressor;
use zstd::zstd_safe::CParameter;

/// Highest zstd level accepted in configurations (zstd's own maximum without `--ultra`).
pub const MAX_LEVEL: i32 = 19;

/// A zstd compression level, 1 ..= [`MAX_LEVEL`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Level(i32);

impl Level {
    /// The level used when a configuration turns compression on without one: zstd's
    /// default, a third of the real 23ai log's size at hundreds of MB/s per core.
    pub const DEFAULT: Level = Level(3);

    /// `level` if it is in 1 ..= [`MAX_LEVEL`].
    pub fn new(level: i32) -> Option<Level> {
        (1..=MAX_LEVEL).contains(&level).then_some(Level(level))
    }

    /// The level as zstd takes it.
    pub fn get(self) -> i32 {
        self.0
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "zstd level {}", self.0)
    }
}

/// Why compressed bytes could not be given back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecompressError {
    /// The declared original length is above what any chunk may hold.
    #[error("declared original length {declared} is above the maximum {max}")]
    TooLong {
        /// Declared length.
        declared: usize,
        /// The container's maximum.
        max: usize,
    },
    /// The bytes are not a zstd frame, or they decompress to more than declared.
    #[error("zstd frame does not decompress within its declared {declared} bytes: {detail}")]
    Frame {
        /// Declared length.
        declared: usize,
        /// zstd's reason.
        detail: String,
    },
    /// The frame decompressed to fewer bytes than declared.
    #[error("zstd frame decompresses to {got} bytes, {declared} declared")]
    Short {
        /// Declared length.
        declared: usize,
        /// Bytes produced.
        got: usize,
    },
    /// A streamed frame is cut short, or followed by bytes that belong to no frame.
    #[error("zstd frame {0}")]
    Framing(&'static str),
}

thread_local! {
    /// One compression context per thread and level: a context costs from kilobytes (level
    /// 1) to megabytes (level 19) to set up, far more than a small chunk's compression.
    static CONTEXT: RefCell<Option<(Level, Compressor<'static>)>> = const { RefCell::new(None) };
}

/// `data` compressed at `level` as one zstd frame (with zstd's content checksum, so damage
/// inside the frame is caught on its own, beside the AEAD around it), or `None` when that
/// would not be shorter than `data` (the caller then keeps it raw).
pub fn compress(data: &[u8], level: Level) -> Option<Vec<u8>> {
    if data.is_empty() {
        return None;
    }
    // Only a library error (out of memory in zstd's context) lands in `None`: raw is then
    // the safe answer, the bytes are the same.
    let out = CONTEXT.with(|cell| {
        let mut cell = cell.borrow_mut();
        if cell.as_ref().is_none_or(|(l, _)| *l != level) {
            let mut c = Compressor::new(level.get()).ok()?;
            c.set_parameter(CParameter::ChecksumFlag(true)).ok()?;
            *cell = Some((level, c));
        }
        let (_, c) = cell.as_mut()?;
        c.compress(data).ok()
    })?;
    (out.len() < data.len()).then_some(out)
}

/// Decompresses `frame`, which its container says holds exactly `declared` bytes of at most
/// `max`. Never allocates more than `declared`; anything else than exactly `declared` bytes
/// is an error.
pub fn decompress(frame: &[u8], declared: usize, max: usize) -> Result<Vec<u8>, DecompressError> {
    if declared > max {
        return Err(DecompressError::TooLong { declared, max });
    }
    let out = zstd::bulk::decompress(frame, declared).map_err(|e| DecompressError::Frame {
        declared,
        detail: e.to_string(),
    })?;
    if out.len() != declared {
        return Err(DecompressError::Short {
            declared,
            got: out.len(),
        });
    }
    Ok(out)
}

/// What [`compress_file`] wrote: the original and the stored form, each with its SHA-256.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileCompression {
    /// Bytes read from the source.
    pub original_size: u64,
    /// SHA-256 of the bytes read from the source.
    pub original_sha256: Sha256Digest,
    /// Bytes of the frame written.
    pub stored_size: u64,
    /// SHA-256 of the frame written.
    pub stored_sha256: Sha256Digest,
}

/// Read size of [`compress_file`].
const FILE_CHUNK: usize = 1 << 20;

/// Compresses the file `src` into a new file `dst` as one zstd frame (with its content
/// checksum), hashing the original and the frame in the same pass: the caller compares the
/// original's digest with the one it validated, so a file changed in between is never shipped
/// under the old digest. `dst` is fsynced (it is uploaded from disk afterwards).
pub fn compress_file(src: &Path, dst: &Path, level: Level) -> io::Result<FileCompression> {
    let mut input = std::fs::File::open(src)?;
    let out = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(dst)?;
    let mut enc = zstd::stream::write::Encoder::new(HashingWriter::new(out), level.get())?;
    enc.include_checksum(true)?;
    // The frame header then says how long the log is: a reader of the object alone (the
    // verifier, for a log no sealed manifest lists yet) knows its size without decoding it
    // all, and zstd refuses to finish if the file grew or shrank meanwhile.
    enc.set_pledged_src_size(Some(input.metadata()?.len()))?;
    let mut original = Sha256::new();
    let mut original_size = 0u64;
    let mut buf = vec![0u8; FILE_CHUNK];
    loop {
        let n = input.read(&mut buf)?;
        if n == 0 {
            break;
        }
        original.update(&buf[..n]);
        original_size += n as u64;
        enc.write_all(&buf[..n])?;
    }
    let mut w = enc.finish()?;
    w.file.flush()?;
    w.file.sync_all()?;
    Ok(FileCompression {
        original_size,
        original_sha256: original.finalize().into(),
        stored_size: w.size,
        stored_sha256: w.hash.finalize().into(),
    })
}

/// A file writer that hashes and counts what passes through it.
struct HashingWriter {
    file: std::fs::File,
    hash: Sha256,
    size: u64,
}

impl HashingWriter {
    fn new(file: std::fs::File) -> HashingWriter {
        HashingWriter {
            file,
            hash: Sha256::new(),
            size: 0,
        }
    }
}

impl io::Write for HashingWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.write(buf)?;
        self.hash.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

/// Output buffer of one [`FrameDecoder::feed`] step: bounds the memory a decoder holds,
/// whatever the frame's ratio.
const DECODE_STEP: usize = 1 << 20;

/// A streaming decoder of one zstd frame that must give back exactly `declared` bytes (a
/// compressed archived log read back from the store). Sans-IO: the caller feeds downloaded
/// bytes and writes what comes out.
///
/// The frame is untrusted: more output than declared, bytes after the frame, or a frame cut
/// short are errors, and no step holds more than [`DECODE_STEP`] bytes of output.
pub struct FrameDecoder {
    dec: zstd::stream::raw::Decoder<'static>,
    declared: u64,
    produced: u64,
    ended: bool,
    out: Vec<u8>,
    /// The frame's first bytes (its header is at most [`FRAME_HEADER_MAX`]): the size the
    /// header declares is checked at the end, since libzstd does not check it the same way
    /// whatever the pieces it is fed in (found by the `zstd_frame` fuzz target).
    head: Vec<u8>,
}

/// Longest zstd frame header: magic, descriptor, window, dictionary id, content size.
const FRAME_HEADER_MAX: usize = 18;

/// The log size a frame's header declares (None when it does not say), from the frame's
/// first bytes; an error when they do not start a zstd frame.
pub fn frame_content_size(head: &[u8]) -> Result<Option<u64>, DecompressError> {
    zstd::zstd_safe::get_frame_content_size(head)
        .map_err(|_| DecompressError::Framing("header is not a zstd frame header"))
}

/// One step of [`FrameDecoder::feed`].
pub struct Decoded<'a> {
    /// Input bytes used by this step.
    pub consumed: usize,
    /// Original bytes produced by this step.
    pub bytes: &'a [u8],
    /// True when the decoder may hold more output: call again, with the rest of the input
    /// (possibly empty).
    pub more: bool,
}

impl FrameDecoder {
    /// A decoder for a frame of `declared` original bytes.
    pub fn new(declared: u64) -> io::Result<FrameDecoder> {
        Ok(FrameDecoder {
            dec: zstd::stream::raw::Decoder::new()?,
            declared,
            produced: 0,
            ended: false,
            out: vec![0u8; DECODE_STEP],
            head: Vec::with_capacity(FRAME_HEADER_MAX),
        })
    }

    /// Decodes from `input` until it is used up or one step's output is full.
    pub fn feed(&mut self, input: &[u8]) -> Result<Decoded<'_>, DecompressError> {
        use zstd::stream::raw::{InBuffer, Operation as _, OutBuffer};
        let declared = usize::try_from(self.declared).unwrap_or(usize::MAX);
        if self.ended {
            if input.is_empty() {
                return Ok(Decoded {
                    consumed: 0,
                    bytes: &[],
                    more: false,
                });
            }
            return Err(DecompressError::Framing("is followed by bytes of no frame"));
        }
        let keep = (FRAME_HEADER_MAX - self.head.len()).min(input.len());
        self.head.extend_from_slice(&input[..keep]);
        let mut inb = InBuffer::around(input);
        let mut outb = OutBuffer::around(&mut self.out[..]);
        while !self.ended && outb.pos() < DECODE_STEP {
            let before = (inb.pos(), outb.pos());
            let hint = self
                .dec
                .run(&mut inb, &mut outb)
                .map_err(|e| DecompressError::Frame {
                    declared,
                    detail: e.to_string(),
                })?;
            self.ended = hint == 0;
            if (inb.pos(), outb.pos()) == before {
                break;
            }
        }
        let (consumed, n) = (inb.pos(), outb.pos());
        if consumed == 0 && n == 0 && !input.is_empty() && !self.ended {
            return Err(DecompressError::Framing("makes no progress"));
        }
        if self.ended && consumed < input.len() {
            return Err(DecompressError::Framing("is followed by bytes of no frame"));
        }
        self.produced += n as u64;
        if self.produced > self.declared {
            return Err(DecompressError::Frame {
                declared,
                detail: "more bytes than declared".to_string(),
            });
        }
        Ok(Decoded {
            consumed,
            bytes: &self.out[..n],
            more: n == DECODE_STEP,
        })
    }

    /// Checks, after the last input, that the frame ended and gave exactly the declared bytes.
    pub fn finish(&self) -> Result<u64, DecompressError> {
        if !self.ended {
            return Err(DecompressError::Framing("is cut short"));
        }
        if let Ok(Some(n)) = frame_content_size(&self.head)
            && n != self.produced
        {
            return Err(DecompressError::Framing(
                "header declares another size than its blocks hold",
            ));
        }
        if self.produced != self.declared {
            return Err(DecompressError::Short {
                declared: usize::try_from(self.declared).unwrap_or(usize::MAX),
                got: usize::try_from(self.produced).unwrap_or(usize::MAX),
            });
        }
        Ok(self.produced)
    }

    /// Feeds all of `input`, handing every decoded piece to `sink` (for callers that do not
    /// await between pieces).
    pub fn feed_all(
        &mut self,
        mut input: &[u8],
        mut sink: impl FnMut(&[u8]),
    ) -> Result<(), DecompressError> {
        loop {
            let step = self.feed(input)?;
            sink(step.bytes);
            let (consumed, more) = (step.consumed, step.more);
            input = &input[consumed..];
            if input.is_empty() && !more {
                return Ok(());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn redo_like(n: usize) -> Vec<u8> {
        (0..n).map(|i| ((i / 7) % 31) as u8).collect()
    }

    #[test]
    fn levels_are_checked() {
        assert_eq!(Level::new(0), None);
        assert_eq!(Level::new(20), None);
        assert_eq!(Level::new(-1), None);
        assert_eq!(Level::new(1).map(Level::get), Some(1));
        assert_eq!(Level::new(19).map(Level::get), Some(19));
    }

    #[test]
    fn round_trip_and_raw_when_it_does_not_shrink() {
        let data = redo_like(64 << 10);
        let z = compress(&data, Level::DEFAULT).expect("shrinks");
        assert!(z.len() < data.len() / 4, "{}", z.len());
        assert_eq!(decompress(&z, data.len(), 1 << 20).unwrap(), data);
        // Random bytes do not shrink: kept raw.
        let noise: Vec<u8> = {
            use rand::{RngCore as _, SeedableRng as _};
            let mut b = vec![0u8; 4096];
            rand::rngs::StdRng::seed_from_u64(7).fill_bytes(&mut b);
            b
        };
        assert_eq!(compress(&noise, Level::new(19).unwrap()), None);
        assert_eq!(compress(&[], Level::DEFAULT), None);
    }

    #[test]
    fn decompression_is_bounded_by_the_declared_length() {
        // A bomb: 4 MiB of zeros in a few hundred bytes, declared as 1 KiB.
        let bomb = compress(&vec![0u8; 4 << 20], Level::DEFAULT).unwrap();
        assert!(bomb.len() < 1024);
        assert!(matches!(
            decompress(&bomb, 1024, 8 << 20),
            Err(DecompressError::Frame { declared: 1024, .. })
        ));
        // A declared length above the maximum allocates nothing.
        assert_eq!(
            decompress(&bomb, usize::MAX, 8 << 20),
            Err(DecompressError::TooLong {
                declared: usize::MAX,
                max: 8 << 20
            })
        );
        // Fewer bytes than declared.
        let small = compress(&redo_like(1000), Level::DEFAULT).unwrap();
        assert_eq!(
            decompress(&small, 2000, 8 << 20),
            Err(DecompressError::Short {
                declared: 2000,
                got: 1000
            })
        );
        // Not a frame; a truncated frame.
        assert!(decompress(b"not zstd", 10, 100).is_err());
        assert!(decompress(&small[..small.len() - 1], 1000, 8 << 20).is_err());
    }

    /// Decodes `frame` fed in `step`-byte pieces.
    fn stream_decode(frame: &[u8], declared: u64, step: usize) -> Result<Vec<u8>, DecompressError> {
        let mut d = FrameDecoder::new(declared).unwrap();
        let mut out = Vec::new();
        for piece in frame.chunks(step.max(1)) {
            d.feed_all(piece, |b| out.extend_from_slice(b))?;
        }
        d.finish()?;
        Ok(out)
    }

    #[test]
    fn a_file_compresses_to_one_frame_that_streams_back_in_any_pieces() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("arch_1_7.arc");
        let data = redo_like(3 << 20);
        std::fs::write(&src, &data).unwrap();
        let dst = dir.path().join("arch_1_7.arc.zst");
        let c = compress_file(&src, &dst, Level::new(1).unwrap()).unwrap();
        let frame = std::fs::read(&dst).unwrap();
        assert_eq!(c.original_size, data.len() as u64);
        assert_eq!(
            c.original_sha256,
            Sha256Digest(<[u8; 32]>::from(Sha256::digest(&data)))
        );
        assert_eq!(c.stored_size, frame.len() as u64);
        assert_eq!(
            c.stored_sha256,
            Sha256Digest(<[u8; 32]>::from(Sha256::digest(&frame)))
        );
        assert!(frame.len() < data.len() / 4);
        for step in [1, 7, 4096, 1 << 20, frame.len()] {
            assert_eq!(
                stream_decode(&frame, data.len() as u64, step).unwrap(),
                data,
                "{step}"
            );
        }
        assert_eq!(frame_content_size(&frame), Ok(Some(data.len() as u64)));
        // The spool file is never overwritten.
        assert!(compress_file(&src, &dst, Level::DEFAULT).is_err());
    }

    #[test]
    fn a_streamed_frame_gives_exactly_what_it_declares() {
        let data = redo_like(100_000);
        let frame = zstd::bulk::compress(&data, 3).unwrap();
        let n = data.len() as u64;
        // Declared too short: refused as soon as it is exceeded; too long: short at the end.
        assert!(matches!(
            stream_decode(&frame, n - 1, 999),
            Err(DecompressError::Frame { .. })
        ));
        assert!(matches!(
            stream_decode(&frame, n + 1, 999),
            Err(DecompressError::Short { .. })
        ));
        // Cut short; followed by junk; not a frame.
        assert_eq!(
            stream_decode(&frame[..frame.len() - 3], n, 999),
            Err(DecompressError::Framing("is cut short"))
        );
        let mut longer = frame.clone();
        longer.extend_from_slice(b"junk");
        assert_eq!(
            stream_decode(&longer, n, 4096),
            Err(DecompressError::Framing("is followed by bytes of no frame"))
        );
        assert!(stream_decode(b"not a zstd frame", n, 4).is_err());
        // A header that declares 256 bytes over one empty block: refused whole or in pieces
        // (libzstd itself catches it only when fed at once; the `zstd_frame` fuzz target).
        let liar = [0x28, 0xb5, 0x2f, 0xfd, 0x41, 0, 0, 0, 0, 1, 0, 0];
        for step in [1, 8, liar.len()] {
            assert!(stream_decode(&liar, 0, step).is_err(), "{step}");
        }
        // A bomb declared at its full size still streams in bounded steps.
        let zeros = zstd::bulk::compress(&vec![0u8; 64 << 20], 3).unwrap();
        let mut d = FrameDecoder::new(64 << 20).unwrap();
        let mut biggest = 0;
        d.feed_all(&zeros, |b| biggest = biggest.max(b.len()))
            .unwrap();
        assert_eq!(d.finish().unwrap(), 64 << 20);
        assert!(biggest <= DECODE_STEP);
    }

    proptest! {
        #[test]
        fn arbitrary_streamed_frames_never_panic_or_loop(bytes in proptest::collection::vec(any::<u8>(), 0..300), declared in 0u64..5000, step in 1usize..64) {
            let _ = stream_decode(&bytes, declared, step);
        }

        #[test]
        fn arbitrary_frames_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300), declared in 0usize..5000) {
            let _ = decompress(&bytes, declared, 4096);
        }
    }
}
