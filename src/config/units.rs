//! The one parser of durations (`"500us"`, `"10ms"`, `"5s"`, `"2m"`, `"1h"`, `"30d"`) and
//! sizes (bytes, or `"64K"`, `"64KiB"`, `"16MB"`, `"1G"`: powers of 1024) of every
//! configuration file, and their serde readers (`#[serde(deserialize_with = "...")]`).

use std::fmt;
use std::time::Duration;

use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};

/// Parses a duration: a whole number and a unit (`us`, `ms`, `s`, `m`, `h`, `d`).
pub fn parse_duration(s: &str) -> Option<Duration> {
    let (n, unit) = number_and_unit(s)?;
    let micros: u64 = match unit {
        "us" | "µs" => 1,
        "ms" => 1_000,
        "s" => 1_000_000,
        "m" | "min" => 60_000_000,
        "h" => 3_600_000_000,
        "d" => 86_400_000_000,
        _ => return None,
    };
    Some(Duration::from_micros(n.checked_mul(micros)?))
}

/// Parses a size: bytes, or a number with `K`, `M` or `G` (powers of 1024; any case, with
/// an optional `B` or `iB`: `64K`, `64KiB`, `16MB`, `1g`).
pub fn parse_size(s: &str) -> Option<u64> {
    let (n, unit) = number_and_unit(s)?;
    let unit = unit.to_ascii_uppercase();
    let prefix = (unit.strip_suffix("IB").or_else(|| unit.strip_suffix('B'))).unwrap_or(&unit);
    let shift = match prefix {
        "" => 0,
        "K" => 10,
        "M" => 20,
        "G" => 30,
        _ => return None,
    };
    n.checked_mul(1 << shift)
}

/// `"64 MiB"` → `(64, "MiB")`.
fn number_and_unit(s: &str) -> Option<(u64, &str)> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    Some((s[..split].parse().ok()?, s[split..].trim()))
}

/// Reads a string through `parse` (with `numbers`, an integer too, as its digits);
/// `expecting` names the value in serde's type errors.
pub fn from_str_with<'de, D: Deserializer<'de>, T>(
    d: D,
    expecting: &str,
    numbers: bool,
    parse: impl FnOnce(&str) -> Result<T, String>,
) -> Result<T, D::Error> {
    struct V<'a, F>(&'a str, bool, F);
    impl<T, F: FnOnce(&str) -> Result<T, String>> Visitor<'_> for V<'_, F> {
        type Value = T;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str(self.0)
        }
        fn visit_str<E: de::Error>(self, s: &str) -> Result<T, E> {
            (self.2)(s).map_err(E::custom)
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<T, E> {
            match self.1 {
                true => self.visit_str(&v.to_string()),
                false => Err(E::invalid_type(de::Unexpected::Signed(v), &self)),
            }
        }
    }
    d.deserialize_any(V(expecting, numbers, parse))
}

/// `n` milliseconds, for the short ranges of the checks.
pub const fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// `n` seconds.
pub const fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// The one wording of a choice key's wrong value: `"xml" is not one of text, json` (serde's
/// unknown variants are put in these words too).
pub fn not_one_of(value: &str, choices: &[&str]) -> String {
    format!("{value:?} is not one of {}", choices.join(", "))
}

/// Reads a choice key whose values are not an enum of ours: the value of the name read.
pub fn choice<'de, D: Deserializer<'de>, T: Copy>(
    d: D,
    choices: &[(&str, T)],
) -> Result<T, D::Error> {
    let v = String::deserialize(d)?;
    let names: Vec<&str> = choices.iter().map(|(n, _)| *n).collect();
    let found = choices.iter().find(|(n, _)| *n == v).map(|(_, t)| *t);
    found.ok_or_else(|| de::Error::custom(not_one_of(&v, &names)))
}

/// Reads a duration string.
pub fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    from_str_with(d, "a duration string such as \"10s\"", false, |s| {
        parse_duration(s).ok_or_else(|| {
            format!(
                "{s:?} is not a duration: write a number and a unit (ms, s, m, h, d), e.g. \"10s\""
            )
        })
    })
}

/// Reads a size: bytes, or a string with a unit.
pub fn size<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    from_str_with(
        d,
        "a size (bytes, or a string such as \"64M\")",
        true,
        |s| {
            parse_size(s).ok_or_else(|| {
                format!("{s:?} is not a size: bytes, or a number with K, M or G (KiB, MiB, GiB)")
            })
        },
    )
}

/// Reads a size that fits in `usize`.
pub fn size_usize<'de, D: Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
    let v = size(d)?;
    usize::try_from(v).map_err(|_| de::Error::custom(format!("{v} is too large")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_sizes() {
        assert_eq!(parse_duration("500us"), Some(Duration::from_micros(500)));
        assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("10s"), Some(Duration::from_secs(10)));
        assert_eq!(parse_duration("2m"), Some(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_duration("30d"), Some(Duration::from_secs(30 * 86400)));
        assert_eq!(parse_duration("10"), None);
        assert_eq!(parse_duration("s"), None);
        assert_eq!(parse_duration("5y"), None);
        assert_eq!(parse_duration("99999999999999999999d"), None);
        assert_eq!(parse_size("64M"), Some(64 << 20));
        assert_eq!(parse_size("64MiB"), Some(64 << 20));
        assert_eq!(parse_size("16MB"), Some(16 << 20));
        assert_eq!(parse_size("64K"), Some(64 << 10));
        assert_eq!(parse_size("1G"), Some(1 << 30));
        assert_eq!(parse_size("1g"), Some(1 << 30));
        assert_eq!(parse_size("12"), Some(12));
        assert_eq!(parse_size("1TB"), None);
        assert_eq!(parse_size("99999999999G"), None);
    }
}
