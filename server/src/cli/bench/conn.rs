//! A lean WebSocket + RTM client for load generation: tokio sockets and the `cobra_wire` codec, no SDK
//! engine in between, so the figures measure the server rather than the client.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::{Buf, BytesMut};
use cobra_wire::handshake::{self, ClientRequestParams};
use cobra_wire::pdu::{self, AuthenticateBody, Credentials, HandshakeBody, HandshakeData};
use cobra_wire::pmd::{self, PmdConfig};
use cobra_wire::ws::{Codec, Message, Role};
use cobra_wire::{Limits, auth};
use serde::Serialize;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

use super::BenchError;

/// Read buffer size of an active connection (grows only up to a frame's size when needed).
const READ_CHUNK: usize = 64 << 10;

/// Read buffer of a subscriber ([`Conn::read_in_bulk`]).
const BULK_READ_CHUNK: usize = 256 << 10;

/// `ws://host:port/path`, parsed.
#[derive(Debug, Clone)]
pub(super) struct Endpoint {
    /// Host name or IP.
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// Path with a leading `/` (the appkey query is appended).
    pub path: String,
}

impl Endpoint {
    /// Parses a `ws://` URL (the load tool speaks plain TCP only: TLS would measure rustls).
    pub(super) fn parse(url: &str) -> Result<Endpoint, BenchError> {
        let rest = url.strip_prefix("ws://").ok_or_else(|| {
            BenchError::Usage(format!("endpoint {url:?}: expected ws://host:port[/path]"))
        })?;
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/v2"),
        };
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) => (
                h,
                p.parse::<u16>()
                    .map_err(|_| BenchError::Usage(format!("endpoint {url:?}: bad port {p:?}")))?,
            ),
            None => (authority, 80),
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() {
            return Err(BenchError::Usage(format!("endpoint {url:?}: no host")));
        }
        let path = if path.is_empty() || path == "/" {
            "/v2"
        } else {
            path
        };
        Ok(Endpoint {
            host: host.to_owned(),
            port,
            path: path.to_owned(),
        })
    }

    /// Resolves the endpoint to one socket address.
    pub(super) async fn resolve(&self) -> Result<SocketAddr, BenchError> {
        tokio::net::lookup_host((self.host.as_str(), self.port))
            .await
            .map_err(|e| BenchError::Failed(format!("resolve {}: {e}", self.host)))?
            .next()
            .ok_or_else(|| BenchError::Failed(format!("resolve {}: no address", self.host)))
    }
}

/// Everything needed to open and authenticate a connection.
#[derive(Debug, Clone)]
pub(super) struct ConnectParams {
    /// Where to connect.
    pub endpoint: Endpoint,
    /// Resolved address of the endpoint.
    pub addr: SocketAddr,
    /// Application key.
    pub appkey: String,
    /// Role name.
    pub role: String,
    /// Role secret.
    pub secret: String,
    /// Offer permessage-deflate.
    pub deflate: bool,
}

/// Bytes moved on the TCP sockets, summed over every connection.
#[derive(Debug, Default)]
pub(super) struct WireCounters {
    /// Bytes received.
    pub bytes_in: AtomicU64,
    /// Bytes sent.
    pub bytes_out: AtomicU64,
}

/// One authenticated WebSocket connection.
pub(super) struct Conn {
    stream: TcpStream,
    codec: Codec,
    rbuf: BytesMut,
    wbuf: Vec<u8>,
    counters: Arc<WireCounters>,
    next_id: u64,
    /// Spare room a read is given.
    read_chunk: usize,
}

impl Conn {
    /// TCP connect (from `source` if given, to get past one address's ephemeral ports), upgrade and
    /// authenticate.
    pub(super) async fn open(
        p: &ConnectParams,
        source: Option<IpAddr>,
        counters: Arc<WireCounters>,
    ) -> Result<Conn, BenchError> {
        Conn::open_with(p, source, None, counters).await
    }

