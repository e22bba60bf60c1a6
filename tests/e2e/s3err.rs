//! Issue 18, on the real Ceph server: an IP endpoint works without `--path-style`; a bad CA,
//! a wrong secret key and a denied bucket fail at once (not retried) with one line saying what
//! to change; and the AWS credential chain's other sources (a profile of a shared credentials
//! file, a web-identity token exchanged at an STS stand-in, an IMDSv2 stand-in) each supply
//! the keys `store check` uses against Ceph.
//!
//! The STS and IMDS stand-ins are plain HTTP servers on 127.0.0.1 in this file: the real
//! services cannot run here, and nothing in these tests ever asks 169.254.169.254.

use redovault_redo::position::DbId;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Output;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use redovault_drill::testserver::TestServer;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;

use crate::store::ceph;

const RV: &str = env!("CARGO_BIN_EXE_redovault");

/// More than the whole retry schedule of 20 attempts could ever take is far above this; one
/// request to a local server takes milliseconds. An error that was retried even once with
/// `--max-attempts 20` would have to draw 19 near-zero backoffs to stay under it.
const AT_ONCE: Duration = Duration::from_secs(3);

/// Every variable of the AWS credential chain, removed so each test picks its own source.
const CHAIN_VARS: &[&str] = &[
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
    "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_CONFIG_FILE",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_ROLE_ARN",
    "AWS_ROLE_SESSION_NAME",
    "AWS_ENDPOINT_URL_STS",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "REDOVAULT_S3_ENDPOINT",
    "REDOVAULT_S3_BUCKET",
    "REDOVAULT_S3_CA_FILE",
    "REDOVAULT_S3_PATH_STYLE",
    "REDOVAULT_S3_REGION",
];

/// `redovault ARGS` with only `env` for credentials and `home` as HOME; returns the output
/// and how long it took.
async fn rv(args: &[&str], env: &[(&str, &str)], home: &Path) -> (Output, Duration) {
    let mut cmd = tokio::process::Command::new(RV);
    cmd.args(args).env("HOME", home);
    for v in CHAIN_VARS {
        cmd.env_remove(v);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let t = Instant::now();
    let out = cmd.output().await.unwrap();
    (out, t.elapsed())
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// `store --s3-endpoint E --bucket B --ca-file CA check` arguments against `s`.
fn check_args<'a>(s: &'a TestServer, bucket: &'a str, ca: &'a str) -> Vec<&'a str> {
    vec![
        "store",
        "--s3-endpoint",
        s.endpoint.as_str(),
        "--bucket",
        bucket,
        "--region",
        &s.region,
        "--ca-file",
        ca,
        "--max-attempts",
        "20",
    ]
}

fn owner_env(s: &TestServer) -> Vec<(&'static str, String)> {
    vec![
        ("AWS_ACCESS_KEY_ID", s.access_key.clone()),
        ("AWS_SECRET_ACCESS_KEY", s.secret_key.clone()),
    ]
}

fn as_refs<'a>(v: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    v.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

/// Asserts `out` failed within [`AT_ONCE`] with a single line holding every one of `says`.
fn assert_fails_at_once(what: &str, out: &Output, took: Duration, says: &[&str]) {
    let err = String::from_utf8_lossy(&out.stderr).trim().to_string();
    assert!(!out.status.success(), "{what}: succeeded: {}", text(out));
    assert!(took < AT_ONCE, "{what}: took {took:?} (retried?): {err}");
    assert_eq!(err.lines().count(), 1, "{what}: not one line: {err}");
    for s in says {
        assert!(err.contains(s), "{what}: {s:?} not in: {err}");
    }
    assert!(!err.contains("attempts"), "{what}: retried: {err}");
}

