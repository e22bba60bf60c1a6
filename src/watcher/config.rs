//! The watcher's TOML configuration: documented defaults, unknown keys rejected, and every
//! problem reported at once (`redovault check-config`).
//!
//! The file is parsed into a `toml::Table` and walked by hand rather than through serde's
//! `deny_unknown_fields`, which stops at the first problem: here each section collects the
//! type errors, range errors and unknown keys it finds, and the cross-field checks run on top.
//! `deploy/config/watcher.example.toml` documents every key with its default.
//!
//! Durations are strings with a unit (`"500ms"`, `"10s"`, `"5m"`, `"2h"`, `"30d"`); sizes are
//! integers (bytes) or strings with a binary unit (`"64MiB"`, `"5GiB"`, also `"64M"`).
//! Credentials never appear here: they come from `AWS_ACCESS_KEY_ID` and
//! `AWS_SECRET_ACCESS_KEY` (and `AWS_SESSION_TOKEN`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::alert::AlertHook;
use crate::compress::{Level, MAX_LEVEL};
use crate::store::LockMode;
use crate::telemetry::LogFormat;

/// The whole configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// What to watch and how.
    pub watch: WatchConfig,
    /// The state directory (manifest, status, index).
    pub state: StateConfig,
    /// Where archives go.
    pub store: StoreConfig,
    /// Logs and metrics.
    pub telemetry: TelemetryConfig,
    /// Alarms.
    pub alert: AlertConfig,
}

/// `[watch]`.
#[derive(Debug, Clone, PartialEq)]
pub struct WatchConfig {
    /// Archive destinations (absolute directories), scanned recursively.
    pub dirs: Vec<PathBuf>,
    /// File name patterns of archived logs (`*` and `?`).
    pub include: Vec<String>,
    /// File name patterns never shipped (hidden files...).
    pub exclude: Vec<String>,
    /// Temporary names archived logs are written under before being renamed (never shipped
    /// themselves; followed while written, so that the renamed log ships at once).
    pub temp_patterns: Vec<String>,
    /// How deep below each directory to look (1: only the directory itself).
    pub max_depth: u32,
    /// Full rescan period: the truth (events are only hints).
    pub scan_interval: Duration,
    /// Use filesystem events (inotify) to notice new files at once.
    pub events: bool,
    /// How long a file may stay incomplete or damaged, unchanged, before the alarm and the
    /// quarantine copy.
    pub grace_period: Duration,
    /// Files validated and uploaded at once.
    pub parallel_uploads: usize,
    /// Longest pause before retrying a failed upload.
    pub retry_max_backoff: Duration,
    /// Alarm when the oldest unshipped log is older than this.
    pub backlog_alarm_age: Duration,
    /// At shutdown, how long in-flight uploads may take to finish.
    pub shutdown_timeout: Duration,
    /// Ship each log as one zstd frame at this level (`compress = "zstd"`), or byte-identical
    /// to Oracle's file (None, the default). The manifest then records both digests.
    pub compress: Option<Level>,
}

/// `[state]`.
#[derive(Debug, Clone, PartialEq)]
pub struct StateConfig {
    /// The state directory.
    pub dir: PathBuf,
    /// How often the status file is rewritten.
    pub status_interval: Duration,
    /// How often the open manifest segment is closed and sealed into WORM.
    pub seal_interval: Duration,
    /// Close the open segment once it holds this many entries.
    pub segment_max_entries: usize,
}

/// Which backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreKind {
    /// S3 with Object Lock.
    S3,
    /// A local directory (NOT WORM: for trying things out).
    Local,
}

/// `[store]`.
#[derive(Debug, Clone, PartialEq)]
pub struct StoreConfig {
    /// `s3` or `local`.
    pub kind: StoreKind,
    /// S3 endpoint (https).
    pub endpoint: Option<url::Url>,
    /// Bucket.
    pub bucket: String,
    /// Signing region.
    pub region: String,
    /// Path-style addressing; None: chosen from the endpoint (path-style for an IP address or
    /// localhost, virtual-hosted otherwise), as the AWS tools do.
    pub path_style: Option<bool>,
    /// Whether the credential chain ends with the container / instance metadata service.
    pub credentials: CredentialsMode,
    /// Profile of the shared credentials / config files (else `AWS_PROFILE`, else `default`).
    pub profile: Option<String>,
    /// STS endpoint for web-identity tokens (else `AWS_ENDPOINT_URL_STS`, else AWS's).
    pub sts_endpoint: Option<url::Url>,
    /// Instance metadata endpoint, asked only with `credentials = "instance"`.
    pub metadata_endpoint: url::Url,
    /// Extra CA certificate (PEM).
    pub ca_file: Option<PathBuf>,
    /// Key prefix (no leading or trailing `/`); may be empty.
    pub prefix: String,
    /// Object Lock mode.
    pub lock_mode: LockMode,
    /// Retention period; None: rely on the bucket's default retention.
    pub retention: Option<Duration>,
    /// Accept a bucket without Object Lock (experiments only).
    pub allow_unlocked_bucket: bool,
    /// Deadline of one request (for streamed uploads: of no progress).
    pub request_timeout: Duration,
    /// Deadline for connecting.
    pub connect_timeout: Duration,
    /// Attempts per request.
    pub max_attempts: u32,
    /// Files up to this size go up as one streamed PUT.
    pub stream_threshold: u64,
    /// Part size above it.
    pub part_size: u64,
    /// Parts in flight per file.
    pub part_concurrency: usize,
    /// Also send Content-MD5.
    pub content_md5: bool,
    /// Directory of the local store.
    pub dir: Option<PathBuf>,
}

