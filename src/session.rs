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

use crate::error::{Error, ErrorKind};
use crate::event::{Event, PublishId};
use crate::subscription::SubscribeOptions;

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
    pub(crate) fn new(role: &str, secret: &str) -> Self {
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
    pub(crate) fn oldest_request(&self) -> Option<Instant> {
        self.pending.values().map(|(_, sent)| *sent).min()
    }

    pub(crate) fn is_authenticated(&self) -> bool {
        self.auth == Auth::Done
    }

    fn id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    /// The WebSocket is open: start authenticating.
    pub(crate) fn on_open(&mut self, out: &mut Vec<Output>) {
        let id = self.id();
        let body = pdu::HandshakeBody {
            method: pdu::ROLE_SECRET.into(),
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
    pub(crate) fn on_close(&mut self, out: &mut Vec<Output>) {
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
    pub(crate) fn cancel_waiting(&mut self, why: &str) {
        for r in self.waiting.drain(..) {
            r.answer(Err(Error::Cancelled(why.into())));
        }
    }

    /// Answer requests whose caller has given up; returns the next deadline.
    pub(crate) fn expire(&mut self, now: Instant) -> Option<Instant> {
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

    pub(crate) fn request(&mut self, req: Request, out: &mut Vec<Output>) {
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

    pub(crate) fn subscribe(&mut self, options: SubscribeOptions, out: &mut Vec<Output>) {
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
            batch_size: o.batch_size.map(u64::from),
            fast_forward: o.fast_forward.then_some(true),
        };
        let id = self.id();
        out.push(Output::Send(pdu::request(action::SUBSCRIBE, id, &body)));
        self.pending
            .insert(id, (Pending::Subscribe(o.id().to_string()), Instant::now()));
    }

    pub(crate) fn unsubscribe(&mut self, subscription_id: &str, out: &mut Vec<Output>) {
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
    pub(crate) fn on_text(
        &mut self,
        text: &str,
        out: &mut Vec<Output>,
    ) -> Result<(), SessionError> {
        let pdu = Pdu::parse(text).map_err(|e| fail(ErrorKind::Protocol, e.to_string()))?;
        let id = pdu.id_u64();
        match &*pdu.action {
            action::AUTH_HANDSHAKE_OK => self.on_handshake_ok(&pdu, id, out),
            action::AUTH_HANDSHAKE_ERROR | action::AUTH_AUTHENTICATE_ERROR => {
                let e = error_body(&pdu);
                Err(fail(
                    ErrorKind::AuthenticationFailed,
                    format!("{}: {}", e.0, e.1),
                ))
            }
            action::AUTH_AUTHENTICATE_OK => {
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
            action::PUBLISH_OK => {
                if let Some(id) = id {
                    out.push(Output::Ack(id));
                }
                Ok(())
            }
            action::PUBLISH_ERROR => {
                if let Some(id) = id {
                    let (error, reason) = error_body(&pdu);
                    out.push(Output::Refused(
                        id,
                        format!("refused by the server: {error}: {reason}"),
                    ));
                }
                Ok(())
            }
            action::SUBSCRIPTION_DATA => self.on_data(text, &pdu, out),
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
            method: pdu::ROLE_SECRET.into(),
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

    fn on_data(
        &mut self,
        text: &str,
        pdu: &Pdu<'_>,
        out: &mut Vec<Output>,
    ) -> Result<(), SessionError> {
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
        if sub.options.raw {
            let messages = crate::raw::share(text, &data.messages);
            out.push(Output::Event(Event::SubscriptionRawData {
                subscription_id: data.subscription_id,
                position: data.position,
                messages,
            }));
            return Ok(());
        }
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

    /// The server half of an in-memory pair (in the style of rustls' client/server pair tests):
    /// it checks the role_secret proof with `cobra_wire::auth`, answers every request, and
    /// records what it was asked. Nothing touches a socket.
    struct MemoryServer {
        secret: &'static str,
        nonce: String,
        /// Every request received: (action, body).
        received: Vec<(String, Value)>,
    }

    impl MemoryServer {
        fn new(secret: &'static str) -> Self {
            Self {
                secret,
                nonce: cobra_wire::auth::new_nonce(),
                received: Vec::new(),
            }
        }

        /// The answer to one request text.
        fn answer(&mut self, text: &str) -> String {
            let pdu = Pdu::parse(text).expect("the client sends valid PDUs");
            let body: Value = pdu.body_as().unwrap_or(Value::Null);
            let id = pdu.id;
            self.received.push((pdu.action.to_string(), body.clone()));
            match &*pdu.action {
                action::AUTH_HANDSHAKE => pdu::ok(
                    action::AUTH_HANDSHAKE,
                    id,
                    &serde_json::json!({"data": {"nonce": self.nonce, "connection_id": "c1"}}),
                ),
                action::AUTH_AUTHENTICATE => {
                    let hash = body["credentials"]["hash"].as_str().unwrap_or("");
                    if cobra_wire::auth::verify(self.secret, &self.nonce, hash) {
                        pdu::ok(action::AUTH_AUTHENTICATE, id, &serde_json::json!({}))
                    } else {
                        pdu::error(
                            action::AUTH_AUTHENTICATE,
                            id,
                            pdu::error_code::AUTHENTICATION_FAILED,
                            "bad hash",
                        )
                    }
                }
                action::SUBSCRIBE => pdu::ok(
                    action::SUBSCRIBE,
                    id,
                    &serde_json::json!({"position": "100-0", "subscription_id": body["subscription_id"]}),
                ),
                other => pdu::ok(other, id, &serde_json::json!({})),
            }
        }
    }

    /// Pumps PDUs between the client session and the server until neither has anything to say;
    /// returns the client's non-`Send` outputs and the first session error.
    fn pump(
        client: &mut Session,
        server: &mut MemoryServer,
        mut out: Vec<Output>,
    ) -> (Vec<Output>, Result<(), SessionError>) {
        let mut kept = Vec::new();
        while !out.is_empty() {
            let mut next = Vec::new();
            for o in out {
                match o {
                    Output::Send(text) => {
                        let answer = server.answer(&text);
                        if let Err(e) = client.on_text(&answer, &mut next) {
                            return (kept, Err(e));
                        }
                    }
                    other => kept.push(other),
                }
            }
            out = next;
        }
        (kept, Ok(()))
    }

    fn connect(client: &mut Session, server: &mut MemoryServer) -> Vec<Output> {
        let mut out = Vec::new();
        client.on_open(&mut out);
        let (kept, result) = pump(client, server, out);
        result.expect("authenticated");
        assert!(client.is_authenticated());
        kept
    }

    fn subscribes(server: &MemoryServer) -> Vec<Value> {
        server
            .received
            .iter()
            .filter(|(a, _)| a == action::SUBSCRIBE)
            .map(|(_, b)| b.clone())
            .collect()
    }

    #[test]
    fn pair_authenticates_and_re_authenticates_on_every_connection() {
        let mut client = Session::new("pubsub", "s3cret");
        let mut server = MemoryServer::new("s3cret");
        let outputs = connect(&mut client, &mut server);
        assert!(outputs.iter().any(|o| matches!(o, Output::Authenticated)));
        client.on_close(&mut Vec::new());
        assert!(!client.is_authenticated());
        // A new connection: a fresh nonce, and the client proves the secret again.
        server.nonce = cobra_wire::auth::new_nonce();
        connect(&mut client, &mut server);
        let actions: Vec<_> = server.received.iter().map(|(a, _)| a.as_str()).collect();
        assert_eq!(
            actions,
            [
                action::AUTH_HANDSHAKE,
                action::AUTH_AUTHENTICATE,
                action::AUTH_HANDSHAKE,
                action::AUTH_AUTHENTICATE
            ]
        );
    }

    #[test]
    fn pair_a_wrong_secret_fails_the_connection() {
        let mut client = Session::new("pubsub", "wrong");
        let mut server = MemoryServer::new("s3cret");
        let mut out = Vec::new();
        client.on_open(&mut out);
        let (_, result) = pump(&mut client, &mut server, out);
        let e = result.expect_err("refused");
        assert_eq!(e.kind, ErrorKind::AuthenticationFailed);
        assert!(!client.is_authenticated());
    }

    #[test]
    fn pair_resubscribes_from_the_last_position_after_a_reconnect() {
        let mut client = Session::new("pubsub", "s3cret");
        let mut server = MemoryServer::new("s3cret");
        let mut out = Vec::new();
        client.subscribe(
            SubscribeOptions::new("fps").filter("select * from fps"),
            &mut out,
        );
        client.subscribe(SubscribeOptions::new("mem"), &mut out);
        assert!(out.is_empty(), "nothing is sent before authentication");
        connect(&mut client, &mut server);
        let first = subscribes(&server);
        assert_eq!(first.len(), 2);
        assert!(
            first.iter().all(|b| b.get("position").is_none()),
            "{first:?}"
        );
        // `fps` receives data up to 1-7; `mem` receives nothing, so it resumes from where the
        // server said it began (the subscribe answer's position), missing nothing meanwhile.
        let data = r#"{"action":"rtm/subscription/data","body":{"subscription_id":"fps","position":"1-7","messages":[{"fps":30}]}}"#;
        client.on_text(data, &mut Vec::new()).unwrap();
        client.on_close(&mut Vec::new());
        server.received.clear();
        connect(&mut client, &mut server);
        let again = subscribes(&server);
        let position_of = |channel: &str| {
            again
                .iter()
                .find(|b| b["channel"] == channel || b["subscription_id"] == channel)
                .and_then(|b| b["position"].as_str().map(str::to_owned))
        };
        assert_eq!(position_of("fps").as_deref(), Some("1-7"), "{again:?}");
        assert_eq!(position_of("mem").as_deref(), Some("100-0"), "{again:?}");
        assert!(again.iter().any(|b| b["filter"] == "select * from fps"));
    }

    #[test]
    fn pair_requests_wait_for_authentication_then_go_out() {
        let mut client = Session::new("pubsub", "s3cret");
        let mut server = MemoryServer::new("s3cret");
        let (tx, rx) = crossbeam_channel::bounded(1);
        let request = Request {
            action: action::READ.to_owned(),
            body: serde_json::json!({"channel": "k"}),
            reply: tx,
            deadline: Instant::now() + std::time::Duration::from_secs(60),
        };
        let mut out = Vec::new();
        client.request(request, &mut out);
        assert!(out.is_empty(), "held while offline");
        connect(&mut client, &mut server);
        assert!(server.received.iter().any(|(a, _)| a == action::READ));
        assert!(rx.try_recv().expect("answered").is_ok());
    }

    /// Publishes live in the queue, not the session: what was sent and not acknowledged when the
    /// connection dropped goes out again on the next one, acknowledged ones do not.
    #[test]
    fn pair_unacknowledged_publishes_are_sent_again_after_a_reconnect() {
        use crate::config::{Config, Delivery};
        use crate::queue::{PublishQueue, Target};
        let config = Config::new("ws://127.0.0.1:1", "_pubsub", "pubsub", "s3cret");
        let mut queue = PublishQueue::new(&config).expect("queue");
        let target = || Target::channel("fps").expect("a channel");
        let a = queue.push(target(), r#"{"n":1}"#.into()).unwrap();
        let b = queue.push(target(), r#"{"n":2}"#.into()).unwrap();
        let sent: Vec<_> = std::iter::from_fn(|| queue.next_unsent())
            .map(|e| e.id)
            .collect();
        assert_eq!(sent, [a, b]);
        assert!(queue.ack(a));
        queue.connection_lost(Delivery::AtLeastOnce);
        let resent: Vec<_> = std::iter::from_fn(|| queue.next_unsent())
            .map(|e| e.id)
            .collect();
        assert_eq!(
            resent,
            [b],
            "only the unacknowledged publish goes out again"
        );
    }
}
