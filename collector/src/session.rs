//! One extractor session: handshake, Hello → Welcome, then Data → writer → Ack.
//!
//! ```text
//! accept ─► security handshake (TLS 1.3 + client certificate, or legacy PSK)
//!        ─► Hello within the handshake timeout: version, extractor id = certificate
//!           identity, allow-list, store not failed, stream claimed (see server.rs)
//!        ─► Welcome { resume: the durable end of the stream, last durable commit }
//!        ─► reader: Data (starts where the previous one ended, or before: a resend,
//!           compared first, see below) → writer queue
//!           acker:  in order, each append's answer → Ack { durable end, last commit }
//!           sender: Acks, Errors, and Heartbeats when idle
//! ```
//!
//! - **An Ack is sent only for an append the writer answered `Ok`**, which it does only after
//!   the fsync covering it returned; its position is the stream's durable end then.
//! - Appends are pipelined: the reader queues each Data with the writer
//!   ([`WriterHandle::submit`](crate::writer::WriterHandle::submit)) and goes on reading
//!   (within the extractor's window), the acker waits for the answers in order. So one fsync
//!   covers every Data that arrived meanwhile, from this stream and others.
//! - **A Data that starts before the session's position** (a resend after a lost Ack or a
//!   reconnect) waits until the session's earlier Data is answered, then is compared with
//!   the durable redo read back from the segments ([`crate::resend`]): identical bytes are
//!   not written again (a wholly held Data gets an Ack of the durable end, the rest of a
//!   partly held one is appended); **different bytes are refused** with an ERROR
//!   `ALARM: divergent redo` (stream, position, first differing offset, peer, extractor id),
//!   `redovault_collector_divergent_redo_total`, an Error to the peer, and the end of the
//!   session; nothing stored is touched, later sessions are served.
//! - Any refusal (bad Hello, not authorized, a frame or message error, Data out of place)
//!   is logged once at WARN with the peer address, the certificate identity and the
//!   reason, counted in `redovault_collector_refused_total`, told to the peer in a Reject or
//!   Error message when the link still works, and ends only this session.
//! - A store failure (disk full, I/O error) ends the session with an Error and no Ack;
//!   later Hellos get `Reject(Unavailable)` until the collector is restarted.
//! - If the extractor's checkpoint (Hello `from`) is ahead of the stream's durable end, this
//!   collector lost redo it acknowledged (a restored or replaced store): logged at ERROR and
//!   counted; the Welcome asks for a resend from the durable end.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use redovault::wire::message::{
    Ack, Capabilities, Data, Failure, Hello, Message, PROTOCOL_VERSION, Reject, RejectCode, Welcome,
};
use redovault::wire::transport::{Link, LinkErrorKind, LinkMode, LinkSender};
use redovault::wire::{StreamId, StreamPos, latency};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::allow::allowed;
use crate::ctx::{Claim, ClaimError, Ctx};
use crate::metrics::link_reason;
use crate::resend::{self, Resend, ResendError};
use crate::store::StreamStoreError;
use crate::writer::{AppendError, AppendRequest, PendingAck};

/// Appends queued with the writer and not yet answered, per session (each holds at most one
/// Data frame: 8 MiB at most, so this bounds memory together with the extractor's window).
const TICKETS: usize = 256;

/// How long a replacing session waits for the session it replaces to drain.
const REPLACE_WAIT: Duration = Duration::from_secs(30);

/// How long queued Acks and Errors may take to reach the peer once the session ends.
const FLUSH_WAIT: Duration = Duration::from_secs(2);

/// Serves one accepted connection to its end.
pub(crate) async fn run(tcp: TcpStream, peer: SocketAddr, ctx: &Ctx, cancel: CancellationToken) {
    let link = match Link::accept(tcp, peer, &ctx.security, &ctx.link).await {
        Ok(l) => l,
        Err(e) => {
            ctx.metrics.refused_link(&e);
            if link_reason(&e) == "closed" {
                // The peer went away before the handshake (a port probe, a health check).
                tracing::info!(%peer, error = %e, "connection closed during the handshake");
            } else {
                tracing::warn!(
                    %peer,
                    reason = link_reason(&e),
                    authentication = e.is_authentication(),
                    error = %e,
                    "connection refused"
                );
            }
            return;
        }
    };
    let identity = link
        .peer()
        .identity
        .as_ref()
        .map_or_else(|| "none".to_string(), ToString::to_string);
    let span = tracing::info_span!("session", %peer, %identity, mode = %link.peer().mode);
    session(link, ctx, cancel).instrument(span).await;
}

