//! A subscriber that never reads must not slow the publisher or the other subscribers; it
//! loses messages and is told so (`out_of_sync`, or `rtm/subscription/info` with fast_forward).

mod common;

use common::{Client, start_with};
use serde_json::json;

const COUNT: usize = 20_000;
const WINDOW: usize = 50;

#[test]
fn slow_subscriber_does_not_stall_fast_one_and_gets_out_of_sync() {
    let server = start_with(10, |s| s.limits.outbound_queue_bytes = 256 << 10);
    let addr = server.local_addr();
    let mut slow = Client::authed(addr, "app1", "all");
    slow.request("rtm/subscribe", json!({"channel": "c"}));
    let mut slow_ff = Client::authed(addr, "app1", "all");
    slow_ff.request(
        "rtm/subscribe",
        json!({"channel": "c", "fast_forward": true}),
    );
    let mut fast = Client::authed(addr, "app1", "all");
    fast.request("rtm/subscribe", json!({"channel": "c"}));

    // Publish in windows and check the fast subscriber got each window before the next: it
    // is never behind by more than a window, so it must never lose anything, while the slow
    // ones (who never read) pile up far more than their queue limit.
    let mut p = Client::authed(addr, "app1", "all");
    let pad = "x".repeat(1000);
    let mut expected = 0;
    for window in 0..COUNT / WINDOW {
        for n in window * WINDOW..(window + 1) * WINDOW {
            p.send(
                "rtm/publish",
                json!({"channel": "c", "message": {"n": n, "pad": pad}}),
            );
        }
        for _ in 0..WINDOW {
            assert_eq!(p.recv_json()["action"], "rtm/publish/ok");
        }
        while expected < (window + 1) * WINDOW {
            let d = fast.next_data();
            for m in d["body"]["messages"].as_array().unwrap() {
                assert_eq!(
                    m["n"], expected,
                    "the fast subscriber lost or reordered a message"
                );
                expected += 1;
            }
        }
    }

    // The slow subscribers now read what reached them: data, then the loss report.
    let mut seen_error = false;
    while !seen_error {
        let v = slow.recv_json();
        match v["action"].as_str().unwrap() {
            "rtm/subscription/data" => {}
            "rtm/subscription/error" => {
                assert_eq!(v["body"]["error"], "out_of_sync");
                assert!(v["body"]["missed_message_count"].as_u64().unwrap() > 0);
                seen_error = true;
            }
            other => panic!("unexpected {other}"),
        }
    }
    let mut seen_info = false;
    while !seen_info {
        let v = slow_ff.recv_json();
        match v["action"].as_str().unwrap() {
            "rtm/subscription/data" => {}
            "rtm/subscription/info" => {
                assert!(v["body"]["missed_message_count"].as_u64().unwrap() > 0);
                seen_info = true;
            }
            other => panic!("unexpected {other}"),
        }
    }
    // fast_forward keeps the subscription: a new message still arrives; out_of_sync removed it.
    p.request(
        "rtm/publish",
        json!({"channel": "c", "message": {"n": "after"}}),
    );
    common::eventually(
        "the fast-forwarded subscriber to get the new message",
        || {
            let v = slow_ff.recv_json();
            let last = v["body"]["messages"]
                .as_array()
                .and_then(|m| m.last().cloned());
            (last.is_some_and(|m| m["n"] == "after")).then_some(())
        },
    );
    let r = slow.request("rtm/unsubscribe", json!({"subscription_id": "c"}));
    assert_eq!(
        r["body"]["error"], "unknown_subscription",
        "out_of_sync removed the subscription"
    );
}
