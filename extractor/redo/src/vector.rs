//! Change vectors (§11): the 24- or 32-byte vector header, the u16 length array and the
//! 4-byte-aligned fields that follow it.

use crate::endian::{Endian, align4};
use crate::opcode::Opcode;
use crate::position::Scn;

/// How to read the vectors of a record: byte order and vector header length (24 before 12.1,
/// 32 from 12.1 on).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Layout {
    /// Byte order of the file.
    pub endian: Endian,
    /// Change-vector header length (24 or 32).
    pub vector_header_len: usize,
    /// Whether record headers carry con_uid (12.1+).
    pub con_uid: bool,
}

/// One change vector inside a record. Borrows the record bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChangeVector<'a> {
    /// Opcode (`layer.code`).
    pub opcode: Opcode,
    /// Block class (1 = data block; `15 + 2·usn` = undo segment header of `usn`).
    pub class: u16,
    /// Absolute file number.
    pub afn: u16,
    /// Data block address of the changed block.
    pub dba: u32,
    /// SCN of the block (`None` when "none").
    pub scn: Option<Scn>,
    /// SEQ byte.
    pub seq: u8,
    /// TYP byte.
    pub typ: u8,
    /// Data object id: `(u16 @6 << 16) | u16 @22`.
    pub data_object: u32,
    /// Container id (12.1+).
    pub con_id: Option<u16>,
    /// Vector flags (12.1+).
    pub flags: Option<u16>,
    /// Offset of the vector within its record.
    pub offset: usize,
    /// Total length of the vector (header, length array and padded fields).
    pub len: usize,
    lengths: &'a [u8],
    body: &'a [u8],
    endian: Endian,
}

impl<'a> ChangeVector<'a> {
    /// Number of fields (entries in the length array).
    pub fn field_count(&self) -> usize {
        self.lengths.len() / 2
    }

    /// Length of field `i` (0-based; Oracle's dumps number fields from 1).
    pub fn field_len(&self, i: usize) -> Option<usize> {
        self.endian
            .u16(self.lengths, i.checked_mul(2)?)
            .map(usize::from)
    }

    /// The bytes of field `i` (0-based), without padding.
    pub fn field(&self, i: usize) -> Option<&'a [u8]> {
        let mut at = 0usize;
        for j in 0..i {
            at = at.checked_add(align4(self.field_len(j)?))?;
        }
        let len = self.field_len(i)?;
        self.body.get(at..at.checked_add(len)?)
    }

    /// All fields in order.
    pub fn fields(&self) -> FieldIter<'a> {
        FieldIter {
            lengths: self.lengths,
            body: self.body,
            endian: self.endian,
            i: 0,
            at: 0,
        }
    }

    /// Byte order of the file (fields are in it too).
    pub fn endian(&self) -> Endian {
        self.endian
    }
}

/// Iterator over the fields of a change vector.
#[derive(Debug, Clone)]
pub struct FieldIter<'a> {
    lengths: &'a [u8],
    body: &'a [u8],
    endian: Endian,
    i: usize,
    at: usize,
}

impl<'a> Iterator for FieldIter<'a> {
    type Item = &'a [u8];
    fn next(&mut self) -> Option<&'a [u8]> {
        let len = usize::from(self.endian.u16(self.lengths, self.i.checked_mul(2)?)?);
        let field = self.body.get(self.at..self.at.checked_add(len)?)?;
        self.i = self.i.checked_add(1)?;
        self.at = self.at.checked_add(align4(len))?;
        Some(field)
    }
}

/// A vector that does not fit in its record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VectorError {
    /// Offset of the bad vector within the record.
    pub offset: usize,
    /// What is wrong.
    pub detail: String,
}

/// Iterator over the change vectors of a record (see [`crate::Record::vectors`]).
#[derive(Debug, Clone)]
pub struct VectorIter<'a> {
    bytes: &'a [u8],
    at: usize,
    layout: Layout,
    done: bool,
}

impl<'a> VectorIter<'a> {
    pub(crate) fn new(bytes: &'a [u8], start: usize, layout: Layout) -> Self {
        VectorIter {
            bytes,
            at: start,
            layout,
            done: false,
        }
    }

