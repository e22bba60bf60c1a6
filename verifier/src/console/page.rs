//! The console's HTML, rendered on the server from the same snapshot as the JSON API: the
//! page is whole without JavaScript (a `<meta refresh>` in `<noscript>` reloads it), and the
//! embedded script only swaps `<main>` for a fresh copy every few seconds. Every text from a
//! source is escaped; no inline script or style (the Content-Security-Policy forbids them).

use std::fmt::Write as _;

use crate::console::Snapshot;
use crate::console::assess::{State, human_secs};
use crate::console::overview::Row;
use crate::console::rto::RtoBasis;

/// Escapes text for HTML content and attribute values.
pub fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

fn age(now: f64, t: Option<i64>) -> String {
    t.map_or_else(
        || "unknown".into(),
        |t| format!("{} ago", human_secs((now - t as f64).max(0.0))),
    )
}

fn opt_secs(x: Option<f64>) -> String {
    x.map_or_else(|| "unknown".into(), human_secs)
}

fn time_utc(t: f64) -> String {
    chrono::DateTime::from_timestamp(t as i64, 0).map_or_else(
        || "?".into(),
        |d| d.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
    )
}

fn state_class(s: State) -> &'static str {
    match s {
        State::Protected => "protected",
        State::Warning => "warning",
        State::Alert => "alert",
    }
}

/// The frame around a page's `<main>`.
fn frame(title: &str, snap: &Snapshot, main: &str) -> String {
    format!(
        r#"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<noscript><meta http-equiv="refresh" content="10"></noscript>
<title>{title}</title>
<link rel="stylesheet" href="/assets/console.css">
<script src="/assets/console.js" defer></script>
</head>
<body>
<header><a class="brand" href="/">redovault DR console</a><span class="note" id="live">read-only · updated {updated}</span></header>
{main}
<footer>Read-only: nothing on this console changes state. JSON: <a href="/api/v1/overview">/api/v1/overview</a> · <a href="/api/v1/events">events</a> · <a href="/api/v1/drills">drills</a> · <a href="/api/v1/sources">sources</a> · <a href="/api/v1/recoveries">recoveries</a> · <a href="/api/v1/verifications">verifier runs</a></footer>
</body>
</html>
"#,
        title = esc(title),
        updated = esc(&time_utc(snap.now)),
    )
}

