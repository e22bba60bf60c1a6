//! At-rest sealing of the collector's segments: AES-256-GCM with a versioned header.
//!
//! ```text
//! segment = header ‖ chunk 0 ‖ chunk 1 ‖ ...     (each chunk sealed and checked on its own)
//! header (little-endian):
//!   0   8  magic "RVAULTSG"              8  2  format version (FORMAT_VERSION)
//!   10  2  header length, tag included   12 1  algorithm: 1 = AES-256-GCM (Algorithm)
//!   13  1  nonce scheme: 1 = segment prefix ‖ chunk counter (NonceScheme)
//!   14  1  key id length n (1 to 64)     15 1  reserved, 0
//!   16  8  nonce prefix: 64 random bits from the OS for this segment
//!   24  10 stream: database id u32, resetlogs id u32, thread u16     34 2 reserved, 0
//!   36  8  segment number in its stream  44 8  creation time, Unix seconds (i64)
//!   52  n  key id (ASCII): which key of the KeyRing sealed this segment
//!   52+n 16 header tag: GCM of an empty message, nonce prefix ‖ FFFFFFFF, AAD = bytes 0..52+n
//! chunk i: nonce (96 bits) = prefix (8 bytes) ‖ i (u32, big-endian)
//!          AAD = "RVCHUNK1" ‖ db id ‖ resetlogs id ‖ thread ‖ segment number ‖ chunk index
//!                ‖ plaintext length ‖ record header (the caller's cleartext framing)
//! ```
//!
//! Invariants:
//! - The header is authenticated with the segment's key: a changed key id, stream, segment
//!   number or nonce prefix is detected before any chunk is read.
//! - No nonce twice under one key. Within a segment `i` counts up from 0 and [`Sealer`]
//!   refuses any index but the next one; `FFFFFFFF` is kept for the header tag. Across
//!   segments the prefix is fresh OS randomness per new segment, and a sealer exists only for
//!   a segment file being created: a segment is never reopened for writing (after a crash,
//!   new data goes to a new segment with a new prefix). Two segments under one key share a
//!   prefix with probability about `s² / 2⁶⁵` for `s` segments: below 2⁻³⁰ until 2¹⁷ =
//!   131,072 segments per key (8 TiB at 64 MiB each); rotate keys well before that (see
//!   ARCHITECTURE.md).
//! - A chunk fails to open if moved to another stream, segment or index, swapped with
//!   another, shortened, or if its framing is altered. Dropping whole chunks from the *end*
//!   of the last segment cannot be seen by the cipher alone: the segment layer's positions
//!   and recovery rules deal with that.
//! - Key rotation: new segments are sealed with the ring's active key ([`KeyRing`]); the
//!   header names the key and [`Opener`] looks it up, so older segments keep opening as long
//!   as their key stays in the key file.
//!
//! Why a random prefix, not a deterministic nonce (segment number, chunk index): segment
//! numbers are per stream and restart when a store directory is rebuilt, so uniqueness
//! across streams, stores and restores would depend on bookkeeping outside the file.

use aes_gcm::aead::AeadInPlace;
use aes_gcm::aead::generic_array::GenericArray;
use aes_gcm::{Aes256Gcm, KeyInit};
use rand::RngCore;
use redovault_redo::position::{DbId, ResetlogsId, ThreadId};

use super::keys::{KeyId, KeyRing, MAX_KEY_ID_LEN};
use crate::wire::StreamId;

/// Segment header magic.
pub const MAGIC: [u8; 8] = *b"RVAULTSG";
/// Format version written and understood.
pub const FORMAT_VERSION: u16 = 1;
/// Length of a GCM tag.
pub const TAG_LEN: usize = 16;
/// Length of the fixed part of the header (before the key id).
pub const HEADER_FIXED_LEN: usize = 52;
/// Longest possible header: fixed part, longest key id, tag.
pub const MAX_HEADER_LEN: usize = HEADER_FIXED_LEN + MAX_KEY_ID_LEN + TAG_LEN;
/// Chunk indexes run from 0 to `MAX_CHUNKS - 1`; the last counter value is the header's.
pub const MAX_CHUNKS: u32 = u32::MAX;

