//! The RTM session above the WebSocket, sans I/O: authentication, request/response matching,
//! subscriptions (kept across connections and resumed from the last position), PDU dispatch.
//!
//! The engine feeds it received texts and commands; it answers with [`Output`]s (PDUs to send,
//! events, acks). It never touches a socket, so every protocol decision lives here.

use std::collections::{HashMap, VecDeque};
use std::time::Instant;

use cobra_wire::pdu::{self, Pdu, action};
use cobra_wire::position::Position;
use crossbeam_channel::Sender;
use serde_json::Value;

use crate::client::SubscribeOptions;
use crate::error::{Error, ErrorKind};
use crate::event::{Event, PublishId};

/// Most user requests held while offline; more are refused at once.
const MAX_WAITING_REQUESTS: usize = 1024;

/// A blocking request from a handle (`read`, `write`, `delete`, `request`).
pub(crate) struct Request {
    pub action: String,
    pub body: Value,
    pub reply: Sender<Result<Value, Error>>,
    pub deadline: Instant,
}

impl Request {
    fn answer(self, result: Result<Value, Error>) {
        // The caller may have timed out and gone: nothing to do then.
        let _ = self.reply.send(result);
    }
}

/// What the engine must do after a session step.
pub(crate) enum Output {
    /// Send this PDU text.
    Send(String),
    /// Report this event.
    Event(Event),
    /// `rtm/publish/ok` for this id.
    Ack(PublishId),
    /// `rtm/publish/error` for this id.
    Refused(PublishId, String),
    /// Authentication succeeded (reset the backoff, start flushing the queue).
    Authenticated,
    /// This subscription ended for good (error from the server).
    SubscriptionGone(String),
}

/// A session failure: the connection must be dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SessionError {
    pub kind: ErrorKind,
    pub message: String,
}