fn row_html(o: &mut String, now: f64, r: &Row, link: bool) {
    let a = &r.assessment;
    let name = if link {
        format!("<a href=\"/db/{n}\">{n}</a>", n = esc(&r.database))
    } else {
        esc(&r.database)
    };
    let thread = if r.thread == 0 {
        "?".to_string()
    } else {
        r.thread.to_string()
    };
    let _ = write!(
        o,
        "<tr class=\"row {cls}\" data-db=\"{db}\" data-thread=\"{thread}\" data-state=\"{state}\">\
         <td data-label=\"Database\">{name}<span class=\"sub\">thread {thread} · DBID {id}</span></td>\
         <td data-label=\"State\"><span class=\"badge {cls}\">{state}</span></td>",
        cls = state_class(a.state),
        db = esc(&r.database),
        state = a.state.label(),
        id = r.db_id,
    );
    o.push_str("<td data-label=\"Reasons\"><ul class=\"reasons\">");
    for x in &a.reasons {
        let _ = write!(
            o,
            "<li class=\"{}\">{}</li>",
            state_class(x.level),
            esc(&x.text)
        );
    }
    if a.reasons.is_empty() {
        o.push_str("<li class=\"protected\">every source known, within targets</li>");
    }
    o.push_str("</ul></td>");
    let _ = write!(
        o,
        "<td data-label=\"Exposure\" class=\"exposure\">collector <b>{ec}</b><span class=\"sub\">WORM {ew} · RPO target {rpo}</span></td>",
        ec = esc(&opt_secs(a.exposure_collector)),
        ew = esc(&opt_secs(a.exposure_worm)),
        rpo = esc(&human_secs(r.rpo_target)),
    );
    let lc = r.last_commit.as_ref().map_or_else(
        || "none known".to_string(),
        |c| {
            format!(
                "SCN {} <span class=\"sub\">XID {} · {} · on {}</span>",
                c.scn,
                esc(c.xid.as_deref().unwrap_or("?")),
                esc(&age(now, c.time)),
                esc(&c.on)
            )
        },
    );
    let _ = write!(o, "<td data-label=\"Last commit\">{lc}</td>");
    let arch = r.last_archived.map_or_else(
        || "none".to_string(),
        |(s, a)| {
            format!(
                "{s} <span class=\"sub\">{}</span>",
                a.map_or_else(
                    || "age unknown".into(),
                    |a| format!("{} ago", human_secs(a))
                )
            )
        },
    );
    let gaps = if r.gaps.is_empty() {
        "none".to_string()
    } else {
        format!("<b class=\"alert\">{}</b>", r.gaps.len())
    };
    let _ = write!(
        o,
        "<td data-label=\"Archived\">{arch}<span class=\"sub\">gaps {gaps}</span></td>\
         <td data-label=\"Lag\">{lag}<span class=\"sub\">WORM behind {wb}</span></td>",
        lag = r
            .lag_bytes
            .map_or_else(|| "unknown".into(), |b| format!("{b:.0} B")),
        wb = esc(&opt_secs(r.worm_behind)),
    );
    let ver = r.verification.as_ref().map_or_else(
        || "none yet".to_string(),
        |(v, a)| {
            format!(
                "{} <span class=\"sub\">{}</span>",
                esc(v),
                a.map_or_else(
                    || "age unknown".into(),
                    |a| format!("{} ago", human_secs(a))
                )
            )
        },
    );
    let rto_cls = match r.estimated_rto {
        Some(e) if e > r.rto_target => "warning",
        _ => "",
    };
    let basis = r.rto_estimate.as_ref().map_or_else(String::new, |e| {
        format!(
            " · <span class=\"basis\" data-basis=\"{}\">{}</span>",
            match e.basis {
                RtoBasis::Measured { .. } => "measured",
                RtoBasis::Configured => "configured",
            },
            esc(&format!(
                "{}/s, fixed {}: {}",
                human_bytes(e.throughput),
                human_secs(e.fixed_seconds),
                e.basis_text()
            ))
        )
    });
    let _ = write!(
        o,
        "<td data-label=\"Verified\">{ver}</td>\
         <td data-label=\"RTO\"><span class=\"{rto_cls}\">{est}</span><span class=\"sub\">target {t}{basis}</span></td></tr>",
        est = esc(&opt_secs(r.estimated_rto)),
        t = esc(&human_secs(r.rto_target)),
    );
}

fn table(o: &mut String, now: f64, rows: &[&Row], link: bool) {
    o.push_str(
        "<table class=\"overview\"><thead><tr><th>Database</th><th>State</th><th>Reasons</th>\
         <th>Exposure now</th><th>Last commit off the host</th><th>Last archived</th>\
         <th>Lag</th><th>Last verification</th><th>Estimated RTO</th></tr></thead><tbody>",
    );
    for r in rows {
        row_html(o, now, r, link);
    }
    o.push_str("</tbody></table>");
}

fn sources(o: &mut String, snap: &Snapshot) {
    o.push_str("<section><h2>Sources</h2><ul class=\"sources\">");
    for s in &snap.sources {
        let _ = write!(
            o,
            "<li class=\"{cls}\" data-source=\"{name}\"><b>{kind} {name}</b> <span class=\"sub\">{from} · read {age}</span>{err}</li>",
            cls = if s.error.is_some() {
                "alert"
            } else {
                "protected"
            },
            kind = esc(&s.kind),
            name = esc(&s.name),
            from = esc(&s.from),
            age = s
                .age
                .map_or_else(|| "never".into(), |a| format!("{} ago", human_secs(a))),
            err = s.error.as_ref().map_or_else(String::new, |e| format!(
                "<span class=\"error\">{}</span>",
                esc(e)
            )),
        );
    }
    o.push_str("</ul></section>");
}

fn events(o: &mut String, snap: &Snapshot, db: Option<&str>) {
    o.push_str("<section><h2>Events</h2><ol class=\"events\">");
    let mut n = 0;
    for e in snap
        .events
        .iter()
        .rev()
        .filter(|e| db.is_none_or(|d| e.database == d))
        .take(50)
    {
        n += 1;
        let _ = write!(
            o,
            "<li class=\"{kind}\" data-kind=\"{kind}\"><time>{at}</time> <b>{db}</b> {text}</li>",
            kind = esc(&e.kind),
            at = esc(&time_utc(e.at)),
            db = esc(&e.database),
            text = esc(&e.text),
        );
    }
    if n == 0 {
        o.push_str("<li>none yet</li>");
    }
    o.push_str("</ol></section>");
}

