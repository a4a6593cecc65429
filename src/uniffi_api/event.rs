//! `Event` and the `EventListener` foreign trait, bridged to [`crate::Listener`].

use std::sync::Arc;

use super::config::millis;
// The SDK's own error class, derived for uniffi (src/error.rs).
use crate::ErrorKind;

/// Who closed a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub(super) enum ClosedBy {
    /// This client (disconnect, suspend, heartbeat timeout...).
    Local,
    /// The server or the network.
    Remote,
}

/// Something that happened on the connection. JSON values (`messages`, `info`) are JSON text.
#[derive(Debug, Clone, PartialEq, uniffi::Enum)]
pub(super) enum Event {
    /// A connection attempt starts.
    Connecting {
        /// The URL.
        url: String,
        /// Attempt number, from 1.
        attempt: u32,
    },
    /// The WebSocket is open.
    Open,
    /// The server's handshake answer arrived.
    Handshake {
        /// The server's id of this connection.
        connection_id: String,
        /// The server's version.
        server_version: String,
    },
    /// Authenticated: publishes and subscriptions flow.
    Authenticated,
    /// The connection closed.
    Closed {
        /// WebSocket close code (1006: dropped without a close frame).
        code: u16,
        /// Close reason.
        reason: String,
        /// Who closed it.
        by: ClosedBy,
    },
    /// A connection-level error; the SDK retries after `next_wait_ms` unless stopped.
    ConnectionError {
        /// The class of error.
        kind: ErrorKind,
        /// Details.
        message: String,
        /// Consecutive failed attempts.
        retry_count: u32,
        /// Delay before the next attempt (`None`: no retry follows).
        next_wait_ms: Option<u64>,
    },
    /// Waiting `wait_ms` before attempt `attempt`.
    Reconnecting {
        /// The coming attempt.
        attempt: u32,
        /// The backoff delay.
        wait_ms: u64,
    },
    /// A subscription is active (also after each automatic re-subscription).
    Subscribed {
        /// The subscription.
        subscription_id: String,
        /// The server's current position, if any.
        position: Option<String>,
    },
    /// A subscription ended.
    Unsubscribed {
        /// The subscription.
        subscription_id: String,
    },
    /// Messages for a subscription, each as JSON text (projections when it has a filter).
    SubscriptionData {
        /// The subscription.
        subscription_id: String,
        /// Position of the last message of the batch.
        position: Option<String>,
        /// The messages, JSON text.
        messages: Vec<String>,
    },
    /// The server refused or ended a subscription.
    SubscriptionError {
        /// The subscription.
        subscription_id: String,
        /// Machine-readable code.
        code: String,
        /// Human-readable reason.
        reason: String,
    },
    /// `rtm/subscription/info` (e.g. fast-forward after falling behind).
    SubscriptionInfo {
        /// The subscription.
        subscription_id: String,
        /// The info body, JSON text.
        info: String,
    },
    /// The server acknowledged a publish.
    Published {
        /// The id `publish` returned.
        id: u64,
    },
    /// A publish left the queue without an acknowledgement.
    PublishDropped {
        /// The id `publish` returned.
        id: u64,
        /// Why.
        reason: String,
    },
    /// A heartbeat pong arrived.
    Pong {
        /// Round-trip time.
        rtt_ms: u64,
    },
}

/// Receives the client's events, in order, on the SDK's engine thread (not the caller's, not
/// the UI thread): keep `on_event` short and hand work to your own thread or dispatcher. Calling
/// the blocking `read`/`write`/`delete`/`disconnect` from inside it times out. An exception
/// thrown by `on_event` is logged and does not stop the client.
#[uniffi::export(with_foreign)]
pub trait EventListener: Send + Sync {
    /// Called once per event.
    fn on_event(&self, event: Event);
}

/// Adapts a foreign `EventListener` to the SDK's [`crate::Listener`].
pub(super) struct ListenerBridge(pub Arc<dyn EventListener>);

impl crate::Listener for ListenerBridge {
    fn on_event(&self, event: &crate::Event) {
        self.0.on_event(Event::from(event));
    }
}

