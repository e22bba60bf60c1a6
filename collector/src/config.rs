//! The collector's configuration file (TOML): documented defaults, unknown keys refused,
//! every problem reported at once (`redovault-collector check-config`).
//!
//! ```toml
//! [listen]
//! address = "0.0.0.0:7070"          # required: where extractors connect
//! max_connections = 256             # connections served at once (more wait in the backlog)
//! cipher = "tls"                    # "tls" (default, production) or "blowfish" (LEGACY)
//!
//! [tls]                             # required with cipher = "tls"
//! cert = "/etc/redovault/collector.pem"
//! key = "/etc/redovault/collector.key"
//! client_ca = "/etc/redovault/link-ca.pem"
//!
//! [legacy]                          # only with cipher = "blowfish"
//! psk_file = "/etc/redovault/link.psk"
//!
//! [link]                            # defaults shown
//! heartbeat_interval = "1s"
//! missed_heartbeats = 5
//! handshake_timeout = "10s"
//! max_frame = "8M"
//! accept_compression = true        # take an extractor's offer of zstd-compressed Data
//!
//! [store]
//! dir = "/var/lib/redovault/collector"         # required
//! key_file = "/etc/redovault/collector.keys"   # required (chmod 600)
//! segment_size = "64M"
//! chunk_size = "1M"
//! queue = 1024
//! max_batch = 1024
//! max_batch_bytes = "16M"
//! compress = "off"                  # "zstd": chunks in segments and WORM pieces compressed
//! compress_level = 3                # zstd level 1..=19 when compress = "zstd"
//!
//! [[extractor]]                     # optional allow-list; none: any authenticated extractor
//! id = "redovault-extractor"        # Hello's extractor id = certificate CN or DNS SAN
//! db_ids = [1497016494]             # databases it may ship (absent: any)
//!
//! [worm]                          # optional: every stream also sealed into WORM
//! kind = "s3"                       # the watcher's [store] keys: endpoint, bucket, prefix,
//! endpoint = "https://s3.dr.example:443"   # region, ca_file, retention, ...
//! bucket = "redovault"
//! prefix = "bank1"                  # pieces under <prefix>/streams/<stream>/
//! retention = "bucket-default"
//! recovery_public_key = "/etc/redovault/recovery.pub"   # required; its private half stays offline
//! seal_interval = "1s"              # longest time from durable here to its piece being cut
//! max_piece = "16M"
//! manifest_entries = 60             # a chain segment is sealed after this many pieces,
//! manifest_interval = "60s"         # or this long, and at every log end
//!
//! [retention]                     # optional; absent: nothing is ever removed (the disk grows)
//! keep = "7d"                       # required: how long a sequence stays after (a) and (b)
//! interval = "5m"                   # how often retention looks (and removes)
//!                                   # the watcher's sealed manifest is read from the [worm]
//!                                   # store (its bucket and prefix, GET/LIST of
//!                                   # <prefix>/manifest/ only), or from the watcher [store]
//!                                   # keys given here when there is no [worm]
//!
//! [telemetry]
//! log_format = "text"               # or "json"
//! log_level = "info"
//! metrics_listen = "127.0.0.1:9464" # "" turns the endpoint off
//! ```
//!
//! `deploy/config/collector.example.toml` documents every key; a test checks it.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use redovault::compress::Level;
use redovault::config::load::deserialize_both;
use redovault::config::sections::{abs_path, link_timing};
use redovault::config::units::{duration, size, size_usize};
use redovault::config::{Check, Compress, DaemonTelemetry, Problems, StoreConfig, Telemetry, secs};
use redovault::crypto::keys::KeyRing;
use redovault::crypto::legacy::Psk;
use redovault::crypto::recovery::RecoveryPublicKey;
use redovault::crypto::tls::TlsServer;
use redovault::wire::frame::MAX_FRAME_LEN;
use redovault::wire::transport::{LinkConfig, ServerSecurity};
use serde::Deserialize;
use serde::de::{self, Deserializer};
use smart_default::SmartDefault;

pub use crate::allow::{ExtractorAllow, allowed};
use crate::server::ServerOptions;
use crate::store::StoreOptions;
use crate::worm::WormConfig;
use crate::writer::WriterConfig;
pub use redovault::config::ConfigError;

