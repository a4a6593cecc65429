//! The SDK against our real server, `cobra run` (built by `cargo build -p cobra-server`; the
//! binary is found next to this test's executable, in the same target directory).

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use cobra::{Client, Config, ErrorKind, Event, State, SubscribeOptions};
use cobra_test_support::free_port;
use serde_json::{Value, json};
use support::cobra_server::{SECRET, Server};
use support::{Recorder, SilentProxy, publish_acked, start_client, wait_authenticated, wait_until};

const T: Duration = Duration::from_secs(20);

fn config(url: &str) -> Config {
    Config::new(url, "_pubsub", "pubsub", SECRET)
        .backoff(Duration::from_millis(20), Duration::from_millis(300))
}

fn authenticated(rec: &Recorder, n: usize) {
    wait_authenticated(rec, n, T);
}

fn received(rec: &Recorder) -> Vec<Value> {
    rec.data_messages(None)
}

/// `rec` received the integers `0..n`, each once, in order: checked after a short wait, since a
/// duplicate would arrive right behind the last one.
fn assert_received_once_in_order(rec: &Recorder, n: usize, what: &str) {
    std::thread::sleep(Duration::from_millis(100));
    let got: Vec<i64> = received(rec)
        .iter()
        .map(|v| v.as_i64().expect("an integer"))
        .collect();
    assert_eq!(got, (0..n as i64).collect::<Vec<_>>(), "{what}");
}

#[test]
fn every_call_against_cobra_run() {
    let server = Server::start(0);
    let (client, rec) = start_client(config(&server.url()));
    authenticated(&rec, 1);
    let hs = rec.wait_for(T, "handshake", |e| matches!(e, Event::Handshake { .. }));
    assert!(
        matches!(&hs, Event::Handshake { connection_id, server_version } if !connection_id.is_empty() && !server_version.is_empty()),
        "{hs:?}"
    );

    client
        .subscribe(
            SubscribeOptions::new("engine_fps_id")
                .subscription_id("slow")
                .filter("select data.fps from `engine_fps_id` where data.fps < 30"),
        )
        .unwrap();
    client
        .subscribe(SubscribeOptions::new("engine_fps_id").subscription_id("all"))
        .unwrap();
    wait_until(T, "2 subscribed", || {
        rec.count(|e| matches!(e, Event::Subscribed { .. })) == 2
    });
    for fps in [20, 40, 25] {
        client
            .publish(
                "engine_fps_id",
                &json!({"id": "engine_fps_id", "data": {"fps": fps}}),
            )
            .unwrap();
    }
    wait_until(T, "acks", || client.pending_count() == 0);
    wait_until(T, "5 deliveries (3 + 2 filtered)", || {
        received(&rec).len() == 5
    });
    let slow: Vec<Value> = rec
        .snapshot()
        .into_iter()
        .filter_map(|e| match e {
            Event::SubscriptionData {
                subscription_id,
                messages,
                ..
            } if subscription_id == "slow" => Some(messages),
            _ => None,
        })
        .flatten()
        .collect();
    assert_eq!(
        slow,
        vec![json!({"data.fps": 20}), json!({"data.fps": 25})],
        "the filter's projection"
    );
    let bad = client.subscribe(
        SubscribeOptions::new("x")
            .subscription_id("bad")
            .filter("select from where"),
    );
    assert!(bad.is_ok());
    rec.wait_for(T, "filter error", |e| matches!(e, Event::SubscriptionError { subscription_id, .. } if subscription_id == "bad"));

    client.write("kv", &json!({"v": [1, 2]}), T).unwrap();
    assert_eq!(client.read("kv", T).unwrap(), Some(json!({"v": [1, 2]})));
    client.delete("kv", T).unwrap();
    assert_eq!(client.read("kv", T).unwrap(), None);
    let conns = client
        .request("admin/get_connections", json!({}), T)
        .unwrap();
    assert!(
        conns["connections"]
            .as_array()
            .is_some_and(|c| !c.is_empty()),
        "{conns}"
    );

    client.unsubscribe("all").unwrap();
    rec.wait_for(
        T,
        "unsubscribed",
        |e| matches!(e, Event::Unsubscribed { subscription_id } if subscription_id == "all"),
    );
    client.disconnect().unwrap();
    assert_eq!(client.state(), State::Disconnected);
}

