//! `cobra_event_t`: the typed event handed to the C callback, built from [`crate::Event`].

use std::ffi::{CString, c_char, c_void};
use std::ptr;
use std::time::Duration;

use super::strings::to_c_string;
use crate::{ClosedBy, ErrorKind, Event};

/// What a `cobra_event_t` reports; each field of `cobra_event_t` says for which kinds it is set.
/// cbindgen:rename-all=prefix:COBRA_EVENT_
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(non_camel_case_types)]
pub enum CobraEventKind {
    /// A connection attempt starts (`url`, `attempt`).
    CONNECTING = 0,
    /// The WebSocket is open (upgrade accepted).
    OPEN = 1,
    /// The server answered the handshake (`connection_id`, `server_version`).
    HANDSHAKE = 2,
    /// Authenticated: publishes and subscriptions flow from now on.
    AUTHENTICATED = 3,
    /// The connection closed (`close_code`, `reason`, `closed_by_remote`).
    CLOSED = 4,
    /// A connection-level error; the client retries by itself after `wait_ms` unless it is -1 (`error_kind`,
    /// `reason`, `retry_count`, `wait_ms`).
    ERROR = 5,
    /// The client waits `wait_ms` before attempt number `attempt`.
    RECONNECTING = 6,
    /// A subscription is active (`subscription_id`, `position` may be NULL); also after each automatic
    /// re-subscription following a reconnect.
    SUBSCRIBED = 7,
    /// A subscription ended (`subscription_id`).
    UNSUBSCRIBED = 8,
    /// Messages for a subscription (`subscription_id`, `position` of the last one (may be NULL),
    /// `messages`/`message_lens`/`message_count`).
    SUBSCRIPTION_DATA = 9,
    /// The server refused or ended a subscription; it is not re-sent on reconnect (`subscription_id`,
    /// `error`, `reason`).
    SUBSCRIPTION_ERROR = 10,
    /// Information about a subscription, e.g. it was fast-forwarded (`subscription_id`, `info_json`).
    SUBSCRIPTION_INFO = 11,
    /// The server acknowledged a published message (`publish_id`).
    PUBLISHED = 12,
    /// A message left the publish queue without an acknowledgement (`publish_id`, `reason`).
    PUBLISH_DROPPED = 13,
    /// A heartbeat pong arrived (`rtt_us`).
    PONG = 14,
}

/// The class of a `COBRA_EVENT_ERROR`.
/// cbindgen:rename-all=prefix:COBRA_ERROR_KIND_
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(non_camel_case_types)]
pub enum CobraErrorKind {
    /// Not an error event.
    NONE = 0,
    /// Name resolution failed.
    DNS = 1,
    /// The TCP connection could not be established.
    CONNECT = 2,
    /// The HTTP CONNECT proxy refused or failed.
    PROXY = 3,
    /// TLS failed (certificate, pin, handshake).
    TLS = 4,
    /// The WebSocket upgrade failed.
    HANDSHAKE = 5,
    /// The server refused the appkey (HTTP 403). Retrying cannot fix it: retried only at the maximum backoff.
    FORBIDDEN = 6,
    /// The role or secret was refused. Retried only at the maximum backoff.
    AUTHENTICATION_FAILED = 7,
    /// A connection step took longer than its timeout.
    TIMEOUT = 8,
    /// No pong came in time after a heartbeat ping.
    PONG_TIMEOUT = 9,
    /// The peer broke the WebSocket or RTM protocol.
    PROTOCOL = 10,
    /// The connection was lost.
    CONNECTION_LOST = 11,
    /// The server closed the WebSocket.
    CLOSED_BY_SERVER = 12,
    /// The on-disk spool failed; the client continues in memory.
    SPOOL = 13,
    /// Any other error.
    OTHER = 14,
}

