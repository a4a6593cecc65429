//! `MetricsPublisher`: [`crate::metrics::MetricsPublisher`] for the bindings.

use std::collections::HashMap;
use std::sync::Arc;

use super::client::CobraClient;
use super::error::{CobraError, parse_json};

/// What `push` did with an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub(super) enum PushOutcome {
    /// Handed to the client under this publish id.
    Published {
        /// The client's publish id.
        publish_id: u64,
    },
    /// Dropped: the publisher is disabled.
    Disabled,
    /// Dropped: the id is blacklisted.
    Blacklisted,
    /// Dropped: too soon after the id's previous event (rate control).
    RateLimited,
}

/// Counters since the publisher was created.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Record)]
pub(super) struct MetricsStats {
    /// Events handed to the client.
    pub published: u64,
    /// Dropped while disabled.
    pub disabled: u64,
    /// Dropped for a blacklisted id.
    pub blacklisted: u64,
    /// Dropped by rate control.
    pub rate_limited: u64,
    /// Refused by the client.
    pub failed: u64,
}

/// The game-facing telemetry API: wraps each event in the telemetry envelope (id, session,
/// device, counters, timestamp) and publishes it to the channel and to a channel named after
/// the event id. It keeps its client alive.
#[derive(Debug, uniffi::Object)]
pub(super) struct MetricsPublisher {
    inner: crate::metrics::MetricsPublisher,
}

#[uniffi::export]
impl MetricsPublisher {
    /// A publisher sending through `client` to `channel`: enabled, random session.
    #[uniffi::constructor]
    pub(super) fn new(client: Arc<CobraClient>, channel: String) -> Arc<Self> {
        Arc::new(MetricsPublisher {
            inner: crate::metrics::MetricsPublisher::new(client.inner.clone(), channel),
        })
    }

    /// Publishes `data_json` (JSON text) as event `id`.
    pub(super) fn push(&self, id: String, data_json: String) -> Result<PushOutcome, CobraError> {
        let data = parse_json("data", &data_json)?;
        use crate::metrics::PushOutcome as P;
        Ok(match self.inner.push(&id, &data)? {
            P::Published { publish_id } => PushOutcome::Published { publish_id },
            P::Disabled => PushOutcome::Disabled,
            P::Blacklisted => PushOutcome::Blacklisted,
            P::RateLimited => PushOutcome::RateLimited,
        })
    }

    /// Enables or disables publishing.
    pub(super) fn set_enabled(&self, enabled: bool) {
        self.inner.enable(enabled);
    }

    /// Whether publishing is enabled.
    pub(super) fn is_enabled(&self) -> bool {
        self.inner.is_enabled()
    }

    /// The channel every event goes to.
    pub(super) fn channel(&self) -> String {
        self.inner.channel().to_string()
    }

    /// Replaces the session id.
    pub(super) fn set_session(&self, session: String) {
        self.inner.set_session(session);
    }

    /// The session id.
    pub(super) fn session(&self) -> String {
        self.inner.session()
    }

    /// Replaces the device attributes with `json`, a JSON object.
    pub(super) fn set_device_attributes(&self, json: String) -> Result<(), CobraError> {
        match parse_json("device attributes", &json)? {
            serde_json::Value::Object(map) => {
                self.inner.set_device_attributes(map);
                Ok(())
            }
            _ => Err(CobraError::InvalidArgument {
                reason: "device attributes must be a JSON object".into(),
            }),
        }
    }

    /// Sets one device attribute to `value_json` (JSON text), keeping the others.
    pub(super) fn set_device_attribute(
        &self,
        name: String,
        value_json: String,
    ) -> Result<(), CobraError> {
        let value = parse_json("attribute value", &value_json)?;
        self.inner.set_device_attribute(name, value);
        Ok(())
    }

    /// The device attributes as a JSON object.
    pub(super) fn device_attributes(&self) -> String {
        serde_json::Value::Object(self.inner.device_attributes()).to_string()
    }

    /// Replaces the ids whose events are dropped.
    pub(super) fn set_blacklist(&self, ids: Vec<String>) {
        self.inner.set_blacklist(ids);
    }

    /// Replaces the rate control: minimum seconds between two events of an id.
    pub(super) fn set_rate_control(&self, seconds_by_id: HashMap<String, f64>) {
        self.inner.set_rate_control(seconds_by_id);
    }

    /// Counters of published and dropped events.
    pub(super) fn stats(&self) -> MetricsStats {
        let s = self.inner.stats();
        MetricsStats {
            published: s.published,
            disabled: s.disabled,
            blacklisted: s.blacklisted,
            rate_limited: s.rate_limited,
            failed: s.failed,
        }
    }
}
