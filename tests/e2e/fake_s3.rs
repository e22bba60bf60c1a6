//! An in-process, scripted S3 endpoint for fault injection (plain HTTP on 127.0.0.1).
//!
//! It keeps a tiny versioned object map so that retries can be checked for what they leave
//! behind (one version, the right bytes), and it lets a test script a fault for any request:
//! an error status, a stall, a connection cut before or after the body is taken, or a clock
//! check that answers RequestTimeTooSkewed. It stands beside the real S3 servers, never in
//! their place: everything else is tested against Ceph and LocalStack.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use chrono::{DateTime, Utc};
use md5::{Digest as _, Md5};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// One request as the fake saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub query: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// What to do with a request.
#[derive(Debug, Clone)]
pub enum Fault {
    /// Serve it normally.
    None,
    /// Answer this status with this S3 error code.
    Status(u16, &'static str),
    /// Wait this long, then serve it normally (a deadline shorter than this must fire).
    Stall(Duration),
    /// Read the headers and half the body, then close the connection.
    CutMidBody,
    /// Take the whole request (and store the object) but close before answering.
    CutBeforeAnswer,
}

type Script = dyn Fn(&Seen, usize) -> Fault + Send + Sync;

#[derive(Debug, Clone)]
pub struct Version {
    pub id: String,
    pub body: Vec<u8>,
    pub headers: Vec<(String, String)>,
}

#[derive(Default)]
struct State {
    seen: Vec<Seen>,
    objects: BTreeMap<String, Vec<Version>>,
}

/// The fake server; dropped: stops accepting.
pub struct FakeS3 {
    pub endpoint: String,
    state: Arc<Mutex<State>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeS3 {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeS3 {
    /// Starts on 127.0.0.1 with a script: `script(request, index of that request)`.
    /// `skew_check`: answer RequestTimeTooSkewed when x-amz-date is more than 15 min off.
    pub async fn start(
        script: impl Fn(&Seen, usize) -> Fault + Send + Sync + 'static,
        skew_check: bool,
    ) -> FakeS3 {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(State::default()));
        let script: Arc<Script> = Arc::new(script);
        let st = Arc::clone(&state);
        let task = tokio::spawn(async move {
            loop {
                let Ok((sock, _)) = listener.accept().await else {
                    return;
                };
                let st = Arc::clone(&st);
                let script = Arc::clone(&script);
                tokio::spawn(async move {
                    let _ = serve(sock, st, script, skew_check).await;
                });
            }
        });
        FakeS3 {
            endpoint: format!("http://{addr}"),
            state,
            task,
        }
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.state.lock().unwrap().seen.clone()
    }

    pub fn versions(&self, key: &str) -> Vec<Version> {
        self.state
            .lock()
            .unwrap()
            .objects
            .get(key)
            .cloned()
            .unwrap_or_default()
    }
}

async fn read_request(sock: &mut TcpStream) -> Option<(Seen, usize)> {
    let mut buf = Vec::new();
    let mut tmp = [0u8; 8192];
    let head_end = loop {
        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break p + 4;
        }
        let n = sock.read(&mut tmp).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&tmp[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let method = first.next()?.to_string();
    let target = first.next()?.to_string();
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p.to_string(), q.to_string()),
        None => (target, String::new()),
    };
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let len = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse::<usize>().ok())
        .unwrap_or(0);
    let body = buf[head_end..].to_vec();
    Some((
        Seen {
            method,
            path,
            query,
            headers,
            body,
        },
        len,
    ))
}

async fn read_body(sock: &mut TcpStream, seen: &mut Seen, len: usize) -> bool {
    let mut tmp = vec![0u8; 65536];
    while seen.body.len() < len {
        match sock.read(&mut tmp).await {
            Ok(0) | Err(_) => return false,
            Ok(n) => seen.body.extend_from_slice(&tmp[..n]),
        }
    }
    true
}

fn http_date(t: DateTime<Utc>) -> String {
    t.format("%a, %d %b %Y %H:%M:%S GMT").to_string()
}

/// Writes a response; for HEAD, the Content-Length of `body` without the body.
async fn respond(
    sock: &mut TcpStream,
    head: bool,
    status: u16,
    headers: &[(String, String)],
    body: &[u8],
) {
    let mut out = format!(
        "HTTP/1.1 {status} X\r\ndate: {}\r\nconnection: close\r\n",
        http_date(Utc::now())
    );
    for (k, v) in headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str(&format!("content-length: {}\r\n\r\n", body.len()));
    let _ = sock.write_all(out.as_bytes()).await;
    if !head {
        let _ = sock.write_all(body).await;
    }
    let _ = sock.shutdown().await;
}

