//! An idle connected client does not wake up between heartbeats (Linux: counts the engine
//! thread's context switches in /proc). One test per binary, so only one engine thread exists.

mod support;

use std::sync::Arc;
use std::time::Duration;

use cobra::{Client, Event};
use support::*;

fn engine_switches() -> Option<u64> {
    for task in std::fs::read_dir("/proc/self/task").ok()? {
        let dir = task.ok()?.path();
        if std::fs::read_to_string(dir.join("comm")).ok()?.trim() == "cobra-engine" {
            let status = std::fs::read_to_string(dir.join("status")).ok()?;
            let field = |name: &str| -> Option<u64> {
                status
                    .lines()
                    .find(|l| l.starts_with(name))?
                    .split_whitespace()
                    .nth(1)?
                    .parse()
                    .ok()
            };
            return Some(
                field("voluntary_ctxt_switches:")? + field("nonvoluntary_ctxt_switches:")?,
            );
        }
    }
    None
}

#[test]
fn idle_client_has_no_wakeups_between_heartbeats() {
    if !cfg!(target_os = "linux") {
        return;
    }
    let peer = Peer::start();
    let rec = Arc::new(Recorder::default());
    let client = Client::new(
        config(&peer.url()).ping_interval(Duration::from_millis(500)),
        Some(rec.clone()),
    )
    .unwrap();
    client.connect().unwrap();
    rec.wait_for(Duration::from_secs(10), "authenticated", |e| {
        matches!(e, Event::Authenticated)
    });
    client.publish("c", &serde_json::json!(1)).unwrap();
    wait_until(Duration::from_secs(10), "ack", || {
        client.pending_count() == 0
    });
    // Let the first heartbeat pass, then measure a window that holds exactly one more.
    rec.wait_for(Duration::from_secs(10), "first pong", |e| {
        matches!(e, Event::Pong { .. })
    });
    let before = engine_switches().expect("engine thread in /proc");
    std::thread::sleep(Duration::from_millis(700));
    let after = engine_switches().expect("engine thread in /proc");
    let pongs = rec.count(|e| matches!(e, Event::Pong { .. }));
    let wakeups = after - before;
    eprintln!(
        "engine wakeups in 700 ms idle with a 500 ms heartbeat: {wakeups} ({pongs} pongs so far)"
    );
    // One heartbeat in the window: a wakeup for the ping timer and one for the pong.
    assert!(wakeups <= 4, "{wakeups} wakeups");
}
