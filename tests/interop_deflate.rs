//! permessage-deflate interop of the SDK's `Client` with third-party WebSocket servers: Python
//! `websockets` and Node `ws` (installed by `scripts/install-peers.sh`), each under several
//! server-side parameter variants.
//!
//! The peers are the echo scripts in `tests/peers/`, which speak just enough cobra (handshake,
//! authenticate, subscribe, publish) for the real `Client` to run unchanged: each publish comes
//! back as subscription data, large answers fragmented. Every test sends messages of varied sizes
//! (empty to 1 MiB, incompressible ones above 64 KiB so our side fragments too, multi-byte
//! UTF-8), checks each comes back intact and in order, and asks the peer (by reading the keys
//! `negotiated_extensions` and `wire_stats`) what it negotiated and whether our messages really
//! arrived compressed.

mod support;

use std::sync::Arc;
use std::time::Duration;

use cobra::{Client, DeflateOptions, Event, SubscribeOptions};
use cobra_test_support::process::{EchoPeer, start_node_echo, start_python_echo};
use cobra_wire::pmd::{self, Deflater};
use serde_json::{Value, json};
use support::{Recorder, SECRET, config, wait_until};

const T: Duration = Duration::from_secs(30);
const CHANNEL: &str = "echo";

/// Deterministic pseudo-random text (xorshift): barely compressible, so deflate leaves these
/// messages above the 64 KiB fragment size and our side sends them fragmented.
fn noise(len: usize, mut seed: u64) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    (0..len)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            ALPHABET[(seed % 64) as usize] as char
        })
        .collect()
}

/// The messages each test publishes: frame-length boundaries (125/126, 64 KiB), telemetry
/// events that share a dictionary across messages (context takeover), multi-byte UTF-8, big
/// compressible and big incompressible payloads.
fn messages() -> Vec<Value> {
    let mut out = vec![
        json!(""),
        json!({}),
        json!(0),
        json!("x".repeat(100)),
        json!("y".repeat(123)),
        json!("z".repeat(124)),
        json!("w".repeat(65_530)),
        json!("v".repeat(65_540)),
    ];
    for i in 0..150 {
        out.push(json!({
            "id": "engine_fps_id",
            "data": {"fps": i % 60, "frame": i, "scene": "lobby"},
            "session": "4f1c2a9e-7d1b-4c55-9a53-3c2fbd2d0c11",
            "version": 1,
            "device": {"game": "wiso", "os": "android", "model": "Pixel 7", "app_version": "1.2.3"},
            "per_id_counter": i,
        }));
    }
    out.push(json!("é🎮ü".repeat(30_000))); // 270 KB of multi-byte UTF-8
    out.push(json!(
        (0..20_000)
            .map(|i| json!({"n": i, "tag": "metric"}))
            .collect::<Vec<_>>()
    )); // ~450 KB, compresses well
    out.push(json!(noise(200_000, 7)));
    out.push(json!({"blob": noise(1 << 20, 11), "after": "end"}));
    for i in 0..20 {
        out.push(json!({"i": i, "pad": noise(i * 997, i as u64 + 1)}));
    }
    out
}

/// Messages whose publish PDU is surely compressed when deflate is on: above the codec's 128-byte
/// minimum, below the 1 MiB past which the SDK streams a message uncompressed, fragment by
/// fragment, and shrunk enough by deflate on its own (a client without context takeover sends
/// what does not shrink uncompressed, `pmd::saves_enough`; RFC 7692 lets a sender skip
/// compression per message).
fn compressible_count(messages: &[Value]) -> usize {
    let mut deflater = Deflater::new(1, 15, true);
    messages
        .iter()
        .map(|m| m.to_string())
        .filter(|m| (1 << 10..(1 << 20) - (1 << 10)).contains(&m.len()))
        .filter(|m| {
            let mut out = Vec::new();
            deflater
                .compress(m.as_bytes(), &mut out)
                .is_ok_and(|()| pmd::saves_enough(m.len(), out.len()))
        })
        .count()
}

/// What the peer must have negotiated.
struct Expect {
    /// `Some(params)`: permessage-deflate with each of `params` in the answer; `None`: no extension.
    deflate: Option<&'static [&'static str]>,
    /// Prefix of the peer's version string (proves which peer answered).
    version_prefix: &'static str,
}