/// The whole file, as serde reads it and the collector uses it (checked by [`Check`]).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct CollectorConfig {
    pub listen: Listen,
    pub tls: Option<TlsFiles>,
    pub legacy: Option<Legacy>,
    pub link: Link,
    pub store: StoreSection,
    /// `[[extractor]]`: the allow-list; empty: any authenticated extractor.
    pub extractor: Vec<ExtractorAllow>,
    telemetry: DaemonTelemetry,
    /// `[worm]` as written: the watcher's store keys beside its own ([`WormConfig::parse`]).
    #[serde(rename = "worm")]
    worm_table: Option<toml::Table>,
    /// `[worm]`: the streams' second home in WORM (None: the collector's disk only).
    #[serde(skip)]
    pub worm: Option<WormConfig>,
    #[serde(rename = "retention")]
    retention_table: Option<toml::Table>,
    /// `[retention]`: when segments are removed (None: never).
    #[serde(skip)]
    pub retention: Option<RetentionConfig>,
}

#[derive(Debug, Clone, SmartDefault, Deserialize)]
#[serde(default)]
pub struct Listen {
    /// Required (checked): where extractors connect.
    #[serde(deserialize_with = "socket_addr")]
    pub address: Option<SocketAddr>,
    /// Connections served at once (more wait in the backlog).
    #[default = 256]
    pub max_connections: usize,
    pub cipher: Cipher,
    /// False when the file has no `[listen]` (serde sets it for a table it reads).
    #[serde(skip, default = "yes")]
    present: bool,
}

pub use redovault::config::Cipher;

/// `[tls]`: the collector's certificate and key, and the CA of the extractors' (PEM).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct TlsFiles {
    #[serde(deserialize_with = "abs_path")]
    pub cert: PathBuf,
    #[serde(deserialize_with = "abs_path")]
    pub key: PathBuf,
    #[serde(deserialize_with = "abs_path")]
    pub client_ca: PathBuf,
}

/// `[legacy]`: the pre-shared key of `cipher = "blowfish"` (hex).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct Legacy {
    #[serde(deserialize_with = "abs_path")]
    pub psk_file: PathBuf,
}

/// `[link]` (the extractor's has the same timing keys).
#[derive(Debug, Clone, SmartDefault, Deserialize)]
#[serde(default)]
pub struct Link {
    #[default(LinkConfig::default().heartbeat_interval)]
    #[serde(deserialize_with = "duration")]
    pub heartbeat_interval: Duration,
    #[default(LinkConfig::default().missed_heartbeats)]
    pub missed_heartbeats: u32,
    #[default(LinkConfig::default().handshake_timeout)]
    #[serde(deserialize_with = "duration")]
    pub handshake_timeout: Duration,
    #[default(MAX_FRAME_LEN)]
    #[serde(deserialize_with = "size_usize")]
    pub max_frame: usize,
    /// Take an extractor's offer of zstd-compressed Data.
    #[default = true]
    pub accept_compression: bool,
}

impl Link {
    pub fn config(&self) -> LinkConfig {
        LinkConfig {
            heartbeat_interval: self.heartbeat_interval,
            missed_heartbeats: self.missed_heartbeats,
            handshake_timeout: self.handshake_timeout,
            max_frame_len: self.max_frame,
            ..LinkConfig::default()
        }
    }
}

/// `[store]`: where the streams are kept, the store's and the writer's tuning.
#[derive(Debug, Clone, SmartDefault, Deserialize)]
#[serde(default)]
pub struct StoreSection {
    #[serde(deserialize_with = "abs_path")]
    pub dir: PathBuf,
    /// The at-rest key ring (chmod 600).
    #[serde(deserialize_with = "abs_path")]
    pub key_file: PathBuf,
    #[default(StoreOptions::default().segment_size)]
    #[serde(deserialize_with = "size")]
    pub segment_size: u64,
    #[default(StoreOptions::default().chunk_size)]
    #[serde(deserialize_with = "size_usize")]
    pub chunk_size: usize,
    /// Chunks in segments and WORM pieces compressed at `compress_level`.
    pub compress: Compress,
    #[default(Level::DEFAULT.get() as u64)]
    pub compress_level: u64,
    #[default(WriterConfig::default().queue)]
    pub queue: usize,
    #[default(WriterConfig::default().max_batch)]
    pub max_batch: usize,
    #[default(WriterConfig::default().max_batch_bytes)]
    #[serde(deserialize_with = "size_usize")]
    pub max_batch_bytes: usize,
    /// False when the file has no `[store]` (serde sets it for a table it reads).
    #[serde(skip, default = "yes")]
    present: bool,
}

