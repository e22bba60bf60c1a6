//! The incremental run of `verify` (issue 19): what a clean run verified is kept, and the next
//! run audits only what is new, plus one listing of what could have changed since.
//!
//! ```text
//! verifier-incremental.json (format 1, replaced atomically after each clean run)
//!   segments  each sealed segment audited: key, version id, ETag, size (local: file stamp),
//!             the index and chain hash at its end
//!   tails     per (resetlogs id, thread) the entry with the highest sequence (continuity)
//!   objects   per archived object: what the manifest recorded of it, and the listing's
//!             newest version, version count, size, ETag at the last clean run
//!
//! next run: ListObjectVersions PREFIX/manifest/
//!   every anchored segment listed, newest, same version / ETag / size?   no ─► finding,
//!   full run
//!   ─► only the segments after the anchor read and audited, the chain continued from its
//!      hash (a segment claiming entries at or before it: a second history)
//!   ListObjectVersions PREFIX/archive/ (1,000 a request) against the objects' records:
//!   HEAD only the objects new, changed (newer version, delete marker, gone, size, ETag),
//!   unsettled, under a GOVERNANCE policy (their retention can be shortened, and no
//!   listing shows it), plus the rolling deep share
//! ```
//!
//! A COMPLIANCE retention cannot be shortened or removed by anyone before it expires, and
//! every object of a clean run under a COMPLIANCE policy had one, so its retention is not
//! read again; under GOVERNANCE it is, by a HEAD of every recorded object each run.
//!
//! A missing, older, unreadable or corrupt file means "no anchor": the run is a full one,
//! and the report says why. A different prefix, lock policy, minimum retention or list of
//! acknowledged gaps than the anchor was taken with also means a full run.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use redovault::manifest::{ManifestEntry, Sha256Digest};
use redovault::store::{LockMode, VersionSummary};
use redovault_redo::position::ResetlogsId;
use serde::{Deserialize, Serialize};

use crate::chain::{AcknowledgedGap, Anchor, SegmentKey};
use crate::objects::{Encoded, ObjectRef, Policy};
use crate::report::{Finding, FindingKind, LogRef};

/// The file in the state directory.
pub const INCREMENTAL_FILE: &str = "verifier-incremental.json";

/// Whether a run may be incremental.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Incremental {
    /// Full runs, nothing kept for incremental ones (the default).
    #[default]
    Off,
    /// Incremental when an anchor is kept, else full; a clean run keeps its anchor.
    On,
    /// A full run (`verify --full`) that keeps its anchor for the next incremental one.
    Full,
}

/// The file's versions: a newer verifier reads the older formats it knows, or runs full.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "format")]
enum StateFile {
    #[serde(rename = "1")]
    V1(IncrementalState),
}

/// What the last clean run verified, for the next incremental run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IncrementalState {
    /// The archive prefix it is about.
    pub prefix: String,
    /// The lock policy the objects were checked against.
    pub lock_mode: Option<LockMode>,
    /// Minimum retention (seconds) the objects were checked against.
    pub min_retention_secs: u64,
    /// The acknowledged gaps the chain was judged with.
    pub acknowledged: Vec<AcknowledgedGap>,
    /// The sealed segments audited, in chain order.
    pub segments: Vec<SegmentRecord>,
    /// Sealed entries up to the anchor.
    pub entries: u64,
    /// `shipped_at` of the newest of them.
    pub newest_shipped_at: Option<String>,
    /// Per (resetlogs id, thread), the entry with the highest sequence.
    pub tails: Vec<ManifestEntry>,
    /// Per object key.
    pub objects: BTreeMap<String, ObjectRecord>,
}

/// A sealed segment as audited.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SegmentRecord {
    pub key: String,
    pub first: u64,
    pub last: u64,
    /// How the listing showed it (a locked object: the same bytes while this holds).
    pub listed: Listed,
    /// The hash of its last entry's line: the chain continues from it.
    pub end: Sha256Digest,
}

/// What a listing of versions shows of one key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Listed {
    /// The newest version's id (None: unversioned, local store).
    pub newest: Option<String>,
    /// The newest is a delete marker.
    #[serde(default)]
    pub delete_marker: bool,
    /// Versions and delete markers.
    pub versions: u32,
    /// Size of the newest.
    pub size: u64,
    pub etag: Option<String>,
    /// The local store's file identity.
    pub stamp: Option<String>,
}

/// One archived object: what the manifest recorded of it (its first entry), and the listing
/// at the last clean run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectRecord {
    pub entry: u64,
    pub db_id: u32,
    pub resetlogs_id: u32,
    pub thread: u16,
    pub sequence: u32,
    pub file_name: String,
    pub version_id: Option<String>,
    pub size: u64,
    pub sha256: Sha256Digest,
    /// The object's own size and SHA-256 when it is a compressed log.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stored: Option<(u64, Sha256Digest)>,
    pub shipped_at: String,
    /// The listing when it showed the recorded version as the newest and only one (None:
    /// not settled, HEADed every run).
    pub listed: Option<Listed>,
}

impl ObjectRecord {
    /// The record of entry `e`'s object, settled by `listed` when it shows the recorded
    /// version as the key's newest and only version.
    pub fn of(e: &ManifestEntry, listed: Option<&Listed>) -> ObjectRecord {
        ObjectRecord {
            entry: e.index,
            db_id: e.db_id.0,
            resetlogs_id: e.resetlogs_id.0,
            thread: e.thread.0,
            sequence: e.sequence.0,
            file_name: e.file_name.clone(),
            version_id: e.version_id.clone(),
            size: e.size,
            sha256: e.sha256,
            stored: e.stored.as_ref().map(|s| (s.size, s.sha256)),
            shipped_at: e.shipped_at.clone(),
            listed: None,
        }
        .settled_by(listed)
    }

