//! The two kinds of active connections: publishers (paced or windowed) and subscribers (latency, order
//! and loss accounting from the fields the publishers stamp into each message).

use std::borrow::Cow;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

use cobra_bench_event::Events;
use cobra_wire::pdu::{self, SubscribeBody};
use hdrhistogram::Histogram;
use memchr::memmem;
use serde::Deserialize;
use tokio::sync::watch;

use super::BenchError;
use super::conn::Conn;

/// Live counters the progress line and the drain logic read.
#[derive(Debug, Default)]
pub(super) struct Live {
    /// Publishes sent.
    pub published: AtomicU64,
    /// Publishes acknowledged with `rtm/publish/ok`.
    pub acked: AtomicU64,
    /// Messages received by subscribers.
    pub delivered: AtomicU64,
    /// Messages the server told fast-forwarding subscribers they skipped.
    pub skipped: AtomicU64,
    /// Nanoseconds since the epoch of the last delivery.
    pub last_delivery_ns: AtomicU64,
    /// Messages received or reported missed by the paused subscribers.
    pub paused_accounted: AtomicU64,
}

/// The shared clock: publishers stamp `t` (ns since `epoch`), subscribers in the same process subtract it.
#[derive(Debug, Clone, Copy)]
pub(super) struct Clock {
    epoch: Instant,
}

impl Clock {
    /// A clock starting now.
    pub(super) fn new() -> Self {
        Clock {
            epoch: Instant::now(),
        }
    }
    /// Nanoseconds since the epoch.
    pub(super) fn now_ns(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }
}

/// What one publisher does.
#[derive(Debug, Clone)]
pub(super) struct PubPlan {
    /// Publisher number, stamped as `p`.
    pub index: u32,
    /// Target channel.
    pub channel: String,
    /// Messages per second for this publisher; 0 = as fast as the window allows.
    pub rate: f64,
    /// Publishes in flight (sent, not yet acknowledged) at most.
    pub window: u64,
    /// The events published (shared with `nats-bench`, so that brokers compared carry the
    /// same bytes).
    pub events: Arc<Events>,
}

/// What one publisher did.
#[derive(Debug, Default, Clone)]
pub(super) struct PubResult {
    /// Publishes sent (sequence numbers `0..sent`).
    pub sent: u64,
    /// Acknowledged.
    pub acked: u64,
    /// Refused with `rtm/publish/error`.
    pub errors: u64,
    /// The first refusal, verbatim.
    pub first_error: Option<String>,
}

