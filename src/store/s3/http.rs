//! One signed S3 request, sent with retries: exponential backoff with jitter on transient
//! failures (5xx, SlowDown, timeouts, resets), clock correction on RequestTimeTooSkewed, no
//! retry on permanent ones (403, 400, 404, 412...), nor on a failure that no retry can mend:
//! a TLS handshake refused (CA, host name), a request that cannot be built, credentials the
//! server refuses. Those end the loop at once as [`StoreError::Tls`], [`StoreError::Config`]
//! and [`StoreError::Auth`], whose one line says what to change.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use chrono::{DateTime, Utc};
use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use sha2::{Digest, Sha256};
use tracing::{debug, warn};

use super::sigv4::{self, SignInput};
use super::{Inner, xml};
use crate::store::{StoreError, is_auth_code};

/// A request before signing.
#[derive(Debug, Clone)]
pub(crate) struct Req {
    pub method: Method,
    /// None: the bucket itself.
    pub key: Option<String>,
    pub query: Vec<(String, String)>,
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
    /// Hex SHA-256 of `body`; computed here when None.
    pub body_sha256_hex: Option<String>,
}

impl Req {
    pub(crate) fn new(method: Method, key: Option<&str>) -> Req {
        Req {
            method,
            key: key.map(str::to_string),
            query: Vec::new(),
            headers: Vec::new(),
            body: Bytes::new(),
            body_sha256_hex: None,
        }
    }

    pub(crate) fn query(mut self, k: &str, v: &str) -> Req {
        self.query.push((k.to_string(), v.to_string()));
        self
    }

    pub(crate) fn header(mut self, k: &str, v: impl Into<String>) -> Req {
        self.headers.push((k.to_string(), v.into()));
        self
    }

    pub(crate) fn body(mut self, body: Bytes, sha256_hex: Option<String>) -> Req {
        self.body = body;
        self.body_sha256_hex = sha256_hex;
        self
    }
}

/// A response whose body has been read.
#[derive(Debug)]
pub(crate) struct Resp {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Resp {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// S3 error code and message from the XML body (empty for HEAD).
    pub(crate) fn error_code(&self) -> (String, String) {
        let t = self.text();
        (
            xml::first_text(&t, "Code").unwrap_or_else(|| {
                self.status
                    .canonical_reason()
                    .unwrap_or("HTTP error")
                    .replace(' ', "")
            }),
            xml::first_text(&t, "Message").unwrap_or_default(),
        )
    }

    /// A permanent error describing this response.
    pub(crate) fn permanent(&self, op: &'static str, target: String) -> StoreError {
        let (code, message) = self.error_code();
        StoreError::Permanent {
            op,
            target,
            status: self.status.as_u16(),
            code,
            message,
        }
    }
}

/// What the retry loop hands back.
enum Reply {
    /// The response, body read.
    Read(Resp),
    /// A successful response whose body is still to be streamed.
    Streaming(reqwest::Response),
}

/// Why one attempt failed.
enum Failure {
    /// Worth retrying after a backoff.
    Transient(String),
    /// The server says our clock is off; its Date header has been recorded: retry at once.
    Skewed(String),
    /// Could not connect at all.
    Connect(String),
    /// No retry can help (TLS refused, request cannot be built, credentials refused).
    Fatal(StoreError),
}

impl Failure {
    fn detail(&self) -> String {
        match self {
            Failure::Transient(d) | Failure::Skewed(d) | Failure::Connect(d) => d.clone(),
            Failure::Fatal(e) => e.to_string(),
        }
    }
}

fn transient_code(code: &str) -> bool {
    matches!(
        code,
        "SlowDown"
            | "InternalError"
            | "ServiceUnavailable"
            | "RequestTimeout"
            | "RequestTimeoutException"
            | "Throttling"
            | "ThrottlingException"
    )
}

impl Inner {
    /// The host header and URL for a request.
    fn url_for(&self, req: &Req) -> (String, String, String) {
        let (scheme, host_port) = (&self.scheme, &self.host_port);
        let key_path = req.key.as_deref().map(sigv4::encode_key_path);
        let (host, path) = if self.path_style {
            let mut p = format!("/{}", sigv4::uri_encode(&self.config.bucket));
            if let Some(k) = &key_path {
                p.push('/');
                p.push_str(k);
            }
            (host_port.clone(), p)
        } else {
            let p = format!("/{}", key_path.unwrap_or_default());
            (format!("{}.{}", self.config.bucket, host_port), p)
        };
        let q = sigv4::canonical_query(&req.query);
        let url = if q.is_empty() {
            format!("{scheme}://{host}{path}")
        } else {
            format!("{scheme}://{host}{path}?{q}")
        };
        (host, path, url)
    }

