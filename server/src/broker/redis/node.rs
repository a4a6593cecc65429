//! One Redis node: its two connections, their supervisor, and bounded request execution.
//!
//! Each node has exactly two connections, shared by everything this server does with it:
//!
//! - a **command** connection (RESP3, multiplexed): publishes, history reads, key/value. The
//!   redis crate writes every request queued while the previous write was in flight in one
//!   batch and matches answers in order, so concurrent publishes share round trips instead of
//!   taking turns;
//! - a **live** connection (RESP3, multiplexed) holding the `SUBSCRIBE`s of all this server's
//!   subscriptions on the node. Pushed messages are handed to the [`Hub`] by a callback that
//!   runs on the connection's reader and only does non-blocking work, so there is no queue
//!   between Redis and the subscribers' own bounded queues.
//!
//! A supervisor task connects, PINGs both connections every `health_interval`, notices a lost
//! connection at once (the redis crate reports it as a disconnection push), and reconnects with
//! exponential backoff capped at `reconnect_max`. While a node is down its requests fail at once
//! with [`NodeError::Down`]; other nodes are not affected.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::Weak;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use parking_lot::RwLock;
use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, PushInfo, PushKind, RedisResult, Value};
use tokio::sync::{Notify, Semaphore, mpsc, oneshot};

use super::batch::{self, BatchSettings, Job};
use super::hub::Hub;
use super::keys::Layout;
use super::limits::RedisLimits;
use super::scripts::{RawId, ReplyError};
use super::url::NodeAddr;
use crate::broker::backend::NodeHealth;
use crate::broker::catchup::CatchUpCounters;
use cobra_wire::Position;

/// Why a request to a node failed. The node is named in every message.
#[derive(Debug, Clone, thiserror::Error)]
pub enum NodeError {
    /// The node is not connected (it is being reconnected in the background).
    #[error("Redis node {node} is down (reconnecting)")]
    Down {
        /// The node.
        node: String,
    },
    /// Too many requests are already waiting for this node.
    #[error("Redis node {node} is overloaded: {in_flight} requests in flight")]
    Overloaded {
        /// The node.
        node: String,
        /// Requests in flight when this one gave up waiting.
        in_flight: usize,
    },
    /// Redis did not answer in time.
    #[error("Redis node {node} did not answer within {after:?}")]
    Timeout {
        /// The node.
        node: String,
        /// The timeout.
        after: Duration,
    },
    /// Redis answered with an error, or the connection failed during the request.
    #[error("Redis node {node} failed: {reason}")]
    Failed {
        /// The node.
        node: String,
        /// Redis's error text.
        reason: String,
    },
    /// Redis Cluster answered that the request belongs elsewhere or must wait (`MOVED`, `ASK`,
    /// `TRYAGAIN`, `CLUSTERDOWN`, `MASTERDOWN`): the cluster re-sends it (see
    /// [`super::cluster`]) and fails it with this when the redirections run out.
    #[error("Redis node {node} failed: {reason}")]
    Redirected {
        /// The node.
        node: String,
        /// Redis's error text.
        reason: String,
        /// What to do about it.
        redirect: Redirect,
    },
    /// Redis answered something the backend does not understand.
    #[error("Redis node {node}: {source}")]
    Reply {
        /// The node.
        node: String,
        /// What was wrong.
        source: ReplyError,
    },
}

/// What a Redis Cluster redirection asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Redirect {
    /// `MOVED <slot> <host>:<port>`: the slot is served by that node from now on.
    Moved {
        /// The slot.
        slot: u16,
        /// The node's host (empty: the host of the node that answered).
        host: String,
        /// The node's port.
        port: u16,
    },
    /// `ASK <slot> <host>:<port>`: the slot is being migrated and the key is there already:
    /// this request (only) goes to that node, preceded by `ASKING`.
    Ask {
        /// The slot.
        slot: u16,
        /// The node's host (empty: the host of the node that answered).
        host: String,
        /// The node's port.
        port: u16,
    },
    /// `TRYAGAIN` (a multi-key request during a migration), `CLUSTERDOWN`, `MASTERDOWN`
    /// (failover under way): the same request again after a short wait.
    Retry,
}

