//! The manifest audit: reads the manifest as sealed in WORM (and, when given, the database
//! host's local copy), and names every entry that was edited, removed or reordered.
//!
//! ```text
//! <prefix>/manifest/<first>-<last>-<sha256>.jsonl (sealed segments)  [+ local copy]
//!   ─► bytes hash to the SHA-256 in the key?  same entries, same content?
//!        no ─► manifest_seal_mismatch | newest version wrong, an older one right
//!              (a PUT over the locked original) ─► original read, object_replaced
//!   ─► whole chain, every break attributed (unlike verify_lines, which stops at the first):
//!        reordered   index lower than the one before it in the file
//!        removed     index missing between first and last (or after the anchor)
//!        edited      entry n−1 no longer hashes to entry n's `prev`, or differs from its
//!                    sealed copy or from the anchor
//!        unreadable  not a canonical entry
//!   ─► Anchor (highest index and its hash) kept in the verifier's own state
//! ```
//!
//! Invariants: the watcher never writes a mismatching or conflicting segment (closed segments
//! are immutable, so re-sealing yields the same key); stacking versions cannot make sealed
//! entries disappear; the anchor lives off the database host, so a history rewritten
//! wholesale (a forged, self-consistent chain) is still caught.
//!
//! Generic over the chain's entries ([`AuditEntry`]): the watcher's manifest and the
//! collector's chain per stream (`crate::stream_chain`) share the format, the sealing and so
//! the audit; `name` ("manifest", "stream db1-rl2-t1 piece") names the chain in findings.
//! See [`redovault::manifest::verify_lines`] and [`Anchor`].

use std::collections::BTreeMap;
use std::path::Path;

use redovault::manifest::{
    ChainEntry, ChainState, ManifestEntry, Sha256Digest, segment_lines, verify_lines_of,
};
use redovault::store::ArchiveStore;
use redovault_redo::position::ResetlogsId;
use serde::{Deserialize, Serialize};

use crate::report::{Finding, FindingKind, LogRef};

/// A gap an operator has acknowledged (the logs are lost for good): kept visible as
/// information, not failing the run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, smart_default::SmartDefault)]
#[serde(default)]
pub struct AcknowledgedGap {
    pub resetlogs_id: ResetlogsId,
    #[default = 1]
    pub thread: u16,
    /// First missing sequence.
    pub from_seq: u32,
    /// Last missing sequence.
    pub to_seq: u32,
    /// Why, and who acknowledged it.
    pub reason: String,
}

/// What an earlier run verified: the chain up to `index` ended with an entry hashing to `hash`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Anchor {
    /// Highest index verified.
    pub index: u64,
    /// Hash of that entry's canonical line.
    pub hash: Sha256Digest,
}

/// One line as read, with where it came from.
#[derive(Debug, Clone)]
pub struct SourceLine {
    /// Object key or file path.
    pub origin: String,
    /// Line number in it (from 1).
    pub line: usize,
    pub text: String,
}

/// What the audit needs of a chain's entries beyond [`ChainEntry`]: the log a finding about
/// the entry concerns.
pub trait AuditEntry: ChainEntry {
    /// Whether findings name these entries in the report's `entry` field (a manifest index).
    const MANIFEST: bool;

    /// The log the entry records (or where it starts), for findings.
    fn log_ref(&self) -> Option<LogRef>;
}

impl AuditEntry for ManifestEntry {
    const MANIFEST: bool = true;

    fn log_ref(&self) -> Option<LogRef> {
        Some(log_of(self))
    }
}

/// The outcome of auditing one chain.
#[derive(Debug)]
pub struct ChainAudit<E = ManifestEntry> {
    /// Entries by index (the first occurrence of each index), with their line's hash.
    pub entries: BTreeMap<u64, (E, Sha256Digest)>,
    /// What is wrong.
    pub findings: Vec<Finding>,
}

impl<E> Default for ChainAudit<E> {
    fn default() -> Self {
        ChainAudit {
            entries: BTreeMap::new(),
            findings: Vec::new(),
        }
    }
}

impl<E> ChainAudit<E> {
    /// The highest entry and its hash, as the next run's anchor.
    pub fn anchor(&self) -> Option<Anchor> {
        self.entries.iter().next_back().map(|(i, (_, h))| Anchor {
            index: *i,
            hash: *h,
        })
    }
}

