//! Subscribe to a channel (optionally through a StreamSQL filter) and print each message.
//!
//! ```text
//! cargo run --example subscribe -- --endpoint ws://127.0.0.1:8765 --appkey _pubsub \
//!     --rolename pubsub --rolesecret SECRET --channel engine_fps_id \
//!     --filter 'select data.fps from `engine_fps_id` where data.fps < 45' --count 10
//! ```

use std::time::Duration;

use cobra::{Client, Event, SubscribeOptions};

mod common;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let config = common::config();
    let channel = common::arg("--channel", "engine_fps_id");
    let count: usize = common::opt("--count")
        .map(|c| c.parse())
        .transpose()?
        .unwrap_or(usize::MAX);

    // No listener: read events from the bounded channel on this thread.
    let client = Client::new(config, None)?;
    let events = client.events();
    client.connect()?;
    let mut options = SubscribeOptions::new(&channel);
    if let Some(filter) = common::opt("--filter") {
        options = options.filter(filter);
    }
    if let Some(position) = common::opt("--position") {
        options = options.position(position);
    }
    client.subscribe(options)?;

    let mut received = 0;
    while received < count {
        match events.recv_timeout(Duration::from_secs(60)) {
            Ok(Event::SubscriptionData { messages, .. }) => {
                for m in messages {
                    println!("{m}");
                    received += 1;
                }
            }
            Ok(Event::Subscribed {
                subscription_id,
                position,
            }) => {
                eprintln!("subscribed {subscription_id} at {position:?}")
            }
            Ok(Event::SubscriptionError { error, reason, .. }) => {
                return Err(format!("{error}: {reason}").into());
            }
            Ok(Event::Error { kind, message, .. }) => {
                eprintln!("error {kind:?}: {message} (retrying)")
            }
            Ok(_) => {}
            Err(_) => return Err("no message for 60 s".into()),
        }
    }
    client.disconnect()?;
    Ok(())
}
