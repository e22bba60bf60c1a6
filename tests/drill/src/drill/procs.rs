//! The drill's daemons as child processes (output to a log file each), their metrics, the
//! role programs they run, and what each costs: CPU seconds (user + system, `/proc/PID/stat`)
//! and peak RSS (`VmHWM`, `/proc/PID/status`), read while the process lives.

use std::fs;
use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde::Serialize;

use super::DrillError;

/// What a process cost, from `/proc` (see [`Usage::sample`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Usage {
    /// CPU seconds, user + system, all threads (`/proc/PID/stat` utime + stime).
    pub cpu_seconds: f64,
    /// Peak resident set size in bytes (`VmHWM` of `/proc/PID/status`): the kernel's high-water
    /// mark, exact while the process lives. A process that exits on its own loses it with its
    /// memory: for those (the recovery tools) it is the last value sampled, every 10 ms; None
    /// when the tool was gone before any sample read it (a run of a few milliseconds).
    pub peak_rss_bytes: Option<u64>,
}

impl Usage {
    /// Reads process `pid` now and folds it in: the CPU time grows, the peak is the highest
    /// seen. A zombie still has its CPU times (not its memory); a reaped process has neither.
    pub fn sample(&mut self, pid: u32) {
        if let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat"))
            && let Some(ticks) = stat_cpu_ticks(&stat)
        {
            let hz = rustix::param::clock_ticks_per_second().max(1);
            self.cpu_seconds = self.cpu_seconds.max(ticks as f64 / hz as f64);
        }
        if let Ok(status) = fs::read_to_string(format!("/proc/{pid}/status"))
            && let Some(hwm) = status_vmhwm(&status)
        {
            self.peak_rss_bytes = Some(self.peak_rss_bytes.map_or(hwm, |p| p.max(hwm)));
        }
    }
}

/// utime + stime (clock ticks) from the text of `/proc/PID/stat`. The command name (field 2)
/// is in parentheses and may hold spaces and parentheses: the fields are counted after the last
/// `)`, where field 3 (state) is the first; utime and stime are fields 14 and 15.
pub fn stat_cpu_ticks(stat: &str) -> Option<u64> {
    let (_, rest) = stat.rsplit_once(')')?;
    let mut f = rest.split_ascii_whitespace().skip(11);
    let utime: u64 = f.next()?.parse().ok()?;
    let stime: u64 = f.next()?.parse().ok()?;
    utime.checked_add(stime)
}

/// `VmHWM` in bytes from the text of `/proc/PID/status` (the kernel writes it in kB); None
/// when absent (a kernel thread, or a process whose memory is already gone).
pub fn status_vmhwm(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let mut f = line.trim_start_matches("VmHWM:").split_ascii_whitespace();
    let kb: u64 = f.next()?.parse().ok()?;
    match f.next() {
        Some("kB") | None => kb.checked_mul(1024),
        Some(_) => None,
    }
}

/// One process's cost in the drill's report.
#[derive(Debug, Clone, Serialize)]
pub struct ProcessUsage {
    /// The daemon (`watcher`, `extractor`, `collector`, ...) or recovery step (`verify`, ...).
    pub name: String,
    /// What it is: `daemon` (ran through the workload) or `recovery` (a step of the recovery).
    pub kind: &'static str,
    /// Its cost.
    #[serde(flatten)]
    pub usage: Usage,
}

impl ProcessUsage {
    /// A daemon's cost, read as it ends.
    pub fn daemon(name: &str, usage: Usage) -> ProcessUsage {
        ProcessUsage {
            name: name.to_string(),
            kind: "daemon",
            usage,
        }
    }

    /// A recovery step's cost.
    pub fn recovery(name: &str, usage: Usage) -> ProcessUsage {
        ProcessUsage {
            name: name.to_string(),
            kind: "recovery",
            usage,
        }
    }
}

/// The programs the drill runs.
#[derive(Debug, Clone)]
pub struct Programs {
    /// `redovault` (watcher, inspect).
    pub redovault: PathBuf,
    /// `redovault-extractor`.
    pub extractor: PathBuf,
    /// `redovault-collector`.
    pub collector: PathBuf,
    /// `redovault-verifier`.
    pub verifier: PathBuf,
}

