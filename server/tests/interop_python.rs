//! Interop: the original Python `cobras` 2.9.137 client against our server.
//!
//! The peer is installed by `scripts/install-peers.sh` into `.tools/cobras-venv`. Without it
//! these tests print `SKIPPED` and pass, except under `CI=true` where they fail: CI must
//! run them.
//!
//! Each test starts our `cobra run` on a free port with a fresh apps config, runs Python
//! commands against it with a deadline (the Python client retries forever on most errors,
//! so a broken server would otherwise hang the test), and kills everything on drop.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

mod common;

use cobra_server::config::AppsConfig;
use cobra_test_support::process::{Guard, Run, free_port, run_with_deadline, wait_listening};
use common::python_cobra;

const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);

/// The tests run against the Python reference server (`INTEROP_SERVER=reference`), not ours.
fn against_reference() -> bool {
    std::env::var("INTEROP_SERVER").is_ok_and(|v| v == "reference")
}

/// The server under test on a free port with a fresh default apps config, killed on drop.
///
/// Normally our `cobra run`. With `INTEROP_SERVER=reference` (and `redis-server` on the
/// PATH) it is the Python reference server instead: a check of these tests themselves,
/// since every assertion must hold against the original.
struct Server {
    _processes: Vec<Guard>,
    /// The Python `cobra` its client commands run.
    cobra: PathBuf,
    port: u16,
    config: AppsConfig,
    dir: tempfile::TempDir,
}

impl Server {
    /// `None` (after the skip policy said so) when the Python peer is not installed.
    fn start() -> Option<Server> {
        Server::start_with(&[])
    }

    /// [`Server::start`] with `extra` options for our `cobra run` (not for the reference).
    fn start_with(extra: &[&str]) -> Option<Server> {
        let python_cobra = &python_cobra()?;
        let dir = tempfile::tempdir().expect("tempdir");
        let config = AppsConfig::default_generated();
        // Where the server reads it, and where the Python client looks for its defaults.
        let config_path = dir.path().join(".cobra.yaml");
        std::fs::write(&config_path, config.to_yaml()).expect("write config");
        let port = free_port();
        let log_file = |name| std::fs::File::create(dir.path().join(name)).expect("log file");
        let mut processes = Vec::new();
        let reference = against_reference();
        let mut cmd = if reference {
            let redis_port = free_port();
            let mut redis = Command::new("redis-server");
            redis
                .args(["--port", &redis_port.to_string(), "--bind", "127.0.0.1"])
                .args(["--save", "", "--appendonly", "no"])
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            let mut redis = Guard(redis.spawn().expect("spawn redis-server"));
            wait_listening(&mut redis.0, redis_port, "redis-server", String::new);
            processes.push(redis);
            let mut cmd = common::command_in_home(python_cobra, dir.path());
            cmd.args(["run", "--host", "127.0.0.1", "--port", &port.to_string()])
                .arg("--redis_urls")
                .arg(format!("redis://127.0.0.1:{redis_port}"))
                .arg("--apps_config_path")
                .arg(&config_path);
            cmd
        } else {
            let mut cmd =
                common::command_in_home(Path::new(env!("CARGO_BIN_EXE_cobra")), dir.path());
            cmd.args(["run", "--host", "127.0.0.1", "--port", &port.to_string()])
                .arg("--apps-config")
                .arg(&config_path)
                .args(extra);
            // Over Redis when asked (scripts/test-redis.sh), each server in its own namespace.
            let redis = match common::test_backend() {
                common::TestBackend::Embedded => None,
                common::TestBackend::Nodes(urls) => Some(("--redis", urls)),
                common::TestBackend::Cluster(seeds) => Some(("--redis-cluster", seeds)),
            };
            if let Some((option, urls)) = redis {
                static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
                let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let namespace = format!("interop-{}-{port}-{n}", std::process::id());
                cmd.arg(option)
                    .arg(urls)
                    .env("COBRA_REDIS_NAMESPACE", namespace);
            }
            cmd
        };
        cmd.stdin(Stdio::null())
            .stdout(log_file("server.stdout"))
            .stderr(log_file("server.stderr"));
        let mut process = Guard(cmd.spawn().expect("spawn the server"));
        let log_dir = dir.path().to_owned();
        wait_listening(&mut process.0, port, "the server", move || {
            server_log(&log_dir)
        });
        processes.push(process);
        Some(Server {
            _processes: processes,
            cobra: python_cobra.to_owned(),
            port,
            config,
            dir,
        })
    }

