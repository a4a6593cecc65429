//! cobra: realtime telemetry for games. The client SDK.
//!
//! A [`Client`] owns one background engine thread that connects to a cobra server over
//! WebSocket (`ws://` or `wss://`, optionally through an HTTP CONNECT proxy), authenticates with
//! `role_secret`, and keeps the connection alive: heartbeats with a pong timeout, reconnects with
//! jittered exponential backoff, re-sends unacknowledged publishes and resumes subscriptions from
//! their last position. Nothing here needs an async runtime.
//!
//! ```no_run
//! use std::sync::Arc;
//! use cobra::{Client, Config, Event, SubscribeOptions};
//!
//! let config = Config::new("ws://127.0.0.1:8765", "_pubsub", "pubsub", "secret");
//! let listener = Arc::new(|e: &Event| println!("{e:?}"));
//! let client = Client::new(config, Some(listener))?;
//! client.connect()?;
//! client.subscribe(SubscribeOptions::new("engine_fps_id").filter("select data.fps from `engine_fps_id`"))?;
//! client.publish("engine_fps_id", &serde_json::json!({"id": "engine_fps_id", "data": {"fps": 30}}))?;
//! # Ok::<(), cobra::Error>(())
//! ```
//!
//! Events reach a [`Listener`] on the engine thread, or a bounded channel from
//! [`Client::events`]. Logs go through the `log` facade ([`logging`] has platform helpers).

// Unsafe code lives at the FFI boundary only (`ffi`, with a `// SAFETY:` line per block).
#![deny(unsafe_code)]

mod backoff;
mod client;
mod config;
mod engine;
mod error;
mod event;
#[allow(unsafe_code)]
pub mod ffi;
pub mod logging;
pub mod metrics;
mod queue;
mod raw;
mod session;
pub mod spool;
mod state;
mod subscription;
mod transport;
#[cfg(feature = "uniffi")]
mod uniffi_api;

#[cfg(feature = "uniffi")]
uniffi::setup_scaffolding!();

pub use client::{Client, WeakClient};
pub use config::{Config, DeflateOptions, Delivery, OverflowPolicy, TlsOptions};
pub use error::{Error, ErrorKind};
pub use event::{ClosedBy, Event, Listener, PublishId};
pub use raw::RawMessage;
pub use state::State;
pub use subscription::SubscribeOptions;
#[cfg(feature = "tls")]
pub use transport::tls::spki_pin_of;
