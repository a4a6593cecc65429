//! The embedded backend: history, key/value and fan-out in this process's memory.
//!
//! Each channel is one mutex holding its history ring, its subscriber list and its last
//! position. Publishing appends and offers to every subscriber under that lock, and subscribing
//! replays history and registers under the same lock: that is what makes resume-from-position
//! gap-free and duplicate-free. Offers never block (see [`super::mailbox`]).
//!
//! Back-pressure: a publish is appended and offered at call time (publish order is call
//! order), but its future stays pending while it left some subscriber's mailbox above that
//! mailbox's high-water mark, until the mailbox drains, in rounds bounded in time and number
//! ([`super::mailbox::wait_for_drain`]). A busy server thus slows its publishers down instead
//! of making its subscribers lose messages; a stuck subscriber costs one round, then loses
//! messages as before. (The Redis backend never waits: see [`super::mailbox`].)

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use parking_lot::{Mutex, RwLock};

use super::backend::{
    Backend, BackendError, BoxFuture, ChannelKey, Message, NodeHealth, StartAt, SubscribeAck,
};
use super::mailbox::{Mailbox, Subscriber, wait_for_drain};
use cobra_wire::Position;

#[derive(Debug, Default)]
struct Channel {
    history: VecDeque<Arc<Message>>,
    subscribers: Vec<Arc<Subscriber>>,
    last: Position,
    /// Position of the newest message trimmed from the history.
    last_trimmed: Option<Position>,
    /// Messages trimmed since the channel was created.
    trimmed: u64,
}

impl Channel {
    /// Never published to and without subscribers: it holds nothing worth keeping.
    fn is_unused(&self) -> bool {
        self.subscribers.is_empty() && self.last == Position::ZERO
    }

    fn next_position(&mut self) -> Position {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        // Never backwards, even if the wall clock is.
        self.last = if now > self.last.ms {
            Position { ms: now, seq: 0 }
        } else {
            Position {
                ms: self.last.ms,
                seq: self.last.seq + 1,
            }
        };
        self.last
    }

    fn append(&mut self, payload: Arc<str>, max_length: usize) -> Arc<Message> {
        let position = self.next_position();
        let message = Arc::new(Message { position, payload });
        if max_length > 0 {
            self.history.push_back(Arc::clone(&message));
        } else {
            self.last_trimmed = Some(position);
            self.trimmed += 1;
        }
        while self.history.len() > max_length {
            if let Some(old) = self.history.pop_front() {
                self.last_trimmed = Some(old.position);
                self.trimmed += 1;
            }
        }
        message
    }
}

/// The embedded in-memory [`Backend`].
#[derive(Debug)]
pub struct MemoryBackend {
    channels: RwLock<HashMap<ChannelKey, Arc<Mutex<Channel>>>>,
    kv: Mutex<HashMap<ChannelKey, Arc<str>>>,
    kv_clock: Mutex<Channel>,
    max_length: usize,
    /// Messages published, for [`Backend::health`].
    published: AtomicU64,
}

impl MemoryBackend {
    /// A backend keeping the last `channel_max_length` messages of each channel.
    pub fn new(channel_max_length: usize) -> Self {
        MemoryBackend {
            channels: RwLock::new(HashMap::new()),
            kv: Mutex::new(HashMap::new()),
            kv_clock: Mutex::new(Channel::default()),
            max_length: channel_max_length,
            published: AtomicU64::new(0),
        }
    }

    fn channel(&self, key: &ChannelKey) -> Arc<Mutex<Channel>> {
        if let Some(c) = self.channels.read().get(key) {
            return Arc::clone(c);
        }
        Arc::clone(self.channels.write().entry(key.clone()).or_default())
    }

    /// Publishes synchronously, without waiting for any subscriber.
    pub fn publish_now(&self, key: &ChannelKey, payload: Arc<str>) -> Position {
        self.publish_offering(key, payload).0
    }

    /// Appends and offers to every subscriber; returns the position and the mailboxes the
    /// publisher should wait for (empty, not allocated, when nobody is above high water).
    fn publish_offering(
        &self,
        key: &ChannelKey,
        payload: Arc<str>,
    ) -> (Position, Vec<Arc<Mailbox>>) {
        let channel = self.channel(key);
        let mut ch = channel.lock();
        let message = ch.append(payload, self.max_length);
        self.published.fetch_add(1, Ordering::Relaxed);
        let mut behind: Vec<Arc<Mailbox>> = Vec::new();
        for s in &ch.subscribers {
            if let Some(mailbox) = s.offer_pressured(&message)
                && !behind.iter().any(|m| Arc::ptr_eq(m, mailbox))
            {
                behind.push(Arc::clone(mailbox));
            }
        }
        (message.position, behind)
    }

