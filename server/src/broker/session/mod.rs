//! The RTM protocol of one connection, without I/O.
//!
//! The network layer feeds each received text message to [`Session::on_text`], calls
//! [`Session::pump`] whenever the connection's [`Mailbox`] wakes it (deliveries, losses, a close
//! request) or a batch deadline passes, and writes whatever the session handed to its
//! [`PduSink`]. Every PDU sent carries an `id`.
//!
//! Publishes can be pipelined: [`Session::on_text_pipelined`] starts a publish (checks, then
//! [`Backend::publish`] for each of its channels, which fixes the order it lands in) and hands
//! back a [`PendingPublish`] instead of waiting for the backend; the caller awaits those in
//! the order they were received and passes each answer to [`Session::publish_done`], so acks
//! go out in order. Any other PDU waits ([`Step::Wait`]) until no publish is in flight, so a
//! read after a publish sees it.
//!
//! This module holds the session and the dispatch of received PDUs; one file per
//! responsibility: `auth` (handshake, authenticate, permissions), `publish` (the publish
//! pipeline), `subscribe` (subscribe, unsubscribe), `delivery` (the mailbox pump, batches,
//! aggregate rows, loss reports), `read_write` (read, write, delete), `admin` (connections),
//! `json` (writing JSON by hand, checking ids and message depth) and `publish_pdu` (the
//! one-pass parse of the usual publish).

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use serde_json::value::RawValue;

use super::backend::{Backend, BackendError, ChannelKey, Message};
use super::mailbox::{Delivery, Mailbox};
use super::{Broker, CLOSE_NORMAL};

mod admin;
mod auth;
mod delivery;
mod json;
mod publish;
mod publish_pdu;
mod read_write;
mod subscribe;

use auth::Auth;
use json::{is_scalar_id, json_str};
use publish::PublishInput;
pub use publish::{PendingPublish, PublishAnswer};
use subscribe::Sub;

// The envelope and request bodies are cobra-wire's lenient, borrowed model, shared with the SDK
// and the tests.
use cobra_wire::pdu::lenient::Envelope;
use cobra_wire::pdu::{action, error_code};

/// Receives the PDUs a session sends (one JSON text per call).
pub trait PduSink {
    /// Queues one text PDU for sending.
    fn send(&mut self, pdu: &str);

    /// Queues the PDU `prefix + message.payload + suffix` (a subscription data PDU of one
    /// message, forwarded as published). Separate so that a sink can encode the message
    /// once for every subscriber; the default just concatenates.
    fn send_delivery(&mut self, prefix: &str, message: &Arc<Message>, suffix: &str) {
        let mut pdu = String::with_capacity(prefix.len() + message.payload.len() + suffix.len());
        pdu.push_str(prefix);
        pdu.push_str(&message.payload);
        pdu.push_str(suffix);
        self.send(&pdu);
    }
}

impl PduSink for Vec<String> {
    fn send(&mut self, pdu: &str) {
        self.push(pdu.to_owned());
    }
}

/// What the connection should do after a call into the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// Keep going.
    Continue,
    /// Send a close frame with this code and reason, then close.
    Close {
        /// The WebSocket close code.
        code: u16,
        /// A short reason.
        reason: &'static str,
    },
}

/// What [`Session::on_text_pipelined`] did with a PDU.
pub enum Step<'b> {
    /// Handled (its answer, if any, was sent); go on or close.
    Done(Flow),
    /// A publish was started: await it after every earlier one, then give its answer to
    /// [`Session::publish_done`].
    Publish(PendingPublish<'b>),
    /// Not a publish, and publishes are in flight: nothing was done. Offer the same text again
    /// once every earlier publish was answered.
    Wait,
}

/// Longest channel name (and subscription id) accepted, in bytes.
pub const MAX_CHANNEL_NAME: usize = 1024;
/// Most channels one publish may go to (after the channel builder).
pub const MAX_PUBLISH_CHANNELS: usize = 100;
/// Largest accepted `batch_size`.
pub const MAX_BATCH_SIZE: u64 = 1000;
/// Deepest nesting of arrays and objects accepted in a published or written message: the
/// recursion limit of serde_json (and so of our SDK). A deeper message would be stored but no
/// subscriber using a standard parser could read it.
pub const MAX_MESSAGE_DEPTH: usize = 128;

/// The protocol state of one WebSocket connection.
pub struct Session {
    broker: Arc<Broker>,
    id: Box<str>,
    appkey: Box<str>,
    user_agent: Box<str>,
    mailbox: Arc<Mailbox>,
    auth: Auth,
    subs: Vec<Sub>,
    next_token: u32,
    scratch: String,
    drained: Vec<Delivery>,
    pdus_in: u64,
    pdus_out: u64,
    /// Publish token bucket (only with a rate limit): tokens left and when it was refilled.
    publish_bucket: Option<(f64, Instant)>,
    /// Whether the app has channel_builder rules (fixed for the broker's life).
    has_channel_builder: bool,
    /// The key of the last channel published to: publishers mostly publish to one channel,
    /// and reusing it saves building (and allocating) the key again.
    last_key: Option<ChannelKey>,
}