#[test]
fn server_restart_loses_nothing_queued_and_the_subscriber_resumes() {
    let port = free_port();
    let server = Server::start(port);
    let (sub, srec) = start_client(config(&server.url()));
    sub.subscribe(SubscribeOptions::new("c")).unwrap();
    srec.wait_for(T, "subscribed", |e| matches!(e, Event::Subscribed { .. }));
    let (publisher, prec) = start_client(config(&server.url()));
    authenticated(&prec, 1);
    for i in 0..100 {
        publisher.publish("c", &json!(i)).unwrap();
    }
    wait_until(T, "first 100 acked", || publisher.pending_count() == 0);
    wait_until(T, "first 100 received", || received(&srec).len() == 100);

    drop(server);
    wait_until(T, "both noticed", || {
        publisher.state() != State::Connected && sub.state() != State::Connected
    });
    // Published while the server is down: queued, sent when it is back.
    for i in 100..200 {
        publisher.publish("c", &json!(i)).unwrap();
    }
    let _server = Server::start(port);
    authenticated(&srec, 2);
    authenticated(&prec, 2);
    wait_until(T, "queued ones acked", || publisher.pending_count() == 0);
    wait_until(T, "200 received", || received(&srec).len() >= 200);
    assert_received_once_in_order(&srec, 200, "no gap, no duplicate, in order");
}

#[test]
fn subscriber_dropped_by_the_server_resumes_from_its_last_position() {
    let server = Server::start(0);
    let (sub, srec) = start_client(config(&server.url()));
    sub.subscribe(SubscribeOptions::new("live")).unwrap();
    srec.wait_for(T, "subscribed", |e| matches!(e, Event::Subscribed { .. }));
    let connection_id =
        match srec.wait_for(T, "handshake", |e| matches!(e, Event::Handshake { .. })) {
            Event::Handshake { connection_id, .. } => connection_id,
            _ => unreachable!(),
        };
    let (publisher, prec) = start_client(config(&server.url()));
    authenticated(&prec, 1);
    let n = 400;
    let p = publisher.clone();
    let writer = std::thread::spawn(move || {
        for i in 0..n {
            p.publish("live", &json!(i)).unwrap();
            std::thread::sleep(Duration::from_micros(500));
        }
    });
    wait_until(T, "some received", || received(&srec).len() >= 50);
    // The server drops the subscriber mid-stream (as an operator or a load balancer would).
    publisher
        .request(
            "admin/close_connection",
            json!({"connection_id": connection_id}),
            T,
        )
        .unwrap();
    authenticated(&srec, 2);
    writer.join().unwrap();
    wait_until(T, "all acked", || publisher.pending_count() == 0);
    wait_until(T, "all received", || received(&srec).len() >= n);
    assert_received_once_in_order(&srec, n, "resumed with no gap and no duplicate");
}

#[test]
fn silent_proxy_to_cobra_run_trips_the_pong_timeout() {
    let server = Server::start(0);
    let proxy = SilentProxy::start(server.addr);
    let config = config(&format!("ws://{}", proxy.addr))
        .ping_interval(Duration::from_millis(150))
        .pong_timeout(Duration::from_millis(150));
    let (client, rec) = start_client(config);
    authenticated(&rec, 1);
    rec.wait_for(T, "pong from the server", |e| {
        matches!(e, Event::Pong { .. })
    });
    proxy.set_silent(true);
    rec.wait_for(T, "pong timeout", |e| {
        matches!(
            e,
            Event::Error {
                kind: ErrorKind::PongTimeout,
                ..
            }
        )
    });
    proxy.set_silent(false);
    authenticated(&rec, 2);
    publish_acked(
        &client,
        &rec,
        "c",
        &json!(1),
        "published after the reconnect",
    );
}

#[test]
fn bad_credentials_and_unknown_appkey_against_cobra_run() {
    let server = Server::start(0);
    let bad = Config::new(server.url(), "_pubsub", "pubsub", "wrong")
        .backoff(Duration::from_millis(10), Duration::from_millis(500));
    let (_c, rec) = start_client(bad);
    rec.expect_first_error(T, "auth error", ErrorKind::AuthenticationFailed, "");
    std::thread::sleep(Duration::from_millis(1000));
    let attempts = rec.count(|e| matches!(e, Event::Connecting { .. }));
    assert!((2..=4).contains(&attempts), "{attempts} attempts in 1 s");

    let forbidden = Config::new(server.url(), "no-such-app", "pubsub", SECRET);
    let (_f, rec) = start_client(forbidden);
    rec.expect_first_error(T, "403", ErrorKind::Forbidden, "");
}

