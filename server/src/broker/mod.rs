//! The broker: apps, connections, the protocol session, and the storage [`Backend`].
//!
//! - [`backend`]: the [`Backend`] trait (the seam for the embedded and Redis backends).
//! - [`memory`]: the embedded in-memory backend.
//! - [`mailbox`]: the bounded per-connection delivery queue and the subscriber handle.
//! - [`catchup`]: subscriptions that fell behind read history at their connection's pace.
//! - [`session`]: the RTM protocol of one connection, without I/O.
//! - [`stats`]: counters, the `/stats` message and the Prometheus text.

pub mod backend;
pub mod catchup;
pub mod mailbox;
pub mod memory;
pub mod redis;
pub mod session;
pub mod stats;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

pub use backend::{Backend, BackendError, ChannelKey, Message, StartAt, SubscribeAck};
pub use mailbox::{Mailbox, Subscriber};
pub use memory::MemoryBackend;
pub use session::{Flow, PduSink, Session};

use crate::config::AppsConfig;
use stats::Stats;

/// The close code asking a client to go away (server shutdown).
pub const CLOSE_GOING_AWAY: u16 = 1001;
/// The close code of a normal close (admin close, bad_schema).
pub const CLOSE_NORMAL: u16 = 1000;

/// Broker limits and tunables, gathered in one place.
#[derive(Debug, Clone)]
pub struct BrokerLimits {
    /// Subscriptions one connection may hold.
    pub max_subscriptions: usize,
    /// Bytes of deliveries a connection may have queued; a subscription that finds it full
    /// catches up from history ([`catchup`]).
    pub outbound_queue_bytes: usize,
    /// A partial batch (`batch_size` > 1) is flushed after this delay.
    pub batch_flush_delay: Duration,
    /// Payload bytes drained from the queue per write round (bounds the write buffer).
    pub drain_bytes: usize,
    /// Publishes per second one connection may make (bursts up to one second's worth);
    /// `None`: unlimited. Over it: `rtm/publish/error` `rate_limited`.
    pub publish_rate_limit: Option<std::num::NonZeroU32>,
}

impl Default for BrokerLimits {
    fn default() -> Self {
        BrokerLimits {
            max_subscriptions: 256,
            outbound_queue_bytes: 4 << 20,
            batch_flush_delay: Duration::from_millis(10),
            drain_bytes: 256 << 10,
            publish_rate_limit: None,
        }
    }
}

/// Everything one broker instance needs to run.
#[derive(Debug, Clone)]
pub struct BrokerSettings {
    /// Node name reported in handshakes and stats (the hostname by default).
    pub node: String,
    /// Log every PDU in and out.
    pub verbose: bool,
    /// Limits.
    pub limits: BrokerLimits,
    /// Publish the `_stats`/`/stats` message every this often (`None`: never).
    pub stats_interval: Option<Duration>,
}

impl Default for BrokerSettings {
    fn default() -> Self {
        BrokerSettings {
            node: hostname::get()
                .map(|h| h.to_string_lossy().into_owned())
                .unwrap_or_else(|_| "cobra".into()),
            verbose: false,
            limits: BrokerLimits::default(),
            stats_interval: Some(Duration::from_secs(1)),
        }
    }
}

/// The appkey of the stats app and the channel the stats are published on.
pub const STATS_APPKEY: &str = "_stats";
/// The app whose admins see and close every connection of the server; admins of other apps
/// only reach their own app's connections.
pub const ADMIN_APPKEY: &str = "_admin";
/// See [`STATS_APPKEY`].
pub const STATS_CHANNEL: &str = "/stats";

/// A registered connection: its appkey and its mailbox.
type ConnectionEntry = (Arc<str>, Arc<Mailbox>);

