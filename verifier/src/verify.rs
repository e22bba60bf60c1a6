//! One verification run: manifest chain, objects (fast, then deep for a rolling share),
//! continuity per (resetlogs id, thread), collector segments and the archive-versus-stream
//! cross-check; assembled into an [`AuditReport`].
//!
//! The collector's streams in WORM (`crate::stream_chain`) are audited in the same run: each
//! stream's sealed chain, every piece by HEAD, pieces re-hashed on the same rolling schedule
//! (their own share of `1/cycle`), and, with the recovery key, the pieces' redo compared with
//! the archived log of the same sequence when that log is re-hashed in the run (a piece whose
//! sequence's log is re-hashed is re-hashed too, so each piece meets its log once a cycle).
//!
//! State kept between runs (in the verifier's own state directory, off the database host):
//! the chain [`Anchor`] (and one per stream) and, per object version, when it was last
//! deep-verified. Deep mode [`DeepMode::Rolling`] re-hashes every object never deep-verified
//! plus the `1/cycle` of the others verified longest ago, so the whole archive is re-read once
//! per `cycle` runs.

use redovault_redo::position::{DbId, ResetlogsId};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures::StreamExt;
use redovault::crypto::keys::KeyRing;
use redovault::crypto::recovery::RecoveryPrivateKey;
use redovault::manifest::ManifestEntry;
use redovault::store::{ArchiveStore, StoreError};
use redovault::wire::StreamId;
use redovault_collector::worm::PieceEntry;
use serde::{Deserialize, Serialize};

use crate::chain::{self, AcknowledgedGap, Anchor};
use crate::copies::{CopyKind, CopyUnits, Held};
use crate::copy_audit;
use crate::incremental::{self, Fallback, Incremental, IncrementalState, ObjectRecord};
use crate::objects::{self, ObjectRef, ObjectResult, PieceComparison, Policy};
use crate::report::RunKind;
use crate::report::{
    AuditReport, CellState, FileResult, FileStatus, Finding, FindingKind, LogRef, RunInfo,
    Severity, Summary, ThreadTimeline, TimelineCell, WormStreamResult,
};
use crate::stream::{self, LogKey, PieceUnits, StreamAudit};
use crate::stream_chain::{self, PieceDeep, StreamChainAudit};
use crate::unsealed;

/// How much to download.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeepMode {
    /// HEAD only.
    Off,
    /// Re-hash everything.
    All,
    /// Re-hash what was never re-hashed plus `1/cycle` of the rest, oldest first.
    Rolling {
        /// Runs per full cycle.
        cycle: u32,
    },
}

/// A collector to audit.
#[derive(Debug)]
pub struct CollectorSource {
    /// Its name in the report.
    pub name: String,
    /// Its data directory.
    pub dir: PathBuf,
    /// Its key ring (to authenticate chunks).
    pub keys: KeyRing,
}

/// What to verify and how.
#[derive(Debug)]
pub struct VerifyOptions {
    /// Shown in reports ("s3://bucket/prefix").
    pub target: String,
    /// Key prefix of the archive.
    pub prefix: String,
    /// The database host's local manifest copy, when reachable.
    pub local_manifest: Option<PathBuf>,
    /// Lock and retention policy.
    pub policy: Policy,
    pub deep: DeepMode,
    /// Objects checked at once.
    pub parallel: usize,
    /// The collectors audited (none: not audited). With several, each stream's copies are
    /// compared ([`crate::copy_audit`]).
    pub collectors: Vec<CollectorSource>,
    /// Known gaps.
    pub acknowledged: Vec<AcknowledgedGap>,
    /// Where the state between runs lives (None: no state, every run stands alone).
    pub state_dir: Option<PathBuf>,
    /// Where the collector's streams are in WORM (None: `prefix`).
    pub worm_prefix: Option<String>,
    /// The WORM prefixes other collectors seal their copies under: with the recovery key,
    /// each stream's pieces there (and under `worm_prefix`) are opened and compared with the
    /// collectors' copies.
    pub worm_copies: Vec<String>,
    /// The offline recovery private key, when given: pieces re-hashed are opened and their
    /// redo compared with the archived logs (without it, that cross-check is not done).
    pub recovery_key: Option<Arc<RecoveryPrivateKey>>,
    /// Full runs only (the default), incremental when an anchor is kept, or a full run that
    /// keeps one ([`crate::incremental`]).
    pub incremental: Incremental,
}

/// State kept between runs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifierState {
    /// The chain as verified by the last clean run.
    pub anchor: Option<Anchor>,
    /// `key@version` → when last deep-verified (RFC 3339): archived logs and pieces.
    pub deep_verified: BTreeMap<String, String>,
    /// Per stream in WORM (`db<dbid>-rl<resetlogs id>-t<thread>`), its chain as verified by
    /// the last clean run.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub stream_anchors: BTreeMap<String, Anchor>,
}

const STATE_FILE: &str = "verifier-state.json";

fn object_id(e: &ManifestEntry) -> String {
    format!(
        "{}@{}",
        e.object_key,
        e.version_id.as_deref().unwrap_or("-")
    )
}

fn log_key(e: &ManifestEntry) -> LogKey {
    (
        DbId(e.db_id.0),
        ResetlogsId(e.resetlogs_id.0),
        e.thread.0,
        e.sequence.0,
    )
}

