//! `redovault store`: check the WORM store, put files into it, read them back.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;

use redovault::store::local::LocalStore;
use redovault::store::s3::{ChainConfig, S3Config, S3Store};
use redovault::store::{ArchiveStore, LockMode, PutOutcome, Retention, SystemClock};

/// Where archives go. Without `--s3-endpoint`, a local directory (not WORM).
#[derive(Debug, Clone, clap::Args)]
pub struct StoreArgs {
    /// S3 endpoint, e.g. https://s3.example.net:443. Credentials come from the AWS chain: the
    /// environment (AWS_ACCESS_KEY_ID...), a web-identity token file, the shared files.
    #[arg(long, env = "REDOVAULT_S3_ENDPOINT")]
    pub s3_endpoint: Option<url::Url>,
    /// S3 bucket (must have Object Lock enabled).
    #[arg(long, env = "REDOVAULT_S3_BUCKET", default_value = "redovault")]
    pub bucket: String,
    /// S3 signing region.
    #[arg(long, env = "REDOVAULT_S3_REGION", default_value = "us-east-1")]
    pub region: String,
    /// Extra CA certificate (PEM) to trust for the S3 endpoint.
    #[arg(long, env = "REDOVAULT_S3_CA_FILE")]
    pub ca_file: Option<PathBuf>,
    /// Path-style addressing (https://host/bucket/key), as most private S3 servers want
    /// (without it: path-style for an IP address or localhost, virtual-hosted otherwise).
    #[arg(long, env = "REDOVAULT_S3_PATH_STYLE")]
    pub path_style: bool,
    /// Profile of the shared credentials / config files (default: AWS_PROFILE, else default).
    #[arg(long)]
    pub profile: Option<String>,
    /// "chain" (environment, web-identity token file, shared files) or "instance" (then the
    /// container / instance metadata service, IMDSv2).
    #[arg(long, default_value = "chain", value_parser = ["chain", "instance"])]
    pub credentials: String,
    /// STS endpoint for a web-identity token (default: AWS_ENDPOINT_URL_STS, else AWS's).
    #[arg(long)]
    pub sts_endpoint: Option<url::Url>,
    /// Instance metadata endpoint, asked only with --credentials instance.
    #[arg(long, default_value = redovault::store::s3::credentials::DEFAULT_METADATA_ENDPOINT)]
    pub metadata_endpoint: url::Url,
    /// Object Lock mode: compliance (default) or governance.
    #[arg(long, default_value = "compliance", value_parser = parse_mode)]
    pub lock_mode: LockMode,
    /// Retention in days from the server's clock; 0: rely on the bucket's default retention.
    #[arg(long, default_value_t = 30)]
    pub retention_days: u64,
    /// Accept a bucket without Object Lock (local experiments only: archives are deletable).
    #[arg(long)]
    pub allow_unlocked_bucket: bool,
    /// Attempts per request (transient failures only: TLS, credential and permission errors
    /// are never retried).
    #[arg(long, default_value_t = 6, value_parser = clap::value_parser!(u32).range(1..=20))]
    pub max_attempts: u32,
    /// Local store directory, used when no S3 endpoint is given (NOT WORM).
    #[arg(long, env = "REDOVAULT_STORE_DIR", default_value = "redovault-store")]
    pub store_dir: PathBuf,
}

fn parse_mode(s: &str) -> Result<LockMode, String> {
    match s.to_ascii_lowercase().as_str() {
        "compliance" => Ok(LockMode::Compliance),
        "governance" => Ok(LockMode::Governance),
        _ => Err(format!("{s:?}: expected compliance or governance")),
    }
}

/// The two backends behind one value.
#[derive(Debug, Clone)]
pub enum AnyStore {
    /// S3 with Object Lock.
    S3(S3Store),
    /// Local directory.
    Local(LocalStore),
}

impl StoreArgs {
    /// Builds the store these arguments describe.
    pub fn open(&self) -> anyhow::Result<AnyStore> {
        match &self.s3_endpoint {
            None => Ok(AnyStore::Local(LocalStore::new(&self.store_dir)?)),
            Some(endpoint) => {
                let mut c = S3Config::new(endpoint.clone(), &self.bucket);
                c.region = self.region.clone();
                c.ca_file = self.ca_file.clone();
                c.path_style = self.path_style.then_some(true);
                c.credential_chain = ChainConfig {
                    profile: self.profile.clone(),
                    sts_endpoint: self.sts_endpoint.clone(),
                    instance_metadata: (self.credentials == "instance")
                        .then(|| self.metadata_endpoint.clone()),
                };
                c.allow_unlocked_bucket = self.allow_unlocked_bucket;
                c.clock = Arc::new(SystemClock);
                c.retry.max_attempts = self.max_attempts;
                c.retention = if self.retention_days == 0 {
                    Retention::BucketDefault
                } else {
                    Retention::Explicit {
                        mode: self.lock_mode,
                        period: Duration::from_secs(self.retention_days * 86400),
                    }
                };
                Ok(AnyStore::S3(S3Store::new(c)?))
            }
        }
    }
}

