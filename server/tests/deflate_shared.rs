//! permessage-deflate as the server sends it: `server_no_context_takeover` in every answer,
//! fan-out compressed once and spliced per subscriber, and no zlib compressor held by any
//! connection (one per worker thread instead); or, with `--deflate-mode stream`, each
//! connection's stream compressed with its own small window.

mod common;

use std::io::Read;
use std::sync::LazyLock;

use bytes::BytesMut;
use cobra_bench_event::Events;
use cobra_server::config::options::DeflateMode;
use cobra_wire::ws::Message;
use common::{Client, SECRET, eventually, start, start_with};
use serde_json::{Value, json};

/// Reads the next text message straight from the socket; returns it with whether its
/// frame was compressed (RSV1). Only valid while the client's own buffer is empty.
fn recv_raw(c: &mut Client, buf: &mut BytesMut) -> (bool, Value) {
    recv_raw_counted(c, buf, &mut 0)
}

/// [`recv_raw`], adding the bytes read off the socket to `read`.
fn recv_raw_counted(c: &mut Client, buf: &mut BytesMut, read: &mut usize) -> (bool, Value) {
    loop {
        let rsv1 = buf.first().is_some_and(|b| b & 0x40 != 0);
        if let Some(m) = c.codec.decode(buf).expect("valid frames") {
            let Message::Text(t) = m else {
                panic!("expected text, got {m:?}")
            };
            return (rsv1, serde_json::from_str(&t).expect("JSON"));
        }
        let mut chunk = [0u8; 65536];
        let n = c.stream.read(&mut chunk).expect("read");
        assert!(n > 0, "eof");
        *read += n;
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// An event that does not compress to nothing (varying text), ~400 bytes.
fn event(i: usize) -> Value {
    let pad: String = (0..300)
        .map(|k| char::from(b'a' + ((k * 7 + i * 13) % 26) as u8))
        .collect();
    json!({"i": i, "device": {"game": "wiso", "os_name": "iOS"}, "pad": pad})
}

#[test]
fn every_offer_gets_server_no_context_takeover_and_fan_out_round_trips_compressed() {
    let server = start();
    let addr = server.local_addr();
    let offers = [
        "permessage-deflate; client_max_window_bits",
        "permessage-deflate; server_max_window_bits=15; client_max_window_bits=15",
        "permessage-deflate",
        "permessage-deflate; client_no_context_takeover",
        "permessage-deflate; server_max_window_bits=9; client_max_window_bits=9",
    ];
    let mut subs: Vec<(Client, BytesMut)> = Vec::new();
    for offer in offers {
        let mut s = Client::connect_ext(addr, "app1", Some(offer)).expect("connect");
        let answer = s.response.extensions.clone().unwrap_or_default();
        assert!(
            answer.contains("server_no_context_takeover"),
            "{offer} -> {answer}"
        );
        assert!(
            s.codec
                .deflate()
                .is_some_and(|n| n.server_no_context_takeover)
        );
        s.auth("all", SECRET).unwrap();
        let ok = s.request("rtm/subscribe", json!({"channel": "c"}));
        assert_eq!(ok["action"], "rtm/subscribe/ok");
        subs.push((s, BytesMut::new()));
    }
    let mut p = Client::connect_ext(addr, "app1", Some("permessage-deflate")).unwrap();
    p.auth("all", SECRET).unwrap();
    let before = cobra_server::net::compress::counters();
    for i in 0..300 {
        let ok = p.request("rtm/publish", json!({"channel": "c", "message": event(i)}));
        assert_eq!(ok["action"], "rtm/publish/ok");
    }
    for (n, (s, buf)) in subs.iter_mut().enumerate() {
        for i in 0..300 {
            let (compressed, d) = recv_raw(s, buf);
            assert_eq!(d["action"], "rtm/subscription/data");
            assert_eq!(d["body"]["messages"], json!([event(i)]), "sub {n} msg {i}");
            assert!(compressed, "sub {n} msg {i} was sent uncompressed");
        }
    }
    // Compressed once per message per worker thread (2 at most here), not once per
    // subscriber (5). The counters are process-wide: the other test adds at most a few.
    let after = cobra_server::net::compress::counters();
    let (compressed, spliced) = (
        after.compressed - before.compressed,
        after.spliced - before.spliced,
    );
    assert!(spliced >= 5 * 300, "{spliced} spliced deliveries");
    assert!(
        (300..=2 * 300 + 20).contains(&compressed),
        "{compressed} compressions for 300 messages"
    );
}

/// The load tool's event `i` (~300 bytes, random padding): deflate at level 1 does not shrink it.
fn incompressible_event(i: u64) -> Value {
    static EVENTS: LazyLock<Events> = LazyLock::new(|| Events::new(300));
    let mut text = String::new();
    EVENTS.write(&mut text, 0, 0, i);
    serde_json::from_str(&text).expect("JSON")
}

#[test]
fn a_message_deflate_does_not_shrink_is_delivered_uncompressed_and_the_next_compressed() {
    let server = start();
    let addr = server.local_addr();
    let mut s = Client::connect_ext(addr, "app1", Some("permessage-deflate")).unwrap();
    s.auth("all", SECRET).unwrap();
    let ok = s.request("rtm/subscribe", json!({"channel": "mixed"}));
    assert_eq!(ok["action"], "rtm/subscribe/ok");
    let mut p = Client::connect_ext(addr, "app1", Some("permessage-deflate")).unwrap();
    p.auth("all", SECRET).unwrap();
    let before = cobra_server::net::compress::counters();
    for i in 0..10u64 {
        for message in [incompressible_event(i), event(i as usize)] {
            let ok = p.request(
                "rtm/publish",
                json!({"channel": "mixed", "message": message}),
            );
            assert_eq!(ok["action"], "rtm/publish/ok");
        }
    }
    let mut buf = BytesMut::new();
    for i in 0..10u64 {
        let (compressed, d) = recv_raw(&mut s, &mut buf);
        assert_eq!(d["body"]["messages"], json!([incompressible_event(i)]));
        assert!(
            !compressed,
            "incompressible message {i} was sent compressed"
        );
        let (compressed, d) = recv_raw(&mut s, &mut buf);
        assert_eq!(d["body"]["messages"], json!([event(i as usize)]));
        assert!(compressed, "compressible message {i} was sent uncompressed");
    }
    // Process-wide: the other tests of this file add none (their events compress).
    let after = cobra_server::net::compress::counters();
    assert_eq!(after.incompressible - before.incompressible, 10);
    let (_, _, metrics) = common::http_get(addr, "/metrics", "");
    assert!(
        metrics.contains("cobra_deflate_incompressible_deliveries_total "),
        "{metrics}"
    );
}

#[test]
fn idle_deflate_connections_hold_no_compressor() {
    let server = start();
    let addr = server.local_addr();
    let stats = &server.broker().stats;
    let gauges = || {
        (
            stats
                .connection_deflaters
                .load(std::sync::atomic::Ordering::Relaxed),
            stats
                .connection_inflaters
                .load(std::sync::atomic::Ordering::Relaxed),
        )
    };
    // Clients keeping their compression context, and clients that reset it per message.
    let takeover = "permessage-deflate; client_max_window_bits";
    let reset = "permessage-deflate; client_no_context_takeover; client_max_window_bits";
    let mut clients = Vec::new();
    for offer in [takeover, takeover, reset, reset, reset] {
        let mut c = Client::connect_ext(addr, "app1", Some(offer)).unwrap();
        // auth/handshake/ok is over the compress threshold: it is compressed, by the thread.
        c.auth("all", SECRET).unwrap();
        c.request("rtm/subscribe", json!({"channel": "idle"}));
        clients.push(c);
    }
    // Every client publishes compressed messages (the server inflates them) and receives
    // the fan-out (the server compresses it).
    for (i, c) in clients.iter_mut().enumerate() {
        let ok = c.request(
            "rtm/publish",
            json!({"channel": "other", "message": event(i)}),
        );
        assert_eq!(ok["action"], "rtm/publish/ok");
    }
    clients[0].request(
        "rtm/publish",
        json!({"channel": "idle", "message": event(99)}),
    );
    for c in &mut clients {
        assert_eq!(c.next_data()["body"]["messages"], json!([event(99)]));
    }
    // Idle now: no connection holds a compressor; only the two context-takeover clients
    // keep their inflater (the LZ77 window must survive between their messages).
    let (deflaters, inflaters) = eventually("idle zlib gauges", || {
        let g = gauges();
        (g == (0, 2)).then_some(g)
    });
    assert_eq!((deflaters, inflaters), (0, 2));
    let (_, _, metrics) = common::http_get(addr, "/metrics", "");
    assert!(
        metrics.contains("cobra_connection_zlib_streams{kind=\"deflate\"} 0"),
        "{metrics}"
    );
    drop(clients);
    eventually("gauges back to zero", || (gauges() == (0, 0)).then_some(()));
}

#[test]
fn stream_mode_keeps_the_context_and_sends_similar_events_in_far_fewer_bytes() {
    let server = start_with(1000, |s| s.deflate_mode = DeflateMode::Stream);
    let addr = server.local_addr();
    let mut s = Client::connect_ext(addr, "app1", Some("permessage-deflate")).unwrap();
    let answer = s.response.extensions.clone().unwrap_or_default();
    assert!(!answer.contains("server_no_context_takeover"), "{answer}");
    assert!(answer.contains("server_max_window_bits=12"), "{answer}");
    s.auth("all", SECRET).unwrap();
    assert_eq!(
        s.request("rtm/subscribe", json!({"channel": "tele"}))["action"],
        "rtm/subscribe/ok"
    );
    let mut p = Client::connect_ext(addr, "app1", Some("permessage-deflate")).unwrap();
    p.auth("all", SECRET).unwrap();
    // Telemetry: the same fields, a few values changing, as a game's events are. Compressed
    // alone, such an event shrinks too little to be sent compressed in shared mode.
    let telemetry = |i: u64| {
        json!({"id": "engine_fps_id", "i": i, "data": {"fps": 20 + i % 40, "frame_ms": 16.6},
               "device": {"game": "wiso", "os_name": "Android", "model": "Pixel 7",
                          "app_version": "1.2.3", "locale": "en_US", "network": "wifi"},
               "session": "5f1c2e9a-7b3d-4e8f-9a1b-2c3d4e5f6a7b"})
    };
    for i in 0..200 {
        let ok = p.request(
            "rtm/publish",
            json!({"channel": "tele", "message": telemetry(i)}),
        );
        assert_eq!(ok["action"], "rtm/publish/ok");
    }
    let mut buf = BytesMut::new();
    let (mut wire, mut text) = (0, 0);
    for i in 0..200 {
        let (compressed, d) = recv_raw_counted(&mut s, &mut buf, &mut wire);
        assert!(compressed, "event {i} was sent uncompressed");
        assert_eq!(d["body"]["messages"], json!([telemetry(i)]), "event {i}");
        text += d.to_string().len();
    }
    assert!(buf.is_empty(), "{} bytes more than 200 events", buf.len());
    // Each event refers back to the ones before it (measured: 5,374 bytes for 70,180).
    assert!(
        wire * 3 < text,
        "{wire} bytes on the wire for {text} bytes of PDUs"
    );
}
