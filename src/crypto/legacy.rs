//! LEGACY link mode `cipher = "blowfish"`: the seed paper's Blowfish link, made safe enough
//! to compare against. Off by default; TLS 1.3 ([`super::tls`]) is the production mode.
//!
//! ```text
//! client ── nonce_c (32 random bytes) ──► server
//! client ◄── nonce_s ─────────────────── server
//! client ── HMAC-SHA-256(PSK, both nonce frames) ──► server checks   (client proves first)
//! client ◄── HMAC-SHA-256(PSK, ...) ──── server
//! keys: HKDF-SHA-256(salt = both nonces, ikm = PSK) ─► one key pair per direction and epoch
//! frame: Blowfish-CTR (448-bit-capable, 256-bit keys here), then (encrypt-then-MAC)
//!        HMAC-SHA-256(direction, epoch, header fields: magic, version, kind, flags,
//!        length, number; ciphertext)
//! after REKEY_AFTER_BLOCKS blocks: next epoch's key, frame flagged
//! ```
//!
//! Invariants:
//! - The PSK is never sent and is at least [`MIN_PSK_LEN`] (32) random bytes, which rules
//!   out offline guessing; a stranger connecting to a collector learns nothing but a nonce
//!   ([`Handshake::finished`]).
//! - Session keys are bound to the transcript; the tag is checked (in constant time) before
//!   anything is decrypted.
//! - A key encrypts at most [`REKEY_AFTER_BLOCKS`] blocks, long before the 64-bit-block limit
//!   (Sweet32); a receiver refuses a sender that does not rekey.
//! - Sans-IO: the link (`wire::transport`) moves the frames.
//!
//! Why it exists: the system this project replaces streamed redo over TCP with Blowfish and
//! a pre-shared key; this reproduces it for comparison and for sites that cannot deploy
//! certificates yet, without its known weaknesses. What it still lacks against TLS 1.3:
//! forward secrecy (whoever later steals the PSK and recorded the traffic can decrypt it)
//! and certificate identities.

use std::fmt;
use std::path::{Path, PathBuf};

use blowfish::Blowfish;
use ctr::cipher::{InnerIvInit, KeyInit, StreamCipher, StreamCipherCoreWrapper};
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::{Digest, Sha256};

type HmacSha256 = Hmac<Sha256>;
type BlowfishCtr = ctr::CtrCore<Blowfish, ctr::flavors::Ctr64BE>;

/// Length of each side's handshake nonce.
pub const NONCE_LEN: usize = 32;

/// Length of a frame tag and of a handshake proof (HMAC-SHA-256).
pub const TAG_LEN: usize = 32;

/// Shortest accepted pre-shared key: 32 bytes (256 bits) of randomness.
pub const MIN_PSK_LEN: usize = 32;

/// Longest accepted pre-shared key.
pub const MAX_PSK_LEN: usize = 1024;

/// Blowfish block size: 64 bits.
pub const BLOCK_LEN: usize = 8;

/// The most 64-bit blocks one key may encrypt: 2^24 blocks = 128 MiB, per direction.
///
/// A 64-bit block cipher is safe only far below the birthday bound of 2^32 blocks (32 GiB):
/// after q blocks under one key, counter-mode output can be told from random with
/// advantage about q^2 / 2^64, which is what Sweet32 (CVE-2016-2183) turned into plaintext
/// recovery against CBC. With q = 2^24 that advantage is 2^-16 per key; the next smaller
/// power that would matter (2^26 = 512 MiB, advantage 2^-12) is what the issue allows at
/// most. Rekeying costs one HKDF expansion and a Blowfish key schedule (tens of
/// microseconds), so at 100 MB/s a rekey a second is free. A 8 MiB frame (2^20 blocks)
/// always fits in one epoch.
pub const REKEY_AFTER_BLOCKS: u64 = 1 << 24;

/// Domain-separation label of every derivation of this protocol.
const LABEL: &[u8] = b"redovault legacy blowfish link v1";

/// Which end of the link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The extractor (connects).
    Client,
    /// The collector (accepts).
    Server,
}

impl Role {
    fn label(self) -> &'static [u8] {
        match self {
            Role::Client => b"client",
            Role::Server => b"server",
        }
    }

    /// The direction this side sends in: client to server is 0, server to client is 1.
    fn send_direction(self) -> u8 {
        match self {
            Role::Client => 0,
            Role::Server => 1,
        }
    }
}

