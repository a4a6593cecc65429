//! The client commands of the `cobra` binary against a real `cobra run` server, over real sockets.

use cobra_test_support::free_port;
use cobra_test_support::process::{Guard, Redis, clean_command, wait_listening};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_cobra");
const PUBSUB_SECRET: &str = "0123456789abcdef0123456789abcdef";
const HEALTH_SECRET: &str = "fedcba9876543210fedcba9876543210";

/// The server under test on a free loopback port (killed on drop), with an apps config file
/// holding the credentials the client commands default from: our `cobra run`, or the Python
/// reference ([`Server::reference`]).
struct Server {
    process: Guard,
    /// The reference's store; dropped after the server (fields drop in order).
    _redis: Option<Redis>,
    port: u16,
    dir: tempfile::TempDir,
}

const ALL: [&str; 7] = [
    "subscribe",
    "unsubscribe",
    "publish",
    "admin",
    "read",
    "write",
    "delete",
];

impl Server {
    fn start() -> Server {
        let dir = tempfile::tempdir().unwrap();
        write_apps_config(dir.path());
        let port = free_port();
        let mut cmd = clean_command(Path::new(BIN));
        cmd.args([
            "run",
            "--host",
            "127.0.0.1",
            "--port",
            &port.to_string(),
            "--apps-config",
        ])
        .arg(dir.path().join("apps.yaml"));
        let mut server = Server::spawn(cmd, port, dir, None);
        server.wait_ready();
        server
    }

