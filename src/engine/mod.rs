//! The engine: one thread per client, blocked in `mio::Poll` on its socket and a waker.
//!
//! Every step is non-blocking (DNS runs on a helper thread, connect/TLS/upgrade are driven by
//! readiness, large messages go out fragment by fragment), so a command is served within one
//! loop turn. Between heartbeats an idle connection has no timer and no wakeup.

mod conn;
mod connect;
mod large;
mod open;
mod reconnect;
mod shared;

use std::collections::HashSet;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, TryRecvError};
use mio::{Poll, Token};

use crate::backoff::Backoff;
use crate::config::{Config, Endpoint};
use crate::error::{Error, ErrorKind};
use crate::event::{ClosedBy, Event, Listener};
use crate::queue::PublishQueue;
use crate::session::{Output, Session};
use crate::state::State;
use conn::Conn;
use connect::Prepared;

pub(crate) use crate::session::Request;
pub(crate) use shared::{Command, Shared};

/// The waker's token.
const WAKER: Token = Token(0);
const SOCKET: Token = Token(1);
/// Stop framing new messages while this many bytes wait for the socket.
pub(crate) const HIGH_WATER: usize = 256 << 10;
/// Bytes read per pass before decoding.
const READ_BUDGET: usize = 256 << 10;
/// Read passes per loop turn before serving commands again.
const READ_PASSES: usize = 8;
/// How long a closing connection waits for the server's close frame.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);
/// Messages framed per loop turn (bounds a turn's duration under a deep queue).
const FLUSH_BATCH: usize = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Not connecting (initial, or after `disconnect()`).
    Idle,
    /// Connected or trying to be.
    Active,
    /// `suspend()`ed.
    Suspended,
}

/// Validate `config`, open the spool if configured, build the state shared with the handles and
/// start the engine thread on it.
pub(crate) fn start(
    config: Config,
    listener: Option<Arc<dyn Listener>>,
) -> Result<(Arc<Shared>, JoinHandle<()>), Error> {
    config.validate()?;
    let endpoint = Endpoint::parse(&config.endpoint, &config.appkey)?;
    let prepared = Prepared::new(&config, endpoint)?;
    let queue = PublishQueue::new(&config)?;
    let poll = Poll::new().map_err(|e| Error::Io(format!("creating the poller: {e}")))?;
    let waker = mio::Waker::new(poll.registry(), WAKER)
        .map_err(|e| Error::Io(format!("creating the waker: {e}")))?;
    let (cmd_tx, cmd_rx) = crossbeam_channel::unbounded();
    let shared = Arc::new(Shared {
        cmd_tx,
        waker,
        notified: AtomicBool::new(false),
        state: AtomicU8::new(State::Disconnected as u8),
        queue: Mutex::new(queue),
        subscriptions: Mutex::new(HashSet::new()),
        events: std::sync::OnceLock::new(),
        event_queue_capacity: config.event_queue_capacity,
        max_message_size: config.max_message_size,
    });
    let engine = Engine {
        session: Session::new(&config.role, &config.secret),
        backoff: Backoff::new(config.backoff_min, config.backoff_max),
        url: config.endpoint.clone(),
        config,
        prepared,
        poll,
        cmd_rx,
        shared: shared.clone(),
        listener,
        mode: Mode::Idle,
        conn: None,
        closing: None,
        retry_at: None,
        attempt: 0,
        request_deadline: None,
        events_dropped: 0,
        outputs: Vec::new(),
        pdu: String::new(),
    };
    let thread = std::thread::Builder::new()
        .name("cobra-engine".into())
        .spawn(move || engine.run())
        .map_err(|e| Error::Io(format!("spawning the engine thread: {e}")))?;
    Ok((shared, thread))
}

pub(crate) struct Engine {
    config: Config,
    prepared: Prepared,
    poll: Poll,
    cmd_rx: Receiver<Command>,
    shared: Arc<Shared>,
    listener: Option<Arc<dyn Listener>>,
    session: Session,
    backoff: Backoff,
    mode: Mode,
    conn: Option<Conn>,
    /// A connection finishing its close handshake.
    closing: Option<Conn>,
    retry_at: Option<Instant>,
    attempt: u32,
    request_deadline: Option<Instant>,
    events_dropped: u64,
    outputs: Vec<Output>,
    pdu: String,
    url: String,
}

impl Engine {
    /// The thread body.
    fn run(mut self) {
        let mut events = mio::Events::with_capacity(16);
        // Report what the spool found on open before sleeping.
        self.report_drops();
        loop {
            let timeout = self.timeout(Instant::now());
            if let Err(e) = self.poll.poll(&mut events, timeout)
                && e.kind() != std::io::ErrorKind::Interrupted
            {
                log::error!("cobra engine: poll failed, stopping: {e}");
                break;
            }
            // Cleared before draining so a command sent from now on wakes us again.
            self.shared.notified.store(false, Ordering::Release);
            loop {
                match self.cmd_rx.try_recv() {
                    Ok(Command::Shutdown) | Err(TryRecvError::Disconnected) => {
                        self.stop();
                        return;
                    }
                    Ok(cmd) => self.command(cmd),
                    Err(TryRecvError::Empty) => break,
                }
            }
            self.step(Instant::now());
        }
        self.stop();
    }

    fn stop(&mut self) {
        self.close(ClosedBy::ByLocal, 1001, "client dropped", false);
        self.closing = None;
        self.session.cancel_waiting("client dropped");
        self.set_state(State::Stopped);
    }

