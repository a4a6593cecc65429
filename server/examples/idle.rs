//! Memory per idle authenticated connection of a running server (issue 7's measure).
//!
//! ```text
//! cobra run --port 8765 --max-connections 200000 &      # with an apps config holding
//! cargo run --release -p cobra-server --example idle -- 127.0.0.1:8765 $! 10000 APPKEY ROLE SECRET
//! ```
//! Opens N WebSocket connections, authenticates each, and reports the server's RSS growth
//! divided by N (read from `/proc/PID/statm`).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};

use bytes::BytesMut;
use cobra_wire::handshake::{self, ClientRequestParams};
use cobra_wire::ws::{Codec, Message, Role};
use serde_json::{Value, json};

fn rss(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/statm")).expect("server pid");
    s.split_whitespace().nth(1).unwrap().parse::<u64>().unwrap() * 4096
}

fn recv(stream: &mut TcpStream, codec: &mut Codec, rbuf: &mut BytesMut) -> String {
    loop {
        if let Some(Message::Text(t)) = codec.decode(rbuf).unwrap() {
            return t;
        }
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).unwrap();
        assert!(n > 0, "server closed");
        rbuf.extend_from_slice(&chunk[..n]);
    }
}

fn connect(addr: SocketAddr, appkey: &str, role: &str, secret: &str) -> TcpStream {
    let mut stream = TcpStream::connect(addr).unwrap();
    let path = format!("/v2?appkey={appkey}");
    let (req, key) = handshake::client_request(&ClientRequestParams {
        host: "127.0.0.1",
        port: addr.port(),
        path_and_query: &path,
        subprotocol: Some("json"),
        ..Default::default()
    })
    .unwrap();
    stream.write_all(&req).unwrap();
    let mut buf = Vec::new();
    let used = loop {
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).unwrap();
        assert!(n > 0, "closed during upgrade");
        buf.extend_from_slice(&chunk[..n]);
        if let Some((_, used)) =
            handshake::parse_response(&buf, &key, &cobra_wire::Limits::default()).unwrap()
        {
            break used;
        }
    };
    let mut rbuf = BytesMut::from(&buf[used..]);
    let mut codec = Codec::new(Role::Client, cobra_wire::Limits::default(), None);
    let mut out = Vec::new();
    codec.encode_text(&json!({"action": "auth/handshake", "id": 1, "body": {"method": "role_secret", "data": {"role": role}}}).to_string(), &mut out);
    stream.write_all(&out).unwrap();
    let hs: Value = serde_json::from_str(&recv(&mut stream, &mut codec, &mut rbuf)).unwrap();
    let hash =
        cobra_wire::auth::role_secret_hash(secret, hs["body"]["data"]["nonce"].as_str().unwrap());
    out.clear();
    codec.encode_text(&json!({"action": "auth/authenticate", "id": 2, "body": {"method": "role_secret", "credentials": {"hash": hash}}}).to_string(), &mut out);
    stream.write_all(&out).unwrap();
    let ok = recv(&mut stream, &mut codec, &mut rbuf);
    assert!(ok.contains("auth/authenticate/ok"), "{ok}");
    stream
}

fn main() {
    let a: Vec<String> = std::env::args().collect();
    let addr: SocketAddr = a[1].parse().unwrap();
    let pid: u32 = a[2].parse().unwrap();
    let n: usize = a[3].parse().unwrap();
    let (appkey, role, secret) = (&a[4], &a[5], &a[6]);
    // Warm up the server's allocator and runtime with a few connections first.
    let warm: Vec<TcpStream> = (0..100)
        .map(|_| connect(addr, appkey, role, secret))
        .collect();
    std::thread::sleep(std::time::Duration::from_millis(300));
    let before = rss(pid);
    let conns: Vec<TcpStream> = (0..n)
        .map(|_| connect(addr, appkey, role, secret))
        .collect();
    std::thread::sleep(std::time::Duration::from_millis(500));
    let after = rss(pid);
    println!(
        "{n} idle authenticated connections: server RSS {:.1} MB -> {:.1} MB, {:.0} bytes per connection",
        before as f64 / 1e6,
        after as f64 / 1e6,
        (after.saturating_sub(before)) as f64 / n as f64
    );
    drop(conns);
    drop(warm);
}
