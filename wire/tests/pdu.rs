//! PDU parsing and building.

use cobra_wire::pdu::{self, Pdu, PduError, PublishBody, SubscribeBody, SubscriptionData, action};
use serde_json::Value;

#[test]
fn parse_publish_keeps_raw_message_and_id() {
    let text = r#"{"action":"rtm/publish","id":"abc","body":{"channel":"c","message":{"b": [1, 2],"a":1}}}"#;
    let p = Pdu::parse(text).unwrap();
    assert_eq!(p.action, action::PUBLISH);
    assert_eq!(p.id.unwrap().get(), r#""abc""#);
    let body: PublishBody = p.body_as().unwrap();
    assert_eq!(body.channel.as_deref(), Some("c"));
    assert_eq!(
        body.message.unwrap().get(),
        r#"{"b": [1, 2],"a":1}"#,
        "forwarded byte for byte"
    );
    let p = Pdu::parse(r#"{"action":"rtm/publish","body":{}}"#).unwrap();
    assert!(p.id.is_none());
    assert!(p.body_as::<PublishBody>().unwrap().message.is_none());
}

#[test]
fn bad_input_is_a_typed_error() {
    for bad in [
        "",
        "[]",
        "nope",
        r#"{"id":1}"#,
        r#"{"action":3}"#,
        r#"{"action":"a""#,
    ] {
        assert!(
            matches!(Pdu::parse(bad), Err(PduError::BadEnvelope(_))),
            "{bad}"
        );
    }
    let p = Pdu::parse(r#"{"action":"rtm/subscribe","id":1,"body":{"channel":5}}"#).unwrap();
    match p.body_as::<SubscribeBody>() {
        Err(PduError::BadBody { action, message }) => {
            assert_eq!(action, "rtm/subscribe");
            assert!(message.contains("expected a string"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    let p = Pdu::parse(r#"{"action":"rtm/unsubscribe","id":1,"body":{}}"#).unwrap();
    match p.body_as::<pdu::UnsubscribeBody>() {
        Err(PduError::BadBody { message, .. }) => {
            assert!(message.contains("subscription_id"), "{message}")
        }
        other => panic!("{other:?}"),
    }
    let p = Pdu::parse(r#"{"action":"rtm/read","id":1}"#).unwrap();
    assert!(matches!(
        p.body_as::<pdu::ReadBody>(),
        Err(PduError::MissingBody { .. })
    ));
}

#[test]
fn responses_are_valid_json() {
    let p = Pdu::parse(r#"{"action":"rtm/publish","id":7,"body":{}}"#).unwrap();
    let ok = pdu::ok(&p.action, p.id, &serde_json::json!({"channels": ["c"]}));
    let v: Value = serde_json::from_str(&ok).unwrap();
    assert_eq!(
        v,
        serde_json::json!({"action":"rtm/publish/ok","id":7,"body":{"channels":["c"]}})
    );
    let err = pdu::error(
        "rtm/publish",
        None,
        "invalid_argument",
        "missing \"channel\"\n",
    );
    let v: Value = serde_json::from_str(&err).unwrap();
    assert_eq!(
        v,
        serde_json::json!({"action":"rtm/publish/error","id":1,"body":{"error":"invalid_argument","reason":"missing \"channel\"\n"}})
    );
}

#[test]
fn subscription_data_round_trips_through_the_sdk_parser() {
    let mut out = String::new();
    let msgs = [r#"{"fps":30}"#, r#"[1,"x"]"#];
    pdu::subscription_data(&mut out, "fps\u{1}\"", 42, "1-2", msgs);
    let p = Pdu::parse(&out).unwrap();
    assert_eq!(p.action, action::SUBSCRIPTION_DATA);
    assert_eq!(p.id_u64(), Some(42));
    let d: SubscriptionData<'_> = p.body_borrowed().unwrap();
    assert_eq!(d.subscription_id, "fps\u{1}\"");
    assert_eq!(d.position.as_deref(), Some("1-2"));
    assert_eq!(d.messages.iter().map(|m| m.get()).collect::<Vec<_>>(), msgs);
}

#[test]
fn sdk_requests_and_responses() {
    let body = pdu::HandshakeBody {
        method: "role_secret".into(),
        data: pdu::HandshakeData { role: "r".into() },
    };
    let req = pdu::request(action::AUTH_HANDSHAKE, 1, &body);
    let v: Value = serde_json::from_str(&req).unwrap();
    assert_eq!(
        v,
        serde_json::json!({"action":"auth/handshake","id":1,"body":{"method":"role_secret","data":{"role":"r"}}})
    );
    let mut out = String::new();
    pdu::write_publish(&mut out, 9, "chan", r#"{"a":1}"#);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        v,
        serde_json::json!({"action":"rtm/publish","id":9,"body":{"channel":"chan","message":{"a":1}}})
    );

    let ok = r#"{"action":"auth/handshake/ok","id":1,"body":{"data":{"nonce":"n","version":"v","connection_id":12,"node":"h"}}}"#;
    let p = Pdu::parse(ok).unwrap();
    assert_eq!(p.outcome(), Some("ok"));
    let b: pdu::HandshakeOkBody = p.body_as().unwrap();
    assert_eq!(b.data.nonce, "n");
    assert_eq!(b.data.connection_id.as_deref(), Some("12"));
    // The reference puts sentences (or anything) in `error`.
    let e = r#"{"action":"rtm/publish/error","id":1,"body":{"error":{"x":1},"reason":"r"}}"#;
    let p = Pdu::parse(e).unwrap();
    assert_eq!(p.outcome(), Some("error"));
    let b: pdu::ErrorBody = p.body_as().unwrap();
    assert_eq!(b.error, r#"{"x":1}"#);
    let read = r#"{"action":"rtm/read/ok","id":1,"body":{"message":null}}"#;
    let b: pdu::ReadOkBody = Pdu::parse(read).unwrap().body_as().unwrap();
    assert!(b.message.is_none());
}

#[test]
fn every_request_body_rejects_wrong_types() {
    fn bad<T: serde::de::DeserializeOwned + std::fmt::Debug>(body: &str, field: &str) {
        let text = format!(r#"{{"action":"x","id":1,"body":{body}}}"#);
        let p = Pdu::parse(&text).unwrap();
        match p.body_as::<T>() {
            Err(PduError::BadBody { message, .. }) => {
                assert!(
                    message.contains(field) || message.contains("invalid type"),
                    "{body}: {message}"
                )
            }
            other => panic!("{body}: {other:?}"),
        }
    }
    bad::<PublishBody>(r#"{"channel":1}"#, "channel");
    bad::<PublishBody>(r#"{"channels":"c"}"#, "channels");
    bad::<PublishBody>(r#"{"channels":[1]}"#, "channels");
    bad::<SubscribeBody>(r#"{"batch_size":"10"}"#, "batch_size");
    bad::<SubscribeBody>(r#"{"batch_size":-1}"#, "batch_size");
    bad::<SubscribeBody>(r#"{"fast_forward":"yes"}"#, "fast_forward");
    bad::<SubscribeBody>(r#"{"filter":{}}"#, "filter");
    bad::<SubscribeBody>(r#"[]"#, "object");
    bad::<SubscribeBody>(r#"["c"]"#, "object");
    bad::<PublishBody>(r#""text""#, "object");
    bad::<pdu::ReadBody>(r#"{"position":"1-1"}"#, "channel");
    bad::<pdu::WriteBody>(r#"{"channel":[]}"#, "channel");
    bad::<pdu::DeleteBody>(r#"{}"#, "channel");
    bad::<pdu::HandshakeBody>(r#"{"method":"role_secret"}"#, "data");
    bad::<pdu::HandshakeBody>(r#"{"method":"role_secret","data":{"role":5}}"#, "role");
    bad::<pdu::AuthenticateBody>(r#"{"method":"role_secret","credentials":{}}"#, "hash");
    bad::<pdu::CloseConnectionBody>(r#"{"connection_id":null}"#, "connection_id");
    // Ids and connection ids may be numbers or strings.
    let p = Pdu::parse(r#"{"action":"admin/close_connection","id":3,"body":{"connection_id":17}}"#)
        .unwrap();
    assert_eq!(
        p.body_as::<pdu::CloseConnectionBody>()
            .unwrap()
            .connection_id,
        "17"
    );
    let p = Pdu::parse(r#"{"action":"rtm/write","id":"w","body":{"channel":"k","message":"v"}}"#)
        .unwrap();
    assert_eq!(p.id_u64(), None);
    assert_eq!(
        p.body_as::<pdu::WriteBody>()
            .unwrap()
            .message
            .unwrap()
            .get(),
        r#""v""#
    );
}

#[test]
fn escaping_covers_control_characters_and_unicode() {
    let mut out = String::new();
    pdu::push_json_str(&mut out, "a\"b\\c\nd\u{0}\u{1f}é😀\t\r");
    let back: String = serde_json::from_str(&out).unwrap();
    assert_eq!(back, "a\"b\\c\nd\u{0}\u{1f}é😀\t\r");
}

/// The answer names are their request's name plus the outcome suffix (they are spelled out as
/// constants so that both sides can `match` on them).
#[test]
fn answer_actions_are_request_plus_suffix() {
    use cobra_wire::pdu::action::*;
    for (request, ok, error) in [
        (AUTH_HANDSHAKE, AUTH_HANDSHAKE_OK, AUTH_HANDSHAKE_ERROR),
        (
            AUTH_AUTHENTICATE,
            AUTH_AUTHENTICATE_OK,
            AUTH_AUTHENTICATE_ERROR,
        ),
        (PUBLISH, PUBLISH_OK, PUBLISH_ERROR),
        (SUBSCRIBE, SUBSCRIBE_OK, SUBSCRIBE_ERROR),
    ] {
        assert_eq!(ok, format!("{request}{OK_SUFFIX}"));
        assert_eq!(error, format!("{request}{ERROR_SUFFIX}"));
    }
}