impl StoreSection {
    pub fn options(&self) -> StoreOptions {
        let level = i32::try_from(self.compress_level).ok().and_then(Level::new);
        StoreOptions {
            segment_size: self.segment_size,
            chunk_size: self.chunk_size,
            compress: level.filter(|_| self.compress == Compress::Zstd),
        }
    }

    pub fn writer(&self) -> WriterConfig {
        WriterConfig {
            queue: self.queue,
            max_batch: self.max_batch,
            max_batch_bytes: self.max_batch_bytes,
        }
    }
}

/// The `[retention]` section, besides the watcher's store keys it may carry.
#[derive(Debug, Clone, SmartDefault, Deserialize)]
#[serde(default)]
pub struct RetentionConfig {
    /// How long a sequence's segments stay after its archived log is verified in WORM
    /// (and, with `[worm]`, its pieces are confirmed there); never until set (required).
    #[default(Duration::MAX)]
    #[serde(deserialize_with = "duration")]
    pub keep: Duration,
    /// How often a retention pass runs.
    #[default(secs(300))]
    #[serde(deserialize_with = "duration")]
    pub interval: Duration,
    /// Where the watcher's sealed manifest is read: its own store keys, or `None` for the
    /// `[worm]` store.
    #[serde(skip)]
    pub store: Option<StoreConfig>,
}

impl RetentionConfig {
    /// Reads a `[retention]` table (`worm`: there is a `[worm]`).
    pub fn parse(table: &toml::Table, worm: bool, p: &mut Problems) -> Option<RetentionConfig> {
        let own_store = ["kind", "endpoint", "bucket", "dir"]
            .iter()
            .any(|k| table.contains_key(*k));
        let (store, mut r) = deserialize_both::<StoreConfig, Self>("retention", table.clone(), p)?;
        p.at_least("retention.interval", r.interval, secs(1));
        if r.keep == Duration::MAX && !p.about("retention.keep") {
            let what = "required (how long a sequence stays after its archived log is verified \
                        in WORM, e.g. \"7d\")";
            p.push("retention.keep", what);
        }
        if own_store {
            store.check_at("retention", p);
            r.store = Some(store);
        } else if !worm {
            let what = "the watcher's sealed manifest must be read from WORM: configure [worm], \
                        or give the watcher's store keys (endpoint, bucket, prefix) here";
            p.push("retention", what);
        }
        Some(r)
    }
}

impl Check for CollectorConfig {
    type Output = CollectorConfig;
    const FIRST_INDEX: usize = 1;

    fn check(mut self, p: &mut Problems) -> Option<CollectorConfig> {
        let l = &self.listen;
        match l.present {
            true => p.missing_if("listen.address", l.address.is_none()),
            false => p.line("[listen]: missing section".into()),
        }
        p.range("listen.max_connections", l.max_connections, 1, 65_536);
        self.check_cipher(p);
        let k = &self.link;
        let max = MAX_FRAME_LEN as u64;
        p.size_range("link.max_frame", k.max_frame, 64 << 10, max);
        let (hb, hs) = (k.heartbeat_interval, k.handshake_timeout);
        link_timing("link", hb, k.missed_heartbeats, hs, p);
        let s = &self.store;
        if !s.present {
            p.line("[store]: missing section".into());
        }
        p.missing_if("store.dir", s.dir.as_os_str().is_empty());
        p.missing_if("store.key_file", s.key_file.as_os_str().is_empty());
        p.size_range("store.segment_size", s.segment_size, 64 << 10, 1 << 40);
        let max_chunk = crate::segment::MAX_CHUNK_DATA as u64;
        p.size_range("store.chunk_size", s.chunk_size, 4 << 10, max_chunk);
        p.zstd_level("store.compress_level", false, s.compress_level);
        p.range("store.queue", s.queue, 1, 1 << 20);
        p.range("store.max_batch", s.max_batch, 1, 1 << 20);
        p.size_range("store.max_batch_bytes", s.max_batch_bytes, 4 << 10, 1 << 32);
        let mut ids = BTreeSet::new();
        for (i, e) in self.extractor.iter().enumerate() {
            let at = format!("extractor[{}].id", i + 1);
            p.missing_if(&at, e.id.is_empty());
            if !e.id.is_empty() && !ids.insert(&e.id) {
                p.push(&at, format!("{:?} is listed twice", e.id));
            }
        }
        if let Some(t) = &self.worm_table {
            self.worm = WormConfig::parse(t, p);
        }
        if let Some(t) = &self.retention_table {
            self.retention = RetentionConfig::parse(t, self.worm_table.is_some(), p);
        }
        Some(self)
    }
}

