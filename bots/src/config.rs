//! Every option and limit of a bot in one struct.

use std::path::PathBuf;
use std::time::Duration;

/// What the runtime needs besides the SDK config and the sink.
#[derive(Debug, Clone)]
pub struct BotConfig {
    /// The channel to subscribe to (with a filter: the channel of its FROM clause).
    pub channel: String,
    /// Optional StreamSQL filter.
    pub stream_sql: Option<String>,
    /// Start after this position when there is no checkpoint yet (`0-0` = oldest kept; `None` = only new).
    pub position: Option<String>,
    /// Where the confirmed position is kept; `None` = no checkpoint (start from `position` each run).
    pub checkpoint: Option<PathBuf>,
    /// Events per minute handed to the sink; the excess is dropped and counted. `None` = no limit.
    pub max_events_per_minute: Option<u64>,
    /// Most events held between the subscription and the sink (the bot stops reading when full).
    pub queue_size: usize,
    /// Messages per PDU asked of the broker (`None`: the broker's default).
    pub pdu_batch_size: Option<u32>,
    /// Events per sink batch (a batch may exceed it by the rest of one PDU).
    pub batch_size: usize,
    /// How long a partial batch waits for more events before it is sent anyway.
    pub batch_wait: Duration,
    /// The SDK's heartbeat pong timeout.
    pub heartbeat_timeout: Duration,
    /// Interval of the stats line on stderr; zero = none.
    pub stats_interval: Duration,
    /// Serve the counters in Prometheus text format on this port (127.0.0.1 unless `metrics_host`).
    pub metrics_port: Option<u16>,
    /// Address the metrics endpoint binds to.
    pub metrics_host: String,
    /// Stop after this many events were delivered (`--count N`, `--once` = 1).
    pub count: Option<u64>,
    /// First retry delay of a failing sink.
    pub retry_min: Duration,
    /// Largest retry delay of a failing sink (a `Retry-After` may ask for longer).
    pub retry_max: Duration,
}

impl BotConfig {
    /// Defaults: queue 100,000 events, batches of 1,000 waiting at most 100 ms, heartbeat timeout
    /// 10 s, stats every 10 s, retries from 100 ms up to 10 s.
    pub fn new(channel: impl Into<String>) -> Self {
        Self {
            channel: channel.into(),
            stream_sql: None,
            position: None,
            checkpoint: None,
            max_events_per_minute: None,
            queue_size: 100_000,
            pdu_batch_size: None,
            batch_size: 1_000,
            batch_wait: Duration::from_millis(100),
            heartbeat_timeout: Duration::from_secs(10),
            stats_interval: Duration::from_secs(10),
            metrics_port: None,
            metrics_host: "127.0.0.1".into(),
            count: None,
            retry_min: Duration::from_millis(100),
            retry_max: Duration::from_secs(10),
        }
    }

    /// Checks the values that would make the runtime misbehave.
    pub fn validate(&self) -> Result<(), String> {
        if self.channel.is_empty() && self.stream_sql.is_none() {
            return Err("a channel or a StreamSQL filter is needed".into());
        }
        if self.queue_size == 0 {
            return Err("--queue-size must be at least 1".into());
        }
        if self.batch_size == 0 {
            return Err("--batch-size must be at least 1".into());
        }
        if self.max_events_per_minute == Some(0) {
            return Err("--max-events-per-minute must be at least 1".into());
        }
        if self.retry_min.is_zero() || self.retry_min > self.retry_max {
            return Err("retry delays: need 0 < min <= max".into());
        }
        Ok(())
    }
}
