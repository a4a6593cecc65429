//! A small blocking WebSocket test client over std `TcpStream` and `cobra_wire`: upgrade (with an
//! optional permessage-deflate offer), authenticate, send requests and await their answers.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use cobra_wire::handshake::{self, ClientRequestParams, Response};
use cobra_wire::pmd::{self, PmdConfig};
use cobra_wire::ws::{Codec, Message, Role as WsRole};
use serde_json::{Value, json};

/// Default time any single wait may take before the test fails.
pub const WAIT: Duration = Duration::from_secs(10);

/// The role secret every test apps config uses.
pub const SECRET: &str = "0123456789abcdef0123456789abcdef";

/// Upgrades `stream` (TCP, TLS...), connected to loopback port `port`, to a WebSocket on
/// `/v2?appkey=APPKEY` with subprotocol `json` and no extension: the server's `101` and the bytes
/// that came right after it (the first WebSocket frames).
pub fn upgrade(
    stream: &mut (impl Read + Write),
    port: u16,
    appkey: &str,
) -> Result<(Response, Vec<u8>), String> {
    let (request, key) = handshake::client_request(&ClientRequestParams {
        host: "127.0.0.1",
        port,
        path_and_query: &format!("/v2?appkey={appkey}"),
        subprotocol: Some("json"),
        ..Default::default()
    })
    .map_err(|e| e.to_string())?;
    stream.write_all(&request).map_err(|e| e.to_string())?;
    read_upgrade_response(stream, &key)
}

/// Reads the server's answer to an upgrade request whose `Sec-WebSocket-Key` was `key` from
/// `stream` (TCP, TLS...): the parsed `101` and the bytes that came right after it (the first
/// WebSocket frames).
pub fn read_upgrade_response(
    stream: &mut impl Read,
    key: &str,
) -> Result<(Response, Vec<u8>), String> {
    let mut buf = Vec::new();
    loop {
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).map_err(|e| e.to_string())?;
        if n == 0 {
            return Err(format!(
                "closed during upgrade: {}",
                String::from_utf8_lossy(&buf)
            ));
        }
        buf.extend_from_slice(&chunk[..n]);
        let parsed = handshake::parse_response(&buf, key, &cobra_wire::Limits::default());
        if let Some((response, used)) = parsed.map_err(|e| e.to_string())? {
            buf.drain(..used);
            return Ok((response, buf));
        }
    }
}

/// Polls `f` until it returns `Some`, failing after [`WAIT`].
pub fn eventually<T>(what: &str, f: impl FnMut() -> Option<T>) -> T {
    eventually_within(what, WAIT, f)
}

