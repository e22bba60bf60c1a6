//! The async shell around [`Cutter`] and [`Follower`]: one task per stream, started when the
//! writer first reports the stream durable; blocking file work on the blocking pool.

use std::collections::BTreeSet;
use std::io::Cursor;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{SecondsFormat, Utc};
use redovault::crypto::keys::KeyRing;
use redovault::crypto::recovery::{KEY_ID_LEN, RecoveryPublicKey};
use redovault::manifest::{ChainDir, ManifestError, SealRecord, Sha256Digest, segment_key};
use redovault::store::{ArchiveStore, PutOutcome, StoreError};
use redovault::wire::{StreamId, StreamPos, latency};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::WormConfig;
use super::chain::{PieceEntry, chain_dir};
use super::cutter::{Cutter, Decision};
use super::follow::Follower;
use crate::metrics::CollectorMetrics;
use redovault::compress::Level;

use crate::piece::{self, PieceHeader, SealedPiece, parse_piece_name, stream_prefix};
use crate::segment::StoredChunk;
use crate::store::stream_dir_name;
use crate::writer::WriterHandle;

/// How often the durable ends are looked at.
const POLL: Duration = Duration::from_millis(20);
/// Longest wait between two attempts of a failing upload.
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// How long a stop waits for the last pieces and the chain seal.
const STOP_GRACE: Duration = Duration::from_secs(10);

/// What the uploader needs.
#[derive(Debug, Clone)]
pub struct Worm<S> {
    /// The WORM store.
    pub store: S,
    /// Key prefix (`[worm] prefix`).
    pub prefix: String,
    pub key: RecoveryPublicKey,
    /// zstd level of the chunks in the pieces (`[store] compress`; `None`: raw).
    pub compress: Option<Level>,
    /// The collector's at-rest keys (to read its segments).
    pub keys: Arc<KeyRing>,
    /// The collector's store directory.
    pub store_dir: PathBuf,
    /// Timing and sizes.
    pub config: WormConfig,
    /// Durable ends.
    pub writer: WriterHandle,
    pub metrics: Arc<CollectorMetrics>,
}

/// Starts the uploader: a task per stream, until `cancel` fires (then each stream uploads
/// what is durable and seals its chain, for at most a few seconds).
pub fn spawn<S: ArchiveStore + Clone + 'static>(
    worm: Worm<S>,
    cancel: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    let worm = Arc::new(worm);
    worm.metrics
        .worm_seal_interval
        .set(worm.config.seal_interval.as_secs_f64());
    tokio::spawn(async move {
        // Said once at start; a put on a store that fails this check fails too, and is
        // retried (the WORM lag and its alert tell the operator).
        match worm.store.check().await {
            Ok(r) if r.worm => tracing::info!(store = %r.description, "WORM store checked"),
            Ok(r) => tracing::warn!(store = %r.description, "the streams' second home is NOT WORM"),
            Err(e) => {
                tracing::error!(error = %e, "WORM store check failed; pieces wait until it answers")
            }
        }
        let mut started = BTreeSet::new();
        let mut tasks = JoinSet::new();
        loop {
            for stream in worm.writer.durable_all().into_keys() {
                if started.insert(stream) {
                    tasks.spawn(run_stream(worm.clone(), stream, cancel.clone()));
                }
            }
            tokio::select! {
                _ = cancel.cancelled() => break,
                _ = tokio::time::sleep(POLL * 5) => {}
            }
        }
        while tasks.join_next().await.is_some() {}
    })
}

/// One stream's uploader.
struct StreamWorm<S> {
    worm: Arc<Worm<S>>,
    stream: StreamId,
    name: String,
    chain: Option<ChainDir<PieceEntry>>,
    follower: Option<Follower>,
    cutter: Cutter,
    prev_piece: Sha256Digest,
    /// When the chain's open segment got its first entry.
    open_since: Option<Instant>,
    /// The outcome of the last upload attempt is unknown (a failed put may have stored it).
    uncertain: bool,
}

async fn run_stream<S: ArchiveStore + Clone + 'static>(
    worm: Arc<Worm<S>>,
    stream: StreamId,
    cancel: CancellationToken,
) {
    let mut backoff = Duration::from_secs(1);
    let mut sw = loop {
        match StreamWorm::open(worm.clone(), stream).await {
            Ok(sw) => break sw,
            Err(e) => {
                tracing::error!(stream = %stream, error = %e, "cannot start the WORM uploader of this stream; retrying");
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(MAX_BACKOFF * 3);
            }
        }
    };
    sw.run(&cancel).await;
}

fn now_rfc3339() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true)
}

