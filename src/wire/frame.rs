//! Sans-IO framing of the link: every message travels in one frame.
//!
//! ```text
//!  0      4     5     6      8       12        20            24           28
//!  │ RVLK │ ver │kind │flags │ length │ number  │ payload CRC │ header CRC │ payload ...
//!   magic   VERSION     REKEY   ≤ max   0,1,2..   CRC32C        CRC32C of
//!                       only            per dir                 bytes 0..24
//!
//!  bytes ──feed / buffer_mut──► FrameDecoder ──poll──► Ok(Some(Frame)) | Ok(None) = need more
//! ```
//!
//! Invariants (all integers little-endian; kinds in [`FrameKind`]):
//! - The header CRC is checked before the length is trusted: a corrupted length never makes
//!   the receiver wait for, or allocate, a payload that was never sent. A length over the
//!   receiver's maximum ([`MAX_FRAME_LEN`]) and any flag bit but [`FLAG_REKEY`] are errors.
//! - Frame numbers run 0, 1, 2... with no gap in each direction: a replayed, reordered or
//!   dropped frame is a hard error (the receiver expects exactly the next number).
//! - [`FrameDecoder`] never panics on any input, never buffers a payload longer than its
//!   maximum, and once it has returned an error it returns that error forever.
//!
//! Why checksums under TLS: they are redundant with the record AEAD, but catch our own bugs
//! and a peer that is not speaking this protocol. In the legacy Blowfish mode the payload is
//! sealed and carries an HMAC over the header fields ([`FrameHeader::aad`]) and the
//! ciphertext (see `crypto::legacy`); [`VERSION`] is the framing version.

use bytes::{Buf, BufMut, BytesMut};

/// The four bytes that open every frame.
pub const MAGIC: [u8; 4] = *b"RVLK";

/// Version of this frame layout.
pub const VERSION: u8 = 1;

/// Length of the frame header.
pub const HEADER_LEN: usize = 28;

/// The largest payload a receiver accepts by default: 8 MiB.
///
/// A Data message carries a chunk of redo (the extractor sends 256 KiB chunks); 8 MiB leaves
/// room for a whole large redo write while bounding what one hostile header can make the
/// receiver buffer.
pub const MAX_FRAME_LEN: usize = 8 << 20;

/// Header flag: the legacy sender switched to the next key epoch with this frame.
pub const FLAG_REKEY: u16 = 0x0001;

/// Every flag this version knows; a frame with another bit set is refused.
pub const KNOWN_FLAGS: u16 = FLAG_REKEY;

/// Bytes of the header covered by the legacy frame MAC: everything but the two checksums.
pub const AAD_LEN: usize = 20;

/// What a frame's payload is. The registry of kinds lives here so that none collide.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FrameKind(pub u8);

impl FrameKind {
    /// `Message::Hello` (extractor → collector).
    pub const HELLO: FrameKind = FrameKind(0x01);
    /// `Message::Welcome` (collector → extractor).
    pub const WELCOME: FrameKind = FrameKind(0x02);
    /// `Message::Data` (extractor → collector).
    pub const DATA: FrameKind = FrameKind(0x03);
    /// `Message::Ack` (collector → extractor).
    pub const ACK: FrameKind = FrameKind(0x04);
    /// `Message::Heartbeat` (both ways).
    pub const HEARTBEAT: FrameKind = FrameKind(0x05);
    /// `Message::Reject` (collector → extractor).
    pub const REJECT: FrameKind = FrameKind(0x06);
    /// `Message::Error` (both ways, then the sender closes).
    pub const ERROR: FrameKind = FrameKind(0x07);
    /// Legacy handshake: client nonce.
    pub const LEGACY_CLIENT_HELLO: FrameKind = FrameKind(0x40);
    /// Legacy handshake: server nonce.
    pub const LEGACY_SERVER_HELLO: FrameKind = FrameKind(0x41);
    /// Legacy handshake: client's proof of the pre-shared key.
    pub const LEGACY_CLIENT_FINISHED: FrameKind = FrameKind(0x42);
    /// Legacy handshake: server's proof of the pre-shared key.
    pub const LEGACY_SERVER_FINISHED: FrameKind = FrameKind(0x43);
    /// Legacy mode: a sealed (Blowfish-CTR + HMAC-SHA-256) message; the real kind is inside.
    pub const SEALED: FrameKind = FrameKind(0x50);

