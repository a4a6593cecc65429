//! The per-connection inbound queue of deliveries, and the subscriber handle backends offer to.
//!
//! [`Subscriber::try_offer`] takes a short lock, pushes an `Arc` handle and returns: it never
//! blocks, and **publishers never wait for subscribers**. Each mailbox has a byte limit (its
//! policy when full is the backend's, see below); other subscribers are never affected.
//!
//! # A subscription that falls behind catches up from history
//!
//! When a live delivery does not fit, the backend stops offering that subscription live
//! messages and registers a [`CatchUp`] with its mailbox (see [`super::catchup`]): the
//! subscription then reads the channel's history from the last message it was given, at the
//! pace its connection drains, and rejoins the live flow exactly once when it reaches the end.
//! [`Mailbox::drain`] calls the catch-ups when it has emptied the queue (so whatever was queued
//! before a gap the catch-up reports goes out before the report), and wakes
//! [`Mailbox::wait_for_room`] for backends that read history asynchronously (Redis).
//!
//! A connection that never reads thus holds at most its queue's limit (`Arc`s of messages the
//! history holds anyway) and a cursor; its socket write then times out and it is closed.
//!
//! # Notices go out where they happened
//!
//! A backend reports a notice ([`Subscriber::report`]) from its own task, while the session may
//! be between taking a batch and writing it. Each notice is stamped with the number of drains
//! done when it was reported, and the session writing drain `d` takes only the notices reported
//! before it ([`Subscriber::take_notices_before`]): a notice reported after drain `d` took its
//! batch follows that batch, as the messages it precedes do. (Taking every pending notice put a
//! gap reported just after a drain ahead of the messages that drain had taken from before it.)
//!
//! [`Subscriber::offer`] is the plain drop-newest push (the loss is counted and the connection
//! reports `out_of_sync` or fast-forwards): for deliveries that have no history to come back to.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use parking_lot::Mutex;
use tokio::sync::Notify;

use super::backend::Message;
pub use super::catchup::CatchUp;
use super::catchup::past_live_depth;

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

#[derive(Default)]
struct Inner {
    items: VecDeque<Delivery>,
    bytes: usize,
    /// Some subscription lost a message since the last drain.
    lagging: bool,
    /// Close requested (admin close, shutdown): the close code.
    close: Option<u16>,
    /// The connection is gone (unregistered): nothing will drain this mailbox again.
    gone: bool,
    /// A task waits in [`Mailbox::wait_for_room`] or [`Mailbox::wait_until_empty`]: the next
    /// drain to half full wakes it (only then: a wake-up costs a lock on every drain).
    room_wanted: bool,
    /// Drains done so far: what notices are stamped with (see the module docs).
    drains: u64,
    /// Subscriptions reading history at this connection's pace (see the module docs). At most
    /// one per subscription: a backend registers one only when it stops offering it live.
    catch_ups: Vec<Arc<dyn CatchUp>>,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inner")
            .field("items", &self.items.len())
            .field("bytes", &self.bytes)
            .field("catch_ups", &self.catch_ups.len())
            .finish_non_exhaustive()
    }
}

impl Inner {
    fn closing(&self) -> bool {
        self.gone || self.close.is_some()
    }
}

/// The bounded queue a connection's task drains, plus its wake-ups.
#[derive(Debug)]
pub struct Mailbox {
    inner: Mutex<Inner>,
    notify: Notify,
    limit_bytes: usize,
    /// Wakes [`Mailbox::wait_for_room`] when a drain leaves the queue at most half full.
    room: Notify,
}

/// What [`Mailbox::drain`] found besides deliveries.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct DrainFlags {
    /// Some subscription lost messages or has notices: check
    /// [`Subscriber::take_notices_before`] (with [`DrainFlags::drain`]) and
    /// [`Subscriber::take_missed`].
    pub lagging: bool,
    /// The connection must close with this code.
    pub close: Option<u16>,
    /// This drain's number (1 for the first): the notices to write before its deliveries are
    /// those reported before it ([`Subscriber::take_notices_before`]).
    pub drain: u64,
    /// Payload bytes of the deliveries taken.
    pub payload_bytes: usize,
}

impl Mailbox {
    /// A mailbox holding at most `limit_bytes` of queued payload (plus per-item overhead).
    pub fn new(limit_bytes: usize) -> Self {
        Mailbox {
            inner: Mutex::new(Inner::default()),
            notify: Notify::new(),
            limit_bytes,
            room: Notify::new(),
        }
    }

    /// Waits until something was queued or flagged since the last drain.
    pub async fn wait(&self) {
        self.notify.notified().await
    }

