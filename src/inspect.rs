//! The report of `redovault inspect`: one redo file seen by a DBA.
//!
//! ```text
//! file ─1 MiB chunks─► redovault_redo::Analyzer ─► InspectReport (JSON) ─► render_text
//!                      (bounded memory)            field names stable:     (human summary)
//!                                                  fixtures/golden/*.inspect.json
//! ```
//!
//! Invariants:
//! - Clean means no bad block and no record-level error. Not bad: blocks of a CURRENT online
//!   log from its write point on (never written, or from the previous cycle with an older
//!   sequence: LGWR has not reached them), and blocks at or after the nab of a complete log
//!   smaller than its file (a switched-out online log). Bad: a block of a newer sequence (the
//!   log was reused, `sequence`).
//! - Times: the header's first and next times are the database server's local time, with no
//!   zone in the log, so printed without one and labelled so; a commit's time (the 23ai 5.4
//!   field) is a Unix time, printed in UTC with its `Z`.
//! - Every valid block's first-record offset is checked against Oracle's rule
//!   ([`redovault_redo::offsets`]); a block that breaks it is listed (real logs: none) but is
//!   not damage (no redo is lost): it changes neither the verdict nor the exit code.
//!
//! Entry points: [`inspect_file`], [`InspectReport`], [`render_text`].

use redovault_redo::position::{DbId, ResetlogsId};
use std::fmt::Write as _;
use std::io::Read;
use std::path::{Path, PathBuf};

use redovault_redo::{Analyzer, Commit, NotRedo, Report};
use serde::Serialize;

/// Why a file could not be inspected at all.
#[derive(Debug, thiserror::Error)]
pub enum InspectError {
    /// The file could not be read.
    #[error("{}: {err}", path.display())]
    Io {
        path: PathBuf,
        /// The I/O error.
        err: std::io::Error,
    },
    /// The file is not an Oracle redo log.
    #[error("{}: {err}", path.display())]
    NotRedo {
        path: PathBuf,
        /// What was found, with the byte offset.
        err: NotRedo,
    },
}

/// Reads and analyzes one redo file, 1 MiB at a time.
pub fn inspect_file(path: &Path) -> Result<Report, InspectError> {
    let io = |err| InspectError::Io {
        path: path.to_path_buf(),
        err,
    };
    let not_redo = |err| InspectError::NotRedo {
        path: path.to_path_buf(),
        err,
    };
    let mut f = std::fs::File::open(path).map_err(io)?;
    let mut a = Analyzer::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = match f.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(io(e)),
        };
        a.feed(buf.get(..n).unwrap_or(&[])).map_err(not_redo)?;
    }
    a.finish().map_err(not_redo)
}

/// One unusable block.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BadBlockJson {
    pub block: u32,
    /// `zero`, `format`, `sequence`, `block_number`, `checksum` or `truncated`.
    pub reason: &'static str,
}

/// One record-level problem.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ErrorJson {
    /// `record_length`, `lwn_length`, `vector`, `transaction`, `trailing_data`,
    /// `header_mismatch`.
    pub kind: &'static str,
    pub block: u32,
    /// Byte offset in the block, counting the 16-byte block header.
    pub offset: u32,
    /// What was found.
    pub detail: String,
}

/// One commit or rollback.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CommitJson {
    /// `usn.slot.sqn`.
    pub xid: String,
    /// Commit SCN (the SCN of the record holding the 5.4).
    pub scn: u64,
    /// True for a rollback.
    pub rollback: bool,
    /// Block of the record holding the 5.4.
    pub block: u32,
    /// Offset of that record in its block, counting the 16-byte block header.
    pub offset: u16,
    /// Commit time in UTC (ISO 8601 with `Z`, from the 23ai Unix-time field), or null.
    pub time: Option<String>,
}

impl From<&Commit> for CommitJson {
    fn from(c: &Commit) -> Self {
        CommitJson {
            xid: c.xid.to_string(),
            scn: c.scn.0,
            rollback: c.rollback,
            block: c.rba.block,
            offset: c.rba.offset,
            time: c.time_iso8601(),
        }
    }
}

