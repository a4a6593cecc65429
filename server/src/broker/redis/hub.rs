//! Live delivery for one node: this server's subscriptions on the node, sharing one pub/sub
//! connection, fanned out locally.
//!
//! # Exactly once across the history → live switch
//!
//! A publish is one Lua script (`XADD`, then `PUBLISH` of the `<id> RS <raw>` records of the
//! channel's messages in the batch), so pub/sub order is stream order. A subscription
//! starting after position `P`:
//!
//! 1. registers locally in *catch-up* mode (live messages for it are buffered, not delivered);
//! 2. makes sure the live connection is `SUBSCRIBE`d to the channel (confirmed by Redis), so
//!    every publish executed from now on reaches the buffer;
//! 3. reads the stream after `P` (`XRANGE (P + COUNT page`, page after page), delivering each
//!    entry and remembering the last id delivered, `L`;
//! 4. under the hub lock, delivers the buffered live messages with id > `L` and switches the
//!    subscription to live mode: from then on each pushed message with id > `L` is delivered as
//!    it arrives.
//!
//! A message published before step 2 is in the stream (read in step 3); one published after is
//! pushed (buffered, or delivered live); one both read and pushed is delivered once because of
//! the id check. If the bounded buffer fills during a long replay, the overflowing messages are
//! not kept, and step 3 runs again from `L` before the switch: they are in the stream anyway.
//!
//! # Slow subscribers
//!
//! A live subscription whose connection queue has no room for a pushed message goes back to
//! catch-up mode at its last delivered position, exactly as after a reconnect: its replay reads
//! the stream page by page, each page only once the queue is at most half full
//! ([`crate::broker::mailbox::Mailbox::wait_for_room`]), i.e. at the pace its socket accepts,
//! and switches it back to live as above. The pub/sub reader never waits for it, nor do
//! publishers. If the stream was trimmed past its position meanwhile (every page is read with
//! the trim marker), the loss is reported, exactly when the subscription's place in the stream
//! is known (counted from `entries-added` since it was last live), and it goes on from the
//! oldest entry kept.
//!
//! When the node's connection is lost every subscription goes back to catch-up mode at its last
//! delivered position; when it returns, the channels are `SUBSCRIBE`d again and each
//! subscription replays from where it was, with the same guarantee. Each subscription is told
//! [`Notice::Unavailable`] when the connection goes, [`Notice::Resumed`] when it is live again,
//! and a loss ([`Subscriber::report_loss`]) if its position expired meanwhile.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;
use redis::Value;

#[cfg(test)]
#[path = "../../../tests/support/redis.rs"]
mod redis_support;

use super::keys::Layout;
use super::node::{Node, NodeError};
use super::scripts::{self, RawId};
use crate::broker::backend::{Message, SubscribeAck};
use crate::broker::catchup::{CatchUpCounters, Laggard};
use crate::broker::mailbox::{Notice, Subscriber};
use cobra_wire::Position;

static HISTORY: std::sync::LazyLock<redis::Script> =
    std::sync::LazyLock::new(|| redis::Script::new(scripts::HISTORY));

fn position((ms, seq): RawId) -> Position {
    Position { ms, seq }
}

struct CatchUp {
    /// Identifies one catch-up; a lost connection starts a new one and the old run stops.
    epoch: u64,
    /// A task is replaying for this epoch.
    running: bool,
    buffer: VecDeque<Arc<Message>>,
    /// Live messages came after the buffer was full: they are in the stream after it.
    overflowed: bool,
    /// A live message could not be read while buffering: what came after it is in the
    /// buffer, it is not. The buffer is dropped and the stream read again.
    hole: bool,
}

impl CatchUp {
    fn new(epoch: u64, running: bool) -> Self {
        CatchUp {
            epoch,
            running,
            buffer: VecDeque::new(),
            overflowed: false,
            hole: false,
        }
    }
}

struct Sub {
    subscriber: Arc<Subscriber>,
    /// Position of the last message delivered (or the start point): resume point and
    /// duplicate filter.
    last: Position,
    /// `Some` while the history replays; live messages are then buffered.
    catch_up: Option<CatchUp>,
    /// Told [`Notice::Unavailable`] and not yet [`Notice::Resumed`].
    paused: bool,
    /// `entries-added` index of `last` in the stream, when known: counts exactly what a
    /// trim made it miss.
    index: Option<u64>,
    /// Set while catching up after its queue overflowed (counted in `/metrics`).
    laggard: Option<Laggard>,
}

struct Channel {
    subs: Vec<Sub>,
    /// Serializes this channel's `SUBSCRIBE`/`UNSUBSCRIBE`, so they reach Redis in order.
    op: Arc<tokio::sync::Mutex<()>>,
    /// The connection generation in which Redis confirmed our `SUBSCRIBE`.
    subscribed: Option<u64>,
}

