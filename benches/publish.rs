//! Publishing throughput of one client: 300-byte telemetry events, permessage-deflate on, into a
//! sink server over loopback that acknowledges every publish. Also prints the client's memory per
//! connection (RSS growth over 50 connected clients).
//!
//! `cargo bench -p cobra --bench publish`

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use cobra::{Client, Config, DeflateOptions, State};
use cobra_wire::handshake;
use cobra_wire::limits::Limits;
use cobra_wire::pmd::{self, ServerPmdConfig};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tungstenite::protocol::frame::FrameHeader;
use tungstenite::protocol::frame::coding::{Control, Data, OpCode};

/// A server that negotiates deflate, authenticates anyone, counts complete data messages from
/// frame headers alone (no inflating: the sink must not be the bottleneck) and acknowledges
/// each publish by id (the client numbers publishes 1, 2, 3, ...).
fn sink() -> (SocketAddr, Arc<AtomicU64>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let received = Arc::new(AtomicU64::new(0));
    let counter = received.clone();
    std::thread::spawn(move || {
        for tcp in listener.incoming() {
            let Ok(tcp) = tcp else { return };
            let counter = counter.clone();
            std::thread::spawn(move || serve(tcp, &counter));
        }
    });
    (addr, received)
}

/// Frame bytes (headers + payloads) of publishes received by every sink connection.
static WIRE_BYTES: AtomicU64 = AtomicU64::new(0);

fn serve(mut tcp: TcpStream, counter: &AtomicU64) {
    tcp.set_nodelay(true).unwrap();
    let mut buf = Vec::new();
    let mut chunk = vec![0u8; 256 << 10];
    let (req, used) = loop {
        let n = tcp.read(&mut chunk).unwrap_or(0);
        if n == 0 {
            return;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Ok(Some(r)) = handshake::parse_request(&buf, &Limits::DEFAULT) {
            break r;
        }
    };
    let offers: Vec<&str> = req.extensions.iter().map(String::as_str).collect();
    let negotiated = pmd::server_negotiate(&ServerPmdConfig::default(), &offers);
    let key = req.ws_key.clone().unwrap_or_default();
    let ext = negotiated.as_ref().map(|n| n.1.as_str());
    tcp.write_all(&handshake::accept_response(&key, Some("json"), ext, &[]))
        .unwrap();
    buf.drain(..used);
    let mut messages = 0u64;
    let mut out = Vec::new();
    loop {
        let mut pos = 0;
        loop {
            let mut cursor = std::io::Cursor::new(&buf[pos..]);
            let Ok(Some((header, len))) = FrameHeader::parse(&mut cursor) else {
                break;
            };
            let total = cursor.position() as usize + len as usize;
            if buf.len() - pos < total {
                break;
            }
            pos += total;
            match header.opcode {
                OpCode::Data(Data::Continue) if !header.is_final => {}
                OpCode::Data(_) if header.is_final => {
                    messages += 1;
                    let text = match messages {
                        1 => r#"{"action":"auth/handshake/ok","id":1,"body":{"data":{"nonce":"n","version":"sink","connection_id":"1"}}}"#.to_string(),
                        2 => r#"{"action":"auth/authenticate/ok","id":2,"body":{}}"#.to_string(),
                        k => {
                            WIRE_BYTES.fetch_add(total as u64, Ordering::Relaxed);
                            counter.fetch_add(1, Ordering::Relaxed);
                            format!(r#"{{"action":"rtm/publish/ok","id":{},"body":{{}}}}"#, k - 2)
                        }
                    };
                    FrameHeader {
                        opcode: OpCode::Data(Data::Text),
                        ..FrameHeader::default()
                    }
                    .format(text.len() as u64, &mut out)
                    .unwrap();
                    out.extend_from_slice(text.as_bytes());
                }
                OpCode::Control(Control::Close) => return,
                _ => {}
            }
        }
        buf.drain(..pos);
        if !out.is_empty() {
            if tcp.write_all(&out).is_err() {
                return;
            }
            out.clear();
        }
        match tcp.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

/// A telemetry event of about 300 bytes of JSON, with the fields games send.
fn event(i: u64) -> String {
    format!(
        r#"{{"id":"engine_fps_id","session":"4dacbafefc214578aa3f8c1d2975ec92","timestamp":{},"version":1,"per_id_counter":{i},"device":{{"app_version":"3.25","game":"wiso","model":"iPhone","os_language":"en","os_name":"iOS","os_version":"10.3.3","network":"wifi","region":"eu-west"}},"data":{{"fps":{}}}}}"#,
        1_536_270_895_637u64 + i,
        20 + i % 40
    )
}

fn connected(addr: SocketAddr) -> Client {
    connected_with(addr, Some(DeflateOptions::default()))
}

fn connected_with(addr: SocketAddr, deflate: Option<DeflateOptions>) -> Client {
    let config = Config::new(format!("ws://{addr}"), "bench", "bench", "s")
        .deflate(deflate)
        .queue_limits(1 << 20, 1 << 30, cobra::OverflowPolicy::RefuseNew);
    let client = Client::new(config, None).unwrap();
    client.connect().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while client.state() != State::Connected {
        assert!(Instant::now() < deadline, "sink connection");
        std::thread::sleep(Duration::from_millis(1));
    }
    client
}

fn publish(c: &mut Criterion) {
    let (addr, received) = sink();
    let client = connected(addr);
    let sample = event(0);
    assert!(
        (280..=320).contains(&sample.len()),
        "{} bytes",
        sample.len()
    );
    let mut group = c.benchmark_group("publish");
    group.throughput(Throughput::Elements(1));
    group.measurement_time(Duration::from_secs(8));
    // Built beforehand: the game's own JSON building is not the SDK's cost.
    let events: Vec<String> = (0..4096).map(event).collect();
    group.bench_function("telemetry_300B_deflate", |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            // Yield rather than spin on the queue's lock, which the engine needs.
            publish_all(&client, &received, &events, iters, std::thread::yield_now);
            start.elapsed()
        })
    });
    group.finish();
    cpu_per_message(&client, &received, &events, 1_000_000, "default");
    drop(client);
    wire_ratio_per_choice(addr, &received, &events);
    memory_per_connection(addr);
}

/// Publishes `n` of `events` (in turn) and returns once the sink has received them all and the
/// queue is empty, calling `idle` between checks.
fn publish_all(client: &Client, received: &AtomicU64, events: &[String], n: u64, idle: fn()) {
    let target = received.load(Ordering::Relaxed) + n;
    for i in 0..n {
        client
            .publish_raw("engine_fps_id", &events[(i % events.len() as u64) as usize])
            .unwrap();
    }
    while received.load(Ordering::Relaxed) < target || client.pending_count() > 0 {
        idle();
    }
}

/// What each permessage-deflate choice costs on the wire and in CPU, on the same telemetry
/// stream: the zlib stream the SDK used before (15-bit window, ~380 KiB), the windowed
/// compressor at each window it serves (the default is 12 bits), no context takeover at all,
/// and no compression.
fn wire_ratio_per_choice(addr: SocketAddr, received: &AtomicU64, events: &[String]) {
    let takeover = |bits: u8| DeflateOptions {
        client_max_window_bits: bits,
        ..DeflateOptions::default()
    };
    let mut choices: Vec<(String, Option<DeflateOptions>)> = vec![(
        "zlib stream, 15-bit window, context takeover".into(),
        Some(takeover(15)),
    )];
    for bits in 9..=13 {
        choices.push((
            format!("windowed compressor, {bits}-bit window, context takeover"),
            Some(takeover(bits)),
        ));
    }
    choices.push((
        "no context takeover (each event on its own)".into(),
        Some(DeflateOptions {
            client_no_context_takeover: true,
            ..DeflateOptions::default()
        }),
    ));
    choices.push(("deflate off".into(), None));
    for (label, deflate) in choices {
        let client = connected_with(addr, deflate);
        cpu_per_message(&client, received, events, 300_000, &label);
    }
}

/// CPU ticks (utime + stime) of a thread, from /proc.
fn thread_ticks(stat_path: &str) -> u64 {
    let stat = std::fs::read_to_string(stat_path).unwrap_or_default();
    // Fields after the `(comm)`: state is field 3; utime and stime are fields 14 and 15.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<u64> = rest
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|x| x.parse().ok())
        .collect();
    f.iter().sum()
}

