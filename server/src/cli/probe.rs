//! `cobra probe`: asks a local server's `/health/live` or `/health/ready` and exits 0 on 200.
//! For the Docker `HEALTHCHECK` of an image without curl or a shell (distroless).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// Which health endpoint to ask.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Probe {
    /// `/health/live`: the process serves requests.
    Live,
    /// `/health/ready`: not draining, backend reachable, under the connection limit.
    Ready,
}

/// Options of `cobra probe`.
#[derive(Debug, clap::Args)]
pub struct ProbeArgs {
    /// The endpoint to ask.
    #[arg(value_enum)]
    pub probe: Probe,
    /// Port of the server (on 127.0.0.1).
    #[arg(long, env = "COBRA_PORT", default_value_t = crate::config::options::DEFAULT_PORT)]
    pub port: u16,
    /// Seconds to wait for the answer.
    #[arg(long, default_value_t = 3)]
    pub timeout: u64,
}

/// Runs the probe; returns the exit status (0: healthy, 1: not).
pub fn probe(args: ProbeArgs) -> i32 {
    let path = match args.probe {
        Probe::Live => "/health/live",
        Probe::Ready => "/health/ready",
    };
    match ask(args.port, path, Duration::from_secs(args.timeout.max(1))) {
        Ok((200, _)) => 0,
        Ok((status, body)) => {
            eprintln!("cobra probe: {path}: HTTP {status}: {}", body.trim());
            1
        }
        Err(e) => {
            eprintln!("cobra probe: {path}: {e}");
            1
        }
    }
}

fn ask(port: u16, path: &str, timeout: Duration) -> std::io::Result<(u16, String)> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut s = TcpStream::connect_timeout(&addr, timeout)?;
    s.set_read_timeout(Some(timeout))?;
    s.set_write_timeout(Some(timeout))?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )?;
    // The server closes after its answer; a health answer is a few hundred bytes.
    let mut answer = Vec::new();
    s.take(64 << 10).read_to_end(&mut answer)?;
    let text = String::from_utf8_lossy(&answer);
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other("not an HTTP answer"))?;
    let body = text
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_owned();
    Ok((status, body))
}