#[tokio::test]
async fn ip_endpoint_without_path_style_pushes_and_checks() {
    let Some(s) = ceph() else {
        return;
    };
    assert!(
        s.endpoint.host_str() == Some("127.0.0.1"),
        "the test server is addressed by IP: {}",
        s.endpoint
    );
    let home = tempfile::tempdir().unwrap();
    let ca = s.ca.display().to_string();
    let env = owner_env(&s);
    let mut args = check_args(&s, &s.bucket, &ca);
    args.push("check");
    let (out, _) = rv(&args, &as_refs(&env), home.path()).await;
    assert!(out.status.success(), "store check: {}", text(&out));
    assert!(
        text(&out).contains("Object Lock enabled"),
        "store check: {}",
        text(&out)
    );

    // push: a simulated archived log, no --path-style.
    let sim_dir = home.path().join("oracle");
    let mut cfg = redovault_drill::simulate::SimConfig::new(&sim_dir);
    cfg.log_size = 64 * 1024;
    cfg.transactions = Some(60);
    cfg.seed = 18;
    cfg.archive_current = true;
    cfg.db_id = DbId(rand::random::<u32>() | 1);
    let summary = redovault_drill::simulate::run(cfg).unwrap();
    let log = summary.archived[0].display().to_string();
    let prefix = format!("s3err-{:016x}", rand::random::<u64>());
    let state = home.path().join("state").display().to_string();
    let (out, _) = rv(
        &[
            "push",
            "--endpoint",
            s.endpoint.as_str(),
            "--bucket",
            &s.bucket_default,
            "--region",
            &s.region,
            "--ca-file",
            &ca,
            "--prefix",
            &prefix,
            "--state-dir",
            &state,
            &log,
        ],
        &as_refs(&env),
        home.path(),
    )
    .await;
    assert!(out.status.success(), "push: {}", text(&out));
}

#[tokio::test]
async fn bad_ca_wrong_secret_and_denied_bucket_fail_at_once_saying_what_to_change() {
    let Some(s) = ceph() else {
        return;
    };
    let home = tempfile::tempdir().unwrap();
    let ca = s.ca.display().to_string();

    // A CA that did not sign the server's certificate (the bundled web roots only).
    let other_ca = home.path().join("other-ca.pem");
    let cert = rcgen_free_cert();
    std::fs::write(&other_ca, cert).unwrap();
    let other = other_ca.display().to_string();
    let env = owner_env(&s);
    let mut args = check_args(&s, &s.bucket, &other);
    args.push("check");
    let (out, took) = rv(&args, &as_refs(&env), home.path()).await;
    assert_fails_at_once(
        "bad CA",
        &out,
        took,
        &["TLS", "UnknownIssuer", "store.ca_file", "--ca-file"],
    );

    // The owner's access key with a wrong secret.
    let wrong = vec![
        ("AWS_ACCESS_KEY_ID", s.access_key.clone()),
        ("AWS_SECRET_ACCESS_KEY", "not-the-secret".to_string()),
    ];
    let mut args = check_args(&s, &s.bucket, &ca);
    args.push("check");
    let (out, took) = rv(&args, &as_refs(&wrong), home.path()).await;
    assert_fails_at_once(
        "wrong secret",
        &out,
        took,
        &[
            "SignatureDoesNotMatch",
            "the environment (AWS_ACCESS_KEY_ID)",
            "secret key",
        ],
    );

    // An access key the server does not know.
    let unknown = vec![
        ("AWS_ACCESS_KEY_ID", "NOSUCHKEY".to_string()),
        ("AWS_SECRET_ACCESS_KEY", s.secret_key.clone()),
    ];
    let (out, took) = rv(&args, &as_refs(&unknown), home.path()).await;
    assert_fails_at_once(
        "unknown key",
        &out,
        took,
        &["InvalidAccessKeyId", "access key"],
    );

    // A valid user that the bucket's owner never granted anything: denied.
    let drill = s
        .drill
        .clone()
        .expect("the Ceph test server has the drill users");
    let verifier = vec![
        ("AWS_ACCESS_KEY_ID", drill.verifier.access_key.clone()),
        ("AWS_SECRET_ACCESS_KEY", drill.verifier.secret_key.clone()),
    ];
    let (out, took) = rv(&args, &as_refs(&verifier), home.path()).await;
    assert_fails_at_once(
        "denied bucket",
        &out,
        took,
        &["AccessDenied", &s.bucket, "policy"],
    );
}