fn log_of(e: &ManifestEntry) -> LogRef {
    LogRef {
        resetlogs_id: e.resetlogs_id,
        thread: e.thread.0,
        sequence: e.sequence.0,
    }
}

/// Audits manifest lines in file order (`what` names the copy in findings: "WORM" or "local
/// copy").
pub fn audit_lines(lines: &[SourceLine], what: &str) -> ChainAudit {
    audit_chain_lines::<ManifestEntry>(lines, "manifest", what)
}

/// The finding tied to entry `index` (the report's `entry` when `E` is the manifest's) and to
/// its log, when known.
fn tie<E: AuditEntry>(f: Finding, index: u64, e: Option<&E>) -> Finding {
    let f = if E::MANIFEST { f.with_entry(index) } else { f };
    match e.and_then(AuditEntry::log_ref) {
        Some(l) => f.with_log(l),
        None => f,
    }
}

/// Audits the lines of any chain in file order; `name` names the chain in findings
/// ("manifest" gives "manifest entry 3 (WORM)"), `what` the copy ("WORM", "local copy").
pub fn audit_chain_lines<E: AuditEntry>(
    lines: &[SourceLine],
    name: &str,
    what: &str,
) -> ChainAudit<E> {
    let mut auditor = ChainAuditor::new(name, what);
    for l in lines {
        auditor.push(&l.origin, l.line, &l.text);
    }
    auditor.finish()
}

/// The audit of one chain fed line by line in file order, so that a caller can drop each
/// segment's text once its lines are in ([`read_sealed`] does): what is kept per entry is
/// the parsed entry and its line's hash, not the line.
#[derive(Debug)]
pub struct ChainAuditor<'a, E> {
    audit: ChainAudit<E>,
    last_index: Option<u64>,
    name: &'a str,
    what: &'a str,
    /// Where an incremental audit continues from (None: the genesis).
    after: Option<Anchor>,
}

impl<'a, E: AuditEntry> ChainAuditor<'a, E> {
    /// An empty audit; `name` and `what` as in [`audit_chain_lines`].
    pub fn new(name: &'a str, what: &'a str) -> Self {
        ChainAuditor {
            audit: ChainAudit::default(),
            last_index: None,
            name,
            what,
            after: None,
        }
    }

    /// An audit that continues a chain an earlier run verified up to `anchor`: the first
    /// entry fed must be `anchor.index + 1` and name `anchor.hash` as its predecessor (a hole
    /// or a break there is named as in a whole audit).
    pub fn after(name: &'a str, what: &'a str, anchor: Anchor) -> Self {
        ChainAuditor {
            last_index: Some(anchor.index),
            after: Some(anchor),
            ..ChainAuditor::new(name, what)
        }
    }

    /// The next line: line `line` (from 1) of `origin` (object key or file path).
    pub fn push(&mut self, origin: &str, line: usize, text: &str) {
        let (name, what) = (self.name, self.what);
        let a = &mut self.audit;
        let e = match E::parse_line(text) {
            Ok(e) => e,
            Err(detail) => {
                a.findings.push(Finding::error(
                    FindingKind::ManifestUnreadable,
                    format!("{what} {origin} line {line}"),
                    detail,
                ));
                return;
            }
        };
        let index = e.index();
        if let Some(prev) = self.last_index
            && index <= prev
        {
            a.findings.push(tie(
                Finding::error(
                    FindingKind::ManifestEntryReordered,
                    format!("{name} entry {index} ({what})"),
                    format!("entry {index} appears after entry {prev} ({origin} line {line})"),
                ),
                index,
                Some(&e),
            ));
        }
        self.last_index = Some(self.last_index.map_or(index, |p| p.max(index)));
        let hash = Sha256Digest::of(text.as_bytes());
        match a.entries.get(&index) {
            Some((_, h)) if *h != hash => a.findings.push(tie::<E>(
                Finding::error(
                    FindingKind::ManifestEntryEdited,
                    format!("{name} entry {index} ({what})"),
                    format!("two different entries with index {index} ({origin} line {line})"),
                ),
                index,
                None,
            )),
            Some(_) => {}
            None => {
                a.entries.insert(index, (e, hash));
            }
        }
    }

    /// The hash of the line of entry `index` as first pushed.
    pub fn hash_of(&self, index: u64) -> Option<Sha256Digest> {
        self.audit.entries.get(&index).map(|(_, h)| *h)
    }

