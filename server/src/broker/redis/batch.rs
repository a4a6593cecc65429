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
//! Bounds: a publish first takes one of the node's `max_in_flight` slots (waiting at most
//! `queue_timeout`, then "overloaded"), so the queue to the writer never holds more than that;
//! the whole publish, queueing included, must be answered within `response_timeout`.

use std::sync::LazyLock;
use std::sync::{Arc, Weak};

use redis::Value;
use tokio::sync::{Semaphore, mpsc, oneshot};

use super::node::{Node, NodeError};
use super::scripts::{self, RawId};

static PUBLISH_BATCH: LazyLock<redis::Script> =
    LazyLock::new(|| redis::Script::new(scripts::PUBLISH_BATCH));

/// One publish waiting for the writer.
pub struct Job {
    /// The history stream.
    pub stream: String,
    /// The raw message.
    pub payload: Arc<str>,
    /// Where the position (or the error) goes.
    pub reply: oneshot::Sender<Result<RawId, NodeError>>,
}

/// What every batch of a node shares: the stream cap and the key layout.
#[derive(Debug, Clone)]
pub struct BatchSettings {
    /// `channel_max_length`.
    pub max_length: usize,
    /// The `XADD MAXLEN` operator: `=` or `~` (see [`super::Trim`]).
    pub trim: &'static str,
    /// Length of the history prefix (`<ns>:h:`), stripped to build the pub/sub name.
    pub history_prefix_len: usize,
    /// The pub/sub prefix (`<ns>:p:`).
    pub live_prefix: String,
}

/// The writer loop of one node; ends when the node is dropped.
pub async fn writer(node: Weak<Node>, mut jobs: mpsc::Receiver<Job>, settings: BatchSettings) {
    let (max_batch, in_flight) = match node.upgrade() {
        Some(n) => (
            n.limits().max_batch.max(1),
            n.limits().batches_in_flight.max(1),
        ),
        None => return,
    };
    let slots = Arc::new(Semaphore::new(in_flight));
    let mut batch = Vec::with_capacity(max_batch);
    while let Some(first) = jobs.recv().await {
        // Wait for a free call slot first: the jobs arriving meanwhile join this batch.
        let Ok(slot) = Arc::clone(&slots).acquire_owned().await else {
            return;
        };
        batch.push(first);
        while batch.len() < max_batch {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let Some(node) = node.upgrade() else { return };
        let jobs_now = std::mem::replace(&mut batch, Vec::with_capacity(max_batch));
        let settings = settings.clone();
        let task_node = Arc::clone(&node);
        node.spawn(async move {
            send(&task_node, jobs_now, &settings).await;
            drop(slot);
        });
    }
}

async fn send(node: &Node, jobs: Vec<Job>, settings: &BatchSettings) {
    let mut call = PUBLISH_BATCH.prepare_invoke();
    call.arg(settings.max_length)
        .arg(settings.trim)
        .arg(settings.history_prefix_len)
        .arg(&settings.live_prefix);
    for job in &jobs {
        call.key(&job.stream).arg(job.payload.as_bytes());
    }
    let result: Result<Value, NodeError> = node
        .command_for_batch(|mut c| async move { call.invoke_async(&mut c).await })
        .await;
    let ids = result.and_then(|v| match v {
        Value::Array(ids) if ids.len() == jobs.len() => Ok(ids),
        other => Err(node.reply_error(scripts::ReplyError(format!(
            "expected {} ids from the publish script, got {other:?}",
            jobs.len()
        )))),
    });
    match ids {
        Ok(ids) => {
            for (job, id) in jobs.into_iter().zip(ids) {
                let r = match scripts::bytes(&id).and_then(|b| b.strip_prefix(b"!")) {
                    Some(reason) => Err(node.failed(String::from_utf8_lossy(reason).into_owned())),
                    None => scripts::id(&id).map_err(|e| node.reply_error(e)),
                };
                if r.is_ok() {
                    node.count_published();
                }
                let _ = job.reply.send(r);
            }
        }
        Err(e) => {
            for job in jobs {
                let _ = job.reply.send(Err(e.clone()));
            }
        }
    }
}
