//! The uniffi 0.32 export of the SDK for Kotlin, Swift and Python (`bindings/`, `android/`, `ios/`).
//!
//! A thin, synchronous layer: every item converts its arguments, calls the Rust SDK and converts
//! the answer back. No behaviour lives here, so the Kotlin/Python tests of this layer also cover
//! what Swift gets.
//!
//! Conventions shared by every item:
//! - **JSON values cross as strings** (message bodies, stored values, filter projections, device
//!   attributes): each language parses them with its own JSON library, and this layer validates
//!   what comes in (`CobraError::InvalidArgument` when the text is not JSON).
//! - **Durations are milliseconds** (`*_ms: u64`), so no platform needs `java.time` or
//!   `Foundation` types.
//! - Optional config fields default to `None`, meaning "the SDK default" (documented on
//!   [`crate::Config`]), so the defaults live in one place.
//! - No method is named `close` or `destroy`: Kotlin objects are `AutoCloseable` and generated
//!   Swift/Python objects free themselves; `disconnect` ends a connection.

mod client;
mod config;
mod error;
mod event;
mod logging;
mod metrics;
