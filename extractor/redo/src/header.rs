//! The two header blocks of a redo file: block 0 (file header: block size, byte order, block
//! count; §5) and block 1 (the redo log header "kcrfh": database, thread, sequence, SCN range,
//! compatibility version; §8).

use std::fmt;

use crate::endian::Endian;
use crate::error::NotRedo;
use crate::position::{DbId, LogSeq, ResetlogsId, Scn, ThreadId};
use crate::time::RedoTime;

/// Bytes of block 0 needed to learn the block size and byte order.
pub const FILE_HEADER_PREFIX: usize = 32;

/// Offset of the block-0 checksum (redo blocks 1.. keep theirs at 14).
pub const FILE_HEADER_CHECKSUM_AT: usize = 16;

/// The format byte (byte 1 of every block) expected for a block size; 1024 accepts both
/// values seen in public readers (0x22 and 0x42, §4).
pub fn format_byte_ok(block_size: u32, byte: u8) -> bool {
    match block_size {
        512 => byte == 0x22,
        1024 => byte == 0x22 || byte == 0x42,
        4096 => byte == 0x82,
        _ => false,
    }
}

/// The format byte a writer should use for a block size (0x42 for 1024, per oracdc).
pub fn format_byte_for(block_size: u32) -> Option<u8> {
    match block_size {
        512 => Some(0x22),
        1024 => Some(0x42),
        4096 => Some(0x82),
        _ => None,
    }
}

/// Block 0: the file header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FileHeader {
    /// Block size in bytes: 512, 1024 or 4096.
    pub block_size: u32,
    /// Byte order of every integer in the file.
    pub endian: Endian,
    /// Number of blocks after block 0 (an archived log is `(block_count + 1) · block_size`
    /// bytes; for an online log it is the size of the file, not what has been written).
    pub block_count: u32,
    /// The format byte (byte 1).
    pub format: u8,
}

impl FileHeader {
    /// Parses the first [`FILE_HEADER_PREFIX`] bytes of block 0.
    pub fn parse(b: &[u8]) -> Result<FileHeader, NotRedo> {
        if b.len() < FILE_HEADER_PREFIX {
            return Err(NotRedo::new(
                0,
                format!("file is {} bytes, shorter than a redo file header", b.len()),
            ));
        }
        let kind = b.first().copied().unwrap_or(0xFF);
        let format = b.get(1).copied().unwrap_or(0);
        if kind != 0 {
            return Err(NotRedo::new(
                0,
                format!("block 0 type byte is 0x{kind:02x}, not 0x00"),
            ));
        }
        let endian = match b.get(28..32) {
            Some([0x7D, 0x7C, 0x7B, 0x7A]) => Endian::Little,
            Some([0x7A, 0x7B, 0x7C, 0x7D]) => Endian::Big,
            other => {
                return Err(NotRedo::new(
                    28,
                    format!(
                        "no redo byte-order magic (found {:02x?})",
                        other.unwrap_or(&[])
                    ),
                ));
            }
        };
        let block_size = endian.u32(b, 20).unwrap_or(0);
        if !matches!(block_size, 512 | 1024 | 4096) {
            return Err(NotRedo::new(
                20,
                format!("block size {block_size} is not 512, 1024 or 4096"),
            ));
        }
        if !format_byte_ok(block_size, format) {
            return Err(NotRedo::new(
                1,
                format!("format byte 0x{format:02x} does not match block size {block_size}"),
            ));
        }
        let block_count = endian.u32(b, 24).unwrap_or(0);
        if block_count == 0 {
            return Err(NotRedo::new(24, "block count is 0"));
        }
        Ok(FileHeader {
            block_size,
            endian,
            block_count,
            format,
        })
    }

    /// Block size as `usize`.
    pub fn bs(&self) -> usize {
        self.block_size as usize
    }
}

/// Oracle's compatibility version (u32 at block 1 offset 20, §9.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct CompatVersion(pub u32);

