//! Alarms and the alert hook: the things an operator must act on, delivered outside the logs.
//!
//! An [`Alarm`] is always logged (`error!` for critical, `warn!` otherwise) and, when a hook is
//! configured, handed to it as one JSON object:
//! - [`AlertHook::Command`]: runs a program (argv, no shell) with the alarm as JSON on stdin
//!   (one line); a non-zero exit or a timeout counts as a failed delivery;
//! - [`AlertHook::Webhook`]: POSTs the JSON to a URL (HTTPS with an optional extra CA);
//!   a non-2xx answer or a timeout counts as a failed delivery.
//!
//! Delivery runs in its own task behind a bounded queue ([`QUEUE`]), so a slow hook never slows
//! the watcher; when the queue is full the alarm is still logged and counted as dropped. At
//! shutdown the queue is drained (each delivery bounded by the hook timeout).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio::io::AsyncWriteExt as _;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::telemetry::{Counter, CounterVec};

/// Alarms waiting for delivery; more are logged and counted as dropped.
pub const QUEUE: usize = 256;

/// What went wrong (stable snake_case names in JSON and metrics).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AlarmKind {
    /// An archived log stayed incomplete or damaged past the grace period.
    DamagedLog,
    /// A file the include patterns match is not a redo log at all (a datafile copy, say):
    /// left alone, never shipped; the patterns or the destination need a look.
    NotRedoLog,
    /// A log already shipped reappeared with other bytes (same name or same identity).
    ReplacedLog,
    /// Uploads keep failing (store unreachable, refusing, ...).
    UploadFailing,
    /// The oldest unshipped log is older than the backlog alarm age.
    Backlog,
    /// A sequence is missing while a later one of the same thread exists.
    Gap,
    /// An archived log disappeared before it was shipped.
    VanishedUnshipped,
    /// The manifest could not be written or sealed into WORM.
    Manifest,
    /// The store is not WORM or refuses the configuration.
    Store,
    /// An archive directory cannot be listed.
    ScanFailing,
    /// The verifier found tampering, a gap or a missing object.
    VerifyFindings,
    /// The verifier could not complete a run.
    VerifyFailed,
    /// The DR console saw a database thread turn Warning or Alert (its reasons attached).
    DrState,
}

impl AlarmKind {
    /// The snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            AlarmKind::DamagedLog => "damaged_log",
            AlarmKind::NotRedoLog => "not_redo_log",
            AlarmKind::ReplacedLog => "replaced_log",
            AlarmKind::UploadFailing => "upload_failing",
            AlarmKind::Backlog => "backlog",
            AlarmKind::Gap => "gap",
            AlarmKind::VanishedUnshipped => "vanished_unshipped",
            AlarmKind::Manifest => "manifest",
            AlarmKind::Store => "store",
            AlarmKind::ScanFailing => "scan_failing",
            AlarmKind::VerifyFindings => "verify_findings",
            AlarmKind::VerifyFailed => "verify_failed",
            AlarmKind::DrState => "dr_state",
        }
    }
}

/// How bad.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Recoverability is at risk now.
    Critical,
    /// Needs a look.
    Warning,
}

/// One alarm, as handed to the hook.
#[derive(Debug, Clone, Serialize)]
pub struct Alarm {
    pub kind: AlarmKind,
    /// How bad.
    pub severity: Severity,
    /// One line for a human.
    pub message: String,
    /// The file concerned, if any.
    pub file: Option<String>,
    /// The block concerned, if any.
    pub block: Option<u32>,
    /// More facts (object), or null.
    pub details: serde_json::Value,
    /// The component raising it.
    pub component: &'static str,
    /// This host's name.
    pub host: String,
    /// When (RFC 3339 UTC).
    pub at: String,
}

impl Alarm {
    /// A new alarm from the watcher, now, on this host.
    pub fn new(kind: AlarmKind, severity: Severity, message: impl Into<String>) -> Alarm {
        Alarm {
            kind,
            severity,
            message: message.into(),
            file: None,
            block: None,
            details: serde_json::Value::Null,
            component: "watcher",
            host: host_name(),
            at: now_rfc3339(),
        }
    }

    /// With the file concerned.
    pub fn file(mut self, f: impl Into<String>) -> Alarm {
        self.file = Some(f.into());
        self
    }

    /// With the block concerned.
    pub fn block(mut self, b: Option<u32>) -> Alarm {
        self.block = b;
        self
    }

