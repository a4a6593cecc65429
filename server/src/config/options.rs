//! The options of `cobra run` ([`ServerOptions`], flattened into its clap command) and the
//! validated settings the server runs with ([`ServerSettings`]).
//!
//! Every option also reads an env var (`COBRA_*`, shown by `cobra run --help`); the
//! underscore spellings of the Python server (`--apps_config_path`, `--redis_urls`, ...)
//! are accepted as aliases so existing scripts keep working.

use std::net::{SocketAddr, ToSocketAddrs};
use std::num::{NonZeroU32, NonZeroUsize};
use std::path::PathBuf;
use std::time::Duration;

use clap::builder::BoolishValueParser;

use super::source::{ConfigSource, LoadedConfig, SourceError};

/// Default listening host: loopback, so a laptop run is not exposed to the network.
pub const DEFAULT_HOST: &str = "127.0.0.1";
/// Default port (the reference's).
pub const DEFAULT_PORT: u16 = 8765;
/// Default subscriptions per connection: far above what a dashboard or bot uses, low enough
/// that one client cannot make the broker track an unbounded number.
pub const DEFAULT_MAX_SUBSCRIPTIONS: usize = 1024;
/// Default groups one aggregate subscription (StreamSQL `GROUP BY ... WINDOW ...`) keeps over its
/// open windows; more fold into the `"__other__"` group.
pub const DEFAULT_MAX_GROUPS: usize = 10_000;
/// Default largest message (after inflating): 1 MiB, the reference's default.
pub const DEFAULT_MESSAGE_MAX_SIZE: usize = 1024 * 1024;
/// Default connection cap.
pub const DEFAULT_MAX_CONNECTIONS: usize = 10_000;
/// Default time to finish the WebSocket upgrade and authentication.
pub const DEFAULT_HANDSHAKE_TIMEOUT_MS: u64 = 10_000;
/// Default delay after which a partial batch (`batch_size` > 1) is flushed.
pub const DEFAULT_BATCH_FLUSH_MS: u64 = 20;
/// Default bytes queued for sending to one connection before it is declared too slow.
pub const DEFAULT_OUTBOUND_QUEUE_BYTES: usize = 8 * 1024 * 1024;
/// Default publishes one connection may have waiting for the backend: enough to keep a
/// Redis node busy from one publisher, small enough that a client that never reads its acks
/// holds little (past it the server stops reading the socket: TCP back-pressure).
pub const DEFAULT_MAX_PUBLISHES_IN_FLIGHT: usize = 256;
/// Default for `--write-timeout-ms`: a connection whose socket does not take one write round
/// (at most ~256 KiB of PDUs) in this long is closed, the peer having stopped reading.
pub const DEFAULT_WRITE_TIMEOUT_MS: u64 = 30_000;

/// `--apps-config PATH`: one definition (spellings, env var) for every command that takes it (`cobra run`,
/// `cobra init`), so they cannot drift apart.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct AppsConfigArg {
    /// Apps config (YAML). Without it: $COBRA_APPS_CONFIG_PATH, then $COBRA_APPS_CONFIG_CONTENT
    /// (gzip + base64), then ~/.cobra.yaml (created on first run).
    #[arg(
        id = "apps_config",
        long = "apps-config",
        alias = "apps_config_path",
        env = "COBRA_APPS_CONFIG",
        value_name = "PATH"
    )]
    pub path: Option<PathBuf>,
}

/// Options of `cobra run`.
#[derive(Debug, Clone, clap::Args)]
pub struct ServerOptions {
    /// Address to listen on (0.0.0.0 to listen on every interface).
    #[arg(long, env = "COBRA_HOST", default_value = DEFAULT_HOST)]
    pub host: String,

    /// Port to listen on.
    #[arg(long, env = "COBRA_PORT", default_value_t = DEFAULT_PORT)]
    pub port: u16,

    // No doc comment: clap would read it as help text (AppsConfigArg documents itself).
    #[allow(missing_docs)]
    #[command(flatten)]
    pub apps_config: AppsConfigArg,

