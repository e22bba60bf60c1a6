//! The manifest: an append-only, hash-chained record of every archived redo log shipped to
//! WORM storage.
//!
//! One JSON line per shipped log ([`ManifestEntry`]): database id and name, resetlogs id,
//! thread, sequence, first/next SCN and time, size, SHA-256, object key and version id,
//! retain-until, when it was shipped, the file name, and `prev`: the SHA-256 of the previous
//! entry's line. Lines are in a **canonical encoding** (serde_json of the struct, fields in
//! declaration order, no whitespace): a line that does not re-encode to itself byte for byte
//! is refused, so every entry has exactly one byte form and one hash. The first entry's
//! `prev` is 64 zeros ([`Sha256Digest::ZERO`]).
//!
//! What the chain proves: an entry cannot be altered, removed, inserted or reordered without
//! breaking the `prev` of the entry after it (and the `index` sequence). The last entries are
//! protected by the copies sealed into WORM (see below).
//!
//! Local copy ([`ManifestDir`]), in the watcher's state directory:
//! - `segments/<first index, 12 digits>.jsonl`: closed segments, created once (create-only,
//!   fsynced with their directory), never rewritten;
//! - `open.jsonl`: the open segment, rewritten whole on each append with
//!   [`crate::durable::write_atomic`] (a crash leaves the old or the new version);
//! - `sealed.jsonl`: one line per closed segment confirmed in WORM (appended, fsynced).
//!
//! Sealing: a closed segment is put into WORM under [`segment_key`], which holds the segment's
//! own SHA-256 (nobody can pre-create the key of bytes that do not exist yet); segments chain
//! to each other through the entries' `prev`. [`verify_lines`] and [`verify_segments`] check a
//! chain; the verifier uses them on the WORM copies.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};

use redovault_redo::position::{LogSeq, Scn, ThreadId};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};

use crate::durable;

/// A SHA-256 digest; hex in JSON and in text.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Sha256Digest(pub [u8; 32]);

impl Sha256Digest {
    /// 32 zero bytes: the `prev` of the first entry.
    pub const ZERO: Sha256Digest = Sha256Digest([0; 32]);

    /// SHA-256 of `bytes`.
    pub fn of(bytes: &[u8]) -> Sha256Digest {
        Sha256Digest(Sha256::digest(bytes).into())
    }

    /// Lower-case hex.
    pub fn hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Parses 64 hex digits.
    pub fn from_hex(s: &str) -> Option<Sha256Digest> {
        let v = hex::decode(s).ok()?;
        Some(Sha256Digest(v.try_into().ok()?))
    }
}

impl fmt::Display for Sha256Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.hex())
    }
}

impl fmt::Debug for Sha256Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sha256Digest({})", self.hex())
    }
}

impl Serialize for Sha256Digest {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.hex())
    }
}

impl<'de> Deserialize<'de> for Sha256Digest {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        if s.len() != 64 || s.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(serde::de::Error::custom(
                "expected 64 lower-case hex digits",
            ));
        }
        Sha256Digest::from_hex(&s)
            .ok_or_else(|| serde::de::Error::custom("expected 64 lower-case hex digits"))
    }
}

/// Serde for the redo position newtypes, as plain JSON numbers.
pub mod serde_pos {
    use super::*;

    /// [`ThreadId`] as a number.
    pub mod thread {
        use super::*;
        /// Serializes.
        pub fn serialize<S: Serializer>(v: &ThreadId, s: S) -> Result<S::Ok, S::Error> {
            s.serialize_u16(v.0)
        }
        /// Deserializes.
        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<ThreadId, D::Error> {
            u16::deserialize(d).map(ThreadId)
        }
    }

    /// [`LogSeq`] as a number.
    pub mod seq {
        use super::*;
        /// Serializes.
        pub fn serialize<S: Serializer>(v: &LogSeq, s: S) -> Result<S::Ok, S::Error> {
            s.serialize_u32(v.0)
        }
        /// Deserializes.
        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<LogSeq, D::Error> {
            u32::deserialize(d).map(LogSeq)
        }
    }

    /// [`Scn`] as a number.
    pub mod scn {
        use super::*;
        /// Serializes.
        pub fn serialize<S: Serializer>(v: &Scn, s: S) -> Result<S::Ok, S::Error> {
            s.serialize_u64(v.0)
        }
        /// Deserializes.
        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Scn, D::Error> {
            u64::deserialize(d).map(Scn)
        }
    }
}

