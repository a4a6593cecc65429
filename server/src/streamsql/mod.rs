//! StreamSQL: the filter language of subscriptions.
//!
//! A statement is tokenized (`lexer`), parsed (`parser`) into a compiled predicate (`expr`) and a
//! projection (`project`) over a trie of the field paths it reads (`paths`), once per subscription.
//! Each message is then evaluated either from its raw JSON text in one pass without building it
//! ([`Query::eval_raw`], see `raw`) or from an already parsed value ([`Query::eval_value`]).
//!
//! Semantics (the reference's, see `shared/spec/streamsql.md`, plus our extensions):
//! - Comparisons are typed: `'10'` never equals `10`; numbers compare numerically across int and float;
//!   strings compare by code point. An ordering (`< <= > >=`) between different types is false.
//! - A missing field (or one of another type) makes every condition false except `!=`/`<>`, which are
//!   true, and `IS NULL`, which is true for missing and `null` fields. NOT negates (two-valued logic).
//! - LIKE: `%`/`*` any run, `_`/`?` one character; case-sensitive, whole value; strings only.
//! - A message that is not a JSON object does not match, except a non-empty array whose first element
//!   is an object: that element is the message (and what `SELECT *` forwards). Invalid JSON (or JSON
//!   nested deeper than serde_json's limit of 128) does not match. `SELECT *` without WHERE forwards
//!   every message unchanged, without looking at it.
//! - Projection: keys are the path text (`"data.fps"`) or the alias, in SELECT order (a repeated key keeps
//!   its first place and its last value); values are the selected subtrees as they are (false, 0, ""
//!   kept). A selected field that is missing gives `{}` and one under a `null` gives `null`, exactly
//!   what the reference sent (its lookup was `.get(key, {})` per level).

pub mod aggregate;
mod error;
mod expr;
mod lexer;
mod like;
mod limits;
mod parser;
mod paths;
mod project;
mod raw;
mod value;

#[cfg(test)]
mod tests;

use std::fmt;

pub use error::{ParseError, ParseErrorKind};
pub use limits::Limits;

use expr::Expr;
use paths::{Fields, Paths, Slot, SlotFields, ValueFields, with_scratch};
use project::Projection;

/// One key of an aggregate statement's rows (see [`Query::aggregate_columns`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputColumn {
    /// The key in the row (the alias, or the path / default aggregate name).
    pub key: String,
    /// What the value is.
    pub kind: ColumnKind,
}

/// What an aggregate row's value holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnKind {
    /// A GROUP BY value (any JSON value; `"__other__"` for the overflow group).
    Group,
    /// A number (or `null` when the group had no value for it).
    Aggregate,
    /// `{"edges": [...], "counts": [...], "shares": [...]}`.
    Histogram,
}

/// What to do with one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The message does not match: send nothing.
    NoMatch,
    /// `SELECT *` and the message matches: send the raw message as is.
    Forward,
    /// Send this JSON object text instead of the message (a projection, or the first element of an
    /// array message under `SELECT *`).
    Projected(String),
}

/// A compiled statement. Built once per subscription; evaluation borrows it immutably (`Send + Sync`).
pub struct Query {
    channel: String,
    filter: Option<Expr>,
    /// `None` for `SELECT *`.
    projection: Option<Projection>,
    paths: Paths,
    /// `Some` for an aggregate statement (GROUP BY / WINDOW / aggregates), run by an
    /// [`aggregate::Aggregator`] instead of [`Query::eval_raw`].
    aggregate: Option<aggregate::spec::AggSpec>,
}

impl fmt::Debug for Query {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Query")
            .field("channel", &self.channel)
            .field("select_star", &self.is_select_star())
            .field("filter", &self.filter)
            .finish_non_exhaustive()
    }
}

impl Query {
    /// Compile `sql` under the default [`Limits`].
    pub fn parse(sql: &str) -> Result<Query, ParseError> {
        Self::parse_with_limits(sql, &Limits::default())
    }

    /// Compile `sql` under `limits`.
    pub fn parse_with_limits(sql: &str, limits: &Limits) -> Result<Query, ParseError> {
        let st = parser::parse(sql, limits)?;
        let projection = st.fields.as_deref().map(|f| Projection::new(f, &st.paths));
        Ok(Query {
            channel: st.channel,
            filter: st.filter,
            projection,
            paths: st.paths,
            aggregate: st.aggregate,
        })
    }

    /// The channel named after FROM (backticks stripped).
    pub fn channel(&self) -> &str {
        &self.channel
    }

    /// Is this `SELECT *` (matching messages are forwarded unchanged)?
    pub fn is_select_star(&self) -> bool {
        self.projection.is_none()
    }

