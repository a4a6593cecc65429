//! What the tests of every crate in this workspace share (`publish = false`, a dev-dependency only):
//!
//! - [`skip`]: the one skip policy for a test whose external tool is absent: a loud `SKIPPED` line
//!   that shows on a passing run, and a failure under `CI=true`, where every tool must be installed.
//! - [`process`]: free loopback ports, child processes killed on drop, waiting for a peer to listen,
//!   running a command with a deadline, `redis-server`, and our own `cobra` binary.
//! - [`client`]: a blocking WebSocket test client speaking the RTM protocol through `cobra_wire`.
//! - [`aggregate`]: the fixed aggregate scenario (events, statement, exact rows).

pub mod aggregate;
pub mod client;
pub mod process;
pub mod skip;

pub use process::{Guard, free_port, our_cobra_binary};
pub use skip::{require, require_on_path, skip, under_ci};
