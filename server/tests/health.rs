//! `/health/live` and `/health/ready` of an in-process server: ready only under the connection
//! limit, with every Redis node reachable, and not draining; live throughout; `/health/` as the
//! Python tools expect it.

#[path = "common/mod.rs"]
mod common;
#[path = "support/redis.rs"]
mod redis_support;

use std::time::Duration;

use cobra_server::broker::redis::RedisLimits;
use common::{Client, http_get};

fn get(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
    let (status, _, body) = http_get(addr, path, "");
    (status, body)
}

#[test]
fn ready_follows_the_connection_limit_and_the_drain() {
    // Not 1: past twice the limit in sockets (HTTP ones included) new sockets are dropped unread.
    let server = common::start_with(10, |s| s.limits.max_connections = 3);
    let addr = server.local_addr();
    assert_eq!(get(addr, "/health/ready"), (200, "ready\n".into()));
    assert_eq!(get(addr, "/health/live/"), (200, "live\n".into()));
    let c: Vec<Client> = (0..3)
        .map(|_| Client::authed(addr, "app1", "all"))
        .collect();
    assert_eq!(
        get(addr, "/health/ready"),
        (503, "not ready: at the connection limit\n".into())
    );
    drop(c);
    common::eventually("the connection to go", || {
        (server.broker().connection_count() == 0).then_some(())
    });
    assert_eq!(get(addr, "/health/ready").0, 200);
    server.drain(Duration::from_secs(5), false);
    assert_eq!(
        get(addr, "/health/ready"),
        (503, "not ready: draining\n".into())
    );
    assert_eq!(get(addr, "/health/live").0, 200);
    assert_eq!(get(addr, "/health/"), (200, "OK\n".into()));
}

#[test]
fn ready_fails_while_a_redis_node_is_unreachable() {
    if !redis_support::available() {
        return;
    }
    let mut redis = redis_support::RedisServer::spawn().expect("redis-server");
    let limits = RedisLimits {
        reconnect_max: Duration::from_millis(100),
        ..RedisLimits::default()
    };
    let server = common::start_on_redis(&redis.url(), 10, limits);
    let addr = server.local_addr();
    assert_eq!(get(addr, "/health/ready").0, 200);
    redis.kill();
    let body = common::eventually("readiness to fail", || {
        let (status, body) = get(addr, "/health/ready");
        (status == 503).then_some(body)
    });
    assert!(
        body.contains("backend node") && body.contains("unreachable"),
        "{body}"
    );
    assert_eq!(
        get(addr, "/health/live").0,
        200,
        "alive without its backend"
    );
    redis.restart().expect("redis-server back");
    common::eventually("readiness to come back", || {
        (get(addr, "/health/ready").0 == 200).then_some(())
    });
}