/// Runs a publisher until `stop` turns true, then waits (bounded) for the outstanding acks.
pub(super) async fn publisher(
    mut conn: Conn,
    plan: PubPlan,
    clock: Clock,
    live: Arc<Live>,
    mut stop: watch::Receiver<bool>,
) -> Result<PubResult, BenchError> {
    let mut res = PubResult::default();
    let mut msg = String::with_capacity(plan.events.message_bytes() + 32);
    let mut pdu_text = String::with_capacity(plan.events.message_bytes() + 128);
    let start = tokio::time::Instant::now();
    // Paced: send what the schedule allows every millisecond (one timer per message would cost more
    // than the message).
    let tick = Duration::from_millis(1);
    let mut stopping = *stop.borrow();
    let mut drain_deadline = start + Duration::from_secs(3600);
    loop {
        if !stopping {
            let in_flight = res.sent - res.acked - res.errors;
            let room = plan.window.saturating_sub(in_flight);
            let due = if plan.rate > 0.0 {
                ((start.elapsed().as_secs_f64() * plan.rate) as u64).saturating_sub(res.sent)
            } else {
                u64::MAX
            };
            let n = room.min(due);
            for _ in 0..n {
                msg.clear();
                plan.events
                    .write(&mut msg, clock.now_ns(), plan.index, res.sent);
                pdu_text.clear();
                let id = conn.next_id();
                pdu::write_publish(&mut pdu_text, id, &plan.channel, &msg);
                conn.queue_text(&pdu_text);
                res.sent += 1;
            }
            if n > 0 {
                live.published.fetch_add(n, Ordering::Relaxed);
                conn.flush().await?;
            }
        }
        if stopping && res.sent == res.acked + res.errors {
            return Ok(res);
        }
        let paced = plan.rate > 0.0 && !stopping;
        tokio::select! {
            r = conn.fill() => {
                if r? == 0 {
                    return Err(BenchError::Failed("server closed a publisher".into()));
                }
                // Built once, not per ack as `str::contains` would.
                static OK: LazyLock<memmem::Finder<'static>> =
                    LazyLock::new(|| memmem::Finder::new(br#""rtm/publish/ok""#));
                let (mut ok, mut err) = (0, 0);
                while let Some(text) = conn.next_buffered()? {
                    // Acks are by far the most frequent PDU here: a substring test avoids a JSON parse.
                    if OK.find(text.as_bytes()).is_some() {
                        ok += 1;
                    } else if text.contains("\"rtm/publish/error\"") {
                        err += 1;
                        if res.first_error.is_none() {
                            res.first_error = Some(text);
                        }
                    }
                }
                res.acked += ok;
                res.errors += err;
                live.acked.fetch_add(ok, Ordering::Relaxed);
                conn.flush().await?;
            }
            _ = tokio::time::sleep(tick), if paced => {}
            _ = stop.changed(), if !stopping => {
                stopping = true;
                drain_deadline = tokio::time::Instant::now() + Duration::from_secs(5);
            }
            _ = tokio::time::sleep_until(drain_deadline), if stopping => return Ok(res),
        }
    }
}

/// What one subscriber does.
#[derive(Debug, Clone)]
pub(super) struct SubPlan {
    /// Channel.
    pub channel: String,
    /// Subscription id.
    pub subscription_id: String,
    /// StreamSQL filter, if any.
    pub filter: Option<String>,
    /// Messages per data PDU.
    pub batch_size: Option<u32>,
    /// Ask the server to skip ahead (and say how many were skipped) rather than end the
    /// subscription with `out_of_sync` when it falls behind the history.
    pub fast_forward: bool,
}

/// What one subscriber saw.
#[derive(Debug)]
pub(super) struct SubResult {
    /// Messages received.
    pub received: u64,
    /// Messages received whose sequence number was not above the last one from the same publisher
    /// (duplicates or reordering).
    pub out_of_order: u64,
    /// Messages without the bench fields (a projection that dropped them, foreign traffic).
    pub unstamped: u64,
    /// End-to-end latency in microseconds.
    pub latency_us: Histogram<u64>,
    /// `rtm/subscription/error` or `/info` PDUs, verbatim (the first few), but for the
    /// `fast_forward` infos a `--fast-forward` subscriber counts in `skipped`.
    pub notices: Vec<String>,
    /// Messages the server said it skipped (`fast_forward` infos).
    pub skipped: u64,
}

// By hand: a histogram has no `Default` (its bounds are chosen here).
impl Default for SubResult {
    fn default() -> Self {
        SubResult {
            received: 0,
            out_of_order: 0,
            unstamped: 0,
            latency_us: new_histogram(),
            notices: Vec::new(),
            skipped: 0,
        }
    }
}

/// A new latency histogram: 1 µs to 60 s, 3 significant digits.
pub(super) fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3)
        .unwrap_or_else(|_| unreachable!("constant, valid histogram bounds"))
}

/// Subscribes and waits for `rtm/subscribe/ok`.
pub(super) async fn subscribe(conn: &mut Conn, plan: &SubPlan) -> Result<(), BenchError> {
    let id = conn.next_id();
    let req = pdu::request(
        pdu::action::SUBSCRIBE,
        id,
        &SubscribeBody {
            channel: Some(plan.channel.clone()),
            subscription_id: Some(plan.subscription_id.clone()),
            filter: plan.filter.clone(),
            batch_size: plan.batch_size.map(u64::from),
            fast_forward: plan.fast_forward.then_some(true),
            ..Default::default()
        },
    );
    conn.queue_text(&req);
    conn.flush().await?;
    loop {
        let text = conn.recv_text().await?;
        if text.contains("\"rtm/subscribe/ok\"") {
            return Ok(());
        }
        if text.contains("\"rtm/subscribe/error\"") {
            return Err(BenchError::Failed(format!("subscribe refused: {text}")));
        }
    }
}

/// A PDU as the subscriber reads it, in one pass: the body is read as a data body
/// whatever the action (other bodies have no `messages` and cost a skip), so a delivery
/// is scanned once instead of once for the envelope and again for the body.
#[derive(Deserialize)]
struct Incoming<'a> {
    #[serde(borrow)]
    action: Cow<'a, str>,
    #[serde(default)]
    body: Option<DataBody>,
}