    /// The same record with the listing `listed`, kept only when it is settled.
    pub fn settled_by(mut self, listed: Option<&Listed>) -> ObjectRecord {
        self.listed = listed
            .filter(|l| !l.delete_marker && l.versions == 1 && l.newest == self.version_id)
            .cloned();
        self
    }

    /// What the object checks need, as for its manifest entry.
    pub fn object_ref(&self, key: &str) -> ObjectRef {
        ObjectRef {
            key: key.to_string(),
            version_id: self.version_id.clone(),
            size: self.size,
            sha256: self.sha256,
            stored: self.stored.map(|(size, sha256)| Encoded {
                size,
                sha256: Some(sha256),
            }),
            put_at: self.shipped_at.clone(),
            recorded_in: "the manifest",
            subject: format!(
                "thread {} sequence {} ({})",
                self.thread, self.sequence, self.file_name
            ),
            entry: Some(self.entry),
            log: Some(self.log()),
        }
    }

    /// The log it holds.
    pub fn log(&self) -> LogRef {
        LogRef {
            resetlogs_id: ResetlogsId(self.resetlogs_id),
            thread: self.thread,
            sequence: self.sequence,
        }
    }
}

/// Per key, what a listing of versions shows (each key's entries newest first, as
/// [`redovault::store::ArchiveStore::list_versions`] gives them).
pub fn summarize(listing: &[VersionSummary]) -> HashMap<String, Listed> {
    let mut out: HashMap<String, Listed> = HashMap::new();
    for v in listing {
        let l = out.entry(v.key.clone()).or_insert_with(|| Listed {
            newest: None,
            delete_marker: false,
            versions: 0,
            size: 0,
            etag: None,
            stamp: None,
        });
        l.versions += 1;
        if v.is_latest {
            l.newest = v.version_id.clone();
            l.delete_marker = v.delete_marker;
            l.size = v.size;
            l.etag = v.etag.clone();
            l.stamp = v.stamp.clone();
        }
    }
    out
}

/// Why a run that was asked to be incremental is a full one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fallback {
    /// In one line, for the report.
    pub why: String,
    /// What the incremental run found before falling back (reported with the full run's).
    pub findings: Vec<Finding>,
}

impl Fallback {
    pub fn because(why: impl Into<String>) -> Fallback {
        Fallback {
            why: why.into(),
            findings: Vec::new(),
        }
    }
}

/// Reads the kept state: `Err` (the reason, for the report) when there is no usable anchor.
pub fn load(dir: &Path) -> Result<IncrementalState, String> {
    let p = dir.join(INCREMENTAL_FILE);
    let bytes = match std::fs::read(&p) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(format!("no anchor yet ({} does not exist)", p.display()));
        }
        Err(e) => return Err(format!("{} cannot be read: {e}", p.display())),
    };
    match serde_json::from_slice::<StateFile>(&bytes) {
        Ok(StateFile::V1(s)) if s.segments.is_empty() => {
            Err(format!("{} anchors no sealed segment", p.display()))
        }
        Ok(StateFile::V1(s)) => Ok(s),
        Err(e) => Err(format!(
            "{} is not a state this verifier reads (an older format, or damaged): {e}",
            p.display()
        )),
    }
}

/// [`StateFile`] as written: the state borrowed, not copied (it holds a record per object).
#[derive(Serialize)]
#[serde(tag = "format")]
enum StateFileRef<'a> {
    #[serde(rename = "1")]
    V1(&'a IncrementalState),
}

/// Replaces the kept state (atomically: the old one or the new one, never half).
pub fn save(dir: &Path, s: &IncrementalState) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let bytes = serde_json::to_vec(&StateFileRef::V1(s)).map_err(std::io::Error::other)?;
    redovault::durable::write_atomic(&dir.join(INCREMENTAL_FILE), &bytes)
}

/// What an incremental run continues from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The last anchored segment's key.
    pub anchor_segment: String,
    /// Its end: index and hash.
    pub anchor: Anchor,
    /// Segments anchored (not read again).
    pub anchored: usize,
    /// The segments to read: every listed segment not anchored, in chain order.
    pub new_segments: Vec<SegmentKey>,
}

