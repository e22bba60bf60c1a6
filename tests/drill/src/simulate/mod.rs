//! A simulated Oracle instance that writes real-format redo the way LGWR and ARCn do.
//!
//! [`Simulator`] runs one or more redo threads (RAC-like: one redo stream per instance, SCNs
//! from one shared clock). Each thread has `groups` online log files in `DIR/online/`
//! (`redo_t<thread>_g<group>.log`), created at full size with block 0 written and the rest
//! zero. The current log is written as LGWR does:
//!
//! - block 1 first (next SCN none, nab `0xFFFFFFFF`), made durable;
//! - LWN after LWN appended in place ([`redovault_redo::writer::LogWriter::append_lwn`]); an
//!   LWN is written when a transaction commits or when enough redo is buffered, optionally
//!   fsynced (`fsync`);
//! - on a switch (the next LWN does not fit), block 1 of the old log gets next SCN, next time
//!   and nab; the log is archived (as ARCn: the first nab blocks, block 0 saying nab − 1
//!   blocks, written to `DIR/archive/arch%t_%s_%r.dbf.tmp`, fsynced, renamed to
//!   `arch%t_%s_%r.dbf`, directory fsynced); the next group is reused round-robin **without
//!   zeroing**, so blocks beyond its write point still carry the previous cycle's sequence.
//!
//! Every ended transaction is appended to `DIR/journal.jsonl` ([`journal::JournalEntry`])
//! after the LWN holding its 5.4 is written. The run is deterministic given the seed and the
//! start time: the clock is simulated (redo bytes or transactions per second); with
//! `realtime` the simulator also sleeps so that the simulated clock does not run ahead of the
//! wall clock.
//!
//! Other parts' tests can drive it in-process ([`Simulator::start`], [`Simulator::step`],
//! [`Simulator::switch_logfile`], [`Simulator::finish`]) or run it whole:
//!
//! ```
//! use redovault_drill::simulate::{SimConfig, run};
//!
//! let dir = tempfile::tempdir()?;
//! let mut cfg = SimConfig::new(dir.path());
//! cfg.log_size = 64 * 1024;
//! cfg.switches = Some(2);
//! let summary = run(cfg)?;
//! assert_eq!(summary.archived.len(), 2); // archive/arch1_1_<resetlogs>.dbf, arch1_2_...
//! assert!(dir.path().join("journal.jsonl").exists());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod journal;
pub mod workload;

use std::fs::{self, File, OpenOptions};
use std::io::{BufWriter, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use redovault::config::parse_size;
use redovault_redo::position::{DbId, LogSeq, ResetlogsId, Scn, ThreadId};
use redovault_redo::writer::{
    BlockSize, Compat, Endian, LogConfig, LogWriter, Lwn, Record, ScnForm, VectorBuilder,
    WriterError, redo_time_from_unix,
};

use journal::{JournalEntry, iso8601};
use workload::{Clock, EndedTx, Mix, Table, ThreadTxns, Workload};

/// How fast the simulated database generates redo (the simulated clock's pace).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rate {
    /// Redo bytes per second.
    BytesPerSec(u64),
    /// Ended transactions per second.
    TxPerSec(u64),
}

impl Rate {
    /// Parses `1M`, `500K`, `65536` (bytes per second) or `20tx` (transactions per second).
    pub fn parse(s: &str) -> Option<Rate> {
        let s = s.trim();
        if let Some(n) = s.strip_suffix("tx") {
            return n.trim().parse().ok().filter(|&n| n > 0).map(Rate::TxPerSec);
        }
        parse_size(s).filter(|&n| n > 0).map(Rate::BytesPerSec)
    }
}

