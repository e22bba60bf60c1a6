//! Names on disk: the `FORMAT` line and the stream directories.

use redovault::wire::StreamId;
use redovault_redo::position::{DbId, ResetlogsId, ThreadId};

/// Content of the `FORMAT` file: format 2, a store that may hold write-ahead files
/// (`wal/`), which a collector of format 1 would not replay (it refuses this line).
pub const FORMAT_LINE: &str = "redovault collector store, format 2\n";
/// `FORMAT` of a store written before the write-ahead file: opening it rewrites the line to
/// [`FORMAT_LINE`] (atomically and durably) before anything else is written.
pub const FORMAT_LINE_1: &str = "redovault collector store, format 1\n";

/// Directory name of a stream: `db<dbid>-rl<resetlogs id>-t<thread>`.
pub fn stream_dir_name(s: StreamId) -> String {
    s.to_string()
}

/// The stream a directory name stands for.
pub fn parse_stream_dir_name(name: &str) -> Option<StreamId> {
    let rest = name.strip_prefix("db")?;
    let (db, rest) = rest.split_once("-rl")?;
    let (rl, t) = rest.split_once("-t")?;
    fn digits(s: &str) -> Option<&str> {
        (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())).then_some(s)
    }
    let id = StreamId {
        db_id: DbId(digits(db)?.parse().ok()?),
        resetlogs_id: ResetlogsId(digits(rl)?.parse().ok()?),
        thread: ThreadId(digits(t)?.parse().ok()?),
    };
    (stream_dir_name(id) == name).then_some(id)
}

pub(super) fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}