    fn subscribe_now(
        &self,
        key: &ChannelKey,
        start: StartAt,
        subscriber: Arc<Subscriber>,
    ) -> SubscribeAck {
        let channel = self.channel(key);
        let mut ch = channel.lock();
        let mut expired = None;
        if let StartAt::After(after) = start {
            let replay_from = match ch.last_trimmed {
                Some(trimmed) if after != Position::ZERO && after < trimmed => {
                    // Messages in (after, trimmed] are gone; we cannot count those exactly
                    // without their positions, so report the trimmed total as an upper bound.
                    expired = Some(ch.trimmed);
                    Position::ZERO
                }
                _ => after,
            };
            let first = ch.history.partition_point(|m| m.position <= replay_from);
            for m in ch.history.range(first..) {
                subscriber.offer(m);
            }
        }
        ch.subscribers.push(subscriber);
        SubscribeAck {
            position: ch.last,
            expired,
        }
    }
}

impl Backend for MemoryBackend {
    fn publish(
        &self,
        channel: &ChannelKey,
        payload: Arc<str>,
    ) -> BoxFuture<'_, Result<Position, BackendError>> {
        let (pos, behind) = self.publish_offering(channel, payload);
        if behind.is_empty() {
            return Box::pin(std::future::ready(Ok(pos)));
        }
        Box::pin(async move {
            wait_for_drain(&behind).await;
            Ok(pos)
        })
    }

    fn subscribe(
        &self,
        channel: &ChannelKey,
        start: StartAt,
        subscriber: Arc<Subscriber>,
    ) -> BoxFuture<'_, Result<SubscribeAck, BackendError>> {
        let ack = self.subscribe_now(channel, start, subscriber);
        Box::pin(std::future::ready(Ok(ack)))
    }

    fn unsubscribe(&self, channel: &ChannelKey, subscriber: &Arc<Subscriber>) {
        let Some(c) = self.channels.read().get(channel).cloned() else {
            return;
        };
        let unused = {
            let mut ch = c.lock();
            ch.subscribers.retain(|s| !Arc::ptr_eq(s, subscriber));
            ch.is_unused()
        };
        drop(c);
        if unused {
            // A channel only ever subscribed to would otherwise stay forever: subscribing to
            // ever new names would grow the map without bound. Removed under the write lock,
            // and only if nobody else holds it (a concurrent subscribe holds a clone).
            let mut map = self.channels.write();
            let remove = map
                .get(channel)
                .is_some_and(|c| Arc::strong_count(c) == 1 && c.lock().is_unused());
            if remove {
                map.remove(channel);
            }
        }
    }

    fn write(
        &self,
        channel: &ChannelKey,
        value: Arc<str>,
    ) -> BoxFuture<'_, Result<Position, BackendError>> {
        let pos = self.kv_clock.lock().next_position();
        self.kv.lock().insert(channel.clone(), value);
        Box::pin(std::future::ready(Ok(pos)))
    }

    fn read(
        &self,
        channel: &ChannelKey,
        at: Option<Position>,
    ) -> BoxFuture<'_, Result<Option<Arc<str>>, BackendError>> {
        let result = match at {
            None => Ok(self.kv.lock().get(channel).cloned()),
            Some(p) => {
                let c = self.channels.read().get(channel).cloned();
                let found = c.and_then(|c| {
                    let ch = c.lock();
                    let i = ch.history.partition_point(|m| m.position < p);
                    ch.history
                        .get(i)
                        .filter(|m| m.position == p)
                        .map(|m| Arc::clone(&m.payload))
                });
                found.map(Some).ok_or(BackendError::NoSuchPosition(p))
            }
        };
        Box::pin(std::future::ready(result))
    }

    fn delete(&self, channel: &ChannelKey) -> BoxFuture<'_, Result<(), BackendError>> {
        self.kv.lock().remove(channel);
        Box::pin(std::future::ready(Ok(())))
    }

    fn pipelines_publishes(&self) -> bool {
        // A publish here is pending only while held back by a slow subscriber.
        false
    }

    fn health(&self) -> Vec<NodeHealth> {
        vec![NodeHealth {
            node: "embedded".into(),
            connected: true,
            queue_depth: 0,
            errors: 0,
            published: self.published.load(Ordering::Relaxed),
            reconnects: 0,
        }]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::mailbox::{Delivery, Mailbox};
    use std::task::Poll;

    fn sub(limit: usize) -> (Arc<Mailbox>, Arc<Subscriber>) {
        let mb = Arc::new(Mailbox::new(limit));
        let s = Arc::new(Subscriber::new(Arc::clone(&mb), 1));
        (mb, s)
    }

    fn drain(mb: &Mailbox) -> Vec<String> {
        let mut out: Vec<Delivery> = Vec::new();
        mb.drain(&mut out, usize::MAX);
        out.iter().map(|d| d.message.payload.to_string()).collect()
    }

    #[test]
    fn appkeys_with_separators_do_not_alias() {
        let a = ChannelKey::new("a::b", "c");
        let b = ChannelKey::new("a", "b::c");
        assert_eq!(a.as_str(), b.as_str());
        assert_ne!(a, b);
        assert_eq!((a.appkey(), a.channel()), ("a::b", "c"));
        assert_eq!((b.appkey(), b.channel()), ("a", "b::c"));
    }

    #[test]
    fn positions_increase_and_history_is_bounded() {
        let b = MemoryBackend::new(3);
        let k = ChannelKey::new("app", "c");
        let mut last = Position::ZERO;
        for i in 0..10 {
            let p = b.publish_now(&k, format!("{i}").into());
            assert!(p > last);
            last = p;
        }
        let (mb, s) = sub(1 << 20);
        let ack = b.subscribe_now(&k, StartAt::After(Position::ZERO), s);
        assert_eq!(ack.position, last);
        assert_eq!(ack.expired, None);
        assert_eq!(drain(&mb), ["7", "8", "9"]);
    }

    #[test]
    fn expired_position_is_reported() {
        let b = MemoryBackend::new(2);
        let k = ChannelKey::new("app", "c");
        let first = b.publish_now(&k, "0".into());
        for i in 1..5 {
            b.publish_now(&k, format!("{i}").into());
        }
        let (mb, s) = sub(1 << 20);
        let ack = b.subscribe_now(&k, StartAt::After(first), s);
        assert_eq!(ack.expired, Some(3));
        assert_eq!(drain(&mb), ["3", "4"]);
    }

    #[test]
    fn channels_only_subscribed_to_are_forgotten_on_unsubscribe() {
        let b = MemoryBackend::new(10);
        for i in 0..1000 {
            let k = ChannelKey::new("app", &format!("c{i}"));
            let (_mb, s) = sub(1 << 10);
            b.subscribe_now(&k, StartAt::Live, Arc::clone(&s));
            b.unsubscribe(&k, &s);
        }
        assert_eq!(b.channels.read().len(), 0);
        // A channel with history, or with another subscriber, stays.
        let (k1, k2) = (
            ChannelKey::new("app", "kept"),
            ChannelKey::new("app", "shared"),
        );
        b.publish_now(&k1, "x".into());
        let (_m1, s1) = sub(1 << 10);
        let (m2, s2) = sub(1 << 10);
        b.subscribe_now(&k1, StartAt::Live, Arc::clone(&s1));
        b.unsubscribe(&k1, &s1);
        b.subscribe_now(&k2, StartAt::Live, Arc::clone(&s1));
        b.subscribe_now(&k2, StartAt::Live, Arc::clone(&s2));
        b.unsubscribe(&k2, &s1);
        assert_eq!(b.channels.read().len(), 2);
        b.publish_now(&k2, "y".into());
        assert_eq!(drain(&m2), ["y"]);
        b.unsubscribe(&k2, &s2);
        assert_eq!(b.channels.read().len(), 2, "k2 now has history");
    }

    #[test]
    fn full_mailbox_counts_losses() {
        let b = MemoryBackend::new(0);
        let k = ChannelKey::new("app", "c");
        let (mb, s) = sub(200);
        b.subscribe_now(&k, StartAt::Live, Arc::clone(&s));
        for _ in 0..10 {
            b.publish_now(&k, "x".repeat(50).into());
        }
        assert_eq!(drain(&mb).len(), 1);
        assert_eq!(s.take_missed(), 9);
    }

    #[tokio::test]
    async fn publish_is_held_while_a_subscriber_is_above_high_water() {
        use crate::broker::mailbox::Backpressure;
        use crate::broker::stats::BackpressureCounters;
        use std::task::{Context, Waker};

        let b = MemoryBackend::new(10);
        let k = ChannelKey::new("app", "c");
        let mb = Arc::new(Mailbox::with_backpressure(
            1000,
            Backpressure {
                wait: std::time::Duration::from_secs(10),
                counters: Arc::new(BackpressureCounters::default()),
            },
        ));
        let s = Arc::new(Subscriber::new(Arc::clone(&mb), 1));
        b.subscribe_now(&k, StartAt::Live, s);
        let mut cx = Context::from_waker(Waker::noop());
        // 136 accounted bytes each: three stay under the 500-byte high-water mark.
        for i in 0..3 {
            let mut f = b.publish(&k, format!("{i:>71}").into());
            assert!(f.as_mut().poll(&mut cx).is_ready());
        }
        let mut held = b.publish(&k, format!("{:>71}", 3).into());
        assert!(held.as_mut().poll(&mut cx).is_pending());
        // Appended and delivered at call time, before the future resolves.
        let mut next = b.publish(&k, format!("{:>71}", 4).into());
        assert_eq!(drain(&mb).len(), 5);
        let Poll::Ready(Ok(p3)) = held.as_mut().poll(&mut cx) else {
            panic!("drained: the publish resolves");
        };
        let Poll::Ready(Ok(p4)) = next.as_mut().poll(&mut cx) else {
            panic!("drained: the publish resolves");
        };
        assert!(p3 < p4, "positions in call order");
    }
}
