//! Live aggregation: the state machine behind `GROUP BY ... WINDOW ...` statements.
//!
//! No I/O and no clock of its own: the caller feeds it each message's raw JSON with the arrival time
//! ([`Aggregator::on_message`]), calls [`Aggregator::tick`] when [`Aggregator::next_due`] comes, and
//! sends the rows it returns as ordinary subscription messages. Tests drive it with a clock of their
//! own.
//!
//! Time (see `docs/streamsql.md`, "Aggregation"):
//! - An event's time is its top-level `timestamp` (ms since the epoch) when that is a number, its
//!   arrival time otherwise, or always with `WINDOW ... ON ARRIVAL`.
//! - Windows are aligned on the epoch: `[k·ADVANCE, k·ADVANCE + SIZE)`; an event goes in each window
//!   that contains its time (one for tumbling windows, up to `SIZE / ADVANCE` for hopping ones).
//! - The watermark is the largest event time seen minus GRACE. Between events it also runs on with the
//!   arrival clock: `now - arrival of the last event` is added to the watermark the last event left.
//!   So a replay from history (events arriving much faster than their timestamps) is judged by its
//!   timestamps, and a stream that goes quiet still closes its windows on time.
//! - A window closes once the watermark reaches its end. An event whose windows are all closed is late:
//!   it is dropped and counted in the `late` field of the next row sent.
//!
//! State is bounded: at most `max_groups` groups over the subscription's open windows; past it, new
//! groups fold into a `"__other__"` group per window. A group key longer than `max_key_bytes` folds
//! there too. Each group's size is bounded by [`Aggregator::max_group_bytes`] (sketches have fixed
//! caps), and open windows by `(SIZE + GRACE) / ADVANCE + 1` plus the one quiet-stream step.

pub(crate) mod spec;
mod state;

use std::collections::{BTreeMap, HashMap};

use super::Query;
use super::paths::{Captured, Slot, SlotFields, with_scratch};
use super::raw;
use super::value::{Num, Scalar};
use spec::{AggSpec, Column, Emit};
pub use spec::{Emit as EmitMode, WindowSpec};
use state::{Acc, push_u64};

/// The group that new groups fold into past the limit (every GROUP BY value of its rows).
pub const OTHER_GROUP: &str = "__other__";

/// Separates the values of a composite group key: it cannot appear unescaped in JSON text.
const KEY_SEP: char = '\u{1f}';

/// Bounds on one aggregate subscription's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AggLimits {
    /// Groups over all open windows (the `"__other__"` groups not counted).
    pub max_groups: usize,
    /// Longest group key (the GROUP BY values' JSON text); a longer one goes to `"__other__"`.
    pub max_key_bytes: usize,
}

impl Default for AggLimits {
    fn default() -> Self {
        AggLimits {
            max_groups: 10_000,
            max_key_bytes: 1024,
        }
    }
}

/// Why a statement cannot be aggregated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the statement has no GROUP BY, WINDOW or aggregate")]
pub struct NotAggregate;

/// One group of one window.
struct Group {
    /// GROUP BY values' JSON text joined by [`KEY_SEP`]; `None` for `"__other__"`.
    key: Option<Box<str>>,
    count: u64,
    /// Values of numeric aggregates that were not numbers.
    skipped: u64,
    /// Updated since its last row.
    changed: bool,
    accs: Box<[Acc]>,
}

impl Group {
    fn new(spec: &AggSpec, key: Option<Box<str>>) -> Group {
        Group {
            key,
            count: 0,
            skipped: 0,
            changed: false,
            accs: spec.aggs.iter().map(|a| Acc::new(&a.func)).collect(),
        }
    }
}

struct Window {
    end: i64,
    index: HashMap<Box<str>, usize>,
    /// In first-seen order.
    groups: Vec<Group>,
    other: Option<Group>,
}

