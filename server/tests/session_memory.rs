//! The server's session through its I/O-free layer, against the embedded memory backend: two
//! sessions of one broker (a publisher and a subscriber) fed PDU texts and read back through a
//! [`PduSink`], with the subscriber's mailbox pumped by hand. No socket, no connection task: what
//! these check is the protocol logic alone (authentication, filtered delivery, history replay).

// The benches' support: the same authenticated session and embedded broker (not all of it is used here).
#[allow(dead_code)]
#[path = "../benches/support/mod.rs"]
mod support;

use std::sync::Arc;
use std::time::Instant;

use cobra_server::broker::{Broker, Flow, PduSink, Session};
use serde_json::{Value, json};
use support::{SECRET, authed_session, broker};

/// Every PDU a session sent, parsed.
#[derive(Default)]
struct Sent(Vec<Value>);

impl PduSink for Sent {
    fn send(&mut self, pdu: &str) {
        self.0
            .push(serde_json::from_str(pdu).expect("the server sends JSON"));
    }
}

impl Sent {
    fn take(&mut self) -> Vec<Value> {
        std::mem::take(&mut self.0)
    }
}

async fn request(session: &mut Session, pdu: Value) -> Vec<Value> {
    let mut sent = Sent::default();
    let flow = session.on_text(&pdu.to_string(), &mut sent).await;
    assert_eq!(flow, Flow::Continue, "{pdu}");
    sent.take()
}

async fn publish(session: &mut Session, id: u64, message: Value) -> Value {
    let answers = request(
        session,
        json!({"action": "rtm/publish", "id": id, "body": {"channel": "fps", "message": message}}),
    )
    .await;
    assert_eq!(answers.len(), 1, "{answers:?}");
    assert_eq!(answers[0]["action"], "rtm/publish/ok", "{answers:?}");
    answers[0].clone()
}

