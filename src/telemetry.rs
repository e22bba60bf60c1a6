//! Telemetry: structured logs (text or JSON) and a small Prometheus registry served over HTTP.
//!
//! - [`init_tracing`]: `tracing` output on stderr as text or one JSON object per line;
//!   `RUST_LOG` overrides the level.
//! - [`Registry`] holds [`Counter`]s, [`Gauge`]s, [`CounterVec`]s (one label, few values) and
//!   [`Histogram`]s, and renders them in the Prometheus text exposition format (0.0.4).
//!   [`Family`] holds one counter, gauge or histogram per value of one label chosen at run
//!   time (per stream: a bounded set of configured or authenticated streams).
//!   Names follow `redovault_<component>_<thing>_<unit>`; labels never carry file names.
//! - [`serve_metrics`]: a tiny HTTP/1.1 server answering `GET /metrics` (and nothing else),
//!   meant for a loopback address. One request per connection, bounded request size and time.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line (fields included).
    Json,
}

/// Sets up `tracing` on stderr with `level` (a filter such as `info` or
/// `redovault=debug,info`); `RUST_LOG` overrides it. Does nothing if a subscriber is set.
pub fn init_tracing(format: LogFormat, level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(level))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colours only on a terminal: journald and log files get plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}

/// The log level of a command line's `-v` count: warn, info (`-v`), debug (`-vv`), trace.
pub fn verbosity_level(verbose: u8) -> &'static str {
    match verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    }
}

/// A monotonically increasing count.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    /// Adds `n`.
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    /// Adds one.
    pub fn inc(&self) {
        self.add(1);
    }

    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A value that goes up and down (stored as f64 bits).
#[derive(Debug, Default)]
pub struct Gauge(AtomicU64);

impl Gauge {
    pub fn set(&self, v: f64) {
        self.0.store(v.to_bits(), Ordering::Relaxed);
    }

    pub fn get(&self) -> f64 {
        f64::from_bits(self.0.load(Ordering::Relaxed))
    }
}

/// Counters by the value of one label (e.g. errors by kind). The label values must come from a
/// small fixed set chosen by the code, never from input.
#[derive(Debug)]
pub struct CounterVec {
    label: &'static str,
    values: Mutex<BTreeMap<&'static str, u64>>,
}

impl CounterVec {
    /// A counter family with one label.
    pub fn new(label: &'static str) -> CounterVec {
        CounterVec {
            label,
            values: Mutex::new(BTreeMap::new()),
        }
    }

    /// Adds one to the counter of `value`.
    pub fn inc(&self, value: &'static str) {
        self.add(value, 1);
    }

    /// Adds `n` to the counter of `value`.
    pub fn add(&self, value: &'static str, n: u64) {
        if let Ok(mut m) = self.values.lock() {
            *m.entry(value).or_insert(0) += n;
        }
    }

    /// The counter of `value`.
    pub fn get(&self, value: &str) -> u64 {
        self.values
            .lock()
            .ok()
            .and_then(|m| m.get(value).copied())
            .unwrap_or(0)
    }
}

/// A histogram with fixed upper bounds (seconds, bytes...).
#[derive(Debug)]
pub struct Histogram {
    bounds: Vec<f64>,
    buckets: Vec<AtomicU64>,
    count: AtomicU64,
    sum: Mutex<f64>,
}

impl Histogram {
    /// A histogram with these bucket upper bounds (ascending); `+Inf` is implied.
    pub fn new(bounds: &[f64]) -> Histogram {
        Histogram {
            bounds: bounds.to_vec(),
            buckets: bounds.iter().map(|_| AtomicU64::new(0)).collect(),
            count: AtomicU64::new(0),
            sum: Mutex::new(0.0),
        }
    }

    /// Latency buckets from 5 ms to 10 min.
    pub fn seconds() -> Histogram {
        Histogram::new(&[
            0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0,
            300.0, 600.0,
        ])
    }

    /// Records one observation.
    pub fn observe(&self, v: f64) {
        for (b, n) in self.bounds.iter().zip(&self.buckets) {
            if v <= *b {
                n.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut s) = self.sum.lock() {
            *s += v;
        }
    }

    /// Observations so far.
    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }
}

/// One series of a [`Family`]: what each label value holds.
pub trait Series: Send + Sync + std::fmt::Debug + 'static {
    /// Appends the sample lines of this series, labelled `labels` (`stream="x"`).
    fn render_series(&self, out: &mut String, name: &str, labels: &str);
}

