//! The WebSocket message layer (RFC 6455), sans I/O.
//!
//! [`Codec::decode`] turns received bytes into [`Message`]s, enforcing every
//! rule a conforming endpoint must check (masking per role, reserved bits,
//! control-frame rules, fragmentation order, close codes, UTF-8, limits).
//! The `encode_*` methods append ready-to-send frames to a caller's buffer.
//!
//! On any [`WsError`] from `decode` the connection must be failed: send a close
//! frame with [`WsError::close_code`] and drop it; the codec state is undefined.
//!
//! # Memory per connection
//!
//! An idle [`Codec`] is about 72 bytes (plus a ~100-byte box when
//! permessage-deflate was negotiated). The zlib streams are what costs, as
//! measured with zlib-rs at level 1: a compressor takes about 250 KiB (9-bit
//! window) to 370 KiB (15-bit), a decompressor about 46 KiB whatever the
//! window. Both are allocated on first use only: a compressor when a message of
//! at least [`Codec::set_compress_min_size`] bytes is sent, a decompressor when a
//! compressed message arrives. A server with many connections should keep the
//! compress threshold above its small acknowledgements, and may negotiate
//! `*_no_context_takeover` and call [`Codec::release_idle_memory`] on idle
//! connections to give the streams back.
//!
//! With `server_no_context_takeover` a server needs no compressor per
//! connection at all: [`Codec::encode_text_with`] compresses with a caller's
//! (e.g. per-thread) [`Deflater`], and [`Codec::encode_text_spliced`] sends a
//! message compressed once ([`SharedDeflate`]) to many connections, each with
//! its own prefix and suffix in stored blocks.

use std::io::Cursor;

use bytes::{Buf, BytesMut};
use tungstenite::protocol::frame::FrameHeader;
use tungstenite::protocol::frame::coding::{Control, Data, OpCode};

use crate::limits::Limits;
use crate::pmd::{self, Deflater, Inflater, Negotiated, PmdError, SharedDeflate};

/// Which end of the connection this codec is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Masks what it sends; refuses masked frames.
    Client,
    /// Refuses unmasked frames; sends unmasked.
    Server,
}

/// The payload of a close frame that carries a status code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloseFrame {
    /// Status code (RFC 6455 §7.4).
    pub code: u16,
    /// UTF-8 reason, at most 123 bytes.
    pub reason: String,
}

/// One complete WebSocket message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// A text message, validated UTF-8.
    Text(String),
    /// A binary message.
    Binary(Vec<u8>),
    /// A ping (at most 125 bytes); answer it with a pong carrying the same data.
    Ping(Vec<u8>),
    /// A pong (at most 125 bytes).
    Pong(Vec<u8>),
    /// A close frame, without a status code if the peer sent none.
    Close(Option<CloseFrame>),
}

