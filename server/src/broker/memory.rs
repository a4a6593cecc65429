//! The embedded backend: history, key/value and fan-out in this process's memory.
//!
//! Each channel is one mutex holding its history ring, its subscriber list and its last
//! position. Publishing appends and offers to every live subscriber under that lock, and
//! subscribing replays history and registers under the same lock: that is what makes
//! resume-from-position gap-free and duplicate-free. Offers never block, and a publish never
//! waits for a subscriber (see [`super::mailbox`]).
//!
//! A subscriber whose connection queue has no room for a message is not offered live messages
//! any more: it is marked behind at that message's index and reads the history ring from there
//! at its connection's pace ([`HistoryReader`], see [`super::catchup`]), and is put back live
//! under the channel lock when it reaches the newest message. Every message has an index
//! (messages appended before it), so what a laggard missed when the ring was trimmed past it is
//! counted exactly.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{SystemTime, UNIX_EPOCH};

use parking_lot::{Mutex, RwLock};

use super::backend::{
    Backend, BackendError, BoxFuture, ChannelKey, Message, NodeHealth, StartAt, SubscribeAck,
};
use super::catchup::{CatchUp, CatchUpCounters, Laggard};
use super::mailbox::Subscriber;
use cobra_wire::Position;

/// Accounting size of one queued message, as the mailbox counts it (payload + overhead), for
/// a refill's budget.
fn queued_size(message: &Message) -> usize {
    message.payload.len() + 64
}

/// A subscriber of a channel.
#[derive(Debug)]
struct Member {
    subscriber: Arc<Subscriber>,
    /// `Some(i)`: catching up from history (not offered live messages); `i` is the index of
    /// the next message it is to be given.
    behind: Option<u64>,
}

#[derive(Debug, Default)]
struct Channel {
    history: VecDeque<Arc<Message>>,
    members: Vec<Member>,
    last: Position,
    /// Messages appended since the channel was created: the index of the next one. The
    /// history holds indexes `appended - history.len() .. appended`.
    appended: u64,
    /// Position of the newest message trimmed from the history.
    last_trimmed: Option<Position>,
    /// Messages trimmed since the channel was created.
    trimmed: u64,
}

impl Channel {
    /// Never published to and without subscribers: it holds nothing worth keeping.
    fn is_unused(&self) -> bool {
        self.members.is_empty() && self.last == Position::ZERO
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
        self.appended += 1;
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

    /// Index of the oldest message kept.
    fn front(&self) -> u64 {
        self.appended - self.history.len() as u64
    }
}

/// Offers the messages of `history` (whose first has index `front`) from index `next` (not
/// older than `front`) to `subscriber`, until the newest, about `budget` bytes, or a full
/// queue (for a history of `max_length` messages, see [`super::catchup::past_live_depth`]); returns
/// the index of the first message not given.
fn feed(
    history: &VecDeque<Arc<Message>>,
    front: u64,
    subscriber: &Subscriber,
    mut next: u64,
    budget: usize,
    max_length: usize,
) -> u64 {
    let mut spent = 0;
    while spent < budget {
        let Some(message) = history.get((next - front) as usize) else {
            break;
        };
        if !subscriber.try_offer(message, max_length) {
            break;
        }
        spent += queued_size(message);
        next += 1;
    }
    next
}

/// A subscriber catching up: reads its channel's history at its connection's pace (see the
/// module docs).
#[derive(Debug)]
struct HistoryReader {
    channel: Weak<Mutex<Channel>>,
    subscriber: Arc<Subscriber>,
    /// Counted as a laggard (not for a replay asked by a subscribe).
    laggard: Option<Laggard>,
    counters: Arc<CatchUpCounters>,
    /// The channel's `channel_max_length`: how deep it fills the queue
    /// ([`super::catchup::past_live_depth`]).
    history: usize,
}

impl CatchUp for HistoryReader {
    fn refill(&self, budget: usize) -> bool {
        let Some(channel) = self.channel.upgrade() else {
            return false;
        };
        let mut guard = channel.lock();
        let ch = &mut *guard;
        let (front, appended) = (ch.front(), ch.appended);
        let Some(member) = ch
            .members
            .iter_mut()
            .find(|m| Arc::ptr_eq(&m.subscriber, &self.subscriber))
        else {
            return false; // unsubscribed
        };
        let Some(mut next) = member.behind else {
            return false;
        };
        if self.subscriber.ended() {
            return false; // removed with out_of_sync by its session: nothing more to read
        }
        if next < front {
            let missed = front - next;
            if !self.subscriber.report_loss(
                missed,
                "the subscriber fell behind the channel's history (channel_max_length)",
            ) {
                return false;
            }
            self.counters.expired.fetch_add(1, Ordering::Relaxed);
            self.counters.missed.fetch_add(missed, Ordering::Relaxed);
            if self.subscriber.ended() {
                // Its session removes it with `out_of_sync` (what follows would be dropped).
                member.behind = Some(front);
                return false;
            }
            next = front;
        }
        let fed = feed(
            &ch.history,
            front,
            &self.subscriber,
            next,
            budget,
            self.history,
        );
        if self.laggard.is_some() {
            self.counters
                .served
                .fetch_add(fed - next, Ordering::Relaxed);
        }
        if fed == appended {
            member.behind = None; // live again: the next publish is offered to it
            false
        } else {
            member.behind = Some(fed);
            true
        }
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
    counters: Arc<CatchUpCounters>,
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
            counters: Arc::default(),
        }
    }

