//! Processes for the tests: free loopback ports, children killed and reaped on drop, waiting for a
//! peer to listen or print its ready line, running a command to a deadline, `redis-server` on a
//! free port, and our own `cobra` binary.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use crate::skip::{require, require_on_path};

/// How long a peer may take to start listening.
pub const START_TIMEOUT: Duration = Duration::from_secs(30);

/// The repository root.
pub fn root() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

/// A command with no inherited `COBRA_*` variable (both `cobra` CLIs read several).
pub fn clean_command(program: &Path) -> Command {
    let mut cmd = Command::new(program);
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("COBRA_") {
            cmd.env_remove(name);
        }
    }
    cmd.env("PYTHONUNBUFFERED", "1");
    cmd
}

/// A child process killed and reaped on drop.
pub struct Guard(pub Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A free TCP port on loopback (bound then released: the peer binds it right after).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

/// Polls until `port` accepts a connection; panics with `log()` if `process` exits first or
/// [`START_TIMEOUT`] passes.
pub fn wait_listening(process: &mut Child, port: u16, what: &str, log: impl Fn() -> String) {
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if let Ok(Some(status)) = process.try_wait() {
            panic!("{what} exited early ({status})\n{}", log());
        }
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what} did not listen on port {port} within {START_TIMEOUT:?}\n{}",
            log()
        );
        thread::sleep(Duration::from_millis(20));
    }
}

/// Spawns `cmd` (stdout piped, stderr to `stderr_log`) and waits for its first stdout line,
/// which must be `LISTENING <port>`; returns the guard and the port. Later stdout is drained.
pub fn spawn_with_ready_line(mut cmd: Command, what: &str, stderr_log: &Path) -> (Guard, u16) {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(stderr_log).expect("stderr log"));
    let mut child = Guard(cmd.spawn().unwrap_or_else(|e| panic!("spawn {what}: {e}")));
    let stdout = child.0.stdout.take().expect("piped stdout");
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut lines = BufReader::new(stdout).lines();
        let first = lines.next().and_then(Result::ok);
        let _ = tx.send(first);
        for _ in lines {} // keep the pipe drained
    });
    let log = || std::fs::read_to_string(stderr_log).unwrap_or_default();
    let line = match rx.recv_timeout(START_TIMEOUT) {
        Ok(Some(line)) => line,
        Ok(None) => panic!("{what} exited before its ready line\n{}", log()),
        Err(_) => panic!(
            "{what} printed no ready line within {START_TIMEOUT:?}\n{}",
            log()
        ),
    };
    let port = line
        .strip_prefix("LISTENING ")
        .and_then(|p| p.trim().parse().ok())
        .unwrap_or_else(|| panic!("{what}: unexpected ready line {line:?}\n{}", log()));
    (child, port)
}

/// A started echo peer, killed on drop.
pub struct EchoPeer {
    _process: Guard,
    /// The loopback port it listens on.
    pub port: u16,
    _dir: tempfile::TempDir,
}

impl EchoPeer {
    /// `ws://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("ws://127.0.0.1:{}", self.port)
    }
}

/// The Python of the `websockets` venv, with the skip policy of [`require`].
pub fn python_websockets() -> Option<PathBuf> {
    require(
        root().join(".tools/pyws-venv/bin/python"),
        "Python `websockets` venv",
    )
}

/// The Python echo peer (`tests/peers/cobra_echo_pyws.py`) with `secret` and `args`.
pub fn start_python_echo(secret: &str, args: &[&str]) -> Option<EchoPeer> {
    let python = python_websockets()?;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cmd = clean_command(&python);
    cmd.arg(root().join("tests/peers/cobra_echo_pyws.py"))
        .arg(secret)
        .args(args);
    let (process, port) =
        spawn_with_ready_line(cmd, "python echo peer", &dir.path().join("stderr"));
    Some(EchoPeer {
        _process: process,
        port,
        _dir: dir,
    })
}

/// The Node echo peer (`tests/peers/cobra_echo_node_ws.js`) with `secret` and `perMessageDeflate`
/// = `pmd_json`.
pub fn start_node_echo(secret: &str, pmd_json: &str) -> Option<EchoPeer> {
    let node = require_on_path("node")?;
    let modules = require(root().join(".tools/node/node_modules"), "Node `ws` package")?;
    require(modules.join("ws/package.json"), "Node `ws` package")?;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cmd = clean_command(&node);
    cmd.arg(root().join("tests/peers/cobra_echo_node_ws.js"))
        .arg(secret)
        .arg(pmd_json)
        .env("NODE_PATH", &modules);
    let (process, port) = spawn_with_ready_line(cmd, "node echo peer", &dir.path().join("stderr"));
    Some(EchoPeer {
        _process: process,
        port,
        _dir: dir,
    })
}

