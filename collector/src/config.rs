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

use redovault::config::secs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use redovault::compress::Level;
use redovault::config::units::{duration, size, size_usize};
use redovault::config::{Check, Compress, DaemonTelemetry, Problems};
use redovault::crypto::keys::KeyRing;
use redovault::crypto::legacy::Psk;
use redovault::crypto::recovery::RecoveryPublicKey;
use redovault::crypto::tls::TlsServer;
use redovault::telemetry::LogFormat;
use redovault::wire::frame::MAX_FRAME_LEN;
use redovault::wire::transport::{LinkConfig, ServerSecurity};
use serde::Deserialize;
use std::time::Duration;

pub use crate::allow::{ExtractorAllow, allowed};
use crate::server::ServerOptions;
use crate::store::StoreOptions;
use crate::worm::WormConfig;
use crate::writer::WriterConfig;
use redovault::watcher::config::StoreConfig;

/// How the link is protected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cipher {
    /// TLS 1.3 with client certificates (the default and the production mode).
    Tls {
        /// The collector's certificate (PEM).
        cert: PathBuf,
        /// Its private key (PEM).
        key: PathBuf,
        /// The CA that signs extractors' certificates.
        client_ca: PathBuf,
    },
    /// LEGACY: Blowfish with a pre-shared key (`cipher = "blowfish"`).
    Blowfish {
        /// File holding the PSK in hex.
        psk_file: PathBuf,
    },
}

/// The whole collector configuration.
#[derive(Debug, Clone)]
pub struct CollectorConfig {
    /// Listening address.
    pub listen: SocketAddr,
    /// Connections served at once.
    pub max_connections: usize,
    /// Link protection.
    pub cipher: Cipher,
    /// Link tunables.
    pub link: LinkConfig,
    /// Accept an extractor's offer of compressed Data.
    pub accept_compression: bool,
    /// Store directory.
    pub store_dir: PathBuf,
    /// Key file of the at-rest key ring.
    pub key_file: PathBuf,
    /// Store tuning.
    pub store: StoreOptions,
    /// Group-commit tuning.
    pub writer: WriterConfig,
    /// Allow-list; empty: any authenticated extractor.
    pub extractors: Vec<ExtractorAllow>,
    pub log_format: LogFormat,
    /// Log level filter.
    pub log_level: String,
    /// Metrics endpoint; `None`: off.
    pub metrics_listen: Option<SocketAddr>,
    /// `[worm]`: the streams' second home in WORM (None: the collector's disk only).
    pub worm: Option<WormConfig>,
    /// `[retention]`: when segments are removed (None: never).
    pub retention: Option<RetentionConfig>,
}

/// The `[retention]` section.
#[derive(Debug, Clone)]
pub struct RetentionConfig {
    /// How long a sequence's segments stay after its archived log is verified in WORM
    /// (and, with `[worm]`, its pieces are confirmed there).
    pub keep: std::time::Duration,
    /// How often a retention pass runs.
    pub interval: std::time::Duration,
    /// Where the watcher's sealed manifest is read: its own store keys, or `None` for the
    /// `[worm]` store.
    pub store: Option<StoreConfig>,
}

impl RetentionConfig {
    /// The store the watcher's manifest is read from: `[retention]`'s own, or `[worm]`'s.
    pub fn manifest_store<'a>(&'a self, worm: Option<&'a WormConfig>) -> Option<&'a StoreConfig> {
        self.store.as_ref().or(worm.map(|w| &w.store))
    }