/// Reads the state (a missing file is an empty state).
pub fn load_state(dir: &Path) -> Result<VerifierState, StateFileError> {
    let p = dir.join(STATE_FILE);
    match std::fs::read(&p) {
        Ok(b) => {
            serde_json::from_slice(&b).map_err(|source| StateFileError::Json { path: p, source })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(VerifierState::default()),
        Err(source) => Err(StateFileError::Io { path: p, source }),
    }
}

fn save_state(dir: &Path, s: &VerifierState) -> Result<(), StateFileError> {
    std::fs::create_dir_all(dir).map_err(|source| StateFileError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let p = dir.join(STATE_FILE);
    let bytes = serde_json::to_vec_pretty(s).map_err(StateFileError::Encode)?;
    redovault::durable::write_atomic(&p, &bytes)
        .map_err(|source| StateFileError::Io { path: p, source })
}

/// Why the verifier's state (what it re-hashed when, the stream anchors) cannot be read or
/// saved: the run cannot go on without it, so it ends as could-not-run.
#[derive(Debug, thiserror::Error)]
pub enum StateFileError {
    /// The file or its directory cannot be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    /// The file is not the state's JSON.
    #[error("{}: {source}", path.display())]
    Json {
        path: std::path::PathBuf,
        source: serde_json::Error,
    },
    /// The state cannot be encoded.
    #[error("{0}")]
    Encode(serde_json::Error),
}

/// Why the streams in WORM cannot be listed or their chains read (the objects themselves are
/// checked one by one, and their failures are findings or the store's unreachability).
#[derive(Debug, thiserror::Error)]
pub enum WormReadError {
    /// The streams under the primary WORM prefix cannot be listed.
    #[error("{0}")]
    List(StoreError),
    /// A stream's chain under the primary prefix cannot be read.
    #[error("stream {stream}: {source}")]
    Chain {
        stream: StreamId,
        source: StoreError,
    },
    /// The streams under another collector's prefix cannot be listed.
    #[error("under {prefix:?}: {source}")]
    ListOther {
        /// The prefix (`worm_copies`).
        prefix: String,
        source: StoreError,
    },
    /// A stream's chain under another collector's prefix cannot be read.
    #[error("stream {stream} under {prefix:?}: {source}")]
    ChainOther {
        stream: StreamId,
        /// The prefix (`worm_copies`).
        prefix: String,
        source: StoreError,
    },
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn log_of(e: &ManifestEntry) -> LogRef {
    LogRef {
        resetlogs_id: e.resetlogs_id,
        thread: e.thread.0,
        sequence: e.sequence.0,
    }
}

/// Manifest entry index of each sequence, per (resetlogs id, thread).
pub type SequenceIndex = BTreeMap<(u32, u16), BTreeMap<u32, u64>>;

/// Continuity per (resetlogs id, thread): missing sequences and SCN breaks.
pub fn continuity(
    entries: &[&ManifestEntry],
    acknowledged: &[AcknowledgedGap],
) -> (Vec<Finding>, SequenceIndex) {
    let mut by_thread: BTreeMap<(u32, u16), BTreeMap<u32, &ManifestEntry>> = BTreeMap::new();
    let mut findings = Vec::new();
    for e in entries {
        let t = by_thread.entry((e.resetlogs_id.0, e.thread.0)).or_default();
        if let Some(other) = t.insert(e.sequence.0, e)
            && other.sha256 != e.sha256
        {
            findings.push(
                Finding::error(
                    FindingKind::ManifestEntryEdited,
                    format!("thread {} sequence {}", e.thread.0, e.sequence.0),
                    format!(
                        "recorded twice with different content (entries {} and {})",
                        other.index, e.index
                    ),
                )
                .with_entry(e.index)
                .with_log(log_of(e)),
            );
        }
    }
    let mut index: SequenceIndex = BTreeMap::new();
    for (&(rl, th), seqs) in &by_thread {
        let mut prev: Option<&ManifestEntry> = None;
        for (&seq, e) in seqs {
            index.entry((rl, th)).or_default().insert(seq, e.index);
            if let Some(p) = prev {
                let pseq = p.sequence.0;
                if seq > pseq + 1 {
                    let (from, to) = (pseq + 1, seq - 1);
                    let ack = acknowledged.iter().find(|a| {
                        a.resetlogs_id == ResetlogsId(rl)
                            && a.thread == th
                            && a.from_seq <= from
                            && a.to_seq >= to
                    });
                    let subject = if from == to {
                        format!("thread {th} sequence {from}")
                    } else {
                        format!("thread {th} sequences {from} to {to}")
                    };
                    let f = match ack {
                        Some(a) => Finding::info(
                            FindingKind::AcknowledgedGap,
                            subject,
                            format!("acknowledged: {}", a.reason),
                        ),
                        None => Finding::error(
                            FindingKind::SequenceGap,
                            subject,
                            format!(
                                "missing between sequence {pseq} and {seq} (resetlogs id {rl})"
                            ),
                        ),
                    };
                    findings.push(f.with_log(LogRef {
                        resetlogs_id: ResetlogsId(rl),
                        thread: th,
                        sequence: from,
                    }));
                } else if p.next_scn != e.first_scn {
                    findings.push(
                        Finding::error(
                            FindingKind::ScnDiscontinuity,
                            format!("thread {th} sequence {seq}"),
                            format!(
                                "sequence {pseq} ends at SCN {}, sequence {seq} starts at SCN {}",
                                p.next_scn, e.first_scn
                            ),
                        )
                        .with_entry(e.index)
                        .with_log(log_of(e)),
                    );
                }
            }
            prev = Some(e);
        }
    }
    (findings, index)
}

/// Runs one verification: a full one, or with [`Incremental::On`] and an anchor kept by an
/// earlier clean run, an incremental one ([`crate::incremental`]); an incremental run that
/// finds it cannot go on falls back to a full one and the report says why.
pub async fn verify<S: ArchiveStore + 'static>(store: Arc<S>, opts: &VerifyOptions) -> AuditReport {
    let started_at = now();
    let mut fallback = None;
    if opts.incremental == Incremental::On {
        let kept = match &opts.state_dir {
            None => Err("no state directory: nothing is kept between runs".to_string()),
            Some(d) => incremental::load(d),
        };
        match kept {
            Ok(kept) => match run(&store, opts, started_at.clone(), Some(kept), None).await {
                Ok(r) => return r,
                Err(f) => fallback = Some(f),
            },
            Err(why) => fallback = Some(Fallback::because(why)),
        }
    }
    match run(&store, opts, started_at.clone(), None, fallback).await {
        Ok(r) => r,
        // A full run does not fall back.
        Err(f) => failed(opts, started_at, f.why),
    }
}

/// What the objects pass checks: an entry read in this run, or an object an earlier clean
/// run verified (from its record).
#[derive(Clone, Copy)]
enum Subject<'a> {
    Entry(&'a ManifestEntry),
    /// The object's key and its record.
    Kept(&'a str, &'a ObjectRecord),
}

/// Which item a deep selection picks: an entry read in this run (by index), or a kept
/// object (by its place among the records).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Pick {
    Entry(u64),
    Kept(usize),
}

/// One run, full (`kept` None) or incremental from `kept`; `Err` when an incremental run must
/// fall back to a full one.
async fn run<S: ArchiveStore + 'static>(
    store: &Arc<S>,
    opts: &VerifyOptions,
    started_at: String,
    kept: Option<IncrementalState>,
    fallback: Option<Fallback>,
) -> Result<AuditReport, Fallback> {
    let mut state = match &opts.state_dir {
        Some(d) => match load_state(d) {
            Ok(s) => s,
            Err(e) => {
                return Ok(failed(opts, started_at, format!("verifier state: {e}")));
            }
        },
        None => VerifierState::default(),
    };
    // An anchor is kept for incremental runs when they are asked for (and a state directory
    // holds it).
    let keep = opts.incremental != Incremental::Off && opts.state_dir.is_some();
    let mut findings: Vec<Finding> = Vec::new();
    let mut summary = Summary::default();
    let mut kind = RunKind {
        kind: if kept.is_some() {
            "incremental"
        } else {
            "full"
        }
        .into(),
        incremental_requested: opts.incremental == Incremental::On,
        ..RunKind::default()
    };
    if let Some(f) = fallback {
        kind.fallback = Some(f.why);
        findings.extend(f.findings);
    }

    // 1. The manifest, as sealed in WORM (audited segment by segment, each one's text dropped
    //    once its lines are in). Incremental: the anchored segments compared with the
    //    listing of versions, only the segments after them read. The listing is taken before
    //    the segments are read, so that what is kept for the next run is never newer than
    //    what was audited.
    let segment_versions = if keep {
        match store
            .list_versions(&chain::join(&opts.prefix, "manifest/"))
            .await
        {
            Ok(l) => Some(l),
            Err(e) if kept.is_some() => {
                return Err(Fallback::because(format!(
                    "the sealed manifest's versions cannot be listed: {e}"
                )));
            }
            Err(e) => {
                return Ok(failed(
                    opts,
                    started_at,
                    format!("listing the versions of the sealed manifest: {e}"),
                ));
            }
        }
    } else {
        None
    };
    let plan = match &kept {
        None => None,
        Some(k) => {
            let listing = segment_versions.as_deref().unwrap_or_default();
            let p = incremental::plan(k, &opts.prefix, &opts.policy, &opts.acknowledged, listing)?;
            kind.anchor_segment = Some(p.anchor_segment.clone());
            kind.anchor_index = Some(p.anchor.index);
            kind.segments_anchored = p.anchored as u64;
            Some(p)
        }
    };
    let segment_listing = segment_versions.as_deref().map(incremental::summarize);
    drop(segment_versions);
    let read = match &plan {
        None => {
            chain::read_sealed::<ManifestEntry, _>(store.as_ref(), &opts.prefix, "manifest").await
        }
        Some(p) => {
            chain::read_segments::<ManifestEntry, _>(
                store.as_ref(),
                p.new_segments.clone(),
                "manifest",
                Some(p.anchor),
            )
            .await
        }
    };
    let (sealed, manifest) = match read {
        Ok(s) => s,
        Err(e) => {
            return Ok(failed(
                opts,
                started_at,
                format!("reading the sealed manifest: {e}"),
            ));
        }
    };
    kind.segments_read = sealed.segments as u64;
    findings.extend(sealed.findings.iter().cloned());
    findings.extend(manifest.findings.iter().cloned());
    findings.extend(sealed.unexplained_break(&manifest, "manifest"));
    if let Some(a) = &state.anchor
        && plan.as_ref().is_none_or(|p| a.index > p.anchor.index)
        && let Some(f) = chain::check_anchor(&manifest, a, "WORM")
    {
        findings.push(f);
    }
    let anchored_entries = kept.as_ref().map_or(0, |k| k.entries);
    summary.sealed_entries = anchored_entries + manifest.entries.len() as u64;
    summary.newest_sealed_shipped_at = manifest
        .entries
        .values()
        .next_back()
        .map(|(e, _)| e.shipped_at.clone())
        .or_else(|| kept.as_ref().and_then(|k| k.newest_shipped_at.clone()));
    // The next run's anchor if this one is clean: taken now, as the entries move on below.
    let manifest_anchor = manifest
        .anchor()
        .or_else(|| plan.as_ref().map(|p| p.anchor));
    // 2. The local copy, when given: its own chain, and entry by entry against WORM (the
    //    segments read in this run).
    let local = opts
        .local_manifest
        .as_ref()
        .and_then(|dir| match chain::read_local(dir) {
            Ok(lines) => {
                let mut local = chain::audit_lines(&lines, "local copy");
                findings.extend(local.findings.iter().cloned());
                findings.extend(chain::compare_local(&manifest, &local));
                if let Some(k) = &kept {
                    findings.extend(incremental::compare_local_ends(&k.segments, &local));
                }
                if let Some(p) = &plan {
                    // Entries at or before the anchor were sealed and compared before.
                    local.entries = local.entries.split_off(&(p.anchor.index + 1));
                }
                Some(local)
            }
            Err(e) => {
                findings.push(Finding::error(
                    FindingKind::ManifestUnreadable,
                    format!("local manifest {}", dir.display()),
                    e.to_string(),
                ));
                None
            }
        });
    let entries = manifest_entries(manifest, local);
    summary.manifest_entries = anchored_entries + entries.len() as u64;

    // 3. Continuity (incremental: from each thread's end at the anchor).
    let tails: &[ManifestEntry] = kept.as_ref().map_or(&[], |k| k.tails.as_slice());
    if let Some(f) = incremental::behind_tail(tails, entries.values()) {
        return Err(f);
    }
    let list: Vec<&ManifestEntry> = tails.iter().chain(entries.values()).collect();
    let (cont, _) = continuity(&list, &opts.acknowledged);
    drop(list);
    findings.extend(cont);

    // 4. Collector segments, every collector's; the first that holds a sequence gives its
    //    digests for the cross-check with the archived log.
    let audits: Vec<(&CollectorSource, Option<StreamAudit>)> = opts
        .collectors
        .iter()
        .map(|c| {
            if opts.collectors.len() > 1 && !c.dir.is_dir() {
                // Reported as an absent copy below (the backup host was wiped).
                return (c, None);
            }
            (c, Some(stream::audit_collector(&c.dir, &c.keys)))
        })
        .collect();
    let mut streamed: Option<StreamAudit> = None;
    for (_, a) in &audits {
        let Some(a) = a else { continue };
        summary.segment_chunks_checked += a.chunks;
        findings.extend(a.findings.iter().cloned());
        let s = streamed.get_or_insert_with(StreamAudit::default);
        for (k, d) in &a.seqs {
            s.seqs.entry(*k).or_insert_with(|| d.clone());
        }
    }
    // 4b. The copies of each stream compared: collectors, and with the recovery key every
    //     WORM prefix.
    let mut copy_inputs: Vec<copy_audit::CopyInput> = audits
        .iter()
        .map(|(c, a)| copy_audit::CopyInput {
            name: c.name.clone(),
            kind: CopyKind::Collector,
            place: c.dir.display().to_string(),
            streams: a.as_ref().map(collector_copy),
        })
        .collect();
    if let Some(key) = &opts.recovery_key
        && !opts.worm_copies.is_empty()
    {
        let primary = opts
            .worm_prefix
            .clone()
            .unwrap_or_else(|| opts.prefix.clone());
        let mut prefixes = vec![primary];
        for p in &opts.worm_copies {
            if !prefixes.contains(p) {
                prefixes.push(p.clone());
            }
        }
        for p in prefixes {
            match worm_copy(store.as_ref(), &p, key).await {
                Ok(streams) => copy_inputs.push(copy_audit::CopyInput {
                    name: format!("worm:{p}"),
                    kind: CopyKind::Worm,
                    place: p,
                    streams: Some(streams),
                }),
                Err(e) => {
                    return Ok(failed(
                        opts,
                        started_at,
                        format!("reading the pieces under {p:?}: {e}"),
                    ));
                }
            }
        }
    }
    let (stream_copies, copy_findings) = copy_audit::audit(&copy_inputs);
    findings.extend(copy_findings);
    let streamed: Option<Arc<StreamAudit>> = streamed.map(Arc::new);

    // 5. The collector's streams in WORM: chains, pieces by HEAD, the rolling share of them
    //    re-hashed (and opened, with the recovery key, for the cross-check of step 6).
    //    Incremental: the archive's listing of versions first, compared with what the last
    //    clean run recorded per object; the kept objects join the deep selection.
    let archive_prefix = chain::join(&opts.prefix, "archive/");
    let object_listing = if keep {
        match store.list_versions(&archive_prefix).await {
            Ok(l) => Some(incremental::summarize(&l)),
            Err(e) => {
                return Ok(failed(
                    opts,
                    started_at,
                    format!("listing the versions under {archive_prefix}: {e}"),
                ));
            }
        }
    } else {
        None
    };
    let records: Vec<(&String, &ObjectRecord)> = kept
        .as_ref()
        .map_or_else(Vec::new, |k| k.objects.iter().collect());
    let deep_set: HashSet<Pick> = select_deep(
        entries
            .values()
            .map(|e| (Pick::Entry(e.index), object_id(e)))
            .chain(records.iter().enumerate().map(|(i, (key, r))| {
                (
                    Pick::Kept(i),
                    format!("{key}@{}", r.version_id.as_deref().unwrap_or("-")),
                )
            })),
        &state,
        opts.deep,
    );
    let mut kept_checks: Vec<(Subject, bool)> = Vec::new();
    for (i, (key, r)) in records.iter().enumerate() {
        let deep = deep_set.contains(&Pick::Kept(i));
        let now = object_listing.as_ref().and_then(|l| l.get(key.as_str()));
        if deep || incremental::needs_head(r, now, &opts.policy) {
            kept_checks.push((Subject::Kept(key.as_str(), r), deep));
        }
    }
    kind.objects_listed = records.len() as u64;
    let deep_logs: HashSet<LogKey> = entries
        .values()
        .filter(|e| deep_set.contains(&Pick::Entry(e.index)))
        .map(log_key)
        .chain(
            records
                .iter()
                .enumerate()
                .filter(|(i, _)| deep_set.contains(&Pick::Kept(*i)))
                .map(|(_, (_, r))| {
                    (
                        DbId(r.db_id),
                        ResetlogsId(r.resetlogs_id),
                        r.thread,
                        r.sequence,
                    )
                }),
        )
        .collect();
    let run_time = now();
    let checks_began = std::time::Instant::now();
    let mut worm = match check_streams(store, opts, &mut state, &deep_logs, &run_time).await {
        Ok(w) => w,
        Err(e) => {
            return Ok(failed(
                opts,
                started_at,
                format!("reading the streams in WORM: {e}"),
            ));
        }
    };
    // 5b. The other collectors' WORM prefixes: each stream's sealed chain audited the same
    //     way (their pieces' redo is compared with the other copies in step 4b, with the key).
    if let Err(e) = check_other_prefixes(store.as_ref(), opts, &state, &mut worm).await {
        return Ok(failed(
            opts,
            started_at,
            format!("reading the streams in WORM: {e}"),
        ));
    }
    let mut unreachable: Option<String> = worm.unreachable.take();
    let piece_units = Arc::new(std::mem::take(&mut worm.units));

    // 6. Objects: fast for every entry read in this run (and, incremental, for the kept
    //    objects the listing does not vouch for), deep for the chosen share; each result in
    //    its place.
    let policy = opts.policy;
    // Walked twice in the same order (checks, then results), never collected: one
    // `Subject` per entry would be a second copy of the manifest's size.
    let subjects = || {
        entries
            .values()
            .map(|e| (Subject::Entry(e), deep_set.contains(&Pick::Entry(e.index))))
            .chain(kept_checks.iter().map(|(s, d)| (*s, *d)))
    };
    let count = entries.len() + kept_checks.len();
    let mut results: Vec<Option<Result<ObjectResult, StoreError>>> =
        std::iter::repeat_with(|| None).take(count).collect();
    let mut checks = futures::stream::iter(subjects().enumerate().map(|(place, (s, deep))| {
        let store = Arc::clone(store);
        let streamed = streamed.clone();
        let piece_units = Arc::clone(&piece_units);
        async move {
            let obj = match s {
                Subject::Entry(e) => ObjectRef::from(e),
                Subject::Kept(key, r) => r.object_ref(key),
            };
            let fast = objects::fast_check_object(store.as_ref(), &obj, &policy).await;
            let r = match fast {
                Err(err) => Err(err),
                Ok(f) if !deep || f.status == FileStatus::Missing => Ok(f),
                Ok(mut f) => {
                    let key = obj_log_key(&s);
                    let digests = streamed.as_ref().and_then(|s| s.seqs.get(&key));
                    let pieces = piece_units.get(&key).map_or(&[][..], Vec::as_slice);
                    match objects::deep_check_object(store.as_ref(), &obj, digests, pieces).await {
                        Err(err) => Err(err),
                        Ok(d) => {
                            merge_deep(&mut f, d);
                            Ok(f)
                        }
                    }
                }
            };
            (place, r)
        }
    }))
    .buffer_unordered(opts.parallel.max(1));
    while let Some((place, r)) = checks.next().await {
        results[place] = Some(r);
    }
    drop(checks);
    kind.objects_headed = results.iter().filter(|r| r.is_some()).count() as u64;
    let mut files = Vec::with_capacity(count);
    for ((s, _), result) in subjects().zip(results) {
        let (key, version, log, index, file_name, size, sha256) = match s {
            Subject::Entry(e) => (
                e.object_key.as_str(),
                &e.version_id,
                log_of(e),
                e.index,
                e.file_name.as_str(),
                e.size,
                e.sha256,
            ),
            Subject::Kept(key, r) => (
                key,
                &r.version_id,
                r.log(),
                r.entry,
                r.file_name.as_str(),
                r.size,
                r.sha256,
            ),
        };
        let id = format!("{key}@{}", version.as_deref().unwrap_or("-"));
        let (status, last_deep, cross) = match result {
            Some(Ok(r)) => {
                summary.objects_checked += 1;
                if r.bytes_rehashed > 0 || r.status == FileStatus::DeepVerified {
                    summary.objects_deep_verified += 1;
                    summary.bytes_rehashed += r.bytes_rehashed;
                }
                if r.cross_checked {
                    summary.logs_cross_checked += 1;
                }
                worm.compared(log, index, file_name, &r.pieces);
                findings.extend(r.findings);
                if r.status == FileStatus::DeepVerified {
                    state.deep_verified.insert(id.clone(), run_time.clone());
                }
                (
                    r.status,
                    state.deep_verified.get(&id).cloned(),
                    r.cross_checked,
                )
            }
            Some(Err(err)) => {
                unreachable.get_or_insert_with(|| format!("{key}: {err}"));
                (FileStatus::Shipped, None, false)
            }
            None => (FileStatus::Shipped, None, false),
        };
        files.push(FileResult {
            entry: index,
            log,
            file_name: file_name.to_string(),
            key: key.to_string(),
            size,
            sha256: sha256.to_string(),
            status,
            last_deep_verified: last_deep,
            cross_checked: cross,
        });
    }

    // 7. What the streams in WORM add to the report.
    let streams = worm.finish(&mut summary, &mut findings, opts.recovery_key.is_some());

    // 8. Everything else under the prefix: archived logs shipped but not yet sealed, the
    //    watcher's quarantine, and objects nothing references (incremental: nothing the
    //    entries read now or the kept objects name).
    let referenced: HashSet<&str> = entries
        .values()
        .map(|e| e.object_key.as_str())
        .chain(records.iter().map(|(k, _)| k.as_str()))
        .collect();
    let sealed_logs: Vec<&ManifestEntry> = tails.iter().chain(entries.values()).collect();
    let unsealed = match check_unsealed(store.as_ref(), opts, &referenced, &sealed_logs).await {
        Ok((scan, gaps)) => {
            if kept.is_some() {
                let ends: HashMap<(u32, u16), u32> = tails
                    .iter()
                    .map(|t| ((t.resetlogs_id.0, t.thread.0), t.sequence.0))
                    .collect();
                if let Some(l) = scan.logs.iter().map(|l| l.log()).find(|l| {
                    ends.get(&(l.resetlogs_id.0, l.thread))
                        .is_some_and(|end| l.sequence <= *end)
                }) {
                    return Err(Fallback::because(format!(
                        "an object no sealed entry names holds thread {} sequence {}, at or before the end of its thread when anchored: a full run compares it with the sealed entries",
                        l.thread, l.sequence
                    )));
                }
            }
            summary.unsealed_logs = scan.logs.len() as u64;
            summary.unreferenced_objects = scan.unreferenced;
            summary.quarantined_objects = scan.quarantined;
            summary.bytes_rehashed += scan.bytes_rehashed;
            findings.extend(scan.findings);
            findings.extend(gaps);
            scan.logs
        }
        Err(err) => {
            unreachable.get_or_insert_with(|| format!("listing {}: {err}", opts.prefix));
            Vec::new()
        }
    };
    drop(referenced);
    drop(sealed_logs);

    summary.check_millis = checks_began.elapsed().as_millis() as u64;

    // 9. Timelines (incremental: of the entries looked at in this run).
    let threads = timelines(&files, &findings);
    let report = AuditReport::new(
        RunInfo {
            target: opts.target.clone(),
            mode: match opts.deep {
                DeepMode::Off => "fast".into(),
                DeepMode::All => "deep".into(),
                DeepMode::Rolling { cycle } => format!("deep 1/{cycle}"),
            },
            started_at,
            finished_at: now(),
        },
        summary,
        findings,
        files,
        threads,
    )
    .with_streams(streams)
    .with_unsealed(unsealed)
    .with_copies(stream_copies)
    .with_run_kind(kind);
    let report = match unreachable {
        Some(why) => report.could_not_run(format!("store unreachable: {why}")),
        None => report,
    };
    if let Some(d) = &opts.state_dir {
        // The anchor only moves on a clean run: a run with findings must not bless them.
        if report.verdict == crate::report::Verdict::Clean {
            if let Some(a) = manifest_anchor {
                state.anchor = Some(a);
            }
            for c in &worm.chains {
                if let Some(a) = c.anchor() {
                    state.stream_anchors.insert(c.stream.to_string(), a);
                }
            }
            for (p, c) in &worm.other_chains {
                if let Some(a) = c.anchor() {
                    state
                        .stream_anchors
                        .insert(other_anchor_key(p, c.stream), a);
                }
            }
            if let (Some(segs), Some(objs)) = (&segment_listing, &object_listing) {
                let next = next_incremental(opts, kept, &sealed.kept, segs, objs, &entries);
                if let Err(e) = incremental::save(d, &next) {
                    return Ok(report.could_not_run(format!(
                        "saving the incremental anchor in {}: {e}",
                        d.display()
                    )));
                }
            }
        }
        if let Err(e) = save_state(d, &state) {
            return Ok(report.could_not_run(format!("saving verifier state: {e}")));
        }
    }
    Ok(report)
}

