//! Whole-file analysis: everything `redovault inspect` prints, built from the decoder's
//! events. [`Analyzer`] is streaming (feed chunks, then finish); [`crate::analyze`] runs it on a
//! byte slice.
//!
//! The [`Report`] keeps at most [`MAX_ROW_CHANGES`] row changes: it is what `inspect` prints, and
//! a 64 MiB log can hold millions of them. A caller that needs every one (the drill's referee
//! counts rows per table) passes a visitor to [`Analyzer::feed_with`] / [`Analyzer::finish_with`]:
//! it sees every row change and every transaction end, in log order, whatever the caps, and
//! keeps what it needs in memory of its own choosing.

use crate::block::BadReason;
use crate::block::BlockState;
use crate::decoder::{Decoder, Event};
use crate::error::{DecodeError, ErrorKind, NotRedo};
use crate::header::{FileHeader, LogState, RedoHeader};
use crate::offsets::{OffsetCheck, OffsetChecker};
use crate::opcode::Opcode;
use crate::position::{Rba, Scn, Xid};
use crate::record::Record;
use crate::txn::{self, Begin, Commit};

/// At most this many bad blocks and errors are kept (the rest are counted).
pub const MAX_LISTED: usize = 10_000;

/// At most this many row changes are kept (the rest are counted).
pub const MAX_ROW_CHANGES: usize = 100_000;

/// A block that cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BadBlock {
    pub block: u32,
    pub reason: BadReason,
    /// The state found.
    pub state: BlockState,
}

/// An 11.x row change, with the transaction of its record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RowChange {
    /// Transaction (from the 5.2 or 5.1 of the same record), when known.
    pub xid: Option<Xid>,
    /// Opcode (11.2 insert, 11.3 delete, 11.5 update, ...).
    pub opcode: Opcode,
    /// Data object id of the changed segment.
    pub data_object: u32,
    /// Data block address of the changed block.
    pub dba: u32,
    /// SCN of the record.
    pub scn: Scn,
    /// Where the record starts.
    pub rba: Rba,
}

/// One transaction event, as [`Analyzer::feed_with`] hands them to its visitor: every one, in
/// log order (within a record, its row changes before its 5.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TxnEvent {
    /// An 11.x row change.
    Row(RowChange),
    /// A commit or rollback (5.4).
    End(Commit),
}

/// Counts of block states (blocks 1 .. block count).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct BlockCounts {
    /// Valid blocks.
    pub valid: u32,
    /// Never-written blocks.
    pub zero: u32,
    /// Blocks of an older sequence.
    pub stale: u32,
    /// Blocks of a newer sequence.
    pub overwritten: u32,
    /// Blocks with another problem (checksum, block number, format, truncated).
    pub other: u32,
}

/// The analysis of one redo file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// Block 0.
    pub file: FileHeader,
    /// Block 1.
    pub header: RedoHeader,
    /// CURRENT online log or complete (archived) log.
    pub log_state: LogState,
    /// Blocks judged (block 1 on).
    pub blocks: BlockCounts,
    /// First block not yet written in this cycle (CURRENT log only).
    pub write_point: Option<u32>,
    /// Redo records read.
    pub records: u64,
    /// Change vectors read.
    pub vectors: u64,
    /// LWNs started (records with an LWN header).
    pub lwns: u64,
    /// Unusable blocks, in block order (at most [`MAX_LISTED`]).
    pub bad_blocks: Vec<BadBlock>,
    /// Bad blocks not listed.
    pub bad_blocks_omitted: u64,
    /// Record-level problems, in log order (at most [`MAX_LISTED`]).
    pub errors: Vec<DecodeError>,
    /// Errors not listed.
    pub errors_omitted: u64,
    /// Transaction begins (5.2), in log order.
    pub begins: Vec<Begin>,
    /// Commits and rollbacks (5.4), in log order.
    pub commits: Vec<Commit>,
    /// 11.x row changes (at most [`MAX_ROW_CHANGES`]), in log order.
    pub row_changes: Vec<RowChange>,
    /// Row changes not listed.
    pub row_changes_omitted: u64,
    /// The first block that cannot be used (bad, or holding a record-level error), if any.
    pub first_unusable_block: Option<u32>,
    /// The last commit (not rollback) whose record lies wholly before the first unusable block.
    pub last_commit: Option<Commit>,
    /// Every valid block's first-record offset against Oracle's rule ([`crate::offsets`]).
    pub first_record_offsets: OffsetCheck,
}

impl Report {
    /// True when no block is bad and no record-level error was found.
    pub fn is_clean(&self) -> bool {
        self.bad_blocks.is_empty() && self.errors.is_empty()
    }
}

/// Builds a [`Report`] from a stream of bytes.
#[derive(Debug, Default)]
pub struct Analyzer {
    dec: Decoder,
    acc: Acc,
}