/// `[store]` `credentials`: where the chain may look.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialsMode {
    /// Environment, web-identity token file, shared files: never a metadata service.
    Chain,
    /// The same, then the container or instance metadata service (IMDSv2).
    Instance,
}

/// `[telemetry]`.
#[derive(Debug, Clone, PartialEq)]
pub struct TelemetryConfig {
    /// Text or JSON.
    pub log_format: LogFormat,
    /// Level filter (`info`, `debug`, `redovault=debug,info`, ...).
    pub log_level: String,
    /// Prometheus endpoint address; None: off.
    pub metrics_listen: Option<SocketAddr>,
}

/// `[alert]`.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertConfig {
    /// Command or webhook.
    pub hook: AlertHook,
    /// The same alarm (kind and subject) is raised again only after this long.
    pub repeat_after: Duration,
}

/// The state directory used when none is configured.
pub const DEFAULT_STATE_DIR: &str = "/var/lib/redovault/watcher";

impl Default for Config {
    fn default() -> Config {
        Config {
            watch: WatchConfig {
                dirs: Vec::new(),
                include: vec!["*.dbf".into(), "*.arc".into()],
                exclude: vec![".*".into()],
                temp_patterns: vec!["*.tmp".into(), "*.part".into()],
                max_depth: 4,
                scan_interval: Duration::from_secs(10),
                events: true,
                grace_period: Duration::from_secs(300),
                parallel_uploads: 4,
                retry_max_backoff: Duration::from_secs(30),
                backlog_alarm_age: Duration::from_secs(600),
                shutdown_timeout: Duration::from_secs(30),
                compress: None,
            },
            state: StateConfig {
                dir: PathBuf::from(DEFAULT_STATE_DIR),
                status_interval: Duration::from_secs(2),
                seal_interval: Duration::from_secs(600),
                segment_max_entries: 1000,
            },
            store: StoreConfig {
                kind: StoreKind::S3,
                endpoint: None,
                bucket: String::new(),
                region: "us-east-1".into(),
                path_style: None,
                credentials: CredentialsMode::Chain,
                profile: None,
                sts_endpoint: None,
                metadata_endpoint: url::Url::parse(
                    crate::store::s3::credentials::DEFAULT_METADATA_ENDPOINT,
                )
                .expect("constant URL"),
                ca_file: None,
                prefix: String::new(),
                lock_mode: LockMode::Compliance,
                // The bucket's default retention: what the shipped policies allow (a period
                // needs s3:PutObjectRetention), and a bucket without one is refused at start.
                retention: None,
                allow_unlocked_bucket: false,
                request_timeout: Duration::from_secs(120),
                connect_timeout: Duration::from_secs(10),
                max_attempts: 6,
                stream_threshold: 5 << 30,
                part_size: 64 << 20,
                part_concurrency: 4,
                content_md5: false,
                dir: None,
            },
            telemetry: TelemetryConfig {
                log_format: LogFormat::Text,
                log_level: "info".into(),
                metrics_listen: None,
            },
            alert: AlertConfig {
                hook: AlertHook::None,
                repeat_after: Duration::from_secs(3600),
            },
        }
    }
}

pub use crate::tomlcheck::ConfigError;

pub use crate::tomlcheck::{parse_duration, parse_size, type_name};

/// Matches a file name against a pattern with `*` (any run) and `?` (one character).
pub fn glob_match(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    // Iterative matcher with backtracking to the last `*`: linear-ish, never recursive.
    let (mut pi, mut ni) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == n[ni]) {
            pi += 1;
            ni += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ni));
            pi += 1;
        } else if let Some((sp, sn)) = star {
            pi = sp + 1;
            ni = sn + 1;
            star = Some((sp, sn + 1));
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

/// One section being read: remembers the keys used, collects problems.
pub struct Section<'a> {
    name: &'static str,
    table: Option<&'a toml::Table>,
    used: Vec<&'static str>,
    problems: &'a mut Vec<String>,
}

/// `compress` ("off" or "zstd") and `compress_level` of `[watch]`.
fn compress_setting(s: &mut Section<'_>) -> Option<Level> {
    let on = match s.string("compress", "off").as_str() {
        "off" => false,
        "zstd" => true,
        other => {
            s.problem(
                "compress",
                format!("expected \"off\" or \"zstd\", found \"{other}\""),
            );
            false
        }
    };
    let level = s.int(
        "compress_level",
        Level::DEFAULT.get() as u64,
        1,
        MAX_LEVEL as u64,
    );
    Level::new(level as i32).filter(|_| on)
}

