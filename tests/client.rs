//! The SDK against a real WebSocket peer over real sockets (see `support`).

mod support;

use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use cobra::{
    Client, ClosedBy, Config, Delivery, Error, ErrorKind, Event, OverflowPolicy, State,
    SubscribeOptions,
};
use serde_json::json;
use support::*;

const T: Duration = Duration::from_secs(10);

fn authenticated(rec: &Recorder, n: usize) {
    wait_authenticated(rec, n, T);
}

#[test]
fn every_call_and_event_round_trips() {
    let peer = Peer::start();
    let (client, rec) = start_client(
        config(&peer.url())
            .header("X-Game", "wiso")
            .user_agent("cobra-test/1"),
    );
    authenticated(&rec, 1);
    assert_eq!(client.state(), State::Connected);
    let evs = rec.snapshot();
    assert!(
        matches!(&evs[0], Event::Connecting { attempt: 1, .. }),
        "{evs:?}"
    );
    assert!(matches!(evs[1], Event::Open));
    assert!(
        matches!(&evs[2], Event::Handshake { connection_id, server_version } if connection_id == "c1" && server_version == "test-1")
    );
    let headers = peer.state.last_headers.lock().unwrap().clone();
    assert!(
        headers
            .iter()
            .any(|(n, v)| n.eq_ignore_ascii_case("x-game") && v == "wiso")
    );
    assert!(
        headers
            .iter()
            .any(|(n, v)| n.eq_ignore_ascii_case("user-agent") && v == "cobra-test/1")
    );
    assert!(
        peer.state.last_deflate.lock().unwrap().is_some(),
        "deflate negotiated by default"
    );

    client
        .subscribe(SubscribeOptions::new("fps").subscription_id("s1"))
        .unwrap();
    assert!(matches!(
        client.subscribe(SubscribeOptions::new("fps").subscription_id("s1")),
        Err(Error::InvalidArgument(_))
    ));
    rec.wait_for(
        T,
        "subscribed",
        |e| matches!(e, Event::Subscribed { subscription_id, .. } if subscription_id == "s1"),
    );

    let id = client
        .publish("fps", &json!({"data": {"fps": 30}}))
        .unwrap();
    rec.wait_for(T, "published", |e| *e == Event::Published { id });
    let data = rec.wait_for(T, "data", |e| matches!(e, Event::SubscriptionData { .. }));
    assert_eq!(
        data,
        Event::SubscriptionData {
            subscription_id: "s1".into(),
            position: Some("1-1".into()),
            messages: vec![json!({"data": {"fps": 30}})]
        }
    );
    let id2 = client.publish_many(&["a", "b"], &json!(1)).unwrap();
    let id3 = client.publish_raw("c", r#" {"raw": true} "#).unwrap();
    rec.wait_for(T, "published many", |e| *e == Event::Published { id: id2 });
    rec.wait_for(T, "published raw", |e| *e == Event::Published { id: id3 });
    {
        let published = peer.state.published.lock().unwrap();
        assert_eq!(
            published[1],
            (vec!["a".to_string(), "b".to_string()], json!(1))
        );
        assert_eq!(published[2], (vec!["c".to_string()], json!({"raw": true})));
    }
    assert!(matches!(
        client.publish_raw("c", "{not json"),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        client.publish("", &json!(1)),
        Err(Error::InvalidArgument(_))
    ));

    client.write("kv", &json!({"v": 1}), T).unwrap();
    assert_eq!(client.read("kv", T).unwrap(), Some(json!({"v": 1})));
    client.delete("kv", T).unwrap();
    assert_eq!(client.read("kv", T).unwrap(), None);
    assert!(matches!(
        client.request("rtm/nope", json!({}), T),
        Err(Error::Server { .. })
    ));

    client.unsubscribe("s1").unwrap();
    rec.wait_for(
        T,
        "unsubscribed",
        |e| matches!(e, Event::Unsubscribed { subscription_id } if subscription_id == "s1"),
    );
    assert!(matches!(
        client.unsubscribe("s1"),
        Err(Error::InvalidArgument(_))
    ));

    client.disconnect().unwrap();
    assert_eq!(client.state(), State::Disconnected);
    rec.wait_for(T, "closed", |e| {
        matches!(
            e,
            Event::Closed {
                code: 1000,
                by: ClosedBy::ByLocal,
                ..
            }
        )
    });
    assert!(matches!(
        client.read("kv", Duration::from_millis(50)),
        Err(Error::Cancelled(_) | Error::Timeout(_))
    ));
}

#[test]
fn events_channel_works_without_a_listener() {
    let peer = Peer::start();
    let client = Client::new(config(&peer.url()).event_queue_capacity(4), None).unwrap();
    let events = client.events();
    client.connect().unwrap();
    let deadline = Instant::now() + T;
    let mut seen = Vec::new();
    while !seen.contains(&Event::Authenticated) {
        seen.push(
            events
                .recv_timeout(deadline - Instant::now())
                .expect("event"),
        );
    }
    // Bounded: with nobody reading, at most 4 events wait and the engine is not blocked.
    for i in 0..20 {
        client.publish("c", &json!(i)).unwrap();
    }
    wait_until(T, "acks", || {
        peer.state.published_count() == 20 && client.pending_count() == 0
    });
    assert_eq!(events.len(), 4);
}

#[test]
fn unacknowledged_publishes_are_resent_after_the_connection_drops() {
    let peer = Peer::start();
    let (client, rec) = start_client(config(&peer.url()));
    authenticated(&rec, 1);
    peer.state.withhold_acks.store(true, Ordering::SeqCst);
    let n = 200;
    let ids: Vec<_> = (0..n)
        .map(|i| client.publish("c", &json!({"seq": i})).unwrap())
        .collect();
    wait_until(T, "all sent once", || peer.state.published_count() == n);
    assert_eq!(
        client.pending_count(),
        n,
        "nothing acknowledged, everything pending"
    );
    peer.kill_connections();
    // Published while the connection is down: queued, sent after the reconnect.
    let late: Vec<_> = (n..n + 50)
        .map(|i| client.publish("c", &json!({"seq": i})).unwrap())
        .collect();
    peer.state.withhold_acks.store(false, Ordering::SeqCst);
    authenticated(&rec, 2);
    wait_until(T, "all acknowledged", || client.pending_count() == 0);
    let acked: HashSet<_> = rec
        .snapshot()
        .iter()
        .filter_map(|e| {
            if let Event::Published { id } = e {
                Some(*id)
            } else {
                None
            }
        })
        .collect();
    let all: HashSet<_> = ids.iter().chain(&late).copied().collect();
    assert_eq!(acked, all, "every id acknowledged exactly as published");
    let seqs: BTreeSet<i64> = peer
        .state
        .published
        .lock()
        .unwrap()
        .iter()
        .map(|(_, m)| m["seq"].as_i64().unwrap())
        .collect();
    assert_eq!(seqs, (0..(n as i64 + 50)).collect(), "nothing lost");
    assert_eq!(rec.count(|e| matches!(e, Event::PublishDropped { .. })), 0);
    let total = peer.state.published_count();
    assert_eq!(
        total,
        n + n + 50,
        "at-least-once: the {n} unacknowledged were sent twice, nothing else"
    );
}

#[test]
fn at_most_once_never_sends_twice() {
    let peer = Peer::start();
    let (client, rec) = start_client(config(&peer.url()).delivery(Delivery::AtMostOnce));
    authenticated(&rec, 1);
    peer.state.withhold_acks.store(true, Ordering::SeqCst);
    for i in 0..20 {
        client.publish("c", &json!(i)).unwrap();
    }
    wait_until(T, "all sent", || peer.state.published_count() == 20);
    peer.kill_connections();
    peer.state.withhold_acks.store(false, Ordering::SeqCst);
    authenticated(&rec, 2);
    wait_until(T, "drops reported", || {
        rec.count(|e| matches!(e, Event::PublishDropped { .. })) == 20
    });
    assert_eq!(peer.state.published_count(), 20);
    assert_eq!(client.pending_count(), 0);
}

#[test]
fn subscription_resumes_after_reconnect_without_gap_or_duplicate() {
    let peer = Peer::start();
    let (sub, rec) = start_client(config(&peer.url()));
    sub.subscribe(SubscribeOptions::new("chan")).unwrap(); // queued before the connection
    rec.wait_for(T, "subscribed", |e| matches!(e, Event::Subscribed { .. }));
    let (publisher, prec) = start_client(config(&peer.url()));
    authenticated(&prec, 1);
    let received = |rec: &Recorder| -> Vec<i64> {
        rec.data_messages(None)
            .iter()
            .map(|m| m.as_i64().expect("an integer"))
            .collect()
    };
    for i in 0..10 {
        publisher.publish("chan", &json!(i)).unwrap();
    }
    wait_until(T, "first 10", || received(&rec).len() == 10);
    publisher.disconnect().unwrap();
    peer.kill_connections();
    // While the subscriber is away, 10 more arrive in the server's history.
    {
        let mut h = peer.state.history.lock().unwrap();
        for i in 10..20 {
            h.push(("chan".into(), i.to_string()));
        }
    }
    authenticated(&rec, 2);
    publisher.connect().unwrap();
    for i in 20..25 {
        publisher.publish("chan", &json!(i)).unwrap();
    }
    wait_until(T, "all 25", || received(&rec).len() >= 25);
    assert_eq!(
        received(&rec),
        (0..25).collect::<Vec<_>>(),
        "in order, no gap, no duplicate"
    );
    let subscribes = peer.state.subscribes.lock().unwrap().clone();
    assert_eq!(subscribes[0], ("chan".into(), None));
    assert_eq!(
        subscribes.last().unwrap(),
        &("chan".into(), Some("1-10".into())),
        "resumed from the last position"
    );
}

#[test]
fn silent_network_trips_the_pong_timeout_and_reconnects() {
    let peer = Peer::start();
    let proxy = SilentProxy::start(peer.addr);
    let interval = Duration::from_millis(100);
    let pong_timeout = Duration::from_millis(200);
    let (client, rec) = start_client(
        config(&format!("ws://{}", proxy.addr))
            .ping_interval(interval)
            .pong_timeout(pong_timeout),
    );
    authenticated(&rec, 1);
    rec.wait_for(T, "a pong", |e| matches!(e, Event::Pong { .. }));
    proxy.set_silent(true);
    let silent_at = Instant::now();
    rec.wait_for(T, "pong timeout", |e| {
        matches!(
            e,
            Event::Error {
                kind: ErrorKind::PongTimeout,
                ..
            }
        )
    });
    let detected = silent_at.elapsed();
    assert!(
        detected <= interval + pong_timeout + Duration::from_millis(300),
        "detected after {detected:?}"
    );
    proxy.set_silent(false);
    authenticated(&rec, 2);
    assert_eq!(client.state(), State::Connected);
    eprintln!("dead connection detected {detected:?} after the network went silent");
}

#[test]
fn disconnect_during_a_64_mb_send_returns_fast() {
    let peer = Peer::start();
    let config = config(&peer.url()).max_message_size(80 << 20);
    let (client, rec) = start_client(config);
    authenticated(&rec, 1);
    peer.state.stall_reads.store(true, Ordering::SeqCst);
    let big = format!("\"{}\"", "x".repeat(64 << 20));
    client.publish_raw("big", &big).unwrap();
    // Let the engine get well into the send (the peer reads nothing, so it cannot finish).
    std::thread::sleep(Duration::from_millis(100));
    let t = Instant::now();
    client.disconnect().unwrap();
    let took = t.elapsed();
    assert_eq!(client.state(), State::Disconnected);
    eprintln!("disconnect() during a 64 MB send took {took:?}");
    assert!(
        took < Duration::from_millis(200),
        "disconnect took {took:?}"
    );
    assert_eq!(
        client.pending_count(),
        1,
        "the message stays queued for the next connection"
    );
}

#[test]
fn queue_overflow_drop_oldest_reports_each_drop() {
    let peer = Peer::start();
    let rec = Arc::new(Recorder::default());
    let client = Client::new(
        config(&peer.url()).queue_limits(3, 1 << 20, OverflowPolicy::DropOldest),
        Some(rec.clone()),
    )
    .unwrap();
    let ids: Vec<_> = (0..5)
        .map(|i| client.publish("c", &json!(i)).unwrap())
        .collect();
    wait_until(T, "two drops", || {
        rec.count(|e| matches!(e, Event::PublishDropped { .. })) == 2
    });
    let dropped = rec.pick(|e| match e {
        Event::PublishDropped { id, .. } => Some(*id),
        _ => None,
    });
    assert_eq!(dropped, ids[..2]);
    client.connect().unwrap();
    wait_until(T, "the rest acknowledged", || client.pending_count() == 0);
    let got: Vec<_> = peer
        .state
        .published
        .lock()
        .unwrap()
        .iter()
        .map(|(_, m)| m.clone())
        .collect();
    assert_eq!(got, vec![json!(2), json!(3), json!(4)]);
}

#[test]
fn queue_overflow_refuse_new_returns_an_error() {
    let peer = Peer::start();
    let client = Client::new(
        config(&peer.url()).queue_limits(3, 1 << 20, OverflowPolicy::RefuseNew),
        None,
    )
    .unwrap();
    for i in 0..3 {
        client.publish("c", &json!(i)).unwrap();
    }
    assert!(matches!(
        client.publish("c", &json!(3)),
        Err(Error::QueueFull { messages: 3, .. })
    ));
    let small = Client::new(
        config(&peer.url()).queue_limits(10, 40, OverflowPolicy::RefuseNew),
        None,
    )
    .unwrap();
    assert!(matches!(
        small.publish("c", &json!("a long message over the byte bound")),
        Err(Error::QueueFull { .. })
    ));
    client.connect().unwrap();
    wait_until(T, "acknowledged", || client.pending_count() == 0);
    assert_eq!(peer.state.published_count(), 3);
}

#[test]
fn bad_credentials_do_not_cause_a_reconnect_storm() {
    let peer = Peer::start();
    let config = Config::new(peer.url(), APPKEY, ROLE, "wrong-secret")
        .backoff(Duration::from_millis(10), Duration::from_millis(400));
    let (client, rec) = start_client(config);
    let e = rec.wait_for(T, "auth error", |e| matches!(e, Event::Error { .. }));
    assert!(
        matches!(e, Event::Error { kind: ErrorKind::AuthenticationFailed, next_wait: Some(w), .. } if w == Duration::from_millis(400)),
        "{e:?}"
    );
    let window = Duration::from_millis(1000);
    std::thread::sleep(window);
    let attempts = peer.state.accepted.load(Ordering::SeqCst);
    // One at once, then one per 400 ms: at most 4 in a second (a storm would be ~100 at 10 ms).
    assert!(
        (2..=4).contains(&attempts),
        "{attempts} connection attempts in {window:?}"
    );
    assert_eq!(peer.state.auth_failures.load(Ordering::SeqCst), attempts);
    assert_ne!(client.state(), State::Connected);
}

#[test]
fn unknown_appkey_is_a_permanent_error() {
    let peer = Peer::start();
    let config = Config::new(peer.url(), "nope", ROLE, SECRET)
        .backoff(Duration::from_millis(10), Duration::from_secs(5));
    let (_client, rec) = start_client(config);
    let e = rec.wait_for(T, "forbidden", |e| matches!(e, Event::Error { .. }));
    assert!(
        matches!(&e, Event::Error { kind: ErrorKind::Forbidden, next_wait: Some(w), message, .. } if *w == Duration::from_secs(5) && message.contains("403")),
        "{e:?}"
    );
    assert_eq!(peer.state.accepted.load(Ordering::SeqCst), 1);
}

#[test]
fn suspend_resume_and_network_changed() {
    let peer = Peer::start();
    let (client, rec) = start_client(config(&peer.url()));
    authenticated(&rec, 1);
    client.suspend().unwrap();
    rec.wait_for(T, "closed", |e| {
        matches!(
            e,
            Event::Closed {
                by: ClosedBy::ByLocal,
                code: 1001,
                ..
            }
        )
    });
    wait_until(T, "suspended", || client.state() == State::Suspended);
    let id = client
        .publish("c", &json!("queued while suspended"))
        .unwrap();
    std::thread::sleep(Duration::from_millis(300)); // several backoff periods: no attempt may happen
    assert_eq!(peer.state.accepted.load(Ordering::SeqCst), 1);
    client.resume().unwrap();
    authenticated(&rec, 2);
    rec.wait_for(T, "queued message acked", |e| *e == Event::Published { id });
    let t = Instant::now();
    client.network_changed().unwrap();
    authenticated(&rec, 3);
    assert!(t.elapsed() < Duration::from_secs(2));
    assert_eq!(peer.state.accepted.load(Ordering::SeqCst), 3);
}

#[test]
fn a_panicking_listener_does_not_stop_the_engine() {
    let peer = Peer::start();
    let rec = Arc::new(Recorder::default());
    let r2 = rec.clone();
    let listener = Arc::new(move |e: &Event| {
        r2.events.lock().unwrap().push(e.clone());
        if matches!(e, Event::Open) {
            panic!("listener bug");
        }
    });
    let client = Client::new(config(&peer.url()), Some(listener)).unwrap();
    client.connect().unwrap();
    authenticated(&rec, 1);
    publish_acked(&client, &rec, "c", &json!(1), "published");
}

#[test]
fn dropping_the_last_handle_closes_the_connection() {
    let peer = Peer::start();
    let (client, rec) = start_client(config(&peer.url()));
    authenticated(&rec, 1);
    let clone = client.clone();
    drop(client);
    assert_eq!(clone.state(), State::Connected);
    let t = Instant::now();
    drop(clone);
    assert!(t.elapsed() < Duration::from_millis(500));
    rec.wait_for(T, "closed", |e| {
        matches!(
            e,
            Event::Closed {
                by: ClosedBy::ByLocal,
                ..
            }
        )
    });
}

#[test]
fn deflate_variants_and_no_deflate() {
    for deflate in [
        None,
        Some(cobra::DeflateOptions::default()),
        Some(cobra::DeflateOptions {
            client_no_context_takeover: true,
            server_no_context_takeover: true,
            ..Default::default()
        }),
        Some(cobra::DeflateOptions {
            client_max_window_bits: 10,
            server_max_window_bits: 12,
            ..Default::default()
        }),
    ] {
        let peer = Peer::start();
        let (client, rec) = start_client(config(&peer.url()).deflate(deflate));
        authenticated(&rec, 1);
        client.subscribe(SubscribeOptions::new("c")).unwrap();
        rec.wait_for(T, "subscribed", |e| matches!(e, Event::Subscribed { .. }));
        for i in 0..50 {
            client
                .publish("c", &json!({"i": i, "pad": "telemetry ".repeat(20)}))
                .unwrap();
        }
        wait_until(T, "acks", || client.pending_count() == 0);
        wait_until(T, "echoes", || {
            rec.count(|e| matches!(e, Event::SubscriptionData { .. })) == 50
        });
        let negotiated = *peer.state.last_deflate.lock().unwrap();
        assert_eq!(negotiated.is_some(), deflate.is_some(), "{deflate:?}");
        if let (Some(n), Some(d)) = (negotiated, deflate) {
            assert_eq!(n.client_no_context_takeover, d.client_no_context_takeover);
            assert!(n.client_max_window_bits <= d.client_max_window_bits);
            assert!(n.server_max_window_bits <= d.server_max_window_bits);
        }
    }
}

#[test]
fn http_connect_proxy_with_credentials() {
    let peer = Peer::start();
    let proxy = ConnectProxy::start("us@r:pa ss");
    let (client, rec) =
        start_client(config(&peer.url()).proxy(format!("http://us%40r:pa%20ss@{}", proxy.addr)));
    authenticated(&rec, 1);
    assert_eq!(proxy.tunnels.load(Ordering::SeqCst), 1);
    publish_acked(&client, &rec, "c", &json!(1), "published");
    let (_bad, brec) =
        start_client(config(&peer.url()).proxy(format!("http://u:wrong@{}", proxy.addr)));
    brec.expect_first_error(T, "proxy error", ErrorKind::Proxy, "407");
}

#[test]
fn connect_failures_back_off_with_jitter() {
    // A port with nothing listening: refused at once, retried with growing delays.
    let port = cobra_test_support::free_port();
    let (client, rec) = start_client(
        config(&format!("ws://127.0.0.1:{port}"))
            .backoff(Duration::from_millis(5), Duration::from_millis(80)),
    );
    wait_until(T, "6 retries", || {
        rec.count(|e| matches!(e, Event::Reconnecting { .. })) >= 6
    });
    client.disconnect().unwrap();
    let waits = rec.pick(|e| match e {
        Event::Reconnecting { wait, .. } => Some(*wait),
        _ => None,
    });
    assert!(
        waits
            .iter()
            .all(|w| *w >= Duration::from_millis(5) && *w <= Duration::from_millis(80)),
        "{waits:?}"
    );
    assert!(
        rec.count(|e| matches!(
            e,
            Event::Error {
                kind: ErrorKind::Connect,
                ..
            }
        )) >= 6
    );
    let attempts = rec.count(|e| matches!(e, Event::Connecting { .. }));
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(
        rec.count(|e| matches!(e, Event::Connecting { .. })),
        attempts,
        "no attempt after disconnect()"
    );
}

#[test]
fn invalid_config_is_a_typed_error() {
    let e = Client::new(Config::new("http://x", "k", "r", "s"), None).unwrap_err();
    assert!(matches!(
        e,
        Error::InvalidConfig {
            field: "endpoint",
            ..
        }
    ));
    let e = Client::new(
        Config::new("wss://x:1", "k", "r", "s").extra_ca_pem("garbage"),
        None,
    )
    .unwrap_err();
    assert!(
        matches!(
            e,
            Error::InvalidConfig {
                field: "tls.extra_ca_pem",
                ..
            }
        ),
        "{e:?}"
    );
}

#[test]
fn a_server_that_stops_answering_is_replaced_after_request_timeout() {
    let peer = Peer::start();
    let config = config(&peer.url()).timeouts(
        Duration::from_secs(5),
        Duration::from_secs(5),
        Duration::from_millis(200),
    );
    let (client, rec) = start_client(config);
    authenticated(&rec, 1);
    peer.state.mute.store(true, Ordering::SeqCst);
    let t = Instant::now();
    let r = client.read("k", Duration::from_secs(5));
    assert!(matches!(r, Err(Error::Cancelled(_))), "{r:?}");
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    rec.wait_for(T, "timeout", |e| {
        matches!(
            e,
            Event::Error {
                kind: ErrorKind::Timeout,
                ..
            }
        )
    });
    peer.state.mute.store(false, Ordering::SeqCst);
    authenticated(&rec, 2);
    assert_eq!(client.read("k", T).unwrap(), None);
}

#[test]
fn a_stalled_handshake_times_out_and_disconnect_interrupts_it() {
    // Accepts TCP connections and never answers the upgrade.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let held = std::thread::spawn(move || {
        let mut conns = Vec::new();
        for c in listener.incoming().take(3) {
            conns.push(c.unwrap());
        }
        std::thread::sleep(Duration::from_secs(2));
    });
    let config = config(&format!("ws://{addr}")).timeouts(
        Duration::from_secs(5),
        Duration::from_millis(150),
        T,
    );
    let (client, rec) = start_client(config);
    assert_timeout_then_disconnect_interrupts(&client, &rec, T, "handshake");
    drop(held);
}

