//! The sections every role reads the same way, with their defaults: `[store]` (the watcher,
//! `push` and the verifier), `[telemetry]` and `[alert]`.

use super::{ms, secs};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Deserializer, de};
use smart_default::SmartDefault;

use super::Problems;
use super::units::{choice, duration, from_str_with, size};
use crate::alert::AlertHook;
use crate::store::LockMode;
use crate::telemetry::LogFormat;

/// Which backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreKind {
    /// S3 with Object Lock.
    #[default]
    S3,
    /// A local directory (NOT WORM: for trying things out).
    Local,
}

/// A `compress` key: `"off"` or `"zstd"` (at its `compress_level`, see
/// [`Problems::zstd_level`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Compress {
    #[default]
    Off,
    Zstd,
}

/// `[store]` `credentials`: where the chain may look.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CredentialsMode {
    /// Environment, web-identity token file, shared files: never a metadata service.
    #[default]
    Chain,
    /// The same, then the container or instance metadata service (IMDSv2).
    Instance,
}

#[derive(Debug, Clone, PartialEq, Deserialize, SmartDefault)]
#[serde(default)]
pub struct StoreConfig {
    /// `s3` or `local`.
    pub kind: StoreKind,
    /// S3 endpoint (https).
    #[serde(deserialize_with = "https_url")]
    pub endpoint: Option<url::Url>,
    pub bucket: String,
    /// Signing region.
    #[default = "us-east-1"]
    pub region: String,
    /// Path-style addressing; None: chosen from the endpoint (path-style for an IP address or
    /// localhost, virtual-hosted otherwise), as the AWS tools do.
    #[serde(deserialize_with = "path_style")]
    pub path_style: Option<bool>,
    /// Whether the credential chain ends with the container / instance metadata service.
    pub credentials: CredentialsMode,
    /// Profile of the shared credentials / config files (else `AWS_PROFILE`, else `default`).
    #[serde(deserialize_with = "non_empty")]
    pub profile: Option<String>,
    /// STS endpoint for web-identity tokens (else `AWS_ENDPOINT_URL_STS`, else AWS's).
    #[serde(deserialize_with = "opt_url")]
    pub sts_endpoint: Option<url::Url>,
    /// Instance metadata endpoint, asked only with `credentials = "instance"`.
    #[serde(deserialize_with = "url_with_host")]
    #[default(url::Url::parse(crate::store::s3::credentials::DEFAULT_METADATA_ENDPOINT).expect("constant URL"))]
    pub metadata_endpoint: url::Url,
    /// Extra CA certificate (PEM).
    #[serde(deserialize_with = "non_empty_path")]
    pub ca_file: Option<PathBuf>,
    /// Key prefix (no leading or trailing `/`); may be empty.
    pub prefix: String,
    /// Object Lock mode.
    #[serde(deserialize_with = "lock_mode")]
    #[default(LockMode::Compliance)]
    pub lock_mode: LockMode,
    /// Retention period; None (the default): rely on the bucket's default retention, what
    /// the shipped policies allow (a period needs s3:PutObjectRetention); a bucket without
    /// one is refused at start.
    #[serde(deserialize_with = "retention")]
    pub retention: Option<Duration>,
    /// Accept a bucket without Object Lock (experiments only).
    pub allow_unlocked_bucket: bool,
    /// Deadline of one request (for streamed uploads: of no progress).
    #[serde(deserialize_with = "duration")]
    #[default(secs(120))]
    pub request_timeout: Duration,
    /// Deadline for connecting.
    #[serde(deserialize_with = "duration")]
    #[default(secs(10))]
    pub connect_timeout: Duration,
    /// Attempts per request.
    #[default = 6]
    pub max_attempts: u32,
    /// Files up to this size go up as one streamed PUT.
    #[serde(deserialize_with = "size")]
    #[default(5 << 30)]
    pub stream_threshold: u64,
    /// Part size above it.
    #[serde(deserialize_with = "size")]
    #[default(64 << 20)]
    pub part_size: u64,
    /// Parts in flight per file.
    #[default = 4]
    pub part_concurrency: usize,
    /// Also send Content-MD5.
    pub content_md5: bool,
    /// Directory of the local store.
    #[serde(deserialize_with = "non_empty_path")]
    pub dir: Option<PathBuf>,
}

impl StoreConfig {
    /// Adds the problems of `[store]` that serde cannot see: ranges and keys that need each
    /// other (the endpoint of S3, the directory of a local store...).
    pub fn check(&self, p: &mut Problems) {
        self.check_at("store", p)
    }

