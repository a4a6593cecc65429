//! The RTM PDUs: `{"action": ..., "id": ..., "body": {...}}`.
//!
//! Incoming PDUs are parsed in two steps: [`Pdu::parse`] reads the envelope
//! (borrowing from the text, `id` and `body` kept as raw JSON), then
//! [`Pdu::body_as`] reads a typed body. Message payloads stay
//! [`RawValue`]s so the server forwards them without re-serialising.
//! Outgoing PDUs are written straight into a `String`.

use std::borrow::Cow;
use std::fmt::Write as _;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::value::RawValue;

/// Action names.
pub mod action {
    /// `auth/handshake`
    pub const AUTH_HANDSHAKE: &str = "auth/handshake";
    /// `auth/authenticate`
    pub const AUTH_AUTHENTICATE: &str = "auth/authenticate";
    /// `rtm/publish`
    pub const PUBLISH: &str = "rtm/publish";
    /// `rtm/subscribe`
    pub const SUBSCRIBE: &str = "rtm/subscribe";
    /// `rtm/unsubscribe`
    pub const UNSUBSCRIBE: &str = "rtm/unsubscribe";
    /// `rtm/read`
    pub const READ: &str = "rtm/read";
    /// `rtm/write`
    pub const WRITE: &str = "rtm/write";
    /// `rtm/delete`
    pub const DELETE: &str = "rtm/delete";
    /// `admin/get_connections`
    pub const GET_CONNECTIONS: &str = "admin/get_connections";
    /// `admin/close_connection`
    pub const CLOSE_CONNECTION: &str = "admin/close_connection";
    /// `rtm/subscription/data` (server to client)
    pub const SUBSCRIPTION_DATA: &str = "rtm/subscription/data";
    /// `rtm/subscription/info` (server to client)
    pub const SUBSCRIPTION_INFO: &str = "rtm/subscription/info";
    /// `rtm/subscription/error` (server to client)
    pub const SUBSCRIPTION_ERROR: &str = "rtm/subscription/error";
    /// `auth/handshake/ok`
    pub const AUTH_HANDSHAKE_OK: &str = "auth/handshake/ok";
    /// `auth/handshake/error`
    pub const AUTH_HANDSHAKE_ERROR: &str = "auth/handshake/error";
    /// `auth/authenticate/ok`
    pub const AUTH_AUTHENTICATE_OK: &str = "auth/authenticate/ok";
    /// `auth/authenticate/error`
    pub const AUTH_AUTHENTICATE_ERROR: &str = "auth/authenticate/error";
    /// `rtm/publish/ok`
    pub const PUBLISH_OK: &str = "rtm/publish/ok";
    /// `rtm/publish/error`
    pub const PUBLISH_ERROR: &str = "rtm/publish/error";
    /// `rtm/subscribe/ok`
    pub const SUBSCRIBE_OK: &str = "rtm/subscribe/ok";
    /// `rtm/subscribe/error`
    pub const SUBSCRIBE_ERROR: &str = "rtm/subscribe/error";
    /// Suffix of a success response.
    pub const OK_SUFFIX: &str = "/ok";
    /// Suffix of an error response.
    pub const ERROR_SUFFIX: &str = "/error";

    /// Every request a server serves (what it answers any other action with an error).
    pub const REQUESTS: [&str; 10] = [
        AUTH_HANDSHAKE,
        AUTH_AUTHENTICATE,
        PUBLISH,
        SUBSCRIBE,
        UNSUBSCRIBE,
        READ,
        WRITE,
        DELETE,
        GET_CONNECTIONS,
        CLOSE_CONNECTION,
    ];
}

/// The only authentication method (`body.method` of `auth/handshake` and `auth/authenticate`).
pub const ROLE_SECRET: &str = "role_secret";