/// What a clean run keeps for the next incremental one: the anchored segments (an
/// incremental run's, then those of the segments it read that can anchor: a listing of one
/// version each, taken before they were read), the threads' ends, and per object its
/// record, settled by the listing taken before the objects were checked.
fn next_incremental(
    opts: &VerifyOptions,
    kept: Option<IncrementalState>,
    read: &[(chain::SegmentKey, Option<redovault::manifest::Sha256Digest>)],
    segment_listing: &HashMap<String, incremental::Listed>,
    object_listing: &HashMap<String, incremental::Listed>,
    entries: &BTreeMap<u64, ManifestEntry>,
) -> IncrementalState {
    // The kept state moved in, not copied: it holds a record per object.
    let (mut segments, mut objects, old_tails, old_entries, old_newest) = match kept {
        Some(k) => (
            k.segments,
            k.objects,
            k.tails,
            k.entries,
            k.newest_shipped_at,
        ),
        None => (Vec::new(), BTreeMap::new(), Vec::new(), 0, None),
    };
    let from = segments.last().map_or(0, |s| s.last);
    segments.extend(incremental::segment_records(read, segment_listing));
    let last = segments.last().map_or(0, |s| s.last);
    // The entries the new anchor covers (the local copy's unsealed ones never).
    let sealed: Vec<&ManifestEntry> = if last > from {
        entries.range(from + 1..=last).map(|(_, e)| e).collect()
    } else {
        Vec::new()
    };
    for (key, r) in objects.iter_mut() {
        // Checked clean in this run (by HEAD when the listing moved): the listing it was
        // checked after.
        let listed = object_listing.get(key);
        if r.listed.as_ref() != listed {
            *r = r.clone().settled_by(listed);
        }
    }
    for e in &sealed {
        objects
            .entry(e.object_key.clone())
            .or_insert_with(|| ObjectRecord::of(e, object_listing.get(&e.object_key)));
    }
    IncrementalState {
        prefix: opts.prefix.clone(),
        lock_mode: opts.policy.lock_mode,
        min_retention_secs: opts.policy.min_retention.as_secs(),
        acknowledged: opts.acknowledged.clone(),
        segments,
        entries: old_entries + sealed.len() as u64,
        newest_shipped_at: sealed.last().map(|e| e.shipped_at.clone()).or(old_newest),
        tails: incremental::tails(&old_tails, sealed.iter().copied()),
        objects,
    }
}

