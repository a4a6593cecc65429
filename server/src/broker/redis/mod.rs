//! The Redis backend: channels sharded over several Redis nodes, shared by many servers.
//!
//! `cobra run --redis 'redis://h1:6379;redis://:pw@h2:6380/1'` runs the broker on this backend;
//! several servers given the same list share the same channels, history and key/values.
//!
//! - **Sharding** ([`shard`]): each `<appkey>::<channel>` lives on one node chosen by
//!   rendezvous hashing of the node identities (`host:port/db`), so every server agrees and
//!   adding a node moves about `1/N` of the channels.
//! - **Layout** ([`keys`]): per channel a history stream (`cobra:h:…`, the entry id is the
//!   position `<ms>-<seq>`), a pub/sub channel (`cobra:p:…`) and a key/value stream of length
//!   one (`cobra:kv:…`); `cobra` is the default namespace.
//! - **Publish**: `XADD`, `XTRIM MAXLEN` and `PUBLISH` in one atomic script; concurrent publishes to a node
//!   are batched into one `EVALSHA` ([`batch`]) on its multiplexed connection ([`node`]); each is
//!   acknowledged only after Redis answered; a node has a bounded number of requests in flight.
//!   Streams hold `channel_max_length + 1` entries: the oldest is the trim marker, which tells
//!   exactly whether a resume position missed anything ([`scripts::HistoryPage::marker`]).
//! - **Live delivery** ([`hub`]): one pub/sub connection per node carries every subscription of
//!   this server on that node; messages are fanned out locally. Resuming from a position is
//!   exactly once and in order across the switch from history to live.
//! - **Faults**: a lost node fails only its channels; it is reconnected in the background and
//!   its subscriptions resume from their last position. Their subscribers are told: a
//!   `backend_unavailable` info when the node goes, `backend_resumed` when delivery goes on, and
//!   the loss (fast-forward info or `out_of_sync`) if their position expired meanwhile.
//!
//! - **TLS**: `rediss://` nodes are reached over TLS (rustls), their certificates checked
//!   against the webpki roots or the CA given with `--redis-tls-ca` ([`RedisLimits::tls_ca_pem`]).
//!
//! - **Redis Cluster** ([`cluster`]): `--redis-cluster` instead of a node list: channels go to
//!   the primary of their hash slot, following failovers and resharding.
//!
//! Needs Redis ≥ 7.0 (RESP3, `XINFO STREAM`'s `entries-added`, sharded pub/sub).

pub mod batch;
pub mod cluster;
pub mod hub;
pub mod keys;
pub mod limits;
pub mod node;
pub mod scripts;
pub mod shard;
pub mod url;

use std::borrow::Cow;
use std::sync::Arc;

use futures_util::TryFutureExt;
use redis::Value;

pub use self::limits::{RedisLimits, Trim};
pub use self::node::{NodeError, NodeStatus, Redirect};
pub use self::url::{NodeAddr, UrlError};

use self::batch::BatchSettings;
use self::cluster::Cluster;
use self::hub::Hub;
use self::keys::Layout;
use self::node::Node;
use self::shard::Rendezvous;
use crate::broker::backend::{
    Backend, BackendError, BoxFuture, ChannelKey, NodeHealth, StartAt, SubscribeAck,
};
use crate::broker::catchup::CatchUpCounters;
use crate::broker::mailbox::Subscriber;
use cobra_wire::Position;

/// Why the backend could not start.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The URL list is invalid.
    #[error(transparent)]
    Url(#[from] UrlError),
    /// No node could be reached at start (a node that is merely down while others answer does
    /// not stop the server: its channels fail until it returns).
    #[error("no Redis node reachable: {0}")]
    NoNodeReachable(String),
    /// No seed of the Redis Cluster answered `CLUSTER SLOTS`.
    #[error("Redis Cluster unreachable (no seed answered CLUSTER SLOTS): {0}")]
    Cluster(String),
    /// The backend's own runtime could not be started.
    #[error("cannot start the Redis I/O runtime: {0}")]
    Runtime(std::io::Error),
}

