//! The collector's listener: many extractors at once, one session task per connection.
//!
//! ```text
//! semaphore permit (max_connections) ──► accept ──► session task (crate::session):
//!   handshake (TLS 1.3 + client cert | legacy Blowfish) ──► Hello ──► StreamTable claim
//!     same extractor id, live session: cancel + drain the old one ──► Welcome
//!     other extractor id, live session: Reject(StreamBusy)
//!   ──► Data ──► group-commit writer ──► Ack
//! cancel token ──► stop accepting, cancel every session (each drains), wait for them
//! ```
//!
//! Invariants:
//! - The permit is taken *before* `accept`: further connections wait in the kernel's backlog
//!   (backpressure at the door), and a slow or hostile client holds one permit for at most
//!   the handshake timeout before it has authenticated.
//! - At most one live session per stream (`StreamTable`), so only one session ever appends
//!   to a stream. A replaced session is drained (every append it queued answered by the
//!   writer) before the new one computes its Welcome.
//! - A refused or failing connection is logged with its peer address (and certificate
//!   identity once known) and counted; it never affects the other sessions.
//!
//! Why replace rather than refuse the same extractor: a reconnecting extractor is the usual
//! cause (its old TCP connection half-open after a network cut or a crash of its host would
//! block the stream until the dead-peer timeout, delaying the catch-up exactly when the
//! recovery point matters); safe because the store enforces continuity and compares resent
//! bytes. Two extractors shipping one thread is a configuration error, hence `StreamBusy`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use redovault::wire::StreamId;
use redovault::wire::transport::{LinkConfig, ServerSecurity};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::allow::ExtractorAllow;
use crate::ctx::{Ctx, StreamTable};
use crate::metrics::CollectorMetrics;
use crate::store::Store;
use crate::writer::{self, WriterConfig, WriterHandle};

/// Everything the server needs besides the store.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// Address to listen on (port 0: any free port).
    pub listen: SocketAddr,
    /// Connections served at once.
    pub max_connections: usize,
    /// TLS (default) or the legacy Blowfish channel.
    pub security: ServerSecurity,
    /// Link tunables (heartbeats, handshake timeout, max frame).
    pub link: LinkConfig,
    /// Allow-list of extractors; empty: any authenticated extractor.
    pub extractors: Vec<ExtractorAllow>,
    /// Group-commit tuning.
    pub writer: WriterConfig,
    /// Prometheus endpoint; `None`: off.
    pub metrics_listen: Option<SocketAddr>,
    /// Accept an extractor's offer of zstd-compressed Data (`[link] accept_compression`).
    pub accept_compression: bool,
}