impl Redirect {
    /// The redirection `e` is, if it is one.
    pub fn of(e: &redis::RedisError) -> Option<Redirect> {
        use redis::{ErrorKind, ServerErrorKind as S};
        let target = || {
            let (addr, slot) = e.redirect_node()?;
            let (host, port) = addr.rsplit_once(':')?;
            let port: u16 = port.parse().ok().filter(|p| *p > 0)?;
            // `?` is what a node says when it does not know its peer's address.
            let host = host.trim_start_matches('[').trim_end_matches(']');
            let host = if host == "?" { "" } else { host };
            Some((slot, host.to_string(), port))
        };
        match e.kind() {
            ErrorKind::Server(S::Moved) => {
                target().map(|(slot, host, port)| Redirect::Moved { slot, host, port })
            }
            ErrorKind::Server(S::Ask) => {
                target().map(|(slot, host, port)| Redirect::Ask { slot, host, port })
            }
            ErrorKind::Server(S::TryAgain | S::ClusterDown | S::MasterDown) => {
                Some(Redirect::Retry)
            }
            _ => None,
        }
    }
}

/// Counters of one node, for stats and `/metrics`.
#[derive(Debug, Default)]
pub struct NodeStats {
    connected: AtomicBool,
    errors: AtomicU64,
    published: AtomicU64,
    reconnects: AtomicU64,
}

/// A snapshot of one node's health: what every backend reports, and what only Redis knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeStatus {
    /// What every backend reports: here `node` is `redis://host:port/db` (no credentials),
    /// `connected` means both connections are up, `queue_depth` counts the requests waiting for a
    /// slot or for Redis's answer and `reconnects` the (re)connections after the first one.
    pub health: NodeHealth,
    /// Channels this server is subscribed to on the node.
    pub live_channels: u64,
}

#[derive(Default)]
struct Link {
    generation: u64,
    command: Option<MultiplexedConnection>,
    live: Option<MultiplexedConnection>,
}

/// One Redis node. Shared (`Arc`) by the backend, its supervisor and the live callbacks.
pub struct Node {
    addr: NodeAddr,
    name: String,
    limits: Arc<RedisLimits>,
    link: RwLock<Link>,
    /// The `max_in_flight` slots; a queued publish holds its slot inside its [`Job`].
    permits: Arc<Semaphore>,
    stats: NodeStats,
    /// Wakes the supervisor: a connection was lost or a request saw an I/O error.
    wake: Notify,
    closed: AtomicBool,
    generations: AtomicU64,
    /// Connection attempts made so far (success or not), so start-up can wait for the first.
    attempts: tokio::sync::watch::Sender<u64>,
    /// Publishes waiting for the batch writer (bounded by the in-flight slots).
    jobs: mpsc::Sender<Job>,
    /// Publishes waiting for a slot, oldest first. Every publish goes through here, so none
    /// overtakes one that waits ([`Node::start_publish`]).
    waiting: parking_lot::Mutex<VecDeque<Job>>,
    jobs_rx: parking_lot::Mutex<Option<mpsc::Receiver<Job>>>,
    /// The runtime the node's connections and background tasks run on.
    runtime: tokio::runtime::Handle,
    /// This server's subscriptions on the node.
    pub(crate) hub: Hub,
    /// A node of a Redis Cluster: shard channels (`SSUBSCRIBE`), and redirections or a lost
    /// connection wake the cluster's topology refresh (see [`super::cluster`]).
    pub(crate) cluster: Option<Arc<Notify>>,
    /// `SUNSUBSCRIBE`s we sent and whose confirmation has not come yet: any other
    /// `sunsubscribe` push is Redis dropping our subscriptions (their slot moved away).
    pending_sunsubscribes: AtomicU64,
    /// Numbers live connections, so that pushes of a replaced one are ignored.
    live_epoch: AtomicU64,
    /// The cluster this node is a primary of: redirected publishes are handed to it.
    pub(crate) router: std::sync::OnceLock<Weak<super::cluster::Cluster>>,
}

impl Node {
    /// A node, not yet connected: call [`Node::supervise`] in a task on `runtime`.
    pub fn new(
        addr: NodeAddr,
        limits: Arc<RedisLimits>,
        channel_max_length: usize,
        runtime: tokio::runtime::Handle,
        counters: Arc<CatchUpCounters>,
    ) -> Arc<Self> {
        Self::with_cluster(addr, limits, channel_max_length, runtime, counters, None)
    }

