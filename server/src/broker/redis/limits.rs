//! Every bound and timing of the Redis backend, in one place.

use std::time::Duration;

/// How a history stream is capped on each publish.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Trim {
    /// `MAXLEN = n`: exactly `channel_max_length` entries kept (after each publish batch), like
    /// the embedded backend.
    #[default]
    Exact,
    /// `MAXLEN ~ n`: Redis cuts whole internal nodes only, so up to about 100 entries more
    /// are kept; cheaper per publish.
    Approximate,
}

impl Trim {
    /// The `MAXLEN` operator (of the `XTRIM` after each publish batch).
    pub fn operator(self) -> &'static str {
        match self {
            Trim::Exact => "=",
            Trim::Approximate => "~",
        }
    }
}

/// Limits, timings, naming and TLS trust of the Redis backend. The defaults suit a LAN
/// deployment.
#[derive(Debug, Clone)]
pub struct RedisLimits {
    /// Requests (publish, read, write, history pages...) one node may have waiting for a slot
    /// or for Redis's answer. Beyond it a request waits up to [`Self::queue_timeout`] (publishes
    /// in a FIFO of at most [`Self::max_waiting_publishes`]) and then fails with "overloaded".
    /// A slow node gives back-pressure (each connection has at most `max_publishes_in_flight`
    /// publishes waiting, then its socket is not read) and errors, never an unbounded queue.
    pub max_in_flight: usize,
    /// Publishes waiting, in the order they were made, for one of the `max_in_flight` slots.
    /// Beyond it a publish fails at once with "overloaded"; one that waited
    /// [`Self::queue_timeout`] fails with "overloaded" too (a waiting publish keeps its place:
    /// no later publish overtakes it).
    pub max_waiting_publishes: usize,
    /// How long a request may wait for an in-flight slot.
    pub queue_timeout: Duration,
    /// Most publishes sent to a node in one script call (see [`super::batch`]).
    pub max_batch: usize,
    /// Publish script calls a node may have outstanding at once.
    pub batches_in_flight: usize,
    /// How long Redis may take to answer one request before it fails as a timeout.
    pub response_timeout: Duration,
    /// TCP connect + handshake timeout.
    pub connect_timeout: Duration,
    /// First delay before reconnecting to a lost node (doubles up to [`Self::reconnect_max`]).
    pub reconnect_min: Duration,
    /// Longest delay between reconnection attempts: a returning node is back within it.
    pub reconnect_max: Duration,
    /// Interval of the liveness PING on each node's connections.
    pub health_interval: Duration,
    /// Entries read per `XRANGE` page when replaying history.
    pub history_page: usize,
    /// Live messages held per subscription while its history replays. When full, further
    /// live messages are not kept and the replay reads them from the stream instead, so a
    /// full buffer costs a round trip, not a message.
    pub catch_up_buffer: usize,
    /// How streams are capped.
    pub trim: Trim,
    /// Worker threads of the backend's own runtime ([`super::RedisBackend::start`] only): they
    /// run the Redis connections and the local fan-out of live messages.
    pub io_threads: usize,
    /// Prefix of every Redis name the backend uses (see [`super::keys`]). Servers sharing
    /// channels must use the same one; different ones keep deployments apart on shared nodes.
    pub namespace: String,
    /// Replicas that must have a publish batch before it is acknowledged (`WAIT`, after each
    /// batch; `COBRA_REDIS_REPLICA_ACKS`). 0 (the default): acknowledged once the primary has it,
    /// so a primary that dies before replicating can take its last publishes with it. With a
    /// Redis Cluster whose primaries have replicas, 1 makes a failover lose nothing
    /// acknowledged; publishes then fail ("not replicated") while a primary has no replica
    /// answering within [`Self::replica_ack_timeout`].
    pub replica_acks: usize,
    /// How long a batch waits for [`Self::replica_acks`] replicas (it blocks the node's
    /// command connection meanwhile, so keep it short).
    pub replica_ack_timeout: Duration,
    /// Redis Cluster: how many times one request (a publish, a read, a write, a delete) is
    /// re-sent after a `MOVED`, `ASK`, `TRYAGAIN`, `CLUSTERDOWN` or `MASTERDOWN` answer (slot
    /// migration, failover) before it fails with that answer. See [`super::cluster`].
    pub redirect_retries: u32,
    /// Redis Cluster: how long after its first redirection a request may still be re-sent;
    /// after it, the next redirection fails it (each attempt is bounded by
    /// [`Self::response_timeout`] too).
    pub redirect_timeout: Duration,
    /// PEM certificate(s) of the CA that signed the `rediss://` nodes' certificates
    /// (`--redis-tls-ca`); `None`: the webpki roots (public CAs).
    pub tls_ca_pem: Option<String>,
}

impl Default for RedisLimits {
    fn default() -> Self {
        RedisLimits {
            // 256 connections, each with a full publish pipeline (`max_publishes_in_flight`).
            max_in_flight: 64 * 1024,
            max_waiting_publishes: 64 * 1024,
            queue_timeout: Duration::from_millis(500),
            max_batch: 256,
            batches_in_flight: 2,
            response_timeout: Duration::from_secs(2),
            connect_timeout: Duration::from_secs(1),
            reconnect_min: Duration::from_millis(50),
            reconnect_max: Duration::from_secs(1),
            health_interval: Duration::from_secs(1),
            history_page: 500,
            catch_up_buffer: 4096,
            trim: Trim::Exact,
            io_threads: 1,
            namespace: "cobra".to_string(),
            replica_acks: 0,
            replica_ack_timeout: Duration::from_millis(100),
            redirect_retries: 16,
            redirect_timeout: Duration::from_secs(2),
            tls_ca_pem: None,
        }
    }
}
