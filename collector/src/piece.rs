//! Pieces: a stream's acknowledged redo as immutable objects in WORM, sealed to the offline
//! recovery key (the format is specified byte by byte in ARCHITECTURE.md, "The collector's
//! streams in WORM").
//!
//! ```text
//! 0    132  header (clear; the HPKE AAD): magic, version, suite, stream, chain index,
//!           start and end position, log end, chunk count, plaintext length, previous
//!           piece's SHA-256, recovery key id
//! 132  32   enc (HPKE encapsulated key)
//! 164  P+16 ciphertext + tag of: per chunk, u32 length + the chunk's segment encoding
//! ```
//!
//! The header is in the clear so that a recovery (or an audit) can order and chain pieces
//! without the key; it is authenticated as the AAD, so a header moved onto other bytes fails
//! to open. Pieces chain through `prev_piece` (SHA-256 of the previous object): a stream's
//! pieces in WORM form a chain even where no manifest segment was sealed yet.

use redovault::compress::Level;
use redovault::crypto::recovery::{
    ENC_LEN, KEY_ID_LEN, OpenError, RecoveryPrivateKey, RecoveryPublicKey, TAG_LEN,
};
use redovault::manifest::Sha256Digest;
use redovault::wire::{StreamId, StreamPos};
use redovault_redo::position::{DbId, LogSeq, ResetlogsId, ThreadId};

use crate::segment::{ChunkError, MAX_PLAINTEXT, StoredChunk};

/// First bytes of every piece.
pub const MAGIC: [u8; 8] = *b"RVPIECE1";
/// Length of the clear header (the AAD).
pub const HEADER_LEN: usize = 132;
/// Header plus `enc`: where the ciphertext starts.
pub const CIPHERTEXT_AT: usize = HEADER_LEN + ENC_LEN;
/// Format version.
pub const VERSION: u8 = 1;
/// HPKE base mode, DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-256-GCM.
pub const SUITE: u8 = 1;
/// The HPKE `info` of every piece.
pub const INFO: &[u8] = b"redovault piece v1";
/// Largest plaintext a reader accepts (a writer cuts pieces far smaller).
pub const MAX_PIECE_PLAINTEXT: usize = 256 << 20;
/// Largest piece object a reader accepts.
pub const MAX_PIECE_OBJECT: u64 = (CIPHERTEXT_AT + MAX_PIECE_PLAINTEXT + TAG_LEN) as u64;

const FLAG_LOG_END: u8 = 1;

/// The clear header of a piece.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PieceHeader {
    pub stream: StreamId,
    /// Index of the piece in its stream's chain, from 1.
    pub index: u64,
    /// Where the first chunk starts.
    pub start: StreamPos,
    /// Where the last chunk's redo ends (in its own sequence).
    pub end: StreamPos,
    /// The last chunk ends its log.
    pub log_end: bool,
    /// Chunks in the plaintext.
    pub chunks: u32,
    /// Length of the plaintext.
    pub plaintext_len: u32,
    /// SHA-256 of the stream's previous piece object (zeros for the first).
    pub prev_piece: Sha256Digest,
    /// SHA-256 of the recovery public key it is sealed to.
    pub key_id: [u8; KEY_ID_LEN],
}

/// Why a piece cannot be made or read; names the object and the offset.
#[derive(Debug, thiserror::Error)]
pub enum PieceError {
    /// The bytes are not a piece of this format.
    #[error("{origin} offset {offset}: {detail}")]
    Malformed {
        /// Object key or file.
        origin: String,
        /// Byte offset of the problem.
        offset: usize,
        /// What is wrong.
        detail: String,
    },
    /// The piece does not open with this key.
    #[error("{origin}: {source}")]
    Open {
        /// Object key or file.
        origin: String,
        #[source]
        source: OpenError,
    },
    /// A chunk could not be encoded (a bug upstream: chunks are checked when stored).
    #[error("chunk at {pos}: {source}")]
    StoredChunk {
        /// Where the chunk starts.
        pos: StreamPos,
        #[source]
        source: ChunkError,
    },
    /// Nothing to seal.
    #[error("a piece needs at least one chunk")]
    Empty,
}

impl PieceError {
    /// The bytes in WORM are not what was sealed (or not sealed to this key): evidence, never
    /// retried.
    pub fn is_tampering(&self) -> bool {
        matches!(
            self,
            PieceError::Malformed { .. }
                | PieceError::Open {
                    source: OpenError::Tampered | OpenError::BadEnc,
                    ..
                }
        )
    }
}