/// An error answer: stable code + human reason.
struct Refusal {
    code: &'static str,
    reason: String,
}

impl Refusal {
    fn new(code: &'static str, reason: impl Into<String>) -> Self {
        Refusal {
            code,
            reason: reason.into(),
        }
    }
}

/// A backend failure answered as is: its stable code and its text.
impl From<BackendError> for Refusal {
    fn from(e: BackendError) -> Self {
        Refusal::new(e.code(), e.to_string())
    }
}

impl Session {
    /// A session for a connection to `appkey` registered in `broker` as `id`.
    pub fn new(
        broker: Arc<Broker>,
        id: Box<str>,
        mailbox: Arc<Mailbox>,
        appkey: &str,
        user_agent: &str,
    ) -> Self {
        let has_channel_builder = broker
            .apps()
            .app(appkey)
            .is_some_and(|a| !a.channel_builder.is_empty());
        Session {
            broker,
            id,
            appkey: appkey.into(),
            user_agent: user_agent.into(),
            mailbox,
            auth: Auth::Start,
            subs: Vec::new(),
            next_token: 0,
            scratch: String::new(),
            drained: Vec::new(),
            pdus_in: 0,
            pdus_out: 0,
            publish_bucket: None,
            has_channel_builder,
            last_key: None,
        }
    }

    /// The connection id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Whether `auth/authenticate` succeeded.
    pub fn is_authenticated(&self) -> bool {
        matches!(self.auth, Auth::Authenticated { .. })
    }

    /// The mailbox to wait on.
    pub fn mailbox(&self) -> &Arc<Mailbox> {
        &self.mailbox
    }

    fn emit(&mut self, sink: &mut (dyn PduSink + Send)) {
        if self.broker.settings.verbose {
            tracing::info!(conn = %self.id, "> {}", self.scratch);
        }
        self.pdus_out += 1;
        sink.send(&self.scratch);
        if self.scratch.capacity() > 4 << 10 {
            self.scratch = String::new();
        }
    }

    fn send_ok(&mut self, sink: &mut (dyn PduSink + Send), action: &str, id: &str, body: &str) {
        self.scratch.clear();
        let _ = write!(
            self.scratch,
            r#"{{"action":"{action}/ok","id":{id},"body":{body}}}"#
        );
        self.emit(sink);
    }

    fn send_error(
        &mut self,
        sink: &mut (dyn PduSink + Send),
        action: &str,
        id: &str,
        refusal: &Refusal,
    ) {
        self.broker.stats.errors.fetch_add(1, Ordering::Relaxed);
        self.scratch.clear();
        let _ = write!(
            self.scratch,
            r#"{{"action":"{action}/error","id":{id},"body":{{"error":"{}","reason":{}}}}}"#,
            refusal.code,
            json_str(&refusal.reason)
        );
        self.emit(sink);
    }

    /// Handles one received text PDU, publishes included (waiting for the backend's answer).
    pub async fn on_text(&mut self, text: &str, sink: &mut (dyn PduSink + Send)) -> Flow {
        let broker = Arc::clone(&self.broker);
        match self
            .on_text_pipelined(text, sink, &broker.backend, false)
            .await
        {
            Step::Done(flow) => flow,
            Step::Publish(publish) => {
                let answer = publish.await;
                self.publish_done(answer, sink);
                Flow::Continue
            }
            // Only returned while publishes are in flight, and none are here.
            Step::Wait => Flow::Continue,
        }
    }

