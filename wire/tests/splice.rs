//! Compress once, splice into many connections: `SharedDeflate`,
//! `Codec::encode_text_spliced` and `Codec::encode_text_with`, decoded by real client codecs.

use bytes::BytesMut;
use cobra_wire::Limits;
use cobra_wire::pmd::{self, Deflater, PmdConfig, ServerPmdConfig, SharedDeflate};
use cobra_wire::ws::{Codec, Message, Role, Splice};

/// A server/client codec pair as negotiated from `client` against a server that always
/// answers `server_no_context_takeover`.
fn pair(client: &PmdConfig, limits: Limits) -> (Codec, Codec) {
    let server_cfg = ServerPmdConfig {
        server_no_context_takeover: true,
        ..ServerPmdConfig::default()
    };
    let (sn, answer) = pmd::server_negotiate(&server_cfg, &[&pmd::client_offer(client)]).unwrap();
    assert!(answer.contains("server_no_context_takeover"), "{answer}");
    let cn = pmd::client_accept(client, &answer).unwrap();
    (
        Codec::new(Role::Server, limits, Some(sn)),
        Codec::new(Role::Client, limits, Some(cn)),
    )
}

fn decode_all(client: &mut Codec, wire: &[u8]) -> Vec<String> {
    let mut inbox = BytesMut::from(wire);
    let mut out = Vec::new();
    while let Some(m) = client.decode(&mut inbox).unwrap() {
        match m {
            Message::Text(t) => out.push(t),
            other => panic!("{other:?}"),
        }
    }
    assert!(inbox.is_empty());
    out
}

