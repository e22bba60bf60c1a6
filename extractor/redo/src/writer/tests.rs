//! Unit tests of the writer: every variant is re-walked by an independent reader written from
//! the format notes (checksums, block numbers, first-record offsets, record chains, vectors).

use super::*;
use crate::checksum::block_checksum_ok;
use crate::position::Xid;

mod oracle_real {
    include!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/support/oracle_real.rs"
    ));
}

fn rd16(e: Endian, b: &[u8], at: usize) -> u16 {
    let a = [b[at], b[at + 1]];
    match e {
        Endian::Little => u16::from_le_bytes(a),
        Endian::Big => u16::from_be_bytes(a),
    }
}

fn rd32(e: Endian, b: &[u8], at: usize) -> u32 {
    let a = [b[at], b[at + 1], b[at + 2], b[at + 3]];
    match e {
        Endian::Little => u32::from_le_bytes(a),
        Endian::Big => u32::from_be_bytes(a),
    }
}

fn rd_scn8(e: Endian, b: &[u8], at: usize) -> Option<u64> {
    let base = u64::from(rd32(e, b, at));
    let wrap = rd16(e, b, at + 4);
    let wrap2 = u64::from(rd16(e, b, at + 6));
    if base == 0xFFFF_FFFF && wrap == 0xFFFF {
        return None;
    }
    if wrap & 0x8000 != 0 {
        Some((u64::from(wrap & 0x7FFF) << 48) | (wrap2 << 32) | base)
    } else {
        Some((u64::from(wrap) << 32) | base)
    }
}

fn config(bs: BlockSize, endian: Endian, compat: Compat) -> LogConfig {
    LogConfig {
        block_size: bs,
        endian,
        compat,
        scn_form: if compat >= Compat::V19_0 {
            ScnForm::Big
        } else {
            ScnForm::Small
        },
        db_id: DbId(1_497_016_494),
        db_name: "FREE".into(),
        thread: ThreadId(1),
        sequence: LogSeq(16),
        resetlogs_id: ResetlogsId(1_224_959_854),
        resetlogs_scn: Scn(2_061_806),
        activation_id: 0x593A_4BAE,
        first_scn: Scn(2_267_717),
        first_time: 1_772_847_880,
        log_blocks: 400,
        con_uid: 1_385_559_638,
        file_number: 1,
        control_seq: 1216,
    }
}

/// A commit as the independent walker finds it.
#[derive(Debug, PartialEq, Eq)]
struct Found {
    xid: Xid,
    scn: u64,
    rollback: bool,
    time: Option<u32>,
    block: u32,
    offset: u16,
}

