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
//! - [`limits`]: every size bound in one struct.

pub mod auth;
pub mod handshake;
pub mod limits;
pub mod pdu;
pub mod pmd;
pub mod position;
pub mod ws;

pub use limits::Limits;
pub use position::Position;
