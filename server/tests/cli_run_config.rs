//! Where `cobra run` takes its apps config from, run as the real binary: the first-run
//! default, `COBRA_APPS_CONFIG_CONTENT`, and the errors for a missing or invalid config.

use cobra_test_support::free_port;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use cobra_server::config::AppsConfig;

const DEADLINE: Duration = Duration::from_secs(20);

/// A child killed and reaped on drop.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `cobra run` on a free port with HOME = `home` and no inherited `COBRA_*` variable; its
/// output goes to files in `home` (read with [`output`]).
fn cobra_run(home: &Path, port: u16, args: &[&str], env: &[(&str, &str)]) -> Guard {
    let mut cmd = cobra_test_support::process::clean_command(std::path::Path::new(env!(
        "CARGO_BIN_EXE_cobra"
    )));
    let file = |name| std::fs::File::create(home.join(name)).expect("log file");
    cmd.args(["run", "--port", &port.to_string()])
        .args(args)
        .envs(env.iter().copied())
        .env("HOME", home)
        .stdin(Stdio::null())
        .stdout(file("run.stdout"))
        .stderr(file("run.stderr"));
    Guard(cmd.spawn().expect("spawn cobra run"))
}

fn output(home: &Path) -> String {
    let read = |name| std::fs::read_to_string(home.join(name)).unwrap_or_default();
    format!("{}{}", read("run.stdout"), read("run.stderr"))
}

