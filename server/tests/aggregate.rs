//! Aggregate subscriptions (StreamSQL GROUP BY ... WINDOW ...) through our server, over real
//! sockets: exact rows for a fixed sequence with explicit timestamps, live and resumed from a
//! position (recomputed from history), on the embedded backend and on real `redis-server` nodes.
//!
//! The scenario (events minutes apart, a two-minute grace) is `cobra_test_support::aggregate`.

#[path = "common/mod.rs"]
mod common;
#[path = "support/redis.rs"]
mod redis_support;

use cobra_server::broker::redis::RedisLimits;
use cobra_server::net::ServerHandle;
use cobra_test_support::aggregate::{MIN, SQL, event, expected_rows, sequence};
use common::Client;
use serde_json::{Value, json};

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
    let Some(nodes) = redis_support::nodes(2) else {
        return;
    };
    let server = common::start_on_redis(&redis_support::urls(&nodes), 1000, RedisLimits::default());
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
