//! `nats-bench`: the load tool's NATS mode, for the side-by-side comparison in
//! `benches/compare.sh`. It speaks the NATS client protocol (CONNECT, PING/PONG, PUB, SUB, MSG)
//! over NATS's WebSocket listener, with permessage-deflate on or off, and runs the same scenarios
//! as `cobra bench`: N publishers, M subscribers over S subjects, max rate or a paced rate,
//! 300-byte JSON events, latency from a send time carried in each event; or K idle connections.
//!
//! A crate of its own (`cargo build --profile bench -p nats-bench`), so the broker binary neither
//! grows nor rebuilds for it.
//! Why a minimal protocol mode rather than a Rust NATS client: `async-nats`' WebSocket transport
//! (`tokio-websockets`) does not negotiate permessage-deflate, so it could not measure NATS with
//! compression on; the WebSocket layer here is `cobra-wire`'s, the same as `cobra bench` uses.
//!
//! Flow control at max rate: NATS has no per-message acks, so each publisher sends a `PING` after
//! every `--window` messages and keeps at most two such batches unanswered (the `PONG` comes back
//! once the server has processed everything before it).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::{Buf, BytesMut};
use clap::Parser;
use cobra_bench_event::{Events, Padding, send_time};
use cobra_wire::Limits;
use cobra_wire::handshake::{self, ClientRequestParams};
use cobra_wire::pmd::{self, PmdConfig};
use cobra_wire::ws::{Codec, Message, Role};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Mutex;

#[derive(Debug, Parser)]
#[command(about = "NATS over WebSocket load generator (same scenarios as `cobra bench`)")]
struct Args {
    /// NATS WebSocket listener, `ws://host:port`.
    #[arg(long)]
    url: String,
    /// Publisher connections.
    #[arg(short = 'n', long, default_value_t = 1)]
    publishers: usize,
    /// Subscriber connections.
    #[arg(short = 'm', long, default_value_t = 1)]
    subscribers: usize,
    /// Subjects: publisher i publishes to subject i % S, subscriber j subscribes to j % S.
    #[arg(long, default_value_t = 1)]
    subjects: usize,
    /// Bytes of each event's JSON.
    #[arg(long, default_value_t = 300)]
    size: usize,
    /// The events' padding, as `cobra bench --padding`: `random` or `words`.
    #[arg(long, default_value = "random")]
    padding: Padding,
    /// Total publish rate over all publishers, messages/s (0: as fast as flow control allows).
    #[arg(long, default_value_t = 0.0)]
    rate: f64,
    /// Messages between two flow-control PINGs of a publisher at max rate.
    #[arg(long, default_value_t = 256)]
    window: u64,
    /// Seconds of publishing.
    #[arg(long, default_value_t = 5.0)]
    duration: f64,
    /// Offer permessage-deflate.
    #[arg(long)]
    deflate: bool,
    /// Instead of a load: open this many idle connections, report the server's RSS per connection.
    #[arg(long, default_value_t = 0)]
    idle: usize,
    /// PID of the server, to read its RSS (idle mode).
    #[arg(long)]
    server_pid: Option<u32>,
}

type Res<T> = Result<T, String>;

/// One NATS connection over WebSocket: the WebSocket payloads form one NATS byte stream.
struct Conn {
    tcp: TcpStream,
    codec: Codec,
    rbuf: BytesMut,
    /// NATS protocol bytes received and not parsed yet.
    nats: BytesMut,
    wbuf: Vec<u8>,
    /// Spare room a read is given: 256 KiB for a subscriber, as `cobra bench`'s subscribers
    /// read (one thread plays every connection: with 64 KiB a turn, one subscriber fell behind
    /// 50 publishers by the tool's own scheduling).
    read_chunk: usize,
}

