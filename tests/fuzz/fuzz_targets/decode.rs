//! Fuzz target: arbitrary bytes, cut into arbitrary chunks, through the streaming decoder and
//! the whole-file report. The decoder must never panic, never loop, and yield the same events
//! whatever the chunking.
#![no_main]

use libfuzzer_sys::fuzz_target;
use redovault_redo::{Analyzer, Decoder, Event, analyze};

/// A compact, comparable summary of one event.
fn summary(ev: &Event<'_>) -> String {
    match ev {
        Event::FileHeader(h) => format!("F{}/{}", h.block_size, h.block_count),
        Event::RedoHeader(h) => format!("H{}", h.sequence),
        Event::Block(b) => format!("B{}:{}", b.block, b.state),
        Event::Record(r) => {
            let mut s = format!("R{}:{}", r.rba, r.bytes.len());
            for v in r.vectors() {
                match v {
                    Ok(v) => s.push_str(&format!(",{}", v.opcode)),
                    Err(e) => s.push_str(&format!(",E{}", e.offset)),
                }
            }
            s
        }
        Event::Error(e) => format!("E{e}"),
        Event::End => "END".to_string(),
    }
}

fn run(data: &[u8], cuts: &[usize]) -> (Vec<String>, Option<String>) {
    let mut d = Decoder::new();
    let mut out = Vec::new();
    let mut at = 0usize;
    let feed = |d: &mut Decoder, chunk: &[u8], out: &mut Vec<String>| -> Option<String> {
        d.feed(chunk);
        loop {
            match d.poll() {
                Ok(Some(ev)) => out.push(summary(&ev)),
                Ok(None) => return None,
                Err(e) => return Some(e.to_string()),
            }
        }
    };
    for &c in cuts {
        let end = at.saturating_add(c).min(data.len());
        if let Some(e) = feed(&mut d, &data[at..end], &mut out) {
            return (out, Some(e));
        }
        at = end;
    }
    if let Some(e) = feed(&mut d, &data[at..], &mut out) {
        return (out, Some(e));
    }
    d.finish();
    let err = feed(&mut d, &[], &mut out);
    (out, err)
}

fuzz_target!(|input: &[u8]| {
    // The first bytes choose the chunk sizes; the rest is the file.
    let (sizes, data) = input.split_at(input.len().min(8));
    let cuts: Vec<usize> = sizes.iter().map(|&b| usize::from(b) * 7 + 1).collect();
    let whole = run(data, &[]);
    let chunked = run(data, &cuts);
    assert_eq!(whole, chunked, "chunking changed the events");
    let report = analyze(data);
    let mut a = Analyzer::new();
    let mut failed = false;
    for c in data.chunks(cuts.first().copied().unwrap_or(1)) {
        if a.feed(c).is_err() {
            failed = true;
            break;
        }
    }
    if !failed {
        assert_eq!(a.finish().ok(), report.ok());
    }
});