    fn parse_one(&self) -> Result<ChangeVector<'a>, VectorError> {
        let b = self.bytes;
        let at = self.at;
        let e = self.layout.endian;
        let hl = self.layout.vector_header_len;
        let err = |detail: String| VectorError { offset: at, detail };
        let h = at
            .checked_add(hl)
            .and_then(|end| b.get(at..end))
            .ok_or_else(|| {
                err(format!(
                    "{} bytes left, less than a {hl}-byte vector header",
                    b.len().saturating_sub(at)
                ))
            })?;
        let u16h = |o: usize| e.u16(h, o).unwrap_or(0);
        let layer = h.first().copied().unwrap_or(0);
        let code = h.get(1).copied().unwrap_or(0);
        // Length array: u16 N (its own size included), then (N - 2) / 2 field lengths.
        let arr_at = at.saturating_add(hl);
        let n = e
            .u16(b, arr_at)
            .map(usize::from)
            .ok_or_else(|| err("length array runs past the record".to_string()))?;
        if n < 2 {
            return Err(err(format!("length array size {n} is less than 2")));
        }
        let count = n.saturating_sub(2) / 2;
        let lengths = arr_at
            .checked_add(2)
            .and_then(|s| Some((s, s.checked_add(count.checked_mul(2)?)?)))
            .and_then(|(s, end)| b.get(s..end))
            .ok_or_else(|| err(format!("length array of {n} bytes runs past the record")))?;
        let body_at = arr_at.saturating_add(align4(n));
        let mut body_len = 0usize;
        for pair in lengths.chunks_exact(2) {
            let l = e.u16(pair, 0).map(usize::from).unwrap_or(0);
            body_len = body_len.saturating_add(align4(l));
        }
        let end = body_at.saturating_add(body_len);
        let body = b.get(body_at..end).ok_or_else(|| {
            err(format!(
                "{}.{} vector of {} bytes runs past the record end at {}",
                layer,
                code,
                end.saturating_sub(at),
                b.len()
            ))
        })?;
        let wide = hl >= 32;
        Ok(ChangeVector {
            opcode: Opcode::new(layer, code),
            class: u16h(2),
            afn: u16h(4),
            dba: e.u32(h, 8).unwrap_or(0),
            scn: e.scn8(h, 12).flatten(),
            seq: h.get(20).copied().unwrap_or(0),
            typ: h.get(21).copied().unwrap_or(0),
            data_object: (u32::from(u16h(6)) << 16) | u32::from(u16h(22)),
            con_id: if wide { Some(u16h(24)) } else { None },
            flags: if wide { Some(u16h(28)) } else { None },
            offset: at,
            len: end.saturating_sub(at),
            lengths,
            body,
            endian: e,
        })
    }
}

impl<'a> Iterator for VectorIter<'a> {
    type Item = Result<ChangeVector<'a>, VectorError>;
    fn next(&mut self) -> Option<Self::Item> {
        if self.done || self.at >= self.bytes.len() {
            return None;
        }
        match self.parse_one() {
            Ok(v) => {
                // Every vector is at least a header long, so this always moves forward.
                self.at = self.at.saturating_add(v.len.max(1));
                Some(Ok(v))
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout(hl: usize) -> Layout {
        Layout {
            endian: Endian::Little,
            vector_header_len: hl,
            con_uid: hl == 32,
        }
    }

    #[test]
    fn worked_11g_example_sizes() {
        // zhoubihui's worked example (§11.2): N = 10, fields 72, 49, 8, 1 → 24 + 12 + 136.
        let mut v = vec![0u8; 24];
        v[0] = 5;
        v[1] = 2;
        for x in [10u16, 72, 49, 8, 1, 0] {
            v.extend_from_slice(&x.to_le_bytes());
        }
        v.extend(std::iter::repeat_n(0xAB, 136));
        let mut it = VectorIter::new(&v, 0, layout(24));
        let cv = it.next().unwrap().unwrap();
        assert_eq!(cv.len, 172);
        assert_eq!(cv.opcode, Opcode::TxnBegin);
        assert_eq!(cv.field_count(), 4);
        let lens: Vec<usize> = cv.fields().map(<[u8]>::len).collect();
        assert_eq!(lens, vec![72, 49, 8, 1]);
        assert_eq!(cv.field(3).map(<[u8]>::len), Some(1));
        assert!(cv.field(4).is_none());
        assert!(it.next().is_none());
        // One byte short: an error, then the end.
        let mut it = VectorIter::new(&v[..171], 0, layout(24));
        assert!(it.next().unwrap().is_err());
        assert!(it.next().is_none());
    }
}
