//! Draining a server: readiness fails at once, upgrades are refused (HTTP 503, so a load
//! balancer that raced the readiness probe retries elsewhere), and the connected clients are
//! closed with [`CLOSE_DRAIN`] in random order, spread evenly over the drain window, so they
//! reconnect to the other servers a few at a time instead of in one herd.
//!
//! A connection closed this way first answers the publishes it already read (see
//! `conn::run_session`): nothing acknowledged is lost, and the SDK resends what was not
//! acknowledged.

use std::sync::Arc;
use std::time::Duration;

use rand::seq::SliceRandom;

use crate::broker::{ADMIN_APPKEY, Broker, CLOSE_DRAIN};

/// Share of the window over which the closes are spread: the rest leaves the last clients time
/// to get their acks and close before the window ends.
const SPREAD_SHARE: f64 = 0.8;

/// A request to the server's accept loop (stopping at once has a channel of its own).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    /// Drain over `window`; with `then_stop`, the server stops once empty or at the window's
    /// end (otherwise it stays up, not ready: lame duck).
    Drain {
        /// The drain window.
        window: Duration,
        /// Stop once drained.
        then_stop: bool,
    },
}

/// Closes every connection of `broker` with [`CLOSE_DRAIN`], in random order, evenly spread
/// over [`SPREAD_SHARE`] of `window`; connections that registered meanwhile (an upgrade
/// decided just before the drain began) are closed at the end of the spread.
pub async fn close_spread(broker: Arc<Broker>, window: Duration) {
    let mut ids = broker.connection_ids(ADMIN_APPKEY);
    ids.shuffle(&mut rand::rng());
    let spread = window.mul_f64(SPREAD_SHARE);
    let start = tokio::time::Instant::now();
    let n = ids.len().max(1) as f64;
    for (i, id) in ids.iter().enumerate() {
        tokio::time::sleep_until(start + spread.mul_f64(i as f64 / n)).await;
        broker.close_connection(ADMIN_APPKEY, id, CLOSE_DRAIN);
    }
    tokio::time::sleep_until(start + spread).await;
    broker.close_all(CLOSE_DRAIN);
}
