//! The HTTP/1.1 upgrade (RFC 6455 §4), both sides, sans I/O.
//!
//! Parsers take the bytes received so far and return `Ok(None)` until a whole
//! head has arrived; once it has, they return what they parsed and how many
//! bytes it used. Bytes after that belong to the WebSocket stream.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use tungstenite::handshake::derive_accept_key;

use crate::limits::Limits;

/// Most headers accepted in one request or response.
pub const MAX_HEADERS: usize = 64;

/// Why an upgrade failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HandshakeError {
    /// The head is larger than [`Limits::max_handshake_bytes`].
    #[error("HTTP head larger than {0} bytes")]
    TooLarge(usize),
    /// Not parseable as HTTP/1.x.
    #[error("malformed HTTP: {0}")]
    Malformed(String),
    /// The server answered something other than 101.
    #[error("server answered HTTP {code} {reason}")]
    Status {
        /// HTTP status code (403: unknown appkey).
        code: u16,
        /// Reason phrase.
        reason: String,
        /// Body, as far as received (bounded by the handshake limit).
        body: Vec<u8>,
    },
    /// A 101 without `Upgrade: websocket`, `Connection: upgrade` or a valid
    /// `Sec-WebSocket-Accept`.
    #[error("invalid upgrade response: {0}")]
    BadUpgrade(&'static str),
    /// A header name or value that would break the request (CR, LF, ...).
    #[error("invalid header {0:?}")]
    InvalidHeader(String),
}

/// What the client puts in its upgrade request.
#[derive(Debug, Clone, Default)]
pub struct ClientRequestParams<'a> {
    /// Host name or IP (IPv6 without brackets is fine).
    pub host: &'a str,
    /// TCP port; omitted from `Host` when it is 80 or 443.
    pub port: u16,
    /// Path and query, e.g. `/v2?appkey=XYZ`. Empty means `/`.
    pub path_and_query: &'a str,
    /// `Sec-WebSocket-Protocol` to offer (cobra uses `json`).
    pub subprotocol: Option<&'a str>,
    /// `Sec-WebSocket-Extensions` to offer (see [`crate::pmd::client_offer`]).
    pub extensions: Option<&'a str>,
    /// `User-Agent`, if any.
    pub user_agent: Option<&'a str>,
    /// More headers.
    pub extra_headers: &'a [(String, String)],
}

fn valid_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?={}".contains(&b))
}

fn valid_value(s: &str) -> bool {
    s.bytes().all(|b| b == b'\t' || (b >= 0x20 && b != 0x7f))
}

fn check_header(name: &str, value: &str) -> Result<(), HandshakeError> {
    if valid_token(name) && valid_value(value) {
        Ok(())
    } else {
        Err(HandshakeError::InvalidHeader(name.to_owned()))
    }
}

fn push_header(out: &mut Vec<u8>, name: &str, value: &str) {
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(value.as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// Builds the client's upgrade request. Returns the bytes to send and the
/// `Sec-WebSocket-Key` to give to [`parse_response`].
pub fn client_request(p: &ClientRequestParams<'_>) -> Result<(Vec<u8>, String), HandshakeError> {
    let path = if p.path_and_query.is_empty() {
        "/"
    } else {
        p.path_and_query
    };
    if !path.starts_with('/') || !path.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(HandshakeError::InvalidHeader(format!("path {path:?}")));
    }
    let host = if p.host.contains(':') && !p.host.starts_with('[') {
        format!("[{}]", p.host)
    } else {
        p.host.to_owned()
    };
    let host = if p.port == 80 || p.port == 443 {
        host
    } else {
        format!("{host}:{}", p.port)
    };
    check_header("Host", &host)?;
    if host.contains(|c: char| c.is_ascii_whitespace()) || p.host.is_empty() {
        return Err(HandshakeError::InvalidHeader(format!("host {:?}", p.host)));
    }
    let key = tungstenite::handshake::client::generate_key();
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(b"GET ");
    out.extend_from_slice(path.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    push_header(&mut out, "Host", &host);
    push_header(&mut out, "Upgrade", "websocket");
    push_header(&mut out, "Connection", "Upgrade");
    push_header(&mut out, "Sec-WebSocket-Key", &key);
    push_header(&mut out, "Sec-WebSocket-Version", "13");
    if let Some(proto) = p.subprotocol {
        check_header("Sec-WebSocket-Protocol", proto)?;
        push_header(&mut out, "Sec-WebSocket-Protocol", proto);
    }
    if let Some(ext) = p.extensions {
        check_header("Sec-WebSocket-Extensions", ext)?;
        push_header(&mut out, "Sec-WebSocket-Extensions", ext);
    }
    if let Some(ua) = p.user_agent {
        check_header("User-Agent", ua)?;
        push_header(&mut out, "User-Agent", ua);
    }
    for (name, value) in p.extra_headers {
        check_header(name, value)?;
        push_header(&mut out, name, value);
    }
    out.extend_from_slice(b"\r\n");
    Ok((out, key))
}

/// A parsed 101 response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// Always 101 here.
    pub status: u16,
    /// Every header, in order (names as sent).
    pub headers: Vec<(String, String)>,
    /// The `Sec-WebSocket-Protocol` the server picked.
    pub subprotocol: Option<String>,
    /// The `Sec-WebSocket-Extensions` values, joined with `, ` (give to
    /// [`crate::pmd::client_accept`]).
    pub extensions: Option<String>,
}

impl Response {
    /// The first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        find_header(&self.headers, name)
    }
}