    /// Like [`Node::new`], for a primary of a Redis Cluster when `cluster` is the notifier of
    /// the cluster's topology refresh.
    pub(crate) fn with_cluster(
        addr: NodeAddr,
        limits: Arc<RedisLimits>,
        channel_max_length: usize,
        runtime: tokio::runtime::Handle,
        counters: Arc<CatchUpCounters>,
        cluster: Option<Arc<Notify>>,
    ) -> Arc<Self> {
        let (jobs, jobs_rx) = mpsc::channel(limits.max_in_flight.max(1));
        Arc::new(Node {
            jobs,
            jobs_rx: parking_lot::Mutex::new(Some(jobs_rx)),
            waiting: parking_lot::Mutex::new(VecDeque::new()),
            runtime,
            name: addr.to_string(),
            permits: Arc::new(Semaphore::new(limits.max_in_flight)),
            hub: Hub::new(
                Layout::new(&limits.namespace),
                channel_max_length,
                limits.catch_up_buffer,
                counters,
            ),
            addr,
            limits,
            link: RwLock::new(Link::default()),
            stats: NodeStats::default(),
            wake: Notify::new(),
            closed: AtomicBool::new(false),
            generations: AtomicU64::new(0),
            attempts: tokio::sync::watch::Sender::new(0),
            cluster,
            pending_sunsubscribes: AtomicU64::new(0),
            live_epoch: AtomicU64::new(0),
            router: std::sync::OnceLock::new(),
        })
    }

    /// `redis://host:port/db`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The host, as given or announced.
    pub(crate) fn host(&self) -> &str {
        self.addr.host()
    }

