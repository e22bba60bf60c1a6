//! Recovery from nothing: the collectors still standing are stopped, and a fresh install
//! with read-only keys and the recovery team's key verifies WORM, restores the archived logs
//! and every thread's online log (the archived logs WORM lacks rebuilt by a collector that
//! still stands), and writes the recovery script. Each step is timed: the time budget and RTO.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::live::BackupHosts;
use super::procs::{ProcessUsage, Usage, run_measured, run_ok_measured};
use super::stage::Stage;
use super::threads::{self, ThreadRecovery};
use super::{DrillError, Evidence, RecoveryStep, setup};

/// What recovery brought back, and what it took.
pub struct Recovery {
    /// Each step and its time.
    pub steps: Vec<RecoveryStep>,
    /// Seconds from the start of recovery to the script (RTO).
    pub rto: f64,
    pub audit: Audit,
    /// Every redo thread's recovery, from thread 1.
    pub threads: Vec<ThreadRecovery>,
    /// `restore script`'s exit code (0: `recover.sql` written).
    pub script_code: i32,
    /// Where everything was restored.
    pub dest: PathBuf,
}

/// What `verify` said of WORM, the manifest and the collector.
pub struct Audit {
    /// Its verdict (`?` when it gave none).
    pub verdict: String,
    /// Its exit code.
    pub code: i32,
    /// Its findings above `info`, counted by kind.
    pub finding_kinds: BTreeMap<String, usize>,
}

/// Recovery's phase: stops the collectors, installs, verifies, restores, writes the script.
pub fn recover(
    stage: &Stage,
    backup: BackupHosts,
    evidence: &mut Evidence,
    say: &mut dyn FnMut(&str),
) -> Result<Recovery, DrillError> {
    say(&format!(
        "==> [4/5] recovery from nothing: a fresh install in {}",
        stage.layout.recovery.display()
    ));
    let t0 = Instant::now();
    let stopped = stop_collectors(backup, evidence);
    let mut install = Install::write(stage, stopped)?;
    let audit = install.verify(evidence)?;
    install.restore_archive(evidence)?;
    let mut threads = install.restore_online(evidence)?;
    install.rebuild_missing(&mut threads, evidence)?;
    for r in &mut threads {
        r.plan();
    }
    let script_code = install.script(&threads, evidence)?;
    let rto = t0.elapsed().as_secs_f64();
    for s in &install.steps {
        say(&format!(
            "    {:<40} {:>6.2} s  {}",
            s.step, s.seconds, s.detail
        ));
    }
    say(&format!("    {:<40} {:>6.2} s", "total (RTO)", rto));
    Ok(Recovery {
        steps: install.steps,
        rto,
        audit,
        threads,
        script_code,
        dest: install.dest,
    })
}

/// Stops the collectors still running (each one's cost read as it ends); whether the first
/// backup host's stopped cleanly, `None` when it was wiped.
fn stop_collectors(backup: BackupHosts, evidence: &mut Evidence) -> Option<bool> {
    let stopped = backup.collector.map(|c| {
        let name = c.name.clone();
        let (clean, usage) = c.terminate_measured(Duration::from_secs(30));
        evidence.processes.push(ProcessUsage::daemon(&name, usage));
        clean
    });
    for r in backup.replicas {
        let name = format!("collector {}", r.name);
        let (_, usage) = r.terminate_measured(Duration::from_secs(30));
        evidence.processes.push(ProcessUsage::daemon(&name, usage));
    }
    stopped
}

/// The fresh install: the verifier's configuration and keys, the collector whose store it
/// reads, and the steps done so far.
struct Install<'s> {
    stage: &'s Stage<'s>,
    /// The verifier's configuration.
    verifier_config: String,
    /// The verifier's read-only keys (environment).
    env: Vec<(&'s str, &'s str)>,
    /// The configuration of the collector whose store recovery reads (the first backup
    /// host's, or a survivor's), for its rebuilds.
    collector_config: String,
    dest: PathBuf,
    steps: Vec<RecoveryStep>,
}

