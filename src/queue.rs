//! The publish queue: bounded by count and bytes, holding each message until its ack.
//!
//! Entries are in id order. The first `sent` entries were written on the current connection and
//! await `rtm/publish/ok`; the rest wait to be sent. Handles push under the client's mutex; the
//! engine takes entries to send, acks them, and reports the drops recorded here (events are only
//! ever emitted on the engine thread).
//!
//! With a spool ([`Config::spool_dir`]) every entry is also appended to disk when queued and
//! acknowledged there when it leaves the queue, so what was pending at a crash or exit is loaded
//! back (and sent first) by the next client opening the directory. Spool I/O errors never lose the
//! in-memory copy: they are reported and the queue carries on in memory.

use std::collections::VecDeque;
use std::sync::Arc;

use crate::config::{Config, Delivery, OverflowPolicy};
use crate::error::Error;
use crate::event::PublishId;
use crate::spool::{self, Spool, SpoolConfig, WhenFull};

/// At most this many drop notes wait for the engine; older notes beyond it are only logged,
/// so a stalled engine cannot make the notes themselves unbounded.
const MAX_DROP_NOTES: usize = 65_536;

/// Where a message goes: the pre-serialized `"channel":...` or `"channels":[...]` member of the
/// publish body, built on the caller's thread.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target(String);

impl Target {
    pub(crate) fn channel(channel: &str) -> Result<Self, Error> {
        if channel.is_empty() {
            return Err(Error::InvalidArgument("empty channel".into()));
        }
        Ok(Target(format!("\"channel\":{}", json_string(channel))))
    }

    /// The channel names back from the JSON member (for the spool; off the hot path).
    fn names(&self) -> Vec<String> {
        let (key, value) = self.0.split_once(':').unwrap_or(("", "null"));
        match serde_json::from_str::<serde_json::Value>(value) {
            Ok(serde_json::Value::String(c)) if key == "\"channel\"" => vec![c],
            Ok(serde_json::Value::Array(cs)) => cs
                .into_iter()
                .filter_map(|c| c.as_str().map(String::from))
                .collect(),
            _ => Vec::new(),
        }
    }

    fn from_names(names: &[String]) -> Result<Self, Error> {
        match names {
            [one] => Self::channel(one),
            many => Self::channels(many),
        }
    }

    pub(crate) fn channels<S: AsRef<str>>(channels: &[S]) -> Result<Self, Error> {
        if channels.is_empty() {
            return Err(Error::InvalidArgument("no channel".into()));
        }
        let mut s = String::from("\"channels\":[");
        for (i, c) in channels.iter().enumerate() {
            if c.as_ref().is_empty() {
                return Err(Error::InvalidArgument("empty channel".into()));
            }
            if i > 0 {
                s.push(',');
            }
            s.push_str(&json_string(c.as_ref()));
        }
        s.push(']');
        Ok(Target(s))
    }

    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }
}

fn json_string(s: &str) -> String {
    // Serializing a &str cannot fail.
    serde_json::to_string(s).unwrap_or_default()
}

/// One queued message.
#[derive(Debug)]
pub(crate) struct Entry {
    pub id: PublishId,
    pub target: Target,
    /// The message as JSON text.
    pub message: String,
}

impl Entry {
    /// Bytes charged against the queue's byte limit.
    pub(crate) fn cost(&self) -> usize {
        self.target.0.len() + self.message.len()
    }

    /// Append the `rtm/publish` PDU text for this entry (the publish id is the PDU id, so the
    /// `rtm/publish/ok` names the entry directly).
    pub(crate) fn write_pdu(&self, s: &mut String) {
        use std::fmt::Write as _;
        s.reserve(self.cost() + 64);
        let _ = write!(
            s,
            "{{\"action\":\"rtm/publish\",\"id\":{},\"body\":{{",
            self.id
        );
        s.push_str(self.target.as_str());
        s.push_str(",\"message\":");
        s.push_str(&self.message);
        s.push_str("}}");
    }
}

#[derive(Debug)]
pub(crate) struct PublishQueue {
    entries: VecDeque<Arc<Entry>>,
    sent: usize,
    bytes: usize,
    next_id: PublishId,
    max_messages: usize,
    max_bytes: usize,
    policy: OverflowPolicy,
    drops: VecDeque<(PublishId, String)>,
    spool: Option<Spool>,
    /// Spool problems to report as error events.
    spool_errors: Vec<String>,
}