/// Checks the kept state against this run's settings and the listing of
/// `PREFIX/manifest/`: every anchored segment must still be listed as it was (newest, same
/// version, ETag, size, no other version, no delete marker); anything else is a finding and
/// a full run. A changed local-store stamp alone (same size) is a full run without finding:
/// the full run reads the bytes.
pub fn plan(
    st: &IncrementalState,
    prefix: &str,
    policy: &Policy,
    acknowledged: &[AcknowledgedGap],
    listing: &[VersionSummary],
) -> Result<Plan, Fallback> {
    if st.prefix != prefix {
        return Err(Fallback::because(format!(
            "the anchor was taken under prefix {:?}, this run verifies {prefix:?}",
            st.prefix
        )));
    }
    if st.lock_mode != policy.lock_mode || st.min_retention_secs != policy.min_retention.as_secs() {
        return Err(Fallback::because(
            "the lock policy (lock_mode, min_retention) changed since the anchor was taken",
        ));
    }
    if st.acknowledged != acknowledged {
        return Err(Fallback::because(
            "the acknowledged gaps changed since the anchor was taken",
        ));
    }
    let Some(last) = st.segments.last() else {
        return Err(Fallback::because(
            "the kept state anchors no sealed segment",
        ));
    };
    let now = summarize(listing);
    let mut findings = Vec::new();
    let mut stamp_changed = None;
    for s in &st.segments {
        let why = match now.get(&s.key) {
            None => Some("is no longer listed".to_string()),
            Some(l) if l == &s.listed => None,
            Some(l) if l.delete_marker => Some(format!(
                "is hidden by a delete marker ({})",
                l.newest.as_deref().unwrap_or("-")
            )),
            Some(l) if l.newest != s.listed.newest || l.versions != s.listed.versions => {
                Some(format!(
                    "has {} version(s), the newest {}; the audit saw {} version(s), the newest {}",
                    l.versions,
                    l.newest.as_deref().unwrap_or("-"),
                    s.listed.versions,
                    s.listed.newest.as_deref().unwrap_or("-")
                ))
            }
            Some(l) if l.size != s.listed.size || l.etag != s.listed.etag => Some(format!(
                "is {} bytes (ETag {}); the audit saw {} bytes (ETag {})",
                l.size,
                l.etag.as_deref().unwrap_or("-"),
                s.listed.size,
                s.listed.etag.as_deref().unwrap_or("-")
            )),
            Some(_) => {
                stamp_changed.get_or_insert_with(|| s.key.clone());
                None
            }
        };
        if let Some(why) = why {
            findings.push(
                Finding::error(
                    FindingKind::ManifestSealMismatch,
                    format!("sealed segment {}", s.key),
                    format!(
                        "audited by an earlier run (entries {} to {}), it {why}: the sealed manifest was altered after it was verified",
                        s.first, s.last
                    ),
                )
                .with_entry(s.first),
            );
        }
    }
    if !findings.is_empty() {
        return Err(Fallback {
            why: format!(
                "{} anchored sealed segment(s) changed since they were verified",
                findings.len()
            ),
            findings,
        });
    }
    if let Some(k) = stamp_changed {
        return Err(Fallback::because(format!(
            "the file of anchored segment {k} changed (same size): the full run reads it again"
        )));
    }
    let anchored: std::collections::HashSet<&str> =
        st.segments.iter().map(|s| s.key.as_str()).collect();
    let new_segments = crate::chain::segment_keys(
        listing
            .iter()
            .filter(|v| v.is_latest && !v.delete_marker && !anchored.contains(v.key.as_str()))
            .map(|v| v.key.as_str()),
    );
    Ok(Plan {
        anchor_segment: last.key.clone(),
        anchor: Anchor {
            index: last.last,
            hash: last.end,
        },
        anchored: st.segments.len(),
        new_segments,
    })
}

/// The local copy against the segments verified before, which an incremental run does not
/// read: the local copy's own chain is audited whole, so its entry at each anchored
/// segment's end hashing as the sealed one did means every entry up to it is the sealed one.
pub fn compare_local_ends(
    segments: &[SegmentRecord],
    local: &crate::chain::ChainAudit,
) -> Vec<Finding> {
    let local_max = local.entries.keys().next_back().copied().unwrap_or(0);
    let mut out = Vec::new();
    for s in segments {
        match local.entries.get(&s.last) {
            Some((_, h)) if *h == s.end => {}
            Some((e, h)) => out.push(
                Finding::error(
                    FindingKind::ManifestEntryEdited,
                    format!("manifest entry {} (local copy)", s.last),
                    format!(
                        "hashes to {h}; its sealed copy in WORM (the end of {}) hashed to {} when verified",
                        s.key, s.end
                    ),
                )
                .with_entry(s.last)
                .with_log(LogRef {
                    resetlogs_id: e.resetlogs_id,
                    thread: e.thread.0,
                    sequence: e.sequence.0,
                }),
            ),
            // Holes inside the local copy are its own audit's findings.
            None if s.last > local_max => out.push(
                Finding::error(
                    FindingKind::ManifestEntryRemoved,
                    format!("manifest entry {} (local copy)", s.last),
                    "sealed in WORM but missing from the local copy".to_string(),
                )
                .with_entry(s.last),
            ),
            None => {}
        }
    }
    out
}

/// The segment records of the segments a clean run read (`kept`, chain order, each with its
/// end hash), as the listing taken before they were read shows them: up to the first that
/// cannot anchor (more than one version, a delete marker, not listed, no end hash).
pub fn segment_records(
    kept: &[(SegmentKey, Option<Sha256Digest>)],
    listing: &HashMap<String, Listed>,
) -> Vec<SegmentRecord> {
    let mut out = Vec::new();
    for (k, end) in kept {
        let (Some(l), Some(end)) = (listing.get(&k.key), end) else {
            break;
        };
        if l.delete_marker || l.versions != 1 {
            break;
        }
        out.push(SegmentRecord {
            key: k.key.clone(),
            first: k.first,
            last: k.last,
            listed: l.clone(),
            end: *end,
        });
    }
    out
}

