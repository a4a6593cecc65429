//! `ClientConfig` and `SubscribeOptions`: records converted to [`crate::Config`] and
//! [`crate::SubscribeOptions`].

use std::collections::HashMap;
use std::time::Duration;

use super::error::CobraError;

/// What to do when a publish would exceed the queue limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum OverflowPolicy {
    /// Drop the oldest queued message (reported as `Event::PublishDropped`).
    DropOldest,
    /// Refuse the new one: `publish` fails with `CobraError::QueueFull`.
    RefuseNew,
}

/// Delivery guarantee across reconnects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum Delivery {
    /// Re-send what was not acknowledged (duplicates possible, never lost).
    AtLeastOnce,
    /// Never send twice (losses reported as `Event::PublishDropped`).
    AtMostOnce,
}

/// Everything a client needs. Only the four first fields are required; every `None` means the
/// SDK default (see the Rust `cobra::Config` documentation for each value).
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct ClientConfig {
    /// `ws://host[:port][/path]` or `wss://...`.
    pub endpoint: String,
    /// The application key.
    pub appkey: String,
    /// The role name.
    pub role: String,
    /// The role's secret.
    pub secret: String,
    /// permessage-deflate on (default) or off.
    #[uniffi(default)]
    pub deflate: Option<bool>,
    /// Heartbeat interval; 0 turns heartbeats off (default 30 s).
    #[uniffi(default)]
    pub ping_interval_ms: Option<u64>,
    /// Wait for a heartbeat's pong before reconnecting (default 10 s).
    #[uniffi(default)]
    pub pong_timeout_ms: Option<u64>,
    /// First reconnect delay cap (default 250 ms).
    #[uniffi(default)]
    pub backoff_min_ms: Option<u64>,
    /// Largest reconnect delay (default 30 s).
    #[uniffi(default)]
    pub backoff_max_ms: Option<u64>,
    /// Most messages in the publish queue (default 10,000).
    #[uniffi(default)]
    pub max_queued_messages: Option<u64>,
    /// Most bytes in the publish queue (default 128 MiB).
    #[uniffi(default)]
    pub max_queued_bytes: Option<u64>,
    /// Policy when the queue is full (default `DropOldest`).
    #[uniffi(default)]
    pub overflow_policy: Option<OverflowPolicy>,
    /// Delivery guarantee (default `AtLeastOnce`).
    #[uniffi(default)]
    pub delivery: Option<Delivery>,
    /// Directory of the on-disk spool (pending messages survive an app restart); off by default.
    #[uniffi(default)]
    pub spool_dir: Option<String>,
    /// Most bytes the spool may use (default 64 MiB).
    #[uniffi(default)]
    pub spool_max_bytes: Option<u64>,
    /// Largest message sent or received (default 64 MiB).
    #[uniffi(default)]
    pub max_message_size: Option<u64>,
    /// HTTP CONNECT proxy, `http://[user:pass@]host:port`.
    #[uniffi(default)]
    pub proxy: Option<String>,
    /// Extra headers of the WebSocket upgrade request.
    #[uniffi(default)]
    pub extra_headers: Option<HashMap<String, String>>,
    /// The upgrade request's `User-Agent`.
    #[uniffi(default)]
    pub user_agent: Option<String>,
    /// Trust the bundled Mozilla roots for `wss://` (default true).
    #[uniffi(default)]
    pub webpki_roots: Option<bool>,
    /// Extra trusted CA certificates (PEM text).
    #[uniffi(default)]
    pub extra_ca_pem: Option<String>,
    /// SPKI pins of the server's certificate (base64 SHA-256, HPKP format).
    #[uniffi(default)]
    pub spki_pins: Option<Vec<String>>,
    /// DNS + TCP connect limit (default 10 s).
    #[uniffi(default)]
    pub connect_timeout_ms: Option<u64>,
    /// Proxy + TLS + upgrade + authentication limit (default 10 s).
    #[uniffi(default)]
    pub handshake_timeout_ms: Option<u64>,
    /// Limit for requests on the wire such as subscribe (default 10 s).
    #[uniffi(default)]
    pub request_timeout_ms: Option<u64>,
}

