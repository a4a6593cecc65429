//! cobra: realtime telemetry for games. The client SDK.

pub mod metrics;
pub mod spool;
