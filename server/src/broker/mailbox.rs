//! The per-connection inbound queue of deliveries, and the subscriber handle backends offer to.
//!
//! Publishers never wait for subscribers: [`Subscriber::offer`] takes a short lock, pushes an
//! `Arc` handle and returns. When the connection's queue is over its byte limit the message is
//! dropped for that subscription and counted; the connection's own task then reports
//! `out_of_sync` (or fast-forwards). Policy when full: **drop newest for that subscriber,
//! count it, tell the subscriber**; the publisher and other subscribers are unaffected.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;
use tokio::sync::Notify;

use super::backend::Message;

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
}

/// The bounded queue a connection's task drains, plus its wake-up.
#[derive(Debug)]
pub struct Mailbox {
    inner: Mutex<Inner>,
    notify: Notify,
    limit_bytes: usize,
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
    /// A mailbox holding at most `limit_bytes` of queued payload (plus per-item overhead).
    pub fn new(limit_bytes: usize) -> Self {
        Mailbox {
            inner: Mutex::new(Inner::default()),
            notify: Notify::new(),
            limit_bytes,
        }
    }

    /// Waits until something was queued or flagged since the last drain.
    pub async fn wait(&self) {
        self.notify.notified().await
    }

    /// Moves up to about `max_bytes` of deliveries into `out`.
    pub fn drain(&self, out: &mut Vec<Delivery>, max_bytes: usize) -> DrainFlags {
        let mut inner = self.inner.lock();
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
        let flags = DrainFlags {
            lagging: inner.lagging,
            close: inner.close,
        };
        inner.lagging = false;
        flags
    }

    /// Asks the connection to close with `code` (admin close, shutdown).
    pub fn close(&self, code: u16) {
        self.inner.lock().close.get_or_insert(code);
        self.notify.notify_one();
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

    fn push(&self, token: u32, message: &Arc<Message>) -> bool {
        let size = message.payload.len() + ITEM_OVERHEAD;
        let mut inner = self.inner.lock();
        if inner.close.is_some() {
            return true; // closing: nobody will read it, and it is not a loss to report
        }
        if inner.bytes + size > self.limit_bytes {
            let first = !inner.lagging;
            inner.lagging = true;
            drop(inner);
            if first {
                self.notify.notify_one();
            }
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
        let ok = self.mailbox.push(self.token, message);
        if !ok {
            self.missed.fetch_add(1, Ordering::Relaxed);
        }
        ok
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
