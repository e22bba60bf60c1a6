//! Is the manifest sealed in WORM still growing? Judged off the database host, by the
//! verifier, for the `RedovaultManifestNotGrowing` alert.
//!
//! ```text
//! WORM sealed segments (read-only credentials) ─► each run:
//!   redovault_verifier_manifest_sealed_entries                  entries sealed in WORM
//!   redovault_verifier_manifest_newest_entry_timestamp_seconds  when the newest was shipped
//!                                                               (the watcher's clock)
//!   redovault_verifier_manifest_last_growth_timestamp_seconds   when this verifier last saw
//!     the count grow (its own clock); first run: the newest entry's time, not after now
//! ```
//!
//! Invariants: a verifier restarted while the manifest is already stuck still alerts; a run
//! that could not read the manifest changes nothing here (that is
//! `RedovaultVerifierCannotRun`'s alert).
//!
//! Why off the host: an attacker on the database host who silences the watcher (or a
//! watcher that stopped sealing) shows up as a manifest in WORM that stops growing, and the
//! watcher's own metrics cannot say so (a compromised host can fake them).

/// The growth seen over the runs of one verifier process.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ManifestGrowth {
    /// Sealed entries at the last successful look.
    pub entries: Option<u64>,
    /// Unix time the count last grew (see the module documentation).
    pub grew_at: Option<f64>,
}

impl ManifestGrowth {
    /// Records a run at `now` that read `entries` sealed entries, the newest shipped at
    /// `newest` (Unix time, if known).
    pub fn observe(&mut self, now: f64, entries: u64, newest: Option<f64>) {
        match self.entries {
            None => self.grew_at = Some(newest.map_or(now, |t| t.min(now))),
            Some(before) if entries > before => self.grew_at = Some(now),
            Some(_) => {}
        }
        self.entries = Some(entries);
    }
}

/// Parses an RFC 3339 time to Unix seconds.
pub fn unix_seconds(rfc3339: &str) -> Option<f64> {
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .ok()
        .map(|t| t.timestamp_millis() as f64 / 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_only_when_the_count_grows() {
        let mut g = ManifestGrowth::default();
        // First run: the newest entry's time.
        g.observe(10_000.0, 40, Some(9_400.0));
        assert_eq!(g.grew_at, Some(9_400.0));
        // Same count an hour later: unchanged.
        g.observe(13_600.0, 40, Some(9_400.0));
        assert_eq!(g.grew_at, Some(9_400.0));
        // Grew: now.
        g.observe(17_200.0, 41, Some(17_000.0));
        assert_eq!(g.grew_at, Some(17_200.0));
        // Fewer (another prefix, a store swapped): not growth.
        g.observe(20_800.0, 12, None);
        assert_eq!((g.entries, g.grew_at), (Some(12), Some(17_200.0)));
    }

    #[test]
    fn first_run_never_dates_growth_in_the_future() {
        let mut g = ManifestGrowth::default();
        g.observe(10_000.0, 3, Some(99_999.0)); // the watcher's clock runs ahead
        assert_eq!(g.grew_at, Some(10_000.0));
        let mut g = ManifestGrowth::default();
        g.observe(10_000.0, 0, None); // empty manifest
        assert_eq!(g.grew_at, Some(10_000.0));
    }

    #[test]
    fn parses_rfc3339() {
        assert_eq!(unix_seconds("2026-03-07T00:00:00Z"), Some(1_772_841_600.0));
        assert_eq!(
            unix_seconds("2026-03-07T00:00:00.5+00:00"),
            Some(1_772_841_600.5)
        );
        assert_eq!(unix_seconds("yesterday"), None);
    }
}