impl Programs {
    /// The role programs next to `redovault` (how they are installed and built).
    pub fn beside(redovault: &Path) -> Result<Programs, DrillError> {
        let dir = redovault.parent().unwrap_or(Path::new("."));
        let p = Programs {
            redovault: redovault.to_path_buf(),
            extractor: dir.join("redovault-extractor"),
            collector: dir.join("redovault-collector"),
            verifier: dir.join("redovault-verifier"),
        };
        for b in [&p.redovault, &p.extractor, &p.collector, &p.verifier] {
            if !b.is_file() {
                return Err(DrillError::Setup(format!(
                    "{} not found (build every program: cargo build --release --workspace --bins)",
                    b.display()
                )));
            }
        }
        Ok(p)
    }
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> Result<u16, DrillError> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| DrillError::Setup(format!("no free TCP port on 127.0.0.1: {e}")))
}

/// A daemon: a child process whose output goes to its log file; killed when dropped.
#[derive(Debug)]
pub struct Daemon {
    /// What it is (`collector`, `watcher`, ...).
    pub name: String,
    child: Child,
    pub log: PathBuf,
    usage: Usage,
}

impl Daemon {
    /// Starts `bin ARGS` with `env`, output appended to `log`.
    pub fn start(
        name: &str,
        bin: &Path,
        args: &[&str],
        env: &[(&str, &str)],
        log: &Path,
    ) -> Result<Daemon, DrillError> {
        let out = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .map_err(|e| DrillError::io(log, e))?;
        let err = out.try_clone().map_err(|e| DrillError::io(log, e))?;
        let mut cmd = Command::new(bin);
        cmd.args(args)
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err));
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd
            .spawn()
            .map_err(|e| DrillError::Setup(format!("start {}: {e}", bin.display())))?;
        Ok(Daemon {
            name: name.to_string(),
            child,
            log: log.to_path_buf(),
            usage: Usage::default(),
        })
    }

    /// Its cost so far (sampled now).
    pub fn usage(&mut self) -> Usage {
        self.usage.sample(self.child.id());
        self.usage
    }

    /// True while it runs.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Sends `signal` (a name `kill` knows: `STOP`, `CONT`...) without waiting for anything:
    /// a frozen process (`STOP`) is a peer that holds its connections and answers nothing.
    pub fn signal(&self, signal: &str) -> Result<(), DrillError> {
        let st = Command::new("kill")
            .args([format!("-{signal}"), self.child.id().to_string()])
            .status()
            .map_err(|e| DrillError::Setup(format!("kill -{signal} {}: {e}", self.name)))?;
        if st.success() {
            Ok(())
        } else {
            Err(DrillError::Setup(format!(
                "kill -{signal} {}: {st}",
                self.name
            )))
        }
    }

    /// SIGKILL (what an attacker with root does), and reap it; returns its cost, read just
    /// before the kill.
    pub fn kill9(mut self) -> Usage {
        let usage = self.usage();
        let _ = self.child.kill();
        let _ = self.child.wait();
        usage
    }

    /// SIGTERM, and waits up to `within` for it to exit; returns whether it exited 0.
    pub fn terminate(self, within: Duration) -> bool {
        self.terminate_measured(within).0
    }

    /// [`Daemon::terminate`], and its cost (its peak before the signal, its CPU time through
    /// its shutdown).
    pub fn terminate_measured(mut self, within: Duration) -> (bool, Usage) {
        self.usage();
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + within;
        loop {
            // Before try_wait reaps it: a zombie still shows its CPU times.
            self.usage();
            if let Ok(Some(st)) = self.child.try_wait() {
                return (st.success(), self.usage);
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                return (false, self.usage);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The last `n` lines of its log (for error messages).
    pub fn tail(&self, n: usize) -> String {
        tail_of(&self.log, n)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The last `n` lines of a file.
pub fn tail_of(path: &Path, n: usize) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Runs `bin ARGS` with `env` to the end; returns its exit code, stdout and stderr.
pub fn run_tool(
    bin: &Path,
    args: &[&str],
    env: &[(&str, &str)],
) -> Result<(i32, String, String), DrillError> {
    run_measured(bin, args, env).map(|(code, out, err, _)| (code, out, err))
}

/// [`run_tool`], and what the run cost: its CPU time and peak RSS sampled from `/proc` every
/// 10 ms until it exits (the CPU time read from the zombie, before it is reaped: exact).
pub fn run_measured(
    bin: &Path,
    args: &[&str],
    env: &[(&str, &str)],
) -> Result<(i32, String, String, Usage), DrillError> {
    let mut cmd = Command::new(bin);
    cmd.args(args)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let run_err = |e: std::io::Error| DrillError::Setup(format!("run {}: {e}", bin.display()));
    let mut child = cmd.spawn().map_err(run_err)?;
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_end(&mut buf);
            }
            buf
        })
    };
    let out = drain(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let err = drain(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let mut usage = Usage::default();
    let status = loop {
        usage.sample(child.id());
        if let Some(st) = child.try_wait().map_err(run_err)? {
            break st;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let text = |h: std::thread::JoinHandle<Vec<u8>>| {
        String::from_utf8_lossy(&h.join().unwrap_or_default()).into_owned()
    };
    Ok((status.code().unwrap_or(-1), text(out), text(err), usage))
}

/// Like [`run_tool`], but a non-zero exit is an error naming the command.
pub fn run_ok(bin: &Path, args: &[&str], env: &[(&str, &str)]) -> Result<String, DrillError> {
    run_ok_measured(bin, args, env).map(|(out, _)| out)
}

/// Like [`run_measured`], but a non-zero exit is an error naming the command.
pub fn run_ok_measured(
    bin: &Path,
    args: &[&str],
    env: &[(&str, &str)],
) -> Result<(String, Usage), DrillError> {
    let (code, out, err, usage) = run_measured(bin, args, env)?;
    if code != 0 {
        return Err(DrillError::Step(format!(
            "{} {} exited {code}: {}{}",
            bin.file_name().unwrap_or_default().to_string_lossy(),
            args.join(" "),
            out.trim_end(),
            err.trim_end()
        )));
    }
    Ok((out, usage))
}

pub use redovault::telemetry::scrape;

/// Waits until `f` is true (every 20 ms), at most `within`; returns whether it became true.
pub fn wait_for(within: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if f() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_ticks_are_counted_after_the_command_name() {
        // A command name with a space and a parenthesis (a process may name itself so).
        let stat = "4242 (redo vault) x) S 1 4242 4242 0 -1 4194560 1200 0 3 0 157 42 0 0 20 0 9 0 123456 1000000 2000 18446744073709551615 1 1 0 0 0 0 0 4096 0 0 0 0 17 1 0 0 0 0 0";
        assert_eq!(stat_cpu_ticks(stat), Some(199));
        assert_eq!(stat_cpu_ticks("4242 (x) S 1 2"), None);
        assert_eq!(stat_cpu_ticks("no parenthesis"), None);
        assert_eq!(stat_cpu_ticks("1 (x) S 1 1 1 0 -1 0 0 0 0 0 abc 1"), None);
    }

    #[test]
    fn vmhwm_is_read_in_bytes() {
        let status =
            "Name:\tredovault\nVmPeak:\t  900000 kB\nVmHWM:\t   51234 kB\nVmRSS:\t 40000 kB\n";
        assert_eq!(status_vmhwm(status), Some(51_234 * 1024));
        assert_eq!(status_vmhwm("Name:\tkthreadd\nState:\tS\n"), None);
        assert_eq!(status_vmhwm("VmHWM:\t12 MB\n"), None);
    }

    #[test]
    fn this_process_has_a_cpu_time_and_a_peak() {
        // Real /proc: burn a little CPU, hold some memory, and read ourselves.
        let mut v = vec![1u8; 32 << 20];
        let mut x = 0u64;
        let t = Instant::now();
        while t.elapsed() < Duration::from_millis(300) {
            for b in v.iter_mut().step_by(4096) {
                *b = b.wrapping_add(1);
                x = x.wrapping_add(u64::from(*b));
            }
        }
        let mut u = Usage::default();
        u.sample(std::process::id());
        assert!(x > 0);
        assert!(u.cpu_seconds >= 0.1, "{u:?}");
        assert!(u.peak_rss_bytes.unwrap() >= 32 << 20, "{u:?}");
    }

    #[test]
    fn a_tool_run_is_measured_to_its_exit() {
        let (code, out, _, u) = run_measured(
            Path::new("/bin/sh"),
            &[
                "-c",
                "i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done; echo done",
            ],
            &[],
        )
        .unwrap();
        assert_eq!((code, out.trim()), (0, "done"));
        assert!(u.cpu_seconds > 0.0, "{u:?}");
        assert!(u.peak_rss_bytes.is_some_and(|p| p > 0), "{u:?}");
    }
}