impl CompatVersion {
    /// 11.2.0.4 (0x0B200400).
    pub const V11_2_0_4: CompatVersion = CompatVersion(0x0B20_0400);
    /// 12.1.0.2 (0x0C100200).
    pub const V12_1_0_2: CompatVersion = CompatVersion(0x0C10_0200);
    /// 19.0.0 (0x13000000).
    pub const V19_0: CompatVersion = CompatVersion(0x1300_0000);
    /// 23.6.0 (0x17060000), the version of the real fixtures.
    pub const V23_6: CompatVersion = CompatVersion(0x1706_0000);

    /// Major version (11, 12, 18, 19, 21, 23, ...).
    pub fn major(self) -> u32 {
        self.0 >> 24
    }

    /// Minor version: a nibble before 18, a byte from 18 on.
    pub fn minor(self) -> u32 {
        if self.major() < 18 {
            (self.0 >> 20) & 0xF
        } else {
            (self.0 >> 16) & 0xFF
        }
    }

    /// True from 12.1 on: record headers carry con_uid and vector headers are 32 bytes.
    pub fn is_12_1_or_later(self) -> bool {
        let major = self.major();
        major > 12 || (major == 12 && self.minor() >= 1)
    }

    /// Length of a change-vector header: 32 from 12.1 on, 24 before.
    pub fn vector_header_len(self) -> usize {
        if self.is_12_1_or_later() { 32 } else { 24 }
    }
}

impl fmt::Display for CompatVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let v = self.0;
        if self.major() < 18 {
            write!(
                f,
                "{}.{}.{}.{}",
                v >> 24,
                (v >> 20) & 0xF,
                (v >> 16) & 0xF,
                (v >> 8) & 0xFF
            )
        } else {
            write!(f, "{}.{}.{}", v >> 24, (v >> 16) & 0xFF, (v >> 8) & 0xFF)
        }
    }
}

/// Whether a log is still being written (CURRENT online log) or complete.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LogState {
    /// Next SCN is set: an archived (or switched-out) log.
    Archived,
    /// Next SCN is "none" and nab is `0xFFFFFFFF`: the CURRENT online log of its thread.
    Current,
}

impl LogState {
    /// `"archived"` or `"current"`.
    pub fn as_str(self) -> &'static str {
        match self {
            LogState::Archived => "archived",
            LogState::Current => "current",
        }
    }
}

/// The "nab" value of a CURRENT online log (next available block unknown).
pub const NAB_UNKNOWN: u32 = u32::MAX;

/// Block 1: the redo log header (kcrfh). Offsets are from the start of block 1.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RedoHeader {
    /// Log sequence (the sequence in block 1's block header).
    pub sequence: LogSeq,
    /// Compatibility version (@20).
    pub compat: CompatVersion,
    /// Database id (@24).
    pub db_id: DbId,
    /// Database name (@28, 8 bytes, NUL-padded).
    pub db_name: String,
    /// Control file sequence (@36).
    pub control_seq: u32,
    /// Size in blocks of the online log the redo was written in (@40).
    pub online_log_blocks: u32,
    /// Block size as recorded in kcrfh (@44).
    pub header_block_size: u32,
    /// Log member file number (@48).
    pub file_number: u16,
    /// Activation id (@52).
    pub activation_id: u32,
    /// Description (@92, 64 bytes), e.g. `T 0001, S 0000000015, SCN 0x...-0x...`.
    pub description: String,
    /// Next available block (@156): the block count including block 0 for a complete log,
    /// [`NAB_UNKNOWN`] for the CURRENT log.
    pub nab: u32,
    /// Resetlogs id (@160; `%r` in archive names).
    pub resetlogs_id: ResetlogsId,
    /// Resetlogs SCN (@164).
    pub resetlogs_scn: Option<Scn>,
    /// Redo thread (@176).
    pub thread: ThreadId,
    /// First (low) SCN (@180).
    pub first_scn: Option<Scn>,
    /// First time (@188).
    pub first_time: RedoTime,
    /// Next (high) SCN (@192); `None` while the log is CURRENT.
    pub next_scn: Option<Scn>,
    /// Next time (@200).
    pub next_time: RedoTime,
    /// Largest LWN in blocks (@268).
    pub largest_lwn: u32,
}