#[test]
fn deflate_is_negotiated_with_cobra_run() {
    let server = Server::start(0);
    for deflate in [None, Some(cobra::DeflateOptions::default())] {
        let (client, rec) = start_client(config(&server.url()).deflate(deflate));
        authenticated(&rec, 1);
        client.subscribe(SubscribeOptions::new("d")).unwrap();
        rec.wait_for(T, "subscribed", |e| matches!(e, Event::Subscribed { .. }));
        let big = json!({"pad": "telemetry ".repeat(2000)});
        for _ in 0..20 {
            client.publish("d", &big).unwrap();
        }
        wait_until(T, "echoes", || received(&rec).len() == 20);
        assert!(received(&rec).iter().all(|m| *m == big));
        let t = Instant::now();
        client.disconnect().unwrap();
        assert!(t.elapsed() < Duration::from_millis(200));
    }
}

/// Records events like [`Recorder`], but stops the engine for `pause` at the first data: the
/// SDK reads nothing meanwhile, as a subscriber stuck behind a slow consumer would.
struct PausingRecorder {
    rec: Recorder,
    pause: Duration,
    paused: std::sync::atomic::AtomicBool,
}

impl cobra::Listener for PausingRecorder {
    fn on_event(&self, event: &Event) {
        if matches!(event, Event::SubscriptionData { .. })
            && !self.paused.swap(true, std::sync::atomic::Ordering::Relaxed)
        {
            std::thread::sleep(self.pause);
        }
        self.rec.on_event(event);
    }
}

#[test]
fn a_paused_sdk_subscriber_catches_up_from_history_and_sees_only_data() {
    // A small queue: the flood published while the SDK pauses overflows it, so the server
    // serves the rest from the channel's history (issue 23).
    let server = Server::start_with(
        0,
        &[
            "--outbound-queue-bytes",
            "65536",
            "--channel-max-length",
            "5000",
        ],
    );
    let listener = Arc::new(PausingRecorder {
        rec: Recorder::default(),
        pause: Duration::from_millis(1500),
        paused: false.into(),
    });
    let sub = Client::new(config(&server.url()), Some(listener.clone())).unwrap();
    sub.connect().unwrap();
    sub.subscribe(SubscribeOptions::new("flood")).unwrap();
    listener
        .rec
        .wait_for(T, "subscribed", |e| matches!(e, Event::Subscribed { .. }));
    let (publisher, prec) = start_client(config(&server.url()));
    authenticated(&prec, 1);
    let n = 2000;
    let pad = "x".repeat(10_000);
    for i in 0..n {
        publisher
            .publish("flood", &json!({"n": i, "pad": pad}))
            .unwrap();
    }
    wait_until(T, "all acked", || publisher.pending_count() == 0);
    let received = |rec: &Recorder| -> Vec<i64> {
        received(rec)
            .iter()
            .map(|v| v["n"].as_i64().unwrap())
            .collect()
    };
    wait_until(Duration::from_secs(60), "all received", || {
        received(&listener.rec).len() >= n
    });
    assert_eq!(
        received(&listener.rec),
        (0..n as i64).collect::<Vec<_>>(),
        "no gap, no duplicate, in order"
    );
    let notices = listener.rec.count(|e| {
        matches!(
            e,
            Event::SubscriptionError { .. } | Event::SubscriptionInfo { .. }
        )
    });
    assert_eq!(notices, 0, "only data");
    assert_eq!(
        listener.rec.count(|e| matches!(e, Event::Authenticated)),
        1,
        "never disconnected"
    );
    // It did fall behind (rather than the socket buffers holding the whole flood).
    let (status, _, body) = cobra_test_support::client::http_get(server.addr, "/metrics", "");
    assert_eq!(status, 200);
    let started: u64 = body
        .lines()
        .find_map(|l| l.strip_prefix("cobra_catchup_started_total ")?.parse().ok())
        .unwrap_or(0);
    assert!(
        started > 0,
        "the paused subscriber caught up from history:\n{body}"
    );
}
