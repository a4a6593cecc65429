//! Hostile input, end to end over real sockets: a table of malformed, oversized and absurd
//! inputs, each with its documented answer (an error PDU with a stable code that leaves the
//! connection usable, or a close with the right code), followed by checks that the server
//! still serves a healthy client and that its memory stayed bounded. Then the cases that need
//! more than one frame: thousands of subscriptions, half-open upgrades, a connection flood and
//! a subscriber that never reads.
//!
//! SECURITY.md points at the tests here; keep the names stable.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use cobra_wire::pdu::{action, error_code};
use common::{Client, CobraRun, SECRET, WAIT, http_get, start_with};
use serde_json::{Value, json};

/// The limit every case runs under: small, so over-limit inputs stay cheap to send.
const MAX_MESSAGE: usize = 64 << 10;

/// What a case sends after connecting (and authenticating, when the case says so).
enum Input {
    /// One text message, through the (possibly deflating) codec.
    Text(String),
    /// One binary message.
    Binary(Vec<u8>),
    /// Bytes written as they are (hand-made frames).
    Raw(Vec<u8>),
}

/// The documented answer.
#[derive(Debug, Clone, Copy)]
enum Expect {
    /// An error PDU `<action>/error` with `body.error == code`; the connection stays usable.
    Refused(&'static str, &'static str),
    /// An ok PDU `<action>/ok`: the input is odd but legal.
    Accepted(&'static str),
    /// An error PDU with this code, then a close with this code (the PDU makes no sense).
    RefusedThenClosed(&'static str, u16),
    /// A close frame with this code (a WebSocket-level violation).
    Closed(u16),
}

struct Case {
    name: &'static str,
    /// Authenticate as role `all` of `app1` first.
    authed: bool,
    /// Offer permessage-deflate (`Input::Text` is then compressed).
    deflate: bool,
    input: Input,
    expect: Expect,
}

fn pdu(action: &str, body: Value) -> Input {
    Input::Text(json!({"action": action, "id": 77, "body": body}).to_string())
}

fn raw_pdu(text: &str) -> Input {
    Input::Text(text.to_owned())
}

/// A client frame by hand: `first` is FIN|RSV|opcode; masked with a fixed key unless `unmasked`.
fn frame(first: u8, payload: &[u8], unmasked: bool) -> Vec<u8> {
    let mut f = vec![first];
    let mask_bit = if unmasked { 0 } else { 0x80 };
    match payload.len() {
        n if n < 126 => f.push(mask_bit | n as u8),
        n if n <= 0xffff => {
            f.push(mask_bit | 126);
            f.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            f.push(mask_bit | 127);
            f.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    if unmasked {
        f.extend_from_slice(payload);
    } else {
        let key = [0x12, 0x34, 0x56, 0x78];
        f.extend_from_slice(&key);
        f.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
    }
    f
}

fn nested(depth: usize) -> String {
    format!("{}1{}", "[".repeat(depth), "]".repeat(depth))
}

fn case(name: &'static str, authed: bool, input: Input, expect: Expect) -> Case {
    Case {
        name,
        authed,
        deflate: false,
        input,
        expect,
    }
}

fn cases() -> Vec<Case> {
    use Expect::*;
    use error_code::*;
    const SUB: &str = action::SUBSCRIBE;
    const PUB: &str = action::PUBLISH;
    const HANDSHAKE: &str = action::AUTH_HANDSHAKE;
    const AUTHENTICATE: &str = action::AUTH_AUTHENTICATE;
    // One line a case where the shape allows: these say what differs, `case` the rest.
    let bad = |name, text: &str| {
        case(
            name,
            false,
            raw_pdu(text),
            RefusedThenClosed(BAD_SCHEMA, 1000),
        )
    };
    let refused = |name, authed, act: &'static str, body: Value, code| {
        case(name, authed, pdu(act, body), Refused(act, code))
    };
    let accepted =
        |name, act: &'static str, body: Value| case(name, true, pdu(act, body), Accepted(act));
    let sub = |name, body: Value, code| refused(name, true, SUB, body, code);
    let publish = |name, body: Value, code| refused(name, true, PUB, body, code);
    // A subscribe to channel `c` whose body also holds `fields`.
    let sub_c = |name, fields: Value, code| {
        let mut body = json!({"channel": "c"});
        let extra = fields.as_object().expect("fields of an object").clone();
        body.as_object_mut().expect("an object").extend(extra);
        sub(name, body, code)
    };
    let closed = |name, bytes: Vec<u8>, code| case(name, false, Input::Raw(bytes), Closed(code));
    // `{"action": act, "id": 1, "body": {"channel": "c", "message": <depth nested lists>}}`.
    let nested_message = |name, act: &str, depth, expect| {
        let text = format!(
            r#"{{"action":"{act}","id":1,"body":{{"channel":"c","message":{}}}}}"#,
            nested(depth)
        );
        case(name, true, raw_pdu(&text), expect)
    };
    let deep_parens = format!(
        "select * from c where {}a = 1{}",
        "(".repeat(5000),
        ")".repeat(5000)
    );
    let huge_like = format!("select * from c where a like '{}'", "%_".repeat(4000));
    let long_statement = format!("select * from c where {}", vec!["a = 1"; 5000].join(" or "));
    let huge_number = format!("1{}", "0".repeat(10_000));
    let hash_x = json!({"method": "role_secret", "credentials": {"hash": "x"}});
    let mut v = vec![
        // Not JSON, or JSON that is not a PDU: one bad_schema answer, then a normal close.
        bad("malformed JSON", "{\"action\": \"rtm/publish\", "),
        bad("not JSON at all", "hello"),
        bad("JSON array", "[1, 2, 3]"),
        bad("JSON number", "42"),
        bad("JSON string", "\"rtm/publish\""),
        bad("JSON null", "null"),
        bad("empty text", ""),
        bad("action of the wrong type", r#"{"action": 5, "id": 1}"#),
        bad("action missing", r#"{"id": 1, "body": {}}"#),
        bad("unknown action", r#"{"action": "rtm/dance", "id": 1}"#),
        bad(
            "unknown action with control characters",
            "{\"action\": \"\\u0000\\u001b[31m\", \"id\": 1}",
        ),
        case(
            "extreme nesting in the body",
            true,
            raw_pdu(&format!(
                r#"{{"action":"rtm/publish","id":1,"body":{}}}"#,
                nested(20_000)
            )),
            Refused(PUB, INVALID_BODY),
        ),
        nested_message(
            "extreme nesting in the message",
            PUB,
            20_000,
            Refused(PUB, INVALID_MESSAGE),
        ),
        nested_message(
            "message nested 129 deep",
            PUB,
            129,
            Refused(PUB, INVALID_MESSAGE),
        ),
        case(
            "message nested 128 deep",
            true,
            raw_pdu(&format!(
                r#"{{"action":"rtm/publish","id":1,"body":{{"channel":"c","message":{{"s":"]]]\"[[[","a":{}}}}}}}"#,
                nested(127)
            )),
            Accepted(PUB),
        ),
        nested_message(
            "written value nested 20000 deep",
            action::WRITE,
            20_000,
            Refused(action::WRITE, INVALID_MESSAGE),
        ),
        bad(
            "extreme nesting in the id",
            &format!(r#"{{"action":"rtm/publish","id":{}}}"#, nested(10_000)),
        ),
        bad(
            "id out of the range of a double",
            &format!(
                r#"{{"action":"rtm/read","id":1{},"body":{{"channel":"k"}}}}"#,
                "0".repeat(400)
            ),
        ),
        bad("lone surrogate escape", r#"{"action": "\ud800", "id": 1}"#),
        // Wrong field types in every PDU: invalid_body, connection kept.
        refused(
            "handshake body not an object",
            false,
            HANDSHAKE,
            json!([]),
            INVALID_BODY,
        ),
        refused(
            "handshake method a number",
            false,
            HANDSHAKE,
            json!({"method": 1, "data": {"role": "all"}}),
            INVALID_BODY,
        ),
        refused(
            "handshake data a string",
            false,
            HANDSHAKE,
            json!({"method": "role_secret", "data": "all"}),
            INVALID_BODY,
        ),
        refused(
            "handshake role a number",
            false,
            HANDSHAKE,
            json!({"method": "role_secret", "data": {"role": 7}}),
            INVALID_BODY,
        ),
        refused(
            "handshake unknown method",
            false,
            HANDSHAKE,
            json!({"method": "plain", "data": {"role": "all"}}),
            UNSUPPORTED_METHOD,
        ),
        refused(
            "authenticate hash a number",
            false,
            AUTHENTICATE,
            json!({"method": "role_secret", "credentials": {"hash": 5}}),
            INVALID_BODY,
        ),
        refused(
            "authenticate credentials a number",
            false,
            AUTHENTICATE,
            json!({"method": "role_secret", "credentials": 5}),
            INVALID_BODY,
        ),
        refused(
            "authenticate again once authenticated",
            true,
            AUTHENTICATE,
            hash_x.clone(),
            HANDSHAKE_REQUIRED,
        ),
        refused(
            "authenticate without handshake",
            false,
            AUTHENTICATE,
            hash_x,
            HANDSHAKE_REQUIRED,
        ),
        refused(
            "publish before authenticating",
            false,
            PUB,
            json!({"channel": "c", "message": 1}),
            NOT_AUTHENTICATED,
        ),
        refused(
            "admin before authenticating",
            false,
            action::GET_CONNECTIONS,
            json!({}),
            NOT_AUTHENTICATED,
        ),
        publish("publish body a string", json!("c"), INVALID_BODY),
        publish(
            "publish channel a number",
            json!({"channel": 5, "message": 1}),
            INVALID_BODY,
        ),
        publish(
            "publish channels a string",
            json!({"channels": "c", "message": 1}),
            INVALID_BODY,
        ),
        publish(
            "publish channels of numbers",
            json!({"channels": [1, 2], "message": 1}),
            INVALID_BODY,
        ),
        publish(
            "publish without message",
            json!({"channel": "c"}),
            MISSING_MESSAGE,
        ),
        publish(
            "publish without channel",
            json!({"message": 1}),
            MISSING_CHANNEL,
        ),
        publish(
            "publish to an empty channel name",
            json!({"channel": "", "message": 1}),
            MISSING_CHANNEL,
        ),
        publish(
            "publish to a 2 KiB channel name",
            json!({"channel": "c".repeat(2048), "message": 1}),
            INVALID_CHANNEL,
        ),
        publish(
            "publish to 1000 channels",
            json!({"channels": (0..1000).map(|i| format!("c{i}")).collect::<Vec<_>>(), "message": 1}),
            TOO_MANY_CHANNELS,
        ),
        accepted("publish a huge integer", PUB, Value::Null),
        accepted("publish a float overflowing f64", PUB, Value::Null),
        accepted(
            "publish to a channel with control characters",
            PUB,
            json!({"channel": "a\u{0}b\u{1b}\n", "message": 1}),
        ),
        accepted(
            "publish to a channel with separators",
            PUB,
            json!({"channel": "app2::x/../y;z", "message": 1}),
        ),
        sub("subscribe body a list", json!([1]), INVALID_BODY),
        sub(
            "subscribe channel an object",
            json!({"channel": {}}),
            INVALID_BODY,
        ),
        sub_c(
            "subscribe filter a number",
            json!({"filter": 3}),
            INVALID_BODY,
        ),
        sub_c(
            "subscribe position a number",
            json!({"position": 12}),
            INVALID_BODY,
        ),
        sub_c(
            "subscribe fast_forward a string",
            json!({"fast_forward": "yes"}),
            INVALID_BODY,
        ),
        sub_c(
            "subscribe batch_size negative",
            json!({"batch_size": -1}),
            INVALID_BODY,
        ),
        sub_c(
            "subscribe batch_size a string",
            json!({"batch_size": "10"}),
            INVALID_BODY,
        ),
        sub_c(
            "subscribe batch_size a float",
            json!({"batch_size": 1.5}),
            INVALID_BODY,
        ),
        sub("subscribe batch_size over u64", Value::Null, INVALID_BODY),
        sub_c(
            "subscribe batch_size u64::MAX",
            json!({"batch_size": u64::MAX}),
            INVALID_BATCH_SIZE,
        ),
        sub_c(
            "subscribe position garbage",
            json!({"position": "abc"}),
            INVALID_POSITION,
        ),
        sub_c(
            "subscribe position negative",
            json!({"position": "-1-0"}),
            INVALID_POSITION,
        ),
        sub_c(
            "subscribe position three parts",
            json!({"position": "1-2-3"}),
            INVALID_POSITION,
        ),
        sub_c(
            "subscribe position overflowing u64",
            json!({"position": "99999999999999999999999-0"}),
            INVALID_POSITION,
        ),
        sub("subscribe without channel", json!({}), MISSING_CHANNEL),
        sub_c(
            "subscribe 2 KiB subscription id",
            json!({"subscription_id": "s".repeat(2048)}),
            INVALID_SUBSCRIPTION_ID,
        ),
        sub(
            "StreamSQL deep parentheses",
            json!({"filter": deep_parens}),
            INVALID_FILTER,
        ),
        sub(
            "StreamSQL huge LIKE pattern",
            json!({"filter": huge_like}),
            INVALID_FILTER,
        ),
        sub(
            "StreamSQL 5000 conditions",
            json!({"filter": long_statement}),
            INVALID_FILTER,
        ),
        sub(
            "StreamSQL garbage",
            json!({"filter": "select select from ((("}),
            INVALID_FILTER,
        ),
        sub(
            "StreamSQL with NUL bytes",
            json!({"filter": "select * from c where a = '\u{0}'\u{0}"}),
            INVALID_FILTER,
        ),
        refused(
            "unsubscribe id a number",
            true,
            action::UNSUBSCRIBE,
            json!({"subscription_id": 1}),
            INVALID_BODY,
        ),
        refused(
            "read channel a list",
            true,
            action::READ,
            json!({"channel": []}),
            INVALID_BODY,
        ),
        refused(
            "read position a number",
            true,
            action::READ,
            json!({"channel": "k", "position": 5}),
            INVALID_BODY,
        ),
        refused(
            "write channel null",
            true,
            action::WRITE,
            json!({"channel": null, "message": 1}),
            MISSING_CHANNEL,
        ),
        refused(
            "write without message",
            true,
            action::WRITE,
            json!({"channel": "k"}),
            MISSING_MESSAGE,
        ),
        refused(
            "write channel a number",
            true,
            action::WRITE,
            json!({"channel": 5, "message": 1}),
            INVALID_BODY,
        ),
        accepted(
            "get_connections body a string (the body is not used)",
            action::GET_CONNECTIONS,
            json!("x"),
        ),
        refused(
            "delete channel a number",
            true,
            action::DELETE,
            json!({"channel": 1}),
            INVALID_BODY,
        ),
        refused(
            "close_connection id a number",
            true,
            action::CLOSE_CONNECTION,
            json!({"connection_id": 5}),
            INVALID_BODY,
        ),
        // WebSocket-level violations: a close with the RFC 6455 code.
        closed(
            "text frame with invalid UTF-8",
            frame(0x81, b"{\"a\xff\xfe\"}", false),
            1007,
        ),
        case(
            "binary message that is not UTF-8",
            false,
            Input::Binary(vec![0xc3, 0x28, 0xa0]),
            Closed(1007),
        ),
        closed(
            "frame announcing 1 TiB",
            frame_header_only(0x82, 1 << 40),
            1009,
        ),
        closed(
            "frame with a 64-bit length MSB set",
            frame_header_only(0x82, 1 << 63),
            1002,
        ),
        closed(
            "single frame over the message limit",
            frame(0x81, &vec![b' '; MAX_MESSAGE + 1], false),
            1009,
        ),
        closed(
            "fragments adding up over the limit",
            fragments(MAX_MESSAGE / 4, 6),
            1009,
        ),
        closed("unmasked client frame", frame(0x81, b"{}", true), 1002),
        closed(
            "RSV1 without permessage-deflate",
            frame(0xC1, b"{}", false),
            1002,
        ),
        closed("RSV2 set", frame(0xA1, b"{}", false), 1002),
        closed("reserved data opcode", frame(0x83, b"{}", false), 1002),
        closed("reserved control opcode", frame(0x8B, b"", false), 1002),
        closed("ping of 126 bytes", frame(0x89, &[0; 126], false), 1002),
        closed("fragmented ping", frame(0x09, b"x", false), 1002),
        closed(
            "continuation without a message",
            frame(0x80, b"{}", false),
            1002,
        ),
        closed(
            "new message inside a fragmented one",
            [frame(0x01, b"{", false), frame(0x81, b"{}", false)].concat(),
            1002,
        ),
        closed(
            "close with code 999",
            frame(0x88, &999u16.to_be_bytes(), false),
            1002,
        ),
        closed(
            "close with reserved code 1005",
            frame(0x88, &1005u16.to_be_bytes(), false),
            1002,
        ),
        closed(
            "close with a 1-byte payload",
            frame(0x88, &[3], false),
            1002,
        ),
        closed(
            "close reason not UTF-8",
            frame(0x88, &[0x03, 0xe8, 0xff], false),
            1007,
        ),
        closed(
            "close with an application code",
            frame(0x88, &4321u16.to_be_bytes(), false),
            4321,
        ),
        Case {
            name: "permessage-deflate bomb (16 MiB of zeros)",
            authed: true,
            deflate: true,
            input: Input::Text(format!(
                r#"{{"action":"rtm/publish","id":1,"body":{{"channel":"c","message":"{}"}}}}"#,
                "0".repeat(16 << 20)
            )),
            expect: Closed(1009),
        },
        Case {
            name: "compressed frame that is not deflate data",
            authed: false,
            deflate: true,
            input: Input::Raw(frame(0xC1, &[0xff; 64], false)),
            expect: Closed(1007),
        },
    ];
    // Inputs serde_json's `json!` cannot build.
    for c in &mut v {
        match c.name {
            "publish a huge integer" => {
                c.input = raw_pdu(&format!(
                    r#"{{"action":"rtm/publish","id":1,"body":{{"channel":"c","message":{{"n":{huge_number}}}}}}}"#
                ))
            }
            "publish a float overflowing f64" => {
                c.input = raw_pdu(
                    r#"{"action":"rtm/publish","id":1,"body":{"channel":"c","message":{"n":1e999999,"m":-1e-999999}}}"#,
                )
            }
            "subscribe batch_size over u64" => {
                c.input = raw_pdu(
                    r#"{"action":"rtm/subscribe","id":1,"body":{"channel":"c","batch_size":18446744073709551616}}"#,
                )
            }
            _ => {}
        }
    }
    v
}

/// A frame header announcing `len` bytes, without the payload.
fn frame_header_only(first: u8, len: u64) -> Vec<u8> {
    let mut f = vec![first, 0x80 | 127];
    f.extend_from_slice(&len.to_be_bytes());
    f.extend_from_slice(&[1, 2, 3, 4]);
    f
}

/// `count` text fragments of `size` bytes, never finished.
fn fragments(size: usize, count: usize) -> Vec<u8> {
    let mut out = frame(0x01, &vec![b' '; size], false);
    for _ in 1..count {
        out.extend(frame(0x00, &vec![b' '; size], false));
    }
    out
}

/// Sends the case's input and checks the answer; returns a description of any mismatch.
fn run_case(addr: SocketAddr, case: &Case) -> Result<(), String> {
    let ext = case.deflate.then_some("permessage-deflate");
    let mut c = Client::connect_ext(addr, "app1", ext)?;
    if case.authed {
        c.auth("all", SECRET).map_err(|e| format!("auth: {e}"))?;
    }
    match &case.input {
        Input::Text(t) => c.send_text(t),
        Input::Binary(b) => {
            let mut out = Vec::new();
            c.codec.encode_binary(b, &mut out);
            c.send_raw(&out);
        }
        Input::Raw(r) => {
            // The server may close before reading everything: a failed write is fine.
            let _ = c.stream.write_all(r);
        }
    }
    match case.expect {
        Expect::Refused(action, code) => {
            check_refusal(&mut c, Some(action), code)?;
            // Still usable: the next request is served.
            let (probe, body) = if case.authed {
                (action::PUBLISH, json!({"channel": "probe", "message": 1}))
            } else {
                (
                    action::AUTH_HANDSHAKE,
                    json!({"method": "role_secret", "data": {"role": "all"}}),
                )
            };
            let r = c.request(probe, body);
            if r["action"] != format!("{probe}/ok") {
                return Err(format!("connection unusable after the refusal: {r}"));
            }
            Ok(())
        }
        Expect::RefusedThenClosed(code, close) => {
            check_refusal(&mut c, None, code)?;
            expect_close(&mut c, close)
        }
        Expect::Accepted(action) => {
            let v = next_text(&mut c)?;
            if v["action"] != format!("{action}/ok") {
                return Err(format!("expected {action}/ok, got {v}"));
            }
            Ok(())
        }
        Expect::Closed(code) => expect_close(&mut c, code),
    }
}

/// The next PDU is an error answer with `code` (for `action`, when given), an id and a reason.
fn check_refusal(c: &mut Client, action: Option<&str>, code: &str) -> Result<(), String> {
    let v = next_text(c)?;
    let got = v["action"].as_str().unwrap_or("");
    if action.is_some_and(|a| format!("{a}/error") != got) || !got.ends_with("/error") {
        return Err(format!("expected an error PDU, got {v}"));
    }
    if v["body"]["error"] != code {
        return Err(format!("expected error {code}, got {v}"));
    }
    if v.get("id").is_none() || v["body"]["reason"].as_str().is_none_or(str::is_empty) {
        return Err(format!("error PDUs carry an id and a reason: {v}"));
    }
    Ok(())
}

fn next_text(c: &mut Client) -> Result<Value, String> {
    match c.recv()? {
        cobra_wire::ws::Message::Text(t) => serde_json::from_str(&t).map_err(|e| e.to_string()),
        other => Err(format!("expected a text PDU, got {other:?}")),
    }
}

fn expect_close(c: &mut Client, code: u16) -> Result<(), String> {
    match c.recv() {
        Ok(cobra_wire::ws::Message::Close(f)) => {
            let got = f.map_or(1005, |f| f.code);
            if got == code {
                Ok(())
            } else {
                Err(format!("expected close {code}, got close {got}"))
            }
        }
        Ok(other) => Err(format!("expected close {code}, got {other:?}")),
        Err(e) => Err(format!("expected close {code}, got {e}")),
    }
}

/// A healthy client can still publish, subscribe and receive.
fn assert_serves(addr: SocketAddr) {
    let mut sub = Client::authed(addr, "app1", "all");
    let r = sub.request(action::SUBSCRIBE, json!({"channel": "healthy"}));
    assert_eq!(r["action"], action::SUBSCRIBE_OK, "{r}");
    let mut publisher = Client::authed(addr, "app1", "all");
    let r = publisher.request(
        action::PUBLISH,
        json!({"channel": "healthy", "message": {"ok": true}}),
    );
    assert_eq!(r["action"], action::PUBLISH_OK, "{r}");
    assert_eq!(sub.next_data()["body"]["messages"], json!([{"ok": true}]));
    assert_eq!(http_get(addr, "/health/", "").0, 200);
}

#[test]
fn hostile_inputs_get_their_documented_answer() {
    let limit = MAX_MESSAGE.to_string();
    let server = CobraRun::start(
        100,
        &["--message-max-size", &limit, "--channel-max-length", "100"],
    );
    let addr = server.addr;
    let cases = cases();
    assert!(cases.len() >= 40, "{} cases", cases.len());
    eprintln!("{} hostile input cases", cases.len());
    // Warm up (allocator arenas, history filling) before taking the reference RSS.
    for case in &cases {
        let _ = run_case(addr, case);
    }
    let before = server.rss_kib();
    let mut failures = Vec::new();
    for round in 0..3 {
        for case in &cases {
            if let Err(e) = run_case(addr, case) {
                failures.push(format!("round {round}: {}: {e}", case.name));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert_serves(addr);
    // Three more rounds of every case must not have grown the server by more than a few
    // buffers' worth (the bomb alone would be 16 MiB per round if it were inflated).
    let grown = server.rss_kib().saturating_sub(before);
    eprintln!("server RSS {before} KiB after warm-up, +{grown} KiB after 3 rounds");
    assert!(
        grown < 16 * 1024,
        "server RSS grew by {grown} KiB over 3 rounds"
    );
}

#[test]
fn channel_names_with_separators_stay_inside_their_app() {
    let server = start_with(100, |_| {});
    let addr = server.local_addr();
    let mut other = Client::authed(addr, "app2", "all");
    assert_eq!(
        other.request(action::SUBSCRIBE, json!({"channel": "x"}))["action"],
        "rtm/subscribe/ok"
    );
    let mut c = Client::authed(addr, "app1", "all");
    for channel in ["app2::x", "::x", "app2", "app2:", ":app2::x", "x\u{0}app2"] {
        let r = c.request(
            action::PUBLISH,
            json!({"channel": channel, "message": channel}),
        );
        assert_eq!(r["action"], action::PUBLISH_OK, "{r}");
        let r = c.request(
            action::WRITE,
            json!({"channel": channel, "message": "from app1"}),
        );
        assert_eq!(r["action"], "rtm/write/ok", "{r}");
    }
    // app2 saw none of it: its history of `x` is empty and its key `x` unset.
    let r = other.request(action::READ, json!({"channel": "x"}));
    assert_eq!(r["body"]["message"], Value::Null, "{r}");
    let mut replay = Client::authed(addr, "app2", "all");
    let r = replay.request(
        action::SUBSCRIBE,
        json!({"channel": "x", "position": "0-0"}),
    );
    assert_eq!(r["action"], action::SUBSCRIBE_OK);
    let r = replay.request(
        action::PUBLISH,
        json!({"channel": "x", "message": "marker"}),
    );
    assert_eq!(r["action"], action::PUBLISH_OK);
    assert_eq!(replay.next_data()["body"]["messages"], json!(["marker"]));
    assert_eq!(other.next_data()["body"]["messages"], json!(["marker"]));
}

#[test]
fn thousands_of_subscriptions_on_one_connection_are_capped() {
    let server = start_with(100, |s| s.limits.max_subscriptions = 1024);
    let addr = server.local_addr();
    let mut c = Client::authed(addr, "app1", "all");
    // Pipeline the requests, then count the answers.
    let mut batch = String::new();
    let n = 3000;
    let mut out = Vec::new();
    for i in 0..n {
        batch.clear();
        batch.push_str(
            &json!({"action": "rtm/subscribe", "id": i, "body": {"channel": format!("c{i}")}})
                .to_string(),
        );
        c.codec.encode_text(&batch, &mut out);
    }
    c.send_raw(&out);
    let (mut ok, mut refused) = (0, 0);
    while ok + refused < n {
        let v = c.recv_json();
        match v["action"].as_str() {
            Some(action::SUBSCRIBE_OK) => ok += 1,
            Some(action::SUBSCRIBE_ERROR) => {
                assert_eq!(
                    v["body"]["error"],
                    error_code::TOO_MANY_SUBSCRIPTIONS,
                    "{v}"
                );
                refused += 1;
            }
            _ => panic!("unexpected {v}"),
        }
    }
    assert_eq!((ok, refused), (1024, n - 1024));
    // The subscriptions it got work, and so does everyone else.
    let mut p = Client::authed(addr, "app1", "all");
    assert_eq!(
        p.request(action::PUBLISH, json!({"channel": "c1023", "message": 1}))["action"],
        "rtm/publish/ok"
    );
    assert_eq!(c.next_data()["body"]["subscription_id"], "c1023");
    assert_serves(addr);
}

#[test]
fn half_open_upgrades_are_dropped_and_others_are_served() {
    let server = start_with(100, |s| {
        s.limits.handshake_timeout = Duration::from_millis(300)
    });
    let addr = server.local_addr();
    let mut stalled: Vec<TcpStream> = (0..50)
        .map(|i| {
            let mut s = TcpStream::connect(addr).unwrap();
            s.set_read_timeout(Some(WAIT)).unwrap();
            // Half an upgrade request; a few send nothing at all.
            if i % 5 != 0 {
                s.write_all(b"GET /v2?appkey=app1 HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n")
                    .unwrap();
            }
            s
        })
        .collect();
    // Served meanwhile.
    assert_serves(addr);
    let started = Instant::now();
    for s in &mut stalled {
        let mut buf = [0u8; 256];
        // Dropped: EOF (or a reset), well before the test's own timeout.
        let n = s.read(&mut buf).unwrap_or(0);
        assert_eq!(n, 0, "got {:?}", String::from_utf8_lossy(&buf[..n]));
    }
    assert!(started.elapsed() < Duration::from_secs(5));
    // An upgrade head that never ends is refused once over the handshake bound.
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    let _ = s.write_all(b"GET /v2?appkey=app1 HTTP/1.1\r\n");
    let filler = format!("X-Filler: {}\r\n", "a".repeat(1000));
    for _ in 0..64 {
        if s.write_all(filler.as_bytes()).is_err() {
            break;
        }
    }
    let mut head = Vec::new();
    let _ = s.read_to_end(&mut head);
    let head = String::from_utf8_lossy(&head);
    assert!(head.is_empty() || head.starts_with("HTTP/1.1 4"), "{head}");
    assert_serves(addr);
}

#[test]
fn a_connection_flood_is_capped_with_503() {
    let server = start_with(100, |s| s.limits.max_connections = 20);
    let addr = server.local_addr();
    let mut held = Vec::new();
    let mut refused = 0;
    for _ in 0..200 {
        match Client::connect_ext(addr, "app1", None) {
            Ok(c) => held.push(c),
            Err(e) => {
                assert!(e.contains("503"), "{e}");
                refused += 1;
            }
        }
    }
    assert_eq!(held.len(), 20);
    assert_eq!(refused, 180);
    // The held ones work.
    for c in held.iter_mut().take(3) {
        c.auth("all", SECRET).unwrap();
    }
    drop(held);
    // Slots come back once the flood is gone.
    common::eventually("slots to free up", || {
        Client::connect_ext(addr, "app1", None).ok()
    });
    assert_serves(addr);
}

#[test]
fn a_subscriber_that_never_reads_costs_bounded_memory() {
    let server = CobraRun::start(
        100,
        &[
            "--outbound-queue-bytes",
            "1048576",
            "--channel-max-length",
            "100",
        ],
    );
    let addr = server.addr;
    let mut stuck = Client::authed(addr, "app1", "all");
    assert_eq!(
        stuck.request(action::SUBSCRIBE, json!({"channel": "firehose"}))["action"],
        "rtm/subscribe/ok"
    );
    // From now on `stuck` reads nothing.
    let mut p = Client::authed(addr, "app1", "all");
    let payload = "x".repeat(8 << 10);
    let started = Instant::now();
    let mut out = Vec::new();
    let mut publish = |from: u32, to: u32| {
        for i in from..to {
            c_send(&mut p, &mut out, i, &payload);
            if i % 50 == 49 {
                for _ in 0..50 {
                    let v = p.recv_json();
                    assert_eq!(v["action"], action::PUBLISH_OK, "{v}");
                }
            }
        }
    };
    // 8 MB to reach the steady state (queue full, history full), then 16 MB more.
    publish(0, 1000);
    let before = server.rss_kib();
    publish(1000, 3000);
    // The publisher was never held back by the stuck subscriber.
    assert!(started.elapsed() < Duration::from_secs(30));
    let grown = server.rss_kib().saturating_sub(before);
    eprintln!("server RSS {before} KiB at steady state, +{grown} KiB after 16 MB more");
    // Nothing per message is kept beyond the bounded queue and history: the 16 MB must not
    // show (tolerance: allocator noise).
    assert!(
        grown < 8 * 1024,
        "RSS grew by {grown} KiB while 16 MB went to a stuck subscriber"
    );
    drop(stuck);
    assert_serves(addr);
}

fn c_send(c: &mut Client, out: &mut Vec<u8>, i: u32, payload: &str) {
    out.clear();
    let text = json!({"action": "rtm/publish", "id": i, "body": {"channel": "firehose", "message": payload}}).to_string();
    c.codec.encode_text(&text, out);
    c.send_raw(out);
}

#[test]
fn a_flood_of_idle_sockets_is_capped_and_served_again_after_the_timeout() {
    let server = start_with(100, |s| {
        s.limits.max_connections = 10;
        s.limits.handshake_timeout = Duration::from_secs(2);
    });
    let addr = server.local_addr();
    // 100 sockets that never send a byte: the first 20 (twice the cap) wait for the handshake
    // timeout, the others are closed at once.
    let mut socks: Vec<TcpStream> = (0..100)
        .map(|_| TcpStream::connect(addr).unwrap())
        .collect();
    // Well before the 2 s handshake timeout: which sockets were closed, which are held?
    std::thread::sleep(Duration::from_millis(300));
    let (mut held, mut closed) = (0, 0);
    for s in &mut socks {
        s.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
        let mut b = [0u8; 1];
        match s.read(&mut b) {
            Ok(0) => closed += 1,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                held += 1
            }
            Err(_) => closed += 1,
            Ok(_) => panic!("the server sent bytes to a silent socket"),
        }
    }
    assert!(
        (10..=20).contains(&held),
        "{held} idle sockets held (cap 20), {closed} closed"
    );
    assert_eq!(held + closed, 100);
    // Once the idle ones time out, the server serves again.
    common::eventually("service after the flood", || {
        Client::connect_ext(addr, "app1", None).ok()
    });
    drop(socks);
    assert_serves(addr);
}