    /// A short name for logs and errors.
    pub fn name(self) -> &'static str {
        match self {
            Self::HELLO => "Hello",
            Self::WELCOME => "Welcome",
            Self::DATA => "Data",
            Self::ACK => "Ack",
            Self::HEARTBEAT => "Heartbeat",
            Self::REJECT => "Reject",
            Self::ERROR => "Error",
            Self::LEGACY_CLIENT_HELLO => "LegacyClientHello",
            Self::LEGACY_SERVER_HELLO => "LegacyServerHello",
            Self::LEGACY_CLIENT_FINISHED => "LegacyClientFinished",
            Self::LEGACY_SERVER_FINISHED => "LegacyServerFinished",
            Self::SEALED => "Sealed",
            _ => "unknown",
        }
    }
}

impl std::fmt::Display for FrameKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (0x{:02x})", self.name(), self.0)
    }
}

/// A decoded (or to-be-encoded) frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    /// What the payload is.
    pub kind: FrameKind,
    /// Flag bits ([`KNOWN_FLAGS`]).
    pub flags: u16,
    /// Payload length.
    pub len: u32,
    /// Frame number in this direction.
    pub number: u64,
    /// CRC32C of the payload.
    pub payload_crc: u32,
}

impl FrameHeader {
    /// The header fields covered by the legacy frame MAC: bytes 0..20 of the header
    /// (magic, version, kind, flags, length, number).
    pub fn aad(&self) -> [u8; AAD_LEN] {
        let mut out = [0u8; AAD_LEN];
        out[0..4].copy_from_slice(&MAGIC);
        out[4] = VERSION;
        out[5] = self.kind.0;
        out[6..8].copy_from_slice(&self.flags.to_le_bytes());
        out[8..12].copy_from_slice(&self.len.to_le_bytes());
        out[12..20].copy_from_slice(&self.number.to_le_bytes());
        out
    }

    /// The 28 header bytes, header checksum included.
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut out = [0u8; HEADER_LEN];
        out[..AAD_LEN].copy_from_slice(&self.aad());
        out[20..24].copy_from_slice(&self.payload_crc.to_le_bytes());
        let crc = crc32c::crc32c(&out[..24]);
        out[24..28].copy_from_slice(&crc.to_le_bytes());
        out
    }

    /// Parses and checks a header: magic, header checksum, version, flags, and length
    /// against `max_len`. Does not look at the frame number (the decoder does).
    pub fn decode(bytes: &[u8; HEADER_LEN], max_len: usize) -> Result<FrameHeader, FrameErrorKind> {
        if let Some(found) = bad_magic(bytes) {
            return Err(FrameErrorKind::BadMagic { found });
        }
        let stored = u32::from_le_bytes(field(bytes, 24));
        let computed = crc32c::crc32c(&bytes[..24]);
        if stored != computed {
            return Err(FrameErrorKind::HeaderChecksum { stored, computed });
        }
        let [version, kind] = field(bytes, 4);
        if version != VERSION {
            return Err(FrameErrorKind::UnsupportedVersion { found: version });
        }
        let flags = u16::from_le_bytes(field(bytes, 6));
        if flags & !KNOWN_FLAGS != 0 {
            return Err(FrameErrorKind::UnknownFlags { flags });
        }
        let len = u32::from_le_bytes(field(bytes, 8));
        if u64::from(len) > max_len as u64 {
            return Err(FrameErrorKind::TooLong {
                len: u64::from(len),
                max: max_len as u64,
            });
        }
        Ok(FrameHeader {
            kind: FrameKind(kind),
            flags,
            len,
            number: u64::from_le_bytes(field(bytes, 12)),
            payload_crc: u32::from_le_bytes(field(bytes, 20)),
        })
    }
}

/// `N` bytes of the header from offset `at` (offsets are constants within the header).
/// `None` if `bytes` start with (a prefix of) [`MAGIC`]; otherwise the bytes up to and
/// including the first wrong one.
fn bad_magic(bytes: &[u8]) -> Option<Vec<u8>> {
    let wrong = bytes.iter().zip(MAGIC).position(|(b, m)| *b != m)?;
    Some(bytes[..=wrong].to_vec())
}

