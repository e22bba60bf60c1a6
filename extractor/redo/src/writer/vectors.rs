//! Change vectors: the header (24 bytes before 12.1, 32 from 12.1 on), the u16 length array
//! and 4-byte-aligned fields (§11), and builders for the opcodes a transaction writes (§12).
//!
//! The field layouts follow the real 23ai log where it shows them, byte for byte where the
//! values are not the database's own (5.2 ktudh; 5.1 ktudb, the 76-byte begin ktubl with flag
//! 0x0c08 and the 24-byte ktubu, the supplemental-log section; 11.2 ktbredo + kdo IRP; 5.4
//! ktucm + ktucf + commit time; 24.4; 5.19 and 5.20 session attributes), and OpenLogReplicator's
//! reader where the real log has none (5.6: a 24-byte ktubu with "user undo done" and the
//! ktuxvoff field). Integers inside fields are in the log's byte order.

use super::{Compat, Endian, WriterError, put};
use crate::position::{Scn, Xid};

/// One change vector: header values and raw fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeVector {
    /// Layer (5 = undo/transaction, 11 = table rows, 24 = DDL/supplemental, ...).
    pub layer: u8,
    /// Code within the layer: opcode `layer.code`.
    pub code: u8,
    /// Block class (1 = data block, `15 + 2·usn` = undo segment header, `16 + 2·usn` = undo
    /// block).
    pub class: u16,
    /// Absolute file number of the changed block.
    pub afn: u16,
    /// Data object id, split into header offsets 6 (high) and 22 (low); `None` writes
    /// `0xFFFF` in both, as Oracle does for undo.
    pub data_obj: Option<u32>,
    /// Data block address of the changed block.
    pub dba: u32,
    /// SCN of the block before the change.
    pub scn: Scn,
    /// Block change sequence.
    pub seq: u8,
    /// Type (6 = a vector that changes no block).
    pub typ: u8,
    /// Container id (12.1+ header offset 24).
    pub con_id: u16,
    /// Flags (12.1+ header offset 28).
    pub flg: u16,
    /// Fields, each written with its exact length and padded to 4 bytes.
    pub fields: Vec<Vec<u8>>,
}

impl ChangeVector {
    /// Bytes this vector takes in a record of a log of version `compat`.
    pub fn encoded_len(&self, compat: Compat) -> Result<usize, WriterError> {
        let n = self.fields.len();
        // The length array holds its own u16 size and one u16 per field.
        let array = n
            .checked_mul(2)
            .and_then(|a| a.checked_add(2))
            .filter(|&a| a <= usize::from(u16::MAX))
            .ok_or(WriterError::TooManyFields(n))?;
        let mut len = compat.vector_header_len().saturating_add(pad4_len(array));
        for f in &self.fields {
            if f.len() > usize::from(u16::MAX) {
                return Err(WriterError::TooLong {
                    what: "change-vector field",
                    len: f.len(),
                });
            }
            len = len.saturating_add(pad4_len(f.len()));
        }
        Ok(len)
    }

    /// Appends the encoded vector to `out`. Call [`ChangeVector::encoded_len`] first: lengths
    /// beyond u16 are truncated here.
    pub(crate) fn encode_into(&self, e: Endian, compat: Compat, out: &mut Vec<u8>) {
        let mut h = [0u8; 32];
        put(&mut h, 0, &[self.layer, self.code]);
        e.put_u16(&mut h, 2, self.class);
        e.put_u16(&mut h, 4, self.afn);
        let (hi, lo) = match self.data_obj {
            Some(o) => ((o >> 16) as u16, o as u16),
            None => (0xFFFF, 0xFFFF),
        };
        e.put_u16(&mut h, 6, hi);
        e.put_u32(&mut h, 8, self.dba);
        put_vector_scn(e, &mut h, 12, self.scn);
        put(&mut h, 20, &[self.seq, self.typ]);
        e.put_u16(&mut h, 22, lo);
        if compat.has_containers() {
            e.put_u16(&mut h, 24, self.con_id);
            e.put_u16(&mut h, 28, self.flg);
        }
        out.extend_from_slice(h.get(..compat.vector_header_len()).unwrap_or(&h));
        let array = self.fields.len().saturating_mul(2).saturating_add(2);
        out.extend_from_slice(&e.u16(array as u16));
        for f in &self.fields {
            out.extend_from_slice(&e.u16(f.len() as u16));
        }
        pad4(out);
        for f in &self.fields {
            out.extend_from_slice(f);
            pad4(out);
        }
    }
}