/// What is wrong, the CA file, the credentials, what the one line must say.
type PushCase<'a> = (
    &'a str,
    &'a Path,
    &'a Vec<(&'static str, String)>,
    &'a [&'a str],
);

#[tokio::test]
async fn push_fails_at_once_on_a_bad_ca_a_wrong_secret_and_a_denied_bucket() {
    let Some(s) = ceph() else {
        return;
    };
    let home = tempfile::tempdir().unwrap();
    let other_ca = home.path().join("other-ca.pem");
    std::fs::write(&other_ca, rcgen_free_cert()).unwrap();
    let log = home.path().join("arch1_7_1224959854.dbf");
    std::fs::write(&log, b"never read: the store is checked first").unwrap();
    let config = |ca: &Path| {
        let cfg = home.path().join("watcher.toml");
        std::fs::write(
            &cfg,
            format!(
                "[watch]\ndirs = [\"{d}/archive\"]\n[state]\ndir = \"{d}/state\"\n[store]\n\
                 endpoint = \"{e}\"\nbucket = \"{b}\"\nregion = \"{r}\"\nca_file = \"{ca}\"\n\
                 max_attempts = 20\n",
                d = home.path().display(),
                e = s.endpoint,
                b = s.bucket_default,
                r = s.region,
                ca = ca.display(),
            ),
        )
        .unwrap();
        cfg.display().to_string()
    };
    let l = log.display().to_string();
    let owner = owner_env(&s);
    let wrong = vec![
        ("AWS_ACCESS_KEY_ID", s.access_key.clone()),
        ("AWS_SECRET_ACCESS_KEY", "not-the-secret".to_string()),
    ];
    let drill = s
        .drill
        .clone()
        .expect("the Ceph test server has the drill users");
    let verifier = vec![
        ("AWS_ACCESS_KEY_ID", drill.verifier.access_key.clone()),
        ("AWS_SECRET_ACCESS_KEY", drill.verifier.secret_key.clone()),
    ];
    let cases: [PushCase<'_>; 3] = [
        (
            "bad CA",
            &other_ca,
            &owner,
            &["TLS", "UnknownIssuer", "store.ca_file"],
        ),
        (
            "wrong secret",
            &s.ca,
            &wrong,
            &["SignatureDoesNotMatch", "AWS_ACCESS_KEY_ID", "secret key"],
        ),
        (
            "denied bucket",
            &s.ca,
            &verifier,
            &["AccessDenied", "policy"],
        ),
    ];
    for (what, ca, env, says) in cases {
        let cfg = config(ca);
        let (out, took) = rv(&["push", "--config", &cfg, &l], &as_refs(env), home.path()).await;
        assert_fails_at_once(what, &out, took, says);
        // Said once, not repeated by the error's cause chain.
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.matches(says[0]).count(), 1, "{what}: {err}");
    }
}

#[tokio::test]
async fn impossible_addressing_is_refused_before_any_request() {
    let Some(s) = ceph() else {
        return;
    };
    let home = tempfile::tempdir().unwrap();
    let cfg = home.path().join("watcher.toml");
    std::fs::write(
        &cfg,
        format!(
            "[watch]\ndirs = [\"{d}/archive\"]\n[state]\ndir = \"{d}/state\"\n[store]\n\
             endpoint = \"{e}\"\nbucket = \"{b}\"\npath_style = false\n",
            d = home.path().display(),
            e = s.endpoint,
            b = s.bucket
        ),
    )
    .unwrap();
    let c = cfg.display().to_string();
    let (out, took) = rv(&["check-config", &c], &[], home.path()).await;
    let all = text(&out);
    assert!(!out.status.success(), "{all}");
    assert!(took < AT_ONCE, "{took:?}");
    assert!(
        all.lines().any(|l| l.contains("store.path_style = false")
            && l.contains("IP address")
            && l.contains("set path_style = true")),
        "{all}"
    );
}

