//! The queue between the subscription (the SDK's engine thread) and the sink, bounded in events.
//!
//! Policy when full: [`EventQueue::push`] waits for room, which stalls the engine thread, so the
//! bot stops reading its socket and the broker holds the events (back-pressure, then history).
//! Nothing is dropped here. A single PDU larger than the whole capacity is let in when the queue
//! is empty, so it cannot wedge the bot.
//!
//! Wake-ups: a push wakes the waiting sink only once the events queued complete its batch (or the
//! queue is full); otherwise the sink takes what is there when its linger (`BotConfig::batch_wait`,
//! 100 ms by default) ends. A pop wakes a producer only if one waits for room. At
//! a high rate that is one wake-up per batch instead of one (a futex call each side) per PDU.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::sink::Item;

/// One subscription PDU: its messages and the position of its last one.
pub(crate) struct Pdu {
    pub items: Vec<Item>,
}

struct State {
    pdus: VecDeque<Pdu>,
    events: usize,
    /// Producers blocked in `push` (so a pop knows whether to notify).
    producers_waiting: usize,
    /// Events that complete the batch of the sink blocked in `pop_batch` (0: not blocked).
    consumer_wants: usize,
}

pub(crate) struct EventQueue {
    state: Mutex<State>,
    not_full: Condvar,
    not_empty: Condvar,
    capacity: usize,
    closed: AtomicBool,
}

impl EventQueue {
    /// A queue of at most `capacity` events.
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            state: Mutex::new(State {
                pdus: VecDeque::new(),
                events: 0,
                producers_waiting: 0,
                consumer_wants: 0,
            }),
            not_full: Condvar::new(),
            not_empty: Condvar::new(),
            capacity,
            closed: AtomicBool::new(false),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Events queued now.
    pub(crate) fn len(&self) -> usize {
        self.lock().events
    }

    /// Wakes every waiter for good: pushes are refused, pops return what is left.
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::Release);
        let _g = self.lock();
        self.not_full.notify_all();
        self.not_empty.notify_all();
    }

    /// Adds a PDU, waiting while the queue is full. False once closed (the PDU is not queued; the
    /// checkpoint has not moved past it, so it comes again on the next run).
    pub(crate) fn push(&self, pdu: Pdu) -> bool {
        let n = pdu.items.len();
        let mut st = self.lock();
        while st.events > 0 && st.events + n > self.capacity {
            if self.closed.load(Ordering::Acquire) {
                return false;
            }
            // Full: the sink must not linger on a batch it cannot complete.
            if st.consumer_wants > 0 {
                self.not_empty.notify_one();
            }
            st.producers_waiting += 1;
            st = self
                .not_full
                .wait_timeout(st, Duration::from_millis(200))
                .unwrap_or_else(|e| e.into_inner())
                .0;
            st.producers_waiting -= 1;
        }
        if self.closed.load(Ordering::Acquire) {
            return false;
        }
        st.events += n;
        st.pdus.push_back(pdu);
        if st.consumer_wants > 0 && st.events >= st.consumer_wants {
            self.not_empty.notify_one();
        }
        true
    }

    /// Takes whole PDUs until at least `max` events (or the queue is empty), waiting up to `wait`
    /// for the batch to fill.
    pub(crate) fn pop_batch(&self, max: usize, wait: Duration, out: &mut Vec<Item>) {
        let deadline = Instant::now() + wait;
        let mut st = self.lock();
        loop {
            while let Some(pdu) = st.pdus.front() {
                if !out.is_empty() && out.len() + pdu.items.len() > max.max(pdu.items.len()) {
                    break;
                }
                let Some(pdu) = st.pdus.pop_front() else {
                    break;
                };
                st.events -= pdu.items.len();
                out.extend(pdu.items);
                if out.len() >= max {
                    break;
                }
            }
            if st.producers_waiting > 0 {
                self.not_full.notify_all();
            }
            let now = Instant::now();
            if out.len() >= max || now >= deadline || self.closed.load(Ordering::Acquire) {
                return;
            }
            if !st.pdus.is_empty() {
                // The next PDU does not fit in this batch.
                return;
            }
            st.consumer_wants = max - out.len();
            st = self
                .not_empty
                .wait_timeout(st, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
            st.consumer_wants = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn pdu(n: usize, pos: &str) -> Pdu {
        Pdu {
            items: (0..n)
                .map(|i| Item::new(serde_json::json!(i), Some(Arc::from(pos))))
                .collect(),
        }
    }

    #[test]
    fn bounded_in_events_and_whole_pdus() {
        let q = Arc::new(EventQueue::new(5));
        assert!(q.push(pdu(3, "1-0")));
        assert!(q.push(pdu(2, "1-1")));
        let q2 = q.clone();
        let t = std::thread::spawn(move || q2.push(pdu(2, "1-2")));
        std::thread::sleep(Duration::from_millis(50));
        assert!(!t.is_finished(), "push must wait while full");
        let mut out = Vec::new();
        q.pop_batch(4, Duration::from_millis(10), &mut out);
        assert_eq!(
            out.len(),
            3,
            "whole PDUs only: 3 then the 2 would make 5 > 4"
        );
        assert!(t.join().unwrap());
        out.clear();
        q.pop_batch(100, Duration::from_millis(10), &mut out);
        assert_eq!(out.len(), 4);
        // A PDU bigger than the capacity still goes through an empty queue.
        assert!(q.push(pdu(9, "1-3")));
        q.close();
        assert!(!q.push(pdu(1, "1-4")));
    }
}