    /// Redis URLs, `;`-separated. Absent: the embedded backend (no Redis needed).
    #[arg(
        long,
        short = 'r',
        alias = "redis_urls",
        env = "COBRA_REDIS_URLS",
        value_name = "URLS"
    )]
    pub redis: Option<String>,

    /// A Redis Cluster to run on instead of a node list: a few of its nodes (seeds),
    /// `,`-separated; the rest is discovered and followed (failover, resharding).
    #[arg(
        long,
        env = "COBRA_REDIS_CLUSTER",
        value_name = "URLS",
        conflicts_with = "redis"
    )]
    pub redis_cluster: Option<String>,

    /// Redis password (when the URLs carry none).
    #[arg(
        long,
        alias = "redis_password",
        env = "COBRA_REDIS_PASSWORD",
        hide_env_values = true
    )]
    pub redis_password: Option<String>,

    /// CA certificate(s) (PEM) that signed the `rediss://` nodes' certificates; without it
    /// they are checked against the public (webpki) roots.
    #[arg(long, env = "COBRA_REDIS_TLS_CA", value_name = "PEM")]
    pub redis_tls_ca: Option<PathBuf>,

    /// Subscriptions allowed per connection.
    #[arg(long, alias = "max_subscriptions", env = "COBRA_MAX_SUBSCRIPTIONS",
          default_value_t = DEFAULT_MAX_SUBSCRIPTIONS)]
    pub max_subscriptions: usize,

    /// Groups one aggregate subscription (StreamSQL GROUP BY ... WINDOW ...) keeps over its open
    /// windows; past it new groups fold into one "__other__" group per window.
    #[arg(long, env = "COBRA_MAX_GROUPS", default_value_t = DEFAULT_MAX_GROUPS)]
    pub max_groups: usize,

    /// Largest accepted message in bytes, measured after permessage-deflate inflation.
    #[arg(long, alias = "message_max_size", env = "COBRA_MESSAGE_MAX_SIZE",
          default_value_t = DEFAULT_MESSAGE_MAX_SIZE)]
    pub message_max_size: usize,

    /// Log every PDU received and sent.
    // No `-v`: the Python CLI puts `-v` before the subcommand (`cobra -v subscribe`), and
    // a top-level `-v` may come here too.
    #[arg(long, env = "COBRA_VERBOSE", value_parser = BoolishValueParser::new(),
          action = clap::ArgAction::SetTrue)]
    pub verbose: bool,

    /// TLS certificate chain (PEM); with --tls-key, serves wss:// instead of ws://.
    #[arg(long, env = "COBRA_TLS_CERT", value_name = "PEM", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// TLS private key (PEM).
    #[arg(long, env = "COBRA_TLS_KEY", value_name = "PEM", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// Most simultaneous connections; more are refused with HTTP 503.
    #[arg(long, env = "COBRA_MAX_CONNECTIONS", default_value_t = DEFAULT_MAX_CONNECTIONS)]
    pub max_connections: usize,

    /// Publishes per second allowed per connection (0: no limit).
    #[arg(long, env = "COBRA_PUBLISH_RATE_LIMIT", default_value_t = 0)]
    pub publish_rate_limit: u32,

    /// Messages of history kept per channel; overrides `channel_max_length` of the apps config.
    #[arg(long, env = "COBRA_CHANNEL_MAX_LENGTH")]
    pub channel_max_length: Option<usize>,

    /// Milliseconds a client has to finish the upgrade and authenticate before it is dropped.
    #[arg(long, env = "COBRA_HANDSHAKE_TIMEOUT_MS", default_value_t = DEFAULT_HANDSHAKE_TIMEOUT_MS)]
    pub handshake_timeout_ms: u64,

    /// Milliseconds after which a partial batch (`batch_size` > 1) is sent anyway.
    #[arg(long, env = "COBRA_BATCH_FLUSH_MS", default_value_t = DEFAULT_BATCH_FLUSH_MS)]
    pub batch_flush_ms: u64,

    /// Bytes queued for one connection; a subscription that finds it full reads the channel's
    /// history at the connection's pace instead (see the README's "Slow subscribers").
    #[arg(long, env = "COBRA_OUTBOUND_QUEUE_BYTES", default_value_t = DEFAULT_OUTBOUND_QUEUE_BYTES)]
    pub outbound_queue_bytes: usize,

    /// Milliseconds a connection's socket may take to accept one write round (up to ~256 KiB
    /// of PDUs) before the connection is closed as a subscriber that stopped reading.
    #[arg(long, env = "COBRA_WRITE_TIMEOUT_MS", default_value_t = DEFAULT_WRITE_TIMEOUT_MS)]
    pub write_timeout_ms: u64,

    /// Do not serve the web dashboard at `/` (it is served by default; it holds no data of
    /// its own and logs in over the WebSocket like any client).
    #[arg(long, env = "COBRA_NO_DASHBOARD", value_parser = BoolishValueParser::new(),
          action = clap::ArgAction::SetTrue)]
    pub no_dashboard: bool,

    /// Seconds over which SIGTERM (or SIGUSR2, `cobra drain`) closes the clients, in random
    /// order, before the server exits (0: all at once).
    #[arg(long, env = "COBRA_DRAIN_SECONDS", default_value_t = DEFAULT_DRAIN_SECONDS)]
    pub drain_seconds: u64,

    /// Log lines as human-readable text or as one JSON object per line.
    #[arg(long, env = "COBRA_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Threads serving the connections (tokio workers); absent: one per core the process may
    /// run on (its CPU affinity, e.g. `taskset`).
    #[arg(long, env = "COBRA_WORKER_THREADS")]
    pub worker_threads: Option<usize>,

    /// How permessage-deflate compresses what the server sends: `shared` (each message on
    /// its own, once for all its subscribers; what deflate does not shrink goes as it is) or
    /// `stream` (each connection's stream with its own 4 KiB window, as NATS does: repetitive
    /// telemetry shrinks several times more, at one compression per delivery and ~16 KiB per
    /// connection that received a compressed message).
    #[arg(long, env = "COBRA_DEFLATE_MODE", value_enum, default_value_t = DeflateMode::Shared)]
    pub deflate_mode: DeflateMode,
}

