//! permessage-deflate (RFC 7692): negotiation on both sides, and the
//! compressor/decompressor pair used by [`crate::ws::Codec`].
//!
//! zlib (and zlib-rs) cannot produce a raw DEFLATE stream with an 8-bit window:
//! it silently uses 9 bits, which a peer that asked for 8 might not decode. So
//! when our side must compress with a window of 8 bits we simply send messages
//! uncompressed (RSV1 clear), which RFC 7692 always allows; we still inflate
//! what the peer sends.

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

mod small;

use small::{SmallDeflate, WindowDeflate};

/// The extension token.
pub const EXTENSION_NAME: &str = "permessage-deflate";

/// The four bytes a sync flush ends with; stripped on send, re-appended on receive.
const SYNC_TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// A message compressed on its own is sent compressed only when deflate saves at least
/// 1/`MIN_SAVING_DIVISOR` of its bytes ([`saves_enough`]); otherwise it goes uncompressed
/// (RSV1 clear, which RFC 7692 allows for any message). Text that does not compress
/// (random ids, base64, blobs already compressed) comes out of the level-1 compressor
/// *larger*: its fixed Huffman codes spend 8 or 9 bits on every literal. And under about
/// 6 % the few bytes saved are worth less than the reader's inflate, about 1 µs for a
/// 400-byte message (the load tool's profile).
pub const MIN_SAVING_DIVISOR: usize = 16;

/// Whether `compressed_len` bytes of deflate are worth sending in place of `text_len`
/// bytes of text (see [`MIN_SAVING_DIVISOR`]).
pub fn saves_enough(text_len: usize, compressed_len: usize) -> bool {
    compressed_len + text_len / MIN_SAVING_DIVISOR < text_len
}

/// What a client offers (and is prepared to accept).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PmdConfig {
    /// Offer `client_no_context_takeover`: we reset our compressor after each
    /// message (less memory, worse ratio). Default false.
    pub client_no_context_takeover: bool,
    /// Ask the server to reset its compressor after each message. Default false.
    pub server_no_context_takeover: bool,
    /// Offer `client_max_window_bits`: `Some(15)` sends the bare parameter (we
    /// accept any value the server picks), `Some(n < 15)` sends `=n` (we will
    /// use at most n). Default `Some(15)`, which is what browsers send.
    pub client_max_window_bits: Option<u8>,
    /// Ask the server to use at most this window (8..=15). Default `None`.
    pub server_max_window_bits: Option<u8>,
    /// Compression level 0..=9 (default 1: telemetry is small and latency bound;
    /// context takeover already gives most of the ratio).
    pub level: u32,
}

impl Default for PmdConfig {
    fn default() -> Self {
        PmdConfig {
            client_no_context_takeover: false,
            server_no_context_takeover: false,
            client_max_window_bits: Some(15),
            server_max_window_bits: None,
            level: 1,
        }
    }
}

/// What a server is prepared to accept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerPmdConfig {
    /// Always answer `server_no_context_takeover` (we reset our compressor after
    /// each message), even if the client did not ask. Default false.
    pub server_no_context_takeover: bool,
    /// Always answer `client_no_context_takeover` (the client resets after each
    /// message, so our inflater keeps no state). Default false.
    pub client_no_context_takeover: bool,
    /// Largest window we compress with (9..=15, default 15).
    pub server_max_window_bits: u8,
    /// Largest window we ask the client to use, when it offered
    /// `client_max_window_bits` (9..=15, default 15).
    pub client_max_window_bits: u8,
    /// Compression level 0..=9 (default 1).
    pub level: u32,
}

impl Default for ServerPmdConfig {
    fn default() -> Self {
        ServerPmdConfig {
            server_no_context_takeover: false,
            client_no_context_takeover: false,
            server_max_window_bits: 15,
            client_max_window_bits: 15,
            level: 1,
        }
    }
}

/// The parameters both sides agreed on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Negotiated {
    /// The client resets its compressor after each message.
    pub client_no_context_takeover: bool,
    /// The server resets its compressor after each message.
    pub server_no_context_takeover: bool,
    /// Window the client compresses with (8..=15).
    pub client_max_window_bits: u8,
    /// Window the server compresses with (8..=15).
    pub server_max_window_bits: u8,
    /// Our compression level (local, not negotiated; 0..=9).
    pub level: u32,
}

impl Default for Negotiated {
    fn default() -> Self {
        Negotiated {
            client_no_context_takeover: false,
            server_no_context_takeover: false,
            client_max_window_bits: 15,
            server_max_window_bits: 15,
            level: 1,
        }
    }
}

