//! The web dashboard (`server/dashboard/`): static files compiled into the binary with
//! `include_bytes!`, so `cargo build` alone ships them (no CDN, no build step, works offline).
//!
//! The page holds no server-side state and gets no privilege from being served here: it logs
//! in over the WebSocket with appkey, role and secret like any client. Every answer carries a
//! strict Content-Security-Policy: scripts and styles only from these files (nothing inline),
//! connections only to this origin (`ws:`/`wss:` of the same host).

use cobra_wire::handshake::{Request, http_response};

/// One embedded file: URL path, content type, bytes.
struct Asset {
    path: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

macro_rules! asset {
    ($path:literal, $file:literal, $ct:expr) => {
        Asset {
            path: $path,
            content_type: $ct,
            body: include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/dashboard/", $file)),
        }
    };
}

const JS: &str = "text/javascript; charset=utf-8";

/// Every file of the dashboard. `/` is the page.
const ASSETS: &[Asset] = &[
    asset!("", "index.html", "text/html; charset=utf-8"),
    asset!(
        "/dashboard/style.css",
        "style.css",
        "text/css; charset=utf-8"
    ),
    asset!("/dashboard/md5.js", "md5.js", JS),
    asset!("/dashboard/client.js", "client.js", JS),
    asset!("/dashboard/charts.js", "charts.js", JS),
    asset!("/dashboard/app.js", "app.js", JS),
];

/// Total bytes of the dashboard's files (the page weight, checked by a test against its budget).
pub fn page_weight() -> usize {
    ASSETS.iter().map(|a| a.body.len()).sum()
}

/// The answer to `GET path` (`path` without its trailing `/`), if it is a dashboard file.
pub fn serve(req: &Request, path: &str) -> Option<Vec<u8>> {
    let asset = ASSETS.iter().find(|a| a.path == path)?;
    if req.method != "GET" && req.method != "HEAD" {
        return Some(http_response(
            405,
            "Method Not Allowed",
            Some("text/plain; charset=utf-8"),
            b"GET only\n",
            &[("Connection", "close"), ("Allow", "GET, HEAD")],
        ));
    }
    let csp = csp(req.header("host"));
    let mut response = http_response(
        200,
        "OK",
        Some(asset.content_type),
        asset.body,
        &[
            ("Connection", "close"),
            ("Content-Security-Policy", &csp),
            ("X-Content-Type-Options", "nosniff"),
            ("Referrer-Policy", "no-referrer"),
            ("X-Frame-Options", "DENY"),
            ("Cache-Control", "no-cache"),
            ("X-Cobra-Version", super::http::VERSION),
        ],
    );
    if req.method == "HEAD" {
        response.truncate(response.len() - asset.body.len());
    }
    Some(response)
}

/// The policy: nothing but this origin's own files and WebSocket. `'self'` covers `ws:`/`wss:`
/// of the same host in CSP level 3; the explicit `ws://HOST wss://HOST` keeps older browsers
/// working. A Host header with anything but host characters is left out (header injection).
fn csp(host: Option<&str>) -> String {
    let mut connect = String::from("'self'");
    if let Some(h) = host.filter(|h| {
        !h.is_empty()
            && h.len() <= 255
            && h.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b".-:[]_".contains(&b))
    }) {
        connect.push_str(&format!(" ws://{h} wss://{h}"));
    }
    format!(
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
         connect-src {connect}; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The budget for everything the page loads.
    const PAGE_WEIGHT_BUDGET: usize = 250 * 1024;

    #[test]
    fn page_weight_is_within_budget() {
        let weight = page_weight();
        assert!(
            weight <= PAGE_WEIGHT_BUDGET,
            "dashboard weighs {weight} bytes"
        );
    }

    #[test]
    fn csp_leaves_out_a_hostile_host() {
        assert!(csp(Some("example.com:8765")).contains("ws://example.com:8765"));
        let hostile = csp(Some("a; script-src *"));
        assert!(!hostile.contains("script-src *"), "{hostile}");
        assert!(hostile.contains("connect-src 'self';"));
    }
}