/// The live state of one aggregate subscription (everything but the compiled statement).
struct State {
    limits: AggLimits,
    windows: BTreeMap<i64, Window>,
    /// Groups over the open windows.
    groups: usize,
    /// `i64::MIN` until the first event.
    watermark: i64,
    /// Arrival time of the last event and the watermark it left: the quiet-stream clock.
    anchor: Option<(i64, i64)>,
    /// Late events not yet reported.
    late: u64,
    /// `EMIT CHANGES EVERY`: when the next periodic emission is due.
    next_emit: Option<i64>,
    key: String,
    events: u64,
}

/// A compiled aggregate statement and its live state.
pub struct Aggregator {
    query: Query,
    state: State,
}

impl std::fmt::Debug for Aggregator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Aggregator")
            .field("query", &self.query)
            .field("open_windows", &self.state.windows.len())
            .field("groups", &self.state.groups)
            .finish_non_exhaustive()
    }
}

impl Aggregator {
    /// An aggregator for `query` (which must be an aggregate statement) under `limits`.
    pub fn new(query: Query, limits: AggLimits) -> Result<Aggregator, NotAggregate> {
        if query.aggregate.is_none() {
            return Err(NotAggregate);
        }
        Ok(Aggregator {
            query,
            state: State {
                limits,
                windows: BTreeMap::new(),
                groups: 0,
                watermark: i64::MIN,
                anchor: None,
                late: 0,
                next_emit: None,
                key: String::new(),
                events: 0,
            },
        })
    }

    fn spec(&self) -> &AggSpec {
        self.query
            .aggregate
            .as_ref()
            .expect("checked in Aggregator::new")
    }

    /// The compiled statement.
    pub fn query(&self) -> &Query {
        &self.query
    }

    /// The most bytes one group's state can take: its aggregates (sketches at their caps), its key
    /// (twice: the group and the window's index) and the index entry.
    pub fn max_group_bytes(&self) -> usize {
        let spec = self.spec();
        std::mem::size_of::<Group>()
            + spec
                .aggs
                .iter()
                .map(|a| Acc::max_bytes(&a.func))
                .sum::<usize>()
            + 2 * self.state.limits.max_key_bytes
            + std::mem::size_of::<(Box<str>, usize)>()
            + 8
    }

    /// Groups in the open windows now (the `"__other__"` groups not counted).
    pub fn groups(&self) -> usize {
        self.state.groups
    }

    /// Events that matched the filter so far (late ones included).
    pub fn events(&self) -> u64 {
        self.state.events
    }

    /// Feed one message (its raw JSON text) that arrived at `now_ms` (ms since the epoch); rows that
    /// became due are appended to `rows`, each the JSON text of one subscription message.
    pub fn on_message(&mut self, json: &str, now_ms: i64, rows: &mut Vec<String>) {
        let Aggregator { query, state } = self;
        let Some(spec) = query.aggregate.as_ref() else {
            return;
        };
        state.advance(spec, now_ms, rows);
        let matched = with_scratch(query.paths.nodes.len(), |slots: &mut [Slot<'_>]| {
            match raw::read(&query.paths, slots, json, false) {
                Ok(raw::Root::Object | raw::Root::First(_)) => {}
                Ok(raw::Root::NotObject) | Err(_) => return false,
            }
            if let Some(filter) = &query.filter
                && !filter.eval(&mut SlotFields(slots))
            {
                return false;
            }
            state.add(spec, slots, now_ms, rows);
            true
        });
        if !matched {
            return;
        }
        if let Emit::Changes { every_ms } = spec.emit {
            match every_ms {
                None => state.emit_changes(spec, rows),
                Some(every) if state.next_emit.is_none() => {
                    state.next_emit = Some(now_ms.saturating_add(every));
                }
                Some(_) => {}
            }
        }
    }

    /// Let the arrival clock reach `now_ms`: close the windows that became due and send the periodic
    /// `EMIT CHANGES EVERY` rows.
    pub fn tick(&mut self, now_ms: i64, rows: &mut Vec<String>) {
        let Aggregator { query, state } = self;
        if let Some(spec) = query.aggregate.as_ref() {
            state.advance(spec, now_ms, rows);
        }
    }

