//! What the uploader's tests share: a stream, its key ring, positions.

use redovault::crypto::keys::{KeyId, KeyRing};
use redovault::wire::{StreamId, StreamPos};
use redovault_redo::position::{DbId, ResetlogsId};
use redovault_redo::position::{LogSeq, ThreadId};

/// The stream of every test.
pub const S: StreamId = StreamId {
    db_id: DbId(1),
    resetlogs_id: ResetlogsId(2),
    thread: ThreadId(1),
};

/// The at-rest key ring of every test store.
pub fn keys() -> KeyRing {
    let id = KeyId::parse("k1").unwrap();
    KeyRing::from_keys(id.clone(), [(id, [5; 32])]).unwrap()
}

/// Position `offset` of log `seq`.
pub fn at(seq: u32, offset: u64) -> StreamPos {
    StreamPos {
        seq: LogSeq(seq),
        offset,
    }
}
