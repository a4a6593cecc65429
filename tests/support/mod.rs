//! A small but real cobra server for the SDK's tests: std::net sockets, one thread per
//! connection, the protocol through `cobra_wire` (server role). It speaks the upgrade (403 for a
//! wrong appkey, `json` subprotocol, permessage-deflate), role_secret auth, publish (acks can be
//! withheld), subscribe with positions and history, unsubscribe, read/write/delete. Faults are
//! injected on purpose: drop every connection, stop reading, stop answering.
//!
//! Also a TCP forwarder that can go silent, and helpers to wait for events with a deadline.

#![allow(dead_code)]

pub(crate) mod cobra_server;

use std::collections::HashMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use cobra::Event;
use cobra_wire::handshake;
use cobra_wire::limits::Limits;
use cobra_wire::pdu::{self, Pdu};
use cobra_wire::pmd::{self, ServerPmdConfig};
use cobra_wire::ws::{Codec, Message, Role};
use serde_json::{Value, json};

pub(crate) const APPKEY: &str = "_pubsub";
pub(crate) const ROLE: &str = "pubsub";
pub(crate) const SECRET: &str = "A5a3BdEfbc6Df5AAFFcadE7F9Dd7F17E";

pub(crate) trait Io: Read + Write + Send {}
impl<T: Read + Write + Send> Io for T {}

/// Wraps an accepted socket (e.g. in TLS).
pub(crate) type Wrap = Arc<dyn Fn(TcpStream) -> Box<dyn Io> + Send + Sync>;

/// What the peer recorded, and its fault switches.
#[derive(Default)]
pub(crate) struct PeerState {
    /// TCP connections accepted.
    pub accepted: AtomicUsize,
    /// Authentications that failed.
    pub auth_failures: AtomicUsize,
    /// Every publish received: (channels, message).
    pub published: Mutex<Vec<(Vec<String>, Value)>>,
    /// History for subscriptions: (channel, message JSON); position of entry i is `1-(i+1)`.
    pub history: Mutex<Vec<(String, String)>>,
    pub kv: Mutex<HashMap<String, String>>,
    /// Subscribe requests received: (subscription id, position asked).
    pub subscribes: Mutex<Vec<(String, Option<String>)>>,
    /// When true, publishes are recorded but never acknowledged.
    pub withhold_acks: AtomicBool,
    /// When true, connection threads stop reading their socket.
    pub stall_reads: AtomicBool,
    /// When true, requests after authentication get no answer at all.
    pub mute: AtomicBool,
    /// Negotiated deflate on the last upgrade.
    pub last_deflate: Mutex<Option<pmd::Negotiated>>,
    /// Last upgrade request's headers.
    pub last_headers: Mutex<Vec<(String, String)>>,
    epoch: AtomicUsize,
    streams: Mutex<Vec<TcpStream>>,
}

impl PeerState {
    pub(crate) fn published_count(&self) -> usize {
        self.published.lock().unwrap().len()
    }
}

pub(crate) struct Peer {
    pub addr: SocketAddr,
    pub state: Arc<PeerState>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

pub(crate) struct PeerOptions {
    pub deflate: bool,
    pub wrap: Option<Wrap>,
}

impl Default for PeerOptions {
    fn default() -> Self {
        Self {
            deflate: true,
            wrap: None,
        }
    }
}

impl Peer {
    pub(crate) fn start() -> Peer {
        Self::with(PeerOptions::default())
    }

    pub(crate) fn with(options: PeerOptions) -> Peer {
        Self::bound(TcpListener::bind("127.0.0.1:0").unwrap(), options)
    }

