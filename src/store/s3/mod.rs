//! S3 backend with Object Lock: a small S3 client of our own (SigV4 over reqwest and rustls).
//!
//! Why not `object_store` or `aws-sdk-s3` (see ARCHITECTURE.md): object_store's put API cannot
//! carry Object Lock headers; aws-sdk-s3 streams aws-chunked bodies by default (which Ceph
//! refuses) and costs a large C-backed build. The operations we need are few (PUT, multipart,
//! HEAD, GET, LIST, GET ?object-lock), and we need exact control of the headers: Content-MD5
//! *and* x-amz-checksum-sha256 as plain headers, If-None-Match, signed payload hashes.

use crate::digest::Sha256Digest;
use std::ops::Range;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures::TryStreamExt as _;
use reqwest::StatusCode;
use tokio::io::AsyncRead;
use tokio::sync::OnceCell;
use tokio_util::io::StreamReader;
use url::Url;

use super::clock::ServerClock;
use super::{
    ArchiveStore, ByteStream, Clock, FileSource, LockMode, LockState, ObjectInfo, ObjectSummary,
    PutOutcome, Readiness, Retention, RetryPolicy, StoreError, SystemClock, VersionSummary,
    is_auth_code, validate_key,
};

pub mod credentials;
mod http;
mod sigv4;
mod stream;
mod upload;
pub mod xml;

pub use credentials::ChainConfig;
pub use reqwest::Method;
pub use sigv4::Credentials;

pub use http::format_iso;
use http::{Req, parse_iso};

/// Metadata key holding the hex SHA-256 of a single-part upload.
pub(crate) const META_SHA256: &str = "x-amz-meta-redovault-sha256";
/// Metadata key holding the part size of a multipart upload.
pub(crate) const META_PART_SIZE: &str = "x-amz-meta-redovault-part-size";

/// Configuration of the S3 backend.
#[derive(Debug, Clone)]
pub struct S3Config {
    /// `https://host:port` (http only for in-process fault-injection tests).
    pub endpoint: Url,
    pub bucket: String,
    /// Signing region.
    pub region: String,
    /// Path-style addressing (`https://host/bucket/key`, `Some(true)`) or virtual-hosted
    /// (`https://bucket.host/key`, `Some(false)`). None: as the AWS tools choose, path-style
    /// for an IP-literal or `localhost` endpoint and for a bucket name that cannot be a DNS
    /// label, virtual-hosted otherwise (see [`addressing`]).
    pub path_style: Option<bool>,
    /// An extra CA certificate (PEM) to trust, for private S3 servers.
    pub ca_file: Option<PathBuf>,
    /// Credentials; None: from the AWS credential chain described by `credential_chain`
    /// (see [`credentials`]).
    pub credentials: Option<Credentials>,
    /// How the chain looks credentials up when `credentials` is None.
    pub credential_chain: ChainConfig,
    /// How objects are locked.
    pub retention: Retention,
    /// Objects larger than this go up as multipart uploads. A multiple of `part_size`.
    pub multipart_threshold: u64,
    /// Size of each part of a multipart upload.
    pub part_size: u64,
    /// Parts in flight at once.
    pub concurrency: usize,
    /// [`ArchiveStore::put_file`]: files up to this size go up as one PUT streamed from the
    /// file (nothing buffered); larger ones as a multipart upload of `stream_part_size` parts,
    /// each streamed from the file. S3 accepts single PUTs up to 5 GiB.
    pub stream_threshold: u64,
    /// Part size of a multipart upload from a file (parts are streamed, not buffered).
    pub stream_part_size: u64,
    /// Retries and deadlines.
    pub retry: RetryPolicy,
    /// Accept a bucket without Object Lock (local experiments only: archives are deletable).
    pub allow_unlocked_bucket: bool,
    /// Send `If-None-Match: *` so the server refuses to create a second version.
    pub conditional_put: bool,
    /// Also send Content-MD5 (MD5 costs more CPU than SHA-256 with SHA-NI). Off by default:
    /// every body already carries x-amz-checksum-sha256 (verified by AWS, LocalStack, RustFS)
    /// and a signed payload SHA-256 (verified by AWS and Ceph radosgw). Turn it on for a
    /// server that checks neither.
    pub content_md5: bool,
    /// The local clock (only used to sign the very first request; then the server's is used).
    pub clock: Arc<dyn Clock>,
}

