//! The Redis backend on a real Redis Cluster (3 primaries, 3 replicas, made by the test with
//! `redis-cli --cluster create` on free loopback ports): the end-to-end scenarios over
//! WebSocket through two cobra servers, and a failover and a resharding while messages flow.

#[path = "common/mod.rs"]
mod common;
#[path = "support/redis.rs"]
mod redis_support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use cobra_server::broker::redis::{RedisBackend, RedisLimits};
use cobra_server::net::{Server, ServerHandle};
use common::Client;
use redis_support::RedisCluster;
use serde_json::{Value, json};

/// `cluster-node-timeout`: a dead primary is replaced about 1-2 s after it died.
const NODE_TIMEOUT_MS: u64 = 1000;

fn available() -> bool {
    redis_support::available() && redis_support::cli_available()
}

fn limits() -> RedisLimits {
    RedisLimits {
        reconnect_max: Duration::from_millis(200),
        health_interval: Duration::from_millis(250),
        ..RedisLimits::default()
    }
}

fn server(cluster: &RedisCluster, channel_max_length: usize) -> ServerHandle {
    let backend =
        RedisBackend::start_cluster(&cluster.seeds(), None, channel_max_length, limits())
            .expect("redis cluster backend");
    Server::start_with_backend(
        common::settings(),
        common::apps(channel_max_length),
        Arc::new(backend),
    )
    .expect("server starts")
}

fn numbers(d: &Value) -> Vec<i64> {
    d["body"]["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|m| m["n"].as_i64().expect("n"))
        .collect()
}

/// Two servers on one cluster: live delivery across primaries (plain and StreamSQL),
/// key/value, history replay and resume, read at a position, per-primary health.
#[test]
fn two_servers_share_a_cluster_over_websocket() {
    if !available() {
        return;
    }
    let cluster = RedisCluster::spawn(3, 1, NODE_TIMEOUT_MS);
    let one = server(&cluster, 1000);
    let two = server(&cluster, 1000);

    // Enough channels to land on every primary.
    let probe = RedisBackend::start_cluster(&cluster.seeds(), None, 10, limits()).expect("probe");
    assert_eq!(probe.node_names().len(), 3, "{:?}", probe.node_names());
    let channels: Vec<String> = (0..12).map(|i| format!("chan{i}")).collect();
    let mut on: Vec<usize> = channels
        .iter()
        .map(|c| probe.node_index(&format!("app1::{c}")))
        .collect();
    on.sort_unstable();
    on.dedup();
    assert_eq!(on, vec![0, 1, 2], "the channels spread over the three primaries");

    let mut sub = Client::authed(two.local_addr(), "app1", "all");
    for c in &channels {
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
    let mut publ = Client::authed(one.local_addr(), "app1", "all");
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
            let id = d["body"]["subscription_id"].as_str().expect("id").to_owned();
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

    // Write on one, read on two; delete on two, read on one.
    let w = publ.request(
        "rtm/write",
        json!({"channel": "settings", "message": {"level": 3}}),
    );
    assert_eq!(w["action"], "rtm/write/ok", "{w}");
    assert_eq!(
        sub.request("rtm/read", json!({"channel": "settings"}))["body"]["message"],
        json!({"level": 3})
    );
    assert_eq!(
        sub.request("rtm/delete", json!({"channel": "settings"}))["action"],
        "rtm/delete/ok"
    );
    assert_eq!(
        publ.request("rtm/read", json!({"channel": "settings"}))["body"]["message"],
        json!(null)
    );

    // History through one, replayed through two from 0-0 and from a position.
    let mut positions = Vec::new();
    for n in 0..10 {
        let r = publ.request(
            "rtm/publish",
            json!({"channel": "hist", "message": {"n": n}}),
        );
        positions.push(r["body"]["position"].as_str().expect("position").to_owned());
    }
    let mut late = Client::authed(two.local_addr(), "app1", "all");
    let ok = late.request(
        "rtm/subscribe",
        json!({"channel": "hist", "position": "0-0"}),
    );
    assert_eq!(ok["body"]["position"], json!(positions[9]));
    let got: Vec<i64> = (0..10).flat_map(|_| numbers(&late.next_data())).collect();
    assert_eq!(got, (0..10).collect::<Vec<_>>());
    let mut resumed = Client::authed(two.local_addr(), "app1", "all");
    resumed.request(
        "rtm/subscribe",
        json!({"channel": "hist", "position": positions[6]}),
    );
    let got: Vec<i64> = (0..3).flat_map(|_| numbers(&resumed.next_data())).collect();
    assert_eq!(got, vec![7, 8, 9]);
    let r = sub.request(
        "rtm/read",
        json!({"channel": "hist", "position": positions[2]}),
    );
    assert_eq!(r["body"]["message"], json!({"n": 2}));

    // The keys are hash-tagged: a channel's stream and value share a slot.
    let port = cluster.primary_ports()[0];
    let slot = |key: &str| redis_support::cli(port, &["cluster", "keyslot", key]);
    assert_eq!(slot("cobra:h:{app1::hist}"), slot("cobra:kv:{app1::hist}"));

    // One health entry per primary.
    let mut stats = Client::authed(one.local_addr(), "_stats", "stats");
    stats.request("rtm/subscribe", json!({"channel": "/stats"}));
    let d = stats.next_data();
    let backend = d["body"]["messages"][0]["data"]["backend"]
        .as_array()
        .cloned()
        .expect("backend health in stats");
    assert_eq!(backend.len(), 3, "{backend:?}");
    assert!(
        backend.iter().all(|n| n["connected"] == true && n["errors"] == 0),
        "{backend:?}"
    );
}