/// Error codes the server puts in `body.error` (of `<action>/error` and
/// `rtm/subscription/error`): the full list, stable.
pub mod error_code {
    /// Not JSON, no action, an unknown action, or an id that is not a scalar (the connection
    /// is then closed).
    pub const BAD_SCHEMA: &str = "bad_schema";
    /// The body does not have the request's shape (a field missing or of the wrong type).
    pub const INVALID_BODY: &str = "invalid_body";
    /// The request needs an authenticated connection.
    pub const NOT_AUTHENTICATED: &str = "not_authenticated";
    /// The role lacks the permission for the action.
    pub const PERMISSION_DENIED: &str = "permission_denied";
    /// An authentication method other than [`super::ROLE_SECRET`].
    pub const UNSUPPORTED_METHOD: &str = "unsupported_method";
    /// `auth/authenticate` without a pending `auth/handshake`.
    pub const HANDSHAKE_REQUIRED: &str = "handshake_required";
    /// Unknown role or wrong role_secret hash.
    pub const AUTHENTICATION_FAILED: &str = "authentication_failed";
    /// No channel named, or an empty name.
    pub const MISSING_CHANNEL: &str = "missing_channel";
    /// A channel name over the length limit.
    pub const INVALID_CHANNEL: &str = "invalid_channel";
    /// A publish or write without `body.message`.
    pub const MISSING_MESSAGE: &str = "missing_message";
    /// A message no standard JSON parser would read back (nested too deep).
    pub const INVALID_MESSAGE: &str = "invalid_message";
    /// A publish naming more channels than allowed.
    pub const TOO_MANY_CHANNELS: &str = "too_many_channels";
    /// The connection is over its publish rate limit.
    pub const RATE_LIMITED: &str = "rate_limited";
    /// A StreamSQL filter that does not parse or is over a limit.
    pub const INVALID_FILTER: &str = "invalid_filter";
    /// A subscription id over the length limit.
    pub const INVALID_SUBSCRIPTION_ID: &str = "invalid_subscription_id";
    /// The subscription id is taken on this connection.
    pub const ALREADY_SUBSCRIBED: &str = "already_subscribed";
    /// The connection holds the maximum number of subscriptions.
    pub const TOO_MANY_SUBSCRIPTIONS: &str = "too_many_subscriptions";
    /// A position that is not `<ms>-<seq>` (or one the backend does not have).
    pub const INVALID_POSITION: &str = "invalid_position";
    /// A `batch_size` over the maximum.
    pub const INVALID_BATCH_SIZE: &str = "invalid_batch_size";
    /// The subscribe position is older than the history kept (without `fast_forward`).
    pub const EXPIRED_POSITION: &str = "expired_position";
    /// `rtm/unsubscribe` of a subscription the connection does not have.
    pub const UNKNOWN_SUBSCRIPTION: &str = "unknown_subscription";
    /// `admin/close_connection` of a connection not on this node.
    pub const UNKNOWN_CONNECTION: &str = "unknown_connection";
    /// A subscription lost messages and was removed (resubscribe from the last position).
    pub const OUT_OF_SYNC: &str = "out_of_sync";
    /// The storage backend cannot be reached.
    pub const BACKEND_UNAVAILABLE: &str = "backend_unavailable";
    /// The storage backend refused the request for lack of capacity.
    pub const BACKEND_OVERLOADED: &str = "backend_overloaded";
    /// Not sent by cobra's server (which says [`INVALID_BODY`]); kept for clients that match on it.
    pub const INVALID_ARGUMENT: &str = "invalid_argument";
    /// Not sent by cobra's server (which says [`NOT_AUTHENTICATED`] or [`PERMISSION_DENIED`]);
    /// kept for clients that match on it.
    pub const AUTHORIZATION_DENIED: &str = "authorization_denied";
}

/// Info codes the server puts in `body.info` of `rtm/subscription/info`.
pub mod info_code {
    /// Messages were skipped (`missed_message_count` says how many); the subscription goes on.
    pub const FAST_FORWARD: &str = "fast_forward";
    /// The backend is unreachable: delivery pauses.
    pub const BACKEND_UNAVAILABLE: &str = "backend_unavailable";
    /// The backend is reachable again: delivery resumed after the last message delivered.
    pub const BACKEND_RESUMED: &str = "backend_resumed";
}

