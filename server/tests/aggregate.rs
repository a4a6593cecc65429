//! Aggregate subscriptions (StreamSQL GROUP BY ... WINDOW ...) through our server, over real
//! sockets: exact rows for a fixed sequence with explicit timestamps, live and resumed from a
//! position (recomputed from history), on the embedded backend and on real `redis-server` nodes.
//!
//! Event times are minutes apart and the grace two minutes, so the arrival clock (which moves the
//! watermark on while the stream is quiet) cannot close a window during the test.

#[path = "common/mod.rs"]
mod common;
#[path = "support/redis.rs"]
mod redis_support;

use std::sync::Arc;

use cobra_server::broker::redis::{RedisBackend, RedisLimits};
use cobra_server::net::{Server, ServerHandle};
use common::Client;
use redis_support::RedisServer;
use serde_json::{Value, json};

const MIN: i64 = 60_000;

const SQL: &str = "SELECT device.model, COUNT(*), AVG(data.fps) AS fps, \
    HISTOGRAM(data.fps, 60, 30, 15, 10, 8) AS h FROM `engine_fps_id` \
    WHERE device.os_name = 'iOS' GROUP BY device.model \
    WINDOW TUMBLING (10 MINUTES) EMIT FINAL GRACE 2 MINUTES";

fn event(model: &str, os: &str, fps: i64, ts: i64) -> Value {
    json!({"id": "engine_fps_id", "device": {"model": model, "os_name": os}, "data": {"fps": fps}, "timestamp": ts})
}

/// The fixed sequence: window [0, 10 min) closes at the 12-minute event, with one late event after.
fn sequence() -> Vec<Value> {
    vec![
        event("iPhone", "iOS", 60, MIN),
        event("iPad", "iOS", 30, 2 * MIN),
        event("iPhone", "iOS", 59, 3 * MIN),
        event("Pixel", "Android", 60, 4 * MIN),
        event("iPhone", "iOS", 10, 9 * MIN),
        event("iPad", "iOS", 7, 9 * MIN + MIN / 2),
        event("iPhone", "iOS", 60, 12 * MIN),
        event("iPhone", "iOS", 60, 9 * MIN), // late: dropped, counted in the next row
        event("iPad", "iOS", 15, 23 * MIN),
    ]
}

fn expected_rows() -> Vec<Value> {
    // Whole numbers are written without a fraction (`0`, not `0.0`).
    let h = |counts: [u64; 6], shares: Value| json!({"edges": [60, 30, 15, 10, 8], "counts": counts, "shares": shares});
    vec![
        json!({"window_start": 0, "window_end": 10 * MIN, "device.model": "iPhone", "count": 3, "fps": 43,
               "h": h([0, 2, 0, 0, 1, 0], json!([0, 2.0 / 3.0, 0, 0, 1.0 / 3.0, 0])),
               "late": 0, "skipped": 0, "final": true}),
        json!({"window_start": 0, "window_end": 10 * MIN, "device.model": "iPad", "count": 2, "fps": 18.5,
               "h": h([0, 0, 1, 0, 0, 1], json!([0, 0, 0.5, 0, 0, 0.5])),
               "late": 0, "skipped": 0, "final": true}),
        json!({"window_start": 10 * MIN, "window_end": 20 * MIN, "device.model": "iPhone", "count": 1, "fps": 60,
               "h": h([0, 1, 0, 0, 0, 0], json!([0, 1, 0, 0, 0, 0])),
               "late": 1, "skipped": 0, "final": true}),
    ]
}

