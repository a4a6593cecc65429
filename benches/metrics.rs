//! The metrics envelope on the hot path: building one telemetry event's JSON.
//! Run with `cargo bench -p cobra --bench metrics`.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use serde_json::json;
use std::hint::black_box;

use std::sync::atomic::{AtomicU64, Ordering};

use cobra::PublishId;
use cobra::metrics::{Envelope, MetricsPublisher, Publish};

fn envelope(c: &mut Criterion) {
    let device = serde_json::value::to_raw_value(&json!({
        "app_version": "3.25", "game": "wiso", "model": "iPhone",
        "os_language": "en", "os_name": "iOS", "os_version": "10.3.3"
    }))
    .unwrap();
    let data = json!({"fps": 30, "frame_ms": 33.3, "scene": "lobby"});
    let mut group = c.benchmark_group("metrics");
    group.throughput(Throughput::Elements(1));
    group.bench_function("envelope_build", |b| {
        let mut counter = 0u64;
        b.iter(|| {
            counter += 1;
            let e = Envelope {
                id: black_box("engine_fps_id"),
                version: 1,
                session: black_box("4dacbafefc214578aa3f8c1d2975ec92"),
                timestamp: black_box(1_536_270_895_637),
                per_id_counter: counter,
                device: &device,
                data: black_box(&data),
            };
            black_box(e.to_json())
        })
    });
    group.finish();
}

/// A sink that only counts: isolates the publisher's own cost (settings, per-id gate, envelope).
struct Discard(AtomicU64);

impl Publish for Discard {
    fn publish_raw(&self, _channels: &[&str], message: &str) -> Result<PublishId, cobra::Error> {
        Ok(self.0.fetch_add(message.len() as u64, Ordering::Relaxed))
    }
}

fn push(c: &mut Criterion) {
    let publisher = MetricsPublisher::with_sink(Discard(AtomicU64::new(0)), "sms_metrics");
    let mut device = serde_json::Map::new();
    for (k, v) in [
        ("app_version", "3.25"),
        ("game", "wiso"),
        ("model", "iPhone"),
        ("os_name", "iOS"),
    ] {
        device.insert(k.into(), json!(v));
    }
    publisher.set_device_attributes(device);
    publisher.set_rate_control([("engine_mem_id", 1.0)]);
    publisher.set_blacklist(["engine_secret_id"]);
    let data = json!({"fps": 30, "frame_ms": 33.3, "scene": "lobby"});
    let mut group = c.benchmark_group("metrics");
    group.throughput(Throughput::Elements(1));
    group.bench_function("push", |b| {
        b.iter(|| publisher.push(black_box("engine_fps_id"), black_box(&data)))
    });
    group.bench_function("push_rate_limited", |b| {
        b.iter(|| publisher.push(black_box("engine_mem_id"), black_box(&data)))
    });
    group.finish();
}

criterion_group!(benches, envelope, push);
criterion_main!(benches);
