//! `cobra bot <sink>`: a thin front on the `cobra-bot` runtime. Connection options and credentials
//! default as for every client command (`COBRA_PORT`, the apps config); see `bots/` for the runtime.
//!
//! Exit status: 0 when stopped (SIGINT/SIGTERM, `--count` reached), 1 when the broker or the sink
//! failed for good, 2 for bad usage.

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::Duration;

use cobra_bot::sinks::file::{FileOptions, FileSink, Fsync};
use cobra_bot::sinks::postgres::{Column, PostgresOptions, PostgresSink};
use cobra_bot::sinks::republish::RepublishSink;
use cobra_bot::sinks::sentry::{Dsn, SentrySink};
use cobra_bot::sinks::statsd::{Kind, StatsdOptions, StatsdSink, Tag};
use cobra_bot::sinks::stdout::StdoutSink;
use cobra_bot::{Bot, BotConfig, BotError, Sink, SinkError};

use super::client::{CliError, ConnArgs, SubscriptionArgs, client_config};

/// `cobra bot`: options shared by every sink, then the sink.
#[derive(Debug, clap::Args)]
pub struct BotArgs {
    /// The sink and its options.
    #[command(subcommand)]
    pub sink: SinkCmd,
}

/// The sinks.
#[derive(Debug, clap::Subcommand)]
pub enum SinkCmd {
    /// One JSON line per event on stdout.
    Stdout(StdoutArgs),
    /// JSON lines in a directory, rotated by size and age, optionally gzip.
    File(FileArgs),
    /// Metrics over UDP to a statsd daemon (DogStatsD tags with --tags).
    Statsd(StatsdArgs),
    /// Batched COPY into a PostgreSQL table.
    Postgres(PostgresArgs),
    /// Events with a level (errors, soft crashes) to a Sentry DSN.
    Sentry(SentryArgs),
    /// Republish each event, intact, to another channel or broker.
    Cobra(RepublishArgs),
}

/// `cobra bot sentry`.
#[derive(Debug, clap::Args)]
pub struct SentryArgs {
    #[command(flatten)]
    #[allow(missing_docs)] // flattened: a doc comment would become clap help text
    pub common: CommonArgs,
    /// The project's DSN: http(s)://KEY@HOST[:PORT]/PROJECT.
    #[arg(long, env = "COBRA_SENTRY_DSN")]
    pub dsn: Dsn,
    /// Environment set on every event.
    #[arg(long)]
    pub environment: Option<String>,
}

/// `cobra bot cobra`.
#[derive(Debug, clap::Args)]
pub struct RepublishArgs {
    #[command(flatten)]
    #[allow(missing_docs)] // flattened: a doc comment would become clap help text
    pub common: CommonArgs,
    /// Destination broker [default: the source's endpoint].
    #[arg(long)]
    pub to_endpoint: Option<String>,
    /// Destination appkey [default: the source's].
    #[arg(long)]
    pub to_appkey: Option<String>,
    /// Destination role [default: the destination appkey's first role in the apps config].
    #[arg(long)]
    pub to_rolename: Option<String>,
    /// Destination role secret [default: from the apps config].
    #[arg(long)]
    pub to_rolesecret: Option<String>,
    /// Destination channel.
    #[arg(long)]
    pub to_channel: String,
}

/// Options every bot takes.
#[derive(Debug, clap::Args)]
// A bot runs as a service: what it subscribes to may come from its environment, and a checkpoint
// comes before `--position`.
#[command(
    mut_arg("channel", |arg| arg.env("COBRA_CHANNEL")),
    mut_arg("stream_sql", |arg| arg.env("COBRA_STREAM_SQL")),
    mut_arg("position", |arg| arg.help(
        "Start after this position when there is no checkpoint (`0-0`: oldest kept; default: only new)"
    )),
)]
pub struct CommonArgs {
    #[command(flatten)]
    #[allow(missing_docs)] // flattened: a doc comment would become clap help text
    pub conn: ConnArgs,
    #[command(flatten)]
    #[allow(missing_docs)] // flattened: a doc comment would become clap help text
    pub subscription: SubscriptionArgs,
    /// Keep the position of the last confirmed event here and resume after it.
    #[arg(long, env = "COBRA_CHECKPOINT")]
    pub checkpoint: Option<PathBuf>,
    /// Hand at most this many events per minute to the sink; the rest are dropped and counted.
    #[arg(long, alias = "max_events_per_minute")]
    pub max_events_per_minute: Option<u64>,
    /// Most events held between the subscription and the sink (the bot stops reading when full).
    #[arg(long, alias = "queue_size", default_value_t = 100_000)]
    pub queue_size: usize,
    /// Events per sink batch (one write, one COMMIT, one checkpoint).
    #[arg(long, alias = "batch_size", default_value_t = 1000)]
    pub batch_size: usize,
    /// Messages per PDU asked of the broker (server-side batching).
    #[arg(long)]
    pub pdu_batch_size: Option<u32>,
    /// Seconds without a heartbeat pong before the connection is replaced.
    #[arg(long, alias = "heartbeat_timeout", default_value_t = 10.0)]
    pub heartbeat_timeout: f64,
    /// Seconds between stats lines on stderr (0: none).
    #[arg(long, alias = "stats_interval", default_value_t = 10.0)]
    pub stats_interval: f64,
    /// Serve the counters in Prometheus text format on this port of 127.0.0.1.
    #[arg(long, alias = "metrics_port")]
    pub metrics_port: Option<u16>,
    /// Offer permessage-deflate to the broker (off by default for bots: on a LAN or loopback,
    /// inflating costs the bot more CPU per event than the bandwidth it saves).
    #[arg(long, conflicts_with = "no_deflate")]
    pub deflate: bool,
    /// Exit after delivering one event.
    #[arg(long, conflicts_with = "count")]
    pub once: bool,
    /// Exit after delivering this many events.
    #[arg(long)]
    pub count: Option<u64>,
}