impl<'s> Install<'s> {
    /// The verifier's configuration with read-only keys, naming the collector's store of a
    /// backup host that still stands; `stopped`: how the first backup host's collector ended.
    fn write(stage: &'s Stage<'s>, stopped: Option<bool>) -> Result<Install<'s>, DrillError> {
        let t = Instant::now();
        let (l, cfgs) = (&stage.layout, &stage.configs);
        let first = cfgs.collector.to_string_lossy().into_owned();
        let (collector_config, survivor) =
            match (stage.opts.wipe_backup_host, cfgs.replicas.first()) {
                (false, _) => (
                    first,
                    Some((l.remote.join("store"), l.remote.join("collector.keys"))),
                ),
                (true, Some(r)) => (
                    r.config.to_string_lossy().into_owned(),
                    Some((r.store(), r.keys())),
                ),
                (true, None) => (first, None),
            };
        let vcfg =
            setup::write_verifier_config(l, stage.opts.s3.as_ref(), &stage.prefix, survivor)?;
        let mut install = Install {
            stage,
            verifier_config: vcfg.to_string_lossy().into_owned(),
            env: stage.keys_env(|t| &t.verifier),
            collector_config,
            dest: l.recovery.join("restore"),
            steps: Vec::new(),
        };
        let detail = match stopped {
            Some(clean) => format!(
                "verifier configuration with read-only keys; the collector stopped ({}); the recovery team's key",
                if clean { "cleanly" } else { "killed" }
            ),
            None if !stage.no_survivor => format!(
                "verifier configuration with read-only keys; backup host 1 is gone, the collector of {} stopped; the recovery team's key",
                cfgs.replicas.first().map_or("-", |r| r.name.as_str())
            ),
            None => "verifier configuration with read-only keys, no collector (the backup host is gone); the recovery team's key".to_string(),
        };
        install.step("install", t, detail);
        Ok(install)
    }

    fn step(&mut self, what: &str, t: Instant, detail: String) {
        self.steps.push(RecoveryStep {
            step: what.to_string(),
            seconds: t.elapsed().as_secs_f64(),
            detail,
        });
    }

    fn verifier(&self) -> &'s Path {
        &self.stage.opts.programs.verifier
    }

    /// `verify --json --html`: the audit of WORM, the manifest and the collector.
    fn verify(&mut self, evidence: &mut Evidence) -> Result<Audit, DrillError> {
        let t = Instant::now();
        let html = self.stage.layout.recovery.join("audit.html");
        let args = [
            "verify",
            "--config",
            &self.verifier_config,
            "--json",
            "--html",
            &html.to_string_lossy(),
        ];
        let (code, out, err, usage) = run_measured(self.verifier(), &args, &self.env)?;
        evidence
            .processes
            .push(ProcessUsage::recovery("verify", usage));
        let report: serde_json::Value = serde_json::from_str(&out).map_err(|e| {
            DrillError::Step(format!(
                "redovault-verifier verify (exit {code}) printed no JSON report ({e}): {err}"
            ))
        })?;
        let finding_kinds: BTreeMap<String, usize> = report["findings"]
            .as_array()
            .map(|v| {
                v.iter()
                    .filter(|f| f["severity"].as_str() != Some("info"))
                    .filter_map(|f| f["kind"].as_str())
                    .fold(BTreeMap::new(), |mut m, k| {
                        *m.entry(k.to_string()).or_default() += 1;
                        m
                    })
            })
            .unwrap_or_default();
        let verdict = report["verdict"].as_str().unwrap_or("?").to_string();
        self.step(
            "verify",
            t,
            format!(
                "verdict {verdict} (exit {code}), findings {finding_kinds:?}, report {}",
                html.display()
            ),
        );
        Ok(Audit {
            verdict,
            code,
            finding_kinds,
        })
    }

    /// `restore archive`: every archived log from WORM.
    fn restore_archive(&mut self, evidence: &mut Evidence) -> Result<(), DrillError> {
        let t = Instant::now();
        let dest = self.dest.to_string_lossy().into_owned();
        let args = [
            "restore",
            "archive",
            "--config",
            &self.verifier_config,
            "--dest",
            &dest,
        ];
        let (out, usage) = run_ok_measured(self.verifier(), &args, &self.env)?;
        evidence
            .processes
            .push(ProcessUsage::recovery("restore archive", usage));
        self.step("restore archive", t, out.trim().to_string());
        Ok(())
    }

    /// `restore online`: every thread's online log, always with the recovery team's key, so
    /// that the verifier can take the pieces in WORM (the only source left when the backup
    /// host is gone). One run for every thread of this database (WORM may hold other runs'
    /// databases: `--db-id`).
    fn restore_online(
        &mut self,
        evidence: &mut Evidence,
    ) -> Result<Vec<ThreadRecovery>, DrillError> {
        let stage = self.stage;
        let dest = self.dest.to_string_lossy().into_owned();
        let rkey = stage.layout.recovery_key().to_string_lossy().into_owned();
        let mut args = vec![
            "restore",
            "online",
            "--config",
            &self.verifier_config,
            "--dest",
            &dest,
            "--recovery-key",
            &rkey,
            "--db-id",
            &stage.db_id,
        ];
        if stage.configs.worm_prefix != stage.prefix {
            args.extend(["--worm-prefix", &stage.configs.worm_prefix]);
        }
        let t = Instant::now();
        let (_, usage) = run_ok_measured(self.verifier(), &args, &self.env)?;
        evidence
            .processes
            .push(ProcessUsage::recovery("restore online", usage));
        let recoveries = self.gather()?;
        let detail = recoveries
            .iter()
            .map(|r| {
                format!(
                    "thread {} sequence {} to its last commit {} at SCN {} (from {}{})",
                    r.thread,
                    r.online_seq,
                    r.record["last_commit_xid"].as_str().unwrap_or("-"),
                    r.record["last_commit_scn"].as_u64().unwrap_or(0),
                    r.online_source,
                    if r.online_source_reason.is_empty() {
                        String::new()
                    } else {
                        format!(": {}", r.online_source_reason)
                    }
                )
            })
            .collect::<Vec<_>>()
            .join("; ");
        self.step("restore online", t, detail);
        Ok(recoveries)
    }

    /// Each thread's part of what `restore archive` and `restore online` recorded (one record
    /// per thread in `restore-online.json`).
    fn gather(&self) -> Result<Vec<ThreadRecovery>, DrillError> {
        let mut online_records = threads::online_records(&self.dest)?;
        let archive_record = read_json(&self.dest.join("restore-archive.json"))?;
        let mut recoveries = Vec::new();
        for (stream, thread) in self.stage.streams.iter().zip(1u16..) {
            let record = online_records.remove(&thread).ok_or_else(|| {
                DrillError::Step(format!(
                    "restore online recorded no online log for thread {thread} ({stream})"
                ))
            })?;
            recoveries.push(ThreadRecovery::gather(
                thread,
                stream.clone(),
                record,
                &archive_record,
            ));
        }
        Ok(recoveries)
    }

    /// Archived logs not (yet) recorded in WORM's manifest when the host died: rebuilt from
    /// the collector. When the backup host is gone, nothing rebuilds them: `restore online`
    /// rebuilds only the online logs from the pieces in WORM (the checks name them).
    fn rebuild_missing(
        &mut self,
        recoveries: &mut [ThreadRecovery],
        evidence: &mut Evidence,
    ) -> Result<(), DrillError> {
        let missing: Vec<String> = recoveries
            .iter()
            .filter(|r| !r.missing.is_empty())
            .map(|r| format!("thread {} sequences {:?}", r.thread, r.missing))
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        if self.stage.no_survivor {
            self.step(
                "archived logs missing from WORM",
                Instant::now(),
                format!(
                    "{} not rebuilt: the backup host is gone, and restore online rebuilds only the online logs from the pieces",
                    missing.join(", ")
                ),
            );
            return Ok(());
        }
        let t = Instant::now();
        let mut rebuild_usage = Usage::default();
        for r in recoveries.iter_mut() {
            let collector = &self.stage.opts.programs.collector;
            let u = r.rebuild_missing(collector, &self.collector_config, &self.dest)?;
            rebuild_usage.cpu_seconds += u.cpu_seconds;
            rebuild_usage.peak_rss_bytes = rebuild_usage.peak_rss_bytes.max(u.peak_rss_bytes);
        }
        evidence
            .processes
            .push(ProcessUsage::recovery("collector rebuild", rebuild_usage));
        self.step(
            "rebuild archived logs missing from WORM",
            t,
            format!("{} from the collector", missing.join(", ")),
        );
        Ok(())
    }

    /// `restore script`. An archived log missing from `restore archive` (a gap, or rebuilt
    /// from the collector outside its record): `restore script` refuses a script that cannot
    /// reach the last commit, and says why; otherwise it must succeed. Returns its exit code.
    fn script(
        &mut self,
        recoveries: &[ThreadRecovery],
        evidence: &mut Evidence,
    ) -> Result<i32, DrillError> {
        let t = Instant::now();
        let dest = self.dest.to_string_lossy().into_owned();
        let args = ["restore", "script", "--dest", &dest];
        let (code, out, err, usage) = run_measured(self.verifier(), &args, &[])?;
        evidence
            .processes
            .push(ProcessUsage::recovery("restore script", usage));
        let gap = recoveries.iter().any(ThreadRecovery::gap);
        // The last recoverable point, and with several threads what each thread gives.
        let script_detail = out
            .lines()
            .filter(|l| !l.starts_with("wrote ") && !l.starts_with("no recover.sql"))
            .map(str::trim)
            .collect::<Vec<_>>()
            .join("; ");
        let detail = match (code, gap) {
            (0, _) => script_detail,
            (_, true) => format!("no script to the last commit: {}", err.trim()),
            (_, false) => {
                return Err(DrillError::Step(format!(
                    "restore script exited {code}: {}{}",
                    out.trim_end(),
                    err.trim_end()
                )));
            }
        };
        self.step("restore script", t, detail);
        Ok(code)
    }
}

fn read_json(path: &Path) -> Result<serde_json::Value, DrillError> {
    let text = fs::read_to_string(path).map_err(|e| DrillError::io(path, e))?;
    serde_json::from_str(&text).map_err(|e| DrillError::Step(format!("{}: {e}", path.display())))
}
