//! The hash chain itself, generic over its entries ([`ChainEntry`]): the watcher's manifest
//! ([`super::ManifestEntry`]) and the collector's chain per redo stream share one format, one
//! local layout and one way of sealing, so one verifier argument covers both.
//!
//! ```text
//! entry 1 (prev = 64 zeros) ◄─sha256─ entry 2 (prev) ◄─ ... one canonical JSON line each
//! <dir>/segments/<first index, 12 digits>.jsonl  closed: create-only, fsynced with dir
//!   │   ──put──► WORM under segment_key (holds the segment's own SHA-256)
//!   └─ confirmed ──append, fsync──► <dir>/sealed.jsonl   one line per sealed segment
//! <dir>/open.jsonl                                open segment, rewritten whole per append
//!                                                 (durable::write_atomic: old or new)
//! ```
//!
//! Invariants:
//! - Lines are **canonical** (serde_json of the entry, fields in declaration order, no
//!   whitespace): a line that does not re-encode to itself byte for byte is refused, so each
//!   entry has one byte form and one hash.
//! - `index` counts from 1 with no gap; `prev` is the SHA-256 of the previous entry's line,
//!   [`Sha256Digest::ZERO`] for the first. So an entry cannot be altered, removed, inserted
//!   or reordered without breaking the next entry's `prev` (and the `index` sequence); the
//!   last entries are protected by the copies sealed into WORM.
//! - Closed segments are never rewritten; nobody can pre-create a [`segment_key`], since it
//!   names bytes that do not exist yet; segments chain to each other through `prev`.
//!
//! Local copy: [`ChainDir`] (open with [`crate::durable::write_atomic`]). Checking:
//! [`verify_lines_of`] and [`verify_segments_of`], which the verifier uses on WORM copies.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::durable;

pub use crate::digest::Sha256Digest;

/// One entry of a chain. Its serde encoding is its canonical line, so serializing must not
/// fail and must read back to the same bytes (a struct of strings, integers and options with
/// `#[serde(deny_unknown_fields)]` does); [`ChainDir::append_with`] refuses an entry that
/// does not, rather than write a line that would make the chain unreadable.
///
/// The provided functions define the chain's bytes: implementations keep them.
pub trait ChainEntry:
    Serialize + DeserializeOwned + Clone + fmt::Debug + Send + Sync + 'static
{
    /// Position in the chain, from 1, without holes.
    fn index(&self) -> u64;

    /// SHA-256 of the previous entry's canonical line (zeros for the first).
    fn prev(&self) -> Sha256Digest;

    /// The canonical line (no trailing newline).
    fn canonical_line(&self) -> String {
        // See the trait: an entry whose encoding fails never enters a chain.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// SHA-256 of the canonical line: the next entry's `prev`.
    fn hash(&self) -> Sha256Digest {
        Sha256Digest::of(self.canonical_line().as_bytes())
    }

    /// Parses one line and checks that it is in canonical form.
    fn parse_line(line: &str) -> Result<Self, String> {
        let e: Self = serde_json::from_str(line).map_err(|e| e.to_string())?;
        if e.canonical_line() != line {
            return Err("not in canonical form (re-encoding gives other bytes)".to_string());
        }
        Ok(e)
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

/// Why a chain cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// A file operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        #[source]
        source: std::io::Error,
    },
    /// A line is not an entry, or not in canonical form.
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
        expected_index: u64,
        expected_prev: Sha256Digest,
        found_prev: Sha256Digest,
    },
    /// The local files disagree with each other (a closed segment and the open one), or an
    /// entry to append does not fit the chain.
    #[error("{0}")]
    Inconsistent(String),
}