impl<'a> Section<'a> {
    /// A section named `name` (for messages), its table if present, and where its problems go.
    pub fn new(
        name: &'static str,
        table: Option<&'a toml::Table>,
        problems: &'a mut Vec<String>,
    ) -> Section<'a> {
        Section {
            name,
            table,
            used: Vec::new(),
            problems,
        }
    }

    /// The value of `key` (marking it as known).
    pub fn value(&mut self, key: &'static str) -> Option<&'a toml::Value> {
        self.used.push(key);
        self.table.and_then(|t| t.get(key))
    }

    /// Records a problem with `key`.
    pub fn problem(&mut self, key: &str, what: String) {
        self.problems.push(format!("{}.{key}: {what}", self.name));
    }

    /// A string, or `default` when absent.
    pub fn string(&mut self, key: &'static str, default: &str) -> String {
        match self.value(key) {
            None => default.to_string(),
            Some(toml::Value::String(s)) => s.clone(),
            Some(v) => {
                let t = type_name(v);
                self.problem(key, format!("expected a string, found {t}"));
                default.to_string()
            }
        }
    }

    /// A string where `""` means "not set".
    pub fn opt_string(&mut self, key: &'static str) -> Option<String> {
        Some(self.string(key, "")).filter(|s| !s.is_empty())
    }

    /// A boolean, or `default` when absent.
    pub fn bool(&mut self, key: &'static str, default: bool) -> bool {
        match self.value(key) {
            None => default,
            Some(toml::Value::Boolean(b)) => *b,
            Some(v) => {
                let t = type_name(v);
                self.problem(key, format!("expected true or false, found {t}"));
                default
            }
        }
    }

    /// An integer in `min..=max`, or `default` when absent.
    pub fn int(&mut self, key: &'static str, default: u64, min: u64, max: u64) -> u64 {
        match self.value(key) {
            None => default,
            Some(toml::Value::Integer(i)) => match u64::try_from(*i) {
                Ok(v) if (min..=max).contains(&v) => v,
                _ => {
                    self.problem(key, format!("{i} is out of range {min}..={max}"));
                    default
                }
            },
            Some(v) => {
                let t = type_name(v);
                self.problem(key, format!("expected an integer, found {t}"));
                default
            }
        }
    }

    /// A duration string ("10s") of at least `min`, or `default` when absent.
    pub fn duration(&mut self, key: &'static str, default: Duration, min: Duration) -> Duration {
        match self.value(key) {
            None => default,
            Some(toml::Value::String(s)) => match parse_duration(s) {
                Some(d) if d >= min => d,
                Some(_) => {
                    self.problem(key, format!("{s:?} is shorter than the minimum {min:?}"));
                    default
                }
                None => {
                    self.problem(
                        key,
                        format!(
                            "{s:?} is not a duration: write a number and a unit (ms, s, m, h, \
                             d), e.g. \"10s\""
                        ),
                    );
                    default
                }
            },
            Some(v) => {
                let t = type_name(v);
                self.problem(
                    key,
                    format!("expected a duration string such as \"10s\", found {t}"),
                );
                default
            }
        }
    }

    /// A size (bytes, or "64MiB"), or `default` when absent.
    pub fn size(&mut self, key: &'static str, default: u64) -> u64 {
        match self.value(key) {
            None => default,
            Some(toml::Value::Integer(i)) if *i > 0 => *i as u64,
            Some(toml::Value::String(s)) => match parse_size(s) {
                Some(v) if v > 0 => v,
                _ => {
                    self.problem(
                        key,
                        format!("{s:?} is not a size: bytes, or a number with KiB, MiB or GiB"),
                    );
                    default
                }
            },
            Some(v) => {
                let t = type_name(v);
                self.problem(key, format!("expected a positive size, found {t}"));
                default
            }
        }
    }

    /// An array of strings, or `default` when absent.
    pub fn strings(&mut self, key: &'static str, default: &[String]) -> Vec<String> {
        match self.value(key) {
            None => default.to_vec(),
            Some(toml::Value::Array(a)) => {
                let mut out = Vec::new();
                for (i, v) in a.iter().enumerate() {
                    match v {
                        toml::Value::String(s) => out.push(s.clone()),
                        v => {
                            let t = type_name(v);
                            self.problem(key, format!("item {i}: expected a string, found {t}"));
                        }
                    }
                }
                out
            }
            Some(v) => {
                let t = type_name(v);
                self.problem(key, format!("expected an array of strings, found {t}"));
                default.to_vec()
            }
        }
    }

    /// Reports keys present but never read.
    pub fn finish(self) {
        if let Some(t) = self.table {
            for k in t.keys() {
                if !self.used.contains(&k.as_str()) {
                    self.problems.push(format!(
                        "{}.{k}: unknown key (known: {})",
                        self.name,
                        self.used.join(", ")
                    ));
                }
            }
        }
    }
}

