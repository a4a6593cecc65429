//! Hash slots: which of Redis Cluster's 16384 slots a key lives in, the key names that keep a
//! channel's keys in one slot, and the slot map read from `CLUSTER SLOTS`.

use redis::Value;

use super::super::scripts::{self, ReplyError};

/// Slots in a Redis Cluster.
pub const SLOTS: u16 = 16384;

/// The slot of `key` as Redis Cluster computes it: CRC16-XMODEM of the hash tag (the bytes
/// between the first `{` and the next `}`, when not empty) or of the whole key, mod 16384.
pub fn slot_of(key: &[u8]) -> u16 {
    crc16::State::<crc16::XMODEM>::calculate(hash_tag(key).unwrap_or(key)) % SLOTS
}

fn hash_tag(key: &[u8]) -> Option<&[u8]> {
    let open = memchr::memchr(b'{', key)?;
    let close = memchr::memchr(b'}', &key[open + 1..])?;
    let tag = &key[open + 1..open + 1 + close];
    (!tag.is_empty()).then_some(tag)
}

/// The name a channel key (`<appkey>::<channel>`) takes in a cluster: wrapped in a hash tag,
/// `{<appkey>::<channel>}`, so that its history stream, its shard channel and its key/value
/// entry (`<ns>:h:{…}`, `<ns>:p:{…}`, `<ns>:kv:{…}`) share one slot and one script can touch
/// them. A key that contains `}` (which would end the tag early) or starts with `}` (an empty
/// tag, which Redis ignores) is tagged with its 64-bit FNV-1a digest in hex instead: every
/// server computes the same name, and the name stays unique per channel key (the digest is
/// followed by the key itself, outside the tag).
pub fn tagged(channel_key: &str) -> String {
    if !channel_key.contains('}') && !channel_key.is_empty() {
        format!("{{{channel_key}}}")
    } else {
        let digest = super::super::shard::fnv1a64(channel_key.as_bytes());
        format!("{{{digest:016x}}}{channel_key}")
    }
}

/// One slot range and its primary, from `CLUSTER SLOTS`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotRange {
    /// First slot (inclusive).
    pub start: u16,
    /// Last slot (inclusive).
    pub end: u16,
    /// The primary's host as announced (empty: the host the question was sent to).
    pub host: String,
    /// The primary's port.
    pub port: u16,
}

/// Decodes a `CLUSTER SLOTS` reply: `[[start, end, [host, port, id, ...], replicas...], ...]`.
pub fn parse_cluster_slots(v: &Value) -> Result<Vec<SlotRange>, ReplyError> {
    let bad = |what: &str| ReplyError(format!("CLUSTER SLOTS: {what}: {v:?}"));
    let Value::Array(ranges) = v else {
        return Err(bad("not an array"));
    };
    let mut out = Vec::with_capacity(ranges.len());
    for range in ranges {
        let Value::Array(parts) = range else {
            return Err(bad("a range is not an array"));
        };
        let (Some(Value::Int(start)), Some(Value::Int(end)), Some(Value::Array(primary))) =
            (parts.first(), parts.get(1), parts.get(2))
        else {
            return Err(bad("a range lacks start, end or primary"));
        };
        let slot = |n: i64| u16::try_from(n).ok().filter(|s| *s < SLOTS);
        let (Some(start), Some(end)) = (slot(*start), slot(*end)) else {
            return Err(bad("slot out of range"));
        };
        let host = primary
            .first()
            .and_then(scripts::bytes)
            .map(|h| String::from_utf8_lossy(h).into_owned())
            .unwrap_or_default();
        let Some(Value::Int(port)) = primary.get(1) else {
            return Err(bad("a primary has no port"));
        };
        let Some(port) = u16::try_from(*port).ok().filter(|p| *p > 0) else {
            return Err(bad("port out of range"));
        };
        if start > end {
            return Err(bad("start after end"));
        }
        // `?` is what a node announces for a host it does not know: ask the one we asked.
        let host = if host == "?" { String::new() } else { host };
        out.push(SlotRange {
            start,
            end,
            host,
            port,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_match_redis() {
        // Values given by `CLUSTER KEYSLOT` on Redis 7.0.
        assert_eq!(slot_of(b"foo"), 12182);
        assert_eq!(slot_of(b"bar"), 5061);
        assert_eq!(slot_of(b"{user1000}.following"), slot_of(b"user1000"));
        assert_eq!(slot_of(b"{}foo"), slot_of(b"{}foo"));
        assert_ne!(
            slot_of(b"{}foo"),
            slot_of(b"foo"),
            "an empty tag hashes the whole key"
        );
        assert_eq!(slot_of(b"foo{}{bar}"), slot_of(b"foo{}{bar}"));
    }

    #[test]
    fn a_channels_keys_share_a_slot() {
        for key in ["app::chan", "a::}b", "}::x", "a::{b}", "a::{", ""] {
            let t = tagged(key);
            let names = [
                format!("cobra:h:{t}"),
                format!("cobra:p:{t}"),
                format!("cobra:kv:{t}"),
            ];
            let slots: Vec<u16> = names.iter().map(|n| slot_of(n.as_bytes())).collect();
            assert!(
                slots.iter().all(|s| *s == slots[0]),
                "{key}: {names:?} {slots:?}"
            );
        }
        assert_eq!(tagged("app::chan"), "{app::chan}");
        assert_ne!(tagged("a::}b"), tagged("a::}c"));
    }

    #[test]
    fn cluster_slots_replies() {
        let bs = |s: &str| Value::BulkString(s.as_bytes().to_vec());
        let reply = Value::Array(vec![Value::Array(vec![
            Value::Int(0),
            Value::Int(5460),
            Value::Array(vec![bs("127.0.0.1"), Value::Int(7000), bs("id1")]),
            Value::Array(vec![bs("127.0.0.1"), Value::Int(7003), bs("id4")]),
        ])]);
        assert_eq!(
            parse_cluster_slots(&reply).unwrap(),
            vec![SlotRange {
                start: 0,
                end: 5460,
                host: "127.0.0.1".into(),
                port: 7000
            }]
        );
        for bad in [
            Value::Nil,
            Value::Array(vec![Value::Int(1)]),
            Value::Array(vec![Value::Array(vec![
                Value::Int(0),
                Value::Int(20000),
                Value::Array(vec![bs("h"), Value::Int(1)]),
            ])]),
            Value::Array(vec![Value::Array(vec![
                Value::Int(0),
                Value::Int(1),
                Value::Array(vec![bs("h"), Value::Int(0)]),
            ])]),
        ] {
            assert!(parse_cluster_slots(&bad).is_err(), "{bad:?}");
        }
    }
}