/// The Redis backend. Share it behind an `Arc`; dropping it stops its tasks.
pub struct RedisBackend {
    nodes: Vec<Arc<Node>>,
    ring: Rendezvous,
    layout: Layout,
    /// Redis Cluster mode: the routing follows the cluster (and `nodes` is empty).
    cluster: Option<Arc<Cluster>>,
    /// The backend's own I/O runtime when built with [`RedisBackend::start`].
    runtime: Option<tokio::runtime::Runtime>,
    /// Slow subscribers of every node ([`crate::broker::catchup`]).
    counters: Arc<CatchUpCounters>,
}

impl RedisBackend {
    /// Like [`RedisBackend::connect`], but on a runtime of its own (`limits.io_threads` threads
    /// named `cobra-redis`) that lives as long as the backend, so it can be built before the
    /// server's runtime exists and handed to it. Blocks until every node had its first
    /// connection attempt (at most `connect_timeout`). Safe to call from any thread.
    pub fn start(
        urls: &str,
        password: Option<&str>,
        channel_max_length: usize,
        limits: RedisLimits,
    ) -> Result<Self, ConnectError> {
        Self::start_mode(urls, password, channel_max_length, limits, false)
    }

    /// Like [`RedisBackend::start`] for a Redis Cluster reached through `seeds` (see
    /// [`RedisBackend::connect_cluster`]).
    pub fn start_cluster(
        seeds: &str,
        password: Option<&str>,
        channel_max_length: usize,
        limits: RedisLimits,
    ) -> Result<Self, ConnectError> {
        Self::start_mode(seeds, password, channel_max_length, limits, true)
    }