/// Why a server's permessage-deflate answer is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PmdError {
    /// The response names an extension other than permessage-deflate.
    #[error("server answered an extension we did not offer: {0:?}")]
    UnknownExtension(String),
    /// The response holds more than one permessage-deflate element.
    #[error("server answered permessage-deflate more than once")]
    Duplicate,
    /// An unknown parameter, or one we did not offer.
    #[error("unexpected permessage-deflate parameter {0:?}")]
    UnexpectedParameter(String),
    /// A parameter given twice.
    #[error("duplicate permessage-deflate parameter {0:?}")]
    DuplicateParameter(String),
    /// A parameter with a missing or out-of-range value.
    #[error("bad value for permessage-deflate parameter {0:?}")]
    BadValue(String),
    /// The payload is not valid DEFLATE data.
    #[error("invalid compressed data: {0}")]
    Inflate(String),
    /// The inflated message exceeds the limit.
    #[error("inflated message exceeds {0} bytes")]
    TooBig(usize),
}

/// One extension element: name and `(param, value)` pairs.
fn split_elements(header: &str) -> impl Iterator<Item = (&str, Vec<(&str, Option<&str>)>)> {
    header
        .split(',')
        .filter(|e| !e.trim().is_empty())
        .map(|element| {
            let mut parts = element.split(';');
            let name = parts.next().unwrap_or("").trim();
            let params = parts
                .map(|p| match p.split_once('=') {
                    Some((k, v)) => (k.trim(), Some(v.trim().trim_matches('"'))),
                    None => (p.trim(), None),
                })
                .collect();
            (name, params)
        })
}

/// `8..=15`, with no sign or padding.
fn parse_bits(v: &str) -> Option<u8> {
    if v.is_empty() || v.len() > 2 || !v.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    v.parse().ok().filter(|b| (8..=15).contains(b))
}

/// The `Sec-WebSocket-Extensions` value a client sends for `config`.
pub fn client_offer(config: &PmdConfig) -> String {
    let mut s = String::from(EXTENSION_NAME);
    if config.client_no_context_takeover {
        s.push_str("; client_no_context_takeover");
    }
    if config.server_no_context_takeover {
        s.push_str("; server_no_context_takeover");
    }
    if let Some(bits) = config.server_max_window_bits {
        s.push_str(&format!("; server_max_window_bits={}", bits.clamp(8, 15)));
    }
    match config.client_max_window_bits {
        Some(bits) if bits < 15 => s.push_str(&format!("; client_max_window_bits={}", bits.max(8))),
        Some(_) => s.push_str("; client_max_window_bits"),
        None => {}
    }
    s
}

/// Checks the server's `Sec-WebSocket-Extensions` answer against what we offered.
///
/// Refuses other extensions, several elements, parameters we did not offer
/// (RFC 7692 §7.1.2.2: `client_max_window_bits` only if offered), duplicates and
/// out-of-range values.
pub fn client_accept(config: &PmdConfig, response_header: &str) -> Result<Negotiated, PmdError> {
    let mut found = None;
    for (name, params) in split_elements(response_header) {
        if !name.eq_ignore_ascii_case(EXTENSION_NAME) {
            return Err(PmdError::UnknownExtension(name.to_owned()));
        }
        if found.is_some() {
            return Err(PmdError::Duplicate);
        }
        found = Some(params);
    }
    let Some(params) = found else {
        return Err(PmdError::UnknownExtension(
            response_header.trim().to_owned(),
        ));
    };
    let mut n = Negotiated {
        client_no_context_takeover: config.client_no_context_takeover,
        server_no_context_takeover: false,
        client_max_window_bits: config.client_max_window_bits.unwrap_or(15).clamp(8, 15),
        server_max_window_bits: 15,
        level: config.level,
    };
    let mut seen: Vec<&str> = Vec::with_capacity(4);
    for (key, value) in params {
        if seen.iter().any(|k| k.eq_ignore_ascii_case(key)) {
            return Err(PmdError::DuplicateParameter(key.to_owned()));
        }
        seen.push(key);
        match key.to_ascii_lowercase().as_str() {
            "server_no_context_takeover" => {
                if value.is_some() {
                    return Err(PmdError::BadValue(key.to_owned()));
                }
                n.server_no_context_takeover = true;
            }
            "client_no_context_takeover" => {
                if value.is_some() {
                    return Err(PmdError::BadValue(key.to_owned()));
                }
                n.client_no_context_takeover = true;
            }
            "server_max_window_bits" => {
                let bits = value
                    .and_then(parse_bits)
                    .ok_or_else(|| PmdError::BadValue(key.to_owned()))?;
                if config.server_max_window_bits.is_some_and(|max| bits > max) {
                    return Err(PmdError::BadValue(key.to_owned()));
                }
                n.server_max_window_bits = bits;
            }
            "client_max_window_bits" => {
                let Some(offered) = config.client_max_window_bits else {
                    return Err(PmdError::UnexpectedParameter(key.to_owned()));
                };
                let bits = value
                    .and_then(parse_bits)
                    .ok_or_else(|| PmdError::BadValue(key.to_owned()))?;
                if bits > offered.clamp(8, 15) {
                    return Err(PmdError::BadValue(key.to_owned()));
                }
                n.client_max_window_bits = bits;
            }
            _ => return Err(PmdError::UnexpectedParameter(key.to_owned())),
        }
    }
    Ok(n)
}