/// Connects with `offer`, round-trips [`messages`] through the peer and checks the negotiation.
/// Returns the peer's `wire_stats`.
fn round_trip(peer: &EchoPeer, offer: Option<DeflateOptions>, expect: &Expect) -> Value {
    let rec = Arc::new(Recorder::default());
    let client = Client::new(config(&peer.url()).deflate(offer), Some(rec.clone())).unwrap();
    client.connect().unwrap();
    let handshake = rec.wait_for(T, "handshake", |e| matches!(e, Event::Handshake { .. }));
    let Event::Handshake { server_version, .. } = handshake else {
        unreachable!()
    };
    assert!(
        server_version.starts_with(expect.version_prefix),
        "{server_version}"
    );
    rec.wait_for(T, "authenticated", |e| matches!(e, Event::Authenticated));

    // What the server answered, as it saw it.
    let negotiated = client
        .read("negotiated_extensions", T)
        .expect("read negotiated_extensions")
        .and_then(|v| v.as_str().map(String::from))
        .expect("negotiated_extensions is a string");
    match expect.deflate {
        None => assert_eq!(negotiated, "", "no extension expected"),
        Some(params) => {
            assert!(
                negotiated.starts_with("permessage-deflate"),
                "{negotiated:?}"
            );
            for p in params {
                assert!(
                    negotiated.split(';').any(|x| x.trim() == *p),
                    "expected {p:?} in {negotiated:?}"
                );
            }
        }
    }

    client.subscribe(SubscribeOptions::new(CHANNEL)).unwrap();
    rec.wait_for(T, "subscribed", |e| matches!(e, Event::Subscribed { .. }));
    let sent = messages();
    let ids: Vec<_> = sent
        .iter()
        .map(|m| client.publish(CHANNEL, m).expect("publish"))
        .collect();
    let received = || rec.data_messages(None);
    // Counted under the lock: cloning megabytes of events every poll would starve the engine.
    let echoed = || -> usize {
        let events = rec.events.lock().unwrap();
        events
            .iter()
            .map(|e| match e {
                Event::SubscriptionData { messages, .. } => messages.len(),
                _ => 0,
            })
            .sum()
    };
    let deadline = std::time::Instant::now() + T;
    while echoed() < sent.len() {
        assert!(
            std::time::Instant::now() < deadline,
            "{} of {} messages echoed; other events: {:?}",
            echoed(),
            sent.len(),
            rec.snapshot()
                .into_iter()
                .filter(|e| !matches!(e, Event::SubscriptionData { .. } | Event::Published { .. }))
                .collect::<Vec<_>>()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    wait_until(T, "every publish acknowledged", || {
        rec.count(|e| matches!(e, Event::Published { .. })) >= ids.len()
    });
    let got = received();
    assert_eq!(got.len(), sent.len(), "no extra message");
    for (i, (g, s)) in got.iter().zip(&sent).enumerate() {
        assert!(
            g == s,
            "message {i} differs: sent {} bytes, got {} bytes",
            s.to_string().len(),
            g.to_string().len()
        );
    }
    let errors: Vec<_> = rec
        .snapshot()
        .into_iter()
        .filter(|e| {
            matches!(
                e,
                Event::Error { .. } | Event::Closed { .. } | Event::PublishDropped { .. }
            )
        })
        .collect();
    assert!(errors.is_empty(), "unexpected events: {errors:?}");

    let stats = client
        .read("wire_stats", T)
        .expect("read wire_stats")
        .expect("wire_stats present");
    client.disconnect().unwrap();
    stats
}

fn count(stats: &Value, key: &str) -> u64 {
    stats[key].as_u64().unwrap_or(0)
}

/// Checks the Python peer's frame counts: with deflate, our messages arrived compressed (RSV1)
/// and some fragmented; without, nothing was compressed.
fn check_python_stats(stats: &Value, deflate: bool) {
    let want = compressible_count(&messages()) as u64;
    let compressed = count(stats, "compressed_messages_in");
    if deflate {
        assert!(
            compressed >= want,
            "{want} messages surely compressed: {stats}"
        );
        assert!(
            count(stats, "data_frames_in") > count(stats, "messages_in"),
            "no fragmented message arrived: {stats}"
        );
    } else {
        assert_eq!(compressed, 0, "{stats}");
    }
}

/// The Node peer counts socket bytes against payload bytes instead.
fn check_node_stats(stats: &Value, deflate: bool) {
    let wire = count(stats, "wire_bytes_in");
    let payload = count(stats, "payload_bytes_in");
    assert!(payload > 1 << 20, "{stats}");
    if deflate {
        // The noise is ~75% of its size after deflate, the rest shrinks far more.
        assert!(wire < payload * 9 / 10, "not compressed? {stats}");
    } else {
        assert!(wire >= payload, "{stats}");
    }
}

const PY: &str = "pyws-17";

fn python_case(
    args: &[&str],
    offer: Option<DeflateOptions>,
    expect: Option<&'static [&'static str]>,
) {
    let Some(peer) = start_python_echo(SECRET, args) else {
        return;
    };
    let stats = round_trip(
        &peer,
        offer,
        &Expect {
            deflate: expect,
            version_prefix: PY,
        },
    );
    check_python_stats(&stats, expect.is_some());
}

#[test]
fn python_websockets_default_deflate() {
    // The library default: 12-bit windows both ways.
    python_case(
        &[],
        Some(DeflateOptions::default()),
        Some(&["server_max_window_bits=12", "client_max_window_bits=12"]),
    );
}

#[test]
fn python_websockets_server_max_window_bits_10() {
    python_case(
        &["--server-max-window-bits", "10"],
        Some(DeflateOptions::default()),
        Some(&["server_max_window_bits=10"]),
    );
}

#[test]
fn python_websockets_client_max_window_bits_9() {
    // Our compressor must shrink its window to what the server allows.
    python_case(
        &["--client-max-window-bits", "9"],
        Some(DeflateOptions::default()),
        Some(&["client_max_window_bits=9"]),
    );
}

#[test]
fn python_websockets_client_no_context_takeover() {
    python_case(
        &["--client-no-context-takeover"],
        Some(DeflateOptions::default()),
        Some(&["client_no_context_takeover"]),
    );
}

#[test]
fn python_websockets_server_no_context_takeover() {
    python_case(
        &["--server-no-context-takeover"],
        Some(DeflateOptions::default()),
        Some(&["server_no_context_takeover"]),
    );
}

#[test]
fn python_websockets_compression_disabled() {
    python_case(&["--no-compression"], Some(DeflateOptions::default()), None);
}

#[test]
fn python_websockets_our_offer_variants() {
    // Our side asks for no context takeover both ways and a 9-bit server window.
    python_case(
        &[],
        Some(DeflateOptions {
            client_max_window_bits: 15,
            server_max_window_bits: 9,
            client_no_context_takeover: true,
            server_no_context_takeover: true,
        }),
        Some(&[
            "server_max_window_bits=9",
            "client_no_context_takeover",
            "server_no_context_takeover",
        ]),
    );
}

#[test]
fn python_websockets_deflate_off_on_our_side() {
    python_case(&[], None, None);
}

fn node_case(pmd: Value, expect: Option<&'static [&'static str]>) {
    let Some(peer) = start_node_echo(SECRET, &pmd.to_string()) else {
        return;
    };
    let stats = round_trip(
        &peer,
        Some(DeflateOptions::default()),
        &Expect {
            deflate: expect,
            version_prefix: "node-ws-8",
        },
    );
    check_node_stats(&stats, expect.is_some());
}

#[test]
fn node_ws_threshold_0() {
    node_case(json!({"threshold": 0}), Some(&[]));
}

#[test]
fn node_ws_server_no_context_takeover() {
    node_case(
        json!({"threshold": 0, "serverNoContextTakeover": true}),
        Some(&["server_no_context_takeover"]),
    );
}

#[test]
fn node_ws_client_no_context_takeover() {
    node_case(
        json!({"threshold": 0, "clientNoContextTakeover": true}),
        Some(&["client_no_context_takeover"]),
    );
}

#[test]
fn node_ws_server_max_window_bits_10() {
    node_case(
        json!({"threshold": 0, "serverMaxWindowBits": 10}),
        Some(&["server_max_window_bits=10"]),
    );
}

#[test]
fn node_ws_client_max_window_bits_9() {
    node_case(
        json!({"threshold": 0, "clientMaxWindowBits": 9}),
        Some(&["client_max_window_bits=9"]),
    );
}

#[test]
fn node_ws_compression_disabled() {
    node_case(json!(false), None);
}
