//! How a namespaced channel (`<appkey>::<channel>`) is laid out in Redis.
//!
//! Three names per channel, all on the channel's node (see [`super::shard`]), under a
//! namespace (`cobra` by default, see [`super::RedisLimits::namespace`]):
//!
//! | name | Redis type | holds |
//! |---|---|---|
//! | `<ns>:h:<appkey>::<channel>` | stream | the history, capped at `channel_max_length`; the entry id is the position |
//! | `<ns>:p:<appkey>::<channel>` | pub/sub channel | live messages as `<position> RS <raw JSON>` records joined by RS (`\x1e`), a publish batch in ~7 KB messages |
//! | `<ns>:kv:<appkey>::<channel>` | stream of length 1 | the `rtm/write` value (`rtm/delete` removes the key) |
//!
//! The namespace lets operators find (or flush) everything the broker owns, and lets separate
//! deployments share Redis nodes without seeing each other (pub/sub ignores database numbers,
//! so a namespace is the only way to keep their live traffic apart).

/// The names of one namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    history: String,
    live: String,
    value: String,
}

impl Layout {
    /// The layout of `namespace`.
    pub fn new(namespace: &str) -> Self {
        Layout {
            history: format!("{namespace}:h:"),
            live: format!("{namespace}:p:"),
            value: format!("{namespace}:kv:"),
        }
    }

    /// The history stream of `channel_key`.
    pub fn history(&self, channel_key: &str) -> String {
        [&self.history, channel_key].concat()
    }

    /// The pub/sub channel of `channel_key`.
    pub fn live(&self, channel_key: &str) -> String {
        [&self.live, channel_key].concat()
    }

    /// The key/value entry of `channel_key`.
    pub fn value(&self, channel_key: &str) -> String {
        [&self.value, channel_key].concat()
    }

    /// The channel key of a pub/sub channel name received from Redis, if it is one of ours.
    pub fn channel_of_live<'a>(&self, name: &'a [u8]) -> Option<&'a str> {
        std::str::from_utf8(name.strip_prefix(self.live.as_bytes())?).ok()
    }
}

impl Default for Layout {
    fn default() -> Self {
        Layout::new("cobra")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        let l = Layout::default();
        assert_eq!(l.history("a::b"), "cobra:h:a::b");
        assert_eq!(l.value("a::b"), "cobra:kv:a::b");
        assert_eq!(
            l.channel_of_live(l.live("a::b c").as_bytes()),
            Some("a::b c")
        );
        assert_eq!(l.channel_of_live(b"other:a::b"), None);
        assert_eq!(l.channel_of_live(b"cobra:p:\xff"), None);
        let staging = Layout::new("staging");
        assert_eq!(staging.live("a::b"), "staging:p:a::b");
        assert_eq!(staging.channel_of_live(l.live("a::b").as_bytes()), None);
    }
}
