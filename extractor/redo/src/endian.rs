//! Byte order of a redo file and checked reads of its integers and SCNs.
//!
//! Every multi-byte integer in a redo file (block headers, kcrfh, record and vector headers,
//! field contents) is in the byte order of the platform that wrote it; the magic at block 0
//! offset 28 tells which. All reads here return `None` when the slice is too short, so the
//! parser never indexes out of bounds.

use crate::position::Scn;

/// Byte order of a redo file, decided by the magic at block 0 offset 28.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Endian {
    /// `7D 7C 7B 7A` at block 0 offset 28 (Linux x86-64, Windows, Solaris x86).
    #[default]
    Little,
    /// `7A 7B 7C 7D` at block 0 offset 28 (Solaris SPARC, AIX, HP-UX).
    Big,
}

impl Endian {
    /// Name as printed by `inspect`: `"little"` or `"big"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Endian::Little => "little",
            Endian::Big => "big",
        }
    }

    /// Reads a u16 at `at`, or `None` if `b` is too short.
    #[inline]
    pub fn u16(self, b: &[u8], at: usize) -> Option<u16> {
        let s: [u8; 2] = b.get(at..at.checked_add(2)?)?.try_into().ok()?;
        Some(match self {
            Endian::Little => u16::from_le_bytes(s),
            Endian::Big => u16::from_be_bytes(s),
        })
    }

    /// Reads a u32 at `at`, or `None` if `b` is too short.
    #[inline]
    pub fn u32(self, b: &[u8], at: usize) -> Option<u32> {
        let s: [u8; 4] = b.get(at..at.checked_add(4)?)?.try_into().ok()?;
        Some(match self {
            Endian::Little => u32::from_le_bytes(s),
            Endian::Big => u32::from_be_bytes(s),
        })
    }

    /// Writes a u16 at `at`; does nothing if `b` is too short.
    pub fn put_u16(self, b: &mut [u8], at: usize, v: u16) {
        let bytes = match self {
            Endian::Little => v.to_le_bytes(),
            Endian::Big => v.to_be_bytes(),
        };
        if let Some(dst) = at.checked_add(2).and_then(|end| b.get_mut(at..end)) {
            dst.copy_from_slice(&bytes);
        }
    }

    /// Writes a u32 at `at`; does nothing if `b` is too short.
    pub fn put_u32(self, b: &mut [u8], at: usize, v: u32) {
        let bytes = match self {
            Endian::Little => v.to_le_bytes(),
            Endian::Big => v.to_be_bytes(),
        };
        if let Some(dst) = at.checked_add(4).and_then(|end| b.get_mut(at..end)) {
            dst.copy_from_slice(&bytes);
        }
    }

    /// Reads an 8-byte header SCN at `at` (u32 base, u16 wrap, u16 wrap2; §9.1).
    ///
    /// Outer `None`: `b` is too short. Inner `None`: the SCN is "none" (base `FFFFFFFF` and
    /// wrap `FFFF`), as in the next SCN of a CURRENT online log. When bit 15 of wrap is set the
    /// SCN is the 12c "big SCN" form: `(wrap & 0x7FFF) << 48 | wrap2 << 32 | base`.
    pub fn scn8(self, b: &[u8], at: usize) -> Option<Option<Scn>> {
        let base = self.u32(b, at)?;
        let wrap = self.u16(b, at.checked_add(4)?)?;
        let wrap2 = self.u16(b, at.checked_add(6)?)?;
        Some(scn_from_parts(base, wrap, wrap2))
    }
}

/// Combines the parts of an on-disk SCN (§9.1); `None` is Oracle's "no SCN".
pub fn scn_from_parts(base: u32, wrap: u16, wrap2: u16) -> Option<Scn> {
    if base == u32::MAX && wrap == u16::MAX {
        return None;
    }
    let v = if wrap & 0x8000 != 0 {
        (u64::from(wrap & 0x7FFF) << 48) | (u64::from(wrap2) << 32) | u64::from(base)
    } else {
        (u64::from(wrap) << 32) | u64::from(base)
    };
    Some(Scn(v))
}

/// Rounds `n` up to a multiple of 4 (redo fields and records are 4-byte aligned), saturating.
#[inline]
pub fn align4(n: usize) -> usize {
    n.checked_add(3).map_or(usize::MAX & !3, |v| v & !3)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_both_orders_and_short_slices() {
        let b = [0x01, 0x02, 0x03, 0x04];
        assert_eq!(Endian::Little.u16(&b, 0), Some(0x0201));
        assert_eq!(Endian::Big.u16(&b, 0), Some(0x0102));
        assert_eq!(Endian::Little.u32(&b, 0), Some(0x04030201));
        assert_eq!(Endian::Big.u32(&b, 0), Some(0x01020304));
        assert_eq!(Endian::Little.u32(&b, 1), None);
        assert_eq!(Endian::Little.u16(&b, usize::MAX), None);
    }

    #[test]
    fn scn_forms_from_the_format_notes() {
        // §9.1 examples (little-endian bytes).
        let small = [0xD1, 0x4F, 0x1D, 0x01, 0xAA, 0x67, 0x00, 0x00];
        assert_eq!(
            Endian::Little.scn8(&small, 0),
            Some(Some(Scn(0x67AA_011D_4FD1)))
        );
        let big = [0xD1, 0x4F, 0x1D, 0x01, 0xAA, 0xD6, 0xBB, 0xCC];
        assert_eq!(
            Endian::Little.scn8(&big, 0),
            Some(Some(Scn(0x56AA_CCBB_011D_4FD1)))
        );
        let none = [0xFF; 8];
        assert_eq!(Endian::Little.scn8(&none, 0), Some(None));
        let mut be = [0u8; 8];
        Endian::Big.put_u32(&mut be, 0, 0x011D_4FD1);
        Endian::Big.put_u16(&mut be, 4, 0x67AA);
        assert_eq!(Endian::Big.scn8(&be, 0), Some(Some(Scn(0x67AA_011D_4FD1))));
    }

    #[test]
    fn align() {
        assert_eq!(align4(0), 0);
        assert_eq!(align4(1), 4);
        assert_eq!(align4(4), 4);
        assert_eq!(align4(49), 52);
        assert_eq!(align4(usize::MAX), usize::MAX & !3);
    }
}