    /// Runs `task` on the node's runtime.
    pub fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) {
        self.runtime.spawn(task);
    }

    /// The limits in force.
    pub fn limits(&self) -> &RedisLimits {
        &self.limits
    }

    /// Whether both connections are up.
    pub fn is_connected(&self) -> bool {
        self.stats.connected.load(Ordering::Relaxed)
    }

    /// The current connection generation (bumped on every successful connect).
    pub fn generation(&self) -> u64 {
        self.link.read().generation
    }

    /// Counts one published message.
    pub fn count_published(&self) {
        self.stats.published.fetch_add(1, Ordering::Relaxed);
    }

    /// Health snapshot.
    pub fn status(&self) -> NodeStatus {
        NodeStatus {
            health: NodeHealth {
                node: self.name.clone(),
                connected: self.is_connected(),
                queue_depth: (self.limits.max_in_flight - self.permits.available_permits()
                    + self.waiting.lock().len()) as u64,
                errors: self.stats.errors.load(Ordering::Relaxed),
                published: self.stats.published.load(Ordering::Relaxed),
                reconnects: self.stats.reconnects.load(Ordering::Relaxed),
            },
            live_channels: self.hub.channel_count() as u64,
        }
    }

    /// Resolves once the supervisor's first connection attempt has finished (either way).
    pub async fn first_attempt(&self) {
        let mut rx = self.attempts.subscribe();
        let _ = rx.wait_for(|n| *n > 0).await;
    }

    /// Stops the supervisor; requests fail from now on.
    pub fn shutdown(&self) {
        self.closed.store(true, Ordering::Relaxed);
        self.wake.notify_one();
        *self.link.write() = Link::default();
        self.stats.connected.store(false, Ordering::Relaxed);
    }

    /// A request that waited `response_timeout` without an answer (counted as an error).
    pub(crate) fn timeout_error(&self) -> NodeError {
        self.stats.errors.fetch_add(1, Ordering::Relaxed);
        NodeError::Timeout {
            node: self.name.clone(),
            after: self.limits.response_timeout,
        }
    }

    pub(crate) fn down_error(&self) -> NodeError {
        NodeError::Down {
            node: self.name.clone(),
        }
    }

    pub(crate) fn failed(&self, reason: String) -> NodeError {
        self.stats.errors.fetch_add(1, Ordering::Relaxed);
        NodeError::Failed {
            node: self.name.clone(),
            reason,
        }
    }

    pub(crate) fn reply_error(&self, source: ReplyError) -> NodeError {
        self.stats.errors.fetch_add(1, Ordering::Relaxed);
        NodeError::Reply {
            node: self.name.clone(),
            source,
        }
    }

    /// Runs one request on the command connection, bounded: it waits at most `queue_timeout`
    /// for one of `max_in_flight` slots and at most `response_timeout` for the answer.
    pub async fn command<T, F, Fut>(&self, op: F) -> Result<T, NodeError>
    where
        F: FnOnce(MultiplexedConnection) -> Fut,
        Fut: Future<Output = RedisResult<T>>,
    {
        let conn = self.link.read().command.clone();
        self.run(conn, op).await
    }

    /// Like [`Node::command`], on the live (pub/sub) connection, for `SUBSCRIBE`/`UNSUBSCRIBE`.
    /// Returns the generation of the connection used with the result.
    pub async fn live<T, F, Fut>(&self, op: F) -> Result<(u64, T), NodeError>
    where
        F: FnOnce(MultiplexedConnection) -> Fut,
        Fut: Future<Output = RedisResult<T>>,
    {
        let (generation, conn) = {
            let link = self.link.read();
            (link.generation, link.live.clone())
        };
        self.run(conn, op).await.map(|v| (generation, v))
    }

    async fn run<T, F, Fut>(
        &self,
        conn: Option<MultiplexedConnection>,
        op: F,
    ) -> Result<T, NodeError>
    where
        F: FnOnce(MultiplexedConnection) -> Fut,
        Fut: Future<Output = RedisResult<T>>,
    {
        let Some(conn) = conn else {
            return Err(self.down_error());
        };
        let _slot = SlotGuard {
            node: self,
            permit: Some(self.acquire().await?),
        };
        self.exec(conn, op).await
    }

    /// Takes one of the `max_in_flight` slots, waiting at most `queue_timeout`.
    async fn acquire(&self) -> Result<tokio::sync::SemaphorePermit<'_>, NodeError> {
        if let Ok(p) = self.permits.try_acquire() {
            return Ok(p);
        }
        match tokio::time::timeout(self.limits.queue_timeout, self.permits.acquire()).await {
            Ok(Ok(p)) => Ok(p),
            _ => {
                self.stats.errors.fetch_add(1, Ordering::Relaxed);
                let in_flight = self.limits.max_in_flight - self.permits.available_permits();
                Err(NodeError::Overloaded {
                    node: self.name.clone(),
                    in_flight,
                })
            }
        }
    }

    /// Runs `op` with the response timeout and maps its errors (no slot taken: callers hold one).
    async fn exec<T, F, Fut>(&self, conn: MultiplexedConnection, op: F) -> Result<T, NodeError>
    where
        F: FnOnce(MultiplexedConnection) -> Fut,
        Fut: Future<Output = RedisResult<T>>,
    {
        match tokio::time::timeout(self.limits.response_timeout, op(conn)).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => {
                self.stats.errors.fetch_add(1, Ordering::Relaxed);
                if e.is_io_error() || e.is_unrecoverable_error() || e.is_connection_dropped() {
                    self.wake.notify_one(); // let the supervisor check the link now
                }
                if let Some(redirect) = Redirect::of(&e) {
                    self.topology_changed();
                    return Err(NodeError::Redirected {
                        node: self.name.clone(),
                        reason: e.to_string(),
                        redirect,
                    });
                }
                Err(NodeError::Failed {
                    node: self.name.clone(),
                    reason: e.to_string(),
                })
            }
            Err(_) => {
                self.stats.errors.fetch_add(1, Ordering::Relaxed);
                self.wake.notify_one();
                Err(NodeError::Timeout {
                    node: self.name.clone(),
                    after: self.limits.response_timeout,
                })
            }
        }
    }

    /// Runs one batch call for the writer: the publishes in it already hold their slots.
    pub(crate) async fn command_for_batch<T, F, Fut>(&self, op: F) -> Result<T, NodeError>
    where
        F: FnOnce(MultiplexedConnection) -> Fut,
        Fut: Future<Output = RedisResult<T>>,
    {
        let conn = self
            .link
            .read()
            .command
            .clone()
            .ok_or_else(|| self.down_error())?;
        self.exec(conn, op).await
    }

    /// Queues a publish of `payload` to channel `key` (`<appkey>::<channel>`: its history stream
    /// and its pub/sub channel) for the batch writer, **now**: publishes queued on a node land
    /// in Redis in the order of these calls, whatever order their answers are awaited in (one
    /// connection's publishes to a channel keep their order). [`Node::publish`] wraps the
    /// answer in a future.
    ///
    /// When all `max_in_flight` slots are taken the publish waits for one in a FIFO (at most
    /// `max_waiting_publishes`, each at most `queue_timeout`, then "overloaded"); a later
    /// publish never overtakes a waiting one. Fails at once when the node is down or the FIFO
    /// is full.
    pub fn start_publish(
        &self,
        key: Arc<str>,
        payload: Arc<str>,
    ) -> Result<oneshot::Receiver<Result<RawId, NodeError>>, NodeError> {
        if !self.is_connected() {
            return Err(self.down_error()); // fail fast while the node is away
        }
        let (reply, answer) = oneshot::channel();
        let mut job = Job {
            key,
            payload,
            reply,
            queued: std::time::Instant::now(),
            slot: None,
            asking: false,
            redirects: 0,
            first_redirect: None,
        };
        let mut waiting = self.waiting.lock();
        // The usual case (the FIFO only fills under saturation): straight to the writer.
        if waiting.is_empty()
            && let Ok(slot) = Arc::clone(&self.permits).try_acquire_owned()
        {
            job.slot = Some(slot);
            self.hand_to_writer(job);
            return Ok(answer);
        }
        if waiting.len() >= self.limits.max_waiting_publishes.max(1) {
            drop(waiting);
            self.stats.errors.fetch_add(1, Ordering::Relaxed);
            return Err(NodeError::Overloaded {
                node: self.name.clone(),
                in_flight: self.limits.max_in_flight,
            });
        }
        waiting.push_back(job);
        self.move_waiting(&mut waiting);
        Ok(answer)
    }

    /// Gives a job holding its slot to the writer. Its queue cannot be full: it holds
    /// `max_in_flight` jobs and each holds one of as many slots. Closed only when the node is
    /// going away.
    fn hand_to_writer(&self, job: Job) {
        if let Err(e) = self.jobs.try_send(job) {
            let job = match e {
                mpsc::error::TrySendError::Full(j) | mpsc::error::TrySendError::Closed(j) => j,
            };
            job.answer(Err(self.down_error()));
        }
    }

    /// Queues a publish redirected here by the cluster (see [`super::cluster`]) like
    /// [`Node::start_publish`] does a new one; a refusal (node down, FIFO full) answers it.
    pub(crate) fn requeue(&self, mut job: Job) {
        job.slot = None; // the slot of the node it came from
        if !self.is_connected() {
            job.answer(Err(self.down_error()));
            return;
        }
        job.queued = std::time::Instant::now();
        let mut waiting = self.waiting.lock();
        if waiting.is_empty()
            && let Ok(slot) = Arc::clone(&self.permits).try_acquire_owned()
        {
            job.slot = Some(slot);
            self.hand_to_writer(job);
            return;
        }
        if waiting.len() >= self.limits.max_waiting_publishes.max(1) {
            drop(waiting);
            self.stats.errors.fetch_add(1, Ordering::Relaxed);
            job.answer(Err(NodeError::Overloaded {
                node: self.name.clone(),
                in_flight: self.limits.max_in_flight,
            }));
            return;
        }
        waiting.push_back(job);
        self.move_waiting(&mut waiting);
    }

    /// Publishes of a batch Redis Cluster redirected: handed to the cluster to re-send, or
    /// failed with `error` outside a cluster.
    pub(crate) fn redirected(self: &Arc<Self>, jobs: Vec<Job>, error: NodeError) {
        match self.router.get().and_then(Weak::upgrade) {
            Some(cluster) => cluster.redirect_publishes(self, jobs, error),
            None => {
                for job in jobs {
                    job.answer(Err(error.clone()));
                }
            }
        }
    }

    /// Moves waiting publishes, oldest first, to the writer while slots are free; fails those
    /// that waited `queue_timeout`. Called whenever a slot may have been freed.
    pub(crate) fn refill_publishes(&self) {
        let mut waiting = self.waiting.lock();
        self.move_waiting(&mut waiting);
    }

    fn move_waiting(&self, waiting: &mut VecDeque<Job>) {
        while let Some(job) = waiting.front() {
            if job.queued.elapsed() >= self.limits.queue_timeout {
                if let Some(job) = waiting.pop_front() {
                    self.stats.errors.fetch_add(1, Ordering::Relaxed);
                    let error = NodeError::Overloaded {
                        node: self.name.clone(),
                        in_flight: self.limits.max_in_flight,
                    };
                    job.answer(Err(error));
                }
                continue;
            }
            let Ok(slot) = Arc::clone(&self.permits).try_acquire_owned() else {
                return;
            };
            let Some(mut job) = waiting.pop_front() else {
                return;
            };
            job.slot = Some(slot);
            self.hand_to_writer(job);
        }
    }

    /// Queues a publish (see [`Node::start_publish`]) and returns its answer to come.
    pub fn publish(self: &Arc<Self>, key: Arc<str>, payload: Arc<str>) -> PublishReply {
        PublishReply {
            node: Arc::clone(self),
            state: match self.start_publish(key, payload) {
                Ok(answer) => ReplyState::Waiting(answer),
                Err(refused) => ReplyState::Refused(refused),
            },
        }
    }

    /// Starts the node's supervisor and publish writer on its runtime.
    pub fn start(self: &Arc<Self>, batch_settings: BatchSettings) {
        self.spawn(Arc::clone(self).supervise());
        if let Some(jobs) = self.jobs_rx.lock().take() {
            self.spawn(batch::writer(Arc::downgrade(self), jobs, batch_settings));
        }
    }

    /// Keeps the node connected until [`Node::shutdown`]: connect, watch, reconnect.
    pub async fn supervise(self: Arc<Self>) {
        let mut backoff = self.limits.reconnect_min;
        let mut ever_connected = false;
        let mut failures_logged = 0u32;
        while !self.closed.load(Ordering::Relaxed) {
            let attempt = self.connect().await;
            self.attempts.send_modify(|n| *n += 1);
            match attempt {
                Ok(generation) => {
                    if ever_connected {
                        self.stats.reconnects.fetch_add(1, Ordering::Relaxed);
                        tracing::info!(node = %self.name, "Redis node reconnected");
                    } else {
                        tracing::info!(node = %self.name, "Redis node connected");
                    }
                    ever_connected = true;
                    failures_logged = 0;
                    backoff = self.limits.reconnect_min;
                    Hub::on_up(&self, generation);
                    self.watch().await;
                    if self.closed.load(Ordering::Relaxed) {
                        break;
                    }
                    tracing::warn!(node = %self.name, "Redis node connection lost; its channels fail until it returns");
                    self.take_down(generation);
                }
                Err(e) => {
                    self.stats.errors.fetch_add(1, Ordering::Relaxed);
                    // Log the first failures, then only every 30th, so a long outage does not flood.
                    if failures_logged < 3 || failures_logged.is_multiple_of(30) {
                        tracing::warn!(node = %self.name, error = %e, retry_in = ?backoff, "cannot connect to Redis node");
                    }
                    failures_logged += 1;
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = self.wake.notified() => {}
                    }
                    backoff = (backoff * 2).min(self.limits.reconnect_max);
                }
            }
        }
    }

    /// Waits until a connection is lost (or shutdown), PINGing both every `health_interval`.
    async fn watch(self: &Arc<Self>) {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(self.limits.health_interval) => {}
                _ = self.wake.notified() => {}
            }
            if self.closed.load(Ordering::Relaxed) {
                return;
            }
            let (command, live) = {
                let link = self.link.read();
                (link.command.clone(), link.live.clone())
            };
            let (Some(mut command), Some(mut live)) = (command, live) else {
                return;
            };
            let timeout = self.limits.response_timeout;
            let ping = async {
                let a: RedisResult<Value> = redis::cmd("PING").query_async(&mut command).await;
                let b: RedisResult<Value> = redis::cmd("PING").query_async(&mut live).await;
                a.is_ok() && b.is_ok()
            };
            if !matches!(tokio::time::timeout(timeout, ping).await, Ok(true)) {
                return;
            }
            // Subscriptions whose history replay failed (a timeout, a lost page) retry here.
            Hub::restart_stalled(self);
        }
    }

    /// Wakes the cluster's topology refresh (nothing outside a cluster).
    pub(crate) fn topology_changed(&self) {
        if let Some(refresh) = &self.cluster {
            refresh.notify_one();
        }
    }

    /// Whether this is a node of a Redis Cluster (shard channels, hash-tagged keys).
    pub(crate) fn is_cluster(&self) -> bool {
        self.cluster.is_some()
    }

    /// `SUBSCRIBE` (or `SSUBSCRIBE` in a cluster) `name` on the live connection, confirmed.
    pub(crate) async fn subscribe_live(&self, name: String) -> Result<u64, NodeError> {
        if self.is_cluster() {
            // The redis crate has no `ssubscribe` on a plain multiplexed connection (only on
            // its cluster connection, which would hide which node holds the subscription): one
            // channel is one `ssubscribe` confirmation, a push that answers the request.
            let (generation, _): (u64, Value) = self
                .live(|mut c| async move {
                    redis::cmd("SSUBSCRIBE").arg(name).query_async(&mut c).await
                })
                .await?;
            return Ok(generation);
        }
        let (generation, ()) = self
            .live(|mut c| async move { c.subscribe(name).await })
            .await?;
        Ok(generation)
    }

    /// `UNSUBSCRIBE` (or `SUNSUBSCRIBE`) `name` on the live connection.
    pub(crate) async fn unsubscribe_live(&self, name: String) -> Result<(), NodeError> {
        if self.is_cluster() {
            self.pending_sunsubscribes.fetch_add(1, Ordering::Relaxed);
            let _: (u64, Value) = self
                .live(|mut c| async move {
                    redis::cmd("SUNSUBSCRIBE")
                        .arg(name)
                        .query_async(&mut c)
                        .await
                })
                .await?;
            return Ok(());
        }
        self.live(|mut c| async move { c.unsubscribe(name).await })
            .await
            .map(|_| ())
    }

    /// A `sunsubscribe` push: ours, or Redis dropping shard channels whose slot left the node
    /// (resharding, failover). Then the live connection is replaced: Redis sends that push
    /// unasked, and the redis crate takes it as the answer to the oldest request waiting on
    /// the connection, so later answers there could be misattributed. Every subscription of
    /// the node replays from its last position on the new connection (no loss, no duplicate)
    /// and the topology is refreshed, which moves the channels to their new node.
    fn on_sunsubscribe(self: &Arc<Self>, generation: u64, epoch: u64) {
        if self.live_epoch.load(Ordering::Relaxed) != epoch || self.generation() != generation {
            return; // a replaced connection
        }
        let ours = self
            .pending_sunsubscribes
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
            .is_ok();
        if ours {
            return;
        }
        // One renewal per connection, however many channels Redis dropped at once.
        if self
            .live_epoch
            .compare_exchange(epoch, epoch + 1, Ordering::Relaxed, Ordering::Relaxed)
            .is_err()
        {
            return;
        }
        self.topology_changed();
        let node = Arc::clone(self);
        self.spawn(async move { node.renew_live(generation, epoch + 1).await });
    }

    /// Replaces the live connection of `generation` by a new one (see [`Node::on_sunsubscribe`]).
    async fn renew_live(self: Arc<Self>, generation: u64, epoch: u64) {
        let live = match self.client() {
            Ok(client) => {
                client
                    .get_multiplexed_async_connection_with_config(
                        &self.live_config(generation, epoch),
                    )
                    .await
            }
            Err(e) => Err(e),
        };
        let Ok(live) = live else {
            self.wake.notify_one(); // the supervisor finds out what is wrong
            return;
        };
        {
            let mut link = self.link.write();
            if link.generation != generation || link.live.is_none() {
                return;
            }
            link.live = Some(live);
        }
        self.pending_sunsubscribes.store(0, Ordering::Relaxed);
        // Resubscribed on the new connection, each replaying from where it was.
        self.hub.resync_all();
        Hub::restart_stalled(&self);
    }

    fn take_down(&self, generation: u64) {
        {
            let mut link = self.link.write();
            if link.generation != generation {
                return;
            }
            link.command = None;
            link.live = None;
        }
        self.stats.connected.store(false, Ordering::Relaxed);
        self.hub.on_down(&self.name);
        self.topology_changed();
    }

    fn client(&self) -> RedisResult<redis::Client> {
        let info = self.addr.connection_info()?;
        match &self.limits.tls_ca_pem {
            Some(ca) if self.addr.is_tls() => redis::Client::build_with_tls(
                info,
                redis::TlsCertificates {
                    client_tls: None,
                    root_cert: Some(ca.as_bytes().to_vec()),
                },
            ),
            _ => redis::Client::open(info),
        }
    }

    fn base_config(&self) -> AsyncConnectionConfig {
        AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.limits.connect_timeout))
            // Our own timeout (in `run`) bounds every request, including a script's NOSCRIPT retry.
            .set_response_timeout(None)
            // Room for a burst of concurrent requests to be written in few batches; the real
            // bound is our in-flight semaphore.
            .set_pipeline_buffer_size(1024)
    }

    fn live_config(self: &Arc<Self>, generation: u64, epoch: u64) -> AsyncConnectionConfig {
        let weak = Arc::downgrade(self);
        self.base_config().set_push_sender(move |info: PushInfo| {
            if let Some(node) = weak.upgrade() {
                match info.kind {
                    PushKind::Message | PushKind::SMessage => Hub::on_message(&node, &info.data),
                    PushKind::SUnsubscribe => node.on_sunsubscribe(generation, epoch),
                    _ => notice_disconnect(&Arc::downgrade(&node), generation, &info),
                }
            }
            Ok::<(), ()>(())
        })
    }

    async fn connect(self: &Arc<Self>) -> RedisResult<u64> {
        let generation = self.generations.fetch_add(1, Ordering::Relaxed) + 1;
        let client = self.client()?;
        let weak = Arc::downgrade(self);
        let command_cfg = self.base_config().set_push_sender(move |info: PushInfo| {
            notice_disconnect(&weak, generation, &info);
            Ok::<(), ()>(())
        });
        let epoch = self.live_epoch.fetch_add(1, Ordering::Relaxed) + 1;
        let live_cfg = self.live_config(generation, epoch);
        let command = client
            .get_multiplexed_async_connection_with_config(&command_cfg)
            .await?;
        let live = client
            .get_multiplexed_async_connection_with_config(&live_cfg)
            .await?;
        {
            let mut link = self.link.write();
            *link = Link {
                generation,
                command: Some(command),
                live: Some(live),
            };
        }
        self.pending_sunsubscribes.store(0, Ordering::Relaxed);
        self.stats.connected.store(true, Ordering::Relaxed);
        Ok(generation)
    }
}