/// One `redis-server` on a free loopback port, no persistence, killed on drop.
pub struct Redis {
    _process: Guard,
    /// Its port on 127.0.0.1.
    pub port: u16,
}

impl Redis {
    /// Starts `redis_server` with its files in `dir` and waits for it to answer PING.
    pub fn start(redis_server: &Path, dir: &Path) -> Redis {
        let port = free_port();
        let mut cmd = Command::new(redis_server);
        cmd.args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let mut process = Guard(cmd.spawn().expect("spawn redis-server"));
        wait_listening(&mut process.0, port, "redis-server", String::new);
        // Listening is not serving yet (it may still be loading): wait for a PONG.
        let deadline = Instant::now() + START_TIMEOUT;
        while !redis_ping(port) {
            assert!(
                Instant::now() < deadline,
                "redis-server never answered PING"
            );
            thread::sleep(Duration::from_millis(20));
        }
        Redis {
            _process: process,
            port,
        }
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }
}

fn redis_ping(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
    let mut buf = [0u8; 7];
    s.write_all(b"PING\r\n").is_ok() && s.read_exact(&mut buf).is_ok() && &buf == b"+PONG\r\n"
}

/// Our `cobra` binary (package `cobra-server`, built by `cargo build -p cobra-server --bin
/// cobra`, as `scripts/test.sh` does first), found in this test's target directory.
pub fn our_cobra_binary() -> PathBuf {
    // <target>/<profile>/deps/<test>-<hash> -> <target>/<profile>/cobra
    let exe = std::env::current_exe().expect("current_exe");
    let profile_dir = exe
        .parent()
        .and_then(|d| d.parent())
        .expect("target layout")
        .to_path_buf();
    let profile = profile_dir.file_name().expect("profile").to_owned();
    let mut candidates = vec![profile_dir.join("cobra")];
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR") {
        candidates.push(PathBuf::from(dir).join(&profile).join("cobra"));
    }
    candidates.push(root().join("target").join(&profile).join("cobra"));
    candidates
        .iter()
        .find(|p| p.exists())
        .unwrap_or_else(|| {
            panic!(
                "our `cobra` binary not found in {candidates:?}: run `cargo build -p cobra-server --bin cobra` first"
            )
        })
        .clone()
}

/// What a finished (or timed out and killed) command printed.
#[derive(Debug)]
pub struct Run {
    /// The exit status; `None` if it was killed at its deadline.
    pub status: Option<ExitStatus>,
    /// Everything it printed on stdout.
    pub stdout: String,
    /// Everything it printed on stderr.
    pub stderr: String,
}

impl Run {
    /// It exited, with status 0.
    pub fn success(&self) -> bool {
        self.status.is_some_and(|s| s.success())
    }
}

impl std::fmt::Display for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let status = match self.status {
            Some(s) => s.to_string(),
            None => "killed at its deadline".to_owned(),
        };
        write!(
            f,
            "status: {status}\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout, self.stderr
        )
    }
}

fn collect(mut pipe: impl Read + Send + 'static) -> thread::JoinHandle<String> {
    thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes);
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

/// What a server (`what`) logging into `dir/server.stdout` and `dir/server.stderr` printed, for
/// failure messages.
pub fn server_logs(dir: &Path, what: &str) -> String {
    let read = |name| std::fs::read_to_string(dir.join(name)).unwrap_or_default();
    format!(
        "--- {what} stdout\n{}\n--- {what} stderr\n{}",
        read("server.stdout"),
        read("server.stderr")
    )
}

/// Runs `cmd` to completion (no input) and asserts it exited with status 0, saying `what`
/// otherwise; returns what it printed.
pub fn output_ok(cmd: &mut Command, what: &str) -> std::process::Output {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed ({}):\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Runs `cmd` with `stdin` as its input to completion, killing it at `timeout`.
pub fn run_with_deadline(mut cmd: Command, stdin: &str, timeout: Duration) -> Run {
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = Guard(cmd.spawn().expect("spawn"));
    let stdout = collect(child.0.stdout.take().expect("piped stdout"));
    let stderr = collect(child.0.stderr.take().expect("piped stderr"));
    let mut input = child.0.stdin.take().expect("piped stdin");
    let stdin = stdin.to_owned();
    thread::spawn(move || {
        let _ = input.write_all(stdin.as_bytes());
        // dropping `input` closes the pipe: EOF for the command
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.0.try_wait().expect("try_wait") {
            break Some(status);
        }
        if Instant::now() >= deadline {
            break None;
        }
        thread::sleep(Duration::from_millis(20));
    };
    drop(child); // kills it if still running, which closes the pipes
    Run {
        status,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    }
}
