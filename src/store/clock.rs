//! Clocks: the local wall clock, a skewed one for tests, and the server's clock as learned
//! from the `Date` headers of its responses.
//!
//! Retain-until dates and request signatures use the server's time, never the local clock: an
//! attacker or a broken NTP on the database host must not be able to shorten retention.

use std::sync::Mutex;
use std::time::Instant;

use chrono::{DateTime, Utc};

/// A source of wall-clock time.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// Now, by this clock.
    fn now(&self) -> DateTime<Utc>;
}

/// The local system clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// The system clock shifted by a fixed offset: used to inject clock skew in tests.
#[derive(Debug, Clone, Copy)]
pub struct SkewedClock {
    /// Added to the system clock.
    pub offset: chrono::Duration,
}

impl Clock for SkewedClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now() + self.offset
    }
}

/// The server's clock: the last `Date` header seen plus the monotonic time elapsed since.
#[derive(Debug, Default)]
pub(crate) struct ServerClock {
    anchor: Mutex<Option<(DateTime<Utc>, Instant)>>,
}

impl ServerClock {
    /// Records a `Date` header value (RFC 7231 IMF-fixdate) received now.
    pub(crate) fn observe(&self, http_date: &str) {
        if let Ok(t) = DateTime::parse_from_rfc2822(http_date) {
            let t = t.with_timezone(&Utc);
            if let Ok(mut g) = self.anchor.lock() {
                // The header has one-second resolution: keep the later estimate so that the
                // clock never runs backwards within a second.
                let keep_old = g.as_ref().is_some_and(|(old, at)| {
                    *old + chrono::Duration::from_std(at.elapsed()).unwrap_or_default() > t
                });
                if !keep_old {
                    *g = Some((t, Instant::now()));
                }
            }
        }
    }

    /// The server's "now", if a `Date` header has been seen.
    pub(crate) fn now(&self) -> Option<DateTime<Utc>> {
        let g = self.anchor.lock().ok()?;
        let (t, at) = g.as_ref()?;
        Some(*t + chrono::Duration::from_std(at.elapsed()).unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_clock_follows_date_header_not_local_clock() {
        let c = ServerClock::default();
        assert!(c.now().is_none());
        c.observe("Sun, 06 Nov 1994 08:49:37 GMT");
        let now = c.now().unwrap();
        assert_eq!(now.format("%Y-%m-%d %H:%M").to_string(), "1994-11-06 08:49");
        // An older header does not move it backwards.
        c.observe("Sun, 06 Nov 1994 08:40:00 GMT");
        assert!(c.now().unwrap() >= now);
        c.observe("not a date");
        assert!(c.now().unwrap() >= now);
    }

    #[test]
    fn skewed_clock_is_offset() {
        let s = SkewedClock {
            offset: chrono::Duration::hours(5),
        };
        let d = s.now() - Utc::now();
        assert!(d > chrono::Duration::minutes(299) && d < chrono::Duration::minutes(301));
    }
}