    /// Moves up to about `max_bytes` of deliveries into `out`. An empty queue is first refilled
    /// by the subscriptions catching up (up to `max_bytes`), so that a gap one of them reports
    /// (a notice, flagged in the returned [`DrainFlags`]) is sent after every message drained
    /// before it and before the messages read after it. (Refilling after taking let a notice
    /// raised by the refill go out with the messages taken just before it, ahead of them: the
    /// fast-forward count then landed one gap late.)
    pub fn drain(&self, out: &mut Vec<Delivery>, max_bytes: usize) -> DrainFlags {
        self.refill(max_bytes);
        let mut inner = self.inner.lock();
        // Under the lock that pushes take: a notice stamped before this increment was reported
        // before these deliveries were taken, one stamped after it comes after them.
        inner.drains += 1;
        let (mut taken, mut payload_bytes) = (0, 0);
        while taken < max_bytes {
            let Some(d) = inner.items.pop_front() else {
                break;
            };
            let size = d.message.payload.len() + ITEM_OVERHEAD;
            inner.bytes -= size;
            taken += size;
            payload_bytes += d.message.payload.len();
            out.push(d);
        }
        if inner.items.is_empty() && inner.items.capacity() > 64 {
            // Idle connections must not keep a burst-sized buffer around.
            inner.items = VecDeque::new();
        }
        if !inner.items.is_empty() || (!inner.catch_ups.is_empty() && !inner.closing()) {
            // More to do (queued, or to read from history): the next wait() returns at once.
            self.notify.notify_one();
        }
        let flags = DrainFlags {
            lagging: inner.lagging,
            close: inner.close,
            drain: inner.drains,
            payload_bytes,
        };
        inner.lagging = false;
        let room = inner.room_wanted && inner.bytes <= self.limit_bytes / 2;
        inner.room_wanted &= !room;
        drop(inner);
        if room {
            self.room.notify_waiters();
        }
        flags
    }

    /// When the queue is empty, lets the subscriptions catching up queue what they read next.
    fn refill(&self, max_bytes: usize) {
        let catch_ups = {
            let mut inner = self.inner.lock();
            if !inner.items.is_empty() || inner.catch_ups.is_empty() || inner.closing() {
                return;
            }
            std::mem::take(&mut inner.catch_ups)
        };
        // Outside the lock: a catch-up takes its channel's lock, then this one (as a publish
        // does).
        let budget = max_bytes.min(self.limit_bytes);
        let going_on: Vec<_> = catch_ups.into_iter().filter(|c| c.refill(budget)).collect();
        if !going_on.is_empty() {
            self.inner.lock().catch_ups.extend(going_on);
        }
    }

    /// Registers a subscription that now reads history at this connection's pace, and wakes
    /// the connection so that it starts at once if its queue is empty.
    pub fn start_catch_up(&self, catch_up: Arc<dyn CatchUp>) {
        self.inner.lock().catch_ups.push(catch_up);
        self.notify.notify_one();
    }

    /// Waits until the queue is at most half full (or the connection is closing): where a
    /// backend reading history asynchronously paces itself.
    pub async fn wait_for_room(&self) {
        self.wait_until_at_most(self.limit_bytes / 2).await
    }

    /// Waits until the queue is empty (or the connection is closing): a backend about to
    /// report a gap waits for what precedes it to be taken first, so that the report is not
    /// sent before those messages.
    pub async fn wait_until_empty(&self) {
        self.wait_until_at_most(0).await
    }

    async fn wait_until_at_most(&self, bytes: usize) {
        loop {
            // Registered before the check, so a drain between the check and the await is seen.
            let room = self.room.notified();
            tokio::pin!(room);
            room.as_mut().enable();
            {
                let mut inner = self.inner.lock();
                if inner.closing() || inner.bytes <= bytes {
                    return;
                }
                inner.room_wanted = true;
            }
            room.await;
        }
    }

    /// Asks the connection to close with `code` (admin close, shutdown).
    pub fn close(&self, code: u16) {
        self.inner.lock().close.get_or_insert(code);
        self.notify.notify_one();
        self.room.notify_waiters();
    }

