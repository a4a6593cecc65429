//! Graceful drain, end to end: 1,000 SDK clients publish through a load balancer to server A
//! of two servers sharing a real `redis-server`; A drains. Every acknowledged message is
//! delivered (to a subscriber on B), every client reconnects to B, and the reconnects are
//! spread over the drain window, not a herd.
//!
//! The load balancer is a small TCP proxy in this test that, like a real one, sends a new
//! connection to the first backend whose `/health/ready` answers 200 (polled every 10 ms).

#[path = "common/mod.rs"]
mod common;
#[path = "support/redis.rs"]
mod redis_support;

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cobra::{Client, Config, ErrorKind, Event};
use cobra_server::broker::redis::RedisLimits;
use cobra_server::net::ServerHandle;
use redis_support::RedisServer;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const CLIENTS: usize = 1000;
const WINDOW: Duration = Duration::from_secs(3);
const CHANNEL: &str = "drain";

fn server(redis: &RedisServer) -> ServerHandle {
    let limits = RedisLimits {
        reconnect_max: Duration::from_millis(200),
        ..RedisLimits::default()
    };
    common::start_on_redis(&redis.url(), 100_000, limits)
}

/// The test's load balancer: a TCP proxy to the first ready backend.
struct LoadBalancer {
    addr: SocketAddr,
    _runtime: tokio::runtime::Runtime,
}

async fn is_ready(backend: SocketAddr) -> bool {
    let probe = async {
        let mut s = tokio::net::TcpStream::connect(backend).await.ok()?;
        s.write_all(b"GET /health/ready HTTP/1.1\r\nHost: lb\r\n\r\n")
            .await
            .ok()?;
        let mut head = [0u8; 12];
        s.read_exact(&mut head).await.ok()?;
        Some(&head == b"HTTP/1.1 200")
    };
    tokio::time::timeout(Duration::from_secs(1), probe)
        .await
        .ok()
        .flatten()
        .unwrap_or(false)
}

