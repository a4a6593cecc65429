//! `cobra bot <sink>` end to end: our broker in-process, the bot as a real `cobra` process, and the
//! real peers (statsd from npm, PostgreSQL from Debian; see scripts/install-bots.sh).

mod common;
#[path = "support/peers.rs"]
mod peers;
#[path = "support/postgres.rs"]
mod postgres;
#[path = "support/statsd.rs"]
mod statsd;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use cobra_server::net::ServerHandle;
use common::{SECRET, eventually_within, eventually_within_showing};
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_cobra");

fn server() -> ServerHandle {
    common::start_with(300_000, |_| {})
}

/// A [`server`] and a temporary directory for the bot's files.
fn server_and_dir() -> (ServerHandle, tempfile::TempDir) {
    (server(), tempfile::tempdir().expect("tempdir"))
}

/// A `cobra` command on `server` as role `all` of `app1`, no `COBRA_*` inherited.
fn cobra(server: &ServerHandle, args: &[&str]) -> Command {
    let mut cmd = cobra_test_support::process::clean_command(std::path::Path::new(BIN));
    let endpoint = format!("ws://{}", server.local_addr());
    cmd.args(args)
        .args(["--endpoint", &endpoint, "--appkey", "app1"])
        .args(["--rolename", "all", "--rolesecret", SECRET])
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null());
    cmd
}

/// Runs [`cobra`] to completion and asserts it succeeded.
fn cobra_ok(server: &ServerHandle, args: &[&str]) -> std::process::Output {
    let what = format!("cobra {}", args.join(" "));
    cobra_test_support::process::output_ok(&mut cobra(server, args), &what)
}

/// One JSON value a line of `stdout`.
fn json_lines(stdout: &[u8]) -> Vec<Value> {
    String::from_utf8_lossy(stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect()
}

/// A running bot, SIGKILLed on drop.
struct BotProc {
    child: Child,
    stderr: PathBuf,
}

impl BotProc {
    fn spawn(server: &ServerHandle, dir: &Path, args: &[&str]) -> BotProc {
        let stderr = dir.join(format!(
            "bot-{}.stderr",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        let mut all = vec!["bot"];
        all.extend_from_slice(args);
        let child = cobra(server, &all)
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .spawn()
            .expect("cobra bot runs");
        BotProc { child, stderr }
    }

    /// [`BotProc::spawn`] with the arguments of `line`, split at spaces (none holds one).
    fn spawn_line(server: &ServerHandle, dir: &Path, line: &str) -> BotProc {
        BotProc::spawn(server, dir, &line.split(' ').collect::<Vec<_>>())
    }

    fn kill9(&mut self) {
        let _ = self.child.kill(); // SIGKILL
        let _ = self.child.wait();
    }

    /// Asserts it is still running after `outage` (its peer down meanwhile).
    fn survives(&mut self, outage: Duration) {
        std::thread::sleep(outage);
        assert!(
            self.child.try_wait().expect("try_wait").is_none(),
            "the bot survives: {}",
            self.stderr()
        );
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }
}

impl Drop for BotProc {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Publishes `msgs` to `channel` with `cobra publish` (which waits for every ack).
fn publish(server: &ServerHandle, channel: &str, msgs: impl IntoIterator<Item = Value>) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("msgs.jsonl");
    let mut text = String::new();
    for m in msgs {
        text.push_str(&m.to_string());
        text.push('\n');
    }
    std::fs::write(&path, text).unwrap();
    cobra_ok(
        server,
        &["publish", "--channel", channel, path.to_str().unwrap()],
    );
}

/// `n` 300-byte-ish events numbered from 0.
fn numbered(n: usize) -> impl Iterator<Item = Value> {
    (0..n).map(
        |i| json!({"id": "engine_fps_id", "n": i, "data": {"fps": 30}, "pad": "x".repeat(240)}),
    )
}

/// Bytes the file sink wrote so far (all its `.jsonl` files).
fn sink_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0; // not created yet
    };
    entries
        .filter_map(Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "jsonl"))
        .filter_map(|e| e.metadata().ok())
        .map(|m| m.len())
        .sum()
}