#[derive(Debug, Default)]
struct Acc {
    file: Option<FileHeader>,
    header: Option<RedoHeader>,
    blocks: BlockCounts,
    records: u64,
    vectors: u64,
    lwns: u64,
    bad_blocks: Vec<BadBlock>,
    bad_blocks_omitted: u64,
    errors: Vec<DecodeError>,
    errors_omitted: u64,
    begins: Vec<Begin>,
    commits: Vec<Commit>,
    row_changes: Vec<RowChange>,
    row_changes_omitted: u64,
    first_unusable: Option<u32>,
    pending_rows: Vec<RowChange>,
    offsets: Option<OffsetChecker>,
}

impl Analyzer {
    pub fn new() -> Analyzer {
        Analyzer::default()
    }

    /// Feeds the next bytes of the file.
    pub fn feed(&mut self, data: &[u8]) -> Result<(), NotRedo> {
        self.feed_with(data, &mut |_| {})
    }

    /// Feeds the next bytes of the file; `visit` sees every row change and transaction end
    /// these bytes complete, in log order (none is dropped, unlike the report's capped list).
    pub fn feed_with(
        &mut self,
        data: &[u8],
        visit: &mut dyn FnMut(TxnEvent),
    ) -> Result<(), NotRedo> {
        self.dec.feed(data);
        self.drain(visit)
    }

    /// Ends the input and returns the report.
    pub fn finish(self) -> Result<Report, NotRedo> {
        self.finish_with(&mut |_| {})
    }

    /// Ends the input, `visit` seeing the last events (as [`Analyzer::feed_with`]), and returns
    /// the report.
    pub fn finish_with(mut self, visit: &mut dyn FnMut(TxnEvent)) -> Result<Report, NotRedo> {
        self.dec.finish();
        self.drain(visit)?;
        let write_point = self.dec.write_point();
        let log_state = self.dec.log_state();
        let a = self.acc;
        let first_record_offsets = a.offsets.map(OffsetChecker::finish).unwrap_or_default();
        let (Some(file), Some(header)) = (a.file, a.header) else {
            return Err(NotRedo::new(0, "file ends before the redo log header"));
        };
        let last_commit = a
            .commits
            .iter()
            .rev()
            .find(|c| !c.rollback && a.first_unusable.is_none_or(|b| c.end_block < b))
            .copied();
        Ok(Report {
            file,
            header,
            log_state,
            blocks: a.blocks,
            write_point,
            records: a.records,
            vectors: a.vectors,
            lwns: a.lwns,
            bad_blocks: a.bad_blocks,
            bad_blocks_omitted: a.bad_blocks_omitted,
            errors: a.errors,
            errors_omitted: a.errors_omitted,
            begins: a.begins,
            commits: a.commits,
            row_changes: a.row_changes,
            row_changes_omitted: a.row_changes_omitted,
            first_unusable_block: a.first_unusable,
            last_commit,
            first_record_offsets,
        })
    }

    fn drain(&mut self, visit: &mut dyn FnMut(TxnEvent)) -> Result<(), NotRedo> {
        while let Some(ev) = self.dec.poll()? {
            self.acc.handle(ev, visit);
        }
        Ok(())
    }
}

impl Acc {
    fn unusable(&mut self, block: u32) {
        self.first_unusable = Some(self.first_unusable.map_or(block, |b| b.min(block)));
    }

    fn error(&mut self, e: DecodeError) {
        if matches!(
            e.kind,
            ErrorKind::RecordLength
                | ErrorKind::LwnLength
                | ErrorKind::Vector
                | ErrorKind::Transaction
        ) {
            self.unusable(e.block);
        }
        if self.errors.len() < MAX_LISTED {
            self.errors.push(e);
        } else {
            self.errors_omitted = self.errors_omitted.saturating_add(1);
        }
    }

    fn handle(&mut self, ev: Event<'_>, visit: &mut dyn FnMut(TxnEvent)) {
        match ev {
            Event::FileHeader(h) => {
                self.offsets = Some(OffsetChecker::new(h.bs()));
                self.file = Some(h);
            }
            Event::RedoHeader(h) => self.header = Some(*h),
            Event::Block(b) => {
                if let (Some(first), Some(o)) = (b.first_record, self.offsets.as_mut()) {
                    o.block(b.block, first);
                }
                if b.block > 0 {
                    let c = &mut self.blocks;
                    let n = match b.state {
                        BlockState::Valid => &mut c.valid,
                        BlockState::Zero => &mut c.zero,
                        BlockState::Stale { .. } => &mut c.stale,
                        BlockState::Overwritten { .. } => &mut c.overwritten,
                        _ => &mut c.other,
                    };
                    *n = n.saturating_add(1);
                }
                if let Some(reason) = b.bad {
                    self.unusable(b.block);
                    if self.bad_blocks.len() < MAX_LISTED {
                        self.bad_blocks.push(BadBlock {
                            block: b.block,
                            reason,
                            state: b.state,
                        });
                    } else {
                        self.bad_blocks_omitted = self.bad_blocks_omitted.saturating_add(1);
                    }
                }
            }
            Event::Record(r) => self.record(&r, visit),
            Event::Error(e) => self.error(e),
            Event::End => {}
        }
    }