fn field<const N: usize>(bytes: &[u8; HEADER_LEN], at: usize) -> [u8; N] {
    std::array::from_fn(|i| bytes.get(at + i).copied().unwrap_or(0))
}

/// One received frame: its checked header and its payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// The header (checksums verified, number the expected one).
    pub header: FrameHeader,
    /// The payload (owned, mutable so the legacy opener can decrypt in place).
    pub payload: BytesMut,
}

/// What is wrong with a received (or to-be-sent) frame.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameErrorKind {
    /// The first four bytes are not `RVLK`: not this protocol, or garbage.
    #[error(
        "not a redovault link frame: magic starts {found:02x?} instead of \"RVLK\" (garbage or another protocol)"
    )]
    BadMagic {
        /// The bytes received up to and including the first that differs from `RVLK`: the
        /// same whatever the reads delivered, since garbage is refused at that byte.
        found: Vec<u8>,
    },
    /// The header checksum does not match: the header is corrupt.
    #[error(
        "header checksum mismatch (stored 0x{stored:08x}, computed 0x{computed:08x}): corrupt header"
    )]
    HeaderChecksum {
        /// Checksum in the header.
        stored: u32,
        /// Checksum of the bytes received.
        computed: u32,
    },
    /// A framing version this code does not speak.
    #[error("unsupported frame version {found} (this side speaks {VERSION})")]
    UnsupportedVersion {
        /// The version found.
        found: u8,
    },
    /// Flag bits this version does not know.
    #[error("unknown flags 0x{flags:04x}")]
    UnknownFlags {
        /// The flags found.
        flags: u16,
    },
    /// The payload is longer than the maximum frame size.
    #[error("frame too large: {len} bytes, maximum {max}")]
    TooLong {
        /// Declared (or attempted) payload length.
        len: u64,
        /// The limit.
        max: u64,
    },
    /// The payload checksum does not match: the payload is corrupt.
    #[error(
        "payload checksum mismatch (stored 0x{stored:08x}, computed 0x{computed:08x}): corrupt payload"
    )]
    PayloadChecksum {
        /// Checksum in the header.
        stored: u32,
        /// Checksum of the payload received.
        computed: u32,
    },
    /// A frame number already received: the frame is a replay.
    #[error("replayed frame: number {got} was already received")]
    Replayed {
        /// The number in the frame.
        got: u64,
    },
    /// A frame number beyond the expected one: a frame was dropped or frames were reordered.
    #[error("out-of-order frame: number {got} (a frame was dropped or reordered)")]
    OutOfOrder {
        /// The number in the frame.
        got: u64,
    },
}

/// A framing error with where it happened in this direction's byte stream.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("frame #{expected} at byte {at}: {kind}")]
pub struct FrameError {
    /// Offset of the frame's first byte in this direction's stream.
    pub at: u64,
    /// The frame number the receiver expected (or the sender was about to use).
    pub expected: u64,
    /// What is wrong.
    pub kind: FrameErrorKind,
}

/// Sans-IO frame decoder for one direction of a link. See the module docs.
#[derive(Debug)]
pub struct FrameDecoder {
    buf: BytesMut,
    max_len: usize,
    next_number: u64,
    /// Stream offset of the first byte of `buf`.
    at: u64,
    /// The header of the frame being received, once complete and checked.
    header: Option<FrameHeader>,
    failed: Option<FrameError>,
}

impl FrameDecoder {
    /// A decoder that expects frame number 0 first and refuses payloads over `max_len`
    /// (clamped to `u32::MAX`, the largest length a header can state).
    pub fn new(max_len: usize) -> FrameDecoder {
        FrameDecoder {
            buf: BytesMut::new(),
            max_len: max_len.min(u32::MAX as usize),
            next_number: 0,
            at: 0,
            header: None,
            failed: None,
        }
    }

    /// Changes the largest payload accepted from the next header on (the legacy handshake
    /// accepts only small frames, then the link's maximum).
    pub fn set_max_len(&mut self, max_len: usize) {
        self.max_len = max_len.min(u32::MAX as usize);
    }

