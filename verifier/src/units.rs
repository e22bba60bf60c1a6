//! Redo compared in 512-byte units: a digest per unit, the streamed copy of a sequence and the
//! pieces in WORM as unit digests, and where two copies first differ. 512 bytes divides every
//! redo block size, so units line up with blocks in every copy.

use redovault::wire::StreamId;
use redovault_redo::position::{DbId, ResetlogsId};

use sha2::{Digest, Sha256};

/// Size of a compared unit.
pub const UNIT: usize = 512;

/// Digest of one unit: the first 8 bytes of its SHA-256 (a collision by chance is 2^-64 per
/// unit; a deliberate one needs a second preimage of SHA-256 truncated to 64 bits, far beyond
/// an attacker who must also keep the log's checksums valid).
pub fn unit_digest(unit: &[u8]) -> u64 {
    let d = Sha256::digest(unit);
    let mut b = [0u8; 8];
    b.copy_from_slice(&d[..8]);
    u64::from_le_bytes(b)
}

/// Which log: (db id, resetlogs id, thread, sequence).
pub type LogKey = (DbId, ResetlogsId, u16, u32);

/// The streamed copy of one sequence, as unit digests from offset 0.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SeqDigests {
    /// One digest per 512-byte unit, in order.
    pub units: Vec<u64>,
}

/// Where the archived and the streamed copy of a log differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Difference {
    /// First differing block (in the log's block size).
    pub block: u64,
    /// Byte offset of the first differing unit.
    pub offset: u64,
}

impl SeqDigests {
    /// Compares the archived log's unit digests with these, from block 2 on, over the range
    /// both hold. Returns the first difference, if any, and the number of units compared.
    pub fn compare(&self, archived: &[u64], block_size: u32) -> (Option<Difference>, u64) {
        compare_units(&self.units, 0, archived, block_size, false)
    }
}

/// The redo of one sequence held by one WORM piece (opened with the recovery key), as unit
/// digests from `first_unit` on: compared with the archived log of the same sequence like the
/// collector's copy ([`SeqDigests`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PieceUnits {
    /// The piece's stream.
    pub stream: StreamId,
    /// Its index in the stream's chain.
    pub index: u64,
    /// Its object key.
    pub key: String,
    pub seq: u32,
    /// Unit number (offset / 512) of the first digest.
    pub first_unit: usize,
    /// One digest per whole 512-byte unit.
    pub units: Vec<u64>,
}

impl PieceUnits {
    /// The unit digests of the chunks of `chunks` in sequence `seq` (contiguous, as a piece
    /// holds them); None when they do not start on a unit boundary or do not hold whole
    /// units (never so for redo shipped as whole blocks).
    pub fn of_chunks(
        stream: StreamId,
        index: u64,
        key: &str,
        seq: u32,
        chunks: &[redovault_collector::segment::StoredChunk],
    ) -> Option<PieceUnits> {
        let mut first: Option<usize> = None;
        let mut units = Vec::new();
        for c in chunks.iter().filter(|c| c.start.seq.0 == seq) {
            let at = c.start.offset;
            if at % UNIT as u64 != 0 || c.data.len() % UNIT != 0 {
                return None;
            }
            let u = usize::try_from(at / UNIT as u64).ok()?;
            match first {
                None => first = Some(u),
                Some(f) if f + units.len() != u => return None,
                Some(_) => {}
            }
            units.extend(c.data.chunks(UNIT).map(unit_digest));
        }
        Some(PieceUnits {
            stream,
            index,
            key: key.to_string(),
            seq,
            first_unit: first?,
            units,
        })
    }

    /// Compares with the archived log's unit digests from block 2 on. Redo the piece holds
    /// past the archived log's end is a difference too. Returns the first difference, if
    /// any, and the number of units compared.
    pub fn compare(&self, archived: &[u64], block_size: u32) -> (Option<Difference>, u64) {
        compare_units(&self.units, self.first_unit, archived, block_size, true)
    }
}

/// Compares `ours` (unit digests from unit `first` on) with `archived` (from unit 0), from
/// block 2 on; with `past_end`, a unit of ours beyond the archived log is a difference.
fn compare_units(
    ours: &[u64],
    first: usize,
    archived: &[u64],
    block_size: u32,
    past_end: bool,
) -> (Option<Difference>, u64) {
    let bs = u64::from(block_size.max(UNIT as u32));
    let skip = usize::try_from(2 * bs / UNIT as u64).unwrap_or(usize::MAX);
    let at = |u: usize| {
        let offset = u as u64 * UNIT as u64;
        Difference {
            block: offset / bs,
            offset,
        }
    };
    let mut compared = 0u64;
    for (i, d) in ours.iter().enumerate() {
        let u = first + i;
        if u < skip {
            continue;
        }
        match archived.get(u) {
            Some(theirs) => {
                compared += 1;
                if d != theirs {
                    return (Some(at(u)), compared);
                }
            }
            None if past_end => return (Some(at(u)), compared),
            None => break,
        }
    }
    (None, compared)
}
