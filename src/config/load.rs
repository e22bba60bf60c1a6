//! Reads a TOML document into a serde-derived type and lists every problem with its key path.
//!
//! serde stops at the first error. To report them all: deserialize a copy of the table
//! (through `serde_ignored`, which names every key no field took, and `serde_path_to_error`,
//! which names the key of the error); on an error, record it, remove that key from the table
//! (the field then takes its default) and deserialize again. Each round removes one key, so
//! the rounds are bounded by the number of keys. Then [`Check::check`] adds the semantic
//! problems and builds the role's configuration.

use std::path::Path;

use serde::de::DeserializeOwned;
use serde_path_to_error::Segment;

use super::{ConfigError, Problems};

/// A file type read by serde, then checked as a whole into the role's configuration.
pub trait Check: DeserializeOwned {
    /// What the checked file gives.
    type Output;

    /// The number of the first table of a `[[list]]` in messages (the extractor's and the
    /// collector's files have always counted from 1).
    const FIRST_INDEX: usize = 0;

    /// Adds every semantic problem (ranges, keys that need each other) to `p` and builds the
    /// configuration (used only when `p` stays empty; None: a part is missing, reported).
    fn check(self, p: &mut Problems) -> Option<Self::Output>;
}

/// Reads the file at `path` and parses it with [`parse`]; a read failure or the problems come
/// back naming the file.
pub fn load<T: Check>(path: &Path) -> Result<T::Output, ConfigError> {
    let err = |problems| ConfigError {
        path: path.to_path_buf(),
        problems,
    };
    let text =
        std::fs::read_to_string(path).map_err(|e| err(vec![format!("cannot read it: {e}")]))?;
    parse::<T>(&text).map_err(err)
}

/// Parses configuration text; on failure, every problem found.
pub fn parse<T: Check>(text: &str) -> Result<T::Output, Vec<String>> {
    let mut p = Problems::default();
    let (file, unknown) = read_at::<T>("", T::FIRST_INDEX, parse_root(text)?, &mut p);
    unknown_keys(unknown, &mut p);
    match (file.and_then(|f| f.check(&mut p)), p.is_empty()) {
        (Some(out), true) => Ok(out),
        (None, true) => Err(vec!["incomplete configuration".to_string()]),
        _ => Err(p.into_vec()),
    }
}

/// Parses TOML text into its root table; a syntax error is one problem naming the line.
fn parse_root(text: &str) -> Result<toml::Table, Vec<String>> {
    toml::from_str(text).map_err(|e| {
        vec![format!(
            "not valid TOML: {}",
            e.to_string().trim().replace('\n', " ")
        )]
    })
}

/// Deserializes `table`, the table at path `at` of a file (`""`: the whole file), into `T`,
/// recording every type error and unknown key in `p` with its path. `None` only when an
/// error has no key to remove (the table itself).
pub fn deserialize_at<T: DeserializeOwned>(
    at: &str,
    table: toml::Table,
    p: &mut Problems,
) -> Option<T> {
    let (v, unknown) = read_at(at, 0, table, p);
    unknown_keys(unknown, p);
    v
}

/// Deserializes one table into two types that share it (the `[worm]` of the collector: the
/// store's keys and its own): a key is unknown only when neither takes it.
pub fn deserialize_both<A: DeserializeOwned, B: DeserializeOwned>(
    at: &str,
    table: toml::Table,
    p: &mut Problems,
) -> Option<(A, B)> {
    let (a, unknown_a) = read_at(at, 0, table.clone(), p);
    let (b, unknown_b) = read_at(at, 0, table, p);
    let unknown = unknown_a
        .into_iter()
        .filter(|k| unknown_b.contains(k))
        .collect();
    unknown_keys(unknown, p);
    Some((a?, b?))
}

/// A key no field took: a section at the root, a key below.
fn unknown_keys(unknown: Vec<String>, p: &mut Problems) {
    for path in unknown {
        let what = match path.contains(['.', '[']) {
            true => "unknown key",
            false => "unknown section",
        };
        p.push(&path, what);
    }
}

