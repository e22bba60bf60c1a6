//! The drill's world on disk: the database host (attacked), the backup host (the
//! collector; attacked too with `--wipe-backup-host`), the WORM store (a local directory or
//! S3), the referee's ground truth, the recovery team's offline key, the fresh recovery
//! install; the link's certificates, the collector's key and the recovery key pair, made on
//! the fly; one configuration file per daemon.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{DrillError, S3Target};
use redovault::crypto::recovery::RecoveryPrivateKey;
use redovault::crypto::tls;

/// The collector's `[worm] seal_interval` in every drill: the longest time from a byte being
/// durable on the backup host to its piece being cut for WORM.
pub const WORM_SEAL_INTERVAL: Duration = Duration::from_secs(1);

/// The watcher's `[state] seal_interval` in production: the value of
/// `deploy/config/watcher.example.toml` (a unit test keeps them equal). The drill runs with it
/// by default, so that the archived logs shipped since the last seal (all of them, in a drill
/// shorter than the interval) must come back from WORM without a sealed manifest.
pub const PRODUCTION_SEAL_INTERVAL: Duration = Duration::from_secs(600);

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
    /// The backup host: the collector's configuration, key, certificates, store and the
    /// recovery public key.
    pub remote: PathBuf,
    /// The recovery team's offline private key (outside every host; no attack touches it).
    pub recovery_team: PathBuf,
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
            recovery_team: root.join("recovery-team"),
            vault: root.join("vault"),
            referee: root.join("referee"),
            recovery: root.join("recovery"),
            logs: root.join("logs"),
            root,
        };
        // A drill directory is the drill's own: earlier runs' parts are replaced (the other
        // backup hosts of `--collectors` too).
        if let Ok(rd) = fs::read_dir(&l.root) {
            for e in rd.flatten() {
                if e.file_name().to_string_lossy().starts_with("backup-host-") {
                    let d = e.path();
                    fs::remove_dir_all(&d).map_err(|e| DrillError::io(&d, e))?;
                }
            }
        }
        for d in [
            &l.host,
            &l.remote,
            &l.recovery_team,
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
            &l.recovery_team,
            &l.referee,
            &l.recovery,
            &l.logs,
        ] {
            fs::create_dir_all(d).map_err(|e| DrillError::io(d, e))?;
        }
        Ok(l)
    }

    /// Backup host `i` (from 1): the first is [`Layout::remote`], the others (with
    /// `--collectors`) `backup-host-<i>`.
    pub fn backup_host(&self, i: u32) -> PathBuf {
        if i <= 1 {
            self.remote.clone()
        } else {
            self.root.join(format!("backup-host-{i}"))
        }
    }

    /// A log file of the drill.
    pub fn log(&self, name: &str) -> PathBuf {
        self.logs.join(name)
    }

    /// The recovery team's private key (PKCS#8 PEM, 0600).
    pub fn recovery_key(&self) -> PathBuf {
        self.recovery_team.join("recovery.key")
    }
}

/// Ports of the daemons.
#[derive(Debug, Clone, Copy)]
pub struct Ports {
    /// The collector's link.
    pub collector: u16,
    pub collector_metrics: u16,
    pub watcher_metrics: u16,
}

/// A collector on another backup host (`--collectors`).
#[derive(Debug, Clone)]
pub struct Replica {
    /// Its name in the extractor's `[[collector]]` (`backup-host-<i>`).
    pub name: String,
    /// Its host's directory.
    pub dir: PathBuf,
    /// Its configuration.
    pub config: PathBuf,
    /// Its link port.
    pub port: u16,
    /// Its metrics port.
    pub metrics: u16,
}

impl Replica {
    pub fn store(&self) -> PathBuf {
        self.dir.join("store")
    }

    /// Its key file.
    pub fn keys(&self) -> PathBuf {
        self.dir.join("collector.keys")
    }
}

/// One extractor on the database host: as deployed on RAC, one per instance, each following
/// its instance's redo thread.
#[derive(Debug, Clone)]
pub struct Extractor {
    /// The redo thread it follows.
    pub thread: u16,
    /// Its configuration.
    pub config: PathBuf,
    /// Its metrics port.
    pub metrics: u16,
}