/// Sends a Reject and closes.
async fn reject(link: Link, ctx: &Ctx, code: RejectCode, reason: String, metric: &'static str) {
    ctx.metrics.refused.inc(metric);
    tracing::warn!(code = ?code, %reason, "session refused");
    let (mut tx, _rx) = link.split();
    let _ = tx.send(&Message::Reject(Reject { code, reason })).await;
    let _ = tx.shutdown().await;
}

/// Sends an Error and closes.
async fn fail(tx: &mut LinkSender, reason: String) {
    let _ = tx.send(&Message::Error(Failure { reason })).await;
    let _ = tx.shutdown().await;
}

async fn session(mut link: Link, ctx: &Ctx, cancel: CancellationToken) {
    let peer = link.peer().clone();
    let hello = match tokio::time::timeout(ctx.link.handshake_timeout, link.recv()).await {
        Err(_) => {
            ctx.metrics.refused.inc("hello_timeout");
            tracing::warn!(timeout = ?ctx.link.handshake_timeout, "session refused: no Hello in time");
            let (mut tx, _) = link.split();
            fail(&mut tx, "no Hello in time".into()).await;
            return;
        }
        Ok(Err(e)) => {
            ctx.metrics.refused_link(&e);
            tracing::warn!(reason = link_reason(&e), error = %e, "session refused before Hello");
            let (mut tx, _) = link.split();
            fail(&mut tx, e.kind.to_string()).await;
            return;
        }
        Ok(Ok(Message::Hello(h))) => h,
        Ok(Ok(other)) => {
            ctx.metrics.refused.inc("protocol");
            tracing::warn!(
                got = other.name(),
                "session refused: the first message is not a Hello"
            );
            let (mut tx, _) = link.split();
            fail(&mut tx, format!("expected Hello, got {}", other.name())).await;
            return;
        }
    };
    let span =
        tracing::info_span!("stream", stream = %hello.stream, extractor = %hello.extractor_id);
    hello_then_data(link, peer.addr, peer.mode, hello, ctx, cancel)
        .instrument(span)
        .await;
}