/// Subcommands of `redovault store`.
#[derive(Debug, clap::Subcommand)]
pub enum StoreCommand {
    /// Check that the store is reachable and WORM (Object Lock enabled).
    Check,
    /// Upload files, create-only and locked; print one JSON line per file.
    Put {
        /// Files to upload.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Key prefix; the key is PREFIX/FILE_NAME.
        #[arg(long, default_value = "archive")]
        prefix: String,
        /// Append one JSON line per uploaded file to this ledger (fsynced), only after the
        /// upload is confirmed.
        #[arg(long)]
        ledger: Option<PathBuf>,
    },
    /// Print an object's metadata as JSON.
    Head {
        key: String,
        #[arg(long)]
        version_id: Option<String>,
    },
    /// Write an object to a file.
    Get {
        key: String,
        /// Output file.
        #[arg(short, long)]
        output: PathBuf,
        #[arg(long)]
        version_id: Option<String>,
    },
    /// List keys under a prefix.
    List {
        #[arg(default_value = "")]
        prefix: String,
    },
}

/// Arguments of `redovault store`.
#[derive(Debug, clap::Args)]
pub struct StoreCli {
    #[command(flatten)]
    pub store: StoreArgs,
    /// What to do.
    #[command(subcommand)]
    pub command: StoreCommand,
}

fn outcome_json(o: &PutOutcome, file: &std::path::Path) -> serde_json::Value {
    serde_json::json!({
        "file": file.display().to_string(),
        "key": o.key,
        "version_id": o.version_id,
        "size": o.size,
        "sha256": hex::encode(o.sha256),
        "already_present": o.already_present,
        "lock_mode": o.lock.map(|l| l.mode.as_str()),
        "retain_until": o.lock.map(|l| l.retain_until.to_rfc3339()),
    })
}

/// Runs `redovault store`.
pub fn run(args: &StoreCli) -> anyhow::Result<ExitCode> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let store = args.store.open()?;
        match store {
            AnyStore::S3(s) => run_with(&s, &args.command).await,
            AnyStore::Local(s) => run_with(&s, &args.command).await,
        }
    })
}

async fn run_with<S: ArchiveStore>(store: &S, cmd: &StoreCommand) -> anyhow::Result<ExitCode> {
    let readiness = store.check().await?;
    match cmd {
        StoreCommand::Check => {
            println!("{}", readiness.description);
        }
        StoreCommand::Put {
            files,
            prefix,
            ledger,
        } => {
            if !readiness.worm {
                eprintln!("warning: {}", readiness.description);
            }
            for file in files {
                let f = tokio::fs::File::open(file)
                    .await
                    .with_context(|| format!("open {}", file.display()))?;
                let name = file
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .with_context(|| format!("{} has no file name", file.display()))?;
                let key = if prefix.is_empty() {
                    name
                } else {
                    format!("{prefix}/{name}")
                };
                let o = store.put_immutable(&key, f).await?;
                let line = outcome_json(&o, file).to_string();
                if let Some(path) = ledger {
                    let mut l = std::fs::OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(path)
                        .with_context(|| format!("open ledger {}", path.display()))?;
                    writeln!(l, "{line}")?;
                    l.sync_all()?;
                }
                println!("{line}");
            }
        }
        StoreCommand::Head { key, version_id } => {
            match store.head(key, version_id.as_deref()).await? {
                None => anyhow::bail!("{key}: no such object"),
                Some(i) => println!(
                    "{}",
                    serde_json::json!({
                        "key": i.key, "version_id": i.version_id, "size": i.size, "etag": i.etag,
                        "sha256": i.sha256.map(hex::encode),
                        "lock_mode": i.lock.map(|l| l.mode.as_str()),
                        "retain_until": i.lock.map(|l| l.retain_until.to_rfc3339()),
                        "legal_hold": i.legal_hold,
                    })
                ),
            }
        }
        StoreCommand::Get {
            key,
            output,
            version_id,
        } => {
            let mut r = store.get(key, None, version_id.as_deref()).await?;
            let mut f = tokio::fs::File::create(output)
                .await
                .with_context(|| format!("create {}", output.display()))?;
            tokio::io::copy(&mut r, &mut f)
                .await
                .with_context(|| format!("download {key}"))?;
            f.sync_all().await?;
        }
        StoreCommand::List { prefix } => {
            for o in store.list(prefix).await? {
                println!("{}\t{}", o.size, o.key);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
