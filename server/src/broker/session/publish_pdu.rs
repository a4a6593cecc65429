//! One-pass parse of the usual `rtm/publish` PDU (the hot path of the broker).
//!
//! The general path parses the envelope with the body as a raw value, then parses that body
//! again: the message, by far the largest part, is scanned twice. Here the body is taken apart
//! while the envelope is read, so the message is scanned once. Anything unusual (another
//! action, `body` before `action`, a duplicate key, a field of the wrong type, a body that is
//! not an object...) is not handled here at all: [`parse`] returns `None` and the caller takes
//! the general path, which gives the exact same answers as before, errors included.

use std::borrow::Cow;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::value::RawValue;

use cobra_wire::pdu::lenient::PublishBody;

/// A publish PDU taken apart: its `id` (raw) and its body's fields.
pub(super) struct FastPublish<'a> {
    /// The raw `id`, if any.
    pub id: Option<&'a RawValue>,
    /// The body, as the general path would have parsed it.
    pub body: PublishBody<'a>,
}

/// Parses `text` if it is a well-formed `rtm/publish` PDU the fast way can take; `None`
/// otherwise (the caller then takes the general path).
pub(super) fn parse(text: &str) -> Option<FastPublish<'_>> {
    serde_json::from_str(text).ok()
}

/// A key or string value, borrowed from the PDU unless it holds escapes.
#[derive(Deserialize)]
#[serde(transparent)]
struct Str<'a>(#[serde(borrow)] Cow<'a, str>);

/// Declines the fast path: the error text is never shown (the general path runs instead).
fn decline<E: de::Error>() -> E {
    E::custom("not a plain publish PDU")
}

impl<'de> Deserialize<'de> for FastPublish<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(EnvelopeVisitor)
    }
}

struct EnvelopeVisitor;

impl<'de> Visitor<'de> for EnvelopeVisitor {
    type Value = FastPublish<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an rtm/publish PDU")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut action_seen = false;
        let mut id: Option<Option<&'de RawValue>> = None;
        let mut body: Option<PublishBody<'de>> = None;
        while let Some(key) = map.next_key::<Str<'de>>()? {
            match &*key.0 {
                "action" => {
                    let action = map.next_value::<Option<Str<'de>>>()?;
                    if action_seen || action.is_none_or(|a| a.0 != "rtm/publish") {
                        return Err(decline());
                    }
                    action_seen = true;
                }
                "id" => {
                    if id.is_some() {
                        return Err(decline());
                    }
                    id = Some(map.next_value()?);
                }
                "body" => {
                    // Only once the action is known to be a publish.
                    if !action_seen || body.is_some() {
                        return Err(decline());
                    }
                    body = Some(map.next_value_seed(BodySeed)?);
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        if !action_seen {
            return Err(decline());
        }
        Ok(FastPublish {
            id: id.flatten(),
            body: body.unwrap_or(PublishBody {
                channel: None,
                channels: None,
                message: None,
            }),
        })
    }
}

struct BodySeed;

impl<'de> DeserializeSeed<'de> for BodySeed {
    type Value = PublishBody<'de>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(BodyVisitor)
    }
}

struct BodyVisitor;

impl<'de> Visitor<'de> for BodyVisitor {
    type Value = PublishBody<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an rtm/publish body")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        // Each field is first taken raw (which never fails on valid JSON), so that a field
        // of the wrong type declines rather than leaving the parser halfway.
        let mut channel: Option<Option<&'de RawValue>> = None;
        let mut channels: Option<Option<&'de RawValue>> = None;
        let mut message: Option<Option<&'de RawValue>> = None;
        while let Some(key) = map.next_key::<Str<'de>>()? {
            let slot = match &*key.0 {
                "channel" => &mut channel,
                "channels" => &mut channels,
                "message" => &mut message,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                    continue;
                }
            };
            if slot.is_some() {
                return Err(decline());
            }
            *slot = Some(map.next_value()?);
        }
        let channel = match channel.flatten() {
            None => None,
            Some(raw) => Some(string(raw.get()).ok_or_else(decline)?),
        };
        let channels = match channels.flatten() {
            None => None,
            Some(raw) => Some(serde_json::from_str(raw.get()).map_err(|_| decline())?),
        };
        Ok(PublishBody {
            channel,
            channels,
            message: message.flatten(),
        })
    }
}