/// The tails after `entries`: per (resetlogs id, thread), the entry with the highest sequence.
pub fn tails<'a>(
    old: &'a [ManifestEntry],
    entries: impl Iterator<Item = &'a ManifestEntry>,
) -> Vec<ManifestEntry> {
    let mut by: BTreeMap<(u32, u16), &ManifestEntry> = BTreeMap::new();
    for e in old.iter().chain(entries) {
        let t = by.entry((e.resetlogs_id.0, e.thread.0)).or_insert(e);
        if e.sequence.0 > t.sequence.0 {
            *t = e;
        }
    }
    by.into_values().cloned().collect()
}

/// A new entry that records a sequence at or before the end its thread had at the anchor
/// (with other content than the tail's, when the same): continuity then needs the whole
/// thread, so the run is a full one.
pub fn behind_tail<'a>(
    tails: &[ManifestEntry],
    mut new: impl Iterator<Item = &'a ManifestEntry>,
) -> Option<Fallback> {
    let by: HashMap<(u32, u16), &ManifestEntry> = tails
        .iter()
        .map(|t| ((t.resetlogs_id.0, t.thread.0), t))
        .collect();
    new.find_map(|e| {
        let t = by.get(&(e.resetlogs_id.0, e.thread.0))?;
        let behind = e.sequence.0 < t.sequence.0
            || (e.sequence.0 == t.sequence.0 && e.sha256 != t.sha256);
        behind.then(|| {
            Fallback::because(format!(
                "new manifest entry {} records thread {} sequence {}, at or before the end of its thread when anchored (sequence {}, entry {}): continuity needs the whole thread",
                e.index, e.thread.0, e.sequence.0, t.sequence.0, t.index
            ))
        })
    })
}

