//! `cobra bench` against an in-process server over real sockets: the JSON report adds up.

mod common;

use std::process::Stdio;

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_cobra");

/// Runs `cobra bench --json` with `extra` options against `addr`; returns the exit status and the report.
fn bench(addr: std::net::SocketAddr, secret: &str, extra: &[&str]) -> (i32, Option<Value>, String) {
    let mut cmd = cobra_test_support::process::clean_command(std::path::Path::new(BIN));
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

/// [`bench`] as the test apps' `all` role, which must succeed; returns the report.
fn bench_ok(addr: std::net::SocketAddr, extra: &[&str]) -> Value {
    let (code, report, stderr) = bench(addr, common::SECRET, extra);
    let report = report.unwrap_or_else(|| panic!("no JSON report (exit {code}): {stderr}"));
    assert_eq!(code, 0, "{stderr}\n{report:#}");
    report
}

/// The options of `line`, split at spaces (none holds one).
fn words(line: &str) -> Vec<&str> {
    line.split(' ').collect()
}

fn u(report: &Value, key: &str) -> u64 {
    report[key]
        .as_u64()
        .unwrap_or_else(|| panic!("{key} in {report:#}"))
}

#[test]
fn fan_out_with_deflate_delivers_everything() {
    let server = common::start();
    let report = bench_ok(
        server.local_addr(),
        &["--publishers", "2", "--subscribers", "3", "--rate", "2000"],
    );
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
    let report = bench_ok(
        server.local_addr(),
        &words(&format!(
            "--no-deflate --subscribers 2 --filter-pct 30 --idle 20 --server-pid {}",
            std::process::id()
        )),
    );
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

/// The value of a series in `/metrics`.
fn metric(addr: std::net::SocketAddr, name: &str) -> u64 {
    let (status, _, body) = common::http_get(addr, "/metrics", "");
    assert_eq!(status, 200);
    body.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("{name} missing from /metrics:\n{body}"))
}

/// `--paused` with a small receive buffer and queue, so that a one-second pause overflows
/// them: `paused` of the report, and the server's missed count.
fn paused_run(kept: usize, extra: &[&str]) -> (Value, u64) {
    let server = common::start_with(kept, |s| s.limits.outbound_queue_bytes = 64 << 10);
    let addr = server.local_addr();
    // Only the paused one: a debug-built tool reading as well could fall behind 100 kept.
    let mut args = vec![
        "--subscribers",
        "0",
        "--no-deflate",
        "--rate",
        "2000",
        "--size",
        "2000",
        "--warmup", // (publishing: --warmup 1 then --duration 1)
        "1",
        "--paused",
        "1",
        "--pause-at",
        "0.3",
        "--pause-for",
        "1",
        "--stalled-rcvbuf",
        "4096",
    ];
    args.extend_from_slice(extra);
    let report = bench_ok(addr, &args);
    let paused = report["paused"].clone();
    assert_eq!(u(&paused, "subscribers"), 1, "{report:#}");
    assert_eq!(
        u(&paused, "expected"),
        u(&report, "published"),
        "{report:#}"
    );
    assert_eq!(u(&paused, "out_of_order"), 0, "{report:#}");
    assert_eq!(u(&paused, "gap_mismatches"), 0, "{report:#}");
    assert_eq!(paused["notices"], serde_json::json!([]), "{report:#}");
    (paused, metric(addr, "cobra_catchup_missed_messages_total"))
}

#[test]
fn a_paused_subscriber_within_the_history_gets_everything() {
    let (paused, server_missed) = paused_run(100_000, &[]);
    assert_eq!(u(&paused, "received"), u(&paused, "expected"), "{paused:#}");
    assert_eq!(u(&paused, "missed"), 0, "{paused:#}");
    assert_eq!(server_missed, 0);
}

#[test]
fn a_paused_subscriber_beyond_the_history_is_told_exactly_what_it_missed() {
    // fast_forward: every message either received or counted in a gap, each gap's count
    // equal to the jump in sequence numbers after it.
    let (paused, server_missed) = paused_run(100, &["--paused-fast-forward"]);
    assert!(u(&paused, "gaps") >= 1, "{paused:#}");
    assert!(u(&paused, "missed") > 0, "{paused:#}");
    assert_eq!(
        u(&paused, "received") + u(&paused, "missed"),
        u(&paused, "expected"),
        "{paused:#}"
    );
    assert_eq!(server_missed, u(&paused, "missed"));
    // Without it: out_of_sync with the count, nothing after.
    let (paused, server_missed) = paused_run(100, &[]);
    assert_eq!(u(&paused, "out_of_sync"), 1, "{paused:#}");
    assert!(u(&paused, "missed") > 0, "{paused:#}");
    assert!(
        u(&paused, "received") + u(&paused, "missed") <= u(&paused, "expected"),
        "{paused:#}"
    );
    assert_eq!(server_missed, u(&paused, "missed"));
}

#[test]
fn slow_and_stalled_readers_do_not_hold_back_the_others() {
    let server = common::start();
    let report = bench_ok(
        server.local_addr(),
        &words(
            "--rate 1000 --warmup 0.5 --stalled 3 --stalled-rcvbuf 4096 --slow-readers 2 --slow-rate 20",
        ),
    );
    assert_eq!(u(&report, "lost"), 0, "{report:#}");
    assert_eq!(report["warmup_seconds"].as_f64(), Some(0.5), "{report:#}");
    let slow = &report["slow_readers"];
    assert_eq!(u(slow, "subscribers"), 2, "{report:#}");
    // 20/s each for about 1.5 s of publishing plus the drain: a few dozen, not thousands.
    let received = u(slow, "received");
    assert!(received > 0 && received < 2 * 20 * 10, "{report:#}");
    assert!(u(slow, "expected") > received, "{report:#}");
    assert_eq!(u(slow, "out_of_order"), 0, "{report:#}");
}

#[test]
fn laggard_options_are_checked() {
    let server = common::start();
    for bad in [
        &["--slow-rate", "0"][..],
        &["--pause-for=-1"],
        &["--warmup", "nan"],
    ] {
        let (code, _, stderr) = bench(server.local_addr(), common::SECRET, bad);
        assert_eq!(code, 2, "{bad:?}: {stderr}");
        let name = bad[0].split('=').next().unwrap_or_default();
        assert!(stderr.contains(name), "{bad:?}: {stderr}");
    }
}
