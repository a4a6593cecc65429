//! The per-connection inbound queue of deliveries, and the subscriber handle backends offer to.
//!
//! [`Subscriber::offer`] takes a short lock, pushes an `Arc` handle and returns: it never
//! blocks. Each mailbox has a byte limit; when a delivery would take it over, the message is
//! dropped for that subscription and counted, and the connection's own task reports
//! `out_of_sync` (or fast-forwards). Policy when full: **drop newest for that subscriber, count
//! it, tell the subscriber**; other subscribers are unaffected.
//!
//! # Publisher back-pressure (embedded backend)
//!
//! Dropping is the last resort, not the answer to a server that is merely busy: when the CPU is
//! saturated, publishers must slow down rather than subscribers lose data. So a mailbox built
//! [`Mailbox::with_backpressure`] also has a **high-water mark** (half its limit):
//!
//! - The embedded backend offers with [`Subscriber::offer_pressured`] (still at call time, so
//!   publish order is call order) and collects the mailboxes left above high water. The
//!   publish's future then waits in [`wait_for_drain`] until each has drained to high water or
//!   below once since. (Once since, not at the moment the publish looks: with many publishers
//!   the first ones released take it above high water again at once, and a publish that
//!   required seeing it at high water could be starved for as long as the others publish.) The
//!   publisher's connection does not read its next PDUs meanwhile, so TCP flow
//!   control throttles the publisher itself.
//! - The wait goes in rounds of [`Backpressure::wait`]. A mailbox that drained something during
//!   a round is alive, merely slower than the publishers: the publish waits another round, at
//!   most [`MAX_WAIT_ROUNDS`] in all (then it is released, and the mailbox is still waited on by
//!   the next publishes: a subscriber that keeps draining keeps throttling its publishers).
//!   Many publishers each holding one message above high water can together put more there
//!   than a subscriber drains in one round, even one reading at full speed in bursts; giving up
//!   on it then let the publishers, now at full speed, overflow its queue.
//! - A mailbox that drained **nothing** for a whole round is marked **stalled** and the publish
//!   released: nobody waits on it until it drains something again (any drain re-arms it, so a
//!   subscriber that resumes is waited on before the publishers can fill the other half of its
//!   queue). A subscriber that never reads thus costs publishers one round, then the
//!   drop-newest policy above applies to it as before; one that drains a little now and then
//!   costs at most one round per drain.
//! - A connection's own mailbox is never waited on by its own publishes (it cannot drain while
//!   it publishes), nor is a closing or closed connection's.
//! - Cheap when nobody is behind: the high-water test is one comparison under the lock `offer`
//!   already takes; only a publish that must wait allocates or touches a [`Notify`].
//!
//! The Redis backend keeps the pure drop policy ([`Subscriber::offer`]): its pub/sub reader
//! fans out for every connection of the server and must never stall on one of them.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::Notify;
use tokio::task::Id as TaskId;

use super::backend::Message;
use super::stats::BackpressureCounters;

/// Notices one subscription may have waiting; when full the oldest is dropped (a newer state
/// of the same subscription supersedes it, and a flapping node cannot grow the queue).
const MAX_NOTICES: usize = 8;

/// Accounting overhead per queued delivery, on top of the payload, so that a flood of tiny
/// messages is bounded too.
const ITEM_OVERHEAD: usize = 64;

/// One message for one subscription of a connection.
#[derive(Debug)]
pub struct Delivery {
    /// Connection-local subscription token.
    pub token: u32,
    /// The message.
    pub message: Arc<Message>,
}

#[derive(Debug, Default)]
struct Inner {
    items: VecDeque<Delivery>,
    bytes: usize,
    /// Some subscription lost a message since the last drain.
    lagging: bool,
    /// Close requested (admin close, shutdown): the close code.
    close: Option<u16>,
    /// The connection is gone (unregistered): nothing will drain this mailbox again.
    gone: bool,
    /// A publish waited a whole round on this mailbox and it drained nothing: not waited on
    /// again until it drains something.
    stalled: bool,
    /// Bytes drained since the mailbox was created: a waiting publisher's measure of progress.
    drained: u64,
    /// Times the mailbox drained back to high water while waited on: each releases every
    /// publish waiting then, even if others already took it above high water again before a
    /// released publish got to look (with many publishers, one would otherwise be starved).
    releases: u64,
    /// A publish waits for this mailbox to drain to high water.
    waited_on: bool,
    /// The task draining this mailbox (its connection), once known.
    owner: Option<TaskId>,
}

