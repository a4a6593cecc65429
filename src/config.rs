//! Client configuration: every limit and option in one struct, validated once by [`Config::validate`].

use std::path::PathBuf;
use std::time::Duration;

use crate::error::Error;

/// What to do when a publish would exceed the queue limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OverflowPolicy {
    /// Drop the oldest queued message (even if already sent and awaiting its ack) to make room;
    /// each drop is reported as [`Event::PublishDropped`](crate::Event::PublishDropped).
    #[default]
    DropOldest,
    /// Refuse the new message: `publish` returns [`Error::QueueFull`] and the queue is unchanged.
    RefuseNew,
}

/// Delivery guarantee for published messages across reconnects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Delivery {
    /// A message stays queued until its `rtm/publish/ok`; after a reconnect every message sent
    /// but not acknowledged is sent again, so the server may see it twice but never zero times.
    #[default]
    AtLeastOnce,
    /// A message is forgotten once written to the socket; those unacknowledged when the
    /// connection drops are reported as [`Event::PublishDropped`](crate::Event::PublishDropped)
    /// and never sent twice.
    AtMostOnce,
}

/// permessage-deflate (RFC 7692) parameters offered to the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeflateOptions {
    /// LZ77 window the client compresses with (9..=15; offered as `client_max_window_bits`).
    pub client_max_window_bits: u8,
    /// Largest window the server may compress with (9..=15; offered only when below 15).
    pub server_max_window_bits: u8,
    /// Ask for a fresh compression context per message on our side (less memory, worse ratio).
    pub client_no_context_takeover: bool,
    /// Ask the server for a fresh context per message on its side.
    pub server_no_context_takeover: bool,
}

impl Default for DeflateOptions {
    /// Context takeover both ways and 15-bit windows, as the C++ client offers.
    fn default() -> Self {
        Self {
            client_max_window_bits: 15,
            server_max_window_bits: 15,
            client_no_context_takeover: false,
            server_no_context_takeover: false,
        }
    }
}

/// TLS options for `wss://` endpoints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsOptions {
    /// Trust the Mozilla roots bundled through `webpki-roots` (default true).
    pub webpki_roots: bool,
    /// Also trust the operating system's store (default false; needs the `native-roots` feature).
    pub native_roots: bool,
    /// Extra trusted CA certificates, PEM text (one or more `CERTIFICATE` blocks).
    pub extra_ca_pem: Option<String>,
    /// If non-empty, the server's end-entity certificate must have one of these public keys:
    /// base64 of the SHA-256 of its DER SubjectPublicKeyInfo (the HPKP `pin-sha256` format).
    /// Checked in addition to the normal chain validation.
    pub spki_pins: Vec<String>,
}

impl Default for TlsOptions {
    fn default() -> Self {
        Self {
            webpki_roots: true,
            native_roots: false,
            extra_ca_pem: None,
            spki_pins: Vec::new(),
        }
    }
}

