//! The client commands of the `cobra` binary against a real `cobra run` server, over real sockets.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use cobra_server::broker::standin::config::{App, AppsConfig, Permissions, Role};
use cobra_server::broker::standin::options::{Limits, ServerSettings};
use cobra_server::net::ServerHandle;
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_cobra");
const PUBSUB_SECRET: &str = "0123456789abcdef0123456789abcdef";
const HEALTH_SECRET: &str = "fedcba9876543210fedcba9876543210";

/// A cobra server on a free loopback port (in-process; stopped on drop), plus an apps config file holding the
/// same credentials for the client commands to default from.
struct Server {
    handle: ServerHandle,
    port: u16,
    dir: tempfile::TempDir,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

const ALL: [&str; 7] = ["subscribe", "unsubscribe", "publish", "admin", "read", "write", "delete"];

impl Server {
    fn start() -> Server {
        let dir = tempfile::tempdir().unwrap();
        let all = format!("[{}]", ALL.join(", "));
        std::fs::write(
            dir.path().join("apps.yaml"),
            format!(
                "apps:\n  _pubsub:\n    roles:\n      pubsub:\n        secret: {PUBSUB_SECRET}\n        permissions: {all}\n\
                 \x20 _health:\n    roles:\n      health:\n        secret: {HEALTH_SECRET}\n        permissions: {all}\n"
            ),
        )
        .unwrap();
        let mut apps = AppsConfig { channel_max_length: 1000, ..Default::default() };
        for (appkey, role, secret) in [("_pubsub", "pubsub", PUBSUB_SECRET), ("_health", "health", HEALTH_SECRET)] {
            let mut app = App::default();
            let permissions = Permissions(ALL.iter().map(|p| p.to_string()).collect());
            app.roles.insert(role.into(), Role { secret: secret.into(), permissions });
            apps.apps.insert(appkey.into(), app);
        }
        let settings = ServerSettings {
            addr: "127.0.0.1:0".parse().unwrap(),
            redis_urls: vec![],
            redis_password: None,
            channel_max_length: None,
            verbose: false,
            tls: None,
            limits: Limits::default(),
        };
        let handle = cobra_server::net::Server::start(settings, apps).unwrap();
        let port = handle.local_addr().port();
        Server { handle, port, dir }
    }

    fn log(&self) -> String {
        format!("(server on port {}, {} connections)", self.port, self.handle.broker().connection_count())
    }

    fn config(&self) -> PathBuf {
        self.dir.path().join("apps.yaml")
    }

    /// A `cobra` command with this server as the default endpoint and its config as the default credentials.
    fn cobra(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(BIN);
        cmd.args(args)
            .env("COBRA_PORT", self.port.to_string())
            .env("COBRA_APPS_CONFIG", self.config())
            .env("HOME", self.dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd
    }

    fn endpoint(&self) -> String {
        format!("ws://127.0.0.1:{}", self.port)
    }
}

struct Output {
    status: ExitStatus,
    stdout: String,
    stderr: String,
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
    let out = run(
        server.cobra(&[
            "publish",
            "--channel",
            channel,
            "--endpoint",
            &server.endpoint(),
            file.to_str().unwrap(),
        ]),
        None,
        LIMIT,
    );
    assert!(out.status.success(), "publish failed: {}", out.stderr);
    assert!(
        out.stderr.contains("published 20 messages"),
        "{}",
        out.stderr
    );

    let sql = format!("select n from `{channel}` where device.game = 'test'");
    let out = run(
        server.cobra(&[
            "subscribe",
            "--stream-sql",
            &sql,
            "--position",
            "0-0",
            "--count",
            "10",
        ]),
        None,
        LIMIT,
    );
    assert!(out.status.success(), "subscribe failed: {}", out.stderr);
    let got: Vec<Value> = out
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let expected: Vec<Value> = (0..20).step_by(2).map(|n| json!({"n": n})).collect();
    assert_eq!(got, expected);
}

#[test]
fn publish_from_stdin_and_underscore_spellings() {
    let server = Server::start();
    let input: String = (0..5).map(|n| format!("{{\"n\": {n}}}\n")).collect();
    let out = run(
        server.cobra(&["publish", "--channel", "cli_stdin", "-"]),
        Some(&input),
        LIMIT,
    );
    assert!(out.status.success(), "publish failed: {}", out.stderr);

    let out = run(
        server.cobra(&[
            "subscribe",
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
        ]),
        None,
        LIMIT,
    );
    assert!(out.status.success(), "subscribe failed: {}", out.stderr);
    let got: Vec<Value> = out
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
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
    let out = run(server.cobra(&["health"]), None, LIMIT);
    assert!(
        out.status.success(),
        "health failed: {}\n{}",
        out.stderr,
        server.log()
    );
    assert_eq!(out.stdout.trim(), "healthy");
    // Explicit credentials, the Python client's spelling.
    let out = run(
        server.cobra(&[
            "health",
            "--endpoint",
            &server.endpoint(),
            "--appkey",
            "_health",
            "--rolename",
            "health",
            "--rolesecret",
            HEALTH_SECRET,
        ]),
        None,
        LIMIT,
    );
    assert!(out.status.success(), "health failed: {}", out.stderr);
}

#[test]
fn health_names_the_failing_step_with_a_wrong_secret() {
    let server = Server::start();
    let out = run(
        server.cobra(&["health", "--rolesecret", "wrong"]),
        None,
        LIMIT,
    );
    assert_eq!(out.status.code(), Some(1), "{}", out.stderr);
    assert!(
        out.stderr.contains("step 'authenticate' failed"),
        "{}",
        out.stderr
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
    let out = run(cmd, None, LIMIT);
    assert_eq!(out.status.code(), Some(1), "{}", out.stderr);
    assert!(
        out.stderr.contains("step 'connect' failed"),
        "{}",
        out.stderr
    );
}

#[test]
fn write_read_delete() {
    let server = Server::start();
    let value = json!({"a": [1, 2, {"b": "c"}]});
    let out = run(
        server.cobra(&["write", "--channel", "k", &value.to_string()]),
        None,
        LIMIT,
    );
    assert!(out.status.success(), "write failed: {}", out.stderr);
    let out = run(server.cobra(&["read", "--channel", "k"]), None, LIMIT);
    assert!(out.status.success(), "read failed: {}", out.stderr);
    assert_eq!(
        serde_json::from_str::<Value>(out.stdout.trim()).unwrap(),
        value
    );
    let out = run(server.cobra(&["delete", "--channel", "k"]), None, LIMIT);
    assert!(out.status.success(), "delete failed: {}", out.stderr);
    let out = run(server.cobra(&["read", "--channel", "k"]), None, LIMIT);
    assert_eq!(out.stdout.trim(), "null");
    // The value may come from stdin; invalid JSON is refused before connecting.
    let out = run(
        server.cobra(&["write", "--channel", "k"]),
        Some("[1,2]"),
        LIMIT,
    );
    assert!(out.status.success(), "write failed: {}", out.stderr);
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

    let out = run(
        server.cobra(&["publish", "--channel", "cli_live"]),
        Some("{\"live\": true}\n"),
        LIMIT,
    );
    assert!(out.status.success(), "publish failed: {}", out.stderr);
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
