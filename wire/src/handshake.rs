//! The HTTP/1.1 upgrade (RFC 6455 §4), both sides, sans I/O.
//!
//! Parsers take the bytes received so far and return `Ok(None)` until a whole
//! head has arrived; once it has, they return what they parsed and how many
//! bytes it used. Bytes after that belong to the WebSocket stream.

use base64::Engine;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
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

/// Every value of the headers named `name` (case-insensitive), in order.
fn all_values<'a>(headers: &'a [(String, String)], name: &'a str) -> impl Iterator<Item = &'a str> {
    headers
        .iter()
        .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// The elements of the comma-separated lists in every header named `name`
/// (RFC 9110 §5.3: repeated headers are one list; empty elements are ignored).
fn list_tokens<'a>(
    headers: &'a [(String, String)],
    name: &'a str,
) -> impl Iterator<Item = &'a str> {
    all_values(headers, name)
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

fn has_token(headers: &[(String, String)], name: &str, token: &str) -> bool {
    list_tokens(headers, name).any(|t| t.eq_ignore_ascii_case(token))
}

/// A header value with each obs-fold (CRLF then spaces or tabs, RFC 9112 §5.2)
/// replaced by one space, and without surrounding whitespace.
fn unfold(value: &str) -> String {
    if !value.contains(['\r', '\n']) {
        return value.trim().to_owned();
    }
    value
        .split(['\r', '\n'])
        .map(str::trim)
        .filter(|piece| !piece.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The headers, names as sent. A value that is not UTF-8 (obs-text, e.g. a
/// Latin-1 `User-Agent`, which RFC 9110 §5.5 says to treat as opaque) is kept
/// lossily rather than refusing the whole head: the headers the upgrade checks
/// are ASCII when valid, so a lossy one still fails its own check.
fn collect_headers(raw: &[httparse::Header<'_>]) -> Vec<(String, String)> {
    raw.iter()
        .map(|h| (h.name.to_owned(), unfold(&String::from_utf8_lossy(h.value))))
        .collect()
}

/// The non-empty values of the headers named `name`, joined with `, `.
fn joined(headers: &[(String, String)], name: &str) -> Option<String> {
    let values: Vec<&str> = all_values(headers, name)
        .filter(|v| !v.is_empty())
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
    // RFC 9112 §5.2: a user agent must accept obs-fold in a response (`unfold` joins the lines).
    let parsed = httparse::ParserConfig::default()
        .allow_obsolete_multiline_headers_in_responses(true)
        .parse_response(&mut resp, buf);
    let Some(consumed) = head_length(parsed, buf.len(), limits)? else {
        return Ok(None);
    };
    let code = resp.code.unwrap_or(0);
    let reason = resp.reason.unwrap_or("").to_owned();
    let headers = collect_headers(resp.headers);
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
    if !has_token(&headers, "Upgrade", "websocket") {
        return Err(HandshakeError::BadUpgrade("missing Upgrade: websocket"));
    }
    if !has_token(&headers, "Connection", "upgrade") {
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
    /// `Sec-WebSocket-Key`, when sent once and well-formed (16 bytes in base64,
    /// padding bits not checked: see [`valid_key`]).
    pub ws_key: Option<String>,
    /// The client asked for a WebSocket (`Upgrade: websocket`), valid or not.
    pub upgrade_requested: bool,
    /// A complete and valid version-13 upgrade: an HTTP/1.1 GET without a body,
    /// `Upgrade: websocket`, `Connection: upgrade`, one `Sec-WebSocket-Version: 13`
    /// and one valid key (as Python `websockets` checks it).
    /// Answer a requested but invalid upgrade with 400 (426 with
    /// `Sec-WebSocket-Version: 13` for a wrong version).
    pub is_websocket_upgrade: bool,
    /// Why a requested upgrade is not a valid one, for the body of the 400
    /// (`None` when it is valid or when no upgrade was requested).
    pub upgrade_refusal: Option<String>,
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

/// Decodes a `Sec-WebSocket-Key` as leniently as Python `websockets` (the
/// original broker) and most servers do: the bits past the 16th byte are not
/// checked, since the server only hashes the key's text. IXWebSocket 11 picks 22
/// random base64 characters and `==`, so its last character usually has non-zero
/// padding bits, which a strict decoder refuses. Padding stays required.
const KEY_DECODER: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_allow_trailing_bits(true)
        .with_decode_padding_mode(DecodePaddingMode::RequireCanonical),
);

/// A `Sec-WebSocket-Key` we accept: 16 bytes in base64, padded, any padding
/// bits (exactly 22 base64 characters then `==`).
pub fn valid_key(key: &str) -> bool {
    KEY_DECODER.decode(key).is_ok_and(|d| d.len() == 16)
}

/// Most characters of a refused header value quoted back in a refusal.
const QUOTED_MAX: usize = 64;

fn quoted(value: &str) -> String {
    let cut: String = value.chars().take(QUOTED_MAX).collect();
    if cut.len() < value.len() {
        format!("{cut:?}...")
    } else {
        format!("{cut:?}")
    }
}

/// Why a request that asks for a WebSocket is not a valid RFC 6455 upgrade,
/// checked in the order Python `websockets` checks it.
fn upgrade_problem(method: &str, http_11: bool, headers: &[(String, String)]) -> Option<String> {
    if method != "GET" {
        return Some(format!("the method must be GET, not {}", quoted(method)));
    }
    if !http_11 {
        return Some("the upgrade needs HTTP/1.1".to_owned());
    }
    if !has_token(headers, "Connection", "upgrade") {
        return Some("the Connection header must include the token upgrade".to_owned());
    }
    let upgrade: Vec<&str> = list_tokens(headers, "Upgrade").collect();
    if upgrade.len() != 1 {
        return Some(format!(
            "the Upgrade header must name websocket alone, not {}",
            quoted(&upgrade.join(", "))
        ));
    }
    // An upgrade has no body: bytes after the head are WebSocket frames, so a body would be
    // misread as frames (RFC 9112 §6.3: a GET with a body is suspect anyway).
    if all_values(headers, "Transfer-Encoding").next().is_some() {
        return Some("an upgrade has no body: Transfer-Encoding is not allowed".to_owned());
    }
    if all_values(headers, "Content-Length").any(|v| v != "0") {
        return Some("an upgrade has no body: Content-Length must be 0 if sent".to_owned());
    }
    match all_values(headers, "Sec-WebSocket-Key").collect::<Vec<_>>()[..] {
        [] => return Some("missing Sec-WebSocket-Key".to_owned()),
        [key] if valid_key(key) => {}
        [key] => {
            return Some(format!(
                "Sec-WebSocket-Key {} is not 16 bytes in base64 (22 characters then ==)",
                quoted(key)
            ));
        }
        _ => return Some("several Sec-WebSocket-Key headers".to_owned()),
    }
    match all_values(headers, "Sec-WebSocket-Version").collect::<Vec<_>>()[..] {
        [] => Some("missing Sec-WebSocket-Version".to_owned()),
        ["13"] => None,
        [version] => Some(format!(
            "Sec-WebSocket-Version {} is not supported: 13 is",
            quoted(version)
        )),
        _ => Some("several Sec-WebSocket-Version headers".to_owned()),
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
    let headers = collect_headers(req.headers);
    let upgrade_requested = has_token(&headers, "Upgrade", "websocket");
    let ws_version = find_header(&headers, "Sec-WebSocket-Version").map(str::to_owned);
    let ws_key = match all_values(&headers, "Sec-WebSocket-Key").collect::<Vec<_>>()[..] {
        [key] if valid_key(key) => Some(key.to_owned()),
        _ => None,
    };
    let upgrade_refusal = if upgrade_requested {
        upgrade_problem(&method, req.version == Some(1), &headers)
    } else {
        None
    };
    let is_websocket_upgrade = upgrade_requested && upgrade_refusal.is_none();
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
            upgrade_refusal,
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
