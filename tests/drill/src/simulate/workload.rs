//! The simulated workload: tables, transactions and the redo records each step writes.
//!
//! Everything here is deterministic given the seeded RNG. A transaction begins with a record
//! holding 5.2 (begin) + 5.1 (undo) + 11.x (row change) + 5.19/5.20 (session attributes),
//! continues with 5.1 + 11.x records,
//! and ends with 5.4 (+ 24.4 on 23ai). A rollback first applies its undo in reverse order
//! (one 11.x + 5.6 "undo applied" record per change), then writes 5.4 with the rollback flag,
//! as Oracle does.

use rand::Rng;
use rand::rngs::StdRng;
use redovault_redo::position::{Scn, Xid};
use redovault_redo::writer::{ChangeVector, Record, RowId, Session, VectorBuilder};

/// A table the workload changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    /// Table name (as a DBA would see it in LogMiner).
    pub name: String,
    /// Data object id of its segment (the id row changes carry).
    pub data_obj: u32,
    /// Absolute file number of its tablespace.
    pub afn: u16,
    /// First block of its segment.
    pub first_block: u32,
}

/// The default tables: four tables in the USERS tablespace (file 24), with the data object id
/// of the real fixture's `TEST_CDC` first.
pub fn default_tables() -> Vec<Table> {
    [
        ("TEST_CDC", 72_726),
        ("ORDERS", 72_730),
        ("CUSTOMERS", 72_741),
        ("AUDIT_LOG", 73_002),
    ]
    .iter()
    .enumerate()
    .map(|(i, (name, obj))| Table {
        name: (*name).to_string(),
        data_obj: *obj,
        afn: 24,
        first_block: 128 + 65_536 * i as u32,
    })
    .collect()
}

/// Mix parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mix {
    /// Percent of transactions that roll back.
    pub rollback_pct: u32,
    /// Percent of transactions that are long (many changes, spread over time).
    pub long_pct: u32,
    /// Most transactions open at once per thread.
    pub max_open: usize,
}

impl Default for Mix {
    fn default() -> Mix {
        Mix {
            rollback_pct: 10,
            long_pct: 5,
            max_open: 8,
        }
    }
}

/// Kind of a row change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpKind {
    /// 11.2.
    Insert,
    /// 11.5.
    Update,
    /// 11.3.
    Delete,
}

#[derive(Debug, Clone)]
struct TxOp {
    kind: OpKind,
    row: RowId,
    /// Column values before the change (what undo restores).
    old: Vec<Vec<u8>>,
}

/// A transaction still open on one thread.
#[derive(Debug, Clone)]
struct OpenTx {
    xid: Xid,
    table: usize,
    target_ops: u32,
    ops: Vec<TxOp>,
    begin_scn: Scn,
    long: bool,
}

/// A transaction that ended: what the journal records once its 5.4 is on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndedTx {
    /// Transaction id.
    pub xid: Xid,
    /// True for a rollback.
    pub rollback: bool,
    /// Commit SCN: the SCN of the record holding the 5.4.
    pub scn: Scn,
    /// Commit time, Unix seconds.
    pub time: i64,
    /// SCN of the begin record.
    pub begin_scn: Scn,
    /// Table name.
    pub table: String,
    /// Data object id of the table.
    pub data_obj: u32,
    /// Rows changed, in order.
    pub rows: Vec<RowId>,
    /// Inserts, updates and deletes.
    pub counts: [u32; 3],
    /// True for a long transaction.
    pub long: bool,
}

/// What one step produced for a thread: records in order, and the transaction ended by the
/// last record if any.
#[derive(Debug, Default)]
pub struct Step {
    /// Records to write, in order.
    pub records: Vec<Record>,
    /// The transaction the last record ends.
    pub ended: Option<EndedTx>,
}

#[derive(Debug, Clone)]
struct TableState {
    table: Table,
    live: Vec<RowId>,
    block: u32,
    next_slot: u16,
    next_id: u64,
}

/// The shared SCN clock of the database (one for all threads, as in RAC).
#[derive(Debug, Clone)]
pub struct Clock {
    scn: u64,
}

impl Clock {
    /// A clock whose next SCN is `start`.
    pub fn new(start: u64) -> Clock {
        Clock { scn: start }
    }

    /// Takes the next SCN.
    pub fn tick(&mut self) -> Scn {
        let s = self.scn;
        self.scn += 1;
        Scn(s)
    }

    /// The SCN the next call to [`Clock::tick`] returns.
    pub fn peek(&self) -> Scn {
        Scn(self.scn)
    }
}

