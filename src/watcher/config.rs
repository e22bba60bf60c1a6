//! The watcher's TOML configuration: documented defaults, unknown keys rejected, and every
//! problem reported at once (`redovault check-config`), read by [`crate::config`].
//!
//! `deploy/config/watcher.example.toml` documents every key with its default. Credentials
//! never appear here: they come from `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY` (and
//! `AWS_SESSION_TOKEN`).

use crate::config::{ms, secs};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Deserializer};
use smart_default::SmartDefault;

use crate::compress::Level;
use crate::config::units::{choice, duration};
use crate::config::{Check, Problems};

pub use crate::config::{
    AlertConfig, ConfigError, CredentialsMode, StoreConfig, StoreKind, TelemetryConfig,
    parse_duration, parse_size,
};

/// The whole configuration.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(default)]
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

#[derive(Debug, Clone, PartialEq, Deserialize, SmartDefault)]
#[serde(default)]
pub struct WatchConfig {
    /// Archive destinations (absolute directories), scanned recursively.
    pub dirs: Vec<PathBuf>,
    /// File name patterns of archived logs (`*` and `?`).
    #[default(vec!["*.dbf".into(), "*.arc".into()])]
    pub include: Vec<String>,
    /// File name patterns never shipped (hidden files...).
    #[default(vec![".*".into()])]
    pub exclude: Vec<String>,
    /// Temporary names archived logs are written under before being renamed (never shipped
    /// themselves; followed while written, so that the renamed log ships at once).
    #[default(vec!["*.tmp".into(), "*.part".into()])]
    pub temp_patterns: Vec<String>,
    /// How deep below each directory to look (1: only the directory itself).
    #[default = 4]
    pub max_depth: u32,
    /// Full rescan period: the truth (events are only hints).
    #[serde(deserialize_with = "duration")]
    #[default(secs(10))]
    pub scan_interval: Duration,
    /// Use filesystem events (inotify) to notice new files at once.
    #[default = true]
    pub events: bool,
    /// How long a file may stay incomplete or damaged, unchanged, before the alarm and the
    /// quarantine copy.
    #[serde(deserialize_with = "duration")]
    #[default(secs(300))]
    pub grace_period: Duration,
    /// Files validated and uploaded at once.
    #[default = 4]
    pub parallel_uploads: usize,
    /// Longest pause before retrying a failed upload.
    #[serde(deserialize_with = "duration")]
    #[default(secs(30))]
    pub retry_max_backoff: Duration,
    /// Alarm when the oldest unshipped log is older than this.
    #[serde(deserialize_with = "duration")]
    #[default(secs(600))]
    pub backlog_alarm_age: Duration,
    /// At shutdown, how long in-flight uploads may take to finish.
    #[serde(deserialize_with = "duration")]
    #[default(secs(30))]
    pub shutdown_timeout: Duration,
    /// Ship each log as one zstd frame at this level (`compress = "zstd"`), or byte-identical
    /// to Oracle's file (None, the default). The manifest then records both digests.
    #[serde(deserialize_with = "compress_mode")]
    pub compress: Option<Level>,
    /// The zstd level of `compress = "zstd"`.
    #[default(Level::DEFAULT.get() as u64)]
    pub compress_level: u64,
}

#[derive(Debug, Clone, PartialEq, Deserialize, SmartDefault)]
#[serde(default)]
pub struct StateConfig {
    /// The state directory.
    #[default(PathBuf::from(DEFAULT_STATE_DIR))]
    pub dir: PathBuf,
    /// How often the status file is rewritten.
    #[serde(deserialize_with = "duration")]
    #[default(secs(2))]
    pub status_interval: Duration,
    /// How often the open manifest segment is closed and sealed into WORM.
    #[serde(deserialize_with = "duration")]
    #[default(secs(600))]
    pub seal_interval: Duration,
    /// Close the open segment once it holds this many entries.
    #[default = 1000]
    pub segment_max_entries: usize,
}

/// The state directory used when none is configured.
pub const DEFAULT_STATE_DIR: &str = "/var/lib/redovault/watcher";

/// `compress`: `"off"` (None) or `"zstd"` (at `compress_level`, set by the check).
fn compress_mode<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Level>, D::Error> {
    choice(d, &[("off", None), ("zstd", Some(Level::DEFAULT))])
}

impl Check for Config {
    type Output = Config;

    fn check(mut self, p: &mut Problems) -> Option<Config> {
        let (w, s) = (&mut self.watch, &self.state);
        let min = ms(100);
        p.range("watch.max_depth", w.max_depth, 1, 16);
        p.at_least("watch.scan_interval", w.scan_interval, min);
        p.range("watch.parallel_uploads", w.parallel_uploads, 1, 64);
        p.at_least("watch.retry_max_backoff", w.retry_max_backoff, min);
        p.at_least("watch.backlog_alarm_age", w.backlog_alarm_age, secs(1));
        let level = w.compress_level;
        w.compress = p.zstd_level("watch.compress_level", w.compress.is_some(), level);
        if w.dirs.is_empty() {
            p.missing("watch.dirs", "at least one archive directory is needed");
        }
        for d in &w.dirs {
            p.absolute("watch.dirs", d);
        }
        if w.include.is_empty() || w.include.iter().any(String::is_empty) {
            p.push("watch.include", "needs at least one non-empty pattern");
        }
        p.at_least("state.status_interval", s.status_interval, min);
        p.at_least("state.seal_interval", s.seal_interval, secs(1));
        let entries = s.segment_max_entries;
        p.range("state.segment_max_entries", entries, 1, 1_000_000);
        p.absolute("state.dir", &s.dir);
        if w.dirs.iter().any(|d| s.dir.starts_with(d)) {
            let what = format!("{} is inside a watched archive directory", s.dir.display());
            p.push("state.dir", what);
        }
        self.store.check(p);
        self.telemetry.check(p);
        self.alert.check(p);
        Some(self)
    }
}

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

impl Config {
    /// Reads and checks a configuration file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        crate::config::load::<Config>(path)
    }

    /// Parses and checks configuration text; on failure, every problem found.
    pub fn parse(text: &str) -> Result<Config, Vec<String>> {
        crate::config::parse::<Config>(text)
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

    pub fn manifest_dir(&self) -> PathBuf {
        self.state.dir.join("manifest")
    }

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
    use crate::alert::AlertHook;
    use crate::store::LockMode;

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
        assert_eq!(c.alert.hook(), AlertHook::None);
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
                "watch.compress: \"gzip\" is not one of off, zstd".to_string(),
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
            c.alert.hook(),
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
        d.alert.command = c.alert.command.clone();
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