/// An error of the legacy channel: keys, handshake or a sealed frame.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LegacyError {
    /// The PSK file cannot be read or parsed.
    #[error("pre-shared key file {path}: {detail}")]
    PskFile {
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// The PSK has a bad length.
    #[error("pre-shared key of {len} bytes: must be {MIN_PSK_LEN} to {MAX_PSK_LEN} random bytes")]
    PskLength {
        /// Its length.
        len: usize,
    },
    /// The peer's handshake proof does not match: it does not know our PSK.
    #[error(
        "authentication failed: the peer's proof does not match our pre-shared key (wrong PSK, or not a redovault peer)"
    )]
    BadProof,
    /// The peer refused our handshake proof (it says why).
    #[error("the peer refused our pre-shared key proof: {reason}")]
    RefusedByPeer {
        /// What the peer said.
        reason: String,
    },
    /// A handshake frame is malformed.
    #[error("malformed handshake: {0}")]
    Handshake(String),
    /// A sealed frame's tag does not verify.
    #[error(
        "frame authentication failed (HMAC-SHA-256, key epoch {epoch}): the frame was altered, forged or replayed under a rewritten number"
    )]
    BadTag {
        /// The receiver's key epoch.
        epoch: u32,
    },
    /// A sealed frame is shorter than its tag.
    #[error("sealed frame of {len} bytes is shorter than its {TAG_LEN}-byte tag")]
    TooShort {
        /// Its length.
        len: usize,
    },
    /// The peer encrypted past the rekey limit without switching keys.
    #[error(
        "the peer sent {blocks} blocks under key epoch {epoch}, beyond the {limit}-block limit without rekeying (Sweet32)"
    )]
    RekeyMissed {
        /// Blocks the frame would bring the epoch to.
        blocks: u64,
        limit: u64,
        /// The key epoch.
        epoch: u32,
    },
    /// A frame larger than a whole key epoch.
    #[error("a frame of {blocks} blocks cannot fit in a key epoch of {limit} blocks")]
    FrameTooLarge {
        /// The frame's blocks.
        blocks: u64,
        limit: u64,
    },
    /// 2^32 key epochs used up (2^56 bytes at the default limit).
    #[error("key epochs exhausted")]
    EpochsExhausted,
}

/// The pre-shared key of the legacy link. Its bytes never appear in `Debug` output.
#[derive(Clone)]
pub struct Psk(Vec<u8>);

impl fmt::Debug for Psk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Psk({} bytes, redacted)", self.0.len())
    }
}

impl Psk {
    /// A PSK from raw bytes ([`MIN_PSK_LEN`]..=[`MAX_PSK_LEN`] bytes).
    pub fn new(bytes: Vec<u8>) -> Result<Psk, LegacyError> {
        if !(MIN_PSK_LEN..=MAX_PSK_LEN).contains(&bytes.len()) {
            return Err(LegacyError::PskLength { len: bytes.len() });
        }
        Ok(Psk(bytes))
    }

    /// A fresh random 32-byte PSK.
    pub fn generate() -> Psk {
        let mut k = vec![0u8; MIN_PSK_LEN];
        rand::rngs::OsRng.fill_bytes(&mut k);
        Psk(k)
    }

    /// The PSK as hex (what [`from_file`](Self::from_file) reads).
    pub fn to_hex(&self) -> String {
        hex::encode(&self.0)
    }

    /// Reads a PSK file: hex digits (surrounding whitespace ignored), at least
    /// [`MIN_PSK_LEN`] bytes. Errors name the file and never echo its content.
    pub fn from_file(path: &Path) -> Result<Psk, LegacyError> {
        let err = |detail: String| LegacyError::PskFile {
            path: path.to_path_buf(),
            detail,
        };
        let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
        let bytes = hex::decode(text.trim()).map_err(|e| {
            err(format!(
                "not hex ({e}); expected {} hex digits or more",
                2 * MIN_PSK_LEN
            ))
        })?;
        Psk::new(bytes).map_err(|e| err(e.to_string()))
    }
}

/// A fresh random handshake nonce.
pub fn random_nonce() -> [u8; NONCE_LEN] {
    let mut n = [0u8; NONCE_LEN];
    rand::rngs::OsRng.fill_bytes(&mut n);
    n
}