impl<S: ArchiveStore + Clone + 'static> StreamWorm<S> {
    async fn open(worm: Arc<Worm<S>>, stream: StreamId) -> Result<StreamWorm<S>, String> {
        let dir = chain_dir(&worm.store_dir, stream);
        let seg_dir = worm.store_dir.join("streams").join(stream_dir_name(stream));
        let keys = worm.keys.clone();
        let (chain, follower) = tokio::task::spawn_blocking(move || {
            let chain =
                ChainDir::<PieceEntry>::open(&dir, &mut |_| {}).map_err(|e| e.to_string())?;
            let next = chain.last().map(|e| e.next_start());
            let follower = Follower::new(&seg_dir, keys, next).map_err(|e| e.to_string())?;
            Ok::<_, String>((chain, follower))
        })
        .await
        .map_err(|e| e.to_string())??;
        let last = chain.last();
        let name = stream.to_string();
        let next = last.as_ref().map(PieceEntry::next_start);
        if let Some(e) = &last {
            set_position(&worm.metrics, &name, e);
        }
        tracing::info!(stream = %stream, pieces = chain.len(), next = ?next.map(|p| p.to_string()), "WORM uploader started");
        Ok(StreamWorm {
            cutter: Cutter::new(next, worm.config.seal_interval, worm.config.max_piece),
            prev_piece: last.as_ref().map_or(Sha256Digest::ZERO, |e| e.sha256),
            open_since: (chain.open_len() > 0).then(Instant::now),
            chain: Some(chain),
            follower: Some(follower),
            worm,
            stream,
            name,
            uncertain: true,
        })
    }

    fn observe(&mut self) {
        let now = Instant::now();
        if let Some(d) = self.worm.writer.durable(self.stream) {
            self.cutter.observe(d.resume_pos(), now);
        }
        self.worm
            .metrics
            .worm_lag
            .with(&self.name)
            .set(self.cutter.lag(now).as_secs_f64());
    }

    /// Runs `work` (which must not hold `self`) to its end while the durable end is still
    /// observed every [`POLL`]: redo that becomes durable while a piece is read, sealed or
    /// uploaded is aged from then, not from when that work is over. Otherwise each upload's
    /// duration would go unseen: the next piece would be cut a full interval after the
    /// upload instead of after its first durable byte, and the lag would read too low.
    async fn observing<T>(&mut self, work: impl Future<Output = T>) -> T {
        let mut work = std::pin::pin!(work);
        loop {
            tokio::select! {
                biased;
                out = &mut work => return out,
                _ = tokio::time::sleep(POLL) => self.observe(),
            }
        }
    }

    /// Waits `d` (observing the durable end meanwhile); true when `cancel` fired first.
    async fn wait_observing(&mut self, d: Duration, cancel: &CancellationToken) -> bool {
        let cancelled = cancel.clone();
        self.observing(async move {
            tokio::select! {
                _ = cancelled.cancelled() => true,
                _ = tokio::time::sleep(d) => false,
            }
        })
        .await
    }

    async fn run(&mut self, cancel: &CancellationToken) {
        if let Err(e) = self.seal_closed_segments().await {
            tracing::warn!(stream = %self.stream, error = %e, "chain segments not sealed yet");
        }
        loop {
            self.observe();
            let cut = match self.cutter.decide(Instant::now()) {
                Decision::Cut { upto } => Some(upto),
                Decision::Wait(_) => None,
            };
            if let Some(upto) = cut {
                match self.upload_next(upto, cancel).await {
                    Ok(true) => continue,
                    Ok(false) => {}
                    Err(e) => {
                        tracing::error!(stream = %self.stream, error = %e, retry_in_ms = MAX_BACKOFF.as_millis() as u64, "WORM upload of this stream failed before its put");
                        if self.wait_observing(MAX_BACKOFF, cancel).await {
                            break;
                        }
                    }
                }
            }
            if self.seal_due() {
                self.seal_chain("interval").await;
            }
            tokio::select! {
                _ = cancel.cancelled() => break,
                _ = tokio::time::sleep(POLL) => {}
            }
        }
        self.finish().await;
    }

    /// At stop: what is durable goes up now, then the chain is sealed; bounded in time.
    async fn finish(&mut self) {
        let last = CancellationToken::new();
        let guard = last.clone();
        let work = async {
            loop {
                self.observe();
                let Some(upto) = self
                    .worm
                    .writer
                    .durable(self.stream)
                    .map(|d| d.resume_pos())
                else {
                    break;
                };
                if self.cutter.next().is_some_and(|n| n >= upto) {
                    break;
                }
                match self.upload_next(upto, &guard).await {
                    Ok(true) => {}
                    _ => break,
                }
            }
            self.seal_chain("stop").await;
        };
        if tokio::time::timeout(STOP_GRACE, work).await.is_err() {
            last.cancel();
            tracing::warn!(stream = %self.stream, "stopped before every durable byte reached WORM");
        }
    }

    fn seal_due(&self) -> bool {
        let Some(chain) = &self.chain else {
            return false;
        };
        chain.open_len() as u64 >= self.worm.config.manifest_entries
            || self
                .open_since
                .is_some_and(|t| t.elapsed() >= self.worm.config.manifest_interval)
    }

    /// Reads, seals, uploads and records the next piece; false when nothing was there.
    async fn upload_next(
        &mut self,
        upto: StreamPos,
        cancel: &CancellationToken,
    ) -> Result<bool, String> {
        let durable_at = self.cutter.pending_since();
        let max = self.worm.config.max_piece;
        let chunks = self
            .blocking_follow(move |f| f.read_piece(upto, max).map_err(|e| e.to_string()))
            .await?;
        if chunks.is_empty() {
            return Ok(false);
        }
        match self.ship(chunks.clone(), durable_at, cancel).await {
            Ok(shipped) => {
                if !shipped {
                    self.unread(chunks).await?;
                }
                Ok(shipped)
            }
            Err(e) => {
                // Read but not in WORM: the next attempt starts with them again (a gap in
                // the chain would otherwise follow).
                self.unread(chunks).await?;
                Err(e)
            }
        }
    }

    async fn unread(&mut self, chunks: Vec<StoredChunk>) -> Result<(), String> {
        self.blocking_follow(move |f| f.unread(chunks).map_err(|e| e.to_string()))
            .await
    }

    /// Seals, uploads and records `chunks`; false when stopped before the upload succeeded.
    async fn ship(
        &mut self,
        chunks: Vec<StoredChunk>,
        durable_at: Option<Instant>,
        cancel: &CancellationToken,
    ) -> Result<bool, String> {
        let index = self.chain.as_ref().map_or(1, |c| c.state().next_index);
        if self.uncertain
            && let Some((adopted, n)) = self.adopt_orphan(index, &chunks).await?
        {
            let mut chunks = chunks;
            let rest = chunks.split_off(n);
            if !rest.is_empty() {
                // Redo durable since the crash, beyond the piece found: the next piece's.
                self.blocking_follow(move |f| f.unread(rest).map_err(|e| e.to_string()))
                    .await?;
            }
            self.record(adopted, &chunks, durable_at).await?;
            self.uncertain = false;
            return Ok(true);
        }
        let (stream, prev, key) = (self.stream, self.prev_piece, self.worm.key.clone());
        let compress = self.worm.compress;
        let to_seal = chunks.clone();
        let sealed = self
            .observing(tokio::task::spawn_blocking(move || {
                piece::seal_with(stream, index, prev, &to_seal, &key, compress)
            }))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?;
        let object_key = piece::piece_key(
            &self.worm.prefix,
            stream,
            sealed.header.start,
            &sealed.sha256,
        );
        let mut backoff = Duration::from_millis(200);
        let worm = self.worm.clone();
        let outcome = loop {
            let t0 = Instant::now();
            match self
                .observing(
                    worm.store
                        .put_immutable(&object_key, Cursor::new(sealed.bytes.clone())),
                )
                .await
            {
                Ok(o) => {
                    self.worm
                        .metrics
                        .worm_put_seconds
                        .observe(t0.elapsed().as_secs_f64());
                    break o;
                }
                Err(e) => {
                    self.uncertain = true;
                    self.worm.metrics.worm_put_errors.with(&self.name).inc();
                    if e.is_conflict() {
                        self.worm.metrics.worm_conflicts.with(&self.name).inc();
                        tracing::error!(stream = %stream, key = %object_key, error = %e, "WORM conflict: an object with this piece's key holds other bytes; nothing was overwritten");
                    } else {
                        tracing::warn!(stream = %stream, key = %object_key, error = %e, retry_in_ms = backoff.as_millis() as u64, "piece upload failed; the collector keeps acknowledging from its disk");
                    }
                    if self.wait_observing(backoff, cancel).await {
                        return Ok(false);
                    }
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        };
        // In WORM but not yet recorded: should recording fail, the next attempt finds this
        // piece (the orphan check) rather than uploading the same range again.
        self.uncertain = true;
        self.record((sealed, outcome), &chunks, durable_at).await?;
        self.uncertain = false;
        Ok(true)
    }

    /// A piece at the same start with the same index and previous piece, sealed to the same
    /// key, holding the first of `chunks` (see [`orphan_fit`]), uploaded before a crash but
    /// never recorded: confirmed (HEAD) and recorded as it is, with how many of `chunks` it
    /// holds. Anything else at that start is a conflict: reported, left alone.
    async fn adopt_orphan(
        &self,
        index: u64,
        chunks: &[StoredChunk],
    ) -> Result<Option<((SealedPiece, PutOutcome), usize)>, String> {
        let Some(start) = chunks.first().map(|c| c.start) else {
            return Ok(None);
        };
        let prefix = format!(
            "{}/pieces/{:010}-{:016}-",
            stream_prefix(&self.worm.prefix, self.stream),
            start.seq.0,
            start.offset
        );
        let listed = self
            .worm
            .store
            .list(&prefix)
            .await
            .map_err(|e| e.to_string())?;
        for obj in listed {
            let Some((_, sha)) = parse_piece_name(&obj.key) else {
                continue;
            };
            let bytes = read_all(&self.worm.store, &obj.key)
                .await
                .map_err(|e| e.to_string())?;
            let fits = if Sha256Digest::of(&bytes) == sha {
                PieceHeader::decode(&bytes, &obj.key).ok().and_then(|h| {
                    orphan_fit(
                        &h,
                        self.stream,
                        index,
                        self.prev_piece,
                        self.worm.key.id(),
                        chunks,
                        self.worm.compress,
                    )
                })
            } else {
                None
            };
            let Some(n) = fits else {
                self.worm.metrics.worm_conflicts.with(&self.name).inc();
                tracing::error!(stream = %self.stream, key = %obj.key, "WORM conflict: a piece at this stream's next position does not continue its chain; left alone, ours is uploaded beside it");
                continue;
            };
            let header = PieceHeader::decode(&bytes, &obj.key).map_err(|e| e.to_string())?;
            let outcome = self
                .worm
                .store
                .put_immutable(&obj.key, Cursor::new(bytes.clone()))
                .await
                .map_err(|e| e.to_string())?;
            tracing::info!(stream = %self.stream, key = %obj.key, chunks = n, read = chunks.len(), "piece uploaded before a restart found in WORM and recorded as it is");
            return Ok(Some((
                (
                    SealedPiece {
                        header,
                        bytes,
                        sha256: sha,
                    },
                    outcome,
                ),
                n,
            )));
        }
        Ok(None)
    }

    async fn record(
        &mut self,
        (sealed, outcome): (SealedPiece, PutOutcome),
        chunks: &[StoredChunk],
        durable_at: Option<Instant>,
    ) -> Result<(), String> {
        let h = sealed.header;
        let commits: Vec<_> = chunks.iter().flat_map(|c| c.commits.iter()).collect();
        let (scn, xid, time) = PieceEntry::commit_fields(commits.last().copied());
        // Confirmed by the store (PUT, then the HEAD that matched it; or an orphan adopted):
        // the instant a commit is in WORM, before the local chain's bookkeeping.
        latency::trace_worm(self.stream, h.end, scn);
        let durable_age = durable_at.map_or(Duration::ZERO, |t| t.elapsed());
        let durable_wall = Utc::now() - chrono::Duration::from_std(durable_age).unwrap_or_default();
        let entry = PieceEntry {
            index: h.index,
            db_id: h.stream.db_id,
            resetlogs_id: h.stream.resetlogs_id,
            thread: h.stream.thread.0,
            start_seq: h.start.seq.0,
            start_offset: h.start.offset,
            end_seq: h.end.seq.0,
            end_offset: h.end.offset,
            log_end: h.log_end,
            chunks: h.chunks,
            redo_bytes: chunks.iter().map(|c| c.data.len() as u64).sum(),
            commits: commits.len() as u64,
            last_commit_scn: scn,
            last_commit_xid: xid,
            last_commit_time: time,
            object_key: outcome.key.clone(),
            size: sealed.bytes.len() as u64,
            sha256: sealed.sha256,
            prev_piece: h.prev_piece,
            version_id: outcome.version_id.clone(),
            retain_until: outcome
                .lock
                .map(|l| l.retain_until.to_rfc3339_opts(SecondsFormat::Millis, true)),
            durable_at: durable_wall.to_rfc3339_opts(SecondsFormat::Millis, true),
            uploaded_at: now_rfc3339(),
            prev: Sha256Digest::ZERO,
        };
        let mut chain = self.chain.take().ok_or("chain in use")?;
        let (chain, appended) = self
            .observing(tokio::task::spawn_blocking(move || {
                let r = chain.append_with(|index, prev| PieceEntry {
                    index,
                    prev,
                    ..entry
                });
                (chain, r)
            }))
            .await
            .map_err(|e| e.to_string())?;
        self.chain = Some(chain);
        let entry = appended.map_err(|e| e.to_string())?;
        if self.open_since.is_none() {
            self.open_since = Some(Instant::now());
        }
        self.prev_piece = sealed.sha256;
        self.cutter.uploaded(entry.next_start());
        let m = &self.worm.metrics;
        m.worm_pieces.with(&self.name).inc();
        m.worm_bytes.with(&self.name).add(entry.size);
        m.worm_latency.observe(durable_age.as_secs_f64());
        set_position(m, &self.name, &entry);
        self.observe();
        tracing::debug!(stream = %self.stream, index = entry.index, start = %entry.start(), end = %entry.end(), bytes = entry.size, "piece in WORM");
        if entry.log_end {
            self.seal_chain("log end").await;
        }
        Ok(())
    }

    async fn blocking_follow<T: Send + 'static>(
        &mut self,
        f: impl FnOnce(&mut Follower) -> Result<T, String> + Send + 'static,
    ) -> Result<T, String> {
        let mut follower = self.follower.take().ok_or("follower in use")?;
        let (follower, r) = self
            .observing(tokio::task::spawn_blocking(move || {
                let r = f(&mut follower);
                (follower, r)
            }))
            .await
            .map_err(|e| e.to_string())?;
        self.follower = Some(follower);
        r
    }

    /// Closes the chain's open segment and seals every closed one not yet in WORM; failures
    /// are retried at the next occasion.
    async fn seal_chain(&mut self, why: &'static str) {
        let Some(mut chain) = self.chain.take() else {
            return;
        };
        let Ok((chain, closed)) = self
            .observing(tokio::task::spawn_blocking(move || {
                let r = chain.close_segment();
                (chain, r)
            }))
            .await
        else {
            tracing::error!(stream = %self.stream, "the chain task failed; chain segments are no longer sealed");
            return;
        };
        self.chain = Some(chain);
        if let Err(e) = closed {
            tracing::error!(stream = %self.stream, error = %e, "cannot close the chain segment");
            return;
        }
        self.open_since = None;
        match self.seal_closed_segments().await {
            Ok(n) if n > 0 => {
                tracing::debug!(stream = %self.stream, segments = n, why, "chain sealed into WORM")
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(stream = %self.stream, error = %e, "chain segment not sealed yet; retried later")
            }
        }
    }

    async fn seal_closed_segments(&mut self) -> Result<usize, String> {
        let unsealed = self
            .chain
            .as_ref()
            .map(ChainDir::unsealed)
            .unwrap_or_default();
        let prefix = stream_prefix(&self.worm.prefix, self.stream);
        let mut n = 0;
        for seg in unsealed {
            let bytes = self
                .observing(tokio::fs::read(&seg.path))
                .await
                .map_err(|e| format!("read {}: {e}", seg.path.display()))?;
            let key = segment_key(&prefix, &seg);
            let worm = self.worm.clone();
            let out = self
                .observing(worm.store.put_immutable(&key, Cursor::new(bytes)))
                .await
                .map_err(|e| e.to_string())?;
            let record = SealRecord {
                first: seg.first,
                last: seg.last,
                sha256: seg.sha256,
                key,
                version_id: out.version_id,
                retain_until: out
                    .lock
                    .map(|l| l.retain_until.to_rfc3339_opts(SecondsFormat::Millis, true)),
                sealed_at: now_rfc3339(),
            };
            let mut chain = self.chain.take().ok_or("chain in use")?;
            let (chain, r) = self
                .observing(tokio::task::spawn_blocking(move || {
                    let r = chain.mark_sealed(record);
                    (chain, r)
                }))
                .await
                .map_err(|e| e.to_string())?;
            self.chain = Some(chain);
            r.map_err(|e: ManifestError| e.to_string())?;
            self.worm.metrics.worm_manifest_seals.with(&self.name).inc();
            n += 1;
        }
        Ok(n)
    }
}

