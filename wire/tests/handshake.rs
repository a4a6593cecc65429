//! Upgrade request/response tests.

use cobra_wire::Limits;
use cobra_wire::handshake::{
    ClientRequestParams, HandshakeError, accept_response, client_request, http_response,
    parse_request, parse_response, query_param, valid_key,
};
use tungstenite::handshake::derive_accept_key;

fn params() -> ClientRequestParams<'static> {
    ClientRequestParams {
        host: "example.com",
        port: 8765,
        path_and_query: "/v2?appkey=_pubsub",
        subprotocol: Some("json"),
        extensions: Some("permessage-deflate; client_max_window_bits"),
        user_agent: Some("cobra-test/1"),
        extra_headers: &[],
    }
}

#[test]
fn client_request_server_parse_and_accept_round_trip() {
    let limits = Limits::default();
    let (req, key) = client_request(&params()).unwrap();
    let text = String::from_utf8(req.clone()).unwrap();
    assert!(
        text.starts_with("GET /v2?appkey=_pubsub HTTP/1.1\r\nHost: example.com:8765\r\n"),
        "{text}"
    );
    // Partial input at every length, then the whole thing plus a trailing frame byte.
    for n in 0..req.len() {
        assert_eq!(parse_request(&req[..n], &limits).unwrap(), None, "at {n}");
    }
    let mut with_extra = req.clone();
    with_extra.push(0x81);
    let (r, used) = parse_request(&with_extra, &limits).unwrap().unwrap();
    assert_eq!(used, req.len());
    assert!(r.is_websocket_upgrade && r.upgrade_requested);
    assert_eq!(r.method, "GET");
    assert_eq!(r.path, "/v2");
    assert_eq!(r.query_param("appkey").as_deref(), Some("_pubsub"));
    assert_eq!(r.subprotocols, vec!["json"]);
    assert_eq!(
        r.extensions,
        vec!["permessage-deflate; client_max_window_bits"]
    );
    assert_eq!(r.user_agent.as_deref(), Some("cobra-test/1"));
    assert_eq!(r.ws_key.as_deref(), Some(key.as_str()));

    let resp = accept_response(
        &key,
        Some("json"),
        Some("permessage-deflate"),
        &[("X-Cobra-Node", "n1")],
    );
    for n in 0..resp.len() {
        assert_eq!(
            parse_response(&resp[..n], &key, &limits).unwrap(),
            None,
            "at {n}"
        );
    }
    let mut stream = resp.clone();
    stream.extend_from_slice(&[0x81, 0x00]);
    let (r, used) = parse_response(&stream, &key, &limits).unwrap().unwrap();
    assert_eq!(
        used,
        resp.len(),
        "the frame after the 101 is left for the WebSocket"
    );
    assert_eq!(r.status, 101);
    assert_eq!(r.subprotocol.as_deref(), Some("json"));
    assert_eq!(r.extensions.as_deref(), Some("permessage-deflate"));
    assert_eq!(r.header("x-cobra-node"), Some("n1"));
    // A different key does not match.
    assert_eq!(
        parse_response(&resp, "dGhlIHNhbXBsZSBub25jZQ==", &limits),
        Err(HandshakeError::BadUpgrade("wrong Sec-WebSocket-Accept"))
    );
}

#[test]
fn rfc_sample_accept_key() {
    let resp = accept_response("dGhlIHNhbXBsZSBub25jZQ==", None, None, &[]);
    assert!(
        String::from_utf8(resp)
            .unwrap()
            .contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n")
    );
}

