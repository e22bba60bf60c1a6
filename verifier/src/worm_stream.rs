//! The collector's streams as WORM holds them: every piece opened with the offline recovery
//! key, and the longest authenticated chain of each stream, for `restore online` when the
//! backup host is gone.
//!
//! A stream's pieces chain through `prev_piece` and run on by position. The chain followed
//! starts at the first piece (previous piece zero, or the earliest start when older pieces
//! are gone) and at every fork takes the branch that reaches furthest: a piece uploaded but
//! never recorded before a crash is a dead end beside the one that continued. A piece that
//! does not open (altered, or sealed to another key) ends the chain there: what follows it
//! cannot be proven to continue it.

use std::collections::{BTreeMap, HashMap};

use redovault::crypto::recovery::RecoveryPrivateKey;
use redovault::manifest::Sha256Digest;
use redovault::store::ArchiveStore;
use redovault::wire::{CommitMark, StreamId, StreamPos};
use redovault_collector::piece::{self, PieceHeader, parse_piece_name, stream_prefix};
use redovault_collector::rebuild::Target;
use redovault_collector::segment::StoredChunk;
use redovault_redo::position::LogSeq;

/// One opened piece.
#[derive(Debug, Clone)]
struct Opened {
    key: String,
    header: PieceHeader,
    sha256: Sha256Digest,
    chunks: Vec<StoredChunk>,
}

/// One stream's chain as read from WORM.
#[derive(Debug, Default)]
pub struct WormStream {
    /// Pieces in the chain followed, in order.
    pub pieces: usize,
    /// Where the chain ends (the stream continues there).
    pub end: Option<StreamPos>,
    /// The last commit the chain holds.
    pub last_commit: Option<CommitMark>,
    /// Per sequence: its last commit and how many commits it holds.
    pub seq_commits: BTreeMap<LogSeq, (CommitMark, usize)>,
    /// The chunks of the sequence of the last commit, in order.
    pub chunks: Vec<StoredChunk>,
    /// What was found beside the chain: pieces that do not open, forks, pieces left out.
    pub notes: Vec<String>,
    /// The pieces of the chain followed, in order (key, SHA-256, header).
    chain: Vec<(String, Sha256Digest, PieceHeader)>,
}

impl WormStream {
    /// What `rebuild_from_chunks` needs for the last commit.
    pub fn target(&self, stream: StreamId) -> Option<Target> {
        let last = self.last_commit?;
        let (_, commits) = self.seq_commits.get(&last.end.seq)?;
        Some(Target {
            stream,
            seq: last.end.seq,
            last_commit: last,
            commits: *commits,
            durable_end: self.end?,
        })
    }
}

/// The streams under `<prefix>/streams/`.
pub async fn list_streams<S: ArchiveStore>(
    store: &S,
    prefix: &str,
) -> anyhow::Result<Vec<StreamId>> {
    Ok(crate::stream_chain::list_streams(store, prefix)
        .await?
        .into_keys()
        .collect())
}

async fn get_all<S: ArchiveStore>(store: &S, key: &str) -> anyhow::Result<Vec<u8>> {
    Ok(redovault::store::read_object(store, key, None, piece::MAX_PIECE_OBJECT).await?)
}

/// Reads and opens every piece of `stream`, follows its longest authenticated chain, and
/// keeps the redo of the last commit's sequence.
///
/// Memory stays that of one log however long the stream: the first pass keeps each piece's
/// header and commit marks, not its redo; once the chain is known, a second pass reads again
/// only the pieces of the chain that hold the last commit's sequence, each checked against its
/// key's SHA-256 as in the first.
pub async fn read_stream<S: ArchiveStore>(
    store: &S,
    prefix: &str,
    stream: StreamId,
    key: &RecoveryPrivateKey,
) -> anyhow::Result<WormStream> {
    let mut ws = follow_chain_in(store, prefix, stream, key).await?;
    // The sequence whose chunks the chain kept: the last commit's (or, with no commit yet,
    // the newest).
    let Some(seq) = ws
        .last_commit
        .map(|m| m.end.seq)
        .or_else(|| ws.chunks.first().map(|c| c.start.seq))
    else {
        return Ok(ws);
    };
    let mut chunks = Vec::new();
    for (k, sha, header) in &ws.chain {
        if header.start.seq > seq || header.next_start().seq < seq {
            continue;
        }
        let bytes = get_all(store, k).await?;
        if Sha256Digest::of(&bytes) != *sha {
            anyhow::bail!("{k}: content changed since it was first read (does not match its key)");
        }
        let (_, opened) = piece::open(&bytes, key, k)?;
        chunks.extend(opened.into_iter().filter(|c| c.start.seq == seq));
    }
    if chunks.len() != ws.chunks.len() {
        anyhow::bail!(
            "{stream}: the pieces of sequence {} read again hold {} chunks, the first reading {}",
            seq.0,
            chunks.len(),
            ws.chunks.len()
        );
    }
    ws.chunks = chunks;
    Ok(ws)
}

