//! `rediss://`: the Redis backend over TLS, against a real `redis-server` serving TLS with a
//! certificate from a private CA (made here with rcgen).

#[path = "support/redis.rs"]
mod redis_support;

use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cobra_server::broker::backend::{Backend, ChannelKey, StartAt};
use cobra_server::broker::mailbox::{Delivery, Mailbox, Subscriber};
use cobra_server::broker::redis::{ConnectError, RedisBackend, RedisLimits};
use cobra_wire::Position;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use redis_support::RedisServer;

const BIN: &str = env!("CARGO_BIN_EXE_cobra");

/// A redis-server with a TLS port (its plain port stays open for the readiness check), and the
/// PEM files it was given.
struct TlsRedis {
    _server: RedisServer,
    tls_port: u16,
    ca_pem: String,
    dir: tempfile::TempDir,
}

impl TlsRedis {
    fn spawn() -> TlsRedis {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca =
            CertifiedIssuer::self_signed(ca_params, KeyPair::generate().expect("key")).expect("CA");
        let key = KeyPair::generate().expect("key");
        let cert = CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
            .expect("leaf params")
            .signed_by(&key, &ca)
            .expect("leaf");
        let write = |name: &str, pem: &str| -> PathBuf {
            let path = dir.path().join(name);
            std::fs::write(&path, pem).expect("write PEM");
            path
        };
        let ca_pem = ca.pem();
        let ca_file = write("ca.pem", &ca_pem);
        let cert_file = write("redis.crt", &cert.pem());
        let key_file = write("redis.key", &key.serialize_pem());
        let tls_port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let path = |p: &Path| p.to_string_lossy().into_owned();
        let server = RedisServer::spawn_with(&[
            "--tls-port",
            &tls_port.to_string(),
            "--tls-cert-file",
            &path(&cert_file),
            "--tls-key-file",
            &path(&key_file),
            "--tls-ca-cert-file",
            &path(&ca_file),
            "--tls-auth-clients",
            "no",
        ])
        .expect("redis-server with TLS");
        TlsRedis {
            _server: server,
            tls_port,
            ca_pem,
            dir,
        }
    }

    fn url(&self) -> String {
        format!("rediss://127.0.0.1:{}", self.tls_port)
    }

    fn ca_file(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    fn limits(&self) -> RedisLimits {
        RedisLimits {
            tls_ca_pem: Some(self.ca_pem.clone()),
            ..RedisLimits::default()
        }
    }
}

async fn collect(mailbox: &Mailbox, n: usize) -> Vec<String> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let mut got = Vec::new();
    while got.len() < n {
        let mut out: Vec<Delivery> = Vec::new();
        mailbox.drain(&mut out, usize::MAX);
        got.extend(out.iter().map(|d| d.message.payload.to_string()));
        if got.len() < n
            && tokio::time::timeout_at(deadline, mailbox.wait())
                .await
                .is_err()
        {
            break;
        }
    }
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_subscribe_and_history_over_tls() {
    if !redis_support::available() {
        return;
    }
    let redis = TlsRedis::spawn();
    let b = RedisBackend::connect(&redis.url(), None, 100, redis.limits())
        .await
        .expect("connect over TLS");
    assert!(
        b.status()[0].health.node.starts_with("rediss://"),
        "{:?}",
        b.status()
    );
    let k = ChannelKey::new("app", "tls");
    let mailbox = Arc::new(Mailbox::new(1 << 20));
    let live = Arc::new(Subscriber::new(Arc::clone(&mailbox), 1));
    b.subscribe(&k, StartAt::Live, live)
        .await
        .expect("subscribe");
    for i in 0..3 {
        b.publish(&k, format!("{{\"n\":{i}}}").into())
            .await
            .expect("publish");
    }
    assert_eq!(
        collect(&mailbox, 3).await,
        ["{\"n\":0}", "{\"n\":1}", "{\"n\":2}"]
    );
    let history = Arc::new(Mailbox::new(1 << 20));
    let replay = Arc::new(Subscriber::new(Arc::clone(&history), 2));
    b.subscribe(&k, StartAt::After(Position::ZERO), replay)
        .await
        .expect("replay");
    assert_eq!(collect(&history, 3).await.len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_from_an_unknown_ca_is_refused() {
    if !redis_support::available() {
        return;
    }
    let redis = TlsRedis::spawn();
    // The webpki roots do not know our private CA.
    let refused = RedisBackend::connect(&redis.url(), None, 100, RedisLimits::default()).await;
    match refused {
        Err(e @ ConnectError::NoNodeReachable(_)) => {
            assert!(e.to_string().contains("127.0.0.1"), "{e}")
        }
        Err(e) => panic!("unexpected error: {e}"),
        Ok(_) => panic!("a node with an unknown CA's certificate was accepted"),
    }
    // Plain text to the TLS port is no Redis conversation either.
    let plain = format!("redis://127.0.0.1:{}", redis.tls_port);
    assert!(
        RedisBackend::connect(&plain, None, 100, redis.limits())
            .await
            .is_err()
    );
}

/// Kills the child when dropped.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn cobra(dir: &Path) -> Command {
    let mut cmd = cobra_test_support::process::clean_command(std::path::Path::new(BIN));
    cmd.env("COBRA_APPS_CONFIG", dir.join("apps.yaml"))
        .env("HOME", dir)
        .stdin(Stdio::null());
    cmd
}

/// `cobra run --redis rediss://… --redis-tls-ca ca.pem` serves, and `cobra health` passes
/// through it; an unreadable CA file stops `cobra run` with a clear message.
#[test]
fn cobra_run_over_rediss_passes_health() {
    if !redis_support::available() {
        return;
    }
    let redis = TlsRedis::spawn();
    let dir = redis.dir.path();
    let init = cobra(dir).arg("init").output().expect("cobra init");
    assert!(init.status.success(), "{init:?}");

    let missing = cobra(dir)
        .args(["run", "--port", "0", "--redis", &redis.url()])
        .args(["--redis-tls-ca", "/nonexistent/ca.pem"])
        .output()
        .expect("cobra run");
    assert_eq!(missing.status.code(), Some(1), "{missing:?}");
    let stderr = String::from_utf8_lossy(&missing.stderr);
    assert!(
        stderr.contains("--redis-tls-ca") && stderr.contains("/nonexistent/ca.pem"),
        "{stderr}"
    );

    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let log = std::fs::File::create(dir.join("server.log")).expect("log");
    let server = Guard(
        cobra(dir)
            .args(["run", "--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["--redis", &redis.url(), "--redis-tls-ca"])
            .arg(redis.ca_file())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("cobra run"),
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    let endpoint = format!("ws://127.0.0.1:{port}");
    loop {
        let out = cobra(dir)
            .args(["health", "--endpoint", &endpoint, "--timeout", "5"])
            .output()
            .expect("cobra health");
        if out.status.success() {
            assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "healthy");
            break;
        }
        let mut log = String::new();
        let _ = std::fs::File::open(dir.join("server.log"))
            .and_then(|mut f| f.read_to_string(&mut log));
        assert!(
            Instant::now() < deadline,
            "health never passed: {}\nserver log: {log}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    drop(server);
}
