//! The bot loop: subscription → bounded queue → rate limit → sink (with retries) → checkpoint.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use cobra::{Client, Event, RawMessage, SubscribeOptions};

use crate::checkpoint::{Checkpoint, parse_position};
use crate::config::BotConfig;
use crate::queue::{EventQueue, Pdu};
use crate::ratelimit::RateLimit;
use crate::retry::Backoff;
use crate::sink::{Item, Sink, SinkError, Skips};
use crate::stats::{Snapshot, Stats, StatsLine, serve_metrics};

/// Why a bot stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum BotError {
    /// Bad options.
    #[error("{0}")]
    Config(String),
    /// The checkpoint file could not be read or written.
    #[error("checkpoint: {0}")]
    Checkpoint(std::io::Error),
    /// The SDK refused the client or the subscription.
    #[error("cobra: {0}")]
    Client(#[from] cobra::Error),
    /// The broker refused or ended the subscription.
    #[error("subscription refused by the broker: {error}: {reason}")]
    Subscription {
        /// The broker's error code (`expired_position`, `out_of_sync`, ...).
        error: String,
        /// The broker's reason.
        reason: String,
    },
    /// The sink failed in a way retries cannot fix.
    #[error("sink {sink}: {reason}")]
    Sink {
        /// The sink.
        sink: String,
        /// What failed.
        reason: String,
    },
}

/// A bot: an SDK client config, the runtime options and the shared counters.
pub struct Bot {
    client_config: cobra::Config,
    config: BotConfig,
    stats: Arc<Stats>,
    stop: Arc<AtomicBool>,
}

impl Bot {
    /// A bot connecting with `client_config` (its `pong_timeout` is set from
    /// [`BotConfig::heartbeat_timeout`]).
    pub fn new(mut client_config: cobra::Config, config: BotConfig) -> Result<Self, BotError> {
        config.validate().map_err(BotError::Config)?;
        client_config.pong_timeout = config.heartbeat_timeout;
        Ok(Self {
            client_config,
            config,
            stats: Arc::new(Stats::default()),
            stop: Arc::new(AtomicBool::new(false)),
        })
    }

    /// The counters, live.
    pub fn stats(&self) -> Arc<Stats> {
        self.stats.clone()
    }

    /// Set it to stop the bot (from a signal handler or another thread); the batch being sent is
    /// finished or abandoned unconfirmed, never half-checkpointed.
    pub fn stop_flag(&self) -> Arc<AtomicBool> {
        self.stop.clone()
    }

