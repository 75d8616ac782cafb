//! Request quotas: one token bucket per key store (URI prefix).
//!
//! KMS itself limits each external key store to a quota (1800 requests/s by
//! default). The proxy enforces its own, so that one key store (or a
//! misbehaving client holding its credentials) cannot starve the HSM for
//! the others. Over the limit the answer is 429 `ThrottlingException`,
//! which KMS retries.
//!
//! The bucket is a mutex around two numbers; the critical section is a few
//! arithmetic operations, far below the cost of the request it guards.

use std::sync::Mutex;
use std::time::Instant;

use crate::config::QuotaConfig;

#[derive(Debug)]
struct State {
    tokens: f64,
    last: Instant,
}

/// A token bucket refilled continuously at `rate` tokens per second.
#[derive(Debug)]
pub struct TokenBucket {
    rate: f64,
    burst: f64,
    state: Mutex<State>,
}

impl TokenBucket {
    /// A full bucket. `rate` and `burst` are validated by the configuration.
    pub fn new(rate: f64, burst: f64) -> Self {
        TokenBucket {
            rate,
            burst,
            state: Mutex::new(State {
                tokens: burst,
                last: Instant::now(),
            }),
        }
    }

    /// From the configuration: the burst defaults to one second's worth.
    pub fn from_config(q: &QuotaConfig) -> Self {
        TokenBucket::new(
            q.requests_per_second,
            q.burst.unwrap_or(q.requests_per_second).max(1.0),
        )
    }

    /// Takes one token if there is one.
    pub fn try_acquire(&self) -> bool {
        self.try_acquire_at(Instant::now())
    }

    fn try_acquire_at(&self, now: Instant) -> bool {
        // The state is two floats, valid after any panic.
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let elapsed = now.saturating_duration_since(s.last).as_secs_f64();
        s.tokens = (s.tokens + elapsed * self.rate).min(self.burst);
        s.last = now;
        if s.tokens >= 1.0 {
            s.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn burst_then_refill() {
        let b = TokenBucket::new(10.0, 3.0);
        let t0 = Instant::now();
        assert!(b.try_acquire_at(t0));
        assert!(b.try_acquire_at(t0));
        assert!(b.try_acquire_at(t0));
        assert!(!b.try_acquire_at(t0));
        // 10/s: one token after 100 ms, and never more than the burst.
        assert!(!b.try_acquire_at(t0 + Duration::from_millis(50)));
        assert!(b.try_acquire_at(t0 + Duration::from_millis(110)));
        let later = t0 + Duration::from_secs(60);
        for _ in 0..3 {
            assert!(b.try_acquire_at(later));
        }
        assert!(!b.try_acquire_at(later));
    }
}
