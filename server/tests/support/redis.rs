//! Real `redis-server` processes for tests: free loopback port, no persistence, own temp dir,
//! killed (and their dir removed) on drop. `kill()` + `restart()` simulate a node crash and
//! its return on the same port.
#![allow(dead_code)] // each test binary uses a different subset

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use cobra_test_support::process::output_ok;

/// Whether `redis-server` can be run here; if not, the test skips by the one policy
/// (`cobra_test_support::skip`: loud locally, a failure under `CI=true`).
pub(crate) fn available() -> bool {
    runs_or_skips(
        "redis-server",
        "redis-server not installed (scripts/setup.sh installs it)",
    )
}

/// Whether `program --version` runs; if not, skips the test (saying `reason`).
fn runs_or_skips(program: &str, reason: &str) -> bool {
    let ok = Command::new(program)
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        cobra_test_support::skip(reason);
    }
    ok
}

/// `count` fresh `redis-server` nodes, or `None` when the test skips for want of Redis
/// ([`available`]).
pub(crate) fn nodes(count: usize) -> Option<Vec<RedisServer>> {
    available().then(|| spawn_nodes(count))
}

/// `count` fresh `redis-server` nodes.
pub(crate) fn spawn_nodes(count: usize) -> Vec<RedisServer> {
    (0..count)
        .map(|_| RedisServer::spawn().expect("redis-server"))
        .collect()
}

/// The URLs of `nodes`, `;`-separated (the `--redis` form).
pub(crate) fn urls(nodes: &[RedisServer]) -> String {
    nodes
        .iter()
        .map(RedisServer::url)
        .collect::<Vec<_>>()
        .join(";")
}

/// One `redis-server` child process.
pub(crate) struct RedisServer {
    port: u16,
    child: Option<Child>,
    dir: PathBuf,
    extra: Vec<String>,
}

fn ping(port: u16) -> bool {
    let Ok(mut s) =
        TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_millis(200))
    else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
    if s.write_all(b"PING\r\n").is_err() {
        return false;
    }
    let mut buf = [0u8; 7];
    // A server with `--requirepass` answers NOAUTH: it is up all the same.
    s.read_exact(&mut buf).is_ok() && (&buf == b"+PONG\r\n" || buf.starts_with(b"-NOAUTH"))
}

