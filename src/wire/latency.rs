//! Latency trace events: where a chunk of redo is on its way from the online log to the
//! durable acknowledgement.
//!
//! ```text
//! extractor tail thread  tail_chunk      read and validated (scn: its last commit)
//!       shipper          data_queued     handed to the link's sender task
//!  link sender (either)  data_flushed    Data frame written to the socket
//! collector session      data_received   decoded and checked
//!       writer           store_batch     its batch started (blocking thread, `stream` field)
//!       writer           store_written   the batch was sealed and written
//!       writer           store_synced    the batch's fdatasync returned
//!       session          ack_ready       the acker got the writer's answer
//!  link sender (either)  ack_flushed     Ack frame written to the socket
//! extractor shipper      ack_received    the Ack was decoded
//! collector [worm]       worm_confirmed  the piece ending here is in WORM: PUT returned, the
//!   uploader                             HEAD after it matched (scn; target WORM_TARGET)
//! ```
//!
//! Invariants: every event is TRACE with target [`TARGET`] (`redovault::latency`; the WORM
//! one [`WORM_TARGET`]), a `stage` field and the chunk's **end** position (`seq`, `offset`):
//! the key that follows one chunk through both processes (the enclosing span, `ship` or
//! `stream`, names the stream). An Ack is traced with its durable end, which covers every
//! chunk ending at or before it.
//!
//! Off by default and nearly free then (one cached interest check per call site): enable with
//! `RUST_LOG=redovault::latency=trace` (thousands of events per second at 10 MB/s), or
//! collect them with a subscriber layer as `tests/benches/ship_latency.rs` does. The WORM
//! confirmations alone (one per piece, cheap): `redovault::latency::worm=trace`, as
//! `tests/benches/worm_ship.rs` does.

use redovault_redo::position::Scn;

use super::StreamPos;

/// The target of every latency trace event.
pub const TARGET: &str = "redovault::latency";

/// The target of the `worm_confirmed` event: under [`TARGET`] (so `redovault::latency=trace`
/// shows it too), and on its own, one event per piece, without the thousands per second of
/// the Ack path (`redovault::latency::worm=trace`).
pub const WORM_TARGET: &str = "redovault::latency::worm";

/// Whether latency events are wanted by the current subscriber (to skip loops that would
/// only emit them).
#[inline]
pub fn enabled() -> bool {
    tracing::enabled!(target: TARGET, tracing::Level::TRACE)
}

/// Emits the latency event `stage` for the chunk (or Ack) ending at `end`; `scn` is the last
/// commit in it, when known.
#[inline]
pub fn trace(stage: &'static str, end: StreamPos, scn: Option<Scn>) {
    tracing::trace!(
        target: TARGET,
        stage,
        seq = end.seq.0,
        offset = end.offset,
        scn = scn.map(|s| s.0)
    );
}

/// [`trace`] with a `stream` field, for code that runs outside the stream's span.
#[inline]
pub fn trace_stream(stage: &'static str, stream: super::StreamId, end: StreamPos) {
    tracing::trace!(
        target: TARGET,
        stage,
        stream = %stream,
        seq = end.seq.0,
        offset = end.offset
    );
}

/// Emits `worm_confirmed` (target [`WORM_TARGET`]): the piece of `stream` ending at `end`,
/// whose last commit is `scn`, is confirmed in WORM.
#[inline]
pub fn trace_worm(stream: super::StreamId, end: StreamPos, scn: Option<u64>) {
    tracing::trace!(
        target: WORM_TARGET,
        stage = "worm_confirmed",
        stream = %stream,
        seq = end.seq.0,
        offset = end.offset,
        scn
    );
}

#[cfg(test)]
mod tests {
    use redovault_redo::position::{DbId, ResetlogsId};
    use std::sync::{Arc, Mutex};

    use redovault_redo::position::LogSeq;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::{Layer, filter};

    use super::*;

    /// Every field of every event, as text.
    #[derive(Clone, Default)]
    struct Capture(Arc<Mutex<Vec<String>>>);

    struct Fields(String);

    impl tracing::field::Visit for Fields {
        fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
            self.0.push_str(&format!("{}={value:?} ", field.name()));
        }
    }

    impl<S: tracing::Subscriber> Layer<S> for Capture {
        fn on_event(
            &self,
            event: &tracing::Event<'_>,
            _: tracing_subscriber::layer::Context<'_, S>,
        ) {
            let mut f = Fields(format!("{} ", event.metadata().target()));
            event.record(&mut f);
            self.0.lock().unwrap().push(f.0.trim_end().to_string());
        }
    }

    fn pos(offset: u64) -> StreamPos {
        StreamPos {
            seq: LogSeq(12),
            offset,
        }
    }

    #[test]
    fn events_carry_the_stage_and_the_end_position_only_when_wanted() {
        let cap = Capture::default();
        let only_latency =
            tracing_subscriber::registry()
                .with(cap.clone().with_filter(
                    filter::Targets::new().with_target(TARGET, tracing::Level::TRACE),
                ));
        tracing::subscriber::with_default(only_latency, || {
            assert!(enabled());
            trace("tail_chunk", pos(4096), Some(Scn(77)));
            trace("ack_received", pos(8192), None);
            trace_stream(
                "store_synced",
                crate::wire::StreamId {
                    db_id: DbId(1),
                    resetlogs_id: ResetlogsId(2),
                    thread: redovault_redo::position::ThreadId(3),
                },
                pos(8192),
            );
            trace_worm(
                crate::wire::StreamId {
                    db_id: DbId(1),
                    resetlogs_id: ResetlogsId(2),
                    thread: redovault_redo::position::ThreadId(3),
                },
                pos(8192),
                Some(90),
            );
            tracing::info!("not a latency event");
        });
        assert_eq!(
            *cap.0.lock().unwrap(),
            vec![
                "redovault::latency stage=\"tail_chunk\" seq=12 offset=4096 scn=77",
                "redovault::latency stage=\"ack_received\" seq=12 offset=8192",
                "redovault::latency stage=\"store_synced\" stream=db1-rl2-t3 seq=12 offset=8192",
                "redovault::latency::worm stage=\"worm_confirmed\" stream=db1-rl2-t3 seq=12 offset=8192 scn=90",
            ]
        );

        // A subscriber that does not want them: nothing is recorded, `enabled` says so.
        let cap = Capture::default();
        let info_only = tracing_subscriber::registry().with(
            cap.clone()
                .with_filter(filter::Targets::new().with_default(tracing::Level::INFO)),
        );
        tracing::subscriber::with_default(info_only, || {
            assert!(!enabled());
            trace("tail_chunk", pos(4096), None);
        });
        assert!(cap.0.lock().unwrap().is_empty());
    }
}
