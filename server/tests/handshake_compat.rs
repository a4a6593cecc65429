//! The upgrade our server accepts, compared with the original broker's: Python `websockets`
//! (the version `scripts/install-peers.sh` pins, in `.tools/pyws-venv`) running the echo peer
//! `tests/peers/cobra_echo_pyws.py`. One table of raw upgrade requests, each sent over a raw
//! TCP socket to both servers: both must accept (101) or both refuse, and our refusals must
//! say why in the body. Also the exact request of the C++ client games ship (IXWebSocket
//! 11.0.4, issue #22), carried on to authenticate and publish on both servers.
//!
//! Without the Python peer the tests print `SKIPPED` and pass, except under `CI=true`.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};

use cobra_server::config::AppsConfig;
use cobra_server::net::{Server, ServerHandle};
use cobra_test_support::process::{EchoPeer, start_python_echo};
use common::{Client, SECRET, WAIT, settings};
use serde_json::json;

/// The upgrade IXWebSocket 11.0.4 sent (`ws cobra_publish`), byte for byte: its key, made of
/// 22 random base64 characters and `==`, has non-zero padding bits.
const IX_REQUEST: &str = "GET /v2?appkey=_pubsub HTTP/1.1\r\n\
Host: 127.0.0.1:55119\r\n\
Upgrade: websocket\r\n\
Connection: Upgrade\r\n\
Sec-WebSocket-Version: 13\r\n\
Sec-WebSocket-Key: 2Cc5aeBd23B49dCAhGcfab==\r\n\
User-Agent: ixwebsocket/11.0.4 linux ssl/OpenSSL OpenSSL 3.0.22 25 Aug 2026 zlib 1.2.13\r\n\
Sec-WebSocket-Protocol: json\r\n\
X-Cobra-Channel: c\r\n\
Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=15; client_max_window_bits=15\r\n\
\r\n";
const IX_KEY: &str = "2Cc5aeBd23B49dCAhGcfab==";
const IX_OFFER: &str = "permessage-deflate; server_max_window_bits=15; client_max_window_bits=15";

/// Our server with the app the IXWebSocket request names (`_pubsub`, role `pubsub`).
fn our_server() -> ServerHandle {
    let yaml = format!(
        "apps:\n  _pubsub:\n    roles:\n      pubsub: {{secret: {SECRET}, permissions: [{}]}}\n",
        common::ALL.join(", ")
    );
    let apps = AppsConfig::from_yaml(&yaml).expect("apps config");
    Server::start(settings(), apps).expect("server starts")
}

fn python_addr(peer: &EchoPeer) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], peer.port))
}

/// What a server answered to one raw request.
#[derive(Debug)]
struct Answer {
    status: u16,
    head: String,
    body: String,
}

