//! The aggregation engine on fixed event sequences with explicit timestamps (exact rows, no sleeps: the
//! arrival clock is a number the test passes), and against a straightforward reference implementation.

use std::collections::BTreeMap;

use proptest::prelude::*;
use serde_json::{Value, json};

use super::{AggLimits, Aggregator};
use crate::streamsql::{ParseErrorKind, Query};

/// An arrival time far from the events' own timestamps: only event time matters while it is constant.
const NOW: i64 = 1_000_000_000;

fn agg(sql: &str) -> Aggregator {
    agg_with(sql, AggLimits::default())
}

fn agg_with(sql: &str, limits: AggLimits) -> Aggregator {
    let q = Query::parse(sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
    Aggregator::new(q, limits).expect("an aggregate statement")
}

fn fps(model: &str, os: &str, fps: Value, ts: i64) -> String {
    json!({"device": {"model": model, "os_name": os}, "data": {"fps": fps}, "id": "engine_fps_id", "timestamp": ts})
        .to_string()
}

/// Feed each event at `now`, returning the rows each one produced (joined, one per line).
fn feed(a: &mut Aggregator, now: i64, events: &[String]) -> Vec<String> {
    let mut rows = Vec::new();
    for e in events {
        a.on_message(e, now, &mut rows);
    }
    rows
}

const FPS_TABLE: &str = "SELECT device.model, COUNT(*), AVG(data.fps), MIN(data.fps), MAX(data.fps), \
    HISTOGRAM(data.fps, 60, 30, 15, 10, 8) FROM `engine_fps_id` WHERE device.os_name = 'iOS' \
    GROUP BY device.model WINDOW TUMBLING (10 SECONDS) EMIT FINAL GRACE 2 SECONDS";

#[test]
fn tumbling_windows_close_by_watermark_and_count_late_events() {
    let mut a = agg(FPS_TABLE);
    let ev = |m, os, f: i64, ts| fps(m, os, json!(f), ts);
    // Window [0, 10 s) fills; nothing closes while the watermark (max time - 2 s) is under 10 s.
    let rows = feed(
        &mut a,
        NOW,
        &[
            ev("iPhone", "iOS", 60, 1000),
            ev("iPad", "iOS", 30, 2000),
            ev("iPhone", "iOS", 59, 3000),
            ev("Pixel", "Android", 60, 4000), // filtered out
            ev("iPhone", "iOS", 10, 9500),
            ev("iPhone", "iOS", 61, 10_500),
            ev("iPad", "iOS", 7, 9900), // out of order but within the grace
        ],
    );
    assert_eq!(rows, Vec::<String>::new());
    // 12 s - 2 s reaches the end of the first window: it closes, groups in first-seen order.
    let rows = feed(&mut a, NOW, &[ev("iPhone", "iOS", 60, 12_000)]);
    assert_eq!(
        rows,
        [
            r#"{"window_start":0,"window_end":10000,"device.model":"iPhone","count":3,"avg(data.fps)":43,"min(data.fps)":10,"max(data.fps)":60,"histogram(data.fps)":{"edges":[60,30,15,10,8],"counts":[0,2,0,0,1,0],"shares":[0,0.6666666666666666,0,0,0.3333333333333333,0]},"late":0,"skipped":0,"final":true}"#,
            r#"{"window_start":0,"window_end":10000,"device.model":"iPad","count":2,"avg(data.fps)":18.5,"min(data.fps)":7,"max(data.fps)":30,"histogram(data.fps)":{"edges":[60,30,15,10,8],"counts":[0,0,1,0,0,1],"shares":[0,0,0.5,0,0,0.5]},"late":0,"skipped":0,"final":true}"#,
        ]
    );
    // Too late for the closed window: dropped, and counted in the next row sent.
    assert_eq!(
        feed(&mut a, NOW, &[ev("iPhone", "iOS", 60, 9000)]),
        Vec::<String>::new()
    );
    let rows = feed(&mut a, NOW, &[ev("iPad", "iOS", 15, 22_500)]);
    assert_eq!(
        rows,
        [
            r#"{"window_start":10000,"window_end":20000,"device.model":"iPhone","count":2,"avg(data.fps)":60.5,"min(data.fps)":60,"max(data.fps)":61,"histogram(data.fps)":{"edges":[60,30,15,10,8],"counts":[1,1,0,0,0,0],"shares":[0.5,0.5,0,0,0,0]},"late":1,"skipped":0,"final":true}"#,
        ]
    );
    assert_eq!(a.groups(), 1, "only the iPad group of [20 s, 30 s) is open");
}

#[test]
fn hopping_windows_overlap() {
    let mut a = agg(
        "SELECT COUNT(*) AS n, SUM(v) FROM c WINDOW HOPPING (SIZE 10 SECONDS, ADVANCE BY 5 SECONDS)",
    );
    let ev = |v: i64, ts: i64| json!({"v": v, "timestamp": ts}).to_string();
    assert_eq!(feed(&mut a, NOW, &[ev(1, 1000)]), Vec::<String>::new());
    assert_eq!(
        feed(&mut a, NOW, &[ev(2, 6000)]),
        [
            r#"{"window_start":-5000,"window_end":5000,"n":1,"sum(v)":1,"late":0,"skipped":0,"final":true}"#
        ]
    );
    assert_eq!(
        feed(&mut a, NOW, &[ev(4, 12_000)]),
        [
            r#"{"window_start":0,"window_end":10000,"n":2,"sum(v)":3,"late":0,"skipped":0,"final":true}"#
        ]
    );
    // 7 s is late for [0, 10 s) (closed) but still counts in [5 s, 15 s): not a late event.
    assert_eq!(
        feed(&mut a, NOW, &[ev(8, 7000), ev(16, 30_000)]),
        [
            r#"{"window_start":5000,"window_end":15000,"n":3,"sum(v)":14,"late":0,"skipped":0,"final":true}"#,
            r#"{"window_start":10000,"window_end":20000,"n":1,"sum(v)":4,"late":0,"skipped":0,"final":true}"#,
        ]
    );
}

#[test]
fn emit_changes_every_period_of_the_arrival_clock() {
    let mut a = agg(
        "SELECT COUNT(*) AS n FROM c WINDOW TUMBLING (10 SECONDS) ON ARRIVAL EMIT CHANGES EVERY 1 SECOND",
    );
    let mut rows = Vec::new();
    a.on_message("{}", 100, &mut rows);
    a.on_message(r#"{"timestamp": 99999999}"#, 500, &mut rows); // ON ARRIVAL: the timestamp is ignored
    assert_eq!(rows, Vec::<String>::new());
    assert_eq!(a.next_due(), Some(1100));
    a.tick(1099, &mut rows);
    assert_eq!(rows, Vec::<String>::new());
    a.tick(1100, &mut rows);
    assert_eq!(
        rows,
        [r#"{"window_start":0,"window_end":10000,"n":2,"late":0,"skipped":0,"final":false}"#]
    );
    rows.clear();
    a.tick(2100, &mut rows);
    assert_eq!(rows, Vec::<String>::new(), "nothing changed: no row");
    a.on_message("{}", 2500, &mut rows);
    assert_eq!(a.next_due(), Some(3100));
    a.tick(3100, &mut rows);
    assert_eq!(
        rows,
        [r#"{"window_start":0,"window_end":10000,"n":3,"late":0,"skipped":0,"final":false}"#]
    );
    rows.clear();
    assert_eq!(a.next_due(), Some(4100));
    // The clock jumps past the window's end: its final row, and no periodic row for a closed window.
    a.tick(10_000, &mut rows);
    assert_eq!(
        rows,
        [r#"{"window_start":0,"window_end":10000,"n":3,"late":0,"skipped":0,"final":true}"#]
    );
    assert_eq!(a.next_due(), None, "no open window: no timer");
}

#[test]
fn emit_changes_after_each_event() {
    let mut a =
        agg("SELECT k, COUNT(*) AS n FROM c GROUP BY k WINDOW TUMBLING (10 SECONDS) EMIT CHANGES");
    let ev = |k: &str, ts: i64| json!({"k": k, "timestamp": ts}).to_string();
    assert_eq!(
        feed(&mut a, NOW, &[ev("a", 1), ev("b", 2), ev("a", 3)]),
        [
            r#"{"window_start":0,"window_end":10000,"k":"a","n":1,"late":0,"skipped":0,"final":false}"#,
            r#"{"window_start":0,"window_end":10000,"k":"b","n":1,"late":0,"skipped":0,"final":false}"#,
            r#"{"window_start":0,"window_end":10000,"k":"a","n":2,"late":0,"skipped":0,"final":false}"#,
        ]
    );
    assert_eq!(
        feed(&mut a, NOW, &[ev("a", 10_000)]),
        [
            r#"{"window_start":0,"window_end":10000,"k":"a","n":2,"late":0,"skipped":0,"final":true}"#,
            r#"{"window_start":0,"window_end":10000,"k":"b","n":1,"late":0,"skipped":0,"final":true}"#,
            r#"{"window_start":10000,"window_end":20000,"k":"a","n":1,"late":0,"skipped":0,"final":false}"#,
        ]
    );
}

#[test]
fn a_quiet_stream_closes_its_windows_by_the_arrival_clock() {
    let mut a = agg("SELECT COUNT(*) AS n FROM c WINDOW TUMBLING (10 SECONDS) GRACE 2 SECONDS");
    let mut rows = Vec::new();
    a.on_message(r#"{"timestamp": 5000}"#, NOW, &mut rows);
    // The watermark (5 s - 2 s) runs on with the arrival clock: it reaches 10 s after 7 s more.
    assert_eq!(a.next_due(), Some(NOW + 7000));
    a.tick(NOW + 6999, &mut rows);
    assert_eq!(rows, Vec::<String>::new());
    a.tick(NOW + 7000, &mut rows);
    assert_eq!(
        rows,
        [r#"{"window_start":0,"window_end":10000,"n":1,"late":0,"skipped":0,"final":true}"#]
    );
    // Without a timestamp, the arrival time is the event time.
    rows.clear();
    a.on_message("{}", 25_000, &mut rows);
    a.tick(32_000, &mut rows);
    assert_eq!(
        rows,
        [r#"{"window_start":20000,"window_end":30000,"n":1,"late":0,"skipped":0,"final":true}"#]
    );
}

#[test]
fn groups_past_the_limit_fold_into_other() {
    let limits = AggLimits {
        max_groups: 2,
        ..AggLimits::default()
    };
    let mut a = agg_with(
        "SELECT k AS model, COUNT(*) AS n FROM c GROUP BY k WINDOW TUMBLING (10 SECONDS)",
        limits,
    );
    let ev = |k: &str, ts: i64| json!({"k": k, "timestamp": ts}).to_string();
    let rows = feed(
        &mut a,
        NOW,
        &[
            ev("a", 1),
            ev("b", 2),
            ev("c", 3),
            ev("d", 4),
            ev("a", 5),
            ev("e", 10_001),
        ],
    );
    assert_eq!(
        rows,
        [
            r#"{"window_start":0,"window_end":10000,"model":"a","n":2,"late":0,"skipped":0,"final":true}"#,
            r#"{"window_start":0,"window_end":10000,"model":"b","n":1,"late":0,"skipped":0,"final":true}"#,
            r#"{"window_start":0,"window_end":10000,"model":"__other__","n":2,"late":0,"skipped":0,"final":true}"#,
        ]
    );
    // The closed window's groups were released: new ones get their own rows again.
    assert_eq!(a.groups(), 1);
    assert!(a.max_group_bytes() < 4096, "{}", a.max_group_bytes());
}

#[test]
fn non_numeric_values_are_skipped_and_counted() {
    let mut a = agg(
        "SELECT COUNT(*) AS n, COUNT(v) AS present, AVG(v) AS mean FROM c WINDOW TUMBLING (1 SECOND)",
    );
    let rows = feed(
        &mut a,
        NOW,
        &[
            r#"{"v": 2, "timestamp": 10}"#.into(),
            r#"{"v": "sixty", "timestamp": 20}"#.into(),
            r#"{"v": true, "timestamp": 30}"#.into(),
            r#"{"v": null, "timestamp": 40}"#.into(),
            r#"{"timestamp": 50}"#.into(),
            r#"{"v": 4.5, "timestamp": 60}"#.into(),
            r#"not json"#.into(),
            r#"[{"v": 1, "timestamp": 70}]"#.into(),
            r#"{"timestamp": 2000}"#.into(),
        ],
    );
    assert_eq!(
        rows,
        [
            r#"{"window_start":0,"window_end":1000,"n":7,"present":5,"mean":2.5,"late":0,"skipped":2,"final":true}"#
        ]
    );
}

#[test]
fn several_group_fields_and_missing_values() {
    let mut a =
        agg("SELECT os, model, COUNT(*) AS n FROM c GROUP BY os, model WINDOW TUMBLING (1 SECOND)");
    let rows = feed(
        &mut a,
        NOW,
        &[
            r#"{"os": "iOS", "model": "iPhone", "timestamp": 1}"#.into(),
            r#"{"os": "iOS", "model": "iPad", "timestamp": 2}"#.into(),
            r#"{"os": "iOS", "timestamp": 3}"#.into(),
            r#"{"os": "iOS", "model": "iPhone", "timestamp": 4}"#.into(),
            r#"{"timestamp": 1000}"#.into(),
        ],
    );
    assert_eq!(
        rows,
        [
            r#"{"window_start":0,"window_end":1000,"os":"iOS","model":"iPhone","n":2,"late":0,"skipped":0,"final":true}"#,
            r#"{"window_start":0,"window_end":1000,"os":"iOS","model":"iPad","n":1,"late":0,"skipped":0,"final":true}"#,
            r#"{"window_start":0,"window_end":1000,"os":"iOS","model":null,"n":1,"late":0,"skipped":0,"final":true}"#,
        ]
    );
}

#[test]
fn sketches_stay_within_their_documented_error() {
    let mut a = agg(
        "SELECT PERCENTILE(v, 0.99) AS p99, PERCENTILE(v, 0.5) AS p50, COUNT(DISTINCT u) AS users \
         FROM c WINDOW TUMBLING (1 HOUR)",
    );
    let mut rows = Vec::new();
    for i in 1..=10_000i64 {
        let e = json!({"v": i, "u": format!("user-{}", i % 2500), "timestamp": i}).to_string();
        a.on_message(&e, NOW, &mut rows);
    }
    a.tick(i64::MAX / 2, &mut rows);
    let row: Value = serde_json::from_str(&rows[0]).unwrap();
    let close = |got: f64, want: f64, rel: f64| (got - want).abs() <= want * rel;
    let p99 = row["p99"].as_f64().unwrap();
    let p50 = row["p50"].as_f64().unwrap();
    let users = row["users"].as_f64().unwrap();
    assert!(close(p99, 9900.0, 0.01), "p99 {p99}");
    assert!(close(p50, 5000.0, 0.01), "p50 {p50}");
    // HyperLogLog at precision 12: 1.6 % standard error; 3 sigma.
    assert!(close(users, 2500.0, 0.05), "distinct {users}");
}

#[test]
fn aggregate_statements_are_checked_with_offsets() {
    let err = |sql: &str| Query::parse(sql).expect_err(sql);
    // The statement is refused with an error at the (first) occurrence of `what`.
    let points_at = |sql: &str, what: &str| {
        assert_eq!(Some(err(sql).offset()), sql.find(what), "{sql}");
    };
    let e = err("SELECT COUNT(*) FROM c");
    assert!(matches!(e.kind(), ParseErrorKind::Aggregate(_)), "{e}");
    assert_eq!(e.offset(), 22);
    let e =
        err("SELECT device.model, COUNT(*) FROM c GROUP BY device.os WINDOW TUMBLING (1 SECOND)");
    assert_eq!(e.offset(), 7, "{e}");
    let e = err("SELECT * FROM c GROUP BY a WINDOW TUMBLING (1 SECOND)");
    assert_eq!(e.offset(), 7, "{e}");
    let e = err("SELECT COUNT(*) FROM c WINDOW HOPPING (SIZE 1 HOUR, ADVANCE BY 1 SECOND)");
    assert!(matches!(e.kind(), ParseErrorKind::OutOfRange { .. }), "{e}");
    let e = err("SELECT FOO(x) FROM c WINDOW TUMBLING (1 SECOND)");
    assert_eq!(e.offset(), 7, "{e}");
    points_at(
        "SELECT PERCENTILE(v, 2) FROM c WINDOW TUMBLING (1 SECOND)",
        "2)",
    );
    points_at(
        "SELECT COUNT(*) FROM c WINDOW TUMBLING (1 SECOND) EMIT CHANGES EVERY 10 MS",
        "10 MS",
    );
    points_at(
        "SELECT COUNT(*) FROM c WINDOW HOPPING (SIZE 1 SECOND, ADVANCE BY 2 SECONDS)",
        "2 SECONDS",
    );
    points_at(
        "SELECT COUNT(*) FROM c WINDOW TUMBLING (1 FORTNIGHT)",
        "FORTNIGHT",
    );
    points_at(
        "SELECT COUNT(*) FROM c WINDOW TUMBLING (0 SECONDS)",
        "0 SECONDS",
    );
    points_at(
        "SELECT COUNT(*) FROM c WINDOW TUMBLING (1 SECOND) GRACE 1 SECOND GRACE 2 SECONDS",
        "GRACE 2",
    );
    points_at(
        "SELECT HISTOGRAM(v) FROM c WINDOW TUMBLING (1 SECOND)",
        ") FROM",
    );
    // Plain statements that use the new words as names are unchanged.
    for sql in [
        "SELECT count, window.size FROM c WHERE emit = 1 AND grace > 2",
        "select group from `c` where by = 'x'",
    ] {
        let q = Query::parse(sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
        assert!(!q.is_aggregate(), "{sql}");
    }
    assert!(Query::parse(FPS_TABLE).unwrap().is_aggregate());
}

/// One event of the property test: a group, a value (sometimes not a number), a timestamp.
#[derive(Debug, Clone)]
struct Ev {
    group: u8,
    value: Option<i64>,
    ts: i64,
}

fn events() -> impl Strategy<Value = Vec<Ev>> {
    prop::collection::vec(
        (
            0u8..4,
            prop::option::weighted(0.9, 0i64..100),
            -3000i64..8000,
        ),
        1..80,
    )
    .prop_map(|raw| {
        // Time mostly moves forward, with jitter back (late and out-of-order events).
        let mut t = 0i64;
        let mut out: Vec<Ev> = raw
            .into_iter()
            .map(|(group, value, step)| {
                t += step / 4;
                Ev {
                    group,
                    value,
                    ts: t + step.min(0),
                }
            })
            .collect();
        // The last event is never late (so its row reports every late one before it).
        let max = out.iter().map(|e| e.ts).max().unwrap_or(0);
        out.push(Ev {
            group: 0,
            value: Some(1),
            ts: max + 1,
        });
        out
    })
}

#[derive(Debug, Default, Clone, PartialEq)]
struct Expect {
    count: u64,
    sum: i64,
    n: u64,
    min: Option<i64>,
    max: Option<i64>,
    skipped: u64,
    hist: [u64; 4],
}

/// The obvious implementation: every window an event falls in, judged against the watermark of the
/// events before it.
fn reference(
    events: &[Ev],
    size: i64,
    advance: i64,
    grace: i64,
) -> (BTreeMap<(i64, u8), Expect>, u64) {
    let mut out: BTreeMap<(i64, u8), Expect> = BTreeMap::new();
    let mut wm = i64::MIN;
    let mut late = 0;
    for e in events {
        let mut counted = false;
        let mut start = (e.ts - size).div_euclid(advance) * advance;
        while start <= e.ts {
            if start + size > e.ts && start + size > wm {
                counted = true;
                let x = out.entry((start, e.group)).or_default();
                x.count += 1;
                match e.value {
                    Some(v) => {
                        x.sum += v;
                        x.n += 1;
                        x.min = Some(x.min.map_or(v, |m| m.min(v)));
                        x.max = Some(x.max.map_or(v, |m| m.max(v)));
                        // Edges 50, 20, 10: > 50, (20, 50], (10, 20], <= 10.
                        let b = if v > 50 {
                            0
                        } else if v > 20 {
                            1
                        } else if v > 10 {
                            2
                        } else {
                            3
                        };
                        x.hist[b] += 1;
                    }
                    None => x.skipped += 1,
                }
            }
            start += advance;
        }
        if !counted {
            late += 1;
        }
        wm = wm.max(e.ts - grace);
    }
    (out, late)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]
    #[test]
    fn matches_the_reference(evs in events(), size in 1i64..6, hop in 1i64..4, grace in 0i64..3000) {
        let size = size * 1000;
        let advance = if hop == 1 { size } else { size / hop };
        let window = if advance == size {
            format!("TUMBLING ({size} MS)")
        } else {
            format!("HOPPING (SIZE {size} MS, ADVANCE BY {advance} MS)")
        };
        let sql = format!(
            "SELECT g, COUNT(*) AS n, SUM(v) AS s, MIN(v) AS lo, MAX(v) AS hi, HISTOGRAM(v, 50, 20, 10) AS h \
             FROM c GROUP BY g WINDOW {window} GRACE {grace} MS"
        );
        let mut a = agg(&sql);
        let mut rows = Vec::new();
        for e in &evs {
            let v = match e.value { Some(v) => json!(v), None => json!("n/a") };
            let text = json!({"g": e.group, "v": v, "timestamp": e.ts}).to_string();
            a.on_message(&text, NOW, &mut rows);
        }
        a.tick(i64::MAX / 2, &mut rows);
        let (want, want_late) = reference(&evs, size, advance, grace);
        let mut got: BTreeMap<(i64, u8), Expect> = BTreeMap::new();
        let mut late = 0;
        for r in &rows {
            let r: Value = serde_json::from_str(r).unwrap();
            prop_assert_eq!(r["final"].as_bool(), Some(true));
            prop_assert_eq!(r["window_end"].as_i64().unwrap() - r["window_start"].as_i64().unwrap(), size);
            late += r["late"].as_u64().unwrap();
            let n = r["h"]["counts"].as_array().unwrap().iter().map(|c| c.as_u64().unwrap()).sum::<u64>();
            let hist: Vec<u64> = r["h"]["counts"].as_array().unwrap().iter().map(|c| c.as_u64().unwrap()).collect();
            let key = (r["window_start"].as_i64().unwrap(), r["g"].as_u64().unwrap() as u8);
            let x = Expect {
                count: r["n"].as_u64().unwrap(),
                sum: r["s"].as_i64().unwrap_or(0),
                n,
                min: r["lo"].as_i64(),
                max: r["hi"].as_i64(),
                skipped: r["skipped"].as_u64().unwrap(),
                hist: hist.try_into().unwrap(),
            };
            prop_assert!(got.insert(key, x).is_none(), "two rows for {:?}", key);
        }
        prop_assert_eq!(got, want);
        prop_assert_eq!(late, want_late);
        prop_assert_eq!(a.groups(), 0);
    }
}

#[test]
fn the_documented_example_row_and_group_bound() {
    // docs/streamsql.md quotes this row and this bound: keep them in step.
    let mut a = agg(
        "SELECT device.model, COUNT(*), AVG(data.fps) AS 'Average FPS', PERCENTILE(data.fps, 0.99), \
         HISTOGRAM(data.fps, 60, 30, 15, 10, 8) AS 'Frame Rate' FROM `engine_fps_id` \
         WHERE device.os_name = 'iOS' GROUP BY device.model WINDOW TUMBLING (10 SECONDS) GRACE 2 SECONDS",
    );
    let t0 = 1_536_270_890_000;
    let rows = feed(
        &mut a,
        NOW,
        &[
            fps("iPhone", "iOS", json!(60), t0 + 1000),
            fps("iPhone", "iOS", json!(59), t0 + 2000),
            fps("iPhone", "iOS", json!(10), t0 + 3000),
            fps("iPhone", "iOS", json!(60), t0 + 12_000),
        ],
    );
    assert_eq!(
        rows,
        [
            r#"{"window_start":1536270890000,"window_end":1536270900000,"device.model":"iPhone","count":3,"Average FPS":43,"percentile(data.fps,0.99)":58.561979516874935,"Frame Rate":{"edges":[60,30,15,10,8],"counts":[0,2,0,0,1,0],"shares":[0,0.6666666666666666,0,0,0.3333333333333333,0]},"late":0,"skipped":0,"final":true}"#
        ]
    );
    assert_eq!(a.max_group_bytes(), 12_696);
}
