//! Time encodings found in redo: the redo timestamp (§9.2) and Unix epoch seconds (the 23ai
//! commit time of 5.4).
//!
//! The redo timestamp (the header's first and next times, the LWN time) is the database
//! server's local wall-clock time, and the log records no zone: a real 19c log shows its header
//! times 4 hours from its commit records' Unix times. It is printed as ISO 8601 local time,
//! `YYYY-MM-DDTHH:MM:SS`, without a zone. A Unix time is UTC and printed with its `Z`. No
//! calendar crate is used.

use std::fmt;

/// A redo timestamp: `((((((Y−1988)·12 + M−1)·31 + D−1)·24 + h)·60 + m)·60 + s)`, where every
/// month counts 31 days.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct RedoTime(pub u32);

/// A broken-down wall-clock time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CivilTime {
    /// Year (e.g. 2026).
    pub year: u32,
    /// Month, 1..=12.
    pub month: u32,
    /// Day of the month, 1..=31.
    pub day: u32,
    /// Hour, 0..=23.
    pub hour: u32,
    /// Minute, 0..=59.
    pub minute: u32,
    /// Second, 0..=59.
    pub second: u32,
}

impl CivilTime {
    /// ISO 8601 without a zone, `YYYY-MM-DDTHH:MM:SS`: a local time whose zone is unknown.
    pub fn local_iso8601(&self) -> String {
        format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
            self.year, self.month, self.day, self.hour, self.minute, self.second
        )
    }
}

/// ISO 8601 in UTC, `YYYY-MM-DDTHH:MM:SSZ` (for a civil time that is UTC: see [`unix_civil`]).
impl fmt::Display for CivilTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}Z", self.local_iso8601())
    }
}

impl RedoTime {
    /// Decodes the timestamp into its parts.
    pub fn civil(self) -> CivilTime {
        // Every step divides by a non-zero constant; `%` and `/` on u32 cannot overflow, and the
        // final year is at most 1988 + u32::MAX / (60·60·24·31·12) < 2200.
        let v = self.0;
        let second = v % 60;
        let v = v / 60;
        let minute = v % 60;
        let v = v / 60;
        let hour = v % 24;
        let v = v / 24;
        let day = (v % 31).saturating_add(1);
        let v = v / 31;
        let month = (v % 12).saturating_add(1);
        let year = (v / 12).saturating_add(1988);
        CivilTime {
            year,
            month,
            day,
            hour,
            minute,
            second,
        }
    }

    /// Encodes a wall-clock time; `None` when a part is out of range or the year is before 1988
    /// or too late for a u32.
    pub fn from_civil(t: CivilTime) -> Option<RedoTime> {
        if !(1..=12).contains(&t.month)
            || !(1..=31).contains(&t.day)
            || t.hour > 23
            || t.minute > 59
            || t.second > 59
        {
            return None;
        }
        let y = u64::from(t.year.checked_sub(1988)?);
        let mut v = y
            .checked_mul(12)?
            .checked_add(u64::from(t.month.saturating_sub(1)))?;
        v = v
            .checked_mul(31)?
            .checked_add(u64::from(t.day.saturating_sub(1)))?;
        v = v.checked_mul(24)?.checked_add(u64::from(t.hour))?;
        v = v.checked_mul(60)?.checked_add(u64::from(t.minute))?;
        v = v.checked_mul(60)?.checked_add(u64::from(t.second))?;
        u32::try_from(v).ok().map(RedoTime)
    }

    /// ISO 8601 local time without a zone, e.g. `2026-03-07T01:44:40`: the database server's
    /// wall clock, whose zone the log does not record.
    pub fn to_iso8601(self) -> String {
        self.civil().local_iso8601()
    }
}

/// The database's local time without a zone (as [`RedoTime::to_iso8601`]).
impl fmt::Display for RedoTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_iso8601())
    }
}

/// Converts Unix epoch seconds (UTC) to a civil time (proleptic Gregorian calendar).
#[allow(clippy::arithmetic_side_effects)] // bounded as stated below
pub fn unix_civil(secs: u64) -> CivilTime {
    // Days since 1970-01-01, shifted to an era that starts on 0000-03-01 so that leap days fall
    // at the end of each year. All intermediate values are bounded by secs / 86400 + 719468,
    // which fits in u64 for any u64 input.
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let z = days.saturating_add(719_468);
    let era = z / 146_097;
    let doe = z % 146_097; // day of era, 0..=146096
    // year of era, 0..=399
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // day of year from March 1, 0..=365
    let mp = (5 * doy + 2) / 153; // month from March, 0..=11
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = era.saturating_mul(400).saturating_add(yoe) + u64::from(month <= 2);
    CivilTime {
        year: u32::try_from(year).unwrap_or(u32::MAX),
        month: month as u32,
        day: day as u32,
        hour: (rem / 3_600) as u32,
        minute: (rem % 3_600 / 60) as u32,
        second: (rem % 60) as u32,
    }
}

/// ISO 8601 form of Unix epoch seconds, e.g. `2026-03-07T01:44:40Z`.
pub fn unix_to_iso8601(secs: u64) -> String {
    unix_civil(secs).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixture_times() {
        // Local time, no zone; the commit's Unix time is UTC.
        assert_eq!(RedoTime(1_227_231_880).to_iso8601(), "2026-03-07T01:44:40");
        assert_eq!(RedoTime(1_227_231_878).to_string(), "2026-03-07T01:44:38");
        assert_eq!(unix_to_iso8601(1_772_847_880), "2026-03-07T01:44:40Z");
    }

    #[test]
    fn unix_calendar_edges() {
        assert_eq!(unix_to_iso8601(0), "1970-01-01T00:00:00Z");
        assert_eq!(unix_to_iso8601(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(unix_to_iso8601(4_107_542_399), "2100-02-28T23:59:59Z");
        assert_eq!(unix_to_iso8601(4_107_542_400), "2100-03-01T00:00:00Z");
        assert_eq!(unix_to_iso8601(u64::from(u32::MAX)), "2106-02-07T06:28:15Z");
        // Never panics on the largest input.
        let _ = unix_to_iso8601(u64::MAX);
    }

    #[test]
    fn redo_time_round_trip() {
        let t = CivilTime {
            year: 2026,
            month: 3,
            day: 7,
            hour: 1,
            minute: 44,
            second: 40,
        };
        assert_eq!(RedoTime::from_civil(t), Some(RedoTime(1_227_231_880)));
        assert_eq!(RedoTime::from_civil(CivilTime { year: 1987, ..t }), None);
        assert_eq!(RedoTime::from_civil(CivilTime { month: 13, ..t }), None);
        for v in [0u32, 1, 59, 86_399, 1_227_231_880, u32::MAX] {
            assert_eq!(RedoTime::from_civil(RedoTime(v).civil()), Some(RedoTime(v)));
        }
    }
}
