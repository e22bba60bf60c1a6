//! The console's HTML, rendered on the server from the same snapshot as the JSON API: the
//! page is whole without JavaScript (a `<meta refresh>` in `<noscript>` reloads it), and the
//! embedded script only swaps `<main>` for a fresh copy every few seconds. Every text from a
//! source is escaped; no inline script or style (the Content-Security-Policy forbids them).

use std::fmt::Write as _;

use crate::console::Snapshot;
use crate::console::assess::{State, human_secs};
use crate::console::overview::Row;

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
<footer>Read-only: nothing on this console changes state. JSON: <a href="/api/v1/overview">/api/v1/overview</a> · <a href="/api/v1/events">events</a> · <a href="/api/v1/drills">drills</a> · <a href="/api/v1/sources">sources</a></footer>
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
    let _ = write!(
        o,
        "<td data-label=\"Verified\">{ver}</td>\
         <td data-label=\"RTO\"><span class=\"{rto_cls}\">{est}</span><span class=\"sub\">target {t}</span></td></tr>",
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
    events(&mut o, snap, None);
    drills(&mut o, snap, None);
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

    #[test]
    fn text_from_sources_is_escaped() {
        assert_eq!(
            esc("<script>alert('x')</script> & \"q\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;"
        );
    }
}