/// How the server compresses what it sends on permessage-deflate connections (`--deflate-mode`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum DeflateMode {
    /// Every message compressed on its own (`server_no_context_takeover`): one compression per
    /// published message and worker thread however many subscribers it goes to, no compressor
    /// held by any connection, and a message deflate does not shrink sent uncompressed.
    #[default]
    Shared,
    /// Each connection compresses its stream with context takeover and a 4 KiB window
    /// (`server_max_window_bits=12`): a message can refer to the ones before it, so a stream of
    /// similar events compresses far better, for one compression per delivery and the
    /// connection's own compressor (~16 KiB; a message over 16 KiB also allocates a zlib one).
    Stream,
}

/// Default drain window: long enough for a fleet to move a few clients at a time, well under
/// Kubernetes' and systemd's usual stop timeouts once raised past it (see `deploy/`).
pub const DEFAULT_DRAIN_SECONDS: u64 = 30;

/// The format of the log lines (on stderr).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// `tracing`'s human-readable lines.
    Text,
    /// One JSON object per line (`timestamp`, `level`, `fields`, `target`), for log shippers.
    Json,
}

/// The per-connection and per-server limits, gathered in one place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Subscriptions per connection; one more gets `rtm/subscribe/error`.
    pub max_subscriptions: usize,
    /// Groups per aggregate subscription over its open windows (more fold into `"__other__"`).
    pub max_groups: usize,
    /// Largest message in bytes (after inflation); over it the connection is closed 1009.
    pub message_max_size: usize,
    /// Simultaneous connections; over it an upgrade is refused (HTTP 503). Sockets not yet
    /// upgraded count apart: past twice this number in all, new sockets are closed at once.
    pub max_connections: usize,
    /// Publishes per second per connection; `None`: unlimited.
    pub publish_rate_limit: Option<NonZeroU32>,
    /// Time to finish upgrade + authentication.
    pub handshake_timeout: Duration,
    /// Delay after which a partial batch is flushed.
    pub batch_flush: Duration,
    /// Bytes queued per connection; past it its subscriptions catch up from history.
    pub outbound_queue_bytes: usize,
    /// Publishes of one connection waiting for the backend at once (pipelined, acked in
    /// order). When full the connection's socket is not read until one is answered.
    pub max_publishes_in_flight: usize,
    /// Longest one write round to a connection may take; past it the connection is closed
    /// (a peer that stopped reading).
    pub write_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_subscriptions: DEFAULT_MAX_SUBSCRIPTIONS,
            max_groups: DEFAULT_MAX_GROUPS,
            message_max_size: DEFAULT_MESSAGE_MAX_SIZE,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            publish_rate_limit: None,
            handshake_timeout: Duration::from_millis(DEFAULT_HANDSHAKE_TIMEOUT_MS),
            batch_flush: Duration::from_millis(DEFAULT_BATCH_FLUSH_MS),
            outbound_queue_bytes: DEFAULT_OUTBOUND_QUEUE_BYTES,
            max_publishes_in_flight: DEFAULT_MAX_PUBLISHES_IN_FLIGHT,
            write_timeout: Duration::from_millis(DEFAULT_WRITE_TIMEOUT_MS),
        }
    }
}