    /// How long poll may sleep: until the nearest deadline, or forever.
    fn timeout(&self, now: Instant) -> Option<Duration> {
        let mut next: Option<Instant> = None;
        let mut consider = |t: Option<Instant>| {
            if let Some(t) = t {
                next = Some(next.map_or(t, |n| n.min(t)));
            }
        };
        if self.mode == Mode::Active && self.conn.is_none() {
            consider(self.retry_at);
        }
        if let Some(c) = &self.conn {
            // A large message in progress whose last fragments all fit in the socket: no
            // writable edge will come (the socket never filled), so pump the next ones now.
            let large_stalled = c.is_open() && c.large.is_some() && c.out.is_empty();
            if c.more_to_read
                || large_stalled
                || (c.is_open() && self.session.is_authenticated() && self.can_flush(c))
            {
                return Some(Duration::ZERO);
            }
            consider(c.deadline);
            consider(c.next_ping);
            consider(c.pong_deadline);
            consider(
                self.session
                    .oldest_request()
                    .map(|t| t + self.config.request_timeout),
            );
        }
        if let Some(c) = &self.closing {
            consider(c.deadline);
        }
        consider(self.request_deadline);
        next.map(|t| t.saturating_duration_since(now))
    }

    /// True when queued messages could be framed now (socket has room and nothing large is out).
    fn can_flush(&self, c: &Conn) -> bool {
        c.large.is_none() && c.out.len() < HIGH_WATER && self.shared.lock_queue().has_unsent()
    }

    fn set_state(&self, state: State) {
        self.shared.state.store(state as u8, Ordering::Release);
    }

    fn emit(&mut self, event: Event) {
        if let Some(listener) = &self.listener
            && catch_unwind(AssertUnwindSafe(|| listener.on_event(&event))).is_err()
        {
            log::error!("cobra listener panicked on {event:?}; continuing");
        }
        if let Some((tx, _)) = self.shared.events.get()
            && tx.try_send(event).is_err()
        {
            self.events_dropped += 1;
            if self.events_dropped.is_power_of_two() {
                log::warn!(
                    "cobra events channel full: {} events dropped so far",
                    self.events_dropped
                );
            }
        }
    }

    fn command(&mut self, cmd: Command) {
        match cmd {
            Command::Connect => {
                if self.mode != Mode::Active {
                    self.mode = Mode::Active;
                    self.backoff.reset();
                    self.attempt = 0;
                }
                if self.conn.is_none() && self.retry_at.is_none() {
                    self.start_attempt();
                }
            }
            Command::Disconnect(ack) => {
                // State first: listeners see it when the Closed event arrives.
                self.set_state(State::Disconnected);
                self.mode = Mode::Idle;
                self.close(ClosedBy::ByLocal, 1000, "disconnect", true);
                self.retry_at = None;
                self.session.cancel_waiting("disconnected");
                if let Some(ack) = ack {
                    let _ = ack.send(());
                }
            }
            Command::Suspend => {
                self.set_state(State::Suspended);
                self.mode = Mode::Suspended;
                self.close(ClosedBy::ByLocal, 1001, "suspended", true);
                self.retry_at = None;
            }
            Command::Resume => {
                if self.mode == Mode::Suspended {
                    self.mode = Mode::Active;
                    self.backoff.reset();
                    self.attempt = 0;
                    self.start_attempt();
                }
            }
            Command::NetworkChanged => {
                if self.mode == Mode::Active {
                    self.close(ClosedBy::ByLocal, 1001, "network changed", true);
                    self.backoff.reset();
                    self.attempt = 0;
                    self.start_attempt();
                }
            }
            Command::Subscribe(options) => {
                let mut out = std::mem::take(&mut self.outputs);
                self.session.subscribe(options, &mut out);
                self.handle_outputs(out);
            }
            Command::Unsubscribe(id) => {
                let mut out = std::mem::take(&mut self.outputs);
                self.session.unsubscribe(&id, &mut out);
                self.handle_outputs(out);
            }
            Command::Request(req) => {
                let mut out = std::mem::take(&mut self.outputs);
                self.session.request(req, &mut out);
                self.handle_outputs(out);
                self.request_deadline = self.session.expire(Instant::now());
            }
            Command::Shutdown => {}
        }
    }

    /// One pass over everything that may have progressed.
    fn step(&mut self, now: Instant) {
        self.report_drops();
        if self.request_deadline.is_some_and(|d| d <= now) {
            self.request_deadline = self.session.expire(now);
        }
        self.step_closing(now);
        if self.conn.is_none()
            && self.mode == Mode::Active
            && self.retry_at.is_some_and(|t| t <= now)
        {
            self.start_attempt();
        }
        if self.conn.is_some()
            && let Err(f) = self.drive(now)
        {
            self.fail(f);
        }
        {
            // Spooled appends reach the disk once the burst is over (or while offline).
            let mut q = self.shared.lock_queue();
            if !q.has_unsent() || self.conn.as_ref().is_none_or(|c| !c.is_open()) {
                q.sync_spool();
            }
        }
        self.report_drops();
    }

    fn report_drops(&mut self) {
        let (drops, spool_errors) = {
            let mut q = self.shared.lock_queue();
            (q.take_drops(), q.take_spool_errors())
        };
        for message in spool_errors {
            log::warn!("cobra spool: {message}");
            self.emit(Event::Error {
                kind: ErrorKind::Spool,
                message,
                retry_count: 0,
                next_wait: None,
            });
        }
        for (id, reason) in drops {
            self.emit(Event::PublishDropped { id, reason });
        }
    }
}