/// The string a raw JSON value holds; `None` if it is not a string.
fn string(raw: &str) -> Option<Cow<'_, str>> {
    // The raw value was validated while it was read: a literal without a backslash is its own
    // text between the quotes.
    if let Some(inner) = raw.strip_prefix('"').and_then(|r| r.strip_suffix('"'))
        && !inner.contains('\\')
    {
        return Some(Cow::Borrowed(inner));
    }
    serde_json::from_str::<String>(raw).ok().map(Cow::Owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The general path, as `Session` runs it (its own envelope type).
    fn general(text: &str) -> Option<(Option<String>, PublishBody<'_>)> {
        let e: super::super::Envelope = serde_json::from_str(text).ok()?;
        if e.action.as_deref() != Some("rtm/publish") {
            return None;
        }
        let body = serde_json::from_str(e.body.map_or("{}", RawValue::get)).ok()?;
        Some((e.id.map(|i| i.get().to_owned()), body))
    }

    fn shape(b: &PublishBody<'_>) -> (Option<String>, Option<Vec<String>>, Option<String>) {
        (
            b.channel.as_deref().map(str::to_owned),
            b.channels.clone(),
            b.message.map(|m| m.get().to_owned()),
        )
    }

    #[test]
    fn takes_the_usual_publish_in_one_pass() {
        let text =
            r#"{"action":"rtm/publish","id":7,"body":{"channel":"c","message":{"a":[1,"}"]}}}"#;
        let fast = parse(text).unwrap();
        assert_eq!(fast.id.unwrap().get(), "7");
        assert!(matches!(fast.body.channel, Some(Cow::Borrowed("c"))));
        assert_eq!(fast.body.message.unwrap().get(), r#"{"a":[1,"}"]}"#);
    }

    /// Whatever the fast path takes, it reads exactly as the general path does; whatever it
    /// declines is left to the general path.
    #[test]
    fn agrees_with_the_general_path_or_declines() {
        let cases = [
            r#"{"action":"rtm/publish","id":1,"body":{"channel":"c","message":1}}"#,
            r#"{"id":"x","action":"rtm/publish","body":{"message":{},"channel":"c","extra":[1]}}"#,
            r#"{"action":"rtm/publish","body":{"channels":["a","b"],"channel":"c","message":null}}"#,
            r#"{"action":"rtm/publish","id":null,"body":{"channel":"c\"q\u00e9","message":"m"}}"#,
            r#"{"act\u0069on":"rtm\/publish","body":{"ch\u0061nnel":"c","message":2}}"#,
            r#"{"action":"rtm/publish","extra":{"x":1},"id":2}"#,
            r#"{"action":"rtm/publish","body":{"channel":null,"channels":null,"message":3}}"#,
            r#"  {"action":"rtm/publish","body":{"channel":"c","message":[]}}  "#,
            // Declined: each goes to the general path.
            r#"{"body":{"channel":"c","message":1},"action":"rtm/publish"}"#,
            r#"{"action":"rtm/publish","action":"rtm/publish","body":{}}"#,
            r#"{"action":"rtm/publish","id":1,"id":2,"body":{}}"#,
            r#"{"action":"rtm/publish","body":{"channel":"a","channel":"b","message":1}}"#,
            r#"{"action":"rtm/publish","body":{"channel":5,"message":1}}"#,
            r#"{"action":"rtm/publish","body":{"channels":"a","message":1}}"#,
            r#"{"action":"rtm/publish","body":{"channels":[null],"message":1}}"#,
            r#"{"action":"rtm/publish","body":["c",null,1]}"#,
            r#"{"action":"rtm/publish","body":null}"#,
            r#"{"action":"rtm/publish","body":"x"}"#,
            r#"["rtm/publish",1,{"channel":"c","message":1}]"#,
            r#"{"action":"rtm/subscribe","body":{"channel":"c"}}"#,
            r#"{"action":null,"body":{}}"#,
            r#"{"action":"rtm/publish","body":{"channel":"c","message":1}} x"#,
            r#"{"action":"rtm/publish","body":{"channel":"c","message":[1,}}"#,
            r#"{"id":1}"#,
            "",
        ];
        let mut taken = 0;
        for text in cases {
            match parse(text) {
                Some(fast) => {
                    taken += 1;
                    let (id, body) = general(text).unwrap_or_else(|| panic!("{text}"));
                    assert_eq!(fast.id.map(|i| i.get().to_owned()), id, "{text}");
                    assert_eq!(shape(&fast.body), shape(&body), "{text}");
                }
                None => {
                    // Declining is always safe; but a plain publish must not be declined.
                    assert!(
                        !text
                            .starts_with(r#"{"action":"rtm/publish","id":1,"body":{"channel":"c""#),
                        "{text}"
                    );
                }
            }
        }
        assert_eq!(taken, 8);
    }
}