/// The log of what the objects pass checks (the key of the collector's digests and of the
/// opened pieces).
fn obj_log_key(s: &Subject) -> LogKey {
    match s {
        Subject::Entry(e) => log_key(e),
        Subject::Kept(_, r) => (
            DbId(r.db_id),
            ResetlogsId(r.resetlogs_id),
            r.thread,
            r.sequence,
        ),
    }
}

/// The entries a run checks: the sealed ones (moved out of their audit, not copied), and the
/// local copy's entries at indexes not sealed yet.
fn manifest_entries(
    sealed: chain::ChainAudit,
    local: Option<chain::ChainAudit>,
) -> BTreeMap<u64, ManifestEntry> {
    let mut entries = BTreeMap::new();
    // One at a time, so that the audit's nodes are freed as the map's are made.
    for (i, (e, _)) in sealed.entries {
        entries.insert(i, e);
    }
    for (i, (e, _)) in local.into_iter().flat_map(|l| l.entries) {
        entries.entry(i).or_insert(e);
    }
    entries
}

/// A collector's copy of each stream it holds (from its audit).
fn collector_copy(a: &StreamAudit) -> BTreeMap<StreamId, (Held, CopyUnits)> {
    a.snapshots
        .iter()
        .map(|(s, snap)| {
            let units = a.copy_units(*s);
            (
                *s,
                (
                    Held {
                        end: snap.durable.end,
                        last_commit: snap.durable.last_commit,
                    },
                    units,
                ),
            )
        })
        .collect()
}