    /// Time to sign with: the server's clock once known, else the configured clock.
    pub(crate) fn signing_time(&self) -> DateTime<Utc> {
        self.server_clock
            .now()
            .unwrap_or_else(|| self.config.clock.now())
    }

    fn target(&self, req: &Req) -> String {
        match &req.key {
            Some(k) => format!("{}/{}", self.config.bucket, k),
            None => self.config.bucket.clone(),
        }
    }

    async fn send_once(&self, req: &Req, payload_hex: &str) -> Result<reqwest::Response, Failure> {
        self.send_once_with(req, payload_hex, None).await
    }

    /// Signs and sends `req` once. With `streamed` (body, content length), that body is sent
    /// instead of `req.body` and no overall timeout is set (the caller's watchdog bounds it).
    async fn send_once_with(
        &self,
        req: &Req,
        payload_hex: &str,
        streamed: Option<(reqwest::Body, u64)>,
    ) -> Result<reqwest::Response, Failure> {
        let (host, path, url) = self.url_for(req);
        let creds = self.creds.get().await.map_err(|e| match e.kind() {
            crate::store::ErrorKind::Transient => Failure::Connect(e.to_string()),
            _ => Failure::Fatal(e),
        })?;
        let time = self.signing_time();
        let signed = sigv4::sign(
            &creds,
            &SignInput {
                method: req.method.as_str(),
                path: &path,
                query: &req.query,
                headers: &req.headers,
                host: &host,
                payload_sha256_hex: payload_hex,
                region: &self.config.region,
                time,
            },
        );
        let mut rb = self.http.request(req.method.clone(), &url);
        for (k, v) in req.headers.iter().chain(signed.iter()) {
            rb = rb.header(k.as_str(), v.as_str());
        }
        match streamed {
            Some((body, len)) => {
                rb = rb
                    .header(reqwest::header::CONTENT_LENGTH, len.to_string())
                    .body(body);
            }
            None => {
                if !req.body.is_empty() || req.method == Method::PUT || req.method == Method::POST {
                    rb = rb.body(req.body.clone());
                }
                rb = rb.timeout(self.config.retry.request_timeout);
            }
        }
        let resp = rb.send().await.map_err(|e| self.send_failure(&e))?;
        if let Some(d) = resp.headers().get("date").and_then(|v| v.to_str().ok()) {
            self.server_clock.observe(d);
        }
        Ok(resp)
    }

    /// What a failed send means: TLS refused and unbuildable requests end the loop, the
    /// rest is worth a retry.
    fn send_failure(&self, e: &reqwest::Error) -> Failure {
        let detail = error_chain(e);
        let endpoint = self.config.endpoint.to_string();
        if let Some(tls) = tls_cause(e) {
            return Failure::Fatal(StoreError::Tls {
                endpoint,
                detail: tls,
            });
        }
        if e.is_builder() {
            return Failure::Fatal(StoreError::Config(format!(
                "cannot make a request to {endpoint} for bucket {}: {detail}: check store.endpoint, \
                 store.bucket and store.path_style",
                self.config.bucket
            )));
        }
        if e.is_connect() {
            Failure::Connect(detail)
        } else {
            Failure::Transient(detail)
        }
    }

    /// A response no retry can mend: the server refused the credentials.
    fn refused_credentials(&self, r: &Resp) -> Option<StoreError> {
        if r.status != StatusCode::FORBIDDEN && r.status != StatusCode::UNAUTHORIZED {
            return None;
        }
        let (code, message) = r.error_code();
        is_auth_code(&code).then(|| StoreError::Auth {
            origin: self.creds.origin().to_string(),
            endpoint: self.config.endpoint.to_string(),
            code,
            message,
        })
    }

    async fn read_body(
        &self,
        resp: reqwest::Response,
    ) -> Result<(StatusCode, HeaderMap, Bytes), Failure> {
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = resp
            .bytes()
            .await
            .map_err(|e| Failure::Transient(error_chain(&e)))?;
        Ok((status, headers, body))
    }