fn event(i: usize, pad: usize) -> String {
    let filler: String = (0..pad)
        .map(|k| char::from(b'a' + ((k * 7 + i * 13) % 26) as u8))
        .collect();
    format!(r#"{{"id":"engine_fps_id","data":{{"fps":{i},"pad":"{filler}"}}}}"#)
}

#[test]
fn spliced_messages_decode_on_many_connections_with_context_takeover_clients() {
    let mut deflater = Deflater::new(1, 15, true);
    // Client side keeps its own context (default offer); the server's side has none.
    let mut conns: Vec<(Codec, Codec)> = (0..5)
        .map(|_| pair(&PmdConfig::default(), Limits::default()))
        .collect();
    let mut spliced = 0;
    for i in 0..200 {
        let text = event(i, (i * 37) % 900);
        let shared = SharedDeflate::compress(&mut deflater, text.as_bytes()).unwrap();
        for (sub, (server, client)) in conns.iter_mut().enumerate() {
            let prefix = format!(
                r#"{{"action":"rtm/subscription/data","id":{i},"body":{{"subscription_id":"s{sub}","messages":["#
            );
            let mut wire = Vec::new();
            let how = server.encode_text_spliced(&prefix, &text, &shared, "]}}", &mut wire);
            // A short event does not shrink enough alone and goes as it is.
            let want = if shared.pays_off() {
                spliced += 1;
                Splice::Compressed
            } else {
                Splice::Uncompressed
            };
            assert_eq!(how, want, "msg {i} sub {sub}");
            // Interleave ordinary compressed messages: the client's history must stay coherent.
            server.encode_text_with(&format!("{prefix}{text}]}}}}"), &mut deflater, &mut wire);
            server.encode_text(&format!("{prefix}{text}]}}}}"), &mut wire);
            let got = decode_all(client, &wire);
            let want = format!("{prefix}{text}]}}}}");
            assert_eq!(
                got,
                vec![want.clone(), want.clone(), want],
                "msg {i} sub {sub}"
            );
            assert_eq!(
                wire[0] & 0x40 != 0,
                how == Splice::Compressed,
                "RSV1 as spliced"
            );
        }
    }
    assert!(
        spliced > 5 * 150,
        "{spliced} of 1,000 deliveries spliced compressed"
    );
    // The connections never allocated a compressor of their own except for encode_text.
    let (server, _) = &conns[0];
    assert!(server.zlib_streams_allocated().0);
}

#[test]
fn splice_handles_fragmentation_big_stored_blocks_and_empty_parts() {
    let limits = Limits {
        fragment_size: 100,
        max_message_size: 1 << 20,
        max_frame_size: 1 << 20,
        ..Limits::default()
    };
    let (mut server, mut client) = pair(&PmdConfig::default(), limits);
    let mut deflater = Deflater::new(1, 15, true);
    let big_prefix = "p".repeat(70_000) + "[";
    for (prefix, text, suffix) in [
        ("", event(1, 500), ""),
        (big_prefix.as_str(), event(2, 200), "]"),
        ("[", String::new(), &*"x".repeat(200)),
    ] {
        let shared = SharedDeflate::compress(&mut deflater, text.as_bytes()).unwrap();
        let mut wire = Vec::new();
        assert_ne!(
            server.encode_text_spliced(prefix, &text, &shared, suffix, &mut wire),
            Splice::Refused
        );
        assert_eq!(
            decode_all(&mut client, &wire),
            vec![format!("{prefix}{text}{suffix}")]
        );
    }
}

#[test]
fn splice_is_refused_where_it_would_be_wrong() {
    let mut deflater = Deflater::new(1, 15, true);
    let text = event(3, 2000);
    let shared = SharedDeflate::compress(&mut deflater, text.as_bytes()).unwrap();
    let mut wire = Vec::new();
    // No deflate.
    let mut plain = Codec::new(Role::Server, Limits::default(), None);
    assert_eq!(
        plain.encode_text_spliced("[", &text, &shared, "]", &mut wire),
        Splice::Refused
    );
    // Context takeover on the server side.
    let (sn, _) =
        pmd::server_negotiate(&ServerPmdConfig::default(), &["permessage-deflate"]).unwrap();
    assert!(!sn.server_no_context_takeover);
    let mut takeover = Codec::new(Role::Server, Limits::default(), Some(sn));
    assert_eq!(
        takeover.encode_text_spliced("[", &text, &shared, "]", &mut wire),
        Splice::Refused
    );
    // A 9-bit window cannot take a 15-bit stream of a 2 kB text.
    let small = PmdConfig {
        server_max_window_bits: Some(9),
        ..PmdConfig::default()
    };
    let (mut server, mut client) = pair(&small, Limits::default());
    assert_eq!(
        server.encode_text_spliced("[", &text, &shared, "]", &mut wire),
        Splice::Refused
    );
    // ... but a short text compressed with 15 bits fits any window.
    let short_text = event(4, 300);
    let short = SharedDeflate::compress(&mut deflater, short_text.as_bytes()).unwrap();
    assert!(short.fits_window(9));
    assert_eq!(
        server.encode_text_spliced("[", &short_text, &short, "]", &mut wire),
        Splice::Compressed
    );
    // Under the compress threshold: the caller sends it plainly.
    let tiny = SharedDeflate::compress(&mut deflater, b"{}").unwrap();
    assert_eq!(
        server.encode_text_spliced("[", "{}", &tiny, "]", &mut wire),
        Splice::Refused
    );
    assert_eq!(
        decode_all(&mut client, &wire),
        vec![format!("[{}]", event(4, 300))]
    );
}

#[test]
fn external_deflater_leaves_no_compressor_on_the_connection() {
    let (mut server, mut client) = pair(&PmdConfig::default(), Limits::default());
    let mut deflater = Deflater::new(1, 15, true);
    let mut wire = Vec::new();
    for i in 0..50 {
        server.encode_text_with(&event(i, 400), &mut deflater, &mut wire);
    }
    assert_eq!(server.zlib_streams_allocated(), (false, false));
    let got = decode_all(&mut client, &wire);
    assert_eq!(got.len(), 50);
    assert_eq!(got[49], event(49, 400));
    // A deflater with context takeover is not used: the codec falls back to its own.
    let mut keeps = Deflater::new(1, 15, false);
    let mut wire = Vec::new();
    server.encode_text_with(&event(1, 400), &mut keeps, &mut wire);
    assert_eq!(server.zlib_streams_allocated(), (true, false));
    server.release_idle_memory();
    assert_eq!(server.zlib_streams_allocated(), (false, false));
    assert_eq!(decode_all(&mut client, &wire), vec![event(1, 400)]);
}

/// ~300 bytes of pseudo-random letters and digits: the level-1 compressor's fixed Huffman
/// codes make them longer, not shorter.
fn incompressible(i: u64) -> String {
    let mut x = i.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let alphabet = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let pad: String = (0..300)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            char::from(alphabet[(x % alphabet.len() as u64) as usize])
        })
        .collect();
    format!(r#"{{"i":{i},"pad":"{pad}"}}"#)
}