/// Everything a [`Client`](crate::Client) needs. Build with [`Config::new`] and the chained
/// setters, or set the public fields directly; [`Client::new`](crate::Client::new) validates it.
#[derive(Debug, Clone)]
pub struct Config {
    /// `ws://host[:port][/path]` or `wss://...`. The path defaults to `/v2`; `?appkey=` is added.
    pub endpoint: String,
    /// The application key (selects the app on the server).
    pub appkey: String,
    /// The role name used for `role_secret` authentication.
    pub role: String,
    /// The role's secret.
    pub secret: String,
    /// TLS options (used for `wss://`).
    pub tls: TlsOptions,
    /// permessage-deflate offer; `None` disables compression. On by default.
    pub deflate: Option<DeflateOptions>,
    /// Interval between heartbeat pings; `Duration::ZERO` turns heartbeats off. Default 30 s.
    pub ping_interval: Duration,
    /// How long to wait for the pong of a heartbeat ping before dropping the connection. Default 10 s.
    pub pong_timeout: Duration,
    /// First reconnect delay cap. Default 250 ms.
    pub backoff_min: Duration,
    /// Largest reconnect delay; also the delay after a permanent error. Default 30 s.
    pub backoff_max: Duration,
    /// Most messages held in the publish queue (unsent plus awaiting ack). Default 10,000.
    pub max_queued_messages: usize,
    /// Most bytes (message JSON + channel names) held in the publish queue. Default 128 MiB.
    pub max_queued_bytes: usize,
    /// What to do when the queue is full.
    pub overflow_policy: OverflowPolicy,
    /// Delivery guarantee across reconnects.
    pub delivery: Delivery,
    /// Directory of the on-disk spool; pending messages survive a process restart when set.
    pub spool_dir: Option<PathBuf>,
    /// Most bytes the spool may use on disk. Default 64 MiB.
    pub spool_max_bytes: u64,
    /// Largest message sent or received (after inflating). Default 64 MiB.
    pub max_message_size: usize,
    /// HTTP CONNECT proxy, `http://[user:pass@]host:port`.
    pub proxy: Option<String>,
    /// Extra headers sent with the WebSocket upgrade request.
    pub extra_headers: Vec<(String, String)>,
    /// The `User-Agent` of the upgrade request.
    pub user_agent: String,
    /// Limit for name resolution plus TCP connect. Default 10 s.
    pub connect_timeout: Duration,
    /// Limit for proxy, TLS, WebSocket upgrade and authentication together. Default 10 s.
    pub handshake_timeout: Duration,
    /// Longest wait for the answer to a request on the wire (subscribe, unsubscribe, read, ...):
    /// past it the connection is considered dead and is replaced. Default 10 s.
    pub request_timeout: Duration,
    /// Capacity of the [`Client::events`](crate::Client::events) channel. Default 1024.
    pub event_queue_capacity: usize,
}

impl Config {
    /// A config with the defaults documented on each field.
    pub fn new(
        endpoint: impl Into<String>,
        appkey: impl Into<String>,
        role: impl Into<String>,
        secret: impl Into<String>,
    ) -> Self {
        Self {
            endpoint: endpoint.into(),
            appkey: appkey.into(),
            role: role.into(),
            secret: secret.into(),
            tls: TlsOptions::default(),
            deflate: Some(DeflateOptions::default()),
            ping_interval: Duration::from_secs(30),
            pong_timeout: Duration::from_secs(10),
            backoff_min: Duration::from_millis(250),
            backoff_max: Duration::from_secs(30),
            max_queued_messages: 10_000,
            max_queued_bytes: 128 << 20,
            overflow_policy: OverflowPolicy::DropOldest,
            delivery: Delivery::AtLeastOnce,
            spool_dir: None,
            spool_max_bytes: 64 << 20,
            max_message_size: 64 << 20,
            proxy: None,
            extra_headers: Vec::new(),
            user_agent: format!("cobra-rust/{}", env!("CARGO_PKG_VERSION")),
            connect_timeout: Duration::from_secs(10),
            handshake_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(10),
            event_queue_capacity: 1024,
        }
    }

