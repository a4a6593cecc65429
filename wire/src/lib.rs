//! The cobra wire protocol without I/O.
//!
//! Everything here is a pure state machine or a pure function over bytes, so the
//! blocking SDK (mio) and the async server (tokio) drive the same code:
//!
//! - [`handshake`]: the HTTP/1.1 upgrade, both sides (request, response, validation).
//! - [`ws`]: the WebSocket message layer: framing, masking, fragmentation,
//!   UTF-8 checks, control frames, close codes, limits.
//! - [`pmd`]: permessage-deflate (RFC 7692): negotiation and a bounded inflater.
//! - [`pdu`]: the JSON PDUs of the RTM protocol.
//! - [`auth`]: the `role_secret` hash.
//! - [`position`]: stream positions `<ms>-<seq>`.
