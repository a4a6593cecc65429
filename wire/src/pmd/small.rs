//! A DEFLATE compressor for small messages compressed on their own (no context
//! takeover): one fixed-Huffman block, greedy LZ77 matching over a hash table sized to
//! the message.
//!
//! Why not zlib here: a zlib stream reset between messages clears its 128 KiB hash table
//! (zlib-rs sizes it independently of the input), which costs more than compressing a
//! 300-byte telemetry event; and level 1 (`deflate_quick`) emits the same kind of
//! fixed-Huffman block this module does. The output has the exact shape
//! [`super::Deflater::compress`] documents: a sync-flushed raw DEFLATE stream whose
//! `00 00 ff ff` tail is left out, ending with the byte that holds the header of the
//! empty stored block.

/// Longest input compressed here (positions fit the `u16` hash table entries); longer
/// messages go to zlib, whose setup cost is small next to theirs.
pub(super) const MAX_INPUT: usize = 16 << 10;

/// Largest hash table, in entries (2^13: 16 KiB of `u16`).
const MAX_HASH_BITS: u32 = 13;
const MIN_HASH_BITS: u32 = 8;
const MIN_MATCH: usize = 4;
/// After `2^SKIP_SHIFT` positions without a match, step 2 positions at a time, and so on.
const SKIP_SHIFT: u32 = 5;
const MAX_MATCH: usize = 258;

/// Scratch space kept between messages (the hash table), so compressing allocates nothing.
#[derive(Debug, Default)]
pub(super) struct SmallDeflate {
    /// Position + 1 of the last 4-byte sequence seen with each hash (0: none).
    table: Vec<u16>,
}

impl SmallDeflate {
    /// Compresses `input` (at most [`MAX_INPUT`] bytes) on its own, with back-references
    /// no longer than `1 << window_bits`, appending to `out`.
    pub(super) fn compress(&mut self, input: &[u8], window_bits: u8, out: &mut Vec<u8>) {
        debug_assert!(input.len() <= MAX_INPUT, "input too long for SmallDeflate");
        if input.is_empty() {
            // The header of an empty stored block, as zlib sends an empty message.
            out.push(0x00);
            return;
        }
        let start = out.len();
        // Fixed codes take 8 or 9 bits per literal: a little more than the text when
        // nothing matches. Reserve for that case up front.
        out.reserve(input.len() + input.len() / 8 + 16);
        let bits = (usize::BITS - input.len().leading_zeros()).clamp(MIN_HASH_BITS, MAX_HASH_BITS);
        let size = 1usize << bits;
        if self.table.len() < size {
            self.table.resize(size, 0);
        }
        let table = &mut self.table[..size];
        table.fill(0);
        let max_dist = 1usize << window_bits.clamp(9, 15);

        let mut w = BitWriter::new(out);
        // BFINAL = 0, BTYPE = 01 (fixed Huffman).
        w.put(0b010, 3);
        encode(input, 0, &mut w, |i, v| {
            let h = (v.wrapping_mul(0x9E37_79B1) >> (32 - bits)) as usize;
            let candidate = usize::from(table[h]);
            // `i + 1` fits: i < MAX_INPUT <= u16::MAX.
            table[h] = (i + 1) as u16;
            if candidate == 0 {
                return None;
            }
            let dist = i - (candidate - 1);
            (dist <= max_dist).then_some(dist)
        });
        w.end_block();
        // Text that does not compress would grow by up to 1/8: send it stored instead.
        stored_if_shorter(input, start, out);
    }
}

/// Largest window [`WindowDeflate`] serves (8 KiB); wider windows go to zlib.
pub(crate) const MAX_WINDOW_BITS: u8 = 13;
/// Hash table of [`WindowDeflate`], in entries (2^12 of `u16`: 8 KiB).
const WINDOW_HASH_BITS: u32 = 12;

/// A compressor *with* context takeover over a small window (at most
/// [`MAX_WINDOW_BITS`]): what an SDK on a phone uses instead of a zlib stream.
///
/// Why not zlib: zlib-rs always allocates a 128 KiB hash table (16 hash bits whatever
/// the memory level) plus a pending buffer of 128 KiB at flate2's memory level 9, so a
/// zlib compressor with context takeover costs 250-380 KiB per connection whatever
/// the window. This one keeps the last `2 << window_bits` bytes and an 8 KiB hash
/// table: about 16 KiB at a 4 KiB window. The output is the same kind of fixed-Huffman
/// block that zlib's level 1 sends, so the ratio on a stream of similar telemetry
/// events is close to zlib's when the events repeat within the window.
#[derive(Debug, Default)]
pub(crate) struct WindowDeflate {
    /// The last bytes of the stream (at least the window, at most twice it), then
    /// the message being compressed.
    buf: Vec<u8>,
    /// Stream position of `buf[0]`, truncated to 32 bits.
    base: u32,
    /// Stream position (truncated to 16 bits: the window is at most 8 KiB, so a distance
    /// within it is exact modulo 2^16) of the last 4-byte sequence seen with each hash. A
    /// stale or wrapped entry is harmless: every candidate is checked against the bytes and
    /// the window before it is used, so it can only point at a real match.
    table: Vec<u16>,
}