    /// [`Conn::open`] with a receive buffer of `rcvbuf` bytes (set before connecting, so the
    /// TCP window is negotiated with it): a reader that stops holds little in the kernel.
    pub(super) async fn open_with(
        p: &ConnectParams,
        source: Option<IpAddr>,
        rcvbuf: Option<u32>,
        counters: Arc<WireCounters>,
    ) -> Result<Conn, BenchError> {
        let sock = match p.addr {
            SocketAddr::V4(_) => TcpSocket::new_v4(),
            SocketAddr::V6(_) => TcpSocket::new_v6(),
        }
        .map_err(|e| BenchError::Failed(format!("socket: {e}")))?;
        if let Some(size) = rcvbuf {
            sock.set_recv_buffer_size(size)
                .map_err(|e| BenchError::Failed(format!("SO_RCVBUF {size}: {e}")))?;
        }
        if let Some(ip) = source {
            sock.bind(SocketAddr::new(ip, 0))
                .map_err(|e| BenchError::Failed(format!("bind {ip}: {e}")))?;
        }
        let stream = sock
            .connect(p.addr)
            .await
            .map_err(|e| BenchError::Failed(format!("connect {}: {e}", p.addr)))?;
        stream
            .set_nodelay(true)
            .map_err(|e| BenchError::Failed(format!("nodelay: {e}")))?;
        let mut conn = Conn {
            stream,
            codec: Codec::new(Role::Client, Limits::default(), None),
            rbuf: BytesMut::with_capacity(4096),
            read_chunk: READ_CHUNK,
            wbuf: Vec::with_capacity(4096),
            counters,
            next_id: 1,
        };
        conn.upgrade(p).await?;
        conn.authenticate(&p.role, &p.secret).await?;
        Ok(conn)
    }

    async fn upgrade(&mut self, p: &ConnectParams) -> Result<(), BenchError> {
        let pmd_cfg = PmdConfig::default();
        let offer = pmd::client_offer(&pmd_cfg);
        let path = format!("{}?appkey={}", p.endpoint.path, p.appkey);
        let (request, key) = handshake::client_request(&ClientRequestParams {
            host: &p.endpoint.host,
            port: p.endpoint.port,
            path_and_query: &path,
            subprotocol: Some("json"),
            extensions: p.deflate.then_some(offer.as_str()),
            user_agent: Some(concat!("cobra-bench/", env!("CARGO_PKG_VERSION"))),
            extra_headers: &[],
        })
        .map_err(|e| BenchError::Usage(format!("upgrade request: {e}")))?;
        self.wbuf.extend_from_slice(&request);
        self.flush().await?;
        let limits = Limits::default();
        loop {
            match handshake::parse_response(&self.rbuf, &key, &limits) {
                Ok(Some((resp, used))) => {
                    let deflate = match resp.extensions.as_deref() {
                        Some(ext) if p.deflate => Some(
                            pmd::client_accept(&pmd_cfg, ext)
                                .map_err(|e| BenchError::Failed(format!("deflate answer: {e}")))?,
                        ),
                        _ => None,
                    };
                    self.codec = Codec::new(Role::Client, limits, deflate);
                    self.rbuf.advance(used);
                    return Ok(());
                }
                Ok(None) => {
                    if self.fill().await? == 0 {
                        return Err(BenchError::Failed("closed during the upgrade".into()));
                    }
                }
                Err(e) => return Err(BenchError::Failed(format!("upgrade refused: {e}"))),
            }
        }
    }

    async fn authenticate(&mut self, role: &str, secret: &str) -> Result<(), BenchError> {
        let handshake = HandshakeBody {
            method: pdu::ROLE_SECRET.into(),
            data: HandshakeData { role: role.into() },
        };
        let reply = self
            .call(pdu::action::AUTH_HANDSHAKE, &handshake, "handshake refused")
            .await?;
        let ok: pdu::HandshakeOkBody = pdu::Pdu::parse(&reply)
            .and_then(|env| env.body_as())
            .map_err(|e| BenchError::Failed(e.to_string()))?;
        let authenticate = AuthenticateBody {
            method: pdu::ROLE_SECRET.into(),
            credentials: Credentials {
                hash: auth::role_secret_hash(secret, &ok.data.nonce),
            },
        };
        self.call(
            pdu::action::AUTH_AUTHENTICATE,
            &authenticate,
            "authentication refused",
        )
        .await?;
        Ok(())
    }

    /// Sends request `action` with `body` and returns the answer, which must be `<action>/ok`
    /// (else fails with `refused: <the answer>`).
    async fn call<B: Serialize>(
        &mut self,
        action: &str,
        body: &B,
        refused: &str,
    ) -> Result<String, BenchError> {
        let id = self.next_id();
        self.queue_text(&pdu::request(action, id, body));
        self.flush().await?;
        let reply = self.recv_text().await?;
        let env = pdu::Pdu::parse(&reply).map_err(|e| BenchError::Failed(e.to_string()))?;
        if env.action.strip_prefix(action) != Some(pdu::action::OK_SUFFIX) {
            return Err(BenchError::Failed(format!("{refused}: {reply}")));
        }
        Ok(reply)
    }

    /// A fresh request id.
    pub(super) fn next_id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    /// Encodes a text message into the write buffer (sent by [`Conn::flush`]).
    pub(super) fn queue_text(&mut self, text: &str) {
        self.codec.encode_text(text, &mut self.wbuf);
    }

