//! permessage-deflate cross-check against Python's `websockets` (which uses C
//! zlib and offers/answers window bits of its own), over real TCP sockets.
//!
//! Ignored by default: it needs a Python with `websockets` installed. Run with
//! `COBRA_TEST_PYTHON=/path/to/python cargo test -p cobra-wire --test interop_python -- --ignored`.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use bytes::BytesMut;
use cobra_wire::Limits;
use cobra_wire::handshake::{
    ClientRequestParams, accept_response, client_request, parse_request, parse_response,
};
use cobra_wire::pmd::{self, PmdConfig, ServerPmdConfig};
use cobra_wire::ws::{Codec, Message, Role};
use common::{echo_until_close, read_until};

/// Kills the child when the test ends, whatever happens.
struct Peer(Child);

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn python() -> String {
    std::env::var("COBRA_TEST_PYTHON").unwrap_or_else(|_| "python3".to_owned())
}

fn script() -> String {
    format!("{}/tests/py/peer.py", env!("CARGO_MANIFEST_DIR"))
}

fn messages() -> Vec<Message> {
    let event = r#"{"id":"engine_fps_id","data":{"fps":30},"device":{"game":"wiso"}}"#;
    vec![
        Message::Text("small".into()),
        Message::Text(event.repeat(20)),
        Message::Binary((0..=255u8).cycle().take(256 * 40).collect()),
        Message::Text(String::new()),
        Message::Text("é".repeat(70000)),
        Message::Text(event.repeat(30)),
    ]
}

#[test]
#[ignore = "needs Python with the websockets package (set COBRA_TEST_PYTHON)"]
fn our_client_against_python_server() {
    let mut child = Command::new(python())
        .arg(script())
        .arg("server")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let _peer = Peer(child);
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    let port: u16 = line.trim().parse().unwrap();

    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let cfg = PmdConfig::default();
    let offer = pmd::client_offer(&cfg);
    let (req, key) = client_request(&ClientRequestParams {
        host: "127.0.0.1",
        port,
        path_and_query: "/v2?appkey=k",
        subprotocol: None,
        extensions: Some(&offer),
        ..Default::default()
    })
    .unwrap();
    s.write_all(&req).unwrap();
    let limits = Limits {
        fragment_size: 5000,
        ..Limits::default()
    };
    let mut buf = BytesMut::new();
    let resp = read_until(&mut s, &mut buf, |b| {
        parse_response(b, &key, &limits).unwrap().map(|(r, n)| {
            let _ = b.split_to(n);
            r
        })
    });
    let answer = resp.extensions.expect("python answers permessage-deflate");
    let negotiated = pmd::client_accept(&cfg, &answer).unwrap();
    println!("python server answered {answer:?} -> {negotiated:?}");
    let mut codec = Codec::new(Role::Client, limits, Some(negotiated));
    // Compress everything, small messages included, to exercise zlib on both ends.
    codec.set_compress_min_size(0);
    for m in messages() {
        let mut out = Vec::new();
        match &m {
            Message::Text(t) => codec.encode_text(t, &mut out),
            Message::Binary(b) => codec.encode_binary(b, &mut out),
            _ => unreachable!(),
        }
        s.write_all(&out).unwrap();
        let got = read_until(&mut s, &mut buf, |b| codec.decode(b).unwrap());
        assert_eq!(got, m);
    }
    let mut out = Vec::new();
    codec.encode_close(1000, "done", &mut out).unwrap();
    s.write_all(&out).unwrap();
    let got = read_until(&mut s, &mut buf, |b| codec.decode(b).unwrap());
    assert!(
        matches!(got, Message::Close(Some(ref c)) if c.code == 1000),
        "{got:?}"
    );
}

#[test]
#[ignore = "needs Python with the websockets package (set COBRA_TEST_PYTHON)"]
fn python_client_against_our_server() {
    serve_python_client(&ServerPmdConfig::default());
}

/// As the cobra server answers (`server_no_context_takeover`): each message we send up to
/// 16 KiB comes from the small-message compressor, and Python's zlib must inflate it.
#[test]
#[ignore = "needs Python with the websockets package (set COBRA_TEST_PYTHON)"]
fn python_client_against_our_server_no_context_takeover() {
    serve_python_client(&ServerPmdConfig {
        server_no_context_takeover: true,
        ..ServerPmdConfig::default()
    });
}

fn serve_python_client(config: &ServerPmdConfig) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let child = Command::new(python())
        .arg(script())
        .arg("client")
        .arg(port.to_string())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut peer = Peer(child);
    let (mut s, _) = listener.accept().unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let limits = Limits {
        fragment_size: 3000,
        max_message_size: 4 << 20,
        ..Limits::default()
    };
    let mut buf = BytesMut::new();
    let req = read_until(&mut s, &mut buf, |b| {
        parse_request(b, &limits).unwrap().map(|(r, n)| {
            let _ = b.split_to(n);
            r
        })
    });
    assert!(req.is_websocket_upgrade);
    let offers: Vec<&str> = req.extensions.iter().map(String::as_str).collect();
    let (negotiated, answer) =
        pmd::server_negotiate(config, &offers).expect("python offers deflate");
    println!("python client offered {offers:?}; we answer {answer:?}");
    let key = req.ws_key.unwrap();
    s.write_all(&accept_response(&key, Some("json"), Some(&answer), &[]))
        .unwrap();
    let mut codec = Codec::new(Role::Server, limits, Some(negotiated));
    codec.set_compress_min_size(0);
    let close = echo_until_close(&mut s, &mut buf, &mut codec);
    assert_eq!(close.map(|c| c.code), Some(1000));
    drop(s);
    let status = peer.0.wait().unwrap();
    let mut stdout = String::new();
    peer.0
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    assert!(status.success(), "python client failed: {status}");
    assert_eq!(stdout.trim(), "ok");
}