/// Walks the redo of a whole file: checks every block header and checksum, follows records
/// from block 2 offset 16 and decodes vectors. Returns (records, LWNs, commits, opcodes).
fn walk(
    file: &[u8],
    e: Endian,
    compat: Compat,
    nab: u32,
) -> (usize, usize, Vec<Found>, Vec<(u8, u8)>) {
    let bs = rd32(e, file, 20) as usize;
    assert!(block_checksum_ok(&file[..bs]), "block 0 checksum");
    let seq = rd32(e, &file[bs..], 8);
    for b in 1..nab as usize {
        let blk = &file[b * bs..(b + 1) * bs];
        assert_eq!(blk[0], 1, "block {b} type");
        assert_eq!(rd32(e, blk, 4), b as u32, "block {b} number");
        assert_eq!(rd32(e, blk, 8), seq, "block {b} sequence");
        assert!(block_checksum_ok(blk), "block {b} checksum");
        assert_ne!(rd16(e, blk, 12) & 0x8000, 0, "block {b} flag bit");
    }
    let vh = if compat.has_containers() { 32 } else { 24 };
    let (mut records, mut lwns) = (0, 0);
    let mut found = Vec::new();
    let mut ops = Vec::new();
    let mut blk = 2usize;
    let mut off = 16usize;
    let mut lwn_end = 0usize;
    while blk < nab as usize {
        if bs - off < MIN_RECORD_ROOM || rd32(e, &file[blk * bs..], off) == 0 {
            // No record here: the rest of the block must be zero padding.
            assert!(
                file[blk * bs + off..(blk + 1) * bs].iter().all(|&x| x == 0),
                "tail of block {blk}"
            );
            blk += 1;
            off = 16;
            continue;
        }
        let start = (blk, off);
        let len = rd32(e, &file[blk * bs..], off) as usize;
        assert_eq!(len % 4, 0);
        // Gather the record, skipping block headers.
        let mut rec = Vec::with_capacity(len);
        let (mut b, mut o) = (blk, off);
        while rec.len() < len {
            let n = (bs - o).min(len - rec.len());
            rec.extend_from_slice(&file[b * bs + o..b * bs + o + n]);
            o += n;
            if o == bs {
                b += 1;
                o = 16;
            }
        }
        // A record continued into later blocks: those it crosses say 0; the block it ends in
        // names where it ends (0 with fewer than 20 bytes left), as real Oracle logs do.
        let (end_b, end_o) = if o == 16 && b > blk {
            (b - 1, bs)
        } else {
            (b, o)
        };
        if end_b > blk {
            for mid in blk + 1..end_b {
                assert_eq!(rd16(e, &file[mid * bs..], 12) & 0x7FFF, 0, "block {mid}");
            }
            let want = if bs - end_o < 20 { 0 } else { end_o as u16 };
            assert_eq!(
                rd16(e, &file[end_b * bs..], 12) & 0x7FFF,
                want,
                "first-record offset of block {end_b}, where a continued record ends"
            );
        }
        let vld = rec[4];
        if off == 16 && vld & 0x04 != 0 {
            lwns += 1;
            let lwn_len = rd32(e, &rec, 28) as usize;
            assert_eq!(rd32(e, &rec, 32) as usize, lwn_len);
            assert!(lwn_len >= 1);
            lwn_end = blk + lwn_len;
        } else {
            assert_eq!(vld & 0x04, 0, "LWN header away from offset 16");
        }
        assert!(
            b < lwn_end || (b == lwn_end && o == 16),
            "record crosses its LWN end"
        );
        records += 1;
        // The block's first-record offset names the first record that starts in it.
        let blk_first = rd16(e, &file[start.0 * bs..], 12) & 0x7FFF;
        assert!(
            blk_first != 0 && blk_first as usize <= start.1,
            "first offset of block {}",
            start.0
        );
        let scn = (u64::from(rd16(e, &rec, 6)) << 32) | u64::from(rd32(e, &rec, 8));
        if compat.has_containers() {
            assert_eq!(rd32(e, &rec, 16), 1_385_559_638);
        } else {
            assert_eq!(rd32(e, &rec, 16), 0);
        }
        let mut p = if vld & 0x04 != 0 { 68 } else { 24 };
        while p < len {
            let v = &rec[p..];
            let (layer, code) = (v[0], v[1]);
            ops.push((layer, code));
            let n = rd16(e, v, vh) as usize;
            assert!(n >= 2 && n.is_multiple_of(2));
            let nf = (n - 2) / 2;
            let lens: Vec<usize> = (0..nf)
                .map(|i| rd16(e, v, vh + 2 + 2 * i) as usize)
                .collect();
            let mut q = vh + ((n + 2) & !3);
            let fields: Vec<&[u8]> = lens
                .iter()
                .map(|&l| {
                    let f = &v[q..q + l];
                    q += (l + 3) & !3;
                    f
                })
                .collect();
            if (layer, code) == (5, 4) {
                let class = rd16(e, v, 2);
                let xid = Xid {
                    usn: (class - 15) / 2,
                    slot: rd16(e, fields[0], 0),
                    sqn: rd32(e, fields[0], 4),
                };
                let time = if fields.len() >= 3 && fields.last().map(|f| f.len()) == Some(4) {
                    Some(rd32(e, fields[fields.len() - 1], 0))
                } else {
                    None
                };
                found.push(Found {
                    xid,
                    scn,
                    rollback: fields[0][16] & 0x04 != 0,
                    time,
                    block: start.0 as u32,
                    offset: start.1 as u16,
                });
            }
            p += q;
        }
        assert_eq!(p, len, "vectors end exactly at the record length");
        blk = b;
        off = o;
    }
    (records, lwns, found, ops)
}

