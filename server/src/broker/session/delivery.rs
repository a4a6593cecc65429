//! Delivery: the mailbox pump, subscription data PDUs, batches, aggregate rows and loss reports.

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use cobra_wire::Position;
use cobra_wire::pdu::action::{SUBSCRIPTION_DATA, SUBSCRIPTION_ERROR, SUBSCRIPTION_INFO};
use cobra_wire::pdu::error_code::OUT_OF_SYNC;
use cobra_wire::pdu::info_code::{self, FAST_FORWARD};

use super::auth::Auth;
use super::json::{json_str, push_action, push_position};
use super::subscribe::Sub;
use super::{Flow, PduSink, Session};
use crate::broker::backend::Message;
use crate::broker::mailbox::Notice;
use crate::broker::{CLOSE_DRAIN, CLOSE_NORMAL, CLOSE_REVOKED};
use crate::streamsql::Outcome;

/// What closes a one-message `rtm/subscription/data` PDU after the message.
const DATA_SUFFIX: &str = "]}}";

/// Aggregate rows sent in one data PDU at most (a window closing with many groups spans several).
const MAX_ROWS_PER_PDU: usize = 100;

/// Drain rounds one [`Session::pump`] takes at most (each up to `drain_bytes` of the queue).
const MAX_DRAIN_ROUNDS: usize = 16;

/// What one [`Session::deliver_round`] did.
struct Round {
    /// Deliveries taken from the queue.
    taken: usize,
    /// Their payload bytes.
    taken_bytes: usize,
    /// Payload bytes written (what matched the subscriptions' filters).
    written: usize,
    /// The connection must close with this code.
    close: Option<u16>,
}

