//! What the engine shares with the [`Client`](crate::Client) handles: the command channel and its
//! waker, the published state, the publish queue, the held subscription ids and the event channel.
//! The engine owns this module; the handles only call into it.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Mutex, MutexGuard};

use crossbeam_channel::{Receiver, Sender};

use crate::error::Error;
use crate::event::Event;
use crate::queue::PublishQueue;
use crate::session::Request;
use crate::subscription::SubscribeOptions;

/// Commands from the handles.
pub(crate) enum Command {
    Connect,
    Disconnect(Option<Sender<()>>),
    Suspend,
    Resume,
    NetworkChanged,
    Subscribe(SubscribeOptions),
    Unsubscribe(String),
    Request(Request),
    Shutdown,
}

/// State shared between the handles and the engine thread.
pub(crate) struct Shared {
    pub cmd_tx: Sender<Command>,
    pub waker: mio::Waker,
    /// Set when a wake is pending, so a burst of publishes costs one syscall.
    pub notified: AtomicBool,
    pub state: AtomicU8,
    pub queue: Mutex<PublishQueue>,
    /// Subscription ids currently held (to refuse duplicates at the call).
    pub subscriptions: Mutex<HashSet<String>>,
    pub events_tx: Sender<Event>,
    pub events_rx: Receiver<Event>,
    pub events_enabled: AtomicBool,
    pub max_message_size: usize,
}

impl Shared {
    /// Wake the engine unless a wake is already pending.
    pub(crate) fn wake(&self) {
        if !self.notified.swap(true, Ordering::AcqRel) {
            // A failed wake means the poller is gone, i.e. the engine stopped: nothing to do.
            let _ = self.waker.wake();
        }
    }

    pub(crate) fn send(&self, cmd: Command) -> Result<(), Error> {
        self.cmd_tx.send(cmd).map_err(|_| Error::Shutdown)?;
        self.wake();
        Ok(())
    }

    pub(crate) fn lock_queue(&self) -> MutexGuard<'_, PublishQueue> {
        // A panic while holding the lock cannot leave the queue inconsistent in a way that
        // matters more than losing the client, so recover the guard.
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn lock_subscriptions(&self) -> MutexGuard<'_, HashSet<String>> {
        self.subscriptions.lock().unwrap_or_else(|e| e.into_inner())
    }
}
