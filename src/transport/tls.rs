//! rustls client configuration: roots (webpki, OS, extra PEM), SPKI pins, ring provider.

use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

use crate::config::{TlsOptions, decode_pin, invalid};
use crate::error::Error;

/// Build the shared client config once per [`Client`](crate::Client).
pub(crate) fn client_config(opts: &TlsOptions) -> Result<Arc<ClientConfig>, Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = RootCertStore::empty();
    if opts.webpki_roots {
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    }
    if opts.native_roots {
        add_native_roots(&mut roots)?;
    }
    if let Some(pem) = &opts.extra_ca_pem {
        let mut added = 0;
        for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
            let cert = cert.map_err(|e| invalid("tls.extra_ca_pem", format!("bad PEM: {e}")))?;
            roots
                .add(cert)
                .map_err(|e| invalid("tls.extra_ca_pem", format!("bad CA certificate: {e}")))?;
            added += 1;
        }
        if added == 0 {
            return Err(invalid("tls.extra_ca_pem", "no CERTIFICATE block found"));
        }
    }
    if roots.is_empty() {
        return Err(invalid(
            "tls",
            "no trusted roots: enable webpki_roots or native_roots, or give extra_ca_pem",
        ));
    }
    let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|e| invalid("tls", format!("building the verifier: {e}")))?;
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| invalid("tls", e.to_string()))?;
    let mut config = if opts.spki_pins.is_empty() {
        builder.with_webpki_verifier(webpki).with_no_client_auth()
    } else {
        let pins = opts
            .spki_pins
            .iter()
            .map(|p| decode_pin(p))
            .collect::<Result<Vec<_>, _>>()?;
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(PinnedVerifier {
                inner: webpki,
                pins,
            }))
            .with_no_client_auth()
    };
    config.alpn_protocols.clear();
    Ok(Arc::new(config))
}

#[cfg(feature = "native-roots")]
fn add_native_roots(roots: &mut RootCertStore) -> Result<(), Error> {
    let found = rustls_native_certs::load_native_certs();
    for e in &found.errors {
        log::warn!("OS trust store: {e}");
    }
    let (added, _ignored) = roots.add_parsable_certificates(found.certs);
    if added == 0 {
        log::warn!("OS trust store: no usable certificate found");
    }
    Ok(())
}

#[cfg(not(feature = "native-roots"))]
fn add_native_roots(_roots: &mut RootCertStore) -> Result<(), Error> {
    Err(invalid(
        "tls.native_roots",
        "this build lacks the `native-roots` feature",
    ))
}

/// The server name for SNI and certificate validation.
pub(crate) fn server_name(host: &str) -> Result<ServerName<'static>, Error> {
    ServerName::try_from(host.to_string())
        .map_err(|e| invalid("endpoint", format!("bad TLS server name {host:?}: {e}")))
}

/// Normal webpki validation, then the end-entity key must match a pin.
#[derive(Debug)]
struct PinnedVerifier {
    inner: Arc<WebPkiServerVerifier>,
    pins: Vec<[u8; 32]>,
}

impl ServerCertVerifier for PinnedVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let verified = self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        )?;
        let cert = webpki::EndEntityCert::try_from(end_entity)
            .map_err(|e| rustls::Error::General(format!("parsing the server certificate: {e}")))?;
        let spki = cert.subject_public_key_info();
        let digest = ring::digest::digest(&ring::digest::SHA256, spki.as_ref());
        if self.pins.iter().any(|p| p[..] == *digest.as_ref()) {
            Ok(verified)
        } else {
            Err(rustls::Error::General(
                "server key matches no SPKI pin".into(),
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// Base64 SHA-256 of a certificate's SubjectPublicKeyInfo: the pin format of
/// [`TlsOptions::spki_pins`]. Handy to compute a pin from a PEM/DER certificate.
pub fn spki_pin_of(cert_der: &[u8]) -> Result<String, Error> {
    use base64::Engine as _;
    let der = CertificateDer::from(cert_der);
    let cert = webpki::EndEntityCert::try_from(&der)
        .map_err(|e| Error::InvalidArgument(format!("not a DER certificate: {e}")))?;
    let digest = ring::digest::digest(
        &ring::digest::SHA256,
        cert.subject_public_key_info().as_ref(),
    );
    Ok(base64::engine::general_purpose::STANDARD.encode(digest.as_ref()))
}
