//! Sending one very large message a fragment at a time.
//!
//! `Codec::encode_text` encodes (and compresses and masks) a whole message at once; for a
//! 64 MB message that is long enough to miss the 50 ms `disconnect()` budget. Messages above
//! [`LARGE_MESSAGE`] are therefore sent uncompressed (RFC 7692 lets a sender skip compression per
//! message), as a text frame followed by continuation frames, each framed and masked only when the
//! socket has room for it. The engine serves commands between fragments.

use tungstenite::protocol::frame::FrameHeader;
use tungstenite::protocol::frame::coding::{Data, OpCode};

/// Messages (PDU text) larger than this take the fragment-at-a-time path.
pub(crate) const LARGE_MESSAGE: usize = 1 << 20;
/// Payload bytes per fragment.
const FRAGMENT: usize = 256 << 10;

pub(crate) struct LargeSend {
    data: Vec<u8>,
    pos: usize,
}

impl LargeSend {
    pub(super) fn new(text: String) -> Self {
        Self {
            data: text.into_bytes(),
            pos: 0,
        }
    }

    /// Append the next fragment to `out`; true when the message is complete.
    pub(super) fn next_fragment(&mut self, out: &mut Vec<u8>) -> bool {
        let end = (self.pos + FRAGMENT).min(self.data.len());
        let opcode = if self.pos == 0 {
            OpCode::Data(Data::Text)
        } else {
            OpCode::Data(Data::Continue)
        };
        let key: [u8; 4] = rand::random();
        let header = FrameHeader {
            is_final: end == self.data.len(),
            rsv1: false,
            rsv2: false,
            rsv3: false,
            opcode,
            mask: Some(key),
        };
        let payload = &self.data[self.pos..end];
        out.reserve(14 + payload.len());
        // Formatting into a Vec cannot fail.
        let _ = header.format(payload.len() as u64, out);
        let start = out.len();
        out.extend_from_slice(payload);
        cobra_wire::ws::apply_mask(&mut out[start..], key);
        self.pos = end;
        end == self.data.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BytesMut;
    use cobra_wire::limits::Limits;
    use cobra_wire::ws::{Codec, Message, Role};

    #[test]
    fn fragments_reassemble_on_a_server_codec() {
        let text: String = (0..(FRAGMENT * 2 + 17))
            .map(|i| (b'a' + (i % 26) as u8) as char)
            .collect();
        let mut large = LargeSend::new(text.clone());
        let mut wire = Vec::new();
        let mut frames = 0;
        while !large.next_fragment(&mut wire) {
            frames += 1;
        }
        assert_eq!(frames + 1, 3);
        let limits = Limits {
            max_message_size: 1 << 22,
            max_frame_size: 1 << 22,
            ..Limits::DEFAULT
        };
        let mut server = Codec::new(Role::Server, limits, None);
        let mut buf = BytesMut::from(&wire[..]);
        assert_eq!(server.decode(&mut buf).unwrap(), Some(Message::Text(text)));
    }
}
