//! `redovault watch`, `push`, `status` and `check-config`: the watcher's commands.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use tokio_util::sync::CancellationToken;

use redovault::store::LockMode;
use redovault::store::local::LocalStore;
use redovault::store::s3::S3Store;
use redovault::watcher::config::{Config, CredentialsMode, StoreKind, parse_duration};
use redovault::watcher::{self, push, status};

/// Arguments of `redovault watch`.
#[derive(Debug, clap::Args)]
pub struct WatchArgs {
    /// The configuration file (see deploy/config/watcher.example.toml).
    #[arg(long)]
    pub config: PathBuf,
}

/// Arguments of `redovault push`.
#[derive(Debug, clap::Args)]
pub struct PushArgs {
    /// A watcher configuration file for the store and state settings (flags override it).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// S3 endpoint (https). Credentials come from the AWS chain (environment, web-identity token
    /// file, shared files with [store] profile; see deploy/config/watcher.example.toml).
    #[arg(long)]
    pub endpoint: Option<url::Url>,
    /// Bucket (Object Lock enabled).
    #[arg(long)]
    pub bucket: Option<String>,
    /// Key prefix.
    #[arg(long)]
    pub prefix: Option<String>,
    /// Extra CA certificate (PEM) for the endpoint.
    #[arg(long)]
    pub ca_file: Option<PathBuf>,
    /// Signing region.
    #[arg(long)]
    pub region: Option<String>,
    /// Path-style addressing (https://host/bucket/key).
    #[arg(long)]
    pub path_style: bool,
    /// Retention from the server's clock ("30d"), or "bucket-default" (the default: the
    /// bucket's default retention, what the shipped policies allow).
    #[arg(long)]
    pub retention: Option<String>,
    /// Object Lock mode: compliance or governance.
    #[arg(long)]
    pub lock_mode: Option<String>,
    /// A local directory store instead of S3 (NOT WORM).
    #[arg(long, conflicts_with = "endpoint")]
    pub store_dir: Option<PathBuf>,
    /// State directory holding the manifest (default: the configuration's, else
    /// /var/lib/redovault/watcher).
    #[arg(long)]
    pub state_dir: Option<PathBuf>,
    /// Archived logs to ship.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
}

/// Arguments of `redovault status`.
#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    /// The watcher's configuration file (for its state directory).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// The state directory (overrides the configuration's).
    #[arg(long)]
    pub state_dir: Option<PathBuf>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `redovault check-config` (`FILE` or `--config FILE`).
pub use redovault::checkconfig::CheckConfigArgs;

fn load(path: &std::path::Path) -> anyhow::Result<Config> {
    Config::load(path).map_err(|e| anyhow::anyhow!("{e}"))
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

/// Runs `redovault watch` until SIGTERM or SIGINT.
pub fn run_watch(args: &WatchArgs) -> anyhow::Result<ExitCode> {
    let cfg = load(&args.config)?;
    redovault::telemetry::init_tracing(cfg.telemetry.log_format, &cfg.telemetry.log_level);
    runtime()?.block_on(async {
        let cancel = CancellationToken::new();
        let c = cancel.clone();
        tokio::spawn(async move {
            use tokio::signal::unix::{SignalKind, signal};
            let (Ok(mut term), Ok(mut int)) = (
                signal(SignalKind::terminate()),
                signal(SignalKind::interrupt()),
            ) else {
                tracing::error!("cannot install signal handlers");
                return;
            };
            let sig = tokio::select! {
                _ = term.recv() => "SIGTERM",
                _ = int.recv() => "SIGINT",
            };
            tracing::info!(signal = sig, "stopping");
            c.cancel();
        });
        watcher::run(cfg, cancel).await?;
        Ok(ExitCode::SUCCESS)
    })
}

/// Runs `redovault push`: exit 0 when every file is shipped (now or before), 2 otherwise.
pub fn run_push(args: &PushArgs) -> anyhow::Result<ExitCode> {
    let mut cfg = match &args.config {
        Some(p) => load(p)?,
        None => Config::default(),
    };
    let s = &mut cfg.store;
    if let Some(e) = &args.endpoint {
        s.kind = StoreKind::S3;
        s.endpoint = Some(e.clone());
    }
    if let Some(d) = &args.store_dir {
        s.kind = StoreKind::Local;
        s.dir = Some(d.clone());
    }
    if let Some(b) = &args.bucket {
        s.bucket.clone_from(b);
    }
    if let Some(p) = &args.prefix {
        s.prefix = p.trim_matches('/').to_string();
    }
    if let Some(c) = &args.ca_file {
        s.ca_file = Some(c.clone());
    }
    if let Some(r) = &args.region {
        s.region.clone_from(r);
    }
    if args.path_style {
        s.path_style = Some(true);
    }
    if let Some(r) = &args.retention {
        s.retention = if r == "bucket-default" {
            None
        } else {
            Some(parse_duration(r).with_context(|| {
                format!("--retention {r:?}: expected a period such as 30d, or bucket-default")
            })?)
        };
    }
    if let Some(m) = &args.lock_mode {
        s.lock_mode = match m.as_str() {
            "compliance" => LockMode::Compliance,
            "governance" => LockMode::Governance,
            _ => anyhow::bail!("--lock-mode {m:?}: expected compliance or governance"),
        };
    }
    if let Some(d) = &args.state_dir {
        cfg.state.dir.clone_from(d);
    }
    if cfg.store.kind == StoreKind::S3
        && (cfg.store.endpoint.is_none() || cfg.store.bucket.is_empty())
    {
        anyhow::bail!(
            "no store: give --endpoint and --bucket (or --store-dir, or --config with a [store])"
        );
    }
    let report = runtime()?.block_on(async {
        match cfg.store.kind {
            StoreKind::S3 => {
                let store = S3Store::new(watcher::s3_config(&cfg.store)?)?;
                push::push(&cfg, &store, &args.files).await
            }
            StoreKind::Local => {
                let dir = cfg.store.dir.clone().unwrap_or_default();
                let store = LocalStore::new(dir)?;
                push::push(&cfg, &store, &args.files).await
            }
        }
    })?;
    for f in &report.files {
        println!("{}", serde_json::to_string(f)?);
    }
    for k in &report.sealed {
        eprintln!("manifest segment sealed: {k}");
    }
    if let Some(e) = &report.seal_error {
        eprintln!("redovault push: {e}");
    }
    Ok(if report.all_ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    })
}