/// One 11.x row change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RowChangeJson {
    /// Transaction, when the record names it.
    pub xid: Option<String>,
    /// Opcode, e.g. `11.2`.
    pub opcode: String,
    /// Data object id.
    pub data_object: u32,
    /// SCN of the record.
    pub scn: u64,
    /// Block of the record.
    pub block: u32,
    /// Offset of the record in its block.
    pub offset: u16,
}

/// Counts of block states.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BlockStatesJson {
    /// Valid blocks.
    pub valid: u32,
    /// Never-written blocks.
    pub zero: u32,
    /// Blocks of an older sequence.
    pub stale: u32,
    /// Blocks of a newer sequence.
    pub overwritten: u32,
    /// Blocks with a checksum, block number, format or truncation problem.
    pub other: u32,
}

/// The JSON object printed by `redovault inspect --json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InspectReport {
    /// 512, 1024 or 4096.
    pub block_size: u32,
    /// `little` or `big`.
    pub endianness: &'static str,
    /// Blocks after block 0, as block 0 declares.
    pub block_count: u32,
    pub db_id: DbId,
    pub db_name: String,
    pub thread: u16,
    pub sequence: u32,
    pub resetlogs_id: ResetlogsId,
    pub resetlogs_scn: Option<u64>,
    pub activation_id: u32,
    pub first_scn: Option<u64>,
    /// Next SCN; null for a CURRENT online log.
    pub next_scn: Option<u64>,
    /// First time: the database's local time, ISO 8601 without a zone (the log records none).
    pub first_time: String,
    /// Next time, as `first_time`; null while there is no next SCN (a CURRENT online log),
    /// whose header holds no switch time yet.
    pub next_time: Option<String>,
    /// What `first_time` and `next_time` are: always `database local time (no zone)`.
    pub header_times: &'static str,
    /// What a commit's `time` is: always `UTC`.
    pub commit_times: &'static str,
    /// Compatibility version, e.g. `23.6.0`.
    pub compat_version: String,
    /// `archived` or `current`.
    pub log_state: &'static str,
    /// Next available block; null while CURRENT (`0xFFFFFFFF`).
    pub nab: Option<u32>,
    /// Header description string.
    pub description: String,
    /// First block not yet written in this cycle (CURRENT log), or null.
    pub write_point: Option<u32>,
    /// Block states of blocks 1 .. block_count.
    pub block_states: BlockStatesJson,
    pub records: u64,
    /// Change vectors.
    pub vectors: u64,
    pub lwns: u64,
    /// Transactions begun in this log (5.2).
    pub begins: usize,
    /// Unusable blocks in block order.
    pub bad_blocks: Vec<BadBlockJson>,
    /// Record-level problems.
    pub errors: Vec<ErrorJson>,
    /// Commits and rollbacks in log order.
    pub commits: Vec<CommitJson>,
    /// The last commit (not rollback) wholly before the first unusable block, or null.
    pub last_commit: Option<CommitJson>,
    /// 11.x row changes in log order.
    pub row_changes: Vec<RowChangeJson>,
    /// Every valid block's first-record offset checked against Oracle's rule.
    pub first_record_offsets: OffsetsJson,
    /// True when there are no bad blocks and no errors.
    pub clean: bool,
}

/// The first-record offset check of `inspect --json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OffsetsJson {
    /// Blocks checked (valid blocks that a record starts in, ends in or crosses).
    pub checked: u64,
    /// True when no checked block breaks the rule.
    pub consistent: bool,
    /// The blocks that break it (at most 1000 listed), in block order.
    pub mismatches: Vec<OffsetMismatchJson>,
    /// Mismatches beyond those listed.
    pub mismatches_omitted: u64,
}

/// One block whose header's first-record offset breaks Oracle's rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OffsetMismatchJson {
    pub block: u32,
    /// The offset in the block header.
    pub found: u16,
    /// The offset the records in the block give.
    pub expected: u16,
}

/// The label of the header's times (JSON `header_times`, and the text summary).
pub const HEADER_TIMES: &str = "database local time (no zone)";
/// The label of commit times.
pub const COMMIT_TIMES: &str = "UTC";

