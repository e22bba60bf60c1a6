//! zstd compression of redo, one chunk at a time (issue 19): on the link (a Data message's
//! bytes), in the collector's segments and in its WORM pieces (a chunk's redo).
//!
//! Always before encryption (ciphertext does not compress), always of one chunk alone (each
//! chunk still opens by itself, given its offset), and only when it pays: a chunk that does
//! not shrink is kept raw and says so with a flag. Everything that names redo (positions,
//! lengths in positions, commit marks, acknowledged offsets, SHA-256 digests) refers to the
//! ORIGINAL bytes; compression changes only how many bytes travel or lie on disk.
//!
//! Decompression takes untrusted input (a peer's frame, a segment or a piece): the caller
//! gives the original length the container declares, [`decompress`] refuses one above a
//! maximum and produces at most that many bytes, so a frame claiming more (or holding more)
//! is an error, never an allocation bomb.

use std::cell::RefCell;
use std::fmt;

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

    proptest! {
        #[test]
        fn arbitrary_frames_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300), declared in 0usize..5000) {
            let _ = decompress(&bytes, declared, 4096);
        }
    }
}