/// Waits until the server listens and has printed its ready line (it is printed just after the
/// bind, so the port alone can be ready before the line); panics with its output if it exits or
/// the deadline passes.
fn wait_listening(server: &mut Guard, port: u16, home: &Path) {
    let deadline = Instant::now() + DEADLINE;
    while TcpStream::connect(("127.0.0.1", port)).is_err() || !output(home).contains("listening on")
    {
        if let Ok(Some(status)) = server.0.try_wait() {
            panic!("cobra run exited ({status}):\n{}", output(home));
        }
        assert!(
            Instant::now() < deadline,
            "cobra run not listening:\n{}",
            output(home)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits for the server to exit by itself; returns its exit code.
fn wait_exit(server: &mut Guard, home: &Path) -> Option<i32> {
    let deadline = Instant::now() + DEADLINE;
    loop {
        if let Ok(Some(status)) = server.0.try_wait() {
            return status.code();
        }
        assert!(
            Instant::now() < deadline,
            "cobra run did not exit:\n{}",
            output(home)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Answers of `GET /health/`, proving the process serves.
fn http_health(port: u16) -> String {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream
        .set_read_timeout(Some(DEADLINE))
        .expect("read timeout");
    stream
        .write_all(b"GET /health/ HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .expect("send");
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    response
}

/// Starts [`cobra_run`] on a free port, which must exit with an error saying `expected`.
fn assert_fails_to_start(home: &Path, args: &[&str], env: &[(&str, &str)], expected: &str) {
    let mut server = cobra_run(home, free_port(), args, env);
    assert_ne!(wait_exit(&mut server, home), Some(0));
    let printed = output(home);
    assert!(printed.contains(expected), "{printed}");
}

#[test]
fn first_run_creates_the_default_config_and_prints_the_pubsub_credentials() {
    let home = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut server = cobra_run(home.path(), port, &[], &[]);
    wait_listening(&mut server, port, home.path());
    let path = home.path().join(".cobra.yaml");
    let config = AppsConfig::from_yaml(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let secret = &config
        .app("_pubsub")
        .unwrap()
        .role("pubsub")
        .unwrap()
        .secret;
    let printed = output(home.path());
    assert!(
        printed.contains(&path.display().to_string())
            && printed.contains("_pubsub")
            && printed.contains(secret),
        "the first run must say where the config is and how to connect:\n{printed}"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    drop(server);

    // The second run keeps it.
    let port = free_port();
    let mut server = cobra_run(home.path(), port, &[], &[]);
    wait_listening(&mut server, port, home.path());
    let again = AppsConfig::from_yaml(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(again, config);
    assert!(
        !output(home.path()).contains(secret),
        "nothing to announce the second time"
    );
}

#[test]
fn config_content_from_the_environment() {
    let home = tempfile::tempdir().unwrap();
    let yaml = AppsConfig::default_generated().to_yaml();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(yaml.as_bytes()).unwrap();
    let content = base64::engine::general_purpose::STANDARD.encode(gz.finish().unwrap());
    let port = free_port();
    let mut server = cobra_run(
        home.path(),
        port,
        &[],
        &[("COBRA_APPS_CONFIG_CONTENT", &content)],
    );
    wait_listening(&mut server, port, home.path());
    assert!(http_health(port).ends_with("OK\n"));
    assert!(
        !home.path().join(".cobra.yaml").exists(),
        "no default created when the content is given"
    );

    assert_fails_to_start(
        home.path(),
        &[],
        &[("COBRA_APPS_CONFIG_CONTENT", "this is not base64!")],
        "COBRA_APPS_CONFIG_CONTENT is not valid base64",
    );
}

#[test]
fn a_missing_or_invalid_config_stops_the_server_with_a_clear_message() {
    let home = tempfile::tempdir().unwrap();
    let missing = home.path().join("typo.yaml");
    assert_fails_to_start(
        home.path(),
        &["--apps_config_path", missing.to_str().unwrap()],
        &[],
        "does not exist",
    );
    assert!(!missing.exists(), "an explicit path is never created");

    let bad = home.path().join("bad.yaml");
    std::fs::write(
        &bad,
        "apps:\n  _health:\n    roles:\n      health:\n        permissions: [read]\n",
    )
    .unwrap();
    assert_fails_to_start(
        home.path(),
        &[],
        &[("COBRA_APPS_CONFIG", bad.to_str().unwrap())],
        "app `_health`, role `health`: missing secret",
    );
}

#[test]
fn options_come_from_cobra_env_vars() {
    let home = tempfile::tempdir().unwrap();
    let path = home.path().join("apps.yaml");
    std::fs::write(&path, AppsConfig::default_generated().to_yaml()).unwrap();
    let port = free_port();
    // `cobra_run` passes `--port`; use a different, env-only spelling for everything else.
    let mut server = cobra_run(
        home.path(),
        port,
        &[],
        &[
            ("COBRA_HOST", "127.0.0.1"),
            ("COBRA_APPS_CONFIG", path.to_str().unwrap()),
            ("COBRA_VERBOSE", "yes"),
            ("COBRA_MAX_SUBSCRIPTIONS", "3"),
        ],
    );
    wait_listening(&mut server, port, home.path());
    let printed = output(home.path());
    assert!(printed.contains(&path.display().to_string()), "{printed}");
    assert!(!home.path().join(".cobra.yaml").exists());
    drop(server);

    assert_fails_to_start(
        home.path(),
        &[],
        &[
            ("COBRA_APPS_CONFIG", path.to_str().unwrap()),
            ("COBRA_MAX_SUBSCRIPTIONS", "0"),
        ],
        "--max-subscriptions must be at least 1",
    );
}

/// Status line of `GET path`.
fn http_status(port: u16, path: &str) -> String {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream
        .set_read_timeout(Some(DEADLINE))
        .expect("read timeout");
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .expect("send");
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    response.lines().next().unwrap_or_default().to_owned()
}

#[test]
fn the_dashboard_is_served_unless_cobra_no_dashboard() {
    let home = tempfile::tempdir().unwrap();
    let path = home.path().join("apps.yaml");
    std::fs::write(&path, AppsConfig::default_generated().to_yaml()).unwrap();
    let config = path.to_str().unwrap();
    for (env, want) in [
        (None, "HTTP/1.1 200 OK"),
        (Some("true"), "HTTP/1.1 404 Not Found"),
    ] {
        let port = free_port();
        let mut vars = vec![("COBRA_APPS_CONFIG", config)];
        vars.extend(env.map(|v| ("COBRA_NO_DASHBOARD", v)));
        let mut server = cobra_run(home.path(), port, &[], &vars);
        wait_listening(&mut server, port, home.path());
        assert_eq!(http_status(port, "/"), want, "COBRA_NO_DASHBOARD={env:?}");
        assert!(http_health(port).ends_with("OK\n"));
    }
}

/// Threads of process `pid` named `name` (Linux: /proc/<pid>/task/*/comm).
fn threads_named(pid: u32, name: &str) -> usize {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0;
    };
    tasks
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .filter(|comm| comm.trim() == name)
        .count()
}

#[test]
fn worker_threads_from_the_option_or_cobra_worker_threads() {
    if !cfg!(target_os = "linux") {
        return;
    }
    let home = tempfile::tempdir().unwrap();
    let path = home.path().join("apps.yaml");
    std::fs::write(&path, AppsConfig::default_generated().to_yaml()).unwrap();
    let config = path.to_str().unwrap();
    for (args, env, want) in [
        (&["--worker-threads", "3"][..], &[][..], 3),
        (&[][..], &[("COBRA_WORKER_THREADS", "1")][..], 1),
    ] {
        let port = free_port();
        let mut all_args = vec!["--apps-config", config];
        all_args.extend_from_slice(args);
        let mut server = cobra_run(home.path(), port, &all_args, env);
        wait_listening(&mut server, port, home.path());
        // The workers are started with the runtime, before the listener answers.
        assert_eq!(
            threads_named(server.0.id(), "cobra-worker"),
            want,
            "{args:?} {env:?}"
        );
        drop(server);
    }
    assert_fails_to_start(
        home.path(),
        &["--apps-config", config, "--worker-threads", "0"],
        &[],
        "--worker-threads must be at least 1",
    );
}