/// Number of 64-bit blocks that `len` bytes take in counter mode (each frame starts on a
/// fresh block, so no counter value is ever used twice under one key).
fn blocks_for(len: usize) -> u64 {
    (len as u64).div_ceil(BLOCK_LEN as u64)
}

/// Key material of one session after both nonces are known.
#[derive(Clone)]
pub struct Handshake {
    hk: Hkdf<Sha256>,
    transcript_hash: [u8; 32],
}

impl fmt::Debug for Handshake {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Handshake(redacted)")
    }
}

impl Handshake {
    /// Derives the session secret from the PSK and both nonces; `transcript` is every byte
    /// of the two nonce frames as sent (so the proofs bind the whole exchange).
    pub fn new(
        psk: &Psk,
        client_nonce: &[u8; NONCE_LEN],
        server_nonce: &[u8; NONCE_LEN],
        transcript: &[u8],
    ) -> Handshake {
        let mut salt = [0u8; 2 * NONCE_LEN];
        salt[..NONCE_LEN].copy_from_slice(client_nonce);
        salt[NONCE_LEN..].copy_from_slice(server_nonce);
        Handshake {
            hk: Hkdf::<Sha256>::new(Some(&salt), &psk.0),
            transcript_hash: Sha256::digest(transcript).into(),
        }
    }

    fn expand<const N: usize>(&self, parts: &[&[u8]]) -> [u8; N] {
        let mut info: Vec<&[u8]> = Vec::with_capacity(parts.len() + 2);
        info.push(LABEL);
        info.extend_from_slice(parts);
        info.push(&self.transcript_hash);
        let mut out = [0u8; N];
        self.hk
            .expand_multi_info(&info, &mut out)
            .expect("HKDF-SHA-256 yields up to 8160 bytes; N is at most 64");
        out
    }

    /// The proof that `who` knows the PSK: HMAC-SHA-256 over the transcript.
    pub fn finished(&self, who: Role) -> [u8; TAG_LEN] {
        let key: [u8; 32] = self.expand(&[b"finished"]);
        let mut mac = <HmacSha256 as Mac>::new_from_slice(&key).expect(HMAC_ANY_KEY);
        mac.update(who.label());
        mac.update(&self.transcript_hash);
        mac.finalize().into_bytes().into()
    }

    /// Checks `who`'s proof in constant time.
    pub fn verify_finished(&self, who: Role, proof: &[u8]) -> Result<(), LegacyError> {
        let key: [u8; 32] = self.expand(&[b"finished"]);
        let mut mac = <HmacSha256 as Mac>::new_from_slice(&key).expect(HMAC_ANY_KEY);
        mac.update(who.label());
        mac.update(&self.transcript_hash);
        mac.verify_slice(proof).map_err(|_| LegacyError::BadProof)
    }

    /// The two halves of the channel for `me`: a sealer for what it sends and an opener
    /// for what it receives. The sealer rekeys after `rekey_after_blocks` (clamped to
    /// 1..=[`REKEY_AFTER_BLOCKS`]); the opener refuses a peer past [`REKEY_AFTER_BLOCKS`].
    pub fn into_channel(self, me: Role, rekey_after_blocks: u64) -> (Sealer, Opener) {
        let send = me.send_direction();
        let sealer = Sealer(Keys::new(
            self.clone(),
            send,
            rekey_after_blocks.clamp(1, REKEY_AFTER_BLOCKS),
        ));
        let opener = Opener(Keys::new(self, 1 - send, REKEY_AFTER_BLOCKS));
        (sealer, opener)
    }
}

/// Why creating an HMAC from a derived key cannot fail.
const HMAC_ANY_KEY: &str = "HMAC-SHA-256 accepts keys of any length";

/// One direction's key schedule and counter.
struct Keys {
    hs: Handshake,
    direction: u8,
    epoch: u32,
    /// Blocks used under the current key.
    blocks: u64,
    limit: u64,
    cipher: Blowfish,
    mac: HmacSha256,
}

impl Keys {
    fn new(hs: Handshake, direction: u8, limit: u64) -> Keys {
        let (cipher, mac) = Self::derive(&hs, direction, 0);
        Keys {
            hs,
            direction,
            epoch: 0,
            blocks: 0,
            limit,
            cipher,
            mac,
        }
    }