    /// Is this an aggregate statement (run it with an [`aggregate::Aggregator`], not
    /// [`Query::eval_raw`])?
    pub fn is_aggregate(&self) -> bool {
        self.aggregate.is_some()
    }

    /// For an aggregate statement, the keys of its rows after `window_start` and `window_end` (and
    /// before `late`, `skipped` and `final`), in order, with what each holds; `None` for a plain
    /// statement. What a renderer (`cobra subscribe --table`) needs to lay rows out.
    pub fn aggregate_columns(&self) -> Option<Vec<OutputColumn>> {
        use aggregate::spec::{Column, Func};
        let spec = self.aggregate.as_ref()?;
        let columns = spec
            .output
            .iter()
            .map(|o| OutputColumn {
                key: o.key.clone(),
                kind: match o.column {
                    Column::Group(_) => ColumnKind::Group,
                    Column::Agg(i) => match spec.aggs[i].func {
                        Func::Histogram(_) => ColumnKind::Histogram,
                        _ => ColumnKind::Aggregate,
                    },
                },
            })
            .collect();
        Some(columns)
    }

    /// Does this query have a WHERE clause?
    pub fn has_filter(&self) -> bool {
        self.filter.is_some()
    }

    /// Evaluate on the raw JSON text of a message. Never panics; invalid JSON does not match.
    /// (An aggregate statement is evaluated as its WHERE clause alone: feed it to an
    /// [`aggregate::Aggregator`] instead.)
    pub fn eval_raw(&self, json: &str) -> Outcome {
        if self.filter.is_none() && self.projection.is_none() {
            return Outcome::Forward;
        }
        let mut out = String::new();
        let m = with_scratch(self.paths.nodes.len(), |slots: &mut [Slot<'_>]| {
            let want_first_raw = self.projection.is_none();
            let first = match raw::read(&self.paths, slots, json, want_first_raw) {
                Ok(raw::Root::Object) => None,
                Ok(raw::Root::First(text)) => Some(text.unwrap_or_default()),
                Ok(raw::Root::NotObject) | Err(_) => return Match::NoMatch,
            };
            self.finish(&mut SlotFields(slots), &mut out, |out| match first {
                Some(text) => {
                    out.push_str(text);
                    true
                }
                None => false,
            })
        });
        m.into_outcome(out)
    }

    /// Evaluate on an already parsed message.
    pub fn eval_value(&self, v: &serde_json::Value) -> Outcome {
        let mut out = String::new();
        let m = self.eval_value_into(v, &mut out);
        m.into_outcome(out)
    }

    /// [`Query::eval_value`] without allocating: on [`Match::Projected`] the text to send is left in
    /// `out` (cleared first, whatever the outcome), so a caller evaluating many messages reuses one
    /// buffer.
    pub fn eval_value_into(&self, v: &serde_json::Value, out: &mut String) -> Match {
        out.clear();
        if self.filter.is_none() && self.projection.is_none() {
            return Match::Forward;
        }
        let (obj, first) = match v {
            serde_json::Value::Object(_) => (v, false),
            serde_json::Value::Array(items) => match items.first() {
                Some(first @ serde_json::Value::Object(_)) => (first, true),
                _ => return Match::NoMatch,
            },
            _ => return Match::NoMatch,
        };
        with_scratch(self.paths.nodes.len(), |cache| {
            let mut fields = ValueFields {
                paths: &self.paths,
                root: obj,
                cache,
            };
            self.finish(&mut fields, out, |out| {
                if first {
                    project::write_value(out, obj);
                }
                first
            })
        })
    }

    /// Apply the filter and the projection to a message's fields, writing what to send into `out`.
    /// `first` writes the text of the first element when the message was an array (and says if it did).
    #[inline]
    fn finish<'a>(
        &self,
        fields: &mut impl Fields<'a>,
        out: &mut String,
        first: impl FnOnce(&mut String) -> bool,
    ) -> Match {
        if let Some(filter) = &self.filter
            && !filter.eval(fields)
        {
            return Match::NoMatch;
        }
        match &self.projection {
            Some(p) => {
                p.render_into(fields, out);
                Match::Projected
            }
            None if first(out) => Match::Projected,
            None => Match::Forward,
        }
    }
}

/// What to do with one message, the text to send being in the caller's buffer
/// (see [`Query::eval_value_into`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Match {
    /// The message does not match: send nothing.
    NoMatch,
    /// `SELECT *` and the message matches: send the message as is.
    Forward,
    /// Send the buffer's text instead of the message.
    Projected,
}

impl Match {
    fn into_outcome(self, text: String) -> Outcome {
        match self {
            Match::NoMatch => Outcome::NoMatch,
            Match::Forward => Outcome::Forward,
            Match::Projected => Outcome::Projected(text),
        }
    }
}
