//! Publish batching: concurrent publishes bound for one node travel as one script call.
//!
//! A script call has a fixed cost on the Redis side (dispatch into Lua, argument conversion)
//! comparable to the `XADD` itself, so one call per message would cap a node far below what its
//! streams can take. Instead each node has one writer task: it takes every publish queued since
//! its last call (up to `max_batch`) and sends them as one [`scripts::PUBLISH_BATCH`] call, with
//! at most `batches_in_flight` calls outstanding on the node's multiplexed connection. Under low
//! load a batch is a single message and costs one round trip, as before; under high load the
//! batches grow and the per-message cost falls. Each message is still acknowledged only after
//! Redis answered for it.
//!
//! Bounds: a publish takes one of the node's `max_in_flight` slots when it is queued (none
//! free: it waits in the node's FIFO, bounded in length and time, see [`Node::start_publish`])
//! and holds it until answered, so the queue to the writer never holds more than that; once
//! queued it must be answered within `response_timeout`.

use std::sync::LazyLock;
use std::sync::{Arc, Weak};

use futures_util::stream::{FuturesUnordered, StreamExt};
use redis::{ErrorKind, ServerErrorKind, Value};
use tokio::sync::{OwnedSemaphorePermit, mpsc, oneshot};

use super::node::{Node, NodeError};
use super::scripts::{self, RawId};

static PUBLISH_BATCH: LazyLock<redis::Script> =
    LazyLock::new(|| redis::Script::new(scripts::PUBLISH_BATCH));

/// The same script for Redis Cluster: shard channels (`SPUBLISH`, `PUBSUB SHARDNUMSUB`), which
/// travel only within the shard holding the slot instead of to every node of the cluster.
static PUBLISH_BATCH_SHARDED: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        &scripts::PUBLISH_BATCH
            .replace("'PUBLISH'", "'SPUBLISH'")
            .replace("'NUMSUB'", "'SHARDNUMSUB'"),
    )
});

fn script(sharded: bool) -> &'static redis::Script {
    if sharded {
        &PUBLISH_BATCH_SHARDED
    } else {
        &PUBLISH_BATCH
    }
}

/// One publish waiting for the writer.
pub struct Job {
    /// The channel key (`<appkey>::<channel>`); its stream is `<history prefix><key>`.
    pub key: Arc<str>,
    /// The raw message.
    pub payload: Arc<str>,
    /// Where the position (or the error) goes.
    pub reply: oneshot::Sender<Result<RawId, NodeError>>,
    /// When it was queued: a job that waited `response_timeout` is failed, not sent.
    pub queued: std::time::Instant,
    /// The node's in-flight slot, held until the job is answered (or dropped); `None` while the
    /// job waits for one (see [`Node::start_publish`]).
    pub slot: Option<OwnedSemaphorePermit>,
    /// Redis Cluster: send with `ASKING` first (an `ASK` redirection sent it here).
    pub asking: bool,
    /// Redis Cluster: times it was redirected so far (bounded by `redirect_retries`).
    pub redirects: u32,
    /// Redis Cluster: when it was first redirected (bounded by `redirect_timeout`).
    pub first_redirect: Option<std::time::Instant>,
}

impl Job {
    /// Frees the slot, then answers: whoever is told the publish is done can use the slot.
    pub(crate) fn answer(self, result: Result<RawId, NodeError>) {
        let Job { reply, slot, .. } = self;
        drop(slot);
        let _ = reply.send(result);
    }
}

/// What every batch of a node shares: the stream cap and the key layout.
#[derive(Debug, Clone)]
pub struct BatchSettings {
    /// `channel_max_length`.
    pub max_length: usize,
    /// The `XTRIM MAXLEN` operator: `=` or `~` (see [`super::Trim`]).
    pub trim: &'static str,
    /// The history prefix (`<ns>:h:`), stripped by the script to build the pub/sub name.
    pub history_prefix: String,
    /// The pub/sub prefix (`<ns>:p:`).
    pub live_prefix: String,
    /// Redis Cluster: one script call per hash slot (a script may only touch keys of one
    /// slot) and shard channels.
    pub sharded: bool,
}