    /// Set [`Config::tls`].
    pub fn tls(mut self, tls: TlsOptions) -> Self {
        self.tls = tls;
        self
    }
    /// Add a trusted CA (PEM) to [`TlsOptions::extra_ca_pem`].
    pub fn extra_ca_pem(mut self, pem: impl Into<String>) -> Self {
        self.tls.extra_ca_pem = Some(pem.into());
        self
    }
    /// Set [`Config::deflate`] (`None` = no compression).
    pub fn deflate(mut self, deflate: Option<DeflateOptions>) -> Self {
        self.deflate = deflate;
        self
    }
    /// Set [`Config::ping_interval`] (zero = no heartbeat).
    pub fn ping_interval(mut self, d: Duration) -> Self {
        self.ping_interval = d;
        self
    }
    /// Set [`Config::pong_timeout`].
    pub fn pong_timeout(mut self, d: Duration) -> Self {
        self.pong_timeout = d;
        self
    }
    /// Set [`Config::backoff_min`] and [`Config::backoff_max`].
    pub fn backoff(mut self, min: Duration, max: Duration) -> Self {
        self.backoff_min = min;
        self.backoff_max = max;
        self
    }
    /// Set the publish queue limits and overflow policy.
    pub fn queue_limits(
        mut self,
        max_messages: usize,
        max_bytes: usize,
        policy: OverflowPolicy,
    ) -> Self {
        self.max_queued_messages = max_messages;
        self.max_queued_bytes = max_bytes;
        self.overflow_policy = policy;
        self
    }
    /// Set [`Config::delivery`].
    pub fn delivery(mut self, delivery: Delivery) -> Self {
        self.delivery = delivery;
        self
    }
    /// Set [`Config::spool_dir`] and [`Config::spool_max_bytes`].
    pub fn spool(mut self, dir: impl Into<PathBuf>, max_bytes: u64) -> Self {
        self.spool_dir = Some(dir.into());
        self.spool_max_bytes = max_bytes;
        self
    }
    /// Set [`Config::max_message_size`].
    pub fn max_message_size(mut self, bytes: usize) -> Self {
        self.max_message_size = bytes;
        self
    }
    /// Set [`Config::proxy`] (`http://[user:pass@]host:port`).
    pub fn proxy(mut self, url: impl Into<String>) -> Self {
        self.proxy = Some(url.into());
        self
    }
    /// Add a header to the upgrade request.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.extra_headers.push((name.into(), value.into()));
        self
    }
    /// Set [`Config::user_agent`].
    pub fn user_agent(mut self, ua: impl Into<String>) -> Self {
        self.user_agent = ua.into();
        self
    }
    /// Set the connect, handshake and request timeouts.
    pub fn timeouts(mut self, connect: Duration, handshake: Duration, request: Duration) -> Self {
        self.connect_timeout = connect;
        self.handshake_timeout = handshake;
        self.request_timeout = request;
        self
    }
    /// Set [`Config::event_queue_capacity`].
    pub fn event_queue_capacity(mut self, capacity: usize) -> Self {
        self.event_queue_capacity = capacity;
        self
    }

    /// Check every field; the first problem found is returned as [`Error::InvalidConfig`].
    pub fn validate(&self) -> Result<(), Error> {
        Endpoint::parse(&self.endpoint, &self.appkey)?;
        if self.appkey.is_empty() {
            return Err(invalid("appkey", "must not be empty"));
        }
        if self.role.is_empty() {
            return Err(invalid("role", "must not be empty"));
        }
        if !self.ping_interval.is_zero() && self.pong_timeout.is_zero() {
            return Err(invalid(
                "pong_timeout",
                "must be positive when heartbeats are on",
            ));
        }
        if self.backoff_min.is_zero() {
            return Err(invalid("backoff_min", "must be positive"));
        }
        if self.backoff_max < self.backoff_min {
            return Err(invalid("backoff_max", "must be at least backoff_min"));
        }
        if self.max_queued_messages == 0 {
            return Err(invalid("max_queued_messages", "must be positive"));
        }
        if self.max_queued_bytes == 0 {
            return Err(invalid("max_queued_bytes", "must be positive"));
        }
        if self.max_message_size < 1024 {
            return Err(invalid("max_message_size", "must be at least 1024 bytes"));
        }
        if self.event_queue_capacity == 0 {
            return Err(invalid("event_queue_capacity", "must be positive"));
        }
        for (name, d) in [
            ("connect_timeout", self.connect_timeout),
            ("handshake_timeout", self.handshake_timeout),
            ("request_timeout", self.request_timeout),
        ] {
            if d.is_zero() {
                return Err(invalid(name, "must be positive"));
            }
        }
        if let Some(d) = &self.deflate {
            for (name, bits) in [
                ("deflate.client_max_window_bits", d.client_max_window_bits),
                ("deflate.server_max_window_bits", d.server_max_window_bits),
            ] {
                if !(9..=15).contains(&bits) {
                    return Err(invalid(name, "must be within 9..=15"));
                }
            }
        }
        if let Some(p) = &self.proxy {
            ProxyUrl::parse(p)?;
        }
        for (name, value) in &self.extra_headers {
            let token = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
            if name.is_empty() || !name.chars().all(token) {
                return Err(invalid(
                    "extra_headers",
                    format!("bad header name {name:?}"),
                ));
            }
            if value.contains(['\r', '\n', '\0']) {
                return Err(invalid("extra_headers", format!("bad value for {name}")));
            }
        }
        if self.user_agent.contains(['\r', '\n', '\0']) {
            return Err(invalid("user_agent", "must not contain CR, LF or NUL"));
        }
        for pin in &self.tls.spki_pins {
            decode_pin(pin)?;
        }
        if self.spool_dir.is_some() && self.spool_max_bytes == 0 {
            return Err(invalid("spool_max_bytes", "must be positive"));
        }
        Ok(())
    }
}

