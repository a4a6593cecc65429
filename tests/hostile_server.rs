//! The SDK against a hostile server: a small std::net peer in this file that answers every
//! connection with one kind of misbehaviour (garbage instead of HTTP, a 101 with the wrong
//! accept key or subprotocol, an upgrade head that never ends, garbage frames, huge messages,
//! a deflate bomb, PDUs that are not JSON...). Each case has its documented answer: a typed
//! `Event::Error` of the right kind, then a retry after backoff; never a panic, a hang or
//! unbounded memory; and `disconnect()` still returns at once.

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use cobra::{Client, ErrorKind, Event, State};
use cobra_wire::handshake;
use support::{Recorder, config, wait_until};

const T: Duration = Duration::from_secs(10);

/// How the hostile peer answers each connection.
#[derive(Clone, Copy, Debug)]
enum Behaviour {
    /// Bytes that are not HTTP at all.
    GarbageInsteadOfHttp,
    /// HTTP 500.
    ServerError,
    /// A 101 whose Sec-WebSocket-Accept is not derived from our key.
    WrongAcceptKey,
    /// A 101 selecting a subprotocol we did not offer.
    WrongSubprotocol,
    /// A 101 without any subprotocol (accepted: RFC 6455 lets a server select none), then
    /// silence.
    NoSubprotocol,
    /// A 101 accepting an extension we did not offer.
    UnofferedExtension,
    /// A 101 with permessage-deflate parameters we did not offer.
    BadDeflateParameters,
    /// Headers forever, never the blank line.
    EndlessHeaders,
    /// Accepts TCP and never answers the upgrade.
    SilentUpgrade,
    /// Upgrades, then sends random bytes.
    GarbageFrames,
    /// Upgrades, then announces a 1 TiB frame.
    HugeFrame,
    /// Upgrades, then sends a message over the client's max message size in fragments.
    HugeFragmentedMessage,
    /// Upgrades with deflate, then sends a compressed message inflating to 8 MiB.
    DeflateBomb,
    /// Upgrades, then sends a masked frame (servers must not mask).
    MaskedFrame,
    /// Upgrades, then a text frame that is not UTF-8.
    InvalidUtf8,
    /// Upgrades, then a text PDU that is not JSON.
    NotJson,
    /// Upgrades, then answers the handshake PDU with `auth/handshake/ok` lacking a nonce.
    HandshakeOkWithoutNonce,
    /// Upgrades, then never answers the handshake PDU.
    SilentAfterUpgrade,
}

struct HostilePeer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl HostilePeer {
    fn start(behaviour: Behaviour) -> HostilePeer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut workers = Vec::new();
            while !s.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((tcp, _)) => {
                        let s = s.clone();
                        workers.push(std::thread::spawn(move || serve(tcp, behaviour, &s)));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
            for w in workers {
                let _ = w.join();
            }
        });
        HostilePeer {
            addr,
            stop,
            thread: Some(thread),
        }
    }

    fn url(&self) -> String {
        format!("ws://{}", self.addr)
    }
}

impl Drop for HostilePeer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// An unmasked (server) frame.
fn frame(first: u8, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![first];
    match payload.len() {
        n if n < 126 => f.push(n as u8),
        n if n <= 0xffff => {
            f.push(126);
            f.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            f.push(127);
            f.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    f.extend_from_slice(payload);
    f
}

/// 8 MiB of spaces deflated (a few KiB), computed once: the client's limit is 256 KiB.
fn bomb() -> &'static [u8] {
    static BOMB: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    BOMB.get_or_init(|| {
        let mut z = Vec::new();
        cobra_wire::pmd::Deflater::new(1, 15, true)
            .compress(&vec![b' '; 8 << 20], &mut z)
            .expect("deflate");
        z
    })
}

/// Reads the upgrade request; `None` if the client went away.
fn read_request(tcp: &mut TcpStream, stop: &AtomicBool) -> Option<handshake::Request> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    while !stop.load(Ordering::Relaxed) {
        match tcp.read(&mut chunk) {
            Ok(0) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut =>
            {
                continue;
            }
            Err(_) => return None,
        }
        if let Ok(Some((req, _))) = handshake::parse_request(&buf, &cobra_wire::Limits::default()) {
            return Some(req);
        }
    }
    None
}

