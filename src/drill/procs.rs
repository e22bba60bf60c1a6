//! The drill's daemons as child processes (output to a log file each), their metrics, and
//! the role programs they run.

use std::fs;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::DrillError;

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
    /// Its log.
    pub log: PathBuf,
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
        })
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

    /// SIGKILL (what an attacker with root does), and reap it.
    pub fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, and waits up to `within` for it to exit; returns whether it exited 0.
    pub fn terminate(mut self, within: Duration) -> bool {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + within;
        loop {
            if let Ok(Some(st)) = self.child.try_wait() {
                return st.success();
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                return false;
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
    let mut cmd = Command::new(bin);
    cmd.args(args).env("NO_COLOR", "1").stdin(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd
        .output()
        .map_err(|e| DrillError::Setup(format!("run {}: {e}", bin.display())))?;
    Ok((
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    ))
}

/// Like [`run_tool`], but a non-zero exit is an error naming the command.
pub fn run_ok(bin: &Path, args: &[&str], env: &[(&str, &str)]) -> Result<String, DrillError> {
    let (code, out, err) = run_tool(bin, args, env)?;
    if code != 0 {
        return Err(DrillError::Step(format!(
            "{} {} exited {code}: {}{}",
            bin.file_name().unwrap_or_default().to_string_lossy(),
            args.join(" "),
            out.trim_end(),
            err.trim_end()
        )));
    }
    Ok(out)
}

pub use crate::telemetry::scrape;

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
