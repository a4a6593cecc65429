//! One connection attempt and, once open, the WebSocket on it.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Instant;

use bytes::BytesMut;
use cobra_wire::ws::Codec;
use crossbeam_channel::Receiver;

use super::large::{LARGE_MESSAGE, LargeSend};
use crate::transport::dns::Resolved;
use crate::transport::{OutBuf, ReadStatus, Stream, TransportError};

/// Where the attempt stands.
pub(crate) enum Phase {
    /// Waiting for the resolver thread.
    Resolving(Receiver<Resolved>),
    /// Non-blocking TCP connect to the first address; the rest are fallbacks.
    Connecting(VecDeque<SocketAddr>),
    /// CONNECT sent to the proxy, waiting for its answer.
    Proxy,
    /// Upgrade request sent (after TLS if any), waiting for the 101.
    Upgrade { key: String },
    /// WebSocket open (authenticating, then authenticated).
    Open,
    /// We sent a close frame and wait briefly for the server's.
    Closing,
}

pub(crate) struct Conn {
    pub phase: Phase,
    pub stream: Option<Stream>,
    pub rbuf: BytesMut,
    pub out: OutBuf,
    /// Deadline of the current phase (connect, handshake+auth, closing).
    pub deadline: Option<Instant>,
    pub codec: Option<Codec>,
    pub large: Option<LargeSend>,
    pub next_ping: Option<Instant>,
    /// Payload and send time of the outstanding heartbeat ping.
    pub ping: Option<([u8; 8], Instant)>,
    pub pong_deadline: Option<Instant>,
    pub ping_counter: u64,
    /// A read pass stopped at its budget: run again before sleeping.
    pub more_to_read: bool,
}

impl Conn {
    pub(super) fn new(phase: Phase, deadline: Instant) -> Self {
        Self {
            phase,
            stream: None,
            rbuf: BytesMut::new(),
            out: OutBuf::default(),
            deadline: Some(deadline),
            codec: None,
            large: None,
            next_ping: None,
            ping: None,
            pong_deadline: None,
            ping_counter: 0,
            more_to_read: false,
        }
    }

    pub(super) fn is_open(&self) -> bool {
        matches!(self.phase, Phase::Open)
    }

    /// Flush, read up to `budget` more bytes, flush again (TLS may have records to answer).
    pub(super) fn io(&mut self, budget: usize) -> Result<ReadStatus, TransportError> {
        let Some(stream) = self.stream.as_mut() else {
            return Ok(ReadStatus::Drained);
        };
        stream.write(&mut self.out)?;
        let limit = self.rbuf.len() + budget;
        let status = stream.read(&mut self.rbuf, limit)?;
        stream.write(&mut self.out)?;
        self.more_to_read = status == ReadStatus::More;
        Ok(status)
    }

    pub(super) fn flush(&mut self) -> Result<(), TransportError> {
        match self.stream.as_mut() {
            Some(s) => s.write(&mut self.out),
            None => Ok(()),
        }
    }

    /// Frame a text message (large ones go out fragment by fragment).
    pub(super) fn send_text(&mut self, text: String) {
        if text.len() > LARGE_MESSAGE {
            // One large message at a time: the engine does not start another while one is out.
            self.large = Some(LargeSend::new(text));
            self.pump_large(usize::MAX);
        } else if let Some(codec) = self.codec.as_mut() {
            codec.encode_text(&text, self.out.vec());
        }
    }

    /// Frame a text message given by reference (hot path: no copy of the text).
    pub(super) fn send_str(&mut self, text: &str) {
        if let Some(codec) = self.codec.as_mut() {
            codec.encode_text(text, self.out.vec());
        }
    }

    /// Add fragments of the large message while fewer than `high_water` bytes wait.
    pub(super) fn pump_large(&mut self, high_water: usize) {
        while self.out.len() < high_water.min(super::HIGH_WATER) {
            let Some(large) = self.large.as_mut() else {
                return;
            };
            if large.next_fragment(self.out.vec()) {
                self.large = None;
            }
        }
    }
}
