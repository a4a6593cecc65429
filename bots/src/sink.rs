//! What a sink is: the [`Sink`] trait, the events it gets and how it reports failures.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use cobra::RawMessage;
use serde_json::Value;

use crate::json::{RawError, lookup_raw};

/// One event as the sink sees it: the message's JSON text as the broker sent it (shared with the
/// rest of its PDU, not parsed). Read fields with [`Item::lookup`] (no tree built) or the whole
/// message with [`Item::value`] (a parse per call).
#[derive(Debug, Clone)]
pub struct Item {
    /// The message (the projection when the subscription has a filter).
    pub message: RawMessage,
    /// The position of the subscription PDU it came in (the broker gives one per PDU).
    pub position: Option<Arc<str>>,
}

impl Item {
    /// An event made from a tree (tests, sinks fed by something other than a subscription).
    pub fn new(message: Value, position: Option<Arc<str>>) -> Self {
        Self {
            message: RawMessage::from_value(&message),
            position,
        }
    }

    /// An event as delivered by a raw subscription.
    pub fn raw(message: RawMessage, position: Option<Arc<str>>) -> Self {
        Self { message, position }
    }

    /// The message's JSON text.
    pub fn json(&self) -> &str {
        self.message.json()
    }

    /// The JSON text of the field at a dotted path (`data.fps`), without parsing the rest; see
    /// [`crate::json`] for reading it as a string or a number.
    pub fn lookup(&self, path: &str) -> Result<Option<&str>, RawError> {
        lookup_raw(self.message.json(), path)
    }

    /// The message parsed into a tree.
    pub fn value(&self) -> Result<Value, serde_json::Error> {
        self.message.value()
    }
}

/// Why a batch was not confirmed.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// Worth retrying (the sink is down, busy, rate-limiting): the runtime sends the same batch
    /// again after a backoff, or after `retry_after` when the sink was told how long to wait.
    #[error("{reason}")]
    Retry {
        /// What failed.
        reason: String,
        /// The sink's own `Retry-After`, if it gave one.
        retry_after: Option<Duration>,
    },
    /// Retrying cannot help (bad configuration, refused credentials): the bot stops.
    #[error("{0}")]
    Fatal(String),
}

impl SinkError {
    /// A retryable failure without a `Retry-After`.
    pub fn retry(reason: impl std::fmt::Display) -> Self {
        SinkError::Retry {
            reason: reason.to_string(),
            retry_after: None,
        }
    }
}

/// Counts the events a sink skipped because they are not what it needs (not an object, a field
/// missing, ...), with a sampled warning: the 1st, 2nd, 4th, 8th, ... skip is logged.
#[derive(Debug, Default)]
pub struct Skips {
    count: AtomicU64,
}

impl Skips {
    /// Counts one malformed event.
    pub fn skip(&self, sink: &str, reason: impl std::fmt::Display) {
        let n = self.count.fetch_add(1, Ordering::Relaxed) + 1;
        if n.is_power_of_two() {
            log::warn!("{sink}: skipped a malformed event ({reason}); {n} skipped so far");
        }
    }

    /// Malformed events so far.
    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }
}

/// Where a bot carries events.
///
/// [`send`](Sink::send) gets a batch and returns `Ok` only once the whole batch is confirmed by
/// the destination (written and flushed, 2xx, committed, acknowledged): the runtime then moves the
/// checkpoint past it. On `Err(SinkError::Retry)` the runtime calls `send` again with the same
/// batch, so a sink may keep what it already delivered of it and skip that part.
pub trait Sink: Send {
    /// Short name for logs and metrics.
    fn name(&self) -> &str;
    /// Delivers `batch`; malformed events are counted in `skips` and left out.
    fn send(&mut self, batch: &[Item], skips: &Skips) -> Result<(), SinkError>;
    /// Called about every 100 ms, events or not (time-based rotation and flushes).
    fn tick(&mut self) -> Result<(), SinkError> {
        Ok(())
    }
}

/// Walks a dotted path (`data.fps`, `device.game`) into a JSON value.
pub fn lookup<'a>(value: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(value, |v, key| match v {
        Value::Object(m) => m.get(key),
        Value::Array(a) => key.parse::<usize>().ok().and_then(|i| a.get(i)),
        _ => None,
    })
}