impl S3Config {
    /// A configuration with the defaults: COMPLIANCE for 30 days, 16 MiB parts, 4 in flight,
    /// multipart above 64 MiB (files from [`ArchiveStore::put_file`]: one streamed PUT up to
    /// 5 GiB, then 64 MiB streamed parts), addressing chosen from the endpoint.
    pub fn new(endpoint: Url, bucket: impl Into<String>) -> S3Config {
        S3Config {
            endpoint,
            bucket: bucket.into(),
            region: "us-east-1".to_string(),
            path_style: None,
            ca_file: None,
            credentials: None,
            credential_chain: ChainConfig::default(),
            retention: Retention::Explicit {
                mode: LockMode::Compliance,
                period: Duration::from_secs(30 * 86400),
            },
            multipart_threshold: 64 << 20,
            part_size: 16 << 20,
            concurrency: 4,
            stream_threshold: 5 << 30,
            stream_part_size: 64 << 20,
            retry: RetryPolicy::default(),
            allow_unlocked_bucket: false,
            conditional_put: true,
            content_md5: false,
            clock: Arc::new(SystemClock),
        }
    }
}

/// Shared state of one store: the one HTTP client, credentials, the server's clock.
#[derive(Debug)]
pub(crate) struct Inner {
    pub(crate) config: S3Config,
    pub(crate) http: reqwest::Client,
    pub(crate) creds: credentials::Provider,
    /// The addressing in force (resolved from [`S3Config::path_style`]).
    pub(crate) path_style: bool,
    pub(crate) scheme: String,
    pub(crate) host_port: String,
    pub(crate) server_clock: ServerClock,
    pub(crate) readiness: OnceCell<Readiness>,
    /// Bytes of source data held in memory right now, and the most ever.
    pub(crate) buffered: AtomicU64,
    pub(crate) peak_buffered: AtomicU64,
}

impl Inner {
    pub(crate) fn add_buffered(&self, n: u64) {
        let now = self.buffered.fetch_add(n, Ordering::SeqCst) + n;
        self.peak_buffered.fetch_max(now, Ordering::SeqCst);
    }

    pub(crate) fn sub_buffered(&self, n: u64) {
        self.buffered.fetch_sub(n, Ordering::SeqCst);
    }
}

/// The S3 Object Lock store. Cheap to clone (one shared client).
#[derive(Debug, Clone)]
pub struct S3Store {
    pub(crate) inner: Arc<Inner>,
}

