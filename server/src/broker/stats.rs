//! Counters: the once-a-second `/stats` message (shape of the reference, read by
//! `cobra monitor`) and the Prometheus text of `GET /metrics`.
//!
//! Hot-path counters are atomics in a per-(app, role) [`RoleCounters`] that a session resolves
//! once at authentication; per-channel publish counts sit behind one mutex and are capped at
//! [`MAX_CHANNELS_TRACKED`] entries (the rest is summed under `_other`).

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use parking_lot::{Mutex, RwLock};
use serde_json::{Map, Value, json};

use super::Broker;
use super::backend::NodeHealth;
use super::catchup::CatchUpCounters;

/// Per-channel entries kept in the stats before channels are summed under `_other`.
pub const MAX_CHANNELS_TRACKED: usize = 10_000;

/// Counters of one role of one app.
#[derive(Debug, Default)]
pub struct RoleCounters {
    /// Messages published.
    pub published_count: AtomicU64,
    /// Bytes published.
    pub published_bytes: AtomicU64,
    /// Messages delivered to subscribers.
    pub subscribed_count: AtomicU64,
    /// Bytes delivered.
    pub subscribed_bytes: AtomicU64,
    /// Live subscriptions (gauge).
    pub subscriptions: AtomicI64,
    /// Reads.
    pub reads_count: AtomicU64,
    /// Bytes read.
    pub reads_bytes: AtomicU64,
    /// Writes.
    pub writes_count: AtomicU64,
    /// Bytes written.
    pub writes_bytes: AtomicU64,
}

const METRICS: [&str; 9] = [
    "published_count",
    "published_bytes",
    "subscribed_count",
    "subscribed_bytes",
    "subscriptions",
    "reads_count",
    "reads_bytes",
    "writes_count",
    "writes_bytes",
];

impl RoleCounters {
    /// Counts `count` messages of `bytes` in all delivered to subscribers.
    #[inline]
    pub fn delivered(&self, count: u64, bytes: u64) {
        self.subscribed_count.fetch_add(count, Ordering::Relaxed);
        self.subscribed_bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    fn snapshot(&self) -> [i64; 9] {
        let l = |a: &AtomicU64| a.load(Ordering::Relaxed) as i64;
        [
            l(&self.published_count),
            l(&self.published_bytes),
            l(&self.subscribed_count),
            l(&self.subscribed_bytes),
            self.subscriptions.load(Ordering::Relaxed),
            l(&self.reads_count),
            l(&self.reads_bytes),
            l(&self.writes_count),
            l(&self.writes_bytes),
        ]
    }
}

type RoleKey = (Box<str>, Box<str>);

/// Counter values at the previous stats message, for the `_per_second` figures.
type Previous = (HashMap<RoleKey, [i64; 9]>, HashMap<Box<str>, [u64; 2]>);

/// All the broker's counters.
#[derive(Debug, Default)]
pub struct Stats {
    /// Open WebSocket connections (gauge).
    pub connections: AtomicU64,
    /// Messages a full outbound queue made a subscriber lose.
    pub queue_drops: AtomicU64,
    /// Error PDUs sent.
    pub errors: AtomicU64,
    /// zlib compressors held by connections (gauge). Zero in normal operation: the server
    /// compresses with one compressor per worker thread (`server_no_context_takeover`).
    pub connection_deflaters: AtomicI64,
    /// zlib decompressors held by connections (gauge): one per connection whose client
    /// compresses with context takeover, none for idle `client_no_context_takeover` ones.
    pub connection_inflaters: AtomicI64,
    /// Slow subscribers: catch-up from history, laggards cut off (shared with the backend).
    pub catch_up: Arc<CatchUpCounters>,
    roles: RwLock<HashMap<RoleKey, Arc<RoleCounters>>>,
    channels: Mutex<HashMap<Box<str>, [u64; 2]>>,
    /// Live subscriptions per channel (app-local name); an entry goes when its count is 0, so
    /// the map holds at most one entry per live subscription.
    channel_subs: Mutex<HashMap<Box<str>, i64>>,
    previous: Mutex<Previous>,
}

impl Stats {
    /// The counters of `role` in `appkey`, created on first use.
    pub fn role(&self, appkey: &str, role: &str) -> Arc<RoleCounters> {
        let key: RoleKey = (appkey.into(), role.into());
        if let Some(c) = self.roles.read().get(&key) {
            return Arc::clone(c);
        }
        Arc::clone(self.roles.write().entry(key).or_default())
    }

