//! Idle connections: open K authenticated connections (spread over loopback source addresses so the
//! ephemeral port range of one address is no limit), hold them, and read the server's RSS around it.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

use super::conn::{Conn, ConnectParams, WireCounters};

/// Connections per source address by default: the default ephemeral range (32768..60999) has 28k
/// ports, and the TIME_WAIT sockets of a previous run still hold theirs for a minute.
pub(super) const PER_SOURCE: usize = 10_000;

/// What the idle phase measured.
#[derive(Debug, Clone, Serialize)]
pub struct IdleReport {
    /// Connections asked for.
    pub requested: usize,
    /// Connections open and authenticated.
    pub held: u64,
    /// Connections that failed to open or authenticate.
    pub failed: u64,
    /// The first failure, verbatim.
    pub first_error: Option<String>,
    /// Source addresses used (none: the kernel's choice).
    pub sources: Vec<String>,
    /// Seconds to open and authenticate them all.
    pub connect_seconds: f64,
    /// Server RSS before, in KiB (with `--server-pid`).
    pub server_rss_before_kib: Option<u64>,
    /// Server RSS with every connection held, in KiB.
    pub server_rss_after_kib: Option<u64>,
    /// `(after - before) / held`, in bytes.
    pub server_rss_per_connection_bytes: Option<f64>,
}

/// The server's resident set size in KiB, from `/proc/<pid>/status`.
pub(super) fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Source addresses for `count` connections: none when one address suffices (and the server is not
/// on loopback), else 127.0.0.2, 127.0.0.3, ...
pub(super) fn sources(count: usize, wanted: Option<usize>, server: IpAddr) -> Vec<IpAddr> {
    let n = wanted.unwrap_or(if count > PER_SOURCE {
        count.div_ceil(PER_SOURCE)
    } else {
        0
    });
    if n == 0 || !server.is_loopback() || !server.is_ipv4() {
        return Vec::new();
    }
    (0..n.min(250))
        .map(|i| IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2 + i as u8)))
        .collect()
}

/// How to open the idle connections.
#[derive(Debug, Clone)]
pub(super) struct IdlePlan {
    /// How many.
    pub count: usize,
    /// Source addresses to spread them over (empty: the kernel's choice).
    pub sources: Vec<IpAddr>,
    /// Upgrades + authentications in progress at most (a burst beyond the server's listen backlog
    /// would only measure SYN retries).
    pub concurrency: usize,
    /// The server process, to read its RSS.
    pub server_pid: Option<u32>,
    /// Give up waiting for the last ones after this long.
    pub deadline: Duration,
    /// Show a progress line on stderr.
    pub progress: bool,
}

/// Opens the connections of `plan` and holds them (in detached tasks) until `stop` turns true.
pub(super) async fn open(
    params: Arc<ConnectParams>,
    plan: IdlePlan,
    counters: Arc<WireCounters>,
    stop: watch::Receiver<bool>,
) -> IdleReport {
    let IdlePlan {
        count,
        sources,
        concurrency,
        server_pid,
        deadline,
        progress,
    } = plan;
    let before = server_pid.and_then(rss_kib);
    let started = Instant::now();
    let gate = Arc::new(Semaphore::new(concurrency.max(1)));
    let opened = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let first_error = Arc::new(parking_lot::Mutex::new(None::<String>));
    let mut tasks = JoinSet::new();
    for i in 0..count {
        let source = (!sources.is_empty()).then(|| sources[i % sources.len()]);
        let (params, gate, opened, failed, first_error, counters, stop) = (
            params.clone(),
            gate.clone(),
            opened.clone(),
            failed.clone(),
            first_error.clone(),
            counters.clone(),
            stop.clone(),
        );
        tasks.spawn(async move {
            let conn = {
                let Ok(_permit) = gate.acquire().await else {
                    return;
                };
                Conn::open(&params, source, counters).await
            };
            match conn {
                Ok(conn) => {
                    opened.fetch_add(1, Ordering::Relaxed);
                    if let Err(e) = conn.hold(stop).await {
                        first_error.lock().get_or_insert(e.to_string());
                    }
                }
                Err(e) => {
                    failed.fetch_add(1, Ordering::Relaxed);
                    first_error.lock().get_or_insert(e.to_string());
                }
            }
        });
    }
    let limit = Instant::now() + deadline;
    let mut progress = super::Progress::new(progress);
    loop {
        let (o, f) = (
            opened.load(Ordering::Relaxed),
            failed.load(Ordering::Relaxed),
        );
        progress.line(format_args!(
            "{o}/{count} idle connections open, {f} failed"
        ));
        if o + f >= count as u64 || Instant::now() >= limit {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    progress.done();
    let connect_seconds = started.elapsed().as_secs_f64();
    // Let the server finish the work the last authentications queued before reading its RSS.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = server_pid.and_then(rss_kib);
    let held = opened.load(Ordering::Relaxed);
    let per_conn = match (before, after) {
        (Some(b), Some(a)) if held > 0 => Some((a.saturating_sub(b) as f64 * 1024.0) / held as f64),
        _ => None,
    };
    let report = IdleReport {
        requested: count,
        held,
        failed: failed.load(Ordering::Relaxed),
        first_error: first_error.lock().clone(),
        sources: sources.iter().map(ToString::to_string).collect(),
        connect_seconds,
        server_rss_before_kib: before,
        server_rss_after_kib: after,
        server_rss_per_connection_bytes: per_conn,
    };
    // The tasks keep running (holding their connections) in the runtime until `stop`.
    tasks.detach_all();
    report
}
