//! `cobra health`: the Python client's end-to-end check. Each step must pass before the next runs:
//! connect and authenticate; write a value; read it back (must match); delete it; read again (must be
//! null); subscribe from `0-0` to a fresh channel with a StreamSQL filter matching only the message about
//! to be published; publish it; receive it (and the publish's ack).

use std::time::Instant;

use cobra::{Event, SubscribeOptions};
use serde_json::{Value, json};

use super::session::{self, Session};
use super::{CliError, HealthArgs};

/// A failed step: its name and why.
#[derive(Debug, thiserror::Error)]
#[error("step '{step}' failed: {reason}")]
pub(super) struct StepFailed {
    /// The step's name.
    pub step: &'static str,
    /// What went wrong.
    pub reason: String,
}

fn step(step: &'static str) -> impl Fn(String) -> StepFailed {
    move |reason| StepFailed { step, reason }
}

fn cli(e: CliError) -> String {
    e.to_string()
}

/// A random UUID (version 4) in its text form.
fn uuid4() -> String {
    let mut b = rand::random::<[u8; 16]>();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

/// Runs every step; the first failure is returned.
pub(super) fn run(args: &HealthArgs) -> Result<(), StepFailed> {
    let session = Session::open_steps(&args.conn, "_health", session::DEFAULT_EVENTS)
        .map_err(|(s, e)| step(s)(cli(e)))?;
    let (client, timeout) = (&session.client, session.timeout);
    let uuid = uuid4();
    let magic = rand::random::<u32>();

    let key = format!("sms_health_check_key_{uuid}");
    let value = json!({"magic": magic, "uuid": uuid});
    client
        .write(&key, &value, timeout)
        .map_err(|e| step("write")(e.to_string()))?;
    match client
        .read(&key, timeout)
        .map_err(|e| step("read")(e.to_string()))?
    {
        Some(v) if v == value => {}
        other => {
            return Err(step("read")(format!(
                "expected {value}, got {}",
                other.unwrap_or(Value::Null)
            )));
        }
    }
    client
        .delete(&key, timeout)
        .map_err(|e| step("delete")(e.to_string()))?;
    match client
        .read(&key, timeout)
        .map_err(|e| step("read after delete")(e.to_string()))?
    {
        None => {}
        Some(v) => return Err(step("read after delete")(format!("expected null, got {v}"))),
    }

    let channel = args
        .channel
        .clone()
        .unwrap_or_else(|| format!("sms_health_check_channel_{}", &uuid[..8]));
    let result = pubsub(&session, &channel, &uuid, magic);
    // Like the Python client, remove the temporary channel's stored value; its history ages out.
    let _ = client.delete(&channel, timeout);
    result
}

/// Subscribes from `0-0` with a filter matching only the message it then publishes, and waits for it.
fn pubsub(session: &Session, channel: &str, uuid: &str, magic: u32) -> Result<(), StepFailed> {
    let (client, timeout) = (&session.client, session.timeout);
    let filter = format!(
        "select magic,device.android_id from `{channel}` where device.game = 'test' \
         AND device.android_id = '{uuid}' AND magic = {magic}"
    );
    let options = SubscribeOptions::new(channel)
        .filter(filter)
        .position("0-0");
    client
        .subscribe(options)
        .map_err(|e| step("subscribe")(e.to_string()))?;
    let deadline = Instant::now() + timeout;
    let timed_out = |what| move |_| step(what)(format!("no answer within {timeout:?}"));
    loop {
        match session
            .events
            .recv_deadline(deadline)
            .map_err(timed_out("subscribe"))?
        {
            Event::Subscribed { .. } => break,
            Event::SubscriptionError { error, reason, .. } => {
                return Err(step("subscribe")(format!("{error}: {reason}")));
            }
            other => session
                .check_connection_event(&other)
                .map_err(|e| step("subscribe")(cli(e)))?,
        }
    }

    let message = json!({"device": {"game": "test", "android_id": uuid}, "magic": magic});
    let publish_id = client
        .publish(channel, &message)
        .map_err(|e| step("publish")(e.to_string()))?;
    let (mut acked, mut received) = (false, false);
    while !(acked && received) {
        let what = if acked { "receive" } else { "publish" };
        match session
            .events
            .recv_deadline(deadline)
            .map_err(timed_out(what))?
        {
            Event::Published { id } if id == publish_id => acked = true,
            Event::PublishDropped { id, reason } if id == publish_id => {
                return Err(step("publish")(reason));
            }
            Event::SubscriptionError { error, reason, .. } => {
                return Err(step("receive")(format!("{error}: {reason}")));
            }
            Event::SubscriptionData { messages, .. } => {
                for m in messages {
                    if m.get("device.android_id").and_then(Value::as_str) != Some(uuid) {
                        return Err(step("receive")(format!("incorrect android_id: {m}")));
                    }
                    if m.get("magic") != Some(&json!(magic)) {
                        return Err(step("receive")(format!("incorrect magic: {m}")));
                    }
                    received = true;
                }
            }
            other => session
                .check_connection_event(&other)
                .map_err(|e| step(what)(cli(e)))?,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn uuid_shape() {
        let u = super::uuid4();
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "4");
        assert!(u.split('-').map(str::len).eq([8, 4, 4, 4, 12]));
    }
}