/// What identifies one archived log: database, incarnation, thread, sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LogIdentity {
    /// Database id (DBID).
    pub db_id: u32,
    /// Resetlogs id (the incarnation).
    pub resetlogs_id: u32,
    /// Redo thread.
    pub thread: ThreadId,
    /// Log sequence.
    pub sequence: LogSeq,
}

impl fmt::Display for LogIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "db {} resetlogs {} thread {} sequence {}",
            self.db_id, self.resetlogs_id, self.thread, self.sequence
        )
    }
}

/// One shipped archived log. Field order is the canonical order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManifestEntry {
    /// Position in the manifest, from 1, without holes.
    pub index: u64,
    /// Database id.
    pub db_id: u32,
    /// Database name.
    pub db_name: String,
    /// Resetlogs id (incarnation).
    pub resetlogs_id: u32,
    /// Redo thread.
    #[serde(with = "serde_pos::thread")]
    pub thread: ThreadId,
    /// Log sequence.
    #[serde(with = "serde_pos::seq")]
    pub sequence: LogSeq,
    /// First SCN in the log.
    #[serde(with = "serde_pos::scn")]
    pub first_scn: Scn,
    /// Next SCN (first SCN of the next log).
    #[serde(with = "serde_pos::scn")]
    pub next_scn: Scn,
    /// Time of the first SCN (DB host clock, ISO 8601).
    pub first_time: String,
    /// Time of the next SCN (DB host clock, ISO 8601).
    pub next_time: String,
    /// Size in bytes.
    pub size: u64,
    /// SHA-256 of the file.
    pub sha256: Sha256Digest,
    /// Object key in the store.
    pub object_key: String,
    /// Object version id (None for the local store).
    pub version_id: Option<String>,
    /// Object Lock retain-until as confirmed by HEAD (RFC 3339), None when not locked.
    pub retain_until: Option<String>,
    /// When the object was confirmed (watcher host clock, RFC 3339 UTC).
    pub shipped_at: String,
    /// The archived log's file name (no directory).
    pub file_name: String,
    /// SHA-256 of the previous entry's canonical line (zeros for the first).
    pub prev: Sha256Digest,
}

/// An entry before it gets its place in the chain (`index` and `prev`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEntry {
    /// Database id.
    pub db_id: u32,
    /// Database name.
    pub db_name: String,
    /// Resetlogs id.
    pub resetlogs_id: u32,
    /// Redo thread.
    pub thread: ThreadId,
    /// Log sequence.
    pub sequence: LogSeq,
    /// First SCN.
    pub first_scn: Scn,
    /// Next SCN.
    pub next_scn: Scn,
    /// Time of the first SCN (ISO 8601).
    pub first_time: String,
    /// Time of the next SCN (ISO 8601).
    pub next_time: String,
    /// Size.
    pub size: u64,
    /// SHA-256.
    pub sha256: Sha256Digest,
    /// Object key.
    pub object_key: String,
    /// Version id.
    pub version_id: Option<String>,
    /// Retain-until (RFC 3339).
    pub retain_until: Option<String>,
    /// Shipped at (RFC 3339).
    pub shipped_at: String,
    /// File name.
    pub file_name: String,
}

impl ManifestEntry {
    /// The canonical line (no trailing newline).
    pub fn canonical_line(&self) -> String {
        // Serializing a struct of strings and integers cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// SHA-256 of the canonical line: the next entry's `prev`.
    pub fn hash(&self) -> Sha256Digest {
        Sha256Digest::of(self.canonical_line().as_bytes())
    }

    /// Parses one line and checks that it is in canonical form.
    pub fn parse_line(line: &str) -> Result<ManifestEntry, String> {
        let e: ManifestEntry = serde_json::from_str(line).map_err(|e| e.to_string())?;
        if e.canonical_line() != line {
            return Err("not in canonical form (re-encoding gives other bytes)".to_string());
        }
        Ok(e)
    }

    /// The log this entry records.
    pub fn identity(&self) -> LogIdentity {
        LogIdentity {
            db_id: self.db_id,
            resetlogs_id: self.resetlogs_id,
            thread: self.thread,
            sequence: self.sequence,
        }
    }

    fn from_new(n: NewEntry, index: u64, prev: Sha256Digest) -> ManifestEntry {
        ManifestEntry {
            index,
            db_id: n.db_id,
            db_name: n.db_name,
            resetlogs_id: n.resetlogs_id,
            thread: n.thread,
            sequence: n.sequence,
            first_scn: n.first_scn,
            next_scn: n.next_scn,
            first_time: n.first_time,
            next_time: n.next_time,
            size: n.size,
            sha256: n.sha256,
            object_key: n.object_key,
            version_id: n.version_id,
            retain_until: n.retain_until,
            shipped_at: n.shipped_at,
            file_name: n.file_name,
            prev,
        }
    }
}

/// Where a chain stands: the index the next entry must have and the hash it must name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChainState {
    /// Index of the next entry.
    pub next_index: u64,
    /// Hash of the last entry (zeros before the first).
    pub prev: Sha256Digest,
}