    fn derive(hs: &Handshake, direction: u8, epoch: u32) -> (Blowfish, HmacSha256) {
        let okm: [u8; 64] = hs.expand(&[b"key", &[direction], &epoch.to_be_bytes()]);
        let (enc, mac) = okm.split_at(32);
        let cipher =
            Blowfish::new_from_slice(enc).expect("Blowfish takes 4 to 56 key bytes: 32 fit");
        let mac = <HmacSha256 as Mac>::new_from_slice(mac).expect(HMAC_ANY_KEY);
        (cipher, mac)
    }

    fn next_epoch(&mut self) -> Result<(), LegacyError> {
        let epoch = self
            .epoch
            .checked_add(1)
            .ok_or(LegacyError::EpochsExhausted)?;
        let (cipher, mac) = Self::derive(&self.hs, self.direction, epoch);
        self.epoch = epoch;
        self.blocks = 0;
        self.cipher = cipher;
        self.mac = mac;
        Ok(())
    }

    fn tag(&self, aad: &[u8], ciphertext: &[u8]) -> HmacSha256 {
        let mut mac = self.mac.clone();
        mac.update(&[self.direction]);
        mac.update(&self.epoch.to_be_bytes());
        mac.update(aad);
        mac.update(ciphertext);
        mac
    }

    fn apply_keystream(&mut self, buf: &mut [u8]) {
        let iv = self.blocks.to_be_bytes();
        let core = BlowfishCtr::inner_iv_init(self.cipher.clone(), &iv.into());
        StreamCipherCoreWrapper::from_core(core).apply_keystream(buf);
        self.blocks += blocks_for(buf.len());
    }
}

/// Seals the frames one side sends. See the module docs.
pub struct Sealer(Keys);

impl fmt::Debug for Sealer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Sealer(epoch {}, {} blocks)",
            self.0.epoch, self.0.blocks
        )
    }
}

impl Sealer {
    /// Call before sealing a frame of `plaintext_len` bytes: switches to the next key epoch
    /// if the frame would cross the rekey limit, and returns whether it did (the frame must
    /// then carry the rekey flag, which is part of what [`seal`](Self::seal) authenticates).
    pub fn prepare(&mut self, plaintext_len: usize) -> Result<bool, LegacyError> {
        let k = &mut self.0;
        let need = blocks_for(plaintext_len);
        if need > k.limit {
            return Err(LegacyError::FrameTooLarge {
                blocks: need,
                limit: k.limit,
            });
        }
        if k.blocks + need > k.limit {
            k.next_epoch()?;
            return Ok(true);
        }
        Ok(false)
    }

    /// Encrypts `buf` in place and returns the tag over `aad` (the frame header fields,
    /// `FrameHeader::aad`) and the ciphertext. Refuses to cross the rekey limit (call
    /// [`prepare`](Self::prepare) first).
    pub fn seal(&mut self, aad: &[u8], buf: &mut [u8]) -> Result<[u8; TAG_LEN], LegacyError> {
        let k = &mut self.0;
        let need = blocks_for(buf.len());
        if k.blocks + need > k.limit {
            return Err(LegacyError::RekeyMissed {
                blocks: k.blocks + need,
                limit: k.limit,
                epoch: k.epoch,
            });
        }
        k.apply_keystream(buf);
        Ok(k.tag(aad, buf).finalize().into_bytes().into())
    }

    /// The current key epoch (0 until the first rekey).
    pub fn epoch(&self) -> u32 {
        self.0.epoch
    }
}

/// Opens the frames one side receives. See the module docs.
pub struct Opener(Keys);

impl fmt::Debug for Opener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Opener(epoch {}, {} blocks)",
            self.0.epoch, self.0.blocks
        )
    }
}

impl Opener {
    /// Verifies and decrypts a sealed payload (ciphertext then tag) in place; returns the
    /// plaintext length (the plaintext is `payload[..len]`). `rekey` is the frame's rekey
    /// flag; `aad` its header fields. Nothing is decrypted unless the tag verifies.
    pub fn open(
        &mut self,
        aad: &[u8],
        rekey: bool,
        payload: &mut [u8],
    ) -> Result<usize, LegacyError> {
        let len = payload
            .len()
            .checked_sub(TAG_LEN)
            .ok_or(LegacyError::TooShort { len: payload.len() })?;
        let (ciphertext, tag) = payload.split_at_mut(len);
        let k = &mut self.0;
        if rekey {
            k.next_epoch()?;
        }
        let need = blocks_for(ciphertext.len());
        if k.blocks + need > k.limit {
            return Err(LegacyError::RekeyMissed {
                blocks: k.blocks + need,
                limit: k.limit,
                epoch: k.epoch,
            });
        }
        k.tag(aad, ciphertext)
            .verify_slice(tag)
            .map_err(|_| LegacyError::BadTag { epoch: k.epoch })?;
        k.apply_keystream(ciphertext);
        Ok(len)
    }

