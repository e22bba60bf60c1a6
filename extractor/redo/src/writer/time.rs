//! The u32 redo time: seconds since 1988-01-01 00:00:00 in a calendar where every month has
//! 31 days (§9.2 of the format notes), converted from and to Unix seconds.
//!
//! Oracle writes the database host's local wall-clock time; the simulated host runs in UTC, so
//! Unix seconds are used as the wall clock.

use super::WriterError;

/// Days from 1970-01-01 to the civil date (proleptic Gregorian).
///
/// Callers pass years within a few thousand of 1970 (see [`unix_from_redo_time`]), far from
/// any i64 overflow.
#[allow(clippy::arithmetic_side_effects)] // bounded as stated above
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let m = i64::from(m);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil date (year, month 1..=12, day 1..=31) of a day count from 1970-01-01.
///
/// Callers pass day counts of times within 1988..2128 (see [`redo_time_from_unix`]).
#[allow(clippy::arithmetic_side_effects)] // bounded as stated above
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// The redo time of `unix` seconds, or an error outside 1988-01-01 .. the u32 wrap in 2121.
pub fn redo_time_from_unix(unix: i64) -> Result<u32, WriterError> {
    // 1988-01-01 .. a bound past the u32 wrap (2121), so the arithmetic below cannot overflow.
    if !(567_993_600..=5_000_000_000).contains(&unix) {
        return Err(WriterError::TimeOutOfRange(unix));
    }
    let days = unix.div_euclid(86_400);
    let secs = unix.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    if y < 1988 {
        return Err(WriterError::TimeOutOfRange(unix));
    }
    let v = y
        .checked_sub(1988)
        .and_then(|v| v.checked_mul(12))
        .and_then(|v| v.checked_add(i64::from(m).saturating_sub(1)))
        .and_then(|v| v.checked_mul(31))
        .and_then(|v| v.checked_add(i64::from(d).saturating_sub(1)))
        .and_then(|v| v.checked_mul(86_400))
        .and_then(|v| v.checked_add(secs));
    v.and_then(|v| u32::try_from(v).ok())
        .ok_or(WriterError::TimeOutOfRange(unix))
}

/// Unix seconds of a redo time; `None` for a value that names no real date (e.g. February 30).
pub fn unix_from_redo_time(v: u32) -> Option<i64> {
    let mut v = i64::from(v);
    let secs = v % 86_400;
    v /= 86_400;
    let d = ((v % 31) as u32).saturating_add(1);
    v /= 31;
    let m = ((v % 12) as u32).saturating_add(1);
    // v < 2^32 / 86400 / 31: the year is below 2200.
    let y = (v / 12).saturating_add(1988);
    let days = days_from_civil(y, m, d);
    if civil_from_days(days) != (y, m, d) {
        return None;
    }
    days.checked_mul(86_400)?.checked_add(secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixture_next_time() {
        // 2026-03-07 01:44:40 UTC = Unix 1772847880 = raw 1227231880 (SOURCES.md).
        assert_eq!(redo_time_from_unix(1_772_847_880), Ok(1_227_231_880));
        assert_eq!(unix_from_redo_time(1_227_231_880), Some(1_772_847_880));
        // 2026-03-07 01:44:38 = raw 1227231878.
        assert_eq!(redo_time_from_unix(1_772_847_878), Ok(1_227_231_878));
    }

    #[test]
    fn epoch_and_range() {
        // 1988-01-01 00:00:00 UTC = Unix 567993600.
        assert_eq!(redo_time_from_unix(567_993_600), Ok(0));
        assert_eq!(
            redo_time_from_unix(567_993_599),
            Err(WriterError::TimeOutOfRange(567_993_599))
        );
        assert_eq!(unix_from_redo_time(0), Some(567_993_600));
        assert_eq!(
            redo_time_from_unix(i64::MAX),
            Err(WriterError::TimeOutOfRange(i64::MAX))
        );
        assert_eq!(
            redo_time_from_unix(i64::MIN),
            Err(WriterError::TimeOutOfRange(i64::MIN))
        );
        // 2121-12-31 is past the u32 wrap.
        assert_eq!(
            redo_time_from_unix(4_796_582_400),
            Err(WriterError::TimeOutOfRange(4_796_582_400))
        );
        // Feb 30 (month index 1, day index 29) is not a date.
        let feb30 = ((31 + 29) * 86_400) as u32;
        assert_eq!(unix_from_redo_time(feb30), None);
    }

    #[test]
    fn round_trip_many_days() {
        let mut t = 567_993_600i64;
        while t < 4_000_000_000 {
            let r = redo_time_from_unix(t).expect("in range");
            assert_eq!(unix_from_redo_time(r), Some(t));
            t += 86_400 * 7 + 3_601;
        }
    }
}