/// The configuration files written for one drill.
#[derive(Debug, Clone)]
pub struct Configs {
    /// Collector (backup host).
    pub collector: PathBuf,
    /// The extractors (database host), one per redo thread, in thread order.
    pub extractors: Vec<Extractor>,
    /// Watcher (database host).
    pub watcher: PathBuf,
    /// The key prefix of the collector's pieces in WORM (`[worm] prefix`).
    pub worm_prefix: String,
    /// The collectors on the other backup hosts (`--collectors`), from the second.
    pub replicas: Vec<Replica>,
}

/// Writes the PKI, the collector's key file, the recovery key pair and every daemon's
/// configuration: one extractor per redo thread, on the metrics ports `extractor_ports` (one
/// per thread, from thread 1).
#[allow(clippy::too_many_arguments)]
pub fn write_configs(
    l: &Layout,
    ports: Ports,
    extractor_ports: &[u16],
    groups: u32,
    s3: Option<&S3Target>,
    prefix: &str,
    seal_interval: Duration,
    replica_ports: &[(u16, u16)],
) -> Result<Configs, DrillError> {
    // The link's PKI, made on the fly; the CA key is not kept.
    let pki_dir = l.remote.join("pki");
    fs::create_dir_all(&pki_dir).map_err(|e| DrillError::io(&pki_dir, e))?;
    let pki = tls::generate_pki(&pki_dir)
        .map_err(|e| DrillError::Setup(format!("link certificates: {e}")))?;
    // The collector's data key: 0600, on the backup host only.
    let keys = l.remote.join("collector.keys");
    write_key_file(&keys)?;
    let public = write_recovery_key_pair(l)?;
    // The collector's pieces go to the same store as the watcher's archived logs, with the
    // bucket's default retention on S3. Their keys are `<worm prefix>/streams/<stream>/`, and
    // the bucket policy lets the collector write only under `PREFIX/streams/`: on S3 the worm
    // prefix is the policy's PREFIX itself, not the run's prefix below it (a run keeps apart
    // by its stream's name: the drill gives each run a database id of its own).
    let worm_prefix = match s3 {
        Some(t) => t.prefix.trim_matches('/').to_string(),
        None => prefix.to_string(),
    };
    let collector = l.remote.join("collector.toml");
    let worm = format!(
        "# Every stream's acknowledged redo also goes into WORM, sealed to the offline recovery key.\n\
         [worm]\n{}\nrecovery_public_key = \"{}\"\nseal_interval = \"{}ms\"\n",
        writer_store_section(l, s3, &worm_prefix),
        public.display(),
        WORM_SEAL_INTERVAL.as_millis(),
    );
    let text = collector_toml(
        "the backup host",
        (ports.collector, ports.collector_metrics),
        (&pki.server_cert, &pki.server_key, &pki.ca),
        (&l.remote.join("store"), &keys),
        &worm,
    );
    fs::write(&collector, text).map_err(|e| DrillError::io(&collector, e))?;
    let replicas = write_replicas(l, &pki, replica_ports)?;
    let extractors = write_extractors(l, &pki, ports, &replicas, extractor_ports, groups)?;
    let watcher = write_watcher(l, ports, s3, prefix, seal_interval)?;
    Ok(Configs {
        collector,
        extractors,
        watcher,
        worm_prefix,
        replicas,
    })
}

/// The recovery key pair, as `deploy/recovery-key.sh` makes it on an offline machine: the
/// private half to the recovery team (0600 from its creation), the public half to the backup
/// host, where the collector seals its pieces to it. Returns the public half's path.
fn write_recovery_key_pair(l: &Layout) -> Result<PathBuf, DrillError> {
    let recovery = RecoveryPrivateKey::generate();
    let private = l.recovery_key();
    fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&private)
        .and_then(|mut f| {
            f.write_all(recovery.to_pem().as_bytes())?;
            f.sync_all()
        })
        .map_err(|e| DrillError::io(&private, e))?;
    let public = l.remote.join("recovery.pub");
    fs::write(&public, recovery.public().to_pem()).map_err(|e| DrillError::io(&public, e))?;
    Ok(public)
}

