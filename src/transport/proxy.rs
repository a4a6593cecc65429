//! HTTP CONNECT tunnelling (RFC 9110 §9.3.6), sans I/O.

use base64::Engine as _;

use crate::config::ProxyUrl;

/// Largest proxy response head we accept.
const MAX_RESPONSE: usize = 16 << 10;

/// The CONNECT request for `host:port` through `proxy`.
pub(crate) fn connect_request(proxy: &ProxyUrl, host: &str, port: u16) -> Vec<u8> {
    let authority = if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    let mut req = format!("CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n");
    if let Some((user, pass)) = &proxy.credentials {
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
        req.push_str(&format!("Proxy-Authorization: Basic {token}\r\n"));
    }
    req.push_str("\r\n");
    req.into_bytes()
}

/// Parse the proxy's answer. `Ok(None)`: incomplete; `Ok(Some(n))`: tunnel open, the head used
/// `n` bytes (anything after belongs to the tunnel).
pub(crate) fn parse_response(buf: &[u8]) -> Result<Option<usize>, String> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut resp = httparse::Response::new(&mut headers);
    match resp.parse(buf) {
        Ok(httparse::Status::Complete(n)) => match resp.code {
            Some(200..=299) => Ok(Some(n)),
            Some(code) => Err(format!(
                "proxy answered HTTP {code} {}",
                resp.reason.unwrap_or("")
            )),
            None => Err("proxy answered without a status".into()),
        },
        Ok(httparse::Status::Partial) if buf.len() > MAX_RESPONSE => {
            Err("proxy response too large".into())
        }
        Ok(httparse::Status::Partial) => Ok(None),
        Err(e) => Err(format!("malformed proxy response: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_and_response() {
        let p = ProxyUrl::parse("http://u:p@proxy:3128").unwrap();
        let req = String::from_utf8(connect_request(&p, "::1", 80)).unwrap();
        assert!(req.starts_with("CONNECT [::1]:80 HTTP/1.1\r\n"));
        assert!(req.contains("Proxy-Authorization: Basic dTpw\r\n"));
        assert_eq!(
            parse_response(b"HTTP/1.1 200 Connection established\r\n\r\nxx"),
            Ok(Some(39))
        );
        assert_eq!(parse_response(b"HTTP/1.1 200 OK\r\n"), Ok(None));
        assert!(
            parse_response(b"HTTP/1.1 407 Proxy Authentication Required\r\n\r\n")
                .unwrap_err()
                .contains("407")
        );
    }
}
