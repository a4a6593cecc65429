//! The server's own work for one `rtm/publish`, minus the sockets: the session parses the PDU,
//! publishes to the embedded backend (no subscriber) and encodes the ack as a WebSocket frame.
//! The bench tool's ~300-byte message throughout (`cobra bench`'s shape: numbers, a nested
//! object, a padding string).

mod support;

use std::time::Instant;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};

use support::{authed_session, frames};

fn publish(c: &mut Criterion) {
    let broker = support::broker(1000);
    let rt = support::runtime();
    let mut publisher = rt.block_on(authed_session(&broker));
    let pad = "x7Kq2".repeat(38);
    let message = format!(
        r#"{{"t":1764315000123456789,"p":3,"s":123456,"k":56,"id":"engine_fps_id","data":{{"fps":36}},"pad":"{pad}"}}"#
    );
    let pdu = format!(
        r#"{{"action":"rtm/publish","id":123456,"body":{{"channel":"bench","message":{message}}}}}"#
    );
    let mut g = c.benchmark_group("publish");
    g.throughput(Throughput::Elements(1));
    g.bench_function("parse_publish_ack_300B", |b| {
        b.iter_custom(|iters| {
            let mut f = frames();
            // One block_on for the whole run: entering the runtime is no part of a publish.
            let elapsed = rt.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    publisher.on_text(&pdu, &mut f).await;
                    f.out.clear();
                }
                start.elapsed()
            });
            assert!(f.last.contains("rtm/publish/ok"), "{}", f.last);
            elapsed
        })
    });
    g.finish();
}

criterion_group!(benches, publish);
criterion_main!(benches);