/// The writer loop of one node; ends when the node is dropped.
///
/// Order: jobs leave the queue in the order they were queued, each batch keeps it for each
/// channel (a batch is grouped by channel), and each batch call is handed to the connection
/// (first poll) before the next batch is formed; the connection writes requests in that order
/// and Redis runs them in that order. So the publishes of a channel land in the order they
/// were queued, with `batches_in_flight` calls outstanding. The script
/// is invoked with a plain `EVALSHA` (loaded beforehand), never with the load-and-retry of
/// `Script::invoke_async`, whose retry could run after a later batch.
pub async fn writer(node: Weak<Node>, mut jobs: mpsc::Receiver<Job>, settings: BatchSettings) {
    let (max_batch, in_flight) = match node.upgrade() {
        Some(n) => (
            n.limits().max_batch.max(1),
            n.limits().batches_in_flight.max(1),
        ),
        None => return,
    };
    // The connection generation the script was last loaded on, and whether a call saw
    // NOSCRIPT since (the cache flushed): then it is loaded again before the next batch.
    let mut loaded_on: Option<u64> = None;
    let script_missing = std::sync::atomic::AtomicBool::new(false);
    let mut calls = FuturesUnordered::new();
    let mut open = true;
    while open || !calls.is_empty() {
        tokio::select! {
            Some(()) = calls.next(), if !calls.is_empty() => {}
            // While `in_flight` calls are out, jobs wait in the queue and join the next batch.
            job = jobs.recv(), if open && calls.len() < in_flight => {
                let Some(first) = job else {
                    open = false;
                    continue;
                };
                let mut batch = Vec::with_capacity(max_batch.min(jobs.len() + 1));
                batch.push(first);
                while batch.len() < max_batch {
                    match jobs.try_recv() {
                        Ok(job) => batch.push(job),
                        Err(_) => break,
                    }
                }
                let Some(node) = node.upgrade() else { return };
                // The only timeout of a queued publish (there is no timer per publish).
                let now = std::time::Instant::now();
                let timeout = node.limits().response_timeout;
                if batch.iter().any(|j| now.duration_since(j.queued) >= timeout) {
                    let (late, fresh): (Vec<Job>, Vec<Job>) = batch
                        .into_iter()
                        .partition(|j| now.duration_since(j.queued) >= timeout);
                    for job in late {
                        job.answer(Err(node.timeout_error()));
                    }
                    node.refill_publishes();
                    batch = fresh;
                    if batch.is_empty() {
                        continue;
                    }
                }
                let generation = node.generation();
                if loaded_on != Some(generation)
                    || script_missing.swap(false, std::sync::atomic::Ordering::Relaxed)
                {
                    // Inline: no batch may be issued before the script is there.
                    let sharded = settings.sharded;
                    let load = node
                        .command_for_batch(|mut c| async move {
                            script(sharded).prepare_invoke().load_async(&mut c).await
                        })
                        .await;
                    loaded_on = load.is_ok().then_some(generation);
                }
                for batch in per_slot(batch, settings.sharded) {
                    let mut call =
                        Box::pin(send(Arc::clone(&node), batch, &settings, &script_missing));
                    // Hand the request to the connection now, before any later batch exists.
                    if futures_util::poll!(call.as_mut()).is_pending() {
                        calls.push(call);
                    }
                }
            }
        }
    }
}

/// The batch as script calls: one outside a cluster, one per hash slot in it (stable: each
/// channel keeps its order; a channel's keys share a slot, see [`super::cluster::slots::tagged`]),
/// and apart for the jobs an `ASK` sent here (they need `ASKING` first).
fn per_slot(mut batch: Vec<Job>, sharded: bool) -> Vec<Vec<Job>> {
    if !sharded {
        return vec![batch];
    }
    let group = |j: &Job| (super::cluster::slots::slot_of(j.key.as_bytes()), j.asking);
    batch.sort_by_cached_key(group);
    let mut out: Vec<Vec<Job>> = Vec::new();
    let mut last = None;
    for job in batch {
        let this = group(&job);
        match out.last_mut() {
            Some(jobs) if last == Some(this) => jobs.push(job),
            _ => out.push(vec![job]),
        }
        last = Some(this);
    }
    out
}

