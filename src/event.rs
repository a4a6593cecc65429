//! Events the engine reports, and the two ways to receive them.

use std::time::Duration;

use serde_json::Value;

use crate::error::ErrorKind;
use crate::raw::RawMessage;

/// Identifier of a published message, unique within one [`Client`](crate::Client) (and kept
/// across restarts by the spool).
pub type PublishId = u64;

/// Who closed a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClosedBy {
    /// This client (disconnect, suspend, heartbeat timeout, protocol error, ...).
    ByLocal,
    /// The server or the network.
    ByRemote,
}

/// Something that happened on the connection.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Event {
    /// A connection attempt starts (`attempt` counts from 1 since the last successful authentication).
    Connecting {
        /// The URL being connected to.
        url: String,
        /// Attempt number.
        attempt: u32,
    },
    /// The WebSocket is open (upgrade accepted).
    Open,
    /// `auth/handshake/ok` arrived.
    Handshake {
        /// The server's id for this connection.
        connection_id: String,
        /// The server's version string.
        server_version: String,
    },
    /// `auth/authenticate/ok` arrived: publishes and subscriptions flow from now on.
    Authenticated,
    /// The connection closed.
    Closed {
        /// WebSocket close code (1006 when the connection dropped without a close frame).
        code: u16,
        /// Close reason.
        reason: String,
        /// Who closed it.
        by: ClosedBy,
    },
    /// A connection-level error; the engine retries after `next_wait` unless stopped.
    Error {
        /// The class of error.
        kind: ErrorKind,
        /// Details.
        message: String,
        /// Consecutive failed attempts so far.
        retry_count: u32,
        /// Delay before the next attempt (`None` when no retry follows: disconnected or suspended).
        next_wait: Option<Duration>,
    },
    /// The engine waits `wait` before attempt number `attempt`.
    Reconnecting {
        /// The coming attempt number.
        attempt: u32,
        /// The backoff delay.
        wait: Duration,
    },
    /// `rtm/subscribe/ok` arrived (also after each automatic re-subscription).
    Subscribed {
        /// The subscription.
        subscription_id: String,
        /// The position the server reported, if any.
        position: Option<String>,
    },
    /// The subscription ended (`rtm/unsubscribe/ok`, or at once when offline).
    Unsubscribed {
        /// The subscription.
        subscription_id: String,
    },
    /// Messages for a subscription.
    SubscriptionData {
        /// The subscription.
        subscription_id: String,
        /// Position of the last message in this batch.
        position: Option<String>,
        /// The messages (projections when the subscription has a filter). A message that is valid
        /// JSON but cannot be a [`Value`] (a number beyond the range of a double) is skipped with a
        /// warning in the log; the others of its batch are delivered.
        messages: Vec<Value>,
    },
    /// Messages for a subscription made with [`SubscribeOptions::raw`](crate::SubscribeOptions::raw):
    /// the JSON text of each, sharing the PDU's text, not parsed.
    SubscriptionRawData {
        /// The subscription.
        subscription_id: String,
        /// Position of the last message in this batch.
        position: Option<String>,
        /// The messages (projections when the subscription has a filter), each valid JSON.
        messages: Vec<RawMessage>,
    },
    /// The server refused or ended a subscription; it is no longer re-sent on reconnect.
    SubscriptionError {
        /// The subscription.
        subscription_id: String,
        /// Machine-readable error code.
        error: String,
        /// Human-readable reason.
        reason: String,
    },
    /// `rtm/subscription/info` (e.g. fast_forward after falling behind).
    SubscriptionInfo {
        /// The subscription.
        subscription_id: String,
        /// The info body as the server sent it.
        info: Value,
    },
    /// The server acknowledged a published message.
    Published {
        /// The id `publish` returned.
        id: PublishId,
    },
    /// A message left the queue without an acknowledgement.
    PublishDropped {
        /// The id `publish` returned.
        id: PublishId,
        /// Why (queue overflow, refused by the server, lost with the connection under at-most-once, ...).
        reason: String,
    },
    /// A heartbeat pong arrived.
    Pong {
        /// Round-trip time of the heartbeat ping.
        rtt: Duration,
    },
}

/// Receives events on the client's engine thread.
///
/// `on_event` runs on the engine thread, in order. Keep it short: while it runs the connection
/// is not served (no reads, writes or heartbeats). It may call any [`Client`](crate::Client)
/// method except that blocking requests (`read`, `write`, `delete`, `disconnect`) called from the
/// callback cannot be answered until it returns and so time out; queue work to another thread
/// instead. A panic in `on_event` is caught and logged; it does not stop the engine.
///
/// Holding a strong [`Client`](crate::Client) inside the listener keeps the client alive forever
/// (the engine owns the listener); hold a [`WeakClient`](crate::WeakClient) instead.
pub trait Listener: Send + Sync {
    /// Called once per event.
    fn on_event(&self, event: &Event);
}

impl<F: Fn(&Event) + Send + Sync> Listener for F {
    fn on_event(&self, event: &Event) {
        self(event)
    }
}
