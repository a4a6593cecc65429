//! The skip policy, one rule for every test that needs a tool from outside cargo (a peer from
//! `scripts/install-*.sh`, `redis-server`, `openssl`...): when it is absent the test prints a loud
//! `SKIPPED: ...` line and passes, except under `CI=true`, where it fails.
//!
//! The line is written to the process's stderr directly, not through `eprintln!`, which the test
//! harness captures and hides on a passing test: a skip is visible in every run.

use std::io::Write;
use std::path::PathBuf;

/// True under CI (`CI=true`), where every external tool must be installed and a skip is a failure.
pub fn under_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// Skips the calling test because of `reason`: prints `SKIPPED: <reason>` where a passing run shows
/// it, or panics under `CI=true`. The caller returns right after.
pub fn skip(reason: &str) {
    if under_ci() {
        panic!("{reason} (required under CI=true)");
    }
    let line = format!(
        "SKIPPED: {reason} [{}]\n",
        std::thread::current().name().unwrap_or("?")
    );
    let _ = std::io::stderr().write_all(line.as_bytes());
}

/// `path` if it exists; otherwise [`skip`]s and gives `None`.
pub fn require(path: PathBuf, what: &str) -> Option<PathBuf> {
    if path.exists() {
        return Some(path);
    }
    skip(&format!(
        "{what} not found at {}: {INSTALL_HINT}",
        path.display()
    ));
    None
}

/// Where the external tools come from.
pub const INSTALL_HINT: &str = "run scripts/setup.sh (every scripts/install-*.sh)";

/// A program on the PATH, with the same policy as [`require`].
pub fn require_on_path(program: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(program))
            .find(|p| p.is_file())
    });
    match found {
        Some(p) => Some(p),
        None => require(
            PathBuf::from(program),
            &format!("`{program}` (on the PATH)"),
        ),
    }
}