/// The remove-and-retry loop (see the module docs): the value, and the paths of the keys no
/// field took. It ends: each round that does not return removes a value from the table.
fn read_at<T: DeserializeOwned>(
    at: &str,
    first: usize,
    table: toml::Table,
    p: &mut Problems,
) -> (Option<T>, Vec<String>) {
    let mut value = toml::Value::Table(table);
    loop {
        let mut unknown = Vec::new();
        let mut note = |path: serde_ignored::Path<'_>| unknown.push(ignored_path(at, &path, first));
        let de = serde_ignored::Deserializer::new(value.clone(), &mut note);
        let e = match serde_path_to_error::deserialize::<_, T>(de) {
            Ok(v) => return (Some(v), unknown),
            Err(e) => e,
        };
        let segments: Vec<&Segment> = (e.path().iter())
            .filter(|s| matches!(s, Segment::Map { .. } | Segment::Seq { .. }))
            .collect();
        let what = plain_words(&e.inner().to_string());
        if !remove(&mut value, &segments) {
            match at {
                "" => p.line(what),
                at => p.push(at, what),
            }
            return (None, Vec::new());
        }
        match segments.split_last() {
            // An item of an array of values: `key: item 2: what`, as before serde.
            Some((Segment::Seq { index }, parent)) => p.push(
                &seg_path(at, parent, first),
                format!("item {index}: {what}"),
            ),
            _ => p.push(&seg_path(at, &segments, first), what),
        }
    }
}

/// `at.path` (`path` alone at the root), in the same form as [`seg_path`].
fn join(at: &str, key: &str) -> String {
    match at {
        "" => key.to_string(),
        at => format!("{at}.{key}"),
    }
}

/// `store.retention`, `collector[2].dir` (indexes from `first`).
fn seg_path(at: &str, segs: &[&Segment], first: usize) -> String {
    segs.iter().fold(at.to_string(), |out, s| match s {
        Segment::Map { key } => join(&out, key),
        Segment::Seq { index } => format!("{out}[{}]", index + first),
        _ => out,
    })
}

/// The path of a key no field took, in the same form as [`seg_path`].
fn ignored_path(at: &str, path: &serde_ignored::Path<'_>, first: usize) -> String {
    use serde_ignored::Path as P;
    match path {
        P::Root => at.to_string(),
        P::Seq { parent, index } => {
            format!("{}[{}]", ignored_path(at, parent, first), index + first)
        }
        P::Map { parent, key } => join(&ignored_path(at, parent, first), key),
        P::Some { parent } | P::NewtypeStruct { parent } | P::NewtypeVariant { parent } => {
            ignored_path(at, parent, first)
        }
    }
}

/// Removes the value at `segs` below `v`; false when there is none.
fn remove(v: &mut toml::Value, segs: &[&Segment]) -> bool {
    use toml::Value::{Array, Table};
    match (v, segs) {
        (Table(t), [Segment::Map { key }]) => t.remove(key).is_some(),
        (Array(a), [Segment::Seq { index }]) if *index < a.len() => {
            a.remove(*index);
            true
        }
        (Table(t), [Segment::Map { key }, rest @ ..]) => {
            t.get_mut(key).is_some_and(|v| remove(v, rest))
        }
        (Array(a), [Segment::Seq { index }, rest @ ..]) => {
            a.get_mut(*index).is_some_and(|v| remove(v, rest))
        }
        _ => false,
    }
}

