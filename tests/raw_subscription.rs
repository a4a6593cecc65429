//! `SubscribeOptions::raw` against our real server, `cobra run` (built by
//! `cargo build -p cobra-server`): the same messages as a parsed subscription, as JSON text.

mod support;

use std::time::Duration;

use cobra::{Event, RawMessage, SubscribeOptions};
use serde_json::{Value, json};
use support::cobra_server::Server;
use support::{Recorder, start_client, wait_until};

const T: Duration = Duration::from_secs(20);

/// (position, messages) of each raw data event of `sub`.
fn raw_pdus(rec: &Recorder, sub: &str) -> Vec<(Option<String>, Vec<RawMessage>)> {
    rec.snapshot()
        .into_iter()
        .filter_map(|e| match e {
            Event::SubscriptionRawData {
                subscription_id,
                position,
                messages,
            } if subscription_id == sub => Some((position, messages)),
            _ => None,
        })
        .collect()
}

fn parsed(rec: &Recorder, sub: &str) -> Vec<Value> {
    rec.data_messages(Some(sub))
}

#[test]
fn raw_delivery_carries_the_same_messages_as_text() {
    let server = Server::start(0);
    let (client, rec) = start_client(server.config());
    let chan = "engine_fps_id";
    let subs = [
        ("raw", SubscribeOptions::new(chan).raw(true)),
        ("tree", SubscribeOptions::new(chan)),
        (
            "raw_filtered",
            SubscribeOptions::new(chan)
                .raw(true)
                .filter("select data.fps from `engine_fps_id` where data.fps < 30"),
        ),
    ];
    for (id, o) in &subs {
        client.subscribe(o.clone().subscription_id(*id)).unwrap();
    }
    wait_until(T, "3 subscribed", || {
        rec.count(|e| matches!(e, Event::Subscribed { .. })) == 3
    });
    let messages = [
        json!({"id": chan, "data": {"fps": 20, "s": "quote \" backslash \\ tab \t nl \n"}}),
        json!({"id": chan, "data": {"fps": 45.5, "u": "é日本🎮", "z": "\u{0}"}}),
        json!({"id": chan, "data": {"fps": 12, "nested": [[1, {"a": null}], true]}}),
        json!("not an object"),
    ];
    for m in &messages {
        client.publish(chan, m).unwrap();
    }
    wait_until(T, "all delivered", || {
        raw_pdus(&rec, "raw")
            .iter()
            .map(|p| p.1.len())
            .sum::<usize>()
            == messages.len()
            && parsed(&rec, "tree").len() == messages.len()
            && raw_pdus(&rec, "raw_filtered")
                .iter()
                .map(|p| p.1.len())
                .sum::<usize>()
                == 2
    });
    let raw: Vec<RawMessage> = raw_pdus(&rec, "raw")
        .into_iter()
        .flat_map(|p| p.1)
        .collect();
    // The raw subscription never gets parsed events, the parsed one never raw ones.
    assert!(parsed(&rec, "raw").is_empty());
    assert!(raw_pdus(&rec, "tree").is_empty());
    let values: Vec<Value> = raw.iter().map(|m| m.value().unwrap()).collect();
    assert_eq!(values, parsed(&rec, "tree"));
    assert_eq!(values, messages);
    for m in &raw {
        // The text is one valid JSON value, without surrounding whitespace.
        assert_eq!(m.json(), m.json().trim());
        assert!(serde_json::from_str::<&serde_json::value::RawValue>(m.json()).is_ok());
        assert_eq!(m.to_string(), m.json());
    }
    let filtered: Vec<Value> = raw_pdus(&rec, "raw_filtered")
        .into_iter()
        .flat_map(|p| p.1)
        .map(|m| m.value().unwrap())
        .collect();
    assert_eq!(filtered, [json!({"data.fps": 20}), json!({"data.fps": 12})]);
}

#[test]
fn raw_replay_in_batches_keeps_positions_and_order() {
    let server = Server::start(0);
    let (client, rec) = start_client(server.config());
    let chan = "raw_batches";
    let n = 250;
    for i in 0..n {
        client
            .publish(chan, &json!({"i": i, "pad": "x".repeat(300)}))
            .unwrap();
    }
    wait_until(T, "all acknowledged", || {
        rec.count(|e| matches!(e, Event::Published { .. })) == n
    });
    client
        .subscribe(
            SubscribeOptions::new(chan)
                .raw(true)
                .position("0-0")
                .batch_size(100),
        )
        .unwrap();
    wait_until(T, "history replayed", || {
        raw_pdus(&rec, chan)
            .iter()
            .map(|p| p.1.len())
            .sum::<usize>()
            == n
    });
    let pdus = raw_pdus(&rec, chan);
    assert!(
        pdus.iter().any(|p| p.1.len() > 1),
        "batched: several messages per PDU"
    );
    let is: Vec<i64> = pdus
        .iter()
        .flat_map(|p| &p.1)
        .map(|m| {
            let v = m.value().unwrap();
            assert_eq!(v["pad"].as_str().map(str::len), Some(300));
            v["i"].as_i64().unwrap()
        })
        .collect();
    assert_eq!(is, (0..n as i64).collect::<Vec<_>>(), "in order, once each");
    assert!(
        pdus.iter().all(|p| p.0.is_some()),
        "each PDU has a position"
    );
}