/// The first pass of [`read_stream`]: every piece opened, its redo dropped, the chain followed
/// (`chunks` then hold the last sequence's commit marks and positions, without their redo).
async fn follow_chain_in<S: ArchiveStore>(
    store: &S,
    prefix: &str,
    stream: StreamId,
    key: &RecoveryPrivateKey,
) -> anyhow::Result<WormStream> {
    let base = format!("{}/pieces/", stream_prefix(prefix, stream));
    let mut listed = store.list(&base).await?;
    listed.sort_by(|a, b| a.key.cmp(&b.key));
    let mut notes = Vec::new();
    let mut opened: Vec<Opened> = Vec::new();
    for o in listed {
        let Some((start, sha)) = parse_piece_name(&o.key) else {
            notes.push(format!("{}: not a piece key, ignored", o.key));
            continue;
        };
        let bytes = get_all(store, &o.key).await?;
        if Sha256Digest::of(&bytes) != sha {
            notes.push(format!(
                "{}: content does not match its key (altered)",
                o.key
            ));
            continue;
        }
        match piece::open(&bytes, key, &o.key) {
            Ok((header, chunks)) if header.stream == stream && header.start == start => {
                opened.push(Opened {
                    key: o.key,
                    header,
                    sha256: sha,
                    chunks: chunks
                        .into_iter()
                        .map(|c| StoredChunk {
                            data: Vec::new(),
                            ..c
                        })
                        .collect(),
                });
            }
            Ok(_) => notes.push(format!(
                "{}: its header names another stream or start",
                o.key
            )),
            Err(e) => notes.push(format!("{e}")),
        }
    }
    Ok(follow_chain(opened, notes))
}

/// The longest chain through `opened` (see the module docs).
fn follow_chain(opened: Vec<Opened>, mut notes: Vec<String>) -> WormStream {
    let by_sha: HashMap<Sha256Digest, usize> = opened
        .iter()
        .enumerate()
        .map(|(i, p)| (p.sha256, i))
        .collect();
    let mut children: HashMap<Sha256Digest, Vec<usize>> = HashMap::new();
    for (i, p) in opened.iter().enumerate() {
        children.entry(p.header.prev_piece).or_default().push(i);
    }
    let roots: Vec<usize> = (0..opened.len())
        .filter(|&i| {
            let prev = opened[i].header.prev_piece;
            prev == Sha256Digest::ZERO || !by_sha.contains_key(&prev)
        })
        .collect();
    // Longest path (in pieces) from each piece, computed from the last pieces backwards:
    // a child always starts at or after its parent's end, so position order is topological.
    let mut order: Vec<usize> = (0..opened.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(opened[i].header.start));
    let mut best: Vec<(usize, Option<usize>)> = vec![(1, None); opened.len()];
    for &i in &order {
        let p = &opened[i];
        let next = p.header.next_start();
        if let Some(kids) = children.get(&p.sha256) {
            for &k in kids {
                if opened[k].header.start == next
                    && opened[k].header.index == p.header.index + 1
                    && best[k].0 + 1 > best[i].0
                {
                    best[i] = (best[k].0 + 1, Some(k));
                }
            }
            if kids.len() > 1 {
                notes.push(format!(
                    "{}: {} pieces claim to follow it (a crash between an upload and its record leaves one)",
                    p.key,
                    kids.len()
                ));
            }
        }
    }
    let Some(&root) = roots
        .iter()
        .max_by_key(|&&r| (best[r].0, std::cmp::Reverse(opened[r].header.start)))
    else {
        return WormStream {
            notes,
            ..WormStream::default()
        };
    };
    let mut chain = Vec::new();
    let mut at = Some(root);
    while let Some(i) = at {
        chain.push(i);
        at = best[i].1;
    }
    let left_out = opened.len() - chain.len();
    if left_out > 0 {
        notes.push(format!("{left_out} piece(s) are not on the chain followed"));
    }
    let mut ws = WormStream {
        pieces: chain.len(),
        notes,
        ..WormStream::default()
    };
    let mut opened: Vec<Option<Opened>> = opened.into_iter().map(Some).collect();
    for i in chain {
        let Some(p) = opened[i].take() else { continue };
        ws.end = Some(p.header.next_start());
        ws.chain.push((p.key.clone(), p.sha256, p.header));
        for c in p.chunks {
            for m in &c.commits {
                let e = ws.seq_commits.entry(m.end.seq).or_insert((*m, 0));
                e.0 = *m;
                e.1 += 1;
                ws.last_commit = Some(*m);
            }
            // Keep the chunks of the sequence of the last commit only (and of the newest
            // sequence, which may get it).
            let keep_from = ws.last_commit.map_or(c.start.seq, |m| m.end.seq);
            ws.chunks.retain(|k| k.start.seq >= keep_from);
            ws.chunks.push(c);
        }
    }
    if let Some(last) = ws.last_commit {
        ws.chunks.retain(|k| k.start.seq == last.end.seq);
    }
    ws
}