async fn hello_then_data(
    link: Link,
    peer: SocketAddr,
    mode: LinkMode,
    hello: Hello,
    ctx: &Ctx,
    cancel: CancellationToken,
) {
    let stream = hello.stream;
    if hello.protocol_version != PROTOCOL_VERSION {
        let reason = format!(
            "protocol version {} not supported (this collector speaks {PROTOCOL_VERSION})",
            hello.protocol_version
        );
        return reject(link, ctx, RejectCode::UnsupportedVersion, reason, "version").await;
    }
    if mode == LinkMode::Tls {
        let id = link.peer().identity.clone().unwrap_or_default();
        if !id.is(&hello.extractor_id) {
            ctx.metrics.auth_failures.inc("identity_mismatch");
            let reason = format!(
                "the certificate ({id}) does not name extractor id {:?}",
                hello.extractor_id
            );
            return reject(
                link,
                ctx,
                RejectCode::NotAuthorized,
                reason,
                "identity_mismatch",
            )
            .await;
        }
    }
    if !allowed(&ctx.extractors, &hello.extractor_id, stream.db_id.0) {
        ctx.metrics.auth_failures.inc("not_allowed");
        let reason = format!(
            "extractor {:?} may not ship database {} here",
            hello.extractor_id, stream.db_id
        );
        return reject(link, ctx, RejectCode::NotAuthorized, reason, "not_allowed").await;
    }
    if let Some(f) = ctx.writer.failure() {
        let reason = format!("the collector's store failed ({f}); retry after it is repaired");
        return reject(link, ctx, RejectCode::Unavailable, reason, "store_failed").await;
    }
    let stop = cancel.child_token();
    let claim = ctx
        .streams
        .claim(
            stream,
            &hello.extractor_id,
            peer,
            stop.clone(),
            REPLACE_WAIT,
        )
        .await;
    let (claim, replaced) = match claim {
        Ok(c) => c,
        Err(ClaimError::Busy {
            extractor,
            peer: other,
        }) => {
            let reason =
                format!("stream {stream} is being shipped by extractor {extractor:?} from {other}");
            return reject(link, ctx, RejectCode::StreamBusy, reason, "stream_busy").await;
        }
    };
    if let Some(old) = replaced {
        tracing::warn!(old_peer = %old, "session replaces the stream's previous session (reconnect)");
    }
    let name = stream.to_string();
    let durable = ctx.writer.durable(stream);
    let (resume, last_commit) = match durable {
        Some(d) => (d.resume_pos(), d.last_commit),
        None => (
            StreamPos {
                seq: hello.from.seq,
                offset: 0,
            },
            None,
        ),
    };
    if hello.from > resume {
        ctx.metrics.extractor_ahead.with(&name).inc();
        tracing::error!(
            extractor_checkpoint = %hello.from,
            durable_end = %resume,
            "ALARM: the extractor's checkpoint is ahead of what this collector holds durably: \
             acknowledged redo is missing here (store lost, replaced or restored from an older \
             copy); asking for a resend from the durable end"
        );
    }
    ctx.metrics.sessions.with(&name).inc();
    // The alarm's series exists at 0 from the first session, so a rule sees it rise.
    ctx.metrics.divergent.with(&name);
    ctx.metrics
        .set_session(&name, true, claim.previous_sessions > 0);
    // Answer an offer (and only an offer: an extractor before issue 19 refuses the field)
    // with what this collector takes of it. Compressed Data is decoded either way.
    let accepted = hello
        .capabilities
        .map(|offer| Capabilities::zstd(ctx.accept_compression && offer.has_zstd()));
    tracing::info!(
        from = %hello.from,
        zstd = accepted.is_some_and(Capabilities::has_zstd),
        %resume,
        db_name = %hello.db_name,
        last_commit_scn = last_commit.map(|c| c.scn.0),
        "session started"
    );
    let (mut tx, rx) = link.split();
    if let Err(e) = tx
        .send(&Message::Welcome(Welcome {
            resume,
            last_commit,
            capabilities: accepted,
        }))
        .await
    {
        tracing::info!(error = %e, "session ended before the Welcome was sent");
        ctx.metrics.set_session(&name, false, false);
        return;
    }
    let who = Who {
        peer,
        extractor: hello.extractor_id.clone(),
    };
    let stats = data_loop(tx, rx, stream, resume, &who, ctx, &stop, &claim).await;
    ctx.metrics.set_session(&name, false, false);
    tracing::info!(
        data = stats.data,
        bytes = stats.bytes,
        acks = stats.acks,
        end = %stats.end,
        "session ended"
    );
    drop(claim);
}

/// The peer of a session, named in its alarms.
struct Who {
    peer: SocketAddr,
    extractor: String,
}

struct Ticket {
    pending: PendingAck,
    end: StreamPos,
    commits: usize,
    at: Instant,
}

#[derive(Debug)]
struct Stats {
    data: u64,
    bytes: u64,
    acks: u64,
    end: StreamPos,
}