/// Builds a log of one variant with a few transactions and returns the file bytes, the
/// expected commits and the blocks handed out per LWN.
fn build(bs: BlockSize, e: Endian, compat: Compat) -> (Vec<u8>, Vec<Found>, LogWriter) {
    let cfg = config(bs, e, compat);
    let mut w = LogWriter::new(cfg.clone()).expect("config");
    let vb = VectorBuilder {
        endian: e,
        compat,
        con_id: 3,
        con_uid: cfg.con_uid,
        undo_afn: 23,
        supplemental_log: true,
    };
    let total = (cfg.log_blocks as usize + 1) * bs.bytes();
    let mut file = vec![0u8; total];
    file[..bs.bytes()].copy_from_slice(&w.file_header());
    file[bs.bytes()..2 * bs.bytes()].copy_from_slice(&w.current_header());
    let mut scn = cfg.first_scn.0;
    let mut expected = Vec::new();
    for t in 0..40u32 {
        let time = cfg.first_time + i64::from(t);
        let xid = Xid {
            usn: (t % 10) as u16 + 1,
            slot: (t % 7) as u16,
            sqn: 500 + t,
        };
        let row = RowId {
            data_obj: 72_726 + t % 3,
            afn: 24,
            block: 14 + t,
            slot: (t % 5) as u16,
        };
        let ins = vb.insert(
            xid,
            0,
            row,
            Scn(scn),
            &[vec![0xc1, 0x02], b"hello world".to_vec()],
        );
        let undo = vb.undo(xid, 0, Scn(scn), &vb.delete(xid, 0, row, Scn(scn)));
        scn += 1;
        let mut records = vec![Record {
            scn: Scn(scn),
            subscn: 1,
            vectors: vec![vb.begin(xid, Scn(scn - 1)), undo, ins],
        }];
        // Big rows to make records cross blocks.
        for k in 1..(t % 4) {
            scn += 1;
            let upd = vb.update(xid, k, row, Scn(scn), &[vec![0x41; 300 * k as usize]]);
            let undo = vb.undo(
                xid,
                k,
                Scn(scn),
                &vb.update(xid, k, row, Scn(scn), &[vec![0x42; 10]]),
            );
            records.push(Record {
                scn: Scn(scn),
                subscn: 1,
                vectors: vec![undo, upd],
            });
        }
        scn += 1;
        let rollback = t % 5 == 4;
        let mut vectors = vec![vb.commit(xid, rollback, Scn(scn - 1), time)];
        if compat.has_commit_time() {
            vectors.push(vb.marker_24_4(xid));
        }
        records.push(Record {
            scn: Scn(scn),
            subscn: 1,
            vectors,
        });
        let lwn = Lwn {
            scn: Scn(scn - 2),
            time,
            records,
        };
        let before = w.next_block();
        let out = w.append_lwn(&lwn).expect("fits");
        assert_eq!(out.first_block, before);
        assert_eq!(out.bytes.len() % bs.bytes(), 0);
        assert_eq!(w.next_block(), before + out.block_count(bs));
        let at = out.first_block as usize * bs.bytes();
        file[at..at + out.bytes.len()].copy_from_slice(&out.bytes);
        let last = out.records.last().expect("records");
        expected.push(Found {
            xid,
            scn,
            rollback,
            time: compat.has_commit_time().then_some(time as u32),
            block: last.block,
            offset: last.offset,
        });
    }
    (file, expected, w)
}