    /// A peer on an existing listener (e.g. IPv6).
    pub(crate) fn bound(listener: TcpListener, options: PeerOptions) -> Peer {
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(PeerState::default());
        let stop = Arc::new(AtomicBool::new(false));
        let (st, sp) = (state.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let mut workers = Vec::new();
            while !sp.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((tcp, _)) => {
                        st.accepted.fetch_add(1, Ordering::SeqCst);
                        tcp.set_nonblocking(false).unwrap();
                        tcp.set_nodelay(true).unwrap();
                        tcp.set_read_timeout(Some(Duration::from_millis(5)))
                            .unwrap();
                        st.streams.lock().unwrap().push(tcp.try_clone().unwrap());
                        let io: Box<dyn Io> = match &options.wrap {
                            Some(w) => w(tcp),
                            None => Box::new(tcp),
                        };
                        let (st, sp, deflate) = (st.clone(), sp.clone(), options.deflate);
                        workers.push(std::thread::spawn(move || {
                            let _ = serve(io, &st, &sp, deflate);
                        }));
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(2))
                    }
                    Err(_) => break,
                }
            }
            for w in workers {
                let _ = w.join();
            }
        });
        Peer {
            addr,
            state,
            stop,
            thread: Some(thread),
        }
    }

    pub(crate) fn url(&self) -> String {
        format!("ws://{}", self.addr)
    }

    /// Drop every open connection at the TCP level (no close frame).
    pub(crate) fn kill_connections(&self) {
        self.state.epoch.fetch_add(1, Ordering::SeqCst);
        for s in self.state.streams.lock().unwrap().drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        self.kill_connections();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

struct Sub {
    id: String,
    channel: String,
    next: usize,
    pdu_id: u64,
}

fn serve(
    mut io: Box<dyn Io>,
    st: &PeerState,
    stop: &AtomicBool,
    deflate: bool,
) -> std::io::Result<()> {
    let epoch = st.epoch.load(Ordering::SeqCst);
    let limits = Limits {
        max_message_size: 256 << 20,
        max_frame_size: 256 << 20,
        ..Limits::DEFAULT
    };
    let mut buf = Vec::new();
    let mut chunk = vec![0u8; 64 << 10];
    let alive = || !stop.load(Ordering::Relaxed) && st.epoch.load(Ordering::SeqCst) == epoch;
    // Upgrade.
    let (req, used) = loop {
        if !alive() {
            return Ok(());
        }
        match io.read(&mut chunk) {
            Ok(0) => return Ok(()),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => continue,
            Err(e) => return Err(e),
        }
        if let Some(r) = handshake::parse_request(&buf, &limits).map_err(std::io::Error::other)? {
            break r;
        }
    };
    *st.last_headers.lock().unwrap() = req.headers.clone();
    if req.query_param("appkey").as_deref() != Some(APPKEY) {
        io.write_all(&handshake::http_response(
            403,
            "Forbidden",
            Some("text/plain"),
            b"unknown appkey",
            &[],
        ))?;
        return Ok(());
    }
    let negotiated = if deflate {
        let offers: Vec<&str> = req.extensions.iter().map(String::as_str).collect();
        pmd::server_negotiate(&ServerPmdConfig::default(), &offers)
    } else {
        None
    };
    *st.last_deflate.lock().unwrap() = negotiated.as_ref().map(|n| n.0);
    let proto = req
        .subprotocols
        .iter()
        .any(|p| p == "json")
        .then_some("json");
    let key = req.ws_key.clone().unwrap_or_default();
    io.write_all(&handshake::accept_response(
        &key,
        proto,
        negotiated.as_ref().map(|n| n.1.as_str()),
        &[],
    ))?;
    let mut codec = Codec::new(Role::Server, limits, negotiated.map(|n| n.0));
    let mut rbuf = BytesMut::from(&buf[used..]);
    let mut nonce = String::new();
    let mut authed = false;
    let mut subs: Vec<Sub> = Vec::new();
    let mut out = Vec::new();
    loop {
        if !alive() {
            return Ok(());
        }
        if st.stall_reads.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(5));
            continue;
        }
        match io.read(&mut chunk) {
            Ok(0) => return Ok(()),
            Ok(n) => rbuf.extend_from_slice(&chunk[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) => return Err(e),
        }
        loop {
            let msg = match codec.decode(&mut rbuf) {
                Ok(Some(m)) => m,
                Ok(None) => break,
                Err(e) => {
                    let _ = codec.encode_close(e.close_code(), "", &mut out);
                    let _ = io.write_all(&out);
                    return Ok(());
                }
            };
            match msg {
                Message::Text(text) => {
                    for reply in handle(&text, st, &mut nonce, &mut authed, &mut subs) {
                        codec.encode_text(&reply, &mut out);
                    }
                }
                Message::Ping(p) => {
                    let _ = codec.encode_pong(&p, &mut out);
                }
                Message::Close(_) => {
                    let _ = codec.encode_close(1000, "", &mut out);
                    let _ = io.write_all(&out);
                    return Ok(());
                }
                _ => {}
            }
        }
        // Live delivery from the shared history.
        {
            let history = st.history.lock().unwrap();
            for sub in &mut subs {
                while sub.next < history.len() {
                    let (channel, message) = &history[sub.next];
                    sub.next += 1;
                    if *channel == sub.channel {
                        let mut text = String::new();
                        pdu::subscription_data(
                            &mut text,
                            &sub.id,
                            sub.pdu_id,
                            &format!("1-{}", sub.next),
                            [message],
                        );
                        sub.pdu_id += 1;
                        codec.encode_text(&text, &mut out);
                    }
                }
            }
        }
        if !out.is_empty() {
            io.write_all(&out)?;
            io.flush()?;
            out.clear();
        }
    }
}

