//! Change vectors: the header (24 bytes before 12.1, 32 from 12.1 on), the u16 length array
//! and 4-byte-aligned fields (§11), and builders for the opcodes a transaction writes (§12).
//!
//! The field layouts follow the real 23ai fixture where it shows them (5.2 ktudh, 5.1 ktudb,
//! 11.2 ktbredo + kdo IRP, 5.4 ktucm + ktucf + commit time, 24.4) and the offsets the format
//! notes give for the rest. Integers inside fields are in the log's byte order.

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
}

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
        let mut ktub = vec![0u8; 24];
        let obj = undo_op.data_obj.unwrap_or(0);
        e.put_u32(&mut ktub, 0, obj);
        e.put_u32(&mut ktub, 4, obj);
        e.put_u32(&mut ktub, 8, 5);
        put(
            &mut ktub,
            16,
            &[undo_op.layer, undo_op.code, (xid.slot & 0xFF) as u8],
        );
        e.put_u16(&mut ktub, 20, if n == 0 { 0x0008 } else { 0x0000 });
        v.fields.push(ktudb);
        v.fields.push(ktub);
        v.fields.extend(undo_op.fields.iter().cloned());
        v
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

    /// 5.6: "user undo done" — the undo record of change `n` was applied (rollback).
    pub fn undo_applied(&self, xid: Xid, n: u32, scn: Scn) -> ChangeVector {
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
        let mut f = vec![0u8; 12];
        e.put_u16(&mut f, 0, u16::from(uba.rec));
        e.put_u16(&mut f, 2, 0x0001);
        e.put_u16(&mut f, 4, xid.slot);
        v.fields.push(f);
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