fn io_err(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> ManifestError {
    let context = context.into();
    move |source| ManifestError::Io { context, source }
}

/// Checks `lines` against the chain at `start` and hands over each entry, parsed once.
fn walk<'a, E: ChainEntry>(
    lines: impl IntoIterator<Item = &'a str>,
    start: ChainState,
    origin: &str,
    mut each: impl FnMut(E),
) -> Result<ChainState, ManifestError> {
    let mut state = start;
    for (i, line) in lines.into_iter().enumerate() {
        let e = E::parse_line(line).map_err(|detail| ManifestError::Malformed {
            origin: origin.to_string(),
            line: i + 1,
            detail,
        })?;
        if e.index() != state.next_index || e.prev() != state.prev {
            return Err(ManifestError::Broken {
                origin: origin.to_string(),
                line: i + 1,
                index: e.index(),
                expected_index: state.next_index,
                expected_prev: state.prev,
                found_prev: e.prev(),
            });
        }
        state = ChainState {
            next_index: e.index() + 1,
            prev: Sha256Digest::of(line.as_bytes()),
        };
        each(e);
    }
    Ok(state)
}

/// Checks that `lines` continue the chain at `start`; returns where the chain then stands.
/// Empty lines are refused (a segment ends with exactly one newline after its last line).
pub fn verify_lines_of<'a, E: ChainEntry>(
    lines: impl IntoIterator<Item = &'a str>,
    start: ChainState,
    origin: &str,
) -> Result<ChainState, ManifestError> {
    walk::<E>(lines, start, origin, |_| {})
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
pub fn verify_segments_of<'a, E: ChainEntry>(
    segments: impl IntoIterator<Item = (&'a str, &'a [u8])>,
) -> Result<ChainState, ManifestError> {
    let mut state = ChainState::GENESIS;
    for (name, bytes) in segments {
        state = verify_lines_of::<E>(segment_lines(bytes, name)?, state, name)?;
    }
    Ok(state)
}

/// The WORM key of a sealed segment: `PREFIX/manifest/<first>-<last>-<sha256>.jsonl`
/// (indexes in 12 digits, so keys sort in chain order). An empty prefix gives
/// `manifest/…`; a prefix made of parts must be joined without an empty part (a key may not
/// start with `/`), as [`crate::watcher::config::join_key`] does.
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
    pub version_id: Option<String>,
    /// Retain-until confirmed by HEAD (RFC 3339).
    pub retain_until: Option<String>,
    /// When it was confirmed (RFC 3339).
    pub sealed_at: String,
}

pub(super) const OPEN: &str = "open.jsonl";
pub(super) const SEGMENTS: &str = "segments";
pub(super) const SEALED: &str = "sealed.jsonl";

/// A chain in a local directory (see the module documentation). Keeps in memory the open
/// segment's lines and the last entry (where a writer resumes), not the closed entries.
#[derive(Debug)]
pub struct ChainDir<E: ChainEntry> {
    dir: PathBuf,
    segments: Vec<SegmentInfo>,
    open: Vec<String>,
    state: ChainState,
    last: Option<E>,
    sealed: BTreeMap<u64, SealRecord>,
}

/// Everything read from a chain directory.
struct Loaded<E> {
    segments: Vec<SegmentInfo>,
    open: Vec<String>,
    state: ChainState,
    last: Option<E>,
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

/// Reads and verifies a chain directory, calling `each` for every entry in order (a
/// segment's entries only once the whole segment verified).
fn load<E: ChainEntry>(dir: &Path, each: &mut dyn FnMut(&E)) -> Result<Loaded<E>, ManifestError> {
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
    let mut last = None;
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
        let mut entries: Vec<E> = Vec::with_capacity(lines.len());
        state = walk(lines, state, &origin, |e| entries.push(e))?;
        entries.iter().for_each(&mut *each);
        last = entries.pop();
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
            .filter(|l| E::parse_line(l).map_or(true, |e| e.index() >= state.next_index))
            .collect();
        let mut entries: Vec<E> = Vec::with_capacity(fresh.len());
        state = walk(fresh.iter().copied(), state, &origin, |e| entries.push(e))?;
        entries.iter().for_each(&mut *each);
        if let Some(e) = entries.pop() {
            last = Some(e);
        }
        open = fresh.into_iter().map(str::to_string).collect();
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
        last,
        sealed,
        sealed_torn,
    })
}