fn drills(o: &mut String, snap: &Snapshot, db: Option<&str>) {
    o.push_str(
        "<section><h2>Drills and recoveries</h2><table class=\"drills\"><thead><tr><th>When</th>\
         <th>Database</th><th>Result</th><th>RPO</th><th>RTO</th><th>Report</th></tr></thead><tbody>",
    );
    let mut n = 0;
    for d in snap
        .drills
        .iter()
        .filter(|d| db.is_none_or(|x| d.database == x))
    {
        n += 1;
        let _ = write!(
            o,
            "<tr class=\"drill\" data-rto=\"{rto_state}\"><td data-label=\"When\">{at}</td><td data-label=\"Database\">{db}</td>\
             <td data-label=\"Result\"><span class=\"badge {pcls}\">{pass}</span></td>\
             <td data-label=\"RPO\">{rpo}<span class=\"sub\">target {rpot} · {rpo_state}</span></td>\
             <td data-label=\"RTO\">{rto}<span class=\"sub\">target {rtot} · <b class=\"{rcls}\">{rto_state}</b></span></td>\
             <td data-label=\"Report\" class=\"file\">{file}</td></tr>",
            at = esc(&time_utc(d.run.at as f64)),
            db = esc(&format!("{} ({})", d.database, d.run.kind)),
            pcls = if d.run.pass { "protected" } else { "alert" },
            pass = if d.run.pass { "pass" } else { "FAIL" },
            rpo = esc(&match (d.run.rpo_seconds, d.run.rpo_commits) {
                (Some(s), Some(c)) => format!("{} ({c} commits lost)", human_secs(s)),
                // A recovery has no ground truth to count its losses against.
                _ => "not measured (a recovery)".to_string(),
            }),
            rpot = esc(&human_secs(d.rpo_target)),
            rpo_state = match d.run.rpo_seconds {
                None => "-",
                Some(s) if s > d.rpo_target => "exceeded",
                Some(_) => "met",
            },
            rto = esc(&human_secs(d.run.rto_seconds)),
            rtot = esc(&human_secs(d.rto_target)),
            rcls = if d.run.rto_seconds > d.rto_target {
                "alert"
            } else {
                "protected"
            },
            rto_state = if d.run.rto_seconds > d.rto_target {
                "exceeded"
            } else {
                "met"
            },
            file = esc(&d.run.file.display().to_string()),
        );
    }
    if n == 0 {
        o.push_str(
            "<tr><td colspan=\"6\">no drill report found in the report directories</td></tr>",
        );
    }
    o.push_str("</tbody></table></section>");
}

/// Bytes as the page writes them (`512 B`, `3.2 MB`, `1.5 GB`; powers of 1000).
pub fn human_bytes(b: f64) -> String {
    if b < 1e3 {
        format!("{b:.0} B")
    } else if b < 1e6 {
        format!("{:.1} kB", b / 1e3)
    } else if b < 1e9 {
        format!("{:.1} MB", b / 1e6)
    } else {
        format!("{:.1} GB", b / 1e9)
    }
}