impl S3Store {
    /// Builds the client. Does not contact the server: call [`ArchiveStore::check`] at
    /// start-up (puts also run it once before the first upload).
    pub fn new(config: S3Config) -> Result<S3Store, StoreError> {
        let scheme = config.endpoint.scheme().to_string();
        if scheme != "https" && scheme != "http" {
            return Err(StoreError::Config(format!(
                "S3 endpoint {} must be https:// (or http:// for local tests)",
                config.endpoint
            )));
        }
        let host = config.endpoint.host_str().ok_or_else(|| {
            StoreError::Config(format!("S3 endpoint {} has no host", config.endpoint))
        })?;
        let path_style = addressing(&config.endpoint, &config.bucket, config.path_style)
            .map_err(StoreError::Config)?;
        let host_port = match config.endpoint.port() {
            Some(p) => format!("{host}:{p}"),
            None => host.to_string(),
        };
        if config.part_size < 5 << 20 && config.part_size < config.multipart_threshold {
            // S3 refuses parts under 5 MiB except the last; allow small parts only in tests
            // that never reach the threshold.
            tracing::warn!(part_size = config.part_size, "part size under 5 MiB");
        }
        if config.multipart_threshold == 0
            || config.part_size == 0
            || !config.multipart_threshold.is_multiple_of(config.part_size)
        {
            return Err(StoreError::Config(format!(
                "multipart threshold ({}) must be a non-zero multiple of the part size ({})",
                config.multipart_threshold, config.part_size
            )));
        }
        let (source, origin) = match &config.credentials {
            Some(c) => (
                credentials::Source::Static(c.clone()),
                "the configuration".to_string(),
            ),
            None => credentials::resolve(&config.credential_chain, &credentials::process_env())?,
        };
        let mut builder = reqwest::Client::builder()
            .connect_timeout(config.retry.connect_timeout)
            .pool_idle_timeout(Duration::from_secs(30))
            .tcp_nodelay(true)
            .https_only(scheme == "https")
            .redirect(reqwest::redirect::Policy::none());
        if let Some(ca) = &config.ca_file {
            let pem = std::fs::read(ca).map_err(|e| {
                StoreError::Config(format!("cannot read CA file {}: {e}", ca.display()))
            })?;
            if !String::from_utf8_lossy(&pem).contains("-----BEGIN CERTIFICATE-----") {
                return Err(StoreError::Config(format!(
                    "CA file {} holds no PEM certificate",
                    ca.display()
                )));
            }
            let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
                StoreError::Config(format!("CA file {} is not valid PEM: {e}", ca.display()))
            })?;
            for c in certs {
                builder = builder.add_root_certificate(c);
            }
        }
        let http = builder
            .build()
            .map_err(|e| StoreError::Config(format!("cannot build the HTTPS client: {e}")))?;
        // STS and metadata services: their own client (a metadata service speaks plain http).
        let cred_http = reqwest::Client::builder()
            .connect_timeout(config.retry.connect_timeout)
            .timeout(Duration::from_secs(30))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| StoreError::Config(format!("cannot build the HTTP client: {e}")))?;
        tracing::debug!(%origin, path_style, "S3 store configured");
        Ok(S3Store {
            inner: Arc::new(Inner {
                config,
                http,
                creds: credentials::Provider::new(source, origin, cred_http),
                path_style,
                scheme,
                host_port,
                server_clock: ServerClock::default(),
                readiness: OnceCell::new(),
                buffered: AtomicU64::new(0),
                peak_buffered: AtomicU64::new(0),
            }),
        })
    }

    pub fn config(&self) -> &S3Config {
        &self.inner.config
    }

    /// The most source bytes ever held in memory at once by this store's uploads.
    pub fn peak_buffered_bytes(&self) -> u64 {
        self.inner.peak_buffered.load(Ordering::SeqCst)
    }

    /// Where the credentials come from ("the environment (AWS_ACCESS_KEY_ID)", "profile p in
    /// FILE", ...).
    pub fn credentials_origin(&self) -> &str {
        self.inner.creds.origin()
    }

    /// Requests made so far to STS or a metadata service for temporary credentials.
    pub fn credential_fetches(&self) -> u64 {
        self.inner.creds.fetches()
    }

    /// True when requests are path-style (as configured or chosen from the endpoint).
    pub fn path_style(&self) -> bool {
        self.inner.path_style
    }

    /// The server's current time, from the `Date` headers of its responses (None before the
    /// first response).
    pub fn server_now(&self) -> Option<chrono::DateTime<chrono::Utc>> {
        self.inner.server_clock.now()
    }

    pub(crate) fn target(&self, key: &str) -> String {
        format!("{}/{}", self.inner.config.bucket, key)
    }

    async fn check_uncached(&self) -> Result<Readiness, StoreError> {
        let inner = &self.inner;
        let cfg = &inner.config;
        let req = Req::new(Method::GET, None).query("object-lock", "");
        let r = inner.execute("check-bucket", &req).await?;
        let (code, message) = r.error_code();
        let endpoint = cfg.endpoint.to_string();
        match r.status {
            s if s.is_success() => {
                let t = r.text();
                let enabled =
                    xml::first_text(&t, "ObjectLockEnabled").as_deref() == Some("Enabled");
                if !enabled {
                    return self.unlocked(&endpoint).await;
                }
                let default_retention = parse_default_retention(&t);
                let description = match default_retention {
                    Some((m, d)) => format!(
                        "bucket {} at {endpoint}: Object Lock enabled, default retention {m} {} days",
                        cfg.bucket,
                        d.as_secs() / 86400
                    ),
                    None => format!(
                        "bucket {} at {endpoint}: Object Lock enabled, no default retention",
                        cfg.bucket
                    ),
                };
                if matches!(cfg.retention, Retention::BucketDefault) && default_retention.is_none()
                {
                    return Err(StoreError::Config(format!(
                        "bucket {} has no default retention, but the store is configured to rely \
                         on it: objects would not be locked",
                        cfg.bucket
                    )));
                }
                Ok(Readiness {
                    worm: true,
                    default_retention,
                    description,
                })
            }
            StatusCode::NOT_FOUND if code == "NoSuchBucket" => Err(StoreError::NoSuchBucket {
                bucket: cfg.bucket.clone(),
                endpoint,
            }),
            StatusCode::NOT_FOUND => self.unlocked(&endpoint).await,
            StatusCode::FORBIDDEN | StatusCode::UNAUTHORIZED if is_auth_code(&code) => {
                Err(StoreError::Auth {
                    origin: inner.creds.origin().to_string(),
                    endpoint,
                    code,
                    message,
                })
            }
            StatusCode::FORBIDDEN | StatusCode::UNAUTHORIZED => Err(StoreError::AccessDenied {
                bucket: cfg.bucket.clone(),
                endpoint,
                code,
                message,
            }),
            _ => Err(r.permanent("check-bucket", cfg.bucket.clone())),
        }
    }

    /// The bucket answered that it has no Object Lock configuration.
    async fn unlocked(&self, endpoint: &str) -> Result<Readiness, StoreError> {
        let cfg = &self.inner.config;
        if !cfg.allow_unlocked_bucket {
            return Err(StoreError::NoObjectLock {
                bucket: cfg.bucket.clone(),
            });
        }
        // Make sure the bucket itself exists and the credentials work.
        let r = self
            .inner
            .execute(
                "check-bucket",
                &Req::new(Method::GET, None).query("versioning", ""),
            )
            .await?;
        if !r.status.is_success() {
            let (code, message) = r.error_code();
            return Err(match r.status {
                StatusCode::NOT_FOUND => StoreError::NoSuchBucket {
                    bucket: cfg.bucket.clone(),
                    endpoint: endpoint.to_string(),
                },
                StatusCode::FORBIDDEN | StatusCode::UNAUTHORIZED if is_auth_code(&code) => {
                    StoreError::Auth {
                        origin: self.inner.creds.origin().to_string(),
                        endpoint: endpoint.to_string(),
                        code,
                        message,
                    }
                }
                StatusCode::FORBIDDEN => StoreError::AccessDenied {
                    bucket: cfg.bucket.clone(),
                    endpoint: endpoint.to_string(),
                    code,
                    message,
                },
                _ => r.permanent("check-bucket", cfg.bucket.clone()),
            });
        }
        tracing::warn!(bucket = %cfg.bucket, "bucket has no Object Lock: archives are deletable");
        Ok(Readiness {
            worm: false,
            default_retention: None,
            description: format!(
                "bucket {} at {endpoint}: NO Object Lock (allowed for local testing): archives \
                 are deletable",
                cfg.bucket
            ),
        })
    }

    pub(crate) async fn ensure_checked(&self) -> Result<&Readiness, StoreError> {
        self.inner
            .readiness
            .get_or_try_init(|| self.check_uncached())
            .await
    }

    /// HEAD without the start-up check.
    pub(crate) async fn head_raw(
        &self,
        key: &str,
        version_id: Option<&str>,
    ) -> Result<Option<ObjectInfo>, StoreError> {
        validate_key(key)?;
        let mut req = Req::new(Method::HEAD, Some(key)).header("x-amz-checksum-mode", "ENABLED");
        if let Some(v) = version_id {
            req = req.query("versionId", v);
        }
        let r = self.inner.execute("head", &req).await?;
        if r.status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        // A version id that names a delete marker answers 405.
        if r.status == StatusCode::METHOD_NOT_ALLOWED {
            return Ok(None);
        }
        if !r.status.is_success() {
            return Err(r.permanent("head", self.target(key)));
        }
        let size = r
            .header("content-length")
            .and_then(|v| v.parse::<u64>().ok())
            .ok_or_else(|| StoreError::Protocol {
                op: "head",
                target: self.target(key),
                detail: "no Content-Length".to_string(),
            })?;
        let sha256 = r
            .header("x-amz-checksum-sha256")
            .and_then(base64_32)
            .or_else(|| r.header(META_SHA256).and_then(hex_32));
        let lock = match (
            r.header("x-amz-object-lock-mode").and_then(LockMode::parse),
            r.header("x-amz-object-lock-retain-until-date")
                .and_then(parse_iso),
        ) {
            (Some(mode), Some(retain_until)) => Some(LockState { mode, retain_until }),
            _ => None,
        };
        Ok(Some(ObjectInfo {
            key: key.to_string(),
            version_id: r.header("x-amz-version-id").map(str::to_string),
            size,
            etag: r.header("etag").map(|e| e.trim_matches('"').to_string()),
            sha256: sha256.map(Sha256Digest),
            lock,
            legal_hold: r
                .header("x-amz-object-lock-legal-hold")
                .map(|v| v.eq_ignore_ascii_case("ON")),
            part_size: r.header(META_PART_SIZE).and_then(|v| v.parse().ok()),
        }))
    }
}