impl ChainState {
    /// Before the first entry.
    pub const GENESIS: ChainState = ChainState {
        next_index: 1,
        prev: Sha256Digest::ZERO,
    };
}

/// Why a manifest cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// A file operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// A line is not a manifest entry, or not in canonical form.
    #[error("{origin} line {line}: {detail}")]
    Malformed {
        /// File or object.
        origin: String,
        /// Line number (from 1).
        line: usize,
        /// What is wrong.
        detail: String,
    },
    /// An entry is not where the chain expects it (index out of sequence, or `prev` is not the
    /// previous entry's hash): an entry was altered, removed, inserted or reordered.
    #[error(
        "{origin} line {line}: chain broken at entry {index}: expected index {expected_index} \
         with prev {expected_prev}, found index {index} with prev {found_prev}"
    )]
    Broken {
        /// File or object.
        origin: String,
        /// Line number (from 1).
        line: usize,
        /// Index found.
        index: u64,
        /// Index expected.
        expected_index: u64,
        /// `prev` expected.
        expected_prev: Sha256Digest,
        /// `prev` found.
        found_prev: Sha256Digest,
    },
    /// The local files disagree with each other (a closed segment and the open one).
    #[error("{0}")]
    Inconsistent(String),
}

fn io_err(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> ManifestError {
    let context = context.into();
    move |source| ManifestError::Io { context, source }
}

/// Checks that `lines` continue the chain at `start`; returns where the chain then stands.
/// Empty lines are refused (a segment ends with exactly one newline after its last line).
pub fn verify_lines<'a>(
    lines: impl IntoIterator<Item = &'a str>,
    start: ChainState,
    origin: &str,
) -> Result<ChainState, ManifestError> {
    let mut state = start;
    for (i, line) in lines.into_iter().enumerate() {
        let e = ManifestEntry::parse_line(line).map_err(|detail| ManifestError::Malformed {
            origin: origin.to_string(),
            line: i + 1,
            detail,
        })?;
        if e.index != state.next_index || e.prev != state.prev {
            return Err(ManifestError::Broken {
                origin: origin.to_string(),
                line: i + 1,
                index: e.index,
                expected_index: state.next_index,
                expected_prev: state.prev,
                found_prev: e.prev,
            });
        }
        state = ChainState {
            next_index: e.index + 1,
            prev: Sha256Digest::of(line.as_bytes()),
        };
    }
    Ok(state)
}

/// Splits segment bytes into lines: every line ends with `\n`, none is empty.
pub fn segment_lines<'a>(bytes: &'a [u8], origin: &str) -> Result<Vec<&'a str>, ManifestError> {
    let text = std::str::from_utf8(bytes).map_err(|e| ManifestError::Malformed {
        origin: origin.to_string(),
        line: 0,
        detail: format!("not UTF-8: {e}"),
    })?;
    if text.is_empty() {
        return Ok(Vec::new());
    }
    let Some(body) = text.strip_suffix('\n') else {
        return Err(ManifestError::Malformed {
            origin: origin.to_string(),
            line: text.lines().count(),
            detail: "the last line has no newline (torn write?)".to_string(),
        });
    };
    let lines: Vec<&str> = body.split('\n').collect();
    if let Some(i) = lines.iter().position(|l| l.is_empty()) {
        return Err(ManifestError::Malformed {
            origin: origin.to_string(),
            line: i + 1,
            detail: "empty line".to_string(),
        });
    }
    Ok(lines)
}

/// Verifies whole segments in order (as `(name, bytes)`), from the genesis; returns the final
/// state. The verifier runs this on the segments read back from WORM.
pub fn verify_segments<'a>(
    segments: impl IntoIterator<Item = (&'a str, &'a [u8])>,
) -> Result<ChainState, ManifestError> {
    let mut state = ChainState::GENESIS;
    for (name, bytes) in segments {
        state = verify_lines(segment_lines(bytes, name)?, state, name)?;
    }
    Ok(state)
}

/// The WORM key of a sealed segment: `PREFIX/manifest/<first>-<last>-<sha256>.jsonl`
/// (indexes in 12 digits, so keys sort in chain order).
pub fn segment_key(prefix: &str, seg: &SegmentInfo) -> String {
    let name = format!(
        "manifest/{:012}-{:012}-{}.jsonl",
        seg.first, seg.last, seg.sha256
    );
    if prefix.is_empty() {
        name
    } else {
        format!("{prefix}/{name}")
    }
}