/// How many of `chunks` (read from the stream's next position) the piece with header `h`
/// holds, if it is the piece a crash left between its upload and its record: piece `index`
/// of `stream` after `prev`, sealed to `key_id`, its chunks the first of ours (same start,
/// a chunk count whose last chunk ends where the header's end and log end say, and the
/// plaintext length of exactly those chunks, raw or compressed at `compress`: zstd gives
/// the same bytes for the same chunk and level, and a piece sealed raw before `[store]
/// compress` was turned on still fits). After a restart the durable end has usually moved
/// on, so more is read than the piece holds: the piece is still ours, and what follows it
/// goes into the next one. None: not ours (a conflict).
fn orphan_fit(
    h: &PieceHeader,
    stream: StreamId,
    index: u64,
    prev: Sha256Digest,
    key_id: [u8; KEY_ID_LEN],
    chunks: &[StoredChunk],
    compress: Option<Level>,
) -> Option<usize> {
    let n = h.chunks as usize;
    if h.stream != stream
        || h.index != index
        || h.prev_piece != prev
        || h.key_id != key_id
        || n == 0
        || n > chunks.len()
    {
        return None;
    }
    let held = &chunks[..n];
    let raw: usize = held.iter().map(|c| 4 + c.encoded_len()).sum();
    let plaintext_fits = raw == h.plaintext_len as usize
        || compress.is_some_and(|_| {
            let packed: Option<usize> = held
                .iter()
                .map(|c| c.encode_with(compress).ok().map(|b| 4 + b.len()))
                .sum();
            packed == Some(h.plaintext_len as usize)
        });
    let last = &held[n - 1];
    (held[0].start == h.start && last.end() == h.end && last.log_end == h.log_end && plaintext_fits)
        .then_some(n)
}

