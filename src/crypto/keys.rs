//! The collector's key ring: AES-256 keys for data at rest, loaded from a key file.
//!
//! ```toml
//! # redovault collector keys: each is 32 random bytes as 64 hex digits.
//! active = "k2"            # the key that seals new segments
//!
//! [keys]
//! k1 = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"   # old, still read
//! k2 = "202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f"
//! ```
//!
//! A small, strict subset of TOML (TOML tools can read it), parsed line by line so that every
//! error names the file and the line:
//! - `active` comes before `[keys]`, as TOML requires of top-level keys;
//! - key ids are 1 to 64 characters of `A-Z a-z 0-9 _ -` (TOML bare keys);
//! - a key is exactly 64 hex digits (either case), not all zeros (a placeholder is refused);
//! - blank lines and `#` comments (whole-line or after a value) are allowed; anything else
//!   (other tables, other keys, duplicates) is an error.
//!
//! Invariants:
//! - The active key seals every new segment; every other key still opens the segments it
//!   sealed (each segment header names its key id, so opening never guesses). Rotation: add
//!   a key, make it active, restart; keep the old key as long as a segment it sealed is kept.
//! - The file is a regular file readable by its owner only (`chmod 600`): group or world
//!   permission bits make [`KeyRing::load`] refuse it, as `ssh` does with private keys.
//! - Errors never contain key material. Keys live in [`Zeroizing`] buffers wiped when the
//!   ring is dropped (so a later core dump, swapped freed page or heap read bug is less
//!   likely to find them); the AES round keys are wiped by the `aes` crate's `zeroize`.

use std::collections::BTreeMap;
use std::fmt;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

/// Length of an AES-256 key in bytes.
pub const KEY_LEN: usize = 32;

/// A key file larger than this is not a key file (a few hundred keys fit in 64 KiB).
pub const MAX_KEY_FILE_LEN: u64 = 64 * 1024;

/// Longest key id, in bytes.
pub const MAX_KEY_ID_LEN: usize = 64;

/// The name of one key, as written in the key file and in every segment header it seals.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KeyId(String);

impl KeyId {
    /// A key id: 1 to 64 characters of `A-Z a-z 0-9 _ -`; `None` otherwise.
    pub fn parse(s: &str) -> Option<KeyId> {
        let ok = !s.is_empty()
            && s.len() <= MAX_KEY_ID_LEN
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        ok.then(|| KeyId(s.to_string()))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why a key ring could not be loaded or built. Never carries key material.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The key file could not be opened or read.
    #[error("key file {}: {source}", file.display())]
    Io {
        /// The key file.
        file: PathBuf,
        source: std::io::Error,
    },
    /// The key file is readable or writable by group or others.
    #[error(
        "key file {}: permissions {mode:04o} allow group or other access; \
         refusing it (run: chmod 600 {})",
        file.display(),
        file.display()
    )]
    Permissions {
        /// The key file.
        file: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The key file is not a regular file, or too large to be one.
    #[error("key file {}: {what}", file.display())]
    NotAKeyFile {
        /// The key file.
        file: PathBuf,
        /// What is wrong with it.
        what: String,
    },
    /// A line that the format does not allow.
    #[error("key file {}, line {line}: {message}", file.display())]
    Syntax {
        /// The key file.
        file: PathBuf,
        /// Line number, from 1.
        line: usize,
        /// What is wrong, never the key itself.
        message: String,
    },
    /// No `active = "..."` line.
    #[error("key file {}: no `active = \"<key id>\"` line before [keys]", file.display())]
    NoActive {
        /// The key file.
        file: PathBuf,
    },
    /// `active` names a key that the file does not define.
    #[error("key file {}, line {line}: active key {id:?} is not defined under [keys]", file.display())]
    ActiveUnknown {
        /// The key file.
        file: PathBuf,
        /// Line of the `active` setting.
        line: usize,
        /// The id it names.
        id: String,
    },
    /// A key ring built in memory that is not consistent.
    #[error("key ring: {0}")]
    Invalid(String),
}

/// One AES-256 key, wiped on drop.
#[derive(Clone)]
struct Key(Zeroizing<[u8; KEY_LEN]>);

