//! The two real Oracle 23ai archived logs: every number checked against the ground truth in
//! `../shared/fixtures/oracle-real/SOURCES.md` (LogMiner and OpenLogReplicator reference files).

use redovault_redo::position::{DbId, ResetlogsId};
use redovault_redo::{
    Decoder, Event, LogState, Opcode, Rba, Scn, Xid, analyze, checksum, position::LogSeq, txn,
};

mod oracle_real {
    include!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/support/oracle_real.rs"
    ));
}

/// A real log, or `None` (the test skips, saying so) when `../shared` does not have them.
fn fixture(name: &str) -> Option<Vec<u8>> {
    oracle_real::free23_log(name)
}

const SEQ15: &str = "arch1_15_1224959854.dbf";
const SEQ16: &str = "arch1_16_1224959854.dbf";

#[test]
fn seq15_header_blocks_records_commits() {
    let Some(bytes) = fixture(SEQ15) else { return };
    let r = analyze(&bytes).unwrap();
    assert_eq!(r.file.block_size, 512);
    assert_eq!(r.file.block_count, 597);
    assert_eq!(r.header.db_id, DbId(1_497_016_494));
    assert_eq!(r.header.db_name, "FREE");
    assert_eq!(r.header.sequence, LogSeq(15));
    assert_eq!(r.header.thread.0, 1);
    assert_eq!(r.header.resetlogs_id, ResetlogsId(1_224_959_854));
    assert_eq!(r.header.resetlogs_scn, Some(Scn(2_061_806)));
    assert_eq!(r.header.first_scn, Some(Scn(2_266_630)));
    assert_eq!(r.header.next_scn, Some(Scn(2_267_717)));
    // The database's local time (no zone); this database runs in UTC, like its commit times.
    assert_eq!(r.header.first_time.to_iso8601(), "2026-03-07T01:44:38");
    assert_eq!(r.header.next_time.to_iso8601(), "2026-03-07T01:44:40");
    assert_eq!(r.header.compat.to_string(), "23.6.0");
    assert_eq!(r.header.activation_id, 0x593A_4BAE);
    assert_eq!(r.header.nab, 598);
    assert_eq!(r.header.largest_lwn, 13);
    assert_eq!(r.log_state, LogState::Archived);
    assert_eq!(r.blocks.valid, 597);
    assert!(r.is_clean(), "{:?} {:?}", r.bad_blocks, r.errors);
    assert_eq!(r.records, 1154);
    // Every redo block (2..=597), the 6 where only a continued record ends included.
    assert!(
        r.first_record_offsets.is_consistent(),
        "{:?}",
        r.first_record_offsets
    );
    assert_eq!(r.first_record_offsets.checked, 596);
    assert_eq!(r.lwns, 524);
    assert_eq!(r.commits.len(), 20);
    assert_eq!(r.begins.len(), 20, "21 5.2 vectors, one with sqn 0");

    let c = r
        .commits
        .iter()
        .find(|c| c.xid.to_string() == "10.12.572")
        .unwrap();
    assert_eq!(c.scn, Scn(2_267_708));
    assert!(!c.rollback);
    assert_eq!(c.flags, 0x12);
    assert_eq!(
        c.rba,
        Rba {
            seq: LogSeq(15),
            block: 582,
            offset: 0x150
        }
    );
    assert_eq!(c.end_block, 583);
    assert_eq!(c.unix_time, Some(1_772_847_880));
    assert_eq!(c.time_iso8601().as_deref(), Some("2026-03-07T01:44:40Z"));
    assert_eq!(c.con_id, Some(3));

    let xid = Xid {
        usn: 10,
        slot: 12,
        sqn: 572,
    };
    let b = r.begins.iter().find(|b| b.xid == xid).unwrap();
    assert_eq!(
        b.rba,
        Rba {
            seq: LogSeq(15),
            block: 580,
            offset: 0x168
        }
    );
    assert_eq!(b.scn, Scn(2_267_707));
    let ins = r.row_changes.iter().find(|w| w.xid == Some(xid)).unwrap();
    assert_eq!(ins.opcode, Opcode::Row(2));
    assert_eq!(ins.data_object, 72_726);
    assert_eq!(ins.rba, b.rba);
    assert_eq!(
        r.last_commit,
        r.commits.iter().rev().find(|c| !c.rollback).copied()
    );
}