impl InspectReport {
    /// The JSON model of a report.
    pub fn from_report(r: &Report) -> InspectReport {
        let h = &r.header;
        InspectReport {
            block_size: r.file.block_size,
            endianness: r.file.endian.as_str(),
            block_count: r.file.block_count,
            db_id: h.db_id,
            db_name: h.db_name.clone(),
            thread: h.thread.0,
            sequence: h.sequence.0,
            resetlogs_id: h.resetlogs_id,
            resetlogs_scn: h.resetlogs_scn.map(|s| s.0),
            activation_id: h.activation_id,
            first_scn: h.first_scn.map(|s| s.0),
            next_scn: h.next_scn.map(|s| s.0),
            first_time: h.first_time.to_iso8601(),
            next_time: h.next_scn.map(|_| h.next_time.to_iso8601()),
            header_times: HEADER_TIMES,
            commit_times: COMMIT_TIMES,
            compat_version: h.compat.to_string(),
            log_state: r.log_state.as_str(),
            nab: (h.nab != redovault_redo::header::NAB_UNKNOWN).then_some(h.nab),
            description: h.description.clone(),
            write_point: r.write_point,
            block_states: BlockStatesJson {
                valid: r.blocks.valid,
                zero: r.blocks.zero,
                stale: r.blocks.stale,
                overwritten: r.blocks.overwritten,
                other: r.blocks.other,
            },
            records: r.records,
            vectors: r.vectors,
            lwns: r.lwns,
            begins: r.begins.len(),
            bad_blocks: r
                .bad_blocks
                .iter()
                .map(|b| BadBlockJson {
                    block: b.block,
                    reason: b.reason.as_str(),
                })
                .collect(),
            errors: r
                .errors
                .iter()
                .map(|e| ErrorJson {
                    kind: e.kind.as_str(),
                    block: e.block,
                    offset: e.offset,
                    detail: e.detail.clone(),
                })
                .collect(),
            commits: r.commits.iter().map(CommitJson::from).collect(),
            last_commit: r.last_commit.as_ref().map(CommitJson::from),
            row_changes: r
                .row_changes
                .iter()
                .map(|w| RowChangeJson {
                    xid: w.xid.map(|x| x.to_string()),
                    opcode: w.opcode.to_string(),
                    data_object: w.data_object,
                    scn: w.scn.0,
                    block: w.rba.block,
                    offset: w.rba.offset,
                })
                .collect(),
            first_record_offsets: OffsetsJson {
                checked: r.first_record_offsets.checked,
                consistent: r.first_record_offsets.is_consistent(),
                mismatches: r
                    .first_record_offsets
                    .mismatches
                    .iter()
                    .map(|m| OffsetMismatchJson {
                        block: m.block,
                        found: m.found,
                        expected: m.expected,
                    })
                    .collect(),
                mismatches_omitted: r.first_record_offsets.mismatches_omitted,
            },
            clean: r.is_clean(),
        }
    }
}

/// The first-record offset line, and each block that breaks the rule.
fn render_offsets(s: &mut String, r: &Report) {
    let o = &r.first_record_offsets;
    if o.is_consistent() {
        let _ = writeln!(
            s,
            "  block headers {} first-record offsets checked, all consistent",
            o.checked
        );
        return;
    }
    let _ = writeln!(
        s,
        "  block headers {} first-record offsets checked, {} INCONSISTENT:",
        o.checked,
        o.mismatches.len() as u64 + o.mismatches_omitted
    );
    for m in &o.mismatches {
        let _ = writeln!(
            s,
            "    block {}: header says {}, the records give {}",
            m.block, m.found, m.expected
        );
    }
}

fn opt<T: std::fmt::Display>(v: Option<T>, none: &str) -> String {
    v.map_or_else(|| none.to_string(), |v| v.to_string())
}