impl Series for Counter {
    fn render_series(&self, out: &mut String, name: &str, labels: &str) {
        let _ = writeln!(out, "{name}{{{labels}}} {}", self.get());
    }
}

impl Series for Gauge {
    fn render_series(&self, out: &mut String, name: &str, labels: &str) {
        let _ = writeln!(out, "{name}{{{labels}}} {}", fmt_f64(self.get()));
    }
}

impl Series for Histogram {
    fn render_series(&self, out: &mut String, name: &str, labels: &str) {
        for (b, n) in self.bounds.iter().zip(&self.buckets) {
            let _ = writeln!(
                out,
                "{name}_bucket{{{labels},le=\"{}\"}} {}",
                fmt_f64(*b),
                n.load(Ordering::Relaxed)
            );
        }
        let count = self.count();
        let sum = self.sum.lock().map(|s| *s).unwrap_or(0.0);
        let _ = writeln!(out, "{name}_bucket{{{labels},le=\"+Inf\"}} {count}");
        let _ = writeln!(out, "{name}_sum{{{labels}}} {}", fmt_f64(sum));
        let _ = writeln!(out, "{name}_count{{{labels}}} {count}");
    }
}

/// A metric family with one label whose values are chosen at run time (e.g. `stream`): one
/// series per value, created on first use by [`Family::with`]. The values must come from a
/// bounded set (configured or authenticated streams), never from raw input.
pub struct Family<S: Series> {
    label: &'static str,
    make: Box<dyn Fn() -> S + Send + Sync>,
    /// By the rendered label set (`stream="x"` or `stream="x",collector="c"`).
    series: Mutex<BTreeMap<String, Arc<S>>>,
}

impl<S: Series> std::fmt::Debug for Family<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Family")
            .field("label", &self.label)
            .finish_non_exhaustive()
    }
}

impl<S: Series> Family<S> {
    /// A family whose series are made by `make`.
    pub fn new(label: &'static str, make: impl Fn() -> S + Send + Sync + 'static) -> Family<S> {
        Family {
            label,
            make: Box::new(make),
            series: Mutex::new(BTreeMap::new()),
        }
    }

    /// The series of `value` (created if new).
    pub fn with(&self, value: &str) -> Arc<S> {
        self.with_extra(value, &[])
    }

    /// The series of `value` with more labels (e.g. `collector` beside `stream` when an
    /// extractor ships one stream to several collectors); the same bounded-values rule holds.
    pub fn with_extra(&self, value: &str, extra: &[(&str, &str)]) -> Arc<S> {
        let mut labels = format!("{}=\"{}\"", self.label, escape_label(value));
        for (k, v) in extra {
            labels.push_str(&format!(",{k}=\"{}\"", escape_label(v)));
        }
        let mut m = self.series.lock().unwrap_or_else(|p| p.into_inner());
        Arc::clone(m.entry(labels).or_insert_with(|| Arc::new((self.make)())))
    }

    fn render(&self, out: &mut String, name: &str) {
        let m = self.series.lock().unwrap_or_else(|p| p.into_inner());
        for (labels, s) in m.iter() {
            s.render_series(out, name, labels);
        }
    }
}

/// Sets `family{<label>="name"}` to the not-after time (Unix seconds) of the certificate file
/// of each `(name, file)` (see [`crate::crypto::cert_expiry`]); returns why the time of the
/// others cannot be known (their series are left out, the caller logs each error).
pub fn export_cert_expiry(
    family: &Family<Gauge>,
    files: &[(&str, &std::path::Path)],
) -> Vec<crate::crypto::cert_expiry::CertExpiryError> {
    let mut errors = Vec::new();
    for (name, path) in files {
        match crate::crypto::cert_expiry::pem_file_not_after(path) {
            Ok(t) => family.with(name).set(t as f64),
            Err(e) => errors.push(e),
        }
    }
    errors
}

/// Escapes a label value for the text exposition format.
fn escape_label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// One registered metric.
#[derive(Debug, Clone)]
pub enum Metric {
    Counter(Arc<Counter>),
    Gauge(Arc<Gauge>),
    /// Counters by one label.
    CounterVec(Arc<CounterVec>),
    Histogram(Arc<Histogram>),
    /// A family of series by one run-time label: (type name, the family).
    Family(&'static str, Arc<dyn FamilyRenderDyn>),
}

/// A registered [`Family`], type-erased for rendering.
pub trait FamilyRenderDyn: Send + Sync + std::fmt::Debug {
    /// Appends every series' sample lines.
    fn render_family(&self, out: &mut String, name: &str);
}

impl<S: Series> FamilyRenderDyn for Family<S> {
    fn render_family(&self, out: &mut String, name: &str) {
        self.render(out, name);
    }
}

/// Named metrics, rendered in registration order.
#[derive(Debug, Default)]
pub struct Registry {
    metrics: Mutex<Vec<(String, String, Metric)>>,
}

fn fmt_f64(v: f64) -> String {
    if v.is_infinite() {
        if v > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        }
    } else if v.is_nan() {
        "NaN".into()
    } else {
        format!("{v}")
    }
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Registry {
        Registry::default()
    }