#[test]
fn what_deflate_does_not_shrink_goes_uncompressed_and_the_windows_stay_in_step() {
    let (mut server, mut client) = pair(&PmdConfig::default(), Limits::default());
    let mut deflater = Deflater::new(1, 15, true);
    let mut wire = Vec::new();
    let mut sent = Vec::new();
    let mut rsv1 = Vec::new();
    for i in 0..20u64 {
        for text in [incompressible(i), event(i as usize, 300)] {
            let start = wire.len();
            match i % 3 {
                // The three ways a server sends a message: its own compressor, a thread's,
                // or a shared compression spliced in.
                0 => server.encode_text(&text, &mut wire),
                1 => server.encode_text_with(&text, &mut deflater, &mut wire),
                _ => {
                    let shared = SharedDeflate::compress(&mut deflater, text.as_bytes()).unwrap();
                    let how = server.encode_text_spliced("", &text, &shared, "", &mut wire);
                    let want = if shared.pays_off() {
                        Splice::Compressed
                    } else {
                        Splice::Uncompressed
                    };
                    assert_eq!(how, want);
                }
            }
            rsv1.push(wire[start] & 0x40 != 0);
            sent.push(text);
        }
    }
    // Incompressible (even), then compressible (odd), whichever way.
    let expected: Vec<bool> = (0..sent.len()).map(|k| k % 2 == 1).collect();
    assert_eq!(rsv1, expected);
    // The client, keeping its own inflate context, decodes both kinds in any order.
    assert_eq!(decode_all(&mut client, &wire), sent);

    // With context takeover on the sending side, the receiver's window must see every
    // byte the compressor saw: the same text then goes compressed.
    let mut takeover = Codec::new(
        Role::Client,
        Limits::default(),
        Some(pmd::Negotiated::default()),
    );
    let mut wire = Vec::new();
    takeover.encode_text(&incompressible(1), &mut wire);
    assert_eq!(wire[0] & 0x40, 0x40, "context takeover: compressed anyway");
    // At least 1/16 saved: 300 bytes of 320 is 20 saved, one short.
    assert!(!pmd::saves_enough(320, 300) && pmd::saves_enough(320, 299));
}

#[test]
fn text_parts_are_one_message_whatever_the_fragment_size_and_role() {
    let parts = [
        "{\"action\":\"a\",\"body\":",
        "{\"x\":\"",
        &"y".repeat(300),
        "\"}}",
    ];
    let whole: String = parts.concat();
    for fragment_size in [8, 64, 1 << 20] {
        let limits = Limits {
            fragment_size,
            ..Limits::default()
        };
        let (mut server, mut client) = pair(&PmdConfig::default(), limits);
        let mut wire = Vec::new();
        server.encode_text_parts(&parts, &mut wire);
        assert_eq!(wire[0] & 0x40, 0, "uncompressed (RSV1 clear)");
        assert_eq!(decode_all(&mut client, &wire), vec![whole.clone()]);
        // A client's frames are masked: the joined copy takes that path.
        let mut wire = Vec::new();
        client.encode_text_parts(&parts, &mut wire);
        let mut inbox = BytesMut::from(&wire[..]);
        let got = server.decode(&mut inbox).unwrap();
        assert!(matches!(got, Some(Message::Text(t)) if t == whole));
    }
}