impl From<&crate::Event> for Event {
    fn from(e: &crate::Event) -> Self {
        use crate::Event as E;
        // Exhaustive on purpose: a new SDK event must be mapped here.
        match e {
            E::Connecting { url, attempt } => Event::Connecting {
                url: url.clone(),
                attempt: *attempt,
            },
            E::Open => Event::Open,
            E::Handshake {
                connection_id,
                server_version,
            } => Event::Handshake {
                connection_id: connection_id.clone(),
                server_version: server_version.clone(),
            },
            E::Authenticated => Event::Authenticated,
            E::Closed { code, reason, by } => Event::Closed {
                code: *code,
                reason: reason.clone(),
                by: match by {
                    crate::ClosedBy::ByLocal => ClosedBy::Local,
                    crate::ClosedBy::ByRemote => ClosedBy::Remote,
                },
            },
            E::Error {
                kind,
                message,
                retry_count,
                next_wait,
            } => Event::ConnectionError {
                kind: *kind,
                message: message.clone(),
                retry_count: *retry_count,
                next_wait_ms: next_wait.map(millis),
            },
            E::Reconnecting { attempt, wait } => Event::Reconnecting {
                attempt: *attempt,
                wait_ms: millis(*wait),
            },
            E::Subscribed {
                subscription_id,
                position,
            } => Event::Subscribed {
                subscription_id: subscription_id.clone(),
                position: position.clone(),
            },
            E::Unsubscribed { subscription_id } => Event::Unsubscribed {
                subscription_id: subscription_id.clone(),
            },
            E::SubscriptionData {
                subscription_id,
                position,
                messages,
            } => subscription_data(
                subscription_id,
                position,
                messages.iter().map(ToString::to_string),
            ),
            // Not reachable from the bindings (their options have no `raw`), mapped for
            // completeness: the same text a parsed message gives, the raw text if it cannot parse.
            E::SubscriptionRawData {
                subscription_id,
                position,
                messages,
            } => {
                let texts = messages.iter().map(|m| {
                    m.value()
                        .map_or_else(|_| m.json().to_owned(), |v| v.to_string())
                });
                subscription_data(subscription_id, position, texts)
            }
            E::SubscriptionError {
                subscription_id,
                error,
                reason,
            } => Event::SubscriptionError {
                subscription_id: subscription_id.clone(),
                code: error.clone(),
                reason: reason.clone(),
            },
            E::SubscriptionInfo {
                subscription_id,
                info,
            } => Event::SubscriptionInfo {
                subscription_id: subscription_id.clone(),
                info: info.to_string(),
            },
            E::Published { id } => Event::Published { id: *id },
            E::PublishDropped { id, reason } => Event::PublishDropped {
                id: *id,
                reason: reason.clone(),
            },
            E::Pong { rtt } => Event::Pong {
                rtt_ms: millis(*rtt),
            },
        }
    }
}

/// The bindings' data event: the messages as JSON text.
fn subscription_data(
    subscription_id: &str,
    position: &Option<String>,
    messages: impl Iterator<Item = String>,
) -> Event {
    Event::SubscriptionData {
        subscription_id: subscription_id.to_owned(),
        position: position.clone(),
        messages: messages.collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::sync::Mutex;
    use std::time::Duration;

    #[test]
    fn json_values_become_text() {
        let e = Event::from(&crate::Event::SubscriptionData {
            subscription_id: "s".into(),
            position: Some("1-2".into()),
            messages: vec![json!({"fps": 30}), json!("x")],
        });
        assert_eq!(
            e,
            Event::SubscriptionData {
                subscription_id: "s".into(),
                position: Some("1-2".into()),
                messages: vec![r#"{"fps":30}"#.into(), r#""x""#.into()],
            }
        );
    }

    #[test]
    fn durations_become_millis() {
        let e = Event::from(&crate::Event::Error {
            kind: crate::ErrorKind::PongTimeout,
            message: "m".into(),
            retry_count: 2,
            next_wait: Some(Duration::from_millis(750)),
        });
        assert_eq!(
            e,
            Event::ConnectionError {
                kind: ErrorKind::PongTimeout,
                message: "m".into(),
                retry_count: 2,
                next_wait_ms: Some(750),
            }
        );
    }

    struct Recorder(Mutex<Vec<Event>>);
    impl EventListener for Recorder {
        fn on_event(&self, event: Event) {
            self.0.lock().unwrap().push(event);
        }
    }

    #[test]
    fn the_bridge_forwards_converted_events() {
        let rec = Arc::new(Recorder(Mutex::new(Vec::new())));
        let bridge = ListenerBridge(rec.clone());
        crate::Listener::on_event(&bridge, &crate::Event::Published { id: 7 });
        assert_eq!(*rec.0.lock().unwrap(), vec![Event::Published { id: 7 }]);
    }
}
