//! The crate's one public error type.

use std::time::Duration;

/// Everything that can go wrong in a call into the SDK.
///
/// Connection problems seen by the background engine are not returned from calls (the engine
/// retries on its own); they are reported as [`Event::Error`](crate::Event::Error) with an
/// [`ErrorKind`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A configuration value is invalid; `field` names it.
    #[error("invalid config `{field}`: {reason}")]
    InvalidConfig {
        /// The config field at fault (as named in [`Config`](crate::Config)).
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// An argument of a call is invalid (empty channel, message that is not JSON, ...).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// The publish queue is full and the policy is [`OverflowPolicy::RefuseNew`](crate::OverflowPolicy::RefuseNew).
    #[error("publish queue full ({messages} messages, {bytes} bytes)")]
    QueueFull {
        /// Messages held when the new one was refused.
        messages: usize,
        /// Bytes held when the new one was refused.
        bytes: usize,
    },
    /// A message is larger than `Config::max_message_size`.
    #[error("message of {size} bytes exceeds the limit of {limit} bytes")]
    MessageTooLarge {
        /// The size of the refused message (its JSON text).
        size: usize,
        /// The configured limit.
        limit: usize,
    },
    /// No answer came within the given time.
    #[error("no response within {0:?}")]
    Timeout(Duration),
    /// The server answered a request with `<action>/error`.
    #[error("server refused `{action}`: {error}: {reason}")]
    Server {
        /// The request's action, e.g. `rtm/read`.
        action: String,
        /// The machine-readable error code from the body.
        error: String,
        /// The human-readable reason from the body.
        reason: String,
    },
    /// The client was shut down (dropped or its engine thread ended) while the call waited.
    #[error("client is shut down")]
    Shutdown,
    /// The request was abandoned because the client was disconnected or suspended.
    #[error("request cancelled: {0}")]
    Cancelled(String),
    /// A local I/O error (spawning the engine thread, opening the spool, ...).
    #[error("I/O error: {0}")]
    Io(String),
    /// The server sent something that does not follow the protocol.
    #[error("protocol error: {0}")]
    Protocol(String),
}

/// The class of a connection error reported by [`Event::Error`](crate::Event::Error).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Enum))]
#[non_exhaustive]
pub enum ErrorKind {
    /// Name resolution failed.
    Dns,
    /// The TCP connection could not be established.
    Connect,
    /// The HTTP CONNECT proxy refused or failed.
    Proxy,
    /// TLS failed (certificate, pin, handshake).
    Tls,
    /// The WebSocket upgrade failed (unexpected HTTP status or headers).
    Handshake,
    /// The server refused the appkey (HTTP 403). Not fixed by retrying: retried only at `backoff_max`.
    Forbidden,
    /// The role/secret were refused (`auth/authenticate/error`). Retried only at `backoff_max`.
    AuthenticationFailed,
    /// A step (connect, handshake, authentication) took longer than its timeout.
    Timeout,
    /// No pong came within `pong_timeout` of a ping.
    PongTimeout,
    /// The peer broke the WebSocket or RTM protocol.
    Protocol,
    /// The connection was lost (reset, EOF, write error).
    ConnectionLost,
    /// The server closed the WebSocket.
    ClosedByServer,
    /// The on-disk spool could not be read or written; the SDK continues in memory.
    Spool,
}

impl ErrorKind {
    /// True for errors that retrying cannot fix (bad credentials, unknown appkey): the engine
    /// then waits `backoff_max` before the next attempt instead of backing off from `backoff_min`.
    pub fn is_permanent(self) -> bool {
        matches!(self, ErrorKind::Forbidden | ErrorKind::AuthenticationFailed)
    }
}