/// The subscriptions of this server on one node.
pub struct Hub {
    layout: Layout,
    /// `channel_max_length`: tells the trim marker (see [`scripts::HistoryPage::marker`]).
    max_length: usize,
    channels: Mutex<HashMap<Arc<str>, Channel>>,
    buffer_cap: usize,
    epochs: AtomicU64,
    counters: Arc<CatchUpCounters>,
}

/// Where a replay ended.
struct Replay {
    /// The stream's latest id and the expiry check, from the first page.
    first: Option<(Position, Option<u64>)>,
    /// The subscription is live again (false: stopped, the queue being full, or superseded).
    live: bool,
}

impl Hub {
    /// An empty hub for the channels of `layout` capped at `max_length`, holding up to
    /// `buffer_cap` live messages per subscription during a replay, counting slow subscribers
    /// in `counters`.
    pub fn new(
        layout: Layout,
        max_length: usize,
        buffer_cap: usize,
        counters: Arc<CatchUpCounters>,
    ) -> Self {
        Hub {
            layout,
            max_length,
            channels: Mutex::new(HashMap::new()),
            buffer_cap: buffer_cap.max(1),
            epochs: AtomicU64::new(0),
            counters,
        }
    }

    /// The Redis names in use.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// Channels with local subscribers.
    pub fn channel_count(&self) -> usize {
        self.channels.lock().len()
    }

