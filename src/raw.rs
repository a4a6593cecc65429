//! Messages kept as the JSON text the server sent (see [`SubscribeOptions::raw`]).
//!
//! [`SubscribeOptions::raw`]: crate::SubscribeOptions::raw

use std::ops::Range;
use std::sync::Arc;

use serde_json::Value;

/// One message of a subscription PDU, as JSON text. The messages of a PDU share one copy of its
/// text (an `Arc<str>` and a range each): no per-message allocation, no parse. The text is valid
/// JSON (the PDU parsed), exactly as the server wrote it (its whitespace and key order).
#[derive(Clone)]
pub struct RawMessage {
    text: Arc<str>,
    range: Range<usize>,
}

impl RawMessage {
    /// A message owning its own text. `None` if `json` is not a JSON value.
    pub fn new(json: &str) -> Option<Self> {
        serde_json::from_str::<&serde_json::value::RawValue>(json).ok()?;
        let text: Arc<str> = Arc::from(json.trim());
        let range = 0..text.len();
        Some(Self { text, range })
    }

    /// A message holding `value`'s JSON text.
    pub fn from_value(value: &Value) -> Self {
        let text: Arc<str> = Arc::from(value.to_string());
        let range = 0..text.len();
        Self { text, range }
    }

    /// `range` of a shared PDU text; the caller checked it is a JSON value on char boundaries.
    pub(crate) fn shared(text: Arc<str>, range: Range<usize>) -> Self {
        debug_assert!(text.get(range.clone()).is_some());
        Self { text, range }
    }

    /// The JSON text.
    pub fn json(&self) -> &str {
        // The range was checked against the text when the message was made.
        self.text.get(self.range.clone()).unwrap_or("null")
    }

    /// The message parsed into a tree (costs what the non-raw mode costs per message). Fails only
    /// for numbers a `Value` cannot hold (beyond the range of a double).
    pub fn value(&self) -> Result<Value, serde_json::Error> {
        serde_json::from_str(self.json())
    }
}

impl std::fmt::Debug for RawMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("RawMessage").field(&self.json()).finish()
    }
}

impl std::fmt::Display for RawMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.json())
    }
}

/// Equal when the texts are equal (not the parsed values: `{"a":1}` ≠ `{ "a": 1 }`).
impl PartialEq for RawMessage {
    fn eq(&self, other: &Self) -> bool {
        self.json() == other.json()
    }
}

impl Eq for RawMessage {}

/// The messages of a PDU sharing one copy of `text`. Each `&str` must be a slice of `text` (what
/// serde's borrowed `RawValue`s are); one that is not (never seen) gets its own copy.
pub(crate) fn share(text: &str, messages: &[&serde_json::value::RawValue]) -> Vec<RawMessage> {
    let shared: Arc<str> = Arc::from(text);
    let base = text.as_ptr() as usize;
    messages
        .iter()
        .map(|m| {
            let s = m.get();
            // Address arithmetic only (no pointer is made from it): where the slice sits in text.
            let start = (s.as_ptr() as usize).wrapping_sub(base);
            let range = start..start.wrapping_add(s.len());
            match shared.get(range.clone()) {
                Some(t) if t == s => RawMessage::shared(shared.clone(), range),
                _ => RawMessage::shared(Arc::from(s), 0..s.len()),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_share_the_pdu_text() {
        let text = r#"{"messages":[{"a":1}, "x\"y", 3]}"#;
        #[derive(serde::Deserialize)]
        struct B<'a> {
            #[serde(borrow)]
            messages: Vec<&'a serde_json::value::RawValue>,
        }
        let b: B<'_> = serde_json::from_str(text).unwrap();
        let raw = share(text, &b.messages);
        let texts: Vec<&str> = raw.iter().map(RawMessage::json).collect();
        assert_eq!(texts, [r#"{"a":1}"#, r#""x\"y""#, "3"]);
        assert!(Arc::ptr_eq(&raw[0].text, &raw[2].text));
        assert_eq!(raw[0].value().unwrap(), serde_json::json!({"a": 1}));
        assert_eq!(RawMessage::new(" [1] ").unwrap().json(), "[1]");
        assert!(RawMessage::new("{").is_none());
        // A slice from elsewhere is copied, not mis-ranged.
        let other: &serde_json::value::RawValue = serde_json::from_str("[2]").unwrap();
        assert_eq!(share(text, &[other])[0].json(), "[2]");
    }
}
