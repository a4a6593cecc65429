//! What the Rust examples share: their command-line options (`--name value`).
// Each example uses part of this module.
#![allow(dead_code)]

use cobra::Config;

/// The value after `name` on the command line, if any.
pub(crate) fn opt(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

/// The value after `name` on the command line, or `default`.
pub(crate) fn arg(name: &str, default: &str) -> String {
    opt(name).unwrap_or_else(|| default.to_string())
}

/// A config from `--endpoint` (default `ws://127.0.0.1:8765`), `--appkey` (`_pubsub`),
/// `--rolename` (`pubsub`) and `--rolesecret`.
pub(crate) fn config() -> Config {
    Config::new(
        arg("--endpoint", "ws://127.0.0.1:8765"),
        arg("--appkey", "_pubsub"),
        arg("--rolename", "pubsub"),
        arg("--rolesecret", ""),
    )
}