/// The bucket's default retention from a `GetObjectLockConfiguration` body (`None` when it
/// has none, or none we understand). Public for the fuzz target `s3_xml` (tests/fuzz).
pub fn parse_default_retention(xml_text: &str) -> Option<(LockMode, Duration)> {
    let mode = xml::first_text(xml_text, "Mode").and_then(|m| LockMode::parse(&m))?;
    let days = xml::first_text(xml_text, "Days").and_then(|d| d.trim().parse::<u64>().ok());
    let years = xml::first_text(xml_text, "Years").and_then(|d| d.trim().parse::<u64>().ok());
    // A body can name any number: one that does not fit in seconds is not a retention we
    // understand (checked arithmetic; an overflow would panic or wrap).
    let days = days.or(years.and_then(|y| y.checked_mul(365)))?;
    Some((mode, Duration::from_secs(days.checked_mul(86400)?)))
}

/// Whether requests to `bucket` at `endpoint` are path-style, refusing a combination that
/// cannot work (named by its setting) before any request is sent.
///
/// As the AWS CLI and SDKs do: an IP-literal or `localhost` host has no bucket subdomains, so
/// it is path-style; so is a bucket whose name is not a DNS label (upper case, `_`, and dots
/// over https, where `a.b.host` breaks the wildcard certificate).
pub fn addressing(endpoint: &Url, bucket: &str, path_style: Option<bool>) -> Result<bool, String> {
    let ip_or_local = match endpoint.host() {
        Some(url::Host::Ipv4(_) | url::Host::Ipv6(_)) => true,
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    };
    let dns_ok = dns_compatible(bucket, endpoint.scheme() == "https");
    match path_style {
        Some(true) => Ok(true),
        None => Ok(ip_or_local || !dns_ok),
        Some(false) if ip_or_local => Err(format!(
            "store.path_style = false (virtual-hosted addressing) cannot work with the endpoint \
             {endpoint}: an IP address or localhost has no bucket subdomains; remove the \
             setting (path-style is then chosen) or set path_style = true"
        )),
        Some(false) if !dns_ok => Err(format!(
            "store.path_style = false (virtual-hosted addressing) cannot work with bucket \
             {bucket:?}: it is not a DNS label (3-63 of a-z 0-9 -, and no dots over https); \
             rename store.bucket or set path_style = true"
        )),
        Some(false) => Ok(false),
    }
}