    /// Spawns `cmd`, the server to listen on `port`, logging into `dir/server.log`.
    fn spawn(mut cmd: Command, port: u16, dir: tempfile::TempDir, redis: Option<Redis>) -> Server {
        let log = std::fs::File::create(dir.path().join("server.log")).unwrap();
        cmd.env("HOME", dir.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        Server {
            process: Guard(cmd.spawn().expect("spawn the server")),
            _redis: redis,
            port,
            dir,
        }
    }

    /// The original Python `cobras` server (over a private `redis-server`), for wire
    /// compatibility of the client commands with the reference. `None` (saying so) when the
    /// peer is not installed; required under `CI=true`.
    fn reference() -> Option<Server> {
        let python = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.tools/cobras-venv/bin/cobra");
        let redis_ok = Command::new("redis-server")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success());
        if !python.exists() || !redis_ok {
            cobra_test_support::skip(&format!(
                "Python cobras at {} or redis-server missing: run scripts/install-peers.sh",
                python.display()
            ));
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        write_apps_config(dir.path());
        let redis = Redis::start(Path::new("redis-server"), dir.path());
        let port = free_port();
        let mut cmd = clean_command(&python);
        cmd.args(["run", "--host", "127.0.0.1", "--port", &port.to_string()])
            .arg("--redis_urls")
            .arg(redis.url())
            .arg("--apps_config_path")
            .arg(dir.path().join("apps.yaml"));
        let mut server = Server::spawn(cmd, port, dir, Some(redis));
        let log_dir = server.dir.path().to_owned();
        wait_listening(
            &mut server.process.0,
            port,
            "the reference server",
            move || std::fs::read_to_string(log_dir.join("server.log")).unwrap_or_default(),
        );
        Some(server)
    }

    /// Polls `GET /health/` until it answers 200.
    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", self.port)) {
                let _ = s.write_all(
                    b"GET /health/ HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
                );
                let mut answer = String::new();
                let _ = s.read_to_string(&mut answer);
                if answer.starts_with("HTTP/1.1 200") {
                    return;
                }
            }
            if let Ok(Some(status)) = self.process.0.try_wait() {
                panic!("cobra run exited with {status}: {}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "cobra run not ready: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    /// A `cobra` command with this server as the default endpoint and its config as the default credentials.
    fn cobra(&self, args: &[&str]) -> Command {
        cobra_cmd(self.port, self.dir.path(), args)
    }

    /// Runs `cobra ARGS` (see [`run`]) with `stdin` and asserts it succeeded.
    fn run_ok(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let out = run(self.cobra(args), stdin, LIMIT);
        assert!(
            out.status.success(),
            "cobra {} failed: {}\n{}",
            args.join(" "),
            out.stderr,
            self.log()
        );
        out
    }

    /// The messages `cobra subscribe ARGS` printed, one JSON value a line; it must succeed.
    fn subscribe_json(&self, args: &[&str]) -> Vec<Value> {
        let args = [&["subscribe"], args].concat();
        let out = self.run_ok(&args, None);
        out.stdout
            .lines()
            .map(|l| serde_json::from_str(l).expect("a JSON line"))
            .collect()
    }

    fn endpoint(&self) -> String {
        format!("ws://127.0.0.1:{}", self.port)
    }
}

/// A `cobra` command whose default endpoint is `ws://127.0.0.1:port` and whose default credentials come
/// from `dir/apps.yaml`, with no other `COBRA_*` variable inherited.
fn cobra_cmd(port: u16, dir: &std::path::Path, args: &[&str]) -> Command {
    let mut cmd = clean_command(Path::new(BIN));
    cmd.args(args)
        .env("COBRA_PORT", port.to_string())
        .env("COBRA_APPS_CONFIG", dir.join("apps.yaml"))
        .env("HOME", dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// The apps config both servers and the client commands read.
fn write_apps_config(dir: &std::path::Path) {
    let all = format!("[{}]", ALL.join(", "));
    std::fs::write(
        dir.join("apps.yaml"),
        format!(
            "apps:\n  _pubsub:\n    roles:\n      pubsub:\n        secret: {PUBSUB_SECRET}\n        permissions: {all}\n\
             \x20 _health:\n    roles:\n      health:\n        secret: {HEALTH_SECRET}\n        permissions: {all}\n"
        ),
    )
    .unwrap();
}

struct Output {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

/// `cmd` (a `health`) exits 1 naming the failed `step`.
fn health_fails_at(cmd: Command, step: &str) {
    let out = run(cmd, None, LIMIT);
    assert_eq!(out.status.code(), Some(1), "{}", out.stderr);
    assert!(
        out.stderr.contains(&format!("step '{step}' failed")),
        "{}",
        out.stderr
    );
}

/// Runs the command to completion, killing it (and failing) past `limit`.
fn run(mut cmd: Command, stdin: Option<&str>, limit: Duration) -> Output {
    if stdin.is_some() {
        cmd.stdin(Stdio::piped());
    }
    let mut child = cmd.spawn().unwrap();
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().unwrap();
        pipe.write_all(input.as_bytes()).unwrap();
    }
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let out_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "command did not finish within {limit:?}; stderr: {}",
                err_reader.join().unwrap()
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Output {
        status,
        stdout: out_reader.join().unwrap(),
        stderr: err_reader.join().unwrap(),
    }
}

const LIMIT: Duration = Duration::from_secs(30);

#[test]
fn publish_a_file_then_subscribe_from_the_start_with_a_filter() {
    let server = Server::start();
    let channel = "cli_publish_file";
    let file = server.dir.path().join("events.jsonl");
    let mut lines = String::new();
    for n in 0..20 {
        let game = if n % 2 == 0 { "test" } else { "other" };
        lines.push_str(&json!({"n": n, "device": {"game": game}}).to_string());
        lines.push_str("\n\n"); // blank lines are skipped
    }
    std::fs::write(&file, lines).unwrap();
    let out = server.run_ok(
        &[
            "publish",
            "--channel",
            channel,
            "--endpoint",
            &server.endpoint(),
            file.to_str().unwrap(),
        ],
        None,
    );
    assert!(
        out.stderr.contains("published 20 messages"),
        "{}",
        out.stderr
    );

    let sql = format!("select n from `{channel}` where device.game = 'test'");
    let got = server.subscribe_json(&["--stream-sql", &sql, "--position", "0-0", "--count", "10"]);
    let expected: Vec<Value> = (0..20).step_by(2).map(|n| json!({"n": n})).collect();
    assert_eq!(got, expected);
}

#[test]
fn publish_from_stdin_and_underscore_spellings() {
    let server = Server::start();
    let input: String = (0..5).map(|n| format!("{{\"n\": {n}}}\n")).collect();
    server.run_ok(&["publish", "--channel", "cli_stdin", "-"], Some(&input));

    let got = server.subscribe_json(&[
        "--channel",
        "cli_stdin",
        "--stream_sql",
        "select n from `cli_stdin` where n >= 1",
        "--batch_size",
        "2",
        "--position",
        "0-0",
        "--count",
        "4",
    ]);
    assert_eq!(got, (1..5).map(|n| json!({"n": n})).collect::<Vec<_>>());
}

#[test]
fn publish_refuses_a_line_that_is_not_json() {
    let server = Server::start();
    let out = run(
        server.cobra(&["publish", "--channel", "c"]),
        Some("{\"ok\": 1}\nnot json\n"),
        LIMIT,
    );
    assert_eq!(out.status.code(), Some(2), "{}", out.stderr);
    assert!(out.stderr.contains("line 2 is not JSON"), "{}", out.stderr);
}

#[test]
fn health_passes_against_a_healthy_server() {
    let server = Server::start();
    let out = server.run_ok(&["health"], None);
    assert_eq!(out.stdout.trim(), "healthy");
    // Explicit credentials, the Python client's spelling.
    server.run_ok(
        &[
            "health",
            "--endpoint",
            &server.endpoint(),
            "--appkey",
            "_health",
            "--rolename",
            "health",
            "--rolesecret",
            HEALTH_SECRET,
        ],
        None,
    );
}

#[test]
fn health_names_the_failing_step_with_a_wrong_secret() {
    let server = Server::start();
    health_fails_at(
        server.cobra(&["health", "--rolesecret", "wrong"]),
        "authenticate",
    );
}

#[test]
fn health_names_the_connect_step_when_no_server_listens() {
    let dir = tempfile::tempdir().unwrap();
    let endpoint = format!("ws://127.0.0.1:{}", free_port());
    let mut cmd = Command::new(BIN);
    cmd.args([
        "health",
        "--endpoint",
        &endpoint,
        "--rolename",
        "r",
        "--rolesecret",
        "s",
        "--timeout",
        "1",
    ])
    .env("HOME", dir.path())
    .env_remove("COBRA_APPS_CONFIG")
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    health_fails_at(cmd, "connect");
}

#[test]
fn write_read_delete() {
    let server = Server::start();
    let value = json!({"a": [1, 2, {"b": "c"}]});
    server.run_ok(&["write", "--channel", "k", &value.to_string()], None);
    let out = server.run_ok(&["read", "--channel", "k"], None);
    assert_eq!(
        serde_json::from_str::<Value>(out.stdout.trim()).unwrap(),
        value
    );
    server.run_ok(&["delete", "--channel", "k"], None);
    let out = run(server.cobra(&["read", "--channel", "k"]), None, LIMIT);
    assert_eq!(out.stdout.trim(), "null");
    // The value may come from stdin; invalid JSON is refused before connecting.
    server.run_ok(&["write", "--channel", "k"], Some("[1,2]"));
    let out = run(
        server.cobra(&["write", "--channel", "k", "{oops"]),
        None,
        LIMIT,
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stderr.contains("not JSON"), "{}", out.stderr);
}

#[test]
fn subscribe_prints_live_messages_and_stops_on_sigint() {
    let server = Server::start();
    let mut child = server
        .cobra(&["subscribe", "--channel", "cli_live"])
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    stderr.read_line(&mut line).unwrap();
    assert!(line.starts_with("subscribed to cli_live"), "{line}");

    server.run_ok(
        &["publish", "--channel", "cli_live"],
        Some("{\"live\": true}\n"),
    );
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut got = String::new();
    stdout.read_line(&mut got).unwrap();
    assert_eq!(
        serde_json::from_str::<Value>(&got).unwrap(),
        json!({"live": true})
    );

    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + LIMIT;
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "subscribe ignored SIGINT");
        std::thread::sleep(Duration::from_millis(10));
    };
    assert!(status.success(), "{status}");
}

/// Spawns `cobra subscribe` with `args` and returns once it reports its subscription.
fn spawn_subscriber(
    server: &Server,
    args: &[&str],
) -> (std::process::Child, BufReader<std::process::ChildStdout>) {
    let mut full = vec!["subscribe"];
    full.extend_from_slice(args);
    let mut child = server.cobra(&full).spawn().unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    stderr.read_line(&mut line).unwrap();
    assert!(line.starts_with("subscribed to"), "{line}");
    let stdout = BufReader::new(child.stdout.take().unwrap());
    (child, stdout)
}

/// The SDK's metrics publisher through a real `cobra::Client` to the real server, read back by the CLI.
#[test]
fn metrics_publisher_events_reach_both_channels() {
    use cobra::metrics::{MetricsPublisher, PushOutcome};
    let server = Server::start();
    let (mut by_id, by_id_out) =
        spawn_subscriber(&server, &["--channel", "engine_fps_id", "--count", "3"]);
    let sql = "select per_id_counter,data.fps from `sms_metrics` where id = 'engine_fps_id'";
    let (mut filtered, filtered_out) =
        spawn_subscriber(&server, &["--stream-sql", sql, "--count", "3"]);

    let config = cobra::Config::new(server.endpoint(), "_pubsub", "pubsub", PUBSUB_SECRET);
    let client = cobra::Client::new(config, None).unwrap();
    let events = client.events();
    client.connect().unwrap();
    let metrics = MetricsPublisher::new(client.clone(), "sms_metrics");
    let mut device = serde_json::Map::new();
    device.insert("game".into(), json!("wiso"));
    metrics.set_device_attributes(device);
    metrics.set_session("0123456789abcdef0123456789abcdef");
    metrics.set_rate_control([("engine_mem_id", 3600.0)]);
    metrics.set_blacklist(["engine_secret_id"]);
    let mut ids = Vec::new();
    for fps in [30, 29, 28] {
        match metrics.push("engine_fps_id", &json!({"fps": fps})).unwrap() {
            PushOutcome::Published { publish_id } => ids.push(publish_id),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(
        metrics.push("engine_secret_id", &json!({})).unwrap(),
        PushOutcome::Blacklisted
    );
    assert!(matches!(
        metrics.push("engine_mem_id", &json!({})).unwrap(),
        PushOutcome::Published { .. }
    ));
    assert_eq!(
        metrics.push("engine_mem_id", &json!({})).unwrap(),
        PushOutcome::RateLimited
    );
    let deadline = Instant::now() + LIMIT;
    while !ids.is_empty() {
        match events
            .recv_deadline(deadline)
            .expect("acks within the limit")
        {
            cobra::Event::Published { id } => ids.retain(|&i| i != id),
            cobra::Event::PublishDropped { id, reason } => panic!("publish {id} dropped: {reason}"),
            _ => {}
        }
    }

    let envelopes: Vec<Value> = by_id_out
        .lines()
        .take(3)
        .map(|l| serde_json::from_str(&l.unwrap()).unwrap())
        .collect();
    for (i, e) in envelopes.iter().enumerate() {
        assert_eq!(e["id"], "engine_fps_id");
        assert_eq!(e["version"], 1);
        assert_eq!(e["session"], "0123456789abcdef0123456789abcdef");
        assert_eq!(e["device"], json!({"game": "wiso"}));
        assert_eq!(e["per_id_counter"], i + 1);
        assert_eq!(e["data"], json!({"fps": 30 - i}));
        assert!(
            e["timestamp"]
                .as_u64()
                .is_some_and(|t| t > 1_700_000_000_000)
        );
    }
    let projected: Vec<Value> = filtered_out
        .lines()
        .take(3)
        .map(|l| serde_json::from_str(&l.unwrap()).unwrap())
        .collect();
    assert_eq!(projected.len(), 3);
    for (i, p) in projected.iter().enumerate() {
        assert_eq!(p["per_id_counter"], i + 1, "{p}");
    }
    for child in [&mut by_id, &mut filtered] {
        assert!(child.wait().unwrap().success());
    }
    let stats = metrics.stats();
    assert_eq!(
        (stats.published, stats.blacklisted, stats.rate_limited),
        (4, 1, 1)
    );
}

/// The client commands against the Python reference server: health, publish + filtered subscribe from
/// `0-0`, write/read/delete.
#[test]
fn client_commands_work_against_the_python_reference_server() {
    let Some(server) = Server::reference() else {
        return;
    };
    server.run_ok(&["health"], None);

    let input: String = (0..6)
        .map(|n| format!("{{\"n\": {n}, \"device\": {{\"game\": \"g{}\"}}}}\n", n % 2))
        .collect();
    server.run_ok(&["publish", "--channel", "ref_events"], Some(&input));
    let sql = "select n from `ref_events` where device.game = 'g1'";
    let got = server.subscribe_json(&["--stream_sql", sql, "--position", "0-0", "--count", "3"]);
    assert_eq!(got, vec![json!({"n": 1}), json!({"n": 3}), json!({"n": 5})]);

    server.run_ok(&["write", "--channel", "ref_key", "{\"v\": [1, 2]}"], None);
    let out = run(server.cobra(&["read", "--channel", "ref_key"]), None, LIMIT);
    assert_eq!(
        serde_json::from_str::<Value>(out.stdout.trim()).unwrap(),
        json!({"v": [1, 2]}),
        "{}",
        out.stderr
    );
    server.run_ok(&["delete", "--channel", "ref_key"], None);
    let out = run(server.cobra(&["read", "--channel", "ref_key"]), None, LIMIT);
    assert_eq!(out.stdout.trim(), "null", "{}", out.stderr);

    health_fails_at(
        server.cobra(&["health", "--rolesecret", "wrong"]),
        "authenticate",
    );
}

/// A small in-flight window: publishing waits for acks as it goes, and nothing is lost or reordered.
#[test]
fn publish_flow_control_keeps_every_message() {
    let server = Server::start();
    let input: String = (0..300).map(|n| format!("{{\"n\": {n}}}\n")).collect();
    let out = server.run_ok(
        &["publish", "--channel", "cli_window", "--in_flight", "2"],
        Some(&input),
    );
    assert!(
        out.stderr.contains("published 300 messages"),
        "{}",
        out.stderr
    );
    let got = server.subscribe_json(&[
        "--channel",
        "cli_window",
        "--position",
        "0-0",
        "--count",
        "300",
    ]);
    assert_eq!(got, (0..300).map(|n| json!({"n": n})).collect::<Vec<_>>());
}