/// The timeline of sequences of each thread of `db`: runs of archived, streamed, verified,
/// gap and tampered sequences, as a wrapping list (readable at phone width, no script).
fn timelines(o: &mut String, snap: &Snapshot, db: &str) {
    o.push_str("<section><h2>Sequences</h2>");
    o.push_str(
        "<p class=\"legend\"><span class=\"seq verified\">verified</span> \
         <span class=\"seq archived\">archived</span> <span class=\"seq streamed\">streamed</span> \
         <span class=\"seq gap\">gap</span> <span class=\"seq acknowledged_gap\">acknowledged gap</span> \
         <span class=\"seq tampered\">tampered</span></p>",
    );
    let mut n = 0;
    for t in snap.timelines.iter().filter(|t| t.database == db) {
        n += 1;
        let counts: Vec<String> = t
            .timeline
            .counts
            .iter()
            .map(|(st, c)| format!("{c} {}", st.label()))
            .collect();
        let _ = write!(
            o,
            "<h3>thread {} <span class=\"sub\">{} · {}</span></h3><ol class=\"timeline\" data-thread=\"{}\">",
            t.thread,
            esc(&t.stream),
            esc(&counts.join(", ")),
            t.thread
        );
        if t.timeline.omitted > 0 {
            let _ = write!(
                o,
                "<li class=\"seq omitted\">{} older run(s) not shown</li>",
                t.timeline.omitted
            );
        }
        for r in &t.timeline.runs {
            let seqs = if r.from == r.to {
                r.from.to_string()
            } else {
                format!("{}–{}", r.from, r.to)
            };
            let mut facts: Vec<&str> = Vec::new();
            if r.archived {
                facts.push("archived");
            }
            if r.streamed {
                facts.push("streamed");
            }
            if r.verified {
                facts.push("verified");
            }
            let _ = write!(
                o,
                "<li class=\"seq {cls}\" data-state=\"{cls}\" data-from=\"{from}\" data-to=\"{to}\" title=\"{title}\"><b>{seqs}</b> {label}</li>",
                cls = r.state.class(),
                from = r.from,
                to = r.to,
                title = esc(&if facts.is_empty() {
                    "held nowhere".to_string()
                } else {
                    facts.join(", ")
                }),
                label = r.state.label(),
            );
        }
        if t.timeline.runs.is_empty() {
            o.push_str("<li>no sequence known yet</li>");
        }
        o.push_str("</ol>");
    }
    if n == 0 {
        o.push_str("<p>no thread known yet</p>");
    }
    o.push_str("</section>");
}

/// The recoveries not complete: the current step, the steps done, the RTO so far against the
/// target.
fn recoveries(o: &mut String, snap: &Snapshot, db: Option<&str>) {
    let list: Vec<_> = snap
        .recoveries
        .iter()
        .filter(|r| db.is_none_or(|d| r.database == d))
        .collect();
    if list.is_empty() {
        return;
    }
    o.push_str(
        "<section><h2>Recoveries in progress</h2><table class=\"recoveries\"><thead><tr><th>Database</th>\
         <th>Now</th><th>Steps done</th><th>RTO so far</th><th>Entry</th></tr></thead><tbody>",
    );
    for r in list {
        let p = &r.progress;
        let now = match (&p.running, &p.failed, &p.next_step) {
            (Some(s), _, _) => format!("running {s}"),
            (None, Some(f), _) => format!("stopped: {f} failed; a re-run resumes there"),
            (None, None, Some(n)) => format!("stopped before {n}; a re-run resumes there"),
            (None, None, None) => "stopped".to_string(),
        };
        let _ = write!(
            o,
            "<tr class=\"recovery\" data-running=\"{running}\"><td data-label=\"Database\">{db}<span class=\"sub\">started {started} · run {runs}</span></td>\
             <td data-label=\"Now\"><b>{now}</b><span class=\"sub\">updated {at}</span></td>\
             <td data-label=\"Steps done\">{done} of {total}<span class=\"sub\">{names}</span></td>\
             <td data-label=\"RTO so far\"><span class=\"{cls}\">{rto}</span><span class=\"sub\">target {target} · {state}</span></td>\
             <td data-label=\"Entry\" class=\"file\">{file}</td></tr>",
            running = p.running.is_some(),
            db = esc(&r.database),
            started = esc(&p.started_at),
            runs = p.runs,
            now = esc(&now),
            at = esc(&time_utc(p.at as f64)),
            done = p.steps_done.len(),
            total = p.steps_total,
            names = esc(&p.steps_done.join(", ")),
            cls = if r.rto_exceeded { "alert" } else { "" },
            rto = esc(&human_secs(r.rto_so_far)),
            target = esc(&human_secs(r.rto_target)),
            state = if r.rto_exceeded { "exceeded" } else { "within" },
            file = esc(&p.file.display().to_string()),
        );
    }
    o.push_str("</tbody></table></section>");
}