/// What to subscribe to.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct SubscribeOptions {
    /// The channel (with a filter: the channel of its FROM clause).
    pub channel: String,
    /// The subscription id (default: the channel).
    #[uniffi(default)]
    pub subscription_id: Option<String>,
    /// A StreamSQL filter, e.g. ``select * from `c` where data.fps < 30``.
    #[uniffi(default)]
    pub filter: Option<String>,
    /// Replay from this position (`0-0`: from the oldest kept message).
    #[uniffi(default)]
    pub position: Option<String>,
    /// Deliver messages in batches of up to this many.
    #[uniffi(default)]
    pub batch_size: Option<u32>,
    /// Skip ahead (with an info event) instead of failing when the position is too old.
    #[uniffi(default = false)]
    pub fast_forward: bool,
}

/// Milliseconds of `d`, saturating.
pub(super) fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// `value` replaces `*slot` when given: an option the bindings leave out keeps the SDK's default.
fn set<T>(slot: &mut T, value: Option<T>) {
    if let Some(v) = value {
        *slot = v;
    }
}

/// `value` (when given) as a `usize`, refused when it does not fit.
fn size(field: &'static str, value: Option<u64>) -> Result<Option<usize>, CobraError> {
    value
        .map(|v| {
            usize::try_from(v).map_err(|_| CobraError::InvalidConfig {
                field: field.into(),
                reason: format!("{v} does not fit this platform's usize"),
            })
        })
        .transpose()
}

impl TryFrom<ClientConfig> for crate::Config {
    type Error = CobraError;

    fn try_from(c: ClientConfig) -> Result<Self, CobraError> {
        let ms = Duration::from_millis;
        let mut cfg = crate::Config::new(c.endpoint, c.appkey, c.role, c.secret);
        if c.deflate == Some(false) {
            cfg.deflate = None;
        }
        set(&mut cfg.ping_interval, c.ping_interval_ms.map(ms));
        set(&mut cfg.pong_timeout, c.pong_timeout_ms.map(ms));
        set(&mut cfg.backoff_min, c.backoff_min_ms.map(ms));
        set(&mut cfg.backoff_max, c.backoff_max_ms.map(ms));
        set(
            &mut cfg.max_queued_messages,
            size("max_queued_messages", c.max_queued_messages)?,
        );
        set(
            &mut cfg.max_queued_bytes,
            size("max_queued_bytes", c.max_queued_bytes)?,
        );
        if let Some(v) = c.overflow_policy {
            cfg.overflow_policy = match v {
                OverflowPolicy::DropOldest => crate::OverflowPolicy::DropOldest,
                OverflowPolicy::RefuseNew => crate::OverflowPolicy::RefuseNew,
            };
        }
        if let Some(v) = c.delivery {
            cfg.delivery = match v {
                Delivery::AtLeastOnce => crate::Delivery::AtLeastOnce,
                Delivery::AtMostOnce => crate::Delivery::AtMostOnce,
            };
        }
        cfg.spool_dir = c.spool_dir.map(Into::into);
        set(&mut cfg.spool_max_bytes, c.spool_max_bytes);
        set(
            &mut cfg.max_message_size,
            size("max_message_size", c.max_message_size)?,
        );
        cfg.proxy = c.proxy;
        if let Some(headers) = c.extra_headers {
            let mut headers: Vec<_> = headers.into_iter().collect();
            // A map has no order; sort so the request is the same on every run.
            headers.sort();
            cfg.extra_headers = headers;
        }
        set(&mut cfg.user_agent, c.user_agent);
        set(&mut cfg.tls.webpki_roots, c.webpki_roots);
        cfg.tls.extra_ca_pem = c.extra_ca_pem;
        set(&mut cfg.tls.spki_pins, c.spki_pins);
        set(&mut cfg.connect_timeout, c.connect_timeout_ms.map(ms));
        set(&mut cfg.handshake_timeout, c.handshake_timeout_ms.map(ms));
        set(&mut cfg.request_timeout, c.request_timeout_ms.map(ms));
        Ok(cfg)
    }
}