const HEADER_COUNTER: u32 = u32::MAX;
const CHUNK_DOMAIN: &[u8; 8] = b"RVCHUNK1";

/// The AEAD of a segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    /// AES-256 in Galois/Counter Mode, 96-bit nonce, 128-bit tag.
    Aes256Gcm = 1,
}

/// How chunk nonces are built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NonceScheme {
    /// 64-bit random per-segment prefix ‖ 32-bit big-endian chunk index.
    PrefixCounter = 1,
}

/// What a segment header says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentHeader {
    /// The stream whose redo the segment holds.
    pub stream: StreamId,
    /// Segment number in that stream.
    pub segment: u64,
    /// Creation time, Unix seconds.
    pub created_unix: i64,
    /// The key that sealed the segment.
    pub key_id: KeyId,
    /// AEAD.
    pub algorithm: Algorithm,
    /// Nonce construction.
    pub nonce_scheme: NonceScheme,
    /// Random nonce prefix of this segment.
    pub nonce_prefix: [u8; 8],
}

/// Why a header or a chunk could not be sealed or opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    /// Fewer bytes than the header needs.
    #[error("segment header truncated: {have} bytes, {need} needed")]
    Truncated {
        /// Bytes available.
        have: usize,
        /// Bytes needed.
        need: usize,
    },
    /// Not a redovault segment.
    #[error("not a redovault segment (bad magic)")]
    BadMagic,
    /// A format version this build does not read.
    #[error("segment format version {0} is not supported (this build reads {FORMAT_VERSION})")]
    UnsupportedVersion(u16),
    /// An algorithm this build does not know.
    #[error("segment algorithm {0} is not supported (1 = AES-256-GCM)")]
    UnsupportedAlgorithm(u8),
    /// A nonce scheme this build does not know.
    #[error("segment nonce scheme {0} is not supported (1 = prefix and counter)")]
    UnsupportedNonceScheme(u8),
    /// A header field out of its range.
    #[error("segment header: {0}")]
    BadHeader(&'static str),
    /// The header names a key the ring does not hold.
    #[error("segment sealed with key {0:?}, which is not in the key file")]
    UnknownKey(String),
    /// The header tag does not verify: altered header, or wrong key material under that id.
    #[error("segment header failed authentication (altered, or a different key under its id)")]
    HeaderAuthentication,
    /// A chunk's tag does not verify.
    #[error("chunk {index} failed authentication")]
    ChunkAuthentication {
        /// Index of the chunk.
        index: u32,
    },
    /// A chunk index other than the next one: sealing it could reuse a nonce.
    #[error("chunk index {got} refused: the next index of this segment is {expected}")]
    IndexOutOfOrder {
        /// The next index.
        expected: u32,
        /// The index asked for.
        got: u32,
    },
    /// The segment has sealed its last possible chunk.
    #[error("segment is full: {MAX_CHUNKS} chunks sealed")]
    SegmentFull,
    /// A chunk longer than a u32 length can describe.
    #[error("chunk of {0} bytes is too long")]
    TooLong(usize),
    /// The operating system's random source failed.
    #[error("OS random source failed: {0}")]
    Random(String),
}

/// Seals the chunks of one new segment, in order.
pub struct Sealer {
    cipher: Aes256Gcm,
    header: SegmentHeader,
    header_bytes: Vec<u8>,
    next_index: u32,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sealer")
            .field("header", &self.header)
            .field("next_index", &self.next_index)
            .finish_non_exhaustive()
    }
}