#[allow(clippy::too_many_arguments)]
async fn data_loop(
    tx: LinkSender,
    mut rx: redovault::wire::transport::LinkReceiver,
    stream: StreamId,
    resume: StreamPos,
    who: &Who,
    ctx: &Ctx,
    stop: &CancellationToken,
    claim: &Claim<'_>,
) -> Stats {
    let name = stream.to_string();
    let m = &ctx.metrics;
    let (out_tx, out_rx) = mpsc::channel::<Message>(TICKETS + 8);
    let (tickets_tx, mut tickets_rx) = mpsc::channel::<Ticket>(TICKETS);
    // How many tickets the acker has answered: a resend waits until every earlier Data of
    // this session is answered, so it is compared with durable redo only.
    let (answered_tx, mut answered_rx) = watch::channel(0u64);
    // `stop`: this session is replaced or the collector stops (drop the connection at once);
    // `ended`: it ends on its own (an error; queued Acks and Errors are still flushed).
    let ended = stop.child_token();
    let send_cancel = CancellationToken::new();
    let mut send_task = {
        let stop = ended.clone();
        let send_cancel = send_cancel.clone();
        tokio::spawn(
            async move {
                if let Err(e) = tx.run(out_rx, send_cancel).await {
                    tracing::info!(error = %e, "session: sending failed");
                    stop.cancel();
                }
            }
            .in_current_span(),
        )
    };
    let reader_out = out_tx.clone();
    let reader_end = ended.clone();
    let name = &name;
    let reader = async move {
        let stop = &reader_end;
        let mut expected = resume;
        let (mut data, mut bytes) = (0u64, 0u64);
        let mut queued = 0u64;
        let mut resend_acks = 0u64;
        loop {
            let msg = tokio::select! {
                biased;
                () = stop.cancelled() => break,
                r = rx.recv() => r,
            };
            let d = match msg {
                Ok(Message::Data(d)) => d,
                Ok(other) => {
                    m.refused.inc("protocol");
                    tracing::warn!(got = other.name(), "session ended: unexpected message");
                    let _ = reader_out
                        .send(Message::Error(Failure {
                            reason: format!("unexpected {} during the session", other.name()),
                        }))
                        .await;
                    break;
                }
                Err(e) if matches!(e.kind, LinkErrorKind::Closed) => {
                    tracing::info!("the extractor closed the session");
                    break;
                }
                Err(e) => {
                    m.refused_link(&e);
                    tracing::warn!(reason = link_reason(&e), error = %e, "session ended: link error");
                    let _ = reader_out
                        .send(Message::Error(Failure {
                            reason: e.kind.to_string(),
                        }))
                        .await;
                    break;
                }
            };
            if d.pos > expected {
                m.refused.inc("out_of_place");
                tracing::warn!(pos = %d.pos, %expected, "session ended: Data out of place");
                let _ = reader_out
                    .send(Message::Error(Failure {
                        reason: format!("Data at {} but the stream continues at {expected}", d.pos),
                    }))
                    .await;
                break;
            }
            let end = d.end();
            let len = d.bytes.len() as u64;
            let at = Instant::now();
            latency::trace("data_received", end, None);
            data += 1;
            bytes += len;
            m.received_bytes.with(name).add(len);
            // From where the Data is new: all of it, or what follows the held redo.
            let mut from = d.pos;
            if d.pos < expected {
                // A resend of acknowledged redo (rare: a lost Ack, a reconnect, another
                // collector's window): wait until this session's earlier Data is durable,
                // then compare with the segments before anything is queued.
                let drained = tokio::select! {
                    biased;
                    () = stop.cancelled() => false,
                    r = answered_rx.wait_for(|n| *n >= queued) => r.is_ok(),
                };
                if !drained {
                    break;
                }
                match compare_resend(ctx, stream, &d).await {
                    Ok(Resend::Covered { duplicate }) => {
                        m.duplicate_bytes.with(name).add(duplicate);
                        let Some(durable) = ctx.writer.durable(stream) else {
                            break;
                        };
                        tracing::info!(pos = %d.pos, %end, duplicate, "resend of held redo: acknowledged, nothing stored");
                        let ack = Message::Ack(Ack {
                            durable: durable.resume_pos(),
                            last_commit: durable.last_commit,
                        });
                        if reader_out.send(ack).await.is_err() {
                            break;
                        }
                        resend_acks += 1;
                        continue;
                    }
                    Ok(Resend::Extend { duplicate, from: f }) => {
                        m.duplicate_bytes.with(name).add(duplicate);
                        tracing::info!(pos = %d.pos, new_from = %f, duplicate, "resend of held redo with new redo after it");
                        from = f;
                    }
                    Err(e) => {
                        refuse_resend(ctx, name, who, stream, &d, &e, &reader_out).await;
                        break;
                    }
                }
            }
            expected = end;
            if let Ok(mut f) = claim.in_flight.lock() {
                f.push(end, len, at);
            }
            let skip =
                usize::try_from(from.offset.saturating_sub(d.pos.offset)).unwrap_or(usize::MAX);
            let commits: Vec<_> = d.commits.into_iter().filter(|c| c.end > from).collect();
            let req = AppendRequest {
                stream,
                pos: from,
                bytes: d.bytes.get(skip..).unwrap_or_default().to_vec(),
                commits,
                log_end: d.log_end.is_some(),
            };
            let commits = req.commits.len();
            let submitted = tokio::select! {
                biased;
                () = stop.cancelled() => break,
                r = ctx.writer.submit(req) => r,
            };
            match submitted {
                Ok(pending) => {
                    queued += 1;
                    let t = Ticket {
                        pending,
                        end,
                        commits,
                        at,
                    };
                    if tickets_tx.send(t).await.is_err() {
                        break;
                    }
                }
                Err(e) => {
                    // The store failed before this append was queued: nothing is acked.
                    report_append_error(ctx, who, stream, &reader_out, &e, from).await;
                    stop.cancel();
                    break;
                }
            }
        }
        (data, bytes, resend_acks)
    };
    let acker_out = out_tx;
    let acker_end = ended.clone();
    let acker = async move {
        let stop = &acker_end;
        let mut failed = false;
        let mut acks = 0u64;
        let mut end = resume;
        let mut answered = 0u64;
        while let Some(t) = tickets_rx.recv().await {
            let answer = t.pending.wait().await;
            latency::trace("ack_ready", t.end, None);
            answered += 1;
            if failed {
                answered_tx.send_replace(answered);
                continue;
            }
            match answer {
                Ok(ack) => {
                    let durable = ack.durable.resume_pos();
                    end = durable;
                    if let Ok(mut f) = claim.in_flight.lock() {
                        f.durable(durable);
                    }
                    m.stored_bytes.with(name).add(ack.stored);
                    m.duplicate_bytes.with(name).add(ack.duplicate);
                    if ack.duplicate == 0 {
                        m.commits.with(name).add(t.commits as u64);
                    }
                    m.set_durable(name, &ack.durable);
                    let sent = acker_out
                        .send(Message::Ack(Ack {
                            durable,
                            last_commit: ack.durable.last_commit,
                        }))
                        .await;
                    m.ack_latency
                        .with(name)
                        .observe(t.at.elapsed().as_secs_f64());
                    acks += 1;
                    if sent.is_err() {
                        failed = true;
                        stop.cancel();
                    }
                    debug_assert!(durable >= t.end);
                }
                Err(e) => {
                    failed = true;
                    report_append_error(ctx, who, stream, &acker_out, &e, t.end).await;
                    stop.cancel();
                }
            }
            // After the Ack (or Error) is queued: a resend waiting on this sees it sent.
            answered_tx.send_replace(answered);
        }
        (acks, end)
    };
    let ((data, bytes, resend_acks), (acks, end)) = tokio::join!(reader, acker);
    // Everything queued is answered; flush what is left for the peer, unless this session
    // was replaced or the collector stops (then the connection is dropped at once).
    if stop.is_cancelled() {
        send_cancel.cancel();
    }
    if tokio::time::timeout(FLUSH_WAIT, &mut send_task)
        .await
        .is_err()
    {
        send_cancel.cancel();
        let _ = send_task.await;
    }
    Stats {
        data,
        bytes,
        acks: acks + resend_acks,
        end,
    }
}

