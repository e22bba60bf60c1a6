//! Sealing to the offline **recovery key**: what the collector puts into WORM can be read
//! only by whoever holds a private key that never touches a server.
//!
//! ```text
//! piece ─► HPKE (RFC 9180) base mode, DHKEM(X25519, HKDF-SHA256) / HKDF-SHA256 /
//!          AES-256-GCM, fresh ephemeral key `enc` per piece ─► public recovery key
//! key id in every piece = SHA-256 of the 32-byte public key
//! private key (offline, recovery team): PKCS#8 PEM, `openssl genpkey -algorithm X25519`,
//!   owner-only (chmod 600)
//! public key (collector): SubjectPublicKeyInfo PEM, `openssl pkey -pubout`
//!   (deploy/recovery-key.sh; any HPKE implementation reads both)
//! ```
//!
//! Invariants: the collector cannot decrypt what it wrote; nothing about one piece helps with
//! another; a recovery with the wrong key says so (key id) before trying to decrypt.
//!
//! Why not the at-rest key ring: it lives on the collector host, so a copy sealed with it
//! would be lost with that host (or readable by whoever took it).

use std::fmt;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use base64::Engine as _;
use hpke::aead::AesGcm256;
use hpke::kdf::HkdfSha256;
use hpke::kem::X25519HkdfSha256;
use hpke::{Deserializable, Kem as _, OpModeR, OpModeS, Serializable};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

type Kem = X25519HkdfSha256;

/// Length of the HPKE encapsulated key (an X25519 public key).
pub const ENC_LEN: usize = 32;
/// Length of the AES-256-GCM tag that ends every ciphertext.
pub const TAG_LEN: usize = 16;
/// Length of a recovery key id (SHA-256 of the public key).
pub const KEY_ID_LEN: usize = 32;

/// DER of a PKCS#8 (RFC 5958 v1) X25519 private key, before the 32 key bytes (RFC 8410).
const PKCS8_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x6e, 0x04, 0x22, 0x04, 0x20,
];
/// DER of an X25519 SubjectPublicKeyInfo, before the 32 key bytes (RFC 8410).
const SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x6e, 0x03, 0x21, 0x00,
];
/// A key file larger than this is not one of ours.
const MAX_KEY_FILE_LEN: u64 = 16 * 1024;

/// Why a recovery key cannot be used. Never contains key material.
#[derive(Debug, thiserror::Error)]
pub enum RecoveryKeyError {
    /// The file cannot be read.
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// The private key file is readable by others than its owner.
    #[error(
        "{path}: the private recovery key is readable by group or others (mode {mode:o}); \
         chmod 600 it, and keep it off every server"
    )]
    Permissions {
        path: String,
        /// Its mode bits.
        mode: u32,
    },
    /// Not a PEM file of the expected kind.
    #[error("{origin}: {detail}")]
    Format {
        /// The file (or a description of the text).
        origin: String,
        /// What is wrong.
        detail: String,
    },
}

/// Why a sealed message does not open.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OpenError {
    /// The message names another recovery key.
    #[error("sealed to recovery key {found}, this key is {ours}: use the matching private key")]
    OtherKey {
        /// The key id in the message.
        found: String,
        /// This key's id.
        ours: String,
    },
    /// The encapsulated key is not a valid X25519 public key.
    #[error("the encapsulated key is malformed")]
    BadEnc,
    /// Authentication failed: the bytes (or the header they are bound to) were altered.
    #[error("authentication failed: the sealed bytes or their header were altered")]
    Tampered,
}

/// The recovery public key: all the collector holds.
#[derive(Clone)]
pub struct RecoveryPublicKey {
    raw: [u8; 32],
    key: <Kem as hpke::Kem>::PublicKey,
}

impl fmt::Debug for RecoveryPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RecoveryPublicKey({})", hex::encode(self.id()))
    }
}

/// The recovery private key: offline, with the recovery team.
pub struct RecoveryPrivateKey {
    key: <Kem as hpke::Kem>::PrivateKey,
    public: RecoveryPublicKey,
}

impl fmt::Debug for RecoveryPrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "RecoveryPrivateKey(id {})",
            hex::encode(self.public.id())
        )
    }
}