    /// Sends `req` with retries and reads the whole response body (bounded by the request
    /// deadline). Returns any non-transient response, success or not: callers map statuses.
    pub(crate) async fn execute(&self, op: &'static str, req: &Req) -> Result<Resp, StoreError> {
        self.execute_attempts(op, req, self.config.retry.max_attempts)
            .await
    }

    /// [`Inner::execute`] with at most `max_attempts` attempts (skew corrections not counted).
    pub(crate) async fn execute_attempts(
        &self,
        op: &'static str,
        req: &Req,
        max_attempts: u32,
    ) -> Result<Resp, StoreError> {
        match self.send_with_retries(op, req, max_attempts, false).await? {
            Reply::Read(r) => Ok(r),
            // Only produced when asked to stream.
            Reply::Streaming(_) => Err(StoreError::Protocol {
                op,
                target: self.target(req),
                detail: "unexpected streaming reply".to_string(),
            }),
        }
    }

    /// The one retry loop. With `stream_success`, a successful response is returned with its
    /// body unread (for streaming GETs; a failure mid-body is then the caller's to see);
    /// otherwise every response is read whole, bounded by the request deadline.
    async fn send_with_retries(
        &self,
        op: &'static str,
        req: &Req,
        max_attempts: u32,
        stream_success: bool,
    ) -> Result<Reply, StoreError> {
        let payload_hex = match &req.body_sha256_hex {
            Some(h) => h.clone(),
            None if req.body.is_empty() => sigv4::EMPTY_SHA256.to_string(),
            None => hex::encode(Sha256::digest(&req.body)),
        };
        let policy = self.config.retry;
        let target = self.target(req);
        let mut attempt: u32 = 0;
        let mut skew_fixes = 0u32;
        let mut connect_failures = 0u32;
        let mut token_refreshed = false;
        loop {
            attempt += 1;
            let signed_at = self.signing_time();
            let failure = match self.send_once(req, &payload_hex).await {
                Ok(resp) if stream_success && resp.status().is_success() => {
                    return Ok(Reply::Streaming(resp));
                }
                Ok(resp) => match self.read_body(resp).await {
                    Ok((status, headers, body)) => {
                        let r = Resp {
                            status,
                            headers,
                            body,
                        };
                        match self.classify(&r, signed_at) {
                            None => match self.refused_credentials(&r) {
                                // Temporary credentials the server calls expired: fetch
                                // new ones once.
                                Some(StoreError::Auth { code, .. })
                                    if code == "ExpiredToken"
                                        && self.creds.refreshable()
                                        && !token_refreshed =>
                                {
                                    token_refreshed = true;
                                    self.creds.invalidate().await;
                                    attempt -= 1;
                                    continue;
                                }
                                Some(e) => return Err(e),
                                None => return Ok(Reply::Read(r)),
                            },
                            Some(f) => f,
                        }
                    }
                    Err(f) => f,
                },
                Err(f) => f,
            };
            let failure = match failure {
                Failure::Fatal(e) => return Err(e),
                f => f,
            };
            let detail = failure.detail();
            if let Failure::Connect(_) = failure {
                connect_failures += 1;
            }
            if let Failure::Skewed(_) = failure {
                // A skew correction is not a failure of the server: retry at once, but only a
                // few times (the clock could move again, or the server could be confused).
                skew_fixes += 1;
                if skew_fixes <= 3 {
                    warn!(op, %target, %detail, "clock skew corrected from server Date header");
                    attempt -= 1;
                    continue;
                }
            }
            if attempt >= max_attempts {
                if connect_failures == attempt {
                    return Err(StoreError::Unreachable {
                        endpoint: self.config.endpoint.to_string(),
                        detail,
                    });
                }
                return Err(StoreError::RetriesExhausted {
                    op,
                    target,
                    attempts: attempt,
                    last: detail,
                });
            }
            let pause = policy.backoff(attempt);
            debug!(op, %target, attempt, ?pause, %detail, "transient failure, retrying");
            tokio::time::sleep(pause).await;
        }
    }

