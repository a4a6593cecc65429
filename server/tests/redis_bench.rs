//! Throughput of the Redis path, measured side by side in one run (a measurement tool, not a
//! test: it asserts only that every message arrived). Run it in release mode:
//!
//! ```text
//! cargo test --release -p cobra-server --test redis_bench -- --ignored --nocapture
//! ```
//!
//! 1. The ceiling of one node: `redis-benchmark -P 16` for `PUBLISH`, `XADD` and our publish
//!    script (`EVALSHA`, what each publish costs the node), 300-byte payloads.
//! 2. Publish → delivery through [`RedisBackend`] on one node and on three nodes: `PUBLISHERS`
//!    concurrent publishers (as many publishing connections would be), each awaiting its acks,
//!    over `CHANNELS` channels, one local subscriber per channel; the rate is messages
//!    delivered per second, from the first publish to the last delivery.

#[path = "support/redis.rs"]
mod redis_support;

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cobra_server::broker::backend::ChannelKey;
use cobra_server::broker::mailbox::{Delivery, Mailbox, Subscriber};
use cobra_server::broker::redis::{RedisBackend, RedisLimits, Trim, scripts};
use redis_support::RedisServer;

const PUBLISHERS: usize = 128;
const CHANNELS: usize = 16;
const MESSAGES: usize = 300_000;

fn payload() -> String {
    let base = r#"{"id":"engine_fps_id","session":"4dacbafefc214578aa3f8c1d2975ec92","timestamp":1536270895637,"version":1,"per_id_counter":12,"device":{"app_version":"3.25","game":"wiso","model":"iPhone","os_language":"en","os_name":"iOS","os_version":"10.3.3"},"data":{"fps":30},"pad":""#;
    let mut s = base.to_string();
    while s.len() < 298 {
        s.push('x');
    }
    s.push_str("\"}");
    s
}

/// Runs `redis-benchmark` and returns its requests per second.
fn redis_benchmark(port: u16, n: usize, args: &[&str]) -> f64 {
    let out = Command::new("redis-benchmark")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-P",
            "16",
            "-c",
            "50",
            "-q",
            "-n",
            &n.to_string(),
        ])
        .args(args)
        .output()
        .expect("redis-benchmark");
    let text = String::from_utf8_lossy(&out.stdout);
    // The last line is like `PUBLISH: 812345.69 requests per second, p50=0.791 msec`.
    text.rsplit(':')
        .find_map(|part| {
            part.split_whitespace()
                .next()
                .and_then(|w| w.parse::<f64>().ok())
        })
        .unwrap_or_else(|| panic!("cannot parse redis-benchmark output: {text}"))
}