/// `n` rounded up to a multiple of 4 (the room a field or length array takes).
fn pad4_len(n: usize) -> usize {
    n.saturating_add(3) & !3
}

fn pad4(out: &mut Vec<u8>) {
    while !out.len().is_multiple_of(4) {
        out.push(0);
    }
}

/// An 8-byte SCN in a vector header: the small form when it fits, else the big form.
fn put_vector_scn(e: Endian, buf: &mut [u8], at: usize, scn: Scn) {
    let v = scn.0;
    let (base, wrap, wrap2) = if v <= Scn::MAX_SMALL {
        (v as u32, (v >> 32) as u16, 0)
    } else {
        (
            v as u32,
            0x8000 | ((v >> 48) & 0x7FFF) as u16,
            (v >> 32) as u16,
        )
    };
    e.put_u32(buf, at, base);
    e.put_u16(buf, at.saturating_add(4), wrap);
    e.put_u16(buf, at.saturating_add(6), wrap2);
}

/// Where a table row lives: data object id, file, block and slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RowId {
    /// Data object id of the table segment.
    pub data_obj: u32,
    /// File number (absolute = relative here, as in a small database).
    pub afn: u16,
    /// Block number within the file (22 bits).
    pub block: u32,
    /// Row slot within the block.
    pub slot: u16,
}

impl RowId {
    /// The data block address: relative file in the top 10 bits, block in the low 22.
    pub fn dba(&self) -> u32 {
        (u32::from(self.afn) & 0x3FF) << 22 | (self.block & 0x3F_FFFF)
    }

    /// The extended ROWID as Oracle prints it (`OOOOOOFFFBBBBBBRRR`, base 64).
    pub fn to_oracle_string(&self) -> String {
        const ALPHABET: &[u8; 64] =
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut s = String::with_capacity(18);
        let mut push = |v: u64, digits: u32| {
            for i in (0..digits).rev() {
                let d = (v >> i.saturating_mul(6)) & 63;
                s.push(ALPHABET.get(d as usize).map_or('A', |&c| char::from(c)));
            }
        };
        push(u64::from(self.data_obj), 6);
        push(u64::from(self.afn & 0x3FF), 3);
        push(u64::from(self.block & 0x3F_FFFF), 6);
        push(u64::from(self.slot), 3);
        s
    }
}

/// The undo record address a transaction's undo lives at: undo block, sequence, record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Uba {
    /// Undo block address.
    pub dba: u32,
    /// Undo block sequence.
    pub seq: u16,
    /// Record within the undo block.
    pub rec: u8,
}

/// Builds change vectors in the byte order and layout of one log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VectorBuilder {
    /// Byte order of the log.
    pub endian: Endian,
    /// Version of the log.
    pub compat: Compat,
    /// Container id of the PDB the changes belong to (12.1+).
    pub con_id: u16,
    /// Container UID, carried in the 12.1+ 5.2 PDB field.
    pub con_uid: u32,
    /// Absolute file number of the undo tablespace.
    pub undo_afn: u16,
    /// The database logs supplemental data (`ALTER DATABASE ADD SUPPLEMENTAL LOG DATA`, as at
    /// every site that runs a CDC tool): every 5.1 of a row change ends with the
    /// supplemental-log section, without which a log-based reader emits no row.
    pub supplemental_log: bool,
}

