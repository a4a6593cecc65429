//! Real `redis-server` processes for tests: free loopback port, no persistence, own temp dir,
//! killed (and their dir removed) on drop. `kill()` + `restart()` simulate a node crash and
//! its return on the same port.
#![allow(dead_code)] // each test binary uses a different subset

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Whether `redis-server` can be run here. Without it a test skips loudly, except under CI
/// (`CI` set), where it must run.
pub fn available() -> bool {
    let ok = Command::new("redis-server")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        assert!(
            std::env::var("CI").is_err(),
            "redis-server is required under CI"
        );
        // Straight to stderr: the test harness captures `eprintln!`, and a skip must be seen.
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED: redis-server not installed (install it, or run under CI where it is required)"
        );
    }
    ok
}

/// One `redis-server` child process.
pub struct RedisServer {
    port: u16,
    child: Option<Child>,
    dir: PathBuf,
    extra: Vec<String>,
}

fn ping(port: u16) -> bool {
    let Ok(mut s) =
        TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_millis(200))
    else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
    if s.write_all(b"PING\r\n").is_err() {
        return false;
    }
    let mut buf = [0u8; 7];
    // A server with `--requirepass` answers NOAUTH: it is up all the same.
    s.read_exact(&mut buf).is_ok() && (&buf == b"+PONG\r\n" || buf.starts_with(b"-NOAUTH"))
}

fn start(port: u16, dir: &PathBuf, extra: &[String]) -> std::io::Result<Option<Child>> {
    let mut child = Command::new("redis-server")
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .arg("--dir")
        .arg(dir)
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if child.try_wait()?.is_some() {
            return Ok(None); // exited: most likely the port was taken meanwhile
        }
        if ping(port) {
            return Ok(Some(child));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = child.kill();
    let _ = child.wait();
    Ok(None)
}

impl RedisServer {
    /// Starts a server on a free loopback port.
    pub fn spawn() -> std::io::Result<Self> {
        Self::spawn_with(&[])
    }

    /// Starts a server with extra command-line options (e.g. `["--requirepass", "pw"]`).
    pub fn spawn_with(extra: &[&str]) -> std::io::Result<Self> {
        for _ in 0..10 {
            let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
            let dir = std::env::temp_dir()
                .join(format!("cobra-redis-test-{}-{port}", std::process::id()));
            std::fs::create_dir_all(&dir)?;
            let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
            if let Some(child) = start(port, &dir, &extra)? {
                return Ok(RedisServer {
                    port,
                    child: Some(child),
                    dir,
                    extra,
                });
            }
            let _ = std::fs::remove_dir_all(&dir);
        }
        Err(std::io::Error::other("could not start redis-server"))
    }

    /// The TCP port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Freezes (`true`: SIGSTOP) or thaws (`false`: SIGCONT) the process: a node that stops
    /// answering without closing its connections.
    pub fn freeze(&self, frozen: bool) {
        if let Some(child) = &self.child {
            let signal = if frozen { "-STOP" } else { "-CONT" };
            let status = std::process::Command::new("kill")
                .args([signal, &child.id().to_string()])
                .status()
                .expect("kill");
            assert!(status.success(), "kill {signal}");
        }
    }

    /// Kills the process with SIGKILL (a crash: no goodbye to clients) and waits for it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port (after [`RedisServer::kill`]). Data is gone:
    /// there is no persistence.
    pub fn restart(&mut self) -> std::io::Result<()> {
        self.kill();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Some(child) = start(self.port, &self.dir, &self.extra)? {
                self.child = Some(child);
                return Ok(());
            }
        }
        Err(std::io::Error::other(
            "could not restart redis-server on its port",
        ))
    }

    /// A plain synchronous connection for assertions.
    pub fn client(&self) -> redis::Connection {
        redis::Client::open(self.url())
            .and_then(|c| c.get_connection())
            .expect("connect to test redis")
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