    /// Sends the write buffer.
    pub(super) async fn flush(&mut self) -> Result<(), BenchError> {
        if self.wbuf.is_empty() {
            return Ok(());
        }
        self.stream
            .write_all(&self.wbuf)
            .await
            .map_err(|e| BenchError::Failed(format!("write: {e}")))?;
        self.counters
            .bytes_out
            .fetch_add(self.wbuf.len() as u64, Ordering::Relaxed);
        self.wbuf.clear();
        Ok(())
    }

    /// Reads what the socket has (waiting for at least one byte); 0 means the peer closed.
    pub(super) async fn fill(&mut self) -> Result<usize, BenchError> {
        if self.rbuf.capacity() - self.rbuf.len() < 1024 {
            self.rbuf.reserve(self.read_chunk);
        }
        read_counted(&mut self.stream, &mut self.rbuf, &self.counters).await
    }

    /// Each read takes up to 256 KiB of what the socket holds rather than 64 KiB. One thread
    /// plays every connection: with 50 publishers each sending up to their window (256
    /// publishes) per turn, a subscriber reading 64 KiB (~200 deliveries) per turn fell behind
    /// by the tool's own scheduling, and the server's figure was the tool's. (1 MiB cost the
    /// fan-out scenarios ~8 % of the tool's time in page faults.) `nats-bench`'s subscribers
    /// read the same way.
    pub(super) fn read_in_bulk(&mut self) {
        self.read_chunk = BULK_READ_CHUNK;
    }

    /// Reads at most `max` bytes of what the socket has (waiting for at least one); 0 means
    /// the peer closed. A slow reader takes the stream a little at a time.
    pub(super) async fn fill_at_most(&mut self, max: usize) -> Result<usize, BenchError> {
        if self.rbuf.capacity() - self.rbuf.len() < max {
            self.rbuf.reserve(max);
        }
        let reader = (&mut self.stream).take(max as u64);
        read_counted(reader, &mut self.rbuf, &self.counters).await
    }

    /// The next complete text message already buffered, answering pings on the way.
    pub(super) fn next_buffered(&mut self) -> Result<Option<String>, BenchError> {
        loop {
            let msg = self
                .codec
                .decode(&mut self.rbuf)
                .map_err(|e| BenchError::Failed(format!("bad frame from the server: {e}")))?;
            match msg {
                None => return Ok(None),
                Some(Message::Text(t)) => return Ok(Some(t)),
                Some(Message::Ping(data)) => {
                    // A ping payload is at most 125 bytes, so this cannot fail.
                    let _ = self.codec.encode_pong(&data, &mut self.wbuf);
                }
                Some(Message::Close(frame)) => {
                    return Err(BenchError::Failed(format!(
                        "server closed the connection: {frame:?}"
                    )));
                }
                Some(Message::Binary(_) | Message::Pong(_)) => {}
            }
        }
    }

    /// Waits for the next text message.
    pub(super) async fn recv_text(&mut self) -> Result<String, BenchError> {
        loop {
            if let Some(t) = self.next_buffered()? {
                return Ok(t);
            }
            self.flush().await?;
            if self.fill().await? == 0 {
                return Err(BenchError::Failed("server closed the connection".into()));
            }
        }
    }

    /// Holds the connection open without traffic until `stop`, answering pings; frees its read buffer
    /// first so an idle connection costs the load tool little.
    pub(super) async fn hold(
        mut self,
        mut stop: tokio::sync::watch::Receiver<bool>,
    ) -> Result<(), BenchError> {
        self.rbuf = BytesMut::new();
        self.wbuf = Vec::new();
        self.codec.release_idle_memory();
        loop {
            tokio::select! {
                _ = stop.changed() => return Ok(()),
                r = self.stream.readable() => {
                    r.map_err(|e| BenchError::Failed(format!("read: {e}")))?;
                    if self.fill().await? == 0 {
                        return Err(BenchError::Failed("server closed an idle connection".into()));
                    }
                    while self.next_buffered()?.is_some() {}
                    self.flush().await?;
                    self.rbuf = BytesMut::new();
                }
            }
        }
    }
}

/// One read from `reader` into `rbuf`, counted in `counters.bytes_in`.
async fn read_counted(
    mut reader: impl AsyncRead + Unpin,
    rbuf: &mut BytesMut,
    counters: &WireCounters,
) -> Result<usize, BenchError> {
    let n = reader
        .read_buf(rbuf)
        .await
        .map_err(|e| BenchError::Failed(format!("read: {e}")))?;
    counters.bytes_in.fetch_add(n as u64, Ordering::Relaxed);
    Ok(n)
}