    /// Appends received bytes. Call [`poll`](Self::poll) after each feed: memory is bounded
    /// by one frame plus what is fed between polls.
    pub fn feed(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The receive buffer, for reading straight into it (`AsyncReadExt::read_buf`) without a
    /// copy. Reserve at most [`wanted`](Self::wanted) (or a small read size) before reading.
    pub fn buffer_mut(&mut self) -> &mut BytesMut {
        &mut self.buf
    }

    /// How many more bytes complete the header or frame being received (at least 1).
    pub fn wanted(&self) -> usize {
        let need = match self.header {
            None => HEADER_LEN,
            Some(h) => HEADER_LEN + h.len as usize,
        };
        need.saturating_sub(self.buf.len()).max(1)
    }

    /// Bytes buffered and not yet returned as a frame.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// The number the next frame must carry.
    pub fn next_number(&self) -> u64 {
        self.next_number
    }

    /// The next complete frame, `Ok(None)` if more bytes are needed, or the error that ends
    /// this direction (returned again on every later call).
    pub fn poll(&mut self) -> Result<Option<Frame>, FrameError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        match self.poll_inner() {
            Ok(frame) => Ok(frame),
            Err(kind) => {
                let e = FrameError {
                    at: self.at,
                    expected: self.next_number,
                    kind,
                };
                self.failed = Some(e.clone());
                Err(e)
            }
        }
    }

    fn poll_inner(&mut self) -> Result<Option<Frame>, FrameErrorKind> {
        let header = match self.header {
            Some(h) => h,
            None => {
                let Some(head) = self.buf.get(..HEADER_LEN) else {
                    // Refuse garbage as soon as the magic is visibly wrong.
                    if let Some(found) = bad_magic(&self.buf) {
                        return Err(FrameErrorKind::BadMagic { found });
                    }
                    return Ok(None);
                };
                let mut raw = [0u8; HEADER_LEN];
                raw.copy_from_slice(head);
                let h = FrameHeader::decode(&raw, self.max_len)?;
                self.header = Some(h);
                // Room for the payload, now that its length is known to be within bounds.
                self.buf
                    .reserve((HEADER_LEN + h.len as usize).saturating_sub(self.buf.len()));
                h
            }
        };
        let total = HEADER_LEN + header.len as usize;
        if self.buf.len() < total {
            return Ok(None);
        }
        let payload = self.buf.get(HEADER_LEN..total).unwrap_or_default();
        let computed = crc32c::crc32c(payload);
        if computed != header.payload_crc {
            return Err(FrameErrorKind::PayloadChecksum {
                stored: header.payload_crc,
                computed,
            });
        }
        if header.number < self.next_number {
            return Err(FrameErrorKind::Replayed { got: header.number });
        }
        if header.number > self.next_number {
            return Err(FrameErrorKind::OutOfOrder { got: header.number });
        }
        self.buf.advance(HEADER_LEN);
        let payload = self.buf.split_to(header.len as usize);
        self.header = None;
        self.next_number += 1;
        self.at += total as u64;
        Ok(Some(Frame { header, payload }))
    }
}

/// Frame encoder for one direction of a link: numbers frames 0, 1, 2...
///
/// Encoding happens in place in the caller's buffer so that a payload is written once:
/// [`begin`](Self::begin) reserves the header, the caller appends the payload, and
/// [`finish`](Self::finish) fills in the header.
#[derive(Debug)]
pub struct FrameEncoder {
    next_number: u64,
    max_len: usize,
    /// Stream offset of the next frame (for errors).
    at: u64,
}

impl FrameEncoder {
    /// An encoder that refuses payloads over `max_len` (clamped to `u32::MAX`).
    pub fn new(max_len: usize) -> FrameEncoder {
        FrameEncoder {
            next_number: 0,
            max_len: max_len.min(u32::MAX as usize),
            at: 0,
        }
    }

    /// The number the next frame will carry.
    pub fn next_number(&self) -> u64 {
        self.next_number
    }

    /// Appends a placeholder header to `out`; returns where the frame starts.
    pub fn begin(out: &mut BytesMut) -> usize {
        let start = out.len();
        out.put_bytes(0, HEADER_LEN);
        start
    }

