//! Fuzzing on stable Rust: property tests with structure-aware generators, run with a large
//! case count by `scripts/test-fuzz.sh` (`PROPTEST_CASES`, default 256 under `cargo test`).
//! They complete what `wire/tests/prop.rs` (random bytes and frames into the codec) and
//! `server/src/streamsql/tests.rs` (random statements against both evaluators) already do:
//!
//! - the WebSocket decoder with permessage-deflate never returns a message over the limit,
//!   however the compressed stream is built (bombs, random deflate blocks, random cuts);
//! - PDUs built from every action with fields of random types, sent to a real server: every
//!   answer is an ok or an error PDU with a stable code (or a bad_schema close), never silence;
//! - StreamSQL on hostile statements (deep nesting, long LIKE patterns, huge numbers) and
//!   hostile messages (deep JSON, huge numbers, odd unicode): a typed error or an outcome;
//! - the apps config loader (YAML and the gzip+base64 environment form) on mutated configs.
//!
//! The committed seed corpus in `fuzz/corpus/<target>/` replays first, as regression tests.

mod common;

use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use cobra_server::config::AppsConfig;
use cobra_server::config::source::decode_content;
use cobra_server::streamsql::Query;
use cobra_wire::Limits;
use cobra_wire::pdu::action;
use cobra_wire::pmd::{Deflater, Negotiated};
use cobra_wire::ws::{Codec, Message, Role};
use common::Client;
use proptest::prelude::*;
use serde_json::{Value, json};

fn corpus(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "empty corpus {}", dir.display());
    files
        .into_iter()
        .map(|p| {
            let b = std::fs::read(&p).unwrap();
            (p, b)
        })
        .collect()
}

// ---- StreamSQL ----------------------------------------------------------------------------

/// Parses and, when it parses, evaluates on the message both ways; returns quickly or fails.
fn streamsql_target(sql: &str, message: &str) {
    let started = Instant::now();
    if let Ok(q) = Query::parse(sql) {
        let raw = q.eval_raw(message);
        if let Ok(v) = serde_json::from_str::<Value>(message) {
            let _ = q.eval_value(&v);
        }
        let _ = raw;
    }
    // The limits keep any one statement on any one (bounded) message far under this.
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "slow: {sql:.80} on {message:.80}"
    );
}

fn streamsql_seed(bytes: &[u8]) {
    let text = String::from_utf8_lossy(bytes);
    let (sql, msg) = text.split_once("\n---\n").unwrap_or((&text, "{}"));
    streamsql_target(sql, msg);
}

fn hostile_sql() -> impl Strategy<Value = String> {
    prop_oneof![
        (0usize..200).prop_map(|n| format!(
            "select * from c where {}a = 1{}",
            "(".repeat(n),
            ")".repeat(n)
        )),
        (0usize..200).prop_map(|n| format!("select * from c where {}a = 1", "not ".repeat(n))),
        ("[%_a\\\\]{0,400}").prop_map(|p| format!("select * from c where a like '{p}'")),
        (1usize..400)
            .prop_map(|n| format!("select * from c where a in ({})", vec!["1"; n].join(","))),
        (1usize..40).prop_map(|n| format!(
            "select {} from c",
            vec!["a.b.c.d.e.f.g.h.i.j.k.l.m.n.o.p.q"; n].join(",")
        )),
        "[0-9eE.+-]{1,400}".prop_map(|n| format!("select * from c where a > {n}")),
        "\\PC{0,200}".prop_map(|s| format!("select * from c where a = '{s}'")),
        "[ ()'`.,=<>!*%_a-zA-Z0-9-]{0,300}",
    ]
}