/// Every `n` seen in the JSONL files of `dir`, skipping torn lines; (count per n, torn lines).
fn read_file_sink(dir: &Path) -> (HashMap<u64, u32>, usize) {
    let mut seen = HashMap::new();
    let mut torn = 0;
    let Ok(entries) = std::fs::read_dir(dir) else {
        return (seen, torn); // not created yet
    };
    let mut files: Vec<_> = entries
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .collect();
    files.sort();
    for f in files {
        let mut text = String::new();
        std::fs::File::open(&f)
            .unwrap()
            .read_to_string(&mut text)
            .unwrap();
        for line in text.split_inclusive('\n') {
            match serde_json::from_str::<Value>(line.trim_end_matches('\n')) {
                Ok(v) if line.ends_with('\n') => {
                    *seen.entry(v["n"].as_u64().unwrap()).or_insert(0) += 1
                }
                _ => torn += 1,
            }
        }
    }
    (seen, torn)
}

#[test]
fn stdout_fluentd_count_and_checkpoint_resume() {
    let (server, dir) = server_and_dir();
    let cp = dir.path().join("cp");
    publish(&server, "s1", (0..5).map(|i| json!({"n": i, "f": 1.25})));
    let cp = cp.to_str().expect("UTF-8 path");
    let stdout_bot = |extra: &[&str]| {
        let args = ["bot", "stdout", "--channel", "s1", "--checkpoint", cp];
        cobra_ok(&server, &[&args[..], extra].concat())
    };
    let out = stdout_bot(&["--position", "0-0", "--count", "3", "--fluentd"]);
    let lines: Vec<Value> = json_lines(&out.stdout);
    assert_eq!(lines.len(), 3);
    for (i, l) in lines.iter().enumerate() {
        assert_eq!(l["producer"], "cobra");
        assert_eq!(l["consumer"], "fluentd");
        assert_eq!(l["message"]["n"], i);
        assert_eq!(l["message"]["f"], 1.25);
        assert!(l["message"]["position"].as_str().unwrap().contains('-'));
    }
    // The checkpoint is the third event's: the next run starts with the fourth.
    let out = stdout_bot(&["--once"]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["n"], 3);
}

#[test]
fn rate_limit_drops_are_counted_and_served_as_prometheus_text() {
    let (server, dir) = server_and_dir();
    let port = cobra_test_support::free_port();
    publish(&server, "rl", (0..30).map(|i| json!({"n": i})));
    let mut bot = BotProc::spawn(
        &server,
        dir.path(),
        &[
            "stdout",
            "--channel",
            "rl",
            "--position",
            "0-0",
            "--max-events-per-minute",
            "10",
            "--metrics-port",
            &port.to_string(),
        ],
    );
    let stdout = bot.child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    for _ in 0..10 {
        lines.next().unwrap().unwrap();
    }
    // The drops are counted before the batch is written and `sent` once the sink confirmed it (after
    // the lines read above reached us): wait for both. The bucket refills one event per 6 s, so on a
    // machine slow enough to spread the 30 events over more than that, 11 may pass: what must hold
    // is that every event received was either sent or dropped, and that most were dropped.
    let counter = |body: &str, name: &str| -> Option<u64> {
        let prefix = format!("{name}{{sink=\"stdout\"}} ");
        body.lines()
            .find_map(|l| l.strip_prefix(prefix.as_str()))
            .and_then(|v| v.trim().parse().ok())
    };
    let text = eventually_within_showing(
        "30 received = sent + dropped on /metrics",
        Duration::from_secs(20),
        || {
            let (_, _, body) =
                common::http_get(format!("127.0.0.1:{port}").parse().unwrap(), "/metrics", "");
            let (received, sent, dropped) = (
                counter(&body, "cobra_bot_received_total"),
                counter(&body, "cobra_bot_sent_total"),
                counter(&body, "cobra_bot_dropped_total"),
            );
            match (received, sent, dropped) {
                (Some(30), Some(sent), Some(dropped)) if sent >= 10 && sent + dropped == 30 => {
                    assert!(dropped >= 15, "the limit let {sent} of 30 through:\n{body}");
                    Ok(body)
                }
                _ => Err(body),
            }
        },
    );
    assert!(text.contains("# TYPE cobra_bot_queued gauge"), "{text}");
}