impl Conn {
    async fn open(addr: SocketAddr, host: &str, port: u16, deflate: bool) -> Res<Conn> {
        let tcp = TcpStream::connect(addr)
            .await
            .map_err(|e| format!("connect {addr}: {e}"))?;
        tcp.set_nodelay(true).map_err(|e| e.to_string())?;
        let mut c = Conn {
            tcp,
            codec: Codec::new(Role::Client, Limits::default(), None),
            rbuf: BytesMut::with_capacity(4096),
            read_chunk: 64 << 10,
            nats: BytesMut::new(),
            wbuf: Vec::with_capacity(4096),
        };
        let cfg = PmdConfig::default();
        let offer = pmd::client_offer(&cfg);
        let (req, key) = handshake::client_request(&ClientRequestParams {
            host,
            port,
            path_and_query: "/",
            subprotocol: None,
            extensions: deflate.then_some(offer.as_str()),
            user_agent: Some("cobra-nats-bench"),
            extra_headers: &[],
        })
        .map_err(|e| e.to_string())?;
        c.wbuf.extend_from_slice(&req);
        c.flush().await?;
        let limits = Limits::default();
        loop {
            match handshake::parse_response(&c.rbuf, &key, &limits) {
                Ok(Some((resp, used))) => {
                    let neg = match resp.extensions.as_deref() {
                        Some(ext) if deflate => {
                            Some(pmd::client_accept(&cfg, ext).map_err(|e| e.to_string())?)
                        }
                        _ => None,
                    };
                    if deflate && neg.is_none() {
                        return Err("server did not accept permessage-deflate".into());
                    }
                    c.codec = Codec::new(Role::Client, limits, neg);
                    c.rbuf.advance(used);
                    // The INFO may have come in the same read as the 101.
                    c.decode()?;
                    break;
                }
                Ok(None) => {
                    if c.fill().await? == 0 {
                        return Err("closed during the upgrade".into());
                    }
                }
                Err(e) => return Err(format!("upgrade refused: {e}")),
            }
        }
        // INFO first, then our CONNECT; the PONG to our PING says the server took it.
        let info = c.line().await?;
        if !info.starts_with(b"INFO ") {
            return Err(format!(
                "expected INFO, got {:?}",
                String::from_utf8_lossy(&info)
            ));
        }
        c.send(b"CONNECT {\"verbose\":false,\"pedantic\":false,\"protocol\":1,\"headers\":false}\r\nPING\r\n");
        c.flush().await?;
        c.until_pong().await?;
        Ok(c)
    }

    /// Queues `data` as one WebSocket message.
    fn send(&mut self, data: &[u8]) {
        self.codec.encode_binary(data, &mut self.wbuf);
    }

    async fn flush(&mut self) -> Res<()> {
        if !self.wbuf.is_empty() {
            self.tcp
                .write_all(&self.wbuf)
                .await
                .map_err(|e| format!("write: {e}"))?;
            self.wbuf.clear();
        }
        Ok(())
    }

    async fn fill(&mut self) -> Res<usize> {
        self.rbuf.reserve(self.read_chunk);
        let n = self
            .tcp
            .read_buf(&mut self.rbuf)
            .await
            .map_err(|e| format!("read: {e}"))?;
        BYTES_IN.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }

    /// Moves every complete WebSocket message's payload into `nats`; answers WebSocket pings.
    fn decode(&mut self) -> Res<()> {
        while let Some(m) = self
            .codec
            .decode(&mut self.rbuf)
            .map_err(|e| e.to_string())?
        {
            match m {
                Message::Binary(b) => self.nats.extend_from_slice(&b),
                Message::Text(t) => self.nats.extend_from_slice(t.as_bytes()),
                Message::Ping(p) => {
                    let _ = self.codec.encode_pong(&p, &mut self.wbuf);
                }
                Message::Close(..) => return Err("server closed the connection".into()),
                _ => {}
            }
        }
        Ok(())
    }

    /// Reads more bytes (at least one WebSocket message's worth or EOF).
    async fn more(&mut self) -> Res<()> {
        if self.fill().await? == 0 {
            return Err("server closed the connection".into());
        }
        self.decode()
    }

    /// The next protocol line (without CRLF).
    async fn line(&mut self) -> Res<Vec<u8>> {
        loop {
            if let Some(i) = memchr::memmem::find(&self.nats, b"\r\n") {
                let l = self.nats[..i].to_vec();
                self.nats.advance(i + 2);
                return Ok(l);
            }
            self.more().await?;
        }
    }

    /// Skips lines until a PONG, answering PINGs.
    async fn until_pong(&mut self) -> Res<()> {
        loop {
            let l = self.line().await?;
            match &l[..] {
                b"PONG" => return Ok(()),
                b"PING" => {
                    self.send(b"PONG\r\n");
                    self.flush().await?;
                }
                l if l.starts_with(b"-ERR") => {
                    return Err(String::from_utf8_lossy(l).into_owned());
                }
                _ => {}
            }
        }
    }
}

/// Bytes read off every connection's socket (WebSocket frames, compressed or not), as
/// `cobra bench` reports `bytes_in`: the wire cost of a delivery.
static BYTES_IN: AtomicU64 = AtomicU64::new(0);

struct Stats {
    delivered: AtomicU64,
    last_delivery_ns: AtomicU64,
    hist: Mutex<hdrhistogram::Histogram<u64>>,
}