/// One `EVALSHA` of [`scripts::PUBLISH_BATCH`] for `jobs`; answers each job.
async fn send(
    node: Arc<Node>,
    mut jobs: Vec<Job>,
    settings: &BatchSettings,
    script_missing: &std::sync::atomic::AtomicBool,
) {
    // Grouped by channel, as the script takes them; stable, so each channel keeps its order
    // (the order between channels means nothing). Usually one run already: no comparison fails.
    jobs.sort_by(|a, b| a.key.cmp(&b.key));
    let mut streams: Vec<(&str, usize)> = Vec::new();
    for job in &jobs {
        match streams.last_mut() {
            Some((key, count)) if *key == &*job.key => *count += 1,
            _ => streams.push((&job.key, 1)),
        }
    }
    // Sized up front: a batch is tens of KB, grown by doubling it would be copied ~10 times.
    let data: usize = jobs.iter().map(|j| j.payload.len()).sum::<usize>()
        + streams
            .iter()
            .map(|(key, _)| settings.history_prefix.len() + key.len() + 8)
            .sum::<usize>()
        + settings.live_prefix.len()
        + 128;
    let mut call = redis::Cmd::with_capacity(jobs.len() + 2 * streams.len() + 7, data);
    call.arg("EVALSHA")
        .arg(script(settings.sharded).get_hash())
        .arg(streams.len());
    for (key, _) in &streams {
        call.arg(StreamName(&settings.history_prefix, key));
    }
    // One more than the history: the oldest entry kept is the trim marker.
    call.arg(settings.max_length.saturating_add(1))
        .arg(settings.trim)
        .arg(settings.history_prefix.len())
        .arg(&settings.live_prefix);
    for (_, count) in &streams {
        call.arg(*count);
    }
    for job in &jobs {
        call.arg(job.payload.as_bytes());
    }
    let (acks, ack_timeout) = (
        node.limits().replica_acks,
        node.limits().replica_ack_timeout,
    );
    // Sent here by an `ASK` (a slot being migrated): `ASKING` in the same write, so that no
    // other request on the shared connection comes between it and the call.
    let asking = jobs.first().is_some_and(|j| j.asking);
    let result: Result<Value, NodeError> = node
        .command_for_batch(|mut c| async move {
            let reply = if asking {
                let mut pipe = redis::pipe();
                pipe.cmd("ASKING").ignore().add_command(call);
                pipe.query_async::<(Value,)>(&mut c).await.map(|(v,)| v)
            } else {
                call.query_async(&mut c).await
            };
            if let Err(e) = &reply
                && e.kind() == ErrorKind::Server(ServerErrorKind::NoScript)
            {
                script_missing.store(true, std::sync::atomic::Ordering::Relaxed);
            }
            if acks > 0 && reply.is_ok() {
                // On the same connection: WAIT covers every write this connection made.
                let acked: i64 = redis::cmd("WAIT")
                    .arg(acks)
                    .arg(ack_timeout.as_millis().max(1) as u64)
                    .query_async(&mut c)
                    .await?;
                if acked < acks as i64 {
                    return Err(redis::RedisError::from((
                        ErrorKind::Client,
                        "publish not replicated",
                        format!("{acked} of {acks} replicas acknowledged within {ack_timeout:?}"),
                    )));
                }
            }
            reply
        })
        .await;
    if let Err(e @ NodeError::Redirected { .. }) = result {
        // Not run (Redis checks a script's keys' slot first): re-sent where the cluster says.
        node.redirected(jobs, e);
        node.refill_publishes();
        return;
    }
    let ids =
        result.and_then(|v| scripts::published_ids(v, jobs.len()).map_err(|e| node.reply_error(e)));
    match ids {
        Ok(ids) => {
            for (job, id) in jobs.into_iter().zip(ids) {
                let r = id.map_err(|reason| node.failed(reason));
                if r.is_ok() {
                    node.count_published();
                }
                job.answer(r);
            }
        }
        Err(e) => {
            for job in jobs {
                job.answer(Err(e.clone()));
            }
        }
    }
    // Slots were freed: publishes waiting for one move on.
    node.refill_publishes();
}

/// A history stream's name, written into the command as one argument without building it.
struct StreamName<'a>(&'a str, &'a str);

impl redis::ToRedisArgs for StreamName<'_> {
    fn write_redis_args<W: ?Sized + redis::RedisWrite>(&self, out: &mut W) {
        use std::io::Write;
        let mut arg = out.writer_for_next_arg();
        // Writes into the command's own buffer: they cannot fail.
        let _ = arg.write_all(self.0.as_bytes());
        let _ = arg.write_all(self.1.as_bytes());
    }
}
