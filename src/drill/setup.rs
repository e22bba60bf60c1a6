//! The drill's world on disk: the database host (attacked), the backup host (the
//! collector), the WORM store (a local directory or S3), the referee's ground truth, the
//! fresh recovery install; the link's certificates and the collector's key, made on the fly;
//! one configuration file per daemon.

use std::fs;
use std::path::{Path, PathBuf};

use super::{DrillError, S3Target};
use crate::crypto::tls;

/// Every path of one drill.
#[derive(Debug, Clone)]
pub struct Layout {
    /// The drill's directory.
    pub root: PathBuf,
    /// The database host: everything under it is destroyed by the attack.
    pub host: PathBuf,
    /// The simulated database (online/, archive/, journal.jsonl).
    pub oracle: PathBuf,
    /// redovault's configuration on the database host.
    pub host_etc: PathBuf,
    /// redovault's state on the database host (watcher, extractor).
    pub host_state: PathBuf,
    /// The backup host: the collector's configuration, key, certificates and store.
    pub remote: PathBuf,
    /// The local WORM stand-in (local store mode).
    pub vault: PathBuf,
    /// What the referee saw at the crash (ground truth, outside every host).
    pub referee: PathBuf,
    /// The fresh install that recovers.
    pub recovery: PathBuf,
    /// The daemons' logs.
    pub logs: PathBuf,
}

impl Layout {
    /// The layout under `root`, which must not hold an earlier drill's host (it is reused
    /// only when empty or when it holds a finished drill, whose parts are removed first).
    pub fn create(root: &Path) -> Result<Layout, DrillError> {
        let root = if root.is_absolute() {
            root.to_path_buf()
        } else {
            std::env::current_dir()
                .map_err(|e| DrillError::io(root, e))?
                .join(root)
        };
        let l = Layout {
            host: root.join("host"),
            oracle: root.join("host/oracle"),
            host_etc: root.join("host/etc/redovault"),
            host_state: root.join("host/var/lib/redovault"),
            remote: root.join("backup-host"),
            vault: root.join("vault"),
            referee: root.join("referee"),
            recovery: root.join("recovery"),
            logs: root.join("logs"),
            root,
        };
        // A drill directory is the drill's own: earlier runs' parts are replaced.
        for d in [
            &l.host,
            &l.remote,
            &l.vault,
            &l.referee,
            &l.recovery,
            &l.logs,
        ] {
            if d.exists() {
                fs::remove_dir_all(d).map_err(|e| DrillError::io(d, e))?;
            }
        }
        for d in [
            &l.host_etc,
            &l.host_state,
            &l.remote,
            &l.referee,
            &l.recovery,
            &l.logs,
        ] {
            fs::create_dir_all(d).map_err(|e| DrillError::io(d, e))?;
        }
        Ok(l)
    }

    /// A log file of the drill.
    pub fn log(&self, name: &str) -> PathBuf {
        self.logs.join(name)
    }
}

/// Ports of the daemons.
#[derive(Debug, Clone, Copy)]
pub struct Ports {
    /// The collector's link.
    pub collector: u16,
    /// The collector's metrics.
    pub collector_metrics: u16,
    /// The extractor's metrics.
    pub extractor_metrics: u16,
    /// The watcher's metrics.
    pub watcher_metrics: u16,
}

/// The configuration files written for one drill.
#[derive(Debug, Clone)]
pub struct Configs {
    /// Collector (backup host).
    pub collector: PathBuf,
    /// Extractor (database host).
    pub extractor: PathBuf,
    /// Watcher (database host).
    pub watcher: PathBuf,
}

