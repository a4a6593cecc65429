//! The user's rate limit (`--max-events-per-minute`): a token bucket refilled continuously.

use std::time::Instant;

pub(crate) struct RateLimit {
    per_sec: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl RateLimit {
    pub(crate) fn per_minute(n: u64) -> Self {
        let burst = n as f64;
        Self {
            per_sec: burst / 60.0,
            burst,
            tokens: burst,
            last: Instant::now(),
        }
    }

    /// True if one more event may pass now.
    pub(crate) fn allow(&mut self, now: Instant) -> bool {
        let dt = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + dt * self.per_sec).min(self.burst);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
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
    fn bucket() {
        let mut r = RateLimit::per_minute(60);
        let t = Instant::now();
        assert_eq!((0..100).filter(|_| r.allow(t)).count(), 60);
        assert!(r.allow(t + Duration::from_secs(1)));
        assert!(!r.allow(t + Duration::from_secs(1)));
    }
}
