//! The collector's segments, audited read-only: every chunk authenticated (AES-256-GCM tag),
//! the stream continuous (each chunk starts where the previous one ended), and a digest of
//! every 512-byte unit of every sequence kept for the cross-check against the archived log of
//! the same sequence ([`SeqDigests::compare`]).
//!
//! 512 bytes divides every redo block size (512, 1024, 4096), and the extractor ships whole
//! blocks from offset 0, so units line up with blocks in both copies. The first two blocks
//! (file header and redo log header) are not compared: ARCn rewrites them when it archives
//! (block count, next SCN), so they legitimately differ from the streamed copy.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use redovault::crypto::keys::KeyRing;
use redovault::wire::{CommitMark, StreamId, StreamPos};
use redovault_collector::segment::{self, ScanError, ScanMode};
use redovault_collector::store::{Durable, StoredSegment, StreamSnapshot, parse_stream_dir_name};
use redovault_redo::position::LogSeq;

use crate::finding::{Finding, FindingKind, LogRef};
pub use crate::units::{Difference, LogKey, PieceUnits, SeqDigests, UNIT, unit_digest};

/// What the audit of a collector directory found.
#[derive(Debug, Default)]
pub struct StreamAudit {
    /// Chunks authenticated.
    pub chunks: u64,
    /// Segment files read.
    pub segments: u64,
    pub findings: Vec<Finding>,
    /// Unit digests of every sequence held.
    pub seqs: BTreeMap<LogKey, SeqDigests>,
    /// Per stream, what was read and authenticated, in the form a rebuild takes (up to the
    /// first damage, if any): `restore online` rebuilds from it without opening (and locking)
    /// the collector's store.
    pub snapshots: BTreeMap<StreamId, StreamSnapshot>,
    /// The block size block 0 states, of every sequence held from offset 0 (the comparison
    /// of copies skips the two header blocks: [`crate::copies`]).
    pub block_sizes: BTreeMap<LogKey, u32>,
}

impl StreamAudit {
    /// This collector's copy of `stream` as unit digests, to compare with other copies.
    pub fn copy_units(&self, s: StreamId) -> crate::copies::CopyUnits {
        let range = (s.db_id, s.resetlogs_id, s.thread.0, 0)
            ..=(s.db_id, s.resetlogs_id, s.thread.0, u32::MAX);
        crate::copies::CopyUnits::from_seq_digests(
            self.seqs
                .range(range.clone())
                .map(|(k, d)| (LogSeq(k.3), d)),
            self.block_sizes
                .range(range)
                .map(|(k, b)| (LogSeq(k.3), *b))
                .collect(),
        )
    }
}

/// Builds a stream's snapshot while its chunks are read.
#[derive(Debug, Default)]
struct SnapBuilder {
    segments: Vec<StoredSegment>,
    end: Option<StreamPos>,
    log_end: bool,
    last_commit: Option<CommitMark>,
    seq_ends: BTreeMap<LogSeq, u64>,
    seq_commits: BTreeMap<LogSeq, (CommitMark, usize)>,
}

impl SnapBuilder {
    fn chunk(&mut self, c: &segment::StoredChunk) {
        for m in &c.commits {
            let e = self.seq_commits.entry(m.end.seq).or_insert((*m, 0));
            e.0 = *m;
            e.1 += 1;
            self.last_commit = Some(*m);
        }
        let data_end = StreamPos {
            seq: c.start.seq,
            offset: c.start.offset + c.data.len() as u64,
        };
        if c.log_end {
            self.seq_ends.insert(c.start.seq, data_end.offset);
        }
        self.end = Some(data_end);
        self.log_end = c.log_end;
    }

    fn finish(self, stream: StreamId) -> Option<StreamSnapshot> {
        let end = self.end?;
        Some(StreamSnapshot {
            stream,
            segments: self.segments,
            durable: Durable {
                end,
                log_end: self.log_end,
                last_commit: self.last_commit,
            },
            seq_ends: self.seq_ends,
            seq_commits: self.seq_commits,
        })
    }
}

#[derive(Debug)]
enum Stop {
    Scan(ScanError),
}

impl From<ScanError> for Stop {
    fn from(e: ScanError) -> Stop {
        Stop::Scan(e)
    }
}

