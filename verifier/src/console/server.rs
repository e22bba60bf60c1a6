//! The console's HTTP(S) server (hyper's HTTP/1.1): read-only by construction. GET and HEAD
//! only (anything else: 405 with `Allow`), a fixed set of paths (anything else: 404; the
//! assets are compiled into the binary, no file is ever read for a request), strict headers
//! on every answer (a Content-Security-Policy of `default-src 'self'` with no inline script
//! or style, `X-Frame-Options: DENY`, `nosniff`, `Referrer-Policy: no-referrer`, no caching),
//! bounded connections and header read time. TLS (rustls, from `src/crypto`) when
//! `tls_cert` and `tls_key` are set.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use redovault::crypto::tls::TlsAcceptor;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::console::config::ConsoleSection;
use crate::console::{Shared, Snapshot, page};

/// The stylesheet, embedded.
pub const CSS: &str = include_str!("assets/console.css");
/// The script, embedded.
pub const JS: &str = include_str!("assets/console.js");

/// Connections served at once.
const MAX_CONNECTIONS: usize = 64;

/// The Content-Security-Policy of every answer.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; \
                       connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// Why the console cannot serve.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The address cannot be bound.
    #[error("console: cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    /// The TLS certificate or key is unusable.
    #[error("console: TLS: {0}")]
    Tls(String),
}

/// A bound listener (TLS or not).
pub struct Listener {
    tcp: TcpListener,
    tls: Option<TlsAcceptor>,
    /// The address bound.
    pub addr: SocketAddr,
}

impl std::fmt::Debug for Listener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Listener")
            .field("addr", &self.addr)
            .field("tls", &self.tls.is_some())
            .finish()
    }
}

/// Binds `cfg.listen` and loads the TLS certificate when configured.
pub async fn bind(cfg: &ConsoleSection) -> Result<Listener, ServeError> {
    let tls = match (&cfg.tls_cert, &cfg.tls_key) {
        (Some(c), Some(k)) => Some(TlsAcceptor::from(
            redovault::crypto::tls::https_server_config(c, k)
                .map_err(|e| ServeError::Tls(e.to_string()))?,
        )),
        _ => None,
    };
    let tcp = TcpListener::bind(cfg.listen)
        .await
        .map_err(|source| ServeError::Bind {
            addr: cfg.listen,
            source,
        })?;
    let addr = tcp.local_addr().map_err(|source| ServeError::Bind {
        addr: cfg.listen,
        source,
    })?;
    tracing::info!(%addr, tls = tls.is_some(), "console listening");
    Ok(Listener { tcp, tls, addr })
}

/// Serves until `cancel` fires.
pub async fn serve(
    l: Listener,
    shared: Shared,
    cancel: CancellationToken,
) -> Result<(), ServeError> {
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    let https = l.tls.is_some();
    loop {
        let (tcp, peer) = tokio::select! {
            _ = cancel.cancelled() => return Ok(()),
            r = l.tcp.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!(error = %e, "console: accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            tracing::warn!(%peer, "console: too many connections, one refused");
            continue;
        };
        let shared = shared.clone();
        let tls = l.tls.clone();
        let cancel = cancel.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                let shared = shared.clone();
                async move { Ok::<_, Infallible>(answer(&req, &shared, https)) }
            });
            let builder = {
                let mut b = hyper::server::conn::http1::Builder::new();
                b.timer(TokioTimer::new())
                    .header_read_timeout(Duration::from_secs(10))
                    .max_buf_size(64 << 10);
                b
            };
            let r = match tls {
                Some(acceptor) => {
                    match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)).await
                    {
                        Ok(Ok(stream)) => tokio::select! {
                            r = builder.serve_connection(TokioIo::new(stream), service) => r,
                            _ = cancel.cancelled() => Ok(()),
                        },
                        _ => {
                            tracing::debug!(%peer, "console: TLS handshake failed");
                            return;
                        }
                    }
                }
                None => tokio::select! {
                    r = builder.serve_connection(TokioIo::new(tcp), service) => r,
                    _ = cancel.cancelled() => Ok(()),
                },
            };
            if let Err(e) = r {
                tracing::debug!(%peer, error = %e, "console: connection ended");
            }
        });
    }
}

/// The answer to one request.
fn answer(req: &Request<Incoming>, shared: &Shared, https: bool) -> Response<Full<Bytes>> {
    let snap = shared.read().map(|s| s.clone()).unwrap_or_default();
    let (status, ctype, body) = respond(req.method(), req.uri().path(), &snap);
    let head = req.method() == Method::HEAD;
    let len = body.len();
    let mut resp = Response::new(Full::new(if head {
        Bytes::new()
    } else {
        Bytes::from(body)
    }));
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(ctype));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    for (k, v) in security_headers(https) {
        h.insert(k, HeaderValue::from_static(v));
    }
    if status == StatusCode::METHOD_NOT_ALLOWED {
        h.insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
    }
    resp
}