fn handle(
    text: &str,
    st: &PeerState,
    nonce: &mut String,
    authed: &mut bool,
    subs: &mut Vec<Sub>,
) -> Vec<String> {
    let Ok(p) = Pdu::parse(text) else {
        return vec![
            json!({"action": "bad/error", "id": 1, "body": {"error": "bad_schema"}}).to_string(),
        ];
    };
    let action = p.action.to_string();
    let id = p.id;
    let ok = |body: Value| pdu::ok(&action, id, &body);
    let err = |code: &str| pdu::error(&action, id, code, "test peer refuses");
    let body: Value = p.body_as().unwrap_or(Value::Null);
    if action == "auth/handshake" {
        *nonce = cobra_wire::auth::new_nonce();
        return vec![ok(
            json!({"data": {"nonce": nonce, "version": "test-1", "connection_id": "c1", "node": "peer"}}),
        )];
    }
    if action == "auth/authenticate" {
        let hash = body["credentials"]["hash"].as_str().unwrap_or("");
        if cobra_wire::auth::verify(SECRET, nonce, hash) {
            *authed = true;
            return vec![ok(json!({}))];
        }
        st.auth_failures.fetch_add(1, Ordering::SeqCst);
        return vec![err("authentication_failed")];
    }
    if !*authed {
        return vec![err("authorization_denied")];
    }
    if st.mute.load(Ordering::SeqCst) {
        return vec![];
    }
    match action.as_str() {
        "rtm/publish" => {
            let mut channels: Vec<String> = Vec::new();
            if let Some(c) = body["channel"].as_str() {
                channels.push(c.into());
            }
            if let Some(cs) = body["channels"].as_array() {
                channels.extend(cs.iter().filter_map(|c| c.as_str().map(String::from)));
            }
            let message = body["message"].clone();
            let position = {
                let mut h = st.history.lock().unwrap();
                for c in &channels {
                    h.push((c.clone(), message.to_string()));
                }
                format!("1-{}", h.len())
            };
            st.published.lock().unwrap().push((channels, message));
            if st.withhold_acks.load(Ordering::SeqCst) {
                vec![]
            } else {
                vec![ok(json!({"position": position}))]
            }
        }
        "rtm/subscribe" => {
            let channel = body["channel"].as_str().unwrap_or("").to_string();
            let sid = body["subscription_id"]
                .as_str()
                .unwrap_or(&channel)
                .to_string();
            let position = body["position"].as_str().map(String::from);
            st.subscribes
                .lock()
                .unwrap()
                .push((sid.clone(), position.clone()));
            let len = st.history.lock().unwrap().len();
            let next = match position
                .as_deref()
                .map(|p| p.split_once('-').map(|(_, s)| s.parse::<usize>()))
            {
                None => len,
                Some(Some(Ok(seq))) => seq.min(len),
                _ => return vec![err("invalid_position")],
            };
            subs.push(Sub {
                id: sid.clone(),
                channel,
                next,
                pdu_id: 0,
            });
            vec![ok(
                json!({"position": format!("1-{len}"), "subscription_id": sid}),
            )]
        }
        "rtm/unsubscribe" => {
            let sid = body["subscription_id"].as_str().unwrap_or("");
            let before = subs.len();
            subs.retain(|s| s.id != sid);
            if subs.len() == before {
                vec![err("unknown_subscription")]
            } else {
                vec![ok(json!({}))]
            }
        }
        "rtm/write" => {
            let c = body["channel"].as_str().unwrap_or("").to_string();
            st.kv.lock().unwrap().insert(c, body["message"].to_string());
            vec![ok(json!({}))]
        }
        "rtm/read" => {
            let c = body["channel"].as_str().unwrap_or("");
            let v = st
                .kv
                .lock()
                .unwrap()
                .get(c)
                .map(|s| serde_json::from_str::<Value>(s).unwrap());
            vec![ok(json!({"message": v}))]
        }
        "rtm/delete" => {
            let c = body["channel"].as_str().unwrap_or("");
            st.kv.lock().unwrap().remove(c);
            vec![ok(json!({}))]
        }
        _ => vec![err("bad_schema")],
    }
}

