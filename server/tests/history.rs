//! History, resume from a position (no gap, no duplicate), expired positions, batching.

mod common;

use std::time::{Duration, Instant};

use cobra_server::net::ServerHandle;
use common::{Client, start_with};
use serde_json::{Value, json};

/// Publishes `{"n": n}` to channel `c` for each `n` of `ns`; returns the positions acked.
fn publish_numbers(p: &mut Client, ns: std::ops::Range<i64>) -> Vec<Value> {
    ns.map(|n| {
        p.request("rtm/publish", json!({"channel": "c", "message": {"n": n}}))["body"]["position"]
            .clone()
    })
    .collect()
}

/// A server keeping 3 messages a channel, 10 published to `c`: the first one's position, expired.
fn expired_first_position() -> (ServerHandle, Value) {
    let server = start_with(3, |_| {});
    let mut p = Client::authed(server.local_addr(), "app1", "all");
    let first = publish_numbers(&mut p, 0..10).swap_remove(0);
    (server, first)
}

fn messages(d: &Value) -> Vec<i64> {
    d["body"]["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["n"].as_i64().unwrap())
        .collect()
}

#[test]
fn resume_from_position_has_no_gap_and_no_duplicate() {
    let server = start_with(100_000, |_| {});
    let addr = server.local_addr();
    let mut p = Client::authed(addr, "app1", "all");
    let mut first = Client::authed(addr, "app1", "all");
    first.request("rtm/subscribe", json!({"channel": "c"}));
    for n in 0..50 {
        p.send("rtm/publish", json!({"channel": "c", "message": {"n": n}}));
    }
    // Read 20 messages, remember the position of the 20th, disconnect.
    let mut last_pos = String::new();
    for n in 0..20 {
        let d = first.next_data();
        assert_eq!(messages(&d), [n]);
        last_pos = d["body"]["position"].as_str().unwrap().to_owned();
    }
    drop(first);
    // The publisher keeps going, concurrently with the resubscription.
    let publisher = std::thread::spawn(move || {
        for n in 50..2000 {
            p.send("rtm/publish", json!({"channel": "c", "message": {"n": n}}));
        }
        let mut acks = 0;
        while acks < 2000 {
            if p.recv_json()["action"] == "rtm/publish/ok" {
                acks += 1;
            }
        }
        p
    });
    let mut again = Client::authed(addr, "app1", "all");
    let ok = again.request(
        "rtm/subscribe",
        json!({"channel": "c", "position": last_pos}),
    );
    assert_eq!(ok["action"], "rtm/subscribe/ok");
    let mut expected = 20;
    while expected < 2000 {
        let d = again.next_data();
        for n in messages(&d) {
            assert_eq!(n, expected, "gap or duplicate");
            expected += 1;
        }
    }
    let mut p = publisher.join().unwrap();
    // Nothing after the last one either: the next message is a fresh marker.
    p.request("rtm/publish", json!({"channel": "c", "message": {"n": -1}}));
    assert_eq!(
        messages(&again.next_data()),
        [-1],
        "duplicate after the end"
    );
}

#[test]
fn position_zero_replays_everything_kept_and_dollar_only_new() {
    let server = start_with(5, |_| {});
    let addr = server.local_addr();
    let mut p = Client::authed(addr, "app1", "all");
    let last = publish_numbers(&mut p, 0..8).pop();
    let mut s = Client::authed(addr, "app1", "all");
    let ok = s.request("rtm/subscribe", json!({"channel": "c", "position": "0-0"}));
    assert_eq!(
        Some(&ok["body"]["position"]),
        last.as_ref(),
        "subscribe/ok carries the current position"
    );
    let got: Vec<i64> = (0..5).flat_map(|_| messages(&s.next_data())).collect();
    assert_eq!(got, [3, 4, 5, 6, 7]);
    let mut live = Client::authed(addr, "app1", "all");
    live.request("rtm/subscribe", json!({"channel": "c", "position": "$"}));
    p.request("rtm/publish", json!({"channel": "c", "message": {"n": 8}}));
    assert_eq!(messages(&live.next_data()), [8]);
    assert_eq!(messages(&s.next_data()), [8]);
}

#[test]
fn expired_position_without_fast_forward_is_an_error() {
    let (server, first) = expired_first_position();
    let mut s = Client::authed(server.local_addr(), "app1", "all");
    let id = s.send("rtm/subscribe", json!({"channel": "c", "position": first}));
    let e = s.recv_json();
    assert_eq!(e["action"], "rtm/subscription/error");
    assert_eq!(e["id"], id);
    assert_eq!(e["body"]["error"], "expired_position");
    assert_eq!(e["body"]["subscription_id"], "c");
    // Not subscribed: the same subscription id can be used again.
    let ok = s.request("rtm/subscribe", json!({"channel": "c"}));
    assert_eq!(ok["action"], "rtm/subscribe/ok");
}

#[test]
fn expired_position_with_fast_forward_continues_from_oldest() {
    let (server, first) = expired_first_position();
    let mut s = Client::authed(server.local_addr(), "app1", "all");
    let ok = s.request(
        "rtm/subscribe",
        json!({"channel": "c", "position": first, "fast_forward": true}),
    );
    assert_eq!(ok["action"], "rtm/subscribe/ok");
    let info = s.recv_json();
    assert_eq!(info["action"], "rtm/subscription/info");
    assert!(
        info["body"]["missed_message_count"].as_u64().unwrap() >= 6,
        "{info}"
    );
    let got: Vec<i64> = (0..3).flat_map(|_| messages(&s.next_data())).collect();
    assert_eq!(got, [7, 8, 9]);
}

#[test]
fn batch_size_groups_and_flushes_a_partial_batch() {
    let server = start_with(1000, |s| s.limits.batch_flush = Duration::from_millis(30));
    let addr = server.local_addr();
    let mut p = Client::authed(addr, "app1", "all");
    publish_numbers(&mut p, 0..7);
    let mut s = Client::authed(addr, "app1", "all");
    s.request(
        "rtm/subscribe",
        json!({"channel": "c", "position": "0-0", "batch_size": 3}),
    );
    let d0 = s.next_data();
    assert_eq!(messages(&d0), [0, 1, 2]);
    assert_eq!(d0["id"], 0);
    assert_eq!(messages(&s.next_data()), [3, 4, 5]);
    // The 7th waits for the flush delay, not forever.
    let t = Instant::now();
    let d2 = s.next_data();
    assert_eq!(messages(&d2), [6]);
    assert_eq!(d2["id"], 2);
    assert!(t.elapsed() < Duration::from_secs(2));
    let r = s.request(
        "rtm/subscribe",
        json!({"channel": "x", "batch_size": 1_000_000}),
    );
    assert_eq!(r["body"]["error"], "invalid_batch_size");
}
