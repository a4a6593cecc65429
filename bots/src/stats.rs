//! The bot's counters: a stats line at each interval and the same in Prometheus text format.

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Counters shared by the subscription thread, the sink loop and the metrics endpoint.
#[derive(Debug, Default)]
pub struct Stats {
    /// Events received from the broker.
    pub received: AtomicU64,
    /// Events the sink confirmed.
    pub sent: AtomicU64,
    /// Events dropped by the user's rate limit.
    pub dropped: AtomicU64,
    /// Malformed events skipped by the sink.
    pub malformed: AtomicU64,
    /// Sink attempts that failed and were retried.
    pub retried: AtomicU64,
    /// Events waiting in the queue.
    pub queued: AtomicU64,
    /// Milliseconds between the broker position of the last confirmed event and now.
    pub lag_ms: AtomicU64,
    /// Reconnections of the subscription.
    pub reconnects: AtomicU64,
    /// Resubscriptions after the broker dropped the subscription for falling behind.
    pub resubscribes: AtomicU64,
}

/// A snapshot of the counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// See [`Stats::received`].
    pub received: u64,
    /// See [`Stats::sent`].
    pub sent: u64,
    /// See [`Stats::dropped`].
    pub dropped: u64,
    /// See [`Stats::malformed`].
    pub malformed: u64,
    /// See [`Stats::retried`].
    pub retried: u64,
    /// See [`Stats::queued`].
    pub queued: u64,
    /// See [`Stats::lag_ms`].
    pub lag_ms: u64,
    /// See [`Stats::reconnects`].
    pub reconnects: u64,
    /// See [`Stats::resubscribes`].
    pub resubscribes: u64,
}

impl Stats {
    /// The counters now.
    pub fn snapshot(&self) -> Snapshot {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        Snapshot {
            received: g(&self.received),
            sent: g(&self.sent),
            dropped: g(&self.dropped),
            malformed: g(&self.malformed),
            retried: g(&self.retried),
            queued: g(&self.queued),
            lag_ms: g(&self.lag_ms),
            reconnects: g(&self.reconnects),
            resubscribes: g(&self.resubscribes),
        }
    }

    /// The counters in Prometheus text exposition format, labelled with the sink.
    pub fn prometheus(&self, sink: &str) -> String {
        let s = self.snapshot();
        let mut out = String::new();
        let rows: [(&str, &str, &str, u64); 9] = [
            (
                "cobra_bot_received_total",
                "counter",
                "Events received from the broker.",
                s.received,
            ),
            (
                "cobra_bot_sent_total",
                "counter",
                "Events the sink confirmed.",
                s.sent,
            ),
            (
                "cobra_bot_dropped_total",
                "counter",
                "Events dropped by the rate limit.",
                s.dropped,
            ),
            (
                "cobra_bot_malformed_total",
                "counter",
                "Malformed events skipped.",
                s.malformed,
            ),
            (
                "cobra_bot_retried_total",
                "counter",
                "Failed sink attempts retried.",
                s.retried,
            ),
            (
                "cobra_bot_reconnects_total",
                "counter",
                "Reconnections to the broker.",
                s.reconnects,
            ),
            (
                "cobra_bot_resubscribes_total",
                "counter",
                "Resubscriptions after out_of_sync.",
                s.resubscribes,
            ),
            (
                "cobra_bot_queued",
                "gauge",
                "Events waiting for the sink.",
                s.queued,
            ),
            (
                "cobra_bot_lag_seconds",
                "gauge",
                "Age of the last confirmed event.",
                s.lag_ms,
            ),
        ];
        for (name, kind, help, v) in rows {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            if name == "cobra_bot_lag_seconds" {
                let _ = writeln!(out, "{name}{{sink=\"{sink}\"}} {}", v as f64 / 1000.0);
            } else {
                let _ = writeln!(out, "{name}{{sink=\"{sink}\"}} {v}");
            }
        }
        out
    }
}

/// Prints a stats line (rates over the interval) each time [`StatsLine::maybe_print`] finds the
/// interval passed.
pub(crate) struct StatsLine {
    interval: Duration,
    last: Instant,
    prev: Snapshot,
}

impl StatsLine {
    pub(crate) fn new(interval: Duration) -> Self {
        Self {
            interval,
            last: Instant::now(),
            prev: Snapshot::default(),
        }
    }

    pub(crate) fn maybe_print(&mut self, stats: &Stats, sink: &str) {
        if self.interval.is_zero() || self.last.elapsed() < self.interval {
            return;
        }
        let dt = self.last.elapsed().as_secs_f64();
        let s = stats.snapshot();
        eprintln!(
            "cobra bot {sink}: received/s {:.0} sent/s {:.0} queued {} dropped {} malformed {} retried {} lag {:.3}s",
            (s.received - self.prev.received) as f64 / dt,
            (s.sent - self.prev.sent) as f64 / dt,
            s.queued,
            s.dropped,
            s.malformed,
            s.retried,
            s.lag_ms as f64 / 1000.0,
        );
        self.prev = s;
        self.last = Instant::now();
    }
}

/// Serves `GET /metrics` (any path, in fact) with the Prometheus text until `stop` is set.
pub(crate) fn serve_metrics(
    host: &str,
    port: u16,
    stats: Arc<Stats>,
    sink: String,
    stop: Arc<AtomicBool>,
) -> Result<std::thread::JoinHandle<()>, String> {
    let server = tiny_http::Server::http((host, port))
        .map_err(|e| format!("--metrics-port {port}: cannot listen on {host}: {e}"))?;
    std::thread::Builder::new()
        .name("cobra-bot-metrics".into())
        .spawn(move || {
            while !stop.load(Ordering::Acquire) {
                match server.recv_timeout(Duration::from_millis(200)) {
                    Ok(Some(req)) => {
                        let header = tiny_http::Header::from_bytes(
                            &b"Content-Type"[..],
                            &b"text/plain; version=0.0.4"[..],
                        )
                        .ok();
                        let mut resp = tiny_http::Response::from_string(stats.prometheus(&sink));
                        if let Some(h) = header {
                            resp = resp.with_header(h);
                        }
                        let _ = req.respond(resp);
                    }
                    Ok(None) => {}
                    Err(e) => {
                        log::warn!("metrics endpoint: {e}");
                        return;
                    }
                }
            }
        })
        .map_err(|e| format!("spawning the metrics thread: {e}"))
}