    /// [`StoreConfig::check`] of the store keys of the table at `at` (the collector's
    /// `[worm]` and `[retention]` carry them too).
    pub fn check_at(&self, at: &str, p: &mut Problems) {
        let key = |k: &str| format!("{at}.{k}");
        let when = |kind: &str| format!("required when {at}.kind = \"{kind}\"");
        p.at_least(&key("request_timeout"), self.request_timeout, ms(100));
        p.at_least(&key("connect_timeout"), self.connect_timeout, ms(100));
        p.range(&key("max_attempts"), self.max_attempts, 1, 20);
        p.range(&key("part_concurrency"), self.part_concurrency, 1, 64);
        match (self.kind, &self.dir) {
            (StoreKind::S3, dir) => {
                let addressing = |e| crate::store::s3::addressing(e, &self.bucket, self.path_style);
                match self.endpoint.as_ref().map(addressing) {
                    None => p.missing(&key("endpoint"), when("s3")),
                    Some(Err(why)) => p.line(why),
                    Some(Ok(_)) => {}
                }
                if self.bucket.is_empty() {
                    p.push(&key("bucket"), when("s3"));
                }
                if dir.is_some() {
                    p.push(&key("dir"), format!("only for {at}.kind = \"local\""));
                }
            }
            (StoreKind::Local, None) => p.missing(&key("dir"), when("local")),
            (StoreKind::Local, Some(d)) => p.absolute(&key("dir"), d),
        }
        if !self.prefix.is_empty() && crate::store::validate_key(&self.prefix).is_err() {
            let what = "must be a relative key without empty, '.' or '..' parts and without \
                        leading or trailing '/'";
            p.push(&key("prefix"), format!("{:?} {what}", self.prefix));
        }
        if !(1..=5 << 30).contains(&self.stream_threshold) {
            let what = "is not within 1 byte..=5 GiB (what S3 accepts in one PUT)";
            p.push(
                &key("stream_threshold"),
                format!("{} {what}", self.stream_threshold),
            );
        }
        if !(5 << 20..=5 << 30).contains(&self.part_size) {
            let what = "is outside 5 MiB..=5 GiB (S3's part limits)";
            p.push(&key("part_size"), format!("{} {what}", self.part_size));
        }
    }
}

/// `[telemetry]` of the watcher and the verifier.
#[derive(Debug, Clone, PartialEq, Deserialize, SmartDefault)]
#[serde(default)]
pub struct TelemetryConfig {
    /// Text or JSON.
    pub log_format: LogFormat,
    /// Level filter (`info`, `debug`, `redovault=debug,info`, ...).
    #[default = "info"]
    pub log_level: String,
    /// Prometheus endpoint address; None: off.
    #[serde(deserialize_with = "metrics_listen")]
    pub metrics_listen: Option<SocketAddr>,
}

impl TelemetryConfig {
    /// Adds a problem when the level filter does not parse.
    pub fn check(&self, p: &mut Problems) {
        if tracing_subscriber::EnvFilter::try_new(&self.log_level).is_err() {
            let what = format!("{:?} is not a level filter", self.log_level);
            p.push("telemetry.log_level", what);
        }
    }
}

/// `[alert]`: a command or a webhook ([`AlertConfig::hook`]).
#[derive(Debug, Clone, PartialEq, Deserialize, SmartDefault)]
#[serde(default)]
pub struct AlertConfig {
    /// Program and arguments run with each alarm.
    pub command: Vec<String>,
    /// Or an http(s) URL the alarm is POSTed to.
    #[serde(deserialize_with = "non_empty")]
    pub webhook: Option<String>,
    /// Extra CA certificate of the webhook.
    #[serde(deserialize_with = "non_empty_path")]
    pub webhook_ca_file: Option<PathBuf>,
    /// Deadline of one run or POST.
    #[serde(deserialize_with = "duration")]
    #[default(secs(10))]
    pub timeout: Duration,
    /// The same alarm (kind and subject) is raised again only after this long.
    #[serde(deserialize_with = "duration")]
    #[default(secs(3600))]
    pub repeat_after: Duration,
}

/// The name `[alert]` had when it was read into a second type (one since issue 17).
pub type AlertSection = AlertConfig;

impl AlertConfig {
    /// Where alarms go ([`AlertHook::None`] when the keys contradict each other: see
    /// [`AlertConfig::check`]).
    pub fn hook(&self) -> AlertHook {
        self.try_hook().unwrap_or(AlertHook::None)
    }

