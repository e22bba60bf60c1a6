//! The manifest: an append-only, hash-chained record of every archived redo log shipped to
//! WORM storage.
//!
//! One JSON line per shipped log ([`ManifestEntry`]): database id and name, resetlogs id,
//! thread, sequence, first/next SCN and time, size, SHA-256, object key and version id,
//! retain-until, when it was shipped, the file name, its `index` and `prev`: the SHA-256 of
//! the previous entry's line.
//!
//! The chain format (canonical lines, what the chain proves), the local layout (closed
//! segments, the open one, seal records) and sealing into WORM under [`segment_key`] are
//! generic over the entry type, in `manifest/chain.rs` ([`ChainEntry`], [`ChainDir`],
//! [`verify_lines_of`], [`verify_segments_of`]): the collector keeps one such chain per redo
//! stream. This module adds the manifest's entry and its local copy, [`ManifestDir`], which
//! also answers which logs are recorded.

mod chain;

use std::collections::HashMap;
use std::fmt;
use std::path::Path;

use redovault_redo::position::{DbId, LogSeq, ResetlogsId, Scn, ThreadId};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

pub use chain::{
    ChainDir, ChainEntry, ChainState, ManifestError, SealRecord, SegmentInfo, Sha256Digest,
    read_chain_entries, read_chain_seals, segment_key, segment_lines, verify_lines_of,
    verify_segments_of,
};
#[cfg(test)]
use chain::{OPEN, SEALED};

/// Serde for the redo position newtypes, as plain JSON numbers.
pub mod serde_pos {
    use super::*;

    /// [`ThreadId`] as a number.
    pub mod thread {
        use super::*;
        pub fn serialize<S: Serializer>(v: &ThreadId, s: S) -> Result<S::Ok, S::Error> {
            s.serialize_u16(v.0)
        }
        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<ThreadId, D::Error> {
            u16::deserialize(d).map(ThreadId)
        }
    }

    /// [`LogSeq`] as a number.
    pub mod seq {
        use super::*;
        pub fn serialize<S: Serializer>(v: &LogSeq, s: S) -> Result<S::Ok, S::Error> {
            s.serialize_u32(v.0)
        }
        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<LogSeq, D::Error> {
            u32::deserialize(d).map(LogSeq)
        }
    }

    /// [`Scn`] as a number.
    pub mod scn {
        use super::*;
        pub fn serialize<S: Serializer>(v: &Scn, s: S) -> Result<S::Ok, S::Error> {
            s.serialize_u64(v.0)
        }
        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Scn, D::Error> {
            u64::deserialize(d).map(Scn)
        }
    }
}

/// What identifies one archived log: database, incarnation, thread, sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LogIdentity {
    /// Database id (DBID).
    pub db_id: DbId,
    /// Resetlogs id (the incarnation).
    pub resetlogs_id: ResetlogsId,
    pub thread: ThreadId,
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
    pub db_id: DbId,
    pub db_name: String,
    /// Resetlogs id (incarnation).
    pub resetlogs_id: ResetlogsId,
    #[serde(with = "serde_pos::thread")]
    pub thread: ThreadId,
    #[serde(with = "serde_pos::seq")]
    pub sequence: LogSeq,
    #[serde(with = "serde_pos::scn")]
    pub first_scn: Scn,
    /// Next SCN (first SCN of the next log).
    #[serde(with = "serde_pos::scn")]
    pub next_scn: Scn,
    /// Time of the first SCN: the database's local time as the log header holds it, ISO 8601
    /// without a zone (the log records none; entries written before this was known carry a
    /// `Z` all the same).
    pub first_time: String,
    /// Time of the next SCN, as `first_time`.
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
    /// How the object holds the log when it is not byte-identical to the file (the watcher's
    /// `compress`); absent otherwise, so entries written before it existed keep their bytes.
    /// `size` and `sha256` above always describe the original file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stored: Option<StoredForm>,
    /// SHA-256 of the previous entry's canonical line (zeros for the first).
    pub prev: Sha256Digest,
}