/// True when `bucket` can be the first label of a host name (and, over https, match a
/// wildcard certificate: no dots).
fn dns_compatible(bucket: &str, https: bool) -> bool {
    let len_ok = (3..=63).contains(&bucket.len());
    let chars_ok = bucket
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.');
    let ends_ok = !bucket.starts_with(['-', '.']) && !bucket.ends_with(['-', '.']);
    len_ok && chars_ok && ends_ok && !bucket.contains("..") && !(https && bucket.contains('.'))
}

fn base64_32(b64: &str) -> Option<[u8; 32]> {
    use base64::Engine as _;
    let v = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .ok()?;
    v.try_into().ok()
}

fn hex_32(h: &str) -> Option<[u8; 32]> {
    hex::decode(h.trim()).ok()?.try_into().ok()
}

impl ArchiveStore for S3Store {
    async fn check(&self) -> Result<Readiness, StoreError> {
        self.ensure_checked().await.cloned()
    }

    async fn put_immutable<R>(&self, key: &str, src: R) -> Result<PutOutcome, StoreError>
    where
        R: AsyncRead + Unpin + Send + 'static,
    {
        validate_key(key)?;
        self.ensure_checked().await?;
        upload::put_immutable(self, key, src).await
    }

    async fn put_file(&self, key: &str, src: &FileSource) -> Result<PutOutcome, StoreError> {
        validate_key(key)?;
        self.ensure_checked().await?;
        stream::put_file(self, key, src).await
    }

    async fn get(
        &self,
        key: &str,
        range: Option<Range<u64>>,
        version_id: Option<&str>,
    ) -> Result<ByteStream, StoreError> {
        validate_key(key)?;
        let mut req = Req::new(Method::GET, Some(key));
        if let Some(v) = version_id {
            req = req.query("versionId", v);
        }
        if let Some(r) = &range {
            if r.start >= r.end {
                return Ok(Box::pin(tokio::io::empty()));
            }
            req = req.header("range", format!("bytes={}-{}", r.start, r.end - 1));
        }
        let resp = self.inner.execute_get("get", &req).await?;
        let stream = resp.bytes_stream().map_err(std::io::Error::other);
        Ok(Box::pin(StreamReader::new(stream)))
    }

