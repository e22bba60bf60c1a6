//! The extractor daemon's whole configuration file: the tailer's sections (`[online]`,
//! `[archive]`, `[tail]`, `[state]`, see [`crate::config`]) plus where and how to ship
//! (`[collector]`, `[link]`) and telemetry (`[telemetry]`). Every problem is reported at once
//! (`redovault-extractor check-config`) and unknown keys are refused.
//!
//! ```toml
//! [collector]                              # or [[collector]] once per collector (see below)
//! address = "collector.example.net:7070"   # required to run: host:port
//! server_name = "collector.example.net"    # the collector certificate's name (default: host)
//! extractor_id = "db01-extractor"          # required; under TLS the certificate's CN or SAN
//! cipher = "tls"                           # "tls" (default, production) or "blowfish" (LEGACY)
//! ca = "/etc/redovault/link-ca.pem"        # tls: CA of the collector's certificate
//! cert = "/etc/redovault/extractor.pem"    # tls: this extractor's certificate
//! key = "/etc/redovault/extractor.key"     # tls: its key
//! # psk_file = "/etc/redovault/link.psk"   # blowfish only
//!
//! [link]                                   # defaults shown
//! ack = "majority"                         # with several collectors: "all", "majority", "any"
//! window = "16M"                           # unacknowledged redo in flight (backpressure)
//! heartbeat_interval = "1s"
//! missed_heartbeats = 5
//! handshake_timeout = "10s"
//! reconnect_min = "100ms"                  # first retry after a failure, doubling ...
//! reconnect_max = "5s"                     # ... up to this
//! compress = "off"                         # "zstd": offer compressed Data (the collector decides)
//! compress_level = 3                       # zstd level 1..=19 when compress = "zstd"
//!
//! [telemetry]
//! log_format = "text"                      # or "json"
//! log_level = "info"
//! metrics_listen = "127.0.0.1:9465"        # "" turns the endpoint off
//! ```
//!
//! Several collectors (replicated, 1:N): `[[collector]]` once per collector, each with the
//! keys above and a `name` (letters, digits, `.`, `_`, `-`; default: its address), unique
//! with its address. Every thread streams to each of them over its own link; `[link] ack`
//! says how many must acknowledge before redo counts as protected (see [`crate::fanout`]).
//!
//! `deploy/config/extractor.example.toml` documents every key; a test checks it.

use redovault::config::{ms, secs};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use redovault::compress::Level;
use redovault::config::sections::{link_timing, non_empty};
use redovault::config::units::{duration, size};
use redovault::config::{Check, Compress, DaemonTelemetry, OneOrList, Problems};
use redovault::crypto::legacy::Psk;
use redovault::crypto::tls::TlsClient;
use redovault::wire::frame::MAX_FRAME_LEN;
use redovault::wire::transport::{ClientSecurity, LinkConfig};
use serde::Deserialize;

use crate::config::{
    ArchiveConfig, ExtractorConfig, GroupConfig, OnlineConfig, StateConfig, TailConfig,
};
use crate::protection::AckPolicy;

/// How the link to the collector is protected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CipherConfig {
    /// TLS 1.3 with our client certificate (the default and production mode).
    Tls {
        /// CA of the collector's certificate.
        ca: PathBuf,
        /// Our certificate.
        cert: PathBuf,
        key: PathBuf,
    },
    /// LEGACY: Blowfish with a pre-shared key.
    Blowfish {
        /// File holding the PSK in hex.
        psk_file: PathBuf,
    },
}

/// `[collector]` (or one `[[collector]]`): where to ship.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CollectorTarget {
    /// Its name: metrics label, state directory, log lines.
    pub name: String,
    /// `host:port`, resolved at each connection.
    pub address: String,
    /// Name the collector's certificate must carry.
    pub server_name: String,
    /// Our id (Hello), under TLS our certificate's CN or DNS SAN.
    pub extractor_id: String,
    /// Link protection.
    pub cipher: CipherConfig,
}

/// `[link]`: link tunables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkSettings {
    /// How many collectors must acknowledge redo before it counts as protected.
    pub ack: AckPolicy,
    /// Bytes of Data in flight without an Ack.
    pub window: u32,
    /// Heartbeats, handshake timeout, frame size.
    pub link: LinkConfig,
    /// First reconnect delay.
    pub reconnect_min: Duration,
    /// Longest reconnect delay.
    pub reconnect_max: Duration,
    /// `compress = "zstd"`: the level Data is compressed at where the collector accepts it;
    /// `None` (`"off"`, the default): nothing is offered.
    pub compress: Option<Level>,
}

