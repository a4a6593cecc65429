//! The SDK's upgrade against real servers that answer the 101 in unusual but valid forms:
//! header names and values in other cases, folded headers (obs-fold), permessage-deflate
//! parameters spelled out and quoted, no `Sec-WebSocket-Protocol`, a repeated `Connection`,
//! another reason phrase or none, extra and non-ASCII headers.
//!
//! The servers are the real Python `websockets` and Node `ws` echo peers of `tests/peers/`
//! (installed by `scripts/install-peers.sh`), the library's own 101 reshaped by their
//! `answer=STYLE` query parameter (Python's `process_response` hook, Node's `headers` event:
//! both let a server rewrite its answer, so no raw-socket stand-in is needed). Each row
//! connects the real `cobra::Client`, authenticates, subscribes, publishes compressible
//! messages and gets them back and acked: the deflate agreement, however spelled, was read
//! right. Without the peers the tests print `SKIPPED` and pass, except under `CI=true`.

mod support;

use std::sync::Arc;
use std::time::Duration;

use cobra::{Client, Event, SubscribeOptions};
use cobra_test_support::process::{EchoPeer, start_node_echo, start_python_echo};
use serde_json::json;
use support::{Recorder, SECRET, config, wait_until};

const T: Duration = Duration::from_secs(30);

/// The answer styles both peers implement (see `reshape` in each peer script).
const STYLES: &[(&str, &str)] = &[
    ("plain", "the library's own answer (control)"),
    (
        "lowercase",
        "header names and Upgrade/Connection values in lower case",
    ),
    (
        "uppercase",
        "header names and Upgrade/Connection values in upper case",
    ),
    (
        "folded",
        "Sec-WebSocket-Extensions folded at each ';', Sec-WebSocket-Accept folded before its value, a folded extra header",
    ),
    (
        "extension-params",
        "default window bits spelled out, values quoted, odd spacing",
    ),
    ("no-protocol", "no Sec-WebSocket-Protocol"),
    (
        "split-connection",
        "Connection: keep-alive and Connection: Upgrade as two headers",
    ),
    (
        "decorated",
        "reason 'Web Socket Protocol Handshake', Connection: Upgrade, keep-alive, Server, Set-Cookie, a non-ASCII value",
    ),
    ("bare-status", "no reason phrase"),
];

/// Connects to `peer` asking for the answer `style`, and runs a session to acked publishes
/// that come back intact. Returns a failure description instead of panicking, so one run
/// reports every style that fails.
fn session(peer: &EchoPeer, style: &str) -> Result<(), String> {
    let rec = Arc::new(Recorder::default());
    let url = format!("{}/v2?answer={style}", peer.url());
    let client = Client::new(config(&url), Some(rec.clone())).map_err(|e| e.to_string())?;
    client.connect().map_err(|e| e.to_string())?;
    let failed = |e: &Event| matches!(e, Event::Error { .. } | Event::Closed { .. });
    let first = rec.wait_for(T, "authenticated or an error", |e| {
        matches!(e, Event::Authenticated) || failed(e)
    });
    if !matches!(first, Event::Authenticated) {
        let _ = client.disconnect();
        return Err(format!("{first:?}"));
    }
    client
        .subscribe(SubscribeOptions::new("echo"))
        .map_err(|e| e.to_string())?;
    rec.wait_for(T, "subscribed", |e| matches!(e, Event::Subscribed { .. }));
    // Compressible and over the codec's minimum, so both directions really inflate; several,
    // so a misread context-takeover parameter would corrupt the later ones.
    let sent: Vec<_> = (0..5)
        .map(|i| json!({"i": i, "style": style, "pad": "telemetry ".repeat(200)}))
        .collect();
    for m in &sent {
        client.publish("echo", m).map_err(|e| e.to_string())?;
    }
    let received = || rec.data_messages(None);
    wait_until(T, "messages echoed and acked", || {
        received().len() >= sent.len()
            && rec.count(|e| matches!(e, Event::Published { .. })) >= sent.len()
    });
    let errors: Vec<_> = rec.snapshot().into_iter().filter(failed).collect();
    let _ = client.disconnect();
    if received() != sent {
        return Err(format!("echo differs: {:?}", received()));
    }
    if !errors.is_empty() {
        return Err(format!("errors: {errors:?}"));
    }
    Ok(())
}

fn every_style(peer: &EchoPeer, name: &str) {
    let failures: Vec<String> = STYLES
        .iter()
        .filter_map(|(style, what)| {
            session(peer, style)
                .err()
                .map(|e| format!("{name}, {style} ({what}): {e}"))
        })
        .collect();
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn connects_to_python_websockets_answering_in_unusual_forms() {
    if let Some(peer) = start_python_echo(SECRET, &[]) {
        every_style(&peer, "Python websockets");
    }
}

#[test]
fn connects_to_node_ws_answering_in_unusual_forms() {
    // With a parameter in its extension answer, so that "folded" folds it too.
    if let Some(peer) = start_node_echo(SECRET, r#"{"serverNoContextTakeover": true}"#) {
        every_style(&peer, "Node ws");
    }
}
