//! Connect phases: DNS, TCP (each address in turn), the proxy's CONNECT, TLS and the WebSocket
//! upgrade, up to the open connection ([`super::open`] takes over from there).

use std::sync::Arc;
use std::time::Instant;

use bytes::Buf;
use cobra_wire::handshake::{self, ClientRequestParams, HandshakeError};
use cobra_wire::limits::Limits;
use cobra_wire::pmd::{self, PmdConfig};
use cobra_wire::ws::{Codec, Role};
use crossbeam_channel::TryRecvError;
use mio::Interest;

use super::conn::{Conn, Phase};
use super::reconnect::{Failure, transport_failure};
use super::{Engine, READ_BUDGET, SOCKET};
use crate::config::{Config, Endpoint, ProxyUrl};
use crate::error::{Error, ErrorKind};
use crate::event::Event;
use crate::state::State;
#[cfg(feature = "tls")]
use crate::transport;
use crate::transport::{ReadStatus, Stream, dns, proxy};

/// What `Client::new` prepares once from the config.
pub(super) struct Prepared {
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
    pub(super) fn new(config: &Config, endpoint: Endpoint) -> Result<Self, Error> {
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

impl Engine {
    pub(super) fn start_attempt(&mut self) {
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
        // The resolver thread wakes the engine when its answer is ready; a weak handle, so a
        // lookup that outlives the client keeps nothing alive.
        let shared = Arc::downgrade(&self.shared);
        let rx = dns::resolve(&host, port, move || {
            if let Some(shared) = shared.upgrade() {
                shared.wake();
            }
        });
        self.conn = Some(Conn::new(
            Phase::Resolving(rx),
            Instant::now() + self.config.connect_timeout,
        ));
    }

    /// Advance the current connection as far as it goes without blocking.
    pub(super) fn drive(&mut self, now: Instant) -> Result<(), Failure> {
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

    pub(super) fn connect_next(
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
    pub(super) fn check_connected(&mut self) -> Result<bool, Failure> {
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
                Err(e) if still_connecting(&e) => return Ok(false),
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

    pub(super) fn on_tcp_connected(&mut self) -> Result<(), Failure> {
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
    pub(super) fn begin_upgrade(&mut self) -> Result<(), Failure> {
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

    pub(super) fn on_upgraded(&mut self, resp: handshake::Response) -> Result<(), Failure> {
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
}

/// True when `peer_addr` failed only because the non-blocking connect is still in progress
/// (mio's documented check: `NotConnected`, or `EINPROGRESS` on some platforms).
fn still_connecting(e: &std::io::Error) -> bool {
    #[cfg(unix)]
    if e.raw_os_error() == Some(libc::EINPROGRESS) {
        return true;
    }
    e.kind() == std::io::ErrorKind::NotConnected
}
