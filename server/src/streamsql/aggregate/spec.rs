//! What an aggregate statement asks for, as the parser compiled it: groups, aggregates, window, emit
//! mode and grace. No state here (see `engine`).

/// One aggregate function of the SELECT list.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Func {
    /// `COUNT(*)`: events in the group.
    CountAll,
    /// `COUNT(f)`: events where `f` is present and not null.
    Count,
    /// `COUNT(DISTINCT f)`: approximate number of distinct non-null values (HyperLogLog).
    CountDistinct,
    Sum,
    Avg,
    Min,
    Max,
    /// `PERCENTILE(f, q)`, `q` in [0, 1] (DDSketch).
    Percentile(f64),
    /// `HISTOGRAM(f, e1, e2, ...)`: edges sorted in decreasing order, distinct.
    Histogram(Vec<f64>),
}

impl Func {
    /// The name used in the default output key, lower case (`avg(data.fps)`).
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Func::CountAll | Func::Count => "count",
            Func::CountDistinct => "count_distinct",
            Func::Sum => "sum",
            Func::Avg => "avg",
            Func::Min => "min",
            Func::Max => "max",
            Func::Percentile(_) => "percentile",
            Func::Histogram(_) => "histogram",
        }
    }
}

/// One aggregate of the statement: what it computes and which trie node it reads (0 for `COUNT(*)`).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Agg {
    pub func: Func,
    pub node: usize,
}

/// What one key of an output row holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Column {
    /// The value of the i-th GROUP BY field.
    Group(usize),
    /// The value of the i-th aggregate.
    Agg(usize),
}

/// One key of the output row, in SELECT order.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct OutputKey {
    pub key: String,
    pub column: Column,
}

/// How the events of a group are cut into windows (all in milliseconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowSpec {
    /// Window length.
    pub size_ms: i64,
    /// Distance between window starts (= `size_ms` for tumbling windows).
    pub advance_ms: i64,
}

/// When rows are sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Emit {
    /// One row per group when its window closes.
    Final,
    /// Rows for the groups that changed: after every event (`None`) or every so many milliseconds of
    /// the arrival clock; plus the final rows when a window closes.
    Changes {
        /// Milliseconds between two emissions; `None`: after each event.
        every_ms: Option<i64>,
    },
}

/// A compiled aggregate statement (the part past the plain filter).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct AggSpec {
    /// Trie nodes of the GROUP BY fields, in order.
    pub group_by: Vec<usize>,
    pub aggs: Vec<Agg>,
    /// The output row's keys after `window_start`/`window_end`, in SELECT order.
    pub output: Vec<OutputKey>,
    pub window: WindowSpec,
    /// `WINDOW ... ON ARRIVAL`: ignore `timestamp`, use the arrival clock.
    pub on_arrival: bool,
    pub emit: Emit,
    pub grace_ms: i64,
    /// Trie node of the top-level `timestamp` field (event time, ms).
    pub timestamp_node: usize,
}