/// Reads every entry of a chain directory, verifying the chain (read-only: for `status`,
/// tests and tools). A missing directory is an empty chain.
pub fn read_chain_entries<E: ChainEntry>(dir: &Path) -> Result<Vec<E>, ManifestError> {
    let mut out = Vec::new();
    load::<E>(dir, &mut |e| out.push(e.clone()))?;
    Ok(out)
}

/// Reads the seal records of a chain directory (read-only). The chain is verified too: a
/// record only vouches for segments of a chain that holds.
pub fn read_chain_seals<E: ChainEntry>(dir: &Path) -> Result<Vec<SealRecord>, ManifestError> {
    Ok(load::<E>(dir, &mut |_| {})?.sealed.into_values().collect())
}

impl<E: ChainEntry> ChainDir<E> {
    /// Opens (creating it if needed) the chain in `dir`, verifies it whole, repairs what a
    /// crash can leave (temporary files, a torn seal record), and calls `each` for every entry
    /// in order.
    pub fn open(dir: &Path, each: &mut dyn FnMut(&E)) -> Result<ChainDir<E>, ManifestError> {
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
        let loaded = load(dir, each)?;
        let c = ChainDir {
            dir: dir.to_path_buf(),
            segments: loaded.segments,
            open: loaded.open,
            state: loaded.state,
            last: loaded.last,
            sealed: loaded.sealed,
        };
        if loaded.sealed_torn {
            c.rewrite_seals()?;
        }
        Ok(c)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where the chain stands (next index, hash of the last entry).
    pub fn state(&self) -> ChainState {
        self.state
    }

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

    /// The last entry (None for an empty chain): where a writer resumes.
    pub fn last(&self) -> Option<E> {
        self.last.clone()
    }

    /// Appends the entry `f` builds for the next place in the chain (its index and `prev`),
    /// durably: the open segment is rewritten atomically and fsynced before this returns.
    /// An entry with another index or `prev`, or whose line would not read back, is refused
    /// (`Inconsistent`) and nothing is written. Blocking.
    pub fn append_with(
        &mut self,
        f: impl FnOnce(u64, Sha256Digest) -> E,
    ) -> Result<E, ManifestError> {
        let ChainState { next_index, prev } = self.state;
        let entry = f(next_index, prev);
        if entry.index() != next_index || entry.prev() != prev {
            return Err(ManifestError::Inconsistent(format!(
                "entry to append has index {} with prev {}, the chain expects index \
                 {next_index} with prev {prev}",
                entry.index(),
                entry.prev()
            )));
        }
        let line = entry.canonical_line();
        if let Err(detail) = E::parse_line(&line) {
            return Err(ManifestError::Inconsistent(format!(
                "entry {next_index} would not read back: {detail}"
            )));
        }
        let hash = Sha256Digest::of(line.as_bytes());
        self.open.push(line);
        if let Err(e) = self.write_open() {
            self.open.pop();
            return Err(e);
        }
        self.state = ChainState {
            next_index: next_index + 1,
            prev: hash,
        };
        self.last = Some(entry.clone());
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
        let first = E::parse_line(first_line)
            .map_err(|d| ManifestError::Inconsistent(format!("open segment: {d}")))?
            .index();
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

    /// The smallest entry a chain can hold, standing for the collector's.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct TestEntry {
        index: u64,
        value: String,
        prev: Sha256Digest,
    }

    impl ChainEntry for TestEntry {
        fn index(&self) -> u64 {
            self.index
        }
        fn prev(&self) -> Sha256Digest {
            self.prev
        }
    }

    fn open(dir: &Path) -> ChainDir<TestEntry> {
        ChainDir::open(dir, &mut |_| {}).unwrap()
    }

    fn append(c: &mut ChainDir<TestEntry>, value: &str) -> TestEntry {
        c.append_with(|index, prev| TestEntry {
            index,
            value: value.to_string(),
            prev,
        })
        .unwrap()
    }

    /// The open segment's lines after appending `values`.
    fn lines(values: &[&str]) -> Vec<String> {
        let dir = tempfile::tempdir().unwrap();
        let mut c = open(dir.path());
        for v in values {
            append(&mut c, v);
        }
        std::fs::read_to_string(dir.path().join(OPEN))
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect()
    }

    fn verify(lines: &[String]) -> Result<ChainState, ManifestError> {
        verify_lines_of::<TestEntry>(lines.iter().map(String::as_str), ChainState::GENESIS, "t")
    }

    /// (line, index found, index expected) of a `Broken` error.
    fn broken(r: Result<impl fmt::Debug, ManifestError>) -> (usize, u64, u64) {
        match r.unwrap_err() {
            ManifestError::Broken {
                line,
                index,
                expected_index,
                ..
            } => (line, index, expected_index),
            e => panic!("{e}"),
        }
    }

    #[test]
    fn append_reopen_and_last() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = open(dir.path());
        assert!(c.is_empty());
        assert_eq!((c.state(), c.last()), (ChainState::GENESIS, None));
        let a = append(&mut c, "a");
        assert_eq!((a.index, a.prev), (1, Sha256Digest::ZERO));
        assert_eq!(
            a.canonical_line(),
            format!(
                r#"{{"index":1,"value":"a","prev":"{}"}}"#,
                Sha256Digest::ZERO
            )
        );
        let b = append(&mut c, "b");
        assert_eq!((b.index, b.prev), (2, a.hash()));
        assert_eq!((c.len(), c.open_len()), (2, 2));
        assert_eq!(c.last(), Some(b.clone()));
        assert_eq!(
            std::fs::read_to_string(dir.path().join(OPEN)).unwrap(),
            format!("{}\n{}\n", a.canonical_line(), b.canonical_line())
        );
        let state = c.state();
        assert_eq!(state.prev, b.hash());
        drop(c);

        let mut seen = Vec::new();
        let mut c =
            ChainDir::<TestEntry>::open(dir.path(), &mut |e| seen.push(e.value.clone())).unwrap();
        assert_eq!(seen, ["a", "b"]);
        assert_eq!(c.state(), state);
        assert_eq!(c.last(), Some(b.clone()));
        c.close_segment().unwrap().unwrap();
        drop(c);

        // The last entry of a closed segment, nothing open.
        let mut c = open(dir.path());
        assert_eq!((c.open_len(), c.last()), (0, Some(b.clone())));
        let d = append(&mut c, "c");
        assert_eq!((d.index, d.prev), (3, b.hash()));
        let all = read_chain_entries::<TestEntry>(dir.path()).unwrap();
        assert_eq!(
            all.iter().map(|e| e.value.as_str()).collect::<Vec<_>>(),
            ["a", "b", "c"]
        );
        assert!(
            read_chain_entries::<TestEntry>(&dir.path().join("none"))
                .unwrap()
                .is_empty()
        );
    }

