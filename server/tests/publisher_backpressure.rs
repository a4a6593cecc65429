//! Publisher back-pressure of the embedded backend (see `broker::mailbox`): a subscriber that
//! is slow but keeps reading slows the publisher down instead of losing messages; one that
//! never reads costs the publisher one bounded wait, then loses messages (`out_of_sync`) while
//! the publisher goes on at full speed.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use common::{Client, start_with};
use serde_json::json;

/// Publishes are sent in windows of this many, then their acks read.
const WINDOW: usize = 50;

/// The value of a counter in `/metrics`.
fn metric(addr: SocketAddr, name: &str) -> u64 {
    let (status, _, body) = common::http_get(addr, "/metrics", "");
    assert_eq!(status, 200);
    body.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("{name} missing from /metrics:\n{body}"))
}

/// Publishes `n` messages of about `size` bytes to `c` in windows; returns when every ack
/// arrived.
fn publish(p: &mut Client, from: usize, n: usize, size: usize) {
    let pad = "x".repeat(size);
    for window in (from..from + n).step_by(WINDOW) {
        let end = (window + WINDOW).min(from + n);
        for i in window..end {
            p.send(
                "rtm/publish",
                json!({"channel": "c", "message": {"n": i, "pad": pad}}),
            );
        }
        for _ in window..end {
            let ack = p.recv_json();
            assert_eq!(ack["action"], "rtm/publish/ok", "{ack}");
        }
    }
}

#[test]
fn a_slow_steady_subscriber_slows_the_publisher_and_loses_nothing() {
    const COUNT: usize = 8_000;
    const SIZE: usize = 2_000;
    // A long wait bound: this subscriber always drains in time, it must never time out.
    let server = start_with(10, |s| {
        s.limits.outbound_queue_bytes = 128 << 10;
        s.limits.backpressure_wait = Duration::from_secs(5);
    });
    let addr = server.local_addr();
    let mut sub = Client::authed(addr, "app1", "all");
    let r = sub.request("rtm/subscribe", json!({"channel": "c"}));
    assert_eq!(r["action"], "rtm/subscribe/ok");

    // Reads steadily, at most ~8 MB/s (a pause per 8 KB read): slower than the publisher.
    let received = Arc::new(AtomicUsize::new(0));
    let reader = {
        let received = Arc::clone(&received);
        thread::spawn(move || {
            let mut next = 0;
            while next < COUNT {
                let v = sub.recv_json();
                assert_eq!(v["action"], "rtm/subscription/data", "no loss report: {v}");
                for m in v["body"]["messages"].as_array().expect("messages") {
                    assert_eq!(m["n"], next, "lost or reordered");
                    next += 1;
                }
                received.store(next, Ordering::Relaxed);
                if next % 4 == 0 {
                    thread::sleep(Duration::from_millis(1));
                }
            }
        })
    };

    let mut p = Client::authed(addr, "app1", "all");
    let started = Instant::now();
    publish(&mut p, 0, COUNT, SIZE);
    let published_in = started.elapsed();
    // The acks were held back until the subscriber caught up: when the last one arrived the
    // subscriber had read all but what its queue, the socket buffers and one window hold
    // (the server's send buffer alone may grow to 4 MB), not most of the 16 MB published.
    let behind = COUNT - received.load(Ordering::Relaxed);
    assert!(
        behind * SIZE < 6 << 20,
        "the publisher ran {behind} messages ahead of its subscriber in {published_in:?}"
    );
    reader
        .join()
        .expect("the subscriber got every message in order");
    assert!(metric(addr, "cobra_backpressure_delayed_publishes_total") > 0);
    assert_eq!(metric(addr, "cobra_backpressure_timeouts_total"), 0);
    assert_eq!(metric(addr, "cobra_queue_drops_total"), 0);
}

