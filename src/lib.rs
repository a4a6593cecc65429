//! cobra: realtime telemetry for games. The client SDK.