#[derive(Deserialize)]
struct DataBody {
    #[serde(default)]
    messages: Vec<Stamp>,
}

/// The bench fields of a message; the rest is skipped without being built.
#[derive(Deserialize)]
struct Stamp {
    t: Option<u64>,
    p: Option<u32>,
    s: Option<u64>,
}

/// Receives until `stop` turns true.
pub(super) async fn subscriber(
    mut conn: Conn,
    publishers: usize,
    clock: Clock,
    live: Arc<Live>,
    mut stop: watch::Receiver<bool>,
) -> Result<SubResult, BenchError> {
    let mut res = SubResult::default();
    // Next expected sequence number per publisher.
    let mut next = vec![0u64; publishers];
    conn.read_in_bulk();
    loop {
        tokio::select! {
            r = conn.fill() => {
                let read = r?;
                if read == 0 {
                    return Err(BenchError::Failed("server closed a subscriber".into()));
                }
                // Received = when the bytes left the socket. One thread plays every subscriber:
                // stamping after inflating and parsing would charge each connection with the
                // tool's own work on the connections read before it (about 1 µs per delivery,
                // so up to a millisecond for the last of 100 subscribers in one burst). So stamp
                // now and, for a small read (a burst that reached every subscriber at once),
                // yield before decoding so that the other ready connections read and stamp
                // first. A large read is a backlog: the tool is behind anyway, and a yield per
                // read would only slow it down (measured: -14% deliveries/s at max rate).
                let now = clock.now_ns();
                if read < YIELD_BELOW {
                    tokio::task::yield_now().await;
                }
                let (mut n, skipped) = (0, res.skipped);
                while let Some(text) = conn.next_buffered()? {
                    n += account(&text, now, &mut next, &mut res);
                }
                if res.skipped > skipped {
                    live.skipped.fetch_add(res.skipped - skipped, Ordering::Relaxed);
                }
                if n > 0 {
                    live.delivered.fetch_add(n, Ordering::Relaxed);
                    live.last_delivery_ns.fetch_max(clock.now_ns(), Ordering::Relaxed);
                }
                conn.flush().await?;
            }
            _ = stop.changed() => return Ok(res),
        }
    }
}

/// How a laggard subscriber reads (`--slow-readers`, `--paused`).
#[derive(Debug, Clone, Copy)]
pub(super) enum Lag {
    /// Reads `rate` messages per second at most, a message's worth of bytes at a time.
    Slow {
        /// Messages per second.
        rate: f64,
        /// Bytes read at a time (about one message on the wire).
        chunk: usize,
    },
    /// Reads normally, except from `at` for `pause` (its socket left unread).
    Paused {
        /// When the pause starts.
        at: tokio::time::Instant,
        /// How long it lasts.
        pause: Duration,
    },
}

/// What one laggard saw, exactly.
#[derive(Debug, Default, Clone)]
pub(super) struct LagResult {
    /// Messages received.
    pub received: u64,
    /// Messages the server said were skipped (`fast_forward` infos and `out_of_sync`).
    pub missed: u64,
    /// `fast_forward` infos received.
    pub gaps: u64,
    /// Ended with `out_of_sync` (the subscription was removed).
    pub out_of_sync: bool,
    /// Messages duplicated or out of order.
    pub out_of_order: u64,
    /// Gaps whose reported count differs from the jump in sequence numbers that followed
    /// (exact with one publisher per channel).
    pub gap_mismatches: u64,
    /// Other notices, verbatim (the first few).
    pub notices: Vec<String>,
}

