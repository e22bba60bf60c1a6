//! Retention on disk: segments removed oldest first behind a `RETIRED` marker that a crash
//! cannot leave half-done.

use std::io;
use std::path::Path;

use redovault::wire::StreamId;

use super::*;
use crate::segment::{self};

/// What [`Store::retire`] removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Retired {
    /// Segments removed.
    pub segments: u64,
    /// Their bytes.
    pub bytes: u64,
}

/// The file in a stream directory that records the last retired segment.
pub const RETIRED_FILE: &str = "RETIRED";
pub(super) const RETIRED_PREFIX: &str = "retired through segment ";

/// The last retired segment of a stream directory, from its `RETIRED` file.
pub fn read_retired(dir: &Path) -> Result<Option<u64>, StreamStoreError> {
    let path = dir.join(RETIRED_FILE);
    let text = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err("read", &path)(e)),
    };
    let n = std::str::from_utf8(&text)
        .ok()
        .and_then(|t| t.strip_prefix(RETIRED_PREFIX))
        .and_then(|t| t.strip_suffix('\n'))
        .filter(|t| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|t| t.parse::<u64>().ok());
    match n {
        Some(n) => Ok(Some(n)),
        None => Err(StreamStoreError::Corrupt {
            file: path,
            offset: 0,
            reason: format!("not \"{RETIRED_PREFIX}<n>\""),
        }),
    }
}

/// Removes the segment files numbered up to `through` still in `dir`, oldest first, then
/// fsyncs the directory. Returns how many were removed.
pub(super) fn remove_retired(dir: &Path, through: u64) -> Result<u64, StreamStoreError> {
    let mut numbers = Vec::new();
    for e in std::fs::read_dir(dir).map_err(io_err("list", dir))? {
        let e = e.map_err(io_err("list", dir))?;
        if let Some(n) = segment::parse_segment_file_name(&e.file_name().to_string_lossy())
            && n <= through
        {
            numbers.push(n);
        }
    }
    numbers.sort_unstable();
    for n in &numbers {
        let path = dir.join(segment::segment_file_name(*n));
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err("remove", &path)(e)),
        }
    }
    if !numbers.is_empty() {
        redovault::durable::sync_dir(dir).map_err(io_err("fsync directory", dir))?;
    }
    Ok(numbers.len() as u64)
}

impl Store {
    /// Retires the oldest segments of a stream, up to and including segment `through`
    /// (retention, see `retention.rs`). Refused unless `through` is not the stream's last
    /// segment, its last chunk ends its log, and everything retired is durable.
    ///
    /// Crash-safe: the decision is first made durable in the stream's `RETIRED` file
    /// (written atomically: temporary file, fsync, rename, directory fsync); then the
    /// files are removed oldest first and the directory is fsynced. A crash at any point
    /// leaves either the old state or a `RETIRED` file whose leftovers the next open (or
    /// retire) removes before reading the stream.
    pub fn retire(&mut self, stream: StreamId, through: u64) -> Result<Retired, StreamStoreError> {
        self.check_failed()?;
        // No write-ahead frame may name a removed segment.
        if let Err(e) = self.checkpoint() {
            return Err(self.fail(e));
        }
        let refuse =
            |reason: String| StreamStoreError::Options(format!("retire {stream}: {reason}"));
        let Some(s) = self.streams.get_mut(&stream) else {
            return Err(refuse("no such stream".into()));
        };
        let Some(k) = s.segments.iter().position(|g| g.number == through) else {
            return Err(refuse(format!("no segment {through}")));
        };
        if k + 1 >= s.segments.len() {
            return Err(refuse(format!(
                "segment {through} is the last one (being written)"
            )));
        }
        let gone: Vec<StoredSegment> = s.segments[..=k].to_vec();
        if let Some(g) = gone.iter().rev().find(|g| g.last_end.is_some()) {
            let end = g.last_end.unwrap_or_default();
            if s.seq_ends.get(&end.seq) != Some(&end.offset) {
                return Err(refuse(format!(
                    "segment {} ends inside log {} (at {end})",
                    g.number, end.seq
                )));
            }
            if !s.durable_has_data || end > s.durable.end {
                return Err(refuse(format!("segment {} is not durable", g.number)));
            }
        }
        if gone.iter().any(|g| g.len != g.durable_len) {
            return Err(refuse("a segment is not wholly durable".into()));
        }
        let marker = s.dir.join(RETIRED_FILE);
        redovault::durable::write_atomic(
            &marker,
            format!("{RETIRED_PREFIX}{through}\n").as_bytes(),
        )
        .map_err(io_err("write", &marker))?;
        s.segments.drain(..=k);
        // Sequences wholly before the first kept chunk leave the index and the log ends.
        if let Some(first) = s.segments.iter().find_map(|g| g.first) {
            s.index.remove_before(first.seq);
            s.seq_ends = s.seq_ends.split_off(&first.seq);
        }
        let dir = s.dir.clone();
        let removed = remove_retired(&dir, through)?;
        let bytes = gone.iter().map(|g| g.len).sum();
        tracing::info!(
            stream = %stream,
            through,
            segments = gone.len(),
            files_removed = removed,
            bytes,
            "retention: segments removed"
        );
        Ok(Retired {
            segments: gone.len() as u64,
            bytes,
        })
    }
}
