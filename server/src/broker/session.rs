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

use std::borrow::Cow;
use std::fmt::Write as _;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll, ready};
use std::time::Instant;

use futures_util::FutureExt as _;
use serde::Deserialize;
use serde_json::value::RawValue;

use super::backend::{Backend, BackendError, BoxFuture, ChannelKey, Message, StartAt};
use super::mailbox::{Delivery, Mailbox, Notice, Subscriber};
use super::stats::RoleCounters;
use super::{Broker, CLOSE_NORMAL};

mod publish_pdu;
use crate::config::channel_builder;
use crate::streamsql::aggregate::{AggLimits, Aggregator};
use crate::streamsql::{Outcome, Query};
use cobra_wire::Position;
use cobra_wire::pdu::action;

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

/// A started publish waiting for the backend; its output goes to [`Session::publish_done`].
/// It borrows the backend (`'b`), not the session. A plain future, not a boxed `async` block:
/// a pipeline holds one per publish in flight, and this saves an allocation for each.
pub struct PendingPublish<'b> {
    /// The request id, as received (a JSON scalar).
    id: Box<str>,
    state: Pending<'b>,
}

enum Pending<'b> {
    /// Refused before reaching the backend: answered in turn.
    Refused(Refusal),
    /// Waiting for the backend (one future per channel).
    Started {
        channels: OneOrMany<ChannelKey>,
        payload_len: usize,
        publishes: Publishes<'b>,
    },
    /// Resolved (polled again: never ready).
    Done,
}

/// The backend's futures of one publish: one channel is the rule, and needs no `Vec`.
enum Publishes<'b> {
    One(BoxFuture<'b, Result<Position, BackendError>>),
    Many(futures_util::future::JoinAll<BoxFuture<'b, Result<Position, BackendError>>>),
}

impl Future for PendingPublish<'_> {
    type Output = PublishAnswer;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<PublishAnswer> {
        let results = match &mut self.state {
            Pending::Refused(_) => None,
            Pending::Started { publishes, .. } => Some(match publishes {
                Publishes::One(f) => OneOrMany::One(ready!(f.poll_unpin(cx))),
                Publishes::Many(f) => OneOrMany::Many(ready!(f.poll_unpin(cx))),
            }),
            Pending::Done => return Poll::Pending,
        };
        let result = match (std::mem::replace(&mut self.state, Pending::Done), results) {
            (
                Pending::Started {
                    channels,
                    payload_len,
                    ..
                },
                Some(results),
            ) => Ok(PublishedTo {
                channels,
                payload_len,
                results,
            }),
            (Pending::Refused(refusal), _) => Err(refusal),
            // Unreachable: `results` is `Some` exactly for `Started`.
            _ => return Poll::Pending,
        };
        Poll::Ready(PublishAnswer {
            id: std::mem::take(&mut self.id),
            result,
        })
    }
}

/// What a [`PendingPublish`] resolves to: the answer of one `rtm/publish`, not yet sent.
pub struct PublishAnswer {
    /// The request id, as received (a JSON scalar).
    id: Box<str>,
    result: Result<PublishedTo, Refusal>,
}

/// One item or several: a publish goes to one channel as a rule, and then allocates no `Vec`.
enum OneOrMany<T> {
    One(T),
    Many(Vec<T>),
}

impl<T> OneOrMany<T> {
    fn as_slice(&self) -> &[T] {
        match self {
            OneOrMany::One(t) => std::slice::from_ref(t),
            OneOrMany::Many(v) => v,
        }
    }
}

/// Where a publish went: each channel with the backend's answer for it.
struct PublishedTo {
    channels: OneOrMany<ChannelKey>,
    payload_len: usize,
    results: OneOrMany<Result<Position, BackendError>>,
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

/// A publish checked and handed to the backend, one future per channel.
struct Started<'b> {
    channels: OneOrMany<ChannelKey>,
    payload_len: usize,
    publishes: OneOrMany<BoxFuture<'b, Result<Position, BackendError>>>,
}