fn engine_stat_paths() -> Vec<String> {
    let mut paths = Vec::new();
    for task in std::fs::read_dir("/proc/self/task")
        .into_iter()
        .flatten()
        .flatten()
    {
        let dir = task.path();
        if std::fs::read_to_string(dir.join("comm"))
            .unwrap_or_default()
            .trim()
            == "cobra-engine"
        {
            paths.push(dir.join("stat").to_string_lossy().into_owned());
        }
    }
    paths
}

/// Messages per CPU-second of the client's own threads (the publishing thread plus the engine),
/// which is what "per core" means on a shared machine where wall time includes waiting for a core.
fn cpu_per_message(client: &Client, received: &AtomicU64, events: &[String], n: u64, label: &str) {
    if !cfg!(target_os = "linux") {
        return;
    }
    let engines = engine_stat_paths();
    let ticks = || {
        thread_ticks("/proc/thread-self/stat")
            + engines.iter().map(|p| thread_ticks(p)).sum::<u64>()
    };
    let before = ticks();
    let wire_before = WIRE_BYTES.load(Ordering::Relaxed);
    let start = Instant::now();
    // Sleep while waiting: the publishing thread's CPU is counted.
    publish_all(client, received, events, n, || {
        std::thread::sleep(Duration::from_millis(1))
    });
    let wall = start.elapsed();
    let cpu = (ticks() - before) as f64 / 100.0;
    let wire = (WIRE_BYTES.load(Ordering::Relaxed) - wire_before) as f64 / n as f64;
    let pdu: f64 = events
        .iter()
        .map(|e| format!(r#"{{"action":"rtm/publish","id":{n},"body":{{"channel":"engine_fps_id","message":{e}}}}}"#).len() as f64)
        .sum::<f64>()
        / events.len() as f64;
    println!("[{label}]");
    println!(
        "wire: {wire:.1} bytes per publish (PDU {pdu:.0} bytes uncompressed): compression ratio {:.2}",
        pdu / wire
    );
    println!(
        "{n} publishes: {:.0} msgs/s wall, {:.0} msgs per client CPU-second ({cpu:.2} s CPU in {wall:.2?})",
        n as f64 / wall.as_secs_f64(),
        n as f64 / cpu
    );
}

fn rss_kib() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4
}

/// RSS growth per connected, authenticated, idle client (engine thread, socket, buffers).
fn memory_per_connection(addr: SocketAddr) {
    if !cfg!(target_os = "linux") {
        return;
    }
    let n = 50;
    let before = rss_kib();
    let clients: Vec<Client> = (0..n).map(|_| connected(addr)).collect();
    // One publish each so deflate state and buffers exist, as on a live connection.
    for c in &clients {
        c.publish_raw("engine_fps_id", &event(1)).unwrap();
    }
    while clients.iter().any(|c| c.pending_count() > 0) {
        std::thread::sleep(Duration::from_millis(5));
    }
    let after = rss_kib();
    println!(
        "client memory: {} KiB RSS per connected client ({} clients)",
        (after - before) / n,
        n
    );
    drop(clients);
}

criterion_group!(benches, publish);
criterion_main!(benches);
