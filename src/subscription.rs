//! What a subscription asks for.

/// What to subscribe to. Build with [`SubscribeOptions::new`] and the setters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscribeOptions {
    /// The channel (with a filter: the channel named in its FROM clause).
    pub channel: String,
    /// Subscription id; defaults to the channel. Unique per client.
    pub subscription_id: Option<String>,
    /// StreamSQL filter, e.g. ``select data.fps from `engine_fps_id` where data.fps < 30``.
    pub filter: Option<String>,
    /// Start after this position (`0-0` = oldest kept); `None` = only new messages.
    pub position: Option<String>,
    /// Messages per data PDU (server-side batching).
    pub batch_size: Option<u32>,
    /// Ask the server to skip ahead (with an info PDU) instead of failing when we fall behind.
    pub fast_forward: bool,
    /// Deliver [`Event::SubscriptionRawData`](crate::Event::SubscriptionRawData) (each message's
    /// JSON text, shared with the PDU's, not parsed) instead of `SubscriptionData`: for consumers
    /// that forward or pick a few fields, where building a tree per message is most of the cost.
    pub raw: bool,
}

impl SubscribeOptions {
    /// Subscribe to `channel` with defaults.
    pub fn new(channel: impl Into<String>) -> Self {
        Self {
            channel: channel.into(),
            subscription_id: None,
            filter: None,
            position: None,
            batch_size: None,
            fast_forward: false,
            raw: false,
        }
    }
    /// Set the subscription id.
    pub fn subscription_id(mut self, id: impl Into<String>) -> Self {
        self.subscription_id = Some(id.into());
        self
    }
    /// Set a StreamSQL filter.
    pub fn filter(mut self, sql: impl Into<String>) -> Self {
        self.filter = Some(sql.into());
        self
    }
    /// Start after `position`.
    pub fn position(mut self, position: impl Into<String>) -> Self {
        self.position = Some(position.into());
        self
    }
    /// Set the batch size.
    pub fn batch_size(mut self, n: u32) -> Self {
        self.batch_size = Some(n);
        self
    }
    /// Set fast_forward.
    pub fn fast_forward(mut self, on: bool) -> Self {
        self.fast_forward = on;
        self
    }
    /// Set raw delivery (see [`SubscribeOptions::raw`]).
    pub fn raw(mut self, on: bool) -> Self {
        self.raw = on;
        self
    }
    /// The effective subscription id (the channel when none was set).
    pub fn id(&self) -> &str {
        self.subscription_id.as_deref().unwrap_or(&self.channel)
    }
}