impl PieceHeader {
    /// The header's bytes (the AAD).
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        b[0..8].copy_from_slice(&MAGIC);
        b[8..10].copy_from_slice(&(HEADER_LEN as u16).to_le_bytes());
        b[10] = VERSION;
        b[11] = SUITE;
        b[12..16].copy_from_slice(&self.stream.db_id.0.to_le_bytes());
        b[16..20].copy_from_slice(&self.stream.resetlogs_id.0.to_le_bytes());
        b[20..22].copy_from_slice(&self.stream.thread.0.to_le_bytes());
        b[24..32].copy_from_slice(&self.index.to_le_bytes());
        b[32..36].copy_from_slice(&self.start.seq.0.to_le_bytes());
        b[36..44].copy_from_slice(&self.start.offset.to_le_bytes());
        b[44..48].copy_from_slice(&self.end.seq.0.to_le_bytes());
        b[48..56].copy_from_slice(&self.end.offset.to_le_bytes());
        b[56] = if self.log_end { FLAG_LOG_END } else { 0 };
        b[60..64].copy_from_slice(&self.chunks.to_le_bytes());
        b[64..68].copy_from_slice(&self.plaintext_len.to_le_bytes());
        b[68..100].copy_from_slice(&self.prev_piece.0);
        b[100..132].copy_from_slice(&self.key_id);
        b
    }

    /// Reads and checks a header; `origin` names the object in errors.
    pub fn decode(b: &[u8], origin: &str) -> Result<PieceHeader, PieceError> {
        PieceHeader::decode_prefix(b, b.len() as u64, origin)
    }

    /// Reads and checks a header from the first bytes of an object of `object_len` bytes
    /// (at least [`HEADER_LEN`] of them: a ranged read), without the rest: the header is in
    /// the clear, so an audit can place a piece without the key or the whole object.
    pub fn decode_prefix(
        b: &[u8],
        object_len: u64,
        origin: &str,
    ) -> Result<PieceHeader, PieceError> {
        let bad = |offset: usize, detail: String| PieceError::Malformed {
            origin: origin.to_string(),
            offset,
            detail,
        };
        if object_len < (CIPHERTEXT_AT + TAG_LEN) as u64 || b.len() < HEADER_LEN {
            return Err(bad(
                0,
                format!(
                    "{object_len} bytes: shorter than a piece's header, key and tag ({})",
                    CIPHERTEXT_AT + TAG_LEN
                ),
            ));
        }
        if b[0..8] != MAGIC {
            return Err(bad(0, "not a redovault piece (magic)".into()));
        }
        let u16_at = |i: usize| u16::from_le_bytes([b[i], b[i + 1]]);
        let u32_at = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        let u64_at = |i: usize| {
            let mut a = [0u8; 8];
            a.copy_from_slice(&b[i..i + 8]);
            u64::from_le_bytes(a)
        };
        if usize::from(u16_at(8)) != HEADER_LEN {
            return Err(bad(
                8,
                format!("header length {}, expected {HEADER_LEN}", u16_at(8)),
            ));
        }
        if b[10] != VERSION {
            return Err(bad(
                10,
                format!("format version {}, expected {VERSION}", b[10]),
            ));
        }
        if b[11] != SUITE {
            return Err(bad(11, format!("suite {}, expected {SUITE}", b[11])));
        }
        if b[22..24] != [0, 0] || b[57..60] != [0, 0, 0] || b[56] & !FLAG_LOG_END != 0 {
            return Err(bad(22, "reserved bits set".into()));
        }
        let plaintext_len = u32_at(64);
        let expected = (CIPHERTEXT_AT + plaintext_len as usize + TAG_LEN) as u64;
        if plaintext_len as usize > MAX_PIECE_PLAINTEXT || object_len != expected {
            return Err(bad(
                64,
                format!(
                    "plaintext length {plaintext_len} does not match the object's {object_len} bytes"
                ),
            ));
        }
        let mut prev = [0u8; 32];
        prev.copy_from_slice(&b[68..100]);
        let mut key_id = [0u8; KEY_ID_LEN];
        key_id.copy_from_slice(&b[100..132]);
        let h = PieceHeader {
            stream: StreamId {
                db_id: DbId(u32_at(12)),
                resetlogs_id: ResetlogsId(u32_at(16)),
                thread: ThreadId(u16_at(20)),
            },
            index: u64_at(24),
            start: StreamPos {
                seq: LogSeq(u32_at(32)),
                offset: u64_at(36),
            },
            end: StreamPos {
                seq: LogSeq(u32_at(44)),
                offset: u64_at(48),
            },
            log_end: b[56] & FLAG_LOG_END != 0,
            chunks: u32_at(60),
            plaintext_len,
            prev_piece: Sha256Digest(prev),
            key_id,
        };
        if h.index == 0 || h.chunks == 0 || h.end < h.start {
            return Err(bad(
                24,
                "index 0, no chunk, or an end before the start".into(),
            ));
        }
        Ok(h)
    }

    /// Where the stream continues after this piece.
    pub fn next_start(&self) -> StreamPos {
        if self.log_end {
            StreamPos {
                seq: LogSeq(self.end.seq.0.saturating_add(1)),
                offset: 0,
            }
        } else {
            self.end
        }
    }
}