impl Inner {
    fn closing(&self) -> bool {
        self.gone || self.close.is_some()
    }
}

/// How a mailbox holds publishers back (see the module documentation).
#[derive(Debug, Clone)]
pub struct Backpressure {
    /// Longest one publish waits for the mailboxes it left above high water.
    pub wait: Duration,
    /// Where delays, timeouts and stalls are counted.
    pub counters: Arc<BackpressureCounters>,
}

/// The bounded queue a connection's task drains, plus its wake-ups.
#[derive(Debug)]
pub struct Mailbox {
    inner: Mutex<Inner>,
    notify: Notify,
    limit_bytes: usize,
    /// Above this many queued bytes publishers are held back (half the limit).
    high_water: usize,
    /// `None`: never hold publishers back.
    backpressure: Option<Backpressure>,
    /// Wakes publishers waiting for this mailbox to drain to high water.
    drained: Notify,
}

/// What [`Mailbox::drain`] found besides deliveries.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct DrainFlags {
    /// Some subscription lost messages or has notices: check [`Subscriber::take_notices`] and
    /// [`Subscriber::take_missed`].
    pub lagging: bool,
    /// The connection must close with this code.
    pub close: Option<u16>,
}

impl Mailbox {
    /// A mailbox holding at most `limit_bytes` of queued payload (plus per-item overhead),
    /// never holding publishers back.
    pub fn new(limit_bytes: usize) -> Self {
        Mailbox {
            inner: Mutex::new(Inner::default()),
            notify: Notify::new(),
            limit_bytes,
            high_water: limit_bytes / 2,
            backpressure: None,
            drained: Notify::new(),
        }
    }

    /// [`Mailbox::new`], and publishes offered with [`Subscriber::offer_pressured`] that leave it
    /// over half full wait for it to drain (see the module documentation). A zero wait disables
    /// back-pressure.
    pub fn with_backpressure(limit_bytes: usize, backpressure: Backpressure) -> Self {
        Mailbox {
            backpressure: (!backpressure.wait.is_zero()).then_some(backpressure),
            ..Mailbox::new(limit_bytes)
        }
    }

    /// Waits until something was queued or flagged since the last drain.
    pub async fn wait(&self) {
        self.notify.notified().await
    }

    /// Moves up to about `max_bytes` of deliveries into `out`.
    pub fn drain(&self, out: &mut Vec<Delivery>, max_bytes: usize) -> DrainFlags {
        let mut inner = self.inner.lock();
        if inner.owner.is_none() {
            // The draining task is the connection's: its own publishes must not wait on it.
            inner.owner = tokio::task::try_id();
        }
        let mut taken = 0;
        while taken < max_bytes {
            let Some(d) = inner.items.pop_front() else {
                break;
            };
            let size = d.message.payload.len() + ITEM_OVERHEAD;
            inner.bytes -= size;
            taken += size;
            out.push(d);
        }
        if inner.items.is_empty() && inner.items.capacity() > 64 {
            // Idle connections must not keep a burst-sized buffer around.
            inner.items = VecDeque::new();
        }
        if !inner.items.is_empty() {
            // More to do: make sure the next wait() returns at once.
            self.notify.notify_one();
        }
        // Any progress is a sign of life: waited on again at once, before the publishers now
        // running at full speed can overflow it.
        inner.drained += taken as u64;
        inner.stalled &= taken == 0;
        let release = inner.waited_on && inner.bytes <= self.high_water;
        inner.waited_on &= !release;
        inner.releases += u64::from(release);
        let flags = DrainFlags {
            lagging: inner.lagging,
            close: inner.close,
        };
        inner.lagging = false;
        drop(inner);
        if release {
            // Outside the lock: the publishers woken take it again at once.
            self.drained.notify_waiters();
        }
        flags
    }

