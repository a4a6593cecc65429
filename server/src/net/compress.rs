//! permessage-deflate on the send side: one compressor per worker thread, and each published
//! message compressed once per thread however many subscribers it goes to.
//!
//! The server negotiates `server_no_context_takeover` on every connection
//! ([`super::http::pmd_config`]), so a compressed message depends on nothing but its own
//! bytes. Two consequences:
//!
//! - no connection needs a zlib compressor of its own (about 380 KB each): the thread's
//!   [`Deflater`], reset after each message, serves them all;
//! - a delivery `prefix + message + suffix` can reuse the message compressed once
//!   ([`SharedDeflate`]) with the per-subscriber prefix and suffix (ids, subscription id)
//!   stored around it, so fan-out to N subscribers costs one compression, not N.
//!
//! The compressed messages are kept in a per-thread cache (8 MiB at most) keyed by the
//! message's allocation (a `Weak` keeps the address from being reused while cached).

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};

use cobra_wire::pmd::{Deflater, SharedDeflate};
use cobra_wire::ws::{Codec, Splice};

use crate::broker::Message;

/// Compression level: telemetry is small and latency bound; level 1 (`deflate_quick`) is
/// the cheapest zlib mode.
pub const LEVEL: u32 = 1;
/// Window of the thread compressor. A shorter text fits any window the client asks for
/// (see [`SharedDeflate::fits_window`]); a connection that asked for less gets longer
/// messages compressed by its own codec (a compressor freed again when idle).
const WINDOW_BITS: u8 = 15;
/// Compressed bytes remembered per thread at most. A subscriber that lags may still have
/// a whole outbound queue (`BrokerLimits::outbound_queue_bytes`, 4 MiB of payload by
/// default) of messages to take while the fastest subscriber of its channel is at the
/// newest one: the cache must span that window, or every late delivery compresses its
/// message again, the server slows down, subscribers lag more, and fan-out ends up
/// costing one compression per delivery. Measured: with 1 MiB, 1 → 100 at max rate
/// recompressed 1.56M times for 15.8k messages once subscribers lagged ~1 s behind.
/// When over budget, the oldest entries go first (FIFO); the memory is only used while
/// messages flow.
const CACHE_BYTES: usize = 8 << 20;
/// Entries remembered per thread at most (bounds the index for small messages: 64k
/// entries of 128 bytes, the smallest message compressed, is 8 MiB).
const CACHE_ENTRIES: usize = 1 << 16;

/// Published messages compressed for sharing (cache misses), process-wide.
static SHARED_COMPRESSIONS: AtomicU64 = AtomicU64::new(0);
/// Deliveries sent as a shared compressed message plus stored prefix/suffix, process-wide.
static SPLICED_DELIVERIES: AtomicU64 = AtomicU64::new(0);
/// Deliveries on deflate connections sent uncompressed because deflate did not shrink
/// their message enough ([`SharedDeflate::pays_off`]), process-wide.
static INCOMPRESSIBLE_DELIVERIES: AtomicU64 = AtomicU64::new(0);

/// Process-wide counters of the shared compression.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counters {
    /// Messages compressed for sharing (cache misses).
    pub compressed: u64,
    /// Deliveries that reused one. `spliced / compressed` is the fan-out a compression
    /// was shared by.
    pub spliced: u64,
    /// Deliveries to deflate connections sent uncompressed: their message did not
    /// compress (see `cobra_wire::pmd::MIN_SAVING_DIVISOR`).
    pub incompressible: u64,
}

/// The process-wide counters, as `/metrics` shows them.
pub fn counters() -> Counters {
    Counters {
        compressed: SHARED_COMPRESSIONS.load(Ordering::Relaxed),
        spliced: SPLICED_DELIVERIES.load(Ordering::Relaxed),
        incompressible: INCOMPRESSIBLE_DELIVERIES.load(Ordering::Relaxed),
    }
}

/// Hashes the cache's keys (addresses) with one multiplication: std's SipHash showed
/// in the profiles of the per-delivery path, and addresses need no DoS resistance.
#[derive(Default)]
struct AddressHasher(u64);

impl Hasher for AddressHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }
    fn write_usize(&mut self, n: usize) {
        // Fibonacci hashing mixes every bit of the address into the high bits; folding
        // them down feeds the low bits too (hashbrown indexes with those, and aligned
        // addresses end in zeros).
        let x = (n as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        self.0 = x ^ (x >> 32);
    }
}

struct Entry {
    /// Keeps the message's allocation, so its address is not reused while cached.
    _keep_address: Weak<Message>,
    shared: Rc<SharedDeflate>,
}

struct ThreadCompressor {
    deflater: Deflater,
    /// Keyed by the message's address.
    cache: HashMap<usize, Entry, BuildHasherDefault<AddressHasher>>,
    /// Insertion order, for eviction.
    order: VecDeque<usize>,
    cached_bytes: usize,
}

