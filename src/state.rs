//! The connection state the engine publishes and the handles read.

/// The connection state, as last published by the engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum State {
    /// Not connected and not trying (initial state, or after `disconnect()`).
    Disconnected = 0,
    /// Resolving, connecting, TLS, proxy or WebSocket upgrade in progress.
    Connecting = 1,
    /// The WebSocket is open; authentication is in progress.
    Authenticating = 2,
    /// Authenticated: publishes and subscriptions flow.
    Connected = 3,
    /// Waiting for the backoff delay before the next attempt.
    Reconnecting = 4,
    /// Suspended by `suspend()`: closed and not retrying until `resume()`.
    Suspended = 5,
    /// The engine thread has stopped (the client was dropped).
    Stopped = 6,
}

impl State {
    pub(crate) fn from_u8(v: u8) -> State {
        match v {
            1 => State::Connecting,
            2 => State::Authenticating,
            3 => State::Connected,
            4 => State::Reconnecting,
            5 => State::Suspended,
            6 => State::Stopped,
            _ => State::Disconnected,
        }
    }
}
