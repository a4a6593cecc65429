//! The Lua scripts the backend runs on each node, and the decoding of Redis replies.
//!
//! Scripts are sent once per node (`SCRIPT LOAD`) and then called by SHA1 with `EVALSHA`.
//!
//! Redis 7 interns every string that enters Lua and hashes each of its bytes doing so: that
//! was 40 % of a node's CPU under publish load, so the publish script makes as few strings as
//! it can (see [`PUBLISH_BATCH`]).

use std::fmt;

use redis::Value;

/// Publish a batch: for each message, append it to its channel's history stream, then per
/// stream cap it (one `XTRIM MAXLEN` once the batch is in) and notify live subscribers. One
/// atomic step, so pub/sub order is stream order and a subscriber that read a stream up to id
/// X knows every later message of that channel comes through pub/sub with an id greater than X.
///
/// The messages of one stream in the batch go out as `PUBLISH`es of their records
/// `<id> RS <raw>` joined by RS (`\x1e`, see [`split_live`]), about 7 KB each, in stream order,
/// and only when the channel has a subscriber (`PUBSUB NUMSUB`): building that string is most
/// of the script's cost, as Redis 7 hashes every byte of every string made in Lua. RS cannot
/// occur in JSON text (a control character, not whitespace, escaped inside strings) and every
/// message was parsed as JSON by the server that published it, so records need no length.
///
/// Arguments are laid out so that Lua makes as few strings as possible: each stream is named
/// once, however many messages of the batch it takes, and messages come grouped by stream.
/// `KEYS[j]` the history stream `j` (of `k`); `ARGV[1]` the cap (`channel_max_length + 1`: the
/// extra, oldest entry is the trim marker, see [`HistoryPage::marker`]), `ARGV[2]` trim operator
/// (`=` exact, `~` approximate), `ARGV[3]` length of the history prefix (`<ns>:h:`), `ARGV[4]`
/// the pub/sub prefix (`<ns>:p:`), `ARGV[4 + j]` how many messages stream `j` takes, then the
/// raw messages, those of stream 1 first. Returns `{ids, errors}`: `ids` the ids (positions)
/// in message order joined by spaces, one string (one reply element instead of one per
/// message); a message whose `XADD` failed (a key of another type squatting the name) has `!`
/// in its place, and `errors` lists `index, error text` for each (1-based), without failing
/// the others of the batch (an error element would make the client fail the whole reply).
pub const PUBLISH_BATCH: &str = r"
local cap, op, hlen, lprefix = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4]
local nkeys = #KEYS
local ids, errors, n = {}, {}, 0
local last = 4 + nkeys -- the last message argument handled
for j = 1, nkeys do
  local key = KEYS[j]
  local first = last + 1
  last = last + tonumber(ARGV[4 + j])
  local base = n - first + 1 -- ids[base + i] is the id of argument i
  for i = first, last do
    n = n + 1
    local id = redis.pcall('XADD', key, '*', 'm', ARGV[i])
    if type(id) == 'table' then
      ids[n] = '!'
      errors[#errors + 1] = n
      errors[#errors + 1] = tostring(id.err)
    else
      ids[n] = id
    end
  end
  -- Trimmed once per stream per batch (nobody sees the batch half done).
  redis.pcall('XTRIM', key, 'MAXLEN', op, cap)
  local channel = lprefix .. string.sub(key, hlen + 1)
  if redis.call('PUBSUB', 'NUMSUB', channel)[2] > 0 then
    -- Pieces joined by table.concat, in chunks that fit its buffer (8 KiB): past it, the
    -- buffer makes, and hashes, intermediate strings; `id .. ' ' .. msg` would make one per
    -- message.
    local parts, k, size = {}, 0, 0
    for i = first, last do
      local id = ids[base + i]
      if id ~= '!' then
        parts[k + 1], parts[k + 2] = id, ARGV[i]
        k = k + 2
        size = size + #ARGV[i] + 24
        if size >= 7000 then
          redis.call('PUBLISH', channel, table.concat(parts, '\30', 1, k))
          k, size = 0, 0
        end
      end
    end
    if k > 0 then
      redis.call('PUBLISH', channel, table.concat(parts, '\30', 1, k))
    end
  end
end
return {table.concat(ids, ' '), errors}
";

/// History read with the stream's state, atomically: what a subscription needs to start.
///
/// `KEYS[1]` history stream, `ARGV[1]` XRANGE start (`-` or `(<id>`), `ARGV[2]` max entries.
/// Returns `{last_generated_id, first_id, entries_added, length, entries}` (`first_id` is the
/// oldest entry kept, `0-0` when none); `{'0-0','0-0',0,0,{}}` when the stream does not exist.
/// Whether the oldest entry is the trim marker is decided by the caller (see
/// [`HistoryPage::marker`]).
pub const HISTORY: &str = r"
if redis.call('EXISTS', KEYS[1]) == 0 then return {'0-0', '0-0', 0, 0, {}} end
local info = redis.call('XINFO', 'STREAM', KEYS[1])
local last, first, added, len = '0-0', '0-0', 0, 0
for i = 1, #info, 2 do
  local k = info[i]
  if k == 'last-generated-id' then last = info[i + 1]
  elseif k == 'first-entry' then
    local e = info[i + 1]
    if type(e) == 'table' and e[1] then first = e[1] end
  elseif k == 'entries-added' then added = info[i + 1]
  elseif k == 'length' then len = info[i + 1] end
end
local entries = {}
if tonumber(ARGV[2]) > 0 then
  entries = redis.call('XRANGE', KEYS[1], ARGV[1], '+', 'COUNT', ARGV[2])
end
return {last, first, added, len, entries}
";

/// A Redis reply that does not have the shape the backend expects (a bug, or not a Redis we
/// support: the backend needs Redis ≥ 7.0 for `XINFO STREAM`'s `entries-added`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unexpected Redis reply: {0}")]
pub struct ReplyError(pub String);

/// A stream id `<ms>-<seq>` as two numbers.
pub type RawId = (u64, u64);

/// Parses a stream id.
pub fn parse_id(bytes: &[u8]) -> Option<RawId> {
    // One pass, no UTF-8 check: two of these per message published and delivered.
    fn number(digits: &[u8]) -> Option<u64> {
        if digits.is_empty() {
            return None;
        }
        digits.iter().try_fold(0u64, |n, &b| {
            let d = b.wrapping_sub(b'0');
            (d < 10).then_some(())?;
            n.checked_mul(10)?.checked_add(u64::from(d))
        })
    }
    let dash = memchr::memchr(b'-', bytes)?;
    Some((number(&bytes[..dash])?, number(&bytes[dash + 1..])?))
}

/// The bytes of a string-like reply.
pub fn bytes(v: &Value) -> Option<&[u8]> {
    match v {
        Value::BulkString(b) => Some(b),
        Value::SimpleString(s) => Some(s.as_bytes()),
        Value::VerbatimString { text, .. } => Some(text.as_bytes()),
        _ => None,
    }
}

/// An id reply.
pub fn id(v: &Value) -> Result<RawId, ReplyError> {
    bytes(v)
        .and_then(parse_id)
        .ok_or_else(|| ReplyError(format!("expected a stream id, got {v:?}")))
}

fn int(v: &Value) -> Result<u64, ReplyError> {
    match v {
        Value::Int(i) if *i >= 0 => Ok(*i as u64),
        other => bytes(other)
            .and_then(|b| std::str::from_utf8(b).ok()?.parse().ok())
            .ok_or_else(|| ReplyError(format!("expected a count, got {other:?}"))),
    }
}

/// One history or key/value entry: its id and its payload (the `m` or `v` field).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The stream id.
    pub id: RawId,
    /// The stored text.
    pub payload: String,
}

/// Decodes an `XRANGE`/`XREVRANGE` reply: `[[id, [field, value, ...]], ...]`.
pub fn entries(v: Value) -> Result<Vec<Entry>, ReplyError> {
    let items = match v {
        Value::Array(items) | Value::Set(items) => items,
        Value::Nil => return Ok(Vec::new()),
        other => return Err(ReplyError(format!("expected an entry list, got {other:?}"))),
    };
    items.into_iter().map(entry).collect()
}

/// `v` as an array of exactly `len` items; `what` and `items` name them in the errors.
fn array_of(v: Value, len: usize, what: &str, items: &str) -> Result<Vec<Value>, ReplyError> {
    let Value::Array(array) = v else {
        return Err(ReplyError(format!("expected {what}, got {v:?}")));
    };
    if array.len() != len {
        return Err(ReplyError(format!(
            "expected {items}, got {} items",
            array.len()
        )));
    }
    Ok(array)
}

fn entry(v: Value) -> Result<Entry, ReplyError> {
    let mut pair = array_of(v, 2, "an entry", "[id, fields]")?;
    let fields = pair.pop().unwrap_or_default();
    let id = id(&pair[0])?;
    // Fields come as a flat array (RESP2, and Lua tables) or as a map (RESP3); we store one field.
    let value = match fields {
        Value::Array(mut flat) if flat.len() >= 2 => flat.swap_remove(1),
        Value::Map(mut map) if !map.is_empty() => map.swap_remove(0).1,
        other => {
            return Err(ReplyError(format!(
                "entry {}-{} has no field: {other:?}",
                id.0, id.1
            )));
        }
    };
    let payload = match value {
        Value::BulkString(b) => {
            String::from_utf8(b).map_err(|_| ReplyError("entry is not UTF-8".into()))?
        }
        Value::SimpleString(s) => s,
        other => {
            return Err(ReplyError(format!(
                "entry value is not a string: {other:?}"
            )));
        }
    };
    Ok(Entry { id, payload })
}

/// What [`HISTORY`] returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryPage {
    /// The stream's last id (`0-0` when it never existed).
    pub last: RawId,
    /// The oldest entry kept (`0-0` when none).
    pub first: RawId,
    /// Entries ever added.
    pub added: u64,
    /// Entries now kept.
    pub length: u64,
    /// The entries read.
    pub entries: Vec<Entry>,
}