/// The copy of each stream under a WORM prefix: its pieces opened with the recovery key,
/// the longest authenticated chain ([`crate::worm_stream`]).
async fn worm_copy<S: ArchiveStore>(
    store: &S,
    prefix: &str,
    key: &RecoveryPrivateKey,
) -> anyhow::Result<BTreeMap<StreamId, (Held, CopyUnits)>> {
    let mut out = BTreeMap::new();
    for stream in crate::worm_stream::list_streams(store, prefix).await? {
        let ws = crate::worm_stream::read_stream(store, prefix, stream, key).await?;
        if let Some(end) = ws.end {
            out.insert(
                stream,
                (
                    Held {
                        end,
                        last_commit: ws.last_commit,
                    },
                    CopyUnits::from_chunks(&ws.chunks),
                ),
            );
        }
    }
    Ok(out)
}

/// Step 8 of a run: the objects under the prefix no manifest entry names ([`unsealed::scan`]),
/// and the gaps between the last sealed log and the unsealed ones. `referenced`: every object
/// key the manifest names; `sealed`: the sealed entries (incremental: those read in this run
/// and each thread's end at the anchor).
async fn check_unsealed<S: ArchiveStore>(
    store: &S,
    opts: &VerifyOptions,
    referenced: &HashSet<&str>,
    sealed: &[&ManifestEntry],
) -> Result<(unsealed::Scan, Vec<Finding>), StoreError> {
    let sealed_logs = sealed
        .iter()
        .map(|e| {
            (
                (e.db_id, e.resetlogs_id, e.thread.0, e.sequence.0),
                e.sha256,
            )
        })
        .collect();
    let scan_opts = unsealed::ScanOptions {
        prefix: opts.prefix.clone(),
        worm_prefix: opts
            .worm_prefix
            .clone()
            .unwrap_or_else(|| opts.prefix.clone()),
        worm_copies: opts.worm_copies.clone(),
        deep: opts.deep != DeepMode::Off,
        lock_mode: opts.policy.lock_mode,
        parallel: opts.parallel,
    };
    let scan = unsealed::scan(store, &scan_opts, referenced, &sealed_logs).await?;
    let sealed: Vec<LogRef> = sealed.iter().map(|e| log_of(e)).collect();
    let logs: Vec<LogRef> = scan.logs.iter().map(|l| l.log()).collect();
    let gaps = unsealed::gaps(&sealed, &logs);
    Ok((scan, gaps))
}