    fn channel(&self, key: &ChannelKey) -> Arc<Mutex<Channel>> {
        if let Some(c) = self.channels.read().get(key) {
            return Arc::clone(c);
        }
        Arc::clone(self.channels.write().entry(key.clone()).or_default())
    }

    /// Publishes synchronously: appends and offers to every live subscriber. A subscriber
    /// without room for it starts catching up from history (see the module docs).
    pub fn publish_now(&self, key: &ChannelKey, payload: Arc<str>) -> Position {
        let channel = self.channel(key);
        let mut guard = channel.lock();
        let message = guard.append(payload, self.max_length);
        self.published.fetch_add(1, Ordering::Relaxed);
        let index = guard.appended - 1;
        for m in &mut guard.members {
            if m.behind.is_none() && !m.subscriber.try_offer(&message, self.max_length) {
                m.behind = Some(index);
                self.start_catch_up(&channel, &m.subscriber, true);
            }
        }
        message.position
    }

    /// Registers a [`HistoryReader`] for `subscriber` (marked behind by the caller, under the
    /// channel lock).
    fn start_catch_up(
        &self,
        channel: &Arc<Mutex<Channel>>,
        subscriber: &Arc<Subscriber>,
        laggard: bool,
    ) {
        subscriber.mailbox().start_catch_up(Arc::new(HistoryReader {
            channel: Arc::downgrade(channel),
            subscriber: Arc::clone(subscriber),
            laggard: laggard.then(|| self.counters.laggard()),
            counters: Arc::clone(&self.counters),
            history: self.max_length,
        }));
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
        let mut behind = None;
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
            let front = ch.front();
            let first = front + ch.history.partition_point(|m| m.position <= replay_from) as u64;
            // What fits now goes at once; a longer replay is read at the connection's pace.
            let next = feed(
                &ch.history,
                front,
                &subscriber,
                first,
                usize::MAX,
                self.max_length,
            );
            if next < ch.appended {
                behind = Some(next);
                self.start_catch_up(&channel, &subscriber, false);
            }
        }
        ch.members.push(Member { subscriber, behind });
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
        let pos = self.publish_now(channel, payload);
        Box::pin(std::future::ready(Ok(pos)))
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
            ch.members
                .retain(|m| !Arc::ptr_eq(&m.subscriber, subscriber));
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