    /// The audit of every line pushed: the holes (removed entries) and the chain's breaks
    /// (edited entries) are found here, over the whole chain.
    pub fn finish(self) -> ChainAudit<E> {
        let (name, what) = (self.name, self.what);
        let mut a = self.audit;
        a.findings.extend(holes(&a, name, what, self.after));
        a.findings.extend(breaks(&a, name, what, self.after));
        a
    }
}

/// Removed: holes between 1 (or the entry after the anchor) and the highest index.
fn holes<E: AuditEntry>(
    a: &ChainAudit<E>,
    name: &str,
    what: &str,
    after: Option<Anchor>,
) -> Vec<Finding> {
    let mut expected = after.map_or(1, |an| an.index + 1);
    let mut holes = Vec::new();
    for &i in a.entries.keys() {
        if i > expected {
            holes.push((expected, i - 1));
        }
        expected = i + 1;
    }
    holes
        .into_iter()
        .map(|(from, to)| {
            let subject = if from == to {
                format!("{name} entry {from} ({what})")
            } else {
                format!("{name} entries {from} to {to} ({what})")
            };
            tie::<E>(
                Finding::error(
                    FindingKind::ManifestEntryRemoved,
                    subject,
                    format!(
                        "missing from the chain (entry {} follows entry {})",
                        to + 1,
                        from.saturating_sub(1)
                    ),
                ),
                from,
                None,
            )
        })
        .collect()
}

/// Edited: the chain in index order (from the anchor, when continuing one).
fn breaks<E: AuditEntry>(
    a: &ChainAudit<E>,
    name: &str,
    what: &str,
    after: Option<Anchor>,
) -> Vec<Finding> {
    let mut out = Vec::new();
    let mut prev: Option<(u64, Sha256Digest)> = after.map(|an| (an.index, an.hash));
    for (&i, (e, hash)) in &a.entries {
        match prev {
            Some((pi, ph)) if pi + 1 == i && e.prev() != ph => {
                // The anchor's entry is not in this audit (verified by an earlier run).
                let pe = a.entries.get(&pi).map(|(e, _)| e);
                out.push(tie(
                    Finding::error(
                        FindingKind::ManifestEntryEdited,
                        format!("{name} entry {pi} ({what})"),
                        format!(
                            "its content hashes to {ph}, but entry {i} recorded {} as its predecessor",
                            e.prev()
                        ),
                    ),
                    pi,
                    pe,
                ));
            }
            None if i == 1 && e.prev() != Sha256Digest::ZERO => {
                out.push(tie::<E>(
                    Finding::error(
                        FindingKind::ManifestEntryEdited,
                        format!("{name} entry 1 ({what})"),
                        format!("the first entry must have prev 0…0, found {}", e.prev()),
                    ),
                    1,
                    None,
                ));
            }
            _ => {}
        }
        prev = Some((i, *hash));
    }
    out
}

/// Checks the manifest against the anchor of an earlier run.
pub fn check_anchor(a: &ChainAudit, anchor: &Anchor, what: &str) -> Option<Finding> {
    check_chain_anchor(a, anchor, "manifest", what)
}

/// Checks any chain against the anchor of an earlier run (`name` as in
/// [`audit_chain_lines`]).
pub fn check_chain_anchor<E: AuditEntry>(
    a: &ChainAudit<E>,
    anchor: &Anchor,
    name: &str,
    what: &str,
) -> Option<Finding> {
    match a.entries.get(&anchor.index) {
        Some((_, h)) if *h == anchor.hash => None,
        Some((e, h)) => Some(tie(
            Finding::error(
                FindingKind::ManifestEntryEdited,
                format!("{name} entry {} ({what})", anchor.index),
                format!(
                    "hashes to {h}; an earlier verification recorded {}: history was rewritten",
                    anchor.hash
                ),
            ),
            anchor.index,
            Some(e),
        )),
        None if a
            .entries
            .keys()
            .next_back()
            .is_some_and(|&m| m > anchor.index) =>
        {
            None
        }
        None => Some(tie::<E>(
            Finding::error(
                FindingKind::ManifestEntryRemoved,
                format!("{name} entry {} ({what})", anchor.index),
                format!(
                    "an earlier verification saw entry {}; the chain now ends at {}",
                    anchor.index,
                    a.entries.keys().next_back().copied().unwrap_or(0)
                ),
            ),
            anchor.index,
            None,
        )),
    }
}