#[cfg(test)]
mod tests {
    use redovault_collector::piece::seal;
    use redovault_redo::position::{DbId, ResetlogsId};
    use redovault_redo::position::{Scn, ThreadId, Xid};

    use super::*;

    const S: StreamId = StreamId {
        db_id: DbId(1),
        resetlogs_id: ResetlogsId(2),
        thread: ThreadId(1),
    };

    fn at(seq: u32, offset: u64) -> StreamPos {
        StreamPos {
            seq: LogSeq(seq),
            offset,
        }
    }

    fn chunk(start: StreamPos, len: usize, commit: bool, log_end: bool) -> StoredChunk {
        let end = at(start.seq.0, start.offset + len as u64);
        StoredChunk {
            start,
            data: vec![start.offset as u8; len],
            commits: if commit {
                vec![CommitMark {
                    xid: Xid {
                        usn: 1,
                        slot: 1,
                        sqn: start.offset as u32,
                    },
                    scn: Scn(start.offset + 1),
                    time: None,
                    end,
                }]
            } else {
                vec![]
            },
            log_end,
        }
    }

    /// Piece `index` holding `chunk`, after the piece whose SHA-256 is `prev`, sealed and
    /// opened as a restore reads it.
    fn piece(
        key: &RecoveryPrivateKey,
        index: u64,
        prev: Sha256Digest,
        chunk: StoredChunk,
    ) -> Opened {
        let p = seal(S, index, prev, &[chunk], key.public()).unwrap();
        let (header, chunks) = piece::open(&p.bytes, key, "t").unwrap();
        Opened {
            key: format!("p{index}-{}", p.sha256),
            header,
            sha256: p.sha256,
            chunks,
        }
    }

    #[test]
    fn the_longest_chain_wins_over_an_orphan_of_a_crash() {
        let key = RecoveryPrivateKey::generate();
        let p1 = piece(
            &key,
            1,
            Sha256Digest::ZERO,
            chunk(at(5, 0), 512, true, false),
        );
        let p2 = piece(&key, 2, p1.sha256, chunk(at(5, 512), 512, true, false));
        // The orphan: same index and previous piece, a shorter range, never continued.
        let orphan = piece(&key, 2, p1.sha256, chunk(at(5, 512), 256, false, false));
        let p3 = piece(&key, 3, p2.sha256, chunk(at(5, 1024), 512, true, true));
        let ws = follow_chain(vec![p1, orphan, p2, p3], vec![]);
        assert_eq!(ws.pieces, 3);
        assert_eq!(ws.end, Some(at(6, 0)));
        assert_eq!(ws.last_commit.unwrap().end, at(5, 1536));
        assert_eq!(ws.seq_commits[&LogSeq(5)].1, 3);
        assert_eq!(ws.chunks.len(), 3);
        assert!(
            ws.notes.iter().any(|n| n.contains("claim to follow")),
            "{:?}",
            ws.notes
        );
        let t = ws.target(S).unwrap();
        assert_eq!((t.seq, t.commits), (LogSeq(5), 3));
    }

    #[test]
    fn a_missing_piece_ends_the_chain_before_it() {
        let key = RecoveryPrivateKey::generate();
        let p1 = piece(
            &key,
            1,
            Sha256Digest::ZERO,
            chunk(at(5, 0), 512, true, false),
        );
        let p2 = piece(&key, 2, p1.sha256, chunk(at(5, 512), 512, true, false));
        let p3 = piece(&key, 3, p2.sha256, chunk(at(5, 1024), 512, true, false));
        // Piece 2 is gone (did not open): piece 3 cannot be proven to continue piece 1.
        drop(p2);
        let ws = follow_chain(vec![p1, p3], vec![]);
        assert_eq!(ws.pieces, 1);
        assert_eq!(ws.last_commit.unwrap().end, at(5, 512));
        assert!(ws.notes.iter().any(|n| n.contains("not on the chain")));
    }
}
