//! An aggregate subscription (StreamSQL GROUP BY ... WINDOW ...) through the Rust SDK against our
//! real server (`cobra run`, built by `cargo build -p cobra-server`), on the embedded backend and
//! on a real `redis-server`: a fixed sequence published with explicit `timestamp`s, the exact rows
//! received as ordinary subscription messages, live and resumed from the start of history.
//!
//! Event times are minutes apart and the grace two minutes, so the arrival clock (which moves the
//! watermark on while the stream is quiet) cannot close a window during the test.

mod support;

use std::sync::Arc;
use std::time::Duration;

use cobra::{Client, Config, Event, SubscribeOptions};
use cobra_test_support::process::Redis;
use cobra_test_support::require_on_path;
use serde_json::{Value, json};
use support::cobra_server::{SECRET, Server};
use support::{Recorder, wait_until};

const T: Duration = Duration::from_secs(20);
const MIN: i64 = 60_000;
const CHANNEL: &str = "engine_fps_id";

const SQL: &str = "SELECT device.model, COUNT(*), AVG(data.fps) AS fps, \
    HISTOGRAM(data.fps, 60, 30, 15, 10, 8) AS h FROM `engine_fps_id` \
    WHERE device.os_name = 'iOS' GROUP BY device.model \
    WINDOW TUMBLING (10 MINUTES) EMIT FINAL GRACE 2 MINUTES";

fn event(model: &str, os: &str, fps: i64, ts: i64) -> Value {
    json!({"id": CHANNEL, "device": {"model": model, "os_name": os}, "data": {"fps": fps}, "timestamp": ts})
}

/// Window [0, 10 min) closes at the 12-minute event; one late event after it; the last event
/// closes [10, 20 min).
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

fn client(server: &Server) -> (Client, Arc<Recorder>) {
    let config = Config::new(server.url(), "_pubsub", "pubsub", SECRET)
        .backoff(Duration::from_millis(20), Duration::from_millis(300));
    let rec = Arc::new(Recorder::default());
    let client = Client::new(config, Some(rec.clone())).unwrap();
    client.connect().unwrap();
    (client, rec)
}

fn subscribed(rec: &Recorder, id: &str) {
    let ev = rec.wait_for(T, &format!("subscription {id}"), |e| {
        matches!(e, Event::Subscribed { subscription_id, .. } | Event::SubscriptionError { subscription_id, .. }
            if subscription_id == id)
    });
    assert!(matches!(ev, Event::Subscribed { .. }), "{ev:?}");
}

/// The rows of subscription `id` once `n` have arrived.
fn rows(rec: &Recorder, id: &str, n: usize) -> Vec<Value> {
    let collect = || -> Vec<Value> {
        rec.snapshot()
            .into_iter()
            .filter_map(|e| match e {
                Event::SubscriptionData {
                    subscription_id,
                    messages,
                    ..
                } if subscription_id == id => Some(messages),
                _ => None,
            })
            .flatten()
            .collect()
    };
    wait_until(T, &format!("{n} rows for {id}"), || collect().len() >= n);
    collect()
}

fn live_then_resumed(server: &Server) {
    let (sub, rec) = client(server);
    sub.subscribe(
        SubscribeOptions::new(CHANNEL)
            .subscription_id("fps")
            .filter(SQL),
    )
    .unwrap();
    subscribed(&rec, "fps");

    let (publisher, prec) = client(server);
    for e in sequence() {
        publisher.publish(CHANNEL, &e).unwrap();
    }
    wait_until(T, "every publish acknowledged", || {
        prec.count(|e| matches!(e, Event::Published { .. })) == sequence().len()
    });
    let live = rows(&rec, "fps", 3);
    assert_eq!(live, expected_rows());

    // Resumed from the start of history: the same rows, recomputed by the broker.
    sub.subscribe(
        SubscribeOptions::new(CHANNEL)
            .subscription_id("again")
            .filter(SQL)
            .position("0-0"),
    )
    .unwrap();
    subscribed(&rec, "again");
    assert_eq!(rows(&rec, "again", 3), expected_rows());

    // An invalid aggregate statement is a subscription error event, with the offset.
    sub.subscribe(
        SubscribeOptions::new(CHANNEL)
            .subscription_id("bad")
            .filter("SELECT model, COUNT(*) FROM c GROUP BY os WINDOW TUMBLING (1 SECOND)"),
    )
    .unwrap();
    let ev = rec.wait_for(T, "the error", |e| {
        matches!(e, Event::SubscriptionError { subscription_id, .. } if subscription_id == "bad")
    });
    let Event::SubscriptionError { error, reason, .. } = ev else {
        unreachable!()
    };
    assert_eq!(error, "invalid_filter");
    assert!(
        reason.contains("GROUP BY") && reason.contains("offset 7"),
        "{reason}"
    );
}

#[test]
fn aggregate_rows_through_the_sdk_on_the_embedded_backend() {
    let server = Server::start(0);
    live_then_resumed(&server);
}

#[test]
fn aggregate_rows_through_the_sdk_on_redis() {
    let Some(redis_server) = require_on_path("redis-server") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let redis = Redis::start(&redis_server, dir.path());
    let server = Server::start_with(0, &["--redis", &redis.url()]);
    live_then_resumed(&server);
}
