//! Hosts on one LAN, made of Linux network namespaces by the test itself: a namespace per
//! host with one veth into a bridge that lives in a namespace of its own. Nothing is added
//! to the machine's own namespace, every address (10.213.0.0/24) exists only inside these
//! namespaces, and everything is deleted on drop.
//!
//! ```text
//!   <p>-db 10.213.0.1 ─┐
//!   <p>-c1 10.213.0.11 ┤
//!   <p>-c2 10.213.0.12 ┼── br0 in <p>-lan
//!   <p>-c3 10.213.0.13 ┤
//!   <p>-s3 10.213.0.5 ─┘
//! ```
//!
//! A host's link is cut by setting its bridge port down (packets are dropped, nothing is
//! refused: a partition). Programs run in a host with `ip netns exec`, which execs them (the
//! child's pid is the program's).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::netkit::Proc;

/// The LAN's hosts and their namespaces.
#[derive(Debug)]
pub struct Lan {
    prefix: String,
    hosts: Vec<(String, String)>,
}

fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("run ip: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

fn must(r: Result<(), String>) {
    if let Err(e) = r {
        panic!(
            "{e}\nthis test makes network namespaces (ip netns, veth, bridge): run it as root \
             with iproute2, as deploy/test.sh does"
        );
    }
}

impl Lan {
    /// Makes the LAN with `hosts` (name, IPv4 address in 10.213.0.0/24); None (skip) when
    /// this process cannot make network namespaces (not root, or no `ip`).
    pub fn new(hosts: &[(&str, &str)]) -> Option<Lan> {
        use redovault_drill::servers::{is_root, need, on_path};
        need(
            is_root() && on_path("ip"),
            "not root with iproute2 (network namespaces: ip netns)",
        )?;
        let prefix = format!("rv{}", std::process::id());
        let mut lan = Lan {
            prefix,
            hosts: Vec::new(),
        };
        let bridge_ns = lan.lan_ns();
        must(ip(&["netns", "add", &bridge_ns]));
        lan.hosts.push(("lan".into(), String::new()));
        must(ip(&["-n", &bridge_ns, "link", "set", "lo", "up"]));
        must(ip(&[
            "-n", &bridge_ns, "link", "add", "br0", "type", "bridge",
        ]));
        must(ip(&["-n", &bridge_ns, "link", "set", "br0", "up"]));
        for (name, addr) in hosts {
            let ns = lan.ns(name);
            must(ip(&["netns", "add", &ns]));
            lan.hosts.push(((*name).to_string(), (*addr).to_string()));
            let port = format!("p-{name}");
            must(ip(&[
                "link", "add", "eth0", "netns", &ns, "type", "veth", "peer", "name", &port,
                "netns", &bridge_ns,
            ]));
            must(ip(&[
                "-n", &bridge_ns, "link", "set", &port, "master", "br0",
            ]));
            must(ip(&["-n", &bridge_ns, "link", "set", &port, "up"]));
            must(ip(&[
                "-n",
                &ns,
                "addr",
                "add",
                &format!("{addr}/24"),
                "dev",
                "eth0",
            ]));
            must(ip(&["-n", &ns, "link", "set", "eth0", "up"]));
            must(ip(&["-n", &ns, "link", "set", "lo", "up"]));
        }
        Some(lan)
    }

    fn lan_ns(&self) -> String {
        format!("{}-lan", self.prefix)
    }

    /// The namespace of host `name`.
    pub fn ns(&self, name: &str) -> String {
        format!("{}-{name}", self.prefix)
    }

    /// The address of host `name`.
    pub fn addr(&self, name: &str) -> &str {
        self.hosts
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, a)| a.as_str())
            .unwrap_or_else(|| panic!("no host {name} on the LAN"))
    }

    /// Cuts (or restores) host `name`'s link: its bridge port down (up).
    pub fn cut(&self, name: &str, cut: bool) {
        let port = format!("p-{name}");
        must(ip(&[
            "-n",
            &self.lan_ns(),
            "link",
            "set",
            &port,
            if cut { "down" } else { "up" },
        ]));
    }

    /// `bin args` run in host `name`, output to `log`, with `env`.
    pub fn spawn(
        &self,
        name: &str,
        what: &str,
        bin: &Path,
        args: &[&str],
        env: &[(&str, &str)],
        log: &Path,
    ) -> Proc {
        let ns = self.ns(name);
        let bin = bin.to_string_lossy().into_owned();
        let mut all = vec!["netns", "exec", ns.as_str(), bin.as_str()];
        all.extend_from_slice(args);
        Proc::spawn_env(what, Path::new("ip"), &all, env, log)
    }

    /// Runs `program args` in host `name` to its end; its stdout, or why it failed.
    pub fn run(&self, name: &str, program: &str, args: &[&str]) -> Result<String, String> {
        let out = Command::new("ip")
            .args(["netns", "exec", &self.ns(name), program])
            .args(args)
            .output()
            .map_err(|e| format!("run {program} in {name}: {e}"))?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(format!(
                "{program} in {name}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ))
        }
    }

    /// Runs `program args` in host `name` to its end: its exit code and stdout.
    pub fn output(&self, name: &str, program: &Path, args: &[&str]) -> (i32, String) {
        let out = Command::new("ip")
            .args(["netns", "exec", &self.ns(name)])
            .arg(program)
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("run {} in {name}: {e}", program.display()));
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    }

    /// Every sample of the Prometheus endpoint at `addr` seen from host `name`.
    pub fn scrape(&self, name: &str, addr: &str) -> std::collections::BTreeMap<String, f64> {
        let text = self
            .run(
                name,
                "curl",
                &["-s", "--max-time", "3", &format!("http://{addr}/metrics")],
            )
            .unwrap_or_default();
        text.lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| {
                let (k, v) = l.rsplit_once(' ')?;
                Some((k.to_string(), v.parse().ok()?))
            })
            .collect()
    }
}