    fn start_mode(
        urls: &str,
        password: Option<&str>,
        channel_max_length: usize,
        limits: RedisLimits,
        cluster: bool,
    ) -> Result<Self, ConnectError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(limits.io_threads.max(1))
            .thread_name("cobra-redis")
            .enable_all()
            .build()
            .map_err(ConnectError::Runtime)?;
        // A helper thread, so that calling this from inside another runtime cannot panic.
        let connected = std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    runtime.block_on(async {
                        if cluster {
                            Self::connect_cluster(urls, password, channel_max_length, limits).await
                        } else {
                            Self::connect(urls, password, channel_max_length, limits).await
                        }
                    })
                })
                .join()
        });
        let mut backend = match connected {
            Ok(result) => result?,
            Err(_) => {
                return Err(ConnectError::Runtime(std::io::Error::other(
                    "the Redis connect thread panicked",
                )));
            }
        };
        backend.runtime = Some(runtime);
        Ok(backend)
    }

    /// Parses `urls` (`;`-separated `redis://[:password@]host[:port][/db]`; `password` applies to
    /// URLs without one), starts one supervisor per node and waits for each node's first
    /// connection attempt. Fails only when the list is invalid or no node at all answers.
    /// The backend's connections and tasks run on the calling tokio runtime, which must outlive
    /// the backend.
    pub async fn connect(
        urls: &str,
        password: Option<&str>,
        channel_max_length: usize,
        limits: RedisLimits,
    ) -> Result<Self, ConnectError> {
        let addrs = NodeAddr::parse_list(urls, password)?;
        let limits = Arc::new(limits);
        let ring = Rendezvous::new(addrs.iter().map(NodeAddr::identity));
        let runtime = tokio::runtime::Handle::current();
        let counters = Arc::new(CatchUpCounters::default());
        let nodes: Vec<Arc<Node>> = addrs
            .into_iter()
            .map(|a| {
                Node::new(
                    a,
                    Arc::clone(&limits),
                    channel_max_length,
                    runtime.clone(),
                    Arc::clone(&counters),
                )
            })
            .collect();
        let layout = Layout::new(&limits.namespace);
        let batch_settings = Self::batch_settings(&layout, &limits, channel_max_length, false);
        for node in &nodes {
            node.start(batch_settings.clone());
        }
        for node in &nodes {
            node.first_attempt().await;
        }
        let backend = RedisBackend {
            nodes,
            ring,
            layout,
            cluster: None,
            runtime: None,
            counters,
        };
        if !backend.nodes.iter().any(|n| n.is_connected()) {
            let names: Vec<&str> = backend.nodes.iter().map(|n| n.name()).collect();
            return Err(ConnectError::NoNodeReachable(names.join(", ")));
        }
        for node in backend.nodes.iter().filter(|n| !n.is_connected()) {
            tracing::warn!(
                node = node.name(),
                "Redis node unreachable at start; its channels fail until it answers"
            );
        }
        Ok(backend)
    }

    /// Connects to a Redis Cluster: `seeds` are a few of its nodes (`,`- or `;`-separated
    /// `redis[s]://` URLs; their credentials, TLS and database apply to every node the cluster
    /// announces). Reads the slot map, starts one supervisor per primary and follows the
    /// topology from then on (see [`cluster`]). Fails when the list is invalid or no seed
    /// answers `CLUSTER SLOTS`. Runs on the calling tokio runtime, which must outlive the
    /// backend.
    pub async fn connect_cluster(
        seeds: &str,
        password: Option<&str>,
        channel_max_length: usize,
        limits: RedisLimits,
    ) -> Result<Self, ConnectError> {
        let addrs = NodeAddr::parse_list(&seeds.replace(',', ";"), password)?;
        let limits = Arc::new(limits);
        let layout = Layout::new(&limits.namespace);
        let batch_settings = Self::batch_settings(&layout, &limits, channel_max_length, true);
        let counters = Arc::new(CatchUpCounters::default());
        let cluster = Cluster::new(
            addrs,
            limits,
            channel_max_length,
            batch_settings,
            Arc::clone(&counters),
        );
        if let Err(e) = cluster.start().await {
            cluster.shutdown();
            return Err(ConnectError::Cluster(e));
        }
        Ok(RedisBackend {
            nodes: Vec::new(),
            ring: Rendezvous::new(Vec::<String>::new()),
            layout,
            cluster: Some(cluster),
            counters,
            runtime: None,
        })
    }

    fn batch_settings(
        layout: &Layout,
        limits: &RedisLimits,
        channel_max_length: usize,
        sharded: bool,
    ) -> BatchSettings {
        BatchSettings {
            max_length: channel_max_length,
            trim: limits.trim.operator(),
            history_prefix: layout.history(""),
            live_prefix: layout.live(""),
            sharded,
        }
    }

    /// The nodes, in the order given (in a cluster: the primaries holding slots, in slot order).
    pub fn node_names(&self) -> Vec<String> {
        self.all_nodes()
            .iter()
            .map(|n| n.name().to_string())
            .collect()
    }

    fn all_nodes(&self) -> Vec<Arc<Node>> {
        match &self.cluster {
            Some(cluster) => cluster.primaries(),
            None => self.nodes.clone(),
        }
    }

    /// Index (in the URL order) of the node holding `channel_key` (`<appkey>::<channel>`); in a
    /// cluster, its index in [`RedisBackend::node_names`] (the order changes with the topology).
    pub fn node_index(&self, channel_key: &str) -> usize {
        match &self.cluster {
            Some(cluster) => {
                let key = self::cluster::slots::tagged(channel_key);
                let owner = cluster.route(&key).ok();
                cluster
                    .primaries()
                    .iter()
                    .position(|n| owner.as_ref().is_some_and(|o| Arc::ptr_eq(n, o)))
                    .unwrap_or(0)
            }
            None => self.ring.node_for(channel_key),
        }
    }

    /// The node holding `channel_key` and the channel's name there (hash-tagged in a cluster).
    fn route<'k>(&self, channel_key: &'k str) -> Result<(Arc<Node>, Cow<'k, str>), NodeError> {
        match &self.cluster {
            Some(cluster) => {
                let key = self::cluster::slots::tagged(channel_key);
                Ok((cluster.route(&key)?, Cow::Owned(key)))
            }
            None => Ok((
                Arc::clone(&self.nodes[self.ring.node_for(channel_key)]),
                Cow::Borrowed(channel_key),
            )),
        }
    }

    /// Detailed per-node health (a superset of [`Backend::health`]).
    pub fn status(&self) -> Vec<NodeStatus> {
        self.all_nodes().iter().map(|n| n.status()).collect()
    }

    /// Appends `payload` to the channel's history and pushes it to every server's subscribers;
    /// returns its position once Redis has answered.
    ///
    /// The publish is queued when this is called, not when the future is first polled:
    /// publishes to one channel land in the order of the calls (see [`Node::start_publish`]).
    pub fn publish_raw(
        &self,
        channel_key: &str,
        payload: Arc<str>,
    ) -> BoxFuture<'static, Result<Position, NodeError>> {
        match self.route(channel_key) {
            Ok((node, key)) => Box::pin(node.publish(Arc::from(key.as_ref()), payload)),
            Err(e) => Box::pin(std::future::ready(Err(e))),
        }
    }

    /// Runs `cmd` (whose keys are the channel's) on the node holding `channel_key`; in a
    /// cluster, following redirections (see [`Cluster::request`]). Returns the node that
    /// answered with the answer.
    async fn query(
        &self,
        channel_key: &str,
        cmd: impl FnOnce(&str) -> redis::Cmd,
    ) -> Result<(Arc<Node>, Value), NodeError> {
        let (node, name) = self.route(channel_key)?;
        let cmd = cmd(&name);
        match &self.cluster {
            Some(cluster) => cluster.request(&name, node, cmd).await,
            None => {
                let reply = node
                    .command(|mut c| async move { cmd.query_async::<Value>(&mut c).await })
                    .await?;
                Ok((node, reply))
            }
        }
    }

    /// Stores `value` as the channel's key/value entry (a stream of length one, so the write
    /// gets a position like the reference server's).
    pub async fn write_raw(
        &self,
        channel_key: &str,
        value: Arc<str>,
    ) -> Result<Position, NodeError> {
        let (node, reply) = self
            .query(channel_key, |name| {
                let mut cmd = redis::cmd("XADD");
                cmd.arg(self.layout.value(name))
                    .arg("MAXLEN")
                    .arg(1)
                    .arg("*")
                    .arg("v")
                    .arg(value.as_bytes());
                cmd
            })
            .await?;
        let id = scripts::id(&reply).map_err(|e| node.reply_error(e))?;
        Ok(Position {
            ms: id.0,
            seq: id.1,
        })
    }

    /// The channel's key/value entry, or with `at` the history message at that position.
    pub async fn read_raw(
        &self,
        channel_key: &str,
        at: Option<Position>,
    ) -> Result<Option<String>, NodeError> {
        let (node, reply) = self
            .query(channel_key, |name| match at {
                None => {
                    let mut cmd = redis::cmd("XREVRANGE");
                    cmd.arg(self.layout.value(name))
                        .arg("+")
                        .arg("-")
                        .arg("COUNT")
                        .arg(1);
                    cmd
                }
                Some(p) => {
                    let id = p.to_string();
                    let mut cmd = redis::cmd("XRANGE");
                    cmd.arg(self.layout.history(name)).arg(&id).arg(&id);
                    cmd
                }
            })
            .await?;
        let entries = scripts::entries(reply).map_err(|e| node.reply_error(e))?;
        Ok(entries.into_iter().next().map(|e| e.payload))
    }

    /// Deletes the channel's key/value entry.
    pub async fn delete_raw(&self, channel_key: &str) -> Result<(), NodeError> {
        self.query(channel_key, |name| {
            let mut cmd = redis::cmd("DEL");
            cmd.arg(self.layout.value(name));
            cmd
        })
        .await?;
        Ok(())
    }

    /// Subscribes `subscriber` to the channel, replaying after `after` first (`None`: only new
    /// messages). See [`hub`] for the exactly-once guarantee.
    pub async fn subscribe_raw(
        &self,
        channel_key: &str,
        after: Option<Position>,
        subscriber: Arc<Subscriber>,
    ) -> Result<SubscribeAck, NodeError> {
        let (node, key) = self.route(channel_key)?;
        Hub::subscribe(&node, &key, after, subscriber).await
    }

    /// Removes `subscriber` from the channel.
    pub fn unsubscribe_raw(&self, channel_key: &str, subscriber: &Arc<Subscriber>) {
        match &self.cluster {
            // The channel may have moved since it was subscribed: look on every node.
            Some(cluster) => {
                let key = self::cluster::slots::tagged(channel_key);
                for node in cluster.nodes() {
                    Hub::unsubscribe(&node, &key, subscriber);
                }
            }
            None => Hub::unsubscribe(
                &self.nodes[self.ring.node_for(channel_key)],
                channel_key,
                subscriber,
            ),
        }
    }
}

