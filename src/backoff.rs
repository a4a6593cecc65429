//! Reconnect delays: exponential growth with full jitter.
//!
//! The cap doubles per failed attempt from `min` up to `max`; the delay is uniform in
//! `[min, cap]`. Jitter spreads a fleet of phones reconnecting after a server restart; the floor
//! of `min` keeps a single client from spinning.

use std::time::Duration;

use rand::Rng;

#[derive(Debug, Clone)]
pub(crate) struct Backoff {
    min: Duration,
    max: Duration,
    failures: u32,
}

impl Backoff {
    pub(crate) fn new(min: Duration, max: Duration) -> Self {
        Self {
            min,
            max,
            failures: 0,
        }
    }

    /// Consecutive failures since the last reset.
    pub(crate) fn failures(&self) -> u32 {
        self.failures
    }

    /// Back to the first delay (after a successful authentication).
    pub(crate) fn reset(&mut self) {
        self.failures = 0;
    }

    /// Record a failure and return the delay before the next attempt. A permanent error
    /// (bad credentials, unknown appkey) waits the maximum.
    pub(crate) fn next_delay(&mut self, permanent: bool) -> Duration {
        self.failures = self.failures.saturating_add(1);
        if permanent {
            return self.max;
        }
        let cap = self.cap();
        if cap <= self.min {
            return self.min;
        }
        let nanos = rand::rng().random_range(self.min.as_nanos()..=cap.as_nanos());
        Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
    }

    /// The delay after a server drain (close code [`cobra_wire::ws::CLOSE_DRAIN`]): not a
    /// failure, so the backoff is reset and the client reconnects at once, after a delay uniform
    /// in `[0, min]`. The server already spreads its closes over its drain window; this jitter
    /// only keeps clients closed in the same instant from reconnecting in the same instant.
    pub(crate) fn drain_delay(&mut self) -> Duration {
        self.failures = 0;
        let nanos = rand::rng().random_range(0..=self.min.as_nanos());
        Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
    }

    fn cap(&self) -> Duration {
        let shift = self.failures.saturating_sub(1).min(31);
        self.min.saturating_mul(1u32 << shift).min(self.max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_within_bounds_and_resets() {
        let (min, max) = (Duration::from_millis(100), Duration::from_secs(2));
        let mut b = Backoff::new(min, max);
        let mut caps = Vec::new();
        for _ in 0..12 {
            let d = b.next_delay(false);
            caps.push(b.cap());
            assert!(d >= min && d <= b.cap(), "{d:?}");
        }
        assert_eq!(caps[0], min);
        assert_eq!(caps[1], min * 2);
        assert_eq!(*caps.last().unwrap(), max);
        assert_eq!(b.next_delay(true), max);
        b.reset();
        assert_eq!(b.failures(), 0);
        assert!(b.next_delay(false) <= min);
    }

    #[test]
    fn drain_delay_resets_and_stays_under_min() {
        let min = Duration::from_millis(100);
        let mut b = Backoff::new(min, Duration::from_secs(10));
        for _ in 0..5 {
            b.next_delay(false);
        }
        let delays: Vec<_> = (0..50).map(|_| b.drain_delay()).collect();
        assert_eq!(b.failures(), 0, "a drain is not a failure");
        assert!(delays.iter().all(|d| *d <= min));
        assert!(delays.iter().any(|d| *d != delays[0]), "jittered");
    }

    #[test]
    fn jitter_spreads() {
        let mut b = Backoff::new(Duration::from_millis(1), Duration::from_secs(10));
        for _ in 0..10 {
            b.next_delay(false);
        }
        let a: Vec<_> = (0..20).map(|_| b.clone().next_delay(false)).collect();
        assert!(
            a.iter().any(|d| *d != a[0]),
            "full jitter gives different delays"
        );
    }
}
