//! The event every load tool publishes (`cobra bench`, and `nats-bench` for NATS): one
//! definition, so that a comparison between brokers compares the same bytes. A constant
//! padding, say, would deflate to almost nothing on a broker that compresses a whole
//! stream (NATS does) and make its compressed figures those of another workload.
//!
//! An event is JSON: `t` (send time, ns), `p` (publisher), `s` (sequence), `k` (`s % 100`,
//! for filters with a known selectivity), realistic telemetry fields, and a padding to the
//! requested size cut from a pool of text at an offset that moves with `s`: pseudo-random
//! letters ([`Padding::Random`], the default: no event repeats another within deflate's
//! window, the hardest case for compression) or telemetry words ([`Padding::Words`]: device
//! models, OS names, URLs, status codes in varying order, which repeat from event to event as
//! a real stream's values do).

#![forbid(unsafe_code)]

use std::str::FromStr;

/// What the padding of the events is made of (see the crate's docs).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Padding {
    /// Pseudo-random letters and digits.
    #[default]
    Random,
    /// Telemetry words in pseudo-random order.
    Words,
}

impl FromStr for Padding {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "random" => Ok(Padding::Random),
            "words" => Ok(Padding::Words),
            other => Err(format!("padding: `random` or `words`, not `{other}`")),
        }
    }
}

/// The values [`Padding::Words`] strings together: what telemetry events carry.
const WORDS: &[&str] = &[
    "android",
    "ios",
    "windows",
    "macos",
    "Pixel 7",
    "Galaxy S23",
    "iPhone15,3",
    "iPad13,1",
    "SM-A536B",
    "Redmi Note 12",
    "wifi",
    "4g",
    "5g",
    "ethernet",
    "en_US",
    "fr_FR",
    "ja_JP",
    "pt_BR",
    "1.2.3",
    "1.2.4",
    "2.0.0-rc1",
    "GET",
    "POST",
    "/api/v1/login",
    "/api/v1/shop",
    "/api/v2/match",
    "/cdn/assets/level3.bundle",
    "200",
    "204",
    "304",
    "404",
    "500",
    "503",
    "timeout",
    "dns",
    "tls",
    "engine_fps_id",
    "engine_memory_id",
    "engine_net_request_id",
    "level_loaded",
    "match_started",
    "purchase",
    "session_start",
    "wiso",
    "shooter",
    "arena",
    "lobby",
    "Vulkan",
    "Metal",
    "DirectX12",
    "OpenGL ES 3.2",
    "Adreno 740",
    "Mali-G710",
    "Apple A16",
    "low",
    "medium",
    "high",
    "ultra",
    "portrait",
    "landscape",
    "true",
    "false",
];

/// Bytes of text the paddings are cut from: far beyond deflate's 32 KiB window, so that with
/// [`Padding::Random`] no message repeats one a compressor still remembers.
const POOL_SPAN: usize = 1 << 20;

/// Makes events of one size.
#[derive(Debug, Clone)]
pub struct Events {
    pool: String,
    pad_len: usize,
    message_bytes: usize,
}

impl Events {
    /// Events of about `size` bytes (at least the fixed fields, ~100 bytes), padded with
    /// [`Padding::Random`].
    pub fn new(size: usize) -> Self {
        Events::with_padding(size, Padding::Random)
    }

    /// Events of about `size` bytes padded with `padding`.
    pub fn with_padding(size: usize, padding: Padding) -> Self {
        let mut probe = String::new();
        write(&mut probe, 0, 0, 0, "");
        // `t` grows by a couple of digits over a run.
        let overhead = probe.len() + 2;
        let pad_len = size.saturating_sub(overhead);
        Events {
            pool: match padding {
                Padding::Random => pool(pad_len + POOL_SPAN),
                Padding::Words => words(pad_len + POOL_SPAN),
            },
            pad_len,
            message_bytes: overhead - 2 + pad_len,
        }
    }

    /// The size of an event (with a one-digit `t`: a real one is a few bytes longer).
    pub fn message_bytes(&self) -> usize {
        self.message_bytes
    }

    /// Appends event `s` of publisher `p`, sent at `t_ns`, to `out`.
    pub fn write(&self, out: &mut String, t_ns: u64, p: u32, s: u64) {
        // A different slice of the pool for each message (4099: prime, so offsets spread).
        let span = self.pool.len() - self.pad_len;
        let at = (s.wrapping_mul(4099) % (span as u64 + 1)) as usize;
        write(out, t_ns, p, s, &self.pool[at..at + self.pad_len]);
    }
}

