//! `redovault drill`: the attack drill end to end on this machine (see [`crate::drill`]).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};

use crate::drill::procs::Programs;
use crate::drill::{DrillOptions, S3Target};
use crate::tomlcheck::{parse_duration, parse_size};

/// Arguments of `redovault drill`.
#[derive(Debug, clap::Args)]
pub struct DrillArgs {
    /// The drill's directory (an earlier drill in it is replaced).
    #[arg(long, default_value = "redovault-drill")]
    pub dir: PathBuf,
    /// How long the database runs before the attack (`8s`, `1m`).
    #[arg(long, default_value = "8s")]
    pub run_for: String,
    /// Redo per second (`256K`, `1M`).
    #[arg(long, default_value = "256K")]
    pub rate: String,
    /// Size of each online log.
    #[arg(long, default_value = "256K")]
    pub log_size: String,
    /// Online log groups.
    #[arg(long, default_value_t = 3)]
    pub groups: u32,
    /// Time from the database's crash to the wiper reaching redovault's daemons.
    #[arg(long, default_value = "2s")]
    pub grace: String,
    /// The hard case: the wiper also reaches the backup host, at the moment the database
    /// crashes (no grace period for any daemon): kill -9 of the collector, rm -rf of its
    /// store, key ring and configuration. Recovery runs from WORM and the offline recovery
    /// key; RPO is then at most the commits of one seal interval plus the upload in flight.
    #[arg(long, conflicts_with = "grace")]
    pub wipe_backup_host: bool,
    /// Collectors, each on a backup host of its own (1..=5). With more than one the extractor
    /// ships to all of them with `ack = "majority"`, and `--wipe-backup-host` wipes only the
    /// first: the online log is then rebuilt from a survivor, and RPO must be 0.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=5))]
    pub collectors: u32,
    /// Redo threads of the simulated database (RAC instances, 1..=8): one extractor per
    /// instance's thread, as deployed; `restore online` rebuilds every thread's online log,
    /// the script recovers to the point every thread's redo covers, and the referee checks
    /// every thread's commits (RPO 0 per thread).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=8))]
    pub threads: u16,
    /// Seed of the workload.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// The watcher's manifest seal interval (`1s`, `10m`). The default is production's
    /// (`deploy/config/watcher.example.toml`): a drill shorter than it ends with every archived
    /// log shipped but not yet sealed, and recovery must take them from WORM all the same.
    #[arg(long, default_value = "10m")]
    pub seal_interval: String,
    /// The `env.sh` of a running S3 test server (`deploy/s3/server.sh up ceph DIR`). Default:
    /// the first of `$REDOVAULT_TEST_S3_TARGETS` with a drill bucket, else
    /// `.ci/state/ceph/env.sh` if that server answers, else the local directory store.
    #[arg(long, conflicts_with = "local")]
    pub s3_env: Option<PathBuf>,
    /// Use the local directory store even when an S3 test server is running.
    #[arg(long)]
    pub local: bool,
    /// Print the report as JSON on stdout (progress goes to stderr).
    #[arg(long)]
    pub json: bool,
}

/// Finds the S3 test server to use, if any.
fn s3_target(args: &DrillArgs) -> anyhow::Result<Option<S3Target>> {
    if args.local {
        return Ok(None);
    }
    if let Some(p) = &args.s3_env {
        let t = S3Target::from_env_file(p)?.with_context(|| {
            format!(
                "{} describes no drill bucket (REDOVAULT_TEST_S3_DRILL_BUCKET): start the server with deploy/s3/server.sh up ceph DIR",
                p.display()
            )
        })?;
        if !t.reachable() {
            bail!("the S3 server of {} does not answer", p.display());
        }
        return Ok(Some(t));
    }
    let mut candidates: Vec<PathBuf> = std::env::var("REDOVAULT_TEST_S3_TARGETS")
        .unwrap_or_default()
        .split(',')
        .filter(|s| !s.is_empty())
        .map(PathBuf::from)
        .collect();
    candidates.push(PathBuf::from(".ci/state/ceph/env.sh"));
    for p in candidates {
        if !Path::new(&p).is_file() {
            continue;
        }
        if let Ok(Some(t)) = S3Target::from_env_file(&p)
            && t.reachable()
        {
            return Ok(Some(t));
        }
    }
    Ok(None)
}

/// Runs the drill; exit 0 when every check held, 1 otherwise.
pub fn run(args: &DrillArgs) -> anyhow::Result<ExitCode> {
    let dur = |s: &str, what: &str| {
        parse_duration(s).with_context(|| format!("--{what} {s:?}: expected a duration (8s, 1m)"))
    };
    let size = |s: &str, what: &str| {
        parse_size(s).with_context(|| format!("--{what} {s:?}: expected a size (256K, 1M)"))
    };
    let me = std::env::current_exe().context("find the running executable")?;
    let opts = DrillOptions {
        dir: args.dir.clone(),
        run_for: dur(&args.run_for, "run-for")?,
        rate: size(&args.rate, "rate")?,
        log_size: size(&args.log_size, "log-size")?,
        groups: args.groups,
        grace: dur(&args.grace, "grace")?,
        wipe_backup_host: args.wipe_backup_host,
        collectors: args.collectors,
        threads: args.threads,
        seed: args.seed,
        seal_interval: dur(&args.seal_interval, "seal-interval")?,
        s3: s3_target(args)?,
        programs: Programs::beside(&me)?,
    };
    if opts.groups < 2 || opts.log_size < 64 << 10 || opts.rate == 0 {
        bail!("--groups must be at least 2, --log-size at least 64K, --rate above 0");
    }
    let json = args.json;
    let mut say = |line: &str| {
        if json {
            eprintln!("{line}");
        } else {
            println!("{line}");
        }
    };
    let report = crate::drill::run(&opts, &mut say)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.render());
        println!("report: {}", report.dir.join("drill-report.json").display());
    }
    Ok(if report.pass {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
