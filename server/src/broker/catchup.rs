//! Catch-up from history for subscriptions that fell behind the live flow.
//!
//! Publishers never wait for subscribers. When a subscription's connection queue
//! ([`super::mailbox`]) has no room for a live message, the backend stops offering it live
//! messages and registers a [`CatchUp`] with the mailbox, remembering where the subscription
//! stands (the first message it was not given). The connection then pulls the channel's history
//! from there at the pace its socket accepts, and the backend switches it back to live exactly
//! once, under the same lock that orders publishes, when it reaches the end (no loss, no
//! duplicate, in order). Only when the history was trimmed past its position does it lose
//! messages: the exact number is reported ([`super::mailbox::Notice::Lost`]), as
//! `out_of_sync`, or a fast-forward info when the subscription asked for it, and it goes on from
//! the oldest message kept.
//!
//! - Embedded backend: [`super::memory`] implements [`CatchUp`] over its history ring.
//! - Redis backend: [`super::redis`] reads the stream (`XRANGE`) in a task paced by
//!   [`super::mailbox::Mailbox::wait_for_room`], as it does after a reconnect.

use std::fmt::Debug;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

/// Whether a connection's queue, holding `queued` deliveries of `queued_bytes` (short of its
/// byte limit `limit_bytes`), takes no more live messages for a subscription whose channel keeps
/// `history` messages: that subscription then catches up from the history instead.
///
/// A laggard's position is the newest message when it switches, and it reads from there only
/// once it has drained what is queued before it. So:
/// - A history at least as large as the queue could grow (in bytes, at the queue's average
///   delivery size) is where the laggard should wait: the queue stops at a quarter of the
///   history, leaving the other three quarters as slack (publishers may go at up to 4× its pace
///   while it drains the queue), and it holds no more than that many `Arc`s. A queue deeper than
///   the history (the 8 MiB byte limit is ~23,000 telemetry events) meant the position had
///   always expired by the time it was drained: nothing was ever served from history.
/// - A shorter history (the default 1,000 against an 8 MiB queue) could not cover the queue's
///   drain anyway: the queue itself absorbs the burst up to its byte limit, as before.
pub fn past_live_depth(
    history: usize,
    queued: usize,
    queued_bytes: usize,
    limit_bytes: usize,
) -> bool {
    if history == 0 || queued < (history / 4).max(1) {
        return false;
    }
    history.saturating_mul(queued_bytes / queued) >= limit_bytes
}

/// One subscription reading its channel's history at its connection's pace. Registered with
/// the connection's [`super::Mailbox`], which calls [`CatchUp::refill`] whenever a drain has
/// emptied its queue.
pub trait CatchUp: Send + Sync + Debug {
    /// Queues up to about `budget` bytes of the subscription's backlog into its mailbox.
    /// Returns `false` once the subscription needs no more calls (it rejoined the live flow,
    /// or it is gone).
    fn refill(&self, budget: usize) -> bool;
}

/// Slow-subscriber counters, shared by the broker and its backend (in `/metrics`).
#[derive(Debug, Default)]
pub struct CatchUpCounters {
    /// Subscriptions currently catching up from history after falling behind (gauge).
    pub active: AtomicI64,
    /// Times a subscription fell behind the live flow and switched to catch-up.
    pub started: AtomicU64,
    /// Messages served from history to subscriptions catching up.
    pub served: AtomicU64,
    /// Times a subscription catching up fell behind the oldest message kept.
    pub expired: AtomicU64,
    /// Messages those subscriptions missed (trimmed before they were read).
    pub missed: AtomicU64,
    /// Connections closed because their socket accepted nothing for the write timeout.
    pub cut_off: AtomicU64,
}

impl CatchUpCounters {
    /// Counts a subscription switching to catch-up; the guard counts it out when dropped.
    pub fn laggard(self: &Arc<Self>) -> Laggard {
        self.started.fetch_add(1, Ordering::Relaxed);
        self.active.fetch_add(1, Ordering::Relaxed);
        Laggard(Arc::clone(self))
    }
}

/// One subscription counted in [`CatchUpCounters::active`] while this lives.
#[derive(Debug)]
pub struct Laggard(Arc<CatchUpCounters>);

impl Laggard {
    /// The counters this laggard is counted in.
    pub fn counters(&self) -> &CatchUpCounters {
        &self.0
    }
}

impl Drop for Laggard {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, Ordering::Relaxed);
    }
}
