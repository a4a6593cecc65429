//! An aggregate subscription (StreamSQL GROUP BY ... WINDOW ...) through the Rust SDK against our
//! real server (`cobra run`, built by `cargo build -p cobra-server`), on the embedded backend and
//! on a real `redis-server`: a fixed sequence published with explicit `timestamp`s, the exact rows
//! received as ordinary subscription messages, live and resumed from the start of history.
//!
//! The scenario (events minutes apart, a two-minute grace) is `cobra_test_support::aggregate`.

mod support;

use std::time::Duration;

use cobra::{Event, SubscribeOptions};
use cobra_test_support::aggregate::{CHANNEL, SQL, expected_rows, sequence};
use cobra_test_support::process::Redis;
use cobra_test_support::require_on_path;
use serde_json::Value;
use support::cobra_server::Server;
use support::{Recorder, start_client, wait_until};

const T: Duration = Duration::from_secs(20);

fn subscribed(rec: &Recorder, id: &str) {
    let ev = rec.wait_for(T, &format!("subscription {id}"), |e| {
        matches!(e, Event::Subscribed { subscription_id, .. } | Event::SubscriptionError { subscription_id, .. }
            if subscription_id == id)
    });
    assert!(matches!(ev, Event::Subscribed { .. }), "{ev:?}");
}

/// The rows of subscription `id` once `n` have arrived.
fn rows(rec: &Recorder, id: &str, n: usize) -> Vec<Value> {
    let collect = || rec.data_messages(Some(id));
    wait_until(T, &format!("{n} rows for {id}"), || collect().len() >= n);
    collect()
}

fn live_then_resumed(server: &Server) {
    let (sub, rec) = start_client(server.config());
    sub.subscribe(
        SubscribeOptions::new(CHANNEL)
            .subscription_id("fps")
            .filter(SQL),
    )
    .unwrap();
    subscribed(&rec, "fps");

    let (publisher, prec) = start_client(server.config());
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