/// A sealed segment's key, parsed: `<first>-<last>-<sha256>.jsonl`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentKey {
    /// Full key.
    pub key: String,
    /// First entry.
    pub first: u64,
    /// Last entry.
    pub last: u64,
    /// SHA-256 the key names.
    pub sha256: Sha256Digest,
}

/// Parses a sealed segment's key (None for anything else under `manifest/`).
pub fn parse_segment_key(key: &str) -> Option<SegmentKey> {
    let name = key.rsplit('/').next()?.strip_suffix(".jsonl")?;
    let mut parts = name.splitn(3, '-');
    let first = parts.next()?.parse().ok()?;
    let last = parts.next()?.parse().ok()?;
    let sha256 = Sha256Digest::from_hex(parts.next()?)?;
    Some(SegmentKey {
        key: key.to_string(),
        first,
        last,
        sha256,
    })
}

/// What was read from WORM, besides the chain's entries (see [`read_sealed`]).
#[derive(Debug, Default)]
pub struct Sealed {
    /// Seal-level findings (content not matching its key, conflicting segments).
    pub findings: Vec<Finding>,
    /// Segments read.
    pub segments: usize,
    /// The segments kept, in chain order, each with the hash of its last entry as audited
    /// (None when that line did not parse): where an incremental run can continue.
    pub kept: Vec<(SegmentKey, Option<Sha256Digest>)>,
    /// The first break [`redovault::manifest::verify_segments_of`] finds in the segments kept
    /// (the writers' own verifier, which stops there), None when they verify whole. The audit
    /// names every break; this makes sure it misses none the writers would refuse.
    pub strict: Option<String>,
}

impl Sealed {
    /// A finding when the strict verifier refuses the chain but `audit` found nothing to
    /// name (a segment's framing: a missing final newline, an empty line, a carriage return).
    pub fn unexplained_break<E>(&self, audit: &ChainAudit<E>, name: &str) -> Option<Finding> {
        let why = self.strict.as_ref()?;
        let named = audit.findings.iter().chain(&self.findings).any(|f| {
            matches!(
                f.kind,
                FindingKind::ManifestEntryEdited
                    | FindingKind::ManifestEntryRemoved
                    | FindingKind::ManifestEntryReordered
                    | FindingKind::ManifestUnreadable
            )
        });
        (!named).then(|| {
            Finding::error(
                FindingKind::ManifestUnreadable,
                format!("{name} (WORM)"),
                format!("the sealed segments do not verify: {why}"),
            )
        })
    }
}

/// `prefix/rest` (`rest` when the prefix is empty).
pub fn join(prefix: &str, rest: &str) -> String {
    if prefix.is_empty() {
        rest.to_string()
    } else {
        format!("{prefix}/{rest}")
    }
}

/// Reads every sealed segment under `<prefix>/manifest/` of a chain of `E` entries (the
/// watcher's manifest under the archive prefix, a stream's chain under
/// `<prefix>/streams/<stream>`): checks each against the SHA-256 in its key, drops (and
/// reports) segments that conflict with ones already taken, and audits the lines of the
/// segments kept in chain order (`name` as in [`audit_chain_lines`], the copy being "WORM").
/// The segments kept are also walked as [`redovault::manifest::verify_segments_of`] walks
/// them (the strict verdict). Each segment's bytes are dropped once its lines are audited: what stays is one
/// parsed entry and one hash per line, not the manifest's text.
pub async fn read_sealed<E: AuditEntry, S: ArchiveStore>(
    store: &S,
    prefix: &str,
    name: &str,
) -> Result<(Sealed, ChainAudit<E>), redovault::store::StoreError> {
    let listing = store.list(&join(prefix, "manifest/")).await?;
    let keys = segment_keys(listing.iter().map(|o| o.key.as_str()));
    read_segments(store, keys, name, None).await
}

/// The sealed segment keys among `keys`, in chain order (first, last, key).
pub fn segment_keys<'k>(keys: impl Iterator<Item = &'k str>) -> Vec<SegmentKey> {
    let mut keys: Vec<SegmentKey> = keys.filter_map(parse_segment_key).collect();
    keys.sort_by(|a, b| (a.first, a.last, &a.key).cmp(&(b.first, b.last, &b.key)));
    keys
}

