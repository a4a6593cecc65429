//! Slow subscribers (issue 23): a subscriber that reads slowly or not at all never slows the
//! publishers or the other subscribers; one that falls behind catches up from the channel's
//! history at its own pace, losing nothing within `channel_max_length`, and is told the exact
//! number missed beyond it; one that never reads is cut off after the write timeout.
//!
//! Runs on the embedded backend, and on Redis under `scripts/test-redis.sh`
//! (`COBRA_TEST_REDIS_URLS`). The reading dashboard of the issue's scenario is a Python
//! `websockets` client (`tests/peers/cobra_reader_pyws.py`, installed by
//! `scripts/install-peers.sh`): without it that part prints `SKIPPED` (a Rust reader still
//! runs), and under `CI=true` it fails.

mod common;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use cobra_test_support::Guard;
use common::{Client, eventually, start_with};
use serde_json::{Value, json};

/// Publishes are sent in windows of this many, then their acks read.
const WINDOW: usize = 500;

/// The value of a series in `/metrics` (`name` with its labels, if any).
fn metric(addr: SocketAddr, name: &str) -> u64 {
    let (status, _, body) = common::http_get(addr, "/metrics", "");
    assert_eq!(status, 200);
    body.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("{name} missing from /metrics:\n{body}"))
}

/// Publishes messages `{"n": from..from+count, "pad": ...}` of about `size` bytes to `c`, in
/// windows (no wait between publishes of a window); every ack must arrive.
fn publish(p: &mut Client, from: usize, count: usize, size: usize) {
    let pad = "x".repeat(size);
    for window in (from..from + count).step_by(WINDOW) {
        let end = (window + WINDOW).min(from + count);
        for n in window..end {
            p.send(
                "rtm/publish",
                json!({"channel": "c", "message": {"n": n, "pad": pad}}),
            );
        }
        for _ in window..end {
            let ack = p.recv_json();
            assert_eq!(ack["action"], "rtm/publish/ok", "{ack}");
        }
    }
}

/// A subscriber on `c` (with `extra` in the subscribe body) that does not read yet.
fn subscriber(addr: SocketAddr, extra: Value) -> Client {
    let mut c = Client::authed(addr, "app1", "all");
    let mut body = json!({"channel": "c"});
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        b.extend(e.clone());
    }
    let r = c.request("rtm/subscribe", body);
    assert_eq!(r["action"], "rtm/subscribe/ok", "{r}");
    c
}

/// Reads `count` messages, checking they are `from`, `from + 1`, ... (only data PDUs).
fn read_in_order(c: &mut Client, from: usize, count: usize) {
    let mut next = from;
    while next < from + count {
        for m in c.next_data()["body"]["messages"]
            .as_array()
            .expect("messages")
        {
            assert_eq!(m["n"], next, "lost, duplicated or reordered");
            next += 1;
        }
    }
}