    /// With more facts.
    pub fn details(mut self, d: serde_json::Value) -> Alarm {
        self.details = d;
        self
    }
}

/// The current time as RFC 3339 UTC with milliseconds.
pub fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown".to_string())
}

/// Where alarms go besides the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AlertHook {
    /// Only the log.
    None,
    /// Run this program (argv) with the alarm as JSON on stdin.
    Command {
        /// Program and arguments.
        argv: Vec<String>,
        /// Deadline of one run.
        timeout: Duration,
    },
    /// POST the alarm as JSON to this URL.
    Webhook {
        url: url::Url,
        /// An extra CA certificate (PEM) to trust.
        ca_file: Option<PathBuf>,
        /// Deadline of one POST.
        timeout: Duration,
    },
}

/// Counters of the alert hook.
#[derive(Debug, Clone)]
pub struct AlertMetrics {
    /// Alarms raised, by kind.
    pub raised: Arc<CounterVec>,
    /// Deliveries that failed.
    pub failed: Arc<Counter>,
    /// Alarms not queued because the queue was full.
    pub dropped: Arc<Counter>,
}

/// Raises alarms; cheap to clone.
#[derive(Debug, Clone)]
pub struct Alerter {
    tx: mpsc::Sender<Alarm>,
    metrics: AlertMetrics,
}

/// Why the hook could not be set up.
#[derive(Debug, thiserror::Error)]
#[error("alert webhook: {0}")]
pub struct AlertSetupError(String);

impl Alerter {
    /// Starts the delivery task; it ends after `cancel` fires and the queue is drained.
    pub fn start(
        hook: AlertHook,
        metrics: AlertMetrics,
        cancel: CancellationToken,
    ) -> Result<(Alerter, tokio::task::JoinHandle<()>), AlertSetupError> {
        let client = match &hook {
            AlertHook::Webhook { ca_file, .. } => {
                let mut b = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none());
                if let Some(ca) = ca_file {
                    let pem = std::fs::read(ca).map_err(|e| {
                        AlertSetupError(format!("cannot read CA file {}: {e}", ca.display()))
                    })?;
                    for c in reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
                        AlertSetupError(format!("CA file {} is not PEM: {e}", ca.display()))
                    })? {
                        b = b.add_root_certificate(c);
                    }
                }
                Some(
                    b.build()
                        .map_err(|e| AlertSetupError(format!("cannot build client: {e}")))?,
                )
            }
            _ => None,
        };
        let (tx, mut rx) = mpsc::channel::<Alarm>(QUEUE);
        let failed = Arc::clone(&metrics.failed);
        let task = tokio::spawn(async move {
            loop {
                let alarm = tokio::select! {
                    biased;
                    a = rx.recv() => match a { Some(a) => a, None => return },
                    _ = cancel.cancelled() => break,
                };
                deliver(&hook, client.as_ref(), &alarm, &failed).await;
            }
            // Shutting down: deliver what is queued, then stop.
            rx.close();
            while let Some(alarm) = rx.recv().await {
                deliver(&hook, client.as_ref(), &alarm, &failed).await;
            }
        });
        Ok((Alerter { tx, metrics }, task))
    }

    /// Logs the alarm and queues it for the hook.
    pub fn raise(&self, alarm: Alarm) {
        self.metrics.raised.inc(alarm.kind.as_str());
        match alarm.severity {
            Severity::Critical => tracing::error!(
                alarm = alarm.kind.as_str(),
                file = alarm.file.as_deref(),
                block = alarm.block,
                details = %alarm.details,
                "ALARM: {}",
                alarm.message
            ),
            Severity::Warning => tracing::warn!(
                alarm = alarm.kind.as_str(),
                file = alarm.file.as_deref(),
                block = alarm.block,
                details = %alarm.details,
                "ALARM: {}",
                alarm.message
            ),
        }
        if let Err(e) = self.tx.try_send(alarm) {
            self.metrics.dropped.inc();
            tracing::error!(error = %e, "alert queue full or closed: alarm not handed to the hook");
        }
    }
}

