//! Retry policy: exponential backoff with full jitter, a deadline per request, and a cap on
//! attempts. Which errors are transient is decided by the backend (see `s3::http`).

use std::time::Duration;

use rand::Rng as _;

/// How requests are retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub max_attempts: u32,
    /// Backoff before the second attempt (upper bound of the jitter window).
    pub base: Duration,
    /// Largest backoff.
    pub max_backoff: Duration,
    /// Deadline of one request, from sending to the last byte of the response.
    pub request_timeout: Duration,
    /// Deadline for connecting.
    pub connect_timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 6,
            base: Duration::from_millis(200),
            max_backoff: Duration::from_secs(10),
            request_timeout: Duration::from_secs(120),
            connect_timeout: Duration::from_secs(10),
        }
    }
}

impl RetryPolicy {
    /// The pause before attempt `attempt + 1` (`attempt` counts from 1): a random duration in
    /// `[0, min(max_backoff, base * 2^(attempt-1))]` ("full jitter").
    pub fn backoff(&self, attempt: u32) -> Duration {
        let exp = self
            .base
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(20));
        let cap = exp.min(self.max_backoff);
        let ms = cap.as_millis().min(u128::from(u64::MAX)) as u64;
        Duration::from_millis(rand::thread_rng().gen_range(0..=ms))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_is_bounded_and_grows() {
        let p = RetryPolicy::default();
        for attempt in 1..40 {
            let b = p.backoff(attempt);
            assert!(b <= p.max_backoff);
            assert!(b <= p.base.saturating_mul(1 << (attempt - 1).min(20)));
        }
    }
}