/// A database session, as the 5.19 and 5.20 session-attribute vectors name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// Session id (`V$SESSION.SID`).
    pub sid: u32,
    /// Session serial number.
    pub serial: u16,
    /// Login user name.
    pub user: String,
    /// Audit session id (`V$SESSION.AUDSID`).
    pub audit_sid: u64,
}

/// Tablespace number of the simulated tables (USERS, as in the real log).
const USERS_TSN: u32 = 6;
/// The user id of the simulated application user in the ktubl (the real log's is 136).
const LOGON_USER: u32 = 136;
/// ktub flags (OpenLogReplicator `OpCode::FLG_*`).
const KTUB_BEGIN: u16 = 0x0008;
const KTUB_USER_UNDO_DONE: u16 = 0x0010;
/// The begin flags of the real 23ai ktubl: begin, 0x0400 and BUEXT (0x0800).
const KTUBL_FLAGS: u16 = 0x0c00 | KTUB_BEGIN;

/// Bytes of a row piece: one length byte per column plus the column data.
fn row_size(cols: &[Vec<u8>]) -> usize {
    cols.iter().fold(0usize, |acc, c| {
        acc.saturating_add(c.len()).saturating_add(1)
    })
}

/// kdo row operation codes (byte 10 of the kdo field).
const KDO_IRP: u8 = 0x02;
const KDO_DRP: u8 = 0x03;
const KDO_URP: u8 = 0x05;

impl VectorBuilder {
    /// Undo segment header class of `xid`'s undo segment.
    fn header_class(xid: Xid) -> u16 {
        15u16.wrapping_add(xid.usn.wrapping_mul(2))
    }

    /// Data block address of the undo segment header of `usn`.
    pub fn undo_header_dba(&self, usn: u16) -> u32 {
        (u32::from(self.undo_afn) & 0x3FF) << 22 | (u32::from(usn) << 3).wrapping_add(128)
    }

    /// The undo record address of the `n`th change of `xid` (deterministic).
    pub fn uba(&self, xid: Xid, n: u32) -> Uba {
        // usn < 2^16 and the rest < 512: no overflow in u32.
        let within = ((u32::from(xid.slot) << 4).wrapping_add(n >> 5)) & 511;
        let block = (u32::from(xid.usn) << 9)
            .wrapping_add(4096)
            .wrapping_add(within);
        Uba {
            dba: (u32::from(self.undo_afn) & 0x3FF) << 22 | block,
            seq: (xid.sqn & 0xFFFF) as u16,
            rec: ((n & 31) as u8).wrapping_add(1),
        }
    }

    fn base(&self, layer: u8, code: u8, class: u16, afn: u16, dba: u32, scn: Scn) -> ChangeVector {
        ChangeVector {
            layer,
            code,
            class,
            afn,
            data_obj: None,
            dba,
            scn,
            seq: 1,
            typ: 0,
            con_id: if self.compat.has_containers() {
                self.con_id
            } else {
                0
            },
            flg: 0,
            fields: Vec::new(),
        }
    }

    fn put_uba(&self, f: &mut [u8], at: usize, uba: Uba) {
        self.endian.put_u32(f, at, uba.dba);
        self.endian.put_u16(f, at.saturating_add(4), uba.seq);
        put(f, at.saturating_add(6), &[uba.rec]);
    }

    /// 5.2 (ktudh): the transaction takes slot `xid.slot` of undo segment `xid.usn` with
    /// wrap `xid.sqn` — the transaction begin. `scn` is the header block's previous SCN.
    pub fn begin(&self, xid: Xid, scn: Scn) -> ChangeVector {
        let e = self.endian;
        let mut v = self.base(
            5,
            2,
            Self::header_class(xid),
            self.undo_afn,
            self.undo_header_dba(xid.usn),
            scn,
        );
        let mut ktudh = vec![0u8; 32];
        e.put_u16(&mut ktudh, 0, xid.slot);
        e.put_u32(&mut ktudh, 4, xid.sqn);
        self.put_uba(&mut ktudh, 8, self.uba(xid, 0));
        e.put_u16(&mut ktudh, 16, 0x0001);
        e.put_u16(&mut ktudh, 18, 0x0088);
        v.fields.push(ktudh);
        if self.compat.has_containers() {
            v.fields.push(e.u32(self.con_uid).to_vec());
        }
        v
    }