    fn next_epoch(&self) -> u64 {
        self.epochs.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// A message pushed by Redis: `[channel, records]` (see [`scripts::split_live`]). Runs on the
    /// connection's reader: only non-blocking work here.
    ///
    /// A payload that does not parse (another program publishing on our channel, or a server
    /// of another version sharing the node) is not dropped with what it held: the channel's
    /// live subscriptions go back to catch-up mode and replay from the stream after the last
    /// message each delivered, which holds every message published, with the same
    /// exactly-once guarantee as after a reconnect.
    pub fn on_message(node: &Arc<Node>, data: &[Value]) {
        let hub = &node.hub;
        let [channel, payload] = data else { return };
        let Some(key) = scripts::bytes(channel).and_then(|c| hub.layout.channel_of_live(c)) else {
            return;
        };
        let Some(records) = scripts::bytes(payload).and_then(scripts::split_live) else {
            if hub.resync(key) {
                tracing::warn!(
                    channel = key,
                    "malformed live message from Redis (a server of another version sharing the node?): the channel's subscriptions replay from its stream"
                );
                Self::restart_stalled(node);
            }
            return;
        };
        if hub.deliver(key, records) {
            // Subscriptions without room went back to catch-up: their replays start.
            Self::restart_stalled(node);
        }
    }

    /// Sends the live subscriptions of `key` back to catch-up mode; false if there were none.
    fn resync(&self, key: &str) -> bool {
        let mut channels = self.channels.lock();
        let Some(ch) = channels.get_mut(key) else {
            return false;
        };
        let mut any = false;
        for sub in &mut ch.subs {
            match &mut sub.catch_up {
                // The buffer now has a hole: the replay drops it and reads the stream again.
                Some(cu) => cu.hole = true,
                None => {
                    sub.catch_up = Some(CatchUp::new(self.next_epoch(), false));
                    any = true;
                }
            }
        }
        any
    }

    /// Fans live records of `key` out to its subscriptions. True when one had no room and went
    /// back to catch-up mode (its replay is to be started).
    fn deliver(&self, key: &str, records: Vec<(RawId, &str)>) -> bool {
        let messages: Vec<Arc<Message>> = records
            .into_iter()
            .map(|(id, raw)| {
                Arc::new(Message {
                    position: position(id),
                    payload: Arc::from(raw),
                })
            })
            .collect();
        let mut channels = self.channels.lock();
        let Some(ch) = channels.get_mut(key) else {
            return false;
        };
        let mut fell_behind = false;
        for sub in &mut ch.subs {
            for message in &messages {
                if message.position <= sub.last {
                    continue; // already delivered from history
                }
                match &mut sub.catch_up {
                    Some(cu) => {
                        if cu.buffer.len() < self.buffer_cap {
                            cu.buffer.push_back(Arc::clone(message));
                        } else {
                            cu.overflowed = true; // the replay will read it from the stream
                        }
                    }
                    None if sub.subscriber.try_offer(message, self.max_length) => {
                        sub.last = message.position;
                        sub.index = sub.index.map(|i| i + 1);
                    }
                    None => {
                        // No room: read the stream after `last` at the connection's pace.
                        sub.catch_up = Some(CatchUp::new(self.next_epoch(), false));
                        sub.laggard = Some(self.counters.laggard());
                        fell_behind = true;
                    }
                }
            }
        }
        fell_behind
    }

    /// The node's connections were lost: every subscription waits to resume from its last
    /// position, and no channel counts as subscribed any more. Each subscription is told
    /// ([`Notice::Unavailable`]), once per outage.
    pub fn on_down(&self, node: &str) {
        let mut channels = self.channels.lock();
        for ch in channels.values_mut() {
            ch.subscribed = None;
            for sub in &mut ch.subs {
                if !sub.paused {
                    sub.paused = true;
                    sub.subscriber.report(Notice::Unavailable(format!(
                        "Redis node {node} holding this channel is down: delivery is paused and resumes by itself after the last message delivered when the node returns"
                    )));
                }
                sub.catch_up = Some(CatchUp::new(self.next_epoch(), false));
            }
        }
    }

    /// The node is connected (again): resubscribe and resume everything.
    pub fn on_up(node: &Arc<Node>, _generation: u64) {
        Self::restart_stalled(node);
    }

    /// Resubscribes channels not subscribed on the current connection and restarts replays that
    /// are not running (after a reconnect, or after a replay failed).
    pub fn restart_stalled(node: &Arc<Node>) {
        let generation = node.generation();
        let keys: Vec<Arc<str>> = {
            let channels = node.hub.channels.lock();
            channels
                .iter()
                .filter(|(_, ch)| {
                    !ch.subs.is_empty()
                        && (ch.subscribed != Some(generation)
                            || ch
                                .subs
                                .iter()
                                .any(|s| s.catch_up.as_ref().is_some_and(|c| !c.running)))
                })
                .map(|(k, _)| Arc::clone(k))
                .collect()
        };
        for key in keys {
            let task_node = Arc::clone(node);
            node.spawn(async move { Self::resume_channel(&task_node, &key).await });
        }
    }

    async fn resume_channel(node: &Arc<Node>, key: &str) {
        if let Err(e) = Self::ensure_subscribed(node, key).await {
            tracing::debug!(channel = key, error = %e, "resubscribe failed; retrying on the next health check");
            return;
        }
        let runs: Vec<(Arc<Subscriber>, u64, Position)> = {
            let mut channels = node.hub.channels.lock();
            let Some(ch) = channels.get_mut(key) else {
                return;
            };
            ch.subs
                .iter_mut()
                .filter_map(|s| {
                    let cu = s.catch_up.as_mut().filter(|c| !c.running)?;
                    cu.running = true;
                    Some((Arc::clone(&s.subscriber), cu.epoch, s.last))
                })
                .collect()
        };
        for (subscriber, epoch, from) in runs {
            // One task per subscription: a replay waits for room in its own connection's
            // queue, so one connection that does not read must not hold back the replays of
            // the channel's other subscriptions (they used to run one after the other here,
            // and a reading subscriber could wait for a stalled one's write timeout).
            let (node, key) = (Arc::clone(node), Arc::<str>::from(key));
            node.clone()
                .spawn(async move { Self::resume_one(&node, &key, subscriber, epoch, from).await });
        }
    }

    async fn resume_one(
        node: &Arc<Node>,
        key: &str,
        subscriber: Arc<Subscriber>,
        epoch: u64,
        from: Position,
    ) {
        match Self::replay(node, key, &subscriber, epoch, Some(from), true).await {
            Ok(Replay {
                first: Some((_, Some(missed))),
                ..
            }) => {
                // Reported by the replay itself, before the messages after the gap.
                tracing::warn!(
                    channel = key,
                    missed,
                    "subscription resumed after its position expired"
                );
            }
            Ok(_) => {}
            Err(e) => {
                tracing::debug!(channel = key, error = %e, "resume failed; retrying on the next health check");
                node.hub.set_idle(key, &subscriber, epoch);
            }
        }
    }

    fn set_idle(&self, key: &str, subscriber: &Arc<Subscriber>, epoch: u64) {
        let mut channels = self.channels.lock();
        if let Some(cu) = channels
            .get_mut(key)
            .and_then(|ch| {
                ch.subs
                    .iter_mut()
                    .find(|s| Arc::ptr_eq(&s.subscriber, subscriber))
            })
            .and_then(|s| s.catch_up.as_mut())
            .filter(|c| c.epoch == epoch)
        {
            cu.running = false;
        }
    }

    /// Makes sure Redis has confirmed our `SUBSCRIBE` to `key` on the current connection.
    async fn ensure_subscribed(node: &Arc<Node>, key: &str) -> Result<(), NodeError> {
        let op = match node.hub.channels.lock().get(key) {
            Some(ch) => Arc::clone(&ch.op),
            None => return Ok(()),
        };
        let _serial = op.lock().await;
        let generation = node.generation();
        match node.hub.channels.lock().get(key) {
            None => return Ok(()),
            Some(ch) if ch.subscribed == Some(generation) && node.is_connected() => return Ok(()),
            Some(_) => {}
        }
        let name = node.hub.layout.live(key);
        let generation = node.subscribe_live(name).await?;
        if let Some(ch) = node.hub.channels.lock().get_mut(key) {
            ch.subscribed = Some(generation);
        }
        Ok(())
    }

    /// `UNSUBSCRIBE`s `key` if nobody here wants it any more, and forgets it.
    async fn ensure_unsubscribed(node: Arc<Node>, key: Arc<str>) {
        let op = match node.hub.channels.lock().get(&*key) {
            Some(ch) => Arc::clone(&ch.op),
            None => return,
        };
        let _serial = op.lock().await;
        {
            let mut channels = node.hub.channels.lock();
            let Some(ch) = channels.get(&*key) else {
                return;
            };
            if !ch.subs.is_empty() {
                return;
            }
            if ch.subscribed != Some(node.generation()) {
                channels.remove(&*key); // nothing to undo on the current connection
                return;
            }
        }
        let name = node.hub.layout.live(&key);
        // A failure means the connection is going away, which unsubscribes it anyway.
        let _ = node.unsubscribe_live(name).await;
        let mut channels = node.hub.channels.lock();
        if let Some(ch) = channels.get_mut(&*key) {
            if ch.subs.is_empty() {
                channels.remove(&*key);
            } else {
                ch.subscribed = None; // someone came back meanwhile: they will subscribe again
            }
        }
    }

    /// Registers `subscriber` and replays what follows `after` (`None`: only new messages).
    pub async fn subscribe(
        node: &Arc<Node>,
        key: &str,
        after: Option<Position>,
        subscriber: Arc<Subscriber>,
    ) -> Result<SubscribeAck, NodeError> {
        let hub = &node.hub;
        let epoch = hub.next_epoch();
        {
            let mut channels = hub.channels.lock();
            let ch = channels.entry(Arc::from(key)).or_insert_with(|| Channel {
                subs: Vec::new(),
                op: Arc::new(tokio::sync::Mutex::new(())),
                subscribed: None,
            });
            ch.subs.push(Sub {
                subscriber: Arc::clone(&subscriber),
                paused: false,
                last: Position::default(),
                catch_up: Some(CatchUp::new(epoch, true)),
                index: None,
                laggard: None,
            });
        }
        let result = match Self::ensure_subscribed(node, key).await {
            Ok(()) => Self::replay(node, key, &subscriber, epoch, after, false).await,
            Err(e) => Err(e),
        };
        match result {
            Ok(Replay {
                first: Some((position, expired)),
                live,
            }) => {
                if !live {
                    // Its queue filled up: the rest is read at the connection's pace.
                    hub.set_idle(key, &subscriber, epoch);
                    Self::restart_stalled(node);
                }
                Ok(SubscribeAck { position, expired })
            }
            Ok(Replay { first: None, .. }) => {
                Self::unsubscribe(node, key, &subscriber);
                Err(node.down_error())
            }
            Err(e) => {
                Self::unsubscribe(node, key, &subscriber);
                Err(e)
            }
        }
    }

    /// Forgets `subscriber`; the channel is `UNSUBSCRIBE`d in the background when it was the
    /// last one here.
    pub fn unsubscribe(node: &Arc<Node>, key: &str, subscriber: &Arc<Subscriber>) {
        let empty = {
            let mut channels = node.hub.channels.lock();
            let Some(ch) = channels.get_mut(key) else {
                return;
            };
            ch.subs.retain(|s| !Arc::ptr_eq(&s.subscriber, subscriber));
            ch.subs.is_empty()
        };
        if empty {
            node.spawn(Self::ensure_unsubscribed(Arc::clone(node), Arc::from(key)));
        }
    }

    /// Replays the stream after `after` (or from its end, for `None`) into `subscriber`, then
    /// switches it to live delivery. See the module docs. When `resuming` (after an outage, or
    /// catching up a slow subscriber), each page waits for room in the subscriber's queue, and
    /// an expired position is reported to the subscriber as a loss before the messages after
    /// the gap (a new subscription reports it in its [`SubscribeAck`] instead, and stops with
    /// `live` false when its queue is full: the caller continues in the background). Stops
    /// quietly (with what it learnt), delivering and reporting nothing more, when the
    /// subscription was removed or its catch-up superseded (a reconnect, a renewed live
    /// connection, the channel's slot moving to another primary).
    async fn replay(
        node: &Arc<Node>,
        key: &str,
        subscriber: &Arc<Subscriber>,
        epoch: u64,
        after: Option<Position>,
        resuming: bool,
    ) -> Result<Replay, NodeError> {
        let page = node.limits().history_page.max(1);
        let stream = node.hub.layout.history(key);
        let mut replay = Replay {
            first: None,
            live: false,
        };
        let mut pos = after.unwrap_or_default();
        // `entries-added` index of `pos`, when known.
        let mut index = if resuming {
            node.hub.sub_index(key, subscriber)
        } else {
            None
        };
        loop {
            if subscriber.ended() {
                return Ok(replay); // a loss ended it (see `Subscriber::report_loss`)
            }
            if resuming {
                subscriber.mailbox().wait_for_room().await;
            }
            // Every page with the stream's state (latest id, trimmed ids): a subscription
            // reading at its socket's pace may see the stream trimmed past it between pages.
            let start = match (replay.first, after) {
                (None, Some(p)) if p == Position::default() => "-".to_string(),
                (None, None) => "-".to_string(),
                _ => format!("({pos}"),
            };
            let count = if replay.first.is_none() && after.is_none() {
                0
            } else {
                page
            };
            let stream_key = stream.clone();
            let reply: Value = node
                .command(|mut c| async move {
                    HISTORY
                        .key(stream_key)
                        .arg(start)
                        .arg(count)
                        .invoke_async(&mut c)
                        .await
                })
                .await?;
            let h = scripts::history_page(reply).map_err(|e| node.reply_error(e))?;
            // A test holds the replay here, with its page read but nothing delivered yet.
            #[cfg(test)]
            let _page = tests::page_read(key).await;
            let last = position(h.last);
            let marker = h.marker(node.hub.max_length).map(position);
            // `entries-added` index of the marker (the oldest entry kept).
            let marker_index = (h.added + 1).saturating_sub(h.length);
            let first_page = replay.first.is_none();
            if first_page && after.is_none() {
                pos = last;
                index = Some(h.added);
            } else if first_page && after == Some(Position::default()) {
                index = Some(h.added.saturating_sub(h.length));
            }
            let expired = match marker {
                Some(m) if (pos != Position::default() || !first_page) && pos < m => {
                    // Exact when this subscription's place in the stream is known; otherwise
                    // every entry ever cut (the marker included) is an upper bound, as the
                    // embedded backend reports for a resume position.
                    Some(match index {
                        Some(i) => marker_index.saturating_sub(i).max(1),
                        None => marker_index,
                    })
                }
                _ => None,
            };
            // The marker and what precedes it are not history any more.
            if let Some(m) = marker
                && pos < m
            {
                pos = m;
                index = Some(marker_index);
            }
            if let Some(missed) = expired
                && (resuming || !first_page)
            {
                // The messages before the gap go out before its report.
                subscriber.mailbox().wait_until_empty().await;
                // Only the current replay reports, under the hub lock: a superseded one would
                // report the gap that its successor, reading from the same position, reports
                // again.
                let reported = {
                    let mut channels = node.hub.channels.lock();
                    let Some(sub) = current(&mut channels, key, subscriber, epoch) else {
                        return Ok(replay); // superseded or unsubscribed: nothing to tell here
                    };
                    let reported = subscriber.report_loss(
                        missed,
                        "the channel's history moved past this subscription's position before it could read it (channel_max_length)",
                    );
                    if reported {
                        // A successor taking over from here on does not meet the gap again.
                        sub.last = pos;
                        sub.index = index;
                    }
                    reported
                };
                if !reported {
                    return Ok(replay); // an earlier loss ended it: counted then
                }
                node.hub.counters.expired.fetch_add(1, Ordering::Relaxed);
                node.hub
                    .counters
                    .missed
                    .fetch_add(missed, Ordering::Relaxed);
                if subscriber.ended() {
                    // Its session removes it with `out_of_sync`: nothing more to read (and a
                    // later page could only meet the gap again, counting it twice).
                    return Ok(replay);
                }
            }
            if first_page {
                replay.first = Some((last, expired));
            }
            let messages: Vec<Arc<Message>> = h
                .entries
                .into_iter()
                .map(|entry| {
                    Arc::new(Message {
                        position: position(entry.id),
                        payload: Arc::from(entry.payload),
                    })
                })
                .collect();
            // (A live-only start reads no entries on its first page, so this is never full.)
            let mut more = messages.len() >= page;
            let mut blocked = false;
            // The page is delivered under the hub lock, once this replay is known to be still
            // the current one: superseded while reading (connection lost or renewed, slot moved),
            // it must deliver nothing, its successor replaying the same entries after `last`.
            let mut channels = node.hub.channels.lock();
            let Some(sub) = current(&mut channels, key, subscriber, epoch) else {
                return Ok(replay); // unsubscribed or superseded: a resume takes over
            };
            let mut served = 0;
            for message in &messages {
                if message.position > pos {
                    if !subscriber.try_offer(message, node.hub.max_length) {
                        // No room: read again from `pos` once there is.
                        (more, blocked) = (true, true);
                        break;
                    }
                    pos = message.position;
                    index = index.map(|i| i + 1);
                    served += 1;
                }
            }
            if sub.laggard.is_some() {
                node.hub
                    .counters
                    .served
                    .fetch_add(served, Ordering::Relaxed);
            }
            let Some(cu) = sub.catch_up.as_mut() else {
                return Ok(replay); // (`current` checked it)
            };
            sub.last = pos;
            sub.index = index;
            if more {
                if blocked && !resuming {
                    // A new subscription's queue is full: the caller goes on in the background
                    // (this task is the connection's own, which must get back to draining).
                    return Ok(replay);
                }
                continue;
            }
            if std::mem::take(&mut cu.hole) {
                cu.buffer.clear();
                continue;
            }
            let mut full = false;
            for message in cu.buffer.drain(..) {
                if message.position > pos {
                    if !subscriber.try_offer(&message, node.hub.max_length) {
                        full = true; // the rest is in the stream after `pos`
                        break;
                    }
                    pos = message.position;
                    index = index.map(|i| i + 1);
                }
            }
            if full {
                cu.buffer.clear();
            }
            sub.last = pos;
            sub.index = index;
            if std::mem::take(&mut cu.overflowed) || full {
                // Live messages were dropped from the buffer: they are in the stream after `pos`.
                continue;
            }
            sub.catch_up = None;
            sub.laggard = None;
            if std::mem::take(&mut sub.paused) {
                sub.subscriber.report(Notice::Resumed);
            }
            replay.live = true;
            return Ok(replay);
        }
    }

    /// The `entries-added` index of `subscriber`'s last delivered message, if known.
    fn sub_index(&self, key: &str, subscriber: &Arc<Subscriber>) -> Option<u64> {
        let channels = self.channels.lock();
        channels
            .get(key)?
            .subs
            .iter()
            .find(|s| Arc::ptr_eq(&s.subscriber, subscriber))?
            .index
    }

    /// Every subscription goes back to catch-up mode at its last position and every channel
    /// counts as not subscribed (the live connection was replaced): [`Hub::restart_stalled`]
    /// subscribes them again and replays what they missed. Nobody is told: nothing was lost.
    pub(crate) fn resync_all(&self) {
        let mut channels = self.channels.lock();
        for ch in channels.values_mut() {
            ch.subscribed = None;
            for sub in &mut ch.subs {
                sub.catch_up = Some(CatchUp::new(self.next_epoch(), false));
            }
        }
    }

    /// Takes out the channels for which `elsewhere(key)` says they now live on another node
    /// (Redis Cluster moved their slot), with their subscriptions at their last position, for
    /// [`Hub::adopt`] on the new node. A channel whose subscription is still replaying for
    /// the first time stays until that ends (its start position is not known yet); the next
    /// topology check moves it. Nothing is unsubscribed here: the old node dropped the shard
    /// channels of a slot it lost (or is gone).
    pub(crate) fn take_channels(&self, elsewhere: impl Fn(&str) -> bool) -> Vec<MovedChannel> {
        let mut channels = self.channels.lock();
        let keys: Vec<Arc<str>> = channels
            .iter()
            .filter(|(key, ch)| {
                elsewhere(key)
                    && !ch
                        .subs
                        .iter()
                        .any(|s| s.catch_up.as_ref().is_some_and(|c| c.running))
            })
            .map(|(key, _)| Arc::clone(key))
            .collect();
        keys.into_iter()
            .filter_map(|key| {
                let ch = channels.remove(&key)?;
                Some(MovedChannel { key, subs: ch.subs })
            })
            .collect()
    }

    /// Takes in channels moved from another node (see [`Hub::take_channels`]): each
    /// subscription resumes after its last position once [`Hub::restart_stalled`] runs.
    pub(crate) fn adopt(&self, moved: Vec<MovedChannel>) {
        let mut channels = self.channels.lock();
        for MovedChannel { key, subs } in moved {
            let ch = channels.entry(key).or_insert_with(|| Channel {
                subs: Vec::new(),
                op: Arc::new(tokio::sync::Mutex::new(())),
                subscribed: None,
            });
            ch.subscribed = None;
            for mut sub in subs {
                sub.catch_up = Some(CatchUp::new(self.next_epoch(), false));
                ch.subs.push(sub);
            }
        }
    }
}

/// `subscriber`'s subscription to `key` in `channels` if its catch-up is still the one of
/// `epoch`; `None` once it was unsubscribed, or superseded by a new catch-up (the connection
/// was lost or renewed, or the channel moved to another node).
fn current<'a>(
    channels: &'a mut HashMap<Arc<str>, Channel>,
    key: &str,
    subscriber: &Arc<Subscriber>,
    epoch: u64,
) -> Option<&'a mut Sub> {
    channels
        .get_mut(key)?
        .subs
        .iter_mut()
        .find(|s| Arc::ptr_eq(&s.subscriber, subscriber))
        .filter(|s| s.catch_up.as_ref().is_some_and(|c| c.epoch == epoch))
}