impl WindowDeflate {
    /// Compresses `input` (at most [`MAX_INPUT`] bytes) with back-references into itself
    /// and into the messages before it, no further back than `1 << window_bits`
    /// (9..=[`MAX_WINDOW_BITS`]), appending to `out`.
    pub(crate) fn compress(&mut self, input: &[u8], window_bits: u8, out: &mut Vec<u8>) {
        debug_assert!(input.len() <= MAX_INPUT, "input too long for WindowDeflate");
        let window = 1usize << window_bits.clamp(9, MAX_WINDOW_BITS);
        if input.is_empty() {
            out.push(0x00);
            return;
        }
        if self.table.is_empty() {
            self.table = vec![0; 1 << WINDOW_HASH_BITS];
        }
        let s = self.buf.len();
        self.buf.extend_from_slice(input);
        let start = out.len();
        out.reserve(input.len() + input.len() / 8 + 16);
        let buf = &self.buf;
        let table = &mut self.table;
        let mut w = BitWriter::new(out);
        w.put(0b010, 3);
        let base = self.base;
        encode(buf, s, &mut w, |i, v| {
            let h = (v.wrapping_mul(0x9E37_79B1) >> (32 - WINDOW_HASH_BITS)) as usize;
            let pos = base.wrapping_add(i as u32) as u16;
            let dist = usize::from(pos.wrapping_sub(table[h]));
            table[h] = pos;
            (dist != 0 && dist <= window && dist <= i).then_some(dist)
        });
        w.end_block();
        stored_if_shorter(input, start, out);
        self.keep_window(window);
    }

    /// Appends a message compressed elsewhere (by zlib, on its own) to the history, so
    /// the next messages may refer to it as the peer's window does.
    pub(crate) fn append_history(&mut self, input: &[u8], window_bits: u8) {
        let window = 1usize << window_bits.clamp(9, MAX_WINDOW_BITS);
        let tail = &input[input.len().saturating_sub(window)..];
        self.buf.extend_from_slice(tail);
        self.base = self.base.wrapping_add((input.len() - tail.len()) as u32);
        self.keep_window(window);
    }

    /// Drops history older than the window once it holds twice the window, so the
    /// copy is amortised over many messages.
    fn keep_window(&mut self, window: usize) {
        if self.buf.len() > 2 * window {
            let drop = self.buf.len() - window;
            self.buf.drain(..drop);
            self.base = self.base.wrapping_add(drop as u32);
            // A large message may have grown the buffer: give the memory back.
            if self.buf.capacity() > 4 * window {
                self.buf.shrink_to(2 * window);
            }
        }
    }
}

/// Greedy LZ77 of `buf[from..]` into `w` (`buf[..from]` is history matches may reach into).
/// `find(i, v)` looks up and records the 4 bytes `v` at `i`, returning the distance of an
/// earlier place with the same hash; it is checked against the bytes here. Generic and inlined
/// so each compressor gets its own loop, as when it was written out in each.
#[inline(always)]
fn encode(
    buf: &[u8],
    from: usize,
    w: &mut BitWriter<'_>,
    mut find: impl FnMut(usize, u32) -> Option<usize>,
) {
    let mut i = from;
    let mut literal_from = from;
    // Text that keeps missing is probably not repetitive: look at fewer positions
    // the longer it misses (as LZ4 does), back to every one after a match.
    let mut misses = 0usize;
    while i + MIN_MATCH <= buf.len() {
        let v = read_u32(buf, i);
        if let Some(dist) = find(i, v) {
            let c = i - dist;
            if read_u32(buf, c) == v {
                let limit = (buf.len() - i).min(MAX_MATCH);
                let mut len = MIN_MATCH;
                while len < limit && buf[c + len] == buf[i + len] {
                    len += 1;
                }
                w.literals(&buf[literal_from..i]);
                w.copy(len, dist);
                i += len;
                literal_from = i;
                misses = 0;
                continue;
            }
        }
        misses += 1;
        i += 1 + (misses >> SKIP_SHIFT);
    }
    w.literals(&buf[literal_from..]);
}