/// Protocol violations and limit breaches found while decoding, and misuse
/// when encoding.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WsError {
    /// RSV2/RSV3 set, or RSV1 where permessage-deflate does not allow it.
    #[error("reserved bits set")]
    ReservedBits,
    /// An opcode RFC 6455 reserves.
    #[error("reserved opcode {0:#x}")]
    BadOpcode(u8),
    /// A server received an unmasked frame.
    #[error("unmasked frame from a client")]
    UnmaskedFrame,
    /// A client received a masked frame.
    #[error("masked frame from a server")]
    MaskedFrame,
    /// A control frame with more than 125 bytes of payload.
    #[error("control frame of {0} bytes (max 125)")]
    ControlFrameTooLong(u64),
    /// A control frame without FIN.
    #[error("fragmented control frame")]
    FragmentedControlFrame,
    /// A continuation frame with no message in progress.
    #[error("continuation frame without a message in progress")]
    UnexpectedContinuation,
    /// A new data message while a fragmented one is in progress.
    #[error("new data frame while a fragmented message is in progress")]
    ExpectedContinuation,
    /// A close frame whose code may not be sent on the wire.
    #[error("invalid close code {0}")]
    BadCloseCode(u16),
    /// A 64-bit payload length with its most significant bit set (RFC 6455 §5.2).
    #[error("invalid 64-bit payload length")]
    InvalidLength,
    /// A close frame with a 1-byte payload.
    #[error("close frame with a 1-byte payload")]
    BadClosePayload,
    /// Text (or a close reason) that is not UTF-8.
    #[error("invalid UTF-8 in a text message or close reason")]
    InvalidUtf8,
    /// A compressed message that does not inflate.
    #[error("invalid compressed data: {0}")]
    Inflate(String),
    /// A frame larger than [`Limits::max_frame_size`].
    #[error("frame of {size} bytes exceeds the limit of {max}")]
    FrameTooBig {
        /// Announced payload length.
        size: u64,
        /// The limit.
        max: usize,
    },
    /// A message (after reassembly and inflating) larger than [`Limits::max_message_size`].
    #[error("message exceeds the limit of {max} bytes")]
    MessageTooBig {
        /// The limit.
        max: usize,
    },
    /// Encoding: a ping/pong payload over 125 bytes.
    #[error("control payload of {0} bytes (max 125)")]
    ControlPayloadTooLong(usize),
    /// Encoding: a close code that may not be sent.
    #[error("close code {0} may not be sent")]
    InvalidCloseCode(u16),
}

impl WsError {
    /// The close code to send when failing the connection for this error:
    /// 1007 for bad UTF-8 or bad compressed data, 1009 for size limits, 1002
    /// for other protocol errors (1011 for local encoding misuse).
    pub fn close_code(&self) -> u16 {
        match self {
            WsError::InvalidUtf8 | WsError::Inflate(_) => 1007,
            WsError::FrameTooBig { .. } | WsError::MessageTooBig { .. } => 1009,
            WsError::ControlPayloadTooLong(_) | WsError::InvalidCloseCode(_) => 1011,
            _ => 1002,
        }
    }
}

/// Close code of a server that is draining (shutting down or taking itself out of a load
/// balancer): IANA's 1012 "Service Restart". It is not an error: the client should reconnect
/// at once (after a short random delay, so a fleet does not reconnect in one burst) and the
/// load balancer sends it to another server. Clients that treat every close alike (the Python
/// and C++ ones) simply reconnect. See `docs/protocol.md`.
pub const CLOSE_DRAIN: u16 = 1012;

/// Whether `code` may appear in a close frame on the wire (RFC 6455 §7.4 and
/// the IANA registry: 1004-1006 and 1015 are reserved, 1016-2999 unassigned).
pub fn is_valid_close_code(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
}

/// XORs `buf` with the 4-byte `key` (RFC 6455 §5.3), 8 bytes at a time.
pub fn apply_mask(buf: &mut [u8], key: [u8; 4]) {
    let wide = u64::from_ne_bytes([
        key[0], key[1], key[2], key[3], key[0], key[1], key[2], key[3],
    ]);
    let mut chunks = buf.chunks_exact_mut(8);
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        chunk.copy_from_slice(&(u64::from_ne_bytes(word) ^ wide).to_ne_bytes());
    }
    // The tail starts at a multiple of 8, so the key phase is 0 again.
    for (i, b) in chunks.into_remainder().iter_mut().enumerate() {
        *b ^= key[i & 3];
    }
}

/// The data opcode of a message being reassembled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Partial {
    None,
    Text,
    Binary,
}

/// Compression state, boxed so an idle codec without deflate stays small.
#[derive(Debug)]
struct DeflateState {
    negotiated: Negotiated,
    /// Created on first use; `None` until then.
    deflater: Option<Deflater>,
    inflater: Option<Inflater>,
    /// Reused output of the compressor (kept if small).
    scratch: Vec<u8>,
    /// Messages shorter than this are sent uncompressed.
    compress_min_size: usize,
}

