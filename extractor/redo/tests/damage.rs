//! Damage cases derived from the real seq-15 archived log: each gives the right reason and
//! position, the commits before the damage are still reported, and nothing panics or hangs.
//! Where the damage is not meant to be a checksum error, the block checksum is set again.

use redovault_redo::{
    BadReason, ErrorKind, LogState, Report, analyze, block::CHECKSUM_AT, checksum, position::Scn,
};

const BS: usize = 512;

mod oracle_real {
    include!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/support/oracle_real.rs"
    ));
}

/// The real seq-15 log, or `None` (the test skips, saying so) without `../shared`.
fn seq15() -> Option<Vec<u8>> {
    oracle_real::free23_log("arch1_15_1224959854.dbf")
}

fn block_mut(f: &mut [u8], n: usize) -> &mut [u8] {
    &mut f[n * BS..(n + 1) * BS]
}

fn reseal(f: &mut [u8], n: usize) {
    checksum::set_checksum(block_mut(f, n), CHECKSUM_AT);
}

fn put_u32(f: &mut [u8], at: usize, v: u32) {
    f[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

fn reasons(r: &Report) -> Vec<(u32, BadReason)> {
    r.bad_blocks.iter().map(|b| (b.block, b.reason)).collect()
}

/// Commits whose record ends before `block`, as in the clean file.
fn clean_commits_before(block: u32) -> Vec<String> {
    let r = analyze(&seq15().expect("present: the caller read it")).unwrap();
    r.commits
        .iter()
        .filter(|c| c.end_block < block)
        .map(|c| c.xid.to_string())
        .collect()
}

fn commits_before(r: &Report, block: u32) -> Vec<String> {
    r.commits
        .iter()
        .filter(|c| c.end_block < block)
        .map(|c| c.xid.to_string())
        .collect()
}

fn last_commit_xid(r: &Report) -> Option<String> {
    r.last_commit.map(|c| c.xid.to_string())
}

#[test]
fn flipped_bit_is_a_checksum_error() {
    let Some(mut f) = seq15() else {
        return;
    };
    f[300 * BS + 200] ^= 0x08;
    let r = analyze(&f).unwrap();
    assert_eq!(reasons(&r), [(300, BadReason::Checksum)]);
    assert!(r.errors.is_empty());
    assert_eq!(commits_before(&r, 300), clean_commits_before(300));
    assert_eq!(r.first_unusable_block, Some(300));
    assert_eq!(last_commit_xid(&r).as_deref(), Some("9.27.598"));
    // The decoder resynchronises: the later commits are still found.
    assert_eq!(r.commits.len(), 20);
}

#[test]
fn flipped_bit_in_a_block_header_is_a_checksum_error_too() {
    for at in [1usize, 4, 8, 12, 14] {
        let Some(mut f) = seq15() else {
            return;
        };
        f[300 * BS + at] ^= 0x01;
        let r = analyze(&f).unwrap();
        assert_eq!(reasons(&r), [(300, BadReason::Checksum)], "byte {at}");
    }
}

#[test]
fn wrong_block_number() {
    let Some(mut f) = seq15() else {
        return;
    };
    put_u32(&mut f, 300 * BS + 4, 301);
    reseal(&mut f, 300);
    let r = analyze(&f).unwrap();
    assert_eq!(reasons(&r), [(300, BadReason::BlockNumber)]);
    assert_eq!(commits_before(&r, 300), clean_commits_before(300));
}

#[test]
fn stale_sequence_in_an_archived_log() {
    let Some(mut f) = seq15() else {
        return;
    };
    put_u32(&mut f, 300 * BS + 8, 14);
    reseal(&mut f, 300);
    let r = analyze(&f).unwrap();
    assert_eq!(r.log_state, LogState::Archived);
    assert_eq!(reasons(&r), [(300, BadReason::Sequence)]);
    assert_eq!(r.blocks.stale, 1);
    assert_eq!(commits_before(&r, 300), clean_commits_before(300));
}

#[test]
fn truncated_mid_block() {
    let Some(f) = seq15() else {
        return;
    };
    let cut = &f[..300 * BS + 100];
    let r = analyze(cut).unwrap();
    assert_eq!(reasons(&r), [(300, BadReason::Truncated)]);
    assert_eq!(
        r.commits
            .iter()
            .map(|c| c.xid.to_string())
            .collect::<Vec<_>>(),
        clean_commits_before(300)
    );
    assert_eq!(last_commit_xid(&r).as_deref(), Some("9.27.598"));
    // Truncated at a block boundary: the first missing block is reported.
    let r = analyze(&f[..400 * BS]).unwrap();
    assert_eq!(reasons(&r), [(400, BadReason::Truncated)]);
    // Truncated inside block 1: still a redo log, with its header.
    let r = analyze(&f[..BS + 300]).unwrap();
    assert_eq!(reasons(&r), [(1, BadReason::Truncated)]);
    assert_eq!(r.header.sequence.0, 15);
}

#[test]
fn zeroed_blocks() {
    let Some(mut f) = seq15() else {
        return;
    };
    f[300 * BS..303 * BS].fill(0);
    let r = analyze(&f).unwrap();
    assert_eq!(
        reasons(&r),
        [
            (300, BadReason::Zero),
            (301, BadReason::Zero),
            (302, BadReason::Zero)
        ]
    );
    assert_eq!(commits_before(&r, 300), clean_commits_before(300));
}

fn bad_record_length(len: u32) {
    let Some(mut f) = seq15() else {
        return;
    };
    // The record holding the commit of 10.12.572: block 582, offset 0x150.
    put_u32(&mut f, 582 * BS + 0x150, len);
    reseal(&mut f, 582);
    let r = analyze(&f).unwrap();
    assert!(r.bad_blocks.is_empty());
    assert_eq!(r.errors.len(), 1, "{:?}", r.errors);
    let e = &r.errors[0];
    assert_eq!(
        (e.kind, e.block, e.offset),
        (ErrorKind::RecordLength, 582, 0x150)
    );
    assert!(e.detail.contains(&len.to_string()), "{}", e.detail);
    // The commit in that record is lost; every commit before it is reported.
    assert_eq!(r.commits.len(), 19);
    assert_eq!(commits_before(&r, 582), clean_commits_before(582));
    assert_eq!(last_commit_xid(&r).as_deref(), Some("1.30.566"));
    assert_eq!(r.first_unusable_block, Some(582));
}

#[test]
fn record_length_16_mib() {
    bad_record_length(16 << 20);
}

#[test]
fn record_length_all_ones() {
    bad_record_length(u32::MAX);
}

#[test]
fn record_length_shorter_than_header() {
    bad_record_length(8);
}

/// Makes the seq-15 archive look like the CURRENT online log: next SCN none, nab FFFFFFFF;
/// blocks from `from` on still carry sequence 14 (the previous cycle).
fn as_current_log(from: usize) -> Option<Vec<u8>> {
    let mut f = seq15()?;
    f[BS + 192..BS + 200].fill(0xFF);
    put_u32(&mut f, BS + 156, u32::MAX);
    reseal(&mut f, 1);
    for n in from..=597 {
        put_u32(&mut f, n * BS + 8, 14);
        reseal(&mut f, n);
    }
    Some(f)
}

#[test]
fn current_log_with_a_stale_tail_is_clean() {
    let Some(f) = as_current_log(590) else {
        return;
    };
    let r = analyze(&f).unwrap();
    assert_eq!(r.log_state, LogState::Current);
    assert_eq!(r.header.next_scn, None);
    assert!(r.is_clean(), "{:?} {:?}", r.bad_blocks, r.errors);
    assert_eq!(r.write_point, Some(590));
    assert_eq!(r.blocks.valid, 589);
    assert_eq!(r.blocks.stale, 8);
    assert_eq!(r.commits.len(), 20);
    assert_eq!(r.last_commit.map(|c| c.scn), Some(Scn(2_267_708)));

    // A write point before the last commits: only the commits before it.
    let r = analyze(&as_current_log(560).expect("read above")).unwrap();
    assert!(r.is_clean());
    assert_eq!(r.write_point, Some(560));
    assert_eq!(
        r.commits
            .iter()
            .map(|c| c.xid.to_string())
            .collect::<Vec<_>>(),
        clean_commits_before(560)
    );
}

#[test]
fn current_log_never_written_tail_is_clean_but_newer_sequence_is_not() {
    let Some(mut f) = as_current_log(598) else {
        return;
    };
    f[590 * BS..].fill(0);
    let r = analyze(&f).unwrap();
    assert!(r.is_clean());
    assert_eq!((r.write_point, r.blocks.zero), (Some(590), 8));

    let Some(mut f) = as_current_log(598) else {
        return;
    };
    put_u32(&mut f, 590 * BS + 8, 16);
    reseal(&mut f, 590);
    let r = analyze(&f).unwrap();
    assert_eq!(reasons(&r), [(590, BadReason::Sequence)]);
    assert_eq!(r.blocks.overwritten, 1);
}

#[test]
fn torn_block_in_a_current_log_is_bad() {
    let Some(mut f) = as_current_log(590) else {
        return;
    };
    f[589 * BS + 100] ^= 1;
    let r = analyze(&f).unwrap();
    assert_eq!(reasons(&r), [(589, BadReason::Checksum)]);
}

#[test]
fn bad_format_byte() {
    let Some(mut f) = seq15() else {
        return;
    };
    f[300 * BS + 1] = 0x82;
    reseal(&mut f, 300);
    let r = analyze(&f).unwrap();
    assert_eq!(reasons(&r), [(300, BadReason::Format)]);
}

#[test]
fn not_redo_inputs() {
    assert!(analyze(b"").is_err());
    assert!(analyze(&[0u8; 4096]).is_err());
    let Some(f) = seq15() else {
        return;
    };
    let mut g = f.clone();
    g[28] = 0;
    let e = analyze(&g).unwrap_err();
    assert_eq!(e.offset, 28);
    assert!(
        analyze(&f[..BS + 100]).is_err(),
        "block 1 too short for its header"
    );
}

#[test]
fn every_single_byte_corruption_of_a_small_log_terminates() {
    // Every byte of the tiny seq-16 log set to 0xFF in turn (and its checksum fixed): decoding
    // ends, never panics, and whatever is reported lies within the file.
    let Some(f) = oracle_real::free23_log("arch1_16_1224959854.dbf") else {
        return;
    };
    for i in 0..f.len() {
        let mut g = f.clone();
        g[i] = 0xFF;
        let blk = i / BS;
        if blk > 0 {
            reseal(&mut g, blk);
        }
        if let Ok(r) = analyze(&g) {
            assert!(r.bad_blocks.iter().all(|b| b.block <= 10));
            assert!(r.records <= 7 + 2);
        }
    }
}