    /// The connection is gone for good (called when it is unregistered): catch-ups are
    /// dropped, history readers waiting for room released.
    pub fn disconnect(&self) {
        let catch_ups = {
            let mut inner = self.inner.lock();
            inner.gone = true;
            std::mem::take(&mut inner.catch_ups)
        };
        drop(catch_ups);
        self.room.notify_waiters();
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

    /// Drains done so far: a notice reported now is stamped with it.
    fn drains(&self) -> u64 {
        self.inner.lock().drains
    }

    /// Bytes currently queued.
    pub fn queued_bytes(&self) -> usize {
        self.inner.lock().bytes
    }

    /// Subscriptions of this connection catching up from history.
    pub fn catch_up_count(&self) -> usize {
        self.inner.lock().catch_ups.len()
    }

    /// Queues the delivery unless full (its byte limit, or for a channel keeping `history`
    /// messages, [`past_live_depth`]); false when full (nothing else is done).
    fn push(&self, token: u32, message: &Arc<Message>, history: usize) -> bool {
        let size = message.payload.len() + ITEM_OVERHEAD;
        let mut inner = self.inner.lock();
        if inner.closing() {
            return true; // nobody will read it, and it is not a loss to report
        }
        if (inner.bytes + size > self.limit_bytes
            || past_live_depth(history, inner.items.len(), inner.bytes, self.limit_bytes))
            && !inner.items.is_empty()
        {
            // (An empty queue takes one message of any size: one larger than the limit must
            // not make its subscription wait forever for room it can never have.)
            return false;
        }
        let was_empty = inner.items.is_empty();
        inner.bytes += size;
        inner.items.push_back(Delivery {
            token,
            message: Arc::clone(message),
        });
        drop(inner);
        if was_empty {
            self.notify.notify_one();
        }
        true
    }
}

/// What a backend tells one subscription besides its messages. The session turns each into a
/// PDU, after the messages taken from the queue before it was reported and before those taken
/// after (see the module docs).
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
    /// Each with the drain count when it was reported ([`Mailbox::drain`]).
    notices: Mutex<VecDeque<(u64, Notice)>>,
    /// Goes on from the oldest message kept after a loss (`fast_forward`); without it, the
    /// first loss reported ends the subscription (`out_of_sync`).
    fast_forward: bool,
    /// A loss ended the subscription: the session removes it, backends feed it no more.
    ended: AtomicBool,
}

impl Subscriber {
    /// A handle delivering into `mailbox` under the connection-local `token`.
    pub fn new(mailbox: Arc<Mailbox>, token: u32) -> Self {
        Subscriber {
            mailbox,
            token,
            missed: AtomicU64::new(0),
            notices: Mutex::new(VecDeque::new()),
            fast_forward: false,
            ended: AtomicBool::new(false),
        }
    }

    /// The subscription goes on after a loss ([`Notice::Lost`]) from the oldest message kept,
    /// instead of ending with it.
    pub fn fast_forwarding(mut self, fast_forward: bool) -> Self {
        self.fast_forward = fast_forward;
        self
    }

    /// Tells the subscription something about its channel (see [`Notice`]); never blocks.
    /// Bounded: at most a few notices wait, the oldest is dropped first.
    pub fn report(&self, notice: Notice) {
        {
            let mut notices = self.notices.lock();
            // Read under the notices' lock (never taken under the mailbox's), so that stamps
            // grow along the queue even with several reporters; and the flag is set after the
            // push, so that a drain too early to take this notice is followed by one woken for
            // it.
            let stamp = self.mailbox.drains();
            if notices.len() >= MAX_NOTICES {
                notices.pop_front();
            }
            notices.push_back((stamp, notice));
        }
        self.mailbox.flag();
    }

    /// Reports `missed` messages the backend knows are lost for good ([`Notice::Lost`]).
    /// Returns `false`, reporting nothing, when an earlier loss already ended the subscription
    /// (it does not fast-forward: the session removes it with `out_of_sync`): the backend must
    /// not count that loss again, and feeds the subscription no more
    /// ([`Subscriber::ended`]). The session handles notices after the backend reported them,
    /// so a backend still reading history can meet a second gap before the removal.
    pub fn report_loss(&self, missed: u64, reason: impl Into<String>) -> bool {
        if !self.fast_forward && self.ended.swap(true, Ordering::AcqRel) {
            return false;
        }
        self.report(Notice::Lost {
            missed,
            reason: reason.into(),
        });
        true
    }

    /// A loss ended the subscription (see [`Subscriber::report_loss`]): nothing more is to be
    /// read for it.
    pub fn ended(&self) -> bool {
        self.ended.load(Ordering::Acquire)
    }

    /// Reports that the subscription cannot go on ([`Notice::Failed`]).
    pub fn report_error(&self, code: &'static str, reason: impl Into<String>) {
        self.report(Notice::Failed {
            code,
            reason: reason.into(),
        });
    }

    /// Every notice waiting, oldest first.
    pub fn take_notices(&self) -> Vec<Notice> {
        self.take_notices_before(u64::MAX)
    }