/// Default for [`Codec::set_compress_min_size`]: tiny messages (acks such as
/// `rtm/publish/ok`) gain almost nothing from compression, and never
/// compressing them means a publish-only connection never allocates a zlib
/// compressor (about 256 KiB with a 15-bit window) on the server.
pub const DEFAULT_COMPRESS_MIN_SIZE: usize = 128;

/// Above this, the compressor's scratch buffer is released after use.
const SCRATCH_KEEP: usize = 16 << 10;

/// The WebSocket codec for one connection. About 80 bytes when idle without
/// permessage-deflate; deflate state is boxed and its zlib streams are only
/// allocated on first use.
#[derive(Debug)]
pub struct Codec {
    role: Role,
    limits: Limits,
    partial: Partial,
    partial_compressed: bool,
    /// Reassembly buffer of a fragmented (or compressed) message; empty with no
    /// capacity between messages.
    buf: Vec<u8>,
    deflate: Option<Box<DeflateState>>,
}

impl Codec {
    /// A codec for `role`, bounded by `limits`, compressing if `deflate` was negotiated.
    pub fn new(role: Role, limits: Limits, deflate: Option<Negotiated>) -> Self {
        Codec {
            role,
            limits,
            partial: Partial::None,
            partial_compressed: false,
            buf: Vec::new(),
            deflate: deflate.map(|negotiated| {
                Box::new(DeflateState {
                    negotiated,
                    deflater: None,
                    inflater: None,
                    scratch: Vec::new(),
                    compress_min_size: DEFAULT_COMPRESS_MIN_SIZE,
                })
            }),
        }
    }

    /// This codec's role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The limits this codec enforces.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The permessage-deflate agreement, if any.
    pub fn deflate(&self) -> Option<&Negotiated> {
        self.deflate.as_deref().map(|d| &d.negotiated)
    }

    /// Messages shorter than `bytes` are sent uncompressed (default
    /// [`DEFAULT_COMPRESS_MIN_SIZE`]; 0 compresses everything). No effect
    /// without permessage-deflate.
    pub fn set_compress_min_size(&mut self, bytes: usize) {
        if let Some(state) = self.deflate.as_deref_mut() {
            state.compress_min_size = bytes;
        }
    }

    /// Frees what an idle connection does not need: reassembly and scratch
    /// buffers, and the zlib streams of directions without context takeover
    /// (they are reset after every message anyway and are re-created on the next
    /// compressed message). The streams of context-takeover directions hold
    /// the LZ77 window and must stay. Call it when a connection goes idle.
    pub fn release_idle_memory(&mut self) {
        let role = self.role;
        let mid_message = self.partial != Partial::None;
        if !mid_message {
            self.buf = Vec::new();
        }
        if let Some(state) = self.deflate.as_deref_mut() {
            state.scratch = Vec::new();
            let n = &state.negotiated;
            let (ours, peers) = match role {
                Role::Client => (n.client_no_context_takeover, n.server_no_context_takeover),
                Role::Server => (n.server_no_context_takeover, n.client_no_context_takeover),
            };
            if ours {
                state.deflater = None;
            }
            if peers && !mid_message {
                state.inflater = None;
            }
        }
    }

    /// Whether zlib streams are currently allocated (compressor, decompressor).
    pub fn zlib_streams_allocated(&self) -> (bool, bool) {
        self.deflate.as_deref().map_or((false, false), |s| {
            (s.deflater.is_some(), s.inflater.is_some())
        })
    }