    async fn head(
        &self,
        key: &str,
        version_id: Option<&str>,
    ) -> Result<Option<ObjectInfo>, StoreError> {
        self.head_raw(key, version_id).await
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ObjectSummary>, StoreError> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        // Bounded: a server that keeps saying "truncated" cannot make us loop forever.
        for _page in 0..100_000 {
            let mut req = Req::new(Method::GET, None)
                .query("list-type", "2")
                .query("prefix", prefix);
            if let Some(t) = &token {
                req = req.query("continuation-token", t);
            }
            let r = self.inner.execute("list", &req).await?;
            if !r.status.is_success() {
                return Err(r.permanent("list", format!("{}/{prefix}", self.inner.config.bucket)));
            }
            let t = r.text();
            for e in xml::records(&t, "Contents", &["Key", "Size"]) {
                if let (Some(k), Some(s)) = (e.child("Key"), e.child("Size")) {
                    out.push(ObjectSummary {
                        key: k.to_string(),
                        size: s.parse().unwrap_or(0),
                    });
                }
            }
            let truncated = xml::first_text(&t, "IsTruncated").as_deref() == Some("true");
            token = xml::first_text(&t, "NextContinuationToken");
            if !truncated || token.is_none() {
                out.sort_by(|a, b| a.key.cmp(&b.key));
                return Ok(out);
            }
        }
        Err(StoreError::Protocol {
            op: "list",
            target: prefix.to_string(),
            detail: "more than 100000 pages".to_string(),
        })
    }

    async fn versions(&self, key: &str) -> Result<Vec<String>, StoreError> {
        let req = Req::new(Method::GET, None)
            .query("versions", "")
            .query("prefix", key);
        let r = self.inner.execute("list-versions", &req).await?;
        if !r.status.is_success() {
            return Err(r.permanent("list-versions", self.target(key)));
        }
        Ok(xml::records(&r.text(), "Version", &["Key", "VersionId"])
            .into_iter()
            .filter(|v| v.child("Key") == Some(key))
            .filter_map(|v| v.child("VersionId").map(str::to_string))
            .collect())
    }

    async fn list_versions(&self, prefix: &str) -> Result<Vec<VersionSummary>, StoreError> {
        let mut out = Vec::new();
        let mut marker: Option<(String, Option<String>)> = None;
        // Bounded like `list`: 100,000 pages of 1,000 versions.
        for _page in 0..100_000 {
            let mut req = Req::new(Method::GET, None)
                .query("versions", "")
                .query("prefix", prefix)
                .query("max-keys", "1000");
            if let Some((k, v)) = &marker {
                req = req.query("key-marker", k);
                if let Some(v) = v {
                    req = req.query("version-id-marker", v);
                }
            }
            let r = self.inner.execute("list-versions", &req).await?;
            if !r.status.is_success() {
                return Err(r.permanent(
                    "list-versions",
                    format!("{}/{prefix}", self.inner.config.bucket),
                ));
            }
            let (page, next) = versions_page(&r.text());
            out.extend(page);
            if next.is_some() && next == marker {
                return Err(StoreError::Protocol {
                    op: "list-versions",
                    target: prefix.to_string(),
                    detail: "the next page's markers repeat the last ones".to_string(),
                });
            }
            if next.is_none() {
                // Each key's versions newest first: the order S3 gives within a key, kept by
                // a stable sort on the key alone (delete markers were appended per page).
                out.sort_by(|a, b| a.key.cmp(&b.key).then(b.is_latest.cmp(&a.is_latest)));
                return Ok(out);
            }
            marker = next;
        }
        Err(StoreError::Protocol {
            op: "list-versions",
            target: prefix.to_string(),
            detail: "more than 100000 pages".to_string(),
        })
    }
}

/// One page of a `ListObjectVersions` answer: its versions and delete markers in document
/// order, and the markers of the next page (None: the last page).
#[allow(clippy::type_complexity)]
fn versions_page(xml_text: &str) -> (Vec<VersionSummary>, Option<(String, Option<String>)>) {
    let fields = ["Key", "VersionId", "IsLatest", "Size", "ETag"];
    let mut out = Vec::new();
    for (tag, marker) in [("Version", false), ("DeleteMarker", true)] {
        for e in xml::records(xml_text, tag, &fields) {
            let Some(key) = e.child("Key") else { continue };
            out.push(VersionSummary {
                key: key.to_string(),
                version_id: e
                    .child("VersionId")
                    .filter(|v| *v != "null")
                    .map(str::to_string),
                is_latest: e.child("IsLatest") == Some("true"),
                delete_marker: marker,
                size: e.child("Size").and_then(|s| s.parse().ok()).unwrap_or(0),
                etag: e.child("ETag").map(|t| t.trim_matches('"').to_string()),
                stamp: None,
            });
        }
    }
    let truncated = xml::first_text(xml_text, "IsTruncated").as_deref() == Some("true");
    let next = xml::first_text(xml_text, "NextKeyMarker")
        .filter(|_| truncated)
        .map(|k| (k, xml::first_text(xml_text, "NextVersionIdMarker")));
    (out, next)
}

/// A request outside the store's API, signed with the store's credentials and sent to its
/// bucket with the store's retries: the one door for the attack drill's requests (deletes,
/// retention changes, policy changes), which live in the drill crate, not here, so that no
/// program of the database host carries them.
#[derive(Debug, Clone)]
pub struct SignedRequest(Req);