/// The human summary of a report (`file` is the name printed in the first line).
pub fn render_text(file: &Path, r: &Report) -> String {
    let h = &r.header;
    let bs = r.file.block_size;
    let mut s = String::new();
    let _ = writeln!(s, "Redo log {}", file.display());
    let _ = writeln!(
        s,
        "  database      {} (DBID {}), thread {}, sequence {}, resetlogs id {}",
        h.db_name, h.db_id, h.thread, h.sequence, h.resetlogs_id
    );
    let _ = writeln!(
        s,
        "  state         {}{}",
        r.log_state.as_str().to_uppercase(),
        r.write_point
            .map_or_else(String::new, |w| format!(", written up to block {w}"))
    );
    let _ = writeln!(s, "  version       {} (compatible)", h.compat);
    let _ = writeln!(
        s,
        "  format        {} blocks of {bs} bytes, {}-endian",
        r.file.block_count,
        r.file.endian.as_str()
    );
    let _ = writeln!(
        s,
        "  first SCN     {} at {} ({HEADER_TIMES})",
        opt(h.first_scn, "none"),
        h.first_time
    );
    match h.next_scn {
        Some(n) => {
            let _ = writeln!(s, "  next SCN      {n} at {} ({HEADER_TIMES})", h.next_time);
        }
        None => {
            let _ = writeln!(s, "  next SCN      none (log is still being written)");
        }
    }
    let b = &r.blocks;
    let _ = writeln!(
        s,
        "  blocks        {} valid, {} never written, {} stale, {} overwritten, {} other",
        b.valid, b.zero, b.stale, b.overwritten, b.other
    );
    let _ = writeln!(
        s,
        "  redo          {} records in {} LWNs, {} change vectors",
        r.records, r.lwns, r.vectors
    );
    let rollbacks = r.commits.iter().filter(|c| c.rollback).count();
    let _ = writeln!(
        s,
        "  transactions  {} begun, {} committed, {} rolled back",
        r.begins.len(),
        r.commits.len().saturating_sub(rollbacks),
        rollbacks
    );
    match &r.last_commit {
        Some(c) => {
            let _ = writeln!(
                s,
                "  last commit   XID {} at SCN {} ({}), record {}",
                c.xid,
                c.scn,
                c.time_iso8601()
                    .map_or_else(|| "time unknown".into(), |t| format!("{t} {COMMIT_TIMES}")),
                c.rba
            );
        }
        None => {
            let _ = writeln!(s, "  last commit   none");
        }
    }
    render_offsets(&mut s, r);
    if r.is_clean() {
        let _ = writeln!(s, "  status        CLEAN");
    } else {
        let _ = writeln!(
            s,
            "  status        DAMAGED: {} bad blocks, {} record errors{}",
            r.bad_blocks.len() as u64 + r.bad_blocks_omitted,
            r.errors.len() as u64 + r.errors_omitted,
            r.first_unusable_block
                .map_or_else(String::new, |b| format!("; usable up to block {b}"))
        );
        for bb in &r.bad_blocks {
            let _ = writeln!(
                s,
                "    block {} (file offset {}): {} ({})",
                bb.block,
                u64::from(bb.block) * u64::from(bs),
                bb.reason,
                bb.state
            );
        }
        for e in &r.errors {
            let _ = writeln!(s, "    {} (file offset {})", e, e.file_offset(bs));
        }
    }
    if !r.commits.is_empty() {
        let _ = writeln!(s, "  commits (XID, SCN, time {COMMIT_TIMES}, record):");
        for c in &r.commits {
            let _ = writeln!(
                s,
                "    {:<16} {:>14}  {:<20}  {}{}",
                c.xid.to_string(),
                c.scn,
                c.time_iso8601().unwrap_or_else(|| "-".into()),
                c.rba,
                if c.rollback { "  ROLLBACK" } else { "" }
            );
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    mod oracle_real {
        include!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/support/oracle_real.rs"
        ));
    }

    /// The real seq-16 log, or `None` (the test skips, saying so) without `../shared`.
    fn seq16() -> Option<PathBuf> {
        Some(oracle_real::free23()?.join("arch1_16_1224959854.dbf"))
    }

    #[test]
    fn json_has_the_documented_fields() {
        let Some(seq16) = seq16() else {
            return;
        };
        let r = inspect_file(&seq16).unwrap();
        let v = serde_json::to_value(InspectReport::from_report(&r)).unwrap();
        for k in [
            "block_size",
            "endianness",
            "block_count",
            "db_id",
            "db_name",
            "thread",
            "sequence",
            "resetlogs_id",
            "first_scn",
            "next_scn",
            "first_time",
            "next_time",
            "compat_version",
            "log_state",
            "records",
            "bad_blocks",
            "errors",
            "commits",
            "last_commit",
        ] {
            assert!(v.get(k).is_some(), "missing {k}");
        }
        let c = &v["commits"][0];
        let mut keys: Vec<&str> = c.as_object().unwrap().keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(keys, ["block", "offset", "rollback", "scn", "time", "xid"]);
    }

    #[test]
    fn text_names_damage_with_file_offsets() {
        let Some(seq16) = seq16() else {
            return;
        };
        let mut bytes = std::fs::read(&seq16).unwrap();
        bytes[5 * 512 + 100] ^= 1;
        let r = redovault_redo::analyze(&bytes).unwrap();
        let t = render_text(Path::new("x.dbf"), &r);
        assert!(t.contains("DAMAGED: 1 bad blocks"), "{t}");
        assert!(t.contains("block 5 (file offset 2560): checksum"), "{t}");
        let t = render_text(Path::new("x.dbf"), &inspect_file(&seq16).unwrap());
        assert!(t.contains("CLEAN") && t.contains("Redo log x.dbf"), "{t}");
    }

    #[test]
    fn header_times_are_local_and_labelled_commit_times_utc() {
        let Some(seq16) = seq16() else {
            return;
        };
        let r = inspect_file(&seq16).unwrap();
        let t = render_text(Path::new("x.dbf"), &r);
        assert!(
            t.contains("2267717 at 2026-03-07T01:44:40 (database local time (no zone))"),
            "{t}"
        );
        assert!(t.contains("(2026-03-07T01:44:40Z UTC)"), "{t}");
        let v = serde_json::to_value(InspectReport::from_report(&r)).unwrap();
        assert_eq!(v["first_time"], "2026-03-07T01:44:40");
        assert_eq!(v["header_times"], HEADER_TIMES);
        assert_eq!(v["commits"][0]["time"], "2026-03-07T01:44:40Z");
        assert_eq!(v["commit_times"], "UTC");
    }

    #[test]
    fn first_record_offsets_of_real_and_simulated_logs_are_consistent() {
        let d = tempfile::tempdir().unwrap();
        let mut cfg = crate::simulate::SimConfig::new(d.path());
        cfg.log_size = 256 * 1024;
        cfg.switches = Some(2);
        let mut logs = crate::simulate::run(cfg).unwrap().archived;
        logs.extend(seq16());
        for log in logs {
            let r = inspect_file(&log).unwrap();
            let o = &r.first_record_offsets;
            assert!(
                o.is_consistent() && o.checked > 5,
                "{}: {o:?}",
                log.display()
            );
            let t = render_text(&log, &r);
            assert!(
                t.contains("first-record offsets checked, all consistent"),
                "{t}"
            );
        }
    }

    #[test]
    fn a_block_that_breaks_the_offset_rule_is_reported() {
        let Some(seq16) = seq16() else {
            return;
        };
        // Block 9 of the real seq 16 only ends a record, at offset 48: its header says 48.
        let mut bytes = std::fs::read(&seq16).unwrap();
        assert_eq!(
            u16::from_le_bytes([bytes[9 * 512 + 12], bytes[9 * 512 + 13]]),
            0x8000 | 48
        );
        bytes[9 * 512 + 12..9 * 512 + 14].copy_from_slice(&0x8000u16.to_le_bytes());
        redovault_redo::checksum::set_checksum(
            &mut bytes[9 * 512..10 * 512],
            redovault_redo::block::CHECKSUM_AT,
        );
        let r = redovault_redo::analyze(&bytes).unwrap();
        assert!(r.is_clean(), "not damage: no redo is lost");
        let t = render_text(Path::new("x.dbf"), &r);
        assert!(t.contains("1 INCONSISTENT"), "{t}");
        assert!(
            t.contains("block 9: header says 0, the records give 48"),
            "{t}"
        );
        let v = serde_json::to_value(InspectReport::from_report(&r)).unwrap();
        assert_eq!(v["first_record_offsets"]["consistent"], false);
        assert_eq!(
            v["first_record_offsets"]["mismatches"],
            serde_json::json!([{"block": 9, "found": 0, "expected": 48}])
        );
    }

    #[test]
    fn errors_name_the_file() {
        let e = inspect_file(Path::new("/nonexistent/redo.log")).unwrap_err();
        assert!(e.to_string().starts_with("/nonexistent/redo.log: "), "{e}");
        let dir = std::env::temp_dir().join(format!("rv-inspect-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("short.log");
        std::fs::write(&p, b"tiny").unwrap();
        let e = inspect_file(&p).unwrap_err().to_string();
        assert!(
            e.contains("short.log") && e.contains("byte offset 0"),
            "{e}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
