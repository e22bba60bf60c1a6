//! Backpressure: a bounded window of unacknowledged Data bytes.
//!
//! The extractor may have at most W bytes of Data sent and not yet acknowledged. Before
//! sending a chunk it [`reserve`](Window::reserve)s the chunk's bytes (waiting while the
//! window is full), and each Ack [`acknowledge`](Window::acknowledge)s every chunk that ends
//! at or before the acknowledged position. So a slow collector (or a slow disk behind it)
//! slows the extractor instead of filling memory, and the extractor always knows the
//! oldest chunk it would have to resend after a reconnect.
//!
//! Shared by the sending task and the task that reads Acks (wrap it in an `Arc`). One task
//! reserves, in stream order.

use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard};

use tokio::sync::Semaphore;

use super::StreamPos;

/// The window was closed ([`Window::close`]): the link is going away.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("in-flight window closed")]
pub struct WindowClosed;

/// A bounded window of unacknowledged bytes. See the module docs.
#[derive(Debug)]
pub struct Window {
    limit: u32,
    permits: Semaphore,
    /// Chunks in flight, in stream order: (end position, permits held).
    pending: Mutex<VecDeque<(StreamPos, u32)>>,
}

impl Window {
    /// A window of `limit_bytes` (at least 1).
    pub fn new(limit_bytes: u32) -> Window {
        let limit = limit_bytes.max(1);
        Window {
            limit,
            permits: Semaphore::new(limit as usize),
            pending: Mutex::new(VecDeque::new()),
        }
    }

    fn pending(&self) -> MutexGuard<'_, VecDeque<(StreamPos, u32)>> {
        // A panic elsewhere cannot leave the queue half-updated: every update is one call.
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The window size in bytes.
    pub fn limit(&self) -> u32 {
        self.limit
    }

    /// Waits until `bytes` more fit in the window, then records a chunk ending at `end`
    /// (its [`Data::end`](super::message::Data::end)). A chunk larger than the whole window
    /// waits until the window is empty and then fills it. Cancel-safe: if dropped while
    /// waiting, nothing is reserved.
    pub async fn reserve(&self, end: StreamPos, bytes: usize) -> Result<(), WindowClosed> {
        let n = u32::try_from(bytes).unwrap_or(u32::MAX).min(self.limit);
        let permit = self
            .permits
            .acquire_many(n)
            .await
            .map_err(|_| WindowClosed)?;
        permit.forget();
        self.pending().push_back((end, n));
        Ok(())
    }

    /// Releases every chunk that ends at or before `durable`; returns the bytes released.
    pub fn acknowledge(&self, durable: StreamPos) -> u64 {
        let mut released = 0u64;
        let mut q = self.pending();
        while let Some(&(end, n)) = q.front() {
            if end > durable {
                break;
            }
            q.pop_front();
            released += u64::from(n);
            self.permits.add_permits(n as usize);
        }
        released
    }

    /// Bytes reserved and not yet acknowledged (chunks larger than the window count as the
    /// window size).
    pub fn in_flight(&self) -> u64 {
        self.pending().iter().map(|&(_, n)| u64::from(n)).sum()
    }

    pub fn chunks_in_flight(&self) -> usize {
        self.pending().len()
    }

    /// Forgets every chunk in flight (after a reconnect the collector says where to resume).
    pub fn reset(&self) {
        let mut q = self.pending();
        let n: u64 = q.drain(..).map(|(_, n)| u64::from(n)).sum();
        self.permits.add_permits(n as usize);
    }

    /// Wakes every waiting [`reserve`](Self::reserve) with [`WindowClosed`]; later
    /// reserves fail too.
    pub fn close(&self) {
        self.permits.close();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use redovault_redo::position::LogSeq;

    use super::*;

    fn pos(seq: u32, offset: u64) -> StreamPos {
        StreamPos {
            seq: LogSeq(seq),
            offset,
        }
    }

    #[tokio::test]
    async fn a_full_window_waits_for_acks() {
        let w = Arc::new(Window::new(1000));
        w.reserve(pos(1, 400), 400).await.unwrap();
        w.reserve(pos(1, 800), 400).await.unwrap();
        assert_eq!(w.in_flight(), 800);
        // 400 more do not fit until the first chunk is acknowledged.
        let w2 = w.clone();
        let blocked = tokio::spawn(async move { w2.reserve(pos(1, 1200), 400).await });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(
            !blocked.is_finished(),
            "reserve must wait while the window is full"
        );
        // An ack before the first chunk's end releases nothing.
        assert_eq!(w.acknowledge(pos(1, 399)), 0);
        assert_eq!(w.acknowledge(pos(1, 400)), 400);
        blocked.await.unwrap().unwrap();
        assert_eq!(w.in_flight(), 800);
        // An ack past a log end releases the chunk that ended the log.
        w.reserve(pos(2, 0), 100).await.unwrap();
        assert_eq!(w.acknowledge(pos(2, 0)), 900);
        assert_eq!(w.in_flight(), 0);
        assert_eq!(w.chunks_in_flight(), 0);
    }

    #[tokio::test]
    async fn oversized_chunk_waits_for_an_empty_window_then_fills_it() {
        let w = Arc::new(Window::new(100));
        w.reserve(pos(1, 10), 10).await.unwrap();
        let w2 = w.clone();
        let big = tokio::spawn(async move { w2.reserve(pos(1, 1010), 1000).await });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!big.is_finished());
        w.acknowledge(pos(1, 10));
        big.await.unwrap().unwrap();
        assert_eq!(w.in_flight(), 100);
        assert_eq!(w.acknowledge(pos(1, 1010)), 100);
    }

    #[tokio::test]
    async fn close_wakes_waiters_and_reset_frees_everything() {
        let w = Arc::new(Window::new(10));
        w.reserve(pos(1, 10), 10).await.unwrap();
        let w2 = w.clone();
        let waiting = tokio::spawn(async move { w2.reserve(pos(1, 20), 10).await });
        tokio::time::sleep(Duration::from_millis(20)).await;
        w.close();
        assert_eq!(waiting.await.unwrap(), Err(WindowClosed));
        let w = Window::new(10);
        w.reserve(pos(1, 10), 10).await.unwrap();
        w.reset();
        assert_eq!(w.in_flight(), 0);
        w.reserve(pos(1, 10), 10).await.unwrap();
    }
}