/// One event, as the callback sees it.
///
/// Lifetime: the struct and every pointer in it (strings, the `messages` array and its strings) are
/// borrowed and valid ONLY during the callback; copy what you need to keep. Strings are UTF-8 and
/// NUL-terminated. A string field that does not apply to the event's `kind` is NULL; a number field that
/// does not apply is 0.
#[repr(C)]
pub struct CobraEvent {
    /// What happened; says which fields below are set.
    pub kind: CobraEventKind,
    /// CONNECTING: the URL being connected to.
    pub url: *const c_char,
    /// CONNECTING, RECONNECTING: the attempt number (from 1 since the last successful authentication).
    pub attempt: u32,
    /// HANDSHAKE: the server's id for this connection.
    pub connection_id: *const c_char,
    /// HANDSHAKE: the server's version.
    pub server_version: *const c_char,
    /// CLOSED: the WebSocket close code (1006 when the connection dropped without a close frame).
    pub close_code: u16,
    /// CLOSED: true when the server or the network closed the connection, false when this client did.
    pub closed_by_remote: bool,
    /// CLOSED: the close reason. ERROR: the error message. SUBSCRIPTION_ERROR: the server's reason.
    /// PUBLISH_DROPPED: why the message was dropped.
    pub reason: *const c_char,
    /// ERROR: the class of error (COBRA_ERROR_KIND_NONE otherwise).
    pub error_kind: CobraErrorKind,
    /// ERROR: consecutive failed attempts so far.
    pub retry_count: u32,
    /// ERROR: delay before the next attempt, or -1 when none follows (disconnected or suspended).
    /// RECONNECTING: the backoff delay.
    pub wait_ms: i64,
    /// SUBSCRIBED, UNSUBSCRIBED, SUBSCRIPTION_DATA, SUBSCRIPTION_ERROR, SUBSCRIPTION_INFO: the subscription.
    pub subscription_id: *const c_char,
    /// SUBSCRIBED, SUBSCRIPTION_DATA: the position (resume point); may be NULL.
    pub position: *const c_char,
    /// SUBSCRIPTION_DATA: `message_count` messages, each the JSON text of one message (the projection when
    /// the subscription has a filter).
    pub messages: *const *const c_char,
    /// SUBSCRIPTION_DATA: the byte length of each message (without the NUL).
    pub message_lens: *const usize,
    /// SUBSCRIPTION_DATA: the number of messages.
    pub message_count: usize,
    /// SUBSCRIPTION_ERROR: the server's machine-readable error code.
    pub error: *const c_char,
    /// SUBSCRIPTION_INFO: the info body as JSON text.
    pub info_json: *const c_char,
    /// PUBLISHED, PUBLISH_DROPPED: the id that publish returned.
    pub publish_id: u64,
    /// PONG: the round-trip time of the heartbeat ping, in microseconds.
    pub rtt_us: u64,
}

/// The event callback. Runs on the client's engine thread (one per client), one event at a time, in order.
/// Keep it short: the connection is not served while it runs. It may call any `cobra_` function, except
/// that the blocking requests of the same client (`cobra_client_read`, `cobra_client_write`,
/// `cobra_client_delete`) return `COBRA_STATUS_WRONG_THREAD` there (they would wait for the engine
/// thread, which is busy running the callback). `cobra_client_disconnect` and `cobra_client_free` on its
/// own client are allowed; after `cobra_client_free` no further callback follows. A C++ callback must not
/// let an exception escape (cobra.hpp catches them).
pub type CobraEventCallback =
    Option<unsafe extern "C" fn(event: *const CobraEvent, user_data: *mut c_void)>;

/// The C strings and arrays a [`CobraEvent`] points into; must outlive every use of the event.
pub(crate) struct EventStorage {
    strings: Vec<CString>,
    message_ptrs: Vec<*const c_char>,
    message_lens: Vec<usize>,
}

impl EventStorage {
    fn text(&mut self, s: &str) -> *const c_char {
        let c = to_c_string(s);
        let p = c.as_ptr();
        // Moving a CString into the Vec moves only its (ptr, len) box; the bytes `p` points to stay put.
        self.strings.push(c);
        p
    }

    fn opt(&mut self, s: Option<&str>) -> *const c_char {
        s.map_or(ptr::null(), |s| self.text(s))
    }