pub(crate) fn invalid(field: &'static str, reason: impl Into<String>) -> Error {
    Error::InvalidConfig {
        field,
        reason: reason.into(),
    }
}

/// Decode an SPKI pin (base64 of a SHA-256) to its 32 bytes.
pub(crate) fn decode_pin(pin: &str) -> Result<[u8; 32], Error> {
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(pin.trim())
        .map_err(|e| invalid("tls.spki_pins", format!("{pin:?} is not base64: {e}")))?;
    bytes.try_into().map_err(|_| {
        invalid(
            "tls.spki_pins",
            format!("{pin:?} is not a SHA-256 (32 bytes)"),
        )
    })
}

/// A parsed endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Endpoint {
    pub tls: bool,
    /// Host as written, without IPv6 brackets.
    pub host: String,
    pub port: u16,
    /// Path and query sent in the request line (`/v2?appkey=...`).
    pub resource: String,
    /// `Host` header value.
    pub host_header: String,
}

impl Endpoint {
    pub(crate) fn parse(url: &str, appkey: &str) -> Result<Self, Error> {
        let bad = |why: &str| invalid("endpoint", format!("{url:?}: {why}"));
        let (tls, rest) = if let Some(r) = url.strip_prefix("wss://") {
            (true, r)
        } else if let Some(r) = url.strip_prefix("ws://") {
            (false, r)
        } else {
            return Err(bad("must start with ws:// or wss://"));
        };
        if tls && !cfg!(feature = "tls") {
            return Err(bad("wss:// needs the `tls` feature"));
        }
        let (authority, path) = match rest.find(['/', '?']) {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        let default_port = if tls { 443 } else { 80 };
        let (host, port) =
            split_host_port(authority, default_port).ok_or_else(|| bad("bad host or port"))?;
        let (path, query) = match path.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (path, None),
        };
        let path = if path.is_empty() || path == "/" {
            "/v2"
        } else {
            path
        };
        let mut resource = format!("{path}?appkey={}", cobra_wire::percent::encode(appkey));
        if let Some(q) = query.filter(|q| !q.is_empty()) {
            resource.push('&');
            resource.push_str(q);
        }
        let host_header = if port == default_port {
            authority_host(&host)
        } else {
            format!("{}:{port}", authority_host(&host))
        };
        Ok(Self {
            tls,
            host,
            port,
            resource,
            host_header,
        })
    }
}

fn authority_host(host: &str) -> String {
    if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_string()
    }
}

/// Split `host[:port]` / `[v6][:port]`; `None` when malformed.
fn split_host_port(authority: &str, default_port: u16) -> Option<(String, u16)> {
    if authority.contains(['@', ' ']) {
        return None;
    }
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        let (h, after) = rest.split_once(']')?;
        match after {
            "" => (h, default_port),
            p => (h, p.strip_prefix(':')?.parse().ok()?),
        }
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, p.parse().ok()?),
            None => (authority, default_port),
        }
    };
    if host.is_empty() || port == 0 {
        return None;
    }
    Some((host.to_string(), port))
}

/// A parsed HTTP CONNECT proxy URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ProxyUrl {
    pub host: String,
    pub port: u16,
    /// `user:pass`, percent-decoded.
    pub credentials: Option<(String, String)>,
}