impl StoreConfig {
    /// Reads a `[store]` table (shared by the watcher, `push` and the verifier).
    pub fn parse_section(s: &mut Section<'_>) -> StoreConfig {
        let d = Config::default();
        let kind = match s.string("kind", "s3").as_str() {
            "s3" => StoreKind::S3,
            "local" => StoreKind::Local,
            other => {
                s.problem("kind", format!("{other:?}: expected \"s3\" or \"local\""));
                StoreKind::S3
            }
        };
        let endpoint = s
            .opt_string("endpoint")
            .and_then(|e| match url::Url::parse(&e) {
                Ok(u) if u.scheme() == "https" && u.host_str().is_some() => Some(u),
                Ok(_) => {
                    s.problem(
                        "endpoint",
                        format!("{e:?} must be an https:// URL with a host"),
                    );
                    None
                }
                Err(err) => {
                    s.problem("endpoint", format!("{e:?} is not a URL: {err}"));
                    None
                }
            });
        let bucket = s.string("bucket", "");
        let region = s.string("region", &d.store.region);
        let path_style = match s.value("path_style") {
            None => None,
            Some(toml::Value::String(a)) if a == "auto" => None,
            Some(toml::Value::Boolean(b)) => Some(*b),
            Some(v) => {
                let t = type_name(v);
                s.problem(
                    "path_style",
                    format!("expected \"auto\", true or false, found {t}"),
                );
                None
            }
        };
        if let (Some(e), StoreKind::S3) = (&endpoint, kind)
            && let Err(why) = crate::store::s3::addressing(e, &bucket, path_style)
        {
            s.problems.push(why);
        }
        let credentials = match s.string("credentials", "chain").as_str() {
            "chain" => CredentialsMode::Chain,
            "instance" => CredentialsMode::Instance,
            other => {
                s.problem(
                    "credentials",
                    format!(
                        "{other:?}: expected \"chain\" (environment, web identity, shared files) \
                         or \"instance\" (then the container / instance metadata service)"
                    ),
                );
                CredentialsMode::Chain
            }
        };
        let profile = s.opt_string("profile");
        let sts_endpoint = s
            .opt_string("sts_endpoint")
            .and_then(|e| match url::Url::parse(&e) {
                Ok(u) if u.host_str().is_some() => Some(u),
                _ => {
                    s.problem("sts_endpoint", format!("{e:?} is not a URL with a host"));
                    None
                }
            });
        let metadata_endpoint = match s.opt_string("metadata_endpoint") {
            None => d.store.metadata_endpoint.clone(),
            Some(e) => match url::Url::parse(&e) {
                Ok(u) if u.host_str().is_some() => u,
                _ => {
                    s.problem(
                        "metadata_endpoint",
                        format!(
                            "{e:?} is not a URL with a host such as \"http://169.254.169.254\""
                        ),
                    );
                    d.store.metadata_endpoint.clone()
                }
            },
        };
        let ca_file = s.opt_string("ca_file").map(PathBuf::from);
        let prefix = s.string("prefix", "");
        let lock_mode = match s.string("lock_mode", "compliance").as_str() {
            "compliance" => LockMode::Compliance,
            "governance" => LockMode::Governance,
            other => {
                s.problem(
                    "lock_mode",
                    format!("{other:?}: expected \"compliance\" or \"governance\""),
                );
                LockMode::Compliance
            }
        };
        let retention = match s.value("retention") {
            None => d.store.retention,
            Some(toml::Value::String(r)) if r == "bucket-default" => None,
            Some(toml::Value::String(r)) => match parse_duration(r) {
                Some(p) if p >= Duration::from_secs(60) => Some(p),
                _ => {
                    s.problem(
                        "retention",
                        format!(
                            "{r:?}: expected a period of at least 1m such as \"30d\", or \
                                 \"bucket-default\""
                        ),
                    );
                    d.store.retention
                }
            },
            Some(v) => {
                let t = type_name(v);
                s.problem(
                    "retention",
                    format!("expected a string such as \"30d\", found {t}"),
                );
                d.store.retention
            }
        };
        StoreConfig {
            kind,
            endpoint,
            bucket,
            region,
            path_style,
            credentials,
            profile,
            sts_endpoint,
            metadata_endpoint,
            ca_file,
            prefix,
            lock_mode,
            retention,
            allow_unlocked_bucket: s.bool("allow_unlocked_bucket", false),
            request_timeout: s.duration(
                "request_timeout",
                d.store.request_timeout,
                Duration::from_millis(100),
            ),
            connect_timeout: s.duration(
                "connect_timeout",
                d.store.connect_timeout,
                Duration::from_millis(100),
            ),
            max_attempts: s.int("max_attempts", d.store.max_attempts.into(), 1, 20) as u32,
            stream_threshold: s.size("stream_threshold", d.store.stream_threshold),
            part_size: s.size("part_size", d.store.part_size),
            part_concurrency: s.int("part_concurrency", d.store.part_concurrency as u64, 1, 64)
                as usize,
            content_md5: s.bool("content_md5", false),
            dir: s.opt_string("dir").map(PathBuf::from),
        }
    }
}