impl PublishQueue {
    /// An empty queue, or the spool's pending entries when `config.spool_dir` is set.
    pub(crate) fn new(config: &Config) -> Result<Self, Error> {
        let mut q = Self {
            entries: VecDeque::new(),
            sent: 0,
            bytes: 0,
            next_id: 1,
            max_messages: config.max_queued_messages,
            max_bytes: config.max_queued_bytes,
            policy: config.overflow_policy,
            drops: VecDeque::new(),
            spool: None,
            spool_errors: Vec::new(),
        };
        if let Some(dir) = &config.spool_dir {
            let spool_config = SpoolConfig {
                when_full: match config.overflow_policy {
                    OverflowPolicy::DropOldest => WhenFull::DropOldest,
                    OverflowPolicy::RefuseNew => WhenFull::RefuseNew,
                },
                ..SpoolConfig::new(config.spool_max_bytes)
            };
            // A spool that cannot be opened at all (held by another client, unreadable directory)
            // is a configuration problem; a damaged one opens with warnings.
            let mut spool =
                Spool::open_with(dir, spool_config).map_err(|e| Error::Io(e.to_string()))?;
            q.spool_errors
                .extend(spool.take_warnings().iter().map(ToString::to_string));
            q.next_id = spool.next_free_id();
            let pending: Vec<spool::Entry> = spool.pending().cloned().collect();
            for e in pending {
                match Target::from_names(&e.channels) {
                    Ok(target) => {
                        q.bytes += target.0.len() + e.message.len();
                        q.entries.push_back(Arc::new(Entry {
                            id: e.id,
                            target,
                            message: e.message,
                        }));
                    }
                    Err(_) => {
                        let _ = spool.ack(e.id);
                        q.spool_errors
                            .push(format!("spooled publish {} has no channel; skipped", e.id));
                    }
                }
            }
            q.spool = Some(spool);
            // The limits may be lower than when the spool was written.
            while q.entries.len() > q.max_messages || q.bytes > q.max_bytes {
                let Some(old) = q.entries.pop_front() else {
                    break;
                };
                q.bytes -= old.cost();
                q.forget(old.id);
                q.note_drop(old.id, "queue full: dropped the oldest message".into());
            }
        }
        Ok(q)
    }

    /// Tell the spool an entry left the queue.
    fn forget(&mut self, id: PublishId) {
        if let Some(spool) = self.spool.as_mut()
            && let Err(e) = spool.ack(id)
        {
            self.spool_errors.push(e.to_string());
        }
    }

    /// Spool problems since the last call.
    pub(crate) fn take_spool_errors(&mut self) -> Vec<String> {
        std::mem::take(&mut self.spool_errors)
    }