/// Picks the first acceptable permessage-deflate offer among the request's
/// `Sec-WebSocket-Extensions` header values, and returns the agreement and the
/// header value to answer. `None` means "no compression" (no acceptable offer).
///
/// Offers with unknown parameters, duplicates or bad values are skipped, as
/// RFC 7692 §5 asks.
pub fn server_negotiate(
    config: &ServerPmdConfig,
    offer_headers: &[&str],
) -> Option<(Negotiated, String)> {
    offer_headers
        .iter()
        .flat_map(|h| split_elements(h))
        .filter(|(name, _)| name.eq_ignore_ascii_case(EXTENSION_NAME))
        .find_map(|(_, params)| accept_offer(config, &params))
}

fn accept_offer(
    config: &ServerPmdConfig,
    params: &[(&str, Option<&str>)],
) -> Option<(Negotiated, String)> {
    let mut server_nct = config.server_no_context_takeover;
    let mut client_nct = config.client_no_context_takeover;
    let mut server_bits: Option<u8> = None;
    // Some(None): offered bare; Some(Some(n)): offered with a value.
    let mut client_bits: Option<Option<u8>> = None;
    let mut seen: Vec<&str> = Vec::with_capacity(4);
    for &(key, value) in params {
        if seen.iter().any(|k| k.eq_ignore_ascii_case(key)) {
            return None;
        }
        seen.push(key);
        match key.to_ascii_lowercase().as_str() {
            "server_no_context_takeover" if value.is_none() => server_nct = true,
            "client_no_context_takeover" if value.is_none() => client_nct = true,
            "server_max_window_bits" => server_bits = Some(parse_bits(value?)?),
            "client_max_window_bits" => {
                client_bits = Some(match value {
                    None => None,
                    Some(v) => Some(parse_bits(v)?),
                })
            }
            _ => return None,
        }
    }
    let our_server_max = config.server_max_window_bits.clamp(9, 15);
    let our_client_max = config.client_max_window_bits.clamp(9, 15);
    let mut n = Negotiated {
        client_no_context_takeover: client_nct,
        server_no_context_takeover: server_nct,
        client_max_window_bits: 15,
        server_max_window_bits: 15,
        level: config.level,
    };
    let mut answer = String::from(EXTENSION_NAME);
    if server_nct {
        answer.push_str("; server_no_context_takeover");
    }
    if client_nct {
        answer.push_str("; client_no_context_takeover");
    }
    // We answer server_max_window_bits when the client asked or we use less than 15.
    let sbits = server_bits.map_or(our_server_max, |b| b.min(our_server_max));
    if server_bits.is_some() || sbits < 15 {
        answer.push_str(&format!("; server_max_window_bits={sbits}"));
    }
    n.server_max_window_bits = sbits;
    match client_bits {
        // The client can honour a limit: ask for ours if it is smaller.
        Some(offered) => {
            let cbits = offered.unwrap_or(15).min(our_client_max);
            if cbits < 15 || offered.is_some() {
                answer.push_str(&format!("; client_max_window_bits={cbits}"));
            }
            n.client_max_window_bits = cbits;
        }
        // It did not offer the parameter: it may use up to 15 and we must not answer it.
        None => n.client_max_window_bits = 15,
    }
    Some((n, answer))
}