#[test]
fn file_kill9_in_the_middle_of_100k_then_resume() {
    let (server, dir) = server_and_dir();
    let out = dir.path().join("out");
    let cp = dir.path().join("cp");
    const N: usize = 100_000;
    const BATCH: usize = 1000;
    publish(&server, "f1", numbered(N));
    let args = [
        "file",
        "--channel",
        "f1",
        "--position",
        "0-0",
        "--dir",
        out.to_str().unwrap(),
        "--checkpoint",
        cp.to_str().unwrap(),
        "--batch-size",
        "1000",
        "--fsync",
        "never",
        "--rotate-bytes",
        "4000000",
    ];
    let mut bot = BotProc::spawn(&server, dir.path(), &args);
    // Polled by size, not by parsing every line: the bot writes 100k events in about a second,
    // faster than a parse of what it wrote so far (it used to finish before the kill).
    eventually_within(
        "a tenth of the events in files",
        Duration::from_secs(180),
        || (sink_bytes(&out) >= N as u64 / 10 * 300).then_some(()),
    );
    bot.kill9();
    let (before, _) = read_file_sink(&out);
    assert!(before.len() < N, "killed in the middle, not after the end");
    let mut bot = BotProc::spawn(&server, dir.path(), &args);
    let (seen, torn) = eventually_within("every event in files", Duration::from_secs(300), || {
        let r = read_file_sink(&out);
        (r.0.len() == N).then_some(r)
    });
    bot.kill9();
    assert!((0..N as u64).all(|n| seen.contains_key(&n)));
    let dups: u32 = seen.values().map(|c| c - 1).sum();
    assert!(
        dups as usize <= BATCH,
        "{dups} duplicates: only the last unconfirmed batch may repeat"
    );
    assert_eq!(torn, 0, "torn tails are cut on restart");
    eprintln!("file kill -9: {N} events, {dups} duplicates");
}

#[test]
fn statsd_real_daemon_gets_names_values_floats_and_tags() {
    let Some(sd) = statsd::Statsd::spawn() else {
        return;
    };
    let (server, dir) = server_and_dir();
    let mut events = Vec::new();
    for (game, fps) in [("wiso", 16.7), ("wiso", 59.5), ("ody", 30.0)] {
        events.push(json!({"id": "engine_fps_id", "device": {"game": game, "os": "iOS"}, "data": {"fps": fps}}));
    }
    events.push(json!({"id": "engine_fps_id", "data": {"fps": 1}})); // no device.game: malformed
    publish(&server, "sd", events.clone());
    let addr = sd.addr();
    // Counter, then gauge with tags, then timer: three bots over the same four events.
    let statsd_bot = |extra: &[&str]| {
        let common = [
            "statsd",
            "--channel",
            "sd",
            "--position",
            "0-0",
            "--statsd",
            &addr,
        ];
        BotProc::spawn(&server, dir.path(), &[&common[..], extra].concat())
    };
    let mut bot = statsd_bot(&["--prefix", "cobra", "--fields", "id,device.game"]);
    let t = sd.collect(Duration::from_secs(20), |t| {
        t.counters.get("cobra.engine_fps_id.wiso") == Some(&2.0)
            && t.counters.get("cobra.engine_fps_id.ody") == Some(&1.0)
    });
    assert_eq!(
        t.counters.get("cobra.engine_fps_id.wiso"),
        Some(&2.0),
        "{t:?}"
    );
    assert_eq!(
        t.counters.get("cobra.engine_fps_id.ody"),
        Some(&1.0),
        "{t:?}"
    );
    assert_eq!(t.bad_lines, 0);
    bot.kill9();
    let mut bot = statsd_bot(&[
        "--fields",
        "device.game",
        "--timer",
        "data.fps",
        "--tags",
        "env:test,os=device.os",
    ]);
    let t = sd.collect(Duration::from_secs(20), |t| {
        t.timers
            .get("wiso;env=test;os=iOS")
            .is_some_and(|v| v.len() == 2)
    });
    let mut wiso = t
        .timers
        .get("wiso;env=test;os=iOS")
        .cloned()
        .unwrap_or_default();
    wiso.sort_by(f64::total_cmp);
    assert_eq!(wiso, vec![16.7, 59.5], "floats kept: {t:?}");
    bot.kill9();
    let mut bot = statsd_bot(&["--fields", "device.game", "--gauge", "data.fps"]);
    let t = sd.collect(Duration::from_secs(20), |t| t.gauges.contains_key("ody"));
    assert_eq!(t.gauges.get("ody"), Some(&30.0), "{t:?}");
    bot.kill9();
}