    /// Reads a `[retention]` table; problems go to `problems` with their key path.
    pub fn parse(
        table: &toml::Table,
        worm: bool,
        problems: &mut Vec<String>,
    ) -> Option<RetentionConfig> {
        use std::time::Duration;
        /// The keys of `[retention]` besides the store's.
        #[derive(serde::Deserialize)]
        struct Keys {
            #[serde(default, deserialize_with = "redovault::config::units::opt_duration")]
            keep: Option<Duration>,
            #[serde(default = "five_minutes")]
            #[serde(deserialize_with = "redovault::config::units::duration")]
            interval: Duration,
        }
        fn five_minutes() -> Duration {
            secs(300)
        }
        let own_store = ["kind", "endpoint", "bucket", "dir"]
            .iter()
            .any(|k| table.contains_key(*k));
        let mut p = redovault::config::Problems::default();
        let read = redovault::config::load::deserialize_both::<StoreConfig, Keys>(
            "retention",
            table.clone(),
            &mut p,
        );
        let (store, k) = read.unzip();
        let store = store.filter(|_| own_store);
        let (keep, interval) = k.map_or((None, five_minutes()), |k| (k.keep, k.interval));
        p.at_least("retention.interval", interval, secs(1));
        if keep.is_none() && !p.about("retention.keep") {
            p.push(
                "retention.keep",
                "required (how long a sequence stays after its archived log is verified in \
                 WORM, e.g. \"7d\")",
            );
        }
        match &store {
            None if !worm => p.push(
                "retention",
                "the watcher's sealed manifest must be read from WORM: configure [worm], or \
                 give the watcher's store keys (endpoint, bucket, prefix) here",
            ),
            Some(st) => st.check_at("retention", &mut p),
            None => {}
        }
        problems.extend(p.into_vec());
        let keep = keep.unwrap_or_default();
        Some(RetentionConfig {
            keep,
            interval,
            store,
        })
    }
}

pub use redovault::config::ConfigError;

/// The file as serde reads it.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct CollectorFile {
    listen: Option<ListenFile>,
    tls: Option<TlsFile>,
    legacy: Option<LegacyFile>,
    link: LinkFile,
    store: Option<StoreFile>,
    extractor: Vec<AllowFile>,
    telemetry: DaemonTelemetry,
    worm: Option<toml::Table>,
    retention: Option<toml::Table>,
}

#[derive(Debug, Deserialize)]
#[serde(default)]
struct ListenFile {
    address: Option<String>,
    max_connections: usize,
    cipher: CipherKind,
}

/// `listen.cipher`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
enum CipherKind {
    #[default]
    Tls,
    Blowfish,
}

