//! A fast path for inflating a whole message compressed on its own, when it holds only
//! stored and fixed-Huffman blocks: what zlib's level 1, [`super::small`] and the
//! server's spliced deliveries produce for small messages.
//!
//! Why: a subscriber reading hundreds of thousands of small deliveries a second spends
//! most of its time in zlib's per-call setup and window bookkeeping, which a message
//! without history does not need. Anything else (a dynamic-Huffman block, a final block,
//! a malformed or truncated stream, output over the bound) makes [`inflate`] give up,
//! leaving `out` as it was, and the caller inflates with zlib, which then also reports
//! any error the standard way.

/// Inflates `input` (a permessage-deflate payload with its `00 00 ff ff` tail stripped),
/// appending to `out` at most `max_out` bytes. `false`: not handled here, `out` is
/// unchanged.
pub fn inflate(input: &[u8], out: &mut Vec<u8>, max_out: usize) -> bool {
    let start = out.len();
    if inflate_blocks(input, out, start, max_out).is_some() {
        return true;
    }
    out.truncate(start);
    false
}

/// `None`: give up (see the module docs).
fn inflate_blocks(input: &[u8], out: &mut Vec<u8>, start: usize, max_out: usize) -> Option<()> {
    let mut bits = Bits {
        data: input,
        pos: 0,
        buf: 0,
        n: 0,
    };
    out.reserve(input.len().saturating_mul(3).min(max_out));
    loop {
        bits.refill();
        let header = bits.take(3)?;
        if header & 1 != 0 {
            // A final block ends the DEFLATE stream; rare in permessage-deflate.
            return None;
        }
        match header >> 1 {
            0 => {
                bits.align();
                if bits.exhausted() {
                    // The sync flush's empty stored block, whose LEN/NLEN were stripped.
                    return Some(());
                }
                let len = bits.take_bytes(2)?;
                let nlen = bits.take_bytes(2)?;
                if len != !nlen & 0xffff {
                    return None;
                }
                let data = bits.raw(len as usize)?;
                if out.len() - start + data.len() > max_out {
                    return None;
                }
                out.extend_from_slice(data);
            }
            1 => fixed_block(&mut bits, out, start, max_out)?,
            _ => return None,
        }
    }
}

fn fixed_block(bits: &mut Bits<'_>, out: &mut Vec<u8>, start: usize, max_out: usize) -> Option<()> {
    loop {
        // A symbol needs at most 9 + 5 + 5 + 13 = 32 bits.
        if bits.n < 32 {
            bits.refill();
        }
        let (sym, len) = LITLEN[(bits.buf & 511) as usize];
        bits.consume(u32::from(len))?;
        if sym < 256 {
            if out.len() - start >= max_out {
                return None;
            }
            out.push(sym as u8);
            continue;
        }
        if sym == 256 {
            return Some(());
        }
        let idx = usize::from(sym - 257);
        let (&base, &extra) = (LEN_BASE.get(idx)?, LEN_EXTRA.get(idx)?);
        let length = usize::from(base) + bits.take(u32::from(extra))? as usize;
        let dsym = usize::from(DIST_SYM[(bits.buf & 31) as usize]);
        bits.consume(5)?;
        let (&dbase, &dextra) = (DIST_BASE.get(dsym)?, DIST_EXTRA.get(dsym)?);
        let dist = dbase as usize + bits.take(u32::from(dextra))? as usize;
        let have = out.len() - start;
        if dist > have || have + length > max_out {
            return None;
        }
        let from = out.len() - dist;
        if dist >= length {
            out.extend_from_within(from..from + length);
        } else {
            // Overlapping copy (a run): byte by byte, each reading what was just written.
            for k in 0..length {
                let b = out[from + k];
                out.push(b);
            }
        }
    }
}

/// LSB-first bit reader over a byte slice.
struct Bits<'a> {
    data: &'a [u8],
    pos: usize,
    buf: u64,
    n: u32,
}

impl Bits<'_> {
    fn refill(&mut self) {
        while self.n <= 56 {
            let Some(&b) = self.data.get(self.pos) else {
                return;
            };
            self.buf |= u64::from(b) << self.n;
            self.n += 8;
            self.pos += 1;
        }
    }

    /// Drops `k` bits that were peeked; `None` if fewer are left (truncated input).
    fn consume(&mut self, k: u32) -> Option<()> {
        if k > self.n {
            return None;
        }
        self.buf >>= k;
        self.n -= k;
        Some(())
    }

    /// The next `k` (<= 32) bits.
    fn take(&mut self, k: u32) -> Option<u32> {
        if k > self.n {
            self.refill();
        }
        let v = (self.buf & ((1u64 << k) - 1)) as u32;
        self.consume(k)?;
        Some(v)
    }

    fn align(&mut self) {
        let k = self.n % 8;
        self.buf >>= k;
        self.n -= k;
    }

    /// No bits buffered and no input left.
    fn exhausted(&self) -> bool {
        self.n == 0 && self.pos == self.data.len()
    }

    /// The next `k` whole bytes as a little-endian number (after [`Bits::align`]).
    fn take_bytes(&mut self, k: u32) -> Option<u32> {
        self.take(8 * k)
    }

    /// The next `len` bytes, raw (after [`Bits::align`]): buffered bytes are given
    /// back to the input first.
    fn raw(&mut self, len: usize) -> Option<&[u8]> {
        let buffered = (self.n / 8) as usize;
        self.pos -= buffered;
        self.buf = 0;
        self.n = 0;
        let data = self.data.get(self.pos..self.pos.checked_add(len)?)?;
        self.pos += len;
        Some(data)
    }
}