    /// The notices waiting that were reported before drain number `drain` took its deliveries
    /// ([`DrainFlags::drain`]), oldest first: those to write before that drain's deliveries.
    /// Later ones stay for the next drain (their report woke the connection for it).
    pub fn take_notices_before(&self, drain: u64) -> Vec<Notice> {
        let mut notices = self.notices.lock();
        // Stamps grow along the queue (see `report`): the notices to take are a prefix.
        let n = notices
            .iter()
            .take_while(|(stamp, _)| *stamp < drain)
            .count();
        notices.drain(..n).map(|(_, notice)| notice).collect()
    }

    /// Queues `message` without blocking. Returns `false` (and counts the loss, which the
    /// connection reports) when the connection's queue is full.
    pub fn offer(&self, message: &Arc<Message>) -> bool {
        let queued = self.mailbox.push(self.token, message, 0);
        if !queued {
            self.missed.fetch_add(1, Ordering::Relaxed);
            self.mailbox.flag();
        }
        queued
    }

    /// Queues `message` without blocking; `false` when the connection's queue is full (its
    /// byte limit, or for a channel keeping `history` messages, [`past_live_depth`]), and then
    /// nothing is counted: the backend catches the subscription up from history instead.
    pub fn try_offer(&self, message: &Arc<Message>, history: usize) -> bool {
        self.mailbox.push(self.token, message, history)
    }

    /// The connection's mailbox.
    pub fn mailbox(&self) -> &Arc<Mailbox> {
        &self.mailbox
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

    use cobra_wire::Position;

    /// 64 bytes of payload: 128 accounted bytes per delivery with the overhead.
    fn msg() -> Arc<Message> {
        Arc::new(Message {
            position: Position::ZERO,
            payload: "x".repeat(ITEM_OVERHEAD).into(),
        })
    }

    #[test]
    fn a_live_offer_stops_at_a_quarter_of_a_history_as_deep_as_the_queue() {
        // Room for 32 messages of 128 accounted bytes.
        let mailbox = Arc::new(Mailbox::new(32 * 128));
        let sub = Subscriber::new(Arc::clone(&mailbox), 1);
        let m = msg();
        // A history of 40 holds more than the queue can: the queue stops at 10, a laggard
        // reads the rest from the history.
        for _ in 0..10 {
            assert!(sub.try_offer(&m, 40));
        }
        assert!(!sub.try_offer(&m, 40), "a quarter of the history queued");
        // A history of 12 could not cover the queue's drain: the queue takes up to its limit.
        for _ in 10..32 {
            assert!(sub.try_offer(&m, 12));
        }
        assert!(!sub.try_offer(&m, 12), "full");
        let mut out = Vec::new();
        mailbox.drain(&mut out, usize::MAX);
        assert_eq!(out.len(), 32);
        assert!(sub.try_offer(&m, 40), "drained: room again");
        assert_eq!(sub.take_missed(), 0);
    }

    #[test]
    fn a_full_mailbox_refuses_without_blocking() {
        let mailbox = Arc::new(Mailbox::new(1280));
        let sub = Subscriber::new(Arc::clone(&mailbox), 1);
        let m = msg();
        for _ in 0..10 {
            assert!(sub.try_offer(&m, 0));
        }
        assert!(!sub.try_offer(&m, 0), "full");
        // An empty queue takes one message even over the limit (never stuck behind it).
        let big = Arc::new(Message {
            position: Position::ZERO,
            payload: "x".repeat(4096).into(),
        });
        let empty = Subscriber::new(Arc::new(Mailbox::new(1280)), 2);
        assert!(empty.try_offer(&big, 0));
        assert!(!empty.try_offer(&m, 0));
        assert_eq!(sub.take_missed(), 0, "try_offer counts nothing");
        assert!(!sub.offer(&m));
        assert_eq!(sub.take_missed(), 1, "offer counts the loss");
        let mut out = Vec::new();
        assert!(mailbox.drain(&mut out, usize::MAX).lagging);
        assert_eq!(out.len(), 10);
        // Closing: nothing is refused (nobody reads it), nothing is a loss.
        mailbox.close(1001);
        for _ in 0..20 {
            assert!(sub.try_offer(&m, 0));
        }
    }

    #[tokio::test]
    async fn wait_for_room_returns_once_drained_to_half() {
        let mailbox = Arc::new(Mailbox::new(1280));
        let sub = Subscriber::new(Arc::clone(&mailbox), 1);
        let m = msg();
        for _ in 0..10 {
            assert!(sub.try_offer(&m, 0));
        }
        let waiting = {
            let mailbox = Arc::clone(&mailbox);
            tokio::spawn(async move { mailbox.wait_for_room().await })
        };
        tokio::task::yield_now().await;
        let mut out = Vec::new();
        mailbox.drain(&mut out, 4 * 128);
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished(), "6 of 10 still queued");
        mailbox.drain(&mut out, 128);
        waiting.await.unwrap();
    }