/// The extractors on the database host, one per redo thread, with the extractor's
/// certificate and key and the CA copied there.
fn write_extractors(
    l: &Layout,
    pki: &tls::PkiPaths,
    ports: Ports,
    replicas: &[Replica],
    extractor_ports: &[u16],
    groups: u32,
) -> Result<Vec<Extractor>, DrillError> {
    let host_pki = l.host_etc.join("pki");
    fs::create_dir_all(&host_pki).map_err(|e| DrillError::io(&host_pki, e))?;
    let ca = copy_into(&host_pki, &pki.ca, "ca.pem")?;
    let client_cert = copy_into(&host_pki, &pki.client_cert, "extractor.pem")?;
    let client_key = copy_into(&host_pki, &pki.client_key, "extractor.key")?;
    let collectors =
        extractor_collectors(ports.collector, replicas, &ca, &client_cert, &client_key);
    let threads = extractor_ports.len();
    let mut extractors = Vec::with_capacity(threads);
    for (thread, &metrics) in (1u16..).zip(extractor_ports) {
        // One thread: the single instance's extractor, as before RAC; several: each its own
        // file, state and metrics, naming its thread.
        let (config, state) = if threads == 1 {
            (
                l.host_etc.join("extractor.toml"),
                l.host_state.join("extractor"),
            )
        } else {
            (
                l.host_etc.join(format!("extractor-t{thread}.toml")),
                l.host_state.join(format!("extractor-t{thread}")),
            )
        };
        let text = extractor_toml(l, thread, threads > 1, groups, &state, &collectors, metrics);
        fs::write(&config, text).map_err(|e| DrillError::io(&config, e))?;
        extractors.push(Extractor {
            thread,
            config,
            metrics,
        });
    }
    Ok(extractors)
}

/// The watcher on the database host, sealing its manifest every `seal_interval`.
fn write_watcher(
    l: &Layout,
    ports: Ports,
    s3: Option<&S3Target>,
    prefix: &str,
    seal_interval: Duration,
) -> Result<PathBuf, DrillError> {
    let watcher = l.host_etc.join("watcher.toml");
    let text = format!(
        r#"# The watcher on the database host (written by `redovault drill`).
[watch]
dirs = ["{arch}"]
scan_interval = "1s"
[state]
dir = "{state}"
status_interval = "250ms"
# The manifest's seal interval (production: 10m). Logs shipped since the last seal are in
# WORM but in no sealed manifest: the verifier finds them by their headers and SHA-256 keys.
seal_interval = "{seal_ms}ms"
[store]
{store}
[telemetry]
log_level = "info"
metrics_listen = "127.0.0.1:{mport}"
"#,
        arch = l.oracle.join("archive").display(),
        state = l.host_state.join("watcher").display(),
        store = writer_store_section(l, s3, prefix),
        mport = ports.watcher_metrics,
        seal_ms = seal_interval.as_millis(),
    );
    fs::write(&watcher, text).map_err(|e| DrillError::io(&watcher, e))?;
    Ok(watcher)
}

/// The `[store]` of a program that writes into WORM: on S3 its objects take the bucket's
/// default retention.
fn writer_store_section(l: &Layout, s3: Option<&S3Target>, prefix: &str) -> String {
    match s3 {
        Some(_) => format!(
            "{}\nretention = \"bucket-default\"",
            store_section(l, s3, prefix)
        ),
        None => store_section(l, s3, prefix),
    }
}

/// Copies `from` into `dir` as `name`.
fn copy_into(dir: &Path, from: &Path, name: &str) -> Result<PathBuf, DrillError> {
    let to = dir.join(name);
    fs::copy(from, &to).map_err(|e| DrillError::io(&to, e))?;
    Ok(to)
}

/// The configuration of the extractor of redo thread `thread`: that thread's online log
/// groups (`redo_t<thread>_g<group>.log`), the shared archive destination, its own state;
/// with `name_thread` (RAC), `[online] threads` names its thread, as each instance's extractor
/// is deployed.
fn extractor_toml(
    l: &Layout,
    thread: u16,
    name_thread: bool,
    groups: u32,
    state: &Path,
    collectors: &str,
    metrics: u16,
) -> String {
    let groups_text: String = (1..=groups)
        .map(|g| {
            format!(
                "[[online.group]]\nmembers = [\"{}\"]\n",
                l.oracle
                    .join(format!("online/redo_t{thread}_g{g}.log"))
                    .display()
            )
        })
        .collect();
    let threads = if name_thread {
        format!(
            "# The redo thread of this instance (RAC: one extractor per instance).\nthreads = [{thread}]\n"
        )
    } else {
        String::new()
    };
    format!(
        r#"# The extractor on the database host (written by `redovault drill`).
[online]
{threads}{groups_text}
[archive]
dirs = ["{arch}"]
[tail]
poll = "10ms"
archive_wait = "60s"
[state]
dir = "{state}"
{collectors}
[link]
window = "4M"
heartbeat_interval = "250ms"
missed_heartbeats = 8
handshake_timeout = "5s"
reconnect_min = "50ms"
reconnect_max = "1s"
[telemetry]
log_level = "info"
metrics_listen = "127.0.0.1:{metrics}"
"#,
        arch = l.oracle.join("archive").display(),
        state = state.display(),
    )
}