    /// Decodes the next complete message from the front of `buf`, consuming the
    /// frames it used. `Ok(None)` means more bytes are needed (a partial frame
    /// is left in `buf`, which never has to exceed `max_frame_size` + 14 bytes:
    /// an oversized frame is refused from its header). Call in a loop until
    /// `Ok(None)`. Control frames interleaved in a fragmented message are
    /// returned as they come. Answering pings and closes, and ignoring what
    /// follows a close, is the caller's business.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Message>, WsError> {
        loop {
            let mut cursor = Cursor::new(&buf[..]);
            let (header, len) = match FrameHeader::parse(&mut cursor) {
                Ok(Some(h)) => h,
                Ok(None) => return Ok(None),
                // The only error parse reports on an in-memory cursor is a reserved opcode.
                Err(_) => return Err(WsError::BadOpcode(buf[0] & 0x0f)),
            };
            let header_len = cursor.position() as usize;
            self.check_header(&header, len)?;
            // check_header bounded len by max_frame_size, so it fits a usize.
            let len = len as usize;
            if buf.len() - header_len < len {
                return Ok(None);
            }
            buf.advance(header_len);
            let mut payload = buf.split_to(len);
            if let Some(key) = header.mask {
                apply_mask(&mut payload, key);
            }
            if let Some(msg) = self.process(&header, &payload)? {
                return Ok(Some(msg));
            }
        }
    }

    /// Every check that needs only the header, so bad frames fail before their
    /// payload is buffered. Does not change state.
    fn check_header(&self, h: &FrameHeader, len: u64) -> Result<(), WsError> {
        if h.rsv2 || h.rsv3 {
            return Err(WsError::ReservedBits);
        }
        if len > i64::MAX as u64 {
            return Err(WsError::InvalidLength);
        }
        match (self.role, h.mask.is_some()) {
            (Role::Server, false) => return Err(WsError::UnmaskedFrame),
            (Role::Client, true) => return Err(WsError::MaskedFrame),
            _ => {}
        }
        let compressed = match h.opcode {
            OpCode::Control(_) => {
                if !h.is_final {
                    return Err(WsError::FragmentedControlFrame);
                }
                if len > 125 {
                    return Err(WsError::ControlFrameTooLong(len));
                }
                if h.rsv1 {
                    return Err(WsError::ReservedBits);
                }
                return Ok(());
            }
            OpCode::Data(Data::Continue) => {
                if self.partial == Partial::None {
                    return Err(WsError::UnexpectedContinuation);
                }
                if h.rsv1 {
                    return Err(WsError::ReservedBits);
                }
                self.partial_compressed
            }
            OpCode::Data(_) => {
                if self.partial != Partial::None {
                    return Err(WsError::ExpectedContinuation);
                }
                if h.rsv1 && self.deflate.is_none() {
                    return Err(WsError::ReservedBits);
                }
                h.rsv1
            }
        };
        if len > self.limits.max_frame_size as u64 {
            return Err(WsError::FrameTooBig {
                size: len,
                max: self.limits.max_frame_size,
            });
        }
        // Uncompressed sizes are known now; inflated sizes are checked while inflating.
        if !compressed
            && (self.buf.len() as u64).saturating_add(len) > self.limits.max_message_size as u64
        {
            return Err(WsError::MessageTooBig {
                max: self.limits.max_message_size,
            });
        }
        Ok(())
    }

    fn process(&mut self, h: &FrameHeader, payload: &[u8]) -> Result<Option<Message>, WsError> {
        let opcode = match h.opcode {
            OpCode::Control(Control::Ping) => return Ok(Some(Message::Ping(payload.to_vec()))),
            OpCode::Control(Control::Pong) => return Ok(Some(Message::Pong(payload.to_vec()))),
            OpCode::Control(Control::Close) => {
                return parse_close(payload).map(|c| Some(Message::Close(c)));
            }
            OpCode::Control(Control::Reserved(b)) | OpCode::Data(Data::Reserved(b)) => {
                return Err(WsError::BadOpcode(b));
            }
            OpCode::Data(Data::Continue) => self.partial,
            OpCode::Data(Data::Text) => {
                self.partial_compressed = h.rsv1;
                Partial::Text
            }
            OpCode::Data(Data::Binary) => {
                self.partial_compressed = h.rsv1;
                Partial::Binary
            }
        };
        if !self.partial_compressed {
            if h.is_final && self.buf.is_empty() && self.partial == Partial::None {
                // Fast path: a whole message in one frame.
                return finish(opcode, payload.to_vec()).map(Some);
            }
            self.buf.extend_from_slice(payload);
        } else {
            let max = self.limits.max_message_size;
            let state = self.deflate.as_deref_mut().ok_or(WsError::ReservedBits)?;
            let (bits, nct) = match self.role {
                Role::Server => (
                    state.negotiated.client_max_window_bits,
                    state.negotiated.client_no_context_takeover,
                ),
                Role::Client => (
                    state.negotiated.server_max_window_bits,
                    state.negotiated.server_no_context_takeover,
                ),
            };
            let inflater = state
                .inflater
                .get_or_insert_with(|| Inflater::new(bits, nct));
            inflater
                .decompress(payload, &mut self.buf, max)
                .map_err(inflate_error)?;
            if h.is_final {
                inflater.finish(&mut self.buf, max).map_err(inflate_error)?;
            }
        }
        if !h.is_final {
            self.partial = opcode;
            return Ok(None);
        }
        self.partial = Partial::None;
        self.partial_compressed = false;
        finish(opcode, std::mem::take(&mut self.buf)).map(Some)
    }

    /// Appends a text message to `out`.
    pub fn encode_text(&mut self, text: &str, out: &mut Vec<u8>) {
        self.encode_data(Data::Text, text.as_bytes(), out);
    }

    /// Appends a binary message to `out`.
    pub fn encode_binary(&mut self, data: &[u8], out: &mut Vec<u8>) {
        self.encode_data(Data::Binary, data, out);
    }

    /// Appends a ping (payload at most 125 bytes) to `out`.
    pub fn encode_ping(&mut self, data: &[u8], out: &mut Vec<u8>) -> Result<(), WsError> {
        self.encode_control(Control::Ping, data, out)
    }

    /// Appends a pong (payload at most 125 bytes) to `out`.
    pub fn encode_pong(&mut self, data: &[u8], out: &mut Vec<u8>) -> Result<(), WsError> {
        self.encode_control(Control::Pong, data, out)
    }

    /// Appends a close frame with `code` and `reason` (cut at a character
    /// boundary to the 123 bytes a close frame can carry).
    pub fn encode_close(
        &mut self,
        code: u16,
        reason: &str,
        out: &mut Vec<u8>,
    ) -> Result<(), WsError> {
        if !is_valid_close_code(code) {
            return Err(WsError::InvalidCloseCode(code));
        }
        let mut cut = reason.len().min(123);
        while !reason.is_char_boundary(cut) {
            cut -= 1;
        }
        let mut payload = [0u8; 125];
        payload[..2].copy_from_slice(&code.to_be_bytes());
        payload[2..2 + cut].copy_from_slice(&reason.as_bytes()[..cut]);
        self.encode_control(Control::Close, &payload[..2 + cut], out)
    }

    /// Appends a close frame without a status code (the answer to a
    /// [`Message::Close`]`(None)`).
    pub fn encode_close_empty(&mut self, out: &mut Vec<u8>) {
        self.write_frame(OpCode::Control(Control::Close), true, false, b"", out);
    }

    fn encode_control(
        &mut self,
        control: Control,
        data: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), WsError> {
        if data.len() > 125 {
            return Err(WsError::ControlPayloadTooLong(data.len()));
        }
        self.write_frame(OpCode::Control(control), true, false, data, out);
        Ok(())
    }

    fn encode_data(&mut self, opcode: Data, payload: &[u8], out: &mut Vec<u8>) {
        let role = self.role;
        let Some(state) = self.deflate.as_deref_mut() else {
            self.write_message(opcode, false, payload, out);
            return;
        };
        let (bits, nct) = match role {
            Role::Client => (
                state.negotiated.client_max_window_bits,
                state.negotiated.client_no_context_takeover,
            ),
            Role::Server => (
                state.negotiated.server_max_window_bits,
                state.negotiated.server_no_context_takeover,
            ),
        };
        // zlib cannot honour an 8-bit window (see `pmd`): send uncompressed.
        // Uncompressed messages are always allowed and leave both LZ77 windows alone.
        if bits < 9 || payload.len() < state.compress_min_size {
            self.write_message(opcode, false, payload, out);
            return;
        }
        let level = state.negotiated.level;
        let deflater = state
            .deflater
            .get_or_insert_with(|| Deflater::new(level, bits, nct));
        let mut scratch = std::mem::take(&mut state.scratch);
        scratch.clear();
        let compressed = match deflater.compress(payload, &mut scratch) {
            // With context takeover the peer's window must see every byte we compressed,
            // so a message that did not shrink still goes compressed; without, it may go
            // as it is (see `pmd::MIN_SAVING_DIVISOR`).
            Ok(()) => !nct || pmd::saves_enough(payload.len(), scratch.len()),
            Err(_) => {
                // Unreachable in practice; the stream state is unknown, so start afresh
                // and send this one uncompressed (always allowed).
                state.deflater = None;
                false
            }
        };
        if compressed {
            self.write_message(opcode, true, &scratch, out);
        } else {
            self.write_message(opcode, false, payload, out);
        }
        if scratch.capacity() <= SCRATCH_KEEP
            && let Some(state) = self.deflate.as_deref_mut()
        {
            state.scratch = scratch;
        }
    }

    /// The window our compressor may use, if this connection lets us compress each
    /// message on its own: deflate negotiated with no context takeover on our side, and
    /// a window zlib can produce. `None` otherwise.
    fn independent_window(&self) -> Option<(&DeflateState, u8)> {
        let state = self.deflate.as_deref()?;
        let n = &state.negotiated;
        let (bits, nct) = match self.role {
            Role::Client => (n.client_max_window_bits, n.client_no_context_takeover),
            Role::Server => (n.server_max_window_bits, n.server_no_context_takeover),
        };
        (nct && bits >= 9).then_some((state, bits))
    }

    /// Appends a text message as [`Codec::encode_text`] does, but compressing with the
    /// caller's `deflater` instead of this connection's own, when the agreement allows it
    /// (no context takeover on our side, the deflater resets after each message and its
    /// window is not larger than agreed). One compressor can then serve every connection
    /// of a thread: memory is per thread, not per connection. Otherwise this is exactly
    /// [`Codec::encode_text`].
    pub fn encode_text_with(&mut self, text: &str, deflater: &mut Deflater, out: &mut Vec<u8>) {
        let usable = self.independent_window().is_some_and(|(state, bits)| {
            deflater.no_context_takeover()
                && deflater.window_bits() <= bits
                && text.len() >= state.compress_min_size
        });
        if !usable {
            self.encode_text(text, out);
            return;
        }
        let mut scratch = self
            .deflate
            .as_deref_mut()
            .map(|s| std::mem::take(&mut s.scratch))
            .unwrap_or_default();
        scratch.clear();
        match deflater.compress(text.as_bytes(), &mut scratch) {
            // The deflater resets after each message (checked above): a message that did
            // not shrink enough may go as it is (see `pmd::MIN_SAVING_DIVISOR`).
            Ok(()) if pmd::saves_enough(text.len(), scratch.len()) => {
                self.write_message(Data::Text, true, &scratch, out)
            }
            // Or the caller's stream is in an unknown state: this message goes uncompressed.
            Ok(()) | Err(_) => self.write_message(Data::Text, false, text.as_bytes(), out),
        }
        if scratch.capacity() <= SCRATCH_KEEP
            && let Some(state) = self.deflate.as_deref_mut()
        {
            state.scratch = scratch;
        }
    }

    /// Whether [`Codec::encode_text_spliced`] could take a message of `len` bytes (as far as
    /// this connection's agreement goes; the shared bytes' window is checked there). Lets a
    /// caller skip compressing for connections that would not use it.
    pub fn can_splice(&self, len: usize) -> bool {
        self.independent_window()
            .is_some_and(|(state, _)| len >= state.compress_min_size)
    }

    /// Appends the text message `prefix + text + suffix`, where `shared` is `text`
    /// already compressed on its own ([`SharedDeflate::compress`]): the prefix and suffix
    /// go in stored DEFLATE blocks around the shared bytes, so the text is not compressed
    /// again for this connection ([`Splice::Compressed`]). When the shared bytes do not
    /// shrink the text enough ([`SharedDeflate::pays_off`]), the message goes uncompressed
    /// instead, as [`Codec::encode_text_parts`] writes it ([`Splice::Uncompressed`]): the
    /// same rule as this codec's own compression. [`Splice::Refused`], writing nothing, when
    /// this connection cannot take it (no permessage-deflate, context takeover on our side, a
    /// window too small for `shared`, or a message under [`Codec::set_compress_min_size`]):
    /// encode the message another way then.
    pub fn encode_text_spliced(
        &mut self,
        prefix: &str,
        text: &str,
        shared: &SharedDeflate,
        suffix: &str,
        out: &mut Vec<u8>,
    ) -> Splice {
        debug_assert_eq!(text.len(), shared.text_len(), "`shared` is not `text`");
        let Some((state, bits)) = self.independent_window() else {
            return Splice::Refused;
        };
        let total = prefix.len() + shared.text_len() + suffix.len();
        if !shared.fits_window(bits) || total < state.compress_min_size {
            return Splice::Refused;
        }
        if !shared.pays_off() {
            self.encode_text_parts(&[prefix, text, suffix], out);
            return Splice::Uncompressed;
        }
        // The last byte is the header of the empty stored block the receiver completes
        // by appending `00 00 ff ff` (RFC 7692 §7.2.2).
        let len = pmd::stored_len(prefix.len(), false)
            + shared.as_bytes().len()
            + pmd::stored_len(suffix.len(), true)
            + 1;
        let write_payload = |buf: &mut Vec<u8>| {
            pmd::write_stored(prefix.as_bytes(), false, buf);
            buf.extend_from_slice(shared.as_bytes());
            pmd::write_stored(suffix.as_bytes(), true, buf);
            buf.push(0x00);
        };
        if len <= self.limits.fragment_size.max(1) {
            // One frame: the header is known up front, write straight into `out`.
            let header = server_text_header(true);
            if self.role == Role::Server {
                out.reserve(14 + len);
                let _ = header.format(len as u64, out);
                let start = out.len();
                write_payload(out);
                debug_assert_eq!(
                    out.len() - start,
                    len,
                    "stored_len disagrees with write_stored"
                );
                return Splice::Compressed;
            }
        }
        let mut payload = Vec::with_capacity(len);
        write_payload(&mut payload);
        debug_assert_eq!(payload.len(), len, "stored_len disagrees with write_stored");
        self.write_message(Data::Text, true, &payload, out);
        Splice::Compressed
    }

    /// Appends one text message made of `parts` (concatenated), never compressed: for
    /// peers without permessage-deflate, and for a text that deflate would not shrink
    /// (RFC 7692 lets any message go uncompressed, RSV1 clear; it leaves both LZ77 windows
    /// alone). A server writes the parts straight after the frame header, with no copy
    /// into a joined buffer.
    pub fn encode_text_parts(&mut self, parts: &[&str], out: &mut Vec<u8>) {
        let len: usize = parts.iter().map(|p| p.len()).sum();
        if self.role == Role::Server && len <= self.limits.fragment_size.max(1) {
            let header = server_text_header(false);
            out.reserve(14 + len);
            // Writing into a Vec cannot fail.
            let _ = header.format(len as u64, out);
            for part in parts {
                out.extend_from_slice(part.as_bytes());
            }
            return;
        }
        let mut payload = Vec::with_capacity(len);
        for part in parts {
            payload.extend_from_slice(part.as_bytes());
        }
        self.write_message(Data::Text, false, &payload, out);
    }

    /// Splits `payload` into frames of at most `fragment_size` bytes.
    fn write_message(&self, opcode: Data, rsv1: bool, payload: &[u8], out: &mut Vec<u8>) {
        let fragment = self.limits.fragment_size.max(1);
        if payload.len() <= fragment {
            self.write_frame(OpCode::Data(opcode), true, rsv1, payload, out);
            return;
        }
        out.reserve(payload.len() + (payload.len() / fragment + 1) * 14);
        let mut chunks = payload.chunks(fragment).peekable();
        let mut first = true;
        while let Some(chunk) = chunks.next() {
            let op = if first {
                OpCode::Data(opcode)
            } else {
                OpCode::Data(Data::Continue)
            };
            self.write_frame(op, chunks.peek().is_none(), rsv1 && first, chunk, out);
            first = false;
        }
    }

    fn write_frame(
        &self,
        opcode: OpCode,
        is_final: bool,
        rsv1: bool,
        payload: &[u8],
        out: &mut Vec<u8>,
    ) {
        let mask = match self.role {
            Role::Client => Some(rand::random::<[u8; 4]>()),
            Role::Server => None,
        };
        let header = FrameHeader {
            is_final,
            rsv1,
            rsv2: false,
            rsv3: false,
            opcode,
            mask,
        };
        out.reserve(14 + payload.len());
        // Writing into a Vec cannot fail.
        let _ = header.format(payload.len() as u64, out);
        let start = out.len();
        out.extend_from_slice(payload);
        if let Some(key) = mask {
            apply_mask(&mut out[start..], key);
        }
    }
}