/// A copy of an Oracle datafile as a DBA might leave one in an archive destination (named
/// `*.dbf` like the archived logs): block 0 in the layout every Oracle file shares, with the
/// data-file format byte 0xA2 and an 8 KiB block size, then `blocks` blocks of table data.
/// Not a redo log: the watcher must leave it alone.
pub fn datafile_copy(blocks: u32) -> Vec<u8> {
    const BS: usize = 8192;
    let mut file = vec![0u8; BS];
    file[1] = 0xA2;
    file[4..8].copy_from_slice(&0xFFC0_0000u32.to_le_bytes());
    file[20..24].copy_from_slice(&(BS as u32).to_le_bytes());
    file[24..28].copy_from_slice(&blocks.to_le_bytes());
    file[28..32].copy_from_slice(&[0x7D, 0x7C, 0x7B, 0x7A]);
    file.extend(std::iter::repeat_n(0x5Au8, BS * blocks as usize));
    file
}

/// Everything a simulation run needs.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Output directory: `online/`, `archive/` and `journal.jsonl` go here.
    pub dir: PathBuf,
    /// Redo threads (RAC instances), numbered from 1.
    pub threads: u16,
    /// Online log groups per thread (at least 2).
    pub groups: u32,
    /// Size of one online log in bytes (block 0 not counted), at least 64 KiB.
    pub log_size: u64,
    /// Redo block size.
    pub block_size: BlockSize,
    /// Byte order.
    pub endian: Endian,
    /// Compatibility version (11.2 → 24-byte vector headers; 12.1+ → 32; 23+ → commit time).
    pub compat: Compat,
    /// Form of the header SCNs; `None` chooses big from 12.2 on, small before.
    pub scn_form: Option<ScnForm>,
    /// Pace of the simulated clock.
    pub rate: Rate,
    /// Sleep so that the simulated clock keeps to the wall clock.
    pub realtime: bool,
    /// Stop after this much simulated time.
    pub duration: Option<Duration>,
    /// Stop after this many log switches (all threads together).
    pub switches: Option<u64>,
    /// Stop after this many ended transactions (commits and rollbacks).
    pub transactions: Option<u64>,
    /// RNG seed.
    pub seed: u64,
    /// Unix time the simulated clock starts at.
    pub start_time: i64,
    /// First SCN handed out.
    pub start_scn: u64,
    /// Log sequence of each thread's first log.
    pub start_sequence: u32,
    /// Database id.
    pub db_id: DbId,
    /// Database name (ASCII, at most 8 bytes).
    pub db_name: String,
    pub activation_id: u32,
    /// fsync the online log after every LWN (headers and archives are always fsynced).
    pub fsync: bool,
    /// At the end, switch and archive every thread's current log too.
    pub archive_current: bool,
    /// Switch a thread's log once it is this old (simulated seconds), like Oracle's
    /// `ARCHIVE_LAG_TARGET`; a log without redo is not switched.
    pub switch_interval: Option<Duration>,
    /// Buffered redo (bytes) that makes LGWR write an LWN without a commit.
    pub lwn_bytes: usize,
    /// Transaction mix.
    pub mix: Mix,
    /// Tables the workload changes.
    pub tables: Vec<Table>,
    /// The database logs supplemental data (the default, as at every site that runs a CDC
    /// tool): each 5.1 ends with the supplemental-log section.
    pub supplemental_log: bool,
}

impl SimConfig {
    /// Defaults: 1 thread, 3 groups of 1 MiB, 512-byte little-endian 23.6 logs, 1 MiB/s,
    /// seed 0, start 2026-03-07T00:00:00Z, SCN 2 000 000, no stop limit.
    pub fn new(dir: impl Into<PathBuf>) -> SimConfig {
        SimConfig {
            dir: dir.into(),
            threads: 1,
            groups: 3,
            log_size: 1 << 20,
            block_size: BlockSize::B512,
            endian: Endian::Little,
            compat: Compat::V23_6,
            scn_form: None,
            rate: Rate::BytesPerSec(1 << 20),
            realtime: false,
            duration: None,
            switches: None,
            transactions: None,
            seed: 0,
            start_time: 1_772_841_600,
            start_scn: 2_000_000,
            start_sequence: 1,
            db_id: DbId(1_497_016_494),
            db_name: "FREE".into(),
            activation_id: 0x593A_4BAE,
            fsync: false,
            archive_current: false,
            switch_interval: None,
            lwn_bytes: 8192,
            mix: Mix::default(),
            tables: workload::default_tables(),
            supplemental_log: true,
        }
    }

