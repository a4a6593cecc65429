//! How a namespaced channel (`<appkey>::<channel>`) is laid out in Redis.
//!
//! Three names per channel, all on the channel's node (see [`super::shard`]):
//!
//! | name | Redis type | holds |
//! |---|---|---|
//! | `cobra:h:<appkey>::<channel>` | stream | the history, capped near `channel_max_length`; the entry id is the position |
//! | `cobra:p:<appkey>::<channel>` | pub/sub channel | live messages as `<position> <raw JSON>` |
//! | `cobra:kv:<appkey>::<channel>` | stream of length 1 | the `rtm/write` value (`rtm/delete` removes the key) |
//!
//! The common `cobra:` prefix lets operators find (or flush) everything the broker owns.

/// Prefix of every history stream.
pub const HISTORY_PREFIX: &str = "cobra:h:";
/// Prefix of every pub/sub channel.
pub const LIVE_PREFIX: &str = "cobra:p:";
/// Prefix of every key/value entry.
pub const VALUE_PREFIX: &str = "cobra:kv:";

/// The history stream of `channel_key`.
pub fn history(channel_key: &str) -> String {
    [HISTORY_PREFIX, channel_key].concat()
}

/// The pub/sub channel of `channel_key`.
pub fn live(channel_key: &str) -> String {
    [LIVE_PREFIX, channel_key].concat()
}

/// The key/value entry of `channel_key`.
pub fn value(channel_key: &str) -> String {
    [VALUE_PREFIX, channel_key].concat()
}

/// The channel key of a pub/sub channel name received from Redis, if it is one of ours.
pub fn channel_of_live(name: &[u8]) -> Option<&str> {
    std::str::from_utf8(name.strip_prefix(LIVE_PREFIX.as_bytes())?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        assert_eq!(history("a::b"), "cobra:h:a::b");
        assert_eq!(value("a::b"), "cobra:kv:a::b");
        assert_eq!(channel_of_live(live("a::b c").as_bytes()), Some("a::b c"));
        assert_eq!(channel_of_live(b"other:a::b"), None);
        assert_eq!(channel_of_live(b"cobra:p:\xff"), None);
    }
}
