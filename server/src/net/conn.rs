//! One connection: the HTTP request, then the WebSocket session loop.
//!
//! The loop waits for whichever comes first: bytes from the peer, a wake-up of the connection's
//! mailbox (deliveries, losses, close requests), or a partial-batch deadline. After each event
//! everything produced (responses, subscription data, control frames) is encoded into one
//! buffer and written with one `write_all`: writes are coalesced, and a peer that does not read
//! only ever blocks its own task.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::BytesMut;
use cobra_wire::handshake::{self, Request};
use cobra_wire::ws::{Codec, Message, Role};
use futures_util::FutureExt as _;
use std::collections::VecDeque;
use std::future::poll_fn;
use std::task::{Context, Poll, Waker};
use tokio::time::{Instant, sleep_until, timeout};

use super::Shared;
use super::compress;
use super::http::{Route, ServerState, route};
use super::io::Transport;
use crate::broker::session::{PendingPublish, PublishAnswer, Step};
use crate::broker::stats::Stats;
use crate::broker::{Flow, Message as Published, PduSink, Session};

/// A write of the HTTP exchange that takes longer than this drops the connection. (Once
/// upgraded, the `--write-timeout-ms` limit applies.)
pub const WRITE_STALL_TIMEOUT: Duration = Duration::from_secs(30);
/// Write buffers above this capacity are released once the connection has nothing pending
/// (idle connections stay small; a busy one keeps its buffer between write rounds).
const KEEP_WRITE_CAPACITY: usize = 4 << 10;

/// How long a closing connection waits for the peer to close its side.
const CLOSE_LINGER: Duration = Duration::from_secs(2);
/// Close code: policy violation (authentication timeout).
const CLOSE_POLICY: u16 = 1008;

struct Encoder<'a> {
    codec: &'a mut Codec,
    out: &'a mut Vec<u8>,
}

impl PduSink for Encoder<'_> {
    fn send(&mut self, pdu: &str) {
        compress::encode_text(self.codec, pdu, self.out);
    }

    fn send_delivery(&mut self, prefix: &str, message: &Arc<Published>, suffix: &str) {
        compress::encode_delivery(self.codec, prefix, message, suffix, self.out);
    }
}

/// The zlib streams a connection's codec holds, mirrored in the broker's gauges.
struct ZlibGauge<'a> {
    stats: &'a Stats,
    held: (bool, bool),
}

impl ZlibGauge<'_> {
    fn update(&mut self, now: (bool, bool)) {
        let delta = |was: bool, is: bool| i64::from(is) - i64::from(was);
        let (d, i) = (delta(self.held.0, now.0), delta(self.held.1, now.1));
        if d != 0 {
            self.stats
                .connection_deflaters
                .fetch_add(d, Ordering::Relaxed);
        }
        if i != 0 {
            self.stats
                .connection_inflaters
                .fetch_add(i, Ordering::Relaxed);
        }
        self.held = now;
    }
}

impl Drop for ZlibGauge<'_> {
    fn drop(&mut self) {
        self.update((false, false));
    }
}

/// Reads the HTTP request head, bounded in size and time.
async fn read_request<T: Transport>(
    io: &mut T,
    buf: &mut BytesMut,
    shared: &Shared,
) -> Option<Request> {
    let limits = shared.wire_limits;
    let read = async {
        loop {
            match handshake::parse_request(buf, &limits) {
                Ok(Some((req, used))) => {
                    let _ = buf.split_to(used);
                    return Some(req);
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::debug!(error = %e, "bad HTTP request");
                    let body = format!("{e}\n");
                    let resp = handshake::http_response(
                        400,
                        "Bad Request",
                        Some("text/plain"),
                        body.as_bytes(),
                        &[("Connection", "close")],
                    );
                    let _ = io.write_all_bytes(&resp).await;
                    return None;
                }
            }
            match io.read_some(buf).await {
                Ok(0) | Err(_) => return None,
                Ok(_) => {}
            }
        }
    };
    timeout(shared.settings.limits.handshake_timeout, read)
        .await
        .ok()
        .flatten()
}