    /// Resetlogs id: the redo time of a RESETLOGS 90 days before the start.
    pub fn resetlogs_id(&self) -> u32 {
        redo_time_from_unix(self.start_time - 90 * 86_400).unwrap_or(1)
    }

    fn log_blocks(&self) -> u32 {
        (self.log_size / self.block_size.bytes() as u64).min(u64::from(u32::MAX - 1)) as u32
    }

    fn check(&self) -> Result<(), SimError> {
        let bad = |m: &str| Err(SimError::Config(m.to_string()));
        if self.threads == 0 || self.threads > 64 {
            return bad("threads must be 1..=64");
        }
        if self.groups < 2 {
            return bad("at least 2 online log groups per thread are needed");
        }
        if self.log_size < 64 * 1024 {
            return bad("log size must be at least 64 KiB");
        }
        if self.tables.is_empty() {
            return bad("at least one table is needed");
        }
        if self.mix.rollback_pct > 100 || self.mix.long_pct > 100 || self.mix.max_open == 0 {
            return bad("percentages must be 0..=100 and max_open at least 1");
        }
        if !self.db_name.is_ascii() || self.db_name.len() > 8 {
            return bad("database name must be ASCII and at most 8 bytes");
        }
        if self.start_scn == 0 || self.start_scn > Scn::MAX_SMALL / 2 {
            return bad("start SCN must be in 1..2^46");
        }
        redo_time_from_unix(self.start_time)?;
        Ok(())
    }
}

/// What a simulation did.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Summary {
    /// Log switches (all threads).
    pub switches: u64,
    /// Committed transactions.
    pub commits: u64,
    /// Rolled-back transactions.
    pub rollbacks: u64,
    /// Transactions still open at the end (their redo is written, their end is not).
    pub open_transactions: u64,
    /// Redo records written.
    pub records: u64,
    /// LWNs written.
    pub lwns: u64,
    /// Archived logs, in the order written.
    pub archived: Vec<PathBuf>,
    /// The current online log of each thread at the end (thread, sequence, file).
    pub current: Vec<(u16, u32, PathBuf)>,
    /// Simulated seconds elapsed.
    pub simulated_seconds: f64,
}