/// A closed segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentInfo {
    /// Index of its first entry.
    pub first: u64,
    /// Index of its last entry.
    pub last: u64,
    /// SHA-256 of the segment file.
    pub sha256: Sha256Digest,
    /// Size of the segment file.
    pub size: u64,
    /// The local file.
    pub path: PathBuf,
}

/// A segment confirmed in WORM.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SealRecord {
    /// First entry index.
    pub first: u64,
    /// Last entry index.
    pub last: u64,
    /// SHA-256 of the segment.
    pub sha256: Sha256Digest,
    /// Object key.
    pub key: String,
    /// Version id.
    pub version_id: Option<String>,
    /// Retain-until confirmed by HEAD (RFC 3339).
    pub retain_until: Option<String>,
    /// When it was confirmed (RFC 3339).
    pub sealed_at: String,
}

/// What a shipped log's entry says, kept in memory for look-ups.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Recorded {
    /// Entry index.
    pub index: u64,
    /// SHA-256 of the log.
    pub sha256: Sha256Digest,
}

const OPEN: &str = "open.jsonl";
const SEGMENTS: &str = "segments";
const SEALED: &str = "sealed.jsonl";

/// The local manifest in a directory (see the module documentation). Keeps in memory the
/// open segment's lines and small look-up maps (identity → entry, file name → SHA-256), not
/// the closed entries.
#[derive(Debug)]
pub struct ManifestDir {
    dir: PathBuf,
    segments: Vec<SegmentInfo>,
    open: Vec<String>,
    state: ChainState,
    by_identity: HashMap<LogIdentity, Recorded>,
    by_name: HashMap<String, Recorded>,
    by_sha: HashMap<Sha256Digest, u64>,
    sealed: BTreeMap<u64, SealRecord>,
}

/// Everything read from a manifest directory.
struct Loaded {
    segments: Vec<SegmentInfo>,
    open: Vec<String>,
    state: ChainState,
    sealed: BTreeMap<u64, SealRecord>,
    sealed_torn: bool,
}

fn segment_first(name: &str) -> Option<u64> {
    let stem = name.strip_suffix(".jsonl")?;
    (stem.len() == 12 && stem.bytes().all(|b| b.is_ascii_digit()))
        .then(|| stem.parse().ok())
        .flatten()
}

fn read_opt(path: &Path) -> Result<Option<Vec<u8>>, ManifestError> {
    match std::fs::read(path) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_err(format!("read {}", path.display()))(e)),
    }
}

