//! Size bounds, gathered in one struct shared by every module.

/// Every size bound the wire layer enforces.
///
/// Exceeding a receive bound is an error (close code 1009 for WebSocket data,
/// [`crate::handshake::HandshakeError::TooLarge`] for the upgrade): nothing is
/// buffered beyond these numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest message accepted, measured after reassembly and after inflating
    /// (default 1 MiB). A telemetry event is a few hundred bytes; a large
    /// subscription batch stays well under this.
    pub max_message_size: usize,
    /// Largest single frame payload accepted, as received (default 1 MiB).
    /// A peer announcing a bigger frame is refused before its payload arrives,
    /// so the read buffer never needs more than this plus 14 header bytes.
    pub max_frame_size: usize,
    /// Outgoing messages whose (compressed) payload is larger than this are
    /// split into frames of at most this many bytes (default 64 KiB).
    pub fragment_size: usize,
    /// Largest HTTP upgrade request or response head, headers included
    /// (default 16 KiB).
    pub max_handshake_bytes: usize,
}

impl Limits {
    /// The defaults documented on each field.
    pub const DEFAULT: Limits = Limits {
        max_message_size: 1 << 20,
        max_frame_size: 1 << 20,
        fragment_size: 64 << 10,
        max_handshake_bytes: 16 << 10,
    };
}

impl Default for Limits {
    fn default() -> Self {
        Self::DEFAULT
    }
}
