//! End to end over real WebSockets: every action and every error of the spec.

mod common;

use common::{Client, SECRET, start};
use serde_json::json;

#[test]
fn handshake_ok_carries_nonce_connection_id_node_version_and_ids() {
    let server = start();
    let mut c = Client::connect(server.local_addr(), "app1");
    assert_eq!(c.response.subprotocol.as_deref(), Some("json"));
    assert!(c.response.header("X-Cobra-Node").is_some());
    assert!(c.response.header("X-Cobra-Version").is_some());
    let data = c.auth("all", SECRET).expect("auth ok");
    for k in ["nonce", "connection_id", "node", "version"] {
        assert!(data[k].is_string(), "{k} in {data}");
    }
}

#[test]
fn nonces_differ_between_handshakes() {
    let server = start();
    let mut a = Client::connect(server.local_addr(), "app1");
    let mut b = Client::connect(server.local_addr(), "app1");
    let body = json!({"method": "role_secret", "data": {"role": "all"}});
    let na = a.request("auth/handshake", body.clone())["body"]["data"]["nonce"].clone();
    let nb = b.request("auth/handshake", body)["body"]["data"]["nonce"].clone();
    assert_ne!(na, nb);
}

#[test]
fn wrong_secret_unknown_role_and_bad_method_are_refused() {
    let server = start();
    let mut c = Client::connect(server.local_addr(), "app1");
    let e = c.auth("all", "wrong").unwrap_err();
    assert_eq!(e["action"], "auth/authenticate/error");
    assert_eq!(e["body"]["error"], "authentication_failed");
    let e = c.auth("nobody", SECRET).unwrap_err();
    assert_eq!(e["body"]["error"], "authentication_failed");
    let r = c.request(
        "auth/handshake",
        json!({"method": "digest", "data": {"role": "all"}}),
    );
    assert_eq!(r["action"], "auth/handshake/error");
    assert_eq!(r["body"]["error"], "unsupported_method");
    let r = c.request(
        "auth/authenticate",
        json!({"method": "role_secret", "credentials": {"hash": "x"}}),
    );
    assert_eq!(r["body"]["error"], "handshake_required");
    // Still usable after failures.
    c.auth("all", SECRET).expect("auth ok after failures");
}

#[test]
fn everything_is_refused_before_authentication() {
    let server = start();
    let mut c = Client::connect(server.local_addr(), "app1");
    for (action, body) in [
        ("rtm/publish", json!({"channel": "c", "message": 1})),
        ("rtm/subscribe", json!({"channel": "c"})),
        ("rtm/unsubscribe", json!({"subscription_id": "c"})),
        ("rtm/read", json!({"channel": "c"})),
        ("rtm/write", json!({"channel": "c", "message": 1})),
        ("rtm/delete", json!({"channel": "c"})),
        ("admin/get_connections", json!({})),
        ("admin/close_connection", json!({"connection_id": "x"})),
    ] {
        let r = c.request(action, body);
        assert_eq!(r["action"], format!("{action}/error"));
        assert_eq!(r["body"]["error"], "not_authenticated", "{r}");
        assert!(r["body"]["reason"].as_str().is_some_and(|s| !s.is_empty()));
    }
}

#[test]
fn permissions_are_checked_per_role() {
    let server = start();
    let mut sub = Client::authed(server.local_addr(), "app1", "sub");
    let r = sub.request("rtm/publish", json!({"channel": "c", "message": 1}));
    assert_eq!(r["body"]["error"], "permission_denied");
    for action in ["rtm/read", "rtm/write", "rtm/delete"] {
        let r = sub.request(action, json!({"channel": "c", "message": 1}));
        assert_eq!(r["body"]["error"], "permission_denied", "{action}");
    }
    let r = sub.request("admin/get_connections", json!({}));
    assert_eq!(r["action"], "admin/get_connections/error");
    assert_eq!(r["body"]["error"], "permission_denied");
    let r = sub.request("rtm/subscribe", json!({"channel": "c"}));
    assert_eq!(r["action"], "rtm/subscribe/ok");
    let mut publisher = Client::authed(server.local_addr(), "app1", "pub");
    let r = publisher.request("rtm/subscribe", json!({"channel": "c"}));
    assert_eq!(r["body"]["error"], "permission_denied");
}

