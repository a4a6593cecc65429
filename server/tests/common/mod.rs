//! Helpers to start an in-process server on a free port, with the test apps config; the blocking
//! WebSocket test client is `cobra_test_support::client`, re-exported here.
#![allow(dead_code)]

use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use cobra_test_support::process::{Guard, clean_command};

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

/// Env var naming a few nodes of a Redis Cluster (`,`-separated URLs, the `--redis-cluster`
/// form): when set, every test server runs on the Redis backend in cluster mode. Wins over
/// [`REDIS_URLS_ENV`].
pub(crate) const REDIS_CLUSTER_ENV: &str = "COBRA_TEST_REDIS_CLUSTER";

/// Which backend the test servers run on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TestBackend {
    /// The embedded one (neither variable set).
    Embedded,
    /// Redis, sharded over these standalone nodes ([`REDIS_URLS_ENV`]).
    Nodes(String),
    /// Redis Cluster reached through these seeds ([`REDIS_CLUSTER_ENV`]).
    Cluster(String),
}

/// The one place deciding the test backend from the environment.
pub(crate) fn test_backend() -> TestBackend {
    let var = |name| {
        std::env::var(name)
            .ok()
            .filter(|u: &String| !u.trim().is_empty())
    };
    if let Some(seeds) = var(REDIS_CLUSTER_ENV) {
        TestBackend::Cluster(seeds)
    } else if let Some(urls) = var(REDIS_URLS_ENV) {
        TestBackend::Nodes(urls)
    } else {
        TestBackend::Embedded
    }
}

/// The Redis nodes (or cluster seeds) the tests run on, if any.
pub(crate) fn redis_urls() -> Option<String> {
    match test_backend() {
        TestBackend::Embedded => None,
        TestBackend::Nodes(urls) | TestBackend::Cluster(urls) => Some(urls),
    }
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
/// (in a namespace of its own) as [`test_backend`] says, else on the embedded one.
pub(crate) fn start_with(
    channel_max_length: usize,
    tweak: impl FnOnce(&mut ServerSettings),
) -> ServerHandle {
    let mut s = settings();
    tweak(&mut s);
    let mut apps = apps(channel_max_length);
    let (urls, cluster) = match test_backend() {
        TestBackend::Embedded => return Server::start(s, apps).expect("server starts"),
        TestBackend::Nodes(urls) => (urls, false),
        TestBackend::Cluster(seeds) => (seeds, true),
    };
    if let Some(n) = s.channel_max_length {
        apps.channel_max_length = n.get();
    }
    let limits = RedisLimits {
        namespace: fresh_redis_namespace(),
        ..RedisLimits::default()
    };
    let backend = if cluster {
        RedisBackend::start_cluster(&urls, None, apps.channel_max_length, limits)
    } else {
        RedisBackend::start(&urls, None, apps.channel_max_length, limits)
    }
    .expect("the Redis backend starts");
    Server::start_with_backend(s, apps, Arc::new(backend)).expect("server starts")
}

/// A server on the Redis nodes `urls` (`;`-separated), with the test apps config.
pub(crate) fn start_on_redis(
    urls: &str,
    channel_max_length: usize,
    limits: RedisLimits,
) -> ServerHandle {
    let backend = RedisBackend::start(urls, None, channel_max_length, limits)
        .expect("the Redis backend starts");
    Server::start_with_backend(settings(), apps(channel_max_length), Arc::new(backend))
        .expect("server starts")
}

pub(crate) fn start() -> ServerHandle {
    start_with(1000, |_| {})
}

/// A command with no inherited `COBRA_*` variable (both `cobra` CLIs read several) and `HOME` at
/// `home`, where both look for their config.
pub(crate) fn command_in_home(program: &Path, home: &Path) -> Command {
    let mut cmd = clean_command(program);
    cmd.env("HOME", home);
    cmd
}

/// The Python `cobra` of the original `cobras` client, or `None` after the skip policy said so.
pub(crate) fn python_cobra() -> Option<std::path::PathBuf> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.tools/cobras-venv/bin/cobra");
    cobra_test_support::require(path, "Python cobras peer")
}

/// `cobra run` on 127.0.0.1:`port` with the apps config `dir/apps.yaml` and `HOME` at `dir`,
/// no `COBRA_*` variable inherited; the caller adds options and output.
pub(crate) fn cobra_run_command(port: u16, dir: &Path) -> Command {
    let mut cmd = command_in_home(Path::new(env!("CARGO_BIN_EXE_cobra")), dir);
    cmd.args(["run", "--host", "127.0.0.1", "--port", &port.to_string()])
        .arg("--apps-config")
        .arg(dir.join("apps.yaml"));
    cmd
}

/// `cobra run` as a child process (so its memory is measured apart from the test's) on a free
/// port, with the test apps config; killed on drop.
pub(crate) struct CobraRun {
    pub(crate) process: Guard,
    pub(crate) addr: SocketAddr,
    _dir: tempfile::TempDir,
}

impl CobraRun {
    /// Starts it with `args` and [`apps`]`(channel_max_length)`; returns once it listens.
    pub(crate) fn start(channel_max_length: usize, args: &[&str]) -> CobraRun {
        let port = cobra_test_support::free_port();
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(
            dir.path().join("apps.yaml"),
            apps(channel_max_length).to_yaml(),
        )
        .expect("write the apps config");
        let child = cobra_run_command(port, dir.path())
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn cobra run");
        let run = CobraRun {
            process: Guard(child),
            addr: ([127, 0, 0, 1], port).into(),
            _dir: dir,
        };
        eventually("cobra run to listen", || TcpStream::connect(run.addr).ok());
        run
    }

    /// Its resident set size, in KiB.
    pub(crate) fn rss_kib(&self) -> u64 {
        rss_kib(self.process.0.id())
    }
}

/// Resident set size of process `pid`, in KiB.
pub(crate) fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .expect("VmRSS")
}