fn ceiling() {
    let node = RedisServer::spawn().expect("redis-server");
    let p = payload();
    let publish = redis_benchmark(node.port(), 1_000_000, &["PUBLISH", "chan", &p]);
    let xadd = redis_benchmark(
        node.port(),
        300_000,
        &["XADD", "s", "MAXLEN", "1000", "*", "m", &p],
    );
    let mut c = node.client();
    let sha: String = redis::cmd("SCRIPT")
        .arg("LOAD")
        .arg(scripts::PUBLISH_BATCH)
        .query(&mut c)
        .expect("SCRIPT LOAD");
    // One message per call, then 16 per call (16 channels): the per-call cost amortized.
    let script = |trim: &str, batch: usize| {
        let mut args: Vec<String> = vec!["EVALSHA".into(), sha.clone(), batch.to_string()];
        args.extend((0..batch).map(|i| format!("cobra:h:b{}::c{i}", u8::from(trim == "~"))));
        args.extend(["1000".into(), trim.into(), "8".into(), "cobra:p:".into()]);
        args.extend((0..batch).map(|_| "1".to_string()));
        args.extend((0..batch).map(|_| p.clone()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        redis_benchmark(node.port(), 300_000 / batch, &args) * batch as f64
    };
    let exact1 = script("=", 1);
    let approx1 = script("~", 1);
    let exact16 = script("=", 16);
    let approx16 = script("~", 16);
    println!("ceiling, one node, redis-benchmark -P 16 -c 50, 300-byte payloads (messages/s):");
    println!("  PUBLISH (no subscriber)                          {publish:>10.0}");
    println!("  XADD MAXLEN 1000                                 {xadd:>10.0}");
    println!("  publish script, 1 message/call, exact trim       {exact1:>10.0}");
    println!("  publish script, 1 message/call, approx trim      {approx1:>10.0}");
    println!("  publish script, 16 messages/call, exact trim     {exact16:>10.0}");
    println!("  publish script, 16 messages/call, approx trim    {approx16:>10.0}");
}

fn through_backend(nodes: usize, trim: Trim) -> (f64, f64) {
    let servers = redis_support::spawn_nodes(nodes);
    let urls = redis_support::urls(&servers);
    let limits = RedisLimits {
        trim,
        ..RedisLimits::default()
    };
    // As `cobra run --redis` builds it: on its own I/O runtime.
    let backend = Arc::new(RedisBackend::start(&urls, None, 1000, limits).expect("backend"));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let channels: Vec<ChannelKey> = (0..CHANNELS)
            .map(|i| ChannelKey::new("bench", &format!("c{i}")))
            .collect();
        let mailbox = Arc::new(Mailbox::new(1 << 30));
        for (i, k) in channels.iter().enumerate() {
            let s = Arc::new(Subscriber::new(Arc::clone(&mailbox), i as u32));
            backend
                .subscribe_raw(k.as_str(), None, s)
                .await
                .expect("subscribe");
        }
        let text: Arc<str> = payload().into();
        let started = Instant::now();
        let mut tasks = Vec::new();
        for p in 0..PUBLISHERS {
            let (backend, channels, text) =
                (Arc::clone(&backend), channels.clone(), Arc::clone(&text));
            tasks.push(tokio::spawn(async move {
                for i in (p..MESSAGES).step_by(PUBLISHERS) {
                    let k = &channels[i % CHANNELS];
                    backend
                        .publish_raw(k.as_str(), Arc::clone(&text))
                        .await
                        .expect("publish");
                }
            }));
        }
        let consumer = {
            let mailbox = Arc::clone(&mailbox);
            tokio::spawn(async move {
                let mut got = 0;
                let mut out: Vec<Delivery> = Vec::with_capacity(4096);
                while got < MESSAGES {
                    if tokio::time::timeout(Duration::from_secs(20), mailbox.wait())
                        .await
                        .is_err()
                    {
                        break;
                    }
                    loop {
                        out.clear();
                        mailbox.drain(&mut out, 1 << 20);
                        if out.is_empty() {
                            break;
                        }
                        got += out.len();
                    }
                }
                (got, started.elapsed())
            })
        };
        for t in tasks {
            t.await.expect("publisher");
        }
        let acked = started.elapsed();
        let (got, delivered) = consumer.await.expect("consumer");
        assert_eq!(got, MESSAGES, "messages lost");
        (
            MESSAGES as f64 / acked.as_secs_f64(),
            MESSAGES as f64 / delivered.as_secs_f64(),
        )
    })
}

#[test]
#[ignore = "benchmark: run with --release -- --ignored --nocapture"]
fn redis_path_throughput() {
    ceiling();
    println!(
        "through RedisBackend: {PUBLISHERS} concurrent publishers, {CHANNELS} channels, {MESSAGES} messages of 300 bytes:"
    );
    for (nodes, trim) in [
        (1, Trim::Exact),
        (1, Trim::Approximate),
        (3, Trim::Exact),
        (3, Trim::Approximate),
    ] {
        let (acked, delivered) = through_backend(nodes, trim);
        println!(
            "  {nodes} node(s), {trim:?} trim: published+acked {acked:>10.0} /s, delivered {delivered:>10.0} /s"
        );
    }
}
