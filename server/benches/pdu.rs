//! PDU parse and serialize, the server's per-message work besides the socket: what
//! `wire/benches/codec.rs` does not cover already (it has `rtm/publish` parse and a one-message
//! `rtm/subscription/data`). A ~300-byte telemetry event throughout.

use std::hint::black_box;

use cobra_wire::pdu::{self, Pdu, PublishBody, SubscribeBody};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use serde_json::value::RawValue;

const EVENT: &str = r#"{"id":"engine_fps_id","session":"4dacbafefc214578aa3f8c1d2975ec92","timestamp":1536270895637,"version":1,"per_id_counter":7,"device":{"app_version":"3.25","game":"wiso","model":"iPhone","os_language":"en","os_name":"iOS","os_version":"10.3.3"},"data":{"fps":42}}"#;

fn parse(c: &mut Criterion) {
    let mut publish = String::new();
    pdu::write_publish(&mut publish, 12345, "engine_fps_id", EVENT);
    let subscribe = pdu::request(
        pdu::action::SUBSCRIBE,
        3,
        &SubscribeBody {
            channel: Some("engine_fps_id".into()),
            subscription_id: Some("fps".into()),
            filter: Some("select data.fps from `engine_fps_id` where data.fps < 30".into()),
            batch_size: Some(10),
            ..Default::default()
        },
    );
    let mut g = c.benchmark_group("pdu_parse");
    g.throughput(Throughput::Elements(1));
    // What the server does for each publish: the envelope, then the body borrowing the message.
    g.bench_function("publish_borrowed", |b| {
        b.iter(|| {
            let p = Pdu::parse(black_box(&publish)).unwrap();
            let body: BorrowedPublish<'_> = p.body_borrowed().unwrap();
            black_box((p.id_u64(), body.channel.len(), body.message.get().len()))
        })
    });
    g.bench_function("publish_owned", |b| {
        b.iter(|| {
            let p = Pdu::parse(black_box(&publish)).unwrap();
            let body: PublishBody = p.body_as().unwrap();
            black_box(body.message.map(|m| m.get().len()))
        })
    });
    g.bench_function("subscribe", |b| {
        b.iter(|| {
            let p = Pdu::parse(black_box(&subscribe)).unwrap();
            let body: SubscribeBody = p.body_as().unwrap();
            black_box(body.filter.map(|f| f.len()))
        })
    });
    g.bench_function("bad_body_error", |b| {
        let bad = r#"{"action":"rtm/subscribe","id":1,"body":{"channel":42}}"#;
        b.iter(|| {
            let p = Pdu::parse(black_box(bad)).unwrap();
            black_box(p.body_as::<SubscribeBody>().is_err())
        })
    });
    g.finish();
}

#[derive(serde::Deserialize)]
struct BorrowedPublish<'a> {
    #[serde(borrow)]
    channel: &'a str,
    #[serde(borrow)]
    message: &'a RawValue,
}

fn serialize(c: &mut Criterion) {
    let id = RawValue::from_string("12345".into()).unwrap();
    let mut out = String::with_capacity(4096);
    let mut g = c.benchmark_group("pdu_serialize");
    g.throughput(Throughput::Elements(1));
    g.bench_function("publish_request", |b| {
        b.iter(|| {
            out.clear();
            pdu::write_publish(&mut out, black_box(12345), "engine_fps_id", EVENT);
            black_box(out.len())
        })
    });
    g.bench_function("publish_ok", |b| {
        b.iter(|| {
            out.clear();
            pdu::write_ok(
                &mut out,
                pdu::action::PUBLISH,
                Some(black_box(&id)),
                r#"{"position":"1536270895637-12"}"#,
            );
            black_box(out.len())
        })
    });
    g.bench_function("error", |b| {
        b.iter(|| {
            out.clear();
            pdu::write_error(
                &mut out,
                pdu::action::SUBSCRIBE,
                Some(black_box(&id)),
                pdu::error_code::INVALID_ARGUMENT,
                "body.channel: invalid type: integer `42`, expected a string",
            );
            black_box(out.len())
        })
    });
    g.finish();

    let mut g = c.benchmark_group("pdu_serialize_batch");
    g.throughput(Throughput::Elements(10));
    let batch = [EVENT; 10];
    g.bench_function("subscription_data_x10", |b| {
        b.iter(|| {
            out.clear();
            pdu::subscription_data(&mut out, "fps", 12, "1536270895637-0", black_box(batch));
            black_box(out.len())
        })
    });
    g.finish();
}

criterion_group!(benches, parse, serialize);
criterion_main!(benches);
