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

/// Test hooks: they change nothing unless a test sets them (process-wide).
#[doc(hidden)]
pub mod test_hooks {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::Duration;

    static NOTICE_DELAY_NANOS: AtomicU64 = AtomicU64::new(0);

    /// Makes every session wait `delay` between taking a batch from its mailbox and taking its
    /// subscriptions' notices: widens the window in which a backend reports a notice meanwhile
    /// (issue 23: such a gap was written ahead of the batch it follows). Zero: no wait.
    pub fn delay_notices(delay: Duration) {
        let nanos = u64::try_from(delay.as_nanos()).unwrap_or(u64::MAX);
        NOTICE_DELAY_NANOS.store(nanos, Ordering::Relaxed);
    }

    /// Waits as [`delay_notices`] said (a relaxed load when unset: nothing in production).
    pub(crate) fn notice_delay() {
        let nanos = NOTICE_DELAY_NANOS.load(Ordering::Relaxed);
        if nanos > 0 {
            std::thread::sleep(Duration::from_nanos(nanos));
        }
    }
}

use std::collections::HashMap;
use std::sync::Arc;

use arc_swap::ArcSwap;
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
/// The close code of a draining server (reconnect elsewhere now): see [`cobra_wire::ws::CLOSE_DRAIN`].
pub const CLOSE_DRAIN: u16 = cobra_wire::ws::CLOSE_DRAIN;
/// The close code of a connection whose role was revoked (or its secret changed) by a reload.
pub const CLOSE_REVOKED: u16 = 1008;

/// Broker limits and tunables, gathered in one place.
#[derive(Debug, Clone)]
pub struct BrokerLimits {
    /// Subscriptions one connection may hold.
    pub max_subscriptions: usize,
    /// Groups one aggregate subscription keeps over its open windows (more fold into
    /// `"__other__"`).
    pub max_groups: usize,
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
            max_groups: crate::config::options::DEFAULT_MAX_GROUPS,
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
    /// How permessage-deflate compresses what connections are sent.
    pub deflate_mode: crate::config::options::DeflateMode,
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
            deflate_mode: crate::config::options::DeflateMode::Shared,
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

/// A registered connection: its appkey, its role once authenticated, and its mailbox.
struct ConnectionEntry {
    appkey: Arc<str>,
    role: Option<Box<str>>,
    mailbox: Arc<Mailbox>,
}

/// What a reload of the apps config changed ([`Broker::reload_apps`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReloadReport {
    /// `app/role` of the roles added.
    pub added: Vec<String>,
    /// `app/role` of the roles whose permissions changed (their connections reconnect).
    pub changed: Vec<String>,
    /// `app/role` of the roles removed or whose secret changed (their connections are closed).
    pub revoked: Vec<String>,
    /// Connections closed.
    pub closed: usize,
}

/// The shared state of one broker: apps, backend, live connections, counters.
pub struct Broker {
    /// Settings.
    pub settings: BrokerSettings,
    /// The apps config, swapped whole by [`Broker::reload_apps`].
    apps: ArcSwap<AppsConfig>,
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
            apps: ArcSwap::from_pointee(apps),
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

    /// The apps config in force (a cheap snapshot; a reload does not change it under you).
    pub fn apps(&self) -> arc_swap::Guard<Arc<AppsConfig>> {
        self.apps.load()
    }

    /// Whether `appkey` names a configured app.
    pub fn knows_app(&self, appkey: &str) -> bool {
        self.apps.load().apps.contains_key(appkey)
    }

    /// Puts `new` in force. Connections of a removed app or role, or of a role whose secret
    /// changed, are closed with [`CLOSE_REVOKED`]; those of a role whose permissions changed
    /// with [`CLOSE_DRAIN`] (they reconnect at once and get the new permissions). The
    /// history length (`channel_max_length`) is the backend's and needs a restart.
    pub fn reload_apps(&self, mut new: AppsConfig) -> ReloadReport {
        let old = self.apps.load_full();
        new.channel_max_length = old.channel_max_length;
        let mut report = ReloadReport::default();
        let role_of = |c: &AppsConfig, app: &str, role: &str| {
            c.apps.get(app).and_then(|a| a.roles.get(role)).cloned()
        };
        for (appkey, app) in &old.apps {
            for (name, role) in &app.roles {
                match role_of(&new, appkey, name) {
                    None => report.revoked.push(format!("{appkey}/{name}")),
                    Some(r) if r.secret != role.secret => {
                        report.revoked.push(format!("{appkey}/{name}"))
                    }
                    Some(r) if r.permissions != role.permissions => {
                        report.changed.push(format!("{appkey}/{name}"))
                    }
                    Some(_) => {}
                }
            }
        }
        for (appkey, app) in &new.apps {
            for name in app.roles.keys() {
                if role_of(&old, appkey, name).is_none() {
                    report.added.push(format!("{appkey}/{name}"));
                }
            }
        }
        for list in [&mut report.added, &mut report.changed, &mut report.revoked] {
            list.sort();
        }
        self.apps.store(Arc::new(new));
        let new = self.apps.load();
        for entry in self.connections.lock().values() {
            let code = match &entry.role {
                _ if !new.apps.contains_key(&*entry.appkey) => Some(CLOSE_REVOKED),
                None => None,
                Some(role) => match (
                    role_of(&old, &entry.appkey, role),
                    role_of(&new, &entry.appkey, role),
                ) {
                    (Some(o), Some(n)) if o == n => None,
                    (Some(o), Some(n)) if o.secret == n.secret => Some(CLOSE_DRAIN),
                    _ => Some(CLOSE_REVOKED),
                },
            };
            if let Some(code) = code {
                entry.mailbox.close(code);
                report.closed += 1;
            }
        }
        report
    }

    /// Records the role connection `id` authenticated as (a reload closes the connections of
    /// revoked roles).
    pub fn set_role(&self, id: &str, role: &str) {
        if let Some(entry) = self.connections.lock().get_mut(id) {
            entry.role = Some(role.into());
        }
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
        self.connections.lock().insert(
            id.clone(),
            ConnectionEntry {
                appkey: appkey.into(),
                role: None,
                mailbox: Arc::clone(&mailbox),
            },
        );
        self.stats.connections.fetch_add(1, Ordering::Relaxed);
        (id, mailbox)
    }

    /// Forgets a closed connection.
    pub fn unregister(&self, id: &str) {
        if let Some(entry) = self.connections.lock().remove(id) {
            entry.mailbox.disconnect();
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
            .filter(|(_, entry)| all || *entry.appkey == *appkey)
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// Asks connection `id` to close with `code`, if an admin of `appkey` may close it (see
    /// [`Broker::connection_ids`]); false when unknown or out of reach.
    pub fn close_connection(&self, appkey: &str, id: &str, code: u16) -> bool {
        match self.connections.lock().get(id) {
            Some(entry) if appkey == ADMIN_APPKEY || *entry.appkey == *appkey => {
                entry.mailbox.close(code);
                true
            }
            _ => false,
        }
    }

    /// Asks every connection to close with `code` (shutdown).
    pub fn close_all(&self, code: u16) {
        for entry in self.connections.lock().values() {
            entry.mailbox.close(code);
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