/// Why the server cannot start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The listening address cannot be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    /// The metrics address cannot be bound.
    #[error("cannot serve metrics on {addr}: {source}")]
    Metrics {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// A running collector server.
#[derive(Debug)]
pub struct Running {
    /// The address it listens on.
    pub addr: SocketAddr,
    /// The metrics endpoint, if on.
    pub metrics_addr: Option<SocketAddr>,
    /// The writer (durable state, commits, rebuild).
    pub writer: WriterHandle,
    pub metrics: Arc<CollectorMetrics>,
    cancel: CancellationToken,
    writer_cancel: CancellationToken,
    accept: tokio::task::JoinHandle<()>,
    writer_task: tokio::task::JoinHandle<Option<Store>>,
}

impl Running {
    /// Stops accepting, ends every session (each drains what it queued), stops the writer
    /// and gives the store back.
    pub async fn stop(self) -> Option<Store> {
        self.cancel.cancel();
        let _ = self.accept.await;
        let Running {
            writer,
            writer_task,
            writer_cancel,
            ..
        } = self;
        // Last handle gone first, so that the writer gives the store back.
        drop(writer);
        writer_cancel.cancel();
        writer_task.await.ok().flatten()
    }

    /// Waits until the server stops (its token is cancelled).
    pub async fn wait(self) -> Option<Store> {
        self.cancel.cancelled().await;
        self.stop().await
    }
}

/// `GET /status` beside `/metrics`: the collector's [`crate::status`] page.
fn status_page(metrics: &Arc<CollectorMetrics>) -> redovault::telemetry::JsonPage {
    let board = metrics.status.clone();
    redovault::telemetry::JsonPage {
        path: "/status",
        render: Arc::new(move || board.render()),
    }
}

/// Starts the server on the current runtime: binds the listener (and the metrics endpoint),
/// starts the writer over `store`, and accepts until `cancel` fires.
pub async fn start(
    store: Store,
    opts: ServerOptions,
    cancel: CancellationToken,
) -> Result<Running, ServeError> {
    let listener = TcpListener::bind(opts.listen)
        .await
        .map_err(|source| ServeError::Bind {
            addr: opts.listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| ServeError::Bind {
        addr: opts.listen,
        source,
    })?;
    let metrics = Arc::new(CollectorMetrics::new());
    let metrics_addr = match opts.metrics_listen {
        Some(m) => Some(
            redovault::telemetry::serve_metrics_with(
                m,
                metrics.registry.clone(),
                vec![status_page(&metrics)],
                cancel.clone(),
            )
            .await
            .map_err(|source| ServeError::Metrics { addr: m, source })?,
        ),
        None => None,
    };
    // The writer outlives the sessions: it is stopped by `Running::stop` once they drained.
    let writer_cancel = CancellationToken::new();
    let (writer, writer_task) = writer::spawn(store, opts.writer, writer_cancel.clone());
    for (s, d) in writer.durable_all() {
        metrics.set_durable(&s.to_string(), &d);
    }
    let ctx = Arc::new(Ctx {
        security: opts.security.clone(),
        link: opts.link.clone(),
        extractors: opts.extractors.clone(),
        writer: writer.clone(),
        metrics: metrics.clone(),
        streams: StreamTable::default(),
        accept_compression: opts.accept_compression,
        active: AtomicU64::new(0),
    });
    tracing::info!(
        %addr,
        metrics = ?metrics_addr,
        max_connections = opts.max_connections,
        mode = match opts.security {
            ServerSecurity::Tls(_) => "tls",
            ServerSecurity::LegacyBlowfish(_) => "LEGACY blowfish",
        },
        "collector listening"
    );
    let accept = tokio::spawn(accept_loop(
        listener,
        ctx,
        opts.max_connections.max(1),
        cancel.clone(),
    ));
    Ok(Running {
        addr,
        metrics_addr,
        writer,
        metrics,
        cancel,
        writer_cancel,
        accept,
        writer_task,
    })
}

async fn accept_loop(
    listener: TcpListener,
    ctx: Arc<Ctx>,
    max_connections: usize,
    cancel: CancellationToken,
) {
    let limit = Arc::new(Semaphore::new(max_connections));
    let mut sessions = JoinSet::new();
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut accept_errors = 0u32;
    loop {
        // The permit comes first: no accept beyond the limit.
        let permit = tokio::select! {
            biased;
            () = cancel.cancelled() => break,
            _ = tick.tick() => { refresh(&ctx); continue; }
            p = limit.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
        };
        let (tcp, peer) = loop {
            tokio::select! {
                biased;
                () = cancel.cancelled() => break None,
                _ = tick.tick() => refresh(&ctx),
                Some(_) = sessions.join_next(), if !sessions.is_empty() => {}
                r = listener.accept() => match r {
                    Ok(x) => { accept_errors = 0; break Some(x) }
                    Err(e) => {
                        // EMFILE and the like: back off instead of spinning.
                        accept_errors = accept_errors.saturating_add(1);
                        let pause = Duration::from_millis(10u64 << accept_errors.min(7));
                        tracing::warn!(error = %e, ?pause, "accept failed");
                        tokio::time::sleep(pause).await;
                    }
                },
            }
        }
        .unzip();
        let (Some(tcp), Some(peer)) = (tcp, peer) else {
            break;
        };
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(%peer, error = %e, "TCP_NODELAY not set");
        }
        ctx.metrics.connections_total.inc();
        let ctx = ctx.clone();
        let token = cancel.child_token();
        sessions.spawn(async move {
            let n = ctx.active.fetch_add(1, Ordering::Relaxed) + 1;
            ctx.metrics.connections_active.set(n as f64);
            crate::session::run(tcp, peer, &ctx, token).await;
            let n = ctx.active.fetch_sub(1, Ordering::Relaxed) - 1;
            ctx.metrics.connections_active.set(n as f64);
            drop(permit);
        });
        while sessions.try_join_next().is_some() {}
    }
    tracing::info!(
        sessions = sessions.len(),
        "collector stopping: ending sessions"
    );
    while sessions.join_next().await.is_some() {}
    refresh(&ctx);
}

/// Periodic metrics: lag per stream, which incarnations are live, writer counters.
fn refresh(ctx: &Ctx) {
    let lags = ctx.streams.lags();
    let mut known: Vec<StreamId> = ctx.writer.durable_all().into_keys().collect();
    known.extend(lags.iter().map(|(s, _, _)| *s));
    known.sort();
    known.dedup();
    ctx.metrics.set_live(&known);
    for (s, bytes, age) in lags {
        let name = s.to_string();
        ctx.metrics.lag_bytes.with(&name).set(bytes as f64);
        ctx.metrics
            .lag_ms
            .with(&name)
            .set(age.as_secs_f64() * 1000.0);
    }
    ctx.metrics.refresh_writer(&ctx.writer);
}

#[cfg(test)]
#[path = "server_tests.rs"]
mod tests;
