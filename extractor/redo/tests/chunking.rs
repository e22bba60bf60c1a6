//! Property: any split of a file into chunks fed to the decoder yields the same events
//! (records with their bytes and vectors, block states, errors) as feeding the whole file.

use proptest::prelude::*;
use redovault_redo::{Decoder, Event, block::CHECKSUM_AT, checksum};

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

/// An owned, comparable form of one event.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Ev {
    File(u32, u32),
    Header(u32),
    Block(u32, String, Option<String>),
    Record {
        rba: String,
        end_block: u32,
        bytes: Vec<u8>,
        vectors: Vec<String>,
    },
    Error(String),
    End,
}

fn own(ev: &Event<'_>) -> Ev {
    match ev {
        Event::FileHeader(h) => Ev::File(h.block_size, h.block_count),
        Event::RedoHeader(h) => Ev::Header(h.sequence.0),
        Event::Block(b) => Ev::Block(b.block, b.state.to_string(), b.bad.map(|r| r.to_string())),
        Event::Record(r) => Ev::Record {
            rba: r.rba.to_string(),
            end_block: r.end_block,
            bytes: r.bytes.to_vec(),
            vectors: r
                .vectors()
                .map(|v| match v {
                    Ok(v) => format!("{}@{}+{}", v.opcode, v.offset, v.len),
                    Err(e) => format!("error@{}", e.offset),
                })
                .collect(),
        },
        Event::Error(e) => Ev::Error(e.to_string()),
        Event::End => Ev::End,
    }
}

fn decode(data: &[u8], cuts: &[usize]) -> Vec<Ev> {
    let mut d = Decoder::new();
    let mut out = Vec::new();
    let mut at = 0;
    let drain = |d: &mut Decoder, out: &mut Vec<Ev>| {
        while let Some(ev) = d.poll().expect("a redo log") {
            out.push(own(&ev));
        }
    };
    for &c in cuts {
        let end = (at + c).min(data.len());
        d.feed(&data[at..end]);
        drain(&mut d, &mut out);
        at = end;
    }
    d.feed(&data[at..]);
    drain(&mut d, &mut out);
    d.finish();
    drain(&mut d, &mut out);
    out
}

fn records(evs: &[Ev]) -> usize {
    evs.iter()
        .filter(|e| matches!(e, Ev::Record { .. }))
        .count()
}

/// The seq-15 log with a flipped bit in block 300 and a bad record length in block 582, so
/// that resynchronisation is covered too.
fn damaged() -> Option<Vec<u8>> {
    let mut f = fixture("arch1_15_1224959854.dbf")?;
    f[300 * 512 + 200] ^= 0x08;
    f[582 * 512 + 0x150..][..4].copy_from_slice(&(16u32 << 20).to_le_bytes());
    checksum::set_checksum(&mut f[582 * 512..583 * 512], CHECKSUM_AT);
    Some(f)
}

#[test]
fn whole_file_baseline() {
    let Some(f) = fixture("arch1_15_1224959854.dbf") else {
        return;
    };
    let whole = decode(&f, &[]);
    assert_eq!(records(&whole), 1154);
    assert_eq!(whole.last(), Some(&Ev::End));
    // One byte at a time, the slowest split.
    assert_eq!(decode(&f, &vec![1; f.len()]), whole);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn any_split_gives_the_same_events(cuts in prop::collection::vec(1usize..3000, 0..200)) {
        let Some(f) = fixture("arch1_15_1224959854.dbf") else {
            return Ok(());
        };
        prop_assert_eq!(decode(&f, &cuts), decode(&f, &[]));
    }

    #[test]
    fn any_split_of_a_damaged_file_gives_the_same_events(
        cuts in prop::collection::vec(1usize..5000, 0..100)
    ) {
        let Some(f) = damaged() else {
            return Ok(());
        };
        let whole = decode(&f, &[]);
        prop_assert!(whole.iter().any(|e| matches!(e, Ev::Error(_))));
        prop_assert_eq!(decode(&f, &cuts), whole);
    }

    #[test]
    fn any_split_of_the_small_log(cuts in prop::collection::vec(1usize..700, 0..40)) {
        let Some(f) = fixture("arch1_16_1224959854.dbf") else {
            return Ok(());
        };
        let whole = decode(&f, &[]);
        prop_assert_eq!(records(&whole), 7);
        prop_assert_eq!(decode(&f, &cuts), whole);
    }
}