    /// Counts one message published on `channel` (app-local name).
    pub fn channel_published(&self, channel: &str, bytes: usize) {
        let mut map = self.channels.lock();
        // One lookup for a channel already tracked (every publish but its first).
        let entry = match map.get_mut(channel) {
            Some(e) => e,
            None => {
                let key = if map.len() < MAX_CHANNELS_TRACKED {
                    channel
                } else {
                    "_other"
                };
                map.entry(key.into()).or_default()
            }
        };
        entry[0] += 1;
        entry[1] += bytes as u64;
    }

    /// Counts a subscription to `channel` (app-local name) made (`delta` 1) or ended (-1).
    pub fn channel_subscribers(&self, channel: &str, delta: i64) {
        let mut map = self.channel_subs.lock();
        match map.get_mut(channel) {
            Some(n) => {
                *n += delta;
                if *n <= 0 {
                    map.remove(channel);
                }
            }
            None if delta > 0 => {
                map.insert(channel.into(), delta);
            }
            None => {}
        }
    }

    /// Live subscriptions to `channel` (app-local name; every app's add up).
    pub fn channel_subscriptions(&self, channel: &str) -> i64 {
        self.channel_subs.lock().get(channel).copied().unwrap_or(0)
    }

    /// The stats message in the reference shape: `{"node", "data": {"cobra": {metric: {role: v}},
    /// "channel_data": {metric: {channel: v}}, "system": {...}}}`.
    pub fn stats_message(&self, broker: &Broker) -> String {
        let roles: Vec<(RoleKey, [i64; 9])> = self
            .roles
            .read()
            .iter()
            .map(|(k, c)| (k.clone(), c.snapshot()))
            .collect();
        let channels: Vec<(Box<str>, [u64; 2])> = self
            .channels
            .lock()
            .iter()
            .map(|(k, v)| (k.clone(), *v))
            .collect();
        let mut previous = self.previous.lock();

        let mut cobra: Map<String, Value> = Map::new();
        for (i, metric) in METRICS.iter().enumerate() {
            // Keyed by role, as the reference: roles of different apps with one name add up.
            let mut total: HashMap<String, i64> = HashMap::new();
            let mut per_second: HashMap<String, i64> = HashMap::new();
            for (key, snap) in &roles {
                let before = previous.0.get(key).map_or(0, |p| p[i]);
                *total.entry(key.1.to_string()).or_default() += snap[i];
                *per_second.entry(key.1.to_string()).or_default() += snap[i] - before;
            }
            cobra.insert((*metric).into(), json!(total));
            if *metric != "subscriptions" {
                cobra.insert(format!("{metric}_per_second"), json!(per_second));
            }
        }
        let mut channel_data: Map<String, Value> = Map::new();
        for (i, metric) in ["published_count", "published_bytes"].iter().enumerate() {
            let mut total = Map::new();
            let mut per_second = Map::new();
            for (name, v) in &channels {
                let before = previous.1.get(name).map_or(0, |p| p[i]);
                total.insert(name.to_string(), json!(v[i]));
                per_second.insert(name.to_string(), json!(v[i] - before));
            }
            channel_data.insert((*metric).into(), Value::Object(total));
            channel_data.insert(format!("{metric}_per_second"), Value::Object(per_second));
        }
        // Not in the reference: live subscriptions per channel (the dashboard's channel list).
        let subscriptions: Map<String, Value> = self
            .channel_subs
            .lock()
            .iter()
            .map(|(k, v)| (k.to_string(), json!(v)))
            .collect();
        channel_data.insert("subscriptions".into(), Value::Object(subscriptions));
        previous.0 = roles.into_iter().collect();
        previous.1 = channels.into_iter().collect();
        drop(previous);

        let uptime = broker.uptime().as_secs();
        let backend: Vec<Value> = broker
            .backend
            .health()
            .into_iter()
            .map(|n| json!({"node": n.node, "connected": n.connected, "queue_depth": n.queue_depth, "errors": n.errors, "published": n.published, "reconnects": n.reconnects}))
            .collect();
        let message = json!({
            "node": broker.settings.node,
            "data": {
                "cobra": cobra,
                "channel_data": channel_data,
                "system": {
                    "connections": broker.connection_count(),
                    "mem_bytes": rss_bytes(),
                    "uptime": format!("{}:{:02}:{:02}", uptime / 3600, uptime / 60 % 60, uptime % 60),
                    "uptime_seconds": uptime,
                    "queue_drops": self.queue_drops.load(Ordering::Relaxed),
                },
                // Not read by `cobra monitor` (it only reads cobra, channel_data, system).
                "backend": backend,
                "slow_subscribers": {
                    "catching_up": self.catch_up.active.load(Ordering::Relaxed),
                    "catch_ups": self.catch_up.started.load(Ordering::Relaxed),
                    "served_from_history": self.catch_up.served.load(Ordering::Relaxed),
                    "history_expired": self.catch_up.expired.load(Ordering::Relaxed),
                    "missed": self.catch_up.missed.load(Ordering::Relaxed),
                    "write_timeouts": self.catch_up.cut_off.load(Ordering::Relaxed),
                },
            },
        });
        message.to_string()
    }

