//! Property tests: arbitrary input never panics the decoder; anything we encode
//! decodes back to itself, in every role and permessage-deflate variant, however
//! the bytes are split.

use bytes::BytesMut;
use cobra_wire::Limits;
use cobra_wire::pmd::Negotiated;
use cobra_wire::ws::{CloseFrame, Codec, Message, Role, apply_mask};
use proptest::prelude::*;

fn role() -> impl Strategy<Value = Role> {
    prop_oneof![Just(Role::Client), Just(Role::Server)]
}

fn negotiated() -> impl Strategy<Value = Option<Negotiated>> {
    prop_oneof![
        Just(None),
        (8u8..=15, 8u8..=15, any::<bool>(), any::<bool>(), 0u32..=9).prop_map(
            |(cb, sb, cn, sn, level)| {
                Some(Negotiated {
                    client_no_context_takeover: cn,
                    server_no_context_takeover: sn,
                    client_max_window_bits: cb,
                    server_max_window_bits: sb,
                    level,
                })
            }
        ),
    ]
}

fn message() -> impl Strategy<Value = Message> {
    prop_oneof![
        4 => ".{0,300}".prop_map(Message::Text),
        // Compressible text, like JSON telemetry.
        2 => (0usize..200).prop_map(|n| Message::Text(r#"{"data":{"fps":30},"id":"x"}"#.repeat(n))),
        3 => proptest::collection::vec(any::<u8>(), 0..3000).prop_map(Message::Binary),
        1 => proptest::collection::vec(any::<u8>(), 0..=125).prop_map(Message::Ping),
        1 => proptest::collection::vec(any::<u8>(), 0..=125).prop_map(Message::Pong),
        1 => Just(Message::Close(None)),
        1 => (prop_oneof![1000u16..=1003, 1007u16..=1014, 3000u16..=4999], ".{0,30}")
            .prop_map(|(code, reason)| Message::Close(Some(CloseFrame { code, reason }))),
    ]
}

fn encode(codec: &mut Codec, m: &Message, out: &mut Vec<u8>) {
    match m {
        Message::Text(t) => codec.encode_text(t, out),
        Message::Binary(b) => codec.encode_binary(b, out),
        Message::Ping(p) => codec.encode_ping(p, out).unwrap(),
        Message::Pong(p) => codec.encode_pong(p, out).unwrap(),
        Message::Close(Some(c)) => codec.encode_close(c.code, &c.reason, out).unwrap(),
        Message::Close(None) => codec.encode_close_empty(out),
    }
}

fn peer(role: Role) -> Role {
    match role {
        Role::Client => Role::Server,
        Role::Server => Role::Client,
    }
}

/// Feeds `bytes` in chunks cut at `cuts` and collects messages until an error.
fn feed(
    codec: &mut Codec,
    bytes: &[u8],
    cuts: &[usize],
) -> Result<Vec<Message>, cobra_wire::ws::WsError> {
    let mut points: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
    points.push(bytes.len());
    points.sort_unstable();
    let mut buf = BytesMut::new();
    let mut got = Vec::new();
    let mut at = 0;
    for p in points {
        buf.extend_from_slice(&bytes[at..p]);
        at = p;
        while let Some(m) = codec.decode(&mut buf)? {
            got.push(m);
        }
    }
    Ok(got)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn round_trip(
        msgs in proptest::collection::vec(message(), 0..12),
        sender in role(),
        deflate in negotiated(),
        fragment_size in 1usize..2000,
        cuts in proptest::collection::vec(any::<usize>(), 0..8),
        compress_min_size in prop_oneof![Just(0usize), Just(128), 0usize..1000],
        release_every in 1usize..5,
    ) {
        let limits = Limits { fragment_size, ..Limits::default() };
        let mut tx = Codec::new(sender, limits, deflate);
        tx.set_compress_min_size(compress_min_size);
        let mut rx = Codec::new(peer(sender), limits, deflate);
        let mut wire = Vec::new();
        for (i, m) in msgs.iter().enumerate() {
            encode(&mut tx, m, &mut wire);
            if i % release_every == 0 {
                tx.release_idle_memory();
            }
        }
        let got = feed(&mut rx, &wire, &cuts).unwrap();
        prop_assert_eq!(got, msgs);
    }

    #[test]
    fn random_bytes_never_panic(
        bytes in proptest::collection::vec(any::<u8>(), 0..600),
        receiver in role(),
        deflate in negotiated(),
        cuts in proptest::collection::vec(any::<usize>(), 0..4),
    ) {
        let limits = Limits { max_message_size: 300, max_frame_size: 200, ..Limits::default() };
        let mut rx = Codec::new(receiver, limits, deflate);
        let _ = feed(&mut rx, &bytes, &cuts);
    }

    /// Random but well-formed frame headers reach the deeper checks
    /// (fragmentation order, RSV1, inflate, UTF-8, close payloads).
    #[test]
    fn random_frames_never_panic(
        frames in proptest::collection::vec(
            (any::<u8>(), proptest::collection::vec(any::<u8>(), 0..200), any::<[u8; 4]>()),
            0..10,
        ),
        receiver in role(),
        deflate in negotiated(),
    ) {
        let mut wire = Vec::new();
        for (b0, payload, key) in &frames {
            wire.push(*b0);
            let mask_bit = if receiver == Role::Server { 0x80 } else { 0 };
            if payload.len() < 126 {
                wire.push(mask_bit | payload.len() as u8);
            } else {
                wire.push(mask_bit | 126);
                wire.extend_from_slice(&(payload.len() as u16).to_be_bytes());
            }
            let start = wire.len();
            if receiver == Role::Server {
                wire.extend_from_slice(key);
            }
            let data = wire.len();
            wire.extend_from_slice(payload);
            if receiver == Role::Server {
                apply_mask(&mut wire[data..], *key);
            }
            let _ = start;
        }
        let limits = Limits { max_message_size: 500, ..Limits::default() };
        let mut rx = Codec::new(receiver, limits, deflate);
        let _ = feed(&mut rx, &wire, &[]);
    }

    #[test]
    fn handshake_and_pdu_parsers_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let limits = Limits { max_handshake_bytes: 200, ..Limits::default() };
        let _ = cobra_wire::handshake::parse_request(&bytes, &limits);
        let _ = cobra_wire::handshake::parse_response(&bytes, "dGhlIHNhbXBsZSBub25jZQ==", &limits);
        if let Ok(text) = std::str::from_utf8(&bytes) {
            if let Ok(p) = cobra_wire::pdu::Pdu::parse(text) {
                let _ = p.body_as::<cobra_wire::pdu::SubscribeBody>();
            }
            let _ = cobra_wire::pmd::client_accept(&Default::default(), text);
            let _ = cobra_wire::pmd::server_negotiate(&Default::default(), &[text]);
            let _ = text.parse::<cobra_wire::Position>();
        }
    }
}

proptest! {
    /// Whatever our client offers and whatever our server is configured to
    /// take, the server's answer is accepted by the client, both sides agree,
    /// and a message compressed by either side inflates on the other.
    #[test]
    fn negotiation_agrees_with_itself(
        c_cnct in any::<bool>(), c_snct in any::<bool>(),
        c_cbits in proptest::option::of(8u8..=15), c_sbits in proptest::option::of(8u8..=15),
        s_cnct in any::<bool>(), s_snct in any::<bool>(),
        s_sbits in 8u8..=15, s_cbits in 8u8..=15,
    ) {
        use cobra_wire::pmd::{PmdConfig, ServerPmdConfig, client_accept, client_offer, server_negotiate};
        let client = PmdConfig {
            client_no_context_takeover: c_cnct,
            server_no_context_takeover: c_snct,
            client_max_window_bits: c_cbits,
            server_max_window_bits: c_sbits,
            level: 1,
        };
        let server = ServerPmdConfig {
            server_no_context_takeover: s_snct,
            client_no_context_takeover: s_cnct,
            server_max_window_bits: s_sbits,
            client_max_window_bits: s_cbits,
            level: 1,
        };
        let offer = client_offer(&client);
        let (sn, answer) = server_negotiate(&server, &[&offer]).expect("our own offer is acceptable");
        let cn = client_accept(&client, &answer).expect("our own answer is acceptable");
        prop_assert_eq!(sn.client_no_context_takeover, cn.client_no_context_takeover);
        prop_assert_eq!(sn.server_no_context_takeover, cn.server_no_context_takeover);
        prop_assert_eq!(sn.server_max_window_bits, cn.server_max_window_bits);
        // The client may use less than the server assumes, never more.
        prop_assert!(cn.client_max_window_bits <= sn.client_max_window_bits);
        let text = r#"{"id":"engine_fps_id","data":{"fps":30}}"#.repeat(10);
        let mut c = Codec::new(Role::Client, Limits::default(), Some(cn));
        let mut s = Codec::new(Role::Server, Limits::default(), Some(sn));
        for _ in 0..3 {
            let mut wire = Vec::new();
            c.encode_text(&text, &mut wire);
            prop_assert_eq!(feed(&mut s, &wire, &[]).unwrap(), vec![Message::Text(text.clone())]);
            let mut wire = Vec::new();
            s.encode_text(&text, &mut wire);
            prop_assert_eq!(feed(&mut c, &wire, &[]).unwrap(), vec![Message::Text(text.clone())]);
        }
    }
}
