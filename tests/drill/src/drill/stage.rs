//! Set-up, the drill's first phase: every host's directories, the daemons' ports and
//! configuration files, this run's place in WORM, and the simulated database's shape. What it
//! fixes, the [`Stage`], every later phase reads and none changes.

use redovault_redo::position::DbId;
use std::collections::HashMap;

use redovault::store::s3::Credentials;

use super::fleet::Member;
use super::procs::free_port;
use super::setup::{self, Configs, Layout, Ports};
use super::{DrillError, DrillOptions, S3Target, paper_tables};
use crate::simulate::workload::{Table, default_tables};
use crate::simulate::{Rate, SimConfig};

/// What set-up fixed for the rest of the drill.
pub struct Stage<'a> {
    /// What was asked.
    pub opts: &'a DrillOptions,
    pub layout: Layout,
    pub ports: Ports,
    pub configs: Configs,
    /// This run's key prefix in WORM (on S3 one of its own under the target's prefix).
    pub prefix: String,
    /// Where the archived logs go, as the report names it.
    pub store_name: String,
    /// Redo threads (at least 1).
    pub threads: u16,
    /// The backup host is wiped and no other collector stands: only WORM is left.
    pub no_survivor: bool,
    /// The collector's stream of each redo thread, from thread 1.
    pub streams: Vec<String>,
    /// The database id, as `restore online --db-id` takes it.
    pub db_id: String,
    /// The database's start (Unix seconds), where the journal's commit times begin.
    pub start_time: i64,
    /// The paper's five tables.
    pub paper: Vec<Table>,
    /// Every table's name by data object id, for the replay of the recovered redo.
    pub table_names: HashMap<u32, String>,
}

impl<'a> Stage<'a> {
    /// Makes the layout, takes the ports and writes every configuration file; returns the
    /// stage and the database's configuration (started by the next phase).
    pub fn set_up(opts: &'a DrillOptions) -> Result<(Stage<'a>, SimConfig), DrillError> {
        let layout = Layout::create(&opts.dir)?;
        let replica_ports = (1..opts.collectors.max(1))
            .map(|_| Ok((free_port()?, free_port()?)))
            .collect::<Result<Vec<(u16, u16)>, DrillError>>()?;
        let ports = Ports {
            collector: free_port()?,
            collector_metrics: free_port()?,
            watcher_metrics: free_port()?,
        };
        let threads = opts.threads.max(1);
        let extractor_ports = (0..threads)
            .map(|_| free_port())
            .collect::<Result<Vec<u16>, DrillError>>()?;
        let prefix = worm_prefix(opts.s3.as_ref(), opts.member.as_ref());
        let store_name = match &opts.s3 {
            Some(t) => format!(
                "s3 {}/{}/{}",
                t.endpoint.as_str().trim_end_matches('/'),
                t.bucket,
                prefix
            ),
            None => format!(
                "local directory {} (stands in for WORM)",
                layout.vault.display()
            ),
        };
        let configs = setup::write_configs(
            &layout,
            ports,
            &extractor_ports,
            opts.groups,
            opts.s3.as_ref(),
            &prefix,
            opts.seal_interval,
            &replica_ports,
        )?;
        let sim = database(&layout, opts, threads);
        let stage = Stage {
            opts,
            ports,
            configs,
            prefix,
            store_name,
            threads,
            no_survivor: opts.wipe_backup_host && opts.collectors < 2,
            // One stream per redo thread; progress shows the first.
            streams: (1..=threads)
                .map(|t| format!("db{}-rl{}-t{t}", sim.db_id, sim.resetlogs_id()))
                .collect(),
            db_id: sim.db_id.to_string(),
            start_time: sim.start_time,
            paper: paper_tables(),
            table_names: sim
                .tables
                .iter()
                .map(|t| (t.data_obj, t.name.clone()))
                .collect(),
            layout,
        };
        Ok((stage, sim))
    }

    /// The set-up's lines: the store, the keys made on the fly, the seal intervals.
    pub fn announce(&self, say: &mut dyn FnMut(&str)) {
        let l = &self.layout;
        let seal_interval = self.opts.seal_interval;
        say(&format!("==> [1/5] set-up in {}", l.root.display()));
        say(&format!(
            "    link certificates (CA, collector, extractor) and the collector's AES-256-GCM key made on the fly; store: {}",
            self.store_name
        ));
        say(&format!(
            "    recovery key pair made on the fly: the private half offline with the recovery team ({}), the public half on the backup host; the collector seals its pieces into WORM every {} s",
            l.recovery_key().display(),
            setup::WORM_SEAL_INTERVAL.as_secs_f64()
        ));
        say(&format!(
            "    the watcher seals its manifest into WORM every {} s{}",
            seal_interval.as_secs_f64(),
            if seal_interval == setup::PRODUCTION_SEAL_INTERVAL {
                " (the production default): the logs shipped since the last seal come back from WORM by their headers and SHA-256"
            } else {
                ""
            }
        ));
    }

    /// The environment that gives a program one role's S3 keys (`role` picks them from the
    /// target); none on the local store.
    pub fn keys_env(&self, role: fn(&S3Target) -> &Credentials) -> Vec<(&str, &str)> {
        match &self.opts.s3 {
            Some(t) => vec![
                ("AWS_ACCESS_KEY_ID", role(t).access_key.as_str()),
                ("AWS_SECRET_ACCESS_KEY", role(t).secret_key.as_str()),
            ],
            None => vec![],
        }
    }
}

/// This run's key prefix in WORM: on S3 under the target's prefix, with the time and the
/// process id (runs share the bucket) and the fleet member's name; `drill` in the local directory.
fn worm_prefix(s3: Option<&S3Target>, member: Option<&Member>) -> String {
    match s3 {
        Some(t) => format!(
            "{}/drill-{}-{}{}",
            t.prefix.trim_end_matches('/'),
            chrono::Utc::now().format("%Y%m%dT%H%M%S"),
            std::process::id(),
            // The databases of one fleet run in one process, in the same second.
            member.map_or(String::new(), |m| format!("-{}", m.name()))
        ),
        None => "drill".to_string(),
    }
}

/// The simulated database: the asked rate, log size and groups, in real time, the paper's
/// tables and the background workload's.
fn database(l: &Layout, opts: &DrillOptions, threads: u16) -> SimConfig {
    let mut sim = SimConfig::new(&l.oracle);
    sim.threads = threads;
    sim.groups = opts.groups;
    sim.log_size = opts.log_size;
    sim.rate = Rate::BytesPerSec(opts.rate);
    sim.realtime = true;
    sim.seed = opts.seed;
    if opts.s3.is_some() {
        // The collector's pieces of every run share `PREFIX/streams/` (the bucket policy's
        // grant): a database id of its own keeps this run's stream apart from earlier ones'.
        sim.db_id = DbId(rand::random::<u32>() | 1);
    } else if let Some(m) = &opts.member {
        // Databases of their own, as a bank's are.
        sim.db_id = DbId(sim.db_id.0.wrapping_add(u32::from(m.index) - 1));
    }
    let mut tables = paper_tables();
    tables.extend(default_tables());
    sim.tables = tables;
    sim
}
