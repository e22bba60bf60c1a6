//! The extractor daemon: per redo thread, one shipper per collector and the thread's
//! protection task ([`crate::fanout`]), the source probe ([`crate::source`]), the metrics
//! endpoint, until cancelled.
//!
//! Start-up: at least one `[collector]` is required; each one's certificates (or the legacy
//! PSK) are loaded, the tailers are positioned from their checkpoints (or the CURRENT logs,
//! see [`crate::streams`]), and each stream ships to each collector on its own task with its
//! own sessions. A stream or a collector that fails never stops the others; the daemon ends
//! only when the token is cancelled (SIGTERM, SIGINT) or when it cannot start.

use std::net::SocketAddr;
use std::sync::Arc;

use redovault::wire::StreamId;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::config::LogSources;
use crate::fanout::{Plan, Target, spawn_stream};
use crate::metrics::ExtractorMetrics;
use crate::online::OnlineLogs;
use crate::settings::Settings;
use crate::ship::ShipConfig;
use crate::source::{PROBE_INTERVAL, SourceProbe};
use crate::streams::{StartError, start_streams};

/// Why the daemon cannot start.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The configuration has no `[collector]` section.
    #[error("the configuration has no [collector] section: nowhere to ship")]
    NoCollector,
    /// The link's certificates or PSK cannot be loaded.
    #[error("{0}")]
    Security(String),
    /// The tailers cannot be positioned.
    #[error(transparent)]
    Start(#[from] StartError),
    /// A collector's own checkpoint cannot be opened.
    #[error(transparent)]
    Checkpoint(#[from] crate::checkpoint::CheckpointError),
    /// The metrics address cannot be bound.
    #[error("cannot serve metrics on {addr}: {source}")]
    Metrics {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// The database name in the online logs' headers of `stream` (for the Hello).
pub fn db_name_of(sources: &LogSources, stream: StreamId) -> String {
    OnlineLogs::new(&sources.groups)
        .scan()
        .iter()
        .filter_map(|v| v.log())
        .find(|l| l.stream == stream)
        .map(|l| l.redo.db_name.trim().to_string())
        .filter(|n| !n.is_empty() && !n.chars().any(char::is_control))
        .unwrap_or_else(|| "UNKNOWN".to_string())
}

/// A started daemon: its metrics and the address of their endpoint.
#[derive(Debug)]
pub struct Started {
    pub metrics: Arc<ExtractorMetrics>,
    /// Where they are served, if anywhere.
    pub metrics_addr: Option<SocketAddr>,
    /// The streams shipped.
    pub streams: Vec<StreamId>,
    tasks: JoinSet<()>,
}

impl Started {
    /// Waits until a shipper (or a protection task) ends. They end only when cancelled:
    /// before that, an end is a failure (a panic), returned as an error naming it.
    pub async fn next_end(&mut self) -> Result<(), String> {
        match self.tasks.join_next().await {
            None | Some(Ok(())) => Ok(()),
            Some(Err(e)) => Err(format!("a shipper task failed: {e}")),
        }
    }

    /// Waits until every shipper has ended (after the token was cancelled).
    pub async fn wait(mut self) {
        while self.tasks.join_next().await.is_some() {}
    }
}

/// Starts the daemon on the current runtime.
pub async fn start(settings: &Settings, cancel: CancellationToken) -> Result<Started, RunError> {
    if settings.collectors.items.is_empty() {
        return Err(RunError::NoCollector);
    }
    let mut securities = Vec::with_capacity(settings.collectors.items.len());
    for target in &settings.collectors.items {
        let security = target.load_security().map_err(RunError::Security)?;
        if matches!(
            security,
            redovault::wire::transport::ClientSecurity::LegacyBlowfish(_)
        ) {
            warn!(
                collector = %target.name,
                "LEGACY link mode cipher = \"blowfish\": pre-shared key, no certificates, no \
                 forward secrecy; use TLS in production"
            );
        }
        securities.push(security);
    }
    let extract = settings.extract();
    let for_start = extract.clone();
    let starts = tokio::task::spawn_blocking(move || start_streams(&for_start))
        .await
        .map_err(|e| RunError::Security(format!("start the tailers: {e}")))??;
    let metrics = Arc::new(ExtractorMetrics::new());
    let metrics_addr = match settings.telemetry().metrics_listen {
        Some(a) => Some(
            redovault::telemetry::serve_metrics(a, metrics.registry.clone(), cancel.clone())
                .await
                .map_err(|source| RunError::Metrics { addr: a, source })?,
        ),
        None => None,
    };
    // The first collector's files: every collector's certificates are usually one PKI.
    if let Some(t) = settings.collectors.items.first()
        && t.cipher == crate::settings::Cipher::Tls
    {
        let files = [("client", t.cert.as_path()), ("ca", t.ca.as_path())];
        for e in redovault::telemetry::export_cert_expiry(&metrics.link_cert_expiry, &files) {
            warn!(error = %e, "link certificate expiry unknown (no metric for it)");
        }
    }
    let sources = extract.sources();
    let mut tasks = JoinSet::new();
    let mut streams = Vec::new();
    for s in starts {
        let stream = s.tailer.stream();
        let db_name = db_name_of(&sources, stream);
        let targets: Vec<Target> = settings
            .collectors
            .items
            .iter()
            .zip(&securities)
            .map(|(t, security)| Target {
                name: t.name.clone(),
                cfg: Arc::new(ShipConfig {
                    address: t.address.clone(),
                    security: security.clone(),
                    link: settings.link.config(),
                    window: settings.link.window as u32,
                    extractor_id: t.extractor_id.clone(),
                    db_name: db_name.clone(),
                    reconnect_min: settings.link.reconnect_min,
                    reconnect_max: settings.link.reconnect_max,
                    compress: settings.link.compression(),
                }),
            })
            .collect();
        let names: Vec<&str> = targets.iter().map(|t| t.name.as_str()).collect();
        info!(%stream, from = %s.from, resumed = s.resumed, collectors = %names.join(","),
            ack = settings.link.ack.as_str(), "shipping");
        let plan = Plan {
            targets: &targets,
            policy: settings.link.ack,
            sources: &sources,
            tail: extract.tail,
            state_dir: &extract.state.dir,
            metrics: &metrics,
        };
        spawn_stream(&mut tasks, s, &plan, None, &cancel)?;
        streams.push(stream);
    }
    let probed = streams.iter().map(|&s| (s, metrics.probe(s))).collect();
    let probe = SourceProbe::new(&sources, probed);
    tasks.spawn(probe.run(PROBE_INTERVAL, cancel.clone()));
    Ok(Started {
        metrics,
        metrics_addr,
        streams,
        tasks,
    })
}