/// A piece ready to upload.
#[derive(Debug, Clone)]
pub struct SealedPiece {
    pub header: PieceHeader,
    /// The object's bytes.
    pub bytes: Vec<u8>,
    /// SHA-256 of `bytes` (in the key, and the next piece's `prev_piece`).
    pub sha256: Sha256Digest,
}

/// Seals `chunks` (contiguous, in stream order) as piece `index` of `stream`, raw.
pub fn seal(
    stream: StreamId,
    index: u64,
    prev_piece: Sha256Digest,
    chunks: &[StoredChunk],
    key: &RecoveryPublicKey,
) -> Result<SealedPiece, PieceError> {
    seal_with(stream, index, prev_piece, chunks, key, None)
}

/// [`seal`], each chunk's redo compressed at `compress` where it shrinks (chunk version 2).
pub fn seal_with(
    stream: StreamId,
    index: u64,
    prev_piece: Sha256Digest,
    chunks: &[StoredChunk],
    key: &RecoveryPublicKey,
    compress: Option<Level>,
) -> Result<SealedPiece, PieceError> {
    let (first, last) = match (chunks.first(), chunks.last()) {
        (Some(f), Some(l)) => (f, l),
        _ => return Err(PieceError::Empty),
    };
    let mut plain = Vec::with_capacity(chunks.iter().map(|c| 4 + c.encoded_len()).sum());
    for c in chunks {
        let enc = c
            .encode_with(compress)
            .map_err(|source| PieceError::StoredChunk {
                pos: c.start,
                source,
            })?;
        plain.extend_from_slice(&(enc.len() as u32).to_le_bytes());
        plain.extend_from_slice(&enc);
    }
    let header = PieceHeader {
        stream,
        index,
        start: first.start,
        end: last.end(),
        log_end: last.log_end,
        chunks: chunks.len() as u32,
        plaintext_len: plain.len() as u32,
        prev_piece,
        key_id: key.id(),
    };
    let aad = header.encode();
    let (enc, ct) = key.seal(INFO, &aad, &plain);
    let mut bytes = Vec::with_capacity(CIPHERTEXT_AT + ct.len());
    bytes.extend_from_slice(&aad);
    bytes.extend_from_slice(&enc);
    bytes.extend_from_slice(&ct);
    let sha256 = Sha256Digest::of(&bytes);
    Ok(SealedPiece {
        header,
        bytes,
        sha256,
    })
}

/// Opens a piece with the recovery private key and checks its chunks against its header:
/// they run on without a gap from `start` to `end`, their number and the last one's log end
/// as the header says. `origin` names the object in errors.
pub fn open(
    bytes: &[u8],
    key: &RecoveryPrivateKey,
    origin: &str,
) -> Result<(PieceHeader, Vec<StoredChunk>), PieceError> {
    let h = PieceHeader::decode(bytes, origin)?;
    let mut enc = [0u8; ENC_LEN];
    enc.copy_from_slice(&bytes[HEADER_LEN..CIPHERTEXT_AT]);
    let plain = key
        .open(
            &h.key_id,
            &enc,
            INFO,
            &bytes[..HEADER_LEN],
            &bytes[CIPHERTEXT_AT..],
        )
        .map_err(|source| PieceError::Open {
            origin: origin.to_string(),
            source,
        })?;
    let chunks = decode_chunks(&plain, &h, origin)?;
    Ok((h, chunks))
}