/// Compares a Data that starts before the session's position with the durable redo: the
/// store is held only for a snapshot, the segments are read and authenticated on the
/// blocking pool while appends go on.
async fn compare_resend(ctx: &Ctx, stream: StreamId, d: &Data) -> Result<Resend, ResendError> {
    let Some((snap, keys)) = ctx.writer.snapshot(stream).await.map_err(|e| {
        ResendError::Unreadable(StreamStoreError::Failed {
            reason: e.to_string(),
        })
    })?
    else {
        let resume = StreamPos {
            seq: d.pos.seq,
            offset: 0,
        };
        return Err(ResendError::NotHeld { pos: d.pos, resume });
    };
    let (pos, bytes, log_end) = (d.pos, d.bytes.clone(), d.log_end.is_some());
    tokio::task::spawn_blocking(move || resend::check(&snap, &keys, pos, &bytes, log_end))
        .await
        .unwrap_or_else(|e| {
            Err(ResendError::Unreadable(StreamStoreError::Failed {
                reason: format!("the comparison task failed: {e}"),
            }))
        })
}

/// Refuses an overlapping Data: divergent redo raises the alarm, the rest is an ordinary
/// refusal. Either way the peer gets an Error naming the stream and the position, and
/// nothing stored was touched (the comparison only reads).
async fn refuse_resend(
    ctx: &Ctx,
    name: &str,
    who: &Who,
    stream: StreamId,
    d: &Data,
    e: &ResendError,
    out: &mpsc::Sender<Message>,
) {
    let m = &ctx.metrics;
    let reason = match e {
        ResendError::Divergent { at, reason, .. } => {
            divergent_alarm(ctx, name, who, stream, d.pos, *at, reason);
            format!("stream {stream}: {e}; refused, nothing stored was changed")
        }
        ResendError::Gap { .. } | ResendError::NotHeld { .. } => {
            m.refused.inc("out_of_place");
            tracing::warn!(pos = %d.pos, error = %e, "session ended: Data out of place");
            format!("stream {stream}: {e}")
        }
        ResendError::Unreadable(se) => {
            m.refused.inc("resend_unreadable");
            tracing::warn!(pos = %d.pos, error = %se, "session ended: a resend could not be compared");
            format!("stream {stream}: Data at {}: {e}", d.pos)
        }
    };
    let _ = out.send(Message::Error(Failure { reason })).await;
}

