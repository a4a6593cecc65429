//! Finding the third-party peers the bot tests need (installed by `scripts/install-bots.sh`), and
//! skipping loudly when one is missing, except under CI where that is a failure.
#![allow(dead_code)]

use std::io::Write;
use std::path::PathBuf;

/// The repository root.
pub(crate) fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("server/ has a parent")
        .to_path_buf()
}

/// `Some(path)` if it exists; else skips (prints `SKIPPED: ...`) or, under `CI=true`, panics.
pub(crate) fn require(what: &str, path: Option<PathBuf>) -> Option<PathBuf> {
    if let Some(p) = path.filter(|p| p.exists()) {
        return Some(p);
    }
    assert!(
        std::env::var("CI").ok().as_deref() != Some("true"),
        "{what} is required under CI: run scripts/install-bots.sh"
    );
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED: {what} not installed (run scripts/install-bots.sh)"
    );
    None
}