/// Sends `request` on a fresh connection and reads the answer's head, and for a refusal its
/// body (by `Content-Length`, else to the end of the stream).
fn exchange(addr: SocketAddr, request: &[u8]) -> Answer {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(WAIT)).expect("timeout");
    s.write_all(request).expect("send request");
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        match s.read(&mut chunk) {
            Ok(n) if n > 0 => buf.extend_from_slice(&chunk[..n]),
            // A refusal too, but a silent one (status 0).
            _ => {
                return Answer {
                    status: 0,
                    head: "(closed without an answer)".to_owned(),
                    body: String::from_utf8_lossy(&buf).into_owned(),
                };
            }
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let mut body = buf[head_end..].to_vec();
    if status != 101 {
        let len = head.lines().find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse::<usize>().ok())?
        });
        while len.is_none_or(|len| body.len() < len) {
            match s.read(&mut chunk) {
                Ok(n) if n > 0 => body.extend_from_slice(&chunk[..n]),
                _ => break,
            }
        }
    }
    Answer {
        status,
        head,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

/// The IXWebSocket request with the header `name` (as written there) replaced by `lines`
/// (each a whole `Name: value` line; none removes it).
fn ix_with(name: &str, lines: &[&str]) -> Vec<u8> {
    let prefix = format!("\r\n{name}:");
    let start = IX_REQUEST.find(&prefix).expect("header in IX_REQUEST") + 2;
    let end = start + IX_REQUEST[start..].find("\r\n").expect("line end") + 2;
    let mut out = IX_REQUEST[..start].to_owned();
    for line in lines {
        out.push_str(line);
        out.push_str("\r\n");
    }
    out.push_str(&IX_REQUEST[end..]);
    out.into_bytes()
}

fn ix_key(value: &str) -> Vec<u8> {
    ix_with(
        "Sec-WebSocket-Key",
        &[&format!("Sec-WebSocket-Key: {value}")],
    )
}

/// The IXWebSocket request with every header name passed through `f`.
fn ix_names(f: fn(&str) -> String) -> Vec<u8> {
    let mut lines = IX_REQUEST.split("\r\n");
    let mut out = format!("{}\r\n", lines.next().expect("request line"));
    for line in lines.filter(|l| !l.is_empty()) {
        let (name, value) = line.split_once(':').expect("header line");
        out.push_str(&format!("{}:{value}\r\n", f(name)));
    }
    out.push_str("\r\n");
    out.into_bytes()
}

/// One row: the request, and `None` if both servers must accept it, else what our refusal
/// body must say.
struct Case {
    name: &'static str,
    request: Vec<u8>,
    refused_because: Option<&'static str>,
}

fn case(name: &'static str, request: Vec<u8>, refused_because: Option<&'static str>) -> Case {
    Case {
        name,
        request,
        refused_because,
    }
}

fn cases() -> Vec<Case> {
    const KEY: &str = "is not 16 bytes in base64";
    let mut latin1_agent = ix_with("User-Agent", &["User-Agent: caf\u{e9}"]);
    let at = latin1_agent.iter().position(|&b| b == 0xc3).expect("é");
    latin1_agent.splice(at..at + 2, [0xe9]); // é as one ISO-8859-1 byte (obs-text)
    vec![
        case("IXWebSocket 11.0.4, as sent", IX_REQUEST.into(), None),
        case(
            "canonical key (RFC 6455 sample)",
            ix_key("dGhlIHNhbXBsZSBub25jZQ=="),
            None,
        ),
        case(
            "key with padding bits 01",
            ix_key("dGhlIHNhbXBsZSBub25jZR=="),
            None,
        ),
        case(
            "key with padding bits 1111",
            ix_key("AAAAAAAAAAAAAAAAAAAAA/=="),
            None,
        ),
        case(
            "key without padding",
            ix_key("2Cc5aeBd23B49dCAhGcfab"),
            Some(KEY),
        ),
        case(
            "key with half its padding",
            ix_key("2Cc5aeBd23B49dCAhGcfab="),
            Some(KEY),
        ),
        case(
            "key with too much padding",
            ix_key("2Cc5aeBd23B49dCAhGcfab==="),
            Some(KEY),
        ),
        case(
            "key with spaces and tabs around it",
            ix_with(
                "Sec-WebSocket-Key",
                &["Sec-WebSocket-Key:  \t2Cc5aeBd23B49dCAhGcfab== \t"],
            ),
            None,
        ),
        case(
            "key with a space inside",
            ix_key("2Cc5aeBd23B4 9dCAhGcfab=="),
            Some(KEY),
        ),
        case("key of 12 bytes", ix_key("AAAAAAAAAAAAAAAA"), Some(KEY)),
        case(
            "key of 18 bytes",
            ix_key("AAAAAAAAAAAAAAAAAAAAAAAA"),
            Some(KEY),
        ),
        case(
            "key of 17 bytes",
            ix_key("AAAAAAAAAAAAAAAAAAAAAAA="),
            Some(KEY),
        ),
        case("empty key", ix_key(""), Some(KEY)),
        case(
            "key not base64",
            ix_key("!!!!!!!!!!!!!!!!!!!!!!=="),
            Some(KEY),
        ),
        case(
            "key in the URL-safe alphabet",
            ix_key("2Cc5aeBd23B49dCA-_cfab=="),
            Some(KEY),
        ),
        case(
            "key with padding inside",
            ix_key("2Cc5aeBd23B49dCAhGcf=b=="),
            Some(KEY),
        ),
        case(
            "no key",
            ix_with("Sec-WebSocket-Key", &[]),
            Some("missing Sec-WebSocket-Key"),
        ),
        case(
            "header names in lower case",
            ix_names(|n| n.to_ascii_lowercase()),
            None,
        ),
        case(
            "header names in upper case",
            ix_names(|n| n.to_ascii_uppercase()),
            None,
        ),
        case(
            "Upgrade and Connection values in other cases",
            replace_line(
                ix_with("Upgrade", &["Upgrade: WebSocket"]),
                "Connection: Upgrade",
                "Connection: UPGRADE",
            ),
            None,
        ),
        case(
            "Connection: keep-alive, Upgrade",
            ix_with("Connection", &["Connection: keep-alive, Upgrade"]),
            None,
        ),
        case(
            "Connection twice: keep-alive then Upgrade",
            ix_with(
                "Connection",
                &["Connection: keep-alive", "Connection: Upgrade"],
            ),
            None,
        ),
        case(
            "Connection: keep-alive only",
            ix_with("Connection", &["Connection: keep-alive"]),
            Some("Connection header must include the token upgrade"),
        ),
        case(
            "key twice, same value",
            ix_with(
                "Sec-WebSocket-Key",
                &[
                    "Sec-WebSocket-Key: 2Cc5aeBd23B49dCAhGcfab==",
                    "sec-websocket-key: 2Cc5aeBd23B49dCAhGcfab==",
                ],
            ),
            Some("several Sec-WebSocket-Key headers"),
        ),
        case(
            "key twice, different values",
            ix_with(
                "Sec-WebSocket-Key",
                &[
                    "Sec-WebSocket-Key: 2Cc5aeBd23B49dCAhGcfab==",
                    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
                ],
            ),
            Some("several Sec-WebSocket-Key headers"),
        ),
        case(
            "version twice",
            ix_with(
                "Sec-WebSocket-Version",
                &["Sec-WebSocket-Version: 13", "Sec-WebSocket-Version: 13"],
            ),
            Some("several Sec-WebSocket-Version headers"),
        ),
        case(
            "Upgrade twice",
            ix_with("Upgrade", &["Upgrade: websocket", "Upgrade: websocket"]),
            Some("must name websocket alone"),
        ),
        case(
            "Upgrade: websocket, h2c",
            ix_with("Upgrade", &["Upgrade: websocket, h2c"]),
            Some("must name websocket alone"),
        ),
        case(
            "User-Agent and X-Cobra-Channel twice",
            ix_with(
                "X-Cobra-Channel",
                &[
                    "X-Cobra-Channel: c",
                    "X-Cobra-Channel: d",
                    "User-Agent: again",
                ],
            ),
            None,
        ),
        case("ISO-8859-1 byte in User-Agent", latin1_agent, None),
        case("no Host", ix_with("Host", &[]), None),
        case(
            "version 8",
            ix_with("Sec-WebSocket-Version", &["Sec-WebSocket-Version: 8"]),
            Some("version 13 required"),
        ),
        case(
            "no version",
            ix_with("Sec-WebSocket-Version", &[]),
            Some("missing Sec-WebSocket-Version"),
        ),
        case(
            "HTTP/1.0",
            IX_REQUEST.replacen("HTTP/1.1", "HTTP/1.0", 1).into_bytes(),
            Some("needs HTTP/1.1"),
        ),
        case(
            "POST",
            IX_REQUEST.replacen("GET", "POST", 1).into_bytes(),
            Some("must be GET"),
        ),
        case(
            "Content-Length: 0",
            ix_with(
                "X-Cobra-Channel",
                &["X-Cobra-Channel: c", "Content-Length: 0"],
            ),
            None,
        ),
        case(
            "a body (Content-Length: 5)",
            ix_with(
                "X-Cobra-Channel",
                &["X-Cobra-Channel: c", "Content-Length: 5"],
            ),
            Some("Content-Length must be 0"),
        ),
        case(
            "Transfer-Encoding: chunked",
            ix_with(
                "X-Cobra-Channel",
                &["X-Cobra-Channel: c", "Transfer-Encoding: chunked"],
            ),
            Some("Transfer-Encoding is not allowed"),
        ),
    ]
}

fn replace_line(request: Vec<u8>, from: &str, to: &str) -> Vec<u8> {
    let text = String::from_utf8(request).expect("ASCII request");
    assert!(text.contains(from), "{from} in {text}");
    text.replacen(from, to, 1).into_bytes()
}

#[test]
fn upgrade_requests_are_accepted_and_refused_as_python_websockets_does() {
    let server = our_server();
    let Some(python) = start_python_echo(SECRET, &[]) else {
        return;
    };
    let mut failures = Vec::new();
    for c in cases() {
        let ours = exchange(server.local_addr(), &c.request);
        let theirs = exchange(python_addr(&python), &c.request);
        let expected = if c.refused_because.is_none() {
            "accepted"
        } else {
            "refused"
        };
        let verdict = |a: &Answer| {
            if a.status == 101 {
                "accepted"
            } else {
                "refused"
            }
        };
        eprintln!(
            "{:<48} ours {:>3}  python {:>3}  {}",
            c.name,
            ours.status,
            theirs.status,
            ours.body.trim()
        );
        if verdict(&theirs) != expected {
            failures.push(format!(
                "{}: Python websockets {} it (expected {expected}): {}{}",
                c.name,
                verdict(&theirs),
                theirs.head,
                theirs.body
            ));
        }
        if verdict(&ours) != expected {
            failures.push(format!(
                "{}: we {} it (expected {expected}): {}{}",
                c.name,
                verdict(&ours),
                ours.head,
                ours.body
            ));
        }
        if let Some(why) = c.refused_because
            && ours.status != 101
            && !(matches!(ours.status, 400 | 426) && ours.body.contains(why))
        {
            failures.push(format!(
                "{}: our refusal should be a 400 (426 for the version) saying {why:?}: {}{}",
                c.name, ours.head, ours.body
            ));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

/// The IXWebSocket request, sent byte for byte, then what its `ws cobra_publish` does next.
fn ix_session(addr: SocketAddr, who: &str) {
    let stream = TcpStream::connect(addr).expect("connect");
    let mut c = Client::upgrade_with(stream, IX_REQUEST.as_bytes(), IX_KEY, Some(IX_OFFER))
        .unwrap_or_else(|e| panic!("{who} refused the IXWebSocket upgrade: {e}"));
    assert_eq!(c.response.subprotocol.as_deref(), Some("json"), "{who}");
    assert!(
        c.response
            .extensions
            .as_deref()
            .is_some_and(|e| e.starts_with("permessage-deflate")),
        "{who} did not agree to permessage-deflate: {:?}",
        c.response.extensions
    );
    let hs = c.request(
        "auth/handshake",
        json!({"method": "role_secret", "data": {"role": "pubsub"}}),
    );
    assert_eq!(hs["action"], "auth/handshake/ok", "{who}: {hs}");
    let nonce = hs["body"]["data"]["nonce"].as_str().expect("nonce");
    let hash = cobra_wire::auth::role_secret_hash(SECRET, nonce);
    let auth = c.request(
        "auth/authenticate",
        json!({"method": "role_secret", "credentials": {"hash": hash}}),
    );
    assert_eq!(auth["action"], "auth/authenticate/ok", "{who}: {auth}");
    let sub = c.request("rtm/subscribe", json!({"channel": "c"}));
    assert_eq!(sub["action"], "rtm/subscribe/ok", "{who}: {sub}");
    let message = json!({"id": "engine_fps_id", "data": {"fps": 60}, "pad": "x".repeat(500)});
    let id = c.send("rtm/publish", json!({"channel": "c", "message": message}));
    // The ack and the message coming back, in either order.
    let (mut acked, mut delivered) = (false, false);
    while !(acked && delivered) {
        let pdu = c.recv_json();
        match pdu["action"].as_str() {
            Some("rtm/publish/ok") if pdu["id"] == json!(id) => acked = true,
            Some("rtm/subscription/data") => {
                assert_eq!(pdu["body"]["messages"][0], message, "{who}: {pdu}");
                delivered = true;
            }
            _ => panic!("{who}: unexpected {pdu}"),
        }
    }
}

#[test]
fn the_ixwebsocket_request_authenticates_publishes_and_is_acked() {
    let server = our_server();
    ix_session(server.local_addr(), "our server");
    if let Some(python) = start_python_echo(SECRET, &[]) {
        ix_session(python_addr(&python), "Python websockets");
    }
}