fn notice_disconnect(node: &Weak<Node>, generation: u64, info: &PushInfo) {
    if info.kind != PushKind::Disconnection {
        return;
    }
    if let Some(node) = node.upgrade()
        && node.generation() == generation
    {
        node.wake.notify_one();
    }
}

/// A request's in-flight slot: when it is given back, waiting publishes may move on.
struct SlotGuard<'a> {
    node: &'a Node,
    permit: Option<tokio::sync::SemaphorePermit<'a>>,
}

impl Drop for SlotGuard<'_> {
    fn drop(&mut self) {
        drop(self.permit.take());
        self.node.refill_publishes();
    }
}

/// The answer to a publish queued by [`Node::publish`]: its position once Redis took it (at
/// most about twice `response_timeout`: queued, then sent; there is no timer per publish, the
/// writer fails a job that waited `response_timeout` and bounds each call by it too).
///
/// Written by hand rather than as an `async` block: a server holds thousands of these at once
/// and polls each when its answer comes, long after it was made, so its size is cache misses
/// (the `async` version was 440 bytes and its first poll 5 % of the server's CPU under load).
pub struct PublishReply {
    /// Owned: in a cluster the node may leave the routing table while a publish waits.
    node: Arc<Node>,
    state: ReplyState,
}

enum ReplyState {
    /// Queued: the writer answers on this channel.
    Waiting(oneshot::Receiver<Result<RawId, NodeError>>),
    /// Refused before it was queued (node down, FIFO full).
    Refused(NodeError),
    /// Resolved (polled again: never ready).
    Done,
}