fn set_position(m: &CollectorMetrics, name: &str, e: &PieceEntry) {
    let next = e.next_start();
    m.worm_sequence.with(name).set(f64::from(next.seq.0));
    m.worm_offset.with(name).set(next.offset as f64);
    if let Some(scn) = e.last_commit_scn {
        m.worm_scn.with(name).set(scn as f64);
    }
    if let Some(t) = e.last_commit_time {
        m.worm_commit_time.with(name).set(t as f64);
    }
    let last = e.last_commit_scn.map(|scn| crate::status::CommitInfo {
        scn,
        xid: e.last_commit_xid.clone(),
        time: e.last_commit_time,
    });
    m.status.set_worm(name, next.to_string(), last);
}

async fn read_all<S: ArchiveStore>(store: &S, key: &str) -> Result<Vec<u8>, StoreError> {
    redovault::store::read_object(store, key, None, piece::MAX_PIECE_OBJECT).await
}

#[cfg(test)]
mod tests {
    use redovault::crypto::recovery::RecoveryPrivateKey;
    use redovault::manifest::read_chain_entries;
    use redovault::store::local::LocalStore;
    use redovault_redo::position::ThreadId;

    use super::*;
    use crate::store::{Store, StoreOptions};
    use crate::worm::read_state;
    use crate::worm::testkit::{S, at, keys};
    use crate::writer::{self, WriterConfig};