fn fail(kind: ErrorKind, message: impl Into<String>) -> SessionError {
    SessionError {
        kind,
        message: message.into(),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Auth {
    Offline,
    AwaitHandshake(u64),
    AwaitAuthenticate(u64),
    Done,
}

struct Subscription {
    options: SubscribeOptions,
    /// Where to resume: the last position received, else the requested one.
    position: Option<String>,
    received: bool,
}

enum Pending {
    User(Request),
    Subscribe(String),
    Unsubscribe(String),
}

pub(crate) struct Session {
    role: String,
    secret: String,
    auth: Auth,
    next_id: u64,
    subscriptions: Vec<Subscription>,
    /// Requests on the wire and when they were sent.
    pending: HashMap<u64, (Pending, Instant)>,
    waiting: VecDeque<Request>,
}

impl Session {
    pub fn new(role: &str, secret: &str) -> Self {
        Self {
            role: role.to_string(),
            secret: secret.to_string(),
            auth: Auth::Offline,
            next_id: 1,
            subscriptions: Vec::new(),
            pending: HashMap::new(),
            waiting: VecDeque::new(),
        }
    }

    /// When the oldest unanswered request was sent.
    pub fn oldest_request(&self) -> Option<Instant> {
        self.pending.values().map(|(_, sent)| *sent).min()
    }

    pub fn is_authenticated(&self) -> bool {
        self.auth == Auth::Done
    }

    fn id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    /// The WebSocket is open: start authenticating.
    pub fn on_open(&mut self, out: &mut Vec<Output>) {
        let id = self.id();
        let body = pdu::HandshakeBody {
            method: "role_secret".into(),
            data: pdu::HandshakeData {
                role: self.role.clone(),
            },
        };
        out.push(Output::Send(pdu::request(
            action::AUTH_HANDSHAKE,
            id,
            &body,
        )));
        self.auth = Auth::AwaitHandshake(id);
    }

    /// The connection is gone: in-flight requests fail, subscriptions wait for the next one.
    pub fn on_close(&mut self, out: &mut Vec<Output>) {
        self.auth = Auth::Offline;
        for (_, (p, _)) in self.pending.drain() {
            match p {
                Pending::User(r) => r.answer(Err(Error::Cancelled("connection lost".into()))),
                // The subscription is gone with the connection; nothing to resume.
                Pending::Unsubscribe(id) => out.push(Output::Event(Event::Unsubscribed {
                    subscription_id: id,
                })),
                Pending::Subscribe(_) => {}
            }
        }
    }

    /// `disconnect()`: also fail the requests waiting for a connection.
    pub fn cancel_waiting(&mut self, why: &str) {
        for r in self.waiting.drain(..) {
            r.answer(Err(Error::Cancelled(why.into())));
        }
    }

    /// Answer requests whose caller has given up; returns the next deadline.
    pub fn expire(&mut self, now: Instant) -> Option<Instant> {
        let (expired, kept): (VecDeque<_>, VecDeque<_>) =
            self.waiting.drain(..).partition(|r| r.deadline <= now);
        self.waiting = kept;
        for r in expired {
            r.answer(Err(Error::Cancelled(
                "no connection before the timeout".into(),
            )));
        }
        self.waiting.iter().map(|r| r.deadline).min()
    }

    pub fn request(&mut self, req: Request, out: &mut Vec<Output>) {
        if self.is_authenticated() {
            self.send_request(req, out);
        } else if self.waiting.len() >= MAX_WAITING_REQUESTS {
            req.answer(Err(Error::Cancelled(
                "too many requests waiting for a connection".into(),
            )));
        } else {
            self.waiting.push_back(req);
        }
    }

    fn send_request(&mut self, req: Request, out: &mut Vec<Output>) {
        let id = self.id();
        out.push(Output::Send(pdu::request(&req.action, id, &req.body)));
        self.pending
            .insert(id, (Pending::User(req), Instant::now()));
    }

    pub fn subscribe(&mut self, options: SubscribeOptions, out: &mut Vec<Output>) {
        let sub = Subscription {
            position: options.position.clone(),
            options,
            received: false,
        };
        if self.is_authenticated() {
            self.send_subscribe(&sub, out);
        }
        self.subscriptions.push(sub);
    }

    fn send_subscribe(&mut self, sub: &Subscription, out: &mut Vec<Output>) {
        let o = &sub.options;
        let body = pdu::SubscribeBody {
            channel: (!o.channel.is_empty()).then(|| o.channel.clone()),
            subscription_id: o.subscription_id.clone(),
            filter: o.filter.clone(),
            position: sub.position.clone(),
            batch_size: o.batch_size,
            fast_forward: o.fast_forward.then_some(true),
        };
        let id = self.id();
        out.push(Output::Send(pdu::request(action::SUBSCRIBE, id, &body)));
        self.pending
            .insert(id, (Pending::Subscribe(o.id().to_string()), Instant::now()));
    }

    pub fn unsubscribe(&mut self, subscription_id: &str, out: &mut Vec<Output>) {
        self.subscriptions
            .retain(|s| s.options.id() != subscription_id);
        if self.is_authenticated() {
            let id = self.id();
            let body = pdu::UnsubscribeBody {
                subscription_id: subscription_id.to_string(),
            };
            out.push(Output::Send(pdu::request(action::UNSUBSCRIBE, id, &body)));
            self.pending.insert(
                id,
                (
                    Pending::Unsubscribe(subscription_id.to_string()),
                    Instant::now(),
                ),
            );
        } else {
            out.push(Output::Event(Event::Unsubscribed {
                subscription_id: subscription_id.to_string(),
            }));
        }
    }

    fn subscription_mut(&mut self, id: &str) -> Option<&mut Subscription> {
        self.subscriptions.iter_mut().find(|s| s.options.id() == id)
    }

    fn remove_subscription(&mut self, id: &str, out: &mut Vec<Output>) -> bool {
        let before = self.subscriptions.len();
        self.subscriptions.retain(|s| s.options.id() != id);
        let removed = before != self.subscriptions.len();
        if removed {
            out.push(Output::SubscriptionGone(id.to_string()));
        }
        removed
    }

    /// A text message from the server.
    pub fn on_text(&mut self, text: &str, out: &mut Vec<Output>) -> Result<(), SessionError> {
        let pdu = Pdu::parse(text).map_err(|e| fail(ErrorKind::Protocol, e.to_string()))?;
        let id = pdu.id_u64();
        match &*pdu.action {
            "auth/handshake/ok" => self.on_handshake_ok(&pdu, id, out),
            "auth/handshake/error" | "auth/authenticate/error" => {
                let e = error_body(&pdu);
                Err(fail(
                    ErrorKind::AuthenticationFailed,
                    format!("{}: {}", e.0, e.1),
                ))
            }
            "auth/authenticate/ok" => {
                if !matches!(self.auth, Auth::AwaitAuthenticate(_)) {
                    return Err(fail(ErrorKind::Protocol, "unexpected auth/authenticate/ok"));
                }
                self.auth = Auth::Done;
                // State first, so a listener sees `Connected` when the event arrives.
                out.push(Output::Authenticated);
                out.push(Output::Event(Event::Authenticated));
                self.after_authentication(out);
                Ok(())
            }
            "rtm/publish/ok" => {
                if let Some(id) = id {
                    out.push(Output::Ack(id));
                }
                Ok(())
            }
            "rtm/publish/error" => {
                if let Some(id) = id {
                    let (error, reason) = error_body(&pdu);
                    out.push(Output::Refused(
                        id,
                        format!("refused by the server: {error}: {reason}"),
                    ));
                }
                Ok(())
            }
            action::SUBSCRIPTION_DATA => self.on_data(&pdu, out),
            action::SUBSCRIPTION_INFO => {
                let info: Value = pdu.body_as().unwrap_or(Value::Null);
                let subscription_id = info
                    .get("subscription_id")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string();
                if let Some(pos) = info.get("position").and_then(Value::as_str)
                    && let Some(sub) = self.subscription_mut(&subscription_id)
                {
                    sub.position = Some(pos.to_string());
                }
                out.push(Output::Event(Event::SubscriptionInfo {
                    subscription_id,
                    info,
                }));
                Ok(())
            }
            action::SUBSCRIPTION_ERROR => {
                let body: pdu::SubscriptionInfo = pdu.body_as().unwrap_or_default();
                self.remove_subscription(&body.subscription_id, out);
                out.push(Output::Event(Event::SubscriptionError {
                    subscription_id: body.subscription_id,
                    error: body.error.unwrap_or_default(),
                    reason: body.reason.unwrap_or_default(),
                }));
                Ok(())
            }
            _ => self.on_response(&pdu, id, out),
        }
    }

    fn on_handshake_ok(
        &mut self,
        pdu: &Pdu<'_>,
        id: Option<u64>,
        out: &mut Vec<Output>,
    ) -> Result<(), SessionError> {
        let Auth::AwaitHandshake(_) = self.auth else {
            return Err(fail(ErrorKind::Protocol, "unexpected auth/handshake/ok"));
        };
        let _ = id;
        let body: pdu::HandshakeOkBody = pdu
            .body_as()
            .map_err(|e| fail(ErrorKind::Protocol, e.to_string()))?;
        let data = body.data;
        out.push(Output::Event(Event::Handshake {
            connection_id: data.connection_id.unwrap_or_default(),
            server_version: data.version.unwrap_or_default(),
        }));
        let hash = cobra_wire::auth::role_secret_hash(&self.secret, &data.nonce);
        let body = pdu::AuthenticateBody {
            method: "role_secret".into(),
            credentials: pdu::Credentials { hash },
        };
        let id = self.id();
        out.push(Output::Send(pdu::request(
            action::AUTH_AUTHENTICATE,
            id,
            &body,
        )));
        self.auth = Auth::AwaitAuthenticate(id);
        Ok(())
    }

    /// Re-subscribe everything from its last position, then send the requests that waited.
    fn after_authentication(&mut self, out: &mut Vec<Output>) {
        let subs = std::mem::take(&mut self.subscriptions);
        for sub in &subs {
            self.send_subscribe(sub, out);
        }
        self.subscriptions = subs;
        let now = Instant::now();
        while let Some(req) = self.waiting.pop_front() {
            if req.deadline > now {
                self.send_request(req, out);
            } else {
                req.answer(Err(Error::Cancelled(
                    "no connection before the timeout".into(),
                )));
            }
        }
    }

    fn on_data(&mut self, pdu: &Pdu<'_>, out: &mut Vec<Output>) -> Result<(), SessionError> {
        let data: pdu::SubscriptionData<'_> = pdu
            .body_borrowed()
            .map_err(|e| fail(ErrorKind::Protocol, e.to_string()))?;
        let Some(sub) = self.subscription_mut(&data.subscription_id) else {
            // Data racing an unsubscribe: drop it.
            return Ok(());
        };
        if let Some(p) = &data.position {
            sub.position = Some(p.clone());
        }
        sub.received = true;
        let mut messages = Vec::with_capacity(data.messages.len());
        for m in &data.messages {
            // The PDU parsed, so each message is valid JSON; a `Value` can still refuse one (a
            // number beyond the range of a double). Failing the batch would drop its other
            // messages, and the resume position already points past it: skip only that one.
            match serde_json::from_str(m.get()) {
                Ok(v) => messages.push(v),
                Err(e) => log::warn!(
                    "cobra: subscription {}: a message skipped, it cannot be represented: {e}",
                    data.subscription_id
                ),
            }
        }
        out.push(Output::Event(Event::SubscriptionData {
            subscription_id: data.subscription_id,
            position: data.position,
            messages,
        }));
        Ok(())
    }

    fn on_response(
        &mut self,
        pdu: &Pdu<'_>,
        id: Option<u64>,
        out: &mut Vec<Output>,
    ) -> Result<(), SessionError> {
        let outcome = pdu.outcome();
        let pending = match (outcome, id) {
            (Some(_), Some(id)) => self.pending.remove(&id).map(|(p, _)| p),
            _ => None,
        };
        let Some(pending) = pending else {
            if pdu.action.is_empty() || outcome == Some("error") {
                let (e, r) = error_body(pdu);
                log::warn!("server error {}: {e}: {r}", pdu.action);
            } else {
                log::debug!("ignoring unexpected PDU {}", pdu.action);
            }
            return Ok(());
        };
        let ok = outcome == Some("ok");
        match pending {
            Pending::User(req) => {
                let result = if ok {
                    Ok(pdu.body_as::<Value>().unwrap_or(Value::Null))
                } else {
                    let (error, reason) = error_body(pdu);
                    Err(Error::Server {
                        action: req.action.clone(),
                        error,
                        reason,
                    })
                };
                req.answer(result);
            }
            Pending::Subscribe(sub_id) => {
                if ok {
                    let body: pdu::SubscribeOkBody = pdu.body_as().unwrap_or_default();
                    if let Some(sub) = self.subscription_mut(&sub_id) {
                        // "Only new" subscriptions resume from where the server says they began,
                        // so nothing published while we reconnect is missed.
                        if !sub.received
                            && sub.position.is_none()
                            && let Some(p) = &body.position
                            && p.parse::<Position>().is_ok()
                        {
                            sub.position = Some(p.clone());
                        }
                        out.push(Output::Event(Event::Subscribed {
                            subscription_id: sub_id,
                            position: body.position,
                        }));
                    }
                } else {
                    let (error, reason) = error_body(pdu);
                    if self.remove_subscription(&sub_id, out) {
                        out.push(Output::Event(Event::SubscriptionError {
                            subscription_id: sub_id,
                            error,
                            reason,
                        }));
                    }
                }
            }
            Pending::Unsubscribe(sub_id) => {
                if !ok {
                    let (error, reason) = error_body(pdu);
                    log::debug!("unsubscribe {sub_id}: {error}: {reason}");
                }
                out.push(Output::Event(Event::Unsubscribed {
                    subscription_id: sub_id,
                }));
            }
        }
        Ok(())
    }
}

fn error_body(pdu: &Pdu<'_>) -> (String, String) {
    let body: pdu::ErrorBody = pdu.body_as().unwrap_or_default();
    (body.error, body.reason.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unrepresentable_message_is_skipped_not_the_batch() {
        let mut session = Session::new("role", "secret");
        let mut out = Vec::new();
        session.subscribe(SubscribeOptions::new("c"), &mut out);
        out.clear();
        let pdu = r#"{"action":"rtm/subscription/data","body":{"subscription_id":"c","position":"1-3","messages":[{"a":1},{"x":1e400},{"b":2}]}}"#;
        session
            .on_text(pdu, &mut out)
            .expect("the batch is accepted");
        let delivered: Vec<_> = out
            .iter()
            .filter_map(|o| match o {
                Output::Event(Event::SubscriptionData {
                    messages, position, ..
                }) => Some((messages.clone(), position.clone())),
                _ => None,
            })
            .collect();
        assert_eq!(
            delivered,
            vec![(
                vec![serde_json::json!({"a": 1}), serde_json::json!({"b": 2})],
                Some("1-3".to_string())
            )]
        );
    }
}
