//! The cobra bot runtime: the subscriber side of cobra.
//!
//! A bot subscribes to a channel (optionally with a StreamSQL filter) through the `cobra` SDK (which
//! reconnects, heartbeats and resubscribes), and carries every event to a [`Sink`]: stdout, JSONL
//! files, statsd, Sentry, PostgreSQL or another broker ([`sinks`]), or one you write (see
//! `examples/custom_sink.rs`).
//!
//! # Delivery guarantee
//! At-least-once. The runtime hands the sink batches of whole subscription PDUs; once
//! [`Sink::send`] returns `Ok` (the sink confirmed: a write + flush, an HTTP 2xx, a COMMIT, an ack),
//! the position of the batch's last event is written to the checkpoint file atomically (temporary
//! file, fsync, rename, fsync of the directory). On restart the bot resubscribes right after that
//! position. A crash can therefore only repeat the one batch that was being sent and not yet
//! checkpointed: duplicates are bounded by `--batch-size` plus one PDU.
//!
//! # Back-pressure
//! Between the subscription and the sink sits a queue bounded in events (`--queue-size`). When it
//! is full the SDK's engine thread waits for room, so the bot stops reading its socket: the broker
//! then applies its own back-pressure and its history holds the events. Nothing is dropped for
//! being slow. The only drops are those of the user's rate limit (`--max-events-per-minute`), each
//! counted in `dropped`.
#![warn(missing_docs)]

pub mod checkpoint;
pub mod config;
pub mod json;
mod queue;
mod ratelimit;
pub mod retry;
mod runtime;
pub mod sink;
pub mod sinks;
pub mod stats;

pub use config::BotConfig;
pub use runtime::{Bot, BotError};
pub use sink::{Item, Sink, SinkError, Skips};