/// The newest verifier runs: verdict, mode, deep-verify coverage and throughput.
fn verifier_runs(o: &mut String, snap: &Snapshot) {
    o.push_str(
        "<section><h2>Verifier runs</h2><table class=\"verifications\"><thead><tr><th>Finished</th>\
         <th>Verdict</th><th>Mode</th><th>Deep-verified</th><th>Throughput</th><th>Report</th></tr></thead><tbody>",
    );
    for v in &snap.verifications {
        let coverage = match v.deep_fraction() {
            Some(f) => format!(
                "{:.0}% ({} of {} archived logs)",
                f * 100.0,
                v.objects_deep_verified,
                v.objects_checked
            ),
            None => "no archived log checked".to_string(),
        };
        let _ = write!(
            o,
            "<tr class=\"verification\"><td data-label=\"Finished\">{fin}</td>\
             <td data-label=\"Verdict\"><span class=\"badge {cls}\">{verdict}</span><span class=\"sub\">{errors} error(s)</span></td>\
             <td data-label=\"Mode\">{mode}</td>\
             <td data-label=\"Deep-verified\" class=\"coverage\">{coverage}<span class=\"sub\">{ever} of {all} ever deep-verified · {pieces} of {pieces_all} stream pieces this run</span></td>\
             <td data-label=\"Throughput\" class=\"throughput\">{mbps}<span class=\"sub\">{bytes} re-hashed in {secs}</span></td>\
             <td data-label=\"Report\" class=\"file\">{file}</td></tr>",
            fin = esc(&v.finished_at),
            cls = match v.verdict.as_str() {
                "Clean" | "clean" => "protected",
                "Findings" | "findings" => "alert",
                _ => "warning",
            },
            verdict = esc(&v.verdict),
            errors = v.errors,
            mode = esc(&v.mode),
            ever = v.objects_ever_deep_verified,
            all = v.objects_checked,
            pieces = v.pieces_deep_verified,
            pieces_all = v.pieces_checked,
            mbps = v
                .deep_mb_per_second
                .map_or_else(|| "-".to_string(), |m| format!("{m:.1} MB/s")),
            bytes = esc(&human_bytes(v.bytes_rehashed as f64)),
            secs = esc(&opt_secs(v.check_seconds)),
            file = esc(&v.file.display().to_string()),
        );
    }
    if snap.verifications.is_empty() {
        o.push_str(
            "<tr><td colspan=\"6\">no verifier report found in the report directories</td></tr>",
        );
    }
    o.push_str("</tbody></table></section>");
}

fn summary(o: &mut String, rows: &[&Row]) {
    o.push_str("<p class=\"summary\">");
    for st in [State::Protected, State::Warning, State::Alert] {
        let n = rows.iter().filter(|r| r.assessment.state == st).count();
        // A zero count is grey: only a state some row has takes its colour.
        let cls = if n == 0 { "zero" } else { state_class(st) };
        let _ = write!(o, "<span class=\"badge {cls}\">{n} {}</span> ", st.label());
    }
    o.push_str("</p>");
}

/// The overview page.
pub fn overview(snap: &Snapshot) -> String {
    let mut o = String::from("<main><h1>Every database, recoverable to its last commit?</h1>");
    let rows: Vec<&Row> = snap.rows.iter().collect();
    summary(&mut o, &rows);
    table(&mut o, snap.now, &rows, true);
    for p in &snap.problems {
        let _ = write!(o, "<p class=\"error\">{}</p>", esc(p));
    }
    recoveries(&mut o, snap, None);
    events(&mut o, snap, None);
    drills(&mut o, snap, None);
    verifier_runs(&mut o, snap);
    sources(&mut o, snap);
    o.push_str("</main>");
    frame("redovault DR console", snap, &o)
}

/// One database's page (None: no such database).
pub fn database(snap: &Snapshot, name: &str) -> Option<String> {
    let rows: Vec<&Row> = snap.rows.iter().filter(|r| r.database == name).collect();
    if rows.is_empty() {
        return None;
    }
    let mut o = format!(
        "<main><p><a href=\"/\">← every database</a></p><h1>{} <span class=\"sub\">DBID {}</span></h1>",
        esc(name),
        rows[0].db_id
    );
    summary(&mut o, &rows);
    table(&mut o, snap.now, &rows, false);
    recoveries(&mut o, snap, Some(name));
    timelines(&mut o, snap, name);
    events(&mut o, snap, Some(name));
    drills(&mut o, snap, Some(name));
    o.push_str("</main>");
    Some(frame(&format!("{name} · redovault DR console"), snap, &o))
}

