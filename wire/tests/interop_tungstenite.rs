//! Cross-check against tungstenite (an independent implementation) over a real
//! socket pair, for the uncompressed path: both handshake directions, masking,
//! fragmentation, control frames and the close handshake.

mod common;

use std::io::Write;
use std::os::unix::net::UnixStream;
use std::thread;
use std::time::Duration;

use bytes::BytesMut;
use cobra_wire::Limits;
use cobra_wire::handshake::{
    ClientRequestParams, accept_response, client_request, parse_request, parse_response,
};
use cobra_wire::ws::{CloseFrame, Codec, Message, Role};
use common::{echo_until_close, read_until};
use tungstenite::Message as TMsg;

fn pair() -> (UnixStream, UnixStream) {
    let (a, b) = UnixStream::pair().unwrap();
    for s in [&a, &b] {
        // A bug must fail the test, not hang it.
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    }
    (a, b)
}

fn messages() -> Vec<Message> {
    vec![
        Message::Text("hello".into()),
        Message::Text("ünïcödé ".repeat(5000)),
        Message::Binary((0..100_000u32).map(|i| i as u8).collect()),
        Message::Binary(vec![]),
        Message::Text(String::new()),
    ]
}

#[test]
fn tungstenite_client_against_our_server() {
    let (ours, theirs) = pair();
    let server = thread::spawn(move || {
        let mut s = ours;
        let mut buf = BytesMut::new();
        let limits = Limits {
            fragment_size: 1000,
            ..Limits::default()
        };
        let req = read_until(&mut s, &mut buf, |b| {
            parse_request(b, &limits).unwrap().map(|(r, n)| {
                let _ = b.split_to(n);
                r
            })
        });
        assert!(req.is_websocket_upgrade);
        assert_eq!(req.query_param("appkey").as_deref(), Some("k"));
        let key = req.ws_key.unwrap();
        s.write_all(&accept_response(
            &key,
            Some("json"),
            None,
            &[("X-Cobra-Node", "test")],
        ))
        .unwrap();
        let mut codec = Codec::new(Role::Server, limits, None);
        echo_until_close(&mut s, &mut buf, &mut codec).expect("a close frame with a code")
    });
    let mut req =
        tungstenite::client::IntoClientRequest::into_client_request("ws://localhost/v2?appkey=k")
            .unwrap();
    req.headers_mut()
        .insert("Sec-WebSocket-Protocol", "json".parse().unwrap());
    let (mut ws, resp) = tungstenite::client(req, theirs).unwrap();
    assert_eq!(resp.headers()["X-Cobra-Node"], "test");
    for m in messages() {
        let t = match &m {
            Message::Text(t) => TMsg::text(t.clone()),
            Message::Binary(b) => TMsg::binary(b.clone()),
            _ => unreachable!(),
        };
        ws.send(t.clone()).unwrap();
        assert_eq!(ws.read().unwrap(), t);
    }
    ws.send(TMsg::Ping(b"are you there".to_vec().into()))
        .unwrap();
    assert_eq!(
        ws.read().unwrap(),
        TMsg::Pong(b"are you there".to_vec().into())
    );
    ws.close(Some(tungstenite::protocol::CloseFrame {
        code: 1000.into(),
        reason: "bye".into(),
    }))
    .unwrap();
    // Our server echoes the close; tungstenite reports it as Close (or as closed).
    match ws.read() {
        Ok(TMsg::Close(Some(c))) => assert_eq!(u16::from(c.code), 1000),
        Err(tungstenite::Error::ConnectionClosed) => {}
        other => panic!("{other:?}"),
    }
    assert_eq!(
        server.join().unwrap(),
        CloseFrame {
            code: 1000,
            reason: "bye".into()
        }
    );
}

#[test]
fn our_client_against_tungstenite_server() {
    let (mut ours, theirs) = pair();
    let server = thread::spawn(move || {
        let mut ws = tungstenite::accept(theirs).unwrap();
        loop {
            match ws.read() {
                Ok(m @ (TMsg::Text(_) | TMsg::Binary(_))) => ws.send(m).unwrap(),
                Ok(TMsg::Close(_)) => {
                    // tungstenite answers the close itself; flush it out.
                    let _ = ws.flush();
                    return;
                }
                Ok(_) => {}
                Err(e) => panic!("tungstenite server: {e}"),
            }
        }
    });
    let limits = Limits {
        fragment_size: 777,
        ..Limits::default()
    };
    let (req, key) = client_request(&ClientRequestParams {
        host: "localhost",
        port: 8765,
        path_and_query: "/v2?appkey=k",
        ..Default::default()
    })
    .unwrap();
    ours.write_all(&req).unwrap();
    let mut buf = BytesMut::new();
    let resp = read_until(&mut ours, &mut buf, |b| {
        parse_response(b, &key, &limits).unwrap().map(|(r, n)| {
            let _ = b.split_to(n);
            r
        })
    });
    assert_eq!(resp.status, 101);
    let mut codec = Codec::new(Role::Client, limits, None);
    let mut out = Vec::new();
    for m in messages() {
        out.clear();
        match &m {
            Message::Text(t) => codec.encode_text(t, &mut out),
            Message::Binary(b) => codec.encode_binary(b, &mut out),
            _ => unreachable!(),
        }
        // A ping in the middle of the bytes: tungstenite answers it automatically.
        codec.encode_ping(b"x", &mut out).unwrap();
        ours.write_all(&out).unwrap();
        let mut got = Vec::new();
        while got.len() < 2 {
            got.push(read_until(&mut ours, &mut buf, |b| {
                codec.decode(b).unwrap()
            }));
        }
        got.sort_by_key(|m| matches!(m, Message::Pong(_)));
        assert_eq!(got, vec![m, Message::Pong(b"x".to_vec())]);
    }
    out.clear();
    codec.encode_close(1001, "going away", &mut out).unwrap();
    ours.write_all(&out).unwrap();
    let m = read_until(&mut ours, &mut buf, |b| codec.decode(b).unwrap());
    assert_eq!(
        m,
        Message::Close(Some(CloseFrame {
            code: 1001,
            reason: "going away".into()
        }))
    );
    server.join().unwrap();
}