/// Replaces what was written to `out` from `start` on with `input` as stored blocks when that
/// is shorter (text that does not compress grows by up to 1/8 with fixed codes).
#[inline]
fn stored_if_shorter(input: &[u8], start: usize, out: &mut Vec<u8>) {
    if out.len() - start > stored_size(input.len()) {
        out.truncate(start);
        super::write_stored(input, false, out);
        out.push(0x00);
    }
}

/// Bytes of `len` bytes sent as stored blocks plus the sync flush's header byte.
fn stored_size(len: usize) -> usize {
    super::stored_len(len, false) + 1
}

fn read_u32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// LSB-first bit packing into `out`.
struct BitWriter<'a> {
    out: &'a mut Vec<u8>,
    acc: u64,
    n: u32,
}

impl<'a> BitWriter<'a> {
    fn new(out: &'a mut Vec<u8>) -> Self {
        BitWriter { out, acc: 0, n: 0 }
    }

    /// Appends the low `len` (<= 32) bits of `v`.
    fn put(&mut self, v: u32, len: u32) {
        self.acc |= u64::from(v) << self.n;
        self.n += len;
        if self.n >= 32 {
            self.out.extend_from_slice(&(self.acc as u32).to_le_bytes());
            self.acc >>= 32;
            self.n -= 32;
        }
    }

    fn literal(&mut self, b: u8) {
        let (code, len) = LITLEN_CODES[usize::from(b)];
        self.put(u32::from(code), u32::from(len));
    }

    #[inline]
    fn literals(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.literal(b);
        }
    }

    /// A back-reference: `len` in 4..=258, `dist` in 1..=32768.
    fn copy(&mut self, len: usize, dist: usize) {
        let (sym, extra_bits, extra) = length_symbol(len);
        let (code, code_len) = LITLEN_CODES[257 + sym];
        self.put(u32::from(code), u32::from(code_len));
        self.put(extra, extra_bits);
        let (sym, extra_bits, extra) = distance_symbol(dist);
        self.put(u32::from(DIST_CODES[sym]), 5);
        self.put(extra, extra_bits);
    }

    /// Ends the block, then writes the sync flush's empty stored block header (BFINAL = 0,
    /// BTYPE = 00), padded to a byte; its `00 00 ff ff` is the part RFC 7692 strips.
    fn end_block(mut self) {
        let (code, len) = LITLEN_CODES[256];
        self.put(u32::from(code), u32::from(len));
        self.put(0, 3);
        self.finish();
    }

    /// Writes the bits left, the last byte padded with zeros.
    fn finish(self) {
        let bytes = self.n.div_ceil(8) as usize;
        self.out.extend_from_slice(&self.acc.to_le_bytes()[..bytes]);
    }
}

/// Length 3..=258 to (symbol - 257, extra bits, extra value) (RFC 1951 §3.2.5).
fn length_symbol(len: usize) -> (usize, u32, u32) {
    if len == MAX_MATCH {
        return (28, 0, 0);
    }
    let l = (len - 3) as u32;
    if l < 8 {
        return (l as usize, 0, 0);
    }
    let top = 31 - l.leading_zeros(); // >= 3
    let sym = 4 * (top - 1) + ((l >> (top - 2)) & 3);
    let extra_bits = top - 2;
    (sym as usize, extra_bits, l & ((1 << extra_bits) - 1))
}

/// Distance 1..=32768 to (symbol, extra bits, extra value) (RFC 1951 §3.2.5).
fn distance_symbol(dist: usize) -> (usize, u32, u32) {
    let d = (dist - 1) as u32;
    if d < 4 {
        return (d as usize, 0, 0);
    }
    let top = 31 - d.leading_zeros(); // >= 2
    let sym = 2 * top + ((d >> (top - 1)) & 1);
    let extra_bits = top - 1;
    (sym as usize, extra_bits, d & ((1 << extra_bits) - 1))
}

const fn reverse(code: u16, len: u8) -> u16 {
    code.reverse_bits() >> (16 - len as u32)
}

/// Fixed literal/length codes (RFC 1951 §3.2.6), bit-reversed for LSB-first packing.
const LITLEN_CODES: [(u16, u8); 288] = {
    let mut t = [(0u16, 0u8); 288];
    let mut s = 0;
    while s < 288 {
        let (code, len) = match s {
            0..=143 => (0x30 + s as u16, 8),
            144..=255 => (0x190 + (s as u16 - 144), 9),
            256..=279 => (s as u16 - 256, 7),
            _ => (0xC0 + (s as u16 - 280), 8),
        };
        t[s] = (reverse(code, len), len);
        s += 1;
    }
    t
};