fn read_key_file(path: &Path) -> Result<(String, u32), RecoveryKeyError> {
    let io = |source| RecoveryKeyError::Io {
        path: path.display().to_string(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(io)?;
    if meta.len() > MAX_KEY_FILE_LEN {
        return Err(RecoveryKeyError::Format {
            origin: path.display().to_string(),
            detail: format!("{} bytes: too large for a key file", meta.len()),
        });
    }
    let text = std::fs::read_to_string(path).map_err(io)?;
    Ok((text, meta.permissions().mode()))
}

/// The DER inside the one PEM block labelled `label`.
fn pem_body(text: &str, label: &str, origin: &str) -> Result<Zeroizing<Vec<u8>>, RecoveryKeyError> {
    let bad = |detail: String| RecoveryKeyError::Format {
        origin: origin.to_string(),
        detail,
    };
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = text
        .find(&begin)
        .ok_or_else(|| bad(format!("no \"{begin}\" line")))?;
    let rest = &text[start + begin.len()..];
    let stop = rest
        .find(&end)
        .ok_or_else(|| bad(format!("no \"{end}\" line")))?;
    let b64: Zeroizing<String> = Zeroizing::new(
        rest[..stop]
            .chars()
            .filter(|c| !c.is_ascii_whitespace())
            .collect(),
    );
    base64::engine::general_purpose::STANDARD
        .decode(b64.as_bytes())
        .map(Zeroizing::new)
        .map_err(|e| bad(format!("the {label} block is not base64: {e}")))
}

/// The 32 key bytes after a fixed DER prefix (RFC 8410 X25519 encodings have no variants).
fn key_after(
    der: &[u8],
    prefix: &[u8],
    what: &str,
    origin: &str,
) -> Result<Zeroizing<[u8; 32]>, RecoveryKeyError> {
    match der.strip_prefix(prefix) {
        Some(k) if k.len() == 32 => {
            let mut out = Zeroizing::new([0u8; 32]);
            out.copy_from_slice(k);
            Ok(out)
        }
        _ => Err(RecoveryKeyError::Format {
            origin: origin.to_string(),
            detail: format!(
                "not an X25519 {what} (make the pair with deploy/recovery-key.sh, or \
                 `openssl genpkey -algorithm X25519`)"
            ),
        }),
    }
}

impl RecoveryPublicKey {
    /// Reads a SubjectPublicKeyInfo PEM file.
    pub fn load(path: &Path) -> Result<RecoveryPublicKey, RecoveryKeyError> {
        let (text, _) = read_key_file(path)?;
        RecoveryPublicKey::from_pem(&text, &path.display().to_string())
    }

    /// Parses SubjectPublicKeyInfo PEM text; `origin` names it in errors.
    pub fn from_pem(text: &str, origin: &str) -> Result<RecoveryPublicKey, RecoveryKeyError> {
        let der = pem_body(text, "PUBLIC KEY", origin)?;
        let raw = key_after(&der, &SPKI_PREFIX, "public key", origin)?;
        RecoveryPublicKey::from_raw(*raw, origin)
    }

    fn from_raw(raw: [u8; 32], origin: &str) -> Result<RecoveryPublicKey, RecoveryKeyError> {
        let key = <Kem as hpke::Kem>::PublicKey::from_bytes(&raw).map_err(|e| {
            RecoveryKeyError::Format {
                origin: origin.to_string(),
                detail: format!("not a usable X25519 public key: {e}"),
            }
        })?;
        Ok(RecoveryPublicKey { raw, key })
    }

    /// The key id: SHA-256 of the 32-byte public key.
    pub fn id(&self) -> [u8; KEY_ID_LEN] {
        Sha256::digest(self.raw).into()
    }

    /// The SubjectPublicKeyInfo PEM text.
    pub fn to_pem(&self) -> String {
        let mut der = SPKI_PREFIX.to_vec();
        der.extend_from_slice(&self.raw);
        pem("PUBLIC KEY", &der)
    }

    /// Seals `plaintext` to this key, bound to `aad`: returns the encapsulated key and the
    /// ciphertext followed by its tag. A fresh ephemeral key every call.
    pub fn seal(&self, info: &[u8], aad: &[u8], plaintext: &[u8]) -> ([u8; ENC_LEN], Vec<u8>) {
        let mut rng = rand::rngs::OsRng;
        let mut buf = plaintext.to_vec();
        // Encapsulating to a key that `from_bytes` accepted, and sealing one message in a
        // fresh context, cannot fail; a failure would be a bug in the HPKE crate.
        let (enc, tag) = hpke::single_shot_seal_in_place_detached::<AesGcm256, HkdfSha256, Kem, _>(
            &OpModeS::Base,
            &self.key,
            info,
            &mut buf,
            aad,
            &mut rng,
        )
        .expect("HPKE seal to a validated X25519 key");
        buf.extend_from_slice(&tag.to_bytes());
        let mut e = [0u8; ENC_LEN];
        e.copy_from_slice(&enc.to_bytes());
        (e, buf)
    }
}

fn pem(label: &str, der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut s = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        s.push_str(&String::from_utf8_lossy(line));
        s.push('\n');
    }
    s.push_str(&format!("-----END {label}-----\n"));
    s
}

impl RecoveryPrivateKey {
    /// A new key pair from the OS's random source (tests and the drill; production pairs
    /// come from `deploy/recovery-key.sh` on an offline machine).
    pub fn generate() -> RecoveryPrivateKey {
        let (key, public) = Kem::gen_keypair(&mut rand::rngs::OsRng);
        let mut raw = [0u8; 32];
        raw.copy_from_slice(&public.to_bytes());
        RecoveryPrivateKey {
            key,
            public: RecoveryPublicKey { raw, key: public },
        }
    }

    /// Reads a PKCS#8 PEM file; refuses one that group or others may read.
    pub fn load(path: &Path) -> Result<RecoveryPrivateKey, RecoveryKeyError> {
        let (text, mode) = read_key_file(path)?;
        let text = Zeroizing::new(text);
        if mode & 0o077 != 0 {
            return Err(RecoveryKeyError::Permissions {
                path: path.display().to_string(),
                mode: mode & 0o777,
            });
        }
        RecoveryPrivateKey::from_pem(&text, &path.display().to_string())
    }

    /// Parses PKCS#8 PEM text; `origin` names it in errors.
    pub fn from_pem(text: &str, origin: &str) -> Result<RecoveryPrivateKey, RecoveryKeyError> {
        let der = pem_body(text, "PRIVATE KEY", origin)?;
        let raw = key_after(&der, &PKCS8_PREFIX, "private key (PKCS#8)", origin)?;
        let key = <Kem as hpke::Kem>::PrivateKey::from_bytes(&raw[..]).map_err(|e| {
            RecoveryKeyError::Format {
                origin: origin.to_string(),
                detail: format!("not a usable X25519 private key: {e}"),
            }
        })?;
        let public = <Kem as hpke::Kem>::sk_to_pk(&key);
        let mut praw = [0u8; 32];
        praw.copy_from_slice(&public.to_bytes());
        Ok(RecoveryPrivateKey {
            key,
            public: RecoveryPublicKey {
                raw: praw,
                key: public,
            },
        })
    }

    /// The PKCS#8 PEM text (write it owner-only).
    pub fn to_pem(&self) -> Zeroizing<String> {
        let mut der = Zeroizing::new(PKCS8_PREFIX.to_vec());
        der.extend_from_slice(&self.key.to_bytes());
        Zeroizing::new(pem("PRIVATE KEY", &der))
    }

    /// The matching public key.
    pub fn public(&self) -> &RecoveryPublicKey {
        &self.public
    }

    /// Opens what [`RecoveryPublicKey::seal`] made for key `key_id` with the same `info` and
    /// `aad`; `sealed` is the ciphertext followed by its tag.
    pub fn open(
        &self,
        key_id: &[u8; KEY_ID_LEN],
        enc: &[u8; ENC_LEN],
        info: &[u8],
        aad: &[u8],
        sealed: &[u8],
    ) -> Result<Vec<u8>, OpenError> {
        let ours = self.public.id();
        if *key_id != ours {
            return Err(OpenError::OtherKey {
                found: hex::encode(key_id),
                ours: hex::encode(ours),
            });
        }
        let enc =
            <Kem as hpke::Kem>::EncappedKey::from_bytes(enc).map_err(|_| OpenError::BadEnc)?;
        let split = sealed
            .len()
            .checked_sub(TAG_LEN)
            .ok_or(OpenError::Tampered)?;
        let (ct, tag) = sealed.split_at(split);
        let tag =
            hpke::aead::AeadTag::<AesGcm256>::from_bytes(tag).map_err(|_| OpenError::Tampered)?;
        let mut buf = ct.to_vec();
        hpke::single_shot_open_in_place_detached::<AesGcm256, HkdfSha256, Kem>(
            &OpModeR::Base,
            &self.key,
            &enc,
            info,
            &mut buf,
            aad,
            &tag,
        )
        .map_err(|_| OpenError::Tampered)?;
        Ok(buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INFO: &[u8] = b"redovault test";

    #[test]
    fn seal_open_round_trip_and_tamper() {
        let sk = RecoveryPrivateKey::generate();
        let pk = sk.public().clone();
        let (enc, ct) = pk.seal(INFO, b"header", b"redo bytes");
        assert_eq!(ct.len(), 10 + TAG_LEN);
        let id = pk.id();
        assert_eq!(
            sk.open(&id, &enc, INFO, b"header", &ct).unwrap(),
            b"redo bytes"
        );
        // Each seal uses a fresh ephemeral key.
        assert_ne!(pk.seal(INFO, b"header", b"redo bytes").0, enc);
        assert_eq!(
            sk.open(&id, &enc, INFO, b"other", &ct),
            Err(OpenError::Tampered)
        );
        assert_eq!(
            sk.open(&id, &enc, b"x", b"header", &ct),
            Err(OpenError::Tampered)
        );
        let mut flipped = ct.clone();
        flipped[3] ^= 1;
        assert_eq!(
            sk.open(&id, &enc, INFO, b"header", &flipped),
            Err(OpenError::Tampered)
        );
        assert_eq!(
            sk.open(&id, &enc, INFO, b"header", &ct[..5]),
            Err(OpenError::Tampered)
        );
        let other = RecoveryPrivateKey::generate();
        assert!(matches!(
            other.open(&id, &enc, INFO, b"header", &ct),
            Err(OpenError::OtherKey { .. })
        ));
    }

    #[test]
    fn pem_round_trip() {
        let sk = RecoveryPrivateKey::generate();
        let again = RecoveryPrivateKey::from_pem(&sk.to_pem(), "mem").unwrap();
        assert_eq!(again.public().id(), sk.public().id());
        let pk = RecoveryPublicKey::from_pem(&sk.public().to_pem(), "mem").unwrap();
        assert_eq!(pk.id(), sk.public().id());
        let (enc, ct) = pk.seal(INFO, b"", b"x");
        assert_eq!(again.open(&pk.id(), &enc, INFO, b"", &ct).unwrap(), b"x");
    }

    #[test]
    fn openssl_keys_are_read() {
        // Made with `openssl genpkey -algorithm X25519` and `openssl pkey -pubout`.
        let private = "-----BEGIN PRIVATE KEY-----\n\
            MC4CAQAwBQYDK2VuBCIEIKBmU+0LJyJ0oFbW4CZ8YiCG/RrnrgxyHS05uPM6zmpr\n\
            -----END PRIVATE KEY-----\n";
        let public = "-----BEGIN PUBLIC KEY-----\n\
            MCowBQYDK2VuAyEAH6vClCYZRpt14Y22ERn5sOSqfj+aXBkNMDItc/bmUAE=\n\
            -----END PUBLIC KEY-----\n";
        let sk = RecoveryPrivateKey::from_pem(private, "openssl.key").unwrap();
        let pk = RecoveryPublicKey::from_pem(public, "openssl.pub").unwrap();
        assert_eq!(sk.public().id(), pk.id());
    }

    #[test]
    fn bad_files_are_named_and_refused() {
        let e = RecoveryPublicKey::from_pem("hello", "k.pub")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("k.pub: no \"-----BEGIN PUBLIC KEY-----\""),
            "{e}"
        );
        let sk = RecoveryPrivateKey::generate();
        // A private key where a public one belongs (and the other way round) is refused.
        assert!(RecoveryPublicKey::from_pem(&sk.to_pem(), "k.pub").is_err());
        assert!(RecoveryPrivateKey::from_pem(&sk.public().to_pem(), "k.key").is_err());
        let e = RecoveryPublicKey::from_pem(
            "-----BEGIN PUBLIC KEY-----\n!!!\n-----END PUBLIC KEY-----\n",
            "k.pub",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("not base64"), "{e}");
        // An Ed25519 public key (another curve's OID) is not a recovery key.
        let ed = "-----BEGIN PUBLIC KEY-----\n\
            MCowBQYDK2VwAyEA8xyyogzpnxr49pBJhAfNwJET0Oa3eOt7hrofuS8qJLw=\n\
            -----END PUBLIC KEY-----\n";
        let e = RecoveryPublicKey::from_pem(ed, "ed.pub")
            .unwrap_err()
            .to_string();
        assert!(e.contains("not an X25519 public key"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("r.key");
        std::fs::write(&p, sk.to_pem().as_bytes()).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = RecoveryPrivateKey::load(&p).unwrap_err().to_string();
        assert!(e.contains("chmod 600"), "{e}");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(
            RecoveryPrivateKey::load(&p).unwrap().public().id(),
            sk.public().id()
        );
    }
}
