//! The fixed aggregate scenario the server's, the SDK's and the CLI's tests share: events with
//! explicit timestamps minutes apart, the statement grouping them, and the exact rows it yields.
//!
//! The grace is two minutes, so the arrival clock (which moves the watermark on while the stream
//! is quiet) cannot close a window during a test.

use serde_json::{Value, json};

/// A minute, in the milliseconds of event timestamps.
pub const MIN: i64 = 60_000;

/// The channel (and the `id` of every event).
pub const CHANNEL: &str = "engine_fps_id";

/// The aggregate statement whose rows are [`expected_rows`].
pub const SQL: &str = "SELECT device.model, COUNT(*), AVG(data.fps) AS fps, \
    HISTOGRAM(data.fps, 60, 30, 15, 10, 8) AS h FROM `engine_fps_id` \
    WHERE device.os_name = 'iOS' GROUP BY device.model \
    WINDOW TUMBLING (10 MINUTES) EMIT FINAL GRACE 2 MINUTES";

/// One event of `model` running `os` at `fps`, at time `ts`.
pub fn event(model: &str, os: &str, fps: i64, ts: i64) -> Value {
    json!({"id": CHANNEL, "device": {"model": model, "os_name": os}, "data": {"fps": fps}, "timestamp": ts})
}

/// The sequence without its late event: window [0, 10 min) closes at the 12-minute event, the
/// last event closes [10, 20 min).
pub fn on_time_sequence() -> Vec<Value> {
    vec![
        event("iPhone", "iOS", 60, MIN),
        event("iPad", "iOS", 30, 2 * MIN),
        event("iPhone", "iOS", 59, 3 * MIN),
        event("Pixel", "Android", 60, 4 * MIN),
        event("iPhone", "iOS", 10, 9 * MIN),
        event("iPad", "iOS", 7, 9 * MIN + MIN / 2),
        event("iPhone", "iOS", 60, 12 * MIN),
        event("iPad", "iOS", 15, 23 * MIN),
    ]
}

/// [`on_time_sequence`] with one late event right after the 12-minute one: dropped, and
/// counted in the next row.
pub fn sequence() -> Vec<Value> {
    let mut events = on_time_sequence();
    events.insert(7, event("iPhone", "iOS", 60, 9 * MIN));
    events
}

/// The rows [`SQL`] yields for [`sequence`].
pub fn expected_rows() -> Vec<Value> {
    // Whole numbers are written without a fraction (`0`, not `0.0`).
    let h = |counts: [u64; 6], shares: Value| json!({"edges": [60, 30, 15, 10, 8], "counts": counts, "shares": shares});
    vec![
        json!({"window_start": 0, "window_end": 10 * MIN, "device.model": "iPhone", "count": 3, "fps": 43,
               "h": h([0, 2, 0, 0, 1, 0], json!([0, 2.0 / 3.0, 0, 0, 1.0 / 3.0, 0])),
               "late": 0, "skipped": 0, "final": true}),
        json!({"window_start": 0, "window_end": 10 * MIN, "device.model": "iPad", "count": 2, "fps": 18.5,
               "h": h([0, 0, 1, 0, 0, 1], json!([0, 0, 0.5, 0, 0, 0.5])),
               "late": 0, "skipped": 0, "final": true}),
        json!({"window_start": 10 * MIN, "window_end": 20 * MIN, "device.model": "iPhone", "count": 1, "fps": 60,
               "h": h([0, 1, 0, 0, 0, 0], json!([0, 1, 0, 0, 0, 0])),
               "late": 1, "skipped": 0, "final": true}),
    ]
}