/// A small error page (404, 405).
pub fn error(code: u16, what: &str) -> String {
    format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{code}</title>\
         <link rel=\"stylesheet\" href=\"/assets/console.css\"></head><body><main><h1>{code}</h1>\
         <p>{}</p><p><a href=\"/\">the overview</a></p></main></body></html>",
        esc(what)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use redovault_redo::position::DbId;

    use crate::console::assess::Assessment;
    use crate::console::overview::ThreadTimelineShown;
    use crate::console::rto::{RtoBasis, RtoEstimate};
    use crate::console::sources::RecoveryProgress;
    use crate::console::timeline::{self, Inputs};
    use crate::console::{RecoveryShown, Snapshot};

    fn snapshot() -> Snapshot {
        let archived = [1, 2, 4].into_iter().collect();
        let row = Row {
            database: "PROD".into(),
            db_id: DbId(7),
            thread: 1,
            stream: Some("db7-rl1-t1".into()),
            assessment: Assessment {
                state: State::Protected,
                reasons: Vec::new(),
                exposure_collector: Some(1.0),
                exposure_worm: Some(2.0),
            },
            stream_up: Some(true),
            last_commit: None,
            last_archived: None,
            gaps: Vec::new(),
            lag_bytes: None,
            worm_behind: None,
            verification: None,
            estimated_rto: Some(40.0),
            rto_estimate: Some(RtoEstimate {
                seconds: 40.0,
                throughput: 5e6,
                fixed_seconds: 30.0,
                basis: RtoBasis::Measured {
                    kind: "drill".into(),
                    file: "/r/drill-report.json".into(),
                    at: 1_796_580_300,
                },
            }),
            rto_target: 7200.0,
            rpo_target: 5.0,
        };
        Snapshot {
            now: 1_796_580_400.0,
            timelines: vec![ThreadTimelineShown {
                database: "PROD".into(),
                thread: 1,
                stream: "db7-rl1-t1".into(),
                timeline: timeline::build(&Inputs {
                    archived: Some(&archived),
                    streamed: &[(5, 5)],
                    tampered: &[2],
                    ..Inputs::default()
                }),
            }],
            recoveries: vec![RecoveryShown {
                database: "PROD".into(),
                progress: RecoveryProgress {
                    file: "/h/recover-x.json".into(),
                    at: 1_796_580_390,
                    db_id: Some(7),
                    started_at: "2026-12-06T18:00:00Z".into(),
                    runs: 1,
                    running: Some("restore-online".into()),
                    running_since: Some(1_796_580_380),
                    steps_done: vec!["verify".into(), "restore-archive".into()],
                    steps_total: 4,
                    failed: None,
                    next_step: Some("restore-online".into()),
                    rto_seconds: 12.0,
                },
                rto_so_far: 32.0,
                rto_target: 7200.0,
                rto_exceeded: false,
            }],
            rows: vec![row],
            ..Snapshot::default()
        }
    }

    #[test]
    fn the_database_page_shows_the_timeline_the_recovery_and_the_rto_basis() {
        let snap = snapshot();
        let html = database(&snap, "PROD").unwrap();
        for want in [
            "<li class=\"seq archived\" data-state=\"archived\" data-from=\"1\" data-to=\"1\"",
            "<li class=\"seq tampered\" data-state=\"tampered\" data-from=\"2\"",
            "data-state=\"gap\" data-from=\"3\" data-to=\"3\"",
            "data-state=\"streamed\" data-from=\"5\"",
            "running restore-online",
            "2 of 4",
            "data-basis=\"measured\"",
            "measured on 2026-12-06 by drill /r/drill-report.json",
        ] {
            assert!(html.contains(want), "{want} missing in {html}");
        }
        assert!(!html.contains("style="), "no inline style");
        let overview = overview(&snap);
        assert!(overview.contains("Recoveries in progress"));
        assert!(overview.contains("Verifier runs"));
        assert!(
            !overview.contains("class=\"timeline\""),
            "timelines on the database page"
        );
    }

    #[test]
    fn text_from_sources_is_escaped() {
        assert_eq!(
            esc("<script>alert('x')</script> & \"q\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;"
        );
    }
}
