//! Valid archived redo logs for the benchmarks, built from the real Oracle 23ai log in the
//! shared fixtures: its record blocks repeated, renumbered, stamped with the log's sequence and
//! re-sealed with their checksums, so that the watcher's validation does its full work.

#![allow(dead_code)] // each bench uses a part

use std::io::Write as _;
use std::path::{Path, PathBuf};

use redovault_redo::block::CHECKSUM_AT;
use redovault_redo::checksum;
use redovault_redo::header::FILE_HEADER_CHECKSUM_AT;

mod oracle_real {
    include!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/support/oracle_real.rs"
    ));
}

const BS: usize = 512;

/// Writes a valid archived log of at least `bytes` bytes with sequence `seq` into `dir`
/// (streamed: never held in memory).
pub fn make_log(dir: &Path, seq: u32, bytes: u64) -> PathBuf {
    make_log_from(&template(), dir, seq, bytes)
}

/// The real log the benchmark logs are made of (read once by a caller that makes many).
pub fn template() -> Vec<u8> {
    oracle_real::free23_log("arch1_15_1224959854.dbf")
        .expect("this benchmark needs the real Oracle logs (../shared/fixtures/oracle-real)")
}

/// [`make_log`] from a [`template`] already read.
pub fn make_log_from(f: &[u8], dir: &Path, seq: u32, bytes: u64) -> PathBuf {
    let body = &f[2 * BS..598 * BS];
    let copies = bytes.div_ceil(body.len() as u64) as usize;
    let blocks = 2 + copies * 596;
    let path = dir.join(format!("arch1_{seq}_1224959854.dbf"));
    if std::fs::metadata(&path).is_ok_and(|m| m.len() == (blocks * BS) as u64) {
        return path;
    }
    let mut out = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(&path).unwrap());
    let mut head = f[..2 * BS].to_vec();
    head[24..28].copy_from_slice(&((blocks - 1) as u32).to_le_bytes());
    checksum::set_checksum(&mut head[..BS], FILE_HEADER_CHECKSUM_AT);
    head[BS + 8..BS + 12].copy_from_slice(&seq.to_le_bytes());
    head[BS + 156..BS + 160].copy_from_slice(&(blocks as u32).to_le_bytes());
    checksum::set_checksum(&mut head[BS..2 * BS], CHECKSUM_AT);
    out.write_all(&head).unwrap();
    let mut b = [0u8; BS];
    let mut n = 2u32;
    for _ in 0..copies {
        for src in body.chunks_exact(BS) {
            b.copy_from_slice(src);
            b[4..8].copy_from_slice(&n.to_le_bytes());
            b[8..12].copy_from_slice(&seq.to_le_bytes());
            checksum::set_checksum(&mut b, CHECKSUM_AT);
            out.write_all(&b).unwrap();
            n += 1;
        }
    }
    out.flush().unwrap();
    path
}
