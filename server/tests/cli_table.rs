//! `cobra subscribe --table` against our server: on a real pty (the exact screen, read back by a
//! terminal emulator) and piped (plain lines). Rows come from a fixed sequence with explicit
//! timestamps, replayed from history (`--position 0-0`), so nothing depends on timing.

#[path = "common/mod.rs"]
mod common;

use std::io::Read;
use std::process::{Command, Stdio};

use cobra_test_support::aggregate::{MIN, on_time_sequence};
use common::{Client, SECRET};
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_cobra");
const SQL: &str = "SELECT device.model, HISTOGRAM(data.fps, 60, 30, 15, 10, 8) AS 'Frame Rate', \
    AVG(data.fps) AS 'Average FPS' FROM `engine_fps_id` WHERE device.os_name = 'iOS' \
    GROUP BY device.model WINDOW TUMBLING (10 MINUTES) GRACE 2 MINUTES";

/// A server holding the fixed sequence: 3 rows (two for [0, 10 min), one for [10, 20 min)).
fn server_with_history() -> cobra_server::net::ServerHandle {
    let server = common::start_with(1000, |_| {});
    let mut p = Client::authed(server.local_addr(), "app1", "all");
    for e in on_time_sequence() {
        let ok = p.request(
            "rtm/publish",
            json!({"channel": "engine_fps_id", "message": e}),
        );
        assert_eq!(ok["action"], "rtm/publish/ok");
    }
    server
}

fn subscribe(server: &cobra_server::net::ServerHandle) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args(["subscribe", "--table", "--position", "0-0", "--count", "3"])
        .args(["--stream-sql", SQL])
        .args(["--endpoint", &format!("ws://{}", server.local_addr())])
        .args([
            "--appkey",
            "app1",
            "--rolename",
            "all",
            "--rolesecret",
            SECRET,
        ])
        .env("HOME", std::env::temp_dir())
        .stdin(Stdio::null())
        .stderr(Stdio::null());
    cmd
}

#[test]
fn table_on_a_pty_is_the_talks_layout() {
    let server = server_with_history();
    let pty = nix::pty::openpty(None, None).expect("openpty");
    let mut cmd = subscribe(&server);
    cmd.stdout(Stdio::from(pty.slave));
    let mut child = cmd.spawn().expect("spawn cobra subscribe");
    drop(cmd); // our copy of the pty's slave end: the master sees EOF once the child is gone
    let mut master = std::fs::File::from(pty.master);
    let reader = std::thread::spawn(move || {
        let mut bytes = Vec::new();
        // Linux reports EIO on the master once the slave is closed: that is the end.
        let _ = master.read_to_end(&mut bytes);
        bytes
    });
    let status = child.wait().expect("wait");
    assert!(status.success(), "{status}");
    let bytes = reader.join().expect("reader");
    let size = |n| std::num::NonZeroU16::new(n).expect("non-zero");
    let mut term = vt100::Parser::new(size(30), size(100), 0);
    term.process(&bytes);
    let screen: Vec<String> = term
        .screen()
        .contents()
        .lines()
        .map(|l| l.trim_end().to_owned())
        .collect();
    assert_eq!(
        screen.join("\n"),
        "\
window 00:10:00 - 00:20:00 UTC
+-------------+---------+--------+
| Frame Rate  | iPhone  | iPad   |
+-------------+---------+--------+
| Samples     | 1       | 2      |
+-------------+---------+--------+
| > 60        | 0.0 %   | 0.0 %  |
+-------------+---------+--------+
| 60          | 100.0 % | 0.0 %  |
+-------------+---------+--------+
| 30          | 0.0 %   | 50.0 % |
+-------------+---------+--------+
| 15          | 0.0 %   | 0.0 %  |
+-------------+---------+--------+
| 10          | 0.0 %   | 0.0 %  |
+-------------+---------+--------+
| <= 8        | 0.0 %   | 50.0 % |
+-------------+---------+--------+
| Average FPS | 60      | 18.50  |
+-------------+---------+--------+",
        "raw output: {:?}",
        String::from_utf8_lossy(&bytes)
    );
}

#[test]
fn table_piped_prints_plain_lines() {
    let server = server_with_history();
    let out = subscribe(&server)
        .stdout(Stdio::piped())
        .output()
        .expect("run");
    assert!(out.status.success());
    let lines: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    let models: Vec<&str> = lines
        .iter()
        .map(|r| r["device.model"].as_str().unwrap())
        .collect();
    assert_eq!(models, ["iPhone", "iPad", "iPhone"]);
    assert_eq!(lines[2]["window_start"], 10 * MIN);
}