impl Sealer {
    /// A sealer for a new segment: the ring's active key, a fresh random nonce prefix.
    pub fn new(
        keys: &KeyRing,
        stream: StreamId,
        segment: u64,
        created_unix: i64,
    ) -> Result<Sealer, EnvelopeError> {
        let mut nonce_prefix = [0u8; 8];
        rand::rngs::OsRng
            .try_fill_bytes(&mut nonce_prefix)
            .map_err(|e| EnvelopeError::Random(e.to_string()))?;
        let (key_id, key) = keys.active_key();
        let cipher = Aes256Gcm::new(GenericArray::from_slice(key));
        let header = SegmentHeader {
            stream,
            segment,
            created_unix,
            key_id: key_id.clone(),
            algorithm: Algorithm::Aes256Gcm,
            nonce_scheme: NonceScheme::PrefixCounter,
            nonce_prefix,
        };
        let mut header_bytes = encode_header_fields(&header);
        let tag = cipher
            .encrypt_in_place_detached(
                &nonce(&nonce_prefix, HEADER_COUNTER),
                &header_bytes,
                &mut [],
            )
            .map_err(|_| EnvelopeError::TooLong(header_bytes.len()))?;
        header_bytes.extend_from_slice(&tag);
        Ok(Sealer {
            cipher,
            header,
            header_bytes,
            next_index: 0,
        })
    }

    /// What the header says.
    pub fn header(&self) -> &SegmentHeader {
        &self.header
    }

    /// The encoded header, tag included: the first bytes of the segment file.
    pub fn header_bytes(&self) -> &[u8] {
        &self.header_bytes
    }

    /// The index the next chunk must have.
    pub fn next_index(&self) -> u32 {
        self.next_index
    }

    /// Encrypts `buf` in place as chunk `index` (which must be [`Sealer::next_index`]) and
    /// returns its tag; `extra` is authenticated too (the caller's record header).
    pub fn seal(
        &mut self,
        index: u32,
        extra: &[u8],
        buf: &mut [u8],
    ) -> Result<[u8; TAG_LEN], EnvelopeError> {
        if index != self.next_index {
            return Err(EnvelopeError::IndexOutOfOrder {
                expected: self.next_index,
                got: index,
            });
        }
        if index == MAX_CHUNKS {
            return Err(EnvelopeError::SegmentFull);
        }
        let aad = chunk_aad(&self.header, index, buf.len(), extra)?;
        let tag = self
            .cipher
            .encrypt_in_place_detached(&nonce(&self.header.nonce_prefix, index), &aad, buf)
            .map_err(|_| EnvelopeError::TooLong(buf.len()))?;
        // Advanced only after success; an index is never handed out twice either way.
        self.next_index = index.saturating_add(1);
        Ok(tag.into())
    }
}

/// Opens the chunks of one existing segment, in any order.
pub struct Opener {
    cipher: Aes256Gcm,
    header: SegmentHeader,
    header_len: usize,
}

impl std::fmt::Debug for Opener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Opener")
            .field("header", &self.header)
            .finish_non_exhaustive()
    }
}

impl Opener {
    /// Parses and authenticates the header at the start of `bytes` (at least the header;
    /// [`MAX_HEADER_LEN`] bytes always suffice) with the key it names.
    pub fn new(keys: &KeyRing, bytes: &[u8]) -> Result<Opener, EnvelopeError> {
        let (header, len) = decode_header_fields(bytes)?;
        let key = keys
            .key(&header.key_id)
            .ok_or_else(|| EnvelopeError::UnknownKey(header.key_id.to_string()))?;
        let cipher = Aes256Gcm::new(GenericArray::from_slice(key));
        let fields_len = len - TAG_LEN;
        let tag = GenericArray::from_slice(&bytes[fields_len..len]);
        cipher
            .decrypt_in_place_detached(
                &nonce(&header.nonce_prefix, HEADER_COUNTER),
                &bytes[..fields_len],
                &mut [],
                tag,
            )
            .map_err(|_| EnvelopeError::HeaderAuthentication)?;
        Ok(Opener {
            cipher,
            header,
            header_len: len,
        })
    }