async fn subscriber(mut c: Conn, epoch: Instant, stats: Arc<Stats>) -> Res<()> {
    let mut local = hdrhistogram::Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)
        .map_err(|e| e.to_string())?;
    let mut n = 0u64;
    c.read_chunk = 256 << 10;
    loop {
        // Parse every complete MSG in the buffer; answer server PINGs.
        while let Some(i) = memchr::memmem::find(&c.nats, b"\r\n") {
            let line = &c.nats[..i];
            if let Some(rest) = line.strip_prefix(b"MSG ") {
                let len: usize = rest
                    .rsplit(|b| *b == b' ')
                    .next()
                    .and_then(|l| std::str::from_utf8(l).ok()?.parse().ok())
                    .ok_or("bad MSG line")?;
                if c.nats.len() < i + 2 + len + 2 {
                    break;
                }
                let payload = &c.nats[i + 2..i + 2 + len];
                let now = epoch.elapsed().as_nanos() as u64;
                if let Some(t) = send_time(payload) {
                    let _ = local.record((now.saturating_sub(t) / 1000).max(1));
                }
                n += 1;
                c.nats.advance(i + 2 + len + 2);
                stats.last_delivery_ns.fetch_max(now, Ordering::Relaxed);
            } else {
                if line == b"PING" {
                    c.send(b"PONG\r\n");
                } else if line.starts_with(b"-ERR") {
                    return Err(String::from_utf8_lossy(line).into_owned());
                }
                c.nats.advance(i + 2);
            }
        }
        if n > 0 {
            stats.delivered.fetch_add(n, Ordering::Relaxed);
            n = 0;
            if !local.is_empty() {
                stats
                    .hist
                    .lock()
                    .await
                    .add(&local)
                    .map_err(|e| e.to_string())?;
                local.reset();
            }
        }
        c.flush().await?;
        c.more().await?;
    }
}

#[allow(clippy::too_many_arguments)]
async fn publisher(
    mut c: Conn,
    p: u32,
    subject: String,
    events: Arc<Events>,
    rate: f64,
    window: u64,
    until: Instant,
    epoch: Instant,
) -> Res<u64> {
    let mut seq = 0u64;
    let head = format!("PUB {subject} ");
    let mut frame = Vec::with_capacity(events.message_bytes() + 64);
    let mut ev = String::with_capacity(events.message_bytes() + 32);
    let mut unanswered = 0u32;
    let start = Instant::now();
    while Instant::now() < until {
        let batch = if rate > 0.0 {
            // Send what is due by now, then sleep a millisecond.
            let due = (start.elapsed().as_secs_f64() * rate) as u64;
            if due <= seq {
                tokio::time::sleep(Duration::from_millis(1)).await;
                continue;
            }
            due - seq
        } else {
            window
        };
        for _ in 0..batch {
            ev.clear();
            events.write(&mut ev, epoch.elapsed().as_nanos() as u64, p, seq);
            frame.clear();
            frame.extend_from_slice(head.as_bytes());
            frame.extend_from_slice(ev.len().to_string().as_bytes());
            frame.extend_from_slice(b"\r\n");
            frame.extend_from_slice(ev.as_bytes());
            frame.extend_from_slice(b"\r\n");
            c.send(&frame);
            seq += 1;
        }
        if rate <= 0.0 {
            c.send(b"PING\r\n");
            unanswered += 1;
        }
        c.flush().await?;
        while unanswered >= 2 {
            c.until_pong().await?;
            unanswered -= 1;
        }
    }
    while unanswered > 0 {
        c.until_pong().await?;
        unanswered -= 1;
    }
    Ok(seq)
}