/// The body of a publish: still raw (general path), or already parsed ([`publish_pdu`]).
enum PublishInput<'a> {
    Raw(Option<&'a RawValue>),
    Parsed(PublishBody<'a>),
}

/// What closes a one-message `rtm/subscription/data` PDU after the message.
const DATA_SUFFIX: &str = "]}}";

/// Aggregate rows sent in one data PDU at most (a window closing with many groups spans several).
const MAX_ROWS_PER_PDU: usize = 100;

/// The wall clock in milliseconds since the epoch: the arrival clock of aggregate subscriptions
/// (event timestamps are wall-clock milliseconds too).
fn wall_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
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

/// Whether `json` nests arrays/objects deeper than `max` (a byte scan; strings skipped).
fn nests_deeper_than(json: &str, max: usize) -> bool {
    // Fast path (every publish goes through here): with at most `max` opening brackets in all,
    // strings included, nothing can nest deeper. memchr's SIMD search skips the runs without
    // brackets whatever the build's opt-level (a plain byte loop built with opt-level "s" does
    // not vectorize, and cost about a sixth of the server's CPU per publish).
    let opening = memchr::memchr2_iter(b'[', b'{', json.as_bytes()).count();
    if opening <= max {
        return false;
    }
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for &b in json.as_bytes() {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > max {
                    return true;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

/// Refuses a message no standard JSON parser would read back.
fn check_message(message: &RawValue) -> Result<(), Refusal> {
    if nests_deeper_than(message.get(), MAX_MESSAGE_DEPTH) {
        return Err(Refusal::new(
            "invalid_message",
            format!("the message nests arrays/objects deeper than {MAX_MESSAGE_DEPTH} levels"),
        ));
    }
    Ok(())
}

enum Auth {
    Start,
    Handshaken {
        role: Box<str>,
        nonce: String,
    },
    Authenticated {
        role: Box<str>,
        counters: Arc<RoleCounters>,
        /// Whether the role may publish: spares every publish the lookups of
        /// [`Session::check_allowed`]. A reload that changes the role's permissions closes
        /// the connection (see [`Broker::reload_apps`]), so it never goes stale.
        may_publish: bool,
    },
}

struct Sub {
    id: Box<str>,
    /// `id` as a JSON string literal, ready to splice into PDUs.
    id_json: Box<str>,
    channel: ChannelKey,
    handle: Arc<Subscriber>,
    filter: Option<Query>,
    /// An aggregate statement's state: its rows are sent instead of the messages.
    agg: Option<Box<Aggregator>>,
    batch_size: usize,
    fast_forward: bool,
    next_pdu_id: u64,
    /// Pending messages of a partial batch, comma-separated.
    batch: String,
    batch_len: usize,
    batch_position: Position,
    batch_deadline: Option<Instant>,
}

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

// The request bodies are cobra-wire's lenient, borrowed model, shared with the SDK and the tests.
use cobra_wire::pdu::lenient::{
    AuthenticateBody, ChannelBody, CloseConnectionBody, Envelope, HandshakeBody, PublishBody,
    ReadBody, SubscribeBody, UnsubscribeBody, WriteBody,
};

fn parse_body<'a, T: Deserialize<'a>>(body: Option<&'a RawValue>) -> Result<T, Refusal> {
    let text = body.map_or("{}", RawValue::get);
    serde_json::from_str(text).map_err(|e| {
        Refusal::new(
            "invalid_body",
            format!("the body does not have the expected shape: {e}"),
        )
    })
}

/// Appends `s` as a JSON string literal (quotes and escapes included).
fn push_json_str(out: &mut String, s: &str) {
    out.push('"');
    let mut start = 0;
    for (i, b) in s.bytes().enumerate() {
        let escape = match b {
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
        if escape.is_empty() {
            let _ = write!(out, "\\u{b:04x}");
        } else {
            out.push_str(escape);
        }
        start = i + 1;
    }
    out.push_str(&s[start..]);
    out.push('"');
}

/// Whether a raw PDU id is a scalar any JSON parser reads back: it is echoed verbatim in the
/// answer, so never a structure (which could nest deeper than the client's parser accepts) or
/// a number out of the range of a double.
fn is_scalar_id(id: &str) -> bool {
    id.starts_with('"')
        || serde_json::from_str::<serde_json::Value>(id)
            .is_ok_and(|v| !v.is_array() && !v.is_object())
}

/// Appends `p` as `<ms>-<seq>` (its `Display` form) without `fmt`.
fn push_position(out: &mut String, p: Position) {
    let mut digits = itoa::Buffer::new();
    out.push_str(digits.format(p.ms));
    out.push('-');
    out.push_str(digits.format(p.seq));
}

/// `s` as a JSON string literal.
fn json_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    push_json_str(&mut out, s);
    out
}

fn parse_start(position: Option<&str>) -> Result<StartAt, Refusal> {
    match position {
        None | Some("$") | Some("") => Ok(StartAt::Live),
        Some(p) => p.parse::<Position>().map(StartAt::After).map_err(|_| {
            Refusal::new(
                "invalid_position",
                format!("position {p:?} is not of the form <ms>-<seq>, `0-0` or `$`"),
            )
        }),
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

    /// The earliest partial-batch deadline, if any.
    pub fn next_deadline(&self) -> Option<Instant> {
        let batch = self.subs.iter().filter_map(|s| s.batch_deadline).min();
        let due = self
            .subs
            .iter()
            .filter_map(|s| s.agg.as_ref()?.next_due())
            .min();
        let agg = due.map(|due| {
            let wait = due.saturating_sub(wall_ms()).max(0);
            // The wall clock has millisecond steps: wake just after the due one.
            Instant::now() + std::time::Duration::from_millis(wait as u64 + 1)
        });
        match (batch, agg) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Sends aggregate rows of subscription `i` as data PDUs (at most [`MAX_ROWS_PER_PDU`] each).
    fn emit_rows(
        &mut self,
        i: usize,
        rows: &mut Vec<String>,
        position: Position,
        sink: &mut (dyn PduSink + Send),
    ) {
        if rows.is_empty() {
            return;
        }
        let mut bytes = 0u64;
        let mut count = 0u64;
        for chunk in rows.chunks(MAX_ROWS_PER_PDU) {
            let sub = &mut self.subs[i];
            let pdu_id = sub.next_pdu_id;
            sub.next_pdu_id += 1;
            let out = &mut self.scratch;
            out.clear();
            out.push_str(r#"{"action":"rtm/subscription/data","id":"#);
            out.push_str(itoa::Buffer::new().format(pdu_id));
            out.push_str(r#","body":{"subscription_id":"#);
            out.push_str(&sub.id_json);
            out.push_str(r#","position":""#);
            push_position(out, position);
            out.push_str(r#"","messages":["#);
            for (j, row) in chunk.iter().enumerate() {
                if j > 0 {
                    out.push(',');
                }
                out.push_str(row);
                bytes += row.len() as u64;
                count += 1;
            }
            out.push_str(DATA_SUFFIX);
            self.emit(sink);
        }
        rows.clear();
        if let Auth::Authenticated { counters, .. } = &self.auth {
            counters
                .subscribed_count
                .fetch_add(count, Ordering::Relaxed);
            counters
                .subscribed_bytes
                .fetch_add(bytes, Ordering::Relaxed);
        }
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

    /// Sends `self.scratch` (the PDU prefix) + the message + [`DATA_SUFFIX`].
    fn emit_delivery(&mut self, sink: &mut (dyn PduSink + Send), message: &Arc<Message>) {
        if self.broker.settings.verbose {
            tracing::info!(conn = %self.id, "> {}{}{DATA_SUFFIX}", self.scratch, message.payload);
        }
        self.pdus_out += 1;
        sink.send_delivery(&self.scratch, message, DATA_SUFFIX);
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
            self.send_error(sink, "rtm", "1", &Refusal::new("bad_schema", reason));
            return Step::Done(Flow::Close {
                code: CLOSE_NORMAL,
                reason: "bad_schema",
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
                    "bad_schema",
                    "the PDU id must be a string or a number within the range of a double",
                ),
            );
            return Step::Done(Flow::Close {
                code: CLOSE_NORMAL,
                reason: "bad_schema",
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
            self.send_error(sink, echo, id, &Refusal::new("bad_schema", reason));
            return Step::Done(Flow::Close {
                code: CLOSE_NORMAL,
                reason: "bad_schema",
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
                    action::UNSUBSCRIBE => self.unsubscribe(body, &counters),
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

    /// Starts a publish: answered now when it can be (a refusal, or a backend that answered
    /// at once with nothing in flight), else returned to be awaited in order.
    fn publish<'b>(
        &mut self,
        id: &str,
        body: PublishInput<'_>,
        sink: &mut (dyn PduSink + Send),
        backend: &'b dyn Backend,
        publishes_in_flight: bool,
    ) -> Step<'b> {
        let started = self
            .check_publish_allowed()
            .and_then(|()| self.take_publish_token())
            .and_then(|()| self.start_publish(body, backend));
        let Started {
            channels,
            payload_len,
            mut publishes,
        } = match started {
            Ok(started) => started,
            Err(refusal) if publishes_in_flight => {
                // Answered after the earlier publishes, like any other.
                return Step::Publish(PendingPublish {
                    id: id.into(),
                    state: Pending::Refused(refusal),
                });
            }
            Err(refusal) => {
                self.send_error(sink, "rtm/publish", id, &refusal);
                return Step::Done(Flow::Continue);
            }
        };
        if !publishes_in_flight && let OneOrMany::One(publish) = &mut publishes {
            // The embedded backend answers at once: no allocation, no round through the loop.
            if let Some(result) = publish.now_or_never() {
                let published = PublishedTo {
                    channels,
                    payload_len,
                    results: OneOrMany::One(result),
                };
                self.answer_publish(id, Ok(published), sink);
                return Step::Done(Flow::Continue);
            }
        }
        let publishes = match publishes {
            OneOrMany::One(publish) => Publishes::One(publish),
            OneOrMany::Many(all) => Publishes::Many(futures_util::future::join_all(all)),
        };
        Step::Publish(PendingPublish {
            id: id.into(),
            state: Pending::Started {
                channels,
                payload_len,
                publishes,
            },
        })
    }

    /// Sends the ack (or error) of a publish returned by [`Session::on_text_pipelined`]. Call
    /// in the order the publishes were received.
    pub fn publish_done(&mut self, answer: PublishAnswer, sink: &mut (dyn PduSink + Send)) {
        self.answer_publish(&answer.id, answer.result, sink);
    }

    fn answer_publish(
        &mut self,
        id: &str,
        result: Result<PublishedTo, Refusal>,
        sink: &mut (dyn PduSink + Send),
    ) {
        const ACTION: &str = "rtm/publish";
        let published = match result {
            Ok(published) => published,
            Err(refusal) => return self.send_error(sink, ACTION, id, &refusal),
        };
        let channels = published.channels.as_slice();
        let results = published.results.as_slice();
        let mut first_error = None;
        for (channel, result) in channels.iter().zip(results) {
            match result {
                Ok(_) => {
                    if let Auth::Authenticated { counters, .. } = &self.auth {
                        counters.published_count.fetch_add(1, Ordering::Relaxed);
                        counters
                            .published_bytes
                            .fetch_add(published.payload_len as u64, Ordering::Relaxed);
                    }
                    self.broker
                        .stats
                        .channel_published(channel.channel(), published.payload_len);
                }
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        if let Some(e) = first_error {
            let refusal = Refusal::new(e.code(), e.to_string());
            return self.send_error(sink, ACTION, id, &refusal);
        }
        let first = match results.first() {
            Some(Ok(position)) => *position,
            _ => Position::default(),
        };
        // Written straight into the PDU buffer, without `fmt` machinery: this is every
        // publish's answer.
        let out = &mut self.scratch;
        out.clear();
        out.push_str(r#"{"action":"rtm/publish/ok","id":"#);
        out.push_str(id);
        out.push_str(r#","body":{"channels":["#);
        for (i, channel) in channels.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            push_json_str(out, channel.channel());
        }
        out.push_str(r#"],"position":""#);
        push_position(out, first);
        out.push_str(r#""}}"#);
        self.emit(sink);
    }

    /// [`Session::check_allowed`] for `rtm/publish`, from what was cached at authentication.
    fn check_publish_allowed(&self) -> Result<(), Refusal> {
        match self.auth {
            Auth::Authenticated {
                may_publish: true, ..
            } => Ok(()),
            _ => self.check_allowed("rtm/publish").map(drop),
        }
    }

    fn check_allowed(&self, action: &str) -> Result<Arc<RoleCounters>, Refusal> {
        let Auth::Authenticated { role, counters, .. } = &self.auth else {
            return Err(Refusal::new(
                "not_authenticated",
                format!(
                    "{action} needs an authenticated connection: auth/handshake then auth/authenticate first"
                ),
            ));
        };
        let allowed = self
            .broker
            .apps()
            .apps
            .get(&*self.appkey)
            .and_then(|a| a.roles.get(&**role))
            .is_some_and(|r| r.permissions.allows(action));
        if allowed {
            Ok(Arc::clone(counters))
        } else {
            Err(Refusal::new(
                "permission_denied",
                format!("role {role:?} is not allowed to {action}"),
            ))
        }
    }

    /// The namespaced key of `channel`, refusing names no real channel has.
    fn key(&self, channel: &str) -> Result<ChannelKey, Refusal> {
        if channel.is_empty() {
            return Err(Refusal::new("missing_channel", "the channel name is empty"));
        }
        if channel.len() > MAX_CHANNEL_NAME {
            return Err(Refusal::new(
                "invalid_channel",
                format!(
                    "channel names are at most {MAX_CHANNEL_NAME} bytes, this one has {}",
                    channel.len()
                ),
            ));
        }
        Ok(ChannelKey::new(&self.appkey, channel))
    }

    /// Token bucket of `publish_rate_limit`: refills continuously, holds one second's worth.
    fn take_publish_token(&mut self) -> Result<(), Refusal> {
        let Some(rate) = self.broker.settings.limits.publish_rate_limit else {
            return Ok(());
        };
        let rate = f64::from(rate.get());
        let now = Instant::now();
        let (tokens, last) = self.publish_bucket.get_or_insert((rate, now));
        *tokens = (*tokens + now.duration_since(*last).as_secs_f64() * rate).min(rate);
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            Err(Refusal::new(
                "rate_limited",
                format!("this connection is over its limit of {rate} publishes per second"),
            ))
        }
    }

    fn handshake(&mut self, body: Option<&RawValue>) -> Result<Option<String>, Refusal> {
        let b: HandshakeBody = parse_body(body)?;
        match b.method.as_deref() {
            Some("role_secret") => {}
            other => {
                return Err(Refusal::new(
                    "unsupported_method",
                    format!("handshake method {other:?} is not supported; use \"role_secret\""),
                ));
            }
        }
        let Some(role) = b.data.and_then(|d| d.role) else {
            return Err(Refusal::new("invalid_body", "body.data.role is missing"));
        };
        let nonce = cobra_wire::auth::new_nonce();
        let body = format!(
            r#"{{"data":{{"nonce":{},"version":{},"connection_id":{},"node":{}}}}}"#,
            json_str(&nonce),
            json_str(env!("CARGO_PKG_VERSION")),
            json_str(&self.id),
            json_str(&self.broker.settings.node)
        );
        self.auth = Auth::Handshaken {
            role: role.into(),
            nonce,
        };
        Ok(Some(body))
    }

    fn authenticate(&mut self, body: Option<&RawValue>) -> Result<Option<String>, Refusal> {
        let b: AuthenticateBody = parse_body(body)?;
        if b.method.as_deref() != Some("role_secret") {
            return Err(Refusal::new(
                "unsupported_method",
                "authenticate method must be \"role_secret\"",
            ));
        }
        let Some(hash) = b.credentials.and_then(|c| c.hash) else {
            return Err(Refusal::new(
                "invalid_body",
                "body.credentials.hash is missing",
            ));
        };
        // A stray authenticate (no handshake pending) leaves the session as it was: an
        // authenticated connection stays authenticated.
        let (role, nonce) = match std::mem::replace(&mut self.auth, Auth::Start) {
            Auth::Handshaken { role, nonce } => (role, nonce),
            other => {
                self.auth = other;
                return Err(Refusal::new(
                    "handshake_required",
                    "send auth/handshake before auth/authenticate",
                ));
            }
        };
        let apps = self.broker.apps();
        let secret = apps
            .apps
            .get(&*self.appkey)
            .and_then(|a| a.roles.get(&*role))
            .map(|r| r.secret.as_str());
        // Unknown role: compare against a dummy so timing does not reveal which roles exist.
        let ok = cobra_wire::auth::verify(secret.unwrap_or("\u{0}no-such-role"), &nonce, &hash)
            && secret.is_some();
        if !ok {
            tracing::info!(conn = %self.id, role = %role, "authentication failed");
            return Err(Refusal::new(
                "authentication_failed",
                "the role is unknown or the hash does not match the secret",
            ));
        }
        let counters = self.broker.stats.role(&self.appkey, &role);
        tracing::debug!(conn = %self.id, role = %role, "authenticated");
        self.broker.set_role(&self.id, &role);
        let may_publish = apps
            .app(&self.appkey)
            .and_then(|a| a.roles.get(&*role))
            .is_some_and(|r| r.permissions.allows("rtm/publish"));
        self.auth = Auth::Authenticated {
            role,
            counters,
            may_publish,
        };
        Ok(Some("{}".into()))
    }

    /// Checks a publish and starts it on every channel: calling [`Backend::publish`] fixes the
    /// order it lands in, so nothing here waits.
    fn start_publish<'b>(
        &mut self,
        body: PublishInput<'_>,
        backend: &'b dyn Backend,
    ) -> Result<Started<'b>, Refusal> {
        let b: PublishBody = match body {
            PublishInput::Raw(raw) => parse_body(raw)?,
            PublishInput::Parsed(b) => b,
        };
        let Some(message) = b.message else {
            return Err(Refusal::new("missing_message", "body.message is missing"));
        };
        check_message(message)?;
        let channels = match (b.channel, b.channels) {
            // The usual publish: one channel, nothing to rewrite or deduplicate.
            (Some(channel), None) if !self.has_channel_builder => {
                OneOrMany::One(self.key_reused(&channel)?)
            }
            (channel, channels) => self.publish_keys(channel, channels, message)?,
        };
        let payload: Arc<str> = message.get().into();
        let publishes = match &channels {
            OneOrMany::One(key) => OneOrMany::One(backend.publish(key, Arc::clone(&payload))),
            OneOrMany::Many(keys) => OneOrMany::Many(
                keys.iter()
                    .map(|key| backend.publish(key, Arc::clone(&payload)))
                    .collect(),
            ),
        };
        Ok(Started {
            channels,
            payload_len: payload.len(),
            publishes,
        })
    }

    /// The keys a publish goes to: its channels, through the channel builder, deduplicated.
    fn publish_keys(
        &mut self,
        channel: Option<Cow<'_, str>>,
        channels: Option<Vec<String>>,
        message: &RawValue,
    ) -> Result<OneOrMany<ChannelKey>, Refusal> {
        let mut channels: Vec<String> = channels.unwrap_or_default();
        channels.extend(channel.map(Cow::into_owned));
        let apps = self.has_channel_builder.then(|| self.broker.apps());
        if let Some(apps) = &apps
            && let Some(app) = apps.app(&self.appkey)
        {
            // The builder reads fields of the message: parse only in this case.
            if let Ok(value) = serde_json::from_str::<serde_json::Value>(message.get()) {
                channels = channel_builder::apply(&app.channel_builder, channels, &value);
            }
        }
        if channels.len() > MAX_PUBLISH_CHANNELS {
            return Err(Refusal::new(
                "too_many_channels",
                format!(
                    "a publish may name at most {MAX_PUBLISH_CHANNELS} channels, this one names {}",
                    channels.len()
                ),
            ));
        }
        if channels.len() > 1 {
            // Keep the first occurrence of each channel, in order (lists are short).
            let mut i = 1;
            while i < channels.len() {
                if channels[..i].contains(&channels[i]) {
                    channels.remove(i);
                } else {
                    i += 1;
                }
            }
        }
        match channels.as_slice() {
            [] => Err(Refusal::new(
                "missing_channel",
                "body.channel (or body.channels) is missing or empty",
            )),
            [one] => Ok(OneOrMany::One(self.key_reused(one)?)),
            // Every name is checked before anything is published.
            many => Ok(OneOrMany::Many(
                many.iter()
                    .map(|c| self.key(c))
                    .collect::<Result<Vec<_>, _>>()?,
            )),
        }
    }

    /// [`Session::key`], reusing the key of the previous publish when it names the same
    /// channel.
    fn key_reused(&mut self, channel: &str) -> Result<ChannelKey, Refusal> {
        if let Some(key) = &self.last_key
            && key.channel() == channel
        {
            return Ok(key.clone());
        }
        let key = self.key(channel)?;
        self.last_key = Some(key.clone());
        Ok(key)
    }

    async fn subscribe(
        &mut self,
        body: Option<&RawValue>,
        counters: &RoleCounters,
        request_id: &str,
        sink: &mut (dyn PduSink + Send),
    ) -> Result<Option<String>, Refusal> {
        let b: SubscribeBody = parse_body(body)?;
        // The Python client sends `"filter": ""` for "no filter".
        let (filter, channel) = match b.filter.as_deref().filter(|f| !f.trim().is_empty()) {
            Some(sql) => {
                let q = Query::parse(sql)
                    .map_err(|e| Refusal::new("invalid_filter", format!("invalid filter: {e}")))?;
                let c = q.channel().to_owned();
                (Some(q), c)
            }
            None => match b.channel.clone().or_else(|| b.subscription_id.clone()) {
                Some(c) => (None, c),
                None => {
                    return Err(Refusal::new(
                        "missing_channel",
                        "body.channel or body.subscription_id is required",
                    ));
                }
            },
        };
        let (filter, agg) = match filter {
            Some(q) if q.is_aggregate() => {
                let limits = AggLimits {
                    max_groups: self.broker.settings.limits.max_groups,
                    ..AggLimits::default()
                };
                let agg = Aggregator::new(q, limits)
                    .map_err(|e| Refusal::new("invalid_filter", format!("invalid filter: {e}")))?;
                (None, Some(Box::new(agg)))
            }
            other => (other, None),
        };
        let sub_id = b.subscription_id.unwrap_or_else(|| channel.clone());
        if sub_id.len() > MAX_CHANNEL_NAME {
            return Err(Refusal::new(
                "invalid_subscription_id",
                format!("subscription ids are at most {MAX_CHANNEL_NAME} bytes"),
            ));
        }
        if self.subs.iter().any(|s| *s.id == *sub_id) {
            return Err(Refusal::new(
                "already_subscribed",
                format!("subscription {sub_id:?} already exists on this connection"),
            ));
        }
        let max = self.broker.settings.limits.max_subscriptions;
        if self.subs.len() >= max {
            return Err(Refusal::new(
                "too_many_subscriptions",
                format!("this connection already has the maximum of {max} subscriptions"),
            ));
        }
        let start = parse_start(b.position.as_deref())?;
        let batch_size = match b.batch_size {
            None | Some(0) => 1,
            Some(n) if n <= MAX_BATCH_SIZE => n as usize,
            Some(n) => {
                return Err(Refusal::new(
                    "invalid_batch_size",
                    format!("batch_size {n} is over the maximum of {MAX_BATCH_SIZE}"),
                ));
            }
        };
        let fast_forward = b.fast_forward.unwrap_or(false);
        let token = self.next_token;
        self.next_token = self.next_token.wrapping_add(1);
        let handle = Arc::new(
            Subscriber::new(Arc::clone(&self.mailbox), token).fast_forwarding(fast_forward),
        );
        let key = self.key(&channel)?;
        let ack = self
            .broker
            .backend
            .subscribe(&key, start, Arc::clone(&handle))
            .await
            .map_err(|e| Refusal::new(e.code(), e.to_string()))?;
        let id_json: Box<str> = json_str(&sub_id).into();
        if let Some(missed) = ack.expired
            && !fast_forward
        {
            self.broker.backend.unsubscribe(&key, &handle);
            self.broker.stats.errors.fetch_add(1, Ordering::Relaxed);
            self.scratch.clear();
            let _ = write!(
                self.scratch,
                r#"{{"action":"rtm/subscription/error","id":{request_id},"body":{{"subscription_id":{id_json},"error":"expired_position","reason":"the position is older than the oldest message kept (up to {missed} messages were trimmed); resubscribe with 0-0, $ or fast_forward","missed_message_count":{missed}}}}}"#
            );
            self.emit(sink);
            return Ok(None);
        }
        counters.subscriptions.fetch_add(1, Ordering::Relaxed);
        self.broker.stats.channel_subscribers(key.channel(), 1);
        // An aggregate subscription also says how much state it may hold.
        let bounds = agg.as_ref().map_or(String::new(), |a| {
            format!(
                r#","aggregate":{{"max_groups":{},"max_group_bytes":{}}}"#,
                self.broker.settings.limits.max_groups,
                a.max_group_bytes()
            )
        });
        self.send_ok(
            sink,
            "rtm/subscribe",
            request_id,
            &format!(
                r#"{{"position":"{}","subscription_id":{id_json}{bounds}}}"#,
                ack.position
            ),
        );
        if let Some(missed) = ack.expired {
            self.scratch.clear();
            let _ = write!(
                self.scratch,
                r#"{{"action":"rtm/subscription/info","id":{request_id},"body":{{"subscription_id":{id_json},"info":"fast_forward","reason":"the position was expired: continuing from the oldest message kept","missed_message_count":{missed}}}}}"#
            );
            self.emit(sink);
        }
        self.subs.push(Sub {
            id: sub_id.into(),
            id_json,
            channel: key,
            handle,
            filter,
            agg,
            batch_size,
            fast_forward,
            next_pdu_id: 0,
            batch: String::new(),
            batch_len: 0,
            batch_position: Position::ZERO,
            batch_deadline: None,
        });
        Ok(None)
    }

    fn unsubscribe(
        &mut self,
        body: Option<&RawValue>,
        counters: &RoleCounters,
    ) -> Result<Option<String>, Refusal> {
        let b: UnsubscribeBody = parse_body(body)?;
        let Some(sub_id) = b.subscription_id else {
            return Err(Refusal::new(
                "invalid_body",
                "body.subscription_id is missing",
            ));
        };
        let Some(i) = self.subs.iter().position(|s| *s.id == *sub_id) else {
            return Err(Refusal::new(
                "unknown_subscription",
                format!("no subscription {sub_id:?} on this connection"),
            ));
        };
        let sub = self.subs.swap_remove(i);
        self.broker.backend.unsubscribe(&sub.channel, &sub.handle);
        self.broker
            .stats
            .channel_subscribers(sub.channel.channel(), -1);
        counters.subscriptions.fetch_sub(1, Ordering::Relaxed);
        Ok(Some(format!(r#"{{"subscription_id":{}}}"#, sub.id_json)))
    }

    async fn read(
        &mut self,
        body: Option<&RawValue>,
        counters: &RoleCounters,
    ) -> Result<Option<String>, Refusal> {
        let b: ReadBody = parse_body(body)?;
        let channel = b
            .channel
            .ok_or_else(|| Refusal::new("missing_channel", "body.channel is missing"))?;
        let at = match b.position.as_deref() {
            None => None,
            Some(p) => Some(p.parse::<Position>().map_err(|_| {
                Refusal::new(
                    "invalid_position",
                    format!("position {p:?} is not of the form <ms>-<seq>"),
                )
            })?),
        };
        let key = self.key(&channel)?;
        let value = self
            .broker
            .backend
            .read(&key, at)
            .await
            .map_err(|e| Refusal::new(e.code(), e.to_string()))?;
        counters.reads_count.fetch_add(1, Ordering::Relaxed);
        counters.reads_bytes.fetch_add(
            value.as_ref().map_or(0, |v| v.len()) as u64,
            Ordering::Relaxed,
        );
        Ok(Some(format!(
            r#"{{"message":{}}}"#,
            value.as_deref().unwrap_or("null")
        )))
    }

    async fn write(
        &mut self,
        body: Option<&RawValue>,
        counters: &RoleCounters,
    ) -> Result<Option<String>, Refusal> {
        let b: WriteBody = parse_body(body)?;
        let channel = b
            .channel
            .ok_or_else(|| Refusal::new("missing_channel", "body.channel is missing"))?;
        let message = b
            .message
            .ok_or_else(|| Refusal::new("missing_message", "body.message is missing"))?;
        check_message(message)?;
        let key = self.key(&channel)?;
        let pos = self
            .broker
            .backend
            .write(&key, message.get().into())
            .await
            .map_err(|e| Refusal::new(e.code(), e.to_string()))?;
        counters.writes_count.fetch_add(1, Ordering::Relaxed);
        counters
            .writes_bytes
            .fetch_add(message.get().len() as u64, Ordering::Relaxed);
        Ok(Some(format!(r#"{{"stream":"{pos}","position":"{pos}"}}"#)))
    }

    async fn delete(&mut self, body: Option<&RawValue>) -> Result<Option<String>, Refusal> {
        let b: ChannelBody = parse_body(body)?;
        let channel = b
            .channel
            .ok_or_else(|| Refusal::new("missing_channel", "body.channel is missing"))?;
        let key = self.key(&channel)?;
        self.broker
            .backend
            .delete(&key)
            .await
            .map_err(|e| Refusal::new(e.code(), e.to_string()))?;
        Ok(Some("{}".into()))
    }

    fn get_connections(&mut self) -> Result<Option<String>, Refusal> {
        let ids = self.broker.connection_ids(&self.appkey);
        let list = serde_json::to_string(&ids).unwrap_or_else(|_| "[]".into());
        Ok(Some(format!(r#"{{"connections":{list}}}"#)))
    }

    fn close_connection(&mut self, body: Option<&RawValue>) -> Result<Option<String>, Refusal> {
        let b: CloseConnectionBody = parse_body(body)?;
        let id = b
            .connection_id
            .ok_or_else(|| Refusal::new("invalid_body", "body.connection_id is missing"))?;
        if self
            .broker
            .close_connection(&self.appkey, &id, CLOSE_NORMAL)
        {
            Ok(Some(format!(r#"{{"connection_id":{}}}"#, json_str(&id))))
        } else {
            Err(Refusal::new(
                "unknown_connection",
                format!("no connection {id:?} of this app on this node"),
            ))
        }
    }

    /// Drains the mailbox: builds subscription PDUs, reports losses, flushes due batches.
    pub fn pump(&mut self, sink: &mut (dyn PduSink + Send), now: Instant) -> Flow {
        let mut drained = std::mem::take(&mut self.drained);
        let flags = self
            .mailbox
            .drain(&mut drained, self.broker.settings.limits.drain_bytes);
        if flags.lagging {
            // Before the messages drained with them: a notice may remove its subscription (whose
            // queued messages are then dropped: the client resubscribes from what it received).
            self.report_notices(sink);
        }
        let (mut count, mut bytes) = (0u64, 0u64);
        let delay = self.broker.settings.limits.batch_flush_delay;
        let has_agg = self.subs.iter().any(|s| s.agg.is_some());
        let now_ms = if has_agg { wall_ms() } else { 0 };
        let mut rows = Vec::new();
        for d in drained.drain(..) {
            let Some(i) = self.subs.iter().position(|s| s.handle.token() == d.token) else {
                continue;
            };
            if let Some(agg) = &mut self.subs[i].agg {
                agg.on_message(&d.message.payload, now_ms, &mut rows);
                self.subs[i].batch_position = d.message.position;
                self.emit_rows(i, &mut rows, d.message.position, sink);
                continue;
            }
            let projected;
            let (text, forwarded): (&str, bool) = match &self.subs[i].filter {
                None => (&d.message.payload, true),
                Some(q) => match q.eval_raw(&d.message.payload) {
                    Outcome::NoMatch => continue,
                    Outcome::Forward => (&d.message.payload, true),
                    Outcome::Projected(p) => {
                        projected = p;
                        (&projected, false)
                    }
                },
            };
            count += 1;
            bytes += text.len() as u64;
            let sub = &mut self.subs[i];
            if sub.batch_size <= 1 {
                let pdu_id = sub.next_pdu_id;
                sub.next_pdu_id += 1;
                // Written without `fmt`, as the publish ack: this is every delivery's prefix.
                let out = &mut self.scratch;
                out.clear();
                out.push_str(r#"{"action":"rtm/subscription/data","id":"#);
                out.push_str(itoa::Buffer::new().format(pdu_id));
                out.push_str(r#","body":{"subscription_id":"#);
                out.push_str(&sub.id_json);
                out.push_str(r#","position":""#);
                push_position(out, d.message.position);
                out.push_str(r#"","messages":["#);
                if forwarded {
                    // The message as published: the sink may share its encoding across subscribers.
                    self.emit_delivery(sink, &d.message);
                } else {
                    self.scratch.push_str(text);
                    self.scratch.push_str(DATA_SUFFIX);
                    self.emit(sink);
                }
            } else {
                if sub.batch_len > 0 {
                    sub.batch.push(',');
                }
                sub.batch.push_str(text);
                sub.batch_len += 1;
                sub.batch_position = d.message.position;
                if sub.batch_len >= sub.batch_size {
                    self.flush_batch(i, sink);
                } else if sub.batch_deadline.is_none() {
                    sub.batch_deadline = Some(now + delay);
                }
            }
        }
        // Keep a small drain buffer; a burst-sized one is released.
        if drained.capacity() <= 64 {
            self.drained = drained;
        }
        if count > 0
            && let Auth::Authenticated { counters, .. } = &self.auth
        {
            counters
                .subscribed_count
                .fetch_add(count, Ordering::Relaxed);
            counters
                .subscribed_bytes
                .fetch_add(bytes, Ordering::Relaxed);
        }
        for i in 0..self.subs.len() {
            if self.subs[i].batch_deadline.is_some_and(|d| d <= now) {
                self.flush_batch(i, sink);
            }
        }
        if has_agg {
            for i in 0..self.subs.len() {
                if let Some(agg) = &mut self.subs[i].agg
                    && agg.next_due().is_some_and(|due| due <= now_ms)
                {
                    agg.tick(now_ms, &mut rows);
                    // Rows a timer closed: the position is the last message the subscription read.
                    let position = self.subs[i].batch_position;
                    self.emit_rows(i, &mut rows, position, sink);
                }
            }
        }
        if flags.lagging {
            self.report_losses(sink);
        }
        match flags.close {
            Some(code) => Flow::Close {
                code,
                reason: match code {
                    CLOSE_NORMAL => "closed by an admin",
                    super::CLOSE_DRAIN => "server draining: reconnect",
                    super::CLOSE_REVOKED => "role revoked or changed by a config reload",
                    _ => "server shutting down",
                },
            },
            None => Flow::Continue,
        }
    }

    fn flush_batch(&mut self, i: usize, sink: &mut (dyn PduSink + Send)) {
        let sub = &mut self.subs[i];
        sub.batch_deadline = None;
        if sub.batch_len == 0 {
            return;
        }
        let pdu_id = sub.next_pdu_id;
        sub.next_pdu_id += 1;
        self.scratch.clear();
        let _ = write!(
            self.scratch,
            r#"{{"action":"rtm/subscription/data","id":{pdu_id},"body":{{"subscription_id":{},"position":"{}","messages":[{}]}}}}"#,
            sub.id_json, sub.batch_position, sub.batch
        );
        sub.batch_len = 0;
        if sub.batch.capacity() > 64 << 10 {
            sub.batch = String::new();
        } else {
            sub.batch.clear();
        }
        self.emit(sink);
    }

    fn report_losses(&mut self, sink: &mut (dyn PduSink + Send)) {
        let mut i = 0;
        while i < self.subs.len() {
            let missed = self.subs[i].handle.take_missed();
            if missed == 0 {
                i += 1;
                continue;
            }
            self.broker
                .stats
                .queue_drops
                .fetch_add(missed, Ordering::Relaxed);
            if !self.report_loss(i, missed, "the subscriber could not keep up", sink) {
                i += 1;
            }
        }
    }

    /// Turns the backends' [`Notice`]s into subscription PDUs.
    fn report_notices(&mut self, sink: &mut (dyn PduSink + Send)) {
        let mut i = 0;
        'subs: while i < self.subs.len() {
            let notices = self.subs[i].handle.take_notices();
            if !notices.is_empty() {
                // A partial batch holds earlier messages: they go out before the notice.
                self.flush_batch(i, sink);
            }
            for notice in notices {
                let sub = &self.subs[i];
                let (info, reason) = match notice {
                    Notice::Unavailable(reason) => ("backend_unavailable", reason),
                    Notice::Resumed => (
                        "backend_resumed",
                        "the backend is reachable again: delivery resumed after the last message delivered"
                            .to_string(),
                    ),
                    Notice::Lost { missed, reason } => {
                        if self.report_loss(i, missed, &reason, sink) {
                            continue 'subs; // removed: `i` is now another subscription
                        }
                        continue;
                    }
                    Notice::Failed { code, reason } => {
                        self.scratch.clear();
                        let _ = write!(
                            self.scratch,
                            r#"{{"action":"rtm/subscription/error","id":{},"body":{{"subscription_id":{},"error":"{code}","reason":{}}}}}"#,
                            sub.next_pdu_id,
                            sub.id_json,
                            json_str(&format!("{reason}; the subscription was removed"))
                        );
                        self.remove_sub(i);
                        self.emit(sink);
                        continue 'subs;
                    }
                };
                self.scratch.clear();
                let _ = write!(
                    self.scratch,
                    r#"{{"action":"rtm/subscription/info","id":{},"body":{{"subscription_id":{},"info":"{info}","reason":{}}}}}"#,
                    sub.next_pdu_id,
                    sub.id_json,
                    json_str(&reason)
                );
                self.emit(sink);
            }
            i += 1;
        }
    }

    /// Reports `missed` lost messages of subscription `i`: a fast-forward info, or
    /// `out_of_sync` and the subscription is removed (then returns `true`).
    fn report_loss(
        &mut self,
        i: usize,
        missed: u64,
        why: &str,
        sink: &mut (dyn PduSink + Send),
    ) -> bool {
        let sub = &self.subs[i];
        self.scratch.clear();
        if sub.fast_forward {
            let _ = write!(
                self.scratch,
                r#"{{"action":"rtm/subscription/info","id":{},"body":{{"subscription_id":{},"info":"fast_forward","reason":{},"missed_message_count":{missed}}}}}"#,
                sub.next_pdu_id,
                sub.id_json,
                json_str(&format!("{why}: messages were skipped"))
            );
            self.emit(sink);
            false
        } else {
            let _ = write!(
                self.scratch,
                r#"{{"action":"rtm/subscription/error","id":{},"body":{{"subscription_id":{},"error":"out_of_sync","reason":{},"missed_message_count":{missed}}}}}"#,
                sub.next_pdu_id,
                sub.id_json,
                json_str(&format!(
                    "{why} and lost {missed} messages; the subscription was removed, resubscribe from the last position received"
                ))
            );
            self.remove_sub(i);
            self.emit(sink);
            true
        }
    }

    /// Removes subscription `i` after an error PDU.
    fn remove_sub(&mut self, i: usize) {
        let sub = self.subs.swap_remove(i);
        self.broker.backend.unsubscribe(&sub.channel, &sub.handle);
        self.broker
            .stats
            .channel_subscribers(sub.channel.channel(), -1);
        if let Auth::Authenticated { counters, .. } = &self.auth {
            counters.subscriptions.fetch_sub(1, Ordering::Relaxed);
        }
        self.broker.stats.errors.fetch_add(1, Ordering::Relaxed);
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        for sub in self.subs.drain(..) {
            self.broker.backend.unsubscribe(&sub.channel, &sub.handle);
            self.broker
                .stats
                .channel_subscribers(sub.channel.channel(), -1);
            if let Auth::Authenticated { counters, .. } = &self.auth {
                counters.subscriptions.fetch_sub(1, Ordering::Relaxed);
            }
        }
        self.broker.unregister(&self.id);
        let role = match &self.auth {
            Auth::Authenticated { role, .. } => &**role,
            _ => "-",
        };
        tracing::info!(conn = %self.id, appkey = %self.appkey, role, user_agent = %self.user_agent, pdus_in = self.pdus_in, pdus_out = self.pdus_out, "connection closed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_strings_are_escaped_like_serde_json() {
        for s in [
            "plain",
            "q\"uote",
            "back\\slash",
            "nl\n cr\r tab\t",
            "\u{1}\u{8}\u{c}\u{1f}",
            "é ü 日本",
            "",
        ] {
            let mut out = String::new();
            push_json_str(&mut out, s);
            assert_eq!(serde_json::from_str::<String>(&out).unwrap(), s, "{out}");
            assert_eq!(out, serde_json::to_string(s).unwrap());
        }
    }

    #[test]
    fn nesting_depth_is_checked_past_the_fast_path() {
        let deep = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
        assert!(!nests_deeper_than(
            &deep(MAX_MESSAGE_DEPTH),
            MAX_MESSAGE_DEPTH
        ));
        assert!(nests_deeper_than(
            &deep(MAX_MESSAGE_DEPTH + 1),
            MAX_MESSAGE_DEPTH
        ));
        // Many brackets, none deep: past the fast path, the exact scan says no.
        let wide = format!("[{}]", vec!["[]"; 500].join(","));
        assert!(!nests_deeper_than(&wide, MAX_MESSAGE_DEPTH));
        // Brackets inside strings do not nest.
        let quoted = format!("[\"{}\"]", "[".repeat(1000));
        assert!(!nests_deeper_than(&quoted, MAX_MESSAGE_DEPTH));
    }
}