    /// What the header says.
    pub fn header(&self) -> &SegmentHeader {
        &self.header
    }

    /// Length of the header in the file: the first chunk record starts here.
    pub fn header_len(&self) -> usize {
        self.header_len
    }

    /// Verifies chunk `index` and decrypts `buf` in place. On failure `buf` is left as it
    /// was: no unauthenticated plaintext is ever produced.
    pub fn open(
        &self,
        index: u32,
        extra: &[u8],
        buf: &mut [u8],
        tag: &[u8; TAG_LEN],
    ) -> Result<(), EnvelopeError> {
        if index == MAX_CHUNKS {
            return Err(EnvelopeError::ChunkAuthentication { index });
        }
        let aad = chunk_aad(&self.header, index, buf.len(), extra)?;
        self.cipher
            .decrypt_in_place_detached(
                &nonce(&self.header.nonce_prefix, index),
                &aad,
                buf,
                GenericArray::from_slice(tag),
            )
            .map_err(|_| EnvelopeError::ChunkAuthentication { index })
    }
}

fn nonce(prefix: &[u8; 8], counter: u32) -> GenericArray<u8, aes_gcm::aead::consts::U12> {
    let mut n = [0u8; 12];
    n[..8].copy_from_slice(prefix);
    n[8..].copy_from_slice(&counter.to_be_bytes());
    GenericArray::from(n)
}

fn chunk_aad(
    h: &SegmentHeader,
    index: u32,
    len: usize,
    extra: &[u8],
) -> Result<Vec<u8>, EnvelopeError> {
    let len = u32::try_from(len).map_err(|_| EnvelopeError::TooLong(len))?;
    let mut aad = Vec::with_capacity(38 + extra.len());
    aad.extend_from_slice(CHUNK_DOMAIN);
    aad.extend_from_slice(&h.stream.db_id.0.to_le_bytes());
    aad.extend_from_slice(&h.stream.resetlogs_id.0.to_le_bytes());
    aad.extend_from_slice(&h.stream.thread.0.to_le_bytes());
    aad.extend_from_slice(&h.segment.to_le_bytes());
    aad.extend_from_slice(&index.to_le_bytes());
    aad.extend_from_slice(&len.to_le_bytes());
    aad.extend_from_slice(extra);
    Ok(aad)
}

fn encode_header_fields(h: &SegmentHeader) -> Vec<u8> {
    let id = h.key_id.as_str().as_bytes();
    // KeyId guarantees 1..=64 bytes, so both casts are exact.
    let total = (HEADER_FIXED_LEN + id.len() + TAG_LEN) as u16;
    let mut b = Vec::with_capacity(usize::from(total));
    b.extend_from_slice(&MAGIC);
    b.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    b.extend_from_slice(&total.to_le_bytes());
    b.push(h.algorithm as u8);
    b.push(h.nonce_scheme as u8);
    b.push(id.len() as u8);
    b.push(0);
    b.extend_from_slice(&h.nonce_prefix);
    b.extend_from_slice(&h.stream.db_id.0.to_le_bytes());
    b.extend_from_slice(&h.stream.resetlogs_id.0.to_le_bytes());
    b.extend_from_slice(&h.stream.thread.0.to_le_bytes());
    b.extend_from_slice(&[0, 0]);
    b.extend_from_slice(&h.segment.to_le_bytes());
    b.extend_from_slice(&h.created_unix.to_le_bytes());
    b.extend_from_slice(id);
    b
}

fn arr<const N: usize>(b: &[u8], at: usize) -> [u8; N] {
    let mut a = [0u8; N];
    if let Some(s) = b.get(at..at + N) {
        a.copy_from_slice(s);
    }
    a
}

