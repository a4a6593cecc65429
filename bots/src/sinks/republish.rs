//! `cobra`: republish each event, intact, to a channel of the same or another broker.
//!
//! A batch is confirmed when the broker acknowledged every message of it (`rtm/publish/ok`). The
//! SDK re-sends unacknowledged messages after a reconnect by itself, so a retried batch is not
//! published again: the sink keeps waiting for the acks of the messages already handed over.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cobra::{Client, Event, PublishId};
use crossbeam_channel::{Receiver, Sender};

use crate::sink::{Item, Sink, SinkError, Skips};

/// The republishing sink.
pub struct RepublishSink {
    client: Client,
    acks: Receiver<(PublishId, Option<String>)>,
    channel: String,
    pending: HashSet<PublishId>,
    ack_timeout: Duration,
}

impl RepublishSink {
    /// Connects with `config` (the destination's endpoint and credentials) and republishes to
    /// `channel`. The SDK's publish queue must hold a batch: keep `--batch-size` below its
    /// `max_queued_messages` (10,000 by default).
    pub fn new(config: cobra::Config, channel: impl Into<String>) -> Result<Self, SinkError> {
        let (tx, rx): (Sender<_>, Receiver<_>) = crossbeam_channel::unbounded();
        // Only acks and drops are kept; there are never more than the messages of one batch.
        let listener = Arc::new(move |e: &Event| match e {
            Event::Published { id } => {
                let _ = tx.send((*id, None));
            }
            Event::PublishDropped { id, reason } => {
                let _ = tx.send((*id, Some(reason.clone())));
            }
            _ => {}
        });
        let client = Client::new(config, Some(listener))
            .map_err(|e| SinkError::Fatal(format!("destination: {e}")))?;
        client
            .connect()
            .map_err(|e| SinkError::Fatal(format!("destination: {e}")))?;
        Ok(Self {
            client,
            acks: rx,
            channel: channel.into(),
            pending: HashSet::new(),
            ack_timeout: Duration::from_secs(10),
        })
    }
}

impl Sink for RepublishSink {
    fn name(&self) -> &str {
        "cobra"
    }

    fn send(&mut self, batch: &[Item], skips: &Skips) -> Result<(), SinkError> {
        if self.pending.is_empty() {
            for item in batch {
                match self.client.publish_raw(&self.channel, item.json()) {
                    Ok(id) => {
                        self.pending.insert(id);
                    }
                    Err(e) => skips.skip("cobra", e),
                }
            }
        }
        let deadline = Instant::now() + self.ack_timeout;
        while !self.pending.is_empty() {
            match self.acks.recv_deadline(deadline) {
                Ok((id, None)) => {
                    self.pending.remove(&id);
                }
                Ok((id, Some(reason))) => {
                    if self.pending.remove(&id) {
                        skips.skip("cobra", format!("the destination refused it: {reason}"));
                    }
                }
                Err(_) => {
                    return Err(SinkError::retry(format!(
                        "{} publishes not acknowledged within {:?}",
                        self.pending.len(),
                        self.ack_timeout
                    )));
                }
            }
        }
        Ok(())
    }
}
