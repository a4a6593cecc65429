//! The plain HTTP side of the port and the upgrade decision, as a pure function of the
//! parsed request.

use cobra_wire::handshake::{Request, accept_response, http_response};
use cobra_wire::pmd::{self, Negotiated, ServerPmdConfig};

use crate::broker::Broker;
use crate::config::options::DeflateMode;

/// The version reported by `/version/`, the handshake and `X-Cobra-Version`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// What to do with a request.
#[derive(Debug)]
pub enum Route {
    /// Answer this HTTP response and close.
    Reply(Vec<u8>),
    /// Answer the 101 response, then speak WebSocket.
    Upgrade {
        /// The 101 response.
        response: Vec<u8>,
        /// The app of the connection.
        appkey: String,
        /// permessage-deflate, if agreed.
        deflate: Option<Negotiated>,
    },
}

fn reply(status: u16, reason: &str, content_type: &str, body: &[u8]) -> Route {
    Route::Reply(http_response(
        status,
        reason,
        Some(content_type),
        body,
        &[("Connection", "close"), ("X-Cobra-Version", VERSION)],
    ))
}

fn text(status: u16, reason: &str, body: &str) -> Route {
    reply(status, reason, "text/plain; charset=utf-8", body.as_bytes())
}

/// The server's state a request is routed by.
#[derive(Debug, Clone, Copy, Default)]
pub struct ServerState {
    /// The connection limit is reached.
    pub at_capacity: bool,
    /// A drain has started: not ready, upgrades refused.
    pub draining: bool,
    /// Serve the web dashboard's files (see [`super::dashboard`]).
    pub dashboard: bool,
}

/// Why the server is not ready (empty: ready). Ready means: not draining, under the
/// connection limit, and every backend node reachable.
pub fn not_ready_reasons(broker: &Broker, state: ServerState) -> Vec<String> {
    let mut reasons = Vec::new();
    if state.draining {
        reasons.push("draining".to_owned());
    }
    if state.at_capacity {
        reasons.push("at the connection limit".to_owned());
    }
    for node in broker.backend.health() {
        if !node.connected {
            reasons.push(format!("backend node {} unreachable", node.node));
        }
    }
    reasons
}