/// Several named AES-256 keys, one of them active for sealing new data.
///
/// `Debug` shows the ids only.
#[derive(Clone)]
pub struct KeyRing {
    keys: BTreeMap<KeyId, Key>,
    active: KeyId,
    /// A copy of `keys[active]`, so that sealing needs no lookup that could fail.
    active_key: Key,
    source: PathBuf,
}

impl fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyRing")
            .field("source", &self.source)
            .field("active", &self.active)
            .field("ids", &self.keys.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl KeyRing {
    /// Loads a key file (format in the module docs), refusing one that group or others may
    /// access.
    pub fn load(path: &Path) -> Result<KeyRing, KeyError> {
        let io = |source| KeyError::Io {
            file: path.to_path_buf(),
            source,
        };
        let file = std::fs::File::open(path).map_err(io)?;
        // Checked on the opened file, not the path, so that a swap between check and read
        // cannot slip another file in.
        let meta = file.metadata().map_err(io)?;
        if !meta.is_file() {
            return Err(KeyError::NotAKeyFile {
                file: path.to_path_buf(),
                what: "not a regular file".into(),
            });
        }
        let mode = meta.permissions().mode() & 0o7777;
        if mode & 0o077 != 0 {
            return Err(KeyError::Permissions {
                file: path.to_path_buf(),
                mode,
            });
        }
        if meta.len() > MAX_KEY_FILE_LEN {
            return Err(KeyError::NotAKeyFile {
                file: path.to_path_buf(),
                what: format!(
                    "{} bytes, larger than a key file can be ({MAX_KEY_FILE_LEN})",
                    meta.len()
                ),
            });
        }
        let mut bytes = Zeroizing::new(Vec::new());
        file.take(MAX_KEY_FILE_LEN + 1)
            .read_to_end(&mut bytes)
            .map_err(io)?;
        KeyRing::parse_bytes(&bytes, path)
    }

    /// Parses key file content; `file` only names the source in errors. Does not check
    /// permissions (that is [`KeyRing::load`]'s job).
    pub fn parse(text: &str, file: &Path) -> Result<KeyRing, KeyError> {
        KeyRing::parse_bytes(text.as_bytes(), file)
    }

    fn parse_bytes(bytes: &[u8], file: &Path) -> Result<KeyRing, KeyError> {
        let syntax = |line: usize, message: String| KeyError::Syntax {
            file: file.to_path_buf(),
            line,
            message,
        };
        let mut active: Option<(String, usize)> = None;
        let mut in_keys = false;
        let mut keys: BTreeMap<KeyId, (Key, usize)> = BTreeMap::new();
        for (i, raw) in bytes.split(|&b| b == b'\n').enumerate() {
            let line = i + 1;
            let Ok(text) = std::str::from_utf8(raw) else {
                return Err(syntax(line, "not UTF-8 text".into()));
            };
            let text = text.strip_suffix('\r').unwrap_or(text).trim();
            if text.is_empty() || text.starts_with('#') {
                continue;
            }
            if let Some(rest) = text.strip_prefix('[') {
                let name = strip_comment(rest)
                    .and_then(|r| r.strip_suffix(']'))
                    .map(str::trim);
                match name {
                    Some("keys") if !in_keys => in_keys = true,
                    Some("keys") => return Err(syntax(line, "[keys] appears twice".into())),
                    Some(other) => {
                        return Err(syntax(
                            line,
                            format!("unknown table [{other}]: only [keys] is allowed"),
                        ));
                    }
                    None => return Err(syntax(line, "malformed table header".into())),
                }
                continue;
            }
            let Some((name, value)) = text.split_once('=') else {
                return Err(syntax(line, "expected `name = \"value\"`".into()));
            };
            let name = name.trim();
            let Some(value) = parse_string(value) else {
                return Err(syntax(
                    line,
                    format!("the value of {name:?} must be one double-quoted string"),
                ));
            };
            if !in_keys {
                if name != "active" {
                    return Err(syntax(
                        line,
                        format!("unknown setting {name:?}: only `active` comes before [keys]"),
                    ));
                }
                if active.is_some() {
                    return Err(syntax(line, "`active` is set twice".into()));
                }
                active = Some((value.to_string(), line));
                continue;
            }
            let Some(id) = KeyId::parse(name) else {
                return Err(syntax(
                    line,
                    format!("key id {name:?} must be 1 to 64 characters of A-Z a-z 0-9 _ -"),
                ));
            };
            let key = parse_key(value).map_err(|why| syntax(line, format!("key {id}: {why}")))?;
            if let Some((_, first)) = keys.get(&id) {
                return Err(syntax(
                    line,
                    format!("key {id} is defined twice (first on line {first})"),
                ));
            }
            keys.insert(id, (key, line));
        }
        let Some((active, active_line)) = active else {
            return Err(KeyError::NoActive {
                file: file.to_path_buf(),
            });
        };
        let found = KeyId::parse(&active).and_then(|id| {
            let key = keys.get(&id)?.0.clone();
            Some((id, key))
        });
        let Some((active_id, active_key)) = found else {
            return Err(KeyError::ActiveUnknown {
                file: file.to_path_buf(),
                line: active_line,
                id: active,
            });
        };
        Ok(KeyRing {
            keys: keys.into_iter().map(|(id, (k, _))| (id, k)).collect(),
            active: active_id,
            active_key,
            source: file.to_path_buf(),
        })
    }

    /// A key ring built in memory (tests, tools): `active` must be one of `keys`, ids
    /// unique, no key all zeros.
    pub fn from_keys(
        active: KeyId,
        keys: impl IntoIterator<Item = (KeyId, [u8; KEY_LEN])>,
    ) -> Result<KeyRing, KeyError> {
        let mut map = BTreeMap::new();
        for (id, mut bytes) in keys {
            if bytes.iter().all(|&b| b == 0) {
                return Err(KeyError::Invalid(format!("key {id} is all zeros")));
            }
            let key = Key(Zeroizing::new(bytes));
            zeroize::Zeroize::zeroize(&mut bytes);
            if map.insert(id.clone(), key).is_some() {
                return Err(KeyError::Invalid(format!("key {id} given twice")));
            }
        }
        let Some(active_key) = map.get(&active).cloned() else {
            return Err(KeyError::Invalid(format!(
                "active key {active} is not among the keys"
            )));
        };
        Ok(KeyRing {
            keys: map,
            active,
            active_key,
            source: PathBuf::from("(in memory)"),
        })
    }

    /// The id of the key that seals new data.
    pub fn active_id(&self) -> &KeyId {
        &self.active
    }

    /// Every key id, in order.
    pub fn ids(&self) -> impl Iterator<Item = &KeyId> {
        self.keys.keys()
    }

    /// Whether the ring holds a key with this id.
    pub fn contains(&self, id: &KeyId) -> bool {
        self.keys.contains_key(id)
    }

    /// Where the ring came from (the key file, or `(in memory)`).
    pub fn source(&self) -> &Path {
        &self.source
    }

    /// The active key (for the envelope only).
    pub(crate) fn active_key(&self) -> (&KeyId, &[u8; KEY_LEN]) {
        (&self.active, &self.active_key.0)
    }

    /// The key with this id (for the envelope only).
    pub(crate) fn key(&self, id: &KeyId) -> Option<&[u8; KEY_LEN]> {
        self.keys.get(id).map(|k| &*k.0)
    }
}

/// A fresh random AES-256 key as 64 lowercase hex digits, for writing a key file.
pub fn random_key_hex() -> Zeroizing<String> {
    use rand::RngCore;
    let mut k = Zeroizing::new([0u8; KEY_LEN]);
    rand::rngs::OsRng.fill_bytes(&mut *k);
    Zeroizing::new(hex::encode(*k))
}

/// Strips a trailing `# comment` from text that holds no quoted `#`.
fn strip_comment(s: &str) -> Option<&str> {
    Some(match s.split_once('#') {
        Some((before, _)) => before.trim_end(),
        None => s.trim_end(),
    })
}

/// `  "value"  # comment` → `value`; no escapes (ids and hex never need them).
fn parse_string(s: &str) -> Option<&str> {
    let s = s.trim_start();
    let rest = s.strip_prefix('"')?;
    let (value, after) = rest.split_once('"')?;
    if value.contains('\\') {
        return None;
    }
    let after = after.trim_start();
    (after.is_empty() || after.starts_with('#')).then_some(value)
}

fn parse_key(hex_text: &str) -> Result<Key, String> {
    if hex_text.len() != 2 * KEY_LEN {
        return Err(format!(
            "must be {} hex digits (32 bytes), found {} characters",
            2 * KEY_LEN,
            hex_text.chars().count()
        ));
    }
    let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
    hex::decode_to_slice(hex_text, &mut *bytes)
        .map_err(|_| "must contain only hex digits 0-9 a-f".to_string())?;
    if bytes.iter().all(|&b| b == 0) {
        return Err("is all zeros (a placeholder?): generate a random key".into());
    }
    Ok(Key(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    const K1: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
    const K2: &str = "202122232425262728292A2B2C2D2E2F303132333435363738393a3b3c3d3e3f";

    fn parse(text: &str) -> Result<KeyRing, KeyError> {
        KeyRing::parse(text, Path::new("/etc/rv/keys.toml"))
    }

    fn sample() -> String {
        format!(
            "# keys\r\nactive = \"k2\"   # current\n\n[keys]\nk1 = \"{K1}\" # old\n  k2=\"{K2}\"\n"
        )
    }

    #[test]
    fn parses_active_and_every_key() {
        let ring = parse(&sample()).unwrap();
        assert_eq!(ring.active_id().as_str(), "k2");
        let ids: Vec<_> = ring.ids().map(|i| i.as_str().to_string()).collect();
        assert_eq!(ids, ["k1", "k2"]);
        let (id, key) = ring.active_key();
        assert_eq!(id.as_str(), "k2");
        assert_eq!(key[0], 0x20);
        assert_eq!(key[31], 0x3f);
        assert_eq!(ring.key(&KeyId::parse("k1").unwrap()).unwrap()[1], 1);
        assert!(ring.key(&KeyId::parse("k3").unwrap()).is_none());
    }

    #[test]
    fn debug_shows_no_key_material() {
        let ring = parse(&sample()).unwrap();
        let dbg = format!("{ring:?}");
        assert!(dbg.contains("k1") && dbg.contains("k2"), "{dbg}");
        assert!(!dbg.to_lowercase().contains("0a0b0c"), "{dbg}");
        assert!(!dbg.contains("32, 33"), "{dbg}");
    }

    fn syntax_line(r: Result<KeyRing, KeyError>) -> (usize, String) {
        match r {
            Err(KeyError::Syntax {
                line,
                message,
                file,
            }) => {
                assert_eq!(file, Path::new("/etc/rv/keys.toml"));
                (line, message)
            }
            other => panic!("expected a syntax error, got {other:?}"),
        }
    }

    #[test]
    fn malformed_keys_name_the_line_and_never_the_key() {
        let short = format!("active = \"k1\"\n[keys]\nk1 = \"{}\"\n", &K1[..62]);
        let (line, msg) = syntax_line(parse(&short));
        assert_eq!(line, 3);
        assert!(msg.contains("64 hex digits") && msg.contains("62"), "{msg}");
        assert!(!msg.contains(&K1[..20]), "{msg}");

        let nonhex = format!("active = \"k1\"\n[keys]\n\nk1 = \"{}zz\"\n", &K1[..62]);
        let (line, msg) = syntax_line(parse(&nonhex));
        assert_eq!(line, 4);
        assert!(msg.contains("hex digits"), "{msg}");

        let zeros = format!("active = \"k1\"\n[keys]\nk1 = \"{}\"\n", "0".repeat(64));
        let (line, msg) = syntax_line(parse(&zeros));
        assert_eq!((line, msg.contains("all zeros")), (3, true), "{msg}");

        let dup = format!("active = \"k1\"\n[keys]\nk1 = \"{K1}\"\nk1 = \"{K2}\"\n");
        let (line, msg) = syntax_line(parse(&dup));
        assert_eq!(line, 4);
        assert!(msg.contains("first on line 3"), "{msg}");

        let bad_id = format!("active = \"k1\"\n[keys]\nk.1 = \"{K1}\"\n");
        assert_eq!(syntax_line(parse(&bad_id)).0, 3);
        let unquoted = format!("active = k1\n[keys]\nk1 = \"{K1}\"\n");
        assert_eq!(syntax_line(parse(&unquoted)).0, 1);
        let other_table = format!("active = \"k1\"\n[secrets]\nk1 = \"{K1}\"\n");
        let (line, msg) = syntax_line(parse(&other_table));
        assert_eq!((line, msg.contains("[secrets]")), (2, true));
        let junk = format!("active = \"k1\"\n[keys]\nk1 = \"{K1}\" trailing\n");
        assert_eq!(syntax_line(parse(&junk)).0, 3);
        let no_eq = "active = \"k1\"\n[keys]\njust words\n";
        assert_eq!(syntax_line(parse(no_eq)).0, 3);
        let twice = format!("active = \"k1\"\nactive = \"k1\"\n[keys]\nk1 = \"{K1}\"\n");
        assert_eq!(syntax_line(parse(&twice)).0, 2);
        let late_active = format!("[keys]\nk1 = \"{K1}\"\nactive = \"k1\"\n");
        assert!(matches!(
            parse(&late_active),
            Err(KeyError::Syntax { line: 3, .. })
        ));
        let not_utf8 = KeyRing::parse_bytes(b"active = \"k1\"\n\xff\xfe\n", Path::new("f"));
        assert!(matches!(not_utf8, Err(KeyError::Syntax { line: 2, .. })));
    }

    #[test]
    fn active_must_exist() {
        assert!(matches!(
            parse(&format!("[keys]\nk1 = \"{K1}\"\n")),
            Err(KeyError::NoActive { .. })
        ));
        let err = parse(&format!("active = \"k9\"\n[keys]\nk1 = \"{K1}\"\n")).unwrap_err();
        assert!(
            matches!(err, KeyError::ActiveUnknown { line: 1, .. }),
            "{err}"
        );
        assert!(err.to_string().contains("keys.toml, line 1"), "{err}");
        assert!(matches!(parse(""), Err(KeyError::NoActive { .. })));
    }

    #[test]
    fn load_refuses_group_or_world_access() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("keys.toml");
        std::fs::write(&p, sample()).unwrap();
        for mode in [0o644, 0o640, 0o604, 0o660, 0o602] {
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
            let err = KeyRing::load(&p).unwrap_err();
            assert!(
                matches!(err, KeyError::Permissions { mode: m, .. } if m == mode),
                "{mode:o}: {err}"
            );
            assert!(err.to_string().contains("chmod 600"), "{err}");
        }
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        let ring = KeyRing::load(&p).unwrap();
        assert_eq!(ring.source(), p);
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o400)).unwrap();
        KeyRing::load(&p).unwrap();
    }

    #[test]
    fn load_reports_missing_file_directory_and_huge_file() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.toml");
        let err = KeyRing::load(&missing).unwrap_err();
        assert!(err.to_string().contains("nope.toml"), "{err}");
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
        assert!(matches!(
            KeyRing::load(dir.path()),
            Err(KeyError::NotAKeyFile { .. })
        ));
        let big = dir.path().join("big.toml");
        std::fs::write(&big, vec![b'#'; MAX_KEY_FILE_LEN as usize + 1]).unwrap();
        std::fs::set_permissions(&big, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(matches!(
            KeyRing::load(&big),
            Err(KeyError::NotAKeyFile { .. })
        ));
    }

    #[test]
    fn from_keys_checks_consistency() {
        let id = |s| KeyId::parse(s).unwrap();
        let ring = KeyRing::from_keys(id("a"), [(id("a"), [7; 32]), (id("b"), [8; 32])]).unwrap();
        assert_eq!(ring.active_key().1, &[7; 32]);
        assert!(KeyRing::from_keys(id("c"), [(id("a"), [7; 32])]).is_err());
        assert!(KeyRing::from_keys(id("a"), [(id("a"), [0; 32])]).is_err());
        assert!(KeyRing::from_keys(id("a"), [(id("a"), [1; 32]), (id("a"), [2; 32])]).is_err());
    }

    #[test]
    fn key_ids_are_bare_toml_keys() {
        assert!(KeyId::parse("k-2026_01").is_some());
        assert!(KeyId::parse("").is_none());
        assert!(KeyId::parse("a b").is_none());
        assert!(KeyId::parse(&"x".repeat(65)).is_none());
        assert!(KeyId::parse(&"x".repeat(64)).is_some());
    }

    #[test]
    fn random_keys_parse_and_differ() {
        let a = random_key_hex();
        let b = random_key_hex();
        assert_ne!(*a, *b);
        let ring = parse(&format!("active = \"a\"\n[keys]\na = \"{}\"\n", *a)).unwrap();
        assert_eq!(ring.active_id().as_str(), "a");
    }
}
