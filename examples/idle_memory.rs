//! What an idle connected client costs in memory (`scripts/check-sdk-idle.sh` runs it in a release
//! build against a real `cobra run`).
//!
//! ```text
//! cargo run --release --example idle_memory -- --endpoint ws://127.0.0.1:8765 --appkey _pubsub \
//!     --rolename pubsub --rolesecret SECRET --clients 10
//! ```
//!
//! Each client connects with the default config (permessage-deflate offered), authenticates,
//! subscribes, publishes one 300-byte telemetry event, waits for its acknowledgement and for the
//! event to come back (compressed by the server), and is then idle. Two figures, each measured
//! before and after:
//! - the process's RSS (`VmRSS`, split into `RssAnon`: heap, stacks; and `RssFile`: code pages
//!   of the binary touched for the first time, shared with the file on a phone too);
//! - the allocator's live bytes (every allocation through a counting wrapper of the system
//!   allocator): what the SDK holds on the heap, without allocator slack or thread stacks.
//!
//! The first client is measured alone (what a game pays, one-time costs included), then
//! `--clients` more together (the cost of each further client). One JSON line on stdout; with
//! `--publish N`, then a line with the first client's publishing rate (N events acknowledged by
//! the server, per CPU-second of this process) and one per compressor window with the bytes it
//! puts on the wire per event of the same telemetry stream.

use std::alloc::System;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use cap::Cap;
use cobra::{Client, Config, Event, SubscribeOptions};

mod common;
use common::arg;

#[global_allocator]
static ALLOCATOR: Cap<System> = Cap::new(System, usize::MAX);

/// Connections that logged "deflate: true" when they opened (the SDK's debug log line).
static DEFLATE_OPEN: AtomicUsize = AtomicUsize::new(0);
static PLAIN_OPEN: AtomicUsize = AtomicUsize::new(0);

struct OpenCounter;

impl log::Log for OpenCounter {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }
    fn log(&self, record: &log::Record<'_>) {
        let text = record.args().to_string();
        if text.contains("WebSocket open") {
            if text.contains("deflate: true") {
                DEFLATE_OPEN.fetch_add(1, Ordering::Relaxed);
            } else {
                PLAIN_OPEN.fetch_add(1, Ordering::Relaxed);
            }
        } else if record.level() <= log::Level::Warn {
            eprintln!("{}: {text}", record.level());
        }
    }
    fn flush(&self) {}
}

static LOGGER: OpenCounter = OpenCounter;

/// (VmRSS, RssAnon, RssFile) in KiB, from /proc/self/status (Linux).
fn rss() -> Result<[u64; 3], String> {
    let status = std::fs::read_to_string("/proc/self/status")
        .map_err(|e| format!("/proc/self/status: {e} (Linux only)"))?;
    let field = |name: &str| -> Result<u64, String> {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| format!("no {name} in /proc/self/status"))
    };
    Ok([field("VmRSS:")?, field("RssAnon:")?, field("RssFile:")?])
}

/// What the listener saw of one client.
#[derive(Default)]
struct State {
    authenticated: bool,
    subscribed: bool,
    data: bool,
    acked: bool,
    acks: u64,
    /// Publishes the SDK dropped (queue overflow): each one is an acknowledgement that never comes.
    dropped: u64,
    error: Option<String>,
}

/// [`State`] and a condition variable to wait on it.
#[derive(Default)]
struct Seen {
    state: Mutex<State>,
    changed: Condvar,
}

