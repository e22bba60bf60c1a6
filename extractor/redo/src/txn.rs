//! Transactions (§12): begin (5.2 ktudh), commit or rollback (5.4 ktucm), and the XID carried
//! by undo (5.1 ktudb).
//!
//! - XID of 5.2 and 5.4: usn = `(class − 15) / 2` (they change the undo segment header), slot =
//!   u16 @0 and sqn = u32 @4 of the first field.
//! - 5.2 with sqn 0 is a cleanup entry, not a begin.
//! - 5.4: rollback when `ktucm.flg` (byte 16 of the first field) has bit 0x04. The commit SCN is
//!   the SCN of the record header holding the 5.4. When the vector has more than one field and
//!   its last field is 4 bytes long, that field is the commit time in Unix epoch seconds (UTC;
//!   present in 23ai).
//! - 5.1 ktudb: usn u16 @8, slot u16 @10, sqn u32 @12 of the first field.

use crate::error::{DecodeError, ErrorKind};
use crate::position::{Rba, Scn, Xid};
use crate::record::Record;
use crate::time::unix_to_iso8601;
use crate::vector::ChangeVector;

/// `ktucm.flg` bit: the transaction was rolled back.
pub const KTUCM_ROLLBACK: u8 = 0x04;

/// The end of a transaction (5.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Commit {
    /// Transaction id.
    pub xid: Xid,
    /// Commit SCN: the SCN of the record holding the 5.4.
    pub scn: Scn,
    /// True for a rollback.
    pub rollback: bool,
    /// Raw `ktucm.flg`.
    pub flags: u8,
    /// Where the record holding the 5.4 starts.
    pub rba: Rba,
    /// The block that holds the record's last byte.
    pub end_block: u32,
    /// Commit time in Unix epoch seconds (23ai), when present.
    pub unix_time: Option<u32>,
    /// Container id of the vector (12.1+).
    pub con_id: Option<u16>,
}

impl Commit {
    /// Commit time as ISO 8601, when present.
    pub fn time_iso8601(&self) -> Option<String> {
        self.unix_time.map(|t| unix_to_iso8601(u64::from(t)))
    }
}

/// The start of a transaction (5.2 with sqn ≠ 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Begin {
    /// Transaction id.
    pub xid: Xid,
    /// SCN of the record holding the 5.2.
    pub scn: Scn,
    /// Where that record starts.
    pub rba: Rba,
}

/// The undo segment number of an undo segment header class (`15 + 2·usn`).
pub fn usn_of_class(class: u16) -> Option<u16> {
    let d = class.checked_sub(15)?;
    if d % 2 == 0 { Some(d / 2) } else { None }
}

fn err(rec: &Record<'_>, cv: &ChangeVector<'_>, detail: String) -> DecodeError {
    DecodeError::new(
        ErrorKind::Transaction,
        rec.rba.block,
        u32::from(rec.rba.offset),
        format!(
            "{} vector at record offset {}: {detail}",
            cv.opcode, cv.offset
        ),
    )
}

fn slot_sqn(rec: &Record<'_>, cv: &ChangeVector<'_>, need: usize) -> Result<Xid, DecodeError> {
    let usn = usn_of_class(cv.class).ok_or_else(|| {
        err(
            rec,
            cv,
            format!("class {} is not an undo segment header", cv.class),
        )
    })?;
    let f = cv.field(0).unwrap_or(&[]);
    if f.len() < need {
        return Err(err(
            rec,
            cv,
            format!("first field is {} bytes, expected at least {need}", f.len()),
        ));
    }
    let e = cv.endian();
    let slot = e.u16(f, 0).unwrap_or(0);
    let sqn = e.u32(f, 4).unwrap_or(0);
    Ok(Xid { usn, slot, sqn })
}

/// Reads the commit or rollback of a 5.4 vector of `rec`.
pub fn commit_of(rec: &Record<'_>, cv: &ChangeVector<'_>) -> Result<Commit, DecodeError> {
    let xid = slot_sqn(rec, cv, 17)?;
    let flags = cv.field(0).and_then(|f| f.get(16)).copied().unwrap_or(0);
    let n = cv.field_count();
    let unix_time = if n >= 2 {
        let last = n.saturating_sub(1);
        match cv.field(last) {
            Some(f) if f.len() == 4 => cv.endian().u32(f, 0),
            _ => None,
        }
    } else {
        None
    };
    Ok(Commit {
        xid,
        scn: rec.header.scn,
        rollback: flags & KTUCM_ROLLBACK != 0,
        flags,
        rba: rec.rba,
        end_block: rec.end_block,
        unix_time,
        con_id: cv.con_id,
    })
}

/// Reads the begin of a 5.2 vector of `rec`; `Ok(None)` for a cleanup entry (sqn 0).
pub fn begin_of(rec: &Record<'_>, cv: &ChangeVector<'_>) -> Result<Option<Begin>, DecodeError> {
    let xid = slot_sqn(rec, cv, 8)?;
    if xid.sqn == 0 {
        return Ok(None);
    }
    Ok(Some(Begin {
        xid,
        scn: rec.header.scn,
        rba: rec.rba,
    }))
}

/// The full XID in the ktudb of a 5.1 vector, when its first field is long enough.
pub fn undo_xid(cv: &ChangeVector<'_>) -> Option<Xid> {
    let f = cv.field(0)?;
    let e = cv.endian();
    Some(Xid {
        usn: e.u16(f, 8)?,
        slot: e.u16(f, 10)?,
        sqn: e.u32(f, 12)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usn_from_class() {
        assert_eq!(usn_of_class(35), Some(10));
        assert_eq!(usn_of_class(15), Some(0));
        assert_eq!(usn_of_class(16), None);
        assert_eq!(usn_of_class(1), None);
    }
}