/// A channel's subscriptions on their way to the node that now holds the channel.
pub(crate) struct MovedChannel {
    key: Arc<str>,
    subs: Vec<Sub>,
}

impl MovedChannel {
    /// The channel (as stored: hash-tagged).
    pub(crate) fn key(&self) -> &str {
        &self.key
    }
}

#[cfg(test)]
mod tests {
    use super::redis_support::{self, RedisCluster};
    use super::*;

    use std::sync::mpsc;
    use std::time::Duration;

    use crate::broker::mailbox::{Delivery, Mailbox};
    use crate::broker::redis::cluster::slots::{slot_of, tagged};
    use crate::broker::redis::{RedisBackend, RedisLimits};
    use cobra_test_support::client::eventually_within;

    const WAIT: Duration = Duration::from_secs(30);

    /// What the mailbox counts per queued message besides its payload.
    const ITEM_BYTES: usize = 64;

    /// The replay side of [`hold_replay`].
    struct Hold {
        key: String,
        reached: mpsc::Sender<()>,
        release: tokio::sync::oneshot::Receiver<()>,
        done: mpsc::Sender<()>,
    }

    static HOLDS: Mutex<Vec<Hold>> = Mutex::new(Vec::new());

    /// The test side of [`hold_replay`].
    struct Held {
        /// Hears when the replay has read its page.
        reached: mpsc::Receiver<()>,
        /// Lets it go on.
        release: tokio::sync::oneshot::Sender<()>,
        /// Hears when it is done with that page (went on to the next, or returned).
        done: mpsc::Receiver<()>,
    }