    /// None: hand the response to the caller. Some: retry.
    fn classify(&self, r: &Resp, signed_at: DateTime<Utc>) -> Option<Failure> {
        let status = r.status;
        if status.is_success() || status.is_redirection() {
            // CompleteMultipartUpload can answer 200 with an error body.
            if r.body.starts_with(b"<?xml") || r.body.starts_with(b"<Error") {
                let t = r.text();
                if t.contains("<Error>") {
                    let (code, message) = r.error_code();
                    if transient_code(&code) {
                        return Some(Failure::Transient(format!(
                            "200 with error {code}: {message}"
                        )));
                    }
                }
            }
            return None;
        }
        let (code, message) = r.error_code();
        if code == "RequestTimeTooSkewed" {
            return Some(Failure::Skewed(format!(
                "{} {code}: {message}",
                status.as_u16()
            )));
        }
        // HEAD responses carry no body: recognise a skew rejection by the Date header.
        if let Some(server) = self
            .server_clock
            .now()
            .filter(|_| status == StatusCode::FORBIDDEN)
            && (server - signed_at).num_seconds().abs() > 5 * 60
        {
            return Some(Failure::Skewed(format!(
                "403 with local clock {}s off the server's",
                (signed_at - server).num_seconds()
            )));
        }
        if status.is_server_error() || transient_code(&code) {
            return Some(Failure::Transient(format!(
                "{} {code}: {message}",
                status.as_u16()
            )));
        }
        None
    }

    /// Sends `req` once with a body streamed from `make_body` (called again for each retry
    /// after a clock-skew correction, at most 3 times), signed with `payload_hex` (the known
    /// SHA-256 of the body), and reads the response. The deadline is a watchdog on the
    /// body's [`Progress`]: no new body bytes for `request_timeout`, or no answer within
    /// `request_timeout` after the last byte, fails the attempt.
    ///
    /// Returns any non-transient response; a transient failure is `RetriesExhausted` (one
    /// attempt) or `Unreachable`, for the caller's retry loop; a body that turned out not to be
    /// the announced bytes is [`StoreError::SourceChanged`].
    pub(crate) async fn execute_streamed(
        &self,
        op: &'static str,
        req: &Req,
        payload_hex: &str,
        content_length: u64,
        make_body: &mut (dyn FnMut() -> (reqwest::Body, Arc<Progress>) + Send),
    ) -> Result<Resp, StoreError> {
        let target = self.target(req);
        let mut skew_fixes = 0u32;
        loop {
            let signed_at = self.signing_time();
            let (body, progress) = make_body();
            let attempt = async {
                match self
                    .send_once_with(req, payload_hex, Some((body, content_length)))
                    .await
                {
                    Ok(resp) => match self.read_body(resp).await {
                        Ok((status, headers, body)) => {
                            let r = Resp {
                                status,
                                headers,
                                body,
                            };
                            match self.classify(&r, signed_at) {
                                None => match self.refused_credentials(&r) {
                                    Some(e) => Err(Failure::Fatal(e)),
                                    None => Ok(r),
                                },
                                Some(f) => Err(f),
                            }
                        }
                        Err(f) => Err(f),
                    },
                    Err(f) => Err(f),
                }
            };
            let timeout = self.config.retry.request_timeout;
            let failure = tokio::select! {
                r = attempt => match r {
                    Ok(r) => return Ok(r),
                    Err(f) => f,
                },
                why = progress.watchdog(timeout) => Failure::Transient(why),
            };
            if let Some(detail) = progress.changed() {
                return Err(StoreError::SourceChanged {
                    path: progress.path.clone(),
                    detail,
                });
            }
            let detail = failure.detail();
            match failure {
                Failure::Fatal(e) => return Err(e),
                Failure::Skewed(_) if skew_fixes < 3 => {
                    skew_fixes += 1;
                    warn!(op, %target, %detail, "clock skew corrected from server Date header");
                    continue;
                }
                Failure::Connect(_) => {
                    return Err(StoreError::Unreachable {
                        endpoint: self.config.endpoint.to_string(),
                        detail,
                    });
                }
                _ => {
                    return Err(StoreError::RetriesExhausted {
                        op,
                        target,
                        attempts: 1,
                        last: detail,
                    });
                }
            }
        }
    }