/// TLS files to serve wss:// with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// The certificate chain (PEM).
    pub cert: PathBuf,
    /// The private key (PEM).
    pub key: PathBuf,
}

/// What the server runs with: [`ServerOptions`] checked and converted.
#[derive(Debug, Clone)]
pub struct ServerSettings {
    /// The address to bind.
    pub addr: SocketAddr,
    /// Where the apps config comes from; see [`ServerSettings::load_apps_config`].
    pub apps_config: ConfigSource,
    /// Redis URLs; empty: the embedded backend.
    pub redis_urls: Vec<String>,
    /// Seed URLs of a Redis Cluster (`--redis-cluster`); non-empty: cluster mode.
    pub redis_cluster: Vec<String>,
    /// Password for Redis nodes whose URL gives none.
    pub redis_password: Option<String>,
    /// CA (PEM file) for `rediss://` nodes; `None`: the webpki roots.
    pub redis_tls_ca: Option<PathBuf>,
    /// Overrides the apps config's `channel_max_length`.
    pub channel_max_length: Option<NonZeroUsize>,
    /// Log at debug level.
    pub verbose: bool,
    /// TLS for the listener (`wss://`); `None`: plain `ws://`.
    pub tls: Option<TlsFiles>,
    /// Every server-side bound.
    pub limits: Limits,
    /// Serve the web dashboard at `/` (`--no-dashboard` turns it off).
    pub dashboard: bool,
    /// Worker threads of the server's runtime; `None`: one per core available to the process.
    pub worker_threads: Option<NonZeroUsize>,
    /// How permessage-deflate compresses what the server sends.
    pub deflate_mode: DeflateMode,
}

/// Why the options of `cobra run` were refused.
#[derive(Debug, thiserror::Error)]
pub enum OptionsError {
    /// `--host` is not an address.
    #[error("--host `{host}`: {reason}")]
    BadHost {
        /// The host as given.
        host: String,
        /// Why it is refused.
        reason: String,
    },
    /// A `--redis` URL is malformed.
    #[error("--redis `{url}`: expected redis://, rediss:// or unix:// URLs separated by `;`")]
    BadRedisUrl {
        /// The URL as given.
        url: String,
    },
    /// A count or size option is 0.
    #[error("--{option} must be at least 1")]
    Zero {
        /// The option's name.
        option: &'static str,
    },
    /// Only one of `--tls-cert` and `--tls-key`.
    #[error("--tls-cert and --tls-key go together")]
    TlsPair,
    /// A TLS file does not exist.
    #[error("TLS file {path} does not exist")]
    TlsMissing {
        /// The file.
        path: PathBuf,
    },
    /// The apps config could not be loaded.
    #[error(transparent)]
    AppsConfig(#[from] SourceError),
}

impl ServerOptions {
    /// Checks the options and resolves the apps config source (reading the environment for
    /// `COBRA_APPS_CONFIG_PATH`, `COBRA_APPS_CONFIG_CONTENT` and `HOME`).
    pub fn into_settings(self) -> Result<ServerSettings, OptionsError> {
        let apps_config = ConfigSource::from_env(self.apps_config.path.clone())?;
        self.into_settings_with(apps_config)
    }