    fn record(seg: &SegmentInfo) -> SealRecord {
        SealRecord {
            first: seg.first,
            last: seg.last,
            sha256: seg.sha256,
            key: segment_key("p", seg),
            version_id: Some("v1".into()),
            retain_until: None,
            sealed_at: "2026-03-07T00:00:00Z".into(),
        }
    }

    #[test]
    fn segments_seal_records_and_keys() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = open(dir.path());
        for v in ["a", "b", "c"] {
            append(&mut c, v);
        }
        let s1 = c.close_segment().unwrap().unwrap();
        assert_eq!((s1.first, s1.last), (1, 3));
        assert_eq!(
            s1.path,
            dir.path().join(SEGMENTS).join("000000000001.jsonl")
        );
        let d = append(&mut c, "d");
        let s2 = c.close_segment().unwrap().unwrap();
        assert_eq!((s2.first, s2.last), (4, 4));
        append(&mut c, "e");
        assert_eq!(c.unsealed(), vec![s1.clone(), s2.clone()]);
        // Sealed through counts only an unbroken run from the first segment.
        c.mark_sealed(record(&s2)).unwrap();
        assert_eq!((c.sealed_through(), c.unsealed()), (None, vec![s1.clone()]));
        c.mark_sealed(record(&s1)).unwrap();
        assert_eq!(c.sealed_through(), Some(4));
        drop(c);
        let c = open(dir.path());
        assert!(c.unsealed().is_empty());
        assert_eq!(c.sealed_through(), Some(4));
        let seals = read_chain_seals::<TestEntry>(dir.path()).unwrap();
        assert_eq!(seals, vec![record(&s1), record(&s2)]);