/// Runs `redovault status`: exit 0 when healthy; 2 when the daemon is not running or there
/// are gaps, damaged or replaced logs, or failing uploads.
pub fn run_status(args: &StatusArgs) -> anyhow::Result<ExitCode> {
    let dir = match (&args.state_dir, &args.config) {
        (Some(d), _) => d.clone(),
        (None, Some(c)) => load(c)?.state.dir,
        (None, None) => PathBuf::from(watcher::config::DEFAULT_STATE_DIR),
    };
    let r = status::report(&dir)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&r)?);
    } else {
        print!("{}", r.render());
    }
    let troubled = r.daemon != "running"
        || r.threads.iter().any(|t| !t.gaps.is_empty())
        || r.status.as_ref().is_some_and(|s| {
            !s.damaged.is_empty() || !s.replaced.is_empty() || s.backlog.failing > 0
        });
    Ok(if troubled {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}

/// Runs `redovault check-config`: the verdict of [`redovault::checkconfig`] (every problem, one
/// per line, exit 1; or OK and a summary, exit 0).
pub fn run_check_config(args: &CheckConfigArgs) -> anyhow::Result<ExitCode> {
    let file = args.path().map_err(anyhow::Error::msg)?;
    let verdict = match Config::load(&file) {
        Err(e) => Err(e.problems),
        Ok(c) => Ok(watcher_summary(&c)),
    };
    Ok(redovault::checkconfig::report(&file, verdict))
}

/// What a valid watcher configuration amounts to, one line per part.
fn watcher_summary(c: &Config) -> Vec<String> {
    let store = match c.store.kind {
        StoreKind::S3 => format!(
            "s3 {} bucket {} prefix {:?}, {}, {}, credentials {}",
            c.store.endpoint.as_ref().map(|u| u.as_str()).unwrap_or(""),
            c.store.bucket,
            c.store.prefix,
            match c.store.retention {
                Some(r) => format!("{} for {:?}", c.store.lock_mode, r),
                None => "bucket default retention".to_string(),
            },
            match c.store.path_style {
                Some(true) => "path-style",
                Some(false) => "virtual-hosted",
                None => "addressing from the endpoint",
            },
            match (&c.store.credentials, &c.store.profile) {
                (CredentialsMode::Instance, _) => format!(
                    "from the AWS chain, then instance metadata at {}",
                    c.store.metadata_endpoint
                ),
                (CredentialsMode::Chain, Some(p)) => format!("from the AWS chain, profile {p}"),
                (CredentialsMode::Chain, None) => "from the AWS chain".to_string(),
            }
        ),
        StoreKind::Local => format!(
            "local directory {} (NOT WORM)",
            c.store
                .dir
                .as_ref()
                .map(|d| d.display().to_string())
                .unwrap_or_default()
        ),
    };
    vec![
        format!(
            "watch: {} (rescan every {:?}, {} uploads at once, grace {:?}, {})",
            c.watch
                .dirs
                .iter()
                .map(|d| d.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
            c.watch.scan_interval,
            c.watch.parallel_uploads,
            c.watch.grace_period,
            c.watch.compress.map_or_else(
                || "logs byte-identical".to_string(),
                |l| format!("logs compressed, {l}")
            )
        ),
        format!("store: {store}"),
        format!("state: {}", c.state.dir.display()),
    ]
}
