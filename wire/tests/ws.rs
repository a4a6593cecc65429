//! WebSocket codec tests through the public API.

use bytes::BytesMut;
use cobra_wire::Limits;
use cobra_wire::pmd::Negotiated;
use cobra_wire::ws::{CloseFrame, Codec, Message, Role, WsError, apply_mask};

/// Builds a raw frame: `b0` is the first byte (FIN/RSV/opcode).
fn frame(b0: u8, payload: &[u8], mask: Option<[u8; 4]>) -> Vec<u8> {
    let mut out = vec![b0];
    let m = if mask.is_some() { 0x80 } else { 0 };
    match payload.len() {
        n if n < 126 => out.push(m | n as u8),
        n if n < 65536 => {
            out.push(m | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(m | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    let start = out.len();
    if let Some(k) = mask {
        out.extend_from_slice(&k);
    }
    let data_start = out.len();
    out.extend_from_slice(payload);
    if let Some(k) = mask {
        apply_mask(&mut out[data_start..], k);
    }
    let _ = start;
    out
}

const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

/// A frame as a client would send it to a server.
fn cframe(b0: u8, payload: &[u8]) -> Vec<u8> {
    frame(b0, payload, Some(KEY))
}

fn server() -> Codec {
    Codec::new(Role::Server, Limits::default(), None)
}

fn decode_all(codec: &mut Codec, bytes: &[u8]) -> Result<Vec<Message>, WsError> {
    let mut buf = BytesMut::from(bytes);
    let mut out = Vec::new();
    while let Some(m) = codec.decode(&mut buf)? {
        out.push(m);
    }
    assert!(buf.is_empty(), "{} bytes left over", buf.len());
    Ok(out)
}

fn decode_err(codec: &mut Codec, bytes: &[u8]) -> WsError {
    let mut buf = BytesMut::from(bytes);
    loop {
        match codec.decode(&mut buf) {
            Ok(Some(_)) => continue,
            Ok(None) => panic!("no error"),
            Err(e) => return e,
        }
    }
}

#[test]
fn mask_matches_bytewise_xor() {
    for len in 0..40 {
        let data: Vec<u8> = (0..len as u8).collect();
        let mut fast = data.clone();
        apply_mask(&mut fast, KEY);
        let slow: Vec<u8> = data
            .iter()
            .enumerate()
            .map(|(i, b)| b ^ KEY[i % 4])
            .collect();
        assert_eq!(fast, slow);
    }
}

#[test]
fn single_text_and_binary() {
    let mut s = server();
    let mut bytes = cframe(0x81, b"hello");
    bytes.extend(cframe(0x82, &[1, 2, 3]));
    assert_eq!(
        decode_all(&mut s, &bytes).unwrap(),
        vec![
            Message::Text("hello".into()),
            Message::Binary(vec![1, 2, 3])
        ]
    );
}

#[test]
fn every_split_point() {
    let mut bytes = cframe(0x01, b"frag");
    bytes.extend(cframe(0x89, b"ping!"));
    bytes.extend(cframe(0x00, b"mented "));
    bytes.extend(cframe(0x8A, b""));
    bytes.extend(cframe(0x80, "text é".as_bytes()));
    bytes.extend(cframe(0x82, &vec![7u8; 300]));
    bytes.extend(cframe(0x82, &vec![9u8; 70000]));
    bytes.extend(cframe(0x88, &[0x03, 0xe8, b'b', b'y', b'e']));
    let expected = vec![
        Message::Ping(b"ping!".to_vec()),
        Message::Pong(vec![]),
        Message::Text("fragmented text é".into()),
        Message::Binary(vec![7u8; 300]),
        Message::Binary(vec![9u8; 70000]),
        Message::Close(Some(CloseFrame {
            code: 1000,
            reason: "bye".into(),
        })),
    ];
    // Every 2-way split, and byte-at-a-time feeding of the small prefix.
    // Byte by byte over the small frames and the big frames' headers, then sparser.
    let dense = 700;
    for split in (0..dense).chain((dense..bytes.len()).step_by(997)) {
        let mut s = server();
        let mut buf = BytesMut::new();
        let mut got = Vec::new();
        for chunk in [&bytes[..split], &bytes[split..]] {
            buf.extend_from_slice(chunk);
            while let Some(m) = s.decode(&mut buf).unwrap() {
                got.push(m);
            }
        }
        assert_eq!(got, expected, "split at {split}");
    }
    let mut s = server();
    let mut buf = BytesMut::new();
    let mut got = Vec::new();
    for b in &bytes {
        buf.extend_from_slice(&[*b]);
        while let Some(m) = s.decode(&mut buf).unwrap() {
            got.push(m);
        }
    }
    assert_eq!(got, expected);
}

#[test]
fn masking_rules_per_role() {
    assert_eq!(
        decode_err(&mut server(), &frame(0x81, b"x", None)),
        WsError::UnmaskedFrame
    );
    let mut client = Codec::new(Role::Client, Limits::default(), None);
    assert_eq!(
        decode_err(&mut client, &cframe(0x81, b"x")),
        WsError::MaskedFrame
    );
    let mut client = Codec::new(Role::Client, Limits::default(), None);
    assert_eq!(
        decode_all(&mut client, &frame(0x81, b"x", None)).unwrap(),
        vec![Message::Text("x".into())]
    );
}

#[test]
fn protocol_errors_and_close_codes() {
    let cases: Vec<(Vec<u8>, WsError, u16)> = vec![
        (cframe(0xC1, b"x"), WsError::ReservedBits, 1002), // RSV1 without deflate
        (cframe(0xA1, b"x"), WsError::ReservedBits, 1002), // RSV2
        (cframe(0x91, b"x"), WsError::ReservedBits, 1002), // RSV3
        (cframe(0x83, b"x"), WsError::BadOpcode(3), 1002),
        (cframe(0x8B, b"x"), WsError::BadOpcode(0xB), 1002),
        (
            cframe(0x89, &[0; 126]),
            WsError::ControlFrameTooLong(126),
            1002,
        ),
        (cframe(0x09, b"x"), WsError::FragmentedControlFrame, 1002),
        (cframe(0x80, b"x"), WsError::UnexpectedContinuation, 1002),
        (cframe(0x88, &[3]), WsError::BadClosePayload, 1002),
        (
            cframe(0x88, &[0x03, 0xe8, 0xff]),
            WsError::InvalidUtf8,
            1007,
        ),
        (cframe(0x81, &[0xc3, 0x28]), WsError::InvalidUtf8, 1007),
    ];
    for (bytes, err, code) in cases {
        let got = decode_err(&mut server(), &bytes);
        assert_eq!(got, err, "{bytes:02x?}");
        assert_eq!(got.close_code(), code);
    }
    // Close codes a peer may not send (reserved, or outside the ranges in use).
    for code in [1005u16, 1006, 999, 5000] {
        let got = decode_err(&mut server(), &cframe(0x88, &code.to_be_bytes()));
        assert_eq!(got, WsError::BadCloseCode(code));
        assert_eq!(got.close_code(), 1002);
    }
    // A new message while one is in progress.
    let mut bytes = cframe(0x01, b"a");
    bytes.extend(cframe(0x81, b"b"));
    assert_eq!(
        decode_err(&mut server(), &bytes),
        WsError::ExpectedContinuation
    );
    // Invalid UTF-8 split across fragments is caught; valid split code points are fine.
    let mut bytes = cframe(0x01, &[0xc3]);
    bytes.extend(cframe(0x80, &[0xa9]));
    assert_eq!(
        decode_all(&mut server(), &bytes).unwrap(),
        vec![Message::Text("é".into())]
    );
    // Valid close codes.
    for code in [1000u16, 1001, 1003, 1007, 1011, 1014, 3000, 4999] {
        let m = decode_all(&mut server(), &cframe(0x88, &code.to_be_bytes())).unwrap();
        assert_eq!(
            m,
            vec![Message::Close(Some(CloseFrame {
                code,
                reason: String::new()
            }))]
        );
    }
    assert_eq!(
        decode_all(&mut server(), &cframe(0x88, b"")).unwrap(),
        vec![Message::Close(None)]
    );
}

#[test]
fn limits_refuse_before_payload_arrives() {
    let limits = Limits {
        max_message_size: 100,
        max_frame_size: 64,
        ..Limits::default()
    };
    let mut s = Codec::new(Role::Server, limits, None);
    // Only the header of a 1 GB frame: refused at once.
    let mut header = vec![0x82, 0x80 | 127];
    header.extend_from_slice(&(1u64 << 30).to_be_bytes());
    header.extend_from_slice(&KEY);
    let err = decode_err(&mut s, &header);
    assert_eq!(
        err,
        WsError::FrameTooBig {
            size: 1 << 30,
            max: 64
        }
    );
    assert_eq!(err.close_code(), 1009);
    // Fragments within the frame limit but over the message limit.
    let mut s = Codec::new(Role::Server, limits, None);
    let mut bytes = cframe(0x02, &[0; 60]);
    bytes.extend(cframe(0x80, &[0; 60]));
    assert_eq!(
        decode_err(&mut s, &bytes),
        WsError::MessageTooBig { max: 100 }
    );
    // Exactly at the limit is fine.
    let mut s = Codec::new(Role::Server, limits, None);
    let mut bytes = cframe(0x02, &[0; 50]);
    bytes.extend(cframe(0x80, &[0; 50]));
    assert_eq!(
        decode_all(&mut s, &bytes).unwrap(),
        vec![Message::Binary(vec![0; 100])]
    );
}

fn round_trip(client_role: Role, deflate: Option<Negotiated>, limits: Limits, msgs: &[Message]) {
    let peer_role = if client_role == Role::Client {
        Role::Server
    } else {
        Role::Client
    };
    let mut tx = Codec::new(client_role, limits, deflate);
    let mut rx = Codec::new(peer_role, limits, deflate);
    let mut wire = Vec::new();
    for m in msgs {
        match m {
            Message::Text(t) => tx.encode_text(t, &mut wire),
            Message::Binary(b) => tx.encode_binary(b, &mut wire),
            Message::Ping(p) => tx.encode_ping(p, &mut wire).unwrap(),
            Message::Pong(p) => tx.encode_pong(p, &mut wire).unwrap(),
            Message::Close(Some(c)) => tx.encode_close(c.code, &c.reason, &mut wire).unwrap(),
            Message::Close(None) => tx.encode_close_empty(&mut wire),
        }
    }
    assert_eq!(decode_all(&mut rx, &wire).unwrap(), msgs);
}

fn sample() -> Vec<Message> {
    sample_sized(200_000, 40_000)
}

fn sample_sized(binary: u32, text_reps: usize) -> Vec<Message> {
    vec![
        Message::Text(
            r#"{"action":"rtm/publish","id":1,"body":{"channel":"c","message":{"fps":30}}}"#.into(),
        ),
        Message::Text(String::new()),
        Message::Binary(vec![]),
        Message::Binary((0..binary).map(|i| (i % 251) as u8).collect()),
        Message::Ping(b"p".to_vec()),
        Message::Text("é".repeat(text_reps)),
        Message::Pong(vec![]),
        Message::Close(Some(CloseFrame {
            code: 1000,
            reason: "done".into(),
        })),
    ]
}

#[test]
fn encode_decode_both_roles_fragmented() {
    let limits = Limits {
        fragment_size: 1000,
        ..Limits::default()
    };
    for role in [Role::Client, Role::Server] {
        round_trip(role, None, limits, &sample());
        round_trip(role, None, Limits::default(), &sample());
    }
}

#[test]
fn encode_decode_with_deflate_every_variant() {
    let limits = Limits {
        fragment_size: 777,
        ..Limits::default()
    };
    for bits in 8..=15u8 {
        for (cnct, snct) in [(false, false), (true, false), (false, true), (true, true)] {
            let n = Negotiated {
                client_no_context_takeover: cnct,
                server_no_context_takeover: snct,
                client_max_window_bits: bits,
                server_max_window_bits: bits,
                level: 6,
            };
            for role in [Role::Client, Role::Server] {
                round_trip(role, Some(n), limits, &sample_sized(30_000, 5_000));
            }
        }
    }
}

#[test]
fn deflate_sets_rsv1_on_first_frame_only() {
    let limits = Limits {
        fragment_size: 10,
        ..Limits::default()
    };
    let mut tx = Codec::new(Role::Server, limits, Some(Negotiated::default()));
    let mut wire = Vec::new();
    let text: String = (0..2000)
        .map(|i| char::from(b'a' + (i * 7 % 26) as u8))
        .collect();
    tx.encode_text(&text, &mut wire);
    assert_eq!(wire[0], 0x41, "first frame: text, RSV1, no FIN");
    // Walk the frames (server frames are unmasked, small).
    let mut i = 0;
    let mut firsts = Vec::new();
    while i < wire.len() {
        firsts.push(wire[i]);
        let len = (wire[i + 1] & 0x7f) as usize;
        assert!(len <= 10);
        i += 2 + len;
    }
    assert!(
        firsts[1..firsts.len() - 1].iter().all(|b| *b == 0x00),
        "{firsts:02x?}"
    );
    assert_eq!(*firsts.last().unwrap(), 0x80);
    // RSV1 on a continuation frame is refused.
    let mut rx = Codec::new(Role::Server, Limits::default(), Some(Negotiated::default()));
    let mut bytes = cframe(0x41, &[0x00]);
    bytes.extend(cframe(0xC0, &[0x00]));
    assert_eq!(decode_err(&mut rx, &bytes), WsError::ReservedBits);
}

/// Packs bits LSB-first, as DEFLATE does.
struct Bits {
    out: Vec<u8>,
    acc: u32,
    n: u32,
}

impl Bits {
    fn put(&mut self, value: u32, n: u32) {
        self.acc |= value << self.n;
        self.n += n;
        while self.n >= 8 {
            self.out.push(self.acc as u8);
            self.acc >>= 8;
            self.n -= 8;
        }
    }
    /// Huffman codes go MSB first.
    fn code(&mut self, code: u32, n: u32) {
        self.put(code.reverse_bits() >> (32 - n), n);
    }
}

/// A hand-built raw DEFLATE stream inflating to `n` zero bytes (one fixed-Huffman
/// block of literal 0 + <258, distance 1> copies), ending like a permessage-deflate
/// message (empty stored block with its `00 00 ff ff` stripped). Independent of
/// our compressor, and built in milliseconds even for 100 MB.
fn zero_bomb(n: usize) -> Vec<u8> {
    let mut b = Bits {
        out: Vec::new(),
        acc: 0,
        n: 0,
    };
    b.put(0, 1); // BFINAL = 0
    b.put(1, 2); // BTYPE = fixed Huffman
    b.code(0x30, 8); // literal 0
    for _ in 0..(n - 1) / 258 {
        b.code(0xC5, 8); // length 258 (symbol 285)
        b.code(0, 5); // distance 1
    }
    for _ in 0..(n - 1) % 258 {
        b.code(0x30, 8);
    }
    b.code(0, 7); // end of block
    b.put(0, 3); // empty stored block header, then byte-align
    if b.n > 0 {
        b.put(0, 8 - b.n);
    }
    b.out
}

#[test]
fn hand_built_stream_inflates_when_small() {
    let mut rx = Codec::new(Role::Server, Limits::default(), Some(Negotiated::default()));
    let m = decode_all(&mut rx, &cframe(0xC2, &zero_bomb(5000))).unwrap();
    assert_eq!(m, vec![Message::Binary(vec![0; 5000])]);
}

#[test]
fn deflate_bomb_fails_fast() {
    // 100 MB of zeros in about 630 KB.
    let bomb = zero_bomb(100 << 20);
    assert!(bomb.len() < 700_000, "{}", bomb.len());
    for fragment in [bomb.len(), 4096] {
        let mut wire = Vec::new();
        let chunks: Vec<&[u8]> = bomb.chunks(fragment).collect();
        for (i, c) in chunks.iter().enumerate() {
            let fin = if i + 1 == chunks.len() { 0x80 } else { 0 };
            let op = if i == 0 { 0x42 } else { 0x00 };
            wire.extend(cframe(fin | op, c));
        }
        let mut rx = Codec::new(Role::Server, Limits::default(), Some(Negotiated::default()));
        let err = decode_err(&mut rx, &wire);
        assert_eq!(err, WsError::MessageTooBig { max: 1 << 20 });
        assert_eq!(err.close_code(), 1009);
    }
}

#[test]
fn bad_compressed_data_is_1007() {
    let mut rx = Codec::new(Role::Server, Limits::default(), Some(Negotiated::default()));
    let err = decode_err(&mut rx, &cframe(0xC1, &[0xff; 8]));
    assert!(matches!(err, WsError::Inflate(_)), "{err:?}");
    assert_eq!(err.close_code(), 1007);
}

#[test]
fn encode_rejects_bad_control_input() {
    let mut c = server();
    let mut out = Vec::new();
    assert_eq!(
        c.encode_ping(&[0; 126], &mut out),
        Err(WsError::ControlPayloadTooLong(126))
    );
    assert_eq!(
        c.encode_close(1005, "", &mut out),
        Err(WsError::InvalidCloseCode(1005))
    );
    assert!(out.is_empty());
    // Long reasons are cut at a character boundary.
    c.encode_close(1000, &"é".repeat(100), &mut out).unwrap();
    let mut rx = Codec::new(Role::Client, Limits::default(), None);
    match decode_all(&mut rx, &out).unwrap().as_slice() {
        [Message::Close(Some(f))] => assert_eq!(f.reason, "é".repeat(61)),
        other => panic!("{other:?}"),
    }
}

#[test]
fn idle_codec_is_small() {
    assert!(
        std::mem::size_of::<Codec>() <= 96,
        "{}",
        std::mem::size_of::<Codec>()
    );
}

#[test]
fn small_messages_go_uncompressed_and_allocate_no_compressor() {
    let mut tx = Codec::new(Role::Server, Limits::default(), Some(Negotiated::default()));
    let mut out = Vec::new();
    tx.encode_text(r#"{"action":"rtm/publish/ok","id":7,"body":{}}"#, &mut out);
    assert_eq!(out[0], 0x81, "RSV1 clear");
    assert_eq!(tx.zlib_streams_allocated(), (false, false));
    out.clear();
    tx.encode_text(&"x".repeat(200), &mut out);
    assert_eq!(out[0], 0xC1, "RSV1 set");
    assert_eq!(tx.zlib_streams_allocated(), (true, false));
    out.clear();
    tx.set_compress_min_size(0);
    tx.encode_text("a", &mut out);
    assert_eq!(out[0], 0xC1);
}

#[test]
fn an_8_bit_window_means_we_send_uncompressed() {
    let n = Negotiated {
        server_max_window_bits: 8,
        ..Negotiated::default()
    };
    let mut tx = Codec::new(Role::Server, Limits::default(), Some(n));
    let mut out = Vec::new();
    tx.encode_text(&"x".repeat(500), &mut out);
    assert_eq!(out[0], 0x81);
    assert_eq!(tx.zlib_streams_allocated(), (false, false));
}

#[test]
fn release_idle_memory_drops_only_stateless_streams() {
    let nct = Negotiated {
        client_no_context_takeover: true,
        ..Negotiated::default()
    };
    let text = "y".repeat(300);
    // Client with its own no-context-takeover: its compressor can go; the
    // inflater for the server's context-takeover stream must stay.
    let mut client = Codec::new(Role::Client, Limits::default(), Some(nct));
    let mut server = Codec::new(Role::Server, Limits::default(), Some(nct));
    for _ in 0..3 {
        let mut c2s = Vec::new();
        client.encode_text(&text, &mut c2s);
        client.release_idle_memory();
        assert_eq!(
            decode_all(&mut server, &c2s).unwrap(),
            vec![Message::Text(text.clone())]
        );
        let mut s2c = Vec::new();
        server.encode_text(&text, &mut s2c);
        server.release_idle_memory();
        assert_eq!(server.zlib_streams_allocated(), (true, false));
        assert_eq!(
            decode_all(&mut client, &s2c).unwrap(),
            vec![Message::Text(text.clone())]
        );
        client.release_idle_memory();
        assert_eq!(client.zlib_streams_allocated(), (false, true));
    }
}

#[test]
fn shared_server_frames_match_per_connection_encoding() {
    let limits = Limits {
        fragment_size: 100,
        ..Limits::default()
    };
    let text = "z".repeat(250);
    let mut shared = Vec::new();
    cobra_wire::ws::encode_server_text(&limits, &text, &mut shared);
    let mut codec = Codec::new(Role::Server, limits, None);
    assert!(codec.frames_are_shareable());
    let mut own = Vec::new();
    codec.encode_text(&text, &mut own);
    assert_eq!(shared, own);
    assert!(!Codec::new(Role::Server, limits, Some(Negotiated::default())).frames_are_shareable());
    assert!(!Codec::new(Role::Client, limits, None).frames_are_shareable());
}

#[test]
fn unbounded_limits_do_not_overflow() {
    let limits = Limits {
        max_message_size: usize::MAX,
        max_frame_size: usize::MAX,
        ..Limits::default()
    };
    for deflate in [None, Some(Negotiated::default())] {
        // A fragment in progress, then a continuation announcing 2^64-1 bytes.
        let mut s = Codec::new(Role::Server, limits, deflate);
        let mut bytes = cframe(0x02, b"ab");
        bytes.extend_from_slice(&[0x80, 0x80 | 127]);
        bytes.extend_from_slice(&u64::MAX.to_be_bytes());
        bytes.extend_from_slice(&KEY);
        let mut buf = BytesMut::from(&bytes[..]);
        // The RFC forbids the top bit; no overflow on the way to saying so.
        assert_eq!(s.decode(&mut buf), Err(WsError::InvalidLength));
        // Largest legal length: nothing to return yet (the payload never comes).
        let mut s = Codec::new(Role::Server, limits, deflate);
        let mut bytes = cframe(0x02, b"ab");
        bytes.extend_from_slice(&[0x80, 0x80 | 127]);
        bytes.extend_from_slice(&(i64::MAX as u64).to_be_bytes());
        bytes.extend_from_slice(&KEY);
        let mut buf = BytesMut::from(&bytes[..]);
        assert_eq!(s.decode(&mut buf), Ok(None));
        // Compressed data with an unbounded output limit still inflates.
        let mut s = Codec::new(Role::Server, limits, Some(Negotiated::default()));
        let m = decode_all(&mut s, &cframe(0xC2, &zero_bomb(1000))).unwrap();
        assert_eq!(m, vec![Message::Binary(vec![0; 1000])]);
    }
}

/// Splits unmasked frames (server output) at their boundaries.
fn split_frames(mut wire: &[u8]) -> Vec<Vec<u8>> {
    let mut frames = Vec::new();
    while !wire.is_empty() {
        let (hlen, len) = match wire[1] & 0x7f {
            126 => (4, u16::from_be_bytes([wire[2], wire[3]]) as usize),
            127 => (
                10,
                u64::from_be_bytes(wire[2..10].try_into().unwrap()) as usize,
            ),
            n => (2, n as usize),
        };
        frames.push(wire[..hlen + len].to_vec());
        wire = &wire[hlen + len..];
    }
    frames
}

#[test]
fn compressed_fragmented_message_with_interleaved_controls() {
    let limits = Limits {
        fragment_size: 50,
        ..Limits::default()
    };
    for n in [
        Negotiated::default(),
        Negotiated {
            server_no_context_takeover: true,
            ..Negotiated::default()
        },
    ] {
        let mut tx = Codec::new(Role::Server, limits, Some(n));
        let mut rx = Codec::new(Role::Client, limits, Some(n));
        for round in 0..3 {
            // Pseudo-random letters, so the compressed form still spans many frames.
            let mut x: u32 = 12345 + round;
            let text: String = (0..3000)
                .map(|_| {
                    x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
                    char::from(b'a' + ((x >> 16) % 26) as u8)
                })
                .collect();
            let mut wire = Vec::new();
            tx.encode_text(&text, &mut wire);
            let frames = split_frames(&wire);
            assert!(frames.len() > 2, "fragmented");
            let mut ping = Vec::new();
            tx.encode_ping(b"mid", &mut ping).unwrap();
            let mut pong = Vec::new();
            tx.encode_pong(b"", &mut pong).unwrap();
            let mut mixed = Vec::new();
            for (i, f) in frames.iter().enumerate() {
                mixed.extend_from_slice(f);
                if i == 0 {
                    mixed.extend_from_slice(&ping);
                } else if i + 1 < frames.len() {
                    mixed.extend_from_slice(&pong);
                }
            }
            let got = decode_all(&mut rx, &mixed).unwrap();
            assert_eq!(got.first(), Some(&Message::Ping(b"mid".to_vec())));
            assert_eq!(got.last(), Some(&Message::Text(text)));
            assert_eq!(got.len(), frames.len());
        }
    }
}
