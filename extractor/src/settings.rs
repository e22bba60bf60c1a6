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

use redovault::compress::{Level, MAX_LEVEL};
use redovault::crypto::legacy::Psk;
use redovault::crypto::tls::TlsClient;
use redovault::tomlcheck::{self, Problems, Section};
use redovault::wire::frame::MAX_FRAME_LEN;
use redovault::wire::transport::{ClientSecurity, LinkConfig};

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
        /// Its key.
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
            reconnect_min: Duration::from_millis(100),
            reconnect_max: Duration::from_secs(5),
            compress: None,
        }
    }
}

/// `[telemetry]` (read by [`tomlcheck::telemetry_section`]).
pub type TelemetrySettings = tomlcheck::Telemetry;

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
    /// Telemetry.
    pub telemetry: TelemetrySettings,
}

pub use redovault::tomlcheck::ConfigError as SettingsError;

const SECTIONS: [&str; 7] = [
    "online",
    "archive",
    "tail",
    "state",
    "collector",
    "link",
    "telemetry",
];

impl Settings {
    /// Reads and checks a configuration file.
    pub fn load(path: &Path) -> Result<Settings, SettingsError> {
        tomlcheck::load(path, Settings::parse)
    }

    /// Parses and checks configuration text; on failure, every problem found.
    pub fn parse(text: &str) -> Result<Settings, Vec<String>> {
        let root = tomlcheck::parse_root(text)?;
        let p = Problems::new();
        tomlcheck::unknown_sections(&root, &SECTIONS, &p);

        let mut s = Section::top(&root, "online", true, &p);
        let mut groups = Vec::new();
        let mut seen = BTreeSet::new();
        let group_sections = s.tables("group");
        if s.present() && group_sections.is_empty() {
            s.problem("group", "at least one [[online.group]] is needed");
        }
        for mut g in group_sections {
            let had = g.has("members");
            let raw = g.strings("members");
            if raw.is_empty() {
                g.problem("members", if had { "no member" } else { "missing" });
            }
            let members: Vec<PathBuf> = raw
                .into_iter()
                .filter_map(|m| {
                    let path = PathBuf::from(&m);
                    if path.is_absolute() {
                        Some(path)
                    } else {
                        g.problem("members", format!("{m} is not an absolute path"));
                        None
                    }
                })
                .collect();
            for m in &members {
                if !seen.insert(m.clone()) {
                    g.problem("members", format!("{} is listed twice", m.display()));
                }
            }
            g.finish();
            groups.push(GroupConfig { members });
        }
        let threads: Vec<u16> = s
            .ints("threads", 1, u64::from(u16::MAX))
            .into_iter()
            .map(|t| t as u16)
            .collect();
        s.finish();

        let mut s = Section::top(&root, "archive", false, &p);
        let archive = ArchiveConfig {
            dirs: s.paths("dirs"),
        };
        s.finish();

        let mut s = Section::top(&root, "tail", false, &p);
        let d = TailConfig::default();
        let tail = TailConfig {
            poll: s.duration(
                "poll",
                d.poll,
                Duration::from_micros(100),
                Duration::from_secs(60),
            ),
            file_events: s.bool("file_events", d.file_events),
            max_chunk: s.size("max_chunk", d.max_chunk, 8 << 10, 64 << 20),
            torn_retries: s.int("torn_retries", u64::from(d.torn_retries), 0, 10_000) as u32,
            torn_delay: s.duration(
                "torn_delay",
                d.torn_delay,
                Duration::ZERO,
                Duration::from_secs(1),
            ),
            archive_wait: s.duration(
                "archive_wait",
                d.archive_wait,
                Duration::ZERO,
                Duration::from_secs(30 * 86_400),
            ),
        };
        if let Err(e) = tail.check() {
            p.push(format!("tail: {e}"));
        }
        s.finish();

        let mut s = Section::top(&root, "state", true, &p);
        let state_dir = s.required_path("dir");
        s.finish();

        let sections = match root.get("collector") {
            Some(toml::Value::Array(_)) => tomlcheck::top_tables(&root, "collector", &p),
            _ => vec![Section::top(&root, "collector", false, &p)],
        };
        let mut collectors = Vec::new();
        for s in sections {
            if let Some(c) = collector_section(s) {
                collectors.push(c);
            }
        }
        check_collectors_differ(&collectors, &p);

        let mut s = Section::top(&root, "link", false, &p);
        let dl = LinkSettings::default();
        let ack = s.choice("ack", dl.ack.as_str(), &["all", "majority", "any"]);
        let ack = AckPolicy::parse(&ack).unwrap_or_default();
        let window = s.size("window", u64::from(dl.window), 64 << 10, 1 << 30) as u32;
        let link = LinkConfig {
            max_frame_len: MAX_FRAME_LEN,
            ..tomlcheck::link_timing(&mut s, &dl.link)
        };
        let reconnect_min = s.duration(
            "reconnect_min",
            dl.reconnect_min,
            Duration::from_millis(1),
            Duration::from_secs(600),
        );
        let reconnect_max = s.duration(
            "reconnect_max",
            dl.reconnect_max,
            Duration::from_millis(1),
            Duration::from_secs(3600),
        );
        if reconnect_max < reconnect_min {
            s.problem("reconnect_max", "shorter than reconnect_min");
        }
        let compress = s.choice("compress", "off", &["off", "zstd"]);
        let level = s.int(
            "compress_level",
            Level::DEFAULT.get() as u64,
            1,
            MAX_LEVEL as u64,
        );
        let compress = (compress == "zstd")
            .then(|| Level::new(level as i32))
            .flatten();
        s.finish();

        let telemetry = tomlcheck::telemetry_section(&root, &p, 9465);

        if !p.is_empty() {
            return Err(p.into_vec());
        }
        let Some(state_dir) = state_dir else {
            return Err(vec!["state.dir: missing".into()]);
        };
        Ok(Settings {
            extract: ExtractorConfig {
                online: OnlineConfig { groups, threads },
                archive,
                tail,
                state: StateConfig { dir: state_dir },
            },
            collectors,
            link: LinkSettings {
                ack,
                window,
                link,
                reconnect_min,
                reconnect_max,
                compress,
            },
            telemetry,
        })
    }
}