fn publish_all(p: &mut Client, events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| {
            let ok = p.request(
                "rtm/publish",
                json!({"channel": "engine_fps_id", "message": e}),
            );
            assert_eq!(ok["action"], "rtm/publish/ok", "{ok}");
            ok["body"]["position"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect()
}

/// Rows received until `n` have come (the subscription sends nothing else here).
fn rows(c: &mut Client, n: usize) -> Vec<Value> {
    let mut out = Vec::new();
    while out.len() < n {
        let d = c.next_data();
        out.extend(
            d["body"]["messages"]
                .as_array()
                .expect("messages")
                .iter()
                .cloned(),
        );
    }
    out
}

fn live_then_resumed(server: &ServerHandle) {
    let addr = server.local_addr();
    let mut p = Client::authed(addr, "app1", "all");
    let mut live = Client::authed(addr, "app1", "all");
    let ok = live.request(
        "rtm/subscribe",
        json!({"subscription_id": "fps", "filter": SQL}),
    );
    assert_eq!(ok["action"], "rtm/subscribe/ok", "{ok}");
    // The ack says how much state the subscription may hold.
    assert_eq!(ok["body"]["aggregate"]["max_groups"], 10_000);
    let per_group = ok["body"]["aggregate"]["max_group_bytes"].as_u64().unwrap();
    assert!((100..16_384).contains(&per_group), "{per_group}");
    publish_all(&mut p, &sequence());
    assert_eq!(rows(&mut live, 3), expected_rows());

    // Resumed from the start of history: the same rows, recomputed.
    let mut again = Client::authed(addr, "app1", "all");
    let ok = again.request(
        "rtm/subscribe",
        json!({"subscription_id": "fps", "filter": SQL, "position": "0-0"}),
    );
    assert_eq!(ok["action"], "rtm/subscribe/ok", "{ok}");
    assert_eq!(rows(&mut again, 3), expected_rows());

    // An invalid aggregate statement: invalid_filter with the offset.
    let bad = again.request(
        "rtm/subscribe",
        json!({"subscription_id": "bad", "filter": "SELECT model, COUNT(*) FROM c GROUP BY os WINDOW TUMBLING (1 SECOND)"}),
    );
    assert_eq!(bad["action"], "rtm/subscribe/error", "{bad}");
    assert_eq!(bad["body"]["error"], "invalid_filter");
    let reason = bad["body"]["reason"].as_str().unwrap();
    assert!(
        reason.contains("GROUP BY") && reason.contains("offset 7"),
        "{reason}"
    );
}

#[test]
fn aggregate_rows_on_the_embedded_backend() {
    let server = common::start_with(1000, |_| {});
    live_then_resumed(&server);
}

#[test]
fn aggregate_rows_on_redis() {
    if !redis_support::available() {
        return;
    }
    let nodes: Vec<RedisServer> = (0..2)
        .map(|_| RedisServer::spawn().expect("redis"))
        .collect();
    let urls = nodes
        .iter()
        .map(RedisServer::url)
        .collect::<Vec<_>>()
        .join(";");
    let backend = RedisBackend::start(&urls, None, 1000, RedisLimits::default()).expect("backend");
    let server =
        Server::start_with_backend(common::settings(), common::apps(1000), Arc::new(backend))
            .expect("server starts");
    live_then_resumed(&server);
}

#[test]
fn groups_over_max_groups_fold_into_other() {
    let server = common::start_with(1000, |s| s.limits.max_groups = 2);
    let addr = server.local_addr();
    let mut p = Client::authed(addr, "app1", "all");
    let mut c = Client::authed(addr, "app1", "all");
    let sql = "SELECT device.model AS model, COUNT(*) AS n FROM engine_fps_id \
               GROUP BY device.model WINDOW TUMBLING (10 MINUTES)";
    let ok = c.request(
        "rtm/subscribe",
        json!({"subscription_id": "s", "filter": sql}),
    );
    assert_eq!(ok["body"]["aggregate"]["max_groups"], 2, "{ok}");
    let events: Vec<Value> = ["a", "b", "c", "d", "a"]
        .iter()
        .map(|m| event(m, "iOS", 60, MIN))
        .chain([event("e", "iOS", 60, 11 * MIN)])
        .collect();
    publish_all(&mut p, &events);
    let row = |m: &str, n: u64| json!({"window_start": 0, "window_end": 10 * MIN, "model": m, "n": n, "late": 0, "skipped": 0, "final": true});
    assert_eq!(
        rows(&mut c, 3),
        [row("a", 2), row("b", 1), row("__other__", 2)]
    );
}
