//! The on-disk spool: pending publishes survive a restart of the publishing client.

mod support;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use cobra::{Client, Error, ErrorKind, Event};
use serde_json::json;
use support::*;

const T: Duration = Duration::from_secs(10);

struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let p = std::env::temp_dir().join(format!("cobra-spool-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn seqs(peer: &Peer) -> BTreeSet<i64> {
    peer.state
        .published
        .lock()
        .unwrap()
        .iter()
        .map(|(_, m)| m["seq"].as_i64().unwrap())
        .collect()
}

#[test]
fn unacknowledged_publishes_survive_a_restart() {
    let dir = TempDir::new("restart");
    let peer = Peer::start();
    let spooled = || config(&peer.url()).spool(&dir.0, 1 << 20);
    {
        let rec = Arc::new(Recorder::default());
        let a = Client::new(spooled(), Some(rec.clone())).unwrap();
        a.connect().unwrap();
        rec.wait_for(T, "authenticated", |e| matches!(e, Event::Authenticated));
        let id = a.publish("c", &json!({"seq": -1})).unwrap();
        rec.wait_for(T, "acked", |e| *e == Event::Published { id });
        peer.state.withhold_acks.store(true, Ordering::SeqCst);
        for i in 0..30 {
            a.publish("c", &json!({"seq": i})).unwrap();
        }
        wait_until(T, "sent, not acked", || peer.state.published_count() == 31);
        a.disconnect().unwrap();
        for i in 30..40 {
            a.publish_many(&["c", "d"], &json!({"seq": i})).unwrap(); // offline: only in the queue and spool
        }
        assert_eq!(a.pending_count(), 40);
        // Opening the same directory twice is refused while `a` holds it.
        assert!(matches!(Client::new(spooled(), None), Err(Error::Io(_))));
    } // `a` dropped: the process "exits" with 40 messages unacknowledged.
    peer.state.withhold_acks.store(false, Ordering::SeqCst);
    let b = Client::new(spooled(), None).unwrap();
    assert_eq!(b.pending_count(), 40, "loaded back from the spool");
    b.connect().unwrap();
    wait_until(T, "all acked", || b.pending_count() == 0);
    assert_eq!(
        seqs(&peer),
        (-1..40).collect(),
        "nothing lost across the restart"
    );
    let last = peer.state.published.lock().unwrap().last().unwrap().clone();
    assert_eq!(
        last,
        (vec!["c".to_string(), "d".to_string()], json!({"seq": 39}))
    );
    let id = b.publish("c", &json!({"seq": 40})).unwrap();
    assert!(id > 41, "ids continue after the spooled ones ({id})");
    wait_until(T, "acked", || b.pending_count() == 0);
    drop(b);
    let c = Client::new(spooled(), None).unwrap();
    assert_eq!(
        c.pending_count(),
        0,
        "acknowledged messages are gone from the spool"
    );
}

#[test]
fn a_damaged_spool_is_reported_and_skipped() {
    let dir = TempDir::new("damaged");
    let peer = Peer::start();
    let spooled = || config(&peer.url()).spool(&dir.0, 1 << 20);
    {
        let a = Client::new(spooled(), None).unwrap();
        for i in 0..5 {
            a.publish("c", &json!({"seq": i})).unwrap();
        }
    }
    // A crash in the middle of a write: garbage at the end of the log.
    let log = dir.0.join("spool.log");
    let mut bytes = std::fs::read(&log).unwrap();
    bytes.extend_from_slice(&[0xde, 0xad, 0xbe, 0xef, 0x01, 0x02, 0x03]);
    std::fs::write(&log, bytes).unwrap();
    let rec = Arc::new(Recorder::default());
    let b = Client::new(spooled(), Some(rec.clone())).unwrap();
    rec.wait_for(T, "spool error event", |e| {
        matches!(
            e,
            Event::Error {
                kind: ErrorKind::Spool,
                ..
            }
        )
    });
    assert_eq!(b.pending_count(), 5);
    b.connect().unwrap();
    wait_until(T, "acked", || b.pending_count() == 0);
    assert_eq!(seqs(&peer), (0..5).collect());
}
