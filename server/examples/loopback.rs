//! A first publish→delivery figure on loopback: one publisher, N subscribers, the embedded
//! backend, everything in one process (server on its tokio runtime, clients on plain threads),
//! so the figure includes the clients' own cost on the same cores.
//!
//! ```text
//! cargo run --release -p cobra-server --example loopback -- SUBSCRIBERS MESSAGES [RATE]
//! ```
//! RATE (messages/s published, 0 = as fast as acks allow) paces the publisher; latency is
//! measured from a timestamp in each message to its decoding by the subscriber.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::mpsc;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use cobra_server::config::{AppsConfig, ConfigSource, ServerSettings};
use cobra_server::net::Server;
use cobra_test_support::client::upgrade;
use cobra_wire::ws::{Codec, Message, Role};
use serde_json::{Value, json};

const SECRET: &str = "0123456789abcdef0123456789abcdef";
/// Publishes in flight before the publisher waits for acks.
const WINDOW: usize = 2000;

struct Client {
    stream: TcpStream,
    codec: Codec,
    rbuf: BytesMut,
}

impl Client {
    fn connect(addr: SocketAddr) -> Client {
        let mut stream = TcpStream::connect(addr).unwrap();
        stream.set_nodelay(true).unwrap();
        let (_, after) = upgrade(&mut stream, addr.port(), "bench").unwrap();
        let rbuf = BytesMut::from(&after[..]);
        let mut c = Client {
            stream,
            codec: Codec::new(Role::Client, cobra_wire::Limits::default(), None),
            rbuf,
        };
        c.send(&json!({"action": "auth/handshake", "id": 1, "body": {"method": "role_secret", "data": {"role": "r"}}}).to_string());
        let hs: Value = serde_json::from_str(&c.recv_text()).unwrap();
        let hash = cobra_wire::auth::role_secret_hash(
            SECRET,
            hs["body"]["data"]["nonce"].as_str().unwrap(),
        );
        c.send(&json!({"action": "auth/authenticate", "id": 2, "body": {"method": "role_secret", "credentials": {"hash": hash}}}).to_string());
        assert!(c.recv_text().contains("auth/authenticate/ok"));
        c
    }

    fn send(&mut self, text: &str) {
        let mut out = Vec::new();
        self.codec.encode_text(text, &mut out);
        self.stream.write_all(&out).unwrap();
    }

    fn recv_text(&mut self) -> String {
        loop {
            if let Some(m) = self.codec.decode(&mut self.rbuf).unwrap() {
                match m {
                    Message::Text(t) => return t,
                    other => panic!("unexpected {other:?}"),
                }
            }
            let mut chunk = [0u8; 65536];
            let n = self.stream.read(&mut chunk).unwrap();
            assert!(n > 0, "server closed");
            self.rbuf.extend_from_slice(&chunk[..n]);
        }
    }
}

/// The `"t":<ns>` field of a message, without parsing the whole PDU.
fn timestamp(pdu: &str) -> Option<u64> {
    let i = pdu.find("\"t\":")? + 4;
    let digits: String = pdu[i..].chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let subscribers: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(1);
    let messages: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let rate: u64 = args.get(3).and_then(|a| a.parse().ok()).unwrap_or(0);

    let yaml = format!(
        "apps:\n  bench:\n    roles:\n      r: {{secret: {SECRET}, permissions: [publish, subscribe]}}\nchannel_max_length: 1000\n"
    );
    let mut settings = ServerSettings::with_defaults(
        "127.0.0.1:0".parse().unwrap(),
        ConfigSource::Content(String::new()),
    );
    settings.limits.max_connections = 100_000;
    settings.dashboard = false;
    let server = Server::start(settings, AppsConfig::from_yaml(&yaml).unwrap()).unwrap();
    let addr = server.local_addr();
    let epoch = Instant::now();
    let ready = Arc::new(Barrier::new(subscribers + 1));
    let (tx, rx) = mpsc::channel::<(Vec<u64>, usize)>();
    for _ in 0..subscribers {
        let ready = Arc::clone(&ready);
        let tx = tx.clone();
        std::thread::spawn(move || {
            let mut c = Client::connect(addr);
            c.send(r#"{"action":"rtm/subscribe","id":3,"body":{"channel":"bench"}}"#);
            assert!(c.recv_text().contains("rtm/subscribe/ok"));
            ready.wait();
            let mut latencies = Vec::with_capacity(messages);
            let mut lost_reports = 0;
            while latencies.len() < messages {
                let t = c.recv_text();
                if !t.starts_with(r#"{"action":"rtm/subscription/data""#) {
                    lost_reports += 1;
                    eprintln!("subscriber: {t}");
                    break;
                }
                let now = epoch.elapsed().as_nanos() as u64;
                latencies.push(now.saturating_sub(timestamp(&t).unwrap_or(now)));
            }
            let _ = tx.send((latencies, lost_reports));
        });
    }
    drop(tx);
    ready.wait();

    let mut p = Client::connect(addr);
    let pad = "x".repeat(200);
    let start = Instant::now();
    let mut acked = 0;
    let mut out = Vec::with_capacity(1 << 20);
    let mut sent = 0;
    while sent < messages {
        // Send what the window and the rate allow, in one write.
        let allowed_by_rate = if rate == 0 {
            messages
        } else {
            (start.elapsed().as_secs_f64() * rate as f64) as usize + 1
        };
        let upto = messages.min(acked + WINDOW).min(allowed_by_rate.max(sent));
        while sent < upto {
            let t = epoch.elapsed().as_nanos() as u64;
            let pdu = format!(
                r#"{{"action":"rtm/publish","id":{sent},"body":{{"channel":"bench","message":{{"t":{t},"n":{sent},"device":{{"game":"wiso","os_name":"iOS"}},"pad":"{pad}"}}}}}}"#
            );
            p.codec.encode_text(&pdu, &mut out);
            sent += 1;
        }
        if !out.is_empty() {
            p.stream.write_all(&out).unwrap();
            out.clear();
        }
        if sent - acked >= WINDOW
            || (sent == messages && acked < messages)
            || (rate > 0 && sent == upto && acked < sent)
        {
            p.recv_text();
            acked += 1;
        } else if rate > 0 {
            std::thread::sleep(Duration::from_micros(100));
        }
    }
    while acked < messages {
        p.recv_text();
        acked += 1;
    }
    let publish_elapsed = start.elapsed();
    let mut all = Vec::with_capacity(messages * subscribers);
    let mut reports = 0;
    for (lat, lost) in rx {
        all.extend(lat);
        reports += lost;
    }
    let elapsed = start.elapsed();
    all.sort_unstable();
    let pct = |q: f64| {
        all.get(((all.len() as f64 * q) as usize).min(all.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0) as f64
            / 1e6
    };
    println!(
        "1 publisher -> {subscribers} subscribers, {messages} messages of ~300 B{}: published {:.0} msg/s, delivered {} in {:.2} s = {:.0} deliveries/s; latency p50 {:.2} ms p99 {:.2} ms p99.9 {:.2} ms; loss reports {reports}",
        if rate > 0 {
            format!(" at {rate} msg/s")
        } else {
            String::new()
        },
        messages as f64 / publish_elapsed.as_secs_f64(),
        all.len(),
        elapsed.as_secs_f64(),
        all.len() as f64 / elapsed.as_secs_f64(),
        pct(0.5),
        pct(0.99),
        pct(0.999),
    );
    server.shutdown();
}