/// A listener whose accept queue is full: the kernel drops further SYNs, so a connect to it
/// stays pending (the SYN is retried for seconds) instead of failing.
fn full_listener() -> (
    socket2::Socket,
    Vec<std::net::TcpStream>,
    std::net::SocketAddr,
) {
    use socket2::{Domain, Socket, Type};
    let s = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    s.bind(
        &"127.0.0.1:0"
            .parse::<std::net::SocketAddr>()
            .unwrap()
            .into(),
    )
    .unwrap();
    s.listen(0).unwrap();
    let addr = s.local_addr().unwrap().as_socket().unwrap();
    // Fill the queue until a connect no longer completes: from then on SYNs are dropped.
    let mut held = Vec::new();
    loop {
        match std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)) {
            Ok(c) => held.push(c),
            Err(_) => break,
        }
        assert!(held.len() < 64, "the accept queue never filled");
    }
    (s, held, addr)
}

#[test]
fn a_stalled_tcp_connect_times_out_and_disconnect_interrupts_it() {
    let (_listener, _held, addr) = full_listener();
    let config = config(&format!("ws://{addr}")).timeouts(
        Duration::from_millis(200),
        Duration::from_secs(5),
        T,
    );
    let (client, rec) = start_client(config);
    assert_timeout_then_disconnect_interrupts(&client, &rec, T, "connect");
}