/// A laggard subscriber: reads as `lag` says until `stop` turns true, counting what it
/// received and what the server said it missed, so that `received + missed` can be checked
/// against what was published. A paused one adds `received + missed` to
/// `live.paused_accounted`.
pub(super) async fn laggard(
    mut conn: Conn,
    lag: Lag,
    publishers: usize,
    live: Arc<Live>,
    mut stop: watch::Receiver<bool>,
) -> Result<LagResult, BenchError> {
    let mut res = LagResult::default();
    let mut next = vec![0u64; publishers];
    // Messages announced as skipped and not yet seen as a jump in sequence numbers.
    let mut skip = 0u64;
    let started = tokio::time::Instant::now();
    loop {
        let wait_until = match lag {
            // The next message is due when `received / rate` seconds have passed.
            Lag::Slow { rate, .. } => {
                Some(started + Duration::from_secs_f64(res.received as f64 / rate))
            }
            Lag::Paused { at, pause } => {
                let now = tokio::time::Instant::now();
                (now >= at && now < at + pause).then_some(at + pause)
            }
        };
        if let Some(t) = wait_until.filter(|t| *t > tokio::time::Instant::now()) {
            tokio::select! {
                () = tokio::time::sleep_until(t) => {}
                _ = stop.changed() => return Ok(res),
            }
            continue;
        }
        let read = tokio::select! {
            r = async {
                match lag {
                    Lag::Slow { chunk, .. } => conn.fill_at_most(chunk).await,
                    Lag::Paused { .. } => conn.fill().await,
                }
            } => r?,
            // A pause starting while waiting for bytes: stop reading at once.
            () = async {
                match lag {
                    Lag::Paused { at, .. } if at > tokio::time::Instant::now() => {
                        tokio::time::sleep_until(at).await
                    }
                    _ => std::future::pending().await,
                }
            } => continue,
            _ = stop.changed() => return Ok(res),
        };
        if read == 0 {
            if res.out_of_sync {
                return Ok(res);
            }
            return Err(BenchError::Failed(
                "server closed a laggard subscriber".into(),
            ));
        }
        let before = res.received + res.missed;
        while let Some(text) = conn.next_buffered()? {
            account_laggard(&text, &mut next, &mut skip, &mut res);
        }
        if matches!(lag, Lag::Paused { .. }) {
            live.paused_accounted
                .fetch_add(res.received + res.missed - before, Ordering::Relaxed);
        }
        conn.flush().await?;
    }
}

/// Accounts one PDU of a laggard.
fn account_laggard(text: &str, next: &mut [u64], skip: &mut u64, res: &mut LagResult) {
    let mut stamps: [Stamped; FAST_BATCH] = [(0, 0, 0); FAST_BATCH];
    let stamped: Vec<(u32, u64)> = match scan_data(text.as_bytes(), &mut stamps) {
        Some(n) => stamps[..n].iter().map(|&(_, p, s)| (p, s)).collect(),
        None => {
            let v: serde_json::Value = match serde_json::from_str(text) {
                Ok(v) => v,
                Err(_) => return keep_notice(&mut res.notices, text),
            };
            let body = &v["body"];
            let missed = body["missed_message_count"].as_u64();
            match (
                v["action"].as_str(),
                body["info"].as_str(),
                body["error"].as_str(),
            ) {
                (Some(pdu::action::SUBSCRIPTION_DATA), _, _) => body["messages"]
                    .as_array()
                    .map(|ms| {
                        ms.iter()
                            .map(|m| {
                                let p = m["p"].as_u64().and_then(|p| u32::try_from(p).ok());
                                (p.unwrap_or(u32::MAX), m["s"].as_u64().unwrap_or(0))
                            })
                            .collect()
                    })
                    .unwrap_or_default(),
                (Some("rtm/subscription/info"), Some("fast_forward"), _) => {
                    res.gaps += 1;
                    res.missed += missed.unwrap_or(0);
                    *skip += missed.unwrap_or(0);
                    return;
                }
                (Some("rtm/subscription/error"), _, Some("out_of_sync")) => {
                    res.out_of_sync = true;
                    res.missed += missed.unwrap_or(0);
                    return;
                }
                _ => return keep_notice(&mut res.notices, text),
            }
        }
    };
    for (p, s) in stamped {
        res.received += 1;
        match next.get_mut(p as usize) {
            Some(n) if s >= *n => {
                if s - *n != std::mem::take(skip) {
                    res.gap_mismatches += 1;
                }
                *n = s + 1;
            }
            _ => res.out_of_order += 1,
        }
    }
}

/// Reads smaller than this (bytes) yield to the other connections before being decoded.
const YIELD_BELOW: usize = 16 << 10;