impl Future for PublishReply {
    type Output = Result<Position, NodeError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let answer = match std::mem::replace(&mut this.state, ReplyState::Done) {
            ReplyState::Waiting(mut answer) => match Pin::new(&mut answer).poll(cx) {
                Poll::Pending => {
                    this.state = ReplyState::Waiting(answer);
                    return Poll::Pending;
                }
                Poll::Ready(Ok(answer)) => answer,
                // The writer went away without answering: the node is being dropped.
                Poll::Ready(Err(_)) => Err(this.node.down_error()),
            },
            ReplyState::Refused(refused) => Err(refused),
            ReplyState::Done => return Poll::Pending,
        };
        Poll::Ready(answer.map(|(ms, seq)| Position { ms, seq }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The error Redis answers with `line` (`-...`), as the connection hands it over.
    fn error(line: &str) -> redis::RedisError {
        let value = redis::parse_redis_value(format!("{line}\r\n").as_bytes()).expect("RESP");
        value.extract_error().expect_err("an error reply")
    }

    #[test]
    fn redirections_are_classified() {
        let at = |slot, host: &str, port| (slot, host.to_string(), port);
        assert_eq!(
            Redirect::of(&error("-MOVED 3999 127.0.0.1:6381")),
            Some({
                let (slot, host, port) = at(3999, "127.0.0.1", 6381);
                Redirect::Moved { slot, host, port }
            })
        );
        assert_eq!(
            Redirect::of(&error("-ASK 12 10.0.0.2:7002")),
            Some({
                let (slot, host, port) = at(12, "10.0.0.2", 7002);
                Redirect::Ask { slot, host, port }
            })
        );
        // An unknown host (`?`) or none: the node that answered is asked.
        assert_eq!(
            Redirect::of(&error("-MOVED 1 :7000")),
            Some(Redirect::Moved {
                slot: 1,
                host: String::new(),
                port: 7000
            })
        );
        assert_eq!(
            Redirect::of(&error("-MOVED 1 ?:7000")),
            Some(Redirect::Moved {
                slot: 1,
                host: String::new(),
                port: 7000
            })
        );
        for retry in [
            "-TRYAGAIN Multiple keys request during rehashing of slot",
            "-CLUSTERDOWN The cluster is down",
            "-MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'.",
        ] {
            assert_eq!(
                Redirect::of(&error(retry)),
                Some(Redirect::Retry),
                "{retry}"
            );
        }
        // Not redirections, or redirections that cannot be followed: the error stands.
        for other in [
            "-ERR unknown command",
            "-NOSCRIPT No matching script",
            "-CROSSSLOT Keys in request don't hash to the same slot",
            "-MOVED 3999",
            "-MOVED x 127.0.0.1:6381",
            "-ASK 12 127.0.0.1:0",
            "-ASK 12 127.0.0.1",
        ] {
            assert_eq!(Redirect::of(&error(other)), None, "{other}");
        }
    }
}