    /// A collector store holding the first `n` KiB of log 1 in 1 KiB chunks, durable.
    fn store(dir: &std::path::Path, n: u64) -> Store {
        let opts = StoreOptions {
            segment_size: 64 << 10,
            chunk_size: 1024,
            compress: None,
        };
        let mut st = Store::open_with(dir, keys(), opts, Arc::new(crate::fs::RealFs)).unwrap();
        for k in 0..n {
            st.append(S, at(1, k * 1024), &[k as u8; 1024], &[], false)
                .unwrap();
        }
        st.sync().unwrap();
        st
    }

    /// The chunks of the store in `dir` up to `upto`, as the uploader reads them.
    fn chunks(dir: &std::path::Path, upto: StreamPos) -> Vec<StoredChunk> {
        let seg_dir = dir.join("streams").join(stream_dir_name(S));
        Follower::new(&seg_dir, Arc::new(keys()), None)
            .unwrap()
            .read_piece(upto, 1 << 30)
            .unwrap()
    }

    #[test]
    fn a_piece_holding_the_first_of_the_chunks_read_is_ours_and_nothing_else_is() {
        let dir = tempfile::tempdir().unwrap();
        drop(store(dir.path(), 8));
        let all = chunks(dir.path(), at(1, 8 << 10));
        assert_eq!(all.len(), 8);
        let sk = RecoveryPrivateKey::generate();
        let pk = sk.public().clone();
        let prev = Sha256Digest::of(b"piece 2");
        let p = piece::seal(S, 3, prev, &all[..3], &pk).unwrap();
        let fit = |h: &PieceHeader, c: &[StoredChunk]| orphan_fit(h, S, 3, prev, pk.id(), c, None);
        // Uploaded, then the crash; since the restart, more is durable (or nothing more).
        assert_eq!(fit(&p.header, &all), Some(3));
        assert_eq!(fit(&p.header, &all[..3]), Some(3));
        // It holds more than what is read now: not ours to record.
        assert_eq!(fit(&p.header, &all[..2]), None);
        // Another position, piece, predecessor, key or stream.
        assert_eq!(fit(&p.header, &all[1..]), None);
        let other = |f: &dyn Fn(&mut PieceHeader)| {
            let mut h = p.header;
            f(&mut h);
            fit(&h, &all)
        };
        assert_eq!(other(&|h| h.index = 4), None);
        assert_eq!(other(&|h| h.prev_piece = Sha256Digest::ZERO), None);
        assert_eq!(other(&|h| h.key_id = [9; KEY_ID_LEN]), None);
        assert_eq!(other(&|h| h.stream.thread = ThreadId(2)), None);
        // An end inside one of our chunks, another log end, other plaintext.
        assert_eq!(other(&|h| h.end = at(1, 3 * 1024 - 512)), None);
        assert_eq!(other(&|h| h.log_end = true), None);
        assert_eq!(other(&|h| h.plaintext_len += 40), None);
        assert_eq!(other(&|h| h.chunks = 0), None);
        // Sealed compressed (issue 19): ours at that level (zstd repeats its bytes), and a
        // raw piece still is once compression is on.
        let level = redovault::compress::Level::new(3);
        let z = piece::seal_with(S, 3, prev, &all[..3], &pk, level).unwrap();
        assert!(z.header.plaintext_len < p.header.plaintext_len);
        assert_eq!(
            orphan_fit(&z.header, S, 3, prev, pk.id(), &all, level),
            Some(3)
        );
        assert_eq!(orphan_fit(&z.header, S, 3, prev, pk.id(), &all, None), None);
        assert_eq!(
            orphan_fit(&p.header, S, 3, prev, pk.id(), &all, level),
            Some(3)
        );
    }

