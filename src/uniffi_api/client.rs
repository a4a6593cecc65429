//! `CobraClient`: the client object, one method per [`crate::Client`] call.

use std::sync::Arc;
use std::time::Duration;

use super::config::{ClientConfig, SubscribeOptions};
use super::error::{CobraError, parse_json};
use super::event::{EventListener, ListenerBridge};

/// The connection state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub(super) enum ConnectionState {
    /// Not connected and not trying.
    Disconnected,
    /// Connecting (DNS, TCP, TLS, proxy, upgrade).
    Connecting,
    /// Open; authenticating.
    Authenticating,
    /// Authenticated: publishes and subscriptions flow.
    Connected,
    /// Waiting before the next attempt.
    Reconnecting,
    /// Suspended until `resume`.
    Suspended,
    /// The client's engine has stopped.
    Stopped,
}

impl From<crate::State> for ConnectionState {
    fn from(s: crate::State) -> Self {
        use crate::State as S;
        match s {
            S::Disconnected => ConnectionState::Disconnected,
            S::Connecting => ConnectionState::Connecting,
            S::Authenticating => ConnectionState::Authenticating,
            S::Connected => ConnectionState::Connected,
            S::Reconnecting => ConnectionState::Reconnecting,
            S::Suspended => ConnectionState::Suspended,
            S::Stopped => ConnectionState::Stopped,
        }
    }
}

/// A cobra client. Every method is safe from any thread and returns at once, except `read`,
/// `write` and `delete` (which wait at most `timeout_ms`) and `disconnect` (a few ms). The
/// connection runs on its own engine thread, which also calls the listener.
///
/// Free it with Kotlin's `close()`/`use {}` (the object is `AutoCloseable`), or let Swift/Python
/// release it: that stops the engine thread.
#[derive(uniffi::Object)]
pub(super) struct CobraClient {
    pub(super) inner: crate::Client,
}

impl std::fmt::Debug for CobraClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.inner.fmt(f)
    }
}

#[uniffi::export]
impl CobraClient {
    /// Validates `config` and starts the engine thread (still disconnected: call `connect`).
    #[uniffi::constructor]
    pub(super) fn new(
        config: ClientConfig,
        listener: Option<Arc<dyn EventListener>>,
    ) -> Result<Arc<Self>, CobraError> {
        let listener = listener.map(|l| Arc::new(ListenerBridge(l)) as Arc<dyn crate::Listener>);
        let inner = crate::Client::new(config.try_into()?, listener)?;
        Ok(Arc::new(CobraClient { inner }))
    }

    /// Starts connecting, and keeps reconnecting, in the background.
    pub(super) fn connect(&self) -> Result<(), CobraError> {
        Ok(self.inner.connect()?)
    }

    /// Closes the connection and stops retrying; queued messages stay queued.
    pub(super) fn disconnect(&self) -> Result<(), CobraError> {
        Ok(self.inner.disconnect()?)
    }

    /// The app goes to the background: close and stop retrying until `resume`.
    pub(super) fn suspend(&self) -> Result<(), CobraError> {
        Ok(self.inner.suspend()?)
    }

    /// The app is back in the foreground: reconnect at once.
    pub(super) fn resume(&self) -> Result<(), CobraError> {
        Ok(self.inner.resume()?)
    }

    /// The network changed (Wi-Fi to cellular...): reconnect at once, skipping any backoff.
    pub(super) fn network_changed(&self) -> Result<(), CobraError> {
        Ok(self.inner.network_changed()?)
    }

    /// The current state.
    pub(super) fn state(&self) -> ConnectionState {
        self.inner.state().into()
    }

    /// Queues `json` (JSON text) for `channel`; returns the id reported by
    /// `Event::Published` / `Event::PublishDropped`.
    pub(super) fn publish(&self, channel: String, json: String) -> Result<u64, CobraError> {
        Ok(self.inner.publish_raw(&channel, &json)?)
    }

    /// Queues `json` for every channel of `channels` (one publish).
    pub(super) fn publish_many(
        &self,
        channels: Vec<String>,
        json: String,
    ) -> Result<u64, CobraError> {
        Ok(self.inner.publish_many_raw(&channels, &json)?)
    }

    /// Subscribes (re-subscribed automatically after reconnects); returns the subscription id.
    /// The outcome arrives as `Event::Subscribed` or `Event::SubscriptionError`.
    pub(super) fn subscribe(&self, options: SubscribeOptions) -> Result<String, CobraError> {
        let options = crate::SubscribeOptions::from(options);
        let id = options.id().to_string();
        self.inner.subscribe(options)?;
        Ok(id)
    }

    /// Ends a subscription.
    pub(super) fn unsubscribe(&self, subscription_id: String) -> Result<(), CobraError> {
        Ok(self.inner.unsubscribe(&subscription_id)?)
    }

    /// The value stored on `channel` as JSON text, or `None`.
    pub(super) fn read(
        &self,
        channel: String,
        timeout_ms: u64,
    ) -> Result<Option<String>, CobraError> {
        let value = self
            .inner
            .read(&channel, Duration::from_millis(timeout_ms))?;
        Ok(value.map(|v| v.to_string()))
    }

    /// Stores `json` (JSON text) as the value of `channel`.
    pub(super) fn write(
        &self,
        channel: String,
        json: String,
        timeout_ms: u64,
    ) -> Result<(), CobraError> {
        let value = parse_json("value", &json)?;
        Ok(self
            .inner
            .write(&channel, &value, Duration::from_millis(timeout_ms))?)
    }

    /// Deletes the value of `channel`.
    pub(super) fn delete(&self, channel: String, timeout_ms: u64) -> Result<(), CobraError> {
        Ok(self
            .inner
            .delete(&channel, Duration::from_millis(timeout_ms))?)
    }

    /// Messages in the publish queue (unsent plus awaiting acknowledgement).
    pub(super) fn pending_count(&self) -> u64 {
        self.inner.pending_count() as u64
    }
}
