//! `cobra run`, our real server, as a child process of a test (killed on drop). The binary is
//! found by `cobra_test_support::our_cobra_binary` in this test's target directory: build it
//! first with `cargo build -p cobra-server`.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use cobra_test_support::our_cobra_binary;

/// The secret of the `pubsub` role of the `_pubsub` app the server is started with.
pub(crate) const SECRET: &str = "0123456789abcdef0123456789abcdef";

const T: Duration = Duration::from_secs(20);

/// `cobra run` as a child process, killed on drop.
pub(crate) struct Server {
    child: Child,
    pub addr: SocketAddr,
    dir: PathBuf,
}

impl Server {
    /// Starts `cobra run` on 127.0.0.1:`port` (0: any free port) and waits for its address.
    pub(crate) fn start(port: u16) -> Server {
        Server::start_with(port, &[])
    }

    /// [`Server::start`] with more `cobra run` options.
    pub(crate) fn start_with(port: u16, extra: &[&str]) -> Server {
        // Unique per server, not per port: tests running in parallel all pass port 0, and one
        // server's drop removing the directory must not pull the config from under another's start.
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!(
            "cobra-sdk-server-{}-{port}-{n}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let apps = dir.join("apps.yaml");
        std::fs::write(
            &apps,
            format!(
                "apps:\n  _pubsub:\n    roles:\n      pubsub:\n        secret: {SECRET}\n        \
                 permissions: [subscribe, unsubscribe, publish, admin, read, write, delete]\n"
            ),
        )
        .unwrap();
        let mut cmd = cobra_test_support::process::clean_command(&our_cobra_binary());
        let mut child = cmd
            .args([
                "run",
                "--host",
                "127.0.0.1",
                "--port",
                &port.to_string(),
                "--message-max-size",
                "4000000",
            ])
            .args(extra)
            .arg("--apps-config")
            .arg(&apps)
            .env("HOME", &dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn cobra run");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(rest) = line.split("ws://").nth(1) {
                    let _ = tx.send(rest.split_whitespace().next().unwrap_or("").to_string());
                }
            }
        });
        let addr = rx
            .recv_timeout(T)
            .expect("cobra run announces its address")
            .parse()
            .unwrap();
        Server { child, addr, dir }
    }

    /// `ws://127.0.0.1:PORT`.
    pub(crate) fn url(&self) -> String {
        format!("ws://{}", self.addr)
    }

    /// A client config for this server's `_pubsub` app, with short reconnect backoffs.
    pub(crate) fn config(&self) -> cobra::Config {
        cobra::Config::new(self.url(), "_pubsub", "pubsub", SECRET)
            .backoff(Duration::from_millis(20), Duration::from_millis(300))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