/// Decides what `req` gets.
pub fn route(req: &Request, broker: &Broker, state: ServerState) -> Route {
    let path = req.path.trim_end_matches('/');
    if !req.upgrade_requested {
        if state.dashboard
            && req.query_param("appkey").is_none()
            && let Some(reply) = super::dashboard::serve(req, path)
        {
            return Route::Reply(reply);
        }
        match path {
            // The Python health check compares the body with "OK\n": kept as it is.
            "/health" => return text(200, "OK", "OK\n"),
            // Liveness: the process serves requests (a draining server is alive).
            "/health/live" => return text(200, "OK", "live\n"),
            // Readiness: send it new clients.
            "/health/ready" => {
                let reasons = not_ready_reasons(broker, state);
                return if reasons.is_empty() {
                    text(200, "OK", "ready\n")
                } else {
                    text(
                        503,
                        "Service Unavailable",
                        &format!("not ready: {}\n", reasons.join("; ")),
                    )
                };
            }
            "/version" => return text(200, "OK", VERSION),
            "/metrics" => {
                let mut body = broker.stats.prometheus(broker);
                let c = super::compress::counters();
                for (name, value) in [
                    ("cobra_deflate_shared_compressions_total", c.compressed),
                    ("cobra_deflate_spliced_deliveries_total", c.spliced),
                    (
                        "cobra_deflate_incompressible_deliveries_total",
                        c.incompressible,
                    ),
                ] {
                    body.push_str(&format!("# TYPE {name} counter\n{name} {value}\n"));
                }
                return reply(
                    200,
                    "OK",
                    "text/plain; version=0.0.4; charset=utf-8",
                    body.as_bytes(),
                );
            }
            _ => {}
        }
    }
    let appkey = req.query_param("appkey");
    if !req.upgrade_requested && appkey.is_none() && path != "/v2" {
        return text(
            404,
            "Not Found",
            "not found: try /health/, /health/live, /health/ready, /version/, /metrics or a WebSocket upgrade on /v2?appkey=APPKEY\n",
        );
    }
    let Some(appkey) = appkey.filter(|a| broker.knows_app(a)) else {
        return text(403, "Forbidden", "missing or unknown appkey\n");
    };
    if !req.is_websocket_upgrade {
        if req.upgrade_requested && req.ws_version.as_deref().is_some_and(|v| v != "13") {
            return Route::Reply(http_response(
                426,
                "Upgrade Required",
                Some("text/plain; charset=utf-8"),
                b"WebSocket version 13 required\n",
                &[("Connection", "close"), ("Sec-WebSocket-Version", "13")],
            ));
        }
        if req.upgrade_requested {
            let why = req.upgrade_refusal.as_deref().unwrap_or("invalid request");
            return text(
                400,
                "Bad Request",
                &format!("invalid WebSocket upgrade: {why}\n"),
            );
        }
        return Route::Reply(http_response(
            426,
            "Upgrade Required",
            Some("text/plain; charset=utf-8"),
            b"this endpoint speaks WebSocket: upgrade with Sec-WebSocket-Protocol: json\n",
            &[
                ("Connection", "close"),
                ("Upgrade", "websocket"),
                ("Sec-WebSocket-Version", "13"),
            ],
        ));
    }
    if state.draining {
        return text(
            503,
            "Service Unavailable",
            "draining: connect to another server\n",
        );
    }
    if state.at_capacity {
        return text(503, "Service Unavailable", "too many connections\n");
    }
    let Some(key) = req.ws_key.as_deref() else {
        return text(400, "Bad Request", "missing Sec-WebSocket-Key\n");
    };
    let subprotocol = req
        .subprotocols
        .iter()
        .any(|p| p == "json")
        .then_some("json");
    let offers: Vec<&str> = req.extensions.iter().map(String::as_str).collect();
    let negotiated = pmd::server_negotiate(&pmd_config(broker.settings.deflate_mode), &offers);
    let node = sanitize_header(&broker.settings.node);
    let response = accept_response(
        key,
        subprotocol,
        negotiated.as_ref().map(|(_, answer)| answer.as_str()),
        &[("X-Cobra-Node", &node), ("X-Cobra-Version", VERSION)],
    );
    Route::Upgrade {
        response,
        appkey,
        deflate: negotiated.map(|(n, _)| n),
    }
}

/// What the server accepts of permessage-deflate.
///
/// - [`DeflateMode::Shared`] (the default) always answers `server_no_context_takeover`
///   (RFC 7692 §7.1.1.1 lets a server add it unasked): each message it sends is compressed on
///   its own, so a connection keeps no compressor, one compressor per worker thread serves
///   every connection, and a published message is compressed once for all its subscribers
///   (see [`super::compress`]).
/// - [`DeflateMode::Stream`] keeps each connection's context with a 4 KiB window
///   ([`STREAM_WINDOW_BITS`]), within the small windowed compressor's reach.
pub fn pmd_config(mode: DeflateMode) -> ServerPmdConfig {
    match mode {
        DeflateMode::Shared => ServerPmdConfig {
            server_no_context_takeover: true,
            level: super::compress::LEVEL,
            ..ServerPmdConfig::default()
        },
        DeflateMode::Stream => ServerPmdConfig {
            server_no_context_takeover: false,
            server_max_window_bits: STREAM_WINDOW_BITS,
            level: super::compress::LEVEL,
            ..ServerPmdConfig::default()
        },
    }
}

/// The window of a connection's own compressor in [`DeflateMode::Stream`]: 4 KiB holds a
/// dozen 300-byte events to refer back to, and keeps the compressor at ~16 KiB (a 32 KiB
/// zlib window and its tables cost 250-380 KiB per connection).
pub const STREAM_WINDOW_BITS: u8 = 12;

/// A header value built from local data must not break the response.
fn sanitize_header(v: &str) -> String {
    v.chars().filter(|c| !c.is_control()).collect()
}