#[test]
fn every_variant_rewalks() {
    for bs in [BlockSize::B512, BlockSize::B1024, BlockSize::B4096] {
        for e in [Endian::Little, Endian::Big] {
            for compat in [Compat::V11_2_0_4, Compat::V19_0, Compat::V23_6] {
                let (mut file, expected, w) = build(bs, e, compat);
                let nab = w.next_block();
                // While current: next SCN none, nab FFFFFFFF.
                let b1 = &file[bs.bytes()..2 * bs.bytes()];
                assert_eq!(rd32(e, b1, 156), NAB_CURRENT);
                assert_eq!(rd_scn8(e, b1, 192), None);
                let (records, lwns, found, ops) = walk(&file, e, compat, nab);
                assert_eq!(found, expected, "{bs:?} {e:?} {compat:?}");
                assert_eq!(lwns, 40);
                assert!(records > 40 * 2);
                assert!(ops.contains(&(5, 2)) && ops.contains(&(5, 1)) && ops.contains(&(11, 2)));
                assert!(ops.contains(&(11, 5)));
                assert_eq!(ops.contains(&(24, 4)), compat.has_commit_time());
                // Switch: next SCN, time and nab.
                let hdr = w
                    .switched_header(Scn(9_999_999), 1_772_847_999)
                    .expect("switch");
                assert!(block_checksum_ok(&hdr));
                assert_eq!(rd32(e, &hdr, 156), nab);
                assert_eq!(rd_scn8(e, &hdr, 192), Some(9_999_999));
                assert_eq!(rd_scn8(e, &hdr, 180), Some(2_267_717));
                assert_eq!(unix_from_redo_time(rd32(e, &hdr, 200)), Some(1_772_847_999));
                file[bs.bytes()..2 * bs.bytes()].copy_from_slice(&hdr);
                let arch0 = w.archive_file_header();
                assert_eq!(rd32(e, &arch0, 24), nab - 1);
                assert!(block_checksum_ok(&arch0));
                let (_, _, again, _) = walk(&file, e, compat, nab);
                assert_eq!(again, expected);
                let mut archive = file[..nab as usize * bs.bytes()].to_vec();
                archive[..bs.bytes()].copy_from_slice(&arch0);
                let r = crate::analyze(&archive).expect("redo");
                assert!(r.is_clean(), "{bs:?} {e:?} {compat:?}");
                let o = &r.first_record_offsets;
                assert!(o.is_consistent(), "{bs:?} {e:?} {compat:?}: {o:?}");
                assert_eq!(o.checked, u64::from(nab) - 2, "every redo block checked");
            }
        }
    }
}

#[test]
fn headers_match_the_real_23ai_layout() {
    // The seq 16 fixture: compare the fields we set with the real block 0 and block 1.
    let Some(real) = oracle_real::free23_log("arch1_16_1224959854.dbf") else {
        return;
    };
    let mut cfg = config(BlockSize::B512, Endian::Little, Compat::V23_6);
    cfg.db_id = DbId(rd32(Endian::Little, &real[512..], 24));
    let first_time = unix_from_redo_time(rd32(Endian::Little, &real[512..], 188)).expect("time");
    cfg.first_time = first_time;
    cfg.log_blocks = 20480;
    let mut w = LogWriter::new(cfg).expect("config");
    let vb = VectorBuilder {
        endian: Endian::Little,
        compat: Compat::V23_6,
        con_id: 3,
        con_uid: 1,
        undo_afn: 23,
        supplemental_log: true,
    };
    let xid = Xid {
        usn: 10,
        slot: 12,
        sqn: 572,
    };
    for _ in 0..8 {
        let lwn = Lwn {
            scn: Scn(2_267_718),
            time: first_time,
            records: vec![Record {
                scn: Scn(2_267_720),
                subscn: 1,
                vectors: vec![vb.commit(xid, false, Scn(1), 0)],
            }],
        };
        w.append_lwn(&lwn).expect("fits");
    }
    assert_eq!(w.next_block(), 10);
    let b0 = w.archive_file_header();
    assert_eq!(&b0[..], &real[..512], "block 0");
    let b1 = w
        .switched_header(Scn(2_267_723), first_time)
        .expect("switch");
    let real1 = &real[512..1024];
    for (name, range) in [
        ("block header w/o checksum", 0..14),
        ("version, db id, name", 16..36),
        ("log size, block size", 40..48),
        ("file type, activation", 50..56),
        ("description", 92..156),
        ("nab, resetlogs", 156..172),
        ("thread", 176..178),
        ("first/next SCN and times", 180..204),
        ("zero blocks, format id", 206..208),
    ] {
        assert_eq!(&b1[range.clone()], &real1[range.clone()], "{name}");
    }
}