    /// Flush spooled appends to stable storage (when the queue goes idle).
    pub(crate) fn sync_spool(&mut self) {
        if let Some(spool) = self.spool.as_mut()
            && let Err(e) = spool.sync()
        {
            self.spool_errors.push(e.to_string());
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Queue a message, applying the overflow policy. Returns its id.
    pub(crate) fn push(&mut self, target: Target, message: String) -> Result<PublishId, Error> {
        let entry = Entry {
            id: self.next_id,
            target,
            message,
        };
        let cost = entry.cost();
        let full = |q: &Self| q.entries.len() + 1 > q.max_messages || q.bytes + cost > q.max_bytes;
        if cost > self.max_bytes || (self.policy == OverflowPolicy::RefuseNew && full(self)) {
            return Err(Error::QueueFull {
                messages: self.entries.len(),
                bytes: self.bytes,
            });
        }
        if let Some(spool) = self.spool.as_mut() {
            let record = spool::Entry {
                id: entry.id,
                channels: entry.target.names(),
                message: entry.message.clone(),
            };
            match spool.append(&record) {
                // The spool's own bound dropped older entries: they leave the queue too.
                Ok(dropped) => {
                    for id in dropped {
                        if let Some(old) = self.remove(id) {
                            self.note_drop(old.id, "spool full: dropped the oldest message".into());
                        }
                    }
                }
                Err(spool::SpoolError::Full { pending, .. }) => {
                    return Err(Error::QueueFull {
                        messages: pending,
                        bytes: self.bytes,
                    });
                }
                Err(e) => self.spool_errors.push(e.to_string()),
            }
        }
        while full(self) {
            let Some(old) = self.entries.pop_front() else {
                break;
            };
            self.bytes -= old.cost();
            self.sent = self.sent.saturating_sub(1);
            self.forget(old.id);
            self.note_drop(old.id, "queue full: dropped the oldest message".into());
        }
        self.next_id += 1;
        self.bytes += cost;
        let id = entry.id;
        self.entries.push_back(Arc::new(entry));
        Ok(id)
    }

    fn note_drop(&mut self, id: PublishId, reason: String) {
        if self.drops.len() >= MAX_DROP_NOTES
            && let Some((lost, _)) = self.drops.pop_front()
        {
            log::warn!(
                "publish {lost} dropped; its event was dropped too (too many pending drop events)"
            );
        }
        self.drops.push_back((id, reason));
    }

    /// Drop notes recorded since the last call, oldest first.
    pub(crate) fn take_drops(&mut self) -> VecDeque<(PublishId, String)> {
        std::mem::take(&mut self.drops)
    }

    /// The next entry to send on this connection, marking it sent.
    pub(crate) fn next_unsent(&mut self) -> Option<Arc<Entry>> {
        let e = self.entries.get(self.sent)?.clone();
        self.sent += 1;
        Some(e)
    }

    /// True when entries wait to be sent.
    pub(crate) fn has_unsent(&self) -> bool {
        self.sent < self.entries.len()
    }

    fn remove(&mut self, id: PublishId) -> Option<Arc<Entry>> {
        // Acks come in publish order: the front is the common case, and a binary search over
        // `Arc`s would chase a pointer (a cache miss) per probe.
        let idx = if self.entries.front().is_some_and(|e| e.id == id) {
            0
        } else {
            self.entries.binary_search_by_key(&id, |e| e.id).ok()?
        };
        let e = self.entries.remove(idx)?;
        self.bytes -= e.cost();
        if idx < self.sent {
            self.sent -= 1;
        }
        Some(e)
    }

    /// `rtm/publish/ok` for `id`: forget it. False when it was not held (dropped meanwhile).
    pub(crate) fn ack(&mut self, id: PublishId) -> bool {
        let held = self.remove(id).is_some();
        if held {
            self.forget(id);
        }
        held
    }

    /// `rtm/publish/error` for `id`: forget it (retrying would fail the same way).
    pub(crate) fn refuse(&mut self, id: PublishId) -> bool {
        self.ack(id)
    }

    /// The connection dropped. At-least-once: everything sent goes out again. At-most-once:
    /// what was sent is dropped (and reported).
    pub(crate) fn connection_lost(&mut self, delivery: Delivery) {
        match delivery {
            Delivery::AtLeastOnce => self.sent = 0,
            Delivery::AtMostOnce => {
                for _ in 0..self.sent {
                    if let Some(e) = self.entries.pop_front() {
                        self.bytes -= e.cost();
                        self.forget(e.id);
                        self.note_drop(
                            e.id,
                            "connection lost before the acknowledgement (at-most-once)".into(),
                        );
                    }
                }
                self.sent = 0;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queue(max_messages: usize, max_bytes: usize, policy: OverflowPolicy) -> PublishQueue {
        PublishQueue::new(&Config::new("ws://h:1", "k", "r", "s").queue_limits(
            max_messages,
            max_bytes,
            policy,
        ))
        .unwrap()
    }

    fn push(q: &mut PublishQueue, msg: &str) -> Result<PublishId, Error> {
        q.push(Target::channel("c").unwrap(), msg.into())
    }

    #[test]
    fn drop_oldest_reports_each_drop() {
        let mut q = queue(2, 1000, OverflowPolicy::DropOldest);
        let a = push(&mut q, "1").unwrap();
        let b = push(&mut q, "2").unwrap();
        let c = push(&mut q, "3").unwrap();
        assert_eq!(q.len(), 2);
        assert_eq!(
            q.take_drops().into_iter().map(|d| d.0).collect::<Vec<_>>(),
            vec![a]
        );
        assert_eq!(q.next_unsent().unwrap().id, b);
        assert!(q.ack(b));
        assert_eq!(q.next_unsent().unwrap().id, c);
        assert!(!q.has_unsent());
    }

    #[test]
    fn refuse_new_keeps_the_queue() {
        let mut q = queue(10, 22, OverflowPolicy::RefuseNew);
        push(&mut q, "\"0123456\"").unwrap(); // `"channel":"c"` (13) + 9 = 22 bytes
        assert!(matches!(
            push(&mut q, "1"),
            Err(Error::QueueFull {
                messages: 1,
                bytes: 22
            })
        ));
        assert!(q.take_drops().is_empty());
    }

    #[test]
    fn resend_after_loss() {
        let mut q = queue(10, 1000, OverflowPolicy::DropOldest);
        let ids: Vec<_> = (0..3)
            .map(|i| push(&mut q, &i.to_string()).unwrap())
            .collect();
        while q.next_unsent().is_some() {}
        assert!(q.ack(ids[1]));
        q.connection_lost(Delivery::AtLeastOnce);
        assert_eq!(q.next_unsent().unwrap().id, ids[0]);
        assert_eq!(q.next_unsent().unwrap().id, ids[2]);
        q.connection_lost(Delivery::AtMostOnce);
        assert_eq!(q.len(), 0);
        assert_eq!(q.take_drops().len(), 2);
    }

    #[test]
    fn pdu_text() {
        let e = Entry {
            id: 7,
            target: Target::channels(&["a", "b\""]).unwrap(),
            message: "{\"x\":1}".into(),
        };
        let mut pdu = String::new();
        e.write_pdu(&mut pdu);
        let v: serde_json::Value = serde_json::from_str(&pdu).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"action":"rtm/publish","id":7,"body":{"channels":["a","b\""],"message":{"x":1}}})
        );
    }
}
