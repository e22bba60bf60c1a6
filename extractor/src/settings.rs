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

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use redovault::compress::Level;
use redovault::config::sections::{abs_path, link_timing, non_blank};
use redovault::config::units::{duration, size};
use redovault::config::{Check, Compress, ConfigError, DaemonTelemetry, OneOrList, Problems};
use redovault::config::{Telemetry, ms, secs};
use redovault::crypto::legacy::Psk;
use redovault::crypto::tls::TlsClient;
use redovault::wire::message::MAX_NAME_LEN;
use redovault::wire::transport::{ClientSecurity, LinkConfig};
use serde::Deserialize;
use smart_default::SmartDefault;

use crate::config::{ArchiveConfig, ExtractorConfig, OnlineConfig, StateConfig, TailConfig};
use crate::protection::AckPolicy;

/// The whole file, as serde reads it and the daemon uses it (checked by [`Check`]).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// Required (`None`: absent, reported); the tailer reads [`Settings::extract`].
    pub online: Option<OnlineConfig>,
    pub archive: ArchiveConfig,
    pub tail: TailConfig,
    /// Required, as `[online]`.
    pub state: Option<StateConfig>,
    /// Where to ship, in the file's order; none when the file has no `[collector]` (enough
    /// for `check` and the dry-run `tail`, not to run).
    #[serde(rename = "collector")]
    pub collectors: OneOrList<CollectorTarget>,
    pub link: LinkSettings,
    telemetry: DaemonTelemetry,
}

/// `[collector]` (or one `[[collector]]`): where to ship.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(default)]
pub struct CollectorTarget {
    /// Metrics label, state directory, log lines (default: from the address).
    pub name: String,
    /// `host:port`, resolved at each connection (required).
    #[serde(deserialize_with = "non_blank")]
    pub address: String,
    /// Name the collector's certificate must carry (default: the address's host).
    pub server_name: String,
    /// Our id (Hello), under TLS our certificate's CN or DNS SAN (required).
    #[serde(deserialize_with = "non_blank")]
    pub extractor_id: String,
    pub cipher: Cipher,
    /// TLS: CA of the collector's certificate.
    #[serde(deserialize_with = "abs_path")]
    pub ca: PathBuf,
    /// TLS: our certificate and key.
    #[serde(deserialize_with = "abs_path")]
    pub cert: PathBuf,
    #[serde(deserialize_with = "abs_path")]
    pub key: PathBuf,
    /// Blowfish: the file holding the PSK in hex.
    #[serde(deserialize_with = "abs_path")]
    pub psk_file: PathBuf,
}

pub use redovault::config::Cipher;

/// `[link]`: link tunables.
#[derive(Debug, Clone, PartialEq, Eq, SmartDefault, Deserialize)]
#[serde(default)]
pub struct LinkSettings {
    /// How many collectors must acknowledge redo before it counts as protected.
    pub ack: AckPolicy,
    /// Bytes of Data in flight without an Ack.
    #[default(16 << 20)]
    #[serde(deserialize_with = "size")]
    pub window: u64,
    #[default(LinkConfig::default().heartbeat_interval)]
    #[serde(deserialize_with = "duration")]
    pub heartbeat_interval: Duration,
    #[default(LinkConfig::default().missed_heartbeats)]
    pub missed_heartbeats: u32,
    #[default(LinkConfig::default().handshake_timeout)]
    #[serde(deserialize_with = "duration")]
    pub handshake_timeout: Duration,
    /// First reconnect delay, doubling up to `reconnect_max`.
    #[default(ms(100))]
    #[serde(deserialize_with = "duration")]
    pub reconnect_min: Duration,
    #[default(secs(5))]
    #[serde(deserialize_with = "duration")]
    pub reconnect_max: Duration,
    /// `"zstd"`: Data compressed at `compress_level` where the collector accepts it.
    pub compress: Compress,
    #[default(Level::DEFAULT.get() as u64)]
    pub compress_level: u64,
}

impl LinkSettings {
    pub fn config(&self) -> LinkConfig {
        LinkConfig {
            heartbeat_interval: self.heartbeat_interval,
            missed_heartbeats: self.missed_heartbeats,
            handshake_timeout: self.handshake_timeout,
            ..LinkConfig::default()
        }
    }