    fn endpoint(&self) -> String {
        format!("ws://127.0.0.1:{}", self.port)
    }

    /// `--endpoint E --appkey A --rolename R --rolesecret S` for the default role of `appkey`.
    fn credentials(&self, appkey: &str) -> Vec<String> {
        let role_name = &appkey[1..];
        let role = self.config.app(appkey).and_then(|a| a.role(role_name));
        let secret = role.expect("default app").secret.clone();
        vec![
            "--endpoint".into(),
            self.endpoint(),
            "--appkey".into(),
            appkey.into(),
            "--rolename".into(),
            role_name.into(),
            "--rolesecret".into(),
            secret,
        ]
    }

    /// The Python `cobra` with `args`, HOME in the server's temp dir.
    fn python(&self, args: &[&str]) -> Command {
        let mut cmd = common::command_in_home(&self.cobra, self.dir.path());
        cmd.args(args);
        cmd
    }

    fn log(&self) -> String {
        server_log(self.dir.path())
    }

    /// Asserts `ok` about `run` (of `what`), showing its output and the server log otherwise.
    fn check(&self, run: &Run, ok: bool, what: &str) {
        assert!(ok, "{what}:\n{run}\n{}", self.log());
    }
}

/// What the server in `dir` printed, for failure messages.
fn server_log(dir: &Path) -> String {
    cobra_test_support::process::server_logs(dir, "server")
}

impl Server {
    /// Runs the Python client `command` with `appkey`'s default credentials and `extra` to
    /// completion; returns what it printed.
    fn run(&self, command: &str, extra: &[&str], appkey: &str) -> Run {
        let creds = self.credentials(appkey);
        let mut args: Vec<&str> = vec![command];
        args.extend(creds.iter().map(String::as_str));
        args.extend_from_slice(extra);
        run_with_deadline(self.python(&args), "", COMMAND_TIMEOUT)
    }

    /// `cobra publish --channel CHANNEL --path FILE --delay 0` with the `_pubsub` role; asserts
    /// it succeeded.
    fn publish(&self, channel: &str, path: &Path) {
        let path = path.to_str().expect("UTF-8 path");
        let args = ["--channel", channel, "--path", path, "--delay", "0"];
        let publish = self.run("publish", &args, "_pubsub");
        assert!(
            publish.success(),
            "cobra publish:\n{publish}\n{}",
            self.log()
        );
    }
}

/// Runs `program args` to completion, `HOME` at `home`.
fn run_in_home(program: &Path, home: &Path, args: &[&str]) -> Run {
    let mut cmd = common::command_in_home(program, home);
    cmd.args(args);
    run_with_deadline(cmd, "", COMMAND_TIMEOUT)
}

#[test]
fn python_peer_runs_and_shares_our_config_format() {
    let Some(cobra) = python_cobra() else { return };
    let home = tempfile::tempdir().unwrap();
    let version = run_in_home(&cobra, home.path(), &["--version"]);
    assert!(version.success(), "{version}");
    assert!(version.stdout.contains("2.9.137"), "{version}");

    // Their `cobra init` output loads in our config parser...
    let init = run_in_home(&cobra, home.path(), &["init"]);
    assert!(init.success(), "{init}");
    let theirs = std::fs::read_to_string(home.path().join(".cobra.yaml")).unwrap();
    let parsed = AppsConfig::from_yaml(&theirs).expect("the Python config parses");
    for appkey in ["_health", "_stats", "_admin", "_pubsub"] {
        let role = parsed.app(appkey).and_then(|a| a.role(&appkey[1..]));
        assert!(
            role.is_some_and(|r| r.permissions.allows("rtm/publish")),
            "{appkey}"
        );
    }

    // ...and ours gives the Python client its default credentials.
    let ours = AppsConfig::default_generated();
    let path = home.path().join("ours.yaml");
    std::fs::write(&path, ours.to_yaml()).unwrap();
    let python = cobra.with_file_name("python");
    let script = "import sys; from cobras.common.apps_config import AppsConfig; \
                  c = AppsConfig(sys.argv[1]); \
                  print(c.getDefaultRoleForApp('pubsub'), c.getDefaultSecretForApp('pubsub'))";
    let read = run_in_home(
        &python,
        home.path(),
        &["-c", script, path.to_str().expect("UTF-8 path")],
    );
    assert!(read.success(), "{read}");
    let secret = &ours.apps["_pubsub"].roles["pubsub"].secret;
    assert_eq!(read.stdout.trim(), format!("pubsub {secret}"), "{read}");
}