fn decode_chunks(
    plain: &[u8],
    h: &PieceHeader,
    origin: &str,
) -> Result<Vec<StoredChunk>, PieceError> {
    let bad = |offset: usize, detail: String| PieceError::Malformed {
        origin: format!("{origin} (plaintext)"),
        offset,
        detail,
    };
    let mut chunks: Vec<StoredChunk> = Vec::new();
    let mut at = 0usize;
    let mut expect = h.start;
    while at < plain.len() {
        let len = plain
            .get(at..at + 4)
            .map(|l| u32::from_le_bytes([l[0], l[1], l[2], l[3]]) as usize)
            .ok_or_else(|| bad(at, "truncated chunk length".into()))?;
        if len > MAX_PLAINTEXT {
            return Err(bad(
                at,
                format!("chunk length {len} is larger than any chunk"),
            ));
        }
        let body = plain
            .get(at + 4..at + 4 + len)
            .ok_or_else(|| bad(at, format!("chunk of {len} bytes runs past the end")))?;
        let c = StoredChunk::decode(body).map_err(|e| bad(at + 4, e.to_string()))?;
        if c.start != expect {
            return Err(bad(
                at + 4,
                format!("chunk starts at {}, expected {expect}", c.start),
            ));
        }
        expect = c.next_start();
        at += 4 + len;
        chunks.push(c);
    }
    let last = chunks.last().ok_or_else(|| bad(0, "no chunk".into()))?;
    if chunks.len() != h.chunks as usize || last.end() != h.end || last.log_end != h.log_end {
        return Err(bad(
            0,
            format!(
                "{} chunks ending at {} (log end {}), the header says {} ending at {} (log end {})",
                chunks.len(),
                last.end(),
                last.log_end,
                h.chunks,
                h.end,
                h.log_end
            ),
        ));
    }
    Ok(chunks)
}

/// Where a stream's objects live: `<prefix>/streams/<stream>`.
pub fn stream_prefix(prefix: &str, stream: StreamId) -> String {
    if prefix.is_empty() {
        format!("streams/{stream}")
    } else {
        format!("{prefix}/streams/{stream}")
    }
}

/// The key of a piece: its start position (so keys sort in stream order) and its own SHA-256
/// (so nobody can pre-create it).
pub fn piece_key(
    prefix: &str,
    stream: StreamId,
    start: StreamPos,
    sha256: &Sha256Digest,
) -> String {
    format!(
        "{}/pieces/{:010}-{:016}-{sha256}.rvp",
        stream_prefix(prefix, stream),
        start.seq.0,
        start.offset
    )
}

/// The start position and SHA-256 in a piece key's last segment, if it is one.
pub fn parse_piece_name(name: &str) -> Option<(StreamPos, Sha256Digest)> {
    let stem = name.rsplit('/').next()?.strip_suffix(".rvp")?;
    let mut parts = stem.splitn(3, '-');
    let (seq, offset, sha) = (parts.next()?, parts.next()?, parts.next()?);
    if seq.len() != 10 || offset.len() != 16 {
        return None;
    }
    Some((
        StreamPos {
            seq: LogSeq(seq.parse().ok()?),
            offset: offset.parse().ok()?,
        },
        Sha256Digest::from_hex(sha)?,
    ))
}

#[cfg(test)]
mod tests {
    use redovault::wire::CommitMark;
    use redovault_redo::position::{Scn, Xid};

    use super::*;

    fn stream() -> StreamId {
        StreamId {
            db_id: DbId(7),
            resetlogs_id: ResetlogsId(9),
            thread: ThreadId(2),
        }
    }

    fn chunks() -> Vec<StoredChunk> {
        let at = |seq, offset| StreamPos {
            seq: LogSeq(seq),
            offset,
        };
        vec![
            StoredChunk {
                start: at(5, 1024),
                data: vec![1; 512],
                commits: vec![CommitMark {
                    xid: Xid {
                        usn: 1,
                        slot: 2,
                        sqn: 3,
                    },
                    scn: Scn(100),
                    time: Some(1_700_000_000),
                    end: at(5, 1536),
                }],
                log_end: true,
            },
            StoredChunk {
                start: at(6, 0),
                data: vec![2; 1024],
                commits: vec![],
                log_end: false,
            },
        ]
    }

    #[test]
    fn seal_then_open_gives_the_chunks_back() {
        let sk = RecoveryPrivateKey::generate();
        let p = seal(stream(), 3, Sha256Digest([4; 32]), &chunks(), sk.public()).unwrap();
        assert_eq!(p.sha256, Sha256Digest::of(&p.bytes));
        let (h, got) = open(&p.bytes, &sk, "p").unwrap();
        assert_eq!(h, p.header);
        assert_eq!(got, chunks());
        assert_eq!(
            h.end,
            StreamPos {
                seq: LogSeq(6),
                offset: 1024
            }
        );
        assert_eq!(h.next_start(), h.end);
    }