async fn deliver(
    hook: &AlertHook,
    client: Option<&reqwest::Client>,
    alarm: &Alarm,
    failed: &Counter,
) {
    let json = serde_json::to_string(alarm).unwrap_or_default();
    let result = match hook {
        AlertHook::None => Ok(()),
        AlertHook::Command { argv, timeout } => run_command(argv, &json, *timeout).await,
        AlertHook::Webhook { url, timeout, .. } => match client {
            None => Err("no HTTP client".to_string()),
            Some(c) => post(c, url, &json, *timeout).await,
        },
    };
    if let Err(e) = result {
        failed.inc();
        tracing::error!(alarm = alarm.kind.as_str(), error = %e, "alert hook failed");
    }
}

async fn run_command(argv: &[String], json: &str, timeout: Duration) -> Result<(), String> {
    let Some((prog, args)) = argv.split_first() else {
        return Err("empty command".to_string());
    };
    let mut child = tokio::process::Command::new(prog)
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot run {prog}: {e}"))?;
    let mut stdin = child.stdin.take();
    let run = async {
        if let Some(s) = stdin.as_mut() {
            s.write_all(json.as_bytes()).await?;
            s.write_all(b"\n").await?;
            s.shutdown().await?;
        }
        drop(stdin);
        child.wait_with_output().await
    };
    match tokio::time::timeout(timeout, run).await {
        Err(_) => Err(format!("{prog} did not finish within {timeout:?}")),
        Ok(Err(e)) => Err(format!("{prog}: {e}")),
        Ok(Ok(out)) if out.status.success() => Ok(()),
        Ok(Ok(out)) => {
            let err = String::from_utf8_lossy(&out.stderr);
            let tail: String = err
                .chars()
                .rev()
                .take(300)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            Err(format!(
                "{prog} exited with {}: {}",
                out.status,
                tail.trim()
            ))
        }
    }
}

async fn post(
    client: &reqwest::Client,
    url: &url::Url,
    json: &str,
    timeout: Duration,
) -> Result<(), String> {
    let r = client
        .post(url.clone())
        .header("content-type", "application/json")
        .body(json.to_string())
        .timeout(timeout)
        .send()
        .await
        .map_err(|e| format!("POST {url}: {e}"))?;
    if r.status().is_success() {
        Ok(())
    } else {
        Err(format!("POST {url}: {}", r.status()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::Registry;

    fn metrics(r: &Registry) -> AlertMetrics {
        AlertMetrics {
            raised: r.counter_vec("a_raised_total", "x", "kind"),
            failed: r.counter("a_failed_total", "x"),
            dropped: r.counter("a_dropped_total", "x"),
        }
    }

    #[tokio::test]
    async fn command_hook_gets_the_alarm_as_json_on_stdin() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("alarms.jsonl");
        let hook = AlertHook::Command {
            argv: vec![
                "sh".into(),
                "-c".into(),
                format!("cat >> {}", out.display()),
            ],
            timeout: Duration::from_secs(10),
        };
        let r = Registry::new();
        let m = metrics(&r);
        let cancel = CancellationToken::new();
        let (a, task) = Alerter::start(hook, m.clone(), cancel.clone()).unwrap();
        a.raise(
            Alarm::new(AlarmKind::DamagedLog, Severity::Critical, "bad block")
                .file("/arch/x.dbf")
                .block(Some(7)),
        );
        cancel.cancel();
        task.await.unwrap();
        let text = std::fs::read_to_string(&out).unwrap();
        let v: serde_json::Value = serde_json::from_str(text.trim()).unwrap();
        assert_eq!(v["kind"], "damaged_log");
        assert_eq!(v["severity"], "critical");
        assert_eq!(v["file"], "/arch/x.dbf");
        assert_eq!(v["block"], 7);
        assert_eq!(v["component"], "watcher");
        assert_eq!(m.raised.get("damaged_log"), 1);
        assert_eq!(m.failed.get(), 0);
    }

    #[tokio::test]
    async fn failing_command_is_counted() {
        let hook = AlertHook::Command {
            argv: vec!["sh".into(), "-c".into(), "echo nope >&2; exit 3".into()],
            timeout: Duration::from_secs(10),
        };
        let r = Registry::new();
        let m = metrics(&r);
        let cancel = CancellationToken::new();
        let (a, task) = Alerter::start(hook, m.clone(), cancel.clone()).unwrap();
        a.raise(Alarm::new(AlarmKind::Gap, Severity::Warning, "gap"));
        cancel.cancel();
        task.await.unwrap();
        assert_eq!(m.failed.get(), 1);
    }
}