const LEN_BASE: [u16; 29] = [
    3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131,
    163, 195, 227, 258,
];
const LEN_EXTRA: [u8; 29] = [
    0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0,
];
const DIST_BASE: [u16; 30] = [
    1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537,
    2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577,
];
const DIST_EXTRA: [u8; 30] = [
    0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13,
    13,
];

const fn reverse(code: u16, len: u8) -> u16 {
    code.reverse_bits() >> (16 - len as u32)
}

/// The fixed literal/length code (RFC 1951 §3.2.6) decoded from the next 9 input bits:
/// (symbol, code length).
const LITLEN: [(u16, u8); 512] = {
    let mut t = [(0u16, 0u8); 512];
    let mut s = 0;
    while s < 288 {
        let (code, len) = match s {
            0..=143 => (0x30 + s as u16, 8u8),
            144..=255 => (0x190 + (s as u16 - 144), 9),
            256..=279 => (s as u16 - 256, 7),
            _ => (0xC0 + (s as u16 - 280), 8),
        };
        let rev = reverse(code, len) as usize;
        let mut fill = 0;
        while fill < (1 << (9 - len)) {
            t[rev | (fill << len)] = (s as u16, len);
            fill += 1;
        }
        s += 1;
    }
    t
};

/// The fixed distance code decoded from the next 5 input bits (30 and 31 are invalid
/// and fail the lookup of their base).
const DIST_SYM: [u8; 32] = {
    let mut t = [0u8; 32];
    let mut s = 0;
    while s < 32 {
        t[reverse(s as u16, 5) as usize] = s as u8;
        s += 1;
    }
    t
};

#[cfg(test)]
mod tests {
    use super::super::Deflater;
    use super::*;
    use proptest::prelude::*;

    fn zlib_inflate(data: &[u8]) -> Vec<u8> {
        let mut i = super::super::Inflater::new(15, true);
        let mut out = Vec::new();
        i.decompress(data, &mut out, 1 << 24)
            .expect("zlib inflates");
        i.finish(&mut out, 1 << 24).expect("zlib finishes");
        out
    }

    fn compress(text: &[u8], zlib: bool) -> Vec<u8> {
        let mut d = Deflater::new(1, 15, true);
        let mut out = Vec::new();
        if zlib {
            d.compress_with_zlib(text, &mut out).expect("compresses");
        } else {
            d.compress(text, &mut out).expect("compresses");
        }
        out
    }

    #[test]
    fn decodes_what_both_compressors_produce() {
        let text = br#"{"action":"rtm/subscription/data","body":{"messages":[{"t":1,"pad":"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaabcabcabcabc"}]}}"#;
        for zlib in [false, true] {
            let data = compress(text, zlib);
            let mut out = vec![7u8];
            assert!(inflate(&data, &mut out, 1 << 20), "zlib: {zlib}");
            assert_eq!(&out[1..], text);
        }
        let mut out = Vec::new();
        assert!(inflate(&compress(b"", false), &mut out, 10));
        assert!(out.is_empty());
    }

    #[test]
    fn gives_up_without_touching_the_output() {
        let text: Vec<u8> = (0..5000u32).map(|i| (i * i % 7) as u8 + b'a').collect();
        let data = compress(&text, true);
        let mut out = b"keep".to_vec();
        // Over the bound.
        assert!(!inflate(&data, &mut out, 100));
        assert_eq!(out, b"keep");
        // Truncated.
        assert!(!inflate(&data[..data.len() / 2], &mut out, 1 << 20));
        assert_eq!(out, b"keep");
        // Garbage, and a final block.
        assert!(!inflate(&[0xff; 40], &mut out, 1 << 20));
        assert!(!inflate(&[0x03, 0x00], &mut out, 1 << 20));
        assert_eq!(out, b"keep");
    }

    #[test]
    fn dynamic_blocks_are_left_to_zlib() {
        // Random text over two letters: a dynamic-Huffman block (1-2 bits a letter)
        // beats the fixed codes (8 bits) by far, so zlib picks it.
        let mut x = 0x9E37_79B9u32;
        let text: String = (0..4000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                if x & 1 == 0 { 'a' } else { 'b' }
            })
            .collect();
        let mut d = Deflater::new(9, 15, false);
        let mut data = Vec::new();
        d.compress(text.as_bytes(), &mut data).expect("compresses");
        let mut out = Vec::new();
        assert!(!inflate(&data, &mut out, 1 << 20));
        assert!(out.is_empty());
        assert_eq!(zlib_inflate(&data), text.as_bytes());
    }

    proptest! {
        #[test]
        fn agrees_with_zlib(
            text in proptest::collection::vec(prop_oneof![Just(b'a'), Just(b'b'), any::<u8>()], 0..3000),
            zlib in any::<bool>(),
        ) {
            let data = compress(&text, zlib);
            let mut out = Vec::new();
            if inflate(&data, &mut out, 1 << 20) {
                prop_assert_eq!(&out, &text);
            }
            prop_assert_eq!(zlib_inflate(&data), text);
        }

        #[test]
        fn random_input_never_panics(data in proptest::collection::vec(any::<u8>(), 0..200)) {
            let mut out = Vec::new();
            let _ = inflate(&data, &mut out, 1000);
            prop_assert!(out.len() <= 1000);
        }
    }
}
