//! Two cobra servers (in-process, each with its own Redis backend) sharing three real
//! `redis-server` nodes, driven over WebSocket like real clients; plus the Python `cobra
//! health` against each server when the peer is installed.

#[path = "common/mod.rs"]
mod common;
#[path = "support/redis.rs"]
mod redis_support;
#[path = "support/two_servers.rs"]
mod two_servers;

use cobra_test_support::free_port;
use cobra_test_support::process::{Guard, run_with_deadline, wait_listening};
use std::time::{Duration, Instant};

use cobra_server::broker::redis::{RedisBackend, RedisLimits};
use cobra_server::net::ServerHandle;
use common::Client;
use redis_support::{RedisServer, urls};
use serde_json::{Value, json};
use two_servers::numbers;

fn limits() -> RedisLimits {
    RedisLimits {
        reconnect_max: Duration::from_millis(200),
        ..RedisLimits::default()
    }
}

fn server(nodes: &[RedisServer], channel_max_length: usize) -> ServerHandle {
    server_on(&urls(nodes), channel_max_length)
}

/// The next data PDU; subscription infos met on the way are appended to `infos`.
fn next_data_noting(c: &mut Client, infos: &mut Vec<Value>) -> Value {
    loop {
        let v = c.recv_json();
        match v["action"].as_str() {
            Some("rtm/subscription/data") => return v,
            Some("rtm/subscription/info") => infos.push(v),
            _ => panic!("expected data or info, got {v}"),
        }
    }
}

/// The `info` fields of `infos` for subscription `id`.
fn infos_of(infos: &[Value], id: &str) -> Vec<String> {
    infos
        .iter()
        .filter(|v| v["body"]["subscription_id"] == id)
        .map(|v| v["body"]["info"].as_str().unwrap_or("").to_string())
        .collect()
}

/// Expects no PDU for a short while.
fn assert_quiet(c: &mut Client) {
    c.stream
        .set_read_timeout(Some(Duration::from_millis(300)))
        .expect("timeout");
    let got = c.recv();
    assert!(got.is_err(), "unexpected PDU: {got:?}");
    c.stream
        .set_read_timeout(Some(common::WAIT))
        .expect("timeout");
}

#[test]
fn two_servers_share_three_nodes_over_websocket() {
    let Some(nodes) = redis_support::nodes(3) else {
        return;
    };
    let one = server(&nodes, 1000);
    let two = server(&nodes, 1000);

    // Subscribe on server two, plain and with StreamSQL, on several channels (several nodes);
    // publish on server one.
    let channels: Vec<String> = (0..6).map(|i| format!("chan{i}")).collect();
    two_servers::share_live_kv_and_history(
        one.local_addr(),
        two.local_addr(),
        &channels,
        assert_quiet,
    );

    // Stats/metrics expose one health entry per node.
    let (status, _, body) = common::http_get(one.local_addr(), "/metrics", "");
    assert_eq!(status, 200);
    let metric = |name: &str, port: u16| -> u64 {
        let prefix = format!("{name}{{node=\"redis://127.0.0.1:{port}");
        body.lines()
            .find(|l| l.starts_with(&prefix))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{name} of node {port} missing from /metrics:\n{body}"))
    };
    let mut published = 0;
    for node in &nodes {
        assert_eq!(metric("cobra_backend_node_up", node.port()), 1);
        assert_eq!(metric("cobra_backend_node_queue_depth", node.port()), 0);
        assert_eq!(metric("cobra_backend_node_errors_total", node.port()), 0);
        assert_eq!(
            metric("cobra_backend_node_reconnects_total", node.port()),
            0
        );
        published += metric("cobra_backend_node_published_total", node.port());
    }
    assert!(published > 0, "server one published through the nodes");
    // The stats message carries the same per-node health.
    let backend = two_servers::stats_backend(one.local_addr());
    assert_eq!(backend.len(), 3, "{backend:?}");
    assert!(
        backend.iter().all(|n| n["connected"] == true
            && n["queue_depth"] == 0
            && n["errors"] == 0
            && n["reconnects"] == 0),
        "{backend:?}"
    );
    let in_stats: u64 = backend.iter().filter_map(|n| n["published"].as_u64()).sum();
    assert!(in_stats >= published, "{backend:?}");
}