    /// Asks the connection to close with `code` (admin close, shutdown).
    pub fn close(&self, code: u16) {
        self.inner.lock().close.get_or_insert(code);
        self.notify.notify_one();
        // A closing connection is not waited on.
        self.drained.notify_waiters();
    }

    /// The connection is gone for good (called when it is unregistered): publishers waiting on
    /// it are released, nobody waits on it again.
    pub fn disconnect(&self) {
        self.inner.lock().gone = true;
        self.drained.notify_waiters();
    }

    /// Wakes the connection to look at its subscriptions' losses and notices.
    fn flag(&self) {
        let mut inner = self.inner.lock();
        let first = !inner.lagging;
        inner.lagging = true;
        drop(inner);
        if first {
            self.notify.notify_one();
        }
    }

    /// Bytes currently queued.
    pub fn queued_bytes(&self) -> usize {
        self.inner.lock().bytes
    }

    /// Whether a publisher should wait for this mailbox now (see [`Inner::waited_on`]); when it
    /// should, the drain will wake it.
    fn hold_publisher(&self, inner: &mut Inner) -> bool {
        let hold = self.backpressure.is_some()
            && inner.bytes > self.high_water
            && !inner.stalled
            && !inner.closing()
            && (inner.owner.is_none() || inner.owner != tokio::task::try_id());
        // (A publish from outside any task, or before the connection first drained, is held.)
        inner.waited_on |= hold;
        hold
    }

    /// Queues the delivery unless full. Returns (queued, the publisher should wait).
    fn push(&self, token: u32, message: &Arc<Message>, pressured: bool) -> (bool, bool) {
        let size = message.payload.len() + ITEM_OVERHEAD;
        let mut inner = self.inner.lock();
        if inner.closing() {
            return (true, false); // nobody will read it, and it is not a loss to report
        }
        if inner.bytes + size > self.limit_bytes {
            let first = !inner.lagging;
            inner.lagging = true;
            let hold = pressured && self.hold_publisher(&mut inner);
            drop(inner);
            if first {
                self.notify.notify_one();
            }
            return (false, hold);
        }
        let was_empty = inner.items.is_empty();
        inner.bytes += size;
        inner.items.push_back(Delivery {
            token,
            message: Arc::clone(message),
        });
        // The common case costs this one comparison.
        let hold = pressured && inner.bytes > self.high_water && self.hold_publisher(&mut inner);
        drop(inner);
        if was_empty {
            self.notify.notify_one();
        }
        (true, hold)
    }

    /// Still worth waiting for, by a publish that started waiting when the mailbox had been
    /// released `releases` times? Registers the waiter if so.
    fn still_holds(&self, releases: u64) -> bool {
        let mut inner = self.inner.lock();
        inner.releases == releases && self.hold_publisher(&mut inner)
    }

    /// Where a publish starts waiting: bytes drained so far (see [`Inner::drained`]) and
    /// releases so far (see [`Inner::releases`]).
    fn progress(&self) -> (u64, u64) {
        let inner = self.inner.lock();
        (inner.drained, inner.releases)
    }

    /// A publish's wait on this mailbox ended by its bound: marks it stalled if it drained
    /// nothing since `mark` (a [`Mailbox::drained`] reading) and is still over high water.
    /// True if it is now stalled and was not before.
    fn mark_stalled_unless_progressed(&self, mark: u64) -> bool {
        let mut inner = self.inner.lock();
        if inner.stalled
            || inner.drained != mark
            || inner.closing()
            || inner.bytes <= self.high_water
        {
            return false;
        }
        inner.stalled = true;
        drop(inner);
        // Other publishes waiting on it are released now rather than at their own deadlines.
        self.drained.notify_waiters();
        true
    }
}

/// Most rounds of [`Backpressure::wait`] one publish waits in all, while the mailboxes it waits
/// on keep draining: with the default 250 ms wait a publish is held at most 2 s.
pub const MAX_WAIT_ROUNDS: u32 = 8;