    /// The level Data is offered at; `None` (`compress = "off"`): nothing is offered.
    pub fn compression(&self) -> Option<Level> {
        let level = i32::try_from(self.compress_level).ok().and_then(Level::new);
        level.filter(|_| self.compress == Compress::Zstd)
    }
}

impl Settings {
    /// Reads and checks a configuration file.
    pub fn load(path: &Path) -> Result<Settings, ConfigError> {
        redovault::config::load::<Settings>(path)
    }

    /// Parses and checks configuration text; on failure, every problem found.
    pub fn parse(text: &str) -> Result<Settings, Vec<String>> {
        redovault::config::parse::<Settings>(text)
    }

    /// The tailer's part (its required sections are there once checked).
    pub fn extract(&self) -> ExtractorConfig {
        ExtractorConfig {
            online: self.online.clone().unwrap_or_default(),
            archive: self.archive.clone(),
            tail: self.tail,
            state: self.state.clone().unwrap_or_default(),
        }
    }

    /// The log settings and the metrics endpoint (on at 127.0.0.1:9465 unless `""`).
    pub fn telemetry(&self) -> Telemetry {
        self.telemetry.clone().resolve(9465)
    }
}

impl Check for Settings {
    type Output = Settings;
    const FIRST_INDEX: usize = 1;

    fn check(mut self, p: &mut Problems) -> Option<Settings> {
        match &self.online {
            None => p.line("[online]: missing section".into()),
            Some(online) => check_online(online, p),
        }
        for d in &self.archive.dirs {
            p.absolute("archive.dirs", d);
        }
        self.tail.check_into(p);
        match &self.state {
            None => p.line("[state]: missing section".into()),
            Some(s) => p.missing_if("state.dir", s.dir.as_os_str().is_empty()),
        }
        let (list, mut names, mut addresses) =
            (self.collectors.list, BTreeSet::new(), BTreeSet::new());
        for (i, c) in self.collectors.items.iter_mut().enumerate() {
            let at = format!("collector[{}]", i + 1);
            c.check(if list { &at } else { "collector" }, p);
            if c.address.is_empty() {
                continue;
            }
            let (name, address) = (&c.name, &c.address);
            if !names.insert(name.clone()) {
                p.line(format!("{at}.name: {name:?} is used by another collector"));
            }
            if !addresses.insert(address.clone()) {
                p.line(format!("{at}.address: {address} is listed twice"));
            }
        }
        let l = &self.link;
        p.size_range("link.window", l.window, 64 << 10, 1 << 30);
        p.within("link.reconnect_min", l.reconnect_min, ms(1), secs(600));
        p.within("link.reconnect_max", l.reconnect_max, ms(1), secs(3600));
        if l.reconnect_max < l.reconnect_min {
            p.push("link.reconnect_max", "shorter than reconnect_min");
        }
        p.zstd_level("link.compress_level", false, l.compress_level);
        let (hb, hs) = (l.heartbeat_interval, l.handshake_timeout);
        link_timing("link", hb, l.missed_heartbeats, hs, p);
        Some(self)
    }
}

/// `[online]`: at least one group, its members absolute and each listed once.
fn check_online(online: &OnlineConfig, p: &mut Problems) {
    if online.groups.is_empty() && !p.about("online.group") {
        p.push("online.group", "at least one [[online.group]] is needed");
    }
    let mut seen = BTreeSet::new();
    for (i, g) in online.groups.iter().enumerate() {
        let at = format!("online.group[{}].members", i + 1);
        if g.members.is_empty() && !p.about(&at) {
            p.push(&at, "no member");
        }
        for m in &g.members {
            p.absolute(&at, m);
            if m.is_absolute() && !seen.insert(m) {
                p.push(&at, format!("{} is listed twice", m.display()));
            }
        }
    }
    for (i, _) in online.threads.iter().enumerate().filter(|(_, t)| **t == 0) {
        p.line(format!(
            "online.threads: item {i}: 0 is out of range 1..=65535"
        ));
    }
}

