//! Pipelined publishes of one connection: many publishes in flight at once, answered in the
//! order received, landing in that order, bounded per connection (TCP back-pressure beyond),
//! and every one answered when a Redis node fails under them. Over real sockets, on the
//! embedded backend and on real `redis-server` processes.

mod common;
#[path = "support/redis.rs"]
mod redis_support;

use std::io::{ErrorKind, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cobra_server::broker::redis::{RedisBackend, RedisLimits};
use cobra_server::config::ServerSettings;
use cobra_server::net::{Server, ServerHandle};
use cobra_wire::ws::Codec;
use common::Client;
use redis_support::RedisServer;
use serde_json::{Value, json};

/// The next answers are `rtm/publish/ok` for the ids in `ids`, in that order.
fn expect_publish_acks(c: &mut Client, ids: std::ops::Range<usize>) {
    for i in ids {
        let a = c.recv_json();
        assert_eq!(
            (&a["id"], &a["action"]),
            (&json!(i), &json!("rtm/publish/ok"))
        );
    }
}

fn embedded(tweak: impl FnOnce(&mut ServerSettings)) -> ServerHandle {
    let mut settings = common::settings();
    tweak(&mut settings);
    Server::start(settings, common::apps(100_000)).expect("server starts")
}

fn on_redis(
    nodes: &[&RedisServer],
    limits: RedisLimits,
    tweak: impl FnOnce(&mut ServerSettings),
) -> ServerHandle {
    let urls: Vec<String> = nodes.iter().map(|n| n.url()).collect();
    let backend =
        RedisBackend::start(&urls.join(";"), None, 100_000, limits).expect("redis backend");
    let mut settings = common::settings();
    tweak(&mut settings);
    Server::start_with_backend(settings, common::apps(100_000), Arc::new(backend))
        .expect("server starts")
}

/// A fresh `redis-server`; `None` when the test skips for want of one.
fn redis_node() -> Option<RedisServer> {
    redis_support::available().then(|| RedisServer::spawn().expect("redis-server"))
}

/// A server on one fresh `redis-server` (kept alive by the first half), default limits;
/// `None` when the test skips for want of Redis.
fn on_one_node() -> Option<(RedisServer, ServerHandle)> {
    let node = redis_node()?;
    let server = on_redis(&[&node], RedisLimits::default(), |_| {});
    Some((node, server))
}

/// Limits for tests that hold Redis: publishes wait for it instead of timing out.
fn patient_limits() -> RedisLimits {
    RedisLimits {
        response_timeout: Duration::from_secs(20),
        ..RedisLimits::default()
    }
}

/// Holds every write command on `node` (`CLIENT PAUSE ... WRITE`) until the returned
/// connection sends `CLIENT UNPAUSE` (or the node dies).
fn pause_writes(node: &RedisServer) -> redis::Connection {
    let mut redis = node.client();
    let _: () = redis::cmd("CLIENT")
        .arg("PAUSE")
        .arg(60_000)
        .arg("WRITE")
        .query(&mut redis)
        .expect("pause");
    redis
}

/// The frames of every PDU, back to back (a caller may append more before sending).
fn encode_all(c: &mut Client, pdus: &[Value]) -> Vec<u8> {
    let mut out = Vec::new();
    for pdu in pdus {
        c.codec.encode_text(&pdu.to_string(), &mut out);
    }
    out
}

/// Sends `count` publishes of `{"n": i}` to `channel` (ids `i` from 0) and, in the same write,
/// the frame `then` encodes; expects the publishes' acks, which must come before whatever
/// answers that frame.
fn publishes_then(
    c: &mut Client,
    channel: &str,
    count: usize,
    then: impl FnOnce(&mut Codec, &mut Vec<u8>),
) {
    let pdus: Vec<Value> = (0..count).map(|i| publish(i, channel, i)).collect();
    let mut out = encode_all(c, &pdus);
    then(&mut c.codec, &mut out);
    c.stream.write_all(&out).expect("send");
    expect_publish_acks(c, 0..count);
}

/// Sends every PDU in one write (the server sees them all before any answer went out).
fn send_all(c: &mut Client, pdus: &[Value]) {
    let out = encode_all(c, pdus);
    c.stream.write_all(&out).expect("send");
}

fn publish(id: usize, channel: &str, n: usize) -> Value {
    json!({"action": "rtm/publish", "id": id, "body": {"channel": channel, "message": {"n": n}}})
}

/// Reads data PDUs until `count` messages arrived; returns their `n`s in arrival order.
fn receive_numbers(c: &mut Client, count: usize) -> Vec<u64> {
    let mut got = Vec::with_capacity(count);
    while got.len() < count {
        let d = c.next_data();
        for m in d["body"]["messages"].as_array().expect("messages") {
            got.push(m["n"].as_u64().expect("n"));
        }
    }
    got
}

/// `count` publishes from one connection, every 10th refused (no channel), all sent before
/// any answer is read: the answers come back in request order, refusals in their place.
fn acks_in_order(server: &ServerHandle, count: usize) {
    let addr = server.local_addr();
    let mut sub = Client::authed(addr, "app1", "all");
    sub.request("rtm/subscribe", json!({"channel": "ordered"}));
    let mut p = Client::authed(addr, "app1", "all");
    let pdus: Vec<Value> = (0..count)
        .map(|i| {
            if i % 10 == 9 {
                json!({"action": "rtm/publish", "id": i, "body": {"message": {"n": i}}})
            } else {
                publish(i, "ordered", i)
            }
        })
        .collect();
    send_all(&mut p, &pdus);
    let mut last = None;
    for i in 0..count {
        let a = p.recv_json();
        assert_eq!(a["id"], json!(i), "answers out of order: {a}");
        if i % 10 == 9 {
            assert_eq!(a["action"], "rtm/publish/error", "{a}");
            assert_eq!(a["body"]["error"], "missing_channel", "{a}");
        } else {
            assert_eq!(a["action"], "rtm/publish/ok", "{a}");
            let position: cobra_wire::Position = a["body"]["position"]
                .as_str()
                .expect("position")
                .parse()
                .expect("a position");
            assert!(
                last.is_none_or(|l| l < position),
                "positions go up with the request order"
            );
            last = Some(position);
        }
    }
    let expected: Vec<u64> = (0..count as u64).filter(|i| i % 10 != 9).collect();
    assert_eq!(receive_numbers(&mut sub, expected.len()), expected);
}

#[test]
fn pipelined_acks_come_in_request_order_embedded() {
    let server = embedded(|_| {});
    acks_in_order(&server, 2000);
}

#[test]
fn pipelined_acks_come_in_request_order_redis() {
    let Some((_node, server)) = on_one_node() else {
        return;
    };
    acks_in_order(&server, 2000);
}

/// Several connections each pipeline thousands of publishes to one channel on Redis (so the
/// node's batches overlap): each connection's messages land, and reach a subscriber, in the
/// order that connection sent them.
#[test]
fn pipelined_publishes_land_in_order_on_redis() {
    const PUBLISHERS: usize = 3;
    const EACH: usize = 4000;
    let Some((_node, server)) = on_one_node() else {
        return;
    };
    let addr = server.local_addr();
    let mut sub = Client::authed(addr, "app1", "all");
    sub.request("rtm/subscribe", json!({"channel": "c"}));
    let threads: Vec<_> = (0..PUBLISHERS)
        .map(|p| {
            std::thread::spawn(move || {
                let mut c = Client::authed(addr, "app1", "all");
                // In chunks, so the server reads while earlier ones are in flight.
                for chunk in 0..EACH / 500 {
                    let pdus: Vec<Value> = (chunk * 500..(chunk + 1) * 500)
                        .map(|i| publish(i, "c", p * EACH + i))
                        .collect();
                    send_all(&mut c, &pdus);
                }
                for i in 0..EACH {
                    let a = c.recv_json();
                    assert_eq!(a["id"], json!(i), "{a}");
                    assert_eq!(a["action"], "rtm/publish/ok", "{a}");
                }
            })
        })
        .collect();
    let got = receive_numbers(&mut sub, PUBLISHERS * EACH);
    for t in threads {
        t.join().expect("publisher");
    }
    for p in 0..PUBLISHERS as u64 {
        let mine: Vec<u64> = got
            .iter()
            .copied()
            .filter(|n| n / EACH as u64 == p)
            .collect();
        let expected: Vec<u64> = (p * EACH as u64..(p + 1) * EACH as u64).collect();
        assert_eq!(mine, expected, "publisher {p}'s messages out of order");
    }
    // The history holds the same order.
    let mut reader = Client::authed(addr, "app1", "all");
    reader.request(
        "rtm/subscribe",
        json!({"channel": "c", "position": "0-0", "batch_size": 1000}),
    );
    assert_eq!(receive_numbers(&mut reader, PUBLISHERS * EACH), got);
}

/// A subscribe from the start and a read sent right behind pipelined publishes (and a write)
/// see all of them: other actions wait for the publishes before them.
fn later_actions_see_publishes(server: &ServerHandle) {
    let addr = server.local_addr();
    let mut c = Client::authed(addr, "app1", "all");
    const COUNT: usize = 300;
    let mut pdus: Vec<Value> = (0..COUNT).map(|i| publish(i, "seen", i)).collect();
    pdus.push(
        json!({"action": "rtm/write", "id": "w", "body": {"channel": "kv", "message": "v1"}}),
    );
    pdus.extend((COUNT..2 * COUNT).map(|i| publish(i, "seen", i)));
    pdus.push(json!({"action": "rtm/read", "id": "r", "body": {"channel": "kv"}}));
    pdus.push(json!({"action": "rtm/subscribe", "id": "s", "body": {"channel": "seen", "position": "0-0", "batch_size": 1000}}));
    send_all(&mut c, &pdus);
    for i in 0..COUNT {
        assert_eq!(c.recv_json()["id"], json!(i));
    }
    let w = c.recv_json();
    assert_eq!(w["action"], "rtm/write/ok", "{w}");
    expect_publish_acks(&mut c, COUNT..2 * COUNT);
    let r = c.recv_json();
    assert_eq!(r["action"], "rtm/read/ok", "{r}");
    assert_eq!(r["body"]["message"], "v1");
    let s = c.recv_json();
    assert_eq!(s["action"], "rtm/subscribe/ok", "{s}");
    let expected: Vec<u64> = (0..2 * COUNT as u64).collect();
    assert_eq!(receive_numbers(&mut c, 2 * COUNT), expected);
}

#[test]
fn actions_after_pipelined_publishes_see_them_embedded() {
    let server = embedded(|_| {});
    later_actions_see_publishes(&server);
}

#[test]
fn actions_after_pipelined_publishes_see_them_redis() {
    let Some((_node, server)) = on_one_node() else {
        return;
    };
    later_actions_see_publishes(&server);
}

/// The peer's close frame right behind its publishes: their acks go out before the close.
#[test]
fn a_close_after_pipelined_publishes_gets_their_acks_first() {
    let Some((_node, server)) = on_one_node() else {
        return;
    };
    let mut c = Client::authed(server.local_addr(), "app1", "all");
    publishes_then(&mut c, "bye", 100, |codec, out| {
        codec.encode_close(1000, "", out).expect("close frame");
    });
    assert_eq!(c.expect_close(), 1000);
}

/// A client that sends publishes and never reads the answers, while Redis holds them: the
/// server keeps at most `max_publishes_in_flight` of them and stops reading the socket, so
/// the client's writes block instead of the server's memory growing. When Redis answers again
/// everything sent is answered, in order.
#[test]
fn a_client_that_never_reads_acks_gets_tcp_back_pressure() {
    const LIMIT: usize = 8;
    const COUNT: usize = 3000;
    let Some(node) = redis_node() else {
        return;
    };
    let server = on_redis(&[&node], patient_limits(), |s| {
        s.limits.max_publishes_in_flight = LIMIT
    });
    let mut c = Client::authed(server.local_addr(), "app1", "all");
    let pad = "x".repeat(10_000);
    let pdus: Vec<Value> = (0..COUNT)
        .map(|i| json!({"action": "rtm/publish", "id": i, "body": {"channel": "bp", "message": {"n": i, "pad": pad}}}))
        .collect();
    let frames = encode_all(&mut c, &pdus);
    let mut redis = pause_writes(&node);
    c.stream
        .set_write_timeout(Some(Duration::from_millis(300)))
        .expect("timeout");
    let mut sent = 0;
    let blocked = loop {
        match c.stream.write(&frames[sent..]) {
            Ok(0) => panic!("connection closed"),
            Ok(n) => {
                sent += n;
                if sent == frames.len() {
                    break false;
                }
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                break true;
            }
            Err(e) => panic!("write: {e}"),
        }
    };
    assert!(
        blocked,
        "the server read all {} MB while Redis held its publishes",
        frames.len() >> 20
    );
    let health = server.broker().backend.health();
    // The server's own stats publisher (once a second, one at a time) may hold one more.
    assert!(
        health[0].queue_depth <= LIMIT as u64 + 1,
        "more publishes in flight than the per-connection limit: {health:?}"
    );
    let _: () = redis::cmd("CLIENT")
        .arg("UNPAUSE")
        .query(&mut redis)
        .expect("unpause");
    c.stream.set_write_timeout(None).expect("timeout");
    let deadline = Instant::now() + common::WAIT;
    let writer = {
        let mut stream = c.stream.try_clone().expect("clone");
        std::thread::spawn(move || stream.write_all(&frames[sent..]).expect("send the rest"))
    };
    for i in 0..COUNT {
        expect_publish_acks(&mut c, i..i + 1);
        assert!(Instant::now() < deadline, "answers too slow");
    }
    writer.join().expect("writer");
}

/// Publishes in flight when their Redis node dies: every one is answered (an error for those
/// Redis did not confirm), in request order, and the connection goes on.
#[test]
fn a_node_failing_under_pipelined_publishes_answers_each_in_order() {
    const COUNT: usize = 200;
    let Some(mut node) = redis_node() else {
        return;
    };
    let server = on_redis(&[&node], patient_limits(), |_| {});
    let mut c = Client::authed(server.local_addr(), "app1", "all");
    // Warm up (the script is loaded), then hold Redis so that everything stays in flight.
    let a = c.request("rtm/publish", json!({"channel": "dies", "message": 0}));
    assert_eq!(a["action"], "rtm/publish/ok", "{a}");
    let _paused = pause_writes(&node);
    let pdus: Vec<Value> = (0..COUNT).map(|i| publish(i, "dies", i)).collect();
    send_all(&mut c, &pdus);
    common::eventually("the publishes in flight", || {
        let depth = server.broker().backend.health()[0].queue_depth;
        (depth as usize >= COUNT).then_some(())
    });
    node.kill();
    let mut errors = 0;
    for i in 0..COUNT {
        let a = c.recv_json();
        assert_eq!(a["id"], json!(i), "answers out of order: {a}");
        assert_eq!(a["action"], "rtm/publish/error", "{a}");
        assert_eq!(a["body"]["error"], "backend_unavailable", "{a}");
        errors += 1;
    }
    assert_eq!(errors, COUNT);
    // The connection still works (the node is down: a clear error, at once).
    let a = c.request("rtm/publish", json!({"channel": "dies", "message": 1}));
    assert_eq!(a["action"], "rtm/publish/error", "{a}");
}

/// A PDU that is not JSON right behind pipelined publishes: their acks first, then the error
/// and the close, as when they were handled one at a time.
#[test]
fn a_bad_pdu_after_pipelined_publishes_is_refused_after_their_acks() {
    let Some((_node, server)) = on_one_node() else {
        return;
    };
    let mut c = Client::authed(server.local_addr(), "app1", "all");
    publishes_then(&mut c, "bad", 50, |codec, out| {
        codec.encode_text("{not json", out)
    });
    let e = c.recv_json();
    assert_eq!(e["action"], "rtm/error", "{e}");
    assert_eq!(e["body"]["error"], "bad_schema", "{e}");
    assert_eq!(c.expect_close(), 1000);
}

/// A batch holding more messages for one channel than `channel_max_length`: the stream is
/// trimmed to the cap (plus its trim marker) once the batch is in, and the history replays the
/// newest ones, in order.
#[test]
fn a_batch_longer_than_the_cap_leaves_the_stream_trimmed() {
    const CAP: usize = 5;
    let Some(node) = redis_node() else {
        return;
    };
    let server = common::start_on_redis(&node.url(), CAP, RedisLimits::default());
    let mut c = Client::authed(server.local_addr(), "app1", "all");
    let pdus: Vec<Value> = (0..200).map(|i| publish(i, "capped", i)).collect();
    send_all(&mut c, &pdus);
    expect_publish_acks(&mut c, 0..200);
    let mut redis = node.client();
    let len: usize = redis::cmd("XLEN")
        .arg("cobra:h:app1::capped")
        .query(&mut redis)
        .expect("XLEN");
    assert_eq!(len, CAP + 1, "the history and its trim marker");
    let mut reader = Client::authed(server.local_addr(), "app1", "all");
    reader.request(
        "rtm/subscribe",
        json!({"channel": "capped", "position": "0-0", "batch_size": 100}),
    );
    assert_eq!(
        receive_numbers(&mut reader, CAP),
        vec![195, 196, 197, 198, 199]
    );
}

/// More publishes than the node has slots, from several pipelining connections at once: the
/// excess waits for a slot in order instead of failing, every publish is acknowledged, and
/// each connection's publishes land in the stream in the order sent.
#[test]
fn publishes_beyond_the_node_slots_wait_in_order() {
    const CONNECTIONS: usize = 3;
    const COUNT: usize = 300;
    let Some(node) = redis_node() else {
        return;
    };
    let limits = RedisLimits {
        max_in_flight: 4,
        max_batch: 2,
        ..RedisLimits::default()
    };
    let server = on_redis(&[&node], limits, |_| {});
    let mut clients: Vec<Client> = (0..CONNECTIONS)
        .map(|_| Client::authed(server.local_addr(), "app1", "all"))
        .collect();
    for (k, c) in clients.iter_mut().enumerate() {
        let pdus: Vec<Value> = (0..COUNT)
            .map(|i| publish(i, "slots", k * COUNT + i))
            .collect();
        send_all(c, &pdus);
    }
    for c in &mut clients {
        expect_publish_acks(c, 0..COUNT);
    }
    let mut redis = node.client();
    let entries: Vec<(String, Vec<(String, String)>)> = redis::cmd("XRANGE")
        .arg("cobra:h:app1::slots")
        .arg("-")
        .arg("+")
        .query(&mut redis)
        .expect("XRANGE");
    assert_eq!(entries.len(), CONNECTIONS * COUNT);
    let mut last = [None::<u64>; CONNECTIONS];
    for (_, fields) in &entries {
        let m = &fields.iter().find(|(f, _)| f == "m").expect("m field").1;
        let n = serde_json::from_str::<Value>(m).expect("json")["n"]
            .as_u64()
            .expect("n");
        let k = n as usize / COUNT;
        assert!(
            last[k].is_none_or(|l| l < n),
            "connection {k}: {n} after {:?}",
            last[k]
        );
        last[k] = Some(n);
    }
}