/// Reads and verifies a manifest directory, calling `each` for every entry in order.
fn load(dir: &Path, each: &mut dyn FnMut(&ManifestEntry)) -> Result<Loaded, ManifestError> {
    let seg_dir = dir.join(SEGMENTS);
    let mut names: Vec<(u64, PathBuf)> = Vec::new();
    match std::fs::read_dir(&seg_dir) {
        Ok(rd) => {
            for e in rd {
                let e = e.map_err(io_err(format!("list {}", seg_dir.display())))?;
                let name = e.file_name().to_string_lossy().into_owned();
                if let Some(first) = segment_first(&name) {
                    names.push((first, e.path()));
                }
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_err(format!("list {}", seg_dir.display()))(e)),
    }
    names.sort();
    let mut state = ChainState::GENESIS;
    let mut segments = Vec::new();
    for (first, path) in names {
        let origin = path.display().to_string();
        let bytes = std::fs::read(&path).map_err(io_err(format!("read {origin}")))?;
        if first != state.next_index {
            return Err(ManifestError::Inconsistent(format!(
                "{origin}: segment starts at entry {first}, the chain is at {}",
                state.next_index
            )));
        }
        let lines = segment_lines(&bytes, &origin)?;
        if lines.is_empty() {
            return Err(ManifestError::Inconsistent(format!(
                "{origin}: empty segment"
            )));
        }
        state = verify_lines(lines.iter().copied(), state, &origin)?;
        for l in &lines {
            // Verified just above.
            if let Ok(e) = ManifestEntry::parse_line(l) {
                each(&e);
            }
        }
        segments.push(SegmentInfo {
            first,
            last: state.next_index - 1,
            sha256: Sha256Digest::of(&bytes),
            size: bytes.len() as u64,
            path,
        });
    }
    let open_path = dir.join(OPEN);
    let mut open = Vec::new();
    if let Some(bytes) = read_opt(&open_path)? {
        let origin = open_path.display().to_string();
        let lines = segment_lines(&bytes, &origin)?;
        // Entries already moved into a closed segment (a crash between closing the segment
        // and emptying the open one) are skipped.
        let fresh: Vec<&str> = lines
            .into_iter()
            .filter(|l| ManifestEntry::parse_line(l).map_or(true, |e| e.index >= state.next_index))
            .collect();
        state = verify_lines(fresh.iter().copied(), state, &origin)?;
        for l in &fresh {
            if let Ok(e) = ManifestEntry::parse_line(l) {
                each(&e);
            }
            open.push(l.to_string());
        }
    }
    let mut sealed = BTreeMap::new();
    let mut sealed_torn = false;
    if let Some(bytes) = read_opt(&dir.join(SEALED))? {
        let text = String::from_utf8_lossy(&bytes);
        let complete = match text.rfind('\n') {
            Some(i) => &text[..i],
            None => "",
        };
        sealed_torn = complete.len() + 1 < text.len() || (complete.is_empty() && !text.is_empty());
        for (i, l) in complete.lines().enumerate().filter(|(_, l)| !l.is_empty()) {
            let r: SealRecord = serde_json::from_str(l).map_err(|e| ManifestError::Malformed {
                origin: dir.join(SEALED).display().to_string(),
                line: i + 1,
                detail: e.to_string(),
            })?;
            sealed.insert(r.first, r);
        }
    }
    Ok(Loaded {
        segments,
        open,
        state,
        sealed,
        sealed_torn,
    })
}

/// Reads every entry of a manifest directory, verifying the chain (read-only: for `status`,
/// tests and tools). A missing directory is an empty manifest.
pub fn read_entries(dir: &Path) -> Result<Vec<ManifestEntry>, ManifestError> {
    let mut out = Vec::new();
    load(dir, &mut |e| out.push(e.clone()))?;
    Ok(out)
}

/// Reads the seal records of a manifest directory (read-only).
pub fn read_seals(dir: &Path) -> Result<Vec<SealRecord>, ManifestError> {
    Ok(load(dir, &mut |_| {})?.sealed.into_values().collect())
}

impl ManifestDir {
    /// Opens (creating it if needed) the manifest in `dir`, verifies the whole chain, repairs
    /// what a crash can leave (temporary files, a torn seal record), and calls `each` for
    /// every entry in order.
    pub fn open(
        dir: &Path,
        each: &mut dyn FnMut(&ManifestEntry),
    ) -> Result<ManifestDir, ManifestError> {
        std::fs::create_dir_all(dir.join(SEGMENTS))
            .map_err(io_err(format!("create {}", dir.display())))?;
        // Temporary files of interrupted atomic writes: ours, never acknowledged.
        for d in [dir.to_path_buf(), dir.join(SEGMENTS)] {
            let rd = std::fs::read_dir(&d).map_err(io_err(format!("list {}", d.display())))?;
            for e in rd.flatten() {
                if e.file_name().to_string_lossy().contains(".tmp.") {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
        let mut by_identity = HashMap::new();
        let mut by_name = HashMap::new();
        let mut by_sha = HashMap::new();
        let loaded = load(dir, &mut |e| {
            let r = Recorded {
                index: e.index,
                sha256: e.sha256,
            };
            by_identity.insert(e.identity(), r);
            by_name.insert(e.file_name.clone(), r);
            by_sha.insert(e.sha256, e.index);
            each(e);
        })?;
        let m = ManifestDir {
            dir: dir.to_path_buf(),
            segments: loaded.segments,
            open: loaded.open,
            state: loaded.state,
            by_identity,
            by_name,
            by_sha,
            sealed: loaded.sealed,
        };
        if loaded.sealed_torn {
            m.rewrite_seals()?;
        }
        Ok(m)
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where the chain stands (next index, hash of the last entry).
    pub fn state(&self) -> ChainState {
        self.state
    }

    /// Number of entries.
    pub fn len(&self) -> u64 {
        self.state.next_index - 1
    }

    /// True when no entry was ever recorded.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Entries in the open segment.
    pub fn open_len(&self) -> usize {
        self.open.len()
    }

    /// The entry recording this log, if any.
    pub fn by_identity(&self, id: &LogIdentity) -> Option<Recorded> {
        self.by_identity.get(id).copied()
    }

    /// The latest entry shipped under this file name, if any.
    pub fn by_file_name(&self, name: &str) -> Option<Recorded> {
        self.by_name.get(name).copied()
    }

    /// The index of the entry with these bytes, if any.
    pub fn by_sha256(&self, sha: &Sha256Digest) -> Option<u64> {
        self.by_sha.get(sha).copied()
    }

    /// Appends an entry durably (the open segment is rewritten atomically and fsynced before
    /// this returns). Blocking.
    pub fn append(&mut self, new: NewEntry) -> Result<ManifestEntry, ManifestError> {
        let entry = ManifestEntry::from_new(new, self.state.next_index, self.state.prev);
        let line = entry.canonical_line();
        self.open.push(line.clone());
        if let Err(e) = self.write_open() {
            self.open.pop();
            return Err(e);
        }
        self.state = ChainState {
            next_index: entry.index + 1,
            prev: Sha256Digest::of(line.as_bytes()),
        };
        let r = Recorded {
            index: entry.index,
            sha256: entry.sha256,
        };
        self.by_identity.insert(entry.identity(), r);
        self.by_name.insert(entry.file_name.clone(), r);
        self.by_sha.insert(entry.sha256, entry.index);
        Ok(entry)
    }

    fn open_bytes(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(self.open.iter().map(|l| l.len() + 1).sum());
        for l in &self.open {
            b.extend_from_slice(l.as_bytes());
            b.push(b'\n');
        }
        b
    }

    fn write_open(&self) -> Result<(), ManifestError> {
        let p = self.dir.join(OPEN);
        durable::write_atomic(&p, &self.open_bytes())
            .map_err(io_err(format!("write {}", p.display())))
    }

    /// Closes the open segment (if it holds entries): it becomes an immutable segment file,
    /// ready to be sealed into WORM. Blocking.
    pub fn close_segment(&mut self) -> Result<Option<SegmentInfo>, ManifestError> {
        let Some(first_line) = self.open.first() else {
            return Ok(None);
        };
        let first = ManifestEntry::parse_line(first_line)
            .map_err(|d| ManifestError::Inconsistent(format!("open segment: {d}")))?
            .index;
        let bytes = self.open_bytes();
        let path = self.dir.join(SEGMENTS).join(format!("{first:012}.jsonl"));
        match durable::create_new_durable(&path, &bytes) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                let have =
                    std::fs::read(&path).map_err(io_err(format!("read {}", path.display())))?;
                if have != bytes {
                    return Err(ManifestError::Inconsistent(format!(
                        "{} exists with other content than the open segment",
                        path.display()
                    )));
                }
            }
            Err(e) => return Err(io_err(format!("create {}", path.display()))(e)),
        }
        let seg = SegmentInfo {
            first,
            last: self.state.next_index - 1,
            sha256: Sha256Digest::of(&bytes),
            size: bytes.len() as u64,
            path,
        };
        self.open.clear();
        self.write_open()?;
        self.segments.push(seg.clone());
        Ok(Some(seg))
    }

    /// Closed segments not yet confirmed in WORM, oldest first.
    pub fn unsealed(&self) -> Vec<SegmentInfo> {
        self.segments
            .iter()
            .filter(|s| !self.sealed.contains_key(&s.first))
            .cloned()
            .collect()
    }

    /// The last entry index covered by a segment confirmed in WORM with every segment before
    /// it (None when nothing is sealed).
    pub fn sealed_through(&self) -> Option<u64> {
        let mut through = None;
        for s in &self.segments {
            if self.sealed.contains_key(&s.first) {
                through = Some(s.last);
            } else {
                break;
            }
        }
        through
    }

    /// Records that a segment is confirmed in WORM (appended and fsynced). Blocking.
    pub fn mark_sealed(&mut self, record: SealRecord) -> Result<(), ManifestError> {
        let p = self.dir.join(SEALED);
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&p)
            .map_err(io_err(format!("open {}", p.display())))?;
        let mut line = serde_json::to_string(&record).unwrap_or_default();
        line.push('\n');
        durable::append_durable(&mut f, line.as_bytes())
            .map_err(io_err(format!("append to {}", p.display())))?;
        self.sealed.insert(record.first, record);
        Ok(())
    }

    fn rewrite_seals(&self) -> Result<(), ManifestError> {
        let mut b = String::new();
        for r in self.sealed.values() {
            b.push_str(&serde_json::to_string(r).unwrap_or_default());
            b.push('\n');
        }
        let p = self.dir.join(SEALED);
        durable::write_atomic(&p, b.as_bytes()).map_err(io_err(format!("write {}", p.display())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new_entry(seq: u32) -> NewEntry {
        NewEntry {
            db_id: 1_497_016_494,
            db_name: "FREE".into(),
            resetlogs_id: 1_224_959_854,
            thread: ThreadId(1),
            sequence: LogSeq(seq),
            first_scn: Scn(1000 * u64::from(seq)),
            next_scn: Scn(1000 * u64::from(seq) + 1000),
            first_time: "2026-03-07T00:00:00Z".into(),
            next_time: "2026-03-07T00:01:00Z".into(),
            size: 1024,
            sha256: Sha256Digest::of(&seq.to_le_bytes()),
            object_key: format!("p/archive/sha256/{}", Sha256Digest::of(&seq.to_le_bytes())),
            version_id: Some(format!("v{seq}")),
            retain_until: Some("2026-04-07T00:00:00.000Z".into()),
            shipped_at: "2026-03-07T00:01:02.003Z".into(),
            file_name: format!("arch1_{seq}_1224959854.dbf"),
        }
    }

    fn chain(n: u32) -> Vec<String> {
        let dir = tempfile::tempdir().unwrap();
        let mut m = ManifestDir::open(dir.path(), &mut |_| {}).unwrap();
        for s in 1..=n {
            m.append(new_entry(s)).unwrap();
        }
        let bytes = std::fs::read(dir.path().join(OPEN)).unwrap();
        String::from_utf8(bytes)
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect()
    }

    fn verify(lines: &[String]) -> Result<ChainState, ManifestError> {
        verify_lines(
            lines.iter().map(String::as_str),
            ChainState::GENESIS,
            "test",
        )
    }

    #[test]
    fn chain_round_trip_and_canonical_form() {
        let lines = chain(5);
        let end = verify(&lines).unwrap();
        assert_eq!(end.next_index, 6);
        assert_eq!(end.prev, Sha256Digest::of(lines[4].as_bytes()));
        let first = ManifestEntry::parse_line(&lines[0]).unwrap();
        assert_eq!(first.prev, Sha256Digest::ZERO);
        assert_eq!(first.index, 1);
        assert!(lines[0].starts_with(r#"{"index":1,"db_id":1497016494,"db_name":"FREE","#));
        let second = ManifestEntry::parse_line(&lines[1]).unwrap();
        assert_eq!(second.prev, first.hash());
    }

    #[test]
    fn tampering_is_detected() {
        let lines = chain(5);
        // An altered field breaks the next entry's prev.
        let mut t = lines.clone();
        t[2] = t[2].replace("\"size\":1024", "\"size\":1025");
        match verify(&t).unwrap_err() {
            ManifestError::Broken { line, index, .. } => assert_eq!((line, index), (4, 4)),
            e => panic!("{e}"),
        }
        // A removed entry.
        let mut t = lines.clone();
        t.remove(1);
        match verify(&t).unwrap_err() {
            ManifestError::Broken {
                index,
                expected_index,
                ..
            } => assert_eq!((index, expected_index), (3, 2)),
            e => panic!("{e}"),
        }
        // Reordered entries.
        let mut t = lines.clone();
        t.swap(1, 2);
        assert!(matches!(verify(&t), Err(ManifestError::Broken { .. })));
        // A re-chained forgery still needs every later prev rewritten: altering entry 3 and
        // fixing entry 4's prev breaks at entry 5.
        let mut t = lines.clone();
        let mut e3 = ManifestEntry::parse_line(&t[2]).unwrap();
        e3.sha256 = Sha256Digest::of(b"forged");
        t[2] = e3.canonical_line();
        let mut e4 = ManifestEntry::parse_line(&t[3]).unwrap();
        e4.prev = e3.hash();
        t[3] = e4.canonical_line();
        match verify(&t).unwrap_err() {
            ManifestError::Broken { index, .. } => assert_eq!(index, 5),
            e => panic!("{e}"),
        }
        // Non-canonical bytes (same JSON value, other encoding) are refused.
        let mut t = lines.clone();
        t[0] = t[0].replacen(":", ": ", 1);
        match verify(&t).unwrap_err() {
            ManifestError::Malformed { line, detail, .. } => {
                assert_eq!(line, 1);
                assert!(detail.contains("canonical"), "{detail}");
            }
            e => panic!("{e}"),
        }
        // Unknown fields are refused.
        let mut t = lines;
        t[0] = t[0].replacen('{', "{\"extra\":1,", 1);
        assert!(matches!(verify(&t), Err(ManifestError::Malformed { .. })));
    }

    #[test]
    fn segments_close_seal_and_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let mut seen = Vec::new();
        let mut m = ManifestDir::open(dir.path(), &mut |_| {}).unwrap();
        for s in 1..=3 {
            m.append(new_entry(s)).unwrap();
        }
        let seg = m.close_segment().unwrap().unwrap();
        assert_eq!((seg.first, seg.last), (1, 3));
        assert!(m.close_segment().unwrap().is_none(), "nothing open");
        for s in 4..=5 {
            m.append(new_entry(s)).unwrap();
        }
        assert_eq!(m.unsealed(), vec![seg.clone()]);
        assert_eq!(m.sealed_through(), None);
        let key = segment_key("pre", &seg);
        assert_eq!(
            key,
            format!(
                "pre/manifest/000000000001-000000000003-{}.jsonl",
                seg.sha256
            )
        );
        m.mark_sealed(SealRecord {
            first: 1,
            last: 3,
            sha256: seg.sha256,
            key,
            version_id: None,
            retain_until: None,
            sealed_at: "2026-03-07T00:00:00Z".into(),
        })
        .unwrap();
        assert_eq!(m.sealed_through(), Some(3));
        let state = m.state();
        drop(m);
        let m = ManifestDir::open(dir.path(), &mut |e| seen.push(e.index)).unwrap();
        assert_eq!(seen, vec![1, 2, 3, 4, 5]);
        assert_eq!(m.state(), state);
        assert!(m.unsealed().is_empty());
        assert_eq!(m.sealed_through(), Some(3));
        let id = ManifestEntry::from_new(new_entry(4), 0, Sha256Digest::ZERO).identity();
        assert_eq!(m.by_identity(&id).unwrap().index, 4);
        assert_eq!(m.by_file_name("arch1_2_1224959854.dbf").unwrap().index, 2);
        let all = read_entries(dir.path()).unwrap();
        assert_eq!(all.len(), 5);
        let seg_bytes = std::fs::read(&seg.path).unwrap();
        let open_bytes = std::fs::read(dir.path().join(OPEN)).unwrap();
        let end = verify_segments([("a", &seg_bytes[..]), ("b", &open_bytes[..])]).unwrap();
        assert_eq!(end, state);
    }

    #[test]
    fn crash_between_closing_and_emptying_the_open_segment_is_repaired() {
        let dir = tempfile::tempdir().unwrap();
        let mut m = ManifestDir::open(dir.path(), &mut |_| {}).unwrap();
        for s in 1..=2 {
            m.append(new_entry(s)).unwrap();
        }
        let open_before = std::fs::read(dir.path().join(OPEN)).unwrap();
        m.close_segment().unwrap().unwrap();
        drop(m);
        // As if the crash hit before open.jsonl was emptied, and left a temporary file.
        std::fs::write(dir.path().join(OPEN), &open_before).unwrap();
        std::fs::write(dir.path().join("open.jsonl.tmp.999"), b"junk").unwrap();
        let mut n = 0;
        let mut m = ManifestDir::open(dir.path(), &mut |_| n += 1).unwrap();
        assert_eq!(n, 2, "no entry counted twice");
        assert_eq!(m.open_len(), 0);
        assert!(!dir.path().join("open.jsonl.tmp.999").exists());
        let e = m.append(new_entry(3)).unwrap();
        assert_eq!(e.index, 3);
        assert_eq!(read_entries(dir.path()).unwrap().len(), 3);
    }

    #[test]
    fn tampered_local_files_are_refused_at_open() {
        let dir = tempfile::tempdir().unwrap();
        let mut m = ManifestDir::open(dir.path(), &mut |_| {}).unwrap();
        for s in 1..=3 {
            m.append(new_entry(s)).unwrap();
        }
        drop(m);
        let p = dir.path().join(OPEN);
        let text = std::fs::read_to_string(&p).unwrap();
        std::fs::write(&p, text.replace("arch1_2_", "arch1_9_")).unwrap();
        let e = ManifestDir::open(dir.path(), &mut |_| {}).unwrap_err();
        assert!(matches!(e, ManifestError::Broken { index: 3, .. }), "{e}");
        // A torn last line.
        std::fs::write(&p, &text[..text.len() - 5]).unwrap();
        let e = ManifestDir::open(dir.path(), &mut |_| {}).unwrap_err();
        assert!(e.to_string().contains("torn"), "{e}");
    }

    #[test]
    fn torn_seal_record_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let mut m = ManifestDir::open(dir.path(), &mut |_| {}).unwrap();
        m.append(new_entry(1)).unwrap();
        m.close_segment().unwrap();
        drop(m);
        std::fs::write(dir.path().join(SEALED), b"{\"first\":1,\"la").unwrap();
        let m = ManifestDir::open(dir.path(), &mut |_| {}).unwrap();
        assert_eq!(m.unsealed().len(), 1);
        assert_eq!(std::fs::read(dir.path().join(SEALED)).unwrap(), b"");
    }
}