#[test]
fn status_403_carries_code_and_body() {
    let limits = Limits::default();
    let resp = http_response(
        403,
        "Forbidden",
        Some("text/plain"),
        b"unknown appkey",
        &[("Connection", "close")],
    );
    // Until the body is in, more bytes are needed.
    assert_eq!(
        parse_response(&resp[..resp.len() - 3], "k", &limits).unwrap(),
        None
    );
    match parse_response(&resp, "k", &limits) {
        Err(HandshakeError::Status {
            code: 403,
            reason,
            body,
        }) => {
            assert_eq!(reason, "Forbidden");
            assert_eq!(body, b"unknown appkey");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn bad_upgrades() {
    let limits = Limits::default();
    let key = "dGhlIHNhbXBsZSBub25jZQ==";
    let accept = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";
    let no_upgrade =
        format!("HTTP/1.1 101 OK\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n");
    assert!(matches!(
        parse_response(no_upgrade.as_bytes(), key, &limits),
        Err(HandshakeError::BadUpgrade(_))
    ));
    let no_conn =
        format!("HTTP/1.1 101 OK\r\nUpgrade: websocket\r\nSec-WebSocket-Accept: {accept}\r\n\r\n");
    assert!(matches!(
        parse_response(no_conn.as_bytes(), key, &limits),
        Err(HandshakeError::BadUpgrade(_))
    ));
    let ok = format!(
        "HTTP/1.1 101 OK\r\nUpgrade: WebSocket\r\nConnection: keep-alive, Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"
    );
    assert!(
        parse_response(ok.as_bytes(), key, &limits)
            .unwrap()
            .is_some()
    );
    assert!(matches!(
        parse_response(b"garbage\r\n\r\n", key, &limits),
        Err(HandshakeError::Malformed(_))
    ));
    // Too large, whether complete or not.
    let small = Limits {
        max_handshake_bytes: 64,
        ..limits
    };
    let long = format!("HTTP/1.1 101 OK\r\nX-Pad: {}\r\n", "a".repeat(100));
    assert_eq!(
        parse_response(long.as_bytes(), key, &small),
        Err(HandshakeError::TooLarge(64))
    );
    let long_req = format!("GET / HTTP/1.1\r\nX-Pad: {}\r\n", "a".repeat(100));
    assert_eq!(
        parse_request(long_req.as_bytes(), &small),
        Err(HandshakeError::TooLarge(64))
    );
    let complete_req = format!("{long_req}\r\n");
    assert_eq!(
        parse_request(complete_req.as_bytes(), &small),
        Err(HandshakeError::TooLarge(64))
    );
}

#[test]
fn plain_get_and_broken_upgrades_are_told_apart() {
    let limits = Limits::default();
    let (r, _) = parse_request(b"GET /health/ HTTP/1.1\r\nHost: x\r\n\r\n", &limits)
        .unwrap()
        .unwrap();
    assert!(!r.upgrade_requested && !r.is_websocket_upgrade);
    assert_eq!(r.path, "/health/");
    assert_eq!(r.query, None);
    let bad_version = b"GET /v2 HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n\r\n";
    let (r, _) = parse_request(bad_version, &limits).unwrap().unwrap();
    assert!(r.upgrade_requested && !r.is_websocket_upgrade);
    assert_eq!(r.ws_version.as_deref(), Some("8"));
    let bad_key = b"GET /v2 HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: short\r\nSec-WebSocket-Version: 13\r\n\r\n";
    let (r, _) = parse_request(bad_key, &limits).unwrap().unwrap();
    assert!(!r.is_websocket_upgrade && r.ws_key.is_none());
}

#[test]
fn query_params_are_decoded() {
    assert_eq!(
        query_param("a=1&appkey=x%2Fy+z", "appkey").as_deref(),
        Some("x/y z")
    );
    assert_eq!(query_param("appkey", "appkey").as_deref(), Some(""));
    assert_eq!(query_param("a=1", "appkey"), None);
    assert_eq!(query_param("appkey=%zz", "appkey"), None);
    assert_eq!(query_param("appkey=%", "appkey"), None);
}

#[test]
fn header_injection_is_refused() {
    let extra = vec![("X-Evil".to_owned(), "a\r\nHost: b".to_owned())];
    let p = ClientRequestParams {
        extra_headers: &extra,
        ..params()
    };
    assert!(matches!(
        client_request(&p),
        Err(HandshakeError::InvalidHeader(_))
    ));
    let p = ClientRequestParams {
        path_and_query: "/v2 HTTP/1.0\r\n",
        ..params()
    };
    assert!(client_request(&p).is_err());
    let p = ClientRequestParams {
        user_agent: Some("x\ny"),
        ..params()
    };
    assert!(client_request(&p).is_err());
    let p = ClientRequestParams {
        host: "::1",
        port: 80,
        ..params()
    };
    let (req, _) = client_request(&p).unwrap();
    assert!(
        String::from_utf8(req)
            .unwrap()
            .contains("\r\nHost: [::1]\r\n")
    );
}

#[test]
fn keys_are_checked_for_shape_not_padding_bits() {
    // As Python `websockets` (b64decode(validate=True), 16 bytes): 22 base64 characters, then ==.
    for key in [
        "dGhlIHNhbXBsZSBub25jZQ==",
        "2Cc5aeBd23B49dCAhGcfab==", // IXWebSocket 11: non-zero padding bits
        "AAAAAAAAAAAAAAAAAAAAA/==",
    ] {
        assert!(valid_key(key), "{key}");
    }
    for key in [
        "",
        "dGhlIHNhbXBsZSBub25jZQ",    // no padding
        "dGhlIHNhbXBsZSBub25jZQ=",   // half the padding
        "dGhlIHNhbXBsZSBub25jZQ===", // too much
        "dGhlIHNhbXBs ZSBub25jZQ==", // inner space
        "AAAAAAAAAAAAAAAA",          // 12 bytes
        "AAAAAAAAAAAAAAAAAAAAAAAA",  // 18 bytes
        "-_-_-_-_-_-_-_-_-_-_-_==",  // URL-safe alphabet
        "AAAAAAAAAAAAAAAAAAAA=AA=",
    ] {
        assert!(!valid_key(key), "{key}");
    }
}

fn upgrade(headers: &str) -> cobra_wire::handshake::Request {
    let head = format!("GET /v2?appkey=a HTTP/1.1\r\nHost: x\r\n{headers}\r\n");
    parse_request(head.as_bytes(), &Limits::default())
        .unwrap()
        .unwrap()
        .0
}

#[test]
fn upgrade_refusals_say_why() {
    let ok = "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n";
    let r = upgrade(&format!(
        "{ok}Sec-WebSocket-Key: 2Cc5aeBd23B49dCAhGcfab==\r\n"
    ));
    assert!(r.is_websocket_upgrade, "{:?}", r.upgrade_refusal);
    assert_eq!(r.ws_key.as_deref(), Some("2Cc5aeBd23B49dCAhGcfab=="));
    let r = upgrade(&format!(
        "{ok}Sec-WebSocket-Key: 2Cc5aeBd23B49dCAhGcfab==\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    ));
    assert!(!r.is_websocket_upgrade && r.ws_key.is_none());
    assert_eq!(
        r.upgrade_refusal.as_deref(),
        Some("several Sec-WebSocket-Key headers")
    );
    let r = upgrade(&format!("{ok}Sec-WebSocket-Key: short\r\n"));
    assert!(
        r.upgrade_refusal
            .unwrap()
            .contains("\"short\" is not 16 bytes")
    );
    let r = upgrade(
        "Upgrade: websocket\r\nConnection: keep-alive\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nUser-Agent: caf\u{e9}\r\n",
    );
    assert!(r.is_websocket_upgrade, "{:?}", r.upgrade_refusal);
    let r = upgrade("Upgrade: websocket\r\nConnection: keep-alive\r\n");
    assert!(r.upgrade_requested && !r.is_websocket_upgrade);
    assert!(r.upgrade_refusal.unwrap().contains("Connection"));
}

#[test]
fn responses_with_folded_repeated_and_oddly_cased_headers_are_accepted() {
    let key = "dGhlIHNhbXBsZSBub25jZQ==";
    let accept = derive_accept_key(key.as_bytes());
    let resp = format!(
        "HTTP/1.1 101 Web Socket Protocol Handshake\r\nupgrade: WebSocket\r\nCONNECTION: keep-alive\r\nconnection: UPGRADE\r\nsec-websocket-accept:{accept}  \r\nSec-WebSocket-Extensions: permessage-deflate;\r\n\tserver_no_context_takeover\r\nSec-WebSocket-Extensions:\r\nX-Latin1: caf\u{e9}\r\n\r\n"
    );
    let mut bytes = resp.into_bytes();
    let at = bytes.iter().position(|&b| b == 0xc3).unwrap(); // é as one Latin-1 byte
    bytes.splice(at..at + 2, [0xe9]);
    let (r, used) = parse_response(&bytes, key, &Limits::default())
        .unwrap()
        .unwrap();
    assert_eq!(used, bytes.len());
    assert_eq!(r.subprotocol, None);
    assert_eq!(
        r.extensions.as_deref(),
        Some("permessage-deflate; server_no_context_takeover")
    );
}
