use redovault_redo::position::{DbId, ResetlogsId};
use std::time::Duration;

use bytes::Bytes;
use redovault::wire::{CommitMark, StreamId, StreamPos};
use redovault_redo::{LogSeq, ThreadId};

use super::io::torn_backoff;
use super::*;

#[test]
fn torn_rereads_back_off_from_100us_to_the_limit() {
    let max = Duration::from_millis(5);
    let d: Vec<u128> = (1..=8).map(|n| torn_backoff(n, max).as_micros()).collect();
    assert_eq!(d, [100, 200, 400, 800, 1600, 3200, 5000, 5000]);
    assert_eq!(torn_backoff(10_000, max), max);
    assert_eq!(torn_backoff(1, Duration::ZERO), Duration::ZERO);
}

#[test]
fn chunk_end_and_last_commit() {
    let stream = StreamId {
        db_id: DbId(1),
        resetlogs_id: ResetlogsId(2),
        thread: ThreadId(1),
    };
    let pos = StreamPos {
        seq: LogSeq(3),
        offset: 1024,
    };
    let mark = CommitMark {
        xid: redovault_redo::Xid::default(),
        scn: redovault_redo::Scn(9),
        time: None,
        end: StreamPos {
            seq: LogSeq(3),
            offset: 2048,
        },
    };
    let c = TailChunk {
        stream,
        pos,
        bytes: Bytes::from(vec![0u8; 1536]),
        commits: vec![mark],
        log_end: None,
    };
    assert_eq!(c.end().offset, 2560);
    assert_eq!(c.last_commit(), Some(&mark));
}