    /// Runs until stopped, `--count` reached, the subscription refused or a fatal sink error.
    /// Returns the final counters.
    pub fn run(self, sink: &mut dyn Sink) -> Result<Snapshot, BotError> {
        let cfg = &self.config;
        let checkpoint = cfg.checkpoint.as_ref().map(Checkpoint::new);
        let resume = match &checkpoint {
            Some(cp) => cp.load().map_err(BotError::Checkpoint)?,
            None => None,
        };
        let start = resume.clone().or_else(|| cfg.position.clone());
        if let Some(pos) = &resume {
            log::info!("resuming after checkpointed position {pos}");
        }

        let queue = Arc::new(EventQueue::new(cfg.queue_size));
        let sub_error: Arc<Mutex<Option<BotError>>> = Arc::default();
        // The position of the last PDU queued, and whether the broker dropped us for falling
        // behind (`out_of_sync`): then the pump resubscribes right after that position, and the
        // broker's history fills the gap.
        let last_received: Arc<Mutex<Option<String>>> = Arc::default();
        let resubscribe = Arc::new(AtomicBool::new(false));
        let listener = {
            let queue = queue.clone();
            let stats = self.stats.clone();
            let sub_error = sub_error.clone();
            let stop = self.stop.clone();
            let last_received = last_received.clone();
            let resubscribe = resubscribe.clone();
            let authenticated_once = AtomicBool::new(false);
            // One PDU's events into the queue, with their position (shared, one allocation).
            let enqueue = {
                let queue = queue.clone();
                let stats = stats.clone();
                move |position: &Option<String>, messages: &mut dyn Iterator<Item = RawMessage>| {
                    let pos: Option<Arc<str>> = position.as_deref().map(Arc::from);
                    let items: Vec<Item> = messages.map(|m| Item::raw(m, pos.clone())).collect();
                    if let Some(p) = position {
                        *last_received.lock().unwrap_or_else(|e| e.into_inner()) = Some(p.clone());
                    }
                    stats
                        .received
                        .fetch_add(items.len() as u64, Ordering::Relaxed);
                    // Blocks while the queue is full: back-pressure to the broker.
                    queue.push(Pdu { items });
                }
            };
            Arc::new(move |e: &Event| match e {
                Event::SubscriptionRawData {
                    position, messages, ..
                } => enqueue(position, &mut messages.iter().cloned()),
                // Not asked for (the bot subscribes raw); handled the same should that change.
                Event::SubscriptionData {
                    position, messages, ..
                } => enqueue(position, &mut messages.iter().map(RawMessage::from_value)),
                Event::SubscriptionError { error, .. } if error == "out_of_sync" => {
                    stats.resubscribes.fetch_add(1, Ordering::Relaxed);
                    resubscribe.store(true, Ordering::Release);
                }
                Event::SubscriptionError { error, reason, .. } => {
                    let mut slot = sub_error.lock().unwrap_or_else(|e| e.into_inner());
                    *slot = Some(BotError::Subscription {
                        error: error.clone(),
                        reason: reason.clone(),
                    });
                    stop.store(true, Ordering::Release);
                    queue.close();
                }
                Event::Authenticated if authenticated_once.swap(true, Ordering::Relaxed) => {
                    stats.reconnects.fetch_add(1, Ordering::Relaxed);
                }
                Event::Error { message, .. } => log::warn!("cobra connection: {message}"),
                _ => {}
            }) as Arc<dyn cobra::Listener>
        };
        let client = Client::new(self.client_config.clone(), Some(listener))?;
        // Raw: each event stays the JSON text of its PDU; sinks look up only the fields they need.
        let mut opts = SubscribeOptions::new(cfg.channel.clone()).raw(true);
        if let Some(sql) = &cfg.stream_sql {
            opts = opts.filter(sql.clone());
        }
        if let Some(p) = &start {
            opts = opts.position(p.clone());
        }
        if let Some(n) = cfg.pdu_batch_size {
            opts = opts.batch_size(n);
        }
        client.connect()?;
        client.subscribe(opts.clone())?;
        let resubscribe_now = || {
            if !resubscribe.swap(false, Ordering::AcqRel) {
                return;
            }
            let mut o = opts.clone();
            let last = last_received
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone();
            if let Some(p) = last.or_else(|| start.clone()) {
                o = o.position(p);
            }
            let n = self.stats.resubscribes.load(Ordering::Relaxed);
            if n.is_power_of_two() {
                log::info!(
                    "fell behind the broker (out_of_sync, {n} times so far): resubscribing from {:?}",
                    o.position
                );
            }
            if let Err(e) = client.subscribe(o) {
                log::warn!("resubscribing: {e}; trying again");
                resubscribe.store(true, Ordering::Release);
            }
        };

        let metrics = match cfg.metrics_port {
            Some(port) => Some(
                serve_metrics(
                    &cfg.metrics_host,
                    port,
                    self.stats.clone(),
                    sink.name().to_owned(),
                    self.stop.clone(),
                )
                .map_err(BotError::Config)?,
            ),
            None => None,
        };

        let result = self.pump(sink, &queue, checkpoint.as_ref(), &resubscribe_now);
        self.stop.store(true, Ordering::Release);
        queue.close();
        drop(client);
        if let Some(t) = metrics {
            let _ = t.join();
        }
        if let Some(e) = sub_error.lock().unwrap_or_else(|e| e.into_inner()).take() {
            return Err(e);
        }
        result.map(|()| self.stats.snapshot())
    }