    /// [`ServerOptions::into_settings`] with the apps config source given.
    pub fn into_settings_with(
        self,
        apps_config: ConfigSource,
    ) -> Result<ServerSettings, OptionsError> {
        let addr = resolve_addr(&self.host, self.port)?;
        let redis_urls = parse_redis_urls(self.redis.as_deref().unwrap_or(""))?;
        let redis_cluster = parse_redis_urls(
            &self
                .redis_cluster
                .as_deref()
                .unwrap_or("")
                .replace(',', ";"),
        )?;
        let limits = Limits {
            max_subscriptions: nonzero(self.max_subscriptions, "max-subscriptions")?,
            max_groups: nonzero(self.max_groups, "max-groups")?,
            message_max_size: nonzero(self.message_max_size, "message-max-size")?,
            max_connections: nonzero(self.max_connections, "max-connections")?,
            publish_rate_limit: NonZeroU32::new(self.publish_rate_limit),
            handshake_timeout: millis(self.handshake_timeout_ms, "handshake-timeout-ms")?,
            batch_flush: millis(self.batch_flush_ms, "batch-flush-ms")?,
            outbound_queue_bytes: nonzero(self.outbound_queue_bytes, "outbound-queue-bytes")?,
            max_publishes_in_flight: DEFAULT_MAX_PUBLISHES_IN_FLIGHT,
            write_timeout: millis(self.write_timeout_ms, "write-timeout-ms")?,
        };
        let channel_max_length = optional_nonzero(self.channel_max_length, "channel-max-length")?;
        let tls = match (self.tls_cert, self.tls_key) {
            (None, None) => None,
            (Some(cert), Some(key)) => {
                for path in [&cert, &key] {
                    if !path.exists() {
                        return Err(OptionsError::TlsMissing { path: path.clone() });
                    }
                }
                Some(TlsFiles { cert, key })
            }
            _ => return Err(OptionsError::TlsPair),
        };
        let worker_threads = optional_nonzero(self.worker_threads, "worker-threads")?;
        Ok(ServerSettings {
            addr,
            apps_config,
            redis_urls,
            redis_cluster,
            redis_password: self.redis_password.filter(|p| !p.is_empty()),
            redis_tls_ca: self.redis_tls_ca,
            channel_max_length,
            verbose: self.verbose,
            tls,
            limits,
            dashboard: !self.no_dashboard,
            worker_threads,
            deflate_mode: self.deflate_mode,
        })
    }
}

impl ServerSettings {
    /// Settings with every default (embedded backend, no TLS, default [`Limits`]), for
    /// embedding the server or testing it without going through the command line.
    pub fn with_defaults(addr: SocketAddr, apps_config: ConfigSource) -> ServerSettings {
        ServerSettings {
            addr,
            apps_config,
            redis_urls: Vec::new(),
            redis_cluster: Vec::new(),
            redis_password: None,
            redis_tls_ca: None,
            channel_max_length: None,
            verbose: false,
            tls: None,
            limits: Limits::default(),
            dashboard: true,
            worker_threads: None,
            deflate_mode: DeflateMode::Shared,
        }
    }

