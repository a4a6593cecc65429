//! The dashboard's HTTP side: its files are served at `/` with a strict Content-Security-Policy,
//! `--no-dashboard` turns them off, and the WebSocket and plain endpoints are unchanged. The
//! page itself is tested in a real browser by `scripts/test-dashboard.sh`.

mod common;

use common::{http_get, start_with};
use serde_json::json;

#[test]
fn the_page_and_its_files_are_served_with_a_strict_policy() {
    let server = start_with(100, |_| {});
    let (status, head, body) = http_get(server.local_addr(), "/", "");
    assert_eq!(status, 200, "{head}");
    assert!(
        head.contains("Content-Type: text/html; charset=utf-8"),
        "{head}"
    );
    let csp = head
        .lines()
        .find_map(|l| l.strip_prefix("Content-Security-Policy: "))
        .expect("a CSP header");
    for directive in [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "connect-src 'self' ws://127.0.0.1 wss://127.0.0.1",
        "frame-ancestors 'none'",
    ] {
        assert!(csp.contains(directive), "{directive} missing from {csp}");
    }
    assert!(head.contains("X-Content-Type-Options: nosniff"));
    for script in ["md5.js", "client.js", "charts.js", "app.js"] {
        let path = format!("/dashboard/{script}");
        assert!(
            body.contains(&format!("src=\"{path}\"")),
            "{script} not loaded"
        );
        let (status, head, js) = http_get(server.local_addr(), &path, "");
        assert_eq!(status, 200);
        assert!(head.contains("text/javascript"), "{head}");
        assert!(!js.is_empty());
    }
    let (status, _, _) = http_get(server.local_addr(), "/dashboard/nope.js", "");
    assert_eq!(status, 404);
    // The plain endpoints are untouched.
    assert_eq!(http_get(server.local_addr(), "/health/", "").2, "OK\n");
}

#[test]
fn no_dashboard_serves_nothing() {
    let server = start_with(100, |s| s.dashboard = false);
    for path in ["/", "/dashboard/app.js", "/dashboard/style.css"] {
        let (status, _, _) = http_get(server.local_addr(), path, "");
        assert_eq!(status, 404, "{path}");
    }
}

#[test]
fn no_dashboard_option_and_variable() {
    use clap::Parser;
    #[derive(Parser)]
    struct Args {
        #[command(flatten)]
        options: cobra_server::config::ServerOptions,
    }
    let settings = |args: &[&str]| {
        Args::try_parse_from(args)
            .unwrap()
            .options
            .into_settings_with(cobra_server::config::ConfigSource::Content(String::new()))
            .unwrap()
    };
    assert!(settings(&["run"]).dashboard);
    assert!(!settings(&["run", "--no-dashboard"]).dashboard);
}

#[test]
fn stats_count_subscriptions_per_channel() {
    let server = start_with(100, |_| {});
    let mut a = common::Client::authed(server.local_addr(), "app1", "all");
    let mut b = common::Client::authed(server.local_addr(), "app1", "all");
    for (c, id) in [(&mut a, "x"), (&mut b, "y")] {
        let ok = c.request(
            "rtm/subscribe",
            json!({"channel": "watched", "subscription_id": id}),
        );
        assert_eq!(ok["action"], "rtm/subscribe/ok");
    }
    let stats = &server.broker().stats;
    assert_eq!(stats.channel_subscriptions("watched"), 2);
    let message: serde_json::Value =
        serde_json::from_str(&stats.stats_message(server.broker())).unwrap();
    assert_eq!(
        message["data"]["channel_data"]["subscriptions"]["watched"],
        2
    );
    let ok = a.request("rtm/unsubscribe", json!({"subscription_id": "x"}));
    assert_eq!(ok["action"], "rtm/unsubscribe/ok");
    assert_eq!(stats.channel_subscriptions("watched"), 1);
    drop(b);
    common::eventually("the closed connection's subscription is gone", || {
        (stats.channel_subscriptions("watched") == 0).then_some(())
    });
    let message: serde_json::Value =
        serde_json::from_str(&stats.stats_message(server.broker())).unwrap();
    assert!(message["data"]["channel_data"]["subscriptions"]["watched"].is_null());
}