impl TelemetryConfig {
    /// Reads a `[telemetry]` table.
    pub fn parse_section(s: &mut Section<'_>) -> TelemetryConfig {
        let d = Config::default();
        let log_format = match s.string("log_format", "text").as_str() {
            "text" => LogFormat::Text,
            "json" => LogFormat::Json,
            other => {
                s.problem(
                    "log_format",
                    format!("{other:?}: expected \"text\" or \"json\""),
                );
                LogFormat::Text
            }
        };
        let log_level = s.string("log_level", &d.telemetry.log_level);
        if tracing_subscriber::EnvFilter::try_new(&log_level).is_err() {
            s.problem("log_level", format!("{log_level:?} is not a level filter"));
        }
        let metrics_listen = s
            .opt_string("metrics_listen")
            .and_then(|a| match a.parse() {
                Ok(addr) => Some(addr),
                Err(_) => {
                    s.problem(
                        "metrics_listen",
                        format!("{a:?} is not an address such as \"127.0.0.1:9464\" (\"\": off)"),
                    );
                    None
                }
            });
        TelemetryConfig {
            log_format,
            log_level,
            metrics_listen,
        }
    }
}

impl AlertConfig {
    /// Reads an `[alert]` table.
    pub fn parse_section(s: &mut Section<'_>) -> AlertConfig {
        let d = Config::default();
        let command = s.strings("command", &[]);
        let webhook = s.opt_string("webhook");
        let webhook_ca = s.opt_string("webhook_ca_file").map(PathBuf::from);
        let timeout = s.duration(
            "timeout",
            Duration::from_secs(10),
            Duration::from_millis(100),
        );
        let repeat_after = s.duration("repeat_after", d.alert.repeat_after, Duration::from_secs(1));
        let hook = match (command.is_empty(), webhook) {
            (true, None) => AlertHook::None,
            (false, None) => {
                if command[0].is_empty() {
                    s.problem("command", "the program (first item) is empty".into());
                }
                AlertHook::Command {
                    argv: command,
                    timeout,
                }
            }
            (true, Some(w)) => match url::Url::parse(&w) {
                Ok(url) if matches!(url.scheme(), "https" | "http") => AlertHook::Webhook {
                    url,
                    ca_file: webhook_ca,
                    timeout,
                },
                _ => {
                    s.problem("webhook", format!("{w:?} is not an http(s) URL"));
                    AlertHook::None
                }
            },
            (false, Some(_)) => {
                s.problem(
                    "webhook",
                    "set either alert.command or alert.webhook, not both".into(),
                );
                AlertHook::None
            }
        };
        AlertConfig { hook, repeat_after }
    }
}

const SECTIONS: [&str; 5] = ["watch", "state", "store", "telemetry", "alert"];