    /// Loads the apps config (creating the default one on a first run) and applies the
    /// `--channel-max-length` override.
    pub fn load_apps_config(&self) -> Result<LoadedConfig, SourceError> {
        let mut loaded = self.apps_config.load()?;
        if let Some(n) = self.channel_max_length {
            loaded.config.channel_max_length = n.get();
        }
        Ok(loaded)
    }
}

/// `value`, refused when 0 (`option` names it in the error).
fn nonzero<T: Default + PartialEq>(value: T, option: &'static str) -> Result<T, OptionsError> {
    if value == T::default() {
        return Err(OptionsError::Zero { option });
    }
    Ok(value)
}

/// A `--*-ms` option as a duration, refused when 0.
fn millis(ms: u64, option: &'static str) -> Result<Duration, OptionsError> {
    nonzero(ms, option).map(Duration::from_millis)
}

/// An optional count: absent stays `None`, 0 is refused.
fn optional_nonzero(
    value: Option<usize>,
    option: &'static str,
) -> Result<Option<NonZeroUsize>, OptionsError> {
    value
        .map(|n| NonZeroUsize::new(n).ok_or(OptionsError::Zero { option }))
        .transpose()
}

/// `host:port` as a socket address: an IP literal (v6 with or without brackets) as is, a
/// name (`localhost`) through the system resolver, first answer.
fn resolve_addr(host: &str, port: u16) -> Result<SocketAddr, OptionsError> {
    let bad = |reason: String| OptionsError::BadHost {
        host: host.to_owned(),
        reason,
    };
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if bare.is_empty() {
        return Err(bad("empty".to_owned()));
    }
    if let Ok(ip) = bare.parse::<std::net::IpAddr>() {
        return Ok(SocketAddr::new(ip, port));
    }
    (bare, port)
        .to_socket_addrs()
        .map_err(|e| bad(e.to_string()))?
        .next()
        .ok_or_else(|| bad("resolves to no address".to_owned()))
}

/// `;`-separated Redis URLs (blanks ignored). Only the scheme is checked here; the Redis
/// backend parses the rest.
pub fn parse_redis_urls(text: &str) -> Result<Vec<String>, OptionsError> {
    text.split(';')
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .map(|url| {
            let known = ["redis://", "rediss://", "unix://", "redis+unix://"];
            if known.iter().any(|scheme| url.starts_with(scheme)) {
                Ok(url.to_owned())
            } else {
                Err(OptionsError::BadRedisUrl {
                    url: url.to_owned(),
                })
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Cmd {
        #[command(flatten)]
        options: ServerOptions,
    }

    // Parses without reading the process environment (clap's `env` would).
    fn parse(args: &[&str]) -> Result<ServerOptions, clap::Error> {
        let mut cmd = <Cmd as clap::CommandFactory>::command();
        cmd = cmd.mut_args(|a| a.env(None::<&str>));
        let matches =
            cmd.try_get_matches_from(std::iter::once("run").chain(args.iter().copied()))?;
        <Cmd as clap::FromArgMatches>::from_arg_matches(&matches).map(|c| c.options)
    }

    fn settings(args: &[&str]) -> Result<ServerSettings, OptionsError> {
        let source = ConfigSource::Default("/nonexistent/.cobra.yaml".into());
        parse(args).unwrap().into_settings_with(source)
    }

    #[test]
    fn clap_definition_is_consistent_and_every_option_has_an_env_var() {
        let cmd = <Cmd as clap::CommandFactory>::command();
        cmd.clone().debug_assert();
        for arg in cmd.get_arguments() {
            let env = arg.get_env().map(|e| e.to_string_lossy().into_owned());
            assert!(
                env.as_deref().is_some_and(|e| e.starts_with("COBRA_")),
                "--{} has no COBRA_* env var",
                arg.get_id()
            );
        }
    }

    #[test]
    fn defaults() {
        let s = settings(&[]).unwrap();
        let plain = ServerSettings::with_defaults(s.addr, s.apps_config.clone());
        assert_eq!(
            format!("{plain:?}"),
            format!("{s:?}"),
            "the command line defaults are the defaults"
        );
        assert_eq!(s.addr, "127.0.0.1:8765".parse().unwrap());
        assert!(s.redis_urls.is_empty(), "embedded backend by default");
        assert_eq!(s.limits, Limits::default());
        assert!(!s.verbose && s.tls.is_none() && s.channel_max_length.is_none());
    }

    #[test]
    fn every_option_and_the_python_spellings() {
        let o = parse(&[
            "--host",
            "0.0.0.0",
            "--port",
            "9000",
            "--apps_config_path",
            "/a.yaml",
            "--redis_urls",
            "redis://a:6379; redis://b:6379;",
            "--redis_password",
            "pw",
            "--max_subscriptions",
            "5",
            "--message_max_size",
            "100",
            "--verbose",
            "--max-connections",
            "7",
            "--publish-rate-limit",
            "50",
            "--channel-max-length",
            "9",
            "--handshake-timeout-ms",
            "1500",
            "--batch-flush-ms",
            "3",
            "--outbound-queue-bytes",
            "4096",
            "--write-timeout-ms",
            "40",
            "--max-groups",
            "77",
            "--worker-threads",
            "2",
            "--deflate-mode",
            "stream",
        ])
        .unwrap();
        assert_eq!(o.apps_config.path, Some(PathBuf::from("/a.yaml")));
        let s = o
            .into_settings_with(ConfigSource::Default("/x".into()))
            .unwrap();
        assert_eq!(s.addr, "0.0.0.0:9000".parse().unwrap());
        assert_eq!(s.redis_urls, ["redis://a:6379", "redis://b:6379"]);
        assert_eq!(s.redis_password.as_deref(), Some("pw"));
        assert!(s.verbose);
        assert_eq!(s.channel_max_length, NonZeroUsize::new(9));
        assert_eq!(s.worker_threads, NonZeroUsize::new(2));
        assert_eq!(s.deflate_mode, DeflateMode::Stream);
        assert_eq!(parse(&[]).unwrap().deflate_mode, DeflateMode::Shared);
        assert!(parse(&["--deflate-mode", "zlib"]).is_err());
        assert_eq!(
            s.limits,
            Limits {
                max_subscriptions: 5,
                max_groups: 77,
                message_max_size: 100,
                max_connections: 7,
                publish_rate_limit: NonZeroU32::new(50),
                handshake_timeout: Duration::from_millis(1500),
                batch_flush: Duration::from_millis(3),
                outbound_queue_bytes: 4096,
                max_publishes_in_flight: DEFAULT_MAX_PUBLISHES_IN_FLIGHT,
                write_timeout: Duration::from_millis(40),
            }
        );
        assert_eq!(
            parse(&["--apps-config", "/b.yaml"])
                .unwrap()
                .apps_config
                .path,
            Some("/b.yaml".into())
        );
        assert_eq!(
            parse(&["--redis", "redis://x"]).unwrap().redis.as_deref(),
            Some("redis://x")
        );
    }

    #[test]
    fn hosts() {
        assert_eq!(
            settings(&["--host", "::1", "--port", "1"]).unwrap().addr,
            "[::1]:1".parse().unwrap()
        );
        assert_eq!(
            settings(&["--host", "[::]"]).unwrap().addr,
            "[::]:8765".parse().unwrap()
        );
        assert!(
            settings(&["--host", "localhost"])
                .unwrap()
                .addr
                .ip()
                .is_loopback()
        );
        let e = settings(&["--host", ""]).unwrap_err();
        assert_eq!(e.to_string(), "--host ``: empty");
        assert!(parse(&["--port", "70000"]).is_err());
    }

    #[test]
    fn invalid_values_are_typed_errors() {
        let e = settings(&["--redis", "http://x"]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "--redis `http://x`: expected redis://, rediss:// or unix:// URLs separated by `;`"
        );
        for (flag, name) in [
            ("--max-subscriptions", "max-subscriptions"),
            ("--message-max-size", "message-max-size"),
            ("--max-connections", "max-connections"),
            ("--channel-max-length", "channel-max-length"),
            ("--handshake-timeout-ms", "handshake-timeout-ms"),
            ("--batch-flush-ms", "batch-flush-ms"),
            ("--outbound-queue-bytes", "outbound-queue-bytes"),
            ("--worker-threads", "worker-threads"),
        ] {
            let e = settings(&[flag, "0"]).unwrap_err();
            assert_eq!(e.to_string(), format!("--{name} must be at least 1"));
        }
        assert_eq!(
            settings(&["--publish-rate-limit", "0"])
                .unwrap()
                .limits
                .publish_rate_limit,
            None
        );
        assert!(
            parse(&["--tls-cert", "/c.pem"]).is_err(),
            "the key is required with the cert"
        );
        let e = settings(&[
            "--tls-cert",
            "/nonexistent/c.pem",
            "--tls-key",
            "/nonexistent/k.pem",
        ])
        .unwrap_err();
        assert_eq!(e.to_string(), "TLS file /nonexistent/c.pem does not exist");
    }

    #[test]
    fn channel_max_length_override() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.yaml");
        std::fs::write(
            &path,
            "apps:\n  a:\n    roles:\n      r: {secret: s}\nchannel_max_length: 5\n",
        )
        .unwrap();
        let source = ConfigSource::File {
            path,
            origin: crate::config::source::ORIGIN_OPTION,
        };
        let s = parse(&[])
            .unwrap()
            .into_settings_with(source.clone())
            .unwrap();
        assert_eq!(s.load_apps_config().unwrap().config.channel_max_length, 5);
        let s = parse(&["--channel-max-length", "3"])
            .unwrap()
            .into_settings_with(source)
            .unwrap();
        assert_eq!(s.load_apps_config().unwrap().config.channel_max_length, 3);
    }
}