impl ThreadCompressor {
    fn new() -> Self {
        ThreadCompressor {
            deflater: Deflater::new(LEVEL, WINDOW_BITS, true),
            cache: HashMap::default(),
            order: VecDeque::new(),
            cached_bytes: 0,
        }
    }

    /// The message compressed on its own, from the cache or compressed now.
    fn shared(&mut self, message: &Arc<Message>) -> Option<Rc<SharedDeflate>> {
        let key = Arc::as_ptr(message) as usize;
        if let Some(e) = self.cache.get(&key) {
            return Some(Rc::clone(&e.shared));
        }
        let shared =
            Rc::new(SharedDeflate::compress(&mut self.deflater, message.payload.as_bytes()).ok()?);
        SHARED_COMPRESSIONS.fetch_add(1, Ordering::Relaxed);
        let size = shared.as_bytes().len();
        if size <= CACHE_BYTES / 16 {
            while self.cached_bytes + size > CACHE_BYTES || self.order.len() >= CACHE_ENTRIES {
                let Some(old) = self.order.pop_front() else {
                    break;
                };
                if let Some(e) = self.cache.remove(&old) {
                    self.cached_bytes -= e.shared.as_bytes().len();
                }
            }
            self.cache.insert(
                key,
                Entry {
                    _keep_address: Arc::downgrade(message),
                    shared: Rc::clone(&shared),
                },
            );
            self.order.push_back(key);
            self.cached_bytes += size;
        }
        Some(shared)
    }
}

thread_local! {
    static LOCAL: RefCell<ThreadCompressor> = RefCell::new(ThreadCompressor::new());
}

/// Appends one text PDU, compressed (if at all) with the thread's compressor.
pub fn encode_text(codec: &mut Codec, text: &str, out: &mut Vec<u8>) {
    LOCAL.with_borrow_mut(|t| codec.encode_text_with(text, &mut t.deflater, out));
}

/// Appends the PDU `prefix + message.payload + suffix`, reusing the thread's compression
/// of the message when the connection allows it, uncompressed when the message does not
/// compress or the connection has no permessage-deflate.
pub fn encode_delivery(
    codec: &mut Codec,
    prefix: &str,
    message: &Arc<Message>,
    suffix: &str,
    out: &mut Vec<u8>,
) {
    if codec.deflate().is_none() {
        codec.encode_text_parts(&[prefix, &message.payload, suffix], out);
        return;
    }
    LOCAL.with_borrow_mut(|t| {
        if codec.can_splice(prefix.len() + message.payload.len() + suffix.len())
            && let Some(shared) = t.shared(message)
        {
            // Compressed once per thread: the compression, or the verdict that it does not pay,
            // serves every other subscriber of this message.
            match codec.encode_text_spliced(prefix, &message.payload, &shared, suffix, out) {
                Splice::Compressed => {
                    SPLICED_DELIVERIES.fetch_add(1, Ordering::Relaxed);
                    return;
                }
                Splice::Uncompressed => {
                    INCOMPRESSIBLE_DELIVERIES.fetch_add(1, Ordering::Relaxed);
                    return;
                }
                Splice::Refused => {}
            }
        }
        let mut text = String::with_capacity(prefix.len() + message.payload.len() + suffix.len());
        text.push_str(prefix);
        text.push_str(&message.payload);
        text.push_str(suffix);
        codec.encode_text_with(&text, &mut t.deflater, out);
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use cobra_wire::position::Position;

    fn message(i: u64) -> Arc<Message> {
        // ~300 bytes that compress poorly, like the load tool's events.
        let mut x = i.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        let pad: String = (0..280)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                char::from(b'a' + (x % 26) as u8)
            })
            .collect();
        Arc::new(Message {
            position: Position { ms: i, seq: 0 },
            payload: format!(r#"{{"s":{i},"pad":"{pad}"}}"#).into(),
        })
    }

    #[test]
    fn a_lagging_subscribers_window_stays_cached() {
        let mut t = ThreadCompressor::new();
        // 4 MiB of payload: a full default outbound queue behind the newest message.
        let messages: Vec<Arc<Message>> = (0..(4 << 20) / 300).map(message).collect();
        let first = t.shared(&messages[0]).expect("compresses");
        let mut compressed = first.as_bytes().len();
        for m in &messages[1..] {
            compressed += t.shared(m).expect("compresses").as_bytes().len();
        }
        assert!(
            compressed > 2 << 20,
            "the messages compress too well to test"
        );
        let again = t.shared(&messages[0]).expect("compresses");
        assert!(Rc::ptr_eq(&first, &again), "the oldest message was evicted");
        assert!(t.cached_bytes <= CACHE_BYTES && t.order.len() <= CACHE_ENTRIES);
    }
}
