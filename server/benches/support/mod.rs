//! What the criterion benches of the broker share: a frame sink, an embedded broker, the runtime
//! and an authenticated session, through the real protocol code minus the sockets.

use std::sync::Arc;

use cobra_server::broker::{Broker, BrokerSettings, PduSink, Session};
use cobra_server::config::AppsConfig;
use cobra_wire::ws::{Codec, Role};
use serde_json::{Value, json};

pub(crate) const SECRET: &str = "0123456789abcdef0123456789abcdef";

/// Encodes every PDU into one frame buffer, as the connection writer does.
pub(crate) struct Frames {
    pub codec: Codec,
    pub out: Vec<u8>,
    pub last: String,
}

impl PduSink for Frames {
    fn send(&mut self, pdu: &str) {
        self.codec.encode_text(pdu, &mut self.out);
        self.last.clear();
        self.last.push_str(pdu);
    }
}

pub(crate) fn frames() -> Frames {
    Frames {
        codec: Codec::new(Role::Server, cobra_wire::Limits::default(), None),
        out: Vec::new(),
        last: String::new(),
    }
}

pub(crate) async fn authed_session(broker: &Arc<Broker>) -> Session {
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

/// The runtime the sessions run on: one thread, as one connection's task runs.
pub(crate) fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a current-thread runtime")
}

/// An embedded broker with app `app` (role `r`, publish + subscribe) keeping `max_length`
/// messages per channel, without the periodic stats task.
pub(crate) fn broker(max_length: usize) -> Arc<Broker> {
    let yaml = format!(
        "apps:\n  app:\n    roles:\n      r: {{secret: {SECRET}, permissions: [publish, subscribe]}}\nchannel_max_length: {max_length}\n"
    );
    let apps = AppsConfig::from_yaml(&yaml).expect("bench apps config");
    let settings = BrokerSettings {
        stats_interval: None,
        ..BrokerSettings::default()
    };
    Broker::embedded(settings, apps)
}