fn start(port: u16, dir: &PathBuf, extra: &[String]) -> std::io::Result<Option<Child>> {
    let mut child = Command::new("redis-server")
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .arg("--dir")
        .arg(dir)
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if child.try_wait()?.is_some() {
            return Ok(None); // exited: most likely the port was taken meanwhile
        }
        if ping(port) {
            return Ok(Some(child));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = child.kill();
    let _ = child.wait();
    Ok(None)
}

impl RedisServer {
    /// Starts a server on a free loopback port.
    pub(crate) fn spawn() -> std::io::Result<Self> {
        Self::spawn_with(&[])
    }

    /// Starts a server with extra command-line options (e.g. `["--requirepass", "pw"]`).
    pub(crate) fn spawn_with(extra: &[&str]) -> std::io::Result<Self> {
        for _ in 0..10 {
            let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
            let extra = extra.iter().map(|s| s.to_string()).collect();
            if let Some(server) = RedisServer::try_start(port, "cobra-redis-test", extra)? {
                return Ok(server);
            }
        }
        Err(std::io::Error::other("could not start redis-server"))
    }

    /// Starts a server on `port` with its files in a fresh `<prefix>-<pid>-<port>` temp dir;
    /// `None` (the dir removed) if it did not come up, most likely the port was taken meanwhile.
    fn try_start(port: u16, prefix: &str, extra: Vec<String>) -> std::io::Result<Option<Self>> {
        let dir = std::env::temp_dir().join(format!("{prefix}-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let Some(child) = start(port, &dir, &extra)? else {
            let _ = std::fs::remove_dir_all(&dir);
            return Ok(None);
        };
        Ok(Some(RedisServer {
            port,
            child: Some(child),
            dir,
            extra,
        }))
    }

    /// The TCP port.
    pub(crate) fn port(&self) -> u16 {
        self.port
    }

    /// `redis://127.0.0.1:<port>`.
    pub(crate) fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Freezes (`true`: SIGSTOP) or thaws (`false`: SIGCONT) the process: a node that stops
    /// answering without closing its connections.
    pub(crate) fn freeze(&self, frozen: bool) {
        if let Some(child) = &self.child {
            let signal = if frozen { "-STOP" } else { "-CONT" };
            let status = std::process::Command::new("kill")
                .args([signal, &child.id().to_string()])
                .status()
                .expect("kill");
            assert!(status.success(), "kill {signal}");
        }
    }

    /// Kills the process with SIGKILL (a crash: no goodbye to clients) and waits for it.
    pub(crate) fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port (after [`RedisServer::kill`]). Data is gone:
    /// there is no persistence.
    pub(crate) fn restart(&mut self) -> std::io::Result<()> {
        self.kill();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Some(child) = start(self.port, &self.dir, &self.extra)? {
                self.child = Some(child);
                return Ok(());
            }
        }
        Err(std::io::Error::other(
            "could not restart redis-server on its port",
        ))
    }

    /// A plain synchronous connection for assertions.
    pub(crate) fn client(&self) -> redis::Connection {
        redis::Client::open(self.url())
            .and_then(|c| c.get_connection())
            .expect("connect to test redis")
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Whether `redis-cli` (which creates and reshards test clusters) can be run here; like
/// [`available`], a skip outside CI and a failure under it.
pub(crate) fn cli_available() -> bool {
    runs_or_skips("redis-cli", "redis-cli not installed (install redis-tools)")
}

impl RedisServer {
    /// Starts a cluster-enabled server (`node_timeout_ms` is `cluster-node-timeout`: how long a
    /// primary may be silent before its replica takes over) on a free port whose cluster bus
    /// port (+10000) is free too.
    pub(crate) fn spawn_cluster_node(node_timeout_ms: u64) -> std::io::Result<Self> {
        for _ in 0..50 {
            let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
            if port > 55_000 || TcpListener::bind(("127.0.0.1", port + 10_000)).is_err() {
                continue;
            }
            let extra = [
                "--cluster-enabled",
                "yes",
                "--cluster-node-timeout",
                &node_timeout_ms.to_string(),
                // A replica takes over however long it was cut off (tests kill primaries).
                "--cluster-replica-validity-factor",
                "0",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect();
            if let Some(server) = RedisServer::try_start(port, "cobra-redis-cluster", extra)? {
                return Ok(server);
            }
        }
        Err(std::io::Error::other(
            "could not start a cluster redis-server",
        ))
    }

    /// Whether the process is running (not killed).
    pub(crate) fn is_running(&self) -> bool {
        self.child.is_some()
    }
}

/// `redis-cli -p <port> <args>`, its standard output (empty when it failed).
pub(crate) fn cli(port: u16, args: &[&str]) -> String {
    Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(args)
        .stderr(Stdio::null())
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default()
}

/// A Redis Cluster of real processes: `primaries` primaries with `replicas` replicas each,
/// made with `redis-cli --cluster create`; every process killed on drop.
pub(crate) struct RedisCluster {
    /// Every process, primaries and replicas (roles change with failovers).
    pub(crate) nodes: Vec<RedisServer>,
}

impl RedisCluster {
    /// Starts the processes, creates the cluster and waits until every node says it is ok.
    pub(crate) fn spawn(primaries: usize, replicas: usize, node_timeout_ms: u64) -> Self {
        let nodes: Vec<RedisServer> = (0..primaries * (1 + replicas))
            .map(|_| RedisServer::spawn_cluster_node(node_timeout_ms).expect("redis-server"))
            .collect();
        let addrs: Vec<String> = nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port()))
            .collect();
        output_ok(
            Command::new("redis-cli")
                .args(["--cluster", "create"])
                .args(&addrs)
                .args(["--cluster-replicas", &replicas.to_string(), "--cluster-yes"]),
            "redis-cli --cluster create",
        );
        let cluster = RedisCluster { nodes };
        cluster.wait_ok(Duration::from_secs(30));
        cluster
    }

    /// `redis://127.0.0.1:<port>` of every running node, `,`-separated (the `--redis-cluster` form).
    pub(crate) fn seeds(&self) -> String {
        self.nodes
            .iter()
            .filter(|n| n.is_running())
            .map(RedisServer::url)
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Waits until every running node reports `cluster_state:ok` with all slots served, all agree
    /// on the primaries, every other running node is a replica in sync with its primary, and the
    /// primaries see each of them online (`WAIT` counts only those: right after `--cluster create`
    /// a future replica still says `role:master`, and a publish with `replica_acks` then failed).
    pub(crate) fn wait_ok(&self, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            let running: Vec<&RedisServer> = self.nodes.iter().filter(|n| n.is_running()).collect();
            let views: Vec<Vec<u16>> = running
                .iter()
                .map(|n| self.primaries_seen_by(n.port()))
                .collect();
            let agreed = views.windows(2).all(|w| w[0] == w[1]);
            let primaries = views.first().cloned().unwrap_or_default();
            let mut online_replicas = 0;
            let ok = running.iter().all(|n| {
                let info = cli(n.port(), &["cluster", "info"]);
                let replication = cli(n.port(), &["info", "replication"]);
                let role_ok = if primaries.contains(&n.port()) {
                    online_replicas += replication.matches("state=online").count();
                    replication.contains("role:master")
                } else {
                    // A replica has finished its first sync (publishes may wait for it).
                    replication.contains("master_link_status:up")
                };
                info.contains("cluster_state:ok")
                    && info.contains("cluster_slots_ok:16384")
                    && role_ok
            });
            if ok && agreed && running.len().checked_sub(primaries.len()) == Some(online_replicas) {
                return;
            }
            assert!(Instant::now() < deadline, "Redis Cluster not ok in time");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn primaries_seen_by(&self, port: u16) -> Vec<u16> {
        let mut ports: Vec<u16> = cli(port, &["cluster", "nodes"])
            .lines()
            .filter(|l| l.contains("master") && !l.contains("fail"))
            .filter_map(|l| {
                l.split_whitespace()
                    .nth(1)?
                    .split(['@', ':'])
                    .nth(1)?
                    .parse()
                    .ok()
            })
            .collect();
        ports.sort_unstable();
        ports
    }

    /// Ports of the running primaries.
    pub(crate) fn primary_ports(&self) -> Vec<u16> {
        self.nodes
            .iter()
            .filter(|n| n.is_running())
            .filter(|n| cli(n.port(), &["role"]).starts_with("master"))
            .map(RedisServer::port)
            .collect()
    }

    /// The running node on `port`.
    pub(crate) fn node_mut(&mut self, port: u16) -> &mut RedisServer {
        self.nodes
            .iter_mut()
            .find(|n| n.port() == port)
            .expect("a node of the cluster")
    }

    /// Moves `slots` slots from the primary on `from` to the one on `to` with
    /// `redis-cli --cluster reshard` (keys migrated with them); returns when it is done.
    pub(crate) fn reshard(&self, from: u16, to: u16, slots: usize) {
        let id = |port| cli(port, &["cluster", "myid"]).trim().to_string();
        output_ok(
            Command::new("redis-cli")
                .args(["--cluster", "reshard", &format!("127.0.0.1:{from}")])
                .args(["--cluster-from", &id(from), "--cluster-to", &id(to)])
                .args(["--cluster-slots", &slots.to_string(), "--cluster-yes"]),
            "redis-cli --cluster reshard",
        );
    }
}