/// The shared state of one broker: apps, backend, live connections, counters.
pub struct Broker {
    /// Settings.
    pub settings: BrokerSettings,
    /// The apps config.
    pub apps: AppsConfig,
    /// The storage backend.
    pub backend: Arc<dyn Backend>,
    /// Counters.
    pub stats: Stats,
    /// Live connections: id -> (appkey, mailbox).
    connections: Mutex<HashMap<Box<str>, ConnectionEntry>>,
    next_id: AtomicU64,
    id_salt: u64,
    started: Instant,
}

impl std::fmt::Debug for Broker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Broker")
            .field("node", &self.settings.node)
            .finish_non_exhaustive()
    }
}

impl Broker {
    /// A broker over `backend`.
    pub fn new(settings: BrokerSettings, apps: AppsConfig, backend: Arc<dyn Backend>) -> Arc<Self> {
        let mut stats = Stats::default();
        stats.catch_up = backend.catch_up_counters();
        Arc::new(Broker {
            settings,
            apps,
            backend,
            stats,
            connections: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(1),
            id_salt: rand::random(),
            started: Instant::now(),
        })
    }

    /// A broker over the embedded backend sized from the apps config.
    pub fn embedded(settings: BrokerSettings, apps: AppsConfig) -> Arc<Self> {
        let backend = Arc::new(MemoryBackend::new(apps.channel_max_length));
        Broker::new(settings, apps, backend)
    }

    /// Whether `appkey` names a configured app.
    pub fn knows_app(&self, appkey: &str) -> bool {
        self.apps.apps.contains_key(appkey)
    }

    /// Registers a new connection of `appkey` and returns its id and mailbox.
    pub fn register(&self, appkey: &str) -> (Box<str>, Arc<Mailbox>) {
        let n = self.next_id.fetch_add(1, Ordering::Relaxed);
        // Unique per process (counter) and not guessable across restarts (salt).
        let id: Box<str> = format!(
            "{:016x}",
            self.id_salt ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15)
        )
        .into();
        let mailbox = Arc::new(Mailbox::new(self.settings.limits.outbound_queue_bytes));
        self.connections
            .lock()
            .insert(id.clone(), (appkey.into(), Arc::clone(&mailbox)));
        self.stats.connections.fetch_add(1, Ordering::Relaxed);
        (id, mailbox)
    }

    /// Forgets a closed connection.
    pub fn unregister(&self, id: &str) {
        if let Some((_, mailbox)) = self.connections.lock().remove(id) {
            mailbox.disconnect();
            self.stats.connections.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// Ids of the live connections an admin of `appkey` may see: its own app's, or every
    /// connection for the server-wide admin app [`ADMIN_APPKEY`].
    pub fn connection_ids(&self, appkey: &str) -> Vec<Box<str>> {
        let all = appkey == ADMIN_APPKEY;
        self.connections
            .lock()
            .iter()
            .filter(|(_, (app, _))| all || **app == *appkey)
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// Asks connection `id` to close with `code`, if an admin of `appkey` may close it (see
    /// [`Broker::connection_ids`]); false when unknown or out of reach.
    pub fn close_connection(&self, appkey: &str, id: &str, code: u16) -> bool {
        match self.connections.lock().get(id) {
            Some((app, m)) if appkey == ADMIN_APPKEY || **app == *appkey => {
                m.close(code);
                true
            }
            _ => false,
        }
    }

    /// Asks every connection to close with `code` (shutdown).
    pub fn close_all(&self, code: u16) {
        for (_, m) in self.connections.lock().values() {
            m.close(code);
        }
    }

    /// Live connection count.
    pub fn connection_count(&self) -> usize {
        self.connections.lock().len()
    }

    /// Time since the broker started.
    pub fn uptime(&self) -> Duration {
        self.started.elapsed()
    }

    /// Publishes the stats message once (called every second by the server).
    pub async fn publish_stats(&self) {
        let text = self.stats.stats_message(self);
        let key = ChannelKey::new(STATS_APPKEY, STATS_CHANNEL);
        if let Err(e) = self.backend.publish(&key, text.into()).await {
            tracing::warn!(error = %e, "could not publish stats");
        }
    }
}