/// Whether the object of `r` must be HEADed in this run although it was verified before:
/// never settled, listed otherwise than then (a newer version, a delete marker, gone, another
/// size or ETag or file), or under a GOVERNANCE policy (a retention the listing cannot show).
pub fn needs_head(r: &ObjectRecord, now: Option<&Listed>, policy: &Policy) -> bool {
    policy.lock_mode == Some(LockMode::Governance) || r.listed.is_none() || r.listed.as_ref() != now
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listed(v: &str) -> Listed {
        Listed {
            newest: Some(v.into()),
            delete_marker: false,
            versions: 1,
            size: 10,
            etag: Some("e".into()),
            stamp: None,
        }
    }

    fn version(key: &str, v: &str, latest: bool, dm: bool) -> VersionSummary {
        VersionSummary {
            key: key.into(),
            version_id: Some(v.into()),
            is_latest: latest,
            delete_marker: dm,
            size: if dm { 0 } else { 10 },
            etag: (!dm).then(|| "e".into()),
            stamp: None,
        }
    }

    fn state() -> IncrementalState {
        IncrementalState {
            prefix: "p".into(),
            lock_mode: Some(LockMode::Compliance),
            min_retention_secs: 3600,
            segments: vec![
                SegmentRecord {
                    key: format!(
                        "p/manifest/000000000001-000000000002-{}.jsonl",
                        Sha256Digest::of(b"a")
                    ),
                    first: 1,
                    last: 2,
                    listed: listed("s1"),
                    end: Sha256Digest::of(b"2"),
                },
                SegmentRecord {
                    key: format!(
                        "p/manifest/000000000003-000000000004-{}.jsonl",
                        Sha256Digest::of(b"b")
                    ),
                    first: 3,
                    last: 4,
                    listed: listed("s2"),
                    end: Sha256Digest::of(b"4"),
                },
            ],
            entries: 4,
            ..IncrementalState::default()
        }
    }

    fn policy() -> Policy {
        Policy {
            lock_mode: Some(LockMode::Compliance),
            min_retention: std::time::Duration::from_secs(3600),
        }
    }

    #[test]
    fn state_file_round_trip_and_damage_mean_no_anchor() {
        let dir = tempfile::tempdir().unwrap();
        assert!(load(dir.path()).unwrap_err().contains("no anchor yet"));
        let s = state();
        save(dir.path(), &s).unwrap();
        assert_eq!(load(dir.path()).unwrap(), s);
        let p = dir.path().join(INCREMENTAL_FILE);
        for bad in [
            &b"{not json"[..],
            br#"{"format":"0","prefix":"p"}"#,
            b"",
            br#"{"prefix":"p"}"#,
        ] {
            std::fs::write(&p, bad).unwrap();
            let why = load(dir.path()).unwrap_err();
            assert!(why.contains("not a state this verifier reads"), "{why}");
        }
        save(dir.path(), &IncrementalState::default()).unwrap();
        assert!(
            load(dir.path())
                .unwrap_err()
                .contains("anchors no sealed segment")
        );
    }

    #[test]
    fn an_unchanged_listing_continues_after_the_last_anchored_segment() {
        let s = state();
        let new = format!(
            "p/manifest/000000000005-000000000006-{}.jsonl",
            Sha256Digest::of(b"c")
        );
        let listing = vec![
            version(&s.segments[0].key, "s1", true, false),
            version(&s.segments[1].key, "s2", true, false),
            version(&new, "s3", true, false),
        ];
        let p = plan(&s, "p", &policy(), &[], &listing).unwrap();
        assert_eq!(p.anchor.index, 4);
        assert_eq!(p.anchor.hash, Sha256Digest::of(b"4"));
        assert_eq!(p.anchored, 2);
        assert_eq!(p.new_segments.len(), 1);
        assert_eq!(p.new_segments[0].key, new);
    }

    #[test]
    fn an_anchored_segment_changed_is_a_finding_and_a_full_run() {
        let s = state();
        let k0 = s.segments[0].key.clone();
        let k1 = s.segments[1].key.clone();
        let cases: Vec<(&str, Vec<VersionSummary>)> = vec![
            ("removed", vec![version(&k1, "s2", true, false)]),
            (
                "delete marker",
                vec![
                    version(&k0, "dm", true, true),
                    version(&k0, "s1", false, false),
                    version(&k1, "s2", true, false),
                ],
            ),
            (
                "new version",
                vec![
                    version(&k0, "s9", true, false),
                    version(&k0, "s1", false, false),
                    version(&k1, "s2", true, false),
                ],
            ),
        ];
        for (what, listing) in cases {
            let f = plan(&s, "p", &policy(), &[], &listing).unwrap_err();
            assert_eq!(f.findings.len(), 1, "{what}: {f:?}");
            assert_eq!(
                f.findings[0].kind,
                FindingKind::ManifestSealMismatch,
                "{what}"
            );
            assert!(f.findings[0].subject.contains(&k0), "{what}");
            assert!(f.why.contains("changed"), "{what}: {}", f.why);
        }
        // Another size (an unversioned bucket rewritten).
        let mut other = version(&k0, "s1", true, false);
        other.size = 11;
        let f = plan(
            &s,
            "p",
            &policy(),
            &[],
            &[other, version(&k1, "s2", true, false)],
        )
        .unwrap_err();
        assert_eq!(f.findings.len(), 1);
        // Settings that changed: a full run, no finding.
        let listing = vec![
            version(&k0, "s1", true, false),
            version(&k1, "s2", true, false),
        ];
        let f = plan(&s, "q", &policy(), &[], &listing).unwrap_err();
        assert!(f.findings.is_empty() && f.why.contains("prefix"), "{f:?}");
        let mut gov = policy();
        gov.lock_mode = Some(LockMode::Governance);
        assert!(
            plan(&s, "p", &gov, &[], &listing)
                .unwrap_err()
                .why
                .contains("policy")
        );
    }

    #[test]
    fn objects_are_headed_only_when_the_listing_moved_or_governance() {
        let e = crate::verify::tests_support::entry(1, 1, 10);
        let l = listed("v1");
        let mut r = ObjectRecord::of(&e, Some(&l));
        assert!(
            r.listed.is_none(),
            "the entry records no version v1: not settled"
        );
        r.version_id = Some("v1".into());
        let r = r.settled_by(Some(&l));
        assert!(r.listed.is_some());
        assert!(!needs_head(&r, Some(&l), &policy()));
        let mut newer = l.clone();
        newer.newest = Some("v2".into());
        newer.versions = 2;
        assert!(needs_head(&r, Some(&newer), &policy()));
        let mut dm = newer.clone();
        dm.delete_marker = true;
        assert!(needs_head(&r, Some(&dm), &policy()));
        assert!(needs_head(&r, None, &policy()));
        let mut gov = policy();
        gov.lock_mode = Some(LockMode::Governance);
        assert!(
            needs_head(&r, Some(&l), &gov),
            "retention must be read again"
        );
        // Summaries: versions counted, the newest described.
        let s = summarize(&[
            version("k", "dm", true, true),
            version("k", "v1", false, false),
        ]);
        assert_eq!(s["k"].versions, 2);
        assert!(s["k"].delete_marker);
    }

    #[test]
    fn a_new_entry_behind_its_thread_tail_needs_a_full_run() {
        let t = crate::verify::tests_support::entry(5, 1, 20);
        let tails = tails(&[], [t.clone()].iter());
        let ok = crate::verify::tests_support::entry(6, 1, 21);
        assert!(behind_tail(&tails, [ok].iter()).is_none());
        let old = crate::verify::tests_support::entry(6, 1, 19);
        assert!(behind_tail(&tails, [old].iter()).is_some());
        let mut same = crate::verify::tests_support::entry(6, 1, 20);
        same.sha256 = t.sha256;
        assert!(behind_tail(&tails, [same].iter()).is_none());
    }

    /// An in-memory versioned bucket: versions newest last, a delete marker has no bytes.
    #[derive(Default)]
    struct Mem {
        keys: std::sync::Mutex<BTreeMap<String, Vec<MemVersion>>>,
        next: std::sync::atomic::AtomicU64,
    }

    #[derive(Clone)]
    struct MemVersion {
        id: String,
        data: Option<Vec<u8>>,
        lock: Option<redovault::store::LockState>,
    }

    #[derive(Clone, Default)]
    struct MemStore(std::sync::Arc<Mem>);

    impl MemStore {
        fn put(&self, key: &str, data: &[u8], lock: Option<LockMode>) -> String {
            let n = self
                .0
                .next
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let id = format!("v{n}");
            let lock = lock.map(|mode| redovault::store::LockState {
                mode,
                retain_until: chrono::Utc::now() + chrono::Duration::days(1),
            });
            self.0
                .keys
                .lock()
                .unwrap()
                .entry(key.into())
                .or_default()
                .push(MemVersion {
                    id: id.clone(),
                    data: Some(data.to_vec()),
                    lock,
                });
            id
        }

        fn delete_marker(&self, key: &str) {
            let n = self
                .0
                .next
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            self.0
                .keys
                .lock()
                .unwrap()
                .entry(key.into())
                .or_default()
                .push(MemVersion {
                    id: format!("dm{n}"),
                    data: None,
                    lock: None,
                });
        }

        fn shorten(&self, key: &str) {
            let mut k = self.0.keys.lock().unwrap();
            for v in k.get_mut(key).unwrap() {
                if let Some(l) = &mut v.lock {
                    l.retain_until = chrono::Utc::now();
                }
            }
        }

        fn version(&self, key: &str, id: Option<&str>) -> Option<MemVersion> {
            let k = self.0.keys.lock().unwrap();
            let vs = k.get(key)?;
            match id {
                Some(id) => vs.iter().find(|v| v.id == id).cloned(),
                None => vs.last().cloned(),
            }
            .filter(|v| v.data.is_some())
        }
    }

    use redovault::store::{
        ArchiveStore, ByteStream, FileSource, ObjectInfo, ObjectSummary, PutOutcome, Readiness,
        StoreError,
    };

    impl ArchiveStore for MemStore {
        async fn check(&self) -> Result<Readiness, StoreError> {
            Ok(Readiness {
                worm: true,
                default_retention: None,
                description: "memory".into(),
            })
        }
        async fn put_immutable<R>(&self, key: &str, mut src: R) -> Result<PutOutcome, StoreError>
        where
            R: tokio::io::AsyncRead + Unpin + Send + 'static,
        {
            use tokio::io::AsyncReadExt as _;
            let mut b = Vec::new();
            src.read_to_end(&mut b)
                .await
                .map_err(|e| StoreError::io("read", e))?;
            let id = self.put(key, &b, Some(LockMode::Compliance));
            Ok(PutOutcome {
                key: key.into(),
                version_id: Some(id),
                size: b.len() as u64,
                sha256: Sha256Digest::of(&b),
                already_present: false,
                lock: None,
            })
        }
        async fn put_file(&self, _: &str, _: &FileSource) -> Result<PutOutcome, StoreError> {
            Err(StoreError::Config("not in this test store".into()))
        }
        async fn get(
            &self,
            key: &str,
            range: Option<std::ops::Range<u64>>,
            version_id: Option<&str>,
        ) -> Result<ByteStream, StoreError> {
            let v = self
                .version(key, version_id)
                .ok_or_else(|| StoreError::NotFound { key: key.into() })?;
            let mut d = v.data.unwrap_or_default();
            if let Some(r) = range {
                let end = (r.end as usize).min(d.len());
                d = d[(r.start as usize).min(end)..end].to_vec();
            }
            Ok(Box::pin(std::io::Cursor::new(d)))
        }
        async fn head(
            &self,
            key: &str,
            version_id: Option<&str>,
        ) -> Result<Option<ObjectInfo>, StoreError> {
            Ok(self.version(key, version_id).map(|v| {
                let d = v.data.unwrap_or_default();
                ObjectInfo {
                    key: key.into(),
                    version_id: Some(v.id),
                    size: d.len() as u64,
                    etag: Some(Sha256Digest::of(&d).to_string()[..16].to_string()),
                    sha256: Some(Sha256Digest::of(&d)),
                    lock: v.lock,
                    legal_hold: None,
                    part_size: None,
                }
            }))
        }
        async fn list(&self, prefix: &str) -> Result<Vec<ObjectSummary>, StoreError> {
            let k = self.0.keys.lock().unwrap();
            Ok(k.iter()
                .filter(|(key, _)| key.starts_with(prefix))
                .filter_map(|(key, vs)| {
                    let d = vs.last()?.data.as_ref()?;
                    Some(ObjectSummary {
                        key: key.clone(),
                        size: d.len() as u64,
                    })
                })
                .collect())
        }
        async fn versions(&self, key: &str) -> Result<Vec<String>, StoreError> {
            let k = self.0.keys.lock().unwrap();
            Ok(k.get(key).map_or_else(Vec::new, |vs| {
                vs.iter()
                    .rev()
                    .filter(|v| v.data.is_some())
                    .map(|v| v.id.clone())
                    .collect()
            }))
        }
        async fn list_versions(&self, prefix: &str) -> Result<Vec<VersionSummary>, StoreError> {
            let k = self.0.keys.lock().unwrap();
            let mut out = Vec::new();
            for (key, vs) in k.iter().filter(|(key, _)| key.starts_with(prefix)) {
                for (n, v) in vs.iter().rev().enumerate() {
                    let d = v.data.as_deref();
                    out.push(VersionSummary {
                        key: key.clone(),
                        version_id: Some(v.id.clone()),
                        is_latest: n == 0,
                        delete_marker: d.is_none(),
                        size: d.map_or(0, |d| d.len() as u64),
                        etag: d.map(|d| Sha256Digest::of(d).to_string()[..16].to_string()),
                        stamp: None,
                    });
                }
            }
            Ok(out)
        }
    }

    /// A manifest written as the watcher writes it: one object per entry, segments of
    /// `per` entries.
    struct Archive {
        store: MemStore,
        entries: Vec<ManifestEntry>,
        segments: Vec<String>,
        dir: tempfile::TempDir,
    }

    impl Archive {
        fn new() -> Archive {
            Archive {
                store: MemStore::default(),
                entries: Vec::new(),
                segments: Vec::new(),
                dir: tempfile::tempdir().unwrap(),
            }
        }

        /// `n` more logs shipped and sealed in one segment.
        fn ship(&mut self, n: u64) {
            let first = self.entries.len() as u64 + 1;
            let mut text = String::new();
            for i in first..first + n {
                let data = format!("redo log {i}").into_bytes();
                let sha = Sha256Digest::of(&data);
                let key = format!("p/archive/sha256/{sha}");
                let version = self.store.put(&key, &data, Some(LockMode::Compliance));
                let mut e = crate::verify::tests_support::entry(i, 1, 100 + i as u32);
                e.object_key = key;
                e.version_id = Some(version);
                e.size = data.len() as u64;
                e.sha256 = sha;
                e.shipped_at =
                    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
                e.prev = self.entries.last().map_or(Sha256Digest::ZERO, |p| p.hash());
                text.push_str(&e.canonical_line());
                text.push('\n');
                self.entries.push(e);
            }
            let sha = Sha256Digest::of(text.as_bytes());
            let key = format!("p/manifest/{first:012}-{:012}-{sha}.jsonl", first + n - 1);
            self.store
                .put(&key, text.as_bytes(), Some(LockMode::Compliance));
            self.segments.push(key);
        }

        async fn verify(
            &self,
            incremental: Incremental,
            mode: Option<LockMode>,
        ) -> crate::report::AuditReport {
            let opts = crate::verify::VerifyOptions {
                target: "memory".into(),
                prefix: "p".into(),
                local_manifest: None,
                policy: Policy {
                    lock_mode: mode,
                    min_retention: std::time::Duration::from_secs(3600),
                },
                deep: crate::verify::DeepMode::Rolling { cycle: 30 },
                parallel: 4,
                collectors: Vec::new(),
                acknowledged: Vec::new(),
                state_dir: Some(self.dir.path().to_path_buf()),
                worm_prefix: None,
                worm_copies: Vec::new(),
                recovery_key: None,
                incremental,
            };
            crate::verify::verify(std::sync::Arc::new(self.store.clone()), &opts).await
        }
    }

    fn kinds(r: &crate::report::AuditReport) -> Vec<FindingKind> {
        r.findings.iter().map(|f| f.kind).collect()
    }

    /// A clean archive of 3 segments verified in full (anchor kept), then one more segment.
    async fn anchored() -> Archive {
        let mut a = Archive::new();
        for _ in 0..3 {
            a.ship(4);
        }
        let full = a.verify(Incremental::On, Some(LockMode::Compliance)).await;
        assert_eq!(
            full.verdict,
            crate::report::Verdict::Clean,
            "{}",
            full.to_text()
        );
        assert_eq!(full.run.kind, "full");
        assert!(
            full.run
                .fallback
                .as_deref()
                .is_some_and(|f| f.contains("no anchor"))
        );
        a.ship(4);
        a
    }

    #[tokio::test]
    async fn an_incremental_run_reads_only_the_new_segment_and_heads_only_new_objects() {
        let a = anchored().await;
        let r = a.verify(Incremental::On, Some(LockMode::Compliance)).await;
        assert_eq!(r.verdict, crate::report::Verdict::Clean, "{}", r.to_text());
        assert_eq!(r.run.kind, "incremental", "{}", r.to_text());
        assert_eq!(r.run.anchor_index, Some(12));
        assert_eq!(
            r.run.anchor_segment.as_deref(),
            Some(a.segments[2].as_str())
        );
        assert_eq!((r.run.segments_read, r.run.segments_anchored), (1, 3));
        assert_eq!(r.run.objects_listed, 12);
        // The 4 new ones (re-hashed: never deep-verified) and the rolling 1/30 of the 12.
        assert_eq!(r.run.objects_headed, 5, "{}", r.to_text());
        assert_eq!(r.summary.sealed_entries, 16);
        assert!(
            r.to_text().contains("incremental from entry 12"),
            "{}",
            r.to_text()
        );
        // The next one continues from the new end.
        let r = a.verify(Incremental::On, Some(LockMode::Compliance)).await;
        assert_eq!((r.run.anchor_index, r.run.segments_read), (Some(16), 0));
        assert_eq!(r.verdict, crate::report::Verdict::Clean, "{}", r.to_text());
        // A full run without the flag says so and keeps no anchor of its own.
        let r = a.verify(Incremental::Off, Some(LockMode::Compliance)).await;
        assert_eq!((r.run.kind.as_str(), r.run.segments_read), ("full", 4));
        let r = a.verify(Incremental::On, Some(LockMode::Compliance)).await;
        assert_eq!((r.run.anchor_index, r.run.segments_anchored), (Some(16), 4));
        let kept = load(a.dir.path()).unwrap();
        assert_eq!(
            (kept.entries, kept.objects.len(), kept.tails.len()),
            (16, 16, 1)
        );
        assert!(
            kept.objects.values().all(|o| o.listed.is_some()),
            "all settled"
        );
    }

    #[tokio::test]
    async fn a_new_version_or_a_delete_marker_on_a_verified_object_is_found() {
        let a = anchored().await;
        a.store
            .put(&a.entries[1].object_key, b"not a redo log", None);
        a.store.delete_marker(&a.entries[6].object_key);
        let r = a.verify(Incremental::On, Some(LockMode::Compliance)).await;
        assert_eq!(r.run.kind, "incremental", "{}", r.to_text());
        let k = kinds(&r);
        assert!(k.contains(&FindingKind::ObjectReplaced), "{}", r.to_text());
        assert!(k.contains(&FindingKind::ObjectMissing), "{}", r.to_text());
        // Not blessed: the next run finds them again.
        let r = a.verify(Incremental::On, Some(LockMode::Compliance)).await;
        assert!(
            kinds(&r).contains(&FindingKind::ObjectReplaced),
            "{}",
            r.to_text()
        );
        assert!(
            kinds(&r).contains(&FindingKind::ObjectMissing),
            "{}",
            r.to_text()
        );
    }

    #[tokio::test]
    async fn a_changed_or_removed_sealed_segment_is_a_finding_and_a_full_run() {
        let a = anchored().await;
        a.store.put(&a.segments[0], b"forged\n", None);
        let r = a.verify(Incremental::On, Some(LockMode::Compliance)).await;
        assert_eq!(r.run.kind, "full", "{}", r.to_text());
        assert!(
            r.run
                .fallback
                .as_deref()
                .is_some_and(|f| f.contains("changed"))
        );
        assert!(
            kinds(&r).contains(&FindingKind::ManifestSealMismatch),
            "{}",
            r.to_text()
        );
        // The full run reads the segment and names the replacement too.
        assert!(
            kinds(&r).contains(&FindingKind::ObjectReplaced),
            "{}",
            r.to_text()
        );

        let a = anchored().await;
        a.store.delete_marker(&a.segments[1]);
        let r = a.verify(Incremental::On, Some(LockMode::Compliance)).await;
        assert_eq!(r.run.kind, "full", "{}", r.to_text());
        let k = kinds(&r);
        assert!(
            k.contains(&FindingKind::ManifestSealMismatch),
            "{}",
            r.to_text()
        );
        assert!(
            k.contains(&FindingKind::ManifestEntryRemoved),
            "{}",
            r.to_text()
        );
    }

    #[tokio::test]
    async fn a_shortened_retention_is_found_under_governance() {
        let mut a = Archive::new();
        a.ship(4);
        let gov = Some(LockMode::Governance);
        // Objects locked in GOVERNANCE mode (bypass can shorten it).
        for e in &a.entries {
            let mut k = a.store.0.keys.lock().unwrap();
            for v in k.get_mut(&e.object_key).unwrap() {
                if let Some(l) = &mut v.lock {
                    l.mode = LockMode::Governance;
                }
            }
        }
        let r = a.verify(Incremental::On, gov).await;
        assert_eq!(r.verdict, crate::report::Verdict::Clean, "{}", r.to_text());
        a.store.shorten(&a.entries[2].object_key);
        let r = a.verify(Incremental::On, gov).await;
        assert_eq!(r.run.kind, "incremental", "{}", r.to_text());
        assert_eq!(
            r.run.objects_headed, 4,
            "every object's retention read again"
        );
        assert!(
            kinds(&r).contains(&FindingKind::RetentionTooShort),
            "{}",
            r.to_text()
        );
    }

    #[test]
    fn the_local_copy_is_compared_with_the_anchored_segment_ends() {
        let mut prev = Sha256Digest::ZERO;
        let lines: Vec<String> = (1..=6)
            .map(|i| {
                let mut e = crate::verify::tests_support::entry(i, 1, 10 + i as u32);
                e.prev = prev;
                let l = e.canonical_line();
                prev = Sha256Digest::of(l.as_bytes());
                l
            })
            .collect();
        let audit = |texts: &[String]| {
            let src: Vec<crate::chain::SourceLine> = texts
                .iter()
                .enumerate()
                .map(|(i, t)| crate::chain::SourceLine {
                    origin: "local".into(),
                    line: i + 1,
                    text: t.clone(),
                })
                .collect();
            crate::chain::audit_lines(&src, "local copy")
        };
        let seg = |last: u64| SegmentRecord {
            key: format!("p/manifest/{last}"),
            first: last - 2,
            last,
            listed: listed("v"),
            end: Sha256Digest::of(lines[last as usize - 1].as_bytes()),
        };
        let segs = [seg(3), seg(6)];
        assert!(compare_local_ends(&segs, &audit(&lines)).is_empty());
        // A self-consistent rewrite of the local history below the anchor.
        let mut forged = Vec::new();
        let mut prev = Sha256Digest::ZERO;
        for (n, l) in lines.iter().enumerate() {
            let mut e: ManifestEntry = serde_json::from_str(l).unwrap();
            if n == 1 {
                e.size = 9;
            }
            e.prev = prev;
            let l = e.canonical_line();
            prev = Sha256Digest::of(l.as_bytes());
            forged.push(l);
        }
        let f = compare_local_ends(&segs, &audit(&forged));
        assert_eq!(f.len(), 2, "{f:?}");
        assert!(f.iter().all(|f| f.kind == FindingKind::ManifestEntryEdited));
        // Truncated below the anchor.
        let f = compare_local_ends(&segs, &audit(&lines[..4]));
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].kind, FindingKind::ManifestEntryRemoved);
        assert_eq!(f[0].entry, Some(6));
    }

    #[tokio::test]
    async fn a_corrupt_state_file_is_a_full_run_that_says_why() {
        let a = anchored().await;
        std::fs::write(a.dir.path().join(INCREMENTAL_FILE), b"{\"format\":\"1\",").unwrap();
        let r = a.verify(Incremental::On, Some(LockMode::Compliance)).await;
        assert_eq!(r.verdict, crate::report::Verdict::Clean, "{}", r.to_text());
        assert_eq!(r.run.kind, "full");
        assert!(
            r.run
                .fallback
                .as_deref()
                .is_some_and(|f| f.contains("not a state")),
            "{:?}",
            r.run
        );
        assert!(r.to_text().contains("full because"), "{}", r.to_text());
        // It kept a fresh anchor.
        let r = a.verify(Incremental::On, Some(LockMode::Compliance)).await;
        assert_eq!(r.run.kind, "incremental", "{}", r.to_text());
    }
}
