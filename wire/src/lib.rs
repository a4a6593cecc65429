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
//!
//! # A whole session in memory
//!
//! ```
//! use bytes::BytesMut;
//! use cobra_wire::handshake::{self, ClientRequestParams};
//! use cobra_wire::pmd::{self, PmdConfig, ServerPmdConfig};
//! use cobra_wire::ws::{Codec, Message, Role};
//! use cobra_wire::{Limits, pdu};
//!
//! let limits = Limits::default();
//! // Client: build the upgrade request, offering permessage-deflate.
//! let pmd_cfg = PmdConfig::default();
//! let offer = pmd::client_offer(&pmd_cfg);
//! let (request, key) = handshake::client_request(&ClientRequestParams {
//!     host: "localhost",
//!     port: 8765,
//!     path_and_query: "/v2?appkey=_pubsub",
//!     subprotocol: Some("json"),
//!     extensions: Some(&offer),
//!     ..Default::default()
//! })?;
//!
//! // Server: parse it, check the appkey, negotiate, answer 101.
//! let (req, _used) = handshake::parse_request(&request, &limits)?.expect("complete");
//! assert!(req.is_websocket_upgrade);
//! assert_eq!(req.query_param("appkey").as_deref(), Some("_pubsub"));
//! let offers: Vec<&str> = req.extensions.iter().map(String::as_str).collect();
//! let (server_pmd, answer) = pmd::server_negotiate(&ServerPmdConfig::default(), &offers).expect("offered");
//! let response = handshake::accept_response(req.ws_key.as_deref().unwrap(), Some("json"), Some(&answer), &[]);
//!
//! // Client: validate the 101 and the extension answer.
//! let (resp, _used) = handshake::parse_response(&response, &key, &limits)?.expect("complete");
//! let client_pmd = pmd::client_accept(&pmd_cfg, resp.extensions.as_deref().unwrap())?;
//!
//! // Both sides now exchange messages through a codec.
//! let mut client = Codec::new(Role::Client, limits, Some(client_pmd));
//! let mut server = Codec::new(Role::Server, limits, Some(server_pmd));
//! let mut wire = Vec::new();
//! client.encode_text(&pdu::request(pdu::action::SUBSCRIBE, 1, &pdu::SubscribeBody {
//!     channel: Some("engine_fps_id".into()),
//!     ..Default::default()
//! }), &mut wire);
//! let mut inbox = BytesMut::from(&wire[..]);
//! while let Some(msg) = server.decode(&mut inbox)? {
//!     let Message::Text(text) = msg else { continue };
//!     let pdu = pdu::Pdu::parse(&text)?;
//!     let body: pdu::SubscribeBody = pdu.body_as()?;
//!     assert_eq!(body.channel.as_deref(), Some("engine_fps_id"));
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![warn(missing_docs)]
#![forbid(unsafe_code)]

pub mod auth;
pub mod handshake;
pub mod limits;
pub mod pdu;
pub mod percent;
pub mod pmd;
pub mod position;
pub mod ws;

pub use limits::Limits;
pub use position::Position;