    /// The Prometheus text exposition of `GET /metrics`.
    pub fn prometheus(&self, broker: &Broker) -> String {
        let mut out = String::with_capacity(2048);
        let _ = writeln!(
            out,
            "# TYPE cobra_connections gauge\ncobra_connections {}",
            broker.connection_count()
        );
        let mut per_app: HashMap<&str, [i64; 9]> = HashMap::new();
        let roles = self.roles.read();
        for ((app, _), c) in roles.iter() {
            let s = c.snapshot();
            let e = per_app.entry(app).or_default();
            for i in 0..9 {
                e[i] += s[i];
            }
        }
        let series = [
            ("cobra_subscriptions", "gauge", 4),
            ("cobra_published_messages_total", "counter", 0),
            ("cobra_published_bytes_total", "counter", 1),
            ("cobra_delivered_messages_total", "counter", 2),
            ("cobra_delivered_bytes_total", "counter", 3),
            ("cobra_reads_total", "counter", 5),
            ("cobra_writes_total", "counter", 7),
        ];
        for (name, kind, i) in series {
            let _ = writeln!(out, "# TYPE {name} {kind}");
            let mut apps: Vec<_> = per_app.iter().collect();
            apps.sort();
            for (app, v) in apps {
                let _ = writeln!(out, "{name}{{app=\"{}\"}} {}", escape_label(app), v[i]);
            }
        }
        let _ = writeln!(
            out,
            "# TYPE cobra_queue_drops_total counter\ncobra_queue_drops_total {}",
            self.queue_drops.load(Ordering::Relaxed)
        );
        let cu = &self.catch_up;
        let _ = writeln!(
            out,
            "# TYPE cobra_catchup_subscriptions gauge\ncobra_catchup_subscriptions {}\n# TYPE cobra_catchup_started_total counter\ncobra_catchup_started_total {}\n# TYPE cobra_catchup_messages_total counter\ncobra_catchup_messages_total {}\n# TYPE cobra_catchup_missed_messages_total counter\ncobra_catchup_missed_messages_total {}\n# TYPE cobra_laggards_cut_off_total counter\ncobra_laggards_cut_off_total{{reason=\"history_expired\"}} {}\ncobra_laggards_cut_off_total{{reason=\"write_timeout\"}} {}",
            cu.active.load(Ordering::Relaxed),
            cu.started.load(Ordering::Relaxed),
            cu.served.load(Ordering::Relaxed),
            cu.missed.load(Ordering::Relaxed),
            cu.expired.load(Ordering::Relaxed),
            cu.cut_off.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# TYPE cobra_errors_total counter\ncobra_errors_total {}",
            self.errors.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# TYPE cobra_connection_zlib_streams gauge\ncobra_connection_zlib_streams{{kind=\"deflate\"}} {}\ncobra_connection_zlib_streams{{kind=\"inflate\"}} {}",
            self.connection_deflaters.load(Ordering::Relaxed),
            self.connection_inflaters.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# TYPE cobra_resident_memory_bytes gauge\ncobra_resident_memory_bytes {}",
            rss_bytes()
        );
        let health = broker.backend.health();
        for (metric, kind, value) in NODE_METRICS {
            let _ = writeln!(out, "# TYPE {metric} {kind}");
            for node in &health {
                let _ = writeln!(
                    out,
                    "{metric}{{node=\"{}\"}} {}",
                    escape_label(&node.node),
                    value(node)
                );
            }
        }
        out
    }
}

/// A per-backend-node Prometheus metric: name, type, value.
type NodeMetric = (&'static str, &'static str, fn(&NodeHealth) -> u64);

/// The per-node health in `/metrics`, one series per node (labelled `node`).
const NODE_METRICS: [NodeMetric; 5] = [
    ("cobra_backend_node_up", "gauge", |n| u64::from(n.connected)),
    ("cobra_backend_node_queue_depth", "gauge", |n| n.queue_depth),
    ("cobra_backend_node_errors_total", "counter", |n| n.errors),
    ("cobra_backend_node_published_total", "counter", |n| {
        n.published
    }),
    ("cobra_backend_node_reconnects_total", "counter", |n| {
        n.reconnects
    }),
];

fn escape_label(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Resident set size from `/proc/self/statm` (0 where unavailable).
pub fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| {
            s.split_whitespace()
                .nth(1)
                .and_then(|v| v.parse::<u64>().ok())
        })
        .map_or(0, |pages| pages * 4096)
}
