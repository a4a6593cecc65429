//! The publish pipeline: checks, channel keys, the backend's futures and the acks.

use std::borrow::Cow;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll, ready};
use std::time::Instant;

use cobra_wire::Position;
use cobra_wire::pdu::lenient::PublishBody;
use cobra_wire::pdu::{action, error_code};
use futures_util::FutureExt as _;
use serde_json::value::RawValue;

use super::auth::Auth;
use super::json::{check_message, parse_body, push_action, push_json_str, push_position};
use super::{Flow, MAX_PUBLISH_CHANNELS, PduSink, Refusal, Session, Step};
use crate::broker::backend::{Backend, BackendError, BoxFuture, ChannelKey};
use crate::config::channel_builder;

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

/// A publish checked and handed to the backend, one future per channel.
struct Started<'b> {
    channels: OneOrMany<ChannelKey>,
    payload_len: usize,
    publishes: OneOrMany<BoxFuture<'b, Result<Position, BackendError>>>,
}

/// The body of a publish: still raw (general path), or already parsed ([`publish_pdu`]).
pub(super) enum PublishInput<'a> {
    Raw(Option<&'a RawValue>),
    Parsed(PublishBody<'a>),
}

impl Session {
    /// Starts a publish: answered now when it can be (a refusal, or a backend that answered
    /// at once with nothing in flight), else returned to be awaited in order.
    pub(super) fn publish<'b>(
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
                self.send_error(sink, action::PUBLISH, id, &refusal);
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
        const ACTION: &str = action::PUBLISH;
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
        push_action(out, action::PUBLISH_OK);
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
                error_code::RATE_LIMITED,
                format!("this connection is over its limit of {rate} publishes per second"),
            ))
        }
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
            return Err(Refusal::new(
                error_code::MISSING_MESSAGE,
                "body.message is missing",
            ));
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
                error_code::TOO_MANY_CHANNELS,
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
                error_code::MISSING_CHANNEL,
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
    pub(super) fn key_reused(&mut self, channel: &str) -> Result<ChannelKey, Refusal> {
        if let Some(key) = &self.last_key
            && key.channel() == channel
        {
            return Ok(key.clone());
        }
        let key = self.key(channel)?;
        self.last_key = Some(key.clone());
        Ok(key)
    }
}
