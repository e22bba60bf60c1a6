//! Configuration files walked by hand: every problem reported at once, unknown keys refused.
//!
//! serde's `deny_unknown_fields` stops at the first problem; an operator fixing a
//! configuration wants all of them. Here a file is parsed into a `toml::Table` and each
//! section is read through a [`Section`], which takes every value with its default, records
//! the keys it read, and pushes one line per problem (`section.key: what is wrong`) into a
//! shared [`Problems`] list; [`Section::finish`] then reports the keys nobody read as
//! unknown. The extractor's and the collector's configurations use it (the watcher has its
//! own, older, copy of the same idea).
//!
//! Values: durations are strings with a unit (`"500us"`, `"10ms"`, `"5s"`, `"2m"`, `"1h"`,
//! `"30d"`); sizes are integers (bytes) or strings with a binary unit (`"64K"`, `"64KiB"`,
//! `"16M"`, `"1G"`); paths must be absolute.

use std::cell::RefCell;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// The problems found so far, in the order found.
#[derive(Debug, Default)]
pub struct Problems(RefCell<Vec<String>>);

impl Problems {
    /// An empty list.
    pub fn new() -> Problems {
        Problems::default()
    }

    /// Adds one problem.
    pub fn push(&self, p: impl Into<String>) {
        self.0.borrow_mut().push(p.into());
    }

    /// True when nothing was found.
    pub fn is_empty(&self) -> bool {
        self.0.borrow().is_empty()
    }

    /// The problems.
    pub fn into_vec(self) -> Vec<String> {
        self.0.into_inner()
    }
}

pub use crate::config::ConfigError;

/// Reads the file at `path` and hands its text to `parse`; a read failure or the problems
/// `parse` found come back naming the file.
pub fn load<T>(
    path: &std::path::Path,
    parse: impl FnOnce(&str) -> Result<T, Vec<String>>,
) -> Result<T, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
        path: path.to_path_buf(),
        problems: vec![format!("cannot read it: {e}")],
    })?;
    parse(&text).map_err(|problems| ConfigError {
        path: path.to_path_buf(),
        problems,
    })
}

/// Parses TOML text into its root table; a syntax error is one problem naming the line.
pub fn parse_root(text: &str) -> Result<toml::Table, Vec<String>> {
    toml::from_str(text).map_err(|e| {
        vec![format!(
            "not valid TOML: {}",
            e.to_string().trim().replace('\n', " ")
        )]
    })
}

/// Reports top-level keys of `root` that are not among `known` sections.
pub fn unknown_sections(root: &toml::Table, known: &[&str], problems: &Problems) {
    for k in root.keys() {
        if !known.contains(&k.as_str()) {
            problems.push(format!(
                "{k}: unknown section (known: {})",
                known.join(", ")
            ));
        }
    }
}

/// The name of a value's type, for messages.
pub fn type_name(v: &toml::Value) -> &'static str {
    match v {
        toml::Value::String(_) => "a string",
        toml::Value::Integer(_) => "an integer",
        toml::Value::Float(_) => "a float",
        toml::Value::Boolean(_) => "a boolean",
        toml::Value::Datetime(_) => "a date",
        toml::Value::Array(_) => "an array",
        toml::Value::Table(_) => "a table",
    }
}

pub use crate::config::{parse_duration, parse_size};

/// One table being read: remembers the keys read, collects problems (see the module docs).
#[derive(Debug)]
pub struct Section<'a> {
    name: String,
    table: Option<&'a toml::Table>,
    used: Vec<&'static str>,
    problems: &'a Problems,
}