fn find_header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

fn has_token(value: &str, token: &str) -> bool {
    value
        .split(',')
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

fn collect_headers(raw: &[httparse::Header<'_>]) -> Result<Vec<(String, String)>, HandshakeError> {
    raw.iter()
        .map(|h| match std::str::from_utf8(h.value) {
            Ok(v) => Ok((h.name.to_owned(), v.trim().to_owned())),
            Err(_) => Err(HandshakeError::Malformed(format!(
                "header {} is not UTF-8",
                h.name
            ))),
        })
        .collect()
}

fn joined(headers: &[(String, String)], name: &str) -> Option<String> {
    let values: Vec<&str> = headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
        .collect();
    if values.is_empty() {
        None
    } else {
        Some(values.join(", "))
    }
}

/// Parses the server's answer to our upgrade. `Ok(None)`: need more bytes.
/// On success, also returns how many bytes of `buf` the response used.
/// A non-101 answer is [`HandshakeError::Status`] (with its body when a
/// `Content-Length` says how long it is; otherwise with what has arrived).
pub fn parse_response(
    buf: &[u8],
    key: &str,
    limits: &Limits,
) -> Result<Option<(Response, usize)>, HandshakeError> {
    let mut raw = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut raw);
    let Some(consumed) = head_length(resp.parse(buf), buf.len(), limits)? else {
        return Ok(None);
    };
    let code = resp.code.unwrap_or(0);
    let reason = resp.reason.unwrap_or("").to_owned();
    let headers = collect_headers(resp.headers)?;
    if code != 101 {
        let rest = &buf[consumed..];
        let body = match find_header(&headers, "Content-Length").map(|v| v.parse::<usize>()) {
            Some(Ok(len)) if len <= limits.max_handshake_bytes => {
                if rest.len() < len {
                    return Ok(None);
                }
                rest[..len].to_vec()
            }
            _ => rest[..rest.len().min(limits.max_handshake_bytes)].to_vec(),
        };
        return Err(HandshakeError::Status { code, reason, body });
    }
    if !find_header(&headers, "Upgrade").is_some_and(|v| v.eq_ignore_ascii_case("websocket")) {
        return Err(HandshakeError::BadUpgrade("missing Upgrade: websocket"));
    }
    if !find_header(&headers, "Connection").is_some_and(|v| has_token(v, "upgrade")) {
        return Err(HandshakeError::BadUpgrade("missing Connection: upgrade"));
    }
    if find_header(&headers, "Sec-WebSocket-Accept")
        != Some(derive_accept_key(key.as_bytes()).as_str())
    {
        return Err(HandshakeError::BadUpgrade("wrong Sec-WebSocket-Accept"));
    }
    let subprotocol = find_header(&headers, "Sec-WebSocket-Protocol").map(str::to_owned);
    let extensions = joined(&headers, "Sec-WebSocket-Extensions");
    Ok(Some((
        Response {
            status: code,
            headers,
            subprotocol,
            extensions,
        },
        consumed,
    )))
}

/// A parsed HTTP request (an upgrade or a plain GET).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// `GET`, ...
    pub method: String,
    /// The path, without the query.
    pub path: String,
    /// The raw query (after `?`), if any.
    pub query: Option<String>,
    /// Every header, in order.
    pub headers: Vec<(String, String)>,
    /// `Sec-WebSocket-Key`, when present and well-formed (16 bytes in base64).
    pub ws_key: Option<String>,
    /// The client asked for a WebSocket (`Upgrade: websocket`), valid or not.
    pub upgrade_requested: bool,
    /// A complete and valid version-13 upgrade: GET, `Upgrade: websocket`,
    /// `Connection: upgrade`, `Sec-WebSocket-Version: 13` and a valid key.
    /// Answer a requested but invalid upgrade with 400 (426 with
    /// `Sec-WebSocket-Version: 13` for a wrong version).
    pub is_websocket_upgrade: bool,
    /// `Sec-WebSocket-Version`, if sent.
    pub ws_version: Option<String>,
    /// Offered subprotocols, in order.
    pub subprotocols: Vec<String>,
    /// Every `Sec-WebSocket-Extensions` value (give to [`crate::pmd::server_negotiate`]).
    pub extensions: Vec<String>,
    /// `User-Agent`, if sent.
    pub user_agent: Option<String>,
}

impl Request {
    /// The first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        find_header(&self.headers, name)
    }

    /// The first query parameter `name`, percent-decoded (`+` is a space).
    /// `None` if absent or not valid UTF-8 once decoded.
    pub fn query_param(&self, name: &str) -> Option<String> {
        query_param(self.query.as_deref()?, name)
    }
}