    /// Fills the fields of a `SUBSCRIPTION_DATA` event, the messages as JSON text.
    fn data<S: AsRef<str>>(
        &mut self,
        ev: &mut CobraEvent,
        subscription_id: &str,
        position: Option<&str>,
        messages: impl Iterator<Item = S>,
    ) {
        ev.kind = CobraEventKind::SUBSCRIPTION_DATA;
        ev.subscription_id = self.text(subscription_id);
        ev.position = self.opt(position);
        for json in messages {
            let json = json.as_ref();
            self.message_lens.push(json.len());
            let p = self.text(json);
            self.message_ptrs.push(p);
        }
        // The Vecs are not touched again, so these pointers stay valid as long as `self` lives.
        ev.messages = self.message_ptrs.as_ptr();
        ev.message_lens = self.message_lens.as_ptr();
        ev.message_count = self.message_ptrs.len();
    }
}

fn wait_ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn error_kind(kind: ErrorKind) -> CobraErrorKind {
    match kind {
        ErrorKind::Dns => CobraErrorKind::DNS,
        ErrorKind::Connect => CobraErrorKind::CONNECT,
        ErrorKind::Proxy => CobraErrorKind::PROXY,
        ErrorKind::Tls => CobraErrorKind::TLS,
        ErrorKind::Handshake => CobraErrorKind::HANDSHAKE,
        ErrorKind::Forbidden => CobraErrorKind::FORBIDDEN,
        ErrorKind::AuthenticationFailed => CobraErrorKind::AUTHENTICATION_FAILED,
        ErrorKind::Timeout => CobraErrorKind::TIMEOUT,
        ErrorKind::PongTimeout => CobraErrorKind::PONG_TIMEOUT,
        ErrorKind::Protocol => CobraErrorKind::PROTOCOL,
        ErrorKind::ConnectionLost => CobraErrorKind::CONNECTION_LOST,
        ErrorKind::ClosedByServer => CobraErrorKind::CLOSED_BY_SERVER,
        ErrorKind::Spool => CobraErrorKind::SPOOL,
        #[allow(unreachable_patterns)] // `ErrorKind` is non_exhaustive
        _ => CobraErrorKind::OTHER,
    }
}

