//! Byte transport under the WebSocket: non-blocking TCP (mio), optionally TLS (rustls driven
//! by hand), plus the outgoing byte buffer. No protocol knowledge here.

pub(crate) mod dns;
pub(crate) mod proxy;
#[cfg(feature = "tls")]
pub(crate) mod tls;

use std::io::{self, Read, Write};

use bytes::BytesMut;
use mio::net::TcpStream;

/// Largest read chunk.
const CHUNK: usize = 16 << 10;
/// First read chunk of a connection. A read zeroes (touches) its whole chunk, and an idle client
/// only ever reads heartbeats, acks and single events, so it starts small and doubles up to
/// [`CHUNK`] each time a read fills it: an idle client keeps ~2 KiB of read buffer instead of 16.
const FIRST_CHUNK: usize = 2 << 10;

/// What a read pass found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ReadStatus {
    /// Everything available was read (the socket said WouldBlock).
    Drained,
    /// Stopped at the caller's limit; more may be waiting (read again before sleeping).
    More,
    /// The peer closed its side.
    Eof,
}

/// A transport failure.
#[derive(Debug)]
pub(crate) enum TransportError {
    Io(io::Error),
    #[cfg(feature = "tls")]
    Tls(rustls::Error),
}

impl std::fmt::Display for TransportError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TransportError::Io(e) => write!(f, "{e}"),
            #[cfg(feature = "tls")]
            TransportError::Tls(e) => write!(f, "TLS: {e}"),
        }
    }
}

impl From<io::Error> for TransportError {
    fn from(e: io::Error) -> Self {
        TransportError::Io(e)
    }
}

/// Bytes waiting to be written, written progressively as the socket accepts them.
#[derive(Debug, Default)]
pub(crate) struct OutBuf {
    buf: Vec<u8>,
    pos: usize,
}

impl OutBuf {
    pub(crate) fn pending(&self) -> &[u8] {
        &self.buf[self.pos..]
    }
    pub(crate) fn len(&self) -> usize {
        self.buf.len() - self.pos
    }
    pub(crate) fn is_empty(&self) -> bool {
        self.pos == self.buf.len()
    }
    /// The buffer to append frames to.
    pub(crate) fn vec(&mut self) -> &mut Vec<u8> {
        &mut self.buf
    }
    pub(crate) fn consume(&mut self, n: usize) {
        self.pos += n;
        if self.pos == self.buf.len() {
            self.buf.clear();
            self.pos = 0;
            // Give back the memory of a large message once it is out.
            if self.buf.capacity() > 1 << 20 {
                self.buf = Vec::new();
            }
        } else if self.pos >= 64 << 10 && self.pos * 2 >= self.buf.len() {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
    }
}

/// A connected socket, plain or TLS.
pub(crate) struct Stream {
    tcp: TcpStream,
    /// Bytes asked of the next plain read (grows from [`FIRST_CHUNK`] to [`CHUNK`]).
    chunk: usize,
    #[cfg(feature = "tls")]
    tls: Option<Box<rustls::ClientConnection>>,
}

impl Stream {
    pub(crate) fn new(tcp: TcpStream) -> Self {
        Self {
            tcp,
            chunk: FIRST_CHUNK,
            #[cfg(feature = "tls")]
            tls: None,
        }
    }

    pub(crate) fn tcp(&mut self) -> &mut TcpStream {
        &mut self.tcp
    }

    /// Wrap the socket in TLS (after any proxy tunnel is up).
    #[cfg(feature = "tls")]
    pub(crate) fn start_tls(
        &mut self,
        config: std::sync::Arc<rustls::ClientConfig>,
        name: rustls::pki_types::ServerName<'static>,
    ) -> Result<(), TransportError> {
        let conn = rustls::ClientConnection::new(config, name).map_err(TransportError::Tls)?;
        self.tls = Some(Box::new(conn));
        Ok(())
    }

    /// Read what is available into `buf`, stopping once `buf` holds `limit` bytes.
    pub(crate) fn read(
        &mut self,
        buf: &mut BytesMut,
        limit: usize,
    ) -> Result<ReadStatus, TransportError> {
        #[cfg(feature = "tls")]
        if let Some(tls) = self.tls.as_deref_mut() {
            return read_tls(tls, &mut self.tcp, buf, limit);
        }
        loop {
            if buf.len() >= limit {
                return Ok(ReadStatus::More);
            }
            let start = buf.len();
            let chunk = self.chunk;
            buf.resize(start + chunk, 0);
            let r = self.tcp.read(&mut buf[start..]);
            match r {
                Ok(0) => {
                    buf.truncate(start);
                    return Ok(ReadStatus::Eof);
                }
                Ok(n) => {
                    buf.truncate(start + n);
                    if n == chunk {
                        // More was waiting: read bigger pieces from now on.
                        self.chunk = (chunk * 2).min(CHUNK);
                    }
                }
                Err(e) => {
                    buf.truncate(start);
                    match e.kind() {
                        io::ErrorKind::WouldBlock => return Ok(ReadStatus::Drained),
                        io::ErrorKind::Interrupted => {}
                        _ => return Err(e.into()),
                    }
                }
            }
        }
    }

    /// Write as much of `out` (and of pending TLS records) as the socket takes.
    pub(crate) fn write(&mut self, out: &mut OutBuf) -> Result<(), TransportError> {
        #[cfg(feature = "tls")]
        if let Some(tls) = self.tls.as_deref_mut() {
            return write_tls(tls, &mut self.tcp, out);
        }
        while !out.is_empty() {
            match self.tcp.write(out.pending()) {
                Ok(0) => return Err(io::Error::from(io::ErrorKind::WriteZero).into()),
                Ok(n) => out.consume(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }
}

#[cfg(feature = "tls")]
fn read_tls(
    tls: &mut rustls::ClientConnection,
    tcp: &mut TcpStream,
    buf: &mut BytesMut,
    limit: usize,
) -> Result<ReadStatus, TransportError> {
    let mut chunk = [0u8; CHUNK];
    loop {
        loop {
            if buf.len() >= limit {
                return Ok(ReadStatus::More);
            }
            match tls.reader().read(&mut chunk) {
                Ok(0) => return Ok(ReadStatus::Eof),
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(ReadStatus::Eof),
                Err(e) => return Err(e.into()),
            }
        }
        match tls.read_tls(tcp) {
            Ok(0) => return Ok(ReadStatus::Eof),
            Ok(_) => {
                tls.process_new_packets().map_err(TransportError::Tls)?;
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(ReadStatus::Drained),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
    }
}

#[cfg(feature = "tls")]
fn write_tls(
    tls: &mut rustls::ClientConnection,
    tcp: &mut TcpStream,
    out: &mut OutBuf,
) -> Result<(), TransportError> {
    loop {
        while tls.wants_write() {
            match tls.write_tls(tcp) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
        }
        if out.is_empty() || tls.is_handshaking() {
            return Ok(());
        }
        // rustls buffers at most its buffer limit of plaintext; 0 means "full, flush first".
        let n = tls.writer().write(out.pending())?;
        if n == 0 && !tls.wants_write() {
            return Ok(());
        }
        out.consume(n);
    }
}
