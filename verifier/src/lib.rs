//! redovault verifier: audits, off the database host and with read-only credentials, that
//! every archived redo log in WORM is exactly what the manifest recorded, that none is
//! missing, that the manifest chain is intact, and that the collector's segments authenticate;
//! and restores archived logs and the last-commit online log for recovery.
//!
//! Layout:
//! - [`report`]: the audit report model (findings, per-file results, per-thread timelines),
//!   its verdict and exit code, and the text rendering.
//! - [`chain`]: the manifest audit (sealed segments in WORM, the local copy, the anchor of
//!   earlier runs): edited, removed, reordered entries named.
//! - [`objects`]: per-object checks in WORM: HEAD fast path (replaced versions, size,
//!   checksum, lock, retention) and deep re-hash with the archive-versus-stream cross-check.
//! - [`verify`]: one run: chain, continuity, collector, objects (rolling deep share), state
//!   between runs, the report.
//! - [`incremental`]: the incremental run's anchor (the sealed segments audited, each
//!   thread's end, per object the listing of versions a clean run saw) and the checks that
//!   decide what a run must read again or fall back to a full run for.
//! - [`cli`]: the `redovault-verifier` command line (the only user of `anyhow` here).
//! - [`config`]: the TOML configuration (`check-config` lists every problem).
//! - [`console`]: `console`, the DR console: a read-only live web page and JSON API of every
//!   database's Protected / Warning / Alert state, exposure, events and drills.
//! - [`growth`]: whether the manifest sealed in WORM still grows (the manifest-growth alert,
//!   evaluated off the database host).
//! - [`html`]: the self-contained HTML rendering of the report for auditors.
//! - [`restore`]: `restore archive`: parallel, verified, in-order, resumable download of
//!   archived logs.
//! - [`worm_stream`]: the collector's pieces in WORM opened with the offline recovery key,
//!   each stream's longest authenticated chain (restore online without the backup host).
//! - [`stream`]: the collector's segments audited read-only (every chunk authenticated,
//!   continuity) and unit digests for the archive-versus-stream cross-check.
//! - [`stream_chain`]: the collector's streams in WORM audited like the archive: each
//!   stream's sealed chain (edited, removed, reordered entries named, continuity), its
//!   pieces by HEAD and rolling re-hash, pieces no sealed entry records; with the recovery
//!   key, pieces opened for the cross-check against the archived logs.
//! - [`unsealed`]: archived logs in WORM no sealed manifest lists yet (identified by their
//!   Oracle headers, checked against their key's SHA-256), and the unreferenced-object check
//!   over everything else under the prefix.
//! - [`script`]: `restore script`: RMAN and SQL*Plus recovery scripts stating the last
//!   recoverable SCN, time and XID (every RAC thread in one script).
//! - [`copies`]: several copies of one stream (each collector, each WORM prefix) compared
//!   by unit digests: which agree, which are behind, which diverge, and which `restore
//!   online` rebuilds from.
//! - [`copy_audit`]: `verify` over several copies: a copy behind (info), copies that
//!   diverge (critical), and the report's per-stream copies section.
//! - [`online_record`]: `restore-online.json`, one record per thread of the online logs
//!   `restore online` rebuilt.

pub mod chain;
pub mod cli;
pub mod config;
pub mod console;
pub mod copies;
pub mod copy_audit;
pub mod finding;
pub mod growth;
pub mod html;
pub mod incremental;
pub mod objects;
pub mod online_record;
pub mod recover;
pub mod report;
pub mod restore;
pub mod script;
pub mod stream;
pub mod stream_chain;
pub mod units;
pub mod unsealed;
pub mod verify;
pub mod worm_stream;
