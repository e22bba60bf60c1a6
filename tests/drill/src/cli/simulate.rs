//! `redovault simulate`: a simulated Oracle instance writing real-format online and archived
//! redo logs, with a ground-truth journal (see [`redovault_drill::simulate`]).

use redovault_redo::position::DbId;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use redovault_redo::writer::{BlockSize, Compat, Endian, ScnForm};

use redovault::config::parse_size;
use redovault_drill::simulate::workload::Mix;
use redovault_drill::simulate::{Rate, SimConfig, run as run_sim};

/// Arguments of `redovault simulate`.
#[derive(Debug, clap::Args)]
pub struct SimulateArgs {
    /// Output directory: `online/`, `archive/` and `journal.jsonl` are written here.
    #[arg(long)]
    pub dir: PathBuf,
    /// Redo threads (RAC instances); SCNs come from one shared clock.
    #[arg(long, default_value_t = 1)]
    pub threads: u16,
    /// Online log groups per thread, reused round-robin.
    #[arg(long, default_value_t = 3)]
    pub groups: u32,
    /// Size of each online log (K/M/G suffixes), at least 64K.
    #[arg(long, default_value = "1M")]
    pub log_size: String,
    /// Redo block size: 512, 1024 or 4096.
    #[arg(long, default_value_t = 512)]
    pub block_size: u32,
    /// Byte order: little or big.
    #[arg(long, default_value = "little")]
    pub endian: String,
    /// Compatibility version written in the log header, e.g. 11.2.0.4, 12.1.0.2, 19.0, 23.6.
    #[arg(long = "db-version", visible_alias = "compat", default_value = "23.6")]
    pub db_version: String,
    /// Header SCN form: small or big (default: big from 12.2 on).
    #[arg(long)]
    pub scn_form: Option<String>,
    /// Redo rate: bytes per second (`1M`, `256K`) or transactions per second (`50tx`).
    #[arg(long, default_value = "1M")]
    pub rate: String,
    /// Do not sleep: run as fast as possible (timestamps still follow the rate).
    #[arg(long)]
    pub fast: bool,
    /// Stop after this much simulated time (`90`, `30s`, `5m`, `1h`).
    #[arg(long)]
    pub duration: Option<String>,
    /// Stop after this many log switches (all threads together).
    #[arg(long)]
    pub switches: Option<u64>,
    /// Stop after this many ended transactions (commits and rollbacks).
    #[arg(long)]
    pub transactions: Option<u64>,
    /// RNG seed: the same seed and start time give the same bytes.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Start of the simulated clock: RFC 3339, Unix seconds, or `now`.
    #[arg(long, default_value = "2026-03-07T00:00:00Z")]
    pub start_time: String,
    /// First SCN.
    #[arg(long, default_value_t = 2_000_000)]
    pub start_scn: u64,
    /// Log sequence of each thread's first log.
    #[arg(long, default_value_t = 1)]
    pub start_sequence: u32,
    /// Database name.
    #[arg(long, default_value = "FREE")]
    pub db_name: String,
    /// Database id.
    #[arg(long, default_value_t = 1_497_016_494)]
    pub db_id: u32,
    /// Percent of transactions that roll back.
    #[arg(long, default_value_t = 10)]
    pub rollback_pct: u32,
    /// Percent of transactions that are long (tens to hundreds of changes, spanning switches).
    #[arg(long, default_value_t = 5)]
    pub long_pct: u32,
    /// fsync the online log after every LWN.
    #[arg(long)]
    pub fsync: bool,
    /// At the end, switch and archive every current log too.
    #[arg(long)]
    pub archive_current: bool,
    /// Simulate a database without supplemental logging (5.1 vectors without the
    /// supplemental-log section, which log-based CDC readers need).
    #[arg(long)]
    pub no_supplemental_log: bool,
    /// Switch a log once it is this old in simulated time (like `ARCHIVE_LAG_TARGET`).
    #[arg(long)]
    pub switch_interval: Option<String>,
}

fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    let (num, mult) = match s.char_indices().last() {
        Some((i, 's')) => (&s[..i], 1),
        Some((i, 'm')) => (&s[..i], 60),
        Some((i, 'h')) => (&s[..i], 3600),
        _ => (s, 1),
    };
    let v: f64 = num.trim().parse().ok()?;
    (v.is_finite() && v >= 0.0).then(|| Duration::from_secs_f64(v * f64::from(mult)))
}

fn parse_start(s: &str) -> anyhow::Result<i64> {
    if s == "now" {
        return Ok(chrono::Utc::now().timestamp());
    }
    if let Ok(v) = s.parse::<i64>() {
        return Ok(v);
    }
    Ok(chrono::DateTime::parse_from_rfc3339(s)
        .with_context(|| format!("--start-time {s:?} is not RFC 3339, Unix seconds or now"))?
        .timestamp())
}

/// Builds the simulation settings from the command line.
pub fn config(args: &SimulateArgs) -> anyhow::Result<SimConfig> {
    let mut c = SimConfig::new(&args.dir);
    c.threads = args.threads;
    c.groups = args.groups;
    c.log_size =
        parse_size(&args.log_size).with_context(|| format!("--log-size {:?}", args.log_size))?;
    c.block_size = BlockSize::from_bytes(args.block_size)
        .with_context(|| format!("--block-size {} is not 512, 1024 or 4096", args.block_size))?;
    c.endian = match args.endian.as_str() {
        "little" | "le" => Endian::Little,
        "big" | "be" => Endian::Big,
        other => bail!("--endian {other:?} is not little or big"),
    };
    c.compat = Compat::parse(&args.db_version).with_context(|| {
        format!(
            "--db-version {:?} is not a version like 19.0 or 11.2.0.4",
            args.db_version
        )
    })?;
    c.scn_form = match args.scn_form.as_deref() {
        None => None,
        Some("small") => Some(ScnForm::Small),
        Some("big") => Some(ScnForm::Big),
        Some(other) => bail!("--scn-form {other:?} is not small or big"),
    };
    c.rate = Rate::parse(&args.rate).with_context(|| format!("--rate {:?}", args.rate))?;
    c.realtime = !args.fast;
    c.duration = match &args.duration {
        Some(d) => Some(parse_duration(d).with_context(|| format!("--duration {d:?}"))?),
        None => None,
    };
    c.switch_interval = match &args.switch_interval {
        Some(d) => Some(parse_duration(d).with_context(|| format!("--switch-interval {d:?}"))?),
        None => None,
    };
    c.switches = args.switches;
    c.transactions = args.transactions;
    c.seed = args.seed;
    c.start_time = parse_start(&args.start_time)?;
    c.start_scn = args.start_scn;
    c.start_sequence = args.start_sequence;
    c.db_name = args.db_name.clone();
    c.db_id = DbId(args.db_id);
    c.mix = Mix {
        rollback_pct: args.rollback_pct,
        long_pct: args.long_pct,
        ..Mix::default()
    };
    c.fsync = args.fsync;
    c.archive_current = args.archive_current;
    c.supplemental_log = !args.no_supplemental_log;
    Ok(c)
}

/// Runs `redovault simulate` and prints a JSON summary on stdout.
pub fn run(args: &SimulateArgs) -> anyhow::Result<ExitCode> {
    let cfg = config(args)?;
    if cfg.duration.is_none() && cfg.switches.is_none() && cfg.transactions.is_none() {
        tracing::info!("no --duration, --switches or --transactions: running until stopped");
    }
    let summary = run_sim(cfg).context("simulation failed")?;
    println!("{}", serde_json::to_string(&summary)?);
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_start_times() {
        assert_eq!(parse_duration("90"), Some(Duration::from_secs(90)));
        assert_eq!(parse_duration("2m"), Some(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_duration("0.5s"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("x"), None);
        assert_eq!(parse_start("1772847880").ok(), Some(1_772_847_880));
        assert_eq!(
            parse_start("2026-03-07T01:44:40Z").ok(),
            Some(1_772_847_880)
        );
        assert!(parse_start("yesterday").is_err());
    }
}