    /// The header that [`finish`](Self::finish) will write for a payload of `len` bytes
    /// (without its payload checksum): what the legacy sealer authenticates.
    pub fn peek_header(
        &self,
        kind: FrameKind,
        flags: u16,
        len: usize,
    ) -> Result<FrameHeader, FrameError> {
        let len = self.check_len(len)?;
        Ok(FrameHeader {
            kind,
            flags,
            len,
            number: self.next_number,
            payload_crc: 0,
        })
    }

    fn check_len(&self, len: usize) -> Result<u32, FrameError> {
        if len > self.max_len {
            return Err(FrameError {
                at: self.at,
                expected: self.next_number,
                kind: FrameErrorKind::TooLong {
                    len: len as u64,
                    max: self.max_len as u64,
                },
            });
        }
        u32::try_from(len).map_err(|_| FrameError {
            at: self.at,
            expected: self.next_number,
            kind: FrameErrorKind::TooLong {
                len: len as u64,
                max: u64::from(u32::MAX),
            },
        })
    }

    /// Fills in the header of the frame that starts at `start` in `out` (everything after
    /// the header is the payload) and assigns it the next number. On error (payload too
    /// long) the frame is removed from `out` and no number is used.
    pub fn finish(
        &mut self,
        out: &mut BytesMut,
        start: usize,
        kind: FrameKind,
        flags: u16,
    ) -> Result<FrameHeader, FrameError> {
        let payload_len = out.len().saturating_sub(start + HEADER_LEN);
        let len = match self.check_len(payload_len) {
            Ok(len) => len,
            Err(e) => {
                out.truncate(start);
                return Err(e);
            }
        };
        let payload = out.get(start + HEADER_LEN..).unwrap_or_default();
        let header = FrameHeader {
            kind,
            flags,
            len,
            number: self.next_number,
            payload_crc: crc32c::crc32c(payload),
        };
        if let Some(slot) = out.get_mut(start..start + HEADER_LEN) {
            slot.copy_from_slice(&header.encode());
        }
        self.next_number += 1;
        self.at += (HEADER_LEN + payload_len) as u64;
        Ok(header)
    }

