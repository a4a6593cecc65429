//! The on-disk spool on the publish path: one append plus its ack per message (fsync batched by 64).
//! Run with `cargo bench -p cobra --bench spool`.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;

use cobra::spool::{Entry, FsyncPolicy, Spool, SpoolConfig};

fn append_ack(c: &mut Criterion) {
    bench(c, "append_ack_300B", FsyncPolicy::default());
    bench(c, "append_ack_300B_no_fsync", FsyncPolicy::Manual);
}

fn bench(c: &mut Criterion, name: &str, fsync: FsyncPolicy) {
    let dir = tempfile::tempdir().unwrap();
    let mut spool = Spool::open_with(
        dir.path(),
        SpoolConfig {
            fsync,
            ..SpoolConfig::new(64 << 20)
        },
    )
    .unwrap();
    let message = format!(
        r#"{{"id":"engine_fps_id","data":{{"fps":30,"pad":"{}"}}}}"#,
        "x".repeat(240)
    );
    let mut id = 0u64;
    let mut group = c.benchmark_group("spool");
    group.throughput(Throughput::Elements(1));
    // The engine acks a window behind its appends: keep 100 pending.
    group.bench_function(name, |b| {
        b.iter(|| {
            id += 1;
            let entry = Entry {
                id,
                channels: vec!["engine_fps_id".into()],
                message: message.clone(),
            };
            black_box(spool.append(&entry).unwrap());
            if id > 100 {
                spool.ack(id - 100).unwrap();
            }
        })
    });
    group.finish();
}

criterion_group!(benches, append_ack);
criterion_main!(benches);