    fn add(&self, name: &str, help: &str, m: Metric) {
        if let Ok(mut v) = self.metrics.lock() {
            v.push((name.to_string(), help.to_string(), m));
        }
    }

    /// Registers and returns a counter (`name` should end in `_total`).
    pub fn counter(&self, name: &str, help: &str) -> Arc<Counter> {
        let c = Arc::new(Counter::default());
        self.add(name, help, Metric::Counter(Arc::clone(&c)));
        c
    }

    /// Registers and returns a gauge.
    pub fn gauge(&self, name: &str, help: &str) -> Arc<Gauge> {
        let g = Arc::new(Gauge::default());
        self.add(name, help, Metric::Gauge(Arc::clone(&g)));
        g
    }

    /// Registers and returns a counter family with one label.
    pub fn counter_vec(&self, name: &str, help: &str, label: &'static str) -> Arc<CounterVec> {
        let c = Arc::new(CounterVec::new(label));
        self.add(name, help, Metric::CounterVec(Arc::clone(&c)));
        c
    }

    /// Registers and returns a histogram.
    pub fn histogram(&self, name: &str, help: &str, h: Histogram) -> Arc<Histogram> {
        let h = Arc::new(h);
        self.add(name, help, Metric::Histogram(Arc::clone(&h)));
        h
    }

    /// Registers and returns a family of counters by `label` (`name` should end in
    /// `_total`).
    pub fn counter_family(
        &self,
        name: &str,
        help: &str,
        label: &'static str,
    ) -> Arc<Family<Counter>> {
        let f = Arc::new(Family::new(label, Counter::default));
        self.add(name, help, Metric::Family("counter", f.clone()));
        f
    }

    /// Registers and returns a family of gauges by `label`.
    pub fn gauge_family(&self, name: &str, help: &str, label: &'static str) -> Arc<Family<Gauge>> {
        let f = Arc::new(Family::new(label, Gauge::default));
        self.add(name, help, Metric::Family("gauge", f.clone()));
        f
    }

    /// Registers and returns a family of histograms by `label`, each with `bounds`.
    pub fn histogram_family(
        &self,
        name: &str,
        help: &str,
        label: &'static str,
        bounds: &[f64],
    ) -> Arc<Family<Histogram>> {
        let bounds = bounds.to_vec();
        let f = Arc::new(Family::new(label, move || Histogram::new(&bounds)));
        self.add(name, help, Metric::Family("histogram", f.clone()));
        f
    }

    /// The text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let Ok(metrics) = self.metrics.lock() else {
            return out;
        };
        for (name, help, m) in metrics.iter() {
            let kind = match m {
                Metric::Counter(_) | Metric::CounterVec(_) => "counter",
                Metric::Gauge(_) => "gauge",
                Metric::Histogram(_) => "histogram",
                Metric::Family(kind, _) => kind,
            };
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} {kind}");
            match m {
                Metric::Counter(c) => {
                    let _ = writeln!(out, "{name} {}", c.get());
                }
                Metric::Gauge(g) => {
                    let _ = writeln!(out, "{name} {}", fmt_f64(g.get()));
                }
                Metric::CounterVec(c) => {
                    if let Ok(values) = c.values.lock() {
                        for (v, n) in values.iter() {
                            let _ = writeln!(out, "{name}{{{}=\"{v}\"}} {n}", c.label);
                        }
                    }
                }
                Metric::Histogram(h) => {
                    for (b, n) in h.bounds.iter().zip(&h.buckets) {
                        let _ = writeln!(
                            out,
                            "{name}_bucket{{le=\"{}\"}} {}",
                            fmt_f64(*b),
                            n.load(Ordering::Relaxed)
                        );
                    }
                    let count = h.count();
                    let sum = h.sum.lock().map(|s| *s).unwrap_or(0.0);
                    let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {count}");
                    let _ = writeln!(out, "{name}_sum {}", fmt_f64(sum));
                    let _ = writeln!(out, "{name}_count {count}");
                }
                Metric::Family(_, f) => f.render_family(&mut out, name),
            }
        }
        out
    }
}