/// Starts the Python reader on `c` for `count` messages; returns once it has subscribed, with
/// its stdout lines.
fn python_reader(python: &Path, addr: SocketAddr, count: usize) -> (Guard, mpsc::Receiver<String>) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/peers/cobra_reader_pyws.py");
    let mut child = Guard(
        Command::new(python)
            .arg(script)
            .arg(format!("ws://{addr}/v2?appkey=app1"))
            .args(["all", common::SECRET, "c", &count.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn the Python reader"),
    );
    let stdout = child.0.stdout.take().expect("piped stdout");
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let first = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("the Python reader subscribes");
    assert_eq!(first, "SUBSCRIBED");
    (child, rx)
}

#[test]
fn a_never_reading_subscriber_costs_the_publisher_and_a_reading_one_nothing() {
    // The issue's scenario: 5,000 messages of 10 KB published without waiting for each ack,
    // one subscriber that never reads, readers slower than the server (a Rust one that pauses
    // now and then, and the Python `websockets` one).
    const COUNT: usize = 5_000;
    const SIZE: usize = 10_000;
    let server = start_with(COUNT, |_| {});
    let addr = server.local_addr();
    // fast_forward: a subscription that falls behind the history goes on from the oldest
    // message kept instead of being removed (out_of_sync), so the connection keeps having
    // bytes to write. Without it, on Redis under load (tests in parallel), the replay could
    // fall behind the 1,000 kept before the socket buffers filled: the subscription was
    // removed, nothing more was written, and no write round could time out.
    let _never_reads = subscriber(addr, json!({"fast_forward": true}));
    let python =
        cobra_test_support::process::python_websockets().map(|py| python_reader(&py, addr, COUNT));
    let mut rust = subscriber(addr, json!({}));
    let rust = thread::spawn(move || {
        let mut next = 0;
        while next < COUNT {
            for m in rust.next_data()["body"]["messages"]
                .as_array()
                .expect("messages")
            {
                assert_eq!(m["n"], next, "lost, duplicated or reordered");
                next += 1;
                if next % 50 == 0 {
                    thread::sleep(Duration::from_millis(2)); // slower than the server
                }
            }
        }
    });
    let mut p = Client::authed(addr, "app1", "all");
    publish(&mut p, 0, COUNT, SIZE);
    rust.join()
        .expect("the Rust reader got all, in order, once");
    if let Some((_child, lines)) = python {
        let result = lines
            .recv_timeout(Duration::from_secs(120))
            .expect("the Python reader finishes");
        let v: Value = serde_json::from_str(&result).expect("the Python reader's JSON line");
        assert_eq!(v["received"], COUNT, "{v}");
        assert_eq!(v["in_order"], true, "{v}");
        assert_eq!(v["other"], json!([]), "only data: {v}");
    }
    assert!(
        metric(addr, "cobra_catchup_started_total") >= 1,
        "the one that never reads fell behind"
    );
    assert_eq!(metric(addr, "cobra_queue_drops_total"), 0);
    assert_eq!(
        metric(
            addr,
            r#"cobra_laggards_cut_off_total{reason="history_expired"}"#
        ),
        0
    );
    // Bounded: the history (50 MB), one queue's worth per connection (`Arc`s of messages the
    // history holds), socket buffers; not a copy of the stream per slow subscriber.
    let rss = metric(addr, "cobra_resident_memory_bytes");
    assert!(rss < 400 << 20, "server RSS {rss} B");
}

#[test]
fn a_paused_subscriber_catches_up_without_loss_within_the_history() {
    const COUNT: usize = 2_000;
    const SIZE: usize = 10_000;
    // 20 MB published: far more than the queue and the socket buffers hold.
    let server = start_with(COUNT, |s| s.limits.outbound_queue_bytes = 64 << 10);
    let addr = server.local_addr();
    let mut paused = subscriber(addr, json!({}));
    let mut p = Client::authed(addr, "app1", "all");
    publish(&mut p, 0, COUNT, SIZE);
    assert!(
        metric(addr, "cobra_catchup_started_total") >= 1,
        "it fell behind"
    );
    // Resumed: everything, in order, once; then live again.
    read_in_order(&mut paused, 0, COUNT);
    publish(&mut p, COUNT, 10, 10);
    read_in_order(&mut paused, COUNT, 10);
    assert!(metric(addr, "cobra_catchup_messages_total") > 0);
    eventually("no subscription left catching up", || {
        (metric(addr, "cobra_catchup_subscriptions") == 0).then_some(())
    });
    assert_eq!(metric(addr, "cobra_queue_drops_total"), 0);
}

/// Reads data in order from 0 until a non-data PDU; returns (messages read, that PDU).
fn read_until_notice(c: &mut Client) -> (usize, Value) {
    let mut next = 0;
    loop {
        let v = c.recv_json();
        if v["action"] != "rtm/subscription/data" {
            return (next, v);
        }
        for m in v["body"]["messages"].as_array().expect("messages") {
            assert_eq!(m["n"], next, "lost, duplicated or reordered before the gap");
            next += 1;
        }
    }
}

#[test]
fn a_paused_subscriber_beyond_the_history_is_told_the_exact_count() {
    const COUNT: usize = 2_000;
    const SIZE: usize = 10_000;
    const KEPT: usize = 100;
    let server = start_with(KEPT, |s| s.limits.outbound_queue_bytes = 64 << 10);
    let addr = server.local_addr();
    let mut strict = subscriber(addr, json!({}));
    let mut skipping = subscriber(addr, json!({"fast_forward": true}));
    let mut p = Client::authed(addr, "app1", "all");
    publish(&mut p, 0, COUNT, SIZE);

    // fast_forward: everything up to each gap, the exact count skipped, then the rest (it may
    // fall behind more than once while the publisher runs).
    let mut next = 0;
    let mut gaps = 0;
    let mut skipped = 0;
    while next < COUNT {
        let v = skipping.recv_json();
        match v["action"].as_str() {
            Some("rtm/subscription/data") => {
                for m in v["body"]["messages"].as_array().expect("messages") {
                    assert_eq!(m["n"], next, "the count skipped was not exact");
                    next += 1;
                }
            }
            Some("rtm/subscription/info") => {
                assert_eq!(v["body"]["info"], "fast_forward", "{v}");
                let missed = v["body"]["missed_message_count"].as_u64().expect("count");
                assert!(missed > 0, "{v}");
                next += missed as usize;
                skipped += missed;
                gaps += 1;
            }
            _ => panic!("only data and fast_forward expected: {v}"),
        }
    }
    assert_eq!(next, COUNT, "the last message was delivered");
    assert!(gaps >= 1);

    // Without fast_forward: out_of_sync with the exact count, the subscription removed.
    let (before, error) = read_until_notice(&mut strict);
    assert_eq!(error["action"], "rtm/subscription/error", "{error}");
    assert_eq!(error["body"]["error"], "out_of_sync", "{error}");
    let missed = error["body"]["missed_message_count"]
        .as_u64()
        .expect("count") as usize;
    assert!(missed > 0 && before + missed <= COUNT - KEPT, "{error}");
    // Exact: each gap of the fast-forwarding one, and the strict one once (it ends with its
    // first gap: a replay meeting another before the session removed it counted it twice).
    assert_eq!(
        metric(
            addr,
            r#"cobra_laggards_cut_off_total{reason="history_expired"}"#
        ),
        gaps + 1,
        "both fell behind the history"
    );
    assert_eq!(
        metric(addr, "cobra_catchup_missed_messages_total"),
        skipped + missed as u64
    );
    // The strict one is gone: nothing more comes to it, and the publisher is not slowed.
    publish(&mut p, COUNT, 10, 10);
    read_in_order(&mut skipping, COUNT, 10);
    let r = strict.request("rtm/unsubscribe", json!({"subscription_id": "c"}));
    assert_eq!(r["action"], "rtm/unsubscribe/error", "{r}");
}

#[test]
fn a_subscriber_that_never_reads_is_cut_off_after_the_write_timeout() {
    let server = start_with(1_000, |s| {
        s.limits.outbound_queue_bytes = 64 << 10;
        s.limits.write_timeout = Duration::from_millis(300);
    });
    let addr = server.local_addr();
    // fast_forward: a subscription that falls behind the history goes on from the oldest
    // message kept instead of being removed (out_of_sync), so the connection keeps having
    // bytes to write. Without it, on Redis under load (tests in parallel), the replay could
    // fall behind the 1,000 kept before the socket buffers filled: the subscription was
    // removed, nothing more was written, and no write round could time out.
    let _never_reads = subscriber(addr, json!({"fast_forward": true}));
    let mut p = Client::authed(addr, "app1", "all");
    // Enough to fill its socket buffers; the publisher is never held back meanwhile.
    let mut sent = 0;
    while metric(
        addr,
        r#"cobra_laggards_cut_off_total{reason="write_timeout"}"#,
    ) == 0
    {
        assert!(
            sent < 20_000,
            "the subscriber that never reads was never cut off (catching up: {}, served from history: {}, fell behind the history: {})",
            metric(addr, "cobra_catchup_subscriptions"),
            metric(addr, "cobra_catchup_messages_total"),
            metric(
                addr,
                r#"cobra_laggards_cut_off_total{reason="history_expired"}"#
            ),
        );
        publish(&mut p, sent, WINDOW, 10_000);
        sent += WINDOW;
    }
    eventually("the connection closed", || {
        (server.broker().connection_count() == 1).then_some(())
    });
}