    /// A problem for each bound and each contradiction.
    pub fn check(&self, p: &mut Problems) {
        p.at_least("alert.timeout", self.timeout, ms(100));
        p.at_least("alert.repeat_after", self.repeat_after, secs(1));
        if let Err((key, why)) = self.try_hook() {
            p.push(key, why);
        }
    }

    /// The hook, or the key at fault and why.
    fn try_hook(&self) -> Result<AlertHook, (&'static str, String)> {
        let timeout = self.timeout;
        match (self.command.as_slice(), &self.webhook) {
            ([], None) => Ok(AlertHook::None),
            ([program, ..], None) if program.is_empty() => {
                Err(("alert.command", "the program (first item) is empty".into()))
            }
            (argv, None) => Ok(AlertHook::Command {
                argv: argv.to_vec(),
                timeout,
            }),
            ([], Some(w)) => match url::Url::parse(w) {
                Ok(url) if matches!(url.scheme(), "https" | "http") => Ok(AlertHook::Webhook {
                    url,
                    ca_file: self.webhook_ca_file.clone(),
                    timeout,
                }),
                _ => Err(("alert.webhook", format!("{w:?} is not an http(s) URL"))),
            },
            (_, Some(_)) => Err((
                "alert.webhook",
                "set either alert.command or alert.webhook, not both".into(),
            )),
        }
    }
}

/// A string where `""` means "not set".
pub fn non_empty<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(Some(String::deserialize(d)?).filter(|s| !s.is_empty()))
}

/// A path where `""` means "not set".
pub fn non_empty_path<'de, D: Deserializer<'de>>(d: D) -> Result<Option<PathBuf>, D::Error> {
    Ok(non_empty(d)?.map(PathBuf::from))
}

fn https_url<'de, D: Deserializer<'de>>(d: D) -> Result<Option<url::Url>, D::Error> {
    from_str_with(d, "a string", false, |e| match url::Url::parse(e) {
        _ if e.is_empty() => Ok(None),
        Ok(u) if u.scheme() == "https" && u.host_str().is_some() => Ok(Some(u)),
        Ok(_) => Err(format!("{e:?} must be an https:// URL with a host")),
        Err(err) => Err(format!("{e:?} is not a URL: {err}")),
    })
}

fn url_with_host<'de, D: Deserializer<'de>>(d: D) -> Result<url::Url, D::Error> {
    from_str_with(d, "a string", false, host_url)
}

/// A URL with a host, `""`: not set.
fn opt_url<'de, D: Deserializer<'de>>(d: D) -> Result<Option<url::Url>, D::Error> {
    from_str_with(d, "a string", false, |e| match e {
        "" => Ok(None),
        e => host_url(e).map(Some),
    })
}

fn host_url(e: &str) -> Result<url::Url, String> {
    (url::Url::parse(e).ok())
        .filter(|u| u.host_str().is_some())
        .ok_or_else(|| format!("{e:?} is not a URL with a host such as \"http://169.254.169.254\""))
}

/// `"auto"` (None), `true` or `false`.
fn path_style<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    match toml::Value::deserialize(d)? {
        toml::Value::Boolean(b) => Ok(Some(b)),
        toml::Value::String(s) if s == "auto" => Ok(None),
        v => Err(de::Error::custom(format!(
            "expected \"auto\", true or false, found {v}"
        ))),
    }
}

fn lock_mode<'de, D: Deserializer<'de>>(d: D) -> Result<LockMode, D::Error> {
    let modes = [
        ("compliance", LockMode::Compliance),
        ("governance", LockMode::Governance),
    ];
    choice(d, &modes)
}

/// A period of at least a minute, or `"bucket-default"` (None).
fn retention<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    let (expecting, wanted) = (
        "a string such as \"30d\"",
        "expected a period of at least 1m such as \"30d\", or \"bucket-default\"",
    );
    from_str_with(d, expecting, false, |r| match super::parse_duration(r) {
        _ if r == "bucket-default" => Ok(None),
        Some(p) if p >= secs(60) => Ok(Some(p)),
        _ => Err(format!("{r:?}: {wanted}")),
    })
}

/// An address, `""`: off.
pub(crate) fn metrics_listen<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<SocketAddr>, D::Error> {
    let hint = "is not an address such as \"127.0.0.1:9464\" (\"\": off)";
    from_str_with(d, "a string", false, |a| match a {
        "" => Ok(None),
        a => a.parse().map(Some).map_err(|_| format!("{a:?} {hint}")),
    })
}