#[test]
fn ipv6_endpoints() {
    let Ok(listener) = std::net::TcpListener::bind("[::1]:0") else {
        eprintln!("no IPv6 loopback on this machine: skipped");
        return;
    };
    let peer = Peer::bound(listener, PeerOptions::default());
    let (client, rec) = start_client(config(&format!("ws://[::1]:{}", peer.addr.port())));
    authenticated(&rec, 1);
    publish_acked(&client, &rec, "c", &json!(6), "published over IPv6");
}

#[test]
fn a_listener_may_call_the_client_through_a_weak_handle() {
    let peer = Peer::start();
    let rec = Arc::new(Recorder::default());
    let slot: Arc<std::sync::Mutex<Option<cobra::WeakClient>>> = Arc::default();
    let (r2, s2) = (rec.clone(), slot.clone());
    let listener = Arc::new(move |e: &Event| {
        r2.events.lock().unwrap().push(e.clone());
        if matches!(e, Event::Authenticated)
            && let Some(client) = s2.lock().unwrap().as_ref().and_then(|w| w.upgrade())
        {
            // Re-entrant calls from the engine thread: queueing, subscribing, state.
            client.publish("c", &json!("from the listener")).unwrap();
            client
                .subscribe(SubscribeOptions::new("from-listener"))
                .unwrap();
            assert_eq!(client.state(), State::Connected);
        }
    });
    let client = Client::new(config(&peer.url()), Some(listener)).unwrap();
    *slot.lock().unwrap() = Some(client.downgrade());
    client.connect().unwrap();
    rec.wait_for(T, "published from the listener", |e| {
        matches!(e, Event::Published { .. })
    });
    rec.wait_for(T, "subscribed from the listener", |e| {
        matches!(e, Event::Subscribed { .. })
    });
    drop(client);
    assert!(
        slot.lock().unwrap().as_ref().unwrap().upgrade().is_none(),
        "the weak handle does not keep it alive"
    );
}

#[test]
fn a_large_message_completes_with_no_other_traffic() {
    // Regression: once a batch of fragments of a > 1 MiB message fit entirely in the socket, no
    // writable edge came and the engine slept with the rest unsent until the next heartbeat.
    let peer = Peer::with(PeerOptions {
        deflate: false,
        wrap: None,
    });
    let (client, rec) = start_client(config(&peer.url()).ping_interval(Duration::ZERO));
    authenticated(&rec, 1);
    let big = json!("y".repeat(3 << 20));
    let id = client.publish("big", &big).unwrap();
    rec.wait_for(
        T,
        "the large message's ack",
        |e| matches!(e, Event::Published { id: acked } if *acked == id),
    );
    assert_eq!(peer.state.published.lock().unwrap()[0].1, big);
}