/// Waits until each of `mailboxes` (collected from [`Subscriber::offer_pressured`]) has drained
/// to its high-water mark (once since the wait began: other publishers may have taken it above
/// again by the time this one looks). The wait goes in rounds of [`Backpressure::wait`]: at the end of a
/// round, a mailbox still above high water that drained nothing during it is marked stalled and
/// the publish released; one that drained something (alive, merely slower than the publishers)
/// is waited on for another round, [`MAX_WAIT_ROUNDS`] at most per publish, after which the
/// publish is released and the mailbox stays waited on. Counts the delay, the timeout and the
/// stalls.
pub async fn wait_for_drain(mailboxes: &[Arc<Mailbox>]) {
    let Some(bp) = mailboxes.iter().find_map(|m| m.backpressure.as_ref()) else {
        return;
    };
    bp.counters.delayed.fetch_add(1, Ordering::Relaxed);
    // Progress is measured from the start of the publish's wait for each mailbox.
    let mut marks: Vec<(u64, u64)> = mailboxes.iter().map(|m| m.progress()).collect();
    let mut round_end = tokio::time::Instant::now() + bp.wait;
    let mut rounds = 1;
    let mut timed_out = false;
    for (mailbox, (mark, releases)) in mailboxes.iter().zip(&mut marks) {
        loop {
            // Registered before the check, so a drain between the check and the await is seen.
            let drained = mailbox.drained.notified();
            tokio::pin!(drained);
            drained.as_mut().enable();
            if !mailbox.still_holds(*releases) {
                break;
            }
            let out_of_rounds = rounds > MAX_WAIT_ROUNDS;
            if !out_of_rounds
                && tokio::time::timeout_at(round_end, drained.as_mut())
                    .await
                    .is_ok()
            {
                continue;
            }
            if !out_of_rounds {
                // The round may have ended while the whole process was not running: let the
                // subscribers' tasks, runnable by now, take their turn first.
                tokio::task::yield_now().await;
                if !mailbox.still_holds(*releases) {
                    break;
                }
            }
            let (now_drained, _) = mailbox.progress();
            if now_drained != *mark && rounds < MAX_WAIT_ROUNDS {
                // Alive: another round.
                *mark = now_drained;
                round_end = tokio::time::Instant::now() + bp.wait;
                rounds += 1;
                continue;
            }
            // No progress for a whole round, or this publish waited long enough.
            rounds = MAX_WAIT_ROUNDS + 1;
            timed_out = true;
            if mailbox.mark_stalled_unless_progressed(*mark) {
                bp.counters.stalls.fetch_add(1, Ordering::Relaxed);
            }
            break;
        }
    }
    if timed_out {
        bp.counters.timeouts.fetch_add(1, Ordering::Relaxed);
    }
}

/// What a backend tells one subscription besides its messages. The session turns each into a
/// PDU, before the messages queued with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// The backend node holding the channel is unreachable: delivery pauses. The subscription
    /// stays and resumes by itself from where it was when the node returns
    /// (`rtm/subscription/info`, info `backend_unavailable`).
    Unavailable(String),
    /// Delivery resumed after [`Notice::Unavailable`] (`rtm/subscription/info`, info
    /// `backend_resumed`).
    Resumed,
    /// `missed` messages can never be delivered (e.g. the resume position expired while the
    /// node was away): like a slow subscriber's loss, a fast-forward info, or `out_of_sync` and
    /// the subscription is removed.
    Lost {
        /// Messages lost (an upper bound when the exact figure is unknown).
        missed: u64,
        /// Why, for the PDU's `reason`.
        reason: String,
    },
    /// The subscription cannot go on: `rtm/subscription/error` with this code and reason, and
    /// the subscription is removed.
    Failed {
        /// Stable error code.
        code: &'static str,
        /// Why.
        reason: String,
    },
}

/// A subscription as the backend sees it: where to put its messages, a loss counter and the
/// backend's notices.
#[derive(Debug)]
pub struct Subscriber {
    mailbox: Arc<Mailbox>,
    token: u32,
    missed: AtomicU64,
    notices: Mutex<VecDeque<Notice>>,
}

impl Subscriber {
    /// A handle delivering into `mailbox` under the connection-local `token`.
    pub fn new(mailbox: Arc<Mailbox>, token: u32) -> Self {
        Subscriber {
            mailbox,
            token,
            missed: AtomicU64::new(0),
            notices: Mutex::new(VecDeque::new()),
        }
    }

