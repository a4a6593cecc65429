//! A real statsd daemon (npm `statsd`, from `.tools/statsd`) on a free UDP port, with a JSON
//! backend (`tests/peers/statsd/json_backend.js`) so the test reads what the daemon parsed.
//! Killed on drop; `stop()` + `start()` simulate a daemon going away and coming back.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::UdpSocket;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::peers;

pub(crate) struct Statsd {
    pub port: u16,
    /// The management TCP port: statsd's default (8126) is shared by every daemon on the machine,
    /// and a second daemon dies on it after it started flushing.
    mgmt_port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
    lines: Option<Receiver<Value>>,
    script: PathBuf,
}

impl Statsd {
    /// `None` (after a loud SKIPPED) when statsd is not installed and not under CI.
    pub(crate) fn spawn() -> Option<Statsd> {
        let script = peers::require(
            "statsd (npm)",
            Some(peers::root().join(".tools/statsd/node_modules/statsd/stats.js")),
        )?;
        let port = UdpSocket::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mgmt_port = cobra_test_support::free_port();
        let mut s = Statsd {
            port,
            mgmt_port,
            dir: tempfile::tempdir().unwrap(),
            child: None,
            lines: None,
            script,
        };
        s.start();
        Some(s)
    }

    pub(crate) fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub(crate) fn start(&mut self) {
        let backend = peers::root().join("server/tests/peers/statsd/json_backend.js");
        let config = self.dir.path().join("config.js");
        std::fs::write(
            &config,
            format!(
                "{{ port: {}, address: \"127.0.0.1\", mgmt_address: \"127.0.0.1\", mgmt_port: {}, \
                 backends: [{:?}], flushInterval: 100, deleteIdleStats: true }}",
                self.port,
                self.mgmt_port,
                backend.display().to_string()
            ),
        )
        .unwrap();
        let mut child = Command::new("node")
            .arg(&self.script)
            .arg(&config)
            .current_dir(self.script.parent().unwrap())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("node runs");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Ok(v) = serde_json::from_str::<Value>(&line)
                    && tx.send(v).is_err()
                {
                    return;
                }
            }
        });
        // Up once it flushes and its UDP socket is bound. Node binds asynchronously: on a loaded
        // machine the first flush can come first, and a datagram sent before the bind is lost
        // without an error (the bot then waits for nothing).
        rx.recv_timeout(Duration::from_secs(20))
            .expect("statsd starts and flushes");
        let deadline = Instant::now() + Duration::from_secs(20);
        while !udp_bound(self.port) {
            assert!(
                Instant::now() < deadline,
                "statsd binds UDP port {}",
                self.port
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        self.child = Some(child);
        self.lines = Some(rx);
    }

    pub(crate) fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        self.lines = None;
    }

    /// Sums counters, keeps the last gauge values and all timer values, over the flushes seen
    /// until `done` says so (or `wait` passes).
    pub(crate) fn collect(&self, wait: Duration, mut done: impl FnMut(&Totals) -> bool) -> Totals {
        let mut t = Totals::default();
        let deadline = Instant::now() + wait;
        let rx = self.lines.as_ref().expect("running");
        while !done(&t) && Instant::now() < deadline {
            let Ok(v) = rx.recv_timeout(Duration::from_millis(200)) else {
                continue;
            };
            t.bad_lines += v["bad_lines"].as_f64().unwrap_or(0.0) as u64;
            for (k, n) in v["counters"].as_object().into_iter().flatten() {
                *t.counters.entry(k.clone()).or_default() += n.as_f64().unwrap_or(0.0);
            }
            for (k, n) in v["gauges"].as_object().into_iter().flatten() {
                t.gauges.insert(k.clone(), n.as_f64().unwrap_or(f64::NAN));
            }
            for (k, vals) in v["timers"].as_object().into_iter().flatten() {
                let e = t.timers.entry(k.clone()).or_default();
                e.extend(
                    vals.as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(Value::as_f64),
                );
            }
        }
        t
    }
}

/// Whether a socket is bound to UDP `port` on 127.0.0.1 (Linux: `/proc/net/udp`, addresses in hex).
fn udp_bound(port: u16) -> bool {
    let local = format!("0100007F:{port:04X}");
    std::fs::read_to_string("/proc/net/udp").is_ok_and(|t| {
        t.lines()
            .any(|l| l.split_whitespace().nth(1) == Some(&local))
    })
}

#[derive(Debug, Default)]
pub(crate) struct Totals {
    pub counters: std::collections::BTreeMap<String, f64>,
    pub gauges: std::collections::BTreeMap<String, f64>,
    pub timers: std::collections::BTreeMap<String, Vec<f64>>,
    pub bad_lines: u64,
}

impl Drop for Statsd {
    fn drop(&mut self) {
        self.stop();
    }
}