    fn pump(
        &self,
        sink: &mut dyn Sink,
        queue: &EventQueue,
        checkpoint: Option<&Checkpoint>,
        resubscribe: &dyn Fn(),
    ) -> Result<(), BotError> {
        let cfg = &self.config;
        let stats = &*self.stats;
        let skips = Skips::default();
        let mut limit = cfg.max_events_per_minute.map(RateLimit::per_minute);
        let mut backoff = Backoff::new(cfg.retry_min, cfg.retry_max);
        let mut line = StatsLine::new(cfg.stats_interval);
        let mut batch: Vec<Item> = Vec::with_capacity(cfg.batch_size);
        let mut last_tick = Instant::now();
        let name = sink.name().to_owned();
        while !self.stop.load(Ordering::Acquire) {
            resubscribe();
            batch.clear();
            queue.pop_batch(cfg.batch_size, cfg.batch_wait, &mut batch);
            stats.queued.store(queue.len() as u64, Ordering::Relaxed);
            let mut confirm = batch.last().and_then(|i| i.position.clone());
            if let Some(rl) = limit.as_mut() {
                let now = Instant::now();
                let before = batch.len();
                batch.retain(|_| rl.allow(now));
                stats
                    .dropped
                    .fetch_add((before - batch.len()) as u64, Ordering::Relaxed);
            }
            if let Some(count) = cfg.count {
                let left = count.saturating_sub(stats.sent.load(Ordering::Relaxed)) as usize;
                if batch.len() > left {
                    // Confirm only up to a PDU boundary: the cut event's position is the
                    // checkpoint only if the next one belongs to another PDU.
                    confirm = if batch[left].position == batch[left - 1].position {
                        None
                    } else {
                        batch[left - 1].position.clone()
                    };
                    batch.truncate(left);
                }
            }
            if !batch.is_empty() && !self.deliver(sink, &batch, &skips, &mut backoff)? {
                return Ok(()); // stopped while retrying: nothing confirmed
            }
            stats.sent.fetch_add(batch.len() as u64, Ordering::Relaxed);
            stats.malformed.store(skips.count(), Ordering::Relaxed);
            if let Some(pos) = confirm {
                if let Some(cp) = checkpoint {
                    cp.save(&pos).map_err(BotError::Checkpoint)?;
                }
                if let Some((ms, _)) = parse_position(&pos) {
                    let now = SystemTime::now()
                        .duration_since(UNIX_EPOCH)
                        .map_or(0, |d| d.as_millis() as u64);
                    stats
                        .lag_ms
                        .store(now.saturating_sub(ms), Ordering::Relaxed);
                }
            }
            if last_tick.elapsed() >= Duration::from_millis(100) {
                last_tick = Instant::now();
                if let Err(e) = sink.tick() {
                    match e {
                        SinkError::Fatal(reason) => {
                            return Err(BotError::Sink { sink: name, reason });
                        }
                        SinkError::Retry { reason, .. } => {
                            log::warn!("{name}: {reason}");
                            stats.retried.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            }
            line.maybe_print(stats, &name);
            if cfg
                .count
                .is_some_and(|c| stats.sent.load(Ordering::Relaxed) >= c)
            {
                break;
            }
        }
        Ok(())
    }

    /// Sends until confirmed; false if the bot was stopped meanwhile.
    fn deliver(
        &self,
        sink: &mut dyn Sink,
        batch: &[Item],
        skips: &Skips,
        backoff: &mut Backoff,
    ) -> Result<bool, BotError> {
        loop {
            match sink.send(batch, skips) {
                Ok(()) => {
                    backoff.reset();
                    return Ok(true);
                }
                Err(SinkError::Fatal(reason)) => {
                    return Err(BotError::Sink {
                        sink: sink.name().to_owned(),
                        reason,
                    });
                }
                Err(SinkError::Retry {
                    reason,
                    retry_after,
                }) => {
                    let n = self.stats.retried.fetch_add(1, Ordering::Relaxed) + 1;
                    let wait = backoff.next(retry_after);
                    if n.is_power_of_two() || retry_after.is_some() {
                        log::warn!(
                            "{}: {reason}; retrying in {:.2}s ({n} retries so far)",
                            sink.name(),
                            wait.as_secs_f64()
                        );
                    }
                    let until = Instant::now() + wait;
                    while Instant::now() < until {
                        if self.stop.load(Ordering::Acquire) {
                            return Ok(false);
                        }
                        std::thread::sleep((until - Instant::now()).min(Duration::from_millis(50)));
                    }
                }
            }
        }
    }
}