/// A collector's data key file: a new random key, 0600.
fn write_key_file(keys: &Path) -> Result<(), DrillError> {
    let key = redovault::crypto::keys::random_key_hex();
    fs::write(
        keys,
        format!("active = \"k1\"\n[keys]\nk1 = \"{}\"\n", &*key),
    )
    .map_err(|e| DrillError::io(keys, e))?;
    fs::set_permissions(keys, fs::Permissions::from_mode(0o600))
        .map_err(|e| DrillError::io(keys, e))
}

/// The other backup hosts: each with its copy of the collector's certificate, a data key of
/// its own, a store and a configuration. They do not seal into WORM: the drill bucket's
/// policy gives the collector's keys one prefix (`PREFIX/streams/`), which the first
/// collector uses; in production each collector seals under a prefix of its own, with a
/// policy of its own.
fn write_replicas(
    l: &Layout,
    pki: &tls::PkiPaths,
    ports: &[(u16, u16)],
) -> Result<Vec<Replica>, DrillError> {
    let mut out = Vec::new();
    for (i, (port, metrics)) in (2u32..).zip(ports) {
        let dir = l.backup_host(i);
        let pki_dir = dir.join("pki");
        fs::create_dir_all(&pki_dir).map_err(|e| DrillError::io(&pki_dir, e))?;
        let cert = copy_into(&pki_dir, &pki.server_cert, "collector.pem")?;
        let key = copy_into(&pki_dir, &pki.server_key, "collector.key")?;
        let ca = copy_into(&pki_dir, &pki.ca, "ca.pem")?;
        let r = Replica {
            name: format!("backup-host-{i}"),
            config: dir.join("collector.toml"),
            dir,
            port: *port,
            metrics: *metrics,
        };
        write_key_file(&r.keys())?;
        let text = collector_toml(
            &format!("backup host {i}"),
            (*port, *metrics),
            (&cert, &key, &ca),
            (&r.store(), &r.keys()),
            "",
        );
        fs::write(&r.config, text).map_err(|e| DrillError::io(&r.config, e))?;
        out.push(r);
    }
    Ok(out)
}

/// A collector's configuration on `host`: its link and metrics ports, its certificate, key
/// and client CA, its store and key file, and `worm` (a `[worm]` section, or nothing).
fn collector_toml(
    host: &str,
    (port, metrics): (u16, u16),
    (cert, key, ca): (&Path, &Path, &Path),
    (store, keys): (&Path, &Path),
    worm: &str,
) -> String {
    format!(
        r#"# The collector on {host} (written by `redovault drill`).
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
{worm}[telemetry]
log_level = "info"
metrics_listen = "127.0.0.1:{metrics}"
"#,
        cert = cert.display(),
        key = key.display(),
        ca = ca.display(),
        store = store.display(),
        keys = keys.display(),
    )
}

