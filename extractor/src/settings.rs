//! The extractor daemon's whole configuration file: the tailer's sections (`[online]`,
//! `[archive]`, `[tail]`, `[state]`, see [`crate::config`]) plus where and how to ship
//! (`[collector]`, `[link]`) and telemetry (`[telemetry]`). Every problem is reported at once
//! (`redovault-extractor check-config`) and unknown keys are refused.
//!
//! ```toml
//! [collector]
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
//! window = "16M"                           # unacknowledged redo in flight (backpressure)
//! heartbeat_interval = "1s"
//! missed_heartbeats = 5
//! handshake_timeout = "10s"
//! reconnect_min = "100ms"                  # first retry after a failure, doubling ...
//! reconnect_max = "5s"                     # ... up to this
//!
//! [telemetry]
//! log_format = "text"                      # or "json"
//! log_level = "info"
//! metrics_listen = "127.0.0.1:9465"        # "" turns the endpoint off
//! ```
//!
//! `deploy/config/extractor.example.toml` documents every key; a test checks it.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use redovault::crypto::legacy::Psk;
use redovault::crypto::tls::TlsClient;
use redovault::tomlcheck::{self, Problems, Section};
use redovault::wire::frame::MAX_FRAME_LEN;
use redovault::wire::transport::{ClientSecurity, LinkConfig};

use crate::config::{
    ArchiveConfig, ExtractorConfig, GroupConfig, OnlineConfig, StateConfig, TailConfig,
};

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

/// `[collector]`: where to ship.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CollectorTarget {
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
    /// Bytes of Data in flight without an Ack.
    pub window: u32,
    /// Heartbeats, handshake timeout, frame size.
    pub link: LinkConfig,
    /// First reconnect delay.
    pub reconnect_min: Duration,
    /// Longest reconnect delay.
    pub reconnect_max: Duration,
}

impl Default for LinkSettings {
    fn default() -> Self {
        LinkSettings {
            window: 16 << 20,
            link: LinkConfig::default(),
            reconnect_min: Duration::from_millis(100),
            reconnect_max: Duration::from_secs(5),
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
    /// Where to ship; `None` when the file has no `[collector]` (enough for `check` and
    /// the dry-run `tail`, not to run).
    pub collector: Option<CollectorTarget>,
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

        let mut s = Section::top(&root, "collector", false, &p);
        let collector = if s.present() {
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
            let server_name = s.opt_string("server_name").or(host);
            let extractor_id = s.required_string("extractor_id");
            if let Some(id) = &extractor_id
                && (id.len() > redovault::wire::message::MAX_NAME_LEN
                    || id.chars().any(char::is_control))
            {
                s.problem("extractor_id", "too long or has control characters");
            }
            let cipher = match s.choice("cipher", "tls", &["tls", "blowfish"]).as_str() {
                "blowfish" => {
                    for k in ["ca", "cert", "key"] {
                        if root.get("collector").and_then(|c| c.get(k)).is_some() {
                            s.problem(k, "set, but cipher = \"blowfish\" does not use it");
                        }
                    }
                    s.has("ca");
                    s.has("cert");
                    s.has("key");
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
                        (Some(ca), Some(cert), Some(key)) => {
                            Some(CipherConfig::Tls { ca, cert, key })
                        }
                        _ => None,
                    }
                }
            };
            match (address, server_name, extractor_id, cipher) {
                (Some(address), Some(server_name), Some(extractor_id), Some(cipher)) => {
                    Some(CollectorTarget {
                        address,
                        server_name,
                        extractor_id,
                        cipher,
                    })
                }
                _ => None,
            }
        } else {
            None
        };
        s.finish();

        let mut s = Section::top(&root, "link", false, &p);
        let dl = LinkSettings::default();
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
            collector,
            link: LinkSettings {
                window,
                link,
                reconnect_min,
                reconnect_max,
            },
            telemetry,
        })
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
        assert!(s.collector.is_none());
        assert_eq!(s.link, LinkSettings::default());
        assert_eq!(
            s.telemetry.metrics_listen,
            Some("127.0.0.1:9465".parse().unwrap())
        );
    }

    #[test]
    fn collector_section_tls_and_blowfish() {
        let text = format!(
            "{BASE}[collector]\naddress = \"collector.example.net:7070\"\nextractor_id = \"x1\"\n\
             ca = \"/c/ca.pem\"\ncert = \"/c/x.pem\"\nkey = \"/c/x.key\"\n"
        );
        let c = Settings::parse(&text).unwrap().collector.unwrap();
        assert_eq!(c.server_name, "collector.example.net");
        assert!(matches!(c.cipher, CipherConfig::Tls { .. }));
        let text = format!(
            "{BASE}[collector]\naddress = \"[::1]:7070\"\nextractor_id = \"x1\"\n\
             cipher = \"blowfish\"\npsk_file = \"/c/psk\"\n"
        );
        let c = Settings::parse(&text).unwrap().collector.unwrap();
        assert_eq!(c.server_name, "::1");
        assert_eq!(
            c.cipher,
            CipherConfig::Blowfish {
                psk_file: "/c/psk".into()
            }
        );
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
