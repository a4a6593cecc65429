//! The storage/distribution seam of the broker.
//!
//! A [`Backend`] stores each channel's history and key/value, assigns positions, and delivers
//! published messages to the subscribers registered on this server. The embedded in-memory
//! implementation is [`super::memory::MemoryBackend`]; a Redis implementation (one stream per
//! channel, sharded over nodes) plugs in behind the same trait.
//!
//! # Contract every implementation keeps
//!
//! - **Channel keys** are already namespaced (`<appkey>::<channel>`, see [`ChannelKey`]): the
//!   backend never sees a bare channel name and never mixes apps.
//! - **Positions** are [`Position`]s `<ms>-<seq>`, strictly increasing per channel, never going
//!   backwards (even if the wall clock does).
//! - [`Backend::publish`] resolves only once the message is durably accepted by the backend
//!   (in memory: appended; Redis: `XADD` acknowledged) and returns its position. Delivery is
//!   done at call time and never blocks ([`Subscriber::offer`]). The embedded backend may then
//!   hold the returned future back, for a bounded time, while a subscriber's queue is over its
//!   high-water mark (publisher back-pressure, see [`super::mailbox`]); a backend whose
//!   delivery runs on a shared reader (Redis) never waits for a subscriber.
//! - [`Backend::publish`] takes the message's place in the channel **when it is called**, not
//!   when its future is first polled: publishes to one channel land in the order of the calls,
//!   whatever order their futures are polled or resolve in. A connection's publishes are
//!   pipelined (many futures awaited at once, answered in order) and rely on this.
//! - [`Backend::subscribe`] with [`StartAt::After`] delivers every message whose position is
//!   greater than the given one, in order, then every live message, exactly once: **no gap and
//!   no duplicate** across the switch from history to live. Messages are delivered through the
//!   [`Subscriber`] handle; a subscriber whose queue is full loses the message and the loss is
//!   counted on the handle (the session turns it into `out_of_sync` or a fast-forward info).
//! - A position older than what is still kept is reported as [`SubscribeAck::expired`] (with
//!   the number of missed messages when known): the backend then starts from the oldest kept
//!   message; the caller decides (fast_forward or error) and unsubscribes if needed.
//! - [`Backend::unsubscribe`] is synchronous and cheap; after it returns no new message is
//!   offered to that handle (a message already queued may still be drained and is ignored).
//! - Anything else a subscription must know is reported on its handle as a
//!   [`Notice`](super::mailbox::Notice) ([`Subscriber::report`], [`Subscriber::report_loss`],
//!   [`Subscriber::report_error`]): a node outage pauses it (`rtm/subscription/info`
//!   `backend_unavailable`, later `backend_resumed`), messages lost for good (an expired resume
//!   point) become a fast-forward info or `out_of_sync`, a fatal failure a subscription error.
//! - read/write/delete are a per-channel key/value independent of the history.
//! - [`Backend::health`] reports one entry per node for the stats and `/metrics`.
//!
//! # Plugging a backend in
//!
//! Build it, then start the server with
//! [`Server::start_with_backend`](crate::net::Server::start_with_backend) (in `cobra run`,
//! `cli/run.rs` currently refuses `--redis`: that is where the Redis backend gets chosen).
//! Deliver to local subscribers with [`Subscriber::offer`] from whatever task reads the node's
//! pub/sub stream: it never blocks, so one slow connection cannot stall that reader.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use super::catchup::CatchUpCounters;
use super::mailbox::Subscriber;
use cobra_wire::Position;
use cobra_wire::pdu::error_code;

/// A boxed, sendable future: the trait stays object-safe so the backend is chosen at run time.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A channel name namespaced by its app: `<appkey>::<channel>`.
///
/// The text form is the reference's (and Redis's) `<appkey>::<channel>`; the length of the
/// appkey is part of the identity too, so an appkey containing `::` can never alias another
/// app's channel.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ChannelKey(Arc<str>, usize);

impl ChannelKey {
    /// Builds the key of `channel` in app `appkey`.
    pub fn new(appkey: &str, channel: &str) -> Self {
        let mut s = String::with_capacity(appkey.len() + 2 + channel.len());
        s.push_str(appkey);
        s.push_str("::");
        s.push_str(channel);
        ChannelKey(s.into(), appkey.len())
    }

    /// The full namespaced key, as stored.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The full key, shared (no copy): for a backend that keeps it beyond the call.
    pub fn shared(&self) -> Arc<str> {
        Arc::clone(&self.0)
    }