/// A TCP forwarder between the client and a server; `set_silent(true)` makes it swallow
/// everything in both directions without closing (a dead network path).
pub(crate) struct SilentProxy {
    pub addr: SocketAddr,
    silent: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    pub accepted: Arc<AtomicUsize>,
}

impl SilentProxy {
    pub(crate) fn start(target: SocketAddr) -> SilentProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let silent = Arc::new(AtomicBool::new(false));
        let stop = Arc::new(AtomicBool::new(false));
        let accepted = Arc::new(AtomicUsize::new(0));
        let (si, sp, acc) = (silent.clone(), stop.clone(), accepted.clone());
        std::thread::spawn(move || {
            while !sp.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((client, _)) => {
                        acc.fetch_add(1, Ordering::SeqCst);
                        let Ok(server) = TcpStream::connect(target) else {
                            continue;
                        };
                        for (from, to) in [
                            (client.try_clone().unwrap(), server.try_clone().unwrap()),
                            (server, client),
                        ] {
                            let (si, sp) = (si.clone(), sp.clone());
                            std::thread::spawn(move || pump(from, to, &si, &sp));
                        }
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(2)),
                }
            }
        });
        SilentProxy {
            addr,
            silent,
            stop,
            accepted,
        }
    }

    pub(crate) fn set_silent(&self, on: bool) {
        self.silent.store(on, Ordering::SeqCst);
    }
}

impl Drop for SilentProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

fn pump(mut from: TcpStream, mut to: TcpStream, silent: &AtomicBool, stop: &AtomicBool) {
    let _ = from.set_read_timeout(Some(Duration::from_millis(20)));
    let mut buf = [0u8; 16 << 10];
    while !stop.load(Ordering::Relaxed) {
        match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                if !silent.load(Ordering::SeqCst) && to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => break,
        }
    }
    let _ = to.shutdown(Shutdown::Both);
}

/// Collects events from a listener for assertions.
#[derive(Default)]
pub(crate) struct Recorder {
    pub events: Mutex<Vec<Event>>,
}

impl cobra::Listener for Recorder {
    fn on_event(&self, event: &Event) {
        self.events.lock().unwrap().push(event.clone());
    }
}

impl Recorder {
    pub(crate) fn snapshot(&self) -> Vec<Event> {
        self.events.lock().unwrap().clone()
    }

    pub(crate) fn count(&self, pred: impl Fn(&Event) -> bool) -> usize {
        self.events
            .lock()
            .unwrap()
            .iter()
            .filter(|e| pred(e))
            .count()
    }

    /// What `pick` takes from each event so far, in order.
    pub(crate) fn pick<T>(&self, pick: impl FnMut(&Event) -> Option<T>) -> Vec<T> {
        self.events
            .lock()
            .unwrap()
            .iter()
            .filter_map(pick)
            .collect()
    }

    /// The messages of every data event so far, in order; of subscription `id` only if given.
    pub(crate) fn data_messages(&self, id: Option<&str>) -> Vec<Value> {
        self.events
            .lock()
            .unwrap()
            .iter()
            .filter_map(|e| match e {
                Event::SubscriptionData {
                    subscription_id,
                    messages,
                    ..
                } if id.is_none_or(|id| id == subscription_id) => Some(messages.clone()),
                _ => None,
            })
            .flatten()
            .collect()
    }

    /// Waits for the first error event (`what`, or panics after `timeout`) and asserts it is of
    /// `kind` with `needle` in its message.
    pub(crate) fn expect_first_error(
        &self,
        timeout: Duration,
        what: &str,
        kind: cobra::ErrorKind,
        needle: &str,
    ) {
        let e = self.wait_for(timeout, what, |e| matches!(e, Event::Error { .. }));
        assert!(
            matches!(&e, Event::Error { kind: k, message, .. } if *k == kind && message.contains(needle)),
            "{e:?}"
        );
    }