impl Drop for RedisBackend {
    fn drop(&mut self) {
        for node in &self.nodes {
            node.shutdown();
        }
        if let Some(cluster) = &self.cluster {
            cluster.shutdown();
        }
        if let Some(runtime) = self.runtime.take() {
            // Never blocks, so dropping the backend inside another runtime is fine.
            runtime.shutdown_background();
        }
    }
}

impl From<NodeError> for BackendError {
    fn from(e: NodeError) -> Self {
        match e {
            NodeError::Overloaded { .. } => BackendError::Overloaded(e.to_string()),
            NodeError::Down { ref node }
            | NodeError::Timeout { ref node, .. }
            | NodeError::Failed { ref node, .. }
            | NodeError::Redirected { ref node, .. }
            | NodeError::Reply { ref node, .. } => BackendError::Unavailable {
                node: node.clone(),
                reason: e.to_string(),
            },
        }
    }
}

impl Backend for RedisBackend {
    fn publish(
        &self,
        channel: &ChannelKey,
        payload: Arc<str>,
    ) -> BoxFuture<'_, Result<Position, BackendError>> {
        // Queued now (not on first poll): the caller's call order is the landing order.
        if self.cluster.is_some() {
            return Box::pin(self.publish_raw(channel.as_str(), payload).err_into());
        }
        let key = channel.shared();
        let node = &self.nodes[self.ring.node_for(&key)];
        Box::pin(node.publish(key, payload).err_into())
    }

    fn subscribe(
        &self,
        channel: &ChannelKey,
        start: StartAt,
        subscriber: Arc<Subscriber>,
    ) -> BoxFuture<'_, Result<SubscribeAck, BackendError>> {
        let key = channel.clone();
        let after = match start {
            StartAt::Live => None,
            StartAt::After(p) => Some(p),
        };
        Box::pin(async move { Ok(self.subscribe_raw(key.as_str(), after, subscriber).await?) })
    }

    fn unsubscribe(&self, channel: &ChannelKey, subscriber: &Arc<Subscriber>) {
        self.unsubscribe_raw(channel.as_str(), subscriber)
    }

    fn write(
        &self,
        channel: &ChannelKey,
        value: Arc<str>,
    ) -> BoxFuture<'_, Result<Position, BackendError>> {
        let key = channel.clone();
        Box::pin(async move { Ok(self.write_raw(key.as_str(), value).await?) })
    }

    fn read(
        &self,
        channel: &ChannelKey,
        at: Option<Position>,
    ) -> BoxFuture<'_, Result<Option<Arc<str>>, BackendError>> {
        let key = channel.clone();
        Box::pin(async move {
            match (self.read_raw(key.as_str(), at).await?, at) {
                (Some(v), _) => Ok(Some(Arc::from(v))),
                // Like the embedded backend: a missing history position is an error, a missing
                // value is null.
                (None, Some(p)) => Err(BackendError::NoSuchPosition(p)),
                (None, None) => Ok(None),
            }
        })
    }

    fn delete(&self, channel: &ChannelKey) -> BoxFuture<'_, Result<(), BackendError>> {
        let key = channel.clone();
        Box::pin(async move { Ok(self.delete_raw(key.as_str()).await?) })
    }

    fn catch_up_counters(&self) -> Arc<CatchUpCounters> {
        Arc::clone(&self.counters)
    }

    fn health(&self) -> Vec<NodeHealth> {
        self.status().into_iter().map(|s| s.health).collect()
    }
}