impl Default for ListenFile {
    fn default() -> ListenFile {
        ListenFile {
            address: None,
            max_connections: 256,
            cipher: CipherKind::Tls,
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct TlsFile {
    cert: Option<String>,
    key: Option<String>,
    client_ca: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct LegacyFile {
    psk_file: Option<String>,
}

/// `[link]` (the extractor's has the same keys).
#[derive(Debug, Deserialize)]
#[serde(default)]
struct LinkFile {
    #[serde(deserialize_with = "duration")]
    heartbeat_interval: Duration,
    missed_heartbeats: u32,
    #[serde(deserialize_with = "duration")]
    handshake_timeout: Duration,
    #[serde(deserialize_with = "size_usize")]
    max_frame: usize,
    accept_compression: bool,
}

impl Default for LinkFile {
    fn default() -> LinkFile {
        let d = LinkConfig::default();
        LinkFile {
            heartbeat_interval: d.heartbeat_interval,
            missed_heartbeats: d.missed_heartbeats,
            handshake_timeout: d.handshake_timeout,
            max_frame: d.max_frame_len,
            accept_compression: true,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(default)]
struct StoreFile {
    dir: Option<String>,
    key_file: Option<String>,
    #[serde(deserialize_with = "size")]
    segment_size: u64,
    #[serde(deserialize_with = "size_usize")]
    chunk_size: usize,
    compress: Compress,
    compress_level: u64,
    queue: usize,
    max_batch: usize,
    #[serde(deserialize_with = "size_usize")]
    max_batch_bytes: usize,
}

impl Default for StoreFile {
    fn default() -> StoreFile {
        let (so, wd) = (StoreOptions::default(), WriterConfig::default());
        StoreFile {
            dir: None,
            key_file: None,
            segment_size: so.segment_size,
            chunk_size: so.chunk_size,
            compress: Compress::Off,
            compress_level: Level::DEFAULT.get() as u64,
            queue: wd.queue,
            max_batch: wd.max_batch,
            max_batch_bytes: wd.max_batch_bytes,
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct AllowFile {
    id: Option<String>,
    db_ids: Vec<u32>,
}

impl LinkFile {
    /// The link's settings at `at` (`link`), with their ranges checked.
    fn check(&self, at: &str, p: &mut Problems) -> LinkConfig {
        let max = MAX_FRAME_LEN as u64;
        p.size_range(&format!("{at}.max_frame"), self.max_frame, 64 << 10, max);
        LinkConfig {
            max_frame_len: self.max_frame,
            ..redovault::config::sections::link_timing(
                at,
                self.heartbeat_interval,
                self.missed_heartbeats,
                self.handshake_timeout,
                p,
            )
        }
    }
}

impl Check for CollectorFile {
    type Output = CollectorConfig;
    const FIRST_INDEX: usize = 1;

    fn check(self, p: &mut Problems) -> Option<CollectorConfig> {
        let cipher = self.cipher(p);
        let listen = self.listen.unwrap_or_else(|| {
            p.line("[listen]: missing section".into());
            ListenFile::default()
        });
        let address = match listen.address {
            None if !p.about("listen.address") && !p.about("[listen]") => {
                p.push("listen.address", "missing");
                None
            }
            None => None,
            Some(a) => a
                .parse::<SocketAddr>()
                .map_err(|_| {
                    let what = format!("{a:?} is not an address and port such as \"0.0.0.0:7070\"");
                    p.push("listen.address", what);
                })
                .ok(),
        };
        p.range("listen.max_connections", listen.max_connections, 1, 65_536);
        let link = self.link.check("link", p);
        let store = self.store.unwrap_or_else(|| {
            p.line("[store]: missing section".into());
            StoreFile::default()
        });
        let store_dir = p.required_path("store.dir", store.dir);
        let key_file = p.required_path("store.key_file", store.key_file);
        p.size_range("store.segment_size", store.segment_size, 64 << 10, 1 << 40);
        let max_chunk = crate::segment::MAX_CHUNK_DATA as u64;
        p.size_range("store.chunk_size", store.chunk_size, 4 << 10, max_chunk);
        let on = store.compress == Compress::Zstd;
        let compress = p.zstd_level("store.compress_level", on, store.compress_level);
        p.range("store.queue", store.queue, 1, 1 << 20);
        p.range("store.max_batch", store.max_batch, 1, 1 << 20);
        p.size_range(
            "store.max_batch_bytes",
            store.max_batch_bytes,
            4 << 10,
            1 << 32,
        );
        let mut extractors: Vec<ExtractorAllow> = Vec::new();
        for (i, e) in self.extractor.into_iter().enumerate() {
            let at = format!("extractor[{}]", i + 1);
            match e.id {
                None if !p.about(&format!("{at}.id")) => p.push(&format!("{at}.id"), "missing"),
                None => {}
                Some(id) if id.trim().is_empty() => p.push(&format!("{at}.id"), "empty"),
                Some(id) if extractors.iter().any(|x| x.id == id) => {
                    p.push(&format!("{at}.id"), format!("{id:?} is listed twice"))
                }
                Some(id) => extractors.push(ExtractorAllow {
                    id,
                    db_ids: e.db_ids,
                }),
            }
        }
        let telemetry = self.telemetry.resolve(9464);
        let mut lines = Vec::new();
        let worm = self
            .worm
            .as_ref()
            .and_then(|t| WormConfig::parse(t, &mut lines));
        let retention = self
            .retention
            .as_ref()
            .and_then(|t| RetentionConfig::parse(t, self.worm.is_some(), &mut lines));
        lines.into_iter().for_each(|l| p.line(l));
        Some(CollectorConfig {
            listen: address?,
            max_connections: listen.max_connections,
            cipher: cipher?,
            link,
            accept_compression: self.link.accept_compression,
            store_dir: store_dir?,
            key_file: key_file?,
            store: StoreOptions {
                segment_size: store.segment_size,
                chunk_size: store.chunk_size,
                compress,
            },
            writer: WriterConfig {
                queue: store.queue,
                max_batch: store.max_batch,
                max_batch_bytes: store.max_batch_bytes,
            },
            extractors,
            log_format: telemetry.log_format,
            log_level: telemetry.log_level,
            metrics_listen: telemetry.metrics_listen,
            worm,
            retention,
        })
    }
}

impl CollectorFile {
    /// `[tls]` or, with `cipher = "blowfish"`, `[legacy]`: never both.
    fn cipher(&self, p: &mut Problems) -> Option<Cipher> {
        let name = self.listen.as_ref().map_or(CipherKind::Tls, |l| l.cipher);
        if name == CipherKind::Blowfish {
            if self.tls.is_some() {
                p.line("[tls]: set, but cipher = \"blowfish\" does not use it".into());
            }
            let Some(legacy) = &self.legacy else {
                p.line("[legacy]: missing section (cipher = \"blowfish\" needs psk_file)".into());
                return None;
            };
            let psk_file = p.required_path("legacy.psk_file", legacy.psk_file.clone())?;
            return Some(Cipher::Blowfish { psk_file });
        }
        if self.legacy.is_some() {
            p.line(
                "[legacy]: set, but the cipher is TLS (set cipher = \"blowfish\" to use it)".into(),
            );
        }
        let Some(tls) = &self.tls else {
            p.line("[tls]: missing section (TLS needs cert, key and client_ca)".into());
            return None;
        };
        let cert = p.required_path("tls.cert", tls.cert.clone());
        let key = p.required_path("tls.key", tls.key.clone());
        let client_ca = p.required_path("tls.client_ca", tls.client_ca.clone());
        Some(Cipher::Tls {
            cert: cert?,
            key: key?,
            client_ca: client_ca?,
        })
    }
}

impl CollectorConfig {
    /// Reads and checks a configuration file.
    pub fn load(path: &Path) -> Result<CollectorConfig, ConfigError> {
        redovault::config::load::<CollectorFile>(path)
    }

    /// Parses and checks configuration text; on failure, every problem found.
    pub fn parse(text: &str) -> Result<CollectorConfig, Vec<String>> {
        redovault::config::parse::<CollectorFile>(text)
    }

    /// True when `id` may ship database `db_id` ([`allowed`]).
    pub fn allows(&self, id: &str, db_id: u32) -> bool {
        allowed(&self.extractors, id, db_id)
    }
}

impl CollectorConfig {
    /// Loads what protects the link: the TLS certificate, key and client CA, or the legacy
    /// PSK. Errors name the file.
    pub fn load_security(&self) -> Result<ServerSecurity, String> {
        match &self.cipher {
            Cipher::Tls {
                cert,
                key,
                client_ca,
            } => TlsServer::from_pem_files(cert, key, client_ca)
                .map(ServerSecurity::Tls)
                .map_err(|e| format!("tls: {e}")),
            Cipher::Blowfish { psk_file } => Psk::from_file(psk_file)
                .map(ServerSecurity::LegacyBlowfish)
                .map_err(|e| format!("legacy: {e}")),
        }
    }

    /// Checks every file the collector needs (certificates or PSK, key ring, store
    /// directory) and returns one line per problem.
    pub fn check_resources(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Err(e) = self.load_security() {
            out.push(e);
        }
        if let Err(e) = KeyRing::load(&self.key_file) {
            out.push(format!("store.key_file: {e}"));
        }
        let dir = &self.store_dir;
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

    /// The server's options, with the loaded security.
    pub fn server_options(&self, security: ServerSecurity) -> ServerOptions {
        ServerOptions {
            listen: self.listen,
            max_connections: self.max_connections,
            security,
            link: self.link.clone(),
            extractors: self.extractors.clone(),
            writer: self.writer,
            metrics_listen: self.metrics_listen,
            accept_compression: self.accept_compression,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(c.max_connections, 256);
        assert!(matches!(c.cipher, Cipher::Tls { .. }));
        assert_eq!(c.link, LinkConfig::default());
        assert_eq!(c.store, StoreOptions::default());
        assert_eq!(c.writer, WriterConfig::default());
        assert_eq!(c.metrics_listen, Some("127.0.0.1:9464".parse().unwrap()));
        assert_eq!(c.log_format, LogFormat::Text);
        assert!(c.allows("anyone", 1));
    }

    #[test]
    fn compression_accepted_on_the_link_and_off_in_the_store_by_default() {
        let c = CollectorConfig::parse(MINIMAL).unwrap();
        assert!(c.accept_compression);
        assert_eq!(c.store.compress, None);
        let text = MINIMAL.replace(
            "[store]\n",
            "[link]\naccept_compression = false\n[store]\ncompress = \"zstd\"\ncompress_level = 1\n",
        );
        let c = CollectorConfig::parse(&text).unwrap();
        assert!(!c.accept_compression);
        assert_eq!(c.store.compress, Level::new(1));
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
        assert_eq!(
            c.cipher,
            Cipher::Blowfish {
                psk_file: "/c/psk".into()
            }
        );
        assert_eq!(c.metrics_listen, None);
        assert!(c.allows("ext-a", 7));
        assert!(!c.allows("ext-a", 8));
        assert!(!c.allows("ext-b", 7));
    }
}