/// `cobra health EXTRA` against our server says it is healthy.
fn assert_python_health(extra: &[&str]) {
    let Some(server) = Server::start() else {
        return;
    };
    let run = server.run("health", extra, "_health");
    let healthy = run.stdout.contains("System is healthy") && !run.stdout.contains("unhealthy");
    server.check(
        &run,
        healthy,
        &format!("cobra health {extra:?} against our server"),
    );
}

#[test]
fn python_health_check_passes() {
    assert_python_health(&[]);
}

#[test]
fn python_health_check_with_http_check() {
    // `--http_extra_check` also GETs /health/ and wants exactly `OK\n`.
    assert_python_health(&["--http_extra_check"]);
}

#[test]
fn python_write_then_read() {
    let Some(server) = Server::start() else {
        return;
    };
    let write = server.run(
        "write",
        &["--channel", "kv_interop", "--data", "hello-from-python"],
        "_pubsub",
    );
    server.check(
        &write,
        write.success() && !write.stderr.contains("Action error"),
        "cobra write",
    );
    let read = server.run("read", &["--channel", "kv_interop"], "_pubsub");
    server.check(
        &read,
        read.success()
            && read
                .stdout
                .contains("handler received message hello-from-python"),
        "cobra read",
    );
    // A key never written reads as null (None in Python).
    let read = server.run("read", &["--channel", "kv_never_written"], "_pubsub");
    server.check(
        &read,
        read.success() && read.stdout.contains("handler received message None"),
        "cobra read of a missing key",
    );
}

#[test]
fn python_admin_get_connections() {
    let Some(server) = Server::start() else {
        return;
    };
    let run = server.run("admin", &["--action", "get_connections"], "_admin");
    // The admin client's own connection is open while it asks.
    let count = run.stdout.lines().find_map(|l| {
        l.strip_prefix('#')?
            .strip_suffix(" connection(s)")?
            .parse::<usize>()
            .ok()
    });
    server.check(
        &run,
        run.success() && count.is_some_and(|n| n >= 1),
        "cobra admin",
    );
}

#[test]
fn python_monitor_once_reads_our_stats() {
    let Some(server) = Server::start() else {
        return;
    };
    // --unsafe: fail instead of retrying forever if the stats PDU is not what it expects.
    let run = server.run("monitor", &["--once", "--unsafe"], "_stats");
    server.check(
        &run,
        run.success() && run.stdout.contains("Nodes") && run.stdout.contains("connections"),
        "cobra monitor --once",
    );
}

/// Lines of a running child's stderr, delivered through a channel.
fn stderr_lines(child: &mut Child) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    let stderr = child.stderr.take().expect("piped stderr");
    thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// A verbose Python subscriber (`-v subscribe`, `_pubsub` credentials, then `args`), killed on
/// drop, and its stderr lines: where it logs what it receives.
fn python_subscriber(server: &Server, args: &[&str]) -> (Guard, mpsc::Receiver<String>) {
    let mut cmd = server.python(&["-v", "subscribe"]);
    cmd.args(server.credentials("_pubsub"))
        .args(args)
        .arg("--disable_debug_memory")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut subscriber = Guard(cmd.spawn().expect("spawn python subscriber"));
    let rx = stderr_lines(&mut subscriber.0);
    (subscriber, rx)
}

/// Waits for the subscriber's `rtm/subscribe/ok`; fails with what it logged and the server log.
fn await_subscribed(server: &Server, rx: &mpsc::Receiver<String>) {
    let (lines, subscribed) = read_until(rx, COMMAND_TIMEOUT, |l| l.contains("rtm/subscribe/ok"));
    assert!(
        subscribed,
        "the Python subscriber never got rtm/subscribe/ok:\n{}\n{}",
        lines.join("\n"),
        server.log()
    );
}

/// Reads lines until `done` says so or the deadline passes; returns every line read and
/// whether `done` was reached.
fn read_until(
    rx: &mpsc::Receiver<String>,
    timeout: Duration,
    mut done: impl FnMut(&str) -> bool,
) -> (Vec<String>, bool) {
    let deadline = Instant::now() + timeout;
    let mut lines = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => {
                let finished = done(&line);
                lines.push(line);
                if finished {
                    return (lines, true);
                }
            }
            Err(_) => return (lines, false),
        }
    }
}

