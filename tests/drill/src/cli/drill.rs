//! `redovault drill`: the attack drill end to end on this machine (see [`redovault_drill::drill`]).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};

use redovault::config::{parse_duration, parse_size};
use redovault_drill::drill::procs::Programs;
use redovault_drill::drill::{DrillOptions, S3Target};

/// Arguments of `redovault drill`.
#[derive(Debug, clap::Args)]
pub struct DrillArgs {
    /// The drill's directory (an earlier drill in it is replaced).
    #[arg(long, default_value = "redovault-drill")]
    pub dir: PathBuf,
    /// How long the database runs before the attack (`8s`, `1m`). `--duration` is the same
    /// option (issue 19's word for it).
    #[arg(long, visible_alias = "duration", default_value = "8s")]
    pub run_for: String,
    /// Redo per second the database writes to its online log (`256K`, `10M`; default 256K per
    /// database): what the extractor streams to the collector and, as each log switches, what
    /// the watcher ships to WORM; with `--databases`, what they write together.
    /// `--online-rate` is the same option.
    #[arg(long, visible_alias = "online-rate")]
    pub rate: Option<String>,
    /// Archived redo per second. Every database of the drill archives exactly the redo it
    /// writes online: given alone, it sets the rate; with a different `--rate`
    /// (`--online-rate`) it is refused, since an archive rate above the online rate needs
    /// databases whose redo is only archived (no extractor), which the drill does not run.
    #[arg(long)]
    pub archive_rate: Option<String>,
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
    /// Databases attacked at the same moment (1..=16), each with its own database host
    /// (watcher, extractors) and backup host (collector), all in one WORM store: `--rate` is
    /// what they write together, each an equal share; the verdict passes only when every
    /// database's does (without `--rate`: 256K each). Each database's drill is in
    /// `DIR/db<i>`, the fleet's report in `DIR/fleet-report.json`.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=16))]
    pub databases: u16,
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

/// The redo rate of all the databases together from `--rate` (`--online-rate`) and
/// `--archive-rate`: a database archives what it writes online, so the two must agree when
/// both are given; neither: 256K per database (a share smaller than that leaves a paper table
/// short of its ten transactions in a drill of a few seconds).
fn drill_rate(online: Option<&str>, archive: Option<&str>, databases: u16) -> anyhow::Result<u64> {
    let size = |s: &str, what: &str| {
        parse_size(s).with_context(|| format!("--{what} {s:?}: expected a size (256K, 10M)"))
    };
    let online = online.map(|s| size(s, "online-rate")).transpose()?;
    let archive = archive.map(|s| size(s, "archive-rate")).transpose()?;
    match (online, archive) {
        (Some(o), Some(a)) if o != a => bail!(
            "--archive-rate {a} differs from --online-rate {o} (bytes per second): every database of the drill archives exactly the redo it writes online; give one rate, with --databases N for several databases sharing it (an archive rate above the online rate needs archive-only databases, which the drill does not run)"
        ),
        (Some(r), _) | (None, Some(r)) => Ok(r),
        (None, None) => Ok((256 << 10) * u64::from(databases.max(1))),
    }
}

/// Runs the drill; exit 0 when every check held, 1 otherwise.
pub fn run(args: &DrillArgs) -> anyhow::Result<ExitCode> {
    let dur = |s: &str, what: &str| {
        parse_duration(s).with_context(|| format!("--{what} {s:?}: expected a duration (8s, 1m)"))
    };
    let size = |s: &str, what: &str| {
        parse_size(s).with_context(|| format!("--{what} {s:?}: expected a size (256K, 1M)"))
    };
    let rate = drill_rate(
        args.rate.as_deref(),
        args.archive_rate.as_deref(),
        args.databases,
    )?;
    // This program is installed beside `redovault` and the role programs it runs.
    let me = std::env::current_exe().context("find the running executable")?;
    let opts = DrillOptions {
        dir: args.dir.clone(),
        run_for: dur(&args.run_for, "run-for")?,
        rate,
        log_size: size(&args.log_size, "log-size")?,
        groups: args.groups,
        grace: dur(&args.grace, "grace")?,
        wipe_backup_host: args.wipe_backup_host,
        collectors: args.collectors,
        threads: args.threads,
        seed: args.seed,
        seal_interval: dur(&args.seal_interval, "seal-interval")?,
        s3: s3_target(args)?,
        programs: Programs::beside(&me.with_file_name("redovault"))?,
        member: None,
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
    if args.databases > 1 {
        let fleet = redovault_drill::drill::fleet::run(&opts, args.databases, &mut say)?;
        if json {
            println!("{}", serde_json::to_string_pretty(&fleet)?);
        } else {
            print!("{}", fleet.render());
            println!("report: {}", fleet.dir.join("fleet-report.json").display());
        }
        return Ok(exit_code(fleet.pass));
    }
    let report = redovault_drill::drill::run(&opts, &mut say)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.render());
        println!("report: {}", report.dir.join("drill-report.json").display());
    }
    Ok(exit_code(report.pass))
}

fn exit_code(pass: bool) -> ExitCode {
    if pass {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rates_agree_or_are_refused() {
        assert_eq!(drill_rate(None, None, 1).unwrap(), 256 << 10);
        assert_eq!(
            drill_rate(None, None, 4).unwrap(),
            4 * (256 << 10),
            "256K each"
        );
        assert_eq!(
            drill_rate(Some("10M"), None, 4).unwrap(),
            10 << 20,
            "together"
        );
        assert_eq!(drill_rate(None, Some("10M"), 1).unwrap(), 10 << 20);
        assert_eq!(drill_rate(Some("10M"), Some("10M"), 1).unwrap(), 10 << 20);
        let e = drill_rate(Some("10M"), Some("50M"), 1)
            .unwrap_err()
            .to_string();
        assert!(e.contains("archive-only databases"), "{e}");
        let e = drill_rate(Some("fast"), None, 1).unwrap_err().to_string();
        assert!(e.contains("--online-rate \"fast\""), "{e}");
    }

    #[test]
    fn duration_and_online_rate_are_the_same_options() {
        use clap::Parser;
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            drill: DrillArgs,
        }
        let c = Cli::parse_from(["drill", "--duration", "60s", "--online-rate", "10M"]);
        assert_eq!(c.drill.run_for, "60s");
        assert_eq!(c.drill.rate.as_deref(), Some("10M"));
        let c = Cli::parse_from(["drill", "--run-for", "30s", "--rate", "1M"]);
        assert_eq!(c.drill.run_for, "30s");
        assert_eq!(c.drill.rate.as_deref(), Some("1M"));
        assert!(Cli::try_parse_from(["drill", "--duration", "1s", "--run-for", "2s"]).is_err());
    }
}
