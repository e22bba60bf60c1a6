//! The RTO estimate of a database: the bytes of archived logs a recovery would restore now,
//! over the restore throughput, plus the fixed steps (verify, the online log, the scripts,
//! RMAN). Measured when a drill or a recovery of that database left the figures (its
//! archive restore's bytes and time, and the rest of its RTO); the configured
//! `restore_throughput` and `fixed_steps` otherwise. The page says which.
//!
//! Pure: the measurements and the configured figures in, the estimate and its basis out.

use std::path::PathBuf;

use serde::Serialize;

/// What one drill or recovery measured.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RestoreMeasure {
    /// Bytes of archived logs restored.
    pub archive_bytes: u64,
    /// Seconds the archive restore took.
    pub archive_seconds: f64,
    /// The rest of the RTO: every other step (verify, online log, scripts), seconds.
    pub other_seconds: f64,
}

impl RestoreMeasure {
    /// Bytes per second, when the figures allow one (something restored, in some time).
    pub fn throughput(&self) -> Option<f64> {
        let t = self.archive_bytes as f64 / self.archive_seconds;
        (self.archive_bytes > 0 && self.archive_seconds > 0.0 && t.is_finite() && t > 0.0)
            .then_some(t)
    }
}

/// A measurement with where it comes from.
#[derive(Debug, Clone, PartialEq)]
pub struct Measured<'a> {
    /// `drill` or `recover`.
    pub kind: &'a str,
    /// Its report.
    pub file: &'a std::path::Path,
    /// When (Unix seconds).
    pub at: i64,
    /// The figures.
    pub measure: &'a RestoreMeasure,
}

/// Where the estimate's figures come from.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "basis", rename_all = "snake_case")]
pub enum RtoBasis {
    /// The last drill or recovery of this database that measured them.
    Measured {
        /// `drill` or `recover`.
        kind: String,
        /// Its report.
        file: PathBuf,
        /// When it ran (Unix seconds).
        at: i64,
    },
    /// The configured `restore_throughput` and `fixed_steps`.
    Configured,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RtoEstimate {
    /// Estimated RTO, seconds.
    pub seconds: f64,
    /// The throughput used, bytes per second.
    pub throughput: f64,
    /// The fixed steps used, seconds.
    pub fixed_seconds: f64,
    /// Where they come from.
    #[serde(flatten)]
    pub basis: RtoBasis,
}

impl RtoEstimate {
    /// The basis in words: `measured on 2026-12-06 by drill /x/drill-report.json`, or
    /// `configured`.
    pub fn basis_text(&self) -> String {
        match &self.basis {
            RtoBasis::Measured { kind, file, at } => format!(
                "measured on {} by {kind} {}",
                chrono::DateTime::from_timestamp(*at, 0)
                    .map_or_else(|| "?".into(), |d| d.format("%Y-%m-%d").to_string()),
                file.display()
            ),
            RtoBasis::Configured => "configured".into(),
        }
    }
}

/// The estimate for `bytes` to restore: from the newest usable measurement of `runs`, else
/// the configured figures.
pub fn estimate(
    bytes: u64,
    runs: &[Measured<'_>],
    configured_throughput: u64,
    configured_fixed: f64,
) -> RtoEstimate {
    let newest = runs
        .iter()
        .filter_map(|m| m.measure.throughput().map(|t| (m, t)))
        .max_by_key(|(m, _)| m.at);
    match newest {
        Some((m, t)) => {
            let fixed = m.measure.other_seconds.max(0.0);
            RtoEstimate {
                seconds: bytes as f64 / t + fixed,
                throughput: t,
                fixed_seconds: fixed,
                basis: RtoBasis::Measured {
                    kind: m.kind.to_string(),
                    file: m.file.to_path_buf(),
                    at: m.at,
                },
            }
        }
        None => {
            let t = configured_throughput.max(1) as f64;
            RtoEstimate {
                seconds: bytes as f64 / t + configured_fixed,
                throughput: t,
                fixed_seconds: configured_fixed,
                basis: RtoBasis::Configured,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn m(bytes: u64, secs: f64, other: f64) -> RestoreMeasure {
        RestoreMeasure {
            archive_bytes: bytes,
            archive_seconds: secs,
            other_seconds: other,
        }
    }

    #[test]
    fn without_a_measurement_the_configured_figures_are_used() {
        let e = estimate(200 << 20, &[], 100 << 20, 600.0);
        assert_eq!(e.seconds, 602.0);
        assert_eq!(e.basis, RtoBasis::Configured);
        assert_eq!(e.basis_text(), "configured");
    }

    #[test]
    fn the_newest_measurement_gives_the_throughput_and_the_fixed_steps() {
        let old = m(10 << 20, 1.0, 5.0);
        let new = m(50 << 20, 10.0, 20.0); // 5 MiB/s
        let runs = [
            Measured {
                kind: "drill",
                file: Path::new("/d/drill-report.json"),
                at: 1_000,
                measure: &old,
            },
            Measured {
                kind: "recover",
                file: Path::new("/h/recover-x.json"),
                at: 1_780_000_000,
                measure: &new,
            },
        ];
        let e = estimate(100 << 20, &runs, 100 << 20, 600.0);
        assert!((e.seconds - (20.0 + 20.0)).abs() < 1e-9, "{e:?}");
        assert_eq!(e.throughput, (5 << 20) as f64);
        assert_eq!(e.fixed_seconds, 20.0);
        assert_eq!(
            e.basis_text(),
            "measured on 2026-05-28 by recover /h/recover-x.json"
        );
    }

    #[test]
    fn a_run_that_restored_nothing_or_took_no_time_measures_nothing() {
        let empty = m(0, 3.0, 10.0);
        let instant = m(1 << 20, 0.0, 10.0);
        let runs = [
            Measured {
                kind: "drill",
                file: Path::new("/a"),
                at: 2,
                measure: &empty,
            },
            Measured {
                kind: "drill",
                file: Path::new("/b"),
                at: 3,
                measure: &instant,
            },
        ];
        let e = estimate(1 << 30, &runs, 1 << 20, 60.0);
        assert_eq!(e.basis, RtoBasis::Configured);
        assert_eq!(e.seconds, 1024.0 + 60.0);
    }
}
