//! The `role_secret` authentication hash.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use md5::Md5;
use rand::RngCore;

type HmacMd5 = Hmac<Md5>;

fn mac(secret: &str, nonce: &str) -> HmacMd5 {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = <HmacMd5 as Mac>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(nonce.as_bytes());
    mac
}

/// `base64(HMAC-MD5(key = secret, message = nonce))`, what a client sends in
/// `auth/authenticate`.
pub fn role_secret_hash(secret: &str, nonce: &str) -> String {
    STANDARD.encode(mac(secret, nonce).finalize().into_bytes())
}

/// Checks a client's hash in constant time (relative to the expected value).
/// A hash that is not valid base64 or has the wrong length is simply wrong.
pub fn verify(secret: &str, nonce: &str, hash: &str) -> bool {
    let Ok(given) = STANDARD.decode(hash.as_bytes()) else {
        return false;
    };
    mac(secret, nonce).verify_slice(&given).is_ok()
}

/// A fresh nonce: 16 bytes from the thread-local CSPRNG, base64-encoded.
pub fn new_nonce() -> String {
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    STANDARD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_vector() {
        assert_eq!(
            role_secret_hash("secret-key", "nonce"),
            "G12A8Dt0RdjHNx8P0lci9w=="
        );
    }

    #[test]
    fn verify_accepts_only_the_right_hash() {
        assert!(verify("secret-key", "nonce", "G12A8Dt0RdjHNx8P0lci9w=="));
        assert!(!verify("secret-key", "nonce2", "G12A8Dt0RdjHNx8P0lci9w=="));
        assert!(!verify("other", "nonce", "G12A8Dt0RdjHNx8P0lci9w=="));
        assert!(!verify("secret-key", "nonce", "G12A8Dt0RdjHNx8P0lci9w"));
        assert!(!verify("secret-key", "nonce", ""));
        assert!(!verify("secret-key", "nonce", "not base64 at all!"));
        assert!(!verify("secret-key", "nonce", "AAAA"));
    }

    #[test]
    fn nonces_are_fresh() {
        let a = new_nonce();
        let b = new_nonce();
        assert_ne!(a, b);
        assert_eq!(STANDARD.decode(a).map(|v| v.len()), Ok(16));
    }
}