    /// A crash between a piece's upload and its record, while the database kept writing:
    /// after the restart the piece is found and recorded as it is (no conflict, nothing
    /// beside the chain), and what became durable since goes into the next pieces.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_piece_uploaded_before_a_crash_is_recorded_although_more_is_durable_now() {
        let dir = tempfile::tempdir().unwrap();
        let store_dir = dir.path().join("store");
        let worm_dir = dir.path().join("worm");
        let sk = RecoveryPrivateKey::generate();
        let pk_path = dir.path().join("recovery.pub");
        std::fs::write(&pk_path, sk.public().to_pem()).unwrap();
        // Run 1: 3 KiB durable, piece 1 uploaded, the collector killed before its record.
        drop(store(&store_dir, 3));
        let first = chunks(&store_dir, at(1, 3 << 10));
        let orphan = piece::seal(S, 1, Sha256Digest::ZERO, &first, sk.public()).unwrap();
        let orphan_key = piece::piece_key("p", S, at(1, 0), &orphan.sha256);
        let wstore = LocalStore::new(&worm_dir).unwrap();
        wstore
            .put_immutable(&orphan_key, Cursor::new(orphan.bytes.clone()))
            .await
            .unwrap();
        // Run 2: the extractor sent 5 KiB more before the uploader looked at WORM.
        let mut st = Store::open_with(
            &store_dir,
            keys(),
            StoreOptions {
                segment_size: 64 << 10,
                chunk_size: 1024,
                compress: None,
            },
            Arc::new(crate::fs::RealFs),
        )
        .unwrap();
        for k in 3..8u64 {
            st.append(S, at(1, k * 1024), &[k as u8; 1024], &[], false)
                .unwrap();
        }
        st.sync().unwrap();
        let cancel = CancellationToken::new();
        let (writer, _w) = writer::spawn(st, WriterConfig::default(), cancel.clone());
        let mut problems = redovault::config::Problems::default();
        let table: toml::Table = toml::from_str(&format!(
            "kind = \"local\"\ndir = \"{}\"\nprefix = \"p\"\nrecovery_public_key = \"{}\"\nseal_interval = \"10ms\"\n",
            worm_dir.display(),
            pk_path.display()
        ))
        .unwrap();
        let config = WormConfig::parse(&table, &mut problems).unwrap();
        assert!(problems.is_empty(), "{problems:?}");
        let metrics = Arc::new(CollectorMetrics::new());
        let worm_cancel = CancellationToken::new();
        let task = spawn(
            Worm {
                store: wstore.clone(),
                prefix: "p".into(),
                key: sk.public().clone(),
                compress: None,
                keys: Arc::new(keys()),
                store_dir: store_dir.clone(),
                config,
                writer,
                metrics: metrics.clone(),
            },
            worm_cancel.clone(),
        );
        let deadline = Instant::now() + Duration::from_secs(20);
        while read_state(&store_dir, S).unwrap().next != Some(at(1, 8 << 10)) {
            assert!(Instant::now() < deadline, "the durable end reaches WORM");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        worm_cancel.cancel();
        task.await.unwrap();
        cancel.cancel();
        let chain: Vec<PieceEntry> = read_chain_entries(&chain_dir(&store_dir, S)).unwrap();
        assert_eq!(chain[0].object_key, orphan_key, "the orphan is piece 1");
        assert_eq!(
            (chain[0].end(), chain[0].sha256),
            (at(1, 3 << 10), orphan.sha256)
        );
        assert_eq!(chain[1].start(), at(1, 3 << 10));
        assert_eq!(chain[1].prev_piece, orphan.sha256);
        assert_eq!(metrics.worm_conflicts.with(&S.to_string()).get(), 0);
        let pieces = wstore
            .list(&format!("{}/pieces/", stream_prefix("p", S)))
            .await
            .unwrap();
        assert_eq!(pieces.len(), chain.len(), "no piece beside the chain");
    }
}