/// The headers of every answer.
pub fn security_headers(https: bool) -> Vec<(header::HeaderName, &'static str)> {
    let mut v = vec![
        (header::CONTENT_SECURITY_POLICY, CSP),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::CACHE_CONTROL, "no-store"),
        (
            header::HeaderName::from_static("cross-origin-opener-policy"),
            "same-origin",
        ),
        (
            header::HeaderName::from_static("cross-origin-resource-policy"),
            "same-origin",
        ),
        (
            header::HeaderName::from_static("permissions-policy"),
            "camera=(), microphone=(), geolocation=()",
        ),
    ];
    if https {
        v.push((header::STRICT_TRANSPORT_SECURITY, "max-age=31536000"));
    }
    v
}

const HTML: &str = "text/html; charset=utf-8";
const JSON: &str = "application/json";
const TEXT: &str = "text/plain; charset=utf-8";

fn json<T: serde::Serialize>(v: &T) -> (StatusCode, &'static str, Vec<u8>) {
    match serde_json::to_vec_pretty(v) {
        Ok(b) => (StatusCode::OK, JSON, b),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            TEXT,
            format!("cannot render: {e}\n").into_bytes(),
        ),
    }
}

/// Status, content type and body for `method` on `path` (pure: the server's whole routing).
pub fn respond(
    method: &Method,
    path: &str,
    snap: &Snapshot,
) -> (StatusCode, &'static str, Vec<u8>) {
    if method != Method::GET && method != Method::HEAD {
        return (
            StatusCode::METHOD_NOT_ALLOWED,
            HTML,
            page::error(405, "This console is read-only: only GET and HEAD.").into_bytes(),
        );
    }
    let not_found = || {
        (
            StatusCode::NOT_FOUND,
            HTML,
            page::error(404, "No such page.").into_bytes(),
        )
    };
    match path {
        "/" => (StatusCode::OK, HTML, page::overview(snap).into_bytes()),
        "/assets/console.css" => (StatusCode::OK, "text/css; charset=utf-8", CSS.into()),
        "/assets/console.js" => (StatusCode::OK, "text/javascript; charset=utf-8", JS.into()),
        "/api/v1/overview" => json(&serde_json::json!({
            "now": snap.now,
            "generation": snap.generation,
            "rows": snap.rows,
            "problems": snap.problems,
        })),
        "/api/v1/events" => json(&snap.events),
        "/api/v1/drills" => json(&snap.drills),
        "/api/v1/sources" => json(&snap.sources),
        "/api/v1/recoveries" => json(&snap.recoveries),
        "/api/v1/verifications" => json(&snap.verifications),
        p => {
            if let Some(name) = p.strip_prefix("/db/") {
                match page::database(snap, name) {
                    Some(html) => (StatusCode::OK, HTML, html.into_bytes()),
                    None => not_found(),
                }
            } else if let Some(rest) = p.strip_prefix("/api/v1/databases/") {
                let (name, only_timeline) = match rest.strip_suffix("/timeline") {
                    Some(n) => (n, true),
                    None => (rest, false),
                };
                let rows: Vec<_> = snap.rows.iter().filter(|r| r.database == name).collect();
                if rows.is_empty() {
                    return not_found();
                }
                let timelines: Vec<_> = snap
                    .timelines
                    .iter()
                    .filter(|t| t.database == name)
                    .collect();
                if only_timeline {
                    return json(&timelines);
                }
                json(&serde_json::json!({
                    "rows": rows,
                    "timelines": timelines,
                    "recoveries": snap.recoveries.iter().filter(|r| r.database == name).collect::<Vec<_>>(),
                    "events": snap.events.iter().filter(|e| e.database == name).collect::<Vec<_>>(),
                    "drills": snap.drills.iter().filter(|d| d.database == name).collect::<Vec<_>>(),
                }))
            } else {
                not_found()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use redovault_redo::position::DbId;

    #[test]
    fn only_get_and_head_on_known_paths_and_no_file_is_served() {
        let snap = Snapshot::default();
        for m in [
            Method::POST,
            Method::PUT,
            Method::DELETE,
            Method::PATCH,
            Method::OPTIONS,
        ] {
            assert_eq!(
                respond(&m, "/", &snap).0,
                StatusCode::METHOD_NOT_ALLOWED,
                "{m}"
            );
        }
        assert_eq!(respond(&Method::GET, "/", &snap).0, StatusCode::OK);
        assert_eq!(
            respond(&Method::HEAD, "/api/v1/events", &snap).0,
            StatusCode::OK
        );
        for p in [
            "/etc/passwd",
            "/assets/../../etc/passwd",
            "/assets/console.css/..",
            "/assets/",
            "/db/..%2f..%2fetc",
            "/api/v1/databases/nope",
            "/api/v2/overview",
        ] {
            assert_eq!(
                respond(&Method::GET, p, &snap).0,
                StatusCode::NOT_FOUND,
                "{p}"
            );
        }
    }

    #[test]
    fn the_timeline_recoveries_and_verifier_runs_have_their_api_paths() {
        let snap = Snapshot {
            rows: vec![crate::console::overview::Row {
                database: "PROD".into(),
                db_id: DbId(7),
                thread: 1,
                stream: Some("db7-rl1-t1".into()),
                assessment: crate::console::assess::Assessment {
                    state: crate::console::assess::State::Protected,
                    reasons: Vec::new(),
                    exposure_collector: None,
                    exposure_worm: None,
                },
                stream_up: None,
                last_commit: None,
                last_archived: None,
                gaps: Vec::new(),
                lag_bytes: None,
                worm_behind: None,
                verification: None,
                estimated_rto: None,
                rto_estimate: None,
                rto_target: 1.0,
                rpo_target: 1.0,
            }],
            timelines: vec![crate::console::overview::ThreadTimelineShown {
                database: "PROD".into(),
                thread: 1,
                stream: "db7-rl1-t1".into(),
                timeline: Default::default(),
            }],
            ..Snapshot::default()
        };
        let get = |p: &str| {
            let (code, ctype, body) = respond(&Method::GET, p, &snap);
            (
                code,
                ctype,
                serde_json::from_slice::<serde_json::Value>(&body).ok(),
            )
        };
        let (code, ctype, v) = get("/api/v1/databases/PROD/timeline");
        assert_eq!((code, ctype), (StatusCode::OK, JSON));
        assert_eq!(v.unwrap()[0]["stream"], "db7-rl1-t1");
        let v = get("/api/v1/databases/PROD").2.unwrap();
        assert_eq!(v["timelines"][0]["thread"], 1);
        assert!(v["recoveries"].as_array().unwrap().is_empty());
        assert_eq!(get("/api/v1/recoveries").0, StatusCode::OK);
        assert_eq!(get("/api/v1/verifications").0, StatusCode::OK);
        assert_eq!(
            get("/api/v1/databases/NOPE/timeline").0,
            StatusCode::NOT_FOUND
        );
    }

    #[test]
    fn the_page_has_no_inline_script_or_style_and_the_headers_are_strict() {
        let html = String::from_utf8(respond(&Method::GET, "/", &Snapshot::default()).2).unwrap();
        assert!(!html.contains("<script>"), "no inline script");
        assert!(!html.contains("style="), "no inline style");
        assert!(html.contains("<script src=\"/assets/console.js\" defer></script>"));
        assert!(html.contains("<noscript><meta http-equiv=\"refresh\""));
        let h = security_headers(false);
        let get = |n: &str| h.iter().find(|(k, _)| k.as_str() == n).map(|(_, v)| *v);
        assert!(
            get("content-security-policy")
                .unwrap()
                .starts_with("default-src 'self'")
        );
        assert_eq!(get("x-frame-options"), Some("DENY"));
        assert_eq!(get("x-content-type-options"), Some("nosniff"));
        assert_eq!(get("referrer-policy"), Some("no-referrer"));
        assert!(get("strict-transport-security").is_none());
        assert!(
            security_headers(true)
                .iter()
                .any(|(k, _)| k == header::STRICT_TRANSPORT_SECURITY)
        );
    }
}

#[cfg(test)]
mod tls_tests {
    use super::*;

    /// With `tls_cert`/`tls_key`: HTTPS only, with HSTS; the same read-only routing.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn tls_serves_https_with_hsts_and_still_refuses_writes() {
        let tmp = tempfile::tempdir().unwrap();
        let pki = redovault::crypto::tls::generate_pki(tmp.path()).unwrap();
        let t: toml::Table = toml::from_str(&format!(
            "listen = \"127.0.0.1:0\"\ntls_cert = \"{}\"\ntls_key = \"{}\"\n\
             [[database]]\nname = \"PROD\"\ndb_id = 7\nrto_target = \"2h\"\nrpo_target = \"5s\"\n",
            pki.server_cert.display(),
            pki.server_key.display()
        ))
        .unwrap();
        let mut problems = Vec::new();
        let cfg = crate::console::config::parse(&t, tmp.path().join("state"), &mut problems);
        assert!(problems.is_empty(), "{problems:?}");
        let l = bind(&cfg).await.unwrap();
        let addr = l.addr;
        let cancel = CancellationToken::new();
        let shared: Shared = Default::default();
        let task = tokio::spawn(serve(l, shared, cancel.clone()));
        let ca = reqwest::Certificate::from_pem(&std::fs::read(&pki.ca).unwrap()).unwrap();
        let client = reqwest::Client::builder()
            .add_root_certificate(ca)
            .resolve("localhost", addr)
            .build()
            .unwrap();
        let url = format!("https://localhost:{}/", addr.port());
        let r = client.get(&url).send().await.unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["strict-transport-security"], "max-age=31536000");
        assert!(r.text().await.unwrap().contains("redovault DR console"));
        let r = client.post(&url).send().await.unwrap();
        assert_eq!(r.status(), 405);
        // Plain HTTP to the HTTPS port gets no page.
        let plain = reqwest::Client::new()
            .get(format!("http://{addr}/"))
            .timeout(Duration::from_secs(5))
            .send()
            .await;
        assert!(
            plain.is_err() || !plain.unwrap().status().is_success(),
            "no page over plain HTTP"
        );
        cancel.cancel();
        task.await.unwrap().unwrap();
    }
}
