//! The server's own work for one `rtm/publish`, minus the sockets: the session parses the PDU,
//! publishes to the embedded backend (no subscriber) and encodes the ack as a WebSocket frame.
//! The bench tool's ~300-byte message throughout (`cobra bench`'s shape: numbers, a nested
//! object, a padding string).

use std::sync::Arc;
use std::time::Instant;

use cobra_server::broker::{Broker, BrokerSettings, PduSink, Session};
use cobra_server::config::AppsConfig;
use cobra_wire::ws::{Codec, Role};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use serde_json::{Value, json};

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

fn publish(c: &mut Criterion) {
    let yaml = format!(
        "apps:\n  app:\n    roles:\n      r: {{secret: {SECRET}, permissions: [publish, subscribe]}}\nchannel_max_length: 1000\n"
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
    let mut publisher = rt.block_on(authed_session(&broker));
    let pad = "x7Kq2".repeat(38);
    let message = format!(
        r#"{{"t":1764315000123456789,"p":3,"s":123456,"k":56,"id":"engine_fps_id","data":{{"fps":36}},"pad":"{pad}"}}"#
    );
    let pdu = format!(
        r#"{{"action":"rtm/publish","id":123456,"body":{{"channel":"bench","message":{message}}}}}"#
    );
    let mut g = c.benchmark_group("publish");
    g.throughput(Throughput::Elements(1));
    g.bench_function("parse_publish_ack_300B", |b| {
        b.iter_custom(|iters| {
            let mut f = frames();
            // One block_on for the whole run: entering the runtime is no part of a publish.
            let elapsed = rt.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    publisher.on_text(&pdu, &mut f).await;
                    f.out.clear();
                }
                start.elapsed()
            });
            assert!(f.last.contains("rtm/publish/ok"), "{}", f.last);
            elapsed
        })
    });
    g.finish();
}

criterion_group!(benches, publish);
criterion_main!(benches);