impl SignedRequest {
    /// `method` on `key` (None: the bucket itself).
    pub fn new(method: Method, key: Option<&str>) -> SignedRequest {
        SignedRequest(Req::new(method, key))
    }

    /// Adds a query parameter (`("versionId", id)`, or a subresource: `("policy", "")`).
    pub fn query(self, k: &str, v: &str) -> SignedRequest {
        SignedRequest(self.0.query(k, v))
    }

    /// Adds a header (signed with the others).
    pub fn header(self, k: &str, v: impl Into<String>) -> SignedRequest {
        SignedRequest(self.0.header(k, v))
    }

    /// Sets the body (its SHA-256 is signed).
    pub fn body(self, body: bytes::Bytes) -> SignedRequest {
        SignedRequest(self.0.body(body, None))
    }
}

/// The server's answer to a [`SignedRequest`]: a refusal is an answer, not an error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawOutcome {
    /// HTTP status.
    pub status: u16,
    /// S3 error code (empty on success).
    pub code: String,
    /// `x-amz-version-id` of the response, if any.
    pub version_id: Option<String>,
}

impl S3Store {
    /// Sends `req` and returns the server's answer, whatever its status. `op` names the
    /// request in logs and errors. Errs only when no answer came (network, TLS, credentials).
    pub async fn send_signed(
        &self,
        op: &'static str,
        req: SignedRequest,
    ) -> Result<RawOutcome, StoreError> {
        let r = self.inner.execute(op, &req.0).await?;
        let code = if r.status.is_success() {
            String::new()
        } else {
            r.error_code().0
        };
        Ok(RawOutcome {
            status: r.status.as_u16(),
            code,
            version_id: r.header("x-amz-version-id").map(str::to_string),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_page_parse() {
        let x = "<ListVersionsResult><IsTruncated>true</IsTruncated>\
                 <NextKeyMarker>p/b</NextKeyMarker><NextVersionIdMarker>v3</NextVersionIdMarker>\
                 <DeleteMarker><Key>p/a</Key><VersionId>v9</VersionId><IsLatest>true</IsLatest>\
                 </DeleteMarker><Version><Key>p/a</Key><VersionId>v1</VersionId>\
                 <IsLatest>false</IsLatest><ETag>&quot;e1&quot;</ETag><Size>7</Size></Version>\
                 <Version><Key>p/b</Key><VersionId>v3</VersionId><IsLatest>true</IsLatest>\
                 <ETag>\"e3\"</ETag><Size>9</Size></Version></ListVersionsResult>";
        let (page, next) = versions_page(x);
        assert_eq!(next, Some(("p/b".into(), Some("v3".into()))));
        assert_eq!(page.len(), 3);
        let dm = page.iter().find(|v| v.delete_marker).unwrap();
        assert_eq!((dm.key.as_str(), dm.is_latest), ("p/a", true));
        let b = page.iter().find(|v| v.key == "p/b").unwrap();
        assert_eq!(
            (b.size, b.etag.as_deref(), b.is_latest),
            (9, Some("e3"), true)
        );
        let x = x.replace("<IsTruncated>true", "<IsTruncated>false");
        assert_eq!(versions_page(&x).1, None);
    }

    #[test]
    fn default_retention_parse() {
        let x = "<ObjectLockConfiguration><ObjectLockEnabled>Enabled</ObjectLockEnabled><Rule>\
                 <DefaultRetention><Mode>COMPLIANCE</Mode><Days>1</Days></DefaultRetention>\
                 </Rule></ObjectLockConfiguration>";
        assert_eq!(
            parse_default_retention(x),
            Some((LockMode::Compliance, Duration::from_secs(86400)))
        );
        assert_eq!(parse_default_retention("<ObjectLockConfiguration/>"), None);
    }

    /// Seen while writing the fuzz target `s3_xml`: a day or year count whose seconds do not
    /// fit in a u64 overflowed (a panic with overflow checks, a wrong retention without).
    #[test]
    fn default_retention_too_long_is_not_understood() {
        let body = |field: &str, n: u64| {
            format!(
                "<ObjectLockConfiguration><ObjectLockEnabled>Enabled</ObjectLockEnabled><Rule>\
                 <DefaultRetention><Mode>GOVERNANCE</Mode><{field}>{n}</{field}>\
                 </DefaultRetention></Rule></ObjectLockConfiguration>"
            )
        };
        assert_eq!(
            parse_default_retention(&body("Days", u64::MAX / 86400 + 1)),
            None
        );
        assert_eq!(
            parse_default_retention(&body("Years", u64::MAX / 365 + 1)),
            None
        );
        assert_eq!(
            parse_default_retention(&body("Years", u64::MAX / (365 * 86400) + 1)),
            None
        );
        assert_eq!(
            parse_default_retention(&body("Years", 2)),
            Some((LockMode::Governance, Duration::from_secs(2 * 365 * 86400)))
        );
    }

    #[test]
    fn addressing_follows_the_aws_tools() {
        let u = |s: &str| Url::parse(s).unwrap();
        // IP literals and localhost: path-style by themselves.
        for e in [
            "https://127.0.0.1:7443",
            "https://[::1]:7443",
            "https://localhost:7443",
        ] {
            assert_eq!(addressing(&u(e), "rv-lock", None), Ok(true), "{e}");
            assert_eq!(addressing(&u(e), "rv-lock", Some(true)), Ok(true), "{e}");
            let why = addressing(&u(e), "rv-lock", Some(false)).unwrap_err();
            assert!(why.starts_with("store.path_style = false"), "{why}");
        }
        // A DNS name: virtual-hosted unless the bucket cannot be a label.
        let aws = u("https://s3.eu-west-1.amazonaws.com");
        assert_eq!(addressing(&aws, "redo-archive", None), Ok(false));
        assert_eq!(addressing(&aws, "redo-archive", Some(true)), Ok(true));
        for bad in ["Redo", "redo_archive", "a.b", "ab", "-redo"] {
            assert_eq!(addressing(&aws, bad, None), Ok(true), "{bad}");
            let why = addressing(&aws, bad, Some(false)).unwrap_err();
            assert!(why.contains("not a DNS label"), "{why}");
        }
        // Over plain http a dotted bucket is a fine host name.
        assert_eq!(addressing(&u("http://s3.local"), "a.b.c", None), Ok(false));
        // S3Store::new refuses before any request.
        let mut c = S3Config::new(u("https://127.0.0.1:1"), "b-bucket");
        c.credentials = Some(Credentials {
            access_key: "a".into(),
            secret_key: "s".into(),
            session_token: None,
        });
        c.path_style = Some(false);
        let e = S3Store::new(c).unwrap_err();
        assert_eq!(e.kind(), crate::store::ErrorKind::Config);
        assert!(e.to_string().contains("store.path_style"), "{e}");
    }

    #[test]
    fn errors_are_classified_once() {
        use crate::store::ErrorKind;
        let permanent = |status, code: &str| StoreError::Permanent {
            op: "put",
            target: "b/k".into(),
            status,
            code: code.into(),
            message: String::new(),
        };
        assert_eq!(
            permanent(403, "SignatureDoesNotMatch").kind(),
            ErrorKind::Auth
        );
        assert_eq!(permanent(403, "InvalidAccessKeyId").kind(), ErrorKind::Auth);
        assert_eq!(permanent(403, "AccessDenied").kind(), ErrorKind::Permission);
        assert_eq!(permanent(400, "InvalidRequest").kind(), ErrorKind::Refused);
        assert!(
            permanent(403, "AccessDenied")
                .to_string()
                .contains("policy")
        );
        assert!(
            permanent(403, "SignatureDoesNotMatch")
                .to_string()
                .contains("secret key")
        );
        let tls = StoreError::Tls {
            endpoint: "https://x/".into(),
            detail: "invalid peer certificate: UnknownIssuer".into(),
        };
        assert_eq!(tls.kind(), ErrorKind::Tls);
        assert!(!tls.is_transient());
        assert!(tls.to_string().contains("store.ca_file"));
        let down = StoreError::Unreachable {
            endpoint: "https://x/".into(),
            detail: "refused".into(),
        };
        assert!(down.is_transient());
        assert_eq!(StoreError::Config("x".into()).kind(), ErrorKind::Config);
    }

    #[test]
    fn config_errors_are_one_clear_line() {
        let mut c = S3Config::new(Url::parse("https://127.0.0.1:1").unwrap(), "b");
        c.credentials = Some(Credentials {
            access_key: "a".into(),
            secret_key: "s".into(),
            session_token: None,
        });
        c.ca_file = Some(PathBuf::from("/nonexistent/ca.pem"));
        let e = S3Store::new(c.clone()).unwrap_err().to_string();
        assert!(
            e.starts_with("cannot read CA file /nonexistent/ca.pem"),
            "{e}"
        );
        assert!(!e.contains('\n'));
        c.ca_file = None;
        c.endpoint = Url::parse("ftp://x").unwrap();
        assert!(S3Store::new(c).is_err());
    }
}