/// Serves one accepted connection to the end.
pub async fn serve<T: Transport>(mut io: T, peer: SocketAddr, shared: Arc<Shared>) {
    let mut rbuf = BytesMut::new();
    let Some(req) = read_request(&mut io, &mut rbuf, &shared).await else {
        io.shutdown_write().await;
        return;
    };
    // An upgrade takes its slot now, held until the connection ends (the end of this function).
    let slot = if req.upgrade_requested {
        shared.try_admit()
    } else {
        None
    };
    let state = ServerState {
        at_capacity: if req.upgrade_requested {
            slot.is_none()
        } else {
            shared.at_capacity()
        },
        draining: shared.draining.load(Ordering::Acquire),
        dashboard: shared.settings.dashboard,
    };
    let route = route(&req, &shared.broker, state);
    // Keep only what the session needs: the parsed request would otherwise live as long as
    // the connection.
    let user_agent: Box<str> = req.user_agent.as_deref().unwrap_or("-").into();
    drop(req);
    match route {
        Route::Reply(bytes) => {
            let _ = timeout(WRITE_STALL_TIMEOUT, io.write_all_bytes(&bytes)).await;
            io.shutdown_write().await;
        }
        Route::Upgrade {
            response,
            appkey,
            deflate,
        } => {
            if timeout(WRITE_STALL_TIMEOUT, io.write_all_bytes(&response))
                .await
                .map_or(true, |r| r.is_err())
            {
                return;
            }
            drop(response);
            let codec = Codec::new(Role::Server, shared.wire_limits, deflate);
            run_session(io, rbuf, codec, peer, &appkey, &user_agent, &shared).await;
        }
    }
}

enum Event {
    Read(std::io::Result<usize>),
    /// The oldest in-flight publish was answered (the answer waits in the pipeline).
    Published,
    Wake,
    Timer,
}

/// What waits for the peer's PDUs to be processed on: a PDU held back until every in-flight
/// publish is answered (so answers keep the order of the requests).
enum Held {
    Text(String),
    /// The peer's close frame: the acks of its publishes go out first.
    Close(u16),
}

/// The publishes of one connection waiting for the backend, oldest first. Allocated on the
/// first publish that has to wait and released when the connection goes idle.
///
/// Only the oldest is polled (with the connection's own waker): answers go out in order
/// anyway, and a backend's publish has taken its place when it was started, so a later one
/// loses nothing by not being polled yet (the Redis one is a reply slot the node fills).
/// This spares what a `FuturesOrdered` costs per publish: a task allocation, a waker per
/// future woken from the backend's thread, a ready queue.
struct Pipeline<'b> {
    in_flight: VecDeque<PendingPublish<'b>>,
    /// The answer just polled out of `in_flight` (kept here, not in the session loop's
    /// future, which every idle connection carries).
    answered: Option<PublishAnswer>,
    held: Option<Held>,
}

impl Pipeline<'_> {
    fn new() -> Box<Self> {
        Box::new(Pipeline {
            in_flight: VecDeque::new(),
            answered: None,
            held: None,
        })
    }
}

/// Polls for the next answer of `pipeline`, in order, and keeps it in `answered`. A plain poll
/// function rather than an `async fn`: its future in the session loop stays one pointer.
fn poll_answer(pipeline: &mut Option<Box<Pipeline<'_>>>, cx: &mut Context<'_>) -> Poll<()> {
    let Some(p) = pipeline else {
        return Poll::Pending;
    };
    match next_answer(&mut p.in_flight, cx) {
        Some(answer) => {
            p.answered = Some(answer);
            Poll::Ready(())
        }
        None => Poll::Pending,
    }
}

/// The answer of the oldest publish in flight if it is there (removing it); otherwise `cx`
/// is woken when it comes.
fn next_answer<'b>(
    in_flight: &mut VecDeque<PendingPublish<'b>>,
    cx: &mut Context<'_>,
) -> Option<PublishAnswer> {
    let answer = match in_flight.front_mut()?.poll_unpin(cx) {
        Poll::Ready(answer) => answer,
        Poll::Pending => return None,
    };
    in_flight.pop_front();
    Some(answer)
}