impl CollectorConfig {
    /// Reads and checks a configuration file.
    pub fn load(path: &Path) -> Result<CollectorConfig, ConfigError> {
        redovault::config::load::<CollectorConfig>(path)
    }

    /// Parses and checks configuration text; on failure, every problem found.
    pub fn parse(text: &str) -> Result<CollectorConfig, Vec<String>> {
        redovault::config::parse::<CollectorConfig>(text)
    }

    /// `[tls]` or, with `cipher = "blowfish"`, `[legacy]`: never both.
    fn check_cipher(&self, p: &mut Problems) {
        let blowfish = self.listen.cipher == Cipher::Blowfish;
        match (&self.tls, blowfish) {
            (Some(_), true) => {
                p.line("[tls]: set, but cipher = \"blowfish\" does not use it".into())
            }
            (None, false) => {
                p.line("[tls]: missing section (TLS needs cert, key and client_ca)".into())
            }
            (Some(t), false) => {
                p.missing_if("tls.cert", t.cert.as_os_str().is_empty());
                p.missing_if("tls.key", t.key.as_os_str().is_empty());
                p.missing_if("tls.client_ca", t.client_ca.as_os_str().is_empty());
            }
            (None, true) => {}
        }
        let legacy = "[legacy]: set, but the cipher is TLS (set cipher = \"blowfish\" to use it)";
        match (&self.legacy, blowfish) {
            (Some(_), false) => p.line(legacy.into()),
            (None, true) => {
                p.line("[legacy]: missing section (cipher = \"blowfish\" needs psk_file)".into())
            }
            (Some(l), true) => p.missing_if("legacy.psk_file", l.psk_file.as_os_str().is_empty()),
            (None, false) => {}
        }
    }

    /// The log settings and the metrics endpoint (on at 127.0.0.1:9464 unless `""`).
    pub fn telemetry(&self) -> Telemetry {
        self.telemetry.clone().resolve(9464)
    }

    /// Loads what protects the link: the TLS certificate, key and client CA, or the legacy
    /// PSK. Errors name the file.
    pub fn load_security(&self) -> Result<ServerSecurity, String> {
        match (self.listen.cipher, &self.tls, &self.legacy) {
            (Cipher::Tls, Some(t), _) => TlsServer::from_pem_files(&t.cert, &t.key, &t.client_ca)
                .map(ServerSecurity::Tls)
                .map_err(|e| format!("tls: {e}")),
            (Cipher::Blowfish, _, Some(l)) => Psk::from_file(&l.psk_file)
                .map(ServerSecurity::LegacyBlowfish)
                .map_err(|e| format!("legacy: {e}")),
            _ => Err("listen.cipher: its section ([tls] or [legacy]) is missing".into()),
        }
    }

    /// Checks every file the collector needs (certificates or PSK, key ring, store
    /// directory) and returns one line per problem.
    pub fn check_resources(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Err(e) = self.load_security() {
            out.push(e);
        }
        if let Err(e) = KeyRing::load(&self.store.key_file) {
            out.push(format!("store.key_file: {e}"));
        }
        let dir = &self.store.dir;
        if dir.exists() {
            if !dir.is_dir() {
                out.push(format!("store.dir: {} is not a directory", dir.display()));
            }
        } else if !dir.parent().is_some_and(Path::is_dir) {
            out.push(format!(
                "store.dir: neither {} nor its parent directory exists",
                dir.display()
            ));
        }
        if let Some(w) = &self.worm
            && let Err(e) = RecoveryPublicKey::load(&w.recovery_public_key)
        {
            out.push(format!("worm.recovery_public_key: {e}"));
        }
        out
    }

    /// The listening address (checked: always set in a parsed configuration).
    pub fn address(&self) -> SocketAddr {
        self.listen
            .address
            .expect("listen.address is required by the check")
    }

