//! Codec throughput on a ~300-byte telemetry event: encode (+deflate) as the
//! SDK does, decode (+inflate) as the server does, and the PDU hot paths.

use std::hint::black_box;

use bytes::BytesMut;
use cobra_wire::Limits;
use cobra_wire::pdu::{self, Pdu, PublishBody};
use cobra_wire::pmd::{Deflater, Negotiated};
use cobra_wire::ws::{Codec, Message, Role};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

const BATCH: usize = 1000;

fn event(i: usize) -> String {
    let mut out = String::new();
    let msg = format!(
        r#"{{"id":"engine_fps_id","session":"4dacbafefc214578aa3f8c1d2975ec92","timestamp":{},"version":1,"per_id_counter":{i},"device":{{"app_version":"3.25","game":"wiso","model":"iPhone","os_language":"en","os_name":"iOS","os_version":"10.3.3"}},"data":{{"fps":{}}}}}"#,
        1536270895637u64 + i as u64,
        20 + i % 40
    );
    pdu::write_publish(&mut out, i as u64, "engine_fps_id", &msg);
    out
}

fn variants() -> [(&'static str, Option<Negotiated>); 3] {
    [
        ("plain", None),
        ("deflate", Some(Negotiated::default())),
        // Each message compressed on its own: the small-message compressor and the
        // fixed-Huffman inflate fast path.
        (
            "deflate_no_context",
            Some(Negotiated {
                client_no_context_takeover: true,
                server_no_context_takeover: true,
                ..Negotiated::default()
            }),
        ),
    ]
}

fn bench_encode(c: &mut Criterion) {
    let events: Vec<String> = (0..BATCH).map(event).collect();
    println!("event size: {} bytes", events[0].len());
    let mut g = c.benchmark_group("encode_client");
    g.throughput(Throughput::Elements(BATCH as u64));
    for (name, deflate) in variants() {
        let mut codec = Codec::new(Role::Client, Limits::default(), deflate);
        let mut out = Vec::with_capacity(1 << 20);
        let mut total = 0;
        for e in &events {
            codec.encode_text(e, &mut out);
        }
        println!("{name}: {} bytes on the wire per event", out.len() / BATCH);
        g.bench_function(name, |b| {
            b.iter(|| {
                out.clear();
                for e in &events {
                    codec.encode_text(black_box(e), &mut out);
                }
                total += out.len();
            })
        });
    }
    g.finish();
}

fn bench_decode(c: &mut Criterion) {
    let events: Vec<String> = (0..BATCH).map(event).collect();
    let mut g = c.benchmark_group("decode_server");
    g.throughput(Throughput::Elements(BATCH as u64));
    for (name, deflate) in variants() {
        let mut tx = Codec::new(Role::Client, Limits::default(), deflate);
        let mut wire = Vec::new();
        for e in &events {
            tx.encode_text(e, &mut wire);
        }
        g.bench_function(name, |b| {
            b.iter(|| {
                // A fresh codec each batch: context takeover needs the stream from its start.
                let mut rx = Codec::new(Role::Server, Limits::default(), deflate);
                let mut buf = BytesMut::from(&wire[..]);
                let mut n = 0;
                while let Ok(Some(m)) = rx.decode(&mut buf) {
                    if let Message::Text(t) = m {
                        n += t.len();
                    }
                }
                black_box(n)
            })
        });
    }
    g.finish();
}

fn bench_pdu(c: &mut Criterion) {
    let e = event(7);
    let mut g = c.benchmark_group("pdu");
    g.throughput(Throughput::Elements(1));
    g.bench_function("parse_publish", |b| {
        b.iter(|| {
            let p = Pdu::parse(black_box(&e)).unwrap();
            let body: PublishBody = p.body_as().unwrap();
            black_box((
                p.id.map(|i| i.get().len()),
                body.message.map(|m| m.get().len()),
            ))
        })
    });
    let p = Pdu::parse(&e).unwrap();
    let body: PublishBody = p.body_as().unwrap();
    let msg = body.message.unwrap();
    let mut out = String::new();
    g.bench_function("subscription_data", |b| {
        b.iter(|| {
            out.clear();
            pdu::subscription_data(&mut out, "fps", 12, "1536270895637-0", [msg.get()]);
            black_box(out.len())
        })
    });
    g.finish();
}

/// One message compressed on its own, as the server does for every delivery (no context
/// takeover): the small-message compressor against zlib level 1 reset after each message.
fn bench_compress_alone(c: &mut Criterion) {
    let events: Vec<String> = (0..BATCH).map(event).collect();
    let mut g = c.benchmark_group("compress_alone");
    g.throughput(Throughput::Elements(BATCH as u64));
    let mut out = Vec::with_capacity(1 << 20);
    let mut small = Deflater::new(1, 15, true);
    let mut zlib = Deflater::new(1, 15, true);
    for (name, use_zlib) in [("small", false), ("zlib_reset", true)] {
        out.clear();
        for e in &events {
            let d = if use_zlib { &mut zlib } else { &mut small };
            let r = if use_zlib {
                d.compress_with_zlib(e.as_bytes(), &mut out)
            } else {
                d.compress(e.as_bytes(), &mut out)
            };
            r.expect("compresses");
        }
        println!("{name}: {} compressed bytes per event", out.len() / BATCH);
        g.bench_function(name, |b| {
            b.iter(|| {
                out.clear();
                for e in &events {
                    let r = if use_zlib {
                        zlib.compress_with_zlib(black_box(e.as_bytes()), &mut out)
                    } else {
                        small.compress(black_box(e.as_bytes()), &mut out)
                    };
                    let _ = black_box(r);
                }
            })
        });
    }
    g.finish();
}

criterion_group!(
    benches,
    bench_encode,
    bench_decode,
    bench_pdu,
    bench_compress_alone
);
criterion_main!(benches);
