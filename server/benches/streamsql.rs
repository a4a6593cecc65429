//! StreamSQL evaluation throughput: a 3-condition WHERE with a 2-field projection on a typical telemetry
//! event (the shape of `shared/spec/protocol.md`, ~330 bytes), from raw text and from a parsed value.

use std::hint::black_box;

use cobra_server::streamsql::aggregate::{AggLimits, Aggregator};
use cobra_server::streamsql::{Match, Outcome, Query};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

const SQL: &str = "SELECT data.fps, device.game FROM `engine_fps_id` \
                   WHERE data.fps < 60 AND device.os_name = 'iOS' AND device.game LIKE 'w%'";

fn event(fps: u32, game: &str) -> String {
    format!(
        r#"{{"id": "engine_fps_id", "session": "4dacbafefc214578aa3f8c1d2975ec92", "timestamp": 1536270895637, "version": 1, "per_id_counter": 12, "device": {{"app_version": "3.25", "game": "{game}", "model": "iPhone", "os_language": "en", "os_name": "iOS", "os_version": "10.3.3"}}, "data": {{"fps": {fps}}}}}"#
    )
}

fn bench(c: &mut Criterion) {
    let query = Query::parse(SQL).expect("benchmark statement parses");
    let matching = event(30, "wiso");
    // Fails on the last condition: every condition is evaluated.
    let late_miss = event(30, "ody");
    // Fails on the first condition.
    let early_miss = event(75, "wiso");
    assert!(matches!(query.eval_raw(&matching), Outcome::Projected(_)));
    assert_eq!(query.eval_raw(&late_miss), Outcome::NoMatch);
    assert_eq!(query.eval_raw(&early_miss), Outcome::NoMatch);
    let mut out = String::new();
    let parsed: serde_json::Value = serde_json::from_str(&matching).expect("event is JSON");
    assert_eq!(query.eval_value_into(&parsed, &mut out), Match::Projected);
    assert_eq!(out, r#"{"data.fps":30,"device.game":"wiso"}"#);

    let mut g = c.benchmark_group("streamsql");
    g.throughput(Throughput::Elements(1));
    for (name, msg) in [
        ("match", &matching),
        ("miss_last", &late_miss),
        ("miss_first", &early_miss),
    ] {
        g.bench_function(format!("eval_raw/{name}"), |b| {
            b.iter(|| query.eval_raw(black_box(msg)))
        });
        let value: serde_json::Value = serde_json::from_str(msg).expect("event is JSON");
        g.bench_function(format!("eval_value/{name}"), |b| {
            b.iter(|| query.eval_value(black_box(&value)))
        });
        // What the broker does with parsed messages: one output buffer reused across messages.
        let mut out = String::new();
        g.bench_function(format!("eval_value_into/{name}"), |b| {
            b.iter(|| query.eval_value_into(black_box(&value), &mut out))
        });
    }
    // Baselines: what full parsing alone costs, and compiling a statement.
    g.bench_function("baseline/serde_json_value_parse", |b| {
        b.iter(|| serde_json::from_str::<serde_json::Value>(black_box(&matching)))
    });
    g.bench_function("compile", |b| b.iter(|| Query::parse(black_box(SQL))));
    g.finish();
    aggregate(c);
}

/// Live aggregation from raw JSON: three aggregates over 100 groups (device models), the arrival
/// clock moving 1 ms every 100 events so 10-second windows close (and emit 100 rows) every 1M events.
fn aggregate(c: &mut Criterion) {
    let events: Vec<String> = (0..1000)
        .map(|i| {
            event(30 + (i * 7) % 40, "wiso").replace(
                r#""model": "iPhone""#,
                &format!(r#""model": "model-{}""#, i % 100),
            )
        })
        .collect();
    let mut g = c.benchmark_group("aggregate");
    g.throughput(Throughput::Elements(1));
    for (name, aggs) in [
        ("count_avg_max", "COUNT(*), AVG(data.fps), MAX(data.fps)"),
        (
            "count_avg_p99",
            "COUNT(*), AVG(data.fps), PERCENTILE(data.fps, 0.99)",
        ),
        (
            "count_avg_histogram",
            "COUNT(*), AVG(data.fps), HISTOGRAM(data.fps, 60, 30, 15, 10, 8)",
        ),
    ] {
        let sql = format!(
            "SELECT device.model, {aggs} FROM `engine_fps_id` WHERE device.os_name = 'iOS' \
             GROUP BY device.model WINDOW TUMBLING (10 SECONDS) ON ARRIVAL"
        );
        let query = Query::parse(&sql).expect("benchmark statement parses");
        let mut agg = Aggregator::new(query, AggLimits::default()).expect("aggregate");
        let mut rows = Vec::new();
        let mut i = 0usize;
        g.bench_function(format!("3_aggs_100_groups/{name}"), |b| {
            b.iter(|| feed(&mut agg, &events, &mut i, &mut rows))
        });
        // (Not fed at all when a filter on the command line skipped this benchmark.)
        if agg.events() > 0 {
            assert_eq!(agg.groups(), 100, "{name}: every model has its group");
        }
    }
    g.finish();

    // The same work timed in this thread's CPU time rather than wall time: on a shared machine the
    // wall clock also counts the time other processes held the core, CPU time only ours. This is
    // the "events per second per core" figure; the wall-clock groups above give the ratios.
    let mut g = c.benchmark_group("cpu");
    g.throughput(Throughput::Elements(1));
    let matching = event(30, "wiso");
    let query = Query::parse(SQL).expect("benchmark statement parses");
    g.bench_function("eval_raw/match", |b| {
        b.iter_custom(|iters| {
            let t0 = thread_cpu();
            for _ in 0..iters {
                black_box(query.eval_raw(black_box(&matching)));
            }
            thread_cpu() - t0
        })
    });
    let sql = "SELECT device.model, COUNT(*), AVG(data.fps), HISTOGRAM(data.fps, 60, 30, 15, 10, 8) \
               FROM `engine_fps_id` WHERE device.os_name = 'iOS' GROUP BY device.model \
               WINDOW TUMBLING (10 SECONDS) ON ARRIVAL";
    let mut agg = Aggregator::new(Query::parse(sql).expect("parses"), AggLimits::default())
        .expect("aggregate");
    let mut rows = Vec::new();
    let mut i = 0usize;
    g.bench_function("aggregate/3_aggs_100_groups/count_avg_histogram", |b| {
        b.iter_custom(|iters| {
            let t0 = thread_cpu();
            for _ in 0..iters {
                feed(&mut agg, &events, &mut i, &mut rows);
            }
            thread_cpu() - t0
        })
    });
    g.finish();
}

/// CPU time used by this thread so far.
/// Hands the aggregator the `i`-th event (cycling through `events`, 100 a second of arrival
/// time), then the next call the one after; the rows it closes are dropped.
fn feed(agg: &mut Aggregator, events: &[String], i: &mut usize, rows: &mut Vec<String>) {
    agg.on_message(
        black_box(&events[*i % events.len()]),
        (*i / 100) as i64,
        rows,
    );
    *i += 1;
    rows.clear();
}

fn thread_cpu() -> std::time::Duration {
    use nix::time::{ClockId, clock_gettime};
    clock_gettime(ClockId::CLOCK_THREAD_CPUTIME_ID)
        .map(std::time::Duration::from)
        .unwrap_or_default()
}

criterion_group!(benches, bench);
criterion_main!(benches);