fn error_xml(code: &str) -> Vec<u8> {
    format!("<?xml version=\"1.0\"?><Error><Code>{code}</Code><Message>scripted {code}</Message></Error>")
        .into_bytes()
}

async fn serve(
    mut sock: TcpStream,
    state: Arc<Mutex<State>>,
    script: Arc<Script>,
    skew_check: bool,
) -> Option<()> {
    let (mut seen, len) = read_request(&mut sock).await?;
    let idx = {
        let st = state.lock().unwrap();
        st.seen.len()
    };
    let fault = script(&seen, idx);
    if let Fault::CutMidBody = fault {
        let half = len / 2;
        let _ = read_body(&mut sock, &mut seen, half).await;
        seen.body.truncate(half);
        state.lock().unwrap().seen.push(seen);
        return None; // drop: connection reset
    }
    let complete = read_body(&mut sock, &mut seen, len).await;
    state.lock().unwrap().seen.push(seen.clone());
    if !complete {
        return None;
    }
    if let Fault::Stall(d) = fault {
        tokio::time::sleep(d).await;
    }
    if let Fault::Status(code, s3code) = fault {
        respond(
            &mut sock,
            seen.method == "HEAD",
            code,
            &[],
            &error_xml(s3code),
        )
        .await;
        return Some(());
    }
    if skew_check {
        let off = seen
            .header("x-amz-date")
            .and_then(|d| chrono::NaiveDateTime::parse_from_str(d, "%Y%m%dT%H%M%SZ").ok())
            .map(|d| (d.and_utc() - Utc::now()).num_seconds().abs());
        if off.is_none_or(|o| o > 15 * 60) {
            let body = if seen.method == "HEAD" {
                Vec::new()
            } else {
                error_xml("RequestTimeTooSkewed")
            };
            respond(&mut sock, seen.method == "HEAD", 403, &[], &body).await;
            return Some(());
        }
    }
    let (status, headers, body) = handle(&seen, &state);
    if let Fault::CutBeforeAnswer = fault {
        return None;
    }
    respond(&mut sock, seen.method == "HEAD", status, &headers, &body).await;
    Some(())
}

/// A minimal versioned S3: GET ?object-lock, HEAD, GET, PUT (If-None-Match, Content-MD5).
fn handle(seen: &Seen, state: &Mutex<State>) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let mut st = state.lock().unwrap();
    let parts: Vec<&str> = seen.path.trim_start_matches('/').splitn(2, '/').collect();
    let key = parts.get(1).map(|k| k.to_string());
    let version_q = seen
        .query
        .split('&')
        .find_map(|kv| kv.strip_prefix("versionId="))
        .map(str::to_string);
    match (seen.method.as_str(), key) {
        ("GET", None) if seen.query.contains("object-lock") => (
            200,
            vec![],
            b"<ObjectLockConfiguration><ObjectLockEnabled>Enabled</ObjectLockEnabled></ObjectLockConfiguration>"
                .to_vec(),
        ),
        ("HEAD", Some(k)) | ("GET", Some(k)) => {
            let versions = st.objects.get(&k).cloned().unwrap_or_default();
            let v = match &version_q {
                Some(id) => versions.iter().find(|v| &v.id == id).cloned(),
                None => versions.last().cloned(),
            };
            match v {
                None => (404, vec![], if seen.method == "GET" { error_xml("NoSuchKey") } else { vec![] }),
                Some(v) => {
                    let mut h = v.headers.clone();
                    h.push(("x-amz-version-id".into(), v.id.clone()));
                    h.push(("etag".into(), format!("\"{}\"", hex::encode(Md5::digest(&v.body)))));
                    (200, h, v.body.clone())
                }
            }
        }
        ("PUT", Some(k)) => {
            if let Some(md5) = seen.header("content-md5") {
                let ours = base64::engine::general_purpose::STANDARD.encode(Md5::digest(&seen.body));
                if ours != md5 {
                    return (400, vec![], error_xml("BadDigest"));
                }
            }
            let exists = st.objects.get(&k).is_some_and(|v| !v.is_empty());
            if exists && seen.header("if-none-match") == Some("*") {
                return (412, vec![], error_xml("PreconditionFailed"));
            }
            let keep: Vec<(String, String)> = seen
                .headers
                .iter()
                .filter(|(n, _)| n.starts_with("x-amz-meta-") || n.starts_with("x-amz-object-lock-"))
                .cloned()
                .collect();
            let versions = st.objects.entry(k).or_default();
            let id = format!("v{}", versions.len() + 1);
            versions.push(Version { id: id.clone(), body: seen.body.clone(), headers: keep });
            (200, vec![("x-amz-version-id".into(), id)], vec![])
        }
        _ => (501, vec![], error_xml("NotImplemented")),
    }
}