/// A PEM certificate of a CA that signed nothing the server has.
fn rcgen_free_cert() -> String {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params.self_signed(&key).unwrap().pem()
}

/// One HTTP request as a stand-in sees it.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: String,
}

impl Seen {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

type Handler = Arc<dyn Fn(&Seen) -> (u16, String) + Send + Sync>;

/// A plain HTTP/1.1 stand-in on 127.0.0.1: one request per connection, answered by `handler`.
struct StandIn {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for StandIn {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl StandIn {
    async fn start(handler: Handler) -> StandIn {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&seen);
        let task = tokio::spawn(async move {
            while let Ok((mut sock, _)) = listener.accept().await {
                let handler = Arc::clone(&handler);
                let log = Arc::clone(&log);
                tokio::spawn(async move {
                    let Some(req) = read_request(&mut sock).await else {
                        return;
                    };
                    let (status, body) = handler(&req);
                    log.lock().unwrap().push(req);
                    let resp = format!(
                        "HTTP/1.1 {status} X\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = sock.write_all(resp.as_bytes()).await;
                    let _ = sock.shutdown().await;
                });
            }
        });
        StandIn { addr, seen, task }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

async fn read_request(sock: &mut tokio::net::TcpStream) -> Option<Seen> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        let n = sock.read(&mut chunk).await.ok()?;
        if n == 0 || buf.len() > 1 << 20 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let (method, path) = (first.next()?.to_string(), first.next()?.to_string());
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let len: usize = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    while buf.len() < head_end + len {
        let n = sock.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Some(Seen {
        method,
        path,
        headers,
        body: String::from_utf8_lossy(&buf[head_end..head_end + len]).into_owned(),
    })
}

fn iso_in(d: Duration) -> String {
    (chrono::Utc::now() + chrono::Duration::from_std(d).unwrap())
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

#[tokio::test]
async fn a_profile_of_the_shared_credentials_file_supplies_the_keys() {
    let Some(s) = ceph() else {
        return;
    };
    let home = tempfile::tempdir().unwrap();
    let creds = home.path().join("creds");
    std::fs::write(
        &creds,
        format!(
            "[default]\naws_access_key_id = NOSUCHKEY\naws_secret_access_key = x\n\n\
             # the real user\n[ceph-owner]\naws_access_key_id = {}\naws_secret_access_key = {}\n",
            s.access_key, s.secret_key
        ),
    )
    .unwrap();
    let ca = s.ca.display().to_string();
    let c = creds.display().to_string();
    // The profile named by --profile (the [store] profile setting's flag)...
    let mut args = check_args(&s, &s.bucket, &ca);
    args.extend(["--profile", "ceph-owner", "check"]);
    let (out, _) = rv(&args, &[("AWS_SHARED_CREDENTIALS_FILE", &c)], home.path()).await;
    assert!(out.status.success(), "--profile: {}", text(&out));
    // ... and by AWS_PROFILE.
    let mut args = check_args(&s, &s.bucket, &ca);
    args.push("check");
    let (out, _) = rv(
        &args,
        &[
            ("AWS_SHARED_CREDENTIALS_FILE", &c),
            ("AWS_PROFILE", "ceph-owner"),
        ],
        home.path(),
    )
    .await;
    assert!(out.status.success(), "AWS_PROFILE: {}", text(&out));
    // The default profile holds an unknown key: refused, naming the profile and its file.
    let (out, took) = rv(&args, &[("AWS_SHARED_CREDENTIALS_FILE", &c)], home.path()).await;
    assert_fails_at_once(
        "default profile",
        &out,
        took,
        &["InvalidAccessKeyId", "profile default in", &c],
    );
    // ~/.aws/credentials when no file is named.
    std::fs::create_dir_all(home.path().join(".aws")).unwrap();
    std::fs::copy(&creds, home.path().join(".aws/credentials")).unwrap();
    let mut args = check_args(&s, &s.bucket, &ca);
    args.extend(["--profile", "ceph-owner", "check"]);
    let (out, _) = rv(&args, &[], home.path()).await;
    assert!(out.status.success(), "~/.aws/credentials: {}", text(&out));
}

#[tokio::test]
async fn a_web_identity_token_is_exchanged_at_sts_for_the_keys() {
    let Some(s) = ceph() else {
        return;
    };
    let home = tempfile::tempdir().unwrap();
    let token = format!("eyJ.k8s-sa-token.{:016x}", rand::random::<u64>());
    let token_file = home.path().join("token");
    std::fs::write(&token_file, format!("{token}\n")).unwrap();
    let role = "arn:aws:iam::123456789012:role/redovault-dbhost";
    let (ak, sk) = (s.access_key.clone(), s.secret_key.clone());
    let (want_token, want_role) = (token.clone(), role.to_string());
    let sts = StandIn::start(Arc::new(move |r: &Seen| {
        let form: Vec<(String, String)> = url::form_urlencoded::parse(r.body.as_bytes())
            .into_owned()
            .collect();
        let get = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        if r.method != "POST"
            || get("Action") != Some("AssumeRoleWithWebIdentity")
            || get("RoleArn") != Some(want_role.as_str())
        {
            return (
                400,
                "<ErrorResponse><Error><Code>InvalidAction</Code></Error></ErrorResponse>".into(),
            );
        }
        if get("WebIdentityToken") != Some(want_token.as_str()) {
            return (
                400,
                "<ErrorResponse><Error><Code>InvalidIdentityToken</Code><Message>bad token\
                 </Message></Error></ErrorResponse>"
                    .into(),
            );
        }
        (
            200,
            format!(
                "<AssumeRoleWithWebIdentityResponse><AssumeRoleWithWebIdentityResult><Credentials>\
                 <AccessKeyId>{ak}</AccessKeyId><SecretAccessKey>{sk}</SecretAccessKey>\
                 <SessionToken></SessionToken><Expiration>{}</Expiration></Credentials>\
                 </AssumeRoleWithWebIdentityResult></AssumeRoleWithWebIdentityResponse>",
                iso_in(Duration::from_secs(3600))
            ),
        )
    }))
    .await;
    let ca = s.ca.display().to_string();
    let tf = token_file.display().to_string();
    let sts_url = sts.url();
    let mut args = check_args(&s, &s.bucket, &ca);
    args.extend(["--sts-endpoint", &sts_url, "check"]);
    let env = [
        ("AWS_WEB_IDENTITY_TOKEN_FILE", tf.as_str()),
        ("AWS_ROLE_ARN", role),
    ];
    let (out, _) = rv(&args, &env, home.path()).await;
    assert!(out.status.success(), "web identity: {}", text(&out));
    assert_eq!(sts.seen().len(), 1, "{:?}", sts.seen());

    // A token STS refuses: one line naming the source and STS's answer, no S3 request retried.
    std::fs::write(&token_file, "stolen-or-stale").unwrap();
    let (out, took) = rv(&args, &env, home.path()).await;
    assert_fails_at_once(
        "refused token",
        &out,
        took,
        &["web identity token file", "InvalidIdentityToken", role],
    );
}

/// An IMDSv2 stand-in: answers only with the session token from its PUT; its credentials
/// expire `lifetime` from now.
async fn imds(s: &TestServer, lifetime: Duration) -> StandIn {
    let session = format!("imds-session-{:016x}", rand::random::<u64>());
    let (ak, sk) = (s.access_key.clone(), s.secret_key.clone());
    StandIn::start(Arc::new(move |r: &Seen| {
        if r.method == "PUT" && r.path == "/latest/api/token" {
            return match r.header("x-aws-ec2-metadata-token-ttl-seconds") {
                Some(_) => (200, session.clone()),
                None => (400, String::new()),
            };
        }
        if r.header("x-aws-ec2-metadata-token") != Some(session.as_str()) {
            return (401, String::new());
        }
        match r.path.as_str() {
            "/latest/meta-data/iam/security-credentials/" => (200, "rv-instance-role\n".into()),
            "/latest/meta-data/iam/security-credentials/rv-instance-role" => (
                200,
                format!(
                    r#"{{"Code":"Success","Type":"AWS-HMAC","AccessKeyId":"{ak}","SecretAccessKey":"{sk}","Token":"","Expiration":"{}"}}"#,
                    iso_in(lifetime)
                ),
            ),
            _ => (404, String::new()),
        }
    }))
    .await
}

#[tokio::test]
async fn imdsv2_supplies_the_keys_only_when_asked_and_refreshes_before_expiry() {
    let Some(s) = ceph() else {
        return;
    };
    let home = tempfile::tempdir().unwrap();
    let ca = s.ca.display().to_string();
    let md = imds(&s, Duration::from_secs(6 * 3600)).await;
    let md_url = md.url();

    // Not asked for: the chain stops at the shared files and says how to ask.
    let mut args = check_args(&s, &s.bucket, &ca);
    args.extend(["--metadata-endpoint", &md_url, "check"]);
    let (out, took) = rv(&args, &[], home.path()).await;
    assert_fails_at_once(
        "metadata not asked",
        &out,
        took,
        &["no S3 credentials", "store.credentials = \"instance\""],
    );
    assert!(md.seen().is_empty(), "asked the metadata service unbidden");

    // Asked for: PUT token, GET role, GET credentials, then the S3 request.
    let mut args = check_args(&s, &s.bucket, &ca);
    args.extend([
        "--credentials",
        "instance",
        "--metadata-endpoint",
        &md_url,
        "check",
    ]);
    let (out, _) = rv(&args, &[], home.path()).await;
    assert!(out.status.success(), "IMDSv2: {}", text(&out));
    let seen: Vec<(String, String)> = md.seen().into_iter().map(|r| (r.method, r.path)).collect();
    assert_eq!(
        seen,
        [
            ("PUT", "/latest/api/token"),
            ("GET", "/latest/meta-data/iam/security-credentials/"),
            (
                "GET",
                "/latest/meta-data/iam/security-credentials/rv-instance-role"
            ),
        ]
        .map(|(m, p)| (m.to_string(), p.to_string()))
    );

    // Credentials that expire within the refresh margin are fetched again before the next
    // request: `store put` makes several (check, put, HEAD), each with fresh keys.
    let short = imds(&s, Duration::from_secs(60)).await;
    let short_url = short.url();
    let file = home.path().join("object");
    std::fs::write(&file, b"imds refresh").unwrap();
    let f = file.display().to_string();
    let prefix = format!("s3err-{:016x}", rand::random::<u64>());
    let mut args = check_args(&s, &s.bucket_default, &ca);
    args.extend([
        "--credentials",
        "instance",
        "--metadata-endpoint",
        &short_url,
        "--retention-days",
        "0",
        "put",
        "--prefix",
        &prefix,
        &f,
    ]);
    let (out, _) = rv(&args, &[], home.path()).await;
    assert!(out.status.success(), "put with IMDS keys: {}", text(&out));
    let tokens = short.seen().iter().filter(|r| r.method == "PUT").count();
    assert!(
        tokens >= 3,
        "credentials not refreshed before expiry: {tokens} fetches"
    );
}