impl<'a> Section<'a> {
    /// The section `name` of `root`; a missing section reads as empty (every key takes its
    /// default) unless `required`, which is a problem.
    pub fn top(
        root: &'a toml::Table,
        name: &str,
        required: bool,
        problems: &'a Problems,
    ) -> Section<'a> {
        let table = match root.get(name) {
            None => {
                if required {
                    problems.push(format!("[{name}]: missing section"));
                }
                None
            }
            Some(toml::Value::Table(t)) => Some(t),
            Some(v) => {
                problems.push(format!(
                    "{name}: expected a [{name}] table, found {}",
                    type_name(v)
                ));
                None
            }
        };
        Section {
            name: name.to_string(),
            table,
            used: Vec::new(),
            problems,
        }
    }

    /// True when the section is present in the file.
    pub fn present(&self) -> bool {
        self.table.is_some()
    }

    /// The section's name as used in messages (`online.group[2]`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// True when `key` is set in the file (and marks it read).
    pub fn has(&mut self, key: &'static str) -> bool {
        self.value(key).is_some()
    }

    fn value(&mut self, key: &'static str) -> Option<&'a toml::Value> {
        if !self.used.contains(&key) {
            self.used.push(key);
        }
        self.table.and_then(|t| t.get(key))
    }

    /// Records a problem with `key` of this section.
    pub fn problem(&self, key: &str, what: impl std::fmt::Display) {
        self.problems.push(format!("{}.{key}: {what}", self.name));
    }

    fn wrong_type(&self, key: &str, expected: &str, v: &toml::Value) {
        self.problem(key, format!("expected {expected}, found {}", type_name(v)));
    }

    /// A string, or `None` when absent (or of another type, which is a problem).
    pub fn opt_string(&mut self, key: &'static str) -> Option<String> {
        match self.value(key)? {
            toml::Value::String(s) => Some(s.clone()),
            v => {
                self.wrong_type(key, "a string", v);
                None
            }
        }
    }

    /// A string with a default.
    pub fn string(&mut self, key: &'static str, default: &str) -> String {
        self.opt_string(key).unwrap_or_else(|| default.to_string())
    }

    /// A string that must be set (a problem when missing) and not empty. In a section
    /// absent from the file, `None` without a problem: the section's absence is the problem
    /// (reported by [`Section::top`] when required).
    pub fn required_string(&mut self, key: &'static str) -> Option<String> {
        let present = self.table.is_none_or(|t| t.contains_key(key));
        let s = self.opt_string(key);
        match &s {
            None if !present => self.problem(key, "missing"),
            Some(v) if v.trim().is_empty() => {
                self.problem(key, "empty");
                return None;
            }
            _ => {}
        }
        s
    }

    /// One of `choices`, with a default.
    pub fn choice(&mut self, key: &'static str, default: &str, choices: &[&str]) -> String {
        let s = self.string(key, default);
        if choices.contains(&s.as_str()) {
            s
        } else {
            self.problem(key, format!("{s:?} is not one of {}", choices.join(", ")));
            default.to_string()
        }
    }

    /// A boolean with a default.
    pub fn bool(&mut self, key: &'static str, default: bool) -> bool {
        match self.value(key) {
            None => default,
            Some(toml::Value::Boolean(b)) => *b,
            Some(v) => {
                self.wrong_type(key, "true or false", v);
                default
            }
        }
    }

    /// An integer in `min..=max`, with a default.
    pub fn int(&mut self, key: &'static str, default: u64, min: u64, max: u64) -> u64 {
        match self.value(key) {
            None => default,
            Some(toml::Value::Integer(i)) => match u64::try_from(*i) {
                Ok(v) if (min..=max).contains(&v) => v,
                _ => {
                    self.problem(key, format!("{i} is out of range {min}..={max}"));
                    default
                }
            },
            Some(v) => {
                self.wrong_type(key, "an integer", v);
                default
            }
        }
    }

    /// An integer that must be set, in `min..=max`.
    pub fn required_int(&mut self, key: &'static str, min: u64, max: u64) -> Option<u64> {
        let t = self.table?;
        if !t.contains_key(key) {
            self.value(key);
            self.problem(key, "missing");
            return None;
        }
        let before = self.problems.0.borrow().len();
        let v = self.int(key, min, min, max);
        (self.problems.0.borrow().len() == before).then_some(v)
    }

    /// A list of integers in `min..=max` (empty by default).
    pub fn ints(&mut self, key: &'static str, min: u64, max: u64) -> Vec<u64> {
        match self.value(key) {
            None => Vec::new(),
            Some(toml::Value::Array(a)) => {
                let mut out = Vec::new();
                for (i, v) in a.iter().enumerate() {
                    match v {
                        toml::Value::Integer(n)
                            if u64::try_from(*n).is_ok_and(|n| (min..=max).contains(&n)) =>
                        {
                            out.push(*n as u64);
                        }
                        toml::Value::Integer(n) => self
                            .problem(key, format!("item {i}: {n} is out of range {min}..={max}")),
                        v => self.problem(
                            key,
                            format!("item {i}: expected an integer, found {}", type_name(v)),
                        ),
                    }
                }
                out
            }
            Some(v) => {
                self.wrong_type(key, "an array of integers", v);
                Vec::new()
            }
        }
    }

    /// A list of strings (empty by default).
    pub fn strings(&mut self, key: &'static str) -> Vec<String> {
        match self.value(key) {
            None => Vec::new(),
            Some(toml::Value::Array(a)) => {
                let mut out = Vec::new();
                for (i, v) in a.iter().enumerate() {
                    match v {
                        toml::Value::String(s) => out.push(s.clone()),
                        v => self.problem(
                            key,
                            format!("item {i}: expected a string, found {}", type_name(v)),
                        ),
                    }
                }
                out
            }
            Some(v) => {
                self.wrong_type(key, "an array of strings", v);
                Vec::new()
            }
        }
    }

    /// A duration in `min..=max`, with a default.
    pub fn duration(
        &mut self,
        key: &'static str,
        default: Duration,
        min: Duration,
        max: Duration,
    ) -> Duration {
        match self.value(key) {
            None => default,
            Some(toml::Value::String(s)) => match parse_duration(s) {
                Some(d) if d >= min && d <= max => d,
                Some(_) => {
                    self.problem(key, format!("{s:?} is outside {min:?}..={max:?}"));
                    default
                }
                None => {
                    self.problem(
                        key,
                        format!(
                            "{s:?} is not a duration: a whole number and a unit (us, ms, s, m, \
                             h, d), e.g. \"10s\""
                        ),
                    );
                    default
                }
            },
            Some(v) => {
                self.wrong_type(key, "a duration string such as \"10s\"", v);
                default
            }
        }
    }

    /// A size in bytes in `min..=max`, with a default.
    pub fn size(&mut self, key: &'static str, default: u64, min: u64, max: u64) -> u64 {
        let v = match self.value(key) {
            None => return default,
            Some(toml::Value::Integer(i)) => u64::try_from(*i).ok(),
            Some(toml::Value::String(s)) => match parse_size(s) {
                Some(v) => Some(v),
                None => {
                    self.problem(
                        key,
                        format!("{s:?} is not a size: bytes, or a number with K, M or G"),
                    );
                    return default;
                }
            },
            Some(v) => {
                self.wrong_type(key, "a size (bytes, or a string such as \"16M\")", v);
                return default;
            }
        };
        match v {
            Some(v) if (min..=max).contains(&v) => v,
            _ => {
                self.problem(key, format!("out of range {min}..={max} bytes"));
                default
            }
        }
    }

    fn check_path(&self, key: &str, p: PathBuf) -> Option<PathBuf> {
        if p.is_absolute() {
            Some(p)
        } else {
            self.problem(key, format!("{} is not an absolute path", p.display()));
            None
        }
    }

    /// An absolute path, or `None` when absent.
    pub fn opt_path(&mut self, key: &'static str) -> Option<PathBuf> {
        let s = self.opt_string(key)?;
        self.check_path(key, PathBuf::from(s))
    }

    /// An absolute path that must be set.
    pub fn required_path(&mut self, key: &'static str) -> Option<PathBuf> {
        let s = self.required_string(key)?;
        self.check_path(key, PathBuf::from(s))
    }

    /// A list of absolute paths (empty by default).
    pub fn paths(&mut self, key: &'static str) -> Vec<PathBuf> {
        self.strings(key)
            .into_iter()
            .filter_map(|s| self.check_path(key, PathBuf::from(s)))
            .collect()
    }

    /// A socket address (`127.0.0.1:9464`, `[::1]:7070`), or `None` when absent or `""`.
    pub fn opt_socket_addr(&mut self, key: &'static str) -> Option<SocketAddr> {
        let s = self.opt_string(key).filter(|s| !s.is_empty())?;
        match s.parse() {
            Ok(a) => Some(a),
            Err(_) => {
                self.problem(
                    key,
                    format!("{s:?} is not an address and port such as \"127.0.0.1:9464\""),
                );
                None
            }
        }
    }

    /// A sub-table `[name.key]` (absent: an empty section).
    pub fn table(&mut self, key: &'static str) -> Section<'a> {
        let name = format!("{}.{key}", self.name);
        let table = match self.value(key) {
            None => None,
            Some(toml::Value::Table(t)) => Some(t),
            Some(v) => {
                self.wrong_type(key, "a table", v);
                None
            }
        };
        Section {
            name,
            table,
            used: Vec::new(),
            problems: self.problems,
        }
    }

    /// An array of tables `[[name.key]]` (absent: none).
    pub fn tables(&mut self, key: &'static str) -> Vec<Section<'a>> {
        let base = format!("{}.{key}", self.name);
        match self.value(key) {
            None => Vec::new(),
            Some(toml::Value::Array(a)) => a
                .iter()
                .enumerate()
                .filter_map(|(i, v)| match v {
                    toml::Value::Table(t) => Some(Section {
                        name: format!("{base}[{}]", i + 1),
                        table: Some(t),
                        used: Vec::new(),
                        problems: self.problems,
                    }),
                    v => {
                        self.problem(
                            key,
                            format!("item {}: expected a table, found {}", i + 1, type_name(v)),
                        );
                        None
                    }
                })
                .collect(),
            Some(v) => {
                self.wrong_type(key, "an array of tables", v);
                Vec::new()
            }
        }
    }

    /// Reports the keys present but never read as unknown.
    pub fn finish(self) {
        let Some(t) = self.table else { return };
        for k in t.keys() {
            if !self.used.contains(&k.as_str()) {
                self.problems.push(format!(
                    "{}.{k}: unknown key (known: {})",
                    self.name,
                    self.used.join(", ")
                ));
            }
        }
    }
}

/// `[telemetry]` as the extractor and the collector read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Telemetry {
    /// Log format.
    pub log_format: crate::telemetry::LogFormat,
    /// Log level filter.
    pub log_level: String,
    /// Prometheus endpoint; `None`: off.
    pub metrics_listen: Option<SocketAddr>,
}

/// Reads `[telemetry]`: `log_format` (text or json), `log_level`, and `metrics_listen`
/// (default 127.0.0.1:`metrics_port`; `""` turns the endpoint off).
pub fn telemetry_section(root: &toml::Table, problems: &Problems, metrics_port: u16) -> Telemetry {
    let mut s = Section::top(root, "telemetry", false, problems);
    let log_format = match s.choice("log_format", "text", &["text", "json"]).as_str() {
        "json" => crate::telemetry::LogFormat::Json,
        _ => crate::telemetry::LogFormat::Text,
    };
    let log_level = s.string("log_level", "info");
    let metrics_listen = if s.has("metrics_listen") {
        s.opt_socket_addr("metrics_listen")
    } else {
        Some(SocketAddr::from(([127, 0, 0, 1], metrics_port)))
    };
    s.finish();
    Telemetry {
        log_format,
        log_level,
        metrics_listen,
    }
}

/// Reads the link timing both ends share from `s` (a `[link]` section): `heartbeat_interval`,
/// `missed_heartbeats`, `handshake_timeout`; the other fields are `d`'s.
pub fn link_timing(
    s: &mut Section<'_>,
    d: &crate::wire::transport::LinkConfig,
) -> crate::wire::transport::LinkConfig {
    crate::wire::transport::LinkConfig {
        heartbeat_interval: s.duration(
            "heartbeat_interval",
            d.heartbeat_interval,
            Duration::from_millis(10),
            Duration::from_secs(60),
        ),
        missed_heartbeats: s.int("missed_heartbeats", u64::from(d.missed_heartbeats), 2, 100)
            as u32,
        handshake_timeout: s.duration(
            "handshake_timeout",
            d.handshake_timeout,
            Duration::from_millis(100),
            Duration::from_secs(300),
        ),
        ..d.clone()
    }
}

/// Sections at the top level of a file given as an array of tables (`[[extractor]]`).
pub fn top_tables<'a>(
    root: &'a toml::Table,
    name: &str,
    problems: &'a Problems,
) -> Vec<Section<'a>> {
    match root.get(name) {
        None => Vec::new(),
        Some(toml::Value::Array(a)) => a
            .iter()
            .enumerate()
            .filter_map(|(i, v)| match v {
                toml::Value::Table(t) => Some(Section {
                    name: format!("{name}[{}]", i + 1),
                    table: Some(t),
                    used: Vec::new(),
                    problems,
                }),
                v => {
                    problems.push(format!(
                        "{name}: item {}: expected a table, found {}",
                        i + 1,
                        type_name(v)
                    ));
                    None
                }
            })
            .collect(),
        Some(v) => {
            problems.push(format!(
                "{name}: expected [[{name}]] tables, found {}",
                type_name(v)
            ));
            Vec::new()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_problem_is_reported_and_unknown_keys_refused() {
        let root = parse_root(
            r#"
[a]
n = "x"
d = "10 parsecs"
s = "16M"
p = "relative/path"
addr = "nowhere"
typo = 1
[[a.item]]
k = 1
[[a.item]]
k = -1
[b]
"#,
        )
        .unwrap();
        let problems = Problems::new();
        let mut a = Section::top(&root, "a", true, &problems);
        assert_eq!(a.int("n", 7, 0, 10), 7);
        assert_eq!(
            a.duration("d", Duration::from_secs(1), Duration::ZERO, Duration::MAX),
            Duration::from_secs(1)
        );
        assert_eq!(a.size("s", 0, 1, 1 << 30), 16 << 20);
        assert_eq!(a.opt_path("p"), None);
        assert_eq!(a.opt_socket_addr("addr"), None);
        let items = a.tables("item");
        assert_eq!(items.len(), 2);
        for mut it in items {
            it.int("k", 0, 0, 5);
            it.finish();
        }
        a.finish();
        let mut c = Section::top(&root, "c", true, &problems);
        assert_eq!(c.required_string("x"), None);
        c.finish();
        unknown_sections(&root, &["a", "c"], &problems);
        let p = problems.into_vec();
        let expect = [
            "a.n: expected an integer",
            "a.d: \"10 parsecs\" is not a duration",
            "a.p: relative/path is not an absolute path",
            "a.addr: \"nowhere\" is not an address",
            "a.item[2].k: -1 is out of range",
            "a.typo: unknown key",
            "[c]: missing section",
            "b: unknown section",
        ];
        for e in expect {
            assert!(p.iter().any(|x| x.starts_with(e)), "{e} not in {p:#?}");
        }
        assert_eq!(p.len(), expect.len(), "{p:#?}");
    }

    #[test]
    fn durations_and_sizes() {
        assert_eq!(parse_duration("500us"), Some(Duration::from_micros(500)));
        assert_eq!(parse_duration("10ms"), Some(Duration::from_millis(10)));
        assert_eq!(parse_duration("2m"), Some(Duration::from_secs(120)));
        assert_eq!(parse_duration("1d"), Some(Duration::from_secs(86_400)));
        assert_eq!(parse_duration("5"), None);
        assert_eq!(parse_size("64K"), Some(65_536));
        assert_eq!(parse_size("16MiB"), Some(16 << 20));
        assert_eq!(parse_size("1G"), Some(1 << 30));
        assert_eq!(parse_size("12"), Some(12));
        assert_eq!(parse_size("1T"), None);
        let e = parse_root("[x\n").unwrap_err();
        assert!(e[0].contains("line 1"), "{e:?}");
    }
}