/// [`read_sealed`] of the segments `keys` (in chain order): from the genesis, or (`after`)
/// continuing the chain an earlier run verified up to its anchor, whose segments are not read
/// again: a segment claiming entries at or before the anchor is a second history, the first
/// entry after it must name the anchor's hash.
pub async fn read_segments<E: AuditEntry, S: ArchiveStore>(
    store: &S,
    keys: Vec<SegmentKey>,
    name: &str,
    after: Option<Anchor>,
) -> Result<(Sealed, ChainAudit<E>), redovault::store::StoreError> {
    let mut out = Sealed::default();
    let mut covered_to = after.map_or(0, |a| a.index);
    let mut covered_by = String::from("the segments an earlier run verified");
    let mut auditor = match after {
        Some(a) => ChainAuditor::<E>::after(name, "WORM", a),
        None => ChainAuditor::<E>::new(name, "WORM"),
    };
    let mut strict = Ok(after.map_or(ChainState::GENESIS, |a| ChainState {
        next_index: a.index + 1,
        prev: a.hash,
    }));
    for k in keys {
        let mut bytes = read_version(store, &k.key, None).await?;
        let got = Sha256Digest::of(&bytes);
        if got != k.sha256 {
            // A newer version stacked over the locked segment (an overwrite with put rights):
            // the original, whose content matches its key, is still there under its own
            // version; use it, and report the replacement.
            let mut original = None;
            // Oldest first; the newest (versions[0]) is the one just read.
            for v in store.versions(&k.key).await?.iter().skip(1).rev() {
                let b = read_version(store, &k.key, Some(v)).await?;
                if Sha256Digest::of(&b) == k.sha256 {
                    original = Some((v.clone(), b));
                    break;
                }
            }
            match original {
                Some((v, b)) => {
                    out.findings.push(Finding::error(
                        FindingKind::ObjectReplaced,
                        format!("sealed segment {}", k.key),
                        format!(
                            "the newest version hashes to {got}, not to the {} its key names: \
                             a newer version was put over it; version {v}, the sealed \
                             original, is intact and is the one read",
                            k.sha256
                        ),
                    ));
                    bytes = b;
                }
                None => {
                    out.findings.push(Finding::error(
                        FindingKind::ManifestSealMismatch,
                        format!("sealed segment {}", k.key),
                        format!(
                            "content hashes to {got}, its key names {}, and no version of it \
                             matches: the object was replaced",
                            k.sha256
                        ),
                    ));
                    continue;
                }
            }
        }
        if k.first <= covered_to {
            out.findings.push(
                Finding::error(
                    FindingKind::ManifestSealMismatch,
                    format!("sealed segment {}", k.key),
                    format!(
                        "claims entries {} to {} already sealed by {covered_by}: a second history",
                        k.first, k.last
                    ),
                )
                .with_entry(k.first),
            );
            continue;
        }
        for (i, line) in String::from_utf8_lossy(&bytes).lines().enumerate() {
            auditor.push(&k.key, i + 1, line);
        }
        // The segments kept in order, from the genesis: `verify_segments_of`, one at a time.
        strict = strict
            .and_then(|state| verify_lines_of::<E>(segment_lines(&bytes, &k.key)?, state, &k.key));
        covered_to = k.last;
        out.kept.push((k.clone(), auditor.hash_of(k.last)));
        covered_by = k.key;
        out.segments += 1;
    }
    out.strict = strict.err().map(|e| e.to_string());
    Ok((out, auditor.finish()))
}

/// The whole content of one version of `key` (the newest with `None`).
async fn read_version<S: ArchiveStore>(
    store: &S,
    key: &str,
    version: Option<&str>,
) -> Result<Vec<u8>, redovault::store::StoreError> {
    // A sealed manifest segment is a few hundred KiB; a gigabyte is not one.
    redovault::store::read_object(store, key, version, 1 << 30).await
}

