//! The [`Client`] handle: cheap to clone, every call safe from any thread.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, Weak};
use std::thread::{JoinHandle, ThreadId};
use std::time::{Duration, Instant};

use cobra_wire::pdu::action;
use crossbeam_channel::Receiver;
use serde_json::Value;

use crate::config::Config;
use crate::engine::{self, Command, Request, Shared};
use crate::error::Error;
use crate::event::{Event, Listener, PublishId};
use crate::queue::Target;
use crate::state::State;
use crate::subscription::SubscribeOptions;

/// How long `disconnect()` waits for the engine to confirm; the engine answers within one loop
/// turn (it never blocks outside `mio::Poll`), so this only matters if a listener callback hangs.
const DISCONNECT_WAIT: Duration = Duration::from_secs(1);

struct Inner {
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
    engine_thread: ThreadId,
}

impl Drop for Inner {
    fn drop(&mut self) {
        let _ = self.shared.send(Command::Shutdown);
        let handle = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take();
        // The last handle may be dropped inside a listener callback: joining there would deadlock.
        if let Some(handle) = handle
            && std::thread::current().id() != self.engine_thread
        {
            let _ = handle.join();
        }
    }
}

/// A connection to a cobra server, run by one background engine thread.
///
/// Cloning is cheap (an `Arc`); dropping the last clone stops the engine (closing the connection
/// without waiting for acknowledgements; use the spool to keep unacknowledged messages).
/// All methods are safe to call from any thread and never block on the network, except
/// [`read`](Client::read), [`write`](Client::write) and [`delete`](Client::delete), which block the
/// caller (never the engine) until the answer or the timeout.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

/// A weak handle that does not keep the client alive; for use inside a [`Listener`].
#[derive(Clone)]
pub struct WeakClient {
    inner: Weak<Inner>,
}

impl WeakClient {
    /// The client, if it still exists.
    pub fn upgrade(&self) -> Option<Client> {
        self.inner.upgrade().map(|inner| Client { inner })
    }
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("state", &self.state())
            .finish()
    }
}

impl Client {
    /// Validate `config`, open the spool if configured, and start the engine thread. The client
    /// stays [`State::Disconnected`] until [`connect`](Client::connect). Events go to `listener`
    /// (on the engine thread) and, once [`events`](Client::events) was called, to a channel.
    pub fn new(config: Config, listener: Option<Arc<dyn Listener>>) -> Result<Client, Error> {
        let (shared, thread) = engine::start(config, listener)?;
        let engine_thread = thread.thread().id();
        Ok(Client {
            inner: Arc::new(Inner {
                shared,
                thread: Mutex::new(Some(thread)),
                engine_thread,
            }),
        })
    }

    fn shared(&self) -> &Shared {
        &self.inner.shared
    }

    /// A handle that does not keep the client alive.
    pub fn downgrade(&self) -> WeakClient {
        WeakClient {
            inner: Arc::downgrade(&self.inner),
        }
    }

    /// Start connecting (and keep reconnecting) in the background. Returns at once.
    pub fn connect(&self) -> Result<(), Error> {
        self.shared().send(Command::Connect)
    }

    /// Close the connection and stop retrying. Returns once the engine has dropped the
    /// connection (within one engine loop turn, well under 50 ms), or after 1 s if a listener
    /// callback is hogging the engine thread. Queued messages stay queued for a later `connect`.
    pub fn disconnect(&self) -> Result<(), Error> {
        let (tx, rx) = crossbeam_channel::bounded(1);
        self.shared().send(Command::Disconnect(Some(tx)))?;
        if std::thread::current().id() != self.inner.engine_thread {
            let _ = rx.recv_timeout(DISCONNECT_WAIT);
        }
        Ok(())
    }

    /// Close the connection and stop retrying until [`resume`](Client::resume) (for an app
    /// going to the background). Publishes keep queueing.
    pub fn suspend(&self) -> Result<(), Error> {
        self.shared().send(Command::Suspend)
    }

    /// Undo [`suspend`](Client::suspend): connect again at once.
    pub fn resume(&self) -> Result<(), Error> {
        self.shared().send(Command::Resume)
    }

    /// The network changed (Wi-Fi to cellular...): drop the current connection if any and
    /// retry at once, skipping any backoff delay.
    pub fn network_changed(&self) -> Result<(), Error> {
        self.shared().send(Command::NetworkChanged)
    }

    /// The current state.
    pub fn state(&self) -> State {
        State::from_u8(self.shared().state.load(Ordering::Acquire))
    }

    /// A receiver of events, as an alternative (or in addition) to the listener.
    ///
    /// The channel is bounded by [`Config::event_queue_capacity`]. Events are only queued after
    /// the first call to this method. When the channel is full, new events are dropped (and
    /// counted in the log at warn level): the engine never waits for a slow reader. All
    /// receivers returned share one queue.
    pub fn events(&self) -> Receiver<Event> {
        let shared = self.shared();
        shared
            .events
            .get_or_init(|| crossbeam_channel::bounded(shared.event_queue_capacity))
            .1
            .clone()
    }

    /// Publish `message` to `channel`. Never blocks: the message is queued and the engine woken.
    /// The returned id comes back in [`Event::Published`] (or [`Event::PublishDropped`]).
    pub fn publish(&self, channel: &str, message: &Value) -> Result<PublishId, Error> {
        self.publish_text(Target::channel(channel)?, to_json(message)?)
    }

