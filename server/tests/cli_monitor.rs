//! `cobra monitor` and `cobra top` against a real server: the stats message is one this test
//! publishes (the server's own once-a-second stats are off), so the expected tables are exact.
//! `cobra monitor --once` must print byte for byte what the Python client's `cobra monitor
//! --once` prints for the same message (skipped loudly without the peer, failing under CI=true).

mod common;

use std::io::Read;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::thread;

use cobra_server::broker::Broker;
use cobra_server::net::{Server, ServerHandle, broker_settings};
use common::{SECRET, eventually};
use serde_json::json;

const BIN: &str = env!("CARGO_BIN_EXE_cobra");

/// A child process killed and reaped on drop, its stdout collected in the background.
struct Spawned {
    child: Child,
    stdout: Option<thread::JoinHandle<String>>,
}

impl Spawned {
    fn new(mut cmd: Command) -> Spawned {
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = cmd.spawn().expect("spawn");
        let mut pipe = child.stdout.take().expect("piped stdout");
        let stdout = thread::spawn(move || {
            let mut s = String::new();
            let _ = pipe.read_to_string(&mut s);
            s
        });
        Spawned {
            child,
            stdout: Some(stdout),
        }
    }

    /// Waits for the exit (bounded by [`common::WAIT`]) and returns stdout.
    fn output(mut self) -> String {
        let status = eventually("the command exits", || self.child.try_wait().ok().flatten());
        assert!(status.success(), "exit status {status}");
        self.stdout
            .take()
            .and_then(|h| h.join().ok())
            .unwrap_or_default()
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A server whose broker publishes no stats by itself.
fn server() -> ServerHandle {
    let settings = common::settings();
    let mut broker_settings = broker_settings(&settings);
    broker_settings.stats_interval = None;
    let broker = Broker::embedded(broker_settings, common::apps(100));
    Server::start_with_broker(settings, broker).expect("server starts")
}

fn stats_args(server: &ServerHandle) -> Vec<String> {
    vec![
        "--endpoint".into(),
        format!("ws://{}", server.local_addr()),
        "--rolename".into(),
        "stats".into(),
        "--rolesecret".into(),
        SECRET.into(),
    ]
}

/// One stats message in the server's shape: two roles, three channels, a Redis backend.
fn stats_message() -> serde_json::Value {
    json!({
        "node": "node-a",
        "data": {
            "cobra": {
                "published_count": {"pub": 1200, "stats": 0},
                "published_count_per_second": {"pub": 40, "stats": 0},
                "published_bytes": {"pub": 1_234_567, "stats": 0},
                "subscribed_count": {"sub": 2400},
                "subscriptions": {"sub": 3, "stats": 1}
            },
            "channel_data": {
                "published_count": {"engine_fps_id": 1000, "engine_mem_id": 200, "quiet": 0},
                "published_count_per_second": {"engine_fps_id": 30, "engine_mem_id": 10, "quiet": 0},
                "published_bytes_per_second": {"engine_fps_id": 4500, "engine_mem_id": 999, "quiet": 0},
                "subscriptions": {"engine_fps_id": 2, "quiet": 1}
            },
            "system": {"connections": 5, "mem_bytes": 52_428_800, "uptime": "1:02:03", "uptime_seconds": 3723},
            "backend": [{"node": "redis://a", "connected": true}, {"node": "redis://b", "connected": false}]
        }
    })
}

/// Publishes the stats message once `subscribers` monitors are subscribed to `/stats`.
fn publish_stats_when_subscribed(server: &ServerHandle, subscribers: i64) {
    let broker = server.broker();
    eventually("the monitors subscribe to /stats", || {
        (broker.stats.channel_subscriptions("/stats") >= subscribers).then_some(())
    });
    let mut publisher = common::Client::authed(server.local_addr(), "_stats", "stats");
    let ack = publisher.request(
        "rtm/publish",
        json!({"channel": "/stats", "message": stats_message()}),
    );
    assert_eq!(ack["action"], "rtm/publish/ok", "{ack}");
}

const EXPECTED_MONITOR: &str = "{
    \"connections\": 5,
    \"published_bytes\": \"1.23 MB\",
    \"published_count\": 1200,
    \"published_count_per_second\": 40,
    \"subscribed_count\": 2400,
    \"subscriptions\": 4
}

Nodes                       node-a
--------------------------  --------
published_bytes             1.23 MB
published_count             1200
published_count_per_second  40
subscribed_count            2400
subscriptions               4
connections                 5
mem_bytes                   52.43 MB
uptime                      1:02:03
uptime_seconds              3723

Roles                       pub      stats    sub
--------------------------  -------  -------  -------
published_bytes             1.23 MB  0 bytes  0 bytes
published_count             1200     0        0
published_count_per_second  40       0        0
subscribed_count            0        0        2400
subscriptions               0        1        3

Channels       published_bytes_per_second      published_count    published_count_per_second    subscriptions
-------------  ----------------------------  -----------------  ----------------------------  ---------------
engine_fps_id  4.5 KB                                     1000                            30                2
engine_mem_id  999 bytes                                   200                            10                0
quiet          0 bytes                                       0                             0                1
";

#[test]
fn monitor_once_prints_the_python_clients_tables() {
    let server = server();
    let home = tempfile::tempdir().unwrap();
    let mut ours = common::command_in_home(Path::new(BIN), home.path());
    ours.arg("monitor").arg("--once").args(stats_args(&server));
    let ours = Spawned::new(ours);
    let python = common::python_cobra().map(|py| {
        let mut cmd = common::command_in_home(&py, home.path());
        cmd.arg("monitor").arg("--once").args(stats_args(&server));
        Spawned::new(cmd)
    });
    publish_stats_when_subscribed(&server, 1 + i64::from(python.is_some()));
    let printed = ours.output();
    assert_eq!(printed, EXPECTED_MONITOR, "ours:\n{printed}");
    if let Some(python) = python {
        assert_eq!(
            python.output(),
            printed,
            "the Python client prints otherwise"
        );
    }
}

#[test]
fn top_once_shows_channels_by_rate_and_the_nodes() {
    let server = server();
    let home = tempfile::tempdir().unwrap();
    let mut cmd = common::command_in_home(Path::new(BIN), home.path());
    cmd.args(["top", "--once", "--limit", "2"])
        .args(stats_args(&server));
    let top = Spawned::new(cmd);
    publish_stats_when_subscribed(&server, 1);
    let printed = top.output();
    let endpoint = format!("ws://{}", server.local_addr());
    let expected = format!(
        "cobra top - {endpoint}  1 node  5 connections  40 publishes/s  0 deliveries/s

NODE      CONNS    PUB/S    DELIV/S  IN/S       OUT/S        SUBS  MEM       UPTIME    BACKEND
------  -------  -------  ---------  ---------  ---------  ------  --------  --------  ---------
node-a        5       40          0  0 bytes/s  0 bytes/s       4  52.43 MB  1:02:03   1/2 up

CHANNEL          MSG/S  BYTES/S      SUBS    MESSAGES  BYTES
-------------  -------  ---------  ------  ----------  -------
engine_fps_id       30  4.5 KB          2        1000  0 bytes
engine_mem_id       10  999 bytes       0         200  0 bytes
(1 more channels; --limit shows more)
"
    );
    assert_eq!(printed, expected, "printed:\n{printed}");
}
