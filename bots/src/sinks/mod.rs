//! The sinks that ship with cobra, one module each.

pub mod file;
pub mod postgres;
pub mod republish;
pub mod sentry;
pub mod statsd;
pub mod stdout;