/// Decodes the header fields; returns them and the header length (tag included). Checks
/// everything but the tag.
fn decode_header_fields(b: &[u8]) -> Result<(SegmentHeader, usize), EnvelopeError> {
    if b.len() < HEADER_FIXED_LEN {
        return Err(EnvelopeError::Truncated {
            have: b.len(),
            need: HEADER_FIXED_LEN,
        });
    }
    if arr::<8>(b, 0) != MAGIC {
        return Err(EnvelopeError::BadMagic);
    }
    let version = u16::from_le_bytes(arr(b, 8));
    if version != FORMAT_VERSION {
        return Err(EnvelopeError::UnsupportedVersion(version));
    }
    let total = usize::from(u16::from_le_bytes(arr(b, 10)));
    let algorithm = match b[12] {
        1 => Algorithm::Aes256Gcm,
        other => return Err(EnvelopeError::UnsupportedAlgorithm(other)),
    };
    let nonce_scheme = match b[13] {
        1 => NonceScheme::PrefixCounter,
        other => return Err(EnvelopeError::UnsupportedNonceScheme(other)),
    };
    let id_len = usize::from(b[14]);
    if b[15] != 0 || b[34] != 0 || b[35] != 0 {
        return Err(EnvelopeError::BadHeader("reserved bytes are not zero"));
    }
    if id_len == 0 || id_len > MAX_KEY_ID_LEN {
        return Err(EnvelopeError::BadHeader(
            "key id length out of range 1..=64",
        ));
    }
    if total != HEADER_FIXED_LEN + id_len + TAG_LEN {
        return Err(EnvelopeError::BadHeader(
            "header length does not match the key id length",
        ));
    }
    if b.len() < total {
        return Err(EnvelopeError::Truncated {
            have: b.len(),
            need: total,
        });
    }
    let key_id = std::str::from_utf8(&b[HEADER_FIXED_LEN..HEADER_FIXED_LEN + id_len])
        .ok()
        .and_then(KeyId::parse)
        .ok_or(EnvelopeError::BadHeader("key id is not a valid id"))?;
    let header = SegmentHeader {
        stream: StreamId {
            db_id: DbId(u32::from_le_bytes(arr(b, 24))),
            resetlogs_id: ResetlogsId(u32::from_le_bytes(arr(b, 28))),
            thread: ThreadId(u16::from_le_bytes(arr(b, 32))),
        },
        segment: u64::from_le_bytes(arr(b, 36)),
        created_unix: i64::from_le_bytes(arr(b, 44)),
        key_id,
        algorithm,
        nonce_scheme,
        nonce_prefix: arr(b, 16),
    };
    Ok((header, total))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> KeyId {
        KeyId::parse(s).unwrap()
    }

    fn ring(active: &str) -> KeyRing {
        KeyRing::from_keys(id(active), [(id("k1"), [0x11; 32]), (id("k2"), [0x22; 32])]).unwrap()
    }

    fn stream() -> StreamId {
        StreamId {
            db_id: DbId(1_497_016_494),
            resetlogs_id: ResetlogsId(1_224_959_854),
            thread: ThreadId(1),
        }
    }

    fn seal(s: &mut Sealer, index: u32, extra: &[u8], msg: &[u8]) -> Vec<u8> {
        let mut buf = msg.to_vec();
        let tag = s.seal(index, extra, &mut buf).unwrap();
        buf.extend_from_slice(&tag);
        buf
    }

    fn open(o: &Opener, index: u32, extra: &[u8], sealed: &[u8]) -> Result<Vec<u8>, EnvelopeError> {
        let (body, tag) = sealed.split_at(sealed.len() - TAG_LEN);
        let mut buf = body.to_vec();
        o.open(index, extra, &mut buf, tag.try_into().unwrap())?;
        Ok(buf)
    }

    #[test]
    fn round_trip_and_header_fields() {
        let keys = ring("k2");
        let mut s = Sealer::new(&keys, stream(), 7, 1_772_841_600).unwrap();
        let c0 = seal(&mut s, 0, b"rec0", b"first chunk");
        let c1 = seal(&mut s, 1, b"rec1", b"second chunk");
        assert_eq!(s.next_index(), 2);
        assert_ne!(&c0[..11], b"first chunk");
        let hb = s.header_bytes().to_vec();
        assert_eq!(hb.len(), HEADER_FIXED_LEN + 2 + TAG_LEN);
        let mut file = hb.clone();
        file.extend_from_slice(b"trailing bytes are not the header's business");
        let o = Opener::new(&keys, &file).unwrap();
        assert_eq!(o.header_len(), hb.len());
        assert_eq!(o.header(), s.header());
        assert_eq!(o.header().key_id.as_str(), "k2");
        assert_eq!(o.header().segment, 7);
        assert_eq!(o.header().stream, stream());
        assert_eq!(open(&o, 1, b"rec1", &c1).unwrap(), b"second chunk");
        assert_eq!(open(&o, 0, b"rec0", &c0).unwrap(), b"first chunk");
        let mut empty = seal(&mut s, 2, b"", b"");
        assert_eq!(empty.len(), TAG_LEN);
        assert_eq!(open(&o, 2, b"", &empty).unwrap(), b"");
        empty[0] ^= 1;
        assert!(open(&o, 2, b"", &empty).is_err());
    }

    #[test]
    fn indexes_only_in_order() {
        let keys = ring("k1");
        let mut s = Sealer::new(&keys, stream(), 1, 0).unwrap();
        let mut buf = b"x".to_vec();
        assert_eq!(
            s.seal(1, b"", &mut buf),
            Err(EnvelopeError::IndexOutOfOrder {
                expected: 0,
                got: 1
            })
        );
        s.seal(0, b"", &mut buf).unwrap();
        assert!(matches!(
            s.seal(0, b"", &mut buf),
            Err(EnvelopeError::IndexOutOfOrder { expected: 1, .. })
        ));
    }

    #[test]
    fn every_new_segment_has_a_fresh_prefix() {
        let keys = ring("k1");
        let mut seen = std::collections::HashSet::new();
        for _ in 0..1000 {
            let s = Sealer::new(&keys, stream(), 1, 0).unwrap();
            assert!(seen.insert(s.header().nonce_prefix));
        }
    }

    #[test]
    fn chunks_cannot_move_swap_or_shrink() {
        let keys = ring("k1");
        let mut s = Sealer::new(&keys, stream(), 3, 0).unwrap();
        let c0 = seal(&mut s, 0, b"hdr", b"aaaa bbbb");
        let c1 = seal(&mut s, 1, b"hdr", b"cccc dddd");
        let o = Opener::new(&keys, s.header_bytes()).unwrap();
        // Swapped positions.
        assert!(open(&o, 1, b"hdr", &c0).is_err());
        assert!(open(&o, 0, b"hdr", &c1).is_err());
        // Other framing.
        assert!(open(&o, 0, b"hdX", &c0).is_err());
        // Truncated (drop a ciphertext byte before the tag).
        let mut short = c0[..c0.len() - TAG_LEN - 1].to_vec();
        short.extend_from_slice(&c0[c0.len() - TAG_LEN..]);
        assert!(open(&o, 0, b"hdr", &short).is_err());
        // Another segment of the same stream with the same prefix and key: the segment
        // number in the AAD still tells them apart.
        let mut other_header = s.header().clone();
        other_header.segment = 4;
        let o4 = Opener {
            cipher: Aes256Gcm::new(GenericArray::from_slice(&[0x11; 32])),
            header: other_header.clone(),
            header_len: 0,
        };
        assert!(open(&o4, 0, b"hdr", &c0).is_err());
        // Another stream.
        other_header.segment = 3;
        other_header.stream.thread = ThreadId(2);
        let ot = Opener {
            header: other_header,
            ..o4
        };
        assert!(open(&ot, 0, b"hdr", &c0).is_err());
        // Another segment (another prefix).
        let s2 = Sealer::new(&keys, stream(), 3, 0).unwrap();
        let o2 = Opener::new(&keys, s2.header_bytes()).unwrap();
        assert!(open(&o2, 0, b"hdr", &c0).is_err());
    }

    #[test]
    fn every_bit_of_a_chunk_and_header_is_authenticated() {
        let keys = ring("k1");
        let mut s = Sealer::new(&keys, stream(), 1, 5).unwrap();
        let c = seal(&mut s, 0, b"framing", b"redo redo redo");
        let o = Opener::new(&keys, s.header_bytes()).unwrap();
        for bit in 0..c.len() * 8 {
            let mut bad = c.clone();
            bad[bit / 8] ^= 1 << (bit % 8);
            assert_eq!(
                open(&o, 0, b"framing", &bad),
                Err(EnvelopeError::ChunkAuthentication { index: 0 }),
                "bit {bit}"
            );
        }
        let hb = s.header_bytes();
        for bit in 0..hb.len() * 8 {
            let mut bad = hb.to_vec();
            bad[bit / 8] ^= 1 << (bit % 8);
            assert!(Opener::new(&keys, &bad).is_err(), "header bit {bit}");
        }
    }

    #[test]
    fn rotation_keeps_old_segments_readable() {
        let old = ring("k1");
        let mut s1 = Sealer::new(&old, stream(), 1, 0).unwrap();
        let c = seal(&mut s1, 0, b"", b"sealed under k1");
        let new = ring("k2");
        let s2 = Sealer::new(&new, stream(), 2, 0).unwrap();
        assert_eq!(s2.header().key_id.as_str(), "k2");
        let o = Opener::new(&new, s1.header_bytes()).unwrap();
        assert_eq!(o.header().key_id.as_str(), "k1");
        assert_eq!(open(&o, 0, b"", &c).unwrap(), b"sealed under k1");
        // Without k1 the segment is refused by name, not misread.
        let only_k2 = KeyRing::from_keys(id("k2"), [(id("k2"), [0x22; 32])]).unwrap();
        assert_eq!(
            Opener::new(&only_k2, s1.header_bytes()).unwrap_err(),
            EnvelopeError::UnknownKey("k1".into())
        );
        // Other material under the same id: the header tag fails.
        let wrong = KeyRing::from_keys(id("k1"), [(id("k1"), [0x33; 32])]).unwrap();
        assert_eq!(
            Opener::new(&wrong, s1.header_bytes()).unwrap_err(),
            EnvelopeError::HeaderAuthentication
        );
    }

    #[test]
    fn malformed_headers_are_refused_without_panic() {
        let keys = ring("k1");
        let s = Sealer::new(&keys, stream(), 1, 0).unwrap();
        let hb = s.header_bytes().to_vec();
        for n in 0..hb.len() {
            assert!(
                matches!(
                    Opener::new(&keys, &hb[..n]),
                    Err(EnvelopeError::Truncated { .. })
                ),
                "prefix {n}"
            );
        }
        let mut v = hb.clone();
        v[8] = 2;
        assert_eq!(
            Opener::new(&keys, &v).unwrap_err(),
            EnvelopeError::UnsupportedVersion(2)
        );
        let mut v = hb.clone();
        v[12] = 9;
        assert_eq!(
            Opener::new(&keys, &v).unwrap_err(),
            EnvelopeError::UnsupportedAlgorithm(9)
        );
        let mut v = hb.clone();
        v[13] = 0;
        assert_eq!(
            Opener::new(&keys, &v).unwrap_err(),
            EnvelopeError::UnsupportedNonceScheme(0)
        );
        let mut v = hb.clone();
        v[14] = 200;
        assert!(matches!(
            Opener::new(&keys, &v),
            Err(EnvelopeError::BadHeader(_))
        ));
        assert_eq!(
            Opener::new(&keys, &[0u8; 200]).unwrap_err(),
            EnvelopeError::BadMagic
        );
    }
}
