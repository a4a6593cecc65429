//! The open connection: reading and decoding PDUs, the heartbeat, framing queued publishes.

use std::time::Instant;

use cobra_wire::ws::Message;

use super::reconnect::{Failure, transport_failure};
use super::{Engine, FLUSH_BATCH, HIGH_WATER, READ_BUDGET, READ_PASSES, large};
use crate::error::ErrorKind;
use crate::event::Event;
use crate::session::Output;
use crate::state::State;
use crate::transport::ReadStatus;

impl Engine {
    pub(super) fn drive_open(&mut self, now: Instant) -> Result<(), Failure> {
        for _ in 0..READ_PASSES {
            let status = {
                let Some(conn) = self.conn.as_mut() else {
                    return Ok(());
                };
                conn.io(READ_BUDGET).map_err(transport_failure)?
            };
            self.decode_all()?;
            if self.conn.is_none() {
                return Ok(());
            }
            match status {
                ReadStatus::Eof => {
                    return Err(Failure::new(
                        ErrorKind::ConnectionLost,
                        "connection closed by the peer",
                    ));
                }
                ReadStatus::Drained => break,
                ReadStatus::More => {}
            }
        }
        self.heartbeat(now)?;
        if let Some(sent) = self.session.oldest_request()
            && now.saturating_duration_since(sent) >= self.config.request_timeout
        {
            // A server that stops answering is as dead as one that stops ponging.
            let limit = self.config.request_timeout;
            return Err(Failure::closing(
                ErrorKind::Timeout,
                format!("no answer to a request within {limit:?}"),
                1000,
            ));
        }
        self.flush_queue();
        let Some(conn) = self.conn.as_mut() else {
            return Ok(());
        };
        conn.pump_large(HIGH_WATER);
        conn.flush().map_err(transport_failure)
    }

    pub(super) fn decode_all(&mut self) -> Result<(), Failure> {
        loop {
            let Some(conn) = self.conn.as_mut() else {
                return Ok(());
            };
            let Some(codec) = conn.codec.as_mut() else {
                return Ok(());
            };
            let msg = match codec.decode(&mut conn.rbuf) {
                Ok(Some(m)) => m,
                Ok(None) => return Ok(()),
                Err(e) => {
                    return Err(Failure::closing(
                        ErrorKind::Protocol,
                        e.to_string(),
                        e.close_code(),
                    ));
                }
            };
            match msg {
                Message::Text(text) => self.on_text(&text)?,
                Message::Binary(data) => match std::str::from_utf8(&data) {
                    Ok(text) => self.on_text(text)?,
                    Err(_) => {
                        return Err(Failure::closing(
                            ErrorKind::Protocol,
                            "binary message is not a PDU",
                            1003,
                        ));
                    }
                },
                Message::Ping(data) => {
                    if let Some(codec) = conn.codec.as_mut() {
                        // A ping payload is at most 125 bytes, so the pong always encodes.
                        let _ = codec.encode_pong(&data, conn.out.vec());
                    }
                }
                Message::Pong(data) => {
                    if let Some((payload, sent)) = conn.ping
                        && data == payload
                    {
                        conn.ping = None;
                        conn.pong_deadline = None;
                        let rtt = sent.elapsed();
                        self.emit(Event::Pong { rtt });
                    }
                }
                Message::Close(frame) => {
                    let (code, reason) = frame
                        .map(|f| (f.code, f.reason))
                        .unwrap_or((1005, String::new()));
                    if let Some(codec) = conn.codec.as_mut() {
                        // Echo the close (RFC 6455 §5.5.1), then drop the connection.
                        if cobra_wire::ws::is_valid_close_code(code) {
                            let _ = codec.encode_close(code, "", conn.out.vec());
                        } else {
                            codec.encode_close_empty(conn.out.vec());
                        }
                        let _ = conn.flush();
                    }
                    return Err(Failure {
                        remote_close: Some((code, reason.clone())),
                        ..Failure::new(
                            ErrorKind::ClosedByServer,
                            format!("server closed: {code} {reason}"),
                        )
                    });
                }
            }
        }
    }

    pub(super) fn on_text(&mut self, text: &str) -> Result<(), Failure> {
        let mut out = std::mem::take(&mut self.outputs);
        let result = self.session.on_text(text, &mut out);
        self.handle_outputs(out);
        result.map_err(|e| {
            let code = if e.kind == ErrorKind::AuthenticationFailed {
                1000
            } else {
                1002
            };
            Failure::closing(e.kind, e.message, code)
        })
    }

    pub(super) fn handle_outputs(&mut self, mut out: Vec<Output>) {
        for o in out.drain(..) {
            match o {
                Output::Send(text) => {
                    if let Some(conn) = self.conn.as_mut() {
                        conn.send_text(text);
                    }
                }
                Output::Event(e) => self.emit(e),
                Output::Ack(id) => {
                    if self.shared.lock_queue().ack(id) {
                        self.emit(Event::Published { id });
                    }
                }
                Output::Refused(id, reason) => {
                    if self.shared.lock_queue().refuse(id) {
                        self.emit(Event::PublishDropped { id, reason });
                    }
                }
                Output::Authenticated => {
                    self.backoff.reset();
                    self.attempt = 0;
                    if let Some(conn) = self.conn.as_mut() {
                        conn.deadline = None;
                    }
                    self.set_state(State::Connected);
                }
                Output::SubscriptionGone(id) => {
                    self.shared.lock_subscriptions().remove(&id);
                }
            }
        }
        // Keep the allocation for the next step.
        if self.outputs.capacity() < out.capacity() {
            self.outputs = out;
        }
    }

    pub(super) fn heartbeat(&mut self, now: Instant) -> Result<(), Failure> {
        let interval = self.config.ping_interval;
        let pong_timeout = self.config.pong_timeout;
        let Some(conn) = self.conn.as_mut() else {
            return Ok(());
        };
        if conn.pong_deadline.is_some_and(|d| d <= now) {
            return Err(Failure::new(
                ErrorKind::PongTimeout,
                format!("no pong within {pong_timeout:?}"),
            ));
        }
        if conn.ping.is_none() && conn.next_ping.is_some_and(|t| t <= now) {
            conn.ping_counter += 1;
            let payload = conn.ping_counter.to_be_bytes();
            if let Some(codec) = conn.codec.as_mut() {
                let _ = codec.encode_ping(&payload, conn.out.vec());
            }
            conn.ping = Some((payload, now));
            conn.pong_deadline = Some(now + pong_timeout);
            conn.next_ping = Some(now + interval);
        } else if conn.ping.is_some() && conn.next_ping.is_some_and(|t| t <= now) {
            // A ping is still out: the next one is due once its pong (or timeout) arrives.
            conn.next_ping = Some(now + interval);
        }
        Ok(())
    }

    /// Frame queued messages while the socket keeps up.
    pub(super) fn flush_queue(&mut self) {
        if !self.session.is_authenticated() {
            return;
        }
        let Some(conn) = self.conn.as_mut() else {
            return;
        };
        for _ in 0..FLUSH_BATCH {
            if conn.large.is_some() || conn.out.len() >= HIGH_WATER {
                return;
            }
            let Some(entry) = self.shared.lock_queue().next_unsent() else {
                return;
            };
            self.pdu.clear();
            entry.write_pdu(&mut self.pdu);
            if self.pdu.len() > large::LARGE_MESSAGE {
                conn.send_text(std::mem::take(&mut self.pdu));
            } else {
                conn.send_str(&self.pdu);
            }
        }
    }
}