/// The deep result folded into the fast one: deep findings the fast path already made are
/// not repeated (same kind for the same object).
fn merge_deep(f: &mut ObjectResult, d: ObjectResult) {
    for df in d.findings {
        if !f.findings.iter().any(|x| x.kind == df.kind) {
            f.findings.push(df);
        }
    }
    f.bytes_rehashed = d.bytes_rehashed;
    f.cross_checked = d.cross_checked;
    f.pieces = d.pieces;
    f.status = if f.status == FileStatus::Tampered || d.status == FileStatus::Tampered {
        FileStatus::Tampered
    } else {
        FileStatus::DeepVerified
    };
}

/// A piece: its stream and its index in the stream's chain.
type PieceId = (StreamId, u64);

/// What the streams in WORM gave in this run, before the archived logs are checked.
#[derive(Debug, Default)]
struct StreamsChecked {
    /// Each stream's audited chain.
    chains: Vec<StreamChainAudit>,
    /// Each stream's chain under the other collectors' WORM prefixes (prefix, chain).
    other_chains: Vec<(String, StreamChainAudit)>,
    /// Findings about the pieces (the chains' own are in `chains`).
    findings: Vec<Finding>,
    /// Piece redo to compare with the archived logs re-hashed in this run.
    units: HashMap<LogKey, Vec<PieceUnits>>,
    /// Opened pieces whose whole redo can be compared in this run: comparisons awaited.
    awaiting: HashMap<PieceId, usize>,
    /// Opened pieces whose redo cannot all be compared in this run.
    pending: u64,
    /// Pieces re-hashed intact.
    rehashed_intact: u64,
    /// What each piece's findings are about.
    subjects: HashMap<PieceId, ObjectRef>,
    /// Counts.
    summary: Summary,
    /// The first store error.
    unreachable: Option<String>,
}

impl StreamsChecked {
    /// The comparisons the deep check of archived log `e` made with pieces.
    fn compared(&mut self, log: LogRef, index: u64, file_name: &str, pieces: &[PieceComparison]) {
        for c in pieces {
            let id = (c.stream, c.index);
            if let Some(n) = self.awaiting.get_mut(&id) {
                *n = n.saturating_sub(1);
            }
            if let Some(d) = c.diff {
                let subject = self.subjects.get(&id).map_or_else(
                    || format!("stream {} piece {}", c.stream, c.index),
                    |o| o.subject.clone(),
                );
                self.findings.push(
                    Finding::error(
                        FindingKind::ArchiveDiffersFromStream,
                        subject,
                        format!(
                            "block {} (offset {}) of thread {} sequence {} in piece {} differs from the archived log (manifest entry {}, {})",
                            d.block, d.offset, log.thread, c.seq, c.key, index, file_name
                        ),
                    )
                    .with_log(LogRef {
                        resetlogs_id: log.resetlogs_id,
                        thread: log.thread,
                        sequence: c.seq,
                    }),
                );
            }
        }
    }

    /// Counts, the cross-check's state, every finding, and the report's stream lines.
    fn finish(
        &mut self,
        summary: &mut Summary,
        findings: &mut Vec<Finding>,
        have_key: bool,
    ) -> Vec<WormStreamResult> {
        let mut cross_checked = 0;
        let mut pending = self.pending;
        for n in self.awaiting.values() {
            if *n == 0 {
                cross_checked += 1;
            } else {
                pending += 1;
            }
        }
        let m = &self.summary;
        summary.worm_streams = self.chains.len() as u64;
        summary.stream_chain_entries = self
            .chains
            .iter()
            .map(|c| c.audit.entries.len() as u64)
            .sum();
        summary.pieces_checked = m.pieces_checked;
        summary.pieces_deep_verified = m.pieces_deep_verified;
        summary.piece_bytes_rehashed = m.piece_bytes_rehashed;
        summary.pieces_unreferenced = self.chains.iter().map(|c| c.unreferenced).sum();
        if have_key {
            summary.pieces_cross_checked = cross_checked;
            summary.pieces_cross_check_pending = pending;
        } else {
            summary.pieces_cross_check_pending = self.rehashed_intact;
            if summary.stream_chain_entries > 0 {
                findings.push(Finding::info(
                    FindingKind::PieceCrossCheckNotDone,
                    format!("the pieces of {} stream(s) in WORM", self.chains.len()),
                    format!(
                        "{} piece(s) re-hashed in this run; their redo was not compared with the archived logs of the same sequences: that needs the recovery private key ([verify] recovery_key or --recovery-key), which stays offline",
                        self.rehashed_intact
                    ),
                ));
            }
        }
        let mut out = Vec::with_capacity(self.chains.len());
        for c in &self.chains {
            let name = format!("stream {} ", c.stream);
            let about = |f: &&Finding| {
                f.severity == Severity::Error
                    && (f.subject.starts_with(&name)
                        || f.subject.contains(&format!("streams/{}/", c.stream)))
            };
            let errors = c.findings.iter().filter(about).count()
                + self.findings.iter().filter(about).count();
            out.push(c.result(errors as u64));
            findings.extend(c.findings.iter().cloned());
        }
        for (p, c) in &self.other_chains {
            let errors = c
                .findings
                .iter()
                .filter(|f| f.severity == Severity::Error)
                .count();
            let mut r = c.result(errors as u64);
            r.stream = format!("{} under {p}", r.stream);
            out.push(r);
            findings.extend(c.findings.iter().cloned());
        }
        summary.worm_streams += self.other_chains.len() as u64;
        summary.stream_chain_entries += self
            .other_chains
            .iter()
            .map(|(_, c)| c.audit.entries.len() as u64)
            .sum::<u64>();
        summary.pieces_unreferenced += self
            .other_chains
            .iter()
            .map(|(_, c)| c.unreferenced)
            .sum::<u64>();
        findings.append(&mut self.findings);
        out
    }
}

/// Where the anchor of a stream's chain under another collector's prefix is kept.
fn other_anchor_key(prefix: &str, stream: StreamId) -> String {
    format!("{prefix}:{stream}")
}

/// Step 5b of a run: every stream's sealed chain under the WORM prefixes of the other
/// collectors (`worm_copies`, the primary prefix left out), audited like the primary's.
async fn check_other_prefixes<S: ArchiveStore>(
    store: &S,
    opts: &VerifyOptions,
    state: &VerifierState,
    out: &mut StreamsChecked,
) -> Result<(), WormReadError> {
    let primary = opts.worm_prefix.as_deref().unwrap_or(&opts.prefix);
    let mut seen = vec![primary.to_string()];
    for p in &opts.worm_copies {
        if seen.contains(p) {
            continue;
        }
        seen.push(p.clone());
        let listed = stream_chain::list_streams(store, p)
            .await
            .map_err(|source| WormReadError::ListOther {
                prefix: p.clone(),
                source,
            })?;
        for (stream, pieces) in &listed {
            let anchor = state.stream_anchors.get(&other_anchor_key(p, *stream));
            let c = stream_chain::audit_stream(store, p, *stream, pieces, anchor)
                .await
                .map_err(|source| WormReadError::ChainOther {
                    stream: *stream,
                    prefix: p.clone(),
                    source,
                })?;
            out.other_chains.push((p.clone(), c));
        }
    }
    Ok(())
}