/// A permessage-deflate compressor for one direction.
///
/// A message compressed on its own (no context takeover) at level 1 and no longer than
/// 16 KiB does not go through zlib: [`small`] compresses it as zlib's level 1 would,
/// without resetting a 128 KiB hash table per message. The zlib stream is created on
/// the first message that needs it.
///
/// With context takeover at level 1 and a window of at most 8 KiB (13 bits), messages
/// of up to 16 KiB go through [`small`]'s windowed compressor instead, which keeps the
/// window and an 8 KiB table (about 16 KiB at 12 bits) where a zlib stream keeps
/// 250-380 KiB: the choice of an SDK on a phone. Longer messages then go through a
/// zlib stream reset first (so it refers to nothing the windowed compressor sent).
pub struct Deflater {
    c: Option<Compress>,
    small: SmallDeflate,
    windowed: Option<WindowDeflate>,
    level: u32,
    window_bits: u8,
    no_context_takeover: bool,
}

impl std::fmt::Debug for Deflater {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deflater")
            .field("no_context_takeover", &self.no_context_takeover)
            .finish()
    }
}

impl Deflater {
    /// A compressor with the given window (9..=15; 8 is raised to 9, so callers
    /// must not compress at all when the peer asked for 8, see the module docs).
    pub fn new(level: u32, window_bits: u8, no_context_takeover: bool) -> Self {
        Deflater {
            c: None,
            small: SmallDeflate::default(),
            windowed: (!no_context_takeover
                && level == 1
                && window_bits.clamp(9, 15) <= small::MAX_WINDOW_BITS)
                .then(WindowDeflate::default),
            level: level.min(9),
            window_bits: window_bits.clamp(9, 15),
            no_context_takeover,
        }
    }

    fn zlib(&mut self) -> &mut Compress {
        let (level, bits) = (self.level, self.window_bits);
        self.c.get_or_insert_with(|| {
            Compress::new_with_window_bits(Compression::new(level), false, bits)
        })
    }

    /// Resets the zlib stream, if there is one, so the next message references nothing
    /// before it.
    fn reset(&mut self) {
        if let Some(c) = self.c.as_mut() {
            c.reset();
        }
    }

    /// The window this compressor was built with (9..=15).
    pub fn window_bits(&self) -> u8 {
        // flate2 does not report it back; `new` clamps, so recompute the same way.
        self.window_bits
    }

    /// Whether this compressor forgets its history after every message.
    pub fn no_context_takeover(&self) -> bool {
        self.no_context_takeover
    }

    /// Compresses one whole message into `out` (appended), sync-flushed with
    /// the trailing `00 00 ff ff` removed, as RFC 7692 §7.2.1 asks.
    pub fn compress(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<(), PmdError> {
        if self.no_context_takeover && self.level == 1 && input.len() <= small::MAX_INPUT {
            self.small.compress(input, self.window_bits, out);
            return Ok(());
        }
        if let Some(w) = self.windowed.as_mut() {
            if input.len() <= small::MAX_INPUT {
                w.compress(input, self.window_bits, out);
                return Ok(());
            }
            // A fresh zlib stream refers to nothing before this message; the windowed
            // compressor then learns the message as history.
            w.append_history(input, self.window_bits);
            if let Some(c) = self.c.as_mut() {
                c.reset();
            }
        }
        self.compress_with_zlib(input, out)
    }

    /// [`Deflater::compress`] through zlib, whatever the message (for benchmarks and
    /// tests that compare the two compressors).
    #[doc(hidden)]
    pub fn compress_with_zlib(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<(), PmdError> {
        let start = out.len();
        let mut consumed = 0usize;
        let c = self.zlib();
        loop {
            if out.capacity() - out.len() < 64 {
                out.reserve(input.len() - consumed + 64);
            }
            let before = c.total_in();
            c.compress_vec(&input[consumed..], out, FlushCompress::Sync)
                .map_err(|e| PmdError::Inflate(e.to_string()))?;
            consumed += (c.total_in() - before) as usize;
            // The flush is complete once all input is in and zlib left spare room.
            if consumed == input.len() && out.len() < out.capacity() {
                break;
            }
        }
        if out.len() - start >= 4 && out.ends_with(&SYNC_TAIL) {
            out.truncate(out.len() - 4);
        }
        if out.len() == start {
            // An empty message is sent as a single 0x00 (an empty stored block start).
            out.push(0x00);
        }
        if self.no_context_takeover {
            self.reset();
        }
        Ok(())
    }
}

/// A piece of text compressed once, on its own (fresh dictionary), so that it can be
/// spliced into the compressed messages of any number of connections: one published
/// event fanned out to many subscribers is compressed once instead of once per
/// subscriber. See [`crate::ws::Codec::encode_text_spliced`].
///
/// The bytes are a sync-flushed raw DEFLATE stream with the `00 00 ff ff` tail removed,
/// so they end with the header of an empty stored block whose length is still to come.
/// They hold no back-reference outside the text itself, which is what makes them
/// valid after any preceding data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedDeflate {
    data: Vec<u8>,
    text_len: usize,
    window_bits: u8,
}

impl SharedDeflate {
    /// Compresses `text` with `deflater`, which is reset first (so its history, if any,
    /// is not referenced) and left reset.
    pub fn compress(deflater: &mut Deflater, text: &[u8]) -> Result<Self, PmdError> {
        // A reset clears a 128 KiB hash table: skip the ones a no-context-takeover
        // deflater already did after its last message (and does after this one).
        if !deflater.no_context_takeover {
            deflater.reset();
        }
        let mut data = Vec::with_capacity(text.len() / 2 + 16);
        let result = deflater.compress(text, &mut data);
        if !deflater.no_context_takeover || result.is_err() {
            deflater.reset();
        }
        result?;
        Ok(SharedDeflate {
            data,
            text_len: text.len(),
            window_bits: deflater.window_bits,
        })
    }

