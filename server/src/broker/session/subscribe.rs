//! `rtm/subscribe` and `rtm/unsubscribe`: the subscriptions of one connection.

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use cobra_wire::Position;
use cobra_wire::pdu::action::{self, SUBSCRIPTION_ERROR, SUBSCRIPTION_INFO};
use cobra_wire::pdu::error_code::{self, EXPIRED_POSITION};
use cobra_wire::pdu::info_code::FAST_FORWARD;
use cobra_wire::pdu::lenient::{SubscribeBody, UnsubscribeBody};
use serde_json::value::RawValue;

use super::auth::Auth;
use super::json::{json_str, parse_body};
use super::{MAX_BATCH_SIZE, MAX_CHANNEL_NAME, PduSink, Refusal, Session};
use crate::broker::backend::{ChannelKey, StartAt};
use crate::broker::mailbox::Subscriber;
use crate::broker::stats::RoleCounters;
use crate::streamsql::Query;
use crate::streamsql::aggregate::{AggLimits, Aggregator};

pub(super) struct Sub {
    pub(super) id: Box<str>,
    /// `id` as a JSON string literal, ready to splice into PDUs.
    pub(super) id_json: Box<str>,
    pub(super) channel: ChannelKey,
    pub(super) handle: Arc<Subscriber>,
    pub(super) filter: Option<Query>,
    /// An aggregate statement's state: its rows are sent instead of the messages.
    pub(super) agg: Option<Box<Aggregator>>,
    pub(super) batch_size: usize,
    pub(super) fast_forward: bool,
    pub(super) next_pdu_id: u64,
    /// Pending messages of a partial batch, comma-separated.
    pub(super) batch: String,
    pub(super) batch_len: usize,
    pub(super) batch_position: Position,
    pub(super) batch_deadline: Option<Instant>,
}

fn parse_start(position: Option<&str>) -> Result<StartAt, Refusal> {
    match position {
        None | Some("$") | Some("") => Ok(StartAt::Live),
        Some(p) => p.parse::<Position>().map(StartAt::After).map_err(|_| {
            Refusal::new(
                error_code::INVALID_POSITION,
                format!("position {p:?} is not of the form <ms>-<seq>, `0-0` or `$`"),
            )
        }),
    }
}

impl Session {
    pub(super) async fn subscribe(
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
                let q = Query::parse(sql).map_err(|e| {
                    Refusal::new(error_code::INVALID_FILTER, format!("invalid filter: {e}"))
                })?;
                let c = q.channel().to_owned();
                (Some(q), c)
            }
            None => match b.channel.clone().or_else(|| b.subscription_id.clone()) {
                Some(c) => (None, c),
                None => {
                    return Err(Refusal::new(
                        error_code::MISSING_CHANNEL,
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
                let agg = Aggregator::new(q, limits).map_err(|e| {
                    Refusal::new(error_code::INVALID_FILTER, format!("invalid filter: {e}"))
                })?;
                (None, Some(Box::new(agg)))
            }
            other => (other, None),
        };
        let sub_id = b.subscription_id.unwrap_or_else(|| channel.clone());
        if sub_id.len() > MAX_CHANNEL_NAME {
            return Err(Refusal::new(
                error_code::INVALID_SUBSCRIPTION_ID,
                format!("subscription ids are at most {MAX_CHANNEL_NAME} bytes"),
            ));
        }
        if self.subs.iter().any(|s| *s.id == *sub_id) {
            return Err(Refusal::new(
                error_code::ALREADY_SUBSCRIBED,
                format!("subscription {sub_id:?} already exists on this connection"),
            ));
        }
        let max = self.broker.settings.limits.max_subscriptions;
        if self.subs.len() >= max {
            return Err(Refusal::new(
                error_code::TOO_MANY_SUBSCRIPTIONS,
                format!("this connection already has the maximum of {max} subscriptions"),
            ));
        }
        let start = parse_start(b.position.as_deref())?;
        let batch_size = match b.batch_size {
            None | Some(0) => 1,
            Some(n) if n <= MAX_BATCH_SIZE => n as usize,
            Some(n) => {
                return Err(Refusal::new(
                    error_code::INVALID_BATCH_SIZE,
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
            .await?;
        let id_json: Box<str> = json_str(&sub_id).into();
        if let Some(missed) = ack.expired
            && !fast_forward
        {
            self.broker.backend.unsubscribe(&key, &handle);
            self.broker.stats.errors.fetch_add(1, Ordering::Relaxed);
            self.scratch.clear();
            let _ = write!(
                self.scratch,
                r#"{{"action":"{SUBSCRIPTION_ERROR}","id":{request_id},"body":{{"subscription_id":{id_json},"error":"{EXPIRED_POSITION}","reason":"the position is older than the oldest message kept (up to {missed} messages were trimmed); resubscribe with 0-0, $ or fast_forward","missed_message_count":{missed}}}}}"#
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
            action::SUBSCRIBE,
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
                r#"{{"action":"{SUBSCRIPTION_INFO}","id":{request_id},"body":{{"subscription_id":{id_json},"info":"{FAST_FORWARD}","reason":"the position was expired: continuing from the oldest message kept","missed_message_count":{missed}}}}}"#
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

    pub(super) fn unsubscribe(
        &mut self,
        body: Option<&RawValue>,
    ) -> Result<Option<String>, Refusal> {
        let b: UnsubscribeBody = parse_body(body)?;
        let Some(sub_id) = b.subscription_id else {
            return Err(Refusal::new(
                error_code::INVALID_BODY,
                "body.subscription_id is missing",
            ));
        };
        let Some(i) = self.subs.iter().position(|s| *s.id == *sub_id) else {
            return Err(Refusal::new(
                error_code::UNKNOWN_SUBSCRIPTION,
                format!("no subscription {sub_id:?} on this connection"),
            ));
        };
        let sub = self.subs.swap_remove(i);
        self.release_sub(&sub);
        Ok(Some(format!(r#"{{"subscription_id":{}}}"#, sub.id_json)))
    }

    /// Removes subscription `i` after an error PDU.
    pub(super) fn remove_sub(&mut self, i: usize) {
        let sub = self.subs.swap_remove(i);
        self.release_sub(&sub);
        self.broker.stats.errors.fetch_add(1, Ordering::Relaxed);
    }

    /// Detaches a subscription taken out of `subs` from the backend and the counters.
    pub(super) fn release_sub(&self, sub: &Sub) {
        self.broker.backend.unsubscribe(&sub.channel, &sub.handle);
        self.broker
            .stats
            .channel_subscribers(sub.channel.channel(), -1);
        if let Auth::Authenticated { counters, .. } = &self.auth {
            counters.subscriptions.fetch_sub(1, Ordering::Relaxed);
        }
    }
}
