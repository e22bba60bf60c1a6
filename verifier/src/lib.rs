//! redovault verifier: audits, off the database host and with read-only credentials, that
//! every archived redo log in WORM is exactly what the manifest recorded, that none is
//! missing, that the manifest chain is intact, and that the collector's segments authenticate;
//! and restores archived logs and the last-commit online log for recovery.
//!
//! Layout:
//! - [`report`]: the audit report model (findings, per-file results, per-thread timelines),
//!   its verdict and exit code, and the text rendering.
//! - [`html`]: the self-contained HTML rendering of the report for auditors.
//! - [`restore`]: `restore archive`: parallel, verified, in-order, resumable download of
//!   archived logs.
//! - [`script`]: `restore script`: RMAN and SQL*Plus recovery scripts stating the last
//!   recoverable SCN, time and XID.

pub mod html;
pub mod report;
pub mod restore;
pub mod script;