impl HistoryPage {
    /// The trim marker: the oldest entry kept once the stream holds more than `max_length`
    /// entries or anything was ever trimmed. Streams are capped at `max_length + 1` (see
    /// [`super::batch`]) so that the newest entry cut from the history proper is still there:
    /// it is not delivered, but its id tells exactly whether a resume position missed anything
    /// (a position before the marker did). Redis keeps no record of what `XTRIM` removed.
    pub fn marker(&self, max_length: usize) -> Option<RawId> {
        let trimmed = self.added > self.length || self.length > max_length as u64;
        (trimmed && self.length > 0).then_some(self.first)
    }
}

/// Decodes the reply of [`HISTORY`].
pub fn history_page(v: Value) -> Result<HistoryPage, ReplyError> {
    let mut parts = array_of(v, 5, "the history reply", "5 history parts")?;
    let entries = entries(parts.pop().unwrap_or_default())?;
    Ok(HistoryPage {
        last: id(&parts[0])?,
        first: id(&parts[1])?,
        added: int(&parts[2])?,
        length: int(&parts[3])?,
        entries,
    })
}

/// Splits a live pub/sub payload as published by [`PUBLISH_BATCH`]: `<id> RS <raw>` records
/// joined by RS (`\x1e`). `None` when malformed.
pub fn split_live(payload: &[u8]) -> Option<Vec<(RawId, &str)>> {
    let mut out = Vec::new();
    let mut parts = split_on(payload, RECORD_SEPARATOR);
    while let Some(id) = parts.next() {
        let id = parse_id(id)?;
        out.push((id, std::str::from_utf8(parts.next()?).ok()?));
    }
    Some(out)
}