/// Fixed distance codes: 5 bits each, bit-reversed.
const DIST_CODES: [u16; 30] = {
    let mut t = [0u16; 30];
    let mut s = 0;
    while s < 30 {
        t[s] = reverse(s as u16, 5);
        s += 1;
    }
    t
};

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::{Decompress, FlushDecompress};
    use proptest::prelude::*;

    /// Inflates with zlib the way a permessage-deflate peer does (tail re-appended).
    fn inflate(data: &[u8], window_bits: u8) -> Vec<u8> {
        let mut d = Decompress::new_with_window_bits(false, window_bits);
        let mut input = data.to_vec();
        input.extend_from_slice(&[0x00, 0x00, 0xff, 0xff]);
        let mut out = Vec::with_capacity(MAX_INPUT * 2 + 64);
        d.decompress_vec(&input, &mut out, FlushDecompress::Sync)
            .expect("valid deflate");
        assert_eq!(d.total_in() as usize, input.len(), "all input consumed");
        out
    }

    fn round_trip(input: &[u8], window_bits: u8) -> usize {
        let mut c = SmallDeflate::default();
        let mut out = vec![0xAA]; // appends, never touches what is there
        c.compress(input, window_bits, &mut out);
        assert_eq!(out[0], 0xAA);
        assert_eq!(inflate(&out[1..], window_bits), input);
        out.len() - 1
    }

    #[test]
    fn symbols_match_rfc_1951_tables() {
        const LEN_BASE: [usize; 29] = [
            3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99,
            115, 131, 163, 195, 227, 258,
        ];
        const LEN_EXTRA: [u32; 29] = [
            0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0,
        ];
        for len in 3..=258 {
            let (sym, bits, extra) = length_symbol(len);
            assert_eq!(bits, LEN_EXTRA[sym], "length {len}");
            assert_eq!(LEN_BASE[sym] + extra as usize, len, "length {len}");
            assert!(extra < (1 << bits));
        }
        const DIST_BASE: [usize; 30] = [
            1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025,
            1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577,
        ];
        for dist in 1..=32768 {
            let (sym, bits, extra) = distance_symbol(dist);
            assert_eq!(bits, (sym as u32 / 2).saturating_sub(1), "distance {dist}");
            assert_eq!(DIST_BASE[sym] + extra as usize, dist, "distance {dist}");
        }
    }

    #[test]
    fn edge_inputs_round_trip() {
        assert_eq!(round_trip(b"", 15), 1);
        round_trip(b"a", 15);
        round_trip(b"abc", 15);
        round_trip(b"abcd", 15);
        round_trip(b"abcdabcd", 15);
        // The longest match, several times over, and a run (distance 1).
        round_trip(&vec![b'x'; 1000], 15);
        round_trip(&vec![b'x'; MAX_INPUT], 9);
        // Every byte value (the 9-bit literals too).
        let all: Vec<u8> = (0..=255u8).cycle().take(3000).collect();
        round_trip(&all, 15);
    }

    #[test]
    fn incompressible_input_is_sent_stored() {
        let mut x = 0x1234_5678u32;
        let noise: Vec<u8> = (0..2000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                (x >> 24) as u8
            })
            .collect();
        assert_eq!(round_trip(&noise, 15), stored_size(noise.len()));
    }

    #[test]
    fn distances_stay_inside_a_small_window() {
        // A repeat 600 bytes back is out of reach of a 512-byte window.
        let mut text: Vec<u8> = (0..600u32).map(|i| (i * 7 % 251) as u8).collect();
        let copy = text.clone();
        text.extend_from_slice(&copy);
        round_trip(&text, 9);
    }

    #[test]
    fn telemetry_compresses_about_as_well_as_zlib_level_1() {
        let event = br#"{"action":"rtm/publish","id":17,"body":{"channel":"game_events","message":{"id":"engine_fps_id","device":{"game":"ody","os":"ios","model":"iPhone12,1"},"data":{"fps":57,"frame_ms":17.4,"gpu_ms":9.1},"session":"6b1c0a6e2d3f4b5a","timestamp":1732770000123}}}"#;
        let ours = round_trip(event, 15);
        let mut zlib = super::super::Deflater::new(1, 15, true);
        let mut out = Vec::new();
        zlib.compress_with_zlib(event, &mut out)
            .expect("zlib compresses");
        assert!(
            ours <= out.len() + out.len() / 10,
            "ours {ours} B, zlib level 1 {} B",
            out.len()
        );
    }

    proptest! {
        #[test]
        fn random_text_round_trips(
            words in proptest::collection::vec("[a-z\"{}:,0-9é]{1,12}", 0..400),
            bits in 9u8..=15,
        ) {
            let text = words.concat();
            prop_assume!(text.len() <= MAX_INPUT);
            round_trip(text.as_bytes(), bits);
        }

        #[test]
        fn random_bytes_round_trip(data in proptest::collection::vec(0u8..4, 0..3000)) {
            round_trip(&data, 15);
        }
    }
}
