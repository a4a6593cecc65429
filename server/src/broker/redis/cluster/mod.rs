//! Redis Cluster: the same backend over a cluster's primaries, following its topology.
//!
//! `cobra run --redis-cluster 'redis://h1:6379,redis://h2:6379'` names a few nodes of the
//! cluster (seeds); the backend asks them for the slot map (`CLUSTER SLOTS`) and runs one
//! [`Node`] (a command and a live connection, publish batching, live delivery) per primary,
//! exactly as for standalone nodes. What differs:
//!
//! - **Routing** ([`slots`]): a channel goes to the primary holding its hash slot. Its keys are
//!   hash-tagged (`<ns>:h:{<appkey>::<channel>}`, see [`slots::tagged`]) so that its stream,
//!   shard channel and key/value share a slot; a publish batch is sent as one script call per
//!   slot (a script may only touch one slot's keys).
//! - **Live delivery** through sharded pub/sub (`SSUBSCRIBE`/`SPUBLISH`, Redis 7): a message
//!   travels only within its shard, not to every node of the cluster.
//! - **Topology**: the slot map is read again every `health_interval` (every
//!   `reconnect_min` while a primary is down) and at once when Redis redirects a request
//!   (`MOVED`, `ASK`, `TRYAGAIN`, `CLUSTERDOWN`), when a node's connection is lost, or when Redis
//!   drops our shard subscriptions (their slot left the node). When a slot's primary changed
//!   (failover, resharding) its channels' subscriptions move to the new primary and resume
//!   after their last delivered position from the stream there (no loss, no duplicate).
//!   Subscribers of a primary that died were told `backend_unavailable` and are told
//!   `backend_resumed` once delivery goes on from the promoted replica.
//! - **Redirections**: a publish, read, write or delete that Redis answers with `MOVED`
//!   (re-sent to the new primary, which becomes the slot's owner at once), `ASK` (re-sent to
//!   the importing node with `ASKING` first), `TRYAGAIN`, `CLUSTERDOWN` or `MASTERDOWN` (re-sent
//!   after a short wait, doubling from `reconnect_min`) is re-sent up to
//!   [`RedisLimits::redirect_retries`] times within [`RedisLimits::redirect_timeout`], then fails
//!   with Redis's error. So a slot migration costs publishes no error. Per channel, publishes
//!   keep their order except that one still in flight to the old node when the first
//!   redirection came back can land after a later one sent to the new node directly (see
//!   [`Cluster::redirect_publishes`]).
//! - **Publishes** during a failover (the primary is gone, its replica not promoted yet) fail
//!   at once with "Redis node … is down": they were not acknowledged; clients retry.
//!   Redis replicates asynchronously, so a primary may die with publishes it acknowledged but
//!   had not sent to its replica yet: with [`RedisLimits::replica_acks`] at 1 a publish is
//!   acknowledged only once a replica has it, and a failover loses nothing acknowledged.
//!
//! Written by hand on the redis crate's plain connections rather than with its
//! `cluster-async` client: that client routes each command itself and hides which node holds
//! a subscription, while exactly-once live delivery needs to know when a channel's slot
//! changed hands (to replay its stream on the new node) and the per-node publish batching
//! and bounds of [`Node`] are kept as they are.

pub mod slots;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use parking_lot::RwLock;
use redis::Value;
use tokio::sync::Notify;

use self::slots::{SLOTS, SlotRange, slot_of};
use super::batch::{BatchSettings, Job};
use super::hub::Hub;
use super::limits::RedisLimits;
use super::node::{Node, NodeError, Redirect};
use super::url::NodeAddr;
use crate::broker::catchup::CatchUpCounters;

/// A cluster's primaries and which of them holds each slot.
pub struct Cluster {
    seeds: Vec<NodeAddr>,
    limits: Arc<RedisLimits>,
    channel_max_length: usize,
    batch: BatchSettings,
    runtime: tokio::runtime::Handle,
    /// Shared by every node's hub (catch-up statistics).
    counters: Arc<CatchUpCounters>,
    /// Every node met so far, by `host:port` (a node that lost its slots stays: it may get
    /// them back, and its connections cost little).
    nodes: RwLock<HashMap<(String, u16), Arc<Node>>>,
    /// The primary of each slot (`None`: not covered by the last map read).
    owners: RwLock<Vec<Option<Arc<Node>>>>,
    /// Wakes the topology refresh.
    refresh: Arc<Notify>,
    closed: AtomicBool,
    /// Itself, for the nodes' redirected publishes ([`Node::redirected`]).
    me: Weak<Cluster>,
}