/// Step 5 of a run: every stream under the WORM prefix, its chain audited, its pieces
/// checked by HEAD, re-hashed on the rolling schedule (plus, with the recovery key, the
/// pieces of every sequence whose archived log is re-hashed in this run: `deep_logs`), and
/// opened with the key. Fails only when the store cannot list or read the chains.
async fn check_streams<S: ArchiveStore + 'static>(
    store: &Arc<S>,
    opts: &VerifyOptions,
    state: &mut VerifierState,
    deep_logs: &HashSet<LogKey>,
    run_time: &str,
) -> Result<StreamsChecked, WormReadError> {
    let prefix = opts.worm_prefix.as_deref().unwrap_or(&opts.prefix);
    let listed = stream_chain::list_streams(store.as_ref(), prefix)
        .await
        .map_err(WormReadError::List)?;
    let mut out = StreamsChecked::default();
    for (stream, pieces) in &listed {
        let anchor = state.stream_anchors.get(&stream.to_string());
        let c = stream_chain::audit_stream(store.as_ref(), prefix, *stream, pieces, anchor)
            .await
            .map_err(|source| WormReadError::Chain {
                stream: *stream,
                source,
            })?;
        out.chains.push(c);
    }
    let all: Vec<(StreamId, PieceEntry)> = out
        .chains
        .iter()
        .flat_map(|c| c.entries().map(move |e| (c.stream, e.clone())))
        .collect();
    for (stream, e) in &all {
        out.subjects
            .insert((*stream, e.index), stream_chain::object_ref(*stream, e));
    }
    let key = opts.recovery_key.clone();
    let mut deep_set = select_deep(
        all.iter().map(|(s, e)| ((*s, e.index), piece_object_id(e))),
        state,
        opts.deep,
    );
    if key.is_some() && opts.deep != DeepMode::Off {
        // A piece meets its archived log when that log is re-hashed.
        for (s, e) in &all {
            if (e.start_seq..=e.end_seq).any(|q| {
                deep_logs.contains(&(DbId(e.db_id.0), ResetlogsId(e.resetlogs_id.0), e.thread, q))
            }) {
                deep_set.insert((*s, e.index));
            }
        }
    }
    let deep_logs = Arc::new(deep_logs.clone());
    let policy = opts.policy;
    type PieceOutcome = Result<(ObjectResult, Option<PieceDeep>), StoreError>;
    let results: Vec<(StreamId, PieceEntry, PieceOutcome)> =
        futures::stream::iter(all.into_iter().map(|(stream, e)| {
            let store = Arc::clone(store);
            let deep = deep_set.contains(&(stream, e.index));
            let key = key.clone();
            let deep_logs = Arc::clone(&deep_logs);
            async move {
                let r = match stream_chain::fast_check_piece(store.as_ref(), stream, &e, &policy)
                    .await
                {
                    Err(err) => Err(err),
                    Ok(f) if !deep || f.status == FileStatus::Missing => Ok((f, None)),
                    Ok(f) => stream_chain::deep_check_piece(
                        store.as_ref(),
                        stream,
                        &e,
                        key.as_deref(),
                        &deep_logs,
                    )
                    .await
                    .map(|d| (f, Some(d))),
                };
                (stream, e, r)
            }
        }))
        .buffer_unordered(opts.parallel.max(1))
        .collect()
        .await;
    for (stream, e, r) in results {
        let (mut f, deep) = match r {
            Ok(x) => x,
            Err(err) => {
                out.unreachable
                    .get_or_insert_with(|| format!("{}: {err}", e.object_key));
                continue;
            }
        };
        out.summary.pieces_checked += 1;
        if let Some(d) = deep {
            out.summary.pieces_deep_verified += 1;
            out.summary.piece_bytes_rehashed += d.result.bytes_rehashed;
            merge_deep(&mut f, d.result);
            if f.status == FileStatus::DeepVerified {
                state
                    .deep_verified
                    .insert(piece_object_id(&e), run_time.to_string());
                out.rehashed_intact += 1;
            }
            if d.opened && f.status != FileStatus::Tampered {
                if d.pending {
                    out.pending += 1;
                } else {
                    out.awaiting.insert((stream, e.index), d.units.len());
                }
                for u in d.units {
                    out.units
                        .entry((
                            DbId(e.db_id.0),
                            ResetlogsId(e.resetlogs_id.0),
                            e.thread,
                            u.seq,
                        ))
                        .or_default()
                        .push(u);
                }
            }
        }
        out.findings.extend(f.findings);
    }
    Ok(out)
}

fn piece_object_id(e: &PieceEntry) -> String {
    format!(
        "{}@{}",
        e.object_key,
        e.version_id.as_deref().unwrap_or("-")
    )
}

/// Which entries to re-hash in this run: all, none, or (rolling) every object never re-hashed
/// plus `ceil(n / cycle)` of the others, those re-hashed longest ago first.
pub fn deep_selection<'a>(
    entries: impl Iterator<Item = &'a ManifestEntry>,
    state: &VerifierState,
    mode: DeepMode,
) -> HashSet<u64> {
    select_deep(entries.map(|e| (e.index, object_id(e))), state, mode)
}

/// [`deep_selection`] over any objects, given as (what to return, `key@version`).
fn select_deep<K: Copy + Eq + std::hash::Hash>(
    items: impl Iterator<Item = (K, String)>,
    state: &VerifierState,
    mode: DeepMode,
) -> HashSet<K> {
    let mut never = Vec::new();
    let mut seen: Vec<(&String, K)> = Vec::new();
    let mut all = Vec::new();
    for (k, id) in items {
        all.push(k);
        match state.deep_verified.get(&id) {
            None => never.push(k),
            Some(t) => seen.push((t, k)),
        }
    }
    match mode {
        DeepMode::Off => Default::default(),
        DeepMode::All => all.into_iter().collect(),
        DeepMode::Rolling { cycle } => {
            // Stable: equal times keep the order given.
            seen.sort_by(|a, b| a.0.cmp(b.0));
            let share = seen.len().div_ceil(cycle.max(1) as usize);
            never
                .into_iter()
                .chain(seen.into_iter().take(share).map(|(_, k)| k))
                .collect()
        }
    }
}