    /// Whether a peer inflating with a `window_bits` window can decode these bytes: its
    /// window is at least the compressor's, or the text is too short to refer back further.
    pub fn fits_window(&self, window_bits: u8) -> bool {
        window_bits >= self.window_bits || self.text_len <= 1usize << window_bits.min(15)
    }

    /// The compressed bytes (see the type's docs for their exact form).
    pub fn as_bytes(&self) -> &[u8] {
        &self.data
    }

    /// Length of the text before compression.
    pub fn text_len(&self) -> usize {
        self.text_len
    }

    /// Whether these bytes are worth sending in place of the text ([`saves_enough`]); when
    /// not, [`crate::ws::Codec::encode_text_spliced`] sends the text uncompressed.
    pub fn pays_off(&self) -> bool {
        saves_enough(self.text_len, self.data.len())
    }
}

/// Appends `data` as stored (uncompressed) DEFLATE blocks, non-final, starting on a
/// byte boundary. `pending_header`: the stream already ends with the 3-bit header of a
/// stored block (as [`SharedDeflate`] bytes do), so the first block's header is not
/// written again.
pub(crate) fn write_stored(data: &[u8], pending_header: bool, out: &mut Vec<u8>) {
    let mut header_written = pending_header;
    let mut rest = data;
    // At least one block, so that an empty `data` still completes a pending header.
    loop {
        let n = rest.len().min(u16::MAX as usize);
        if !header_written {
            // BFINAL = 0, BTYPE = 00, padded to the byte boundary.
            out.push(0x00);
        }
        header_written = false;
        let len = n as u16;
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(&rest[..n]);
        rest = &rest[n..];
        if rest.is_empty() {
            return;
        }
    }
}

/// Bytes [`write_stored`] appends for `len` bytes of data.
pub(crate) fn stored_len(len: usize, pending_header: bool) -> usize {
    let blocks = len.div_ceil(u16::MAX as usize).max(1);
    len + blocks * 5 - usize::from(pending_header)
}

/// A permessage-deflate decompressor for one direction, with a hard output bound.
pub struct Inflater {
    d: Decompress,
    window_bits: u8,
    no_context_takeover: bool,
}

impl std::fmt::Debug for Inflater {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inflater")
            .field("no_context_takeover", &self.no_context_takeover)
            .finish()
    }
}

impl Inflater {
    /// A decompressor for a peer compressing with `window_bits` (8..=15).
    pub fn new(window_bits: u8, no_context_takeover: bool) -> Self {
        // A 9-bit window decodes an 8-bit stream, and raw inflate with 8 is not
        // accepted by every zlib.
        let window_bits = window_bits.clamp(9, 15);
        Inflater {
            d: Decompress::new_with_window_bits(false, window_bits),
            window_bits,
            no_context_takeover,
        }
    }