    /// Wait until `pred` holds for some event (or panic after `timeout`).
    pub(crate) fn wait_for(
        &self,
        timeout: Duration,
        what: &str,
        pred: impl Fn(&Event) -> bool,
    ) -> Event {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(e) = self.events.lock().unwrap().iter().find(|e| pred(e)) {
                return e.clone();
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; events: {:#?}",
                self.snapshot()
            );
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

/// A client with `config` reporting to a fresh [`Recorder`], connecting.
pub(crate) fn start_client(config: cobra::Config) -> (cobra::Client, Arc<Recorder>) {
    let rec = Arc::new(Recorder::default());
    let client = cobra::Client::new(config, Some(rec.clone())).expect("a valid config");
    client.connect().expect("connect starts");
    (client, rec)
}

/// Publishes `message` to `channel` and waits until `rec` saw it acknowledged (`what`).
pub(crate) fn publish_acked(
    client: &cobra::Client,
    rec: &Recorder,
    channel: &str,
    message: &Value,
    what: &str,
) {
    let id = client.publish(channel, message).expect("publish");
    rec.wait_for(Duration::from_secs(20), what, |e| {
        *e == Event::Published { id }
    });
}

/// Waits until `rec` saw `n` authentications (or panics after `timeout`).
pub(crate) fn wait_authenticated(rec: &Recorder, n: usize, timeout: Duration) {
    wait_until(timeout, &format!("{n} authentications"), || {
        rec.count(|e| matches!(e, Event::Authenticated)) >= n
    });
}

/// Poll `cond` until true or panic after `timeout`.
pub(crate) fn wait_until(timeout: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// The first attempt failed with a timeout naming `stage`; then `disconnect` interrupts the
/// next attempt, still in that stage, at once, and no connection ever opened.
#[allow(dead_code)] // not every test crate using `support` calls it
pub(crate) fn assert_timeout_then_disconnect_interrupts(
    client: &cobra::Client,
    rec: &Recorder,
    timeout: Duration,
    stage: &str,
) {
    let e = rec.wait_for(timeout, stage, |e| matches!(e, Event::Error { .. }));
    assert!(
        matches!(&e, Event::Error { kind: cobra::ErrorKind::Timeout, message, .. } if message.contains(stage)),
        "{e:?}"
    );
    wait_until(timeout, "next attempt", || {
        rec.count(|e| matches!(e, Event::Connecting { .. })) >= 2
    });
    let t = Instant::now();
    client.disconnect().unwrap();
    let took = t.elapsed();
    assert!(
        took < Duration::from_millis(50),
        "disconnect during the {stage} stage took {took:?}"
    );
    assert_eq!(client.state(), cobra::State::Disconnected);
    assert_eq!(rec.count(|e| matches!(e, Event::Open)), 0);
}

pub(crate) fn config(url: &str) -> cobra::Config {
    cobra::Config::new(url, APPKEY, ROLE, SECRET)
        .backoff(Duration::from_millis(20), Duration::from_millis(200))
}

/// A minimal HTTP CONNECT proxy requiring `user:pass` (Basic), counting tunnels.
pub(crate) struct ConnectProxy {
    pub addr: SocketAddr,
    pub tunnels: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

impl ConnectProxy {
    pub(crate) fn start(expected_auth: &'static str) -> ConnectProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let tunnels = Arc::new(AtomicUsize::new(0));
        let (sp, tn) = (stop.clone(), tunnels.clone());
        std::thread::spawn(move || {
            while !sp.load(Ordering::Relaxed) {
                let Ok((mut client, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(2));
                    continue;
                };
                client.set_nonblocking(false).unwrap();
                let (sp, tn) = (sp.clone(), tn.clone());
                std::thread::spawn(move || {
                    let mut head = Vec::new();
                    let mut b = [0u8; 1];
                    while !head.ends_with(b"\r\n\r\n") {
                        if client.read(&mut b).unwrap_or(0) == 0 {
                            return;
                        }
                        head.push(b[0]);
                    }
                    let head = String::from_utf8_lossy(&head).to_string();
                    let target = head.split_whitespace().nth(1).unwrap_or("").to_string();
                    use base64::Engine as _;
                    let want = format!(
                        "Proxy-Authorization: Basic {}",
                        base64::engine::general_purpose::STANDARD.encode(expected_auth)
                    );
                    if !head.starts_with("CONNECT ") || !head.contains(&want) {
                        let _ = client.write_all(b"HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n");
                        return;
                    }
                    let Ok(server) = TcpStream::connect(&target) else {
                        let _ = client
                            .write_all(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n");
                        return;
                    };
                    tn.fetch_add(1, Ordering::SeqCst);
                    client
                        .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
                        .unwrap();
                    let never = Arc::new(AtomicBool::new(false));
                    let (c2, s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                    let (n2, sp2) = (never.clone(), sp.clone());
                    std::thread::spawn(move || pump(c2, s2, &n2, &sp2));
                    pump(server, client, &never, &sp);
                });
            }
        });
        ConnectProxy {
            addr,
            tunnels,
            stop,
        }
    }
}

impl Drop for ConnectProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}