impl Config {
    /// Reads and checks a configuration file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        crate::tomlcheck::load(path, Config::parse)
    }

    /// Parses and checks configuration text; on failure, every problem found.
    pub fn parse(text: &str) -> Result<Config, Vec<String>> {
        let root: toml::Table = toml::from_str(text)
            .map_err(|e| vec![format!("not valid TOML: {}", e.to_string().trim())])?;
        let mut problems = Vec::new();
        let mut tables: Vec<Option<&toml::Table>> = Vec::new();
        for name in SECTIONS {
            tables.push(match root.get(name) {
                None => None,
                Some(toml::Value::Table(t)) => Some(t),
                Some(v) => {
                    problems.push(format!(
                        "{name}: expected a [{name}] table, found {}",
                        type_name(v)
                    ));
                    None
                }
            });
        }
        for k in root.keys() {
            if !SECTIONS.contains(&k.as_str()) {
                problems.push(format!(
                    "{k}: unknown section (known: {})",
                    SECTIONS.join(", ")
                ));
            }
        }
        let d = Config::default();
        // Each section collects its own problems; they are reported in section order.
        let mut p_watch = Vec::new();
        let mut p_state = Vec::new();
        let mut p_store = Vec::new();
        let mut p_tele = Vec::new();
        let mut p_alert = Vec::new();

        let mut s = Section {
            name: "watch",
            table: tables[0],
            used: Vec::new(),
            problems: &mut p_watch,
        };
        let dirs: Vec<PathBuf> = s
            .strings("dirs", &[])
            .into_iter()
            .map(PathBuf::from)
            .collect();
        let watch = WatchConfig {
            include: s.strings("include", &d.watch.include),
            exclude: s.strings("exclude", &d.watch.exclude),
            temp_patterns: s.strings("temp_patterns", &d.watch.temp_patterns),
            max_depth: s.int("max_depth", d.watch.max_depth.into(), 1, 16) as u32,
            scan_interval: s.duration(
                "scan_interval",
                d.watch.scan_interval,
                Duration::from_millis(100),
            ),
            events: s.bool("events", d.watch.events),
            grace_period: s.duration("grace_period", d.watch.grace_period, Duration::ZERO),
            parallel_uploads: s.int("parallel_uploads", d.watch.parallel_uploads as u64, 1, 64)
                as usize,
            retry_max_backoff: s.duration(
                "retry_max_backoff",
                d.watch.retry_max_backoff,
                Duration::from_millis(100),
            ),
            backlog_alarm_age: s.duration(
                "backlog_alarm_age",
                d.watch.backlog_alarm_age,
                Duration::from_secs(1),
            ),
            shutdown_timeout: s.duration(
                "shutdown_timeout",
                d.watch.shutdown_timeout,
                Duration::ZERO,
            ),
            compress: compress_setting(&mut s),
            dirs,
        };
        s.finish();

        let mut s = Section {
            name: "state",
            table: tables[1],
            used: Vec::new(),
            problems: &mut p_state,
        };
        let state = StateConfig {
            dir: PathBuf::from(s.string("dir", DEFAULT_STATE_DIR)),
            status_interval: s.duration(
                "status_interval",
                d.state.status_interval,
                Duration::from_millis(100),
            ),
            seal_interval: s.duration(
                "seal_interval",
                d.state.seal_interval,
                Duration::from_secs(1),
            ),
            segment_max_entries: s.int(
                "segment_max_entries",
                d.state.segment_max_entries as u64,
                1,
                1_000_000,
            ) as usize,
        };
        s.finish();

        let mut s = Section {
            name: "store",
            table: tables[2],
            used: Vec::new(),
            problems: &mut p_store,
        };
        let store = StoreConfig::parse_section(&mut s);
        s.finish();

        let mut s = Section {
            name: "telemetry",
            table: tables[3],
            used: Vec::new(),
            problems: &mut p_tele,
        };
        let telemetry = TelemetryConfig::parse_section(&mut s);
        s.finish();

        let mut s = Section {
            name: "alert",
            table: tables[4],
            used: Vec::new(),
            problems: &mut p_alert,
        };
        let alert = AlertConfig::parse_section(&mut s);
        s.finish();

        for p in [p_watch, p_state, p_store, p_tele, p_alert] {
            problems.extend(p);
        }
        let cfg = Config {
            watch,
            state,
            store,
            telemetry,
            alert,
        };
        let more = cfg.cross_checks(&problems);
        problems.extend(more);
        if problems.is_empty() {
            Ok(cfg)
        } else {
            Err(problems)
        }
    }

    /// Checks between keys (the per-key checks are done while parsing; `already` holds their
    /// problems, so that a key reported as malformed is not also reported as missing).
    fn cross_checks(&self, already: &[String]) -> Vec<String> {
        let mut p = Vec::new();
        let w = &self.watch;
        if w.dirs.is_empty() {
            p.push("watch.dirs: at least one archive directory is needed".to_string());
        }
        for d in &w.dirs {
            if !d.is_absolute() {
                p.push(format!(
                    "watch.dirs: {} is not an absolute path",
                    d.display()
                ));
            }
        }
        if w.include.is_empty() || w.include.iter().any(String::is_empty) {
            p.push("watch.include: needs at least one non-empty pattern".to_string());
        }
        if !self.state.dir.is_absolute() {
            p.push(format!(
                "state.dir: {} is not an absolute path",
                self.state.dir.display()
            ));
        }
        if w.dirs.iter().any(|d| self.state.dir.starts_with(d)) {
            p.push(format!(
                "state.dir: {} is inside a watched archive directory",
                self.state.dir.display()
            ));
        }
        let s = &self.store;
        match s.kind {
            StoreKind::S3 => {
                if s.endpoint.is_none() && !already.iter().any(|x| x.starts_with("store.endpoint"))
                {
                    p.push("store.endpoint: required when store.kind = \"s3\"".to_string());
                }
                if s.bucket.is_empty() {
                    p.push("store.bucket: required when store.kind = \"s3\"".to_string());
                }
                if s.dir.is_some() {
                    p.push("store.dir: only for store.kind = \"local\"".to_string());
                }
            }
            StoreKind::Local => match &s.dir {
                None => p.push("store.dir: required when store.kind = \"local\"".to_string()),
                Some(d) if !d.is_absolute() => {
                    p.push(format!(
                        "store.dir: {} is not an absolute path",
                        d.display()
                    ));
                }
                Some(_) => {}
            },
        }
        if !s.prefix.is_empty() && crate::store::validate_key(&s.prefix).is_err() {
            p.push(format!(
                "store.prefix: {:?} must be a relative key without empty, '.' or '..' parts \
                 and without leading or trailing '/'",
                s.prefix
            ));
        }
        if s.stream_threshold > 5 << 30 {
            p.push(format!(
                "store.stream_threshold: {} is above the 5 GiB S3 accepts in one PUT",
                s.stream_threshold
            ));
        }
        if s.part_size < 5 << 20 || s.part_size > 5 << 30 {
            p.push(format!(
                "store.part_size: {} is outside 5 MiB..=5 GiB (S3's part limits)",
                s.part_size
            ));
        }
        p
    }

    /// True when `name` is an archived log name this configuration ships.
    pub fn wants(&self, name: &str) -> bool {
        self.watch.include.iter().any(|p| glob_match(p, name))
            && !self.watch.exclude.iter().any(|p| glob_match(p, name))
            && !self.is_temp(name)
    }

    /// True when `name` is a temporary name a log is written under before its rename.
    pub fn is_temp(&self, name: &str) -> bool {
        self.watch.temp_patterns.iter().any(|p| glob_match(p, name))
            && !self.watch.exclude.iter().any(|p| glob_match(p, name))
    }

    /// The object key of a shipped log with this SHA-256.
    pub fn archive_key(&self, sha_hex: &str) -> String {
        join_key(&self.store.prefix, &format!("archive/sha256/{sha_hex}"))
    }

    /// The object key of a log with this SHA-256 shipped as one zstd frame at `level`: its own
    /// key, so that the raw and each compressed form never meet under one create-only key.
    pub fn archive_key_zstd(&self, sha_hex: &str, level: Level) -> String {
        format!("{}.zstd-{}", self.archive_key(sha_hex), level.get())
    }

    /// The spool directory: a log is compressed there before its upload (local scratch, never
    /// the only copy of anything).
    pub fn spool_dir(&self) -> PathBuf {
        self.state.dir.join("spool")
    }

    /// The object key of a quarantined (incomplete or damaged) file with this SHA-256.
    pub fn quarantine_key(&self, sha_hex: &str) -> String {
        join_key(&self.store.prefix, &format!("quarantine/sha256/{sha_hex}"))
    }

    /// The manifest directory.
    pub fn manifest_dir(&self) -> PathBuf {
        self.state.dir.join("manifest")
    }

    /// The status file.
    pub fn status_path(&self) -> PathBuf {
        self.state.dir.join("status.json")
    }
}

