//! Bounds on what a statement may ask for, so a hostile filter costs a bounded amount of memory and time.

/// Limits applied when a statement is parsed. Everything a statement can make the server do per message
/// is bounded by these (evaluation is linear in the number of conditions and paths; LIKE is
/// O(value length × pattern length) at worst).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Longest accepted statement, in bytes.
    pub max_statement_len: usize,
    /// Deepest nesting of parentheses and NOT (deep nesting is an error, never a stack overflow).
    pub max_depth: usize,
    /// Most values in one `IN (...)` list.
    pub max_in_list: usize,
    /// Most fields in the SELECT list.
    pub max_fields: usize,
    /// Most conditions (comparisons, LIKE, IN, IS NULL) in the WHERE clause.
    pub max_conditions: usize,
    /// Longest LIKE pattern, in bytes.
    pub max_like_pattern_len: usize,
    /// Most segments in one dotted field path.
    pub max_path_segments: usize,
    /// Most fields after GROUP BY.
    pub max_group_by: usize,
    /// Most bucket edges in one `HISTOGRAM(...)`.
    pub max_histogram_edges: usize,
    /// Most windows one event falls in (`SIZE / ADVANCE` of a hopping window).
    pub max_windows_per_event: i64,
    /// Longest window (and longest GRACE), in milliseconds.
    pub max_window_ms: i64,
    /// Shortest `EMIT CHANGES EVERY` period, in milliseconds: bounds the timer work of one subscription.
    pub min_emit_every_ms: i64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_statement_len: 8 * 1024,
            max_depth: 32,
            max_in_list: 256,
            max_fields: 64,
            max_conditions: 128,
            max_like_pattern_len: 256,
            max_path_segments: 16,
            max_group_by: 8,
            max_histogram_edges: 32,
            max_windows_per_event: 64,
            max_window_ms: 7 * 24 * 3600 * 1000,
            min_emit_every_ms: 100,
        }
    }
}