    /// ktbredo (field 1 of a row change): the transaction that made it and its undo address.
    fn ktbredo(&self, xid: Xid, uba: Uba) -> Vec<u8> {
        let e = self.endian;
        let mut f = vec![0u8; 24];
        put(&mut f, 0, &[0x01, 0x0d]); // KTBOP_F: sets the ITL's xid and uba
        e.put_u16(&mut f, 8, xid.usn);
        e.put_u16(&mut f, 10, xid.slot);
        e.put_u32(&mut f, 12, xid.sqn);
        self.put_uba(&mut f, 16, uba);
        f
    }

    /// kdo common head: block, header block, max free, opcode.
    fn kdo_head(&self, row: RowId, op: u8, len: usize) -> Vec<u8> {
        let e = self.endian;
        let mut f = vec![0u8; len];
        e.put_u32(&mut f, 0, row.dba());
        e.put_u32(&mut f, 4, row.dba() & !0x3F_FFFF | 10);
        e.put_u16(&mut f, 8, 0x12fa);
        put(&mut f, 10, &[op, 0x01, 0x01]); // opcode, flags, ITL index
        f
    }

    fn kdo_irp(&self, row: RowId, ncols: usize, size: usize) -> Vec<u8> {
        let e = self.endian;
        let mut f = self.kdo_head(row, KDO_IRP, 48);
        // Flag byte (first and last piece, head of row), lock byte (the owning ITL), columns.
        put(&mut f, 16, &[0x2c, 0x01, ncols.min(255) as u8]);
        e.put_u16(&mut f, 32, size.min(0xFFFF) as u16);
        e.put_u16(&mut f, 42, row.slot);
        f
    }

    fn kdo_drp(&self, row: RowId) -> Vec<u8> {
        let mut f = self.kdo_head(row, KDO_DRP, 20);
        self.endian.put_u16(&mut f, 16, row.slot);
        f
    }

    fn kdo_urp(&self, row: RowId, ncols: usize, size: usize) -> Vec<u8> {
        let e = self.endian;
        let mut f = self.kdo_head(row, KDO_URP, 28);
        put(&mut f, 16, &[0x2c, 0x01]);
        e.put_u16(&mut f, 20, row.slot);
        put(&mut f, 22, &[ncols.min(255) as u8, ncols.min(255) as u8]);
        e.put_u16(&mut f, 24, size.min(0x7FFF) as u16);
        f
    }

    fn row_vector(&self, code: u8, row: RowId, scn: Scn, fields: Vec<Vec<u8>>) -> ChangeVector {
        let mut v = self.base(11, code, 1, row.afn, row.dba(), scn);
        v.data_obj = Some(row.data_obj);
        v.fields = fields;
        v
    }

    /// 11.2: insert row piece `cols` at `row` for `xid`, whose undo is change `n`.
    pub fn insert(&self, xid: Xid, n: u32, row: RowId, scn: Scn, cols: &[Vec<u8>]) -> ChangeVector {
        let size = row_size(cols).saturating_add(3);
        let mut fields = vec![
            self.ktbredo(xid, self.uba(xid, n)),
            self.kdo_irp(row, cols.len(), size),
        ];
        fields.extend(cols.iter().cloned());
        self.row_vector(2, row, scn, fields)
    }

    /// 11.3: delete the row at `row` for `xid`, whose undo is change `n`.
    pub fn delete(&self, xid: Xid, n: u32, row: RowId, scn: Scn) -> ChangeVector {
        let fields = vec![self.ktbredo(xid, self.uba(xid, n)), self.kdo_drp(row)];
        self.row_vector(3, row, scn, fields)
    }