/// `cobra bot stdout`.
#[derive(Debug, clap::Args)]
pub struct StdoutArgs {
    #[command(flatten)]
    #[allow(missing_docs)] // flattened: a doc comment would become clap help text
    pub common: CommonArgs,
    /// Wrap each event for fluentd: {"producer":"cobra","consumer":"fluentd","message":{...,"position":P}}.
    #[arg(long)]
    pub fluentd: bool,
}

/// `cobra bot file`.
#[derive(Debug, clap::Args)]
pub struct FileArgs {
    #[command(flatten)]
    #[allow(missing_docs)] // flattened: a doc comment would become clap help text
    pub common: CommonArgs,
    /// Directory of the JSONL files (created if absent).
    #[arg(long)]
    pub dir: PathBuf,
    /// File name prefix.
    #[arg(long, default_value = "cobra")]
    pub prefix: String,
    /// Start a new file past this many bytes (uncompressed).
    #[arg(long, default_value_t = 256 << 20)]
    pub rotate_bytes: u64,
    /// Start a new file after this many seconds.
    #[arg(long, default_value_t = 3600.0)]
    pub rotate_secs: f64,
    /// Gzip the files.
    #[arg(long)]
    pub gzip: bool,
    /// fsync policy: batch (before each checkpoint), interval (each second) or never.
    #[arg(long, default_value = "interval")]
    pub fsync: Fsync,
}

/// `cobra bot statsd`.
#[derive(Debug, clap::Args)]
pub struct StatsdArgs {
    #[command(flatten)]
    #[allow(missing_docs)] // flattened: a doc comment would become clap help text
    pub common: CommonArgs,
    /// The statsd daemon, host:port.
    #[arg(long, default_value = "127.0.0.1:8125")]
    pub statsd: String,
    /// Metric name prefix.
    #[arg(long, default_value = "")]
    pub prefix: String,
    /// Event fields whose values, joined by `.`, make the metric name (comma separated).
    #[arg(long, value_delimiter = ',', required = true)]
    pub fields: Vec<String>,
    /// Count each event (the default).
    #[arg(long, conflicts_with_all = ["gauge", "timer", "fps_buckets"])]
    pub counter: bool,
    /// Send this field's value as a gauge.
    #[arg(long, conflicts_with_all = ["timer", "fps_buckets"])]
    pub gauge: Option<String>,
    /// Send this field's value as a timer (ms).
    #[arg(long, conflicts_with = "fps_buckets")]
    pub timer: Option<String>,
    /// Frame-rate histogram of this field: gauges gt_60, 60, 30, 15, 10, lt_08 (percent) each interval.
    #[arg(long)]
    pub fps_buckets: Option<String>,
    /// Seconds between fps-bucket gauges.
    #[arg(long, default_value_t = 10.0)]
    pub fps_interval: f64,
    /// DogStatsD tags, comma separated: key:value (fixed) or key=field.path (from each event).
    #[arg(long, value_delimiter = ',')]
    pub tags: Vec<Tag>,
}

/// `cobra bot postgres`.
#[derive(Debug, clap::Args)]
pub struct PostgresArgs {
    #[command(flatten)]
    #[allow(missing_docs)] // flattened: a doc comment would become clap help text
    pub common: CommonArgs,
    /// Connection string, e.g. postgresql://user@127.0.0.1:5432/db.
    #[arg(long, env = "COBRA_POSTGRES_URL")]
    pub url: String,
    /// Table (created if absent).
    #[arg(long, default_value = "cobra_events")]
    pub table: String,
    /// A column extracted from each event: name=path[:text|bigint|double|bool|jsonb] (repeatable).
    #[arg(long = "column")]
    pub columns: Vec<Column>,
}

fn secs(what: &str, v: f64) -> Result<Duration, CliError> {
    Duration::try_from_secs_f64(v)
        .map_err(|_| CliError::Usage(format!("{what} {v}: expected a number of seconds >= 0")))
}

fn sink_err(e: SinkError) -> CliError {
    match e {
        SinkError::Fatal(m) => CliError::Usage(m),
        SinkError::Retry { reason, .. } => CliError::Failed(reason),
    }
}