    fn record(&mut self, r: &Record<'_>, visit: &mut dyn FnMut(TxnEvent)) {
        self.records = self.records.saturating_add(1);
        let commits_before = self.commits.len();
        if let Some(o) = self.offsets.as_mut() {
            o.record(r.rba, r.header.len);
        }
        if r.header.lwn.is_some() {
            self.lwns = self.lwns.saturating_add(1);
        }
        let mut xid: Option<Xid> = None;
        self.pending_rows.clear();
        for v in r.vectors() {
            let v = match v {
                Ok(v) => v,
                Err(e) => {
                    self.error(DecodeError::new(
                        ErrorKind::Vector,
                        r.rba.block,
                        u32::from(r.rba.offset),
                        format!("vector at record offset {}: {}", e.offset, e.detail),
                    ));
                    break;
                }
            };
            self.vectors = self.vectors.saturating_add(1);
            match v.opcode {
                Opcode::TxnEnd => match txn::commit_of(r, &v) {
                    Ok(c) => self.commits.push(c),
                    Err(e) => self.error(e),
                },
                Opcode::TxnBegin => match txn::begin_of(r, &v) {
                    Ok(Some(b)) => {
                        xid = xid.or(Some(b.xid));
                        self.begins.push(b);
                    }
                    Ok(None) => {}
                    Err(e) => self.error(e),
                },
                Opcode::UndoRecord if xid.is_none() => {
                    xid = txn::undo_xid(&v).filter(|x| x.sqn != 0);
                }
                op if op.is_row_change() => self.pending_rows.push(RowChange {
                    xid: None,
                    opcode: op,
                    data_object: v.data_object,
                    dba: v.dba,
                    scn: r.header.scn,
                    rba: r.rba,
                }),
                _ => {}
            }
        }
        for mut row in self.pending_rows.drain(..) {
            row.xid = xid;
            visit(TxnEvent::Row(row));
            if self.row_changes.len() < MAX_ROW_CHANGES {
                self.row_changes.push(row);
            } else {
                self.row_changes_omitted = self.row_changes_omitted.saturating_add(1);
            }
        }
        for c in self.commits.iter().skip(commits_before) {
            visit(TxnEvent::End(*c));
        }
    }
}

/// Analyzes a whole redo file held in memory (fed to the decoder in 1 MiB chunks).
pub fn analyze(bytes: &[u8]) -> Result<Report, NotRedo> {
    let mut a = Analyzer::new();
    for chunk in bytes.chunks(1 << 20) {
        a.feed(chunk)?;
    }
    a.finish()
}

#[cfg(test)]
mod tests {
    use crate::position::DbId;
    use crate::position::ResetlogsId;
    use std::collections::HashMap;

    use super::*;
    use crate::position::{LogSeq, ThreadId};
    use crate::writer::{
        BlockSize, Compat, Endian, LogConfig, LogWriter, Lwn, Record as WRecord, RowId, ScnForm,
        VectorBuilder,
    };