#[test]
fn a_subscriber_slower_than_one_wait_keeps_throttling_many_publishers() {
    // Publishers that each hold one message above high water: together far more than the
    // subscriber reads in one wait, so many publishes wait several rounds. It never stops
    // reading, so it must never be given up on (stalled), and must lose nothing.
    const PUBLISHERS: usize = 48;
    const SIZE: usize = 64 << 10;
    const PER_PUBLISHER: usize = 8;
    const WAIT: Duration = Duration::from_millis(250);
    /// The subscriber's read rate, bytes per second: 2 MB per wait, less than the 3 MB the
    /// held publishers add above high water (48 x 64 KB). Fast enough that the server's
    /// writes (woken by the kernel only once a third of its send buffer, up to 4 MB, is free)
    /// still drain its queue within every wait.
    const RATE: f64 = 8e6;
    let server = start_with(10, |s| {
        s.limits.outbound_queue_bytes = 8 << 20;
        s.limits.backpressure_wait = WAIT;
    });
    let addr = server.local_addr();
    let mut sub = Client::authed(addr, "app1", "all");
    let r = sub.request("rtm/subscribe", json!({"channel": "c"}));
    assert_eq!(r["action"], "rtm/subscribe/ok");

    let reader = thread::spawn(move || {
        // Starts reading once the publishers are held: they outran it however busy the
        // machine is.
        common::eventually("a publish to be held", || {
            (metric(addr, "cobra_backpressure_delayed_publishes_total") > 0).then_some(())
        });
        // Paced by a budget rather than fixed pauses: a hiccup of this thread is caught up.
        let started = Instant::now();
        let mut next = [0usize; PUBLISHERS];
        let mut bytes = 0f64;
        let mut total = 0;
        while total < PUBLISHERS * PER_PUBLISHER {
            let v = sub.recv_json();
            assert_eq!(v["action"], "rtm/subscription/data", "no loss report: {v}");
            for m in v["body"]["messages"].as_array().expect("messages") {
                let p = m["p"].as_u64().expect("publisher") as usize;
                assert_eq!(m["n"], next[p], "lost or reordered from publisher {p}");
                next[p] += 1;
                total += 1;
                bytes += SIZE as f64;
            }
            let due = Duration::from_secs_f64(bytes / RATE);
            if let Some(ahead) = due.checked_sub(started.elapsed()) {
                thread::sleep(ahead);
            }
        }
    });

    let started = Instant::now();
    let publishers: Vec<_> = (0..PUBLISHERS)
        .map(|p| {
            thread::spawn(move || {
                let mut c = Client::authed(addr, "app1", "all");
                let pad = "x".repeat(SIZE);
                for n in 0..PER_PUBLISHER {
                    c.send(
                        "rtm/publish",
                        json!({"channel": "c", "message": {"p": p, "n": n, "pad": pad}}),
                    );
                }
                for _ in 0..PER_PUBLISHER {
                    let ack = c.recv_json();
                    assert_eq!(ack["action"], "rtm/publish/ok", "{ack}");
                }
            })
        })
        .collect();
    for p in publishers {
        p.join().expect("every publish acknowledged");
    }
    let published_in = started.elapsed();
    reader
        .join()
        .expect("the subscriber got every message in order");
    // Never given up on: every wait ended by the subscriber draining, in one round or more (the
    // rule before counted a wait over one round as a stall, then lost messages).
    assert_eq!(
        metric(addr, "cobra_backpressure_stalled_subscribers_total"),
        0
    );
    assert_eq!(metric(addr, "cobra_backpressure_timeouts_total"), 0);
    assert_eq!(metric(addr, "cobra_queue_drops_total"), 0);
    // Slowed to about the subscriber's pace: the last ack came after it had read most of the
    // 24 MB published (all but its queue and the socket buffers).
    assert!(
        published_in > WAIT * 4,
        "the publishers were barely held: {published_in:?}"
    );
}

#[test]
fn a_stuck_subscriber_costs_one_wait_then_gets_out_of_sync() {
    const WAIT: Duration = Duration::from_millis(300);
    let server = start_with(10, |s| {
        s.limits.outbound_queue_bytes = 128 << 10;
        s.limits.backpressure_wait = WAIT;
    });
    let addr = server.local_addr();
    let mut stuck = Client::authed(addr, "app1", "all");
    stuck.request("rtm/subscribe", json!({"channel": "c"}));

    let mut p = Client::authed(addr, "app1", "all");
    // Far more than the stuck subscriber's queue and socket buffers.
    let started = Instant::now();
    publish(&mut p, 0, 5_000, 1_000);
    assert!(
        started.elapsed() >= WAIT,
        "the publisher was held back once, for the wait bound"
    );
    assert_eq!(metric(addr, "cobra_backpressure_timeouts_total"), 1);
    assert_eq!(
        metric(addr, "cobra_backpressure_stalled_subscribers_total"),
        1
    );
    // (Publishes may also have been held briefly while its socket still took data.)
    let delayed = metric(addr, "cobra_backpressure_delayed_publishes_total");

    // Stalled: thousands more publishes are never held by it again.
    publish(&mut p, 5_000, 5_000, 1_000);
    assert_eq!(
        metric(addr, "cobra_backpressure_delayed_publishes_total"),
        delayed
    );
    assert_eq!(metric(addr, "cobra_backpressure_timeouts_total"), 1);

    // It reads at last: what reached its queue, then the loss report, as before.
    let mut got = 0;
    let missed = loop {
        let v = stuck.recv_json();
        match v["action"].as_str().unwrap_or("") {
            "rtm/subscription/data" => got += v["body"]["messages"].as_array().map_or(0, Vec::len),
            "rtm/subscription/error" => {
                assert_eq!(v["body"]["error"], "out_of_sync", "{v}");
                break v["body"]["missed_message_count"].as_u64().unwrap_or(0);
            }
            other => panic!("unexpected {other}: {v}"),
        }
    };
    assert!(missed > 0 && got > 0, "got {got}, missed {missed}");
    assert!(got + (missed as usize) <= 10_000);
    common::eventually("the drops to be counted", || {
        (metric(addr, "cobra_queue_drops_total") >= missed).then_some(())
    });
}