    /// 11.5: update columns `1..=cols.len()` of the row at `row` for `xid`.
    pub fn update(&self, xid: Xid, n: u32, row: RowId, scn: Scn, cols: &[Vec<u8>]) -> ChangeVector {
        let e = self.endian;
        let size = row_size(cols);
        let mut colnums = Vec::with_capacity(cols.len().saturating_mul(2));
        for i in 0..cols.len() {
            colnums.extend_from_slice(&e.u16(i as u16));
        }
        let mut fields = vec![
            self.ktbredo(xid, self.uba(xid, n)),
            self.kdo_urp(row, cols.len(), size),
            colnums,
        ];
        fields.extend(cols.iter().cloned());
        self.row_vector(5, row, scn, fields)
    }

    /// 5.1: the undo record of change `n` of `xid` (ktudb with the full XID, ktubl on the
    /// first change with the begin flag, else ktubu), holding `undo_op` as the undo data.
    pub fn undo(&self, xid: Xid, n: u32, scn: Scn, undo_op: &ChangeVector) -> ChangeVector {
        let e = self.endian;
        let uba = self.uba(xid, n);
        let mut v = self.base(
            5,
            1,
            Self::header_class(xid).wrapping_add(1),
            self.undo_afn,
            uba.dba,
            scn,
        );
        v.seq = uba.rec;
        let mut ktudb = vec![0u8; 20];
        e.put_u16(&mut ktudb, 0, 0x88);
        e.put_u16(&mut ktudb, 2, 0x0c86);
        e.put_u16(&mut ktudb, 4, if n == 0 { 0x12 } else { 0x02 });
        e.put_u16(&mut ktudb, 8, xid.usn);
        e.put_u16(&mut ktudb, 10, xid.slot);
        e.put_u32(&mut ktudb, 12, xid.sqn);
        e.put_u16(&mut ktudb, 16, uba.seq);
        put(&mut ktudb, 18, &[uba.rec]);
        let obj = undo_op.data_obj.unwrap_or(0);
        let ktub = if n == 0 {
            self.ktubl(xid, obj, scn)
        } else {
            self.ktubu(xid, n, obj, 0)
        };
        v.fields.push(ktudb);
        v.fields.push(ktub);
        v.fields.extend(undo_op.fields.iter().cloned());
        if self.supplemental_log {
            v.fields.push(self.supplemental_section(undo_op));
        }
        v
    }

    /// The common 24 bytes of a ktub: object, tablespace, undo record type 11.1 (a table row),
    /// slot, record index, flags; `wrap` at 22.
    fn ktub_head(&self, len: usize, xid: Xid, rci: u8, obj: u32, flg: u16, wrap: u16) -> Vec<u8> {
        let e = self.endian;
        let mut f = vec![0u8; len];
        e.put_u32(&mut f, 0, obj);
        e.put_u32(&mut f, 4, obj);
        e.put_u32(&mut f, 8, USERS_TSN);
        put(&mut f, 16, &[11, 1, (xid.slot & 0xFF) as u8, rci]);
        e.put_u16(&mut f, 20, flg);
        e.put_u16(&mut f, 22, wrap);
        f
    }

    /// The 24-byte ktubu of a later undo record of `xid` (as the real log's: wrap = the low
    /// 16 bits of the XID's sequence), with extra flags `flg`.
    fn ktubu(&self, xid: Xid, n: u32, obj: u32, flg: u16) -> Vec<u8> {
        let rci = (n & 0xFF) as u8;
        self.ktub_head(24, xid, rci, obj, flg, (xid.sqn & 0xFFFF) as u16)
    }