    /// The next replay of `key` stops once it has read a page, before delivering any of it or
    /// reporting a loss, until the test releases it.
    fn hold_replay(key: &str) -> Held {
        let (reached, reached_rx) = mpsc::channel();
        let (release_tx, release) = tokio::sync::oneshot::channel();
        let (done, done_rx) = mpsc::channel();
        HOLDS.lock().push(Hold {
            key: key.to_string(),
            reached,
            release,
            done,
        });
        Held {
            reached: reached_rx,
            release: release_tx,
            done: done_rx,
        }
    }

    /// Dropped by the replay when it is done with the held page.
    pub(super) struct PageDone(mpsc::Sender<()>);

    impl Drop for PageDone {
        fn drop(&mut self) {
            let _ = self.0.send(());
        }
    }

    /// Called by [`Hub::replay`] after reading each page: waits there if a test holds `key`.
    pub(super) async fn page_read(key: &str) -> Option<PageDone> {
        let hold = {
            let mut holds = HOLDS.lock();
            let i = holds.iter().position(|h| h.key == key)?;
            holds.swap_remove(i)
        };
        let _ = hold.reached.send(());
        let _ = hold.release.await;
        Some(PageDone(hold.done))
    }

    /// The port of the primary serving `slot`, from each primary's own `CLUSTER NODES` line.
    fn primary_of(cluster: &RedisCluster, slot: u16) -> u16 {
        let serves = |range: &str| match range.split_once('-') {
            Some((a, b)) => {
                a.parse::<u16>().is_ok_and(|a| a <= slot)
                    && b.parse::<u16>().is_ok_and(|b| slot <= b)
            }
            None => range.parse::<u16>() == Ok(slot),
        };
        cluster
            .primary_ports()
            .into_iter()
            .find(|&port| {
                redis_support::cli(port, &["cluster", "nodes"])
                    .lines()
                    .find(|l| l.contains("myself"))
                    .is_some_and(|l| l.split_whitespace().skip(8).any(serves))
            })
            .unwrap_or_else(|| panic!("no primary serves slot {slot}"))
    }