/// The alarm of different bytes at an acknowledged position: this copy and the extractor
/// (or whoever holds its certificate) disagree about redo this collector acknowledged.
fn divergent_alarm(
    ctx: &Ctx,
    name: &str,
    who: &Who,
    stream: StreamId,
    pos: StreamPos,
    at: StreamPos,
    reason: &str,
) {
    ctx.metrics.divergent.with(name).inc();
    ctx.metrics.refused.inc("divergent_redo");
    tracing::error!(
        %stream,
        %pos,
        first_difference = %at,
        peer = %who.peer,
        extractor = %who.extractor,
        reason,
        "ALARM: divergent redo: stream {stream}: the Data at {pos} from extractor {:?} ({}) \
         differs from the redo this collector acknowledged, first at {at} ({reason}); \
         refused, nothing stored was changed",
        who.extractor,
        who.peer,
    );
}

async fn report_append_error(
    ctx: &Ctx,
    who: &Who,
    stream: StreamId,
    out: &mpsc::Sender<Message>,
    e: &AppendError,
    at: StreamPos,
) {
    let reason = match e {
        // Compared in the store too (the reader compared before queueing; this only fires
        // if held redo changed in between): the same alarm.
        AppendError::Refused(se) => match **se {
            StreamStoreError::Divergent { pos, at, .. } => {
                divergent_alarm(
                    ctx,
                    &stream.to_string(),
                    who,
                    stream,
                    pos,
                    at,
                    "different bytes",
                );
                format!("stream {stream}: append refused: {se}; nothing stored was changed")
            }
            _ => {
                ctx.metrics.refused.inc("append_refused");
                tracing::warn!(pos = %at, error = %se, "append refused: session ended");
                format!("append refused: {se}")
            }
        },
        AppendError::Failed(r) => {
            ctx.metrics.store_failed.set(1.0);
            tracing::error!(
                pos = %at,
                reason = %r,
                "collector store failed: nothing more is acknowledged until a restart"
            );
            format!("collector store failed ({r}); nothing more is acknowledged")
        }
        AppendError::NoSpace(r) => {
            ctx.metrics.disk_full.set(1.0);
            tracing::error!(
                pos = %at,
                reason = %r,
                "collector disk full: append not acknowledged; the extractor resends after reconnecting"
            );
            format!("collector disk full ({r}); nothing acknowledged, send again later")
        }
        AppendError::Stopped => "the collector is stopping".to_string(),
    };
    let _ = out.send(Message::Error(Failure { reason })).await;
}