    /// The 76-byte ktubl of a transaction's first undo record, laid out as the real 23ai log's
    /// (flag 0x0c08): previous control UBA, previous control and transaction commit SCNs, no
    /// transaction start SCN (all ones), previous brb, logon user.
    fn ktubl(&self, xid: Xid, obj: u32, scn: Scn) -> Vec<u8> {
        let e = self.endian;
        let mut f = self.ktub_head(76, xid, 0, obj, KTUBL_FLAGS, 1);
        let prev = self.uba(xid, 0);
        let block = prev.dba & 0x3F_FFFF;
        e.put_u32(&mut f, 28, block);
        e.put_u16(&mut f, 32, prev.seq);
        put(&mut f, 34, &[prev.rec]);
        put_vector_scn(e, &mut f, 36, Scn(scn.0.saturating_sub(20)));
        put_vector_scn(e, &mut f, 44, Scn(scn.0.saturating_sub(10)));
        super::fill(&mut f, 56..64, 0xFF);
        e.put_u32(&mut f, 64, block);
        e.put_u32(&mut f, 72, LOGON_USER);
        f
    }

    /// The 20-byte supplemental-log section that ends a 5.1 when supplemental logging is on:
    /// type (2 for an insert's undo, 4 for a delete's, 1 for an update's), the row flags
    /// (0x1c), no supplemental columns, and the before/after markers, as in the real log.
    fn supplemental_section(&self, undo_op: &ChangeVector) -> Vec<u8> {
        let e = self.endian;
        // (type, before, after, flags at 17) by the row operation the undo reverses.
        let (typ, before, after, flg) = match (undo_op.layer, undo_op.code) {
            (11, 3) => (2u8, 0u16, 1u16, 0x02u8), // undo of an insert is a delete
            (11, 2) => (4, 1, 0, 0x0a),           // undo of a delete is an insert
            _ => (1, 1, 1, 0x0a),                 // an update
        };
        let mut f = vec![0u8; 20];
        put(&mut f, 0, &[typ, 0x1c]);
        e.put_u16(&mut f, 2, 0);
        e.put_u16(&mut f, 4, 1);
        e.put_u16(&mut f, 6, before);
        e.put_u16(&mut f, 8, after);
        put(&mut f, 17, &[flg]);
        f
    }

    /// The inverse of a row change, as stored in undo and applied on rollback: an insert is
    /// undone by a delete, a delete by an insert of the old image, an update by an update back.
    pub fn inverse(
        &self,
        xid: Xid,
        n: u32,
        op: &ChangeVector,
        row: RowId,
        scn: Scn,
        old: &[Vec<u8>],
    ) -> ChangeVector {
        match (op.layer, op.code) {
            (11, 2) => self.delete(xid, n, row, scn),
            (11, 3) => self.insert(xid, n, row, scn, old),
            _ => self.update(xid, n, row, scn, old),
        }
    }

    /// 5.6: "user undo done" — the undo record of change `n` of `xid` on a row of data object
    /// `data_obj` was applied (rollback). Field 1 is a full ktubu (24 bytes, flag 0x0010),
    /// field 2 the ktuxvoff (offset of the undo record in its block, and flag 0x0001).
    pub fn undo_applied(&self, xid: Xid, n: u32, scn: Scn, data_obj: u32) -> ChangeVector {
        let e = self.endian;
        let uba = self.uba(xid, n);
        let mut v = self.base(
            5,
            6,
            Self::header_class(xid).wrapping_add(1),
            self.undo_afn,
            uba.dba,
            scn,
        );
        let ktubu = self.ktubu(xid, n, data_obj, KTUB_USER_UNDO_DONE);
        let mut ktuxvoff = vec![0u8; 8];
        // Undo records fill their block from the end: record r sits below 0x1f00.
        let off = 0x1f00u16.saturating_sub(u16::from(uba.rec).saturating_mul(0x60));
        e.put_u16(&mut ktuxvoff, 0, off);
        e.put_u16(&mut ktuxvoff, 4, 0x0001);
        v.fields = vec![ktubu, ktuxvoff];
        v
    }

