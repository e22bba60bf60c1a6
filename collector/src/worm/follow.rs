//! Reads a stream's durable chunks from its segment files, in order, from the WORM end on:
//! the source of every piece. It reads behind the writer (only what the caller knows is
//! durable), through segment rotations and restarts (a restart always starts a new segment).
//! Blocking file I/O: run it off the async runtime.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use redovault::crypto::keys::KeyRing;
use redovault::wire::StreamPos;

use crate::segment::{
    RecordReader, ScanError, StoredChunk, parse_segment_file_name, segment_file_name,
};

/// Why the segments cannot give the chunks asked for.
#[derive(Debug, thiserror::Error)]
pub enum FollowError {
    /// A segment cannot be read, or is damaged.
    #[error(transparent)]
    Segment(#[from] ScanError),
    /// The segments do not hold what the stream's durable end and the WORM chain say they
    /// hold.
    #[error("{dir}: {detail}")]
    Missing {
        /// The stream's directory.
        dir: PathBuf,
        /// What is missing.
        detail: String,
    },
}

/// A reader positioned at the next chunk to upload.
#[derive(Debug)]
pub struct Follower {
    dir: PathBuf,
    keys: Arc<KeyRing>,
    segment: u64,
    reader: Option<RecordReader>,
    /// The next chunk, read ahead while seeking.
    peeked: Option<StoredChunk>,
    /// Where the next chunk starts (None before the first).
    pos: Option<StreamPos>,
}

impl Follower {
    /// A follower of the stream in `dir`, starting at WORM's end `from` (None: at the
    /// stream's first stored chunk).
    pub fn new(
        dir: &Path,
        keys: Arc<KeyRing>,
        from: Option<StreamPos>,
    ) -> Result<Follower, FollowError> {
        let mut f = Follower {
            dir: dir.to_path_buf(),
            keys,
            segment: 0,
            reader: None,
            peeked: None,
            pos: None,
        };
        f.seek(from)?;
        Ok(f)
    }

    /// Where the next chunk starts, once known.
    pub fn position(&self) -> Option<StreamPos> {
        self.pos
    }

    fn missing(&self, detail: String) -> FollowError {
        FollowError::Missing {
            dir: self.dir.clone(),
            detail,
        }
    }

    fn segments(&self) -> Result<Vec<u64>, FollowError> {
        let rd = std::fs::read_dir(&self.dir).map_err(|source| ScanError::Io {
            path: self.dir.clone(),
            source,
        })?;
        let mut n: Vec<u64> = rd
            .flatten()
            .filter_map(|e| parse_segment_file_name(&e.file_name().to_string_lossy()))
            .collect();
        n.sort_unstable();
        Ok(n)
    }

    fn open_segment(&mut self, n: u64) -> Result<(), FollowError> {
        self.reader = Some(RecordReader::open(
            &self.dir.join(segment_file_name(n)),
            &self.keys,
        )?);
        self.segment = n;
        Ok(())
    }

    /// Positions the reader at `from`: the last segment whose first chunk starts at or before
    /// it (looked for from the newest, where a resume almost always is), then its chunks up
    /// to the one that starts there.
    fn seek(&mut self, from: Option<StreamPos>) -> Result<(), FollowError> {
        let segs = self.segments()?;
        let Some(from) = from else {
            if let Some(&first) = segs.first() {
                self.open_segment(first)?;
            }
            return Ok(());
        };
        for &n in segs.iter().rev() {
            self.open_segment(n)?;
            let first = self
                .reader
                .as_mut()
                .and_then(|r| r.next_chunk().transpose());
            match first {
                Some(c) => {
                    let c = c?;
                    if c.start <= from {
                        self.peeked = Some(c);
                        return self.skip_to(from);
                    }
                }
                None => continue,
            }
        }
        Err(self.missing(format!("no segment holds position {from}")))
    }

    fn skip_to(&mut self, from: StreamPos) -> Result<(), FollowError> {
        loop {
            let c = match self.peeked.take() {
                Some(c) => c,
                None => match self
                    .reader
                    .as_mut()
                    .map(RecordReader::next_chunk)
                    .transpose()?
                {
                    Some(Some(c)) => c,
                    _ => {
                        // The WORM end is the end of what this segment holds (the next chunk
                        // will come in a later segment).
                        self.pos = Some(from);
                        return Ok(());
                    }
                },
            };
            if c.start == from {
                self.pos = Some(from);
                self.peeked = Some(c);
                return Ok(());
            }
            if c.start > from || c.next_start() > from && c.end() != from {
                return Err(self.missing(format!(
                    "WORM ends at {from}, which is not where a stored chunk starts (chunk at {})",
                    c.start
                )));
            }
        }
    }

    fn next_chunk(&mut self) -> Result<StoredChunk, FollowError> {
        if let Some(c) = self.peeked.take() {
            return Ok(c);
        }
        loop {
            if self.reader.is_none() {
                let first = *self.segments()?.first().ok_or_else(|| {
                    self.missing("no segment yet, although redo is durable".into())
                })?;
                self.open_segment(first)?;
            }
            if let Some(r) = self.reader.as_mut()
                && let Some(c) = r.next_chunk()?
            {
                return Ok(c);
            }
            // This segment ends here: the durable chunk asked for is in the next one (the
            // store closes a segment before it creates its successor).
            let next = self
                .segments()?
                .into_iter()
                .find(|&n| n > self.segment)
                .ok_or_else(|| {
                    self.missing(format!(
                        "segment {} ends before the durable end and no later segment exists",
                        self.segment
                    ))
                })?;
            self.open_segment(next)?;
        }
    }