/// Every message the subscriber's mailbox holds, as delivered in subscription data PDUs.
fn delivered(subscriber: &mut Session) -> Vec<Value> {
    let mut sent = Sent::default();
    assert_eq!(subscriber.pump(&mut sent, Instant::now()), Flow::Continue);
    sent.take()
        .into_iter()
        .filter(|p| p["action"] == "rtm/subscription/data")
        .flat_map(|p| {
            p["body"]["messages"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .collect()
}

async fn pair(broker: &Arc<Broker>) -> (Session, Session) {
    (authed_session(broker).await, authed_session(broker).await)
}

#[tokio::test]
async fn a_filtered_subscription_receives_only_the_matching_messages() {
    let broker = broker(100);
    let (mut publisher, mut subscriber) = pair(&broker).await;
    let answers = request(
        &mut subscriber,
        json!({"action": "rtm/subscribe", "id": 3, "body": {
            "subscription_id": "slow",
            "filter": "select data.fps from `fps` where data.fps < 30"}}),
    )
    .await;
    assert_eq!(answers[0]["action"], "rtm/subscribe/ok", "{answers:?}");
    publish(&mut publisher, 10, json!({"data": {"fps": 60}})).await;
    publish(&mut publisher, 11, json!({"data": {"fps": 24}})).await;
    assert_eq!(delivered(&mut subscriber), [json!({"data.fps": 24})]);
    // Nothing more is queued.
    assert!(delivered(&mut subscriber).is_empty());
}

#[tokio::test]
async fn a_subscription_from_a_position_replays_the_history_after_it() {
    let broker = broker(100);
    let (mut publisher, mut subscriber) = pair(&broker).await;
    let first = publish(&mut publisher, 10, json!({"n": 1})).await;
    publish(&mut publisher, 11, json!({"n": 2})).await;
    publish(&mut publisher, 12, json!({"n": 3})).await;
    let position = first["body"]["position"]
        .as_str()
        .expect("a publish answer carries its position")
        .to_owned();
    let answers = request(
        &mut subscriber,
        json!({"action": "rtm/subscribe", "id": 3, "body": {"channel": "fps", "position": position}}),
    )
    .await;
    assert_eq!(answers[0]["action"], "rtm/subscribe/ok", "{answers:?}");
    // The history arrives through the mailbox, possibly over several pumps.
    let mut got = Vec::new();
    for _ in 0..100 {
        got.extend(delivered(&mut subscriber));
        if got.len() >= 2 {
            break;
        }
        tokio::task::yield_now().await;
    }
    assert_eq!(got, [json!({"n": 2}), json!({"n": 3})]);
}

#[tokio::test]
async fn a_wrong_secret_is_refused_and_nothing_else_is_served() {
    let broker = broker(100);
    let (id, mailbox) = broker.register("app");
    let mut session = Session::new(Arc::clone(&broker), id, mailbox, "app", "test");
    let hs = request(
        &mut session,
        json!({"action": "auth/handshake", "id": 1, "body": {"method": "role_secret", "data": {"role": "r"}}}),
    )
    .await;
    let nonce = hs[0]["body"]["data"]["nonce"].as_str().expect("a nonce");
    let wrong = cobra_wire::auth::role_secret_hash(&SECRET.replace('0', "1"), nonce);
    let mut sent = Sent::default();
    let auth = json!({"action": "auth/authenticate", "id": 2, "body": {"method": "role_secret", "credentials": {"hash": wrong}}});
    session.on_text(&auth.to_string(), &mut sent).await;
    let answers = sent.take();
    assert_eq!(
        answers[0]["action"], "auth/authenticate/error",
        "{answers:?}"
    );
    assert!(!session.is_authenticated());
    let mut sent = Sent::default();
    let publish =
        json!({"action": "rtm/publish", "id": 3, "body": {"channel": "fps", "message": {}}});
    session.on_text(&publish.to_string(), &mut sent).await;
    let answers = sent.take();
    assert!(
        answers.iter().all(|a| a["action"] != "rtm/publish/ok"),
        "{answers:?}"
    );
}

#[tokio::test]
async fn one_pump_reads_on_past_what_a_filter_drops_and_no_further_for_a_plain_subscription() {
    // 3,000 messages of ~300 bytes are ~1 MB queued: four drains of `drain_bytes` (256 KiB).
    let pad = "x".repeat(300);
    let broker = broker(20_000);
    let (mut publisher, mut filtered) = pair(&broker).await;
    let mut plain = authed_session(&broker).await;
    let answers = request(
        &mut filtered,
        json!({"action": "rtm/subscribe", "id": 3, "body": {
            "subscription_id": "f", "filter": "select n from `fps` where n = 2999"}}),
    )
    .await;
    assert_eq!(answers[0]["action"], "rtm/subscribe/ok", "{answers:?}");
    let answers = request(
        &mut plain,
        json!({"action": "rtm/subscribe", "id": 3, "body": {"channel": "fps"}}),
    )
    .await;
    assert_eq!(answers[0]["action"], "rtm/subscribe/ok", "{answers:?}");
    for n in 0..3000 {
        publish(&mut publisher, n, json!({"n": n, "pad": pad})).await;
    }
    // The filtering one takes further rounds while its filter drops what it takes: the last
    // message, behind ~1 MB of misses, comes out of one pump.
    assert_eq!(delivered(&mut filtered), [json!({"n": 2999})]);
    // A plain one writes what it takes: one round (about `drain_bytes`) per pump.
    let first = delivered(&mut plain);
    assert!(
        (100..3000).contains(&first.len()),
        "one round per pump, not the whole queue: {}",
        first.len()
    );
    let mut all = first;
    for _ in 0..100 {
        let more = delivered(&mut plain);
        if more.is_empty() {
            break;
        }
        all.extend(more);
    }
    assert_eq!(all.len(), 3000, "every message, once");
    assert!(all.iter().enumerate().all(|(i, m)| m["n"] == i), "in order");
}
