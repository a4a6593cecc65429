//! Security promises that the other suites do not already prove (SECURITY.md maps each
//! promise to its test):
//!
//! - secrets, auth hashes and the Redis password never appear in the server's output, even
//!   with `--verbose` and `RUST_LOG=trace`, through successful and failed authentications;
//! - admin actions need the `admin` permission;
//! - apps cannot reach each other's channels, history or keys, whatever the channel name
//!   (separators, control characters), on the embedded AND the Redis backend.

mod common;
#[path = "support/redis.rs"]
mod redis_support;

use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};

use cobra_server::broker::redis::RedisLimits;
use cobra_wire::pdu::{action, error_code};
use common::{Client, SECRET};
use redis_support::RedisServer;
use serde_json::{Value, json};

#[test]
fn secrets_hashes_and_redis_password_are_never_logged() {
    if !redis_support::available() {
        return;
    }
    const REDIS_PASSWORD: &str = "redis-pw-5f1e2d3c4b";
    let redis = RedisServer::spawn_with(&["--requirepass", REDIS_PASSWORD]).expect("redis");
    let port = cobra_test_support::free_port();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("apps.yaml"), common::apps(100).to_yaml()).unwrap();
    let out = std::fs::File::create(dir.path().join("out.log")).unwrap();
    let child = common::cobra_run_command(port, dir.path())
        .arg("--verbose")
        .arg("--redis")
        .arg(format!(
            "redis://:{REDIS_PASSWORD}@127.0.0.1:{}",
            redis.port()
        ))
        .env("RUST_LOG", "trace")
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .expect("spawn cobra run");
    let mut child = cobra_test_support::Guard(child);
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    common::eventually("cobra run to listen", || TcpStream::connect(addr).ok());

    // A successful authentication (its hash recorded), a failed one, and some traffic.
    let mut hashes = Vec::new();
    let mut c = Client::connect(addr, "app1");
    let hs = c.request(
        action::AUTH_HANDSHAKE,
        json!({"method": "role_secret", "data": {"role": "all"}}),
    );
    let nonce = hs["body"]["data"]["nonce"].as_str().unwrap().to_owned();
    let hash = cobra_wire::auth::role_secret_hash(SECRET, &nonce);
    let r = c.request(
        action::AUTH_AUTHENTICATE,
        json!({"method": "role_secret", "credentials": {"hash": hash}}),
    );
    assert_eq!(r["action"], action::AUTH_AUTHENTICATE_OK, "{r}");
    hashes.push(hash);
    let r = c.request(
        action::PUBLISH,
        json!({"channel": "c", "message": {"hello": 1}}),
    );
    assert_eq!(r["action"], action::PUBLISH_OK, "{r}");
    let r = c.request(action::WRITE, json!({"channel": "k", "message": 1}));
    assert_eq!(r["action"], "rtm/write/ok", "{r}");
    let mut bad = Client::connect(addr, "app1");
    let hs = bad.request(
        action::AUTH_HANDSHAKE,
        json!({"method": "role_secret", "data": {"role": "all"}}),
    );
    let nonce = hs["body"]["data"]["nonce"].as_str().unwrap().to_owned();
    let wrong = cobra_wire::auth::role_secret_hash("not-the-secret-7a6b", &nonce);
    let r = bad.request(
        action::AUTH_AUTHENTICATE,
        json!({"method": "role_secret", "credentials": {"hash": wrong}}),
    );
    assert_eq!(r["body"]["error"], error_code::AUTHENTICATION_FAILED, "{r}");
    hashes.push(wrong);
    // A wrong secret passed where a hash is expected, as a confused client might.
    let mut confused = Client::connect(addr, "app1");
    confused.request(
        action::AUTH_HANDSHAKE,
        json!({"method": "role_secret", "data": {"role": "all"}}),
    );
    let r = confused.request(
        action::AUTH_AUTHENTICATE,
        json!({"method": "role_secret", "credentials": {"hash": SECRET}}),
    );
    assert_eq!(r["body"]["error"], error_code::AUTHENTICATION_FAILED, "{r}");
    drop((c, bad, confused));

    // The log is complete once the connections are logged as closed.
    let log = || std::fs::read_to_string(dir.path().join("out.log")).unwrap_or_default();
    common::eventually("connections logged as closed", || {
        (log().matches("connection closed").count() >= 3).then_some(())
    });
    let _ = child.0.kill();
    let _ = child.0.wait();
    let log = log();
    assert!(
        log.contains(action::AUTH_HANDSHAKE),
        "verbose logging is on: {log:.2000}"
    );
    for (what, secret) in [("role secret", SECRET), ("Redis password", REDIS_PASSWORD)]
        .into_iter()
        .chain(hashes.iter().map(|h| ("auth hash", h.as_str())))
    {
        assert!(
            !log.contains(secret),
            "the {what} {secret} appears in the server's output"
        );
    }
}

#[test]
fn admin_actions_need_the_admin_permission() {
    let server = common::start();
    let addr = server.local_addr();
    let mut victim = Client::connect(addr, "app1");
    let vid = victim.auth("sub", SECRET).unwrap()["connection_id"].clone();
    for role in ["sub", "pub"] {
        let mut c = Client::authed(addr, "app1", role);
        let r = c.request(action::GET_CONNECTIONS, json!({}));
        assert_eq!(
            r["body"]["error"],
            error_code::PERMISSION_DENIED,
            "{role}: {r}"
        );
        let r = c.request(action::CLOSE_CONNECTION, json!({"connection_id": vid}));
        assert_eq!(
            r["body"]["error"],
            error_code::PERMISSION_DENIED,
            "{role}: {r}"
        );
    }
    // The victim is still connected and served.
    let r = victim.request(action::SUBSCRIBE, json!({"channel": "still-here"}));
    assert_eq!(r["action"], action::SUBSCRIBE_OK, "{r}");
    // With the permission it works.
    let mut admin = Client::authed(addr, "app1", "all");
    let r = admin.request(action::CLOSE_CONNECTION, json!({"connection_id": vid}));
    assert_eq!(r["action"], "admin/close_connection/ok", "{r}");
    assert_eq!(victim.expect_close(), 1000);
}