    /// Handles one received text PDU without waiting for publishes: a publish is started on
    /// `backend` (the broker's) and returned as [`Step::Publish`] unless it could be answered
    /// at once with `publishes_in_flight` false. With `publishes_in_flight` true, any other
    /// PDU gives [`Step::Wait`] and is left untouched.
    pub async fn on_text_pipelined<'b>(
        &mut self,
        text: &str,
        sink: &mut (dyn PduSink + Send),
        backend: &'b Arc<dyn Backend>,
        publishes_in_flight: bool,
    ) -> Step<'b> {
        if let Some(fast) = publish_pdu::parse(text) {
            let id = fast.id.map_or("1", RawValue::get);
            // A non-scalar id takes the general path (its error and close).
            if is_scalar_id(id) {
                self.pdus_in += 1;
                if self.broker.settings.verbose {
                    tracing::info!(conn = %self.id, "< {text}");
                }
                let input = PublishInput::Parsed(fast.body);
                return self.publish(id, input, sink, &**backend, publishes_in_flight);
            }
        }
        let envelope: Option<Envelope> = serde_json::from_str(text).ok();
        let is_publish = envelope
            .as_ref()
            .is_some_and(|e| e.action.as_deref() == Some(action::PUBLISH));
        if publishes_in_flight && !is_publish {
            return Step::Wait;
        }
        self.pdus_in += 1;
        let Some(Envelope {
            action: Some(action),
            id,
            body,
        }) = envelope
        else {
            if self.broker.settings.verbose {
                tracing::info!(conn = %self.id, "< (bad schema) {} bytes", text.len());
            }
            let reason = if serde_json::from_str::<serde_json::Value>(text).is_err() {
                "the PDU is not valid JSON"
            } else {
                "the PDU is not a JSON object with an \"action\" string"
            };
            self.send_error(
                sink,
                "rtm",
                "1",
                &Refusal::new(error_code::BAD_SCHEMA, reason),
            );
            return Step::Done(Flow::Close {
                code: CLOSE_NORMAL,
                reason: error_code::BAD_SCHEMA,
            });
        };
        if self.broker.settings.verbose {
            if action == action::AUTH_AUTHENTICATE {
                tracing::info!(conn = %self.id, "< auth/authenticate (credentials not logged)");
            } else {
                tracing::info!(conn = %self.id, "< {text}");
            }
        }
        let id = id.map_or("1", RawValue::get);
        if !is_scalar_id(id) {
            if publishes_in_flight {
                // Its error (and the close) must follow the earlier publishes' acks.
                self.pdus_in -= 1;
                return Step::Wait;
            }
            self.send_error(
                sink,
                "rtm",
                "1",
                &Refusal::new(
                    error_code::BAD_SCHEMA,
                    "the PDU id must be a string or a number within the range of a double",
                ),
            );
            return Step::Done(Flow::Close {
                code: CLOSE_NORMAL,
                reason: error_code::BAD_SCHEMA,
            });
        }
        let action: &str = &action;
        if !action::REQUESTS.contains(&action) {
            let reason = format!("unknown action {action:?}");
            // Echo a sanitized action only when it is a plain name; otherwise a generic one.
            let echo = if action
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'/' || b == b'_')
                && action.len() < 64
            {
                action
            } else {
                "rtm"
            };
            self.send_error(
                sink,
                echo,
                id,
                &Refusal::new(error_code::BAD_SCHEMA, reason),
            );
            return Step::Done(Flow::Close {
                code: CLOSE_NORMAL,
                reason: error_code::BAD_SCHEMA,
            });
        }
        if action == action::PUBLISH {
            let input = PublishInput::Raw(body);
            return self.publish(id, input, sink, &**backend, publishes_in_flight);
        }
        let result = match action {
            action::AUTH_HANDSHAKE => self.handshake(body),
            action::AUTH_AUTHENTICATE => self.authenticate(body),
            _ => match self.check_allowed(action) {
                Err(r) => Err(r),
                Ok(counters) => match action {
                    action::SUBSCRIBE => self.subscribe(body, &counters, id, sink).await,
                    action::UNSUBSCRIBE => self.unsubscribe(body),
                    action::READ => self.read(body, &counters).await,
                    action::WRITE => self.write(body, &counters).await,
                    action::DELETE => self.delete(body).await,
                    action::GET_CONNECTIONS => self.get_connections(),
                    _ => self.close_connection(body),
                },
            },
        };
        match result {
            Ok(Some(body)) => self.send_ok(sink, action, id, &body),
            Ok(None) => {}
            Err(r) => self.send_error(sink, action, id, &r),
        }
        Step::Done(Flow::Continue)
    }

    /// The namespaced key of `channel`, refusing names no real channel has.
    fn key(&self, channel: &str) -> Result<ChannelKey, Refusal> {
        if channel.is_empty() {
            return Err(Refusal::new(
                error_code::MISSING_CHANNEL,
                "the channel name is empty",
            ));
        }
        if channel.len() > MAX_CHANNEL_NAME {
            return Err(Refusal::new(
                error_code::INVALID_CHANNEL,
                format!(
                    "channel names are at most {MAX_CHANNEL_NAME} bytes, this one has {}",
                    channel.len()
                ),
            ));
        }
        Ok(ChannelKey::new(&self.appkey, channel))
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        for sub in std::mem::take(&mut self.subs) {
            self.release_sub(&sub);
        }
        self.broker.unregister(&self.id);
        let role = match &self.auth {
            Auth::Authenticated { role, .. } => &**role,
            _ => "-",
        };
        tracing::info!(conn = %self.id, appkey = %self.appkey, role, user_agent = %self.user_agent, pdus_in = self.pdus_in, pdus_out = self.pdus_out, "connection closed");
    }
}
