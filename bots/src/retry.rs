//! Retry delays of a failing sink: exponential with jitter, or what the sink was told (`Retry-After`).

use std::time::Duration;

use rand::Rng;

/// Exponential backoff between `min` and `max`, with full jitter in the upper half.
#[derive(Debug, Clone)]
pub struct Backoff {
    min: Duration,
    max: Duration,
    attempt: u32,
}

impl Backoff {
    /// A backoff starting at `min`, capped at `max`.
    pub fn new(min: Duration, max: Duration) -> Self {
        Self {
            min,
            max,
            attempt: 0,
        }
    }

    /// The delay before the next attempt. A `retry_after` from the sink wins when it is longer.
    pub fn next(&mut self, retry_after: Option<Duration>) -> Duration {
        let base = self
            .min
            .saturating_mul(1u32 << self.attempt.min(20))
            .min(self.max);
        self.attempt = self.attempt.saturating_add(1);
        let half = base / 2;
        let jitter = rand::rng().random_range(0..=half.as_millis() as u64);
        let d = half + Duration::from_millis(jitter);
        match retry_after {
            Some(ra) if ra > d => ra,
            _ => d,
        }
    }

    /// Back to the first delay (after a success).
    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

/// Parses an HTTP `Retry-After` value: delay-seconds (the HTTP-date form is not used by Sentry and
/// gives `None`, i.e. the normal backoff).
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    let v = value.trim();
    v.parse::<u64>()
        .ok()
        .map(Duration::from_secs)
        .or_else(|| {
            v.parse::<f64>()
                .ok()
                .and_then(|s| Duration::try_from_secs_f64(s).ok())
        })
        .map(|d| d.min(Duration::from_secs(3600)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_caps_and_honours_retry_after() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(1));
        let first = b.next(None);
        assert!(first >= Duration::from_millis(50) && first <= Duration::from_millis(100));
        for _ in 0..10 {
            assert!(b.next(None) <= Duration::from_secs(1));
        }
        assert_eq!(b.next(Some(Duration::from_secs(7))), Duration::from_secs(7));
        assert_eq!(parse_retry_after(" 3 "), Some(Duration::from_secs(3)));
        assert_eq!(parse_retry_after("1.5"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
    }
}