/// Channel names a hostile app could try to reach another app's data with.
const TRICKY: [&str; 7] = [
    "x", "app2::x", "::x", "app2:", ":app2::x", "x\u{0}", "app2/x",
];

fn isolation(addr: SocketAddr) {
    let mut victim = Client::authed(addr, "app2", "all");
    for ch in TRICKY {
        let r = victim.request(action::SUBSCRIBE, json!({"channel": ch}));
        assert_eq!(r["action"], action::SUBSCRIBE_OK, "{r}");
    }
    let mut attacker = Client::authed(addr, "app1", "all");
    for ch in TRICKY {
        let r = attacker.request(
            action::PUBLISH,
            json!({"channel": ch, "message": "from app1"}),
        );
        assert_eq!(r["action"], action::PUBLISH_OK, "{r}");
        let r = attacker.request(
            action::WRITE,
            json!({"channel": ch, "message": "from app1"}),
        );
        assert_eq!(r["action"], "rtm/write/ok", "{r}");
    }
    // app2 reads none of app1's keys, replays none of its history, receives none of it live.
    let mut reader = Client::authed(addr, "app2", "all");
    for ch in TRICKY {
        let r = reader.request(action::READ, json!({"channel": ch}));
        assert_eq!(r["body"]["message"], Value::Null, "{ch:?}: {r}");
        let r = reader.request(
            action::SUBSCRIBE,
            json!({"channel": ch, "subscription_id": format!("h{ch}"), "position": "0-0"}),
        );
        assert_eq!(r["action"], action::SUBSCRIBE_OK, "{r}");
    }
    let mut own = Client::authed(addr, "app2", "all");
    let r = own.request(
        action::PUBLISH,
        json!({"channels": TRICKY, "message": "from app2"}),
    );
    assert_eq!(r["action"], action::PUBLISH_OK, "{r}");
    // The first data each subscription sees is app2's own message.
    for c in [&mut victim, &mut reader] {
        for _ in TRICKY {
            let d = c.next_data();
            assert_eq!(d["body"]["messages"], json!(["from app2"]), "{d}");
        }
    }
    // And app1 keeps its own: each key reads back app1's value.
    for ch in TRICKY {
        let r = attacker.request(action::READ, json!({"channel": ch}));
        assert_eq!(r["body"]["message"], "from app1", "{r}");
    }
}

#[test]
fn apps_are_isolated_on_the_embedded_backend() {
    let server = common::start();
    isolation(server.local_addr());
}

#[test]
fn apps_are_isolated_on_the_redis_backend() {
    let Some(nodes) = redis_support::nodes(2) else {
        return;
    };
    let server = common::start_on_redis(&redis_support::urls(&nodes), 100, RedisLimits::default());
    isolation(server.local_addr());
}

/// A wss:// server: stalled TLS handshakes are dropped after the handshake timeout, garbage
/// instead of a ClientHello and plain ws:// are closed at once, and others are served
/// meanwhile (the TLS handshake itself is checked in `tls.rs`).
#[test]
fn tls_port_survives_stalled_and_garbage_handshakes() {
    let dir = tempfile::tempdir().unwrap();
    let status = Command::new("openssl")
        .current_dir(dir.path())
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            "key.pem",
            "-out",
            "cert.pem",
            "-days",
            "2",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    if !status.is_ok_and(|s| s.success()) {
        cobra_test_support::skip("no openssl command line");
        return;
    }
    let server = common::start_with(100, |s| {
        s.tls = Some(cobra_server::config::options::TlsFiles {
            cert: dir.path().join("cert.pem"),
            key: dir.path().join("key.pem"),
        });
        s.limits.handshake_timeout = std::time::Duration::from_millis(400);
    });
    let addr = server.local_addr();
    let read_eof = |s: &mut TcpStream| {
        use std::io::Read;
        s.set_read_timeout(Some(common::WAIT)).unwrap();
        let mut buf = [0u8; 4096];
        // Anything the server sends (a TLS alert) then EOF; a timeout fails the test.
        loop {
            match s.read(&mut buf) {
                Ok(0) => return,
                Ok(_) => continue,
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return,
                Err(e) => panic!("the server did not close: {e}"),
            }
        }
    };
    use std::io::Write;
    let started = std::time::Instant::now();
    // Silent sockets and half a ClientHello (a TLS record header announcing 512 bytes).
    let mut stalled: Vec<TcpStream> = (0..20)
        .map(|i| {
            let mut s = TcpStream::connect(addr).unwrap();
            if i % 2 == 0 {
                s.write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01]).unwrap();
            }
            s
        })
        .collect();
    // Garbage and plain HTTP on the TLS port.
    for junk in [
        &b"\x00\xff garbage \r\n\r\n"[..],
        b"GET /v2?appkey=app1 HTTP/1.1\r\nHost: x\r\n\r\n",
    ] {
        let mut s = TcpStream::connect(addr).unwrap();
        s.write_all(junk).unwrap();
        read_eof(&mut s);
    }
    assert!(
        started.elapsed() < std::time::Duration::from_millis(400),
        "junk closed at once"
    );
    for s in &mut stalled {
        read_eof(s);
    }
    let took = started.elapsed();
    assert!(
        took < std::time::Duration::from_secs(3),
        "stalled TLS handshakes dropped after {took:?}"
    );
}