impl Cluster {
    /// A cluster reached through `seeds`; call [`Cluster::start`] next.
    pub(crate) fn new(
        seeds: Vec<NodeAddr>,
        limits: Arc<RedisLimits>,
        channel_max_length: usize,
        batch: BatchSettings,
        counters: Arc<CatchUpCounters>,
    ) -> Arc<Self> {
        Arc::new_cyclic(|me| Cluster {
            me: me.clone(),
            counters,
            seeds,
            limits,
            channel_max_length,
            batch,
            runtime: tokio::runtime::Handle::current(),
            nodes: RwLock::new(HashMap::new()),
            owners: RwLock::new(vec![None; usize::from(SLOTS)]),
            refresh: Arc::new(Notify::new()),
            closed: AtomicBool::new(false),
        })
    }

    /// Connects to the seeds, reads the slot map and starts the refresh task. Fails when no
    /// seed answers `CLUSTER SLOTS`.
    pub(crate) async fn start(self: &Arc<Self>) -> Result<(), String> {
        let seeds: Vec<Arc<Node>> = self.seeds.iter().map(|a| self.node_at(a)).collect();
        for node in &seeds {
            node.first_attempt().await;
        }
        if let Err(e) = self.refresh_once().await {
            return Err(e.to_string());
        }
        // Primaries found in the map: give them their first attempt too.
        let owners: Vec<Arc<Node>> = self.primaries();
        for node in &owners {
            node.first_attempt().await;
        }
        let weak = Arc::downgrade(self);
        self.runtime.spawn(async move {
            while let Some(cluster) = weak.upgrade() {
                if cluster.closed.load(Ordering::Relaxed) {
                    return;
                }
                let degraded = cluster.primaries().iter().any(|n| !n.is_connected());
                let every = if degraded {
                    cluster.limits.reconnect_min
                } else {
                    cluster.limits.health_interval
                };
                let refresh = Arc::clone(&cluster.refresh);
                drop(cluster);
                tokio::select! {
                    _ = tokio::time::sleep(every) => {}
                    _ = refresh.notified() => {}
                }
                let Some(cluster) = weak.upgrade() else {
                    return;
                };
                if let Err(e) = cluster.refresh_once().await {
                    tracing::debug!(error = %e, "Redis Cluster topology refresh failed");
                }
            }
        });
        Ok(())
    }

    /// Stops every node and the refresh.
    pub(crate) fn shutdown(&self) {
        self.closed.store(true, Ordering::Relaxed);
        self.refresh.notify_one();
        for node in self.nodes.read().values() {
            node.shutdown();
        }
    }

    /// The node met at `addr`, made (and started) if new.
    fn node_at(&self, addr: &NodeAddr) -> Arc<Node> {
        let id = (addr.host().to_string(), addr.port());
        if let Some(node) = self.nodes.read().get(&id) {
            return Arc::clone(node);
        }
        let mut nodes = self.nodes.write();
        if let Some(node) = nodes.get(&id) {
            return Arc::clone(node);
        }
        let node = Node::with_cluster(
            addr.clone(),
            Arc::clone(&self.limits),
            self.channel_max_length,
            self.runtime.clone(),
            Arc::clone(&self.counters),
            Some(Arc::clone(&self.refresh)),
        );
        let _ = node.router.set(self.me.clone());
        node.start(self.batch.clone());
        nodes.insert(id, Arc::clone(&node));
        node
    }

    /// The primaries holding slots, each once, in slot order.
    pub(crate) fn primaries(&self) -> Vec<Arc<Node>> {
        let mut out: Vec<Arc<Node>> = Vec::new();
        for node in self.owners.read().iter().flatten() {
            if !out.iter().any(|n| Arc::ptr_eq(n, node)) {
                out.push(Arc::clone(node));
            }
        }
        out
    }

    /// Every node met so far.
    pub(crate) fn nodes(&self) -> Vec<Arc<Node>> {
        self.nodes.read().values().cloned().collect()
    }

    /// The primary holding `key`'s slot (`key` hash-tagged, see [`slots::tagged`]).
    pub(crate) fn route(&self, key: &str) -> Result<Arc<Node>, NodeError> {
        let slot = slot_of(key.as_bytes());
        self.owners.read()[usize::from(slot)]
            .clone()
            .ok_or_else(|| NodeError::Down {
                node: format!("(Redis Cluster slot {slot}: no primary known)"),
            })
    }