/// Undo segments and slots of one thread's undo tablespace.
#[derive(Debug, Clone)]
struct UndoSlots {
    first_usn: u16,
    usns: u16,
    sqn: Vec<u32>,
    busy: Vec<bool>,
}

const SLOTS: u16 = 34;

impl UndoSlots {
    /// Undo segments `first_usn .. first_usn + usns`, with slot wraps starting from `base`.
    fn new(first_usn: u16, usns: u16, base: u32) -> UndoSlots {
        let n = usize::from(usns) * usize::from(SLOTS);
        // Slots have been reused different numbers of times: spread their wraps.
        UndoSlots {
            first_usn,
            usns,
            sqn: (0..n).map(|i| base + (i as u32 * 7919) % 1000).collect(),
            busy: vec![false; n],
        }
    }

    fn take(&mut self, rng: &mut StdRng) -> Option<Xid> {
        let n = self.busy.len();
        if n == 0 {
            return None;
        }
        let start = rng.gen_range(0..n);
        for k in 0..n {
            let i = (start + k) % n;
            if !self.busy[i] {
                self.busy[i] = true;
                self.sqn[i] += 1;
                let usn = self.first_usn + (i / usize::from(SLOTS)) as u16;
                let slot = (i % usize::from(SLOTS)) as u16;
                return Some(Xid {
                    usn,
                    slot,
                    sqn: self.sqn[i],
                });
            }
        }
        None
    }

    fn release(&mut self, xid: Xid) {
        let u = xid.usn.wrapping_sub(self.first_usn);
        if u < self.usns && xid.slot < SLOTS {
            self.busy[usize::from(u) * usize::from(SLOTS) + usize::from(xid.slot)] = false;
        }
    }
}

/// One thread's transactions: open ones and its undo slots.
#[derive(Debug, Clone)]
pub struct ThreadTxns {
    open: Vec<OpenTx>,
    undo: UndoSlots,
    /// Transactions begun so far (each 16th is a new session's first: 5.19, else 5.20).
    begun: u64,
}

impl ThreadTxns {
    /// A thread with undo segments `first_usn .. first_usn + 10`.
    pub fn new(first_usn: u16, sqn_base: u32) -> ThreadTxns {
        ThreadTxns {
            open: Vec::new(),
            undo: UndoSlots::new(first_usn, 10, sqn_base),
            begun: 0,
        }
    }

    /// Number of open transactions.
    pub fn open_count(&self) -> usize {
        self.open.len()
    }
}

/// The session of the `begun`th transaction of a thread (deterministic): a new session logs on
/// every 16 transactions and its first transaction carries the 5.19 session information.
fn session_of(begun: u64) -> (Session, bool) {
    let n = begun / 16;
    let session = Session {
        sid: 40 + (n % 200) as u32,
        serial: (n.wrapping_mul(7919) % 65_000) as u16 + 1,
        user: "APP".into(),
        audit_sid: 30_000 + n,
    };
    (session, begun.is_multiple_of(16))
}

/// Oracle NUMBER encoding of a non-negative integer (base 100, exponent byte 0xC1 + digits-1).
pub fn oracle_number(mut v: u64) -> Vec<u8> {
    if v == 0 {
        return vec![0x80];
    }
    let mut digits = Vec::new();
    while v > 0 {
        digits.push((v % 100) as u8);
        v /= 100;
    }
    digits.reverse();
    let exp = 0xC0 + digits.len() as u8;
    while digits.last() == Some(&0) {
        digits.pop();
    }
    let mut out = vec![exp];
    out.extend(digits.iter().map(|d| d + 1));
    out
}

/// The database-wide workload: tables and their rows.
#[derive(Debug, Clone)]
pub struct Workload {
    tables: Vec<TableState>,
    mix: Mix,
}

impl Workload {
    /// A workload over `tables` with the given mix.
    pub fn new(tables: Vec<Table>, mix: Mix) -> Workload {
        let tables = tables
            .into_iter()
            .map(|t| TableState {
                block: t.first_block,
                table: t,
                live: Vec::new(),
                next_slot: 0,
                next_id: 1,
            })
            .collect();
        Workload { tables, mix }
    }

    fn text(rng: &mut StdRng, id: u64) -> Vec<u8> {
        let long = rng.gen_range(0..100) < 3;
        let len = if long {
            rng.gen_range(400..2500)
        } else {
            rng.gen_range(8..120)
        };
        let mut s = format!("row {id} ").into_bytes();
        while s.len() < len {
            s.push(b'a' + rng.gen_range(0..26u8));
        }
        s
    }

