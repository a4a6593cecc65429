//! The broker's fan-out of one message to 1,000 subscribers, through the real protocol code
//! minus the sockets: a publisher session handles an `rtm/publish` PDU, the embedded backend
//! offers it to 1,000 subscriber mailboxes, and each subscriber session builds its
//! `rtm/subscription/data` PDU and encodes it as a WebSocket frame.

mod support;

use std::time::Instant;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use serde_json::json;

use support::{authed_session, frames};

const SUBSCRIBERS: usize = 1000;

fn fanout(c: &mut Criterion) {
    let broker = support::broker(100);
    let rt = support::runtime();
    let (mut publisher, mut subscribers) = rt.block_on(async {
        let p = authed_session(&broker).await;
        let mut subs = Vec::with_capacity(SUBSCRIBERS);
        for _ in 0..SUBSCRIBERS {
            let mut s = authed_session(&broker).await;
            let mut f = frames();
            s.on_text(
                r#"{"action":"rtm/subscribe","id":3,"body":{"channel":"engine_fps_id"}}"#,
                &mut f,
            )
            .await;
            subs.push((s, frames()));
        }
        (p, subs)
    });
    let event = json!({"id": "engine_fps_id", "session": "4dacbafefc214578aa3f8c1d2975ec92", "timestamp": 1536270895637u64,
        "version": 1, "per_id_counter": 12, "device": {"app_version": "3.25", "game": "wiso", "model": "iPhone",
        "os_language": "en", "os_name": "iOS", "os_version": "10.3.3"}, "data": {"fps": 30}});
    let publish = json!({"action": "rtm/publish", "id": 7, "body": {"channel": "engine_fps_id", "message": event}}).to_string();
    let mut g = c.benchmark_group("fanout");
    g.throughput(Throughput::Elements(SUBSCRIBERS as u64));
    g.bench_function("publish_to_1000_subscribers", |b| {
        b.iter_custom(|iters| {
            let mut pf = frames();
            let start = Instant::now();
            for _ in 0..iters {
                rt.block_on(publisher.on_text(&publish, &mut pf));
                pf.out.clear();
                for (s, f) in subscribers.iter_mut() {
                    s.pump(f, std::time::Instant::now());
                    f.out.clear();
                }
            }
            start.elapsed()
        })
    });
    g.finish();
}

criterion_group!(benches, fanout);
criterion_main!(benches);
