//! A real PostgreSQL server for tests: `initdb` + `pg_ctl` from `/usr/lib/postgresql/*/bin` in a
//! temporary directory, on a free port, as the `postgres` system user when the test runs as root
//! (the server refuses to run as root). Stopped (immediate mode) on drop; `stop()` + `start()`
//! simulate the database going away and coming back.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::peers;

pub(crate) struct Postgres {
    pub port: u16,
    dir: tempfile::TempDir,
    bin: PathBuf,
    running: bool,
}

fn bin_dir() -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|p| p.join("pg_ctl").exists())
        .collect();
    dirs.sort_by_key(|p| {
        p.parent()
            .and_then(|v| v.file_name())
            .and_then(|v| v.to_str())
            .and_then(|v| v.parse::<u32>().ok())
            .unwrap_or(0)
    });
    dirs.pop()
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0")
}

impl Postgres {
    /// `None` (after a loud SKIPPED) when PostgreSQL is not installed and not under CI.
    pub(crate) fn spawn() -> Option<Postgres> {
        let bin = peers::require("PostgreSQL (Debian postgresql)", bin_dir())?;
        let dir = tempfile::tempdir().unwrap();
        let port = cobra_test_support::free_port();
        let mut pg = Postgres {
            port,
            dir,
            bin,
            running: false,
        };
        if is_root() {
            let st = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(pg.dir.path())
                .status()
                .unwrap();
            assert!(st.success(), "chown of the data dir to postgres");
        }
        let data = pg.data();
        pg.run("initdb", |c| {
            c.arg("-D")
                .arg(&data)
                .args(["-A", "trust", "-U", "cobra", "-E", "UTF8", "--no-sync"]);
        });
        pg.start();
        Some(pg)
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn run(&self, tool: &str, args: impl FnOnce(&mut Command)) {
        let mut c = if is_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(self.bin.join(tool));
            c
        } else {
            Command::new(self.bin.join(tool))
        };
        args(&mut c);
        cobra_test_support::process::output_ok(&mut c, tool);
    }

    pub(crate) fn start(&mut self) {
        let data = self.data();
        let log = self.dir.path().join("log");
        let sock = self.dir.path().to_path_buf();
        let port = self.port;
        self.run("pg_ctl", |c| {
            c.arg("-D")
                .arg(&data)
                .arg("-l")
                .arg(&log)
                .arg("-o")
                .arg(format!(
                    "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
                    sock.display()
                ));
            c.args(["-w", "-t", "60", "start"]);
        });
        self.running = true;
    }

    pub(crate) fn stop(&mut self) {
        let data = self.data();
        self.run("pg_ctl", |c| {
            c.arg("-D").arg(&data).args(["-m", "fast", "-w", "stop"]);
        });
        self.running = false;
    }

    pub(crate) fn url(&self) -> String {
        format!("postgresql://cobra@127.0.0.1:{}/postgres", self.port)
    }

    /// Runs `sql` with psql; the rows, `|`-separated fields.
    pub(crate) fn query(&self, sql: &str) -> String {
        let out = cobra_test_support::process::output_ok(
            Command::new(self.bin.join("psql"))
                .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
                .args(["-U", "cobra", "-d", "postgres", "-At", "-c", sql]),
            &format!("psql {sql}"),
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub(crate) fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        if self.running {
            let data = self.data();
            let bin = self.bin.join("pg_ctl");
            let mut c = if is_root() {
                let mut c = Command::new("runuser");
                c.args(["-u", "postgres", "--"]).arg(bin);
                c
            } else {
                Command::new(bin)
            };
            let _ = c
                .arg("-D")
                .arg(data)
                .args(["-m", "immediate", "-w", "stop"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}