/// Accounts one PDU received at `now` (ns on the shared clock); returns how many messages it
/// delivered.
fn account(text: &str, now: u64, next: &mut [u64], res: &mut SubResult) -> u64 {
    let mut stamps: [Stamped; FAST_BATCH] = [(0, 0, 0); FAST_BATCH];
    if let Some(n) = scan_data(text.as_bytes(), &mut stamps) {
        for &(t, p, s) in &stamps[..n] {
            res.received += 1;
            record(now, t, p, s, next, res);
        }
        return n as u64;
    }
    let Ok(pdu) = serde_json::from_str::<Incoming<'_>>(text) else {
        keep_notice(&mut res.notices, text);
        return 0;
    };
    if pdu.action != pdu::action::SUBSCRIPTION_DATA {
        match fast_forwarded(text) {
            Some(missed) => res.skipped += missed,
            None => keep_notice(&mut res.notices, text),
        }
        return 0;
    }
    let Some(body) = pdu.body else {
        keep_notice(&mut res.notices, text);
        return 0;
    };
    for m in &body.messages {
        res.received += 1;
        let (Some(t), Some(p), Some(s)) = (m.t, m.p, m.s) else {
            res.unstamped += 1;
            continue;
        };
        record(now, t, p, s, next, res);
    }
    body.messages.len() as u64
}

/// Latency and order of one stamped message.
fn record(now: u64, t: u64, p: u32, s: u64, next: &mut [u64], res: &mut SubResult) {
    let _ = res
        .latency_us
        .record((now.saturating_sub(t) / 1000).clamp(1, 60_000_000));
    match next.get_mut(p as usize) {
        Some(n) if s >= *n => *n = s + 1,
        Some(_) => res.out_of_order += 1,
        None => res.unstamped += 1,
    }
}

/// Messages per PDU the fast path takes (larger batches go through serde).
const FAST_BATCH: usize = 16;

/// The bench fields of one message: `t` (send time), `p` (publisher), `s` (sequence).
type Stamped = (u64, u32, u64);