    /// The server's options, with the loaded security.
    pub fn server_options(&self, security: ServerSecurity) -> ServerOptions {
        ServerOptions {
            listen: self.address(),
            max_connections: self.listen.max_connections,
            security,
            link: self.link.config(),
            extractors: self.extractor.clone(),
            writer: self.store.writer(),
            metrics_listen: self.telemetry().metrics_listen,
            accept_compression: self.link.accept_compression,
        }
    }
}

fn yes() -> bool {
    true
}

fn socket_addr<'de, D: Deserializer<'de>>(d: D) -> Result<Option<SocketAddr>, D::Error> {
    let a = String::deserialize(d)?;
    let what = || format!("{a:?} is not an address and port such as \"0.0.0.0:7070\"");
    a.parse().map(Some).map_err(|_| de::Error::custom(what()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use redovault::telemetry::LogFormat;

    const MINIMAL: &str = r#"
[listen]
address = "127.0.0.1:7070"
[tls]
cert = "/c/server.pem"
key = "/c/server.key"
client_ca = "/c/ca.pem"
[store]
dir = "/var/lib/redovault/collector"
key_file = "/etc/redovault/keys"
"#;

    #[test]
    fn minimal_config_gets_the_documented_defaults() {
        let c = CollectorConfig::parse(MINIMAL).unwrap();
        assert_eq!(c.listen.max_connections, 256);
        assert_eq!(c.listen.cipher, Cipher::Tls);
        assert_eq!(c.link.config(), LinkConfig::default());
        assert_eq!(c.store.options(), StoreOptions::default());
        assert_eq!(c.store.writer(), WriterConfig::default());
        let t = c.telemetry();
        assert_eq!(t.metrics_listen, Some("127.0.0.1:9464".parse().unwrap()));
        assert_eq!(t.log_format, LogFormat::Text);
        assert!(allowed(&c.extractor, "anyone", 1));
    }

    #[test]
    fn compression_accepted_on_the_link_and_off_in_the_store_by_default() {
        let c = CollectorConfig::parse(MINIMAL).unwrap();
        assert!(c.link.accept_compression);
        assert_eq!(c.store.options().compress, None);
        let text = MINIMAL.replace(
            "[store]\n",
            "[link]\naccept_compression = false\n[store]\ncompress = \"zstd\"\ncompress_level = 1\n",
        );
        let c = CollectorConfig::parse(&text).unwrap();
        assert!(!c.link.accept_compression);
        assert_eq!(c.store.options().compress, Level::new(1));
        let text = MINIMAL.replace(
            "[store]\n",
            "[store]\ncompress = \"yes\"\ncompress_level = 0\n",
        );
        let p = CollectorConfig::parse(&text).unwrap_err();
        assert_eq!(p.len(), 2, "{p:?}");
    }

    #[test]
    fn every_problem_is_listed_at_once() {
        let text = r#"
[listen]
address = "nowhere"
cipher = "rot13"
max_connections = 0
[tls]
cert = "relative.pem"
[link]
heartbeat_interval = "1 fortnight"
[store]
key_file = "/k"
segment_size = "12"
colour = "blue"
[[extractor]]
db_ids = ["x"]
[telemetry]
metrics_listen = "here"
[extra]
"#;
        let p = CollectorConfig::parse(text).unwrap_err();
        let expect = [
            "extra: unknown section",
            "listen.address: \"nowhere\" is not an address",
            "listen.max_connections: 0 is out of range",
            "listen.cipher: \"rot13\" is not one of tls, blowfish",
            "tls.cert: relative.pem is not an absolute path",
            "tls.key: missing",
            "tls.client_ca: missing",
            "link.heartbeat_interval: \"1 fortnight\" is not a duration",
            "store.dir: missing",
            "store.segment_size: out of range",
            "store.colour: unknown key",
            "extractor[1].id: missing",
            "extractor[1].db_ids: item 0: expected an integer",
            "telemetry.metrics_listen: \"here\" is not an address",
        ];
        for e in expect {
            assert!(p.iter().any(|x| x.starts_with(e)), "{e:?} not in {p:#?}");
        }
        assert_eq!(p.len(), expect.len(), "{p:#?}");
    }

    #[test]
    fn worm_section_defaults_and_every_problem_at_once() {
        assert!(CollectorConfig::parse(MINIMAL).unwrap().worm.is_none());
        let ok = format!(
            "{MINIMAL}\n[worm]\nendpoint = \"https://s3.example:443\"\nbucket = \"b\"\n\
             prefix = \"p\"\nrecovery_public_key = \"/k/recovery.pub\"\n"
        );
        let w = CollectorConfig::parse(&ok).unwrap().worm.unwrap();
        assert_eq!(w.seal_interval, std::time::Duration::from_secs(1));
        assert_eq!(w.max_piece, 16 << 20);
        assert_eq!(w.manifest_entries, 60);
        assert_eq!(w.store.prefix, "p");
        let bad = format!(
            "{MINIMAL}\n[worm]\nendpoint = \"http://plain\"\nseal_interval = \"soon\"\n\
             max_piece = \"65M\"\ncolour = 1\n"
        );
        let p = CollectorConfig::parse(&bad).unwrap_err();
        for want in [
            "worm.endpoint:",
            "worm.seal_interval:",
            "worm.colour: unknown key",
            "worm.recovery_public_key: required",
            "worm.bucket: required",
            "worm.max_piece:",
        ] {
            assert!(p.iter().any(|x| x.starts_with(want)), "{want} in {p:?}");
        }
    }

    #[test]
    fn retention_section_absent_keeps_everything_and_every_problem_at_once() {
        assert!(CollectorConfig::parse(MINIMAL).unwrap().retention.is_none());
        let worm = "[worm]\nendpoint = \"https://s3.example:443\"\nbucket = \"b\"\n\
                    recovery_public_key = \"/k.pub\"\n";
        let ok = format!("{MINIMAL}\n{worm}[retention]\nkeep = \"7d\"\n");
        let r = CollectorConfig::parse(&ok).unwrap().retention.unwrap();
        assert_eq!(r.keep, std::time::Duration::from_secs(7 * 86_400));
        assert_eq!(r.interval, std::time::Duration::from_secs(300));
        assert!(r.store.is_none());
        // Its own store keys, without [worm].
        let own = format!(
            "{MINIMAL}\n[retention]\nkeep = \"0s\"\nendpoint = \"https://s3.example:443\"\n\
             bucket = \"b\"\nprefix = \"bank1\"\n"
        );
        let r = CollectorConfig::parse(&own).unwrap().retention.unwrap();
        assert_eq!(r.store.as_ref().unwrap().prefix, "bank1");
        // Every problem at once.
        let bad = format!("{MINIMAL}\n[retention]\ninterval = \"soon\"\ncolour = 1\n");
        let errs = CollectorConfig::parse(&bad).unwrap_err();
        for want in [
            "retention.keep: required",
            "retention.interval:",
            "retention.colour: unknown key",
            "retention: the watcher's sealed manifest must be read from WORM",
        ] {
            assert!(
                errs.iter().any(|e| e.contains(want)),
                "{want} not in {errs:#?}"
            );
        }
        let bad = format!("{MINIMAL}\n[retention]\nkeep = \"1d\"\nendpoint = \"http://x\"\n");
        let errs = CollectorConfig::parse(&bad).unwrap_err();
        assert!(
            errs.iter().any(|e| e.contains("retention.endpoint")),
            "{errs:#?}"
        );
        assert!(
            errs.iter()
                .any(|e| e.contains("retention.bucket: required")),
            "{errs:#?}"
        );
    }

    #[test]
    fn blowfish_only_when_asked_and_with_its_psk() {
        let text = MINIMAL.replace("[tls]", "[legacy]\npsk_file = \"/c/psk\"\n[tls]");
        let p = CollectorConfig::parse(&text).unwrap_err();
        assert!(
            p[0].starts_with("[legacy]: set, but the cipher is TLS"),
            "{p:?}"
        );
        let text = r#"
[listen]
address = "127.0.0.1:7070"
cipher = "blowfish"
[legacy]
psk_file = "/c/psk"
[store]
dir = "/s"
key_file = "/k"
[telemetry]
metrics_listen = ""
[[extractor]]
id = "ext-a"
db_ids = [7]
"#;
        let c = CollectorConfig::parse(text).unwrap();
        assert_eq!(c.listen.cipher, Cipher::Blowfish);
        assert_eq!(
            c.legacy,
            Some(Legacy {
                psk_file: "/c/psk".into()
            })
        );
        assert_eq!(c.telemetry().metrics_listen, None);
        assert!(allowed(&c.extractor, "ext-a", 7));
        assert!(!allowed(&c.extractor, "ext-a", 8));
        assert!(!allowed(&c.extractor, "ext-b", 7));
    }
}