impl From<SubscribeOptions> for crate::SubscribeOptions {
    fn from(o: SubscribeOptions) -> Self {
        let mut out = crate::SubscribeOptions::new(o.channel).fast_forward(o.fast_forward);
        out.subscription_id = o.subscription_id;
        out.filter = o.filter;
        out.position = o.position;
        out.batch_size = o.batch_size;
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn minimal() -> ClientConfig {
        ClientConfig {
            endpoint: "ws://127.0.0.1:8765".into(),
            appkey: "_pubsub".into(),
            role: "pubsub".into(),
            secret: "s".into(),
            deflate: None,
            ping_interval_ms: None,
            pong_timeout_ms: None,
            backoff_min_ms: None,
            backoff_max_ms: None,
            max_queued_messages: None,
            max_queued_bytes: None,
            overflow_policy: None,
            delivery: None,
            spool_dir: None,
            spool_max_bytes: None,
            max_message_size: None,
            proxy: None,
            extra_headers: None,
            user_agent: None,
            webpki_roots: None,
            extra_ca_pem: None,
            spki_pins: None,
            connect_timeout_ms: None,
            handshake_timeout_ms: None,
            request_timeout_ms: None,
        }
    }

    #[test]
    fn none_means_the_sdk_default() {
        let got = crate::Config::try_from(minimal()).unwrap();
        let want = crate::Config::new("ws://127.0.0.1:8765", "_pubsub", "pubsub", "s");
        assert_eq!(format!("{got:?}"), format!("{want:?}"));
    }

    #[test]
    fn every_field_is_carried() {
        let c = ClientConfig {
            deflate: Some(false),
            ping_interval_ms: Some(1),
            pong_timeout_ms: Some(2),
            backoff_min_ms: Some(3),
            backoff_max_ms: Some(4),
            max_queued_messages: Some(5),
            max_queued_bytes: Some(6),
            overflow_policy: Some(OverflowPolicy::RefuseNew),
            delivery: Some(Delivery::AtMostOnce),
            spool_dir: Some("/tmp/s".into()),
            spool_max_bytes: Some(7),
            max_message_size: Some(8),
            proxy: Some("http://p:1".into()),
            extra_headers: Some(HashMap::from([
                ("b".into(), "2".into()),
                ("a".into(), "1".into()),
            ])),
            user_agent: Some("ua".into()),
            webpki_roots: Some(false),
            extra_ca_pem: Some("pem".into()),
            spki_pins: Some(vec!["pin".into()]),
            connect_timeout_ms: Some(9),
            handshake_timeout_ms: Some(10),
            request_timeout_ms: Some(11),
            ..minimal()
        };
        let g = crate::Config::try_from(c).unwrap();
        assert_eq!(g.deflate, None);
        assert_eq!(
            (
                g.ping_interval,
                g.pong_timeout,
                g.backoff_min,
                g.backoff_max
            ),
            (
                Duration::from_millis(1),
                Duration::from_millis(2),
                Duration::from_millis(3),
                Duration::from_millis(4)
            )
        );
        assert_eq!((g.max_queued_messages, g.max_queued_bytes), (5, 6));
        assert_eq!(g.overflow_policy, crate::OverflowPolicy::RefuseNew);
        assert_eq!(g.delivery, crate::Delivery::AtMostOnce);
        assert_eq!(g.spool_dir.as_deref(), Some(std::path::Path::new("/tmp/s")));
        assert_eq!((g.spool_max_bytes, g.max_message_size), (7, 8));
        assert_eq!(g.proxy.as_deref(), Some("http://p:1"));
        assert_eq!(
            g.extra_headers,
            vec![("a".into(), "1".into()), ("b".into(), "2".into())]
        );
        assert_eq!(g.user_agent, "ua");
        assert!(!g.tls.webpki_roots);
        assert_eq!(g.tls.extra_ca_pem.as_deref(), Some("pem"));
        assert_eq!(g.tls.spki_pins, vec!["pin".to_string()]);
        assert_eq!(
            (g.connect_timeout, g.handshake_timeout, g.request_timeout),
            (
                Duration::from_millis(9),
                Duration::from_millis(10),
                Duration::from_millis(11)
            )
        );
    }

    #[test]
    fn subscribe_options_are_carried() {
        let o = crate::SubscribeOptions::from(SubscribeOptions {
            channel: "c".into(),
            subscription_id: Some("s".into()),
            filter: Some("select * from `c`".into()),
            position: Some("0-0".into()),
            batch_size: Some(3),
            fast_forward: true,
        });
        let want = crate::SubscribeOptions::new("c")
            .subscription_id("s")
            .filter("select * from `c`")
            .position("0-0")
            .batch_size(3)
            .fast_forward(true);
        assert_eq!(o, want);
    }
}
