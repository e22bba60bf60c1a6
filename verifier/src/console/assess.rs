//! The rules of the overview, as one pure function: the facts gathered about one database
//! thread in → its state (Protected / Warning / Alert), the reasons, and the exposure per
//! tier out. No I/O and no clock: `now` is given, so every rule has a unit test below.
//!
//! The rules (the first words of each reason say which):
//! - a source that does not answer, answers garbage or is stale is **unknown**, which is a
//!   Warning, never fine; the extractor unreachable is an Alert (the redo is not shipped);
//! - the stream's session down on every collector, or the extractor not connected: Alert;
//!   down on some of several collectors: Warning;
//! - exposure (time since the newest commit held off the host) above the RPO target on the
//!   collector tier: Alert; on the WORM tier only: Warning (the collector still holds it);
//!   the exposure is 0 when the extractor reports nothing read and unacknowledged and
//!   nothing unread (an idle database is not exposed);
//! - gaps in the archived sequences, or the last verification with findings: Alert; a
//!   verification that could not run: Warning;
//! - estimated RTO above the target: Warning.

use serde::Serialize;

/// A row's state, worst last.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub enum State {
    /// Recoverable to its last commit within the targets, every source known.
    Protected,
    /// Something is unknown or degraded; not yet data at risk.
    Warning,
    /// Data at risk now (redo not leaving the host, exposure above target, gaps, findings).
    Alert,
}

impl State {
    /// The word on the page.
    pub fn label(self) -> &'static str {
        match self {
            State::Protected => "Protected",
            State::Warning => "Warning",
            State::Alert => "Alert",
        }
    }
}

/// One reason, with the state it calls for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Reason {
    /// The state this reason calls for (`Protected`: information only).
    pub level: State,
    /// What, in words.
    pub text: String,
}

/// One collector's view of the stream.
#[derive(Debug, Clone, PartialEq)]
pub enum CollectorView {
    /// The status page did not answer or was not understood.
    Unreachable(String),
    /// The page is older than the staleness limit (seconds old).
    Stale(f64),
    /// The collector does not hold this stream.
    NoStream,
    /// The stream as the collector holds it.
    Held {
        session_up: bool,
        /// Since when it is up or down (Unix seconds).
        session_since: Option<i64>,
        /// Commit time of its last durable commit.
        last_commit_time: Option<i64>,
        /// Commit time of the last commit it sealed into WORM.
        worm_commit_time: Option<i64>,
    },
}

/// The extractor's view of the stream.
#[derive(Debug, Clone, PartialEq)]
pub enum ExtractorView {
    /// No extractor configured on the console.
    NotConfigured,
    /// Its metrics do not answer.
    Unreachable(String),
    /// It answers but does not ship this stream.
    NoStream,
    /// What it reports.
    Seen {
        /// Connected to a collector.
        connected: bool,
        /// Bytes read and not yet acknowledged.
        lag_bytes: f64,
        /// Bytes written by the database and not yet read.
        unread_bytes: f64,
    },
}

/// What WORM holds of this thread (archive manifest and the collector's stream chain).
#[derive(Debug, Clone, PartialEq)]
pub enum WormView {
    /// The store could not be read.
    Unreadable(String),
    /// Not read yet.
    NotYet,
    /// What was read.
    Read {
        /// Commit time of the last commit in the stream's chain.
        stream_commit_time: Option<i64>,
        /// Last archived sequence and when it was shipped (Unix seconds).
        last_archived: Option<(u32, Option<i64>)>,
        /// Sequences missing between the first and the last archived.
        gaps: Vec<u32>,
    },
}

/// The last verification report.
#[derive(Debug, Clone, PartialEq)]
pub struct Verification {
    /// `clean`, `findings` or `could_not_run` (as `verify` writes it; any case).
    pub verdict: String,
    /// When it finished (Unix seconds).
    pub finished: Option<i64>,
    /// Error findings.
    pub errors: u64,
}

/// Everything known about one database thread.
#[derive(Debug, Clone, PartialEq)]
pub struct Facts {
    /// Now (Unix seconds, fractional).
    pub now: f64,
    /// RPO target, seconds.
    pub rpo_target: f64,
    /// RTO target, seconds.
    pub rto_target: f64,
    /// Each configured collector by name.
    pub collectors: Vec<(String, CollectorView)>,
    /// The extractor (its name and view).
    pub extractor: (String, ExtractorView),
    pub worm: WormView,
    /// The last verification, when a report was found.
    pub verification: Option<Verification>,
    /// Estimated RTO, seconds.
    pub estimated_rto: Option<f64>,
}

