//! `cobra bench` against an in-process server over real sockets: the JSON report adds up.

mod common;

use std::process::{Command, Stdio};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_cobra");

/// Runs `cobra bench --json` with `extra` options against `addr`; returns the exit status and the report.
fn bench(addr: std::net::SocketAddr, secret: &str, extra: &[&str]) -> (i32, Option<Value>, String) {
    let mut cmd = Command::new(BIN);
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("COBRA_") {
            cmd.env_remove(name);
        }
    }
    let endpoint = format!("ws://{addr}");
    cmd.args([
        "bench",
        "--endpoint",
        &endpoint,
        "--appkey",
        "app1",
        "--rolename",
        "all",
        "--rolesecret",
        secret,
        "--duration",
        "1",
        "--timeout",
        "10",
        "--json",
        "--quiet",
    ])
    .args(extra)
    .stdin(Stdio::null());
    let out = cmd.output().expect("cobra bench runs");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let report = serde_json::from_slice(&out.stdout).ok();
    (out.status.code().unwrap_or(-1), report, stderr)
}

fn u(report: &Value, key: &str) -> u64 {
    report[key]
        .as_u64()
        .unwrap_or_else(|| panic!("{key} in {report:#}"))
}

#[test]
fn fan_out_with_deflate_delivers_everything() {
    let server = common::start();
    let (code, report, stderr) = bench(
        server.local_addr(),
        common::SECRET,
        &["--publishers", "2", "--subscribers", "3", "--rate", "2000"],
    );
    let report = report.unwrap_or_else(|| panic!("no JSON report (exit {code}): {stderr}"));
    assert_eq!(code, 0, "{stderr}\n{report:#}");
    assert!(u(&report, "acked") > 0, "{report:#}");
    assert!(u(&report, "delivered") > 0, "{report:#}");
    // Every acked publish reaches each of the 3 subscribers of the one channel.
    assert_eq!(
        u(&report, "expected"),
        3 * u(&report, "published"),
        "{report:#}"
    );
    assert_eq!(u(&report, "lost"), 0, "{report:#}");
    assert_eq!(u(&report, "out_of_order"), 0, "{report:#}");
    assert!(report["deflate"].as_bool().unwrap_or(false));
    assert!(u(&report["latency"], "count") == u(&report, "delivered"));
    assert!(u(&report, "bytes_out") > 0 && u(&report, "bytes_in") > 0);
}

#[test]
fn filtered_subscribers_and_idle_connections() {
    let server = common::start();
    let (code, report, stderr) = bench(
        server.local_addr(),
        common::SECRET,
        &[
            "--no-deflate",
            "--subscribers",
            "2",
            "--filter-pct",
            "30",
            "--idle",
            "20",
            "--server-pid",
            &std::process::id().to_string(),
        ],
    );
    let report = report.unwrap_or_else(|| panic!("no JSON report (exit {code}): {stderr}"));
    assert_eq!(code, 0, "{stderr}\n{report:#}");
    let published = u(&report, "published");
    assert!(published > 100, "{report:#}");
    // k = seq % 100 < 30 passes: 30% of the sequence numbers, for each subscriber.
    let per_sub = (published / 100) * 30 + (published % 100).min(30);
    assert_eq!(u(&report, "expected"), 2 * per_sub, "{report:#}");
    assert_eq!(u(&report, "delivered"), 2 * per_sub, "{report:#}");
    assert_eq!(u(&report, "lost"), 0, "{report:#}");
    let idle = &report["idle"];
    assert_eq!(u(idle, "held"), 20, "{report:#}");
    assert_eq!(u(idle, "failed"), 0, "{report:#}");
    assert!(
        idle["server_rss_after_kib"].as_u64().is_some(),
        "{report:#}"
    );
}

#[test]
fn a_wrong_secret_fails_with_a_clear_error() {
    let server = common::start();
    let (code, report, stderr) = bench(server.local_addr(), "wrong", &[]);
    assert_eq!(code, 1, "{stderr}");
    assert!(report.is_none());
    assert!(stderr.contains("authentication"), "{stderr}");
}
