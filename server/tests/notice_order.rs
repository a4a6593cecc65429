//! Slow subscribers (issue 23): a `fast_forward` gap notice sits exactly where its gap is in the
//! stream. A subscriber reading slower than a publisher falls behind the channel's history again
//! and again; every data message it gets must be the one expected after the messages before it
//! and the counts skipped before it (no notice early, late or twice).
//!
//! The race this guards against: a backend reporting a gap from its own task (Redis: the replay
//! task, once the queue is empty) just after the session took a batch, while the session still
//! had an earlier notice to write, had the new gap written with the earlier one, ahead of the
//! batch it follows (`n=1, skip 3, skip 3, n=5`). The window is a few microseconds wide, so the
//! test widens it with a hook ([`test_hooks::delay_notices`]): the session waits between taking
//! a batch and taking the notices.

#[path = "common/mod.rs"]
mod common;
#[path = "support/redis.rs"]
mod redis_support;

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use cobra_server::broker::redis::{RedisBackend, RedisLimits};
use cobra_server::broker::test_hooks;
use cobra_server::net::{Server, ServerHandle};
use common::Client;
use serde_json::json;

/// Messages the channel keeps: the reader falls behind them many times.
const KEPT: usize = 100;
/// Payload padding per message (bytes).
const SIZE: usize = 1_000;
/// Gaps to see before the publisher stops: each is a chance for the race.
const GAPS: u64 = 40;
/// Publishes sent before their acks are read.
const WINDOW: usize = 50;
/// How long the session waits between taking a batch and taking notices (the earlier
/// reproduction used 300 µs; more makes it surer on a loaded machine).
const DELAY: Duration = Duration::from_millis(2);

/// A server with a small connection queue (a few messages: the reader falls behind at once)
/// and a short history, on `redis` if given, else on the embedded backend.
fn server(redis: Option<&str>) -> ServerHandle {
    let mut settings = common::settings();
    settings.limits.outbound_queue_bytes = 16 << 10;
    let apps = common::apps(KEPT);
    match redis {
        None => Server::start(settings, apps).expect("server starts"),
        Some(url) => {
            let limits = RedisLimits {
                // Small pages: the replay checks for a gap often.
                history_page: 20,
                namespace: common::fresh_redis_namespace(),
                ..RedisLimits::default()
            };
            let backend =
                RedisBackend::start(url, None, KEPT, limits).expect("the Redis backend starts");
            Server::start_with_backend(settings, apps, Arc::new(backend)).expect("server starts")
        }
    }
}

/// Publishes `{"n": 0, 1, ...}` to `c` until `stop`, acks read per window; returns how many.
fn publish_until(mut p: Client, stop: &AtomicBool) -> usize {
    let pad = "x".repeat(SIZE);
    let mut n = 0;
    while !stop.load(Ordering::Relaxed) {
        for i in n..n + WINDOW {
            p.send(
                "rtm/publish",
                json!({"channel": "c", "message": {"n": i, "pad": pad}}),
            );
        }
        for _ in 0..WINDOW {
            let ack = p.recv_json();
            assert_eq!(ack["action"], "rtm/publish/ok", "{ack}");
        }
        n += WINDOW;
    }
    n
}

/// What the reader saw last, for the failure message (`n=1, skip 3, skip 3, n=5`).
struct Trail(VecDeque<String>);

impl Trail {
    fn push(&mut self, event: String) {
        if self.0.len() == 12 {
            self.0.pop_front();
        }
        self.0.push_back(event);
    }

    fn show(&self) -> String {
        self.0.iter().cloned().collect::<Vec<_>>().join(", ")
    }
}

/// The slow reader and the fast publisher; checks every message against the gaps before it.
fn gaps_sit_between_the_messages_they_describe(server: &ServerHandle) {
    test_hooks::delay_notices(DELAY);
    let addr = server.local_addr();
    let mut reader = Client::authed(addr, "app1", "all");
    let r = reader.request(
        "rtm/subscribe",
        json!({"channel": "c", "fast_forward": true}),
    );
    assert_eq!(r["action"], "rtm/subscribe/ok", "{r}");

    let stop = Arc::new(AtomicBool::new(false));
    let mut publisher = Some({
        let p = Client::authed(addr, "app1", "all");
        let stop = Arc::clone(&stop);
        thread::spawn(move || publish_until(p, &stop))
    });

    let mut expected = 0u64; // the next message's `n`: read, plus skipped
    let mut gaps = 0u64;
    let mut trail = Trail(VecDeque::new());
    let mut published = None;
    // Enough gaps, or (a slow machine) enough time: then the publisher stops and the reader
    // reads to the last message.
    let stop_at = Instant::now() + Duration::from_secs(60);
    while published.is_none_or(|total| expected < total) {
        if let Some(p) = publisher.take_if(|_| gaps >= GAPS || Instant::now() > stop_at) {
            stop.store(true, Ordering::Relaxed);
            published = Some(p.join().expect("every publish acknowledged") as u64);
        }
        let v = reader.recv_json();
        let body = &v["body"];
        match v["action"].as_str() {
            Some("rtm/subscription/data") => {
                for m in body["messages"].as_array().expect("messages") {
                    let n = m["n"].as_u64().expect("n");
                    trail.push(format!("n={n}"));
                    assert_eq!(
                        n,
                        expected,
                        "a gap notice is not where its gap is (expected n={expected}): {}",
                        trail.show()
                    );
                    expected += 1;
                }
                // A reader slower than the publisher: it falls behind the history.
                thread::sleep(Duration::from_millis(1));
            }
            Some("rtm/subscription/info") => {
                assert_eq!(body["info"], "fast_forward", "{v}");
                let missed = body["missed_message_count"].as_u64().expect("count");
                trail.push(format!("skip {missed}"));
                assert!(missed > 0, "{v}");
                expected += missed;
                gaps += 1;
            }
            _ => panic!("only data and fast_forward expected: {v}"),
        }
    }
    assert_eq!(Some(expected), published, "{}", trail.show());
    assert!(
        gaps >= 2,
        "the reader fell behind the history only {gaps} times"
    );
}

#[test]
fn gap_notices_sit_between_the_messages_they_describe_on_redis() {
    let Some(nodes) = redis_support::nodes(1) else {
        return;
    };
    let server = server(Some(&nodes[0].url()));
    gaps_sit_between_the_messages_they_describe(&server);
}

#[test]
fn gap_notices_sit_between_the_messages_they_describe_embedded() {
    let server = server(None);
    gaps_sit_between_the_messages_they_describe(&server);
}