    /// The channel name without the app prefix.
    pub fn channel(&self) -> &str {
        &self.0[self.1 + 2..]
    }

    /// The appkey part.
    pub fn appkey(&self) -> &str {
        &self.0[..self.1]
    }
}

impl fmt::Debug for ChannelKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl fmt::Display for ChannelKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A published message as stored and fanned out: the raw JSON text, shared, never re-serialized.
#[derive(Debug)]
pub struct Message {
    /// Position of this message in its channel.
    pub position: Position,
    /// The message exactly as the publisher sent it (a JSON value, as text).
    pub payload: Arc<str>,
}

/// Where a subscription starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartAt {
    /// Only messages published after the subscription (`$` or no position).
    Live,
    /// Every message after this position (exclusive), then live. `0-0` = the oldest kept.
    After(Position),
}

/// What [`Backend::subscribe`] reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SubscribeAck {
    /// The channel's current (latest) position, `0-0` when it never had a message.
    pub position: Position,
    /// `Some(missed)` when the requested position is older than the oldest message kept: the
    /// replay started from the oldest kept message and `missed` messages are lost (an upper
    /// bound when the exact figure is unknown).
    pub expired: Option<u64>,
}

/// Health of one backend node, for stats and `/metrics`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeHealth {
    /// A display name (`embedded`, or a Redis URL without credentials).
    pub node: String,
    /// Whether the node is reachable.
    pub connected: bool,
    /// Requests waiting for this node.
    pub queue_depth: u64,
    /// Errors seen since start.
    pub errors: u64,
    /// Messages this server published to the node since start.
    pub published: u64,
    /// Times the node was reconnected after a loss since start.
    pub reconnects: u64,
}

/// Why a backend operation failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum BackendError {
    /// The node holding the channel is unreachable or failed the request.
    #[error("backend node {node} unavailable: {reason}")]
    Unavailable {
        /// The node.
        node: String,
        /// What went wrong.
        reason: String,
    },
    /// The backend is saturated and refused the request instead of queueing without bound.
    #[error("backend overloaded: {0}")]
    Overloaded(String),
    /// The position asked for does not exist in this channel.
    #[error("no message at position {0}")]
    NoSuchPosition(Position),
}

impl BackendError {
    /// A stable machine-readable code for error PDUs.
    pub fn code(&self) -> &'static str {
        match self {
            BackendError::Unavailable { .. } => error_code::BACKEND_UNAVAILABLE,
            BackendError::Overloaded(_) => error_code::BACKEND_OVERLOADED,
            BackendError::NoSuchPosition(_) => error_code::INVALID_POSITION,
        }
    }
}

/// The storage and distribution backend. See the module documentation for the contract.
pub trait Backend: Send + Sync + 'static {
    /// Appends `payload` to `channel` and delivers it to the local subscribers of the channel.
    /// Resolves with the message's position once the backend accepted it.
    fn publish(
        &self,
        channel: &ChannelKey,
        payload: Arc<str>,
    ) -> BoxFuture<'_, Result<Position, BackendError>>;

    /// Registers `subscriber` on `channel`, replaying history after `start` first (no gap, no
    /// duplicate with the live messages).
    fn subscribe(
        &self,
        channel: &ChannelKey,
        start: StartAt,
        subscriber: Arc<Subscriber>,
    ) -> BoxFuture<'_, Result<SubscribeAck, BackendError>>;

    /// Removes `subscriber` from `channel`. No message is offered to it afterwards.
    fn unsubscribe(&self, channel: &ChannelKey, subscriber: &Arc<Subscriber>);

    /// Stores `value` as the channel's only key/value entry; resolves with its position.
    fn write(
        &self,
        channel: &ChannelKey,
        value: Arc<str>,
    ) -> BoxFuture<'_, Result<Position, BackendError>>;

    /// Reads the channel's value (`None` when nothing is stored), or, with `at`, the history
    /// message at that position.
    fn read(
        &self,
        channel: &ChannelKey,
        at: Option<Position>,
    ) -> BoxFuture<'_, Result<Option<Arc<str>>, BackendError>>;

    /// Deletes the channel's value; a later read gives `None`.
    fn delete(&self, channel: &ChannelKey) -> BoxFuture<'_, Result<(), BackendError>>;

    /// One entry per backend node.
    fn health(&self) -> Vec<NodeHealth>;

    /// The slow-subscriber counters this backend keeps ([`super::catchup`]), shown in
    /// `/metrics`.
    fn catch_up_counters(&self) -> Arc<CatchUpCounters> {
        Arc::default()
    }
}
