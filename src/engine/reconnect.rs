//! How a connection ends (a local close, a failure, the server's close) and the next attempt
//! is scheduled with backoff.

use std::time::Instant;

use cobra_wire::ws::Message;

use super::conn::{Conn, Phase};
use super::{CLOSE_TIMEOUT, Engine, Mode, READ_BUDGET};
use crate::error::ErrorKind;
use crate::event::{ClosedBy, Event};
use crate::state::State;
use crate::transport::{ReadStatus, TransportError};

/// Why a connection ends.
pub(super) struct Failure {
    pub(super) kind: ErrorKind,
    pub(super) message: String,
    /// Close frame we send (code), if the WebSocket is open.
    pub(super) send_close: Option<u16>,
    /// The server's close frame, if it sent one.
    pub(super) remote_close: Option<(u16, String)>,
}

impl Failure {
    pub(super) fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            send_close: None,
            remote_close: None,
        }
    }
    pub(super) fn closing(kind: ErrorKind, message: impl Into<String>, code: u16) -> Self {
        Self {
            send_close: Some(code),
            ..Self::new(kind, message)
        }
    }
}

pub(super) fn transport_failure(e: TransportError) -> Failure {
    match e {
        #[cfg(feature = "tls")]
        TransportError::Tls(e) => Failure::new(ErrorKind::Tls, e.to_string()),
        TransportError::Io(e) => Failure::new(ErrorKind::ConnectionLost, e.to_string()),
    }
}

impl Engine {
    /// Drop the current connection attempt or connection. `graceful`: send a close frame and
    /// let it finish the close handshake in the background (at most [`CLOSE_TIMEOUT`]).
    pub(super) fn close(&mut self, by: ClosedBy, code: u16, reason: &str, graceful: bool) {
        let Some(mut conn) = self.conn.take() else {
            return;
        };
        let was_open = conn.is_open();
        if was_open {
            conn.large = None;
            if graceful && let Some(codec) = conn.codec.as_mut() {
                let _ = codec.encode_close(code, reason, conn.out.vec());
                if conn.flush().is_ok() {
                    conn.phase = Phase::Closing;
                    conn.deadline = Some(Instant::now() + CLOSE_TIMEOUT);
                    conn.next_ping = None;
                    conn.pong_deadline = None;
                    conn.more_to_read = false;
                    let previous = self.closing.replace(conn);
                    self.drop_conn(previous);
                } else {
                    self.drop_conn(Some(conn));
                }
            } else {
                self.drop_conn(Some(conn));
            }
            self.emit(Event::Closed {
                code,
                reason: reason.to_string(),
                by,
            });
        } else {
            self.drop_conn(Some(conn));
        }
        self.connection_gone();
    }

    pub(super) fn drop_conn(&mut self, conn: Option<Conn>) {
        if let Some(mut c) = conn
            && let Some(s) = c.stream.as_mut()
        {
            let _ = self.poll.registry().deregister(s.tcp());
        }
    }

    /// Bookkeeping shared by every way a connection ends.
    pub(super) fn connection_gone(&mut self) {
        let mut out = std::mem::take(&mut self.outputs);
        self.session.on_close(&mut out);
        self.handle_outputs(out);
        self.shared
            .lock_queue()
            .connection_lost(self.config.delivery);
        self.report_drops();
    }

    /// Serve the closing connection: wait for the server's close frame, EOF or the deadline.
    pub(super) fn step_closing(&mut self, now: Instant) {
        let Some(conn) = self.closing.as_mut() else {
            return;
        };
        let done = conn.deadline.is_none_or(|d| d <= now)
            || match conn.io(READ_BUDGET) {
                Err(_) | Ok(ReadStatus::Eof) => true,
                Ok(_) => {
                    let mut done = false;
                    if let Some(codec) = conn.codec.as_mut() {
                        loop {
                            match codec.decode(&mut conn.rbuf) {
                                Ok(Some(Message::Close(_))) | Err(_) => {
                                    done = true;
                                    break;
                                }
                                Ok(Some(_)) => {}
                                Ok(None) => break,
                            }
                        }
                    }
                    done
                }
            };
        if done {
            let conn = self.closing.take();
            self.drop_conn(conn);
        }
    }

    /// A connection attempt or connection failed: report it and schedule the next attempt.
    pub(super) fn fail(&mut self, f: Failure) {
        let was_open = self.conn.as_ref().is_some_and(Conn::is_open);
        if self.mode == Mode::Active {
            // State first: listeners see it when the Closed and Error events arrive.
            self.set_state(State::Reconnecting);
        }
        if let Some(mut conn) = self.conn.take() {
            if was_open && let Some(code) = f.send_close {
                conn.large = None;
                if let Some(codec) = conn.codec.as_mut() {
                    let _ = codec.encode_close(code, &f.message, conn.out.vec());
                    let _ = conn.flush();
                }
            }
            self.drop_conn(Some(conn));
        }
        if was_open {
            let (code, reason, by) = match (&f.remote_close, f.send_close) {
                (Some((code, reason)), _) => (*code, reason.clone(), ClosedBy::ByRemote),
                (None, Some(code)) => (code, f.message.clone(), ClosedBy::ByLocal),
                (None, None) if f.kind == ErrorKind::PongTimeout => {
                    (1006, f.message.clone(), ClosedBy::ByLocal)
                }
                (None, None) => (1006, f.message.clone(), ClosedBy::ByRemote),
            };
            self.emit(Event::Closed { code, reason, by });
        }
        self.connection_gone();
        log::info!("cobra: {:?}: {}", f.kind, f.message);
        // A draining server asks for a reconnect elsewhere: not an error, no backoff.
        let drained =
            matches!(&f.remote_close, Some((code, _)) if *code == cobra_wire::ws::CLOSE_DRAIN);
        if drained && self.mode == Mode::Active {
            let wait = self.backoff.drain_delay();
            self.retry_at = Some(Instant::now() + wait);
            self.emit(Event::Reconnecting {
                attempt: self.attempt + 1,
                wait,
            });
            return;
        }
        if self.mode != Mode::Active {
            self.emit(Event::Error {
                kind: f.kind,
                message: f.message,
                retry_count: self.backoff.failures(),
                next_wait: None,
            });
            return;
        }
        let wait = self.backoff.next_delay(f.kind.is_permanent());
        self.retry_at = Some(Instant::now() + wait);
        self.set_state(State::Reconnecting);
        self.emit(Event::Error {
            kind: f.kind,
            message: f.message,
            retry_count: self.backoff.failures(),
            next_wait: Some(wait),
        });
        self.emit(Event::Reconnecting {
            attempt: self.attempt + 1,
            wait,
        });
    }
}