/// serde's wording in the words of the rest of the messages: `invalid type: integer `30`,
/// expected a string` → `expected a string, found an integer`; `unknown variant `xml`,
/// expected `text` or `json`` → `"xml" is not one of text, json` ([`super::units::not_one_of`]).
fn plain_words(msg: &str) -> String {
    // toml adds "\nin `a.b`" (its own path, without list indexes): ours comes first.
    let msg = msg.split("\nin `").next().unwrap_or(msg).trim();
    let split = |prefix: &str, sep: &str| msg.strip_prefix(prefix).and_then(|r| r.split_once(sep));
    if let Some((found, expected)) = split("invalid type: ", ", expected ") {
        let expected = match expected {
            "u8" | "u16" | "u32" | "u64" | "usize" | "i8" | "i16" | "i32" | "i64" => "an integer",
            "a sequence" => "an array",
            e if e == "a map" || e.starts_with("struct ") => "a table",
            e => e,
        };
        format!("expected {expected}, found {}", found_words(found))
    } else if let Some((found, expected)) = split("invalid value: ", ", expected ") {
        format!("{} is out of range ({expected})", found_words(found))
    } else if let Some((variant, expected)) = split("unknown variant `", "`, expected ") {
        let expected = expected.trim_start_matches("one of ").replace(" or ", ", ");
        let choices: Vec<&str> = expected.split(", ").map(|c| c.trim_matches('`')).collect();
        super::units::not_one_of(variant, &choices)
    } else {
        msg.to_string()
    }
}

/// serde's `integer `5``, `string "x"`... in our words (an integer keeps its value).
fn found_words(f: &str) -> String {
    let words = [
        ("integer", "an integer"),
        ("string", "a string"),
        ("boolean", "a boolean"),
        ("floating point", "a float"),
        ("sequence", "an array"),
        ("map", "a table"),
    ];
    let Some((serde_word, ours)) = words.iter().find(|(w, _)| f.starts_with(w)) else {
        return f.to_string();
    };
    match f[serde_word.len()..].trim().trim_matches('`') {
        v if *serde_word == "integer" && !v.is_empty() => format!("{ours} ({v})"),
        _ => ours.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Default, Deserialize)]
    #[serde(default)]
    struct A {
        port: u16,
        name: String,
        on: bool,
    }

    #[derive(Debug, Default, Deserialize)]
    #[serde(default)]
    struct B {
        #[serde(deserialize_with = "crate::config::units::duration")]
        every: std::time::Duration,
        list: Vec<A>,
    }

    #[derive(Debug, Default, Deserialize)]
    #[serde(default)]
    struct File {
        one: A,
        two: B,
        three: A,
    }

    impl Check for File {
        type Output = File;

        fn check(self, p: &mut Problems) -> Option<File> {
            if self.one.name.is_empty() && !p.about("one.name") {
                p.push("one.name", "required");
            }
            Some(self)
        }
    }

    #[test]
    fn three_bad_types_in_three_sections_unknown_keys_and_checks_all_at_once() {
        let problems = parse::<File>(
            "bogus = 1\n\
             [one]\nport = \"x\"\nportt = 2\n\
             [two]\nevery = 5\n[[two.list]]\non = 1\ncolour = 2\n\
             [three]\nport = 70000\n",
        )
        .unwrap_err();
        assert_eq!(
            problems,
            [
                "one.port: expected an integer, found a string",
                "three.port: an integer (70000) is out of range (u16)",
                "two.every: expected a duration string such as \"10s\", found an integer (5)",
                "two.list[0].on: expected a boolean, found an integer (1)",
                "bogus: unknown section",
                "one.portt: unknown key",
                "two.list[0].colour: unknown key",
                "one.name: required",
            ],
        );
    }

    #[test]
    fn a_good_file_and_a_syntax_error() {
        let f = parse::<File>("[one]\nname = \"n\"\nport = 1\n[two]\nevery = \"2m\"\n").unwrap();
        assert_eq!((f.one.port, f.two.every.as_secs()), (1, 120));
        let p = parse::<File>("[one\n").unwrap_err();
        assert_eq!(p.len(), 1);
        assert!(
            p[0].starts_with("not valid TOML:") && p[0].contains("line 1"),
            "{p:?}"
        );
        let p = parse::<File>("one = 3\n").unwrap_err();
        assert_eq!(
            p,
            [
                "one: expected a table, found an integer (3)",
                "one.name: required"
            ]
        );
    }
}
