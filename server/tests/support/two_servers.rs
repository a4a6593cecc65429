//! The end-to-end scenario two servers sharing one Redis store must pass (standalone nodes in
//! `redis_e2e.rs`, a Redis Cluster in `redis_cluster.rs`), driven over WebSocket.
#![allow(dead_code)] // each test binary uses a different subset

use std::net::SocketAddr;

use serde_json::{Value, json};

use crate::common::Client;

/// The `n` of each message of a data PDU.
pub(crate) fn numbers(d: &Value) -> Vec<i64> {
    d["body"]["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|m| m["n"].as_i64().expect("n"))
        .collect()
}

/// Published through `one`, seen through `two`: live delivery on `channels` (plain) and on
/// `engine_fps_id` (StreamSQL), then `after_live` on the subscriber; key/value written on one,
/// read and deleted on the other; history replayed from 0-0 and resumed from a position, and
/// read at a position.
pub(crate) fn share_live_kv_and_history(
    one: SocketAddr,
    two: SocketAddr,
    channels: &[String],
    after_live: impl FnOnce(&mut Client),
) {
    let mut sub = Client::authed(two, "app1", "all");
    for c in channels {
        assert_eq!(
            sub.request("rtm/subscribe", json!({"channel": c}))["action"],
            "rtm/subscribe/ok"
        );
    }
    let r = sub.request(
        "rtm/subscribe",
        json!({"subscription_id": "slow", "filter": "select data.fps from `engine_fps_id` where data.fps < 30"}),
    );
    assert_eq!(r["action"], "rtm/subscribe/ok", "{r}");

    let mut publ = Client::authed(one, "app1", "all");
    for (i, c) in channels.iter().enumerate() {
        let r = publ.request("rtm/publish", json!({"channel": c, "message": {"n": i}}));
        assert_eq!(r["action"], "rtm/publish/ok", "{r}");
    }
    for fps in [60, 20, 45, 10] {
        let r = publ.request(
            "rtm/publish",
            json!({"channel": "engine_fps_id", "message": {"data": {"fps": fps}}}),
        );
        assert_eq!(r["action"], "rtm/publish/ok");
    }
    let mut plain = Vec::new();
    let mut filtered = Vec::new();
    while plain.len() < channels.len() || filtered.len() < 2 {
        let d = sub.next_data();
        if d["body"]["subscription_id"] == "slow" {
            filtered.push(d["body"]["messages"].clone());
        } else {
            let id = d["body"]["subscription_id"]
                .as_str()
                .expect("id")
                .to_owned();
            plain.push((id, numbers(&d)));
        }
    }
    plain.sort();
    let mut expected: Vec<(String, Vec<i64>)> = channels
        .iter()
        .enumerate()
        .map(|(i, c)| (c.clone(), vec![i as i64]))
        .collect();
    expected.sort();
    assert_eq!(plain, expected);
    assert_eq!(
        filtered,
        vec![json!([{"data.fps": 20}]), json!([{"data.fps": 10}])]
    );
    after_live(&mut sub);

    // Write on one, read on two; delete on two, read on one.
    let w = publ.request(
        "rtm/write",
        json!({"channel": "settings", "message": {"level": 3}}),
    );
    assert_eq!(w["action"], "rtm/write/ok", "{w}");
    assert_eq!(sub.read("settings"), json!({"level": 3}));
    assert_eq!(sub.delete("settings")["action"], "rtm/delete/ok");
    assert_eq!(publ.read("settings"), json!(null));

    // History published through one, replayed through two from 0-0 and from a position.
    let mut positions = Vec::new();
    for n in 0..10 {
        let r = publ.request(
            "rtm/publish",
            json!({"channel": "hist", "message": {"n": n}}),
        );
        positions.push(r["body"]["position"].as_str().expect("position").to_owned());
    }
    let mut late = Client::authed(two, "app1", "all");
    let ok = late.request(
        "rtm/subscribe",
        json!({"channel": "hist", "position": "0-0"}),
    );
    assert_eq!(
        ok["body"]["position"],
        json!(positions[9]),
        "subscribe/ok carries the real position"
    );
    let got: Vec<i64> = (0..10).flat_map(|_| numbers(&late.next_data())).collect();
    assert_eq!(got, (0..10).collect::<Vec<_>>());
    let mut resumed = Client::authed(two, "app1", "all");
    resumed.request(
        "rtm/subscribe",
        json!({"channel": "hist", "position": positions[6]}),
    );
    let got: Vec<i64> = (0..3).flat_map(|_| numbers(&resumed.next_data())).collect();
    assert_eq!(got, vec![7, 8, 9]);
    // Read at a position through the other server.
    let r = sub.request(
        "rtm/read",
        json!({"channel": "hist", "position": positions[2]}),
    );
    assert_eq!(r["body"]["message"], json!({"n": 2}));
}

/// The per-node backend health in the first `/stats` message of the server at `addr`.
pub(crate) fn stats_backend(addr: SocketAddr) -> Vec<Value> {
    let mut stats = Client::authed(addr, "_stats", "stats");
    stats.request("rtm/subscribe", json!({"channel": "/stats"}));
    let d = stats.next_data();
    d["body"]["messages"][0]["data"]["backend"]
        .as_array()
        .cloned()
        .expect("backend health in stats")
}