    /// A 3-primary cluster, a backend on it and a channel whose slot [`Setup::reshard`] moves.
    struct Setup {
        cluster: RedisCluster,
        backend: Arc<RedisBackend>,
        rt: tokio::runtime::Runtime,
        name: String,
    }

    /// Slots `0..MOVED` move (`redis-cli --cluster reshard` takes the lowest first).
    const MOVED: u16 = 100;

    impl Setup {
        /// `None` (the test skips) without redis-server and redis-cli. `test` names the channel:
        /// the holds are process-wide and the tests run in parallel, so each needs its own key.
        fn new(test: &str, channel_max_length: usize) -> Option<Self> {
            if !(redis_support::available() && redis_support::cli_available()) {
                return None;
            }
            let cluster = RedisCluster::spawn(3, 0, 1000);
            let limits = RedisLimits {
                reconnect_max: Duration::from_millis(200),
                health_interval: Duration::from_millis(250),
                ..RedisLimits::default()
            };
            let backend =
                RedisBackend::start_cluster(&cluster.seeds(), None, channel_max_length, limits)
                    .expect("backend");
            let name = (0..)
                .map(|i| format!("{test}::c{i}"))
                .find(|n| slot_of(tagged(n).as_bytes()) < MOVED)
                .expect("a channel in the moved slots");
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("runtime");
            Some(Setup {
                cluster,
                backend: Arc::new(backend),
                rt,
                name,
            })
        }