/// Every sample of a Prometheus endpoint (`name{labels}` → value); empty if it does not answer.
pub fn scrape(addr: std::net::SocketAddr) -> BTreeMap<String, f64> {
    use std::io::{Read, Write};
    let mut out = BTreeMap::new();
    let Ok(mut s) = std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(500)) else {
        return out;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if s.write_all(b"GET /metrics HTTP/1.1\r\nhost: redovault\r\nconnection: close\r\n\r\n")
        .is_err()
    {
        return out;
    }
    let mut text = String::new();
    let _ = s.read_to_string(&mut text);
    let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    for line in body.lines().filter(|l| !l.starts_with('#')) {
        if let Some((k, v)) = line.rsplit_once(' ')
            && let Ok(v) = v.parse::<f64>()
        {
            out.insert(k.to_string(), v);
        }
    }
    out
}

/// Largest request head accepted by the metrics server.
const MAX_REQUEST: usize = 8192;

/// How long a client may take to send its request.
const REQUEST_DEADLINE: Duration = Duration::from_secs(5);

/// A read-only JSON page served beside `/metrics` (the collector's `/status`): its path and
/// what renders its body at each request.
#[derive(Clone)]
pub struct JsonPage {
    /// The path, e.g. `/status`.
    pub path: &'static str,
    /// Renders the body.
    pub render: Arc<dyn Fn() -> String + Send + Sync>,
}

impl std::fmt::Debug for JsonPage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JsonPage")
            .field("path", &self.path)
            .finish()
    }
}

/// Binds `addr` and returns the bound address; serves `GET /metrics` from `registry` until
/// `cancel` fires. Other paths answer 404, other methods 405.
pub async fn serve_metrics(
    addr: SocketAddr,
    registry: Arc<Registry>,
    cancel: CancellationToken,
) -> std::io::Result<SocketAddr> {
    serve_metrics_with(addr, registry, Vec::new(), cancel).await
}

