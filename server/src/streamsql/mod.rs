//! StreamSQL: the filter language of subscriptions.
//!
//! A statement is tokenized ([`lexer`]), parsed ([`parser`]) into a compiled predicate ([`expr`]) and a
//! projection ([`project`]) over a trie of the field paths it reads ([`paths`]), once per subscription.
//! Each message is then evaluated either from its raw JSON text in one pass without building it
//! ([`Query::eval_raw`], see [`raw`]) or from an already parsed value ([`Query::eval_value`]).
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
//! - Projection: see [`project`] (missing selected fields give `{}`, as the reference did).

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

    /// Does this query have a WHERE clause?
    pub fn has_filter(&self) -> bool {
        self.filter.is_some()
    }

    /// Evaluate on the raw JSON text of a message. Never panics; invalid JSON does not match.
    pub fn eval_raw(&self, json: &str) -> Outcome {
        if self.filter.is_none() && self.projection.is_none() {
            return Outcome::Forward;
        }
        with_scratch(self.paths.nodes.len(), |slots: &mut [Slot<'_>]| {
            let want_first_raw = self.projection.is_none();
            let first = match raw::read(&self.paths, slots, json, want_first_raw) {
                Ok(raw::Root::Object) => None,
                Ok(raw::Root::First(text)) => Some(text.unwrap_or_default()),
                Ok(raw::Root::NotObject) | Err(_) => return Outcome::NoMatch,
            };
            self.finish(&mut SlotFields(slots), || first.map(str::to_owned))
        })
    }

    /// Evaluate on an already parsed message.
    pub fn eval_value(&self, v: &serde_json::Value) -> Outcome {
        if self.filter.is_none() && self.projection.is_none() {
            return Outcome::Forward;
        }
        let (obj, first) = match v {
            serde_json::Value::Object(_) => (v, false),
            serde_json::Value::Array(items) => match items.first() {
                Some(first @ serde_json::Value::Object(_)) => (first, true),
                _ => return Outcome::NoMatch,
            },
            _ => return Outcome::NoMatch,
        };
        with_scratch(self.paths.nodes.len(), |cache| {
            let mut fields = ValueFields {
                paths: &self.paths,
                root: obj,
                cache,
            };
            self.finish(&mut fields, || first.then(|| obj.to_string()))
        })
    }

    /// Apply the filter and the projection to a message read into `slots`. `first` gives the text of the
    /// first element when the message was an array.
    fn finish<'a>(
        &self,
        fields: &mut impl Fields<'a>,
        first: impl FnOnce() -> Option<String>,
    ) -> Outcome {
        if let Some(filter) = &self.filter
            && !filter.eval(fields)
        {
            return Outcome::NoMatch;
        }
        match &self.projection {
            Some(p) => Outcome::Projected(p.render(fields)),
            None => first().map_or(Outcome::Forward, Outcome::Projected),
        }
    }
}
