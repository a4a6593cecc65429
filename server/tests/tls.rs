//! wss:// and https:// on the same port with `--tls-cert/--tls-key` (certificates made by the
//! `openssl` command line for the test: a CA and a leaf for 127.0.0.1).

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use bytes::BytesMut;
use cobra_server::config::options::TlsFiles;
use cobra_test_support::client::upgrade;
use cobra_wire::ws::{Codec, Message, Role};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::{Value, json};

fn openssl(dir: &Path, args: &[&str]) {
    let status = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .status()
        .expect("the openssl command line is needed for this test");
    assert!(status.success(), "openssl {args:?}");
}

fn make_certs(dir: &Path) {
    std::fs::write(
        dir.join("leaf.ext"),
        "basicConstraints=CA:FALSE\nsubjectAltName=IP:127.0.0.1\n",
    )
    .unwrap();
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=cobra test CA",
        ],
    );
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "leaf.key",
            "-out",
            "leaf.csr",
            "-subj",
            "/CN=127.0.0.1",
        ],
    );
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "leaf.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "leaf.pem",
            "-days",
            "2",
            "-extfile",
            "leaf.ext",
        ],
    );
}

fn tls_stream(
    addr: std::net::SocketAddr,
    ca: &Path,
) -> rustls::StreamOwned<rustls::ClientConnection, TcpStream> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let conn =
        rustls::ClientConnection::new(Arc::new(config), ServerName::try_from("127.0.0.1").unwrap())
            .unwrap();
    let tcp = TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(common::WAIT)).unwrap();
    rustls::StreamOwned::new(conn, tcp)
}

#[test]
fn wss_and_https_work_with_tls_files() {
    let dir = tempfile::tempdir().unwrap();
    make_certs(dir.path());
    let tls = TlsFiles {
        cert: dir.path().join("leaf.pem"),
        key: dir.path().join("leaf.key"),
    };
    let server = common::start_with(10, |s| s.tls = Some(tls));
    let addr = server.local_addr();
    let ca = dir.path().join("ca.pem");

    let mut https = tls_stream(addr, &ca);
    https
        .write_all(b"GET /health/ HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .unwrap();
    let mut text = String::new();
    let _ = https.read_to_string(&mut text);
    assert!(
        text.starts_with("HTTP/1.1 200") && text.ends_with("OK\n"),
        "{text}"
    );

    let mut wss = tls_stream(addr, &ca);
    let (_, after) = upgrade(&mut wss, addr.port(), "app1").unwrap();
    let mut rbuf = BytesMut::from(&after[..]);
    let mut codec = Codec::new(Role::Client, cobra_wire::Limits::default(), None);
    let mut out = Vec::new();
    codec.encode_text(&json!({"action": "auth/handshake", "id": 1, "body": {"method": "role_secret", "data": {"role": "all"}}}).to_string(), &mut out);
    wss.write_all(&out).unwrap();
    let reply = loop {
        if let Some(Message::Text(t)) = codec.decode(&mut rbuf).unwrap() {
            break t;
        }
        let mut chunk = [0u8; 4096];
        let n = wss.read(&mut chunk).unwrap();
        assert!(n > 0);
        rbuf.extend_from_slice(&chunk[..n]);
    };
    let v: Value = serde_json::from_str(&reply).unwrap();
    assert_eq!(v["action"], "auth/handshake/ok");

    // A plain-TCP client on the TLS port gets nothing useful and does not hurt the server.
    let mut plain = TcpStream::connect(addr).unwrap();
    plain.set_read_timeout(Some(common::WAIT)).unwrap();
    plain.write_all(b"GET /health/ HTTP/1.1\r\n\r\n").unwrap();
    let mut junk = Vec::new();
    let _ = plain.read_to_end(&mut junk);
    assert!(!String::from_utf8_lossy(&junk).contains("200 OK"));
}