    /// When [`Aggregator::tick`] next has something to do (ms since the epoch), if ever without a new
    /// event.
    pub fn next_due(&self) -> Option<i64> {
        let s = &self.state;
        let close = match (s.anchor, s.windows.first_key_value()) {
            (Some((arrival, wm)), Some((_, w))) => {
                Some(arrival.saturating_add(w.end.saturating_sub(wm)))
            }
            _ => None,
        };
        match (close, s.next_emit) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

/// `n` as an event time: whole milliseconds, clamped far from overflow.
fn event_time(n: Num) -> Option<i64> {
    const LIMIT: i64 = i64::MAX / 4;
    match n {
        Num::Int(i) => Some(i.clamp(-(LIMIT as i128), LIMIT as i128) as i64),
        Num::Float(f) if f.is_finite() => Some(f.floor().clamp(-LIMIT as f64, LIMIT as f64) as i64),
        Num::Float(_) => None,
    }
}

impl State {
    /// Move the watermark on with the arrival clock, then close and emit what is due.
    fn advance(&mut self, spec: &AggSpec, now: i64, rows: &mut Vec<String>) {
        if let Some((arrival, wm)) = self.anchor {
            let run = wm.saturating_add(now.saturating_sub(arrival).max(0));
            self.watermark = self.watermark.max(run);
        }
        self.close_due(spec, rows);
        if let (
            Emit::Changes {
                every_ms: Some(every),
            },
            Some(due),
        ) = (spec.emit, self.next_emit)
            && due <= now
        {
            self.emit_changes(spec, rows);
            self.next_emit = if self.windows.is_empty() {
                None
            } else {
                // Skip the periods the clock jumped over rather than emitting for each.
                Some(due + every * ((now - due) / every + 1))
            };
        }
    }

    /// Count one matching event (its fields read into `slots`).
    fn add(&mut self, spec: &AggSpec, slots: &[Slot<'_>], now: i64, rows: &mut Vec<String>) {
        self.events += 1;
        let t = if spec.on_arrival {
            now
        } else {
            match &slots[spec.timestamp_node].scalar {
                Scalar::Num(n) => event_time(*n).unwrap_or(now),
                _ => now,
            }
        };
        // The group key: each GROUP BY value's JSON text (`null` when missing).
        self.key.clear();
        for (i, &node) in spec.group_by.iter().enumerate() {
            if i > 0 {
                self.key.push(KEY_SEP);
            }
            match slots[node].captured {
                Captured::Raw(text) => self.key.push_str(text),
                _ => self.key.push_str("null"),
            }
        }
        // The windows this event closes close first (their groups are released before it takes one).
        // Lateness is judged against the watermark before it: the event's own time never makes
        // its own windows late.
        let before = self.watermark;
        self.watermark = self.watermark.max(t.saturating_sub(spec.grace_ms));
        self.anchor = Some((now, self.watermark));
        self.close_due(spec, rows);
        let (size, advance) = (spec.window.size_ms, spec.window.advance_ms);
        let last = t.div_euclid(advance) * advance;
        let first = ((t - size).div_euclid(advance) + 1) * advance;
        let mut counted = false;
        let mut start = first;
        while start <= last {
            let end = start + size;
            if end > before {
                counted = true;
                self.add_to(spec, slots, start, end);
            }
            start += advance;
        }
        if !counted {
            self.late += 1;
        }
    }

    fn add_to(&mut self, spec: &AggSpec, slots: &[Slot<'_>], start: i64, end: i64) {
        let window = self.windows.entry(start).or_insert_with(|| Window {
            end,
            index: HashMap::new(),
            groups: Vec::new(),
            other: None,
        });
        let group = match window.index.get(self.key.as_str()) {
            Some(&i) => &mut window.groups[i],
            None if self.groups < self.limits.max_groups
                && self.key.len() <= self.limits.max_key_bytes =>
            {
                self.groups += 1;
                let key: Box<str> = self.key.as_str().into();
                window.index.insert(key.clone(), window.groups.len());
                window.groups.push(Group::new(spec, Some(key)));
                window.groups.last_mut().expect("just pushed")
            }
            None => window.other.get_or_insert_with(|| Group::new(spec, None)),
        };
        group.count += 1;
        group.changed = true;
        let mut skipped = false;
        for (agg, acc) in spec.aggs.iter().zip(group.accs.iter_mut()) {
            let slot = &slots[agg.node];
            match acc {
                Acc::None => {}
                Acc::Count(n) => {
                    if !matches!(slot.scalar, Scalar::Missing | Scalar::Null) {
                        *n += 1;
                    }
                }
                Acc::Distinct(d) => {
                    if let Captured::Raw(text) = slot.captured
                        && text != "null"
                    {
                        d.insert(text);
                    }
                }
                _ => match &slot.scalar {
                    Scalar::Num(Num::Int(i)) => acc.add_num(&agg.func, *i as f64),
                    Scalar::Num(Num::Float(f)) => acc.add_num(&agg.func, *f),
                    Scalar::Missing | Scalar::Null => {}
                    _ => skipped = true,
                },
            }
        }
        group.skipped += u64::from(skipped);
    }

    /// Close every window the watermark has reached: one final row per group.
    fn close_due(&mut self, spec: &AggSpec, rows: &mut Vec<String>) {
        while let Some(entry) = self.windows.first_entry() {
            if entry.get().end > self.watermark {
                break;
            }
            let start = *entry.key();
            let window = entry.remove();
            self.groups -= window.groups.len();
            for g in window.groups.iter().chain(window.other.iter()) {
                rows.push(self.row(spec, start, window.end, g, true));
            }
        }
        if self.windows.is_empty() {
            self.next_emit = None;
        }
    }

    /// A row for each group of the open windows updated since its last row.
    fn emit_changes(&mut self, spec: &AggSpec, rows: &mut Vec<String>) {
        let mut late = std::mem::take(&mut self.late);
        for (&start, window) in self.windows.iter_mut() {
            for g in window.groups.iter_mut().chain(window.other.iter_mut()) {
                if g.changed {
                    g.changed = false;
                    rows.push(render(
                        spec,
                        start,
                        window.end,
                        g,
                        std::mem::take(&mut late),
                        false,
                    ));
                }
            }
        }
        self.late = late;
    }

    fn row(&mut self, spec: &AggSpec, start: i64, end: i64, g: &Group, last: bool) -> String {
        render(spec, start, end, g, std::mem::take(&mut self.late), last)
    }
}

/// One output row: `{"window_start":..,"window_end":..,<SELECT keys>..,"late":..,"skipped":..,"final":..}`.
fn render(spec: &AggSpec, start: i64, end: i64, g: &Group, late: u64, last: bool) -> String {
    let mut out = String::with_capacity(96 + 24 * spec.output.len());
    out.push_str(r#"{"window_start":"#);
    out.push_str(itoa::Buffer::new().format(start));
    out.push_str(r#","window_end":"#);
    out.push_str(itoa::Buffer::new().format(end));
    for o in &spec.output {
        out.push(',');
        super::project::push_json_string(&mut out, &o.key);
        out.push(':');
        match o.column {
            Column::Group(i) => match &g.key {
                Some(key) => out.push_str(key.split(KEY_SEP).nth(i).unwrap_or("null")),
                None => super::project::push_json_string(&mut out, OTHER_GROUP),
            },
            Column::Agg(i) => g.accs[i].write(&spec.aggs[i].func, g.count, &mut out),
        }
    }
    out.push_str(r#","late":"#);
    push_u64(&mut out, late);
    out.push_str(r#","skipped":"#);
    push_u64(&mut out, g.skipped);
    out.push_str(if last {
        r#","final":true}"#
    } else {
        r#","final":false}"#
    });
    out
}

#[cfg(test)]
mod tests;