/// A table or a list of tables (`[collector]` or `[[collector]]`).
#[derive(Debug, Clone, PartialEq, SmartDefault)]
pub struct OneOrList<T> {
    /// The tables, in file order.
    pub items: Vec<T>,
    /// Written as a list (`[[name]]`): the paths of its problems carry the index.
    pub list: bool,
}

impl<T> std::ops::Deref for OneOrList<T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        &self.items
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for OneOrList<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<OneOrList<T>, D::Error> {
        struct V<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> de::Visitor<'de> for V<T> {
            type Value = OneOrList<T>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a table or a list of tables")
            }
            fn visit_map<M: de::MapAccess<'de>>(self, m: M) -> Result<OneOrList<T>, M::Error> {
                let items = vec![T::deserialize(de::value::MapAccessDeserializer::new(m))?];
                Ok(OneOrList { items, list: false })
            }
            fn visit_seq<S: de::SeqAccess<'de>>(self, s: S) -> Result<OneOrList<T>, S::Error> {
                let items = Vec::deserialize(de::value::SeqAccessDeserializer::new(s))?;
                Ok(OneOrList { items, list: true })
            }
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}

/// `[telemetry]` of the collector and the extractor: their metrics endpoint is on unless
/// `metrics_listen = ""`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct DaemonTelemetry {
    /// Text or JSON.
    pub log_format: LogFormat,
    /// Level filter.
    pub log_level: Option<String>,
    /// None: absent (the role's default port); `Some(None)`: `""`, off.
    #[serde(deserialize_with = "some_metrics_listen")]
    pub metrics_listen: Option<Option<SocketAddr>>,
}

fn some_metrics_listen<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Option<SocketAddr>>, D::Error> {
    metrics_listen(d).map(Some)
}

impl DaemonTelemetry {
    /// The log level (`info` when absent) and the metrics address (`127.0.0.1:port` when
    /// absent).
    pub fn resolve(self, port: u16) -> Telemetry {
        Telemetry {
            log_format: self.log_format,
            log_level: self.log_level.unwrap_or_else(|| "info".into()),
            metrics_listen: self
                .metrics_listen
                .unwrap_or(Some(SocketAddr::from(([127, 0, 0, 1], port)))),
        }
    }
}

/// The collector's and the extractor's telemetry settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Telemetry {
    pub log_format: LogFormat,
    /// Log level filter.
    pub log_level: String,
    /// Prometheus endpoint; `None`: off.
    pub metrics_listen: Option<SocketAddr>,
}

/// The link timing keys of the collector's and the extractor's `[link]` (at `at`), with
/// their ranges checked, over the defaults.
pub fn link_timing(
    at: &str,
    heartbeat_interval: Duration,
    missed_heartbeats: u32,
    handshake_timeout: Duration,
    p: &mut Problems,
) -> crate::wire::transport::LinkConfig {
    let key = |k: &str| format!("{at}.{k}");
    p.within(
        &key("heartbeat_interval"),
        heartbeat_interval,
        ms(10),
        secs(60),
    );
    p.range(&key("missed_heartbeats"), missed_heartbeats, 2, 100);
    p.within(
        &key("handshake_timeout"),
        handshake_timeout,
        ms(100),
        secs(300),
    );
    crate::wire::transport::LinkConfig {
        heartbeat_interval,
        missed_heartbeats,
        handshake_timeout,
        ..Default::default()
    }
}

/// How a link between an extractor and a collector is protected (`listen.cipher` on the
/// collector, `[[collector]] cipher` on the extractor).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Cipher {
    /// TLS 1.3 with client certificates (the default and the production mode).
    #[default]
    Tls,
    /// LEGACY: Blowfish with a pre-shared key.
    Blowfish,
}

/// A string that is not blank ("empty" otherwise); absent: `""`, for
/// [`Problems::missing_if`](super::Problems::missing_if).
pub fn non_blank<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let s = String::deserialize(d)?;
    match s.trim().is_empty() {
        true => Err(de::Error::custom("empty")),
        false => Ok(s),
    }
}

/// An absolute path; absent: empty, for [`Problems::missing_if`](super::Problems::missing_if).
pub fn abs_path<'de, D: Deserializer<'de>>(d: D) -> Result<PathBuf, D::Error> {
    let s = non_blank(d)?;
    match std::path::Path::new(&s).is_absolute() {
        true => Ok(s.into()),
        false => Err(de::Error::custom(format!("{s} is not an absolute path"))),
    }
}