    /// The session-attribute vector of a transaction's begin record, as the real log holds
    /// after 5.2/5.1/11.x: 5.19 (session information: user, OS user, machine, process,
    /// program) when `first` (the session's first transaction), else 5.20 (transaction
    /// audit: the session, flags, version, audit id, login user).
    pub fn session_attributes(&self, session: &Session, first: bool) -> ChangeVector {
        let e = self.endian;
        let mut v = self.base(5, if first { 19 } else { 20 }, 0, 0, 0, Scn(0));
        v.data_obj = Some(0);
        v.seq = 0;
        v.typ = 6;
        let mut serial = vec![0u8; 8];
        if self.compat.major() < 19 {
            e.put_u16(&mut serial, 0, (session.sid & 0xFFFF) as u16);
        }
        e.put_u16(&mut serial, 2, session.serial);
        e.put_u32(&mut serial, 4, session.sid);
        let version = e.u32(u32::from(self.compat.major()) << 24).to_vec();
        let audit = {
            let mut a = vec![0u8; 8];
            e.put_u32(&mut a, 0, (session.audit_sid & 0xFFFF_FFFF) as u32);
            e.put_u32(&mut a, 4, (session.audit_sid >> 32) as u32);
            a
        };
        let user = session.user.as_bytes().to_vec();
        v.fields = if first {
            vec![
                serial,
                user.clone(),                                             // current user
                user,                                                     // login user
                Vec::new(),                                               // client info
                b"oracle".to_vec(),                                       // OS user
                b"redovault-sim".to_vec(),                                // machine
                Vec::new(),                                               // OS terminal
                session.sid.saturating_add(400).to_string().into_bytes(), // OS process id
                b"sqlplus@redovault-sim (TNS V1-V3)".to_vec(),            // program
                Vec::new(),                                               // transaction name
                vec![0x04, 0, 0x01, 0, 0, 0],                             // flags
                version,
                audit,
                Vec::new(),
                Vec::new(),
            ]
        } else {
            vec![
                serial,
                Vec::new(),                // transaction name
                vec![0, 0, 0x01, 0, 0, 0], // flags
                version,
                audit,
                Vec::new(), // client id
                Vec::new(),
                user, // login user
            ]
        };
        v
    }

    /// 5.4 (ktucm): the end of `xid`; `rollback` sets flag 0x04. On 23+ logs the last field is
    /// the commit time `time` in Unix seconds (UTC).
    pub fn commit(&self, xid: Xid, rollback: bool, scn: Scn, time: i64) -> ChangeVector {
        let e = self.endian;
        let mut v = self.base(
            5,
            4,
            Self::header_class(xid),
            self.undo_afn,
            self.undo_header_dba(xid.usn),
            scn,
        );
        let mut ktucm = vec![0u8; 20];
        e.put_u16(&mut ktucm, 0, xid.slot);
        e.put_u32(&mut ktucm, 4, xid.sqn);
        e.put_u32(&mut ktucm, 12, 9);
        put(&mut ktucm, 16, &[0x02 | if rollback { 0x04 } else { 0 }]);
        let mut ktucf = vec![0u8; 16];
        let uba = self.uba(xid, 0);
        self.put_uba(&mut ktucf, 0, uba);
        v.fields.push(ktucm);
        v.fields.push(ktucf);
        if self.compat.has_commit_time() {
            v.fields
                .push(e.u32(time.clamp(0, i64::from(u32::MAX)) as u32).to_vec());
        }
        v
    }

    /// 24.4: the supplemental marker that follows every 5.4 in 23ai.
    pub fn marker_24_4(&self, xid: Xid) -> ChangeVector {
        let e = self.endian;
        let mut v = self.base(24, 4, 0, 0, 0, Scn(0));
        v.data_obj = Some(0);
        v.seq = 0;
        v.typ = 6;
        let mut f1 = vec![0u8; 16];
        e.put_u16(&mut f1, 4, xid.usn);
        e.put_u16(&mut f1, 6, xid.slot);
        e.put_u32(&mut f1, 8, xid.sqn);
        v.fields = vec![f1, vec![0u8; 4], vec![0u8; 6], vec![0u8; 8]];
        v
    }
}
