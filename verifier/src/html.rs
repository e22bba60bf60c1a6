//! The HTML audit report: one self-contained file (inline CSS, inline SVG, a few lines of
//! inline script; no external assets, no network), readable offline years later.
//!
//! Layout: a verdict banner with the counts, a timeline per (resetlogs id, thread) showing each
//! sequence as shipped / verified / gap / acknowledged gap / tampered, the collector's streams
//! in WORM (when there are some), the findings table, and the per-file table with a filter
//! box. Every string from the report is HTML-escaped.
//!
//! The script only filters the file table and highlights a file when its timeline cell is
//! clicked; when it has run it logs one line (`redovault-report ready ...`) to the console, so
//! a headless browser can tell that the page rendered without errors.

use std::fmt::Write as _;

use crate::report::{AuditReport, CellState, FileStatus, Severity, ThreadTimeline, Verdict};

/// Above this many sequences, consecutive cells with the same state are drawn as one bar.
const MAX_CELLS_DRAWN: usize = 600;
/// Width of the timeline drawing, in SVG units.
const TIMELINE_WIDTH: f64 = 1000.0;

/// Escapes text for HTML element content and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn state_class(s: CellState) -> &'static str {
    match s {
        CellState::Shipped => "shipped",
        CellState::Verified => "verified",
        CellState::Gap => "gap",
        CellState::AcknowledgedGap => "ackgap",
        CellState::Tampered => "tampered",
    }
}

fn state_label(s: CellState) -> &'static str {
    match s {
        CellState::Shipped => "shipped",
        CellState::Verified => "verified",
        CellState::Gap => "gap",
        CellState::AcknowledgedGap => "acknowledged gap",
        CellState::Tampered => "tampered",
    }
}

fn file_status_label(s: FileStatus) -> &'static str {
    match s {
        FileStatus::Shipped => "shipped",
        FileStatus::Verified => "verified (HEAD)",
        FileStatus::DeepVerified => "verified (re-hashed)",
        FileStatus::Tampered => "TAMPERED",
        FileStatus::Missing => "MISSING",
    }
}