        // A stream's chain in WORM: `<prefix>/streams/<stream>/manifest/…`, prefix or not.
        let stream = "streams/db1-rl2-t1";
        let join = crate::watcher::config::join_key;
        assert_eq!(
            segment_key(&join("pre", stream), &s1),
            format!(
                "pre/streams/db1-rl2-t1/manifest/000000000001-000000000003-{}.jsonl",
                s1.sha256
            )
        );
        assert_eq!(
            segment_key(&join("", stream), &s1),
            format!(
                "streams/db1-rl2-t1/manifest/000000000001-000000000003-{}.jsonl",
                s1.sha256
            )
        );
        assert_eq!(
            segment_key("", &s2),
            format!("manifest/000000000004-000000000004-{}.jsonl", s2.sha256)
        );
        let bodies: Vec<(String, Vec<u8>)> = [&s1, &s2]
            .iter()
            .map(|s| (segment_key("p", s), std::fs::read(&s.path).unwrap()))
            .collect();
        let end = verify_segments_of::<TestEntry>(bodies.iter().map(|(k, b)| (k.as_str(), &b[..])))
            .unwrap();
        assert_eq!(
            end,
            ChainState {
                next_index: 5,
                prev: d.hash()
            }
        );
        // Segments out of order do not chain.
        let (line, index, expected) = broken(verify_segments_of::<TestEntry>(
            bodies.iter().rev().map(|(k, b)| (k.as_str(), &b[..])),
        ));
        assert_eq!((line, index, expected), (1, 4, 1));
    }

    #[test]
    fn edited_removed_reordered_lines_break_the_chain_at_their_line() {
        let lines = lines(&["a", "b", "c", "d"]);
        assert_eq!(verify(&lines).unwrap().next_index, 5);
        // An edited entry reads fine itself; the next one no longer names it.
        let mut t = lines.clone();
        t[1] = t[1].replace(r#""value":"b""#, r#""value":"x""#);
        assert_eq!(broken(verify(&t)), (3, 3, 3));
        // Removed.
        let mut t = lines.clone();
        t.remove(1);
        assert_eq!(broken(verify(&t)), (2, 3, 2));
        // Reordered.
        let mut t = lines.clone();
        t.swap(1, 2);
        assert_eq!(broken(verify(&t)), (2, 3, 2));
        // Inserted twice.
        let mut t = lines.clone();
        t.insert(2, t[1].clone());
        assert_eq!(broken(verify(&t)), (3, 2, 3));

        // The same on disk, in a closed segment and in the open one, refused at open.
        let dir = tempfile::tempdir().unwrap();
        let mut c = open(dir.path());
        for v in ["a", "b", "c"] {
            append(&mut c, v);
        }
        let seg = c.close_segment().unwrap().unwrap();
        for v in ["d", "e"] {
            append(&mut c, v);
        }
        drop(c);
        let text = std::fs::read_to_string(&seg.path).unwrap();
        std::fs::write(&seg.path, text.replace(r#""value":"a""#, r#""value":"x""#)).unwrap();
        let e = ChainDir::<TestEntry>::open(dir.path(), &mut |_| {}).unwrap_err();
        assert!(e.to_string().contains("000000000001.jsonl line 2"), "{e}");
        std::fs::write(&seg.path, text).unwrap();
        let p = dir.path().join(OPEN);
        let text = std::fs::read_to_string(&p).unwrap();
        let mut t: Vec<&str> = text.lines().collect();
        t.swap(0, 1);
        std::fs::write(&p, t.join("\n") + "\n").unwrap();
        let e = ChainDir::<TestEntry>::open(dir.path(), &mut |_| {}).unwrap_err();
        assert!(
            matches!(
                e,
                ManifestError::Broken {
                    line: 1,
                    index: 5,
                    ..
                }
            ),
            "{e}"
        );
        assert!(e.to_string().contains("open.jsonl line 1"), "{e}");
    }

    #[test]
    fn non_canonical_lines_are_refused() {
        let lines = lines(&["a", "b"]);
        let zero = Sha256Digest::ZERO;
        let same_value_other_bytes = [
            lines[0].replacen(':', ": ", 1),
            format!(r#"{{"value":"a","index":1,"prev":"{zero}"}}"#),
            format!(r#"{{"index":1,"value":"\u0061","prev":"{zero}"}}"#),
        ];
        for bad in same_value_other_bytes {
            assert_eq!(
                serde_json::from_str::<TestEntry>(&bad).unwrap(),
                TestEntry::parse_line(&lines[0]).unwrap(),
                "{bad}"
            );
            let mut t = lines.clone();
            t[0] = bad;
            match verify(&t).unwrap_err() {
                ManifestError::Malformed { line, detail, .. } => {
                    assert_eq!(line, 1);
                    assert!(detail.contains("canonical"), "{detail}");
                }
                e => panic!("{e}"),
            }
        }
        // Not an entry at all: an unknown field, upper-case hex.
        let mut t = lines.clone();
        t[1] = t[1].replacen('{', r#"{"extra":1,"#, 1);
        assert!(matches!(
            verify(&t),
            Err(ManifestError::Malformed { line: 2, .. })
        ));
        let mut t = lines;
        t[0] = format!(r#"{{"index":1,"value":"a","prev":"{}"}}"#, "A".repeat(64));
        assert!(matches!(
            verify(&t),
            Err(ManifestError::Malformed { line: 1, .. })
        ));
    }

    #[test]
    fn append_with_refuses_an_entry_out_of_place() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = open(dir.path());
        let a = append(&mut c, "a");
        let e = c
            .append_with(|index, prev| TestEntry {
                index: index + 1,
                value: "b".into(),
                prev,
            })
            .unwrap_err();
        assert!(matches!(e, ManifestError::Inconsistent(_)), "{e}");
        assert!(e.to_string().contains("expects index 2"), "{e}");
        let e = c
            .append_with(|index, _| TestEntry {
                index,
                value: "b".into(),
                prev: Sha256Digest::ZERO,
            })
            .unwrap_err();
        assert!(matches!(e, ManifestError::Inconsistent(_)), "{e}");
        // Nothing was recorded, in memory or on disk.
        assert_eq!((c.len(), c.last()), (1, Some(a.clone())));
        drop(c);
        let mut c = open(dir.path());
        assert_eq!((c.len(), c.last()), (1, Some(a.clone())));
        assert_eq!(append(&mut c, "b").prev, a.hash());
    }

    /// An entry whose encoding does not read back (a field the reader skips).
    #[derive(Debug, Clone, Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct OneWay {
        index: u64,
        #[serde(skip_deserializing)]
        note: String,
        prev: Sha256Digest,
    }

    impl ChainEntry for OneWay {
        fn index(&self) -> u64 {
            self.index
        }
        fn prev(&self) -> Sha256Digest {
            self.prev
        }
    }

    #[test]
    fn append_with_refuses_an_entry_that_would_not_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = ChainDir::<OneWay>::open(dir.path(), &mut |_| {}).unwrap();
        let e = c
            .append_with(|index, prev| OneWay {
                index,
                note: "x".into(),
                prev,
            })
            .unwrap_err();
        assert!(e.to_string().contains("would not read back"), "{e}");
        assert!(c.is_empty());
        assert!(!dir.path().join(OPEN).exists());
        drop(c);
        assert!(
            ChainDir::<OneWay>::open(dir.path(), &mut |_| {})
                .unwrap()
                .is_empty()
        );
    }
}