/// [`serve_metrics`] with read-only JSON `pages` beside `/metrics`.
pub async fn serve_metrics_with(
    addr: SocketAddr,
    registry: Arc<Registry>,
    pages: Vec<JsonPage>,
    cancel: CancellationToken,
) -> std::io::Result<SocketAddr> {
    let pages = Arc::new(pages);
    let listener = TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    tokio::spawn(async move {
        loop {
            let (mut sock, peer) = tokio::select! {
                _ = cancel.cancelled() => return,
                r = listener.accept() => match r {
                    Ok(x) => x,
                    Err(e) => {
                        tracing::warn!(error = %e, "metrics server: accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                },
            };
            let registry = Arc::clone(&registry);
            let pages = Arc::clone(&pages);
            tokio::spawn(async move {
                let mut buf = Vec::with_capacity(1024);
                let read = tokio::time::timeout(REQUEST_DEADLINE, async {
                    let mut tmp = [0u8; 1024];
                    while !buf.windows(4).any(|w| w == b"\r\n\r\n") && buf.len() < MAX_REQUEST {
                        let n = sock.read(&mut tmp).await?;
                        if n == 0 {
                            break;
                        }
                        buf.extend_from_slice(&tmp[..n]);
                    }
                    Ok::<_, std::io::Error>(())
                })
                .await;
                if !matches!(read, Ok(Ok(()))) {
                    tracing::debug!(%peer, "metrics server: request not read in time");
                    return;
                }
                let head = String::from_utf8_lossy(&buf);
                let mut parts = head.split_whitespace();
                let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
                let page = pages.iter().find(|g| g.path == path);
                let (status, ctype, body) = match (method, path) {
                    ("GET", "/metrics") => (
                        "200 OK",
                        "text/plain; version=0.0.4; charset=utf-8",
                        registry.render(),
                    ),
                    ("GET", _) if page.is_some() => (
                        "200 OK",
                        "application/json",
                        page.map_or_else(String::new, |g| (g.render)()),
                    ),
                    ("GET", _) => ("404 Not Found", "text/plain", "not found\n".into()),
                    _ => (
                        "405 Method Not Allowed",
                        "text/plain",
                        "method not allowed\n".into(),
                    ),
                };
                let resp = format!(
                    "HTTP/1.1 {status}\r\ncontent-type: {ctype}\r\ncontent-length: {}\r\n\
                     connection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = sock.write_all(resp.as_bytes()).await;
                let _ = sock.shutdown().await;
            });
        }
    });
    Ok(local)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_format() {
        let r = Registry::new();
        let c = r.counter("redovault_test_files_total", "Files.");
        let g = r.gauge("redovault_test_backlog_bytes", "Bytes waiting.");
        let e = r.counter_vec("redovault_test_errors_total", "Errors by kind.", "kind");
        let h = r.histogram(
            "redovault_test_upload_seconds",
            "Upload time.",
            Histogram::new(&[0.1, 1.0]),
        );
        c.add(3);
        g.set(1.5);
        e.inc("upload");
        e.inc("upload");
        e.inc("scan");
        h.observe(0.05);
        h.observe(0.5);
        h.observe(7.0);
        let text = r.render();
        let expected = "\
# HELP redovault_test_files_total Files.
# TYPE redovault_test_files_total counter
redovault_test_files_total 3
# HELP redovault_test_backlog_bytes Bytes waiting.
# TYPE redovault_test_backlog_bytes gauge
redovault_test_backlog_bytes 1.5
# HELP redovault_test_errors_total Errors by kind.
# TYPE redovault_test_errors_total counter
redovault_test_errors_total{kind=\"scan\"} 1
redovault_test_errors_total{kind=\"upload\"} 2
# HELP redovault_test_upload_seconds Upload time.
# TYPE redovault_test_upload_seconds histogram
redovault_test_upload_seconds_bucket{le=\"0.1\"} 1
redovault_test_upload_seconds_bucket{le=\"1\"} 2
redovault_test_upload_seconds_bucket{le=\"+Inf\"} 3
redovault_test_upload_seconds_sum 7.55
redovault_test_upload_seconds_count 3
";
        assert_eq!(text, expected);
    }

    #[test]
    fn families_render_one_series_per_label_value() {
        let r = Registry::new();
        let g = r.gauge_family("redovault_test_lag_bytes", "Lag.", "stream");
        let c = r.counter_family("redovault_test_bytes_total", "Bytes.", "stream");
        let h = r.histogram_family("redovault_test_ack_seconds", "Ack.", "stream", &[0.01]);
        g.with("db1-rl2-t1").set(5.0);
        g.with("db1-rl2-t2").set(0.5);
        c.with("db1-rl2-t1").add(3);
        c.with("db1-rl2-t1").inc();
        h.with("a\"b").observe(0.001);
        let text = r.render();
        let expected = "\
# HELP redovault_test_lag_bytes Lag.
# TYPE redovault_test_lag_bytes gauge
redovault_test_lag_bytes{stream=\"db1-rl2-t1\"} 5
redovault_test_lag_bytes{stream=\"db1-rl2-t2\"} 0.5
# HELP redovault_test_bytes_total Bytes.
# TYPE redovault_test_bytes_total counter
redovault_test_bytes_total{stream=\"db1-rl2-t1\"} 4
# HELP redovault_test_ack_seconds Ack.
# TYPE redovault_test_ack_seconds histogram
redovault_test_ack_seconds_bucket{stream=\"a\\\"b\",le=\"0.01\"} 1
redovault_test_ack_seconds_bucket{stream=\"a\\\"b\",le=\"+Inf\"} 1
redovault_test_ack_seconds_sum{stream=\"a\\\"b\"} 0.001
redovault_test_ack_seconds_count{stream=\"a\\\"b\"} 1
";
        assert_eq!(text, expected);
    }

    #[tokio::test]
    async fn serves_metrics_over_http() {
        let r = Arc::new(Registry::new());
        r.counter("redovault_test_x_total", "X.").add(7);
        let cancel = CancellationToken::new();
        let addr = serve_metrics("127.0.0.1:0".parse().unwrap(), r, cancel.clone())
            .await
            .unwrap();
        let get = |path: &'static str| async move {
            let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
            s.write_all(format!("GET {path} HTTP/1.1\r\nhost: x\r\n\r\n").as_bytes())
                .await
                .unwrap();
            let mut out = String::new();
            s.read_to_string(&mut out).await.unwrap();
            out
        };
        let ok = get("/metrics").await;
        assert!(ok.starts_with("HTTP/1.1 200 OK"), "{ok}");
        assert!(
            ok.contains("\r\n\r\n# HELP redovault_test_x_total X."),
            "{ok}"
        );
        assert!(ok.contains("redovault_test_x_total 7\n"), "{ok}");
        assert!(get("/other").await.starts_with("HTTP/1.1 404"));
        cancel.cancel();
    }
}