    fn new_row(&mut self, t: usize) -> (RowId, u64) {
        let ts = &mut self.tables[t];
        if ts.next_slot >= 60 {
            ts.block += 1;
            ts.next_slot = 0;
        }
        let row = RowId {
            data_obj: ts.table.data_obj,
            afn: ts.table.afn,
            block: ts.block,
            slot: ts.next_slot,
        };
        ts.next_slot += 1;
        let id = ts.next_id;
        ts.next_id += 1;
        (row, id)
    }

    /// One row change for `tx`: returns the 5.1 undo and the 11.x redo vectors.
    fn change(
        &mut self,
        rng: &mut StdRng,
        vb: &VectorBuilder,
        tx: &mut OpenTx,
        scn: Scn,
    ) -> (ChangeVector, ChangeVector) {
        let n = tx.ops.len() as u32;
        let t = tx.table;
        let roll = rng.gen_range(0..100);
        let has_rows = !self.tables[t].live.is_empty();
        let kind = if !has_rows || roll < 50 {
            OpKind::Insert
        } else if roll < 85 {
            OpKind::Update
        } else {
            OpKind::Delete
        };
        let prev = Scn(scn.0.saturating_sub(1));
        let (redo, undo_op, op) = match kind {
            OpKind::Insert => {
                let (row, id) = self.new_row(t);
                let cols = vec![oracle_number(id), Self::text(rng, id)];
                self.tables[t].live.push(row);
                let redo = vb.insert(tx.xid, n, row, prev, &cols);
                let undo_op = vb.delete(tx.xid, n, row, prev);
                (
                    redo,
                    undo_op,
                    TxOp {
                        kind,
                        row,
                        old: Vec::new(),
                    },
                )
            }
            OpKind::Update => {
                let live = &self.tables[t].live;
                let row = live[rng.gen_range(0..live.len())];
                let old = vec![Self::text(rng, u64::from(row.slot))];
                let new = vec![Self::text(rng, u64::from(row.slot))];
                let redo = vb.update(tx.xid, n, row, prev, &new);
                let undo_op = vb.update(tx.xid, n, row, prev, &old);
                (redo, undo_op, TxOp { kind, row, old })
            }
            OpKind::Delete => {
                let live = &mut self.tables[t].live;
                let row = live.swap_remove(rng.gen_range(0..live.len()));
                let old = vec![
                    oracle_number(u64::from(row.slot)),
                    Self::text(rng, u64::from(row.slot)),
                ];
                let redo = vb.delete(tx.xid, n, row, prev);
                let undo_op = vb.insert(tx.xid, n, row, prev, &old);
                (redo, undo_op, TxOp { kind, row, old })
            }
        };
        let undo = vb.undo(tx.xid, n, prev, &undo_op);
        tx.ops.push(op);
        (undo, redo)
    }