#[test]
fn records_never_start_in_a_short_tail() {
    let bs = BlockSize::B512;
    let cfg = config(bs, Endian::Little, Compat::V19_0);
    let mut w = LogWriter::new(cfg).expect("config");
    let vb = VectorBuilder {
        endian: Endian::Little,
        compat: Compat::V19_0,
        con_id: 3,
        con_uid: 1,
        undo_afn: 23,
        supplemental_log: true,
    };
    let xid = Xid {
        usn: 1,
        slot: 1,
        sqn: 1,
    };
    // Vary the padding so that records end at every possible tail length.
    for pad in 0..130usize {
        let v = vb.update(
            xid,
            1,
            RowId {
                data_obj: 7,
                afn: 4,
                block: 9,
                slot: 1,
            },
            Scn(5),
            &[vec![1; pad * 4]],
        );
        let lwn = Lwn {
            scn: Scn(100),
            time: 1_772_847_880,
            records: vec![
                Record {
                    scn: Scn(100),
                    subscn: 1,
                    vectors: vec![v.clone()],
                },
                Record {
                    scn: Scn(101),
                    subscn: 1,
                    vectors: vec![v.clone()],
                },
                Record {
                    scn: Scn(102),
                    subscn: 1,
                    vectors: vec![v],
                },
            ],
        };
        let out = w.append_lwn(&lwn).expect("fits");
        for r in &out.records {
            assert!(
                r.offset >= 16 && 512 - usize::from(r.offset) >= MIN_RECORD_ROOM,
                "{r}"
            );
        }
        assert_eq!(out.records[0].offset, 16);
        if w.remaining_blocks() < 12 {
            break;
        }
    }
}

#[test]
fn full_log_and_bad_inputs_are_errors() {
    let mut cfg = config(BlockSize::B512, Endian::Little, Compat::V19_0);
    cfg.log_blocks = 4;
    let mut w = LogWriter::new(cfg.clone()).expect("config");
    let vb = VectorBuilder {
        endian: Endian::Little,
        compat: Compat::V19_0,
        con_id: 3,
        con_uid: 1,
        undo_afn: 23,
        supplemental_log: true,
    };
    let xid = Xid {
        usn: 1,
        slot: 1,
        sqn: 1,
    };
    let big = vb.update(
        xid,
        1,
        RowId {
            data_obj: 7,
            afn: 4,
            block: 9,
            slot: 1,
        },
        Scn(5),
        &[vec![1; 2000]],
    );
    let lwn = Lwn {
        scn: Scn(100),
        time: 1_772_847_880,
        records: vec![Record {
            scn: Scn(100),
            subscn: 1,
            vectors: vec![big],
        }],
    };
    assert_eq!(w.lwn_blocks(&lwn), Ok(5));
    assert_eq!(
        w.append_lwn(&lwn),
        Err(WriterError::LogFull {
            needed: 5,
            available: 3
        })
    );
    assert_eq!(w.next_block(), 2);
    assert_eq!(
        w.append_lwn(&Lwn {
            records: vec![],
            ..lwn.clone()
        }),
        Err(WriterError::EmptyLwn)
    );
    let huge_scn = Lwn {
        records: vec![Record {
            scn: Scn(1 << 48),
            subscn: 1,
            vectors: vec![vb.begin(xid, Scn(1))],
        }],
        ..lwn.clone()
    };
    assert!(matches!(
        w.append_lwn(&huge_scn),
        Err(WriterError::ScnTooLarge(..))
    ));
    let old = Lwn {
        time: 0,
        records: vec![Record {
            scn: Scn(1),
            subscn: 1,
            vectors: vec![vb.begin(xid, Scn(1))],
        }],
        ..lwn
    };
    assert_eq!(w.append_lwn(&old), Err(WriterError::TimeOutOfRange(0)));
    assert_eq!(
        w.switched_header(Scn(1), 1_772_847_880),
        Err(WriterError::NextScnNotAfterFirst {
            next: 1,
            first: 2_267_717
        })
    );
    cfg.db_name = "TOOLONGNAME".into();
    assert!(matches!(
        LogWriter::new(cfg.clone()),
        Err(WriterError::DbName(_))
    ));
    cfg.db_name = "X".into();
    cfg.log_blocks = u32::MAX;
    assert_eq!(
        LogWriter::new(cfg.clone()).err(),
        Some(WriterError::LogTooLarge(u32::MAX))
    );
    cfg.log_blocks = 2;
    assert_eq!(LogWriter::new(cfg).err(), Some(WriterError::LogTooSmall(2)));
}