impl Seen {
    fn wait(
        &self,
        what: &str,
        deadline: Instant,
        done: impl Fn(&State) -> bool,
    ) -> Result<(), String> {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some(e) = &s.error {
                return Err(format!("waiting for {what}: {e}"));
            }
            if done(&s) {
                return Ok(());
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(format!("no {what} within the deadline"));
            }
            s = self
                .changed
                .wait_timeout(s, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
}

/// A client of `config`'s server, authenticated, subscribed, having published one event, had it
/// acknowledged and received it back: then idle.
fn busy_then_idle(config: Config, i: usize) -> Result<(Client, Arc<Seen>), String> {
    let seen = Arc::new(Seen::default());
    let s = seen.clone();
    let listener = Arc::new(move |e: &Event| {
        let mut st = s.state.lock().unwrap_or_else(|e| e.into_inner());
        match e {
            Event::Authenticated => st.authenticated = true,
            Event::Subscribed { .. } => st.subscribed = true,
            Event::SubscriptionData { .. } => st.data = true,
            Event::Published { .. } => {
                st.acked = true;
                st.acks += 1;
            }
            Event::PublishDropped { reason, .. } => {
                st.dropped += 1;
                st.error = Some(format!("publish dropped: {reason}"));
            }
            Event::Error { kind, message, .. } => st.error = Some(format!("{kind:?}: {message}")),
            _ => return,
        }
        s.changed.notify_all();
    });
    let client = Client::new(config, Some(listener)).map_err(|e| e.to_string())?;
    let deadline = Instant::now() + Duration::from_secs(20);
    client.connect().map_err(|e| e.to_string())?;
    seen.wait("authentication", deadline, |s| s.authenticated)?;
    let channel = format!("idle-{i}");
    client
        .subscribe(SubscribeOptions::new(&channel))
        .map_err(|e| e.to_string())?;
    seen.wait("subscription", deadline, |s| s.subscribed)?;
    // A 300-byte telemetry event, as a game sends them.
    let event = serde_json::json!({
        "device": {"model": "Pixel 7", "os": "android 14", "app_version": "3.2.1"},
        "session": format!("7d9f2c1e-5b6a-4c3d-9e8f-{i:012}"),
        "data": {"fps": 58.9, "frame_ms": 16.9, "draw_calls": 1290, "mem_mb": 1432.5,
                 "scene": "arena_night", "players": 12, "ping_ms": 41},
    });
    client
        .publish(&channel, &event)
        .map_err(|e| e.to_string())?;
    seen.wait("the acknowledgement and the event back", deadline, |s| {
        s.acked && s.data
    })?;
    Ok((client, seen))
}

/// Unacknowledged publishes at most while measuring the publishing rate.
const IN_FLIGHT: u64 = 4096;

/// A telemetry event of about 300 bytes of JSON (as `benches/publish.rs`).
fn event(i: u64) -> String {
    format!(
        r#"{{"id":"engine_fps_id","session":"4dacbafefc214578aa3f8c1d2975ec92","timestamp":{},"version":1,"per_id_counter":{i},"device":{{"app_version":"3.25","game":"wiso","model":"iPhone","os_language":"en","os_name":"iOS","os_version":"10.3.3","network":"wifi","region":"eu-west"}},"data":{{"fps":{}}}}}"#,
        1_536_270_895_637u64 + i,
        20 + i % 40
    )
}

/// CPU seconds (user + system) of the whole process so far, from /proc/self/stat.
fn process_cpu_seconds() -> Result<f64, String> {
    let stat = std::fs::read_to_string("/proc/self/stat").map_err(|e| e.to_string())?;
    // Fields after `(comm)`: utime and stime are the 12th and 13th; ticks of 1/100 s on Linux.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let ticks: u64 = rest
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|x| x.parse::<u64>().ok())
        .sum();
    Ok(ticks as f64 / 100.0)
}

/// Publishes `n` events on `client` and waits for every acknowledgement: messages per CPU-second
/// of this process (the publishing thread and the engines) and per wall-clock second. At most
/// [`IN_FLIGHT`] publishes are left unacknowledged: the SDK's queue holds 10,000 by default and
/// drops the oldest beyond that, whose acknowledgements would then never come.
fn publish_rate(client: &Client, seen: &Seen, n: u64) -> Result<(f64, f64), String> {
    let events: Vec<String> = (0..4096).map(event).collect();
    let acks0 = seen.state.lock().unwrap_or_else(|e| e.into_inner()).acks;
    let cpu0 = process_cpu_seconds()?;
    let start = Instant::now();
    for i in 0..n {
        if i >= IN_FLIGHT && i % 1024 == 0 {
            seen.wait(
                "acknowledgements to catch up",
                Instant::now() + Duration::from_secs(60),
                |s| s.acks + IN_FLIGHT >= acks0 + i,
            )?;
        }
        client
            .publish_raw("engine_fps_id", &events[(i % 4096) as usize])
            .map_err(|e| e.to_string())?;
    }
    seen.wait(
        "every acknowledgement",
        Instant::now() + Duration::from_secs(300),
        |s| s.acks >= acks0 + n,
    )?;
    let wall = start.elapsed().as_secs_f64();
    let cpu = process_cpu_seconds()? - cpu0;
    Ok((n as f64 / cpu.max(0.01), n as f64 / wall))
}

/// Compressed bytes per publish PDU of the telemetry stream with the SDK's compressor at
/// `window_bits` (context takeover; 14 and 15 select a zlib stream), frame headers excluded.
fn wire_bytes_per_event(window_bits: u8) -> Result<f64, String> {
    let mut deflater = cobra_wire::pmd::Deflater::new(1, window_bits, false);
    let mut out = Vec::new();
    let n = 20_000u64;
    for i in 0..n {
        let pdu = format!(
            r#"{{"action":"rtm/publish","id":{i},"body":{{"channel":"engine_fps_id","message":{}}}}}"#,
            event(i)
        );
        deflater
            .compress(pdu.as_bytes(), &mut out)
            .map_err(|e| e.to_string())?;
    }
    Ok(out.len() as f64 / n as f64)
}

fn main() -> Result<(), String> {
    log::set_logger(&LOGGER).map_err(|e| e.to_string())?;
    log::set_max_level(log::LevelFilter::Debug);
    let config = common::config();
    let more: usize = arg("--clients", "10")
        .parse()
        .map_err(|e| format!("--clients: {e}"))?;

    // With IDLE_MEMORY_SMAPS=DIR, copies of /proc/self/smaps at each step, to see which mappings
    // grew (heap arenas, thread stacks).
    let smaps = |step: &str| {
        if let Some(dir) = std::env::var_os("IDLE_MEMORY_SMAPS") {
            let text = std::fs::read_to_string("/proc/self/smaps").unwrap_or_default();
            let _ = std::fs::write(std::path::Path::new(&dir).join(step), text);
        }
    };
    smaps("0");
    let r0 = rss()?;
    let h0 = ALLOCATOR.allocated();
    let (first, first_seen) = busy_then_idle(config.clone(), 0)?;
    let r1 = rss()?;
    smaps("1");
    let h1 = ALLOCATOR.allocated();
    let others = (1..=more)
        .map(|i| busy_then_idle(config.clone(), i).map(|(c, _)| c))
        .collect::<Result<Vec<_>, _>>()?;
    let r2 = rss()?;
    smaps("2");
    let h2 = ALLOCATOR.allocated();
    let deflate = DEFLATE_OPEN.load(Ordering::Relaxed);
    let plain = PLAIN_OPEN.load(Ordering::Relaxed);
    if deflate != more + 1 || plain != 0 {
        return Err(format!(
            "permessage-deflate negotiated on {deflate} of {} connections ({plain} without)",
            more + 1
        ));
    }
    let per = |a: u64, b: u64| (b.saturating_sub(a)) as f64 / more.max(1) as f64;
    println!(
        "{{\"deflate_connections\":{deflate},\
         \"first_rss_kib\":{},\"first_rss_anon_kib\":{},\"first_rss_file_kib\":{},\
         \"first_heap_bytes\":{},\
         \"clients\":{more},\"each_rss_kib\":{:.1},\"each_rss_anon_kib\":{:.1},\
         \"each_rss_file_kib\":{:.1},\"each_heap_bytes\":{:.0}}}",
        r1[0].saturating_sub(r0[0]),
        r1[1].saturating_sub(r0[1]),
        r1[2].saturating_sub(r0[2]),
        h1.saturating_sub(h0),
        per(r1[0], r2[0]),
        per(r1[1], r2[1]),
        per(r1[2], r2[2]),
        per(h1 as u64, h2 as u64),
    );
    drop(others);
    // With `--publish N`: the publishing cost and the wire cost of the same compressor, after
    // the memory figures (a busy client is not an idle one).
    let publish: u64 = arg("--publish", "0")
        .parse()
        .map_err(|e| format!("--publish: {e}"))?;
    if publish > 0 {
        let (per_cpu, per_wall) = publish_rate(&first, &first_seen, publish)?;
        println!(
            "{{\"published\":{publish},\"per_cpu_second\":{per_cpu:.0},\"per_wall_second\":{per_wall:.0}}}"
        );
        for bits in [9u8, 10, 11, 12, 13, 15] {
            println!(
                "{{\"window_bits\":{bits},\"wire_bytes_per_event\":{:.1}}}",
                wire_bytes_per_event(bits)?
            );
        }
    }
    drop(first);
    Ok(())
}