    /// Inflates one fragment of a compressed message, appending to `out`.
    /// Fails with [`PmdError::TooBig`] as soon as `out` would exceed `max_out`,
    /// without ever allocating more than `max_out + 1` bytes in `out`.
    pub fn decompress(
        &mut self,
        input: &[u8],
        out: &mut Vec<u8>,
        max_out: usize,
    ) -> Result<(), PmdError> {
        let mut consumed = 0usize;
        loop {
            if out.len() == out.capacity() {
                if out.len() > max_out {
                    return Err(PmdError::TooBig(max_out));
                }
                // Grow geometrically, but never past max_out + 1 (the +1 detects overflow).
                let want = out
                    .len()
                    .max(input.len().saturating_mul(2))
                    .max(256)
                    .min(max_out.saturating_add(1) - out.len());
                out.reserve_exact(want);
            }
            let (in0, out0) = (self.d.total_in(), self.d.total_out());
            let status = self
                .d
                .decompress_vec(&input[consumed..], out, FlushDecompress::Sync)
                .map_err(|e| PmdError::Inflate(e.to_string()))?;
            consumed += (self.d.total_in() - in0) as usize;
            if out.len() > max_out {
                return Err(PmdError::TooBig(max_out));
            }
            if status == Status::StreamEnd {
                // The peer ended the DEFLATE stream (BFINAL); what follows starts afresh.
                self.d.reset(false);
                if consumed == input.len() {
                    return Ok(());
                }
                continue;
            }
            let progressed = self.d.total_in() != in0 || self.d.total_out() != out0;
            if consumed == input.len() && out.len() < out.capacity() {
                return Ok(());
            }
            if !progressed && out.len() < out.capacity() {
                // Input left but zlib wants nothing more: trailing garbage.
                return Err(PmdError::Inflate(
                    "trailing data after the compressed block".into(),
                ));
            }
        }
    }

    /// Ends a message: feeds the stripped `00 00 ff ff` tail and resets the
    /// state if the peer does not keep context.
    pub fn finish(&mut self, out: &mut Vec<u8>, max_out: usize) -> Result<(), PmdError> {
        self.decompress(&SYNC_TAIL, out, max_out)?;
        if self.no_context_takeover {
            self.d.reset(false);
        }
        Ok(())
    }