    /// The node a redirection from `from` points at (met now if new; a `MOVED` also makes it
    /// the slot's primary at once, before the full slot map is read again).
    fn redirect_target(&self, from: &Node, redirect: &Redirect) -> Option<Arc<Node>> {
        let (slot, host, port, moved) = match redirect {
            Redirect::Moved { slot, host, port } => (*slot, host, *port, true),
            Redirect::Ask { slot, host, port } => (*slot, host, *port, false),
            Redirect::Retry => return None,
        };
        let template = self.seeds.first()?;
        let host = if host.is_empty() { from.host() } else { host };
        let node = self.node_at(&template.at(host, port));
        if moved && let Some(owner) = self.owners.write().get_mut(usize::from(slot)) {
            *owner = Some(Arc::clone(&node));
        }
        Some(node)
    }

    /// The wait before the `attempt`-th re-send after `TRYAGAIN`/`CLUSTERDOWN`/`MASTERDOWN`:
    /// doubling from `reconnect_min`, at most a quarter of `redirect_timeout`.
    fn retry_delay(&self, attempt: u32) -> Duration {
        let doubled = self
            .limits
            .reconnect_min
            .saturating_mul(1 << attempt.saturating_sub(1).min(10));
        doubled.min(self.limits.redirect_timeout / 4)
    }

    /// Re-sends publishes that `from` answered with a redirection (`error`), in their order:
    /// `MOVED` to the slot's new primary, `ASK` to the importing node with `ASKING`, the others
    /// after [`Self::retry_delay`] to the slot's primary as then known (or, after an `ASK`, to
    /// the same node). A publish redirected more than `redirect_retries` times, or still
    /// redirected `redirect_timeout` after its first redirection, fails with `error`.
    ///
    /// Order: the jobs of one batch keep their order, and batches are redirected in the order
    /// the node answers them. A publish still in flight to the old node when the first
    /// redirection arrives is re-sent after it, so it can land after a later publish made
    /// once the slot map was updated (sent to the new node directly): per channel, the order
    /// of publishes in flight during a slot migration or failover is kept only within what
    /// was redirected together.
    pub(crate) fn redirect_publishes(&self, from: &Arc<Node>, jobs: Vec<Job>, error: NodeError) {
        let NodeError::Redirected { redirect, .. } = &error else {
            for job in jobs {
                job.answer(Err(error.clone()));
            }
            return;
        };
        let now = Instant::now();
        let mut resend = Vec::with_capacity(jobs.len());
        for mut job in jobs {
            let first = *job.first_redirect.get_or_insert(now);
            job.redirects += 1;
            if job.redirects > self.limits.redirect_retries
                || now.duration_since(first) >= self.limits.redirect_timeout
                || self.closed.load(Ordering::Relaxed)
            {
                job.answer(Err(error.clone()));
            } else {
                resend.push(job);
            }
        }
        if resend.is_empty() {
            return;
        }
        if let Some(target) = self.redirect_target(from, redirect) {
            let asking = matches!(redirect, Redirect::Ask { .. });
            for mut job in resend {
                job.asking = asking;
                target.requeue(job);
            }
            return;
        }
        // TRYAGAIN / CLUSTERDOWN / MASTERDOWN: a little later (the topology refresh was woken).
        let delay = self.retry_delay(resend.iter().map(|j| j.redirects).max().unwrap_or(1));
        let (me, from) = (self.me.clone(), Arc::clone(from));
        self.runtime.spawn(async move {
            tokio::time::sleep(delay).await;
            let Some(cluster) = me.upgrade() else {
                for job in resend {
                    job.answer(Err(error.clone()));
                }
                return;
            };
            for job in resend {
                let target = if job.asking {
                    Ok(Arc::clone(&from))
                } else {
                    cluster.route(&job.key)
                };
                match target {
                    Ok(node) => node.requeue(job),
                    Err(e) => job.answer(Err(e)),
                }
            }
        });
    }

    /// Runs `cmd` (whose keys are all in `key`'s slot) on the primary of `key`'s slot, starting
    /// with `node`, following redirections within `redirect_retries` and `redirect_timeout`
    /// (see [`Self::redirect_publishes`]). Returns the node that answered with the answer.
    pub(crate) async fn request(
        &self,
        key: &str,
        mut node: Arc<Node>,
        cmd: redis::Cmd,
    ) -> Result<(Arc<Node>, Value), NodeError> {
        let mut asking = false;
        let mut redirects = 0u32;
        let mut first_redirect: Option<Instant> = None;
        loop {
            let call = cmd.clone();
            let reply = node
                .command(|mut c| async move {
                    if asking {
                        // One write: nothing else on the connection comes between the two.
                        let mut pipe = redis::pipe();
                        pipe.cmd("ASKING").ignore().add_command(call);
                        pipe.query_async::<(Value,)>(&mut c).await.map(|(v,)| v)
                    } else {
                        call.query_async::<Value>(&mut c).await
                    }
                })
                .await;
            let error = match reply {
                Ok(v) => return Ok((node, v)),
                Err(e) => e,
            };
            let NodeError::Redirected { redirect, .. } = &error else {
                return Err(error);
            };
            redirects += 1;
            let first = *first_redirect.get_or_insert_with(Instant::now);
            if redirects > self.limits.redirect_retries
                || first.elapsed() >= self.limits.redirect_timeout
            {
                return Err(error);
            }
            match self.redirect_target(&node, redirect) {
                Some(target) => {
                    asking = matches!(redirect, Redirect::Ask { .. });
                    node = target;
                }
                None => {
                    tokio::time::sleep(self.retry_delay(redirects)).await;
                    if !asking {
                        node = self.route(key)?;
                    }
                }
            }
            if !node.is_connected() {
                // Met just now: give its supervisor its first attempt.
                let left = self.limits.redirect_timeout.saturating_sub(first.elapsed());
                let _ = tokio::time::timeout(left, node.first_attempt()).await;
            }
        }
    }

