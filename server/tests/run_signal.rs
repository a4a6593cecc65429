//! `cobra run` as a process: SIGTERM and SIGINT close every client with 1001 and exit 0.

mod common;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::Client;

/// Kills and reaps the server if the test fails before it exits by itself.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `cobra run --port 0` with a config it creates in a temp HOME; returns the address it
/// prints and the `_pubsub` secret it printed.
fn spawn_server(home: &std::path::Path) -> (Guard, SocketAddr, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cobra"));
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("COBRA_") {
            cmd.env_remove(name);
        }
    }
    let child = cmd
        .args(["run", "--host", "127.0.0.1", "--port", "0"])
        .env("HOME", home)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn cobra run");
    let mut guard = Guard(child);
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
            return (guard, addr, secret);
        }
    }
}

fn wait_exit(guard: &mut Guard) -> std::process::ExitStatus {
    common::eventually("the server to exit", || guard.0.try_wait().unwrap())
}

fn stops_on(signal: &str) {
    let home = tempfile::tempdir().unwrap();
    let (mut guard, addr, secret) = spawn_server(home.path());
    assert!(
        !secret.is_empty(),
        "first run prints the _pubsub credentials"
    );
    let mut a = Client::connect(addr, "_pubsub");
    a.auth("pubsub", &secret)
        .expect("auth with the printed credentials");
    let mut b = Client::connect(addr, "_pubsub");
    let t = Instant::now();
    let status = Command::new("kill")
        .args(["-s", signal, &guard.0.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    assert_eq!(a.expect_close(), 1001);
    assert_eq!(b.expect_close(), 1001);
    drop((a, b));
    let exit = wait_exit(&mut guard);
    assert!(exit.success(), "exit status {exit:?}");
    assert!(t.elapsed() < Duration::from_secs(8));
}

#[test]
fn sigterm_closes_clients_with_1001_and_exits_0() {
    stops_on("TERM");
}

#[test]
fn sigint_closes_clients_with_1001_and_exits_0() {
    stops_on("INT");
}
