//! wss:// against a local TLS server whose CA is passed through the config.

mod support;

use std::sync::Arc;
use std::time::Duration;

use cobra::{ErrorKind, Event, TlsOptions};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::json;
use support::*;

const T: Duration = Duration::from_secs(10);

struct Pki {
    ca_pem: String,
    leaf_der: CertificateDer<'static>,
    ca_der: CertificateDer<'static>,
    server: Arc<rustls::ServerConfig>,
}

fn pki() -> Pki {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["localhost".to_string()])
        .unwrap()
        .signed_by(&leaf_key, &ca)
        .unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let server = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![leaf.der().clone()],
            PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into()),
        )
        .unwrap();
    Pki {
        ca_pem: ca.pem(),
        leaf_der: leaf.der().clone(),
        ca_der: ca.der().clone(),
        server: Arc::new(server),
    }
}

fn tls_peer(pki: &Pki) -> Peer {
    let cfg = pki.server.clone();
    let wrap: Wrap = Arc::new(move |tcp| {
        let conn = rustls::ServerConnection::new(cfg.clone()).unwrap();
        Box::new(rustls::StreamOwned::new(conn, tcp))
    });
    Peer::with(PeerOptions {
        deflate: true,
        wrap: Some(wrap),
    })
}

#[test]
fn wss_with_a_test_ca_from_the_config() {
    let pki = pki();
    let peer = tls_peer(&pki);
    // `localhost` may resolve to ::1 first, where nothing listens: the engine falls back.
    let url = format!("wss://localhost:{}", peer.addr.port());
    let (client, rec) = start_client(config(&url).extra_ca_pem(pki.ca_pem.clone()));
    rec.wait_for(T, "authenticated", |e| matches!(e, Event::Authenticated));
    publish_acked(&client, &rec, "c", &json!({"over": "tls"}), "published");
    client.write("k", &json!(1), T).unwrap();
    assert_eq!(client.read("k", T).unwrap(), Some(json!(1)));
}

#[test]
fn spki_pins_accept_the_right_key_and_refuse_others() {
    let pki = pki();
    let peer = tls_peer(&pki);
    let url = format!("wss://localhost:{}", peer.addr.port());
    let good = cobra::spki_pin_of(&pki.leaf_der).unwrap();
    let bad = cobra::spki_pin_of(&pki.ca_der).unwrap();
    let tls = |pin: String| TlsOptions {
        extra_ca_pem: Some(pki.ca_pem.clone()),
        spki_pins: vec![pin],
        ..Default::default()
    };

    let (_ok, rec) = start_client(config(&url).tls(tls(good)));
    rec.wait_for(T, "authenticated with the right pin", |e| {
        matches!(e, Event::Authenticated)
    });

    let (_ko, rec) = start_client(config(&url).tls(tls(bad)));
    rec.expect_first_error(T, "pin failure", ErrorKind::Tls, "pin");
}

#[test]
fn an_unknown_ca_is_refused() {
    let pki = pki();
    let peer = tls_peer(&pki);
    let (_c, rec) = start_client(config(&format!("wss://localhost:{}", peer.addr.port())));
    rec.expect_first_error(T, "tls failure", ErrorKind::Tls, "");
    assert_eq!(rec.count(|e| matches!(e, Event::Open)), 0);
}

#[test]
fn a_stalled_tls_handshake_times_out_and_disconnect_interrupts_it() {
    // Accepts TCP connections and never answers the ClientHello.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let done2 = done.clone();
    let held = std::thread::spawn(move || {
        let mut conns = Vec::new();
        for c in listener.incoming() {
            if done2.load(std::sync::atomic::Ordering::SeqCst) {
                break;
            }
            conns.extend(c.ok());
        }
    });
    let config = config(&format!("wss://localhost:{}", addr.port())).timeouts(
        Duration::from_secs(5),
        Duration::from_millis(150),
        T,
    );
    let (client, rec) = start_client(config);
    assert_timeout_then_disconnect_interrupts(&client, &rec, T, "handshake");
    // Wake the accept loop so that it sees `done`.
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    drop(std::net::TcpStream::connect(addr));
    held.join().unwrap();
}