    /// Reads the slot map from the first node that answers (primaries first, then every node
    /// met, then the seeds) and applies it.
    async fn refresh_once(&self) -> Result<(), NodeError> {
        let mut candidates: Vec<Arc<Node>> = self.primaries();
        for node in self.nodes.read().values() {
            if !candidates.iter().any(|n| Arc::ptr_eq(n, node)) {
                candidates.push(Arc::clone(node));
            }
        }
        let mut last_error = NodeError::Down {
            node: "(no Redis Cluster node reachable)".to_string(),
        };
        for node in candidates.iter().filter(|n| n.is_connected()) {
            let reply = node
                .command(|mut c| async move {
                    redis::cmd("CLUSTER")
                        .arg("SLOTS")
                        .query_async::<Value>(&mut c)
                        .await
                })
                .await;
            let ranges = match reply {
                Ok(v) => slots::parse_cluster_slots(&v).map_err(|e| node.reply_error(e)),
                Err(e) => Err(e),
            };
            match ranges {
                Ok(ranges) if !ranges.is_empty() => {
                    self.apply(&ranges, node);
                    return Ok(());
                }
                Ok(_) => {}
                Err(e) => last_error = e,
            }
        }
        Err(last_error)
    }

    /// Installs a slot map read from `asked`, then moves subscriptions whose channel's slot
    /// changed hands.
    fn apply(&self, ranges: &[SlotRange], asked: &Arc<Node>) {
        let template = self.seeds.first().cloned();
        let Some(template) = template else { return };
        let mut owners: Vec<Option<Arc<Node>>> = vec![None; usize::from(SLOTS)];
        for range in ranges {
            let host = if range.host.is_empty() {
                asked.host().to_string()
            } else {
                range.host.clone()
            };
            let node = self.node_at(&template.at(&host, range.port));
            for slot in range.start..=range.end {
                owners[usize::from(slot)] = Some(Arc::clone(&node));
            }
        }
        let changed = {
            let mut current = self.owners.write();
            let changed = current.iter().zip(&owners).any(|pair| match pair {
                (Some(a), Some(b)) => !Arc::ptr_eq(a, b),
                (None, None) => false,
                _ => true,
            });
            *current = owners;
            changed
        };
        if changed {
            tracing::info!(
                primaries = self.primaries().len(),
                "Redis Cluster slot map changed"
            );
        }
        self.rehome();
    }

    /// Moves each channel whose slot is held by another primary than the node its
    /// subscriptions are on to that primary (see [`Hub::take_channels`]).
    fn rehome(&self) {
        let nodes: Vec<Arc<Node>> = self.nodes.read().values().cloned().collect();
        let owners = self.owners.read().clone();
        let owner_of = |key: &str| owners[usize::from(slot_of(key.as_bytes()))].clone();
        let mut arrivals: Vec<Arc<Node>> = Vec::new();
        for node in &nodes {
            let moved = node
                .hub
                .take_channels(|key| owner_of(key).is_some_and(|owner| !Arc::ptr_eq(&owner, node)));
            for channel in moved {
                let Some(owner) = owner_of(channel.key()) else {
                    continue;
                };
                tracing::debug!(
                    channel = channel.key(),
                    from = node.name(),
                    to = owner.name(),
                    "channel moved"
                );
                owner.hub.adopt(vec![channel]);
                if !arrivals.iter().any(|n| Arc::ptr_eq(n, &owner)) {
                    arrivals.push(owner);
                }
            }
        }
        for node in arrivals {
            // Not connected yet: its supervisor restarts them once it is.
            if node.is_connected() {
                Hub::restart_stalled(&node);
            }
        }
    }
}
