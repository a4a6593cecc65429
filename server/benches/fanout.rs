//! The broker's fan-out of one message to 1,000 subscribers, through the real protocol code
//! minus the sockets: a publisher session handles an `rtm/publish` PDU, the embedded backend
//! offers it to 1,000 subscriber mailboxes, and each subscriber session builds its
//! `rtm/subscription/data` PDU and encodes it as a WebSocket frame.

use std::sync::Arc;
use std::time::Instant;

use cobra_server::broker::{Broker, BrokerSettings, PduSink, Session};
use cobra_server::config::AppsConfig;
use cobra_wire::ws::{Codec, Role};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use serde_json::{Value, json};

const SUBSCRIBERS: usize = 1000;
const SECRET: &str = "0123456789abcdef0123456789abcdef";

/// Encodes every PDU into one frame buffer, as the connection writer does.
struct Frames {
    codec: Codec,
    out: Vec<u8>,
    last: String,
}

impl PduSink for Frames {
    fn send(&mut self, pdu: &str) {
        self.codec.encode_text(pdu, &mut self.out);
        self.last.clear();
        self.last.push_str(pdu);
    }
}

fn frames() -> Frames {
    Frames {
        codec: Codec::new(Role::Server, cobra_wire::Limits::default(), None),
        out: Vec::new(),
        last: String::new(),
    }
}

async fn authed_session(broker: &Arc<Broker>) -> Session {
    let (id, mailbox) = broker.register("app");
    let mut s = Session::new(Arc::clone(broker), id, mailbox, "app", "bench");
    let mut f = frames();
    s.on_text(
        r#"{"action":"auth/handshake","id":1,"body":{"method":"role_secret","data":{"role":"r"}}}"#,
        &mut f,
    )
    .await;
    let hs: Value = serde_json::from_str(&f.last).unwrap();
    let nonce = hs["body"]["data"]["nonce"].as_str().unwrap();
    let hash = cobra_wire::auth::role_secret_hash(SECRET, nonce);
    let auth = json!({"action": "auth/authenticate", "id": 2, "body": {"method": "role_secret", "credentials": {"hash": hash}}});
    s.on_text(&auth.to_string(), &mut f).await;
    assert!(s.is_authenticated(), "{}", f.last);
    s
}

fn fanout(c: &mut Criterion) {
    let yaml = format!(
        "apps:\n  app:\n    roles:\n      r: {{secret: {SECRET}, permissions: [publish, subscribe]}}\nchannel_max_length: 100\n"
    );
    let apps = AppsConfig::from_yaml(&yaml).unwrap();
    let settings = BrokerSettings {
        stats_interval: None,
        ..BrokerSettings::default()
    };
    let broker = Broker::embedded(settings, apps);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (mut publisher, mut subscribers) = rt.block_on(async {
        let p = authed_session(&broker).await;
        let mut subs = Vec::with_capacity(SUBSCRIBERS);
        for _ in 0..SUBSCRIBERS {
            let mut s = authed_session(&broker).await;
            let mut f = frames();
            s.on_text(
                r#"{"action":"rtm/subscribe","id":3,"body":{"channel":"engine_fps_id"}}"#,
                &mut f,
            )
            .await;
            subs.push((s, frames()));
        }
        (p, subs)
    });
    let event = json!({"id": "engine_fps_id", "session": "4dacbafefc214578aa3f8c1d2975ec92", "timestamp": 1536270895637u64,
        "version": 1, "per_id_counter": 12, "device": {"app_version": "3.25", "game": "wiso", "model": "iPhone",
        "os_language": "en", "os_name": "iOS", "os_version": "10.3.3"}, "data": {"fps": 30}});
    let publish = json!({"action": "rtm/publish", "id": 7, "body": {"channel": "engine_fps_id", "message": event}}).to_string();
    let mut g = c.benchmark_group("fanout");
    g.throughput(Throughput::Elements(SUBSCRIBERS as u64));
    g.bench_function("publish_to_1000_subscribers", |b| {
        b.iter_custom(|iters| {
            let mut pf = frames();
            let start = Instant::now();
            for _ in 0..iters {
                rt.block_on(publisher.on_text(&publish, &mut pf));
                pf.out.clear();
                for (s, f) in subscribers.iter_mut() {
                    s.pump(f, std::time::Instant::now());
                    f.out.clear();
                }
            }
            start.elapsed()
        })
    });
    g.finish();
}

criterion_group!(benches, fanout);
criterion_main!(benches);