/// The fast path of [`account`]: a data PDU exactly as a cobra server writes it, holding
/// messages exactly as [`Events::write`] writes them (`{"t":..,"p":..,"s":..` first). The
/// bench fields are read where they stand and the rest of each message is skipped with
/// a string-aware brace count, instead of a full JSON parse (which was a third of the
/// tool's time per delivery). `None` on anything else (another server's spacing, a
/// projection, a notice): [`account`] then parses the JSON.
fn scan_data(text: &[u8], stamps: &mut [Stamped; FAST_BATCH]) -> Option<usize> {
    const HEAD: &[u8] = br#"{"action":"rtm/subscription/data","#;
    const MESSAGES: &[u8] = br#","messages":["#;
    // Built once: building a searcher per PDU was 6 % of the tool's time.
    static MESSAGES_FINDER: LazyLock<memmem::Finder<'static>> =
        LazyLock::new(|| memmem::Finder::new(MESSAGES));
    let rest = text.strip_prefix(HEAD)?;
    let at = MESSAGES_FINDER.find(rest)?;
    let mut rest = &rest[at + MESSAGES.len()..];
    let mut n = 0;
    loop {
        let (t, r) = number(rest.strip_prefix(br#"{"t":"#)?)?;
        let (p, r) = number(r.strip_prefix(br#","p":"#)?)?;
        let (s, r) = number(r.strip_prefix(br#","s":"#)?)?;
        *stamps.get_mut(n)? = (t, u32::try_from(p).ok()?, s);
        n += 1;
        rest = skip_object_rest(r)?;
        match rest.first()? {
            b',' => rest = &rest[1..],
            b']' => return (rest == b"]}}").then_some(n),
            _ => return None,
        }
    }
}

/// A decimal `u64` at the start of `b`, and what follows it.
fn number(b: &[u8]) -> Option<(u64, &[u8])> {
    let digits = b.iter().take_while(|c| c.is_ascii_digit()).count();
    if digits == 0 || digits > 19 {
        return None;
    }
    let v = b[..digits]
        .iter()
        .fold(0u64, |v, &c| v * 10 + u64::from(c - b'0'));
    Some((v, &b[digits..]))
}

/// Skips to just after the `}` closing an object whose `{` was already read.
fn skip_object_rest(b: &[u8]) -> Option<&[u8]> {
    let mut depth = 1usize;
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'"' => {
                // To the closing quote, stepping over escapes.
                i += 1;
                loop {
                    i += memchr::memchr2(b'"', b'\\', b.get(i..)?)?;
                    if b[i] == b'"' {
                        break;
                    }
                    i += 2;
                }
            }
            b'{' | b'[' => depth += 1,
            b'}' | b']' => {
                depth -= 1;
                if depth == 0 {
                    return Some(&b[i + 1..]);
                }
            }
            _ => {}
        }
        i += 1;
    }
    None
}

/// The `missed_message_count` of a `fast_forward` info (the subscription goes on).
fn fast_forwarded(text: &str) -> Option<u64> {
    let v: serde_json::Value = serde_json::from_str(text).ok()?;
    let body = &v["body"];
    (v["action"].as_str() == Some(pdu::action::SUBSCRIPTION_INFO)
        && body["info"].as_str() == Some(pdu::info_code::FAST_FORWARD))
    .then(|| body["missed_message_count"].as_u64())
    .flatten()
}

/// Keeps the first few notices of a subscriber or laggard, cut short: enough to diagnose, bounded
/// whatever the server sends.
fn keep_notice(notices: &mut Vec<String>, text: &str) {
    if notices.len() < 5 {
        notices.push(text.chars().take(300).collect());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(t: u64, p: u32, s: u64, pad: &str) -> String {
        format!(
            r#"{{"t":{t},"p":{p},"s":{s},"k":1,"id":"x","data":{{"fps":3,"a":[1,{{"b":"}}"}}]}},"pad":"{pad}"}}"#
        )
    }

    fn pdu(messages: &[String]) -> String {
        format!(
            r#"{{"action":"rtm/subscription/data","id":9,"body":{{"subscription_id":"s0","position":"1-2","messages":[{}]}}}}"#,
            messages.join(",")
        )
    }

    /// Both paths of `account` on the same text.
    fn both(text: &str) -> (Option<Vec<Stamped>>, Vec<Stamped>) {
        let mut stamps = [(0, 0, 0); FAST_BATCH];
        let fast = scan_data(text.as_bytes(), &mut stamps).map(|n| stamps[..n].to_vec());
        let slow: Incoming<'_> = serde_json::from_str(text).expect("valid JSON");
        let slow = slow
            .body
            .expect("a body")
            .messages
            .iter()
            .map(|m| (m.t.unwrap_or(0), m.p.unwrap_or(0), m.s.unwrap_or(0)))
            .collect();
        (fast, slow)
    }

    #[test]
    fn fast_path_reads_what_serde_reads() {
        for text in [
            pdu(&[msg(123, 0, 7, "abc")]),
            pdu(&[
                msg(1, 2, 3, r#"q\"}{\\"#),
                msg(4, 5, 6, "]"),
                msg(7, 8, 9, ""),
            ]),
        ] {
            let (fast, slow) = both(&text);
            assert_eq!(fast.as_ref(), Some(&slow), "{text}");
        }
    }

    #[test]
    fn anything_else_falls_back_to_serde() {
        let spaced = pdu(&[msg(1, 2, 3, "x")]).replace(r#""messages":["#, r#""messages": ["#);
        let projected = pdu(&[r#"{"s":3,"t":1,"p":2}"#.to_owned()]);
        let many: Vec<String> = (0..FAST_BATCH as u64 + 1)
            .map(|i| msg(i, 0, i, "x"))
            .collect();
        let many = pdu(&many);
        for text in [spaced, projected, many] {
            let (fast, slow) = both(&text);
            assert_eq!(fast, None, "{text}");
            assert!(!slow.is_empty());
        }
        let mut stamps = [(0, 0, 0); FAST_BATCH];
        let truncated = pdu(&[msg(1, 2, 3, "x")]);
        assert_eq!(
            scan_data(&truncated.as_bytes()[..truncated.len() - 3], &mut stamps),
            None
        );
    }

    #[test]
    fn a_fast_forward_info_is_counted_as_skipped_and_other_notices_are_kept() {
        let mut res = SubResult::default();
        let mut next = vec![0u64; 1];
        let info = r#"{"action":"rtm/subscription/info","id":4,"body":{"subscription_id":"s0","info":"fast_forward","reason":"behind","missed_message_count":37}}"#;
        assert_eq!(account(info, 0, &mut next, &mut res), 0);
        assert_eq!(account(info, 0, &mut next, &mut res), 0);
        assert_eq!(res.skipped, 74);
        assert!(res.notices.is_empty(), "{:?}", res.notices);
        let error = r#"{"action":"rtm/subscription/error","id":5,"body":{"subscription_id":"s0","error":"out_of_sync","missed_message_count":3}}"#;
        assert_eq!(account(error, 0, &mut next, &mut res), 0);
        assert_eq!(
            res.skipped, 74,
            "out_of_sync ends the subscription: not a skip"
        );
        assert_eq!(res.notices, [error]);
    }
}
