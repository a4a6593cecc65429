//! `cobra run` as a process and its signals: SIGINT closes every client with 1001 and exits 0;
//! SIGTERM drains (readiness fails, upgrades refused, clients closed with 1012) and exits 0;
//! SIGUSR2 (`cobra drain`) drains without exiting; SIGHUP reloads the apps config (an invalid
//! file refused with a log line). Also `--log-format json` and `cobra config check`.

mod common;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{Client, SECRET, http_get};

/// Kills and reaps the server if the test fails before it exits by itself.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A `cobra run` child; its stderr (the log) comes line by line through `log`.
struct Running {
    guard: Guard,
    addr: SocketAddr,
    secret: String,
    log: mpsc::Receiver<String>,
}

/// Starts `cobra run --port 0 ARGS` in `home` (where a first run creates its config); returns
/// the address it prints and the `_pubsub` secret it printed (if it created the config).
fn spawn_server(home: &Path, args: &[&str]) -> Running {
    let mut cmd = cobra_test_support::process::clean_command(std::path::Path::new(env!(
        "CARGO_BIN_EXE_cobra"
    )));
    cmd.env_remove("RUST_LOG");
    let child = cmd
        .args(["run", "--host", "127.0.0.1", "--port", "0"])
        .args(args)
        .env("HOME", home)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn cobra run");
    let mut guard = Guard(child);
    let stderr = guard.0.stderr.take().unwrap();
    let (tx, log) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let stdout = guard.0.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let mut secret = String::new();
    let deadline = Instant::now() + common::WAIT;
    loop {
        assert!(
            Instant::now() < deadline,
            "server did not announce its address"
        );
        let line = lines.next().expect("server stdout open").unwrap();
        if let Some(rest) = line.split("secret `").nth(1) {
            secret = rest.trim_end_matches('`').to_owned();
        }
        if let Some(rest) = line.split("ws://").nth(1) {
            let addr = rest.split_whitespace().next().unwrap().parse().unwrap();
            return Running {
                guard,
                addr,
                secret,
                log,
            };
        }
    }
}

impl Running {
    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args(["-s", signal, &self.guard.0.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits for a log line containing every one of `words`; returns it.
    fn log_line(&self, words: &[&str]) -> String {
        let deadline = Instant::now() + common::WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self
                .log
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("no log line with {words:?}"));
            if words.iter().all(|w| line.contains(w)) {
                return line;
            }
        }
    }

    fn status(&self, path: &str) -> (u16, String) {
        let (status, _, body) = http_get(self.addr, path, "");
        (status, body)
    }
}

fn wait_exit(guard: &mut Guard) -> std::process::ExitStatus {
    common::eventually("the server to exit", || guard.0.try_wait().unwrap())
}

#[test]
fn sigint_closes_clients_with_1001_and_exits_0() {
    let home = tempfile::tempdir().unwrap();
    let mut server = spawn_server(home.path(), &[]);
    assert!(
        !server.secret.is_empty(),
        "first run prints the _pubsub credentials"
    );
    let mut a = Client::connect(server.addr, "_pubsub");
    a.auth("pubsub", &server.secret)
        .expect("auth with the printed credentials");
    let mut b = Client::connect(server.addr, "_pubsub");
    let t = Instant::now();
    server.signal("INT");
    assert_eq!(a.expect_close(), 1001);
    assert_eq!(b.expect_close(), 1001);
    drop((a, b));
    let exit = wait_exit(&mut server.guard);
    assert!(exit.success(), "exit status {exit:?}");
    assert!(t.elapsed() < Duration::from_secs(8));
}