/// Reads the database host's local manifest copy (`segments/*.jsonl` then `open.jsonl`) as
/// raw lines, without judging them (the audit does).
pub fn read_local(dir: &Path) -> std::io::Result<Vec<SourceLine>> {
    let mut files = Vec::new();
    let seg_dir = dir.join("segments");
    match std::fs::read_dir(&seg_dir) {
        Ok(rd) => {
            for e in rd {
                let p = e?.path();
                if p.extension().is_some_and(|x| x == "jsonl") {
                    files.push(p);
                }
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    files.sort();
    let open = dir.join("open.jsonl");
    if open.exists() {
        files.push(open);
    }
    let mut out = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f)?;
        for (i, line) in text.lines().enumerate() {
            out.push(SourceLine {
                origin: f.display().to_string(),
                line: i + 1,
                text: line.to_string(),
            });
        }
    }
    Ok(out)
}

/// Compares the local copy with the sealed one, entry by entry: an entry that differs, or that
/// is sealed but missing locally, is reported against the local copy.
pub fn compare_local(sealed: &ChainAudit, local: &ChainAudit) -> Vec<Finding> {
    let mut out = Vec::new();
    for (i, (se, sh)) in &sealed.entries {
        match local.entries.get(i) {
            Some((_, lh)) if lh == sh => {}
            Some((le, lh)) => out.push(
                Finding::error(
                    FindingKind::ManifestEntryEdited,
                    format!("manifest entry {i} (local copy)"),
                    format!("hashes to {lh}; its sealed copy in WORM hashes to {sh}"),
                )
                .with_entry(*i)
                .with_log(log_of(le)),
            ),
            None => {
                // Holes are already reported by the local chain audit when inside it.
                let local_max = local.entries.keys().next_back().copied().unwrap_or(0);
                if *i > local_max {
                    out.push(
                        Finding::error(
                            FindingKind::ManifestEntryRemoved,
                            format!("manifest entry {i} (local copy)"),
                            "sealed in WORM but missing from the local copy".to_string(),
                        )
                        .with_entry(*i)
                        .with_log(log_of(se)),
                    );
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use redovault_redo::position::{DbId, ResetlogsId};
    use redovault_redo::position::{LogSeq, Scn, ThreadId};

    /// A valid chain of `n` canonical lines.
    pub(crate) fn chain(n: u32) -> Vec<String> {
        let mut prev = Sha256Digest::ZERO;
        (1..=n)
            .map(|i| {
                let e = ManifestEntry {
                    index: u64::from(i),
                    db_id: DbId(7),
                    db_name: "PROD".into(),
                    resetlogs_id: ResetlogsId(1),
                    thread: ThreadId(1),
                    sequence: LogSeq(i + 9),
                    first_scn: Scn(u64::from(i) * 100),
                    next_scn: Scn(u64::from(i + 1) * 100),
                    first_time: "2026-11-21T00:00:00".into(),
                    next_time: "2026-11-21T00:01:00".into(),
                    size: 1024,
                    sha256: Sha256Digest::of(&i.to_le_bytes()),
                    object_key: format!("p/archive/sha256/{i}"),
                    version_id: Some(format!("v{i}")),
                    retain_until: None,
                    shipped_at: "2026-11-21T00:02:00Z".into(),
                    file_name: format!("arch1_{}_1.dbf", i + 9),
                    stored: None,
                    prev,
                };
                let line = e.canonical_line();
                prev = Sha256Digest::of(line.as_bytes());
                line
            })
            .collect()
    }

    fn lines(texts: &[String]) -> Vec<SourceLine> {
        texts
            .iter()
            .enumerate()
            .map(|(i, t)| SourceLine {
                origin: "m".into(),
                line: i + 1,
                text: t.clone(),
            })
            .collect()
    }

    fn kinds(a: &ChainAudit) -> Vec<(FindingKind, Option<u64>)> {
        a.findings.iter().map(|f| (f.kind, f.entry)).collect()
    }

    #[test]
    fn a_clean_chain_has_no_finding() {
        let a = audit_lines(&lines(&chain(6)), "WORM");
        assert!(a.findings.is_empty(), "{:?}", a.findings);
        assert_eq!(a.anchor().unwrap().index, 6);
    }

    #[test]
    fn edit_is_attributed_to_the_edited_entry() {
        let mut c = chain(6);
        c[2] = c[2].replace("\"size\":1024", "\"size\":1025");
        let a = audit_lines(&lines(&c), "local copy");
        assert_eq!(kinds(&a), vec![(FindingKind::ManifestEntryEdited, Some(3))]);
    }

    #[test]
    fn removal_and_reordering_are_named() {
        let mut c = chain(6);
        c.remove(3);
        let a = audit_lines(&lines(&c), "WORM");
        assert_eq!(
            kinds(&a),
            vec![(FindingKind::ManifestEntryRemoved, Some(4))]
        );
        let mut c = chain(6);
        c.swap(1, 2);
        let a = audit_lines(&lines(&c), "WORM");
        assert_eq!(
            kinds(&a),
            vec![(FindingKind::ManifestEntryReordered, Some(2))]
        );
    }

    #[test]
    fn garbage_line_is_unreadable_and_its_entry_removed() {
        let mut c = chain(4);
        c[1] = "{not json".into();
        let a = audit_lines(&lines(&c), "WORM");
        let k = kinds(&a);
        assert!(
            k.contains(&(FindingKind::ManifestUnreadable, None)),
            "{k:?}"
        );
        assert!(
            k.contains(&(FindingKind::ManifestEntryRemoved, Some(2))),
            "{k:?}"
        );
    }

    #[test]
    fn anchor_catches_a_rewritten_history_and_truncation() {
        let c = chain(5);
        let a = audit_lines(&lines(&c), "WORM");
        let anchor = a.anchor().unwrap();
        // A forged, self-consistent chain: every entry re-hashed after an edit of entry 1.
        let mut forged = chain(5);
        forged[4] = forged[4].replace("\"size\":1024", "\"size\":9");
        let f = audit_lines(&lines(&forged), "WORM");
        assert!(
            f.findings.is_empty(),
            "the forgery is self-consistent at its tail"
        );
        assert_eq!(
            check_anchor(&f, &anchor, "WORM").unwrap().kind,
            FindingKind::ManifestEntryEdited
        );
        let short = audit_lines(&lines(&c[..3]), "WORM");
        assert_eq!(
            check_anchor(&short, &anchor, "WORM").unwrap().kind,
            FindingKind::ManifestEntryRemoved
        );
        assert!(check_anchor(&a, &anchor, "WORM").is_none());
    }

    #[test]
    fn local_copy_is_compared_with_the_sealed_one() {
        let c = chain(5);
        let sealed = audit_lines(&lines(&c[..4]), "WORM");
        let mut l = c.clone();
        l[4] = l[4].replace("\"size\":1024", "\"size\":1"); // unsealed tail: not comparable
        assert!(compare_local(&sealed, &audit_lines(&lines(&l), "local")).is_empty());
        let mut l = c.clone();
        l[3] = l[3].replace("\"size\":1024", "\"size\":1");
        let f = compare_local(&sealed, &audit_lines(&lines(&l), "local"));
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].entry, Some(4));
        let f = compare_local(&sealed, &audit_lines(&lines(&c[..2]), "local"));
        assert_eq!(f.len(), 2, "entries 3 and 4 sealed but missing locally");
    }

    #[test]
    fn an_audit_after_an_anchor_continues_its_chain() {
        let c = chain(6);
        let whole = audit_lines(&lines(&c), "WORM");
        let anchor = Anchor {
            index: 3,
            hash: whole.entries[&3].1,
        };
        let after = |texts: &[String]| {
            let mut a = ChainAuditor::<ManifestEntry>::after("manifest", "WORM", anchor);
            for (i, t) in texts.iter().enumerate() {
                a.push("m", i + 1, t);
            }
            a.finish()
        };
        let a = after(&c[3..]);
        assert!(a.findings.is_empty(), "{:?}", a.findings);
        assert_eq!(a.anchor().unwrap().index, 6);
        // Entry 4 missing right after the anchor: removed.
        assert_eq!(
            kinds(&after(&c[4..])),
            vec![(FindingKind::ManifestEntryRemoved, Some(4))]
        );
        // A chain that does not continue from the anchor's hash: the anchor's entry edited.
        let other = Anchor {
            index: 3,
            hash: Sha256Digest::of(b"x"),
        };
        let mut a = ChainAuditor::<ManifestEntry>::after("manifest", "WORM", other);
        for (i, t) in c[3..].iter().enumerate() {
            a.push("m", i + 1, t);
        }
        assert_eq!(
            kinds(&a.finish()),
            vec![(FindingKind::ManifestEntryEdited, Some(3))]
        );
    }

    #[test]
    fn segment_keys() {
        let sha = Sha256Digest::of(b"x");
        let k = format!("p/manifest/000000000001-000000000010-{sha}.jsonl");
        let s = parse_segment_key(&k).unwrap();
        assert_eq!((s.first, s.last, s.sha256), (1, 10, sha));
        assert!(parse_segment_key("p/manifest/junk.jsonl").is_none());
        assert!(parse_segment_key("p/manifest/1-2-zz.jsonl").is_none());
    }
}