/// Runs `cobra bot <sink>`; the returned code is the exit status.
pub fn bot(args: BotArgs) -> i32 {
    init_logging();
    let res = match args.sink {
        SinkCmd::Stdout(a) => run(&a.common, &mut StdoutSink::stdout(a.fluentd)),
        SinkCmd::File(a) => (|| {
            let opts = FileOptions {
                dir: a.dir.clone(),
                prefix: a.prefix.clone(),
                rotate_bytes: a.rotate_bytes,
                rotate_interval: secs("--rotate-secs", a.rotate_secs)?,
                gzip: a.gzip,
                fsync: a.fsync,
            };
            run(&a.common, &mut FileSink::new(opts).map_err(sink_err)?)
        })(),
        SinkCmd::Statsd(a) => (|| {
            let mut opts = StatsdOptions::new(a.statsd.clone(), a.fields.clone());
            opts.prefix = a.prefix.clone();
            opts.tags = a.tags.clone();
            opts.fps_interval = secs("--fps-interval", a.fps_interval)?;
            opts.kind = match (&a.gauge, &a.timer, &a.fps_buckets) {
                (Some(f), _, _) => Kind::Gauge(f.clone()),
                (_, Some(f), _) => Kind::Timer(f.clone()),
                (_, _, Some(f)) => Kind::FpsBuckets(f.clone()),
                _ => Kind::Counter,
            };
            run(&a.common, &mut StatsdSink::new(opts).map_err(sink_err)?)
        })(),
        SinkCmd::Postgres(a) => (|| {
            let opts = PostgresOptions {
                url: a.url.clone(),
                table: a.table.clone(),
                columns: a.columns.clone(),
            };
            run(&a.common, &mut PostgresSink::new(opts).map_err(sink_err)?)
        })(),
        SinkCmd::Sentry(a) => run(
            &a.common,
            &mut SentrySink::new(a.dsn.clone(), a.environment.clone()),
        ),
        SinkCmd::Cobra(a) => (|| {
            let source = &a.common.conn;
            if a.common.batch_size > 10_000 {
                return Err(CliError::Usage(
                    "--batch-size: at most 10000 for the cobra sink (the SDK's publish queue)"
                        .into(),
                ));
            }
            let to = ConnArgs {
                endpoint: a.to_endpoint.clone().or_else(|| source.endpoint.clone()),
                appkey: a.to_appkey.clone().or_else(|| source.appkey.clone()),
                rolename: a.to_rolename.clone().or_else(|| {
                    a.to_appkey
                        .is_none()
                        .then(|| source.rolename.clone())
                        .flatten()
                }),
                rolesecret: a.to_rolesecret.clone().or_else(|| {
                    a.to_appkey
                        .is_none()
                        .then(|| source.rolesecret.clone())
                        .flatten()
                }),
                timeout: source.timeout,
                no_deflate: source.no_deflate,
            };
            let config = client_config(&to, "_pubsub")?;
            run(
                &a.common,
                &mut RepublishSink::new(config, a.to_channel.clone()).map_err(sink_err)?,
            )
        })(),
    };
    match res {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("cobra bot: {e}");
            match e {
                CliError::Usage(_) => 2,
                CliError::Failed(_) => 1,
            }
        }
    }
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

fn run(c: &CommonArgs, sink: &mut dyn Sink) -> Result<(), CliError> {
    let mut cfg = BotConfig::new(c.subscription.channel()?);
    cfg.stream_sql = c.subscription.stream_sql.clone();
    cfg.position = c.subscription.position.clone();
    cfg.checkpoint = c.checkpoint.clone();
    cfg.max_events_per_minute = c.max_events_per_minute;
    cfg.queue_size = c.queue_size;
    cfg.batch_size = c.batch_size;
    cfg.pdu_batch_size = c.pdu_batch_size;
    cfg.heartbeat_timeout = secs("--heartbeat-timeout", c.heartbeat_timeout)?;
    cfg.stats_interval = secs("--stats-interval", c.stats_interval)?;
    cfg.metrics_port = c.metrics_port;
    cfg.count = if c.once { Some(1) } else { c.count };
    let mut client = client_config(&c.conn, "_pubsub")?;
    if !c.deflate {
        client.deflate = None;
    }
    let bot = Bot::new(client, cfg).map_err(|e| CliError::Usage(e.to_string()))?;
    let stop = bot.stop_flag();
    ctrlc::set_handler(move || stop.store(true, Ordering::Release))
        .map_err(|e| CliError::Failed(format!("installing the signal handler: {e}")))?;
    match bot.run(sink) {
        Ok(s) => {
            eprintln!(
                "cobra bot {}: stopped; received {} sent {} dropped {} malformed {} retried {} resubscribes {} reconnects {}",
                sink.name(),
                s.received,
                s.sent,
                s.dropped,
                s.malformed,
                s.retried,
                s.resubscribes,
                s.reconnects
            );
            Ok(())
        }
        Err(e @ BotError::Config(_)) => Err(CliError::Usage(e.to_string())),
        Err(e) => Err(CliError::Failed(e.to_string())),
    }
}