#[test]
fn statsd_down_for_10s_then_everything_arrives() {
    let Some(mut sd) = statsd::Statsd::spawn() else {
        return;
    };
    let (server, dir) = server_and_dir();
    let addr = sd.addr();
    // From 0-0: the events published next reach the bot however late it subscribes.
    let line =
        format!("statsd --channel sdd --position 0-0 --statsd {addr} --fields id --batch-size 100");
    let mut bot = BotProc::spawn_line(&server, dir.path(), &line);
    // Up: the first events arrive.
    publish(&server, "sdd", (0..100).map(|_| json!({"id": "up"})));
    let t = sd.collect(Duration::from_secs(20), |t| {
        t.counters.get("up") == Some(&100.0)
    });
    assert_eq!(t.counters.get("up"), Some(&100.0), "{t:?}");
    // Down for 10 s while 5,000 events are published.
    sd.stop();
    publish(&server, "sdd", (0..5000).map(|_| json!({"id": "down"})));
    bot.survives(Duration::from_secs(10));
    sd.start();
    let t = sd.collect(Duration::from_secs(30), |t| {
        t.counters.get("down").is_some_and(|n| *n >= 5000.0)
    });
    let got = t.counters.get("down").copied().unwrap_or(0.0);
    assert!(
        (5000.0..=5100.0).contains(&got),
        "all 5000 delivered once back, at most one batch twice: {got}; {}",
        bot.stderr()
    );
}

fn pg_rows(pg: &postgres::Postgres, table: &str) -> HashMap<u64, u32> {
    let mut seen = HashMap::new();
    for line in pg
        .query(&format!("SELECT event->>'n' FROM {table}"))
        .lines()
    {
        *seen.entry(line.parse().unwrap()).or_insert(0) += 1;
    }
    seen
}