impl LoadBalancer {
    fn start(backends: Vec<SocketAddr>) -> LoadBalancer {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let ready: Arc<Vec<AtomicBool>> =
            Arc::new(backends.iter().map(|_| AtomicBool::new(false)).collect());
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let addr = listener.local_addr().unwrap();
        {
            let (ready, backends) = (Arc::clone(&ready), backends.clone());
            runtime.spawn(async move {
                loop {
                    for (i, b) in backends.iter().enumerate() {
                        ready[i].store(is_ready(*b).await, Ordering::Release);
                    }
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            });
        }
        let routing = Arc::clone(&ready);
        runtime.spawn(async move {
            let ready = routing;
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else {
                    continue;
                };
                let target = backends
                    .iter()
                    .zip(ready.iter())
                    .find(|(_, r)| r.load(Ordering::Acquire))
                    .map(|(b, _)| *b);
                tokio::spawn(async move {
                    let Some(target) = target else { return };
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
            }
        });
        // Wait for the first probes.
        let deadline = Instant::now() + common::WAIT;
        while !ready[0].load(Ordering::Acquire) {
            assert!(Instant::now() < deadline, "backend never ready");
            std::thread::sleep(Duration::from_millis(5));
        }
        LoadBalancer {
            addr,
            _runtime: runtime,
        }
    }
}

/// What one client's listener saw, with times.
#[derive(Default)]
struct Seen {
    acked: HashSet<u64>,
    authenticated: Vec<Instant>,
    drain_closes: Vec<Instant>,
    other_closes: Vec<u16>,
    drain_errors: usize,
}

fn raise_open_files_limit() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    if let Ok((_, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
        let _ = setrlimit(Resource::RLIMIT_NOFILE, hard, hard);
    }
}

fn config(url: &str) -> Config {
    Config::new(url, "app1", "all", common::SECRET)
        .deflate(None)
        .backoff(Duration::from_millis(200), Duration::from_secs(2))
}

/// Fraction of `times` in each of `n` equal slices of `[start, start + span)`.
fn histogram(times: &[Instant], start: Instant, span: Duration, n: usize) -> Vec<usize> {
    let mut h = vec![0; n];
    for t in times {
        let x = t.saturating_duration_since(start).as_secs_f64() / span.as_secs_f64();
        h[((x * n as f64) as usize).min(n - 1)] += 1;
    }
    h
}

#[test]
fn drain_moves_a_thousand_publishing_clients_without_losing_acknowledged_messages() {
    if !redis_support::available() {
        return;
    }
    raise_open_files_limit();
    let redis = RedisServer::spawn().expect("redis-server");
    let a = server(&redis);
    let b = server(&redis);
    let lb = LoadBalancer::start(vec![a.local_addr(), b.local_addr()]);
    let lb_url = format!("ws://{}", lb.addr);

    // The subscriber is on B, directly.
    let delivered: Arc<Mutex<HashSet<(u64, u64)>>> = Arc::default();
    let subscribed = Arc::new(AtomicBool::new(false));
    let subscriber = {
        let (delivered, subscribed) = (Arc::clone(&delivered), Arc::clone(&subscribed));
        Client::new(
            config(&format!("ws://{}", b.local_addr())),
            Some(Arc::new(move |e: &Event| match e {
                Event::Subscribed { .. } => subscribed.store(true, Ordering::Release),
                Event::SubscriptionData { messages, .. } => {
                    let mut d = delivered.lock().unwrap();
                    for m in messages {
                        d.insert((m["c"].as_u64().unwrap(), m["n"].as_u64().unwrap()));
                    }
                }
                _ => {}
            })),
        )
        .unwrap()
    };
    subscriber.connect().unwrap();
    subscriber
        .subscribe(cobra::SubscribeOptions::new(CHANNEL))
        .unwrap();
    common::eventually("the subscription", || {
        subscribed.load(Ordering::Acquire).then_some(())
    });

    // 1,000 publishers, all on A (the balancer's first ready backend).
    let seen: Vec<Arc<Mutex<Seen>>> = (0..CLIENTS).map(|_| Arc::default()).collect();
    let clients: Vec<Client> = seen
        .iter()
        .map(|s| {
            let s = Arc::clone(s);
            let c = Client::new(
                config(&lb_url),
                Some(Arc::new(move |e: &Event| {
                    let mut s = s.lock().unwrap();
                    match e {
                        Event::Published { id } => {
                            s.acked.insert(*id);
                        }
                        Event::Authenticated => s.authenticated.push(Instant::now()),
                        Event::Closed { code: 1012, .. } => s.drain_closes.push(Instant::now()),
                        Event::Closed { code, .. } => s.other_closes.push(*code),
                        Event::Error {
                            kind: ErrorKind::ClosedByServer,
                            ..
                        } => s.drain_errors += 1,
                        _ => {}
                    }
                })),
            )
            .unwrap();
            c.connect().unwrap();
            c
        })
        .collect();
    let all_authenticated = |n: usize| {
        seen.iter()
            .all(|s| s.lock().unwrap().authenticated.len() >= n)
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while !all_authenticated(1) {
        assert!(Instant::now() < deadline, "clients did not all connect");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(a.broker().connection_count(), CLIENTS, "all on A");

    // Every client publishes one message per 300 ms, through the drain and a bit after: a tenth
    // of them every 30 ms, so the load is smooth (bursts of 1,000 publishes would bunch up
    // whatever else the machine does, reconnects included).
    let mut sent: HashMap<(usize, u64), (u64, u64)> = HashMap::new();
    let mut slice = 0usize;
    let mut publish_slice = |sent: &mut HashMap<_, _>| {
        let round = (slice / 10) as u64;
        for (i, c) in clients.iter().enumerate().skip(slice % 10).step_by(10) {
            let id = c
                .publish_raw(CHANNEL, &format!(r#"{{"c":{i},"n":{round}}}"#))
                .unwrap();
            sent.insert((i, id), (i as u64, round));
        }
        slice += 1;
    };
    for _ in 0..10 {
        publish_slice(&mut sent);
        std::thread::sleep(Duration::from_millis(30));
    }
    let t0 = Instant::now();
    a.drain(WINDOW, true);
    assert!(a.is_draining());
    while !a.finished() {
        assert!(
            t0.elapsed() < WINDOW + Duration::from_secs(5),
            "A did not stop after its window"
        );
        publish_slice(&mut sent);
        std::thread::sleep(Duration::from_millis(30));
    }
    let stopped_after = t0.elapsed();
    a.wait();
    for _ in 0..10 {
        publish_slice(&mut sent);
        std::thread::sleep(Duration::from_millis(30));
    }

    // Every client reconnected, to B.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !all_authenticated(2) {
        assert!(Instant::now() < deadline, "clients did not all reconnect");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(b.broker().connection_count(), CLIENTS + 1, "all on B");

    // Every acknowledged message delivered (the SDK resends the others: wait for all acks).
    let deadline = Instant::now() + Duration::from_secs(30);
    while clients.iter().any(|c| c.pending_count() > 0) {
        assert!(Instant::now() < deadline, "publishes never acknowledged");
        std::thread::sleep(Duration::from_millis(20));
    }
    let acked: Vec<(u64, u64)> = seen
        .iter()
        .enumerate()
        .flat_map(|(i, s)| {
            let ids: Vec<u64> = s.lock().unwrap().acked.iter().copied().collect();
            ids.into_iter().map(move |id| (i, id))
        })
        .map(|key| sent[&key])
        .collect();
    assert_eq!(acked.len(), sent.len(), "every publish acknowledged");
    let deadline = Instant::now() + Duration::from_secs(30);
    let missing = loop {
        let d = delivered.lock().unwrap();
        let missing = acked.iter().filter(|m| !d.contains(m)).count();
        if missing == 0 || Instant::now() > deadline {
            break missing;
        }
        drop(d);
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(missing, 0, "acknowledged messages not delivered");

    // The drain was not an error, and it was spread.
    let mut closes = Vec::new();
    let mut reconnects = Vec::new();
    for s in &seen {
        let s = s.lock().unwrap();
        assert_eq!(s.drain_closes.len(), 1, "closed once, with 1012");
        assert!(
            s.other_closes.is_empty(),
            "other closes: {:?}",
            s.other_closes
        );
        assert_eq!(s.drain_errors, 0, "a drain close is not an error");
        closes.push(s.drain_closes[0]);
        reconnects.push(s.authenticated[1]);
    }
    let spread = WINDOW.mul_f64(0.8);
    let quarters = histogram(&closes, t0, spread, 4);
    // Reconnects over the whole window in tenths (the last ones come after the spread).
    let tenths = histogram(&reconnects, t0, WINDOW, 10);
    println!(
        "drain of {CLIENTS} clients over {WINDOW:?} (stopped after {stopped_after:?}): closes per quarter {quarters:?}, reconnects per tenth {tenths:?}, {} messages",
        sent.len()
    );
    assert!(
        stopped_after < WINDOW + Duration::from_secs(1),
        "stopped {stopped_after:?} after the drain began"
    );
    // Evenly spread: 250 closes per quarter of the spread; the machine is shared and noisy, so
    // allow half again either way. A herd would put nearly all of them in one slice.
    for q in &quarters {
        assert!(
            (CLIENTS / 4 / 2..=CLIENTS / 4 * 3 / 2).contains(q),
            "closes not spread evenly: {quarters:?}"
        );
    }
    assert!(
        tenths.iter().all(|n| *n <= CLIENTS / 4),
        "a herd of reconnects: {tenths:?}"
    );
    drop(clients);
    drop(subscriber);
}

/// Publishes already read when the drain closes a connection are answered before the close:
/// the Redis node is frozen while they are in flight, the drain asks the connection to close
/// at once, and the close waits for the answers.
#[test]
fn a_drained_connection_answers_its_publishes_in_flight_before_closing() {
    if !redis_support::available() {
        return;
    }
    let redis = RedisServer::spawn().expect("redis-server");
    let server = server(&redis);
    let mut c = common::Client::authed(server.local_addr(), "app1", "all");
    redis.freeze(true);
    let ids: Vec<u64> = (0..5)
        .map(|n| {
            c.send(
                "rtm/publish",
                serde_json::json!({"channel": "held", "message": n}),
            )
        })
        .collect();
    // The publishes reach the server and wait for the frozen node.
    std::thread::sleep(Duration::from_millis(200));
    server.drain(Duration::ZERO, false);
    std::thread::sleep(Duration::from_millis(200));
    redis.freeze(false);
    for id in ids {
        let answer = c.recv_json();
        assert_eq!(
            answer["id"], id,
            "answers in order, before the close: {answer}"
        );
        let action = answer["action"].as_str().unwrap();
        assert!(
            action == "rtm/publish/ok" || action == "rtm/publish/error",
            "{answer}"
        );
    }
    assert_eq!(c.expect_close(), 1012);
}
