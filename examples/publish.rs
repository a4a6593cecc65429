//! Publish telemetry events and wait for every acknowledgement.
//!
//! ```text
//! cargo run --example publish -- --endpoint ws://127.0.0.1:8765 --appkey _pubsub \
//!     --rolename pubsub --rolesecret SECRET --channel engine_fps_id --count 100
//! ```
//! (`cobra run` prints the `_pubsub` credentials on its first start.)

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use cobra::{Client, Event};
use serde_json::json;

mod common;
use common::arg;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let config = common::config();
    let channel = arg("--channel", "engine_fps_id");
    let count: usize = arg("--count", "10").parse()?;

    let acked = Arc::new(AtomicUsize::new(0));
    let a = acked.clone();
    let listener = Arc::new(move |e: &Event| match e {
        Event::Published { .. } => {
            a.fetch_add(1, Ordering::Relaxed);
        }
        Event::Error { kind, message, .. } => eprintln!("error {kind:?}: {message}"),
        Event::PublishDropped { id, reason } => eprintln!("dropped {id}: {reason}"),
        Event::Authenticated => eprintln!("authenticated"),
        _ => {}
    });
    let client = Client::new(config, Some(listener))?;
    client.connect()?;
    let session = format!("{:032x}", rand_session());
    for i in 0..count {
        let timestamp = SystemTime::now().duration_since(UNIX_EPOCH)?.as_millis() as u64;
        let event = json!({
            "id": channel, "session": session, "timestamp": timestamp, "version": 1,
            "per_id_counter": i, "device": {"game": "example", "os_name": std::env::consts::OS},
            "data": {"fps": 30 + (i % 30)}
        });
        client.publish(&channel, &event)?;
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while acked.load(Ordering::Relaxed) < count {
        if Instant::now() > deadline {
            return Err(format!(
                "only {} of {count} acknowledged",
                acked.load(Ordering::Relaxed)
            )
            .into());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    println!("{count} events published and acknowledged on {channel}");
    client.disconnect()?;
    Ok(())
}

fn rand_session() -> u128 {
    let t = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    t ^ (u128::from(std::process::id()) << 64)
}