/// The uploader against a store that holds a put (what becomes durable meanwhile).
#[cfg(test)]
mod gated {
    use redovault_redo::position::{DbId, ResetlogsId};
    use std::sync::atomic::{AtomicBool, Ordering};

    use redovault::crypto::recovery::RecoveryPrivateKey;
    use redovault::store::local::LocalStore;
    use redovault::store::{ByteStream, FileSource, ObjectInfo, ObjectSummary, Readiness};
    use redovault_redo::position::{LogSeq, ThreadId};
    use tokio::io::AsyncRead;
    use tokio::sync::{Notify, Semaphore};

    use super::*;
    use crate::worm::testkit::keys;
    use crate::writer::{AppendRequest, WriterConfig};

    /// Holds the first put until the test releases it.
    struct Gate {
        held: AtomicBool,
        entered: Notify,
        release: Semaphore,
    }

    #[derive(Clone)]
    struct GatedStore {
        inner: LocalStore,
        gate: Arc<Gate>,
    }

    impl ArchiveStore for GatedStore {
        async fn check(&self) -> Result<Readiness, StoreError> {
            self.inner.check().await
        }
        async fn put_immutable<R>(&self, key: &str, src: R) -> Result<PutOutcome, StoreError>
        where
            R: AsyncRead + Unpin + Send + 'static,
        {
            if self.gate.held.swap(false, Ordering::SeqCst) {
                self.gate.entered.notify_one();
                let _permit = self.gate.release.acquire().await;
            }
            self.inner.put_immutable(key, src).await
        }
        async fn put_file(&self, key: &str, src: &FileSource) -> Result<PutOutcome, StoreError> {
            self.inner.put_file(key, src).await
        }
        async fn get(
            &self,
            key: &str,
            range: Option<std::ops::Range<u64>>,
            version_id: Option<&str>,
        ) -> Result<ByteStream, StoreError> {
            self.inner.get(key, range, version_id).await
        }
        async fn head(
            &self,
            key: &str,
            version_id: Option<&str>,
        ) -> Result<Option<ObjectInfo>, StoreError> {
            self.inner.head(key, version_id).await
        }
        async fn list(&self, prefix: &str) -> Result<Vec<ObjectSummary>, StoreError> {
            self.inner.list(prefix).await
        }
        async fn versions(&self, key: &str) -> Result<Vec<String>, StoreError> {
            self.inner.versions(key).await
        }
        async fn list_versions(
            &self,
            prefix: &str,
        ) -> Result<Vec<redovault::store::VersionSummary>, StoreError> {
            self.inner.list_versions(prefix).await
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn redo_durable_while_a_piece_uploads_is_aged_from_then() {
        let dir = tempfile::tempdir().unwrap();
        let store_dir = dir.path().join("store");
        let store = crate::store::Store::open(&store_dir, keys()).unwrap();
        let cancel = CancellationToken::new();
        let (writer, _task) = crate::writer::spawn(store, WriterConfig::default(), cancel.clone());
        let stream = StreamId {
            db_id: DbId(7),
            resetlogs_id: ResetlogsId(1),
            thread: ThreadId(1),
        };
        let append = |offset| {
            writer.append(AppendRequest {
                stream,
                pos: StreamPos {
                    seq: LogSeq(1),
                    offset,
                },
                bytes: vec![0x42; 4096],
                commits: Vec::new(),
                log_end: false,
            })
        };
        append(0).await.unwrap();
        let table: toml::Table = toml::from_str(&format!(
            "kind = \"local\"\ndir = \"{}\"\nrecovery_public_key = \"unused.pub\"\nseal_interval = \"50ms\"\n",
            dir.path().join("worm").display()
        ))
        .unwrap();
        let mut problems = redovault::config::Problems::default();
        let config = WormConfig::parse(&table, &mut problems).unwrap();
        assert!(problems.is_empty(), "{problems:?}");
        let gate = Arc::new(Gate {
            held: AtomicBool::new(true),
            entered: Notify::new(),
            release: Semaphore::new(0),
        });
        let metrics = Arc::new(CollectorMetrics::new());
        let task = spawn(
            Worm {
                store: GatedStore {
                    inner: LocalStore::new(dir.path().join("worm")).unwrap(),
                    gate: gate.clone(),
                },
                prefix: "t".into(),
                key: RecoveryPrivateKey::generate().public().clone(),
                compress: None,
                keys: Arc::new(keys()),
                store_dir,
                config,
                writer: writer.clone(),
                metrics: metrics.clone(),
            },
            cancel.clone(),
        );
        // The first piece is held in its upload while more redo becomes durable.
        tokio::time::timeout(Duration::from_secs(10), gate.entered.notified())
            .await
            .expect("the first piece's upload");
        append(4096).await.unwrap();
        tokio::time::sleep(Duration::from_millis(600)).await;
        gate.release.add_permits(1);
        let name = stream.to_string();
        let t = Instant::now();
        while metrics.worm_pieces.with(&name).get() < 2 {
            assert!(t.elapsed() < Duration::from_secs(10), "two pieces in WORM");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        // The second piece's redo was durable for the whole 600 ms the first upload took:
        // its durable -> in WORM counts them (it read ~50 ms when it was first looked at
        // after the upload), and so the lag did during the upload.
        let text = metrics.registry.render();
        let bucket = |le: &str| {
            text.lines()
                .find_map(|l| {
                    l.strip_prefix(&format!(
                        "redovault_collector_worm_latency_seconds_bucket{{le=\"{le}\"}} "
                    ))
                })
                .and_then(|v| v.parse::<u64>().ok())
        };
        assert_eq!(bucket("+Inf"), Some(2), "{text}");
        assert_eq!(bucket("0.5"), Some(0), "{text}");
        cancel.cancel();
        task.await.unwrap();
    }
}