fn failed(opts: &VerifyOptions, started_at: String, why: String) -> AuditReport {
    AuditReport::new(
        RunInfo {
            target: opts.target.clone(),
            mode: "-".into(),
            started_at,
            finished_at: now(),
        },
        Summary::default(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
    )
    .could_not_run(why)
}

/// One timeline per (resetlogs id, thread), from the files and the gap findings.
pub fn timelines(files: &[FileResult], findings: &[Finding]) -> Vec<ThreadTimeline> {
    let mut map: BTreeMap<(u32, u16), BTreeMap<u32, CellState>> = BTreeMap::new();
    for f in files {
        let state = match f.status {
            FileStatus::Shipped => CellState::Shipped,
            FileStatus::Verified | FileStatus::DeepVerified => CellState::Verified,
            FileStatus::Tampered | FileStatus::Missing => CellState::Tampered,
        };
        map.entry((f.log.resetlogs_id.0, f.log.thread))
            .or_default()
            .insert(f.log.sequence, state);
    }
    let acked: Vec<&Finding> = findings
        .iter()
        .filter(|f| f.kind == FindingKind::AcknowledgedGap)
        .collect();
    let mut out = Vec::new();
    for ((rl, th), seqs) in map {
        let (Some(&first), Some(&last)) = (seqs.keys().next(), seqs.keys().next_back()) else {
            continue;
        };
        let mut cells = Vec::new();
        for s in first..=last {
            let state = match seqs.get(&s) {
                Some(st) => *st,
                None => {
                    let is_acked = acked.iter().any(|f| {
                        f.log.is_some_and(|l| {
                            l.resetlogs_id == ResetlogsId(rl) && l.thread == th && l.sequence <= s
                        }) && f.subject.contains(&format!("thread {th} "))
                            && gap_covers(&f.subject, s)
                    });
                    if is_acked {
                        CellState::AcknowledgedGap
                    } else {
                        CellState::Gap
                    }
                }
            };
            cells.push(TimelineCell { sequence: s, state });
        }
        out.push(ThreadTimeline {
            resetlogs_id: ResetlogsId(rl),
            thread: th,
            cells,
        });
    }
    out
}

/// Whether a gap finding's subject ("thread T sequence S" or "thread T sequences A to B")
/// covers sequence `s`.
fn gap_covers(subject: &str, s: u32) -> bool {
    if let Some(r) = subject.split("sequences ").nth(1) {
        let mut it = r.split(" to ").map(|x| x.trim().parse::<u32>().ok());
        if let (Some(Some(a)), Some(Some(b))) = (it.next(), it.next()) {
            return a <= s && s <= b;
        }
    }
    subject
        .rsplit("sequence ")
        .next()
        .and_then(|x| x.trim().parse::<u32>().ok())
        == Some(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(i: u64, thread: u16, seq: u32, first: u64, next: u64) -> ManifestEntry {
        super::tests_support::entry_at(i, thread, seq, first, next)
    }

    #[test]
    fn continuity_finds_gaps_scn_breaks_and_honours_acknowledgements() {
        let es = [
            entry(1, 1, 10, 100, 200),
            entry(2, 1, 11, 200, 300),
            entry(3, 1, 14, 600, 700),
            entry(4, 1, 15, 701, 800),
            entry(5, 2, 3, 150, 250),
            entry(6, 2, 5, 350, 450),
        ];
        let refs: Vec<&ManifestEntry> = es.iter().collect();
        let ack = vec![AcknowledgedGap {
            resetlogs_id: ResetlogsId(5),
            thread: 2,
            from_seq: 4,
            to_seq: 4,
            reason: "lost in 2025 migration (dba@bank)".into(),
        }];
        let (f, _) = continuity(&refs, &ack);
        let k: Vec<(FindingKind, String)> = f.iter().map(|f| (f.kind, f.subject.clone())).collect();
        assert_eq!(
            k,
            vec![
                (
                    FindingKind::SequenceGap,
                    "thread 1 sequences 12 to 13".into()
                ),
                (FindingKind::ScnDiscontinuity, "thread 1 sequence 15".into()),
                (FindingKind::AcknowledgedGap, "thread 2 sequence 4".into()),
            ]
        );
        let files: Vec<FileResult> = es
            .iter()
            .map(|e| FileResult {
                entry: e.index,
                log: log_of(e),
                file_name: e.file_name.clone(),
                key: e.object_key.clone(),
                size: 1,
                sha256: String::new(),
                status: FileStatus::Verified,
                last_deep_verified: None,
                cross_checked: false,
            })
            .collect();
        let t = timelines(&files, &f);
        assert_eq!(t.len(), 2);
        let states: Vec<CellState> = t[0].cells.iter().map(|c| c.state).collect();
        assert_eq!(
            states,
            vec![
                CellState::Verified,
                CellState::Verified,
                CellState::Gap,
                CellState::Gap,
                CellState::Verified,
                CellState::Verified
            ]
        );
        assert_eq!(t[1].cells[1].state, CellState::AcknowledgedGap);
    }

    #[test]
    fn rolling_share_covers_the_archive_within_a_cycle() {
        let es: Vec<ManifestEntry> = (1..=10).map(|i| entry(i, 1, i as u32, 0, 0)).collect();
        let mut state = VerifierState::default();
        // First run: nothing re-hashed yet, so everything is.
        let first = deep_selection(es.iter(), &state, DeepMode::Rolling { cycle: 4 });
        assert_eq!(first.len(), 10);
        for (n, e) in es.iter().enumerate() {
            state
                .deep_verified
                .insert(object_id(e), format!("2026-11-21T00:{n:02}:00Z"));
        }
        // Then ceil(10 / 4) = 3 per run, oldest first, and every object within 4 runs.
        let mut covered = std::collections::HashSet::new();
        for run in 0..4 {
            let pick = deep_selection(es.iter(), &state, DeepMode::Rolling { cycle: 4 });
            assert!(pick.len() <= 3, "run {run}: {pick:?}");
            for i in &pick {
                covered.insert(*i);
                let e = &es[(*i - 1) as usize];
                state
                    .deep_verified
                    .insert(object_id(e), format!("2026-11-21T01:{run:02}:{i:02}Z"));
            }
        }
        assert_eq!(covered.len(), 10, "whole archive within one cycle");
        // A new object is re-hashed at once.
        let mut more = es.clone();
        more.push(entry(11, 1, 11, 0, 0));
        assert!(deep_selection(more.iter(), &state, DeepMode::Rolling { cycle: 4 }).contains(&11));
        assert!(deep_selection(more.iter(), &state, DeepMode::Off).is_empty());
        assert_eq!(deep_selection(more.iter(), &state, DeepMode::All).len(), 11);
    }

    #[test]
    fn gap_subjects() {
        assert!(gap_covers("thread 1 sequences 12 to 13", 13));
        assert!(!gap_covers("thread 1 sequences 12 to 13", 14));
        assert!(gap_covers("thread 2 sequence 4", 4));
    }
}

/// Entries for the unit tests of other modules.
#[cfg(test)]
pub(crate) mod tests_support {
    use super::*;
    use redovault::manifest::Sha256Digest;
    use redovault_redo::position::{LogSeq, Scn, ThreadId};

    /// Entry `i` of thread `thread`, sequence `seq`, SCNs `seq * 100` to `(seq + 1) * 100`.
    pub(crate) fn entry(i: u64, thread: u16, seq: u32) -> ManifestEntry {
        entry_at(
            i,
            thread,
            seq,
            u64::from(seq) * 100,
            u64::from(seq + 1) * 100,
        )
    }

    /// Entry `i` of thread `thread`, sequence `seq`, SCNs `first` to `next`.
    pub(crate) fn entry_at(i: u64, thread: u16, seq: u32, first: u64, next: u64) -> ManifestEntry {
        ManifestEntry {
            index: i,
            db_id: DbId(1),
            db_name: "PROD".into(),
            resetlogs_id: ResetlogsId(5),
            thread: ThreadId(thread),
            sequence: LogSeq(seq),
            first_scn: Scn(first),
            next_scn: Scn(next),
            first_time: String::new(),
            next_time: String::new(),
            size: 1,
            sha256: Sha256Digest::of(&i.to_le_bytes()),
            object_key: format!("k{i}"),
            version_id: None,
            retain_until: None,
            shipped_at: String::new(),
            file_name: format!("f{i}"),
            stored: None,
            prev: Sha256Digest::ZERO,
        }
    }
}