    /// Publish a message given as JSON text (validated here).
    pub fn publish_raw(&self, channel: &str, json: &str) -> Result<PublishId, Error> {
        self.publish_text(Target::channel(channel)?, validate_json(json)?)
    }

    /// Publish `message` to every channel in `channels` (one `rtm/publish` with `channels`).
    pub fn publish_many<S: AsRef<str>>(
        &self,
        channels: &[S],
        message: &Value,
    ) -> Result<PublishId, Error> {
        self.publish_text(Target::channels(channels)?, to_json(message)?)
    }

    /// [`publish_many`](Client::publish_many) with the message as JSON text.
    pub fn publish_many_raw<S: AsRef<str>>(
        &self,
        channels: &[S],
        json: &str,
    ) -> Result<PublishId, Error> {
        self.publish_text(Target::channels(channels)?, validate_json(json)?)
    }

    fn publish_text(&self, target: Target, json: String) -> Result<PublishId, Error> {
        let limit = self.shared().max_message_size;
        if json.len() > limit {
            return Err(Error::MessageTooLarge {
                size: json.len(),
                limit,
            });
        }
        let id = self.shared().lock_queue().push(target, json)?;
        self.shared().wake();
        Ok(id)
    }

    /// Subscribe. Queued while offline; re-sent after every reconnect from the last position
    /// received. Results arrive as [`Event::Subscribed`] / [`Event::SubscriptionError`].
    pub fn subscribe(&self, options: SubscribeOptions) -> Result<(), Error> {
        if options.channel.is_empty()
            && options.subscription_id.as_deref().is_none_or(str::is_empty)
        {
            return Err(Error::InvalidArgument(
                "subscribe needs a channel or a subscription id".into(),
            ));
        }
        if options.batch_size == Some(0) {
            return Err(Error::InvalidArgument("batch_size must be positive".into()));
        }
        let id = options.id().to_string();
        if !self.shared().lock_subscriptions().insert(id.clone()) {
            return Err(Error::InvalidArgument(format!(
                "subscription {id:?} already exists"
            )));
        }
        self.shared().send(Command::Subscribe(options))
    }

    /// End a subscription; [`Event::Unsubscribed`] follows.
    pub fn unsubscribe(&self, subscription_id: &str) -> Result<(), Error> {
        if !self.shared().lock_subscriptions().remove(subscription_id) {
            return Err(Error::InvalidArgument(format!(
                "no subscription {subscription_id:?}"
            )));
        }
        self.shared()
            .send(Command::Unsubscribe(subscription_id.to_string()))
    }

    /// Read the value stored on `channel` (`None` when nothing is stored). Waits for a connection
    /// and the answer at most `timeout`.
    pub fn read(&self, channel: &str, timeout: Duration) -> Result<Option<Value>, Error> {
        let body = serde_json::json!({ "channel": nonempty(channel)? });
        let answer = self.request(action::READ, body, timeout)?;
        Ok(match answer.get("message") {
            None | Some(Value::Null) => None,
            Some(v) => Some(v.clone()),
        })
    }

    /// Store `value` as the only value of `channel`.
    pub fn write(&self, channel: &str, value: &Value, timeout: Duration) -> Result<(), Error> {
        let body = serde_json::json!({ "channel": nonempty(channel)?, "message": value });
        self.request(action::WRITE, body, timeout).map(drop)
    }

    /// Delete the value of `channel`.
    pub fn delete(&self, channel: &str, timeout: Duration) -> Result<(), Error> {
        let body = serde_json::json!({ "channel": nonempty(channel)? });
        self.request(action::DELETE, body, timeout).map(drop)
    }

    /// Send any request PDU and wait for its `/ok` body (for admin actions and tools).
    pub fn request(&self, action: &str, body: Value, timeout: Duration) -> Result<Value, Error> {
        if action.is_empty() {
            return Err(Error::InvalidArgument("empty action".into()));
        }
        let (tx, rx) = crossbeam_channel::bounded(1);
        let deadline = Instant::now() + timeout;
        self.shared().send(Command::Request(Request {
            action: action.to_string(),
            body,
            reply: tx,
            deadline,
        }))?;
        match rx.recv_timeout(timeout) {
            Ok(result) => result,
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => Err(Error::Timeout(timeout)),
            Err(crossbeam_channel::RecvTimeoutError::Disconnected) => Err(Error::Shutdown),
        }
    }

    /// Messages in the publish queue (unsent plus awaiting acknowledgement).
    pub fn pending_count(&self) -> usize {
        self.shared().lock_queue().len()
    }
}

fn nonempty(channel: &str) -> Result<&str, Error> {
    if channel.is_empty() {
        Err(Error::InvalidArgument("empty channel".into()))
    } else {
        Ok(channel)
    }
}

fn to_json(v: &Value) -> Result<String, Error> {
    serde_json::to_string(v)
        .map_err(|e| Error::InvalidArgument(format!("message does not serialize: {e}")))
}

fn validate_json(s: &str) -> Result<String, Error> {
    match serde_json::from_str::<&serde_json::value::RawValue>(s) {
        Ok(raw) => Ok(raw.get().to_string()),
        Err(e) => Err(Error::InvalidArgument(format!("message is not JSON: {e}"))),
    }
}