/// The first parameter `name` of a raw query string, percent-decoded.
pub fn query_param(query: &str, name: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        if crate::percent::decode_form(k)? == name {
            crate::percent::decode_form(v)
        } else {
            None
        }
    })
}

/// The length of a parsed HTTP head, `None` while incomplete; a head (complete or not) over
/// [`Limits::max_handshake_bytes`] is refused.
fn head_length(
    parsed: httparse::Result<usize>,
    buffered: usize,
    limits: &Limits,
) -> Result<Option<usize>, HandshakeError> {
    let too_large = |n: usize| n > limits.max_handshake_bytes;
    match parsed {
        Ok(httparse::Status::Complete(n)) if too_large(n) => {
            Err(HandshakeError::TooLarge(limits.max_handshake_bytes))
        }
        Ok(httparse::Status::Complete(n)) => Ok(Some(n)),
        Ok(httparse::Status::Partial) if too_large(buffered) => {
            Err(HandshakeError::TooLarge(limits.max_handshake_bytes))
        }
        Ok(httparse::Status::Partial) => Ok(None),
        Err(e) => Err(HandshakeError::Malformed(e.to_string())),
    }
}

/// Parses a client's HTTP request. `Ok(None)`: need more bytes.
pub fn parse_request(
    buf: &[u8],
    limits: &Limits,
) -> Result<Option<(Request, usize)>, HandshakeError> {
    let mut raw = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut raw);
    let Some(consumed) = head_length(req.parse(buf), buf.len(), limits)? else {
        return Ok(None);
    };
    let method = req.method.unwrap_or("").to_owned();
    let target = req.path.unwrap_or("/");
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p.to_owned(), Some(q.to_owned())),
        None => (target.to_owned(), None),
    };
    let headers = collect_headers(req.headers)?;
    let upgrade_requested =
        find_header(&headers, "Upgrade").is_some_and(|v| has_token(v, "websocket"));
    let connection_upgrade =
        find_header(&headers, "Connection").is_some_and(|v| has_token(v, "upgrade"));
    let ws_version = find_header(&headers, "Sec-WebSocket-Version").map(str::to_owned);
    let ws_key = find_header(&headers, "Sec-WebSocket-Key")
        .filter(|k| STANDARD.decode(k).is_ok_and(|d| d.len() == 16))
        .map(str::to_owned);
    let is_websocket_upgrade = method == "GET"
        && upgrade_requested
        && connection_upgrade
        && ws_version.as_deref() == Some("13")
        && ws_key.is_some();
    let subprotocols = headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("Sec-WebSocket-Protocol"))
        .flat_map(|(_, v)| v.split(','))
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect();
    let extensions = headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("Sec-WebSocket-Extensions"))
        .map(|(_, v)| v.clone())
        .collect();
    let user_agent = find_header(&headers, "User-Agent").map(str::to_owned);
    Ok(Some((
        Request {
            method,
            path,
            query,
            headers,
            ws_key,
            upgrade_requested,
            is_websocket_upgrade,
            ws_version,
            subprotocols,
            extensions,
            user_agent,
        },
        consumed,
    )))
}

/// The server's `101 Switching Protocols` answer to `key`. Header values
/// must not contain CR or LF (they come from our own configuration).
pub fn accept_response(
    key: &str,
    subprotocol: Option<&str>,
    extensions: Option<&str>,
    extra_headers: &[(&str, &str)],
) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(b"HTTP/1.1 101 Switching Protocols\r\n");
    push_header(&mut out, "Upgrade", "websocket");
    push_header(&mut out, "Connection", "Upgrade");
    push_header(
        &mut out,
        "Sec-WebSocket-Accept",
        &derive_accept_key(key.as_bytes()),
    );
    if let Some(p) = subprotocol {
        push_header(&mut out, "Sec-WebSocket-Protocol", p);
    }
    if let Some(e) = extensions {
        push_header(&mut out, "Sec-WebSocket-Extensions", e);
    }
    for (n, v) in extra_headers {
        push_header(&mut out, n, v);
    }
    out.extend_from_slice(b"\r\n");
    out
}

/// A complete plain HTTP/1.1 response with `Content-Length` (and
/// `Content-Type` when given). Add `Connection: close` through
/// `extra_headers` if the connection will be closed.
pub fn http_response(
    status: u16,
    reason: &str,
    content_type: Option<&str>,
    body: &[u8],
    extra_headers: &[(&str, &str)],
) -> Vec<u8> {
    let mut out = Vec::with_capacity(128 + body.len());
    out.extend_from_slice(format!("HTTP/1.1 {status} {reason}\r\n").as_bytes());
    if let Some(ct) = content_type {
        push_header(&mut out, "Content-Type", ct);
    }
    push_header(&mut out, "Content-Length", &body.len().to_string());
    for (n, v) in extra_headers {
        push_header(&mut out, n, v);
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
    out
}