/// The `<position>` of a line `... at position <position>`.
fn logged_position(line: &str) -> Option<&str> {
    let (_, position) = line.rsplit_once(" at position ")?;
    Some(position.trim())
}

/// The value of the `'n': <int>` entry of a message the Python subscriber logged
/// (`{'data.fps': 12, 'n': 3} at position ...`).
fn logged_n(line: &str) -> Option<u64> {
    if !line.contains(" at position ") {
        return None;
    }
    let rest = &line[line.find("'n': ")? + 5..];
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

#[test]
fn python_publish_and_filtered_subscribe() {
    let Some(server) = Server::start() else {
        return;
    };
    let channel = "interop_fps";

    // Subscriber first (no position: only new messages), verbose so messages reach stderr.
    let sql = format!("select data.fps,n from `{channel}` where data.fps < 30");
    let (_subscriber, rx) =
        python_subscriber(&server, &["--channel", channel, "--stream_sql", &sql]);
    await_subscribed(&server, &rx);

    // 12 events, fps 20..=31 cycling, n = 0..; the last (n = 99) also matches: once it
    // arrives, everything published before it has been delivered or filtered out.
    let mut events: Vec<(u64, u64)> = (0..12)
        .map(|n| (n, [20, 35, 29, 30, 31, 5][n as usize % 6]))
        .collect();
    events.push((99, 1));
    let path = write_events(server.dir.path(), "events.jsonl", &events);
    server.publish(channel, &path);

    let (lines, complete) = read_until(&rx, COMMAND_TIMEOUT, |l| logged_n(l) == Some(99));
    let received: Vec<u64> = lines.iter().filter_map(|l| logged_n(l)).collect();
    let expected: Vec<u64> = events
        .iter()
        .filter(|(_, fps)| *fps < 30)
        .map(|(n, _)| *n)
        .collect();
    assert!(
        complete && received == expected,
        "filtered subscribe: expected n = {expected:?}, got {received:?}\n--- subscriber stderr\n{}\n{}",
        lines.join("\n"),
        server.log()
    );
    // The projection keeps only the selected fields, keyed as written.
    let first = lines
        .iter()
        .find(|l| logged_n(l).is_some())
        .cloned()
        .unwrap_or_default();
    assert!(
        first.contains("'data.fps': 20") && !first.contains("'device'"),
        "projection as the reference does it ({{'data.fps': 20, 'n': 0}}): {first}"
    );
}

/// Events `{"n": n, ...}` as a JSONL file for `cobra publish` (each line needs a numeric
/// `timestamp`; equal ones mean no pause between lines).
fn write_events(dir: &Path, name: &str, events: &[(u64, u64)]) -> PathBuf {
    let jsonl: String = events
        .iter()
        .map(|(n, fps)| {
            format!(
                "{{\"id\":\"engine_fps_id\",\"timestamp\":1536270895637,\"n\":{n},\"device\":{{\"game\":\"wiso\"}},\"data\":{{\"fps\":{fps}}}}}\n"
            )
        })
        .collect();
    let path = dir.join(name);
    std::fs::write(&path, jsonl).unwrap();
    path
}

#[test]
fn python_subscribe_from_position_with_batches() {
    let Some(server) = Server::start() else {
        return;
    };
    let channel = "interop_history";
    let reference = against_reference();

    // Published before anyone subscribes: only history can deliver them.
    let events: Vec<(u64, u64)> = (0..7).map(|n| (n, 60)).collect();
    let path = write_events(server.dir.path(), "history.jsonl", &events);
    server.publish(channel, &path);

    let (_subscriber, rx) = python_subscriber(
        &server,
        &[
            "--channel",
            channel,
            "--position",
            "0-0",
            "--batch_size",
            "3",
        ],
    );
    // The reference holds a partial batch forever: it only ever sends the first 6. Ours
    // flushes the 7th after a short delay.
    let last = if reference { 5 } else { 6 };
    let (lines, complete) = read_until(&rx, COMMAND_TIMEOUT, |l| logged_n(l) == Some(last));
    let received: Vec<(u64, &str)> = lines
        .iter()
        .filter_map(|l| Some((logged_n(l)?, logged_position(l)?)))
        .collect();
    let ns: Vec<u64> = received.iter().map(|(n, _)| *n).collect();
    assert!(
        complete && ns == (0..=last).collect::<Vec<_>>(),
        "subscribe from 0-0 with batch_size 3: got n = {ns:?}\n--- subscriber stderr\n{}\n{}",
        lines.join("\n"),
        server.log()
    );
    // Each batch's messages share the batch's position (the last one's): 3 + 3 (+ 1).
    let mut sizes: Vec<usize> = Vec::new();
    for (i, (_, position)) in received.iter().enumerate() {
        if i > 0 && received[i - 1].1 == *position {
            *sizes.last_mut().unwrap() += 1;
        } else {
            sizes.push(1);
        }
    }
    let expected_sizes = if reference { vec![3, 3] } else { vec![3, 3, 1] };
    assert_eq!(sizes, expected_sizes, "batches: {received:?}");
}

/// The `connection_id` in a logged `auth/handshake/ok` (`'connection_id': 'abc'`).
fn logged_connection_id(line: &str) -> Option<String> {
    if !line.contains("auth/handshake/ok") {
        return None;
    }
    let rest = &line[line.find("'connection_id': '")? + "'connection_id': '".len()..];
    Some(rest[..rest.find('\'')?].to_owned())
}

#[test]
fn python_admin_disconnects_a_connection() {
    let Some(server) = Server::start() else {
        return;
    };

    // A subscriber that reconnects by itself when dropped (the client's retry loop).
    let (_subscriber, rx) = python_subscriber(&server, &["--channel", "interop_admin"]);
    let mut first_id = None;
    let (lines, subscribed) = read_until(&rx, COMMAND_TIMEOUT, |l| {
        first_id = first_id.take().or_else(|| logged_connection_id(l));
        l.contains("rtm/subscribe/ok")
    });
    let first_id = first_id.unwrap_or_default();
    assert!(
        subscribed && !first_id.is_empty(),
        "subscriber not up:\n{}\n{}",
        lines.join("\n"),
        server.log()
    );

    let run = server.run(
        "admin",
        &["--action", "disconnect", "--connection_id", &first_id],
        "_admin",
    );
    server.check(&run, run.success(), "cobra admin --action disconnect");

    // Dropped, it comes back as a new connection.
    let mut second_id = None;
    let (lines, reconnected) = read_until(&rx, COMMAND_TIMEOUT, |l| {
        second_id = second_id.take().or_else(|| logged_connection_id(l));
        second_id.is_some() && l.contains("rtm/subscribe/ok")
    });
    let second_id = second_id.unwrap_or_default();
    assert!(
        reconnected && second_id != first_id,
        "the subscriber was not disconnected (or did not come back):\n{}\n{}",
        lines.join("\n"),
        server.log()
    );
    let run = server.run("admin", &["--action", "get_connections"], "_admin");
    assert!(
        run.success() && run.stdout.contains(&second_id) && !run.stdout.contains(&first_id),
        "after the disconnect, {first_id} must be gone and {second_id} listed:\n{run}\n{}",
        server.log()
    );
}

/// The original Python client subscribes with an aggregate statement: it sees only rows, as
/// ordinary messages (our server only: the reference has no aggregation).
#[test]
fn python_subscriber_receives_aggregate_rows() {
    if against_reference() {
        eprintln!("SKIPPED: the reference server has no aggregation");
        return;
    }
    let Some(server) = Server::start() else {
        return;
    };
    let channel = "interop_agg";
    let sql = format!(
        "SELECT device.model, COUNT(*), AVG(data.fps) AS fps FROM `{channel}` \
         GROUP BY device.model WINDOW TUMBLING (10 MINUTES) GRACE 2 MINUTES"
    );
    let (_subscriber, rx) =
        python_subscriber(&server, &["--channel", channel, "--stream_sql", &sql]);
    await_subscribed(&server, &rx);

    // Minutes apart: window [0, 10 min) closes when the 12-minute event arrives.
    let minute = 60_000;
    let jsonl: String = [("iPhone", 60, minute), ("iPad", 30, 2 * minute), ("iPhone", 50, 3 * minute), ("iPad", 40, 12 * minute)]
        .iter()
        .map(|(model, fps, ts)| {
            format!("{{\"id\":\"engine_fps_id\",\"timestamp\":{ts},\"device\":{{\"model\":\"{model}\"}},\"data\":{{\"fps\":{fps}}}}}\n")
        })
        .collect();
    let path = server.dir.path().join("agg.jsonl");
    std::fs::write(&path, jsonl).unwrap();
    // Published with our `cobra publish`: the Python one replays at the pace of the timestamps.
    let creds = server.credentials("_pubsub");
    let mut publish =
        common::command_in_home(Path::new(env!("CARGO_BIN_EXE_cobra")), server.dir.path());
    publish
        .arg("publish")
        .args(&creds)
        .args(["--channel", channel])
        .arg(&path);
    let published = run_with_deadline(publish, "", COMMAND_TIMEOUT);
    assert!(published.success(), "cobra publish: {published:?}");

    let (lines, complete) = read_until(&rx, COMMAND_TIMEOUT, |l| {
        l.contains("'device.model': 'iPad'") && l.contains(" at position ")
    });
    let rows: Vec<&String> = lines
        .iter()
        .filter(|l| l.contains("'window_start'"))
        .collect();
    assert!(
        complete && rows.len() == 2,
        "expected the two rows of [0, 10 min):\n{}\n{}",
        lines.join("\n"),
        server.log()
    );
    assert!(
        rows[0].contains("'window_start': 0, 'window_end': 600000, 'device.model': 'iPhone', 'count': 2, 'fps': 55")
            && rows[1].contains("'device.model': 'iPad', 'count': 1, 'fps': 30, 'late': 0, 'skipped': 0, 'final': True"),
        "{rows:?}"
    );
}

/// Issue 23: the Python subscriber stopped (SIGSTOP) while 20 MB are published, far more than
/// its connection's queue and socket buffers hold, then resumed (SIGCONT): it catches up from
/// history and sees only data, all of it, in order, once.
#[test]
fn python_subscriber_stopped_then_resumed_sees_only_data_all_of_it() {
    use nix::sys::signal::{Signal, kill};
    use nix::unistd::Pid;

    const COUNT: u64 = 2_000;
    let reference = against_reference();
    let extra = [
        "--outbound-queue-bytes",
        "65536",
        "--channel-max-length",
        "100000",
    ];
    let Some(server) = Server::start_with(&extra) else {
        return;
    };
    let channel = "interop_stopped";
    let (subscriber, rx) = python_subscriber(&server, &["--channel", channel]);
    await_subscribed(&server, &rx);
    let pid = Pid::from_raw(i32::try_from(subscriber.0.id()).expect("pid"));
    kill(pid, Signal::SIGSTOP).expect("SIGSTOP the subscriber");

    // 2,000 events of ~10 KB, published while it is stopped.
    let pad = "x".repeat(10_000);
    let jsonl: String = (0..COUNT)
        .map(|n| format!("{{\"timestamp\": 0, \"n\": {n}, \"pad\": \"{pad}\"}}\n"))
        .collect();
    let path = server.dir.path().join("big.jsonl");
    std::fs::write(&path, jsonl).expect("write events");
    server.publish(channel, &path);
    if !reference {
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], server.port));
        let (status, _, body) = cobra_test_support::client::http_get(addr, "/metrics", "");
        assert_eq!(status, 200);
        let started: u64 = body
            .lines()
            .find_map(|l| l.strip_prefix("cobra_catchup_started_total ")?.parse().ok())
            .unwrap_or(0);
        assert!(started > 0, "the stopped subscriber fell behind:\n{body}");
    }
    kill(pid, Signal::SIGCONT).expect("SIGCONT the subscriber");

    let (lines, complete) = read_until(&rx, Duration::from_secs(120), |l| {
        logged_n(l) == Some(COUNT - 1)
    });
    let received: Vec<u64> = lines.iter().filter_map(|l| logged_n(l)).collect();
    let tail = || lines[lines.len().saturating_sub(20)..].join("\n");
    assert!(
        complete && received == (0..COUNT).collect::<Vec<_>>(),
        "expected n = 0..{COUNT} once in order, got {} messages\n--- last subscriber lines\n{}\n{}",
        received.len(),
        tail(),
        server.log()
    );
    for notice in [
        "subscription/info",
        "subscription/error",
        "out_of_sync",
        "fast_forward",
    ] {
        assert!(
            !lines.iter().any(|l| l.contains(notice)),
            "only data: {notice}\n{}",
            tail()
        );
    }
}