    /// Tells the subscription something about its channel (see [`Notice`]); never blocks.
    /// Bounded: at most a few notices wait, the oldest is dropped first.
    pub fn report(&self, notice: Notice) {
        {
            let mut notices = self.notices.lock();
            if notices.len() >= MAX_NOTICES {
                notices.pop_front();
            }
            notices.push_back(notice);
        }
        self.mailbox.flag();
    }

    /// Reports `missed` messages the backend knows are lost for good ([`Notice::Lost`]).
    pub fn report_loss(&self, missed: u64, reason: impl Into<String>) {
        self.report(Notice::Lost {
            missed,
            reason: reason.into(),
        });
    }

    /// Reports that the subscription cannot go on ([`Notice::Failed`]).
    pub fn report_error(&self, code: &'static str, reason: impl Into<String>) {
        self.report(Notice::Failed {
            code,
            reason: reason.into(),
        });
    }

    /// The notices reported since the last call, oldest first.
    pub fn take_notices(&self) -> Vec<Notice> {
        let mut notices = self.notices.lock();
        if notices.is_empty() {
            return Vec::new();
        }
        notices.drain(..).collect()
    }

    /// Queues `message` without blocking. Returns `false` (and counts the loss) when the
    /// connection's queue is full.
    pub fn offer(&self, message: &Arc<Message>) -> bool {
        let (queued, _) = self.mailbox.push(self.token, message, false);
        if !queued {
            self.missed.fetch_add(1, Ordering::Relaxed);
        }
        queued
    }

    /// [`Subscriber::offer`] (queues or counts the loss at once, never blocks), and returns the
    /// mailbox when the publisher should wait for it to drain ([`wait_for_drain`]): it is above
    /// high water, not stalled, and not the calling task's own.
    pub fn offer_pressured(&self, message: &Arc<Message>) -> Option<&Arc<Mailbox>> {
        let (queued, hold) = self.mailbox.push(self.token, message, true);
        if !queued {
            self.missed.fetch_add(1, Ordering::Relaxed);
        }
        hold.then_some(&self.mailbox)
    }

    /// Messages lost since the last call.
    pub fn take_missed(&self) -> u64 {
        self.missed.swap(0, Ordering::Relaxed)
    }