#[test]
fn sigterm_drains_then_exits_0() {
    let home = tempfile::tempdir().unwrap();
    let mut server = spawn_server(home.path(), &["--drain-seconds", "2"]);
    assert_eq!(server.status("/health/ready"), (200, "ready\n".into()));
    assert_eq!(server.status("/health/live"), (200, "live\n".into()));
    assert_eq!(
        server.status("/health/"),
        (200, "OK\n".into()),
        "kept as it is"
    );
    let mut a = Client::connect(server.addr, "_pubsub");
    a.auth("pubsub", &server.secret).expect("auth");
    let mut b = Client::connect(server.addr, "_pubsub");
    let t = Instant::now();
    server.signal("TERM");
    server.log_line(&["SIGTERM", "draining"]);
    // Readiness fails at once; liveness holds; no new connection is accepted.
    let (status, body) = server.status("/health/ready");
    assert_eq!((status, body.as_str()), (503, "not ready: draining\n"));
    assert_eq!(server.status("/health/live").0, 200);
    let Err(refused) = Client::connect_ext(server.addr, "_pubsub", None) else {
        panic!("a draining server accepted an upgrade");
    };
    assert!(refused.contains("503"), "{refused}");
    // The clients are closed with 1012 within the window; the server exits 0 once empty.
    assert_eq!(a.expect_close(), 1012);
    assert_eq!(b.expect_close(), 1012);
    drop((a, b));
    let exit = wait_exit(&mut server.guard);
    assert!(exit.success(), "exit status {exit:?}");
    assert!(
        t.elapsed() < Duration::from_secs(2 + 3),
        "{:?}",
        t.elapsed()
    );
}