    /// The chunks from the current position while they start before `upto` (a durable end),
    /// stopping after a chunk that ends its log or once `max_bytes` of redo are read.
    /// On an error nothing is consumed: the next call starts at the same chunk.
    pub fn read_piece(
        &mut self,
        upto: StreamPos,
        max_bytes: u64,
    ) -> Result<Vec<StoredChunk>, FollowError> {
        let start = self.pos;
        let r = self.read_piece_inner(upto, max_bytes);
        if r.is_err() {
            self.reader = None;
            self.peeked = None;
            self.pos = None;
            // A seek that fails now fails again, and is reported, at the next call.
            let _ = self.seek(start);
        }
        r
    }

    fn read_piece_inner(
        &mut self,
        upto: StreamPos,
        max_bytes: u64,
    ) -> Result<Vec<StoredChunk>, FollowError> {
        let mut out: Vec<StoredChunk> = Vec::new();
        let mut bytes = 0u64;
        while self.pos.is_none_or(|p| p < upto) {
            let c = self.next_chunk()?;
            if let Some(p) = self.pos
                && c.start != p
            {
                return Err(self.missing(format!(
                    "expected a chunk at {p}, segment {} holds one at {}",
                    self.segment, c.start
                )));
            }
            if c.next_start() > upto && c.end() > upto {
                // Not durable yet as far as the caller knows: keep it for the next piece.
                self.peeked = Some(c);
                break;
            }
            self.pos = Some(c.next_start());
            bytes += c.data.len() as u64;
            let log_end = c.log_end;
            out.push(c);
            if log_end || bytes >= max_bytes {
                break;
            }
        }
        Ok(out)
    }

    /// Puts chunks read by [`Follower::read_piece`] back (their upload did not happen), so
    /// that the next piece starts with them.
    pub fn unread(&mut self, chunks: Vec<StoredChunk>) -> Result<(), FollowError> {
        let Some(first) = chunks.first().map(|c| c.start) else {
            return Ok(());
        };
        self.reader = None;
        self.peeked = None;
        self.seek(Some(first))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::store::{Store, StoreOptions, stream_dir_name};
    use crate::worm::testkit::{S, at, keys};

    /// A store with chunks of 1 KiB in small segments: 3 logs of 8 KiB, the last one open.
    fn store(dir: &Path) -> Store {
        let opts = StoreOptions {
            segment_size: 64 << 10,
            chunk_size: 1024,
            compress: None,
        };
        let mut st = Store::open_with(dir, keys(), opts, Arc::new(crate::fs::RealFs)).unwrap();
        for seq in 1..=3u32 {
            for k in 0..8u64 {
                let ends = seq < 3 && k == 7;
                st.append(S, at(seq, k * 1024), &[seq as u8; 1024], &[], ends)
                    .unwrap();
                if k % 3 == 0 {
                    st.sync().unwrap();
                }
            }
        }
        st.sync().unwrap();
        st
    }

    #[test]
    fn reads_pieces_in_order_stopping_at_log_ends_and_limits() {
        let dir = tempfile::tempdir().unwrap();
        drop(store(dir.path()));
        let sdir = dir.path().join("streams").join(stream_dir_name(S));
        let mut f = Follower::new(&sdir, Arc::new(keys()), None).unwrap();
        let p = f.read_piece(at(3, 8192), 1 << 20).unwrap();
        assert_eq!(p.len(), 8);
        assert!(p[7].log_end);
        assert_eq!(f.position(), Some(at(2, 0)));
        let p = f.read_piece(at(3, 8192), 3000).unwrap();
        assert_eq!((p.len(), p[0].start), (3, at(2, 0)));
        // Only up to a durable end the caller gives.
        let p = f.read_piece(at(2, 4096), 1 << 20).unwrap();
        assert_eq!(p.last().unwrap().end(), at(2, 4096));
        assert!(f.read_piece(at(2, 4096), 1 << 20).unwrap().is_empty());
        // A restart resumes at WORM's end, through segment boundaries.
        let mut g = Follower::new(&sdir, Arc::new(keys()), Some(at(2, 4096))).unwrap();
        let rest: Vec<StoredChunk> = g.read_piece(at(3, 8192), 1 << 30).unwrap();
        assert_eq!(rest.first().unwrap().start, at(2, 4096));
        let rest3 = g.read_piece(at(3, 8192), 1 << 30).unwrap();
        assert_eq!(rest3.len(), 8);
        assert_eq!(g.position(), Some(at(3, 8192)));
        // Chunks given back are read again.
        g.unread(rest3).unwrap();
        assert_eq!(g.read_piece(at(3, 8192), 1 << 30).unwrap().len(), 8);
    }

    #[test]
    fn a_position_inside_a_chunk_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        drop(store(dir.path()));
        let sdir = dir.path().join("streams").join(stream_dir_name(S));
        let e = Follower::new(&sdir, Arc::new(keys()), Some(at(2, 100))).unwrap_err();
        assert!(
            e.to_string().contains("not where a stored chunk starts"),
            "{e}"
        );
    }
}