#[test]
fn seq16_tiny_log() {
    let Some(bytes) = fixture(SEQ16) else { return };
    let r = analyze(&bytes).unwrap();
    assert_eq!(r.file.block_count, 9);
    assert_eq!(r.blocks.valid, 9);
    assert!(r.is_clean());
    assert_eq!(r.records, 7);
    assert_eq!(r.commits.len(), 1);
    // Blocks 2..=9: each first-record offset as the rule says (block 9 only ends a record).
    assert!(r.first_record_offsets.is_consistent());
    assert_eq!(r.first_record_offsets.checked, 8);
    assert_eq!(r.header.first_scn, Some(Scn(2_267_717)));
    assert_eq!(r.header.next_scn, Some(Scn(2_267_723)));
}

/// The insert record (block 580 offset 0x168) holds 5.2, 5.1, 11.2 (object 72726), 5.20, and
/// the commit record (block 582 offset 0x150, crossing into 583) holds 5.4 + 24.4.
#[test]
fn vectors_of_the_test_transaction() {
    let Some(bytes) = fixture(SEQ15) else { return };
    let mut d = Decoder::new();
    d.feed(&bytes);
    d.finish();
    let mut seen = 0;
    while let Some(ev) = d.poll().unwrap() {
        let Event::Record(r) = ev else { continue };
        let ops: Vec<String> = r.vectors().map(|v| v.unwrap().opcode.to_string()).collect();
        if r.rba.block == 580 && r.rba.offset == 0x168 {
            assert_eq!(r.header.len, 512);
            assert_eq!(r.header.scn, Scn(2_267_707));
            assert_eq!(ops, ["5.2", "5.1", "11.2", "5.20"]);
            let v: Vec<_> = r.vectors().map(Result::unwrap).collect();
            assert_eq!(v[2].data_object, 72_726);
            assert_eq!(v[2].afn, 24);
            assert_eq!(v[2].dba, 0x0600_000e);
            let b = txn::begin_of(&r, &v[0]).unwrap().unwrap();
            assert_eq!(b.xid.to_string(), "10.12.572");
            assert_eq!(txn::undo_xid(&v[1]).unwrap().to_string(), "10.12.572");
            seen += 1;
        }
        if r.rba.block == 582 && r.rba.offset == 0x150 {
            assert_eq!(r.header.len, 212);
            assert_eq!(r.header.con_uid, Some(1_385_559_638));
            assert_eq!(ops, ["5.4", "24.4"]);
            let v = r.vectors().next().unwrap().unwrap();
            assert_eq!((v.class, v.afn, v.dba), (35, 23, 0xa0));
            assert_eq!(v.scn, Some(Scn(2_267_707)));
            assert_eq!(v.con_id, Some(3));
            let lens: Vec<usize> = v.fields().map(<[u8]>::len).collect();
            assert_eq!(lens, [20, 16, 24, 4]);
            seen += 1;
        }
    }
    assert_eq!(seen, 2);
}

/// Every first record of a block starts where the block header says (@12), and every
/// vector walk ends exactly at the record length.
#[test]
fn record_starts_agree_with_block_headers() {
    let Some(bytes) = fixture(SEQ15) else { return };
    let mut d = Decoder::new();
    d.feed(&bytes);
    d.finish();
    let mut first_in_block = std::collections::BTreeMap::new();
    while let Some(ev) = d.poll().unwrap() {
        if let Event::Record(r) = ev {
            first_in_block.entry(r.rba.block).or_insert(r.rba.offset);
            let total: usize = r.vectors().map(|v| v.unwrap().len).sum();
            assert_eq!(
                total + r.header.header_len(),
                r.header.len as usize,
                "{}",
                r.rba
            );
        }
    }
    for blk in 2..=597u32 {
        let b = &bytes[blk as usize * 512..][..512];
        assert!(checksum::block_checksum_ok(b));
        let first = u16::from_le_bytes([b[12], b[13]]) & 0x7FFF;
        match first_in_block.get(&blk) {
            Some(&off) => assert_eq!(off, first, "block {blk}"),
            // No record starts here: the header names no offset, or the end of the last
            // record, where the length word is 0 (the rest of the LWN is unused).
            None => assert!(
                first == 0 || b[first as usize..][..4] == [0; 4],
                "block {blk}: header names offset {first}"
            ),
        }
    }
}