    /// Sends a GET and returns the response with its body unread (for streaming). Retries
    /// until the status line is in; a failure mid-body is the caller's to see.
    pub(crate) async fn execute_get(
        &self,
        op: &'static str,
        req: &Req,
    ) -> Result<reqwest::Response, StoreError> {
        match self
            .send_with_retries(op, req, self.config.retry.max_attempts, true)
            .await?
        {
            Reply::Streaming(resp) => Ok(resp),
            Reply::Read(r) if r.status == StatusCode::NOT_FOUND => Err(StoreError::NotFound {
                key: req.key.clone().unwrap_or_default(),
            }),
            Reply::Read(r) => Err(r.permanent(op, self.target(req))),
        }
    }
}

/// How far a streamed request body has got: the deadline watchdog of
/// [`Inner::execute_streamed`] reads it, the body stream updates it.
#[derive(Debug)]
pub(crate) struct Progress {
    /// The source file, for errors.
    pub path: String,
    start: Instant,
    /// Milliseconds after `start` of the last body chunk handed to the connection.
    last_ms: AtomicU64,
    /// Milliseconds after `start` when the body ended (0: not yet).
    done_ms: AtomicU64,
    /// Why the source is not the announced bytes, once found.
    changed: Mutex<Option<String>>,
}

impl Progress {
    pub(crate) fn new(path: String) -> Arc<Progress> {
        Arc::new(Progress {
            path,
            start: Instant::now(),
            last_ms: AtomicU64::new(0),
            done_ms: AtomicU64::new(0),
            changed: Mutex::new(None),
        })
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// A chunk went out.
    pub(crate) fn touch(&self) {
        self.last_ms.store(self.now_ms(), Ordering::Relaxed);
    }

    /// The whole body went out.
    pub(crate) fn body_done(&self) {
        self.done_ms.store(self.now_ms().max(1), Ordering::Relaxed);
    }

    /// The source is not the announced bytes.
    pub(crate) fn set_changed(&self, why: String) {
        if let Ok(mut c) = self.changed.lock() {
            c.get_or_insert(why);
        }
    }

    /// Why the source is not the announced bytes, if it is not.
    pub(crate) fn changed(&self) -> Option<String> {
        self.changed.lock().ok().and_then(|c| c.clone())
    }

    /// Resolves (with the reason) when the request has made no progress for `timeout`: no
    /// body bytes taken for that long, or no answer that long after the last byte.
    async fn watchdog(&self, timeout: Duration) -> String {
        let limit = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
        let tick = (timeout / 4).clamp(Duration::from_millis(50), Duration::from_secs(1));
        loop {
            tokio::time::sleep(tick).await;
            let now = self.now_ms();
            let done = self.done_ms.load(Ordering::Relaxed);
            if done > 0 {
                if now.saturating_sub(done) > limit {
                    return format!("no answer {timeout:?} after the whole body was sent");
                }
            } else if now.saturating_sub(self.last_ms.load(Ordering::Relaxed)) > limit {
                return format!("the upload made no progress for {timeout:?}");
            }
        }
    }
}

/// The TLS library's complaint when `e` is a refused handshake (unknown CA, wrong name,
/// expired certificate), as one line.
fn tls_cause(e: &(dyn std::error::Error + 'static)) -> Option<String> {
    // Bounded: a cause chain is short, but it is walked through io::Error wrappers (whose
    // `source()` skips the wrapped error itself) as well.
    let mut stack: Vec<&(dyn std::error::Error + 'static)> = vec![e];
    for _ in 0..64 {
        let c = stack.pop()?;
        if let Some(t) = c.downcast_ref::<rustls::Error>() {
            return Some(t.to_string());
        }
        if let Some(inner) = c
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            stack.push(inner);
        }
        if let Some(s) = c.source() {
            stack.push(s);
        }
    }
    None
}

/// The error and its causes on one line ("error sending request: connection refused").
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let cs = c.to_string();
        if !s.contains(&cs) {
            s.push_str(": ");
            s.push_str(&cs);
        }
        cur = c.source();
    }
    s
}

/// Parses an S3 ISO 8601 timestamp (`2026-11-22T03:00:00.000Z`).
pub(crate) fn parse_iso(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s.trim())
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// Formats a retain-until date the way S3 wants it.
pub fn format_iso(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// A duration rounded up to whole seconds, as chrono wants it.
pub(crate) fn chrono_dur(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or_else(|_| chrono::Duration::days(36500))
}