        fn publish(&self, n: u64) -> Position {
            let text = format!(r#"{{"n":{n}}}"#).into();
            self.rt
                .block_on(self.backend.publish_raw(&self.name, text))
                .expect("publish")
        }

        /// Moves the channel's slot to another primary; returns once it is done.
        fn reshard(&self) {
            let from = primary_of(&self.cluster, slot_of(tagged(&self.name).as_bytes()));
            assert_eq!(primary_of(&self.cluster, 0), from);
            let to = self
                .cluster
                .primary_ports()
                .into_iter()
                .find(|&p| p != from)
                .expect("another primary");
            self.cluster.reshard(from, to, usize::from(MOVED));
            assert_eq!(primary_of(&self.cluster, 0), to, "the slots moved");
        }
    }

    /// Moves what `mailbox` holds into `got`.
    fn drain(mailbox: &Mailbox, got: &mut Vec<Position>) {
        let mut out: Vec<Delivery> = Vec::new();
        mailbox.drain(&mut out, 1 << 20);
        got.extend(out.iter().map(|d| d.message.position));
    }

    /// Issue 18: a subscription's replay has read its page when the channel's slot migrates to
    /// another primary. The subscription moves there and replays from its last position; the
    /// first replay, superseded, must then deliver nothing (it used to deliver its page after
    /// the second one had: every message twice, out of order).
    #[test]
    fn a_replay_superseded_by_a_slot_migration_delivers_nothing_twice() {
        let Some(setup) = Setup::new("delivers_nothing_twice", 1000) else {
            return;
        };
        let mut published: Vec<Position> = (0..10).map(|n| setup.publish(n)).collect();

        // A new subscription from the start, its replay held once it has read the ten.
        let held = hold_replay(&tagged(&setup.name));
        let mailbox = Arc::new(Mailbox::new(1 << 20));
        let subscriber = Arc::new(Subscriber::new(Arc::clone(&mailbox), 0));
        let subscribing = {
            let (backend, name, subscriber) = (
                Arc::clone(&setup.backend),
                setup.name.clone(),
                Arc::clone(&subscriber),
            );
            setup.rt.spawn(async move {
                backend
                    .subscribe_raw(&name, Some(Position::default()), subscriber)
                    .await
            })
        };
        held.reached
            .recv_timeout(WAIT)
            .expect("the replay read its page");

        // The slot moves: the subscription goes to the new primary and replays from there.
        setup.reshard();
        let mut got: Vec<Position> = Vec::new();
        eventually_within("the replay on the new primary", WAIT, || {
            drain(&mailbox, &mut got);
            (got.len() >= published.len()).then_some(())
        });

        // The superseded replay goes on with its page: it must deliver none of it.
        held.release.send(()).expect("the held replay waits");
        setup
            .rt
            .block_on(subscribing)
            .expect("subscribe task")
            .expect("subscribed");
        // A message published now arrives live, once, after everything before it.
        published.push(setup.publish(10));
        let newest = *published.last().expect("published");
        eventually_within("the live message", WAIT, || {
            drain(&mailbox, &mut got);
            got.last().is_some_and(|p| *p >= newest).then_some(())
        });
        drain(&mailbox, &mut got);
        assert_eq!(got, published, "each message once, in order");
        let notices = subscriber.take_notices();
        assert!(
            !notices
                .iter()
                .any(|n| matches!(n, Notice::Lost { .. } | Notice::Failed { .. })),
            "{notices:?}"
        );
    }