#[test]
fn cobra_drain_is_lame_duck_and_sigterm_then_exits() {
    let home = tempfile::tempdir().unwrap();
    let mut server = spawn_server(home.path(), &["--drain-seconds", "1"]);
    let mut a = Client::connect(server.addr, "_pubsub");
    a.auth("pubsub", &server.secret).expect("auth");
    let out = Command::new(env!("CARGO_BIN_EXE_cobra"))
        .args(["drain", "--pid", &server.guard.0.id().to_string()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    server.log_line(&["SIGUSR2", "lame duck"]);
    assert_eq!(server.status("/health/ready").0, 503);
    assert_eq!(a.expect_close(), 1012);
    // Still up (live), not ready, after the window.
    std::thread::sleep(Duration::from_millis(1200));
    assert!(
        server.guard.0.try_wait().unwrap().is_none(),
        "still running"
    );
    assert_eq!(server.status("/health/live").0, 200);
    assert_eq!(server.status("/health/ready").0, 503);
    server.signal("TERM");
    let exit = wait_exit(&mut server.guard);
    assert!(exit.success(), "exit status {exit:?}");
    // A bad pid is a clear error.
    let out = Command::new(env!("CARGO_BIN_EXE_cobra"))
        .args(["drain", "--pid", "0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

/// Writes [`apps_yaml`]`(roles)` to `path`.
fn write_roles(path: &Path, roles: &[(&str, &str, &str)]) {
    std::fs::write(path, apps_yaml(roles)).expect("write the apps config");
}

fn apps_yaml(roles: &[(&str, &str, &str)]) -> String {
    let mut y = String::from("apps:\n  app1:\n    roles:\n");
    for (name, secret, permissions) in roles {
        y.push_str(&format!(
            "      {name}: {{secret: {secret}, permissions: [{permissions}]}}\n"
        ));
    }
    y
}

#[test]
fn sighup_reloads_roles_closes_revoked_and_refuses_an_invalid_file() {
    let home = tempfile::tempdir().unwrap();
    let path = home.path().join("apps.yaml");
    write_roles(
        &path,
        &[
            ("keep", SECRET, "publish, subscribe"),
            ("gone", SECRET, "publish"),
            ("rekey", SECRET, "publish"),
        ],
    );
    let server = spawn_server(home.path(), &["--apps-config", path.to_str().unwrap()]);
    let mut keep = Client::connect(server.addr, "app1");
    keep.auth("keep", SECRET).expect("auth keep");
    let mut gone = Client::connect(server.addr, "app1");
    gone.auth("gone", SECRET).expect("auth gone");
    let mut rekey = Client::connect(server.addr, "app1");
    rekey.auth("rekey", SECRET).expect("auth rekey");
    let mut new = Client::connect(server.addr, "app1");
    assert!(new.auth("new", SECRET).is_err(), "not yet configured");

    // An invalid file is refused with a clear log line; the old config stays.
    std::fs::write(
        &path,
        "apps:\n  app1:\n    roles:\n      keep: {permissions: [publish]}\n",
    )
    .unwrap();
    server.signal("HUP");
    let line = server.log_line(&["reload refused", "app `app1`, role `keep`: missing secret"]);
    assert!(line.contains("old config stays"), "{line}");
    let mut again = Client::connect(server.addr, "app1");
    again
        .auth("gone", SECRET)
        .expect("the old config is still in force");

    // A valid one: `new` added, `gone` revoked, `rekey`'s secret changed, `keep` unchanged.
    let other = "ffffffffffffffffffffffffffffffff";
    write_roles(
        &path,
        &[
            ("keep", SECRET, "publish, subscribe"),
            ("rekey", other, "publish"),
            ("new", SECRET, "publish"),
        ],
    );
    server.signal("HUP");
    let line = server.log_line(&["apps config reloaded"]);
    assert!(
        line.contains("app1/new") && line.contains("app1/gone"),
        "{line}"
    );
    assert_eq!(gone.expect_close(), 1008);
    assert_eq!(rekey.expect_close(), 1008);
    assert_eq!(again.expect_close(), 1008);
    let r = keep.request(
        "rtm/publish",
        serde_json::json!({"channel": "c", "message": 1}),
    );
    assert_eq!(
        r["action"], "rtm/publish/ok",
        "unchanged role keeps its connection: {r}"
    );
    let mut new = Client::connect(server.addr, "app1");
    new.auth("new", SECRET).expect("added role");
    let mut rekeyed = Client::connect(server.addr, "app1");
    rekeyed.auth("rekey", other).expect("new secret");
}

#[test]
fn log_format_json_writes_one_object_per_line() {
    let home = tempfile::tempdir().unwrap();
    let server = spawn_server(home.path(), &["--log-format", "json"]);
    server.signal("HUP");
    // The default config's source is a file: the reload works.
    let line = server.log_line(&["apps config reloaded"]);
    let v: serde_json::Value = serde_json::from_str(&line).expect("a JSON log line");
    assert_eq!(v["level"], "INFO", "{v}");
    assert_eq!(v["fields"]["message"], "apps config reloaded", "{v}");
    assert!(v["timestamp"].is_string(), "{v}");
}

#[test]
fn config_check_says_what_is_wrong_and_where() {
    let dir = tempfile::tempdir().unwrap();
    let check = |text: &str| {
        let path = dir.path().join("apps.yaml");
        std::fs::write(&path, text).unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_cobra"))
            .args(["config", "check"])
            .arg(&path)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, stdout, _) = check(&apps_yaml(&[("a", SECRET, "publish")]));
    assert_eq!(code, Some(0));
    assert!(stdout.contains("valid: 1 apps, 1 roles"), "{stdout}");
    let (code, _, stderr) = check(&apps_yaml(&[("a", SECRET, "fly")]));
    assert_eq!(code, Some(1));
    assert!(
        stderr.contains("invalid")
            && stderr.contains("app `app1`, role `a`: unknown permission `fly`"),
        "{stderr}"
    );
    let (code, _, stderr) = check("apps:\n  app1:\n    roles: [\n");
    assert_eq!(code, Some(1));
    assert!(
        stderr.contains("line "),
        "YAML errors give the line: {stderr}"
    );
    let out = Command::new(env!("CARGO_BIN_EXE_cobra"))
        .args(["config", "check", "/nonexistent/apps.yaml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
}