/// The segment files of a stream, in order, without those the collector's retention retired
/// (numbered up to its `RETIRED` file's; a crash may leave some until the collector's next
/// open removes them).
fn segment_files(stream_dir: &Path) -> std::io::Result<Vec<(u64, PathBuf)>> {
    let retired = redovault_collector::store::read_retired(stream_dir)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()))?
        .unwrap_or(0);
    let mut v = Vec::new();
    for e in std::fs::read_dir(stream_dir)? {
        let e = e?;
        if let Some(n) = segment::parse_segment_file_name(&e.file_name().to_string_lossy())
            && n > retired
        {
            v.push((n, e.path()));
        }
    }
    v.sort();
    Ok(v)
}

/// Audits every stream under the collector directory `dir` (its `streams/` subdirectory),
/// read-only.
pub fn audit_collector(dir: &Path, keys: &KeyRing) -> StreamAudit {
    let mut a = StreamAudit::default();
    let wal_dir = dir.join(redovault_collector::store::WAL_DIR);
    let wal_files = std::fs::read_dir(&wal_dir).map_or(0, |rd| rd.filter_map(Result::ok).count());
    if wal_files > 0 {
        a.findings.push(Finding::info(
            FindingKind::CollectorWalPending,
            format!("collector directory {}", dir.display()),
            format!(
                "{wal_files} write-ahead file(s) in {}: segments may lack acknowledged redo \
                 until the collector opens the store and replays them",
                wal_dir.display()
            ),
        ));
    }
    let streams_dir = dir.join("streams");
    let rd = match std::fs::read_dir(&streams_dir) {
        Ok(rd) => rd,
        Err(e) => {
            a.findings.push(Finding::error(
                FindingKind::SegmentChunkCorrupt,
                format!("collector directory {}", streams_dir.display()),
                format!("cannot be read: {e}"),
            ));
            return a;
        }
    };
    let mut streams: Vec<_> = rd
        .filter_map(Result::ok)
        .filter_map(|e| {
            parse_stream_dir_name(&e.file_name().to_string_lossy()).map(|s| (s, e.path()))
        })
        .collect();
    streams.sort();
    for (stream, sdir) in streams {
        let files = match segment_files(&sdir) {
            Ok(f) => f,
            Err(e) => {
                a.findings.push(Finding::error(
                    FindingKind::SegmentChunkCorrupt,
                    format!("stream {stream}"),
                    format!("cannot list {}: {e}", sdir.display()),
                ));
                continue;
            }
        };
        let mut expected: Option<StreamPos> = None;
        let mut snap = SnapBuilder::default();
        let last = files.len().saturating_sub(1);
        'files: for (i, (number, path)) in files.iter().enumerate() {
            let mode = if i == last {
                ScanMode::LastSegment
            } else {
                ScanMode::Strict
            };
            let mut chunks = 0u64;
            let mut gap: Option<Finding> = None;
            let seqs = &mut a.seqs;
            let block_sizes = &mut a.block_sizes;
            let mut first: Option<StreamPos> = None;
            let mut last_end: Option<StreamPos> = None;
            let snap_ref = &mut snap;
            let r = segment::scan(path, keys, mode, None, |offset, c| -> Result<(), Stop> {
                chunks += 1;
                first.get_or_insert(c.start);
                last_end = Some(c.end());
                snap_ref.chunk(&c);
                if let Some(exp) = expected
                    && c.start != exp
                    && gap.is_none()
                {
                    gap = Some(
                        Finding::error(
                            FindingKind::StreamGap,
                            format!("stream {stream}"),
                            format!(
                                "chunk at {} offset {offset} starts at {}, the previous one ended at {exp}",
                                path.display(),
                                c.start
                            ),
                        )
                        .with_log(LogRef {
                            resetlogs_id: stream.resetlogs_id,
                            thread: stream.thread.0,
                            sequence: c.start.seq.0,
                        }),
                    );
                }
                let key = (
                    stream.db_id,
                    stream.resetlogs_id,
                    stream.thread.0,
                    c.start.seq.0,
                );
                if c.start.offset == 0
                    && let Some(bs) = crate::copies::block_size_of(&c.data)
                {
                    block_sizes.insert(key, bs);
                }
                let d = seqs.entry(key).or_default();
                let first_unit =
                    usize::try_from(c.start.offset / UNIT as u64).unwrap_or(usize::MAX);
                if d.units.len() == first_unit {
                    d.units.extend(c.data.chunks(UNIT).map(unit_digest));
                }
                expected = Some(if c.log_end {
                    StreamPos {
                        seq: LogSeq(c.start.seq.0.saturating_add(1)),
                        offset: 0,
                    }
                } else {
                    c.end()
                });
                Ok(())
            });
            a.chunks += chunks;
            a.segments += 1;
            if let Some(g) = gap {
                a.findings.push(g);
            }
            match r {
                Ok(scanned) => snap.segments.push(StoredSegment {
                    number: *number,
                    path: path.clone(),
                    first,
                    last_end,
                    len: scanned.len,
                    durable_len: scanned.good_len,
                }),
                Err(Stop::Scan(e)) => {
                    // What was read before the damage stays usable (authenticated).
                    if let ScanError::Corrupt { offset, .. } = &e {
                        snap.segments.push(StoredSegment {
                            number: *number,
                            path: path.clone(),
                            first,
                            last_end,
                            len: *offset,
                            durable_len: *offset,
                        });
                    }
                    let detail = e.to_string();
                    a.findings.push(Finding::error(
                        FindingKind::SegmentChunkCorrupt,
                        format!("stream {stream}: {}", path.display()),
                        detail,
                    ));
                    break 'files;
                }
            }
        }
        if let Some(s) = snap.finish(stream) {
            a.snapshots.insert(stream, s);
        }
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;
    use redovault_redo::position::{DbId, ResetlogsId};

    #[test]
    fn compare_skips_header_blocks_and_names_the_block() {
        let streamed = SeqDigests {
            units: (0..40).collect(),
        };
        let mut archived: Vec<u64> = (0..48).collect();
        archived[0] = 99; // header blocks differ: fine
        archived[3] = 99;
        assert_eq!(streamed.compare(&archived, 1024), (None, 36));
        archived[21] = 7;
        let (d, _) = streamed.compare(&archived, 1024);
        assert_eq!(
            d,
            Some(Difference {
                block: 10,
                offset: 21 * 512
            })
        );
    }

    #[test]
    fn piece_units_compare_from_their_place_and_past_the_end_differs() {
        use redovault_collector::segment::StoredChunk;
        use redovault_redo::position::ThreadId;
        let stream = StreamId {
            db_id: DbId(1),
            resetlogs_id: ResetlogsId(2),
            thread: ThreadId(1),
        };
        let log: Vec<u8> = (0..8 * UNIT).map(|i| (i / UNIT) as u8).collect();
        let archived: Vec<u64> = log.chunks(UNIT).map(unit_digest).collect();
        let chunk = |from: usize, to: usize| StoredChunk {
            start: StreamPos {
                seq: LogSeq(7),
                offset: (from * UNIT) as u64,
            },
            data: log[from * UNIT..to * UNIT].to_vec(),
            commits: vec![],
            log_end: false,
        };
        // Units 1..6 in two chunks; block 0 and 1 (1024-byte blocks: units 0 to 3) skipped.
        let p = PieceUnits::of_chunks(stream, 3, "k", 7, &[chunk(1, 3), chunk(3, 6)]).unwrap();
        assert_eq!((p.first_unit, p.units.len()), (1, 5));
        assert_eq!(p.compare(&archived, 1024), (None, 2));
        let mut other = archived.clone();
        other[5] ^= 1;
        assert_eq!(
            p.compare(&other, 1024).0,
            Some(Difference {
                block: 2,
                offset: 5 * 512
            })
        );
        // Past the archived log's end.
        assert_eq!(p.compare(&archived[..5], 512).0.unwrap().offset, 5 * 512);
        // Another sequence: none of its chunks.
        assert!(PieceUnits::of_chunks(stream, 3, "k", 8, &[chunk(1, 3)]).is_none());
        // Not on a unit boundary.
        let mut odd = chunk(1, 2);
        odd.start.offset += 1;
        assert!(PieceUnits::of_chunks(stream, 3, "k", 7, &[odd]).is_none());
    }

    #[test]
    fn unit_digest_differs_for_one_bit() {
        let a = [0u8; UNIT];
        let mut b = a;
        b[100] ^= 4;
        assert_ne!(unit_digest(&a), unit_digest(&b));
    }
}