async fn run_session<T: Transport>(
    mut io: T,
    mut rbuf: BytesMut,
    mut codec: Codec,
    peer: SocketAddr,
    appkey: &str,
    user_agent: &str,
    shared: &Shared,
) {
    let broker = &shared.broker;
    let (id, mailbox) = broker.register(appkey);
    tracing::info!(conn = %id, %peer, appkey, user_agent, deflate = codec.deflate().is_some(), "connection opened");
    let mut session = Session::new(
        Arc::clone(broker),
        id,
        Arc::clone(&mailbox),
        appkey,
        user_agent,
    );
    let auth_deadline = Instant::now() + shared.settings.limits.handshake_timeout;
    let mut wbuf: Vec<u8> = Vec::new();
    let mut zlib = ZlibGauge {
        stats: &broker.stats,
        held: (false, false),
    };
    let mut pipeline: Option<Box<Pipeline<'_>>> = None;
    // Bytes may have arrived with the upgrade request.
    let mut pending_read = !rbuf.is_empty();
    let max_in_flight = shared.settings.limits.max_publishes_in_flight.max(1);
    let write_timeout = shared.settings.limits.write_timeout;
    // A close the server asked for (drain, admin, reload) while publishes were in flight: it
    // goes out once they are answered, and nothing more is read meanwhile (what the client
    // sent after them is not acknowledged, so the SDK sends it again after reconnecting).
    let mut closing: Option<(u16, String)> = None;
    loop {
        let in_flight = pipeline.as_ref().map_or(0, |p| p.in_flight.len());
        // Full, or a PDU waits for the pipeline to empty: leave the socket unread (TCP
        // back-pressure) until the backend answers.
        let stalled = closing.is_some()
            || in_flight >= max_in_flight
            || pipeline.as_ref().is_some_and(|p| p.held.is_some());
        let event = if pending_read {
            pending_read = false;
            Event::Read(Ok(rbuf.len()))
        } else {
            let batch = session.next_deadline().map(Instant::from_std);
            let deadline = match (batch, session.is_authenticated()) {
                (b, true) => b,
                (Some(b), false) => Some(b.min(auth_deadline)),
                (None, false) => Some(auth_deadline),
            };
            tokio::select! {
                r = io.read_some(&mut rbuf), if !stalled => Event::Read(r),
                () = poll_fn(|cx| poll_answer(&mut pipeline, cx)), if in_flight > 0 => Event::Published,
                () = mailbox.wait(), if closing.is_none() => Event::Wake,
                () = sleep_until(deadline.unwrap_or_else(Instant::now)), if deadline.is_some() => Event::Timer,
            }
        };
        let mut close: Option<(u16, String)> = None;
        let mut process_input = false;
        // Handle what was received, as far as the pipeline allows.
        match event {
            Event::Read(Ok(0)) | Event::Read(Err(_)) => break,
            Event::Read(Ok(_)) => process_input = true,
            Event::Published => {
                let mut encoder = Encoder {
                    codec: &mut codec,
                    out: &mut wbuf,
                };
                if let Some(p) = pipeline.as_mut() {
                    if let Some(answer) = p.answered.take() {
                        session.publish_done(answer, &mut encoder);
                    }
                    // Every answer already there goes into the same write. (The select above
                    // polls the oldest again with the connection's waker.)
                    let mut cx = Context::from_waker(Waker::noop());
                    while let Some(answer) = next_answer(&mut p.in_flight, &mut cx) {
                        session.publish_done(answer, &mut encoder);
                    }
                }
                process_input = closing.is_none();
            }
            Event::Wake => {}
            Event::Timer => {
                if !session.is_authenticated() && Instant::now() >= auth_deadline {
                    close = Some((CLOSE_POLICY, "authentication timeout".into()));
                }
            }
        }
        if process_input {
            loop {
                let held = match pipeline.as_mut() {
                    Some(p) if p.in_flight.len() >= max_in_flight => break,
                    Some(p) if p.held.is_some() => {
                        if !p.in_flight.is_empty() {
                            break;
                        }
                        p.held.take()
                    }
                    _ => None,
                };
                let text = match held {
                    Some(Held::Text(text)) => text,
                    Some(Held::Close(code)) => {
                        close = Some((code, String::new()));
                        break;
                    }
                    None => match codec.decode(&mut rbuf) {
                        Ok(None) => break,
                        Ok(Some(Message::Text(t))) => t,
                        Ok(Some(Message::Binary(b))) => match String::from_utf8(b) {
                            Ok(t) => t,
                            Err(_) => {
                                close = Some((1007, "binary message is not UTF-8 JSON".into()));
                                break;
                            }
                        },
                        Ok(Some(Message::Ping(p))) => {
                            let _ = codec.encode_pong(&p, &mut wbuf);
                            continue;
                        }
                        Ok(Some(Message::Pong(_))) => continue,
                        Ok(Some(Message::Close(frame))) => {
                            let code = frame.map_or(1000, |f| f.code);
                            let code = if code == 1005 || code == 1006 {
                                1000
                            } else {
                                code
                            };
                            match pipeline.as_mut() {
                                Some(p) if !p.in_flight.is_empty() => {
                                    p.held = Some(Held::Close(code));
                                    continue; // stops at the top: held behind the pipeline
                                }
                                _ => {
                                    close = Some((code, String::new()));
                                    break;
                                }
                            }
                        }
                        Err(e) => {
                            tracing::debug!(conn = %session.id(), error = %e, "protocol error");
                            let mut reason = e.to_string();
                            reason.truncate(120);
                            close = Some((e.close_code(), reason));
                            break;
                        }
                    },
                };
                let in_flight = pipeline.as_ref().is_some_and(|p| !p.in_flight.is_empty());
                let step = session
                    .on_text_pipelined(
                        &text,
                        &mut Encoder {
                            codec: &mut codec,
                            out: &mut wbuf,
                        },
                        &broker.backend,
                        in_flight,
                    )
                    .await;
                match step {
                    Step::Done(Flow::Continue) => {}
                    Step::Done(Flow::Close { code, reason }) => {
                        close = Some((code, reason.into()));
                        break;
                    }
                    Step::Publish(publish) => pipeline
                        .get_or_insert_with(Pipeline::new)
                        .in_flight
                        .push_back(publish),
                    Step::Wait => {
                        // `Wait` only comes with publishes in flight: the pipeline exists.
                        if let Some(p) = pipeline.as_mut() {
                            p.held = Some(Held::Text(text));
                        }
                    }
                }
            }
        }
        if rbuf.is_empty() && rbuf.capacity() > 0 {
            // Idle connections keep no read buffer.
            rbuf = BytesMut::new();
        }
        if close.is_none()
            && closing.is_none()
            && let Flow::Close { code, reason } = session.pump(
                &mut Encoder {
                    codec: &mut codec,
                    out: &mut wbuf,
                },
                std::time::Instant::now(),
            )
        {
            closing = Some((code, reason.into()));
        }
        if close.is_none()
            && closing.is_some()
            && pipeline.as_ref().is_none_or(|p| p.in_flight.is_empty())
        {
            close = closing.take();
        }
        if let Some((code, reason)) = &close
            && codec.encode_close(*code, reason, &mut wbuf).is_err()
        {
            codec.encode_close_empty(&mut wbuf);
        }
        if !wbuf.is_empty() {
            // A peer that stopped reading must not pin its task and buffers forever: its
            // subscriptions hold nothing more meanwhile (they catch up from history), and past
            // the write timeout it is cut off.
            match timeout(write_timeout, io.write_all_bytes(&wbuf)).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => break,
                Err(_) => {
                    tracing::info!(conn = %session.id(), "closing a connection that stopped reading (write timeout)");
                    broker
                        .stats
                        .catch_up
                        .cut_off
                        .fetch_add(1, Ordering::Relaxed);
                    break;
                }
            }
            wbuf.clear();
            // A busy connection keeps its buffer (regrowing it from nothing every round cost a
            // copy per doubling); one with nothing pending gives it back.
            let busy = !rbuf.is_empty()
                || mailbox.queued_bytes() > 0
                || pipeline.as_ref().is_some_and(|p| !p.in_flight.is_empty());
            if !busy && wbuf.capacity() > KEEP_WRITE_CAPACITY {
                wbuf = Vec::new();
            }
        }
        if rbuf.is_empty() {
            // Nothing half-received: give back what an idle connection does not need (the
            // inflater too if the client compresses each message on its own).
            codec.release_idle_memory();
            if pipeline
                .as_ref()
                .is_some_and(|p| p.in_flight.is_empty() && p.held.is_none())
            {
                pipeline = None;
            }
        }
        zlib.update(codec.zlib_streams_allocated());
        if close.is_some() {
            io.shutdown_write().await;
            // Let the peer read our close frame: closing with its data unread would reset
            // the connection and could destroy the frame in flight.
            let drain = async {
                loop {
                    rbuf.clear();
                    if !matches!(io.read_some(&mut rbuf).await, Ok(n) if n > 0) {
                        break;
                    }
                }
            };
            let _ = timeout(CLOSE_LINGER, drain).await;
            break;
        }
    }
    drop(pipeline);
    drop(session);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::Broker;
    use crate::config::{AppsConfig, ConfigSource, ServerSettings};

    /// The per-connection task is one allocation of this future: keep it small (issue 7's
    /// memory goal is 6 KB per idle connection, everything included).
    #[tokio::test]
    async fn connection_future_is_small() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = tokio::net::TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let peer = client.local_addr().unwrap();
        let settings = ServerSettings::with_defaults(peer, ConfigSource::Content(String::new()));
        let apps = AppsConfig::from_yaml("apps: {}\n").unwrap();
        let broker = Broker::embedded(crate::net::broker_settings(&settings), apps);
        let shared = Arc::new(Shared::new(broker, settings));
        let fut = serve(client, peer, shared);
        let size = std::mem::size_of_val(&fut);
        println!("connection future: {size} bytes");
        assert!(size < 4096, "connection future is {size} bytes");
    }
}