impl RedoHeader {
    /// Parses block 1 (at least 272 bytes; the caller checks its block header separately).
    pub fn parse(b: &[u8], endian: Endian, file_offset: u64) -> Result<RedoHeader, NotRedo> {
        let short = || NotRedo::new(file_offset, "block 1 is too short for a redo log header");
        let u16 = |at: usize| endian.u16(b, at).ok_or_else(short);
        let u32 = |at: usize| endian.u32(b, at).ok_or_else(short);
        let scn = |at: usize| endian.scn8(b, at).ok_or_else(short);
        let text = |from: usize, len: usize| -> Result<String, NotRedo> {
            let raw = b.get(from..from.saturating_add(len)).ok_or_else(short)?;
            let end = raw.iter().position(|&c| c == 0).unwrap_or(raw.len());
            Ok(String::from_utf8_lossy(raw.get(..end).unwrap_or(&[])).into_owned())
        };
        let kind = b.first().copied().unwrap_or(0);
        if kind != 0x01 {
            return Err(NotRedo::new(
                file_offset,
                format!("block 1 type byte is 0x{kind:02x}, not 0x01"),
            ));
        }
        let compat = CompatVersion(u32(20)?);
        if compat.0 == 0 {
            return Err(NotRedo::new(
                file_offset.saturating_add(20),
                "compatibility version is 0 (log header never written)",
            ));
        }
        Ok(RedoHeader {
            sequence: LogSeq(u32(8)?),
            compat,
            db_id: DbId(u32(24)?),
            db_name: text(28, 8)?,
            control_seq: u32(36)?,
            online_log_blocks: u32(40)?,
            header_block_size: u32(44)?,
            file_number: u16(48)?,
            activation_id: u32(52)?,
            description: text(92, 64)?,
            nab: u32(156)?,
            resetlogs_id: ResetlogsId(u32(160)?),
            resetlogs_scn: scn(164)?,
            thread: ThreadId(u16(176)?),
            first_scn: scn(180)?,
            first_time: RedoTime(u32(188)?),
            next_scn: scn(192)?,
            next_time: RedoTime(u32(200)?),
            largest_lwn: u32(268)?,
        })
    }

    /// CURRENT when next SCN is none and nab is `0xFFFFFFFF` (§14.1), else archived.
    pub fn log_state(&self) -> LogState {
        if self.next_scn.is_none() && self.nab == NAB_UNKNOWN {
            LogState::Current
        } else {
            LogState::Archived
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compat_versions() {
        assert_eq!(CompatVersion(0x1706_0000).to_string(), "23.6.0");
        assert_eq!(CompatVersion(0x1314_0000).to_string(), "19.20.0");
        assert_eq!(CompatVersion(0x0B20_0400).to_string(), "11.2.0.4");
        assert!(!CompatVersion::V11_2_0_4.is_12_1_or_later());
        assert!(CompatVersion::V12_1_0_2.is_12_1_or_later());
        assert!(!CompatVersion(0x0C00_0000).is_12_1_or_later());
        assert!(CompatVersion::V19_0.is_12_1_or_later());
        assert_eq!(CompatVersion::V11_2_0_4.vector_header_len(), 24);
        assert_eq!(CompatVersion::V23_6.vector_header_len(), 32);
    }

    #[test]
    fn file_header_rejects_garbage() {
        assert!(FileHeader::parse(&[0u8; 10]).is_err());
        assert!(FileHeader::parse(&[0u8; 64]).is_err());
        let mut b = [0u8; 32];
        b[1] = 0x22;
        b[20..24].copy_from_slice(&512u32.to_le_bytes());
        b[24..28].copy_from_slice(&9u32.to_le_bytes());
        b[28..32].copy_from_slice(&[0x7D, 0x7C, 0x7B, 0x7A]);
        let h = FileHeader::parse(&b).unwrap();
        assert_eq!(
            (h.block_size, h.endian, h.block_count),
            (512, Endian::Little, 9)
        );
        b[1] = 0x82;
        assert!(FileHeader::parse(&b).is_err());
    }
}
