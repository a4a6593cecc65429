//! The cobra broker.
//!
//! - [`config`]: the apps config (appkeys, roles, permissions, channel builder) and where it comes from.
//! - [`streamsql`]: the StreamSQL filter language: tokenizer, parser, compiled predicate and projection.
//! - [`broker`]: channels, history, subscriptions, fan-out; the embedded and Redis backends.
//! - [`net`]: the listener, the HTTP endpoints, and one WebSocket session per connection.
//! - [`cli`]: the `cobra` command line.

#![forbid(unsafe_code)]

pub mod broker;
pub mod cli;
pub mod config;
pub mod net;
pub mod streamsql;