/// Appends an `rtm/subscription/data` PDU up to its first message (`..."messages":[`); the
/// messages and [`DATA_SUFFIX`] follow. Written without `fmt`: this is every delivery's prefix.
fn push_data_head(out: &mut String, pdu_id: u64, sub_id_json: &str, position: Position) {
    push_action(out, SUBSCRIPTION_DATA);
    out.push_str(itoa::Buffer::new().format(pdu_id));
    out.push_str(r#","body":{"subscription_id":"#);
    out.push_str(sub_id_json);
    out.push_str(r#","position":""#);
    push_position(out, position);
    out.push_str(r#"","messages":["#);
}

/// The wall clock in milliseconds since the epoch: the arrival clock of aggregate subscriptions
/// (event timestamps are wall-clock milliseconds too).
fn wall_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

impl Session {
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
            push_data_head(out, pdu_id, &sub.id_json, position);
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
            counters.delivered(count, bytes);
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

    /// Drains the mailbox: builds subscription PDUs, reports losses, flushes due batches.
    ///
    /// One round takes up to `drain_bytes` from the queue. A filtering (or aggregating)
    /// subscription writes only part of what it takes, so while a round wrote less than half of
    /// it, rounds go on until `drain_bytes` were written, the queue is empty (catch-ups
    /// included) or [`MAX_DRAIN_ROUNDS`] were taken: with one round per wake, a subscriber
    /// passing 10 % read a tenth of what each publisher's task handled in a scheduling round,
    /// fell behind the history at full rate and lost what it could have kept.
    pub fn pump(&mut self, sink: &mut (dyn PduSink + Send), now: Instant) -> Flow {
        let mut close = None;
        let mut written = 0;
        for _ in 0..MAX_DRAIN_ROUNDS {
            let round = self.deliver_round(sink, now);
            close = close.or(round.close);
            written += round.written;
            // Another round only for what filters dropped: a round that wrote most of what it took
            // is the pace of an unfiltered subscriber (more rounds per wake made its writes
            // larger and let it fall behind its publisher in the 1 → 1 benchmark).
            let filtered = round.written * 2 < round.taken_bytes;
            if round.taken == 0
                || close.is_some()
                || !filtered
                || written >= self.broker.settings.limits.drain_bytes
            {
                break;
            }
        }
        let has_agg = self.subs.iter().any(|s| s.agg.is_some());
        let mut rows = Vec::new();
        for i in 0..self.subs.len() {
            if self.subs[i].batch_deadline.is_some_and(|d| d <= now) {
                self.flush_batch(i, sink);
            }
        }
        if has_agg {
            let now_ms = wall_ms();
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
        match close {
            Some(code) => Flow::Close {
                code,
                reason: match code {
                    CLOSE_NORMAL => "closed by an admin",
                    CLOSE_DRAIN => "server draining: reconnect",
                    CLOSE_REVOKED => "role revoked or changed by a config reload",
                    _ => "server shutting down",
                },
            },
            None => Flow::Continue,
        }
    }

    /// One drain of the mailbox turned into PDUs (see [`Session::pump`]).
    fn deliver_round(&mut self, sink: &mut (dyn PduSink + Send), now: Instant) -> Round {
        let mut drained = std::mem::take(&mut self.drained);
        let flags = self
            .mailbox
            .drain(&mut drained, self.broker.settings.limits.drain_bytes);
        if flags.lagging {
            crate::broker::test_hooks::notice_delay();
            // Before the messages drained with them: a notice may remove its subscription (whose
            // queued messages are then dropped: the client resubscribes from what it received).
            // Only those reported before this drain: a later one follows these messages.
            self.report_notices(flags.drain, sink);
        }
        let (mut count, mut bytes) = (0u64, 0u64);
        let delay = self.broker.settings.limits.batch_flush_delay;
        let has_agg = self.subs.iter().any(|s| s.agg.is_some());
        let now_ms = if has_agg { wall_ms() } else { 0 };
        let mut rows = Vec::new();
        let taken = drained.len();
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
                let out = &mut self.scratch;
                out.clear();
                push_data_head(out, pdu_id, &sub.id_json, d.message.position);
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
            counters.delivered(count, bytes);
        }
        if flags.lagging {
            self.report_losses(sink);
        }
        Round {
            taken,
            taken_bytes: flags.payload_bytes,
            written: bytes as usize,
            close: flags.close,
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
        push_data_head(&mut self.scratch, pdu_id, &sub.id_json, sub.batch_position);
        self.scratch.push_str(&sub.batch);
        self.scratch.push_str(DATA_SUFFIX);
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

    /// Turns the backends' [`Notice`]s reported before drain number `drain` into subscription
    /// PDUs (see [`crate::broker::mailbox`]: a notice goes out where it happened).
    fn report_notices(&mut self, drain: u64, sink: &mut (dyn PduSink + Send)) {
        let mut i = 0;
        'subs: while i < self.subs.len() {
            let notices = self.subs[i].handle.take_notices_before(drain);
            if !notices.is_empty() {
                // A partial batch holds earlier messages: they go out before the notice.
                self.flush_batch(i, sink);
            }
            for notice in notices {
                let sub = &self.subs[i];
                let (info, reason) = match notice {
                    Notice::Unavailable(reason) => (info_code::BACKEND_UNAVAILABLE, reason),
                    Notice::Resumed => (
                        info_code::BACKEND_RESUMED,
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
                        let reason = format!("{reason}; the subscription was removed");
                        write_notice(&mut self.scratch, sub, Kind::Error, code, &reason, None);
                        self.remove_sub(i);
                        self.emit(sink);
                        continue 'subs;
                    }
                };
                write_notice(&mut self.scratch, sub, Kind::Info, info, &reason, None);
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
        if sub.fast_forward {
            let reason = format!("{why}: messages were skipped");
            write_notice(
                &mut self.scratch,
                sub,
                Kind::Info,
                FAST_FORWARD,
                &reason,
                Some(missed),
            );
            self.emit(sink);
            false
        } else {
            let reason = format!(
                "{why} and lost {missed} messages; the subscription was removed, resubscribe from the last position received"
            );
            write_notice(
                &mut self.scratch,
                sub,
                Kind::Error,
                OUT_OF_SYNC,
                &reason,
                Some(missed),
            );
            self.remove_sub(i);
            self.emit(sink);
            true
        }
    }
}

/// Which subscription notice a PDU carries.
#[derive(Clone, Copy)]
enum Kind {
    /// `rtm/subscription/info`, its code in `info`.
    Info,
    /// `rtm/subscription/error`, its code in `error`.
    Error,
}

/// Writes into `out` (cleared first) a notice PDU of `sub`: `code` and `reason`, and the count of
/// messages lost when there is one.
fn write_notice(
    out: &mut String,
    sub: &Sub,
    kind: Kind,
    code: &str,
    reason: &str,
    missed: Option<u64>,
) {
    let (action, field) = match kind {
        Kind::Info => (SUBSCRIPTION_INFO, "info"),
        Kind::Error => (SUBSCRIPTION_ERROR, "error"),
    };
    out.clear();
    let _ = write!(
        out,
        r#"{{"action":"{action}","id":{},"body":{{"subscription_id":{},"{field}":"{code}","reason":{}"#,
        sub.next_pdu_id,
        sub.id_json,
        json_str(reason)
    );
    if let Some(missed) = missed {
        let _ = write!(out, r#","missed_message_count":{missed}"#);
    }
    out.push_str("}}");
}