/// The outcome for one row.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Assessment {
    /// The worst level of the reasons.
    pub state: State,
    /// Every reason, worst first.
    pub reasons: Vec<Reason>,
    /// Exposure on the collector tier, seconds (None: unknown).
    pub exposure_collector: Option<f64>,
    /// Exposure on the WORM tier, seconds (None: unknown).
    pub exposure_worm: Option<f64>,
}

fn secs(x: f64) -> String {
    if x < 10.0 {
        format!("{x:.1} s")
    } else if x < 120.0 {
        format!("{x:.0} s")
    } else if x < 7200.0 {
        format!("{:.0} min", x / 60.0)
    } else {
        format!("{:.1} h", x / 3600.0)
    }
}

/// Seconds as the page writes them (`1.2 s`, `45 s`, `12 min`, `3.0 h`).
pub fn human_secs(x: f64) -> String {
    secs(x)
}

/// Applies the rules (see the module docs).
pub fn assess(f: &Facts) -> Assessment {
    let mut r: Vec<Reason> = Vec::new();
    let mut push = |level: State, text: String| r.push(Reason { level, text });
    let caught_up = matches!(
        f.extractor.1,
        ExtractorView::Seen { lag_bytes, unread_bytes, .. } if lag_bytes == 0.0 && unread_bytes == 0.0
    );
    // Collectors.
    let mut newest: Option<i64> = None;
    let mut newest_worm: Option<i64> = None;
    let (mut up, mut down, mut known) = (0, 0, 0);
    for (name, v) in &f.collectors {
        match v {
            CollectorView::Unreachable(e) => {
                push(State::Warning, format!("collector {name} unknown: {e}"))
            }
            CollectorView::Stale(age) => push(
                State::Warning,
                format!("collector {name} unknown: its status is {} old", secs(*age)),
            ),
            CollectorView::NoStream => push(
                State::Warning,
                format!("collector {name} does not hold this stream"),
            ),
            CollectorView::Held {
                session_up,
                session_since,
                last_commit_time,
                worm_commit_time,
            } => {
                known += 1;
                newest = newest.max(*last_commit_time);
                newest_worm = newest_worm.max(*worm_commit_time);
                if *session_up {
                    up += 1;
                } else {
                    down += 1;
                    let since = session_since
                        .map(|t| format!(" for {}", secs((f.now - t as f64).max(0.0))))
                        .unwrap_or_default();
                    push(
                        State::Warning,
                        format!("stream session down on collector {name}{since}"),
                    );
                }
            }
        }
    }
    if known > 0 && up == 0 && down > 0 {
        push(
            State::Alert,
            "stream session down on every collector: redo is not leaving the host".into(),
        );
    }
    if f.collectors.is_empty() {
        push(
            State::Warning,
            "no collector configured: the collector tier is unknown".into(),
        );
    } else if known == 0 {
        push(
            State::Warning,
            "no collector answers for this stream: the collector tier is unknown".into(),
        );
    }
    // Extractor.
    let ename = &f.extractor.0;
    match &f.extractor.1 {
        ExtractorView::NotConfigured => push(
            State::Warning,
            "extractor unknown: no extractor metrics configured".into(),
        ),
        ExtractorView::Unreachable(e) => {
            push(State::Alert, format!("extractor {ename} unreachable: {e}"))
        }
        ExtractorView::NoStream => push(
            State::Warning,
            format!("extractor {ename} does not report this stream"),
        ),
        ExtractorView::Seen { connected, .. } => {
            if !connected {
                push(
                    State::Alert,
                    format!("extractor {ename} not connected to any collector"),
                )
            }
        }
    }
    // Exposure.
    let exposure = |t: Option<i64>| -> Option<f64> {
        if caught_up {
            Some(0.0)
        } else {
            t.map(|t| (f.now - t as f64).max(0.0))
        }
    };
    let exposure_collector = exposure(newest);
    match exposure_collector {
        Some(x) if x > f.rpo_target => push(
            State::Alert,
            format!(
                "exposure {} above the RPO target {} (collector tier)",
                secs(x),
                secs(f.rpo_target)
            ),
        ),
        Some(_) => {}
        None if known > 0 => push(
            State::Warning,
            "no commit known on any collector: exposure unknown".into(),
        ),
        None => {}
    }
    // WORM.
    let mut stream_worm = None;
    match &f.worm {
        WormView::Unreadable(e) => push(State::Warning, format!("WORM unknown: {e}")),
        WormView::NotYet => push(State::Warning, "WORM not read yet".into()),
        WormView::Read {
            stream_commit_time,
            last_archived,
            gaps,
        } => {
            stream_worm = *stream_commit_time;
            if !gaps.is_empty() {
                let list: Vec<String> = gaps.iter().take(5).map(|g| g.to_string()).collect();
                push(
                    State::Alert,
                    format!(
                        "{} archived sequence(s) missing in WORM: {}{}",
                        gaps.len(),
                        list.join(", "),
                        if gaps.len() > 5 { ", ..." } else { "" }
                    ),
                );
            }
            if last_archived.is_none() {
                push(
                    State::Protected,
                    "no archived log of this thread in WORM yet".into(),
                );
            }
        }
    }
    let exposure_worm = exposure(newest_worm.max(stream_worm));
    if let Some(x) = exposure_worm
        && x > f.rpo_target
    {
        push(
            State::Warning,
            format!(
                "WORM tier exposure {} above the RPO target {} (the collector tier still holds it)",
                secs(x),
                secs(f.rpo_target)
            ),
        );
    }
    // Verification.
    match &f.verification {
        None => push(State::Protected, "no verification report found yet".into()),
        // `verify` writes its verdict in snake_case (`clean`, `findings`, `could_not_run`).
        Some(v) => match v.verdict.to_ascii_lowercase().as_str() {
            "clean" => {}
            "findings" => push(
                State::Alert,
                format!("last verification found {} error(s)", v.errors),
            ),
            other => push(
                State::Warning,
                format!("last verification did not complete ({other})"),
            ),
        },
    }
    // RTO.
    if let Some(e) = f.estimated_rto
        && e > f.rto_target
    {
        push(
            State::Warning,
            format!(
                "estimated RTO {} above the target {}",
                secs(e),
                secs(f.rto_target)
            ),
        );
    }
    r.sort_by_key(|x| std::cmp::Reverse(x.level));
    Assessment {
        state: r.first().map_or(State::Protected, |x| x.level),
        reasons: r,
        exposure_collector,
        exposure_worm,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: f64 = 1_800_000_000.0;

    fn healthy() -> Facts {
        Facts {
            now: NOW,
            rpo_target: 5.0,
            rto_target: 7200.0,
            collectors: vec![(
                "c1".into(),
                CollectorView::Held {
                    session_up: true,
                    session_since: Some(NOW as i64 - 600),
                    last_commit_time: Some(NOW as i64 - 1),
                    worm_commit_time: Some(NOW as i64 - 2),
                },
            )],
            extractor: (
                "db-host".into(),
                ExtractorView::Seen {
                    connected: true,
                    lag_bytes: 4096.0,
                    unread_bytes: 0.0,
                },
            ),
            worm: WormView::Read {
                stream_commit_time: Some(NOW as i64 - 3),
                last_archived: Some((41, Some(NOW as i64 - 300))),
                gaps: Vec::new(),
            },
            verification: Some(Verification {
                verdict: "Clean".into(),
                finished: Some(NOW as i64 - 3600),
                errors: 0,
            }),
            estimated_rto: Some(900.0),
        }
    }

    fn texts(a: &Assessment) -> String {
        a.reasons
            .iter()
            .map(|r| format!("{:?}: {}", r.level, r.text))
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn everything_known_and_within_targets_is_protected() {
        let a = assess(&healthy());
        assert_eq!(a.state, State::Protected, "{}", texts(&a));
        assert_eq!(a.exposure_collector, Some(1.0));
        assert_eq!(a.exposure_worm, Some(2.0));
    }

    #[test]
    fn the_extractor_unreachable_is_an_alert_with_its_reason() {
        let mut f = healthy();
        f.extractor.1 = ExtractorView::Unreachable("connection refused".into());
        let a = assess(&f);
        assert_eq!(a.state, State::Alert);
        assert!(a.reasons[0].text.contains("extractor db-host unreachable"));
    }

    #[test]
    fn the_session_down_on_every_collector_is_an_alert_on_some_a_warning() {
        let mut f = healthy();
        let down = CollectorView::Held {
            session_up: false,
            session_since: Some(NOW as i64 - 12),
            last_commit_time: Some(NOW as i64 - 1),
            worm_commit_time: None,
        };
        f.collectors.push(("c2".into(), down.clone()));
        let a = assess(&f);
        assert_eq!(a.state, State::Warning, "{}", texts(&a));
        assert!(texts(&a).contains("session down on collector c2 for 12 s"));
        f.collectors[0].1 = down;
        let a = assess(&f);
        assert_eq!(a.state, State::Alert);
        assert!(texts(&a).contains("down on every collector"));
    }

    #[test]
    fn exposure_above_the_rpo_target_is_an_alert_unless_the_extractor_is_caught_up() {
        let mut f = healthy();
        if let CollectorView::Held {
            last_commit_time, ..
        } = &mut f.collectors[0].1
        {
            *last_commit_time = Some(NOW as i64 - 30);
        }
        let a = assess(&f);
        assert_eq!(a.state, State::Alert);
        assert!(texts(&a).contains("exposure 30 s above the RPO target 5.0 s"));
        // An idle database: nothing unread, nothing unacknowledged.
        f.extractor.1 = ExtractorView::Seen {
            connected: true,
            lag_bytes: 0.0,
            unread_bytes: 0.0,
        };
        let a = assess(&f);
        assert_eq!(a.state, State::Protected, "{}", texts(&a));
        assert_eq!(a.exposure_collector, Some(0.0));
    }

    #[test]
    fn an_unknown_source_is_a_warning_never_fine() {
        for change in 0..5 {
            let mut f = healthy();
            match change {
                0 => f.collectors[0].1 = CollectorView::Unreachable("timed out".into()),
                1 => f.collectors[0].1 = CollectorView::Stale(90.0),
                2 => f.extractor.1 = ExtractorView::NotConfigured,
                3 => f.worm = WormView::Unreadable("403 AccessDenied".into()),
                _ => f.collectors.clear(),
            }
            let a = assess(&f);
            assert!(a.state >= State::Warning, "case {change}: {}", texts(&a));
        }
    }

    #[test]
    fn gaps_and_findings_are_alerts_slow_worm_and_rto_warnings() {
        let mut f = healthy();
        f.worm = WormView::Read {
            stream_commit_time: None,
            last_archived: Some((50, None)),
            gaps: vec![44, 45],
        };
        let a = assess(&f);
        assert_eq!(a.state, State::Alert);
        assert!(texts(&a).contains("2 archived sequence(s) missing in WORM: 44, 45"));

        let mut f = healthy();
        f.verification.as_mut().unwrap().verdict = "Findings".into();
        assert_eq!(assess(&f).state, State::Alert);
        // As `verify --json` writes them.
        f.verification.as_mut().unwrap().verdict = "findings".into();
        assert_eq!(assess(&f).state, State::Alert);
        f.verification.as_mut().unwrap().verdict = "clean".into();
        let clean = assess(&f);
        assert!(
            !texts(&clean).contains("verification"),
            "a clean report is no reason: {}",
            texts(&clean)
        );
        f.verification.as_mut().unwrap().verdict = "could_not_run".into();
        assert!(texts(&assess(&f)).contains("did not complete (could_not_run)"));
        f.verification.as_mut().unwrap().verdict = "Findings".into();
        f.verification.as_mut().unwrap().errors = 3;
        assert_eq!(assess(&f).state, State::Alert);

        let mut f = healthy();
        f.estimated_rto = Some(3.0 * 3600.0);
        let a = assess(&f);
        assert_eq!(a.state, State::Warning);
        assert!(texts(&a).contains("estimated RTO 3.0 h above the target 2.0 h"));

        let mut f = healthy();
        if let CollectorView::Held {
            worm_commit_time, ..
        } = &mut f.collectors[0].1
        {
            *worm_commit_time = Some(NOW as i64 - 60);
        }
        f.worm = WormView::Read {
            stream_commit_time: Some(NOW as i64 - 60),
            last_archived: Some((41, None)),
            gaps: Vec::new(),
        };
        let a = assess(&f);
        assert_eq!(a.state, State::Warning, "{}", texts(&a));
        assert!(texts(&a).contains("WORM tier exposure 60 s"));
    }
}