/// Keeps the connection open (reading and discarding) until the client leaves or the test ends.
fn linger(tcp: &mut TcpStream, stop: &AtomicBool) {
    let mut chunk = [0u8; 4096];
    while !stop.load(Ordering::Relaxed) {
        match tcp.read(&mut chunk) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(_) => return,
        }
    }
}

fn serve(mut tcp: TcpStream, behaviour: Behaviour, stop: &AtomicBool) {
    use Behaviour::*;
    tcp.set_read_timeout(Some(Duration::from_millis(20)))
        .unwrap();
    let Some(req) = read_request(&mut tcp, stop) else {
        return;
    };
    let key = req.ws_key.clone().unwrap_or_default();
    let accept = |ext: Option<&str>| handshake::accept_response(&key, Some("json"), ext, &[]);
    let offered_deflate = req
        .extensions
        .iter()
        .any(|e| e.contains("permessage-deflate"));
    let out: Vec<u8> = match behaviour {
        GarbageInsteadOfHttp => b"\x00\x01\x02 garbage \xff\xfe\r\n\r\n".to_vec(),
        ServerError => b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n".to_vec(),
        WrongAcceptKey => {
            handshake::accept_response("AAAAAAAAAAAAAAAAAAAAAA==", Some("json"), None, &[])
        }
        WrongSubprotocol => handshake::accept_response(&key, Some("msgpack"), None, &[]),
        NoSubprotocol => handshake::accept_response(&key, None, None, &[]),
        UnofferedExtension => accept(Some("x-webkit-deflate-frame")),
        BadDeflateParameters => accept(Some(
            "permessage-deflate; server_max_window_bits=3; bogus=1",
        )),
        EndlessHeaders => {
            let _ = tcp.write_all(b"HTTP/1.1 101 Switching Protocols\r\n");
            let line = format!("X-Filler: {}\r\n", "a".repeat(1000));
            while !stop.load(Ordering::Relaxed) && tcp.write_all(line.as_bytes()).is_ok() {}
            return;
        }
        SilentUpgrade => {
            linger(&mut tcp, stop);
            return;
        }
        DeflateBomb if offered_deflate => {
            let mut out = accept(Some("permessage-deflate"));
            let compressed = bomb();
            out.extend(frame(0xC1, compressed));
            out
        }
        DeflateBomb => b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n".to_vec(),
        _ => accept(None),
    };
    if tcp.write_all(&out).is_err() {
        return;
    }
    let after: Vec<u8> = match behaviour {
        GarbageFrames => (0..4096u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect(),
        HugeFrame => {
            let mut f = vec![0x82, 127];
            f.extend_from_slice(&(1u64 << 40).to_be_bytes());
            f
        }
        HugeFragmentedMessage => {
            // 8 x 64 KiB = 512 KiB, over the 256 KiB the test configures; never finished.
            let part = vec![b' '; 64 << 10];
            let mut f = frame(0x01, &part);
            for _ in 0..7 {
                f.extend(frame(0x00, &part));
            }
            f
        }
        MaskedFrame => {
            let mut f = frame(0x81, b"{}");
            f[1] |= 0x80;
            f.splice(2..2, [1, 2, 3, 4]);
            f
        }
        InvalidUtf8 => frame(0x81, b"{\"action\":\"\xff\xfe\"}"),
        NotJson => frame(0x81, b"this is not json"),
        HandshakeOkWithoutNonce => {
            // Wait for the handshake PDU, then answer it badly.
            std::thread::sleep(Duration::from_millis(50));
            frame(
                0x81,
                br#"{"action":"auth/handshake/ok","id":1,"body":{"data":{}}}"#,
            )
        }
        _ => Vec::new(),
    };
    let _ = tcp.write_all(&after);
    linger(&mut tcp, stop);
}

struct Outcome {
    kinds: Vec<ErrorKind>,
    messages: Vec<String>,
}

/// Connects to a peer behaving as `behaviour`, waits for two failed attempts (so the client
/// retried after the first), checks the client stays disconnected-but-alive, and that
/// `disconnect()` returns at once.
fn run(behaviour: Behaviour) -> Outcome {
    let peer = HostilePeer::start(behaviour);
    let cfg = config(&peer.url())
        .timeouts(
            Duration::from_secs(2),
            Duration::from_millis(500),
            Duration::from_secs(1),
        )
        .max_message_size(256 << 10)
        .ping_interval(Duration::from_millis(200))
        .pong_timeout(Duration::from_millis(300));
    let rec = Arc::new(Recorder::default());
    let client = Client::new(cfg, Some(rec.clone())).unwrap();
    client.connect().unwrap();
    wait_until(T, &format!("{behaviour:?}: two failed attempts"), || {
        rec.count(|e| matches!(e, Event::Error { .. })) >= 2
    });
    assert_eq!(
        rec.count(|e| matches!(e, Event::Authenticated)),
        0,
        "{behaviour:?}"
    );
    assert_ne!(client.state(), State::Connected, "{behaviour:?}");
    let t = Instant::now();
    client.disconnect().unwrap();
    assert!(
        t.elapsed() < Duration::from_millis(200),
        "{behaviour:?}: disconnect took {:?}",
        t.elapsed()
    );
    let (kinds, messages) = rec
        .snapshot()
        .into_iter()
        .filter_map(|e| match e {
            Event::Error { kind, message, .. } => Some((kind, message)),
            _ => None,
        })
        .unzip();
    Outcome { kinds, messages }
}

#[test]
fn a_hostile_server_gets_typed_errors_and_backoff() {
    use Behaviour::*;
    // (behaviour, expected error kind, a word the message must contain)
    let table: &[(Behaviour, ErrorKind, &str)] = &[
        (GarbageInsteadOfHttp, ErrorKind::Handshake, ""),
        (ServerError, ErrorKind::Handshake, "500"),
        (WrongAcceptKey, ErrorKind::Handshake, "accept"),
        (WrongSubprotocol, ErrorKind::Handshake, "subprotocol"),
        (NoSubprotocol, ErrorKind::Timeout, ""),
        (UnofferedExtension, ErrorKind::Handshake, "extension"),
        (BadDeflateParameters, ErrorKind::Handshake, ""),
        (EndlessHeaders, ErrorKind::Handshake, ""),
        (SilentUpgrade, ErrorKind::Timeout, "handshake"),
        (GarbageFrames, ErrorKind::Protocol, ""),
        (HugeFrame, ErrorKind::Protocol, ""),
        (HugeFragmentedMessage, ErrorKind::Protocol, ""),
        (DeflateBomb, ErrorKind::Protocol, ""),
        (MaskedFrame, ErrorKind::Protocol, ""),
        (InvalidUtf8, ErrorKind::Protocol, ""),
        (NotJson, ErrorKind::Protocol, ""),
        (HandshakeOkWithoutNonce, ErrorKind::Protocol, ""),
        (SilentAfterUpgrade, ErrorKind::Timeout, ""),
    ];
    let _ = bomb();
    let mut failures = Vec::new();
    for &(behaviour, kind, word) in table {
        let out = run(behaviour);
        let first = out.kinds[0];
        if first != kind || !out.messages[0].to_lowercase().contains(word) {
            failures.push(format!(
                "{behaviour:?}: expected {kind:?} containing {word:?}, got {:?}",
                out.kinds.iter().zip(&out.messages).collect::<Vec<_>>()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