#[test]
fn postgres_holds_exactly_the_published_rows_with_columns() {
    let Some(pg) = postgres::Postgres::spawn() else {
        return;
    };
    let (server, dir) = server_and_dir();
    let mut events: Vec<Value> = (0..50)
        .map(|i| json!({"n": i, "device": {"game": if i % 2 == 0 {"wiso"} else {"ody"}}, "data": {"fps": i as f64 + 0.5, "note": "tab\there\nnewline \\ back"}}))
        .collect();
    events.push(json!({"n": 50, "data": {"note": "nul \u{0000} char"}})); // jsonb refuses: malformed
    publish(&server, "pg1", events);
    let url = pg.url();
    let out = cobra_ok(
        &server,
        &[
            "bot",
            "postgres",
            "--channel",
            "pg1",
            "--position",
            "0-0",
            "--count",
            "51",
            "--url",
            &url,
            "--table",
            "events",
            "--column",
            "game=device.game",
            "--column",
            "fps=data.fps:double",
            "--column",
            "n=n:bigint",
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("malformed 1"), "{stderr}");
    assert_eq!(
        pg.query("SELECT count(*), count(DISTINCT n) FROM events"),
        "50|50\n"
    );
    assert_eq!(
        pg.query("SELECT game, fps, event->'data'->>'note' FROM events WHERE n = 3"),
        "ody|3.5|tab\there\nnewline \\ back\n"
    );
    assert_eq!(
        pg.query("SELECT count(*) FROM events WHERE game = 'wiso'"),
        "25\n"
    );
    drop(dir);
}

#[test]
fn postgres_kill9_in_the_middle_of_100k_then_resume() {
    let Some(pg) = postgres::Postgres::spawn() else {
        return;
    };
    let (server, dir) = server_and_dir();
    let cp = dir.path().join("cp");
    const N: usize = 100_000;
    const BATCH: usize = 1000;
    publish(&server, "pg2", numbered(N));
    let url = pg.url();
    let args = [
        "postgres",
        "--channel",
        "pg2",
        "--position",
        "0-0",
        "--url",
        &url,
        "--table",
        "k9",
        "--checkpoint",
        cp.to_str().unwrap(),
        "--batch-size",
        "1000",
    ];
    let mut bot = BotProc::spawn(&server, dir.path(), &args);
    eventually_within("a third of the rows", Duration::from_secs(180), || {
        let n: usize = pg
            .query("SELECT count(*) FROM pg_tables WHERE tablename = 'k9'")
            .trim()
            .parse()
            .unwrap();
        (n == 1
            && pg
                .query("SELECT count(*) FROM k9")
                .trim()
                .parse::<usize>()
                .unwrap()
                >= N / 3)
            .then_some(())
    });
    bot.kill9();
    let mut bot = BotProc::spawn(&server, dir.path(), &args);
    let seen = eventually_within("every row", Duration::from_secs(300), || {
        let s = pg_rows(&pg, "k9");
        (s.len() == N).then_some(s)
    });
    bot.kill9();
    let dups: u32 = seen.values().map(|c| c - 1).sum();
    assert!(
        dups as usize <= BATCH,
        "{dups} duplicates: only the last unconfirmed batch may repeat"
    );
    eprintln!("postgres kill -9: {N} rows, {dups} duplicates");
}

#[test]
fn postgres_down_for_10s_then_everything_arrives() {
    let Some(mut pg) = postgres::Postgres::spawn() else {
        return;
    };
    let (server, dir) = server_and_dir();
    let url = pg.url();
    publish(&server, "pg3", numbered(1000));
    let line =
        format!("postgres --channel pg3 --position 0-0 --url {url} --table down --batch-size 100");
    let mut bot = BotProc::spawn_line(&server, dir.path(), &line);
    eventually_within("the first 1000 rows", Duration::from_secs(60), || {
        let n = pg.query("SELECT count(*) FROM pg_tables WHERE tablename = 'down'");
        (n.trim() == "1" && pg.query("SELECT count(*) FROM down").trim() == "1000").then_some(())
    });
    pg.stop();
    publish(&server, "pg3", (1000..21_000).map(|i| json!({"n": i})));
    bot.survives(Duration::from_secs(10));
    let rss = rss_kib(bot.child.id());
    pg.start();
    let seen = eventually_within("all 21000 rows", Duration::from_secs(60), || {
        let s = pg_rows(&pg, "down");
        (s.len() == 21_000).then_some(s)
    });
    let dups: u32 = seen.values().map(|c| c - 1).sum();
    assert_eq!(dups, 0, "a failed COPY commits nothing");
    assert!(
        rss < 200 * 1024,
        "bounded memory while the sink is down: {rss} KiB"
    );
    assert!(bot.stderr().contains("retry"), "{}", bot.stderr());
}

/// The local Sentry receiver (`tests/peers/sentry/receiver.py` on the sentry-sdk venv); its
/// JSON lines, one per request. Killed on drop.
struct SentryReceiver {
    child: Child,
    port: u16,
    lines: std::sync::mpsc::Receiver<Value>,
}

impl SentryReceiver {
    fn spawn(limited: u32) -> Option<SentryReceiver> {
        let python = peers::require(
            "sentry-sdk (Python venv)",
            Some(peers::root().join(".tools/sentry-venv/bin/python")),
        )?;
        let mut child = Command::new(python)
            .arg(peers::root().join("server/tests/peers/sentry/receiver.py"))
            .args(["--limited", &limited.to_string(), "--retry-after", "2"])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx
                    .send(serde_json::from_str::<Value>(&line).unwrap())
                    .is_err()
                {
                    return;
                }
            }
        });
        let first = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("receiver starts");
        let port = first["port"].as_u64().unwrap() as u16;
        Some(SentryReceiver {
            child,
            port,
            lines: rx,
        })
    }
}