#[test]
fn big_scn_form_in_headers() {
    let mut cfg = config(BlockSize::B512, Endian::Big, Compat::V19_0);
    cfg.first_scn = Scn((1 << 50) + 7);
    let w = LogWriter::new(cfg.clone()).expect("config");
    let h = w.current_header();
    assert_eq!(rd_scn8(Endian::Big, &h, 180), Some((1 << 50) + 7));
    assert_ne!(
        h[184] & 0x80,
        0,
        "big-SCN bit is bit 7 of byte 4 in big-endian"
    );
    cfg.scn_form = ScnForm::Small;
    assert!(matches!(
        LogWriter::new(cfg),
        Err(WriterError::ScnTooLarge(..))
    ));
}

#[test]
fn compat_parse_and_rowid() {
    assert_eq!(Compat::parse("11.2.0.4"), Some(Compat::V11_2_0_4));
    assert_eq!(Compat::parse("12.1.0.2"), Some(Compat::V12_1_0_2));
    assert_eq!(Compat::parse("19.0"), Some(Compat::V19_0));
    assert_eq!(Compat::parse("23.6.0"), Some(Compat::V23_6));
    assert_eq!(Compat::parse("19.20"), Some(Compat(0x1314_0000)));
    assert_eq!(Compat::parse("x"), None);
    assert_eq!(Compat::parse("11.16"), None);
    assert!(!Compat::V11_2_0_4.has_containers() && Compat::V12_1_0_2.has_containers());
    let r = RowId {
        data_obj: 72_726,
        afn: 24,
        block: 14,
        slot: 0,
    };
    assert_eq!(r.dba(), 0x0600_000e);
    assert_eq!(r.to_oracle_string(), "AAARwWAAYAAAAAOAAA");
}

/// The vectors of one record of the real seq-15 log at (block, offset), as owned fields.
fn real_vectors(real: &[u8], block: u32, offset: u16) -> Vec<(String, Vec<Vec<u8>>)> {
    let mut d = crate::Decoder::new();
    d.feed(real);
    d.finish();
    while let Some(ev) = d.poll().expect("redo") {
        let crate::Event::Record(r) = ev else {
            continue;
        };
        if (r.rba.block, r.rba.offset) == (block, offset) {
            return r
                .vectors()
                .map(|v| {
                    let v = v.expect("vector");
                    let fields = v.fields().map(<[u8]>::to_vec).collect();
                    (v.opcode.to_string(), fields)
                })
                .collect();
        }
    }
    panic!("no record at {block}.{offset:#x}");
}

/// Asserts `ours == real` byte for byte outside `skip` (the database's own values: SCNs, undo
/// addresses, object ids of other tables).
fn same_layout(what: &str, ours: &[u8], real: &[u8], skip: &[(usize, usize)]) {
    assert_eq!(ours.len(), real.len(), "{what}: length");
    for (i, (a, b)) in ours.iter().zip(real).enumerate() {
        if !skip.iter().any(|&(from, to)| (from..to).contains(&i)) {
            assert_eq!(a, b, "{what}: byte {i}\nours {ours:02x?}\nreal {real:02x?}");
        }
    }
}