    #[test]
    fn compressed_pieces_give_the_original_chunks_back() {
        let sk = RecoveryPrivateKey::generate();
        let raw = seal(stream(), 3, Sha256Digest::ZERO, &chunks(), sk.public()).unwrap();
        let z = seal_with(
            stream(),
            3,
            Sha256Digest::ZERO,
            &chunks(),
            sk.public(),
            Level::new(3),
        )
        .unwrap();
        assert!(z.bytes.len() < raw.bytes.len() - 1000, "{}", z.bytes.len());
        assert_eq!(z.header.end, raw.header.end);
        let (h, got) = open(&z.bytes, &sk, "z").unwrap();
        assert_eq!(h, z.header);
        assert_eq!(got, chunks());
    }

    #[test]
    fn tampering_and_the_wrong_key_are_named() {
        let sk = RecoveryPrivateKey::generate();
        let p = seal(stream(), 1, Sha256Digest::ZERO, &chunks(), sk.public()).unwrap();
        // Every single flipped bit is refused, in the header, the key or the ciphertext.
        for i in [0, 12, 24, 33, 56, 70, 101, 140, 200, p.bytes.len() - 1] {
            let mut b = p.bytes.clone();
            b[i] ^= 0x10;
            let e = open(&b, &sk, "k").unwrap_err();
            assert!(
                e.is_tampering() || matches!(e, PieceError::Open { .. }),
                "{i}: {e}"
            );
        }
        let e = open(&p.bytes[..100], &sk, "short.rvp")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("short.rvp offset 0"), "{e}");
        // The header alone, from a ranged read, with the object's length.
        let len = p.bytes.len() as u64;
        let h = PieceHeader::decode_prefix(&p.bytes[..HEADER_LEN], len, "k").unwrap();
        assert_eq!(h, p.header);
        assert!(PieceHeader::decode_prefix(&p.bytes[..HEADER_LEN], len + 1, "k").is_err());
        assert!(PieceHeader::decode_prefix(&p.bytes[..HEADER_LEN - 1], len, "k").is_err());
        let e = open(&p.bytes, &RecoveryPrivateKey::generate(), "k").unwrap_err();
        assert!(matches!(
            e,
            PieceError::Open {
                source: OpenError::OtherKey { .. },
                ..
            }
        ));
        assert!(!e.is_tampering());
    }

    /// Bytes from WORM are untrusted: no mutation of a piece, no truncation and no garbage
    /// makes opening panic or accept other chunks.
    #[test]
    fn mutated_truncated_and_random_bytes_never_panic_and_never_open() {
        use rand::{Rng, SeedableRng};
        let sk = RecoveryPrivateKey::generate();
        let p = seal(stream(), 1, Sha256Digest::ZERO, &chunks(), sk.public()).unwrap();
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        for _ in 0..3000 {
            let mut b = p.bytes.clone();
            match rng.gen_range(0..4) {
                0 => {
                    let i = rng.gen_range(0..b.len());
                    b[i] ^= 1 << rng.gen_range(0..8);
                }
                1 => b.truncate(rng.gen_range(0..b.len())),
                2 => b.extend((0..rng.gen_range(1..64)).map(|_| rng.r#gen::<u8>())),
                _ => {
                    let n = rng.gen_range(0..400);
                    b = (0..n).map(|_| rng.r#gen::<u8>()).collect();
                    if n >= 8 && rng.gen_bool(0.5) {
                        b[..8].copy_from_slice(&MAGIC);
                    }
                }
            }
            assert!(b == p.bytes || open(&b, &sk, "fuzz").is_err());
            let _ = PieceHeader::decode(&b, "fuzz");
            let _ = parse_piece_name(&String::from_utf8_lossy(&b));
        }
    }

    #[test]
    fn keys_sort_by_position_and_parse_back() {
        let sha = Sha256Digest([0xab; 32]);
        let k = piece_key(
            "drill",
            stream(),
            StreamPos {
                seq: LogSeq(12),
                offset: 4096,
            },
            &sha,
        );
        assert_eq!(
            k,
            format!("drill/streams/db7-rl9-t2/pieces/0000000012-0000000000004096-{sha}.rvp")
        );
        assert_eq!(
            parse_piece_name(&k),
            Some((
                StreamPos {
                    seq: LogSeq(12),
                    offset: 4096
                },
                sha
            ))
        );
        assert_eq!(parse_piece_name("x/pieces/12-4096-zz.rvp"), None);
        assert!(piece_key("", stream(), StreamPos::default(), &sha).starts_with("streams/"));
    }
}