/// Builds the C view of `event`; the returned struct points into the returned storage. `None` for an
/// event this C API does not describe yet.
pub(crate) fn to_c_event(event: &Event) -> Option<(CobraEvent, EventStorage)> {
    let mut st = EventStorage {
        strings: Vec::new(),
        message_ptrs: Vec::new(),
        message_lens: Vec::new(),
    };
    let mut ev = CobraEvent {
        kind: CobraEventKind::OPEN,
        url: ptr::null(),
        attempt: 0,
        connection_id: ptr::null(),
        server_version: ptr::null(),
        close_code: 0,
        closed_by_remote: false,
        reason: ptr::null(),
        error_kind: CobraErrorKind::NONE,
        retry_count: 0,
        wait_ms: 0,
        subscription_id: ptr::null(),
        position: ptr::null(),
        messages: ptr::null(),
        message_lens: ptr::null(),
        message_count: 0,
        error: ptr::null(),
        info_json: ptr::null(),
        publish_id: 0,
        rtt_us: 0,
    };
    #[allow(unreachable_patterns)]
    match event {
        Event::Connecting { url, attempt } => {
            ev.kind = CobraEventKind::CONNECTING;
            ev.url = st.text(url);
            ev.attempt = *attempt;
        }
        Event::Open => ev.kind = CobraEventKind::OPEN,
        Event::Handshake {
            connection_id,
            server_version,
        } => {
            ev.kind = CobraEventKind::HANDSHAKE;
            ev.connection_id = st.text(connection_id);
            ev.server_version = st.text(server_version);
        }
        Event::Authenticated => ev.kind = CobraEventKind::AUTHENTICATED,
        Event::Closed { code, reason, by } => {
            ev.kind = CobraEventKind::CLOSED;
            ev.close_code = *code;
            ev.reason = st.text(reason);
            ev.closed_by_remote = *by == ClosedBy::ByRemote;
        }
        Event::Error {
            kind,
            message,
            retry_count,
            next_wait,
        } => {
            ev.kind = CobraEventKind::ERROR;
            ev.error_kind = error_kind(*kind);
            ev.reason = st.text(message);
            ev.retry_count = *retry_count;
            ev.wait_ms = next_wait.map_or(-1, wait_ms);
        }
        Event::Reconnecting { attempt, wait } => {
            ev.kind = CobraEventKind::RECONNECTING;
            ev.attempt = *attempt;
            ev.wait_ms = wait_ms(*wait);
        }
        Event::Subscribed {
            subscription_id,
            position,
        } => {
            ev.kind = CobraEventKind::SUBSCRIBED;
            ev.subscription_id = st.text(subscription_id);
            ev.position = st.opt(position.as_deref());
        }
        Event::Unsubscribed { subscription_id } => {
            ev.kind = CobraEventKind::UNSUBSCRIBED;
            ev.subscription_id = st.text(subscription_id);
        }
        Event::SubscriptionData {
            subscription_id,
            position,
            messages,
        } => {
            let messages = messages.iter().map(|m| m.to_string());
            st.data(&mut ev, subscription_id, position.as_deref(), messages);
        }
        // The C options cannot ask for raw delivery; mapped anyway, the text as the server sent it.
        Event::SubscriptionRawData {
            subscription_id,
            position,
            messages,
        } => {
            let messages = messages.iter().map(|m| m.json());
            st.data(&mut ev, subscription_id, position.as_deref(), messages);
        }
        Event::SubscriptionError {
            subscription_id,
            error,
            reason,
        } => {
            ev.kind = CobraEventKind::SUBSCRIPTION_ERROR;
            ev.subscription_id = st.text(subscription_id);
            ev.error = st.text(error);
            ev.reason = st.text(reason);
        }
        Event::SubscriptionInfo {
            subscription_id,
            info,
        } => {
            ev.kind = CobraEventKind::SUBSCRIPTION_INFO;
            ev.subscription_id = st.text(subscription_id);
            ev.info_json = st.text(&info.to_string());
        }
        Event::Published { id } => {
            ev.kind = CobraEventKind::PUBLISHED;
            ev.publish_id = *id;
        }
        Event::PublishDropped { id, reason } => {
            ev.kind = CobraEventKind::PUBLISH_DROPPED;
            ev.publish_id = *id;
            ev.reason = st.text(reason);
        }
        Event::Pong { rtt } => {
            ev.kind = CobraEventKind::PONG;
            ev.rtt_us = u64::try_from(rtt.as_micros()).unwrap_or(u64::MAX);
        }
        #[allow(unreachable_patterns)]
        // `Event` is non_exhaustive: a new kind is skipped until mapped here
        _ => return None,
    }
    Some((ev, st))
}

/// The caller's callback and its `user_data`, moved to the engine thread.
#[derive(Clone, Copy)]
pub(crate) struct CallbackTarget {
    pub(crate) callback: unsafe extern "C" fn(*const CobraEvent, *mut c_void),
    pub(crate) user_data: *mut c_void,
}

