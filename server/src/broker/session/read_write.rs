//! `rtm/read`, `rtm/write` and `rtm/delete`.

use std::sync::atomic::Ordering;

use cobra_wire::Position;
use cobra_wire::pdu::error_code;
use cobra_wire::pdu::lenient::{ChannelBody, ReadBody, WriteBody};
use serde_json::value::RawValue;

use super::json::{check_message, parse_body};
use super::{Refusal, Session};
use crate::broker::stats::RoleCounters;

impl Session {
    pub(super) async fn read(
        &mut self,
        body: Option<&RawValue>,
        counters: &RoleCounters,
    ) -> Result<Option<String>, Refusal> {
        let b: ReadBody = parse_body(body)?;
        let channel = required_channel(b.channel)?;
        let at = match b.position.as_deref() {
            None => None,
            Some(p) => Some(p.parse::<Position>().map_err(|_| {
                Refusal::new(
                    error_code::INVALID_POSITION,
                    format!("position {p:?} is not of the form <ms>-<seq>"),
                )
            })?),
        };
        let key = self.key(&channel)?;
        let value = self.broker.backend.read(&key, at).await?;
        counters.reads_count.fetch_add(1, Ordering::Relaxed);
        counters.reads_bytes.fetch_add(
            value.as_ref().map_or(0, |v| v.len()) as u64,
            Ordering::Relaxed,
        );
        Ok(Some(format!(
            r#"{{"message":{}}}"#,
            value.as_deref().unwrap_or("null")
        )))
    }

    pub(super) async fn write(
        &mut self,
        body: Option<&RawValue>,
        counters: &RoleCounters,
    ) -> Result<Option<String>, Refusal> {
        let b: WriteBody = parse_body(body)?;
        let channel = required_channel(b.channel)?;
        let message = b
            .message
            .ok_or_else(|| Refusal::new(error_code::MISSING_MESSAGE, "body.message is missing"))?;
        check_message(message)?;
        let key = self.key(&channel)?;
        let pos = self
            .broker
            .backend
            .write(&key, message.get().into())
            .await?;
        counters.writes_count.fetch_add(1, Ordering::Relaxed);
        counters
            .writes_bytes
            .fetch_add(message.get().len() as u64, Ordering::Relaxed);
        Ok(Some(format!(r#"{{"stream":"{pos}","position":"{pos}"}}"#)))
    }

    pub(super) async fn delete(
        &mut self,
        body: Option<&RawValue>,
    ) -> Result<Option<String>, Refusal> {
        let b: ChannelBody = parse_body(body)?;
        let channel = required_channel(b.channel)?;
        let key = self.key(&channel)?;
        self.broker.backend.delete(&key).await?;
        Ok(Some("{}".into()))
    }
}

/// The request's `body.channel`, refused when it is missing.
fn required_channel(channel: Option<String>) -> Result<String, Refusal> {
    channel.ok_or_else(|| Refusal::new(error_code::MISSING_CHANNEL, "body.channel is missing"))
}