    /// The current key epoch.
    pub fn epoch(&self) -> u32 {
        self.0.epoch
    }

    #[cfg(test)]
    fn with_limit(mut self, limit: u64) -> Opener {
        self.0.limit = limit;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(limit: u64) -> ((Sealer, Opener), (Sealer, Opener)) {
        let psk = Psk::generate();
        let (cn, sn) = (random_nonce(), random_nonce());
        let client = Handshake::new(&psk, &cn, &sn, b"transcript");
        let server = Handshake::new(&psk, &cn, &sn, b"transcript");
        (
            client.into_channel(Role::Client, limit),
            server.into_channel(Role::Server, limit),
        )
    }

    fn seal(s: &mut Sealer, aad: &[u8], plain: &[u8]) -> (bool, Vec<u8>) {
        let rekey = s.prepare(plain.len()).unwrap();
        let mut buf = plain.to_vec();
        let tag = s.seal(aad, &mut buf).unwrap();
        buf.extend_from_slice(&tag);
        (rekey, buf)
    }

    #[test]
    fn seal_open_both_directions() {
        let ((mut cs, mut co), (mut ss, mut so)) = pair(REKEY_AFTER_BLOCKS);
        for i in 0..10u8 {
            let plain = vec![i; 100 + usize::from(i)];
            let (rekey, mut sealed) = seal(&mut cs, b"aad", &plain);
            assert!(!rekey);
            assert_ne!(&sealed[..plain.len()], &plain[..], "encrypted");
            let n = so.open(b"aad", rekey, &mut sealed).unwrap();
            assert_eq!(&sealed[..n], &plain[..]);
            let (rekey, mut back) = seal(&mut ss, b"aad2", &plain);
            let n = co.open(b"aad2", rekey, &mut back).unwrap();
            assert_eq!(&back[..n], &plain[..]);
        }
    }

    #[test]
    fn directions_use_different_keys() {
        let ((mut cs, _), (mut ss, _)) = pair(REKEY_AFTER_BLOCKS);
        let (_, a) = seal(&mut cs, b"", &[0u8; 64]);
        let (_, b) = seal(&mut ss, b"", &[0u8; 64]);
        assert_ne!(a, b);
    }

    #[test]
    fn any_flipped_bit_or_other_header_fails_the_tag() {
        let ((mut cs, _), (_, so)) = pair(REKEY_AFTER_BLOCKS);
        let (rekey, sealed) = seal(&mut cs, b"header", b"some redo bytes");
        for bit in 0..sealed.len() * 8 {
            let mut s = sealed.clone();
            s[bit / 8] ^= 1 << (bit % 8);
            let mut o = Opener(Keys::new(so.0.hs.clone(), 0, REKEY_AFTER_BLOCKS));
            assert_eq!(
                o.open(b"header", rekey, &mut s),
                Err(LegacyError::BadTag { epoch: 0 }),
                "bit {bit}"
            );
        }
        let mut o = Opener(Keys::new(so.0.hs.clone(), 0, REKEY_AFTER_BLOCKS));
        let mut s = sealed.clone();
        assert!(matches!(
            o.open(b"HEADER", rekey, &mut s),
            Err(LegacyError::BadTag { .. })
        ));
        // Replayed: the same sealed frame a second time fails (the counter moved on).
        let mut o = Opener(Keys::new(so.0.hs.clone(), 0, REKEY_AFTER_BLOCKS));
        let mut s = sealed.clone();
        o.open(b"header", rekey, &mut s).unwrap();
        let mut s = sealed.clone();
        let n = o.open(b"header", rekey, &mut s).unwrap();
        assert_ne!(
            &s[..n],
            b"some redo bytes",
            "a replay under a moved counter decrypts to garbage; the frame number check refuses it first"
        );
        // Too short.
        assert_eq!(
            o.open(b"", false, &mut [0u8; 5]),
            Err(LegacyError::TooShort { len: 5 })
        );
    }

    #[test]
    fn rekey_happens_before_the_limit_and_is_required() {
        // 64-block epochs; 100-byte frames take 13 blocks: 4 frames fit, the 5th rekeys.
        let ((mut cs, _), (_, mut so)) = pair(64);
        let mut epochs = Vec::new();
        let mut ciphertexts = Vec::new();
        for i in 0..20 {
            let (rekey, mut sealed) = seal(&mut cs, b"h", &[0u8; 100]);
            assert_eq!(rekey, i > 0 && i % 4 == 0, "frame {i}");
            ciphertexts.push(sealed[..100].to_vec());
            let n = so.open(b"h", rekey, &mut sealed).unwrap();
            assert_eq!(&sealed[..n], &[0u8; 100]);
            epochs.push(cs.epoch());
            assert_eq!(so.epoch(), cs.epoch());
        }
        assert_eq!(cs.epoch(), 4);
        // Frame 0 and frame 4 use the same counter values under different keys.
        assert_ne!(ciphertexts[0], ciphertexts[4]);
        // A receiver refuses a sender that goes past its limit without rekeying.
        let ((mut cs, _), (_, so)) = pair(REKEY_AFTER_BLOCKS);
        let mut so = so.with_limit(64);
        for _ in 0..4 {
            let (rekey, mut sealed) = seal(&mut cs, b"h", &[1u8; 100]);
            so.open(b"h", rekey, &mut sealed).unwrap();
        }
        let (rekey, mut sealed) = seal(&mut cs, b"h", &[1u8; 100]);
        assert!(!rekey);
        assert!(matches!(
            so.open(b"h", rekey, &mut sealed),
            Err(LegacyError::RekeyMissed {
                blocks: 65,
                limit: 64,
                epoch: 0
            })
        ));
        // A sealer never crosses its limit, even if prepare is skipped.
        let ((mut cs, _), _) = pair(8);
        let mut buf = [0u8; 72];
        assert!(matches!(
            cs.seal(b"", &mut buf),
            Err(LegacyError::RekeyMissed { .. })
        ));
        assert!(matches!(
            cs.prepare(72),
            Err(LegacyError::FrameTooLarge {
                blocks: 9,
                limit: 8
            })
        ));
    }

    #[test]
    fn proofs_need_the_same_psk_and_transcript() {
        let (cn, sn) = (random_nonce(), random_nonce());
        let psk = Psk::generate();
        let a = Handshake::new(&psk, &cn, &sn, b"t");
        let b = Handshake::new(&psk, &cn, &sn, b"t");
        b.verify_finished(Role::Client, &a.finished(Role::Client))
            .unwrap();
        // A server proof is not a client proof (no reflection).
        assert_eq!(
            b.verify_finished(Role::Client, &a.finished(Role::Server)),
            Err(LegacyError::BadProof)
        );
        let wrong = Handshake::new(&Psk::generate(), &cn, &sn, b"t");
        assert_eq!(
            wrong.verify_finished(Role::Client, &a.finished(Role::Client)),
            Err(LegacyError::BadProof)
        );
        let other_transcript = Handshake::new(&psk, &cn, &sn, b"u");
        assert_eq!(
            other_transcript.verify_finished(Role::Client, &a.finished(Role::Client)),
            Err(LegacyError::BadProof)
        );
        let other_nonce = Handshake::new(&psk, &cn, &random_nonce(), b"t");
        assert_eq!(
            other_nonce.verify_finished(Role::Client, &a.finished(Role::Client)),
            Err(LegacyError::BadProof)
        );
    }

    #[test]
    fn psk_files_are_checked_and_never_echoed() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("link.psk");
        let psk = Psk::generate();
        std::fs::write(&p, format!("{}\n", psk.to_hex())).unwrap();
        assert_eq!(Psk::from_file(&p).unwrap().0, psk.0);
        assert!(!format!("{psk:?}").contains(&psk.to_hex()[..8]));
        std::fs::write(&p, "secretsecret").unwrap();
        let e = Psk::from_file(&p).unwrap_err().to_string();
        assert!(e.contains("link.psk") && !e.contains("secretsecret"), "{e}");
        std::fs::write(&p, "00ff").unwrap();
        let e = Psk::from_file(&p).unwrap_err().to_string();
        assert!(e.contains("link.psk") && e.contains("2 bytes"), "{e}");
        let e = Psk::from_file(&dir.path().join("missing"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("missing"), "{e}");
    }
}