// SAFETY: the header documents that the callback runs on the engine thread with this `user_data`; by
// registering them the caller promises they may be used from that thread. Rust never dereferences
// `user_data`.
unsafe impl Send for CallbackTarget {}
// SAFETY: as above; the pointer is only ever copied, never dereferenced by Rust.
unsafe impl Sync for CallbackTarget {}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::CStr;

    fn text(p: *const c_char) -> Option<String> {
        // SAFETY: test-only; `p` is NULL or points into the storage kept alive by the caller.
        (!p.is_null()).then(|| unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned())
    }

    #[test]
    fn every_event_maps_to_its_kind_and_fields() {
        let data = Event::SubscriptionData {
            subscription_id: "fps".into(),
            position: Some("1-2".into()),
            messages: vec![serde_json::json!({"a": 1}), serde_json::json!("x\u{0}y")],
        };
        let (ev, _storage) = to_c_event(&data).expect("mapped");
        assert_eq!(ev.kind, CobraEventKind::SUBSCRIPTION_DATA);
        assert_eq!(text(ev.subscription_id).as_deref(), Some("fps"));
        assert_eq!(text(ev.position).as_deref(), Some("1-2"));
        assert_eq!(ev.message_count, 2);
        // SAFETY: `message_count` pointers and lengths, alive with `_storage`.
        let (ptrs, lens) = unsafe {
            (
                std::slice::from_raw_parts(ev.messages, 2),
                std::slice::from_raw_parts(ev.message_lens, 2),
            )
        };
        assert_eq!(text(ptrs[0]).as_deref(), Some(r#"{"a":1}"#));
        assert_eq!(lens[0], 7);
        // JSON escapes NUL, so a message never gets cut short in C.
        assert_eq!(text(ptrs[1]).as_deref(), Some(r#""x\u0000y""#));
        assert_eq!(lens[1], text(ptrs[1]).map_or(0, |s| s.len()));

        let cases = [
            (
                Event::Connecting {
                    url: "ws://h".into(),
                    attempt: 3,
                },
                CobraEventKind::CONNECTING,
            ),
            (Event::Open, CobraEventKind::OPEN),
            (
                Event::Handshake {
                    connection_id: "c".into(),
                    server_version: "v".into(),
                },
                CobraEventKind::HANDSHAKE,
            ),
            (Event::Authenticated, CobraEventKind::AUTHENTICATED),
            (
                Event::Closed {
                    code: 1001,
                    reason: "bye".into(),
                    by: ClosedBy::ByRemote,
                },
                CobraEventKind::CLOSED,
            ),
            (
                Event::Error {
                    kind: ErrorKind::AuthenticationFailed,
                    message: "no".into(),
                    retry_count: 2,
                    next_wait: None,
                },
                CobraEventKind::ERROR,
            ),
            (
                Event::Reconnecting {
                    attempt: 4,
                    wait: Duration::from_millis(1500),
                },
                CobraEventKind::RECONNECTING,
            ),
            (
                Event::Subscribed {
                    subscription_id: "s".into(),
                    position: None,
                },
                CobraEventKind::SUBSCRIBED,
            ),
            (
                Event::Unsubscribed {
                    subscription_id: "s".into(),
                },
                CobraEventKind::UNSUBSCRIBED,
            ),
            (
                Event::SubscriptionError {
                    subscription_id: "s".into(),
                    error: "e".into(),
                    reason: "r".into(),
                },
                CobraEventKind::SUBSCRIPTION_ERROR,
            ),
            (
                Event::SubscriptionInfo {
                    subscription_id: "s".into(),
                    info: serde_json::json!({"n": 1}),
                },
                CobraEventKind::SUBSCRIPTION_INFO,
            ),
            (Event::Published { id: 9 }, CobraEventKind::PUBLISHED),
            (
                Event::PublishDropped {
                    id: 9,
                    reason: "full".into(),
                },
                CobraEventKind::PUBLISH_DROPPED,
            ),
            (
                Event::Pong {
                    rtt: Duration::from_micros(250),
                },
                CobraEventKind::PONG,
            ),
        ];
        for (event, kind) in cases {
            let (ev, _storage) = to_c_event(&event).expect("mapped");
            assert_eq!(ev.kind, kind, "{event:?}");
            match kind {
                CobraEventKind::CONNECTING => {
                    assert_eq!((text(ev.url).as_deref(), ev.attempt), (Some("ws://h"), 3))
                }
                CobraEventKind::CLOSED => {
                    assert_eq!(
                        (
                            ev.close_code,
                            ev.closed_by_remote,
                            text(ev.reason).as_deref()
                        ),
                        (1001, true, Some("bye"))
                    )
                }
                CobraEventKind::ERROR => {
                    assert_eq!(
                        (ev.error_kind, ev.retry_count, ev.wait_ms),
                        (CobraErrorKind::AUTHENTICATION_FAILED, 2, -1)
                    )
                }
                CobraEventKind::RECONNECTING => assert_eq!((ev.attempt, ev.wait_ms), (4, 1500)),
                CobraEventKind::SUBSCRIBED => assert!(ev.position.is_null()),
                CobraEventKind::SUBSCRIPTION_ERROR => {
                    assert_eq!(text(ev.error).as_deref(), Some("e"))
                }
                CobraEventKind::SUBSCRIPTION_INFO => {
                    assert_eq!(text(ev.info_json).as_deref(), Some(r#"{"n":1}"#))
                }
                CobraEventKind::PUBLISH_DROPPED => assert_eq!(
                    (ev.publish_id, text(ev.reason).as_deref()),
                    (9, Some("full"))
                ),
                CobraEventKind::PONG => assert_eq!(ev.rtt_us, 250),
                _ => {}
            }
        }
    }
}
