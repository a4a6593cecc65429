//! The metrics publisher: the game-facing telemetry API, as the C++ client's `CobraMetricsPublisher`.
//!
//! [`MetricsPublisher::push`] wraps an event's data in the telemetry envelope
//!
//! ```json
//! {"id": "engine_fps_id", "version": 1, "session": "4dac…", "timestamp": 1536270895637,
//!  "per_id_counter": 12, "device": {"game": "wiso", …}, "data": {"fps": 30}}
//! ```
//!
//! and publishes it, in one publish, to the configured channel and to a channel named after the id.
//! Events are dropped (and counted, see [`MetricsStats`]) while the publisher is disabled, when their id is
//! blacklisted, or when they come sooner than the id's rate control allows.
//!
//! Every method takes `&self` and may be called from any thread. The hot path takes no lock that other ids
//! contend on for long: a read lock on the settings, and one short mutex to bump the id's counter and check
//! its rate. Envelope building ([`Envelope::to_json`]) is a pure function, benchmarked in `benches/metrics.rs`.

mod envelope;
mod gate;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::{Client, Error, PublishId};

pub use envelope::Envelope;
use gate::Gate;

/// Where the publisher sends its envelopes: the [`Client`], or anything else that can publish raw JSON to
/// a list of channels (a test harness, a file writer).
pub trait Publish: Send + Sync {
    /// Publishes `message` (one JSON object, as text) to every channel in `channels`; returns the publish id.
    fn publish_raw(&self, channels: &[&str], message: &str) -> Result<PublishId, Error>;
}

impl Publish for Client {
    fn publish_raw(&self, channels: &[&str], message: &str) -> Result<PublishId, Error> {
        self.publish_many_raw(channels, message)
    }
}

/// What [`MetricsPublisher::push`] did with an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushOutcome {
    /// Handed to the client; the publish id lets the caller match the ack or drop event.
    Published {
        /// The client's publish id.
        publish_id: u64,
    },
    /// Dropped: the publisher is disabled.
    Disabled,
    /// Dropped: the id is blacklisted.
    Blacklisted,
    /// Dropped: the id's previous event was too recent for its rate control.
    RateLimited,
}

/// Counters of what the publisher did, since it was created.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MetricsStats {
    /// Events handed to the client.
    pub published: u64,
    /// Events dropped while disabled.
    pub disabled: u64,
    /// Events dropped for a blacklisted id.
    pub blacklisted: u64,
    /// Events dropped by rate control.
    pub rate_limited: u64,
    /// Events the client refused.
    pub failed: u64,
}

/// Maximum number of distinct ids whose counters are tracked; past it the table is reset (counters start
/// again at 1), so a game that invents ids cannot grow memory without bound.
pub const MAX_TRACKED_IDS: usize = 10_000;

struct Settings {
    session: Arc<str>,
    device: Arc<DeviceJson>,
    blacklist: HashSet<String>,
    rates: HashMap<String, Duration>,
}

/// The device attributes and their JSON text, serialized once per change rather than once per event.
struct DeviceJson {
    attributes: Map<String, Value>,
    raw: Box<RawValue>,
}

impl DeviceJson {
    fn new(attributes: Map<String, Value>) -> Self {
        // A map of JSON values always serializes; the fallback only keeps this infallible.
        let raw = serde_json::value::to_raw_value(&attributes)
            .unwrap_or_else(|_| RawValue::from_string("{}".to_owned()).expect("valid JSON"));
        DeviceJson { attributes, raw }
    }
}

#[derive(Default)]
struct Counters {
    published: AtomicU64,
    disabled: AtomicU64,
    blacklisted: AtomicU64,
    rate_limited: AtomicU64,
    failed: AtomicU64,
}

/// The metrics publisher. Cheap to share: wrap it in an `Arc` to push from several threads.
pub struct MetricsPublisher {
    sink: Box<dyn Publish>,
    channel: String,
    enabled: AtomicBool,
    settings: RwLock<Settings>,
    gate: Gate,
    counters: Counters,
}

impl std::fmt::Debug for MetricsPublisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetricsPublisher")
            .field("channel", &self.channel)
            .field("enabled", &self.is_enabled())
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

/// A fresh session id: 32 random hexadecimal characters, as the C++ client makes them.
pub fn new_session_id() -> String {
    format!("{:032x}", rand::random::<u128>())
}