/// Why a PDU could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PduError {
    /// Not a JSON object with a string `action`.
    #[error("bad PDU: {0}")]
    BadEnvelope(String),
    /// The body is missing.
    #[error("{action}: missing body")]
    MissingBody {
        /// The PDU's action.
        action: String,
    },
    /// A body field is missing or has the wrong type; the message names it.
    #[error("{action}: bad body: {message}")]
    BadBody {
        /// The PDU's action.
        action: String,
        /// serde's description (names the missing field, or the expected type
        /// and where in the body the bad value is).
        message: String,
    },
}

/// The envelope of any PDU, borrowing from the received text.
#[derive(Debug, Deserialize)]
pub struct Pdu<'a> {
    /// `service/operation[/outcome]`.
    #[serde(borrow)]
    pub action: Cow<'a, str>,
    /// The request id as raw JSON (number or string), echoed in the response.
    #[serde(borrow, default)]
    pub id: Option<&'a RawValue>,
    /// The body as raw JSON.
    #[serde(borrow, default)]
    pub body: Option<&'a RawValue>,
}

impl<'a> Pdu<'a> {
    /// Reads the envelope. Unknown fields are ignored.
    pub fn parse(text: &'a str) -> Result<Self, PduError> {
        serde_json::from_str(text).map_err(|e| PduError::BadEnvelope(e.to_string()))
    }

    /// Reads the body as `T`. A wrong type or a missing field is a
    /// [`PduError::BadBody`] naming it.
    pub fn body_as<T: DeserializeOwned>(&self) -> Result<T, PduError> {
        let body = self.object_body()?;
        serde_json::from_str(body).map_err(|_| self.body_error::<T>(body))
    }

    /// Reads the body as `T`, borrowing strings and raw values from the text.
    pub fn body_borrowed<T: Deserialize<'a>>(&self) -> Result<T, PduError> {
        let body = self.object_body()?;
        serde_json::from_str(body).map_err(|_| self.body_error::<T>(body))
    }

    /// The body's text, which must be a JSON object (serde would otherwise
    /// accept an array for a struct, positionally).
    fn object_body(&self) -> Result<&'a str, PduError> {
        let body = self.body.ok_or_else(|| PduError::MissingBody {
            action: self.action.to_string(),
        })?;
        let text = body.get().trim_start();
        if text.starts_with('{') {
            Ok(text)
        } else {
            Err(PduError::BadBody {
                action: self.action.to_string(),
                message: "body is not a JSON object".to_owned(),
            })
        }
    }

    /// Parses again, tracking the path, to name the bad field (only on the
    /// error path, so successful parses pay nothing for it).
    fn body_error<'b, T: Deserialize<'b>>(&self, body: &'b str) -> PduError {
        let de = &mut serde_json::Deserializer::from_str(body);
        let message = match serde_path_to_error::deserialize::<_, T>(de) {
            Err(e) if e.path().to_string() != "." => format!("{}: {}", e.path(), e.inner()),
            Err(e) => e.inner().to_string(),
            Ok(_) => "invalid body".to_owned(),
        };
        PduError::BadBody {
            action: self.action.to_string(),
            message,
        }
    }

    /// The id as an integer, if it is one.
    pub fn id_u64(&self) -> Option<u64> {
        self.id.and_then(|id| id.get().parse().ok())
    }

    /// `ok` for `<x>/ok`, `error` for `<x>/error`, `None` for a request or data PDU.
    pub fn outcome(&self) -> Option<&str> {
        if self.action.ends_with(action::OK_SUFFIX) {
            Some("ok")
        } else if self.action.ends_with(action::ERROR_SUFFIX) {
            Some("error")
        } else {
            None
        }
    }
}