    /// The window this inflater was built with.
    pub fn window_bits(&self) -> u8 {
        self.window_bits
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_client_offer() {
        assert_eq!(
            client_offer(&PmdConfig::default()),
            "permessage-deflate; client_max_window_bits"
        );
        let c = PmdConfig {
            client_no_context_takeover: true,
            server_no_context_takeover: true,
            client_max_window_bits: Some(10),
            server_max_window_bits: Some(12),
            level: 6,
        };
        assert_eq!(
            client_offer(&c),
            "permessage-deflate; client_no_context_takeover; server_no_context_takeover; server_max_window_bits=12; client_max_window_bits=10"
        );
        let none = PmdConfig {
            client_max_window_bits: None,
            ..PmdConfig::default()
        };
        assert_eq!(client_offer(&none), "permessage-deflate");
    }

    #[test]
    fn client_accept_table() {
        let d = PmdConfig::default();
        let ok = |c: &PmdConfig, h: &str| client_accept(c, h).unwrap();
        let n = ok(&d, "permessage-deflate");
        assert_eq!(
            (n.client_max_window_bits, n.server_max_window_bits),
            (15, 15)
        );
        assert!(!n.client_no_context_takeover && !n.server_no_context_takeover);
        let n = ok(
            &d,
            "permessage-deflate; server_no_context_takeover; client_max_window_bits=10",
        );
        assert!(n.server_no_context_takeover);
        assert_eq!(n.client_max_window_bits, 10);
        let n = ok(
            &d,
            "Permessage-Deflate; client_no_context_takeover; server_max_window_bits=9",
        );
        assert!(n.client_no_context_takeover);
        assert_eq!(n.server_max_window_bits, 9);
        let n = ok(&d, r#"permessage-deflate; server_max_window_bits="12""#);
        assert_eq!(n.server_max_window_bits, 12);

        let not_offered = PmdConfig {
            client_max_window_bits: None,
            ..PmdConfig::default()
        };
        let small = PmdConfig {
            client_max_window_bits: Some(10),
            server_max_window_bits: Some(11),
            ..d
        };
        // Refused answers and the variant each must give (the text it carries, the offending
        // part, is left aside).
        let unknown = PmdError::UnknownExtension(String::new());
        let unexpected = PmdError::UnexpectedParameter(String::new());
        let twice = PmdError::DuplicateParameter(String::new());
        let bad = PmdError::BadValue(String::new());
        for (c, h, want) in [
            (&d, "x-webkit-deflate-frame", &unknown),
            (&d, "", &unknown),
            (
                &d,
                "permessage-deflate, permessage-deflate",
                &PmdError::Duplicate,
            ),
            (&d, "permessage-deflate; foo", &unexpected),
            (
                &d,
                "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
                &twice,
            ),
            (&d, "permessage-deflate; client_max_window_bits", &bad),
            (&d, "permessage-deflate; server_max_window_bits=16", &bad),
            (&d, "permessage-deflate; server_max_window_bits=7", &bad),
            (&d, "permessage-deflate; server_max_window_bits=+9", &bad),
            (&d, "permessage-deflate; server_no_context_takeover=1", &bad),
            (
                &not_offered,
                "permessage-deflate; client_max_window_bits=15",
                &unexpected,
            ),
            (
                &small,
                "permessage-deflate; client_max_window_bits=12",
                &bad,
            ),
            (
                &small,
                "permessage-deflate; server_max_window_bits=12",
                &bad,
            ),
        ] {
            let got = client_accept(c, h).unwrap_err();
            assert_eq!(
                std::mem::discriminant(&got),
                std::mem::discriminant(want),
                "{h:?}: {got:?}"
            );
        }
        let n = ok(&small, "permessage-deflate");
        assert_eq!(n.client_max_window_bits, 10);
    }

    #[test]
    fn server_negotiate_table() {
        let cfg = ServerPmdConfig::default();
        let neg = |h: &[&str]| server_negotiate(&cfg, h);
        // The C++ client.
        let (n, a) =
            neg(&["permessage-deflate; server_max_window_bits=15; client_max_window_bits=15"])
                .unwrap();
        assert_eq!(
            a,
            "permessage-deflate; server_max_window_bits=15; client_max_window_bits=15"
        );
        assert_eq!(
            (n.server_max_window_bits, n.client_max_window_bits),
            (15, 15)
        );
        // Browsers, Node ws, Python websockets.
        let (n, a) = neg(&["permessage-deflate; client_max_window_bits"]).unwrap();
        assert_eq!(a, "permessage-deflate");
        assert_eq!(n.client_max_window_bits, 15);
        let (n, a) =
            neg(&["permessage-deflate; client_no_context_takeover; server_no_context_takeover"])
                .unwrap();
        assert_eq!(
            a,
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover"
        );
        assert!(n.client_no_context_takeover && n.server_no_context_takeover);
        // First acceptable of several offers, across header lines.
        let (n, _) = neg(&[
            "permessage-deflate; server_max_window_bits=20, permessage-deflate; unknown_param",
            "x-foo, permessage-deflate; server_max_window_bits=10",
        ])
        .unwrap();
        assert_eq!(n.server_max_window_bits, 10);
        assert!(neg(&["x-webkit-deflate-frame"]).is_none());
        assert!(neg(&[]).is_none());
        assert!(neg(&["permessage-deflate; server_max_window_bits"]).is_none());
        assert!(
            neg(&["permessage-deflate; client_max_window_bits=8; client_max_window_bits=9"])
                .is_none()
        );
        // Our own limits.
        let small = ServerPmdConfig {
            server_max_window_bits: 10,
            client_max_window_bits: 11,
            ..cfg.clone()
        };
        let (n, a) =
            server_negotiate(&small, &["permessage-deflate; client_max_window_bits"]).unwrap();
        assert_eq!(
            a,
            "permessage-deflate; server_max_window_bits=10; client_max_window_bits=11"
        );
        assert_eq!(
            (n.server_max_window_bits, n.client_max_window_bits),
            (10, 11)
        );
        // A client that cannot take a limit gets none asked of it.
        let (n, a) = server_negotiate(&small, &["permessage-deflate"]).unwrap();
        assert_eq!(a, "permessage-deflate; server_max_window_bits=10");
        assert_eq!(n.client_max_window_bits, 15);
        // Our answer is always acceptable to our client.
        for offer_cfg in [
            PmdConfig::default(),
            PmdConfig {
                client_max_window_bits: None,
                server_max_window_bits: Some(9),
                ..PmdConfig::default()
            },
            PmdConfig {
                client_no_context_takeover: true,
                server_no_context_takeover: true,
                ..PmdConfig::default()
            },
        ] {
            let (sn, answer) = server_negotiate(&small, &[&client_offer(&offer_cfg)]).unwrap();
            let cn = client_accept(&offer_cfg, &answer).unwrap();
            assert_eq!(sn.client_no_context_takeover, cn.client_no_context_takeover);
            assert_eq!(sn.server_no_context_takeover, cn.server_no_context_takeover);
            assert_eq!(sn.server_max_window_bits, cn.server_max_window_bits);
        }
    }

    fn round_trip(bits: u8, nct: bool) {
        let mut def = Deflater::new(6, bits, nct);
        let mut inf = Inflater::new(bits, nct);
        for i in 0..20 {
            let msg = format!(
                "{{\"id\":\"engine_fps_id\",\"data\":{{\"fps\":{i}}},\"pad\":\"{}\"}}",
                "x".repeat(i * 50)
            );
            let mut z = Vec::new();
            def.compress(msg.as_bytes(), &mut z).unwrap();
            assert!(!z.ends_with(&SYNC_TAIL));
            let mut out = Vec::new();
            // Split the compressed payload in two to exercise fragment feeding.
            let mid = z.len() / 2;
            inf.decompress(&z[..mid], &mut out, 1 << 20).unwrap();
            inf.decompress(&z[mid..], &mut out, 1 << 20).unwrap();
            inf.finish(&mut out, 1 << 20).unwrap();
            assert_eq!(out, msg.as_bytes(), "bits {bits} nct {nct} msg {i}");
        }
        let mut z = Vec::new();
        def.compress(b"", &mut z).unwrap();
        let mut out = Vec::new();
        inf.decompress(&z, &mut out, 10).unwrap();
        inf.finish(&mut out, 10).unwrap();
        assert!(out.is_empty());
    }

    /// The windowed compressor (context takeover, level 1, window <= 13 bits) against
    /// zlib's inflater keeping its window across messages: similar events, a message
    /// too long for it (zlib in between), incompressible bytes, empty messages.
    #[test]
    fn windowed_stream_round_trips_through_zlib_inflate() {
        for bits in 9..=small::MAX_WINDOW_BITS {
            let mut def = Deflater::new(1, bits, false);
            assert!(def.windowed.is_some(), "bits {bits}");
            let mut inf = Inflater::new(bits, false);
            let mut seed = 0x1234_5678u32;
            let mut wire = 0usize;
            let mut text = 0usize;
            for i in 0..400usize {
                let msg: Vec<u8> = match i % 50 {
                    7 => b"event ".repeat(4000), // > 16 KiB: through zlib
                    13 => (0..700)
                        .map(|_| {
                            seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
                            (seed >> 24) as u8
                        })
                        .collect(),
                    21 => Vec::new(),
                    _ => format!(
                        "{{\"action\":\"rtm/publish\",\"id\":{i},\"body\":{{\"channel\":\"engine_fps_id\",\"message\":{{\"fps\":{},\"frame\":{}}}}}}}",
                        i % 61,
                        i * 17
                    )
                    .into_bytes(),
                };
                let mut z = Vec::new();
                def.compress(&msg, &mut z).unwrap();
                let mut out = Vec::new();
                inf.decompress(&z, &mut out, 1 << 20).unwrap();
                inf.finish(&mut out, 1 << 20).unwrap();
                assert_eq!(out, msg, "bits {bits} msg {i}");
                if i % 50 > 21 {
                    wire += z.len();
                    text += msg.len();
                }
            }
            // Context takeover works: repeated events cost a fraction of their text.
            assert!(wire * 3 < text, "bits {bits}: {wire} of {text}");
        }
        // Above 13 bits the zlib stream is kept, as before.
        assert!(Deflater::new(1, 14, false).windowed.is_none());
        assert!(Deflater::new(6, 12, false).windowed.is_none());
    }

    #[test]
    fn deflate_round_trips_every_window_and_takeover() {
        for bits in 9..=15 {
            round_trip(bits, false);
            round_trip(bits, true);
        }
    }

    #[test]
    fn bomb_is_refused_with_bounded_output() {
        // (A 100 MB bomb, hand-built, is in tests/ws.rs.)
        let zeros = vec![0u8; 3 << 20];
        let mut z = Vec::new();
        Deflater::new(1, 15, false)
            .compress(&zeros, &mut z)
            .unwrap();
        assert!(z.len() < 50_000, "{}", z.len());
        let mut out = Vec::new();
        let err = Inflater::new(15, false)
            .decompress(&z, &mut out, 1 << 20)
            .unwrap_err();
        assert_eq!(err, PmdError::TooBig(1 << 20));
        assert!(out.capacity() <= (1 << 20) + 1, "{}", out.capacity());
    }

    #[test]
    fn garbage_is_an_inflate_error() {
        let mut out = Vec::new();
        let err =
            Inflater::new(15, false).decompress(&[0xff, 0xff, 0xff, 0xff, 0xff], &mut out, 1000);
        assert!(matches!(err, Err(PmdError::Inflate(_))), "{err:?}");
    }
}