    /// A log of `txns` transactions of `rows` inserts each (the odd ones rolled back), a record
    /// holding a 5.4 and an insert of its own at the end of each; and the xids.
    fn log_with_rows(txns: u32, rows: u32) -> (Vec<u8>, Vec<Xid>) {
        let per_txn_blocks = (u64::from(rows) * 400) / 4096 + 4;
        let cfg = LogConfig {
            block_size: BlockSize::B4096,
            endian: Endian::Little,
            compat: Compat::V23_6,
            scn_form: ScnForm::Big,
            db_id: DbId(7),
            db_name: "ROWS".into(),
            thread: ThreadId(1),
            sequence: LogSeq(3),
            resetlogs_id: ResetlogsId(11),
            resetlogs_scn: Scn(100),
            activation_id: 5,
            first_scn: Scn(1_000),
            first_time: 1_772_847_880,
            log_blocks: u32::try_from(u64::from(txns) * per_txn_blocks + 8).unwrap(),
            con_uid: 1,
            file_number: 1,
            control_seq: 1,
        };
        let mut w = LogWriter::new(cfg.clone()).unwrap();
        let mut file = vec![0u8; (cfg.log_blocks as usize + 1) * 4096];
        file[..4096].copy_from_slice(&w.file_header());
        file[4096..8192].copy_from_slice(&w.current_header());
        let vb = VectorBuilder {
            endian: Endian::Little,
            compat: Compat::V23_6,
            con_id: 3,
            con_uid: 1,
            undo_afn: 4,
            supplemental_log: false,
        };
        let mut scn = 1_001u64;
        let mut xids = Vec::new();
        for t in 0..txns {
            let xid = Xid {
                usn: 10,
                slot: (t % 40) as u16,
                sqn: 500 + t,
            };
            xids.push(xid);
            let mut records = Vec::new();
            for n in 0..rows {
                let row = RowId {
                    data_obj: 74_000 + t % 3,
                    afn: 25,
                    block: 128 + n,
                    slot: 0,
                };
                let insert = vb.insert(xid, n, row, Scn(scn), &[vec![0xc1, 0x02]]);
                let mut vectors = Vec::new();
                if n == 0 {
                    vectors.push(vb.begin(xid, Scn(scn)));
                }
                vectors.push(vb.undo(xid, n, Scn(scn), &vb.delete(xid, n, row, Scn(scn))));
                vectors.push(insert);
                records.push(WRecord {
                    scn: Scn(scn),
                    subscn: 1,
                    vectors,
                });
                scn += 1;
            }
            // The 5.4 shares its record with one more insert: the row comes first.
            let row = RowId {
                data_obj: 74_000 + t % 3,
                afn: 25,
                block: 9_999,
                slot: 0,
            };
            records.push(WRecord {
                scn: Scn(scn),
                subscn: 1,
                vectors: vec![
                    vb.undo(xid, rows, Scn(scn), &vb.delete(xid, rows, row, Scn(scn))),
                    vb.insert(xid, rows, row, Scn(scn), &[vec![0xc1, 0x03]]),
                    vb.commit(xid, t % 2 == 1, Scn(scn), 1_772_847_880),
                ],
            });
            let out = w
                .append_lwn(&Lwn {
                    scn: Scn(scn),
                    time: 1_772_847_880,
                    records,
                })
                .unwrap();
            scn += 1;
            let at = out.first_block as usize * 4096;
            file[at..at + out.bytes.len()].copy_from_slice(&out.bytes);
        }
        (file, xids)
    }

    #[test]
    fn the_visitor_sees_every_row_change_beyond_the_reports_cap_in_log_order() {
        // 12 transactions of 9,000 inserts (+1 beside each commit): 108,012 row changes.
        let (log, xids) = log_with_rows(12, 9_000);
        let mut a = Analyzer::new();
        let mut events = Vec::new();
        for chunk in log.chunks(100_000) {
            a.feed_with(chunk, &mut |e| events.push(e)).unwrap();
        }
        let r = a.finish_with(&mut |e| events.push(e)).unwrap();
        assert!(r.is_clean(), "{:?} {:?}", r.bad_blocks, r.errors);
        // The report keeps its cap (what inspect prints) and counts the rest.
        assert_eq!(r.row_changes.len(), MAX_ROW_CHANGES);
        assert_eq!(r.row_changes_omitted, 108_012 - MAX_ROW_CHANGES as u64);
        // The visitor sees all of them, each before its transaction's end, and the ends in
        // the report's order.
        let rows: Vec<&RowChange> = events
            .iter()
            .filter_map(|e| match e {
                TxnEvent::Row(r) => Some(r),
                TxnEvent::End(_) => None,
            })
            .collect();
        assert_eq!(rows.len(), 108_012);
        assert_eq!(
            &r.row_changes[..],
            &rows[..MAX_ROW_CHANGES]
                .iter()
                .map(|r| **r)
                .collect::<Vec<_>>()[..]
        );
        let ends: Vec<Commit> = events
            .iter()
            .filter_map(|e| match e {
                TxnEvent::End(c) => Some(*c),
                TxnEvent::Row(_) => None,
            })
            .collect();
        assert_eq!(ends, r.commits);
        let mut open: HashMap<Xid, u32> = HashMap::new();
        let mut done = Vec::new();
        for e in &events {
            match e {
                TxnEvent::Row(row) => *open.entry(row.xid.unwrap()).or_default() += 1,
                TxnEvent::End(c) => done.push((c.xid, open.remove(&c.xid).unwrap_or(0))),
            }
        }
        assert!(open.is_empty());
        assert_eq!(done, xids.iter().map(|x| (*x, 9_001)).collect::<Vec<_>>());
    }

    #[test]
    fn feed_and_finish_without_a_visitor_give_the_same_report() {
        let (log, _) = log_with_rows(3, 50);
        let mut a = Analyzer::new();
        let mut n = 0;
        for chunk in log.chunks(777) {
            a.feed_with(chunk, &mut |_| n += 1).unwrap();
        }
        let with = a.finish_with(&mut |_| n += 1).unwrap();
        assert_eq!(n, 3 * 51 + 3);
        assert_eq!(with, analyze(&log).unwrap());
    }
}