impl Default for LinkSettings {
    fn default() -> Self {
        LinkSettings {
            ack: AckPolicy::default(),
            window: 16 << 20,
            link: LinkConfig::default(),
            reconnect_min: ms(100),
            reconnect_max: secs(5),
            compress: None,
        }
    }
}

pub type TelemetrySettings = redovault::config::Telemetry;

/// The whole file.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The tailer's part.
    pub extract: ExtractorConfig,
    /// Where to ship, in the file's order; empty when the file has no `[collector]`
    /// (enough for `check` and the dry-run `tail`, not to run).
    pub collectors: Vec<CollectorTarget>,
    /// Link tunables.
    pub link: LinkSettings,
    pub telemetry: TelemetrySettings,
}

pub use redovault::config::ConfigError as SettingsError;

/// The file as serde reads it.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct SettingsFile {
    online: Option<OnlineFile>,
    archive: ArchiveFile,
    tail: TailConfig,
    state: Option<StateFile>,
    collector: OneOrList<CollectorFile>,
    link: LinkFile,
    telemetry: DaemonTelemetry,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct OnlineFile {
    group: Vec<GroupFile>,
    threads: Vec<u16>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct GroupFile {
    members: Option<Vec<PathBuf>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ArchiveFile {
    dirs: Vec<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct StateFile {
    dir: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct CollectorFile {
    address: Option<String>,
    #[serde(deserialize_with = "non_empty")]
    name: Option<String>,
    #[serde(deserialize_with = "non_empty")]
    server_name: Option<String>,
    extractor_id: Option<String>,
    cipher: Option<CipherKind>,
    ca: Option<String>,
    cert: Option<String>,
    key: Option<String>,
    psk_file: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(default)]
struct LinkFile {
    ack: AckPolicy,
    #[serde(deserialize_with = "size")]
    window: u64,
    #[serde(deserialize_with = "duration")]
    heartbeat_interval: Duration,
    missed_heartbeats: u32,
    #[serde(deserialize_with = "duration")]
    handshake_timeout: Duration,
    #[serde(deserialize_with = "duration")]
    reconnect_min: Duration,
    #[serde(deserialize_with = "duration")]
    reconnect_max: Duration,
    compress: Compress,
    compress_level: u64,
}

impl Default for LinkFile {
    fn default() -> LinkFile {
        let (d, l) = (LinkSettings::default(), LinkConfig::default());
        LinkFile {
            ack: d.ack,
            window: u64::from(d.window),
            heartbeat_interval: l.heartbeat_interval,
            missed_heartbeats: l.missed_heartbeats,
            handshake_timeout: l.handshake_timeout,
            reconnect_min: d.reconnect_min,
            reconnect_max: d.reconnect_max,
            compress: Compress::Off,
            compress_level: Level::DEFAULT.get() as u64,
        }
    }
}

/// `cipher`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum CipherKind {
    Tls,
    Blowfish,
}

impl Settings {
    /// Reads and checks a configuration file.
    pub fn load(path: &Path) -> Result<Settings, SettingsError> {
        redovault::config::load::<SettingsFile>(path)
    }

    /// Parses and checks configuration text; on failure, every problem found.
    pub fn parse(text: &str) -> Result<Settings, Vec<String>> {
        redovault::config::parse::<SettingsFile>(text)
    }
}

impl Check for SettingsFile {
    type Output = Settings;
    const FIRST_INDEX: usize = 1;

    fn check(self, p: &mut Problems) -> Option<Settings> {
        let online = check_online(self.online, p);
        for d in &self.archive.dirs {
            p.absolute("archive.dirs", d);
        }
        let tail = self.tail;
        let us = Duration::from_micros;
        p.within("tail.poll", tail.poll, us(100), secs(60));
        p.size_range("tail.max_chunk", tail.max_chunk, 8 << 10, 64 << 20);
        p.range("tail.torn_retries", tail.torn_retries, 0, 10_000);
        p.within("tail.torn_delay", tail.torn_delay, us(0), secs(1));
        p.within(
            "tail.archive_wait",
            tail.archive_wait,
            us(0),
            secs(30 * 86_400),
        );
        if !p.about("tail")
            && let Err(e) = tail.check()
        {
            p.line(format!("tail: {e}"));
        }
        let state_dir = match self.state {
            None => {
                p.line("[state]: missing section".into());
                None
            }
            Some(s) => p.required_path("state.dir", s.dir),
        };
        let list = self.collector.list;
        let mut collectors = Vec::new();
        for (i, c) in self.collector.items.into_iter().enumerate() {
            let at = if list {
                format!("collector[{}]", i + 1)
            } else {
                "collector".into()
            };
            collectors.extend(check_collector(&at, c, p));
        }
        check_collectors_differ(&collectors, p);
        let link = self.link.check(p);
        let telemetry = self.telemetry.resolve(9465);
        Some(Settings {
            extract: ExtractorConfig {
                online,
                archive: ArchiveConfig {
                    dirs: self.archive.dirs,
                },
                tail,
                state: StateConfig { dir: state_dir? },
            },
            collectors,
            link,
            telemetry,
        })
    }
}

/// `[online]`: its groups' members absolute and each listed once.
fn check_online(online: Option<OnlineFile>, p: &mut Problems) -> OnlineConfig {
    let Some(online) = online else {
        p.line("[online]: missing section".into());
        return OnlineConfig {
            groups: Vec::new(),
            threads: Vec::new(),
        };
    };
    if online.group.is_empty() && !p.about("online.group") {
        p.push("online.group", "at least one [[online.group]] is needed");
    }
    let mut seen = BTreeSet::new();
    let mut groups = Vec::new();
    for (i, g) in online.group.into_iter().enumerate() {
        let at = format!("online.group[{}].members", i + 1);
        let members = match g.members {
            None if !p.about(&at) => {
                p.push(&at, "missing");
                Vec::new()
            }
            Some(m) if m.is_empty() => {
                p.push(&at, "no member");
                m
            }
            m => m.unwrap_or_default(),
        };
        let mut kept = Vec::new();
        for m in members {
            if !m.is_absolute() {
                p.push(&at, format!("{} is not an absolute path", m.display()));
            } else if !seen.insert(m.clone()) {
                p.push(&at, format!("{} is listed twice", m.display()));
            } else {
                kept.push(m);
            }
        }
        groups.push(GroupConfig { members: kept });
    }
    for (i, t) in online.threads.iter().enumerate() {
        if *t == 0 {
            p.push(
                "online.threads",
                format!("item {i}: 0 is out of range 1..=65535"),
            );
        }
    }
    OnlineConfig {
        groups,
        threads: online.threads,
    }
}

impl LinkFile {
    fn check(self, p: &mut Problems) -> LinkSettings {
        p.size_range("link.window", self.window, 64 << 10, 1 << 30);
        p.within("link.reconnect_min", self.reconnect_min, ms(1), secs(600));
        p.within("link.reconnect_max", self.reconnect_max, ms(1), secs(3600));
        if self.reconnect_max < self.reconnect_min {
            p.push("link.reconnect_max", "shorter than reconnect_min");
        }
        let on = self.compress == Compress::Zstd;
        let compress = p.zstd_level("link.compress_level", on, self.compress_level);
        let link = link_timing(
            "link",
            self.heartbeat_interval,
            self.missed_heartbeats,
            self.handshake_timeout,
            p,
        );
        LinkSettings {
            ack: self.ack,
            window: self.window as u32,
            link: LinkConfig {
                max_frame_len: MAX_FRAME_LEN,
                ..link
            },
            reconnect_min: self.reconnect_min,
            reconnect_max: self.reconnect_max,
            compress,
        }
    }
}

/// A required, non-empty string at `path`.
fn required(p: &mut Problems, path: &str, v: Option<String>) -> Option<String> {
    match v {
        None if !p.about(path) => p.push(path, "missing"),
        None => {}
        Some(v) if v.trim().is_empty() => p.push(path, "empty"),
        Some(v) => return Some(v),
    }
    None
}

/// One `[collector]` table (or `[[collector]]` item) at `at`; `None` when it has a
/// problem (reported).
fn check_collector(at: &str, c: CollectorFile, p: &mut Problems) -> Option<CollectorTarget> {
    let key = |k: &str| format!("{at}.{k}");
    let address = required(p, &key("address"), c.address);
    let host = address.as_deref().and_then(|a| match a.rsplit_once(':') {
        Some((h, port)) if !h.is_empty() && port.parse::<u16>().is_ok() => {
            Some(h.trim_start_matches('[').trim_end_matches(']').to_string())
        }
        _ => None,
    });
    if let (Some(a), None) = (&address, &host) {
        let what = format!("{a:?} is not host:port such as \"collector.example.net:7070\"");
        p.push(&key("address"), what);
    }
    let name = match c.name {
        Some(n) if !valid_name(&n) => {
            let what = format!("{n:?}: use 1 to 64 letters, digits, '.', '_' or '-'");
            p.push(&key("name"), what);
            None
        }
        Some(n) => Some(n),
        None => address.as_deref().map(name_of_address),
    };
    let server_name = c.server_name.or(host);
    let extractor_id = required(p, &key("extractor_id"), c.extractor_id);
    if let Some(id) = &extractor_id
        && (id.len() > redovault::wire::message::MAX_NAME_LEN || id.chars().any(char::is_control))
    {
        p.push(&key("extractor_id"), "too long or has control characters");
    }
    let cipher = if c.cipher == Some(CipherKind::Blowfish) {
        for (k, v) in [("ca", &c.ca), ("cert", &c.cert), ("key", &c.key)] {
            if v.is_some() {
                p.push(&key(k), "set, but cipher = \"blowfish\" does not use it");
            }
        }
        p.required_path(&key("psk_file"), c.psk_file)
            .map(|psk_file| CipherConfig::Blowfish { psk_file })
    } else {
        if c.psk_file.is_some() {
            let what = "set, but the cipher is TLS (set cipher = \"blowfish\" to use it)";
            p.push(&key("psk_file"), what);
        }
        let ca = p.required_path(&key("ca"), c.ca);
        let cert = p.required_path(&key("cert"), c.cert);
        let tls_key = p.required_path(&key("key"), c.key);
        match (ca, cert, tls_key) {
            (Some(ca), Some(cert), Some(key)) => Some(CipherConfig::Tls { ca, cert, key }),
            _ => None,
        }
    };
    Some(CollectorTarget {
        name: name?,
        address: address?,
        server_name: server_name?,
        extractor_id: extractor_id?,
        cipher: cipher?,
    })
}

fn valid_name(n: &str) -> bool {
    (1..=64).contains(&n.len())
        && n.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

/// A collector's default name: its address with every other character as `_`.
fn name_of_address(address: &str) -> String {
    let n: String = address
        .chars()
        .take(64)
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if n.is_empty() { "collector".into() } else { n }
}

/// Two collectors with one name or one address would be one copy counted twice.
fn check_collectors_differ(collectors: &[CollectorTarget], p: &mut Problems) {
    let mut names = BTreeSet::new();
    let mut addresses = BTreeSet::new();
    for (i, c) in collectors.iter().enumerate() {
        if !names.insert(c.name.as_str()) {
            p.line(format!(
                "collector[{}].name: {:?} is used by another collector",
                i + 1,
                c.name
            ));
        }
        if !addresses.insert(c.address.as_str()) {
            p.line(format!(
                "collector[{}].address: {} is listed twice",
                i + 1,
                c.address
            ));
        }
    }
}

impl CollectorTarget {
    /// Loads what protects the link (certificates or PSK); errors name the file.
    pub fn load_security(&self) -> Result<ClientSecurity, String> {
        match &self.cipher {
            CipherConfig::Tls { ca, cert, key } => TlsClient::from_pem_files(cert, key, ca)
                .map(|client| ClientSecurity::Tls {
                    client,
                    server_name: self.server_name.clone(),
                })
                .map_err(|e| format!("collector: {e}")),
            CipherConfig::Blowfish { psk_file } => Psk::from_file(psk_file)
                .map(ClientSecurity::LegacyBlowfish)
                .map_err(|e| format!("collector: {e}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = r#"
[online]
[[online.group]]
members = ["/o/redo01.log"]
[[online.group]]
members = ["/o/redo02.log"]
[state]
dir = "/var/lib/redovault/extractor"
"#;

    #[test]
    fn tail_only_file_gets_defaults() {
        let s = Settings::parse(BASE).unwrap();
        assert_eq!(s.extract.online.groups.len(), 2);
        assert_eq!(s.extract.tail, TailConfig::default());
        assert!(s.collectors.is_empty());
        assert_eq!(s.link, LinkSettings::default());
        assert_eq!(
            s.telemetry.metrics_listen,
            Some("127.0.0.1:9465".parse().unwrap())
        );
    }

    #[test]
    fn compression_off_by_default_zstd_with_a_level() {
        assert_eq!(Settings::parse(BASE).unwrap().link.compress, None);
        let s = Settings::parse(&format!("{BASE}[link]\ncompress = \"zstd\"\n")).unwrap();
        assert_eq!(s.link.compress, Some(Level::DEFAULT));
        let s = Settings::parse(&format!(
            "{BASE}[link]\ncompress = \"zstd\"\ncompress_level = 19\n"
        ))
        .unwrap();
        assert_eq!(s.link.compress, Level::new(19));
        let p = Settings::parse(&format!(
            "{BASE}[link]\ncompress = \"lz4\"\ncompress_level = 20\n"
        ))
        .unwrap_err();
        assert_eq!(p.len(), 2, "{p:?}");
        assert!(
            p[0].contains("link.compress") && p[1].contains("link.compress_level"),
            "{p:?}"
        );
    }

    #[test]
    fn collector_section_tls_and_blowfish() {
        let text = format!(
            "{BASE}[collector]\naddress = \"collector.example.net:7070\"\nextractor_id = \"x1\"\n\
             ca = \"/c/ca.pem\"\ncert = \"/c/x.pem\"\nkey = \"/c/x.key\"\n"
        );
        let c = Settings::parse(&text).unwrap().collectors.remove(0);
        assert_eq!(c.server_name, "collector.example.net");
        assert!(matches!(c.cipher, CipherConfig::Tls { .. }));
        let text = format!(
            "{BASE}[collector]\naddress = \"[::1]:7070\"\nextractor_id = \"x1\"\n\
             cipher = \"blowfish\"\npsk_file = \"/c/psk\"\n"
        );
        let c = Settings::parse(&text).unwrap().collectors.remove(0);
        assert_eq!(c.server_name, "::1");
        assert_eq!(
            c.cipher,
            CipherConfig::Blowfish {
                psk_file: "/c/psk".into()
            }
        );
    }

    #[test]
    fn several_collectors_and_the_ack_policy() {
        let one = |name: &str, addr: &str| {
            format!(
                "[[collector]]\n{name}address = \"{addr}\"\nextractor_id = \"x1\"\n\
                 ca = \"/c/ca.pem\"\ncert = \"/c/x.pem\"\nkey = \"/c/x.key\"\n"
            )
        };
        let text = format!(
            "{BASE}{}{}{}[link]\nack = \"all\"\n",
            one("name = \"dr-a\"\n", "a.example.net:7070"),
            one("", "b.example.net:7070"),
            one("name = \"c\"\n", "[::1]:7070"),
        );
        let s = Settings::parse(&text).unwrap();
        let names: Vec<&str> = s.collectors.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["dr-a", "b.example.net_7070", "c"]);
        assert_eq!(s.collectors[2].server_name, "::1");
        assert_eq!(s.link.ack, AckPolicy::All);
        // The default policy is majority; one [collector] table is named after its address.
        let s = Settings::parse(&format!(
            "{BASE}{}",
            one("", "h:1").replacen("[[collector]]", "[collector]", 1)
        ))
        .unwrap();
        assert_eq!(s.link.ack, AckPolicy::Majority);
        assert_eq!(s.collectors[0].name, "h_1");
        // Every problem at once, with the item's index.
        let text = format!(
            "{BASE}{}{}{}[link]\nack = \"quorum\"\n",
            one("name = \"a\"\n", "a:1"),
            one("name = \"a\"\n", "a:1"),
            one("name = \"bad/name\"\n", "b:1"),
        );
        let p = Settings::parse(&text).unwrap_err();
        let expect = [
            "collector[2].name: \"a\" is used by another collector",
            "collector[2].address: a:1 is listed twice",
            "collector[3].name: \"bad/name\"",
            "link.ack: \"quorum\" is not one of all, majority, any",
        ];
        for e in expect {
            assert!(p.iter().any(|x| x.starts_with(e)), "{e:?} not in {p:#?}");
        }
        assert_eq!(p.len(), expect.len(), "{p:#?}");
    }

    #[test]
    fn every_problem_is_listed_at_once() {
        let text = r#"
[online]
threads = [0]
[[online.group]]
members = ["relative.log"]
[[online.group]]
members = ["/o/a.log", "/o/a.log"]
[tail]
poll = "never"
max_chunk = "1K"
[collector]
address = "no-port"
cipher = "blowfish"
cert = "/c/x.pem"
[link]
window = 12
reconnect_min = "10s"
reconnect_max = "1s"
[telemetry]
log_format = "xml"
[bogus]
"#;
        let p = Settings::parse(text).unwrap_err();
        let expect = [
            "bogus: unknown section",
            "online.group[1].members: relative.log is not an absolute path",
            "online.group[2].members: /o/a.log is listed twice",
            "online.threads: item 0: 0 is out of range",
            "tail.poll: \"never\" is not a duration",
            "tail.max_chunk: out of range",
            "[state]: missing section",
            "collector.address: \"no-port\" is not host:port",
            "collector.extractor_id: missing",
            "collector.cert: set, but cipher = \"blowfish\"",
            "collector.psk_file: missing",
            "link.window: out of range",
            "link.reconnect_max: shorter than reconnect_min",
            "telemetry.log_format: \"xml\" is not one of text, json",
        ];
        for e in expect {
            assert!(p.iter().any(|x| x.starts_with(e)), "{e:?} not in {p:#?}");
        }
        assert_eq!(p.len(), expect.len(), "{p:#?}");
    }
}