/// Writes the PKI, the collector's key file and every daemon's configuration.
pub fn write_configs(
    l: &Layout,
    ports: Ports,
    groups: u32,
    s3: Option<&S3Target>,
    prefix: &str,
) -> Result<Configs, DrillError> {
    // The link's PKI, made on the fly; the CA key is not kept.
    let pki_dir = l.remote.join("pki");
    fs::create_dir_all(&pki_dir).map_err(|e| DrillError::io(&pki_dir, e))?;
    let pki = tls::generate_pki(&pki_dir)
        .map_err(|e| DrillError::Setup(format!("link certificates: {e}")))?;
    // The extractor's certificate and key, and the CA, go to the database host.
    let host_pki = l.host_etc.join("pki");
    fs::create_dir_all(&host_pki).map_err(|e| DrillError::io(&host_pki, e))?;
    let copy = |from: &Path, name: &str| -> Result<PathBuf, DrillError> {
        let to = host_pki.join(name);
        fs::copy(from, &to).map_err(|e| DrillError::io(&to, e))?;
        Ok(to)
    };
    let ca = copy(&pki.ca, "ca.pem")?;
    let client_cert = copy(&pki.client_cert, "extractor.pem")?;
    let client_key = copy(&pki.client_key, "extractor.key")?;
    // The collector's data key: 0600, on the backup host only.
    let keys = l.remote.join("collector.keys");
    let key = crate::crypto::keys::random_key_hex();
    fs::write(
        &keys,
        format!("active = \"k1\"\n[keys]\nk1 = \"{}\"\n", &*key),
    )
    .map_err(|e| DrillError::io(&keys, e))?;
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&keys, fs::Permissions::from_mode(0o600))
            .map_err(|e| DrillError::io(&keys, e))?;
    }

    let collector = l.remote.join("collector.toml");
    let text = format!(
        r#"# The collector on the backup host (written by `redovault drill`).
[listen]
address = "127.0.0.1:{port}"
max_connections = 16
[tls]
cert = "{cert}"
key = "{key}"
client_ca = "{ca}"
[link]
heartbeat_interval = "250ms"
missed_heartbeats = 8
handshake_timeout = "5s"
[store]
dir = "{store}"
key_file = "{keys}"
[telemetry]
log_level = "info"
metrics_listen = "127.0.0.1:{mport}"
"#,
        port = ports.collector,
        cert = pki.server_cert.display(),
        key = pki.server_key.display(),
        ca = pki.ca.display(),
        store = l.remote.join("store").display(),
        keys = keys.display(),
        mport = ports.collector_metrics,
    );
    fs::write(&collector, text).map_err(|e| DrillError::io(&collector, e))?;

    let extractor = l.host_etc.join("extractor.toml");
    let groups_text: String = (1..=groups)
        .map(|g| {
            format!(
                "[[online.group]]\nmembers = [\"{}\"]\n",
                l.oracle.join(format!("online/redo_t1_g{g}.log")).display()
            )
        })
        .collect();
    let text = format!(
        r#"# The extractor on the database host (written by `redovault drill`).
[online]
{groups_text}
[archive]
dirs = ["{arch}"]
[tail]
poll = "10ms"
archive_wait = "60s"
[state]
dir = "{state}"
[collector]
address = "127.0.0.1:{port}"
server_name = "localhost"
extractor_id = "redovault-extractor"
ca = "{ca}"
cert = "{cert}"
key = "{key}"
[link]
window = "4M"
heartbeat_interval = "250ms"
missed_heartbeats = 8
handshake_timeout = "5s"
reconnect_min = "50ms"
reconnect_max = "1s"
[telemetry]
log_level = "info"
metrics_listen = "127.0.0.1:{mport}"
"#,
        arch = l.oracle.join("archive").display(),
        state = l.host_state.join("extractor").display(),
        port = ports.collector,
        ca = ca.display(),
        cert = client_cert.display(),
        key = client_key.display(),
        mport = ports.extractor_metrics,
    );
    fs::write(&extractor, text).map_err(|e| DrillError::io(&extractor, e))?;

    let watcher = l.host_etc.join("watcher.toml");
    let text = format!(
        r#"# The watcher on the database host (written by `redovault drill`).
[watch]
dirs = ["{arch}"]
scan_interval = "1s"
[state]
dir = "{state}"
status_interval = "250ms"
# Sealed often: what is sealed in WORM outlives the database host.
seal_interval = "1s"
[store]
{store}
[telemetry]
log_level = "info"
metrics_listen = "127.0.0.1:{mport}"
"#,
        arch = l.oracle.join("archive").display(),
        state = l.host_state.join("watcher").display(),
        // The watcher writes: its objects take the bucket's default retention.
        store = match s3 {
            Some(_) => format!(
                "{}\nretention = \"bucket-default\"",
                store_section(l, s3, prefix)
            ),
            None => store_section(l, s3, prefix),
        },
        mport = ports.watcher_metrics,
    );
    fs::write(&watcher, text).map_err(|e| DrillError::io(&watcher, e))?;
    Ok(Configs {
        collector,
        extractor,
        watcher,
    })
}

/// The `[store]` section shared by the watcher (database host, which adds its retention) and
/// the verifier (recovery).
pub fn store_section(l: &Layout, s3: Option<&S3Target>, prefix: &str) -> String {
    match s3 {
        Some(t) => format!(
            "kind = \"s3\"\nendpoint = \"{}\"\nbucket = \"{}\"\nregion = \"{}\"\npath_style = true\n\
             ca_file = \"{}\"\nprefix = \"{prefix}\"",
            t.endpoint.as_str().trim_end_matches('/'),
            t.bucket,
            t.region,
            t.ca.display()
        ),
        None => format!(
            "kind = \"local\"\ndir = \"{}\"\nprefix = \"{prefix}\"",
            l.vault.display()
        ),
    }
}

/// The fresh install's verifier configuration: the store with read-only credentials (from
/// the environment), no local manifest (the host is gone), the collector's directory and key.
pub fn write_verifier_config(
    l: &Layout,
    s3: Option<&S3Target>,
    prefix: &str,
) -> Result<PathBuf, DrillError> {
    let p = l.recovery.join("verifier.toml");
    let lock = if s3.is_some() {
        "lock_mode = \"compliance\"\nmin_retention = \"1d\""
    } else {
        "lock_mode = \"none\""
    };
    let text = format!(
        r#"# A fresh install on a clean recovery host (written by `redovault drill`).
[store]
{store}
[verify]
{lock}
deep = "all"
state_dir = "{state}"
[collector]
dir = "{cdir}"
key_file = "{keys}"
[telemetry]
log_level = "warn"
"#,
        store = store_section(l, s3, prefix),
        state = l.recovery.join("state").display(),
        cdir = l.remote.join("store").display(),
        keys = l.remote.join("collector.keys").display(),
    );
    fs::write(&p, text).map_err(|e| DrillError::io(&p, e))?;
    Ok(p)
}