fn string_or_number<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum SN {
        S(String),
        N(serde_json::Number),
    }
    Ok(match SN::deserialize(d)? {
        SN::S(s) => s,
        SN::N(n) => n.to_string(),
    })
}

fn opt_string_or_number<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    #[derive(Deserialize)]
    struct W(#[serde(deserialize_with = "string_or_number")] String);
    Ok(Option::<W>::deserialize(d)?.map(|w| w.0))
}

fn any_as_string<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let v = serde_json::Value::deserialize(d)?;
    Ok(match v {
        serde_json::Value::String(s) => s,
        other => other.to_string(),
    })
}

fn opt_any_as_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let v = Option::<serde_json::Value>::deserialize(d)?;
    Ok(v.map(|v| match v {
        serde_json::Value::String(s) => s,
        other => other.to_string(),
    }))
}

// ----- request bodies -----

/// `rtm/publish`
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PublishBody {
    /// Target channel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    /// Several target channels (replaces or adds to `channel`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channels: Option<Vec<String>>,
    /// The message, kept as raw JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<Box<RawValue>>,
}

/// `rtm/subscribe`
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SubscribeBody {
    /// The channel (optional with a filter, whose FROM names it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    /// Defaults to the channel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscription_id: Option<String>,
    /// StreamSQL filter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<String>,
    /// Resume point (exclusive), `0-0` for the oldest kept, `$` for new only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<String>,
    /// Messages per data PDU (`u64` as the server reads it: one type on both sides).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch_size: Option<u64>,
    /// Skip ahead when falling behind.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fast_forward: Option<bool>,
}

/// `rtm/unsubscribe`
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct UnsubscribeBody {
    /// The subscription to end.
    pub subscription_id: String,
}

/// `rtm/read`
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ReadBody {
    /// The channel to read.
    pub channel: String,
    /// Optional position to read at.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<String>,
}

/// `rtm/write`
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct WriteBody {
    /// The channel to write.
    pub channel: String,
    /// The value, kept as raw JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<Box<RawValue>>,
}

/// `rtm/delete`
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct DeleteBody {
    /// The channel to clear.
    pub channel: String,
}

/// `auth/handshake`
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct HandshakeBody {
    /// Must be `role_secret`.
    pub method: String,
    /// The role.
    pub data: HandshakeData,
}

/// `auth/handshake` data.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct HandshakeData {
    /// Role name.
    pub role: String,
}

/// `auth/authenticate`
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct AuthenticateBody {
    /// Must be `role_secret`.
    pub method: String,
    /// The hash.
    pub credentials: Credentials,
}

/// `auth/authenticate` credentials.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Credentials {
    /// [`crate::auth::role_secret_hash`] of the nonce.
    pub hash: String,
}

/// `admin/close_connection`
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct CloseConnectionBody {
    /// The connection to close (a string; a number is accepted too).
    #[serde(deserialize_with = "string_or_number")]
    pub connection_id: String,
}

/// Request PDUs as a server reads them: borrowed from the received text where it allows, and
/// lenient (every field optional, unknown fields ignored, as the Python server does), so the
/// server answers a missing or mistyped field with its own error naming it instead of failing the
/// parse. The SDK writes the strict bodies above; both sides and the hostile-input tests share
/// these shapes and the [`action`] names.
pub mod lenient {
    use std::borrow::Cow;

    use serde::Deserialize;
    use serde_json::value::RawValue;