/// The object's own bytes when they are an encoding of the log: what the server's checksum
/// and a re-hash of the download are compared with, before decoding gives the original back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoredForm {
    pub encoding: Encoding,
    /// Size of the object.
    pub size: u64,
    /// SHA-256 of the object.
    pub sha256: Sha256Digest,
}

/// How a stored object encodes the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Encoding {
    /// One zstd frame of the whole file.
    Zstd,
}

impl ManifestEntry {
    /// The canonical line (no trailing newline); [`ChainEntry::canonical_line`] without the
    /// trait in scope.
    pub fn canonical_line(&self) -> String {
        ChainEntry::canonical_line(self)
    }

    /// SHA-256 of the canonical line: the next entry's `prev`.
    pub fn hash(&self) -> Sha256Digest {
        ChainEntry::hash(self)
    }

    /// Parses one line and checks that it is in canonical form.
    pub fn parse_line(line: &str) -> Result<ManifestEntry, String> {
        <ManifestEntry as ChainEntry>::parse_line(line)
    }

    /// Size and SHA-256 of the object in the store: the stored form's, or the file's.
    pub fn object_digest(&self) -> (u64, Sha256Digest) {
        self.stored
            .as_ref()
            .map_or((self.size, self.sha256), |s| (s.size, s.sha256))
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
}

impl ChainEntry for ManifestEntry {
    fn index(&self) -> u64 {
        self.index
    }

    fn prev(&self) -> Sha256Digest {
        self.prev
    }
}

/// [`verify_lines_of`] for the manifest.
pub fn verify_lines<'a>(
    lines: impl IntoIterator<Item = &'a str>,
    start: ChainState,
    origin: &str,
) -> Result<ChainState, ManifestError> {
    verify_lines_of::<ManifestEntry>(lines, start, origin)
}

/// [`verify_segments_of`] for the manifest: the verifier runs this on the segments read back
/// from WORM.
pub fn verify_segments<'a>(
    segments: impl IntoIterator<Item = (&'a str, &'a [u8])>,
) -> Result<ChainState, ManifestError> {
    verify_segments_of::<ManifestEntry>(segments)
}

/// Reads every entry of a manifest directory, verifying the chain (read-only: for `status`,
/// tests and tools). A missing directory is an empty manifest.
pub fn read_entries(dir: &Path) -> Result<Vec<ManifestEntry>, ManifestError> {
    read_chain_entries(dir)
}

/// Reads the seal records of a manifest directory (read-only).
pub fn read_seals(dir: &Path) -> Result<Vec<SealRecord>, ManifestError> {
    read_chain_seals::<ManifestEntry>(dir)
}

/// What a shipped log's entry says, kept in memory for look-ups.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Recorded {
    /// Entry index.
    pub index: u64,
    /// SHA-256 of the log.
    pub sha256: Sha256Digest,
}

/// The local manifest in a directory: its chain ([`ChainDir`]) and small look-up maps
/// (identity → entry, file name → entry, SHA-256 → index), built at open from every entry
/// and kept up to date by [`ManifestDir::append`], so the watcher never re-reads the chain.
#[derive(Debug)]
pub struct ManifestDir {
    chain: ChainDir<ManifestEntry>,
    by_identity: HashMap<LogIdentity, Recorded>,
    by_name: HashMap<String, Recorded>,
    by_sha: HashMap<Sha256Digest, u64>,
}