/// The runs of `bytes` between `sep` bytes (one, empty, for no bytes). With `memchr`: a
/// byte-at-a-time split was 4 % of the server's CPU under a publish → delivery load.
fn split_on(bytes: &[u8], sep: u8) -> impl Iterator<Item = &[u8]> {
    let mut start = 0;
    memchr::memchr_iter(sep, bytes)
        .chain([bytes.len()])
        .map(move |end| {
            let part = &bytes[start..end];
            start = end + 1;
            part
        })
}

/// Between the id and the message of a live record, and between records: ASCII RS, which JSON
/// text cannot contain (RFC 8259: control characters are escaped inside strings and are not
/// whitespace outside them).
const RECORD_SEPARATOR: u8 = 0x1e;

/// Decodes the reply of [`PUBLISH_BATCH`] for `n` messages: each message's id, or the error
/// Redis gave its `XADD`.
pub fn published_ids(v: Value, n: usize) -> Result<Vec<Result<RawId, String>>, ReplyError> {
    let bad = |v: &dyn fmt::Debug| {
        ReplyError(format!(
            "expected {n} ids from the publish script, got {v:?}"
        ))
    };
    let Value::Array(parts) = v else {
        return Err(bad(&v));
    };
    let [ids, errors] = parts.as_slice() else {
        return Err(bad(&parts));
    };
    let (Some(joined), Value::Array(errors)) = (bytes(ids), errors) else {
        return Err(bad(&parts));
    };
    let mut out = Vec::with_capacity(n);
    for id in split_on(joined, b' ') {
        out.push(match id {
            b"!" => Err("XADD failed".to_owned()),
            id => Ok(parse_id(id).ok_or_else(|| bad(&parts))?),
        });
    }
    if out.len() != n {
        return Err(bad(&parts));
    }
    for pair in errors.chunks(2) {
        let [Value::Int(i), text] = pair else {
            return Err(bad(&parts));
        };
        let slot = usize::try_from(*i)
            .ok()
            .and_then(|i| out.get_mut(i.checked_sub(1)?))
            .ok_or_else(|| bad(&parts))?;
        *slot = Err(bytes(text)
            .map(|t| String::from_utf8_lossy(t).into_owned())
            .unwrap_or_else(|| format!("{text:?}")));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        assert_eq!(parse_id(b"1-2"), Some((1, 2)));
        assert_eq!(parse_id(b"18446744073709551615-0"), Some((u64::MAX, 0)));
        for bad in [
            &b"1"[..],
            b"-1",
            b"1-",
            b"+1-2",
            b"a-b",
            b"1-2-3",
            b"18446744073709551616-0",
        ] {
            assert_eq!(parse_id(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn live_records() {
        assert_eq!(
            split_live(b"5-1\x1e{\"a\": 1}"),
            Some(vec![((5, 1), "{\"a\": 1}")])
        );
        assert_eq!(
            split_live(b"5-1\x1e1\x1e5-2\x1e [\n] "),
            Some(vec![((5, 1), "1"), ((5, 2), " [\n] ")])
        );
        assert_eq!(
            split_live("5-1\x1e\"é\"".as_bytes()),
            Some(vec![((5, 1), "\"é\"")])
        );
        for bad in [
            &b""[..],
            b"5-1",
            b"x\x1e{}",
            b"5-1\x1e{}\x1e",
            b"5-1\x1e{}\x1e6-1",
            b"5-1 {}",
            b"5-1\x1e\xff",
        ] {
            assert_eq!(split_live(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn published_ids_in_message_order_with_errors_in_place() {
        let reply = |ids: &str, errors: Vec<Value>| {
            Value::Array(vec![
                Value::BulkString(ids.as_bytes().to_vec()),
                Value::Array(errors),
            ])
        };
        assert_eq!(
            published_ids(reply("1-0 1-1", vec![]), 2).unwrap(),
            vec![Ok((1, 0)), Ok((1, 1))]
        );
        let wrongtype = Value::BulkString(b"WRONGTYPE Operation against a key".to_vec());
        assert_eq!(
            published_ids(reply("1-0 ! 2-0", vec![Value::Int(2), wrongtype]), 3).unwrap(),
            vec![
                Ok((1, 0)),
                Err("WRONGTYPE Operation against a key".into()),
                Ok((2, 0))
            ]
        );
        for (bad, n) in [
            (reply("1-0 1-1", vec![]), 3),
            (reply("1-0", vec![]), 0),
            (reply("1-0 x", vec![]), 2),
            (reply("1-0", vec![Value::Int(2), Value::Nil]), 1),
            (reply("1-0", vec![Value::Int(0), Value::Nil]), 1),
            (reply("1-0", vec![Value::Int(1)]), 1),
            (Value::Array(vec![Value::Int(1)]), 1),
            (Value::Nil, 1),
        ] {
            assert!(published_ids(bad.clone(), n).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_marker_is_the_oldest_entry_once_anything_was_cut() {
        let page = |added, length| HistoryPage {
            last: (9, 0),
            first: (3, 0),
            added,
            length,
            entries: Vec::new(),
        };
        assert_eq!(page(5, 5).marker(5), None, "nothing cut, within the cap");
        assert_eq!(page(6, 6).marker(5), Some((3, 0)), "one over the cap");
        assert_eq!(page(20, 6).marker(5), Some((3, 0)), "trimmed");
        assert_eq!(
            page(20, 15).marker(100),
            Some((3, 0)),
            "trimmed under an old, lower cap"
        );
        assert_eq!(page(0, 0).marker(0), None, "no stream");
    }

    #[test]
    fn entry_shapes() {
        let bs = |s: &str| Value::BulkString(s.as_bytes().to_vec());
        let flat = Value::Array(vec![Value::Array(vec![
            bs("1-1"),
            Value::Array(vec![bs("m"), bs("{}")]),
        ])]);
        assert_eq!(
            entries(flat).unwrap(),
            vec![Entry {
                id: (1, 1),
                payload: "{}".into()
            }]
        );
        let map = Value::Array(vec![Value::Array(vec![
            bs("2-0"),
            Value::Map(vec![(bs("v"), bs("3"))]),
        ])]);
        assert_eq!(entries(map).unwrap()[0].payload, "3");
        assert!(entries(Value::Int(3)).is_err());
        assert!(
            entries(Value::Array(vec![Value::Array(vec![
                bs("1-1"),
                Value::Array(vec![])
            ])]))
            .is_err()
        );
        assert!(
            entries(Value::Array(vec![Value::Array(vec![
                bs("zz"),
                Value::Array(vec![bs("m"), bs("1")])
            ])]))
            .is_err()
        );
    }
}