/// How [`Codec::encode_text_spliced`] sent a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub enum Splice {
    /// The shared compressed bytes, between the stored prefix and suffix.
    Compressed,
    /// As plain text (RSV1 clear): the shared compression did not shrink it enough.
    Uncompressed,
    /// Nothing written: this connection cannot take a shared compression.
    Refused,
}

/// The header of a server's (unmasked) single-frame text message.
fn server_text_header(rsv1: bool) -> FrameHeader {
    FrameHeader {
        is_final: true,
        rsv1,
        rsv2: false,
        rsv3: false,
        opcode: OpCode::Data(Data::Text),
        mask: None,
    }
}

/// Frames a text message as a server without permessage-deflate sends it
/// (unmasked, fragmented per `limits.fragment_size`). These bytes are the same
/// for every such connection, so a server fanning one message out to many
/// subscribers can encode once and copy: use it for connections where
/// [`Codec::frames_are_shareable`] is true.
pub fn encode_server_text(limits: &Limits, text: &str, out: &mut Vec<u8>) {
    Codec::new(Role::Server, *limits, None).encode_text(text, out);
}

impl Codec {
    /// True when this codec's output for a message depends only on the message
    /// and the fragment size (server role, no permessage-deflate); see
    /// [`encode_server_text`].
    pub fn frames_are_shareable(&self) -> bool {
        self.role == Role::Server && self.deflate.is_none()
    }
}

fn inflate_error(e: PmdError) -> WsError {
    match e {
        PmdError::TooBig(max) => WsError::MessageTooBig { max },
        other => WsError::Inflate(other.to_string()),
    }
}

fn finish(opcode: Partial, data: Vec<u8>) -> Result<Message, WsError> {
    match opcode {
        Partial::Text => String::from_utf8(data)
            .map(Message::Text)
            .map_err(|_| WsError::InvalidUtf8),
        _ => Ok(Message::Binary(data)),
    }
}

fn parse_close(payload: &[u8]) -> Result<Option<CloseFrame>, WsError> {
    match payload {
        [] => Ok(None),
        [_] => Err(WsError::BadClosePayload),
        [hi, lo, reason @ ..] => {
            let code = u16::from_be_bytes([*hi, *lo]);
            if !is_valid_close_code(code) {
                return Err(WsError::BadCloseCode(code));
            }
            let reason = std::str::from_utf8(reason).map_err(|_| WsError::InvalidUtf8)?;
            Ok(Some(CloseFrame {
                code,
                reason: reason.to_owned(),
            }))
        }
    }
}
