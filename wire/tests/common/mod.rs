//! What the interop tests of this crate share.

use std::io::{Read, Write};

use bytes::BytesMut;
use cobra_wire::ws::{CloseFrame, Codec, Message};

/// Reads from `s` into `buf` until `f` yields something from the accumulated bytes; panics if
/// the peer closes first.
pub(crate) fn read_until<T>(
    s: &mut impl Read,
    buf: &mut BytesMut,
    mut f: impl FnMut(&mut BytesMut) -> Option<T>,
) -> T {
    loop {
        if let Some(t) = f(buf) {
            return t;
        }
        let mut chunk = [0u8; 16384];
        let n = s.read(&mut chunk).expect("read from the peer");
        assert!(n > 0, "peer closed early");
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Our side of an echo peer: sends every data message back and answers pings until the peer
/// closes; echoes its close frame (code and reason) and returns it.
pub(crate) fn echo_until_close(
    s: &mut (impl Read + Write),
    buf: &mut BytesMut,
    codec: &mut Codec,
) -> Option<CloseFrame> {
    let mut out = Vec::new();
    loop {
        let m = read_until(s, buf, |b| codec.decode(b).expect("a valid frame"));
        out.clear();
        match m {
            Message::Text(t) => codec.encode_text(&t, &mut out),
            Message::Binary(d) => codec.encode_binary(&d, &mut out),
            Message::Ping(p) => codec.encode_pong(&p, &mut out).expect("pong"),
            Message::Pong(_) => continue,
            Message::Close(c) => {
                let (code, reason) = c.as_ref().map_or((1000, ""), |c| (c.code, &c.reason));
                codec.encode_close(code, reason, &mut out).expect("close");
                s.write_all(&out).expect("send the close");
                return c;
            }
        }
        s.write_all(&out).expect("send");
    }
}