    /// Issue 18, the loss side: a slow subscriber's replay has read a page that shows its
    /// position trimmed away when the channel's slot migrates. The replay taking over on the
    /// new primary reports the loss; the superseded one must not report it again.
    #[test]
    fn a_replay_superseded_by_a_slot_migration_reports_no_loss_twice() {
        const KEPT: usize = 5;
        let Some(setup) = Setup::new("reports_no_loss_twice", KEPT) else {
            return;
        };
        // Room for three messages: the fourth sends the subscription to catch-up mode.
        let mailbox = Arc::new(Mailbox::new(3 * (ITEM_BYTES + 8)));
        let subscriber = Arc::new(Subscriber::new(Arc::clone(&mailbox), 0).fast_forwarding(true));
        setup
            .rt
            .block_on(
                setup
                    .backend
                    .subscribe_raw(&setup.name, None, Arc::clone(&subscriber)),
            )
            .expect("subscribed");
        // The catch-up replay waits for room, then reads the page that shows the gap: held.
        let held = hold_replay(&tagged(&setup.name));
        let published: Vec<Position> = (0..40).map(|n| setup.publish(n)).collect();
        let mut got: Vec<Position> = Vec::new();
        drain(&mailbox, &mut got);
        held.reached
            .recv_timeout(WAIT)
            .expect("the replay read its page");

        setup.reshard();
        let newest = *published.last().expect("published");
        eventually_within("the replay on the new primary", WAIT, || {
            drain(&mailbox, &mut got);
            got.last().is_some_and(|p| *p >= newest).then_some(())
        });
        held.release.send(()).expect("the held replay waits");
        held.done
            .recv_timeout(WAIT)
            .expect("the superseded replay is done with its page");
        drain(&mailbox, &mut got);

        let losses = subscriber
            .take_notices()
            .into_iter()
            .filter(|n| matches!(n, Notice::Lost { .. }))
            .count();
        assert_eq!(losses, 1, "the gap is reported once");
        assert!(
            got.windows(2).all(|w| w[0] < w[1]),
            "each message once, in order: {got:?}"
        );
        assert_eq!(
            got[got.len() - KEPT..],
            published[published.len() - KEPT..],
            "then what the stream kept"
        );
    }
}
