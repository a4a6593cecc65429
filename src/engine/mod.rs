//! The engine: one thread per client, blocked in `mio::Poll` on its socket and a waker.
//!
//! Every step is non-blocking (DNS runs on a helper thread, connect/TLS/upgrade are driven by
//! readiness, large messages go out fragment by fragment), so a command is served within one
//! loop turn. Between heartbeats an idle connection has no timer and no wakeup.

mod conn;
mod large;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bytes::Buf;
use cobra_wire::handshake::{self, ClientRequestParams, HandshakeError};
use cobra_wire::limits::Limits;
use cobra_wire::pmd::{self, PmdConfig};
use cobra_wire::ws::{Codec, Message, Role};
use crossbeam_channel::{Receiver, Sender, TryRecvError};
use mio::{Interest, Poll, Token};

use crate::backoff::Backoff;
use crate::client::{Shared, State, SubscribeOptions};
use crate::config::{Config, Endpoint, ProxyUrl};
use crate::error::{Error, ErrorKind};
use crate::event::{ClosedBy, Event, Listener};
use crate::session::{Output, Session};
#[cfg(feature = "tls")]
use crate::transport;
use crate::transport::{ReadStatus, Stream, TransportError, dns, proxy};
use conn::{Conn, Phase};

pub(crate) use crate::session::Request;

/// The waker's token.
pub(crate) const WAKER: Token = Token(0);
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

/// What `Client::new` prepares once from the config.
pub(crate) struct Prepared {
    endpoint: Endpoint,
    proxy: Option<ProxyUrl>,
    #[cfg(feature = "tls")]
    tls: Option<(
        Arc<rustls::ClientConfig>,
        rustls::pki_types::ServerName<'static>,
    )>,
    pmd: Option<PmdConfig>,
    limits: Limits,
}

impl Prepared {
    pub fn new(config: &Config, endpoint: Endpoint) -> Result<Self, Error> {
        let proxy = config.proxy.as_deref().map(ProxyUrl::parse).transpose()?;
        #[cfg(feature = "tls")]
        let tls = if endpoint.tls {
            let cfg = transport::tls::client_config(&config.tls)?;
            Some((cfg, transport::tls::server_name(&endpoint.host)?))
        } else {
            None
        };
        let pmd = config.deflate.map(|d| PmdConfig {
            client_no_context_takeover: d.client_no_context_takeover,
            server_no_context_takeover: d.server_no_context_takeover,
            client_max_window_bits: Some(d.client_max_window_bits),
            server_max_window_bits: (d.server_max_window_bits < 15)
                .then_some(d.server_max_window_bits),
            ..PmdConfig::default()
        });
        let limits = Limits {
            max_message_size: config.max_message_size,
            // Servers send a PDU as one frame; a frame may be as large as a message.
            max_frame_size: config.max_message_size,
            ..Limits::DEFAULT
        };
        Ok(Self {
            endpoint,
            proxy,
            #[cfg(feature = "tls")]
            tls,
            pmd,
            limits,
        })
    }
}

/// Why a connection ends.
struct Failure {
    kind: ErrorKind,
    message: String,
    /// Close frame we send (code), if the WebSocket is open.
    send_close: Option<u16>,
    /// The server's close frame, if it sent one.
    remote_close: Option<(u16, String)>,
}

impl Failure {
    fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            send_close: None,
            remote_close: None,
        }
    }
    fn closing(kind: ErrorKind, message: impl Into<String>, code: u16) -> Self {
        Self {
            send_close: Some(code),
            ..Self::new(kind, message)
        }
    }
}