/// Kill one node under two servers: publishers of its channels get `rtm/publish/error` with a
/// clear reason, everything else keeps working; restart it: both servers serve it again and
/// the subscription made before the crash resumes, without restarting anything.
#[test]
fn a_dead_node_fails_only_its_channels_over_websocket() {
    let Some(mut nodes) = redis_support::nodes(3) else {
        return;
    };
    let probe = RedisBackend::start(&urls(&nodes), None, 10, limits()).expect("probe backend");
    let on = |node: usize| {
        (0..10_000)
            .map(|i| format!("c{i}"))
            .find(|c| probe.node_index(&format!("app1::{c}")) == node)
            .expect("channel")
    };
    let (dead, alive) = (on(0), on(2));
    let one = server(&nodes, 1000);
    let two = server(&nodes, 1000);
    let mut sub = Client::authed(two.local_addr(), "app1", "all");
    sub.request("rtm/subscribe", json!({"channel": dead}));
    sub.request("rtm/subscribe", json!({"channel": alive}));
    let mut publ = Client::authed(one.local_addr(), "app1", "all");
    assert_eq!(
        publ.request("rtm/publish", json!({"channel": dead, "message": {"n": 0}}))["action"],
        "rtm/publish/ok"
    );
    assert_eq!(numbers(&sub.next_data()), vec![0]);
    let mut infos = Vec::new();

    nodes[0].kill();
    let deadline = Instant::now() + common::WAIT;
    let err = loop {
        let r = publ.request("rtm/publish", json!({"channel": dead, "message": {"n": 1}}));
        if r["action"] == "rtm/publish/error" {
            break r;
        }
        assert!(
            Instant::now() < deadline,
            "publishing to a dead node kept succeeding"
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    let reason = err["body"]["reason"].as_str().expect("reason");
    assert!(
        reason.contains(&format!("127.0.0.1:{}", nodes[0].port())),
        "reason names the node: {reason}"
    );
    assert!(err["body"]["error"].as_str().is_some_and(|e| !e.is_empty()));
    // Other channels work, on both servers; the servers are alive.
    for n in 0..5 {
        assert_eq!(
            publ.request(
                "rtm/publish",
                json!({"channel": alive, "message": {"n": n}})
            )["action"],
            "rtm/publish/ok"
        );
    }
    let got: Vec<i64> = (0..5)
        .flat_map(|_| numbers(&next_data_noting(&mut sub, &mut infos)))
        .collect();
    assert_eq!(got, (0..5).collect::<Vec<_>>());
    // The dead channel's subscriber is told, once, with the node named.
    while infos_of(&infos, &dead).is_empty() {
        let v = sub.recv_json();
        assert_eq!(v["action"], "rtm/subscription/info", "{v}");
        infos.push(v);
    }
    assert_eq!(infos_of(&infos, &dead), vec!["backend_unavailable"]);
    assert!(infos_of(&infos, &alive).is_empty(), "{infos:?}");
    let reason = infos[0]["body"]["reason"].as_str().expect("reason");
    assert!(
        reason.contains(&format!("127.0.0.1:{}", nodes[0].port())),
        "{reason}"
    );
    let r = Client::authed(two.local_addr(), "app1", "all")
        .request("rtm/subscribe", json!({"channel": dead}));
    assert_eq!(r["action"], "rtm/subscribe/error", "{r}");

    nodes[0].restart().expect("restart");
    let deadline = Instant::now() + common::WAIT;
    loop {
        let r = publ.request("rtm/publish", json!({"channel": dead, "message": {"n": 2}}));
        if r["action"] == "rtm/publish/ok" {
            break;
        }
        assert!(Instant::now() < deadline, "node did not come back: {r}");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        numbers(&next_data_noting(&mut sub, &mut infos)),
        vec![2],
        "the old subscription resumed"
    );
    for n in 3..6 {
        publ.request("rtm/publish", json!({"channel": dead, "message": {"n": n}}));
    }
    let got: Vec<i64> = (0..3)
        .flat_map(|_| numbers(&next_data_noting(&mut sub, &mut infos)))
        .collect();
    assert_eq!(got, vec![3, 4, 5]);
    assert_eq!(
        infos_of(&infos, &dead),
        vec!["backend_unavailable", "backend_resumed"],
        "{infos:?}"
    );
    assert_quiet(&mut sub);
}

fn server_on(urls: &str, channel_max_length: usize) -> ServerHandle {
    common::start_on_redis(urls, channel_max_length, limits())
}

/// One server loses its node while another keeps publishing past the history's length: when
/// it gets the node back, a fast-forward subscriber is told the loss, then continues from the
/// oldest kept message; a strict one gets `out_of_sync`. (The node is cut off from one server
/// only by turning the Redis user that server logs in as off: deterministic, no timing.)
#[test]
fn a_position_expired_during_an_outage_is_reported() {
    if !redis_support::available() {
        return;
    }
    let node = RedisServer::spawn().expect("redis-server");
    let mut admin = node.client();
    let acl = |admin: &mut redis::Connection, args: &[&str]| {
        redis::cmd("ACL")
            .arg(args)
            .query::<redis::Value>(admin)
            .expect("ACL")
    };
    acl(
        &mut admin,
        &["SETUSER", "writer", "on", ">pw", "~*", "&*", "+@all"],
    );
    redis::cmd("AUTH")
        .arg("writer")
        .arg("pw")
        .query::<redis::Value>(&mut admin)
        .expect("AUTH");
    let one = server_on(&format!("redis://writer:pw@127.0.0.1:{}", node.port()), 3);
    let two = server_on(&node.url(), 3);
    let mut ff = Client::authed(two.local_addr(), "app1", "all");
    ff.request(
        "rtm/subscribe",
        json!({"channel": "ch", "subscription_id": "ff", "fast_forward": true}),
    );
    let mut strict = Client::authed(two.local_addr(), "app1", "all");
    strict.request("rtm/subscribe", json!({"channel": "ch"}));
    let mut publ = Client::authed(one.local_addr(), "app1", "all");
    let publish = |publ: &mut Client, n: i64| {
        let r = publ.request("rtm/publish", json!({"channel": "ch", "message": {"n": n}}));
        assert_eq!(r["action"], "rtm/publish/ok", "{r}");
    };
    publish(&mut publ, 0);
    assert_eq!(numbers(&ff.next_data()), vec![0]);
    assert_eq!(numbers(&strict.next_data()), vec![0]);

    // Server two (default user) loses the node and cannot log in again; server one can.
    acl(&mut admin, &["SETUSER", "default", "off"]);
    redis::cmd("CLIENT")
        .arg(&["KILL", "USER", "default"][..])
        .query::<redis::Value>(&mut admin)
        .expect("CLIENT KILL");
    for c in [&mut ff, &mut strict] {
        let v = c.recv_json();
        assert_eq!(v["action"], "rtm/subscription/info", "{v}");
        assert_eq!(v["body"]["info"], "backend_unavailable", "{v}");
    }
    for n in 1..=10 {
        publish(&mut publ, n);
    }
    acl(&mut admin, &["SETUSER", "default", "on"]);

    // Fast-forward: the loss first, then the 3 messages kept, and the resume notice.
    let mut pdus = Vec::new();
    while pdus
        .iter()
        .filter(|v: &&Value| v["action"] == "rtm/subscription/data")
        .count()
        < 3
        || !pdus.iter().any(|v| v["body"]["info"] == "backend_resumed")
    {
        pdus.push(ff.recv_json());
    }
    assert_eq!(pdus[0]["action"], "rtm/subscription/info", "{pdus:?}");
    assert_eq!(pdus[0]["body"]["info"], "fast_forward", "{pdus:?}");
    let missed = pdus[0]["body"]["missed_message_count"]
        .as_u64()
        .expect("missed_message_count");
    assert!(missed >= 7, "7 messages (1..=7) were trimmed: {missed}");
    let got: Vec<i64> = pdus
        .iter()
        .filter(|v| v["action"] == "rtm/subscription/data")
        .flat_map(numbers)
        .collect();
    assert_eq!(got, vec![8, 9, 10]);
    publish(&mut publ, 11);
    assert_eq!(numbers(&ff.next_data()), vec![11]);

    // Strict: out_of_sync, and the subscription is gone.
    let v = strict.recv_json();
    assert_eq!(v["action"], "rtm/subscription/error", "{v}");
    assert_eq!(v["body"]["error"], "out_of_sync", "{v}");
    assert!(
        v["body"]["missed_message_count"]
            .as_u64()
            .is_some_and(|m| m >= 7),
        "{v}"
    );
    assert_quiet(&mut strict);
    let r = strict.request("rtm/unsubscribe", json!({"subscription_id": "ch"}));
    assert_eq!(r["action"], "rtm/unsubscribe/error", "removed: {r}");
}

/// Two `cobra run --redis URLS` processes sharing three nodes; the original Python client's
/// `cobra health` (write, read, delete, publish + filtered subscribe from 0-0) passes against
/// each, and what one wrote the other reads.
#[test]
fn cobra_run_with_redis_passes_python_health_on_two_servers() {
    if !redis_support::available() {
        return;
    }
    let Some(python) = common::python_cobra() else {
        return;
    };
    let nodes = redis_support::spawn_nodes(3);
    let dir = tempfile::tempdir().expect("tempdir");
    let config = cobra_server::config::AppsConfig::default_generated();
    // The servers read `apps.yaml`; the Python client its defaults from `~/.cobra.yaml`.
    for name in ["apps.yaml", ".cobra.yaml"] {
        std::fs::write(dir.path().join(name), config.to_yaml()).expect("write config");
    }
    let mut servers = Vec::new();
    for i in 0..2 {
        let port = free_port();
        let log = |name: String| std::fs::File::create(dir.path().join(name)).expect("log file");
        let child = common::cobra_run_command(port, dir.path())
            .args(["--redis", &urls(&nodes)])
            .stdin(std::process::Stdio::null())
            .stdout(log(format!("server{i}.stdout")))
            .stderr(log(format!("server{i}.stderr")))
            .spawn()
            .expect("spawn cobra run");
        let mut guard = Guard(child);
        let stderr = dir.path().join(format!("server{i}.stderr"));
        wait_listening(&mut guard.0, port, "cobra run", move || {
            std::fs::read_to_string(&stderr).unwrap_or_default()
        });
        servers.push((guard, port));
    }
    for (_, port) in &servers {
        let endpoint = format!("ws://127.0.0.1:{port}");
        let mut health = common::command_in_home(&python, dir.path());
        health.args(["health", "--endpoint", &endpoint]);
        // The Python client retries forever on errors: bound it.
        let run = run_with_deadline(health, "", Duration::from_secs(30));
        assert!(
            run.stdout.contains("System is healthy"),
            "cobra health against {endpoint}: {run}"
        );
    }
    // Cross-server key/value through our own clients, with the generated credentials.
    let role = config
        .apps
        .get("_pubsub")
        .and_then(|a| a.roles.get("pubsub"))
        .expect("_pubsub role");
    let mut a = Client::connect(([127, 0, 0, 1], servers[0].1).into(), "_pubsub");
    a.auth("pubsub", &role.secret).expect("auth");
    let mut b = Client::connect(([127, 0, 0, 1], servers[1].1).into(), "_pubsub");
    b.auth("pubsub", &role.secret).expect("auth");
    a.request(
        "rtm/write",
        json!({"channel": "k", "message": "through one"}),
    );
    assert_eq!(b.read("k"), "through one");
}
