//! The byte stream under a WebSocket session: plain TCP or TLS.
//!
//! Reading appends to the caller's `BytesMut` only once bytes are there: on plain TCP the
//! session waits for readiness with no buffer at all and reads through a stack buffer, so an
//! idle connection holds no read buffer (issue 7's memory goal).

use std::future::Future;
use std::io;

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

/// Stack buffer used per read on plain TCP.
const READ_CHUNK: usize = 16 << 10;
/// Buffer reserved per read on TLS streams.
const TLS_READ_RESERVE: usize = 4 << 10;

/// What a session needs from its stream.
pub trait Transport: Send + Unpin + 'static {
    /// Waits for bytes and appends them to `buf`; `Ok(0)` is end of stream. Cancel-safe.
    fn read_some<'a>(
        &'a mut self,
        buf: &'a mut BytesMut,
    ) -> impl Future<Output = io::Result<usize>> + Send + 'a;

    /// Writes all of `data`.
    fn write_all_bytes<'a>(
        &'a mut self,
        data: &'a [u8],
    ) -> impl Future<Output = io::Result<()>> + Send + 'a;

    /// Shuts the write side down (best effort).
    fn shutdown_write(&mut self) -> impl Future<Output = ()> + Send + '_;
}

impl Transport for TcpStream {
    async fn read_some<'a>(&'a mut self, buf: &'a mut BytesMut) -> io::Result<usize> {
        loop {
            self.readable().await?;
            let mut chunk = [0u8; READ_CHUNK];
            match self.try_read(&mut chunk) {
                Ok(n) => {
                    buf.extend_from_slice(&chunk[..n]);
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Err(e),
            }
        }
    }

    async fn write_all_bytes<'a>(&'a mut self, data: &'a [u8]) -> io::Result<()> {
        self.write_all(data).await
    }

    async fn shutdown_write(&mut self) {
        let _ = AsyncWriteExt::shutdown(self).await;
    }
}

/// A TLS stream (or any buffered async stream).
pub struct Buffered<S>(pub S);

impl<S: AsyncRead + AsyncWrite + Send + Unpin + 'static> Transport for Buffered<S> {
    async fn read_some<'a>(&'a mut self, buf: &'a mut BytesMut) -> io::Result<usize> {
        buf.reserve(TLS_READ_RESERVE);
        self.0.read_buf(buf).await
    }

    async fn write_all_bytes<'a>(&'a mut self, data: &'a [u8]) -> io::Result<()> {
        self.0.write_all(data).await?;
        self.0.flush().await
    }

    async fn shutdown_write(&mut self) {
        let _ = self.0.shutdown().await;
    }
}