/// One `[collector]` table (or `[[collector]]` item); `None` when it is absent or has a
/// problem (reported).
fn collector_section(mut s: Section<'_>) -> Option<CollectorTarget> {
    if !s.present() {
        s.finish();
        return None;
    }
    let address = s.required_string("address");
    let host = address.as_deref().and_then(|a| match a.rsplit_once(':') {
        Some((h, port)) if !h.is_empty() && port.parse::<u16>().is_ok() => {
            Some(h.trim_start_matches('[').trim_end_matches(']').to_string())
        }
        _ => None,
    });
    if address.is_some() && host.is_none() {
        s.problem(
            "address",
            format!(
                "{:?} is not host:port such as \"collector.example.net:7070\"",
                address.as_deref().unwrap_or("")
            ),
        );
    }
    let name = match s.opt_string("name") {
        Some(n) if !valid_name(&n) => {
            s.problem(
                "name",
                format!("{n:?}: use 1 to 64 letters, digits, '.', '_' or '-'"),
            );
            None
        }
        Some(n) => Some(n),
        None => address.as_deref().map(name_of_address),
    };
    let server_name = s.opt_string("server_name").or(host);
    let extractor_id = s.required_string("extractor_id");
    if let Some(id) = &extractor_id
        && (id.len() > redovault::wire::message::MAX_NAME_LEN || id.chars().any(char::is_control))
    {
        s.problem("extractor_id", "too long or has control characters");
    }
    let cipher = match s.choice("cipher", "tls", &["tls", "blowfish"]).as_str() {
        "blowfish" => {
            for k in ["ca", "cert", "key"] {
                if s.has(k) {
                    s.problem(k, "set, but cipher = \"blowfish\" does not use it");
                }
            }
            s.required_path("psk_file")
                .map(|psk_file| CipherConfig::Blowfish { psk_file })
        }
        _ => {
            if s.has("psk_file") {
                s.problem(
                    "psk_file",
                    "set, but the cipher is TLS (set cipher = \"blowfish\" to use it)",
                );
            }
            let ca = s.required_path("ca");
            let cert = s.required_path("cert");
            let key = s.required_path("key");
            match (ca, cert, key) {
                (Some(ca), Some(cert), Some(key)) => Some(CipherConfig::Tls { ca, cert, key }),
                _ => None,
            }
        }
    };
    s.finish();
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
fn check_collectors_differ(collectors: &[CollectorTarget], p: &Problems) {
    let mut names = BTreeSet::new();
    let mut addresses = BTreeSet::new();
    for (i, c) in collectors.iter().enumerate() {
        if !names.insert(c.name.as_str()) {
            p.push(format!(
                "collector[{}].name: {:?} is used by another collector",
                i + 1,
                c.name
            ));
        }
        if !addresses.insert(c.address.as_str()) {
            p.push(format!(
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
