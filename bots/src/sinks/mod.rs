//! The sinks that ship with cobra, one module each.

pub mod file;
pub mod statsd;
pub mod stdout;