/// The send time an event carries (`t`), read without parsing the JSON: its first field.
pub fn send_time(event: &[u8]) -> Option<u64> {
    let rest = event.strip_prefix(b"{\"t\":")?;
    let end = rest.iter().position(|b| !b.is_ascii_digit())?;
    std::str::from_utf8(&rest[..end]).ok()?.parse().ok()
}

fn write(out: &mut String, t_ns: u64, p: u32, s: u64, pad: &str) {
    // By hand rather than `write!`: formatting was a tenth of the tool's time, and the tool
    // shares a core with the server in the Redis scenarios.
    let mut num = itoa::Buffer::new();
    out.push_str(r#"{"t":"#);
    out.push_str(num.format(t_ns));
    out.push_str(r#","p":"#);
    out.push_str(num.format(p));
    out.push_str(r#","s":"#);
    out.push_str(num.format(s));
    out.push_str(r#","k":"#);
    out.push_str(num.format(s % 100));
    out.push_str(r#","id":"engine_fps_id","data":{"fps":"#);
    out.push_str(num.format(20 + s % 40));
    out.push_str(r#"},"pad":""#);
    out.push_str(pad);
    out.push_str(r#""}"#);
}

/// xorshift32: deterministic, so every run sends the same bytes.
fn next(x: &mut u32) -> u32 {
    *x ^= *x << 13;
    *x ^= *x >> 17;
    *x ^= *x << 5;
    *x
}

/// `len` bytes of pseudo-random letters and digits, the same every run.
fn pool(len: usize) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let mut x: u32 = 0x9e37_79b9;
    (0..len)
        .map(|_| ALPHABET[(next(&mut x) % ALPHABET.len() as u32) as usize] as char)
        .collect()
}

/// `len` bytes of [`WORDS`] in pseudo-random order, separated by spaces, the same every run
/// (ASCII: any slice of it is valid UTF-8 and needs no JSON escape).
fn words(len: usize) -> String {
    let mut x: u32 = 0x9e37_79b9;
    let mut out = String::with_capacity(len + 32);
    while out.len() < len {
        out.push_str(WORDS[(next(&mut x) % WORDS.len() as u32) as usize]);
        out.push(' ');
    }
    out.truncate(len);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_have_the_size_asked_the_fields_and_differing_paddings() {
        let events = Events::new(300);
        let (mut a, mut b) = (String::new(), String::new());
        events.write(&mut a, 1, 2, 3);
        events.write(&mut b, 1, 2, 4);
        assert_eq!(a.len(), events.message_bytes());
        assert!((290..=310).contains(&a.len()), "{}", a.len());
        let v: &str = &a;
        assert!(v.starts_with(
            r#"{"t":1,"p":2,"s":3,"k":3,"id":"engine_fps_id","data":{"fps":23},"pad":""#
        ));
        let pad = |e: &str| e.rsplit_once(r#""pad":""#).map(|(_, p)| p.to_owned());
        assert_ne!(pad(&a), pad(&b), "the padding moves with the sequence");
        assert_eq!(send_time(a.as_bytes()), Some(1));
        assert_eq!(send_time(b"{\"x\":1}"), None);
        // Deterministic: the same event every run.
        let mut again = String::new();
        Events::new(300).write(&mut again, 1, 2, 3);
        assert_eq!(again, a);
    }

    #[test]
    fn word_padding_is_sized_ascii_and_parses() {
        let events = Events::with_padding(300, "words".parse().expect("a padding"));
        let mut e = String::new();
        events.write(&mut e, 5, 0, 7);
        assert_eq!(e.len(), events.message_bytes());
        assert!(e.is_ascii() && !e.contains('\\'), "{e}");
        assert!(WORDS.iter().any(|w| e.contains(w)), "{e}");
        assert!("other".parse::<Padding>().is_err());
    }

    #[test]
    fn a_size_below_the_fields_gives_no_padding() {
        let events = Events::new(10);
        let mut e = String::new();
        events.write(&mut e, 0, 0, 0);
        assert!(e.ends_with(r#""pad":""}"#), "{e}");
    }
}