/// Errors of the simulator.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// A setting is out of range.
    #[error("invalid simulation setting: {0}")]
    Config(String),
    /// A file operation failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The writer refused to build redo.
    #[error("redo writer: {0}")]
    Writer(#[from] WriterError),
    /// The journal could not be encoded.
    #[error("journal: {0}")]
    Journal(#[from] serde_json::Error),
}

fn io_err(op: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> SimError {
    let path = path.to_path_buf();
    move |source| SimError::Io { op, path, source }
}

/// One redo thread: its online logs, its writer and its transactions.
struct ThreadSim {
    thread: ThreadId,
    files: Vec<(PathBuf, File)>,
    group: usize,
    writer: LogWriter,
    vb: VectorBuilder,
    txns: ThreadTxns,
    pending: Vec<Record>,
    pending_bytes: usize,
    /// Ended transactions whose 5.4 is in `pending`, with the record index.
    pending_ends: Vec<(usize, EndedTx)>,
}

/// A running simulation (see the module docs).
pub struct Simulator {
    cfg: SimConfig,
    rng: StdRng,
    clock: Clock,
    workload: Workload,
    threads: Vec<ThreadSim>,
    journal: BufWriter<File>,
    journal_path: PathBuf,
    redo_bytes: u128,
    ended_count: u64,
    summary: Summary,
    wall_start: Instant,
    /// Runs in the middle of the next LWN write (see [`Simulator::tear_next_lwn`]).
    tear: Option<Box<dyn FnOnce() + Send + Sync>>,
}

impl Simulator {
    /// Creates the directories and online logs and opens each thread's first log.
    pub fn start(cfg: SimConfig) -> Result<Simulator, SimError> {
        cfg.check()?;
        let online = cfg.dir.join("online");
        let archive = cfg.dir.join("archive");
        for d in [&cfg.dir, &online, &archive] {
            fs::create_dir_all(d).map_err(io_err("create directory", d))?;
        }
        let journal_path = cfg.dir.join("journal.jsonl");
        // Never overwrite an earlier run: its archives may already be shipped.
        let used = journal_path.exists()
            || fs::read_dir(&archive)
                .map_err(io_err("list", &archive))?
                .next()
                .is_some();
        if used {
            return Err(SimError::Config(format!(
                "{} already holds a simulation (journal or archived logs); use an empty directory",
                cfg.dir.display()
            )));
        }
        let jf = File::create(&journal_path).map_err(io_err("create", &journal_path))?;
        let mut rng = StdRng::seed_from_u64(cfg.seed);
        let mut clock = Clock::new(cfg.start_scn);
        let scn_form = cfg
            .scn_form
            .unwrap_or(if cfg.compat >= Compat(0x0C20_0000) {
                ScnForm::Big
            } else {
                ScnForm::Small
            });
        let con_uid = if cfg.compat.has_containers() {
            1_385_559_638
        } else {
            0
        };
        let mut threads = Vec::with_capacity(usize::from(cfg.threads));
        for t in 1..=cfg.threads {
            let lc = LogConfig {
                block_size: cfg.block_size,
                endian: cfg.endian,
                compat: cfg.compat,
                scn_form,
                db_id: cfg.db_id,
                db_name: cfg.db_name.clone(),
                thread: ThreadId(t),
                sequence: LogSeq(cfg.start_sequence),
                resetlogs_id: ResetlogsId(cfg.resetlogs_id()),
                resetlogs_scn: Scn(cfg.start_scn / 2),
                activation_id: cfg.activation_id,
                first_scn: clock.tick(),
                first_time: cfg.start_time,
                log_blocks: cfg.log_blocks(),
                con_uid,
                file_number: 1,
                control_seq: 1000,
            };
            let writer = LogWriter::new(lc)?;
            let mut files = Vec::new();
            let total = (u64::from(cfg.log_blocks()) + 1) * cfg.block_size.bytes() as u64;
            for g in 1..=cfg.groups {
                let path = online.join(format!("redo_t{t}_g{g}.log"));
                let f = OpenOptions::new()
                    .read(true)
                    .write(true)
                    .create(true)
                    .truncate(true)
                    .open(&path)
                    .map_err(io_err("create", &path))?;
                f.set_len(total).map_err(io_err("size", &path))?;
                f.write_all_at(&writer.file_header(), 0)
                    .map_err(io_err("write", &path))?;
                f.sync_all().map_err(io_err("fsync", &path))?;
                files.push((path, f));
            }
            let vb = VectorBuilder {
                endian: cfg.endian,
                compat: cfg.compat,
                con_id: if cfg.compat.has_containers() { 3 } else { 0 },
                con_uid,
                undo_afn: 3 + t,
                supplemental_log: cfg.supplemental_log,
            };
            let sqn_base = rng.gen_range(100..5000);
            let ts = ThreadSim {
                thread: ThreadId(t),
                files,
                group: 0,
                writer,
                vb,
                txns: ThreadTxns::new(1 + (t - 1) * 10, sqn_base),
                pending: Vec::new(),
                pending_bytes: 0,
                pending_ends: Vec::new(),
            };
            write_current_header(&ts)?;
            threads.push(ts);
        }
        sync_dir(&cfg.dir);
        sync_dir(&online);
        let workload = Workload::new(cfg.tables.clone(), cfg.mix);
        Ok(Simulator {
            cfg,
            rng,
            clock,
            workload,
            threads,
            journal: BufWriter::new(jf),
            journal_path,
            redo_bytes: 0,
            ended_count: 0,
            summary: Summary::default(),
            wall_start: Instant::now(),
            tear: None,
        })
    }

    /// Makes the next LWN write torn for a while: it is written in two parts, split in the
    /// middle of its first block, and `during` runs between the two (a reader meanwhile sees
    /// that block with a bad checksum, as when it reads while LGWR writes).
    pub fn tear_next_lwn(&mut self, during: impl FnOnce() + Send + Sync + 'static) {
        self.tear = Some(Box::new(during));
    }

    /// Where thread `thread` (from 1) writes now: its log sequence and the first block not
    /// written yet in that log.
    pub fn write_position(&self, thread: u16) -> Option<(LogSeq, u32)> {
        let th = self.threads.get(usize::from(thread).checked_sub(1)?)?;
        Some((th.writer.config().sequence, th.writer.next_block()))
    }

    /// Simulated time since the start, in microseconds.
    fn elapsed_us(&self) -> u128 {
        match self.cfg.rate {
            Rate::BytesPerSec(r) => self.redo_bytes * 1_000_000 / u128::from(r.max(1)),
            Rate::TxPerSec(r) => u128::from(self.ended_count) * 1_000_000 / u128::from(r.max(1)),
        }
    }

    /// The simulated Unix time now.
    pub fn now(&self) -> i64 {
        self.cfg.start_time + (self.elapsed_us() / 1_000_000) as i64
    }

    /// The simulated Unix time now, to the microsecond (the journal's commit times are this
    /// clock in whole seconds, rounded down).
    pub fn now_precise(&self) -> f64 {
        self.cfg.start_time as f64 + self.elapsed_us() as f64 / 1e6
    }

    /// How far the simulated clock is behind the wall clock since the start (zero while it
    /// keeps up; with `realtime` it never runs ahead).
    pub fn behind_wall_clock(&self) -> Duration {
        let sim = Duration::from_micros(u64::try_from(self.elapsed_us()).unwrap_or(u64::MAX));
        self.wall_start.elapsed().saturating_sub(sim)
    }

    /// True when one of the configured limits is reached.
    pub fn done(&self) -> bool {
        self.cfg.transactions.is_some_and(|n| self.ended_count >= n)
            || self
                .cfg
                .switches
                .is_some_and(|n| self.summary.switches >= n)
            || self
                .cfg
                .duration
                .is_some_and(|d| self.elapsed_us() >= d.as_micros())
    }

    /// One step of one (random) thread: a begin, a row change or an end, written as LGWR
    /// would (an LWN on commit or when enough redo is buffered).
    pub fn step(&mut self) -> Result<(), SimError> {
        let t = self.rng.gen_range(0..self.threads.len());
        let now = self.now();
        let th = &mut self.threads[t];
        let step = self
            .workload
            .step(&mut self.rng, &mut th.txns, &th.vb, &mut self.clock, now);
        let n = step.records.len();
        let mut ended = step.ended;
        for (i, rec) in step.records.into_iter().enumerate() {
            let len = 24
                + rec
                    .vectors
                    .iter()
                    .map(|v| v.encoded_len(self.cfg.compat))
                    .sum::<Result<usize, _>>()?;
            let th = &mut self.threads[t];
            th.pending.push(rec);
            th.pending_bytes += len;
            let last = i + 1 == n;
            if last && let Some(e) = ended.take() {
                let idx = th.pending.len() - 1;
                th.pending_ends.push((idx, e));
                self.flush(t)?;
                self.ended_count += 1;
            } else if th.pending_bytes >= self.cfg.lwn_bytes {
                self.flush(t)?;
            }
            self.redo_bytes += len as u128;
        }
        self.lag_switches()?;
        if self.cfg.realtime {
            let target = Duration::from_micros(self.elapsed_us().min(u128::from(u64::MAX)) as u64);
            let real = self.wall_start.elapsed();
            if target > real {
                std::thread::sleep(target - real);
            }
        }
        Ok(())
    }

    /// Writes thread `t`'s buffered records as one LWN, switching logs first if it does not fit.
    fn flush(&mut self, t: usize) -> Result<(), SimError> {
        if self.threads[t].pending.is_empty() {
            return Ok(());
        }
        let now = self.now();
        let th = &mut self.threads[t];
        let records = std::mem::take(&mut th.pending);
        th.pending_bytes = 0;
        let lwn = Lwn {
            scn: records[0].scn,
            time: now,
            records,
        };
        let needed = th.writer.lwn_blocks(&lwn)?;
        if needed > u64::from(th.writer.remaining_blocks()) {
            // The new log starts at the first SCN not yet written.
            let next = lwn.scn;
            self.switch(t, next, now)?;
        }
        let bs = self.cfg.block_size.bytes() as u64;
        let th = &mut self.threads[t];
        let out = th.writer.append_lwn(&lwn)?;
        let (path, file) = &th.files[th.group];
        let at = u64::from(out.first_block) * bs;
        if let Some(during) = self.tear.take() {
            let half = (bs / 2) as usize;
            file.write_all_at(&out.bytes[..half], at)
                .map_err(io_err("write", path))?;
            during();
            file.write_all_at(&out.bytes[half..], at + half as u64)
                .map_err(io_err("write", path))?;
        } else {
            file.write_all_at(&out.bytes, at)
                .map_err(io_err("write", path))?;
        }
        if self.cfg.fsync {
            file.sync_data().map_err(io_err("fsync", path))?;
        }
        self.summary.lwns += 1;
        self.summary.records += out.records.len() as u64;
        let ends = std::mem::take(&mut th.pending_ends);
        let thread = th.thread.0;
        for (idx, e) in ends {
            let Some(rba) = out.records.get(idx) else {
                continue;
            };
            if e.rollback {
                self.summary.rollbacks += 1;
            } else {
                self.summary.commits += 1;
            }
            let entry = JournalEntry {
                xid: e.xid.to_string(),
                usn: e.xid.usn,
                slot: e.xid.slot,
                sqn: e.xid.sqn,
                thread,
                sequence: rba.seq.0,
                scn: e.scn.0,
                time: iso8601(e.time),
                unix_time: e.time,
                rollback: e.rollback,
                block: rba.block,
                offset: rba.offset,
                begin_scn: e.begin_scn.0,
                table: e.table,
                data_object_id: e.data_obj,
                row_ids: e.rows.iter().map(|r| r.to_oracle_string()).collect(),
                op_count: e.counts.iter().sum(),
                inserts: e.counts[0],
                updates: e.counts[1],
                deletes: e.counts[2],
                long: e.long,
            };
            serde_json::to_writer(&mut self.journal, &entry)?;
            self.journal
                .write_all(b"\n")
                .map_err(io_err("write", &self.journal_path))?;
        }
        self.journal
            .flush()
            .map_err(io_err("write", &self.journal_path))?;
        if self.cfg.fsync {
            self.journal
                .get_ref()
                .sync_data()
                .map_err(io_err("fsync", &self.journal_path))?;
        }
        Ok(())
    }

    /// Switches thread `t` to its next group: finishes the old log's header, archives it and
    /// starts the next sequence at `next_scn`.
    fn switch(&mut self, t: usize, next_scn: Scn, now: i64) -> Result<(), SimError> {
        let bs = self.cfg.block_size.bytes() as u64;
        let archive_dir = self.cfg.dir.join("archive");
        let th = &mut self.threads[t];
        let hdr = th.writer.switched_header(next_scn, now)?;
        let (path, file) = &th.files[th.group];
        file.write_all_at(&hdr, bs).map_err(io_err("write", path))?;
        file.sync_all().map_err(io_err("fsync", path))?;
        // ARCn: copy the first nab blocks, block 0 counting nab - 1.
        let c = th.writer.config().clone();
        let nab = u64::from(th.writer.next_block());
        let mut buf = vec![0u8; (nab * bs) as usize];
        file.read_exact_at(&mut buf, 0)
            .map_err(io_err("read", path))?;
        buf[..bs as usize].copy_from_slice(&th.writer.archive_file_header());
        let name = format!("arch{}_{}_{}.dbf", c.thread.0, c.sequence.0, c.resetlogs_id);
        let tmp = archive_dir.join(format!("{name}.tmp"));
        let dst = archive_dir.join(&name);
        {
            let mut f = File::create(&tmp).map_err(io_err("create", &tmp))?;
            f.write_all(&buf).map_err(io_err("write", &tmp))?;
            f.sync_all().map_err(io_err("fsync", &tmp))?;
        }
        fs::rename(&tmp, &dst).map_err(io_err("rename", &tmp))?;
        sync_dir(&archive_dir);
        self.summary.archived.push(dst);
        // The next group, reused without zeroing.
        let group = (th.group + 1) % th.files.len();
        let mut next = c;
        next.sequence = LogSeq(next.sequence.0 + 1);
        next.first_scn = next_scn;
        next.first_time = now;
        next.control_seq += 4;
        next.file_number = group as u16 + 1;
        th.writer = LogWriter::new(next)?;
        th.group = group;
        write_current_header(th)?;
        self.summary.switches += 1;
        Ok(())
    }

    /// `ALTER SYSTEM ARCHIVE LOG CURRENT`: writes every thread's buffered redo, then switches
    /// and archives every thread's current log.
    pub fn switch_logfile(&mut self) -> Result<(), SimError> {
        for t in 0..self.threads.len() {
            self.flush(t)?;
            let next = self.clock.tick();
            let now = self.now();
            self.switch(t, next, now)?;
        }
        Ok(())
    }

    /// Switches the logs that are older than the switch interval and hold redo.
    fn lag_switches(&mut self) -> Result<(), SimError> {
        let Some(interval) = self.cfg.switch_interval else {
            return Ok(());
        };
        let now = self.now();
        let age = i64::try_from(interval.as_secs()).unwrap_or(i64::MAX).max(1);
        for t in 0..self.threads.len() {
            let w = &self.threads[t].writer;
            if w.next_block() > 2 && now.saturating_sub(w.config().first_time) >= age {
                self.flush(t)?;
                let next = self.clock.tick();
                self.switch(t, next, now)?;
            }
        }
        Ok(())
    }

    /// Writes every thread's buffered redo, optionally switches and archives the current
    /// logs, and returns the summary.
    pub fn finish(mut self) -> Result<Summary, SimError> {
        for t in 0..self.threads.len() {
            self.flush(t)?;
        }
        if self.cfg.archive_current {
            self.switch_logfile()?;
        }
        self.journal
            .flush()
            .map_err(io_err("write", &self.journal_path))?;
        self.journal
            .get_ref()
            .sync_all()
            .map_err(io_err("fsync", &self.journal_path))?;
        let mut s = self.summary.clone();
        s.open_transactions = self
            .threads
            .iter()
            .map(|t| t.txns.open_count() as u64)
            .sum();
        s.current = self
            .threads
            .iter()
            .map(|t| {
                (
                    t.thread.0,
                    t.writer.config().sequence.0,
                    t.files[t.group].0.clone(),
                )
            })
            .collect();
        s.simulated_seconds = self.elapsed_us() as f64 / 1e6;
        Ok(s)
    }
}

/// Writes block 0 and block 1 of a thread's current log (next SCN none, nab FFFFFFFF) and
/// fsyncs them: LGWR writes the header before any redo.
fn write_current_header(th: &ThreadSim) -> Result<(), SimError> {
    let bs = th.writer.config().block_size.bytes() as u64;
    let (path, file) = &th.files[th.group];
    file.write_all_at(&th.writer.file_header(), 0)
        .map_err(io_err("write", path))?;
    file.write_all_at(&th.writer.current_header(), bs)
        .map_err(io_err("write", path))?;
    file.sync_all().map_err(io_err("fsync", path))
}

/// fsyncs a directory so that a rename or create in it is durable (best effort).
fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

/// Runs a whole simulation: start, steps until a limit is reached (or forever if none is set),
/// finish.
pub fn run(cfg: SimConfig) -> Result<Summary, SimError> {
    let mut sim = Simulator::start(cfg)?;
    while !sim.done() {
        sim.step()?;
    }
    sim.finish()
}

#[cfg(test)]
mod tests;