fn hostile_message() -> impl Strategy<Value = String> {
    prop_oneof![
        (0usize..300).prop_map(|n| format!(r#"{{"a":{}1{}}}"#, "[".repeat(n), "]".repeat(n))),
        (0usize..300).prop_map(|n| "{\"a\":".repeat(n) + "1" + &"}".repeat(n)),
        "[0-9]{1,500}".prop_map(|n| format!(r#"{{"a":{n}}}"#)),
        "-?[0-9]{1,3}(\\.[0-9]{1,3})?[eE][+-]?[0-9]{1,7}".prop_map(|n| format!(r#"{{"a":{n}}}"#)),
        "\\PC{0,100}".prop_map(|s| json!({"a": s, "b": {"c": s}}).to_string()),
        "\\PC{0,100}",
        (0usize..50).prop_map(|n| format!(r#"{{{}"a":1}}"#, r#""a":0,"#.repeat(n))),
    ]
}

// ---- WebSocket + permessage-deflate --------------------------------------------------------

/// Feeds `wire` into a server codec in pieces; checks no message exceeds the limit.
fn ws_target(wire: &[u8], deflate: Option<Negotiated>, cuts: &[usize]) {
    let limits = Limits {
        max_message_size: 4096,
        max_frame_size: 2048,
        ..Limits::default()
    };
    let mut rx = Codec::new(Role::Server, limits, deflate);
    let mut buf = BytesMut::new();
    let mut fed = 0;
    let mut pieces: Vec<usize> = cuts.iter().map(|c| c % (wire.len() + 1)).collect();
    pieces.push(wire.len());
    pieces.sort_unstable();
    for end in pieces {
        buf.extend_from_slice(&wire[fed..end.max(fed)]);
        fed = end.max(fed);
        loop {
            match rx.decode(&mut buf) {
                Ok(Some(Message::Text(t))) => assert!(t.len() <= 4096, "{} bytes", t.len()),
                Ok(Some(Message::Binary(b))) => assert!(b.len() <= 4096, "{} bytes", b.len()),
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(_) => return,
            }
        }
        // The decoder holds at most one frame of input.
        assert!(buf.len() <= 2048 + 14 + wire.len().min(2048 + 14));
    }
}

/// A masked client frame.
fn client_frame(first: u8, payload: &[u8], key: [u8; 4]) -> Vec<u8> {
    let mut f = vec![first];
    match payload.len() {
        n if n < 126 => f.push(0x80 | n as u8),
        n if n <= 0xffff => {
            f.push(0x80 | 126);
            f.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            f.push(0x80 | 127);
            f.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    f.extend_from_slice(&key);
    f.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
    f
}

fn negotiated() -> Negotiated {
    Negotiated {
        client_no_context_takeover: false,
        server_no_context_takeover: false,
        client_max_window_bits: 15,
        server_max_window_bits: 15,
        level: 6,
    }
}

/// Compressed payloads: bombs (runs that inflate far over the limit), real deflate of random
/// data, and deflate output with random bytes flipped.
fn compressed_stream() -> impl Strategy<Value = Vec<u8>> {
    (
        prop_oneof![
            (1usize..200_000, any::<u8>()).prop_map(|(n, b)| vec![b; n]),
            proptest::collection::vec(any::<u8>(), 0..3000),
        ],
        proptest::collection::vec((any::<usize>(), any::<u8>()), 0..4),
        1usize..6,
        any::<[u8; 4]>(),
    )
        .prop_map(|(plain, flips, parts, key)| {
            let mut z = Vec::new();
            Deflater::new(9, 15, true).compress(&plain, &mut z).unwrap();
            for (at, b) in flips {
                if !z.is_empty() {
                    let i = at % z.len();
                    z[i] ^= b;
                }
            }
            // Split into `parts` frames: RSV1 on the first only, FIN on the last.
            let chunk = z.len().div_ceil(parts).max(1);
            let pieces: Vec<&[u8]> = if z.is_empty() {
                vec![&[][..]]
            } else {
                z.chunks(chunk).collect()
            };
            let last = pieces.len() - 1;
            let mut wire = Vec::new();
            for (i, p) in pieces.iter().enumerate() {
                let opcode = if i == 0 { 0x01 } else { 0x00 };
                let rsv1 = if i == 0 { 0x40 } else { 0 };
                let fin = if i == last { 0x80 } else { 0 };
                wire.extend(client_frame(fin | rsv1 | opcode, p, key));
            }
            wire
        })
}

// ---- PDUs against a real server ------------------------------------------------------------

/// Every request the server serves, and one it does not.
fn actions() -> Vec<&'static str> {
    let mut all = cobra_wire::pdu::action::REQUESTS.to_vec();
    all.push("rtm/nope");
    all
}

const FIELDS: [&str; 16] = [
    "channel",
    "channels",
    "message",
    "subscription_id",
    "filter",
    "position",
    "batch_size",
    "fast_forward",
    "method",
    "data",
    "role",
    "credentials",
    "hash",
    "connection_id",
    "id",
    "body",
];

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        "\\PC{0,20}".prop_map(Value::from),
        "(0|[0-9]{1,20})-(0|[0-9]{1,20})".prop_map(Value::from),
        "select \\* from [a-z]{1,3}( where [a-z] [<>=] [0-9])?".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            proptest::collection::btree_map(
                proptest::sample::select(&FIELDS[..]).prop_map(str::to_owned),
                inner,
                0..4
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn pdu() -> impl Strategy<Value = String> {
    (
        proptest::sample::select(actions()),
        json_value(),
        proptest::collection::btree_map(proptest::sample::select(&FIELDS[..]), json_value(), 0..5),
        any::<bool>(),
    )
        .prop_map(|(action, id, fields, body_is_object)| {
            let body = if body_is_object {
                Value::Object(fields.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
            } else {
                fields.into_values().next().unwrap_or(Value::Null)
            };
            json!({"action": action, "id": id, "body": body}).to_string()
        })
}

/// Sends one PDU on `c`: the server answers each request (or closes after bad_schema).
/// Returns false when the connection was closed (the caller reconnects).
fn pdu_target(c: &mut Client, text: &str) -> bool {
    c.send_text(text);
    // A marker request right after: whatever the fuzzed PDU did, the marker gets its answer
    // unless the connection was closed for bad_schema.
    c.send_text(r#"{"action":"rtm/read","id":"marker","body":{"channel":"k"}}"#);
    loop {
        match c.recv() {
            Ok(Message::Text(t)) => {
                let v: Value = serde_json::from_str(&t).expect("server sends JSON");
                let action = v["action"].as_str().expect("action");
                assert!(v.get("id").is_some(), "no id: {v}");
                if action.ends_with("/error") {
                    let code = v["body"]["error"].as_str().unwrap_or("");
                    assert!(
                        !code.is_empty()
                            && code.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
                        "unstable error code in {v} for {text}"
                    );
                }
                if v["id"] == "marker" {
                    return true;
                }
            }
            Ok(Message::Close(f)) => {
                let code = f.map_or(1005, |f| f.code);
                assert_eq!(code, 1000, "closed {code} after {text}");
                return false;
            }
            Ok(_) => {}
            Err(e) => panic!("{e} after {text}"),
        }
    }
}

fn pdu_seed(c: &mut Option<Client>, addr: std::net::SocketAddr, bytes: &[u8]) {
    let text = String::from_utf8_lossy(bytes);
    let conn = c.get_or_insert_with(|| Client::authed(addr, "app1", "all"));
    if !pdu_target(conn, &text) {
        *c = None;
    }
}

// ---- Apps config -----------------------------------------------------------------------------

const GOOD_CONFIG: &str = "apps:\n  game:\n    roles:\n      pub:\n        secret: 0123456789abcdef0123456789abcdef\n        permissions: [publish, subscribe]\n      old:\n        secret: abc\n        permission: admin\n    channel_builder:\n      - {field: kind, separator: '.'}\nchannel_max_length: 100\n";

fn apps_target(text: &[u8]) {
    if let Ok(s) = std::str::from_utf8(text) {
        let _ = AppsConfig::from_yaml(s);
        let _ = decode_content(s);
    }
    // The environment form of the same bytes.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(text).unwrap();
    let b64 = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        gz.finish().unwrap(),
    );
    let _ = decode_content(&b64);
}

fn mutated_config() -> impl Strategy<Value = Vec<u8>> {
    (proptest::collection::vec(
        (
            any::<prop::sample::Index>(),
            0usize..8,
            "[\\PC\n:{}\\[\\],&*!|>-]{0,6}",
        ),
        0..6,
    ),)
        .prop_map(|(edits,)| {
            let mut s = GOOD_CONFIG.to_owned();
            for (at, del, ins) in edits {
                let i = at.index(s.len() + 1);
                let i = (0..=i).rev().find(|&i| s.is_char_boundary(i)).unwrap_or(0);
                let mut j = (i + del).min(s.len());
                while !s.is_char_boundary(j) {
                    j += 1;
                }
                s.replace_range(i..j, &ins);
            }
            s.into_bytes()
        })
}

// ---- The tests ---------------------------------------------------------------------------

#[test]
fn seed_corpus_replays() {
    for (path, bytes) in corpus("streamsql") {
        eprintln!("{}", path.display());
        streamsql_seed(&bytes);
    }
    for (_, bytes) in corpus("ws") {
        ws_target(&bytes, None, &[]);
        ws_target(&bytes, Some(negotiated()), &[]);
    }
    for (_, bytes) in corpus("apps") {
        apps_target(&bytes);
    }
    let server = common::start();
    let mut c = None;
    for (_, bytes) in corpus("pdu") {
        pdu_seed(&mut c, server.local_addr(), &bytes);
    }
    // Still serving after the whole corpus.
    let mut probe = Client::authed(server.local_addr(), "app1", "all");
    assert_eq!(
        probe.request(action::PUBLISH, json!({"channel": "x", "message": 1}))["action"],
        "rtm/publish/ok"
    );
}

proptest! {
    #[test]
    fn streamsql_hostile_statements_and_messages(sql in hostile_sql(), msg in hostile_message()) {
        streamsql_target(&sql, &msg);
    }

    #[test]
    fn inflated_messages_never_exceed_the_limit(wire in compressed_stream(),
                                                cuts in proptest::collection::vec(any::<usize>(), 0..4)) {
        ws_target(&wire, Some(negotiated()), &cuts);
    }

    #[test]
    fn apps_config_loader_never_panics(text in mutated_config()) {
        apps_target(&text);
    }
}

#[test]
fn random_pdus_always_get_an_answer() {
    // One server, one connection reused across cases (reconnecting after a bad_schema close).
    let server = common::start();
    let addr = server.local_addr();
    let conn: std::cell::RefCell<Option<Client>> = std::cell::RefCell::new(None);
    let mut runner =
        proptest::test_runner::TestRunner::new(proptest::test_runner::Config::default());
    runner
        .run(&pdu(), |text| {
            let mut conn = conn.borrow_mut();
            let c = conn.get_or_insert_with(|| Client::authed(addr, "app1", "all"));
            if !pdu_target(c, &text) {
                *conn = None;
            }
            Ok(())
        })
        .unwrap();
    let mut probe = Client::authed(addr, "app1", "all");
    assert_eq!(
        probe.request(action::PUBLISH, json!({"channel": "x", "message": 1}))["action"],
        "rtm/publish/ok"
    );
}
