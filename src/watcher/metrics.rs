//! The watcher's Prometheus metrics (`redovault_watcher_*`), registered in one
//! [`crate::telemetry::Registry`].

use std::sync::Arc;

use crate::alert::AlertMetrics;
use crate::telemetry::{Counter, CounterVec, Family, Gauge, Histogram, Registry};

/// Every metric of the watcher.
#[derive(Debug, Clone)]
pub struct WatcherMetrics {
    /// The registry they are in.
    pub registry: Arc<Registry>,
    /// Logs shipped.
    pub shipped_files: Arc<Counter>,
    pub shipped_bytes: Arc<Counter>,
    /// Files waiting to be shipped.
    pub backlog_files: Arc<Gauge>,
    pub backlog_bytes: Arc<Gauge>,
    /// Age of the oldest unshipped file.
    pub oldest_unshipped_age: Arc<Gauge>,
    /// Upload time per log.
    pub upload_seconds: Arc<Histogram>,
    /// From detection of a file to the start of its upload.
    pub detect_to_upload_start_seconds: Arc<Histogram>,
    /// From detection of a file to its manifest entry being durable.
    pub detect_to_durable_seconds: Arc<Histogram>,
    /// Missing sequences.
    pub gap_sequences: Arc<Gauge>,
    /// Missing sequences of the live incarnations (newest resetlogs id of each database).
    pub live_gap_sequences: Arc<Gauge>,
    /// Errors by kind.
    pub errors: Arc<CounterVec>,
    /// Unix time of the last shipped log.
    pub last_success: Arc<Gauge>,
    /// Files incomplete or damaged past the grace period.
    pub damaged_files: Arc<Gauge>,
    /// Files copied to the quarantine prefix.
    pub quarantined_files: Arc<Counter>,
    /// Files matched by the include patterns that are not redo logs (left alone).
    pub not_redo_files: Arc<Gauge>,
    pub manifest_entries: Arc<Gauge>,
    /// Manifest segments sealed into WORM.
    pub sealed_segments: Arc<Counter>,
    /// Validations and uploads running.
    pub in_flight: Arc<Gauge>,
    /// Logs whose validation was done while they were written (no second read).
    pub validated_while_written: Arc<Counter>,
    /// Free bytes of each watched directory's file system, by `dir`.
    pub destination_free: Arc<Family<Gauge>>,
    /// Size of each watched directory's file system, by `dir`.
    pub destination_size: Arc<Family<Gauge>>,
    /// Alarm counters.
    pub alerts: AlertMetrics,
}

impl WatcherMetrics {
    /// Registers every metric in a new registry.
    pub fn new() -> WatcherMetrics {
        let r = Arc::new(Registry::new());
        let p = "redovault_watcher_";
        let n = |s: &str| format!("{p}{s}");
        WatcherMetrics {
            shipped_files: r.counter(
                &n("shipped_files_total"),
                "Archived logs shipped to WORM and recorded in the manifest.",
            ),
            shipped_bytes: r.counter(
                &n("shipped_bytes_total"),
                "Bytes of archived logs shipped to WORM.",
            ),
            backlog_files: r.gauge(
                &n("backlog_files"),
                "Archived logs found but not shipped yet.",
            ),
            backlog_bytes: r.gauge(
                &n("backlog_bytes"),
                "Bytes of archived logs found but not shipped yet.",
            ),
            oldest_unshipped_age: r.gauge(
                &n("oldest_unshipped_age_seconds"),
                "Age of the oldest archived log not shipped yet (0 when none).",
            ),
            upload_seconds: r.histogram(
                &n("upload_duration_seconds"),
                "Time to upload one archived log and confirm it with HEAD.",
                Histogram::seconds(),
            ),
            detect_to_upload_start_seconds: r.histogram(
                &n("detect_to_upload_start_seconds"),
                "From detecting an archived log to starting its upload (validation included).",
                Histogram::seconds(),
            ),
            detect_to_durable_seconds: r.histogram(
                &n("detect_to_durable_seconds"),
                "From detecting an archived log to its manifest entry being durable.",
                Histogram::seconds(),
            ),
            gap_sequences: r.gauge(
                &n("gap_sequences"),
                "Missing log sequences (a later sequence of the same thread exists).",
            ),
            live_gap_sequences: r.gauge(
                &n("live_gap_sequences"),
                "Missing log sequences of the live incarnations only (newest resetlogs id of each database).",
            ),
            errors: r.counter_vec(&n("errors_total"), "Errors by kind.", "kind"),
            last_success: r.gauge(
                &n("last_success_timestamp_seconds"),
                "Unix time of the last shipped archived log (at start: the manifest's last entry).",
            ),
            damaged_files: r.gauge(
                &n("damaged_files"),
                "Files incomplete or damaged past the grace period.",
            ),
            not_redo_files: r.gauge(
                &n("not_redo_files"),
                "Files the include patterns match that are not redo logs: left alone, not shipped.",
            ),
            quarantined_files: r.counter(
                &n("quarantined_files_total"),
                "Incomplete or damaged files copied to the quarantine prefix.",
            ),
            manifest_entries: r.gauge(&n("manifest_entries"), "Entries in the manifest."),
            sealed_segments: r.counter(
                &n("manifest_sealed_segments_total"),
                "Manifest segments sealed into WORM.",
            ),
            in_flight: r.gauge(&n("in_flight"), "Validations and uploads running."),
            validated_while_written: r.counter(
                &n("validated_while_written_total"),
                "Archived logs validated while ARCn wrote them (shipped without a second read).",
            ),
            destination_free: r.gauge_family(
                &n("destination_free_bytes"),
                "Bytes an unprivileged user (Oracle) may still write on the watched directory's file system.",
                "dir",
            ),
            destination_size: r.gauge_family(
                &n("destination_size_bytes"),
                "Size of the watched directory's file system.",
                "dir",
            ),
            alerts: AlertMetrics {
                raised: r.counter_vec(&n("alarms_total"), "Alarms raised, by kind.", "kind"),
                failed: r.counter(
                    &n("alert_hook_failures_total"),
                    "Alarm deliveries to the hook that failed.",
                ),
                dropped: r.counter(
                    &n("alerts_dropped_total"),
                    "Alarms not handed to the hook (queue full).",
                ),
            },
            registry: r,
        }
    }
}

impl Default for WatcherMetrics {
    fn default() -> Self {
        WatcherMetrics::new()
    }
}