    #[test]
    fn a_loss_ends_a_subscription_that_does_not_fast_forward_once() {
        let mailbox = Arc::new(Mailbox::new(1 << 20));
        let sub = Subscriber::new(Arc::clone(&mailbox), 7);
        assert!(!sub.ended());
        assert!(sub.report_loss(5, "gone"));
        assert!(sub.ended());
        assert!(
            !sub.report_loss(9, "gone again"),
            "reported (and counted) once"
        );
        assert_eq!(
            sub.take_notices(),
            vec![Notice::Lost {
                missed: 5,
                reason: "gone".into()
            }]
        );
    }

    fn lost(missed: u64) -> Notice {
        Notice::Lost {
            missed,
            reason: "gone".into(),
        }
    }

    /// Message number `n` (its position's seq), 64 bytes of payload.
    fn numbered(n: u64) -> Arc<Message> {
        Arc::new(Message {
            position: Position { ms: 1, seq: n },
            payload: "x".repeat(ITEM_OVERHEAD).into(),
        })
    }

    fn seqs(out: &mut Vec<Delivery>) -> Vec<u64> {
        out.drain(..).map(|d| d.message.position.seq).collect()
    }

    #[test]
    fn notices_are_stamped_with_the_drains_done_when_reported() {
        let mailbox = Arc::new(Mailbox::new(1 << 20));
        let sub = Subscriber::new(Arc::clone(&mailbox), 7).fast_forwarding(true);
        let mut out = Vec::new();
        sub.report(lost(1)); // before any drain
        let first = mailbox.drain(&mut out, usize::MAX);
        assert_eq!((first.drain, first.lagging), (1, true));
        sub.report(lost(2)); // after drain 1 took its batch
        assert_eq!(sub.take_notices_before(first.drain), vec![lost(1)]);
        assert!(
            sub.take_notices_before(first.drain).is_empty(),
            "reported after drain 1: not before its batch"
        );
        let second = mailbox.drain(&mut out, usize::MAX);
        assert_eq!(second.drain, 2);
        assert!(second.lagging, "the later report woke the next drain");
        sub.report(lost(3));
        assert_eq!(sub.take_notices_before(second.drain), vec![lost(2)]);
        // take_notices: every one waiting, whatever its stamp.
        assert_eq!(sub.take_notices(), vec![lost(3)]);
    }

    #[test]
    fn a_gap_reported_after_a_drain_goes_out_after_its_batch() {
        // The Redis replay's order: gap 1, the messages after it, then (once the session has
        // taken them, while it still has gap 1 to write) gap 2 and the messages after it.
        let mailbox = Arc::new(Mailbox::new(1 << 20));
        let sub = Subscriber::new(Arc::clone(&mailbox), 7).fast_forwarding(true);
        let mut out = Vec::new();
        assert!(sub.report_loss(3, "gone"));
        for n in [4, 5] {
            assert!(sub.try_offer(&numbered(n), 0));
        }
        let d = mailbox.drain(&mut out, usize::MAX);
        assert!(d.lagging);
        assert!(sub.report_loss(3, "gone")); // the queue is empty: gap 2 is reported
        assert!(sub.try_offer(&numbered(9), 0));
        // What the session writes for this drain: gap 1, then 4 and 5; not gap 2 yet.
        assert_eq!(sub.take_notices_before(d.drain), vec![lost(3)]);
        assert_eq!(seqs(&mut out), vec![4, 5]);
        let d = mailbox.drain(&mut out, usize::MAX);
        assert!(d.lagging);
        assert_eq!(sub.take_notices_before(d.drain), vec![lost(3)]);
        assert_eq!(seqs(&mut out), vec![9]);
        assert!(sub.take_notices().is_empty(), "each gap once");
    }

    #[test]
    fn notices_wake_the_connection_and_stay_bounded() {
        let mailbox = Arc::new(Mailbox::new(1 << 20));
        let sub = Subscriber::new(Arc::clone(&mailbox), 7).fast_forwarding(true);
        let mut out = Vec::new();
        assert!(!mailbox.drain(&mut out, usize::MAX).lagging);
        for missed in 0..20 {
            assert!(sub.report_loss(missed, "gone"), "fast_forward: every loss");
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