impl Drop for Lan {
    fn drop(&mut self) {
        for (name, _) in self.hosts.iter().rev() {
            let _ = ip(&["netns", "del", &self.ns(name)]);
        }
    }
}

/// A real Ceph (radosgw with Object Lock) started by `deploy/s3/server.sh` inside host
/// `name` of a [`Lan`], listening on that host's address too; stopped on drop.
#[derive(Debug)]
pub struct LanCeph {
    ns: String,
    state: PathBuf,
    /// `https://<address>:<port>`.
    pub endpoint: String,
    /// The CA of its certificate.
    pub ca: PathBuf,
    /// Every `export K='V'` of its env.sh.
    pub env: std::collections::BTreeMap<String, String>,
}

impl LanCeph {
    /// Starts it (about 20 s) in `state` (a directory that does not exist yet).
    pub fn start(lan: &Lan, name: &str, state: &Path) -> LanCeph {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/s3/server.sh");
        let addr = lan.addr(name).to_string();
        let out = Command::new("ip")
            .args(["netns", "exec", &lan.ns(name), "env"])
            .arg(format!("REDOVAULT_S3_ALSO_LISTEN={addr}"))
            .arg("REDOVAULT_S3_CEPH_MEMSTORE_BYTES=1073741824")
            .arg("bash")
            .arg(&script)
            .args(["up", "ceph"])
            .arg(state)
            .output()
            .expect("run deploy/s3/server.sh");
        let mut ceph = LanCeph {
            ns: lan.ns(name),
            state: state.to_path_buf(),
            endpoint: String::new(),
            ca: state.join("tls/ca.crt"),
            env: Default::default(),
        };
        assert!(
            out.status.success(),
            "Ceph in {name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let env: std::collections::BTreeMap<String, String> =
            std::fs::read_to_string(state.join("env.sh"))
                .expect("env.sh")
                .lines()
                .filter_map(|l| {
                    let (k, v) = l.strip_prefix("export ")?.split_once('=')?;
                    Some((k.to_string(), v.trim_matches('\'').to_string()))
                })
                .collect();
        let port = env["REDOVAULT_TEST_S3_ENDPOINT"]
            .rsplit_once(':')
            .map(|(_, p)| p.to_string())
            .expect("endpoint port");
        ceph.endpoint = format!("https://{addr}:{port}");
        ceph.env = env;
        ceph
    }
}

impl Drop for LanCeph {
    fn drop(&mut self) {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/s3/server.sh");
        let _ = Command::new("ip")
            .args(["netns", "exec", &self.ns, "bash"])
            .arg(&script)
            .args(["down", "ceph"])
            .arg(&self.state)
            .output();
    }
}