    fn catch_up_counters(&self) -> Arc<CatchUpCounters> {
        Arc::clone(&self.counters)
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
    use crate::broker::mailbox::{Delivery, Mailbox, Notice};

    fn sub(limit: usize) -> (Arc<Mailbox>, Arc<Subscriber>) {
        let mb = Arc::new(Mailbox::new(limit));
        let s = Arc::new(Subscriber::new(Arc::clone(&mb), 1));
        (mb, s)
    }

    /// What [`drain_all`] gets, the lagging flag aside.
    fn drain(mb: &Mailbox) -> Vec<String> {
        drain_all(mb).0
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

    /// Drains until a drain brings nothing, as the session does (each drain may refill for the
    /// next: a replay deeper than the queue takes comes in several, read from history).
    fn drain_all(mb: &Mailbox) -> (Vec<String>, bool) {
        let (mut all, mut lagging) = (Vec::new(), false);
        loop {
            let mut out: Vec<Delivery> = Vec::new();
            lagging |= mb.drain(&mut out, usize::MAX).lagging;
            if out.is_empty() {
                return (all, lagging);
            }
            all.extend(out.iter().map(|d| d.message.payload.to_string()));
        }
    }

    #[test]
    fn a_full_queue_switches_to_catch_up_and_loses_nothing_within_history() {
        let b = MemoryBackend::new(100);
        // Room for one 50-byte message (114 accounted bytes) at a time.
        let (mb, s) = sub(200);
        let k = burst_to(&b, &s, 10, 50);
        assert_eq!(b.counters.active.load(Ordering::Relaxed), 1);
        let (got, lagging) = drain_all(&mb);
        let want: Vec<String> = (0..10).map(|i| format!("{i:>50}")).collect();
        assert_eq!(got, want, "all, in order, once");
        assert!(!lagging);
        assert_eq!(s.take_missed(), 0);
        assert!(s.take_notices().is_empty());
        assert_eq!(b.counters.served.load(Ordering::Relaxed), 9);
        assert_eq!(b.counters.active.load(Ordering::Relaxed), 0);
        // Live again: the next message is offered at once.
        b.publish_now(&k, "live".into());
        assert_eq!(drain(&mb), ["live"]);
    }

    /// Subscribes `s` live to channel `c` of `b`, then publishes `n` messages of `width` bytes
    /// (`i` right-aligned) without draining; returns the channel.
    fn burst_to(b: &MemoryBackend, s: &Arc<Subscriber>, n: usize, width: usize) -> ChannelKey {
        let k = ChannelKey::new("app", "c");
        b.subscribe_now(&k, StartAt::Live, Arc::clone(s));
        for i in 0..n {
            b.publish_now(&k, format!("{i:>width$}").into());
        }
        k
    }

    /// Publishes `n` 4-byte messages, without draining, on a history of 1,000 to a live
    /// subscriber whose connection may queue `limit` bytes.
    fn burst_to_a_live_subscriber(limit: usize, n: usize) -> (MemoryBackend, Arc<Mailbox>) {
        let b = MemoryBackend::new(1000);
        let (mb, s) = sub(limit);
        burst_to(&b, &s, n, 4);
        (b, mb)
    }

    #[test]
    fn a_laggard_queues_no_more_than_a_quarter_of_the_history_and_reads_the_rest_from_it() {
        // The history (1,000 × 68 accounted bytes) holds more than the queue's 32 KiB: the queue
        // stops at 250 and the laggard reads the rest from the history while its position is
        // still in there (a queue deeper than the history is a position that has always expired
        // by the time the queue is drained).
        let (b, mb) = burst_to_a_live_subscriber(32 << 10, 800);
        assert_eq!(
            mb.queued_bytes() / (4 + 64),
            250,
            "a quarter of the history"
        );
        assert_eq!(b.counters.active.load(Ordering::Relaxed), 1);
        let (got, lagging) = drain_all(&mb);
        let want: Vec<String> = (0..800).map(|i| format!("{i:>4}")).collect();
        assert_eq!(got, want, "all, in order, once");
        assert!(!lagging);
        assert_eq!(b.counters.served.load(Ordering::Relaxed), 800 - 250);
        assert_eq!(b.counters.active.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn a_history_shorter_than_the_queue_leaves_the_burst_to_the_queue() {
        // 1,000 × 68 bytes of history against an 8 MiB queue: catching up could not help (the
        // position would expire while the queue drained), so the queue takes the whole burst.
        let (b, mb) = burst_to_a_live_subscriber(8 << 20, 3000);
        assert_eq!(mb.queued_bytes() / (4 + 64), 3000, "all queued");
        assert_eq!(b.counters.started.load(Ordering::Relaxed), 0);
        let (got, _) = drain_all(&mb);
        assert_eq!(got.len(), 3000, "nothing lost beyond the history");
    }

    /// Publishes 0..10 on a history of 3 to a subscriber with room for one message: it takes 0,
    /// then 1..=6 are trimmed before it can read them. Returns what it got after the first.
    fn lag_behind_the_history(b: &MemoryBackend, s: &Arc<Subscriber>, mb: &Mailbox) -> Vec<String> {
        burst_to(b, s, 10, 50);
        let mut out: Vec<Delivery> = Vec::new();
        mb.drain(&mut out, usize::MAX);
        assert_eq!(out.len(), 1, "the one that fitted");
        let (got, lagging) = drain_all(mb);
        assert!(lagging);
        assert_eq!(
            s.take_notices(),
            [Notice::Lost {
                missed: 6,
                reason: "the subscriber fell behind the channel's history (channel_max_length)"
                    .into()
            }],
            "exactly the 6 trimmed"
        );
        assert_eq!(b.counters.missed.load(Ordering::Relaxed), 6);
        assert_eq!(
            b.counters.expired.load(Ordering::Relaxed),
            1,
            "counted once"
        );
        got
    }

    #[test]
    fn a_laggard_behind_the_history_is_told_the_exact_count_and_ends() {
        let b = MemoryBackend::new(3);
        let (mb, s) = sub(200);
        let got = lag_behind_the_history(&b, &s, &mb);
        assert!(got.is_empty(), "out_of_sync ends the subscription: {got:?}");
        assert!(s.ended());
    }

    #[test]
    fn a_fast_forwarding_laggard_is_told_the_exact_count_and_goes_on() {
        let b = MemoryBackend::new(3);
        let mb = Arc::new(Mailbox::new(200));
        let s = Arc::new(Subscriber::new(Arc::clone(&mb), 1).fast_forwarding(true));
        let got = lag_behind_the_history(&b, &s, &mb);
        assert_eq!(got, [7, 8, 9].map(|i| format!("{i:>50}")));
        assert!(!s.ended());
    }

    #[test]
    fn a_long_replay_is_read_at_the_connection_pace() {
        let b = MemoryBackend::new(100);
        let k = ChannelKey::new("app", "c");
        for i in 0..20 {
            b.publish_now(&k, format!("{i:>50}").into());
        }
        let (mb, s) = sub(500);
        b.subscribe_now(&k, StartAt::After(Position::ZERO), Arc::clone(&s));
        assert!(mb.queued_bytes() <= 500);
        b.publish_now(&k, "new".into());
        let (got, _) = drain_all(&mb);
        let mut want: Vec<String> = (0..20).map(|i| format!("{i:>50}")).collect();
        want.push("new".into());
        assert_eq!(got, want);
        assert_eq!(
            b.counters.started.load(Ordering::Relaxed),
            0,
            "a replay is no laggard"
        );
    }

    #[test]
    fn an_unsubscribed_laggard_stops_reading() {
        let b = MemoryBackend::new(100);
        let (mb, s) = sub(200);
        let k = burst_to(&b, &s, 5, 50);
        b.unsubscribe(&k, &s);
        assert_eq!(drain_all(&mb).0.len(), 1, "only what was queued");
        assert_eq!(mb.catch_up_count(), 0);
        assert_eq!(b.counters.active.load(Ordering::Relaxed), 0);
    }
}
