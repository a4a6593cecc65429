//! Helpers to start an in-process server on a free port, with the test apps config; the blocking
//! WebSocket test client is `cobra_test_support::client`, re-exported here.
#![allow(dead_code)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use cobra_server::broker::redis::{RedisBackend, RedisLimits};
use cobra_server::config::{AppsConfig, ConfigSource, ServerSettings};
use cobra_server::net::{Server, ServerHandle};

pub(crate) use cobra_test_support::client::*;

pub(crate) const ALL: [&str; 7] = [
    "publish",
    "subscribe",
    "unsubscribe",
    "read",
    "write",
    "delete",
    "admin",
];

/// Apps `app1`, `app2`, `_stats`, each with roles `all` (every permission), `stats` (every
/// permission), `sub` (subscribe + unsubscribe), `pub` (publish only); secret [`SECRET`].
pub(crate) fn apps(channel_max_length: usize) -> AppsConfig {
    let mut yaml = String::from("apps:\n");
    for app in ["app1", "app2", "_stats", "_admin"] {
        yaml.push_str(&format!(
            "  {app}:\n    roles:\n      all: {{secret: {SECRET}, permissions: [{all}]}}\n      stats: {{secret: {SECRET}, permissions: [{all}]}}\n      sub: {{secret: {SECRET}, permissions: [subscribe, unsubscribe]}}\n      pub: {{secret: {SECRET}, permissions: [publish]}}\n",
            all = ALL.join(", ")
        ));
    }
    yaml.push_str(&format!("channel_max_length: {channel_max_length}\n"));
    AppsConfig::from_yaml(&yaml).expect("test apps config")
}

pub(crate) fn settings() -> ServerSettings {
    ServerSettings::with_defaults(
        "127.0.0.1:0".parse().unwrap(),
        ConfigSource::Content(String::new()),
    )
}

/// Env var naming Redis nodes (`;`-separated URLs): when set, every test server runs on the
/// Redis backend instead of the embedded one (see `scripts/test-redis.sh`).
pub(crate) const REDIS_URLS_ENV: &str = "COBRA_TEST_REDIS_URLS";

/// The Redis nodes the tests run on, if [`REDIS_URLS_ENV`] is set.
pub(crate) fn redis_urls() -> Option<String> {
    std::env::var(REDIS_URLS_ENV)
        .ok()
        .filter(|u| !u.trim().is_empty())
}

/// A Redis namespace no other test server (in this or another test process) uses, so tests
/// sharing the nodes never see each other's channels.
pub(crate) fn fresh_redis_namespace() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!(
        "cobratest-{}-{nanos}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// Starts a server on a free loopback port; `tweak` adjusts the settings. On the Redis backend
/// (in a namespace of its own) when [`REDIS_URLS_ENV`] is set, else on the embedded one.
pub(crate) fn start_with(
    channel_max_length: usize,
    tweak: impl FnOnce(&mut ServerSettings),
) -> ServerHandle {
    let mut s = settings();
    tweak(&mut s);
    let mut apps = apps(channel_max_length);
    let Some(urls) = redis_urls() else {
        return Server::start(s, apps).expect("server starts");
    };
    if let Some(n) = s.channel_max_length {
        apps.channel_max_length = n.get();
    }
    let limits = RedisLimits {
        namespace: fresh_redis_namespace(),
        ..RedisLimits::default()
    };
    let backend = RedisBackend::start(&urls, None, apps.channel_max_length, limits)
        .expect("the Redis backend starts");
    Server::start_with_backend(s, apps, Arc::new(backend)).expect("server starts")
}

pub(crate) fn start() -> ServerHandle {
    start_with(1000, |_| {})
}