impl ManifestDir {
    /// Opens (creating it if needed) the manifest in `dir`, verifies the whole chain, repairs
    /// what a crash can leave (temporary files, a torn seal record), and calls `each` for
    /// every entry in order.
    pub fn open(
        dir: &Path,
        each: &mut dyn FnMut(&ManifestEntry),
    ) -> Result<ManifestDir, ManifestError> {
        let mut by_identity = HashMap::new();
        let mut by_name = HashMap::new();
        let mut by_sha = HashMap::new();
        let chain = ChainDir::open(dir, &mut |e: &ManifestEntry| {
            let r = Recorded {
                index: e.index,
                sha256: e.sha256,
            };
            by_identity.insert(e.identity(), r);
            by_name.insert(e.file_name.clone(), r);
            by_sha.insert(e.sha256, e.index);
            each(e);
        })?;
        Ok(ManifestDir {
            chain,
            by_identity,
            by_name,
            by_sha,
        })
    }

    pub fn dir(&self) -> &Path {
        self.chain.dir()
    }

    /// Where the chain stands (next index, hash of the last entry).
    pub fn state(&self) -> ChainState {
        self.chain.state()
    }

    pub fn len(&self) -> u64 {
        self.chain.len()
    }

    /// True when no entry was ever recorded.
    pub fn is_empty(&self) -> bool {
        self.chain.is_empty()
    }

    /// Entries in the open segment.
    pub fn open_len(&self) -> usize {
        self.chain.open_len()
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
    /// this returns) at its place in the chain: its `index` and `prev` are set here, whatever
    /// they held. Blocking.
    pub fn append(&mut self, new: ManifestEntry) -> Result<ManifestEntry, ManifestError> {
        let entry = self
            .chain
            .append_with(|index, prev| ManifestEntry { index, prev, ..new })?;
        let r = Recorded {
            index: entry.index,
            sha256: entry.sha256,
        };
        self.by_identity.insert(entry.identity(), r);
        self.by_name.insert(entry.file_name.clone(), r);
        self.by_sha.insert(entry.sha256, entry.index);
        Ok(entry)
    }

    /// Closes the open segment (if it holds entries): it becomes an immutable segment file,
    /// ready to be sealed into WORM. Blocking.
    pub fn close_segment(&mut self) -> Result<Option<SegmentInfo>, ManifestError> {
        self.chain.close_segment()
    }

    /// Closed segments not yet confirmed in WORM, oldest first.
    pub fn unsealed(&self) -> Vec<SegmentInfo> {
        self.chain.unsealed()
    }

    /// The last entry index covered by a segment confirmed in WORM with every segment before
    /// it (None when nothing is sealed).
    pub fn sealed_through(&self) -> Option<u64> {
        self.chain.sealed_through()
    }

    /// Records that a segment is confirmed in WORM (appended and fsynced). Blocking.
    pub fn mark_sealed(&mut self, record: SealRecord) -> Result<(), ManifestError> {
        self.chain.mark_sealed(record)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new_entry(seq: u32) -> ManifestEntry {
        ManifestEntry {
            index: 0,
            prev: Sha256Digest::ZERO,
            db_id: DbId(1_497_016_494),
            db_name: "FREE".into(),
            resetlogs_id: ResetlogsId(1_224_959_854),
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
            stored: None,
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
    fn a_stored_form_is_in_the_line_only_when_there_is_one() {
        let plain = chain(1).remove(0);
        assert!(!plain.contains("stored"), "{plain}");
        let mut e = ManifestEntry::parse_line(&plain).unwrap();
        e.stored = Some(StoredForm {
            encoding: Encoding::Zstd,
            size: 12,
            sha256: Sha256Digest::of(b"frame"),
        });
        let line = e.canonical_line();
        assert!(
            line.contains(r#""stored":{"encoding":"zstd","size":12,"sha256":""#),
            "{line}"
        );
        assert_eq!(ManifestEntry::parse_line(&line).unwrap(), e);
        assert_eq!(e.object_digest(), (12, Sha256Digest::of(b"frame")));
        // An unknown encoding or field is refused, not ignored.
        assert!(ManifestEntry::parse_line(&line.replace("zstd", "lz4")).is_err());
        assert!(
            ManifestEntry::parse_line(&line.replace(r#""size":12,"#, r#""size":12,"x":1,"#))
                .is_err()
        );
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
        let id = new_entry(4).identity();
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