fn transport_failure(e: TransportError) -> Failure {
    match e {
        #[cfg(feature = "tls")]
        TransportError::Tls(e) => Failure::new(ErrorKind::Tls, e.to_string()),
        TransportError::Io(e) => Failure::new(ErrorKind::ConnectionLost, e.to_string()),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Not connecting (initial, or after `disconnect()`).
    Idle,
    /// Connected or trying to be.
    Active,
    /// `suspend()`ed.
    Suspended,
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
    pub fn new(
        config: Config,
        prepared: Prepared,
        poll: Poll,
        cmd_rx: Receiver<Command>,
        shared: Arc<Shared>,
        listener: Option<Arc<dyn Listener>>,
    ) -> Self {
        let url = config.endpoint.clone();
        Self {
            session: Session::new(&config.role, &config.secret),
            backoff: Backoff::new(config.backoff_min, config.backoff_max),
            config,
            prepared,
            poll,
            cmd_rx,
            shared,
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
            url,
        }
    }

    /// The thread body.
    pub fn run(mut self) {
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

    fn start_attempt(&mut self) {
        self.retry_at = None;
        self.attempt += 1;
        self.set_state(State::Connecting);
        self.emit(Event::Connecting {
            url: self.url.clone(),
            attempt: self.attempt,
        });
        let (host, port) = match &self.prepared.proxy {
            Some(p) => (p.host.clone(), p.port),
            None => (
                self.prepared.endpoint.host.clone(),
                self.prepared.endpoint.port,
            ),
        };
        let rx = dns::resolve(&host, port, &self.shared);
        self.conn = Some(Conn::new(
            Phase::Resolving(rx),
            Instant::now() + self.config.connect_timeout,
        ));
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

    /// Advance the current connection as far as it goes without blocking.
    fn drive(&mut self, now: Instant) -> Result<(), Failure> {
        loop {
            let Some(conn) = self.conn.as_mut() else {
                return Ok(());
            };
            if conn.deadline.is_some_and(|d| d <= now) {
                let what = match conn.phase {
                    Phase::Resolving(_) | Phase::Connecting(_) => "connect",
                    _ => "handshake",
                };
                return Err(Failure::closing(
                    ErrorKind::Timeout,
                    format!("{what} timed out"),
                    1000,
                ));
            }
            match &mut conn.phase {
                Phase::Resolving(rx) => match rx.try_recv() {
                    Ok(Ok(addrs)) => {
                        let addrs = addrs.into();
                        self.connect_next(addrs)?;
                    }
                    Ok(Err(e)) => return Err(Failure::new(ErrorKind::Dns, e)),
                    Err(TryRecvError::Empty) => return Ok(()),
                    Err(TryRecvError::Disconnected) => {
                        return Err(Failure::new(ErrorKind::Dns, "resolver failed"));
                    }
                },
                Phase::Connecting(_) => {
                    if !self.check_connected()? {
                        return Ok(());
                    }
                }
                Phase::Proxy => {
                    let status = conn.io(READ_BUDGET).map_err(transport_failure)?;
                    match proxy::parse_response(&conn.rbuf)
                        .map_err(|e| Failure::new(ErrorKind::Proxy, e))?
                    {
                        Some(n) => {
                            conn.rbuf.advance(n);
                            if !conn.rbuf.is_empty() {
                                return Err(Failure::new(
                                    ErrorKind::Proxy,
                                    "proxy sent data before the tunnel was used",
                                ));
                            }
                            self.begin_upgrade()?;
                        }
                        None if status == ReadStatus::Eof => {
                            return Err(Failure::new(
                                ErrorKind::Proxy,
                                "proxy closed the connection",
                            ));
                        }
                        None => return Ok(()),
                    }
                }
                Phase::Upgrade { key } => {
                    let key = key.clone();
                    let status = conn.io(READ_BUDGET).map_err(transport_failure)?;
                    match handshake::parse_response(&conn.rbuf, &key, &self.prepared.limits) {
                        Ok(Some((resp, n))) => {
                            conn.rbuf.advance(n);
                            self.on_upgraded(resp)?;
                        }
                        Ok(None) if status == ReadStatus::Eof => {
                            return Err(Failure::new(
                                ErrorKind::Handshake,
                                "connection closed during the upgrade",
                            ));
                        }
                        Ok(None) => return Ok(()),
                        Err(HandshakeError::Status {
                            code: 403,
                            reason,
                            body,
                        }) => {
                            let body = String::from_utf8_lossy(&body);
                            return Err(Failure::new(
                                ErrorKind::Forbidden,
                                format!("HTTP 403 {reason}: {body}"),
                            ));
                        }
                        Err(e) => return Err(Failure::new(ErrorKind::Handshake, e.to_string())),
                    }
                }
                Phase::Open => return self.drive_open(now),
                Phase::Closing => return Ok(()),
            }
        }
    }

    fn connect_next(
        &mut self,
        mut addrs: std::collections::VecDeque<std::net::SocketAddr>,
    ) -> Result<(), Failure> {
        let mut last_error = String::from("no address");
        while let Some(addr) = addrs.pop_front() {
            match mio::net::TcpStream::connect(addr) {
                Ok(mut tcp) => {
                    if let Err(e) = self.poll.registry().register(
                        &mut tcp,
                        SOCKET,
                        Interest::READABLE | Interest::WRITABLE,
                    ) {
                        last_error = format!("{addr}: {e}");
                        continue;
                    }
                    let conn = self
                        .conn
                        .as_mut()
                        .ok_or_else(|| Failure::new(ErrorKind::Connect, "no attempt"))?;
                    conn.stream = Some(Stream::new(tcp));
                    conn.phase = Phase::Connecting(addrs);
                    return Ok(());
                }
                Err(e) => last_error = format!("{addr}: {e}"),
            }
        }
        Err(Failure::new(ErrorKind::Connect, last_error))
    }

    /// Ok(true) once the TCP connect completed (and the next phase began).
    fn check_connected(&mut self) -> Result<bool, Failure> {
        let Some(conn) = self.conn.as_mut() else {
            return Ok(false);
        };
        let Some(stream) = conn.stream.as_mut() else {
            return Ok(false);
        };
        let tcp = stream.tcp();
        let error = match tcp.take_error() {
            Ok(Some(e)) | Err(e) => Some(e.to_string()),
            Ok(None) => None,
        };
        if error.is_none() {
            match tcp.peer_addr() {
                Ok(_) => {
                    let _ = tcp.set_nodelay(true);
                    self.on_tcp_connected()?;
                    return Ok(true);
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotConnected => return Ok(false),
                Err(e) if e.raw_os_error() == Some(libc_einprogress()) => return Ok(false),
                Err(_) => {}
            }
        }
        // This address failed: try the next one.
        let message = error.unwrap_or_else(|| "connection refused".into());
        let Phase::Connecting(addrs) = std::mem::replace(&mut conn.phase, Phase::Proxy) else {
            return Ok(false);
        };
        if let Some(mut s) = conn.stream.take() {
            let _ = self.poll.registry().deregister(s.tcp());
        }
        if addrs.is_empty() {
            return Err(Failure::new(ErrorKind::Connect, message));
        }
        log::debug!("connect failed ({message}); trying the next address");
        self.connect_next(addrs)?;
        Ok(false)
    }

    fn on_tcp_connected(&mut self) -> Result<(), Failure> {
        let deadline = Instant::now() + self.config.handshake_timeout;
        let Some(conn) = self.conn.as_mut() else {
            return Ok(());
        };
        conn.deadline = Some(deadline);
        match &self.prepared.proxy {
            Some(p) => {
                let req = proxy::connect_request(
                    p,
                    &self.prepared.endpoint.host,
                    self.prepared.endpoint.port,
                );
                conn.out.vec().extend_from_slice(&req);
                conn.phase = Phase::Proxy;
                Ok(())
            }
            None => self.begin_upgrade(),
        }
    }

    /// Start TLS if needed and queue the upgrade request (held by TLS until its handshake ends).
    fn begin_upgrade(&mut self) -> Result<(), Failure> {
        let Some(conn) = self.conn.as_mut() else {
            return Ok(());
        };
        #[cfg(feature = "tls")]
        if let (Some((cfg, name)), Some(stream)) = (&self.prepared.tls, conn.stream.as_mut()) {
            stream
                .start_tls(cfg.clone(), name.clone())
                .map_err(transport_failure)?;
        }
        let offer = self.prepared.pmd.as_ref().map(pmd::client_offer);
        let ep = &self.prepared.endpoint;
        let params = ClientRequestParams {
            host: &ep.host,
            port: ep.port,
            path_and_query: &ep.resource,
            subprotocol: Some("json"),
            extensions: offer.as_deref(),
            user_agent: Some(&self.config.user_agent),
            extra_headers: &self.config.extra_headers,
        };
        let (request, key) = handshake::client_request(&params)
            .map_err(|e| Failure::new(ErrorKind::Handshake, e.to_string()))?;
        conn.out.vec().extend_from_slice(&request);
        conn.phase = Phase::Upgrade { key };
        Ok(())
    }

    fn on_upgraded(&mut self, resp: handshake::Response) -> Result<(), Failure> {
        if let Some(proto) = &resp.subprotocol
            && proto != "json"
        {
            return Err(Failure::new(
                ErrorKind::Handshake,
                format!("server picked subprotocol {proto:?}, not json"),
            ));
        }
        let negotiated = match (&resp.extensions, &self.prepared.pmd) {
            (None, _) => None,
            (Some(ext), Some(offer)) => Some(pmd::client_accept(offer, ext).map_err(|e| {
                Failure::new(ErrorKind::Handshake, format!("bad extension answer: {e}"))
            })?),
            (Some(ext), None) => {
                return Err(Failure::new(
                    ErrorKind::Handshake,
                    format!("server answered an extension not offered: {ext}"),
                ));
            }
        };
        let Some(conn) = self.conn.as_mut() else {
            return Ok(());
        };
        conn.codec = Some(Codec::new(Role::Client, self.prepared.limits, negotiated));
        conn.phase = Phase::Open;
        if !self.config.ping_interval.is_zero() {
            conn.next_ping = Some(Instant::now() + self.config.ping_interval);
        }
        log::debug!(
            "cobra: WebSocket open to {} (deflate: {})",
            self.url,
            negotiated.is_some()
        );
        self.set_state(State::Authenticating);
        self.emit(Event::Open);
        let mut out = std::mem::take(&mut self.outputs);
        self.session.on_open(&mut out);
        self.handle_outputs(out);
        Ok(())
    }

    fn drive_open(&mut self, now: Instant) -> Result<(), Failure> {
        for _ in 0..READ_PASSES {
            let status = {
                let Some(conn) = self.conn.as_mut() else {
                    return Ok(());
                };
                conn.io(READ_BUDGET).map_err(transport_failure)?
            };
            self.decode_all()?;
            if self.conn.is_none() {
                return Ok(());
            }
            match status {
                ReadStatus::Eof => {
                    return Err(Failure::new(
                        ErrorKind::ConnectionLost,
                        "connection closed by the peer",
                    ));
                }
                ReadStatus::Drained => break,
                ReadStatus::More => {}
            }
        }
        self.heartbeat(now)?;
        if let Some(sent) = self.session.oldest_request()
            && now.saturating_duration_since(sent) >= self.config.request_timeout
        {
            // A server that stops answering is as dead as one that stops ponging.
            let limit = self.config.request_timeout;
            return Err(Failure::closing(
                ErrorKind::Timeout,
                format!("no answer to a request within {limit:?}"),
                1000,
            ));
        }
        self.flush_queue();
        let Some(conn) = self.conn.as_mut() else {
            return Ok(());
        };
        conn.pump_large(HIGH_WATER);
        conn.flush().map_err(transport_failure)
    }

    fn decode_all(&mut self) -> Result<(), Failure> {
        loop {
            let Some(conn) = self.conn.as_mut() else {
                return Ok(());
            };
            let Some(codec) = conn.codec.as_mut() else {
                return Ok(());
            };
            let msg = match codec.decode(&mut conn.rbuf) {
                Ok(Some(m)) => m,
                Ok(None) => return Ok(()),
                Err(e) => {
                    return Err(Failure::closing(
                        ErrorKind::Protocol,
                        e.to_string(),
                        e.close_code(),
                    ));
                }
            };
            match msg {
                Message::Text(text) => self.on_text(&text)?,
                Message::Binary(data) => match std::str::from_utf8(&data) {
                    Ok(text) => self.on_text(text)?,
                    Err(_) => {
                        return Err(Failure::closing(
                            ErrorKind::Protocol,
                            "binary message is not a PDU",
                            1003,
                        ));
                    }
                },
                Message::Ping(data) => {
                    if let Some(codec) = conn.codec.as_mut() {
                        // A ping payload is at most 125 bytes, so the pong always encodes.
                        let _ = codec.encode_pong(&data, conn.out.vec());
                    }
                }
                Message::Pong(data) => {
                    if let Some((payload, sent)) = conn.ping
                        && data == payload
                    {
                        conn.ping = None;
                        conn.pong_deadline = None;
                        let rtt = sent.elapsed();
                        self.emit(Event::Pong { rtt });
                    }
                }
                Message::Close(frame) => {
                    let (code, reason) = frame
                        .map(|f| (f.code, f.reason))
                        .unwrap_or((1005, String::new()));
                    if let Some(codec) = conn.codec.as_mut() {
                        // Echo the close (RFC 6455 §5.5.1), then drop the connection.
                        if cobra_wire::ws::is_valid_close_code(code) {
                            let _ = codec.encode_close(code, "", conn.out.vec());
                        } else {
                            codec.encode_close_empty(conn.out.vec());
                        }
                        let _ = conn.flush();
                    }
                    return Err(Failure {
                        remote_close: Some((code, reason.clone())),
                        ..Failure::new(
                            ErrorKind::ClosedByServer,
                            format!("server closed: {code} {reason}"),
                        )
                    });
                }
            }
        }
    }

    fn on_text(&mut self, text: &str) -> Result<(), Failure> {
        let mut out = std::mem::take(&mut self.outputs);
        let result = self.session.on_text(text, &mut out);
        self.handle_outputs(out);
        result.map_err(|e| {
            let code = if e.kind == ErrorKind::AuthenticationFailed {
                1000
            } else {
                1002
            };
            Failure::closing(e.kind, e.message, code)
        })
    }

    fn handle_outputs(&mut self, mut out: Vec<Output>) {
        for o in out.drain(..) {
            match o {
                Output::Send(text) => {
                    if let Some(conn) = self.conn.as_mut() {
                        conn.send_text(text);
                    }
                }
                Output::Event(e) => self.emit(e),
                Output::Ack(id) => {
                    if self.shared.lock_queue().ack(id) {
                        self.emit(Event::Published { id });
                    }
                }
                Output::Refused(id, reason) => {
                    if self.shared.lock_queue().refuse(id) {
                        self.emit(Event::PublishDropped { id, reason });
                    }
                }
                Output::Authenticated => {
                    self.backoff.reset();
                    self.attempt = 0;
                    if let Some(conn) = self.conn.as_mut() {
                        conn.deadline = None;
                    }
                    self.set_state(State::Connected);
                }
                Output::SubscriptionGone(id) => {
                    self.shared.lock_subscriptions().remove(&id);
                }
            }
        }
        // Keep the allocation for the next step.
        if self.outputs.capacity() < out.capacity() {
            self.outputs = out;
        }
    }

    fn heartbeat(&mut self, now: Instant) -> Result<(), Failure> {
        let interval = self.config.ping_interval;
        let pong_timeout = self.config.pong_timeout;
        let Some(conn) = self.conn.as_mut() else {
            return Ok(());
        };
        if conn.pong_deadline.is_some_and(|d| d <= now) {
            return Err(Failure::new(
                ErrorKind::PongTimeout,
                format!("no pong within {pong_timeout:?}"),
            ));
        }
        if conn.ping.is_none() && conn.next_ping.is_some_and(|t| t <= now) {
            conn.ping_counter += 1;
            let payload = conn.ping_counter.to_be_bytes();
            if let Some(codec) = conn.codec.as_mut() {
                let _ = codec.encode_ping(&payload, conn.out.vec());
            }
            conn.ping = Some((payload, now));
            conn.pong_deadline = Some(now + pong_timeout);
            conn.next_ping = Some(now + interval);
        } else if conn.ping.is_some() && conn.next_ping.is_some_and(|t| t <= now) {
            // A ping is still out: the next one is due once its pong (or timeout) arrives.
            conn.next_ping = Some(now + interval);
        }
        Ok(())
    }

    /// Frame queued messages while the socket keeps up.
    fn flush_queue(&mut self) {
        if !self.session.is_authenticated() {
            return;
        }
        let Some(conn) = self.conn.as_mut() else {
            return;
        };
        for _ in 0..FLUSH_BATCH {
            if conn.large.is_some() || conn.out.len() >= HIGH_WATER {
                return;
            }
            let Some(entry) = self.shared.lock_queue().next_unsent() else {
                return;
            };
            self.pdu.clear();
            entry.write_pdu(&mut self.pdu);
            if self.pdu.len() > large::LARGE_MESSAGE {
                conn.send_text(std::mem::take(&mut self.pdu));
            } else {
                conn.send_str(&self.pdu);
            }
        }
    }

    /// Drop the current connection attempt or connection. `graceful`: send a close frame and
    /// let it finish the close handshake in the background (at most [`CLOSE_TIMEOUT`]).
    fn close(&mut self, by: ClosedBy, code: u16, reason: &str, graceful: bool) {
        let Some(mut conn) = self.conn.take() else {
            return;
        };
        let was_open = conn.is_open();
        if was_open {
            conn.large = None;
            if graceful && let Some(codec) = conn.codec.as_mut() {
                let _ = codec.encode_close(code, reason, conn.out.vec());
                if conn.flush().is_ok() {
                    conn.phase = Phase::Closing;
                    conn.deadline = Some(Instant::now() + CLOSE_TIMEOUT);
                    conn.next_ping = None;
                    conn.pong_deadline = None;
                    conn.more_to_read = false;
                    let previous = self.closing.replace(conn);
                    self.drop_conn(previous);
                } else {
                    self.drop_conn(Some(conn));
                }
            } else {
                self.drop_conn(Some(conn));
            }
            self.emit(Event::Closed {
                code,
                reason: reason.to_string(),
                by,
            });
        } else {
            self.drop_conn(Some(conn));
        }
        self.connection_gone();
    }

    fn drop_conn(&mut self, conn: Option<Conn>) {
        if let Some(mut c) = conn
            && let Some(s) = c.stream.as_mut()
        {
            let _ = self.poll.registry().deregister(s.tcp());
        }
    }

    /// Bookkeeping shared by every way a connection ends.
    fn connection_gone(&mut self) {
        let mut out = std::mem::take(&mut self.outputs);
        self.session.on_close(&mut out);
        self.handle_outputs(out);
        self.shared
            .lock_queue()
            .connection_lost(self.config.delivery);
        self.report_drops();
    }

    /// Serve the closing connection: wait for the server's close frame, EOF or the deadline.
    fn step_closing(&mut self, now: Instant) {
        let Some(conn) = self.closing.as_mut() else {
            return;
        };
        let done = conn.deadline.is_none_or(|d| d <= now)
            || match conn.io(READ_BUDGET) {
                Err(_) | Ok(ReadStatus::Eof) => true,
                Ok(_) => {
                    let mut done = false;
                    if let Some(codec) = conn.codec.as_mut() {
                        loop {
                            match codec.decode(&mut conn.rbuf) {
                                Ok(Some(Message::Close(_))) | Err(_) => {
                                    done = true;
                                    break;
                                }
                                Ok(Some(_)) => {}
                                Ok(None) => break,
                            }
                        }
                    }
                    done
                }
            };
        if done {
            let conn = self.closing.take();
            self.drop_conn(conn);
        }
    }

    /// A connection attempt or connection failed: report it and schedule the next attempt.
    fn fail(&mut self, f: Failure) {
        let was_open = self.conn.as_ref().is_some_and(Conn::is_open);
        if self.mode == Mode::Active {
            // State first: listeners see it when the Closed and Error events arrive.
            self.set_state(State::Reconnecting);
        }
        if let Some(mut conn) = self.conn.take() {
            if was_open && let Some(code) = f.send_close {
                conn.large = None;
                if let Some(codec) = conn.codec.as_mut() {
                    let _ = codec.encode_close(code, &f.message, conn.out.vec());
                    let _ = conn.flush();
                }
            }
            self.drop_conn(Some(conn));
        }
        if was_open {
            let (code, reason, by) = match (&f.remote_close, f.send_close) {
                (Some((code, reason)), _) => (*code, reason.clone(), ClosedBy::ByRemote),
                (None, Some(code)) => (code, f.message.clone(), ClosedBy::ByLocal),
                (None, None) if f.kind == ErrorKind::PongTimeout => {
                    (1006, f.message.clone(), ClosedBy::ByLocal)
                }
                (None, None) => (1006, f.message.clone(), ClosedBy::ByRemote),
            };
            self.emit(Event::Closed { code, reason, by });
        }
        self.connection_gone();
        log::info!("cobra: {:?}: {}", f.kind, f.message);
        // A draining server asks for a reconnect elsewhere: not an error, no backoff.
        let drained =
            matches!(&f.remote_close, Some((code, _)) if *code == cobra_wire::ws::CLOSE_DRAIN);
        if drained && self.mode == Mode::Active {
            let wait = self.backoff.drain_delay();
            self.retry_at = Some(Instant::now() + wait);
            self.emit(Event::Reconnecting {
                attempt: self.attempt + 1,
                wait,
            });
            return;
        }
        if self.mode != Mode::Active {
            self.emit(Event::Error {
                kind: f.kind,
                message: f.message,
                retry_count: self.backoff.failures(),
                next_wait: None,
            });
            return;
        }
        let wait = self.backoff.next_delay(f.kind.is_permanent());
        self.retry_at = Some(Instant::now() + wait);
        self.set_state(State::Reconnecting);
        self.emit(Event::Error {
            kind: f.kind,
            message: f.message,
            retry_count: self.backoff.failures(),
            next_wait: Some(wait),
        });
        self.emit(Event::Reconnecting {
            attempt: self.attempt + 1,
            wait,
        });
    }
}

/// EINPROGRESS, which `peer_addr` may report on some platforms while connecting.
fn libc_einprogress() -> i32 {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        115
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    {
        36
    }
}