impl CollectorTarget {
    /// Checks the table at `at` and fills in the default name and server name.
    fn check(&mut self, at: &str, p: &mut Problems) {
        let key = |k: &str| format!("{at}.{k}");
        p.missing_if(&key("address"), self.address.is_empty());
        let host = match self.address.rsplit_once(':') {
            Some((h, port)) if !h.is_empty() && port.parse::<u16>().is_ok() => {
                Some(h.trim_start_matches('[').trim_end_matches(']'))
            }
            _ => None,
        };
        if host.is_none() && !self.address.is_empty() {
            let what = "is not host:port such as \"collector.example.net:7070\"";
            p.push(&key("address"), format!("{:?} {what}", self.address));
        }
        let name_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
        if self.name.is_empty() {
            let named = self.address.chars().take(64);
            self.name = named.map(|c| if name_char(c) { c } else { '_' }).collect();
        } else if self.name.len() > 64 || !self.name.chars().all(name_char) {
            let what = "use 1 to 64 letters, digits, '.', '_' or '-'";
            p.push(&key("name"), format!("{:?}: {what}", self.name));
        }
        if self.server_name.is_empty() {
            self.server_name = host.unwrap_or_default().to_string();
        }
        let id = &self.extractor_id;
        p.missing_if(&key("extractor_id"), id.is_empty());
        if id.len() > MAX_NAME_LEN || id.chars().any(char::is_control) {
            p.push(&key("extractor_id"), "too long or has control characters");
        }
        let blowfish = self.cipher == Cipher::Blowfish;
        let unused = match blowfish {
            true => "set, but cipher = \"blowfish\" does not use it",
            false => "set, but the cipher is TLS (set cipher = \"blowfish\" to use it)",
        };
        let files = [("ca", &self.ca), ("cert", &self.cert), ("key", &self.key)];
        for (k, v) in files.into_iter().chain([("psk_file", &self.psk_file)]) {
            match ((k == "psk_file") == blowfish, v.as_os_str().is_empty()) {
                (true, empty) => p.missing_if(&key(k), empty),
                (false, false) => p.push(&key(k), unused),
                (false, true) => {}
            }
        }
    }

    /// Loads what protects the link (certificates or PSK); errors name the file.
    pub fn load_security(&self) -> Result<ClientSecurity, String> {
        match self.cipher {
            Cipher::Tls => TlsClient::from_pem_files(&self.cert, &self.key, &self.ca)
                .map(|client| ClientSecurity::Tls {
                    client,
                    server_name: self.server_name.clone(),
                })
                .map_err(|e| format!("collector: {e}")),
            Cipher::Blowfish => Psk::from_file(&self.psk_file)
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
        assert_eq!(s.extract().online.groups.len(), 2);
        assert_eq!(s.extract().tail, TailConfig::default());
        assert!(s.collectors.items.is_empty());
        assert_eq!(s.link, LinkSettings::default());
        assert_eq!(
            s.telemetry().metrics_listen,
            Some("127.0.0.1:9465".parse().unwrap())
        );
    }

    #[test]
    fn compression_off_by_default_zstd_with_a_level() {
        assert_eq!(Settings::parse(BASE).unwrap().link.compression(), None);
        let s = Settings::parse(&format!("{BASE}[link]\ncompress = \"zstd\"\n")).unwrap();
        assert_eq!(s.link.compression(), Some(Level::DEFAULT));
        let s = Settings::parse(&format!(
            "{BASE}[link]\ncompress = \"zstd\"\ncompress_level = 19\n"
        ))
        .unwrap();
        assert_eq!(s.link.compression(), Level::new(19));
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
        let c = Settings::parse(&text).unwrap().collectors.items.remove(0);
        assert_eq!(c.server_name, "collector.example.net");
        assert_eq!(c.cipher, Cipher::Tls);
        let text = format!(
            "{BASE}[collector]\naddress = \"[::1]:7070\"\nextractor_id = \"x1\"\n\
             cipher = \"blowfish\"\npsk_file = \"/c/psk\"\n"
        );
        let c = Settings::parse(&text).unwrap().collectors.items.remove(0);
        assert_eq!(c.server_name, "::1");
        assert_eq!((c.cipher, c.psk_file), (Cipher::Blowfish, "/c/psk".into()));
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
        let names: Vec<&str> = s.collectors.items.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["dr-a", "b.example.net_7070", "c"]);
        assert_eq!(s.collectors.items[2].server_name, "::1");
        assert_eq!(s.link.ack, AckPolicy::All);
        // The default policy is majority; one [collector] table is named after its address.
        let s = Settings::parse(&format!(
            "{BASE}{}",
            one("", "h:1").replacen("[[collector]]", "[collector]", 1)
        ))
        .unwrap();
        assert_eq!(s.link.ack, AckPolicy::Majority);
        assert_eq!(s.collectors.items[0].name, "h_1");
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