const STYLE: &str = r#"
:root { --shipped:#8ecae6; --verified:#2a9d8f; --gap:#f4a261; --ackgap:#e9c46a; --tampered:#d62828; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0; color: #1d3557; background: #f8f9fa; }
header { padding: 18px 28px; color: #fff; }
header.clean { background: #2a9d8f; } header.findings { background: #d62828; } header.could_not_run { background: #6c757d; }
header h1 { margin: 0 0 4px; font-size: 22px; }
main { padding: 8px 28px 40px; }
section { background: #fff; border-radius: 6px; padding: 12px 18px; margin: 16px 0; box-shadow: 0 1px 3px rgba(0,0,0,.12); }
h2 { font-size: 17px; margin: 4px 0 10px; }
dl.counts { display: grid; grid-template-columns: repeat(auto-fill, minmax(190px, 1fr)); gap: 6px 18px; margin: 0; }
dl.counts div { background: #f1f3f5; border-radius: 4px; padding: 6px 10px; }
dl.counts dt { font-size: 12px; color: #495057; } dl.counts dd { margin: 0; font-size: 18px; font-weight: 600; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: 4px 8px; border-bottom: 1px solid #e9ecef; vertical-align: top; }
th { background: #f1f3f5; font-weight: 600; }
td.mono, .mono { font-family: ui-monospace, "SFMono-Regular", Menlo, monospace; font-size: 12px; word-break: break-all; }
tr.error td:first-child { border-left: 4px solid var(--tampered); } tr.info td:first-child { border-left: 4px solid var(--ackgap); }
tr.hl { background: #fff3bf; }
.legend span { display: inline-block; margin-right: 14px; }
.legend i { display: inline-block; width: 12px; height: 12px; border-radius: 2px; margin-right: 4px; vertical-align: -1px; }
svg.timeline { width: 100%; height: 46px; display: block; }
svg.timeline rect { cursor: pointer; }
.shipped { fill: var(--shipped); background: var(--shipped); } .verified { fill: var(--verified); background: var(--verified); }
.gap { fill: var(--gap); background: var(--gap); } .ackgap { fill: var(--ackgap); background: var(--ackgap); }
.tampered { fill: var(--tampered); background: var(--tampered); }
.axis { display: flex; justify-content: space-between; font-size: 12px; color: #495057; margin-bottom: 8px; }
input[type=search] { width: 320px; padding: 5px 8px; margin-bottom: 8px; }
footer { color: #6c757d; font-size: 12px; padding: 0 28px 20px; }
"#;

const SCRIPT: &str = r#"
(function () {
  var filter = document.getElementById('file-filter');
  var rows = Array.prototype.slice.call(document.querySelectorAll('#files tbody tr'));
  filter.addEventListener('input', function () {
    var q = filter.value.toLowerCase();
    rows.forEach(function (r) { r.style.display = r.textContent.toLowerCase().indexOf(q) >= 0 ? '' : 'none'; });
  });
  var cells = document.querySelectorAll('svg.timeline rect');
  Array.prototype.forEach.call(cells, function (c) {
    c.addEventListener('click', function () {
      var id = 'file-' + c.getAttribute('data-rl') + '-' + c.getAttribute('data-thread') + '-' + c.getAttribute('data-seq');
      var row = document.getElementById(id);
      rows.forEach(function (r) { r.classList.remove('hl'); });
      if (row) { row.classList.add('hl'); row.scrollIntoView({ block: 'center' }); }
    });
  });
  console.log('redovault-report ready threads=' + document.querySelectorAll('svg.timeline').length +
              ' bars=' + cells.length + ' files=' + rows.length +
              ' findings=' + document.querySelectorAll('#findings tbody tr').length);
})();
"#;

/// Renders the report as one self-contained HTML document.
pub fn render(r: &AuditReport) -> String {
    let mut h = String::with_capacity(16 * 1024 + r.files.len() * 400);
    let (banner_class, banner) = match r.verdict {
        Verdict::Clean => ("clean", "Clean: everything checked is as recorded"),
        Verdict::Findings => ("findings", "Findings: see below"),
        Verdict::CouldNotRun => ("could_not_run", "Could not run"),
    };
    let _ = write!(
        h,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>redovault audit report: {}</title><style>{STYLE}</style></head><body>\n",
        escape(&r.target)
    );
    let _ = write!(
        h,
        "<header class=\"{banner_class}\"><h1>redovault audit report: {banner}</h1>\
         <div>{} &middot; {} mode &middot; {} to {}</div><div>{}</div></header>\n<main>\n",
        escape(&r.target),
        escape(&r.mode),
        escape(&r.started_at),
        escape(&r.finished_at),
        escape(&r.run.describe())
    );
    if let Some(e) = &r.error {
        let _ = writeln!(
            h,
            "<section><h2>Why the run could not complete</h2><p>{}</p></section>",
            escape(e)
        );
    }
    summary_section(&mut h, r);
    timeline_section(&mut h, r);
    streams_section(&mut h, r);
    copies_section(&mut h, r);
    unsealed_section(&mut h, r);
    findings_section(&mut h, r);
    files_section(&mut h, r);
    let _ = write!(
        h,
        "</main><footer>Report format {} &middot; exit code {} &middot; generated by redovault-verifier</footer>\n\
         <script>{SCRIPT}</script></body></html>\n",
        r.version,
        r.verdict.exit_code()
    );
    h
}

fn summary_section(h: &mut String, r: &AuditReport) {
    let m = &r.summary;
    let items: [(&str, u64); 8] = [
        ("manifest entries", m.manifest_entries),
        ("objects checked (HEAD)", m.objects_checked),
        ("objects re-hashed", m.objects_deep_verified),
        ("MiB re-hashed", m.bytes_rehashed >> 20),
        ("collector chunks authenticated", m.segment_chunks_checked),
        ("logs cross-checked with stream", m.logs_cross_checked),
        ("errors", m.errors),
        ("acknowledged", m.infos),
    ];
    h.push_str("<section id=\"summary\"><h2>Summary</h2><dl class=\"counts\">");
    for (k, v) in items {
        let _ = write!(h, "<div><dt>{k}</dt><dd>{v}</dd></div>");
    }
    for (k, v) in [
        ("shipped but not yet sealed", m.unsealed_logs),
        ("unreferenced objects", m.unreferenced_objects),
        ("quarantined objects", m.quarantined_objects),
    ] {
        let _ = write!(h, "<div><dt>{k}</dt><dd>{v}</dd></div>");
    }
    if m.worm_streams > 0 {
        let streams: [(&str, u64); 8] = [
            ("streams in WORM", m.worm_streams),
            ("stream chain entries", m.stream_chain_entries),
            ("pieces checked (HEAD)", m.pieces_checked),
            ("pieces re-hashed", m.pieces_deep_verified),
            ("MiB of pieces re-hashed", m.piece_bytes_rehashed >> 20),
            ("pieces unreferenced", m.pieces_unreferenced),
            (
                "pieces cross-checked with archived logs",
                m.pieces_cross_checked,
            ),
            ("pieces cross-check pending", m.pieces_cross_check_pending),
        ];
        for (k, v) in streams {
            let _ = write!(h, "<div><dt>{k}</dt><dd>{v}</dd></div>");
        }
    }
    h.push_str("</dl></section>\n");
}

fn streams_section(h: &mut String, r: &AuditReport) {
    if r.streams.is_empty() {
        return;
    }
    h.push_str(
        "<section id=\"streams\"><h2>The collector's streams in WORM</h2><table><thead><tr>\
         <th>stream</th><th>sealed segments</th><th>pieces</th><th>from</th><th>to</th>\
         <th>last commit SCN</th><th>last commit time</th><th>unreferenced</th><th>errors</th>\
         </tr></thead><tbody>",
    );
    for w in &r.streams {
        let _ = write!(
            h,
            "<tr{}><td class=\"mono\">{}</td><td>{}</td><td>{}</td><td class=\"mono\">{}</td>\
             <td class=\"mono\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            if w.errors > 0 { " class=\"error\"" } else { "" },
            escape(&w.stream),
            w.sealed_segments,
            w.entries,
            escape(w.first.as_deref().unwrap_or("-")),
            escape(w.next.as_deref().unwrap_or("-")),
            w.last_commit_scn.map_or("-".to_string(), |s| s.to_string()),
            escape(w.last_commit_time.as_deref().unwrap_or("-")),
            w.unreferenced,
            w.errors
        );
    }
    h.push_str("</tbody></table></section>\n");
}

/// Each stream's copies (several collectors, WORM prefixes): which agree, which are behind,
/// which diverge and where.
fn copies_section(h: &mut String, r: &AuditReport) {
    if r.copies.is_empty() {
        return;
    }
    h.push_str(
        "<section id=\"copies\"><h2>Copies of each stream</h2><table><thead><tr>\
         <th>stream</th><th>copy</th><th>kind</th><th>where</th><th>ends at</th>\
         <th>last commit SCN</th><th>status</th></tr></thead><tbody>",
    );
    for c in &r.copies {
        for k in &c.copies {
            let status = match &k.diverges_at {
                Some(p) => format!("diverges at {p}"),
                None => k.status.clone(),
            };
            let _ = write!(
                h,
                "<tr{}><td class=\"mono\">{}</td><td>{}</td><td>{}</td><td class=\"mono\">{}</td>\
                 <td class=\"mono\">{}</td><td>{}</td><td>{}</td></tr>",
                if k.diverges_at.is_some() {
                    " class=\"error\""
                } else {
                    ""
                },
                escape(&c.stream),
                escape(&k.name),
                escape(&k.kind),
                escape(&k.place),
                escape(k.end.as_deref().unwrap_or("-")),
                k.last_commit_scn.map_or("-".to_string(), |s| s.to_string()),
                escape(&status)
            );
        }
    }
    h.push_str("</tbody></table></section>\n");
}

/// The archived logs shipped but not yet sealed: in WORM, in no sealed manifest yet.
fn unsealed_section(h: &mut String, r: &AuditReport) {
    if r.unsealed.is_empty() {
        return;
    }
    let _ = write!(
        h,
        "<section id=\"unsealed\"><h2>Shipped but not yet sealed</h2><p>{} archived log(s) in WORM that no sealed manifest lists yet (the watcher seals its manifest every seal interval); identified by their Oracle headers, their key is their SHA-256. <code>restore archive</code> restores them.</p><table><thead><tr>\
         <th>database</th><th>resetlogs id</th><th>thread</th><th>sequence</th><th>first SCN</th><th>next SCN</th>\
         <th>size</th><th>SHA-256 checked</th><th>object</th></tr></thead><tbody>",
        r.unsealed.len()
    );
    for u in &r.unsealed {
        let _ = write!(
            h,
            "<tr><td>{} ({})</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"mono\">{}</td></tr>",
            u.header.db_id,
            escape(&u.header.db_name),
            u.header.resetlogs_id,
            u.header.thread,
            u.header.sequence,
            u.header.first_scn,
            u.header.next_scn,
            u.size,
            match u.hash_check {
                crate::unsealed::HashCheck::Server => "server checksum",
                crate::unsealed::HashCheck::Rehashed => "re-hashed",
                crate::unsealed::HashCheck::NotChecked => "at restore",
            },
            escape(&u.key)
        );
    }
    h.push_str("</tbody></table></section>\n");
}

/// Runs of equal state: (first sequence, last sequence, state).
fn runs(t: &ThreadTimeline) -> Vec<(u32, u32, CellState)> {
    let mut out: Vec<(u32, u32, CellState)> = Vec::new();
    for c in &t.cells {
        match out.last_mut() {
            Some(last) if last.2 == c.state && t.cells.len() > MAX_CELLS_DRAWN => {
                last.1 = c.sequence;
            }
            _ => out.push((c.sequence, c.sequence, c.state)),
        }
    }
    out
}

fn timeline_section(h: &mut String, r: &AuditReport) {
    h.push_str("<section id=\"timeline\"><h2>Timeline per thread</h2><div class=\"legend\">");
    for s in [
        CellState::Shipped,
        CellState::Verified,
        CellState::Gap,
        CellState::AcknowledgedGap,
        CellState::Tampered,
    ] {
        let _ = write!(
            h,
            "<span><i class=\"{}\"></i>{}</span>",
            state_class(s),
            state_label(s)
        );
    }
    h.push_str("</div>");
    if r.threads.is_empty() {
        h.push_str("<p>No archived logs in the manifest.</p>");
    }
    for t in &r.threads {
        let (first, last) = match (t.cells.first(), t.cells.last()) {
            (Some(a), Some(b)) => (a.sequence, b.sequence),
            _ => continue,
        };
        let _ = write!(
            h,
            "<h3>Resetlogs id {} &middot; thread {} &middot; sequences {first} to {last}</h3>\
             <svg class=\"timeline\" viewBox=\"0 0 {TIMELINE_WIDTH} 46\" preserveAspectRatio=\"none\" \
             role=\"img\" aria-label=\"timeline of thread {}\">",
            t.resetlogs_id, t.thread, t.thread
        );
        let n = f64::from(last.saturating_sub(first)) + 1.0;
        let unit = TIMELINE_WIDTH / n;
        for (a, b, s) in runs(t) {
            let x = f64::from(a - first) * unit;
            let w = (f64::from(b - a) + 1.0) * unit;
            let title = if a == b {
                format!("sequence {a}: {}", state_label(s))
            } else {
                format!("sequences {a} to {b}: {}", state_label(s))
            };
            let _ = write!(
                h,
                "<rect class=\"{}\" x=\"{x:.3}\" y=\"4\" width=\"{:.3}\" height=\"38\" \
                 data-rl=\"{}\" data-thread=\"{}\" data-seq=\"{a}\"><title>{}</title></rect>",
                state_class(s),
                (w - unit.min(1.0) * 0.15).max(0.2),
                t.resetlogs_id,
                t.thread,
                escape(&title)
            );
        }
        let mid = first + (last - first) / 2;
        let _ = write!(
            h,
            "</svg><div class=\"axis\"><span>{first}</span><span>{mid}</span><span>{last}</span></div>"
        );
    }
    h.push_str("</section>\n");
}

fn findings_section(h: &mut String, r: &AuditReport) {
    h.push_str(
        "<section><h2>Findings</h2><table id=\"findings\"><thead><tr><th>severity</th>\
         <th>kind</th><th>subject</th><th>evidence</th><th>entry</th></tr></thead><tbody>",
    );
    for f in &r.findings {
        let (class, sev) = match f.severity {
            Severity::Error => ("error", "error"),
            Severity::Info => ("info", "info"),
        };
        let entry = f.entry.map(|e| e.to_string()).unwrap_or_default();
        let _ = write!(
            h,
            "<tr class=\"{class}\"><td>{sev}</td><td class=\"mono\">{}</td><td>{}</td><td>{}</td><td>{entry}</td></tr>",
            f.kind.as_str(),
            escape(&f.subject),
            escape(&f.detail)
        );
    }
    h.push_str("</tbody></table>");
    if r.findings.is_empty() {
        h.push_str("<p>None.</p>");
    }
    h.push_str("</section>\n");
}

fn files_section(h: &mut String, r: &AuditReport) {
    h.push_str(
        "<section><h2>Archived logs</h2><input type=\"search\" id=\"file-filter\" \
         placeholder=\"filter: sequence, name, status, hash\"><table id=\"files\"><thead><tr>\
         <th>entry</th><th>thread</th><th>sequence</th><th>file</th><th>size</th><th>status</th>\
         <th>last re-hashed</th><th>stream cross-check</th><th>SHA-256</th></tr></thead><tbody>",
    );
    for f in &r.files {
        let bad = matches!(f.status, FileStatus::Tampered | FileStatus::Missing);
        let _ = write!(
            h,
            "<tr id=\"file-{}-{}-{}\"{}><td>{}</td><td>{}</td><td>{}</td><td class=\"mono\">{}</td>\
             <td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"mono\">{}</td></tr>",
            f.log.resetlogs_id,
            f.log.thread,
            f.log.sequence,
            if bad { " class=\"error\"" } else { "" },
            f.entry,
            f.log.thread,
            f.log.sequence,
            escape(&f.file_name),
            f.size,
            file_status_label(f.status),
            escape(f.last_deep_verified.as_deref().unwrap_or("never")),
            if f.cross_checked { "yes" } else { "no" },
            escape(&f.sha256)
        );
    }
    h.push_str("</tbody></table></section>\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::TimelineCell;
    use crate::report::tests::sample;

    #[test]
    fn escapes_everything_from_the_report() {
        let html = render(&sample());
        assert!(!html.contains("<script>alert(1)"), "target must be escaped");
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert_eq!(html.matches("<script>").count(), 1, "only our own script");
    }

    #[test]
    fn self_contained() {
        let html = render(&sample());
        for external in ["http://", "https://", "src=", "<link", "@import", "url("] {
            assert!(!html.contains(external), "external reference {external}");
        }
    }

    #[test]
    fn timeline_draws_each_sequence_with_its_state() {
        let html = render(&sample());
        assert_eq!(html.matches("<rect class=").count(), 6);
        assert!(html.contains("<rect class=\"gap\""));
        assert!(html.contains("<title>sequence 15: tampered</title>"));
        assert!(html.contains("id=\"file-1190000000-1-15\" class=\"error\""));
    }

    #[test]
    fn long_timelines_are_drawn_as_runs() {
        let mut r = sample();
        r.threads[0].cells = (1..=5000)
            .map(|s| TimelineCell {
                sequence: s,
                state: if s == 2500 {
                    CellState::Gap
                } else {
                    CellState::Verified
                },
            })
            .collect();
        let html = render(&r);
        assert_eq!(html.matches("<rect class=").count(), 3);
        assert!(html.contains("sequences 2501 to 5000: verified"));
    }

    #[test]
    fn streams_appear_only_when_there_are_some() {
        let html = render(&sample());
        assert!(!html.contains("id=\"streams\""));
        assert!(!html.contains("streams in WORM"));
        let mut r = sample();
        r.summary.worm_streams = 1;
        r.summary.pieces_checked = 7;
        let r = r.with_streams(vec![crate::report::WormStreamResult {
            stream: "db1-rl2-t1<b>".into(),
            entries: 7,
            errors: 1,
            ..Default::default()
        }]);
        let html = render(&r);
        assert!(html.contains("<dt>pieces checked (HEAD)</dt><dd>7</dd>"));
        assert!(html.contains("id=\"streams\""));
        assert!(html.contains("db1-rl2-t1&lt;b&gt;"));
    }

    #[test]
    fn escape_covers_quotes() {
        assert_eq!(escape("a\"b'c&<>"), "a&quot;b&#39;c&amp;&lt;&gt;");
    }
}