#[test]
fn publish_subscribe_round_trip_with_ids_from_zero() {
    let server = start();
    let mut s = Client::authed(server.local_addr(), "app1", "all");
    let ok = s.request("rtm/subscribe", json!({"channel": "fps"}));
    assert_eq!(ok["action"], "rtm/subscribe/ok");
    assert_eq!(ok["body"]["subscription_id"], "fps");
    assert!(ok["body"]["position"].is_string());
    let mut p = Client::authed(server.local_addr(), "app1", "all");
    for i in 0..3 {
        let r = p.request(
            "rtm/publish",
            json!({"channel": "fps", "message": {"data": {"fps": i}}}),
        );
        assert_eq!(r["action"], "rtm/publish/ok");
        assert_eq!(r["body"]["channels"], json!(["fps"]));
        assert!(
            r["body"]["position"]
                .as_str()
                .is_some_and(|p| p.contains('-'))
        );
    }
    for i in 0..3 {
        let d = s.next_data();
        assert_eq!(d["id"], i);
        assert_eq!(d["body"]["subscription_id"], "fps");
        assert_eq!(d["body"]["messages"], json!([{"data": {"fps": i}}]));
        assert!(d["body"]["position"].is_string());
    }
}

#[test]
fn publish_to_channels_list_and_subscription_id_default() {
    let server = start();
    let mut s = Client::authed(server.local_addr(), "app1", "all");
    s.request(
        "rtm/subscribe",
        json!({"channel": "b", "subscription_id": "mine"}),
    );
    s.request("rtm/subscribe", json!({"subscription_id": "a"}));
    let mut p = Client::authed(server.local_addr(), "app1", "all");
    let r = p.request(
        "rtm/publish",
        json!({"channels": ["a", "b"], "message": {"x": 1}}),
    );
    assert_eq!(r["body"]["channels"], json!(["a", "b"]));
    let mut got: Vec<String> = (0..2)
        .map(|_| {
            s.next_data()["body"]["subscription_id"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    got.sort();
    assert_eq!(got, ["a", "mine"]);
}

#[test]
fn publish_errors() {
    let server = start();
    let mut c = Client::authed(server.local_addr(), "app1", "all");
    let r = c.request("rtm/publish", json!({"channel": "c"}));
    assert_eq!(r["action"], "rtm/publish/error");
    assert_eq!(r["body"]["error"], "missing_message");
    let r = c.request("rtm/publish", json!({"message": {"a": 1}}));
    assert_eq!(r["body"]["error"], "missing_channel");
    let r = c.request("rtm/publish", json!({"channel": 5, "message": 1}));
    assert_eq!(r["body"]["error"], "invalid_body");
    let r = c.request("rtm/publish", json!({"channels": [], "message": 1}));
    assert_eq!(r["body"]["error"], "missing_channel");
    let many: Vec<String> = (0..10_000).map(|i| format!("c{i}")).collect();
    let r = c.request("rtm/publish", json!({"channels": many, "message": 1}));
    assert_eq!(r["body"]["error"], "too_many_channels");
    let r = c.request(
        "rtm/publish",
        json!({"channels": ["a", "b", "a"], "channel": "b", "message": 1}),
    );
    assert_eq!(r["body"]["channels"], json!(["a", "b"]));
}

#[test]
fn subscribe_errors_and_unsubscribe() {
    let server = start_with_subs(2);
    let mut c = Client::authed(server.local_addr(), "app1", "all");
    let r = c.request("rtm/subscribe", json!({"filter": "select nonsense"}));
    assert_eq!(r["action"], "rtm/subscribe/error");
    assert_eq!(r["body"]["error"], "invalid_filter");
    let r = c.request(
        "rtm/subscribe",
        json!({"channel": "c", "position": "yesterday"}),
    );
    assert_eq!(r["body"]["error"], "invalid_position");
    let r = c.request("rtm/subscribe", json!({}));
    assert_eq!(r["body"]["error"], "missing_channel");
    let long = "x".repeat(5000);
    let r = c.request("rtm/subscribe", json!({"channel": long}));
    assert_eq!(r["body"]["error"], "invalid_subscription_id");
    let r = c.request(
        "rtm/subscribe",
        json!({"channel": long, "subscription_id": "s"}),
    );
    assert_eq!(r["body"]["error"], "invalid_channel");
    let r = c.request("rtm/publish", json!({"channel": long, "message": 1}));
    assert_eq!(r["body"]["error"], "invalid_channel");
    let r = c.request("rtm/write", json!({"channel": "", "message": 1}));
    assert_eq!(r["body"]["error"], "missing_channel");
    assert_eq!(
        c.request("rtm/subscribe", json!({"channel": "c1"}))["action"],
        "rtm/subscribe/ok"
    );
    let r = c.request("rtm/subscribe", json!({"channel": "c1"}));
    assert_eq!(r["body"]["error"], "already_subscribed");
    assert_eq!(
        c.request("rtm/subscribe", json!({"channel": "c2"}))["action"],
        "rtm/subscribe/ok"
    );
    let r = c.request("rtm/subscribe", json!({"channel": "c3"}));
    assert_eq!(r["body"]["error"], "too_many_subscriptions");
    let r = c.request("rtm/unsubscribe", json!({"subscription_id": "c1"}));
    assert_eq!(r["action"], "rtm/unsubscribe/ok");
    let r = c.request("rtm/unsubscribe", json!({"subscription_id": "c1"}));
    assert_eq!(r["action"], "rtm/unsubscribe/error");
    assert_eq!(r["body"]["error"], "unknown_subscription");
    // After unsubscribing, nothing more arrives for it; the other one still works.
    let mut p = Client::authed(server.local_addr(), "app1", "all");
    p.request("rtm/publish", json!({"channel": "c1", "message": "gone"}));
    p.request("rtm/publish", json!({"channel": "c2", "message": "here"}));
    let d = c.next_data();
    assert_eq!(d["body"]["subscription_id"], "c2");
    assert_eq!(d["body"]["messages"], json!(["here"]));
}

fn start_with_subs(n: usize) -> cobra_server::net::ServerHandle {
    common::start_with(1000, |s| s.limits.max_subscriptions = n)
}

#[test]
fn filter_selects_and_projects() {
    let server = start();
    let mut c = Client::authed(server.local_addr(), "app1", "all");
    let r = c.request("rtm/subscribe", json!({"subscription_id": "slow", "filter": "select data.fps from `engine_fps_id` where data.fps < 30"}));
    assert_eq!(r["action"], "rtm/subscribe/ok");
    let mut p = Client::authed(server.local_addr(), "app1", "all");
    for fps in [60, 20, 45, 10] {
        p.request("rtm/publish", json!({"channel": "engine_fps_id", "message": {"id": "engine_fps_id", "data": {"fps": fps}}}));
    }
    assert_eq!(c.next_data()["body"]["messages"], json!([{"data.fps": 20}]));
    let d = c.next_data();
    assert_eq!(d["body"]["messages"], json!([{"data.fps": 10}]));
    assert_eq!(d["id"], 1);
}

#[test]
fn read_write_delete() {
    let server = start();
    let mut c = Client::authed(server.local_addr(), "app1", "all");
    let r = c.request("rtm/read", json!({"channel": "k"}));
    assert_eq!(r["action"], "rtm/read/ok");
    assert_eq!(r["body"]["message"], json!(null));
    let w = c.request(
        "rtm/write",
        json!({"channel": "k", "message": {"v": [1, 2]}}),
    );
    assert_eq!(w["action"], "rtm/write/ok");
    assert!(w["body"]["stream"].is_string());
    assert_eq!(c.read("k"), json!({"v": [1, 2]}));
    assert_eq!(c.delete("k")["action"], "rtm/delete/ok");
    assert_eq!(c.read("k"), json!(null));
    let r = c.request("rtm/write", json!({"channel": "k"}));
    assert_eq!(r["body"]["error"], "missing_message");
    let r = c.request("rtm/read", json!({}));
    assert_eq!(r["body"]["error"], "missing_channel");
    // Read at a position gives that history message.
    let p =
        c.request("rtm/publish", json!({"channel": "h", "message": "first"}))["body"]["position"]
            .clone();
    c.request("rtm/publish", json!({"channel": "h", "message": "second"}));
    assert_eq!(
        c.request("rtm/read", json!({"channel": "h", "position": p}))["body"]["message"],
        "first"
    );
    let r = c.request("rtm/read", json!({"channel": "h", "position": "1-1"}));
    assert_eq!(r["action"], "rtm/read/error");
}

#[test]
fn apps_are_isolated() {
    let server = start();
    let mut a = Client::authed(server.local_addr(), "app1", "all");
    let mut b = Client::authed(server.local_addr(), "app2", "all");
    b.request("rtm/subscribe", json!({"channel": "shared"}));
    a.request("rtm/subscribe", json!({"channel": "shared"}));
    a.request(
        "rtm/write",
        json!({"channel": "key", "message": "from app1"}),
    );
    assert_eq!(b.read("key"), json!(null));
    Client::authed(server.local_addr(), "app1", "all").request(
        "rtm/publish",
        json!({"channel": "shared", "message": "app1 only"}),
    );
    Client::authed(server.local_addr(), "app2", "all").request(
        "rtm/publish",
        json!({"channel": "shared", "message": "app2 only"}),
    );
    assert_eq!(a.next_data()["body"]["messages"], json!(["app1 only"]));
    assert_eq!(b.next_data()["body"]["messages"], json!(["app2 only"]));
    // History too: replay from 0-0 only sees the app's own messages.
    let mut b2 = Client::authed(server.local_addr(), "app2", "all");
    b2.request(
        "rtm/subscribe",
        json!({"channel": "shared", "position": "0-0"}),
    );
    assert_eq!(b2.next_data()["body"]["messages"], json!(["app2 only"]));
    let r = b2.request("rtm/publish", json!({"channel": "marker", "message": 0}));
    assert_eq!(r["action"], "rtm/publish/ok");
}

#[test]
fn unknown_action_and_bad_json_get_bad_schema_then_close_1000() {
    let server = start();
    for text in [
        r#"{"action": "rtm/dance", "id": 9, "body": {}}"#,
        "not json",
        r#"{"id": 3}"#,
        "[1,2]",
    ] {
        let mut c = Client::connect(server.local_addr(), "app1");
        c.send_text(text);
        let v = c.recv_json();
        assert!(v["action"].as_str().unwrap().ends_with("/error"), "{v}");
        assert_eq!(v["body"]["error"], "bad_schema");
        assert!(v.get("id").is_some());
        assert_eq!(c.expect_close(), 1000, "{text}");
    }
}

#[test]
fn admin_lists_and_closes_connections() {
    let server = start();
    let mut admin = Client::authed(server.local_addr(), "app1", "all");
    let mut victim = Client::authed(server.local_addr(), "app1", "sub");
    let victim_id = {
        let mut probe = Client::connect(server.local_addr(), "app1");
        probe.auth("all", SECRET).unwrap()["connection_id"].clone()
    };
    let r = admin.request("admin/get_connections", json!({}));
    assert_eq!(r["action"], "admin/get_connections/ok");
    let ids = r["body"]["connections"].as_array().unwrap().clone();
    assert!(ids.len() >= 2, "{r}");
    // The probe connection was dropped: eventually gone from the list.
    common::eventually("probe connection to disappear", || {
        let r = admin.request("admin/get_connections", json!({}));
        (!r["body"]["connections"]
            .as_array()
            .unwrap()
            .contains(&victim_id))
        .then_some(())
    });
    let hs = victim.request(
        "auth/handshake",
        json!({"method": "role_secret", "data": {"role": "sub"}}),
    );
    let vid = hs["body"]["data"]["connection_id"].clone();
    let r = admin.request("admin/close_connection", json!({"connection_id": vid}));
    assert_eq!(r["action"], "admin/close_connection/ok");
    assert_eq!(victim.expect_close(), 1000);
    let r = admin.request("admin/close_connection", json!({"connection_id": "nope"}));
    assert_eq!(r["body"]["error"], "unknown_connection");
}

#[test]
fn publish_rate_limit_refuses_the_excess() {
    let server = common::start_with(1000, |s| {
        s.limits.publish_rate_limit = std::num::NonZeroU32::new(5)
    });
    let mut c = Client::authed(server.local_addr(), "app1", "all");
    let results: Vec<serde_json::Value> = (0..20)
        .map(|i| c.request("rtm/publish", json!({"channel": "c", "message": i})))
        .collect();
    let ok = results
        .iter()
        .filter(|r| r["action"] == "rtm/publish/ok")
        .count();
    // A burst of one second's worth passes (plus what refills while the loop runs), the rest
    // is refused with a stable code.
    assert!((5..20).contains(&ok), "{results:?}");
    for r in results.iter().filter(|r| r["action"] != "rtm/publish/ok") {
        assert_eq!(r["action"], "rtm/publish/error");
        assert_eq!(r["body"]["error"], "rate_limited");
    }
}

#[test]
fn admins_reach_only_their_app_except_the_admin_app() {
    let server = start();
    let addr = server.local_addr();
    let mut victim = Client::connect(addr, "app1");
    let vid = victim.auth("sub", SECRET).unwrap()["connection_id"].clone();
    let mut other = Client::authed(addr, "app2", "all");
    let ids = other.request("admin/get_connections", json!({}))["body"]["connections"].clone();
    assert!(!ids.as_array().unwrap().contains(&vid), "{ids}");
    let r = other.request("admin/close_connection", json!({"connection_id": vid}));
    assert_eq!(r["body"]["error"], "unknown_connection");
    let mut root = Client::authed(addr, "_admin", "all");
    let ids = root.request("admin/get_connections", json!({}))["body"]["connections"].clone();
    assert!(ids.as_array().unwrap().contains(&vid), "{ids}");
    let r = root.request("admin/close_connection", json!({"connection_id": vid}));
    assert_eq!(r["action"], "admin/close_connection/ok");
    assert_eq!(victim.expect_close(), 1000);
}

#[test]
fn request_without_id_gets_an_id() {
    let server = start();
    let mut c = Client::connect(server.local_addr(), "app1");
    c.send_text(
        r#"{"action":"auth/handshake","body":{"method":"role_secret","data":{"role":"all"}}}"#,
    );
    let v = c.recv_json();
    assert_eq!(v["action"], "auth/handshake/ok");
    assert!(v.get("id").is_some());
}

#[test]
fn ping_gets_pong_binary_json_works_and_binary_garbage_closes_1007() {
    let server = start();
    let mut c = Client::connect(server.local_addr(), "app1");
    let mut out = Vec::new();
    c.codec.encode_ping(b"hello", &mut out).unwrap();
    c.send_raw(&out);
    // The test client answers pings itself; read the raw pong here.
    match c.recv() {
        Ok(cobra_wire::ws::Message::Pong(p)) => assert_eq!(p, b"hello"),
        other => panic!("expected pong, got {other:?}"),
    }
    out.clear();
    c.codec.encode_binary(br#"{"action":"auth/handshake","id":5,"body":{"method":"role_secret","data":{"role":"all"}}}"#, &mut out);
    c.send_raw(&out);
    assert_eq!(c.recv_json()["action"], "auth/handshake/ok");
    out.clear();
    c.codec.encode_binary(&[0xff, 0xfe, 0x00], &mut out);
    c.send_raw(&out);
    assert_eq!(c.expect_close(), 1007);
}