impl Drop for SentryReceiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn sentry_envelopes_parsed_by_the_official_sdk_and_429_honoured() {
    let Some(rx) = SentryReceiver::spawn(1) else {
        return;
    };
    let (server, dir) = server_and_dir();
    let lua = "stack traceback:\n\t[C]: in function 'error'\n\tscripts/shop.lua:42: in function 'buy'\n\tscripts/main.lua:7: in main chunk";
    publish(
        &server,
        "errs",
        [
            json!({"id": "engine_error_id", "device": {"game": "wiso", "os_name": "Android"},
                   "data": {"level": "error", "message": "attempt to index nil", "stack": lua,
                            "tags": {"scene": "shop"}, "extra": {"coins": 12}}}),
            json!({"id": "engine_fps_id", "data": {"fps": 30}}), // no level: not for Sentry
            json!({"id": "engine_crash_id", "data": {"level": "fatal", "message": "SIGSEGV",
                   "stack": "#0  0x00007f3a in Shop::buy (this=0x1) at src/shop.cpp:88\n#1  main () at src/main.cpp:12"}}),
        ],
    );
    let dsn = format!("http://publickey42@127.0.0.1:{}/7", rx.port);
    let mut bot = BotProc::spawn(
        &server,
        dir.path(),
        &[
            "sentry",
            "--channel",
            "errs",
            "--position",
            "0-0",
            "--dsn",
            &dsn,
            "--environment",
            "test",
        ],
    );
    let mut reqs = Vec::new();
    while reqs.iter().filter(|r: &&Value| r["status"] == 200).count() < 2 {
        reqs.push(
            rx.lines
                .recv_timeout(Duration::from_secs(30))
                .unwrap_or_else(|_| panic!("sentry requests: {reqs:?}\n{}", bot.stderr())),
        );
    }
    bot.kill9();
    assert_eq!(reqs[0]["status"], 429);
    let waited = reqs[1]["t"].as_f64().unwrap() - reqs[0]["t"].as_f64().unwrap();
    assert!(waited >= 1.9, "Retry-After: 2 honoured, waited {waited}s");
    for r in &reqs {
        assert_eq!(r["path"], "/api/7/envelope/");
        let auth = r["auth"].as_str().unwrap();
        assert!(auth.starts_with("Sentry sentry_version=7"), "{auth}");
        assert!(auth.contains("sentry_key=publickey42"), "{auth}");
    }
    let e = &reqs[1]["events"][0];
    assert_eq!(reqs[1]["header"]["event_id"], e["event_id"]);
    assert_eq!(e["level"], "error");
    assert_eq!(e["environment"], "test");
    assert_eq!(e["tags"]["scene"], "shop");
    assert_eq!(e["tags"]["game"], "wiso");
    assert_eq!(e["tags"]["os_name"], "Android");
    assert_eq!(e["extra"]["coins"], 12);
    let frames = &e["exception"]["values"][0]["stacktrace"]["frames"];
    assert_eq!(frames[0]["filename"], "scripts/main.lua");
    assert_eq!(frames[1]["function"], "buy");
    assert_eq!(frames[1]["lineno"], 42);
    assert_eq!(frames[2]["function"], "error");
    let e = &reqs[2]["events"][0];
    assert_eq!(e["level"], "fatal");
    let frames = &e["exception"]["values"][0]["stacktrace"]["frames"];
    assert_eq!(frames[1]["function"], "Shop::buy");
    assert_eq!(frames[1]["filename"], "src/shop.cpp");
    assert_eq!(frames[1]["lineno"], 88);
    assert_eq!(
        reqs.len(),
        3,
        "the event without a level is skipped, nothing sent twice"
    );
}

#[test]
fn cobra_sink_republishes_intact_to_another_broker() {
    let source = server();
    let dest = server();
    let dir = tempfile::tempdir().unwrap();
    let events: Vec<Value> = (0..500)
        .map(|i| json!({"n": i, "f": 0.1 + i as f64, "s": "é\u{1F600}", "nested": {"a": [1, null, true]}}))
        .collect();
    publish(&source, "from", events.clone());
    let to = format!("ws://{}", dest.local_addr());
    let mut bot = BotProc::spawn(
        &source,
        dir.path(),
        &[
            "cobra",
            "--channel",
            "from",
            "--position",
            "0-0",
            "--to-endpoint",
            &to,
            "--to-channel",
            "to",
            "--batch-size",
            "100",
        ],
    );
    let out = cobra_ok(
        &dest,
        &[
            "subscribe",
            "--channel",
            "to",
            "--position",
            "0-0",
            "--count",
            "500",
        ],
    );
    bot.kill9();
    let got: Vec<Value> = json_lines(&out.stdout);
    assert_eq!(got, events);
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}