/// Polls `f` until it returns `Some`, failing after `within`.
pub fn eventually_within<T>(what: &str, within: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + within;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Polls `f` until it returns `Ok`, failing after `within` with what the last `Err` said (for a
/// wait whose failure is only understood with the state it last saw).
pub fn eventually_within_showing<T>(
    what: &str,
    within: Duration,
    mut f: impl FnMut() -> Result<T, String>,
) -> T {
    let deadline = Instant::now() + within;
    loop {
        match f() {
            Ok(v) => return v,
            Err(last) => assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; last seen:\n{last}"
            ),
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A blocking WebSocket client of the RTM protocol (one request at a time, answers awaited).
pub struct Client {
    /// The socket (read timeout [`WAIT`]).
    pub stream: TcpStream,
    /// The WebSocket codec, deflate included if negotiated.
    pub codec: Codec,
    rbuf: BytesMut,
    next_id: u64,
    /// The server's upgrade answer.
    pub response: Response,
}

impl Client {
    /// Connects to `/v2?appkey=APPKEY` with subprotocol `json`, optional deflate offer.
    pub fn connect_ext(
        addr: SocketAddr,
        appkey: &str,
        extensions: Option<&str>,
    ) -> Result<Client, String> {
        let stream = TcpStream::connect(addr).map_err(|e| e.to_string())?;
        stream.set_read_timeout(Some(WAIT)).unwrap();
        stream.set_nodelay(true).unwrap();
        let path = format!("/v2?appkey={appkey}");
        let (req, key) = handshake::client_request(&ClientRequestParams {
            host: "127.0.0.1",
            port: addr.port(),
            path_and_query: &path,
            subprotocol: Some("json"),
            extensions,
            user_agent: Some("cobra-test"),
            extra_headers: &[],
        })
        .map_err(|e| e.to_string())?;
        Client::upgrade_with(stream, &req, &key, extensions)
    }

    /// Sends `request` (a whole upgrade request, made by hand) on `stream` and reads the 101;
    /// `key` is the request's `Sec-WebSocket-Key`, `extensions` the offer it carries.
    pub fn upgrade_with(
        mut stream: TcpStream,
        request: &[u8],
        key: &str,
        extensions: Option<&str>,
    ) -> Result<Client, String> {
        stream.set_read_timeout(Some(WAIT)).unwrap();
        stream.write_all(request).map_err(|e| e.to_string())?;
        let (response, after) = read_upgrade_response(&mut stream, key)?;
        let deflate = match response.extensions.as_deref() {
            Some(answer) => Some(
                pmd::client_accept(&offer_config(extensions.unwrap_or("")), answer)
                    .map_err(|e| e.to_string())?,
            ),
            None => None,
        };
        Ok(Client {
            stream,
            codec: Codec::new(WsRole::Client, cobra_wire::Limits::default(), deflate),
            rbuf: BytesMut::from(&after[..]),
            next_id: 1,
            response,
        })
    }

    /// Connects without deflate; panics if the upgrade fails.
    pub fn connect(addr: SocketAddr, appkey: &str) -> Client {
        Client::connect_ext(addr, appkey, None).expect("connect")
    }

    /// Connects and authenticates as `role` (secret [`SECRET`]).
    pub fn authed(addr: SocketAddr, appkey: &str, role: &str) -> Client {
        let mut c = Client::connect(addr, appkey);
        c.auth(role, SECRET).expect("authenticated");
        c
    }

    /// Sends one text message.
    pub fn send_text(&mut self, text: &str) {
        let mut out = Vec::new();
        self.codec.encode_text(text, &mut out);
        self.stream.write_all(&out).expect("send");
    }

    /// Writes raw bytes to the socket (hostile tests: broken frames).
    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("send raw");
    }

    /// Next message (answers pings); `Err` on EOF/timeout/protocol error.
    pub fn recv(&mut self) -> Result<Message, String> {
        loop {
            match self.codec.decode(&mut self.rbuf) {
                Ok(Some(Message::Ping(p))) => {
                    let mut out = Vec::new();
                    let _ = self.codec.encode_pong(&p, &mut out);
                    let _ = self.stream.write_all(&out);
                    continue;
                }
                Ok(Some(m)) => return Ok(m),
                Ok(None) => {}
                Err(e) => return Err(format!("ws error: {e}")),
            }
            let mut chunk = [0u8; 65536];
            let n = self
                .stream
                .read(&mut chunk)
                .map_err(|e| format!("read: {e}"))?;
            if n == 0 {
                return Err("eof".into());
            }
            self.rbuf.extend_from_slice(&chunk[..n]);
        }
    }

    /// Next PDU as JSON; panics on anything else.
    pub fn recv_json(&mut self) -> Value {
        match self.recv() {
            Ok(Message::Text(t)) => serde_json::from_str(&t).expect("server sends JSON"),
            other => panic!("expected a text PDU, got {other:?}"),
        }
    }

    /// Expects a close frame and returns its code.
    pub fn expect_close(&mut self) -> u16 {
        loop {
            match self.recv() {
                Ok(Message::Close(f)) => return f.map_or(1005, |f| f.code),
                Ok(Message::Text(_)) => continue,
                other => panic!("expected close, got {other:?}"),
            }
        }
    }

    /// Sends `{"action", "id", "body"}` and returns the id used.
    pub fn send(&mut self, action: &str, body: Value) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        self.send_text(&json!({"action": action, "id": id, "body": body}).to_string());
        id
    }

    /// Sends a request and returns the PDU answering it (by id); other PDUs are skipped.
    pub fn request(&mut self, action: &str, body: Value) -> Value {
        let id = self.send(action, body);
        loop {
            let v = self.recv_json();
            assert!(v.get("id").is_some(), "every PDU carries an id: {v}");
            if v["id"] == json!(id)
                && !v["action"]
                    .as_str()
                    .unwrap_or("")
                    .starts_with("rtm/subscription/data")
            {
                return v;
            }
        }
    }

    /// `rtm/read` of `channel`: the message read (`null` when there is none).
    pub fn read(&mut self, channel: &str) -> Value {
        self.request("rtm/read", json!({"channel": channel}))["body"]["message"].clone()
    }

    /// `rtm/delete` of `channel`: the answer.
    pub fn delete(&mut self, channel: &str) -> Value {
        self.request("rtm/delete", json!({"channel": channel}))
    }

    /// Handshake + authenticate; returns the handshake/ok body data.
    pub fn auth(&mut self, role: &str, secret: &str) -> Result<Value, Value> {
        let hs = self.request(
            "auth/handshake",
            json!({"method": "role_secret", "data": {"role": role}}),
        );
        if hs["action"] != "auth/handshake/ok" {
            return Err(hs);
        }
        let nonce = hs["body"]["data"]["nonce"]
            .as_str()
            .expect("nonce")
            .to_owned();
        let hash = cobra_wire::auth::role_secret_hash(secret, &nonce);
        let r = self.request(
            "auth/authenticate",
            json!({"method": "role_secret", "credentials": {"hash": hash}}),
        );
        if r["action"] == "auth/authenticate/ok" {
            Ok(hs["body"]["data"].clone())
        } else {
            Err(r)
        }
    }

    /// Next subscription data PDU (skipping nothing else: other PDUs fail the test).
    pub fn next_data(&mut self) -> Value {
        let v = self.recv_json();
        assert_eq!(
            v["action"], "rtm/subscription/data",
            "expected data, got {v}"
        );
        v
    }
}

/// The client offer config that yields `offer` (for checking the answer).
fn offer_config(offer: &str) -> PmdConfig {
    let mut c = PmdConfig {
        client_max_window_bits: None,
        ..PmdConfig::default()
    };
    for p in offer.split(';').map(str::trim) {
        let (k, v) = p
            .split_once('=')
            .map_or((p, None), |(k, v)| (k.trim(), Some(v.trim())));
        match k {
            "client_no_context_takeover" => c.client_no_context_takeover = true,
            "server_no_context_takeover" => c.server_no_context_takeover = true,
            "client_max_window_bits" => {
                c.client_max_window_bits = Some(v.and_then(|v| v.parse().ok()).unwrap_or(15))
            }
            "server_max_window_bits" => c.server_max_window_bits = v.and_then(|v| v.parse().ok()),
            _ => {}
        }
    }
    c
}

/// A plain HTTP GET; returns (status, head, body).
pub fn http_get(addr: SocketAddr, target: &str, extra: &str) -> (u16, String, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    write!(s, "GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\n{extra}\r\n").unwrap();
    let mut all = Vec::new();
    let _ = s.read_to_end(&mut all);
    let text = String::from_utf8_lossy(&all).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, head.to_owned(), body.to_owned())
}