    /// Appends one whole frame with a copy of `payload`.
    pub fn encode(
        &mut self,
        kind: FrameKind,
        flags: u16,
        payload: &[u8],
        out: &mut BytesMut,
    ) -> Result<FrameHeader, FrameError> {
        self.check_len(payload.len())?;
        let start = Self::begin(out);
        out.extend_from_slice(payload);
        self.finish(out, start, kind, flags)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn stream(payloads: &[&[u8]]) -> BytesMut {
        let mut enc = FrameEncoder::new(MAX_FRAME_LEN);
        let mut out = BytesMut::new();
        for (i, p) in payloads.iter().enumerate() {
            let h = enc.encode(FrameKind::DATA, 0, p, &mut out).unwrap();
            assert_eq!(h.number, i as u64);
        }
        out
    }

    fn decode_all(bytes: &[u8], chunk: usize) -> Result<Vec<Frame>, FrameError> {
        let mut dec = FrameDecoder::new(MAX_FRAME_LEN);
        let mut frames = Vec::new();
        for c in bytes.chunks(chunk.max(1)) {
            dec.feed(c);
            while let Some(f) = dec.poll()? {
                frames.push(f);
            }
        }
        assert_eq!(dec.buffered(), 0, "bytes left after the last frame");
        Ok(frames)
    }

    #[test]
    fn round_trip_and_numbering() {
        let bytes = stream(&[b"hello", b"", &[7u8; 1000]]);
        let frames = decode_all(&bytes, 7).unwrap();
        assert_eq!(frames.len(), 3);
        assert_eq!(&frames[0].payload[..], b"hello");
        assert!(frames[1].payload.is_empty());
        assert_eq!(frames[2].payload.len(), 1000);
        let numbers: Vec<u64> = frames.iter().map(|f| f.header.number).collect();
        assert_eq!(numbers, [0, 1, 2]);
        assert_eq!(frames[2].header.kind, FrameKind::DATA);
    }

    #[test]
    fn every_truncation_is_incomplete_not_an_error() {
        let bytes = stream(&[b"a payload of some length"]);
        for cut in 0..bytes.len() {
            let mut dec = FrameDecoder::new(MAX_FRAME_LEN);
            dec.feed(&bytes[..cut]);
            assert_eq!(dec.poll(), Ok(None), "cut at {cut}");
            assert!(dec.wanted() >= 1);
        }
    }

    #[test]
    fn every_bit_flip_is_an_error() {
        let bytes = stream(&[b"flip me", b"second"]);
        let first_len = HEADER_LEN + 7;
        for bit in 0..first_len * 8 {
            let mut b = bytes.to_vec();
            b[bit / 8] ^= 1 << (bit % 8);
            let mut dec = FrameDecoder::new(MAX_FRAME_LEN);
            dec.feed(&b);
            let r = dec.poll();
            assert!(r.is_err(), "bit {bit} flipped gave {r:?}");
            // Sticky: the decoder stays failed.
            assert!(dec.poll().is_err());
        }
    }

    #[test]
    fn replayed_and_reordered_frames_are_refused() {
        let mut enc = FrameEncoder::new(MAX_FRAME_LEN);
        let mut f = Vec::new();
        for p in [b"zero", b"one!", b"two!"] {
            let mut out = BytesMut::new();
            enc.encode(FrameKind::DATA, 0, p, &mut out).unwrap();
            f.push(out);
        }
        // Replay: 0, 1, 1.
        let mut dec = FrameDecoder::new(MAX_FRAME_LEN);
        for i in [0, 1, 1] {
            dec.feed(&f[i]);
        }
        assert!(dec.poll().unwrap().is_some());
        assert!(dec.poll().unwrap().is_some());
        let e = dec.poll().unwrap_err();
        assert_eq!(e.kind, FrameErrorKind::Replayed { got: 1 });
        assert_eq!(e.expected, 2);
        assert_eq!(e.at, (2 * (HEADER_LEN + 4)) as u64);
        assert!(e.to_string().contains("replayed"), "{e}");
        // Reorder: 0, 2, 1.
        let mut dec = FrameDecoder::new(MAX_FRAME_LEN);
        for i in [0, 2, 1] {
            dec.feed(&f[i]);
        }
        assert!(dec.poll().unwrap().is_some());
        let e = dec.poll().unwrap_err();
        assert_eq!(e.kind, FrameErrorKind::OutOfOrder { got: 2 });
        // Drop: 1 first.
        let mut dec = FrameDecoder::new(MAX_FRAME_LEN);
        dec.feed(&f[1]);
        assert_eq!(
            dec.poll().unwrap_err().kind,
            FrameErrorKind::OutOfOrder { got: 1 }
        );
    }

    #[test]
    fn hostile_length_is_refused_from_the_header_without_allocating() {
        let h = FrameHeader {
            kind: FrameKind::DATA,
            flags: 0,
            len: u32::MAX,
            number: 0,
            payload_crc: 0,
        };
        let mut dec = FrameDecoder::new(MAX_FRAME_LEN);
        dec.feed(&h.encode());
        let e = dec.poll().unwrap_err();
        assert_eq!(
            e.kind,
            FrameErrorKind::TooLong {
                len: u64::from(u32::MAX),
                max: MAX_FRAME_LEN as u64
            }
        );
        assert!(
            dec.buffer_mut().capacity() < 1024,
            "nothing reserved for the payload"
        );
        // Just over a small configured maximum.
        let h = FrameHeader { len: 101, ..h };
        let mut dec = FrameDecoder::new(100);
        dec.feed(&h.encode());
        assert!(matches!(
            dec.poll().unwrap_err().kind,
            FrameErrorKind::TooLong { len: 101, max: 100 }
        ));
    }

    #[test]
    fn garbage_is_refused_at_the_first_wrong_byte() {
        let mut dec = FrameDecoder::new(MAX_FRAME_LEN);
        dec.feed(b"GET / HTTP/1.1\r\n");
        let e = dec.poll().unwrap_err();
        assert!(matches!(e.kind, FrameErrorKind::BadMagic { .. }), "{e}");
        let mut dec = FrameDecoder::new(MAX_FRAME_LEN);
        dec.feed(b"X");
        assert!(dec.poll().is_err(), "one wrong byte is enough");
        let mut dec = FrameDecoder::new(MAX_FRAME_LEN);
        dec.feed(b"RV");
        assert_eq!(dec.poll(), Ok(None), "a right prefix waits");
    }

    /// Found by the fuzz target `wire_frame`: the garbage error showed the bytes received so
    /// far padded with zeros, so the same bytes gave another error when read in other pieces.
    #[test]
    fn garbage_error_is_the_same_however_the_bytes_arrive() {
        // The crash input: chunk sizes 0x00 0x0a 0x89 0x0a, then these two bytes.
        let input = [0x89, 0x1c];
        let whole = decode_all(&input, input.len()).unwrap_err();
        for chunk in 1..input.len() {
            assert_eq!(
                decode_all(&input, chunk).unwrap_err(),
                whole,
                "chunks of {chunk}"
            );
        }
        assert_eq!(whole.kind, FrameErrorKind::BadMagic { found: vec![0x89] });
        let header = [b'R', b'V', b'X', b'K'].repeat(7);
        let whole = decode_all(&header, header.len()).unwrap_err();
        assert_eq!(decode_all(&header, 1).unwrap_err(), whole);
        assert_eq!(
            whole.kind,
            FrameErrorKind::BadMagic {
                found: b"RVX".to_vec()
            }
        );
    }

    #[test]
    fn unknown_flags_and_versions_are_refused() {
        let base = FrameHeader {
            kind: FrameKind::ACK,
            flags: 0x8000,
            len: 0,
            number: 0,
            payload_crc: crc32c::crc32c(b""),
        };
        let mut dec = FrameDecoder::new(MAX_FRAME_LEN);
        dec.feed(&base.encode());
        assert_eq!(
            dec.poll().unwrap_err().kind,
            FrameErrorKind::UnknownFlags { flags: 0x8000 }
        );
        let mut raw = FrameHeader { flags: 0, ..base }.encode();
        raw[4] = 2;
        let crc = crc32c::crc32c(&raw[..24]);
        raw[24..].copy_from_slice(&crc.to_le_bytes());
        let mut dec = FrameDecoder::new(MAX_FRAME_LEN);
        dec.feed(&raw);
        assert_eq!(
            dec.poll().unwrap_err().kind,
            FrameErrorKind::UnsupportedVersion { found: 2 }
        );
    }

    #[test]
    fn encoder_refuses_oversized_payloads_and_keeps_numbering() {
        let mut enc = FrameEncoder::new(16);
        let mut out = BytesMut::new();
        let e = enc
            .encode(FrameKind::DATA, 0, &[0u8; 17], &mut out)
            .unwrap_err();
        assert!(matches!(
            e.kind,
            FrameErrorKind::TooLong { len: 17, max: 16 }
        ));
        assert!(out.is_empty());
        let start = FrameEncoder::begin(&mut out);
        out.extend_from_slice(&[1u8; 17]);
        assert!(enc.finish(&mut out, start, FrameKind::DATA, 0).is_err());
        assert!(out.is_empty(), "the refused frame is removed");
        assert_eq!(
            enc.encode(FrameKind::DATA, 0, &[0u8; 16], &mut out)
                .unwrap()
                .number,
            0
        );
    }

    #[test]
    fn aad_is_the_header_prefix() {
        let h = FrameHeader {
            kind: FrameKind::SEALED,
            flags: FLAG_REKEY,
            len: 77,
            number: 9,
            payload_crc: 0xdead_beef,
        };
        assert_eq!(h.aad()[..], h.encode()[..AAD_LEN]);
        assert_eq!(FrameHeader::decode(&h.encode(), MAX_FRAME_LEN), Ok(h));
    }

    proptest! {
        #[test]
        fn round_trip_in_any_chunking(
            payloads in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 1..6),
            chunk in 1usize..97,
        ) {
            let refs: Vec<&[u8]> = payloads.iter().map(|p| p.as_slice()).collect();
            let bytes = stream(&refs);
            let frames = decode_all(&bytes, chunk).unwrap();
            prop_assert_eq!(frames.len(), payloads.len());
            for (f, p) in frames.iter().zip(&payloads) {
                prop_assert_eq!(&f.payload[..], &p[..]);
            }
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512), chunk in 1usize..64) {
            let mut dec = FrameDecoder::new(1024);
            for c in bytes.chunks(chunk) {
                dec.feed(c);
                while let Ok(Some(_)) = dec.poll() {}
            }
        }
    }
}