/// Milliseconds since the Unix epoch (0 if the clock is before it).
fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl MetricsPublisher {
    /// A publisher sending through `client` to `channel` (and to each event's id), enabled, with a random
    /// session, no device attributes, no blacklist and no rate control.
    pub fn new(client: Client, channel: impl Into<String>) -> Self {
        MetricsPublisher::with_sink(client, channel)
    }

    /// A publisher sending through `sink` to `channel` (and to each event's id), enabled, with a random
    /// session, no device attributes, no blacklist and no rate control.
    pub fn with_sink(sink: impl Publish + 'static, channel: impl Into<String>) -> Self {
        MetricsPublisher {
            sink: Box::new(sink),
            channel: channel.into(),
            enabled: AtomicBool::new(true),
            settings: RwLock::new(Settings {
                session: new_session_id().into(),
                device: Arc::new(DeviceJson::new(Map::new())),
                blacklist: HashSet::new(),
                rates: HashMap::new(),
            }),
            gate: Gate::new(MAX_TRACKED_IDS),
            counters: Counters::default(),
        }
    }

    /// The channel every event goes to (besides its id).
    pub fn channel(&self) -> &str {
        &self.channel
    }

    /// Builds the envelope of `data` under `id` and publishes it to the channel and to `id`.
    pub fn push(&self, id: &str, data: &Value) -> Result<PushOutcome, Error> {
        self.push_data(id, data)
    }

    /// [`push`](MetricsPublisher::push) with the data as JSON text (validated here, embedded as is).
    pub fn push_raw(&self, id: &str, data_json: &str) -> Result<PushOutcome, Error> {
        let data: &RawValue = serde_json::from_str(data_json)
            .map_err(|e| Error::InvalidArgument(format!("metrics data is not JSON: {e}")))?;
        self.push_data(id, data)
    }

    fn push_data<D: serde::Serialize + ?Sized>(
        &self,
        id: &str,
        data: &D,
    ) -> Result<PushOutcome, Error> {
        if !self.enabled.load(Ordering::Relaxed) {
            self.counters.disabled.fetch_add(1, Ordering::Relaxed);
            return Ok(PushOutcome::Disabled);
        }
        let (session, device, min_interval) = {
            let s = self.settings();
            if s.blacklist.contains(id) {
                drop(s);
                self.counters.blacklisted.fetch_add(1, Ordering::Relaxed);
                return Ok(PushOutcome::Blacklisted);
            }
            (
                s.session.clone(),
                s.device.clone(),
                s.rates.get(id).copied(),
            )
        };
        let Some(per_id_counter) = self.gate.admit(id, Instant::now(), min_interval) else {
            self.counters.rate_limited.fetch_add(1, Ordering::Relaxed);
            return Ok(PushOutcome::RateLimited);
        };
        let envelope = Envelope {
            id,
            version: 1,
            session: &session,
            timestamp: now_ms(),
            per_id_counter,
            device: &device.raw,
            data,
        };
        let message = envelope.to_json();
        let channels: &[&str] = if id == self.channel {
            &[self.channel.as_str()]
        } else {
            &[self.channel.as_str(), id]
        };
        match self.sink.publish_raw(channels, &message) {
            Ok(publish_id) => {
                self.counters.published.fetch_add(1, Ordering::Relaxed);
                Ok(PushOutcome::Published { publish_id })
            }
            Err(e) => {
                self.counters.failed.fetch_add(1, Ordering::Relaxed);
                Err(e)
            }
        }
    }

    /// Enables or disables publishing (disabled events are dropped and counted).
    pub fn enable(&self, enabled: bool) {
        self.enabled.store(enabled, Ordering::Relaxed);
    }

    /// Whether publishing is enabled.
    pub fn is_enabled(&self) -> bool {
        self.enabled.load(Ordering::Relaxed)
    }

    /// Replaces the session id sent with every event.
    pub fn set_session(&self, session: impl Into<String>) {
        self.settings_mut().session = session.into().into();
    }

    /// The current session id.
    pub fn session(&self) -> String {
        self.settings().session.to_string()
    }

    /// Replaces the device attributes sent with every event (`device` in the envelope).
    pub fn set_device_attributes(&self, attributes: Map<String, Value>) {
        self.settings_mut().device = Arc::new(DeviceJson::new(attributes));
    }

    /// Sets one device attribute, keeping the others (the C++ client's `setGenericAttributes`).
    pub fn set_device_attribute(&self, name: impl Into<String>, value: Value) {
        let mut s = self.settings_mut();
        let mut attributes = s.device.attributes.clone();
        attributes.insert(name.into(), value);
        s.device = Arc::new(DeviceJson::new(attributes));
    }

    /// The current device attributes.
    pub fn device_attributes(&self) -> Map<String, Value> {
        self.settings().device.attributes.clone()
    }

    /// Replaces the set of ids whose events are dropped.
    pub fn set_blacklist<I: IntoIterator<Item = S>, S: Into<String>>(&self, ids: I) {
        self.settings_mut().blacklist = ids.into_iter().map(Into::into).collect();
    }

    /// Replaces the rate control: for each id, the minimum number of seconds between two published events
    /// (events sooner than that are dropped and counted). Non-positive or non-finite values remove the limit.
    pub fn set_rate_control<I: IntoIterator<Item = (S, f64)>, S: Into<String>>(&self, rates: I) {
        self.settings_mut().rates = rates
            .into_iter()
            .filter_map(|(id, secs)| Some((id.into(), Duration::try_from_secs_f64(secs).ok()?)))
            .filter(|(_, d)| !d.is_zero())
            .collect();
    }

    /// Counters of published and dropped events.
    pub fn stats(&self) -> MetricsStats {
        let c = &self.counters;
        MetricsStats {
            published: c.published.load(Ordering::Relaxed),
            disabled: c.disabled.load(Ordering::Relaxed),
            blacklisted: c.blacklisted.load(Ordering::Relaxed),
            rate_limited: c.rate_limited.load(Ordering::Relaxed),
            failed: c.failed.load(Ordering::Relaxed),
        }
    }

    fn settings(&self) -> std::sync::RwLockReadGuard<'_, Settings> {
        // Settings are replaced whole under the lock, so a panic elsewhere cannot leave them half-written.
        self.settings.read().unwrap_or_else(|e| e.into_inner())
    }

    fn settings_mut(&self) -> std::sync::RwLockWriteGuard<'_, Settings> {
        self.settings.write().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests;