/// The extractor's `[collector]` (one backup host), or one `[[collector]]` per backup host
/// with `ack = "majority"` (with two: both).
fn extractor_collectors(
    port: u16,
    replicas: &[Replica],
    ca: &Path,
    cert: &Path,
    key: &Path,
) -> String {
    let item = |header: &str, name: &str, port: u16| {
        format!(
            "{header}\nname = \"{name}\"\naddress = \"127.0.0.1:{port}\"\nserver_name = \"localhost\"\n\
             extractor_id = \"redovault-extractor\"\nca = \"{}\"\ncert = \"{}\"\nkey = \"{}\"\n",
            ca.display(),
            cert.display(),
            key.display()
        )
    };
    if replicas.is_empty() {
        return item("[collector]", "backup-host", port);
    }
    let mut text = item("[[collector]]", "backup-host-1", port);
    for r in replicas {
        text.push_str(&item("[[collector]]", &r.name, r.port));
    }
    text
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
/// the environment), no local manifest (the host is gone), and the collector's directory and
/// key of a backup host that still stands (`backup_host`: store, key file); when none does,
/// no `[collector]`: what is left is WORM and the recovery team's key (given to `restore
/// online`).
pub fn write_verifier_config(
    l: &Layout,
    s3: Option<&S3Target>,
    prefix: &str,
    backup_host: Option<(PathBuf, PathBuf)>,
) -> Result<PathBuf, DrillError> {
    let p = l.recovery.join("verifier.toml");
    let lock = if s3.is_some() {
        "lock_mode = \"compliance\"\nmin_retention = \"1d\""
    } else {
        "lock_mode = \"none\""
    };
    let collector = if let Some((store, keys)) = backup_host {
        format!(
            "[collector]\ndir = \"{}\"\nkey_file = \"{}\"",
            store.display(),
            keys.display()
        )
    } else {
        "# No [collector]: the backup host was wiped with the database host.".to_string()
    };
    let text = format!(
        r#"# A fresh install on a clean recovery host (written by `redovault drill`).
[store]
{store}
[verify]
{lock}
# HEAD only: restore archive re-hashes every log it downloads (no log is downloaded twice).
deep = "off"
state_dir = "{state}"
{collector}
[telemetry]
log_level = "warn"
"#,
        store = store_section(l, s3, prefix),
        state = l.recovery.join("state").display(),
    );
    fs::write(&p, text).map_err(|e| DrillError::io(&p, e))?;
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_extractor_per_redo_thread_each_naming_its_thread() {
        let tmp = tempfile::tempdir().unwrap();
        let l = Layout::create(&tmp.path().join("drill")).unwrap();
        let ports = Ports {
            collector: 7000,
            collector_metrics: 7001,
            watcher_metrics: 7002,
        };
        let c = write_configs(
            &l,
            ports,
            &[7101, 7102],
            3,
            None,
            "drill",
            PRODUCTION_SEAL_INTERVAL,
            &[],
        )
        .unwrap();
        assert_eq!(c.extractors.len(), 2);
        for (e, t) in c.extractors.iter().zip([1u16, 2]) {
            assert_eq!(e.thread, t);
            let v: toml::Value = toml::from_str(&fs::read_to_string(&e.config).unwrap()).unwrap();
            assert_eq!(
                v["online"]["threads"].as_array().unwrap(),
                &[toml::Value::Integer(t.into())]
            );
            let groups = v["online"]["group"].as_array().unwrap();
            assert_eq!(groups.len(), 3);
            for g in groups {
                let m = g["members"][0].as_str().unwrap();
                assert!(m.contains(&format!("redo_t{t}_g")), "{m}");
            }
            assert!(
                v["state"]["dir"]
                    .as_str()
                    .unwrap()
                    .ends_with(&format!("extractor-t{t}"))
            );
            assert_eq!(
                v["telemetry"]["metrics_listen"].as_str(),
                Some(format!("127.0.0.1:{}", 7100 + t).as_str())
            );
        }
        // One thread: the single instance's configuration, without [online] threads.
        let l = Layout::create(&tmp.path().join("one")).unwrap();
        let c = write_configs(
            &l,
            ports,
            &[7101],
            3,
            None,
            "drill",
            PRODUCTION_SEAL_INTERVAL,
            &[],
        )
        .unwrap();
        let v: toml::Value =
            toml::from_str(&fs::read_to_string(&c.extractors[0].config).unwrap()).unwrap();
        assert!(v["online"].get("threads").is_none());
        assert!(c.extractors[0].config.ends_with("extractor.toml"));
    }

    #[test]
    fn the_production_seal_interval_is_the_example_configs() {
        let example = include_str!("../../../../deploy/config/watcher.example.toml");
        let line = example
            .lines()
            .find(|l| l.trim_start().starts_with("seal_interval"))
            .expect("the example sets seal_interval");
        let value = line.split('"').nth(1).expect("a quoted duration");
        assert_eq!(
            redovault::config::parse_duration(value).unwrap(),
            PRODUCTION_SEAL_INTERVAL,
            "{line}"
        );
    }
}
