//! `cobra drain` and `cobra reload`: signal a running `cobra run` by pid, for `preStop` hooks
//! and `kubectl exec` into images without a `kill` command (distroless).
//!
//! - `cobra drain`: SIGUSR2, lame duck: readiness fails at once and the clients are moved to
//!   other servers over the drain window; the server stays up until stopped.
//! - `cobra reload`: SIGHUP, the apps config is re-read (an invalid file is refused).

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// The process to signal.
#[derive(Debug, clap::Args)]
pub struct PidArgs {
    /// Process id of the `cobra run` (1 in a container where it is the entry point).
    #[arg(long, env = "COBRA_PID")]
    pub pid: i32,
}

/// `cobra drain`: sends SIGUSR2; returns the exit status.
pub fn drain(args: PidArgs) -> i32 {
    send(args.pid, Signal::SIGUSR2, "drain", "is draining")
}

/// `cobra reload`: sends SIGHUP; returns the exit status.
pub fn reload(args: PidArgs) -> i32 {
    send(
        args.pid,
        Signal::SIGHUP,
        "reload",
        "re-reads its apps config (see its log for the outcome)",
    )
}

fn send(pid: i32, signal: Signal, command: &str, outcome: &str) -> i32 {
    if pid <= 0 {
        eprintln!("cobra {command}: --pid must be a positive process id");
        return 2;
    }
    match kill(Pid::from_raw(pid), signal) {
        Ok(()) => {
            println!("cobra {command}: process {pid} {outcome}");
            0
        }
        Err(e) => {
            eprintln!("cobra {command}: cannot signal process {pid}: {e}");
            1
        }
    }
}