    /// The connection-local token.
    pub fn token(&self) -> u32 {
        self.token
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::Future;
    use std::pin::pin;
    use std::task::{Context, Poll, Waker};

    use cobra_wire::Position;

    /// 64 bytes of payload: 128 accounted bytes per delivery with the overhead.
    fn msg() -> Arc<Message> {
        Arc::new(Message {
            position: Position::ZERO,
            payload: "x".repeat(ITEM_OVERHEAD).into(),
        })
    }

    /// A 1280-byte mailbox (10 deliveries; high water 640 = 5).
    fn pressured(wait: Duration) -> (Arc<Mailbox>, Subscriber, Arc<BackpressureCounters>) {
        let counters = Arc::new(BackpressureCounters::default());
        let mailbox = Arc::new(Mailbox::with_backpressure(
            1280,
            Backpressure {
                wait,
                counters: Arc::clone(&counters),
            },
        ));
        let sub = Subscriber::new(Arc::clone(&mailbox), 1);
        (mailbox, sub, counters)
    }

    fn poll_once<F: Future>(f: std::pin::Pin<&mut F>) -> Poll<F::Output> {
        f.poll(&mut Context::from_waker(Waker::noop()))
    }

    /// Offers `msg()` `n` times; returns the mailboxes that held those publishes back.
    fn offer_n(sub: &Subscriber, n: usize) -> Vec<Arc<Mailbox>> {
        let m = msg();
        (0..n)
            .filter_map(|_| sub.offer_pressured(&m).cloned())
            .collect()
    }

    fn drain_n(mailbox: &Mailbox, n: usize) {
        let mut out = Vec::new();
        mailbox.drain(&mut out, n * 2 * ITEM_OVERHEAD - 1);
        assert_eq!(out.len(), n);
    }

    #[test]
    fn publishers_are_held_only_above_high_water() {
        let (mailbox, sub, _) = pressured(Duration::from_secs(10));
        let m = msg();
        for _ in 0..5 {
            assert!(sub.offer_pressured(&m).is_none(), "at or under high water");
        }
        let held = sub.offer_pressured(&m).expect("above high water: hold");
        assert!(Arc::ptr_eq(held, &mailbox));
        // The plain offer (Redis backend) never holds anyone.
        assert!(sub.offer(&m));
        // Plain mailboxes never hold publishers back.
        let plain = Subscriber::new(Arc::new(Mailbox::new(1280)), 2);
        for _ in 0..10 {
            assert!(plain.offer_pressured(&m).is_none());
        }
        assert!(plain.offer_pressured(&m).is_none(), "full: dropped");
        assert_eq!(plain.take_missed(), 1);
        // A zero wait disables back-pressure.
        let (_, off, _) = pressured(Duration::ZERO);
        for _ in 0..11 {
            assert!(off.offer_pressured(&m).is_none());
        }
    }

    #[tokio::test]
    async fn a_held_publish_resumes_when_drained_to_high_water() {
        let (mailbox, sub, counters) = pressured(Duration::from_secs(10));
        let m = msg();
        let mut held = Vec::new();
        for _ in 0..8 {
            if let Some(mb) = sub.offer_pressured(&m) {
                held = vec![Arc::clone(mb)];
            }
        }
        let mut wait = pin!(wait_for_drain(&held));
        assert!(poll_once(wait.as_mut()).is_pending());
        drain_n(&mailbox, 2); // 6 queued: still above high water
        assert!(poll_once(wait.as_mut()).is_pending());
        drain_n(&mailbox, 1); // 5 queued: at high water
        assert!(poll_once(wait.as_mut()).is_ready());
        assert_eq!(counters.delayed.load(Ordering::Relaxed), 1);
        assert_eq!(counters.timeouts.load(Ordering::Relaxed), 0);
        assert_eq!(counters.stalls.load(Ordering::Relaxed), 0);
    }

    #[tokio::test]
    async fn a_held_publish_is_released_by_a_drain_to_high_water_even_if_refilled_since() {
        let (mailbox, sub, counters) = pressured(Duration::from_secs(10));
        let m = msg();
        let held = offer_n(&sub, 6);
        let mut wait = pin!(wait_for_drain(&held));
        assert!(poll_once(wait.as_mut()).is_pending());
        drain_n(&mailbox, 1); // at high water: the waiting publish is released...
        // ...though another publisher took it above high water before it looked again.
        assert!(sub.offer_pressured(&m).is_some());
        assert!(poll_once(wait.as_mut()).is_ready());
        assert_eq!(counters.timeouts.load(Ordering::Relaxed), 0);
    }

    #[tokio::test]
    async fn a_mailbox_that_drains_nothing_for_a_round_is_stalled_until_it_drains() {
        let (mailbox, sub, counters) = pressured(Duration::from_millis(20));
        let m = msg();
        let held = offer_n(&sub, 7);
        assert_eq!(held.len(), 2, "the 6th and 7th are above high water");
        // Nobody drains: one round releases the publish and marks the mailbox stalled.
        wait_for_drain(&held[..1]).await;
        assert_eq!(counters.timeouts.load(Ordering::Relaxed), 1);
        assert_eq!(counters.stalls.load(Ordering::Relaxed), 1);
        // Stalled: nobody is held by it any more, even when it overflows (drop newest).
        for _ in 0..5 {
            assert!(sub.offer_pressured(&m).is_none());
        }
        assert_eq!(sub.take_missed(), 2, "10 queued, 2 dropped");
        // Any drain is a sign of life: waited on again, far above high water as it still is.
        drain_n(&mailbox, 1);
        assert!(sub.offer_pressured(&m).is_some(), "waited on again");
        wait_for_drain(std::slice::from_ref(&mailbox)).await;
        assert_eq!(counters.stalls.load(Ordering::Relaxed), 2);
        assert_eq!(counters.timeouts.load(Ordering::Relaxed), 2);
    }

    #[tokio::test]
    async fn a_mailbox_that_keeps_draining_holds_the_publish_for_more_rounds() {
        let (mailbox, sub, counters) = pressured(Duration::from_millis(30));
        let m = msg();
        let held = offer_n(&sub, 10);
        let waiting = tokio::spawn(async move { wait_for_drain(&held[..1]).await });
        // One delivery every 10 ms: 5 to drain to high water, several rounds.
        let started = tokio::time::Instant::now();
        while !waiting.is_finished() {
            tokio::time::sleep(Duration::from_millis(10)).await;
            drain_n(&mailbox, 1);
        }
        assert!(
            started.elapsed() >= Duration::from_millis(40),
            "held over a round"
        );
        assert!(mailbox.queued_bytes() <= mailbox.high_water);
        assert_eq!(counters.timeouts.load(Ordering::Relaxed), 0);
        assert_eq!(counters.stalls.load(Ordering::Relaxed), 0);

        // Progress too slow to ever get back to high water: released after the round bound,
        // not stalled (still waited on).
        let (mailbox, sub, counters) = pressured(Duration::from_millis(5));
        let held = offer_n(&sub, 10);
        let waiting = tokio::spawn(async move { wait_for_drain(&held[..1]).await });
        let started = tokio::time::Instant::now();
        while !waiting.is_finished() {
            tokio::time::sleep(Duration::from_millis(1)).await;
            drain_n(&mailbox, 1);
            sub.offer_pressured(&m);
        }
        assert!(started.elapsed() >= Duration::from_millis(5) * MAX_WAIT_ROUNDS);
        assert_eq!(counters.timeouts.load(Ordering::Relaxed), 1);
        assert_eq!(counters.stalls.load(Ordering::Relaxed), 0);
        assert!(sub.offer_pressured(&m).is_some(), "still waited on");
    }

    #[tokio::test]
    async fn closing_or_gone_connections_release_publishers() {
        for close in [true, false] {
            let (mailbox, sub, counters) = pressured(Duration::from_secs(10));
            let m = msg();
            let held = offer_n(&sub, 6);
            assert_eq!(held.len(), 1);
            let mut wait = pin!(wait_for_drain(&held));
            assert!(poll_once(wait.as_mut()).is_pending());
            if close {
                mailbox.close(1001);
            } else {
                mailbox.disconnect();
            }
            assert!(poll_once(wait.as_mut()).is_ready());
            assert_eq!(counters.timeouts.load(Ordering::Relaxed), 0);
            for _ in 0..10 {
                assert!(sub.offer_pressured(&m).is_none());
            }
        }
    }

    #[tokio::test]
    async fn a_connection_is_never_held_by_its_own_mailbox() {
        let (mailbox, sub, _) = pressured(Duration::from_secs(10));
        let sub = Arc::new(sub);
        let m = msg();
        let own = {
            let (mailbox, sub, m) = (Arc::clone(&mailbox), Arc::clone(&sub), Arc::clone(&m));
            tokio::spawn(async move {
                // Draining makes this task the mailbox's connection.
                mailbox.drain(&mut Vec::new(), usize::MAX);
                (0..10).any(|_| sub.offer_pressured(&m).is_some())
            })
        };
        assert!(!own.await.unwrap(), "its own publishes are not held");
        // Another task's publish is held by the same (full) mailbox.
        assert!(sub.offer_pressured(&m).is_some());
    }

    #[test]
    fn notices_wake_the_connection_and_stay_bounded() {
        let mailbox = Arc::new(Mailbox::new(1 << 20));
        let sub = Subscriber::new(Arc::clone(&mailbox), 7);
        let mut out = Vec::new();
        assert!(!mailbox.drain(&mut out, usize::MAX).lagging);
        for missed in 0..20 {
            sub.report_loss(missed, "gone");
        }
        assert!(mailbox.drain(&mut out, usize::MAX).lagging);
        let notices = sub.take_notices();
        assert_eq!(notices.len(), MAX_NOTICES);
        // The oldest were dropped.
        assert_eq!(
            notices.last(),
            Some(&Notice::Lost {
                missed: 19,
                reason: "gone".into()
            })
        );
        assert!(sub.take_notices().is_empty());
        assert!(!mailbox.drain(&mut out, usize::MAX).lagging);
        sub.report_error("backend_unavailable", "down");
        assert!(mailbox.drain(&mut out, usize::MAX).lagging);
        assert!(matches!(
            &sub.take_notices()[..],
            [Notice::Failed {
                code: "backend_unavailable",
                ..
            }]
        ));
    }
}