    /// Any PDU's envelope. `action` may be absent (answered with an error, not a parse failure).
    #[derive(Debug, Deserialize)]
    pub struct Envelope<'a> {
        /// `service/operation`.
        #[serde(borrow, default)]
        pub action: Option<Cow<'a, str>>,
        /// The request id as raw JSON, echoed in the answer.
        #[serde(borrow, default)]
        pub id: Option<&'a RawValue>,
        /// The body as raw JSON.
        #[serde(borrow, default)]
        pub body: Option<&'a RawValue>,
    }

    /// `auth/handshake`.
    #[derive(Debug, Deserialize)]
    pub struct HandshakeBody {
        /// Must be `role_secret`.
        pub method: Option<String>,
        /// The role.
        pub data: Option<HandshakeData>,
    }

    /// `auth/handshake` data.
    #[derive(Debug, Deserialize)]
    pub struct HandshakeData {
        /// The role's name.
        pub role: Option<String>,
    }

    /// `auth/authenticate`.
    #[derive(Debug, Deserialize)]
    pub struct AuthenticateBody {
        /// Must be `role_secret`.
        pub method: Option<String>,
        /// The proof.
        pub credentials: Option<Credentials>,
    }

    /// `auth/authenticate` credentials.
    #[derive(Debug, Deserialize)]
    pub struct Credentials {
        /// [`crate::auth::role_secret_hash`] of the nonce.
        pub hash: Option<String>,
    }

    /// `rtm/publish`.
    #[derive(Debug, Deserialize)]
    pub struct PublishBody<'a> {
        /// The target channel.
        #[serde(borrow)]
        pub channel: Option<Cow<'a, str>>,
        /// Several target channels.
        pub channels: Option<Vec<String>>,
        /// The message, raw.
        #[serde(borrow)]
        pub message: Option<&'a RawValue>,
    }

    /// `rtm/subscribe`: the SDK's body, whose fields are all optional already (`batch_size`: any
    /// non-negative integer is read, the server bounds it).
    pub use super::SubscribeBody;

    /// `rtm/unsubscribe`.
    #[derive(Debug, Deserialize)]
    pub struct UnsubscribeBody {
        /// The subscription to end.
        pub subscription_id: Option<String>,
    }

    /// `rtm/read`.
    #[derive(Debug, Deserialize)]
    pub struct ReadBody {
        /// The key.
        pub channel: Option<String>,
        /// Optional position.
        pub position: Option<String>,
    }

    /// `rtm/write`.
    #[derive(Debug, Deserialize)]
    pub struct WriteBody<'a> {
        /// The key.
        pub channel: Option<String>,
        /// The value, raw.
        #[serde(borrow)]
        pub message: Option<&'a RawValue>,
    }

    /// `rtm/delete` and every body that only names a channel.
    #[derive(Debug, Deserialize)]
    pub struct ChannelBody {
        /// The key.
        pub channel: Option<String>,
    }

    /// `admin/close_connection`.
    #[derive(Debug, Deserialize)]
    pub struct CloseConnectionBody {
        /// The connection to close.
        pub connection_id: Option<String>,
    }
}

// ----- response bodies (SDK side) -----

