//! The HTTP side of the port, handshake/auth timeouts, permessage-deflate variants and the
//! inflated-size limit.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{Client, SECRET, http_get, start, start_with};
use serde_json::json;

#[test]
fn health_version_metrics() {
    let server = start();
    let addr = server.local_addr();
    let (status, _, body) = http_get(addr, "/health/", "");
    assert_eq!((status, body.as_str()), (200, "OK\n"));
    let (status, _, body) = http_get(addr, "/version/", "");
    assert_eq!(status, 200);
    assert_eq!(body, env!("CARGO_PKG_VERSION"));
    let _c = Client::authed(addr, "app1", "all");
    let (status, _, body) = http_get(addr, "/metrics", "");
    assert_eq!(status, 200);
    assert!(body.contains("cobra_connections 1"), "{body}");
    assert!(body.contains("cobra_published_messages_total"), "{body}");
}

#[test]
fn unknown_or_missing_appkey_is_403_and_plain_get_is_426() {
    let server = start();
    let addr = server.local_addr();
    let upgrade = "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n";
    assert_eq!(http_get(addr, "/v2?appkey=nope", upgrade).0, 403);
    assert_eq!(http_get(addr, "/v2", upgrade).0, 403);
    assert!(Client::connect_ext(addr, "nope", None).is_err());
    assert_eq!(http_get(addr, "/v2?appkey=app1", "").0, 426);
    assert_eq!(http_get(addr, "/nothing", "").0, 404);
}

#[test]
fn stalled_upgrade_is_dropped_and_unauthenticated_session_times_out() {
    let server = start_with(10, |s| {
        s.limits.handshake_timeout = Duration::from_millis(200)
    });
    let addr = server.local_addr();
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(b"GET /v2?appkey=app1 HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    let t = Instant::now();
    let mut buf = [0u8; 64];
    assert_eq!(
        s.read(&mut buf).unwrap_or(0),
        0,
        "server closes the stalled upgrade"
    );
    assert!(t.elapsed() < Duration::from_secs(4));
    let mut c = Client::connect(addr, "app1");
    assert_eq!(c.expect_close(), 1008);
}

fn round_trip(offer: &str) {
    let server = start();
    let addr = server.local_addr();
    let mut s = Client::connect_ext(addr, "app1", Some(offer)).expect("connect with deflate");
    assert!(
        s.response
            .extensions
            .as_deref()
            .is_some_and(|e| e.starts_with("permessage-deflate")),
        "{offer}"
    );
    assert!(s.codec.deflate().is_some());
    s.auth("all", SECRET).unwrap();
    s.request("rtm/subscribe", json!({"channel": "c"}));
    let mut p = Client::connect_ext(addr, "app1", Some(offer)).unwrap();
    p.auth("all", SECRET).unwrap();
    for i in 0..20 {
        let msg =
            json!({"i": i, "device": {"game": "wiso", "os_name": "iOS"}, "pad": "abc".repeat(100)});
        p.request(
            "rtm/publish",
            json!({"channel": "c", "message": msg.clone()}),
        );
        assert_eq!(s.next_data()["body"]["messages"], json!([msg]));
    }
}

#[test]
fn deflate_cpp_client_offer() {
    round_trip("permessage-deflate; server_max_window_bits=15; client_max_window_bits=15");
}

#[test]
fn deflate_bare_client_max_window_bits() {
    round_trip("permessage-deflate; client_max_window_bits");
}

#[test]
fn deflate_no_context_takeover() {
    round_trip("permessage-deflate; client_no_context_takeover; server_no_context_takeover");
}

#[test]
fn deflate_plain_offer_and_small_windows() {
    round_trip("permessage-deflate");
    round_trip("permessage-deflate; server_max_window_bits=10; client_max_window_bits=9");
}

#[test]
fn over_limit_inflate_closes_1009() {
    let server = start_with(10, |s| s.limits.message_max_size = 64 << 10);
    let addr = server.local_addr();
    let mut c = Client::connect_ext(addr, "app1", Some("permessage-deflate")).unwrap();
    c.auth("all", SECRET).unwrap();
    // About 1 MB of text that compresses to a few KB: a deflate bomb for a 64 KB limit.
    let big = json!({"action": "rtm/publish", "id": 1, "body": {"channel": "c", "message": "a".repeat(1 << 20)}}).to_string();
    c.send_text(&big);
    assert_eq!(c.expect_close(), 1009);
    // Without deflate too.
    let mut c = Client::authed(addr, "app1", "all");
    c.send_text(&big);
    assert_eq!(c.expect_close(), 1009);
    // The server still serves others.
    assert_eq!(http_get(addr, "/health/", "").0, 200);
}

#[test]
fn stats_message_arrives_on_stats_channel() {
    let server = start();
    let addr = server.local_addr();
    let mut p = Client::authed(addr, "app1", "all");
    p.request("rtm/publish", json!({"channel": "c", "message": 1}));
    let mut s = Client::authed(addr, "_stats", "stats");
    s.request("rtm/subscribe", json!({"channel": "/stats"}));
    let d = s.next_data();
    let m = &d["body"]["messages"][0];
    assert!(m["node"].is_string(), "{m}");
    assert!(
        m["data"]["cobra"]["published_count"]["all"]
            .as_i64()
            .unwrap()
            >= 1,
        "{m}"
    );
    assert!(m["data"]["cobra"]["subscribed_count"].is_object());
    assert!(m["data"]["channel_data"]["published_count"].is_object());
    assert!(m["data"]["system"]["connections"].as_u64().unwrap() >= 2);
    assert!(m["data"]["system"]["mem_bytes"].as_u64().unwrap() > 0);
    assert!(m["data"]["system"]["uptime"].is_string());
    assert_eq!(m["data"]["backend"][0]["connected"], true, "{m}");
}