impl ProxyUrl {
    pub(crate) fn parse(url: &str) -> Result<Self, Error> {
        let bad = |why: &str| {
            invalid(
                "proxy",
                format!("{why} (expected http://[user:pass@]host:port)"),
            )
        };
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| bad("only http:// proxies are supported"))?;
        let rest = rest.trim_end_matches('/');
        let (userinfo, authority) = match rest.rsplit_once('@') {
            Some((u, a)) => (Some(u), a),
            None => (None, rest),
        };
        let (host, port) = split_host_port(authority, 80).ok_or_else(|| bad("bad host or port"))?;
        let credentials = match userinfo {
            Some(u) => {
                let (user, pass) = u.split_once(':').unwrap_or((u, ""));
                let user =
                    cobra_wire::percent::decode(user).ok_or_else(|| bad("bad percent-encoding"))?;
                let pass =
                    cobra_wire::percent::decode(pass).ok_or_else(|| bad("bad percent-encoding"))?;
                Some((user, pass))
            }
            None => None,
        };
        Ok(Self {
            host,
            port,
            credentials,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_forms() {
        let e = Endpoint::parse("ws://localhost:8765", "_pub sub").unwrap();
        assert_eq!((e.tls, e.host.as_str(), e.port), (false, "localhost", 8765));
        assert_eq!(e.resource, "/v2?appkey=_pub%20sub");
        assert_eq!(e.host_header, "localhost:8765");
        let e = Endpoint::parse("ws://[::1]:9000/custom?x=1", "k").unwrap();
        assert_eq!((e.host.as_str(), e.port), ("::1", 9000));
        assert_eq!(e.resource, "/custom?appkey=k&x=1");
        assert_eq!(e.host_header, "[::1]:9000");
        assert_eq!(Endpoint::parse("ws://h", "k").unwrap().port, 80);
        for bad in [
            "http://h:1",
            "ws://",
            "ws://h:0",
            "ws://h:99999",
            "ws://[::1",
            "ws://u@h:1",
        ] {
            assert!(
                matches!(
                    Endpoint::parse(bad, "k"),
                    Err(Error::InvalidConfig {
                        field: "endpoint",
                        ..
                    })
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn proxy_forms() {
        let p = ProxyUrl::parse("http://us%40er:p:w@proxy:3128").unwrap();
        assert_eq!(p.credentials, Some(("us@er".into(), "p:w".into())));
        assert_eq!((p.host.as_str(), p.port), ("proxy", 3128));
        assert_eq!(
            ProxyUrl::parse("http://proxy:3128").unwrap().credentials,
            None
        );
        assert!(ProxyUrl::parse("socks5://p:1").is_err());
        assert!(ProxyUrl::parse("http://u:p@:1").is_err());
    }

    #[test]
    fn validation_names_the_field() {
        let ok = Config::new("ws://h:1", "k", "r", "s");
        assert_eq!(ok.validate(), Ok(()));
        let field = |c: Config| match c.validate() {
            Err(Error::InvalidConfig { field, .. }) => field,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            field(
                ok.clone()
                    .backoff(Duration::from_secs(2), Duration::from_secs(1))
            ),
            "backoff_max"
        );
        assert_eq!(
            field(Config {
                role: String::new(),
                ..ok.clone()
            }),
            "role"
        );
        assert_eq!(field(ok.clone().header("bad name", "v")), "extra_headers");
        assert_eq!(
            field(ok.clone().header("X-A", "v\r\nX-B: 1")),
            "extra_headers"
        );
        let mut pinned = ok.clone();
        pinned.tls.spki_pins.push("nope".into());
        assert_eq!(field(pinned), "tls.spki_pins");
        let mut d = ok.clone();
        d.deflate = Some(DeflateOptions {
            client_max_window_bits: 8,
            ..Default::default()
        });
        assert_eq!(field(d), "deflate.client_max_window_bits");
        assert_eq!(field(ok.proxy("socks://x:1")), "proxy");
    }
}