/// Declares a response body (deriving what every body derives) in which a field marked
/// `#[text]` is an `Option<String>` read from any JSON value or null (the reference server is
/// loose about these types) and left out when `None`: one place for that field's serde attributes.
macro_rules! response_body {
    ($(#[$meta:meta])* pub struct $name:ident { $($fields:tt)* }) => {
        response_body!(@fields [$(#[$meta])*] $name [] $($fields)*);
    };
    (@fields $meta:tt $name:ident [$($done:tt)*]
        $(#[doc = $doc:literal])* #[text] pub $field:ident, $($rest:tt)*) => {
        response_body!(@fields $meta $name [$($done)*
            $(#[doc = $doc])*
            #[serde(
                default,
                deserialize_with = "opt_any_as_string",
                skip_serializing_if = "Option::is_none"
            )]
            pub $field: Option<String>,
        ] $($rest)*);
    };
    (@fields $meta:tt $name:ident [$($done:tt)*]
        $(#[$fmeta:meta])* pub $field:ident: $ty:ty, $($rest:tt)*) => {
        response_body!(@fields $meta $name [$($done)* $(#[$fmeta])* pub $field: $ty,] $($rest)*);
    };
    (@fields [$($meta:tt)*] $name:ident [$($done:tt)*]) => {
        $($meta)*
        #[derive(Debug, Clone, Default, Serialize, Deserialize)]
        pub struct $name { $($done)* }
    };
}

response_body! {
    /// `<action>/error` body.
    pub struct ErrorBody {
        /// Machine-readable code (the reference sends a sentence; any JSON is
        /// accepted and turned into text).
        #[serde(default, deserialize_with = "any_as_string")]
        pub error: String,
        /// Human text.
        #[text]
        pub reason,
    }
}

/// `auth/handshake/ok` body.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct HandshakeOkBody {
    /// The challenge.
    pub data: HandshakeOkData,
}

response_body! {
    /// `auth/handshake/ok` data.
    pub struct HandshakeOkData {
        /// The nonce to hash.
        pub nonce: String,
        /// Server version.
        #[text]
        pub version,
        /// This connection's id.
        #[serde(
            default,
            deserialize_with = "opt_string_or_number",
            skip_serializing_if = "Option::is_none"
        )]
        pub connection_id: Option<String>,
        /// Server node name.
        #[text]
        pub node,
    }
}

response_body! {
    /// `rtm/subscribe/ok` body.
    pub struct SubscribeOkBody {
        /// Current position.
        #[text]
        pub position,
        /// The subscription id.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub subscription_id: Option<String>,
    }
}

response_body! {
    /// `rtm/publish/ok` body (reference: `channels`; RTM spec: `position`).
    pub struct PublishOkBody {
        /// Position of the message.
        #[text]
        pub position,
        /// Channels published to.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub channels: Option<Vec<String>>,
    }
}

response_body! {
    /// `rtm/read/ok` body.
    pub struct ReadOkBody {
        /// The stored value; `None` when nothing is stored (JSON null).
        #[serde(default)]
        pub message: Option<Box<RawValue>>,
        /// Its position, if the server says.
        #[text]
        pub position,
    }
}

/// `rtm/subscription/data` body, borrowing the messages from the text.
#[derive(Debug, Deserialize)]
pub struct SubscriptionData<'a> {
    /// Which subscription.
    pub subscription_id: String,
    /// Position of the last message.
    #[serde(default, deserialize_with = "opt_any_as_string")]
    pub position: Option<String>,
    /// The messages, raw.
    #[serde(borrow)]
    pub messages: Vec<&'a RawValue>,
}

response_body! {
    /// `rtm/subscription/info` and `rtm/subscription/error` body.
    pub struct SubscriptionInfo {
        /// Which subscription.
        #[serde(default)]
        pub subscription_id: String,
        /// `fast_forward`, ... (info).
        #[text]
        pub info,
        /// `out_of_sync`, `expired_position` (error).
        #[text]
        pub error,
        /// Human text.
        #[text]
        pub reason,
        /// Position.
        #[text]
        pub position,
    }
}

/// `admin/get_connections/ok` body.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ConnectionsBody {
    /// Connection ids.
    pub connections: Vec<String>,
}

// ----- writers -----

/// Appends `s` as a JSON string literal, escaped exactly as `serde_json` does (the short forms
/// of `\b` and `\f` included).
pub fn push_json_str(out: &mut String, s: &str) {
    out.push('"');
    let mut start = 0;
    for (i, b) in s.bytes().enumerate() {
        let esc: &str = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0x08 => "\\b",
            0x0c => "\\f",
            0..=0x1f => "",
            _ => continue,
        };
        out.push_str(&s[start..i]);
        if esc.is_empty() {
            let _ = write!(out, "\\u{b:04x}");
        } else {
            out.push_str(esc);
        }
        start = i + 1;
    }
    out.push_str(&s[start..]);
    out.push('"');
}

/// Writes the id; the reference answers `1` when the request had none, and
/// every server PDU must carry an id.
fn push_id(out: &mut String, id: Option<&RawValue>) {
    out.push_str(id.map_or("1", RawValue::get));
}

fn push_head(out: &mut String, action: &str, suffix: &str, id: Option<&RawValue>) {
    out.push_str("{\"action\":");
    let mut a = String::with_capacity(action.len() + suffix.len());
    a.push_str(action);
    a.push_str(suffix);
    push_json_str(out, &a);
    out.push_str(",\"id\":");
    push_id(out, id);
    out.push_str(",\"body\":");
}

/// Appends `{"action":"<action>/ok","id":<id>,"body":<body_json>}`; `body_json`
/// must be valid JSON (`{}` for an empty body).
pub fn write_ok(out: &mut String, action: &str, id: Option<&RawValue>, body_json: &str) {
    push_head(out, action, action::OK_SUFFIX, id);
    out.push_str(body_json);
    out.push('}');
}

/// `{"action":"<action>/ok","id":<id>,"body":<body>}` with `body` serialised by serde.
pub fn ok<B: Serialize + ?Sized>(action: &str, id: Option<&RawValue>, body: &B) -> String {
    // Our body types only hold strings, numbers and raw JSON: serialising cannot fail.
    let body = serde_json::to_string(body).unwrap_or_else(|_| "{}".to_owned());
    let mut out = String::with_capacity(48 + action.len() + body.len());
    write_ok(&mut out, action, id, &body);
    out
}

/// Appends `{"action":"<action>/error","id":<id>,"body":{"error":<code>,"reason":<reason>}}`.
pub fn write_error(
    out: &mut String,
    action: &str,
    id: Option<&RawValue>,
    code: &str,
    reason: &str,
) {
    push_head(out, action, action::ERROR_SUFFIX, id);
    out.push_str("{\"error\":");
    push_json_str(out, code);
    out.push_str(",\"reason\":");
    push_json_str(out, reason);
    out.push_str("}}");
}

/// `{"action":"<action>/error","id":<id>,"body":{"error":<code>,"reason":<reason>}}`.
pub fn error(action: &str, id: Option<&RawValue>, code: &str, reason: &str) -> String {
    let mut out = String::with_capacity(64 + action.len() + code.len() + reason.len());
    write_error(&mut out, action, id, code, reason);
    out
}

/// Appends an `rtm/subscription/data` PDU. Each message must be valid JSON
/// (a `RawValue`'s `get()`, or text the server already validated).
pub fn subscription_data<I>(
    out: &mut String,
    subscription_id: &str,
    pdu_id: u64,
    position: &str,
    messages: I,
) where
    I: IntoIterator,
    I::Item: AsRef<str>,
{
    out.push_str("{\"action\":\"rtm/subscription/data\",\"id\":");
    let _ = write!(out, "{pdu_id}");
    out.push_str(",\"body\":{\"subscription_id\":");
    push_json_str(out, subscription_id);
    out.push_str(",\"position\":");
    push_json_str(out, position);
    out.push_str(",\"messages\":[");
    for (i, m) in messages.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(m.as_ref());
    }
    out.push_str("]}}");
}

/// A request PDU with an integer id (SDK side).
pub fn request<B: Serialize + ?Sized>(action: &str, id: u64, body: &B) -> String {
    let body = serde_json::to_string(body).unwrap_or_else(|_| "{}".to_owned());
    let mut out = String::with_capacity(40 + action.len() + body.len());
    write_request(&mut out, action, id, &body);
    out
}

/// Appends a request PDU whose body is already JSON.
pub fn write_request(out: &mut String, action: &str, id: u64, body_json: &str) {
    out.push_str("{\"action\":");
    push_json_str(out, action);
    let _ = write!(out, ",\"id\":{id},\"body\":");
    out.push_str(body_json);
    out.push('}');
}

/// Appends an `rtm/publish` request for one channel with a raw JSON message,
/// without any intermediate allocation (the SDK's hot path).
pub fn write_publish(out: &mut String, id: u64, channel: &str, message_json: &str) {
    let _ = write!(
        out,
        "{{\"action\":\"rtm/publish\",\"id\":{id},\"body\":{{\"channel\":"
    );
    push_json_str(out, channel);
    out.push_str(",\"message\":");
    out.push_str(message_json);
    out.push_str("}}");
}
