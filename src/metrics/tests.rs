use super::*;
use serde_json::json;
use std::sync::Mutex;

type Sent = Arc<Mutex<Vec<(Vec<String>, String)>>>;

/// Records what the publisher hands over (the client itself is exercised in the integration tests).
#[derive(Clone, Default)]
struct Recorder {
    sent: Sent,
    fail: bool,
}

impl Publish for Recorder {
    fn publish_raw(&self, channels: &[&str], message: &str) -> Result<PublishId, Error> {
        if self.fail {
            return Err(Error::Shutdown);
        }
        let mut sent = self.sent.lock().unwrap();
        sent.push((
            channels.iter().map(|c| c.to_string()).collect(),
            message.to_owned(),
        ));
        Ok(sent.len() as u64)
    }
}

impl Recorder {
    fn messages(&self) -> Vec<(Vec<String>, Value)> {
        let sent = self.sent.lock().unwrap();
        sent.iter()
            .map(|(c, m)| (c.clone(), serde_json::from_str(m).unwrap()))
            .collect()
    }
}

fn publisher() -> (MetricsPublisher, Recorder) {
    let rec = Recorder::default();
    (MetricsPublisher::with_sink(rec.clone(), "sms_metrics"), rec)
}

#[test]
fn push_publishes_the_envelope_to_the_channel_and_the_id() {
    let (p, rec) = publisher();
    let mut device = Map::new();
    device.insert("game".into(), json!("wiso"));
    device.insert("os_name".into(), json!("Android"));
    p.set_device_attributes(device);
    p.set_device_attribute("app_version", json!("3.25"));
    let before = now_ms();
    assert_eq!(
        p.push("engine_fps_id", &json!({"fps": 30})),
        Ok(PushOutcome::Published { publish_id: 1 })
    );
    assert_eq!(
        p.push("engine_fps_id", &json!({"fps": 29})),
        Ok(PushOutcome::Published { publish_id: 2 })
    );
    let after = now_ms();

    let msgs = rec.messages();
    assert_eq!(msgs.len(), 2);
    let (channels, m) = &msgs[0];
    assert_eq!(channels, &["sms_metrics", "engine_fps_id"]);
    assert_eq!(m["id"], "engine_fps_id");
    assert_eq!(m["version"], 1);
    assert_eq!(m["data"], json!({"fps": 30}));
    assert_eq!(
        m["device"],
        json!({"game": "wiso", "os_name": "Android", "app_version": "3.25"})
    );
    assert_eq!(m["per_id_counter"], 1);
    assert_eq!(msgs[1].1["per_id_counter"], 2);
    let ts = m["timestamp"].as_u64().unwrap();
    assert!(before <= ts && ts <= after);
    let session = m["session"].as_str().unwrap();
    assert_eq!(session.len(), 32);
    assert!(session.bytes().all(|b| b.is_ascii_hexdigit()));
    assert_eq!(session, p.session());
    assert_eq!(
        p.stats(),
        MetricsStats {
            published: 2,
            ..MetricsStats::default()
        }
    );
}

#[test]
fn push_raw_embeds_json_text_and_refuses_garbage() {
    let (p, rec) = publisher();
    assert!(matches!(
        p.push_raw("a", r#"{"fps": 30}"#),
        Ok(PushOutcome::Published { .. })
    ));
    assert_eq!(rec.messages()[0].1["data"], json!({"fps": 30}));
    assert_eq!(rec.messages()[0].1["per_id_counter"], 1);
    assert!(matches!(
        p.push_raw("a", "{nope"),
        Err(Error::InvalidArgument(_))
    ));
    assert_eq!(rec.messages().len(), 1);
}

#[test]
fn sessions_are_random_and_settable() {
    let (a, rec) = publisher();
    let (b, _) = publisher();
    assert_ne!(a.session(), b.session());
    a.set_session("my-session");
    a.push("x", &json!(1)).unwrap();
    assert_eq!(rec.messages()[0].1["session"], "my-session");
}

#[test]
fn an_id_equal_to_the_channel_is_published_once() {
    let (p, rec) = publisher();
    p.push("sms_metrics", &json!({})).unwrap();
    assert_eq!(rec.messages()[0].0, vec!["sms_metrics"]);
}

#[test]
fn disabled_and_blacklisted_events_are_dropped_and_counted() {
    let (p, rec) = publisher();
    p.enable(false);
    assert_eq!(p.push("a", &json!(1)), Ok(PushOutcome::Disabled));
    p.enable(true);
    p.set_blacklist(["b", "c"]);
    assert_eq!(p.push("b", &json!(1)), Ok(PushOutcome::Blacklisted));
    assert!(matches!(
        p.push("a", &json!(1)),
        Ok(PushOutcome::Published { .. })
    ));
    p.set_blacklist(Vec::<String>::new());
    assert!(matches!(
        p.push("b", &json!(1)),
        Ok(PushOutcome::Published { .. })
    ));
    assert_eq!(rec.messages().len(), 2);
    assert_eq!(
        rec.messages()[1].1["per_id_counter"],
        1,
        "dropped events are not counted"
    );
    assert_eq!(
        p.stats(),
        MetricsStats {
            published: 2,
            disabled: 1,
            blacklisted: 1,
            ..MetricsStats::default()
        }
    );
}

#[test]
fn rate_control_drops_events_per_id() {
    let (p, rec) = publisher();
    p.set_rate_control([("fps", 3600.0), ("bad", f64::NAN), ("neg", -1.0)]);
    assert!(matches!(
        p.push("fps", &json!(1)),
        Ok(PushOutcome::Published { .. })
    ));
    assert_eq!(p.push("fps", &json!(2)), Ok(PushOutcome::RateLimited));
    for id in ["mem", "bad", "neg"] {
        for _ in 0..3 {
            assert!(
                matches!(p.push(id, &json!(1)), Ok(PushOutcome::Published { .. })),
                "{id}"
            );
        }
    }
    assert_eq!(p.stats().rate_limited, 1);
    assert_eq!(rec.messages().len(), 10);
    p.set_rate_control(Vec::<(String, f64)>::new());
    assert!(matches!(
        p.push("fps", &json!(3)),
        Ok(PushOutcome::Published { .. })
    ));
}

#[test]
fn sink_failures_are_returned_and_counted() {
    let p = MetricsPublisher::with_sink(
        Recorder {
            fail: true,
            ..Recorder::default()
        },
        "c",
    );
    assert_eq!(p.push("a", &json!(1)), Err(Error::Shutdown));
    assert_eq!(p.stats().failed, 1);
}

#[test]
fn counters_are_exact_under_concurrent_pushes() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<MetricsPublisher>();

    let (p, rec) = publisher();
    let p = Arc::new(p);
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let p = p.clone();
            std::thread::spawn(move || {
                for i in 0..500 {
                    let id = ["a", "b", "c", "d"][(t + i) % 4];
                    p.push(id, &json!({"t": t, "i": i})).unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(p.stats().published, 4000);
    let mut per_id: HashMap<String, Vec<u64>> = HashMap::new();
    for (_, m) in rec.messages() {
        per_id
            .entry(m["id"].as_str().unwrap().to_owned())
            .or_default()
            .push(m["per_id_counter"].as_u64().unwrap());
    }
    for (id, mut counters) in per_id {
        counters.sort_unstable();
        assert_eq!(counters, (1..=1000).collect::<Vec<_>>(), "{id}");
    }
}