fn rss_kib(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

async fn run(a: Args) -> Res<serde_json::Value> {
    let rest = a
        .url
        .strip_prefix("ws://")
        .ok_or("--url: expected ws://host:port")?;
    let (host, port) = rest
        .trim_end_matches('/')
        .rsplit_once(':')
        .ok_or("--url: expected ws://host:port")?;
    let port: u16 = port.parse().map_err(|_| "--url: bad port")?;
    let addr = tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| e.to_string())?
        .next()
        .ok_or("no address")?;
    if a.idle > 0 {
        let before = a.server_pid.and_then(rss_kib);
        let t = Instant::now();
        let mut conns = Vec::with_capacity(a.idle);
        for _ in 0..a.idle {
            conns.push(Conn::open(addr, host, port, a.deflate).await?);
        }
        let secs = t.elapsed().as_secs_f64();
        let after = a.server_pid.and_then(rss_kib);
        let per = match (before, after) {
            (Some(b), Some(x)) => Some((x.saturating_sub(b) * 1024) / a.idle as u64),
            _ => None,
        };
        return Ok(serde_json::json!({
            "idle": {"requested": a.idle, "held": conns.len(), "connect_seconds": secs,
                     "server_rss_before_kib": before, "server_rss_after_kib": after,
                     "server_rss_per_connection_bytes": per},
            "deflate": a.deflate,
        }));
    }
    let epoch = Instant::now();
    let stats = Arc::new(Stats {
        delivered: AtomicU64::new(0),
        last_delivery_ns: AtomicU64::new(0),
        hist: Mutex::new(
            hdrhistogram::Histogram::new_with_bounds(1, 60_000_000, 3)
                .map_err(|e| e.to_string())?,
        ),
    });
    let s = a.subjects.max(1);
    let mut subs = tokio::task::JoinSet::new();
    for j in 0..a.subscribers {
        let mut c = Conn::open(addr, host, port, a.deflate).await?;
        // SUB, then a PING round trip so the subscription is in place before publishing.
        c.send(format!("SUB bench.{} 1\r\nPING\r\n", j % s).as_bytes());
        c.flush().await?;
        c.until_pong().await?;
        subs.spawn(subscriber(c, epoch, stats.clone()));
    }
    let mut pubs = tokio::task::JoinSet::new();
    let mut conns = Vec::new();
    for _ in 0..a.publishers {
        conns.push(Conn::open(addr, host, port, a.deflate).await?);
    }
    let start_ns = epoch.elapsed().as_nanos() as u64;
    let until = Instant::now() + Duration::from_secs_f64(a.duration);
    let per_rate = a.rate / a.publishers.max(1) as f64;
    // The events `cobra bench` publishes, byte for byte (same fields, same padding pool).
    let events = Arc::new(Events::with_padding(a.size, a.padding));
    for (i, c) in conns.into_iter().enumerate() {
        let publishing = publisher(
            c,
            i as u32,
            format!("bench.{}", i % s),
            events.clone(),
            per_rate,
            a.window,
            until,
            epoch,
        );
        pubs.spawn(async move { publishing.await.map(|n| (i, n)) });
    }
    let mut published = 0u64;
    // Published per subject: what each subscriber of it should get.
    let mut per_subject = vec![0u64; s];
    while let Some(r) = pubs.join_next().await {
        let (i, n) = r.map_err(|e| e.to_string())??;
        published += n;
        per_subject[i % s] += n;
    }
    let expected: u64 = (0..a.subscribers).map(|j| per_subject[j % s]).sum();
    let publish_seconds = (epoch.elapsed().as_nanos() as u64 - start_ns) as f64 / 1e9;
    // Deliveries drain: wait until they stop growing for 300 ms (or 10 s in all).
    let drain_end = Instant::now() + Duration::from_secs(10);
    let mut last = u64::MAX;
    while Instant::now() < drain_end {
        let now = stats.delivered.load(Ordering::Relaxed);
        if now == last {
            break;
        }
        last = now;
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    subs.abort_all();
    let delivered = stats.delivered.load(Ordering::Relaxed);
    let last_ns = stats
        .last_delivery_ns
        .load(Ordering::Relaxed)
        .max(start_ns + 1);
    let h = stats.hist.lock().await;
    let us = |q: f64| h.value_at_quantile(q);
    Ok(serde_json::json!({
        "target": "nats",
        "publishers": a.publishers, "subscribers": a.subscribers, "subjects": s,
        "message_bytes": events.message_bytes(), "deflate": a.deflate, "target_rate": a.rate,
        "publish_seconds": publish_seconds, "published": published,
        "published_per_sec": published as f64 / publish_seconds,
        "delivered": delivered,
        // What the subscribers' subjects were published and they did not get (NATS drops a
        // slow consumer's messages without telling it how many).
        "expected": expected, "lost": expected.saturating_sub(delivered),
        "delivered_per_sec": delivered as f64 / ((last_ns - start_ns) as f64 / 1e9),
        "bytes_in": BYTES_IN.load(Ordering::Relaxed),
        "latency": {"count": h.len(), "p50_us": us(0.5), "p99_us": us(0.99), "max_us": h.max()},
    }))
}

fn main() {
    let args = Args::parse();
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("nats-bench: {e}");
            std::process::exit(1);
        }
    };
    match rt.block_on(run(args)) {
        Ok(v) => println!("{v}"),
        Err(e) => {
            eprintln!("nats-bench: {e}");
            std::process::exit(1);
        }
    }
}