/// `prefix/rest`, or `rest` when the prefix is empty.
pub fn join_key(prefix: &str, rest: &str) -> String {
    if prefix.is_empty() {
        rest.to_string()
    } else {
        format!("{prefix}/{rest}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
[watch]
dirs = ["/u01/arch"]
[store]
endpoint = "https://s3.example.net"
bucket = "redo"
"#;

    #[test]
    fn minimal_config_gets_the_documented_defaults() {
        let c = Config::parse(MINIMAL).unwrap();
        let d = Config::default();
        assert_eq!(c.watch.dirs, vec![PathBuf::from("/u01/arch")]);
        assert_eq!(c.watch.scan_interval, Duration::from_secs(10));
        assert_eq!(c.watch.parallel_uploads, 4);
        assert_eq!(c.state, d.state);
        assert_eq!(c.store.retention, None, "the bucket's default retention");
        assert_eq!(c.store.lock_mode, LockMode::Compliance);
        assert_eq!(c.alert.hook, AlertHook::None);
        assert!(c.wants("arch1_15_1224959854.dbf"));
        assert!(c.wants("o1_mf_1_15_abc_.arc"));
        assert!(!c.wants("arch1_15_1224959854.dbf.tmp"));
        assert!(!c.wants(".hidden.dbf"));
        assert!(!c.wants("alert.log"));
        assert_eq!(
            c.archive_key("ab"),
            "archive/sha256/ab",
            "no prefix: no leading slash"
        );
    }

    #[test]
    fn every_problem_is_listed_at_once() {
        let text = r#"
[watch]
dirs = ["relative/dir"]
scan_interval = "ten seconds"
parallel_uploads = 0
grace = "5m"
[store]
kind = "s3"
endpoint = "http://insecure.example"
prefix = "/abs"
retention = 30
part_size = "1MiB"
[telemetry]
log_format = "xml"
metrics_listen = "localhost"
[alert]
command = ["/bin/page"]
webhook = "https://hooks.example/x"
[extra]
x = 1
"#;
        let problems = Config::parse(text).unwrap_err();
        let expect = [
            "extra: unknown section",
            "watch.scan_interval: \"ten seconds\" is not a duration",
            "watch.parallel_uploads: 0 is out of range 1..=64",
            "watch.grace: unknown key",
            "store.endpoint: \"http://insecure.example\" must be an https:// URL",
            "store.retention: expected a string such as \"30d\", found an integer",
            "telemetry.log_format: \"xml\"",
            "telemetry.metrics_listen: \"localhost\" is not an address",
            "alert.webhook: set either alert.command or alert.webhook, not both",
            "watch.dirs: relative/dir is not an absolute path",
            "store.bucket: required",
            "store.prefix: \"/abs\"",
            "store.part_size: 1048576 is outside",
        ];
        for e in expect {
            assert!(
                problems.iter().any(|p| p.starts_with(e)),
                "missing {e:?} in:\n{}",
                problems.join("\n")
            );
        }
        assert_eq!(problems.len(), expect.len(), "{}", problems.join("\n"));
    }

    #[test]
    fn logs_ship_byte_identical_unless_compress_says_zstd() {
        assert_eq!(Config::parse(MINIMAL).unwrap().watch.compress, None);
        let with =
            |extra: &str| Config::parse(&MINIMAL.replace("[watch]", &format!("[watch]\n{extra}")));
        assert_eq!(
            with("compress = \"zstd\"").unwrap().watch.compress,
            Level::new(3)
        );
        assert_eq!(
            with("compress = \"zstd\"\ncompress_level = 1")
                .unwrap()
                .watch
                .compress,
            Level::new(1)
        );
        assert_eq!(with("compress_level = 9").unwrap().watch.compress, None);
        let problems = with("compress = \"gzip\"\ncompress_level = 20").unwrap_err();
        assert_eq!(
            problems,
            vec![
                "watch.compress: expected \"off\" or \"zstd\", found \"gzip\"".to_string(),
                "watch.compress_level: 20 is out of range 1..=19".to_string(),
            ]
        );
        let c = with("compress = \"zstd\"").unwrap();
        assert!(
            c.archive_key_zstd("ab", Level::new(3).unwrap())
                .ends_with("archive/sha256/ab.zstd-3")
        );
    }

    #[test]
    fn syntax_error_names_the_line() {
        let problems = Config::parse("[watch\ndirs = 1").unwrap_err();
        assert_eq!(problems.len(), 1);
        assert!(problems[0].contains("line 1"), "{}", problems[0]);
    }

    #[test]
    fn local_store_and_hooks() {
        let c = Config::parse(
            r#"
[watch]
dirs = ["/a", "/b"]
[state]
dir = "/var/lib/rv"
[store]
kind = "local"
dir = "/srv/vault"
retention = "bucket-default"
[alert]
webhook = "https://hooks.example/x"
timeout = "3s"
"#,
        )
        .unwrap();
        assert_eq!(c.store.kind, StoreKind::Local);
        assert_eq!(c.store.retention, None);
        assert!(matches!(
            c.alert.hook,
            AlertHook::Webhook { timeout, .. } if timeout == Duration::from_secs(3)
        ));
        let p = Config::parse(
            "[watch]\ndirs=[\"/a\"]\n[state]\ndir=\"/a/state\"\n[store]\nkind=\"local\"\n",
        )
        .unwrap_err();
        assert!(p.iter().any(|x| x.starts_with("state.dir:")), "{p:?}");
        assert!(
            p.iter().any(|x| x.starts_with("store.dir: required")),
            "{p:?}"
        );
    }

    #[test]
    fn path_style_auto_true_false_and_impossible_ones() {
        let cfg = |ps: &str, endpoint: &str| {
            Config::parse(&format!(
                "[watch]\ndirs = [\"/a\"]\n[state]\ndir = \"/s\"\n[store]\n\
                 endpoint = \"{endpoint}\"\nbucket = \"b-bucket\"\n{ps}\n"
            ))
        };
        let ps = |c: Result<Config, Vec<String>>| c.map(|c| c.store.path_style);
        assert_eq!(ps(cfg("", "https://s3.example.net")), Ok(None));
        assert_eq!(
            ps(cfg("path_style = \"auto\"", "https://10.0.0.5")),
            Ok(None)
        );
        assert_eq!(
            ps(cfg("path_style = true", "https://10.0.0.5")),
            Ok(Some(true))
        );
        assert_eq!(
            ps(cfg("path_style = false", "https://s3.example.net")),
            Ok(Some(false))
        );
        let p = cfg("path_style = false", "https://127.0.0.1:7443").unwrap_err();
        assert!(
            p.iter().any(|l| l.starts_with("store.path_style = false")),
            "{p:?}"
        );
        let p = cfg("path_style = 1", "https://s3.example.net").unwrap_err();
        assert!(
            p.iter().any(|l| l.starts_with("store.path_style:")),
            "{p:?}"
        );
        let p = cfg("credentials = \"imds\"", "https://s3.example.net").unwrap_err();
        assert!(
            p.iter().any(|l| l.starts_with("store.credentials:")),
            "{p:?}"
        );
    }

    #[test]
    fn example_config_passes() {
        let text = include_str!("../../deploy/config/watcher.example.toml");
        let c = Config::parse(text).unwrap_or_else(|p| panic!("{}", p.join("\n")));
        // The example documents the defaults: every value it sets is the default one, except
        // the values that have none.
        let mut d = Config::default();
        d.watch.dirs = c.watch.dirs.clone();
        d.store.endpoint = c.store.endpoint.clone();
        d.store.bucket = c.store.bucket.clone();
        d.store.prefix = c.store.prefix.clone();
        d.store.ca_file = c.store.ca_file.clone();
        d.telemetry.metrics_listen = c.telemetry.metrics_listen;
        d.alert.hook = c.alert.hook.clone();
        assert_eq!(c, d);
    }

    #[test]
    fn durations_sizes_globs() {
        assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("30d"), Some(Duration::from_secs(30 * 86400)));
        assert_eq!(parse_duration("10"), None);
        assert_eq!(parse_duration("s"), None);
        assert_eq!(parse_duration("99999999999999999999d"), None);
        assert_eq!(parse_size("64MiB"), Some(64 << 20));
        assert_eq!(parse_size("5G"), Some(5 << 30));
        assert_eq!(parse_size("12"), Some(12));
        assert_eq!(parse_size("1TB"), None);
        assert!(glob_match("*.dbf", "arch1_1_2.dbf"));
        assert!(glob_match("arch?_*.dbf", "arch1_1_2.dbf"));
        assert!(!glob_match("*.dbf", "arch1_1_2.dbf.tmp"));
        assert!(glob_match("*", ""));
        assert!(glob_match("a*b*c", "aXbYbZc"));
        assert!(!glob_match("a*b*c", "aXbYbZ"));
        // Many stars on a long name stay fast (no exponential backtracking).
        let long = "a".repeat(5000);
        assert!(!glob_match("*a*a*a*a*a*b", &long));
    }
}