    /// One step of one thread at Unix time `now`: begin a transaction, change a row in an
    /// open one, or end one. Each record takes the next SCN of `clock`.
    pub fn step(
        &mut self,
        rng: &mut StdRng,
        txns: &mut ThreadTxns,
        vb: &VectorBuilder,
        clock: &mut Clock,
        now: i64,
    ) -> Step {
        let begin = txns.open.is_empty()
            || (txns.open.len() < self.mix.max_open && rng.gen_range(0..100) < 35);
        if begin && let Some(xid) = txns.undo.take(rng) {
            let long = rng.gen_range(0..100) < self.mix.long_pct;
            let target_ops = if long {
                rng.gen_range(40..200)
            } else {
                rng.gen_range(1..6)
            };
            let table = rng.gen_range(0..self.tables.len());
            let scn = clock.tick();
            let mut tx = OpenTx {
                xid,
                table,
                target_ops,
                ops: Vec::new(),
                begin_scn: scn,
                long,
            };
            let (undo, redo) = self.change(rng, vb, &mut tx, scn);
            let begin = vb.begin(xid, Scn(scn.0.saturating_sub(1)));
            let (session, first) = session_of(txns.begun);
            txns.begun = txns.begun.wrapping_add(1);
            let attributes = vb.session_attributes(&session, first);
            txns.open.push(tx);
            return Step {
                records: vec![Record {
                    scn,
                    subscn: 1,
                    vectors: vec![begin, undo, redo, attributes],
                }],
                ended: None,
            };
        }
        if txns.open.is_empty() {
            return Step::default();
        }
        let i = rng.gen_range(0..txns.open.len());
        // Long transactions advance slowly: most of the time pick another or skip.
        if txns.open[i].long && txns.open.len() > 1 && rng.gen_range(0..100) < 60 {
            return Step::default();
        }
        if (txns.open[i].ops.len() as u32) < txns.open[i].target_ops {
            let scn = clock.tick();
            let mut tx = txns.open[i].clone();
            let (undo, redo) = self.change(rng, vb, &mut tx, scn);
            txns.open[i] = tx;
            return Step {
                records: vec![Record {
                    scn,
                    subscn: 1,
                    vectors: vec![undo, redo],
                }],
                ended: None,
            };
        }
        let tx = txns.open.swap_remove(i);
        txns.undo.release(tx.xid);
        let rollback = rng.gen_range(0..100) < self.mix.rollback_pct;
        let mut records = Vec::new();
        if rollback {
            for (n, op) in tx.ops.iter().enumerate().rev() {
                let scn = clock.tick();
                let prev = Scn(scn.0.saturating_sub(1));
                let n = n as u32;
                let inverse = match op.kind {
                    OpKind::Insert => {
                        self.tables[tx.table].live.retain(|r| *r != op.row);
                        vb.delete(tx.xid, n, op.row, prev)
                    }
                    OpKind::Delete => {
                        self.tables[tx.table].live.push(op.row);
                        vb.insert(tx.xid, n, op.row, prev, &op.old)
                    }
                    OpKind::Update => vb.update(tx.xid, n, op.row, prev, &op.old),
                };
                records.push(Record {
                    scn,
                    subscn: 1,
                    vectors: vec![inverse, vb.undo_applied(tx.xid, n, prev, op.row.data_obj)],
                });
            }
        }
        let scn = clock.tick();
        let mut vectors = vec![vb.commit(tx.xid, rollback, Scn(scn.0.saturating_sub(1)), now)];
        if vb.compat.has_commit_time() {
            vectors.push(vb.marker_24_4(tx.xid));
        }
        records.push(Record {
            scn,
            subscn: 1,
            vectors,
        });
        let mut counts = [0u32; 3];
        for op in &tx.ops {
            counts[match op.kind {
                OpKind::Insert => 0,
                OpKind::Update => 1,
                OpKind::Delete => 2,
            }] += 1;
        }
        let table = &self.tables[tx.table].table;
        let ended = EndedTx {
            xid: tx.xid,
            rollback,
            scn,
            time: now,
            begin_scn: tx.begin_scn,
            table: table.name.clone(),
            data_obj: table.data_obj,
            rows: tx.ops.iter().map(|o| o.row).collect(),
            counts,
            long: tx.long,
        };
        Step {
            records,
            ended: Some(ended),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use redovault_redo::writer::{Compat, Endian};

    #[test]
    fn numbers_encode_like_oracle() {
        assert_eq!(oracle_number(1), vec![0xC1, 0x02]);
        assert_eq!(oracle_number(100), vec![0xC2, 0x02]);
        assert_eq!(oracle_number(123), vec![0xC2, 0x02, 0x18]);
        assert_eq!(oracle_number(0), vec![0x80]);
    }

    #[test]
    fn steps_are_deterministic_and_end_transactions() {
        let vb = VectorBuilder {
            endian: Endian::Little,
            compat: Compat::V23_6,
            con_id: 3,
            con_uid: 7,
            undo_afn: 4,
            supplemental_log: true,
        };
        let run = |seed| {
            let mut rng = StdRng::seed_from_u64(seed);
            let mut w = Workload::new(default_tables(), Mix::default());
            let mut t = ThreadTxns::new(1, 100);
            let mut clock = Clock::new(1000);
            let mut ended = Vec::new();
            let mut records = 0;
            for i in 0..2000 {
                let s = w.step(&mut rng, &mut t, &vb, &mut clock, 1_772_847_880 + i);
                records += s.records.len();
                ended.extend(s.ended);
            }
            (ended, records)
        };
        let (a, ra) = run(7);
        let (b, rb) = run(7);
        assert_eq!(a, b);
        assert_eq!(ra, rb);
        assert!(a.len() > 100, "{}", a.len());
        assert!(a.iter().any(|e| e.rollback) && a.iter().any(|e| !e.rollback));
        assert!(a.iter().any(|e| e.long));
        let (c, _) = run(8);
        assert_ne!(a, c);
        // SCNs strictly increase in end order.
        assert!(a.windows(2).all(|w| w[0].scn < w[1].scn));
    }
}