#[test]
fn transaction_vectors_match_the_real_23ai_log() {
    let Some(real) = oracle_real::free23_log("arch1_15_1224959854.dbf") else {
        return;
    };
    let vb = VectorBuilder {
        endian: Endian::Little,
        compat: Compat::V23_6,
        con_id: 3,
        con_uid: 1_385_559_638,
        undo_afn: 23,
        supplemental_log: true,
    };
    // The TEST_CDC insert of 10.12.572 (block 580 offset 0x168): 5.2, 5.1 (begin), 11.2, 5.20.
    let xid = Xid {
        usn: 10,
        slot: 12,
        sqn: 572,
    };
    let row = RowId {
        data_obj: 72_726,
        afn: 24,
        block: 14,
        slot: 0,
    };
    let scn = Scn(2_267_706);
    let undo = vb.undo(xid, 0, scn, &vb.delete(xid, 0, row, scn));
    let rec = real_vectors(&real, 580, 0x168);
    let ops: Vec<&str> = rec.iter().map(|(o, _)| o.as_str()).collect();
    assert_eq!(ops, ["5.2", "5.1", "11.2", "5.20"]);
    let real_undo = &rec[1].1;
    // ktubl: 76 bytes, flag 0x0c08; the previous control UBA and commit SCNs and the previous
    // brb are the database's history.
    same_layout(
        "ktubl",
        &undo.fields[1],
        &real_undo[1],
        &[(28, 36), (36, 52), (64, 68)],
    );
    // The supplemental-log section of an insert's undo: the same 20 bytes.
    assert_eq!(undo.fields.len(), real_undo.len(), "5.1 field count");
    same_layout("supplemental log", &undo.fields[4], &real_undo[4], &[]);
    // ktudb: the same but for the undo block sequence and record (the database's).
    same_layout("ktudb", &undo.fields[0], &real_undo[0], &[(16, 20)]);

    // 5.20 of the same record: field sizes, flags and version; the session is ours.
    let session = Session {
        sid: 56,
        serial: 52_353,
        user: "OLR_TEST".into(),
        audit_sid: 30_014,
    };
    let audit = vb.session_attributes(&session, false);
    let real_audit = &rec[3].1;
    let sizes = |f: &[Vec<u8>]| f.iter().map(Vec::len).collect::<Vec<_>>();
    assert_eq!(sizes(&audit.fields), sizes(real_audit), "5.20 field sizes");
    for (i, f) in audit.fields.iter().enumerate() {
        same_layout(&format!("5.20 field {}", i + 1), f, &real_audit[i], &[]);
    }

    // 5.19 (the same session's first transaction, block 7 offset 16): 15 fields; session,
    // login user, flags, version and audit id the same (the rest names the real host).
    let rec = real_vectors(&real, 7, 16);
    assert_eq!(rec[3].0, "5.19");
    let info = vb.session_attributes(&session, true);
    let real_info = &rec[3].1;
    assert_eq!(info.fields.len(), real_info.len(), "5.19 field count");
    for i in [0, 2, 3, 6, 9, 10, 11, 12, 13, 14] {
        assert_eq!(info.fields[i], real_info[i], "5.19 field {}", i + 1);
    }

    // ktubu of a later undo record (block 15 offset 0x1e0, a dictionary transaction 9.27.598,
    // its second change): record index 1, no flags, wrap = the XID's sequence.
    let rec = real_vectors(&real, 15, 0x1e0);
    assert_eq!(rec[0].0, "5.1");
    let dict = Xid {
        usn: 9,
        slot: 27,
        sqn: 598,
    };
    let later = vb.undo(dict, 1, scn, &vb.delete(dict, 1, row, scn));
    // Objects 14/8 in tablespace 0 there; the simulated table is in USERS (6).
    same_layout("ktubu", &later.fields[1], &rec[0].1[1], &[(0, 12)]);
    // 5.6 carries a full ktubu (24 bytes, "user undo done") and the 8-byte ktuxvoff.
    let applied = vb.undo_applied(dict, 1, scn, 72_726);
    assert_eq!(applied.fields.len(), 2);
    assert_eq!(applied.fields[0].len(), 24);
    assert_eq!(rd16(Endian::Little, &applied.fields[0], 20), 0x0010);
    same_layout(
        "5.6 ktubu",
        &applied.fields[0],
        &later.fields[1],
        &[(20, 22)],
    );
    assert_eq!(applied.fields[1].len(), 8);
}
